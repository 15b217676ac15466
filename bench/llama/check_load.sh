#!/usr/bin/env bash
# bench/llama/check_load.sh — llama.cpp loads and runs every kind of file
# `cairn model synth` writes: the architectures llama, qwen2 and bert in every weight
# type (f32, f16, bf16, q8_0, q4_0, q4_k, q4_k_m). Decoders generate a few tokens with
# llama-simple; bert computes an embedding with llama-embedding. Any failure is printed
# with llama.cpp's own messages and makes the exit code 1.
#
# usage: bench/llama/check_load.sh [--cairn BIN] [--preset tiny] [--keep DIR]
# The llama.cpp tools are built from node-llama-cpp@3.21.1's source on the first run
# (see common.sh); synthesized files go to a temporary directory unless --keep.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
source "$HERE/common.sh"

CAIRN="$ROOT/build/release/bin/cairn"
PRESET=tiny
KEEP=""
while [ $# -gt 0 ]; do
  case "$1" in
    --cairn) CAIRN="$2"; shift 2 ;;
    --preset) PRESET="$2"; shift 2 ;;
    --keep) KEEP="$2"; shift 2 ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) die "unknown argument $1" ;;
  esac
done
[ -x "$CAIRN" ] || die "no cairn binary at $CAIRN (build it: ninja -C build/release cairn, or pass --cairn)"
ensure_llama_tools

if [ -n "$KEEP" ]; then
  DIR="$KEEP"; mkdir -p "$DIR"
else
  DIR="$(mktemp -d)"; trap 'rm -rf "$DIR"' EXIT
fi

fail=0
n=0
for arch in llama qwen2 bert; do
  for type in f32 f16 bf16 q8_0 q4_0 q4_k q4_k_m; do
    f="$DIR/$arch-$PRESET-$type.gguf"
    n=$((n + 1))
    if ! "$CAIRN" model synth --arch "$arch" --preset "$PRESET" --type "$type" --seed 5 --quiet -o "$f" > "$DIR/synth.log" 2>&1; then
      echo "FAIL $arch $type: cairn model synth"; sed 's/^/     /' "$DIR/synth.log"; fail=1; continue
    fi
    if [ "$arch" = bert ]; then
      cmd=("$LLAMA_BIN/llama-embedding" -m "$f" -p "hello world" -t 2 --embd-output-format json)
      want='"embedding"'
    else
      cmd=("$LLAMA_BIN/llama-simple" -m "$f" -n 4 "hello world")
      want=''
    fi
    if "${cmd[@]}" > "$DIR/out.log" 2>&1 && { [ -z "$want" ] || grep -q "$want" "$DIR/out.log"; }; then
      echo "ok   $arch $type ($(du -h "$f" | cut -f1))"
    else
      echo "FAIL $arch $type: $(basename "${cmd[0]}")"; tail -15 "$DIR/out.log" | sed 's/^/     /'; fail=1
    fi
    [ -n "$KEEP" ] || rm -f "$f"
  done
done
[ "$fail" = 0 ] && echo "llama.cpp loaded and ran all $n files" || echo "some files did not load or run in llama.cpp"
exit "$fail"
