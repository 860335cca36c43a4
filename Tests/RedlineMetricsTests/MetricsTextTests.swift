import RedlineCore
import RedlineMetrics
import Testing

/// One sample line of the text format, read back strictly (name, labels with their escapes undone, value).
struct Sample: Equatable {
    var name: String
    var labels: [String: String]
    var value: Double
}

/// Reads the exposition text: HELP and TYPE lines by family, samples in order. Throws on a line
/// the format does not allow (an unescaped quote or line feed in a label value would make one).
func parse(_ text: String) throws -> (help: [String: String], type: [String: String], samples: [Sample]) {
    struct Bad: Error, CustomStringConvertible { var description: String }
    var help: [String: String] = [:], type: [String: String] = [:], samples: [Sample] = []
    #expect(text.isEmpty || text.hasSuffix("\n"), "the text ends with a line feed")
    for line in text.split(separator: "\n", omittingEmptySubsequences: false).dropLast() {
        if line.hasPrefix("# HELP ") {
            let rest = line.dropFirst(7)
            let name = rest.prefix { $0 != " " }
            help[String(name)] = String(rest.dropFirst(name.count + 1))
            continue
        }
        if line.hasPrefix("# TYPE ") {
            let parts = line.dropFirst(7).split(separator: " ")
            guard parts.count == 2 else { throw Bad(description: "bad TYPE line: \(line)") }
            type[String(parts[0])] = String(parts[1])
            continue
        }
        var chars = Array(line)
        var i = 0
        var name = ""
        while i < chars.count, chars[i] != "{", chars[i] != " " { name.append(chars[i]); i += 1 }
        var labels: [String: String] = [:]
        if i < chars.count, chars[i] == "{" {
            i += 1
            while i < chars.count, chars[i] != "}" {
                var key = ""
                while i < chars.count, chars[i] != "=" { key.append(chars[i]); i += 1 }
                guard i + 1 < chars.count, chars[i + 1] == "\"" else { throw Bad(description: "no quote after \(key)= in \(line)") }
                i += 2
                var value = ""
                while i < chars.count, chars[i] != "\"" {
                    if chars[i] == "\\" {
                        guard i + 1 < chars.count else { throw Bad(description: "dangling escape in \(line)") }
                        switch chars[i + 1] {
                        case "\\": value.append("\\")
                        case "\"": value.append("\"")
                        case "n": value.append("\n")
                        default: throw Bad(description: "unknown escape in \(line)")
                        }
                        i += 2
                    } else { value.append(chars[i]); i += 1 }
                }
                guard i < chars.count else { throw Bad(description: "unterminated label value in \(line)") }
                i += 1
                labels[key] = value
                if i < chars.count, chars[i] == "," { i += 1 }
            }
            guard i < chars.count else { throw Bad(description: "unterminated labels in \(line)") }
            i += 1
        }
        guard i < chars.count, chars[i] == " " else { throw Bad(description: "no value in \(line)") }
        chars.removeFirst(i + 1)
        guard let v = Double(String(chars)) else { throw Bad(description: "bad value in \(line)") }
        samples.append(Sample(name: name, labels: labels, value: v))
    }
    return (help, type, samples)
}

