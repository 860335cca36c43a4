import Testing
@testable import RedlineCore

/// docs/DESIGN.md §6.2: site-wide escalation (`agents-held`).
@Suite("Site-wide escalation")
struct EscalationTests {
    static let t0: Int64 = 10_000_000

    @Test("two agents quarantined within the window put the site in agents-held; an operator clears it")
    func twoQuarantines() {
        var book = QuarantineBook(policy: QuarantinePolicy())
        for i in 0..<3 { book.record(agent: "a", rule: .rl2, at: Self.t0 + Int64(i)) }
        #expect(book.isQuarantined("a") && !book.agentsHeld)
        for i in 0..<3 { book.record(agent: "b", rule: .rl1, at: Self.t0 + 100 + Int64(i)) }
        #expect(book.agentsHeld)
        #expect(book.escalation?.why.contains("2 agents quarantined") == true)
        let cleared = book.clearEscalation()
        #expect(cleared)
        #expect(!book.agentsHeld && book.isQuarantined("a") && book.isQuarantined("b"))  // clearing releases no one
        let again = book.clearEscalation()
        #expect(!again)
    }

    @Test("quarantines further apart than the window do not escalate")
    func outsideWindow() {
        var book = QuarantineBook(policy: QuarantinePolicy())
        for i in 0..<3 { book.record(agent: "a", rule: .rl2, at: Self.t0 + Int64(i)) }
        let later = Self.t0 + Limits.quarantineWindowMs + 10
        for i in 0..<3 { book.record(agent: "b", rule: .rl2, at: later + Int64(i)) }
        #expect(book.isQuarantined("b") && !book.agentsHeld)
    }

    @Test("red-line denials across agents reach the site-wide limit though none is quarantined")
    func spreadDenials() {
        var book = QuarantineBook(policy: QuarantinePolicy())
        // Ten agents, one red-line denial each: no agent reaches its own threshold.
        for i in 0..<(Limits.escalationDenials - 1) { book.record(agent: "agent-\(i)", rule: .rl3, at: Self.t0 + Int64(i)) }
        #expect(!book.agentsHeld)
        book.record(agent: "agent-last", rule: .rl3, at: Self.t0 + 50)
        #expect(book.agentsHeld && book.quarantined.isEmpty)
        // Denials that are not red lines never count.
        var other = QuarantineBook(policy: QuarantinePolicy())
        for i in 0..<50 { other.record(agent: "x-\(i)", rule: .outOfRange, at: Self.t0 + Int64(i)) }
        #expect(!other.agentsHeld)
    }

    @Test("a site may lower the thresholds, never raise them")
    func clamped() {
        let raised = QuarantinePolicy(escalationAgents: 9, escalationDenials: 99)
        #expect(raised.escalationAgents == Limits.escalationQuarantinedAgents)
        #expect(raised.escalationDenials == Limits.escalationDenials)
        let lowered = QuarantinePolicy(escalationAgents: 1, escalationDenials: 4)
        #expect(lowered.escalationAgents == 1 && lowered.escalationDenials == 4)
        var book = QuarantineBook(policy: lowered)
        for i in 0..<3 { book.record(agent: "a", rule: .rl2, at: Self.t0 + Int64(i)) }
        #expect(book.agentsHeld)  // one quarantine is enough on this site
    }

    @Test("agents-held holds every write but a safe value, and never allows what a red line forbids")
    func policy() {
        var s = Demo.state()
        s.agentsHeld = true
        let lights = Demo.decide("office-lights.on", 1, in: s)
        guard case .held(let timeout, let why) = lights else { Issue.record("not held: \(lights)"); return }
        #expect(timeout == Limits.escalationHoldMs && why.contains("agents-held"))
        // A safe value flows (a door released, cooling run); an output without one is held either way.
        #expect(Demo.decide("sra-door.lock", 0, in: s) == .allowed)
        #expect(Demo.decide("crac-1.run", 1, in: s) == .allowed)
        if case .held = Demo.decide("office-lights.on", 0, in: s) {} else { Issue.record("lights off not held") }
        // Forbid wins: a red line is still a denial, and its rule is named.
        #expect(Demo.decide("dispatch.cancel", 1, in: s).rule == .rl2)
        // An operator's approval passes the hold, not the red lines.
        #expect(Demo.decide("office-lights.on", 1, in: s, approved: true) == .allowed)
        // A point with its own approval rule keeps that rule's timeout.
        if case .held(let t, _) = Demo.decide("sra-door.lock", 1, in: s) { #expect(t == 300_000) } else { Issue.record("door not held") }
    }
}
