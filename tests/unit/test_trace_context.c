/* Unit tests of runtime/trace/context.c: W3C Trace Context level 2 (traceparent, tracestate)
 * and the trace and span id generators. The cases mirror the W3C harness
 * (../shared/testdata/w3c-trace-context/test.py) and PROTOCOLS.md section 4. */
#include "tablium/trace.h"

#include <check.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define TP "00-12345678901234567890123456789012-1234567890123456-01"

static bool decode(const char *s, tb_span_context *sc)
{
    return tb_traceparent_decode(s, strlen(s), sc);
}

static void assert_rejected(const char *s)
{
    tb_span_context sc;
    memset(&sc, 0xab, sizeof sc);
    ck_assert_msg(!decode(s, &sc), "accepted \"%s\"", s);
    static const tb_span_context zero;
    ck_assert_msg(memcmp(&sc, &zero, sizeof sc) == 0, "out not zeroed for \"%s\"", s);
}

static void assert_accepted(const char *s, const char *trace, const char *span, unsigned flags)
{
    tb_span_context sc;
    ck_assert_msg(decode(s, &sc), "rejected \"%s\"", s);
    char h[33];
    tb_trace_hex(sc.trace_id, 16, h);
    ck_assert_str_eq(h, trace);
    tb_trace_hex(sc.span_id, 8, h);
    ck_assert_str_eq(h, span);
    ck_assert_uint_eq(sc.flags, flags);
}

/* ---- traceparent ---- */

START_TEST(traceparent_v00_decodes_every_field)
{
    assert_accepted(TP, "12345678901234567890123456789012", "1234567890123456", 1);
    assert_accepted("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00",
                    "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", 0);
    assert_accepted("00-abcdefabcdefabcdefabcdefabcdef01-fedcba9876543210-02",
                    "abcdefabcdefabcdefabcdefabcdef01", "fedcba9876543210", 2);
}
END_TEST

START_TEST(traceparent_keeps_only_the_sampled_and_random_flags)
{
    assert_accepted("00-12345678901234567890123456789012-1234567890123456-03",
                    "12345678901234567890123456789012", "1234567890123456", 3);
    assert_accepted("00-12345678901234567890123456789012-1234567890123456-ff",
                    "12345678901234567890123456789012", "1234567890123456", 3);
    assert_accepted("00-12345678901234567890123456789012-1234567890123456-08",
                    "12345678901234567890123456789012", "1234567890123456", 0);
}
END_TEST

