/* Internal to runtime/http: helpers shared by http.c and server.c. */
#ifndef TABLIUM_HTTP_INTERNAL_H
#define TABLIUM_HTTP_INTERNAL_H

/** Value of a hex digit, or -1. */
static inline int tb__hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

#endif
