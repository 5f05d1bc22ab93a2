/* The Telnet filter over one connection of a dw_tcp_server. */
#include "devwire/telnet.h"

static int conn_write(void *user, const uint8_t *p, size_t n)
{
    return dw_conn_write(user, p, n);
}

dw_telnet *dw_telnet_conn_new(dw_conn *c, const dw_telnet_options *o)
{
    dw_telnet_options opts;
    if (o) {
        opts = *o;
    } else {
        dw_telnet_options_init(&opts);
        opts.server = 1;
        opts.echo = 0;
    }
    if (!opts.name)
        opts.name = dw_conn_peer(c);
    if (!opts.logger)
        opts.logger = dw_conn_logger(c);
    return dw_telnet_new(&opts, NULL, conn_write, c);
}
