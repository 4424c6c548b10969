/*
 * tablium: error codes and error details.
 *
 * Every call that can fail returns 0 or a negative TB_E... code. Details (a message, the
 * line/column of a JSON syntax error, and for validation failures the list of violations, each
 * with its instance JSON pointer, the schema rule and a readable message) go into an optional
 * tb_error out-parameter.
 */
#ifndef TABLIUM_ERROR_H
#define TABLIUM_ERROR_H

#include <stdbool.h>
#include <stddef.h>

/* X(name, value, text). Append-only: codes never change meaning or value. */
#define TB_ERRNO_MAP(X)                                                          \
    X(OK, 0, "success")                                                          \
    X(ENOMEM, -1, "out of memory")                                               \
    X(EINVAL, -2, "invalid argument")                                            \
    X(EPARSE, -3, "malformed JSON")                                              \
    X(EVALIDATION, -4, "schema validation failed")                               \
    X(EIO, -5, "input/output error")                                             \
    X(ETOOBIG, -6, "payload too large")                                          \
    X(ENOTFOUND, -7, "not found")                                                \
    X(ETIMEDOUT, -8, "timed out")                                                \
    X(ECONN, -9, "connection failed")                                            \
    X(EPROTO, -10, "protocol error")                                             \
    X(ESTATE, -11, "invalid state")                                              \
    X(EUPSTREAM, -12, "upstream answered outside its contract")                  \
    X(ECONFLICT, -13, "conflict with the current state")                         \
    X(EOPEN, -14, "circuit breaker open")                                        \
    X(EBUSY, -15, "too many concurrent calls")

typedef enum tb_errno {
#define TB__ERRNO_ENUM(name, value, text) TB_##name = value,
    TB_ERRNO_MAP(TB__ERRNO_ENUM)
#undef TB__ERRNO_ENUM
} tb_errno;

/** Readable text of a TB_E... code; "unknown error" for codes it does not know. Never NULL. */
const char *tb_strerror(int code);
/** Name of a TB_E... code ("TB_EPARSE"); "TB_UNKNOWN" for codes it does not know. Never NULL. */
const char *tb_err_name(int code);

/** One violation: where in the instance, which rule, and what went wrong. Strings owned by the
 *  enclosing tb_error. */
typedef struct tb_error_detail {
    char *path;    /* JSON pointer into the instance, "" for the root, e.g. "/data/amount" */
    char *rule;    /* the schema keyword that failed, e.g. "minimum", "required", "type" */
    char *message; /* readable, e.g. "must be >= 0" */
} tb_error_detail;

/** At most this many details are kept in a tb_error; further ones are only counted
 *  (tb_error.n_omitted). A hostile request with 100,000 violations then costs 100 details, not
 *  100,000, in memory and in the 400 answer. */
#define TB_ERROR_MAX_DETAILS 100
/** A detail's path and message are cut to at most this many bytes (at a UTF-8 character
 *  boundary, ending with "..."); rule names are short. */
#define TB_ERROR_MAX_DETAIL_TEXT 512

/**
 * Error details. Caller's storage: initialise with TB_ERROR_INIT (or tb_error_init), release
 * with tb_error_deinit. A tb_error may be reused: each call that fills it resets it first.
 */
typedef struct tb_error {
    int code;          /* TB_E... code of the failure, 0 when none */
    char message[256]; /* summary, NUL-terminated */
    int line;          /* 1-based line of a JSON syntax error, 0 when not applicable */
    int column;        /* 1-based column of a JSON syntax error, 0 when not applicable */
    long position;     /* 0-based byte offset of a JSON syntax error, -1 when not applicable */
    tb_error_detail *details;
    size_t n_details;
    size_t cap_details;
    size_t n_omitted;  /* details dropped past TB_ERROR_MAX_DETAILS (counted, not kept) */
} tb_error;

#define TB_ERROR_INIT {0, {0}, 0, 0, -1, NULL, 0, 0, 0}

void tb_error_init(tb_error *e);
/** Frees the details. NULL-safe. The struct can be reused afterwards. */
void tb_error_deinit(tb_error *e);
/** Forgets previous content (keeps the details array's storage). NULL-safe. */
void tb_error_reset(tb_error *e);
/** Sets code and printf-style message; returns code. NULL-safe (then only returns code). */
int tb_error_set(tb_error *e, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/** Appends a detail (copies the strings, cutting path and message to
 *  TB_ERROR_MAX_DETAIL_TEXT bytes). Past TB_ERROR_MAX_DETAILS details it only counts the detail
 *  in e->n_omitted. Returns 0 or TB_ENOMEM. NULL-safe. */
int tb_error_add_detail(tb_error *e, const char *path, const char *rule, const char *message);
/** True when e keeps no more details (the next one would only be counted). NULL-safe: a NULL
 *  e keeps nothing. */
static inline bool tb_error_details_full(const tb_error *e)
{
    return e == NULL || e->n_details >= TB_ERROR_MAX_DETAILS;
}
/** Appends src's details to dst (same cap) and adds src's omitted count to dst's. 0 or
 *  TB_ENOMEM. NULL-safe. */
int tb_error_add_details(tb_error *dst, const tb_error *src);

#endif
