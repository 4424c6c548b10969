/*
 * The Socket.IO conformance server: what the official protocol test suites
 * (socketio/engine.io-protocol and socketio/socket.io-protocol, test-suite/) and
 * tests/realtime expect, on 127.0.0.1:$PORT (default 3000):
 *   /engine.io/  raw Engine.IO, every message echoed to its sender;
 *   /socket.io/  Socket.IO, namespaces "/" and "/custom": on connect emit "auth" with the
 *                handshake's auth payload; "message" echoed as "message-back"; the ack of
 *                "message-with-ack" carries its arguments.
 * pingInterval 300 ms, pingTimeout 200 ms, maxPayload 1,000,000, connectTimeout 1,000 ms.
 */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "tablium/realtime.h"

static void on_eio(tb_rt_server *srv, const char *sid, const void *data, size_t len, bool binary,
                   void *ud)
{
    (void)ud;
    tb_rt_eio_send(srv, sid, data, len, binary);
}

static void on_connect(tb_rt_socket *s, void *ud)
{
    (void)ud;
    json_t *args = json_pack("[O]", tb_rt_socket_auth(s));
    tb_rt_socket_emit(s, "auth", args, NULL, 0);
    json_decref(args);
}

/* The client's ack of "message-back" answers the ack its "message" asked for (what the
 * reference's `socket.emit("message-back", ...args)` does when args end with the ack function). */
static void relay_ack(tb_rt_socket *s, int status, const json_t *args, const tb_rt_bin *bins,
                      size_t nbins, void *ud)
{
    tb_rt_event original = {NULL, NULL, NULL, 0, (int64_t)(intptr_t)ud};
    if (status == 0)
        tb_rt_ack(s, &original, args, bins, nbins);
}

static void on_message(tb_rt_socket *s, const tb_rt_event *ev, void *ud)
{
    (void)ud;
    if (ev->ack_id >= 0)
        tb_rt_socket_emit_ack(s, "message-back", ev->args, ev->bins, ev->nbins, 10000, relay_ack,
                              (void *)(intptr_t)ev->ack_id);
    else
        tb_rt_socket_emit(s, "message-back", ev->args, ev->bins, ev->nbins);
}

static void on_message_with_ack(tb_rt_socket *s, const tb_rt_event *ev, void *ud)
{
    (void)ud;
    if (ev->ack_id >= 0)
        tb_rt_ack(s, ev, ev->args, ev->bins, ev->nbins);
}

int main(void)
{
    const char *port = getenv("PORT");
    tb_rt_options o = TB_RT_OPTIONS_INIT;
    o.port = port ? atoi(port) : 3000;
    o.eio_path = "/engine.io/";
    o.ping_interval_ms = 300;
    o.ping_timeout_ms = 200;
    o.max_payload = 1000000;
    o.connect_timeout_ms = 1000;
    o.on_eio_message = on_eio;

    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL); /* the loop thread inherits the mask */

    tb_rt_server *srv;
    tb_error err = TB_ERROR_INIT;
    if (tb_rt_server_new(&o, &srv, &err) != 0) {
        fprintf(stderr, "tablium_sio_conformance: %s\n", err.message);
        return 1;
    }
    const char *names[] = {"/", "/custom"};
    for (int i = 0; i < 2; i++) {
        tb_rt_nsp *nsp = tb_rt_server_of(srv, names[i]);
        tb_rt_nsp_on_connect(nsp, on_connect, NULL);
        tb_rt_nsp_on(nsp, "message", on_message, NULL);
        tb_rt_nsp_on(nsp, "message-with-ack", on_message_with_ack, NULL);
    }
    if (tb_rt_server_start(srv) != 0) {
        tb_rt_server_free(srv);
        return 1;
    }
    fprintf(stderr, "tablium_sio_conformance: listening on 127.0.0.1:%d\n", tb_rt_server_port(srv));
    int sig;
    sigwait(&sigs, &sig);
    tb_rt_server_free(srv);
    return 0;
}
