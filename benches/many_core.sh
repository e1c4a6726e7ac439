#!/usr/bin/env bash
# The scaling sweep (and the latency bench) on a bigger machine that has
# neither Rust nor PostgreSQL nor a network: one prepared run.
#
#   bash benches/many_core.sh pack       # here, as root: build, bundle, self-check
#   bash benches/many_core.sh check      # unpack the bundle here, self-check only
#   bash benches/many_core.sh run [DIR]  # there, as root: run, write to DIR
#
# `pack` builds the `scaling` and `latency` benches, and puts them with
# PostgreSQL's server (initdb, pg_ctl, postgres, its modules and share
# files) and every shared library any of them loads, glibc and its loader
# included, into `.bench-bundle/ringtrail-bench.tar.xz` (git-ignored; about
# 30 MiB). Each program is patched to load through the bundle's own loader
# and libraries under /opt/ringtrail-bench, so nothing on the other machine
# is needed but a Linux kernel, /bin/sh, and root to create the `postgres`
# user the throwaway cluster runs as. `pack` then unpacks the bundle here
# and lists what each program would load, failing if anything resolves
# outside the bundle.
#
# `run` unpacks the bundle to /opt/ringtrail-bench, creates the `postgres`
# user if missing, and writes into DIR (default `$OUT`, else
# benches/results):
#
#   <date>-scaling-<N>cpu.txt / .svg   the sweep: threads 1-16 x lanes 1-8
#   <date>-latency-<N>cpu.txt          p50/p99 with 1, 2 and 4 producers
#   <date>-machine-<N>cpu.txt          the commit, lscpu, and what loaded
#
# The sweep takes about 2 minutes on 2 cores; the whole run stays well
# inside 10 minutes. docs/performance.md#scaling-producer-threads--lanes
# says what to compare.
set -euo pipefail
cd "$(dirname "$0")/.."

PREFIX=/opt/ringtrail-bench
BUNDLE=.bench-bundle/ringtrail-bench.tar.xz
PGVERSION=15

die() {
  echo "many_core.sh: $*" >&2
  exit 2
}

# The shared libraries `elf` loads, resolved here, one path a line.
needed_libs() {
  ldd "$1" 2>/dev/null | awk '/=> \// { print $3 } /^\t\/.*ld-linux/ { print $1 }'
}

pack() {
  command -v patchelf >/dev/null || die "needs patchelf (apt-get install patchelf)"
  local pgbin=/usr/lib/postgresql/$PGVERSION/bin
  local pglib=/usr/lib/postgresql/$PGVERSION/lib
  local pgshare=/usr/share/postgresql/$PGVERSION
  [ -x "$pgbin/postgres" ] || die "no PostgreSQL $PGVERSION server in $pgbin"

  echo "== building the benches"
  local bins
  bins=$(cargo bench --bench scaling --bench latency --no-run --message-format=json |
    python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["kind"] == ["bench"]:
        print(m["target"]["name"], m["executable"])')
  [ "$(echo "$bins" | wc -l)" -eq 2 ] || die "expected the scaling and latency executables, got: $bins"

  local stage
  stage=$(mktemp -d)
  trap 'rm -rf "$stage"' RETURN
  local root=$stage$PREFIX
  mkdir -p "$root/bin" "$root/lib" "$root/pg/usr/lib/postgresql/$PGVERSION/bin" \
    "$root/pg/usr/lib/postgresql/$PGVERSION/lib" "$root/pg/usr/share/postgresql"

  while read -r name exe; do
    cp "$exe" "$root/bin/$name"
  done <<<"$bins"
  for program in initdb pg_ctl postgres; do
    cp "$pgbin/$program" "$root/pg/usr/lib/postgresql/$PGVERSION/bin/"
  done
  # The modules, without the JIT (it would bring LLVM; PostgreSQL runs
  # without it), and the share files (the catalog's bootstrap, timezone
  # names). PostgreSQL finds both relative to its binary, so the tree
  # keeps their places under /usr.
  find "$pglib" -maxdepth 1 -name '*.so' ! -name 'llvmjit*' -exec cp {} "$root/pg/usr/lib/postgresql/$PGVERSION/lib/" \;
  cp -r "$pgshare" "$root/pg/usr/share/postgresql/"
  # Debian's server reads the system's time zone files.
  cp -rL /usr/share/zoneinfo "$root/zoneinfo"

  local elves
  elves=$(find "$root/bin" "$root/pg" -type f \( -perm -u+x -o -name '*.so' \))
  {
    for elf in $elves; do needed_libs "$elf"; done
  } | sort -u | while read -r lib; do
    cp -L "$lib" "$root/lib/"
  done
  [ -e "$root/lib/ld-linux-x86-64.so.2" ] || die "no ld-linux-x86-64.so.2 among the libraries"

  echo "== patching every program to load through $PREFIX/lib"
  for elf in $elves; do
    strip --strip-debug "$elf"
    case $elf in
      *.so) ;;
      *) patchelf --set-interpreter "$PREFIX/lib/ld-linux-x86-64.so.2" "$elf" ;;
    esac
    # DT_RPATH (not RUNPATH) reaches the libraries' own dependencies too.
    patchelf --force-rpath --set-rpath "$PREFIX/lib" "$elf"
  done
  local commit
  commit=$(git rev-parse --short HEAD)
  if git status --porcelain --untracked-files=no | grep -q .; then
    commit="$commit (with uncommitted changes)"
  fi
  echo "$commit" >"$root/COMMIT"

  mkdir -p "$(dirname "$BUNDLE")"
  tar -C "$stage" -cJf "$BUNDLE" "${PREFIX#/}"
  echo "== $BUNDLE: $(du -h "$BUNDLE" | cut -f1)"

  check
}

