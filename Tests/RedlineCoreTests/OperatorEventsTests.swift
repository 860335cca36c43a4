import Testing
@testable import RedlineCore

@Suite("Operator events from audit records")
struct OperatorEventsTests {
    static func record(_ seq: Int, _ kind: String, _ fields: [(String, JSON)]) -> JSON {
        .object([("seq", .number(Double(seq))), ("time", "2026-12-01T12:00:00.000Z"), ("kind", .string(kind))] + fields
                + [("prev", "x"), ("hash", "y")])
    }

    static func names(_ r: JSON) -> [String] { OperatorEvents.events(for: r).compactMap { $0["event"]?.stringValue } }

    @Test("each event kind comes from its record, with that record's seq", arguments: [
        (record(1, "decision", [("requestId", "r-1"), ("agent", "a"), ("point", "sra-door.lock"), ("value", 1), ("outcome", "held"), ("explanation", "needs approval")]), "request.held"),
        (record(2, "approval", [("requestId", "r-1"), ("by", 0), ("action", "approve")]), "request.approved"),
        (record(3, "approval", [("requestId", "r-1"), ("by", 0), ("action", "deny"), ("reason", "no")]), "request.denied"),
        (record(4, "expired", [("requestId", "r-1"), ("agent", "a"), ("point", "p"), ("why", "timeout")]), "request.expired"),
        (record(5, "decision", [("requestId", "r-2"), ("agent", "a"), ("point", "dispatch.cancel"), ("value", 1), ("outcome", "denied"), ("rule", "RL-2"), ("explanation", "never")]), "redline.denied"),
        (record(6, "quarantine", [("agent", "a"), ("after", "r-2"), ("threshold", 3), ("windowS", 600)]), "agent.quarantined"),
        (record(7, "release", [("agent", "a"), ("by", 0), ("wasQuarantined", true)]), "agent.released"),
        (record(8, "effect", [("effect", "E-1"), ("zone", "z"), ("state", "engaged"), ("why", "fire")]), "effect.engaged"),
        (record(9, "effect", [("effect", "E-1"), ("zone", "z"), ("state", "ended"), ("why", "clear")]), "effect.ended"),
        (record(10, "effect-failed", [("effect", "E-1"), ("point", "p"), ("value", 0), ("error", "timeout")]), "effect.failed"),
        (record(11, "device", [("device", "d"), ("zone", "z"), ("state", "faulted"), ("why", "d.x: stale")]), "device.faulted"),
        (record(12, "device", [("device", "d"), ("zone", "z"), ("state", "recovered")]), "device.recovered"),
        (record(13, "ready", [("site", "s")]), "daemon.ready"),
        (record(14, "effect", [("effect", "E-2"), ("zone", "z"), ("why", "alarm"), ("expired", .array(["r-3"]))]), "request.expired"),
        (record(15, "effect-overridden", [("effect", "E-1"), ("point", "p"), ("value", 0), ("writePriority", 9), ("priority", 8), ("inEffect", 1)]), "effect.overridden"),
        (record(16, "effect-recovered", [("effect", "E-1"), ("point", "p"), ("value", 0), ("after", "overridden")]), "effect.recovered"),
    ])
    func mapping(record: JSON, expected: String) throws {
        let events = OperatorEvents.events(for: record)
        #expect(events.count == 1)
        let e = try #require(events.first)
        #expect(e["event"]?.stringValue == expected)
        #expect(e["seq"] == record["seq"])
        #expect(e["summary"]?.stringValue?.isEmpty == false)
        #expect(OperatorEvents.names.contains(expected))
    }

