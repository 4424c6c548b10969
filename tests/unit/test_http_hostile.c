/*
 * tb_server against hostile clients (issue 12): request framing a proxy could read otherwise,
 * garbage, slow clients that trickle heads and bodies, connection floods, a stop with a slow
 * request in flight, and bytes that are not UTF-8 in error bodies and access logs. Raw sockets
 * on loopback, so that every byte on the wire is the test's; clients bind source addresses
 * 127.0.0.2 and up to stand for other hosts.
 *
 * Prints one line for make test:
 *   http-slow: N slow connections held, N/N fresh requests answered, N head cuts, N body cuts
 */
#include "tablium/http.h"
#include "tablium/json.h"
#include "tablium/log.h"

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* ---- the service: GET /ping, POST /echo (JSON body, parsed), GET /slow (300 ms) ---- */

static int ping(tb_ctx *ctx, const tb_http_req *req, tb_http_res *res)
{
    (void)ctx, (void)req;
    res->status = 200;
    tb_buf_puts(&res->body, "{\"data\":{\"pong\":true}}");
    return 0;
}

static int echo(tb_ctx *ctx, const tb_http_req *req, tb_http_res *res)
{
    tb_error err = TB_ERROR_INIT;
    json_t *j = tb_json_loadb(req->body, req->body_len, &err);
    int rc;
    if (!j) {
        rc = tb_http_res_error_from(res, ctx, 400, "bad_request", &err);
    } else {
        res->status = 200;
        tb_buf_puts(&res->body, "{\"data\":");
        rc = tb_buf_json_value(&res->body, j);
        tb_buf_putc(&res->body, '}');
        json_decref(j);
    }
    tb_error_deinit(&err);
    return rc;
}

static int slow(tb_ctx *ctx, const tb_http_req *req, tb_http_res *res)
{
    struct timespec t = {0, 300 * 1000 * 1000};
    nanosleep(&t, NULL);
    return ping(ctx, req, res);
}

static const tb_http_op ops[] = {
    {"ping", TB_HTTP_GET, "/ping", 0, ping, NULL},
    {"echo", TB_HTTP_POST, "/echo", TB_OP_BODY | TB_OP_BODY_REQUIRED, echo, NULL},
    {"slow", TB_HTTP_GET, "/slow", 0, slow, NULL},
};

/* GET PUT POST DELETE OPTIONS HEAD PATCH TRACE */
static const int16_t routes[][TB_HTTP_N_METHODS] = {
    {0, -1, -1, -1, -1, -1, -1, -1},
    {-1, -1, 1, -1, -1, -1, -1, -1},
    {2, -1, -1, -1, -1, -1, -1, -1},
};

static int match(const char *path, size_t len, int method, tb_str *params, size_t *n_params)
{
    (void)method; /* one operation per path here */
    (void)params;
    *n_params = 0;
    static const char *const paths[] = {"/ping", "/echo", "/slow"};
    for (int i = 0; i < 3; i++) {
        if (strlen(paths[i]) == len && memcmp(path, paths[i], len) == 0)
            return i;
    }
    return -1;
}

static const tb_http_api api = {"hostile", "Hostile", "1.0", ops, 3, match, routes, 3, NULL, NULL, 0, NULL, 0, NULL, 0};

static tb_server *start(tb_server_opts *o)
{
    tb_error err = TB_ERROR_INIT;
    tb_server *s = tb_server_new(&api, o, &err);
    ck_assert_msg(s != NULL, "%s", err.message);
    ck_assert_int_eq(tb_server_start(s, &err), 0);
    tb_error_deinit(&err);
    return s;
}

static tb_server *start_default(void)
{
    tb_server_opts o = TB_SERVER_OPTS_INIT;
    o.threads = 2;
    o.access_log = false;
    return start(&o);
}

/* ---- raw clients ---- */

static uint64_t now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000u + (uint64_t)t.tv_nsec / 1000000u;
}

/* A connection from 127.0.0.<host> (1: the default source); -1 when the connect failed. */
static int dial_from(const tb_server *s, int host)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (host > 1) {
        struct sockaddr_in src = {0};
        src.sin_family = AF_INET;
        src.sin_addr.s_addr = htonl(0x7f000000u | (unsigned)host);
        if (bind(fd, (struct sockaddr *)&src, sizeof src) != 0) {
            close(fd);
            return -1;
        }
    }
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons(tb_server_port(s));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static void send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

static void send_str(int fd, const char *s)
{
    send_all(fd, s, strlen(s));
}

