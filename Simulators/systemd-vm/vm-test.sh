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
check dpkg-install "dpkg -i $(basename "$DEB")" -- dpkg -i "$P/$DEB"
check accounts "sysusers: _redline $(id -u _redline 2>/dev/null), groups redline-agents, redline-operators" -- \
    sh -c 'u=$(id -u _redline) && [ "$u" -lt 1000 ] && [ "$u" -gt 0 ] && getent group redline-agents && getent group redline-operators && test -d /var/lib/redline && [ "$(stat -c %U:%a /var/lib/redline)" = _redline:750 ]'
check no-start-without-site "redlined inactive and not enabled after install" -- \
    sh -c '! systemctl is-active --quiet redlined && ! systemctl is-enabled --quiet redlined && systemctl cat redlined >/dev/null'
check no-usr-local "no file of the package under /usr/local" -- sh -c '! dpkg -L redline | grep -q "^/usr/local"'
# (in the package: the rig's minimal image has dpkg path-exclude=/usr/share/man/*, so not on disk)
check man-pages "redlined.8.gz and redlinectl.1.gz in the package" -- \
    sh -c "dpkg-deb -c '$P/$DEB' | grep -q 'usr/share/man/man8/redlined.8.gz' && dpkg-deb -c '$P/$DEB' | grep -q 'usr/share/man/man1/redlinectl.1.gz'"

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
[ -n "${SITE_TIMING:-}" ] && sed -i "s/^timing: .*/timing: $SITE_TIMING/" /etc/redline/site.yaml
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
held=$(as_agent redlinectl write sra-door.lock 1 2>&1); rid=$(echo "$held" | head -1 | cut -d: -f1)
listing=$(as_operator redlinectl approvals list 2>&1); rc=$?
if [ $rc = 0 ] && echo "$listing" | grep -q "$rid"; then result operator-lists PASS "alice (uid $(id -u alice), in redline-operators) sees $rid"
else result operator-lists FAIL "rc=$rc held='$held' listing='$listing'"; fi
out=$(as_operator redlinectl approvals approve "$rid" 2>&1); rc=$?
wait_for 10 test "$(plant sra-door.lock)" = 1
door=$(plant sra-door.lock)
if [ $rc = 0 ] && [ "$door" = 1 ]; then result operator-approves PASS "approved $rid: $out; door locked (plant sra-door.lock=$door)"
else result operator-approves FAIL "rc=$rc $out; plant sra-door.lock=$door"; fi
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