    @Test("an effect's write overridden at a higher BACnet priority is told as such, never as done, with the priority and the value in effect")
    func effectOverridden() throws {
        let r = Self.record(15, "effect-overridden", [("effect", "E-1"), ("point", "sra-door.lock"), ("value", 0), ("writePriority", 9),
                                                     ("priority", 8), ("inEffect", 1)])
        let e = try #require(OperatorEvents.events(for: r).first)
        #expect(e["priority"] == 8 && e["inEffect"] == 1 && e["writePriority"] == 9 && e["value"] == 0)
        #expect(e["summary"]?.stringValue == "E-1 wrote sra-door.lock = 0 at priority 9, but priority 8 overrides it: the value in effect is 1; "
                + "re-asserted every scan, it takes effect when priority 8 is relinquished")
        let unknown = Self.record(16, "effect-overridden", [("effect", "E-1"), ("point", "sra-door.lock"), ("value", 0), ("writePriority", 9),
                                                           ("priority", 8), ("inEffect", .null)])
        #expect(OperatorEvents.events(for: unknown).first?["summary"]?.stringValue?.contains("the value in effect is unknown;") == true)
    }

    @Test("records that are not events give none: reads, executed results, plain denials, unknown kinds")
    func noEvent() {
        #expect(Self.names(Self.record(1, "result", [("requestId", "r"), ("outcome", "executed")])).isEmpty)
        #expect(Self.names(Self.record(2, "decision", [("outcome", "allowed")])).isEmpty)
        #expect(Self.names(Self.record(3, "decision", [("outcome", "denied"), ("rule", "range")])).isEmpty)
        #expect(Self.names(Self.record(4, "from-the-future", [])).isEmpty)
        #expect(Self.names(.object([("kind", "ready")])).isEmpty)  // no seq: not a record
    }

    @Test("an approved request denied on fresh readings is an event; a red line names its rule")
    func deniedAfterApproval() throws {
        let r = Self.record(5, "decision", [("requestId", "r-9"), ("agent", "a"), ("point", "sra-door.lock"), ("value", 1),
                                            ("approvedBy", 0), ("outcome", "denied"), ("rule", "RL-3"), ("explanation", "occupied")])
        let e = try #require(OperatorEvents.events(for: r).first)
        #expect(e["event"]?.stringValue == "redline.denied")
        #expect(e["rule"]?.stringValue == "RL-3")
        let plain = Self.record(6, "decision", [("requestId", "r-9"), ("approvedBy", 0), ("outcome", "denied"), ("rule", "quarantined")])
        #expect(Self.names(plain) == ["request.denied"])
    }
}

@Suite("Device health by scan")
struct DeviceHealthTests {
    /// Every point of the demo site read and good (the daemon scans outputs too): the calm
    /// plant's inputs, and for each output a value inside its role's envelope.
    static func allGood(at time: Int64 = Demo.now) -> PlantSnapshot {
        var snap = Demo.snapshot(at: time)
        for p in Demo.site.points where snap.readings[p.id] == nil {
            let v = [0.0, 1, 20, 22].first { p.role.envelope.contains($0) } ?? 0
            snap.readings[p.id] = .good(v, at: time)
        }
        return snap
    }

    @Test("a device faults when any point is not good, recovers when all are, and each is told once")
    func transitions() {
        var h = DeviceHealth()
        let calm = Self.allGood()
        #expect(calm.readings.count == Demo.site.points.count)
        #expect(h.step(site: Demo.site, snapshot: calm, now: Demo.now).isEmpty)
        var snap = calm
        snap.readings["sra-occupancy.occupied"] = .fault
        let t = h.step(site: Demo.site, snapshot: snap, now: Demo.now)
        #expect(t.map(\.device) == ["sra-occupancy"])
        #expect(t.first?.faulted == true)
        #expect(t.first?.why == "sra-occupancy.occupied: fault")
        #expect(h.step(site: Demo.site, snapshot: snap, now: Demo.now).isEmpty)  // still faulted: told once
        // Recovery needs three good scans in a row; a flap in between starts the count again.
        #expect(h.step(site: Demo.site, snapshot: calm, now: Demo.now).isEmpty)
        #expect(h.step(site: Demo.site, snapshot: snap, now: Demo.now).isEmpty)
        #expect(h.step(site: Demo.site, snapshot: calm, now: Demo.now).isEmpty)
        #expect(h.step(site: Demo.site, snapshot: calm, now: Demo.now).isEmpty)
        #expect(h.faulted["sra-occupancy"] != nil)
        let back = h.step(site: Demo.site, snapshot: calm, now: Demo.now)
        #expect(back.map(\.device) == ["sra-occupancy"] && back.first?.faulted == false)
        #expect(h.faulted.isEmpty)
    }

    @Test("a device down at start-up is reported by the first scan; stale counts as faulted")
    func startup() {
        var h = DeviceHealth()
        let old = Self.allGood(at: Demo.now - Demo.site.timing.staleAfterMs - 1)
        let t = h.step(site: Demo.site, snapshot: old, now: Demo.now)
        #expect(t.count == Set(Demo.site.points.map(\.device)).count)
        #expect(t.allSatisfy { $0.faulted && $0.why.contains("stale") })
    }
}
