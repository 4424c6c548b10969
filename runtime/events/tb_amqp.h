/*
 * tablium internal: the RabbitMQ transport (rabbitmq-c 0.11). Used by the event bus
 * (runtime/events/bus.c) and the DLQ tool; not a public header.
 *
 * Topology (all durable, declared idempotently on every (re)connect):
 *   exchange  <exchange>            topic; routing key = event type ("user.registered")
 *   queue     <queue>               one per consuming service, bound to each routing key it reads
 *   queue     <queue>.retry.<n>     n = 1 .. max_attempts-1; x-dead-letter-exchange "" and
 *                                   x-dead-letter-routing-key <queue>, no consumer: a copy parked
 *                                   there with its delay as per-message expiration (the retry
 *                                   delay of attempt n+1) goes back to <queue>, and only to it;
 *                                   no queue-level TTL, so changing the delays never conflicts
 *   queue     <queue>.dlq           the service's dead letters (when dlq is on)
 *
 * The attempt count has one owner: the header x-tablium-attempt (integer, 1 on first delivery),
 * set by the transport when it parks a message for retry. Messages are persistent
 * (delivery_mode 2) and every publish, including the retry and dead-letter republishes, is
 * confirmed by the broker before anything depends on it (a delivery is acked only after its
 * retry/DLQ copy was confirmed).
 *
 * Threads: rabbitmq-c is not thread-safe, so each publisher and each consumer owns one
 * connection and one I/O thread; every function below is safe to call from any thread.
 */
#ifndef TABLIUM_EVENTS_TB_AMQP_H
#define TABLIUM_EVENTS_TB_AMQP_H
#include "tablium/error.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct tb_amqp_opts {
    /** amqp://user:pass@host:port/vhost (rabbitmq-c's amqp_parse_url; an empty vhost, as in
     *  "amqp://host:5672/", means "/"). Required. */
    const char *url;
    /** Topic exchange of the events; NULL means "tablium.events". */
    const char *exchange;
    /** Publisher: most unconfirmed publishes in flight; 0 means 1000. */
    unsigned window;
    /** Publisher: how long one publish may wait, for window room and for its confirm, including
     *  a broker outage (it is re-sent after a reconnect); 0 means 30000. */
    int publish_timeout_ms;
    /** Reconnect backoff, doubling from min to max (0 means 100 and 5000). */
    int reconnect_min_ms, reconnect_max_ms;
    /** AMQP heartbeat in seconds; 0 means 30. */
    int heartbeat_s;
} tb_amqp_opts;

/** What a publish carries besides the body. Strings are copied by tb_amqp_publish. NULL ones
 *  are left out. */
typedef struct tb_amqp_props {
    const char *message_id;     /* the event id (basic.properties message_id) */
    const char *type;           /* the event type (basic.properties type) */
    const char *version;        /* header x-tablium-version */
    const char *correlation_id; /* basic.properties correlation_id */
    const char *traceparent;    /* header traceparent (W3C) */
    const char *key;            /* header x-tablium-key: the event's ordering key */
    int attempt;                /* header x-tablium-attempt when > 0 */
} tb_amqp_props;

/* ---- publisher ---- */
typedef struct tb_amqp_pub tb_amqp_pub;
/** Called once per publish from the publisher's I/O thread: rc 0 when the broker confirmed it
 *  (basic.ack), TB_EIO when it nacked it, TB_ENOTFOUND when it was unroutable (mandatory: no
 *  queue bound to the routing key) or its exchange does not exist, TB_ETIMEDOUT when
 *  publish_timeout_ms passed first, TB_ESTATE when the publisher was freed first. Runs on the
 *  publisher's I/O thread: must not block for long, and must not call tb_amqp_publish when the
 *  window may be full (that returns TB_ESTATE instead of deadlocking). */
typedef void (*tb_amqp_confirm_fn)(void *user, int rc);
/** Starts the I/O thread, which connects (and reconnects with backoff) in the background: a
 *  broker that is down at start is not an error, publishes wait for it (bounded). NULL only on
 *  bad options (err says why). */
