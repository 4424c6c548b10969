/* JWT verifier: token structure, key selection with JWKS refetch, claim rules, verified-token
 * cache. */
#include "jwt_internal.h"
#include "tablium/log.h"

#include <curl/curl.h>
#include <errno.h>
#include <math.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define SHARDS 16
#define MAX_JWKS_BYTES (1u << 20)
#define MAX_CANDIDATES 8 /* keys tried for a token without kid */

/* ---- claims ---- */

struct tb_jwt_claims {
    atomic_int refs;
    json_t *json;
    double exp, nbf;
    bool has_exp, has_nbf;
    const char **scopes;
    size_t n_scopes;
    char *scope_buf;
};

void tb_jwt_claims_free(tb_jwt_claims *c)
{
    if (!c || atomic_fetch_sub(&c->refs, 1) != 1)
        return;
    json_decref(c->json);
    free(c->scopes);
    free(c->scope_buf);
    free(c);
}

static tb_jwt_claims *claims_ref(tb_jwt_claims *c)
{
    atomic_fetch_add(&c->refs, 1);
    return c;
}

const json_t *tb_jwt_claims_json(const tb_jwt_claims *c)
{
    return c ? c->json : NULL;
}

const json_t *tb_jwt_claims_get(const tb_jwt_claims *c, const char *name)
{
    return c && name ? json_object_get(c->json, name) : NULL;
}

const char *tb_jwt_claims_string(const tb_jwt_claims *c, const char *name)
{
    return json_string_value(tb_jwt_claims_get(c, name));
}

const char *tb_jwt_claims_sub(const tb_jwt_claims *c)
{
    return tb_jwt_claims_string(c, "sub");
}

int64_t tb_jwt_claims_exp(const tb_jwt_claims *c)
{
    if (!c || !c->has_exp)
        return 0;
    /* a huge exp (1e300) is a valid number: clamped, not an out-of-range cast (undefined) */
    if (c->exp >= 9223372036854775807.0)
        return INT64_MAX;
    if (c->exp <= -9223372036854775808.0)
        return INT64_MIN;
    return (int64_t)c->exp;
}

const char *const *tb_jwt_claims_scopes(const tb_jwt_claims *c, size_t *n)
{
    if (n)
        *n = c ? c->n_scopes : 0;
    return c && c->n_scopes ? c->scopes : NULL;
}

bool tb_jwt_claims_has_scope(const tb_jwt_claims *c, const char *scope)
{
    for (size_t i = 0; c && scope && i < c->n_scopes; i++)
        if (strcmp(c->scopes[i], scope) == 0)
            return true;
    return false;
}

/* Splits a space-separated scope string into c->scopes. */
static int split_scopes(tb_jwt_claims *c, const char *s)
{
    if (!(c->scope_buf = strdup(s)))
        return -1;
    size_t cap = 1;
    for (const char *p = s; *p; p++)
        cap += *p == ' ';
    if (!(c->scopes = calloc(cap, sizeof *c->scopes)))
        return -1;
    for (char *save = NULL, *t = strtok_r(c->scope_buf, " ", &save); t;
         t = strtok_r(NULL, " ", &save))
        c->scopes[c->n_scopes++] = t;
    return 0;
}

/* Takes ownership of json (released on failure). */
static tb_jwt_claims *claims_new(json_t *json)
{
    tb_jwt_claims *c = calloc(1, sizeof *c);
    if (!c) {
        json_decref(json);
        return NULL;
    }
    atomic_init(&c->refs, 1);
    c->json = json;
    json_t *exp = json_object_get(json, "exp"), *nbf = json_object_get(json, "nbf");
    if ((c->has_exp = json_is_number(exp)))
        c->exp = json_number_value(exp);
    if ((c->has_nbf = json_is_number(nbf)))
        c->nbf = json_number_value(nbf);
    const json_t *scope = json_object_get(json, "scope");
    if (!json_is_string(scope))
        scope = json_object_get(json, "scp");
    int rc = 0;
    if (json_is_string(scope)) {
        rc = split_scopes(c, json_string_value(scope));
    } else if (json_is_array(scope) && json_array_size(scope)) {
        c->scopes = calloc(json_array_size(scope), sizeof *c->scopes);
        rc = c->scopes ? 0 : -1;
        size_t i;
        json_t *s;
        json_array_foreach(scope, i, s)
        {
            if (c->scopes && json_is_string(s))
                c->scopes[c->n_scopes++] = json_string_value(s);
        }
    }
    if (rc) {
        tb_jwt_claims_free(c);
        return NULL;
    }
    return c;
}

/* ---- the verified-token cache: SHARDS x (chained hash + clock eviction) ---- */

typedef struct cache_entry {
    unsigned char digest[SHA256_DIGEST_LENGTH];
    tb_jwt_claims *claims; /* NULL: free slot */
    uint64_t generation;   /* the key-set generation it was verified under */
    int32_t next;          /* bucket chain, -1 ends */
    bool referenced;       /* clock bit */
} cache_entry;

typedef struct cache_shard {
    pthread_mutex_t lock;
    cache_entry *e;
    int32_t *buckets;
    size_t cap, nbuckets, used, hand;
} cache_shard;

struct tb_jwt_verifier {
    /* configuration */
    char *issuer, *audience, *typ, *jwks_file, *jwks_url, *jwks_ca_file;
    char **required;
    size_t n_required;
    tb_jwt_alg jwks_alg;
    unsigned alg_mask;
    bool require_exp;
    int leeway_s, refetch_interval_s;
    size_t max_token;
    long fetch_timeout_ms;
    tb_jwt_clock_fn clock;
    void *clock_ctx;

    tb_jwks *fixed;       /* keys given directly and from jwks_json */
    pthread_mutex_t lock; /* guards keys, last_fetch */
    tb_jwks *keys;        /* fixed + fetched */
    int64_t last_fetch;   /* seconds; the refetch rate limit counts from it */
    atomic_uint_fast64_t n_loads; /* key sets installed: a waiter sees another's fetch */
    pthread_mutex_t fetch_lock; /* one fetch at a time */
    atomic_uint_fast64_t generation;

