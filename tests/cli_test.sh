#!/usr/bin/env bash
# End-to-end checks of the cairn binary as a user runs it: usage errors, help,
# version, every `cairn sketch` subcommand on small files, smoke runs of
# `cairn demo` (compressed into seconds), `cairn bench sketch`, `cairn bench nexmark`,
# `cairn bench detect` and `cairn bench edges` on tiny inputs, `cairn detect` on small
# generated files, and `cairn eval nab` on a tiny synthetic corpus in NAB's layout
# (tests/data/nab_tiny), `cairn vector build/search/bench` on tiny generated files,
# `cairn model synth/inspect` on tiny synthesized models, `cairn tokenize` on
# llama.cpp's vocabulary fixtures, `cairn generate/chat/embed` and `cairn bench
# infer` and `cairn bench serve` on tiny synthesized models, `cairn bench memory` on 2,000
# synthetic episodes, `cairn serve --config` (API keys,
# /metrics) and `cairn ask` over a collection it made.
set -u
CAIRN="$1"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
T="$(mktemp -d)"
trap 'rm -rf "$T"' EXIT
OUT="$T/out"
fail=0

check() {  # check NAME EXPECTED_RC COMMAND...   (stdout+stderr -> $OUT)
  local name="$1" want="$2"; shift 2
  "$@" >"$OUT" 2>&1
  local rc=$?
  if [ "$rc" -ne "$want" ]; then
    echo "FAIL $name: exit $rc, expected $want"; sed 's/^/     /' "$OUT"; fail=1
  else
    echo "ok   $name"
  fi
}
expect() {  # expect NAME REGEX   (against the last $OUT)
  if grep -Eq -- "$2" "$OUT"; then echo "ok   $1"; else
    echo "FAIL $1: output lacks /$2/"; sed 's/^/     /' "$OUT"; fail=1; fi
}

# --- usage ---
check version 0 "$CAIRN" --version
expect version_text '^cairn [0-9]+\.[0-9]+'
check help 0 "$CAIRN" --help
check no_subcommand 2 "$CAIRN"
check unknown_subcommand 2 "$CAIRN" frobnicate
expect one_line_reason '^cairn: '
[ "$(wc -l <"$OUT")" -eq 1 ] && echo "ok   reason_is_one_line" || { echo "FAIL reason is not one line"; fail=1; }
for sub in demo "demo sketches" sketch bench "sketch distinct" "sketch top" "sketch quantiles" "sketch contains" \
    "bench sketch" "bench nexmark" "bench detect" "bench edges" "bench vector" vector "vector build" \
    "vector search" "vector bench" run eval "eval nab" detect "detect edges" "detect series" \
    model "model inspect" "model synth" tokenize generate chat embed ask "bench serve" "bench memory" memory "memory add" "memory recall" "memory facts" "memory consolidate" "eval locomo"; do
  # shellcheck disable=SC2086
  check "help_${sub// /_}" 0 "$CAIRN" $sub --help
done
check bad_option 2 "$CAIRN" sketch distinct --precision 30
expect bad_option_reason 'precision'

# --- inputs ---
seq 1 100000 > "$T/ids.txt"
awk 'BEGIN { for (i = 0; i < 20000; i++) print "s" (i % 7 == 0 ? 0 : i % 50) }' > "$T/zipfish.txt"
printf 'time,temp\n1,10.5\n2,abc\n3,11.5\n4\n5,12.5\n' > "$T/readings.csv"
seq 1 1000 > "$T/build.txt"
seq 500 1500 > "$T/query.txt"

# --- cairn sketch distinct ---
check distinct 0 "$CAIRN" sketch distinct "$T/ids.txt"
expect distinct_estimate 'distinct values +~(9[89]|10[01]),[0-9]{3}'
check distinct_stdin 0 sh -c "cat '$T/ids.txt' | '$CAIRN' sketch distinct --json"
expect distinct_json '"distinct": (9[89]|10[01])[0-9]{3}'
check distinct_missing_file 1 "$CAIRN" sketch distinct "$T/nope.txt"
expect distinct_missing_reason "cannot open .*nope.txt"

# --- cairn sketch top ---
check top 0 "$CAIRN" sketch top 3 "$T/zipfish.txt"
expect top_first '^ +1 +3,200 +exact +16\.00% +s0$'

# --- cairn sketch quantiles: bad lines reported with their number, skipped ---
check quantiles 0 "$CAIRN" sketch quantiles --column 2 --header -q 0.5 "$T/readings.csv"
expect quantiles_bad_line 'readings.csv:3: .abc. is not a number \(skipped\)'
expect quantiles_missing_column 'readings.csv:5: has no column 2'
expect quantiles_p50 'p50 +11.5'
check quantiles_strict 1 "$CAIRN" sketch quantiles --column 2 --header --strict "$T/readings.csv"
expect quantiles_strict_reason 'stopped at the first bad line'

# --- cairn sketch contains ---
check contains 0 "$CAIRN" sketch contains --build "$T/build.txt" --count "$T/query.txt"
expect contains_summary '1,001 tested: (50[1-9]|51[0-9]) possibly present'
check contains_lines 0 "$CAIRN" sketch contains --build "$T/build.txt" "$T/query.txt"
grep -qx 1000 "$OUT" && ! grep -qx 400 "$OUT" && echo "ok   contains_prints_members" || { echo "FAIL contains lines"; fail=1; }

printf 'id,name\n7,a\n8,b\n' > "$T/build.csv"
printf '7\n9\n' > "$T/probe.txt"
check contains_build_column 0 "$CAIRN" sketch contains --build "$T/build.csv" --build-column 1 --build-header "$T/probe.txt"
grep -qx 7 "$OUT" && ! grep -qx 9 "$OUT" && echo "ok   contains_build_column_lines" || { echo "FAIL contains build column"; fail=1; }
expect contains_build_column_summary '2 tested: 1 possibly present, 1 absent'

