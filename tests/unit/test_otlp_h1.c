/*
 * The OTLP exporter's HTTP/1.1 client (runtime/trace/h1.c): which URLs it takes (the rest go to
 * libcurl), and how it reads answers framed every way HTTP/1.1 allows, from a scripted peer on a
 * loopback socket that writes exact bytes (the exporter's tests talk to Node's http server,
 * which frames a few ways only). Each case checks the request the peer received too.
 */
#include "../../runtime/trace/internal.h"

#include <arpa/inet.h>
#include <check.h>
#include <net/if.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- which URLs ---- */

static void unset_proxies(void)
{
    unsetenv("http_proxy");
    unsetenv("HTTP_PROXY");
    unsetenv("all_proxy");
    unsetenv("ALL_PROXY");
}

START_TEST(urls_it_takes_and_the_parts_it_sends)
{
    unset_proxies();
    static const struct {
        const char *url, *host, *port, *authority, *target;
    } ok[] = {
        {"http://127.0.0.1:4318/v1/traces", "127.0.0.1", "4318", "127.0.0.1:4318", "/v1/traces"},
        {"HTTP://collector/v1/traces", "collector", "80", "collector", "/v1/traces"},
        {"http://[::1]:4318/v1/traces?tenant=a#frag", "::1", "4318", "[::1]:4318",
         "/v1/traces?tenant=a"},
        {"http://[::1]/x", "::1", "80", "[::1]", "/x"},
        {"http://h:/x", "h", "80", "h", "/x"},
        {"http://h", "h", "80", "h", "/"},
        {"http://h?q=1", "h", "80", "h", "/?q=1"},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        tb__h1 c;
        ck_assert_msg(tb__h1_init(&c, ok[i].url), "%s refused", ok[i].url);
        ck_assert_int_eq(c.fd, -1);
        ck_assert_str_eq(c.host, ok[i].host);
        ck_assert_str_eq(c.port, ok[i].port);
        ck_assert_str_eq(c.authority, ok[i].authority);
        ck_assert_str_eq(c.target, ok[i].target);
    }
    static const char *const libcurls[] = {
        "https://collector/v1/traces", /* TLS */
        "http://user:secret@collector/v1/traces", /* Basic from the URL */
        "http://collector:99999/v1/traces",
        "http://collector:12a/v1/traces",
        "http://collector:0/v1/traces",
        "http:///v1/traces",
        "http://[::1/v1/traces",
        "http://collector/a b", /* libcurl escapes it */
        "ftp://collector/",
    };
    for (size_t i = 0; i < sizeof libcurls / sizeof libcurls[0]; i++) {
        tb__h1 c;
        ck_assert_msg(!tb__h1_init(&c, libcurls[i]), "%s taken", libcurls[i]);
    }
    static const char *const proxies[] = {"http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"};
    for (size_t i = 0; i < 4; i++) {
        tb__h1 c;
        setenv(proxies[i], "http://proxy:3128", 1);
        ck_assert_msg(!tb__h1_init(&c, "http://collector/v1/traces"), "taken with %s", proxies[i]);
        unsetenv(proxies[i]);
    }
}
END_TEST

/* ---- answers from a scripted peer ---- */

typedef struct peer {
    int lfd, port;
    const char *const *answers; /* one per request; NULL: keep the connection, say nothing */
    size_t n_answers;
    bool close_after; /* close the connection after each answer */
    char got[8192];   /* the last request received: head and body */
    size_t got_len;
    int accepted;
    pthread_t th;
} peer;

/* Reads one request (head, then Content-Length bytes) into p->got; false at EOF. */
static bool read_request(peer *p, int fd)
{
    p->got_len = 0;
    for (;;) {
        char *end = memmem(p->got, p->got_len, "\r\n\r\n", 4);
        if (end) {
            char *cl = strcasestr(p->got, "Content-Length:");
            size_t want = (size_t)(end + 4 - p->got) + (cl ? strtoul(cl + 15, NULL, 10) : 0);
            if (p->got_len >= want)
                return true;
        }
        ssize_t n = recv(fd, p->got + p->got_len, sizeof p->got - 1 - p->got_len, 0);
        if (n <= 0)
            return false;
        p->got_len += (size_t)n;
        p->got[p->got_len] = '\0';
    }
}

