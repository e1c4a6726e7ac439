#!/usr/bin/env bash
# Installs the real OpenTelemetry / MCP clients the `ringtrail serve` tests
# drive, into a cache dir (default target/clients/, or $RINGTRAIL_CLIENTS_DIR):
#
#   py-otel/       venv: OTel SDK, OTLP/HTTP + OTLP/gRPC exporters, mcp 2.x
#   py-mcp1/       venv: mcp 1.x, opentelemetry-instrumentation-mcp (OpenLLMetry),
#                  OTel SDK, OTLP/HTTP exporter
#   node/          npm ci of tests/clients/node/package-lock.json
#
# Idempotent: each part is redone only when its pin file changed (a stamp
# holds the pin file's sha256). Fails loudly (non-zero) if anything cannot be
# installed or imported: the tests never skip for want of a client.
#
# Usage: tests/clients/setup.sh [--force]      prints the cache dir last
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cache="${RINGTRAIL_CLIENTS_DIR:-$root/target/clients}"
force=0
[ "${1:-}" = "--force" ] && force=1

mkdir -p "$cache"
cache="$(cd "$cache" && pwd)"

die() { echo "tests/clients/setup.sh: $*" >&2; exit 1; }
log() { echo "tests/clients/setup.sh: $*" >&2; }

# One installer at a time (parallel cargo test binaries may all call us).
exec 9>"$cache/.lock"
if command -v flock >/dev/null 2>&1; then
  flock 9
fi

sha() { sha256sum "$@" | sha256sum | cut -c1-64; }

fresh() { # fresh STAMP HASH: true when STAMP holds HASH
  [ "$force" = 0 ] && [ -f "$1" ] && [ "$(cat "$1")" = "$2" ]
}

# --- Python ---------------------------------------------------------------
python="${RINGTRAIL_PYTHON:-}"
if [ -z "$python" ]; then
  for p in python3.13 python3.12 python3.11 python3.10 python3; do
    if command -v "$p" >/dev/null 2>&1 &&
      "$p" -c 'import sys, venv, ensurepip; sys.exit(0 if sys.version_info >= (3, 10) else 1)' 2>/dev/null; then
      python="$(command -v "$p")"
      break
    fi
  done
fi
if [ -z "$python" ]; then
  log "no Python >= 3.10 with venv and ensurepip; trying apt-get"
  if command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv >/dev/null
    python="$(command -v python3)" || true
  fi
  [ -n "$python" ] && "$python" -c 'import sys, venv, ensurepip; sys.exit(0 if sys.version_info >= (3, 10) else 1)' ||
    die "need Python >= 3.10 with the venv module (mcp 2.x needs >= 3.10)"
fi

venv() { # venv NAME REQUIREMENTS IMPORTS...
  local name="$1" req="$2"
  shift 2
  local dir="$cache/$name" stamp="$cache/$name/.ringtrail-stamp"
  local want
  want="$(sha "$req" "$here/setup.sh")-$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
  if fresh "$stamp" "$want"; then
    return 0
  fi
  log "installing $name from $(basename "$req") with $python"
  rm -rf "$dir"
  "$python" -m venv "$dir" >&2 || die "python -m venv $dir failed"
  "$dir/bin/python" -m pip install -q --disable-pip-version-check --no-input -r "$req" >&2 ||
    die "pip install -r $req failed"
  "$dir/bin/python" -m pip check >&2 || die "$name: pip check failed"
  local m
  for m in "$@"; do
    "$dir/bin/python" -c "import $m" || die "$name: cannot import $m"
  done
  echo "$want" >"$stamp"
}

venv py-otel "$here/requirements-py-otel.txt" \
  mcp mcp.server.mcpserver opentelemetry.sdk \
  opentelemetry.exporter.otlp.proto.http._log_exporter \
  opentelemetry.exporter.otlp.proto.grpc._log_exporter \
  opentelemetry.proto.collector.logs.v1.logs_service_pb2_grpc
"$cache/py-otel/bin/python" -c 'import importlib.metadata as m, sys; v = m.version("mcp"); sys.exit(0 if v.startswith("2.") else f"py-otel: mcp {v} is not 2.x")'

venv py-mcp1 "$here/requirements-py-mcp1.txt" \
  mcp.server.fastmcp opentelemetry.instrumentation.mcp opentelemetry.sdk \
  opentelemetry.exporter.otlp.proto.http.trace_exporter
"$cache/py-mcp1/bin/python" -c 'import importlib.metadata as m, sys; v = m.version("mcp"); sys.exit(0 if v.startswith("1.") else f"py-mcp1: mcp {v} is not 1.x")'

# --- Node -----------------------------------------------------------------
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || {
  log "no node/npm; trying apt-get"
  command -v apt-get >/dev/null 2>&1 &&
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
}
command -v node >/dev/null 2>&1 || die "need node (>= 18)"
command -v npm >/dev/null 2>&1 || die "need npm"
node -e 'process.exit(+process.versions.node.split(".")[0] >= 18 ? 0 : 1)' || die "need node >= 18, have $(node --version)"

nstamp="$cache/node/.ringtrail-stamp"
nwant="$(sha "$here/node/package.json" "$here/node/package-lock.json" "$here/setup.sh")-$(node --version)"
if ! fresh "$nstamp" "$nwant"; then
  log "installing node/ (npm ci)"
  rm -rf "$cache/node"
  mkdir -p "$cache/node"
  cp "$here/node/package.json" "$here/node/package-lock.json" "$cache/node/"
  (cd "$cache/node" && npm ci --no-audit --no-fund --loglevel=error >&2) || die "npm ci failed"
  (cd "$cache/node" && node -e '
    for (const m of ["@opentelemetry/api", "@opentelemetry/api-logs", "@opentelemetry/core",
                     "@opentelemetry/sdk-logs", "@opentelemetry/exporter-logs-otlp-http",
                     "@opentelemetry/resources"]) require(m);') || die "node: a package does not load"
  echo "$nwant" >"$nstamp"
fi

echo "$cache"
