/*
 * Regression test: stopping a server (SIGTERM -> tb_server_stop) while its worker threads are
 * busy must not abort the process.
 *
 * With libmicrohttpd's epoll thread pool, MHD_quiesce_daemon() (called by tb_server_stop) marks
 * each worker quiesced and then takes the listen socket out of that worker's epoll set; the
 * worker, when it wakes up in between, takes it out itself first. The quiesce's epoll_ctl(DEL)
 * then fails with ENOENT and libmicrohttpd MHD_PANICs ("Failed to remove listen FD from epoll
 * set", daemon.c:5531 in 0.9.75): abort(), exit status 134. In real life the window is a few
 * instructions wide (contract_wallet hit it once in `make test-fast`); here this executable's
 * own epoll_ctl() (it interposes on libc's for libmicrohttpd too) holds the stopping thread's
 * EPOLL_CTL_DEL for 100 ms and, meanwhile, closes the clients' keep-alive connections, which
 * wakes the workers: the old server aborted every time.
 */
#include "tablium/http.h"
#include "tablium/log.h"

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* ---- the epoll_ctl hook ---- */

#define N_CLIENTS 4

static atomic_int stopper_tid;        /* 0: the hook passes everything through */
static int client_fd[N_CLIENTS];
static atomic_int held;               /* DELs the hook held */

int epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev)
{
    int tid = atomic_load(&stopper_tid);
    if (op == EPOLL_CTL_DEL && tid != 0 && (int)syscall(SYS_gettid) == tid) {
        if (atomic_fetch_add(&held, 1) == 0)
            for (int i = 0; i < N_CLIENTS; i++)
                if (client_fd[i] >= 0) {
                    close(client_fd[i]); /* FIN: each worker holding one wakes up */
                    client_fd[i] = -1;
                }
        struct timespec t = {0, 100 * 1000 * 1000};
        nanosleep(&t, NULL);
    }
    return (int)syscall(SYS_epoll_ctl, epfd, op, fd, ev);
}

/* ---- a one-operation service ---- */

static int ping(tb_ctx *ctx, const tb_http_req *req, tb_http_res *res)
{
    (void)ctx, (void)req;
    res->status = 200;
    tb_buf_reset(&res->body);
    tb_buf_puts(&res->body, "{\"data\":{}}");
    return res->body.oom ? TB_ENOMEM : 0;
}

static const tb_http_op ops[] = {{"ping", TB_HTTP_GET, "/ping", 0, ping, NULL}};
static const int16_t routes[][TB_HTTP_N_METHODS] = {{0, -1, -1, -1, -1, -1, -1, -1}};

static int match(const char *p, size_t n, int method, tb_str *params, size_t *n_params)
{
    (void)method; /* one operation per path here */
    (void)params;
    *n_params = 0;
    return n == 5 && memcmp(p, "/ping", 5) == 0 ? 0 : -1;
}

static const tb_http_api api = {"race", "Race", "1.0", ops, 1, match, routes, 1, NULL, NULL, 0, NULL, 0, NULL, 0};

/* A keep-alive connection that has had one answered request. */
static int connect_and_ping(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    static const char req[] = "GET /ping HTTP/1.1\r\nHost: x\r\n\r\n";
    ck_assert_int_eq(send(fd, req, sizeof req - 1, MSG_NOSIGNAL), (ssize_t)(sizeof req - 1));
    char buf[2048];
    size_t got = 0;
    while (got < sizeof buf - 1) { /* the whole (small) response: headers and {"data":{}} */
        ssize_t n = recv(fd, buf + got, sizeof buf - 1 - got, 0);
        ck_assert_int_gt(n, 0);
        got += (size_t)n;
        buf[got] = '\0';
        if (strstr(buf, "{\"data\":{}}"))
            break;
    }
    ck_assert_msg(strncmp(buf, "HTTP/1.1 200", 12) == 0, "%s", buf);
    return fd;
}

START_TEST(stop_survives_workers_waking_while_it_quiesces)
{
    for (int round = 0; round < 3; round++) {
        tb_server_opts o = TB_SERVER_OPTS_INIT;
        o.threads = 2; /* a worker pool, as in the services (TB_THREADS=2 in contract tests) */
        o.access_log = false;
        tb_server *s = tb_server_new(&api, &o, NULL);
        ck_assert_ptr_nonnull(s);
        ck_assert_int_eq(tb_server_start(s, NULL), 0);
        for (int i = 0; i < N_CLIENTS; i++)
            client_fd[i] = connect_and_ping(tb_server_port(s));
        atomic_store(&held, 0);
        atomic_store(&stopper_tid, (int)syscall(SYS_gettid));
        int rc = tb_server_stop(s); /* the old code aborted in here */
        atomic_store(&stopper_tid, 0);
        ck_assert_int_eq(rc, 0);
        for (int i = 0; i < N_CLIENTS; i++)
            if (client_fd[i] >= 0) { /* the hook never ran: no epoll_ctl(DEL) from stop */
                close(client_fd[i]);
                client_fd[i] = -1;
            }
        tb_server_free(s);
    }
}
END_TEST

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    tb_log_set_level(TB_LOG_ERROR);
    Suite *suite = suite_create("http_stop_race");
    TCase *tc = tcase_create("stop");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, stop_survives_workers_waking_while_it_quiesces);
    suite_add_tcase(suite, tc);
    SRunner *sr = srunner_create(suite);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