static void *peer_main(void *arg)
{
    peer *p = arg;
    size_t next = 0;
    while (next < p->n_answers) {
        int fd = accept(p->lfd, NULL, NULL);
        if (fd < 0)
            break;
        p->accepted++;
        while (next < p->n_answers && read_request(p, fd)) {
            const char *a = p->answers[next++];
            if (!a) { /* silent: hold the connection until the client gives up */
                char b[256];
                while (recv(fd, b, sizeof b, 0) > 0)
                    ;
                break;
            }
            size_t n = strlen(a);
            if (send(fd, a, n, MSG_NOSIGNAL) != (ssize_t)n) /* the client then fails the case */
                break;
            if (p->close_after)
                break;
        }
        close(fd);
    }
    return NULL;
}

static void peer_start(peer *p, const char *const *answers, size_t n, bool close_after)
{
    memset(p, 0, sizeof *p);
    p->answers = answers;
    p->n_answers = n;
    p->close_after = close_after;
    p->lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    ck_assert_int_eq(bind(p->lfd, (struct sockaddr *)&a, sizeof a), 0);
    ck_assert_int_eq(listen(p->lfd, 4), 0);
    socklen_t l = sizeof a;
    getsockname(p->lfd, (struct sockaddr *)&a, &l);
    p->port = ntohs(a.sin_port);
    pthread_create(&p->th, NULL, peer_main, p);
}

static void peer_stop(peer *p)
{
    shutdown(p->lfd, SHUT_RDWR);
    pthread_join(p->th, NULL);
    close(p->lfd);
}

static const char HEAD[] = "POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n";

/* POSTs "hello" (in two pieces) to the peer; the status. */
static long post(tb__h1 *c, tb_buf *resp, long timeout_ms, atomic_bool *abort)
{
    struct iovec body[2] = {{(void *)"hel", 3}, {(void *)"lo", 2}};
    return tb__h1_post(c, HEAD, sizeof HEAD - 1, body, 2, resp, 1024,
                       tb__mono_ns() + (uint64_t)timeout_ms * 1000000u, abort);
}

static void client_for(tb__h1 *c, const peer *p)
{
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/traces", p->port);
    unset_proxies();
    ck_assert(tb__h1_init(c, url));
}

START_TEST(answers_framed_every_way_are_read_whole_on_one_connection)
{
    static const char *const answers[] = {
        /* an interim 100, then the answer */
        "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        /* chunked, with an extension, a trailer and a header folded in case */
        "HTTP/1.1 200 OK\r\ntransfer-encoding: Chunked\r\n\r\n3;x=1\r\nabc\r\n2\r\nde\r\n0\r\n"
        "X-Trailer: t\r\n\r\n",
        /* a body longer than what is kept (1024): the rest read and dropped */
        NULL, /* filled below */
        /* no body */
        "HTTP/1.1 204 No Content\r\nRetry-After: 7\r\n\r\n",
        /* a 503 with an HTTP-date long past: retry at once */
        "HTTP/1.1 503 Service Unavailable\r\nRetry-After: Wed, 21 Oct 2015 07:28:00 GMT\r\n"
        "Content-Length: 0\r\n\r\n",
    };
    char big[3000];
    int h = snprintf(big, sizeof big, "HTTP/1.1 200 OK\r\nContent-Length: 2000\r\n\r\n");
    memset(big + h, 'z', 2000);
    big[h + 2000] = '\0';
    const char *list[5] = {answers[0], answers[1], big, answers[3], answers[4]};
    peer p;
    peer_start(&p, list, 5, false);
    tb__h1 c;
    client_for(&c, &p);
    tb_buf resp = TB_BUF_INIT;

    ck_assert_int_eq(post(&c, &resp, 5000, NULL), 200);
    ck_assert_uint_eq(resp.len, 2);
    ck_assert(memcmp(resp.data, "ok", 2) == 0);
    ck_assert_ptr_nonnull(strstr(p.got, "\r\n\r\nhello")); /* head then both pieces */

    ck_assert_int_eq(post(&c, &resp, 5000, NULL), 200);
    ck_assert_uint_eq(resp.len, 5);
    ck_assert(memcmp(resp.data, "abcde", 5) == 0);

    ck_assert_int_eq(post(&c, &resp, 5000, NULL), 200);
    ck_assert_uint_eq(resp.len, 1024);

    ck_assert_int_eq(post(&c, &resp, 5000, NULL), 204);
    ck_assert_uint_eq(resp.len, 0);
    ck_assert_int_eq(c.retry_after_ms, 7000);

    ck_assert_int_eq(post(&c, &resp, 5000, NULL), 503);
    ck_assert_int_eq(c.retry_after_ms, 0);
    ck_assert_int_eq(p.accepted, 1); /* all five on one kept connection */
    tb__h1_close(&c);
    peer_stop(&p);
    tb_buf_deinit(&resp);
}
END_TEST

