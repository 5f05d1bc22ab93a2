#include "devwire/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *dw_strerror(int code)
{
    switch (code) {
    case DW_OK:
        return "success";
    case DW_EOF:
        return "end of stream";
    case DW_MORE:
        return "frame not complete yet";
#define DW_ERR_TEXT(name, value, text)                                                             \
    case DW_##name:                                                                                \
        return text;
        DW_ERRNO_MAP(DW_ERR_TEXT)
#undef DW_ERR_TEXT
    default:
        /* strerror() is not thread-safe in general, but glibc returns static
         * strings for known errno values, which is all that reaches here. */
        return code < 0 && code > -4000 ? strerror(-code) : "unknown error";
    }
}

const char *dw_err_name(int code)
{
    switch (code) {
    case DW_OK:
        return "DW_OK";
    case DW_EOF:
        return "DW_EOF";
    case DW_MORE:
        return "DW_MORE";
#define DW_ERR_NAME(name, value, text)                                                             \
    case DW_##name:                                                                                \
        return "DW_" #name;
        DW_ERRNO_MAP(DW_ERR_NAME)
#undef DW_ERR_NAME
    default:
        return "DW_UNKNOWN";
    }
}

void dw_error_clear(dw_error *err)
{
    if (err) {
        err->code = DW_OK;
        err->message[0] = '\0';
    }
}

int dw_error_set(dw_error *err, int code, const char *fmt, ...)
{
    if (err) {
        /* Format into a copy first: the arguments may point into
         * err->message itself ("connect: %s", dw_error_message(err)). */
        char msg[sizeof err->message];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        memcpy(err->message, msg, sizeof msg);
        err->code = code;
    }
    return code;
}

const char *dw_error_message(const dw_error *err)
{
    if (!err)
        return "";
    return err->message[0] ? err->message : dw_strerror(err->code);
}
