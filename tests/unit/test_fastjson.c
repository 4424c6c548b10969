/* Differential tests of runtime/json/fastjson.c against jansson's json_loadb (the flags
 * tb_json_loadb uses): whatever the fast reader accepts, jansson accepts too and reads to the
 * same values, in the same key order (except a fraction whose nearest double is whole: see
 * tb_fastjson.h); whatever jansson rejects, the fast reader rejects. The
 * inputs: crafted edge cases, every file of the JSON Schema Test Suite (it must read all of them
 * itself, without falling back), random cuts of them and random byte mutations of them. */
#include "../../runtime/json/tb_fastjson.h"
#include "tablium/json.h"
#include "tablium/validate.h"

#include <check.h>
#include <dirent.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FLAGS (JSON_DECODE_ANY | JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL)

static char *dump(const json_t *j)
{
    return json_dumps(j, JSON_ENCODE_ANY | JSON_COMPACT);
}

/* 1: the fast reader read it (and agreed), 0: it left it to jansson (which may accept or
 * reject it). Fails the test on any disagreement. */
static int agree(const char *buf, size_t len, const char *what)
{
    json_error_t je;
    json_t *f = tb__json_fast_loadb(buf, len);
    json_t *j = json_loadb(buf, len, FLAGS, &je);
    int used = f != NULL;
    if (f && !j && strstr(je.text, "too big integer")) {
        /* the other difference: an integer past int64, which jansson refuses, is read as its
         * nearest double (valid JSON; see past_int64 below) */
    } else if (f) {
        ck_assert_msg(j != NULL, "%s: the fast reader accepted what jansson rejects (%s)", what,
                      je.text);
        ck_assert_msg(json_equal(f, j), "%s: different values", what);
        char *a = dump(f), *b = dump(j);
        ck_assert_msg(a && b && strcmp(a, b) == 0, "%s: different order or form:\n%s\n%s", what,
                      a ? a : "?", b ? b : "?");
        free(a);
        free(b);
    }
    json_decref(f);
    json_decref(j);
    return used;
}

static void both_read(const char *buf, size_t len)
{
    ck_assert_msg(agree(buf, len, buf) == 1, "the fast reader left valid input to jansson: %.*s",
                  (int)(len > 80 ? 80 : len), buf);
}

static void both_reject(const char *buf, size_t len)
{
    json_error_t je;
    json_t *f = tb__json_fast_loadb(buf, len);
    json_t *j = json_loadb(buf, len, FLAGS, &je);
    ck_assert_msg(f == NULL, "the fast reader accepted: %.*s", (int)(len > 80 ? 80 : len), buf);
    ck_assert_msg(j == NULL, "jansson accepted (this case is wrong): %.*s",
                  (int)(len > 80 ? 80 : len), buf);
    json_decref(f);
    json_decref(j);
}

#define OK(s) both_read(s, sizeof(s) - 1)
#define BAD(s) both_reject(s, sizeof(s) - 1)

START_TEST(valid_edge_cases_are_read_alike)
{
    OK("{\"a\":\"\\u00e9\\ud83d\\ude00\\n\\t\\\"\\\\\\/\\b\\f\\r\"}");
    OK("\"\\u0000x\"");
    OK("{\"\":2}");
    OK("-0");
    OK("0");
    OK("0.5e-3");
    OK("1E+2");
    OK("-1.25E-2");
    OK("0e-400");
    OK("9223372036854775807");
    OK("-9223372036854775808");
    OK("[[[]],{},[{}]]");
    OK(" \r\n 1 \t");
    OK("\"\xc3\xbcn\xc3\xaf \xe2\x82\xac \xf0\x9f\x98\x80\"");
    OK("{\"z\":1,\"a\":2,\"m\":[true,false,null]}");
    OK("\"\\uFFFF\\u0800\\u07FF\\u0080\\u007F\"");
    /* a key longer than the reader's stack buffer, escaped and plain */
    char big[600];
    int n = snprintf(big, sizeof big, "{\"");
    for (int i = 0; i < 300; i++)
        big[n++] = (char)('a' + i % 26);
    n += snprintf(big + n, sizeof big - (size_t)n, "\\n\":{\"k\\\"\":\"v\"}}");
    both_read(big, (size_t)n);
}
END_TEST

