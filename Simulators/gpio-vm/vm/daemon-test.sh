#!/bin/sh
# Stage 2 of the GPIO rig, inside the VM: redlined with Firmware-Configs/demo-datacenter-gpio.yaml
# (door lock line 0, door contact line 1, PIR line 2 of $CHIP), its Modbus devices served by
# redline-sim, driven through the real agent socket as the facilities agent (uid 2001) and the
# operator socket as root. Physical side through gpio-sim's sysfs (`value`, `pull`).

result() { echo "GPIOVM-RESULT $1 $2 $3"; }
val() { cat $SIM/sim_gpio$1/value; }
pull() { echo pull-$2 > $SIM/sim_gpio$1/pull; }
now_ms() { awk '{ printf "%d\n", $1 * 1000 }' /proc/uptime; }
# The demo GPIO site; run.sh may have written an emulation-timed copy (see run.sh, GPIOVM_TIMING).
SITE=/rig/Firmware-Configs/demo-datacenter-gpio.yaml
[ -f /rig/Firmware-Configs/demo-datacenter-gpio-vm.yaml ] && SITE=/rig/Firmware-Configs/demo-datacenter-gpio-vm.yaml
echo "GPIOVM-NOTE daemon site $SITE: $(grep -E '^timing:' $SITE)"
SIMSOCK=/run/sim.sock
AGENT_SOCK=/run/redline/agent.sock
OPERATOR_SOCK=/run/redline/operator.sock
# One JSON-RPC 2.0 request per line over a Unix socket, as uid $1 (rig-rpc switches uid
# before connect(), so the daemon's SO_PEERCRED sees that uid).
rpc() {  # $1 = uid, $2 = socket, $3 = method, $4 = params JSON
    /rig/bin/rig-rpc "$1" "$2" "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"$3\",\"params\":$4}" 2>>/tmp/rpc.err
}
# The facilities agent is uid 2001 in the site; operators are uid 0.
agent() { rpc 2001 $AGENT_SOCK "$@"; }
operator() { rpc 0 $OPERATOR_SOCK "$@"; }
simctl() { rpc 0 $SIMSOCK "$@"; }
field() { sed -n "s/.*\"$1\" *: *\"\{0,1\}\([^\",}]*\)\"\{0,1\}.*/\1/p" | head -1; }
read_point() { agent points.read "{\"ids\":[\"$1\"]}"; }
point_value() { read_point "$1" | field value; }
point_quality() { read_point "$1" | field quality; }
write_point() { agent points.write "{\"id\":\"$1\",\"value\":$2,\"reason\":\"gpio rig\"}"; }
# Wait up to $2 tenths of a second until command $1 succeeds.
until_ok() {
    n=0
    while [ $n -lt $2 ]; do eval "$1" && return 0; sleep 0.1; n=$((n + 1)); done
    return 1
}
# Agent asks to lock; the site's approval rule holds it; the operator approves; prints the final answer.
lock_with_approval() {
    a=$(write_point sra-door.lock 1)
    case "$a" in
        *'"held"'*) id=$(echo "$a" | field requestId); operator approvals.approve "{\"requestId\":\"$id\"}" ;;
        *) echo "$a" ;;
    esac
}

mkdir -p /run/redline /var/lib/redline
# The physical world before Redline: nobody in the room, door closed, and the lock line
# pulled up, i.e. "locked" unless something drives it.
pull 2 down; pull 1 down; pull 0 up

/rig/bin/redline-sim --site $SITE --control $SIMSOCK >/tmp/sim.out 2>&1 &
SIMPID=$!
until_ok "[ -S $SIMSOCK ]" 300 || { result sim-start FAIL "redline-sim did not start: $(tail -3 /tmp/sim.out | tr '\n' ' ')"; exit 0; }

# ---- safe value at start-up ----
t0=$(now_ms)
/rig/bin/redlined --config $SITE --log-level notice >/tmp/redlined.out 2>&1 &
DPID=$!
trail=""
held_at=""
while [ $(( $(now_ms) - t0 )) -lt 30000 ]; do
    c=$(gpioinfo $CHIP 2>/dev/null | grep -E '^[[:space:]]+line[[:space:]]+0:' | grep -c '"redline"')
    if [ "$c" = 1 ]; then held_at=$(( $(now_ms) - t0 )); first=$(val 0); break; fi
    kill -0 $DPID 2>/dev/null || break
    sleep 0.02
done
if [ -n "$held_at" ] && [ "$first" = 0 ]; then
    result daemon-safe-value-at-startup PASS "lock line pulled up (1) before redlined; held by \"redline\" $held_at ms after start, reading $first (released)"
