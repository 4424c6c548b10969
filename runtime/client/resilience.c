#include "resilience.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

const char *tb_breaker_state_name(tb_breaker_state s)
{
    switch (s) {
    case TB_BREAKER_CLOSED: return "closed";
    case TB_BREAKER_OPEN: return "open";
    case TB_BREAKER_HALF_OPEN: return "half-open";
    }
    return "?";
}

/* ---- randomness ---- */

static _Thread_local uint64_t rng_state;

double tb__rand_unit(void)
{
    if (rng_state == 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        rng_state = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^
                    (uint64_t)(uintptr_t)&rng_state ^ 0x9e3779b97f4a7c15ull;
        if (rng_state == 0)
            rng_state = 1;
    }
    /* xorshift64*: jitter and fault draws need spread, not secrecy. */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (double)((rng_state * 0x2545f4914f6cdd1dull) >> 11) / 9007199254740992.0;
}

/* ---- backoff ---- */

long tb__backoff_ms(const tb_retry_policy *p, int n)
{
    double cap = (double)p->initial_backoff_ms;
    for (int i = 1; i < n && cap < (double)p->max_backoff_ms; i++)
        cap *= p->backoff_multiplier;
    if (cap > (double)p->max_backoff_ms)
        cap = (double)p->max_backoff_ms;
    return (long)(tb__rand_unit() * (cap + 1.0));
}

long tb__retry_after_ms(const char *value)
{
    if (!value)
        return -1;
    while (*value == ' ' || *value == '\t')
        value++;
    if (*value >= '0' && *value <= '9') {
        char *end;
        errno = 0;
        unsigned long long s = strtoull(value, &end, 10);
        while (*end == ' ' || *end == '\t')
            end++;
        if (errno || *end || s > 86400ull * 365)
            return -1;
        return (long)s * 1000;
    }
    /* HTTP-date in any of the three RFC 9110 forms; curl_getdate reads them all. */
    time_t at = curl_getdate(value, NULL);
    if (at == (time_t)-1)
        return -1;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    double ms = ((double)at - (double)now.tv_sec) * 1000.0 - (double)now.tv_nsec / 1e6;
    if (ms > 86400.0 * 365 * 1000)
        return -1;
    return ms > 0 ? (long)ms : 0;
}

/* ---- fault injection ---- */

/* "<num>[suffix]" with a decimal number; *end after the number. */
static bool parse_num(const char *s, double *out, const char **end)
{
    char *e;
    errno = 0;
    double v = strtod(s, &e);
    if (e == s || errno || !isfinite(v) || v < 0)
        return false;
    *out = v;
    *end = e;
    return true;
}

/* "[@<pct>[%]]" at s (up to lim); 100 when absent. */
static bool parse_pct(const char *s, const char *lim, double *pct)
{
    if (s == lim) {
        *pct = 100.0;
        return true;
    }
    if (*s != '@')
        return false;
    const char *e;
    if (!parse_num(s + 1, pct, &e) || *pct > 100.0)
        return false;
    if (e < lim && *e == '%')
        e++;
    return e == lim;
}

int tb__fault_parse(const char *spec, tb__fault *out, tb_error *err)
{
    memset(out, 0, sizeof *out);
    if (!spec || !*spec || strcasecmp(spec, "none") == 0)
        return 0;
    const char *p = spec;
    while (*p) {
        const char *lim = strchr(p, ',');
        if (!lim)
            lim = p + strlen(p);
        const char *e;
        double v;
        bool ok = false;
        if (strncmp(p, "delay=", 6) == 0 && parse_num(p + 6, &v, &e) && v <= 3600e3) {
            if (e + 1 < lim && e[0] == 'm' && e[1] == 's')
                e += 2;
            out->delay_ms = (long)v;
            ok = parse_pct(e, lim, &out->delay_pct);
        } else if (strncmp(p, "abort=", 6) == 0 && parse_num(p + 6, &v, &e) && v >= 100 &&
                   v <= 599 && v == floor(v)) {
            out->abort_status = (int)v;
            ok = parse_pct(e, lim, &out->abort_pct);
        } else if (strncmp(p, "drop", 4) == 0) {
            ok = parse_pct(p + 4, lim, &out->drop_pct);
        }
        if (!ok)
            return tb_error_set(err, TB_EINVAL,
                                "fault spec \"%s\": bad item \"%.*s\" (want delay=<ms>[@<pct>%%], "
                                "abort=<status>[@<pct>%%] or drop[@<pct>%%])",
                                spec, (int)(lim - p), p);
        p = *lim ? lim + 1 : lim;
    }
    if (out->abort_pct + out->drop_pct > 100.0)
        return tb_error_set(err, TB_EINVAL, "fault spec \"%s\": abort + drop over 100%%", spec);
    out->on = true;
    return 0;
}

