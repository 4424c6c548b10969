/*
 * bench_events_bare_amqp: a bare rabbitmq-c 0.11 publisher and consumer, the RabbitMQ reference
 * of bench/events/run.sh. It does not use libtablium.
 *
 *   bench_events_bare_amqp publish URL QUEUE N WINDOW [BYTES [plain|tablium]]
 *       Declares QUEUE durable, confirm.select, then publishes N persistent messages of BYTES
 *       (default 200) bytes, mandatory, keeping at most WINDOW unconfirmed. basic.ack with
 *       `multiple` confirms every tag up to it; nacks and returns are counted (and make the exit
 *       status 1). Timed from the first publish to the last confirm.
 *       plain (the default): through the default exchange, content-type the only property.
 *       tablium: shaped like a tablium event, so that the broker does the same work as for
 *       one: through a durable topic exchange QUEUE.x to which QUEUE is bound with the
 *       message's routing key, with a message_id unique per message, type, correlation_id and
 *       the headers x-tablium-version, traceparent and x-tablium-key, as libtablium sends them.
 *   bench_events_bare_amqp consume URL QUEUE N PREFETCH
 *       basic.qos(prefetch) then basic.consume with manual acks: each message is acked on its
 *       own (multiple = 0) as soon as it is read, until N were received. Timed from the first
 *       delivery to the N-th ack written.
 *   bench_events_bare_amqp purge URL QUEUE     declares QUEUE durable and purges it
 *   bench_events_bare_amqp delete URL QUEUE    deletes QUEUE (a fresh queue for the next run)
 *   bench_events_bare_amqp depth URL QUEUE     prints the number of ready messages (passive
 *                                              declare; -1 when the queue does not exist)
 *
 * publish and consume end with one line on stdout:
 *   result mode=publish n=N secs=S msgs_per_s=R bytes=B nacked=0 returned=0
 *   result mode=consume n=N secs=S msgs_per_s=R bytes=B redelivered=0
 * Errors go to stderr with exit status 1. Every wait is bounded (BENCH_TIMEOUT_S, default 120 s,
 * for the whole run; 10 s per RPC).
 */
#include <amqp.h>
#include <amqp_framing.h>
#include <amqp_tcp_socket.h>

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#define CHANNEL 1

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double deadline;

static void die(const char *fmt, const char *what)
{
    fprintf(stderr, "bench_events_bare_amqp: ");
    fprintf(stderr, fmt, what);
    fputc('\n', stderr);
    exit(1);
}

/* Dies with a readable reason unless the RPC succeeded. */
static void check_reply(amqp_rpc_reply_t r, const char *what)
{
    char buf[512];
    switch (r.reply_type) {
    case AMQP_RESPONSE_NORMAL: return;
    case AMQP_RESPONSE_NONE: snprintf(buf, sizeof buf, "%s: missing RPC reply", what); break;
    case AMQP_RESPONSE_LIBRARY_EXCEPTION:
        snprintf(buf, sizeof buf, "%s: %s", what, amqp_error_string2(r.library_error));
        break;
    case AMQP_RESPONSE_SERVER_EXCEPTION:
        if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
            const amqp_connection_close_t *m = r.reply.decoded;
            snprintf(buf, sizeof buf, "%s: connection closed by the broker: %u %.*s", what,
                     m->reply_code, (int)m->reply_text.len, (const char *)m->reply_text.bytes);
        } else if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
            const amqp_channel_close_t *m = r.reply.decoded;
            snprintf(buf, sizeof buf, "%s: channel closed by the broker: %u %.*s", what,
                     m->reply_code, (int)m->reply_text.len, (const char *)m->reply_text.bytes);
        } else {
            snprintf(buf, sizeof buf, "%s: unexpected server method 0x%08x", what, r.reply.id);
        }
        break;
    default: snprintf(buf, sizeof buf, "%s: unknown reply type", what);
    }
    die("%s", buf);
}