else
    result daemon-safe-value-at-startup FAIL "held_at=${held_at:-never} value=${first:-?}: $(tail -5 /tmp/redlined.out | tr '\n' ' ')"
fi
until_ok "[ -S $AGENT_SOCK ] && [ \"\$(point_quality sra-occupancy.occupied)\" = good ] && [ \"\$(point_quality fire-panel.alarm)\" = good ]" 300 \
    || result daemon-ready FAIL "agent socket or first scan missing: $(tail -5 /tmp/redlined.out | tr '\n' ' ')"
# it must stay released from then on
s=""; for i in 1 2 3 4 5; do s="$s$(val 0)"; sleep 0.1; done
[ "$s" = 00000 ] && result daemon-safe-value-held PASS "lock line $s over 0.5 s after start" \
    || result daemon-safe-value-held FAIL "lock line $s over 0.5 s after start"

# ---- lock and unlock through the agent socket ----
a1=$(lock_with_approval); v1=$(val 0)
a0=$(write_point sra-door.lock 0); v0=$(val 0)
a2=$(lock_with_approval); v2=$(val 0)
a3=$(write_point sra-door.lock 0); v3=$(val 0)
if echo "$a1$a2" | grep -q executed && echo "$a0$a3" | grep -q executed && [ "$v1$v0$v2$v3" = 1010 ]; then st=PASS; else st=FAIL; fi
result agent-lock-unlock $st "lock(held, approved)->$(echo "$a1" | field outcome)/line $v1, unlock->$(echo "$a0" | field outcome)/line $v0, lock->$(echo "$a2" | field outcome)/line $v2, unlock->$(echo "$a3" | field outcome)/line $v3"

# ---- PIR input: read within one scan, then a lock is denied RL-3 ----
# "Within one scan": every reading the daemon took after the pull must show it. Under
# emulation one request can take a second, so the check uses the daemon's own ageMs: a
# reading is certainly from after the pull when (time the request was sent - ageMs) is
# later than the pull; such a reading showing 0 is a missed scan. Wall latency is reported.
pull 2 up
t1=$(now_ms); seen=""; missed=""; polls=0; trail=""
while [ $(( $(now_ms) - t1 )) -lt 5000 ]; do
    ts=$(now_ms)
    r=$(read_point sra-occupancy.occupied); polls=$((polls + 1))
    pv=$(echo "$r" | field value); pq=$(echo "$r" | field quality); age=$(echo "$r" | field ageMs)
    trail="$trail +$((ts - t1))ms:$pv/${pq}/age${age}"
    if [ "$pv" = 1 ] && [ "$pq" = good ]; then seen=$((ts - t1)); break; fi
    if [ "$pv" != 1 ] && [ -n "$age" ] && [ $((ts - age)) -gt $t1 ]; then missed=yes; fi
done
if [ -n "$seen" ] && [ -z "$missed" ]; then st=PASS; else st=FAIL; fi
result pir-read-within-one-scan $st "pull-up on line 2: occupied=1 (good) in the answer to the poll sent ${seen:-never} ms after the pull; no reading taken after the pull missed it (${missed:-ok}); polls:$trail"
d=$(write_point sra-door.lock 1); vd=$(val 0)
if [ "$(echo "$d" | field outcome)" = denied ] && [ "$(echo "$d" | field rule)" = RL-3 ] && [ "$vd" = 0 ]; then st=PASS; else st=FAIL; fi
result pir-occupied-lock-denied-rl3 $st "lock while occupied: $(echo "$d" | field outcome) $(echo "$d" | field rule); line stays $vd"
pull 2 down
until_ok "[ \"\$(point_value sra-occupancy.occupied)\" = 0 ]" 50

# ---- door contact ----
trail=""; ok=1
for b in up down up down; do
    exp=0; [ $b = up ] && exp=1
    pull 1 $b; tc=$(now_ms)
    until_ok "[ \"\$(point_value sra-door.contact)\" = $exp ]" 20 || ok=0
    trail="$trail pull-$b->$(point_value sra-door.contact) ($(( $(now_ms) - tc )) ms)"
done
[ $ok = 1 ] && st=PASS || st=FAIL
result door-contact-points-read $st "points.read sra-door.contact:$trail"

