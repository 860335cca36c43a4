#!/usr/bin/env bash
# Measures the metrics textfile on the demo site (issue 16, item 5): how long each write takes
# (the daemon's own status, the render, write and rename, as `status.metricsTextfile.lastWriteS`
# reports it) and how big the file is, plus the wall time of `redlinectl metrics`.
#
#   Benchmarks/metrics-textfile.sh [SAMPLES] [CONFIGURATION]     # defaults: 40 debug
#   PRINT=1 Benchmarks/metrics-textfile.sh 5                     # and print the last textfile
#
# Starts its own redline-sim and redlined (ports 25020-25033, a temp folder), drives an executed,
# a denied and a held write as the facilities agent (needs root for setpriv), samples, and stops
# both by PID. Figures from a debug build are an upper bound; pass `release` for shipped ones.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/opt/swift/usr/bin:$PATH"
n=${1:-40}
conf=${2:-debug}
for p in redlined redline-sim redlinectl; do swift build -c "$conf" --product "$p" >/dev/null; done
bin=$(swift build -c "$conf" --show-bin-path)
work=$(mktemp -d /tmp/rl-metrics-bench-XXXXXX)
chmod 755 "$work"
sed -e 's/port: 150\([0-9][0-9]\)/port: 250\1/' Firmware-Configs/demo-datacenter.yaml > "$work/site.yaml"
chmod 644 "$work/site.yaml"
"$bin/redline-sim" --site "$work/site.yaml" --devices Devices --control "$work/sim.sock" > "$work/sim.out" 2> "$work/sim.log" &
sim=$!
daemon=""
trap 'kill $sim $daemon 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 100); do grep -q "serving" "$work/sim.out" 2>/dev/null && break; sleep 0.1; done
"$bin/redlined" --config "$work/site.yaml" --devices Devices --agent-socket "$work/agent.sock" \
    --operator-socket "$work/operator.sock" --audit "$work/audit.jsonl" \
    --metrics-textfile "$work/redline.prom" --metrics-interval-ms 200 2> "$work/redlined.log" &
daemon=$!
ctl="$bin/redlinectl"
for _ in $(seq 200); do "$ctl" status --json --socket "$work/operator.sock" 2>/dev/null | grep -q '"ready":true' && break; sleep 0.1; done
agent="setpriv --reuid 2001 --regid 2001 --clear-groups $ctl"
$agent write office-lights.on 1 --socket "$work/agent.sock" >/dev/null || true
$agent write dispatch.cancel 1 --socket "$work/agent.sock" >/dev/null || true
$agent write sra-door.lock 1 --socket "$work/agent.sock" >/dev/null || true
sleep 1
for _ in $(seq "$n"); do
    "$ctl" status --json --socket "$work/operator.sock" | python3 -c 'import json,sys; m=json.load(sys.stdin)["metricsTextfile"]; print(m["lastWriteS"], m["bytes"])'
    sleep 0.25
done > "$work/writes.txt"
for _ in $(seq "$n"); do
    s=$(date +%s%N); "$ctl" metrics --socket "$work/operator.sock" > "$work/ctl.prom"; e=$(date +%s%N)
    echo $(( (e - s) / 1000 ))
done > "$work/ctl.txt"
[ "${PRINT:-0}" = 1 ] && cat "$work/redline.prom"
python3 - "$work" "$conf" <<'PY'
import sys, statistics as st
work, conf = sys.argv[1], sys.argv[2]
w = [tuple(map(float, l.split())) for l in open(f"{work}/writes.txt")]
t = sorted(x[0] * 1e3 for x in w); b = sorted(x[1] for x in w)
c = sorted(float(l) / 1e3 for l in open(f"{work}/ctl.txt"))
q = lambda v, p: v[min(len(v) - 1, int(len(v) * p))]
lines = open(f"{work}/redline.prom").read().splitlines()
print(f"build: {conf}; samples: {len(w)}")
print(f"textfile write (status + render + write + rename): median {st.median(t):.3f} ms, p90 {q(t, .9):.3f} ms, max {t[-1]:.3f} ms")
print(f"textfile size: {int(b[0])}-{int(b[-1])} bytes, {sum(1 for l in lines if not l.startswith('#'))} samples in {sum(1 for l in lines if l.startswith('# TYPE'))} families")
print(f"redlinectl metrics (process start, status over the socket, render, print): median {st.median(c):.1f} ms, p90 {q(c, .9):.1f} ms")
PY
