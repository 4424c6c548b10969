#!/usr/bin/env bash
# Installs the Debian packages tablium needs, only when some are missing, then libmicrohttpd
# 1.0.1 (below) when it is not there yet.
# Idempotent and quiet when everything is there; runs `apt-get update` first
# only when it has to install. Needs root (or sudo) only in that case.
set -euo pipefail

PKGS=(
  build-essential pkg-config cmake
  libjansson-dev libgnutls28-dev libwebsockets-dev libhiredis-dev librabbitmq-dev libmsgpack-dev
  libcurl4-openssl-dev libssl-dev zlib1g-dev libpcre2-dev libsqlite3-dev check libsubunit-dev
  python3 python3-jinja2 python3-yaml python3-aiohttp python3-jsonschema python3-requests-oauthlib
  prometheus
  redis-server rabbitmq-server wrk nodejs curl openssl valgrind
  clang libclang-rt-14-dev
)

SUDO=
[ "$(id -u)" -ne 0 ] && SUDO=sudo

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  # nodejs brings its own npm here; never install Debian's npm package (it conflicts).
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# libmicrohttpd 1.0.1, built from Debian's own source tarball (the pool of deb.debian.org,
# checked against its SHA-256) into /usr/local: Debian 12 ships 0.9.75, which writes its own
# error response's head twice into the stream (or over the previous response's body) when a
# pipelined request after a good one is malformed (tests/fuzz/fuzz_http.c found it; issue 12).
# 1.0 rewrote request parsing (RFC 9110/9112). Same soname and API as 0.9.x; CMakeLists.txt
# asks for >= 1.0.1, so a build never falls back to 0.9.75 silently.
MHD_VERSION=1.0.1
MHD_SHA256=a89e09fc9b4de34dde19f4fcb4faaa1ce10299b9908db1132bbfa1de47882b94
MHD_URL=${TB_MHD_URL:-http://deb.debian.org/debian/pool/main/libm/libmicrohttpd/libmicrohttpd_${MHD_VERSION}.orig.tar.gz}
MHD_PREFIX=/usr/local
if [ "$(PKG_CONFIG_PATH=$MHD_PREFIX/lib/pkgconfig pkg-config --modversion libmicrohttpd 2>/dev/null)" != "$MHD_VERSION" ] ||
  [ ! -e "$MHD_PREFIX/lib/libmicrohttpd.so.12" ]; then
  echo "deps: building libmicrohttpd $MHD_VERSION from $MHD_URL into $MHD_PREFIX (about a minute)" >&2
  work=$(mktemp -d "${TMPDIR:-/tmp}/tb-mhd.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  curl -fsSL --retry 3 -o "$work/mhd.tar.gz" "$MHD_URL"
  echo "$MHD_SHA256  $work/mhd.tar.gz" | sha256sum -c --quiet -
  tar -xzf "$work/mhd.tar.gz" -C "$work"
  (
    cd "$work/libmicrohttpd-$MHD_VERSION"
    ./configure --prefix="$MHD_PREFIX" --with-gnutls --enable-https --disable-doc \
      --disable-examples --disable-tools --disable-static >"$work/configure.log" 2>&1 ||
      { tail -30 "$work/configure.log" >&2; exit 1; }
    grep -q 'HTTPS support: *yes' "$work/configure.log" ||
      { echo "deps: libmicrohttpd configured without HTTPS" >&2; exit 1; }
    make -j"$(nproc)" >"$work/make.log" 2>&1 || { tail -30 "$work/make.log" >&2; exit 1; }
    $SUDO make install >/dev/null
  )
  $SUDO ldconfig
fi
