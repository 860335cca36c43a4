#!/bin/sh
# Checks run inside the GPIO rig's virtual machine (busybox sh). $CHIP (gpiochip0) and
# $SIM (gpio-sim's sysfs folder of that chip) come from /init.
# Every check prints `GPIOVM-RESULT name PASS|FAIL detail`.

result() { echo "GPIOVM-RESULT $1 $2 $3"; }
val() { cat $SIM/sim_gpio$1/value; }
pull() { echo pull-$2 > $SIM/sim_gpio$1/pull; }

# Wait up to $2 tenths of a second for file $1 to contain $3.
wait_for() {
    n=0
    while [ $n -lt $2 ]; do
        grep -q "$3" "$1" 2>/dev/null && return 0
        sleep 0.1; n=$((n + 1))
    done
    return 1
}

# ---- Stage 1: RedlineIO's GPIOBackend, driven directly -----------------------------
/rig/bin/gpio-rig-driver selftest --chip $CHIP --sim $SIM 2>/tmp/driver.err
rc=$?
[ $rc -eq 0 ] || { result driver-selftest FAIL "exit $rc: $(tail -3 /tmp/driver.err | tr '\n' ' ')"; }

# What a killed process leaves on the lock line. The kernel releases the lines of a dead
# process; a released gpio-sim line reads its pull, as a real released line follows
# whatever biases it on the board (a relay driver's pull resistor).
for bias in down up; do
    pull 0 $bias
    /rig/bin/gpio-rig-driver hold --chip $CHIP --lock 1 >/tmp/hold.out 2>/tmp/hold.err &
    pid=$!
    if ! wait_for /tmp/hold.out 100 GPIOVM-HOLDING; then
        result killed-process-line-state-pull-$bias FAIL "holder did not start: $(cat /tmp/hold.out /tmp/hold.err | tr '\n' ' ')"
        kill -9 $pid 2>/dev/null
        continue
    fi
    held=$(val 0)
    consumer=$(gpioinfo $CHIP 2>/dev/null | grep -E '^[[:space:]]+line[[:space:]]+0:' | tr -s ' \t' ' ')
    kill -9 $pid; wait $pid 2>/dev/null
    sleep 0.2
    after=$(val 0)
    expect=0; [ $bias = up ] && expect=1
    if [ "$held" = 1 ] && [ "$after" = $expect ] && echo "$consumer" | grep -q '"redline" output'; then
        st=PASS
    else
        st=FAIL
    fi
    result killed-process-line-state-pull-$bias $st "lock driven 1 while held (gpioinfo:$consumer); after kill -9 the line is released and reads $after = its pull-$bias"
done
pull 0 down

# ---- Stage 2: the daemon, through its sockets (when this build has it) --------------------
if [ -x /rig/bin/redlined ] && [ -x /rig/bin/redline-sim ]; then
    sh /rig/vm/daemon-test.sh
else
    echo "GPIOVM-NOTE daemon checks not built into this image (products: $(ls /rig/bin | tr '\n' ' '))"
fi