static amqp_connection_state_t connect_url(const char *url_in)
{
    char *url = strdup(url_in);
    struct amqp_connection_info ci;
    if (url == NULL || amqp_parse_url(url, &ci) != AMQP_STATUS_OK)
        die("bad AMQP URL '%s'", url_in);
    /* "amqp://host:port/" parses as vhost "": RabbitMQ's default vhost is "/" */
    if (ci.vhost == NULL || *ci.vhost == '\0')
        ci.vhost = "/";
    amqp_connection_state_t conn = amqp_new_connection();
    amqp_socket_t *sock = amqp_tcp_socket_new(conn);
    if (sock == NULL)
        die("%s", "cannot create a socket");
    struct timeval tv = {10, 0};
    if (amqp_socket_open_noblock(sock, ci.host, ci.port, &tv) != AMQP_STATUS_OK)
        die("cannot connect to %s", url_in);
    amqp_set_rpc_timeout(conn, &tv);
    /* frame_max 131072 (rabbitmq-c's default), no heartbeats: runs are short. */
    check_reply(amqp_login(conn, ci.vhost, 0, AMQP_DEFAULT_FRAME_SIZE, 0, AMQP_SASL_METHOD_PLAIN,
                           ci.user, ci.password),
                "login");
    amqp_channel_open(conn, CHANNEL);
    check_reply(amqp_get_rpc_reply(conn), "channel.open");
    free(url);
    return conn;
}

static void close_conn(amqp_connection_state_t conn)
{
    amqp_channel_close(conn, CHANNEL, AMQP_REPLY_SUCCESS);
    amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(conn);
}

static void declare_queue(amqp_connection_state_t conn, const char *queue)
{
    amqp_queue_declare(conn, CHANNEL, amqp_cstring_bytes(queue), 0, 1, 0, 0, amqp_empty_table);
    check_reply(amqp_get_rpc_reply(conn), "queue.declare");
}

static long parse_count(const char *s, const char *what, long min)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < min)
        die("bad %s", what);
    return v;
}

/* ---- publish ---- */

typedef struct pub_state {
    uint64_t n, sent;
    uint64_t confirmed; /* acked or nacked */
    uint64_t lowest;    /* every tag below it is settled */
    uint64_t nacked, returned;
    unsigned char *settled; /* by delivery tag, 1..n */
} pub_state;

static void settle_tags(pub_state *s, uint64_t tag, bool multiple, bool nack)
{
    if (tag == 0 || tag > s->sent)
        die("%s", "the broker confirmed a delivery tag that was never published");
    uint64_t from = multiple ? s->lowest : tag;
    for (uint64_t t = from; t <= tag; t++) {
        if (s->settled[t])
            continue;
        s->settled[t] = 1;
        s->confirmed++;
        if (nack)
            s->nacked++;
    }
    while (s->lowest <= s->sent && s->settled[s->lowest])
        s->lowest++;
}

/* Handles one frame that arrived on the publishing connection. */
static void pub_frame(amqp_connection_state_t conn, pub_state *s, const amqp_frame_t *f)
{
    if (f->frame_type != AMQP_FRAME_METHOD)
        return;
    switch (f->payload.method.id) {
    case AMQP_BASIC_ACK_METHOD: {
        const amqp_basic_ack_t *a = f->payload.method.decoded;
        settle_tags(s, a->delivery_tag, a->multiple, false);
        break;
    }
    case AMQP_BASIC_NACK_METHOD: {
        const amqp_basic_nack_t *a = f->payload.method.decoded;
        settle_tags(s, a->delivery_tag, a->multiple, true);
        break;
    }
    case AMQP_BASIC_RETURN_METHOD: {
        /* an unroutable mandatory publish: its content follows, then its basic.ack */
        amqp_message_t msg;
        check_reply(amqp_read_message(conn, f->channel, &msg, 0), "reading a returned message");
        amqp_destroy_message(&msg);
        s->returned++;
        break;
    }
    case AMQP_CHANNEL_CLOSE_METHOD: {
        const amqp_channel_close_t *m = f->payload.method.decoded;
        fprintf(stderr, "bench_events_bare_amqp: channel closed by the broker: %u %.*s\n",
                m->reply_code, (int)m->reply_text.len, (const char *)m->reply_text.bytes);
        exit(1);
    }
    case AMQP_CONNECTION_CLOSE_METHOD: die("%s", "connection closed by the broker"); break;
    default: break;
    }
}

