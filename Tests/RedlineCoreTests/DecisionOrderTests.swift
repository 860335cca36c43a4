import Testing
@testable import RedlineCore

@Suite("Decision order") struct DecisionOrderTests {
    @Test func firstForbiddingRedLineIsReported() {
        // 0.5 on an egress lock while occupied breaks RL-3 and RL-7: RL-3 comes first.
        #expect(Demo.decide("sra-door.lock", 0.5, in: Demo.state(Demo.occupied)).rule == .rl3)
        // Calm: only RL-7 remains.
        #expect(Demo.decide("sra-door.lock", 0.5).rule == .rl7)
        // Stopping a CRAC in an occupied room during a fire alarm: RL-5 before RL-6.
        #expect(Demo.decide("crac-1.run", 0, in: Demo.state(Demo.occupied.merging(Demo.buildingAlarm) { $1 })).rule == .rl5)
        // A setpoint of 40 in an occupied room: RL-5 (above 27) before RL-7 (envelope).
        #expect(Demo.decide("crac-1.setpoint", 40, in: Demo.state(Demo.occupied)).rule == .rl5)
        // RL-6 is about outputs: writing an input during an alarm is named by RL-8.
        #expect(Demo.decide("sra-occupancy.occupied", 0, in: Demo.state(Demo.buildingAlarm)).rule == .rl8)
        // A non-finite value is RL-7 whatever the point.
        #expect(Demo.decide("sra-occupancy.occupied", .nan).rule == .rl7)
        // Locking with NaN during an alarm: RL-3 before RL-6 and RL-7.
        #expect(Demo.decide("sra-door.lock", .nan, in: Demo.state(Demo.buildingAlarm)).rule == .rl3)
    }

    @Test func unknownPointIsIdenticalForMissingAndNotGranted() {
        // reporting-agent may not see dispatch.cancel; nobody has "dispatch.explode".
        let notGranted = Demo.decide("dispatch.cancel", 1, agent: Demo.reporting)
        let missing = Demo.decide("dispatch.explode", 1, agent: Demo.reporting)
        let missing2 = Demo.decide("dispatch.explode", 1, agent: Demo.facilities)
        #expect(notGranted == .unknownPoint)
        #expect(missing == .unknownPoint)
        #expect(missing2 == .unknownPoint)
        // Unknown agents see nothing.
        #expect(Demo.decide("office-lights.on", 1, agent: "nobody") == .unknownPoint)
        // Unknown point wins over not-ready and quarantine: nothing leaks about existence.
        let s = Demo.state(ready: false, quarantined: [Demo.reporting])
        #expect(Demo.decide("dispatch.cancel", 1, agent: Demo.reporting, in: s) == .unknownPoint)
    }

    @Test func notReadyBeforeQuarantineBeforeRedLines() {
        let both = Demo.state(ready: false, quarantined: [Demo.facilities])
        #expect(Demo.decide("dispatch.cancel", 1, in: both).rule == .notReady)
        #expect(Demo.decide("sra-door.lock", 0, in: both).rule == .notReady)
        let q = Demo.state(quarantined: [Demo.facilities])
        #expect(Demo.decide("dispatch.cancel", 1, in: q).rule == .quarantined)
        #expect(Demo.decide("office-lights.on", 1, in: q).rule == .quarantined)
        #expect(Demo.decide("dispatch.cancel", 1).rule == .rl2)
    }

    @Test func notWritableAfterRedLines() {
        // reporting-agent can see crac-1.run but has no write grant.
        #expect(Demo.decide("crac-1.run", 1, agent: Demo.reporting).rule == .notWritable)
        // Red lines come first: a forbidden write is reported as its red line, not as a missing grant.
        #expect(Demo.decide("crac-1.setpoint", 40, agent: Demo.reporting).rule == .rl7)
        #expect(Demo.decide("sra-env.temperature", 20, agent: Demo.reporting).rule == .rl8)
    }

    @Test func outOfRangeWhenConfiguredNarrowerThanEnvelope() {
        // office-ahu.setpoint is configured 16-30, the envelope is 15-32. office-1 is occupied (no sensor): use <= 27.
        #expect(Demo.decide("office-ahu.setpoint", 15.5).rule == .outOfRange)
        #expect(Demo.decide("office-ahu.setpoint", 16) == .allowed)
        #expect(Demo.decide("office-ahu.setpoint", 15).rule == .outOfRange)
        // Above 30 but the room is occupied: RL-5 first.
        #expect(Demo.decide("office-ahu.setpoint", 31).rule == .rl5)
        // With a sensor saying empty, 31 is outside the configured range only.
        var site = Demo.site
        site = Site(name: site.name, timing: site.timing, zones: site.zones, points: site.points + [
            Point(id: "office-occ.occupied", device: "office-occ", name: "occupied", role: .occupancy, zone: "office-1",
                  bus: "b", unitId: 1, binding: .modbus(table: .discreteInput, address: 0, scale: 1, signed: false)),
        ], agents: site.agents, approvals: site.approvals)
        var st = Demo.state(site: site)
        st.snapshot["office-occ.occupied"] = .good(0, at: Demo.now)
        #expect(Demo.decide("office-ahu.setpoint", 31, in: st).rule == .outOfRange)
        #expect(Demo.decide("office-ahu.setpoint", 30, in: st) == .allowed)
    }

