/* devwire-sim's control API: who may call it, and how, checked on every
 * request before its route (docs/control.md "Who may call it").
 *
 *   the URL     a token in the query (access_token=) is refused: URLs end
 *               up in logs and in a browser's history;
 *   the token   with --control-token, "Authorization: Bearer TOKEN" (the
 *               scheme in any case), compared whole in constant time;
 *   a browser   without a token, a request a web page could have sent is
 *               refused: a Host that is not this API's address (DNS
 *               rebinding), an Origin that is not its own, a Sec-Fetch-Site
 *               of cross-site or same-site. With a token these are left to
 *               the token, which no other page can send, so that a proxy
 *               in front may rewrite Host and Origin;
 *   the body    is JSON and says so (Content-Type: application/json), which
 *               no form and no "simple" cross-site request can.
 *
 * Nothing here knows a route or a resource. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "control/control_int.h"

#define SHOWN 100 /* bytes of a refused header quoted in the error */

/* ---- the token ----------------------------------------------------------------- */

/* 1 when `given` is the token. The loop runs over the whole token
 * whatever `given` holds: its time tells nothing of where they differ. */
static int same_token(const char *token, const char *given)
{
    size_t n = strlen(token), m = strlen(given);
    volatile unsigned diff = n != m;
    for (size_t i = 0; i < n; i++)
        diff |= (unsigned)(unsigned char)token[i] ^ (unsigned char)(i < m ? given[i] : 0);
    return diff == 0;
}

/* The token of an Authorization header "Bearer TOKEN" (the scheme in any
 * case, RFC 9110 11.1), or NULL. */
static const char *bearer(const char *header)
{
    static const char scheme[] = "bearer";
    if (!header)
        return NULL;
    header += strspn(header, " \t");
    const char *p = header + sizeof scheme - 1;
    if (strncasecmp(header, scheme, sizeof scheme - 1) != 0 || (*p != ' ' && *p != '\t'))
        return NULL;
    return p + strspn(p, " \t");
}

int dw__ctl_authorized(const dw_sim_control *c, const dw_sim_http_request *req)
{
    if (!c->token)
        return 1;
    const char *given = bearer(req->authorization);
    return given && same_token(c->token, given);
}

/* 1 when the query names `key` (its name percent-decoded), whatever the
 * value or its length. */
static int query_names(const char *query, const char *key)
{
    for (const char *p = query; p && *p;) {
        size_t len = strcspn(p, "&");
        size_t name_len = strcspn(p, "=&");
        char name[64];
        if (name_len < sizeof name && dw__ctl_decode(p, name_len, 1, name, sizeof name) == 0 &&
            strcmp(name, key) == 0)
            return 1;
        p = p[len] ? p + len + 1 : NULL;
    }
    return 0;
}

/* ---- a browser's request --------------------------------------------------------- */

/* 1 when host[0..n) is `name` (case-insensitive): an IPv6 address in
 * brackets, a name or an IPv4 address as it is. */
static int host_is(const char *host, size_t n, const char *name)
{
    size_t k = strlen(name);
    if (strchr(name, ':'))
        return n == k + 2 && host[0] == '[' && host[n - 1] == ']' &&
               strncasecmp(host + 1, name, k) == 0;
    return n == k && strncasecmp(host, name, k) == 0;
}

/* 1 when v[0..n) is HOST[:PORT] as this API is reached: HOST localhost,
 * 127.0.0.1, [::1], the host of --control as given or the address bound;
 * PORT the port bound (it may be left out only when that is 80). */