/* Reads the frames that are there (block: wait up to the deadline for at least one). */
static void pub_poll(amqp_connection_state_t conn, pub_state *s, bool block)
{
    for (;;) {
        amqp_frame_t f;
        struct timeval zero = {0, 0}, rest;
        struct timeval *tv = &zero;
        if (block) {
            double left = deadline - now_s();
            if (left <= 0)
                die("%s", "timed out waiting for publisher confirms");
            rest.tv_sec = (time_t)left;
            rest.tv_usec = (suseconds_t)((left - (double)rest.tv_sec) * 1e6);
            tv = &rest;
        }
        int rc = amqp_simple_wait_frame_noblock(conn, &f, tv);
        if (rc == AMQP_STATUS_TIMEOUT) {
            if (block)
                continue; /* the deadline check above ends it */
            return;
        }
        if (rc != AMQP_STATUS_OK)
            die("waiting for confirms: %s", amqp_error_string2(rc));
        pub_frame(conn, s, &f);
        amqp_maybe_release_buffers(conn);
        block = false; /* got one: take the rest that are already buffered, then return */
    }
}

static int run_publish(const char *url, const char *queue, long n, long window, long bytes,
                       bool shaped)
{
    amqp_connection_state_t conn = connect_url(url);
    declare_queue(conn, queue);
    char exchange[300];
    snprintf(exchange, sizeof exchange, "%s.x", queue);
    amqp_bytes_t exch = amqp_empty_bytes;
    amqp_bytes_t rkey = amqp_cstring_bytes(queue);
    if (shaped) {
        exch = amqp_cstring_bytes(exchange);
        rkey = amqp_cstring_bytes("wallet.transaction.created");
        amqp_exchange_declare(conn, CHANNEL, exch, amqp_cstring_bytes("topic"), 0, 1, 0, 0,
                              amqp_empty_table);
        check_reply(amqp_get_rpc_reply(conn), "exchange.declare");
        amqp_queue_bind(conn, CHANNEL, amqp_cstring_bytes(queue), exch, rkey, amqp_empty_table);
        check_reply(amqp_get_rpc_reply(conn), "queue.bind");
    }
    amqp_confirm_select(conn, CHANNEL);
    check_reply(amqp_get_rpc_reply(conn), "confirm.select");

    char *body = malloc((size_t)bytes);
    pub_state s = {.n = (uint64_t)n, .lowest = 1, .settled = calloc((size_t)n + 2, 1)};
    if (body == NULL || s.settled == NULL)
        die("%s", "out of memory");
    /* a JSON-looking body, the same bytes for every message */
    memset(body, 'x', (size_t)bytes);
    if (bytes >= 16) {
        memcpy(body, "{\"payload\":\"", 12);
        memcpy(body + bytes - 2, "\"}", 2);
    }
    amqp_bytes_t payload = {.len = (size_t)bytes, .bytes = body};

    amqp_basic_properties_t props = {0};
    props.delivery_mode = AMQP_DELIVERY_PERSISTENT;
    char message_id[64];
    amqp_table_entry_t headers[3];
    if (shaped) {
        props._flags = AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_MESSAGE_ID_FLAG |
                       AMQP_BASIC_TYPE_FLAG | AMQP_BASIC_CORRELATION_ID_FLAG |
                       AMQP_BASIC_HEADERS_FLAG;
        props.message_id = (amqp_bytes_t){.len = 36, .bytes = message_id};
        props.type = rkey;
        props.correlation_id = amqp_cstring_bytes("bench-correlation-0000000000000001");
        headers[0].key = amqp_cstring_bytes("x-tablium-version");
        headers[0].value.kind = AMQP_FIELD_KIND_UTF8;
        headers[0].value.value.bytes = amqp_cstring_bytes("1.0");
        headers[1].key = amqp_cstring_bytes("traceparent");
        headers[1].value.kind = AMQP_FIELD_KIND_UTF8;
        headers[1].value.value.bytes =
            amqp_cstring_bytes("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
        headers[2].key = amqp_cstring_bytes("x-tablium-key");
        headers[2].value.kind = AMQP_FIELD_KIND_UTF8;
        headers[2].value.value.bytes = amqp_cstring_bytes("0b9d4c8e-1f2a-4e3b-8c7d-6a5f4e3d2c1b");
        props.headers.num_entries = 3;
        props.headers.entries = headers;
    } else {
        props._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG;
        props.content_type = amqp_cstring_bytes("application/json");
    }

    double t0 = now_s();
    while (s.confirmed < s.n) {
        if (s.sent < s.n && s.sent - s.confirmed < (uint64_t)window) {
            if (shaped) /* unique per message, in the form of a UUID */
                snprintf(message_id, sizeof message_id, "6f1c2a9e-4b3d-4c8e-9a7f-%012llx",
                         (unsigned long long)(s.sent & 0xffffffffffffull));
            int rc = amqp_basic_publish(conn, CHANNEL, exch, rkey, 1, 0, &props, payload);
            if (rc != AMQP_STATUS_OK)
                die("basic.publish: %s", amqp_error_string2(rc));
            s.sent++;
            /* take the confirms that have arrived, without waiting */
            pub_poll(conn, &s, false);
        } else {
            /* window full, or everything sent: wait for confirms */
            pub_poll(conn, &s, true);
        }
    }
    double secs = now_s() - t0;
    printf("result mode=publish n=%ld secs=%.3f msgs_per_s=%.0f bytes=%ld nacked=%llu "
           "returned=%llu\n",
           n, secs, (double)n / secs, bytes, (unsigned long long)s.nacked,
           (unsigned long long)s.returned);
    free(body);
    free(s.settled);
    close_conn(conn);
    return s.nacked || s.returned ? 1 : 0;
}

/* ---- consume ---- */

static int run_consume(const char *url, const char *queue, long n, long prefetch)
{
    amqp_connection_state_t conn = connect_url(url);
    declare_queue(conn, queue);
    amqp_basic_qos(conn, CHANNEL, 0, (uint16_t)prefetch, 0);
    check_reply(amqp_get_rpc_reply(conn), "basic.qos");
    amqp_basic_consume(conn, CHANNEL, amqp_cstring_bytes(queue), amqp_empty_bytes, 0, 0, 0,
                       amqp_empty_table);
    check_reply(amqp_get_rpc_reply(conn), "basic.consume");

    long got = 0;
    uint64_t redelivered = 0, total_bytes = 0;
    double t0 = 0;
    while (got < n) {
        double left = deadline - now_s();
        if (left <= 0) {
            fprintf(stderr, "bench_events_bare_amqp: timed out with %ld of %ld messages\n", got, n);
            exit(1);
        }
        struct timeval tv = {(time_t)left, 0};
        if (tv.tv_sec == 0)
            tv.tv_usec = 1000;
        amqp_envelope_t env;
        amqp_maybe_release_buffers(conn);
        amqp_rpc_reply_t r = amqp_consume_message(conn, &env, &tv, 0);
        if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
            r.library_error == AMQP_STATUS_TIMEOUT)
            continue;
        if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
            r.library_error == AMQP_STATUS_UNEXPECTED_STATE) {
            /* a frame that is not a delivery (examples/amqp_consumer.c): read it */
            amqp_frame_t f;
            if (amqp_simple_wait_frame(conn, &f) != AMQP_STATUS_OK)
                die("%s", "connection lost");
            if (f.frame_type == AMQP_FRAME_METHOD &&
                (f.payload.method.id == AMQP_CHANNEL_CLOSE_METHOD ||
                 f.payload.method.id == AMQP_CONNECTION_CLOSE_METHOD))
                die("%s", "the broker closed the channel");
            continue;
        }
        check_reply(r, "consuming");
        if (got == 0)
            t0 = now_s();
        got++;
        total_bytes += env.message.body.len;
        redelivered += env.redelivered ? 1 : 0;
        int rc = amqp_basic_ack(conn, CHANNEL, env.delivery_tag, 0);
        amqp_destroy_envelope(&env);
        if (rc != AMQP_STATUS_OK)
            die("basic.ack: %s", amqp_error_string2(rc));
    }
    double secs = now_s() - t0;
    printf("result mode=consume n=%ld secs=%.3f msgs_per_s=%.0f bytes=%.0f redelivered=%llu\n", n,
           secs, (double)n / secs, (double)total_bytes / (double)n,
           (unsigned long long)redelivered);
    close_conn(conn);
    return 0;
}

