/*
 * The "test service" of the W3C Trace Context harness (../shared/testdata/w3c-trace-context),
 * built on tablium's server and client so the harness checks the runtime's propagation.
 *
 *   POST /test  body: [{"url": "...", "arguments": <json>}, ...]
 *
 * For each element, in order, it POSTs `arguments` (as JSON) to `url` with tb_client_send and
 * the request's ctx, so the runtime continues the caller's traceparent/tracestate downstream;
 * then it answers 200. A failed callback is logged and does not stop the others (the harness
 * reports the missing callback).
 *
 * HOST and PORT (or W3C_HOST, W3C_PORT) choose the address; SIGTERM or SIGINT stops it.
 */
#include "tablium/client.h"
#include "tablium/http.h"
#include "tablium/json.h"
#include "tablium/log.h"

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- one client per base URL (the harness always calls back the same one) ---- */

#define MAX_CLIENTS 8

static struct {
    char *base;
    tb_client *client;
} g_clients[MAX_CLIENTS];
static size_t g_n_clients;
static pthread_mutex_t g_clients_mu = PTHREAD_MUTEX_INITIALIZER;

static tb_client *client_for(const char *base, size_t len)
{
    tb_client *c = NULL;
    pthread_mutex_lock(&g_clients_mu);
    for (size_t i = 0; i < g_n_clients && !c; i++)
        if (strlen(g_clients[i].base) == len && memcmp(g_clients[i].base, base, len) == 0)
            c = g_clients[i].client;
    if (!c && g_n_clients < MAX_CLIENTS) {
        char *b = strndup(base, len);
        /* the harness judges each callback: no retries, no breaker, no bulkhead in the way */
        tb_client_opts o = TB_CLIENT_OPTS_INIT;
        o.name = "w3c-callback";
        o.retry.max_attempts = 1;
        o.breaker.enabled = false;
        o.max_concurrent_calls = 0;
        tb_error err = TB_ERROR_INIT;
        c = b ? tb_client_new(b, &o, &err) : NULL;
        if (c) {
            g_clients[g_n_clients].base = b;
            g_clients[g_n_clients].client = c;
            g_n_clients++;
        } else {
            tb_log_error(NULL, "client for %s: %s", b ? b : "?", err.message);
            free(b);
        }
        tb_error_deinit(&err);
    }
    pthread_mutex_unlock(&g_clients_mu);
    return c;
}

static void clients_free(void)
{
    for (size_t i = 0; i < g_n_clients; i++) {
        tb_client_free(g_clients[i].client);
        free(g_clients[i].base);
    }
    g_n_clients = 0;
}

/* "http://host:port/path?q" -> base "http://host:port", path "/path?q". */
static bool split_url(const char *url, size_t *base_len, const char **path)
{
    const char *rest;
    if (strncmp(url, "http://", 7) == 0)
        rest = url + 7;
    else if (strncmp(url, "https://", 8) == 0)
        rest = url + 8;
    else
        return false;
    const char *slash = strchr(rest, '/');
    if (slash == rest)
        return false;
    *base_len = slash ? (size_t)(slash - url) : strlen(url);
    *path = slash ? slash : "/";
    return true;
}

/* ---- POST /test ---- */

static void call_back(tb_ctx *ctx, const json_t *action)
{
    const char *url = json_string_value(json_object_get(action, "url"));
    size_t base_len;
    const char *path;
    if (!url || !split_url(url, &base_len, &path)) {
        tb_log_warn(ctx, "skipping an action without a usable http(s) url");
        return;
    }
    tb_client *c = client_for(url, base_len);
    if (!c)
        return;
    const json_t *args = json_object_get(action, "arguments");
    json_t *empty = args ? NULL : json_array();
    char *body = json_dumps(args ? args : empty, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(empty);
    if (!body) {
        tb_log_error(ctx, "out of memory encoding the arguments for %s", url);
        return;
    }
    tb_client_call call = {0};
    call.method = "POST";
    call.path = path;
    call.body = body;
    call.body_len = strlen(body);
    call.operation_id = "w3cCallback";
    call.route = "/{callback}";
    tb_client_res res;
    tb_error err = TB_ERROR_INIT;
    int rc = tb_client_send(c, ctx, &call, &res, &err);
    if (rc)
        tb_log_warn(ctx, "callback %s failed: %s", url, err.message);
    else if (res.status != 200)
        tb_log_warn(ctx, "callback %s answered %d", url, res.status);
    tb_error_deinit(&err);
    free(body);
}

static int run_test(tb_ctx *ctx, const tb_http_req *req, tb_http_res *res)
{
    tb_error err = TB_ERROR_INIT;
    json_t *actions = tb_json_loadb(req->body, req->body_len, &err);
    if (!actions) {
        int rc = tb_http_res_error_from(res, ctx, 400, "bad_request", &err);
        tb_error_deinit(&err);
        return rc;
    }
    tb_error_deinit(&err);
    if (!json_is_array(actions)) {
        json_decref(actions);
        tb_api_error e;
        tb_api_error_set(&e, ctx, "bad_request", "the body must be a JSON array");
        return tb_http_res_error(res, ctx, 400, &e);
    }
    size_t i;
    json_t *action;
    json_array_foreach(actions, i, action) call_back(ctx, action);
    json_decref(actions);
    res->status = 200;
    tb_buf_reset(&res->body);
    tb_buf_puts(&res->body, "{\"data\":null}");
    return res->body.oom ? TB_ENOMEM : 0;
}

static const tb_http_op w3c_ops[] = {
    {"runTest", TB_HTTP_POST, "/test", TB_OP_BODY | TB_OP_BODY_REQUIRED, run_test, NULL},
};

/* GET PUT POST DELETE OPTIONS HEAD PATCH TRACE */
static const int16_t w3c_routes[][TB_HTTP_N_METHODS] = {
    {-1, -1, 0, -1, -1, -1, -1, -1},
};

static int w3c_match(const char *path, size_t len, int method, tb_str *params, size_t *n_params)
{
    (void)method; /* one operation per path here */
    (void)params;
    *n_params = 0;
    return len == 5 && memcmp(path, "/test", 5) == 0 ? 0 : -1;
}

static const tb_http_api w3c_api = {
    "w3c", "W3C Trace Context test service", "1.0", w3c_ops, 1, w3c_match, w3c_routes, 1, NULL, NULL, 0, NULL, 0, NULL, 0,
};

int main(void)
{
    if (tb_global_init() != 0) {
        fprintf(stderr, "w3c_service: curl_global_init failed\n");
        return 1;
    }
    tb_server_opts o = TB_SERVER_OPTS_INIT;
    o.threads = 4;
    o.validate_responses = 0;
    tb_server_opts_from_env(&o, "w3c");
    tb_error err = TB_ERROR_INIT;
    tb_server *s = tb_server_new(&w3c_api, &o, &err);
    int rc = 1;
    if (!s) {
        fprintf(stderr, "w3c_service: %s\n", err.message);
        goto done;
    }
    rc = tb_server_run(s, &err) == 0 ? 0 : 1;
    if (rc)
        fprintf(stderr, "w3c_service: %s\n", err.message);
done:
    tb_server_free(s);
    clients_free();
    tb_error_deinit(&err);
    return rc;
}