tb_amqp_pub *tb_amqp_pub_new(const tb_amqp_opts *o, tb_error *err);
/**
 * Queues one persistent publish to `exchange` (NULL: the opts' exchange; "" is the default
 * exchange, routing straight to the queue named routing_key) with confirms. Copies everything.
 * Blocks while `window` publishes are unconfirmed (at most publish_timeout_ms, then
 * TB_ETIMEDOUT). Returns 0 when queued: `cb` (may be NULL) later reports the outcome exactly
 * once. Publishes unconfirmed when the connection drops are re-sent, in order, after the
 * reconnect (consumers deduplicate by message id). Mandatory flag set: an unroutable message is
 * reported as TB_ENOTFOUND to cb.
 */
int tb_amqp_publish(tb_amqp_pub *p, const char *exchange, const char *routing_key,
                    const tb_amqp_props *props, const void *body, size_t len,
                    tb_amqp_confirm_fn cb, void *user);
/** Waits until no publish is in flight or queued (every cb has run); 0, or TB_ETIMEDOUT. */
int tb_amqp_pub_flush(tb_amqp_pub *p, int timeout_ms);
/** Stops the thread; publishes still unconfirmed get cb(TB_ESTATE) (flush first to avoid
 *  that). No tb_amqp_publish may be running or start on p once this is called. NULL-safe. */
void tb_amqp_pub_free(tb_amqp_pub *p);
/** Connection count so far (1 after the first connect; grows with each reconnect). */
unsigned tb_amqp_pub_connects(const tb_amqp_pub *p);
/** true when the publisher's connection is established and not blocked by the broker (NULL:
 *  true); else false with why ("publisher disconnected for 3.2 s: connect to host:5672: a socket
 *  error occurred", "publisher connecting for 0.1 s", "publisher blocked by the broker (resource
 *  alarm) for 2.0 s"). Any thread; reads a state kept by the I/O thread (no I/O, no wait). */
bool tb_amqp_pub_up(tb_amqp_pub *p, char *why, size_t cap);

/* ---- consumer ---- */
typedef struct tb_amqp_consumer tb_amqp_consumer;
/** One delivery. Owned by the transport until settled: the bus must call tb_amqp_settle on
 *  each exactly once (from any thread); the memory stays valid until then. */
typedef struct tb_amqp_delivery {
    const char *routing_key;
    const void *body;           /* followed by a NUL byte (not counted in len) */
    size_t len;
    const char *message_id;     /* NULL when absent */
    const char *type;           /* NULL when absent */
    const char *version;        /* header x-tablium-version; NULL when absent */
    const char *correlation_id; /* NULL when absent */
    const char *traceparent;    /* NULL when absent */
    const char *key;            /* x-tablium-key (the ordering key); NULL when absent */
    int attempt;                /* x-tablium-attempt, 1 when absent */
    bool redelivered;           /* the broker's redelivered flag */
} tb_amqp_delivery;
/** Called on the consumer's I/O thread for each delivery, in queue order. Must not block long
 *  (hand the work to another thread and settle later). It may call tb_amqp_settle itself, but
 *  never tb_amqp_consumer_free. routing_key is the original one the event was published with,
 *  also after retries and DLQ replays (kept in header x-tablium-routing-key). */
typedef void (*tb_amqp_deliver_fn)(void *user, tb_amqp_delivery *d);

typedef struct tb_amqp_consumer_opts {
    tb_amqp_opts conn;
    /** The service's queue name, e.g. "user". Required. */
    const char *queue;
    /** Routing keys bound to the exchange (event types the service reads). */
    const char *const *bindings;
    size_t n_bindings;
    /** basic.qos prefetch count (per consumer); 0 means 1000. */
    unsigned prefetch;
    /** Deliveries per message at most (first one included); 0 means 5. */
    int max_attempts;
    /** Delay before attempt 2, doubled for each later attempt up to retry_max_ms (0: 1000 and
     *  60000). */
    int retry_base_ms, retry_max_ms;
    /** Declare and use <queue>.dlq; without it a message that exhausts its attempts (or is
     *  settled DEAD) is acked and logged as dropped. */
    bool dlq;
} tb_amqp_consumer_opts;

