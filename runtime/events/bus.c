/*
 * The event bus: envelopes, validation, dispatch by key to worker threads, idempotent durable
 * consumers, the outbox relay. Transports: runtime/events/amqp.c (RabbitMQ) and
 * runtime/events/redis.c (Redis Pub/Sub); storage: runtime/events/store.c.
 */
#include "tablium/events.h"
#include "tablium/metrics.h"
#include "tablium/trace.h"

#include "tb_amqp.h"
#include "tb_redis.h"
#include "tb_dlog.h"
#include "../json/tb_fastjson.h"
#include "tablium/arena.h"
#include "tablium/buf.h"
#include "tablium/codec.h"
#include "tablium/evstore.h"
#include "tablium/http.h"
#include "tablium/ids.h"
#include "tablium/json.h"
#include "tablium/log.h"
#include "tablium/store.h"
#include "tablium/validate.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BUS_REASON_MAX 1024

typedef struct bus_sub {
    const tb_event_type *type;
    tb_event_handler handler;  /* generic, or NULL */
    tb_event_invoke invoke;    /* typed trampoline, or NULL */
    void (*fn)(void);
    void *user;
} bus_sub;

/* One delivery on its way through a worker. */
typedef struct bus_msg {
    struct bus_msg *next;
    tb_event_transport transport;
    tb_amqp_delivery *d; /* RabbitMQ: owned by the transport until settled */
    char *body;          /* Redis: our copy */
    size_t len;
    json_t *root;        /* parsed envelope */
    bool keyed;          /* RabbitMQ: key header, so parsed by its worker (len: body bytes) */
} bus_msg;

/* A handler's view of the event plus the reason it may set. */
typedef struct bus_event {
    tb_event ev;
    char reason[BUS_REASON_MAX];
    char key_buf[32];
    size_t body_len; /* the delivery's bytes */
} bus_event;

typedef struct seen_set seen_set;

/* One worker's batch waiting for the group commit of the dedupe records. */
typedef struct gc_batch {
    struct gc_batch *next;
    bus_event *bes;
    tb_event_result *res;
    const bool *skip;
    int n;
    bool done, committed;
} gc_batch;

#define SPARES_MAX 64 /* = BATCH_MAX: a batch's trees */
#define SPARE_MAX_BYTES 16384 /* trees of bigger envelopes are not kept */

typedef struct bus_worker {
    struct tb_bus *bus;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bus_msg *head, *tail;
    bool stop;
    tb_arena *arena;
    bus_event *batch; /* BATCH_MAX of them */
    /* trees of handled envelopes, refilled in place by the next ones of the same shape */
    json_t *spares[SPARES_MAX];
    int n_spares;
} bus_worker;

/* A tree for the envelope in body: a spare of w refilled in place (the envelopes of one type
 * share their shape; a spare some handler still holds a part of is not used), else a new one.
 * NULL with err set when body is not JSON. */
static json_t *worker_parse(bus_worker *w, const char *body, size_t len, tb_error *err)
{
    if (w && w->n_spares > 0) { /* one try: a different shape is read afresh */
        json_t *root = w->spares[--w->n_spares];
        if (tb__json_fast_reload(root, body, len))
            return root;
        json_decref(root);
    }
    return tb_json_loadb(body, len, err);
}

/* Keeps a handled envelope's tree for the next one, unless something else holds it or it
 * came from a big one (len: its size in bytes). */
static void worker_keep(bus_worker *w, json_t **root, size_t len)
{
    if (w && *root && (*root)->refcount == 1 && len <= SPARE_MAX_BYTES &&
        w->n_spares < SPARES_MAX) {
        w->spares[w->n_spares++] = *root;
        *root = NULL;
    }
}

/* Messages waiting in the service's RabbitMQ queues, polled for
 * tablium_events_consumer_lag_messages (a passive queue.declare on a connection of its own). */
typedef struct lag_poller {
    pthread_t th;
    bool started, stop;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    long poll_ms;
    _Atomic long long depth[2]; /* <service>, <service>.dlq; -1 until known */
    char *queue[2];
} lag_poller;

struct tb_bus {
    lag_poller lag;
    char *service, *producer, *amqp_url, *redis_url, *exchange, *dedupe_consumer;
    unsigned window, prefetch, n_workers;
    int max_attempts, retry_base_ms, retry_max_ms, publish_timeout_ms;
    bool dlq;
    sqlite3 *store;
    pthread_mutex_t *store_lock;
    tb_dlog *own_log; /* the dedupe record when no store was given */
    pthread_mutex_t own_dedupe_mu;
    size_t dedupe_keep;
    seen_set *seen; /* the ids handled lately (durable consumers) */
    tb_dedupe_marker *marker; /* records them in the dedupe db (under its lock) */
    pthread_mutex_t gc_mu;    /* the group commit of the bus's own dedupe file */
    pthread_cond_t gc_cv;
    gc_batch *gc_head;
    bool gc_busy;
    pthread_mutex_t seen_mu;
    void *state, *deps;

    bus_sub *subs;
    size_t n_subs, cap_subs;
    const tb_event_type *any_type; /* for the envelope validator */

    pthread_mutex_t pub_mu; /* creating the publishers lazily; set under it: the four below */
    tb_amqp_pub *amqp_pub;
    tb_redis_pub *redis_pub;

    tb_amqp_consumer *amqp_sub;
    tb_redis_sub *redis_sub;

    /* the readiness checks "rabbitmq" and "redis", registered once the bus holds a connection
     * on that transport (bit 1 << transport); ready_gone: tb_bus_free has removed them */
    pthread_mutex_t ready_mu;
    unsigned ready_on;
    bool ready_gone;
    bus_worker *workers;
    bool light_inline;  /* Redis events handled on the subscriber's thread */
    bus_worker *light;  /* its arena and event storage */
    bool started;

    /* outbox relay */
    char *relay_path;
    pthread_t relay_thread;
    bool relay_running;
    pthread_mutex_t relay_mu;
    pthread_cond_t relay_cv;
    bool relay_kicked, relay_stop;

    atomic_bool stopping;
    atomic_uint_fast64_t published, publish_failed, handled, retried, dead, invalid, duplicates,
        skipped, relayed;
};

/* ---------------------------------------------------------------- helpers ---- */

static int env_int(const char *name, int dflt)
{
    const char *v = getenv(name);
    if (v == NULL || *v == '\0')
        return dflt;
    char *end;
    long n = strtol(v, &end, 10);
    return (*end == '\0' && n > 0 && n < 1000000000) ? (int)n : dflt;
}

static bool name_ok(const char *s)
{
    if (s == NULL || *s == '\0' || strlen(s) > 64)
        return false;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '_' || *p == '.'))
            return false;
    return true;
}


int tb_traceparent_parse(const char *tp, char trace_id[33], char span_id[17])
{
    /* the W3C rules of tablium/trace.h (a later version's extra fields included) */
    tb_span_context sc;
    if (tp == NULL || !tb_traceparent_decode(tp, strlen(tp), &sc))
        return 0;
    tb_trace_hex(sc.trace_id, 16, trace_id);
    tb_trace_hex(sc.span_id, 8, span_id);
    return 1;
}

/* The reason text of a validation failure: "what: /data/x (rule) message; ..." */
static void reason_from_error(char *out, size_t cap, const char *what, const char *prefix,
                              const tb_error *e)
{
    size_t n = (size_t)snprintf(out, cap, "%s", what);
    if (e->n_details == 0 && n < cap)
        n += (size_t)snprintf(out + n, cap - n, ": %s", e->message);
    for (size_t i = 0; i < e->n_details && n < cap; i++)
        n += (size_t)snprintf(out + n, cap - n, "%s %s%s (%s) %s", i ? ";" : ":", prefix,
                              e->details[i].path, e->details[i].rule, e->details[i].message);
    if (e->n_omitted && n < cap)
        snprintf(out + n, cap - n, "; and %zu more", e->n_omitted);
}

void tb_event_set_reason(const tb_event *ev, const char *fmt, ...)
{
    if (ev == NULL)
        return;
    bus_event *be = (bus_event *)(void *)ev; /* tb_event is the first member */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(be->reason, sizeof be->reason, fmt, ap);
    va_end(ap);
}

/* ---------------------------------------------------------------- envelope ---- */

/* What a publish also carries outside the envelope (AMQP properties and headers). */
typedef struct env_ids {
    char id[37];
    char traceparent[56];
    char correlation[129];
    char key[129]; /* the ordering key (AMQP header x-tablium-key), "" when none */
    tb_span *span; /* the producer span whose context the envelope carries; NULL before one */
} env_ids;

/* Ends the producer span of a publish (rc: its outcome). */
static void ids_end(env_ids *ids, int rc, const tb_error *err)
{
    tb_span *sp = ids->span;
    ids->span = NULL;
    if (!sp)
        return;
    if (rc != 0 && sp->sampled) {
        tb_span_set_str(sp, "error.type", tb_err_name(rc));
        tb_span_set_status(sp, TB_STATUS_ERROR, err && err->code ? err->message : NULL);
    }
    tb_span_end(sp);
}

static const char *key_of(const tb_event_type *t, const json_t *data, char *buf, size_t cap);

/* The envelope up to "data": of an event whose data is valid: fills ids (a new id, the trace
 * continued from ctx or started, the correlation id of ctx or a new one, the key). */
static void envelope_head(const tb_ctx *ctx, const tb_event_type *t, const char *key,
                          const char *producer, tb_buf *b, env_ids *ids)
{
    char *id = ids->id;
    ids->key[0] = '\0';
    if (key) {
        size_t kl = strlen(key);
        if (kl < sizeof ids->key)
            memcpy(ids->key, key, kl + 1);
    }
    char ts[25], corr[33];
    tb_uuid_new(id);
    tb_time_rfc3339(ts);
    /* The producer span: a child of the ctx's span (or of its traceparent), else a new trace;
     * its context is what the envelope and the AMQP headers carry. */
    tb_span_context parent;
    const tb_span_context *pp = NULL;
    if (ctx && ctx->span && tb_span_context_valid(&ctx->span->sc))
        pp = &ctx->span->sc;
    else if (ctx && ctx->traceparent &&
             tb_traceparent_decode(ctx->traceparent, strlen(ctx->traceparent), &parent))
        pp = &parent;
    tb_span *sp = tb_span_start_with(NULL, TB_SPAN_PRODUCER, pp,
                                     ctx && ctx->span ? ctx->span->tracestate : NULL);
    ids->span = sp;
    if (sp->sampled) {
        char name[160];
        snprintf(name, sizeof name, "send %s", t->type);
        tb_span_set_name(sp, name);
        tb_span_set_str(sp, "messaging.system",
                        t->transport == TB_TRANSPORT_REDIS ? "redis" : "rabbitmq");
        tb_span_set_str(sp, "messaging.operation.type", "send");
        tb_span_set_str(sp, "messaging.operation.name", "publish");
        tb_span_set_str(sp, "messaging.message.id", id);
        tb_span_set_str(sp, "tablium.event.version", t->version);
    }
    const char *correlation = ctx ? ctx->request_id : NULL;
    size_t cl = correlation ? strlen(correlation) : 0;
    if (cl == 0 || cl > 128) {
        tb_request_id_new(corr);
        correlation = corr;
        cl = 32;
    }
    memcpy(ids->correlation, correlation, cl + 1);
    if (sp->sampled)
        tb_span_set_str(sp, "messaging.message.conversation_id", ids->correlation);
    tb_traceparent_encode(&sp->sc, ids->traceparent);

    /* (type and version are the generator's checked names: nothing to escape) */
    tb_buf_puts(b, "{\"id\":\"");
    tb_buf_append(b, id, 36);
    tb_buf_puts(b, "\",\"type\":\"");
    tb_buf_puts(b, t->type);
    tb_buf_puts(b, "\",\"version\":\"");
    tb_buf_puts(b, t->version);
    tb_buf_puts(b, "\",\"timestamp\":\"");
    tb_buf_append(b, ts, 24);
    tb_buf_puts(b, "\",\"producer\":");
    tb_buf_json_string(b, producer, strlen(producer));
    tb_buf_puts(b, ",\"data\":");
}

