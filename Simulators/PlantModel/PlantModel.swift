import RedlineCore

/// The simulated plant behind `redline-sim`: a pure model (no clocks, no I/O).
/// Time only moves when `advance(seconds:)` is called.
///
/// ## Variables
/// - Per zone `Z`: `Z.occupied` (0/1), `Z.temperature` (°C), `Z.oxygen` (% vol),
///   `Z.co2` (% vol), `Z.humidity` (% RH).
/// - Per device `D` that has an `equipment-fault` input or a life-support run
///   output (`cooling-run`, `ventilation-run`, `exhaust-run`): `D.failed` (0/1).
///   A failed unit does nothing whatever its run command; its fault input reads 1.
/// - Every point id (`DEVICE.POINT`) is that point's physical state. Inputs that
///   measure a zone read the zone's variable (an `occupancy` input in zone Z reads
///   `Z.occupied`, a `temperature` input reads `Z.temperature`, and so on) and
///   `set` on such a point id sets the zone variable; an `equipment-fault` input
///   reads `D.failed`. Every other point, every output included, is its own variable.
/// - Per dispatch gateway `D` (a device with a `dispatch-pending` input):
///   `D.countdown` (seconds left, 0 when idle) and `D.sent` (latches at 1 once
///   the call has gone out).
///
/// ## Initial state (calm)
/// Rooms unoccupied at 22 °C, oxygen 20.9 %, CO2 0.04 %, humidity 45 %; every
/// run output 1 (running) and nothing failed; setpoints 22 °C; doors unlocked
/// and closed (`door-contact` 1); alarms, alarm controls, suppression and
/// dispatch idle (0).
///
/// ## Dynamics (integrated in steps of at most 0.1 s)
/// - **Temperature.** A zone with `cooling-run` units carries an IT heat load. With
///   a fraction f of its cooling units working (run = 1 and not failed), the room
///   moves towards `target = S + (1 - f) * (85 - S)`, S the mean setpoint of the
///   working units (22 °C when none has a setpoint), first order with a time
///   constant of 600 s when heating and 300 s when cooling. With every CRAC
///   failed an occupied Server Room A goes from 22 °C past 40 °C (hazard) in about
///   3.4 minutes and reaches the incident's 67 °C after about 12.5 minutes.
///   A zone with only `ventilation-run` units (an office air handler) drifts the
///   same way towards 30 °C when they stop. A zone with neither keeps its temperature.
/// - **Air.** A zone is ventilated when one of its `exhaust-run` or
///   `ventilation-run` units works, or when it has no such unit at all (natural
///   ventilation). Ventilated air returns to fresh air (20.9 % O2, 0.04 % CO2),
///   first order with a 120 s time constant. Unventilated and occupied, oxygen
///   falls by 0.35 %/min and CO2 rises by 0.25 %/min (a small sealed room; the
///   rates stand for the incident's combined causes, not one person's breath),
///   so O2 is below 19.5 % after 4 minutes and reaches the incident's 15.4 % after
///   about 15.7 minutes, with CO2 near 3.9 %. Unventilated and empty, the air stays as it is.
///   Oxygen is held within 10...20.9 % and CO2 within 0.04...10 %.
/// - **Fire panel.** A `fire-alarm` input latches: setting it to 1 holds it at 1
///   until a `set` to 0 (a manual reset at the panel) or a 0 -> 1 write of the
///   panel's `alarm-reset` output. Silence, acknowledge and disable are recorded
///   as physical state only.
/// - **Dispatch gateway.** A countdown of 30 s plus the gateway's `dispatch-delay`
///   register starts when any `fire-alarm` or `gas-alarm` of the site is active, or
///   when an occupied zone is in hazard (temperature >= 40 °C, oxygen < 19.5 % or
///   CO2 >= 0.5 %). `pending` reads 1 while it runs. Only the cancel output stops
///   it (cancel = 1 stops it and keeps it from starting); the trigger going away
///   does not. When it reaches 0 the call is sent: `D.sent` = 1, `pending` = 0.
/// - **Clean-agent panel.** A 0 -> 1 write of `suppression-release` starts a 30 s
///   pre-discharge (`suppression-predischarge` = 1) unless `inhibit` or `lockout`
///   is 1; `abort` = 1 holds the countdown; at its end `suppression-discharged` = 1.
/// - Door locks, contacts, annunciators, lighting and other outputs hold the
///   state last written.
public struct PlantModel: Sendable {
    public let site: Site
    /// Seconds of simulated time since the start (or the last reset).
    public private(set) var time: Double = 0
    private var vars: [String: Double] = [:]
    private var names: [String] = []
    private let initial: [String: Double]
    private let initialNames: [String]
    private let plans: [ZonePlan]
    private let alarmIDs: [String]
    private let gateways: [Gateway]
    private let predischarges: [Point]

