/* deepObject parameters beyond a flat object (tests/specs/deep_object.yaml, Stripe's shapes:
 * expand[0]=, created[gt]= or created=, "" to clear, nested objects, arrays of objects) in the
 * bracket form, over real HTTP, checked against qs (npm; the library Express and Stripe's Node
 * client read and write it with), run as tests/generator/qs/qs.js:
 *   the generated client to the generated server: every value arrives typed as it was sent;
 *   what tablium writes, qs reads as the same value (its leaves as text);
 *   what qs writes, the server reads as the same typed value;
 *   names that do not pair, a value beside members, too deep, an object where an array goes:
 *     400 naming the parameter and the rule, never a value silently dropped. */
#include "deep_object/deep_object.h"

#include "tablium/ctx.h"
#include "tablium/http.h"
#include "tablium/op.h"

#include "internal.h" /* runtime/http: tb__brackets_write */

#include <check.h>
#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* the generated operation tables (deep_object.c) */
extern const tb_op deep_object_list_charges__op;
extern const tb_op deep_object_upcoming_invoice__op;
extern const tb_op deep_object_create_customer__op;

/* ---- the handlers: each records the request it got as JSON (parameter name -> value) ---- */

static char seen[8192];

static void record(const tb_op *op, const void *req)
{
    json_t *o = json_object();
    for (size_t i = 0; i < op->nparams; i++) {
        const tb_op_param *p = &op->params[i];
        if (!(p->flags & TB_CF_REQUIRED) && !*(const bool *)((const char *)req + p->has_off))
            continue;
        json_object_set_new(o, p->name, tb_codec_member_to_json(p->kind, p->flags & TB_CF_HOLDING,
                                                                p->sub, req, p->off, p->n_off));
    }
    const tb_op_body *b = op->body;
    if (b)
        json_object_set_new(o, "body", tb_codec_member_to_json(b->kind, b->flags & TB_CF_HOLDING,
                                                               b->sub, req, b->off, b->n_off));
    char *s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    snprintf(seen, sizeof seen, "%s", s ? s : "");
    free(s);
    json_decref(o);
}

int deep_object_service_init(void **state, tb_error *err)
{
    (void)err;
    *state = NULL;
    return 0;
}

void deep_object_service_fini(void *state)
{
    (void)state;
}

int deep_object_list_charges(tb_ctx *ctx, const deep_object_list_charges_req *req,
                             deep_object_list_charges_resp *resp)
{
    (void)ctx;
    record(&deep_object_list_charges__op, req);
    resp->status = 200;
    return 0;
}

int deep_object_upcoming_invoice(tb_ctx *ctx, const deep_object_upcoming_invoice_req *req,
                                 deep_object_upcoming_invoice_resp *resp)
{
    (void)ctx;
    record(&deep_object_upcoming_invoice__op, req);
    resp->status = 200;
    return 0;
}

int deep_object_list_refunds(tb_ctx *ctx, const deep_object_list_refunds_req *req,
                             deep_object_list_refunds_resp *resp)
{
    (void)ctx;
    (void)req;
    resp->status = 200;
    return 0;
}

int deep_object_create_customer(tb_ctx *ctx, const deep_object_create_customer_req *req,
                                 deep_object_create_customer_resp *resp)
{
    (void)ctx;
    record(&deep_object_create_customer__op, req);
    resp->status = 200;
    return 0;
}

/* ---- the values: parameters of listCharges (/charges) or upcomingInvoice (/invoices/...), the
 * form body of createCustomer (POST /customers) ---- */

typedef struct example {
    const tb_op *op;
    const char *path;
    const char *params; /* JSON: parameter name (or "body": the body's members) -> value */
} example;

