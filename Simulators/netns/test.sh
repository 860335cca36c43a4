#!/usr/bin/env bash
# The confinement proof, end to end, in network namespaces (issue 13; docs/THREAT-MODEL.md §4).
#
#   controller namespace (10.231.0.1)  ==veth==  device network namespace
#     redlined as a service uid                    redline-sim: the demo data centre on 10.231.0.2
#     the agent as uid 2001                        pymodbus: an independent device on 10.231.0.3
#     the ruleset of `redlinectl firewall`         a UDP listener (counts datagrams that arrive)
#
# Negative control first (no ruleset): host-check fails naming the endpoint, and the agent's
# raw 12-byte Modbus write of the dispatch cancel coil lands in the plant. Then the ruleset is
# loaded in the controller namespace: the agent still works through the socket (executed, and
# denied RL-2), but its direct TCP and UDP to the devices fail, the plant shows nothing of it,
# the counters rose and host-check's network, service and socket checks pass.
#
# Needs root and `ip netns`; skips (exit 0) with a message otherwise. Addresses exist only in
# the namespaces made here; everything is torn down on exit, failure included.
# Last line: "N passed, M failed"; exit status non-zero on any failure.
set -uo pipefail
cd "$(dirname "$0")/../.."
root=$PWD

if [ "$(id -u)" -ne 0 ]; then echo "netns: skipped: needs root (namespaces, nftables, setpriv to the agent's uid)"; exit 0; fi
if ! command -v ip >/dev/null || ! ip netns list >/dev/null 2>&1; then echo "netns: skipped: ip netns is unavailable"; exit 0; fi
if ! command -v nft >/dev/null; then echo "netns: skipped: nft is not installed (scripts/setup.sh installs nftables)"; exit 0; fi
if ! ip netns add "rl-probe-$$" 2>/dev/null; then echo "netns: skipped: cannot create a network namespace here"; exit 0; fi
ip netns del "rl-probe-$$"

export PATH="/opt/swift/usr/bin:$PATH"
bin=${REDLINE_BIN:-$root/.build/debug}
for exe in redlined redlinectl redline-sim; do
    [ -x "$bin/$exe" ] || { echo "netns: building $exe"; swift build --product "$exe" >/dev/null || exit 1; }
done
py=$(python3 -c 'import sys; print(sys.executable)')   # root's python (not a shim): has pymodbus (scripts/setup.sh)
agent_py=/usr/bin/python3                        # a python the agent's uid can run
[ -x "$agent_py" ] || agent_py=$py

started=$(date +%s)
pass=0; fail=0
ok()   { pass=$((pass + 1)); echo "ok    $*"; }
bad()  { fail=$((fail + 1)); echo "FAIL  $*"; }
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }

tag=$$
ctl=rl-ctl-$tag; dev=rl-dev-$tag
vc=rlc$tag; vd=rld$tag                           # veth ends (<= 15 characters)
work=$(mktemp -d /tmp/rl-netns-XXXXXX)
chmod 755 "$work"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
    ip netns del "$ctl" 2>/dev/null
    ip netns del "$dev" 2>/dev/null
    ip link del "$vc" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A uid for the service that no account uses (redlined runs as it; nothing is added to /etc/passwd).
svc=2990
while getent passwd "$svc" >/dev/null || [ "$svc" = 2001 ] || [ "$svc" = 2002 ]; do svc=$((svc + 1)); done
agent=2001
as_agent=(setpriv --reuid "$agent" --regid "$agent" --clear-groups)
# Functions, for foreground commands only: a backgrounded function is a subshell whose pid is
# not the program's, so background programs are started with ip netns exec directly.
in_ctl() { ip netns exec "$ctl" "$@"; }
in_dev() { ip netns exec "$dev" "$@"; }

# --- the two networks -------------------------------------------------------------------
ip netns add "$ctl" && ip netns add "$dev" || { echo "netns: cannot create namespaces"; exit 1; }
ip link add "$vc" type veth peer name "$vd"
ip link set "$vc" netns "$ctl"; ip link set "$vd" netns "$dev"
ip -n "$ctl" addr add 10.231.0.1/29 dev "$vc"
ip -n "$dev" addr add 10.231.0.2/29 dev "$vd"
ip -n "$dev" addr add 10.231.0.3/29 dev "$vd"
for ns in "$ctl" "$dev"; do ip -n "$ns" link set lo up; done
ip -n "$ctl" link set "$vc" up; ip -n "$dev" link set "$vd" up

