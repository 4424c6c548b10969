/* Internal to runtime/http: helpers shared by http.c and server.c. */
#ifndef TABLIUM_HTTP_INTERNAL_H
#define TABLIUM_HTTP_INTERNAL_H

/** Value of a hex digit, or -1. */
static inline int tb__hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* ---- door.c: the front door of tb_server (accept, first head, caps, deadlines) ---- */

#include "tablium/error.h"
#include "tablium/http.h"

#include <ctype.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

/* prefix then name upper-cased, any other character '_': the name of an environment variable
 * ("TB_API_KEYS_" + "my-key" -> TB_API_KEYS_MY_KEY), cut to fit cap. Returns its length. */
static inline size_t tb__env_name(char *out, size_t cap, const char *prefix, const char *name)
{
    size_t n = 0;
    for (const char *p = prefix ? prefix : ""; *p && n + 1 < cap; p++)
        out[n++] = *p;
    for (const char *p = name ? name : ""; *p && n + 1 < cap; p++)
        out[n++] = isalnum((unsigned char)*p) ? (char)toupper((unsigned char)*p) : '_';
    out[n] = '\0';
    return n;
}

struct MHD_Daemon;
typedef struct tb__door tb__door;

/* A client address as 16 bytes (IPv4 as ::ffff:a.b.c.d; anything else or NULL: zeros), the
 * key of the per-address connection counts and of the allowlist and rate-limit checks. */
