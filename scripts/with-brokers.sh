#!/usr/bin/env bash
# Runs a command with a private Redis and RabbitMQ beside it, started by this project's own
# scripts on free loopback ports with their data in a temporary folder, and stopped by PID when
# the command ends (whatever its outcome):
#
#   scripts/with-brokers.sh COMMAND [ARGS...]
#
# The command sees TB_TEST_REDIS_URL / TB_TEST_AMQP_URL (the brokers) and TB_TEST_REDIS_DIR /
# TB_TEST_RABBITMQ_DIR (what scripts/redis.sh and scripts/rabbitmq.sh take to restart or kill
# them in fault tests). RabbitMQ takes ~5 s to start, so one pair serves a whole test run.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
[ $# -ge 1 ] || { echo "usage: $0 COMMAND [ARGS...]" >&2; exit 2; }

BROKERS=$(mktemp -d "${TMPDIR:-/tmp}/tablium-brokers-XXXXXX")
stop_brokers() {
  bash "$ROOT/scripts/redis.sh" stop "$BROKERS/redis" >/dev/null 2>&1 || true
  bash "$ROOT/scripts/rabbitmq.sh" stop "$BROKERS/rabbitmq" >/dev/null 2>&1 || true
  rm -rf "$BROKERS"
}
trap stop_brokers EXIT
trap 'exit 130' INT TERM

export TB_TEST_REDIS_DIR=$BROKERS/redis TB_TEST_RABBITMQ_DIR=$BROKERS/rabbitmq
TB_TEST_REDIS_URL=$(bash "$ROOT/scripts/redis.sh" start "$TB_TEST_REDIS_DIR")
TB_TEST_AMQP_URL=$(bash "$ROOT/scripts/rabbitmq.sh" start "$TB_TEST_RABBITMQ_DIR")
export TB_TEST_REDIS_URL TB_TEST_AMQP_URL
echo "with-brokers: redis $TB_TEST_REDIS_URL, rabbitmq $TB_TEST_AMQP_URL" >&2
status=0
"$@" || status=$?
exit $status
