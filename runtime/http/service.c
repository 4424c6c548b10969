/*
 * tablium: tb_service_main, the main() of every generated service (tablium/service.h).
 */
#include "tablium/service.h"

#include "tablium/ctx.h"
#include "tablium/log.h"
#include "tablium/token.h"
#include "tablium/trace.h"

#include "internal.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern char **environ;

tb_client *tb_service_client_new(const char *name, const char *base_url,
                                 const tb_client_opts *opts, tb_error *err)
{
    tb_client_opts named = TB_CLIENT_OPTS_INIT;
    if (opts)
        named = *opts;
    if (!named.name)
        named.name = name;
    const tb_client_hook *token = tb_service_token_hook();
    if (!named.n_hooks && token) {
        named.hooks = token;
        named.n_hooks = 1;
    }
    return tb_client_new(base_url, &named, err);
}

/* The readiness check "upstream:<name>" of a dependency's client: down while its circuit
 * breaker refuses calls. Read from the client's state, never a request of its own: a fleet's
 * probes add no load to an upstream that is struggling. A breaker leaves OPEN only on a call, and
 * an instance the load balancer took out gets none: once the open wait is over the check is up
 * again, traffic returns, and its first calls are the breaker's probes. */
typedef struct upstream {
    tb_client *http;
    void *box;                    /* the <dep>_client in the deps struct */
    char check[80];
    _Atomic uint64_t opens;       /* breaker_opens when it was last seen open */
    _Atomic int64_t open_seen_ms; /* when that opening was first seen */
} upstream;

static int upstream_ready(void *user, char *why, size_t cap)
{
    upstream *u = user;
    tb_client_stats st;
    tb_client_stats_get(u->http, &st);
    if (st.breaker_state != TB_BREAKER_OPEN)
        return 0;
    int64_t now = tb_clock_ms();
    if (atomic_exchange(&u->opens, st.breaker_opens) != st.breaker_opens)
        atomic_store(&u->open_seen_ms, now);
    int64_t left = atomic_load(&u->open_seen_ms) +
                   tb_client_options(u->http)->breaker.wait_duration_in_open_state_ms - now;
    if (left <= 0)
        return 0; /* the next call may go through as a probe */
    snprintf(why, cap, "circuit breaker open: calls fail fast for %lld ms more", (long long)left);
    return TB_EOPEN;
}

static void usage(const tb_service_def *d, const char *argv0)
{
    char up[64];
    tb__env_name(up, sizeof up, NULL, d->name);
    printf("usage: %s\nServes the %s service (%s).\n"
           "Environment: %s_HOST/HOST, %s_PORT/PORT, TB_THREADS, TB_MAX_BODY,\n"
           "TB_VALIDATE_RESPONSES, TB_ACCESS_LOG, TB_LOG_LEVEL",
           argv0, d->name, d->source, up, up);
    for (size_t i = 0; i < d->n_deps; i++) {
        tb__env_name(up, sizeof up, NULL, d->deps[i].name);
        printf(", %s_SERVICE_URL", up);
    }
    printf(".\n");
}

/* The operations' own rate limits and timeouts; false on a bad TB_RATE_LIMIT_<OP>. */
static bool apply_policies(const tb_service_def *d, tb_server *srv)
{
    for (size_t i = 0; i < d->n_policies; i++) {
        const tb_service_op_policy *p = &d->policies[i];
        if (p->limit.limit) {
            tb_rate_limit l = p->limit;
            const char *ov = getenv(p->env);
            bool off = ov && strcmp(ov, "off") == 0;
            if (ov && *ov && !off && !tb_rate_limit_parse(ov, &l)) {
                tb_log_error(NULL, "%s: %s=%s: want N/PERIOD or off", d->name, p->env, ov);
                return false;
            }
            tb_server_set_rate_limit(srv, p->operation_id, off ? NULL : &l);
        }
        if (p->timeout_ms)
            tb_server_set_op_timeout(srv, p->operation_id, p->timeout_ms);
    }
    /* a TB_RATE_LIMIT_<SERVICE>_<X> that names no operation with a limit would be ignored
     * without a word (TB_RATE_LIMIT_SHOP_GETITEM for GET_ITEM): say so */
    char prefix[128];
    int pl = snprintf(prefix, sizeof prefix, "TB_RATE_LIMIT_");
    for (const char *c = d->name; *c && pl < (int)sizeof prefix - 2; c++)
        prefix[pl++] = *c == '-' ? '_' : (char)toupper((unsigned char)*c);
    prefix[pl++] = '_';
    prefix[pl] = '\0';
    for (char **e = environ; e && *e; e++) {
        if (strncmp(*e, prefix, (size_t)pl) != 0)
            continue;
        size_t n = strcspn(*e, "=");
        bool known = false;
        for (size_t i = 0; i < d->n_policies && !known; i++)
            known = d->policies[i].limit.limit && strlen(d->policies[i].env) == n &&
                    strncmp(d->policies[i].env, *e, n) == 0;
        if (!known)
            tb_log_warn(NULL, "%s: %.*s names no operation with a rate limit (the name is the "
                              "handler's, upper-cased: TB_RATE_LIMIT_SHOP_GET_ITEM); ignored",
                        d->name, (int)n, *e);
    }
    return true;
}

