/*
 * The listening socket of a server with several event loops (tb_rt_options.loops > 1).
 *
 * One thread accepts, waits for the start of the request without reading it (MSG_PEEK), and
 * hands the connection to the loop its Engine.IO session lives on, as @socket.io/sticky does
 * for Node.js workers: long-polling requests and the WebSocket upgrade of a session must reach
 * the loop that holds it. The loop's libwebsockets adopts the socket and reads the request
 * itself. A connection that sends nothing within a few seconds is handed over as it is (the
 * loop's own timeouts apply); one that closes first is closed.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "tablium/log.h"

/* What is peeked at: the request line of a polling request is well under this. */
#define PEEK_MAX 2048
/* A connection that has sent no whole line by then is handed over as it is. */
#define PEEK_WAIT_MS 5000
/* Connections waiting for their first line at most; beyond, new ones are handed over at once. */
#define PENDING_MAX 4096

typedef struct pending {
    int fd;
    int64_t deadline;
} pending;

struct tb_rt__acceptor {
    int lfd, ep, wake;
    pthread_t thread;
    bool started;
    tb_rt__route_fn route;
    void *ud;
    pending *p;
    size_t np, cap;
    int64_t paused_until; /* out of descriptors: the listening socket rests until then */
    uint64_t pauses;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int tb_rt__acceptor_listen(const char *host, int port, tb_rt__acceptor **out, int *bound,
                           tb_error *err)
{
    *out = NULL;
    char ports[16];
    snprintf(ports, sizeof ports, "%d", port);
    struct addrinfo hints = {0}, *ai = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    if (getaddrinfo(host, ports, &hints, &ai) != 0 || !ai) {
        tb_error_set(err, TB_EIO, "realtime: cannot resolve %s", host);
        return TB_EIO;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd >= 0)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, SOMAXCONN) != 0) {
        tb_error_set(err, TB_EIO, "realtime: cannot listen on %s:%d: %s", host, port,
                     strerror(errno));
        if (fd >= 0)
            close(fd);
        freeaddrinfo(ai);
        return TB_EIO;
    }
    freeaddrinfo(ai);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    *bound = port;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
        *bound = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                 : ((struct sockaddr_in *)&ss)->sin_port);
    tb_rt__acceptor *a = calloc(1, sizeof *a);
    if (!a) {
        close(fd);
        return TB_ENOMEM;
    }
    a->lfd = fd;
    a->ep = a->wake = -1;
    *out = a;
    return 0;
}

static void pending_drop(tb_rt__acceptor *a, size_t i)
{
    epoll_ctl(a->ep, EPOLL_CTL_DEL, a->p[i].fd, NULL);
    a->p[i] = a->p[--a->np];
}

static void hand_over(tb_rt__acceptor *a, int fd, const char *head, size_t len)
{
    a->route(fd, head, len, a->ud);
}

/* Peeks at pending connection i; true when it was handed over or closed (slot i freed). */
static bool peek(tb_rt__acceptor *a, size_t i)
{
    char buf[PEEK_MAX];
    int fd = a->p[i].fd;
    ssize_t n = recv(fd, buf, sizeof buf, MSG_PEEK);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return false;
    if (n <= 0) { /* closed or failed before saying anything */
        pending_drop(a, i);
        close(fd);
        return true;
    }
    if (!memchr(buf, '\n', (size_t)n) && (size_t)n < sizeof buf)
        return false; /* the request line is not complete yet */
    pending_drop(a, i);
    hand_over(a, fd, buf, (size_t)n);
    return true;
}

static void on_accept(tb_rt__acceptor *a)
{
    for (;;) {
        int fd = accept4(a->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                /* the listening socket stays readable: rest it a while rather than spin; the
                 * backlog waits (and overflows into the clients' retries) */
                if (a->pauses++ % 100 == 0)
                    tb_log_warn(NULL, "realtime: accept: %s (pausing new connections for 100 ms)",
                                strerror(errno));
                epoll_ctl(a->ep, EPOLL_CTL_DEL, a->lfd, NULL);
                a->paused_until = now_ms() + 100;
            }
            return; /* EAGAIN, or out of descriptors */
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (a->np == a->cap) {
            size_t cap = a->cap ? a->cap * 2 : 64;
            pending *p = a->np < PENDING_MAX ? realloc(a->p, cap * sizeof *p) : NULL;
            if (!p) { /* too many silent connections: this one goes as it is */
                hand_over(a, fd, "", 0);
                continue;
            }
            a->p = p;
            a->cap = cap;
        }
        struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | EPOLLET, .data.u64 = (uint64_t)fd};
        if (epoll_ctl(a->ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
            hand_over(a, fd, "", 0);
            continue;
        }
        a->p[a->np++] = (pending){fd, now_ms() + PEEK_WAIT_MS};
        peek(a, a->np - 1); /* the request often came with the connection */
    }
}

static void *acceptor_main(void *arg)
{
    tb_rt__acceptor *a = arg;
    struct epoll_event evs[64];
    for (;;) {
        int n = epoll_wait(a->ep, evs, 64, a->np ? 500 : a->paused_until ? 100 : -1);
        if (n < 0 && errno != EINTR)
            break;
        for (int k = 0; k < n; k++) {
            int fd = (int)evs[k].data.u64;
            if (fd == a->wake)
                return NULL;
            if (fd == a->lfd) {
                on_accept(a);
                continue;
            }
            for (size_t i = 0; i < a->np; i++)
                if (a->p[i].fd == fd) {
                    peek(a, i);
                    break;
                }
        }
        int64_t t = now_ms();
        if (a->paused_until && a->paused_until <= t) {
            struct epoll_event ev = {.events = EPOLLIN, .data.u64 = (uint64_t)a->lfd};
            if (epoll_ctl(a->ep, EPOLL_CTL_ADD, a->lfd, &ev) == 0)
                a->paused_until = 0;
        }
        for (size_t i = 0; i < a->np;) {
            if (a->p[i].deadline <= t) {
                int fd = a->p[i].fd;
                pending_drop(a, i);
                hand_over(a, fd, "", 0);
            } else {
                i++;
            }
        }
    }
    return NULL;
}

int tb_rt__acceptor_start(tb_rt__acceptor *a, tb_rt__route_fn route, void *ud)
{
    a->route = route;
    a->ud = ud;
    a->ep = epoll_create1(EPOLL_CLOEXEC);
    a->wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (a->ep < 0 || a->wake < 0)
        return TB_ENOMEM;
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = (uint64_t)a->lfd};
    struct epoll_event ew = {.events = EPOLLIN, .data.u64 = (uint64_t)a->wake};
    if (epoll_ctl(a->ep, EPOLL_CTL_ADD, a->lfd, &ev) != 0 ||
        epoll_ctl(a->ep, EPOLL_CTL_ADD, a->wake, &ew) != 0)
        return TB_ENOMEM;
    if (pthread_create(&a->thread, NULL, acceptor_main, a) != 0)
        return TB_ENOMEM;
    a->started = true;
    return 0;
}

void tb_rt__acceptor_free(tb_rt__acceptor *a)
{
    if (!a)
        return;
    if (a->started) {
        uint64_t one = 1;
        if (write(a->wake, &one, sizeof one) < 0) {
            /* the eventfd cannot be full: nothing else writes it */
        }
        pthread_join(a->thread, NULL);
    }
    for (size_t i = 0; i < a->np; i++)
        close(a->p[i].fd);
    free(a->p);
    if (a->ep >= 0)
        close(a->ep);
    if (a->wake >= 0)
        close(a->wake);
    close(a->lfd);
    free(a);
}
