import PropertyBased
import Testing
@testable import RedlineCore

/// The effects machine (E-1..E-4) and RL-11, on the demo site.
@Suite("Safe-state effects machine") struct EffectsMachineTests {
    let machine = EffectsMachine(site: Demo.site)

    func step(_ overrides: [String: Double] = [:], from prev: EffectState = EffectState()) -> EffectStep {
        machine.step(snapshot: Demo.snapshot(overrides), previous: prev, now: Demo.now)
    }

    func drives(_ s: EffectStep, _ effect: Effect) -> [String: Double] {
        Dictionary(uniqueKeysWithValues: s.drives.filter { $0.effect == effect }.map { ($0.point, $0.value) })
    }

    @Test func E1_releasesEveryLockOfAZoneInAlarm() {
        let s = step(Demo.buildingAlarm)
        #expect(drives(s, .e1) == ["sra-door.lock": 0])
        #expect(s.state.active.contains(EffectKey(.e1, "server-room-a")))
        #expect(s.events.contains(.engaged(EffectKey(.e1, "server-room-a"), why: s.events.compactMap {
            if case .engaged(let k, let why) = $0, k == EffectKey(.e1, "server-room-a") { return why } else { return nil }
        }.first ?? "")))
    }

    @Test func E1_releasesWhenOccupiedAndInHazardButNotOnHazardAlone() {
        #expect(drives(step(["sra-env.temperature": 41]), .e1).isEmpty)
        #expect(drives(step(["sra-env.temperature": 41, "sra-occupancy.occupied": 1]), .e1) == ["sra-door.lock": 0])
        #expect(drives(step(Demo.occupied), .e1).isEmpty)
        #expect(step().drives.isEmpty)
    }

    @Test func E1_unknownAlarmInputReleases() {
        var snap = Demo.snapshot()
        snap["fire-panel.alarm"] = .fault
        let s = machine.step(snapshot: snap, previous: EffectState(), now: Demo.now)
        #expect(drives(s, .e1)["sra-door.lock"] == 0)
    }

    @Test func E2_expiresHeldRequestsOnTheEdgeIntoAlarmOnly() {
        let first = step(Demo.buildingAlarm)
        let expiries = first.events.filter { if case .expireHeld = $0 { return true } else { return false } }
        #expect(expiries.count == Demo.site.zones.count, "every zone goes into alarm with the building")
        #expect(first.events.contains { if case .expireHeld(let z, let pts, _) = $0 { return z == "server-room-a" && pts.contains("sra-door.lock") } else { return false } })
        let again = step(Demo.buildingAlarm, from: first.state)
        #expect(!again.events.contains { if case .expireHeld = $0 { return true } else { return false } })
    }

    @Test func E3_annunciatesOccupiedHazard() {
        #expect(drives(step(["sra-occupancy.occupied": 1, "sra-env.co2": 0.6]), .e3) == ["sra-annunciator.strobe": 1])
        #expect(drives(step(["sra-env.co2": 0.6]), .e3).isEmpty)
    }

    @Test func E4_nightTimeStopIsRestoredWhenAPersonEnters() {
        var st = EffectState()
        let run = Demo.site.point("sra-exhaust.run")!
        EffectsMachine.agentWrote(run, value: 0, before: 1, into: &st)
        // Night: the room is empty, nothing is restored and the stop stands.
        let night = step(["sra-exhaust.run": 0], from: st)
        #expect(drives(night, .e4).isEmpty)
        #expect(night.state.reductions["sra-exhaust.run"] != nil)
        // A technician walks in: the exhaust is switched back on, and E-4 engages.
        let enter = step(["sra-exhaust.run": 0, "sra-occupancy.occupied": 1], from: night.state)
        #expect(drives(enter, .e4) == ["sra-exhaust.run": 1])
        #expect(enter.newDrives.contains(Drive(point: "sra-exhaust.run", value: 1, effect: .e4)))
        #expect(enter.events.contains { if case .engaged(let k, _) = $0 { return k == EffectKey(.e4, "server-room-a") } else { return false } })
        // Re-asserted while occupied (as a full-scan drive), even once it reads running.
        let later = step(["sra-exhaust.run": 1, "sra-occupancy.occupied": 1], from: enter.state)
        #expect(drives(later, .e4) == ["sra-exhaust.run": 1])
        #expect(later.newDrives.isEmpty)
        // The technician leaves: E-4 ends and the restored output is forgotten.
        let gone = step(["sra-exhaust.run": 1], from: later.state)
        #expect(drives(gone, .e4).isEmpty)
        #expect(gone.state.reductions.isEmpty)
        #expect(gone.events.contains { if case .ended(let k, _) = $0 { return k == EffectKey(.e4, "server-room-a") } else { return false } })
    }

    @Test func E4_setpointsGoBackToTheValueBeforeOrTo27() {
        let sp = Demo.site.point("crac-1.setpoint")!
        for (before, expected) in [(22.0, 22.0), (27.0, 27.0), (30.0, 27.0)] as [(Double, Double)] {
            var st = EffectState()
            EffectsMachine.agentWrote(sp, value: 32, before: before, into: &st)
            let s = step(["crac-1.setpoint": 32, "sra-occupancy.occupied": 1], from: st)
            #expect(drives(s, .e4) == ["crac-1.setpoint": expected], "before \(before)")
        }
        var unknown = EffectState()
        EffectsMachine.agentWrote(sp, value: 32, before: nil, into: &unknown)
        #expect(drives(step(["crac-1.setpoint": 32, "sra-occupancy.occupied": 1], from: unknown), .e4) == ["crac-1.setpoint": 27])
        // A setpoint at or below 27 °C is not a reduction RL-5 would forbid: nothing to undo.
        var mild = EffectState()
        EffectsMachine.agentWrote(sp, value: 26, before: 22, into: &mild)
        #expect(mild.reductions.isEmpty)
    }

    @Test func E4_keepsTheFirstValueBeforeARunOfReductions() {
        let sp = Demo.site.point("crac-1.setpoint")!
        var st = EffectState()
        EffectsMachine.agentWrote(sp, value: 29, before: 21, into: &st)
        EffectsMachine.agentWrote(sp, value: 32, before: 29, into: &st)
        #expect(st.reductions["crac-1.setpoint"]?.restore == 21)
        EffectsMachine.agentWrote(sp, value: 24, before: 32, into: &st)
        #expect(st.reductions["crac-1.setpoint"] == nil, "an agent that undoes its own reduction leaves nothing to restore")
    }

    @Test func E4_leavesOutputsPeopleChangedAtTheEquipment() {
        var st = EffectState()
        EffectsMachine.agentWrote(Demo.site.point("crac-2.setpoint")!, value: 32, before: 20, into: &st)
        // Someone at the unit set 25 °C by hand: neither what the agent wrote nor what E-4 restores.
        let s = step(["crac-2.setpoint": 25, "sra-occupancy.occupied": 1], from: st)
        #expect(drives(s, .e4).isEmpty)
        #expect(s.state.reductions.isEmpty)
        #expect(s.events.contains { if case .reductionForgotten(let p, _) = $0 { return p == "crac-2.setpoint" } else { return false } })
    }

    /// On BACnet a reading is Present_Value, which a person's hold at 8 may mask: the agent's
    /// reduced value stays in slot 9 and takes effect when the person lets go.
    @Test func E4_onBACnetAHoldAboveTheAgentsSlotIsNotTheEquipmentChanged() {
        let site = BACnetDemo.site
        let m = EffectsMachine(site: site)
        let sp = try! #require(site.point("crac-2.setpoint"))
        var st = EffectState()
        EffectsMachine.agentWrote(sp, value: 32, before: 20, into: &st)
        // A person holds 25 °C at 8 over the agent's 32 at 9; the room is empty: nothing is forgotten.
        let empty = m.step(snapshot: Demo.snapshot(["crac-2.setpoint": 25]), previous: st, now: Demo.now)
        #expect(empty.state.reductions["crac-2.setpoint"]?.written == 32, "\(empty.events)")
        // Someone comes in: E-4 restores 20 into the agents' slot (under the person's 25).
        let occupied = m.step(snapshot: Demo.snapshot(["crac-2.setpoint": 25, "sra-occupancy.occupied": 1]), previous: empty.state, now: Demo.now)
        #expect(drives(occupied, .e4)["crac-2.setpoint"] == 20)
        // Its write landing there (executed, or overridden by the person) is what ends the reduction.
        var after = occupied.state
        let event = EffectsMachine.effectLanded(Drive(point: sp.id, value: 20, effect: .e4), point: sp, into: &after)
        #expect(after.reductions["crac-2.setpoint"] == nil)
        #expect(event != nil)
        // A Modbus register, in the same case, is the equipment changed: forgotten (E4_leavesOutputsPeopleChangedAtTheEquipment),
        // and effectLanded does not apply to it.
        var modbus = EffectState()
        let msp = try! #require(Demo.site.point("crac-2.setpoint"))
        EffectsMachine.agentWrote(msp, value: 32, before: 20, into: &modbus)
        #expect(EffectsMachine.effectLanded(Drive(point: msp.id, value: 20, effect: .e4), point: msp, into: &modbus) == nil)
        #expect(modbus.reductions["crac-2.setpoint"] != nil)
    }

    @Test func E4_stepsBackWhileTheFireSystemOwnsTheZone() {
        var st = EffectState()
        EffectsMachine.agentWrote(Demo.site.point("crac-3.run")!, value: 0, before: 1, into: &st)
        let s = step(["crac-3.run": 0, "sra-occupancy.occupied": 1, "fire-panel.alarm": 1], from: st)
        #expect(drives(s, .e4).isEmpty, "in alarm the fire system owns the outputs (RL-6)")
        #expect(s.state.reductions["crac-3.run"] != nil, "kept, to restore once the alarm ends")
    }

    @Test func RL11_noAgentWritesAnotherValueToADrivenOutput() {
        let s = step(["sra-occupancy.occupied": 1, "sra-env.temperature": 45])
        var state = Demo.state(["sra-occupancy.occupied": 1, "sra-env.temperature": 45])
        state.driven = s.state.driven
        let off = Demo.decide("sra-annunciator.strobe", 0, in: state)
        #expect(off.rule == .rl11)
        if case .denied(_, let why) = off { #expect(why.contains("E-3")) }
        #expect(Demo.decide("sra-annunciator.strobe", 1, in: state) == .allowed, "the effect's own value stays writable")
    }

    @Test func RL11_coversE4Restores() {
        var st = EffectState()
        EffectsMachine.agentWrote(Demo.site.point("crac-1.setpoint")!, value: 32, before: 22, into: &st)
        let s = step(["crac-1.setpoint": 32, "sra-occupancy.occupied": 1], from: st)
        var state = Demo.state(["sra-occupancy.occupied": 1])
        state.driven = s.state.driven
        #expect(Demo.decide("crac-1.setpoint", 25, in: state).rule == .rl11)
        #expect(Demo.decide("crac-1.setpoint", 22, in: state) == .allowed)
        #expect(Demo.decide("crac-1.setpoint", 30, in: state).rule == .rl5, "the earlier red line is named first")
    }

    @Test func RL11_isInTheTableAndDescribedAsARedLine() {
        #expect(RedLines.all.last?.id == .rl11)
        #expect(Rule.rl11.isRedLine)
    }
}

