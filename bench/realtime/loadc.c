/*
 * bench_realtime_loadc: the C load client of bench/realtime/run.sh (a Node.js client taking
 * 100,000 messages a second on the same two cores queues, and its queueing showed in the p99).
 *
 *   bench_realtime_loadc HOST PORT CLIENTS RATE SECONDS
 *
 * CLIENTS WebSocket clients (libwebsockets, one thread) speak just enough Engine.IO / Socket.IO:
 * open -> CONNECT, ping -> pong, `join` with an ack; then one more client emits `broadcast` RATE
 * times a second for SECONDS with {"s": n, "p": 100 bytes, "t": CLOCK_MONOTONIC ns}; each `tick`
 * received gives a latency. Prints one JSON object like driver.js's paced mode: deliveries,
 * expected, p50, p99, max (ms), seconds, cpuSeconds and userSeconds of the server (SERVER_PID).
 */
#include <libwebsockets.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct conn {
    struct lws *wsi;
    int is_ctl;
    int state; /* 0 connecting, 1 connected (40 received), 2 joined */
    char out[4][256];
    int nout;
} conn;

static struct {
    int clients, rate, seconds;
    const char *host;
    int port;
    conn *c;
    int joined, ctl_ready, sent, total, failed;
    uint64_t *lat;
    size_t nlat, caplat;
    uint64_t t0, tend;
    struct lws_context *ctx;
    lws_sorted_usec_list_t sul;
    int done;
} g;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void send_text(conn *c, const char *s)
{
    if (c->nout < 4) {
        snprintf(c->out[c->nout++], sizeof c->out[0], "%s", s);
        lws_callback_on_writable(c->wsi);
    }
}

static void tick(lws_sorted_usec_list_t *sul)
{
    (void)sul;
    if (g.sent >= g.total)
        return;
    conn *ctl = &g.c[g.clients];
    char msg[256];
    snprintf(msg, sizeof msg, "42[\"broadcast\",{\"s\":%d,\"p\":\"%.100s\",\"t\":%llu}]", g.sent,
             "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
             "xxxxxxxxxxxxxxxx",
             (unsigned long long)now_ns());
    send_text(ctl, msg);
    g.sent++;
    if (g.sent < g.total) {
        uint64_t due = g.t0 + (uint64_t)g.sent * 1000000000u / (uint64_t)g.rate;
        uint64_t n = now_ns();
        lws_sul_schedule(g.ctx, 0, &g.sul, tick, due > n ? (lws_usec_t)((due - n) / 1000) : 1);
    } else {
        g.tend = now_ns();
    }
}

static void maybe_start(void)
{
    if (g.t0 || g.joined < g.clients || !g.ctl_ready)
        return;
    g.t0 = now_ns();
    lws_sul_schedule(g.ctx, 0, &g.sul, tick, 1);
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    (void)user;
    conn *k = (conn *)lws_get_opaque_user_data(wsi);
    switch (reason) {
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR: g.failed++; break;
    case LWS_CALLBACK_CLIENT_RECEIVE: {
        const char *m = in;
        if (!k || len == 0)
            break;
        if (m[0] == '0') {
            send_text(k, "40");
        } else if (len == 1 && m[0] == '2') {
            send_text(k, "3");
        } else if (len >= 2 && m[0] == '4' && m[1] == '0') {
            k->state = 1;
            if (k->is_ctl) {
                g.ctl_ready = 1;
                maybe_start();
            } else {
                send_text(k, "420[\"join\"]");
            }
        } else if (len >= 3 && m[0] == '4' && m[1] == '3' && m[2] == '0' && k->state == 1) {
            k->state = 2;
            g.joined++;
            maybe_start();
        } else if (len >= 2 && m[0] == '4' && m[1] == '2') {
            uint64_t t = now_ns();
            const char *p = memmem(m, len, "\"t\":", 4);
            if (p) {
                uint64_t sent = strtoull(p + 4, NULL, 10);
                if (g.nlat == g.caplat) {
                    g.caplat = g.caplat ? g.caplat * 2 : 1 << 16;
                    g.lat = realloc(g.lat, g.caplat * sizeof *g.lat);
                }
                g.lat[g.nlat++] = t - sent;
            }
        }
        break;
    }
    case LWS_CALLBACK_CLIENT_WRITEABLE:
        if (k && k->nout) {
            unsigned char buf[LWS_PRE + 256];
            size_t n = strlen(k->out[0]);
            memcpy(buf + LWS_PRE, k->out[0], n);
            if (lws_write(wsi, buf + LWS_PRE, n, LWS_WRITE_TEXT) < 0)
                return -1;
            memmove(k->out[0], k->out[1], sizeof k->out[0] * 3);
            k->nout--;
            if (k->nout)
                lws_callback_on_writable(wsi);
        }
        break;
    default: break;
    }
    return 0;
}

