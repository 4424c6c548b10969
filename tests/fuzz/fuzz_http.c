/*
 * fuzz_http: libFuzzer over the wallet service's request path, as a client sees it.
 *
 * LLVMFuzzerInitialize starts the real server in this process once: tb_server on 127.0.0.1
 * (ephemeral port) with the generated wallet API (gen/wallet) and the real handlers over a
 * SQLite file in $TMPDIR (no brokers: the outbox keeps its events). It creates one fixture
 * wallet with a balance, so inputs reach the handlers past "404 no such wallet".
 *
 * Each input is one connection's bytes: written raw (head + body, pipelining allowed), the
 * write side half-closed, the reply read until the server closes. The spec's example wallet id
 * (FIXTURE_ID below, 36 bytes) in an input is replaced by the fixture wallet's id, same length.
 * The wallet's operations need a service token (its spec's security): an input whose first
 * head has no Authorization header gets one with every scope after its request line, so the
 * inputs reach the decoders; an input with its own keeps it (the dictionary has the word), so
 * the token checks are fuzzed too.
 *
 * Invariants (a violation abort()s, which libFuzzer records with the input), by finding code:
 *   not-http   the reply is a sequence of HTTP/1.1 responses, each "HTTP/1.1 NNN " + headers +
 *              a body of its Content-Length, and nothing else (an empty reply is allowed);
 *   dup-head   ... in particular no head followed by a second head instead of its body;
 *   5xx        no 500, 502 or 504: nothing a client sends may make the service fail;
 *   bad-utf8, bad-json, bad-envelope
 *              a JSON body is valid UTF-8, parses (jansson) and is the envelope: an object
 *              with "data" for 2xx, "error": {"code": string, "message": string} for 4xx/5xx;
 *   hang, eof-partial-head
 *              the server answers or closes within TB_FUZZ_REPLY_MS (default 5000) after the
 *              half-close (the second code when the input holds no whole request head).
 * Sanitizer reports (ASan, UBSan, LSan) from the server's threads abort the process as well.
 * TB_FUZZ_KNOWN lists codes to count instead (run.sh: tests/fuzz/known-findings).
 * TB_FUZZ_ECHO=1 prints every reply with its time (to look at one input: fuzz_http FILE).
 */
#include "wallet/wallet.h"

#include "tablium/client.h"
#include "tablium/http.h"
#include "tablium/jwt.h"
#include "tablium/log.h"

#include <jansson.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FIXTURE_ID "0b9d4c8e-1f2a-4e3b-8c7d-6a5f4e3d2c1b"
#define FIXTURE_USER "6f1c2a9e-4b3d-4c8e-9a7f-0d2e5b8c1a34"
#define ID_LEN 36

static tb_server *g_srv;
static void *g_state;
static uint16_t g_port;
static char g_wallet_id[ID_LEN + 1];
static unsigned long g_slow; /* exchanges that took 100 ms or more */
static char g_dir[512]; /* the service's data folder, removed at exit */
static int g_reply_ms = 5000;
static bool g_echo; /* TB_FUZZ_ECHO=1: print each reply to stderr (reproducing a finding) */

typedef struct reply {
    char *p;
    size_t n, cap;
} reply;

/* Findings listed in TB_FUZZ_KNOWN (comma-separated codes, run.sh reads them from
 * tests/fuzz/known-findings) are counted instead of aborting, until their fix lands. */
#define MAX_KNOWN 16
static struct {
    char code[32];
    unsigned long hits;
} g_known[MAX_KNOWN];
static size_t g_n_known;

/* Whether `code` is a known finding: counted (said once on stderr) and true. */
static bool known(const char *code, const char *what)
{
    for (size_t i = 0; i < g_n_known; i++)
        if (strcmp(g_known[i].code, code) == 0) {
            if (g_known[i].hits++ == 0)
                fprintf(stderr, "fuzz_http: known finding %s (%s): tolerated\n", code, what);
            return true;
        }
    return false;
}

