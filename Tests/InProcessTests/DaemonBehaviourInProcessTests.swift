import RedlineCore
import RedlineIO
import RedlineTesting
import Testing

/// The daemon's behaviour in process: the real engine, arbiter, effects and audit log over the
/// memory plant (`RedlineTesting`). The same behaviours on real processes and sockets:
/// `EndToEndTests/DaemonBehaviourTests`.
@Suite("Daemon behaviour, in process")
struct DaemonBehaviourInProcessTests {
    @Test("not-ready: before the first full scan no write is executed, and after it the same write is")
    func notReadyBeforeFirstScan() async throws {
        try await withDaemon(ready: false) { d in
            let r = try await d.write("crac-1.setpoint", 24)
            #expect(r["outcome"]?.stringValue == "denied" && r["rule"]?.stringValue == "not-ready", "\(r.encoded())")
            #expect(d.plant.writes.isEmpty, "\(d.plant.writes)")
            await d.scan()
            let again = try await d.write("crac-1.setpoint", 24)
            #expect(again["outcome"]?.stringValue == "executed", "\(again.encoded())")
            #expect(d.plant.value("crac-1.setpoint") == 24)
        }
    }

    @Test("an executed write is read back, audited (decision before result) and shown by points.read at once")
    func executedWriteIsReadBackAndAudited() async throws {
        try await withDaemon { d in
            let r = try await d.write("crac-1.setpoint", 24.5, reason: "trim")
            #expect(r["outcome"]?.stringValue == "executed", "\(r.encoded())")
            let rid = try #require(r["requestId"]?.stringValue)
            let read = try await d.agent("facilities-agent", "points.read", .obj([("ids", .array(["crac-1.setpoint"]))]))
            // Recorded from the read-back at the write, not left for the next scan (no scan has run since).
            let v = read["result"]?["values"]?.arrayValue?.first
            #expect(v?["value"]?.numberValue == 24.5 && v?["quality"]?.stringValue == "good", "\(read.encoded())")
            let records = try await d.auditRecords()
            let decision = records.firstIndex { $0["kind"]?.stringValue == "decision" && $0["requestId"]?.stringValue == rid }
            let result = records.firstIndex { $0["kind"]?.stringValue == "result" && $0["requestId"]?.stringValue == rid }
            #expect(decision != nil && result != nil && decision! < result!, "decision then result for \(rid)")
            #expect(records[try #require(decision)]["reason"]?.stringValue == "trim")
        }
    }

    @Test("RL9: the occupancy re-read happens at write time, not from the scan cache")
    func RL9_freshReadBeforeWrite() async throws {
        try await withDaemon { d in
            try d.plant.set("server-room-a.occupied", 1)
            // No scan: the snapshot still says empty; the write path re-reads the zone's inputs itself.
            let r = try await d.write("crac-3.run", 0)
            #expect(r["outcome"]?.stringValue == "denied" && r["rule"]?.stringValue == "RL-5", "\(r.encoded())")
            #expect(d.plant.value("crac-3.run") == 1)
            #expect(!d.plant.writes.contains { $0.point == "crac-3.run" })
        }
    }

    @Test("RL9: a write whose plant changes between decision and actuation is withheld and decided again")
    func RL9_guardWithholdsAWriteThePlantOvertook() async throws {
        try await withDaemon { d in
            let plant = d.plant
            // Someone walks in after the fresh re-read, and a scan read of it lands before the write goes out.
            plant.beforeWrite { id in
                guard id == "crac-3.run" else { return }
                try? plant.set("server-room-a.occupied", 1)
                plant.readNow()
            }
            let r = try await d.write("crac-3.run", 0)
            #expect(r["outcome"]?.stringValue == "denied" && r["rule"]?.stringValue == "RL-5", "\(r.encoded())")
            #expect(d.plant.value("crac-3.run") == 1)
            let attempt = try #require(d.plant.writes.first { $0.point == "crac-3.run" })
            guard case .failure(.withheld) = attempt.result else {
                Issue.record("the first attempt should have been withheld by the guard: \(attempt)")
                return
            }
            #expect(try await d.audited("result").contains { $0["outcome"]?.stringValue == "withheld" })
        }
    }

    @Test("RL0: a device fault turns the writes it conditions into denials, and its points read fault")
    func RL0_deviceFaultDenies() async throws {
        try await withDaemon { d in
            // Occupancy sensor offline: the room counts as occupied, so RL-5 forbids reducing its cooling.
            d.plant.fault("sra-occupancy", .offline)
            await d.scan()
            let r = try await d.write("crac-3.run", 0)
            #expect(r["outcome"]?.stringValue == "denied" && r["rule"]?.stringValue == "RL-5", "\(r.encoded())")
            #expect(r["explanation"]?.stringValue?.contains("RL-0") == true, "\(r.encoded())")
            let read = try await d.agent("facilities-agent", "points.read", .obj([("ids", .array(["sra-occupancy.occupied"]))]))
            #expect(read.encoded().contains("\"fault\""), "\(read.encoded())")
            d.plant.fault("sra-occupancy", .none)
            await d.scan()
            let again = try await d.write("crac-3.run", 0)
            #expect(again["outcome"]?.stringValue == "executed", "\(again.encoded())")
        }
    }

    @Test("RL0: readings of a device that stopped answering go stale on the clock, and stale is unknown")
    func RL0_staleReadingsDeny() async throws {
        try await withDaemon { d in
            d.plant.stall("sra-occupancy")
            // Six scans of 100 ms: the last occupancy reading is 600 ms old, past stale-after-ms (500).
            await d.scan(6)
            let read = try await d.agent("facilities-agent", "points.read", .obj([("ids", .array(["sra-occupancy.occupied"]))]))
            #expect(read.encoded().contains("\"stale\""), "\(read.encoded())")
            let r = try await d.write("crac-3.run", 0)
            #expect(r["outcome"]?.stringValue == "denied" && r["rule"]?.stringValue == "RL-5", "\(r.encoded())")
            #expect(r["explanation"]?.stringValue?.contains("stale (RL-0") == true, "\(r.encoded())")
        }
    }

    @Test("RL8: a write that every plant state denies does no device I/O")
    func RL8_deniedWhateverThePlantDoesNoIO() async throws {
        try await withDaemon { d in
            let before = d.plant.jobsSubmitted[.agent] ?? 0
            let r = try await d.write("sra-env.temperature", 20)
            #expect(r["outcome"]?.stringValue == "denied" && r["rule"]?.stringValue == "RL-8", "\(r.encoded())")
            #expect(d.plant.jobsSubmitted[.agent] ?? 0 == before)
        }
    }

    @Test("the agent socket's entry point: a parse error, an unknown method and a stranger's uid are answered as on the socket")
    func entryPointErrors() async throws {
        try await withDaemon { d in
            let bad = await d.send(line: Array("{not json".utf8), as: 2001)
            #expect(bad["error"]?["code"]?.numberValue == -32700, "\(bad.encoded())")
            let unknown = try await d.agent("facilities-agent", "approvals.approve", .obj([("requestId", "x")]))
            #expect(unknown["error"]?["code"]?.numberValue == -32601, "\(unknown.encoded())")
            let stranger = await d.call("site.describe", as: 4242)
            #expect(stranger["error"]?["code"]?.numberValue == -32006, "\(stranger.encoded())")
            let agentAsOperator = await d.call("status", as: 2001, on: .operator)
            #expect(agentAsOperator["error"]?["code"]?.numberValue == -32006, "\(agentAsOperator.encoded())")
        }
    }
}
