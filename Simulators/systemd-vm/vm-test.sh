#!/bin/bash
# Runs inside the systemd rig's VM (Debian 12, systemd 252 as PID 1), from the payload disk at
# /payload, as root, started by redline-vmtest.service after multi-user.target.
# Prints `SYSTEMDVM-RESULT name PASS|FAIL detail` per check and `SYSTEMDVM-DONE` at the end.
set -u
# Straight to the serial line: through the journal the console lines would get a prefix.
exec >/dev/ttyS0 2>&1
P=/payload
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
# shellcheck disable=SC1091
. "$P/env"    # DEB, DEB_SIM, DEB_NEW, VERSION, VERSION_NEW
pass=0; fail=0
result() {   # name PASS|FAIL detail...
    local name=$1 st=$2; shift 2
    echo "SYSTEMDVM-RESULT $name $st $*"
    if [ "$st" = PASS ]; then pass=$((pass + 1)); else fail=$((fail + 1)); fi
}
check() {    # name detail-on-pass -- command...: PASS iff the command succeeds
    local name=$1 detail=$2; shift 3
    local out
    if out=$("$@" 2>&1); then result "$name" PASS "$detail"
    else result "$name" FAIL "$(echo "$out" | tail -3 | tr '\n' ' ')"; fi
}
wait_for() {  # seconds command...: poll until the command succeeds
    local n=$(( $1 * 5 )); shift
    for _ in $(seq "$n"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
    return 1
}
simctl() { "$P/rig-rpc" 0 /run/redline-sim/control.sock "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"$1\",\"params\":${2:-{\}}}"; }
plant() { simctl plant.get | grep -o "\"$1\":[-0-9.e]*" | head -1 | cut -d: -f2; }
as_agent() { setpriv --reuid facility --regid facility --init-groups -- "$@"; }
as_operator() { setpriv --reuid alice --regid alice --init-groups -- "$@"; }
journal_sys_kills() { journalctl -b -u redlined --no-pager 2>/dev/null | grep -c 'status=31/SYS'; }
echo "SYSTEMDVM-START systemd $(systemctl --version | head -1 | cut -d' ' -f2), kernel $(uname -r)"

# ---- install, without a site: nothing starts -----------------------------------------------------
check pid1-systemd "PID 1 is $(cat /proc/1/comm)" -- test "$(cat /proc/1/comm)" = systemd
# (the folders too: dpkg creates no folder that a path-exclude dropped)
printf 'path-include=/usr/share/man/man1/redline*\npath-include=/usr/share/man/man8/redline*\n' >/etc/dpkg/dpkg.cfg.d/zz-redline-man
mkdir -p /usr/share/man/man1 /usr/share/man/man8
check dpkg-install "dpkg -i $(basename "$DEB")" -- dpkg -i "$P/$DEB"
check accounts "sysusers: _redline $(id -u _redline 2>/dev/null), groups redline-agents, redline-operators" -- \
    sh -c 'u=$(id -u _redline) && [ "$u" -lt 1000 ] && [ "$u" -gt 0 ] && getent group redline-agents && getent group redline-operators && test -d /var/lib/redline && [ "$(stat -c %U:%a /var/lib/redline)" = _redline:750 ]'
check no-start-without-site "redlined inactive and not enabled after install" -- \
    sh -c '! systemctl is-active --quiet redlined && ! systemctl is-enabled --quiet redlined && systemctl cat redlined >/dev/null'
check no-usr-local "no file of the package under /usr/local" -- sh -c '! dpkg -L redline | grep -q "^/usr/local"'
# The man pages on disk and valid: the minimal image excludes /usr/share/man/* from every package
# (dpkg path-exclude, as a container image would), so the rig re-includes Redline's pages before
# the install above (dpkg.cfg.d/zz-redline-man) and checks what dpkg wrote: each page gunzips,
# is an mdoc page of the right name and section, and lists the commands of its --help.
man_ok() {   # file name SECTION words...
    local f=$1 name=$2 sec=$3; shift 3
    test -s "$f" || { echo "$f missing"; return 1; }
    local txt; txt=$(gzip -dc "$f") || { echo "$f does not gunzip"; return 1; }
    echo "$txt" | grep -qx "\.Dt $name $sec" || { echo "$f: no .Dt $name $sec"; return 1; }
    echo "$txt" | grep -q '^\.Sh NAME' || { echo "$f: no NAME section"; return 1; }
    for w in "$@"; do echo "$txt" | grep -q -- "$w" || { echo "$f: '$w' not in it"; return 1; }; done
}
check man-pages "redlined.8.gz, redlinectl.1.gz installed (dpkg -L)" -- \
    sh -c "dpkg -L redline | grep -qx /usr/share/man/man8/redlined.8.gz && dpkg -L redline | grep -qx /usr/share/man/man1/redlinectl.1.gz"
man_both() {
    man_ok /usr/share/man/man8/redlined.8.gz REDLINED 8 'Fl -config' 'Fl -agent-socket' \
        && man_ok /usr/share/man/man1/redlinectl.1.gz REDLINECTL 1 udev-rules host-check gpio-label approvals
}
check man-pages-content "on disk: each page gunzips, .Dt NAME SECTION, NAME section, its options or subcommands" -- man_both

# ---- accounts, site, simulator ---------------------------------------------------------------------
useradd --system --no-create-home --shell /usr/sbin/nologin facility
useradd --system --no-create-home --shell /usr/sbin/nologin reporter
useradd --create-home --shell /bin/bash alice
usermod -aG redline-agents facility
usermod -aG redline-agents reporter
usermod -aG redline-operators alice
OPGID=$(getent group redline-operators | cut -d: -f3)
# The demo site, its agents named by user name and its operators by the operator group.
sed -e 's/uid: 2001/user: facility/' -e 's/uid: 2002/user: reporter/' -e "s/{uid: 0}/{gid: $OPGID}/" \
    "$P/demo-datacenter.yaml" >/etc/redline/site.yaml
# Under emulation (TCG) the demo's 100 ms scans and 200 ms Modbus timeouts make readings stale or
# faulted, and RL-0 then (rightly) takes the dangerous value: the zone reads as in alarm and E-2
# expires held requests. As the GPIO rig does, the VM's copy keeps every device, line and rule and
# changes only the timing, inside the compiled-in envelope (README, Configuration).
[ -n "${SITE_TIMING:-}" ] && sed -i "s/^timing: .*/timing: $SITE_TIMING/" /etc/redline/site.yaml
[ -n "${MODBUS_TIMEOUT_MS:-}" ] && sed -i "s/modbus-tcp: {host: \([^,]*\), port: \([0-9]*\)}}/modbus-tcp: {host: \1, port: \2}, timeout-ms: $MODBUS_TIMEOUT_MS}/" /etc/redline/site.yaml
chmod 0644 /etc/redline/site.yaml
check redlinectl-check "redlinectl check /etc/redline/site.yaml (packaged + local profiles)" -- redlinectl check /etc/redline/site.yaml
check dpkg-install-sim "dpkg -i $(basename "$DEB_SIM")" -- dpkg -i "$P/$DEB_SIM"
mkdir -p /etc/redline-sim && cp /etc/redline/site.yaml /etc/redline-sim/site.yaml
systemctl start redline-sim
check sim-unit "redline-sim.service active, control socket up" -- wait_for 30 test -S /run/redline-sim/control.sock

# ---- the daemon under its unit ----------------------------------------------------------------------
t0=$(date +%s)
systemctl enable --now redlined >/dev/null 2>&1 &
if wait_for 60 systemctl is-active --quiet redlined; then
    result active-after-ready PASS "systemctl is-active redlined after READY=1 ($(( $(date +%s) - t0 )) s)"
else
    result active-after-ready FAIL "$(systemctl status redlined --no-pager 2>&1 | tail -5 | tr '\n' ' ')"
    journalctl -b -u redlined --no-pager | tail -30
fi
wait
# Where the start-up time goes (not a check): the unit's journal, monotonic, first lines and last.
echo "SYSTEMDVM-INFO redlined start: $(journalctl -b -u redlined -o short-monotonic --no-pager 2>/dev/null | grep -v '^-- ' | sed -n '1,4p;$p' | cut -c1-160 | tr '\n' '|')"
sleep 2
n=$(journal_sys_kills)
check no-sys-kills "no status=31/SYS in the journal" -- test "$n" = 0
MAINPID=$(systemctl show -p MainPID --value redlined)
check runs-as-service-user "redlined runs as _redline ($(ps -o user= -p "$MAINPID" 2>/dev/null))" -- test "$(ps -o user= -p "$MAINPID")" = _redline
check socket-modes "agent.sock root:redline-agents 0660, operator.sock root:redline-operators 0660 (or _redline-owned)" -- \
    sh -c 'stat -c "%G %a" /run/redline/agent.sock | grep -qx "redline-agents 660" && stat -c "%G %a" /run/redline/operator.sock | grep -qx "redline-operators 660"'

# ---- agents and operators through redlinectl ---------------------------------------------------------
out=$(as_agent redlinectl write dispatch.cancel 1 --reason "EXEC-4429" 2>&1); rc=$?
if [ $rc = 3 ] && echo "$out" | grep -q 'RL-2'; then result agent-rl2-denied PASS "$out"
else result agent-rl2-denied FAIL "rc=$rc $out"; fi
out=$(as_agent redlinectl write office-lights.on 1 2>&1); rc=$?
sleep 1
lights=$(plant office-lights.on)
if [ $rc = 0 ] && echo "$out" | grep -q executed && [ "$lights" = 1 ]; then result agent-lights-executed PASS "$out; plant office-lights.on=$lights"
else result agent-lights-executed FAIL "rc=$rc $out; plant office-lights.on=$lights"; fi
out=$(as_agent redlinectl approvals list 2>&1); rc=$?
if [ $rc != 0 ]; then result agent-refused-on-operator-socket PASS "$(echo "$out" | head -1)"
else result agent-refused-on-operator-socket FAIL "agent listed approvals: $out"; fi
# E-2 expires a held request when its zone goes into alarm, and an unknown reading counts as an
# alarm (RL-0): hold the request only once every point reads good, so that an approval proves
# approval, not start-up. (If a reading goes bad after this, E-2 is right to expire it; the
# detail then says why, from the audit log.)
notgood() { as_operator redlinectl status 2>/dev/null | grep -o '[0-9]* */ *[0-9]* points not good' | cut -d/ -f1 | tr -d ' '; }
wait_for 60 test "$(notgood)" = 0
plant_before_hold="$(as_operator redlinectl status 2>&1 | grep -o '[0-9]* */ *[0-9]* points not good')"
held=$(as_agent redlinectl write sra-door.lock 1 2>&1); rid=$(echo "$held" | head -1 | cut -d: -f1)
listing=$(as_operator redlinectl approvals list 2>&1); rc=$?
if [ $rc = 0 ] && echo "$listing" | grep -q "$rid"; then result operator-lists PASS "alice (uid $(id -u alice), in redline-operators) sees $rid"
else result operator-lists FAIL "rc=$rc held='$held' listing='$listing'"; fi
out=$(as_operator redlinectl approvals approve "$rid" 2>&1); rc=$?
wait_for 10 test "$(plant sra-door.lock)" = 1
door=$(plant sra-door.lock)
if [ $rc = 0 ] && [ "$door" = 1 ]; then result operator-approves PASS "approved $rid: $out; door locked (plant sra-door.lock=$door; held at $plant_before_hold)"
else
    why=$(grep -h "\"$rid\"" /var/lib/redline/audit.jsonl* 2>/dev/null | grep -o '"why":"[^"]*"\|"reason":"[^"]*"' | tail -2 | tr '\n' ' ')
    result operator-approves FAIL "rc=$rc $out; plant sra-door.lock=$door; before the hold: $plant_before_hold; audit: $why; now: $(as_operator redlinectl status 2>&1 | tr '\n' ' ' | cut -c1-300)"
fi
# Under the unit's ProtectProc=default/ProcSubset=pid, admission by the operator's group (not uid)
# is what let alice in: the site lists only {gid: redline-operators}.
check operator-admission-by-group "site operators: only {gid: $OPGID}; alice admitted by supplementary group under ProtectProc=$(systemctl show -p ProtectProc --value redlined)" -- \
    sh -c "grep -q '{gid: $OPGID}' /etc/redline/site.yaml && ! grep -q 'uid: $(id -u alice)' /etc/redline/site.yaml && [ \"\$(id -g alice)\" != $OPGID ]"

# ---- the watchdog, and E-1 after the restart ------------------------------------------------------------
restarts0=$(systemctl show -p NRestarts --value redlined)
door_before=$(plant sra-door.lock)
kill -STOP "$MAINPID"
simctl plant.set '{"name":"fire-panel.alarm","value":1}' >/dev/null
if wait_for 30 sh -c "[ \"\$(systemctl show -p NRestarts --value redlined)\" -gt $restarts0 ] && systemctl is-active --quiet redlined"; then
    newpid=$(systemctl show -p MainPID --value redlined)
    why=$(journalctl -b -u redlined --no-pager | grep -m1 -o 'Watchdog timeout[^.]*')
    result watchdog-restart PASS "SIGSTOP of $MAINPID: ${why:-restarted}; new pid $newpid, NRestarts $(systemctl show -p NRestarts --value redlined)"
else
    result watchdog-restart FAIL "NRestarts $(systemctl show -p NRestarts --value redlined), $(systemctl is-active redlined)"
fi
if [ "$door_before" != 1 ]; then
    result e1-door-released FAIL "the door was not locked before the SIGSTOP (sra-door.lock=$door_before): nothing to prove"
elif wait_for 30 test "$(plant sra-door.lock)" = 0; then
    result e1-door-released PASS "fire alarm in the sim; after the restart the door is released (plant sra-door.lock=$(plant sra-door.lock))"
else
    result e1-door-released FAIL "plant sra-door.lock=$(plant sra-door.lock), fire-panel.alarm=$(plant fire-panel.alarm)"
fi
check no-sys-kills-after-restart "still no status=31/SYS" -- test "$(journal_sys_kills)" = 0
simctl plant.reset >/dev/null

# ---- systemd-analyze security -----------------------------------------------------------------------------
score=$(systemd-analyze security redlined.service --no-pager 2>/dev/null | sed -n 's/.*Overall exposure level for redlined.service: \([0-9.]*\).*/\1/p')
if [ -n "$score" ] && awk "BEGIN{exit !($score <= 2.0)}"; then result security-score PASS "systemd-analyze security: $score"
else result security-score FAIL "score '$score'"; fi

# ---- udev rules from a site, applied by the real systemd-udevd (issue 13) --------------------------------
# Three gpio-sim chips (the GPIO rig's module, built for this kernel) and QEMU's second serial port
# (/dev/ttyS1). udev-site.yaml names ttyS1, chip A by its label and chip B by its device name;
# chip C is named by no site.
modprobe configfs 2>/dev/null
mountpoint -q /sys/kernel/config || mount -t configfs none /sys/kernel/config
CFG=/sys/kernel/config/gpio-sim/redline-udev
gpiosim_err=$(insmod "$P/gpio-sim-oot.ko" 2>&1 && mkdir "$CFG" && for b in a b c; do
    mkdir "$CFG/bank-$b" && echo 8 >"$CFG/bank-$b/num_lines" && echo "redline-udev-bank-$b" >"$CFG/bank-$b/label" || exit 1
done && echo 1 >"$CFG/live" 2>&1)
udevadm settle
chipA=$(cat "$CFG/bank-a/chip_name" 2>/dev/null); chipB=$(cat "$CFG/bank-b/chip_name" 2>/dev/null); chipC=$(cat "$CFG/bank-c/chip_name" 2>/dev/null)
modes() { for n in "$@"; do printf '%s=%s ' "$n" "$(stat -c '%U:%G %a' "/dev/$n" 2>&1)"; done; }
if [ -n "$chipA" ] && [ -c "/dev/$chipA" ] && [ -c "/dev/$chipB" ] && [ -c "/dev/$chipC" ] && [ -c /dev/ttyS1 ]; then
    result udev-devices PASS "gpio-sim chips $chipA (redline-udev-bank-a), $chipB, $chipC; $(dmesg | grep -m1 -o 'ttyS1 at [^,]*, [^)]*' || echo ttyS1)"
else
    result udev-devices FAIL "gpio-sim: ${gpiosim_err:-?}; chips '$chipA' '$chipB' '$chipC'; $(ls -l /dev/ttyS1 2>&1)"
fi
as_service() { setpriv --reuid _redline --regid _redline --init-groups -- "$@"; }
opens() { timeout 10 setpriv --reuid "$1" --regid "$1" --init-groups -- sh -c 'exec 3<"$0"' "$2" 2>/dev/null; }   # user node
# Negative control: without the rules the kernel's and Debian's defaults hold (root:root 0600 for
# a chip, root:dialout 0660 for a serial port): not the service group, and the service user
# cannot open chip A.
before=$(modes "$chipA" "$chipB" ttyS1)
if ! echo "$before" | grep -q 'root:_redline 660' && ! as_service redlinectl gpio-label "/dev/$chipA" >/dev/null 2>&1; then
    result udev-negative-control PASS "without the rules: $before; _redline cannot open /dev/$chipA"
else
    result udev-negative-control FAIL "without the rules: $before; _redline gpio-label: $(as_service redlinectl gpio-label "/dev/$chipA" 2>&1)"
fi
sed "s/GPIOCHIP_B/$chipB/" "$P/udev-site.yaml" >/etc/redline/udev-site.yaml
redlinectl udev-rules /etc/redline/udev-site.yaml >/etc/udev/rules.d/60-redline.rules 2>/tmp/udev.err
check udev-rules-generated "redlinectl udev-rules: $(grep -vc '^#' /etc/udev/rules.d/60-redline.rules) rules (ttyS1, label redline-udev-bank-a, $chipB)" -- \
    sh -c "grep -q 'KERNEL==\"ttyS1\", OWNER=\"root\", GROUP=\"_redline\", MODE=\"0660\"' /etc/udev/rules.d/60-redline.rules && grep -q 'RESULT==\"redline-udev-bank-a\"' /etc/udev/rules.d/60-redline.rules && grep -q 'KERNEL==\"$chipB\"' /etc/udev/rules.d/60-redline.rules || { cat /tmp/udev.err /etc/udev/rules.d/60-redline.rules; exit 1; }"
udevadm control --reload && udevadm trigger --subsystem-match=gpio --subsystem-match=tty && udevadm settle
after=$(modes "$chipA" "$chipB" ttyS1)
if [ "$after" = "$chipA=root:_redline 660 $chipB=root:_redline 660 ttyS1=root:_redline 660 " ]; then
    result udev-rules-applied PASS "after reload, trigger, settle: $after"
else
    result udev-rules-applied FAIL "after reload, trigger, settle: $after; $(journalctl -b -u systemd-udevd --no-pager 2>/dev/null | tail -3 | tr '\n' ' ')"
fi
check udev-unnamed-chip-untouched "$(modes "$chipC")(named by no site)" -- test "$(stat -c '%U:%G %a' "/dev/$chipC")" = "root:root 600"
lab=$(as_service redlinectl gpio-label "/dev/$chipA" 2>&1)
if [ "$lab" = redline-udev-bank-a ] && opens _redline /dev/ttyS1 && ! as_agent redlinectl gpio-label "/dev/$chipA" >/dev/null 2>&1 \
    && ! opens facility /dev/ttyS1 && ! opens facility "/dev/$chipB"; then
    result udev-service-only PASS "_redline opens /dev/$chipA (label $lab) and /dev/ttyS1; the agent facility opens neither, nor /dev/$chipB"
else
    result udev-service-only FAIL "_redline: '$lab'; agent: $(as_agent redlinectl gpio-label "/dev/$chipA" 2>&1)"
fi
# host-check's device probe agrees (the agent opens none of the host's serial lines and chips),
# and the README's group advice holds for the agent (no dialout, gpio, i2c, spi, service group).
# One line per node the agent tried to open, and one for its groups; every one must be ok, and
# the site's three nodes must be among them.
hc=$(redlinectl host-check --only devices,groups /etc/redline/udev-site.yaml 2>&1 | grep -E 'cannot open /(dev|sys)/|is in no privileged group')
hc_bad=$(echo "$hc" | grep -vc '^ok ')
hc_named=$(echo "$hc" | grep -c -E "cannot open /dev/($chipA|$chipB|ttyS1) ")
if [ "$hc_bad" = 0 ] && [ "$hc_named" = 3 ] && echo "$hc" | grep -q 'is in no privileged group'; then
    result udev-host-check PASS "$(echo "$hc" | grep -c 'cannot open') nodes refused to the agent (the site's $chipA, $chipB, ttyS1 among them); $(echo "$hc" | grep 'privileged group' | tr -s ' ')"
else
    result udev-host-check FAIL "$hc_bad not ok, $hc_named of the site's nodes probed: $(echo "$hc" | tr '\n' ';' | tr -s ' ' | cut -c1-400)"
fi
rm -f /etc/udev/rules.d/60-redline.rules

# ---- the firewall include (issue 13's packaging part) ---------------------------------------------------
redlinectl firewall /etc/redline/site.yaml >/etc/redline/nftables.conf 2>/tmp/fw.err
grep -q '^include "/etc/redline/nftables.conf"' /etc/nftables.conf || echo 'include "/etc/redline/nftables.conf"' >>/etc/nftables.conf
systemctl restart nftables
direct=$(as_agent timeout 3 bash -c 'exec 3<>/dev/tcp/127.0.0.1/15032' 2>&1 && echo connected || echo refused)
if systemctl is-active --quiet nftables && nft list table inet redline >/dev/null 2>&1 && [ "$direct" != connected ]; then
    result nftables-include PASS "nftables.service loads /etc/redline/nftables.conf; the agent's direct connect to 127.0.0.1:15032 fails"
else
    result nftables-include FAIL "nftables $(systemctl is-active nftables), direct=$direct $(tail -2 /tmp/fw.err)"
fi
check daemon-after-firewall "redlined still reaches its devices (lights write executed)" -- \
    sh -c 'setpriv --reuid facility --regid facility --init-groups -- redlinectl write office-lights.on 0 | grep -q executed'

# ---- upgrade ---------------------------------------------------------------------------------------------------
AUDIT=/var/lib/redline/audit.jsonl
before=$(cat $AUDIT* | wc -l)
head_before=$(tail -1 $AUDIT)
echo 'REDLINED_OPTS="--log-level notice"' >>/etc/redline/redlined.conf
sum_site=$(sha256sum </etc/redline/site.yaml); sum_conf=$(sha256sum </etc/redline/redlined.conf)
check dpkg-upgrade "dpkg -i $(basename "$DEB_NEW")" -- dpkg -i "$P/$DEB_NEW"
check upgrade-version "redline $(dpkg-query -W -f='${Version}' redline) installed" -- test "$(dpkg-query -W -f='${Version}' redline)" = "$VERSION_NEW"
check upgrade-keeps-etc "site.yaml and the edited conffile unchanged" -- \
    sh -c "[ \"\$(sha256sum </etc/redline/site.yaml)\" = '$sum_site' ] && [ \"\$(sha256sum </etc/redline/redlined.conf)\" = '$sum_conf' ]"
check upgrade-restarts "redlined active again after the upgrade" -- wait_for 60 systemctl is-active --quiet redlined
as_agent redlinectl write office-lights.on 1 >/dev/null 2>&1
sleep 1
after=$(cat $AUDIT* | wc -l)
if grep -qF "$head_before" $AUDIT* && [ "$after" -gt "$before" ] && out=$(redlinectl audit verify $(ls -tr $AUDIT*) 2>&1); then
    result upgrade-audit-chain PASS "$before -> $after records, verify: $(echo "$out" | tail -1)"
else
    result upgrade-audit-chain FAIL "$before -> $after records; $(redlinectl audit verify $(ls -tr $AUDIT*) 2>&1 | tail -2)"
fi

# ---- remove and purge ---------------------------------------------------------------------------------------------
dpkg -r redline-sim >/dev/null 2>&1
check dpkg-remove "dpkg -r redline" -- dpkg -r redline
check remove-stops "redlined stopped, unit gone, binaries gone" -- \
    sh -c '! systemctl is-active --quiet redlined && [ "$(systemctl show -p LoadState --value redlined)" = not-found ] && ! test -e /usr/sbin/redlined && ! pgrep -x redlined'
check remove-keeps "conffile, site and audit log kept after remove" -- test -f /etc/redline/redlined.conf -a -f /etc/redline/site.yaml -a -s $AUDIT
dpkg --purge redline >/dev/null 2>&1
check purge "purge: conffiles gone; the audit log and the integrator's site kept" -- \
    sh -c "! test -e /etc/redline/redlined.conf && test -s $AUDIT && test -f /etc/redline/site.yaml"

echo "SYSTEMDVM-DONE $pass passed, $fail failed"
