#!/usr/bin/env bash
# The GPIO rig: Redline's GPIO code against a real kernel GPIO chip (gpio-sim) in a QEMU
# virtual machine running Debian's own Linux 6.12 kernel. Needs nothing but Debian's archive.
#
#   Simulators/gpio-vm/run.sh            fetch (cached), build, boot, check; exit 0 iff every check passed
#
# Steps (each skipped when its output is already up to date):
#   1. install the host tools it needs (qemu-system-x86, busybox-static, gcc-12, dwarves, ...)
#   2. apt-get download linux-image-6.12.N+deb12-amd64-unsigned, its headers, kbuild and
#      linux-source-6.12 into Simulators/gpio-vm/cache/ (git-ignored)
#   3. build gpio-sim out of tree (gpio-sim.c + irq_sim.c, patched to link as a module)
#   4. swift build -c release --static-swift-stdlib --scratch-path .build-release the programs (the
#      scratch path scripts/build-release.sh and scripts/package.sh share: REDLINE_RELEASE_SCRATCH)
#   5. assemble an initramfs (busybox, modules, programs, their shared libraries, configs)
#   6. boot QEMU (TCG) and read the `GPIOVM-RESULT name PASS|FAIL detail` lines from the serial console
#   7. power loss: boot the same image on one ext4 disk again and again, killing QEMU mid-traffic
#
# Environment: GPIOVM_KVER=6.12.N+deb12 pins the kernel (default: 6.12.117+deb12 when the archive
# has it, else the newest 6.12 there); GPIOVM_TIMEOUT=seconds for the VM (default 900);
# GPIOVM_SMP (default 2); GPIOVM_MEM in MiB (default 1024); GPIOVM_ONLY_KERNEL=1 stops after step 3;
# GPIOVM_POWERLOSS_CYCLES (default 4, 0 skips step 7), GPIOVM_POWERLOSS_SEED, GPIOVM_ONLY_POWERLOSS=1
# (step 7 without the GPIO checks of step 6), GPIOVM_POWERLOSS_NO_FSYNC=1 (the negative control:
# the daemon without fsync, where the told check must fail).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
CACHE=$HERE/cache
WORK=$HERE/work
mkdir -p "$CACHE" "$WORK"
export DEBIAN_FRONTEND=noninteractive
T0=$(date +%s)

log() { echo "gpio-vm: $*" >&2; }
step_time() { log "$1 done in $(( $(date +%s) - $2 )) s"; }

# ---- 1. host tools ------------------------------------------------------------------------
PKGS="qemu-system-x86 busybox-static build-essential gcc-12 make kmod xz-utils cpio gzip dwarves \
binutils libelf1 libcurl4-openssl-dev libgpiod-dev libmodbus-dev gpiod"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
done
APT_UPDATED=0
apt_update() { [ $APT_UPDATED = 1 ] || { apt-get update -qq; APT_UPDATED=1; }; }
if [ -n "$missing" ]; then
    t=$(date +%s)
    log "installing:$missing"
    apt_update
    apt-get install -y -qq --no-install-recommends $missing >"$WORK/apt-install.log" 2>&1 \
        || { cat "$WORK/apt-install.log" >&2; exit 1; }
    step_time "host tools" "$t"
fi

# ---- 2. kernel packages -------------------------------------------------------------------
t=$(date +%s)
KVER=${GPIOVM_KVER:-}
if [ -z "$KVER" ] && [ -f "$CACHE/KVER" ]; then
    KVER=$(cat "$CACHE/KVER")
    ls "$CACHE"/linux-image-"$KVER"-amd64-unsigned_*.deb >/dev/null 2>&1 || KVER=""
fi
if [ -z "$KVER" ]; then
    apt_update
    avail=$(apt-cache search --names-only '^linux-image-6\.12\.[0-9]+\+deb12-amd64-unsigned$' \
        | sed -E 's/^linux-image-(6\.12\.[0-9]+\+deb12)-amd64-unsigned .*/\1/' | sort -V)
    [ -n "$avail" ] || { log "no linux-image-6.12.*+deb12-amd64-unsigned in the archive (bookworm-security)"; exit 1; }
    if echo "$avail" | grep -qx '6.12.117+deb12'; then KVER=6.12.117+deb12; else KVER=$(echo "$avail" | tail -1); fi
fi
KREL=$KVER-amd64
UPSTREAM=${KVER%+deb12}
log "kernel $KREL"
need_pkgs=""
for p in linux-image-$KVER-amd64-unsigned linux-headers-$KVER-amd64 linux-headers-$KVER-common linux-kbuild-$KVER; do
    ls "$CACHE/${p}_"*.deb >/dev/null 2>&1 || need_pkgs="$need_pkgs $p"
