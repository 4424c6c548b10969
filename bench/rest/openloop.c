/*
 * bench_openloop: an open-loop HTTP/1.1 load generator for bench/rest/run.sh, in the manner of
 * wrk2. It sends requests at a fixed rate whatever the server does, and measures each request's
 * latency from the moment it was due to be sent, not from the moment it was sent. A server that
 * stalls is therefore charged for every request that waited on it: there is no coordinated
 * omission.
 *
 * Why it exists: wrk is closed-loop. Each connection sends its next request only when the last
 * one has been answered, and wrk runs flat out on the same 2 CPUs as the server. Its p99 is then
 * a picture of the scheduler rather than of the server. On this VM (HZ=250, 4 ms ticks) it
 * settles at one or two ticks depending on which threads stay runnable. A faster server keeps
 * wrk busier and so gets a worse p99: adding 1 us of spinning to each response of the wallet
 * server lowered its wrk p99 from 7.9 ms to 4.5 ms. Two servers' latencies are comparable only at
 * the same offered load, which is what this tool gives.
 *
 *   bench_openloop -R RATE [-d SECONDS] [-w WARMUP] [-c CONNECTIONS] [-t THREADS]
 *                  [-m METHOD] [-b BODY_FILE] [-H 'Name: value']... http://HOST:PORT/PATH
 *
 * Connections are spread over threads, and each thread sends RATE/THREADS requests per second
 * on a timerfd schedule. Each connection has at most one request in flight (no pipelining). A
 * request that is due while all of its thread's connections are busy waits for one, and that wait
 * counts in its latency. Requests due during the first WARMUP seconds are sent but not measured.
 *
 * When the time is up, answers still in flight get 2 s more; any still missing then, and any
 * request that was due but never sent, count with the latency they had reached (a lower bound),
 * so a stall at the end is not left out of the percentiles.
 *
 * Prints one line:
 *   openloop: rate R/s sent S done D errors E non2xx N behind B p50 X p90 X p99 X p999 X max X (ms)
 * behind: requests due but never sent. More than 1% of the total means the server (or this
 * tool) could not keep up with RATE, and the exit status is 2. Exit status 1: bad usage, no
 * connection, a connection closed mid-run, or a malformed answer.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define MAX_HEADERS 16
#define RBUF 16384

typedef struct {
    int fd;
    int busy;
    uint64_t due; /* when its in-flight request was due, ns */
    size_t have;
    char buf[RBUF];
} conn;

typedef struct {
    int id, nthreads;
    int nconn;
    double rate;
    uint64_t start, warm_end, end;
    conn *conns;
    uint64_t *lat; /* measured latencies, ns */
    size_t nlat, cap;
    uint64_t sent, done, errors, non2xx, behind;
    int failed;
} worker;