/* A broken invariant: abort() with the request and the reply on stderr, or, for a known
 * finding, count it and return true (the caller stops checking this reply). */
static bool finding(const char *code, const char *what, const uint8_t *req, size_t req_n,
                    const reply *r)
{
    if (known(code, what))
        return true;
    fprintf(stderr, "\nfuzz_http: INVARIANT BROKEN [%s]: %s\n--- request (%zu bytes) ---\n%.*s\n"
                    "--- reply (%zu bytes) ---\n%.*s\n--- end ---\n",
            code, what, req_n, (int)(req_n > 4096 ? 4096 : req_n), (const char *)req,
            r ? r->n : 0, r ? (int)(r->n > 8192 ? 8192 : r->n) : 0, r && r->p ? r->p : "");
    abort();
}

#define FINDING(code, what)                                                                    \
    do {                                                                                       \
        if (finding(code, what, req, req_n, r))                                                \
            return true;                                                                       \
    } while (0)

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Whether req[0..n) holds a whole request head: after any empty lines, a line feed followed by
 * an empty line (CRLF or a bare LF, which RFC 9112 allows). */
static bool head_complete(const uint8_t *req, size_t n)
{
    size_t i = 0;
    while (i < n && (req[i] == '\r' || req[i] == '\n'))
        i++;
    for (; i + 1 < n; i++)
        if (req[i] == '\n' && (req[i + 1] == '\n' || (i + 2 < n && req[i + 1] == '\r' &&
                                                      req[i + 2] == '\n')))
            return true;
    return false;
}

/* One connection: writes req, half-closes, reads until EOF/reset. 0, or -1 when the server
 * neither answered nor closed within g_reply_ms of the last byte written. With `reset`, closes
 * with RST right after the last byte instead and reads nothing. */
static int exchange(const uint8_t *req, size_t n, reply *r, bool reset)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        perror("fuzz_http: socket");
        abort();
    }
    /* close with RST: no TIME_WAIT on our side, so 100k connections do not run out of ports */
    struct linger lg = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(g_port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0 && errno != EINPROGRESS) {
        perror("fuzz_http: connect");
        abort();
    }
    size_t off = 0;
    bool wr_done = false;
    int rc = 0;
    long long deadline = now_ms() + g_reply_ms;
    r->n = 0;
    if (!r->p && !(r->p = malloc(r->cap = 262144)))
        abort();
    for (;;) {
        if (!wr_done && off == n) {
            if (reset)
                break;
            shutdown(fd, SHUT_WR);
            wr_done = true;
            deadline = now_ms() + g_reply_ms;
        }
        struct pollfd pfd = {fd, (short)(POLLIN | (wr_done ? 0 : POLLOUT)), 0};
        long long left = deadline - now_ms();
        if (left <= 0) {
            rc = -1;
            break;
        }
        int pr = poll(&pfd, 1, (int)left);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0) {
            rc = -1;
            break;
        }
        if (!wr_done && (pfd.revents & POLLOUT)) {
            ssize_t w = send(fd, req + off, n - off, MSG_NOSIGNAL);
            if (w > 0) {
                off += (size_t)w;
                deadline = now_ms() + g_reply_ms;
            } else if (w < 0 && errno != EAGAIN && errno != EINTR) {
                wr_done = true; /* the server stopped reading (closed): read what it said */
            }
        }
        if (pfd.revents & (POLLIN | POLLHUP | POLLERR)) {
            if (r->cap - r->n < 65536) {
                r->cap *= 2;
                r->p = realloc(r->p, r->cap);
                if (!r->p)
                    abort();
            }
            ssize_t got = recv(fd, r->p + r->n, r->cap - r->n - 1, 0);
            if (got > 0) {
                r->n += (size_t)got;
            } else if (got == 0 || (errno != EAGAIN && errno != EINTR)) {
                break; /* EOF, or a reset */
            }
        }
    }
    close(fd);
    r->p[r->n] = '\0';
    return rc;
}