/* Reads until the peer closes or timeout_ms pass; *closed says which. Returns the length. */
static size_t read_until_close(int fd, char *buf, size_t cap, int timeout_ms, bool *closed)
{
    size_t n = 0;
    *closed = false;
    uint64_t end = now_ms() + (uint64_t)timeout_ms;
    while (n + 1 < cap) {
        uint64_t t = now_ms();
        if (t >= end)
            break;
        struct pollfd pf = {fd, POLLIN, 0};
        if (poll(&pf, 1, (int)(end - t)) <= 0)
            break;
        ssize_t r = recv(fd, buf + n, cap - 1 - n, 0);
        if (r <= 0) {
            *closed = true;
            break;
        }
        n += (size_t)r;
    }
    buf[n] = '\0';
    return n;
}

/* Status lines in a response stream: "HTTP/1.1 " and three digits and a space. */
static int count_of(const char *hay, const char *needle)
{
    int k = 0;
    size_t n = strlen(needle);
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += n) {
        k += p[n] >= '1' && p[n] <= '5' && p[n + 1] >= '0' && p[n + 1] <= '9' &&
             p[n + 2] >= '0' && p[n + 2] <= '9' && p[n + 3] == ' ';
    }
    return k;
}

/* The JSON body after the last head in buf (NULL when none parses). */
static json_t *body_json(const char *buf)
{
    const char *b = NULL;
    for (const char *p = buf; (p = strstr(p, "\r\n\r\n")) != NULL; p += 4)
        b = p + 4;
    return b ? json_loads(b, 0, NULL) : NULL;
}

/* Sends req on a fresh connection; the answer must be exactly one response with `status`,
 * a JSON error envelope with `code`, and the connection closed after it. */
static void expect_refused(const tb_server *s, const char *req, size_t len, int status,
                           const char *code)
{
    int fd = dial_from(s, 1);
    ck_assert_int_ge(fd, 0);
    send_all(fd, req, len);
    char buf[8192];
    bool closed;
    read_until_close(fd, buf, sizeof buf, 5000, &closed);
    close(fd);
    char line[32];
    snprintf(line, sizeof line, "HTTP/1.1 %d ", status);
    ck_assert_msg(strncmp(buf, line, strlen(line)) == 0, "%.*s: got %s", (int)(len > 60 ? 60 : len),
                  req, buf);
    ck_assert_msg(count_of(buf, "HTTP/1.1 ") == 1, "more than one status line: %s", buf);
    ck_assert_msg(closed, "the connection stayed open after %s", buf);
    json_t *j = body_json(buf);
    ck_assert_msg(j != NULL, "no JSON body: %s", buf);
    const char *c = json_string_value(json_object_get(json_object_get(j, "error"), "code"));
    ck_assert_msg(c && strcmp(c, code) == 0, "code %s, want %s", c ? c : "(none)", code);
    ck_assert(json_is_string(json_object_get(json_object_get(j, "error"), "message")));
    json_decref(j);
}

#define REFUSED(s, lit, status, code) expect_refused(s, lit, sizeof(lit) - 1, status, code)

/* ---- framing ---- */

