/*
 * bench_rest_bare: the two benchmarked routes of openapi/wallet.yaml written by hand on bare
 * libmicrohttpd + jansson, as the "how fast can MHD go" reference of bench/rest/run.sh.
 *
 *   POST /wallets/{walletId}/transactions   CreateTransactionRequest -> 201 {"data": Transaction}
 *   GET  /wallets/{walletId}                -> 200 {"data": Wallet}
 *
 * Same wire behaviour as the generated service in fast mode: the first violation only, in the
 * standard error envelope {"error":{"code","message","requestId","details":[{path,rule,message}]}},
 * X-Request-ID echoed (1-128 visible ASCII characters) or generated (32 hex digits). No
 * database: the responses are built from the request with fixed ids and timestamps.
 *
 * MHD mode: epoll, internal thread pool (TB_THREADS, default 2), MHD_USE_TURBO: the fastest mode
 * measured on the benchmark machine (/work/shared/PEERS.md). Binds HOST (default 127.0.0.1) and
 * PORT (default 8083; 0 = ephemeral), prints "listening on PORT" to stdout, stops on SIGTERM or
 * SIGINT.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#define MAX_BODY (1u << 20) /* the runtime's default limit; larger bodies get 413 */
#define INLINE_BODY 512     /* bodies up to this size need no second allocation */
#define UUID_LEN 36
#define UUID_PATTERN "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
#define AMOUNT_MAX 1000000000000LL
#define REFERENCE_MAX 128
#define REQUEST_ID_MAX 128
#define BALANCE 1000

static const char TX_ID[] = "3f6c1d2e-8a9b-4c7d-9e0f-1a2b3c4d5e6f";
static const char USER_ID[] = "6f1c2a9e-4b3d-4c8e-9a7f-0d2e5b8c1a34";
static const char CREATED_AT[] = "2026-11-24T10:00:00Z";
static const char SCHEMA_MISMATCH[] = "the request does not match the schema";

/* A request that may carry a body. GET and HEAD requests get &no_body instead. */
struct req {
    char *body; /* inline_buf or malloc'd */
    size_t len, cap;
    bool too_large;
    char inline_buf[INLINE_BODY];
};
static char no_body;

/* One violation (fast mode: the first one only). path is malloc'd. */
struct violation {
    char *path;
    const char *rule;
    const char *message;
};

/* ---- request ids ---- */

/* xorshift128+ per thread, seeded once: ids need uniqueness, not secrecy. */
static _Thread_local uint64_t rid_s[2];

static uint64_t rid_next(void)
{
    if (rid_s[0] == 0 && rid_s[1] == 0) {
        if (getrandom(rid_s, sizeof rid_s, 0) != (ssize_t)sizeof rid_s ||
            (rid_s[0] | rid_s[1]) == 0) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            rid_s[0] = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 32) ^ 0x9e3779b97f4a7c15ull;
            rid_s[1] = (uint64_t)(uintptr_t)&rid_s | 1;
        }
    }
    uint64_t x = rid_s[0];
    const uint64_t y = rid_s[1];
    rid_s[0] = y;
    x ^= x << 23;
    rid_s[1] = x ^ y ^ (x >> 17) ^ (y >> 26);
    return rid_s[1] + y;
}

/* The caller's X-Request-ID when it is 1-128 visible ASCII characters, else a new one in buf. */
static const char *request_id(struct MHD_Connection *c, char buf[33])
{
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Request-ID");
    if (h != NULL) {
        size_t n = 0;
        while (n <= REQUEST_ID_MAX && h[n] >= '!' && h[n] <= '~')
            n++;
        if (n >= 1 && n <= REQUEST_ID_MAX && h[n] == '\0')
            return h;
    }
    static const char hex[] = "0123456789abcdef";
    uint64_t a = rid_next(), b = rid_next();
    for (int i = 0; i < 16; i++) {
        buf[i] = hex[(a >> (60 - 4 * i)) & 0xf];
        buf[16 + i] = hex[(b >> (60 - 4 * i)) & 0xf];
    }
    buf[32] = '\0';
    return buf;
}

/* ---- responses ---- */