static bool utf8_valid(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t k;
        unsigned min;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            k = 1, min = 0x80, c &= 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            k = 2, min = 0x800, c &= 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            k = 3, min = 0x10000, c &= 0x07;
        } else {
            return false;
        }
        if (i + k >= n)
            return false;
        for (size_t j = 1; j <= k; j++) {
            if ((s[i + j] & 0xC0) != 0x80)
                return false;
            c = (c << 6) | (s[i + j] & 0x3F);
        }
        if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
            return false;
        i += k + 1;
    }
    return true;
}

static const char *memfind(const char *h, size_t hn, const char *needle)
{
    size_t nn = strlen(needle);
    return nn <= hn ? memmem(h, hn, needle, nn) : NULL;
}

/* The value of header `name` in head[0..n) (lines "Name: value\r\n"), or NULL; *vn its length. */
static const char *header(const char *head, size_t n, const char *name, size_t *vn)
{
    size_t nl = strlen(name);
    const char *p = memfind(head, n, "\r\n");
    const char *end = head + n;
    while (p && p + 2 < end) {
        p += 2;
        const char *eol = memfind(p, (size_t)(end - p), "\r\n");
        if (!eol)
            eol = end;
        if ((size_t)(eol - p) > nl && p[nl] == ':' && strncasecmp(p, name, nl) == 0) {
            const char *v = p + nl + 1;
            while (v < eol && (*v == ' ' || *v == '\t'))
                v++;
            *vn = (size_t)(eol - v);
            return v;
        }
        p = eol;
    }
    return NULL;
}

static bool check_json(int status, const char *body, size_t n, const uint8_t *req, size_t req_n,
                       const reply *r)
{
    if (!utf8_valid((const unsigned char *)body, n))
        FINDING("bad-utf8", "JSON body is not valid UTF-8");
    json_error_t je;
    json_t *v = json_loadb(body, n, JSON_ALLOW_NUL, &je);
    if (!v) {
        fprintf(stderr, "fuzz_http: jansson: %s (line %d, column %d)\n", je.text, je.line,
                je.column);
        FINDING("bad-json", "JSON body does not parse");
    }
    bool env_ok = json_is_object(v);
    /* the runtime's probes (/health/live, /health/ready) answer Kubernetes-style
     * {"status": ...}, not the envelope (CI's fuzz run reached "/health/live\0..." by a CMP) */
    bool probe = memfind((const char *)req, req_n, "/health/") != NULL &&
                 json_is_string(json_object_get(v, "status"));
    if (env_ok && status < 300 && !probe)
        env_ok = json_object_get(v, "data") != NULL;
    else if (env_ok && status >= 400) {
        json_t *e = json_object_get(v, "error");
        env_ok = json_is_object(e) && json_is_string(json_object_get(e, "code")) &&
                 json_is_string(json_object_get(e, "message"));
    }
    json_decref(v);
    if (!env_ok)
        FINDING("bad-envelope", "JSON body is not the envelope: {\"data\"} for 2xx, "
                                "{\"error\": {\"code\", \"message\"}} for 4xx/5xx");
    return false;
}

