/* devwire-sim: a script replaced while the device runs (PUT
 * /devices/NAME/script, SIGHUP) applies whole: its "network" replaces the
 * faults of the proxy in front of a device that started with "network",
 * and a device without that proxy refuses it (the old script serving on). */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <devwire/devwire.h>

#include "http_client.h"
#include "sim_fixture.h"

TestSuite(sim_reload, .init = dw_sim_fixture_init, .fini = dw_sim_fixture_fini, .timeout = 120);

#define TIMEOUT 20000

/* The reply "ACME,PSU\n" passes whole; limit_data of 4 bytes cuts it. */
#define RULES  "\"rules\": [{\"when\": \"*IDN?\", \"reply\": \"ACME,PSU\"}]"
#define RULES2 "\"rules\": [{\"when\": \"*IDN?\", \"reply\": \"ACME,PSU-2\"}]"
#define LIMIT4 "\"network\": {\"reply\": {\"limit_data\": {\"bytes\": 4}}}"

/* On a new connection to `port`, ask *IDN?: the bytes that came before a
 * newline or the end, in out; *eof says whether the connection ended. */
static const char *idn(uint16_t port, char *out, size_t size, int *eof)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert(fd >= 0);
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert(connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0, "connect to %u", port);
    cr_assert(send(fd, "*IDN?\n", 6, MSG_NOSIGNAL) == 6);
    size_t len = 0;
    *eof = 0;
    while (len + 1 < size && (len == 0 || out[len - 1] != '\n')) {
        struct pollfd p = {fd, POLLIN, 0};
        cr_assert(poll(&p, 1, 5000) == 1, "an answer to *IDN? (got %zu bytes)", len);
        ssize_t r = recv(fd, out + len, size - 1 - len, 0);
        if (r <= 0) {
            *eof = 1;
            break;
        }
        len += (size_t)r;
    }
    out[len] = 0;
    close(fd);
    return out;
}

static int put_script(const char *text, cJSON **json)
{
    dw_test_http_reply r;
    int status = dw_test_http(dw_sim_fixture.control, "PUT", "/devices/default/script", NULL, text,
                              strlen(text), TIMEOUT, &r);
    cr_assert(status != 0, "PUT: %s", r.error);
    *json = cJSON_Parse(r.body);
    cr_assert(json[0] != NULL, "PUT: not JSON: %s", r.body);
    dw_test_http_reply_free(&r);
    return status;
}

static const char *str_at(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : "";
}

static void start(const char *script)
{
    const char *args[] = {"--control", "127.0.0.1:0", NULL};
    dw_sim_control_of(dw_sim_serve("reload", script, args), TIMEOUT);
}

Test(sim_reload, put_script_replaces_the_network_faults_in_front_of_the_device)
{
    start("{" RULES ", \"network\": {}}");
    uint16_t port = dw_sim_fixture.proc.port;
    char buf[64];
    int eof;
    cr_expect(eq(str, (char *)idn(port, buf, sizeof buf, &eof), "ACME,PSU\n"));
    cJSON *j;
    cr_assert(eq(int, put_script("{" RULES2 ", " LIMIT4 "}", &j), 200), "%s", str_at(j, "error"));
    cJSON_Delete(j);
    cr_expect(eq(str, (char *)idn(port, buf, sizeof buf, &eof), "ACME"), "4 bytes, then the end");
    cr_expect(eq(int, eof, 1));
    /* A script without "network" takes the faults away. */
    cr_assert(eq(int, put_script("{" RULES2 "}", &j), 200), "%s", str_at(j, "error"));
    cJSON_Delete(j);
    cr_expect(eq(str, (char *)idn(port, buf, sizeof buf, &eof), "ACME,PSU-2\n"));
}

Test(sim_reload, put_script_with_network_on_a_device_started_without_is_refused)
{
    start("{" RULES "}");
    uint16_t port = dw_sim_fixture.proc.port;
    cJSON *j;
    cr_assert(eq(int, put_script("{" RULES2 ", " LIMIT4 "}", &j), 422));
    cr_expect(eq(str, (char *)str_at(j, "where"), "body.network"));
    cr_expect(strstr(str_at(j, "error"), "started without \"network\"") != NULL, "%s",
              str_at(j, "error"));
    cJSON_Delete(j);
    char buf[64];
    int eof;
    cr_expect(eq(str, (char *)idn(port, buf, sizeof buf, &eof), "ACME,PSU\n"),
              "the old script keeps serving");
    /* A rule on the device's replies needs --proxy: refused too. */
    cr_assert(eq(int,
                 put_script("{\"rules\": [{\"when\": \"X\", \"direction\": \"reply\", "
                            "\"reply\": \"Y\"}]}",
                            &j),
                 422),
              "%s", str_at(j, "error"));
    cr_expect(eq(str, (char *)str_at(j, "where"), "body.rules"));
    cJSON_Delete(j);
    cr_expect(eq(str, (char *)idn(port, buf, sizeof buf, &eof), "ACME,PSU\n"));
}

static void rewrite(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    cr_assert(f != NULL);
    fputs(text, f);
    fclose(f);
}

Test(sim_reload, sighup_applies_network_or_keeps_the_old_script)
{
    dw_sim_proc *p = dw_sim_serve("reload", "{" RULES ", \"network\": {}}", NULL);
    char buf[64];
    int eof;
    rewrite(dw_sim_fixture.script, "{" RULES2 ", " LIMIT4 "}");
    cr_assert(eq(int, dw_sim_proc_kill(p, SIGHUP), DW_OK));
    cr_assert(dw_sim_proc_wait_output(p, 1, "reloaded", 10000), "stderr:\n%s", dw_sim_err_of(p));
    cr_expect(eq(str, (char *)idn(p->port, buf, sizeof buf, &eof), "ACME"),
              "4 bytes, then the end");
    cr_expect(eq(int, eof, 1));

    /* Without a proxy in front, the reload is refused whole. */
    p = dw_sim_serve("reload", "{" RULES "}", NULL);
    rewrite(dw_sim_fixture.script, "{" RULES2 ", " LIMIT4 "}");
    cr_assert(eq(int, dw_sim_proc_kill(p, SIGHUP), DW_OK));
    cr_assert(dw_sim_proc_wait_output(p, 1, "old script keeps serving", 10000), "stderr:\n%s",
              dw_sim_err_of(p));
    cr_expect(strstr(dw_sim_err_of(p), "\"network\"") != NULL, "%s", dw_sim_err_of(p));
    cr_expect(eq(str, (char *)idn(p->port, buf, sizeof buf, &eof), "ACME,PSU\n"));
}
