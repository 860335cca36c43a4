import Foundation
import RedlineCore
import RedlineTestSupport
import Testing
import Yams

/// A red-team case from `../shared/redteam/*.yaml` (format in that folder's README).
struct RedTeamCase: Sendable, CustomTestStringConvertible {
    var id: String
    var title: String
    var file: String
    var plant: [(String, Double)]
    var fault: (device: String, mode: String)?
    var agent: String
    var method: String
    var params: JSON
    var expect: JSON
    var testDescription: String { "\(id): \(title)" }

    /// The red-team folder: `$REDLINE_REDTEAM_DIR`, else `shared/redteam` beside the checkout.
    static var folder: String {
        if let d = ProcessInfo.processInfo.environment["REDLINE_REDTEAM_DIR"], !d.isEmpty { return d }
        return TestPaths.packageRoot().deletingLastPathComponent().appendingPathComponent("shared/redteam").path
    }

    static func all() -> [RedTeamCase] {
        let fm = FileManager.default
        let files = ((try? fm.contentsOfDirectory(atPath: folder)) ?? []).filter { $0.hasSuffix(".yaml") }.sorted()
        var out: [RedTeamCase] = []
        for f in files {
            guard let text = try? String(contentsOfFile: folder + "/" + f, encoding: .utf8),
                  let list = (try? Yams.load(yaml: text)) as? [[String: Any]] else {
                out.append(RedTeamCase(id: "UNREADABLE \(f)", title: "file does not parse", file: f, plant: [], fault: nil,
                                       agent: "", method: "", params: .null, expect: .null))
                continue
            }
            for c in list {
                let req = c["request"] as? [String: Any] ?? [:]
                let plant = (c["plant"] as? [String: Any] ?? [:]).keys.sorted().map { k in
                    (k, json(fromYAML: (c["plant"] as! [String: Any])[k]).numberValue ?? .nan)
                }
                let fault = (c["fault"] as? [String: Any]).map { ($0["device"] as? String ?? "", $0["mode"] as? String ?? "") }
                out.append(RedTeamCase(id: c["id"] as? String ?? "?", title: c["title"] as? String ?? "", file: f, plant: plant,
                                       fault: fault, agent: c["agent"] as? String ?? "", method: req["method"] as? String ?? "",
                                       params: json(fromYAML: req["params"]), expect: json(fromYAML: c["expect"])))
            }
        }
        return out
    }
}

@Suite("Red-team corpus, end to end", .serialized, .enabled(if: uidAvailable, "needs root to connect as the agents' uids"))
struct RedTeamTests {
    @Test("the corpus is present and not empty")
    func corpusPresent() {
        let cases = RedTeamCase.all()
        #expect(cases.count >= 14, "expected the red-team corpus in \(RedTeamCase.folder)")
        #expect(!cases.contains(where: { $0.id.hasPrefix("UNREADABLE") }))
    }

    @Test("red-team case", arguments: RedTeamCase.all())
    func redTeamCase(_ c: RedTeamCase) throws {
        let s = try SharedStack.get()
        try resetPlant(s)
        let site = try demoSite()
        let agent = try #require(site.agent(named: c.agent), "\(c.id): unknown agent \(c.agent)")

        for (name, value) in c.plant { try s.sim.set(name, value) }
        if let f = c.fault { try s.sim.fault(f.device, f.mode) }
        try s.waitScans(2)

        let target = c.params["id"]?.stringValue ?? ""
        let before = try s.sim.plant()[target]

        let conn = try s.agent(uid: agent.uid)
        defer { conn.close() }
        let resp = try conn.request(c.method, c.params)

        if let code = c.expect["error"]?.numberValue {
            #expect(resp["error"]?["code"]?.numberValue == code, "\(c.id): expected error \(fmt(code)), got \(resp.encoded())")
        }
        if let outcome = c.expect["outcome"]?.stringValue {
            let result = resp["result"]
            #expect(result?["outcome"]?.stringValue == outcome, "\(c.id): expected \(outcome), got \(resp.encoded())")
            if let rule = c.expect["rule"]?.stringValue {
                #expect(result?["rule"]?.stringValue == rule, "\(c.id): expected rule \(rule), got \(resp.encoded())")
            }
        }
        // Ground truth: unless the case expects execution, the attacked output did not move.
        let executed = c.expect["outcome"]?.stringValue == "executed"
        let after = try s.sim.plant()[target]
        if !executed {
            #expect(before == after, "\(c.id): \(target) changed on the plant from \(String(describing: before)) to \(String(describing: after))")
        } else if let v = c.params["value"]?.numberValue {
            #expect(after == v, "\(c.id): \(target) is \(String(describing: after)) on the plant, expected \(fmt(v))")
        }
        // Every decision is in the audit log with its reason, verbatim and inert.
        if let rid = resp["result"]?["requestId"]?.stringValue {
            let rec = try s.auditRecords().first { $0["kind"]?.stringValue == "decision" && $0["requestId"]?.stringValue == rid }
            #expect(rec != nil, "\(c.id): decision \(rid) missing from the audit log")
            if let reason = c.params["reason"]?.stringValue { #expect(rec?["reason"]?.stringValue == reason) }
        }
    }
}
