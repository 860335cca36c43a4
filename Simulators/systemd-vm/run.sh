#!/usr/bin/env bash
# The systemd rig: the Redline Debian package installed and run as an integrator would, under a
# real systemd 252 (PID 1) in a Debian 12 QEMU virtual machine. Needs nothing but Debian's archive.
#
#   Simulators/systemd-vm/run.sh [DEB_DIR]   build (cached), boot, check; exit 0 iff every check passed
#
# Steps (each skipped when its output is already up to date):
#   1. host tools (qemu-system-x86, mmdebstrap, e2fsprogs)
#   2. the GPIO rig's kernel step (GPIOVM_ONLY_KERNEL=1 Simulators/gpio-vm/run.sh): its Debian 12
#      kernel (6.12.N+deb12) and gpio-sim built out of tree for it (Debian builds it without)
#   3. a Debian 12 root file system by mmdebstrap from deb.debian.org: systemd as PID 1, that
#      kernel (+ initramfs), udev, libmodbus5, libgpiod2; written into a raw ext4 image with
#      `mkfs.ext4 -d` (no loop mounts) in /var/cache/redline-ci/systemd-vm (SYSTEMDVM_CACHE;
#      outside the checkout, so a clean clone in CI finds it); booted with -snapshot, so the
#      cached image is never changed; rebuilt when absent or when its inputs change
#   4. the packages: scripts/package.sh twice (version V and V+1, for the upgrade check) plus the
#      redline-sim package, unless DEB_DIR already holds them; the release binaries come from the
#      shared scratch path .build-release, where the GPIO rig has built redlined and redline-sim
#   5. a payload disk (ext4 from a folder, again by mkfs.ext4 -d): the .debs, vm-test.sh, the
#      sites, gpio-sim-oot.ko
#   6. boot QEMU (KVM when /dev/kvm is usable, else TCG) with the rootfs's own kernel and initrd
#      and a second serial port (ttyS1, for the udev check); a first-boot unit
#      (redline-vmtest.service) mounts the payload, runs vm-test.sh, which prints
#      `SYSTEMDVM-RESULT name PASS|FAIL detail` on the serial console, and powers off
#
# Environment: SYSTEMDVM_TIMEOUT seconds for the VM (default 1200; a green run takes 640-670 s under TCG), SYSTEMDVM_MEM MiB (default 1536),
# SYSTEMDVM_SMP (default 2), SYSTEMDVM_ACCEL=kvm|tcg (default: kvm when usable),
# REDLINE_PKG_CONFIG=release|debug passed to scripts/package.sh (default release).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# The base image is cached outside the checkout, so that it survives between CI runs on a clean
# clone (the CI machine's /var/cache); it is rebuilt whenever it is absent or its inputs changed.
CACHE=${SYSTEMDVM_CACHE:-/var/cache/redline-ci/systemd-vm}
WORK=$HERE/work
mkdir -p "$CACHE" "$WORK"
export DEBIAN_FRONTEND=noninteractive
T0=$(date +%s)

log() { echo "systemd-vm: $*" >&2; }
step_time() { log "$1 done in $(( $(date +%s) - $2 )) s"; }

# ---- 1. host tools ------------------------------------------------------------------------
PKGS="qemu-system-x86 mmdebstrap e2fsprogs dpkg-dev fakeroot gcc libc6-dev libmodbus-dev libgpiod-dev libcurl4-openssl-dev"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
done
if [ -n "$missing" ]; then
    t=$(date +%s)
    log "installing:$missing"
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends $missing >"$WORK/apt-install.log" 2>&1 \
        || { cat "$WORK/apt-install.log" >&2; exit 1; }
    step_time "host tools" "$t"
fi