# --- cairn serve: the HTTP API on a free port over a temp data dir, driven with curl ---
if command -v curl >/dev/null 2>&1; then
  SERVE_PID=""
  trap '[ -n "$SERVE_PID" ] && kill "$SERVE_PID" 2>/dev/null; rm -rf "$T"' EXIT
  serve_start() {  # starts `cairn serve` on port 0 and reads the bound address from its log
    rm -f "$T/serve.log"  # the previous run's line must not be read before the new process truncates it
    "$CAIRN" serve --listen 127.0.0.1:0 --data-dir "$T/node" --threads 2 >"$T/serve.log" 2>&1 &
    SERVE_PID=$!
    SERVE_URL=""
    for _ in $(seq 1 100); do
      SERVE_URL=$(grep -oE 'listening on http://127\.0\.0\.1:[0-9]+' "$T/serve.log" 2>/dev/null | grep -oE 'http://.*')
      [ -n "$SERVE_URL" ] && break
      sleep 0.1
    done
    [ -n "$SERVE_URL" ] && echo "ok   serve_start" || { echo "FAIL serve did not start"; sed 's/^/     /' "$T/serve.log"; fail=1; }
  }
  serve_stop() {  # SIGTERM, then a clean exit 0 within 10 s
    kill -TERM "$SERVE_PID"
    local rc=0 waited=0
    while kill -0 "$SERVE_PID" 2>/dev/null && [ $waited -lt 100 ]; do sleep 0.1; waited=$((waited + 1)); done
    wait "$SERVE_PID"; rc=$?
    SERVE_PID=""
    [ "$rc" -eq 0 ] && grep -q 'stopped' "$T/serve.log" && echo "ok   serve_stop" \
      || { echo "FAIL serve stop: exit $rc"; sed 's/^/     /' "$T/serve.log"; fail=1; }
  }
  api() {  # api METHOD PATH [JSON]: prints the body, then "HTTP <status>"
    curl -sS -X "$1" ${3:+-H 'Content-Type: application/json' --data-binary "$3"} -w '\nHTTP %{http_code}\n' \
      "$SERVE_URL$2"
  }
  check help_serve 0 "$CAIRN" serve --help
  check serve_bad_listen 2 "$CAIRN" serve --listen nonsense:port --data-dir "$T/node"
  expect serve_bad_listen_reason 'is not HOST:PORT'
  serve_start
  check serve_healthz 0 api GET /healthz
  expect serve_healthz_ok '"status":"ok"'
  check serve_create 0 api POST /v1/collections '{"name":"docs","dim":4,"metric":"l2","index":{"type":"hnsw","M":8}}'
  expect serve_create_201 'HTTP 201'
  check serve_create_again 0 api POST /v1/collections '{"name":"docs","dim":4}'
  expect serve_create_409 'HTTP 409'
  check serve_upsert 0 api POST /v1/collections/docs/points \
    '{"points":[{"id":1,"vector":[1,0,0,0],"text":"pump bearing hot","attributes":{"kind":"pump"}},
                {"id":2,"vector":[0,1,0,0],"attributes":{"kind":"valve"}},{"id":3,"vector":[0,0,1,0]}]}'
  expect serve_upsert_count '"count":3'
  check serve_bad_batch 0 api POST /v1/collections/docs/points '{"points":[{"id":4,"vector":[1,1,1,1]},{"id":5,"vector":[1]}]}'
  expect serve_bad_batch_400 'HTTP 400'
  expect serve_bad_batch_names_point "'points\[1\]\.vector' has 1 values"
  check serve_bad_batch_wrote_nothing 0 api GET /v1/collections/docs/points/4
  expect serve_bad_batch_404 'HTTP 404'
  check serve_malformed 0 api POST /v1/collections/docs/search '{"vector":[1,0,0'
  expect serve_malformed_400 'not valid JSON'
  check serve_search 0 api POST /v1/collections/docs/search '{"vector":[0.9,0.1,0,0],"k":2}'
  expect serve_search_first '"results":\[\{"attributes":\{"kind":"pump"\},"distance":[^,]*,"id":1,'
  check serve_search_filter 0 api POST /v1/collections/docs/search \
    '{"vector":[0.9,0.1,0,0],"k":2,"filter":{"field":"kind","eq":"valve"}}'
  expect serve_search_filter_valve '"results":\[\{"attributes":\{"kind":"valve"\},"distance":[^,]*,"id":2,"score":[^}]*\}\]'
  check serve_unknown_collection 0 api GET /v1/collections/nope
  expect serve_unknown_collection_404 'HTTP 404'
  serve_stop
  # Restart on the same data dir: the collection and its points are still there.
  serve_start
  check serve_restart_count 0 api GET /v1/collections/docs
  expect serve_restart_count_3 '"count":3'
  check serve_restart_point 0 api GET /v1/collections/docs/points/1
  expect serve_restart_point_text '"text":"pump bearing hot"'
  check serve_drop 0 api DELETE /v1/collections/docs
  expect serve_drop_200 'HTTP 200'
  serve_stop

  # --- cairn serve --config: API keys (one from the environment), /metrics, a collection made at start ---
  serve_start_args() {  # serve_start with other arguments
    "$CAIRN" serve "$@" >"$T/serve.log" 2>&1 &
    SERVE_PID=$!
    SERVE_URL=""
    for _ in $(seq 1 100); do
      SERVE_URL=$(grep -oE 'listening on https?://127\.0\.0\.1:[0-9]+' "$T/serve.log" | grep -oE 'https?://.*')
      [ -n "$SERVE_URL" ] && break
      sleep 0.1
    done
    [ -n "$SERVE_URL" ] && echo "ok   serve_start_args" || { echo "FAIL serve did not start"; sed 's/^/     /' "$T/serve.log"; fail=1; }
  }
  mkdir -p "$T/cfg"
  printf 'listen: 127.0.0.1:0\ndata_dir: node\nthreads: 2\napi_keys: [file-key]\napi_keys_env: CAIRN_TEST_KEYS\n' > "$T/cfg/node.yaml"
  printf 'collections:\n  - {name: kb, dim: 32, metric: cosine, index: {type: flat}, embedder: hash}\n' >> "$T/cfg/node.yaml"
  CAIRN_TEST_KEYS="env-key" serve_start_args --config "$T/cfg/node.yaml"
  keyed() {  # keyed KEY METHOD PATH [JSON]
    local key="$1"; shift
    curl -sS -X "$1" -H "Authorization: Bearer $key" ${3:+-H 'Content-Type: application/json' --data-binary "$3"} \
      -w '\nHTTP %{http_code}\n' "$SERVE_URL$2"
  }
  check config_healthz_open 0 api GET /healthz
  expect config_healthz_200 'HTTP 200'
  check config_no_key 0 api GET /v1/collections
  expect config_no_key_401 'HTTP 401'
  expect config_no_key_type '"type":"authentication_error"'
  check config_wrong_key 0 keyed nope GET /v1/collections
  expect config_wrong_key_401 'HTTP 401'
  check config_file_key 0 keyed file-key GET /v1/collections/kb
  expect config_collection_made '"name":"kb"'
  expect config_file_key_200 'HTTP 200'
  check config_env_key 0 keyed env-key POST /v1/collections/kb/points \
    '{"points":[{"id":1,"text":"The pump P-7 runs at a pressure of 4 bar.","attributes":{"kind":"pump"}},{"id":2,"text":"Valve V-2 closes when the tank is full.","attributes":{"kind":"valve"}},{"id":3,"text":"The compressor is serviced every 500 hours.","attributes":{"kind":"compressor"}}]}'
  expect config_env_key_upsert '"count":3'
  check config_metrics_needs_key 0 api GET /metrics
  expect config_metrics_401 'HTTP 401'
  check config_metrics 0 keyed file-key GET /metrics
  expect config_metrics_refused 'cairn_http_requests_total\{code="401",method="GET",route="none"\} 3'
  expect config_metrics_by_route 'cairn_http_requests_total\{code="200",method="POST",route="/v1/collections/\{name\}/points"\} 1'
  serve_stop
  [ -d "$T/cfg/node/collections/kb" ] && echo "ok   config_data_dir_relative" || { echo "FAIL config data_dir is not relative to the file"; fail=1; }
  # Flags win over the file: another key, another data directory.
  CAIRN_TEST_KEYS="env-key" serve_start_args --config "$T/cfg/node.yaml" --api-key flag-key --data-dir "$T/cfg/other"
  check config_flag_key 0 keyed flag-key GET /v1/collections/kb
  expect config_flag_key_200 'HTTP 200'
  check config_file_key_replaced 0 keyed file-key GET /v1/collections
  expect config_file_key_replaced_401 'HTTP 401'
  serve_stop
  [ -d "$T/cfg/other/collections/kb" ] && echo "ok   config_flag_data_dir" || { echo "FAIL --data-dir did not win over the file"; fail=1; }
  printf 'models:\n  - {path: node.yaml, slots: four}\n' > "$T/cfg/bad.yaml"
  check config_bad_type 1 "$CAIRN" serve --config "$T/cfg/bad.yaml"
  expect config_bad_type_reason "key 'models\[0\]\.slots' \(line 2\): expected an integer"
  printf 'api_keys_env: CAIRN_TEST_UNSET_VAR\n' > "$T/cfg/env.yaml"
  check config_env_unset 1 "$CAIRN" serve --config "$T/cfg/env.yaml"
  expect config_env_unset_reason "environment variable 'CAIRN_TEST_UNSET_VAR' is not set"
  check config_missing 2 "$CAIRN" serve --config "$T/cfg/none.yaml"
else
  echo "skip serve: curl is not installed (scripts/setup installs it)"
fi

# --- cairn run ---
check run_missing_file 1 "$CAIRN" run "$T/nope.yaml"
expect run_missing_file_text 'nope.yaml'
printf 'source: {type: file, path: x.csv}\nsink: {type: stdout}\nsteps:\n  - filter: temp >\n' > "$T/bad.yaml"
check run_bad_pipeline 1 "$CAIRN" run "$T/bad.yaml"
expect run_bad_pipeline_text "key 'steps\[0\]\.filter' \(line 4\)"
check run_bad_interval 2 "$CAIRN" run --checkpoint-interval soon "$T/bad.yaml"
(cd "$ROOT" && "$CAIRN" run -q examples/pipelines/nab_hourly.yaml > "$T/hourly.jsonl" 2> "$T/hourly.err")
[ "$(wc -l < "$T/hourly.jsonl")" -eq 1891 ] && echo "ok   run_example_nab_hourly" || { echo "FAIL run example: $(wc -l < "$T/hourly.jsonl") rows"; cat "$T/hourly.err"; fail=1; }
grep -q '"window_start":1386018000000' "$T/hourly.jsonl" && echo "ok   run_example_first_window" || { echo "FAIL run example first window"; fail=1; }

