/* Unit tests of runtime/client: the libcurl client against a raw libmicrohttpd server. */
#include "tablium/client.h"
#include "tablium/token.h"

#include <arpa/inet.h>
#include <check.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* ---- the test server ----
 * /echo     200 {"method","url","body","headers":{lower-cased name: value}} + X-Echo-Test: yes
 * /missing  404 {"error":{"code":"not_found"}}
 * /sleep    200 after 2 s (cut short when the server stops)
 * /big      200, 2 MiB with Content-Length
 * /big-chunked  200, 2 MiB chunked (no Content-Length)
 */

#define BIG_SIZE ((size_t)2 << 20)

static struct MHD_Daemon *srv;
static unsigned short srv_port;
static char srv_url[64];
static atomic_int srv_connections;
static atomic_int srv_requests;
static atomic_int srv_stopping;
static atomic_int token_fail;     /* /oauth/token answers 503 while set */
static atomic_int token_requests; /* /oauth/token answers tok-<n> */
static char *big_body;
/* the last token request the mock saw: {url, method, body, headers} */
static pthread_mutex_t token_seen_lock = PTHREAD_MUTEX_INITIALIZER;
static json_t *token_seen;

typedef struct req_state {
    char *body;
    size_t len;
} req_state;

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_ctx,
                          enum MHD_ConnectionNotificationCode code)
{
    (void)cls;
    (void)conn;
    (void)socket_ctx;
    if (code == MHD_CONNECTION_NOTIFY_STARTED)
        atomic_fetch_add(&srv_connections, 1);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    (void)toe;
    req_state *st = *con_cls;
    if (st) {
        free(st->body);
        free(st);
    }
    *con_cls = NULL;
}

static enum MHD_Result add_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                  const char *value)
{
    (void)kind;
    char name[128];
    size_t i = 0;
    for (; key[i] && i < sizeof name - 1; i++)
        name[i] = (char)((key[i] >= 'A' && key[i] <= 'Z') ? key[i] + 32 : key[i]);
    name[i] = '\0';
    json_object_set_new(cls, name, json_string(value ? value : ""));
    return MHD_YES;
}

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, struct MHD_Response *r)
{
    MHD_add_response_header(r, "Content-Type", "application/json");
    enum MHD_Result ret = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ret;
}

static ssize_t big_chunk(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)cls;
    if (pos >= BIG_SIZE)
        return MHD_CONTENT_READER_END_OF_STREAM;
    size_t n = BIG_SIZE - (size_t)pos < max ? BIG_SIZE - (size_t)pos : max;
    memset(buf, 'x', n);
    return (ssize_t)n;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    (void)cls;
    (void)version;
    req_state *st = *con_cls;
    if (!st) {
        /* Answering in this first, headers-only call makes MHD close the connection. */
        st = calloc(1, sizeof *st);
        if (!st)
            return MHD_NO;
        *con_cls = st;
        atomic_fetch_add(&srv_requests, 1);
        return MHD_YES;
    }
    if (*upload_data_size) {
        char *grown = realloc(st->body, st->len + *upload_data_size + 1);
        if (!grown)
            return MHD_NO;
        st->body = grown;
        memcpy(st->body + st->len, upload_data, *upload_data_size);
        st->len += *upload_data_size;
        st->body[st->len] = '\0';
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (strcmp(url, "/echo") == 0) {
        json_t *headers = json_object();
        MHD_get_connection_values(conn, MHD_HEADER_KIND, add_header, headers);
        json_t *j = json_pack("{s:s, s:s, s:s%, s:o}", "method", method, "url", url, "body",
                              st->body ? st->body : "", st->len, "headers", headers);
        char *text = json_dumps(j, JSON_COMPACT);
        json_decref(j);
        struct MHD_Response *r =
            MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
        MHD_add_response_header(r, "X-Echo-Test", "yes");
        return reply(conn, MHD_HTTP_OK, r);
    }
    size_t ul = strlen(url);
    if (ul >= 6 && strcmp(url + ul - 6, "/token") == 0) { /* /oauth/token, Keycloak's ... */
        json_t *seen = json_pack("{s:s, s:s, s:s%}", "url", url, "method", method, "body",
                                 st->body ? st->body : "", st->len);
        json_t *headers = json_object();
        MHD_get_connection_values(conn, MHD_HEADER_KIND, add_header, headers);
        json_object_set_new(seen, "headers", headers);
        pthread_mutex_lock(&token_seen_lock);
        json_decref(token_seen);
        token_seen = seen;
        pthread_mutex_unlock(&token_seen_lock);
        if (atomic_load(&token_fail))
            return reply(conn, MHD_HTTP_SERVICE_UNAVAILABLE,
                         MHD_create_response_from_buffer(2, (void *)"{}",
                                                         MHD_RESPMEM_PERSISTENT));
        if (strstr(url, "/slow/"))
            for (int i = 0; i < 40 && !atomic_load(&srv_stopping); i++)
                nanosleep(&(struct timespec){0, 50 * 1000 * 1000}, NULL);
        if (strstr(url, "/refuse/")) {
            static const char e[] = "{\"error\":\"invalid_client\",\"error_description\":"
                                    "\"unknown client\"}";
            return reply(conn, MHD_HTTP_UNAUTHORIZED,
                         MHD_create_response_from_buffer(sizeof e - 1, (void *)e,
                                                         MHD_RESPMEM_PERSISTENT));
        }
        if (atomic_load(&token_fail))
            return reply(conn, MHD_HTTP_SERVICE_UNAVAILABLE,
                         MHD_create_response_from_buffer(2, (void *)"{}",
                                                         MHD_RESPMEM_PERSISTENT));
        char *text = malloc(96);
        if (!text)
            return MHD_NO;
        snprintf(text, 96, "{\"access_token\":\"tok-%d\",\"expires_in\":3600}",
                 atomic_fetch_add(&token_requests, 1) + 1);
        return reply(conn, MHD_HTTP_OK,
                     MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE));
    }
    if (strcmp(url, "/revoked") == 0)
        return reply(conn, MHD_HTTP_UNAUTHORIZED,
                     MHD_create_response_from_buffer(2, (void *)"{}", MHD_RESPMEM_PERSISTENT));
    if (strcmp(url, "/missing") == 0) {
        static const char body[] = "{\"error\":{\"code\":\"not_found\"}}";
        return reply(
            conn, MHD_HTTP_NOT_FOUND,
            MHD_create_response_from_buffer(sizeof body - 1, (void *)body, MHD_RESPMEM_PERSISTENT));
    }
    if (strcmp(url, "/sleep") == 0) {
        for (int i = 0; i < 40 && !atomic_load(&srv_stopping); i++)
            nanosleep(&(struct timespec){0, 50 * 1000 * 1000}, NULL);
        return reply(conn, MHD_HTTP_OK,
                     MHD_create_response_from_buffer(2, (void *)"{}", MHD_RESPMEM_PERSISTENT));
    }
    if (strcmp(url, "/big") == 0)
        return reply(conn, MHD_HTTP_OK,
                     MHD_create_response_from_buffer(BIG_SIZE, big_body, MHD_RESPMEM_PERSISTENT));
    if (strcmp(url, "/big-chunked") == 0)
        return reply(
            conn, MHD_HTTP_OK,
            MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 64 * 1024, big_chunk, NULL, NULL));
    return reply(conn, MHD_HTTP_NOT_FOUND,
                 MHD_create_response_from_buffer(2, (void *)"{}", MHD_RESPMEM_PERSISTENT));
}