/* The one difference from jansson (tb_fastjson.h): a decimal with a fraction whose nearest
 * double is whole is read as the double on the fraction's side, so that it is not an integer. */
static double read_real(const char *text)
{
    json_t *f = tb__json_fast_loadb(text, strlen(text));
    ck_assert_msg(json_is_real(f), "%s: not read as a real", text);
    ck_assert_msg(!tb_json_is_integer(f), "%s: read as an integer", text);
    double d = json_real_value(f);
    json_decref(f);
    return d;
}

START_TEST(a_fraction_that_rounds_to_a_whole_double_is_not_an_integer)
{
    ck_assert(read_real("0.99999999999999999999") == nextafter(1.0, 0.0));
    ck_assert(read_real("1.00000000000000000001") == nextafter(1.0, 2.0));
    ck_assert(read_real("-1.00000000000000000001") == nextafter(-1.0, -2.0));
    ck_assert(read_real("-0.99999999999999999999") == nextafter(-1.0, 0.0));
    ck_assert(read_real("1e-400") == nextafter(0.0, 1.0));
    ck_assert(read_real("-1e-400") == nextafter(-0.0, -1.0));
    ck_assert(read_real("4503599627370495.99999999") == nextafter(4503599627370496.0, 0.0));
    ck_assert(read_real("99999999999999999999e-20") == nextafter(1.0, 0.0));
    /* longer than the reader's stack buffer: read here too */
    char big[128] = "0.";
    memset(big + 2, '9', 100);
    big[102] = '\0';
    ck_assert(read_real(big) == nextafter(1.0, 0.0));
    /* whole decimals, and numbers from 2^53 on, read as jansson reads them */
    OK("1.0");
    OK("1.000000000000000000000000000");
    OK("1e2");
    OK("100e-2");
    OK("12.5e1");
    OK("0.0e5");
    OK("-0.0");
    OK("12345678901234567.5");
    OK("9007199254740993.0001");
    OK("[0.99999999999999999999e20]");
}
END_TEST

/* An integer past int64 is valid JSON: read as its nearest double (as JavaScript does) where
 * jansson refuses the document ("too big integer"), so that a `type: number` member takes it and
 * an integer member is refused by its range, naming the field, not the whole body as malformed
 * JSON. */
