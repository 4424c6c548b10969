/*
 * tablium internal: the client's resilience parts (runtime/client/resilience.c). Not installed.
 * The breaker and the budget are not locked here: the client holds its policy lock around them.
 */
#ifndef TABLIUM_CLIENT_RESILIENCE_H
#define TABLIUM_CLIENT_RESILIENCE_H

#include "tablium/client.h"

#include <stdbool.h>
#include <stdint.h>

/* ---- fault injection ---- */

typedef struct tb__fault {
    bool on;
    long delay_ms;
    double delay_pct;
    int abort_status;
    double abort_pct;
    double drop_pct;
} tb__fault;

/** Parses a TB_CLIENT_FAULT spec (NULL, "" and "none": off). 0 or TB_EINVAL (err says where). */
int tb__fault_parse(const char *spec, tb__fault *out, tb_error *err);

/* ---- randomness for jitter and fault draws (per thread, not for secrets) ---- */

/** Uniform in [0, 1). */
double tb__rand_unit(void);

/* ---- backoff ---- */

/** Full-jitter wait before retry n (1-based) under p, in ms. */
long tb__backoff_ms(const tb_retry_policy *p, int n);
/** Retry-After value (delta-seconds or HTTP-date) as ms from now; -1 when unparseable. */
long tb__retry_after_ms(const char *value);

/* ---- retry budget: a ring of time slots ---- */

#define TB__BUDGET_SLOTS 10

typedef struct tb__budget {
    tb_retry_budget p;
    int64_t slot_ms;
    struct {
        int64_t epoch; /* now / slot_ms when the slot was last used */
        uint32_t calls, retries;
    } slot[TB__BUDGET_SLOTS];
} tb__budget;

void tb__budget_init(tb__budget *b, const tb_retry_budget *p);
void tb__budget_deposit(tb__budget *b, int64_t now);
/** Takes one retry from the budget: true when there was one. */
bool tb__budget_withdraw(tb__budget *b, int64_t now);
int tb__budget_left(const tb__budget *b, int64_t now);

/* ---- circuit breaker ---- */

#define TB__OUTCOME_IGNORE (-1) /* not the upstream's doing (e.g. out of memory): not counted */
#define TB__OUTCOME_FAIL 0x1
#define TB__OUTCOME_SLOW 0x2

typedef struct tb__breaker {
    tb_breaker_policy p;
    tb_breaker_state state;
    uint64_t gen; /* bumped on every transition; outcomes of older tickets are dropped */
    int64_t opened_at;
    unsigned char *ring;
    int n, head, fails, slows;
    int probes_started, probes_done, probe_fails, probe_slows;
    uint64_t opens;
} tb__breaker;

/** A transition, to be logged once the lock is released. */
typedef struct tb__transition {
    bool changed;
    tb_breaker_state from, to;
    int calls;
    double failure_rate, slow_rate;
} tb__transition;

/** 0 or TB_ENOMEM. */
int tb__breaker_init(tb__breaker *b, const tb_breaker_policy *p);
void tb__breaker_deinit(tb__breaker *b);
/** May a call go now? 0 (with *ticket to pass to _record) or TB_EOPEN. */
int tb__breaker_acquire(tb__breaker *b, int64_t now, uint64_t *ticket, tb__transition *t);
/** The outcome of a call that acquired `ticket`: TB__OUTCOME_* bits, 0 for a success. */
void tb__breaker_record(tb__breaker *b, uint64_t ticket, int outcome, int64_t now,
                        tb__transition *t);
/** Rates over the window in percent, -1 below minimum_number_of_calls. */
void tb__breaker_rates(const tb__breaker *b, double *failure, double *slow);

/* ---- options ---- */

/** Applies TB_CLIENT_<KNOB> then TB_<NAME>_<KNOB> to *o (string values point into environ),
 *  then checks every field's range. 0 or TB_EINVAL naming the variable or field. */
int tb__opts_resolve(tb_client_opts *o, const char *name, const char *base_url, tb_error *err);

/* Which retry fields the environment set (tb__opts_resolve's *env_retry): they win over a
 * call's own policy (the spec's x-tablium-retry) as well. */
#define TB__ENV_RETRY_MAX_ATTEMPTS 0x01u
#define TB__ENV_RETRY_INITIAL 0x02u
#define TB__ENV_RETRY_MAX_BACKOFF 0x04u
#define TB__ENV_RETRY_MULTIPLIER 0x08u
#define TB__ENV_RETRY_PER_TRY 0x10u
#define TB__ENV_RETRY_ON 0x20u
unsigned tb__opts_env_retry(const char *name);
/* p with the fields the environment set (mask) taken from env instead. */
void tb__retry_overlay(tb_retry_policy *p, const tb_retry_policy *env, unsigned mask);

#endif