done
if [ -n "$need_pkgs" ]; then
    apt_update
    (cd "$CACHE" && apt-get -o APT::Sandbox::User=root download -qq $need_pkgs)
fi
if ! ls "$CACHE"/linux-source-6.12_"$UPSTREAM"-*.deb >/dev/null 2>&1; then
    apt_update
    srcver=$(apt-cache madison linux-source-6.12 | awk -F'|' '{gsub(/ /,"",$2); print $2}' | grep "^$UPSTREAM-" | head -1)
    [ -n "$srcver" ] || { log "linux-source-6.12 $UPSTREAM not in the archive"; exit 1; }
    (cd "$CACHE" && apt-get -o APT::Sandbox::User=root download -qq "linux-source-6.12=$srcver")
fi
echo "$KVER" >"$CACHE/KVER"
log "cache: $(du -sh "$CACHE" | cut -f1) in $CACHE"
step_time "kernel packages" "$t"

# ---- 3. kernel, headers, sources; gpio-sim out of tree -------------------------------------
t=$(date +%s)
KW=$WORK/$KVER
mkdir -p "$KW"
if [ ! -f "$KW/.extracted" ]; then
    rm -rf "$KW/root" "$KW/src" "$KW/img"
    for p in linux-headers-$KVER-amd64 linux-headers-$KVER-common linux-kbuild-$KVER; do
        dpkg-deb -x "$CACHE/${p}_"*.deb "$KW/root"
    done
    # The headers' Makefile includes the common one by absolute path: point it into our tree.
    echo "include $KW/root/usr/src/linux-headers-$KVER-common/Makefile" >"$KW/root/usr/src/linux-headers-$KREL/Makefile"
    mkdir -p "$KW/img"
    dpkg-deb --fsys-tarfile "$CACHE"/linux-image-"$KVER"-amd64-unsigned_*.deb \
        | tar -x -C "$KW/img" "./boot/vmlinuz-$KREL" "./lib/modules/$KREL/kernel/fs/configfs/configfs.ko.xz"
    xz -dkf "$KW/img/lib/modules/$KREL/kernel/fs/configfs/configfs.ko.xz"
    mkdir -p "$KW/src"
    dpkg-deb --fsys-tarfile "$CACHE"/linux-source-6.12_"$UPSTREAM"-*.deb \
        | tar -xO ./usr/src/linux-source-6.12.tar.xz \
        | tar -xJ -C "$KW/src" linux-source-6.12/drivers/gpio/gpio-sim.c linux-source-6.12/kernel/irq/irq_sim.c
    rm -f "$KW/.extracted-powerloss"
    touch "$KW/.extracted"
fi
# The power-loss cycles' disk (step 7): virtio-blk and ext4 with what ext4 needs, loaded in this order.
PL_MODS="crypto/crc32c_generic lib/crc16 fs/mbcache fs/jbd2/jbd2 fs/ext4/ext4 drivers/block/virtio_blk"
if [ ! -f "$KW/.extracted-powerloss" ]; then
    dpkg-deb --fsys-tarfile "$CACHE"/linux-image-"$KVER"-amd64-unsigned_*.deb \
        | tar -x -C "$KW/img" $(for m in $PL_MODS; do echo "./lib/modules/$KREL/kernel/$m.ko.xz"; done)
    for m in $PL_MODS; do xz -dkf "$KW/img/lib/modules/$KREL/kernel/$m.ko.xz"; done
    touch "$KW/.extracted-powerloss"
fi
MOD=$KW/gpio-sim
if [ ! -f "$MOD/gpio-sim-oot.ko" ]; then
    rm -rf "$MOD"; mkdir -p "$MOD"
    cp "$KW/src/linux-source-6.12/drivers/gpio/gpio-sim.c" "$KW/src/linux-source-6.12/kernel/irq/irq_sim.c" "$MOD/"
    # irq_to_desc() is not exported to modules; generic_handle_irq() does the same here.
    sed -i 's/handle_simple_irq(irq_to_desc(irqnum));/generic_handle_irq(irqnum);/' "$MOD/irq_sim.c"
    grep -q 'generic_handle_irq(irqnum);' "$MOD/irq_sim.c" || { log "irq_sim.c patch did not apply"; exit 1; }
    printf 'obj-m += gpio-sim-oot.o\ngpio-sim-oot-objs := gpio-sim.o irq_sim.o\n' >"$MOD/Kbuild"
    make -s -C "$KW/root/usr/src/linux-headers-$KREL" M="$MOD" modules >"$MOD/build.log" 2>&1 \
        || { cat "$MOD/build.log" >&2; exit 1; }
