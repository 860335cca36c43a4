import Foundation
import RedlineClient
import RedlineCore
import RedlineTestSupport
import Testing

/// Metrics for Prometheus users (issue 16, item 5): `redlined --metrics-textfile` and
/// `redlinectl metrics`, on a plant of their own (decisions change counters other suites read),
/// checked with prometheus_client's text-format parser (Tests/metrics/check_metrics.py).
@Suite("Metrics textfile and redlinectl metrics", .serialized, .enabled(if: uidAvailable, "needs root to connect as the agents' uids"))
struct MetricsTests {
    static let checker = TestPaths.packageRoot().appendingPathComponent("Tests/metrics/check_metrics.py").path

    /// Runs the checker on a metrics text and a status; returns its summary (family -> [[name, labels, value]]).
    static func check(metrics: String, status: JSON, in dir: TempDir, tag: String) throws -> JSON {
        let metricsFile = try dir.write("\(tag).prom", metrics)
        let statusFile = try dir.write("\(tag)-status.json", status.encoded())
        let r = try runDriver(driver: checker, arguments: [metricsFile, statusFile], stderrLog: dir.file("\(tag)-check.log"), timeout: 60)
        #expect(r.status == 0, "check_metrics.py on \(tag) (status \(r.status)):\n\(r.stderr)\n--- metrics:\n\(metrics)")
        guard r.status == 0 else { throw TestSupportError("\(tag): the metrics do not parse or do not match status") }
        return try JSON.parse(r.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    /// The value of one sample in a checker summary.
    static func value(_ summary: JSON, _ family: String, _ sample: String, _ labels: [String: String]) -> Double? {
        for s in summary[family]?.arrayValue ?? [] {
            guard let a = s.arrayValue, a.count == 3, a[0].stringValue == sample else { continue }
            let l = Dictionary(uniqueKeysWithValues: (a[1].objectValue ?? []).map { ($0.0, $0.1.stringValue ?? "") })
            if l == labels { return a[2].numberValue }
        }
        return nil
    }

    /// The decision counters of a summary, by "outcome rule agent".
    static func decisions(_ summary: JSON) -> [String: Double] {
        var out: [String: Double] = [:]
        for s in summary["redline_decisions"]?.arrayValue ?? [] {
            guard let a = s.arrayValue, a.count == 3, let l = a[1].objectValue else { continue }
            let d = Dictionary(uniqueKeysWithValues: l.map { ($0.0, $0.1.stringValue ?? "") })
            out["\(d["outcome"] ?? "") \(d["rule"] ?? "") \(d["agent"] ?? "")"] = a[2].numberValue
        }
        return out
    }

    @Test("the textfile and redlinectl metrics parse with prometheus_client and match status after executed, denied and held writes")
    func textfileMatchesStatus() throws {
        let out = TempDir(prefix: "rlmetrics")
        let textfile = out.file("redline.prom")
        let s = try PlantAndDaemon(daemonArgs: ["--metrics-textfile", textfile, "--metrics-interval-ms", "200"])
        let c = try s.agent(uid: 2001)
        defer { c.close() }
        #expect(try c.write("office-lights.on", 1)["outcome"]?.stringValue == "executed")
        #expect(try c.write("dispatch.cancel", 1)["rule"]?.stringValue == "RL-2")
        #expect(try c.write("sra-door.lock", 1)["outcome"]?.stringValue == "held")

        // A file written after the decisions: two more writes than now (the first may have rendered before them).
        let writes = Int(try s.operatorCall("status")["counters"]?["metricsWrites"]?.numberValue ?? 0)
        let deadline = Date().addingTimeInterval(15)
        while Date() < deadline, Int(try s.operatorCall("status")["counters"]?["metricsWrites"]?.numberValue ?? 0) < writes + 2 {
            usleep(50_000)
        }
        let status = try s.operatorCall("status")
        #expect(Int(status["counters"]?["metricsWrites"]?.numberValue ?? 0) >= writes + 2, "the textfile is written after scans")
        #expect(status["counters"]?["metricsWriteFailures"]?.numberValue == 0)
        #expect(!FileManager.default.fileExists(atPath: textfile + ".tmp"), "the temporary file was renamed over the textfile")
        let text = try String(contentsOfFile: textfile, encoding: .utf8)
        let mode = (try FileManager.default.attributesOfItem(atPath: textfile)[.posixPermissions] as? NSNumber)?.intValue
        #expect(mode == 0o644, "node_exporter (another user) can read the textfile: mode \(String(mode ?? 0, radix: 8))")
        let file = try Self.check(metrics: text, status: status, in: out, tag: "textfile")
        let agent = "facilities-agent"
        #expect(Self.value(file, "redline_ready", "redline_ready", [:]) == 1)
        #expect(Self.value(file, "redline_approvals_pending", "redline_approvals_pending", [:]) == 1)
        #expect(Self.value(file, "redline_decisions", "redline_decisions_total", ["outcome": "executed", "rule": "", "agent": agent]) == 1)
        #expect(Self.value(file, "redline_decisions", "redline_decisions_total", ["outcome": "denied", "rule": "RL-2", "agent": agent]) == 1)
        #expect(Self.value(file, "redline_decisions", "redline_decisions_total", ["outcome": "held", "rule": "", "agent": agent]) == 1)
        #expect(Self.value(file, "redline_build_info", "redline_build_info", ["version": BuildInfo.version]) == 1)
        #expect(Self.value(file, "redline_device_up", "redline_device_up", ["device": "office-lights"]) == 1)
        #expect(Self.value(file, "redline_agent_quarantined", "redline_agent_quarantined", ["agent": agent]) == 0)
        #expect(Self.value(file, "redline_effect_active", "redline_effect_active", ["effect": "E-1", "zone": "server-room-a"]) == 0)
        #expect(file["redline_audit_fsync_duration_seconds"]?.arrayValue?.count == 1, "the audit log fsyncs, and its duration is shown")
        #expect(!text.contains("=\"r-"), "no request id in a label")

        // redlinectl metrics: the same renderer over the operator socket's status.
        let ctl = try runCtl(["metrics", "--socket", s.operatorSocket])
        #expect(ctl.status == 0, "\(ctl.output)")
        let status2 = try s.operatorCall("status")
        let viaCtl = try Self.check(metrics: ctl.output, status: status2, in: out, tag: "redlinectl")
        #expect(Self.decisions(viaCtl) == Self.decisions(file), "no decision since: the same counters")
        #expect(Self.value(viaCtl, "redline_approvals_pending", "redline_approvals_pending", [:]) == 1)

        // An operator's denial is counted as a decision of its own (rule "operator"), and pending drops to 0.
        let rid = try #require(try s.operatorCall("approvals.list")["approvals"]?.arrayValue?.first?["requestId"]?.stringValue)
        _ = try s.operatorCall("approvals.deny", ["requestId": .string(rid), "reason": "metrics test"])
        let ctl2 = try runCtl(["metrics", "--socket", s.operatorSocket])
        let after = try Self.check(metrics: ctl2.output, status: try s.operatorCall("status"), in: out, tag: "after-deny")
        #expect(Self.value(after, "redline_decisions", "redline_decisions_total", ["outcome": "denied", "rule": "operator", "agent": agent]) == 1)
        #expect(Self.value(after, "redline_approvals_pending", "redline_approvals_pending", [:]) == 0)
        #expect(!ctl2.output.contains("metrics test"), "the operator's reason is not a label")

        // A clean stop leaves a last file that says not ready.
        s.stopDaemon()
        let last = try String(contentsOfFile: textfile, encoding: .utf8)
        #expect(last.contains("\nredline_ready 0.0\n"), "\(last)")
    }

    @Test("redlined --help documents the flags; redlined and redlinectl --version say the status's version")
    func helpAndVersion() throws {
        let exe = try #require(TestPaths.executable("redlined"))
        let help = try ThinExecutablesTests.run(exe, ["--help"])
        for needle in ["--metrics-textfile <PATH>", "--metrics-interval-ms <MS>", "(default: 1000)", "redlinectl metrics"] {
            #expect(help.output.contains(needle), "\(needle) missing from redlined --help")
        }
        #expect(try ThinExecutablesTests.run(exe, ["--version"]).output == BuildInfo.version + "\n")
        #expect(try runCtl(["--version"]).output == BuildInfo.version + "\n")
        #expect(try runCtl(["metrics", "--help"]).output.contains("redline_decisions_total{outcome,rule,agent}"))
    }

    @Test("a textfile that cannot be written is logged and counted, and the daemon goes on deciding")
    func unwritableTextfile() throws {
        let s = try PlantAndDaemon(daemonArgs: ["--metrics-textfile", "/nonexistent-redline-metrics/redline.prom", "--metrics-interval-ms", "100"])
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline, (try s.operatorCall("status")["counters"]?["metricsWriteFailures"]?.numberValue ?? 0) < 2 {
            usleep(50_000)
        }
        let status = try s.operatorCall("status")
        #expect((status["counters"]?["metricsWriteFailures"]?.numberValue ?? 0) >= 2, "\(status["counters"]?.encoded() ?? "")")
        #expect(status["counters"]?["metricsWrites"]?.numberValue == 0)
        #expect(status["ready"]?.boolValue == true)
        let c = try s.agent(uid: 2001)
        defer { c.close() }
        #expect(try c.write("office-lights.on", 1)["outcome"]?.stringValue == "executed")
        let log = s.daemon.stderr
        #expect(log.contains("metrics textfile not written"), "\(log)")
        #expect(log.components(separatedBy: "metrics textfile not written").count == 2, "logged once while the error lasts")
    }
}