static const example EXAMPLES[] = {
    {&deep_object_list_charges__op, "/charges",
     "{\"expand\":[\"customer\",\"invoice.subscription\"],\"created\":{\"gt\":1700000000,"
     "\"lte\":1800000000},\"amount\":250,\"ids\":\"\",\"when\":1700000000}"},
    {&deep_object_list_charges__op, "/charges",
     "{\"created\":5,\"amount\":\"\",\"ids\":[\"ch_1\",\"ch 2&3\",\"[x]=y\"],"
     "\"when\":{\"gt\":-3,\"lt\":4}}"},
    {&deep_object_upcoming_invoice__op, "/invoices/upcoming",
     "{\"customer_details\":{\"address\":{\"city\":\"Berlin\",\"line1\":\"Unter den Linden 1 & 2\","
     "\"country\":\"DE\"},\"tax_exempt\":\"none\",\"tax_ids\":[{\"type\":\"eu_vat\",\"value\":"
     "\"DE123\"},{\"type\":\"de_stn\",\"value\":\"[12]=3\"}],\"metadata\":{\"order_id\":\"6735\","
     "\"0\":\"zero\",\"note\":\"\"},\"active\":true},"
     "\"items\":[{\"price\":\"price_1\",\"quantity\":2,\"tax_rates\":[\"txr_1\",\"txr_2\"]},"
     "{\"price\":\"price_2\",\"quantity\":1,\"tax_rates\":\"\"},{\"price\":\"p3\"},{\"price\":\"p4\"},"
     "{\"price\":\"p5\"},{\"price\":\"p6\"},{\"price\":\"p7\"},{\"price\":\"p8\"},{\"price\":\"p9\"},"
     "{\"price\":\"p10\"},{\"price\":\"p11\",\"quantity\":11}]}"},
    {&deep_object_upcoming_invoice__op, "/invoices/upcoming",
     "{\"customer_details\":{\"address\":\"\",\"tax_exempt\":\"\",\"active\":false},"
     "\"items\":[{\"tax_rates\":[\"only\"]}]}"},
    {&deep_object_create_customer__op, "/customers",
     "{\"body\":{\"email\":\"ada@example.com\",\"balance\":-250,\"expand\":[\"default_source\"],"
     "\"metadata\":{\"plan\":\"gold\",\"order id\":\"6735 & more\",\"7\":\"seven\"},"
     "\"address\":{\"city\":\"Z\u00fcrich\",\"postal_code\":\"8001\"},"
     "\"tax_ids\":[{\"type\":\"ch_vat\",\"value\":\"CHE-123.456.789\"}],"
     "\"preferences\":{\"locales\":[\"de\",\"en\"],\"paperless\":true}}}"},
    {&deep_object_create_customer__op, "/customers",
     "{\"body\":{\"email\":\"b@example.com\",\"metadata\":\"\",\"address\":\"\","
     "\"preferences\":{\"paperless\":false}}}"},
};
#define NEX (sizeof EXAMPLES / sizeof EXAMPLES[0])

/* ---- fixture ---- */

static tb_server *srv;
static deep_object_client *cl;
static char base[128];

static void setup(void)
{
    tb_server_opts o = TB_SERVER_OPTS_INIT;
    o.threads = 2;
    o.host = "127.0.0.1";
    srv = tb_server_new(&deep_object_api, &o, NULL);
    ck_assert_ptr_nonnull(srv);
    ck_assert_int_eq(tb_server_start(srv, NULL), 0);
    snprintf(base, sizeof base, "http://127.0.0.1:%u", (unsigned)tb_server_port(srv));
    tb_error err = TB_ERROR_INIT;
    cl = deep_object_client_new(base, NULL, &err);
    ck_assert_msg(cl != NULL, "%s", err.message);
}

static void teardown(void)
{
    deep_object_client_free(cl);
    tb_server_stop(srv);
    tb_server_free(srv);
}

/* A GET (or with a form, a POST of it) as another client writes it: its status, the answer's
 * body in out. */
static long send_form(const char *path_and_query, const char *form, char *out, size_t cap)
{
    CURL *c = curl_easy_init();
    char url[4096];
    snprintf(url, sizeof url, "%s%s", base, path_and_query);
    memset(out, 0, cap);
    FILE *f = fmemopen(out, cap - 1, "w");
    curl_easy_setopt(c, CURLOPT_URL, url);
    if (form)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, form); /* application/x-www-form-urlencoded */
    curl_easy_setopt(c, CURLOPT_WRITEDATA, f);
    ck_assert_int_eq(curl_easy_perform(c), CURLE_OK);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    fclose(f);
    curl_easy_cleanup(c);
    return status;
}

static long get(const char *path_and_query, char *out, size_t cap)
{
    return send_form(path_and_query, NULL, out, cap);
}