static void server_start(void)
{
    struct sockaddr_in addr = {0};
    addr.sin_family = AF_INET;
    addr.sin_port = 0;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    atomic_store(&srv_connections, 0);
    atomic_store(&srv_requests, 0);
    atomic_store(&srv_stopping, 0);
    srv = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION, 0, NULL,
                           NULL, on_request, NULL, MHD_OPTION_SOCK_ADDR, &addr,
                           MHD_OPTION_NOTIFY_CONNECTION, on_connection, NULL,
                           MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL, MHD_OPTION_END);
    ck_assert_ptr_nonnull(srv);
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(srv, MHD_DAEMON_INFO_BIND_PORT);
    ck_assert_ptr_nonnull(info);
    srv_port = info->port;
    snprintf(srv_url, sizeof srv_url, "http://127.0.0.1:%u", (unsigned)srv_port);
}

static void server_stop(void)
{
    atomic_store(&srv_stopping, 1);
    MHD_stop_daemon(srv);
    srv = NULL;
}

/* ---- helpers ---- */

static tb_client *client_new(const tb_client_opts *opts)
{
    tb_error err = TB_ERROR_INIT;
    tb_client *c = tb_client_new(srv_url, opts, &err);
    ck_assert_msg(c != NULL, "tb_client_new: %s", err.message);
    tb_error_deinit(&err);
    return c;
}

static tb_client_call call_of(const char *method, const char *path, const char *body)
{
    tb_client_call call = {0};
    call.method = method;
    call.path = path;
    call.body = body;
    call.body_len = body ? strlen(body) : 0;
    return call;
}

/* The /echo reply as JSON; caller owns, json_decref. */
static json_t *echo_json(const tb_client_res *res)
{
    ck_assert_int_eq(res->status, 200);
    json_t *j = json_loadb(res->body, res->body_len, 0, NULL);
    ck_assert_ptr_nonnull(j);
    return j;
}

static const char *echo_header(json_t *echo, const char *lower_name)
{
    return json_string_value(json_object_get(json_object_get(echo, "headers"), lower_name));
}

/* ---- tests ---- */

START_TEST(get_round_trip_returns_status_body_and_request_headers)
{
    tb_client *c = client_new(NULL);
    tb_arena *a = tb_arena_new(0);
    tb_ctx ctx;
    tb_ctx_init(&ctx, a, "rid-get-1");
    tb_client_call call = call_of("GET", "/echo?x=1", NULL);
    tb_client_res res;
    tb_error err = TB_ERROR_INIT;
    ck_assert_int_eq(tb_client_send(c, &ctx, &call, &res, &err), 0);
    ck_assert_int_eq(err.code, 0);
    json_t *j = echo_json(&res);
    ck_assert_str_eq(json_string_value(json_object_get(j, "method")), "GET");
    ck_assert_str_eq(json_string_value(json_object_get(j, "url")), "/echo");
    ck_assert_str_eq(json_string_value(json_object_get(j, "body")), "");
    ck_assert_str_eq(echo_header(j, "accept"), "application/json");
    ck_assert_str_eq(echo_header(j, "user-agent"), "tablium/0.1.0");
    ck_assert_ptr_null(echo_header(j, "content-type"));
    ck_assert_ptr_null(echo_header(j, "expect"));
    ck_assert(res.elapsed_ms >= 0.0);
    ck_assert_uint_eq(res.body[res.body_len], '\0');
    json_decref(j);
    tb_error_deinit(&err);
    tb_arena_free(a);
    tb_client_free(c);
}
END_TEST

START_TEST(post_round_trip_sends_json_body_with_content_type)
{
    tb_client *c = client_new(NULL);
    tb_arena *a = tb_arena_new(0);
    tb_ctx ctx;
    tb_ctx_init(&ctx, a, "rid-post-1");
    const char *body = "{\"amount\":42,\"note\":\"h\\u00e9\"}";
    tb_client_call call = call_of("POST", "/echo", body);
    tb_client_res res;
    ck_assert_int_eq(tb_client_send(c, &ctx, &call, &res, NULL), 0);
    json_t *j = echo_json(&res);
    ck_assert_str_eq(json_string_value(json_object_get(j, "method")), "POST");
    ck_assert_str_eq(json_string_value(json_object_get(j, "body")), body);
    ck_assert_str_eq(echo_header(j, "content-type"), "application/json");
    json_decref(j);

    /* Over 1 MiB curl would ask for "100 Continue" first; the client turns that off. */
    size_t n = (size_t)3 << 19;
    char *large = malloc(n + 1);
    ck_assert_ptr_nonnull(large);
    memset(large, 'a', n);
    large[0] = '"';
    large[n - 1] = '"';
    large[n] = '\0';
    call = call_of("POST", "/echo", large);
    ck_assert_int_eq(tb_client_send(c, &ctx, &call, &res, NULL), 0);
    j = echo_json(&res);
    ck_assert_uint_eq(strlen(json_string_value(json_object_get(j, "body"))), n);
    ck_assert_ptr_null(echo_header(j, "expect"));
    json_decref(j);
    free(large);
    tb_arena_free(a);
    tb_client_free(c);
}
END_TEST