static struct addrinfo *g_addr;
static char *g_req;
static size_t g_req_len;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int connect_one(void)
{
    int fd = socket(g_addr->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, g_addr->ai_addr, g_addr->ai_addrlen) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int send_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* 1: a whole response is buffered (status in *status), 0: not yet, -1: malformed */
static int parse_response(conn *c, int *status)
{
    char *end = memmem(c->buf, c->have, "\r\n\r\n", 4);
    if (!end)
        return c->have >= RBUF ? -1 : 0;
    size_t head = (size_t)(end - c->buf) + 4;
    if (c->have < 12 || memcmp(c->buf, "HTTP/1.", 7) != 0)
        return -1;
    *status = atoi(c->buf + 9);
    long len = -1;
    int close_it = 0;
    for (char *line = memchr(c->buf, '\n', head); line && line < end; line = memchr(line, '\n', (size_t)(end - line))) {
        line++;
        if (strncasecmp(line, "content-length:", 15) == 0)
            len = strtol(line + 15, NULL, 10);
        else if (strncasecmp(line, "connection:", 11) == 0) {
            const char *v = line + 11;
            while (*v == ' ')
                v++;
            if (strncasecmp(v, "close", 5) == 0)
                close_it = 1;
        }
    }
    if (len < 0 && (*status == 204 || *status == 304))
        len = 0; /* no body by definition */
    if (len < 0 || close_it)
        return -1; /* the servers measured here always send Content-Length and keep the connection */
    if (c->have < head + (size_t)len)
        return c->have >= RBUF ? -1 : 0;
    if (c->have > head + (size_t)len)
        return -1; /* more than one response: nothing was pipelined */
    return 1;
}

static void record(worker *w, uint64_t due, uint64_t t)
{
    if (due < w->warm_end)
        return;
    if (w->nlat == w->cap) {
        w->cap = w->cap ? w->cap * 2 : 65536;
        w->lat = realloc(w->lat, w->cap * sizeof *w->lat);
        if (!w->lat) {
            perror("bench_openloop: realloc");
            exit(1);
        }
    }
    w->lat[w->nlat++] = t - due;
}

static void *run(void *arg)
{
    worker *w = arg;
    int ep = epoll_create1(EPOLL_CLOEXEC);
    int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = UINT64_MAX};
    epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &ev);
    int *idle = calloc((size_t)w->nconn, sizeof *idle);
    int nidle = 0;
    for (int i = 0; i < w->nconn; i++) {
        conn *c = &w->conns[i];
        c->fd = connect_one();
        if (c->fd < 0) {
            fprintf(stderr, "bench_openloop: connect: %s\n", strerror(errno));
            w->failed = 1;
            free(idle);
            close(tfd);
            close(ep);
            return NULL;
        }
        ev.data.u64 = (uint64_t)i;
        epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
        idle[nidle++] = i;
    }
    double interval = 1e9 / w->rate;
    /* the threads' schedules interleave instead of firing together */
    uint64_t start = w->start + (uint64_t)(interval * w->id / w->nthreads);
    uint64_t k = 0; /* requests sent; request k is due at start + k * interval */
    struct epoll_event evs[64];
    const uint64_t drain_end = w->end + 2000000000u; /* in-flight answers get 2 s more */
    for (;;) {
        uint64_t t = now_ns();
        bool sending = t < w->end;
        if (!sending && nidle == w->nconn)
            break; /* everything sent was answered */
        if (!sending && t >= drain_end) {
            /* still unanswered: counted as answered now, a lower bound of their latency */
            for (int i = 0; i < w->nconn; i++)
                if (w->conns[i].busy)
                    record(w, w->conns[i].due, t);
            break;
        }
        while (sending && nidle > 0) {
            uint64_t due = start + (uint64_t)(interval * (double)k);
            if (due > t)
                break;
            conn *c = &w->conns[idle[--nidle]];
            c->busy = 1;
            c->due = due;
            c->have = 0;
            if (send_all(c->fd, g_req, g_req_len) != 0) {
                fprintf(stderr, "bench_openloop: send: %s\n", strerror(errno));
                w->failed = 1;
                goto out;
            }
            k++;
            w->sent++;
        }
        if (sending && nidle > 0) {
            uint64_t due = start + (uint64_t)(interval * (double)k);
            struct itimerspec its = {.it_value = {.tv_sec = (time_t)(due / 1000000000u),
                                                  .tv_nsec = (long)(due % 1000000000u)}};
            timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL);
        }
        uint64_t left = ((sending ? w->end : drain_end) - t) / 1000000u + 1;
        int timeout = left > 1000 ? 1000 : (int)left;
        int n = epoll_wait(ep, evs, 64, timeout);
        uint64_t got = now_ns();
        for (int i = 0; i < n; i++) {
            if (evs[i].data.u64 == UINT64_MAX) {
                uint64_t x;
                (void)!read(tfd, &x, sizeof x);
                continue;
            }
            int ci = (int)evs[i].data.u64;
            conn *c = &w->conns[ci];
            ssize_t r = recv(c->fd, c->buf + c->have, RBUF - c->have, MSG_DONTWAIT);
            if (r < 0 && (errno == EAGAIN || errno == EINTR))
                continue;
            if (r <= 0 || !c->busy) {
                fprintf(stderr, "bench_openloop: connection %d %s\n", ci,
                        r == 0 ? "closed by the server" : r < 0 ? strerror(errno) : "got unasked bytes");
                w->failed = 1;
                goto out;
            }
            c->have += (size_t)r;
            int status = 0;
            int p = parse_response(c, &status);
            if (p == 0)
                continue;
            if (p < 0) {
                fprintf(stderr, "bench_openloop: malformed or unexpected response on connection %d\n", ci);
                w->errors++;
                w->failed = 1;
                goto out;
            }
            if (status < 200 || status > 299)
                w->non2xx++;
            w->done++;
            record(w, c->due, got);
            c->busy = 0;
            idle[nidle++] = ci;
        }
    }
    {
        /* requests due before the end but never sent (no connection was free): they count too,
         * with the time they had waited by the end (a lower bound), so a stall at the end
         * cannot hide from the percentiles */
        uint64_t due_total =
            start < w->end ? (uint64_t)((double)(w->end - start - 1) / interval) + 1 : 0;
        w->behind = due_total > k ? due_total - k : 0;
        for (uint64_t q = k; q < due_total; q++)
            record(w, start + (uint64_t)(interval * (double)q), w->end);
    }
