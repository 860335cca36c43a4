import Foundation
import RedlineClient
import RedlineCore

/// The plant a scenario acts on. The scenario runner interprets the steps: agents' writes and
/// reads, operator actions, audit checks and the invariant checks after every step are the same
/// whatever the plant is. What touches the physical plant (setting conditions, faulting devices,
/// letting time pass, looking at the ground truth) goes through a driver:
/// - `SimulatedPlant`: `redline-sim`'s control socket;
/// - `GuidedPlant`: a person at a real site, told each step and confirming it, with the daemon's
///   own readings as the evidence (a proof test).
protocol PlantDriver: AnyObject {
    /// "simulated" or "guided", for the record.
    var mode: String { get }
    /// How the run is announced: "simulated plant", "guided proof test".
    var title: String { get }
    /// The plant in its normal state at the start of a scenario.
    func reset(_ ctx: any PlantContext) throws(StepFailure)
    /// The ground truth the invariants are checked on.
    func look(_ ctx: any PlantContext) throws(StepFailure) -> PlantState
    /// Physical changes (a person's doing, for the attribution of what changes next).
    func set(_ changes: [PlantChange], instruction: String?, _ ctx: any PlantContext) throws(StepFailure) -> String
    /// A device taken off its bus, or given back (`mode` "none").
    func fault(_ device: String, mode: String, instruction: String?, _ ctx: any PlantContext) throws(StepFailure) -> String
    /// Plant time passes.
    func advance(_ seconds: Double, instruction: String?, _ ctx: any PlantContext) throws(StepFailure) -> String
    /// The plant shows each expectation within `within` seconds.
    func expect(_ list: [StateExpectation], within: Double, _ ctx: any PlantContext) throws(StepFailure) -> String
}

/// What a driver may use of the run: the site, the daemon's readings, the invariant check, and
/// the attribution of the next check's changes.
protocol PlantContext: AnyObject {
    var site: Site { get }
    var scanInterval: Double { get }
    /// The step being run (for a person's instructions).
    var stepNo: Int { get }
    /// The agent whose readings stand for the plant where there is no simulator.
    var observerAgent: String? { get }
    func readPoints(_ agent: String, _ ids: [String]) throws(StepFailure) -> [String: (value: Double?, quality: String)]
    /// One invariant check (looks at the plant through the driver).
    @discardableResult func observe() throws(StepFailure) -> PlantState
    /// A plant variable or point set by people (not by an agent).
    func setByPeople(_ name: String)
    /// A device faulted (`mode` other than "none") or restored.
    func deviceFault(_ device: String, mode: String)
    func say(_ line: String)
}

// MARK: - Simulated: the simulator's control socket

final class SimulatedPlant: PlantDriver {
    let control: String?
    let mode = "simulated"
    let title = "simulated plant"

    init(control: String?) { self.control = control }

    func sim() throws(StepFailure) -> LineClient {
        guard let control else { throw StepFailure("no simulator control socket (guided mode)") }
        do { return try LineClient(path: control, timeoutMs: 15_000) } catch { throw StepFailure("simulator control: \(error)") }
    }

    func simCall(_ method: String, _ params: JSON? = nil) throws(StepFailure) -> JSON {
        let c = try sim()
        defer { c.close() }
        do { return try c.call(method, params) } catch { throw StepFailure("\(method): \(error)") }
    }

    func reset(_ ctx: any PlantContext) throws(StepFailure) { _ = try simCall("plant.reset") }

    func look(_ ctx: any PlantContext) throws(StepFailure) -> PlantState {
        guard let o = try simCall("plant.get").objectValue else { throw StepFailure("plant.get returned no object") }
        var p: PlantState = [:]
        for (k, v) in o { if let n = v.numberValue { p[k] = n } }
        return p
    }

    func set(_ changes: [PlantChange], instruction: String?, _ ctx: any PlantContext) throws(StepFailure) -> String {
        for c in changes {
            _ = try simCall("plant.set", .obj([("name", .string(c.name)), ("value", .number(c.value))]))
            ctx.setByPeople(c.name)
        }
        return ""
    }

