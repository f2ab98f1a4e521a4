#!/usr/bin/env bash
# API extraction at scale: requests and wall time of night 1 and night 2, against the fixture
# API server answering with 20 ms of latency. Uses only bash, python3 (JSON and gzip) and the
# opslake binary, built in release.
#
#   bench/api.sh                 2,000 and 20,000 orders
#   bench/api.sh 500 2000        the sizes given
#
# Night 1 (2025-06-30) is a universe of N orders (`opslake samples generate --orders N --seed 7
# --no-superseded`): a full pull, its raw captures kept at raw_output. Night 2 (2025-07-01) is
# the same universe with 5% more orders (the same seed: the first N orders are the same), an
# incremental night on night 1's captures. Each size runs twice:
#   open       the universe as generated: every appointment is open (accepted, created,
#              scheduled), so every appointment and its search is asked again on night 2;
#   completed  every appointment `completed` (a back office whose installations are done):
#              only new ids and the work orders without an appointment are asked again.
# Figures: per-id calls, HTTP requests answered, the extract stage's seconds and the run's wall
# seconds. Data and lakes are kept under bench/data/api (OPSLAKE_BENCH_DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet --bin opslake
bin=$PWD/target/release/opslake
work=${OPSLAKE_BENCH_DIR:-$PWD/bench/data/api}
sizes=("$@")
if [ ${#sizes[@]} -eq 0 ]; then sizes=(2000 20000); fi
export OPSLAKE_API_KEY=bench-key OPSLAKE_PII_KEY=bench-pii-key OPSLAKE_LOG_FORMAT=json
server_pid=

stop_server() {
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=
  fi
}
trap stop_server EXIT

# Serves $1 at 20 ms latency; exports the three base URLs.
serve() {
  stop_server
  local fifo
  fifo=$(mktemp -u)
  mkfifo "$fifo"
  "$bin" fixtures serve --data "$1" --port 0 --api-key "$OPSLAKE_API_KEY" --latency-ms 20 >"$fifo" 2>/dev/null &
  server_pid=$!
  local line
  read -r line <"$fifo"
  rm -f "$fifo"
  local url=${line#listening on }
  export OPSLAKE_APPOINTMENTS_URL=$url OPSLAKE_CUSTOMER_CARE_URL=$url OPSLAKE_LOGISTICS_URL=$url
}

# Sets every appointment of the universe in $1 to `completed`.
complete_appointments() {
  python3 - "$1" <<'PY'
import gzip, json, os, sys
root = os.path.join(sys.argv[1], "appointments")
for d, _, files in os.walk(root):
    for f in files:
        p = os.path.join(d, f)
        opener = gzip.open if f.endswith(".gz") else open
        with opener(p, "rt", encoding="utf-8") as fh:
            text = fh.read()
        if f.endswith(".json"):
            v = json.loads(text); v["status"] = "completed"; out = json.dumps(v)
        else:
            lines = []
            for line in text.splitlines():
                if line.strip():
                    v = json.loads(line); v["status"] = "completed"; lines.append(json.dumps(v))
            out = "\n".join(lines) + "\n"
        with opener(p, "wt", encoding="utf-8") as fh:
            fh.write(out)
PY
}

# Generates the universe of $1 orders into $2 (once).
universe() {
  if [ ! -d "$2" ]; then
    "$bin" samples generate --orders "$1" --seed 7 --no-superseded --out "$2" >/dev/null
    if [ "$3" = completed ]; then complete_appointments "$2"; fi
  fi
}

# Runs one night; prints "per-id-calls requests extract-seconds wall-seconds refresh".
night() {
  local day=$1 lake=$2 raw=$3 start end
  start=$(date +%s.%N)
  "$bin" run --job bench/api.toml --as-of "$day" --output "$lake" --raw-output "$raw" >/dev/null 2>"$lake.$day.log" \
    || { tail -5 "$lake.$day.log"; exit 1; }
  end=$(date +%s.%N)
  python3 - "$lake" "$day" "$start" "$end" <<'PY'
import glob, json, sys
lake, day, start, end = sys.argv[1:]
m = max((json.load(open(p)) for p in glob.glob(f"{lake}/_runs/run_date={day}/*.json")), key=lambda m: m["commit"])
e = m["extract"]
calls = sum(s.get("called", 0) for s in e["sources"])
requests = sum(a["requests"] for a in e["apis"].values())
extract = next(s["seconds"] for s in m["stages"] if s["name"] == "extract")
print(calls, requests, f"{extract:.1f}", f"{float(end) - float(start):.1f}", e["refresh"])
PY
}

printf '| orders | appointments | night | refresh | per-id calls | requests | extract s | wall s |\n'
printf '|---:|---|---:|---|---:|---:|---:|---:|\n'
for n in "${sizes[@]}"; do
  n2=$((n + n / 20))
  for variant in open completed; do
    dir=$work/$n-$variant
    universe "$n" "$dir/day1" "$variant"
    universe "$n2" "$dir/day2" "$variant"
    rm -rf "$dir/lake" "$dir/raw"
    serve "$dir/day1"
    read -r calls requests extract wall refresh < <(night 2025-06-30 "$dir/lake" "$dir/raw")
    printf '| %s | %s | 1 | %s | %s | %s | %s | %s |\n' "$n" "$variant" "$refresh" "$calls" "$requests" "$extract" "$wall"
    serve "$dir/day2"
    read -r calls requests extract wall refresh < <(night 2025-07-01 "$dir/lake" "$dir/raw")
    printf '| %s (+5%%) | %s | 2 | %s | %s | %s | %s | %s |\n' "$n2" "$variant" "$refresh" "$calls" "$requests" "$extract" "$wall"
  done
done
