/*
 * Unit tests for runtime/json/format.c (tablium/format.h).
 *
 * 1. The official JSON Schema Test Suite format tests
 *    (tests/draft2020-12/optional/format/<name>.json) are loaded at runtime from the suite root
 *    folder named by $TB_JSON_SCHEMA_SUITE, by default ../shared/testdata/json-schema-test-suite
 *    relative to the repository root. Every test with string data must agree with the
 *    validator; non-string data is ignored by "format".
 * 2. Hand-written edge cases per format (embedded NUL, input that is not NUL-terminated, ...).
 * 3. A deterministic random smoke test for memory safety.
 *
 * Every validator call goes through an exact-size heap copy of the input, so ASan reports any
 * read past len.
 */
#include "tablium/format.h"

#include <check.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SUITE_ENV "TB_JSON_SCHEMA_SUITE"
#define SUITE_DEFAULT_FROM_REPO "../shared/testdata/json-schema-test-suite"
#define SUITE_FORMAT_DIR "tests/draft2020-12/optional/format"
#define THIS_FILE_IN_REPO "tests/unit/test_format.c"

/*
 * Suite tests whose expectation contradicts the RFCs, by format and test description. An entry
 * makes the test count as an exception instead of a failure; it must still disagree with the
 * validator, so a stale entry fails the run. Intentionally empty: every suite test agrees.
 */
static const struct suite_exception {
    const char *format;
    const char *description;
    const char *reason;
} suite_exceptions[] = {
    {NULL, NULL, NULL} /* sentinel */
};

/* ------------------------------------------------------------------------------------------ */
/* Helpers                                                                                    */
/* ------------------------------------------------------------------------------------------ */

/* Calls fn on an exact-size heap copy of s[0..len) (no terminator, nothing after it). */
static bool call_exact(tb_format_fn fn, const char *s, size_t len)
{
    char *copy = malloc(len > 0 ? len : 1);
    bool result;

    ck_assert_ptr_nonnull(copy);
    if (len > 0) {
        memcpy(copy, s, len);
    } else {
        copy[0] = '0'; /* not part of the input: must not influence the answer */
    }
    result = fn(copy, len);
    free(copy);
    return result;
}

/* Writes s[0..len) as a C string literal body into out (for failure messages). */
static const char *escape(const char *s, size_t len, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < len && o + 5 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
            out[o++] = (char)c;
        } else {
            o += (size_t)snprintf(out + o, cap - o, "\\x%02x", c);
        }
    }
    out[o < cap ? o : cap - 1] = '\0';
    return out;
}

static void check_case(const char *fn_name, tb_format_fn fn, const char *s, size_t len,
                       bool expected)
{
    char buf[512];
    bool got = call_exact(fn, s, len);
    ck_assert_msg(got == expected, "%s(\"%s\", %zu) returned %s, expected %s", fn_name,
                  escape(s, len, buf, sizeof buf), len, got ? "true" : "false",
                  expected ? "true" : "false");
}

/* String literal cases: the length comes from sizeof, so embedded NULs are kept. */
#define VALID(fn, lit) check_case(#fn, fn, (lit), sizeof(lit) - 1, true)
#define INVALID(fn, lit) check_case(#fn, fn, (lit), sizeof(lit) - 1, false)
/* Only the first n bytes of lit are passed (the rest is outside the range). */
#define PREFIX(fn, lit, n, expected) check_case(#fn, fn, (lit), (n), (expected))

/* ------------------------------------------------------------------------------------------ */
/* JSON Schema Test Suite                                                                     */
/* ------------------------------------------------------------------------------------------ */

/* The suite root: $TB_JSON_SCHEMA_SUITE, else the default relative to the repository root. */
static void suite_root(char *out, size_t cap)
{
    const char *env = getenv(SUITE_ENV);
    const char *file = __FILE__;
    size_t file_len = strlen(file);
    size_t tail_len = strlen(THIS_FILE_IN_REPO);

    if (env != NULL && env[0] != '\0') {
        snprintf(out, cap, "%s", env);
    } else if (file[0] == '/' && file_len >= tail_len
               && strcmp(file + file_len - tail_len, THIS_FILE_IN_REPO) == 0) {
        /* built from an absolute path: the repository root is known, any cwd works */
        snprintf(out, cap, "%.*s%s", (int)(file_len - tail_len), file, SUITE_DEFAULT_FROM_REPO);
    } else {
        /* relative build: assume the tests run from the repository root */
        snprintf(out, cap, "%s", SUITE_DEFAULT_FROM_REPO);
    }
}