/* ---- purge, delete, depth ---- */

static int run_purge(const char *url, const char *queue)
{
    amqp_connection_state_t conn = connect_url(url);
    declare_queue(conn, queue);
    amqp_queue_purge_ok_t *ok = amqp_queue_purge(conn, CHANNEL, amqp_cstring_bytes(queue));
    check_reply(amqp_get_rpc_reply(conn), "queue.purge");
    printf("purged %u\n", ok ? ok->message_count : 0);
    close_conn(conn);
    return 0;
}

/* Deletes the queue with its messages (none when it does not exist): the next run gets a new
 * queue, not one whose store still holds the last run's acked messages. */
static int run_delete(const char *url, const char *queue)
{
    amqp_connection_state_t conn = connect_url(url);
    amqp_queue_delete_ok_t *ok = amqp_queue_delete(conn, CHANNEL, amqp_cstring_bytes(queue), 0, 0);
    check_reply(amqp_get_rpc_reply(conn), "queue.delete");
    printf("deleted %u\n", ok ? ok->message_count : 0);
    close_conn(conn);
    return 0;
}

static int run_depth(const char *url, const char *queue)
{
    amqp_connection_state_t conn = connect_url(url);
    amqp_queue_declare_ok_t *ok =
        amqp_queue_declare(conn, CHANNEL, amqp_cstring_bytes(queue), 1, 0, 0, 0, amqp_empty_table);
    amqp_rpc_reply_t r = amqp_get_rpc_reply(conn);
    if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION && r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
        amqp_channel_close_ok_t cok = {0};
        amqp_send_method(conn, CHANNEL, AMQP_CHANNEL_CLOSE_OK_METHOD, &cok);
        printf("-1\n"); /* 404: no such queue */
        amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
        amqp_destroy_connection(conn);
        return 0;
    }
    check_reply(r, "queue.declare (passive)");
    printf("%u\n", ok->message_count);
    close_conn(conn);
    return 0;
}