/// Properties of the effects machine on random sites and plants.
@Suite("Effects machine properties") struct EffectsPropertyTests {
    /// A random scenario plus random agent reductions remembered from before.
    static func setup(_ sc: Scenario) -> (EffectsMachine, EffectState) {
        var r = SplitMix64(state: sc.seed ^ 0xE4)
        var st = EffectState()
        for p in sc.site.points where EffectsMachine.isLifeSupport(p.role) && r.chance(0.5) {
            let v = p.role == .temperatureSetpoint ? r.pick([27.5, 30, 32]) : 0
            EffectsMachine.agentWrote(p, value: v, before: r.chance(0.7) ? r.pick([18, 22, 27, 29]) : nil, into: &st)
        }
        return (EffectsMachine(site: sc.site), st)
    }

    @Test func E1_E3_E4_everyOutputTheOracleSaysIsDriven() async {
        await propertyCheck(count: 2000, input: Scenario.gen) { sc in
            let (m, st) = Self.setup(sc)
            let s = m.step(snapshot: sc.snapshot, previous: st, now: sc.now)
            let oracle = Oracle(sc)
            let driven = Dictionary(s.drives.map { ($0.point, $0) }, uniquingKeysWith: { a, _ in a })
            for p in sc.site.points {
                let z = (occupied: oracle.occupied(p.zone), alarm: oracle.inAlarm(p.zone), hazard: oracle.hazard(p.zone))
                if p.role == .egressLock && (z.alarm || (z.occupied && z.hazard)) {
                    #expect(driven[p.id]?.value == 0, "E-1 must release \(p.id): \(sc)")
                }
                if p.role == .annunciator && z.occupied && z.hazard {
                    #expect(driven[p.id]?.value == 1, "E-3 must annunciate \(p.id): \(sc)")
                }
                if let r = st.reductions[p.id], z.occupied && !z.alarm {
                    // Unless a person changed it at the equipment (its fresh reading is neither value).
                    let v = oracle.fresh(p)
                    if v == nil || v == r.written || v == r.restore {
                        #expect(driven[p.id]?.value == r.restore, "E-4 must restore \(p.id): \(sc)")
                    }
                }
            }
        }
    }