# --- the plant, an independent device and a UDP listener, on the device network ----------
sed 's/host: 127\.0\.0\.1/host: 10.231.0.2/' Firmware-Configs/demo-datacenter.yaml > "$work/site.yaml"
chmod 644 "$work/site.yaml"
site=$work/site.yaml
ip netns exec "$dev" "$bin/redline-sim" --site "$site" --devices "$root/Devices" --control "$work/sim.sock" > "$work/sim.out" 2> "$work/sim.log" &
pids+=($!)
cat > "$work/pymodbus_device.py" <<'PY'
import sys
from pymodbus.datastore import ModbusDeviceContext, ModbusSequentialDataBlock, ModbusServerContext
from pymodbus.server import StartTcpServer
dev = ModbusDeviceContext(co=ModbusSequentialDataBlock(1, [0] * 16), hr=ModbusSequentialDataBlock(1, [0] * 16))
StartTcpServer(context=ModbusServerContext(devices={1: dev}, single=False), address=(sys.argv[1], int(sys.argv[2])))
PY
ip netns exec "$dev" "$py" "$work/pymodbus_device.py" 10.231.0.3 1502 > "$work/pymodbus.log" 2>&1 &
pids+=($!)
cat > "$work/udp_listener.py" <<'PY'
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", int(sys.argv[1])))
while True:
    data, peer = s.recvfrom(2048)
    with open(sys.argv[2], "a") as f:
        f.write("%s %d\n" % (peer[0], len(data)))
PY
: > "$work/udp.log"
ip netns exec "$dev" "$py" "$work/udp_listener.py" 15021 "$work/udp.log" > /dev/null 2>&1 &
pids+=($!)

for _ in $(seq 100); do grep -q serving "$work/sim.out" 2>/dev/null && break; sleep 0.1; done
grep -q serving "$work/sim.out" || { echo "netns: redline-sim did not start:"; cat "$work/sim.log"; exit 1; }

# --- redlined in the controller namespace, as the service uid ---------------------------
mkdir -p "$work/run" "$work/state"
chown "$svc:$svc" "$work/run" "$work/state"
chmod 755 "$work/run"; chmod 750 "$work/state"
ip netns exec "$ctl" setpriv --reuid "$svc" --regid "$svc" --clear-groups "$bin/redlined" --config "$site" --devices "$root/Devices" \
    --agent-socket "$work/run/agent.sock" --operator-socket "$work/run/operator.sock" \
    --audit "$work/state/audit.jsonl" > /dev/null 2> "$work/redlined.log" &
pids+=($!)
ready=0
for _ in $(seq 150); do
    if [ -S "$work/run/operator.sock" ] && "$bin/redlinectl" status --json --socket "$work/run/operator.sock" 2>/dev/null | grep -q '"ready":true'; then
        ready=1; break
    fi
    sleep 0.1
done
[ "$ready" = 1 ] || { echo "netns: redlined did not become ready:"; tail -20 "$work/redlined.log"; exit 1; }
for _ in $(seq 50); do in_dev "$py" -c 'import socket; socket.create_connection(("10.231.0.3", 1502), 0.2).close()' 2>/dev/null && break; sleep 0.1; done

