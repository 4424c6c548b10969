/*
 * tablium side of the validate benchmark: documents per second of the generated validators
 * (gen/events) on the shared corpus (bench/validate/gen-corpus.js).
 *
 *   bench_validate --corpus FILE [--seconds S] [--warmup S] [--runs N] [--verdicts FILE]
 *                  [--results FILE] [--formats] [--by-schema] [--no-header]
 *                  [--only validate|parse+validate] [--passes N]
 *
 * Same protocol as ajv.js:
 *   validate        <type>_validate(doc, flags, NULL) on documents parsed once, before timing;
 *   parse+validate  tb_json_loadb(text) + <type>_validate + json_decref on the same text;
 * each: a warm-up, then `runs` timed runs of at least `seconds` each (whole passes over the
 * corpus), best run reported. --verdicts writes one '1'/'0' per document (run.sh compares them
 * with ajv's); --results writes "validate <docs/s>" and "parse+validate <docs/s>" lines.
 * flags: 0 (first error, formats as annotations), --formats: TB_VALIDATE_FORMATS.
 * --by-schema: also the validate figure of each event schema alone (shorter runs).
 * --only MODE: measure one mode only; --passes N: exactly N passes per run and no warm-up
 * (deterministic work for perf record / valgrind --tool=callgrind --toggle-collect=pass_validate).
 */
#include "events/events.h"
#include "tablium/json.h"
#include "tablium/validate.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifndef TB_BENCH_BUILD
#define TB_BENCH_BUILD "unknown build"
#endif

typedef int (*validate_fn)(const json_t *j, unsigned flags, tb_error *err);

/* Event name (schemas/events/<name>.json) -> generated validator. */
static const struct {
    const char *name;
    validate_fn fn;
} EVENTS[] = {
    {"game.completed.v1", game_completed_v1_validate},
    {"game.created.v1", game_created_v1_validate},
    {"game.move.made.v1", game_move_made_v1_validate},
    {"game.started.v1", game_started_v1_validate},
    {"user.achievements.earned.v1", user_achievements_earned_v1_validate},
    {"user.profile.updated.v1", user_profile_updated_v1_validate},
    {"user.registered.v1", user_registered_v1_validate},
    {"user.registered.v2", user_registered_v2_validate},
    {"wallet.balance.updated.v1", wallet_balance_updated_v1_validate},
    {"wallet.created.v1", wallet_created_v1_validate},
    {"wallet.transaction.created.v1", wallet_transaction_created_v1_validate},
};
#define NEVENTS (sizeof EVENTS / sizeof EVENTS[0])

typedef struct doc {
    validate_fn fn;
    size_t event; /* index into EVENTS */
    json_t *j;    /* pre-parsed */
    char *text;
    size_t len;
} doc;

typedef struct corpus {
    doc *d;
    size_t n;
    size_t nvalid; /* what every pass must count */
    unsigned flags;
} corpus;

