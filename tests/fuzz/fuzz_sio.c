/*
 * libFuzzer target: the Engine.IO and Socket.IO packet parsers (runtime/realtime/packet.c).
 *
 * The first byte picks the entry point: even, a polling POST body (tb_rt__payload_decode, whose
 * message packets then go through the Socket.IO decoder); odd, one Socket.IO packet text. Beyond
 * "no crash, no leak, no sanitizer report", every packet that decodes must encode back to text
 * that decodes to the same packet, and every binary message must survive base64 both ways.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "packet.h"
#include "tablium/json.h"

static void check(int cond, const char *what)
{
    if (!cond) {
        fprintf(stderr, "fuzz_sio: invariant broken: %s\n", what);
        abort();
    }
}

static void roundtrip(const char *s, size_t len)
{
    tb_rt__sio_packet p;
    const char *why;
    if (tb_rt__sio_decode(s, len, &p, &why) != 0) {
        check(why != NULL, "a refusal names its rule");
        return;
    }
    char *nsp = strndup(p.nsp, p.nsp_len);
    tb_buf data = TB_BUF_INIT, text = TB_BUF_INIT;
    if (p.data)
        check(tb_buf_json_value(&data, p.data) == 0, "decoded data encodes");
    tb_rt__sio_encode(&text, p.type, p.nattach, nsp, p.ack_id, p.data ? data.data : NULL, data.len);
    tb_rt__sio_packet q;
    check(text.len > 0 && text.data[0] == '4', "an encoded packet is an Engine.IO message");
    check(tb_rt__sio_decode(text.data + 1, text.len - 1, &q, &why) == 0,
          "an encoded packet decodes");
    check(q.type == p.type && q.nattach == p.nattach && q.ack_id == p.ack_id,
          "type, attachments and ack id survive");
    check(q.nsp_len == p.nsp_len && memcmp(q.nsp, nsp, p.nsp_len) == 0, "namespace survives");
    check((!p.data && !q.data) || json_equal(p.data, q.data), "data survives");
    json_decref(p.data);
    json_decref(q.data);
    tb_buf_deinit(&data);
    tb_buf_deinit(&text);
    free(nsp);
}

static int on_packet(int type, const unsigned char *data, size_t len, int binary, void *ud)
{
    (void)ud;
    check(type >= 0 && type <= 6, "packet types are 0..6");
    if (binary) {
        tb_buf b = TB_BUF_INIT;
        tb_buf_base64(&b, data, len, false);
        unsigned char *back = malloc(b.len / 4 * 3 + 3);
        long n = tb_rt__base64_decode(b.data ? b.data : "", b.len, back);
        check(n == (long)len && memcmp(back, data, len) == 0, "base64 round trip");
        free(back);
        tb_buf_deinit(&b);
    } else if (type == 4) {
        roundtrip((const char *)data, len);
    }
    return 0;
}

static int on_packet_cb(int type, const unsigned char *data, size_t len, bool binary, void *ud)
{
    return on_packet(type, data, len, binary, ud);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    if (data[0] & 1)
        roundtrip((const char *)data + 1, size - 1);
    else
        tb_rt__payload_decode(data + 1, size - 1, on_packet_cb, NULL);
    return 0;
}