/// A status as the daemon sends it, with text in every place a label must never take it from.
func sampleStatus(agent: String = "facilities-agent", ready: JSON = .bool(true)) -> JSON {
    .obj([
        ("site", "demo"), ("ready", ready), ("version", "0.1.0"),
        ("pendingApprovals", .number(2)),
        ("zones", .array([
            .obj([("id", "server-room-a"), ("occupied", .bool(true)), ("inAlarm", .bool(false)), ("hazard", .bool(true)),
                  ("causes", .array(["CAUSE-TEXT: suppression armed"]))]),
            .obj([("id", "office"), ("occupied", .bool(false)), ("inAlarm", .bool(true)), ("hazard", .bool(false)), ("causes", .array([]))]),
        ])),
        ("decisions", .array([
            .obj([("outcome", "executed"), ("rule", ""), ("agent", .string(agent)), ("count", .number(3))]),
            .obj([("outcome", "denied"), ("rule", "RL-2"), ("agent", .string(agent)), ("count", .number(1))]),
            .obj([("outcome", "held"), ("rule", ""), ("agent", "reporting-agent"), ("count", .number(5))]),
        ])),
        ("buses", .array([.obj([("id", "bus-a"), ("lastScanS", .number(0.0042))]), .obj([("id", "bus-b"), ("lastScanS", .null)])])),
        ("devices", .array([.obj([("id", "crac-1"), ("zone", "server-room-a"), ("up", .bool(true))]),
                            .obj([("id", "sra-door"), ("zone", "server-room-a"), ("up", .bool(false))])])),
        ("devicesFaulted", .obj([("sra-door", "WHY-TEXT: sra-door.locked: fault")])),
        ("agents", .array([.obj([("name", .string(agent)), ("quarantined", .bool(false))]),
                           .obj([("name", "reporting-agent"), ("quarantined", .bool(true))])])),
        ("agentsHeld", .obj([("sinceS", .number(3)), ("why", "ESCALATION-TEXT")])),
        ("effects", .array([.obj([("effect", "E-1"), ("zone", "office"), ("active", .bool(true))]),
                            .obj([("effect", "E-3"), ("zone", "office"), ("active", .bool(false))])])),
        ("audit", .obj([("writable", .bool(true)), ("error", "AUDIT-ERROR-TEXT"), ("lastFsyncS", .number(0.0015))])),
        ("requestHistory", .number(9)),
        ("lastRequest", .obj([("requestId", "r-ab12-7"), ("explanation", "EXPLANATION-TEXT")])),
    ])
}

@Suite("Prometheus text of a status")
struct MetricsTextTests {
    @Test("every family has HELP and TYPE lines, the expected name and type, and only its own labels")
    func namesTypesAndLabels() throws {
        let text = MetricsText.render(status: sampleStatus())
        let (help, type, samples) = try parse(text)
        let families = Dictionary(uniqueKeysWithValues: MetricsText.families.map { ($0.name, $0) })
        #expect(Set(type.keys) == Set(families.keys), "\(text)")
        for (name, f) in families {
            #expect(type[name] == f.type, "\(name)")
            #expect(!(help[name] ?? "").isEmpty, "\(name) has a HELP line")
        }
        #expect(!samples.isEmpty)
        for s in samples {
            let f = try #require(families[s.name], "sample of an unknown family: \(s.name)")
            #expect(Set(s.labels.keys) == Set(f.labels), "\(s.name) labels \(s.labels.keys.sorted())")
        }
        // HELP, then TYPE, then the family's samples, one family after another in the documented order.
        let heads = text.split(separator: "\n").filter { $0.hasPrefix("# TYPE ") }.map { String($0.split(separator: " ")[2]) }
        #expect(heads == MetricsText.families.map(\.name))
    }

