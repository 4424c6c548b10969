/*
 * tablium: the main() of a generated service, driven by its description.
 *
 * gen/<svc>/<svc>_server.c describes the service (its API, default port, policies from the
 * spec's x-tablium-* extensions, the services it calls, its init and fini) in a tb_service_def
 * and its <svc>_service_main calls tb_service_main with it: one main for every service.
 */
#ifndef TABLIUM_SERVICE_H
#define TABLIUM_SERVICE_H

#include "tablium/client.h"
#include "tablium/error.h"
#include "tablium/http.h"

#include <stddef.h>

/** A service this one calls (x-tablium-depends). */
typedef struct tb_service_dep {
    const char *name;        /* "wallet": <NAME>_SERVICE_URL and TB_<NAME>_* tune its client */
    const char *default_url; /* the upstream spec's servers[0], or NULL */
    size_t offset;           /* where its client (a tb_client *) goes in the deps struct */
} tb_service_dep;

/** An operation's own policies (x-tablium-rate-limit, x-tablium-timeout). */
typedef struct tb_service_op_policy {
    const char *operation_id;
    const char *env;       /* TB_RATE_LIMIT_<OP>: overrides the limit ("off": none) */
    tb_rate_limit limit;   /* limit.limit == 0: no limit of its own */
    unsigned timeout_ms;   /* 0: the server's */
} tb_service_op_policy;

typedef struct tb_service_def {
    const char *name;   /* "wallet" */
    const char *source; /* the spec it was generated from */
    const tb_http_api *api;
    int default_port;              /* servers[0]'s port, or 0 */
    unsigned request_timeout_ms;   /* x-tablium-timeout at the top level, or 0 */
    const char *rate_limit;        /* x-tablium-rate-limit at the top level ("N/PERIOD"), or NULL */
    unsigned rate_burst;
    const tb_service_dep *deps;
    size_t n_deps;
    size_t deps_size; /* sizeof the service's deps struct (ctx->deps), 0 without deps */
    const tb_service_op_policy *policies;
    size_t n_policies;
    int (*init)(void **state, tb_error *err);
    void (*fini)(void *state);
    /** TB_VALIDATE_RESPONSES_DEFAULT where the service is built (its generated _server.c), so
     *  that a debug build of the service validates its responses; 0: libtablium's default. */
    int validate_responses;
} tb_service_def;

/**
 * The service's main(): --help; SIGTERM/SIGINT blocked for the server's signalfd before any
 * thread starts; server options from the spec, then the environment (<NAME>_PORT, PORT,
 * TB_THREADS, ...); the service token and a client per dependency (URL from
 * <DEP>_SERVICE_URL, else the dependency's spec), each with a readiness check
 * "upstream:<dep>" that is down while its circuit breaker refuses calls; init; serve until
 * SIGTERM/SIGINT; fini; spans flushed. Returns the exit status.
 */
int tb_service_main(const tb_service_def *def, int argc, char **argv);

/** A client of service `name` at base_url for generated clients: named after the upstream (so
 *  TB_<NAME>_* tunes it and logs say which) and carrying the service's own token
 *  (tablium/token.h) unless opts sets hooks. opts may be NULL. */
tb_client *tb_service_client_new(const char *name, const char *base_url,
                                 const tb_client_opts *opts, tb_error *err);

#endif
