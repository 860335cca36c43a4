import Prometheus
import RedlineCore

/// The metrics of a daemon, in the Prometheus text exposition format (version 0.0.4), from
/// one `status` answer (docs/DESIGN.md §8.1). Pure: the same status gives the same metrics,
/// whether `redlined --metrics-textfile` renders its own status or `redlinectl metrics` the
/// one the operator socket sent.
///
/// Each family is emitted by swift-prometheus (`PrometheusCollectorRegistry`), which writes
/// the HELP and TYPE lines and escapes label values (backslash, double quote, line feed).
/// Families come in a fixed order, one registry each. Labels carry names only (zones,
/// devices, buses, agents, rules, outcomes, effects, the version): never a reason, an
/// explanation, a cause or a request id, which would be unbounded and may be agent text.
public enum MetricsText {
    /// Every family, with its type and label names, in the order they are emitted.
    public static let families: [(name: String, type: String, labels: [String])] = [
        ("redline_ready", "gauge", []),
        ("redline_build_info", "gauge", ["version"]),
        ("redline_decisions_total", "counter", ["outcome", "rule", "agent"]),
        ("redline_approvals_pending", "gauge", []),
        ("redline_scan_duration_seconds", "gauge", ["bus"]),
        ("redline_device_up", "gauge", ["device"]),
        ("redline_zone_condition", "gauge", ["zone", "condition"]),
        ("redline_agent_quarantined", "gauge", ["agent"]),
        ("redline_effect_active", "gauge", ["effect", "zone"]),
        ("redline_audit_fsync_duration_seconds", "gauge", []),
    ]

    /// The HELP text of each family.
    public static let help: [String: String] = [
        "redline_ready": "1 when redlined has completed a full scan and accepts agent writes",
        "redline_decisions_total": "Agent write decisions by outcome, red line or policy rule (empty when none) and agent",
        "redline_build_info": "The redlined build (always 1; the version is a label)",
        "redline_approvals_pending": "Agent requests held for an operator",
        "redline_scan_duration_seconds": "How long the bus's last scan took, in seconds",
        "redline_device_up": "1 while every point of the device reads good, 0 while it is faulted or not yet scanned",
        "redline_zone_condition": "1 while the zone's condition holds (occupied, in-alarm, hazard)",
        "redline_agent_quarantined": "1 while the agent is quarantined after repeated red-line denials",
        "redline_effect_active": "1 while the safe-state effect is engaged in the zone",
        "redline_audit_fsync_duration_seconds": "How long the audit log's last fdatasync took, in seconds",
    ]

    static func descriptor(_ name: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: name, unitName: "", helpText: help[name] ?? name)
    }

    /// The zone conditions, as `status` names them and as the `condition` label says them.
    static let conditions: [(field: String, label: String)] = [("occupied", "occupied"), ("inAlarm", "in-alarm"), ("hazard", "hazard")]

    public static func render(status: JSON) -> String { String(decoding: renderBytes(status: status), as: UTF8.self) }

    public static func renderBytes(status s: JSON) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(8192)
        func family(_ fill: (PrometheusCollectorRegistry) -> Void) {
            let r = PrometheusCollectorRegistry()
            fill(r)
            r.emit(into: &out)
        }
        func bit(_ v: JSON?) -> Double { v?.boolValue == true ? 1 : 0 }
        func str(_ v: JSON?) -> String { v?.stringValue ?? "" }

        // Unknown is unsafe: a status without `ready: true` is not ready.
        family { $0.makeGauge(descriptor: Self.descriptor("redline_ready")).set(to: bit(s["ready"])) }
        family {
            $0.makeGauge(descriptor: Self.descriptor("redline_build_info"), labels: [("version", s["version"]?.stringValue ?? "unknown")]).set(to: 1)
        }
        family { r in
            for d in s["decisions"]?.arrayValue ?? [] {
                guard let n = d["count"]?.numberValue, n >= 0, n < 9e15, n == n.rounded() else { continue }
                r.makeCounter(descriptor: Self.descriptor("redline_decisions_total"),
                              labels: [("outcome", str(d["outcome"])), ("rule", str(d["rule"])), ("agent", str(d["agent"]))])
                    .increment(by: Int64(n))
            }
        }
        family { r in
            if let n = s["pendingApprovals"]?.numberValue {
                r.makeGauge(descriptor: Self.descriptor("redline_approvals_pending")).set(to: n)
            }
        }
        family { r in
            for b in s["buses"]?.arrayValue ?? [] {
                guard let t = b["lastScanS"]?.numberValue else { continue }
                r.makeGauge(descriptor: Self.descriptor("redline_scan_duration_seconds"), labels: [("bus", str(b["id"]))]).set(to: t)
            }
        }
        family { r in
            for d in s["devices"]?.arrayValue ?? [] {
                r.makeGauge(descriptor: Self.descriptor("redline_device_up"), labels: [("device", str(d["id"]))]).set(to: bit(d["up"]))
            }
        }
        family { r in
            for z in s["zones"]?.arrayValue ?? [] {
                for c in conditions {
                    r.makeGauge(descriptor: Self.descriptor("redline_zone_condition"), labels: [("zone", str(z["id"])), ("condition", c.label)]).set(to: bit(z[c.field]))
                }
            }
        }
        family { r in
            for a in s["agents"]?.arrayValue ?? [] {
                r.makeGauge(descriptor: Self.descriptor("redline_agent_quarantined"), labels: [("agent", str(a["name"]))]).set(to: bit(a["quarantined"]))
            }
        }
        family { r in
            for e in s["effects"]?.arrayValue ?? [] {
                r.makeGauge(descriptor: Self.descriptor("redline_effect_active"), labels: [("effect", str(e["effect"])), ("zone", str(e["zone"]))]).set(to: bit(e["active"]))
            }
        }
        family { r in
            if let t = s["audit"]?["lastFsyncS"]?.numberValue {
                r.makeGauge(descriptor: Self.descriptor("redline_audit_fsync_duration_seconds")).set(to: t)
            }
        }
        return out
    }
}