START_TEST(methods_are_reset_between_calls_on_a_reused_handle)
{
    tb_client *c = client_new(NULL);
    tb_arena *a = tb_arena_new(0);
    tb_ctx ctx;
    tb_ctx_init(&ctx, a, NULL);
    struct {
        const char *method, *body, *want_body;
    } seq[] = {
        {"POST", "{\"a\":1}", "{\"a\":1}"},
        {"GET", NULL, ""},
        {"DELETE", NULL, ""},
        {"PUT", "[1,2]", "[1,2]"},
        {"GET", NULL, ""},
        {"PATCH", "{}", "{}"},
        {"POST", NULL, ""},
        {"DELETE", "{\"why\":1}", "{\"why\":1}"},
        {"GET", NULL, ""},
    };
    for (size_t i = 0; i < sizeof seq / sizeof seq[0]; i++) {
        tb_client_call call = call_of(seq[i].method, "/echo", seq[i].body);
        tb_client_res res;
        ck_assert_int_eq(tb_client_send(c, &ctx, &call, &res, NULL), 0);
        json_t *j = echo_json(&res);
        ck_assert_str_eq(json_string_value(json_object_get(j, "method")), seq[i].method);
        ck_assert_str_eq(json_string_value(json_object_get(j, "body")), seq[i].want_body);
        /* curl's form-urlencoded default never leaks into a bodiless request */
        if (!seq[i].body)
            ck_assert_ptr_null(echo_header(j, "content-type"));
        json_decref(j);
        tb_arena_reset(a);
        ctx.request_id = NULL;
    }
    tb_client_call head = call_of("HEAD", "/echo", NULL);
    tb_client_res res;
    ck_assert_int_eq(tb_client_send(c, &ctx, &head, &res, NULL), 0);
    ck_assert_int_eq(res.status, 200);
    ck_assert_uint_eq(res.body_len, 0);
    ck_assert_str_eq(res.body, "");
    tb_client_call get = call_of("GET", "/echo", NULL);
    ck_assert_int_eq(tb_client_send(c, &ctx, &get, &res, NULL), 0);
    ck_assert_uint_gt(res.body_len, 0); /* the HEAD did not stick */
    tb_arena_free(a);
    tb_client_free(c);
}
END_TEST

START_TEST(non_2xx_is_not_an_error_and_keeps_the_body)
{
    tb_client *c = client_new(NULL);
    tb_arena *a = tb_arena_new(0);
    tb_ctx ctx;
    tb_ctx_init(&ctx, a, NULL);
    tb_client_call call = call_of("GET", "/missing", NULL);
    tb_client_res res;
    tb_error err = TB_ERROR_INIT;
    ck_assert_int_eq(tb_client_send(c, &ctx, &call, &res, &err), 0);
    ck_assert_int_eq(err.code, 0);
    ck_assert_int_eq(res.status, 404);
    ck_assert_str_eq(res.body, "{\"error\":{\"code\":\"not_found\"}}");
    ck_assert_uint_eq(res.body_len, strlen(res.body));
    tb_error_deinit(&err);
    tb_arena_free(a);
    tb_client_free(c);
}
END_TEST

START_TEST(request_id_is_sent_from_ctx_or_generated_and_stored_in_ctx)
{
    tb_client *c = client_new(NULL);
    tb_arena *a = tb_arena_new(0);
    tb_ctx ctx;
    tb_ctx_init(&ctx, a, "caller-rid-123");
    tb_client_call call = call_of("GET", "/echo", NULL);
    tb_client_res res;
    ck_assert_int_eq(tb_client_send(c, &ctx, &call, &res, NULL), 0);
    json_t *j = echo_json(&res);
    ck_assert_str_eq(echo_header(j, "x-request-id"), "caller-rid-123");
    ck_assert_str_eq(ctx.request_id, "caller-rid-123");
    json_decref(j);

    tb_ctx_init(&ctx, a, NULL);
    ck_assert_int_eq(tb_client_send(c, &ctx, &call, &res, NULL), 0);
    ck_assert_ptr_nonnull(ctx.request_id);
    ck_assert_uint_eq(strlen(ctx.request_id), 32);
    ck_assert_uint_eq(strspn(ctx.request_id, "0123456789abcdef"), 32);
    j = echo_json(&res);
    ck_assert_str_eq(echo_header(j, "x-request-id"), ctx.request_id);
    json_decref(j);
    tb_arena_free(a);
    tb_client_free(c);
}
END_TEST

START_TEST(extra_headers_arrive_and_override_the_defaults)
{
    tb_client *c = client_new(NULL);
    tb_arena *a = tb_arena_new(0);
    tb_ctx ctx;
    tb_ctx_init(&ctx, a, "rid");
    tb_client_call call = call_of("POST", "/echo", "{}");
    ck_assert_int_eq(tb_client_call_header(&call, a, "X-Tenant", "acme"), 0);
    ck_assert_int_eq(tb_client_call_header(&call, a, "Idempotency-Key", "k-1"), 0);
    ck_assert_int_eq(tb_client_call_header(&call, a, "X-Empty", ""), 0);
    ck_assert_int_eq(tb_client_call_header(&call, a, "Accept", "application/problem+json"), 0);
    call.headers[call.n_headers++] = "X-Raw: literal line";
    tb_client_res res;
    ck_assert_int_eq(tb_client_send(c, &ctx, &call, &res, NULL), 0);
    json_t *j = echo_json(&res);
    ck_assert_str_eq(echo_header(j, "x-tenant"), "acme");
    ck_assert_str_eq(echo_header(j, "idempotency-key"), "k-1");
    ck_assert_str_eq(echo_header(j, "x-empty"), "");
    ck_assert_str_eq(echo_header(j, "accept"), "application/problem+json");
    ck_assert_str_eq(echo_header(j, "x-raw"), "literal line");
    ck_assert_str_eq(echo_header(j, "content-type"), "application/json");
    json_decref(j);
    tb_arena_free(a);
    tb_client_free(c);
}
END_TEST

