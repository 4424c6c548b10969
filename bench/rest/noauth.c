/*
 * bench_rest_noauth: bench_rest_ours with authorization taken out, the reference that
 * bench/rest/run.sh measures the cost of auth against (rest-post-jwt-* vs rest-post).
 *
 * It is built from the same sources (ours.c, gen/wallet/wallet_server.c) with
 * -Dtb_op_serve=bench_rest_serve_noauth (bench/rest/CMakeLists.txt): every operation the
 * generated server serves comes here, which drops the operation's security alternatives and
 * calls libtablium's tb_op_serve; everything else (routing, validation, handlers, the same
 * libtablium) is what bench_rest_ours runs. Only this executable is built that way:
 * libtablium has no switch that turns auth off.
 */
#include "tablium/op.h"

#ifndef tb_op_serve
#error "noauth.c must be built with -Dtb_op_serve=bench_rest_serve_noauth"
#endif
#undef tb_op_serve

int tb_op_serve(const tb_op *op, tb_op_handler handle, const tb_security_alt *sec, size_t nsec,
                tb_ctx *ctx, const tb_http_req *hr, tb_http_res *res);

/* libtablium's (runtime/http/internal.h): a secured operation's rate limit is checked once
 * its credentials are known, inside tb_http_authorize; this keeps that step. */
bool tb__rate_after_auth(tb_ctx *ctx, const tb_http_req *req, tb_http_res *res);

/* Lets every request through without looking at its credentials: ctx->claims stays NULL, so a
 * rate limit keys on the client address. (main, in ours.c, says at start that authorization
 * is off.) */
int bench_rest_serve_noauth(const tb_op *op, tb_op_handler handle, const tb_security_alt *sec,
                            size_t nsec, tb_ctx *ctx, const tb_http_req *hr, tb_http_res *res)
{
    (void)nsec;
    if (sec && !tb__rate_after_auth(ctx, hr, res))
        return 0; /* res holds the 429 */
    return tb_op_serve(op, handle, NULL, 0, ctx, hr, res);
}