/* Sends root (consumed) as the JSON body of a `status` response. */
static enum MHD_Result send_json(struct MHD_Connection *c, unsigned status, json_t *root,
                                 const char *rid, const char *allow)
{
    char *text = root ? json_dumps(root, JSON_COMPACT) : NULL;
    json_decref(root);
    if (text == NULL)
        return MHD_NO;
    struct MHD_Response *res =
        MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
    if (res == NULL) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(res, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    MHD_add_response_header(res, "X-Request-ID", rid);
    if (allow != NULL)
        MHD_add_response_header(res, MHD_HTTP_HEADER_ALLOW, allow);
    enum MHD_Result ret = MHD_queue_response(c, status, res);
    MHD_destroy_response(res);
    return ret;
}

/* The error envelope; v (may be NULL) becomes the single detail. */
static enum MHD_Result send_error(struct MHD_Connection *c, unsigned status, const char *code,
                                  const char *message, const char *rid, const struct violation *v,
                                  const char *allow)
{
    json_t *err = json_object();
    json_object_set_new(err, "code", json_string(code));
    json_object_set_new(err, "message", json_string(message));
    json_object_set_new(err, "requestId", json_string(rid));
    if (v != NULL) {
        json_t *d = json_object();
        json_object_set_new(d, "path", json_string(v->path ? v->path : ""));
        json_object_set_new(d, "rule", json_string(v->rule));
        json_object_set_new(d, "message", json_string(v->message));
        json_t *details = json_array();
        json_array_append_new(details, d);
        json_object_set_new(err, "details", details);
    }
    json_t *root = json_object();
    json_object_set_new(root, "error", err);
    return send_json(c, status, root, rid, allow);
}

/* ---- validation ---- */

/* "/body/" + key as a JSON pointer (~ and / escaped). NULL on OOM. */
static char *body_pointer(const char *key)
{
    size_t n = strlen(key), extra = 0;
    for (size_t i = 0; i < n; i++)
        extra += key[i] == '~' || key[i] == '/';
    char *p = malloc(sizeof "/body/" - 1 + n + extra + 1), *o = p;
    if (p == NULL)
        return NULL;
    memcpy(o, "/body/", 6);
    o += 6;
    for (size_t i = 0; i < n; i++) {
        if (key[i] == '~' || key[i] == '/') {
            *o++ = '~';
            *o++ = key[i] == '~' ? '0' : '1';
        } else {
            *o++ = key[i];
        }
    }
    *o = '\0';
    return p;
}

static bool fail(struct violation *v, const char *key, const char *rule, const char *message)
{
    v->path = body_pointer(key);
    v->rule = rule;
    v->message = message;
    return false;
}

static bool is_uuid(const char *s, size_t n)
{
    if (n != UUID_LEN)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (ch != '-')
                return false;
        } else if (!((ch >= '0' && ch <= '9') || ((ch | 0x20) >= 'a' && (ch | 0x20) <= 'f'))) {
            return false;
        }
    }
    return true;
}

/* Code points of a UTF-8 string (jansson has checked it is valid UTF-8). */
static size_t utf8_length(const char *s, size_t n)
{
    size_t cp = 0;
    for (size_t i = 0; i < n; i++)
        cp += ((unsigned char)s[i] & 0xC0) != 0x80;
    return cp;
}

struct tx_request {
    bool credit;
    json_int_t amount;
    json_t *reference; /* borrowed from the document, NULL when absent */
};

/* CreateTransactionRequest: members in document order, then the required ones; stops at the
 * first violation (JSON Schema's allErrors off). */
static bool validate_tx(json_t *doc, struct tx_request *out, struct violation *v)
{
    if (!json_is_object(doc)) {
        v->path = strdup("/body");
        v->rule = "type";
        v->message = "must be object";
        return false;
    }
    bool has_type = false, has_amount = false;
    const char *key;
    json_t *val;
    out->reference = NULL;
    json_object_foreach(doc, key, val)
    {
        if (strcmp(key, "type") == 0) {
            if (!json_is_string(val))
                return fail(v, key, "type", "must be string");
            const char *t = json_string_value(val);
            size_t n = json_string_length(val);
            if (n == 6 && memcmp(t, "credit", 6) == 0)
                out->credit = true;
            else if (n == 5 && memcmp(t, "debit", 5) == 0)
                out->credit = false;
            else
                return fail(v, key, "enum", "must be one of [\"credit\", \"debit\"]");
            has_type = true;
        } else if (strcmp(key, "amount") == 0) {
            json_int_t a;
            if (json_is_integer(val)) {
                a = json_integer_value(val);
            } else if (json_is_real(val)) {
                /* JSON Schema counts 500.0 as an integer; jansson parses it as a real. */
                double d = json_real_value(val);
                if (!isfinite(d) || d != floor(d))
                    return fail(v, key, "type", "must be integer");
                if (d < 1)
                    return fail(v, key, "minimum", "must be >= 1");
                if (d > (double)AMOUNT_MAX)
                    return fail(v, key, "maximum", "must be <= 1000000000000");
                a = (json_int_t)d;
            } else {
                return fail(v, key, "type", "must be integer");
            }
            if (a < 1)
                return fail(v, key, "minimum", "must be >= 1");
            if (a > AMOUNT_MAX)
                return fail(v, key, "maximum", "must be <= 1000000000000");
            out->amount = a;
            has_amount = true;
        } else if (strcmp(key, "reference") == 0) {
            if (!json_is_string(val))
                return fail(v, key, "type", "must be string");
            if (utf8_length(json_string_value(val), json_string_length(val)) > REFERENCE_MAX)
                return fail(v, key, "maxLength", "must have at most 128 characters");
            out->reference = val;
        } else {
            return fail(v, key, "additionalProperties", "is not allowed");
        }
    }
    if (!has_type)
        return fail(v, "type", "required", "is required");
    if (!has_amount)
        return fail(v, "amount", "required", "is required");
    return true;
}