static const struct suite_exception *find_exception(const char *format, const char *description)
{
    for (const struct suite_exception *e = suite_exceptions; e->format != NULL; e++) {
        if (strcmp(e->format, format) == 0 && strcmp(e->description, description) == 0) {
            return e;
        }
    }
    return NULL;
}

static void run_suite_file(const char *format, tb_format_fn expected_fn)
{
    char root[2048];
    char path[4096];
    char buf[512];
    json_error_t error;
    json_t *cases;
    json_t *test_case;
    size_t case_index;
    size_t passed = 0;
    size_t failed = 0;
    size_t excepted = 0;

    suite_root(root, sizeof root);
    snprintf(path, sizeof path, "%s/%s/%s.json", root, SUITE_FORMAT_DIR, format);
    cases = json_load_file(path, JSON_ALLOW_NUL, &error);
    ck_assert_msg(cases != NULL,
                  "cannot load JSON Schema Test Suite file '%s': %s. Set %s to the suite root "
                  "folder (the directory containing tests/draft2020-12), default '%s' relative to "
                  "the repository root",
                  path, error.text, SUITE_ENV, SUITE_DEFAULT_FROM_REPO);
    ck_assert_msg(json_is_array(cases), "%s: top level is not an array", path);

    json_array_foreach(cases, case_index, test_case) {
        json_t *schema = json_object_get(test_case, "schema");
        const char *schema_format = json_string_value(json_object_get(schema, "format"));
        json_t *tests = json_object_get(test_case, "tests");
        json_t *test;
        size_t test_index;

        ck_assert_msg(schema_format != NULL && strcmp(schema_format, format) == 0,
                      "%s: case %zu does not test format '%s'", path, case_index, format);
        ck_assert_msg(tb_format_lookup(schema_format) == expected_fn,
                      "tb_format_lookup(\"%s\") returned the wrong validator", schema_format);
        ck_assert_msg(json_is_array(tests), "%s: case %zu has no tests array", path, case_index);

        json_array_foreach(tests, test_index, test) {
            json_t *data = json_object_get(test, "data");
            const char *description = json_string_value(json_object_get(test, "description"));
            const struct suite_exception *exception;
            bool expected;
            bool got;

            if (!json_is_string(data)) {
                continue; /* format only applies to strings */
            }
            ck_assert_msg(description != NULL && json_is_boolean(json_object_get(test, "valid")),
                          "%s: malformed test %zu in case %zu", path, test_index, case_index);
            expected = json_is_true(json_object_get(test, "valid"));
            got = call_exact(expected_fn, json_string_value(data), json_string_length(data));
            exception = find_exception(format, description);
            if (exception != NULL) {
                ck_assert_msg(got != expected,
                              "stale exception for format %s test '%s': it passes now", format,
                              description);
                excepted++;
                printf("format %s: exception '%s' (%s)\n", format, description,
                       exception->reason);
            } else if (got == expected) {
                passed++;
            } else {
                failed++;
                fprintf(stderr, "FAIL format %s: '%s': \"%s\" expected %s, got %s\n", format,
                        description,
                        escape(json_string_value(data), json_string_length(data), buf,
                               sizeof buf),
                        expected ? "valid" : "invalid", got ? "valid" : "invalid");
            }
        }
    }
    json_decref(cases);

    printf("format %s: %zu passed, %zu failed\n", format, passed, failed);
    if (excepted > 0) {
        printf("format %s: %zu listed exceptions\n", format, excepted);
    }
    fflush(stdout);
    fflush(stderr);
    ck_assert_msg(failed == 0, "format %s: %zu suite tests failed (see stderr)", format, failed);
    ck_assert_msg(passed > 0, "format %s: no string tests found in %s", format, path);
}

START_TEST(suite_date_time)
{
    run_suite_file("date-time", tb_format_date_time);
}
END_TEST

START_TEST(suite_date)
{
    run_suite_file("date", tb_format_date);
}
END_TEST

START_TEST(suite_time)
{
    run_suite_file("time", tb_format_time);
}
END_TEST

START_TEST(suite_email)
{
    run_suite_file("email", tb_format_email);
}
END_TEST

START_TEST(suite_uuid)
{
    run_suite_file("uuid", tb_format_uuid);
}
END_TEST