/* The rest of the envelope after its data. */
static int envelope_tail(tb_buf *b, const env_ids *ids, tb_error *err)
{
    tb_buf_puts(b, ",\"metadata\":{\"correlationId\":");
    tb_buf_json_string(b, ids->correlation, strlen(ids->correlation));
    tb_buf_puts(b, ",\"traceId\":\"");
    tb_buf_append(b, ids->traceparent + 3, 32);
    tb_buf_puts(b, "\",\"traceparent\":\"");
    tb_buf_append(b, ids->traceparent, 55);
    tb_buf_puts(b, "\"}}");
    if (b->oom)
        return tb_error_set(err, TB_ENOMEM, "publish: out of memory");
    return 0;
}

/* Builds the envelope of one event into b; ids gets its id, traceparent and correlation id. */
static int build_envelope(const tb_ctx *ctx, const tb_event_type *t, json_t *data,
                          const char *producer, tb_buf *b, env_ids *ids, tb_error *err)
{
    if (t == NULL || data == NULL || t->validate == NULL)
        return tb_error_set(err, TB_EINVAL, "publish: missing event type or data");
    tb_error verr = TB_ERROR_INIT;
    if (t->validate(data, TB_VALIDATE_ALL_ERRORS | TB_VALIDATE_FORMATS, &verr) != 0) {
        if (err) {
            tb_error_set(err, TB_EVALIDATION, "%s %s: data fails %s", t->type, t->version,
                         t->schema ? t->schema : "its schema");
            tb_error_add_details(err, &verr);
        }
        tb_error_deinit(&verr);
        return TB_EVALIDATION;
    }
    tb_error_deinit(&verr);
    char kb[32];
    envelope_head(ctx, t, key_of(t, data, kb, sizeof kb), producer, b, ids);
    int jrc = tb_buf_json_value(b, data);
    if (jrc != 0)
        return tb_error_set(err, jrc,
                            jrc == TB_ENOMEM ? "publish: out of memory"
                                             : "publish: the data is not JSON text (a string "
                                               "that is not UTF-8, NaN or infinity, or a cycle)");
    return envelope_tail(b, ids, err);
}

/* The same for data a generated struct check found valid, written by `write`. */
static int build_envelope_checked(const tb_ctx *ctx, const tb_event_type *t,
                                  tb_event_write_fn write, const void *data, const char *key,
                                  const char *producer, tb_buf *b, env_ids *ids, tb_error *err)
{
    if (t == NULL || (write == NULL && t->data_type == NULL) || data == NULL)
        return tb_error_set(err, TB_EINVAL, "publish: missing event type or data");
    envelope_head(ctx, t, key, producer, b, ids);
    if (write)
        write(data, b);
    else
        tb_codec_write(t->data_type, data, b);
    return envelope_tail(b, ids, err);
}

/* ---------------------------------------------------------------- bus ---- */

tb_bus *tb_bus_new(const tb_bus_opts *o, tb_error *err)
{
    if (o == NULL || !name_ok(o->service)) {
        tb_error_set(err, TB_EINVAL, "bus: service must be a name of letters, digits, '-', '_' "
                                     "or '.' (1-64)");
        return NULL;
    }
    tb_bus *b = calloc(1, sizeof *b);
    if (b == NULL) {
        tb_error_set(err, TB_ENOMEM, "bus: out of memory");
        return NULL;
    }
    b->service = strdup(o->service);
    if (o->producer) {
        b->producer = strdup(o->producer);
    } else if (asprintf(&b->producer, "%s-service", o->service) < 0) {
        b->producer = NULL;
    }
    const char *amqp = o->amqp_url ? o->amqp_url : getenv("TB_AMQP_URL");
    const char *redis = o->redis_url ? o->redis_url : getenv("TB_REDIS_URL");
    b->amqp_url = (amqp && *amqp) ? strdup(amqp) : NULL;
    b->redis_url = (redis && *redis) ? strdup(redis) : NULL;
    b->exchange = strdup(o->exchange ? o->exchange : "tablium.events");
    b->dedupe_consumer = strdup(o->service);
    b->window = o->window ? o->window : 1000;
    b->prefetch = o->prefetch ? o->prefetch : 1000;
    /* one CPU is left to the consumer's I/O thread (and, on a small machine, to the broker):
     * a worker more than that only adds hand-offs; handlers that block want more (the option) */
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    int dflt_workers = cpus > 2 ? (int)cpus - 1 : 1;
    b->n_workers = o->workers ? o->workers : (unsigned)env_int("TB_EVENTS_WORKERS", dflt_workers);
    if (b->n_workers > 64)
        b->n_workers = 64;
    b->max_attempts = o->max_attempts > 0 ? o->max_attempts : env_int("TB_EVENTS_MAX_ATTEMPTS", 5);
    b->retry_base_ms =
        o->retry_base_ms > 0 ? o->retry_base_ms : env_int("TB_EVENTS_RETRY_MS", 1000);
    b->retry_max_ms = o->retry_max_ms > 0 ? o->retry_max_ms : 60000;
    b->publish_timeout_ms = o->publish_timeout_ms > 0 ? o->publish_timeout_ms : 30000;
    b->dlq = !o->no_dlq;
    const char *lp = getenv("TB_EVENTS_LIGHT_PARALLEL");
    b->light_inline = !(o->light_parallel || (lp && strcmp(lp, "1") == 0));
    b->store = o->store;
    b->store_lock = o->store_lock;
    b->dedupe_keep = o->dedupe_keep ? o->dedupe_keep : 100000;
    b->state = o->state;
    b->deps = o->deps;
    pthread_mutex_init(&b->pub_mu, NULL);
    pthread_mutex_init(&b->ready_mu, NULL);
    pthread_mutex_init(&b->own_dedupe_mu, NULL);
    pthread_mutex_init(&b->seen_mu, NULL);
    pthread_mutex_init(&b->gc_mu, NULL);
    pthread_cond_init(&b->gc_cv, NULL);
    pthread_mutex_init(&b->relay_mu, NULL);
    pthread_cond_init(&b->relay_cv, NULL);
    if (b->service == NULL || b->producer == NULL || b->exchange == NULL ||
        b->dedupe_consumer == NULL || (amqp && *amqp && !b->amqp_url) ||
        (redis && *redis && !b->redis_url)) {
        tb_bus_free(b);
        tb_error_set(err, TB_ENOMEM, "bus: out of memory");
        return NULL;
    }
    return b;
}

static int add_sub(tb_bus *b, const tb_event_type *t, tb_event_handler h, tb_event_invoke inv,
                   void (*fn)(void), void *user, tb_error *err)
{
    if (b == NULL || t == NULL || (h == NULL && (inv == NULL || fn == NULL)))
        return tb_error_set(err, TB_EINVAL, "subscribe: missing bus, type or handler");
    if (b->started)
        return tb_error_set(err, TB_ESTATE, "subscribe %s %s: the bus is already started",
                            t->type, t->version);
    for (size_t i = 0; i < b->n_subs; i++)
        if (strcmp(b->subs[i].type->type, t->type) == 0 &&
            strcmp(b->subs[i].type->version, t->version) == 0)
            return tb_error_set(err, TB_ESTATE, "subscribe %s %s: already subscribed", t->type,
                                t->version);
    if (b->n_subs == b->cap_subs) {
        size_t cap = b->cap_subs ? b->cap_subs * 2 : 8;
        bus_sub *ns = realloc(b->subs, cap * sizeof *ns);
        if (ns == NULL)
            return tb_error_set(err, TB_ENOMEM, "subscribe: out of memory");
        b->subs = ns;
        b->cap_subs = cap;
    }
    b->subs[b->n_subs++] = (bus_sub){t, h, inv, fn, user};
    b->any_type = t;
    return 0;
}

/* The type's consumer counters exist at 0 from the start, so increase() sees the first one. */
static void declare_metrics(const tb_bus *bus, const tb_event_type *t)
{
    if (bus && t && t->type)
        tb_metrics_event_declare(bus->service, t->type,
                                 t->transport == TB_TRANSPORT_REDIS ? "redis" : "rabbitmq", false,
                                 true);
}

int tb_bus_subscribe(tb_bus *bus, const tb_event_type *t, tb_event_handler h, void *user,
                     tb_error *err)
{
    int rc = add_sub(bus, t, h, NULL, NULL, user, err);
    if (rc == 0)
        declare_metrics(bus, t);
    return rc;
}

int tb_bus_subscribe_typed(tb_bus *bus, const tb_event_type *t, tb_event_invoke invoke,
                           void (*fn)(void), void *user, tb_error *err)
{
    int rc = add_sub(bus, t, NULL, invoke, fn, user, err);
    if (rc == 0)
        declare_metrics(bus, t);
    return rc;
}

static const bus_sub *find_sub(const tb_bus *b, const char *type, const char *version,
                               bool *type_known)
{
    *type_known = false;
    if (type == NULL)
        return NULL;
    for (size_t i = 0; i < b->n_subs; i++) {
        if (strcmp(b->subs[i].type->type, type) != 0)
            continue;
        *type_known = true;
        if (version && strcmp(b->subs[i].type->version, version) == 0)
            return &b->subs[i];
    }
    return NULL;
}

/* ---------------------------------------------------------------- readiness ---- */

/* The connections the bus holds on transport t: 0 when each is usable, else TB_ECONN with why
 * ("publisher disconnected for 3.2 s: ..."). Reads states the transports keep (no I/O). */
static int transport_ready(tb_bus *b, tb_event_transport t, char *why, size_t cap)
{
    char sub[256] = "", pub[256] = "";
    bool sub_ok, pub_ok;
    pthread_mutex_lock(&b->pub_mu);
    if (t == TB_TRANSPORT_RABBITMQ) {
        sub_ok = tb_amqp_consumer_up(b->amqp_sub, sub, sizeof sub);
        pub_ok = tb_amqp_pub_up(b->amqp_pub, pub, sizeof pub);
    } else {
        sub_ok = tb_redis_sub_up(b->redis_sub, sub, sizeof sub);
        pub_ok = tb_redis_pub_up(b->redis_pub, pub, sizeof pub);
    }
    pthread_mutex_unlock(&b->pub_mu);
    if (sub_ok && pub_ok)
        return 0;
    if (cap > 0)
        snprintf(why, cap, "%s%s%s", sub_ok ? "" : sub, !sub_ok && !pub_ok ? "; " : "",
                 pub_ok ? "" : pub);
    return TB_ECONN;
}

static int ready_rabbitmq(void *user, char *why, size_t cap)
{
    return transport_ready(user, TB_TRANSPORT_RABBITMQ, why, cap);
}

static int ready_redis(void *user, char *why, size_t cap)
{
    return transport_ready(user, TB_TRANSPORT_REDIS, why, cap);
}

/* Registers the process-wide readiness check of transport t, once: called (not under pub_mu,
 * which the checks take under the registry's lock) when the bus first holds a connection on
 * it. ready_mu orders this against the removal in tb_bus_free. */
static void ready_note(tb_bus *b, tb_event_transport t)
{
    unsigned bit = 1u << t;
    const char *name = t == TB_TRANSPORT_REDIS ? "redis" : "rabbitmq";
    pthread_mutex_lock(&b->ready_mu);
    if (!b->ready_gone && !(b->ready_on & bit)) {
        b->ready_on |= bit;
        if (tb_ready_check_add(name, t == TB_TRANSPORT_REDIS ? ready_redis : ready_rabbitmq, b))
            tb_log_warn(NULL, "bus %s: cannot register the readiness check %s (too many)",
                        b->service, name);
    }
    pthread_mutex_unlock(&b->ready_mu);
}

