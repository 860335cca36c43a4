import Testing
@testable import RedlineCore

@Suite("Quarantine state machine") struct QuarantineTests {
    let t0: Int64 = 5_000_000
    let minute: Int64 = 60_000

    @Test func threeRedLineDenialsWithinTenMinutesQuarantine() {
        var q = QuarantineBook(policy: QuarantinePolicy())
        do { let r = q.record(agent: "a", rule: .rl2, at: t0); #expect(!r) }
        do { let r = q.record(agent: "a", rule: .rl3, at: t0 + 4 * minute); #expect(!r) }
        #expect(!q.isQuarantined("a"))
        #expect(q.recentDenials("a", at: t0 + 5 * minute) == 2)
        do { let r = q.record(agent: "a", rule: .rl7, at: t0 + 10 * minute - 1); #expect(r) }
        #expect(q.isQuarantined("a"))
        #expect(q.names == ["a"])
        // Other agents are not affected.
        #expect(!q.isQuarantined("b"))
        // And the policy then denies every write as quarantined.
        let st = Demo.state(quarantined: q.names.union([Demo.facilities]))
        #expect(Demo.decide("sra-door.lock", 0, in: st).rule == .quarantined)
    }

    @Test func denialsOlderThanTheWindowDoNotCount() {
        var q = QuarantineBook(policy: QuarantinePolicy())
        q.record(agent: "a", rule: .rl1, at: t0)
        q.record(agent: "a", rule: .rl1, at: t0 + minute)
        // Exactly ten minutes after the first: the first has left the window.
        do { let r = q.record(agent: "a", rule: .rl1, at: t0 + 10 * minute); #expect(!r) }
        #expect(q.recentDenials("a", at: t0 + 10 * minute) == 2)
        #expect(!q.isQuarantined("a"))
        do { let r = q.record(agent: "a", rule: .rl1, at: t0 + 10 * minute + 1); #expect(r) }
    }

    @Test func nonRedLineDenialsDoNotCount() {
        var q = QuarantineBook(policy: QuarantinePolicy())
        for (k, r) in [Rule.notWritable, .outOfRange, .notReady, .quarantined, .notWritable, .outOfRange].enumerated() {
            do { let r = q.record(agent: "a", rule: r, at: t0 + Int64(k)); #expect(!r) }
        }
        #expect(q.recentDenials("a", at: t0 + 10) == 0)
        #expect(!q.isQuarantined("a"))
        #expect(Rule.allCases.filter(\.isRedLine) == [.rl1, .rl2, .rl3, .rl4, .rl5, .rl6, .rl7, .rl8, .rl9, .rl10, .rl11])
    }

    @Test func releaseClearsQuarantineAndHistory() {
        var q = QuarantineBook(policy: QuarantinePolicy())
        for k in 0..<3 { q.record(agent: "a", rule: .rl2, at: t0 + Int64(k)) }
        #expect(q.isQuarantined("a"))
        // While quarantined, further denials are not counted towards a new quarantine.
        do { let r = q.record(agent: "a", rule: .rl2, at: t0 + 10); #expect(!r) }
        do { let r = q.release("a"); #expect(r) }
        #expect(!q.isQuarantined("a"))
        do { let r = q.release("a"); #expect(!r) }
        // A fresh start: two more denials are not enough.
        q.record(agent: "a", rule: .rl2, at: t0 + 20)
        do { let r = q.record(agent: "a", rule: .rl2, at: t0 + 21); #expect(!r) }
        do { let r = q.record(agent: "a", rule: .rl2, at: t0 + 22); #expect(r) }
    }

    @Test(arguments: [(0, Int64(0)), (-5, Int64(-1)), (4, Int64(599_999)), (100, Int64(1)), (Int.max, Int64.min)])
    func policyCannotBeLoosened(threshold: Int, windowMs: Int64) {
        let p = QuarantinePolicy(threshold: threshold, windowMs: windowMs)
        #expect(p.threshold >= 1 && p.threshold <= Limits.quarantineThreshold)
        #expect(p.windowMs >= Limits.quarantineWindowMs)
    }

    @Test func policyCanBeTightened() {
        let p = QuarantinePolicy(threshold: 1, windowMs: 3_600_000)
        #expect(p.threshold == 1 && p.windowMs == 3_600_000)
        var q = QuarantineBook(policy: p)
        do { let r = q.record(agent: "a", rule: .rl5, at: t0); #expect(r) }
        var q2 = QuarantineBook(policy: QuarantinePolicy(threshold: 2, windowMs: 3_600_000))
        q2.record(agent: "a", rule: .rl5, at: t0)
        do { let r = q2.record(agent: "a", rule: .rl5, at: t0 + 59 * minute); #expect(r) }
    }
}

@Suite("Approval state machine") struct ApprovalTests {
    let cmd = WriteCommand(agent: Demo.facilities, point: "sra-door.lock", value: 1)
    let t0: Int64 = 1_000_000

    func book() -> ApprovalBook {
        var b = ApprovalBook()
        b.hold(id: "r1", command: cmd, now: t0, timeoutMs: 300_000, explanation: "needs approval")
        return b
    }

    @Test func holdIsPending() {
        let b = book()
        #expect(b.pending.map(\.id) == ["r1"])
        #expect(b.requests["r1"]?.outcome == .held)
        #expect(b.requests["r1"]?.expiresAt == t0 + 300_000)
        #expect(b.requests["r1"]?.command == cmd)
    }

    @Test func expiresOnTimeout() {
        var b = book()
        do { let r = b.expire(now: t0 + 299_999); #expect(r.isEmpty) }
        #expect(b.pending.count == 1)
        let out = b.expire(now: t0 + 300_000)
        #expect(out.map(\.id) == ["r1"])
        #expect(b.requests["r1"]?.outcome == .expired)
        #expect(b.pending.isEmpty)
    }

    @Test func approveReturnsTheRequestForReDecision() throws {
        var b = book()
        let r = try b.approve(id: "r1", now: t0 + 1000).get()
        #expect(r.command == cmd)
        // Still held until the caller decides it again and finishes it.
        #expect(b.requests["r1"]?.outcome == .held)
        // Re-decided on fresh readings: occupied now, so RL-3 denies it.
        let d = Policy.decide(r.command, in: Demo.state(Demo.occupied), approved: true)
        #expect(d.rule == .rl3)
        b.finish(id: "r1", outcome: .denied, rule: d.rule, explanation: "re-decided")
        #expect(b.requests["r1"]?.outcome == .denied)
        #expect(b.requests["r1"]?.rule == .rl3)
        #expect(b.pending.isEmpty)
        // A finished request cannot be approved again.
        do { var c = b; #expect(throws: ApprovalError.notPending("r1", .denied)) { try c.approve(id: "r1", now: t0 + 2000).get() } }
    }

    @Test func deny() {
        var b = book()
        let r = try? b.deny(id: "r1", reason: "not now").get()
        #expect(r?.outcome == .denied)
        #expect(r?.explanation.contains("not now") == true)
        do { var c = b; #expect(throws: ApprovalError.notPending("r1", .denied)) { try c.deny(id: "r1", reason: nil).get() } }
        do { var c = b; #expect(throws: ApprovalError.unknownRequest("nope")) { try c.deny(id: "nope", reason: nil).get() } }
        do { var c = b; #expect(throws: ApprovalError.unknownRequest("nope")) { try c.approve(id: "nope", now: t0).get() } }
    }

    @Test func E2_expiryByPoints() {
        var b = book()
        b.hold(id: "r2", command: WriteCommand(agent: Demo.facilities, point: "office-lights.on", value: 1),
               now: t0, timeoutMs: 300_000, explanation: "x")
        let out = b.expire(points: ["sra-door.lock", "crac-1.run"], because: "server-room-a went into alarm")
        #expect(out.map(\.id) == ["r1"])
        #expect(b.requests["r1"]?.outcome == .expired)
        #expect(b.requests["r1"]?.explanation == "server-room-a went into alarm")
        #expect(b.pending.map(\.id) == ["r2"])
        do { var c = b; #expect(throws: ApprovalError.notPending("r1", .expired)) { try c.approve(id: "r1", now: t0 + 1).get() } }
    }

    @Test func approveAfterExpiryFails() {
        var b = book()
        // Nobody called expire(now:) yet: approve itself notices the deadline passed.
        let r = b.approve(id: "r1", now: t0 + 300_000)
        #expect(r == .failure(.notPending("r1", .expired)))
        #expect(b.requests["r1"]?.outcome == .expired)
        #expect(b.pending.isEmpty)
    }

    @Test func absurdTimeoutsDoNotTrap() {
        var b = ApprovalBook()
        b.hold(id: "r", command: cmd, now: t0, timeoutMs: Int64.max, explanation: "")
        #expect(b.requests["r"]?.expiresAt == Int64.max)
        do { let r = b.expire(now: Int64.max - 1); #expect(r.isEmpty) }
    }

    @Test func retainDropsOnlyFinishedRequests() {
        var b = ApprovalBook(retain: 2)
        b.record(id: "a", command: cmd, now: t0, outcome: .denied, rule: .rl3, explanation: "")
        b.record(id: "b", command: cmd, now: t0, outcome: .executed, rule: nil, explanation: "")
        b.record(id: "c", command: cmd, now: t0, outcome: .executed, rule: nil, explanation: "")
        #expect(b.requests["a"] == nil)
        #expect(b.requests["b"] != nil && b.requests["c"] != nil)
    }
}