    func fault(_ device: String, mode: String, instruction: String?, _ ctx: any PlantContext) throws(StepFailure) -> String {
        _ = try simCall("device.fault", .obj([("device", .string(device)), ("mode", .string(mode))]))
        ctx.deviceFault(device, mode: mode)
        return ""
    }

    func advance(_ seconds: Double, instruction: String?, _ ctx: any PlantContext) throws(StepFailure) -> String {
        do {
            let c = try sim()
            defer { c.close() }
            let r = try c.call("plant.advance", .obj([("seconds", .number(seconds))]))
            return "plant time \(fmt(((r["time"]?.numberValue ?? 0) * 10).rounded() / 10)) s"
        } catch let e as StepFailure { throw e } catch {
            throw StepFailure("plant.advance: \(error) (run redline-sim with --clock manual for scenarios that advance time)")
        }
    }

    func expect(_ list: [StateExpectation], within: Double, _ ctx: any PlantContext) throws(StepFailure) -> String {
        let deadline = Monotonic.seconds() + within
        var last: PlantState = [:]
        while true {
            last = try ctx.observe()
            let bad = list.filter { !$0.match.matches(last[$0.name]) }
            if bad.isEmpty { break }
            if Monotonic.seconds() >= deadline {
                throw StepFailure("after \(fmt(within)) s: " + bad.map { "\($0.name) = \(last[$0.name].map(fmt) ?? "missing"), expected \($0.match)" }.joined(separator: "; "))
            }
            sleepSeconds(ctx.scanInterval)
        }
        return list.map { "\($0.name) = \(last[$0.name].map(fmt) ?? "?")" }.joined(separator: ", ")
    }
}

// MARK: - Guided: a person at the site

final class GuidedPlant: PlantDriver {
    let mode = "guided"
    let title = "guided proof test"
    /// Where the person's answers come from (stdin).
    let input: () -> String?

    init(input: @escaping () -> String?) { self.input = input }

    /// Prints an instruction and waits for Enter (or a y/n answer when `question`). Input closed
    /// ends the run: nobody is there to do the next step.
    @discardableResult
    func prompt(_ text: String, equivalent: String, question: Bool = false, _ ctx: any PlantContext) throws(StepFailure) -> String {
        ctx.say(">> STEP \(ctx.stepNo): \(text)")
        ctx.say("   (simulator equivalent: \(equivalent))")
        ctx.say(question ? "   Answer y or n, then press Enter:" : "   Press Enter when done.")
        guard let answer = input() else { throw StepFailure("no answer from the engineer (input closed)", endsRun: true) }
        return answer.trimmingCharacters(in: .whitespaces).lowercased()
    }

    func reset(_ ctx: any PlantContext) throws(StepFailure) {
        try prompt("Put \(ctx.site.name) in its normal state (rooms empty, alarms clear, doors released), make sure the test is authorised, then press Enter.",
                   equivalent: "plant.reset", ctx)
    }

    /// The daemon's good readings of every point the observer sees.
    func look(_ ctx: any PlantContext) throws(StepFailure) -> PlantState {
        guard let obs = ctx.observerAgent, let a = ctx.site.agent(named: obs) else { throw StepFailure("no observer agent") }
        let ids = ctx.site.points.filter { a.canSee($0.id) }.map(\.id)
        return try ctx.readPoints(obs, ids).compactMapValues { $0.quality == "good" ? $0.value : nil }
    }

    func advance(_ seconds: Double, instruction: String?, _ ctx: any PlantContext) throws(StepFailure) -> String {
        try prompt(instruction ?? "Let \(fmt(seconds)) s of plant time pass (keep the conditions as they are), then press Enter.",
                   equivalent: "plant.advance \(fmt(seconds))", ctx)
        return "engineer let \(fmt(seconds)) s pass"
    }

