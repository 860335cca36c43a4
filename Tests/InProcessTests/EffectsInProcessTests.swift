import RedlineCore
import RedlineIO
import RedlineTesting
import Testing

/// The safe-state effects (docs/DESIGN.md §5) in process: the real `EffectsRunner` and pure
/// `EffectsMachine`, acting on the memory plant scan by scan.
@Suite("Effects, in process")
struct EffectsInProcessTests {
    /// Locks the server-room door through an operator's approval, on an empty calm plant.
    func lockDoor(_ d: InProcessDaemon) async throws {
        let held = try await d.write("sra-door.lock", 1)
        #expect(held["outcome"]?.stringValue == "held", "\(held.encoded())")
        let rid = try #require(held["requestId"]?.stringValue)
        let done = try await d.operatorCall("approvals.approve", .obj([("requestId", .string(rid))]))
        #expect(done["result"]?["outcome"]?.stringValue == "executed", "\(done.encoded())")
        #expect(d.plant.value("sra-door.lock") == 1)
    }

    func safetyWrites(_ d: InProcessDaemon, to point: String) -> [MemoryPlant.Write] {
        d.plant.writes.filter { $0.point == point && $0.priority == .safety }
    }

    @Test("E1: an alarm releases a locked door at the next scan, with a safety-priority write, audited as engaged")
    func E1_releasesDoorOnAlarm() async throws {
        try await withDaemon { d in
            try await lockDoor(d)
            try d.plant.set("fire-panel.alarm", 1)
            await d.scan()
            #expect(d.plant.value("sra-door.lock") == 0)
            #expect(safetyWrites(d, to: "sra-door.lock").contains { $0.value == 0 && $0.landed })
            let engaged = try await d.audited("effect").filter {
                $0["effect"]?.stringValue == "E-1" && $0["state"]?.stringValue == "engaged" && $0["zone"]?.stringValue == "server-room-a"
            }
            #expect(engaged.count == 1, "\(engaged.map { $0.encoded() })")
        }
    }

    @Test("E1: re-asserted every scan while the alarm holds (a door locked again at the equipment is released again)")
    func E1_reassertedEveryScan() async throws {
        try await withDaemon { d in
            try d.plant.set("fire-panel.alarm", 1)
            await d.scan()
            try d.plant.set("sra-door.lock", 1)
            await d.scan()
            #expect(d.plant.value("sra-door.lock") == 0)
            #expect(safetyWrites(d, to: "sra-door.lock").count >= 2)
        }
    }

    @Test("E1 and E3: an occupied room in hazard gets its door released and its annunciator on")
    func E1_E3_occupiedHazard() async throws {
        try await withDaemon { d in
            try await lockDoor(d)
            try d.plant.set("server-room-a.occupied", 1)
            try d.plant.set("server-room-a.temperature", 45)
            await d.scan()
            #expect(d.plant.value("sra-door.lock") == 0)
            #expect(d.plant.value("sra-annunciator.strobe") == 1)
            let effects = Set(try await d.audited("effect").compactMap { $0["effect"]?.stringValue })
            #expect(effects.isSuperset(of: ["E-1", "E-3"]), "\(effects)")
        }
    }

    @Test("E2: an alarm expires the zone's held requests at once, and an approval afterwards does nothing")
    func E2_alarmExpiresHeld() async throws {
        try await withDaemon { d in
            let held = try await d.write("sra-door.lock", 1)
            let rid = try #require(held["requestId"]?.stringValue)
            try d.plant.set("fire-panel.alarm", 1)
            await d.scan()
            let state = try await d.agent("facilities-agent", "requests.get", .obj([("requestId", .string(rid))]))
            #expect(state["result"]?["outcome"]?.stringValue == "expired", "\(state.encoded())")
            let e2 = try await d.audited("effect").first { $0["effect"]?.stringValue == "E-2" && $0["zone"]?.stringValue == "server-room-a" }
            #expect(e2?["expired"]?.arrayValue?.contains(.string(rid)) == true, "\(e2?.encoded() ?? "no E-2 record")")
            let late = try await d.operatorCall("approvals.approve", .obj([("requestId", .string(rid))]))
            #expect(late["error"] != nil, "\(late.encoded())")
            #expect(d.plant.value("sra-door.lock") == 0)
        }
    }

    @Test("E4: an agent's reduction of cooling is undone when someone walks in; a technician's is not")
    func E4_undoesAgentsNotTechnicians() async throws {
        try await withDaemon { d in
            let r = try await d.write("crac-1.run", 0)
            #expect(r["outcome"]?.stringValue == "executed", "\(r.encoded())")
            try d.plant.set("crac-2.run", 0)  // a person at the equipment
            await d.scan()
            try d.plant.set("server-room-a.occupied", 1)
            await d.scan()
            #expect(d.plant.value("crac-1.run") == 1)
            #expect(d.plant.value("crac-2.run") == 0)
            #expect(safetyWrites(d, to: "crac-2.run").isEmpty)
        }
    }

    @Test("E4: a setpoint an agent raised above 27 °C goes back to its value before when the room is occupied")
    func E4_setpointBack() async throws {
        try await withDaemon { d in
            let r = try await d.write("crac-1.setpoint", 30)
            #expect(r["outcome"]?.stringValue == "executed", "\(r.encoded())")
            try d.plant.set("server-room-a.occupied", 1)
            await d.scan()
            #expect(d.plant.value("crac-1.setpoint") == 22)
        }
    }

    @Test("RL11: while E-4 drives an output, an agent may not write another value to it")
    func RL11_effectOwnsTheOutput() async throws {
        try await withDaemon { d in
            _ = try await d.write("crac-1.setpoint", 30)
            try d.plant.set("server-room-a.occupied", 1)
            await d.scan()
            let r = try await d.write("crac-1.setpoint", 26)
            #expect(r["outcome"]?.stringValue == "denied" && r["rule"]?.stringValue == "RL-11", "\(r.encoded())")
            #expect(d.plant.value("crac-1.setpoint") == 22)
        }
    }

    @Test("a safe-state write that fails is audited once, retried every scan, and lands when the device answers (audited once as recovered)")
    func effectWriteFailureAuditedOnceAndRetried() async throws {
        try await withDaemon { d in
            try await lockDoor(d)
            d.plant.fault("sra-door", .exception)
            try d.plant.set("fire-panel.alarm", 1)
            await d.scan(3)
            #expect(d.plant.value("sra-door.lock") == 1)
            #expect(safetyWrites(d, to: "sra-door.lock").count >= 3)
            #expect(try await d.audited("effect-failed").count == 1)
            #expect(try await d.audited("effect-recovered").isEmpty)
            d.plant.fault("sra-door", .none)
            await d.scan(3)
            #expect(d.plant.value("sra-door.lock") == 0)
            let recovered = try await d.audited("effect-recovered")
            #expect(recovered.count == 1, "\(recovered.map { $0.encoded() })")
            #expect(recovered.first?["point"]?.stringValue == "sra-door.lock")
            #expect(recovered.first?["after"]?.stringValue == "failed")
        }
    }
}
