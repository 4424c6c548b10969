/*
 * bench_rest_client: calls per second of a client making the benchmark's POST (createTransaction,
 * the ~200-byte body of post.lua) in a closed loop from THREADS threads, for bench/rest/run.sh's
 * client-side rows (rest-client-breaker):
 *
 *   bench_rest_client MODE URL SECONDS WARMUP THREADS
 *     MODE tablium  the generated wallet client (wallet_create_transaction_call): request
 *                   serialization, the client's policies as the environment sets them
 *                   (TB_CLIENT_BREAKER_ENABLED=0/1 ...), libcurl, response validation and decoding
 *     MODE curl     a plain libcurl easy handle per thread, the same body, keep-alive, no
 *                   policies and no decoding (what a hand-written call costs)
 *
 * Every call must answer 201 (tablium: decoded with the amount sent); anything else is counted
 * as an error and makes the exit status 1. Prints one line:
 *   client: mode M threads T calls N seconds S rate R errors E cpu_us C [breaker enabled B ...]
 * Calls finished during the first WARMUP seconds are not counted. cpu_us is the process's CPU
 * time (user + system, all threads) per counted call over the measured window: unlike the rate,
 * it hardly moves when other programs share the CPUs.
 */
#include "wallet/wallet.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#define AMOUNT 125000
#define REFERENCE                                                                                \
    "game-7c1e9b2a-4b3d-4c8e-9a7f-0d2e5b8c1a34/round-000042/bet-000007/table-eu-west-3/seat-4/"  \
    "session-6f1c2a9e4b3d4c8e9a7f0d2e5b8c1a3"
#define WALLET "0b9d4c8e-1f2a-4e3b-8c7d-6a5f4e3d2c1b"

static const char curl_body[] =
    "{\"type\":\"credit\",\"amount\":125000,\"reference\":\"" REFERENCE "\"}";

static atomic_int phase; /* 0 warm-up, 1 measured, 2 stop */
static atomic_ullong n_calls, n_errors;
static atomic_int said; /* the first error is printed, not every one */
static const char *base_url;
static wallet_client *wc;

static void first_error(const char *fmt, const char *what, long n)
{
    if (atomic_exchange(&said, 1) == 0) {
        fprintf(stderr, "bench_rest_client: ");
        fprintf(stderr, fmt, what, n);
        fputc('\n', stderr);
    }
}

static void count(bool ok)
{
    if (atomic_load(&phase) != 1)
        return;
    atomic_fetch_add(ok ? &n_calls : &n_errors, 1);
}

static void *run_tablium(void *arg)
{
    (void)arg;
    tb_arena *a = tb_arena_new(16384);
    if (!a) {
        atomic_fetch_add(&n_errors, 1);
        return NULL;
    }
    char ref[] = REFERENCE, wallet[] = WALLET;
    wallet_create_transaction_req req = {
        .wallet_id = wallet,
        .body = {.type = WALLET_TRANSACTION_TYPE_CREDIT, .amount = AMOUNT, .has_reference = true,
                 .reference = ref},
    };
    tb_error err = TB_ERROR_INIT;
    while (atomic_load(&phase) != 2) {
        tb_ctx ctx;
        tb_ctx_init(&ctx, a, NULL);
        wallet_create_transaction_resp out;
        int rc = wallet_create_transaction_call(wc, &ctx, &req, &out, &err);
        bool ok = rc == 0 && out.status == 201 && out.s201.amount == AMOUNT;
        if (!ok)
            first_error("tablium call failed: %s (status %ld)", rc ? err.message : "answered",
                        rc ? 0L : (long)out.status);
        count(ok);
        tb_arena_reset(a);
    }
    tb_error_deinit(&err);
    tb_arena_free(a);
    return NULL;
}

typedef struct sink {
    char buf[4096];
    size_t len;
} sink;

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    sink *s = ud;
    size_t len = size * n, room = sizeof s->buf - 1 - s->len;
    memcpy(s->buf + s->len, p, len < room ? len : room);
    s->len += len < room ? len : room;
    return len;
}