    /* the rereading thread (file or URL sources): under lock */
    pthread_t thread;
    bool thread_on, stop, want; /* want: an unknown kid asked for a reread */
    pthread_cond_t wake;        /* to the thread: want or stop */
    pthread_cond_t reread;      /* from the thread: a reread ended (rereads counts them) */
    uint64_t rereads;
    int max_age_s;
    int64_t last_load_ms;       /* monotonic */
    atomic_size_t last_skipped; /* the skipped-key counts last warned about */

    cache_shard *shards; /* NULL: no cache */
    EVP_MD *sha256;      /* fetched once: a fetch per token costs more than the hash */

    atomic_uint_fast64_t n_sig, n_hit, n_miss, n_fetch, n_refused;
};

static int64_t now_s(const tb_jwt_verifier *v)
{
    return v->clock ? v->clock(v->clock_ctx) : (int64_t)time(NULL);
}

static int cache_init(tb_jwt_verifier *v, size_t size)
{
    size_t per = (size + SHARDS - 1) / SHARDS;
    if (!size)
        return 0;
    if (!(v->shards = calloc(SHARDS, sizeof *v->shards)))
        return -1;
    for (size_t i = 0; i < SHARDS; i++) {
        cache_shard *s = &v->shards[i];
        pthread_mutex_init(&s->lock, NULL);
        s->cap = per;
        s->nbuckets = per * 2;
        s->e = calloc(per, sizeof *s->e);
        s->buckets = malloc(s->nbuckets * sizeof *s->buckets);
        if (!s->e || !s->buckets)
            return -1;
        for (size_t b = 0; b < s->nbuckets; b++)
            s->buckets[b] = -1;
    }
    return 0;
}

static void cache_free(tb_jwt_verifier *v)
{
    if (!v->shards)
        return;
    for (size_t i = 0; i < SHARDS; i++) {
        cache_shard *s = &v->shards[i];
        for (size_t j = 0; s->e && j < s->used; j++)
            tb_jwt_claims_free(s->e[j].claims);
        free(s->e);
        free(s->buckets);
        pthread_mutex_destroy(&s->lock);
    }
    free(v->shards);
}

static size_t bucket_of(const cache_shard *s, const unsigned char *d)
{
    uint32_t h;
    memcpy(&h, d + 4, sizeof h);
    return h % s->nbuckets;
}

/* Unlinks entry i from its chain and releases its claims (caller holds the lock). */
static void cache_drop(cache_shard *s, int32_t i)
{
    int32_t *p = &s->buckets[bucket_of(s, s->e[i].digest)];
    while (*p != -1 && *p != i)
        p = &s->e[*p].next;
    if (*p == i)
        *p = s->e[i].next;
    tb_jwt_claims_free(s->e[i].claims);
    s->e[i].claims = NULL;
    s->e[i].next = -1;
}

/* A new reference to the cached claims of digest d, or NULL. */
static tb_jwt_claims *cache_get(tb_jwt_verifier *v, const unsigned char *d)
{
    cache_shard *s = &v->shards[d[0] % SHARDS];
    tb_jwt_claims *c = NULL;
    uint64_t gen = atomic_load(&v->generation);
    pthread_mutex_lock(&s->lock);
    for (int32_t i = s->buckets[bucket_of(s, d)]; i != -1; i = s->e[i].next) {
        if (memcmp(s->e[i].digest, d, sizeof s->e[i].digest) == 0) {
            if (s->e[i].generation != gen) { /* a key was withdrawn since */
                cache_drop(s, i);
                break;
            }
            s->e[i].referenced = true;
            c = claims_ref(s->e[i].claims);
            break;
        }
    }
    pthread_mutex_unlock(&s->lock);
    return c;
}

static void cache_put(tb_jwt_verifier *v, const unsigned char *d, tb_jwt_claims *c, uint64_t gen)
{
    cache_shard *s = &v->shards[d[0] % SHARDS];
    pthread_mutex_lock(&s->lock);
    for (int32_t i = s->buckets[bucket_of(s, d)]; i != -1; i = s->e[i].next)
        if (memcmp(s->e[i].digest, d, sizeof s->e[i].digest) == 0)
            goto out; /* another thread was first */
    size_t slot;
    if (s->used < s->cap) {
        slot = s->used++;
    } else {
        for (;;) { /* clock: evict the first entry not used since the hand last passed */
            cache_entry *e = &s->e[s->hand];
            if (e->claims && e->referenced) {
                e->referenced = false;
                s->hand = (s->hand + 1) % s->cap;
                continue;
            }
            slot = s->hand;
            s->hand = (s->hand + 1) % s->cap;
            if (e->claims)
                cache_drop(s, (int32_t)slot);
            break;
        }
    }
    cache_entry *e = &s->e[slot];
    memcpy(e->digest, d, sizeof e->digest);
    e->claims = claims_ref(c);
    e->generation = gen;
    e->referenced = false;
    size_t b = bucket_of(s, d);
    e->next = s->buckets[b];
    s->buckets[b] = (int32_t)slot;
out:
    pthread_mutex_unlock(&s->lock);
}

/* ---- key sources ---- */

typedef struct fetch_buf {
    char *data;
    size_t len;
    bool too_big;
} fetch_buf;

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    fetch_buf *b = ud;
    size_t add = size * n;
    if (b->len + add > MAX_JWKS_BYTES) {
        b->too_big = true;
        return 0;
    }
    char *d = realloc(b->data, b->len + add + 1);
    if (!d)
        return 0;
    memcpy(d + b->len, p, add);
    b->data = d;
    b->len += add;
    d[b->len] = '\0';
    return add;
}

