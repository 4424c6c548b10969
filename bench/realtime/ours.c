/*
 * bench_realtime_ours: the Socket.IO server of bench/realtime/run.sh, on tablium_realtime.
 * 127.0.0.1:$PORT, namespace "/": "join" puts the socket in room "bench" (ack true);
 * "broadcast" (any payload) sends "tick" with the same payload to room "bench", encoded once.
 * Prints nothing; stops on SIGTERM.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "tablium/realtime.h"

static void on_join(tb_rt_socket *s, const tb_rt_event *ev, void *ud)
{
    (void)ud;
    tb_rt_socket_join(s, "bench");
    if (ev->ack_id >= 0) {
        json_t *args = json_pack("[b]", 1);
        tb_rt_ack(s, ev, args, NULL, 0);
        json_decref(args);
    }
}

static void on_broadcast(tb_rt_socket *s, const tb_rt_event *ev, void *ud)
{
    (void)ud;
    const char *room = "bench";
    tb_rt_to to = {&room, 1, NULL, 0, NULL, 0};
    tb_rt_broadcast(tb_rt_socket_nsp(s), &to, "tick", ev->args, NULL, 0);
}

int main(void)
{
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    tb_rt_options o = TB_RT_OPTIONS_INIT;
    o.port = getenv("PORT") ? atoi(getenv("PORT")) : 3000;
    tb_rt_server *srv;
    if (tb_rt_server_new(&o, &srv, NULL) != 0)
        return 1;
    tb_rt_nsp *root = tb_rt_server_of(srv, "/");
    tb_rt_nsp_on(root, "join", on_join, NULL);
    tb_rt_nsp_on(root, "broadcast", on_broadcast, NULL);
    tb_rt_server_start(srv);
    int sig;
    sigwait(&sigs, &sig);
    tb_rt_server_free(srv);
    return 0;
}
