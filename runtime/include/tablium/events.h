/*
 * tablium: the event bus. One API, two transports:
 *
 *   - Redis Pub/Sub for light events: at-most-once, as Redis gives it; subscribers reconnect and
 *     resubscribe by themselves after a Redis restart and log how long they were gone.
 *   - RabbitMQ for durable events: a topic exchange (routing key = event type), one durable
 *     queue per consuming service, persistent messages, publisher confirms, manual acks,
 *     prefetch, delayed retries with a bounded number of attempts, then the service's
 *     dead-letter queue (<service>.dlq) with the reason and the attempt count in headers.
 *
 * Which transport an event type travels on is declared with its schema
 * (x-tablium-event.transport) and compiled into its tb_event_type; code never chooses. The
 * generator writes, for each event schema, typed functions over this API:
 *
 *   user_registered_v1_publish(bus, ctx, &data, &err)        validate, envelope, send, confirmed
 *   user_registered_v1_publish_async(bus, ctx, &data, cb, u, &err)
 *   user_registered_v1_outbox(db, ctx, &data, &err)          in the caller's SQLite transaction
 *   user_registered_v1_subscribe(bus, handler, user, &err)   handler gets the validated data
 *
 * Every event travels in the standard envelope (id, type, version, timestamp, producer, data,
 * metadata.correlationId/traceId/traceparent). A consumer reads the versions it subscribes to;
 * other versions of the same type are acked and counted as skipped; a type it does not read at
 * all (sent under another type's routing key) is invalid, so dead-lettered.
 *
 * Consuming: a delivery is parsed and its envelope and data validated before any handler runs;
 * one that fails (a foreign producer, garbage bytes) goes straight to the DLQ with the errors
 * (dropped with a log line on Redis). Durable events with the same key (declared with the type:
 * a wallet id, a game id) are handled in publish order by one worker, different keys in
 * parallel; light events in the order Redis delivers them (see light_parallel). A
 * handler answers TB_EVENT_ACK, TB_EVENT_RETRY or TB_EVENT_DEAD; a negative TB_E code counts as
 * a retry. The attempt count is kept by the framework (header x-tablium-attempt) and
 * max_attempts holds with or without a DLQ. Durable consumers are idempotent: the ids of handled
 * events are recorded (bounded, in SQLite) and a redelivered event is acked without running the
 * handler again; with opts.store the record is written in the same transaction as the
 * handler's own writes.
 *
 * Configuration (tb_bus_opts, defaults from the environment):
 *   TB_AMQP_URL    amqp://guest:guest@127.0.0.1:5672/   RabbitMQ; unset: no durable events
 *   TB_REDIS_URL   redis://127.0.0.1:6379               Redis; unset: no light events
 */
#ifndef TABLIUM_EVENTS_H
#define TABLIUM_EVENTS_H
#include "tablium/buf.h"
#include "tablium/ctx.h"
#include "tablium/error.h"
#include <jansson.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>

typedef enum tb_event_transport {
    TB_TRANSPORT_RABBITMQ = 0,
    TB_TRANSPORT_REDIS = 1,
} tb_event_transport;

/** One event type and version, as declared by its schema. The generator emits one constant per
 *  schema (user_registered_v1_event). */
typedef struct tb_event_type {
    const char *type;     /* "user.registered" */
    const char *version;  /* "1.0" */
    tb_event_transport transport;
    const char *key;      /* property of data that orders events ("userId"), NULL for none */
    const char *producer; /* the declared producer ("auth-service"), NULL when any */
    const char *schema;   /* the schema file, for messages */
    /** Validates data (JSON pointers relative to data). */
    int (*validate)(const json_t *data, unsigned flags, tb_error *err);
    /** Validates a whole envelope. */
    int (*validate_envelope)(const json_t *envelope, unsigned flags, tb_error *err);
    /* Generated typed events (tb_event_publish & co.; NULL/0 for hand-made types): */
    const struct tb_codec_type *data_type; /* the data's C struct (tablium/codec.h) */
    /** Its struct check: true only when the struct's JSON is valid for the schema (the
     *  publishers then write it straight from the struct); NULL: always the JSON path. */
    bool (*fast_valid)(const void *data);
    int key_kind;   /* the key member's tb_codec_kind (TB_CK_STRING, TB_CK_INTEGER), 0: none */
    size_t key_off; /* offsetof the key member in the data struct */
} tb_event_type;

/** What a handler answers. A negative TB_E code counts as TB_EVENT_RETRY. */
typedef enum tb_event_result {
    TB_EVENT_ACK = 0,   /* handled (or deliberately ignored): done */
    TB_EVENT_RETRY = 1, /* try again later (delayed, up to max_attempts, then dead-lettered) */
    TB_EVENT_DEAD = 2,  /* never going to work: to the DLQ now */
} tb_event_result;