START_TEST(past_int64_an_integer_is_its_nearest_double)
{
    const char *cases[][2] = {{"9223372036854775808", "9.2233720368547758e+18"},
                              {"-9223372036854775809", "-9.2233720368547758e+18"},
                              {"100000000000000000000", "1e+20"},
                              {"[1,123456789012345678901234567890]", "1.2345678901234568e+29"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tb_error err = TB_ERROR_INIT;
        json_t *j = tb_json_loadb(cases[i][0], strlen(cases[i][0]), &err);
        ck_assert_msg(j != NULL, "%s: %s", cases[i][0], err.message);
        const json_t *v = json_is_array(j) ? json_array_get(j, 1) : j;
        ck_assert_msg(json_is_real(v), "%s: not a real", cases[i][0]);
        char got[64];
        snprintf(got, sizeof got, "%.17g", json_real_value(v));
        ck_assert_str_eq(got, cases[i][1]);
        if (json_is_array(j))
            ck_assert(json_is_integer(json_array_get(j, 0))); /* its neighbours stay integers */
        json_decref(j);
        tb_error_deinit(&err);
    }
    /* longer than the reader's stack buffer */
    char big[200];
    memset(big, '9', 150);
    big[150] = '\0';
    json_t *j = tb_json_loadb(big, 150, NULL);
    ck_assert(json_is_real(j) && json_real_value(j) > 9.9e149);
    json_decref(j);
    /* beyond a double: still refused */
    char huge[420] = "1";
    memset(huge + 1, '0', 400);
    huge[401] = '\0';
    tb_error err = TB_ERROR_INIT;
    ck_assert_ptr_null(tb_json_loadb(huge, 401, &err));
    ck_assert_int_eq(err.code, TB_EPARSE);
    tb_error_deinit(&err);
}
END_TEST

START_TEST(invalid_input_is_left_to_jansson_which_rejects_it)
{
    BAD("1e400");
    BAD("-1e400");
    BAD("01");
    BAD("-");
    BAD("1.");
    BAD(".5");
    BAD("+1");
    BAD("1e");
    BAD("1e+");
    BAD("{\"a\":1,\"a\":2}");
    BAD("\"\\ud800\"");
    BAD("\"\\udc00\"");
    BAD("\"\\ud800\\u0041\"");
    BAD("\"\x01\"");
    BAD("\"\xc0\x80\"");
    BAD("\"\xed\xa0\x80\"");
    BAD("\"\xf4\x90\x80\x80\"");
    BAD("\"\xe2\x82\"");
    BAD("\"\xff\"");
    BAD("[1,]");
    BAD("{\"a\":1,}");
    BAD("[1 2]");
    BAD("{\"a\" 1}");
    BAD("{a:1}");
    BAD("tru");
    BAD("nul");
    BAD("1 2");
    BAD("");
    BAD("   ");
    BAD("\"abc");
    BAD("\"\\q\"");
    BAD("\"\\u12\"");
    BAD("[\"a\"");
    BAD("{\"a\":");
    BAD("'a'");
    BAD("{\"a\\u0000b\":1}"); /* jansson: NUL byte in object key not supported */
    both_reject("[1,\0 2]", 7);
    /* jansson stops at a NUL after the value and accepts this; the fast reader leaves any
     * trailing byte to it */
    ck_assert_ptr_null(tb__json_fast_loadb("1\0", 2));
    agree("1\0", 2, "NUL after the value");
}
END_TEST

/* More edges (from review): either both read it alike, or the fast reader leaves it to jansson;
 * the ones that are plainly valid must be read by the fast reader itself. */
START_TEST(more_edges_agree)
{
    /* UTF-8 boundaries */
    OK("\"\xe0\xa0\x80\xed\x9f\xbf\xee\x80\x80\xef\xbf\xbf\xf0\x90\x80\x80\xf4\x8f\xbf\xbf\"");
    BAD("\"\xe0\x9f\xbf\"");
    BAD("\"\xf0\x8f\xbf\xbf\"");
    BAD("\"\xc1\xbf\"");
    BAD("\"\xf5\x80\x80\x80\"");
    BAD("\"\xf0\x9f\x98");
    /* surrogates */
    OK("\"\\uD83D\\uDE00\"");
    BAD("\"\\ud800\\ud800\"");
    BAD("\"\\ud800\\u0000\"");
    BAD("\"\\ud83d\\u\"");
    BAD("\"\\ud83dx\"");
    /* duplicate keys, one escaped */
    BAD("{\"a\":1,\"\\u0061\":2}");
    BAD("{\"k\\n\":1,\"k\\u000a\":2}");
    /* numbers */
    OK("-0.0");
    OK("0e0");
    OK("4.9e-324");
    OK("2.2250738585072011e-308");
    OK("9223372036854775807.0");
    BAD("1E400");
    BAD("-01");
    BAD("00");
    BAD("1.5e+");
    char num[80];
    for (int len = 62; len <= 66; len++) { /* around the reader's 64-byte number buffer */
        memset(num, '1', (size_t)len);
        num[0] = '0';
        num[1] = '.';
        agree(num, (size_t)len, "long number");
    }
    /* literals */
    BAD("truex");
    BAD("nulll");
    BAD("[true1]");
    BAD("True");
    /* jansson stops at a NUL after a scalar; the fast reader leaves such input to it */
    agree("[1\0]", 4, "NUL in an array");
    agree("true\0", 5, "NUL after a literal");
    ck_assert_ptr_null(tb__json_fast_loadb("true\0", 5));
    /* a quote, backslash, control character or multi-byte character at every offset of
     * strings around the eight-byte scan */
    static const char *const specials[] = {"\\\"", "\\\\", "\x1f", "\xc3\xa9", "\xe2\x82\xac",
                                           "\xf0\x9f\x98\x80"};
    for (int n = 6; n <= 18; n++)
        for (int at = 0; at < n; at++)
            for (size_t k = 0; k < sizeof specials / sizeof specials[0]; k++) {
                char doc[64];
                size_t o = 0;
                doc[o++] = '"';
                for (int i = 0; i < n; i++) {
                    if (i == at) {
                        memcpy(doc + o, specials[k], strlen(specials[k]));
                        o += strlen(specials[k]);
                    } else {
                        doc[o++] = 'a';
                    }
                }
                doc[o++] = '"';
                int used = agree(doc, o, "scan boundary");
                if (strcmp(specials[k], "\x1f") != 0)
                    ck_assert_msg(used, "left to jansson: %.*s", (int)o, doc);
            }
    /* an escaped key, then a value whose escapes grow the scratch buffer */
    char big[4096];
    size_t o = (size_t)snprintf(big, sizeof big, "{\"k\\n\":\"");
    for (int i = 0; i < 600; i++) {
        memcpy(big + o, "\\t", 2);
        o += 2;
    }
    o += (size_t)snprintf(big + o, sizeof big - o, "\",\"k\\t\":1}");
    both_read(big, o);
}
END_TEST

START_TEST(nesting_deeper_than_the_reader_goes_is_left_to_jansson)
{
    size_t depths[] = {10, 1999, 2000, 2001, 2048, 2049, 3000};
    for (size_t d = 0; d < sizeof depths / sizeof depths[0]; d++) {
        size_t k = depths[d];
        char *s = malloc(2 * k);
        memset(s, '[', k);
        memset(s + k, ']', k);
        int used = agree(s, 2 * k, "nesting");
        ck_assert_int_eq(used, k <= 2000);
        json_error_t je;
        json_t *j = json_loadb(s, 2 * k, FLAGS, &je);
        ck_assert_int_eq(j != NULL, k <= 2048); /* jansson's own limit, for the record */
        json_decref(j);
        free(s);
    }
}
END_TEST

/* ---- the JSON Schema Test Suite's files as a corpus ---- */

typedef struct {
    char *data;
    size_t len;
    char name[256];
} doc;

static doc corpus[512];
static int n_corpus;

static void load_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) && n_corpus < (int)(sizeof corpus / sizeof corpus[0])) {
        size_t nl = strlen(e->d_name);
        if (nl < 6 || strcmp(e->d_name + nl - 5, ".json") != 0)
            continue;
        char path[2048];
        if (snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >= (int)sizeof path)
            continue;
        FILE *f = fopen(path, "rb");
        if (!f)
            continue;
        fseek(f, 0, SEEK_END);
        long size = ftell(f);
        fseek(f, 0, SEEK_SET);
        char *buf = malloc((size_t)size + 1);
        if (buf && fread(buf, 1, (size_t)size, f) == (size_t)size) {
            corpus[n_corpus].data = buf;
            snprintf(corpus[n_corpus].name, sizeof corpus[0].name, "%s", e->d_name);
            corpus[n_corpus++].len = (size_t)size;
        } else {
            free(buf);
        }
        fclose(f);
    }
    closedir(d);
}