    @Test func heldAfterEveryOtherCheck() {
        #expect(Demo.decide("sra-door.lock", 1).isHeld)
        // approval does not hold an out-of-range or red-line write: those are denied outright.
        #expect(Demo.decide("sra-door.lock", 1, in: Demo.state(Demo.occupied)).rule == .rl3)
        #expect(Demo.decide("sra-door.lock", 2).rule == .rl7)
    }

    @Test func approvalNeverHoldsTheSafeValue() {
        #expect(Demo.decide("sra-door.lock", 0) == .allowed)
        // A site that (wrongly) asks approval for everything still never delays a safe value.
        let site = Site(name: "s", timing: Demo.site.timing, zones: Demo.site.zones, points: Demo.site.points,
                        agents: Demo.site.agents, approvals: [ApprovalRule(points: [PointPattern("*")], timeoutMs: 60_000)])
        let st = Demo.state(site: site)
        for (p, safe) in [("sra-door.lock", 0.0), ("crac-1.run", 1), ("sra-exhaust.run", 1), ("office-ahu.run", 1)] {
            #expect(Demo.decide(p, safe, in: st) == .allowed, "\(p)")
        }
        #expect(Demo.decide("crac-1.run", 0, in: st).isHeld)
        #expect(Demo.decide("office-lights.on", 1, in: st).isHeld)
    }

    @Test func everyDenialNamesItsRuleAndExplains() {
        let d = Demo.decide("sra-door.lock", 1, in: Demo.state(Demo.occupied))
        guard case .denied(let rule, let why) = d else { Issue.record("not denied"); return }
        #expect(rule == .rl3)
        #expect(why.contains("sra-occupancy.occupied"))
    }
}

@Suite("RL-0 unknown is unsafe") struct RL0UnknownIsUnsafeTests {
    static func withReading(_ id: String, _ r: Reading?) -> PolicyState {
        var s = Demo.state()
        s.snapshot[id] = r
        return s
    }
    /// Stale (old), stale (from the future), fault, never read, out of physical range, non-finite.
    static func unknowns(_ good: Double) -> [(String, Reading?)] {
        [
            ("stale", .good(good, at: Demo.now - 501)),
            ("future", .good(good, at: Demo.now + 1)),
            ("fault", Reading(value: good, at: Demo.now, faulted: true)),
            ("fault-no-value", .fault),
            ("never-read", nil),
            ("value-without-time", Reading(value: good, at: nil)),
            ("nan", .good(.nan, at: Demo.now)),
        ]
    }

    @Test func RL0_freshAtTheStaleLimitIsGood() {
        let s = Self.withReading("sra-occupancy.occupied", .good(0, at: Demo.now - 500))
        let p = Demo.site.point("sra-occupancy.occupied")!
        #expect(s.snapshot.quality(of: p, now: Demo.now, staleAfterMs: 500) == .good)
        #expect(Demo.decide("sra-door.lock", 1, in: s).isHeld)
    }

    @Test func RL0_qualities() {
        let p = Demo.site.point("sra-env.oxygen")!
        var s = PlantSnapshot()
        #expect(s.quality(of: p, now: Demo.now, staleAfterMs: 500) == .neverRead)
        s[p.id] = .good(20.9, at: Demo.now - 501)
        #expect(s.quality(of: p, now: Demo.now, staleAfterMs: 500) == .stale)
        s[p.id] = .good(20.9, at: Demo.now + 1)
        #expect(s.quality(of: p, now: Demo.now, staleAfterMs: 500) == .stale)
        s[p.id] = .good(101, at: Demo.now)
        #expect(s.quality(of: p, now: Demo.now, staleAfterMs: 500) == .fault)
        s[p.id] = .good(-0.1, at: Demo.now)
        #expect(s.quality(of: p, now: Demo.now, staleAfterMs: 500) == .fault)
        s[p.id] = Reading(value: 20.9, at: Demo.now, faulted: true)
        #expect(s.quality(of: p, now: Demo.now, staleAfterMs: 500) == .fault)
        s[p.id] = .good(20.9, at: Demo.now)
        #expect(s.quality(of: p, now: Demo.now, staleAfterMs: 500) == .good)
        #expect(s.freshValue(of: p, now: Demo.now, staleAfterMs: 500) == 20.9)
        // Extreme times never trap: they are stale.
        for at in [Int64.min, Int64.max, -1] {
            s[p.id] = .good(20.9, at: at)
            #expect(s.quality(of: p, now: Demo.now, staleAfterMs: 500) == .stale)
        }
    }