# Unpacks the bundle to $PREFIX and fails if a program would load anything
# from outside it.
unpack() {
  [ -f "$BUNDLE" ] || die "no $BUNDLE: run 'bash benches/many_core.sh pack' first"
  [ "$(id -u)" -eq 0 ] || die "run as root (it writes $PREFIX and adds the postgres user)"
  rm -rf "$PREFIX"
  tar -C / -xJf "$BUNDLE"
  chmod -R a+rX "$PREFIX"
}

check() {
  unpack
  local bad=0 elf
  for elf in "$PREFIX"/bin/* "$PREFIX"/pg/usr/lib/postgresql/$PGVERSION/bin/*; do
    # Asks the bundle's own loader what it would load.
    if ! LD_TRACE_LOADED_OBJECTS=1 "$elf" >"$PREFIX/.trace" 2>&1; then
      echo "cannot load $elf:" >&2
      cat "$PREFIX/.trace" >&2
      bad=1
      continue
    fi
    if grep -E '=> ' "$PREFIX/.trace" | grep -v "=> $PREFIX/lib/" >&2; then
      echo "^ $elf loads these from outside $PREFIX" >&2
      bad=1
    fi
  done
  rm -f "$PREFIX/.trace"
  [ "$bad" -eq 0 ] || die "the bundle is not self-contained"
  "$PREFIX/pg/usr/lib/postgresql/$PGVERSION/bin/postgres" --version
  echo "== every program loads from $PREFIX alone"
}

run() {
  local out=${1:-${OUT:-benches/results}}
  mkdir -p "$out"
  check
  if ! id postgres >/dev/null 2>&1; then
    useradd --system --no-create-home --shell /bin/sh postgres 2>/dev/null ||
      echo "postgres:x:7432:7432:PostgreSQL:/nonexistent:/bin/sh" >>/etc/passwd
  fi
  [ -e /usr/share/zoneinfo/UTC ] || { mkdir -p /usr/share && cp -r "$PREFIX/zoneinfo" /usr/share/zoneinfo; }
  export PATH=$PREFIX/pg/usr/lib/postgresql/$PGVERSION/bin:$PATH
  unset DATABASE_URL

  local day cpus
  day=$(date -u +%F)
  cpus=$(nproc)
  {
    echo "commit $(cat "$PREFIX/COMMIT"), $(date -u)"
    lscpu | grep -E '^(CPU\(s\)|Model name|L2 cache|L3 cache)' || true
    echo "memory: $(awk '/MemTotal/ { print $2 " kB" }' /proc/meminfo)"
    echo "kernel: $(uname -r)"
    echo "loaded by postgres:"
    LD_TRACE_LOADED_OBJECTS=1 "$PREFIX/pg/usr/lib/postgresql/$PGVERSION/bin/postgres"
  } >"$out/$day-machine-${cpus}cpu.txt"

  echo "== scaling on $cpus CPUs"
  (cd /tmp && RINGTRAIL_SCALING_SVG="$(realpath "$out")/$day-scaling-${cpus}cpu.svg" \
    "$PREFIX/bin/scaling" --bench) >"$out/$day-scaling-${cpus}cpu.txt" 2>&1 || {
    tail -20 "$out/$day-scaling-${cpus}cpu.txt"
    die "the scaling bench failed (its output: $out/$day-scaling-${cpus}cpu.txt)"
  }
  echo "== latency on $cpus CPUs"
  (cd /tmp && "$PREFIX/bin/latency" --bench) >"$out/$day-latency-${cpus}cpu.txt" 2>&1 || {
    tail -20 "$out/$day-latency-${cpus}cpu.txt"
    die "the latency bench failed (its output: $out/$day-latency-${cpus}cpu.txt)"
  }
  cat "$out/$day-scaling-${cpus}cpu.txt"
  echo "== done: $out/$day-*-${cpus}cpu.*"
}

case ${1:-} in
  pack) pack ;;
  check) check ;;
  run) run "${2:-}" ;;
  *) die "usage: bash benches/many_core.sh pack | check | run [DIR]" ;;
esac