static void load_corpus(void)
{
    if (n_corpus)
        return;
    const char *root = getenv("TB_JSON_SCHEMA_SUITE");
    char def[] = "../shared/testdata/json-schema-test-suite";
    if (!root || !*root)
        root = def;
    const char *subs[] = {"tests/draft2020-12", "tests/draft2020-12/optional",
                          "tests/draft2020-12/optional/format", "tests/draft7"};
    for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++) {
        char dir[1024];
        snprintf(dir, sizeof dir, "%s/%s", root, subs[i]);
        load_dir(dir);
    }
    ck_assert_msg(n_corpus >= 50, "the JSON Schema Test Suite was not found under %s (%d files)",
                  root, n_corpus);
}

START_TEST(every_suite_file_is_read_by_the_fast_reader_alike)
{
    load_corpus();
    int read = 0;
    for (int i = 0; i < n_corpus; i++) {
        json_error_t je;
        json_t *j = json_loadb(corpus[i].data, corpus[i].len, FLAGS, &je);
        int used = agree(corpus[i].data, corpus[i].len, corpus[i].name);
        /* every file is valid JSON, bignum.json too (integers beyond long long, which jansson
         * refuses and the fast reader reads as doubles) */
        ck_assert_msg(used == 1, "suite file %s was left to jansson", corpus[i].name);
        read += used;
        json_decref(j);
    }
    ck_assert_int_ge(read, n_corpus - 2);
}
END_TEST