static inline void tb__addr_v6(const struct sockaddr *sa, unsigned char out[16])
{
    memset(out, 0, 16);
    if (sa && sa->sa_family == AF_INET6) {
        memcpy(out, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, 16);
    } else if (sa && sa->sa_family == AF_INET) {
        out[10] = out[11] = 0xff;
        memcpy(out + 12, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
    }
}

typedef struct tb__door_opts {
    const char *service;
    unsigned header_timeout_ms;
    unsigned max_connections;
    unsigned max_per_addr;
    /* The port speaks TLS: the door cannot read heads. It waits for the first byte only (a
     * TLS record, else plain HTTP gets a plain 400), hands the socket over, and at a cap
     * closes without an answer. */
    bool tls;
} tb__door_opts;

/* A connection libmicrohttpd owns, as the door sees it (the first member of server.c's
 * per-connection state). */
typedef struct tb__door_conn {
    struct tb__door_conn *prev, *next;
    int fd;
    struct sockaddr_storage ss;
    _Atomic uint64_t deadline; /* CLOCK_MONOTONIC ms when it is cut; 0: none */
    atomic_bool reading_body;  /* counts a cut as a body timeout */
} tb__door_conn;

tb__door *tb__door_new(const tb__door_opts *o, tb_error *err);
/* Accepts on listen_fd (non-blocking, listening; the caller closes it after tb__door_free)
 * and hands complete heads to mhd. */
int tb__door_start(tb__door *d, int listen_fd, struct MHD_Daemon *mhd, tb_error *err);
void tb__door_stop_accepting(tb__door *d);
void tb__door_free(tb__door *d);
/* Tracks a connection libmicrohttpd started; it is cut unless its first head is complete
 * within header_timeout_ms (the TLS handshake included), unless the deadline is reset first. */
void tb__door_track(tb__door *d, tb__door_conn *c, int fd, const struct sockaddr *sa);
void tb__door_untrack(tb__door *d, tb__door_conn *c);
/* Gives back the count of a connection that could not be tracked. */
void tb__door_release(tb__door *d, const struct sockaddr *sa);
void tb__door_stats(tb__door *d, tb_server_stats *out);
void tb__door_count_cut_at_stop(tb__door *d, unsigned n);

/* Request framing (RFC 9112 section 6): one Content-Length value, Transfer-Encoding chunked
 * only and never with Content-Length, one Host (required in HTTP/1.1). */
typedef struct tb__framing {
    bool http10, has_cl, has_te, has_host;
    uint64_t cl;
    int status;      /* 0, or what refuses the request: 400, 501 */
    const char *why;
} tb__framing;
/* Every line of a request header (case-insensitive name), in order, joined with ", " as
 * RFC 9110 section 5.3 combines them (arena of the connection): NULL when absent; *lines (may
 * be NULL) how many lines there were. A list header (X-Forwarded-For) is read whole this way;
 * a single-valued one (Authorization) sent twice is ambiguous. */
const char *tb__req_header_lines(const tb_http_req *r, const char *name, size_t *lines);
/* The server's verifier of the request's connection (server.c), for auth.c. */
struct tb_jwt_verifier *tb__req_verifier(const tb_http_req *r);
/** Whether the request's connection presented a client certificate that verified against the
 *  server's tls_client_ca_file (mutualTLS security); *sub: its subject's CN. */
bool tb__req_client_cert(const tb_http_req *r, const char **sub);
/** The server's tb_server_set_http_auth function (and its ud), or NULL. */
tb_http_auth_fn tb__req_http_auth(const tb_http_req *r, void **ud);
/* The rate limit of a secured operation, checked once tb_http_authorize has set ctx->claims
 * (the identity is then the token's sub). true: go on; false: res holds the 429. */
bool tb__rate_after_auth(tb_ctx *ctx, const tb_http_req *req, tb_http_res *res);

/* ---- policy.c: allowlist, rate limits, fault injection ---- */
typedef struct tb__policy tb__policy;
tb__policy *tb__policy_new(size_t n_ops, tb_error *err);
int tb__policy_configure(tb__policy *p, const tb_policy_opts *o, tb_error *err);
int tb__policy_set_limit(tb__policy *p, size_t op, const tb_rate_limit *l);
int tb__policy_set_timeout(tb__policy *p, size_t op, unsigned ms);
unsigned tb__policy_timeout(const tb__policy *p, size_t op);
void tb__policy_free(tb__policy *p);
/* Whether any policy needs the client's address (an allowlist, a rate limit). */
bool tb__policy_needs_addr(const tb__policy *p);
void tb__policy_client_addr(const tb__policy *p, const struct sockaddr *peer,
                            const tb_http_req *req, unsigned char out[16]);
bool tb__policy_allows_addr(const tb__policy *p, const unsigned char addr[16]);
bool tb__policy_limits(const tb__policy *p, size_t op);
int tb__policy_rate(tb__policy *p, size_t op, const char *op_id, const char *identity,
                    tb_rate_result *out);
int tb__policy_fault(const tb__policy *p, const char *op_id);

/* application/json or an application/...+json type (server.c) */
bool tb__is_json_media_type(const char *ct);
/* Whether Content-Type ct (its media type, parameters ignored, case-insensitive) is of range:
 * "type/subtype", "type/ *" or "* / *" (NULL range: any; NULL ct fits only those) (op.c) */
bool tb__media_matches(const char *ct, const char *range);

/* ---- multipart.c: multipart/form-data ---- */
typedef struct tb__part {
    const char *name;     /* the form field's name */
    const char *filename; /* NULL when the part is not a file */
    const char *type;     /* its Content-Type, or NULL */
    const char *data;     /* borrowed from the body */
    size_t len;
} tb__part;
/* The parts of a multipart body whose Content-Type (with its boundary) is content_type, in the
 * arena: 0; -1 with *why when the body is malformed; TB_ENOMEM. */
int tb__multipart_parse(const char *content_type, const char *body, size_t len, tb_arena *a,
                        tb__part **out, size_t *n_out, const char **why);
#define TB__BOUNDARY_LEN 32
/* A fresh random boundary ("tablium-" and 24 hex digits), NUL-terminated. */
void tb__multipart_boundary(char out[TB__BOUNDARY_LEN + 1]);
/* Appends one part (filename and type may be NULL), then the close delimiter. */
void tb__multipart_part(tb_buf *b, const char *boundary, const char *name, const char *filename,
                        const char *type, const char *data, size_t len);
void tb__multipart_close(tb_buf *b, const char *boundary);

void tb__framing_init(tb__framing *f, bool http10);
bool tb__framing_field(tb__framing *f, const char *name, size_t nn, const char *v, size_t vn);
bool tb__framing_end(tb__framing *f);


/* ---- brackets.c: the bracket form of a structured query or form value (qs, Rails) ---- */
#include "tablium/buf.h"
#include <jansson.h>
#define TB_BRACKETS_DEPTH 16 /* name[a][b]...: at most this many brackets (the message says 16) */
/* Adds the pair name=value to the tree at *root (leaves strings, members objects) when name is
 * the parameter pname[0..plen) or one of its bracketed members: 0; 1 when it is another's; 2
 * with *why when malformed; TB_ENOMEM. */
int tb__brackets_add(json_t **root, const char *pname, size_t plen, const char *name,
                     const char *value, const char **why);
/* The tree typed as a member of `kind` (flags: TB_CF_ARRAY...) described by sub: texts become
 * the kinds the descriptors say, numbered members arrays. A new reference; NULL on out of
 * memory. */
json_t *tb__brackets_typed(const json_t *tree, int kind, unsigned flags, const void *sub);
/* Appends v as name[k][0]=text pairs, each after *sep (then '&'; 0 for none yet). */
void tb__brackets_write(tb_buf *u, char *sep, const char *name, size_t nlen, const json_t *v);
/* The same of a member (tb_codec_member_to_json's kind, flags, sub at base + off). */
void tb__brackets_write_member(tb_buf *u, char *sep, const char *name, size_t nlen, int kind,
                               unsigned flags, const void *sub, const void *base, uint32_t off,
                               uint32_t n_off);

#endif