int tb_bus_ready(tb_bus *b, char *why, size_t cap)
{
    if (b == NULL)
        return TB_EINVAL;
    char amqp[520] = "", redis[520] = "";
    int ra = transport_ready(b, TB_TRANSPORT_RABBITMQ, amqp, sizeof amqp);
    int rr = transport_ready(b, TB_TRANSPORT_REDIS, redis, sizeof redis);
    if (ra == 0 && rr == 0)
        return 0;
    if (cap > 0)
        snprintf(why, cap, "%s%s%s%s%s", ra ? "rabbitmq: " : "", ra ? amqp : "",
                 ra && rr ? "; " : "", rr ? "redis: " : "", rr ? redis : "");
    return TB_ECONN;
}

/* ---------------------------------------------------------------- publishing ---- */

static tb_amqp_pub *amqp_pub(tb_bus *b, tb_error *err)
{
    bool made = false;
    pthread_mutex_lock(&b->pub_mu);
    if (b->amqp_pub == NULL && b->amqp_url) {
        tb_amqp_opts ao = {.url = b->amqp_url, .exchange = b->exchange, .window = b->window,
                           .publish_timeout_ms = b->publish_timeout_ms};
        b->amqp_pub = tb_amqp_pub_new(&ao, err);
        made = b->amqp_pub != NULL;
    } else if (b->amqp_url == NULL) {
        tb_error_set(err, TB_ESTATE, "no RabbitMQ configured for durable events: set TB_AMQP_URL");
    }
    tb_amqp_pub *p = b->amqp_pub;
    pthread_mutex_unlock(&b->pub_mu);
    if (made)
        ready_note(b, TB_TRANSPORT_RABBITMQ);
    return p;
}

static tb_redis_pub *redis_pub(tb_bus *b, tb_error *err)
{
    bool made = false;
    pthread_mutex_lock(&b->pub_mu);
    if (b->redis_pub == NULL && b->redis_url) {
        tb_redis_opts ro = {.url = b->redis_url};
        b->redis_pub = tb_redis_pub_new(&ro, err);
        made = b->redis_pub != NULL;
    } else if (b->redis_url == NULL) {
        tb_error_set(err, TB_ESTATE, "no Redis configured for light events: set TB_REDIS_URL");
    }
    tb_redis_pub *p = b->redis_pub;
    pthread_mutex_unlock(&b->pub_mu);
    if (made)
        ready_note(b, TB_TRANSPORT_REDIS);
    return p;
}

typedef struct pub_done {
    tb_bus *bus;
    tb_publish_fn fn;
    void *user;
    const char *type; /* the event type (static: the generator's tables) */
} pub_done;

static void on_confirm(void *user, int rc)
{
    pub_done *pd = user;
    atomic_fetch_add(rc == 0 ? &pd->bus->published : &pd->bus->publish_failed, 1);
    tb_metrics_event_published(pd->bus->service, pd->type, "rabbitmq", rc == 0);
    if (pd->fn)
        pd->fn(pd->user, rc);
    free(pd);
}

typedef struct pub_wait {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
    int rc;
} pub_wait;

static void on_wait_done(void *user, int rc)
{
    pub_wait *w = user;
    pthread_mutex_lock(&w->mu);
    w->rc = rc;
    w->done = true;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

/* Where an event of type travels and its size, as both its producer's and its consumer's span
 * name them: the exchange and the routing key on RabbitMQ, the channel on Redis. */
static void span_destination(const tb_bus *b, tb_span *sp, bool redis, const char *type,
                             size_t len)
{
    if (redis) {
        char channel[256];
        snprintf(channel, sizeof channel, "%s:%s", b->exchange, type);
        tb_span_set_str(sp, "messaging.destination.name", channel);
    } else {
        tb_span_set_str(sp, "messaging.destination.name", b->exchange);
        tb_span_set_str(sp, "messaging.rabbitmq.destination.routing_key", type);
    }
    tb_span_set_int(sp, "messaging.message.body.size", (int64_t)len);
}

static int publish_bytes(tb_bus *b, const tb_event_type *t, const env_ids *ids, const char *body,
                         size_t len, tb_publish_fn done, void *user, tb_error *err)
{
    if (ids->span && ids->span->sampled)
        span_destination(b, ids->span, t->transport == TB_TRANSPORT_REDIS, t->type, len);
    if (t->transport == TB_TRANSPORT_REDIS) {
        tb_redis_pub *p = redis_pub(b, err);
        if (p == NULL)
            return err && err->code ? err->code : TB_ESTATE;
        char channel[256];
        snprintf(channel, sizeof channel, "%s:%s", b->exchange, t->type);
        int rc = tb_redis_publish(p, channel, body, len);
        atomic_fetch_add(rc == 0 ? &b->published : &b->publish_failed, 1);
        tb_metrics_event_published(b->service, t->type, "redis", rc == 0);
        if (rc != 0)
            tb_error_set(err, rc, "publish %s %s to Redis: %s", t->type, t->version,
                         tb_strerror(rc));
        if (done)
            done(user, rc);
        return rc;
    }
    tb_amqp_pub *p = amqp_pub(b, err);
    if (p == NULL)
        return err && err->code ? err->code : TB_ESTATE;
    pub_done *pd = malloc(sizeof *pd);
    if (pd == NULL)
        return tb_error_set(err, TB_ENOMEM, "publish: out of memory");
    *pd = (pub_done){b, done, user, t->type};
    tb_amqp_props props = {.message_id = ids->id, .type = t->type, .version = t->version,
                           .correlation_id = ids->correlation, .traceparent = ids->traceparent,
                           .key = ids->key[0] ? ids->key : NULL};
    int rc = tb_amqp_publish(p, NULL, t->type, &props, body, len, on_confirm, pd);
    if (rc != 0) {
        free(pd);
        atomic_fetch_add(&b->publish_failed, 1);
        tb_metrics_event_published(b->service, t->type, "rabbitmq", false);
        return tb_error_set(err, rc, "publish %s %s to RabbitMQ: %s", t->type, t->version,
                            tb_strerror(rc));
    }
    return 0;
}

/* Publishes a built envelope: sync waits for the outcome; id_out gets the event id. */
static int publish_built(tb_bus *bus, const tb_event_type *t, env_ids *ids, tb_buf *b,
                         bool sync, char *id_out, tb_publish_fn done, void *user, tb_error *err)
{
    if (!sync) { /* the span ends when the message is handed over, not at the confirm */
        int rc = publish_bytes(bus, t, ids, b->data, b->len, done, user, err);
        tb_buf_deinit(b);
        ids_end(ids, rc, err);
        return rc;
    }
    if (id_out)
        memcpy(id_out, ids->id, 37);
    pub_wait w = {.done = false, .rc = 0};
    pthread_mutex_init(&w.mu, NULL);
    pthread_cond_init(&w.cv, NULL);
    int rc = publish_bytes(bus, t, ids, b->data, b->len, on_wait_done, &w, err);
    tb_buf_deinit(b);
    if (rc == 0) { /* (Redis: done has run already) */
        pthread_mutex_lock(&w.mu);
        while (!w.done)
            pthread_cond_wait(&w.cv, &w.mu);
        pthread_mutex_unlock(&w.mu);
        if (w.rc != 0)
            rc = tb_error_set(err, w.rc, "publish %s %s: %s", t->type, t->version,
                              w.rc == TB_ENOTFOUND ? "no queue is bound to it (unroutable)"
                                                   : tb_strerror(w.rc));
    }
    pthread_mutex_destroy(&w.mu);
    pthread_cond_destroy(&w.cv);
    ids_end(ids, rc, err);
    return rc;
}

static int publish_json(tb_bus *bus, const tb_ctx *ctx, const tb_event_type *t, json_t *data,
                        bool sync, char *id_out, tb_publish_fn done, void *user, tb_error *err)
{
    if (bus == NULL)
        return tb_error_set(err, TB_EINVAL, "publish: no bus");
    tb_buf b = TB_BUF_INIT;
    tb_buf_reserve(&b, 1024); /* an envelope's size: one allocation instead of a chain */
    env_ids ids;
    ids.span = NULL;
    int rc = build_envelope(ctx, t, data, bus->producer, &b, &ids, err);
    if (rc != 0) {
        tb_buf_deinit(&b);
        ids_end(&ids, rc, err);
        return rc;
    }
    return publish_built(bus, t, &ids, &b, sync, id_out, done, user, err);
}

static int publish_checked(tb_bus *bus, const tb_ctx *ctx, const tb_event_type *t,
                           tb_event_write_fn write, const void *data, const char *key, bool sync,
                           char *id_out, tb_publish_fn done, void *user, tb_error *err)
{
    if (bus == NULL)
        return tb_error_set(err, TB_EINVAL, "publish: no bus");
    tb_buf b = TB_BUF_INIT;
    tb_buf_reserve(&b, 1024);
    env_ids ids;
    ids.span = NULL;
    int rc = build_envelope_checked(ctx, t, write, data, key, bus->producer, &b, &ids, err);
    if (rc != 0) {
        tb_buf_deinit(&b);
        ids_end(&ids, rc, err);
        return rc;
    }
    return publish_built(bus, t, &ids, &b, sync, id_out, done, user, err);
}

int tb_bus_publish_json_async(tb_bus *bus, const tb_ctx *ctx, const tb_event_type *t,
                              json_t *data, tb_publish_fn done, void *user, tb_error *err)
{
    return publish_json(bus, ctx, t, data, false, NULL, done, user, err);
}

int tb_bus_publish_json(tb_bus *bus, const tb_ctx *ctx, const tb_event_type *t, json_t *data,
                        char *id_out, tb_error *err)
{
    return publish_json(bus, ctx, t, data, true, id_out, NULL, NULL, err);
}

int tb_bus_publish_checked_async(tb_bus *bus, const tb_ctx *ctx, const tb_event_type *t,
                                 tb_event_write_fn write, const void *data, const char *key,
                                 tb_publish_fn done, void *user, tb_error *err)
{
    return publish_checked(bus, ctx, t, write, data, key, false, NULL, done, user, err);
}

int tb_bus_publish_checked(tb_bus *bus, const tb_ctx *ctx, const tb_event_type *t,
                           tb_event_write_fn write, const void *data, const char *key,
                           char *id_out, tb_error *err)
{
    return publish_checked(bus, ctx, t, write, data, key, true, id_out, NULL, NULL, err);
}

/* ---- generated typed events ---- */

/* The fast path: data its struct check found valid, with the key member's text in keybuf. */
static bool typed_fast(const tb_event_type *t, const void *data, char *keybuf, size_t cap,
                       const char **key)
{
    if (!t->fast_valid || !t->fast_valid(data))
        return false;
    *key = NULL;
    if (t->key_kind == TB_CK_STRING) {
        *key = *(char *const *)((const char *)data + t->key_off);
    } else if (t->key_kind == TB_CK_INTEGER) {
        snprintf(keybuf, cap, "%lld", (long long)*(const int64_t *)((const char *)data + t->key_off));
        *key = keybuf;
    }
    return true;
}

static int typed_publish(tb_bus *bus, const tb_ctx *ctx, const tb_event_type *t, const void *data,
                         bool sync, tb_publish_fn done, void *user, tb_error *err)
{
    if (t == NULL || t->data_type == NULL || data == NULL)
        return tb_error_set(err, TB_EINVAL, "publish: missing event type or data");
    char keybuf[24];
    const char *key;
    if (typed_fast(t, data, keybuf, sizeof keybuf, &key))
        return publish_checked(bus, ctx, t, NULL, data, key, sync, NULL, done, user, err);
    json_t *j = tb_codec_to_json(t->data_type, data);
    if (j == NULL)
        return tb_error_set(err, TB_ENOMEM, "%s: out of memory", t->type);
    int rc = publish_json(bus, ctx, t, j, sync, NULL, done, user, err);
    json_decref(j);
    return rc;
}

int tb_event_publish(tb_bus *bus, const tb_ctx *ctx, const tb_event_type *t, const void *data,
                     tb_error *err)
{
    return typed_publish(bus, ctx, t, data, true, NULL, NULL, err);
}

int tb_event_publish_async(tb_bus *bus, const tb_ctx *ctx, const tb_event_type *t,
                           const void *data, tb_publish_fn done, void *user, tb_error *err)
{
    return typed_publish(bus, ctx, t, data, false, done, user, err);
}

int tb_event_outbox(sqlite3 *db, const tb_ctx *ctx, const tb_event_type *t, const void *data,
                    tb_error *err)
{
    if (t == NULL || t->data_type == NULL || data == NULL)
        return tb_error_set(err, TB_EINVAL, "outbox: missing event type or data");
    json_t *j = tb_codec_to_json(t->data_type, data);
    if (j == NULL)
        return tb_error_set(err, TB_ENOMEM, "%s: out of memory", t->type);
    int rc = tb_outbox_add_json(db, ctx, t, j, NULL, NULL, err);
    json_decref(j);
    return rc;
}

int tb_event_decode(tb_ctx *ctx, const tb_event *ev, const tb_event_type *t, void *out)
{
    int rc = tb_codec_decode(t->data_type, ev->data, ctx->arena, out);
    if (rc != 0) {
        tb_event_set_reason(ev, "%s %s: cannot decode data: %s", t->type, t->version,
                            tb_strerror(rc));
        return rc == TB_ENOMEM ? TB_EVENT_RETRY : TB_EVENT_DEAD;
    }
    return 0;
}

int tb_bus_flush(tb_bus *bus, int timeout_ms)
{
    if (bus == NULL)
        return 0;
    int rc = 0;
    pthread_mutex_lock(&bus->pub_mu);
    tb_amqp_pub *ap = bus->amqp_pub;
    tb_redis_pub *rp = bus->redis_pub;
    pthread_mutex_unlock(&bus->pub_mu);
    if (rp && tb_redis_pub_flush(rp) != 0)
        rc = TB_ECONN;
    if (ap && tb_amqp_pub_flush(ap, timeout_ms) != 0)
        rc = TB_ETIMEDOUT;
    return rc;
}

/* ---------------------------------------------------------------- outbox ---- */

int tb_outbox_add_json(sqlite3 *db, const tb_ctx *ctx, const tb_event_type *t, json_t *data,
                       const char *producer, char *id_out, tb_error *err)
{
    if (db == NULL || t == NULL)
        return tb_error_set(err, TB_EINVAL, "outbox: missing database or event type");
    if (t->transport != TB_TRANSPORT_RABBITMQ)
        return tb_error_set(err, TB_EINVAL,
                            "outbox: %s %s travels on Redis (at-most-once); the outbox is for "
                            "durable (rabbitmq) events",
                            t->type, t->version);
    char dflt[80];
    if (producer == NULL) {
        producer = t->producer ? t->producer : (ctx && ctx->service ? ctx->service : NULL);
        if (producer == NULL)
            return tb_error_set(err, TB_EINVAL, "outbox: no producer name");
        if (!t->producer && ctx && ctx->service) {
            snprintf(dflt, sizeof dflt, "%s-service", ctx->service);
            producer = dflt;
        }
    }
    tb_buf b = TB_BUF_INIT;
    env_ids ids;
    ids.span = NULL;
    int rc = build_envelope(ctx, t, data, producer, &b, &ids, err);
    if (ids.span && ids.span->sampled) { /* written to the outbox, sent later by the relay */
        char name[160];
        snprintf(name, sizeof name, "create %s", t->type);
        tb_span_set_name(ids.span, name);
        tb_span_set_str(ids.span, "messaging.operation.type", "create");
        tb_span_set_str(ids.span, "messaging.operation.name", "outbox");
        tb_span_set_str(ids.span, "messaging.rabbitmq.destination.routing_key", t->type);
        if (rc == 0) /* the exchange is the relay's, not known here */
            tb_span_set_int(ids.span, "messaging.message.body.size", (int64_t)b.len);
    }
    if (rc == 0)
        rc = tb_outbox_put_keyed(db, ids.id, t->type, t->type, ids.key[0] ? ids.key : NULL,
                                 b.data, b.len, err);
    if (rc == 0 && id_out)
        memcpy(id_out, ids.id, 37);
    tb_buf_deinit(&b);
    ids_end(&ids, rc, err);
    return rc;
}

typedef struct relay_batch relay_batch;

/* One outbox row in flight: what the confirm and the logs need (the broker has the bytes). */
typedef struct relay_row {
    relay_batch *rb;
    int64_t seq;
    int rc;
    char id[40];
    char type[129];
} relay_row;

struct relay_batch {
    tb_bus *bus;
    tb_amqp_pub *pub;
    relay_row rows[256];
    size_t n;       /* rows handed to the publisher */
    size_t pending; /* of them, not yet confirmed */
    int stop_rc;    /* why the scan stopped early (0: it did not) */
    char stop_id[40]; /* the event it stopped at */
    bool crash_before_publish;
    pthread_mutex_t mu;
    pthread_cond_t cv;
};

static void relay_confirmed(void *user, int rc)
{
    relay_row *r = user;
    relay_batch *rb = r->rb;
    pthread_mutex_lock(&rb->mu);
    r->rc = rc;
    rb->pending--;
    pthread_cond_signal(&rb->cv);
    pthread_mutex_unlock(&rb->mu);
}

/* tb_outbox_scan callback: publishes the row at once (the publisher copies it). */
static int relay_publish(void *user, const tb_outbox_row *row)
{
    relay_batch *rb = user;
    if (rb->crash_before_publish) {
        tb_log_warn(NULL, "fault hook TB_FAULT=outbox-crash-before-publish: SIGKILL with "
                          "committed event %s not yet published",
                    row->id ? row->id : "?");
        raise(SIGKILL);
    }
    relay_row *r = &rb->rows[rb->n];
    *r = (relay_row){.rb = rb, .seq = row->seq, .rc = 0};
    snprintf(r->id, sizeof r->id, "%s", row->id ? row->id : "?");
    snprintf(r->type, sizeof r->type, "%s", row->type ? row->type : "?");
    pthread_mutex_lock(&rb->mu);
    rb->pending++;
    pthread_mutex_unlock(&rb->mu);
    tb_amqp_props props = {.message_id = row->id, .type = row->type, .key = row->key};
    int rc = tb_amqp_publish(rb->pub, NULL, row->routing_key, &props, row->body, row->len,
                             relay_confirmed, r);
    if (rc != 0) {
        pthread_mutex_lock(&rb->mu);
        rb->pending--;
        pthread_mutex_unlock(&rb->mu);
        rb->stop_rc = rc;
        memcpy(rb->stop_id, r->id, sizeof rb->stop_id);
        return 1; /* stop: the rest keeps its order for the next round */
    }
    rb->n++;
    return rb->n == sizeof rb->rows / sizeof rb->rows[0] ? 1 : 0;
}

static void relay_wait(tb_bus *b, int ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&b->relay_mu);
    while (!b->relay_kicked && !b->relay_stop)
        if (pthread_cond_timedwait(&b->relay_cv, &b->relay_mu, &ts) == ETIMEDOUT)
            break;
    b->relay_kicked = false;
    pthread_mutex_unlock(&b->relay_mu);
}