static unsigned long long rng = 0x9e3779b97f4a7c15ull;
static unsigned next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (unsigned)(rng >> 11);
}

START_TEST(cut_and_mutated_files_never_disagree)
{
    load_corpus();
    static const unsigned char bytes[] = {'"', '\\', '{', '}', '[', ']', ',', ':', '0', '9', '-',
                                          'e', '.', 'u', ' ', 'a', 0x00, 0x1f, 0x7f, 0x80,
                                          0xC0, 0xC3, 0xE0, 0xED, 0xF0, 0xF4, 0xF5, 0xFF};
    long fast = 0, total = 0;
    for (int i = 0; i < n_corpus; i++) {
        const doc *d = &corpus[i];
        char *m = malloc(d->len);
        for (int t = 0; t < 40; t++) { /* cuts */
            size_t cut = next_rand() % d->len;
            fast += agree(d->data, cut, "cut");
            total++;
        }
        for (int t = 0; t < 250; t++) { /* one, two or three bytes changed */
            memcpy(m, d->data, d->len);
            int k = 1 + (int)(next_rand() % 3);
            for (int q = 0; q < k; q++)
                m[next_rand() % d->len] = (char)bytes[next_rand() % sizeof bytes];
            fast += agree(m, d->len, "mutation");
            total++;
        }
        free(m);
    }
    /* most variants are invalid: what matters is that none disagreed; some were read fast */
    ck_assert_int_gt(fast, 0);
    ck_assert_int_gt(total, 1000);
}
END_TEST

/* ---- reloading a tree in place (the Redis subscriber's envelopes) ---- */

/* Reloads `old` (a fresh read of a) with b: when that succeeds the tree must be exactly what a
 * fresh read of b gives (same values, same key order). 1 when it succeeded. */
static int reload_agrees(const char *a, size_t an, const char *b, size_t bn, const char *what)
{
    json_t *old = tb__json_fast_loadb(a, an);
    if (old == NULL || !(json_is_object(old) || json_is_array(old))) {
        json_decref(old);
        return 0;
    }
    int ok = tb__json_fast_reload(old, b, bn);
    json_error_t je;
    json_t *j = ok ? json_loadb(b, bn, FLAGS, &je) : NULL;
    if (ok && !j && strstr(je.text, "too big integer")) {
        ok = 0; /* an integer past int64: read as a double, where jansson refuses it */
    } else if (ok) {
        ck_assert_msg(j != NULL, "%s: reloaded what jansson rejects: %s", what, je.text);
        char *x = dump(old), *y = dump(j);
        ck_assert_msg(strcmp(x, y) == 0, "%s: reloaded %s\nfresh    %s", what, x, y);
        free(x);
        free(y);
        json_decref(j);
    }
    json_decref(old);
    return ok;
}