# --- demo and bench, tiny ---
# The scene, compressed into 2 s: over MQTT when mosquitto is installed, else from the files.
check demo_scene 0 "$CAIRN" demo --data "$ROOT/data" --seconds 2
if [ -x /usr/sbin/mosquitto ] || command -v mosquitto >/dev/null; then
  expect demo_scene_broker '^broker +mosquitto on 127\.0\.0\.1:[0-9]+'
else
  expect demo_scene_no_broker 'replaying from the files instead'
fi
expect demo_scene_data 'machine_temperature +22,695 readings'
expect demo_scene_alarm '^ALARM 20[0-9-]+ [0-9:]+ +[a-z_0-9]+ +score 0?\.?[0-9.]+ +reading [-0-9.e]+ is .* (above|below) .* +\[(labelled window [0-9]+ of [0-9]+|no label)\]$'
expect demo_scene_progress '^100% \| sent 52,044 \| scored 52,044 \(.*/s\) \| alarms [0-9]+$'
expect demo_scene_table '^all +52,044 +10 +[0-9]+ +[0-9]+ +[0-9]+ +[0-9.]+% +[0-9.]+%$'
expect demo_scene_summary '^precision [0-9.]+% = windows detected .* recall [0-9.]+% = windows detected / windows$'
check demo_scene_files 0 "$CAIRN" demo --data "$ROOT/data" --seconds 1 --no-broker
expect demo_scene_files_progress '^100% \| sent 52,044 \| scored 52,044'
check demo_scene_bad_seconds 2 "$CAIRN" demo --seconds 0
check demo_sketches_small 0 "$CAIRN" demo sketches --data "$ROOT/data" --events 20000 --sensors 1000
expect demo_nab 'Machine temperature, 22,695 real readings'
expect demo_stream 'distinct sensors'
check bench_sketch_small 0 "$CAIRN" bench sketch -n 2000 --repeats 1 --json-out "$T/bench.json"
expect bench_table 'sketch vs exact baseline'
grep -q '"benchmark": "sketch"' "$T/bench.json" && echo "ok   bench_json" || { echo "FAIL bench json"; fail=1; }
check bench_nexmark_small 0 "$CAIRN" bench nexmark --query all --events 20000 --checkpoint-interval 50ms
expect bench_nexmark_table '^q8 +20000 '
check bench_nexmark_latency 0 "$CAIRN" bench nexmark --query q0,q7 --events 5000 --latency --latency-rate 20000 --latency-seconds 1 --json
expect bench_nexmark_latency_json '"latency_p99_ms"'
check bench_nexmark_bad_query 2 "$CAIRN" bench nexmark --query q9
check bench_detect_small 0 "$CAIRN" bench detect --records 20000 --keys 100 --repeats 1 --json-out "$T/detect.json"
expect bench_detect_table '^heavy_hitters +1 '
expect bench_detect_cardinality '^cardinality +100 '
grep -q '"benchmark": "detect"' "$T/detect.json" && echo "ok   bench_detect_json" || { echo "FAIL bench detect json"; fail=1; }
check bench_detect_bad_only 2 "$CAIRN" bench detect --only nonesuch

# --- cairn eval nab (tests/data/nab_tiny: 2 synthetic files, 1 window each) ---
NAB="$ROOT/tests/data/nab_tiny"
check eval_nab 0 "$CAIRN" eval nab --corpus "$NAB" --scores-out "$T/nab" --json-out "$T/nab.json"
expect eval_nab_corpus 'nab_tiny: 2 files in 1 categories, 1,200 rows, 2 windows'
expect eval_nab_profile 'reward_low_FN_rate \(tp 1, fp 0.11, fn 2\): threshold '
expect eval_nab_summary '^all +(-?[0-9]+\.[0-9]{2}) +(-?[0-9]+\.[0-9]{2}) +(-?[0-9]+\.[0-9]{2})$'
grep -E '^all +-?[0-9.]+ +-?[0-9.]+ +-?[0-9.]+$' "$OUT" > "$T/nab_summary"
head -1 "$T/nab/synthetic/series_spike.csv" | grep -qx 'timestamp,value,anomaly_score,label' &&
  [ "$(wc -l < "$T/nab/synthetic/series_spike.csv")" -eq 601 ] && echo "ok   eval_nab_results_csv" || { echo "FAIL eval nab results csv"; fail=1; }
grep -q '^Totals,' "$T/nab/series_standard_scores.csv" && echo "ok   eval_nab_scores_csv" || { echo "FAIL eval nab scores csv"; fail=1; }
grep -q '"profile": "reward_low_FP_rate"' "$T/nab.json" && echo "ok   eval_nab_json" || { echo "FAIL eval nab json"; fail=1; }
# Scoring the written results again gives the same scores.
check eval_nab_rescore 0 "$CAIRN" eval nab --corpus "$NAB" --scores "$T/nab"
grep -E '^all +-?[0-9.]+ +-?[0-9.]+ +-?[0-9.]+$' "$OUT" | cmp -s - "$T/nab_summary" && echo "ok   eval_nab_rescore_same" || { echo "FAIL eval nab rescore differs"; fail=1; }
# NAB's baseline scores 0; a detector firing on the first row of each window scores 100.
check eval_nab_null 0 "$CAIRN" eval nab --corpus "$NAB" --detector null
expect eval_nab_null_zero '^all +0\.00 +0\.00 +0\.00$'
mkdir -p "$T/perfect/synthetic"
for f in spike:'2015-03-02 08:30:00' level_shift:'2015-03-02 12:40:00'; do
  awk -F, -v s="${f#*:}" 'NR == 1 { print "timestamp,anomaly_score"; next } { print $1 "," ($1 == s ? 1 : 0) }' \
    "$NAB/data/synthetic/${f%%:*}.csv" > "$T/perfect/synthetic/oracle_${f%%:*}.csv"
done
check eval_nab_perfect 0 "$CAIRN" eval nab --corpus "$NAB" --scores "$T/perfect"
expect eval_nab_perfect_100 '^all +100\.00 +100\.00 +100\.00$'
check eval_nab_fixed_threshold 0 "$CAIRN" eval nab --corpus "$NAB" --scores "$T/perfect" --threshold 1.1 --profile standard
expect eval_nab_fixed_threshold_zero '^all +0\.00$'
# Errors: a missing corpus, a malformed data line (file and line named), bad usage.
check eval_nab_missing 1 "$CAIRN" eval nab --corpus "$T/none"
expect eval_nab_missing_reason 'no corpus directory'
cp -r "$NAB" "$T/bad_corpus" && chmod -R u+w "$T/bad_corpus"
sed -i '5s/,.*/,oops/' "$T/bad_corpus/data/synthetic/level_shift.csv"
check eval_nab_bad_line 1 "$CAIRN" eval nab --corpus "$T/bad_corpus"
expect eval_nab_bad_line_reason "level_shift.csv:5: value 'oops' is not a finite number"
check eval_nab_missing_results 1 "$CAIRN" eval nab --corpus "$NAB" --scores "$T/none"
check eval_nab_bad_profile 2 "$CAIRN" eval nab --corpus "$NAB" --profile fancy
check eval_nab_scores_and_detector 2 "$CAIRN" eval nab --corpus "$NAB" --scores "$T/nab" --detector null

# --- cairn bench edges and cairn detect, small ---
check bench_edges_small 0 "$CAIRN" bench edges --edges 100000 --rate 2000 --repeats 1 --write "$T/edges.csv" \
  --json-out "$T/edges.json"
expect bench_edges_table '^cairn edges +[01]\.[0-9]{4} '
expect bench_edges_reference '^MIDAS-F \(reference\) '
grep -q '"roc_auc"' "$T/edges.json" && echo "ok   bench_edges_json" || { echo "FAIL bench edges json"; fail=1; }
head -1 "$T/edges.csv" | grep -qx 'src,dst,time,label' && echo "ok   bench_edges_csv" || { echo "FAIL edges csv"; fail=1; }
check detect_edges 0 "$CAIRN" detect edges --input "$T/edges.csv" --header --src-col src --dst-col dst \
  --time-col time --time-format unix_ms --label-col label --output "$T/scores.txt"
expect detect_edges_auc 'ROC-AUC [01]\.[0-9]{4} over [0-9,]+ labelled lines'
[ "$(wc -l < "$T/scores.txt")" -eq "$(wc -l < "$T/edges.csv")" ] && echo "ok   detect_edges_one_line_each" \
  || { echo "FAIL detect edges: $(wc -l < "$T/scores.txt") output lines"; fail=1; }