START_TEST(call_header_refuses_injection_bad_names_and_overflow)
{
    tb_arena *a = tb_arena_new(0);
    tb_client_call call = call_of("GET", "/echo", NULL);
    ck_assert_int_eq(tb_client_call_header(&call, a, "X-A", "v\r\nX-Evil: 1"), TB_EINVAL);
    ck_assert_int_eq(tb_client_call_header(&call, a, "X A", "v"), TB_EINVAL);
    ck_assert_int_eq(tb_client_call_header(&call, a, "X:A", "v"), TB_EINVAL);
    ck_assert_int_eq(tb_client_call_header(&call, a, "", "v"), TB_EINVAL);
    /* framing is libcurl's: a Content-Length of its own made a GET wait for a body */
    ck_assert_int_eq(tb_client_call_header(&call, a, "content-length", "1"), TB_EINVAL);
    ck_assert_int_eq(tb_client_call_header(&call, a, "Transfer-Encoding", "chunked"), TB_EINVAL);
    ck_assert_int_eq(tb_client_call_header(&call, a, "Host", "evil.example"), TB_EINVAL);
    ck_assert_int_eq(tb_client_call_header(&call, a, "Connection", "close"), TB_EINVAL);
    ck_assert_uint_eq(call.n_headers, 0);
    for (int i = 0; i < 16; i++)
        ck_assert_int_eq(tb_client_call_header(&call, a, "X-N", "v"), 0);
    ck_assert_int_eq(tb_client_call_header(&call, a, "X-N", "v"), TB_EINVAL);
    ck_assert_uint_eq(call.n_headers, 16);
    ck_assert_str_eq(call.headers[0], "X-N: v");
    tb_arena_free(a);
}
END_TEST

START_TEST(response_headers_are_readable_case_insensitively)
{
    tb_client *c = client_new(NULL);
    tb_arena *a = tb_arena_new(0);
    tb_ctx ctx;
    tb_ctx_init(&ctx, a, NULL);
    tb_client_call call = call_of("GET", "/echo", NULL);
    tb_client_res res;
    ck_assert_int_eq(tb_client_send(c, &ctx, &call, &res, NULL), 0);
    ck_assert_uint_gt(res.n_headers, 1);
    ck_assert_str_eq(tb_client_res_header(&res, "X-Echo-Test"), "yes");
    ck_assert_str_eq(tb_client_res_header(&res, "x-echo-test"), "yes");
    ck_assert_str_eq(tb_client_res_header(&res, "CONTENT-TYPE"), "application/json");
    ck_assert_ptr_null(tb_client_res_header(&res, "X-Not-There"));
    ck_assert_ptr_null(tb_client_res_header(&res, NULL));
    bool found = false; /* names as sent, values trimmed */
    for (size_t i = 0; i < res.n_headers; i++)
        if (strcmp(res.headers[i][0], "X-Echo-Test") == 0)
            found = strcmp(res.headers[i][1], "yes") == 0;
    ck_assert(found);
    tb_arena_free(a);
    tb_client_free(c);
}
END_TEST

START_TEST(keep_alive_20_sequential_calls_use_one_connection)
{
    tb_client *c = client_new(NULL);
    tb_arena *a = tb_arena_new(0);
    tb_ctx ctx;
    int before = atomic_load(&srv_connections);
    for (int i = 0; i < 20; i++) {
        tb_ctx_init(&ctx, a, NULL);
        tb_client_call call = call_of(i % 2 ? "POST" : "GET", "/echo", i % 2 ? "{}" : NULL);
        tb_client_res res;
        ck_assert_int_eq(tb_client_send(c, &ctx, &call, &res, NULL), 0);
        ck_assert_int_eq(res.status, 200);
        tb_arena_reset(a);
    }
    int used = atomic_load(&srv_connections) - before;
    ck_assert_int_eq(used, 1);
    tb_arena_free(a);
    tb_client_free(c);
}
END_TEST

typedef struct worker {
    tb_client *c;
    int id;
    int ok;
} worker;

static void *worker_run(void *p)
{
    worker *w = p;
    tb_arena *a = tb_arena_new(0);
    char body[64];
    for (int i = 0; i < 100; i++) {
        tb_ctx ctx;
        tb_ctx_init(&ctx, a, NULL);
        snprintf(body, sizeof body, "{\"w\":%d,\"i\":%d}", w->id, i);
        tb_client_call call = call_of(i % 3 ? "GET" : "POST", "/echo", i % 3 ? NULL : body);
        tb_client_res res;
        if (tb_client_send(w->c, &ctx, &call, &res, NULL) == 0 && res.status == 200) {
            json_t *j = json_loadb(res.body, res.body_len, 0, NULL);
            const char *got = json_string_value(json_object_get(j, "body"));
            if (got && strcmp(got, call.body ? body : "") == 0)
                w->ok++;
            json_decref(j);
        }
        tb_arena_reset(a);
    }
    tb_arena_free(a);
    return NULL;
}

START_TEST(concurrent_8_threads_x_100_calls_succeed_with_bounded_connections)
{
    tb_client *c = client_new(NULL);
    int before = atomic_load(&srv_connections);
    worker w[8];
    pthread_t t[8];
    for (int i = 0; i < 8; i++) {
        w[i] = (worker){c, i, 0};
        ck_assert_int_eq(pthread_create(&t[i], NULL, worker_run, &w[i]), 0);
    }
    for (int i = 0; i < 8; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < 8; i++)
        ck_assert_int_eq(w[i].ok, 100);
    int used = atomic_load(&srv_connections) - before;
    ck_assert_int_ge(used, 1);
    ck_assert_int_le(used, 10);
    tb_client_free(c);
}
END_TEST

START_TEST(timeout_against_slow_route_is_etimedout)
{
    tb_client_opts opts = TB_CLIENT_OPTS_INIT;
    opts.timeout_ms = 300;
    tb_client *c = client_new(&opts);
    tb_arena *a = tb_arena_new(0);
    tb_ctx ctx;
    tb_ctx_init(&ctx, a, NULL);
    tb_client_call call = call_of("GET", "/sleep", NULL);
    tb_client_res res;
    tb_error err = TB_ERROR_INIT;
    ck_assert_int_eq(tb_client_send(c, &ctx, &call, &res, &err), TB_ETIMEDOUT);
    ck_assert_int_eq(err.code, TB_ETIMEDOUT);
    ck_assert_ptr_nonnull(strstr(err.message, "/sleep"));
    ck_assert_int_eq(res.status, 0);
    ck_assert_str_eq(res.body, "");
    /* the handle is usable again afterwards */
    call = call_of("GET", "/echo", NULL);
    ck_assert_int_eq(tb_client_send(c, &ctx, &call, &res, &err), 0);
    ck_assert_int_eq(res.status, 200);
    tb_error_deinit(&err);
    tb_arena_free(a);
    tb_client_free(c);
}
END_TEST

