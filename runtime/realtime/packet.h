/*
 * Engine.IO v4 and Socket.IO v5 packet codecs: pure functions over bytes, no I/O (the fuzz
 * target tests/fuzz/fuzz_sio.c drives them alone).
 */
#ifndef TB_RT_PACKET_H
#define TB_RT_PACKET_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tablium/buf.h"

/* Engine.IO packet types */
enum {
    TB_EIO_OPEN = 0,
    TB_EIO_CLOSE,
    TB_EIO_PING,
    TB_EIO_PONG,
    TB_EIO_MESSAGE,
    TB_EIO_UPGRADE,
    TB_EIO_NOOP
};

/* Socket.IO packet types */
enum {
    TB_SIO_CONNECT = 0,
    TB_SIO_DISCONNECT,
    TB_SIO_EVENT,
    TB_SIO_ACK,
    TB_SIO_CONNECT_ERROR,
    TB_SIO_BINARY_EVENT,
    TB_SIO_BINARY_ACK
};

/** At most this many attachments in one packet (socket.io-parser's default). */
#define TB_SIO_MAX_ATTACHMENTS 10

/** One packet of a polling payload: text (data without the type digit) or a binary message. */
typedef int (*tb_rt__payload_fn)(int type, const unsigned char *data, size_t len, bool binary,
                                 void *ud);

/**
 * Splits a polling POST body (packets joined by 0x1e; "b<base64>" is a binary message) and calls
 * fn for each packet in order. Returns 0, the first nonzero fn result, or -1 when the body is
 * malformed (an empty packet, an unknown type, bad base64); packets before the bad one were
 * already delivered.
 */
int tb_rt__payload_decode(const unsigned char *body, size_t len, tb_rt__payload_fn fn, void *ud);

/** Decodes standard base64 (padding optional) into out (capacity >= n*3/4+3); returns the length,
 *  or -1 when the text is not base64. */
long tb_rt__base64_decode(const char *s, size_t n, unsigned char *out);

/** A parsed Socket.IO packet. nsp points into the parsed text. */
typedef struct tb_rt__sio_packet {
    int type;
    unsigned nattach;
    const char *nsp;
    size_t nsp_len;
    int64_t ack_id; /* -1: none */
    json_t *data;   /* caller owns (json_decref); NULL when the packet carries none */
} tb_rt__sio_packet;

/**
 * Parses the text of a Socket.IO packet (the Engine.IO message without its "4"), with
 * socket.io-parser's rules (type, attachments "N-", namespace up to ',', ack id digits, JSON;
 * the payload valid for the type: CONNECT an object or nothing, EVENT a non-empty array whose
 * first element is a number or a string that is not a reserved name, ACK an array...).
 * Returns 0, or -1 with *why naming the rule broken (static text).
 */
int tb_rt__sio_decode(const char *s, size_t len, tb_rt__sio_packet *out, const char **why);

/** Counts placeholders {"_placeholder":true,"num":N} in v; -1 when one has a num outside
 *  [0, nattach) or is malformed. */
int tb_rt__sio_check_placeholders(const json_t *v, unsigned nattach);

/**
 * Appends the Engine.IO message text of a Socket.IO packet: "4" type [nattach "-"] [nsp ","]
 * [ack id] then data_json (already JSON text, may be NULL).
 */
void tb_rt__sio_encode(tb_buf *b, int type, unsigned nattach, const char *nsp, int64_t ack_id,
                       const char *data_json, size_t data_len);

/** Appends `["event", ...args]` as JSON text (args an array or NULL). Returns 0 or TB_EINVAL. */
int tb_rt__sio_event_json(tb_buf *b, const char *event, const json_t *args);

/** True when name is one of Socket.IO's reserved event names. */
bool tb_rt__sio_reserved(const char *name, size_t len);

#endif