fi
step_time "kernel extraction and gpio-sim module" "$t"
[ "${GPIOVM_ONLY_KERNEL:-0}" = 1 ] && { log "GPIOVM_ONLY_KERNEL=1: stopping after the kernel module"; exit 0; }

# ---- 4. programs ---------------------------------------------------------------------------
t=$(date +%s)
PRODUCTS="gpio-rig-driver"
for p in ${GPIOVM_PRODUCTS:-}; do PRODUCTS="$PRODUCTS $p"; done
if [ -f "$HERE/products" ]; then PRODUCTS="$PRODUCTS $(grep -v '^#' "$HERE/products" | tr '\n' ' ')"; fi
SWIFT=${SWIFT:-swift}
command -v "$SWIFT" >/dev/null || SWIFT=/opt/swift/usr/bin/swift
# One release scratch path for the rigs, the package and build-release.sh: what is built here is
# reused there (same flags), so CI builds each release executable once.
SCRATCH=${REDLINE_RELEASE_SCRATCH:-.build-release}
for p in $PRODUCTS; do
    log "swift build $p (release, static stdlib, $SCRATCH)"
    (cd "$ROOT" && "$SWIFT" build -c release --static-swift-stdlib --scratch-path "$SCRATCH" --product "$p" \
        >"$WORK/swift-build-$p.log" 2>&1) || { tail -40 "$WORK/swift-build-$p.log" >&2; exit 1; }
done
BIN=$(cd "$ROOT" && "$SWIFT" build -c release --static-swift-stdlib --scratch-path "$SCRATCH" --show-bin-path)
step_time "swift builds ($PRODUCTS)" "$t"

# ---- 5. initramfs --------------------------------------------------------------------------
t=$(date +%s)
IR=$WORK/initramfs
rm -rf "$IR"
mkdir -p "$IR"/{bin,sbin,usr/bin,usr/sbin,lib/modules,rig/bin,proc,sys,dev,tmp,run,etc,root}
cp /bin/busybox "$IR/bin/busybox"
for applet in $("$IR/bin/busybox" --list); do
    [ -e "$IR/bin/$applet" ] || ln -s busybox "$IR/bin/$applet"
done
cp "$KW/img/lib/modules/$KREL/kernel/fs/configfs/configfs.ko" "$MOD/gpio-sim-oot.ko" "$IR/lib/modules/"
mkdir -p "$IR/lib/modules/powerloss"
for m in $PL_MODS; do cp "$KW/img/lib/modules/$KREL/kernel/$m.ko" "$IR/lib/modules/powerloss/"; done
copy_with_libs() {   # $1 = program, $2 = destination folder inside the initramfs
    cp "$1" "$IR/$2/"
    strip "$IR/$2/$(basename "$1")" 2>/dev/null || true
    ldd "$1" 2>/dev/null | grep -oE '/[^ ]+\.so[^ ]*' | while read -r lib; do
        [ -e "$IR$lib" ] || { mkdir -p "$IR$(dirname "$lib")"; cp -L "$lib" "$IR$lib"; }
    done
}
for p in $PRODUCTS; do copy_with_libs "$BIN/$p" rig/bin; done
for tool in gpioinfo gpiodetect gpioget; do copy_with_libs "$(command -v $tool)" usr/bin; done
gcc -O2 -Wall -static -o "$IR/rig/bin/rig-rpc" "$HERE/vm/rig-rpc.c"
cp "$HERE/init" "$IR/init"
cp "$HERE/vm-test.sh" "$IR/rig/vm-test.sh"
mkdir -p "$IR/rig/vm" && cp "$HERE"/vm/*.sh "$IR/rig/vm/"
cp -r "$ROOT/Devices" "$ROOT/Firmware-Configs" "$IR/rig/"
# Emulation (TCG) runs the daemon and the simulator 10-50 times slower than a Pi: with the
# demo site's 100 ms scans, 500 ms staleness and 200 ms Modbus timeouts, readings go stale and
# the daemon (rightly) treats the plant as dangerous. The VM copy keeps every device, line and
# rule of demo-datacenter-gpio.yaml and changes only the timing (GPIOVM_TIMING, and
# GPIOVM_MODBUS_TIMEOUT_MS on the Modbus buses); GPIOVM_TIMING=original runs the file as is.
# The timing stays inside the compiled-in envelope (README, Configuration): stale-after-ms at
# most 5 scan intervals and 5000 ms, bus timeouts below it.
VM_TIMING=${GPIOVM_TIMING:-"{scan-interval-ms: 800, stale-after-ms: 4000}"}
if [ "$VM_TIMING" != original ]; then
    sed -e "s/^timing: .*/timing: $VM_TIMING/" \
        -e "s/modbus-tcp: {host: \([^,]*\), port: \([0-9]*\)}}/modbus-tcp: {host: \1, port: \2}, timeout-ms: ${GPIOVM_MODBUS_TIMEOUT_MS:-1500}}/" \
        "$ROOT/Firmware-Configs/demo-datacenter-gpio.yaml" >"$IR/rig/Firmware-Configs/demo-datacenter-gpio-vm.yaml"
    changed=$( (diff "$ROOT/Firmware-Configs/demo-datacenter-gpio.yaml" "$IR/rig/Firmware-Configs/demo-datacenter-gpio-vm.yaml" || true) | grep -c '^>' || true)
    log "VM site: $changed lines retimed ($VM_TIMING, Modbus timeout ${GPIOVM_MODBUS_TIMEOUT_MS:-1500} ms)"