START_TEST(ambiguous_or_broken_framing_is_refused_with_one_answer_and_closed)
{
    tb_server *s = start_default();
    /* Smuggling: a proxy that reads the other Content-Length, or TE where we read CL. */
    REFUSED(s, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               "Content-Length: 2\r\nContent-Length: 40\r\n\r\n{}",
            400, "bad_request");
    REFUSED(s, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
            400, "bad_request");
    /* libmicrohttpd 0.9.75 wrote its own answer's head twice for these. */
    REFUSED(s, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n{}", 400,
            "bad_request");
    REFUSED(s, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 18446744073709551616\r\n\r\n",
            400, "bad_request");
    REFUSED(s, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2, 2\r\n\r\n{}", 400,
            "bad_request");
    REFUSED(s, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: +2\r\n\r\n{}", 400,
            "bad_request");
    /* Transfer codings other than chunked: 501 (RFC 9112 section 6.1). */
    REFUSED(s, "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n{}", 501,
            "not_implemented");
    REFUSED(s, "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
               "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            400, "bad_request");
    REFUSED(s, "POST /echo HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400,
            "bad_request");
    /* Garbage and malformed heads get an answer, not a silent close. */
    REFUSED(s, "GARBAGE\r\n\r\n", 400, "bad_request");
    REFUSED(s, "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 400, "bad_request");
    REFUSED(s, "GET /ping HTTP/2.0\r\nHost: x\r\n\r\n", 505, "http_version_not_supported");
    REFUSED(s, "GET /ping HTTP/1.1\r\n\r\n", 400, "bad_request"); /* no Host */
    REFUSED(s, "GET /ping HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", 400, "bad_request");
    REFUSED(s, "GET /ping HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n folded\r\n\r\n", 400, "bad_request");
    REFUSED(s, "GET /ping HTTP/1.1\r\nHost: x\r\nContent-Length : 0\r\n\r\n", 400, "bad_request");
    REFUSED(s, "GET /ping HTTP/1.1\r\nHost: x\r\nX-Nul: a\0b\r\n\r\n", 400, "bad_request");
    /* A head past 32 KiB: 431. */
    size_t big = 40 * 1024;
    char *req = malloc(big + 64);
    int n = snprintf(req, 64, "GET /ping HTTP/1.1\r\nHost: x\r\nX-Big: ");
    memset(req + n, 'a', big);
    memcpy(req + n + big, "\r\n\r\n", 4);
    expect_refused(s, req, (size_t)n + big + 4, 431, "header_too_large");
    free(req);

    tb_server_stats st;
    tb_server_stats_get(s, &st);
    ck_assert_uint_eq(st.refused_framing, 18);
    /* and the server still answers */
    int fd = dial_from(s, 1);
    send_str(fd, "GET /ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    char buf[2048];
    bool closed;
    read_until_close(fd, buf, sizeof buf, 5000, &closed);
    close(fd);
    ck_assert_msg(strncmp(buf, "HTTP/1.1 200 ", 13) == 0, "%s", buf);
    ck_assert_int_eq(tb_server_stop(s), 0);
    tb_server_free(s);
}
END_TEST

/* The first head of a connection is checked before libmicrohttpd reads it; later ones on a
 * kept-alive connection are checked on their way to the route, or by libmicrohttpd 1.0 itself:
 * it refuses a transfer coding other than chunked with 400 and close before any route (RFC
 * 9112 says SHOULD 501, which the door answers for a connection's first head). */
START_TEST(framing_is_checked_on_later_requests_of_a_kept_alive_connection)
{
    tb_server *s = start_default();
    static const char *const bad[] = {
        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        "Content-Length: 2\r\nContent-Length: 40\r\n\r\n{}",
        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
        "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n{}",
        /* libmicrohttpd 0.9.75 wrote its own 400's head twice for these (issue 12); 1.0 answers
         * once: 400, and 413 for a length past 2^64 - 1 */
        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        "Content-Length: -1\r\n\r\n{}",
        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        "Content-Length: 18446744073709551616\r\n\r\n{}",
    };
    static const char *const want[] = {"HTTP/1.1 400 ", "HTTP/1.1 400 ", "HTTP/1.1 400 ",
                                       "HTTP/1.1 400 ", "HTTP/1.1 413 "};
    for (int i = 0; i < 5; i++) {
        int fd = dial_from(s, 1);
        char req[512];
        int n = snprintf(req, sizeof req, "GET /ping HTTP/1.1\r\nHost: x\r\n\r\n%s", bad[i]);
        send_all(fd, req, (size_t)n);
        char buf[8192];
        bool closed;
        read_until_close(fd, buf, sizeof buf, 5000, &closed);
        close(fd);
        ck_assert_msg(strncmp(buf, "HTTP/1.1 200 ", 13) == 0, "%s", buf);
        /* the first answer whole: its body right after its head, then the second head */
        ck_assert_msg(strstr(buf, "\r\n\r\n{\"data\":{\"pong\":true}}HTTP/1.1 ") != NULL, "%s", buf);
        const char *second = strstr(buf + 1, "HTTP/1.1 ");
        ck_assert_msg(second && strncmp(second, want[i], strlen(want[i])) == 0, "case %d: %s", i, buf);
        ck_assert_msg(count_of(buf, "HTTP/1.1 ") == 2, "case %d: %s", i, buf);
        ck_assert_msg(closed, "kept open after %s", second);
        ck_assert_ptr_nonnull(strstr(second, "Connection: close"));
    }
    ck_assert_int_eq(tb_server_stop(s), 0);
    tb_server_free(s);
}
END_TEST

/* ---- UTF-8 in error bodies and access logs ---- */

START_TEST(error_bodies_stay_valid_utf8_when_they_quote_bad_bytes)
{
    tb_server *s = start_default();
    /* jansson's message quotes the bytes near the error: half a UTF-8 sequence here. */
    static const char body[] = "{\"a\":\"\\\xc3\xa9\"}";
    char req[512];
    int n = snprintf(req, sizeof req,
                     "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     "Connection: close\r\nContent-Length: %zu\r\n\r\n%s",
                     sizeof body - 1, body);
    int fd = dial_from(s, 1);
    send_all(fd, req, (size_t)n);
    char buf[4096];
    bool closed;
    read_until_close(fd, buf, sizeof buf, 5000, &closed);
    close(fd);
    ck_assert_msg(strncmp(buf, "HTTP/1.1 400 ", 13) == 0, "%s", buf);
    json_t *j = body_json(buf); /* jansson refuses text that is not UTF-8 */
    ck_assert_msg(j != NULL, "the error body is not JSON text: %s", buf);
    const char *msg = json_string_value(json_object_get(json_object_get(j, "error"), "message"));
    ck_assert_ptr_nonnull(msg);
    ck_assert_ptr_nonnull(strstr(msg, "invalid escape"));
    json_decref(j);

    /* the writer under every envelope: invalid bytes become U+FFFD, valid ones stay */
    tb_buf b = TB_BUF_INIT;
    tb_buf_json_string(&b, "a\xff\xc3\xa9\xe2\x82z\xf0\x9f\x98\x80\xed\xa0\x80", 14);
    ck_assert_str_eq(b.data, "\"a\xef\xbf\xbd\xc3\xa9\xef\xbf\xbd\xef\xbf\xbdz\xf0\x9f\x98\x80"
                             "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"");
    tb_buf_deinit(&b);
    ck_assert_int_eq(tb_server_stop(s), 0);
    tb_server_free(s);
}
END_TEST

static void capture_stderr(void (*fn)(void *), void *arg, char *buf, size_t cap)
{
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    int saved = dup(STDERR_FILENO);
    dup2(fds[1], STDERR_FILENO);
    close(fds[1]);
    fn(arg);
    dup2(saved, STDERR_FILENO);
    close(saved);
    size_t n = 0;
    ssize_t r;
    while (n + 1 < cap && (r = read(fds[0], buf + n, cap - 1 - n)) > 0)
        n += (size_t)r;
    buf[n] = '\0';
    close(fds[0]);
}

static void logged_raw_path(void *arg)
{
    (void)arg;
    tb_log_set_level(TB_LOG_INFO);
    tb_server_opts o = TB_SERVER_OPTS_INIT;
    o.threads = 1;
    o.access_log = true;
    tb_server *s = start(&o);
    int fd = dial_from(s, 1);
    static const char req[] = "GET /p\xff\xfe\"\\ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    send_all(fd, req, sizeof req - 1);
    char buf[4096];
    bool closed;
    read_until_close(fd, buf, sizeof buf, 5000, &closed);
    close(fd);
    tb_server_stop(s);
    tb_server_free(s);
    tb_log_set_level(TB_LOG_OFF);
}

START_TEST(access_log_lines_are_json_whatever_the_path_bytes)
{
    char out[16384];
    capture_stderr(logged_raw_path, NULL, out, sizeof out);
    int lines = 0, requests = 0;
    for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
        lines++;
        json_error_t je;
        json_t *j = json_loads(line, 0, &je); /* refuses invalid UTF-8 */
        ck_assert_msg(j != NULL, "not a JSON line (%s): %s", je.text, line);
        const char *path = json_string_value(json_object_get(j, "path"));
        if (path) {
            requests++;
            ck_assert_str_eq(path, "/p\xef\xbf\xbd\xef\xbf\xbd\"\\");
            ck_assert_int_eq(json_integer_value(json_object_get(j, "status")), 404);
        }
        json_decref(j);
    }
    ck_assert_int_ge(lines, 1);
    ck_assert_int_eq(requests, 1);
}
END_TEST

/* ---- slow clients ---- */

static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static unsigned nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 1024;
    return rl.rlim_cur > 1000000 ? 1000000 : (unsigned)rl.rlim_cur;
}

/* One plain request on a fresh connection from 127.0.0.1: its status, or 0 when none came. */
static int fresh_request(const tb_server *s, int timeout_ms)
{
    int fd = dial_from(s, 1);
    if (fd < 0)
        return 0;
    send_str(fd, "GET /ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    char buf[2048];
    bool closed;
    read_until_close(fd, buf, sizeof buf, timeout_ms, &closed);
    close(fd);
    int status = 0;
    if (sscanf(buf, "HTTP/1.1 %d ", &status) != 1)
        return 0;
    return status;
}

static bool peer_closed(int fd)
{
    char c;
    ssize_t r = recv(fd, &c, 1, MSG_DONTWAIT);
    return r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
}

/* 2,000 slow connections (half trickling their head a byte at a time, half their body) from
 * eight other addresses, while fresh clients keep getting answers; the deadlines then cut
 * every slow one, however steadily it trickled. */
START_TEST(slow_clients_are_cut_at_their_deadlines_and_fresh_clients_still_get_answers)
{
    raise_nofile();
    unsigned want = 2000;
    unsigned fit = (nofile() - 200) / 2; /* each connection costs a descriptor on both ends */
    unsigned n = want < fit ? want : fit;
    tb_server_opts o = TB_SERVER_OPTS_INIT;
    o.threads = 2;
    o.access_log = false;
    o.header_timeout_ms = 4000;
    o.body_timeout_ms = 4000;
    tb_server *s = start(&o);

    int *fds = calloc(n, sizeof *fds);
    unsigned opened = 0;
    for (unsigned i = 0; i < n; i++) {
        fds[i] = dial_from(s, 2 + (int)(i % 8));
        if (fds[i] < 0)
            continue;
        opened++;
        if (i % 2 == 0)
            send_str(fds[i], "GET /ping HTTP/1.1\r\nHo"); /* head never ends */
        else
            send_str(fds[i], "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                             "\r\nContent-Length: 100\r\n\r\n{\"a\":"); /* body never ends */
    }
    ck_assert_uint_eq(opened, n);

    /* Fresh clients while all of them are held, trickling a byte to each slow one between
     * requests (each byte reset libmicrohttpd's idle timeout; the deadlines are totals). */
    int answered = 0, asked = 0;
    uint64_t t0 = now_ms();
    while (now_ms() - t0 < 1000) {
        asked++;
        answered += fresh_request(s, 10000) == 200;
        for (unsigned i = 0; i < n; i++)
            send_all(fds[i], i % 2 == 0 ? "s" : " ", 1);
        struct timespec nap = {0, 100 * 1000 * 1000};
        nanosleep(&nap, NULL);
    }
    tb_server_stats st;
    tb_server_stats_get(s, &st);
    ck_assert_uint_ge(st.open, n); /* they were all still held while the fresh ones passed */
    ck_assert_int_eq(answered, asked);

    /* Keep trickling: every slow connection is cut once its deadline passes. */
    unsigned cut = 0;
    uint64_t t1 = now_ms();
    bool *gone = calloc(n, sizeof *gone);
    while (cut < n && now_ms() - t1 < 15000) {
        for (unsigned i = 0; i < n; i++) {
            if (gone[i])
                continue;
            if (peer_closed(fds[i])) {
                gone[i] = true;
                cut++;
            } else {
                send_all(fds[i], i % 2 == 0 ? "s" : " ", 1);
            }
        }
        struct timespec nap = {0, 200 * 1000 * 1000};
        nanosleep(&nap, NULL);
    }
    tb_server_stats_get(s, &st);
    printf("http-slow: %u slow connections held, %d/%d fresh requests answered, "
           "%llu head cuts, %llu body cuts\n",
           n, answered, asked, st.header_timeouts, st.body_timeouts);
    if (n < want)
        printf("http-slow: only %u of %u: the open-file limit is %u\n", n, want, nofile());
    fflush(stdout);
    ck_assert_uint_eq(cut, n);
    ck_assert_uint_ge(st.header_timeouts, n / 2);
    ck_assert_uint_ge(st.body_timeouts, n / 2);
    ck_assert_int_eq(fresh_request(s, 10000), 200);
    for (unsigned i = 0; i < n; i++)
        close(fds[i]);
    free(fds);
    free(gone);
    ck_assert_int_eq(tb_server_stop(s), 0);
    tb_server_free(s);
}
END_TEST

/* Past max_connections a new connection gets 503 at once, past the per-address cap 429, both
 * with Retry-After; other addresses are still served. */
START_TEST(connection_caps_answer_503_and_429_with_retry_after)
{
    tb_server_opts o = TB_SERVER_OPTS_INIT;
    o.threads = 1;
    o.access_log = false;
    o.max_connections = 40;
    o.max_connections_per_addr = 10;
    tb_server *s = start(&o);
    int held[40];
    int k = 0;
    for (int i = 0; i < 10; i++)
        held[k++] = dial_from(s, 2); /* 127.0.0.2: at its cap */
    /* let the door count them before the next one */
    for (int i = 0; i < 200; i++) {
        tb_server_stats st;
        tb_server_stats_get(s, &st);
        if (st.open == 10)
            break;
        usleep(5000);
    }
    int fd = dial_from(s, 2);
    char buf[4096];
    bool closed;
    read_until_close(fd, buf, sizeof buf, 5000, &closed);
    close(fd);
    ck_assert_msg(strncmp(buf, "HTTP/1.1 429 ", 13) == 0, "%s", buf);
    ck_assert_ptr_nonnull(strstr(buf, "Retry-After: 1\r\n"));
    ck_assert_ptr_nonnull(strstr(buf, "\"too_many_connections\""));
    ck_assert(closed);
    ck_assert_int_eq(fresh_request(s, 5000), 200); /* 127.0.0.1 is not capped by .2 */

    for (int h = 3; k < 40; h++) {
        for (int i = 0; i < 10 && k < 40; i++)
            held[k++] = dial_from(s, h);
    }
    for (int i = 0; i < 200; i++) {
        tb_server_stats st;
        tb_server_stats_get(s, &st);
        if (st.open == 40)
            break;
        usleep(5000);
    }
    fd = dial_from(s, 1);
    send_str(fd, "GET /ping HTTP/1.1\r\nHost: x\r\n\r\n");
    read_until_close(fd, buf, sizeof buf, 5000, &closed);
    close(fd);
    ck_assert_msg(strncmp(buf, "HTTP/1.1 503 ", 13) == 0, "%s", buf);
    ck_assert_ptr_nonnull(strstr(buf, "Retry-After: 1\r\n"));
    ck_assert_ptr_nonnull(strstr(buf, "\"overloaded\""));
    ck_assert(closed);
    tb_server_stats st;
    tb_server_stats_get(s, &st);
    ck_assert_uint_eq(st.refused_per_addr, 1);
    ck_assert_uint_eq(st.refused_overload, 1);
    for (int i = 0; i < 40; i++)
        close(held[i]);
    /* the closes give the places back */
    int status = 0;
    for (int i = 0; i < 200 && status != 200; i++) {
        usleep(10000);
        status = fresh_request(s, 5000);
    }
    ck_assert_int_eq(status, 200);
    ck_assert_int_eq(tb_server_stop(s), 0);
    tb_server_free(s);
}
END_TEST

/* A stop whose grace period ends while a client still trickles its body returns 0 (the
 * service exits 0 on SIGTERM) and counts the cut. */
START_TEST(stop_with_a_slow_body_in_flight_cuts_it_and_returns_0)
{
    tb_server_opts o = TB_SERVER_OPTS_INIT;
    o.threads = 1;
    o.access_log = false;
    o.shutdown_grace_ms = 300;
    tb_server *s = start(&o);
    int fd = dial_from(s, 1);
    send_str(fd, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 "Content-Length: 100\r\n\r\n{");
    for (int i = 0; i < 2000 && tb_server_in_flight(s) == 0; i++)
        usleep(1000);
    ck_assert_uint_eq(tb_server_in_flight(s), 1);
    ck_assert_int_eq(tb_server_stop(s), 0);
    char buf[1024];
    bool closed;
    read_until_close(fd, buf, sizeof buf, 5000, &closed);
    ck_assert(closed);
    close(fd);
    tb_server_stats st;
    tb_server_stats_get(s, &st);
    ck_assert_uint_eq(st.cut_at_stop, 1);
    tb_server_free(s);
}
END_TEST

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    tb_log_set_level(TB_LOG_OFF);
    Suite *suite = suite_create("http_hostile");
    TCase *tc = tcase_create("hostile");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, ambiguous_or_broken_framing_is_refused_with_one_answer_and_closed);
    tcase_add_test(tc, framing_is_checked_on_later_requests_of_a_kept_alive_connection);
    tcase_add_test(tc, error_bodies_stay_valid_utf8_when_they_quote_bad_bytes);
    tcase_add_test(tc, access_log_lines_are_json_whatever_the_path_bytes);
    tcase_add_test(tc, slow_clients_are_cut_at_their_deadlines_and_fresh_clients_still_get_answers);
    tcase_add_test(tc, connection_caps_answer_503_and_429_with_retry_after);
    tcase_add_test(tc, stop_with_a_slow_body_in_flight_cuts_it_and_returns_0);
    suite_add_tcase(suite, tc);
    SRunner *sr = srunner_create(suite);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