/* ---- handlers ---- */

static bool is_json_type(const char *ct)
{
    static const char mime[] = "application/json";
    if (ct == NULL || strncasecmp(ct, mime, sizeof mime - 1) != 0)
        return false;
    char next = ct[sizeof mime - 1];
    return next == '\0' || next == ';' || next == ' ' || next == '\t';
}

static enum MHD_Result create_transaction(struct MHD_Connection *c, const char *wallet_id,
                                          size_t id_len, struct req *r, const char *rid)
{
    if (r->too_large)
        return send_error(c, MHD_HTTP_CONTENT_TOO_LARGE, "payload_too_large",
                          "the request body is larger than 1048576 bytes", rid, NULL, NULL);
    if (!is_json_type(
            MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE)))
        return send_error(c, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type",
                          "the request body must be application/json", rid, NULL, NULL);

    json_error_t jerr;
    json_t *doc = json_loadb(r->body ? r->body : "", r->len, JSON_DECODE_ANY, &jerr);
    if (doc == NULL) {
        char msg[256 + JSON_ERROR_TEXT_LENGTH];
        snprintf(msg, sizeof msg, "invalid JSON at line %d, column %d (position %d): %s", jerr.line,
                 jerr.column, jerr.position, jerr.text);
        return send_error(c, MHD_HTTP_BAD_REQUEST, "malformed_json", msg, rid, NULL, NULL);
    }

    struct violation v = {NULL, NULL, NULL};
    if (!is_uuid(wallet_id, id_len)) {
        v.path = strdup("/path/walletId");
        v.rule = "pattern";
        v.message = "must match pattern " UUID_PATTERN;
    }
    struct tx_request tx;
    if (v.rule != NULL || !validate_tx(doc, &tx, &v)) {
        json_decref(doc);
        enum MHD_Result ret = send_error(c, MHD_HTTP_BAD_REQUEST, "validation_failed",
                                         SCHEMA_MISMATCH, rid, &v, NULL);
        free(v.path);
        return ret;
    }

    json_int_t after =
        tx.credit ? BALANCE + tx.amount : (tx.amount <= BALANCE ? BALANCE - tx.amount : 0);
    json_t *t = json_object();
    json_object_set_new(t, "id", json_string(TX_ID));
    json_object_set_new(t, "walletId", json_stringn(wallet_id, id_len));
    json_object_set_new(t, "type", json_string(tx.credit ? "credit" : "debit"));
    json_object_set_new(t, "amount", json_integer(tx.amount));
    json_object_set_new(t, "balanceAfter", json_integer(after));
    if (tx.reference != NULL)
        json_object_set(t, "reference", tx.reference);
    json_object_set_new(t, "createdAt", json_string(CREATED_AT));
    json_t *root = json_object();
    json_object_set_new(root, "data", t);
    json_decref(doc);
    return send_json(c, MHD_HTTP_CREATED, root, rid, NULL);
}

static enum MHD_Result get_wallet(struct MHD_Connection *c, const char *wallet_id, size_t id_len,
                                  const char *rid)
{
    if (!is_uuid(wallet_id, id_len)) {
        struct violation v = {strdup("/path/walletId"), "pattern",
                              "must match pattern " UUID_PATTERN};
        enum MHD_Result ret = send_error(c, MHD_HTTP_BAD_REQUEST, "validation_failed",
                                         SCHEMA_MISMATCH, rid, &v, NULL);
        free(v.path);
        return ret;
    }
    json_t *w = json_object();
    json_object_set_new(w, "id", json_stringn(wallet_id, id_len));
    json_object_set_new(w, "userId", json_string(USER_ID));
    json_object_set_new(w, "currency", json_string("CHP"));
    json_object_set_new(w, "balance", json_integer(BALANCE));
    json_object_set_new(w, "createdAt", json_string(CREATED_AT));
    json_t *root = json_object();
    json_object_set_new(root, "data", w);
    return send_json(c, MHD_HTTP_OK, root, rid, NULL);
}