/** A delivered event: the envelope's fields, borrowed for the duration of the handler. */
typedef struct tb_event {
    const char *id;
    const char *type;
    const char *version;
    const char *timestamp;
    const char *producer;
    const char *correlation_id;
    const char *trace_id;    /* NULL when absent */
    const char *traceparent; /* NULL when absent */
    const char *causation_id; /* NULL when absent */
    const char *key;         /* value of the type's key property, NULL when none */
    const json_t *data;      /* validated against the schema of type and version */
    const json_t *envelope;
    int attempt;             /* 1 on the first delivery */
    int max_attempts;
    bool redelivered;        /* the broker delivered it before (a consumer died holding it) */
} tb_event;

/** Sets the reason recorded with a retry or dead-letter (x-tablium-reason) of the event being
 *  handled; printf-style. Call from the handler before returning RETRY or DEAD. */
void tb_event_set_reason(const tb_event *ev, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/** A generic handler. ctx: request_id = the event's correlation id, a per-event arena, the
 *  traceparent of the producer, and opts.state/opts.deps. */
typedef int (*tb_event_handler)(tb_ctx *ctx, const tb_event *ev, void *user);
/** The generated typed trampolines: decode data into the type's C struct and call `fn`. */
typedef int (*tb_event_invoke)(tb_ctx *ctx, const tb_event *ev, void (*fn)(void), void *user);

typedef struct tb_bus tb_bus;

typedef struct tb_bus_opts {
    /** The service name ("user"): its RabbitMQ queue (<service>, <service>.retry.N,
     *  <service>.dlq), its dedupe records and its logs. Required. */
    const char *service;
    /** Envelope producer of what this bus publishes; NULL means "<service>-service". */
    const char *producer;
    /** NULL: $TB_AMQP_URL; "" disables RabbitMQ. */
    const char *amqp_url;
    /** NULL: $TB_REDIS_URL; "" disables Redis. */
    const char *redis_url;
    /** RabbitMQ exchange; NULL means "tablium.events". Redis channels are "<exchange>:<type>". */
    const char *exchange;
    /** Unconfirmed publishes in flight (0: 1000) and the prefetch of the consumer (0: 1000). */
    unsigned window, prefetch;
    /** Handler threads; events are spread over them by key (0: $TB_EVENTS_WORKERS, else the
     *  number of CPUs less one, at least 1: one CPU is left to the consumer's I/O thread).
     *  Handlers that block (a call to another service, a slow disk) want more. */
    unsigned workers;
    /** Deliveries of one event at most (0: $TB_EVENTS_MAX_ATTEMPTS, else 5). */
    int max_attempts;
    /** Retry delay before attempt 2, doubled per attempt up to retry_max_ms (0:
     *  $TB_EVENTS_RETRY_MS, else 1000; and 60000). */
    int retry_base_ms, retry_max_ms;
    /** Bound on one publish (window room, confirm, broker outage); 0 means 30000. */
    int publish_timeout_ms;
    /** Light (Redis) events are handled on the subscriber's thread, in the order Redis delivers
     *  them (one ordered stream): no hand-off, twice the throughput. Set light_parallel (or
     *  TB_EVENTS_LIGHT_PARALLEL=1) to spread them over the workers by key like durable events,
     *  for handlers that block. */
    bool light_parallel;
    /** Dead-letter queue on (the default); set no_dlq to drop after max_attempts instead. */
    bool no_dlq;
    /**
     * The service's database for the dedupe record of durable consumers. With it, a worker
     * handles what it has queued in one transaction on it (BEGIN IMMEDIATE ... COMMIT, under
     * store_lock; NULL: a lock of the bus, when nothing else uses the connection): for each
     * event a SAVEPOINT holds the handler's writes and the record of its id, or nothing when it
     * does not ack; acks go out after the COMMIT. A handler that writes through the same
     * connection thus changes state exactly once per event. Handlers must not BEGIN themselves
     * (SAVEPOINT is fine), and the bus must be freed before the connection is closed. NULL: the
     * bus keeps the record in its own append-only log, tb_store_path("<service>-events") with
     * .dedupe for .db: handlers run first, then the ids of every worker's finished batch go out
     * in one write, then the acks. A record survives the process being killed; an operating
     * system crash may lose the last ones, as with SQLite's synchronous=NORMAL. Ids that an
     * earlier version kept in the SQLite file of that name are carried over once.
     */
    sqlite3 *store;
    pthread_mutex_t *store_lock;
    /** Dedupe records kept per service (0: 100000). */
    size_t dedupe_keep;
    /** Given to handlers as ctx->state and ctx->deps. */
    void *state, *deps;
} tb_bus_opts;

/** Makes a bus (publishers connect in the background). NULL on bad options (err says why). */
tb_bus *tb_bus_new(const tb_bus_opts *opts, tb_error *err);
/** Registers a handler for one event type and version; before tb_bus_start. */
int tb_bus_subscribe(tb_bus *bus, const tb_event_type *t, tb_event_handler h, void *user,
                     tb_error *err);
/** Same, through a generated typed trampoline (what user_registered_v1_subscribe calls). */
int tb_bus_subscribe_typed(tb_bus *bus, const tb_event_type *t, tb_event_invoke invoke,
                           void (*fn)(void), void *user, tb_error *err);
/** Starts consuming: declares the service's queues and bindings, subscribes the Redis channels,
 *  starts the workers. TB_ESTATE when a subscribed transport has no URL; TB_ECONN when the
 *  broker cannot be reached in time. */
int tb_bus_start(tb_bus *bus, tb_error *err);

/** Done callback of an asynchronous publish: rc 0 when the broker confirmed it (RabbitMQ) or
 *  Redis took it; else TB_ETIMEDOUT, TB_EIO, TB_ENOTFOUND (no queue bound), TB_ECONN, TB_ESTATE.
 *  Runs on a bus thread; keep it short. */
typedef void (*tb_publish_fn)(void *user, int rc);
/**
 * Validates `data` against the type's schema (a violation is TB_EVALIDATION with every error,
 * paths relative to data, and nothing is sent), wraps it in the envelope (a new id, now, the
 * producer, correlationId = ctx->request_id or a new id, traceId/traceparent continuing
 * ctx->traceparent or starting a trace) and publishes it. Returns once RabbitMQ confirmed it
 * (waiting at most publish_timeout_ms, across a broker restart) or Redis took it. `data` is
 * borrowed. `id_out` (may be NULL) receives the event id (37 bytes).
 */
int tb_bus_publish_json(tb_bus *bus, const tb_ctx *ctx, const tb_event_type *t, json_t *data,
                        char *id_out, tb_error *err);
/** Same without waiting: returns once queued (0) or failed; `done` (may be NULL) reports the
 *  outcome. Many publishes then share the confirm window. */
int tb_bus_publish_json_async(tb_bus *bus, const tb_ctx *ctx, const tb_event_type *t,
                              json_t *data, tb_publish_fn done, void *user, tb_error *err);
/** For the generated typed publishers only: `data` is a struct its generated check found valid
 *  for t's schema (nothing validates it here); `write` appends it as JSON to the envelope; `key`
 *  is the value of t's key member (NULL when t has none). Otherwise as tb_bus_publish_json. */
typedef void (*tb_event_write_fn)(const void *data, tb_buf *b);
int tb_bus_publish_checked(tb_bus *bus, const tb_ctx *ctx, const tb_event_type *t,
                           tb_event_write_fn write, const void *data, const char *key,
                           char *id_out, tb_error *err);
int tb_bus_publish_checked_async(tb_bus *bus, const tb_ctx *ctx, const tb_event_type *t,
                                 tb_event_write_fn write, const void *data, const char *key,
                                 tb_publish_fn done, void *user, tb_error *err);
/* ---- generated typed events (what E_publish, E_subscribe, ... call) ---- */

/** Publishes the C struct `data` of generated event type t: written straight from the struct
 *  when t's struct check passes, else validated as JSON (errors with JSON paths). As
 *  tb_bus_publish_json otherwise. */
int tb_event_publish(tb_bus *bus, const tb_ctx *ctx, const tb_event_type *t, const void *data,
                     tb_error *err);
/** Same without waiting, as tb_bus_publish_json_async. */
int tb_event_publish_async(tb_bus *bus, const tb_ctx *ctx, const tb_event_type *t,
                           const void *data, tb_publish_fn done, void *user, tb_error *err);
/** Decodes a delivered event's data (validated by the bus) into out: 0, or the handler's answer
 *  when it cannot (TB_EVENT_RETRY out of memory, else TB_EVENT_DEAD, with the reason set). */
int tb_event_decode(tb_ctx *ctx, const tb_event *ev, const tb_event_type *t, void *out);

/** Defines E_publish, E_publish_async and E_subscribe of generated event type E (declared by
 *  the generated header) over E_event. */
#define TB_EVENT_DEFINE(E)                                                                     \
    int E##_publish(tb_bus *bus, const tb_ctx *ctx, const E *data, tb_error *err)              \
    {                                                                                          \
        return tb_event_publish(bus, ctx, &E##_event, data, err);                              \
    }                                                                                          \
    int E##_publish_async(tb_bus *bus, const tb_ctx *ctx, const E *data, tb_publish_fn done,   \
                          void *user, tb_error *err)                                           \
    {                                                                                          \
        return tb_event_publish_async(bus, ctx, &E##_event, data, done, user, err);            \
    }                                                                                          \
    static int E##__invoke(tb_ctx *ctx, const tb_event *ev, void (*fn)(void), void *user)      \
    {                                                                                          \
        E data;                                                                                \
        int rc = tb_event_decode(ctx, ev, &E##_event, &data);                                  \
        if (rc)                                                                                \
            return rc;                                                                         \
        return ((E##_handler)fn)(ctx, ev, &data, user);                                        \
    }                                                                                          \
    int E##_subscribe(tb_bus *bus, E##_handler handler, void *user, tb_error *err)             \
    {                                                                                          \
        return tb_bus_subscribe_typed(bus, &E##_event, E##__invoke, (void (*)(void))handler,   \
                                      user, err);                                              \
    }

/** Waits until every publish so far is confirmed or failed; 0 or TB_ETIMEDOUT. */
int tb_bus_flush(tb_bus *bus, int timeout_ms);

/* ---- transactional outbox (durable events only) ---- */
/**
 * Validates and wraps the event like tb_bus_publish_json, then writes it into the outbox table
 * of `db` inside the caller's open transaction: the event exists if and only if the
 * transaction commits. The table is made once with tb_outbox_init (tablium/evstore.h), e.g. in
 * the service's init. The bus that relays that database publishes it after the commit.
 * `producer` NULL: the type's declared producer, else "<ctx->service>-service".
 */
int tb_outbox_add_json(sqlite3 *db, const tb_ctx *ctx, const tb_event_type *t, json_t *data,
                       const char *producer, char *id_out, tb_error *err);
/** The outbox of generated durable event type t: its C struct `data` as tb_outbox_add_json. */
int tb_event_outbox(sqlite3 *db, const tb_ctx *ctx, const tb_event_type *t, const void *data,
                    tb_error *err);

/** Defines E_outbox of generated durable event type E over E_event. */
#define TB_EVENT_OUTBOX_DEFINE(E)                                                              \
    int E##_outbox(sqlite3 *db, const tb_ctx *ctx, const E *data, tb_error *err)               \
    {                                                                                          \
        return tb_event_outbox(db, ctx, &E##_event, data, err);                                \
    }

/** Starts relaying the outbox of the database file `path` (NULL: the service's own,
 *  tb_store_path(opts.service)) on its own connection: rows are published in order, deleted
 *  once confirmed, kept and retried when not. Rows left by a crash are relayed at once. */
int tb_bus_relay_outbox(tb_bus *bus, const char *path, tb_error *err);
/** Wakes the relay after a commit that added events (else it polls every 500 ms). */
void tb_bus_outbox_kick(tb_bus *bus);

typedef struct tb_bus_stats {
    uint64_t published;       /* confirmed / taken */
    uint64_t publish_failed;
    uint64_t handled;         /* handlers that answered ACK */
    uint64_t retried;
    uint64_t dead;            /* sent to the DLQ (dropped on Redis or without one) */
    uint64_t invalid;         /* malformed or schema-failing deliveries */
    uint64_t duplicates;      /* redeliveries acked without the handler */
    uint64_t skipped;         /* versions nobody here reads */
    uint64_t relayed;         /* outbox rows confirmed */
    unsigned redis_reconnects;
    int64_t redis_last_gap_ms;
    unsigned amqp_connects;   /* consumer connections so far */
    unsigned workers;         /* handler threads (opts.workers or its default) */
} tb_bus_stats;
void tb_bus_stats_get(tb_bus *bus, tb_bus_stats *out);

/**
 * Readiness of the bus's broker connections: 0 when every connection it holds is established
 * (the RabbitMQ consumer and publisher, the Redis subscriber and publisher, each when it has
 * one), else TB_ECONN with why ("rabbitmq: publisher disconnected for 3.2 s: connect to
 * 127.0.0.1:5672: a socket error occurred; redis: ..."). TB_EINVAL for NULL. Reads states the
 * transports keep (no I/O): any thread, at once.
 *
 * The bus also registers this, per transport, as the process-wide readiness checks "rabbitmq"
 * and "redis" (tb_ready_check_add, tablium/http.h) from the moment it holds a connection on
 * the transport (tb_bus_start for a consumer; the first publish or tb_bus_relay_outbox for a
 * publisher), so /health/ready of the process's servers answers 503 while one is down.
 * tb_bus_free removes them first.
 */
int tb_bus_ready(tb_bus *bus, char *why, size_t cap);

/** Stops consuming (unacked deliveries go back to the broker), finishes running handlers,
 *  flushes publishes (bounded), stops the relay, flushes the spans queued for export
 *  (tb_trace_flush, 2 s at most) and frees. NULL-safe. */
void tb_bus_free(tb_bus *bus);

/** Parses a W3C traceparent; 1 when valid (then trace_id[33] and span_id[17] are filled). */
int tb_traceparent_parse(const char *tp, char trace_id[33], char span_id[17]);
#endif
