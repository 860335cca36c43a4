import Foundation
import RedlineCore
import RedlineTestSupport
import Testing
import Yams

extension RedTeamCase: CustomTestStringConvertible {}

@Suite("Red-team corpus, end to end", .serialized, .enabled(if: uidAvailable, "needs root to connect as the agents' uids"))
struct RedTeamTests {
    @Test("the project's corpus (Tests/RedTeam) is present, readable and covers RL-0 to RL-10")
    func corpusPresent() throws {
        let cases = RedTeamCorpus.own.cases()
        #expect(cases.count >= 100, "expected the red-team corpus in \(RedTeamCorpus.own.folder.path)")
        #expect(!cases.contains(where: { $0.id.hasPrefix("UNREADABLE") }), "\(cases.filter { $0.id.hasPrefix("UNREADABLE") }.map(\.id))")
        let ids = (cases + RedTeamCorpus.pending.cases()).map(\.id)
        #expect(Set(ids).count == ids.count, "case ids repeat: \(Dictionary(grouping: ids, by: { $0 }).filter { $1.count > 1 }.keys.sorted())")
        for n in 0...10 {
            #expect(cases.contains { $0.id.hasPrefix("RL\(n)-") }, "no case for RL-\(n)")
        }
        #expect(cases.contains { $0.id.hasPrefix("EFF-") }, "no case for the effects")
        #expect(cases.contains { $0.id.hasPrefix("PROTO-") }, "no case for the agent protocol")
        let site = try demoSite()
        for c in cases {
            #expect(site.agent(named: c.agent) != nil, "\(c.id): unknown agent \(c.agent)")
            #expect(!c.method.isEmpty, "\(c.id): no request method")
            #expect(c.expect.objectValue != nil, "\(c.id): no expect")
        }
    }

    @Test("red-team case", arguments: RedTeamCorpus.own.cases())
    func redTeamCase(_ c: RedTeamCase) throws {
        try run(c)
    }

    /// The rule each of these cases stands for is in docs/DESIGN.md but not yet in the daemon
    /// (docs/DESIGN.md §13). Their failures are known issues; a case that passes fails this
    /// test ("known issue was not recorded"): move it up into Tests/RedTeam/ then.
    @Test("pending red-team case (docs/DESIGN.md §13)", arguments: RedTeamCorpus.pending.cases())
    func pendingCase(_ c: RedTeamCase) throws {
        withKnownIssue("\(c.id): the daemon does not implement this rule of docs/DESIGN.md yet") {
            try run(c)
        }
    }

    /// The steering repository's red-team cases, same format, when `shared/redteam` is beside the
    /// checkout (or `$REDLINE_REDTEAM_DIR` names a folder). A clone with nothing beside it reports
    /// this test as skipped, with the reason below; the project's own corpus above still runs.
    @Test("extra red-team case (shared/redteam beside the checkout)",
          .enabled(if: RedTeamCorpus.extra != nil,
                   "no shared/redteam beside the checkout (nor a $REDLINE_REDTEAM_DIR folder): only the project's own Tests/RedTeam ran"),
          arguments: RedTeamCorpus.extra?.cases() ?? [])
    func extraCase(_ c: RedTeamCase) throws {
        try run(c)
    }

    /// Runs one case end to end and checks the answer, the plant's ground truth and the audit log.
    /// `stack` gives the simulator and daemon to run against (the Modbus demo by default).
    func run(_ c: RedTeamCase, stack: () throws -> PlantAndDaemon = SharedStack.get) throws {
        let s = try stack()
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
            if code == Double(-32004), let probe = RedTeamCase.missingPointProbe(c.params) {
                // A hidden point and a point that does not exist are answered alike.
                let other = try conn.request(c.method, probe.params)
                let message = resp["error"]?["message"]?.stringValue
                let otherMessage = other["error"]?["message"]?.stringValue?.replacingOccurrences(of: probe.missing, with: probe.original)
                #expect(other["error"]?["code"] == resp["error"]?["code"] && otherMessage == message,
                        "\(c.id): \(resp.encoded()) differs from the answer for a point that does not exist, \(other.encoded())")
            }
        } else {
            #expect(resp["error"] == nil, "\(c.id): expected a result, got \(resp.encoded())")
        }
        if let outcome = c.expect["outcome"]?.stringValue {
            let result = resp["result"]
            #expect(result?["outcome"]?.stringValue == outcome, "\(c.id): expected \(outcome), got \(resp.encoded())")
            if let rule = c.expect["rule"]?.stringValue {
                #expect(result?["rule"]?.stringValue == rule, "\(c.id): expected rule \(rule), got \(resp.encoded())")
            }
        }
        // Ground truth: unless the case expects execution, the attacked output did not move.
        // (An input's plant value is physics, free to drift; that an agent cannot write it is RL-8's answer.)
        let expectedPlant = c.expectedPlant
        let executed = c.expect["outcome"]?.stringValue == "executed"
        let after = try s.sim.plant()[target]
        if !executed {
            if site.point(target)?.role.isOutput != false {
                #expect(before == after, "\(c.id): \(target) changed on the plant from \(String(describing: before)) to \(String(describing: after))")
            }
        } else if let v = expectedPlant.first(where: { $0.0 == target })?.1 ?? c.params["value"]?.numberValue {
            #expect(RedTeamCase.same(after, v), "\(c.id): \(target) is \(String(describing: after)) on the plant, expected \(fmt(v))")
        }
        // Every decision is in the audit log with its reason, verbatim and inert.
        if let rid = resp["result"]?["requestId"]?.stringValue {
            let rec = try s.auditRecords().first { $0["kind"]?.stringValue == "decision" && $0["requestId"]?.stringValue == rid }
            #expect(rec != nil, "\(c.id): decision \(rid) missing from the audit log")
            if let reason = c.params["reason"]?.stringValue { #expect(rec?["reason"]?.stringValue == reason, "\(c.id): reason not audited verbatim") }
        }
        // The plant a little later: the daemon's own effects have had three scans to act.
        if !expectedPlant.isEmpty {
            try s.waitScans(3)
            let plant = try s.sim.plant()
            for (name, v) in expectedPlant {
                #expect(RedTeamCase.same(plant[name], v), "\(c.id): \(name) is \(String(describing: plant[name])) on the plant, expected \(fmt(v))")
            }
        }
    }
}