static const struct lws_protocols protocols[] = {{"bench", callback, 0, 4096, 0, NULL, 0},
                                                 {NULL, NULL, 0, 0, 0, NULL, 0}};

static int cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void server_cpu(double *total, double *user)
{
    *total = *user = 0;
    const char *pid = getenv("SERVER_PID");
    char path[64], buf[1024];
    if (!pid)
        return;
    snprintf(path, sizeof path, "/proc/%s/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    unsigned long long ut = 0, st = 0;
    if (p &&
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) == 2) {
        *user = (double)ut / 100.0;
        *total = (double)(ut + st) / 100.0;
    }
}

int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: bench_realtime_loadc HOST PORT CLIENTS RATE SECONDS\n");
        return 2;
    }
    g.host = argv[1];
    g.port = atoi(argv[2]);
    g.clients = atoi(argv[3]);
    g.rate = atoi(argv[4]);
    g.seconds = atoi(argv[5]);
    g.total = g.rate * g.seconds;
    g.c = calloc((size_t)g.clients + 1, sizeof *g.c);
    lws_set_log_level(LLL_ERR, NULL);
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = protocols;
    info.fd_limit_per_thread = (unsigned)g.clients + 64;
    g.ctx = lws_create_context(&info);
    if (!g.ctx)
        return 1;
    for (int i = 0; i <= g.clients; i++) {
        struct lws_client_connect_info ci;
        memset(&ci, 0, sizeof ci);
        ci.context = g.ctx;
        ci.address = g.host;
        ci.port = g.port;
        ci.path = "/socket.io/?EIO=4&transport=websocket";
        ci.host = g.host;
        ci.origin = g.host;
        ci.protocol = NULL;
        ci.local_protocol_name = "bench";
        ci.opaque_user_data = &g.c[i];
        g.c[i].is_ctl = i == g.clients;
        g.c[i].wsi = lws_client_connect_via_info(&ci);
        if (!g.c[i].wsi)
            g.failed++;
        if (i % 100 == 99) /* in waves: the listen backlog is finite */
            for (int k = 0; k < 20; k++)
                lws_service(g.ctx, 0);
    }
    double c0 = 0, u0 = 0, c1, u1;
    uint64_t expected = (uint64_t)g.total * (uint64_t)g.clients;
    uint64_t deadline = now_ns() + (uint64_t)(g.seconds + 30) * 1000000000u;
    int measuring = 0;
    while (!g.failed && now_ns() < deadline) {
        lws_service(g.ctx, 0);
        if (g.t0 && !measuring) {
            measuring = 1;
            server_cpu(&c0, &u0);
        }
        if (g.nlat >= expected)
            break;
        if (g.tend && now_ns() > g.tend + 5000000000u)
            break; /* 5 s after the last emit: what did not come is lost */
    }
    server_cpu(&c1, &u1);
    uint64_t t_end = now_ns();
    qsort(g.lat, g.nlat, sizeof *g.lat, cmp);
    double p50 = g.nlat ? (double)g.lat[g.nlat / 2] / 1e6 : -1;
    double p99 = g.nlat ? (double)g.lat[(size_t)((double)g.nlat * 0.99)] / 1e6 : -1;
    double mx = g.nlat ? (double)g.lat[g.nlat - 1] / 1e6 : -1;
    printf("{\"deliveries\": %zu, \"expected\": %llu, \"p50\": %.3f, \"p99\": %.3f, \"max\": %.3f, "
           "\"seconds\": %.3f, \"cpuSeconds\": %.2f, \"userSeconds\": %.2f, \"failed\": %d}\n",
           g.nlat, (unsigned long long)expected, p50, p99, mx,
           g.t0 ? (double)(t_end - g.t0) / 1e9 : 0.0, c1 - c0, u1 - u0, g.failed);
    lws_context_destroy(g.ctx);
    free(g.lat);
    free(g.c);
    return g.failed || g.nlat < expected ? 1 : 0;
}