START_TEST(suite_ipv4)
{
    run_suite_file("ipv4", tb_format_ipv4);
}
END_TEST

START_TEST(suite_ipv6)
{
    run_suite_file("ipv6", tb_format_ipv6);
}
END_TEST

START_TEST(suite_uri)
{
    run_suite_file("uri", tb_format_uri);
}
END_TEST

START_TEST(suite_uri_reference)
{
    run_suite_file("uri-reference", tb_format_uri_reference);
}
END_TEST

START_TEST(suite_hostname)
{
    run_suite_file("hostname", tb_format_hostname);
}
END_TEST

/* ------------------------------------------------------------------------------------------ */
/* Hand-written edge cases                                                                    */
/* ------------------------------------------------------------------------------------------ */

START_TEST(edge_date_time)
{
    VALID(tb_format_date_time, "2024-02-29T00:00:00Z");
    VALID(tb_format_date_time, "2000-02-29T23:59:59.5+23:59");
    VALID(tb_format_date_time, "1990-12-31T00:59:60+01:00");
    VALID(tb_format_date_time, "2024-01-01T00:00:00-00:00");
    INVALID(tb_format_date_time, "1900-02-29T00:00:00Z");
    INVALID(tb_format_date_time, "2024-01-01T00:00:00");
    INVALID(tb_format_date_time, "2024-01-01T00:00:00.Z");
    INVALID(tb_format_date_time, "2024-01-01 00:00:00Z");
    INVALID(tb_format_date_time, "2024-01-01T00:00:00+24:00");
    INVALID(tb_format_date_time, "2024-01-01T00:00:00Z\0");
    INVALID(tb_format_date_time, "2024-01-01\0T00:00:00Z");
    INVALID(tb_format_date_time, "2024-01-01T");
    INVALID(tb_format_date_time, "");
    PREFIX(tb_format_date_time, "2024-01-01T00:00:00Zjunk", 20, true);
    PREFIX(tb_format_date_time, "2024-01-01T00:00:00+01:00", 24, false);
    ck_assert(!tb_format_date_time(NULL, 0));
}
END_TEST

START_TEST(edge_date)
{
    VALID(tb_format_date, "2000-02-29");
    VALID(tb_format_date, "0000-01-01");
    VALID(tb_format_date, "9999-12-31");
    INVALID(tb_format_date, "1900-02-29");
    INVALID(tb_format_date, "2024-04-31");
    INVALID(tb_format_date, "2024-1-01");
    INVALID(tb_format_date, "2024-01-01\0");
    INVALID(tb_format_date, "2024\0-01-01");
    PREFIX(tb_format_date, "2024-01-31T10:00:00Z", 10, true);
    PREFIX(tb_format_date, "2024-01-31", 9, false);
    PREFIX(tb_format_date, "2024-01-31", 0, false);
}
END_TEST

START_TEST(edge_time)
{
    VALID(tb_format_time, "23:59:60Z");
    VALID(tb_format_time, "00:00:00.000000000001Z");
    VALID(tb_format_time, "00:59:60+01:00");
    INVALID(tb_format_time, "00:00:00+00:00x");
    INVALID(tb_format_time, "00:00Z");
    INVALID(tb_format_time, "00:00:00+0000");
    INVALID(tb_format_time, "12:00:00\0Z");
    INVALID(tb_format_time, "12:00:00Z\0");
    INVALID(tb_format_time, "12:00:00.\0Z");
    PREFIX(tb_format_time, "12:00:00Z and more", 9, true);
    PREFIX(tb_format_time, "12:00:00.5Z", 10, false);
}
END_TEST