static bool relay_stopping(tb_bus *b)
{
    pthread_mutex_lock(&b->relay_mu);
    bool s = b->relay_stop;
    pthread_mutex_unlock(&b->relay_mu);
    return s;
}

static void *relay_main(void *arg)
{
    tb_bus *b = arg;
    tb_error err = TB_ERROR_INIT;
    sqlite3 *db = NULL;
    int backoff = 100;
    const char *fault = getenv("TB_FAULT");
    relay_batch *rb = calloc(1, sizeof *rb);
    if (rb == NULL)
        return NULL;
    rb->bus = b;
    rb->crash_before_publish = fault && strcmp(fault, "outbox-crash-before-publish") == 0;
    pthread_mutex_init(&rb->mu, NULL);
    pthread_cond_init(&rb->cv, NULL);
    while (!relay_stopping(b)) {
        if (db == NULL) {
            db = tb_store_open(b->relay_path, NULL, &err);
            if (db == NULL || tb_outbox_init(db, &err) != 0) {
                tb_log_error(NULL, "outbox relay: cannot open %s: %s", b->relay_path,
                             err.message);
                tb_store_close(db);
                db = NULL;
                relay_wait(b, 1000);
                continue;
            }
        }
        if (b->amqp_url == NULL || (rb->pub = amqp_pub(b, &err)) == NULL) {
            relay_wait(b, 1000); /* nowhere to relay to: the rows wait (warned at start) */
            continue;
        }
        rb->n = 0;
        rb->stop_rc = 0;
        snprintf(rb->stop_id, sizeof rb->stop_id, "?");
        long n = tb_outbox_scan(db, 0, sizeof rb->rows / sizeof rb->rows[0], relay_publish, rb,
                                &err);
        pthread_mutex_lock(&rb->mu);
        while (rb->pending > 0)
            pthread_cond_wait(&rb->cv, &rb->mu);
        pthread_mutex_unlock(&rb->mu);
        if (n < 0)
            tb_log_error(NULL, "outbox relay: scan failed: %s", err.message);
        /* delete the confirmed prefix: a failed row stops it, so the order holds */
        size_t ok = 0;
        while (ok < rb->n && (rb->rows[ok].rc == 0 || rb->rows[ok].rc == TB_ENOTFOUND)) {
            /* unroutable: the broker took it and no service subscribes to that type (yet);
             * that is delivery to nobody, as RabbitMQ defines it, not a failure to retry */
            if (rb->rows[ok].rc == TB_ENOTFOUND)
                tb_log_info(NULL, "outbox relay: no queue is bound to %s; event %s reached "
                                  "nobody",
                            rb->rows[ok].type, rb->rows[ok].id);
            ok++;
        }
        if (ok > 0) {
            sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
            for (size_t i = 0; i < ok; i++)
                tb_outbox_delete(db, rb->rows[i].seq, &err);
            if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
                sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
                tb_log_error(NULL, "outbox relay: cannot delete relayed rows: %s",
                             sqlite3_errmsg(db));
            } else {
                atomic_fetch_add(&b->relayed, ok);
            }
        }
        if (ok < rb->n || rb->stop_rc != 0 || n < 0) {
            int rc = ok < rb->n ? rb->rows[ok].rc : rb->stop_rc ? rb->stop_rc : TB_EIO;
            tb_log_warn(NULL, "outbox relay: event %s not confirmed (%s); retrying in %d ms",
                        ok < rb->n ? rb->rows[ok].id : rb->stop_id, tb_strerror(rc),
                        backoff);
            relay_wait(b, backoff);
            backoff = backoff < 5000 ? backoff * 2 : 5000;
        } else {
            backoff = 100;
            if (rb->n == 0)
                relay_wait(b, 500); /* empty: until a kick or the next poll */
        }
    }
    pthread_mutex_destroy(&rb->mu);
    pthread_cond_destroy(&rb->cv);
    free(rb);
    tb_store_close(db);
    tb_error_deinit(&err);
    return NULL;
}

int tb_bus_relay_outbox(tb_bus *bus, const char *path, tb_error *err)
{
    if (bus == NULL)
        return tb_error_set(err, TB_EINVAL, "outbox relay: missing bus");
    if (bus->relay_running)
        return tb_error_set(err, TB_ESTATE, "outbox relay: already running");
    bus->relay_path = path ? strdup(path) : tb_store_path(bus->service);
    if (bus->relay_path == NULL)
        return tb_error_set(err, TB_ENOMEM, "outbox relay: out of memory");
    if (bus->amqp_url == NULL)
        tb_log_warn(NULL, "outbox relay: TB_AMQP_URL is not set; events stay in the outbox of %s",
                    bus->relay_path);
    bus->relay_stop = false;
    if (pthread_create(&bus->relay_thread, NULL, relay_main, bus) != 0)
        return tb_error_set(err, TB_ENOMEM, "outbox relay: cannot start a thread");
    bus->relay_running = true;
    return 0;
}

