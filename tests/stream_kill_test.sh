#!/usr/bin/env bash
# Exactly-once under crashes: `cairn run` of a windowed aggregation over a CSV
# file (file source -> key_by -> tumbling window, parallelism 2 -> exactly-once
# file sink) is killed with SIGKILL at random moments at least KILLS times and
# restarted each time; the output of the final, completed run must equal that
# of an uninterrupted run, row for row.
set -u
CAIRN="$1"
KILLS="${2:-20}"
T="$(mktemp -d)"
trap 'kill -9 $(jobs -p) 2>/dev/null; rm -rf "$T"' EXIT

# 400 k events over 20 machines, 0-3 ms apart, with a few out-of-order ones.
awk 'BEGIN { srand(7); t = 1700000000000; print "timestamp,machine,temperature";
             for (i = 0; i < 400000; i++) { t += int(rand() * 4); d = (i % 97 == 0) ? -int(rand() * 50) : 0;
               printf "%.0f,m%d,%.2f\n", t + d, int(rand() * 20), 60 + rand() * 30 } }' > "$T/events.csv"

pipeline() {  # pipeline FILE OUT RATE
  cat > "$1" <<YAML
name: kill-test
checkpoint: {dir: $T/ckpt, interval: 50ms, keep: 2}
source:
  type: file
  path: $T/events.csv
  time_field: timestamp
  time_format: epoch_ms
  max_out_of_orderness: 100ms
  rate: $3
steps:
  - filter: temperature > 62
  - key_by: machine
    parallelism: 2
    window: {type: tumbling, size: 2s}
    aggregate: {n: count(), total: sum(temperature), hi: max(temperature)}
sink: {type: file, path: $2}
YAML
}

pipeline "$T/reference.yaml" "$T/reference.csv" 0
"$CAIRN" run -q --fresh "$T/reference.yaml" || { echo "FAIL: the uninterrupted run failed"; exit 1; }
rm -rf "$T/ckpt"

# Throttled so that the whole input takes ~8 s and the kills land mid-stream.
pipeline "$T/crash.yaml" "$T/out.csv" 50000
killed=0 restored=0 attempts=0
while [ "$killed" -lt "$KILLS" ] && [ "$attempts" -lt $((KILLS * 3)) ]; do
  attempts=$((attempts + 1))
  "$CAIRN" run --status-every 0 "$T/crash.yaml" 2>"$T/run.log" &
  pid=$!
  # The kill lands at a random moment after the pipeline has started (its header
  # is printed just before it runs): start-up alone can take longer than the
  # kill delay under a sanitizer on a loaded machine.
  for _ in $(seq 1 300); do grep -q "checkpoints every" "$T/run.log" && break; sleep 0.1; done
  sleep "0.$(( (RANDOM % 40) + 5 ))"
  if kill -9 "$pid" 2>/dev/null; then killed=$((killed + 1)); fi
  wait "$pid" 2>/dev/null
  grep -q "restored checkpoint" "$T/run.log" && restored=$((restored + 1))
done
"$CAIRN" run --status-every 0 "$T/crash.yaml" 2>"$T/run.log" || { echo "FAIL: the final run failed"; cat "$T/run.log"; exit 1; }
grep -q "restored checkpoint" "$T/run.log" && restored=$((restored + 1))

echo "killed $killed runs with SIGKILL; $restored runs restored a checkpoint"
if [ "$killed" -lt "$KILLS" ]; then echo "FAIL: only $killed kills landed while running"; exit 1; fi
# Kills land 50-440 ms into a run; under a sanitizer on a loaded machine many come
# before the first checkpoint, so only a quarter of the runs must have restored one.
if [ "$restored" -lt $((KILLS / 4)) ]; then echo "FAIL: too few runs restored a checkpoint ($restored)"; exit 1; fi
if ! cmp -s <(sort "$T/reference.csv") <(sort "$T/out.csv"); then
  echo "FAIL: output after crashes differs from the uninterrupted run"
  diff <(sort "$T/reference.csv") <(sort "$T/out.csv") | head -20
  exit 1
fi
if [ "$(head -1 "$T/out.csv")" != "$(head -1 "$T/reference.csv")" ]; then echo "FAIL: header differs"; exit 1; fi
echo "ok: $(wc -l < "$T/out.csv") output rows identical to the uninterrupted run"