START_TEST(edge_email)
{
    char local[80];
    char address[128];

    VALID(tb_format_email, "a@b");
    VALID(tb_format_email, "\"a\\\"b\"@example.com");
    VALID(tb_format_email, "a@[IPv6:1:2:3:4:5:6::]");
    VALID(tb_format_email, "a@[ipv6:::1]");
    VALID(tb_format_email, "a@[IPv6:::ffff:1.2.3.4]");
    VALID(tb_format_email, "user+tag@xn--bcher-kva.example");
    INVALID(tb_format_email, "a@[IPv6:1:2:3:4:5:6:7::]"); /* RFC 5321: "::" >= 2 groups */
    INVALID(tb_format_email, "a@[1.2.3.4");
    INVALID(tb_format_email, "a@[]");
    INVALID(tb_format_email, "a@[IPv6:::1%eth0]");
    INVALID(tb_format_email, "a@[tag:content]");
    INVALID(tb_format_email, "\"a\"b@example.com");
    INVALID(tb_format_email, "\"ab@example.com");
    INVALID(tb_format_email, "a@-example.com");
    INVALID(tb_format_email, "a@example..com");
    INVALID(tb_format_email, "a@xn--X");
    INVALID(tb_format_email, "a\0b@example.com");
    INVALID(tb_format_email, "a@example.com\0");
    INVALID(tb_format_email, "\"a\0b\"@example.com");
    INVALID(tb_format_email, "j\xc3\xb6rg@example.com");
    PREFIX(tb_format_email, "joe@example.com>", 15, true);
    PREFIX(tb_format_email, "joe@example.com", 4, false);

    memset(local, 'x', 64);
    snprintf(address, sizeof address, "%.64s@example.com", local);
    check_case("tb_format_email", tb_format_email, address, strlen(address), true);
    memset(local, 'x', 65);
    snprintf(address, sizeof address, "%.65s@example.com", local);
    check_case("tb_format_email", tb_format_email, address, strlen(address), false);
}
END_TEST

START_TEST(edge_uuid)
{
    VALID(tb_format_uuid, "123e4567-e89b-12d3-a456-426614174000");
    INVALID(tb_format_uuid, "{123e4567-e89b-12d3-a456-426614174000}");
    INVALID(tb_format_uuid, "123e4567-e89b-12d3-a456-42661417400");
    INVALID(tb_format_uuid, "123e4567-e89b-12d3-a456-42661417400\0");
    INVALID(tb_format_uuid, "123e4567-e89b-12d3\0a456-426614174000");
    PREFIX(tb_format_uuid, "123e4567-e89b-12d3-a456-426614174000ff", 36, true);
}
END_TEST

/* OpenAPI 3.0's byte: RFC 4648 base64, either alphabet, padded or not (what a client sends:
 * Java's and Go's encoders pad, base64url in JWTs does not). */
START_TEST(edge_byte)
{
    VALID(tb_format_byte, "");
    VALID(tb_format_byte, "cm91bmR0cmlw");
    VALID(tb_format_byte, "aGk=");
    VALID(tb_format_byte, "aA==");
    VALID(tb_format_byte, "aGk");
    VALID(tb_format_byte, "aA");
    VALID(tb_format_byte, "+/+/");
    VALID(tb_format_byte, "-_-_");
    INVALID(tb_format_byte, "a");       /* 6 bits: no byte */
    INVALID(tb_format_byte, "aGk==");   /* padded past a multiple of four */
    INVALID(tb_format_byte, "a===");
    INVALID(tb_format_byte, "aG=k");    /* padding inside */
    INVALID(tb_format_byte, "aGk ");
    INVALID(tb_format_byte, "aG\nk");
    INVALID(tb_format_byte, "+/-_");    /* two alphabets */
    INVALID(tb_format_byte, "not base64!");
    INVALID(tb_format_byte, "aGk\0");
}
END_TEST

START_TEST(edge_ipv4)
{
    VALID(tb_format_ipv4, "1.2.3.4");
    VALID(tb_format_ipv4, "1.2.3.255");
    INVALID(tb_format_ipv4, "01.2.3.4");
    INVALID(tb_format_ipv4, "1.2.3.04");
    INVALID(tb_format_ipv4, "1.2.3.2555");
    INVALID(tb_format_ipv4, "1.2.3.4\0");
    INVALID(tb_format_ipv4, "1.2\0.3.4");
    PREFIX(tb_format_ipv4, "1.2.3.45", 7, true);
    PREFIX(tb_format_ipv4, "1.2.3.4", 6, false);
}
END_TEST

START_TEST(edge_ipv6)
{
    VALID(tb_format_ipv6, "::");
    VALID(tb_format_ipv6, "1::");
    VALID(tb_format_ipv6, "::1:2:3:4:5:6:7");
    VALID(tb_format_ipv6, "1:2:3:4:5:6:7::");
    VALID(tb_format_ipv6, "::1.2.3.4");
    VALID(tb_format_ipv6, "1:2:3:4:5:6:1.2.3.4");
    VALID(tb_format_ipv6, "ffff:FFFF::");
    INVALID(tb_format_ipv6, "1:2:3:4:5:6:7:8::");
    INVALID(tb_format_ipv6, "::1:2:3:4:5:6:7:8");
    INVALID(tb_format_ipv6, "1:2:3:4:5:6:7:1.2.3.4");
    INVALID(tb_format_ipv6, ":::");
    INVALID(tb_format_ipv6, "1:::2");
    INVALID(tb_format_ipv6, "::1.2.3");
    INVALID(tb_format_ipv6, "1.2.3.4::");
    INVALID(tb_format_ipv6, "::1.2.3.4:5");
    INVALID(tb_format_ipv6, "::1\0");
    INVALID(tb_format_ipv6, ":\0:1");
    INVALID(tb_format_ipv6, "");
    PREFIX(tb_format_ipv6, "::1]", 3, true);
    PREFIX(tb_format_ipv6, "1::2", 2, false);
}
END_TEST