void tb_bus_outbox_kick(tb_bus *bus)
{
    if (bus == NULL)
        return;
    pthread_mutex_lock(&bus->relay_mu);
    bus->relay_kicked = true;
    pthread_cond_signal(&bus->relay_cv);
    pthread_mutex_unlock(&bus->relay_mu);
}

/* ---------------------------------------------------------------- consuming ---- */

static void msg_free(bus_msg *m)
{
    if (m == NULL)
        return;
    json_decref(m->root);
    free(m->body);
    free(m);
}

static void settle(tb_bus *b, bus_msg *m, tb_event_result r, const char *reason)
{
    if (m->transport == TB_TRANSPORT_RABBITMQ) {
        tb_amqp_action a = r == TB_EVENT_ACK ? TB_AMQP_ACK
                                             : (r == TB_EVENT_RETRY ? TB_AMQP_RETRY : TB_AMQP_DEAD);
        tb_amqp_settle(b->amqp_sub, m->d, a, reason);
        m->d = NULL;
    }
}

static const char *jstr(const json_t *o, const char *k)
{
    const json_t *v = json_object_get(o, k);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* The key value of an event as text (NULL when none): a string as it is, an integer in decimal. */
static const char *key_of(const tb_event_type *t, const json_t *data, char *buf, size_t cap)
{
    if (t == NULL || t->key == NULL || !json_is_object(data))
        return NULL;
    const json_t *v = json_object_get(data, t->key);
    if (json_is_string(v))
        return json_string_value(v);
    if (json_is_integer(v)) {
        snprintf(buf, cap, "%lld", (long long)json_integer_value(v));
        return buf;
    }
    return NULL;
}

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; s && *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ull;
    }
    return h;
}

static void enqueue(tb_bus *b, bus_msg *m)
{
    /* route by key: the same key always goes to the same worker, so it keeps its order */
    unsigned w = 0;
    if (m->root == NULL && m->d && m->d->key) { /* not parsed yet: the key from its header */
        w = (unsigned)(fnv1a(m->d->key) % b->n_workers);
    } else if (m->root) {
        const json_t *data = json_object_get(m->root, "data");
        bool known;
        const bus_sub *s = find_sub(b, jstr(m->root, "type"), jstr(m->root, "version"), &known);
        char kb[32];
        const char *key = s ? key_of(s->type, data, kb, sizeof kb) : NULL;
        if (key)
            w = (unsigned)(fnv1a(key) % b->n_workers);
    }
    bus_worker *wk = &b->workers[w];
    pthread_mutex_lock(&wk->mu);
    if (wk->tail)
        wk->tail->next = m;
    else
        wk->head = m;
    wk->tail = m;
    pthread_cond_signal(&wk->cv);
    pthread_mutex_unlock(&wk->mu);
}

/* Parses a durable delivery's envelope into m->root. false when it is not a JSON object: then
 * it was dead-lettered with the parser's reason (line and column). */
static bool parse_durable(tb_bus *b, bus_msg *m, bus_worker *w)
{
    tb_error err = TB_ERROR_INIT;
    m->root = worker_parse(w, m->d->body, m->d->len, &err);
    if (m->root != NULL && json_is_object(m->root)) {
        tb_error_deinit(&err);
        return true;
    }
    char reason[BUS_REASON_MAX];
    if (m->root == NULL)
        snprintf(reason, sizeof reason, "%s", err.message); /* has line and column */
    else
        snprintf(reason, sizeof reason, "invalid envelope: (type) must be an object");
    tb_log_warn(NULL, "event %s on %s dead-lettered: %s",
                m->d->message_id ? m->d->message_id : "(no id)", b->service, reason);
    atomic_fetch_add(&b->invalid, 1);
    atomic_fetch_add(&b->dead, 1);
    tb_metrics_event_consumed(b->service, "_invalid", "rabbitmq", "invalid");
    tb_metrics_event_dead_lettered(b->service, "_invalid", "rabbitmq");
    settle(b, m, TB_EVENT_DEAD, reason);
    tb_error_deinit(&err);
    return false;
}

static void on_amqp(void *user, tb_amqp_delivery *d)
{
    tb_bus *b = user;
    if (atomic_load(&b->stopping))
        return; /* left unsettled: the broker redelivers it after tb_amqp_consumer_free */
    bus_msg *m = calloc(1, sizeof *m);
    if (m == NULL) {
        tb_amqp_settle(b->amqp_sub, d, TB_AMQP_RETRY, "out of memory");
        return;
    }
    m->transport = TB_TRANSPORT_RABBITMQ;
    m->d = d;
    m->keyed = d->key != NULL;
    m->len = d->len;
    /* With the ordering key in its header (our publishers send it), the JSON is parsed by the
     * worker the key picks; otherwise here, to find the key in the data. */
    if (d->key || parse_durable(b, m, NULL))
        enqueue(b, m);
    else
        msg_free(m);
}

static const bus_sub *prepare(tb_bus *b, bus_worker *w, bus_msg *m, bus_event *be);

static const char *transport_name(const bus_msg *m)
{
    return m->transport == TB_TRANSPORT_REDIS ? "redis" : "rabbitmq";
}

/* Seconds since an envelope's RFC 3339 UTC timestamp ("2026-11-24T10:00:00.123Z"), or -1. */
static double age_seconds(const char *ts)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    int ms = 0;
    if (!ts || sscanf(ts, "%4d-%2d-%2dT%2d:%2d:%2d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                      &tm.tm_hour, &tm.tm_min, &tm.tm_sec) != 6)
        return -1;
    const char *frac = strchr(ts, '.');
    if (frac)
        for (int i = 1, scale = 100; i <= 3 && frac[i] >= '0' && frac[i] <= '9'; i++, scale /= 10)
            ms += (frac[i] - '0') * scale;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    time_t t = timegm(&tm);
    if (t == (time_t)-1)
        return -1;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    double age = (double)(now.tv_sec - t) + (double)now.tv_nsec / 1e9 - ms / 1e3;
    return age < 0 ? 0 : age;
}
static void light_one(tb_bus *b, bus_worker *w, bus_msg *m, bus_event *be, const bus_sub *s);

static void on_redis(void *user, const char *channel, const void *body, size_t len)
{
    tb_bus *b = user;
    if (atomic_load(&b->stopping))
        return;
    tb_error err = TB_ERROR_INIT;
    json_t *root = worker_parse(b->light_inline ? b->light : NULL, body, len, &err);
    if (root == NULL || !json_is_object(root)) {
        tb_log_warn(NULL, "event on Redis channel %s dropped: %s%s", channel,
                    root ? "invalid envelope: " : "",
                    root ? "(type) must be an object" : err.message);
        atomic_fetch_add(&b->invalid, 1);
        atomic_fetch_add(&b->dead, 1);
        tb_metrics_event_consumed(b->service, "_invalid", "redis", "invalid");
        json_decref(root);
        tb_error_deinit(&err);
        return;
    }
    tb_error_deinit(&err);
    bus_msg *m = calloc(1, sizeof *m);
    if (m == NULL) {
        json_decref(root);
        return;
    }
    m->transport = TB_TRANSPORT_REDIS;
    m->root = root;
    m->len = len;
    if (b->light_inline) { /* handled here, on the subscriber's thread, in channel order */
        const bus_sub *s = prepare(b, b->light, m, b->light->batch);
        if (s != NULL)
            light_one(b, b->light, m, b->light->batch, s);
        worker_keep(b->light, &m->root, len);
        msg_free(m);
        return;
    }
    enqueue(b, m);
}

/* Handler call with ctx; returns the result (negative codes mapped to RETRY). */
static tb_event_result run_handler(tb_bus *b, bus_worker *w, const bus_sub *s, bus_event *be)
{
    tb_ctx ctx;
    tb_ctx_init(&ctx, w->arena, be->ev.correlation_id);
    ctx.service = b->service;
    ctx.state = b->state;
    ctx.deps = b->deps ? b->deps : tb_service_deps();
    /* the consumer span: a child of the producer's (the envelope's traceparent) */
    tb_span_context parent;
    const char *tp = be->ev.traceparent;
    bool linked = tp && tb_traceparent_decode(tp, strlen(tp), &parent);
    tb_span *sp = tb_span_start_with(NULL, TB_SPAN_CONSUMER, linked ? &parent : NULL, NULL);
    char tpbuf[TB_TRACEPARENT_LEN + 1];
    tb_traceparent_encode(&sp->sc, tpbuf);
    ctx.span = sp;
    ctx.traceparent = tpbuf;
    if (sp->sampled) {
        char name[160];
        snprintf(name, sizeof name, "process %s", be->ev.type ? be->ev.type : "event");
        tb_span_set_name(sp, name);
        bool redis = s->type && s->type->transport == TB_TRANSPORT_REDIS;
        tb_span_set_str(sp, "messaging.system", redis ? "redis" : "rabbitmq");
        tb_span_set_str(sp, "messaging.operation.type", "process");
        tb_span_set_str(sp, "messaging.operation.name", "consume");
        if (be->ev.id)
            tb_span_set_str(sp, "messaging.message.id", be->ev.id);
        if (be->ev.correlation_id)
            tb_span_set_str(sp, "messaging.message.conversation_id", be->ev.correlation_id);
        if (be->ev.type)
            span_destination(b, sp, redis, be->ev.type, be->body_len);
        if (b->service)
            tb_span_set_str(sp, "messaging.consumer.group.name", b->service);
        if (be->ev.attempt > 1)
            tb_span_set_int(sp, "tablium.event.attempt", be->ev.attempt);
    }
    double lag = age_seconds(be->ev.timestamp);
    if (lag >= 0)
        tb_metrics_consumer_lag_seconds(
            b->service, s->type && s->type->transport == TB_TRANSPORT_REDIS ? "redis" : "rabbitmq",
            lag);
    int r = s->handler ? s->handler(&ctx, &be->ev, s->user)
                       : s->invoke(&ctx, &be->ev, s->fn, s->user);
    if (sp->sampled && r != TB_EVENT_ACK) {
        tb_span_set_str(sp, "error.type", r < 0 ? tb_err_name(r)
                                          : r == TB_EVENT_RETRY ? "retry" : "dead");
        tb_span_set_status(sp, TB_STATUS_ERROR, be->reason[0] ? be->reason : NULL);
    }
    tb_span_end(sp);
    if (r < 0) {
        if (be->reason[0] == '\0')
            snprintf(be->reason, sizeof be->reason, "handler failed: %s", tb_strerror(r));
        return TB_EVENT_RETRY;
    }
    if (r != TB_EVENT_ACK && r != TB_EVENT_RETRY && r != TB_EVENT_DEAD) {
        snprintf(be->reason, sizeof be->reason, "handler answered %d (not ack, retry or dead)",
                 r);
        return TB_EVENT_RETRY;
    }
    if (r != TB_EVENT_ACK && be->reason[0] == '\0')
        snprintf(be->reason, sizeof be->reason, "handler answered %s",
                 r == TB_EVENT_RETRY ? "retry" : "dead");
    return (tb_event_result)r;
}

/* The store's connection and the lock to hold on it (store mode only). */
static sqlite3 *dedupe_db(tb_bus *b, pthread_mutex_t **lock)
{
    /* without the caller's lock, still one worker at a time on it */
    *lock = b->store_lock ? b->store_lock : &b->own_dedupe_mu;
    return b->store;
}

/* ---- the ids handled lately, in memory: the dedupe check costs a hash lookup ----
 * A FIFO ring of `cap` ids with a chained hash index; the oldest is forgotten first, as in the
 * SQLite record it mirrors (loaded from it at start, added to only after a commit). */

#define SEEN_ID_MAX 40

typedef struct seen_entry {
    char id[SEEN_ID_MAX];
    uint32_t next; /* next in the bucket, UINT32_MAX at the end */
    bool used;
} seen_entry;

struct seen_set {
    seen_entry *ring;
    uint32_t *buckets;
    uint32_t cap, n_buckets, head, count;
};

static void seen_free(seen_set *s)
{
    if (s == NULL)
        return;
    free(s->ring);
    free(s->buckets);
    free(s);
}

static seen_set *seen_new(size_t cap)
{
    seen_set *s = calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    s->cap = (uint32_t)(cap < 16 ? 16 : cap);
    s->n_buckets = 1;
    while (s->n_buckets < s->cap * 2)
        s->n_buckets <<= 1;
    s->ring = calloc(s->cap, sizeof *s->ring);
    s->buckets = malloc((size_t)s->n_buckets * sizeof *s->buckets);
    if (s->ring == NULL || s->buckets == NULL) {
        seen_free(s);
        return NULL;
    }
    memset(s->buckets, 0xff, (size_t)s->n_buckets * sizeof *s->buckets);
    return s;
}

static bool seen_has(const seen_set *s, const char *id)
{
    for (uint32_t i = s->buckets[fnv1a(id) & (s->n_buckets - 1)]; i != UINT32_MAX;
         i = s->ring[i].next)
        if (strcmp(s->ring[i].id, id) == 0)
            return true;
    return false;
}

static void seen_add(seen_set *s, const char *id)
{
    if (strlen(id) >= SEEN_ID_MAX || seen_has(s, id))
        return;
    seen_entry *e = &s->ring[s->head];
    if (e->used) { /* forget the oldest: unlink it from its bucket */
        uint32_t *p = &s->buckets[fnv1a(e->id) & (s->n_buckets - 1)];
        while (*p != UINT32_MAX && *p != s->head)
            p = &s->ring[*p].next;
        if (*p == s->head)
            *p = e->next;
    } else {
        s->count++;
    }
    snprintf(e->id, sizeof e->id, "%s", id);
    e->used = true;
    uint32_t *bucket = &s->buckets[fnv1a(id) & (s->n_buckets - 1)];
    e->next = *bucket;
    *bucket = s->head;
    s->head = (s->head + 1) % s->cap;
}

static void seen_load_one(void *user, const char *id) { seen_add(user, id); }

typedef struct {
    seen_set *seen;
    const char **ids;
    size_t n, cap;
} carry_over;

static void carry_one(void *user, const char *id)
{
    carry_over *c = user;
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 1024;
        const char **ids = realloc(c->ids, cap * sizeof *ids);
        if (!ids)
            return;
        c->ids = ids;
        c->cap = cap;
    }
    char *copy = strdup(id);
    if (copy)
        c->ids[c->n++] = copy;
}