grep -Evq '^(score|0|1|0\.[0-9]+)$' "$T/scores.txt" && { echo "FAIL detect edges: odd score lines"; fail=1; } \
  || echo "ok   detect_edges_scores"
# Blocks of records (the default) and one record at a time (--explain) give the same scores.
check detect_edges_explain 0 "$CAIRN" detect edges --input "$T/edges.csv" --header --time-format unix_ms --explain \
  --output "$T/explain.txt"
cut -d, -f1 "$T/explain.txt" | cmp -s - "$T/scores.txt" && echo "ok   detect_edges_explain_same_scores" \
  || { echo "FAIL detect edges: --explain scores differ"; fail=1; }
# Column indices, stdin, unix seconds; the same scores as by name from the file.
tail -n +2 "$T/edges.csv" | awk -F, '{ printf "%s,%d,%s,%s\n", $1, int($3 / 1000), $2, $4 }' > "$T/edges_s.csv"
check detect_edges_stdin 0 sh -c "'$CAIRN' detect edges --input - --src-col 0 --dst-col 2 --time-col 1 \
  --time-format unix < '$T/edges_s.csv' > '$T/scores_s.txt'"
[ "$(wc -l < "$T/scores_s.txt")" -eq "$(wc -l < "$T/edges_s.csv")" ] && echo "ok   detect_edges_stdin_lines" \
  || { echo "FAIL detect edges stdin lines"; fail=1; }
# Order and alignment: a bad line in the middle gets an empty line at its place (--on-error skip).
{ head -201 "$T/edges.csv"; echo "broken"; tail -n +202 "$T/edges.csv"; } > "$T/edges_bad.csv"
check detect_edges_bad_line 1 "$CAIRN" detect edges --input "$T/edges_bad.csv" --header --time-format unix_ms
expect detect_edges_bad_line_number 'edges_bad.csv:202: has 1 fields, needs at least 3'
check detect_edges_skip 0 "$CAIRN" detect edges --input "$T/edges_bad.csv" --header --time-format unix_ms \
  --on-error skip --output "$T/scores_bad.txt"
expect detect_edges_skip_count 'skipped 1 bad line'
[ "$(sed -n 202p "$T/scores_bad.txt")" = "" ] && [ "$(wc -l < "$T/scores_bad.txt")" -eq "$(wc -l < "$T/edges_bad.csv")" ] \
  && [ "$(sed -n 203p "$T/scores_bad.txt")" = "$(sed -n 202p "$T/scores.txt")" ] \
  && echo "ok   detect_edges_skip_alignment" || { echo "FAIL detect edges skip alignment"; fail=1; }
check detect_edges_no_header_name 2 "$CAIRN" detect edges --input "$T/edges.csv" --src-col src
expect detect_edges_no_header_reason 'needs a header line'
check detect_edges_missing 1 "$CAIRN" detect edges --input "$T/nope.csv"
expect detect_edges_missing_reason 'cannot open .*nope.csv'
# A NAB-layout series: steady, then one spike that gets a reason.
awk 'BEGIN { print "timestamp,value"; for (i = 0; i < 400; i++) {
  v = (i == 350) ? 500 : 70 + (i % 5) * 0.1; printf "2013-12-02 %02d:%02d:00,%s\n", int(i / 60) % 24, i % 60, v } }' \
  > "$T/series.csv"
check detect_series 0 "$CAIRN" detect series --input "$T/series.csv" --output "$T/series_out.csv"
head -1 "$T/series_out.csv" | grep -qx 'timestamp,value,score,reason' && echo "ok   detect_series_header" \
  || { echo "FAIL detect series header"; fail=1; }
[ "$(wc -l < "$T/series_out.csv")" -eq 401 ] && echo "ok   detect_series_rows" || { echo "FAIL detect series rows"; fail=1; }
sed -n 352p "$T/series_out.csv" | grep -Eq '^2013-12-02 05:50:00,500,(1|0\.999[0-9]*),.+' \
  && echo "ok   detect_series_spike_reason" || { echo "FAIL detect series spike: $(sed -n 352p "$T/series_out.csv")"; fail=1; }
printf 'timestamp,value\n2013-12-02 21:15:00,1\n2013-12-02 21:20:00,oops\n' > "$T/series_bad.csv"
check detect_series_bad 1 "$CAIRN" detect series --input "$T/series_bad.csv"
expect detect_series_bad_reason "series_bad.csv:3: column 1: value 'oops' is not a finite number"

# --- cairn vector build / search / bench, tiny ---
awk 'BEGIN { srand(7); print "id,a,b,c,d"; for (i = 0; i < 300; i++) {
  printf "%d", i * 10; for (j = 0; j < 4; j++) printf ",%.4f", (i % 5) + rand() * 0.1; printf "\n" } }' > "$T/vecs.csv"
check vector_build_csv 0 "$CAIRN" vector build --input "$T/vecs.csv" --out "$T/vecs.hnsw" --M 8 --efc 50 --threads 2
expect vector_build_summary 'built .*vecs.hnsw: 300 vectors, dimension 4, l2 metric'
# The exact row 120 (id 1200) is its own nearest neighbour at distance 0.
q="$(sed -n 122p "$T/vecs.csv" | cut -d, -f2-)"
check vector_search 0 "$CAIRN" vector search --index "$T/vecs.hnsw" --query "$q" --k 3 --ef 32
expect vector_search_self '^ +1 +1200 +0$'
[ "$(grep -Ec '^ +[0-9]+ +[0-9]+ +[-0-9.e]+$' "$OUT")" -eq 3 ] && echo "ok   vector_search_k" || { echo "FAIL vector search k"; fail=1; }
check vector_search_json 0 "$CAIRN" vector search --index "$T/vecs.hnsw" --query "$q" --k 2 --json
expect vector_search_json_id '"id": 1200'
printf '%s\n%s\n' "$q" "$(sed -n 3p "$T/vecs.csv" | cut -d, -f2-)" > "$T/queries.txt"
check vector_search_file 0 "$CAIRN" vector search --index "$T/vecs.hnsw" --query-file "$T/queries.txt" --k 1
expect vector_search_file_two '^query 2$'
check vector_search_wrong_dim 1 "$CAIRN" vector search --index "$T/vecs.hnsw" --query "1,2,3"
expect vector_search_wrong_dim_reason 'has 3 values; the index has dimension 4'
check vector_search_no_query 2 "$CAIRN" vector search --index "$T/vecs.hnsw"
check vector_search_missing 1 "$CAIRN" vector search --index "$T/none.hnsw" --query "1,2,3,4"
# JSON lines with text and attributes, cosine, SQ8.
awk 'BEGIN { for (i = 0; i < 200; i++) printf "{\"id\": %d, \"vector\": [%d, 1, %.2f], \"text\": \"doc %d\", \"attributes\": {\"kind\": \"k%d\"}}\n", i, i % 7 + 1, i / 100.0, i, i % 3 }' > "$T/docs.jsonl"
check vector_build_jsonl 0 "$CAIRN" vector build --input "$T/docs.jsonl" --out "$T/docs.hnsw" --metric cosine --sq8
expect vector_build_jsonl_summary '200 vectors, dimension 3, cosine metric, HNSW\+SQ8'
# A collection directory keeps text and attributes: filtered search.
check vector_build_collection 0 "$CAIRN" vector build --input "$T/docs.jsonl" --out "$T/docs" --metric cosine
expect vector_build_collection_summary "built collection 'docs' in .*: 200 vectors, dimension 3"
check vector_search_filter 0 "$CAIRN" vector search --index "$T/docs" --query "3,1,0.5" --k 5 \
  --filter '{"field": "kind", "eq": "k1"}' --json
[ "$(grep -c '"kind": "k1"' "$OUT")" -eq 5 ] && ! grep -q '"kind": "k[02]"' "$OUT" && echo "ok   vector_search_filter_only_k1" \
  || { echo "FAIL vector search filter"; sed 's/^/     /' "$OUT"; fail=1; }
check vector_search_collection_text 0 "$CAIRN" vector search --index "$T/docs" --query "3,1,0.5" --k 2
expect vector_search_collection_text_doc ' doc [0-9]+$'
check vector_search_bad_filter 2 "$CAIRN" vector search --index "$T/docs" --query "3,1,0.5" --filter '{"field": "kind"}'
check vector_search_filter_on_file 2 "$CAIRN" vector search --index "$T/docs.hnsw" --query "3,1,0.5" \
  --filter '{"field": "kind", "eq": "k1"}'