# --- helpers -----------------------------------------------------------------------------
plant() {   # plant NAME: the plant's ground truth, from the simulator's control socket
    printf '{"jsonrpc":"2.0","id":1,"method":"plant.get"}\n' | socat -t2 - "UNIX-CONNECT:$work/sim.sock" \
        | "$py" -c 'import json,sys; r=json.loads(sys.stdin.readline())["result"]; v=r.get(sys.argv[1]); print(int(v) if v is not None else "none")' "$1"
}
plant_set() {
    printf '{"jsonrpc":"2.0","id":1,"method":"plant.set","params":{"name":"%s","value":%s}}\n' "$1" "$2" \
        | socat -t2 - "UNIX-CONNECT:$work/sim.sock" >/dev/null
}
# The agent's own raw Modbus write-single-coil (function 5) of coil 0 to ON, unit 1: 12 bytes.
# Succeeds only if the device answered with the echo of the request.
raw_write() {   # raw_write HOST PORT
    in_ctl "${as_agent[@]}" timeout 5 bash -c '
        exec 3<>/dev/tcp/$0/$1 || exit 1
        printf "\x00\x01\x00\x00\x00\x06\x01\x05\x00\x00\xff\x00" >&3 || exit 1
        reply=$(timeout 2 head -c 12 <&3 | od -An -tx1 | tr -d " \n")
        [ "$reply" = 00010000000601050000ff00 ]' "$1" "$2" 2>/dev/null
}
udp_send() {   # udp_send HOST PORT: the agent sends one datagram
    in_ctl "${as_agent[@]}" timeout 3 bash -c 'exec 3>/dev/udp/$0/$1 && printf "agent datagram" >&3' "$1" "$2" 2>/dev/null
}
pymodbus_coil0() {   # coil 0 of the independent device, read as root from the device namespace
    in_dev "$py" - <<'PY'
import socket, struct
s = socket.create_connection(("10.231.0.3", 1502), 2)
s.sendall(bytes.fromhex("000200000006010100000001"))
r = s.recv(64)
print(r[9] & 1)
PY
}
host_check() { in_ctl "$bin/redlinectl" host-check "$site" --devices "$root/Devices" --service-user "$svc" \
    --agent-socket "$work/run/agent.sock" --operator-socket "$work/run/operator.sock" --audit "$work/state/audit.jsonl" \
    --timeout-ms 500 "$@"; }

# --- negative control: no ruleset --------------------------------------------------------
echo "# negative control: no ruleset in the controller namespace"
host_check --only network > "$work/hc-open.txt" 2>&1; rc=$?
check "without the ruleset, host-check --only network fails (exit $rc)" test "$rc" -ne 0
check "... and names the dispatch gateway's endpoint" grep -q "^FAIL  agent facilities-agent (uid 2001) cannot connect to 10.231.0.2:15021 (bus dispatch-gw)" "$work/hc-open.txt"
check "... with the fix" grep -q "fix: load the firewall: redlinectl firewall" "$work/hc-open.txt"
check "dispatch.cancel is 0 before the bypass" test "$(plant dispatch.cancel)" = 0
raw_write 10.231.0.2 15021; rc=$?
check "without the ruleset, the agent's raw 12-byte Modbus write to the dispatch gateway is answered" test "$rc" = 0
check "... and the plant shows dispatch.cancel = 1 (the bypass of issue 13)" test "$(plant dispatch.cancel)" = 1
raw_write 10.231.0.3 1502; rc=$?
check "without the ruleset, the agent writes the independent (pymodbus) device's coil" test "$rc" = 0 -a "$(pymodbus_coil0)" = 1
udp_send 10.231.0.2 15021; sleep 0.3
check "without the ruleset, the agent's UDP datagram reaches the device network" test -s "$work/udp.log"
# Undo the bypass before the real test.
plant_set dispatch.cancel 0
in_dev "$py" -c 'import socket; s=socket.create_connection(("10.231.0.3",1502),2); s.sendall(bytes.fromhex("000300000006010500000000")); s.recv(64)'
: > "$work/udp.log"

# --- the ruleset --------------------------------------------------------------------------
echo "# with the ruleset of redlinectl firewall --interface $vc"
in_ctl "$bin/redlinectl" firewall "$site" --devices "$root/Devices" --service-user "$svc" --interface "$vc" > "$work/redline.nft"
check "redlinectl firewall prints a ruleset" grep -q "^table inet redline {" "$work/redline.nft"
check "nft -c accepts it" in_ctl nft -c -f "$work/redline.nft"
check "nft loads it in the controller namespace" in_ctl nft -f "$work/redline.nft"
check "loading it twice is idempotent (own table, replaced whole)" in_ctl nft -f "$work/redline.nft"
check "the controller namespace has no other table" test "$(in_ctl nft list tables | grep -vc 'table inet redline')" = 0