START_TEST(an_answer_delimited_by_close_and_a_closing_peer_each_get_a_new_connection)
{
    static const char *const answers[] = {
        "HTTP/1.0 200 OK\r\n\r\nuntil the end",
        "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 3\r\n\r\nbye",
        "HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n",
    };
    peer p;
    peer_start(&p, answers, 3, true);
    tb__h1 c;
    client_for(&c, &p);
    tb_buf resp = TB_BUF_INIT;
    ck_assert_int_eq(post(&c, &resp, 5000, NULL), 200);
    ck_assert_uint_eq(resp.len, strlen("until the end"));
    ck_assert_int_eq(c.fd, -1); /* HTTP/1.0 without keep-alive: closed */
    ck_assert_int_eq(post(&c, &resp, 5000, NULL), 200);
    ck_assert_int_eq(c.fd, -1);
    ck_assert_int_eq(post(&c, &resp, 5000, NULL), 202);
    ck_assert_int_eq(p.accepted, 3);
    tb__h1_close(&c);
    peer_stop(&p);
    tb_buf_deinit(&resp);
}
END_TEST

START_TEST(broken_answers_are_errors_and_the_connection_is_dropped)
{
    char huge[20000];
    memcpy(huge, "HTTP/1.1 200 OK\r\nX-Big: ", 24);
    memset(huge + 24, 'a', sizeof huge - 24 - 1);
    huge[sizeof huge - 1] = '\0';
    static const char *const bad[] = {
        "SMTP ready\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", /* then the peer closes */
        NULL,                                                 /* huge, below */
    };
    static const char *const why[] = {"not an HTTP/1 answer", "bad Content-Length",
                                      "bad chunk size", "closed inside the answer's body",
                                      "longer than"};
    for (size_t i = 0; i < 5; i++) {
        const char *one[1] = {bad[i] ? bad[i] : huge};
        peer p;
        peer_start(&p, one, 1, true);
        tb__h1 c;
        client_for(&c, &p);
        tb_buf resp = TB_BUF_INIT;
        ck_assert_int_eq(post(&c, &resp, 5000, NULL), 0);
        ck_assert_msg(strstr(c.err, why[i]) != NULL, "case %zu: %s", i, c.err);
        ck_assert_int_eq(c.fd, -1);
        peer_stop(&p);
        tb_buf_deinit(&resp);
    }
}
END_TEST

START_TEST(a_silent_collector_costs_the_deadline_and_an_abort_ends_the_wait)
{
    static const char *const silent[] = {NULL};
    peer p;
    peer_start(&p, silent, 1, false);
    tb__h1 c;
    client_for(&c, &p);
    uint64_t t0 = tb__mono_ns();
    ck_assert_int_eq(post(&c, NULL, 300, NULL), 0);
    uint64_t ms = (tb__mono_ns() - t0) / 1000000u;
    ck_assert_msg(ms >= 290 && ms < 3000, "gave up after %llu ms", (unsigned long long)ms);
    ck_assert_ptr_nonnull(strstr(c.err, "timed out"));
    ck_assert(!c.aborted);
    peer_stop(&p);

    peer_start(&p, silent, 1, false);
    client_for(&c, &p);
    atomic_bool stop = true; /* set before: the first wait sees it */
    t0 = tb__mono_ns();
    ck_assert_int_eq(post(&c, NULL, 60000, &stop), 0);
    ck_assert(c.aborted);
    ck_assert((tb__mono_ns() - t0) / 1000000u < 5000);
    peer_stop(&p);
}
END_TEST

START_TEST(nobody_listening_is_an_error_naming_the_address)
{
    peer p;
    static const char *const none[] = {NULL};
    peer_start(&p, none, 0, false); /* a port that was free, then closed */
    int port = p.port;
    peer_stop(&p);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/traces", port);
    unset_proxies();
    tb__h1 c;
    ck_assert(tb__h1_init(&c, url));
    ck_assert_int_eq(post(&c, NULL, 2000, NULL), 0);
    ck_assert_msg(strstr(c.err, "could not connect to 127.0.0.1") != NULL, "%s", c.err);
}
END_TEST

/* ---- a DNS server that never answers ---- */

/* In a network and mount namespace of its own: only lo, up, and /etc/resolv.conf naming a
 * server on 127.0.0.1:53 that reads queries and never answers, so glibc waits its whole timeout
 * (2 s here, 5 s twice by default). 0 when set up; dns_fd the silent server's socket. */