    @Test func RL0_unknownOccupancyCountsAsOccupied() {
        for (what, r) in Self.unknowns(0) {
            let s = Self.withReading("sra-occupancy.occupied", r)
            let c = ZoneCondition.evaluate(zone: "server-room-a", site: Demo.site, snapshot: s.snapshot, now: Demo.now)
            #expect(c.occupied && !c.inAlarm && !c.hazard, "\(what)")
            #expect(Demo.decide("sra-door.lock", 1, in: s).rule == .rl3, "\(what)")
            #expect(Demo.decide("crac-1.run", 0, in: s).rule == .rl5, "\(what)")
        }
        // Out of physical range (a 2 on a bit) is a fault, hence occupied.
        let s = Self.withReading("sra-occupancy.occupied", .good(2, at: Demo.now))
        #expect(Demo.decide("crac-1.run", 0, in: s).rule == .rl5)
    }

    @Test func RL0_missingOccupancySensorCountsAsOccupied() {
        let c = ZoneCondition.evaluate(zone: "office-1", site: Demo.site, snapshot: Demo.snapshot(), now: Demo.now)
        #expect(c.occupied)
        #expect(!c.inAlarm && !c.hazard)
        #expect(Demo.decide("office-ahu.run", 0).rule == .rl5)
    }

    @Test(arguments: ["fire-panel.alarm", "sra-suppression.predischarge", "sra-suppression.discharged"])
    func RL0_unknownAlarmInputCountsAsAlarm(id: String) {
        for (what, r) in Self.unknowns(0) {
            let s = Self.withReading(id, r)
            let c = ZoneCondition.evaluate(zone: "server-room-a", site: Demo.site, snapshot: s.snapshot, now: Demo.now)
            #expect(c.inAlarm && !c.occupied && !c.hazard, "\(what)")
            #expect(Demo.decide("sra-door.lock", 1, in: s).rule == .rl3, "\(what)")
            #expect(Demo.decide("crac-1.setpoint", 20, in: s).rule == .rl6, "\(what)")
        }
        let s = Self.withReading(id, .good(2, at: Demo.now))
        #expect(Demo.decide("crac-1.setpoint", 20, in: s).rule == .rl6)
    }

    @Test func RL0_unknownBuildingAlarmReachesEveryZone() {
        let s = Self.withReading("fire-panel.alarm", .fault)
        #expect(Demo.decide("office-lights.on", 1, in: s).rule == .rl6)
    }

    @Test(arguments: [("sra-env.temperature", 22.0), ("sra-env.oxygen", 20.9), ("sra-env.co2", 0.04)])
    func RL0_unknownEnvironmentCountsAsHazard(id: String, calm: Double) {
        for (what, r) in Self.unknowns(calm) {
            let s = Self.withReading(id, r)
            let c = ZoneCondition.evaluate(zone: "server-room-a", site: Demo.site, snapshot: s.snapshot, now: Demo.now)
            #expect(c.hazard && !c.occupied && !c.inAlarm, "\(what)")
            #expect(Demo.decide("sra-door.lock", 1, in: s).rule == .rl3, "\(what)")
        }
    }

    @Test func RL0_outOfPhysicalRangeEnvironmentIsFault() {
        for (id, v) in [("sra-env.temperature", 151.0), ("sra-env.temperature", -41), ("sra-env.oxygen", 100.1),
                        ("sra-env.co2", -1), ("sra-env.oxygen", .infinity)] {
            let s = Self.withReading(id, .good(v, at: Demo.now))
            let p = Demo.site.point(id)!
            #expect(s.snapshot.quality(of: p, now: Demo.now, staleAfterMs: 500) == .fault, "\(id)=\(v)")
            #expect(Demo.decide("sra-door.lock", 1, in: s).rule == .rl3, "\(id)=\(v)")
        }
    }

    @Test func RL0_humidityAndStatusDoNotGate() {
        // Only the roles of docs/DESIGN.md §3 gate conditions.
        let s = Self.withReading("sra-env.humidity", .fault)
        #expect(Demo.decide("sra-door.lock", 1, in: s).isHeld)
    }
}