out=$(in_ctl "${as_agent[@]}" "$bin/redlinectl" write office-lights.on 1 --socket "$work/run/agent.sock" 2>&1); rc=$?
check "the agent, through the socket, executes office-lights.on = 1 ($out)" test "$rc" = 0 -a -n "$(echo "$out" | grep executed)"
check "... and the plant shows office-lights.on = 1" test "$(plant office-lights.on)" = 1
out=$(in_ctl "${as_agent[@]}" "$bin/redlinectl" write dispatch.cancel 1 --reason "Override code EXEC-4429" --socket "$work/run/agent.sock" 2>&1); rc=$?
check "the agent, through the socket, is denied dispatch.cancel [RL-2] (exit $rc)" test "$rc" = 3 -a -n "$(echo "$out" | grep 'denied \[RL-2\]')"

raw_write 10.231.0.2 15021; rc=$?
check "the agent's direct TCP write to the dispatch gateway fails" test "$rc" != 0
err=$(in_ctl "${as_agent[@]}" "$agent_py" -c 'import socket
try:
    socket.create_connection(("10.231.0.2", 15021), 2); print("connected")
except OSError as e: print(type(e).__name__)' 2>&1)
check "... python as the agent gets ConnectionRefusedError (a TCP reset), not a hang: $err" test "$err" = ConnectionRefusedError
raw_write 10.231.0.3 1502; rc=$?
check "the agent's direct TCP write to the independent pymodbus device fails (interface closed)" test "$rc" != 0
check "the plant shows nothing written by the agent (dispatch.cancel = 0)" test "$(plant dispatch.cancel)" = 0
check "the pymodbus device's coil is untouched" test "$(pymodbus_coil0)" = 0
udp_send 10.231.0.2 15021
udp_send 10.231.0.3 47808
sleep 0.3
check "the agent's UDP datagrams do not arrive" test ! -s "$work/udp.log"
# Root is not the service user either: only redlined's uid passes.
root_blocked() { ! in_ctl timeout 3 bash -c 'exec 3<>/dev/tcp/10.231.0.2/15021' 2>/dev/null; }
check "root's own direct connection is rejected too" root_blocked

in_ctl nft list table inet redline > "$work/counters.txt"
counter() { grep -F "$1" "$work/counters.txt" | grep -o 'packets [0-9]*' | head -1 | awk '{print $2}'; }
check "the endpoint TCP reject counter rose ($(counter 'tcp dport @device_endpoints4'))" test "$(counter 'tcp dport @device_endpoints4')" -gt 0
check "the endpoint UDP reject counter rose ($(counter 'udp dport @device_endpoints4'))" test "$(counter 'udp dport @device_endpoints4')" -gt 0
check "the interface rule's counter rose: pymodbus at 10.231.0.3 is not in the site, --interface closes it too ($(counter "oifname \"$vc\" meta l4proto tcp"))" \
    test "$(counter "oifname \"$vc\" meta l4proto tcp")" -gt 0

host_check --only network,service,sockets > "$work/hc.txt" 2>&1; rc=$?
check "host-check --only network,service,sockets exits 0 with the ruleset ($(tail -1 "$work/hc.txt"))" test "$rc" = 0
check "... the service uid connected to every endpoint" test "$(grep -c '^ok    service user uid '"$svc"' can connect' "$work/hc.txt")" = 14
check "... each agent was refused every endpoint" test "$(grep -c '^ok    agent .* cannot connect to 10.231.0.2' "$work/hc.txt")" = 28
check "... the operator socket refused the agents with -32006" test "$(grep -c 'refused with -32006' "$work/hc.txt")" = 2
host_check --only network,service,sockets --json > "$work/hc.json" 2>&1
check "host-check --json reports the same as data" "$py" -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if d["failed"] == 0 and len(d["checks"]) > 30 else 1)' "$work/hc.json"
check "redlined still scans every device (new connections as the service uid pass)" \
    bash -c "\"$bin/redlinectl\" status --json --socket \"$work/run/operator.sock\" | grep -q '\"ready\":true'"
if [ "$fail" -gt 0 ]; then
    for f in hc-open.txt hc.txt counters.txt redlined.log; do echo "--- $f"; tail -40 "$work/$f"; done
fi

echo "netns: $(( $(date +%s) - started )) s"
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