START_TEST(traceparent_ignores_spaces_and_tabs_around_the_value)
{
    const char *ok[] = {" " TP, "\t" TP, TP " ", TP "\t", "\t " TP " \t", "   " TP "\t\t\t"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        assert_accepted(ok[i], "12345678901234567890123456789012", "1234567890123456", 1);
    /* only OWS: not other whitespace, and not inside */
    assert_rejected("\n" TP);
    assert_rejected(TP "\r\n");
    assert_rejected("00- 12345678901234567890123456789012-1234567890123456-01");
    assert_rejected("  \t ");
    assert_rejected("");
}
END_TEST

START_TEST(traceparent_accepts_lowercase_hex_only)
{
    assert_rejected("00-1234567890123456789012345678901A-1234567890123456-01");
    assert_rejected("00-12345678901234567890123456789012-123456789012345A-01");
    assert_rejected("00-ABCDEF78901234567890123456789012-1234567890123456-01");
    assert_rejected("00-12345678901234567890123456789012-1234567890123456-0A");
    assert_rejected("0A-12345678901234567890123456789012-1234567890123456-01");
    assert_rejected("00-1234567890123456789012345678901g-1234567890123456-01");
    assert_rejected("00-12345678901234567890123456789012-1234567890123456-0x");
}
END_TEST

START_TEST(traceparent_rejects_the_harness_illegal_characters)
{
    const char *bad[] = {
        ".0-12345678901234567890123456789012-1234567890123456-01",
        "0.-12345678901234567890123456789012-1234567890123456-01",
        "00-.2345678901234567890123456789012-1234567890123456-01",
        "00-1234567890123456789012345678901.-1234567890123456-01",
        "00-12345678901234567890123456789012-.234567890123456-01",
        "00-12345678901234567890123456789012-123456789012345.-01",
        "00-12345678901234567890123456789012-1234567890123456-.0",
        "00-12345678901234567890123456789012-1234567890123456-0.",
        "00_12345678901234567890123456789012-1234567890123456-01",
        "00-12345678901234567890123456789012_1234567890123456-01",
        "00-12345678901234567890123456789012-1234567890123456_01",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_rejected(bad[i]);
}
END_TEST

START_TEST(traceparent_rejects_fields_of_the_wrong_length)
{
    const char *bad[] = {
        "000-12345678901234567890123456789012-1234567890123456-01",
        "0000-12345678901234567890123456789012-1234567890123456-01",
        "0-12345678901234567890123456789012-1234567890123456-01",
        "00-123456789012345678901234567890123-1234567890123456-01",
        "00-1234567890123456789012345678901-1234567890123456-01",
        "00-12345678901234567890123456789012-12345678901234567-01",
        "00-12345678901234567890123456789012-123456789012345-01",
        "00-12345678901234567890123456789012-1234567890123456-001",
        "00-12345678901234567890123456789012-1234567890123456-1",
        "00-12345678901234567890123456789012-1234567890123456",
        "00-12345678901234567890123456789012-1234567890123456-",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_rejected(bad[i]);
}
END_TEST

START_TEST(traceparent_rejects_all_zero_ids)
{
    assert_rejected("00-00000000000000000000000000000000-1234567890123456-01");
    assert_rejected("00-12345678901234567890123456789012-0000000000000000-01");
    assert_rejected("00-00000000000000000000000000000000-0000000000000000-00");
    /* one non-zero digit anywhere is enough */
    assert_accepted("00-00000000000000000000000000000001-0000000000000100-00",
                    "00000000000000000000000000000001", "0000000000000100", 0);
    assert_accepted("00-10000000000000000000000000000000-8000000000000000-00",
                    "10000000000000000000000000000000", "8000000000000000", 0);
}
END_TEST

START_TEST(traceparent_version_00_is_exactly_55_characters)
{
    assert_rejected(TP ".");
    assert_rejected(TP "-what-the-future-will-be-like");
    assert_rejected(TP "-");
    assert_rejected(TP "0");
    assert_rejected(TP " x");
}
END_TEST

START_TEST(traceparent_future_versions_parse_the_known_fields)
{
    const char *t = "12345678901234567890123456789012", *p = "1234567890123456";
    assert_accepted("cc-12345678901234567890123456789012-1234567890123456-01", t, p, 1);
    assert_accepted(
        "cc-12345678901234567890123456789012-1234567890123456-01-what-the-future-will-be-like", t,
        p, 1);
    assert_accepted("01-12345678901234567890123456789012-1234567890123456-02-", t, p, 2);
    assert_accepted("fe-12345678901234567890123456789012-1234567890123456-00-x ", t, p, 0);
    assert_rejected(
        "cc-12345678901234567890123456789012-1234567890123456-01.what-the-future-will-be-like");
    assert_rejected("cc-12345678901234567890123456789012-1234567890123456-010");
    /* the known fields still follow the rules */
    assert_rejected("cc-00000000000000000000000000000000-1234567890123456-01-x");
    assert_rejected("cc-12345678901234567890123456789012-1234567890123456-0G-x");
    assert_rejected("cC-12345678901234567890123456789012-1234567890123456-01");
}
END_TEST

START_TEST(traceparent_version_ff_is_invalid)
{
    assert_rejected("ff-12345678901234567890123456789012-1234567890123456-01");
    assert_rejected("ff-12345678901234567890123456789012-1234567890123456-01-x");
}
END_TEST

START_TEST(traceparent_reads_only_len_bytes)
{
    char buf[80];
    snprintf(buf, sizeof buf, "%s-and-more", TP);
    tb_span_context sc;
    ck_assert(tb_traceparent_decode(buf, TB_TRACEPARENT_LEN, &sc));
    ck_assert(!tb_traceparent_decode(buf, TB_TRACEPARENT_LEN - 1, &sc));
    ck_assert(!tb_traceparent_decode(buf, strlen(buf), &sc));
    /* no NUL at all after the value */
    char exact[TB_TRACEPARENT_LEN];
    memcpy(exact, TP, TB_TRACEPARENT_LEN);
    ck_assert(tb_traceparent_decode(exact, sizeof exact, &sc));
    ck_assert(!tb_traceparent_decode(NULL, 0, &sc));
    ck_assert(!tb_traceparent_decode(NULL, 55, &sc));
}
END_TEST

START_TEST(traceparent_encode_round_trips_and_masks_flags)
{
    tb_span_context sc, back;
    ck_assert(decode("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03", &sc));
    char out[TB_TRACEPARENT_LEN + 1];
    memset(out, 'x', sizeof out);
    ck_assert_uint_eq(tb_traceparent_encode(&sc, out), TB_TRACEPARENT_LEN);
    ck_assert_str_eq(out, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03");
    ck_assert(decode(out, &back));
    ck_assert_mem_eq(&sc, &back, sizeof sc);

    sc.flags = 0xff; /* unknown bits are never sent */
    tb_traceparent_encode(&sc, out);
    ck_assert_str_eq(out + 53, "03");
    sc.flags = TB_TRACE_FLAG_SAMPLED | 0x80;
    tb_traceparent_encode(&sc, out);
    ck_assert_str_eq(out + 53, "01");
    sc.flags = 0;
    tb_traceparent_encode(&sc, out);
    ck_assert_str_eq(out, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00");
    /* a future version is sent on as 00 */
    ck_assert(decode("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-zz", &sc));
    tb_traceparent_encode(&sc, out);
    ck_assert_str_eq(out, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
}
END_TEST

START_TEST(span_context_is_valid_only_with_both_ids)
{
    tb_span_context sc = {0};
    ck_assert(!tb_span_context_valid(&sc));
    ck_assert(!tb_span_context_valid(NULL));
    sc.trace_id[15] = 1;
    ck_assert(!tb_span_context_valid(&sc));
    sc.span_id[0] = 1;
    ck_assert(tb_span_context_valid(&sc));
    sc.trace_id[15] = 0;
    ck_assert(!tb_span_context_valid(&sc));
}
END_TEST

START_TEST(trace_hex_is_lowercase_and_nul_terminated)
{
    const uint8_t b[] = {0x00, 0x0f, 0xa0, 0xff, 0x5c};
    char out[11];
    memset(out, 'x', sizeof out);
    tb_trace_hex(b, sizeof b, out);
    ck_assert_str_eq(out, "000fa0ff5c");
    tb_trace_hex(b, 0, out);
    ck_assert_str_eq(out, "");
}
END_TEST

/* ---- tracestate ---- */

static size_t norm(char *out, size_t cap, size_t n, ...)
{
    const char *vals[16];
    va_list ap;
    va_start(ap, n);
    for (size_t i = 0; i < n; i++)
        vals[i] = va_arg(ap, const char *);
    va_end(ap);
    memset(out, '#', cap);
    size_t len = tb_tracestate_normalize(vals, n, out, cap);
    if (cap)
        ck_assert_uint_eq(strlen(out), len);
    return len;
}

#define NORM1(s) norm(out, sizeof out, 1, (s))

static void assert_discarded(const char *s)
{
    char out[TB_TRACESTATE_MAX + 1];
    ck_assert_msg(NORM1(s) == 0, "kept \"%s\" as \"%s\"", s, out);
    ck_assert_str_eq(out, "");
}

static void assert_normal(const char *s, const char *want)
{
    char out[TB_TRACESTATE_MAX + 1];
    ck_assert_uint_eq(NORM1(s), strlen(want));
    ck_assert_str_eq(out, want);
}

START_TEST(tracestate_headers_join_into_one_list_in_order)
{
    char out[TB_TRACESTATE_MAX + 1];
    ck_assert_uint_eq(norm(out, sizeof out, 3, "foo=1,bar=2", "rojo=1,congo=2", "baz=3"), 32);
    ck_assert_str_eq(out, "foo=1,bar=2,rojo=1,congo=2,baz=3");
    norm(out, sizeof out, 2, "b=2", "a=1");
    ck_assert_str_eq(out, "b=2,a=1");
}
END_TEST

START_TEST(tracestate_drops_spaces_and_empty_members)
{
    assert_normal("foo=1 \t , \t bar=2, \t baz=3", "foo=1,bar=2,baz=3");
    assert_normal("foo=1\t \t,\t \tbar=2,\t \tbaz=3", "foo=1,bar=2,baz=3");
    assert_normal(" foo=1", "foo=1");
    assert_normal("\tfoo=1", "foo=1");
    assert_normal("foo=1 ", "foo=1");
    assert_normal("foo=1\t", "foo=1");
    assert_normal("\t foo=1 \t", "foo=1");
    assert_normal(",,foo=1,, ,\t,bar=2,", "foo=1,bar=2");
    assert_normal("a= b c", "a= b c"); /* spaces inside and leading in the value are the value's */
    char out[TB_TRACESTATE_MAX + 1];
    ck_assert_uint_eq(norm(out, sizeof out, 3, "", "foo=1", ""), 5);
    ck_assert_str_eq(out, "foo=1");
    ck_assert_uint_eq(norm(out, sizeof out, 2, "foo=1", ""), 5);
    ck_assert_uint_eq(norm(out, sizeof out, 2, "", "foo=1"), 5);
    ck_assert_uint_eq(norm(out, sizeof out, 1, ""), 0);
    ck_assert_str_eq(out, "");
    ck_assert_uint_eq(norm(out, sizeof out, 2, " , ", "\t"), 0);
    ck_assert_uint_eq(norm(out, sizeof out, 0), 0);
    ck_assert_str_eq(out, "");
    ck_assert_uint_eq(norm(out, sizeof out, 2, NULL, "a=1"), 3);
}
END_TEST

START_TEST(tracestate_an_invalid_key_discards_everything)
{
    assert_discarded("foo =1");
    assert_discarded("FOO=1");
    assert_discarded("fOo=1,bar=2");
    assert_discarded("foo.bar=1");
    assert_discarded("bar=2,foo.bar=1");
    assert_discarded("=1");
    assert_discarded("@foo=1,bar=2");
    assert_discarded("_foo=1");
    assert_discarded("-foo=1");
    assert_discarded("*foo=1");
    assert_discarded("/foo=1");
    assert_discarded("foo");
    assert_discarded("bar=2,foo");
    assert_discarded("f\xc3\xa9=1");
}
END_TEST

START_TEST(tracestate_keys_take_at_signs_after_the_first_character)
{
    assert_normal("foo@=1,bar=2", "foo@=1,bar=2");
    assert_normal("foo@@bar=1,bar=2", "foo@@bar=1,bar=2");
    assert_normal("foo@bar@baz=1,bar=2", "foo@bar@baz=1,bar=2");
    assert_normal("0tenant@sys=1", "0tenant@sys=1");
}
END_TEST

START_TEST(tracestate_keys_are_at_most_256_characters)
{
    char key[300], member[320], want[340];
    char out[TB_TRACESTATE_MAX + 1];
    memset(key, 'z', 256);
    key[256] = '\0';
    snprintf(member, sizeof member, "%s=1", key);
    snprintf(want, sizeof want, "foo=1,%s=1", key);
    norm(out, sizeof out, 2, "foo=1", member);
    ck_assert_str_eq(out, want);

    memset(key, 'z', 257);
    key[257] = '\0';
    snprintf(member, sizeof member, "%s=1", key);
    ck_assert_uint_eq(norm(out, sizeof out, 2, "foo=1", member), 0);

    /* tenant@system: the same 256 limit over the whole key, no separate part limits */
    const char *tenant_keys[3] = {NULL, NULL, NULL};
    char k1[260], k2[260];
    memset(k1, 't', 241);
    k1[241] = '@';
    memset(k1 + 242, 'v', 14);
    k1[256] = '\0';
    memset(k2, 't', 242);
    memcpy(k2 + 242, "@v", 3);
    tenant_keys[0] = k1;
    tenant_keys[1] = k2;
    tenant_keys[2] = "t@vvvvvvvvvvvvvvv";
    for (int i = 0; i < 3; i++) {
        snprintf(member, sizeof member, "%s=1", tenant_keys[i]);
        snprintf(want, sizeof want, "foo=1,%s=1", tenant_keys[i]);
        norm(out, sizeof out, 2, "foo=1", member);
        ck_assert_str_eq(out, want);
    }
}
END_TEST

START_TEST(tracestate_values_take_every_allowed_character)
{
    char key[64] = "", value[128] = "", member[256], want[256];
    char out[TB_TRACESTATE_MAX + 1];
    size_t k = 0, v = 0;
    for (int c = 'a'; c <= 'z'; c++)
        key[k++] = (char)c;
    memcpy(key + k, "0123456789_-*/", 15);
    for (int c = 0x20; c <= 0x7e; c++)
        if (c != ',' && c != '=')
            value[v++] = (char)c;
    value[v] = '\0';
    snprintf(member, sizeof member, "%s=%s", key, value);
    ck_assert_uint_eq(NORM1(member), strlen(member));
    ck_assert_str_eq(out, member);
    /* a leading space in the value is part of it, so no OWS trimming happened there */
    ck_assert_ptr_nonnull(strstr(out, "= !\""));

    snprintf(member, sizeof member, "%s@a-z0-9_-*/=%s", key, value);
    snprintf(want, sizeof want, "%s", member);
    NORM1(member);
    ck_assert_str_eq(out, want);
}
END_TEST

START_TEST(tracestate_an_invalid_value_discards_everything)
{
    assert_discarded("foo=bar=baz");
    assert_discarded("foo=,bar=3");
    assert_discarded("bar=3,foo=");
    assert_discarded("foo= \t");
    assert_discarded("foo=a\tb");
    assert_discarded("foo=a\x7f");
    assert_discarded("foo=a\x01");
    assert_discarded("foo=\xc3\xa9");
    assert_discarded("foo=a\r\nbar=2");

    char value[300], member[320];
    memset(value, 'v', 256);
    value[256] = '\0';
    snprintf(member, sizeof member, "k=%s", value);
    assert_normal(member, member);
    memset(value, 'v', 257);
    value[257] = '\0';
    snprintf(member, sizeof member, "k=%s", value);
    assert_discarded(member);
}
END_TEST

START_TEST(tracestate_with_more_than_32_members_is_discarded)
{
    char a[200], b[200], c[200], d[64], want[512];
    char out[TB_TRACESTATE_MAX + 1];
    size_t o = 0;
    char *parts[4] = {a, b, c, d};
    for (int h = 0; h < 4; h++) {
        parts[h][0] = '\0';
        for (int i = h * 10 + 1; i <= (h == 3 ? 32 : h * 10 + 10); i++) {
            char m[40];
            snprintf(m, sizeof m, "%sbar%02d=%02d", i == h * 10 + 1 ? "" : ",", i, i);
            strcat(parts[h], m);
            o += (size_t)snprintf(want + o, sizeof want - o, "%sbar%02d=%02d", i == 1 ? "" : ",", i,
                                  i);
        }
    }
    ck_assert_uint_eq(norm(out, sizeof out, 4, a, b, c, d), strlen(want));
    ck_assert_str_eq(out, want);
    strcat(d, ",bar33=33");
    ck_assert_uint_eq(norm(out, sizeof out, 4, a, b, c, d), 0);
    ck_assert_str_eq(out, "");
    /* empty members do not count */
    strcpy(d, "bar31=31,,, ,bar32=32,");
    ck_assert_uint_eq(norm(out, sizeof out, 4, a, b, c, d), strlen(want));
}
END_TEST

START_TEST(tracestate_duplicate_keys_keep_the_first)
{
    char out[TB_TRACESTATE_MAX + 1];
    assert_normal("foo=1,foo=1", "foo=1");
    assert_normal("foo=1,foo=2", "foo=1");
    assert_normal("foo=1,bar=2,foo=3,baz=4", "foo=1,bar=2,baz=4");
    norm(out, sizeof out, 2, "foo=1", "foo=2");
    ck_assert_str_eq(out, "foo=1");
    /* a prefix is another key */
    assert_normal("foo=1,fo=2,foo@x=3", "foo=1,fo=2,foo@x=3");
}
END_TEST

START_TEST(tracestate_over_capacity_is_cut_at_member_boundaries)
{
    /* 40 members of 15 characters ("kNN=vvvvvvvvvvv") would pass 512 but 40 > 32, so use 32
     * members of 20 characters: 32 * 21 - 1 = 671 */
    char list[1024];
    size_t o = 0;
    for (int i = 0; i < 32; i++)
        o += (size_t)snprintf(list + o, sizeof list - o, "%sk%02d=vvvvvvvvvvvvvvvv", i ? "," : "",
                              i);
    ck_assert_uint_eq(o, 671);
    char out[TB_TRACESTATE_MAX + 1];
    size_t n = NORM1(list);
    ck_assert_uint_le(n, TB_TRACESTATE_MAX);
    ck_assert_uint_eq(n, 24 * 21 - 1); /* 24 whole members fit in 512 */
    ck_assert_int_eq(memcmp(out, list, n), 0);
    ck_assert_int_eq(list[n], ',');

    /* the spec's order: members over 128 characters go first, from the end */
    char big1[200], big2[200], lst[1024];
    memset(big1, 'a', 150);
    memcpy(big1, "big1=", 5);
    big1[150] = '\0';
    memset(big2, 'b', 150);
    memcpy(big2, "big2=", 5);
    big2[150] = '\0';
    snprintf(lst, sizeof lst, "%s,a=1,%s,b=2", big1, big2);
    char small[64];
    ck_assert_uint_eq(norm(small, sizeof small, 1, lst), 7);
    ck_assert_str_eq(small, "a=1,b=2");
    char mid[200];
    ck_assert_uint_eq(norm(mid, sizeof mid, 1, lst), 158);
    ck_assert_int_eq(memcmp(mid, big1, 150), 0);
    ck_assert_str_eq(mid + 150, ",a=1,b=2");

    /* nothing fits: nothing, and exactly fitting keeps all */
    char tiny[4];
    ck_assert_uint_eq(norm(tiny, sizeof tiny, 1, "abcd=1"), 0);
    ck_assert_str_eq(tiny, "");
    char eight[8];
    ck_assert_uint_eq(norm(eight, sizeof eight, 1, "a=1,b=2"), 7);
    ck_assert_str_eq(eight, "a=1,b=2");
    ck_assert_uint_eq(norm(eight, 7, 1, "a=1,b=2"), 3);
    ck_assert_str_eq(eight, "a=1");
    ck_assert_uint_eq(tb_tracestate_normalize((const char *const[]){"a=1"}, 1, eight, 0), 0);
}
END_TEST

/* ---- ids ---- */

START_TEST(ids_are_non_zero_and_distinct)
{
    enum { N = 2000 };
    static uint8_t t[N][16], s[N][8];
    for (int i = 0; i < N; i++) {
        tb_trace_id_new(t[i]);
        tb_span_id_new(s[i]);
        tb_span_context sc;
        memcpy(sc.trace_id, t[i], 16);
        memcpy(sc.span_id, s[i], 8);
        ck_assert(tb_span_context_valid(&sc));
    }
    /* (counted, not asserted per pair: each ck_assert is a write to Check's pipe) */
    int dups = 0;
    for (int i = 0; i < N; i++)
        for (int j = 0; j < i; j++)
            dups += !memcmp(t[i], t[j], 16) + !memcmp(s[i], s[j], 8);
    ck_assert_int_eq(dups, 0);
}
END_TEST

/* Level 2: the right-most 7 bytes of a trace id are random, so each of their bits is seen both
 * set and clear over many ids. */
START_TEST(trace_ids_are_random_in_their_right_most_7_bytes)
{
    uint8_t seen_set[16] = {0}, seen_clear[16] = {0};
    for (int i = 0; i < 1000; i++) {
        uint8_t id[16];
        tb_trace_id_new(id);
        for (int b = 0; b < 16; b++) {
            seen_set[b] |= id[b];
            seen_clear[b] |= (uint8_t)~id[b];
        }
    }
    for (int b = 9; b < 16; b++) {
        ck_assert_uint_eq(seen_set[b], 0xff);
        ck_assert_uint_eq(seen_clear[b], 0xff);
    }
}
END_TEST

static void *thread_ids(void *arg)
{
    uint8_t *out = arg;
    tb_trace_id_new(out);
    tb_span_id_new(out + 16);
    return NULL;
}

START_TEST(threads_get_their_own_ids)
{
    enum { T = 8 };
    pthread_t th[T];
    uint8_t ids[T][24];
    for (int i = 0; i < T; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, thread_ids, ids[i]), 0);
    for (int i = 0; i < T; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < T; i++)
        for (int j = 0; j < i; j++) {
            ck_assert(memcmp(ids[i], ids[j], 16) != 0);
            ck_assert(memcmp(ids[i] + 16, ids[j] + 16, 8) != 0);
        }
}
END_TEST

/* The generator is per thread and seeded once: a forked child must reseed, not continue the
 * parent's sequence. */
START_TEST(a_forked_child_does_not_repeat_its_parents_ids)
{
    uint8_t first[24], child[24], parent[24];
    tb_trace_id_new(first);
    tb_span_id_new(first + 16);
    int fd[2];
    ck_assert_int_eq(pipe(fd), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        uint8_t c[24];
        tb_trace_id_new(c);
        tb_span_id_new(c + 16);
        _exit(write(fd[1], c, sizeof c) == (ssize_t)sizeof c ? 0 : 1);
    }
    close(fd[1]);
    ck_assert_int_eq((int)read(fd[0], child, sizeof child), (int)sizeof child);
    close(fd[0]);
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    tb_trace_id_new(parent);
    tb_span_id_new(parent + 16);
    ck_assert(memcmp(child, parent, 16) != 0);
    ck_assert(memcmp(child + 16, parent + 16, 8) != 0);
    ck_assert(memcmp(child, first, 16) != 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("trace_context");
    TCase *tp = tcase_create("traceparent");
    tcase_add_test(tp, traceparent_v00_decodes_every_field);
    tcase_add_test(tp, traceparent_keeps_only_the_sampled_and_random_flags);
    tcase_add_test(tp, traceparent_ignores_spaces_and_tabs_around_the_value);
    tcase_add_test(tp, traceparent_accepts_lowercase_hex_only);
    tcase_add_test(tp, traceparent_rejects_the_harness_illegal_characters);
    tcase_add_test(tp, traceparent_rejects_fields_of_the_wrong_length);
    tcase_add_test(tp, traceparent_rejects_all_zero_ids);
    tcase_add_test(tp, traceparent_version_00_is_exactly_55_characters);
    tcase_add_test(tp, traceparent_future_versions_parse_the_known_fields);
    tcase_add_test(tp, traceparent_version_ff_is_invalid);
    tcase_add_test(tp, traceparent_reads_only_len_bytes);
    tcase_add_test(tp, traceparent_encode_round_trips_and_masks_flags);
    tcase_add_test(tp, span_context_is_valid_only_with_both_ids);
    tcase_add_test(tp, trace_hex_is_lowercase_and_nul_terminated);
    suite_add_tcase(s, tp);
    TCase *ts = tcase_create("tracestate");
    tcase_add_test(ts, tracestate_headers_join_into_one_list_in_order);
    tcase_add_test(ts, tracestate_drops_spaces_and_empty_members);
    tcase_add_test(ts, tracestate_an_invalid_key_discards_everything);
    tcase_add_test(ts, tracestate_keys_take_at_signs_after_the_first_character);
    tcase_add_test(ts, tracestate_keys_are_at_most_256_characters);
    tcase_add_test(ts, tracestate_values_take_every_allowed_character);
    tcase_add_test(ts, tracestate_an_invalid_value_discards_everything);
    tcase_add_test(ts, tracestate_with_more_than_32_members_is_discarded);
    tcase_add_test(ts, tracestate_duplicate_keys_keep_the_first);
    tcase_add_test(ts, tracestate_over_capacity_is_cut_at_member_boundaries);
    suite_add_tcase(s, ts);
    TCase *ids = tcase_create("ids");
    tcase_add_test(ids, ids_are_non_zero_and_distinct);
    tcase_add_test(ids, trace_ids_are_random_in_their_right_most_7_bytes);
    tcase_add_test(ids, threads_get_their_own_ids);
    tcase_add_test(ids, a_forked_child_does_not_repeat_its_parents_ids);
    suite_add_tcase(s, ids);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
