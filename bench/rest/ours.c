/*
 * bench_rest_ours: the generated wallet service (gen/wallet: router, parameter and body
 * validation, serialization, the libmicrohttpd runtime) with benchmark handlers that answer from
 * the request instead of SQLite, so bench/rest measures the framework, as the bare and Fastify
 * peers do. Started by bench/rest/run.sh with PORT, TB_THREADS, TB_ACCESS_LOG=0.
 * Also the main of bench_rest_noauth, the same server without authorization (noauth.c).
 */
#include "wallet/wallet.h"

#include <stdio.h>
#include <string.h>

static char fixed_user[] = "6f1c2a9e-4b3d-4c8e-9a7f-0d2e5b8c1a34";
static char fixed_time[] = "2026-11-24T10:00:00Z";
static char fixed_tx[] = "3c2b1a09-8f7e-4d6c-9b5a-493827160504";
static char chips[] = "CHP";

int wallet_service_init(void **state, tb_error *err)
{
    (void)err;
    *state = NULL;
    return 0;
}

void wallet_service_fini(void *state)
{
    (void)state;
}

int wallet_get_health(tb_ctx *ctx, const wallet_get_health_req *req, wallet_get_health_resp *resp)
{
    (void)ctx;
    (void)req;
    resp->status = WALLET_GET_HEALTH_200;
    resp->s200.status = COMMON_HEALTH_STATUS_OK;
    return 0;
}

int wallet_create_wallet(tb_ctx *ctx, const wallet_create_wallet_req *req,
                         wallet_create_wallet_resp *resp)
{
    (void)ctx;
    resp->status = WALLET_CREATE_WALLET_201;
    resp->s201 = (wallet_wallet){fixed_tx, req->body.user_id, req->body.currency, 0, fixed_time};
    return 0;
}

int wallet_get_wallet(tb_ctx *ctx, const wallet_get_wallet_req *req, wallet_get_wallet_resp *resp)
{
    (void)ctx;
    resp->status = WALLET_GET_WALLET_200;
    resp->s200 = (wallet_wallet){req->wallet_id, fixed_user, chips, 1000, fixed_time};
    return 0;
}

int wallet_get_user_wallets(tb_ctx *ctx, const wallet_get_user_wallets_req *req,
                            wallet_get_user_wallets_resp *resp)
{
    (void)ctx;
    (void)req;
    resp->status = WALLET_GET_USER_WALLETS_200;
    resp->s200.n = 0;
    return 0;
}

int wallet_create_transaction(tb_ctx *ctx, const wallet_create_transaction_req *req,
                              wallet_create_transaction_resp *resp)
{
    (void)ctx;
    const wallet_create_transaction_request *b = &req->body;
    wallet_transaction *t = &resp->s201;
    resp->status = WALLET_CREATE_TRANSACTION_201;
    t->id = fixed_tx;
    t->wallet_id = req->wallet_id;
    t->type = b->type;
    t->amount = b->amount;
    t->balance_after = 1000 + b->amount;
    t->has_reference = b->has_reference;
    t->reference = b->reference;
    t->created_at = fixed_time;
    return 0;
}

int wallet_list_transactions(tb_ctx *ctx, const wallet_list_transactions_req *req,
                             wallet_list_transactions_resp *resp)
{
    (void)ctx;
    (void)req;
    resp->status = WALLET_LIST_TRANSACTIONS_200;
    resp->s200.n_items = 0;
    resp->s200.next_cursor_is_null = true;
    return 0;
}

int main(int argc, char **argv)
{
#ifdef tb_op_serve /* bench_rest_noauth (noauth.c) */
    fputs("bench_rest_noauth: authorization is OFF (a benchmark reference only)\n", stderr);
#endif
    return wallet_service_main(argc, argv);
}