# ---- alarm in the simulator: lock released (E-1) ----
a=$(lock_with_approval); vl=$(val 0)
s=$(simctl plant.set '{"name":"fire-panel.alarm","value":1}')
t3=$(now_ms)
if until_ok "[ \"\$(val 0)\" = 0 ]" 50; then rel=$(( $(now_ms) - t3 )); else rel=never; fi
ve=$(val 0)
# re-asserted while the alarm holds: an agent lock is refused and the line stays released
d=$(write_point sra-door.lock 1); vd=$(val 0)
if [ "$vl" = 1 ] && [ "$ve" = 0 ] && [ "$vd" = 0 ] && [ "$(echo "$d" | field outcome)" = denied ]; then st=PASS; else st=FAIL; fi
result alarm-releases-lock-e1 $st "locked ($(echo "$a" | field outcome), line $vl); fire-panel.alarm=1 in the simulator ($s); line released after ${rel} ms; lock attempt in alarm: $(echo "$d" | field outcome) $(echo "$d" | field rule), line $vd"
simctl plant.set '{"name":"fire-panel.alarm","value":0}' >/dev/null
until_ok "[ \"\$(point_value fire-panel.alarm)\" = 0 ]" 50
# Two red-line denials so far (RL-3, and the lock in alarm): clear the count's effect if any.
operator agents.release '{"agent":"facilities-agent"}' >/dev/null
a=$(lock_with_approval)
until_ok "[ \"\$(val 0)\" = 1 ]" 30

# ---- daemon killed ----
pull 0 down
vk=$(val 0)
kill -9 $DPID; wait $DPID 2>/dev/null
sleep 0.3
va=$(val 0)
pull 0 up; sleep 0.1; vu=$(val 0)
if [ "$vk" = 1 ] && [ "$va" = 0 ] && [ "$vu" = 1 ]; then st=PASS; else st=FAIL; fi
result daemon-killed-line-state $st "locked line ($vk) after kill -9 of redlined: released by the kernel, it reads its bias: $va with a pull-down, $vu with a pull-up. A door is released on a daemon crash only if the wiring de-energises the lock when the line is not driven"
pull 0 down

# ---- GPIO chips by label (Pi kernels renumber chips between releases) ----
# /init gave the bank the label redline-rig-bank0. A site naming the chip by that label
# starts and drives the lock line; a site pinning gpiochip0 to another label, or naming a
# label no chip carries, is refused at start-up (exit 78, EX_CONFIG) with the reason.
variant() {  # $1 = file suffix, $2 = replacement of the gpio bus's chip mapping
    out=$(dirname $SITE)/label-$1.yaml
    sed "s|gpio: {chip: gpiochip0}|gpio: $2|" $SITE >$out
    echo $out
}
by_label=$(variant ok "{chip: redline-rig-bank0}")
/rig/bin/redlined --config $by_label --log-level notice >/tmp/redlined-label.out 2>&1 &
LPID=$!
if until_ok "gpioinfo $CHIP 2>/dev/null | grep -E '^[[:space:]]+line[[:space:]]+0:' | grep -q '\"redline\"'" 600; then
    result gpio-chip-by-label PASS "chip: redline-rig-bank0 resolved to $CHIP; lock line held by \"redline\", reading $(val 0)"
else
    result gpio-chip-by-label FAIL "line 0 never held: $(tail -5 /tmp/redlined-label.out | tr '\n' ' ')"
fi
kill $LPID 2>/dev/null; wait $LPID 2>/dev/null
refused() {  # $1 = name, $2 = site, $3 = text the refusal must contain
    /rig/bin/redlined --config $2 --log-level notice >/tmp/redlined-$1.out 2>&1 &
    rp=$!
    n=0; while kill -0 $rp 2>/dev/null && [ $n -lt 1200 ]; do sleep 0.1; n=$((n + 1)); done
    if kill -0 $rp 2>/dev/null; then
        kill -9 $rp; wait $rp 2>/dev/null
        result $1 FAIL "redlined still running after 120 s: $(tail -3 /tmp/redlined-$1.out | tr '\n' ' ')"
        return
    fi
    wait $rp; rc=$?
    if [ $rc = 78 ] && grep -q "$3" /tmp/redlined-$1.out; then st=PASS; else st=FAIL; fi
    result $1 $st "exit $rc: $(grep -m1 "$3" /tmp/redlined-$1.out || tail -2 /tmp/redlined-$1.out | tr '\n' ' ')"
}
refused gpio-chip-label-mismatch-refused "$(variant pinned "{chip: gpiochip0, label: pinctrl-rp1}")" "requires 'pinctrl-rp1'"
refused gpio-chip-label-absent-refused "$(variant absent "{chip: pinctrl-rp1}")" "no GPIO chip is labelled 'pinctrl-rp1'"

kill $SIMPID 2>/dev/null
# What the daemon said about the plant while under emulation (for reading failures).
echo "GPIOVM-NOTE redlined log: $(wc -l </tmp/redlined.out) lines, $(grep -c 'safe-state effect engaged' /tmp/redlined.out) E-1/E-3 engagements, $(grep -ci stale /tmp/redlined.out) mentioning stale"
grep -E 'warning|error|critical' /tmp/redlined.out | head -20 | sed 's/^/GPIOVM-LOG /'