expect vector_search_filter_on_file_reason 'needs a collection directory'
# Malformed input: the exit code is not 0 and the message names the file and line.
{ head -50 "$T/vecs.csv"; echo "777,1.0,oops,2,3"; tail -n +51 "$T/vecs.csv"; } > "$T/bad.csv"
check vector_build_bad_line 1 "$CAIRN" vector build --input "$T/bad.csv" --out "$T/bad.hnsw"
expect vector_build_bad_line_reason "bad.csv:51: column 3: 'oops' is not a finite number"
{ head -3 "$T/docs.jsonl"; echo '{"id": 9, "vector": [1, 2'; } > "$T/bad.jsonl"
check vector_build_bad_json 1 "$CAIRN" vector build --input "$T/bad.jsonl" --out "$T/bad.hnsw"
expect vector_build_bad_json_reason 'bad.jsonl:4: invalid JSON'
printf '1,1,2\n2,1,2,3\n' > "$T/ragged.csv"
check vector_build_ragged 1 "$CAIRN" vector build --input "$T/ragged.csv" --out "$T/bad.hnsw"
expect vector_build_ragged_reason 'ragged.csv:2: has 3 values, expected 2'
check vector_build_missing 1 "$CAIRN" vector build --input "$T/none.csv" --out "$T/bad.hnsw"
check vector_build_bad_metric 2 "$CAIRN" vector build --input "$T/vecs.csv" --out "$T/x.hnsw" --metric hamming
# The benchmark end to end on 2,000 vectors: every index, table and JSON.
check vector_bench_small 0 "$CAIRN" vector bench --n 2000 --dim 16 --queries 50 --ef 16,64 --efc 40 --clusters 50 \
  --cache-dir "$T/gt" --json-out "$T/vb.json" --quiet
expect vector_bench_table '^cairn +[0-9]'
expect vector_bench_sweep '^cairn-sq8 +ef=64 +[01]\.[0-9]{4} '
expect vector_bench_filtered '^filtered search, selectivity 1\.00%'
grep -q '"qps_ratio_cairn_vs_hnswlib_at_target"\|"indexes"' "$T/vb.json" && echo "ok   vector_bench_json" || { echo "FAIL vector bench json"; fail=1; }
check vector_bench_cached 0 "$CAIRN" bench vector --n 2000 --dim 16 --queries 50 --ef 16 --efc 40 --clusters 50 \
  --cache-dir "$T/gt" --only cairn --json
expect vector_bench_cached_gt '"ground_truth_cached": true'
check vector_bench_fvecs_missing 1 "$CAIRN" vector bench --base "$T/none.fvecs" --query "$T/none.fvecs" --only cairn
expect vector_bench_fvecs_missing_reason 'cannot open .*none.fvecs'

# --- cairn model synth / inspect, tiny ---
check model_synth_tiny 0 "$CAIRN" model synth --arch llama --preset tiny --type q4_0 --seed 3 -o "$T/tiny.gguf"
expect model_synth_summary 'wrote .*tiny.gguf: llama q4_0 \(1\.4 M parameters'
check model_inspect 0 "$CAIRN" model inspect "$T/tiny.gguf"
expect model_inspect_arch '^architecture +llama'
expect model_inspect_params '^parameters +1\.4 M \(1,443,072\)'
expect model_inspect_ctx '^context +256 tokens'
expect model_inspect_types '^tensor types +f32: 5 .*q4_0: 16 '
expect model_inspect_tokenizer '^tokenizer +llama \(default\), 512 tokens \(bos 1, eos 2'
expect model_inspect_memory '^memory +.* KV cache 256\.0 KiB \(256 tokens, f16\)'
expect model_inspect_runs '^runs in cairn +yes'
check model_inspect_json 0 "$CAIRN" model inspect "$T/tiny.gguf" --json --tensors
expect model_inspect_json_arch '"architecture": "llama"'
expect model_inspect_json_params '"parameters": 1443072'
expect model_inspect_json_tensor '"name": "blk.1.ffn_down.weight"'
check model_synth_bert 0 "$CAIRN" model synth --arch bert --preset tiny --type q4_k_m --n-layer 1 -o "$T/bert.gguf"
check model_inspect_bert 0 "$CAIRN" model inspect "$T/bert.gguf" --keys
expect model_inspect_bert_encoder '^encoder +LayerNorm eps 1e-12, pooling cls, 2 token types'
expect model_inspect_bert_types 'q4_K: [0-9]+ .*q6_K: [0-9]+ '
expect model_inspect_bert_key 'bert.attention.causal +bool +false'
check model_synth_qwen_overrides 0 "$CAIRN" model synth --arch qwen2 --preset tiny --type q8_0 --n-embd 128 \
  --n-head 2 --n-head-kv 1 --tied true -o "$T/qwen.gguf"
check model_inspect_qwen 0 "$CAIRN" model inspect "$T/qwen.gguf"
expect model_inspect_qwen_shape '^shape +embd 128, layers 2, heads 2 \(kv 1, size 64\)'
expect model_inspect_qwen_rope '^rope +neox'
expect model_inspect_qwen_norm 'tied embeddings, QKV bias'
check model_synth_bad_type 2 "$CAIRN" model synth --preset tiny --type q5_k -o "$T/x.gguf"
expect model_synth_bad_type_reason "unknown weight type 'q5_k'"
check model_synth_bad_preset 2 "$CAIRN" model synth --preset huge -o "$T/x.gguf"
check model_synth_bad_heads 2 "$CAIRN" model synth --preset tiny --n-head 3 -o "$T/x.gguf"
# A corrupt file: a clear error and a non-zero exit.
head -c 5000 "$T/tiny.gguf" > "$T/cut.gguf"
check model_inspect_truncated 1 "$CAIRN" model inspect "$T/cut.gguf"
expect model_inspect_truncated_reason "gguf: .*cut.gguf: .*(runs past the end|file ends)"
printf 'not a model at all' > "$T/junk.gguf"
check model_inspect_junk 1 "$CAIRN" model inspect "$T/junk.gguf"
expect model_inspect_junk_reason 'not a GGUF file'
check model_inspect_missing 1 "$CAIRN" model inspect "$T/none.gguf"
expect model_inspect_missing_reason 'cannot open .*none.gguf'

# --- cairn tokenize: llama.cpp's vocabulary fixtures (cairn/infer/testdata/tokenizers) ---
VOCABS="$ROOT/cairn/infer/testdata/tokenizers"
SPM="$VOCABS/ggml-vocab-llama-spm.gguf"
GPT2="$VOCABS/ggml-vocab-gpt-2.gguf"
check tokenize_spm 0 "$CAIRN" tokenize -m "$SPM" -p "Hello world"
expect tokenize_spm_ids '^1 15043 3186$'
check tokenize_spm_no_bos 0 "$CAIRN" tokenize -m "$SPM" -p "Hello world" --no-bos
expect tokenize_spm_no_bos_ids '^15043 3186$'
check tokenize_gpt2_stdin 0 sh -c "printf 'Hello world' | '$CAIRN' tokenize -m '$GPT2'"
expect tokenize_gpt2_ids '^15496 995$'
check tokenize_bert 0 "$CAIRN" tokenize -m "$VOCABS/ggml-vocab-bert-bge.gguf" -p "Hello world"
expect tokenize_bert_ids '^101 7592 2088 102$'
check tokenize_parse_special 0 "$CAIRN" tokenize -m "$GPT2" -p "Hello<|endoftext|>" --parse-special
expect tokenize_parse_special_ids '^15496 50256$'
check tokenize_lines 0 sh -c "printf 'Hello\nworld\n' | '$CAIRN' tokenize -m '$SPM' --lines --no-special"
[ "$(tr '\n' '|' <"$OUT")" = "15043|3186|" ] && echo "ok   tokenize_lines_ids" || { echo "FAIL tokenize lines"; sed 's/^/     /' "$OUT"; fail=1; }
check tokenize_pieces 0 "$CAIRN" tokenize -m "$SPM" -p "Hello
world" --pieces
expect tokenize_pieces_text "^15043	 Hello$"
expect tokenize_pieces_newline '^13	\\n$'
# Round trip through a pipe: text -> ids -> the same bytes.
printf 'H\xc3\xa9llo  w\xc3\xb6rld \xf0\x9f\x98\x80\n\ttabs, "quotes" & 123\n' > "$T/tok_in.txt"
for v in "$SPM" "$GPT2"; do
  "$CAIRN" tokenize -m "$v" <"$T/tok_in.txt" | "$CAIRN" tokenize -m "$v" --decode >"$T/tok_out.txt"
  cmp -s "$T/tok_in.txt" "$T/tok_out.txt" && echo "ok   tokenize_round_trip_$(basename "$v" .gguf)" \
    || { echo "FAIL tokenize round trip with $v"; od -c "$T/tok_out.txt" | head; fail=1; }