static int fetch_url(const tb_jwt_verifier *v, fetch_buf *b, tb_error *err)
{
    CURL *h = curl_easy_init();
    long status = 0;
    if (!h)
        return tb_error_set(err, TB_JWT_EINTERNAL, "curl_easy_init failed");
    curl_easy_setopt(h, CURLOPT_URL, v->jwks_url);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, v->fetch_timeout_ms);
    if (v->jwks_ca_file)
        curl_easy_setopt(h, CURLOPT_CAINFO, v->jwks_ca_file);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, b);
    CURLcode cc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(h);
    if (cc != CURLE_OK || status != 200)
        return tb_error_set(err, TB_JWT_EFETCH, "JWKS %s: %s", v->jwks_url,
                            cc != CURLE_OK
                                ? (b->too_big ? "larger than 1 MiB" : curl_easy_strerror(cc))
                                : "status not 200");
    return 0;
}

static int read_file(const char *path, fetch_buf *b, tb_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return tb_error_set(err, TB_JWT_EFETCH, "JWKS %s: %s", path, strerror(errno));
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        if (on_body(chunk, 1, n, b) != n)
            break;
    int bad = ferror(f) || !feof(f);
    fclose(f);
    if (bad)
        return tb_error_set(err, TB_JWT_EFETCH, "JWKS %s: %s", path,
                            b->too_big ? "larger than 1 MiB" : "read error");
    return 0;
}

/* Loads the file and URL sources into a new set (fixed keys first). Installs it, bumping the
 * generation when a key of the old set is gone (the cache then forgets tokens it verified). */
static int load_sources(tb_jwt_verifier *v, tb_error *err)
{
    tb_jwks *file_ks = NULL, *url_ks = NULL, *old = NULL, *ks = NULL;
    tb_jwt_key **all = NULL;
    fetch_buf b = {0};
    int rc = 0;
    size_t skipped_file = 0, skipped_url = 0, secret_url = 0;
    if (v->jwks_file) {
        if ((rc = read_file(v->jwks_file, &b, err)) ||
            (rc = tb_jwks_parse(b.data ? b.data : "", b.len, v->jwks_alg, &file_ks,
                                &skipped_file, err)))
            goto fail;
        free(b.data);
        b = (fetch_buf){0};
    }
    if (v->jwks_url) {
        if ((rc = fetch_url(v, &b, err)) ||
            (rc = tb_jwks_parse(b.data ? b.data : "", b.len, v->jwks_alg, &url_ks, &skipped_url,
                                err)))
            goto fail;
    }
    size_t n = tb_jwks_count(v->fixed) + tb_jwks_count(file_ks) + tb_jwks_count(url_ks), at = 0;
    if (!(all = calloc(n + 1, sizeof *all))) {
        rc = tb_error_set(err, TB_JWT_EINTERNAL, "out of memory");
        goto fail;
    }
    const tb_jwks *parts[] = {v->fixed, file_ks, url_ks};
    for (size_t p = 0; p < 3; p++)
        for (size_t i = 0; i < tb_jwks_count(parts[p]); i++) {
            if (p == 2 && !parts[p]->keys[i]->pkey) {
                /* an HMAC secret served at a URL is public: anyone could sign with it */
                secret_url++;
                continue;
            }
            all[at++] = tb_jwt_key_ref(parts[p]->keys[i]);
        }
    n = at;
    /* said once per change, not at every reread */
    size_t said = skipped_file << 20 | skipped_url << 10 | secret_url;
    if (said != atomic_exchange(&v->last_skipped, said)) {
        if (skipped_file || skipped_url)
            tb_log_warn(NULL, "JWT key set %s: %zu key(s) skipped (an unknown kty or alg, use "
                              "\"enc\", a bad member, RSA under 2048 bits)",
                        skipped_file ? v->jwks_file : v->jwks_url, skipped_file + skipped_url);
        if (secret_url)
            tb_log_warn(NULL, "JWT key set %s: %zu symmetric (\"oct\") key(s) ignored: a key "
                              "served at a URL is public, and an HMAC secret made public lets "
                              "anyone sign tokens (give secrets with TB_JWT_SECRET or a file)",
                        v->jwks_url, secret_url);
    }
    if ((rc = tb__jwks_adopt(all, n, &ks))) {
        for (size_t i = 0; i < n; i++)
            tb_jwt_key_free(all[i]);
        tb_error_set(err, rc, "out of memory");
        goto fail;
    }
    pthread_mutex_lock(&v->lock);
    old = v->keys;
    v->keys = ks;
    pthread_mutex_unlock(&v->lock);
    atomic_fetch_add(&v->n_loads, 1);
    for (size_t i = 0; old && i < old->n; i++) {
        bool kept = false;
        for (size_t j = 0; !kept && j < ks->n; j++)
            kept = tb__jwt_key_same(old->keys[i], ks->keys[j]);
        if (!kept) {
            atomic_fetch_add(&v->generation, 1);
            break;
        }
    }
fail:
    tb_jwks_free(old);
    free(all);
    free(b.data);
    tb_jwks_free(url_ks);
    tb_jwks_free(file_ks);
    return rc;
}

/* A reread: on failure the current keys stay, and a warning says why (a failed fetch was
 * silent: requests only said they had no keys). */