    @Test func drivesOnlyEverHoldSafeValues() async {
        await propertyCheck(count: 2000, input: Scenario.gen) { sc in
            let (m, st) = Self.setup(sc)
            for d in m.step(snapshot: sc.snapshot, previous: st, now: sc.now).drives {
                let role = sc.site.point(d.point)!.role
                switch role {
                case .egressLock: #expect(d.value == 0)
                case .annunciator: #expect(d.value == 1)
                case .coolingRun, .ventilationRun, .exhaustRun: #expect(d.value == 1)
                case .temperatureSetpoint: #expect(d.value <= Limits.occupiedMaxSetpoint && Limits.setpointEnvelope.contains(d.value))
                default: Issue.record("an effect drove \(role.rawValue): \(sc)")
                }
            }
        }
    }

    @Test func RL11_noAgentWriteOfAnotherValueToADrivenOutputIsEverAllowed() async {
        await propertyCheck(count: 2000, input: Scenario.gen) { sc in
            let (m, st) = Self.setup(sc)
            let s = m.step(snapshot: sc.snapshot, previous: st, now: sc.now)
            var state = sc.state
            state.driven = s.state.driven
            for d in s.drives {
                for v in [0.0, 1, 15, 26, 27, 28, 32] where v != d.value {
                    for a in sc.site.agents {
                        let decision = Policy.decide(WriteCommand(agent: a.name, point: d.point, value: v), in: state, approved: true)
                        #expect(!decision.isAllowed && !decision.isHeld, "\(a.name) \(d.point)=\(v) while \(d.effect.rawValue) holds \(d.value): \(sc)")
                    }
                }
            }
        }
    }