    /// A dispatch gateway: its pending input, cancel outputs and delay register.
    struct Gateway: Sendable {
        var device: String
        var pending: String
        var cancels: [String]
        var delay: String?
    }

    /// A unit that runs (a CRAC, fan or air handler): its run point, failure variable and setpoint.
    struct Unit: Sendable {
        var run: String
        var failed: String
        var setpoint: String?
    }

    /// Per zone, precomputed: the units that act on its air.
    struct ZonePlan: Sendable {
        var temperature, oxygen, co2, occupied: String
        var cooling: [Unit] = []
        var ventilation: [Unit] = []
        var exhaust: [Unit] = []
    }

    public static let dispatchCountdownSeconds = 30.0
    public static let predischargeSeconds = 30.0
    public static let freshOxygen = 20.9
    public static let freshCO2 = 0.04
    public static let hotITRoom = 85.0
    public static let hotOffice = 30.0
    public static let heatingTau = 600.0
    public static let coolingTau = 300.0
    public static let airTau = 120.0
    public static let oxygenFallPerMin = 0.35
    public static let co2RisePerMin = 0.25

    public enum PlantError: Error, Sendable, Equatable, CustomStringConvertible {
        case unknownVariable(String)
        case invalidValue(String)
        public var description: String {
            switch self {
            case .unknownVariable(let n): return "unknown plant variable \(n)"
            case .invalidValue(let m): return m
            }
        }
    }

    public init(site: Site) {
        self.site = site
        var v: [String: Double] = [:]
        var order: [String] = []
        func add(_ n: String, _ x: Double) { if v[n] == nil { order.append(n) }; v[n] = x }
        for z in site.zones {
            add("\(z.id).occupied", 0)
            add("\(z.id).temperature", 22)
            add("\(z.id).oxygen", Self.freshOxygen)
            add("\(z.id).co2", Self.freshCO2)
            add("\(z.id).humidity", 45)
        }
        for d in site.devices {
            let pts = site.points.filter { $0.device == d.id }
            if pts.contains(where: { $0.role == .equipmentFault || $0.role.isLifeSupportRun }) { add("\(d.id).failed", 0) }
            if pts.contains(where: { $0.role == .dispatchPending }) {
                add("\(d.id).countdown", 0)
                add("\(d.id).sent", 0)
            }
        }
        for p in site.points where Self.zoneVariable(p) == nil && p.role != .equipmentFault {
            add(p.id, Self.initialValue(p))
        }
        // Aliased inputs are listed too (they report the variable they read).
        for p in site.points where Self.zoneVariable(p) != nil || p.role == .equipmentFault {
            if !order.contains(p.id) { order.append(p.id) }
        }
        vars = v
        names = order
        initial = v
        initialNames = order
        alarmIDs = site.points.filter { $0.role == .fireAlarm || $0.role == .gasAlarm }.map(\.id)
        gateways = site.points.filter { $0.role == .dispatchPending }.map { p in
            Gateway(device: p.device, pending: p.id,
                    cancels: site.points.filter { $0.device == p.device && $0.role == .dispatchCancel }.map(\.id),
                    delay: site.points.first { $0.device == p.device && $0.role == .dispatchDelay }?.id)
        }
        predischarges = site.points.filter { $0.role == .suppressionPredischarge }
        plans = site.zones.map { z in
            var plan = ZonePlan(temperature: "\(z.id).temperature", oxygen: "\(z.id).oxygen", co2: "\(z.id).co2",
                                occupied: "\(z.id).occupied")
            for p in site.points where p.zone == z.id && p.role.isLifeSupportRun {
                let sp = site.points.first { $0.device == p.device && $0.role == .temperatureSetpoint }?.id
                let u = Unit(run: p.id, failed: "\(p.device).failed", setpoint: sp)
                switch p.role {
                case .coolingRun: plan.cooling.append(u)
                case .ventilationRun: plan.ventilation.append(u)
                default: plan.exhaust.append(u)
                }
            }
            return plan
        }
    }