static void assert_json_eq(const char *what, const char *got, const char *want)
{
    json_t *g = json_loads(got, JSON_DECODE_ANY, NULL), *w = json_loads(want, JSON_DECODE_ANY, NULL);
    ck_assert_msg(g && w && json_equal(g, w), "%s: got %s, want %s", what, got, want);
    json_decref(g);
    json_decref(w);
}

/* qs over a batch of lines ("parse <query>" / "stringify <json>"): its answers, one per line. */
static char **qs(char *const *lines, size_t n)
{
    static bool installed;
    if (!installed) {
        ck_assert_int_eq(system("test -d tests/generator/qs/node_modules/qs || npm ci --prefix "
                                "tests/generator/qs --no-audit --no-fund --loglevel=error"),
                         0);
        installed = true;
    }
    char in[] = "/tmp/tb_qs_in_XXXXXX";
    int fd = mkstemp(in);
    ck_assert_int_ge(fd, 0);
    FILE *f = fdopen(fd, "w");
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%s\n", lines[i]);
    fclose(f);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "node tests/generator/qs/qs.js < %s", in);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    char **out = calloc(n, sizeof *out);
    size_t cap = 0;
    for (size_t i = 0; i < n; i++) {
        ssize_t len = getline(&out[i], &cap, p);
        ck_assert_msg(len > 0, "qs answered %zu lines of %zu", i, n);
        out[i][len - 1] = '\0';
        cap = 0;
    }
    ck_assert_int_eq(pclose(p), 0);
    unlink(in);
    return out;
}

/* The query (or form body) tablium writes for a set of parameters (or body members), as the
 * generated client sends them. */
static char *written(json_t *o)
{
    tb_buf u = TB_BUF_INIT;
    char sep = 0;
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v) {
        tb__brackets_write(&u, &sep, k, strlen(k), v);
    }
    tb_buf_putc(&u, '\0');
    ck_assert(!u.oom);
    char *s = strdup(u.data);
    tb_buf_deinit(&u);
    return s;
}

/* A value as qs reads it back: every leaf a string, as a query carries it. */
static json_t *as_text(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        json_t *o = json_object();
        const char *k;
        json_t *x;
        json_object_foreach((json_t *)v, k, x) json_object_set_new(o, k, as_text(x));
        return o;
    }
    case JSON_ARRAY: {
        json_t *a = json_array();
        for (size_t i = 0; i < json_array_size(v); i++)
            json_array_append_new(a, as_text(json_array_get(v, i)));
        return a;
    }
    case JSON_INTEGER: {
        char b[32];
        snprintf(b, sizeof b, "%lld", (long long)json_integer_value(v));
        return json_string(b);
    }
    case JSON_TRUE:
        return json_string("true");
    case JSON_FALSE:
        return json_string("false");
    default:
        return json_copy((json_t *)v);
    }
}

/* ---- tests ---- */

/* The generated client writes the bracket form and the generated server reads every shape back
 * typed: arrays in order (more than ten items: 10 after 9), ranges as an object or an integer,
 * "" choosing the enum branch, nested objects and maps, arrays of objects. */
START_TEST(the_generated_client_and_server_agree_on_every_shape)
{
    for (size_t i = 0; i < NEX; i++) {
        const example *e = &EXAMPLES[i];
        tb_arena *a = tb_arena_new(0);
        tb_ctx ctx;
        tb_ctx_init(&ctx, a, "rid-deep");
        char req[1024] = {0}, out[1024] = {0};
        ck_assert_uint_le(e->op->req_size, sizeof req);
        json_t *j = json_loads(e->params, 0, NULL);
        const tb_op_body *b = e->op->body;
        if (b)
            ck_assert_int_eq(tb_codec_member_decode(b->kind, b->flags & TB_CF_HOLDING, b->sub,
                                                    json_object_get(j, "body"), a, req, b->off,
                                                    b->n_off),
                             0);
        for (size_t k = 0; k < e->op->nparams; k++) {
            const tb_op_param *p = &e->op->params[k];
            json_t *x = json_object_get(j, p->name);
            if (!x)
                continue;
            ck_assert_int_eq(tb_codec_member_decode(p->kind, p->flags & TB_CF_HOLDING, p->sub, x,
                                                    a, req, p->off, p->n_off),
                             0);
            if (!(p->flags & TB_CF_REQUIRED))
                *(bool *)(req + p->has_off) = true;
        }
        tb_error err = TB_ERROR_INIT;
        seen[0] = '\0';
        int rc = tb_op_call(deep_object_client_http(cl), e->op, &ctx, req, out, &err);
        ck_assert_msg(rc == 0, "example %zu: %s", i, err.message);
        ck_assert_int_eq(*(int *)out, 200);
        assert_json_eq(e->path, seen, e->params);
        tb_error_deinit(&err);
        json_decref(j);
        tb_arena_free(a);
    }
}
END_TEST

