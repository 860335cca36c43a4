import Testing
@testable import RedlineCore

@Suite("RL-1 alarm controls") struct RL1AlarmControlTests {
    @Test(arguments: ["fire-panel.silence", "fire-panel.acknowledge", "fire-panel.reset", "fire-panel.disable"])
    func RL1_deniesEveryAlarmControlEvenWhenCalm(point: String) {
        for v in [0.0, 1.0] {
            #expect(Demo.decide(point, v).rule == .rl1)
            #expect(Demo.decide(point, v, approved: true).rule == .rl1)
        }
    }
    @Test func RL1_allowsTheNearestLegalWrite() {
        // Another granted boolean output of a calm, empty zone.
        #expect(Demo.decide("office-lights.on", 1) == .allowed)
    }
}

@Suite("RL-2 dispatch") struct RL2DispatchTests {
    @Test func RL2_deniesCancelAndDelayEver() {
        for v in [0.0, 1.0] { #expect(Demo.decide("dispatch.cancel", v).rule == .rl2) }
        for v in [0.0, 30.0, 600.0] { #expect(Demo.decide("dispatch.delay", v).rule == .rl2) }
        // The Server Room A scenario: the room is deadly and a dispatch is pending.
        let sra = Demo.state(["sra-env.temperature": 67, "sra-env.oxygen": 15.4, "sra-env.co2": 3.8,
                              "sra-occupancy.occupied": 1, "dispatch.pending": 1])
        #expect(Demo.decide("dispatch.cancel", 1, in: sra).rule == .rl2)
        #expect(Demo.decide("dispatch.cancel", 1, in: sra, approved: true).rule == .rl2)
    }
    @Test func RL2_allowsTheNearestLegalWrite() {
        #expect(Demo.decide("sra-annunciator.strobe", 1) == .allowed)
    }
}

@Suite("RL-3 egress locks") struct RL3EgressLockTests {
    @Test func RL3_deniesLockWhenOccupied() {
        #expect(Demo.decide("sra-door.lock", 1, in: Demo.state(Demo.occupied)).rule == .rl3)
    }
    @Test func RL3_deniesLockInAlarmOwnZone() {
        for id in ["sra-suppression.predischarge", "sra-suppression.discharged"] {
            #expect(Demo.decide("sra-door.lock", 1, in: Demo.state([id: 1])).rule == .rl3)
        }
    }
    @Test func RL3_deniesLockInBuildingWideAlarm() {
        #expect(Demo.decide("sra-door.lock", 1, in: Demo.state(Demo.buildingAlarm)).rule == .rl3)
    }
    @Test(arguments: [
        ("sra-env.temperature", 40.0), ("sra-env.temperature", 67.0),
        ("sra-env.oxygen", 19.49), ("sra-env.oxygen", 15.4),
        ("sra-env.co2", 0.5), ("sra-env.co2", 3.8),
    ])
    func RL3_deniesLockInHazard(input: String, value: Double) {
        #expect(Demo.decide("sra-door.lock", 1, in: Demo.state([input: value])).rule == .rl3)
    }
    @Test(arguments: [("sra-env.temperature", 39.9), ("sra-env.oxygen", 19.5), ("sra-env.co2", 0.49)])
    func RL3_boundaryJustInsideIsCalm(input: String, value: Double) {
        let d = Demo.decide("sra-door.lock", 1, in: Demo.state([input: value]))
        #expect(d.isHeld)
        #expect(Demo.decide("sra-door.lock", 1, in: Demo.state([input: value]), approved: true) == .allowed)
    }
    @Test func RL3_deniesLockWithAnyNonZeroValue() {
        // Anything but 0 is an attempt to lock: RL-3 is checked before RL-7.
        for v in [0.5, 2, -1, .nan, .infinity] {
            #expect(Demo.decide("sra-door.lock", v, in: Demo.state(Demo.occupied)).rule == .rl3)
        }
    }
    @Test func RL3_allowsReleaseAlways() {
        let deadly = ["sra-occupancy.occupied": 1.0, "fire-panel.alarm": 1, "sra-suppression.discharged": 1,
                      "sra-env.temperature": 67, "sra-env.oxygen": 15.4, "sra-env.co2": 3.8]
        for s in [Demo.state(), Demo.state(Demo.occupied), Demo.state(Demo.buildingAlarm), Demo.state(deadly)] {
            #expect(Demo.decide("sra-door.lock", 0, in: s) == .allowed)
            #expect(Demo.decide("sra-door.lock", -0.0, in: s) == .allowed)
        }
    }
    @Test func RL3_allowsLockWhenEmptyAndCalm() {
        // The demo site requires approval for sra-door.lock.
        let d = Demo.decide("sra-door.lock", 1)
        guard case .held(let timeout, _) = d else { Issue.record("expected held, got \(d)"); return }
        #expect(timeout == 300_000)
        #expect(Demo.decide("sra-door.lock", 1, approved: true) == .allowed)
    }
}

@Suite("RL-4 suppression") struct RL4SuppressionTests {
    @Test(arguments: ["sra-suppression.release", "sra-suppression.abort", "sra-suppression.inhibit", "sra-suppression.lockout"])
    func RL4_deniesEverySuppressionControl(point: String) {
        for v in [0.0, 1.0] {
            #expect(Demo.decide(point, v).rule == .rl4)
            #expect(Demo.decide(point, v, approved: true).rule == .rl4)
        }
    }
    @Test func RL4_allowsTheNearestLegalWrite() {
        #expect(Demo.decide("sra-exhaust.run", 1) == .allowed)
    }
}

@Suite("RL-5 life support") struct RL5LifeSupportTests {
    @Test(arguments: ["crac-1.run", "crac-4.run", "sra-exhaust.run"])
    func RL5_deniesStoppingWhenOccupied(point: String) {
        #expect(Demo.decide(point, 0, in: Demo.state(Demo.occupied)).rule == .rl5)
        #expect(Demo.decide(point, 0, in: Demo.state()) == .allowed)
        #expect(Demo.decide(point, 1, in: Demo.state(Demo.occupied)) == .allowed)
    }
    @Test func RL5_ventilationInOffice() {
        // office-1 has no occupancy sensor: RL-0 says it is occupied.
        #expect(Demo.decide("office-ahu.run", 0).rule == .rl5)
        #expect(Demo.decide("office-ahu.run", 1) == .allowed)
    }
    @Test func RL5_setpointAbove27DeniedWhenOccupied() {
        let occ = Demo.state(Demo.occupied)
        for v in [27.1, 28, 32] { #expect(Demo.decide("crac-2.setpoint", v, in: occ).rule == .rl5) }
        #expect(Demo.decide("crac-2.setpoint", 27, in: occ) == .allowed)
        #expect(Demo.decide("crac-2.setpoint", 15, in: occ) == .allowed)
        for v in [27.1, 28, 32] { #expect(Demo.decide("crac-2.setpoint", v) == .allowed) }
        #expect(Demo.decide("office-ahu.setpoint", 28).rule == .rl5)
        #expect(Demo.decide("office-ahu.setpoint", 27) == .allowed)
    }
    @Test func RL5_approvalDoesNotSkip() {
        #expect(Demo.decide("crac-1.run", 0, in: Demo.state(Demo.occupied), approved: true).rule == .rl5)
    }
}

@Suite("RL-6 fire system owns the zone") struct RL6AlarmZoneTests {
    static let outputs: [(String, Double)] = [
        ("crac-1.run", 1), ("crac-1.setpoint", 20), ("sra-exhaust.run", 1), ("sra-annunciator.strobe", 1),
        ("sra-annunciator.strobe", 0), ("office-lights.on", 1), ("office-ahu.run", 1), ("office-ahu.setpoint", 20),
    ]
    @Test func RL6_deniesEveryOutputInBuildingAlarm() {
        let s = Demo.state(Demo.buildingAlarm)
        for (p, v) in Self.outputs {
            #expect(Demo.decide(p, v, in: s).rule == .rl6, "\(p)=\(v)")
            #expect(Demo.decide(p, v, in: s, approved: true).rule == .rl6, "\(p)=\(v)")
        }
    }
    @Test func RL6_ownZoneAlarmDoesNotReachOtherZones() {
        let s = Demo.state(Demo.roomAlarm)
        for (p, v) in Self.outputs where p.hasPrefix("sra-") || p.hasPrefix("crac-") {
            #expect(Demo.decide(p, v, in: s).rule == .rl6, "\(p)=\(v)")
        }
        #expect(Demo.decide("office-lights.on", 1, in: s) == .allowed)
    }
    @Test func RL6_exceptsLockRelease() {
        #expect(Demo.decide("sra-door.lock", 0, in: Demo.state(Demo.buildingAlarm)) == .allowed)
        #expect(Demo.decide("sra-door.lock", 0, in: Demo.state(Demo.roomAlarm)) == .allowed)
    }
    @Test func RL6_allowsWhenNotInAlarm() {
        for (p, v) in Self.outputs { #expect(Demo.decide(p, v) == .allowed, "\(p)=\(v)") }
    }
}

@Suite("RL-7 envelopes") struct RL7EnvelopeTests {
    @Test func RL7_booleansTakeOnly0Or1() {
        for v in [0.5, 2, -1, 1.0000001] {
            #expect(Demo.decide("office-lights.on", v).rule == .rl7)
            #expect(Demo.decide("sra-exhaust.run", v).rule == .rl7)
        }
        #expect(Demo.decide("office-lights.on", 0) == .allowed)
        #expect(Demo.decide("office-lights.on", 1) == .allowed)
    }
    @Test func RL7_setpointEnvelope() {
        // The room is empty so RL-5 does not apply.
        #expect(Demo.decide("crac-1.setpoint", 14.9).rule == .rl7)
        #expect(Demo.decide("crac-1.setpoint", 32.1).rule == .rl7)
        #expect(Demo.decide("crac-1.setpoint", 15) == .allowed)
        #expect(Demo.decide("crac-1.setpoint", 32) == .allowed)
    }
    @Test func RL7_nonFiniteDenied() {
        for v in [Double.nan, .infinity, -.infinity, .signalingNaN] {
            #expect(Demo.decide("crac-1.setpoint", v).rule == .rl7)
            #expect(Demo.decide("office-lights.on", v).rule == .rl7)
        }
    }
    @Test func RL7_envelopeIsCompiledIn() {
        // A config cannot widen the envelope: a point claiming 0...100 still stops at 32.
        var site = Demo.site
        let wide = Point(id: "x.setpoint", device: "x", name: "setpoint", role: .temperatureSetpoint, zone: "server-room-a",
                         bus: "b", unitId: 1, binding: .modbus(table: .holdingRegister, address: 9, scale: 1, signed: false),
                         min: 0, max: 100)
        site = Site(name: site.name, timing: site.timing, zones: site.zones, points: site.points + [wide],
                    agents: [Agent(name: "a", uid: 1, read: [], write: [PointPattern("*")])])
        let st = PolicyState(site: site, snapshot: Demo.snapshot(), now: Demo.now)
        #expect(Policy.decide(WriteCommand(agent: "a", point: "x.setpoint", value: 50), in: st).rule == .rl7)
        #expect(Policy.decide(WriteCommand(agent: "a", point: "x.setpoint", value: 10), in: st).rule == .rl7)
        #expect(Policy.decide(WriteCommand(agent: "a", point: "x.setpoint", value: 31), in: st) == .allowed)
        #expect(wide.writeRange == 15...32)
    }
}

@Suite("RL-8 inputs") struct RL8InputTests {
    static let inputs = ["fire-panel.alarm", "fire-panel.trouble", "dispatch.pending", "sra-env.temperature",
                         "sra-env.humidity", "sra-env.oxygen", "sra-env.co2", "sra-occupancy.occupied",
                         "sra-door.contact", "crac-1.fault", "sra-suppression.predischarge", "sra-suppression.discharged"]
    @Test func RL8_inputsNeverWritable() {
        // An agent granted write on everything still cannot write an input.
        let site = Site(name: "s", timing: Demo.site.timing, zones: Demo.site.zones, points: Demo.site.points,
                        agents: [Agent(name: "root-ish", uid: 1, read: [PointPattern("*")], write: [PointPattern("*")])])
        let st = PolicyState(site: site, snapshot: Demo.snapshot(), now: Demo.now)
        for id in Self.inputs {
            for v in [0.0, 1.0, 22.0] {
                let d = Policy.decide(WriteCommand(agent: "root-ish", point: id, value: v), in: st, approved: true)
                #expect(d.rule == .rl8, "\(id)=\(v): \(d)")
            }
        }
        // The nearest legal write: an output of the same zone.
        #expect(Policy.decide(WriteCommand(agent: "root-ish", point: "office-lights.on", value: 1), in: st) == .allowed)
    }
    @Test func RL8_noRawAddressesReachable() {
        // Agents address points by declared name only: device, register or bus spellings are unknown.
        for id in ["sra-door", "sra-door-io", "sra-door.coil.0", "sra-door:0", "1:0", "coil:0", "sra-door.LOCK", " sra-door.lock", ""] {
            #expect(Demo.decide(id, 0) == .unknownPoint, "\(id)")
        }
    }
}

@Suite("RL-9 approvals never override red lines") struct RL9ApprovalTests {
    @Test func RL9_approvedNeverSkipsARedLine() {
        let cases: [(String, Double, [String: Double], Rule)] = [
            ("fire-panel.silence", 1, [:], .rl1), ("dispatch.cancel", 1, [:], .rl2),
            ("sra-door.lock", 1, Demo.occupied, .rl3), ("sra-suppression.abort", 1, [:], .rl4),
            ("crac-1.run", 0, Demo.occupied, .rl5), ("office-lights.on", 1, Demo.buildingAlarm, .rl6),
            ("crac-1.setpoint", 40, [:], .rl7), ("sra-env.temperature", 20, [:], .rl8),
        ]
        for (p, v, plant, rule) in cases {
            #expect(Demo.decide(p, v, in: Demo.state(plant), approved: true).rule == rule, "\(p)")
            #expect(Demo.decide(p, v, in: Demo.state(plant), approved: false).rule == rule, "\(p)")
        }
    }
    @Test func RL9_approvalIsReDecidedOnFreshReadings() {
        // Held while calm; someone walks in before the operator approves: the approved command is denied.
        var book = ApprovalBook()
        let cmd = WriteCommand(agent: Demo.facilities, point: "sra-door.lock", value: 1)
        guard case .held(let t, let why) = Policy.decide(cmd, in: Demo.state()) else { Issue.record("not held"); return }
        book.hold(id: "r1", command: cmd, now: Demo.now, timeoutMs: t, explanation: why)
        let approved = try? book.approve(id: "r1", now: Demo.now + 1000).get()
        #expect(approved?.command == cmd)
        #expect(Policy.decide(approved!.command, in: Demo.state(Demo.occupied), approved: true).rule == .rl3)
        #expect(Policy.decide(approved!.command, in: Demo.state(), approved: true) == .allowed)
    }
    @Test func RL9_theRedLineTableIsNotConfigurable() {
        #expect(RedLines.all.map(\.id) == [.rl1, .rl2, .rl3, .rl4, .rl5, .rl6, .rl7, .rl8, .rl9, .rl10, .rl11])
        // The quarantine policy only tightens.
        let loose = QuarantinePolicy(threshold: 100, windowMs: 1)
        #expect(loose.threshold == Limits.quarantineThreshold)
        #expect(loose.windowMs == Limits.quarantineWindowMs)
    }
}
