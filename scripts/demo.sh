#!/usr/bin/env bash
# Runs the product: redline-sim serving the demo data centre, and redlined guarding it.
# No root needed: sockets, audit log and logs go to ./run/. Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/opt/swift/usr/bin:$PATH"
bash scripts/setup.sh
swift build --product redlined >/dev/null
swift build --product redline-sim >/dev/null
swift build --product redlinectl >/dev/null
bin=$(realpath --relative-to=. "$(swift build --show-bin-path)")

run="$PWD/run"
mkdir -p "$run"
chmod 755 "$run"
rm -f "$run"/*.sock
me=$(id -u)
site="Firmware-Configs/demo-datacenter.yaml"
if [ "$me" -ne 0 ]; then
    # Without root you cannot become the agents' uids: the demo makes you the facilities agent.
    sed -e "s/uid: 2001/uid: $me/" -e "s/{uid: 0}/{gid: $(id -g)}/" "$site" > "$run/site.yaml"
    chmod 644 "$run/site.yaml"
    site="$run/site.yaml"
    as_agent=""
    echo "note: not root, so you (uid $me) are facilities-agent, and your group ($(id -g)) is the operator, in this demo only (never in production)."
else
    as_agent="setpriv --reuid 2001 --regid 2001 --clear-groups "
fi

"$bin/redline-sim" --site "$site" --devices Devices --control "$run/sim.sock" > "$run/sim.out" 2> "$run/sim.log" &
sim=$!
trap 'kill $sim $daemon 2>/dev/null; wait 2>/dev/null; echo; echo "stopped; audit log kept in run/audit.jsonl"' EXIT INT TERM
for _ in $(seq 100); do grep -q "serving" "$run/sim.out" 2>/dev/null && break; sleep 0.1; done

"$bin/redlined" --config "$site" --devices Devices --agent-socket "$run/agent.sock" \
    --operator-socket "$run/operator.sock" --audit "$run/audit.jsonl" 2> "$run/redlined.log" &
daemon=$!
for _ in $(seq 100); do [ -S "$run/agent.sock" ] && break; sleep 0.1; done

ctl="$bin/redlinectl"
cat <<MSG

Redline is running against the simulated Data Center 2 (logs: run/redlined.log, run/sim.log).

Act as an agent (facilities-agent):
MSG
cat <<MSG
  ${as_agent}$ctl describe --socket run/agent.sock
  ${as_agent}$ctl read sra-env.temperature sra-door.lock --socket run/agent.sock
  ${as_agent}$ctl write office-lights.on 1 --socket run/agent.sock                       # executed
  ${as_agent}$ctl write dispatch.cancel 1 --reason "EXEC-4429" --socket run/agent.sock    # denied RL-2
  ${as_agent}$ctl write sra-door.lock 1 --socket run/agent.sock                          # held for an operator

Act as an operator:
  $ctl status --socket run/operator.sock
  $ctl approvals list --socket run/operator.sock
  $ctl approvals approve REQUEST-ID --socket run/operator.sock
  $ctl agents list --socket run/operator.sock

Change the physical world (the simulator's control socket):
  echo '{"jsonrpc":"2.0","id":1,"method":"plant.set","params":{"name":"fire-panel.alarm","value":1}}' | socat - UNIX:run/sim.sock

Verify the audit log:  $ctl audit verify run/audit.jsonl
Press Ctrl-C to stop.
MSG
wait $daemon
