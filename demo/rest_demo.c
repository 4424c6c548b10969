/*
 * The REST part of the platform demo: talks to the running user and wallet services
 * (USER_SERVICE_URL, WALLET_SERVICE_URL) through their generated C clients and prints each step.
 * The User service's wallet operations call the Wallet service through its generated client.
 */
#include "user/user.h"
#include "tablium/token.h"
#include "wallet/wallet.h"

#include "tablium/client.h"
#include "tablium/ctx.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static int failures;

static void show_error(const char *what, int rc, const tb_error *err)
{
    printf("   %s failed: %s (%s)\n", what, err->message, tb_err_name(rc));
    failures++;
}

int main(void)
{
    tb_global_init();
    /* Wallet wants a service token (SERVICE_AUTH_TOKEN, scripts/demo.sh): generated clients
     * attach it */
    tb_service_token_init("rest-demo", NULL);
    char *uurl = tb_service_url("user", NULL), *wurl = tb_service_url("wallet", NULL);
    tb_error err = TB_ERROR_INIT;
    user_client *uc = user_client_new(uurl, NULL, &err);
    wallet_client *wc = wallet_client_new(wurl, NULL, &err);
    tb_arena *a = tb_arena_new(0);
    tb_ctx ctx;
    tb_ctx_init(&ctx, a, "demo-0001");
    if (!uc || !wc || !a) {
        fprintf(stderr, "demo: %s\n", err.message);
        return 1;
    }
    printf("== REST: user service at %s, wallet service at %s (X-Request-ID demo-0001)\n", uurl,
           wurl);

    char uname[32];
    snprintf(uname, sizeof uname, "ada_%ld", (long)time(NULL) % 100000);
    user_create_user_req cu = {.body = {.username = uname, .email = "ada@example.com",
                                        .has_display_name = true, .display_name = "Ada"}};
    user_create_user_resp cur;
    int rc = user_create_user_call(uc, &ctx, &cu, &cur, &err);
    if (rc || cur.status != 201) {
        if (!rc)
            tb_error_set(&err, TB_EUPSTREAM, "status %d", cur.status);
        show_error("createUser", rc, &err);
        return 1;
    }
    printf("1. POST /users (user service)            -> %d, user %s (%s)\n", cur.status,
           cur.s201.id, cur.s201.username);

    user_open_wallet_req ow = {.user_id = cur.s201.id, .body = {.currency = "CHP"}};
    user_open_wallet_resp owr;
    rc = user_open_wallet_call(uc, &ctx, &ow, &owr, &err);
    if (rc || owr.status != 201) {
        show_error("openWallet", rc, &err);
        return 1;
    }
    printf("2. POST /users/{id}/wallets (user -> wallet) -> %d, wallet %s, balance %lld %s\n",
           owr.status, owr.s201.id, (long long)owr.s201.balance, owr.s201.currency);

    wallet_create_transaction_req tx = {
        .wallet_id = owr.s201.id, .has_idempotency_key = true, .idempotency_key = "demo-deposit-1",
        .body = {.type = WALLET_TRANSACTION_TYPE_CREDIT, .amount = 500, .has_reference = true,
                 .reference = "welcome bonus"},
    };
    wallet_create_transaction_resp txr;
    for (int attempt = 1; attempt <= 2; attempt++) {
        rc = wallet_create_transaction_call(wc, &ctx, &tx, &txr, &err);
        if (rc || txr.status != 201) {
            show_error("createTransaction", rc, &err);
            return 1;
        }
        printf("3.%d POST /wallets/{id}/transactions credit 500 (Idempotency-Key demo-deposit-1) -> %d, "
               "balance %lld%s\n", attempt, txr.status, (long long)txr.s201.balance_after,
               txr.headers.idempotent_replayed ? ", replayed: applied once" : "");
    }

    wallet_create_transaction_req bet = {.wallet_id = owr.s201.id,
                                         .body = {.type = WALLET_TRANSACTION_TYPE_DEBIT, .amount = 900}};
    rc = wallet_create_transaction_call(wc, &ctx, &bet, &txr, &err);
    if (rc == 0)
        printf("4. debit 900 -> %d %s: %s\n", txr.status, txr.s409.code, txr.s409.message);
    else
        show_error("debit", rc, &err);

    user_get_user_wallets_req gw = {.user_id = cur.s201.id};
    user_get_user_wallets_resp gwr;
    rc = user_get_user_wallets_call(uc, &ctx, &gw, &gwr, &err);
    if (rc || gwr.status != 200) {
        show_error("getUserWallets", rc, &err);
        return 1;
    }
    printf("5. GET /users/{id}/wallets (user -> wallet, the seed's WalletServiceClient call) -> %d, "
           "%zu wallet(s):\n", gwr.status, gwr.s200.n);
    for (size_t i = 0; i < gwr.s200.n; i++)
        printf("     %s  %lld %s\n", gwr.s200.items[i].id, (long long)gwr.s200.items[i].balance,
               gwr.s200.items[i].currency);

    user_open_wallet_req bad = {.user_id = cur.s201.id, .body = {.currency = "chips"}};
    user_open_wallet_resp badr;
    rc = user_open_wallet_call(uc, &ctx, &bad, &badr, &err);
    if (rc == 0 && badr.status == 400 && badr.s400.n_details)
        printf("6. open a wallet in \"chips\" -> %d %s: %s %s (%s)\n", badr.status, badr.s400.code,
               badr.s400.details[0].path, badr.s400.details[0].rule, badr.s400.details[0].message);
    else
        show_error("bad currency", rc ? rc : TB_EUPSTREAM, &err);

    tb_arena_free(a);
    user_client_free(uc);
    wallet_client_free(wc);
    tb_error_deinit(&err);
    free(uurl);
    free(wurl);
    return failures ? 1 : 0;
}