_Noreturn static void usage(void)
{
    fprintf(stderr, "usage: bench_events_bare_amqp publish URL QUEUE N WINDOW [BYTES [plain|tablium]]\n"
                    "       bench_events_bare_amqp consume URL QUEUE N PREFETCH\n"
                    "       bench_events_bare_amqp purge|delete|depth URL QUEUE\n");
    exit(2);
}

int main(int argc, char **argv)
{
    if (argc < 4)
        usage();
    const char *mode = argv[1], *url = argv[2], *queue = argv[3];
    const char *t = getenv("BENCH_TIMEOUT_S");
    deadline = now_s() + (t && *t ? (double)parse_count(t, "BENCH_TIMEOUT_S", 1) : 120.0);
    if (strcmp(mode, "publish") == 0 && argc >= 6 && argc <= 8) {
        long n = parse_count(argv[4], "N", 1), w = parse_count(argv[5], "WINDOW", 1);
        long bytes = argc >= 7 ? parse_count(argv[6], "BYTES", 1) : 200;
        bool shaped = false;
        if (argc == 8) {
            if (strcmp(argv[7], "tablium") == 0)
                shaped = true;
            else if (strcmp(argv[7], "plain") != 0)
                usage();
        }
        return run_publish(url, queue, n, w, bytes, shaped);
    }
    if (strcmp(mode, "consume") == 0 && argc == 6) {
        long n = parse_count(argv[4], "N", 1), p = parse_count(argv[5], "PREFETCH", 1);
        if (p > 65535)
            die("%s", "PREFETCH must be at most 65535");
        return run_consume(url, queue, n, p);
    }
    if (strcmp(mode, "purge") == 0 && argc == 4)
        return run_purge(url, queue);
    if (strcmp(mode, "delete") == 0 && argc == 4)
        return run_delete(url, queue);
    if (strcmp(mode, "depth") == 0 && argc == 4)
        return run_depth(url, queue);
    usage();
    return 2;
}