static void *run_curl(void *arg)
{
    (void)arg;
    char url[512];
    snprintf(url, sizeof url, "%s/wallets/" WALLET "/transactions", base_url);
    CURL *e = curl_easy_init();
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    sink s;
    if (!e || !h) {
        atomic_fetch_add(&n_errors, 1);
        curl_slist_free_all(h);
        curl_easy_cleanup(e);
        return NULL;
    }
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, curl_body);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)(sizeof curl_body - 1));
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &s);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 5000L);
    while (atomic_load(&phase) != 2) {
        s.len = 0;
        CURLcode cc = curl_easy_perform(e);
        long status = 0;
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
        s.buf[s.len] = '\0';
        bool ok = cc == CURLE_OK && status == 201 && strstr(s.buf, "\"amount\":125000");
        if (!ok)
            first_error("curl call failed: %s (status %ld)", curl_easy_strerror(cc), status);
        count(ok);
    }
    curl_slist_free_all(h);
    curl_easy_cleanup(e);
    return NULL;
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static double cpu_s(void)
{
    struct rusage r;
    getrusage(RUSAGE_SELF, &r);
    return (double)(r.ru_utime.tv_sec + r.ru_stime.tv_sec) +
           (double)(r.ru_utime.tv_usec + r.ru_stime.tv_usec) / 1e6;
}

static void sleep_s(double s)
{
    struct timespec t = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&t, &t) != 0)
        ;
}

int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: %s tablium|curl URL SECONDS WARMUP THREADS\n", argv[0]);
        return 2;
    }
    const char *mode = argv[1];
    base_url = argv[2];
    double seconds = atof(argv[3]), warmup = atof(argv[4]);
    int threads = atoi(argv[5]);
    bool tablium = strcmp(mode, "tablium") == 0;
    if ((!tablium && strcmp(mode, "curl") != 0) || seconds <= 0 || warmup < 0 || threads < 1 ||
        threads > 256) {
        fprintf(stderr, "usage: %s tablium|curl URL SECONDS WARMUP THREADS\n", argv[0]);
        return 2;
    }
    if (tb_global_init() != 0) {
        fprintf(stderr, "bench_rest_client: libcurl initialisation failed\n");
        return 1;
    }
    tb_error err = TB_ERROR_INIT;
    if (tablium && !(wc = wallet_client_new(base_url, NULL, &err))) {
        fprintf(stderr, "bench_rest_client: %s\n", err.message);
        return 1;
    }
    pthread_t tid[256];
    int started = 0;
    for (; started < threads; started++) {
        if (pthread_create(&tid[started], NULL, tablium ? run_tablium : run_curl, NULL) != 0)
            break;
    }
    sleep_s(warmup);
    double t0 = now_s(), c0 = cpu_s();
    atomic_store(&phase, 1);
    sleep_s(seconds);
    atomic_store(&phase, 2);
    double t1 = now_s(), c1 = cpu_s();
    for (int i = 0; i < started; i++)
        pthread_join(tid[i], NULL);
    unsigned long long calls = atomic_load(&n_calls), errors = atomic_load(&n_errors);
    printf("client: mode %s threads %d calls %llu seconds %.3f rate %.0f errors %llu cpu_us %.2f",
           mode, started, calls, t1 - t0, (double)calls / (t1 - t0), errors,
           calls ? (c1 - c0) * 1e6 / (double)calls : 0.0);
    if (tablium) {
        const tb_client_opts *o = tb_client_options(wallet_client_http(wc));
        tb_client_stats st;
        tb_client_stats_get(wallet_client_http(wc), &st);
        printf(" breaker enabled %d window %d attempts %llu retries %llu", o->breaker.enabled ? 1 : 0,
               st.window_calls, (unsigned long long)st.attempts, (unsigned long long)st.retries);
    }
    putchar('\n');
    wallet_client_free(wc);
    tb_error_deinit(&err);
    return errors || started != threads || calls == 0 ? 1 : 0;
}
