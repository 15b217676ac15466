#!/usr/bin/env bash
# Real-client test of `cairn serve`: synthesizes two tiny models (a llama with the
# vocabulary of llama.cpp's llama-spm fixture, and a bert with its bge WordPiece
# vocabulary, so tokenization is real), starts one server per model on a free loopback
# port, checks the SSE framing of streamed responses with curl, then runs
# client_test.mjs with the official `openai` npm package (installed by scripts/setup
# into tests/openai/node_modules). The servers are always stopped (SIGTERM) on exit.
#   tests/openai/run.sh path/to/cairn
set -u
CAIRN="$1"
DIR="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$DIR/../.." && pwd)"
FIXTURES="$ROOT/cairn/infer/testdata/tokenizers"
T="$(mktemp -d)"
PIDS=()
fail=0

stop_servers() {  # SIGTERM, then up to 20 s for a clean exit, then SIGKILL
  local pid i
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
  for pid in "${PIDS[@]}"; do
    for ((i = 0; i < 200; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null
  done
}
trap 'stop_servers; rm -rf "$T"' EXIT
trap 'exit 130' INT TERM

if ! command -v node >/dev/null 2>&1 || ! command -v curl >/dev/null 2>&1; then
  echo "FAIL node and curl are needed: run scripts/setup"; exit 1
fi
if [ ! -f "$DIR/node_modules/openai/package.json" ]; then
  echo "FAIL the openai npm package is not installed in $DIR/node_modules: run scripts/setup"; exit 1
fi
echo "node $(node --version), openai $(node -p "require('$DIR/node_modules/openai/package.json').version")"

# --- models ---
# f32 weights: f32 matrix products have no separate batch kernels, so a sequence's
# tokens are the same whatever else shares its batch, and the batched streams below
# must equal the solo one exactly (quantized batch kernels may differ in the last bits).
if ! "$CAIRN" model synth --arch llama --preset tiny --type f32 --n-ctx 1024 --seed 7 --quiet \
    --vocab-from "$FIXTURES/ggml-vocab-llama-spm.gguf" -o "$T/chat.gguf" >"$T/synth.log" 2>&1 ||
   ! "$CAIRN" model synth --arch bert --preset tiny --type f16 --n-layer 1 --seed 7 --quiet \
    --vocab-from "$FIXTURES/ggml-vocab-bert-bge.gguf" -o "$T/embed.gguf" >>"$T/synth.log" 2>&1; then
  echo "FAIL model synth"; sed 's/^/     /' "$T/synth.log"; exit 1
fi
EMBED_DIM="$(sed -n 's/^wrote .*embed\.gguf: .*embd \([0-9]*\),.*/\1/p' "$T/synth.log")"
[ -n "$EMBED_DIM" ] || { echo "FAIL no embedding width in the synth output"; cat "$T/synth.log"; exit 1; }

# --- servers ---
# The llama-spm fixture has no chat template; name one when serve can take it.
TEMPLATE=()
SERVE_HELP="$("$CAIRN" serve --help 2>&1)"
if grep -q -- '--chat-template' <<<"$SERVE_HELP"; then TEMPLATE=(--chat-template chatml)
elif grep -q -- '--template' <<<"$SERVE_HELP"; then TEMPLATE=(--template chatml); fi

start_server() {  # start_server NAME MODEL_FILE EXTRA... ; sets URL
  local name="$1" model="$2" i
  shift 2
  "$CAIRN" serve --model "$model" --model-name "$name" --slots 4 --listen 127.0.0.1:0 --data-dir "$T/data-$name" \
    "$@" >"$T/$name.log" 2>&1 &
  PIDS+=($!)
  URL=""
  for ((i = 0; i < 1200; i++)); do  # up to 120 s: sanitizer builds load models slowly
    URL="$(sed -n 's|.*cairn serve: listening on \(http://[^ ]*\).*|\1|p' "$T/$name.log" | head -1)"
    [ -n "$URL" ] && break
    kill -0 "${PIDS[-1]}" 2>/dev/null || break
    sleep 0.1
  done
  if [ -z "$URL" ]; then
    echo "FAIL cairn serve --model $name did not print 'cairn serve: listening on http://HOST:PORT'"
    sed 's/^/     /' "$T/$name.log"
    exit 1
  fi
  echo "ok   serve_$name listening on $URL"
}
start_server tiny-chat "$T/chat.gguf" --ctx 256 "${TEMPLATE[@]}"
CHAT_URL="$URL"
start_server tiny-embed "$T/embed.gguf"
EMBED_URL="$URL"

# --- SSE framing and content types, with curl ---
post() {  # post NAME URL BODY  (headers -> $T/NAME.h, body -> $T/NAME.b)
  curl -sS -N --max-time 120 -D "$T/$1.h" -o "$T/$1.b" -H 'Content-Type: application/json' -d "$3" "$2"
}
sse() {  # sse NAME URL BODY OBJECT
  if post "$1" "$2" "$3" 2>"$T/curl.err" && node "$DIR/sse_check.mjs" "$T/$1.h" "$T/$1.b" "$4" >"$T/sse.out" 2>&1; then
    echo "ok   $1 ($(cat "$T/sse.out"))"
  else
    echo "FAIL $1: $(cat "$T/curl.err" "$T/sse.out" 2>/dev/null)"; sed 's/^/     /' "$T/$1.h"; head -c 600 "$T/$1.b"; echo
    fail=1
  fi
}
status_is() {  # status_is NAME CODE CONTENT_TYPE_REGEX  (against $T/NAME.h and $T/NAME.b)
  local got ctype
  got="$(grep -E '^HTTP/' "$T/$1.h" | tail -1 | awk '{print $2}')"
  ctype="$(grep -i '^content-type:' "$T/$1.h" | tail -1 | tr -d '\r')"
  if [ "$got" = "$2" ] && echo "$ctype" | grep -Eqi "^content-type: *$3"; then echo "ok   $1"; else
    echo "FAIL $1: HTTP $got ($ctype), expected $2 ($3)"; head -c 600 "$T/$1.b"; echo; fail=1; fi
}
MSGS='"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Status of pump seven?"}]'
sse sse_chat_stream "$CHAT_URL/v1/chat/completions" \
  "{\"model\":\"tiny-chat\",$MSGS,\"max_tokens\":6,\"temperature\":0,\"stream\":true}" chat.completion.chunk
sse sse_chat_stream_usage "$CHAT_URL/v1/chat/completions" \
  "{\"model\":\"tiny-chat\",$MSGS,\"max_tokens\":6,\"stream\":true,\"stream_options\":{\"include_usage\":true}}" \
  chat.completion.chunk
sse sse_completion_stream "$CHAT_URL/v1/completions" \
  '{"model":"tiny-chat","prompt":"Once upon a time","max_tokens":6,"temperature":0,"stream":true}' text_completion
post chat_json "$CHAT_URL/v1/chat/completions" "{\"model\":\"tiny-chat\",$MSGS,\"max_tokens\":4}" 2>/dev/null
status_is chat_json 200 'application/json'
post malformed_json "$CHAT_URL/v1/chat/completions" '{"model":"tiny-chat","messages":[' 2>/dev/null
status_is malformed_json 400 'application/json'
grep -q '"error"' "$T/malformed_json.b" && grep -q '"message"' "$T/malformed_json.b" && echo "ok   malformed_json_error_body" \
  || { echo "FAIL malformed JSON: no {\"error\":{\"message\":...}} body"; fail=1; }
post unknown_model_stream "$CHAT_URL/v1/chat/completions" "{\"model\":\"nope\",$MSGS,\"stream\":true}" 2>/dev/null
status_is unknown_model_stream 404 'application/json'

# --- the official OpenAI client ---
CAIRN_URL="$CHAT_URL" CAIRN_MODEL=tiny-chat CAIRN_EMBED_URL="$EMBED_URL" CAIRN_EMBED_MODEL=tiny-embed \
  CAIRN_EMBED_DIM="$EMBED_DIM" timeout 300 node "$DIR/client_test.mjs" || fail=1

# --- a clean stop: SIGTERM, exit 0 ---
for i in "${!PIDS[@]}"; do
  kill -TERM "${PIDS[$i]}" 2>/dev/null
  timeout 30 tail --pid="${PIDS[$i]}" -f /dev/null
  wait "${PIDS[$i]}"
  rc=$?
  [ "$rc" -eq 0 ] && echo "ok   serve_stop_$i" || { echo "FAIL serve $i exited $rc after SIGTERM"; fail=1; }
done
PIDS=()
if [ "$fail" -ne 0 ]; then
  for f in "$T"/tiny-*.log; do echo "--- $(basename "$f")"; tail -20 "$f"; done
fi
exit $fail