START_TEST(closed_port_is_econn_and_message_names_method_and_url)
{
    /* a port that was free a moment ago and has nobody listening */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {0};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&addr, sizeof addr), 0);
    socklen_t alen = sizeof addr;
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&addr, &alen), 0);
    close(fd);
    char base[64], want[96];
    snprintf(base, sizeof base, "http://127.0.0.1:%u", (unsigned)ntohs(addr.sin_port));
    snprintf(want, sizeof want, "POST %s/things", base);

    tb_error err = TB_ERROR_INIT;
    tb_client *c = tb_client_new(base, NULL, &err);
    ck_assert_ptr_nonnull(c);
    tb_arena *a = tb_arena_new(0);
    tb_ctx ctx;
    tb_ctx_init(&ctx, a, NULL);
    tb_client_call call = call_of("POST", "/things", "{}");
    tb_client_res res;
    ck_assert_int_eq(tb_client_send(c, &ctx, &call, &res, &err), TB_ECONN);
    ck_assert_int_eq(err.code, TB_ECONN);
    ck_assert_msg(strstr(err.message, want) != NULL, "message: %s", err.message);
    ck_assert_msg(strlen(err.message) > strlen(want) + 4, "no curl text: %s", err.message);
    tb_error_deinit(&err);
    tb_arena_free(a);
    tb_client_free(c);
}
END_TEST

START_TEST(max_response_1mb_refuses_2mb_body_with_etoobig)
{
    tb_client_opts opts = TB_CLIENT_OPTS_INIT;
    opts.max_response = (size_t)1 << 20;
    tb_client *c = client_new(&opts);
    tb_arena *a = tb_arena_new(0);
    tb_ctx ctx;
    tb_ctx_init(&ctx, a, NULL);
    tb_client_res res;
    tb_error err = TB_ERROR_INIT;
    const char *paths[] = {"/big", "/big-chunked"}; /* declared length, then streamed */
    for (int i = 0; i < 2; i++) {
        tb_client_call call = call_of("GET", paths[i], NULL);
        ck_assert_int_eq(tb_client_send(c, &ctx, &call, &res, &err), TB_ETOOBIG);
        ck_assert_int_eq(err.code, TB_ETOOBIG);
        ck_assert_ptr_nonnull(strstr(err.message, paths[i]));
        ck_assert_str_eq(res.body, "");
    }
    /* HEAD announces the 2 MiB length but carries no body: not too big */
    tb_client_call head = call_of("HEAD", "/big", NULL);
    ck_assert_int_eq(tb_client_send(c, &ctx, &head, &res, &err), 0);
    ck_assert_int_eq(res.status, 200);
    ck_assert_uint_eq(res.body_len, 0);
    tb_client_free(c);

    /* with the default 8 MiB bound the same body arrives whole */
    c = client_new(NULL);
    for (int i = 0; i < 2; i++) {
        tb_client_call call = call_of("GET", paths[i], NULL);
        ck_assert_int_eq(tb_client_send(c, &ctx, &call, &res, &err), 0);
        ck_assert_uint_eq(res.body_len, BIG_SIZE);
        ck_assert(res.body[0] == 'x' && res.body[BIG_SIZE - 1] == 'x');
        ck_assert(res.body[BIG_SIZE] == '\0');
    }
    tb_client_free(c);
    tb_error_deinit(&err);
    tb_arena_free(a);
}
END_TEST

/* Hooks record their calls into a shared log. */
typedef struct hook_rec {
    char name;
    int refuse; /* before returns this */
    int after_rc;
    int after_calls;
} hook_rec;

static char hook_log[64];

static void log_add(char who, char what)
{
    size_t n = strlen(hook_log);
    if (n + 2 < sizeof hook_log) {
        hook_log[n] = who;
        hook_log[n + 1] = what;
        hook_log[n + 2] = '\0';
    }
}

static int rec_before(void *self, tb_ctx *ctx, tb_client_call *call)
{
    hook_rec *h = self;
    log_add(h->name, 'b');
    if (h->refuse)
        return h->refuse;
    char value[2] = {h->name, '\0'};
    char name[16];
    snprintf(name, sizeof name, "X-Hook-%c", h->name);
    return tb_client_call_header(call, ctx->arena, name, value);
}

static void rec_after(void *self, tb_ctx *ctx, const tb_client_call *call, int rc,
                      const tb_client_res *res)
{
    (void)ctx;
    (void)call;
    hook_rec *h = self;
    log_add(h->name, 'a');
    h->after_rc = rc;
    h->after_calls++;
    ck_assert_ptr_nonnull(res);
}

START_TEST(before_hooks_add_headers_and_after_hooks_run_in_reverse)
{
    hook_rec ra = {'A', 0, 99, 0}, rb = {'B', 0, 99, 0};
    tb_client_hook hooks[] = {{"a", rec_before, rec_after, &ra}, {"b", rec_before, rec_after, &rb}};
    tb_client_opts opts = TB_CLIENT_OPTS_INIT;
    opts.hooks = hooks;
    opts.n_hooks = 2;
    tb_client *c = client_new(&opts);
    tb_arena *a = tb_arena_new(0);
    tb_ctx ctx;
    tb_ctx_init(&ctx, a, NULL);
    tb_client_call call = call_of("GET", "/echo", NULL);
    tb_client_res res;
    hook_log[0] = '\0';
    ck_assert_int_eq(tb_client_send(c, &ctx, &call, &res, NULL), 0);
    ck_assert_str_eq(hook_log, "AbBbBaAa");
    ck_assert_int_eq(ra.after_rc, 0);
    ck_assert_int_eq(rb.after_rc, 0);
    json_t *j = echo_json(&res);
    ck_assert_str_eq(echo_header(j, "x-hook-a"), "A");
    ck_assert_str_eq(echo_header(j, "x-hook-b"), "B");
    json_decref(j);
    tb_arena_free(a);
    tb_client_free(c);
}
END_TEST

/* The service token (tablium/token.h) from client credentials at AUTH_SERVICE_URL/oauth/token:
 * fails closed (a call without it was sent unauthenticated), and a 401 to it fetches another. */
static const char *sent_authorization(tb_client *c, tb_ctx *ctx, int *rc)
{
    tb_client_call call = call_of("GET", "/echo", NULL);
    tb_client_res res;
    *rc = tb_client_send(c, ctx, &call, &res, NULL);
    if (*rc)
        return NULL;
    json_t *j = echo_json(&res);
    const char *v = echo_header(j, "authorization");
    const char *out = v ? tb_arena_strdup(ctx->arena, v) : NULL;
    json_decref(j);
    return out;
}