/* The bus's own dedupe record: the log tb_store_path("<service>-events") names with .dedupe
 * for .db. Ids recorded by an earlier version in the SQLite file of that name are carried over
 * into a new, empty log once. */
static int open_own_log(tb_bus *b, tb_error *err)
{
    char name[96];
    snprintf(name, sizeof name, "%s-events", b->service);
    char *db_path = tb_store_path(name);
    if (!db_path)
        return tb_error_set(err, TB_ENOMEM, "bus: out of memory");
    size_t len = strlen(db_path);
    char *path = malloc(len + 8);
    if (!path) {
        free(db_path);
        return tb_error_set(err, TB_ENOMEM, "bus: out of memory");
    }
    if (len > 3 && strcmp(db_path + len - 3, ".db") == 0)
        snprintf(path, len + 8, "%.*s.dedupe", (int)(len - 3), db_path);
    else
        snprintf(path, len + 8, "%s.dedupe", db_path);
    int rc = 0;
    b->seen = seen_new(b->dedupe_keep);
    if (!b->seen)
        rc = tb_error_set(err, TB_ENOMEM, "bus: out of memory");
    if (rc == 0 && !(b->own_log = tb_dlog_open(path, b->dedupe_keep, seen_load_one, b->seen, err)))
        rc = err && err->code ? err->code : TB_EIO;
    if (rc == 0 && tb_dlog_records(b->own_log) == 0 && access(db_path, F_OK) == 0) {
        carry_over c = {.seen = b->seen};
        tb_error e2 = TB_ERROR_INIT;
        sqlite3 *old = tb_store_open(db_path, NULL, &e2);
        if (old && tb_dedupe_recent(old, b->dedupe_consumer, b->dedupe_keep, carry_one, &c,
                                    &e2) == 0) {
            for (size_t i = 0; i < c.n; i++)
                seen_add(b->seen, c.ids[i]);
            if (tb_dlog_append(b->own_log, c.ids, c.n, &e2) == 0 && c.n > 0)
                tb_log_info(NULL, "bus %s: %zu dedupe records carried over from %s into %s",
                            b->service, c.n, db_path, path);
        }
        if (e2.code)
            tb_log_warn(NULL, "bus %s: the dedupe records of %s were not carried over: %s",
                        b->service, db_path, e2.message);
        tb_store_close(old);
        tb_error_deinit(&e2);
        for (size_t i = 0; i < c.n; i++)
            free((char *)c.ids[i]);
        free(c.ids);
    }
    free(path);
    free(db_path);
    return rc;
}

/* ---- consuming, in batches ---- */

#define BATCH_MAX 64

/* Validates a delivery and finds its handler. Returns the subscription and fills be, or NULL
 * when the message was settled here (invalid: dead-lettered or dropped; a version nobody here
 * reads: acked). */
static const bus_sub *prepare(tb_bus *b, bus_worker *w, bus_msg *m, bus_event *be)
{
    memset(be, 0, sizeof *be);
    const bool durable = m->transport == TB_TRANSPORT_RABBITMQ;
    if (m->root == NULL && !(durable && m->d && parse_durable(b, m, w)))
        return NULL;
    json_t *root = m->root;
    const char *where = durable ? "dead-lettered" : "dropped";
    tb_error err = TB_ERROR_INIT;
    bool known;
    const char *type = jstr(root, "type"), *version = jstr(root, "version");
    const bus_sub *s = find_sub(b, type, version, &known);
    const tb_event_type *vt = s ? s->type : b->any_type;
    if (vt && vt->validate_envelope &&
        vt->validate_envelope(root, TB_VALIDATE_ALL_ERRORS | TB_VALIDATE_FORMATS, &err) != 0) {
        reason_from_error(be->reason, sizeof be->reason, "invalid envelope", "", &err);
        goto invalid;
    }
    if (s == NULL && !known) {
        /* routed here (a key or channel this service binds) under a type it does not read: a
         * producer's mistake, kept in the DLQ with why rather than acked unseen */
        const char *rk = durable && m->d ? m->d->routing_key : NULL;
        snprintf(be->reason, sizeof be->reason,
                 "invalid envelope: /type \"%.64s\" is not an event type %s reads%s%.64s%s",
                 type ? type : "", b->service, rk ? " (routed as \"" : "", rk ? rk : "",
                 rk ? "\")" : "");
        goto invalid;
    }
    if (s == NULL) {
        tb_log_debug(NULL, "event %s %s %s: no handler here for this version; skipped",
                     type ? type : "?", version ? version : "?", jstr(root, "id"));
        atomic_fetch_add(&b->skipped, 1);
        tb_metrics_event_consumed(b->service, "_unsubscribed", transport_name(m), "skipped");
        settle(b, m, TB_EVENT_ACK, NULL);
        tb_error_deinit(&err);
        return NULL;
    }
    const json_t *data = json_object_get(root, "data");
    tb_error_reset(&err);
    if (s->type->validate(data, TB_VALIDATE_ALL_ERRORS | TB_VALIDATE_FORMATS, &err) != 0) {
        char what[200];
        snprintf(what, sizeof what, "invalid data for %s %s", s->type->type, s->type->version);
        reason_from_error(be->reason, sizeof be->reason, what, "/data", &err);
        goto invalid;
    }
    tb_error_deinit(&err);
    const json_t *meta = json_object_get(root, "metadata");
    be->body_len = durable && m->d ? m->d->len : m->len;
    be->ev = (tb_event){
        .id = jstr(root, "id"),
        .type = type,
        .version = version,
        .timestamp = jstr(root, "timestamp"),
        .producer = jstr(root, "producer"),
        .correlation_id = jstr(meta, "correlationId"),
        .trace_id = jstr(meta, "traceId"),
        .traceparent = jstr(meta, "traceparent"),
        .causation_id = jstr(meta, "causationId"),
        .key = key_of(s->type, data, be->key_buf, sizeof be->key_buf),
        .data = data,
        .envelope = root,
        .attempt = durable && m->d ? m->d->attempt : 1,
        .max_attempts = b->max_attempts,
        .redelivered = durable && m->d ? m->d->redelivered : false,
    };
    if (durable && m->d && m->d->key && be->ev.key && strcmp(m->d->key, be->ev.key) != 0) {
        /* it was queued by the header's key: a different one would break the order of both */
        snprintf(be->reason, sizeof be->reason,
                 "invalid envelope: header x-tablium-key \"%.64s\" is not data.%s \"%.64s\"",
                 m->d->key, s->type->key, be->ev.key);
        tb_error_init(&err);
        goto invalid;
    }
    return s;
invalid:
    atomic_fetch_add(&b->invalid, 1);
    atomic_fetch_add(&b->dead, 1);
    /* the type label only when the subscription knows it (a bounded set) */
    tb_metrics_event_consumed(b->service, s ? s->type->type : "_invalid", transport_name(m),
                              "invalid");
    if (m->transport == TB_TRANSPORT_RABBITMQ)
        tb_metrics_event_dead_lettered(b->service, s ? s->type->type : "_invalid", "rabbitmq");
    tb_log_warn(NULL, "event %s %s %s on %s %s: %s", jstr(root, "id") ? jstr(root, "id") : "?",
                type ? type : "?", version ? version : "?", b->service, where, be->reason);
    settle(b, m, TB_EVENT_DEAD, be->reason);
    tb_error_deinit(&err);
    return NULL;
}

/* Logs and counts the outcome of a handled event, then settles it. */
static void finish(tb_bus *b, bus_msg *m, bus_event *be, tb_event_result r)
{
    const char *where = m->transport == TB_TRANSPORT_RABBITMQ ? "dead-lettered" : "dropped";
    const char *tr = transport_name(m);
    tb_metrics_event_consumed(b->service, be->ev.type, tr,
                              r == TB_EVENT_ACK ? "ack" : r == TB_EVENT_RETRY ? "retry" : "dead");
    if (r == TB_EVENT_ACK) {
        atomic_fetch_add(&b->handled, 1);
    } else if (r == TB_EVENT_RETRY && be->ev.attempt < b->max_attempts) {
        tb_metrics_event_retried(b->service, be->ev.type, tr);
        atomic_fetch_add(&b->retried, 1);
        tb_log_info(NULL, "event %s %s attempt %d/%d will be retried: %s", be->ev.id,
                    be->ev.type, be->ev.attempt, b->max_attempts, be->reason);
    } else {
        if (r == TB_EVENT_RETRY) {
            char tmp[BUS_REASON_MAX + 64];
            snprintf(tmp, sizeof tmp, "gave up after %d attempts: %s", be->ev.attempt,
                     be->reason);
            memcpy(be->reason, tmp, sizeof be->reason - 1);
            be->reason[sizeof be->reason - 1] = '\0';
        }
        atomic_fetch_add(&b->dead, 1);
        if (m->transport == TB_TRANSPORT_RABBITMQ)
            tb_metrics_event_dead_lettered(b->service, be->ev.type, tr);
        tb_log_warn(NULL, "event %s %s %s %s: %s", be->ev.id, be->ev.type, be->ev.version, where,
                    be->reason);
    }
    settle(b, m, r, be->reason[0] ? be->reason : NULL);
}