fi
# The demo site's agents (uid 2001, 2002), for readable listings.
printf 'root:x:0:0:root:/root:/bin/sh\nagent:x:2001:2001:facilities-agent:/tmp:/bin/sh\nreporter:x:2002:2002:reporting-agent:/tmp:/bin/sh\n' >"$IR/etc/passwd"
printf 'root:x:0:\nagent:x:2001:\nreporter:x:2002:\n' >"$IR/etc/group"
echo /bin/sh >"$IR/etc/shells"
chmod +x "$IR/init"
# Uncompressed: compressing ~200 MB and decompressing it under emulation costs more than it saves.
(cd "$IR" && find . | cpio -o -H newc --quiet) >"$WORK/initramfs.cpio"
log "initramfs $(du -h "$WORK/initramfs.cpio" | cut -f1) (uncompressed cpio)"
step_time "initramfs" "$t"

# ---- 6. boot and check ---------------------------------------------------------------------
t=$(date +%s)
CONSOLE=$WORK/console.log
log "booting QEMU (TCG); serial console in $CONSOLE"
set +e
if [ "${GPIOVM_ONLY_POWERLOSS:-0}" = 1 ]; then
    log "GPIOVM_ONLY_POWERLOSS=1: the GPIO checks are not booted"
    echo "GPIOVM-DONE" >"$CONSOLE"
    qrc=0
else
timeout "${GPIOVM_TIMEOUT:-900}" qemu-system-x86_64 -accel tcg -cpu max -smp "${GPIOVM_SMP:-2}" -m "${GPIOVM_MEM:-1024}" \
    -kernel "$KW/img/boot/vmlinuz-$KREL" -initrd "$WORK/initramfs.cpio" \
    -append "console=ttyS0 quiet panic=-1 rdinit=/init" \
    -display none -monitor none -serial stdio -no-reboot </dev/null 2>&1 | tr -d '\r' | tee "$CONSOLE" \
    | grep --line-buffered -E '^GPIOVM-' >&2
qrc=${PIPESTATUS[0]}
fi
set -e
step_time "boot + checks" "$t"

pass=$(grep -c '^GPIOVM-RESULT [^ ]* PASS' "$CONSOLE" || true)
fail=$(grep -c '^GPIOVM-RESULT [^ ]* FAIL' "$CONSOLE" || true)
rc=0
if [ "$qrc" != 0 ]; then log "QEMU exited with $qrc (124 = timed out)"; rc=1; fi
if ! grep -q '^GPIOVM-DONE' "$CONSOLE"; then
    log "the VM did not finish its checks; last console lines:"; tail -30 "$CONSOLE" >&2
    fail=$((fail + 1)); rc=1
fi