START_TEST(the_service_token_fails_closed_and_a_401_fetches_another)
{
    setenv("AUTH_SERVICE_URL", srv_url, 1);
    setenv("TB_SERVICE_CLIENT_ID", "game-engine", 1);
    setenv("TB_SERVICE_CLIENT_SECRET", "s3cret", 1);
    atomic_store(&token_fail, 1);
    atomic_store(&token_requests, 0);
    ck_assert_int_eq(tb_service_token_init("game-engine", NULL), 0); /* first fetch: 503 */
    tb_client_opts opts = TB_CLIENT_OPTS_INIT;
    opts.hooks = tb_service_token_hook();
    opts.n_hooks = 1;
    ck_assert_ptr_nonnull(opts.hooks);
    tb_client *c = client_new(&opts);
    tb_arena *a = tb_arena_new(0);
    tb_ctx ctx;
    tb_ctx_init(&ctx, a, NULL);
    int rc;
    int before = atomic_load(&srv_requests);
    ck_assert_ptr_null(sent_authorization(c, &ctx, &rc));
    ck_assert_int_eq(rc, TB_ESTATE); /* refused: it went out without credentials */
    ck_assert_int_eq(atomic_load(&srv_requests), before); /* nothing sent */
    atomic_store(&token_fail, 0);
    usleep(1100 * 1000); /* a failed fetch holds the next one back a second */
    const char *auth = sent_authorization(c, &ctx, &rc);
    ck_assert_int_eq(rc, 0);
    ck_assert_str_eq(auth, "Bearer tok-1");
    ck_assert_str_eq(sent_authorization(c, &ctx, &rc), "Bearer tok-1"); /* kept */
    /* the upstream refuses it (revoked, its key rotated out): the next call gets another */
    tb_client_call call = call_of("GET", "/revoked", NULL);
    tb_client_res res;
    ck_assert_int_eq(tb_client_send(c, &ctx, &call, &res, NULL), 0);
    ck_assert_int_eq(res.status, 401);
    usleep(1100 * 1000);
    ck_assert_str_eq(sent_authorization(c, &ctx, &rc), "Bearer tok-2");
    ck_assert_int_eq(atomic_load(&token_requests), 2);
    tb_client_free(c);
    tb_arena_free(a);
    tb_service_token_shutdown();
    unsetenv("AUTH_SERVICE_URL");
    unsetenv("TB_SERVICE_CLIENT_ID");
    unsetenv("TB_SERVICE_CLIENT_SECRET");
}
END_TEST

/* The last token request's member `what` ("body", "url") or header, copied into the arena. */
static const char *token_request(tb_arena *a, const char *what, const char *header)
{
    pthread_mutex_lock(&token_seen_lock);
    const json_t *j = header ? json_object_get(json_object_get(token_seen, "headers"), header)
                             : json_object_get(token_seen, what);
    const char *v = json_string_value(j);
    const char *out = v ? tb_arena_strdup(a, v) : NULL;
    pthread_mutex_unlock(&token_seen_lock);
    return out;
}

static void token_env_clear(void)
{
    tb_service_token_shutdown();
    unsetenv("AUTH_SERVICE_URL");
    unsetenv("TB_SERVICE_TOKEN_URL");
    unsetenv("TB_SERVICE_TOKEN_AUTH");
    unsetenv("TB_SERVICE_TOKEN_AUDIENCE");
    unsetenv("TB_SERVICE_SCOPE");
    unsetenv("TB_SERVICE_CLIENT_ID");
    unsetenv("TB_SERVICE_CLIENT_SECRET");
}

/* The token request is RFC 6749's (4.4.2): a form-urlencoded POST to TB_SERVICE_TOKEN_URL (any
 * path: Keycloak's, Okta's), the client authenticated by HTTP Basic of the form-encoded id and
 * secret (2.3.1, which every server must take) or, with TB_SERVICE_TOKEN_AUTH=
 * client_secret_post, in the body; scope and audience sent when set. */
START_TEST(the_token_request_is_rfc_6749s_at_any_token_url)
{
    token_env_clear();
    atomic_store(&token_fail, 0);
    tb_arena *a = tb_arena_new(0);
    char url[160];
    snprintf(url, sizeof url, "%s/realms/shop/protocol/openid-connect/token", srv_url);
    setenv("TB_SERVICE_TOKEN_URL", url, 1);
    setenv("TB_SERVICE_CLIENT_ID", "game engine:1", 1);
    setenv("TB_SERVICE_CLIENT_SECRET", "p@ss w+rd/=", 1);
    setenv("TB_SERVICE_SCOPE", "wallet.read wallet.write", 1);
    setenv("TB_SERVICE_TOKEN_AUDIENCE", "https://api.example/", 1);
    ck_assert_int_eq(tb_service_token_init("game-engine", NULL), 0);
    ck_assert_str_eq(token_request(a, "url", NULL), "/realms/shop/protocol/openid-connect/token");
    ck_assert_str_eq(token_request(a, "method", NULL), "POST");
    ck_assert_str_eq(token_request(a, NULL, "content-type"), "application/x-www-form-urlencoded");
    ck_assert_str_eq(token_request(a, "body", NULL),
                     "grant_type=client_credentials&scope=wallet.read%20wallet.write"
                     "&audience=https%3A%2F%2Fapi.example%2F");
    /* base64("game%20engine%3A1:p%40ss%20w%2Brd%2F%3D") */
    ck_assert_str_eq(token_request(a, NULL, "authorization"),
                     "Basic Z2FtZSUyMGVuZ2luZSUzQTE6cCU0MHNzJTIwdyUyQnJkJTJGJTNE");
    tb_service_token_shutdown();

    setenv("TB_SERVICE_TOKEN_AUTH", "client_secret_post", 1);
    unsetenv("TB_SERVICE_SCOPE");
    unsetenv("TB_SERVICE_TOKEN_AUDIENCE");
    ck_assert_int_eq(tb_service_token_init("game-engine", NULL), 0);
    ck_assert_ptr_null(token_request(a, NULL, "authorization"));
    ck_assert_str_eq(token_request(a, "body", NULL),
                     "grant_type=client_credentials&client_id=game%20engine%3A1"
                     "&client_secret=p%40ss%20w%2Brd%2F%3D");
    tb_service_token_shutdown();

    /* a bad method name is refused at start, as the client knobs are */
    setenv("TB_SERVICE_TOKEN_AUTH", "basic", 1);
    tb_error err = TB_ERROR_INIT;
    ck_assert_int_eq(tb_service_token_init("game-engine", &err), TB_EINVAL);
    ck_assert_ptr_nonnull(strstr(err.message, "TB_SERVICE_TOKEN_AUTH"));
    tb_error_deinit(&err);
    tb_arena_free(a);
    token_env_clear();
}
END_TEST

