/* MessagePack <-> JSON in notepack.io's conventions (see mpack.h). */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "mpack.h"

#define MAX_DEPTH 64

static bool utf8_ok(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s, *e = p + n;
    while (p < e) {
        unsigned c = *p;
        size_t len;
        unsigned min;
        if (c == 0)
            return false;
        if (c < 0x80) {
            p++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            len = 2;
            min = 0x80;
            c &= 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            len = 3;
            min = 0x800;
            c &= 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            len = 4;
            min = 0x10000;
            c &= 0x07;
        } else {
            return false;
        }
        if ((size_t)(e - p) < len)
            return false;
        for (size_t i = 1; i < len; i++) {
            if ((p[i] & 0xc0) != 0x80)
                return false;
            c = (c << 6) | (p[i] & 0x3f);
        }
        if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
            return false;
        p += len;
    }
    return true;
}

static json_t *placeholder(tb_rt_bin *bins, size_t *nbins, size_t max, const void *p, size_t n)
{
    if (*nbins >= max)
        return NULL;
    bins[*nbins].data = p;
    bins[*nbins].len = n;
    return json_pack("{s:b,s:I}", "_placeholder", 1, "num", (json_int_t)(*nbins)++);
}

static json_t *to_json(const msgpack_object *o, tb_rt_bin *bins, size_t *nbins, size_t max,
                       int depth)
{
    if (depth > MAX_DEPTH)
        return NULL;
    switch (o->type) {
    case MSGPACK_OBJECT_NIL: return json_null();
    case MSGPACK_OBJECT_BOOLEAN: return json_boolean(o->via.boolean);
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        if (o->via.u64 > (uint64_t)INT64_MAX)
            return json_real((double)o->via.u64);
        return json_integer((json_int_t)o->via.u64);
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: return json_integer((json_int_t)o->via.i64);
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64: {
        double d = o->via.f64;
        if (d != d || d - d != 0)
            return json_null(); /* JSON.stringify writes NaN and infinities as null */
        if (d == (double)(json_int_t)d && d >= -9007199254740992.0 && d <= 9007199254740992.0)
            return json_integer((json_int_t)d); /* notepack writes 1.0 as 1 too */
        return json_real(d);
    }
    case MSGPACK_OBJECT_STR:
        if (!utf8_ok(o->via.str.ptr, o->via.str.size))
            return NULL;
        return json_stringn(o->via.str.ptr, o->via.str.size);
    case MSGPACK_OBJECT_BIN: return placeholder(bins, nbins, max, o->via.bin.ptr, o->via.bin.size);
    case MSGPACK_OBJECT_EXT:
        if (o->via.ext.type == 0 && o->via.ext.size == 1)
            return json_null();                             /* undefined */
        if (o->via.ext.type == 0 && o->via.ext.size == 8) { /* a Date: its ISO text, as JSON */
            int64_t ms = 0;
            for (int i = 0; i < 8; i++)
                ms = (int64_t)((uint64_t)ms << 8 | (unsigned char)o->via.ext.ptr[i]);
            time_t secs = (time_t)(ms / 1000);
            int rem = (int)(ms % 1000);
            if (rem < 0) {
                rem += 1000;
                secs--;
            }
            struct tm tm;
            char buf[40];
            if (!gmtime_r(&secs, &tm))
                return json_null();
            size_t n = strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
            snprintf(buf + n, sizeof buf - n, ".%03dZ", rem);
            return json_string(buf);
        }
        return placeholder(bins, nbins, max, o->via.ext.ptr, o->via.ext.size); /* ArrayBuffer */
    case MSGPACK_OBJECT_ARRAY: {
        json_t *a = json_array();
        for (uint32_t i = 0; a && i < o->via.array.size; i++) {
            json_t *v = to_json(&o->via.array.ptr[i], bins, nbins, max, depth + 1);
            if (!v || json_array_append_new(a, v) != 0) {
                json_decref(a);
                return NULL;
            }
        }
        return a;
    }
    case MSGPACK_OBJECT_MAP: {
        json_t *m = json_object();
        for (uint32_t i = 0; m && i < o->via.map.size; i++) {
            const msgpack_object *k = &o->via.map.ptr[i].key;
            char num[48];
            const char *key;
            size_t klen;
            if (k->type == MSGPACK_OBJECT_STR) {
                if (!utf8_ok(k->via.str.ptr, k->via.str.size)) {
                    json_decref(m);
                    return NULL;
                }
                key = k->via.str.ptr;
                klen = k->via.str.size;
            } else if (k->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
                klen = (size_t)snprintf(num, sizeof num, "%llu", (unsigned long long)k->via.u64);
                key = num;
            } else if (k->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
                klen = (size_t)snprintf(num, sizeof num, "%lld", (long long)k->via.i64);
                key = num;
            } else {
                json_decref(m);
                return NULL;
            }
            json_t *v = to_json(&o->via.map.ptr[i].val, bins, nbins, max, depth + 1);
            if (!v || json_object_setn_new(m, key, klen, v) != 0) {
                json_decref(v);
                json_decref(m);
                return NULL;
            }
        }
        return m;
    }
    default: return NULL;
    }
}

