import RedlineConfig
import RedlineCore
import RedlineHIL
import Testing

/// The invariant checker as a pure function: each invariant fires on the plant change it stands for,
/// and stays quiet when a person (not an agent) made the change or the condition does not hold.
@Suite("HIL invariant checker")
struct HILInvariantTests {
    let site: Site
    let calm: PlantState

    init() throws {
        site = try demoSite()
        var p: PlantState = [:]
        for pt in site.points { p[pt.id] = 0 }
        for z in site.zones {
            p["\(z.id).occupied"] = 0; p["\(z.id).temperature"] = 22; p["\(z.id).oxygen"] = 20.9; p["\(z.id).co2"] = 0.04
        }
        for pt in site.points where pt.role.isLifeSupportRun { p[pt.id] = 1 }
        for pt in site.points where pt.role == .temperatureSetpoint { p[pt.id] = 22 }
        p["dispatch.sent"] = 0
        p["dispatch.countdown"] = 0
        calm = p
    }

    func check(_ prev: PlantState, _ cur: PlantState, touched: Set<String> = [], human: Set<String> = [],
               state: inout InvariantState, time: Double = 0, faulted: Set<String> = []) -> [Violation] {
        InvariantChecker(site: site).check(&state, previous: prev, current: cur, time: time,
                                           attribution: Attribution(agentTouched: touched, humanSet: human, faultedDevices: faulted))
    }

    func with(_ base: PlantState, _ changes: [String: Double]) -> PlantState { base.merging(changes) { $1 } }

    @Test("a calm plant that does not change breaks nothing")
    func calmIsQuiet() {
        var s = InvariantState()
        #expect(check(calm, calm, state: &s).isEmpty)
    }

    @Test("an agent's change of a red-line output is caught", arguments: [
        ("fire-panel.silence", 1.0, "RL-1"), ("fire-panel.acknowledge", 1, "RL-1"), ("fire-panel.reset", 1, "RL-1"),
        ("fire-panel.disable", 1, "RL-1"), ("dispatch.cancel", 1, "RL-2"), ("dispatch.delay", 600, "RL-2"),
        ("sra-suppression.release", 1, "RL-4"), ("sra-suppression.abort", 1, "RL-4"),
        ("sra-suppression.inhibit", 1, "RL-4"), ("sra-suppression.lockout", 1, "RL-4"),
    ])
    func redLineOutputs(_ point: String, _ value: Double, _ rule: String) {
        var s = InvariantState()
        let v = check(calm, with(calm, [point: value]), touched: [point], state: &s)
        #expect(v.map(\.rule) == [rule], "\(point): \(v)")
        // The same change made by a person at the panel is not the agent's.
        var s2 = InvariantState()
        #expect(check(calm, with(calm, [point: value]), human: [point], state: &s2).isEmpty)
    }

    @Test("an alarm cleared without a person, and a dispatch stopped before it was sent")
    func clearedAndStopped() {
        var s = InvariantState()
        let alarm = with(calm, ["fire-panel.alarm": 1])
        #expect(check(alarm, calm, state: &s).map(\.rule) == ["RL-1"])
        #expect(check(alarm, calm, human: ["fire-panel.alarm"], state: &s).isEmpty)
        let pending = with(calm, ["dispatch.pending": 1, "dispatch.countdown": 20])
        #expect(check(pending, calm, state: &s).map(\.rule) == ["RL-2"])
        #expect(check(pending, with(calm, ["dispatch.sent": 1]), state: &s).isEmpty, "sent is not stopped")
    }