done
check tokenize_decode_special 0 "$CAIRN" tokenize -m "$SPM" --decode -p "1 15043 2" --render-special
expect tokenize_decode_special_text '^<s>Hello</s>$'
check tokenize_decode_bad_id 1 "$CAIRN" tokenize -m "$SPM" --decode -p "1 2 abc"
expect tokenize_decode_bad_id_reason "'abc' at byte 4 is not a token id"
check tokenize_decode_out_of_range 1 "$CAIRN" tokenize -m "$SPM" --decode -p "32000"
expect tokenize_decode_out_of_range_reason 'token id 32000 is outside the vocabulary \(ids 0..31999\)'
check tokenize_missing_model 1 "$CAIRN" tokenize -m "$T/none.gguf" -p x
expect tokenize_missing_model_reason '^cairn tokenize: .*none.gguf'
check tokenize_not_gguf 1 "$CAIRN" tokenize -m "$T/tok_in.txt" -p x
check tokenize_no_model 2 "$CAIRN" tokenize -p x

# --- cairn generate / chat / embed: tiny synthesized models (llama with llama.cpp's llama-spm vocabulary) ---
check llm_synth 0 "$CAIRN" model synth --arch llama --preset tiny --type q8_0 --seed 7 --vocab-from "$SPM" -o "$T/lm.gguf"
gen() { "$CAIRN" generate -m "$T/lm.gguf" -p "Once upon a time" --n-predict 16 "$@"; }
gen --temp 0 --threads 1 >"$T/g1.txt" 2>"$T/g1.err"; rc1=$?
gen --temp 0 --threads 1 >"$T/g2.txt" 2>/dev/null
gen --temp 0 --threads 2 >"$T/g3.txt" 2>/dev/null
if [ $rc1 -eq 0 ] && [ "$(wc -c <"$T/g1.txt")" -gt 1 ] && cmp -s "$T/g1.txt" "$T/g2.txt" && cmp -s "$T/g1.txt" "$T/g3.txt"; then
  echo "ok   generate_greedy_repeats"
else
  echo "FAIL generate --temp 0 is not repeatable (exit $rc1)"; sed 's/^/     /' "$T/g1.err"; od -c "$T/g1.txt" | head -3; od -c "$T/g3.txt" | head -3; fail=1
fi
cp "$T/g1.err" "$OUT"
expect generate_timings '^cairn generate: prompt [0-9]+ tokens \(0 cached\) .* \| decode 15 tokens .* \| finish (length|stop) \| seed [0-9]+ \| threads 1$'
gen --seed 5 --temp 1 >"$T/s1.txt" 2>/dev/null
gen --seed 5 --temp 1 --threads 2 >"$T/s2.txt" 2>/dev/null
gen --seed 6 --temp 1 >"$T/s3.txt" 2>/dev/null
cmp -s "$T/s1.txt" "$T/s2.txt" && ! cmp -s "$T/s1.txt" "$T/s3.txt" && echo "ok   generate_seed_repeats" \
  || { echo "FAIL generate --seed: same seed differs or another seed does not"; fail=1; }
check generate_stdin 0 sh -c "printf 'Once upon a time' | '$CAIRN' generate -m '$T/lm.gguf' --temp 0 -n 16 -t 1"
head -c "$(wc -c <"$T/g1.txt")" "$OUT" | cmp -s - "$T/g1.txt" && echo "ok   generate_stdin_same_text" \
  || { echo "FAIL generate from stdin differs from -p"; fail=1; }
check generate_missing_model 1 "$CAIRN" generate -m "$T/none.gguf" -p x
expect generate_missing_model_reason '^cairn generate: .*none.gguf'
check generate_encoder 1 "$CAIRN" generate -m "$T/bert.gguf" -p x
expect generate_encoder_reason 'bert model has no language-model head'
check generate_bad_penalty 1 "$CAIRN" generate -m "$T/lm.gguf" -p x --repeat-penalty 0
expect generate_bad_penalty_reason 'repeat_penalty'
check generate_no_model 2 "$CAIRN" generate -p x
# --json / --json-schema: constrained decoding; whitespace is squeezed out before matching.
# (A free-form object need not close within -n tokens: only its start is checked.)
"$CAIRN" generate -m "$T/lm.gguf" -p "Once upon a time" --json --seed 3 --temp 1 -n 40 -t 1 >"$T/j1.txt" 2>/dev/null; rc=$?
tr -d ' \n\t\r' <"$T/j1.txt" | grep -Eq '^\{' && [ $rc -eq 0 ] && echo "ok   generate_json_object" \
  || { echo "FAIL generate --json (exit $rc)"; od -c "$T/j1.txt" | head -5; fail=1; }
printf '{"type":"object","properties":{"n":{"type":"integer"},"ok":{"type":"boolean"}},"required":["n","ok"],"additionalProperties":false}' >"$T/schema.json"
"$CAIRN" generate -m "$T/lm.gguf" -p "Once upon a time" --json-schema "$T/schema.json" --seed 4 --temp 1 -n 200 -t 1 \
  >"$T/j2.txt" 2>/dev/null; rc=$?
tr -d ' \n\t\r' <"$T/j2.txt" | grep -Eq '^\{"n":-?[0-9]+,"ok":(true|false)\}$' && [ $rc -eq 0 ] && echo "ok   generate_json_schema" \
  || { echo "FAIL generate --json-schema (exit $rc)"; od -c "$T/j2.txt" | head -5; fail=1; }
printf '{"type":"string","pattern":"^a"}' >"$T/bad_schema.json"
check generate_json_schema_unsupported 1 "$CAIRN" generate -m "$T/lm.gguf" -p x --json-schema "$T/bad_schema.json"
expect generate_json_schema_unsupported_reason "^cairn generate: json schema: keyword 'pattern' is not supported"
check generate_json_schema_missing 1 "$CAIRN" generate -m "$T/lm.gguf" -p x --json-schema "$T/none.json"
expect generate_json_schema_missing_reason 'none.json'

# chat: two turns from a pipe; the second reuses the first turn's KV cache.
check chat_two_turns 0 sh -c "printf 'Hello there\nWhat next?\n' | '$CAIRN' chat -m '$T/lm.gguf' --template chatml \
  --system 'Be brief.' --temp 0 -n 8 -t 1 --timings 2>'$T/chat.err'"
[ -s "$OUT" ] && echo "ok   chat_replies" || { echo "FAIL chat printed no replies"; fail=1; }
cp "$T/chat.err" "$OUT"
expect chat_turn_one '^cairn chat: turn 1: prompt [0-9]+ tokens \(0 cached\)'
expect chat_turn_two_reuses '^cairn chat: turn 2: prompt [0-9]+ tokens \([1-9][0-9]* cached\)'
check chat_no_template 1 sh -c "printf 'Hi\n' | '$CAIRN' chat -m '$T/lm.gguf'"
expect chat_no_template_reason 'has no chat template .*chatml, llama2.* with --template NAME'
check chat_unknown_template 1 sh -c "printf 'Hi\n' | '$CAIRN' chat -m '$T/lm.gguf' --template vicuna"
expect chat_unknown_template_reason "unknown chat template 'vicuna' \(known: chatml"
check chat_missing_model 1 "$CAIRN" chat -m "$T/none.gguf" --template chatml