/* Walks the responses in r and checks each. */
static bool check_reply(const uint8_t *req, size_t req_n, const reply *r)
{
    const char *p = r->p, *end = r->p + r->n;
    /* libmicrohttpd 0.9.75 wrote its own error head for a later pipelined request into the
     * stream (twice, or over the previous response's body, its status line lost): a broken
     * reply holding such a head is reported as dup-head (gone with 1.0.1, scripts/deps.sh) */
    bool mhd_head = memfind(r->p, r->n, "GMT\r\nConnection: close\r\nContent-Length: ") != NULL;
#define NOT_HTTP(what)                                                                         \
    do {                                                                                       \
        if (mhd_head)                                                                          \
            FINDING("dup-head", "libmicrohttpd's error head spliced into the reply: " what);   \
        FINDING("not-http", what);                                                             \
    } while (0)
    /* the input may hold a HEAD request: at its start, after a line feed, or right after the
     * body of a pipelined request (CI's fuzz run found "...\"referencHEAD /wallets/..." after a
     * 45-byte body: its 401 rightly came without the body its Content-Length counts) */
    bool has_head = req_n >= 5 && memfind((const char *)req, req_n, "HEAD ") != NULL;
    while (p < end) {
        size_t left = (size_t)(end - p);
        if (left < 13 || memcmp(p, "HTTP/1.1 ", 9) != 0 || p[9] < '1' || p[9] > '5' ||
            p[10] < '0' || p[10] > '9' || p[11] < '0' || p[11] > '9' || p[12] != ' ')
            NOT_HTTP( "reply is not an HTTP/1.1 status line");
        int status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
        if (status == 500 || status == 502 || status == 504)
            FINDING("5xx", "5xx answer to a client's bytes");
        const char *hend = memfind(p, left, "\r\n\r\n");
        if (!hend)
            NOT_HTTP( "response head is not terminated by CRLF CRLF");
        size_t head_n = (size_t)(hend - p) + 2;
        const char *body = hend + 4;
        if (status < 200) { /* 100 Continue: no body */
            p = body;
            continue;
        }
        size_t vn = 0;
        const char *cl = header(p, head_n, "Content-Length", &vn);
        if (!cl)
            NOT_HTTP( "response without Content-Length");
        char *stop = NULL;
        char num[24];
        if (vn == 0 || vn >= sizeof num)
            NOT_HTTP( "bad Content-Length in the response");
        memcpy(num, cl, vn);
        num[vn] = '\0';
        unsigned long long len = strtoull(num, &stop, 10);
        if (*stop)
            NOT_HTTP( "bad Content-Length in the response");
        /* an answer to HEAD carries the length without the body: the next response (or the
         * end) follows the head directly */
        size_t rest = (size_t)(end - body);
        if (len > 0 && (rest == 0 || (rest >= 9 && memcmp(body, "HTTP/1.1 ", 9) == 0))) {
            if (!has_head && rest > 0)
                FINDING("dup-head", "a response head followed by another head, not its body");
            if (!has_head)
                NOT_HTTP( "response body shorter than its Content-Length");
            p = body;
            continue;
        }
        if (len > rest)
            NOT_HTTP( "response body shorter than its Content-Length");
        const char *ct = header(p, head_n, "Content-Type", &vn);
        if (ct && vn >= 16 && strncasecmp(ct, "application/json", 16) == 0)
            if (check_json(status, body, (size_t)len, req, req_n, r))
                return true;
        p = body + len;
    }
    return false;
#undef NOT_HTTP
}

/* Sends one request during setup and returns the reply's body (static storage). */
#define FUZZ_SECRET "fuzz-http-hs256-secret-0123456789abcdef0123"
static char g_auth_line[1024]; /* "Authorization: Bearer <token>\r\n" */

/* The input with g_auth_line after its first line when its first head has no Authorization
 * header; malloc'd, its length in *n. */
static uint8_t *with_token(const uint8_t *in, size_t size, size_t *n)
{
    const uint8_t *eol = memmem(in, size, "\r\n", 2);
    const uint8_t *end = memmem(in, size, "\r\n\r\n", 4);
    bool has = false;
    for (const uint8_t *p = in; end && p + 16 <= end; p++)
        has |= p[0] == '\n' && strncasecmp((const char *)p + 1, "Authorization:", 14) == 0;
    size_t add = eol && !has ? strlen(g_auth_line) : 0;
    uint8_t *out = malloc(size + add + 1);
    if (!out)
        return NULL;
    size_t k = eol ? (size_t)(eol - in) + 2 : size;
    memcpy(out, in, k);
    memcpy(out + k, g_auth_line, add);
    memcpy(out + k + add, in + k, size - k);
    *n = size + add;
    return out;
}