    static func initialValue(_ p: Point) -> Double {
        switch p.role {
        case .temperatureSetpoint: return 22
        case .doorContact: return 1
        default: return p.role.safeValue ?? 0
        }
    }

    /// The zone variable an input reads, if it measures its zone.
    static func zoneVariable(_ p: Point) -> String? {
        switch p.role {
        case .occupancy: return "\(p.zone).occupied"
        case .temperature: return "\(p.zone).temperature"
        case .oxygen: return "\(p.zone).oxygen"
        case .co2: return "\(p.zone).co2"
        case .humidity: return "\(p.zone).humidity"
        default: return nil
        }
    }

    /// The variable that holds a name's value (resolving point aliases).
    private func storage(_ name: String) -> String? {
        if let p = site.point(name) {
            if let z = Self.zoneVariable(p) { return z }
            if p.role == .equipmentFault { return "\(p.device).failed" }
            return p.id
        }
        return vars[name] == nil ? nil : name
    }

    /// Every variable name, zone variables first, then devices, then points.
    public var variableNames: [String] { names }

    /// The current value of a variable or point id.
    public func value(_ name: String) -> Double? { storage(name).flatMap { vars[$0] } }

    /// All variables and every point's physical state.
    public var variables: [(String, Double)] { names.compactMap { n in value(n).map { (n, $0) } } }

    /// Back to the initial (calm) state, time 0.
    public mutating func reset() {
        vars = initial
        names = initialNames
        time = 0
    }

    /// Acts as the physical world or a person at the device would.
    public mutating func set(_ name: String, _ value: Double) throws(PlantError) {
        guard value.isFinite else { throw .invalidValue("\(name): value must be a finite number") }
        guard let key = storage(name) else { throw .unknownVariable(name) }
        let old = vars[key] ?? 0
        vars[key] = value
        if let p = site.point(key) { edge(p, from: old, to: value) }
        settle()
    }

    /// A device received a write of an output (Modbus write by a client).
    public mutating func deviceWrite(point id: String, value: Double) throws(PlantError) {
        guard let p = site.point(id), p.role.isOutput else { throw .unknownVariable(id) }
        try set(id, value)
    }

    /// Reactions to a change of an output's state.
    private mutating func edge(_ p: Point, from old: Double, to new: Double) {
        switch p.role {
        case .alarmReset where old == 0 && new != 0:
            for q in site.points where q.device == p.device && (q.role == .fireAlarm || q.role == .gasAlarm) { vars[q.id] = 0 }
        case .suppressionRelease where old == 0 && new != 0:
            let blocked = site.points.contains { $0.device == p.device && ($0.role == .suppressionInhibit || $0.role == .suppressionLockout) && (vars[$0.id] ?? 0) != 0 }
            if !blocked, let pre = site.points.first(where: { $0.device == p.device && $0.role == .suppressionPredischarge }) {
                if (vars[pre.id] ?? 0) == 0 {
                    vars[pre.id] = 1
                    vars["\(p.device).predischarge-left"] = Self.predischargeSeconds
                }
            }
        default: break
        }
    }

    /// Advances simulated time.
    public mutating func advance(seconds: Double) {
        guard seconds.isFinite, seconds > 0 else { return }
        var left = seconds
        while left > 1e-9 {
            let dt = min(0.1, left)
            step(dt)
            left -= dt
        }
    }

    private func working(_ u: Unit) -> Bool {
        (vars[u.run] ?? 0) != 0 && (vars[u.failed] ?? 0) == 0
    }