/* The fetch a call makes lasts no longer than the call's deadline (it took 5 s before), and an
 * RFC 6749 error answer fails the call closed, sending nothing. */
START_TEST(a_token_fetch_keeps_to_the_calls_deadline)
{
    token_env_clear();
    atomic_store(&token_fail, 0);
    char url[160];
    snprintf(url, sizeof url, "%s/refuse/token", srv_url);
    setenv("TB_SERVICE_TOKEN_URL", url, 1);
    setenv("TB_SERVICE_CLIENT_ID", "svc", 1);
    setenv("TB_SERVICE_CLIENT_SECRET", "s3cret", 1);
    ck_assert_int_eq(tb_service_token_init("svc", NULL), 0); /* 401 invalid_client: no token */
    tb_client_opts opts = TB_CLIENT_OPTS_INIT;
    opts.hooks = tb_service_token_hook();
    opts.n_hooks = 1;
    tb_client *c = client_new(&opts);
    tb_arena *a = tb_arena_new(0);
    tb_ctx ctx;
    tb_ctx_init(&ctx, a, NULL);
    int rc, before = atomic_load(&srv_requests);
    ck_assert_ptr_null(sent_authorization(c, &ctx, &rc));
    ck_assert_int_eq(rc, TB_ESTATE);
    ck_assert_int_eq(atomic_load(&srv_requests), before); /* nothing sent */
    tb_client_free(c);
    tb_service_token_shutdown();

    /* no token yet (the start fetch got a 503); the endpoint now answers after 2 s, and a
     * call with 300 ms left fails in about that time, nothing sent */
    snprintf(url, sizeof url, "%s/slow/token", srv_url);
    setenv("TB_SERVICE_TOKEN_URL", url, 1);
    atomic_store(&token_fail, 1);
    ck_assert_int_eq(tb_service_token_init("svc", NULL), 0);
    atomic_store(&token_fail, 0);
    opts.hooks = tb_service_token_hook();
    c = client_new(&opts);
    usleep(1100 * 1000); /* a failed fetch holds the next one back a second */
    before = atomic_load(&srv_requests);
    int tokens = atomic_load(&token_requests);
    ctx.deadline_ms = tb_deadline_in(300);
    int64_t t0 = tb_clock_ms();
    ck_assert_ptr_null(sent_authorization(c, &ctx, &rc));
    int64_t took = tb_clock_ms() - t0;
    ck_assert_msg(rc == TB_ESTATE || rc == TB_ETIMEDOUT, "rc %d", rc);
    ck_assert_msg(took < 1500, "the call took %lld ms: the fetch outlived its deadline",
                  (long long)took);
    ck_assert_int_eq(atomic_load(&srv_requests), before + 1); /* the token request only */
    ck_assert_int_eq(atomic_load(&token_requests), tokens);
    tb_client_free(c);
    tb_arena_free(a);
    token_env_clear();
}
END_TEST

START_TEST(refusing_hook_sends_nothing_and_returns_its_code)
{
    hook_rec ra = {'A', 0, 99, 0}, rb = {'B', TB_ESTATE, 99, 0}, rc_ = {'C', 0, 99, 0};
    tb_client_hook hooks[] = {{"tracer", rec_before, rec_after, &ra},
                              {"breaker", rec_before, rec_after, &rb},
                              {"later", rec_before, rec_after, &rc_}};
    tb_client_opts opts = TB_CLIENT_OPTS_INIT;
    opts.hooks = hooks;
    opts.n_hooks = 3;
    tb_client *c = client_new(&opts);
    tb_arena *a = tb_arena_new(0);
    tb_ctx ctx;
    tb_ctx_init(&ctx, a, NULL);
    tb_client_call call = call_of("POST", "/echo", "{}");
    tb_client_res res;
    tb_error err = TB_ERROR_INIT;
    int requests = atomic_load(&srv_requests);
    hook_log[0] = '\0';
    ck_assert_int_eq(tb_client_send(c, &ctx, &call, &res, &err), TB_ESTATE);
    ck_assert_int_eq(atomic_load(&srv_requests), requests);
    ck_assert_int_eq(err.code, TB_ESTATE);
    ck_assert_ptr_nonnull(strstr(err.message, "breaker"));
    /* the hook that already ran sees the refusal; the refuser and later hooks see nothing */
    ck_assert_str_eq(hook_log, "AbBbAa");
    ck_assert_int_eq(ra.after_calls, 1);
    ck_assert_int_eq(ra.after_rc, TB_ESTATE);
    ck_assert_int_eq(rb.after_calls, 0);
    ck_assert_int_eq(rc_.after_calls, 0);
    ck_assert_int_eq(res.status, 0);
    tb_error_deinit(&err);
    tb_arena_free(a);
    tb_client_free(c);
}
END_TEST

START_TEST(client_new_copies_base_url_trims_slash_and_rejects_bad_input)
{
    char base[80];
    snprintf(base, sizeof base, "%s//", srv_url);
    tb_error err = TB_ERROR_INIT;
    tb_client *c = tb_client_new(base, NULL, &err);
    ck_assert_ptr_nonnull(c);
    base[0] = 'X'; /* the client owns its copy */
    ck_assert_str_eq(tb_client_base_url(c), srv_url);
    tb_client_free(c);
    tb_client_free(NULL);
    ck_assert_ptr_null(tb_client_new("ftp://example.com", NULL, &err));
    ck_assert_int_eq(err.code, TB_EINVAL);
    ck_assert_ptr_null(tb_client_new(NULL, NULL, &err));
    tb_client_opts opts = TB_CLIENT_OPTS_INIT;
    opts.timeout_ms = -1;
    ck_assert_ptr_null(tb_client_new(srv_url, &opts, &err));
    ck_assert_int_eq(err.code, TB_EINVAL);
    ck_assert_int_eq(tb_global_init(), 0);
    tb_error_deinit(&err);
}
END_TEST

