/* Engine.IO / Socket.IO packet codecs (see packet.h). */
#include "packet.h"

#include <stdlib.h>
#include <string.h>

#include "tablium/error.h"
#include "tablium/json.h"

static int b64val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

long tb_rt__base64_decode(const char *s, size_t n, unsigned char *out)
{
    while (n > 0 && s[n - 1] == '=')
        n--;
    if (n % 4 == 1)
        return -1;
    long o = 0;
    unsigned acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64val((unsigned char)s[i]);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    return o;
}

int tb_rt__payload_decode(const unsigned char *body, size_t len, tb_rt__payload_fn fn, void *ud)
{
    size_t i = 0;
    if (len == 0)
        return -1;
    while (i <= len) {
        const unsigned char *end = memchr(body + i, 0x1e, len - i);
        size_t plen = end ? (size_t)(end - (body + i)) : len - i;
        const unsigned char *p = body + i;
        if (plen == 0)
            return -1;
        int rc;
        if (p[0] == 'b') {
            unsigned char stackbuf[512];
            size_t cap = (plen - 1) / 4 * 3 + 3;
            unsigned char *out = cap <= sizeof stackbuf ? stackbuf : malloc(cap);
            if (!out)
                return -1;
            long n = tb_rt__base64_decode((const char *)p + 1, plen - 1, out);
            rc = n < 0 ? -1 : fn(TB_EIO_MESSAGE, out, (size_t)n, true, ud);
            if (out != stackbuf)
                free(out);
        } else if (p[0] >= '0' && p[0] <= '6') {
            rc = fn(p[0] - '0', p + 1, plen - 1, false, ud);
        } else {
            rc = -1;
        }
        if (rc != 0)
            return rc;
        if (!end)
            break;
        i += plen + 1;
    }
    return 0;
}

static const char *const RESERVED[] = {"connect",       "connect_error", "disconnect",
                                       "disconnecting", "newListener",   "removeListener"};

bool tb_rt__sio_reserved(const char *name, size_t len)
{
    for (size_t i = 0; i < sizeof RESERVED / sizeof RESERVED[0]; i++)
        if (strlen(RESERVED[i]) == len && memcmp(RESERVED[i], name, len) == 0)
            return true;
    return false;
}

static bool payload_valid(int type, const json_t *d, const char **why)
{
    switch (type) {
    case TB_SIO_CONNECT:
        if (d && !json_is_object(d)) {
            *why = "CONNECT data must be an object";
            return false;
        }
        return true;
    case TB_SIO_DISCONNECT:
        if (d) {
            *why = "DISCONNECT carries no data";
            return false;
        }
        return true;
    case TB_SIO_CONNECT_ERROR:
        if (!d || !(json_is_object(d) || json_is_string(d))) {
            *why = "CONNECT_ERROR data must be an object or a string";
            return false;
        }
        return true;
    case TB_SIO_EVENT:
    case TB_SIO_BINARY_EVENT: {
        if (!json_is_array(d) || json_array_size(d) == 0) {
            *why = "EVENT data must be a non-empty array";
            return false;
        }
        const json_t *n = json_array_get(d, 0);
        if (json_is_number(n))
            return true;
        if (!json_is_string(n)) {
            *why = "an event name must be a string or a number";
            return false;
        }
        if (tb_rt__sio_reserved(json_string_value(n), json_string_length(n))) {
            *why = "reserved event name";
            return false;
        }
        if (strlen(json_string_value(n)) != json_string_length(n)) {
            *why = "an event name must not contain U+0000";
            return false;
        }
        return true;
    }
    case TB_SIO_ACK:
    case TB_SIO_BINARY_ACK:
        if (!json_is_array(d)) {
            *why = "ACK data must be an array";
            return false;
        }
        return true;
    }
    *why = "unknown packet type";
    return false;
}

