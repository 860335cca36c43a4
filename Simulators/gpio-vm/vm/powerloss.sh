#!/bin/sh
# One power-loss cycle of the GPIO rig, inside the VM (run.sh, step 7; DESIGN §9, issue 14).
# The host boots this image again and again on the same ext4 disk (/dev/vda) and kills QEMU
# (kill -9: no guest sync, no unmount) at a random moment of agent traffic. Each boot:
#   1. mounts the disk (the kernel replays ext4's journal) as /var/lib/redline;
#   2. checks what the last cycle left: every audit file verifies as one chain, oldest first,
#      and every requestId the agent was told of in the last cycle (the host hands the list in
#      on /dev/vdb, read-only) is in the log;
#   3. starts redline-sim and redlined on that log (start-up verifies the current file whole,
#      compares it with audit.head, cuts a torn final line) and waits until it answers;
#   4. unless this is the final boot (redline.final=1), sends agent writes until the power goes:
#      one `POWERLOSS-TOLD <requestId>` line per answer received, written only after the answer.
# Results: `POWERLOSS-RESULT name PASS|FAIL detail`; the final boot ends with POWERLOSS-DONE.

result() { echo "POWERLOSS-RESULT $1 $2 $3"; }
cycle=$(sed -n 's/.*redline\.cycle=\([0-9]*\).*/\1/p' /proc/cmdline)
final=0; grep -q 'redline.final=1' /proc/cmdline && final=1
# The daemon rotates at 4 KiB (so cycles cut rotations too) and signs a checkpoint every 2 s.
LOGARGS="--audit-rotate-bytes 4096 --audit-keep 60 --checkpoint-records 50 --checkpoint-seconds 2"
# The negative control (GPIOVM_POWERLOSS_NO_FSYNC=1 on the host): the daemon without fsync, and
# without the rotations and checkpoints whose own fsyncs would commit ext4's journal, so that
# acknowledged records die with the page cache and the told check must fail.
grep -q 'redline.nofsync=1' /proc/cmdline && LOGARGS="--no-audit-fsync --audit-rotate-mib 64 --checkpoint-records 100000 --checkpoint-seconds 3600"
SITE=/rig/Firmware-Configs/demo-datacenter-gpio.yaml
[ -f /rig/Firmware-Configs/demo-datacenter-gpio-vm.yaml ] && SITE=/rig/Firmware-Configs/demo-datacenter-gpio-vm.yaml
STATE=/var/lib/redline
LOG=$STATE/audit.jsonl
AGENT_SOCK=/run/redline/agent.sock
until_ok() { n=0; while [ $n -lt $2 ]; do eval "$1" && return 0; sleep 0.1; n=$((n + 1)); done; return 1; }
field() { sed -n "s/.*\"$1\" *: *\"\{0,1\}\([^\",}]*\)\"\{0,1\}.*/\1/p" | head -1; }
agent() { /rig/bin/rig-rpc 2001 $AGENT_SOCK "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"$1\",\"params\":$2}" 2>>/tmp/rpc.err; }

for m in crc32c_generic crc16 mbcache jbd2 ext4 virtio_blk; do
    insmod /lib/modules/powerloss/$m.ko 2>/tmp/insmod.err || { result cycle-$cycle-setup FAIL "insmod $m: $(cat /tmp/insmod.err)"; echo POWERLOSS-DONE; exit 0; }
done
until_ok "[ -b /dev/vda ] && [ -b /dev/vdb ]" 100 || { result cycle-$cycle-setup FAIL "no /dev/vda and /dev/vdb"; echo POWERLOSS-DONE; exit 0; }
mkdir -p $STATE /run/redline
mount -t ext4 /dev/vda $STATE 2>/tmp/mount.err || { result cycle-$cycle-mount FAIL "$(cat /tmp/mount.err)"; echo POWERLOSS-DONE; exit 0; }

# ---- 2. what the last cycle left ----
if [ -f $LOG ]; then
    # Rotated files oldest first (audit.jsonl.N ... audit.jsonl.1), then the current one.
    files="$(ls $LOG.[0-9]* 2>/dev/null | sort -t. -k3 -n -r | tr '\n' ' ')$LOG"
    nfiles=$(echo $files | wc -w)
    out=$(/rig/bin/redlinectl audit verify $files 2>&1); rc=$?
    st=FAIL; [ $rc = 0 ] && st=PASS
    result cycle-$cycle-log-verifies $st "$nfiles file(s): $(echo "$out" | head -3 | tr '\n' ' ')"
    tr -d '\000' </dev/vdb | grep -E '^[A-Za-z0-9-]+$' | sort -u >/tmp/told
    cat $files | grep -o '"requestId":"[^"]*"' | sed 's/.*:"\(.*\)"/\1/' | sort -u >/tmp/logged
    told=$(wc -l </tmp/told)
    # Told but not logged (awk reads the logged set first; busybox grep -f with an empty
    # pattern file would match every line, which would make this check vacuous).
    missing=$(awk -v logged=/tmp/logged 'BEGIN { while ((getline l < logged) > 0) have[l] = 1 } !($0 in have)' /tmp/told)
    if [ -z "$missing" ]; then
        result cycle-$cycle-told-requests-logged PASS "all $told requestIds the agent was told of in cycle $((cycle - 1)) are in the log"
    else
        result cycle-$cycle-told-requests-logged FAIL "$(echo "$missing" | wc -l) of $told told requestIds missing: $(echo $missing | cut -c1-300)"
    fi
fi

# ---- 3. the daemon starts on what is there ----
/rig/bin/redline-sim --site $SITE --control /run/sim.sock >/tmp/sim.out 2>&1 &
until_ok "[ -S /run/sim.sock ]" 300 || { result cycle-$cycle-daemon-starts FAIL "redline-sim did not start"; echo POWERLOSS-DONE; exit 0; }
/rig/bin/redlined --config $SITE --log-level notice $LOGARGS >/tmp/redlined.out 2>&1 &
DPID=$!
# Up to 120 s for the first answer, unless redlined exits first (it refuses a log it cannot trust).
if until_ok "agent site.describe '{}' | grep -q '\"result\"' || ! kill -0 $DPID 2>/dev/null" 1200 && kill -0 $DPID 2>/dev/null; then
    result cycle-$cycle-daemon-starts PASS "$(grep -m1 -o 'cut a torn final line of [0-9]* bytes' /tmp/redlined.out || echo 'no torn line to cut')"
else
    result cycle-$cycle-daemon-starts FAIL "$(kill -0 $DPID 2>/dev/null && echo running, not answering || echo exited): $(tail -4 /tmp/redlined.out | tr '\n' ' ')"
    echo POWERLOSS-DONE; exit 0
fi

if [ $final = 1 ]; then
    kill -TERM $DPID; wait $DPID
    umount $STATE
    echo POWERLOSS-DONE
    exit 0
fi

# ---- 4. traffic until the power goes ----
# Three writers at once, so that the power often goes with a write in flight (a torn record).
writer() {
    i=0
    while :; do
        i=$((i + 1))
        if [ $((i % 10)) = 0 ]; then
            a=$(agent points.write '{"id":"dispatch.cancel","value":1,"reason":"power-loss traffic"}')
        else
            a=$(agent points.write "{\"id\":\"office-lights.on\",\"value\":$((i % 2)),\"reason\":\"power-loss traffic, writer $1\"}")
        fi
        rid=$(echo "$a" | field requestId)
        [ -n "$rid" ] && echo "POWERLOSS-TOLD $rid"
    done
}
echo "POWERLOSS-TRAFFIC cycle $cycle"
writer 1 & writer 2 & writer 3