static const char *setup_request(const char *text, int want_status)
{
    static reply r;
    size_t len;
    uint8_t *req = with_token((const uint8_t *)text, strlen(text), &len);
    int rc = req ? exchange(req, len, &r, false) : -1;
    free(req);
    if (rc != 0 || r.n < 13) {
        fprintf(stderr, "fuzz_http: setup request got no answer:\n%s\n", text);
        exit(2);
    }
    if (atoi(r.p + 9) != want_status) {
        fprintf(stderr, "fuzz_http: setup request answered %.*s\n", (int)r.n, r.p);
        exit(2);
    }
    const char *b = strstr(r.p, "\r\n\r\n");
    return b ? b + 4 : "";
}

static void teardown(void)
{
    fprintf(stderr, "fuzz_http: %lu exchanges took 100 ms or more\n", g_slow);
    for (size_t i = 0; i < g_n_known; i++)
        fprintf(stderr, "fuzz_http: known finding %s: %lu inputs\n", g_known[i].code,
                g_known[i].hits);
    tb_server_free(g_srv); /* stops it */
    g_srv = NULL;
    wallet_service_fini(g_state);
    g_state = NULL;
    DIR *d = opendir(g_dir);
    struct dirent *e;
    char path[1024];
    while (d && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", g_dir, e->d_name);
        unlink(path);
    }
    if (d)
        closedir(d);
    rmdir(g_dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    tb_error err = TB_ERROR_INIT;
    char *dir = g_dir, db[600];
    const char *tmp = getenv("TMPDIR");
    snprintf(g_dir, sizeof g_dir, "%s/tb-fuzz-http.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir)) {
        perror("fuzz_http: mkdtemp");
        exit(2);
    }
    snprintf(db, sizeof db, "%s/wallet.db", dir);
    setenv("WALLET_DB", db, 1);
    setenv("TB_DATA_DIR", dir, 1);
    unsetenv("TB_AMQP_URL"); /* no brokers: events stay in the outbox */
    unsetenv("TB_REDIS_URL");
    setenv("TB_LOG_LEVEL", "error", 0);
    setenv("TB_JWT_SECRET", FUZZ_SECRET, 1);
    setenv("TB_JWT_ISSUER", "tablium-auth", 1);
    setenv("TB_JWT_AUDIENCE", "tablium", 1);
    {
        tb_jwt_key *k = NULL;
        char *tok = NULL;
        long now = (long)time(NULL);
        json_t *c = json_pack("{s:s, s:s, s:s, s:I, s:s}", "iss", "tablium-auth", "aud",
                              "tablium", "sub", "fuzz", "exp", (json_int_t)(now + 7 * 86400),
                              "scope", "wallet.read wallet.write");
        if (tb_jwt_key_from_secret(FUZZ_SECRET, strlen(FUZZ_SECRET), TB_JWT_HS256, NULL, &k,
                                   NULL) != 0 ||
            tb_jwt_sign(k, c, NULL, &tok, NULL) != 0) {
            fprintf(stderr, "fuzz_http: cannot make a token\n");
            exit(2);
        }
        snprintf(g_auth_line, sizeof g_auth_line, "Authorization: Bearer %s\r\n", tok);
        free(tok);
        json_decref(c);
        tb_jwt_key_free(k);
    }
    const char *ms = getenv("TB_FUZZ_REPLY_MS");
    if (ms && atoi(ms) > 0)
        g_reply_ms = atoi(ms);
    const char *known = getenv("TB_FUZZ_KNOWN");
    for (const char *k = known ? known : ""; *k && g_n_known < MAX_KNOWN;) {
        size_t n = strcspn(k, ", ");
        if (n > 0 && n < sizeof g_known[0].code)
            memcpy(g_known[g_n_known++].code, k, n);
        k += n;
        k += strspn(k, ", ");
    }
    g_echo = getenv("TB_FUZZ_ECHO") && atoi(getenv("TB_FUZZ_ECHO")) > 0;
    signal(SIGPIPE, SIG_IGN);
    if (tb_global_init()) {
        fprintf(stderr, "fuzz_http: tb_global_init failed\n");
        exit(2);
    }
    if (wallet_service_init(&g_state, &err)) {
        fprintf(stderr, "fuzz_http: wallet init: %s\n", err.message);
        exit(2);
    }
    tb_server_opts o = TB_SERVER_OPTS_INIT;
    o.threads = 2;
    o.conn_timeout_s = 5;
    o.shutdown_grace_ms = 2000;
    o.validate_responses = 1; /* an answer outside the spec becomes a 500: a finding */
    o.access_log = false;
    if (!(g_srv = tb_server_new(&wallet_api, &o, &err))) {
        fprintf(stderr, "fuzz_http: server: %s\n", err.message);
        exit(2);
    }
    tb_server_set_state(g_srv, g_state, NULL);
    if (tb_server_start(g_srv, &err)) {
        fprintf(stderr, "fuzz_http: start: %s\n", err.message);
        exit(2);
    }
    g_port = tb_server_port(g_srv);
    atexit(teardown);

    /* the fixture wallet, with enough balance for the seeds' debits */
    char req[512];
    const char *body = "{\"userId\":\"" FIXTURE_USER "\",\"currency\":\"CHP\"}";
    snprintf(req, sizeof req,
             "POST /wallets HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
             "Content-Length: %zu\r\n\r\n%s",
             strlen(body), body);
    const char *b = setup_request(req, 201);
    const char *id = strstr(b, "\"id\":\"");
    if (!id || strlen(id) < 6 + ID_LEN) {
        fprintf(stderr, "fuzz_http: no wallet id in %s\n", b);
        exit(2);
    }
    memcpy(g_wallet_id, id + 6, ID_LEN);
    body = "{\"type\":\"credit\",\"amount\":1000000000}";
    snprintf(req, sizeof req,
             "POST /wallets/%s/transactions HTTP/1.1\r\nHost: x\r\n"
             "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
             g_wallet_id, strlen(body), body);
    setup_request(req, 201);
    fprintf(stderr, "fuzz_http: wallet service on 127.0.0.1:%u, data in %s, fixture wallet %s\n",
            g_port, dir, g_wallet_id);
    tb_error_deinit(&err);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static reply r;
    uint8_t *req = with_token(data, size, &size);
    if (!req)
        return 0;
    for (uint8_t *p = req; size >= ID_LEN && p <= req + size - ID_LEN;) {
        uint8_t *hit = memmem(p, size - (size_t)(p - req), FIXTURE_ID, ID_LEN);
        if (!hit)
            break;
        memcpy(hit, g_wallet_id, ID_LEN);
        p = hit + ID_LEN;
    }
    /* a half-close after a partial head is a known finding while it is listed: then such
     * inputs end with a reset instead, so each does not cost the server's header timeout */
    bool partial = !head_complete(req, size);
    bool reset = partial && known("eof-partial-head", "half-close after a partial head");
    long long t0 = now_ms();
    if (exchange(req, size, &r, reset) != 0 &&
        finding(partial ? "eof-partial-head" : "hang",
                partial ? "a half-close after a partial head: no answer, no close within "
                          "TB_FUZZ_REPLY_MS"
                        : "no answer and no close within TB_FUZZ_REPLY_MS",
                req, size, &r)) {
        free(req);
        return 0;
    }
    long long ms = now_ms() - t0;
    if (ms >= 100)
        g_slow++;
    if (g_echo)
        fprintf(stderr, "--- reply (%zu bytes, %lld ms) ---\n%.*s\n--- end ---\n", r.n, ms,
                (int)r.n, r.p);
    check_reply(req, size, &r);
    free(req);
    return 0;
}