START_TEST(a_tree_is_reloaded_only_with_its_shape)
{
    const char *base = "{\"id\":\"a\",\"n\":1,\"r\":1.5,\"t\":true,\"z\":null,"
                       "\"d\":{\"k\":[1,\"x\",{\"q\":false}]}}";
    const char *same[] = {
        "{\"id\":\"a longer string \\u00e9\\n\",\"n\":-7,\"r\":2e3,\"t\":true,\"z\":null,"
        "\"d\":{\"k\":[99,\"\",{\"q\":false}]}}",
        " { \"id\" : \"\" , \"n\":0,\"r\":-0.0,\"t\":true,\"z\":null,\"d\":{\"k\":[1,\"x\",{\"q\":false}]} } ",
    };
    for (size_t i = 0; i < sizeof same / sizeof *same; i++)
        ck_assert_msg(reload_agrees(base, strlen(base), same[i], strlen(same[i]), "same shape"),
                      "same shape %zu was not reloaded", i);
    const char *other[] = {
        "{\"n\":1,\"id\":\"a\",\"r\":1.5,\"t\":true,\"z\":null,\"d\":{\"k\":[1,\"x\",{\"q\":false}]}}",
        "{\"id\":\"a\",\"n\":1,\"r\":1.5,\"t\":true,\"z\":null}",
        "{\"id\":\"a\",\"n\":1,\"r\":1.5,\"t\":true,\"z\":null,\"d\":{\"k\":[1,\"x\",{\"q\":false}]},"
        "\"e\":1}",
        "{\"id\":\"a\",\"n\":1.0,\"r\":1.5,\"t\":true,\"z\":null,\"d\":{\"k\":[1,\"x\",{\"q\":false}]}}",
        "{\"id\":\"a\",\"n\":1,\"r\":1,\"t\":true,\"z\":null,\"d\":{\"k\":[1,\"x\",{\"q\":false}]}}",
        "{\"id\":1,\"n\":1,\"r\":1.5,\"t\":true,\"z\":null,\"d\":{\"k\":[1,\"x\",{\"q\":false}]}}",
        "{\"id\":\"a\",\"n\":1,\"r\":1.5,\"t\":false,\"z\":null,\"d\":{\"k\":[1,\"x\",{\"q\":false}]}}",
        "{\"id\":\"a\",\"n\":1,\"r\":1.5,\"t\":true,\"z\":0,\"d\":{\"k\":[1,\"x\",{\"q\":false}]}}",
        "{\"id\":\"a\",\"n\":1,\"r\":1.5,\"t\":true,\"z\":null,\"d\":{\"k\":[1,\"x\"]}}",
        "{\"id\":\"a\",\"n\":1,\"r\":1.5,\"t\":true,\"z\":null,\"d\":{\"k\":[1,\"x\",{\"q\":false},2]}}",
        "{\"id\":\"a\",\"n\":1,\"r\":1.5,\"t\":true,\"z\":null,\"d\":{\"k\":[1,\"x\",{\"q\":false}]}} x",
        "{\"id\":\"a\",\"n\":1,\"r\":1.5,\"t\":true,\"z\":null,\"d\":{\"k\":[1,\"x\",{\"q\":false}]}",
        "{\"id\":\"a\",\"id\":\"b\",\"r\":1.5,\"t\":true,\"z\":null,\"d\":{\"k\":[1,\"x\",{\"q\":false}]}}",
        "{\"id\":\"\xff\",\"n\":1,\"r\":1.5,\"t\":true,\"z\":null,\"d\":{\"k\":[1,\"x\",{\"q\":false}]}}",
        "[1]",
    };
    for (size_t i = 0; i < sizeof other / sizeof *other; i++)
        ck_assert_msg(!reload_agrees(base, strlen(base), other[i], strlen(other[i]), "other"),
                      "other shape %zu was reloaded", i);

    /* a node somebody else holds is never written */
    json_t *old = tb__json_fast_loadb(base, strlen(base));
    json_t *d = json_incref(json_object_get(old, "d"));
    const char *next = "{\"id\":\"b\",\"n\":2,\"r\":2.5,\"t\":true,\"z\":null,"
                       "\"d\":{\"k\":[5,\"y\",{\"q\":false}]}}";
    ck_assert(!tb__json_fast_reload(old, next, strlen(next)));
    char *held = dump(d);
    ck_assert_str_eq(held, "{\"k\":[1,\"x\",{\"q\":false}]}");
    free(held);
    json_decref(d);
    json_decref(old);
}
END_TEST

