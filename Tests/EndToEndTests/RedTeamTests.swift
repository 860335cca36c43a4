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

        var other: JSON?
        if let probe = c.hiddenPointProbe { other = try conn.request(c.method, probe.params) }
        record(c.answerFailures(resp, probeAnswer: other))
        record(c.plantFailures(target: target, isOutput: site.point(target)?.role.isOutput, before: before, after: try s.sim.plant()[target]))
        if let rid = resp["result"]?["requestId"]?.stringValue {
            let rec = try s.auditRecords().first { $0["kind"]?.stringValue == "decision" && $0["requestId"]?.stringValue == rid }
            record(c.auditFailures(requestId: rid, decision: rec))
        }
        if !c.expectedPlant.isEmpty {
            try s.waitScans(3)
            let plant = try s.sim.plant()
            record(c.effectFailures { plant[$0] })
        }
    }

    func record(_ failures: [String]) { for f in failures { Issue.record(Comment(rawValue: f)) } }
}
