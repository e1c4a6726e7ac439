#!/usr/bin/env bash
# Builds every cargo-fuzz target of this crate and fuzzes each one for a
# bounded time, seeded from tests/fuzz_corpus/<target>. Exits non-zero if a
# build fails or any target finds a crash (a panic, a failed check, a
# sanitizer report, a timeout or running out of memory).
#
#   FUZZ_SECONDS    fuzzing time per target, in seconds (default 45)
#   FUZZ_TARGETS    space-separated targets to run (default: all)
#   FUZZ_SANITIZER  cargo-fuzz sanitizer (default: cargo-fuzz's, address;
#                   "none" is roughly twice as fast)
#
# Needs only stable Rust: RUSTC_BOOTSTRAP=1 unlocks the nightly flags
# cargo-fuzz passes. Installs cargo-fuzz (from crates.io, --locked) if it is
# missing. See fuzz/README.md.
set -euo pipefail

FUZZ_SECONDS="${FUZZ_SECONDS:-45}"
export RUSTC_BOOTSTRAP=1

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "run-ci: cargo-fuzz not found, installing it"
    cargo install cargo-fuzz --locked
fi

flags=(--release --debug-assertions)
if [[ -n "${FUZZ_SANITIZER:-}" ]]; then
    flags+=(--sanitizer "$FUZZ_SANITIZER")
fi

targets="${FUZZ_TARGETS:-$(cargo fuzz list)}"
echo "run-ci: building ${targets//$'\n'/ }"
for target in $targets; do
    cargo fuzz build "${flags[@]}" "$target"
done

failed=()
for target in $targets; do
    seeds="tests/fuzz_corpus/$target"
    work="fuzz/corpus/$target"
    if [[ ! -d "$seeds" ]]; then
        echo "run-ci: missing seed corpus $seeds" >&2
        exit 1
    fi
    mkdir -p "$work" "fuzz/artifacts/$target"
    echo "run-ci: fuzzing $target for ${FUZZ_SECONDS}s"
    # libFuzzer adds new inputs to the first directory only; the checked-in
    # seeds are read, never written.
    if ! cargo fuzz run "${flags[@]}" "$target" "$work" "$seeds" -- \
        -max_total_time="$FUZZ_SECONDS" -max_len=4096 -timeout=10 \
        -rss_limit_mb=2048 -print_final_stats=1; then
        failed+=("$target")
    fi
done

if ((${#failed[@]} > 0)); then
    for target in "${failed[@]}"; do
        echo "run-ci: $target FAILED; reproducers:" >&2
        ls -l "fuzz/artifacts/$target" >&2 || true
        echo "  rerun: RUSTC_BOOTSTRAP=1 cargo fuzz run ${flags[*]} $target fuzz/artifacts/$target/<file>" >&2
        echo "  keep:  cp fuzz/artifacts/$target/<file> tests/fuzz_corpus/$target/crash-<what>" >&2
    done
    exit 1
fi
echo "run-ci: all fuzz targets passed"