# ---- 2. kernel and gpio-sim: the GPIO rig's --------------------------------------------------
# The same Debian 12 kernel as the GPIO rig (linux-image-6.12.N+deb12-amd64, bookworm-security),
# because Debian builds it without gpio-sim: the GPIO rig's step 3 builds the module out of tree
# for exactly that kernel (cached; GPIOVM_ONLY_KERNEL=1 stops it there). The udev check loads it.
t=$(date +%s)
GPIOVM=$ROOT/Simulators/gpio-vm
GPIOVM_ONLY_KERNEL=1 bash "$GPIOVM/run.sh" >"$WORK/gpio-sim-module.log" 2>&1 \
    || { tail -30 "$WORK/gpio-sim-module.log" >&2; log "the GPIO rig's kernel step failed"; exit 1; }
KVER=$(cat "$GPIOVM/cache/KVER")
GPIOSIM_KO=$GPIOVM/work/$KVER/gpio-sim/gpio-sim-oot.ko
[ -f "$GPIOSIM_KO" ] || { log "no $GPIOSIM_KO after the GPIO rig's kernel step"; exit 1; }
log "kernel $KVER-amd64, gpio-sim from the GPIO rig"
step_time "kernel and gpio-sim module" "$t"

# ---- 3. root file system and base image ----------------------------------------------------
# What goes into the base image. Changing this list, the kernel, the mirror or the rig's unit rebuilds it.
# libcurl4: only a debug build (REDLINE_PKG_CONFIG=debug) links it (FoundationNetworking, through the MCP SDK).
ROOTFS_PKGS="systemd-sysv,udev,dbus,linux-image-$KVER-amd64,libmodbus5,libgpiod2,libcurl4,procps,passwd,nftables,e2fsprogs"
MIRROR=${SYSTEMDVM_MIRROR:-http://deb.debian.org/debian}
STAMP=$(printf '%s\n%s\n' "$ROOTFS_PKGS" "$MIRROR" | cat - "$HERE/redline-vmtest.service" | sha256sum | cut -c1-16)
BASE=$CACHE/base-$STAMP.img
t=$(date +%s)
if [ ! -f "$BASE" ] || [ ! -f "$CACHE/boot-$STAMP/vmlinuz" ]; then
    rm -rf "$CACHE"/base-*.img "$CACHE"/boot-* "$CACHE/rootfs"
    log "mmdebstrap bookworm ($ROOTFS_PKGS)"
    mmdebstrap --variant=apt --include="$ROOTFS_PKGS" \
        --aptopt='APT::Install-Recommends "false"' \
        --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
        --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
        bookworm "$CACHE/rootfs" "$MIRROR" "deb http://deb.debian.org/debian-security bookworm-security main" \
        >"$WORK/mmdebstrap.log" 2>&1 || { tail -40 "$WORK/mmdebstrap.log" >&2; exit 1; }
    R=$CACHE/rootfs
    echo systemd-vm >"$R/etc/hostname"
    printf '/dev/vda / ext4 rw,errors=remount-ro 0 1\n' >"$R/etc/fstab"
    # root without a password on the console (never used: nothing logs in), no getty on the
    # serial line (the checks own it), no first-boot wizard.
    sed -i 's/^root:[^:]*:/root::/' "$R/etc/shadow"
    ln -sf /dev/null "$R/etc/systemd/system/serial-getty@ttyS0.service"
    ln -sf /dev/null "$R/etc/systemd/system/getty@tty1.service"
    ln -sf /dev/null "$R/etc/systemd/system/systemd-firstboot.service"
    ln -sf /dev/null "$R/etc/systemd/system/apt-daily.timer"
    ln -sf /dev/null "$R/etc/systemd/system/apt-daily-upgrade.timer"
    ln -sf /dev/null "$R/etc/systemd/system/e2scrub_all.timer"
    ln -sf /dev/null "$R/etc/systemd/system/fstrim.timer"
    echo "uninitialized" >"$R/etc/machine-id"
    install -m 0644 "$HERE/redline-vmtest.service" "$R/etc/systemd/system/redline-vmtest.service"
    mkdir -p "$R/etc/systemd/system/multi-user.target.wants"
    ln -sf /etc/systemd/system/redline-vmtest.service "$R/etc/systemd/system/multi-user.target.wants/redline-vmtest.service"
    mkdir -p "$R/payload"
    mkdir -p "$CACHE/boot-$STAMP"
    cp -L "$R/vmlinuz" "$CACHE/boot-$STAMP/vmlinuz"
    cp -L "$R/initrd.img" "$CACHE/boot-$STAMP/initrd.img"
    rm -f "$R"/var/cache/apt/archives/*.deb
    size=$(( $(du -sm "$R" | cut -f1) + 700 ))
    mkfs.ext4 -q -F -L rootfs -d "$R" "$BASE.tmp" "${size}M"
    mv "$BASE.tmp" "$BASE"
    rm -rf "$R"
    log "base image $(du -h --apparent-size "$BASE" | cut -f1) ($(du -h "$BASE" | cut -f1) on disk) in $CACHE"
    step_time "root file system and base image" "$t"
fi
[ "${SYSTEMDVM_ONLY_IMAGE:-0}" = 1 ] && { log "SYSTEMDVM_ONLY_IMAGE=1: stopping after the base image"; exit 0; }

# ---- 4. the packages ---------------------------------------------------------------------------
t=$(date +%s)
DEBS=${1:-$WORK/debs}
if [ -z "${1:-}" ]; then
    rm -rf "$DEBS"; mkdir -p "$DEBS"
    V1="0.1.0~rig1"; V2="0.1.0~rig2"
    # gzip, not xz: xz of the static binaries costs minutes on the CI machine and in the guest.
    REDLINE_PKG_COMPRESS=${REDLINE_PKG_COMPRESS:-gzip} \
        bash "$ROOT/scripts/package.sh" --out "$DEBS" --version "$V1" --also-version "$V2" >"$WORK/package.log" 2>&1 \
        || { tail -40 "$WORK/package.log" >&2; exit 1; }
    step_time "packages (REDLINE_PKG_CONFIG=${REDLINE_PKG_CONFIG:-release})" "$t"
fi
pick() { ls "$DEBS"/$1 2>/dev/null | sort -V | sed -n "$2p"; }
DEB=$(pick 'redline_*.deb' 1); DEB_NEW=$(pick 'redline_*.deb' 2); DEB_SIM=$(pick 'redline-sim_*.deb' 1)
[ -n "$DEB" ] && [ -n "$DEB_NEW" ] && [ -n "$DEB_SIM" ] && [ "$DEB" != "$DEB_NEW" ] \
    || { log "need two redline versions and redline-sim in $DEBS"; ls "$DEBS" >&2; exit 1; }
VERSION=$(dpkg-deb -f "$DEB" Version); VERSION_NEW=$(dpkg-deb -f "$DEB_NEW" Version)
dpkg --compare-versions "$VERSION_NEW" gt "$VERSION" || { log "$VERSION_NEW is not newer than $VERSION"; exit 1; }
log "packages: $(basename "$DEB") -> $(basename "$DEB_NEW"), $(basename "$DEB_SIM")"

# ---- 5. payload disk ---------------------------------------------------------------------------
ACCEL=${SYSTEMDVM_ACCEL:-}
# KVM only when a guest really runs under it: on this CI machine /dev/kvm is a nested "kvm-pvm"
# host on which a guest never prints a line, so probe: the kernel's first console line within 20 s.
if [ -z "$ACCEL" ]; then
    ACCEL=tcg
    if [ -c /dev/kvm ] && [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
        timeout 20 qemu-system-x86_64 -accel kvm -cpu host -m 256 -kernel "$CACHE/boot-$STAMP/vmlinuz" \
            -append "console=ttyS0 panic=-1" -nic none -display none -monitor none -serial stdio -no-reboot \
            </dev/null 2>/dev/null | head -c 4096 >"$WORK/kvm-probe.log" || true
        if grep -q 'Linux version' "$WORK/kvm-probe.log"; then ACCEL=kvm; else log "/dev/kvm is there but a KVM guest prints nothing: TCG"; fi
    fi
fi
PL=$WORK/payload
rm -rf "$PL"; mkdir -p "$PL"
cp "$DEB" "$DEB_NEW" "$DEB_SIM" "$PL/"
cp "$HERE/vm-test.sh" "$HERE/udev-site.yaml" "$ROOT/Firmware-Configs/demo-datacenter.yaml" "$GPIOSIM_KO" "$PL/"
gcc -O2 -Wall -static -o "$PL/rig-rpc" "$ROOT/Simulators/gpio-vm/vm/rig-rpc.c"
{
    echo "DEB=$(basename "$DEB")"; echo "DEB_NEW=$(basename "$DEB_NEW")"; echo "DEB_SIM=$(basename "$DEB_SIM")"
    echo "VERSION='$VERSION'"; echo "VERSION_NEW='$VERSION_NEW'"
    # Under emulation (TCG) the demo's 100 ms scans go stale; KVM runs the site as it is.
    # (the Modbus timeout too, as the GPIO rig does: 200 ms replies are late under emulation)
    if [ "$ACCEL" = tcg ]; then
        echo "SITE_TIMING='{scan-interval-ms: 800, stale-after-ms: 4000}'"; echo "MODBUS_TIMEOUT_MS=1500"
    fi
} >"$PL/env"
rm -f "$WORK/payload.img"
mkfs.ext4 -q -F -L payload -d "$PL" "$WORK/payload.img" "$(( $(du -sm "$PL" | cut -f1) + 32 ))M"

# ---- 6. boot and check -------------------------------------------------------------------------
t=$(date +%s)
CONSOLE=$WORK/console.log
log "booting QEMU ($ACCEL); serial console in $CONSOLE"
CPU=max; [ "$ACCEL" = kvm ] && CPU=host
set +e
timeout "${SYSTEMDVM_TIMEOUT:-1200}" qemu-system-x86_64 -accel "$ACCEL" -cpu "$CPU" -smp "${SYSTEMDVM_SMP:-2}" \
    -m "${SYSTEMDVM_MEM:-1536}" \
    -kernel "$CACHE/boot-$STAMP/vmlinuz" -initrd "$CACHE/boot-$STAMP/initrd.img" \
    -append "root=/dev/vda rw console=ttyS0 quiet loglevel=3 systemd.show_status=false panic=-1 net.ifnames=0" \
    -drive "file=$BASE,format=raw,if=virtio,snapshot=on" \
    -drive "file=$WORK/payload.img,format=raw,if=virtio,readonly=on" \
    -nic none -display none -monitor none -serial stdio -serial null -no-reboot </dev/null 2>&1 | stdbuf -oL tr -d '\r' | tee "$CONSOLE" \
    | grep --line-buffered -E '^SYSTEMDVM-' >&2
qrc=${PIPESTATUS[0]}
set -e
step_time "boot + checks" "$t"

pass=$(grep -c '^SYSTEMDVM-RESULT [^ ]* PASS' "$CONSOLE" || true)
fail=$(grep -c '^SYSTEMDVM-RESULT [^ ]* FAIL' "$CONSOLE" || true)
rc=0
if [ "$qrc" != 0 ]; then log "QEMU exited with $qrc (124 = timed out)"; rc=1; fi
if ! grep -q '^SYSTEMDVM-DONE' "$CONSOLE"; then
    log "the VM did not finish its checks; last console lines:"; tail -30 "$CONSOLE" >&2
    fail=$((fail + 1)); rc=1
fi
[ "$fail" = 0 ] && [ "$pass" -gt 0 ] || rc=1
log "total $(( $(date +%s) - T0 )) s"
echo "systemd-vm: $pass passed, $fail failed"
exit $rc