    private mutating func step(_ dt: Double) {
        time += dt
        for z in plans {
            // Temperature.
            var t = vars[z.temperature] ?? 22
            let units = z.cooling.isEmpty ? z.ventilation : z.cooling
            if !units.isEmpty {
                let hot = z.cooling.isEmpty ? Self.hotOffice : Self.hotITRoom
                let on = units.filter(working)
                let f = Double(on.count) / Double(units.count)
                let setpoints = on.compactMap { u in u.setpoint.flatMap { vars[$0] } }
                let s = setpoints.isEmpty ? 22 : setpoints.reduce(0, +) / Double(setpoints.count)
                let target = s + (1 - f) * (hot - s)
                let tau = target > t ? Self.heatingTau : Self.coolingTau
                t += (target - t) * (1 - exp1(-dt / tau))
                vars[z.temperature] = t
            }
            // Air.
            let airUnits = z.exhaust + z.ventilation
            let ventilated = airUnits.isEmpty || airUnits.contains(where: working)
            var o2 = vars[z.oxygen] ?? Self.freshOxygen, co2 = vars[z.co2] ?? Self.freshCO2
            if ventilated {
                let k = 1 - exp1(-dt / Self.airTau)
                o2 += (Self.freshOxygen - o2) * k
                co2 += (Self.freshCO2 - co2) * k
            } else if (vars[z.occupied] ?? 0) != 0 {
                o2 -= Self.oxygenFallPerMin * dt / 60
                co2 += Self.co2RisePerMin * dt / 60
            }
            vars[z.oxygen] = min(Self.freshOxygen, max(10, o2))
            vars[z.co2] = min(10, max(Self.freshCO2, co2))
        }
        // Suppression pre-discharge.
        for p in predischarges where (vars[p.id] ?? 0) != 0 {
            let aborted = site.points.contains { $0.device == p.device && $0.role == .suppressionAbort && (vars[$0.id] ?? 0) != 0 }
            if aborted { continue }
            let key = "\(p.device).predischarge-left"
            let left = (vars[key] ?? Self.predischargeSeconds) - dt
            if left <= 1e-9 {
                vars[p.id] = 0
                vars[key] = nil
                for q in site.points where q.device == p.device && q.role == .suppressionDischarged { vars[q.id] = 1 }
            } else {
                vars[key] = left
            }
        }
        // Dispatch countdowns.
        for g in gateways where (vars[g.pending] ?? 0) != 0 {
            let key = "\(g.device).countdown"
            let left = (vars[key] ?? 0) - dt
            if left <= 1e-9 {
                vars[key] = 0
                vars[g.pending] = 0
                vars["\(g.device).sent"] = 1
            } else {
                vars[key] = left
            }
        }
        settle()
    }

    /// Discrete logic that reacts at once (no time passes): dispatch start and cancel.
    private mutating func settle() {
        for g in gateways {
            if g.cancels.contains(where: { (vars[$0] ?? 0) != 0 }) {
                vars[g.pending] = 0
                vars["\(g.device).countdown"] = 0
                continue
            }
            guard (vars[g.pending] ?? 0) == 0, (vars["\(g.device).sent"] ?? 0) == 0, triggered else { continue }
            let delay = g.delay.flatMap { vars[$0] } ?? 0
            vars[g.pending] = 1
            vars["\(g.device).countdown"] = Self.dispatchCountdownSeconds + max(0, delay)
        }
    }

    /// True when a dispatch should start: an active fire or gas alarm anywhere, or a person in a hazardous zone.
    public var triggered: Bool {
        if alarmIDs.contains(where: { (vars[$0] ?? 0) != 0 }) { return true }
        for z in plans where (vars[z.occupied] ?? 0) != 0 {
            if (vars[z.temperature] ?? 0) >= Limits.hazardTemperature { return true }
            if (vars[z.oxygen] ?? Self.freshOxygen) < Limits.hazardOxygenBelow { return true }
            if (vars[z.co2] ?? 0) >= Limits.hazardCO2 { return true }
        }
        return false
    }
}

/// e^x without Foundation (the model stays pure Swift).
@inline(__always) func exp1(_ x: Double) -> Double {
    // exp via range reduction: e^x = 2^k * e^r, |r| <= ln2/2.
    let ln2 = 0.6931471805599453
    let k = (x / ln2).rounded()
    let r = x - k * ln2
    var term = 1.0, sum = 1.0
    for i in 1...20 {
        term *= r / Double(i)
        sum += term
        if abs(term) < 1e-17 { break }
    }
    return sum * pow2(Int(k))
}

@inline(__always) private func pow2(_ k: Int) -> Double {
    Double(sign: .plus, exponent: k, significand: 1)
}
