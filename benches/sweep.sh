#!/usr/bin/env bash
# Every benchmark once, back to back, at one commit: the run docs/performance.md's
# "Performance" section quotes. Raw output goes to
# benches/results/<date>-<bench>.txt, with the commit and the machine in
# <date>-commit.txt. Run it on a quiet machine (nothing compiling):
#
#   bash benches/sweep.sh            # about 25 minutes on 2 cores
#   bash benches/sweep.sh otlp usage # only the benches named
#
# Criterion times are shortened (`QUICK`); every ratio docs/performance.md quotes is
# between variants of one run.
set -euo pipefail
cd "$(dirname "$0")/.."

day=$(date -u +%F)
out=benches/results
quick=(--warm-up-time 1 --measurement-time 4)
mkdir -p "$out"
if [ $# -gt 0 ]; then
  # Only some benches: their commit is added to the day's record.
  echo "$*: commit $(git rev-parse --short HEAD), $(date -u)" >> "$out/$day-commit.txt"
else
  {
    echo "commit $(git rev-parse --short HEAD), $(date -u)"
    lscpu | grep -E '^(CPU\(s\)|Model name|L2 cache|L3 cache)'
  } > "$out/$day-commit.txt"
fi

# Builds everything first, so that no bench pays for compiling another.
cargo bench --workspace --no-run --quiet

only=("$@")
run() {
  local name=$1
  shift
  if [ ${#only[@]} -gt 0 ] && ! printf '%s\n' "${only[@]}" | grep -qx "$name"; then
    return
  fi
  echo "== $name"
  "$@" > "$out/$day-$name.txt" 2>&1
}

run hot_path cargo bench --bench hot_path -- "${quick[@]}"
run latency cargo bench --bench latency
run chain cargo bench --bench chain -- "${quick[@]}"
run ingest-lanes1 cargo bench --bench ingest -- "${quick[@]}"
run ingest-lanes2 env RINGTRAIL_LANES=2 RINGTRAIL_ROUNDS=25 \
  cargo bench --bench ingest -- "${quick[@]}" '^ingest/(ringtrail|ringtrail_chain_off|raw_copy)$'
run ingest-lanes4 env RINGTRAIL_LANES=4 \
  cargo bench --bench ingest -- "${quick[@]}" '^ingest/(ringtrail|raw_copy)$'
run sustained cargo bench --bench sustained
run scaling cargo bench --bench scaling
run audit_gaps cargo bench --bench audit_gaps
run usage cargo bench --bench usage
run console cargo bench -p ringtrail-console --bench console
run otlp cargo bench -p ringtrail-otlp --bench otlp
run scale_out cargo bench -p ringtrail-cli --bench scale_out
echo "== done: $out/$day-*.txt"
