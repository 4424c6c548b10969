/*
 * Runs the JSON Schema Test Suite cases compiled by run_suite.py: for every test of every
 * compiled case, validates the test's data with the generated validator and compares the verdict
 * with the test's "valid". Prints each failure and a summary line.
 */
#include "tablium/validate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int (*case_fn)(const json_t *j, unsigned flags, tb_error *err);

typedef struct suite_case {
    const char *file;  /* test file name, e.g. "ref.json" */
    int index;         /* case index in the file */
    case_fn fn;        /* NULL when the generator refused the schema */
    const char *why;   /* generator's reason when fn is NULL */
} suite_case;

extern const suite_case suite_cases[];
extern const int suite_ncases;

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s TESTS_DIR SKIPPED_TESTS\n", argv[0]);
        return 2;
    }
    const char *dir = argv[1];
    long skipped = atol(argv[2]);
    long passed = 0, failed = 0;
    const char *cur_file = NULL;
    json_t *doc = NULL;
    tb_error err = TB_ERROR_INIT;
    for (int i = 0; i < suite_ncases; i++) {
        const suite_case *sc = &suite_cases[i];
        if (!cur_file || strcmp(cur_file, sc->file) != 0) {
            json_decref(doc);
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", dir, sc->file);
            json_error_t je;
            doc = json_load_file(path, JSON_ALLOW_NUL, &je);
            if (!doc) {
                fprintf(stderr, "cannot load %s: %s\n", path, je.text);
                return 2;
            }
            cur_file = sc->file;
        }
        json_t *c = json_array_get(doc, (size_t)sc->index);
        json_t *tests = json_object_get(c, "tests");
        size_t k;
        json_t *t;
        json_array_foreach(tests, k, t) {
            bool want = json_is_true(json_object_get(t, "valid"));
            if (!sc->fn) {
                failed++;
                printf("FAIL %s #%d \"%s\" / \"%s\": not compiled: %s\n", sc->file, sc->index,
                       json_string_value(json_object_get(c, "description")),
                       json_string_value(json_object_get(t, "description")), sc->why);
                continue;
            }
            json_t *data = json_object_get(t, "data");
            /* Both modes must agree: stop-at-first and all-errors. */
            int rc1 = sc->fn(data, 0, &err);
            bool got = rc1 == 0;
            bool detail_ok = got ? err.n_details == 0 : err.n_details >= 1;
            int rc2 = sc->fn(data, TB_VALIDATE_ALL_ERRORS, &err);
            if (got == want && (rc2 == 0) == got && detail_ok) {
                passed++;
            } else {
                failed++;
                printf("FAIL %s #%d \"%s\" / \"%s\": expected %s, got %s%s\n", sc->file,
                       sc->index, json_string_value(json_object_get(c, "description")),
                       json_string_value(json_object_get(t, "description")),
                       want ? "valid" : "invalid", got ? "valid" : "invalid",
                       (rc2 == 0) != got ? " (all-errors mode disagrees)" : "");
            }
        }
    }
    json_decref(doc);
    tb_error_deinit(&err);
    tb_validate_thread_cleanup();
    printf("jsonschema-suite: %ld passed, %ld failed, %ld skipped\n", passed, failed, skipped);
    return failed ? 1 : 0;
}
