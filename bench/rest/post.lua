-- wrk script of bench/rest/run.sh: POST /wallets/{walletId}/transactions with a valid
-- CreateTransactionRequest of ~200 bytes (reference at its 128-character limit). The URL given
-- to wrk carries the path.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = [[
{
    "type": "credit",
    "amount": 125000,
    "reference": "game-7c1e9b2a-4b3d-4c8e-9a7f-0d2e5b8c1a34/round-000042/bet-000007/table-eu-west-3/seat-4/session-6f1c2a9e4b3d4c8e9a7f0d2e5b8c1a3"
}
]]
