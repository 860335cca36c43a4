import RedlineCore
import RedlineTesting
import Testing

/// Quarantine and escalation (docs/DESIGN.md §6) in process, with the window on the manual clock
/// (the demo site: 3 red-line denials within 10 minutes).
@Suite("Quarantine, in process")
struct QuarantineInProcessTests {
    func quarantined(_ d: InProcessDaemon, _ agent: String) async throws -> Bool? {
        let list = try await d.operatorCall("agents.list")
        return list["result"]?["agents"]?.arrayValue?.first { $0["name"]?.stringValue == agent }?["quarantined"]?.boolValue
    }

    @Test("three red-line denials in ten minutes stop every write until an operator releases the agent")
    func threeDenialsQuarantine() async throws {
        try await withDaemon { d in
            for _ in 0..<3 {
                let r = try await d.write("fire-panel.silence", 1)
                #expect(r["rule"]?.stringValue == "RL-1", "\(r.encoded())")
                d.advance(ms: 60_000)
            }
            #expect(try await quarantined(d, "facilities-agent") == true)
            let legal = try await d.write("crac-1.setpoint", 23)
            #expect(legal["outcome"]?.stringValue == "denied" && legal["rule"]?.stringValue == "quarantined", "\(legal.encoded())")
            #expect(try await d.audited("quarantine").count == 1)
            let rel = try await d.operatorCall("agents.release", .obj([("agent", "facilities-agent")]))
            #expect(rel["result"]?["released"]?.boolValue == true, "\(rel.encoded())")
            let after = try await d.write("crac-1.setpoint", 23)
            #expect(after["outcome"]?.stringValue == "executed", "\(after.encoded())")
        }
    }

    @Test("denials further apart than the window do not add up")
    func windowOnTheClock() async throws {
        try await withDaemon { d in
            _ = try await d.write("fire-panel.silence", 1)
            _ = try await d.write("fire-panel.silence", 1)
            d.advance(ms: 10 * 60_000 + 1)
            _ = try await d.write("fire-panel.silence", 1)
            #expect(try await quarantined(d, "facilities-agent") == false)
            let legal = try await d.write("crac-1.setpoint", 23)
            #expect(legal["outcome"]?.stringValue == "executed", "\(legal.encoded())")
        }
    }

    @Test("denials that are not red lines (not-writable) do not count")
    func nonRedLineDenialsDoNotCount() async throws {
        try await withDaemon { d in
            for _ in 0..<5 {
                let r = try await d.write("crac-1.setpoint", 23, as: "reporting-agent")
                #expect(r["rule"]?.stringValue == "not-writable", "\(r.encoded())")
            }
            #expect(try await quarantined(d, "reporting-agent") == false)
        }
    }

    @Test("RL9: nothing on the agent socket releases a quarantine")
    func RL9_agentCannotRelease() async throws {
        try await withDaemon { d in
            for _ in 0..<3 { _ = try await d.write("fire-panel.silence", 1) }
            let r = try await d.agent("facilities-agent", "agents.release", .obj([("agent", "facilities-agent")]))
            #expect(r["error"]?["code"]?.numberValue == -32601, "\(r.encoded())")
            #expect(try await quarantined(d, "facilities-agent") == true)
        }
    }
}