out:
    for (int i = 0; i < w->nconn; i++)
        if (w->conns[i].fd >= 0)
            close(w->conns[i].fd);
    free(idle);
    close(tfd);
    close(ep);
    return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void usage(void)
{
    fprintf(stderr, "usage: bench_openloop -R RATE [-d SECONDS] [-w WARMUP] [-c CONNECTIONS] [-t THREADS]\n"
                    "                      [-m METHOD] [-b BODY_FILE] [-H 'Name: value']... http://HOST:PORT/PATH\n");
    exit(1);
}

int main(int argc, char **argv)
{
    double rate = 0, seconds = 10, warmup = 1;
    int nconn = 64, nthreads = 2, nh = 0, opt;
    const char *method = "GET", *body_file = NULL, *headers[MAX_HEADERS];
    while ((opt = getopt(argc, argv, "R:d:w:c:t:m:b:H:")) != -1) {
        switch (opt) {
        case 'R': rate = atof(optarg); break;
        case 'd': seconds = atof(optarg); break;
        case 'w': warmup = atof(optarg); break;
        case 'c': nconn = atoi(optarg); break;
        case 't': nthreads = atoi(optarg); break;
        case 'm': method = optarg; break;
        case 'b': body_file = optarg; break;
        case 'H':
            if (nh == MAX_HEADERS)
                usage();
            headers[nh++] = optarg;
            break;
        default: usage();
        }
    }
    if (optind != argc - 1 || rate <= 0 || seconds <= 0 || warmup < 0 || nthreads < 1 || nconn < nthreads)
        usage();
    if (strcmp(method, "HEAD") == 0) {
        fprintf(stderr, "bench_openloop: HEAD is not supported (its answers have no body to wait for)\n");
        return 1;
    }
    const char *url = argv[optind];
    if (strncmp(url, "http://", 7) != 0)
        usage();
    char host[256], port[16] = "80";
    const char *hp = url + 7, *path = strchr(hp, '/');
    size_t hl = path ? (size_t)(path - hp) : strlen(hp);
    if (!path)
        path = "/";
    if (hl == 0 || hl >= sizeof host)
        usage();
    memcpy(host, hp, hl);
    host[hl] = 0;
    char *colon = strrchr(host, ':');
    if (colon) {
        snprintf(port, sizeof port, "%s", colon + 1);
        *colon = 0;
    }
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM};
    int gai = getaddrinfo(host, port, &hints, &g_addr);
    if (gai != 0) {
        fprintf(stderr, "bench_openloop: %s: %s\n", host, gai_strerror(gai));
        return 1;
    }

    char *body = NULL;
    size_t body_len = 0;
    if (body_file) {
        FILE *f = fopen(body_file, "rb");
        if (!f) {
            perror(body_file);
            return 1;
        }
        struct stat st;
        if (fstat(fileno(f), &st) != 0 || !(body = malloc((size_t)st.st_size + 1)) ||
            fread(body, 1, (size_t)st.st_size, f) != (size_t)st.st_size) {
            fprintf(stderr, "bench_openloop: cannot read %s\n", body_file);
            fclose(f);
            return 1;
        }
        body_len = (size_t)st.st_size;
        fclose(f);
    }
    /* the request, sized exactly: request line, Host, the -H headers, Content-Length, body */
    size_t cap = strlen(method) + strlen(path) + strlen(host) + strlen(port) + 64 + body_len;
    for (int i = 0; i < nh; i++)
        cap += strlen(headers[i]) + 2;
    g_req = malloc(cap);
    if (!g_req) {
        fprintf(stderr, "bench_openloop: out of memory\n");
        return 1;
    }
    size_t n = (size_t)snprintf(g_req, cap, "%s %s HTTP/1.1\r\nHost: %s:%s\r\n", method, path,
                                host, port);
    for (int i = 0; i < nh; i++)
        n += (size_t)snprintf(g_req + n, cap - n, "%s\r\n", headers[i]);
    if (body_file)
        n += (size_t)snprintf(g_req + n, cap - n, "Content-Length: %zu\r\n", body_len);
    n += (size_t)snprintf(g_req + n, cap - n, "\r\n");
    if (n + body_len > cap) {
        fprintf(stderr, "bench_openloop: request sizing error\n");
        return 1;
    }
    if (body_len)
        memcpy(g_req + n, body, body_len);
    g_req_len = n + body_len;
    free(body);

    worker *ws = calloc((size_t)nthreads, sizeof *ws);
    pthread_t *tids = calloc((size_t)nthreads, sizeof *tids);
    uint64_t start = now_ns() + 200000000u; /* 200 ms to connect */
    for (int i = 0; i < nthreads; i++) {
        worker *w = &ws[i];
        w->id = i;
        w->nthreads = nthreads;
        w->nconn = nconn / nthreads + (i < nconn % nthreads);
        w->rate = rate / nthreads;
        w->start = start;
        w->warm_end = start + (uint64_t)(warmup * 1e9);
        w->end = w->warm_end + (uint64_t)(seconds * 1e9);
        w->conns = calloc((size_t)w->nconn, sizeof *w->conns);
        for (int j = 0; j < w->nconn; j++)
            w->conns[j].fd = -1;
        pthread_create(&tids[i], NULL, run, w);
    }
    uint64_t sent = 0, done = 0, errors = 0, non2xx = 0, behind = 0, nlat = 0;
    int failed = 0;
    for (int i = 0; i < nthreads; i++) {
        pthread_join(tids[i], NULL);
        sent += ws[i].sent;
        done += ws[i].done;
        errors += ws[i].errors;
        non2xx += ws[i].non2xx;
        behind += ws[i].behind;
        nlat += ws[i].nlat;
        failed |= ws[i].failed;
    }
    uint64_t *all = malloc((nlat ? nlat : 1) * sizeof *all);
    size_t at = 0;
    for (int i = 0; i < nthreads; i++) {
        if (ws[i].nlat)
            memcpy(all + at, ws[i].lat, ws[i].nlat * sizeof *all);
        at += ws[i].nlat;
        free(ws[i].lat);
        free(ws[i].conns);
    }
    qsort(all, nlat, sizeof *all, cmp_u64);
#define PCT(p) (nlat ? (double)all[(size_t)((double)(nlat - 1) * (p))] / 1e6 : 0.0)
    printf("openloop: rate %.0f/s sent %llu done %llu errors %llu non2xx %llu behind %llu "
           "p50 %.3f p90 %.3f p99 %.3f p999 %.3f max %.3f (ms)\n",
           rate, (unsigned long long)sent, (unsigned long long)done, (unsigned long long)errors,
           (unsigned long long)non2xx, (unsigned long long)behind, PCT(0.50), PCT(0.90), PCT(0.99),
           PCT(0.999), PCT(1.0));
    free(all);
    free(ws);
    free(tids);
    free(g_req);
    freeaddrinfo(g_addr);
    if (failed)
        return 1;
    if ((double)behind > 0.01 * rate * (seconds + warmup)) {
        fprintf(stderr, "bench_openloop: %llu requests were never sent: the rate %.0f/s was not kept up\n",
                (unsigned long long)behind, rate);
        return 2;
    }
    return 0;
}
