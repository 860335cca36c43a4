#!/usr/bin/env python3
"""Parses redline's Prometheus text with prometheus_client's own text-format parser and checks
it against the daemon's `status` answer (issue 16, item 5; MetricsTests in EndToEndTests).

    check_metrics.py METRICS_FILE STATUS_JSON_FILE

Exits 0 and prints a JSON summary (the samples by family) when every check passes; exits 1
with the failures on stderr otherwise. Exits 2 when prometheus_client is missing: run
scripts/setup.sh (a missing parser is a failure, never a skip).
"""
import json
import sys

try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError as e:  # pragma: no cover
    print(f"prometheus_client is not installed ({e}); run scripts/setup.sh", file=sys.stderr)
    sys.exit(2)

EXPECTED = {
    # family name as the parser reports it -> (type, label names)
    "redline_ready": ("gauge", set()),
    "redline_build_info": ("gauge", {"version"}),
    "redline_decisions": ("counter", {"outcome", "rule", "agent"}),
    "redline_approvals_pending": ("gauge", set()),
    "redline_scan_duration_seconds": ("gauge", {"bus"}),
    "redline_device_up": ("gauge", {"device"}),
    "redline_zone_condition": ("gauge", {"zone", "condition"}),
    "redline_agent_quarantined": ("gauge", {"agent"}),
    "redline_effect_active": ("gauge", {"effect", "zone"}),
    "redline_audit_fsync_duration_seconds": ("gauge", set()),
}
FORBIDDEN_LABELS = {"reason", "explanation", "why", "cause", "causes", "requestId", "request_id", "error"}


def main():
    text = open(sys.argv[1], encoding="utf-8").read()
    status = json.load(open(sys.argv[2], encoding="utf-8"))
    failures = []
    families = {f.name: f for f in text_string_to_metric_families(text)}

    for name, (typ, labels) in EXPECTED.items():
        f = families.get(name)
        if f is None:
            failures.append(f"family {name} missing")
            continue
        if f.type != typ:
            failures.append(f"{name}: type {f.type}, expected {typ}")
        if not f.documentation:
            failures.append(f"{name}: no HELP text")
        for s in f.samples:
            if set(s.labels) != labels:
                failures.append(f"{s.name}: labels {sorted(s.labels)}, expected {sorted(labels)}")
            if set(s.labels) & FORBIDDEN_LABELS:
                failures.append(f"{s.name}: forbidden label in {sorted(s.labels)}")
    for name in families:
        if name not in EXPECTED:
            failures.append(f"unexpected family {name}")

    def samples(name, suffix=""):
        f = families.get(name)
        return [s for s in (f.samples if f else []) if s.name == name + suffix]

    ready = samples("redline_ready")
    expect_ready = 1.0 if status.get("ready") is True else 0.0
    if [s.value for s in ready] != [expect_ready]:
        failures.append(f"redline_ready {[s.value for s in ready]}, status ready {status.get('ready')}")
    info = samples("redline_build_info")
    if [s.labels.get("version") for s in info] != [status.get("version")]:
        failures.append(f"redline_build_info {[s.labels for s in info]}, status version {status.get('version')}")

    # Decisions: by outcome (and by rule for denials) they sum to the status counters.
    decisions = samples("redline_decisions", "_total")
    counters = status.get("counters", {})
    by_outcome = {}
    denied_by_rule = {}
    for s in decisions:
        by_outcome[s.labels["outcome"]] = by_outcome.get(s.labels["outcome"], 0) + s.value
        if s.labels["outcome"] == "denied":
            denied_by_rule[s.labels["rule"]] = denied_by_rule.get(s.labels["rule"], 0) + s.value
    for outcome in ["executed", "held", "failed", "withheld", "busy", "expired"]:
        if by_outcome.get(outcome, 0) != counters.get(outcome):
            failures.append(f"decisions {outcome}: {by_outcome.get(outcome, 0)} in the metrics, {counters.get(outcome)} in status")
    status_denied = {k: float(v) for k, v in counters.get("denied", {}).items()}
    if denied_by_rule != status_denied:
        failures.append(f"denied by rule: {denied_by_rule} in the metrics, {status_denied} in status")
    decisions_status = {(d["outcome"], d["rule"], d["agent"]): float(d["count"]) for d in status.get("decisions", [])}
    decisions_metrics = {(s.labels["outcome"], s.labels["rule"], s.labels["agent"]): s.value for s in decisions}
    if decisions_status != decisions_metrics:
        failures.append(f"decisions: {decisions_metrics} in the metrics, {decisions_status} in status")

    pending = samples("redline_approvals_pending")
    if [s.value for s in pending] != [float(status.get("pendingApprovals", -1))]:
        failures.append(f"redline_approvals_pending {[s.value for s in pending]}, status {status.get('pendingApprovals')}")

    up = {s.labels["device"]: s.value for s in samples("redline_device_up")}
    want_up = {d["id"]: 1.0 if d["up"] else 0.0 for d in status.get("devices", [])}
    if up != want_up:
        failures.append(f"redline_device_up {up}, status {want_up}")
    q = {s.labels["agent"]: s.value for s in samples("redline_agent_quarantined")}
    want_q = {a["name"]: 1.0 if a["quarantined"] else 0.0 for a in status.get("agents", [])}
    if q != want_q:
        failures.append(f"redline_agent_quarantined {q}, status {want_q}")
    zones = {(s.labels["zone"], s.labels["condition"]): s.value for s in samples("redline_zone_condition")}
    want_zones = {}
    for z in status.get("zones", []):
        for field, label in [("occupied", "occupied"), ("inAlarm", "in-alarm"), ("hazard", "hazard")]:
            want_zones[(z["id"], label)] = 1.0 if z[field] else 0.0
    if zones != want_zones:
        failures.append(f"redline_zone_condition {zones}, status {want_zones}")
    buses = {s.labels["bus"] for s in samples("redline_scan_duration_seconds")}
    want_buses = {b["id"] for b in status.get("buses", []) if b.get("lastScanS") is not None}
    if buses != want_buses or not buses:
        failures.append(f"redline_scan_duration_seconds for {sorted(buses)}, status has durations for {sorted(want_buses)}")
    for s in samples("redline_scan_duration_seconds") + samples("redline_audit_fsync_duration_seconds"):
        if not (0 <= s.value < 60):
            failures.append(f"{s.name}{s.labels} = {s.value}: not a duration in seconds")

    if failures:
        for f in failures:
            print("FAIL:", f, file=sys.stderr)
        sys.exit(1)
    summary = {name: [[s.name, s.labels, s.value] for s in f.samples] for name, f in families.items()}
    print(json.dumps(summary, sort_keys=True))


if __name__ == "__main__":
    main()