static void reread_sources(tb_jwt_verifier *v)
{
    tb_error err = TB_ERROR_INIT;
    if (load_sources(v, &err) != 0)
        tb_log_warn(NULL, "JWT keys not reread (the current ones stay): %s", err.message);
    tb_error_deinit(&err);
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct timespec mono_at(int64_t ms)
{
    return (struct timespec){.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000};
}

/* The rereading thread: the sources every max_age_s, and at once when a request asks (want). */
static void *reread_main(void *arg)
{
    tb_jwt_verifier *v = arg;
    pthread_mutex_lock(&v->lock);
    while (!v->stop) {
        if (!v->want) {
            int64_t due = v->last_load_ms + (int64_t)v->max_age_s * 1000;
            if (v->max_age_s == 0) {
                pthread_cond_wait(&v->wake, &v->lock);
                continue;
            }
            if (mono_ms() < due) {
                struct timespec ts = mono_at(due);
                pthread_cond_timedwait(&v->wake, &v->lock, &ts);
                continue; /* woken, timed out or spurious: look again */
            }
        }
        v->want = false;
        pthread_mutex_unlock(&v->lock);
        pthread_mutex_lock(&v->fetch_lock);
        atomic_fetch_add(&v->n_fetch, 1);
        reread_sources(v);
        pthread_mutex_unlock(&v->fetch_lock);
        pthread_mutex_lock(&v->lock);
        v->last_load_ms = mono_ms();
        v->rereads++;
        pthread_cond_broadcast(&v->reread);
    }
    pthread_mutex_unlock(&v->lock);
    return NULL;
}

/* An unknown kid, with the rereading thread: asks it for a reread when the rate limit allows,
 * and waits for the reread in flight at most min(fetch_timeout, 1 s), so a slow or hanging
 * source does not hold the request (nor the other connections of its server thread) for the
 * whole fetch. True when a reread ended meanwhile: the caller looks at the keys again. */
static bool ask_reread(tb_jwt_verifier *v)
{
    pthread_mutex_lock(&v->lock);
    int64_t now = now_s(v);
    bool due = now - v->last_fetch >= v->refetch_interval_s ||
               now < v->last_fetch; /* the clock went back */
    if (due) {
        v->last_fetch = now;
        v->want = true;
        pthread_cond_signal(&v->wake);
    }
    if (!due && !v->want) { /* none asked for and none waiting to start */
        pthread_mutex_unlock(&v->lock);
        return false;
    }
    uint64_t seen = v->rereads;
    struct timespec ts =
        mono_at(mono_ms() + (v->fetch_timeout_ms < 1000 ? v->fetch_timeout_ms : 1000));
    while (v->rereads == seen && !v->stop)
        if (pthread_cond_timedwait(&v->reread, &v->lock, &ts) == ETIMEDOUT)
            break;
    bool got = v->rereads != seen;
    pthread_mutex_unlock(&v->lock);
    return got;
}

/* Refetches when the rate limit allows; true when it did (whatever the outcome) or when
 * another thread installed new keys while this one waited for the fetch lock: either way the
 * caller looks at the keys again. With the rereading thread, it asks that thread instead. */
static bool maybe_refetch(tb_jwt_verifier *v)
{
    if (!v->jwks_file && !v->jwks_url)
        return false;
    if (v->thread_on) /* set before the verifier is shared, never changed while it is */
        return ask_reread(v);
    uint_fast64_t loads = atomic_load(&v->n_loads);
    pthread_mutex_lock(&v->fetch_lock);
    if (atomic_load(&v->n_loads) != loads) {
        pthread_mutex_unlock(&v->fetch_lock);
        return true;
    }
    int64_t now = now_s(v);
    pthread_mutex_lock(&v->lock);
    bool due = now - v->last_fetch >= v->refetch_interval_s ||
               now < v->last_fetch; /* the clock went back */
    if (due)
        v->last_fetch = now;
    pthread_mutex_unlock(&v->lock);
    if (due) {
        atomic_fetch_add(&v->n_fetch, 1);
        reread_sources(v);
    }
    pthread_mutex_unlock(&v->fetch_lock);
    return due;
}

static tb_jwks *current_keys(tb_jwt_verifier *v)
{
    pthread_mutex_lock(&v->lock);
    tb_jwks *ks = v->keys;
    atomic_fetch_add(&ks->refs, 1);
    pthread_mutex_unlock(&v->lock);
    return ks;
}

tb_jwks *tb_jwt_verifier_keys(tb_jwt_verifier *v)
{
    return v ? current_keys(v) : NULL;
}

int tb_jwt_verifier_reload(tb_jwt_verifier *v, tb_error *err)
{
    if (!v)
        return tb_error_set(err, TB_JWT_EARG, "no verifier");
    pthread_mutex_lock(&v->fetch_lock);
    int64_t now = now_s(v);
    pthread_mutex_lock(&v->lock);
    v->last_fetch = now;
    v->last_load_ms = mono_ms(); /* the thread's next periodic reread counts from here */
    pthread_mutex_unlock(&v->lock);
    atomic_fetch_add(&v->n_fetch, 1);
    int rc = load_sources(v, err);
    pthread_mutex_unlock(&v->fetch_lock);
    return rc;
}

/* ---- verifier lifecycle ---- */

static char *dup_opt(const char *s, bool *oom)
{
    char *d = s ? strdup(s) : NULL;
    if (s && !d)
        *oom = true;
    return d;
}

int tb_jwt_verifier_new(const tb_jwt_verifier_opts *opts, tb_jwt_verifier **out, tb_error *err)
{
    tb_jwt_verifier *v = NULL;
    tb_jwks *inline_ks = NULL;
    tb_jwt_key **fixed = NULL;
    bool oom = false;
    int rc = 0;
    if (out)
        *out = NULL;
    if (!opts || !out || (opts->n_keys && !opts->keys) || opts->leeway_s < 0 ||
        opts->refetch_interval_s < 0 || opts->max_token == 0 || opts->jwks_max_age_s < 0)
        return tb_error_set(err, TB_JWT_EARG, "tb_jwt_verifier_new: bad options");
    if (!opts->jwks_json && !opts->jwks_file && !opts->jwks_url && !opts->n_keys)
        return tb_error_set(err, TB_JWT_EARG, "tb_jwt_verifier_new: no key source");
    if (!(v = calloc(1, sizeof *v)))
        return tb_error_set(err, TB_JWT_EINTERNAL, "out of memory");
    pthread_mutex_init(&v->lock, NULL);
    pthread_mutex_init(&v->fetch_lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&v->wake, &ca);
    pthread_cond_init(&v->reread, &ca);
    pthread_condattr_destroy(&ca);
    v->max_age_s = opts->jwks_max_age_s;
    v->issuer = dup_opt(opts->issuer, &oom);
    v->audience = dup_opt(opts->audience, &oom);
    v->typ = dup_opt(opts->typ, &oom);
    v->jwks_file = dup_opt(opts->jwks_file, &oom);
    v->jwks_url = dup_opt(opts->jwks_url, &oom);
    v->jwks_ca_file = dup_opt(opts->jwks_ca_file, &oom);
    for (const char *const *r = opts->required_claims; r && *r; r++)
        v->n_required++;
    if (v->n_required && !(v->required = calloc(v->n_required, sizeof *v->required)))
        oom = true;
    for (size_t i = 0; v->required && i < v->n_required; i++)
        v->required[i] = dup_opt(opts->required_claims[i], &oom);
    v->jwks_alg = opts->jwks_alg;
    v->alg_mask = opts->alg_mask;
    v->require_exp = opts->require_exp;
    v->leeway_s = opts->leeway_s;
    v->refetch_interval_s = opts->refetch_interval_s;
    v->max_token = opts->max_token;
    v->fetch_timeout_ms = opts->fetch_timeout_ms > 0 ? opts->fetch_timeout_ms : 5000;
    v->clock = opts->clock;
    v->clock_ctx = opts->clock_ctx;
    v->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    if (oom || !v->sha256 || cache_init(v, opts->cache_size)) {
        rc = tb_error_set(err, TB_JWT_EINTERNAL, "out of memory");
        goto fail;
    }
    if (opts->jwks_json && (rc = tb_jwks_parse(opts->jwks_json, strlen(opts->jwks_json),
                                               opts->jwks_alg, &inline_ks, NULL, err)))
        goto fail;
    size_t n = opts->n_keys + tb_jwks_count(inline_ks), at = 0;
    if (!(fixed = calloc(n + 1, sizeof *fixed))) {
        rc = tb_error_set(err, TB_JWT_EINTERNAL, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < opts->n_keys; i++) {
        if (!opts->keys[i]) {
            rc = tb_error_set(err, TB_JWT_EARG, "keys[%zu] is NULL", i);
            goto fail;
        }
        fixed[at++] = opts->keys[i];
    }
    for (size_t i = 0; i < tb_jwks_count(inline_ks); i++)
        fixed[at++] = inline_ks->keys[i];
    if ((rc = tb_jwks_new(fixed, n, &v->fixed)) || (rc = tb_jwks_new(fixed, n, &v->keys))) {
        rc = tb_error_set(err, TB_JWT_EINTERNAL, "out of memory");
        goto fail;
    }
    if (v->jwks_file || v->jwks_url) {
        v->last_fetch = now_s(v);
        rc = load_sources(v, err);
        if (rc && !(v->jwks_url && rc == TB_JWT_EFETCH && !v->jwks_file))
            goto fail;
        if (rc) /* the first use fetches again, then the rate limit holds */
            v->last_fetch -= v->refetch_interval_s;
        rc = 0;
        v->last_load_ms = mono_ms();
        /* without the thread (it could not start), rereads happen on the request, as before */
        v->thread_on = pthread_create(&v->thread, NULL, reread_main, v) == 0;
    }
    free(fixed);
    tb_jwks_free(inline_ks);
    *out = v;
    return 0;
fail:
    free(fixed);
    tb_jwks_free(inline_ks);
    tb_jwt_verifier_free(v);
    return rc;
}

void tb_jwt_verifier_free(tb_jwt_verifier *v)
{
    if (!v)
        return;
    if (v->thread_on) {
        pthread_mutex_lock(&v->lock);
        v->stop = true;
        pthread_cond_broadcast(&v->wake);
        pthread_cond_broadcast(&v->reread);
        pthread_mutex_unlock(&v->lock);
        pthread_join(v->thread, NULL);
    }
    pthread_cond_destroy(&v->wake);
    pthread_cond_destroy(&v->reread);
    cache_free(v);
    EVP_MD_free(v->sha256);
    tb_jwks_free(v->keys);
    tb_jwks_free(v->fixed);
    for (size_t i = 0; v->required && i < v->n_required; i++)
        free(v->required[i]);
    free(v->required);
    free(v->jwks_url);
    free(v->jwks_file);
    free(v->typ);
    free(v->audience);
    free(v->jwks_ca_file);
    free(v->issuer);
    pthread_mutex_destroy(&v->fetch_lock);
    pthread_mutex_destroy(&v->lock);
    free(v);
}

void tb_jwt_verifier_stats(tb_jwt_verifier *v, tb_jwt_stats *out)
{
    if (!out)
        return;
    memset(out, 0, sizeof *out);
    if (!v)
        return;
    out->signature_checks = atomic_load(&v->n_sig);
    out->cache_hits = atomic_load(&v->n_hit);
    out->cache_misses = atomic_load(&v->n_miss);
    out->fetches = atomic_load(&v->n_fetch);
    out->refused = atomic_load(&v->n_refused);
}

/* ---- verification ---- */

/* Parses a decoded segment as a JSON object. */
static int parse_object(const unsigned char *buf, size_t len, const char *what, json_t **out,
                        tb_error *err)
{
    json_error_t jerr;
    json_t *j = json_loadb((const char *)buf, len, JSON_REJECT_DUPLICATES, &jerr);
    *out = NULL;
    if (!j) {
        if (json_error_code(&jerr) == json_error_duplicate_key)
            return tb_error_set(err, TB_JWT_EDUPKEY, "%s: %s", what, jerr.text);
        return tb_error_set(err, TB_JWT_EJSON, "%s is not JSON: %s", what, jerr.text);
    }
    if (!json_is_object(j)) {
        json_decref(j);
        return tb_error_set(err, TB_JWT_EJSON, "%s is not a JSON object", what);
    }
    *out = j;
    return 0;
}

static bool typ_matches(const char *want, const char *got)
{
    if (strncasecmp(got, "application/", 12) == 0)
        got += 12;
    if (strncasecmp(want, "application/", 12) == 0)
        want += 12;
    return strcasecmp(want, got) == 0;
}

static int check_header(const tb_jwt_verifier *v, const json_t *h, tb_jwt_alg *alg,
                        const char **kid, tb_error *err)
{
    const json_t *jalg = json_object_get(h, "alg"), *jkid = json_object_get(h, "kid");
    const json_t *typ = json_object_get(h, "typ");
    if (!json_is_string(jalg))
        return tb_error_set(err, TB_JWT_EMALFORMED, "header without a string alg");
    if (json_object_get(h, "crit"))
        return tb_error_set(err, TB_JWT_ECRIT, "header has crit; no extension is understood");
    if (json_object_get(h, "enc"))
        return tb_error_set(err, TB_JWT_EJWE, "header has enc (a JWE)");
    *alg = tb_jwt_alg_parse(json_string_value(jalg));
    if (*alg == TB_JWT_ALG_UNKNOWN)
        return tb_error_set(err, TB_JWT_EALG, "alg %.32s not allowed", json_string_value(jalg));
    if (v->alg_mask && !(v->alg_mask & (1u << *alg)))
        return tb_error_set(err, TB_JWT_EALG, "alg %s not allowed here", tb_jwt_alg_name(*alg));
    if (jkid && !json_is_string(jkid))
        return tb_error_set(err, TB_JWT_EMALFORMED, "kid is not a string");
    *kid = json_string_value(jkid);
    if (typ && !json_is_string(typ))
        return tb_error_set(err, TB_JWT_ETYP, "typ is not a string");
    if (v->typ && (!typ || !typ_matches(v->typ, json_string_value(typ))))
        return tb_error_set(err, TB_JWT_ETYP, "typ must be %s", v->typ);
    return 0;
}

/* NumericDate claim: absent (0), a number (1), or TB_JWT_EBADCLAIM. */
static int date_claim(const json_t *p, const char *name, double *out, tb_error *err)
{
    const json_t *j = json_object_get(p, name);
    if (!j)
        return 0;
    if (!json_is_number(j) || !isfinite(json_number_value(j)))
        return tb_error_set(err, TB_JWT_EBADCLAIM, "%s is not a NumericDate", name);
    *out = json_number_value(j);
    return 1;
}

static int check_times(const tb_jwt_verifier *v, const tb_jwt_claims *c, int64_t now, tb_error *err)
{
    double t = (double)now, leeway = v->leeway_s;
    if (c->has_exp && t >= c->exp + leeway)
        return tb_error_set(err, TB_JWT_EEXPIRED, "token expired at %.0f (now %lld)", c->exp,
                            (long long)now);
    if (c->has_nbf && t + leeway < c->nbf)
        return tb_error_set(err, TB_JWT_ENOTYET, "token not valid before %.0f (now %lld)", c->nbf,
                            (long long)now);
    return 0;
}

/* Whether `got` is one of the comma-separated audiences `want`. */
static bool audience_ok(const char *want, const char *got)
{
    size_t gl = strlen(got);
    for (const char *p = want; *p;) {
        size_t l = strcspn(p, ",");
        if (l == gl && memcmp(p, got, l) == 0)
            return true;
        p += l;
        if (*p == ',')
            p++;
    }
    return false;
}

static int check_claims(const tb_jwt_verifier *v, const json_t *p, int64_t now, tb_error *err)
{
    double exp = 0, nbf = 0, iat = 0, t = (double)now, leeway = v->leeway_s;
    int has_exp = date_claim(p, "exp", &exp, err);
    int has_nbf = date_claim(p, "nbf", &nbf, err);
    int has_iat = date_claim(p, "iat", &iat, err);
    if (has_exp < 0 || has_nbf < 0 || has_iat < 0)
        return TB_JWT_EBADCLAIM;
    if (!has_exp && v->require_exp)
        return tb_error_set(err, TB_JWT_EMISSINGCLAIM, "exp is required");
    if (has_exp && t >= exp + leeway)
        return tb_error_set(err, TB_JWT_EEXPIRED, "token expired at %.0f (now %lld)", exp,
                            (long long)now);
    if (has_nbf && t + leeway < nbf)
        return tb_error_set(err, TB_JWT_ENOTYET, "token not valid before %.0f (now %lld)", nbf,
                            (long long)now);
    if (has_iat && iat > t + leeway)
        return tb_error_set(err, TB_JWT_EIATFUTURE, "token issued at %.0f (now %lld)", iat,
                            (long long)now);
    static const char *const strings[] = {"iss", "sub", "jti"};
    for (size_t i = 0; i < sizeof strings / sizeof strings[0]; i++) {
        const json_t *j = json_object_get(p, strings[i]);
        if (j && !json_is_string(j))
            return tb_error_set(err, TB_JWT_EBADCLAIM, "%s is not a string", strings[i]);
    }
    if (v->issuer) {
        const char *iss = json_string_value(json_object_get(p, "iss"));
        if (!iss)
            return tb_error_set(err, TB_JWT_EMISSINGCLAIM, "iss is required");
        if (strcmp(iss, v->issuer) != 0)
            return tb_error_set(err, TB_JWT_EISSUER, "iss must be %s", v->issuer);
    }
    const json_t *aud = json_object_get(p, "aud");
    if (aud && !json_is_string(aud) && !json_is_array(aud))
        return tb_error_set(err, TB_JWT_EBADCLAIM, "aud is not a string or an array");
    if (v->audience) {
        bool ok = false;
        if (!aud)
            return tb_error_set(err, TB_JWT_EMISSINGCLAIM, "aud is required");
        if (json_is_string(aud)) {
            ok = audience_ok(v->audience, json_string_value(aud));
        } else {
            size_t i;
            json_t *a;
            json_array_foreach(aud, i, a)
            {
                if (!json_is_string(a))
                    return tb_error_set(err, TB_JWT_EBADCLAIM, "aud holds a non-string");
                ok = ok || audience_ok(v->audience, json_string_value(a));
            }
        }
        if (!ok)
            return tb_error_set(err, TB_JWT_EAUDIENCE, "aud must include %s%s",
                                strchr(v->audience, ',') ? "one of " : "", v->audience);
    }
    for (size_t i = 0; i < v->n_required; i++)
        if (!json_object_get(p, v->required[i]))
            return tb_error_set(err, TB_JWT_EMISSINGCLAIM, "%s is required", v->required[i]);
    return 0;
}

/* Checks the signature against the key named by kid, or against the keys pinned to alg when
 * the token has no kid. An unknown kid (or an empty key set) refetches, rate limited. */
static int check_signature(tb_jwt_verifier *v, tb_jwt_alg alg, const char *kid, const char *input,
                           size_t input_len, const unsigned char *sig, size_t sig_len,
                           tb_error *err)
{
    tb_jwks *ks = current_keys(v);
    int rc = 0;
    bool refetched = false;
again:;
    tb_jwt_key *cand[MAX_CANDIDATES];
    size_t n = 0;
    bool kid_seen = false, kid_exact = false;
    for (size_t i = 0; i < ks->n && n < MAX_CANDIDATES; i++) {
        tb_jwt_key *k = ks->keys[i];
        if (kid && k->kid && strcmp(k->kid, kid) != 0) /* a key without kid fits any */
            continue;
        kid_seen = true;
        /* only a key of that very kid stops a refetch: a kid-less key (a configured secret or
         * PEM) beside a JWKS must not keep a rotated-in kid from being fetched */
        kid_exact = kid_exact || (kid && k->kid);
        if (k->alg == alg)
            cand[n++] = k;
    }
    if (!n && !refetched && (ks->n == 0 || (kid && !kid_exact)) && maybe_refetch(v)) {
        refetched = true;
        tb_jwks_free(ks);
        ks = current_keys(v);
        goto again;
    }
    if (!n) {
        if (ks->n == 0)
            rc = tb_error_set(err, TB_JWT_ENOKEY, "no keys loaded");
        else if (kid && !kid_seen)
            rc = tb_error_set(err, TB_JWT_EKID, "no key with kid %.64s", kid);
        else
            rc = tb_error_set(err, TB_JWT_EALG, "no key for alg %s%s%.64s", tb_jwt_alg_name(alg),
                              kid ? " with kid " : "", kid ? kid : "");
        goto out;
    }
    rc = TB_JWT_ESIG;
    for (size_t i = 0; i < n && rc == TB_JWT_ESIG; i++) {
        atomic_fetch_add(&v->n_sig, 1);
        rc = tb__jwt_sig_verify(cand[i], input, input_len, sig, sig_len);
    }
    if (rc)
        tb_error_set(err, rc, "%s",
                     rc == TB_JWT_ESIG ? "signature does not verify" : "signature check failed");
out:
    tb_jwks_free(ks);
    return rc;
}

static int verify(tb_jwt_verifier *v, const char *token, size_t len, tb_jwt_claims **out,
                  tb_error *err)
{
    unsigned char digest[SHA256_DIGEST_LENGTH];
    unsigned char *hbuf = NULL, *pbuf = NULL, *sbuf = NULL;
    size_t hlen = 0, plen = 0, slen = 0;
    json_t *hdr = NULL, *payload = NULL;
    tb_jwt_claims *c = NULL;
    const char *kid = NULL;
    tb_jwt_alg alg = TB_JWT_ALG_UNKNOWN;
    int rc;

    if (!token || len == 0)
        return tb_error_set(err, TB_JWT_EMISSING, "no token");
    if (len > v->max_token)
        return tb_error_set(err, TB_JWT_ETOOLARGE, "token of %zu bytes (limit %zu)", len,
                            v->max_token);
    const char *dot[4];
    size_t ndots = 0;
    for (size_t i = 0; i < len; i++)
        if (token[i] == '.' && ndots++ < 4)
            dot[ndots - 1] = token + i;
    if (ndots == 4)
        return tb_error_set(err, TB_JWT_EJWE, "five segments: an encrypted token (JWE)");
    if (ndots != 2)
        return tb_error_set(err, TB_JWT_EMALFORMED, "%zu segments, a JWS has 3", ndots + 1);
    const char *h = token, *p = dot[0] + 1, *s = dot[1] + 1;
    size_t hl = (size_t)(dot[0] - h), pl = (size_t)(dot[1] - p), sl = (size_t)(token + len - s);
    if (!hl || !pl) /* an empty signature is refused after the alg check (alg none) */
        return tb_error_set(err, TB_JWT_EMALFORMED, "empty %s segment", !hl ? "header" : "payload");
    if (!tb__b64url_valid(h, hl) || !tb__b64url_valid(p, pl) || !tb__b64url_valid(s, sl))
        return tb_error_set(err, TB_JWT_EBASE64, "%s segment is not strict base64url",
                            !tb__b64url_valid(h, hl)   ? "header"
                            : !tb__b64url_valid(p, pl) ? "payload"
                                                       : "signature");
    int64_t now = now_s(v);
    uint64_t gen = atomic_load(&v->generation);
    if (v->shards) {
        if (EVP_Digest(token, len, digest, NULL, v->sha256, NULL) != 1) {
            rc = tb_error_set(err, TB_JWT_EINTERNAL, "SHA-256 failed");
            goto fail;
        }
        if ((c = cache_get(v, digest))) {
            atomic_fetch_add(&v->n_hit, 1);
            if ((rc = check_times(v, c, now, err)))
                goto fail;
            *out = c;
            return 0;
        }
        atomic_fetch_add(&v->n_miss, 1);
    }
    if ((rc = tb__b64url_decode(h, hl, &hbuf, &hlen)) ||
        (rc = parse_object(hbuf, hlen, "header", &hdr, err)) ||
        (rc = check_header(v, hdr, &alg, &kid, err)) ||
        (!sl && (rc = tb_error_set(err, TB_JWT_EMALFORMED, "empty signature segment"))) ||
        (rc = tb__b64url_decode(s, sl, &sbuf, &slen)) ||
        (rc = check_signature(v, alg, kid, token, hl + 1 + pl, sbuf, slen, err)) ||
        (rc = tb__b64url_decode(p, pl, &pbuf, &plen)) ||
        (rc = parse_object(pbuf, plen, "payload", &payload, err)) ||
        (rc = check_claims(v, payload, now, err)))
        goto fail;
    if (!(c = claims_new(payload))) {
        payload = NULL;
        rc = tb_error_set(err, TB_JWT_EINTERNAL, "out of memory");
        goto fail;
    }
    payload = NULL;
    if (v->shards && c->has_exp)
        cache_put(v, digest, c, gen);
    *out = c;
    c = NULL;
fail:
    tb_jwt_claims_free(c);
    json_decref(payload);
    json_decref(hdr);
    free(sbuf);
    free(pbuf);
    free(hbuf);
    if (rc && err && err->code != rc) /* decode failures set no message */
        tb_error_set(err, rc, "%s", tb_jwt_strerror(rc));
    return rc;
}

int tb_jwt_verify(tb_jwt_verifier *v, const char *token, size_t len, tb_jwt_claims **claims,
                  tb_error *err)
{
    tb_jwt_claims *c = NULL;
    if (claims)
        *claims = NULL;
    if (err)
        tb_error_reset(err);
    if (!v)
        return tb_error_set(err, TB_JWT_EARG, "no verifier");
    int rc = verify(v, token, len, &c, err);
    if (rc) {
        atomic_fetch_add(&v->n_refused, 1);
        return rc;
    }
    if (claims)
        *claims = c;
    else
        tb_jwt_claims_free(c);
    return 0;
}

/* A whole number in 0..max from the environment into *out (unset or empty: *out stays). A
 * malformed value fails, naming the variable, as the client knobs do: a typo in a security
 * setting must not quietly become its default. */
static int env_uint(const char *name, unsigned long max, int *out, tb_error *err)
{
    const char *v = getenv(name);
    if (!v || !*v)
        return 0;
    char *end;
    errno = 0;
    unsigned long n = strtoul(v, &end, 10);
    if (errno || end == v || *end || v[0] == '-' || n > max)
        return tb_error_set(err, TB_JWT_EARG, "%s=%.64s: not a whole number in 0..%lu", name, v,
                            max);
    *out = (int)n;
    return 0;
}

static const char *env_set(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

int tb_jwt_verifier_from_env(tb_jwt_verifier **out, tb_error *err)
{
    *out = NULL;
    const char *url = env_set("TB_JWT_JWKS_URL"), *file = env_set("TB_JWT_JWKS_FILE"),
               *json = env_set("TB_JWT_JWKS"), *secret = env_set("TB_JWT_SECRET");
    if (!url && !file && !json && !secret)
        return 0;
    tb_jwt_verifier_opts o = TB_JWT_VERIFIER_OPTS_INIT;
    o.jwks_url = url;
    o.jwks_file = file;
    o.jwks_json = json;
    o.jwks_ca_file = env_set("TB_JWT_JWKS_CA_FILE");
    o.issuer = env_set("TB_JWT_ISSUER");
    o.audience = env_set("TB_JWT_AUDIENCE");
    o.typ = env_set("TB_JWT_TYP");
    int rc = 0;
    if ((rc = env_uint("TB_JWT_LEEWAY_S", 3600, &o.leeway_s, err)) ||
        (rc = env_uint("TB_JWT_REFETCH_S", 86400, &o.refetch_interval_s, err)) ||
        (rc = env_uint("TB_JWT_JWKS_MAX_AGE_S", 86400 * 7, &o.jwks_max_age_s, err)))
        return rc;
    /* TB_JWT_ALGS: the algorithms accepted, comma-separated JOSE names (RFC 8725 3.1) */
    const char *algs = env_set("TB_JWT_ALGS");
    for (const char *p = algs; p && *p;) {
        size_t l = strcspn(p, ",");
        char name[16];
        tb_jwt_alg a = TB_JWT_ALG_UNKNOWN;
        if (l > 0 && l < sizeof name) {
            memcpy(name, p, l);
            name[l] = '\0';
            a = tb_jwt_alg_parse(name);
        }
        if (a == TB_JWT_ALG_UNKNOWN)
            return tb_error_set(err, TB_JWT_EARG, "TB_JWT_ALGS=%.64s: '%.*s' is not an algorithm "
                                                  "(RS256, ES256, EdDSA, HS256...)",
                                algs, (int)(l > 16 ? 16 : l), p);
        o.alg_mask |= 1u << a;
        p += l;
        if (*p == ',')
            p++;
    }
    /* TB_JWT_REQUIRED_CLAIMS: claims every token must carry, comma-separated */
    char *req_text = NULL;
    const char *req_list[17] = {NULL};
    const char *req = env_set("TB_JWT_REQUIRED_CLAIMS");
    if (req) {
        if (!(req_text = strdup(req)))
            return tb_error_set(err, TB_JWT_EINTERNAL, "out of memory");
        size_t n = 0;
        for (char *save = NULL, *t = strtok_r(req_text, ",", &save); t;
             t = strtok_r(NULL, ",", &save)) {
            if (n == 16) {
                free(req_text);
                return tb_error_set(err, TB_JWT_EARG, "TB_JWT_REQUIRED_CLAIMS: 16 claims at most");
            }
            req_list[n++] = t;
        }
        o.required_claims = req_list;
    }
    if (!o.audience) /* RFC 8725 3.9: a token for another service must not pass here */
        tb_log_warn(NULL, "TB_JWT_AUDIENCE is unset: tokens issued for any audience (another "
                          "service's included) are accepted; set it to the name this service's "
                          "tokens carry in aud");
    tb_jwt_key *key = NULL;
    if (secret) {
        const char *an = env_set("TB_JWT_ALG");
        tb_jwt_alg alg = tb_jwt_alg_parse(an ? an : "HS256");
        if (alg != TB_JWT_HS256 && alg != TB_JWT_HS384 && alg != TB_JWT_HS512) {
            free(req_text);
            return tb_error_set(err, TB_JWT_EARG, "TB_JWT_ALG=%.32s: a secret verifies HS256, "
                                                  "HS384 or HS512", an);
        }
        rc = tb_jwt_key_from_secret(secret, strlen(secret), alg, NULL, &key, err);
        if (rc != 0) {
            free(req_text);
            return rc;
        }
        o.keys = &key;
        o.n_keys = 1;
    }
    rc = tb_jwt_verifier_new(&o, out, err);
    tb_jwt_key_free(key);
    free(req_text);
    return rc;
}

int tb_jwt_verifier_leeway_s(const tb_jwt_verifier *v)
{
    return v ? v->leeway_s : 0;
}
