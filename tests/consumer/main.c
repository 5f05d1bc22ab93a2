/* A program outside the devwire tree: built against an installed devwire
 * with find_package(devwire) and with pkg-config, by tests/consumer/run.sh. */
#include <cjson/cJSON.h>
#include <devwire/devwire.h>
#include <devwire/telnet.h>
#include <stdio.h>
#include <stdlib.h>

int main(void)
{
    printf("devwire %s\n", dw_version());

    /* Framing over chunks of 3 bytes. */
    dw_marshaller *m = dw_sentinel_marshaller_new("\r\n", 2);
    dw_buf wire = DW_BUF_INIT, p = DW_BUF_INIT;
    if (!m || dw_marshall(m, (const uint8_t *)"*IDN?", 5, &wire, NULL) != DW_OK ||
        dw_marshall(m, (const uint8_t *)"FREQ 1e6", 8, &wire, NULL) != DW_OK)
        return 1;
    dw_mem_iter it;
    dw_mem_iter_init_chunked(&it, wire.data, wire.len, 3);
    int rc;
    while ((rc = dw_unmarshall(m, &it.base, &p, NULL)) == DW_OK)
        printf("frame: %.*s\n", (int)p.len, (const char *)p.data);
    printf("end: %s\n", dw_err_name(rc));

    /* A cJSON payload (libcjson comes with devwire). */
    dw_marshaller *j = dw_json_marshaller_new();
    cJSON *v = cJSON_Parse("{\"ok\": true}");
    dw_buf_clear(&wire);
    if (!j || !v || dw_marshall_payload(j, v, &wire, NULL) != DW_OK)
        return 1;
    dw_mem_iter_init(&it, wire.data, wire.len, NULL, 0);
    void *back = NULL;
    if (dw_unmarshall_payload(j, &it.base, &back, NULL) != DW_OK)
        return 1;
    char *text = cJSON_PrintUnformatted(back);
    printf("json: %s\n", text);
    cJSON_free(text);
    dw_payload_free(j, back);
    cJSON_Delete(v);

    /* Telnet (libtelnet) and the TCP server (threads): a static link needs
     * their libraries too. */
    dw_buf esc = DW_BUF_INIT;
    rc = dw_telnet_escape("\xff", 1, &esc);
    printf("telnet: %s\n", dw_err_name(rc));
    dw_tcp_server_options o;
    dw_tcp_server_options_init(&o);

    dw_buf_free(&esc);
    dw_buf_free(&wire);
    dw_buf_free(&p);
    dw_marshaller_free(m);
    dw_marshaller_free(j);
    return 0;
}
