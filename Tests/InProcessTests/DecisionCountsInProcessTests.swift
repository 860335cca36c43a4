import RedlineCore
import RedlineDaemon
import RedlineTesting
import Testing

/// `status.decisions` (what `redline_decisions_total` is rendered from, docs/DESIGN.md §8.1):
/// every outcome counted by (outcome, rule, agent), summing to the counters beside it.
@Suite("Decision counts in status, in process")
struct DecisionCountsInProcessTests {
    /// The decisions of a status, by "outcome rule agent".
    func decisions(_ status: JSON) -> [String: Double] {
        var out: [String: Double] = [:]
        for d in status["decisions"]?.arrayValue ?? [] {
            out["\(d["outcome"]?.stringValue ?? "?") \(d["rule"]?.stringValue ?? "?") \(d["agent"]?.stringValue ?? "?")"] = d["count"]?.numberValue
        }
        return out
    }

    @Test("executed, denied by a red line, held, expired by the clock and by E-2, denied by an operator: each counted once by agent")
    func everyOutcome() async throws {
        try await withDaemon { d in
            let a = "facilities-agent"
            #expect(try await d.write("office-lights.on", 1)["outcome"]?.stringValue == "executed")
            #expect(try await d.write("dispatch.cancel", 1)["rule"]?.stringValue == "RL-2")
            let byClock = try #require(try await d.write("sra-door.lock", 1)["requestId"]?.stringValue)
            d.advance(ms: 300_000)
            _ = try await d.operatorCall("approvals.list")  // noticed here: expired, counted once
            _ = try await d.operatorCall("approvals.list")
            let denied = try #require(try await d.write("sra-door.lock", 1)["requestId"]?.stringValue)
            _ = try await d.operatorCall("approvals.deny", .obj([("requestId", .string(denied)), ("reason", "not now")]))
            _ = try await d.write("sra-door.lock", 1)
            try d.plant.set("fire-panel.alarm", 1)
            await d.scan()  // E-2 expires the third
            let st = try #require(try await d.operatorCall("status")["result"])
            #expect(decisions(st) == [
                "executed  \(a)": 1, "denied RL-2 \(a)": 1, "held  \(a)": 3, "expired  \(a)": 2, "denied operator \(a)": 1,
            ], "\(st["decisions"]?.encoded() ?? "")")
            let c = st["counters"]
            #expect(c?["executed"]?.numberValue == 1 && c?["held"]?.numberValue == 3 && c?["expired"]?.numberValue == 2)
            #expect(c?["denied"]?["RL-2"]?.numberValue == 1 && c?["denied"]?["operator"]?.numberValue == 1)
            #expect(c?["writes"]?.numberValue == 5, "an expiry or an operator's denial is not a new write")
            #expect(try await d.agent(a, "requests.get", .obj([("requestId", .string(byClock))]))["result"]?["outcome"]?.stringValue == "expired")
        }
    }

    @Test("a write refused because the agent's share of work is full is counted busy, for that agent")
    func busy() async throws {
        try await withDaemon(limits: AgentLimits(heldPerAgent: 1)) { d in
            _ = try await d.write("sra-door.lock", 1)
            let r = try await d.agent("facilities-agent", "points.write", .obj([("id", "sra-door.lock"), ("value", .number(1))]))
            #expect(r["error"]?["code"]?.numberValue == -32007, "\(r.encoded())")
            let st = try #require(try await d.operatorCall("status")["result"])
            #expect(decisions(st)["busy  facilities-agent"] == 1, "\(st["decisions"]?.encoded() ?? "")")
            #expect(st["counters"]?["busy"]?.numberValue == 1)
        }
    }

    @Test("status carries the version, every device (up after the first scan), every agent, every held effect by zone")
    func statusShapes() async throws {
        try await withDaemon(ready: false) { d in
            let before = try #require(try await d.operatorCall("status")["result"])
            #expect(before["version"]?.stringValue == BuildInfo.version)
            #expect(before["devices"]?.arrayValue?.allSatisfy { $0["up"]?.boolValue == false } == true, "nothing is up before a full scan")
            await d.scan()
            try d.plant.set("fire-panel.alarm", 1)
            await d.scan()
            let st = try #require(try await d.operatorCall("status")["result"])
            let devices = st["devices"]?.arrayValue ?? []
            #expect(devices.count == 14 && devices.allSatisfy { $0["up"]?.boolValue == true }, "\(st["devices"]?.encoded() ?? "")")
            #expect(st["agents"]?.arrayValue?.compactMap { $0["name"]?.stringValue } == ["facilities-agent", "reporting-agent"])
            let effects = st["effects"]?.arrayValue ?? []
            #expect(Set(effects.compactMap { $0["effect"]?.stringValue }) == ["E-1", "E-3", "E-4"])
            #expect(effects.contains { $0["effect"]?.stringValue == "E-1" && $0["zone"]?.stringValue == "server-room-a" && $0["active"]?.boolValue == true },
                    "\(st["effects"]?.encoded() ?? "")")
            #expect(st["buses"]?.arrayValue?.count == 14, "every bus is listed (the memory plant times none)")
            #expect(st["audit"]?["lastFsyncS"] != nil)
        }
    }
}