/*
 * Durable events, a batch at a time, exactly once per event id:
 *   - ids handled before are known from memory (mirroring the dedupe record): acked at once;
 *   - with opts.store, one transaction on the service's database holds the whole batch, each
 *     event in its own SAVEPOINT (handler writes + its dedupe record, or nothing);
 *   - without, handlers run unlocked and the ids of every worker's finished batch go to the
 *     bus's own dedupe log in one write (group commit);
 *   - acks go out only after that COMMIT or write, so a crash before it redelivers.
 */

/* Records the acked ids of every batch in the list in the bus's dedupe log: one write. True
 * when written. */
static bool commit_marks(tb_bus *b, gc_batch *list)
{
    const char *stack[4 * BATCH_MAX], **ids = stack;
    size_t n = 0, cap = sizeof stack / sizeof *stack, total = 0;
    for (gc_batch *x = list; x; x = x->next)
        total += (size_t)x->n;
    if (total > cap && !(ids = malloc(total * sizeof *ids)))
        return false;
    for (gc_batch *x = list; x; x = x->next)
        for (int i = 0; i < x->n; i++)
            if (!x->skip[i] && x->res[i] == TB_EVENT_ACK)
                ids[n++] = x->bes[i].ev.id;
    tb_error err = TB_ERROR_INIT;
    pthread_mutex_lock(&b->own_dedupe_mu);
    bool ok = tb_dlog_append(b->own_log, ids, n, &err) == 0;
    pthread_mutex_unlock(&b->own_dedupe_mu);
    if (!ok)
        tb_log_error(NULL, "bus %s: the dedupe records were not written: %s", b->service,
                     err.message);
    tb_error_deinit(&err);
    if (ids != stack)
        free(ids);
    return ok;
}

static void durable_batch(tb_bus *b, bus_worker *w, bus_msg **ms, bus_event *bes,
                          const bus_sub **subs, int n)
{
    tb_event_result res[BATCH_MAX];
    bool skip[BATCH_MAX];
    int copy_of[BATCH_MAX];
    pthread_mutex_lock(&b->seen_mu);
    for (int i = 0; i < n; i++) {
        res[i] = TB_EVENT_ACK;
        copy_of[i] = -1;
        skip[i] = seen_has(b->seen, bes[i].ev.id);
        for (int j = 0; j < i && !skip[i]; j++)
            if (!skip[j] && strcmp(bes[j].ev.id, bes[i].ev.id) == 0) {
                /* the same id twice in one batch: it shares the first one's outcome */
                skip[i] = true;
                copy_of[i] = j;
            }
    }
    pthread_mutex_unlock(&b->seen_mu);

    pthread_mutex_t *lock;
    sqlite3 *db = dedupe_db(b, &lock);
    tb_error err = TB_ERROR_INIT;
    bool committed = false;
    if (b->store == NULL) {
        /* handlers first, without any lock of ours; then the records of every worker's batch
         * that is ready go in one transaction (group commit: one worker commits for all) */
        for (int i = 0; i < n; i++)
            if (!skip[i]) {
                res[i] = run_handler(b, w, subs[i], &bes[i]);
                tb_arena_reset(w->arena);
            }
        gc_batch me = {.bes = bes, .res = res, .skip = skip, .n = n};
        pthread_mutex_lock(&b->gc_mu);
        me.next = b->gc_head;
        b->gc_head = &me;
        while (!me.done) {
            if (b->gc_busy) {
                pthread_cond_wait(&b->gc_cv, &b->gc_mu);
                continue;
            }
            b->gc_busy = true;
            gc_batch *list = b->gc_head;
            b->gc_head = NULL;
            pthread_mutex_unlock(&b->gc_mu);
            bool ok = commit_marks(b, list);
            pthread_mutex_lock(&b->gc_mu);
            for (gc_batch *x = list; x; x = x->next) {
                x->committed = ok;
                x->done = true;
            }
            b->gc_busy = false;
            pthread_cond_broadcast(&b->gc_cv);
        }
        pthread_mutex_unlock(&b->gc_mu);
        committed = me.committed;
        goto settled;
    }
    /* with the service's store: the handlers write in the transaction, a SAVEPOINT each */
    pthread_mutex_lock(lock);
    if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
        tb_log_error(NULL, "bus %s: BEGIN failed: %s", b->service, sqlite3_errmsg(db));
        pthread_mutex_unlock(lock);
        goto settled;
    }
    for (int i = 0; i < n; i++) {
        if (skip[i])
            continue;
        sqlite3_exec(db, "SAVEPOINT tb_event", NULL, NULL, NULL);
        res[i] = run_handler(b, w, subs[i], &bes[i]);
        tb_arena_reset(w->arena);
        if (res[i] == TB_EVENT_ACK && tb_dedupe_marker_mark(b->marker, bes[i].ev.id, &err) < 0) {
            snprintf(bes[i].reason, sizeof bes[i].reason, "dedupe store: %s", err.message);
            res[i] = TB_EVENT_RETRY;
        }
        if (res[i] != TB_EVENT_ACK)
            sqlite3_exec(db, "ROLLBACK TO tb_event", NULL, NULL, NULL);
        sqlite3_exec(db, "RELEASE tb_event", NULL, NULL, NULL);
    }
    committed = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK;
    if (!committed) {
        tb_log_error(NULL, "bus %s: commit of %d event(s) failed: %s", b->service, n,
                     sqlite3_errmsg(db));
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    }
    pthread_mutex_unlock(lock);
settled:
    tb_error_deinit(&err);
    if (!committed)
        for (int i = 0; i < n; i++)
            if (!skip[i] && res[i] == TB_EVENT_ACK) {
                res[i] = TB_EVENT_RETRY;
                snprintf(bes[i].reason, sizeof bes[i].reason, "store commit failed");
            }
    if (committed) {
        pthread_mutex_lock(&b->seen_mu);
        for (int i = 0; i < n; i++)
            if (!skip[i] && res[i] == TB_EVENT_ACK)
                seen_add(b->seen, bes[i].ev.id);
        pthread_mutex_unlock(&b->seen_mu);
    }
    for (int i = 0; i < n; i++) {
        if (copy_of[i] >= 0 && !(committed && res[copy_of[i]] == TB_EVENT_ACK)) {
            res[i] = TB_EVENT_RETRY; /* the first copy failed: this one tries again later */
            memmove(bes[i].reason, bes[copy_of[i]].reason, sizeof bes[i].reason);
        }
        if (skip[i] && res[i] == TB_EVENT_ACK) {
            atomic_fetch_add(&b->duplicates, 1);
            tb_metrics_event_consumed(b->service, bes[i].ev.type, "rabbitmq", "duplicate");
            tb_log_debug(NULL, "event %s already handled by %s; acked again", bes[i].ev.id,
                         b->service);
            settle(b, ms[i], TB_EVENT_ACK, NULL);
        } else {
            finish(b, ms[i], &bes[i], res[i]);
        }
    }
}

/* Redis: at-most-once; a retry is tried again here, at once, up to max_attempts. */
static void light_one(tb_bus *b, bus_worker *w, bus_msg *m, bus_event *be, const bus_sub *s)
{
    tb_event_result r = run_handler(b, w, s, be);
    tb_arena_reset(w->arena);
    for (int a = 2; r == TB_EVENT_RETRY && a <= b->max_attempts; a++) {
        be->ev.attempt = a;
        r = run_handler(b, w, s, be);
        tb_arena_reset(w->arena);
    }
    finish(b, m, be, r == TB_EVENT_ACK ? TB_EVENT_ACK : TB_EVENT_DEAD);
}

static void *worker_main(void *arg)
{
    bus_worker *w = arg;
    tb_bus *b = w->bus;
    bus_msg *ms[BATCH_MAX];
    const bus_sub *subs[BATCH_MAX];
    for (;;) {
        pthread_mutex_lock(&w->mu);
        while (w->head == NULL && !w->stop)
            pthread_cond_wait(&w->cv, &w->mu);
        bus_msg *list = w->head;
        w->head = w->tail = NULL;
        pthread_mutex_unlock(&w->mu);
        if (list == NULL) /* stopping and drained */
            break;
        while (list) {
            int n = 0;
            while (list && n < BATCH_MAX) {
                bus_msg *m = list;
                list = m->next;
                const bus_sub *s = prepare(b, w, m, &w->batch[n]);
                if (s == NULL) {
                    msg_free(m);
                } else if (m->transport == TB_TRANSPORT_REDIS) {
                    light_one(b, w, m, &w->batch[n], s);
                    msg_free(m);
                } else {
                    ms[n] = m;
                    subs[n++] = s;
                }
            }
            if (n > 0)
                durable_batch(b, w, ms, w->batch, subs, n);
            for (int i = 0; i < n; i++) {
                /* only trees this worker read (keyed by header) come back to it to refill */
                if (ms[i]->keyed)
                    worker_keep(w, &ms[i]->root, ms[i]->len);
                msg_free(ms[i]);
            }
        }
    }
    return NULL;
}