/* ---- retry budget ---- */

void tb__budget_init(tb__budget *b, const tb_retry_budget *p)
{
    memset(b, 0, sizeof *b);
    b->p = *p;
    b->slot_ms = p->ttl_ms / TB__BUDGET_SLOTS;
    if (b->slot_ms < 1)
        b->slot_ms = 1;
    for (int i = 0; i < TB__BUDGET_SLOTS; i++)
        b->slot[i].epoch = -1;
}

static int budget_slot(tb__budget *b, int64_t now)
{
    int64_t epoch = now / b->slot_ms;
    int i = (int)(epoch % TB__BUDGET_SLOTS);
    if (b->slot[i].epoch != epoch) {
        b->slot[i].epoch = epoch;
        b->slot[i].calls = 0;
        b->slot[i].retries = 0;
    }
    return i;
}

void tb__budget_deposit(tb__budget *b, int64_t now)
{
    b->slot[budget_slot(b, now)].calls++;
}

int tb__budget_left(const tb__budget *b, int64_t now)
{
    int64_t epoch = now / b->slot_ms;
    uint64_t calls = 0, retries = 0;
    for (int i = 0; i < TB__BUDGET_SLOTS; i++) {
        if (b->slot[i].epoch > epoch - TB__BUDGET_SLOTS && b->slot[i].epoch <= epoch) {
            calls += b->slot[i].calls;
            retries += b->slot[i].retries;
        }
    }
    uint64_t allowed = calls * (uint64_t)b->p.budget_percent / 100 +
                       (uint64_t)b->p.min_retries_per_sec * (uint64_t)b->p.ttl_ms / 1000;
    return retries >= allowed            ? 0
           : allowed - retries > 1000000 ? 1000000
                                         : (int)(allowed - retries);
}

bool tb__budget_withdraw(tb__budget *b, int64_t now)
{
    int i = budget_slot(b, now);
    if (tb__budget_left(b, now) <= 0)
        return false;
    b->slot[i].retries++;
    return true;
}

/* ---- circuit breaker ---- */

int tb__breaker_init(tb__breaker *b, const tb_breaker_policy *p)
{
    memset(b, 0, sizeof *b);
    b->p = *p;
    if (b->p.minimum_number_of_calls > b->p.sliding_window_size)
        b->p.minimum_number_of_calls = b->p.sliding_window_size;
    b->ring = calloc((size_t)b->p.sliding_window_size, 1);
    return b->ring ? 0 : TB_ENOMEM;
}

void tb__breaker_deinit(tb__breaker *b)
{
    free(b->ring);
    b->ring = NULL;
}

void tb__breaker_rates(const tb__breaker *b, double *failure, double *slow)
{
    if (b->n < b->p.minimum_number_of_calls || b->n == 0) {
        *failure = *slow = -1;
        return;
    }
    *failure = 100.0 * b->fails / b->n;
    *slow = 100.0 * b->slows / b->n;
}

static void move_to(tb__breaker *b, tb_breaker_state to, int64_t now, int calls, double fr,
                    double sr, tb__transition *t)
{
    t->changed = true;
    t->from = b->state;
    t->to = to;
    t->calls = calls;
    t->failure_rate = fr;
    t->slow_rate = sr;
    b->state = to;
    b->gen++;
    b->n = b->head = b->fails = b->slows = 0;
    b->probes_started = b->probes_done = b->probe_fails = b->probe_slows = 0;
    if (to == TB_BREAKER_OPEN) {
        b->opened_at = now;
        b->opens++;
    }
}

int tb__breaker_acquire(tb__breaker *b, int64_t now, uint64_t *ticket, tb__transition *t)
{
    t->changed = false;
    *ticket = b->gen;
    if (!b->p.enabled)
        return 0;
    if (b->state == TB_BREAKER_OPEN) {
        if (now - b->opened_at < b->p.wait_duration_in_open_state_ms)
            return TB_EOPEN;
        move_to(b, TB_BREAKER_HALF_OPEN, now, 0, -1, -1, t);
    }
    if (b->state == TB_BREAKER_HALF_OPEN) {
        if (b->probes_started >= b->p.permitted_number_of_calls_in_half_open_state)
            return TB_EOPEN;
        b->probes_started++;
    }
    *ticket = b->gen;
    return 0;
}

