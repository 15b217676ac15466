#!/usr/bin/env bash
# bench/llama/run.sh — `cairn bench infer` against llama.cpp on the same GGUF files.
#
# For every model and thread count, in this order and back to back (so a change in the
# machine's load hits all three alike):
#   1. cairn bench infer -m FILE --threads T --pp PP --tg TG --repeats R --json
#   2. llama-bench -m FILE -p PP -n TG -t T -r R -o json   (built from node-llama-cpp's source)
#   3. node nlc_bench.mjs FILE T PP TG R                    (node-llama-cpp's prebuilt llama.cpp)
# then prints one markdown table (medians, cairn/llama-bench ratios, the bandwidth bound
# and peak memory) and keeps the raw JSON under the output directory (an existing one is
# added to: the table covers every result in it).
#
# usage: bench/llama/run.sh [--cairn BIN] [--threads 1,2] [--pp 512] [--tg 128] [--repeats 3]
#                           [--no-nlc] [--no-llama-bench] [--out DIR] MODEL.gguf...
# --no-llama-bench skips step 2 (and building llama-bench): node-llama-cpp alone is the
# baseline, which is fair where its figures are the faster ones (see docs/benchmarks.md).
# The first run installs node-llama-cpp@3.21.1 and builds llama-bench in
# ${CAIRN_BENCH_CACHE:-~/.cache/cairn-bench} (see common.sh).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
source "$HERE/common.sh"

CAIRN="$ROOT/build/release/bin/cairn"
THREADS=1,2
PP=512
TG=128
REPEATS=3
NLC=1
LB=1
OUT=""
MODELS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --cairn) CAIRN="$2"; shift 2 ;;
    --threads) THREADS="$2"; shift 2 ;;
    --pp) PP="$2"; shift 2 ;;
    --tg) TG="$2"; shift 2 ;;
    --repeats) REPEATS="$2"; shift 2 ;;
    --no-nlc) NLC=0; shift ;;
    --no-llama-bench) LB=0; shift ;;
    --out) OUT="$2"; shift 2 ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    -*) die "unknown option $1" ;;
    *) MODELS+=("$1"); shift ;;
  esac
done
[ ${#MODELS[@]} -gt 0 ] || die "no model files (usage: run.sh [options] MODEL.gguf...)"
[ -x "$CAIRN" ] || die "no cairn binary at $CAIRN (build it: ninja -C build/release cairn, or pass --cairn)"
[ "$NLC" = 1 ] || [ "$LB" = 1 ] || die "--no-nlc and --no-llama-bench leave no baseline"
[ "$NLC" = 0 ] || ensure_nlc
[ "$LB" = 0 ] || ensure_llama_tools
OUT="${OUT:-$CAIRN_BENCH_CACHE/results-$(date -u +%Y%m%dT%H%M%S)}"
mkdir -p "$OUT"

{
  echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "cpu: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; $(lscpu | sed -n 's/^L3 cache: *//p') L3"
  echo "load before: $(uptime | sed 's/.*load average: //')"
  echo "cairn: $CAIRN ($("$CAIRN" --version))"
  if [ "$NLC" = 1 ]; then
    echo "node-llama-cpp: $NLC_VERSION, prebuilt llama.cpp $(node -p "require('$NLC_DIR/node_modules/node-llama-cpp/llama/llama.cpp.info.json').tag" 2>/dev/null || echo '?')"
  fi
  if [ "$LB" = 1 ]; then
    echo "llama.cpp: $(git -C "$LLAMA_BIN/../.." rev-parse --short HEAD 2>/dev/null || echo "$LLAMA_BIN") (node-llama-cpp $NLC_VERSION's source bundle)"
  fi
  echo "settings: pp $PP, tg $TG, $REPEATS repetitions, threads $THREADS, llama-bench $([ "$LB" = 1 ] && echo on || echo off), node-llama-cpp $([ "$NLC" = 1 ] && echo on || echo off)"
  echo "models: ${MODELS[*]}"
} | tee -a "$OUT/env.txt" >&2

for model in "${MODELS[@]}"; do
  [ -f "$model" ] || die "no such model file: $model"
  label="$(basename "$model" .gguf)"
  for t in ${THREADS//,/ }; do
    log "$label, $t thread(s): cairn"
    "$CAIRN" bench infer -m "$model" --threads "$t" --pp "$PP" --tg "$TG" --repeats "$REPEATS" \
      --json-out "$OUT/$label.t$t.cairn.json" >&2
    if [ "$LB" = 1 ]; then
      log "$label, $t thread(s): llama-bench"
      "$LLAMA_BIN/llama-bench" -m "$model" -p "$PP" -n "$TG" -t "$t" -r "$REPEATS" -o json \
        > "$OUT/$label.t$t.llama-bench.json" 2> "$OUT/$label.t$t.llama-bench.log" ||
        { sed 's/^/    /' "$OUT/$label.t$t.llama-bench.log" >&2; die "llama-bench failed on $model"; }
    fi
    if [ "$NLC" = 1 ]; then
      log "$label, $t thread(s): node-llama-cpp"
      node "$HERE/nlc_bench.mjs" "$model" "$t" "$PP" "$TG" "$REPEATS" > "$OUT/$label.t$t.nlc.json" ||
        die "node-llama-cpp failed on $model"
    fi
  done
done
echo "load after: $(uptime | sed 's/.*load average: //')" >> "$OUT/env.txt"
node "$HERE/table.mjs" "$OUT" | tee "$OUT/table.md"
log "raw results in $OUT"