START_TEST(send_rejects_bad_path_and_method_or_header_injection)
{
    tb_client *c = client_new(NULL);
    tb_arena *a = tb_arena_new(0);
    tb_ctx ctx;
    tb_ctx_init(&ctx, a, NULL);
    tb_client_res res;
    int requests = atomic_load(&srv_requests);
    tb_client_call call = call_of("GET", "echo", NULL);
    ck_assert_int_eq(tb_client_send(c, &ctx, &call, &res, NULL), TB_EINVAL);
    call = call_of("GET", "/echo", NULL);
    call.headers[call.n_headers++] = "X-A: 1\r\nX-Evil: 2";
    ck_assert_int_eq(tb_client_send(c, &ctx, &call, &res, NULL), TB_EINVAL);
    call = call_of("GET /x HTTP/1.1\r\nX-Evil: 1\r\n\r\nGET", "/echo", NULL);
    ck_assert_int_eq(tb_client_send(c, &ctx, &call, &res, NULL), TB_EINVAL);
    call = call_of("GET", "/echo", NULL);
    ctx.request_id = "rid\r\nX-Evil: 1";
    ck_assert_int_eq(tb_client_send(c, &ctx, &call, &res, NULL), TB_EINVAL);
    ck_assert_int_eq(atomic_load(&srv_requests), requests);
    tb_arena_free(a);
    tb_client_free(c);
}
END_TEST

START_TEST(service_url_reads_env_then_fallback_then_default_and_trims_slash)
{
    unsetenv("LEDGER_SYNC_SERVICE_URL");
    char *u = tb_service_url("ledger-sync", NULL);
    ck_assert_str_eq(u, "http://127.0.0.1:8080");
    free(u);
    u = tb_service_url("ledger-sync", "http://fallback:9000/");
    ck_assert_str_eq(u, "http://fallback:9000");
    free(u);
    ck_assert_int_eq(setenv("LEDGER_SYNC_SERVICE_URL", "http://ledger:7000//", 1), 0);
    u = tb_service_url("ledger-sync", "http://fallback:9000");
    ck_assert_str_eq(u, "http://ledger:7000");
    free(u);
    u = tb_service_url("Ledger-Sync", NULL); /* upper-cased for the variable name */
    ck_assert_str_eq(u, "http://ledger:7000");
    free(u);
    ck_assert_int_eq(setenv("LEDGER_SYNC_SERVICE_URL", "", 1), 0);
    u = tb_service_url("ledger-sync", "http://fallback:9000");
    ck_assert_str_eq(u, "http://fallback:9000"); /* empty counts as unset */
    free(u);
    unsetenv("LEDGER_SYNC_SERVICE_URL");
    u = tb_service_url(NULL, NULL);
    ck_assert_str_eq(u, "http://127.0.0.1:8080");
    free(u);
}
END_TEST

START_TEST(url_encode_keeps_unreserved_and_uppercases_the_rest)
{
    tb_buf b = TB_BUF_INIT;
    const char *s = "a b&c=d+e#f/g~h-i.j_k?l%m";
    ck_assert_int_eq(tb_url_encode(&b, s, strlen(s), false), 0);
    ck_assert_str_eq(b.data, "a%20b%26c%3Dd%2Be%23f%2Fg~h-i.j_k%3Fl%25m");
    tb_buf_reset(&b);
    ck_assert_int_eq(tb_url_encode(&b, s, strlen(s), true), 0);
    ck_assert_str_eq(b.data, "a%20b%26c%3Dd%2Be%23f%2Fg~h-i.j_k%3Fl%25m");
    tb_buf_reset(&b);
    ck_assert_int_eq(tb_url_encode(&b, "caf\xc3\xa9", 5, true), 0); /* UTF-8 bytes */
    ck_assert_str_eq(b.data, "caf%C3%A9");
    tb_buf_reset(&b);
    ck_assert_int_eq(tb_url_encode(&b, "a\0b", 3, false), 0); /* length, not NUL, ends it */
    ck_assert_str_eq(b.data, "a%00b");
    tb_buf_reset(&b);
    ck_assert_int_eq(tb_url_encode(&b, "AZaz09", 6, false), 0);
    ck_assert_str_eq(b.data, "AZaz09");
    ck_assert_int_eq(tb_url_encode(&b, "!*'();:@$,[]", 12, false), 0); /* appends */
    ck_assert_str_eq(b.data, "AZaz09%21%2A%27%28%29%3B%3A%40%24%2C%5B%5D");
    size_t before = b.len;
    ck_assert_int_eq(tb_url_encode(&b, NULL, 0, true), 0);
    ck_assert_uint_eq(b.len, before);
    tb_buf_deinit(&b);
}
END_TEST

int main(void)
{
    if (tb_global_init() != 0) /* once, before any thread, as a service's main() does */
        return 1;
    big_body = malloc(BIG_SIZE);
    if (!big_body)
        return 1;
    memset(big_body, 'x', BIG_SIZE);
    Suite *s = suite_create("client");
    TCase *net = tcase_create("client");
    tcase_add_checked_fixture(net, server_start, server_stop);
    tcase_set_timeout(net, 30);
    tcase_add_test(net, get_round_trip_returns_status_body_and_request_headers);
    tcase_add_test(net, post_round_trip_sends_json_body_with_content_type);
    tcase_add_test(net, methods_are_reset_between_calls_on_a_reused_handle);
    tcase_add_test(net, non_2xx_is_not_an_error_and_keeps_the_body);
    tcase_add_test(net, request_id_is_sent_from_ctx_or_generated_and_stored_in_ctx);
    tcase_add_test(net, extra_headers_arrive_and_override_the_defaults);
    tcase_add_test(net, call_header_refuses_injection_bad_names_and_overflow);
    tcase_add_test(net, response_headers_are_readable_case_insensitively);
    tcase_add_test(net, keep_alive_20_sequential_calls_use_one_connection);
    tcase_add_test(net, concurrent_8_threads_x_100_calls_succeed_with_bounded_connections);
    tcase_add_test(net, timeout_against_slow_route_is_etimedout);
    tcase_add_test(net, closed_port_is_econn_and_message_names_method_and_url);
    tcase_add_test(net, max_response_1mb_refuses_2mb_body_with_etoobig);
    tcase_add_test(net, before_hooks_add_headers_and_after_hooks_run_in_reverse);
    tcase_add_test(net, refusing_hook_sends_nothing_and_returns_its_code);
    tcase_add_test(net, the_service_token_fails_closed_and_a_401_fetches_another);
    tcase_add_test(net, the_token_request_is_rfc_6749s_at_any_token_url);
    tcase_add_test(net, a_token_fetch_keeps_to_the_calls_deadline);
    tcase_add_test(net, client_new_copies_base_url_trims_slash_and_rejects_bad_input);
    tcase_add_test(net, send_rejects_bad_path_and_method_or_header_injection);
    tcase_add_test(net, service_url_reads_env_then_fallback_then_default_and_trims_slash);
    tcase_add_test(net, url_encode_keeps_unreserved_and_uppercases_the_rest);
    suite_add_tcase(s, net);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    free(big_body);
    return failed ? 1 : 0;
}