void tb__breaker_record(tb__breaker *b, uint64_t ticket, int outcome, int64_t now,
                        tb__transition *t)
{
    t->changed = false;
    if (!b->p.enabled || ticket != b->gen)
        return;
    bool fail = outcome > 0 && (outcome & TB__OUTCOME_FAIL);
    bool slow = outcome > 0 && (outcome & TB__OUTCOME_SLOW);
    if (b->state == TB_BREAKER_HALF_OPEN) {
        if (outcome == TB__OUTCOME_IGNORE) {
            b->probes_started--;
            return;
        }
        b->probes_done++;
        b->probe_fails += fail;
        b->probe_slows += slow;
        int permitted = b->p.permitted_number_of_calls_in_half_open_state;
        if (b->probes_done < permitted)
            return;
        double fr = 100.0 * b->probe_fails / permitted, sr = 100.0 * b->probe_slows / permitted;
        bool trip = fr >= b->p.failure_rate_threshold || sr >= b->p.slow_call_rate_threshold;
        move_to(b, trip ? TB_BREAKER_OPEN : TB_BREAKER_CLOSED, now, permitted, fr, sr, t);
        return;
    }
    if (b->state != TB_BREAKER_CLOSED || outcome == TB__OUTCOME_IGNORE)
        return;
    int size = b->p.sliding_window_size;
    if (b->n == size) {
        unsigned char old = b->ring[b->head];
        b->fails -= (old & TB__OUTCOME_FAIL) != 0;
        b->slows -= (old & TB__OUTCOME_SLOW) != 0;
    } else {
        b->n++;
    }
    b->ring[b->head] =
        (unsigned char)((fail ? TB__OUTCOME_FAIL : 0) | (slow ? TB__OUTCOME_SLOW : 0));
    b->head = (b->head + 1) % size;
    b->fails += fail;
    b->slows += slow;
    double fr, sr;
    tb__breaker_rates(b, &fr, &sr);
    if (fr >= 0 && (fr >= b->p.failure_rate_threshold || sr >= b->p.slow_call_rate_threshold))
        move_to(b, TB_BREAKER_OPEN, now, b->n, fr, sr, t);
}

/* ---- options from the environment ---- */

typedef enum knob_type { K_LONG, K_INT, K_DOUBLE, K_BOOL, K_RETRY_ON, K_RECORD, K_STR } knob_type;

typedef struct knob {
    const char *env;   /* suffix after TB_CLIENT_ / TB_<NAME>_ */
    const char *field; /* in tb_client_opts, for messages */
    knob_type type;
    size_t off;
    double min, max;
} knob;

#define K(env, field, type, min, max)                                                              \
    {                                                                                              \
        env, #field, type, offsetof(tb_client_opts, field), min, max                               \
    }

static const knob knobs[] = {
    K("TIMEOUT_MS", timeout_ms, K_LONG, 0, 86400e3),
    K("CONNECT_TIMEOUT_MS", connect_timeout_ms, K_LONG, 0, 86400e3),
    K("RETRY_MAX_ATTEMPTS", retry.max_attempts, K_INT, 1, 10),
    K("RETRY_INITIAL_BACKOFF_MS", retry.initial_backoff_ms, K_LONG, 0, 3600e3),
    K("RETRY_MAX_BACKOFF_MS", retry.max_backoff_ms, K_LONG, 0, 3600e3),
    K("RETRY_BACKOFF_MULTIPLIER", retry.backoff_multiplier, K_DOUBLE, 1, 100),
    K("RETRY_PER_TRY_TIMEOUT_MS", retry.per_try_timeout_ms, K_LONG, 0, 86400e3),
    K("RETRY_ON", retry.retry_on, K_RETRY_ON, 0, 0),
    K("RETRY_BUDGET_PERCENT", retry_budget.budget_percent, K_INT, 0, 100),
    K("RETRY_BUDGET_MIN_RETRIES_PER_SEC", retry_budget.min_retries_per_sec, K_INT, 0, 1000),
    K("RETRY_BUDGET_TTL_MS", retry_budget.ttl_ms, K_LONG, 1000, 60000),
    K("BREAKER_ENABLED", breaker.enabled, K_BOOL, 0, 0),
    K("BREAKER_FAILURE_RATE_THRESHOLD", breaker.failure_rate_threshold, K_INT, 1, 100),
    K("BREAKER_SLOW_CALL_RATE_THRESHOLD", breaker.slow_call_rate_threshold, K_INT, 1, 100),
    K("BREAKER_SLOW_CALL_DURATION_THRESHOLD_MS", breaker.slow_call_duration_threshold_ms, K_LONG, 1,
      86400e3),
    K("BREAKER_SLIDING_WINDOW_SIZE", breaker.sliding_window_size, K_INT, 1, 1000),
    K("BREAKER_MINIMUM_NUMBER_OF_CALLS", breaker.minimum_number_of_calls, K_INT, 1, 1000),
    K("BREAKER_WAIT_DURATION_IN_OPEN_STATE_MS", breaker.wait_duration_in_open_state_ms, K_LONG, 1,
      86400e3),
    K("BREAKER_PERMITTED_NUMBER_OF_CALLS_IN_HALF_OPEN_STATE",
      breaker.permitted_number_of_calls_in_half_open_state, K_INT, 1, 1000),
    K("BREAKER_RECORD", breaker.record, K_RECORD, 0, 0),
    K("MAX_CONCURRENT_CALLS", max_concurrent_calls, K_INT, 0, 1000000),
    K("FAULT", fault, K_STR, 0, 0),
    K("TLS_CA_FILE", tls_ca_file, K_STR, 0, 0),
    K("TLS_CERT_FILE", tls_cert_file, K_STR, 0, 0),
    K("TLS_KEY_FILE", tls_key_file, K_STR, 0, 0),
};

