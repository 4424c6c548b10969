/*
 * bench_events_ours: the tablium event bus (libtablium + the generated gen/events), measured by
 * bench/events/run.sh beside redis-benchmark and bench_events_bare_amqp.
 *
 *   bench_events_ours redis URL N [RATE]
 *       One bus (service "bench", Redis only) subscribed to game.move.made 1.0 (a light event:
 *       Redis Pub/Sub); the main thread publishes N typed events with
 *       game_move_made_v1_publish_async, each stamped with its send time (CLOCK_MONOTONIC ns in
 *       stateVersion); the handler takes latency = now - stateVersion. Events are spread over
 *       BENCH_EVENTS_KEYS games (default 16; gameId is the ordering key, so this spreads them
 *       over the bus's workers). Without RATE the publisher goes as fast as it can but keeps at
 *       most BENCH_EVENTS_INFLIGHT (default 2000; 0: no limit) events published and not yet
 *       handled: an unbounded burst outruns the subscriber and Redis cuts it off at its pubsub
 *       output-buffer limit (client-output-buffer-limit pubsub 32mb 8mb 60), losing events.
 *       With RATE the events leave at RATE per second (latency without queueing). Waits until
 *       all N were handled, or nothing arrived for 3 s. Redis Pub/Sub is at-most-once:
 *       received/N is reported; below 99% the run fails. msgs/s = received / (first publish ->
 *       last handled).
 *   bench_events_ours amqp-publish URL N WINDOW
 *       Declares the consumer side first (a bus "bench-sink" subscribed to
 *       wallet.transaction.created is started once, which declares queue "bench-sink" and its
 *       binding, then freed), then a bus "bench-pub" (window WINDOW) publishes N typed durable
 *       events with wallet_transaction_created_v1_publish_async and waits for tb_bus_flush.
 *       Timed from the first publish to the last confirm; the connection is opened before (one
 *       unroutable wallet.created publish). The N events stay in queue "bench-sink".
 *   bench_events_ours amqp-consume URL N PREFETCH [file|memory]
 *       A bus "bench-sink" (prefetch PREFETCH, the default workers: CPUs less one, DLQ on)
 *       subscribed to wallet.transaction.created consumes N events: envelope and data
 *       validated, typed handler, dedupe record, ack. Timed from the first handler call to the
 *       N-th.
 *       file (the default): the bus's own dedupe log under $TB_DATA_DIR (a temporary folder
 *       when unset); memory: an in-memory SQLite database given as opts.store (store mode: a
 *       transaction per batch, a SAVEPOINT per event), to compare.
 *
 * Each mode ends with one line on stdout:
 *   result mode=redis|redis-paced n=N received=R secs=S msgs_per_s=X p50_ms=A p99_ms=B bytes=E
 *   result mode=amqp-publish n=N secs=S msgs_per_s=X confirmed=C failed=0
 *   result mode=amqp-consume n=N handled=H secs=S msgs_per_s=X bytes=E duplicates=0 dead=0
 *          invalid=0 retried=0 dedupe=file|memory
 * (bytes: the size of one envelope on the wire). Exit status 1 on any failure. Every wait is
 * bounded by BENCH_TIMEOUT_S (default 120).
 */
#include "events/events.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_KEYS 256

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void sleep_us(long us)
{
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000L};
    nanosleep(&ts, NULL);
}

static void sleep_ms(int ms)
{
    sleep_us((long)ms * 1000);
}

static int64_t deadline_ns;

static bool timed_out(void)
{
    return now_ns() > deadline_ns;
}

static long parse_count(const char *s, const char *what, long min)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || errno != 0 || v < min) {
        fprintf(stderr, "bench_events_ours: bad %s '%s'\n", what, s);
        exit(2);
    }
    return v;
}

static void fail(const char *what, const tb_error *err)
{
    fprintf(stderr, "bench_events_ours: %s: %s (%s)\n", what, err->message, tb_strerror(err->code));
    exit(1);
}

