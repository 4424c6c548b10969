/*
 * libFuzzer target: the bracket form reader (runtime/http/brackets.c), typed by the descriptors
 * of tests/specs/deep_object.yaml (generated at build time): Stripe's shapes, arrays of
 * strings, unions of an object and an integer or "", nested objects, maps, arrays of objects.
 *
 * An input is a query string: name=value pairs split on '&' and '=', percent-decoded as the
 * server decodes them, fed to each of the spec's bracket parameters. Beyond "no crash, no leak,
 * no sanitizer report":
 *   a value the parameter's schema accepts decodes into the C struct (tb_codec_member_decode
 *   returns 0), and what tablium writes of it (tb__brackets_write) reads back as a value the
 *   schema accepts, unless a key of it holds a bracket, which the form cannot carry.
 */
#include "deep_object/deep_object.h"

#include "tablium/arena.h"
#include "tablium/buf.h"
#include "tablium/http.h"
#include "tablium/op.h"
#include "tablium/validate.h"

#include "internal.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern const tb_op deep_object_list_charges__op;
extern const tb_op deep_object_upcoming_invoice__op;

static void check(int cond, const char *what)
{
    if (!cond) {
        fprintf(stderr, "fuzz_brackets: invariant broken: %s\n", what);
        abort();
    }
}

/* The tree of parameter p from the pairs of query q[0..n); 0, 2 (malformed) or TB_ENOMEM. */
static int tree_of(const tb_op_param *p, const char *q, size_t n, tb_arena *a, json_t **tree)
{
    const char *why = NULL, *end = q + n;
    *tree = NULL;
    while (q < end) {
        const char *amp = memchr(q, '&', (size_t)(end - q));
        const char *stop = amp ? amp : end;
        const char *eq = memchr(q, '=', (size_t)(stop - q));
        const char *kend = eq ? eq : stop;
        bool bad = false;
        char *k = tb_http_pct_decode(a, q, (size_t)(kend - q), &bad);
        char *v = eq ? tb_http_pct_decode(a, eq + 1, (size_t)(stop - eq - 1), &bad) : "";
        q = amp ? amp + 1 : end;
        if (bad || !k || !v)
            continue;
        int r = tb__brackets_add(tree, p->name, p->name_len, k, v, &why);
        if (r == 2 || r == TB_ENOMEM)
            return r;
    }
    return 0;
}

static bool valid(const tb_op_param *p, const json_t *j)
{
    tb_error err = TB_ERROR_INIT;
    tb_vctx c;
    tb_vctx_init(&c, &err, TB_VALIDATE_FORMATS);
    bool ok = tb_vctx_finish(&c, p->validate(j, &c, NULL)) == 0;
    tb_error_deinit(&err);
    return ok;
}

static bool key_with_bracket(const json_t *v)
{
    const char *k;
    json_t *x;
    if (json_is_array(v))
        for (size_t i = 0; i < json_array_size(v); i++)
            if (key_with_bracket(json_array_get(v, i)))
                return true;
    if (json_is_object(v))
        json_object_foreach((json_t *)v, k, x) {
            if (strpbrk(k, "[]") || key_with_bracket(x))
                return true;
        }
    return false;
}

static void one(const tb_op_param *p, const char *q, size_t n)
{
    tb_arena *a = tb_arena_new(0);
    json_t *tree = NULL;
    int rc = tree_of(p, q, n, a, &tree);
    check(rc != TB_ENOMEM, "reading the pairs failed (out of memory: a 500 to the client)");
    if (rc == 0 && tree) {
        json_t *j = tb__brackets_typed(tree, p->kind, p->flags, p->sub);
        check(j != NULL, "typing a tree failed (out of memory?)");
        if (valid(p, j)) {
            char req[1024];
            memset(req, 0, sizeof req);
            check(tb_codec_member_decode(p->kind, p->flags & TB_CF_HOLDING, p->sub, j, a, req,
                                         p->off, p->n_off) == 0,
                  "a valid value does not decode");
            tb_buf w = TB_BUF_INIT;
            char sep = 0;
            tb__brackets_write(&w, &sep, p->name, p->name_len, j);
            check(!w.oom, "writing ran out of memory");
            json_t *back = NULL;
            int rc2 = tree_of(p, w.data ? w.data : "", w.len, a, &back);
            check(rc2 != TB_ENOMEM, "reading back failed (out of memory)");
            if (!key_with_bracket(j)) {
                check(rc2 == 0, "what tablium writes does not read back");
                json_t *j2 = back ? tb__brackets_typed(back, p->kind, p->flags, p->sub) : NULL;
                /* empty arrays and objects are not written: an absent value is fine */
                check(!back || (j2 && valid(p, j2)),
                      "what tablium writes of a valid value reads back invalid");
                json_decref(j2);
            }
            json_decref(back);
            tb_buf_deinit(&w);
        }
        json_decref(j);
    }
    json_decref(tree);
    tb_arena_free(a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *q = malloc(size + 1);
    if (!q)
        return 0;
    memcpy(q, data, size);
    q[size] = '\0';
    size_t n = strlen(q); /* a query holds no NUL */
    const tb_op *ops[] = {&deep_object_list_charges__op, &deep_object_upcoming_invoice__op};
    for (size_t o = 0; o < 2; o++)
        for (size_t i = 0; i < ops[o]->nparams; i++)
            if (ops[o]->params[i].flags & TB_PF_BRACKETS)
                one(&ops[o]->params[i], q, n);
    free(q);
    return 0;
}