    /// The points whose readings show a plant variable.
    func witnesses(_ name: String, _ site: Site) -> [Point] {
        if let p = site.point(name) { return [p] }
        let parts = name.split(separator: ".", maxSplits: 1).map(String.init)
        guard parts.count == 2 else { return [] }
        let role: Role?
        switch parts[1] {
        case "occupied": role = .occupancy
        case "temperature": role = .temperature
        case "oxygen": role = .oxygen
        case "co2": role = .co2
        case "humidity": role = .humidity
        case "failed": return site.points.filter { $0.device == parts[0] && $0.role == .equipmentFault }
        default: role = nil
        }
        guard let role else { return [] }
        return site.points.filter { $0.zone == parts[0] && $0.role == role }
    }

    func instruction(for c: PlantChange, _ site: Site) -> String {
        let parts = c.name.split(separator: ".", maxSplits: 1).map(String.init)
        let on = c.value != 0
        if let p = site.point(c.name) {
            switch p.role {
            case .occupancy: return on ? "Trigger the occupancy sensor \(p.id) in \(p.zone)" : "Clear the occupancy sensor \(p.id) in \(p.zone) (leave the room)"
            case .fireAlarm: return on ? "Put the fire panel \(p.device) into alarm (operate a test detector or call point)" : "Reset the fire panel \(p.device) at the panel"
            case .gasAlarm: return on ? "Put the gas detection \(p.device) into alarm with test gas" : "Reset the gas alarm \(p.device) at the panel"
            default: return "Make \(p.id) read \(fmt(c.value))"
            }
        }
        guard parts.count == 2 else { return "Make \(c.name) = \(fmt(c.value))" }
        switch parts[1] {
        case "occupied": return on ? "Trigger the occupancy sensor in \(parts[0])" : "Clear the occupancy sensor in \(parts[0]) (leave the room)"
        case "temperature": return "Bring the temperature sensor in \(parts[0]) to \(fmt(c.value)) °C (calibrator or heat gun)"
        case "oxygen": return "Bring the oxygen sensor in \(parts[0]) to \(fmt(c.value)) % (test gas or calibrator)"
        case "co2": return "Bring the CO2 sensor in \(parts[0]) to \(fmt(c.value)) % (test gas or calibrator)"
        case "failed": return on ? "Fail \(parts[0]) (trip it at its isolator so it stops)" : "Restore \(parts[0]) (close its isolator)"
        default: return "Make \(c.name) = \(fmt(c.value))"
        }
    }

    func near(_ v: Double, _ want: Double, _ role: Role) -> Bool {
        role.isBoolean ? (v != 0) == (want != 0) : abs(v - want) <= max(0.5, abs(want) * 0.05)
    }

    func set(_ changes: [PlantChange], instruction given: String?, _ ctx: any PlantContext) throws(StepFailure) -> String {
        var evidence: [String] = []
        // A step's own instruction covers all its changes (one prompt); otherwise one prompt per change.
        if let given {
            try prompt("\(given), then press Enter.", equivalent: changes.map { "plant.set \($0.name) \(fmt($0.value))" }.joined(separator: "; "), ctx)
        }
        for c in changes {
            if given == nil {
                try prompt("\(instruction(for: c, ctx.site)), then press Enter.", equivalent: "plant.set \(c.name) \(fmt(c.value))", ctx)
            }
            let pts = witnesses(c.name, ctx.site)
            guard let obs = ctx.observerAgent, !pts.isEmpty else {
                evidence.append("\(c.name) = \(fmt(c.value)): no input shows it; on the engineer's word")
                ctx.setByPeople(c.name)
                continue
            }
            // Confirm on the real inputs (allow a few scans for the reading to arrive).
            let deadline = Monotonic.seconds() + Double(ctx.site.timing.staleAfterMs) / 1000 + 2
            var last: [String: (value: Double?, quality: String)] = [:]
            while true {
                last = try ctx.readPoints(obs, pts.map(\.id))
                let ok = pts.allSatisfy { p in last[p.id].map { $0.quality == "good" && near($0.value ?? .nan, c.value, p.role) } ?? false }
                if ok { break }
                if Monotonic.seconds() >= deadline {
                    throw StepFailure("NOT CONFIRMED: " + pts.map { "\($0.id) reads \(last[$0.id]?.value.map(fmt) ?? "null") (\(last[$0.id]?.quality ?? "?"))" }.joined(separator: ", ") + ", expected \(fmt(c.value))")
                }
                sleepSeconds(ctx.scanInterval)
            }
            for p in pts { ctx.setByPeople(p.id) }
            ctx.setByPeople(c.name)
            evidence.append("confirmed " + pts.map { "\($0.id) = \(last[$0.id]?.value.map(fmt) ?? "?") (\(last[$0.id]?.quality ?? "?"))" }.joined(separator: ", "))
        }
        return evidence.joined(separator: "; ")
    }