START_TEST(suite_files_reload_into_their_own_trees_alike)
{
    load_corpus();
    long reloaded = 0, tried = 0;
    for (int i = 0; i < n_corpus; i++) {
        const doc *d = &corpus[i];
        if (reload_agrees(d->data, d->len, d->data, d->len, d->name))
            reloaded++;
        char *m = malloc(d->len);
        for (int t = 0; t < 200; t++) {
            /* a digit or a letter changed for another: mostly a new value of the same shape,
             * sometimes a new key or a broken literal, which must be refused */
            memcpy(m, d->data, d->len);
            size_t at = next_rand() % d->len;
            unsigned char c = (unsigned char)m[at];
            if (c >= '0' && c <= '9')
                m[at] = (char)('0' + next_rand() % 10);
            else if (c >= 'a' && c <= 'z')
                m[at] = (char)('a' + next_rand() % 26);
            else
                m[at] = (char)"0a\"{}[],:. "[next_rand() % 12];
            reloaded += reload_agrees(d->data, d->len, m, d->len, "mutation");
            tried++;
        }
        free(m);
    }
    ck_assert_int_ge(reloaded, tried / 4); /* the success path was reached, and agreed */
}
END_TEST

/* ---- writing: byte for byte what json_dumps(JSON_COMPACT | JSON_ENCODE_ANY) writes ---- */

static void same_dump(const json_t *j, const char *what)
{
    tb_buf b = TB_BUF_INIT;
    tb_buf_puts(&b, "prefix:");
    ck_assert_msg(tb__json_fast_dump(&b, j) == 0, "%s: left to jansson", what);
    char *want = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
    ck_assert_ptr_nonnull(want);
    ck_assert_msg(b.len == 7 + strlen(want) && memcmp(b.data + 7, want, strlen(want)) == 0,
                  "%s:\nours:    %.*s\njansson: %s", what, (int)b.len - 7, b.data + 7, want);
    free(want);
    tb_buf_deinit(&b);
}

START_TEST(values_are_written_as_jansson_writes_them)
{
    double reals[] = {0.0,     -0.0,    0.1,      1.0,        -2.5,     1e300,   1e-300,
                      1.5e-7,  1e21,    1e22,     123456789.0, 9007199254740993.0,
                      3.14159, 1e-5,    5e-324,   1.7976931348623157e308, 100.0, 1e16};
    for (size_t i = 0; i < sizeof reals / sizeof reals[0]; i++) {
        json_t *r = json_real(reals[i]);
        same_dump(r, "real");
        json_decref(r);
    }
    json_int_t ints[] = {0, 1, -1, 42, INT64_MAX, INT64_MIN, 1000000007, -9999999999LL};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        json_t *v = json_integer(ints[i]);
        same_dump(v, "integer");
        json_decref(v);
    }
    char all[160];
    for (int i = 0; i < 128; i++)
        all[i] = (char)i;
    memcpy(all + 128, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80/", 11);
    json_t *s = json_stringn(all, 139);
    ck_assert_ptr_nonnull(s);
    same_dump(s, "every ASCII byte and some UTF-8");
    json_t *o = json_pack("{s:o, s:[i, f, b, n, s], s:{}, s:[]}", "z", s, "a", 1, 2.5, 1, "x",
                          "k\"ey", "", "");
    ck_assert_ptr_nonnull(o);
    same_dump(o, "object in insertion order");
    json_decref(o);
    /* not JSON text: refused, the buffer as it was (jansson would write a bad key garbled) */
    json_t *bad = json_stringn_nocheck("\xff", 1);
    json_t *bad_key = json_object();
    json_object_set_new_nocheck(bad_key, "a\xff" "b", json_integer(1));
    json_t *in_array = json_pack("[i, O]", 1, bad);
    tb_buf b = TB_BUF_INIT;
    tb_buf_puts(&b, "kept");
    json_t *bads[] = {bad, bad_key, in_array};
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(tb__json_fast_dump(&b, bads[i]), TB_EINVAL);
        ck_assert_uint_eq(b.len, 4);
        ck_assert_int_eq(tb_buf_json_value(&b, bads[i]), TB_EINVAL);
        ck_assert_uint_eq(b.len, 4);
    }
    /* deeper than the fast writer goes: jansson writes it, identically */
    json_t *deep = json_array(), *cur = deep;
    for (int i = 0; i < 2100; i++) {
        json_t *next = json_array();
        json_array_append_new(cur, next);
        cur = next;
    }
    ck_assert_int_eq(tb__json_fast_dump(&b, deep), 1);
    ck_assert_uint_eq(b.len, 4);
    ck_assert_int_eq(tb_buf_json_value(&b, deep), 0);
    ck_assert_uint_eq(b.len, 4 + 2 * 2101);
    json_decref(deep);
    tb_buf_deinit(&b);
    json_decref(in_array);
    json_decref(bad_key);
    json_decref(bad);
}
END_TEST