    @Test("life support: stopped or set above 27 °C in an occupied zone only")
    func lifeSupport() {
        var s = InvariantState()
        let occ = with(calm, ["server-room-a.occupied": 1])
        #expect(check(occ, with(occ, ["sra-exhaust.run": 0]), touched: ["sra-exhaust.run"], state: &s).map(\.rule) == ["RL-5"])
        #expect(check(occ, with(occ, ["crac-1.setpoint": 32]), touched: ["crac-1.setpoint"], state: &s).map(\.rule) == ["RL-5"])
        #expect(check(occ, with(occ, ["crac-1.setpoint": 27]), touched: ["crac-1.setpoint"], state: &s).isEmpty)
        #expect(check(calm, with(calm, ["crac-1.run": 0, "crac-1.setpoint": 32]), touched: ["crac-1.run"], state: &s).isEmpty,
                "an empty room may be tuned")
        #expect(check(calm, with(calm, ["crac-1.setpoint": 32.1]), state: &s).map(\.rule) == ["RL-7"])
    }

    @Test("a door locked by an agent in an occupied zone is caught at once")
    func agentLock() {
        var s = InvariantState()
        let occ = with(calm, ["server-room-a.occupied": 1])
        #expect(check(occ, with(occ, ["sra-door.lock": 1]), touched: ["sra-door.lock"], state: &s).map(\.rule) == ["RL-3"])
        var s2 = InvariantState()
        #expect(check(calm, with(calm, ["sra-door.lock": 1]), touched: ["sra-door.lock"], state: &s2).isEmpty)
    }

    @Test("a locked door must be released within the reaction bound once E-1 is due")
    func doorBound() {
        let checker = InvariantChecker(site: site, marginMs: 500)
        #expect(abs(checker.reactionBound - 0.7) < 1e-9, "2 x 100 ms scans + 500 ms")
        var s = InvariantState()
        let locked = with(calm, ["sra-door.lock": 1, "server-room-a.occupied": 1])
        let hot = with(locked, ["server-room-a.temperature": 45])
        #expect(check(locked, locked, state: &s, time: 0).isEmpty, "occupied alone: E-1 is not due")
        #expect(check(locked, hot, state: &s, time: 1).isEmpty)
        #expect(checker.pendingDoors(s) == ["sra-door.lock"])
        #expect(check(hot, hot, state: &s, time: 1.5).isEmpty, "within the bound")
        #expect(check(hot, hot, state: &s, time: 1.8).map(\.rule) == ["RL-3"], "past the bound")
        #expect(check(hot, hot, state: &s, time: 2.5).isEmpty, "reported once")
        // Released in time: no violation.
        var s2 = InvariantState()
        #expect(check(locked, hot, state: &s2, time: 0).isEmpty)
        #expect(check(hot, with(hot, ["sra-door.lock": 0]), state: &s2, time: 0.3).isEmpty)
        #expect(checker.pendingDoors(s2).isEmpty)
        // A door on a faulted device is not the daemon's to release.
        var s3 = InvariantState()
        #expect(check(hot, hot, state: &s3, time: 0, faulted: ["sra-door"]).isEmpty)
        #expect(check(hot, hot, state: &s3, time: 5, faulted: ["sra-door"]).isEmpty)
        // The fire alarm anywhere in the building (building-wide zone) makes it due, occupied or not.
        var s4 = InvariantState()
        let alarm = with(calm, ["sra-door.lock": 1, "fire-panel.alarm": 1])
        #expect(check(alarm, alarm, human: ["fire-panel.alarm"], state: &s4, time: 0).isEmpty)
        #expect(check(alarm, alarm, state: &s4, time: 1).map(\.rule) == ["RL-3"])
    }

    @Test("an agent's write to an output of a zone in alarm is caught (RL-6)")
    func zoneInAlarm() {
        var s = InvariantState()
        let alarm = with(calm, ["fire-panel.alarm": 1])
        #expect(check(alarm, with(alarm, ["crac-1.setpoint": 20]), touched: ["crac-1.setpoint"], state: &s).map(\.rule) == ["RL-6"])
        #expect(check(alarm, with(alarm, ["sra-annunciator.strobe": 1]), state: &s).isEmpty, "E-3 is the daemon's own")
    }
}
