#!/usr/bin/env bash
# Installs the Debian packages tablium needs, only when some are missing.
# Idempotent and quiet when everything is there; runs `apt-get update` first
# only when it has to install. Needs root (or sudo) only in that case.
set -euo pipefail

PKGS=(
  build-essential pkg-config cmake
  libjansson-dev libmicrohttpd-dev libwebsockets-dev libhiredis-dev librabbitmq-dev libmsgpack-dev
  libcurl4-openssl-dev libssl-dev libpcre2-dev libsqlite3-dev check libsubunit-dev
  python3 python3-jinja2 python3-yaml python3-aiohttp python3-jsonschema prometheus
  redis-server rabbitmq-server wrk nodejs curl openssl valgrind
  clang libclang-rt-14-dev
)

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing ${missing[*]}" >&2
SUDO=
[ "$(id -u)" -ne 0 ] && SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# nodejs brings its own npm here; never install Debian's npm package (it conflicts).
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