#undef K

typedef struct flag_name {
    const char *name;
    unsigned bits;
} flag_name;

static const flag_name retry_on_names[] = {
    {"connect-failure", TB_RETRY_ON_CONNECT_FAILURE},
    {"reset", TB_RETRY_ON_RESET},
    {"timeout", TB_RETRY_ON_TIMEOUT},
    {"429", TB_RETRY_ON_429},
    {"502", TB_RETRY_ON_502},
    {"503", TB_RETRY_ON_503},
    {"504", TB_RETRY_ON_504},
    {"gateway-error", TB_RETRY_ON_GATEWAY_ERROR},
    {"5xx", TB_RETRY_ON_5XX},
    {NULL, 0},
};

static const flag_name record_names[] = {
    {"transport", TB_BREAKER_RECORD_TRANSPORT},
    {"timeout", TB_BREAKER_RECORD_TIMEOUT},
    {"5xx", TB_BREAKER_RECORD_5XX},
    {"429", TB_BREAKER_RECORD_429},
    {NULL, 0},
};

static bool parse_flags(const char *s, const flag_name *names, unsigned *out)
{
    unsigned bits = 0;
    if (strcasecmp(s, "none") == 0) {
        *out = 0;
        return true;
    }
    while (*s) {
        while (*s == ' ' || *s == ',')
            s++;
        size_t n = strcspn(s, ", ");
        if (n == 0)
            break;
        const flag_name *f = names;
        while (f->name && !(strlen(f->name) == n && strncasecmp(f->name, s, n) == 0))
            f++;
        if (!f->name)
            return false;
        bits |= f->bits;
        s += n;
    }
    *out = bits;
    return true;
}

static bool parse_value(const knob *k, const char *v, void *field)
{
    char *end;
    errno = 0;
    switch (k->type) {
    case K_LONG:
    case K_INT: {
        long long x = strtoll(v, &end, 10);
        if (errno || end == v || *end || x < (long long)k->min || x > (long long)k->max)
            return false;
        if (k->type == K_LONG)
            *(long *)field = (long)x;
        else
            *(int *)field = (int)x;
        return true;
    }
    case K_DOUBLE: {
        double x = strtod(v, &end);
        if (errno || end == v || *end || !(x >= k->min && x <= k->max))
            return false;
        *(double *)field = x;
        return true;
    }
    case K_BOOL:
        if (strcmp(v, "1") == 0 || strcasecmp(v, "true") == 0 || strcasecmp(v, "on") == 0)
            *(bool *)field = true;
        else if (strcmp(v, "0") == 0 || strcasecmp(v, "false") == 0 || strcasecmp(v, "off") == 0)
            *(bool *)field = false;
        else
            return false;
        return true;
    case K_RETRY_ON: return parse_flags(v, retry_on_names, field);
    case K_RECORD: return parse_flags(v, record_names, field);
    case K_STR: *(const char **)field = v; return true;
    }
    return false;
}

static bool in_range(const knob *k, const void *field)
{
    switch (k->type) {
    case K_LONG: return *(const long *)field >= k->min && *(const long *)field <= k->max;
    case K_INT: return *(const int *)field >= k->min && *(const int *)field <= k->max;
    case K_DOUBLE: return *(const double *)field >= k->min && *(const double *)field <= k->max;
    default: return true;
    }
}