static void die(const char *fmt, const char *a)
{
    fprintf(stderr, "bench_validate: ");
    fprintf(stderr, fmt, a);
    fputc('\n', stderr);
    exit(1);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void pass_validate(const corpus *c)
{
    size_t v = 0;
    for (size_t i = 0; i < c->n; i++)
        v += c->d[i].fn(c->d[i].j, c->flags, NULL) == 0;
    if (v != c->nvalid) {
        fprintf(stderr, "bench_validate: validate: %zu valid documents in a pass, expected %zu\n", v,
                c->nvalid);
        exit(1);
    }
}

static void pass_parse_validate(const corpus *c)
{
    size_t v = 0;
    for (size_t i = 0; i < c->n; i++) {
        json_t *j = tb_json_loadb(c->d[i].text, c->d[i].len, NULL);
        if (!j) {
            fprintf(stderr, "bench_validate: document %zu does not parse\n", i);
            exit(1);
        }
        v += c->d[i].fn(j, c->flags, NULL) == 0;
        json_decref(j);
    }
    if (v != c->nvalid) {
        fprintf(stderr,
                "bench_validate: parse+validate: %zu valid documents in a pass, expected %zu\n", v,
                c->nvalid);
        exit(1);
    }
}

static long fixed_passes; /* --passes: exactly this many passes per run, no warm-up (callgrind) */

/* Whole passes for at least `seconds`; returns documents per second. */
static double timed(void (*pass)(const corpus *), const corpus *c, double seconds)
{
    size_t docs = 0;
    long n = 0;
    double t0 = now(), el;
    do {
        pass(c);
        docs += c->n;
        el = now() - t0;
    } while (fixed_passes ? ++n < fixed_passes : el < seconds);
    return (double)docs / el;
}

static double best_of(void (*pass)(const corpus *), const corpus *c, double warmup,
                      double seconds, int runs, double *each)
{
    double best = 0;
    if (!fixed_passes)
        timed(pass, c, warmup);
    for (int r = 0; r < runs; r++) {
        each[r] = timed(pass, c, seconds);
        if (each[r] > best)
            best = each[r];
    }
    return best;
}

static void print_line(const char *name, double best, const double *each, int runs)
{
    printf("  tablium %-15s %9.0f docs/s (%.0f ns/doc; runs ", name, best, 1e9 / best);
    for (int r = 0; r < runs; r++)
        printf("%s%.0f", r ? ", " : "", each[r]);
    printf(")\n");
}

int main(int argc, char **argv)
{
    const char *corpus_path = NULL, *verdicts_path = NULL, *results_path = NULL;
    double seconds = 2, warmup = 1;
    int runs = 3, by_schema = 0, header = 1;
    int only = 0; /* --only: 1 validate, 2 parse+validate */
    unsigned flags = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has = i + 1 < argc;
        if (!strcmp(a, "--corpus") && has)
            corpus_path = argv[++i];
        else if (!strcmp(a, "--seconds") && has)
            seconds = atof(argv[++i]);
        else if (!strcmp(a, "--warmup") && has)
            warmup = atof(argv[++i]);
        else if (!strcmp(a, "--runs") && has)
            runs = atoi(argv[++i]);
        else if (!strcmp(a, "--verdicts") && has)
            verdicts_path = argv[++i];
        else if (!strcmp(a, "--results") && has)
            results_path = argv[++i];
        else if (!strcmp(a, "--formats"))
            flags |= TB_VALIDATE_FORMATS;
        else if (!strcmp(a, "--passes") && has)
            fixed_passes = atol(argv[++i]);
        else if (!strcmp(a, "--only") && has) {
            const char *m = argv[++i];
            only = !strcmp(m, "validate") ? 1 : !strcmp(m, "parse+validate") ? 2 : -1;
            if (only < 0)
                die("--only %s: validate or parse+validate", m);
        } else if (!strcmp(a, "--by-schema"))
            by_schema = 1;
        else if (!strcmp(a, "--no-header"))
            header = 0;
        else
            die("unknown or incomplete argument %s (usage: bench_validate --corpus FILE [--seconds S] "
                "[--warmup S] [--runs N] [--verdicts FILE] [--results FILE] [--formats] [--by-schema] "
                "[--no-header] [--only validate|parse+validate] [--passes N])",
                a);
    }
    if (!corpus_path)
        die("%s", "--corpus FILE is required");
    if (runs < 1 || runs > 100 || !(seconds > 0) || !(warmup >= 0))
        die("%s", "bad --runs/--seconds/--warmup");

    json_error_t je;
    json_t *all = json_load_file(corpus_path, 0, &je);
    if (!all)
        die("cannot read the corpus: %s", je.text);
    if (!json_is_array(all) || json_array_size(all) == 0)
        die("%s: not a non-empty JSON array", corpus_path);

    corpus c = {0};
    c.n = json_array_size(all);
    c.flags = flags;
    c.d = calloc(c.n, sizeof *c.d);
    if (!c.d)
        die("%s", "out of memory");
    for (size_t i = 0; i < c.n; i++) {
        json_t *e = json_array_get(all, i);
        const char *schema = json_string_value(json_object_get(e, "schema"));
        json_t *text = json_object_get(e, "text");
        if (!schema || !json_is_string(text))
            die("%s: an entry lacks \"schema\" or \"text\"", corpus_path);
        size_t k = 0;
        while (k < NEVENTS && strcmp(EVENTS[k].name, schema) != 0)
            k++;
        if (k == NEVENTS)
            die("no generated validator for schema %s: add it to EVENTS in bench/validate/bench_validate.c",
                schema);
        doc *d = &c.d[i];
        d->fn = EVENTS[k].fn;
        d->event = k;
        d->len = json_string_length(text);
        d->text = malloc(d->len + 1);
        if (!d->text)
            die("%s", "out of memory");
        memcpy(d->text, json_string_value(text), d->len + 1);
        tb_error err = TB_ERROR_INIT;
        d->j = tb_json_loadb(d->text, d->len, &err); /* pre-parsed, outside the timed loops */
        if (!d->j)
            die("a corpus document does not parse: %s", err.message);
        tb_error_deinit(&err);
    }
    json_decref(all);

    /* verdicts, and the number of valid documents every pass must see */
    char *verdicts = malloc(c.n + 2);
    if (!verdicts)
        die("%s", "out of memory");
    for (size_t i = 0; i < c.n; i++) {
        int ok = c.d[i].fn(c.d[i].j, flags, NULL) == 0;
        verdicts[i] = ok ? '1' : '0';
        c.nvalid += ok;
    }
    verdicts[c.n] = '\n';
    verdicts[c.n + 1] = '\0';
    if (verdicts_path) {
        FILE *f = fopen(verdicts_path, "w");
        if (!f || fputs(verdicts, f) == EOF || fclose(f) != 0)
            die("cannot write %s", verdicts_path);
    }
    free(verdicts);

    if (header)
        printf("tablium (jansson %s, %s): %zu schemas; %zu docs, %zu valid; formats %s\n",
               JANSSON_VERSION, TB_BENCH_BUILD, NEVENTS, c.n, c.nvalid,
               (flags & TB_VALIDATE_FORMATS) ? "asserted" : "annotation");
    fflush(stdout);

    double each[100], v = 0, pv = 0;
    if (only != 2) {
        v = best_of(pass_validate, &c, warmup, seconds, runs, each);
        print_line("validate", v, each, runs);
        fflush(stdout);
    }
    if (only != 1) {
        pv = best_of(pass_parse_validate, &c, warmup, seconds, runs, each);
        print_line("parse+validate", pv, each, runs);
        fflush(stdout);
    }

    if (by_schema) {
        /* each event alone: a sub-corpus of its documents, shorter runs */
        corpus s = c;
        s.d = calloc(c.n, sizeof *s.d);
        if (!s.d)
            die("%s", "out of memory");
        for (size_t k = 0; k < NEVENTS; k++) {
            s.n = 0;
            s.nvalid = 0;
            for (size_t i = 0; i < c.n; i++)
                if (c.d[i].event == k) {
                    s.d[s.n++] = c.d[i];
                    s.nvalid += c.d[i].fn(c.d[i].j, flags, NULL) == 0;
                }
            if (!s.n)
                continue;
            double r = best_of(pass_validate, &s, warmup / 4, seconds / 4, runs, each);
            printf("    tablium %-30s %9.0f docs/s (%4.0f ns/doc, %zu docs)\n", EVENTS[k].name, r,
                   1e9 / r, s.n);
        }
        free(s.d);
    }

    if (results_path) {
        FILE *f = fopen(results_path, "w");
        if (!f || (only != 2 && fprintf(f, "validate %.3f\n", v) < 0) ||
            (only != 1 && fprintf(f, "parse+validate %.3f\n", pv) < 0) || fclose(f) != 0)
            die("cannot write %s", results_path);
    }
    for (size_t i = 0; i < c.n; i++) {
        json_decref(c.d[i].j);
        free(c.d[i].text);
    }
    free(c.d);
    return 0;
}