static int our_host(const dw_sim_control *c, const char *v, size_t n)
{
    const char *colon = NULL;
    if (n && v[0] == '[') {
        const char *end = memchr(v, ']', n);
        if (!end)
            return 0;
        colon = end + 1 < v + n ? end + 1 : NULL;
        if (colon && *colon != ':')
            return 0;
    } else {
        for (size_t i = n; i-- > 0 && !colon;)
            colon = v[i] == ':' ? v + i : NULL;
    }
    size_t hlen = colon ? (size_t)(colon - v) : n;
    unsigned long port = 80;
    if (colon) {
        size_t digits = n - hlen - 1;
        char text[8];
        if (digits == 0 || digits > 5 || strspn(colon + 1, "0123456789") < digits)
            return 0;
        memcpy(text, colon + 1, digits);
        text[digits] = 0;
        port = strtoul(text, NULL, 10);
    }
    if (port != c->port)
        return 0;
    static const char *const names[] = {"localhost", "127.0.0.1", "::1"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (host_is(v, hlen, names[i]))
            return 1;
    return host_is(v, hlen, c->host) || (c->bound_host[0] && host_is(v, hlen, c->bound_host));
}

/* 403 naming the header and what it held. */
static int refuse(dw_sim_http_response *r, const char *header, const char *value, const char *why)
{
    size_t n = strlen(value);
    dw__ctl_error(r, 403, header,
                  "%s: \"%.*s\"%s %s; a request a web page could send is refused "
                  "unless --control-token guards the API",
                  strchr(header, '.') + 1, SHOWN, value, n > SHOWN ? "..." : "", why);
    return 0;
}

static int browser_checks(const dw_sim_control *c, const dw_sim_http_request *req,
                          dw_sim_http_response *r)
{
    static const char http[] = "http://";
    char why[DW_SIM_ADDR_MAX + 160];
    snprintf(why, sizeof why,
             "is not this control API's address (localhost:%u, 127.0.0.1:%u, [::1]:%u or %s)",
             c->port, c->port, c->port, c->addr);
    if (req->host && !our_host(c, req->host, strlen(req->host)))
        return refuse(r, "header.Host", req->host, why);
    const char *o = req->origin;
    if (o && (strncasecmp(o, http, sizeof http - 1) != 0 ||
              !our_host(c, o + sizeof http - 1, strlen(o + sizeof http - 1))))
        return refuse(r, "header.Origin", o, "is not this control API's own origin");
    const char *site = req->sec_fetch_site;
    if (site && (strcasecmp(site, "cross-site") == 0 || strcasecmp(site, "same-site") == 0))
        return refuse(r, "header.Sec-Fetch-Site", site, "says another site sent it");
    return 1;
}

int dw__ctl_access(const dw_sim_control *c, const dw_sim_http_request *req, dw_sim_http_response *r)
{
    if (query_names(req->query, "access_token")) {
        dw__ctl_error(r, 400, "query.access_token",
                      "a token in the URL is refused (URLs end up in logs): send the header "
                      "\"Authorization: Bearer TOKEN\"");
        return 0;
    }
    /* The status page itself holds no data: a browser can open it, and its
     * script sends the token (docs/control.md "GET /"). */
    int page = strcmp(req->method, "GET") == 0 && strcmp(req->path, "/") == 0;
    if (!page && !dw__ctl_authorized(c, req)) {
        dw__ctl_error(r, 401, "authorization",
                      "this control API needs \"Authorization: Bearer TOKEN\" (--control-token)");
        return 0;
    }
    return c->token ? 1 : browser_checks(c, req, r);
}

/* ---- the body's type ------------------------------------------------------------- */

int dw__ctl_body_type(const dw_sim_http_request *req, dw_sim_http_response *r)
{
    static const char json[] = "application/json";
    const char *t = req->content_type;
    if (!req->body_len)
        return 1;
    if (t) {
        t += strspn(t, " \t");
        const char *end = t + sizeof json - 1;
        if (strncasecmp(t, json, sizeof json - 1) == 0 &&
            (*end == 0 || *end == ';' || *end == ' ' || *end == '\t'))
            return 1;
    }
    dw__ctl_error(r, 415, "header.Content-Type",
                  "Content-Type: \"%.*s\": a body must be JSON, sent with \"Content-Type: "
                  "application/json\" (curl: -H 'Content-Type: application/json')",
                  SHOWN, t ? t : "");
    return 0;
}