    @Test func stepIsPureAndIdempotent() async {
        await propertyCheck(count: 1000, input: Scenario.gen) { sc in
            let (m, st) = Self.setup(sc)
            let a = m.step(snapshot: sc.snapshot, previous: st, now: sc.now)
            let b = m.step(snapshot: sc.snapshot, previous: st, now: sc.now)
            #expect(a.state == b.state && a.drives == b.drives && a.events == b.events)
            #expect(Set(a.newDrives).isSubset(of: Set(a.drives)))
            let again = m.step(snapshot: sc.snapshot, previous: a.state, now: sc.now)
            #expect(again.newDrives.isEmpty, "no news the second time: \(sc)")
            #expect(again.drives == a.drives)
            #expect(again.events.isEmpty, "no events the second time: \(again.events) \(sc)")
        }
    }
}

@Suite("Decisions without the plant") struct PlantIndependentDecisionTests {
    /// A write that is denied whatever the plant reads is denied on every snapshot, so
    /// deciding it without a fresh read (and without any device I/O) never lets one through.
    /// The rule it names is the policy's on the latest scan: a conditioned line (RL-3, RL-5,
    /// RL-6) where a condition holds there, else the plant-independent reason.
    @Test func deniedWhateverThePlantIsDeniedOnEveryPlant() async {
        await propertyCheck(count: 3000, input: Scenario.gen) { sc in
            guard Policy.deniedWhateverThePlant(sc.command, in: sc.state) else { return }
            let here = Policy.decide(sc.command, in: sc.state)
            let other = Scenario(seed: sc.seed &+ 1)
            var elsewhere = sc.state
            elsewhere.snapshot = other.snapshot
            let there = Policy.decide(sc.command, in: elsewhere)
            #expect(!here.isAllowed && !here.isHeld, "\(sc)")
            #expect(!there.isAllowed && !there.isHeld, "\(there): \(sc)")
            let conditioned: Set<Rule> = [.rl3, .rl5, .rl6, .rl11]
            if let a = here.rule, let b = there.rule, !conditioned.contains(a), !conditioned.contains(b) {
                #expect(a == b, "a plant-independent reason is the same everywhere: \(here) vs \(there): \(sc)")
            }
            #expect(!Policy.decide(sc.command, in: PolicyState(site: sc.site, snapshot: PlantSnapshot(), now: sc.now,
                                                               ready: sc.ready, quarantined: sc.quarantined)).isAllowed)
        }
    }

    @Test func noGrantAndQuarantineNeedNoPlant() {
        #expect(Policy.deniedWhateverThePlant(WriteCommand(agent: Demo.reporting, point: "crac-1.run", value: 1), in: Demo.state()))
        #expect(Policy.deniedWhateverThePlant(WriteCommand(agent: Demo.facilities, point: "office-lights.on", value: 1),
                                              in: Demo.state(quarantined: [Demo.facilities])))
        #expect(Policy.deniedWhateverThePlant(WriteCommand(agent: Demo.facilities, point: "dispatch.cancel", value: 1), in: Demo.state()))
        #expect(!Policy.deniedWhateverThePlant(WriteCommand(agent: Demo.facilities, point: "office-lights.on", value: 1), in: Demo.state()))
        #expect(!Policy.deniedWhateverThePlant(WriteCommand(agent: Demo.facilities, point: "sra-door.lock", value: 1), in: Demo.state()))
    }
}