static void *lag_main(void *arg)
{
    tb_bus *b = arg;
    lag_poller *l = &b->lag;
    tb_amqp_opts ao = {.url = b->amqp_url, .exchange = b->exchange,
                       .publish_timeout_ms = b->publish_timeout_ms};
    pthread_mutex_lock(&l->mu);
    while (!l->stop) {
        pthread_mutex_unlock(&l->mu);
        for (int i = 0; i < 2; i++) {
            if (!l->queue[i])
                continue;
            long n = tb_amqp_queue_depth(&ao, l->queue[i], NULL);
            if (n >= 0) /* errors are negative TB_E... codes: keep the last value */
                atomic_store(&l->depth[i], n);
        }
        pthread_mutex_lock(&l->mu);
        struct timespec due;
        clock_gettime(CLOCK_REALTIME, &due);
        due.tv_sec += l->poll_ms / 1000;
        due.tv_nsec += (l->poll_ms % 1000) * 1000000L;
        if (due.tv_nsec >= 1000000000L) {
            due.tv_sec++;
            due.tv_nsec -= 1000000000L;
        }
        while (!l->stop && pthread_cond_timedwait(&l->cv, &l->mu, &due) == 0)
            ;
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

static double lag_read(void *user)
{
    long long v = atomic_load((_Atomic long long *)user);
    return v < 0 ? 0 : (double)v;
}

/* Starts the queue-depth poller (TB_EVENTS_LAG_POLL_MS, default 5000; 0: none) and its gauges. */
static void lag_start(tb_bus *b)
{
    lag_poller *l = &b->lag;
    if (l->started)
        return;
    const char *v = getenv("TB_EVENTS_LAG_POLL_MS");
    l->poll_ms = v && *v ? strtol(v, NULL, 10) : 5000;
    if (l->poll_ms <= 0)
        return;
    if (l->poll_ms < 100)
        l->poll_ms = 100;
    l->queue[0] = strdup(b->service);
    l->queue[1] = NULL;
    if (b->dlq && asprintf(&l->queue[1], "%s.dlq", b->service) < 0)
        l->queue[1] = NULL;
    atomic_store(&l->depth[0], -1);
    atomic_store(&l->depth[1], -1);
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->cv, NULL);
    l->stop = false;
    if (!l->queue[0] || pthread_create(&l->th, NULL, lag_main, b) != 0) {
        pthread_cond_destroy(&l->cv);
        pthread_mutex_destroy(&l->mu);
        free(l->queue[0]);
        free(l->queue[1]);
        l->queue[0] = l->queue[1] = NULL;
        return;
    }
    l->started = true;
    for (int i = 0; i < 2; i++)
        if (l->queue[i])
            tb_metrics_consumer_lag_messages_fn(b->service, "rabbitmq", l->queue[i], lag_read,
                                                (void *)&l->depth[i]);
}

static void lag_stop(tb_bus *b)
{
    lag_poller *l = &b->lag;
    if (!l->started)
        return;
    for (int i = 0; i < 2; i++)
        tb_metrics_fn_remove(NULL, (void *)&l->depth[i]);
    pthread_mutex_lock(&l->mu);
    l->stop = true;
    pthread_cond_signal(&l->cv);
    pthread_mutex_unlock(&l->mu);
    pthread_join(l->th, NULL);
    pthread_cond_destroy(&l->cv);
    pthread_mutex_destroy(&l->mu);
    free(l->queue[0]);
    free(l->queue[1]);
    l->queue[0] = l->queue[1] = NULL;
    l->started = false;
}

int tb_bus_start(tb_bus *b, tb_error *err)
{
    if (b == NULL)
        return tb_error_set(err, TB_EINVAL, "bus: NULL");
    if (b->started)
        return tb_error_set(err, TB_ESTATE, "bus: already started");
    size_t n_amqp = 0, n_redis = 0;
    for (size_t i = 0; i < b->n_subs; i++)
        *(b->subs[i].type->transport == TB_TRANSPORT_REDIS ? &n_redis : &n_amqp) += 1;
    if (n_amqp && b->amqp_url == NULL)
        return tb_error_set(err, TB_ESTATE, "bus %s: subscribes to durable events but no "
                                            "RabbitMQ is configured (set TB_AMQP_URL)",
                            b->service);
    if (n_redis && b->redis_url == NULL)
        return tb_error_set(err, TB_ESTATE, "bus %s: subscribes to light events but no Redis "
                                            "is configured (set TB_REDIS_URL)",
                            b->service);
    if (n_amqp && b->store == NULL) {
        int rc = open_own_log(b, err);
        if (rc != 0)
            return rc;
    }
    if (n_amqp && b->store) {
        pthread_mutex_t *lock;
        sqlite3 *db = dedupe_db(b, &lock);
        if (lock)
            pthread_mutex_lock(lock);
        b->seen = seen_new(b->dedupe_keep);
        int rc = b->seen ? tb_dedupe_init(db, err)
                         : tb_error_set(err, TB_ENOMEM, "bus: out of memory");
        if (rc == 0)
            rc = tb_dedupe_recent(db, b->dedupe_consumer, b->dedupe_keep, seen_load_one, b->seen,
                                  err);
        if (rc == 0 && !(b->marker = tb_dedupe_marker_new(db, b->dedupe_consumer, b->dedupe_keep,
                                                          err)))
            rc = err && err->code ? err->code : TB_ENOMEM;
        if (lock)
            pthread_mutex_unlock(lock);
        if (rc != 0)
            return rc;
    }
    b->workers = calloc(b->n_workers, sizeof *b->workers);
    if (b->workers == NULL)
        return tb_error_set(err, TB_ENOMEM, "bus: out of memory");
    for (unsigned i = 0; i < b->n_workers; i++) {
        bus_worker *w = &b->workers[i];
        w->bus = b;
        pthread_mutex_init(&w->mu, NULL);
        pthread_cond_init(&w->cv, NULL);
        w->arena = tb_arena_new(0);
        w->batch = calloc(BATCH_MAX, sizeof *w->batch);
        if (w->arena == NULL || w->batch == NULL ||
            pthread_create(&w->thread, NULL, worker_main, w) != 0) {
            tb_arena_free(w->arena);
            free(w->batch);
            w->arena = NULL;
            b->n_workers = i; /* the ones started are stopped by tb_bus_free */
            return tb_error_set(err, TB_ENOMEM, "bus: cannot start the workers");
        }
    }
    b->started = true;
    if (n_amqp) {
        const char **keys = calloc(n_amqp, sizeof *keys);
        if (keys == NULL)
            return tb_error_set(err, TB_ENOMEM, "bus: out of memory");
        size_t nk = 0;
        for (size_t i = 0; i < b->n_subs; i++) {
            if (b->subs[i].type->transport != TB_TRANSPORT_RABBITMQ)
                continue;
            bool dup = false;
            for (size_t k = 0; k < nk; k++)
                dup = dup || strcmp(keys[k], b->subs[i].type->type) == 0;
            if (!dup)
                keys[nk++] = b->subs[i].type->type;
        }
        tb_amqp_consumer_opts co = {
            .conn = {.url = b->amqp_url, .exchange = b->exchange,
                     .publish_timeout_ms = b->publish_timeout_ms},
            .queue = b->service,
            .bindings = keys,
            .n_bindings = nk,
            .prefetch = b->prefetch,
            .max_attempts = b->max_attempts,
            .retry_base_ms = b->retry_base_ms,
            .retry_max_ms = b->retry_max_ms,
            .dlq = b->dlq,
        };
        tb_amqp_consumer *c = tb_amqp_consumer_new(&co, on_amqp, b, err);
        free(keys);
        if (c == NULL)
            return err && err->code ? err->code : TB_ECONN;
        pthread_mutex_lock(&b->pub_mu);
        b->amqp_sub = c;
        pthread_mutex_unlock(&b->pub_mu);
        ready_note(b, TB_TRANSPORT_RABBITMQ);
        lag_start(b);
    }
    if (n_redis) {
        char **chans = calloc(n_redis, sizeof *chans);
        if (chans == NULL)
            return tb_error_set(err, TB_ENOMEM, "bus: out of memory");
        size_t nc = 0;
        int rc = 0;
        for (size_t i = 0; i < b->n_subs && rc == 0; i++) {
            if (b->subs[i].type->transport != TB_TRANSPORT_REDIS)
                continue;
            char *c;
            if (asprintf(&c, "%s:%s", b->exchange, b->subs[i].type->type) < 0) {
                rc = tb_error_set(err, TB_ENOMEM, "bus: out of memory");
                break;
            }
            bool dup = false;
            for (size_t k = 0; k < nc; k++)
                dup = dup || strcmp(chans[k], c) == 0;
            if (dup)
                free(c);
            else
                chans[nc++] = c;
        }
        if (rc == 0 && b->light_inline) {
            b->light = calloc(1, sizeof *b->light);
            if (b->light) {
                b->light->bus = b;
                b->light->arena = tb_arena_new(0);
                b->light->batch = calloc(1, sizeof *b->light->batch);
            }
            if (!b->light || !b->light->arena || !b->light->batch)
                rc = tb_error_set(err, TB_ENOMEM, "bus: out of memory");
        }
        if (rc == 0) {
            tb_redis_opts ro = {.url = b->redis_url};
            tb_redis_sub *rs =
                tb_redis_sub_new(&ro, (const char *const *)chans, nc, on_redis, b, err);
            if (rs == NULL)
                rc = err && err->code ? err->code : TB_ECONN;
            pthread_mutex_lock(&b->pub_mu);
            b->redis_sub = rs;
            pthread_mutex_unlock(&b->pub_mu);
            if (rs)
                ready_note(b, TB_TRANSPORT_REDIS);
        }
        for (size_t k = 0; k < nc; k++)
            free(chans[k]);
        free(chans);
        if (rc != 0)
            return rc;
    }
    tb_log_info(NULL, "bus %s: consuming %zu durable and %zu light event type(s) with %u "
                      "worker(s), max %d attempts",
                b->service, n_amqp, n_redis, b->n_workers, b->max_attempts);
    return 0;
}

void tb_bus_stats_get(tb_bus *b, tb_bus_stats *out)
{
    memset(out, 0, sizeof *out);
    if (b == NULL)
        return;
    out->published = atomic_load(&b->published);
    out->publish_failed = atomic_load(&b->publish_failed);
    out->handled = atomic_load(&b->handled);
    out->retried = atomic_load(&b->retried);
    out->dead = atomic_load(&b->dead);
    out->invalid = atomic_load(&b->invalid);
    out->duplicates = atomic_load(&b->duplicates);
    out->skipped = atomic_load(&b->skipped);
    out->relayed = atomic_load(&b->relayed);
    out->workers = b->n_workers;
    if (b->redis_sub) {
        tb_redis_sub_stats rs;
        tb_redis_sub_stats_get(b->redis_sub, &rs);
        out->redis_reconnects = rs.reconnects;
        out->redis_last_gap_ms = rs.last_gap_ms;
    }
    if (b->amqp_sub)
        out->amqp_connects = tb_amqp_consumer_connects(b->amqp_sub);
}

void tb_bus_free(tb_bus *b)
{
    if (b == NULL)
        return;
    lag_stop(b);
    /* 0. out of readiness before anything its checks read goes */
    pthread_mutex_lock(&b->ready_mu);
    b->ready_gone = true;
    if (b->ready_on)
        tb_ready_check_remove(b);
    pthread_mutex_unlock(&b->ready_mu);
    /* 1. no new deliveries reach the workers; they finish what they hold (their settles need
     *    the consumer), then the consumer goes (unsettled deliveries return to the broker) */
    atomic_store(&b->stopping, true);
    if (b->workers) {
        for (unsigned i = 0; i < b->n_workers; i++) {
            bus_worker *w = &b->workers[i];
            pthread_mutex_lock(&w->mu);
            w->stop = true;
            pthread_cond_signal(&w->cv);
            pthread_mutex_unlock(&w->mu);
        }
    }
    tb_redis_sub_free(b->redis_sub);
    b->redis_sub = NULL;
    if (b->light) {
        for (int i = 0; i < b->light->n_spares; i++)
            json_decref(b->light->spares[i]);
        tb_arena_free(b->light->arena);
        free(b->light->batch);
        free(b->light);
        b->light = NULL;
    }
    if (b->workers) {
        for (unsigned i = 0; i < b->n_workers; i++) {
            bus_worker *w = &b->workers[i];
            pthread_join(w->thread, NULL);
            for (int k = 0; k < w->n_spares; k++)
                json_decref(w->spares[k]);
            tb_arena_free(w->arena);
            free(w->batch);
            pthread_mutex_destroy(&w->mu);
            pthread_cond_destroy(&w->cv);
        }
        free(b->workers);
        b->workers = NULL;
    }
    tb_amqp_consumer_free(b->amqp_sub);
    b->amqp_sub = NULL;
    /* 2. the relay */
    if (b->relay_running) {
        pthread_mutex_lock(&b->relay_mu);
        b->relay_stop = true;
        pthread_cond_signal(&b->relay_cv);
        pthread_mutex_unlock(&b->relay_mu);
        pthread_join(b->relay_thread, NULL);
    }
    /* 3. the publishers (they flush, bounded) */
    if (b->amqp_pub)
        tb_amqp_pub_flush(b->amqp_pub, b->publish_timeout_ms);
    tb_amqp_pub_free(b->amqp_pub);
    tb_redis_pub_free(b->redis_pub);
    /* 4. the spans of what it sent and handled, as tb_server_stop does: a publisher without a
     *    server has no other flush before it exits (bounded; nothing to wait for when tracing
     *    is off or the queue is empty) */
    tb_trace_flush(2000);
    if (b->marker) { /* its statement belongs to the dedupe db: finalize it under the db's lock */
        pthread_mutex_t *lock;
        dedupe_db(b, &lock);
        pthread_mutex_lock(lock);
        tb_dedupe_marker_free(b->marker);
        pthread_mutex_unlock(lock);
    }
    tb_dlog_close(b->own_log);
    pthread_mutex_destroy(&b->pub_mu);
    pthread_mutex_destroy(&b->ready_mu);
    pthread_mutex_destroy(&b->own_dedupe_mu);
    pthread_mutex_destroy(&b->seen_mu);
    pthread_mutex_destroy(&b->gc_mu);
    pthread_cond_destroy(&b->gc_cv);
    seen_free(b->seen);
    pthread_mutex_destroy(&b->relay_mu);
    pthread_cond_destroy(&b->relay_cv);
    free(b->subs);
    free(b->relay_path);
    free(b->service);
    free(b->producer);
    free(b->amqp_url);
    free(b->redis_url);
    free(b->exchange);
    free(b->dedupe_consumer);
    free(b);
}