/* What tablium writes, qs reads as the same value; what qs writes, tablium's server reads as
 * the same typed value. */
START_TEST(qs_and_tablium_read_each_others_queries)
{
    char *lines[2 * NEX];
    for (size_t i = 0; i < NEX; i++) {
        json_t *all = json_loads(EXAMPLES[i].params, 0, NULL);
        json_t *v = EXAMPLES[i].op->body ? json_object_get(all, "body") : all;
        char *q = written(v), *vs = json_dumps(v, JSON_COMPACT);
        lines[i] = malloc(strlen(q) + 8);
        sprintf(lines[i], "parse %s", q);
        lines[NEX + i] = malloc(strlen(vs) + 12);
        sprintf(lines[NEX + i], "stringify %s", vs);
        free(q);
        free(vs);
        json_decref(all);
    }
    char **got = qs(lines, 2 * NEX);
    for (size_t i = 0; i < NEX; i++) {
        const example *e = &EXAMPLES[i];
        json_t *all = json_loads(e->params, 0, NULL);
        json_t *text = as_text(e->op->body ? json_object_get(all, "body") : all);
        char *ws = json_dumps(text, JSON_COMPACT);
        assert_json_eq("qs.parse of what tablium writes", got[i], ws);
        free(ws);
        json_decref(text);
        json_decref(all);

        char path[4096], body[1024];
        snprintf(path, sizeof path, "%s%s%s", e->path, e->op->body ? "" : "?",
                 e->op->body ? "" : got[NEX + i]);
        seen[0] = '\0';
        long st = send_form(path, e->op->body ? got[NEX + i] : NULL, body, sizeof body);
        ck_assert_msg(st == 200, "%s %s: %s", path, got[NEX + i], body);
        assert_json_eq(got[NEX + i], seen, e->params);
    }
    for (size_t i = 0; i < 2 * NEX; i++) {
        free(lines[i]);
        free(got[i]);
    }
    free(got);
}
END_TEST

/* The same with the brackets as Stripe's documentation and Rails write them: unencoded, name[]
 * for the next item. */
START_TEST(raw_brackets_and_empty_indexes)
{
    char body[1024];
    ck_assert_int_eq(get("/charges?when=7&expand[]=a&expand[]=b&created[gte]=1&ids[]=x", body,
                         sizeof body),
                     200);
    assert_json_eq("raw", seen,
                   "{\"when\":7,\"expand\":[\"a\",\"b\"],\"created\":{\"gte\":1},\"ids\":[\"x\"]}");
    /* indexes sort as numbers, gaps closed */
    ck_assert_int_eq(get("/charges?when=1&expand[10]=k&expand[2]=c&expand[9]=j", body, sizeof body),
                     200);
    assert_json_eq("indexes", seen, "{\"when\":1,\"expand\":[\"c\",\"j\",\"k\"]}");
    /* name[] after numbered items takes the next free index; nothing is overwritten */
    ck_assert_int_eq(get("/charges?when=1&expand[1]=b&expand[]=c&expand[0]=a", body, sizeof body),
                     200);
    assert_json_eq("appended", seen, "{\"when\":1,\"expand\":[\"a\",\"b\",\"c\"]}");
    /* bytes that are not UTF-8, in a value and in a key: 400 naming the parameter, rule
       encoding, as in any other parameter; never a 500 */
    ck_assert_int_eq(get("/charges?when=1&expand[0]=%FF", body, sizeof body), 400);
    ck_assert_msg(strstr(body, "\"path\":\"/query/expand\",\"rule\":\"encoding\""), "%s", body);
    ck_assert_int_eq(get("/invoices/upcoming?items[0][price]=p&customer_details[metadata][%FF]=v",
                         body, sizeof body),
                     400);
    ck_assert_msg(strstr(body, "\"path\":\"/query/customer_details\",\"rule\":\"encoding\""),
                  "%s", body);
    /* a form member name that is not UTF-8: 400 (it was a 500: jansson refused the key) */
    long st = send_form("/customers", "email=a&%FF=1", body, sizeof body);
    ck_assert_msg(st == 400 && strstr(body, "\"path\":\"/body\",\"rule\":\"encoding\""),
                  "a form key that is not UTF-8: %ld %s", st, body);
    ck_assert_int_eq(send_form("/customers", "email=a&metadata[%FE]=2", body, sizeof body), 400);
    /* a byte inside a percent-escape of a bracket name: a malformed escape, 400 */
    st = send_form("/customers", "email=a&metadata%5\xff" "Bk%5D=1", body, sizeof body);
    ck_assert_msg(st == 400, "a broken escape in a bracket name: %ld %s", st, body);
}
END_TEST