/* Routes a complete request: /wallets/{walletId} and /wallets/{walletId}/transactions. */
static enum MHD_Result dispatch(struct MHD_Connection *c, const char *url, const char *method,
                                struct req *r)
{
    char ridbuf[33];
    const char *rid = request_id(c, ridbuf);
    static const char prefix[] = "/wallets/";
    if (strncmp(url, prefix, sizeof prefix - 1) == 0) {
        const char *id = url + sizeof prefix - 1;
        const char *slash = strchr(id, '/');
        size_t id_len = slash ? (size_t)(slash - id) : strlen(id);
        if (id_len > 0) {
            if (slash == NULL) {
                if (strcmp(method, MHD_HTTP_METHOD_GET) == 0)
                    return get_wallet(c, id, id_len, rid);
                return send_error(c, MHD_HTTP_METHOD_NOT_ALLOWED, "method_not_allowed",
                                  "method not allowed", rid, NULL, "GET");
            }
            if (strcmp(slash, "/transactions") == 0) {
                if (strcmp(method, MHD_HTTP_METHOD_POST) == 0 && r != NULL)
                    return create_transaction(c, id, id_len, r, rid);
                return send_error(c, MHD_HTTP_METHOD_NOT_ALLOWED, "method_not_allowed",
                                  "method not allowed", rid, NULL, "POST");
            }
        }
    }
    return send_error(c, MHD_HTTP_NOT_FOUND, "not_found", "no such resource", rid, NULL, NULL);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    (void)cls;
    (void)version;
    if (*con_cls == NULL) {
        /* Headers only: answering now would cost the connection its keep-alive. */
        if (strcmp(method, MHD_HTTP_METHOD_GET) == 0 || strcmp(method, MHD_HTTP_METHOD_HEAD) == 0) {
            *con_cls = &no_body;
            return MHD_YES;
        }
        struct req *r = malloc(sizeof *r);
        if (r == NULL)
            return MHD_NO;
        r->body = r->inline_buf;
        r->len = 0;
        r->cap = sizeof r->inline_buf;
        r->too_large = false;
        const char *cl =
            MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl != NULL && strtoull(cl, NULL, 10) > MAX_BODY)
            r->too_large = true;
        *con_cls = r;
        return MHD_YES;
    }
    struct req *r = *con_cls == &no_body ? NULL : *con_cls;
    if (*upload_data_size != 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (r == NULL || r->too_large)
            return MHD_YES;
        if (n > MAX_BODY - r->len) {
            r->too_large = true; /* the rest is read and dropped; 413 at the end */
            return MHD_YES;
        }
        if (r->len + n > r->cap) {
            size_t cap = r->cap * 2;
            while (cap < r->len + n)
                cap *= 2;
            char *b = r->body == r->inline_buf ? malloc(cap) : realloc(r->body, cap);
            if (b == NULL)
                return MHD_NO;
            if (r->body == r->inline_buf)
                memcpy(b, r->inline_buf, r->len);
            r->body = b;
            r->cap = cap;
        }
        memcpy(r->body + r->len, upload_data, n);
        r->len += n;
        return MHD_YES;
    }
    return dispatch(c, url, method, r);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    (void)toe;
    struct req *r = *con_cls;
    if (r != NULL && *con_cls != &no_body) {
        if (r->body != r->inline_buf)
            free(r->body);
        free(r);
    }
    *con_cls = NULL;
}

/* ---- main ---- */

static long env_long(const char *name, long def, long min, long max)
{
    const char *s = getenv(name);
    if (s == NULL || *s == '\0')
        return def;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max) {
        fprintf(stderr, "bench_rest_bare: bad %s=%s\n", name, s);
        exit(2);
    }
    return v;
}

int main(void)
{
    long port = env_long("PORT", 8083, 0, 65535);
    long threads = env_long("TB_THREADS", 2, 1, 256);
    const char *host = getenv("HOST") ? getenv("HOST") : "127.0.0.1";

    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) {
        fprintf(stderr, "bench_rest_bare: bad HOST=%s (an IPv4 address)\n", host);
        return 2;
    }

    /* The worker threads inherit this mask, so only sigwait below sees the signals. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);

    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_TURBO | MHD_USE_ERROR_LOG, (uint16_t)port, NULL,
        NULL, on_request, NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)threads, MHD_OPTION_CONNECTION_TIMEOUT, 60u,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL, MHD_OPTION_END);
    if (d == NULL) {
        fprintf(stderr, "bench_rest_bare: cannot listen on %s:%ld\n", host, port);
        return 1;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    printf("listening on %u\n", info ? (unsigned)info->port : (unsigned)port);
    fflush(stdout);

    int sig;
    while (sigwait(&stop, &sig) != 0)
        ;
    MHD_stop_daemon(d);
    return 0;
}