START_TEST(edge_uri)
{
    VALID(tb_format_uri, "a:");
    VALID(tb_format_uri, "urn:isbn:0451450523");
    VALID(tb_format_uri, "HTTP://EXAMPLE.COM");
    VALID(tb_format_uri, "http://[v7.fe80::a+en1]/");
    VALID(tb_format_uri, "http://[::1]:80/");
    VALID(tb_format_uri, "http://example.com:/");
    VALID(tb_format_uri, "file:///etc/hosts");
    VALID(tb_format_uri, "http://a/b?c=/d?e#f/g?h");
    INVALID(tb_format_uri, "http://[::1%25eth0]/");
    INVALID(tb_format_uri, "http://[::1]x/");
    INVALID(tb_format_uri, "http://[::1");
    INVALID(tb_format_uri, "http://[v7.]/");
    INVALID(tb_format_uri, "%41:b");
    INVALID(tb_format_uri, "http://a#b#c");
    INVALID(tb_format_uri, "http://example.com/\0");
    INVALID(tb_format_uri, "http\0://example.com/");
    PREFIX(tb_format_uri, "http://x/%41", 12, true);
    PREFIX(tb_format_uri, "http://x/%41", 11, false);
    PREFIX(tb_format_uri, "http://x/%41", 10, false);
}
END_TEST

START_TEST(edge_uri_reference)
{
    VALID(tb_format_uri_reference, "#");
    VALID(tb_format_uri_reference, "?");
    VALID(tb_format_uri_reference, "a/b:c");
    VALID(tb_format_uri_reference, "a:b");
    VALID(tb_format_uri_reference, "//[::1]");
    VALID(tb_format_uri_reference, "//user@host:8080/p?q#f");
    VALID(tb_format_uri_reference, "../../a%20b");
    INVALID(tb_format_uri_reference, ":a");
    INVALID(tb_format_uri_reference, "\\");
    INVALID(tb_format_uri_reference, "#a#b");
    INVALID(tb_format_uri_reference, "a b");
    INVALID(tb_format_uri_reference, "/a\0");
    PREFIX(tb_format_uri_reference, "/a b", 2, true);
    PREFIX(tb_format_uri_reference, "x", 0, true);
}
END_TEST

START_TEST(edge_hostname)
{
    char name[300];

    VALID(tb_format_hostname, "a");
    VALID(tb_format_hostname, "A.B.C");
    VALID(tb_format_hostname, "xn--bcher-kva.example");
    VALID(tb_format_hostname, "XN--BCHER-KVA.EXAMPLE");
    VALID(tb_format_hostname, "xn--zca");  /* U+00DF, PVALID by exception */
    INVALID(tb_format_hostname, "xn--g6h");  /* U+2665 BLACK HEART SUIT: DISALLOWED */
    INVALID(tb_format_hostname, "xn--ls8h"); /* U+1F4A9: DISALLOWED */
    INVALID(tb_format_hostname, "xn--wca");  /* U+00DC uppercase: DISALLOWED */
    INVALID(tb_format_hostname, "xn--abc-"); /* decodes to ASCII only: not an A-label */
    INVALID(tb_format_hostname, "xn--");
    INVALID(tb_format_hostname, "a..b");
    INVALID(tb_format_hostname, "a_b");
    INVALID(tb_format_hostname, "m\xc3\xbcnchen.de");
    INVALID(tb_format_hostname, "example.com\0");
    INVALID(tb_format_hostname, "exa\0mple.com");
    PREFIX(tb_format_hostname, "example.com.evil", 11, true);
    PREFIX(tb_format_hostname, "example.com", 7, true);
    PREFIX(tb_format_hostname, "example.com", 8, false);
    PREFIX(tb_format_hostname, "example.com", 0, false);

    /* 63 + 1 + 63 + 1 + 63 + 1 + 61 = 253 octets */
    memset(name, 'a', sizeof name);
    name[63] = name[127] = name[191] = '.';
    check_case("tb_format_hostname", tb_format_hostname, name, 253, true);
    check_case("tb_format_hostname", tb_format_hostname, name, 254, false);
    name[63] = 'a';
    check_case("tb_format_hostname", tb_format_hostname, name, 127, false); /* 64-octet label */
}
END_TEST