static void env_prefix(const char *name, char *prefix, size_t cap)
{
    prefix[0] = '\0';
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n > cap - 5)
        return;
    strcpy(prefix, "TB_");
    for (size_t i = 0; i < n; i++) {
        char ch = (char)toupper((unsigned char)name[i]);
        prefix[3 + i] = ch == '-' ? '_' : ch;
    }
    prefix[3 + n] = '_';
    prefix[4 + n] = '\0';
}

unsigned tb__opts_env_retry(const char *name)
{
    static const struct {
        const char *env;
        unsigned bit;
    } f[] = {
        {"RETRY_MAX_ATTEMPTS", TB__ENV_RETRY_MAX_ATTEMPTS},
        {"RETRY_INITIAL_BACKOFF_MS", TB__ENV_RETRY_INITIAL},
        {"RETRY_MAX_BACKOFF_MS", TB__ENV_RETRY_MAX_BACKOFF},
        {"RETRY_BACKOFF_MULTIPLIER", TB__ENV_RETRY_MULTIPLIER},
        {"RETRY_PER_TRY_TIMEOUT_MS", TB__ENV_RETRY_PER_TRY},
        {"RETRY_ON", TB__ENV_RETRY_ON},
    };
    char prefix[96], var[160];
    env_prefix(name, prefix, sizeof prefix);
    unsigned mask = 0;
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
        const char *pre[2] = {"TB_CLIENT_", prefix[0] ? prefix : NULL};
        for (int j = 0; j < 2; j++) {
            if (!pre[j])
                continue;
            snprintf(var, sizeof var, "%s%s", pre[j], f[i].env);
            const char *v = getenv(var);
            if (v && *v)
                mask |= f[i].bit;
        }
    }
    return mask;
}

void tb__retry_overlay(tb_retry_policy *p, const tb_retry_policy *env, unsigned mask)
{
    if (mask & TB__ENV_RETRY_MAX_ATTEMPTS)
        p->max_attempts = env->max_attempts;
    if (mask & TB__ENV_RETRY_INITIAL)
        p->initial_backoff_ms = env->initial_backoff_ms;
    if (mask & TB__ENV_RETRY_MAX_BACKOFF)
        p->max_backoff_ms = env->max_backoff_ms;
    if (mask & TB__ENV_RETRY_MULTIPLIER)
        p->backoff_multiplier = env->backoff_multiplier;
    if (mask & TB__ENV_RETRY_PER_TRY)
        p->per_try_timeout_ms = env->per_try_timeout_ms;
    if (mask & TB__ENV_RETRY_ON)
        p->retry_on = env->retry_on;
    if (p->max_backoff_ms < p->initial_backoff_ms)
        p->max_backoff_ms = p->initial_backoff_ms;
}

int tb__opts_resolve(tb_client_opts *o, const char *name, const char *base_url, tb_error *err)
{
    char var[160], prefix[96];
    if (name && strlen(name) > sizeof prefix - 5)
        return tb_error_set(err, TB_EINVAL, "client name too long: %s", name);
    env_prefix(name, prefix, sizeof prefix);
    const char *prefixes[2] = {"TB_CLIENT_", prefix[0] ? prefix : NULL};
    for (size_t i = 0; i < sizeof knobs / sizeof knobs[0]; i++) {
        const knob *k = &knobs[i];
        for (int j = 0; j < 2; j++) {
            if (!prefixes[j])
                continue;
            snprintf(var, sizeof var, "%s%s", prefixes[j], k->env);
            const char *v = getenv(var);
            if (!v || !*v)
                continue;
            if (!parse_value(k, v, (char *)o + k->off))
                return tb_error_set(err, TB_EINVAL, "client for %s: %s=\"%s\" is not valid (%s)",
                                    base_url, var, v, k->field);
        }
    }
    for (size_t i = 0; i < sizeof knobs / sizeof knobs[0]; i++) {
        const knob *k = &knobs[i];
        if (!in_range(k, (const char *)o + k->off))
            return tb_error_set(err, TB_EINVAL,
                                "client options for %s: %s outside %.10g..%.10g (TB_*_%s)",
                                base_url, k->field, k->min, k->max, k->env);
    }
    if (o->retry.max_backoff_ms < o->retry.initial_backoff_ms)
        return tb_error_set(err, TB_EINVAL,
                            "client options for %s: retry.max_backoff_ms under initial_backoff_ms",
                            base_url);
    return 0;
}