typedef enum tb_amqp_action {
    TB_AMQP_ACK = 0,   /* done: basic.ack */
    TB_AMQP_RETRY = 1, /* park in <queue>.retry.<attempt> with attempt+1, then ack; when attempt
                          >= max_attempts this becomes DEAD with the reason kept */
    TB_AMQP_DEAD = 2,  /* copy to <queue>.dlq with headers x-tablium-reason, x-tablium-attempt,
                          x-tablium-dead-at (RFC 3339), x-tablium-routing-key (the original) and
                          x-tablium-queue, then ack */
} tb_amqp_action;

/** Declares the topology (waiting, with backoff, for the broker up to publish_timeout_ms) and
 *  starts consuming on its own thread. NULL on bad options or when the broker could not be
 *  reached in time (err says why). Reconnects and re-declares by itself after that. */
tb_amqp_consumer *tb_amqp_consumer_new(const tb_amqp_consumer_opts *o, tb_amqp_deliver_fn fn,
                                       void *user, tb_error *err);
/** Settles a delivery (thread-safe; the I/O thread does the work). `reason` (may be NULL) goes
 *  into x-tablium-reason. A delivery from before a reconnect is only freed: the broker
 *  redelivers it. The delivery knows its consumer, so `c` may be NULL (e.g. when the deliver
 *  callback runs before tb_amqp_consumer_new has returned the pointer). */
void tb_amqp_settle(tb_amqp_consumer *c, tb_amqp_delivery *d, tb_amqp_action action,
                    const char *reason);
/** Cancels the consumer, waits (bounded) for the settles in progress, closes. Unsettled
 *  deliveries go back to the queue (the broker redelivers them) and are freed: they must not be
 *  used or settled after this returns. NULL-safe; not from the deliver callback. */
void tb_amqp_consumer_free(tb_amqp_consumer *c);
unsigned tb_amqp_consumer_connects(const tb_amqp_consumer *c);
/** As tb_amqp_pub_up, for the consumer's connection ("consumer disconnected for ..."). */
bool tb_amqp_consumer_up(tb_amqp_consumer *c, char *why, size_t cap);

/** Declares the consumer's topology (exchange, queue, bindings, retry queues, DLQ) once,
 *  without consuming, e.g. so that publishes that precede the first consumer are routable.
 *  0 or a negative TB_E code (TB_ESTATE when a queue exists with other arguments). */
int tb_amqp_declare(const tb_amqp_consumer_opts *o, tb_error *err);

/* ---- dead letters (the tablium-dlq tool and tests) ---- */
typedef struct tb_amqp_dead {
    uint64_t index;          /* 1-based position in the DLQ at listing time */
    const tb_amqp_delivery *msg;
    const char *reason;      /* x-tablium-reason (NULL when absent) */
    const char *dead_at;     /* x-tablium-dead-at (NULL when absent) */
    const char *routing_key; /* x-tablium-routing-key */
} tb_amqp_dead;
/** Lists <queue>.dlq without consuming it (basic.get then requeue): cb once per message, in
 *  order. Returns the number listed, or a negative TB_E code. */
long tb_amqp_dlq_list(const tb_amqp_opts *o, const char *queue,
                      void (*cb)(void *user, const tb_amqp_dead *d), void *user, tb_error *err);
/** Moves the DLQ messages for which `pick` returns true (NULL picks all) back to <queue> (through
 *  the default exchange, so only that service sees them again) with attempt 1, confirmed before
 *  each is removed from the DLQ; the others stay. Returns how many were replayed, or a negative
 *  TB_E code. */
long tb_amqp_dlq_replay(const tb_amqp_opts *o, const char *queue,
                        bool (*pick)(void *user, const tb_amqp_dead *d), void *user,
                        tb_error *err);
/** The number of messages ready in a queue (queue.declare passive); negative TB_E code on error. */
long tb_amqp_queue_depth(const tb_amqp_opts *o, const char *queue, tb_error *err);
/** Deletes the queue and its retry queues and DLQ (tests). */
int tb_amqp_queue_purge_all(const tb_amqp_opts *o, const char *queue, int max_attempts, tb_error *err);
#endif