START_TEST(edge_lookup)
{
    ck_assert(tb_format_lookup("date-time") == tb_format_date_time);
    ck_assert(tb_format_lookup("date") == tb_format_date);
    ck_assert(tb_format_lookup("time") == tb_format_time);
    ck_assert(tb_format_lookup("email") == tb_format_email);
    ck_assert(tb_format_lookup("uuid") == tb_format_uuid);
    ck_assert(tb_format_lookup("ipv4") == tb_format_ipv4);
    ck_assert(tb_format_lookup("ipv6") == tb_format_ipv6);
    ck_assert(tb_format_lookup("uri") == tb_format_uri);
    ck_assert(tb_format_lookup("uri-reference") == tb_format_uri_reference);
    ck_assert(tb_format_lookup("hostname") == tb_format_hostname);
    ck_assert(tb_format_lookup("byte") == tb_format_byte);
    ck_assert(tb_format_lookup("duration") == NULL);
    ck_assert(tb_format_lookup("Date-Time") == NULL);
    ck_assert(tb_format_lookup("") == NULL);
    ck_assert(tb_format_lookup(NULL) == NULL);
}
END_TEST

/* Random inputs from an alphabet rich in syntax characters; only checks memory safety. */
START_TEST(random_smoke)
{
    static const char alphabet[] = "09afxnAFXN:.-@[]/?#%T Zz+\"\\\0\x80\xc3\xbc";
    static const char *const names[] = {
        "date-time", "date", "time", "email", "uuid", "ipv4", "ipv6", "uri", "uri-reference",
        "hostname", "byte",
    };
    uint32_t state = 12345;
    char buf[96];

    for (int round = 0; round < 20000; round++) {
        size_t len;
        state = state * 1103515245u + 12345u;
        len = (state >> 16) % sizeof buf;
        for (size_t i = 0; i < len; i++) {
            state = state * 1103515245u + 12345u;
            buf[i] = alphabet[(state >> 16) % (sizeof alphabet - 1)];
        }
        if (round % 3 == 0 && len > 4) {
            memcpy(buf, "xn--", 4);
        }
        for (size_t f = 0; f < sizeof names / sizeof names[0]; f++) {
            (void)call_exact(tb_format_lookup(names[f]), buf, len);
        }
    }
}
END_TEST

static Suite *format_suite(void)
{
    Suite *suite = suite_create("format");
    TCase *official = tcase_create("json-schema-test-suite");
    TCase *edge = tcase_create("edge-cases");

    tcase_add_test(official, suite_date_time);
    tcase_add_test(official, suite_date);
    tcase_add_test(official, suite_time);
    tcase_add_test(official, suite_email);
    tcase_add_test(official, suite_uuid);
    tcase_add_test(official, suite_ipv4);
    tcase_add_test(official, suite_ipv6);
    tcase_add_test(official, suite_uri);
    tcase_add_test(official, suite_uri_reference);
    tcase_add_test(official, suite_hostname);
    suite_add_tcase(suite, official);

    tcase_add_test(edge, edge_date_time);
    tcase_add_test(edge, edge_date);
    tcase_add_test(edge, edge_time);
    tcase_add_test(edge, edge_email);
    tcase_add_test(edge, edge_uuid);
    tcase_add_test(edge, edge_byte);
    tcase_add_test(edge, edge_ipv4);
    tcase_add_test(edge, edge_ipv6);
    tcase_add_test(edge, edge_uri);
    tcase_add_test(edge, edge_uri_reference);
    tcase_add_test(edge, edge_hostname);
    tcase_add_test(edge, edge_lookup);
    tcase_add_test(edge, random_smoke);
    tcase_set_timeout(edge, 60);
    suite_add_tcase(suite, edge);
    return suite;
}

int main(void)
{
    SRunner *runner = srunner_create(format_suite());
    int failed;

    srunner_run_all(runner, CK_NORMAL);
    failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
