/*
 * bench_rest_noauth: bench_rest_ours with authorization taken out, the reference that
 * bench/rest/run.sh measures the cost of auth against (rest-post-jwt-* vs rest-post).
 *
 * It is built from the same sources (ours.c, gen/wallet/wallet_server.c) with
 * -Dtb_http_authorize=bench_rest_skip_authorize (bench/rest/CMakeLists.txt): every call the
 * generated operations make to tb_http_authorize lands here instead; everything else (routing,
 * validation, handlers, the same libtablium) is what bench_rest_ours runs. Only this executable
 * is built that way: libtablium has no switch that turns auth off.
 */
#include "tablium/http.h"

#ifndef tb_http_authorize
#error "noauth.c must be built with -Dtb_http_authorize=bench_rest_skip_authorize"
#endif

/* libtablium's (runtime/http/internal.h): a secured operation's rate limit is checked once
 * its credentials are known, inside tb_http_authorize; the stub keeps that step. */
bool tb__rate_after_auth(tb_ctx *ctx, const tb_http_req *req, tb_http_res *res);

/* Lets every request through without looking at it: ctx->claims stays NULL, so a rate limit
 * keys on the client address. (main, in ours.c, says at start that authorization is off.) */
int bench_rest_skip_authorize(tb_ctx *ctx, const tb_http_req *req, tb_http_res *res,
                              const tb_security_alt *alts, size_t n)
{
    (void)alts, (void)n;
    return tb__rate_after_auth(ctx, req, res) ? 0 : 1;
}