/* Malformed bracket forms and wrong shapes: 400 naming the parameter and the rule. */
START_TEST(malformed_forms_are_refused_by_name_and_rule)
{
    static const struct {
        const char *query, *want;
    } cases[] = {
        {"/charges?when=5&when[gt]=1", "\"rule\":\"style\""},
        {"/charges?when[gt]=1&when=5", "\"rule\":\"style\""},
        {"/charges?when=1&created[gt=1", "\"rule\":\"style\""},
        {"/charges?when=1&expand[a]=x", "\"path\":\"/query/expand\",\"rule\":\"type\""},
        {"/charges?when[gt]=x", "\"path\":\"/query/when"},
        {"/charges?when[gt]=1&when[since]=2", "\"path\":\"/query/when"},
        {"/charges?when=1&created[a][b][c][d][e][f][g][h][i][j][k][l][m][n][o][p][q]=1",
         "nested deeper"},
        {"/charges?expand[0]=a", "\"rule\":\"required\""},
        {"/refunds?created[gtee]=5",
         "\"path\":\"/query/created/gtee\",\"rule\":\"additionalProperties\""},

        {"/customers email=a&metadata=x&metadata[k]=v", "\"path\":\"/body/metadata\",\"rule\":\"style\""},
        {"/customers email=a&address[city=x", "\"path\":\"/body/address\",\"rule\":\"style\""},
        {"/customers email=a&tax_ids[0][type]=vat", "\"path\":\"/body/tax_ids/0/value\",\"rule\":\"required\""},
        {"/customers email=a&expand[x]=a", "\"path\":\"/body/expand\",\"rule\":\"type\""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char body[2048], path[256];
        const char *form = strchr(cases[i].query, ' ');
        snprintf(path, sizeof path, "%.*s", (int)(form ? form - cases[i].query : 255), cases[i].query);
        long st = send_form(path, form ? form + 1 : NULL, body, sizeof body);
        ck_assert_msg(st == 400 && strstr(body, cases[i].want), "%s: %ld %s (want %s)",
                      cases[i].query, st, body, cases[i].want);
    }
}
END_TEST

/* A member no property names, where additionalProperties allows it: accepted, as before. */
START_TEST(an_open_flat_deep_object_takes_other_members)
{
    char body[2048];
    long st = get("/refunds?created[gte]=1&filter[status]=x&filter[other]=y", body, sizeof body);
    ck_assert_msg(st == 200, "%ld %s", st, body);
}
END_TEST

int main(void)
{
    curl_global_init(CURL_GLOBAL_ALL);
    Suite *s = suite_create("deep_object");
    TCase *tc = tcase_create("brackets");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, the_generated_client_and_server_agree_on_every_shape);
    tcase_add_test(tc, qs_and_tablium_read_each_others_queries);
    tcase_add_test(tc, raw_brackets_and_empty_indexes);
    tcase_add_test(tc, malformed_forms_are_refused_by_name_and_rule);
    tcase_add_test(tc, an_open_flat_deep_object_takes_other_members);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    curl_global_cleanup();
    return failed ? 1 : 0;
}
