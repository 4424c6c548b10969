/* Unit tests of runtime/realtime/packet.c: the Engine.IO polling payload and the Socket.IO
 * packet codec, with socket.io-parser's rules (the wire examples of PROTOCOLS.md section 1). */
#include "packet.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

static int decode(const char *s, tb_rt__sio_packet *p, const char **why)
{
    return tb_rt__sio_decode(s, strlen(s), p, why);
}

START_TEST(connect_packets_with_and_without_namespace_and_auth)
{
    tb_rt__sio_packet p;
    const char *why;
    ck_assert_int_eq(decode("0", &p, &why), 0);
    ck_assert_int_eq(p.type, TB_SIO_CONNECT);
    ck_assert_int_eq((int)p.nsp_len, 1);
    ck_assert_ptr_null(p.data);
    ck_assert_int_eq(decode("0/games,{\"token\":\"abc\"}", &p, &why), 0);
    ck_assert_int_eq((int)p.nsp_len, 6);
    ck_assert(memcmp(p.nsp, "/games", 6) == 0);
    ck_assert_str_eq(json_string_value(json_object_get(p.data, "token")), "abc");
    json_decref(p.data);
    ck_assert_int_eq(decode("0/custom", &p, &why), 0); /* no trailing comma */
    ck_assert_int_eq((int)p.nsp_len, 7);
    ck_assert_int_ne(decode("0[1]", &p, &why), 0);
    ck_assert_str_eq(why, "CONNECT data must be an object");
    ck_assert_int_ne(decode("0\"x\"", &p, &why), 0);
}
END_TEST

START_TEST(events_need_a_non_empty_array_with_a_valid_name)
{
    tb_rt__sio_packet p;
    const char *why;
    ck_assert_int_eq(decode("2[\"chat\",\"hi\"]", &p, &why), 0);
    ck_assert_int_eq(p.type, TB_SIO_EVENT);
    ck_assert_int_eq((int)p.ack_id, -1);
    json_decref(p.data);
    ck_assert_int_eq(decode("212[\"chat\",\"hi\"]", &p, &why), 0);
    ck_assert_int_eq((int)p.ack_id, 12);
    json_decref(p.data);
    ck_assert_int_eq(decode("2/games,7[42]", &p, &why), 0); /* numeric names are allowed */
    ck_assert_int_eq((int)p.ack_id, 7);
    json_decref(p.data);
    /* an id past 2^53 is an ack id still (socket.io-parser takes it; it closed the link) */
    ck_assert_int_eq(decode("2999999999999999999[\"x\"]", &p, &why), 0);
    ck_assert(p.ack_id == INT64_C(999999999999999999));
    json_decref(p.data);
    ck_assert_int_ne(decode("29999999999999999999[\"x\"]", &p, &why), 0); /* past int64 */
    ck_assert_str_eq(why, "invalid ack id");
    ck_assert_int_ne(decode("2[]", &p, &why), 0);
    ck_assert_str_eq(why, "EVENT data must be a non-empty array");
    ck_assert_int_ne(decode("2{\"a\":1}", &p, &why), 0);
    ck_assert_int_ne(decode("2[null]", &p, &why), 0);
    ck_assert_str_eq(why, "an event name must be a string or a number");
    const char *reserved[] = {"connect",       "connect_error", "disconnect",
                              "disconnecting", "newListener",   "removeListener"};
    for (size_t i = 0; i < 6; i++) {
        char text[64];
        snprintf(text, sizeof text, "2[\"%s\"]", reserved[i]);
        ck_assert_int_ne(decode(text, &p, &why), 0);
        ck_assert_str_eq(why, "reserved event name");
    }
    ck_assert_int_ne(decode("2[\"a\\u0000b\"]", &p, &why), 0);
    ck_assert_int_ne(decode("2[\"chat\"", &p, &why), 0);
    ck_assert_str_eq(why, "invalid payload");
    ck_assert_int_ne(decode("7[\"x\"]", &p, &why), 0);
    ck_assert_str_eq(why, "unknown packet type");
    ck_assert_int_ne(decode("", &p, &why), 0);
}
END_TEST

START_TEST(binary_packets_count_and_check_their_attachments)
{
    tb_rt__sio_packet p;
    const char *why;
    ck_assert_int_eq(decode("51-[\"up\",{\"_placeholder\":true,\"num\":0}]", &p, &why), 0);
    ck_assert_int_eq(p.type, TB_SIO_BINARY_EVENT);
    ck_assert_uint_eq(p.nattach, 1);
    json_decref(p.data);
    ck_assert_int_eq(decode("62-/custom,3[{\"_placeholder\":true,\"num\":1},"
                            "{\"_placeholder\":true,\"num\":0}]",
                            &p, &why),
                     0);
    ck_assert_int_eq((int)p.ack_id, 3);
    json_decref(p.data);
    ck_assert_int_ne(decode("51-[\"up\",{\"_placeholder\":true,\"num\":1}]", &p, &why), 0);
    ck_assert_str_eq(why, "illegal attachments");
    /* no attachments: a placeholder names none (the reference parser closes the link too); an
     * object like one in a plain EVENT is data */
    ck_assert_int_ne(decode("50-[\"up\",{\"_placeholder\":true,\"num\":0}]", &p, &why), 0);
    ck_assert_str_eq(why, "illegal attachments");
    ck_assert_int_eq(decode("50-[\"up\",1]", &p, &why), 0);
    json_decref(p.data);
    ck_assert_int_eq(decode("2[\"up\",{\"_placeholder\":true,\"num\":0}]", &p, &why), 0);
    json_decref(p.data);
    ck_assert_int_ne(decode("5[\"up\"]", &p, &why), 0);
    ck_assert_int_ne(decode("511-[\"up\"]", &p, &why), 0);
    ck_assert_str_eq(why, "too many attachments");
}
END_TEST