/* Deterministic uuid-looking ids (lowercase hex, version 4, variant 8): key i of the run. */
static void make_uuid(char out[37], unsigned tag, unsigned i)
{
    snprintf(out, 37, "%08x-%04x-4%03x-8%03x-%012x", 0x5eed0000u + tag, i & 0xffffu,
             (i >> 4) & 0xfffu, tag & 0xfffu, i * 2654435761u);
}

/* Size of an envelope as the bus sends it (compact JSON, same member order). */
static size_t envelope_bytes(const json_t *env)
{
    char *s = json_dumps(env, JSON_COMPACT | JSON_PRESERVE_ORDER);
    size_t n = s ? strlen(s) : 0;
    free(s);
    return n;
}

/* ---------------------------------------------------------------- redis ---- */

typedef struct redis_state {
    long n;
    atomic_long received;
    atomic_long warm;
    _Atomic int64_t last_ns;
    int64_t *lat_ns; /* by arrival index */
    atomic_size_t bytes;
} redis_state;

static int on_move(tb_ctx *ctx, const tb_event *ev, const game_move_made_v1 *d, void *user)
{
    (void)ctx;
    redis_state *s = user;
    int64_t t = now_ns();
    if (strcmp(d->move.notation, "warmup") == 0) {
        atomic_fetch_add(&s->warm, 1);
        if (atomic_load(&s->bytes) == 0)
            atomic_store(&s->bytes, envelope_bytes(ev->envelope));
        return TB_EVENT_ACK;
    }
    long i = atomic_fetch_add(&s->received, 1);
    if (i < s->n)
        s->lat_ns[i] = t - d->state_version;
    int64_t prev = atomic_load(&s->last_ns);
    while (t > prev && !atomic_compare_exchange_weak(&s->last_ns, &prev, t)) {
    }
    return TB_EVENT_ACK;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static double pct_ms(const int64_t *sorted, long n, double p)
{
    if (n <= 0)
        return 0;
    long i = (long)(p * (double)n + 0.5) - 1; /* nearest rank */
    if (i < 0)
        i = 0;
    if (i >= n)
        i = n - 1;
    return (double)sorted[i] / 1e6;
}

static int run_redis(const char *url, long n, unsigned keys, long inflight, long rate)
{
    tb_error err = TB_ERROR_INIT;
    redis_state s = {.n = n, .lat_ns = calloc((size_t)n, sizeof(int64_t))};
    if (s.lat_ns == NULL) {
        fprintf(stderr, "bench_events_ours: out of memory\n");
        return 1;
    }
    tb_bus_opts o = {
        .service = "bench", .producer = "game-engine", .redis_url = url, .amqp_url = ""};
    tb_bus *bus = tb_bus_new(&o, &err);
    if (bus == NULL)
        fail("tb_bus_new", &err);
    if (game_move_made_v1_subscribe(bus, on_move, &s, &err) != 0)
        fail("subscribe game.move.made", &err);
    if (tb_bus_start(bus, &err) != 0)
        fail("tb_bus_start", &err);

    char games[MAX_KEYS][37], player[37];
    for (unsigned k = 0; k < keys; k++)
        make_uuid(games[k], 1, k);
    make_uuid(player, 2, 0);
    game_move_made_v1 m = {
        .game_id = games[0],
        .player_id = player,
        .move_number = 1,
        .move = {.notation = "warmup", .has_from = true, .from = "e2", .has_to = true, .to = "e4"},
        .has_state_version = true,
        .made_at = "2026-11-24T10:00:00Z",
    };

    /* warm-up: the subscription is live and the publisher connected once an event comes back */
    while (atomic_load(&s.warm) == 0) {
        if (timed_out()) {
            fprintf(stderr, "bench_events_ours: no warm-up event came back from Redis\n");
            return 1;
        }
        m.state_version = now_ns();
        if (game_move_made_v1_publish(bus, NULL, &m, &err) != 0)
            fail("publish (warm-up)", &err);
        tb_bus_flush(bus, 1000);
        sleep_ms(10);
    }
    sleep_ms(100);

    m.move.notation = "e2e4";
    int64_t t0 = now_ns();
    long failed = 0;
    bool stalled = false;
    long sent = 0;
    for (long i = 0; i < n && !stalled; i++) {
        if (rate > 0) {
            /* paced: event i leaves at t0 + i / rate */
            int64_t due = t0 + (int64_t)((double)i * 1e9 / (double)rate), wait = due - now_ns();
            if (wait > 0)
                sleep_us((long)(wait / 1000));
        } else if (inflight > 0 && i - atomic_load(&s.received) >= inflight) {
            /* flow control: at most `inflight` events published and not yet handled */
            tb_bus_flush(bus, 1000);
            int64_t since = now_ns();
            long before = atomic_load(&s.received);
            while (i - atomic_load(&s.received) >= inflight) {
                if (atomic_load(&s.received) != before) {
                    before = atomic_load(&s.received);
                    since = now_ns();
                } else if (now_ns() - since > 3000000000LL || timed_out()) {
                    fprintf(stderr,
                            "bench_events_ours: no event handled for 3 s with %ld in "
                            "flight; stopping at %ld published\n",
                            i - before, i);
                    stalled = true;
                    break;
                }
                sleep_us(20);
            }
            if (stalled)
                break;
        }
        m.game_id = games[(unsigned long)i % keys];
        m.move_number = i + 1;
        m.state_version = now_ns();
        if (game_move_made_v1_publish_async(bus, NULL, &m, NULL, NULL, &err) != 0) {
            if (failed++ == 0)
                fprintf(stderr, "bench_events_ours: publish: %s\n", err.message);
        }
        sent++;
    }
    tb_bus_flush(bus, 10000);
    int64_t t_pub = now_ns();

    /* wait for the handler: all N, or no progress for 3 s */
    long seen = -1;
    int64_t last_progress = now_ns();
    for (;;) {
        long r = atomic_load(&s.received);
        if (r >= n)
            break;
        if (r != seen) {
            seen = r;
            last_progress = now_ns();
        } else if (now_ns() - last_progress > 3000000000LL || timed_out()) {
            break;
        }
        sleep_ms(1);
    }
    tb_bus_stats st;
    tb_bus_stats_get(bus, &st);
    tb_bus_free(bus);

    long got = atomic_load(&s.received);
    if (got > n)
        got = n;
    int64_t last = atomic_load(&s.last_ns);
    double secs = got > 0 ? (double)(last - t0) / 1e9 : 0;
    qsort(s.lat_ns, (size_t)got, sizeof(int64_t), cmp_i64);
    fprintf(stderr,
            "bench_events_ours: redis: published %ld in %.3f s (%.0f/s, at most %ld in "
            "flight), failed %ld; handled %ld; bus stats: published %llu, handled %llu, "
            "invalid %llu, dead %llu, redis reconnects %u\n",
            sent, (double)(t_pub - t0) / 1e9, (double)sent / ((double)(t_pub - t0) / 1e9), inflight,
            failed, got, (unsigned long long)st.published, (unsigned long long)st.handled,
            (unsigned long long)st.invalid, (unsigned long long)st.dead, st.redis_reconnects);
    printf("result mode=%s n=%ld received=%ld secs=%.3f msgs_per_s=%.0f p50_ms=%.3f "
           "p99_ms=%.3f bytes=%zu publish_failed=%ld\n",
           rate > 0 ? "redis-paced" : "redis", n, got, secs, secs > 0 ? (double)got / secs : 0.0,
           pct_ms(s.lat_ns, got, 0.50), pct_ms(s.lat_ns, got, 0.99), atomic_load(&s.bytes), failed);
    free(s.lat_ns);
    if (got * 100 < n * 99) {
        fprintf(stderr,
                "bench_events_ours: only %ld of %ld events arrived (at-most-once Redis "
                "Pub/Sub; below 99%%)\n",
                got, n);
        return 1;
    }
    return failed ? 1 : 0;
}

/* ---------------------------------------------------------------- rabbitmq ---- */

/* The sink is started on an empty queue (run.sh purges it); an event left from before would be
 * consumed here and is dropped, loudly. */
static int on_tx_nop(tb_ctx *ctx, const tb_event *ev, const wallet_transaction_created_v1 *d,
                     void *user)
{
    (void)ctx;
    (void)d;
    atomic_long *stale = user;
    if (atomic_fetch_add(stale, 1) == 0)
        fprintf(stderr,
                "bench_events_ours: queue bench-sink was not empty (event %s); purge it "
                "first\n",
                ev->id);
    return TB_EVENT_ACK;
}

typedef struct pub_count {
    atomic_long ok, failed;
    atomic_int first_rc;
} pub_count;

static void on_published(void *user, int rc)
{
    pub_count *c = user;
    if (rc == 0) {
        atomic_fetch_add(&c->ok, 1);
    } else {
        int zero = 0;
        atomic_compare_exchange_strong(&c->first_rc, &zero, rc);
        atomic_fetch_add(&c->failed, 1);
    }
}

typedef struct tx_data {
    char wallets[MAX_KEYS][37], user[37], tx[37];
    wallet_transaction_created_v1 v;
} tx_data;

static void tx_init(tx_data *t)
{
    make_uuid(t->user, 4, 0);
    make_uuid(t->tx, 5, 0);
    for (unsigned k = 0; k < MAX_KEYS; k++)
        make_uuid(t->wallets[k], 3, k);
    t->v = (wallet_transaction_created_v1){
        .transaction_id = t->tx,
        .wallet_id = t->wallets[0],
        .user_id = t->user,
        .type = WALLET_TRANSACTION_CREATED_V1_TYPE_CREDIT,
        .amount = 12500,
        .currency = "CHP",
        .balance_after = 112500,
        .has_reference = true,
        .reference = "bench-deposit",
        .created_at = "2026-11-24T10:00:00Z",
    };
}

static int run_amqp_publish(const char *url, long n, long window, unsigned keys)
{
    tb_error err = TB_ERROR_INIT;

    /* the consumer side's queue and binding, so that the events are routable */
    tb_bus_opts so = {.service = "bench-sink", .amqp_url = url, .redis_url = ""};
    tb_bus *sink = tb_bus_new(&so, &err);
    if (sink == NULL)
        fail("tb_bus_new (sink)", &err);
    static atomic_long stale;
    if (wallet_transaction_created_v1_subscribe(sink, on_tx_nop, &stale, &err) != 0)
        fail("subscribe wallet.transaction.created", &err);
    if (tb_bus_start(sink, &err) != 0)
        fail("tb_bus_start (sink)", &err);
    tb_bus_free(sink);

    tb_bus_opts o = {.service = "bench-pub",
                     .producer = "wallet-service",
                     .amqp_url = url,
                     .redis_url = "",
                     .window = (unsigned)window};
    tb_bus *bus = tb_bus_new(&o, &err);
    if (bus == NULL)
        fail("tb_bus_new", &err);
    static tx_data t;
    tx_init(&t);

    /* connect first (bare_amqp is timed after its connection is up, too): wallet.created is
     * bound to no queue here, so this one is returned unroutable and lands nowhere */
    wallet_created_v1 wc = {.wallet_id = t.wallets[0],
                            .user_id = t.user,
                            .currency = "CHP",
                            .created_at = "2026-11-24T10:00:00Z"};
    int wrc = wallet_created_v1_publish(bus, NULL, &wc, &err);
    if (wrc != 0 && wrc != TB_ENOTFOUND)
        fprintf(stderr, "bench_events_ours: warm-up publish: %s (ignored)\n", err.message);

    pub_count c = {0};
    int64_t t0 = now_ns();
    long failed_sync = 0;
    for (long i = 0; i < n; i++) {
        t.v.wallet_id = t.wallets[(unsigned long)i % keys];
        t.v.balance_after = 100000 + i;
        if (wallet_transaction_created_v1_publish_async(bus, NULL, &t.v, on_published, &c, &err) !=
            0) {
            if (failed_sync++ == 0)
                fprintf(stderr, "bench_events_ours: publish: %s\n", err.message);
        }
    }
    int64_t left_ms = (deadline_ns - now_ns()) / 1000000;
    int frc = tb_bus_flush(bus, left_ms > 0 ? (int)left_ms : 1);
    int64_t t1 = now_ns();
    long ok = atomic_load(&c.ok), failed = atomic_load(&c.failed) + failed_sync;
    tb_bus_free(bus);
    double secs = (double)(t1 - t0) / 1e9;
    if (frc != 0)
        fprintf(stderr, "bench_events_ours: tb_bus_flush: %s\n", tb_strerror(frc));
    if (failed)
        fprintf(stderr, "bench_events_ours: %ld publishes failed (first: %s)\n", failed,
                tb_strerror(atomic_load(&c.first_rc)));
    printf("result mode=amqp-publish n=%ld secs=%.3f msgs_per_s=%.0f confirmed=%ld failed=%ld\n", n,
           secs, (double)ok / secs, ok, failed);
    return (frc == 0 && failed == 0 && ok == n) ? 0 : 1;
}

typedef struct consume_state {
    long n;
    atomic_long handled;
    _Atomic int64_t first_ns, last_ns;
    atomic_size_t bytes;
} consume_state;

static int on_tx(tb_ctx *ctx, const tb_event *ev, const wallet_transaction_created_v1 *d,
                 void *user)
{
    (void)ctx;
    consume_state *s = user;
    int64_t t = now_ns();
    int64_t zero = 0;
    if (atomic_compare_exchange_strong(&s->first_ns, &zero, t))
        atomic_store(&s->bytes, envelope_bytes(ev->envelope));
    if (d->amount <= 0) /* touch the typed data */
        return TB_EVENT_DEAD;
    atomic_fetch_add(&s->handled, 1);
    int64_t prev = atomic_load(&s->last_ns);
    while (t > prev && !atomic_compare_exchange_weak(&s->last_ns, &prev, t)) {
    }
    return TB_EVENT_ACK;
}

static int run_amqp_consume(const char *url, long n, long prefetch, bool memory_store)
{
    tb_error err = TB_ERROR_INIT;
    consume_state s = {.n = n};
    tb_bus_opts o = {
        .service = "bench-sink", .amqp_url = url, .redis_url = "", .prefetch = (unsigned)prefetch};
    /* memory: the dedupe record in an in-memory database passed as opts.store (then each
     * delivery is one BEGIN IMMEDIATE ... COMMIT there), to show what the file costs. The lock
     * is needed although nobody else uses the connection: the bus's workers share it. */
    static pthread_mutex_t store_lock = PTHREAD_MUTEX_INITIALIZER;
    sqlite3 *mem = NULL;
    if (memory_store) {
        if (sqlite3_open(":memory:", &mem) != SQLITE_OK) {
            fprintf(stderr, "bench_events_ours: cannot open an in-memory database\n");
            return 1;
        }
        o.store = mem;
        o.store_lock = &store_lock;
    }
    tb_bus *bus = tb_bus_new(&o, &err);
    if (bus == NULL)
        fail("tb_bus_new", &err);
    if (wallet_transaction_created_v1_subscribe(bus, on_tx, &s, &err) != 0)
        fail("subscribe wallet.transaction.created", &err);
    if (tb_bus_start(bus, &err) != 0)
        fail("tb_bus_start", &err);
    /* the time is taken in the handler (first to last event), so this poll only has to notice
     * the end; at 1 ms it woke 1000 times a second and took its CPU from the consumer */
    while (atomic_load(&s.handled) < n && !timed_out())
        sleep_ms(50);
    tb_bus_stats st;
    tb_bus_stats_get(bus, &st);
    tb_bus_free(bus);
    sqlite3_close(mem);
    long got = atomic_load(&s.handled);
    double secs = (double)(atomic_load(&s.last_ns) - atomic_load(&s.first_ns)) / 1e9;
    if (got < n)
        fprintf(stderr, "bench_events_ours: timed out with %ld of %ld events handled\n", got, n);
    printf("result mode=amqp-consume n=%ld handled=%ld secs=%.3f msgs_per_s=%.0f bytes=%zu "
           "duplicates=%llu dead=%llu invalid=%llu retried=%llu dedupe=%s\n",
           n, got, secs, secs > 0 ? (double)got / secs : 0.0, atomic_load(&s.bytes),
           (unsigned long long)st.duplicates, (unsigned long long)st.dead,
           (unsigned long long)st.invalid, (unsigned long long)st.retried,
           memory_store ? "memory" : "file");
    return (got >= n && st.dead == 0 && st.invalid == 0) ? 0 : 1;
}

/* ---------------------------------------------------------------- main ---- */

_Noreturn static void usage(void)
{
    fprintf(stderr, "usage: bench_events_ours redis URL N [RATE]\n"
                    "       bench_events_ours amqp-publish URL N WINDOW\n"
                    "       bench_events_ours amqp-consume URL N PREFETCH [file|memory]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    if (argc < 4)
        usage();
    const char *mode = argv[1], *url = argv[2];
    const char *t = getenv("BENCH_TIMEOUT_S");
    deadline_ns = now_ns() + (t && *t ? parse_count(t, "BENCH_TIMEOUT_S", 1) : 120) * 1000000000LL;
    const char *k = getenv("BENCH_EVENTS_KEYS");
    unsigned keys = k && *k ? (unsigned)parse_count(k, "BENCH_EVENTS_KEYS", 1) : 16;
    if (keys > MAX_KEYS)
        keys = MAX_KEYS;
    long n = parse_count(argv[3], "N", 1);
    const char *fl = getenv("BENCH_EVENTS_INFLIGHT");
    long inflight = fl && *fl ? parse_count(fl, "BENCH_EVENTS_INFLIGHT", 0) : 2000;

    /* the dedupe record of a durable consumer is a file under $TB_DATA_DIR */
    char tmpdir[] = "/tmp/bench-events-XXXXXX";
    bool own_dir = false;
    const char *dd = getenv("TB_DATA_DIR");
    if (dd == NULL || *dd == '\0') {
        if (mkdtemp(tmpdir) == NULL) {
            perror("bench_events_ours: mkdtemp");
            return 1;
        }
        setenv("TB_DATA_DIR", tmpdir, 1);
        own_dir = true;
    }

    int rc;
    if (strcmp(mode, "redis") == 0 && (argc == 4 || argc == 5))
        rc = run_redis(url, n, keys, inflight, argc == 5 ? parse_count(argv[4], "RATE", 1) : 0);
    else if (strcmp(mode, "amqp-publish") == 0 && argc == 5)
        rc = run_amqp_publish(url, n, parse_count(argv[4], "WINDOW", 1), keys);
    else if (strcmp(mode, "amqp-consume") == 0 && (argc == 5 || argc == 6)) {
        if (argc == 6 && strcmp(argv[5], "file") != 0 && strcmp(argv[5], "memory") != 0)
            usage();
        rc = run_amqp_consume(url, n, parse_count(argv[4], "PREFETCH", 1),
                              argc == 6 && strcmp(argv[5], "memory") == 0);
    } else
        usage();

    if (own_dir) {
        static const char *const files[] = {"bench-sink-events.dedupe", "bench-sink-events.db",
                                            "bench-sink-events.db-wal", "bench-sink-events.db-shm"};
        char p[256];
        for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
            snprintf(p, sizeof p, "%s/%s", tmpdir, files[i]);
            unlink(p);
        }
        rmdir(tmpdir);
    }
    return rc;
}