static int dns_fd = -1;
static char resolv[64];

static int silent_dns_namespace(void)
{
    if (unshare(CLONE_NEWNS | CLONE_NEWNET) != 0 ||
        mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
        return 1;
    FILE *f = fopen(resolv, "w");
    if (!f || fputs("nameserver 127.0.0.1\noptions timeout:2 attempts:1\n", f) < 0 ||
        fclose(f) != 0)
        return 2;
    if (mount(resolv, "/etc/resolv.conf", NULL, MS_BIND, NULL) != 0)
        return 3;
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    struct ifreq ifr = {0};
    snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "lo");
    if (s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) != 0)
        return 4;
    ifr.ifr_flags |= IFF_UP;
    if (ioctl(s, SIOCSIFFLAGS, &ifr) != 0)
        return 5;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(53)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(s, (struct sockaddr *)&a, sizeof a) != 0)
        return 6;
    dns_fd = s;
    return 0;
}

/* The child's checks, as its exit status: 0 all passed, else the first that failed. */
static int hanging_dns_child(void)
{
    int rc = silent_dns_namespace();
    if (rc)
        return 10 + rc;
    tb__h1 c;
    if (!tb__h1_init(&c, "http://collector.tablium-test.example:4318/v1/traces"))
        return 20;
    /* the deadline ends the wait, not glibc's timeout */
    uint64_t t0 = tb__mono_ns();
    if (post(&c, NULL, 300, NULL) != 0 || !strstr(c.err, "resolving") ||
        !strstr(c.err, "timed out"))
        return 21;
    uint64_t ms = (tb__mono_ns() - t0) / 1000000u;
    printf("otlp-h1: a DNS server that never answers: the post gave up after %llu ms (deadline "
           "300 ms): %s\n", (unsigned long long)ms, c.err);
    if (ms < 290 || ms > 1500)
        return 22;
    if (!c.lookup)
        return 23; /* the lookup goes on, kept for the next try */
    /* an abort ends it too, at once */
    atomic_bool stop = true;
    t0 = tb__mono_ns();
    if (post(&c, NULL, 60000, &stop) != 0 || !c.aborted ||
        (tb__mono_ns() - t0) / 1000000u > 500)
        return 24;
    /* the next try picks up the same lookup; once it fails, the name is the error */
    t0 = tb__mono_ns();
    if (post(&c, NULL, 60000, NULL) != 0 || !strstr(c.err, "could not resolve host "
                                                             "collector.tablium-test.example"))
        return 25;
    printf("otlp-h1: the same lookup, waited for on the next try, ended after %llu ms more: "
           "%s\n", (unsigned long long)((tb__mono_ns() - t0) / 1000000u), c.err);
    if (c.lookup)
        return 26;
    /* one given up while it runs: freed or left to glibc, never a crash */
    if (post(&c, NULL, 100, NULL) != 0 || !c.lookup)
        return 27;
    tb__h1_free(&c);
    if (c.lookup)
        return 28;
    return 0;
}

START_TEST(a_dns_server_that_never_answers_costs_the_deadline_not_its_timeout)
{
    if (geteuid() != 0) { /* a network namespace needs root (CI runs as root) */
        printf("otlp-h1: hanging DNS case not run: it needs root for a network namespace\n");
        return;
    }
    snprintf(resolv, sizeof resolv, "/tmp/tb-h1-resolv-%d", (int)getpid());
    fflush(stdout);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int rc = hanging_dns_child();
        fflush(stdout);
        _exit(rc);
    }
    int st = 0;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    unlink(resolv);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
                  "the child's check %d failed (1x: namespace set-up, 2x: the client)",
                  WIFEXITED(st) ? WEXITSTATUS(st) : -1);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("otlp_h1");
    TCase *tc = tcase_create("h1");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, urls_it_takes_and_the_parts_it_sends);
    tcase_add_test(tc, answers_framed_every_way_are_read_whole_on_one_connection);
    tcase_add_test(tc, an_answer_delimited_by_close_and_a_closing_peer_each_get_a_new_connection);
    tcase_add_test(tc, broken_answers_are_errors_and_the_connection_is_dropped);
    tcase_add_test(tc, a_silent_collector_costs_the_deadline_and_an_abort_ends_the_wait);
    tcase_add_test(tc, nobody_listening_is_an_error_naming_the_address);
    tcase_add_test(tc, a_dns_server_that_never_answers_costs_the_deadline_not_its_timeout);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