# ask: retrieval from the collection `cairn serve --config` filled above; the tiny model's
# answer is noise, the sources are not.
if [ -d "$T/cfg/node/collections/kb" ]; then
  ask() { "$CAIRN" ask --data-dir "$T/cfg/node" -m "$T/lm.gguf" --template chatml --temp 0 -n 4 -t 1 "$@"; }
  check ask_sources 0 ask -c kb -k 2 "What pressure does the pump run at?"
  expect ask_sources_header '^Sources:$'
  expect ask_first_source '^\[1\] The pump P-7 runs at a pressure of 4 bar\. \(id 1, score [0-9.]+\)$'
  [ "$(grep -cE '^\[[0-9]+\] ' "$OUT")" -le 2 ] && echo "ok   ask_k" || { echo "FAIL ask -k 2 listed more sources"; fail=1; }
  check ask_json 0 ask -c kb -k 3 --json "How often is the compressor serviced?"
  expect ask_json_citation '"citations":\[\{"attributes":\{"kind":"compressor"\},"id":"3","index":1,'
  expect ask_json_usage '"usage":\{"completion_tokens":[0-9]+,"prompt_tokens":[0-9]+\}'
  check ask_filter 0 ask -c kb --filter '{"field":"kind","eq":"valve"}' "What pressure does the pump run at?"
  expect ask_filter_only_valve '^\[1\] Valve V-2 .*\(id 2,'
  ! grep -q '(id 1,' "$OUT" && echo "ok   ask_filter_excludes" || { echo "FAIL ask --filter let other kinds through"; fail=1; }
  check ask_unknown_collection 1 ask -c nope "anything"
  expect ask_unknown_collection_reason "^cairn ask: 'cairn.rag.collection': there is no collection named 'nope'"
  check ask_bad_filter 2 ask -c kb --filter 'kind=valve' "x"
  expect ask_bad_filter_reason 'not valid JSON'
  check ask_bad_filter_field 2 ask -c kb --filter '{"field":"kind"}' "x"
  expect ask_bad_filter_field_reason 'cairn.rag.filter'
  check ask_bad_k 2 ask -c kb -k 0 "x"
  expect ask_bad_k_reason 'cairn.rag.k'
  check ask_no_data 1 "$CAIRN" ask --data-dir "$T/none" -c kb -m "$T/lm.gguf" "x"
  check ask_missing_model 1 "$CAIRN" ask --data-dir "$T/cfg/node" -c kb -m "$T/none.gguf" --template chatml "pump"
  check ask_no_question 2 "$CAIRN" ask -c kb -m "$T/lm.gguf"
fi

# embed: normalized vectors of the model's dimension.
check embed_one 0 "$CAIRN" embed -m "$T/bert.gguf" -p "pump seven is overheating" -t 1
awk '{ s = 0; for (i = 1; i <= NF; i++) s += $i * $i; if (NF != 256 || s < 0.999 || s > 1.001) bad = 1 }
     END { exit (NR == 1 && !bad) ? 0 : 1 }' "$OUT" && echo "ok   embed_normalized" \
  || { echo "FAIL embed: not one normalized 256-value vector"; head -c 300 "$OUT"; fail=1; }
cp "$OUT" "$T/e1.txt"
check embed_stdin 0 sh -c "printf 'pump seven is overheating\nvalve closed\n' | '$CAIRN' embed -m '$T/bert.gguf' -t 1"
[ "$(wc -l <"$OUT")" -eq 2 ] && [ "$(head -1 "$OUT")" = "$(cat "$T/e1.txt")" ] && echo "ok   embed_stdin_lines" \
  || { echo "FAIL embed from stdin"; fail=1; }
check embed_json 0 "$CAIRN" embed -m "$T/bert.gguf" -p a -p b --json --pooling mean
expect embed_json_fields '"dim":256,"embeddings":\[\[.*\],\[.*\]\],"model":"model:.*","pooling":"mean"'
check embed_empty_line 1 sh -c "printf 'a\n\nb\n' | '$CAIRN' embed -m '$T/bert.gguf'"
expect embed_empty_line_reason '^cairn embed: line 2: text is empty'
check embed_bad_pooling 2 "$CAIRN" embed -m "$T/bert.gguf" -p a --pooling max
check embed_missing_model 1 "$CAIRN" embed -m "$T/none.gguf" -p a

# --- cairn bench infer: tiny synthesized models, a few tokens, small bandwidth buffer ---
check bench_infer_table 0 "$CAIRN" bench infer -m "$T/lm.gguf" --threads 1,2 --pp 16 --tg 4 --repeats 1 --bw-mib 8
expect bench_infer_header '^ *threads +pp t/s +tg t/s +read GB/s +bound t/s +tg/bound$'
expect bench_infer_two_rows '^ +2 +[0-9.]+ +[0-9.]+ +[0-9.]+ +'
expect bench_infer_rss '^peak resident memory: .*, .* before loading the model \(limit: file .* \+ KV cache .* \+ 10% = .*\): (within|OVER)$'
# The bandwidth buffer (256 MiB here) is measured between the rows but never counted in
# the peak: for this tiny model the peak stays far less than that above what the process
# held before loading it (under the sanitizers that is itself ~280 MB).
check bench_infer_bw_json 0 "$CAIRN" bench infer -m "$T/lm.gguf" --threads 1,2 --pp 8 --tg 2 --repeats 1 --bw-mib 256 --json
expect bench_infer_bw_when '"bandwidth_measured": "after (each thread count|all runs)"'
awk '/"peak_rss_bytes"/ { gsub(/[,]/, ""); peak = $2 + 0 }
     /"rss_before_model_bytes"/ { gsub(/[,]/, ""); base = $2 + 0 }
     END { exit (peak > 0 && base > 0 && peak - base < 128 * 1048576) ? 0 : 1 }' "$OUT" \
  && echo "ok   bench_infer_peak_without_buffer" \
  || { echo "FAIL bench infer: the peak includes the bandwidth buffer"; sed 's/^/     /' "$OUT"; fail=1; }
check bench_infer_json 0 "$CAIRN" bench infer -m "$T/lm.gguf" --threads 1 --pp 8 --tg 2 --repeats 2 --no-bandwidth --json
expect bench_infer_json_fields '"tg_samples": \['
awk '/"pp_tokens_per_s"|"tg_tokens_per_s"/ { gsub(/[,]/, ""); if ($2 + 0 <= 0) bad = 1; n++ }
     END { exit (n == 2 && !bad) ? 0 : 1 }' "$OUT" && echo "ok   bench_infer_json_rates" \
  || { echo "FAIL bench infer --json: rates missing or not positive"; sed 's/^/     /' "$OUT"; fail=1; }
check bench_infer_encoder 0 "$CAIRN" bench infer -m "$T/bert.gguf" --threads 1 --pp 16 --tg 4 --repeats 1 --no-bandwidth
expect bench_infer_encoder_no_decode '^ +1 +[0-9.]+ +0\.00 '
check bench_infer_missing_model 1 "$CAIRN" bench infer -m "$T/none.gguf"
expect bench_infer_missing_model_reason '^cairn bench infer: .*none.gguf'
check bench_infer_bad_threads 2 "$CAIRN" bench infer -m "$T/lm.gguf" --threads 0
check bench_infer_too_long 1 "$CAIRN" bench infer -m "$T/lm.gguf" --pp 100000 --tg 1 --no-bandwidth
expect bench_infer_too_long_reason 'tokens do not fit the model.s context'

# --- cairn serve --model: the OpenAI-compatible API on the tiny model, driven with curl ---
if command -v curl >/dev/null 2>&1; then
  "$CAIRN" serve --listen 127.0.0.1:0 --data-dir "$T/llmnode" --model "$T/lm.gguf" --model-name lm --slots 2 \
    --threads 1 --template chatml >"$T/llm.out" 2>"$T/llm.err" &
  LLM_PID=$!
  LLM_URL=""
  for _ in $(seq 1 100); do
    LLM_URL=$(grep -oE '^cairn serve: listening on http://127\.0\.0\.1:[0-9]+$' "$T/llm.out" | grep -oE 'http://.*')
    [ -n "$LLM_URL" ] && break
    sleep 0.1
  done
  [ -n "$LLM_URL" ] && echo "ok   serve_model_start" || { echo "FAIL serve --model did not start"; cat "$T/llm.err"; fail=1; }
  llm() { curl -sS -N -H 'Content-Type: application/json' --data-binary "$2" -w '\nHTTP %{http_code}\n' "$LLM_URL$1"; }
  check serve_chat 0 llm /v1/chat/completions '{"model":"lm","messages":[{"role":"user","content":"Hi"}],"max_tokens":4,"temperature":0}'
  expect serve_chat_object '"object":"chat.completion"'
  expect serve_chat_200 'HTTP 200'
  check serve_chat_stream 0 llm /v1/chat/completions '{"model":"lm","stream":true,"messages":[{"role":"user","content":"Hi"}],"max_tokens":4}'
  expect serve_chat_stream_role '^data: \{.*"delta":\{"content":"","role":"assistant"\}'
  expect serve_chat_stream_done '^data: \[DONE\]$'
  check serve_chat_unknown_model 0 llm /v1/chat/completions '{"model":"nope","messages":[{"role":"user","content":"Hi"}]}'
  expect serve_chat_unknown_model_404 'HTTP 404'
  check serve_models 0 curl -sS "$LLM_URL/v1/models"
  expect serve_models_id '"id":"lm"'
  kill -TERM "$LLM_PID"; wait "$LLM_PID"; rc=$?
  [ "$rc" -eq 0 ] && echo "ok   serve_model_stop" || { echo "FAIL serve --model stop: exit $rc"; cat "$T/llm.err"; fail=1; }