@Suite("Explanations stay inside the compartment") struct CompartmentExplanationTests {
    @Test func aDenialDoesNotNameInputsTheAgentCannotRead() {
        // The reporting agent reads sra-env.* and crac-*.*, not the occupancy sensor or the fire panel.
        let occupied = Demo.decide("crac-1.run", 0, agent: Demo.reporting, in: Demo.state(Demo.occupied))
        #expect(occupied.rule == .rl5)
        guard case .denied(_, let why) = occupied else { return }
        #expect(!why.contains("sra-occupancy"), "\(why)")
        #expect(why.contains("server-room-a is occupied (by an input you cannot read)"), "\(why)")
        let alarm = Demo.decide("crac-1.run", 1, agent: Demo.reporting, in: Demo.state(Demo.buildingAlarm))
        #expect(alarm.rule == .rl6)
        if case .denied(_, let w) = alarm {
            #expect(!w.contains("fire-panel"), "\(w)")
            #expect(w.contains("in alarm (by an input you cannot read)"), "\(w)")
        }
        // An agent that may read the input is told which one.
        if case .denied(_, let w) = Demo.decide("crac-1.run", 0, in: Demo.state(Demo.occupied)) {
            #expect(w.contains("sra-occupancy.occupied reports occupied"))
        }
    }