START_TEST(every_suite_file_is_written_as_jansson_writes_it)
{
    load_corpus();
    int n = 0;
    for (int i = 0; i < n_corpus; i++) {
        json_error_t je;
        json_t *j = json_loadb(corpus[i].data, corpus[i].len, FLAGS, &je);
        if (!j)
            continue;
        same_dump(j, corpus[i].name);
        n++;
        json_decref(j);
    }
    ck_assert_int_ge(n, n_corpus - 2);
}
END_TEST

START_TEST(tb_json_loadb_still_words_jansson_errors)
{
    tb_error err = TB_ERROR_INIT;
    const char *s = "{\"a\": [1, 2,, 3]}";
    ck_assert_ptr_null(tb_json_loadb(s, strlen(s), &err));
    ck_assert_int_eq(err.code, TB_EPARSE);
    ck_assert_int_eq(err.line, 1);
    ck_assert_int_eq(err.column, 13);
    ck_assert_ptr_nonnull(strstr(err.message, "malformed JSON at line 1, column 13"));
    tb_error_deinit(&err);
    const char *dup = "{\"a\": 1, \"a\": 2}";
    ck_assert_ptr_null(tb_json_loadb(dup, strlen(dup), &err));
    ck_assert_ptr_nonnull(strstr(err.message, "duplicate object key"));
    tb_error_deinit(&err);
    json_t *j = tb_json_loadb("{\"b\": 2}", 8, &err);
    ck_assert_ptr_nonnull(j);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "b")), 2);
    json_decref(j);
    tb_error_deinit(&err);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("fastjson");
    TCase *tc = tcase_create("fastjson");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, valid_edge_cases_are_read_alike);
    tcase_add_test(tc, past_int64_an_integer_is_its_nearest_double);
    tcase_add_test(tc, invalid_input_is_left_to_jansson_which_rejects_it);
    tcase_add_test(tc, a_fraction_that_rounds_to_a_whole_double_is_not_an_integer);
    tcase_add_test(tc, nesting_deeper_than_the_reader_goes_is_left_to_jansson);
    tcase_add_test(tc, more_edges_agree);
    tcase_add_test(tc, every_suite_file_is_read_by_the_fast_reader_alike);
    tcase_add_test(tc, cut_and_mutated_files_never_disagree);
    tcase_add_test(tc, values_are_written_as_jansson_writes_them);
    tcase_add_test(tc, every_suite_file_is_written_as_jansson_writes_it);
    tcase_add_test(tc, tb_json_loadb_still_words_jansson_errors);
    tcase_add_test(tc, a_tree_is_reloaded_only_with_its_shape);
    tcase_add_test(tc, suite_files_reload_into_their_own_trees_alike);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    for (int i = 0; i < n_corpus; i++)
        free(corpus[i].data);
    return failed ? 1 : 0;
}