    @Test("values come from the status: ready, decisions, pending, scans, devices, zones, quarantine, effects, fsync")
    func values() throws {
        let (_, _, samples) = try parse(MetricsText.render(status: sampleStatus()))
        func v(_ name: String, _ labels: [String: String] = [:]) -> Double? {
            samples.first { $0.name == name && $0.labels == labels }?.value
        }
        #expect(v("redline_ready") == 1)
        #expect(v("redline_build_info", ["version": "0.1.0"]) == 1)
        #expect(v("redline_decisions_total", ["outcome": "executed", "rule": "", "agent": "facilities-agent"]) == 3)
        #expect(v("redline_decisions_total", ["outcome": "denied", "rule": "RL-2", "agent": "facilities-agent"]) == 1)
        #expect(v("redline_decisions_total", ["outcome": "held", "rule": "", "agent": "reporting-agent"]) == 5)
        #expect(v("redline_approvals_pending") == 2)
        #expect(v("redline_scan_duration_seconds", ["bus": "bus-a"]) == 0.0042)
        #expect(samples.allSatisfy { !($0.name == "redline_scan_duration_seconds" && $0.labels["bus"] == "bus-b") },
                "a bus not scanned yet has no duration")
        #expect(v("redline_device_up", ["device": "crac-1"]) == 1)
        #expect(v("redline_device_up", ["device": "sra-door"]) == 0)
        #expect(v("redline_zone_condition", ["zone": "server-room-a", "condition": "occupied"]) == 1)
        #expect(v("redline_zone_condition", ["zone": "server-room-a", "condition": "in-alarm"]) == 0)
        #expect(v("redline_zone_condition", ["zone": "server-room-a", "condition": "hazard"]) == 1)
        #expect(v("redline_zone_condition", ["zone": "office", "condition": "in-alarm"]) == 1)
        #expect(v("redline_agent_quarantined", ["agent": "reporting-agent"]) == 1)
        #expect(v("redline_agent_quarantined", ["agent": "facilities-agent"]) == 0)
        #expect(v("redline_effect_active", ["effect": "E-1", "zone": "office"]) == 1)
        #expect(v("redline_effect_active", ["effect": "E-3", "zone": "office"]) == 0)
        #expect(v("redline_audit_fsync_duration_seconds") == 0.0015)
    }

    @Test("label values are escaped: backslash, double quote and line feed", arguments: [
        "a\"gent", "back\\slash", "line\nfeed", "all \\\"\n three", "ünïcödé ✓",
    ])
    func escaping(name: String) throws {
        let text = MetricsText.render(status: sampleStatus(agent: name))
        let (_, _, samples) = try parse(text)
        let q = samples.filter { $0.name == "redline_agent_quarantined" }.compactMap { $0.labels["agent"] }
        #expect(q.contains(name), "the agent name reads back exactly: \(q)")
        let d = samples.filter { $0.name == "redline_decisions_total" }.compactMap { $0.labels["agent"] }
        #expect(d.contains(name))
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            #expect(line.hasPrefix("redline_"), "no line is broken by a label value: \(line)")
        }
    }

    @Test("no reason, cause, explanation, error or request id reaches the text")
    func noFreeTextInLabels() throws {
        let text = MetricsText.render(status: sampleStatus())
        for forbidden in ["CAUSE-TEXT", "WHY-TEXT", "ESCALATION-TEXT", "AUDIT-ERROR-TEXT", "EXPLANATION-TEXT", "r-ab12-7"] {
            #expect(!text.contains(forbidden), "\(forbidden) in\n\(text)")
        }
        let allowed = Set(MetricsText.families.flatMap(\.labels))
        #expect(allowed == ["version", "outcome", "rule", "agent", "bus", "device", "zone", "condition", "effect"])
        for s in try parse(text).samples { #expect(Set(s.labels.keys).isSubset(of: allowed)) }
    }

    @Test("unknown is unsafe: a status without ready=true reads not ready", arguments: [JSON.bool(false), .null, .string("true"), .number(1)])
    func notReady(ready: JSON) throws {
        let (_, _, samples) = try parse(MetricsText.render(status: sampleStatus(ready: ready)))
        #expect(samples.first { $0.name == "redline_ready" }?.value == 0)
    }

    @Test("a malformed status renders what it can and never traps (negative, huge, fractional or non-number counts are left out)")
    func malformed() throws {
        let odd: JSON = .obj([("decisions", .array([
            .obj([("outcome", "executed"), ("rule", ""), ("agent", "a"), ("count", .number(-1))]),
            .obj([("outcome", "executed"), ("rule", ""), ("agent", "b"), ("count", .number(1e300))]),
            .obj([("outcome", "executed"), ("rule", ""), ("agent", "c"), ("count", "7")]),
            .obj([("outcome", "executed"), ("rule", ""), ("agent", "e"), ("count", .number(2.5))]),
            .obj([("outcome", "executed"), ("rule", ""), ("agent", "d"), ("count", .number(4))]),
        ])), ("zones", "not a list"), ("buses", .array([.number(3)]))])
        let (_, _, samples) = try parse(MetricsText.render(status: odd))
        let d = samples.filter { $0.name == "redline_decisions_total" }
        #expect(d == [Sample(name: "redline_decisions_total", labels: ["outcome": "executed", "rule": "", "agent": "d"], value: 4)])
        #expect(samples.first { $0.name == "redline_ready" }?.value == 0)
        #expect(samples.first { $0.name == "redline_build_info" }?.labels["version"] == "unknown")
        let empty = try parse(MetricsText.render(status: .null))
        #expect(empty.samples.map(\.name) == ["redline_ready", "redline_build_info"])
    }
}