# ---- 7. power loss -------------------------------------------------------------------------
# The same image booted GPIOVM_POWERLOSS_CYCLES times (default 4; 0 skips) on one ext4 disk,
# with QEMU killed (kill -9: no guest sync) at a random moment of agent traffic, then once
# more to check the last cycle (vm/powerloss.sh says what each boot checks). The delays come
# from GPIOVM_POWERLOSS_SEED (printed), so a failing sequence can be replayed.
PL_CYCLES=${GPIOVM_POWERLOSS_CYCLES:-4}
if [ "$PL_CYCLES" -gt 0 ]; then
    t=$(date +%s)
    set +e   # a killed QEMU's exit status (137) is the point here, not an error
    PL_SEED=${GPIOVM_POWERLOSS_SEED:-$(( $(date +%s) % 32768 ))}
    RANDOM=$PL_SEED
    log "power loss: $PL_CYCLES cycles, seed $PL_SEED (GPIOVM_POWERLOSS_SEED=$PL_SEED replays the delays)"
    PL_DISK=$WORK/powerloss-disk.img
    PL_TOLD=$WORK/powerloss-told.img
    rm -f "$PL_DISK" "$WORK"/powerloss-*.log
    truncate -s 256M "$PL_DISK" && mkfs.ext4 -q -F "$PL_DISK"
    : >"$PL_TOLD"; truncate -s 4096 "$PL_TOLD"
    for i in $(seq 1 $((PL_CYCLES + 1))); do
        final=0; [ "$i" -gt "$PL_CYCLES" ] && final=1
        con=$WORK/powerloss-$i.log
        qemu-system-x86_64 -accel tcg -cpu max -smp "${GPIOVM_SMP:-2}" -m "${GPIOVM_MEM:-1024}" \
            -kernel "$KW/img/boot/vmlinuz-$KREL" -initrd "$WORK/initramfs.cpio" \
            -drive "file=$PL_DISK,if=virtio,format=raw,cache=writeback" \
            -drive "file=$PL_TOLD,if=virtio,format=raw,readonly=on" \
            -append "console=ttyS0 quiet panic=-1 rdinit=/init redline.mode=powerloss redline.cycle=$i redline.final=$final redline.nofsync=${GPIOVM_POWERLOSS_NO_FSYNC:-0}" \
            -display none -monitor none -serial "file:$con" -no-reboot </dev/null >"$con.qemu" 2>&1 &
        qpid=$!
        waited=0 outcome=""
        while [ $waited -lt 3000 ]; do   # tenths of a second
            if ! kill -0 $qpid 2>/dev/null; then outcome=exited; break; fi
            if [ $final = 0 ] && grep -q '^POWERLOSS-TRAFFIC' "$con" 2>/dev/null; then outcome=traffic; break; fi
            sleep 0.1; waited=$((waited + 1))
        done
        if [ "$outcome" = traffic ]; then
            delay_ms=$(( 500 + RANDOM % 5500 ))
            sleep "$(awk -v m=$delay_ms 'BEGIN { printf "%.3f", m / 1000 }')"
            kill -9 $qpid 2>/dev/null
            wait $qpid 2>/dev/null
            how="power cut ${delay_ms} ms into traffic"
        elif [ "$outcome" = exited ]; then
            wait $qpid 2>/dev/null
            how="VM powered off"
        else
            kill -9 $qpid 2>/dev/null; wait $qpid 2>/dev/null
            how="timed out after 300 s"
        fi
        tr -d '\r' <"$con" >"$con.txt"
        grep -E '^POWERLOSS-RESULT' "$con.txt" >&2 || true
        # What the agent was told of in this cycle: complete lines only (the last may be cut by the kill).
        grep -aE '^POWERLOSS-TOLD [A-Za-z0-9-]+$' "$con.txt" | awk '{print $2}' >"$WORK/powerloss-told.txt" || true
        told=$(wc -l <"$WORK/powerloss-told.txt")
        log "power loss cycle $i: $how; the agent was told of $told requestIds"
        if [ $final = 0 ] && [ "$outcome" != traffic ]; then
            echo "GPIOVM-RESULT powerloss-cycle-$i FAIL never reached traffic ($how): $(tail -5 "$con.txt" | tr '\n' ' ')" >>"$CONSOLE"
        fi
        { cat "$WORK/powerloss-told.txt"; } >"$PL_TOLD"; truncate -s %4096 "$PL_TOLD"
        [ -s "$PL_TOLD" ] || truncate -s 4096 "$PL_TOLD"
        # Each PASS/FAIL counts with the rig's other checks.
        sed -n 's/^POWERLOSS-RESULT /GPIOVM-RESULT powerloss-/p' "$con.txt" >>"$CONSOLE"
        if [ $final = 1 ] && ! grep -q '^POWERLOSS-DONE' "$con.txt"; then
            echo "GPIOVM-RESULT powerloss-final FAIL the final boot did not finish ($how): $(tail -5 "$con.txt" | tr '\n' ' ')" >>"$CONSOLE"
        fi
    done
    set -e
    step_time "power loss ($PL_CYCLES cycles)" "$t"
fi

pass=$(grep -c '^GPIOVM-RESULT [^ ]* PASS' "$CONSOLE" || true)
fail=$(grep -c '^GPIOVM-RESULT [^ ]* FAIL' "$CONSOLE" || true)
[ "$fail" = 0 ] && [ "$pass" -gt 0 ] || rc=1
log "total $(( $(date +%s) - T0 )) s"
echo "gpio-vm: $pass passed, $fail failed"
exit $rc