    @Test func anInputTheAgentCanReadIsNamed() {
        let hot = Demo.decide("crac-1.run", 1, agent: Demo.reporting, in: Demo.state(["sra-env.temperature": 45, "fire-panel.alarm": 1]))
        if case .denied(_, let w) = hot { #expect(!w.contains("fire-panel.alarm")) }
    }
}

@Suite("Free text is capped in the audit log") struct FreeTextTests {
    @Test func shortTextIsKeptVerbatim() {
        let t: [(String, JSON)] = [("reason", "Override code EXEC-4429")]
        #expect(FreeText.stored(t) == .object(t))
    }

    @Test func longTextKeepsItsHashAndLength() {
        let long = String(repeating: "é", count: 30_000)  // 60,000 bytes
        let stored = FreeText.stored([("reason", .string(long))])
        let excerpt = stored["excerpt"]?.stringValue ?? ""
        #expect(excerpt.utf8.count <= FreeText.maxStoredBytes)
        #expect(excerpt.utf8.count > FreeText.maxStoredBytes - 4)
        let whole = JSON.object([("reason", .string(long))]).encoded()
        #expect(stored["bytes"]?.numberValue == Double(whole.utf8.count))
        #expect(stored["sha256"]?.stringValue?.count == 64)
        #expect(FreeText.stored([("reason", .string(long + "x"))])["sha256"] != stored["sha256"])
    }
}

@Suite("What is decided is what is written") struct QuantizedDecisionTests {
    @Test func decisionsAreOnTheQuantizedValue() {
        let occupied = Demo.state(Demo.occupied)
        // Scale 0.1: 27.04 lands as 27.0 (allowed in an occupied room), 27.06 as 27.1 (RL-5).
        let (q1, d1) = Policy.decideQuantized(WriteCommand(agent: Demo.facilities, point: "crac-1.setpoint", value: 27.04), in: occupied)
        #expect(q1.value == 27 && d1 == .allowed)
        let (q2, d2) = Policy.decideQuantized(WriteCommand(agent: Demo.facilities, point: "crac-1.setpoint", value: 27.06), in: occupied)
        #expect(q2.value == 27.1 && d2.rule == .rl5)
        // 32.04 lands as 32.0: inside the envelope; 14.96 as 15.0.
        #expect(Policy.decideQuantized(WriteCommand(agent: Demo.facilities, point: "crac-1.setpoint", value: 32.04), in: Demo.state()).1 == .allowed)
        #expect(Policy.decideQuantized(WriteCommand(agent: Demo.facilities, point: "crac-1.setpoint", value: 14.96), in: Demo.state()).1 == .allowed)
    }

    @Test func aScaleTwoRegisterTurns27Into28AndTheDecisionSeesIt() {
        var site = Demo.makeSite()
        var points = site.points
        let k = points.firstIndex { $0.id == "crac-4.setpoint" }!
        points[k].binding = .modbus(table: .holdingRegister, address: 0, scale: 2, signed: false)
        site = Site(name: site.name, timing: site.timing, zones: site.zones, buses: site.buses, devices: site.devices,
                    points: points, agents: site.agents, operators: site.operators, approvals: site.approvals)
        let state = PolicyState(site: site, snapshot: Demo.snapshot(Demo.occupied), now: Demo.now)
        let (q, d) = Policy.decideQuantized(WriteCommand(agent: Demo.facilities, point: "crac-4.setpoint", value: 27), in: state)
        #expect(q.value == 28)
        #expect(d.rule == .rl5, "27 would land as 28 °C in an occupied room")
    }

    @Test func aValueTheEncodingCannotCarryIsDenied() {
        // A boolean coil carries only 0 or 1: RL-7 names 0.5 first.
        #expect(Policy.decideQuantized(WriteCommand(agent: Demo.facilities, point: "office-lights.on", value: 0.5), in: Demo.state()).1.rule == .rl7)
        // dispatch.delay is RL-2 whatever its value; a register with 70000 s is out of the register's range.
        #expect(Policy.decideQuantized(WriteCommand(agent: Demo.facilities, point: "dispatch.delay", value: 70_000), in: Demo.state()).1.rule == .rl2)
    }
}
