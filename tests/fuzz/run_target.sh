#!/usr/bin/env bash
# Runs one libFuzzer target over its seed corpus, then on new inputs, bounded either by count
# (--runs N, with a fixed seed: what `meson test --suite fuzz` and ./scripts/test do) or by
# time (--seconds S: ./scripts/fuzz). New corpus entries go to WORKDIR/corpus (kept between
# runs unless --fresh), a crashing input to WORKDIR/crashes/. Ends with one line:
#   FUZZ <name> executions=<n> crashes=<0|1> corpus=<entries> [crash=<file>]
# and exits non-zero when the target crashed (or could not run).
#
#   run_target.sh BINARY NAME SEEDS WORKDIR (--runs N | --seconds S) [--max-len N]
#                 [--dict FILE] [--fresh]
set -uo pipefail

[ $# -ge 6 ] || { echo "usage: $0 BINARY NAME SEEDS WORKDIR (--runs N | --seconds S) ..." >&2; exit 2; }
bin=$1 name=$2 seeds=$3 work=$4
shift 4
runs="" seconds="" max_len=4096 dict="" fresh=0
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) runs=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --max-len) max_len=$2; shift 2 ;;
    --dict) dict=$2; shift 2 ;;
    --fresh) fresh=1; shift ;;
    *) echo "$0: unknown argument $1" >&2; exit 2 ;;
  esac
done
[ -x "$bin" ] || { echo "$0: $bin is not an executable" >&2; exit 2; }
[ -d "$seeds" ] || { echo "$0: no seed corpus at $seeds" >&2; exit 2; }

[ "$fresh" = 1 ] && rm -rf "$work/corpus"
mkdir -p "$work/corpus" "$work/crashes"
log="$work/fuzz.log"

# libFuzzer's own exit status for a crash is 77, which meson reads as "skipped": use 1.
args=(-max_len="$max_len" -timeout=20 -rss_limit_mb=3072 -malloc_limit_mb=1024
      -error_exitcode=1 -timeout_exitcode=1
      -print_final_stats=1 -artifact_prefix="$work/crashes/" -close_fd_mask=1)
[ -n "$dict" ] && args+=(-dict="$dict")
if [ -n "$runs" ]; then
  # -runs counts every execution: the corpus replay first, then the new inputs.
  have=$(find "$seeds" "$work/corpus" -type f | wc -l)
  args+=(-seed=1 -runs=$((runs + have)))
else
  args+=(-max_total_time="$seconds")
fi

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
"$bin" "${args[@]}" "$work/corpus" "$seeds" >"$log" 2>&1
rc=$?

execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
entries=$(find "$work/corpus" "$seeds" -type f | wc -l)
crash=$(ls -t "$work/crashes" 2>/dev/null | head -1)
if [ $rc -eq 0 ]; then
  echo "FUZZ $name executions=${execs:-0} crashes=0 corpus=$entries"
else
  tail -60 "$log" >&2
  echo "FUZZ $name executions=${execs:-0} crashes=1 corpus=$entries${crash:+ crash=$work/crashes/$crash}"
fi
exit $rc