int tb_service_main(const tb_service_def *d, int argc, char **argv)
{
    tb_error err = TB_ERROR_INIT;
    tb_server_opts opts = TB_SERVER_OPTS_INIT;
    tb_server *srv = NULL;
    void *state = NULL;
    bool inited = false;
    int status = 1;
    void *deps = NULL;
    upstream *ups = NULL;
    size_t n_ups = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(d, argv[0]);
            return 0;
        }
    }
    /* SIGTERM/SIGINT are taken by the server's signalfd: block them before init starts any
     * thread (event consumers, relays), so none of those threads is killed by them */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    if (tb_global_init()) {
        tb_log_error(NULL, "%s: libcurl initialisation failed", d->name);
        return 1;
    }
    if (d->validate_responses)
        opts.validate_responses = d->validate_responses; /* the service's build decides */
    if (d->default_port)
        opts.port = d->default_port; /* servers[0] of the spec */
    if (d->request_timeout_ms)
        opts.request_timeout_ms = d->request_timeout_ms; /* TB_REQUEST_TIMEOUT_MS wins */
    if (d->rate_limit) {
        opts.policy.rate_limit = d->rate_limit; /* TB_RATE_LIMIT wins */
        opts.policy.rate_burst = d->rate_burst;
    }
    tb_server_opts_from_env(&opts, d->name);
    if (d->n_deps) {
        if (tb_service_token_init(d->name, &err)) {
            tb_log_error(NULL, "%s: %s", d->name, err.message);
            tb_error_deinit(&err);
            return 1;
        }
        deps = calloc(1, d->deps_size);
        ups = calloc(d->n_deps, sizeof *ups);
        if (!deps || !ups) {
            tb_log_error(NULL, "%s: out of memory", d->name);
            goto out;
        }
    }
    for (size_t i = 0; i < d->n_deps; i++) {
        const tb_service_dep *dep = &d->deps[i];
        char *url = tb_service_url(dep->name, dep->default_url);
        tb_client *cl = url ? tb_service_client_new(dep->name, url, NULL, &err) : NULL;
        free(url);
        if (!cl) {
            tb_log_error(NULL, "%s: %s client: %s", d->name, dep->name,
                         err.code ? err.message : "no URL (set its _SERVICE_URL)");
            goto out;
        }
        /* a generated <dep>_client is a struct holding its tb_client * and nothing else */
        ups[i].box = malloc(sizeof cl);
        if (!ups[i].box) {
            tb_client_free(cl);
            tb_log_error(NULL, "%s: out of memory", d->name);
            goto out;
        }
        memcpy(ups[i].box, &cl, sizeof cl);
        memcpy((char *)deps + dep->offset, &ups[i].box, sizeof ups[i].box);
        ups[i].http = cl;
        n_ups = i + 1;
        snprintf(ups[i].check, sizeof ups[i].check, "upstream:%s", dep->name);
        if (tb_ready_check_add(ups[i].check, upstream_ready, &ups[i])) {
            tb_log_error(NULL, "%s: cannot register the readiness check %s", d->name, ups[i].check);
            goto out;
        }
    }
    if (deps)
        tb_service_set_deps(deps); /* what event handlers find in ctx->deps too */
    if (d->init(&state, &err)) {
        tb_log_error(NULL, "%s: init failed: %s", d->name, err.message);
        goto out;
    }
    inited = true;
    srv = tb_server_new(d->api, &opts, &err);
    if (!srv) {
        tb_log_error(NULL, "%s: %s", d->name, err.message);
        goto out;
    }
    tb_server_set_state(srv, state, deps);
    if (!apply_policies(d, srv))
        goto out;
    if (tb_server_run(srv, &err)) {
        tb_log_error(NULL, "%s: %s", d->name, err.message);
        goto out;
    }
    status = 0;
out:
    tb_server_free(srv);
    if (inited)
        d->fini(state);
    for (size_t i = 0; i < n_ups; i++) {
        tb_ready_check_remove(&ups[i]);
        tb_client_free(ups[i].http);
        free(ups[i].box);
    }
    if (d->n_deps)
        tb_service_token_shutdown();
    free(ups);
    free(deps);
    /* the spans of the last requests and events, then the exporter thread, before exit */
    tb_trace_shutdown(2000);
    tb_error_deinit(&err);
    return status;
}