START_TEST(acks_disconnects_and_connect_errors)
{
    tb_rt__sio_packet p;
    const char *why;
    ck_assert_int_eq(decode("312[\"ok\"]", &p, &why), 0);
    ck_assert_int_eq(p.type, TB_SIO_ACK);
    json_decref(p.data);
    ck_assert_int_ne(decode("312{}", &p, &why), 0);
    ck_assert_int_eq(decode("1/games,", &p, &why), 0);
    ck_assert_int_ne(decode("1[1]", &p, &why), 0);
    ck_assert_int_eq(decode("4{\"message\":\"no\"}", &p, &why), 0);
    json_decref(p.data);
}
END_TEST

START_TEST(encoding_matches_the_wire_examples)
{
    tb_buf b = TB_BUF_INIT;
    tb_rt__sio_encode(&b, TB_SIO_CONNECT, 0, "/games", -1, "{\"sid\":\"x\"}", 11);
    ck_assert_str_eq(b.data, "40/games,{\"sid\":\"x\"}");
    tb_buf_reset(&b);
    tb_rt__sio_encode(&b, TB_SIO_ACK, 0, "/", 12, "[\"ok\"]", 6);
    ck_assert_str_eq(b.data, "4312[\"ok\"]");
    tb_buf_reset(&b);
    tb_rt__sio_encode(&b, TB_SIO_DISCONNECT, 0, "/games", -1, NULL, 0);
    ck_assert_str_eq(b.data, "41/games");
    tb_buf_reset(&b);
    tb_rt__sio_encode(&b, TB_SIO_BINARY_EVENT, 2, "/", -1, "[]", 2);
    ck_assert_str_eq(b.data, "452-[]");
    tb_buf_reset(&b);
    json_t *args = json_pack("[is{s:b}]", 1, "two", "three", 1);
    ck_assert_int_eq(tb_rt__sio_event_json(&b, "ev\"x", args), 0);
    ck_assert_str_eq(b.data, "[\"ev\\\"x\",1,\"two\",{\"three\":true}]");
    tb_buf_reset(&b);
    ck_assert_int_eq(tb_rt__sio_event_json(&b, "e", NULL), 0);
    ck_assert_str_eq(b.data, "[\"e\"]");
    json_decref(args);
    tb_buf_deinit(&b);
}
END_TEST

typedef struct seen {
    int n;
    int types[8];
    char text[8][32];
    int binary[8];
} seen;

static int collect(int type, const unsigned char *d, size_t len, bool binary, void *ud)
{
    seen *s = ud;
    if (s->n >= 8)
        return 1;
    s->types[s->n] = type;
    s->binary[s->n] = binary;
    snprintf(s->text[s->n], sizeof s->text[0], "%.*s", (int)len, (const char *)d);
    s->n++;
    return 0;
}

START_TEST(polling_payloads_split_on_the_record_separator)
{
    seen s = {0};
    const char *body = "42[\"a\"]\x1e"
                       "3\x1e"
                       "bAQID";
    ck_assert_int_eq(tb_rt__payload_decode((const unsigned char *)body, strlen(body), collect, &s),
                     0);
    ck_assert_int_eq(s.n, 3);
    ck_assert_int_eq(s.types[0], TB_EIO_MESSAGE);
    ck_assert_str_eq(s.text[0], "2[\"a\"]");
    ck_assert_int_eq(s.types[1], TB_EIO_PONG);
    ck_assert_int_eq(s.binary[2], 1);
    ck_assert_str_eq(s.text[2], "\x01\x02\x03");
    seen t = {0};
    ck_assert_int_ne(tb_rt__payload_decode((const unsigned char *)"4a\x1e\x1e"
                                                                  "3",
                                           5, collect, &t),
                     0);
    ck_assert_int_eq(t.n, 1); /* the packets before the bad one were delivered */
    ck_assert_int_ne(tb_rt__payload_decode((const unsigned char *)"9x", 2, collect, &t), 0);
    ck_assert_int_ne(tb_rt__payload_decode((const unsigned char *)"b!!!", 4, collect, &t), 0);
    ck_assert_int_ne(tb_rt__payload_decode((const unsigned char *)"", 0, collect, &t), 0);
}
END_TEST

START_TEST(base64_matches_rfc4648_vectors)
{
    const char *in[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    const char *out[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    for (int i = 0; i < 7; i++) {
        tb_buf b = TB_BUF_INIT;
        tb_buf_base64(&b, (const unsigned char *)in[i], strlen(in[i]), false);
        ck_assert_str_eq(b.data ? b.data : "", out[i]);
        unsigned char dec[16];
        long n = tb_rt__base64_decode(out[i], strlen(out[i]), dec);
        ck_assert_int_eq(n, (long)strlen(in[i]));
        ck_assert(memcmp(dec, in[i], (size_t)n) == 0);
        tb_buf_deinit(&b);
    }
    unsigned char dec[8];
    ck_assert_int_eq(tb_rt__base64_decode("Z", 1, dec), -1);
    ck_assert_int_eq(tb_rt__base64_decode("Zm9*", 4, dec), -1);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("rt_packet");
    TCase *tc = tcase_create("packet");
    tcase_add_test(tc, connect_packets_with_and_without_namespace_and_auth);
    tcase_add_test(tc, events_need_a_non_empty_array_with_a_valid_name);
    tcase_add_test(tc, binary_packets_count_and_check_their_attachments);
    tcase_add_test(tc, acks_disconnects_and_connect_errors);
    tcase_add_test(tc, encoding_matches_the_wire_examples);
    tcase_add_test(tc, polling_payloads_split_on_the_record_separator);
    tcase_add_test(tc, base64_matches_rfc4648_vectors);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