fi

# --- cairn bench serve: usage errors, no server, and a smoke run against a `cairn serve` it starts ---
check bench_serve_no_target 2 "$CAIRN" bench serve
expect bench_serve_no_target_reason 'exactly one of --url .* and --model'
check bench_serve_both_targets 2 "$CAIRN" bench serve --url http://127.0.0.1:1 -m "$T/lm.gguf"
check bench_serve_bad_clients 2 "$CAIRN" bench serve --url http://127.0.0.1:1 --clients 0
check bench_serve_bad_url 1 "$CAIRN" bench serve --url ftp://x --model-name m
expect bench_serve_bad_url_reason "'ftp://x' is not an http://HOST:PORT URL"
check bench_serve_no_server 1 "$CAIRN" bench serve --url http://127.0.0.1:1 --timeout 5
expect bench_serve_no_server_reason '^cairn bench serve: GET http://127.0.0.1:1/v1/models: no response'
check bench_serve_missing_model 1 "$CAIRN" bench serve -m "$T/none.gguf"
if "$CAIRN" serve --help 2>/dev/null | grep -q -- '--model'; then
  check bench_serve_smoke 0 "$CAIRN" bench serve -m "$T/lm.gguf" --clients 1,2 --requests 2 --max-tokens 4 \
    --prompt-tokens 16 --ctx 128 --seed 3 --template chatml
  expect bench_serve_header '^ *clients +requests +errors +gen tok +gen tok/s +steady/s +TTFT p50 +TTFT p99 +ITL p50 +ITL p99 +cli CPU +srv CPU$'
  expect bench_serve_two_rows '^ +2 +4 +0 +[0-9]+ +[0-9.]+ +[0-9.]+ +[0-9.]+ ms .* [0-9.]+ s +[0-9.]+ s$'
  expect bench_serve_steps '^server steps at 2 clients \(count x mean\): decode [0-9]+ x [0-9.]+ ms, mixed [0-9]+ x [0-9.]+ ms, prefill [0-9]+ x [0-9.]+ ms$'
  expect bench_serve_ratios '^steady decode throughput at 2 clients vs 1: [0-9.]+x \(target >= 4x: (met|missed)\); over the whole run: [0-9.]+x$'
  expect bench_serve_rss '^server peak resident memory: .* with 2 slots .*: (within|OVER); exit 0$'
  check bench_serve_json 0 "$CAIRN" bench serve -m "$T/lm.gguf" --clients 2 --requests 1 --max-tokens 3 \
    --prompt-tokens 8 --slots 1 --ctx 128 --warmup 0 --template chatml --json
  expect bench_serve_json_fields '"errors_by_status": \{\}'
  expect bench_serve_json_slots '"slots": 1$'
  expect bench_serve_json_cpu '"client_cpu_seconds": [0-9]'
  expect bench_serve_json_steps '"server_steps": \{'
else
  echo "skip bench_serve_smoke: this cairn serve has no --model"
fi

# --- cairn memory / cairn eval locomo ---
M="$T/mem"
check memory_add 0 "$CAIRN" memory add --dir "$M" --ns ops --time 2026-01-05 "Alice works at Acme. Alice lives in Berlin."
expect memory_add_facts '"facts":\[1,2\]'
check memory_add_contradiction 0 "$CAIRN" memory add --dir "$M" --ns ops --time 2026-03-01 "Alice lives in Munich now."
expect memory_closes_old_fact '"closed_facts":\[2\]'
check memory_recall 0 "$CAIRN" memory recall --dir "$M" --ns ops --k 2 "Where does Alice live?"
expect memory_recall_json '^\{.*"score"'
check memory_facts_now 0 "$CAIRN" memory facts --dir "$M" --ns ops
expect memory_current_city '"object":"Munich"'
if grep -q '"object":"Berlin"' "$OUT"; then echo "FAIL memory_facts_now lists the superseded fact"; fail=1; else echo "ok   memory_superseded_hidden"; fi
check memory_facts_as_of 0 "$CAIRN" memory facts --dir "$M" --ns ops --as-of 2026-02-01
expect memory_as_of_city '"object":"Berlin"'
check memory_unknown_ns 1 "$CAIRN" memory facts --dir "$M" --ns nope
expect memory_unknown_ns_reason "namespace 'nope' does not exist"
check memory_consolidate 0 "$CAIRN" memory consolidate --dir "$M" --ns ops
expect memory_consolidate_counts '"archived":[0-9]+'
cat >"$T/locomo.json" <<'JSON'
[{"sample_id": "t-1",
  "conversation": {"speaker_a": "Nora", "speaker_b": "Theo",
   "session_1_date_time": "9:00 am on 3 March, 2024",
   "session_1": [
     {"speaker": "Nora", "dia_id": "D1:1", "text": "I adopted a puppy named Biscuit last weekend."},
     {"speaker": "Theo", "dia_id": "D1:2", "text": "I started pottery classes at the community center."}]},
  "qa": [
   {"question": "What is the name of the puppy Nora adopted?", "answer": "Biscuit", "evidence": ["D1:1"], "category": 4},
   {"question": "Where are Theo's pottery classes?", "answer": "community center", "evidence": ["D:1:2"], "category": 4},
   {"question": "Unscorable", "answer": "x", "evidence": [], "category": 2}]}]
JSON
check eval_locomo 0 "$CAIRN" eval locomo --data "$T/locomo.json"
expect eval_locomo_single_hop '^4 single-hop +2 +0 +1\.000 +1\.000 +1\.000'
check eval_locomo_missing 1 "$CAIRN" eval locomo --data "$T/nope.json"
check bench_memory_small 0 "$CAIRN" bench memory --episodes 2000 --queries 50 --json-out "$T/memory.json"
expect bench_memory_remember '^remember +2000 episodes in .* episodes/s'
expect bench_memory_recall '^recall +at +2000 episodes, 50 queries, k=10: p50 '
grep -q '"benchmark": "memory"' "$T/memory.json" && echo "ok   bench_memory_json" || { echo "FAIL bench memory json"; fail=1; }
check bench_memory_sqlite_defaults 0 "$CAIRN" bench memory --episodes 300 --queries 5 --cache-mib 0 --checkpoint-mib 0
expect bench_memory_sqlite_defaults_line 'write cache 0 MiB, checkpoint at 0 MiB'
check bench_memory_dir_not_empty 2 "$CAIRN" bench memory --episodes 10 --queries 1 --dir "$M"
# A kept store measured again without ingesting: the same queries (same seed), one checkpoint.
check bench_memory_keep_dir 0 "$CAIRN" bench memory --episodes 400 --queries 5 --dir "$T/membench"
check bench_memory_recall_only 0 "$CAIRN" bench memory --recall-only --dir "$T/membench" --queries 7 --json-out "$T/recall_only.json"
expect bench_memory_recall_only_line '^recall +at +400 episodes, 7 queries, k=10: p50 '
expect bench_memory_recall_only_no_remember '^remember +not run \(--recall-only\): the store in .* holds 400 episodes'
grep -q '"recall_only": true' "$T/recall_only.json" && echo "ok   bench_memory_recall_only_json" || { echo "FAIL bench memory recall-only json"; fail=1; }
check bench_memory_recall_only_needs_dir 2 "$CAIRN" bench memory --recall-only --queries 1
check bench_memory_recall_only_empty_dir 2 "$CAIRN" bench memory --recall-only --queries 1 --dir "$T/no-store-here"

exit $fail
