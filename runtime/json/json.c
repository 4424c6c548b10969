#include "tablium/json.h"
#include "tb_fastjson.h"

#include <string.h>

json_t *tb_json_loadb(const char *buf, size_t len, tb_error *err)
{
    json_error_t je;
    tb_error_reset(err);
    json_t *j = tb__json_fast_loadb(buf, len); /* NULL when unsure: jansson decides */
    if (j)
        return j;
    j = json_loadb(buf, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL,
                           &je);
    if (!j && err) {
        tb_error_set(err, TB_EPARSE, "malformed JSON at line %d, column %d: %s", je.line,
                     je.column, je.text);
        err->line = je.line;
        err->column = je.column;
        err->position = je.position;
    }
    return j;
}

static void decref(void *p)
{
    json_decref(p);
}

int tb_arena_hold_json(tb_arena *a, json_t *j)
{
    int rc = tb_arena_on_free(a, decref, j);
    if (rc == 0)
        json_incref(j);
    return rc;
}

json_t *tb_arena_json(tb_arena *a, json_t *j)
{
    if (j == NULL)
        return NULL;
    if (tb_arena_on_free(a, decref, j) != 0) {
        json_decref(j);
        return NULL;
    }
    return j;
}

static int dump_cb(const char *buffer, size_t size, void *data)
{
    tb_buf *b = data;
    tb_buf_append(b, buffer, size);
    return b->oom ? -1 : 0;
}

int tb_buf_json_value(tb_buf *b, const json_t *j)
{
    int rc = tb__json_fast_dump(b, j);
    if (rc <= 0)
        return rc;
    size_t mark = b->len; /* deep values: jansson decides (and detects cycles) */
    rc = json_dump_callback(j, dump_cb, b, JSON_COMPACT | JSON_ENCODE_ANY);
    if (rc == 0 && !b->oom)
        return 0;
    b->len = mark;
    return b->oom ? TB_ENOMEM : TB_EINVAL;
}