    func fault(_ device: String, mode: String, instruction given: String?, _ ctx: any PlantContext) throws(StepFailure) -> String {
        let text = given ?? (mode == "none" ? "Reconnect \(device) to its bus" : "Disconnect \(device) from its bus (fault: \(mode))")
        try prompt("\(text), then press Enter.", equivalent: "device.fault \(device) \(mode)", ctx)
        ctx.deviceFault(device, mode: mode)
        let pts = ctx.site.points.filter { $0.device == device }
        guard let obs = ctx.observerAgent, !pts.isEmpty else { return "on the engineer's word" }
        let deadline = Monotonic.seconds() + Double(ctx.site.timing.staleAfterMs) / 1000 + 3
        while true {
            let got = try ctx.readPoints(obs, pts.map(\.id))
            let allGood = pts.allSatisfy { got[$0.id]?.quality == "good" }
            let noneGood = pts.allSatisfy { got[$0.id]?.quality != "good" }
            if mode == "none" ? allGood : noneGood {
                return "confirmed: \(device) readings " + (mode == "none" ? "good" : "not good (" + Set(pts.compactMap { got[$0.id]?.quality }).sorted().joined(separator: ", ") + ")")
            }
            if Monotonic.seconds() >= deadline { throw StepFailure("NOT CONFIRMED: \(device) readings are " + pts.map { "\($0.id) \(got[$0.id]?.quality ?? "?")" }.joined(separator: ", ")) }
            sleepSeconds(ctx.scanInterval)
        }
    }

    func expect(_ list: [StateExpectation], within: Double, _ ctx: any PlantContext) throws(StepFailure) -> String {
        var parts: [String] = []
        let readable = list.filter { ctx.site.point($0.name) != nil }
        if !readable.isEmpty, let obs = ctx.observerAgent {
            let deadline = Monotonic.seconds() + within
            while true {
                let got = try ctx.readPoints(obs, readable.map(\.name))
                try ctx.observe()
                let bad = readable.filter { !$0.match.matches(got[$0.name]?.value) }
                if bad.isEmpty {
                    parts += readable.map { "\($0.name) reads \(got[$0.name]?.value.map(fmt) ?? "?")" }
                    break
                }
                if Monotonic.seconds() >= deadline {
                    throw StepFailure("after \(fmt(within)) s: " + bad.map { "\($0.name) reads \(got[$0.name]?.value.map(fmt) ?? "null"), expected \($0.match)" }.joined(separator: "; "))
                }
                sleepSeconds(ctx.scanInterval)
            }
        }
        for e in list where ctx.site.point(e.name) == nil {
            let a = try prompt("Check on site that \(e.name) is \(e.match) (no point reads it).", equivalent: "plant.get \(e.name), expect \(e.match)", question: true, ctx)
            guard a.hasPrefix("y") else { throw StepFailure("engineer reports \(e.name) is not \(e.match)") }
            parts.append("\(e.name) \(e.match): confirmed by the engineer")
        }
        return parts.joined(separator: ", ")
    }
}