int tb_rt__sio_decode(const char *s, size_t len, tb_rt__sio_packet *out, const char **why)
{
    memset(out, 0, sizeof *out);
    out->ack_id = -1;
    out->nsp = "/";
    out->nsp_len = 1;
    *why = NULL;
    if (len == 0 || s[0] < '0' || s[0] > '6') {
        *why = "unknown packet type";
        return -1;
    }
    out->type = s[0] - '0';
    size_t i = 1;
    if (out->type == TB_SIO_BINARY_EVENT || out->type == TB_SIO_BINARY_ACK) {
        size_t start = i;
        unsigned n = 0;
        while (i < len && s[i] >= '0' && s[i] <= '9' && i - start < 3)
            n = n * 10 + (unsigned)(s[i++] - '0');
        if (i == start || i >= len || s[i] != '-') {
            *why = "illegal attachments";
            return -1;
        }
        i++;
        if (n > TB_SIO_MAX_ATTACHMENTS) {
            *why = "too many attachments";
            return -1;
        }
        out->nattach = n;
    }
    if (i < len && s[i] == '/') {
        size_t start = i;
        while (i < len && s[i] != ',')
            i++;
        out->nsp = s + start;
        out->nsp_len = i - start;
        if (memchr(out->nsp, '\0', out->nsp_len)) {
            *why = "invalid namespace";
            return -1;
        }
        if (i < len)
            i++; /* the ',' */
    }
    if (i < len && s[i] >= '0' && s[i] <= '9') {
        int64_t id = 0;
        size_t start = i;
        while (i < len && s[i] >= '0' && s[i] <= '9') {
            /* socket.io-parser takes any run of digits; 18 fit an int64_t (past 2^53 the
             * reference server's Number rounds them, so its ack would not match anyway) */
            if (i - start >= 18) {
                *why = "invalid ack id";
                return -1;
            }
            id = id * 10 + (s[i++] - '0');
        }
        out->ack_id = id;
    }
    if (i < len) {
        out->data = tb_json_loadb(s + i, len - i, NULL);
        if (!out->data) {
            *why = "invalid payload";
            return -1;
        }
    }
    if (!payload_valid(out->type, out->data, why)) {
        json_decref(out->data);
        out->data = NULL;
        return -1;
    }
    /* a binary packet's placeholders name its attachments (with none, none may appear: the
     * reference parser refuses it too) */
    if ((out->nattach > 0 || out->type == TB_SIO_BINARY_EVENT || out->type == TB_SIO_BINARY_ACK) &&
        tb_rt__sio_check_placeholders(out->data, out->nattach) < 0) {
        json_decref(out->data);
        out->data = NULL;
        *why = "illegal attachments";
        return -1;
    }
    return 0;
}

static int placeholders(const json_t *v, unsigned nattach, int depth)
{
    if (depth > 64)
        return 0; /* deeper values are plain data here; jansson already bounded the depth */
    if (json_is_array(v)) {
        int total = 0;
        size_t i;
        const json_t *x;
        json_array_foreach(v, i, x)
        {
            int n = placeholders(x, nattach, depth + 1);
            if (n < 0)
                return -1;
            total += n;
        }
        return total;
    }
    if (!json_is_object(v))
        return 0;
    const json_t *ph = json_object_get(v, "_placeholder");
    if (json_is_true(ph)) {
        const json_t *num = json_object_get(v, "num");
        if (!json_is_integer(num) || json_integer_value(num) < 0 ||
            json_integer_value(num) >= (json_int_t)nattach)
            return -1;
        return 1;
    }
    int total = 0;
    const char *k;
    const json_t *x;
    json_object_foreach((json_t *)v, k, x)
    {
        int n = placeholders(x, nattach, depth + 1);
        if (n < 0)
            return -1;
        total += n;
    }
    return total;
}

int tb_rt__sio_check_placeholders(const json_t *v, unsigned nattach)
{
    return placeholders(v, nattach, 0);
}

void tb_rt__sio_encode(tb_buf *b, int type, unsigned nattach, const char *nsp, int64_t ack_id,
                       const char *data_json, size_t data_len)
{
    tb_buf_putc(b, '4');
    tb_buf_putc(b, (char)('0' + type));
    if (type == TB_SIO_BINARY_EVENT || type == TB_SIO_BINARY_ACK)
        tb_buf_printf(b, "%u-", nattach);
    if (nsp && strcmp(nsp, "/") != 0) {
        tb_buf_puts(b, nsp);
        if (ack_id >= 0 || data_json)
            tb_buf_putc(b, ',');
    }
    if (ack_id >= 0)
        tb_buf_printf(b, "%lld", (long long)ack_id);
    if (data_json)
        tb_buf_append(b, data_json, data_len);
}

int tb_rt__sio_event_json(tb_buf *b, const char *event, const json_t *args)
{
    size_t mark = b->len;
    tb_buf_putc(b, '[');
    tb_buf_json_string(b, event, strlen(event));
    if (args && json_array_size(args) > 0) {
        size_t at = b->len;
        if (tb_buf_json_value(b, args) != 0) {
            b->len = mark;
            return TB_EINVAL;
        }
        b->data[at] = ','; /* the array's '[' becomes the separator; its ']' closes ours */
        return b->oom ? TB_ENOMEM : 0;
    }
    tb_buf_putc(b, ']');
    return b->oom ? TB_ENOMEM : 0;
}
