/* error.c: filling abis_error records (see include/abis/error.h). */
#include "abis/error.h"

#include <stdio.h>
#include <string.h>

abis_status abis_error_set(abis_error *err, abis_status status, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        err->status = status;
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
    }
    return status;
}

abis_status abis_error_prefix(abis_error *err, const char *fmt, ...)
{
    if (!err)
        return ABIS_E_INTERNAL;
    char prefix[ABIS_ERROR_MESSAGE_MAX], old[ABIS_ERROR_MESSAGE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, err->message, sizeof old);
    /* prefix ": " old, cut to fit the message buffer. */
    size_t cap = sizeof err->message, n = strnlen(prefix, cap - 1);
    memcpy(err->message, prefix, n);
    if (n + 2 < cap) {
        memcpy(err->message + n, ": ", 2);
        n += 2;
    }
    size_t rest = strnlen(old, sizeof old);
    if (rest > cap - 1 - n)
        rest = cap - 1 - n;
    memcpy(err->message + n, old, rest);
    err->message[n + rest] = '\0';
    return err->status;
}

void abis_error_clear(abis_error *err)
{
    if (err) {
        err->status = ABIS_OK;
        err->message[0] = '\0';
    }
}

const char *abis_status_name(abis_status status)
{
    switch (status) {
    case ABIS_OK:
        return "ok";
    case ABIS_E_INVALID:
        return "invalid";
    case ABIS_E_NOT_FOUND:
        return "not_found";
    case ABIS_E_EXISTS:
        return "exists";
    case ABIS_E_DUPLICATE:
        return "duplicate";
    case ABIS_E_NO_CONSENT:
        return "no_consent";
    case ABIS_E_LOCKED:
        return "locked";
    case ABIS_E_CRYPTO:
        return "crypto";
    case ABIS_E_IO:
        return "io";
    case ABIS_E_STORE:
        return "store";
    case ABIS_E_SCHEMA:
        return "schema";
    case ABIS_E_NOMEM:
        return "nomem";
    case ABIS_E_TAMPER:
        return "tamper";
    case ABIS_E_BUSY:
        return "busy";
    case ABIS_E_INTERNAL:
        return "internal";
    case ABIS_E_UNAUTHENTICATED:
        return "unauthenticated";
    case ABIS_E_FORBIDDEN:
        return "forbidden";
    case ABIS_E_CONFLICT:
        return "conflict";
    }
    return "unknown";
}
