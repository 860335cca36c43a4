import RedlineCore
import RedlineTesting
import Testing

/// Approvals (docs/DESIGN.md §8) in process: held requests, approve, deny, and expiry by the
/// manual clock (the demo site holds `sra-door.lock` for 300 s).
@Suite("Approvals, in process")
struct ApprovalsInProcessTests {
    func hold(_ d: InProcessDaemon) async throws -> String {
        let held = try await d.write("sra-door.lock", 1, reason: "secure the room")
        #expect(held["outcome"]?.stringValue == "held", "\(held.encoded())")
        return try #require(held["requestId"]?.stringValue)
    }

    func outcome(_ d: InProcessDaemon, _ rid: String) async throws -> String? {
        try await d.agent("facilities-agent", "requests.get", .obj([("requestId", .string(rid))]))["result"]?["outcome"]?.stringValue
    }

    @Test("a held request expires when its timeout passes on the clock, not a moment before, and is audited once")
    func heldRequestExpiresByTheClock() async throws {
        try await withDaemon { d in
            let rid = try await hold(d)
            let list = try await d.operatorCall("approvals.list")
            #expect(list["result"]?["approvals"]?.arrayValue?.first?["expiresInS"]?.numberValue == 300, "\(list.encoded())")
            d.advance(ms: 299_999)
            #expect(try await outcome(d, rid) == "held")
            d.advance(ms: 1)
            #expect(try await outcome(d, rid) == "expired")
            let late = try await d.operatorCall("approvals.approve", .obj([("requestId", .string(rid))]))
            #expect(late["error"] != nil, "\(late.encoded())")
            #expect(d.plant.value("sra-door.lock") == 0)
            #expect(try await d.audited("expired").filter { $0["requestId"]?.stringValue == rid }.count == 1)
        }
    }

    @Test("an approval or denial that is the first to notice the timeout passed finds the request expired, and the expiry is audited and counted once", arguments: ["approvals.approve", "approvals.deny"])
    func lateDecisionAuditsTheExpiry(_ method: String) async throws {
        try await withDaemon { d in
            let rid = try await hold(d)
            d.advance(ms: 300_000)   // the clock only: no scan, no list, nobody has looked yet
            let late = try await d.operatorCall(method, .obj([("requestId", .string(rid))]))
            #expect(late["error"]?["message"]?.stringValue?.contains("expired") == true, "\(late.encoded())")
            #expect(d.plant.value("sra-door.lock") == 0)
            #expect(try await d.audited("expired").filter { $0["requestId"]?.stringValue == rid }.count == 1)
            let status = try await d.operatorCall("status")
            #expect(status["result"]?["counters"]?["expired"]?.numberValue == 1, "\(status["result"]?["counters"]?.encoded() ?? "")")
        }
    }

    @Test("a scan expires a held request whose time ran out, with nobody asking")
    func scanExpires() async throws {
        try await withDaemon { d in
            let rid = try await hold(d)
            await d.elapse(ms: 300_000)
            let records = try await d.auditRecords()
            #expect(records.contains { $0["kind"]?.stringValue == "expired" && $0["requestId"]?.stringValue == rid },
                    "\(records.filter { $0["kind"]?.stringValue != "device" }.suffix(6).map { $0.encoded() })")
            let list = try await d.operatorCall("approvals.list")
            #expect(list["result"]?["approvals"]?.arrayValue?.isEmpty == true, "\(list.encoded())")
        }
    }

    @Test("approve: the held write is decided again and executed, and the approval is audited with the operator's uid")
    func approveExecutes() async throws {
        try await withDaemon { d in
            let rid = try await hold(d)
            await d.elapse(ms: 120_000)
            let r = try await d.operatorCall("approvals.approve", .obj([("requestId", .string(rid))]))
            #expect(r["result"]?["outcome"]?.stringValue == "executed", "\(r.encoded())")
            #expect(d.plant.value("sra-door.lock") == 1)
            #expect(try await outcome(d, rid) == "executed")
            let approval = try await d.audited("approval").first { $0["requestId"]?.stringValue == rid }
            #expect(approval?["action"]?.stringValue == "approve" && approval?["by"]?.numberValue == 0)
        }
    }

    @Test("RL9: an approved write is decided again on fresh readings: someone walked in, so it is denied RL-3")
    func RL9_approvalDecidedAgain() async throws {
        try await withDaemon { d in
            let rid = try await hold(d)
            try d.plant.set("server-room-a.occupied", 1)
            // No scan: the approval's own fresh re-read sees the person.
            let r = try await d.operatorCall("approvals.approve", .obj([("requestId", .string(rid))]))
            #expect(r["result"]?["outcome"]?.stringValue == "denied" && r["result"]?["rule"]?.stringValue == "RL-3", "\(r.encoded())")
            #expect(d.plant.value("sra-door.lock") == 0)
        }
    }

    @Test("deny: the request ends denied, nothing is written, and a second decision is refused")
    func denyEnds() async throws {
        try await withDaemon { d in
            let rid = try await hold(d)
            let r = try await d.operatorCall("approvals.deny", .obj([("requestId", .string(rid)), ("reason", "not today")]))
            #expect(r["result"]?["outcome"]?.stringValue == "denied", "\(r.encoded())")
            #expect(try await outcome(d, rid) == "denied")
            let again = try await d.operatorCall("approvals.approve", .obj([("requestId", .string(rid))]))
            #expect(again["error"] != nil, "\(again.encoded())")
            #expect(!d.plant.writes.contains { $0.point == "sra-door.lock" })
        }
    }

    @Test("RL9: an agent cannot approve its own request: the method is not on the agent socket")
    func RL9_agentCannotApprove() async throws {
        try await withDaemon { d in
            let rid = try await hold(d)
            let r = try await d.agent("facilities-agent", "approvals.approve", .obj([("requestId", .string(rid))]))
            #expect(r["error"]?["code"]?.numberValue == -32601, "\(r.encoded())")
            #expect(try await outcome(d, rid) == "held")
        }
    }
}