json_t *tb_rt__mp_to_json(const msgpack_object *o, tb_rt_bin *bins, size_t *nbins, size_t max)
{
    return to_json(o, bins, nbins, max, 0);
}

void tb_rt__mp_pack_strn(msgpack_packer *pk, const char *s, size_t n)
{
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

static int pack(msgpack_packer *pk, const json_t *v, const tb_rt_bin *bins, size_t nbins, int depth)
{
    if (depth > MAX_DEPTH)
        return -1;
    switch (json_typeof(v)) {
    case JSON_NULL: return msgpack_pack_nil(pk);
    case JSON_TRUE: return msgpack_pack_true(pk);
    case JSON_FALSE: return msgpack_pack_false(pk);
    case JSON_INTEGER: return msgpack_pack_int64(pk, json_integer_value(v));
    case JSON_REAL: return msgpack_pack_double(pk, json_real_value(v));
    case JSON_STRING:
        tb_rt__mp_pack_strn(pk, json_string_value(v), json_string_length(v));
        return 0;
    case JSON_ARRAY: {
        size_t i;
        const json_t *x;
        msgpack_pack_array(pk, json_array_size(v));
        json_array_foreach(v, i, x)
        {
            if (pack(pk, x, bins, nbins, depth + 1) != 0)
                return -1;
        }
        return 0;
    }
    case JSON_OBJECT: {
        if (json_is_true(json_object_get(v, "_placeholder"))) {
            const json_t *num = json_object_get(v, "num");
            if (!json_is_integer(num) || json_integer_value(num) < 0 ||
                (size_t)json_integer_value(num) >= nbins)
                return -1;
            const tb_rt_bin *b = &bins[json_integer_value(num)];
            msgpack_pack_bin(pk, b->len);
            msgpack_pack_bin_body(pk, b->data, b->len);
            return 0;
        }
        const char *k;
        const json_t *x;
        msgpack_pack_map(pk, json_object_size(v));
        json_object_foreach((json_t *)v, k, x)
        {
            tb_rt__mp_pack_str(pk, k);
            if (pack(pk, x, bins, nbins, depth + 1) != 0)
                return -1;
        }
        return 0;
    }
    }
    return -1;
}

int tb_rt__mp_pack_json(msgpack_packer *pk, const json_t *v, const tb_rt_bin *bins, size_t nbins)
{
    return pack(pk, v, bins, nbins, 0);
}

const msgpack_object *tb_rt__mp_get(const msgpack_object *o, const char *k)
{
    if (!o || o->type != MSGPACK_OBJECT_MAP)
        return NULL;
    size_t n = strlen(k);
    for (uint32_t i = 0; i < o->via.map.size; i++) {
        const msgpack_object *key = &o->via.map.ptr[i].key;
        if (key->type == MSGPACK_OBJECT_STR && key->via.str.size == n &&
            memcmp(key->via.str.ptr, k, n) == 0)
            return &o->via.map.ptr[i].val;
    }
    return NULL;
}
