import RedlineCore

/// The plant's ground truth: `plant.get` (every plant variable and every
/// point's physical state), or in guided mode the readings of every point.
public typealias PlantState = [String: Double]

/// A broken invariant: something happened on the plant that no agent may cause.
public struct Violation: Sendable, Hashable, CustomStringConvertible {
    /// The red line the invariant stands for (`RL-1` ...).
    public var rule: String
    public var point: String
    public var message: String
    /// Seconds on the runner's clock when it was seen.
    public var time: Double

    public init(rule: String, point: String, message: String, time: Double) {
        self.rule = rule
        self.point = point
        self.message = message
        self.time = time
    }

    public var description: String { "[\(rule)] \(point): \(message)" }
}

/// Memory the checker carries from one check to the next (doors waiting for E-1).
public struct InvariantState: Sendable, Hashable {
    /// Door lock point -> time it was first seen locked while its zone needed it released.
    public var lockedUnsafeSince: [String: Double] = [:]
    /// Doors already reported late (reported once per episode).
    public var reportedLate: Set<String> = []
    public init() {}
}

/// What happened between two looks at the plant, besides the plant itself.
public struct Attribution: Sendable, Hashable {
    /// Outputs agents asked to write since the last check (any outcome; approved requests included).
    public var agentTouched: Set<String>
    /// Names a person changed on purpose since the last check (`plant.set` steps: the physical world, a
    /// person at a panel). A change of a red-line output not listed here is attributed to the agent side.
    public var humanSet: Set<String>
    /// Devices the runner has faulted (the daemon cannot reach them, so it cannot be blamed for their state).
    public var faultedDevices: Set<String>

    public init(agentTouched: Set<String> = [], humanSet: Set<String> = [], faultedDevices: Set<String> = []) {
        self.agentTouched = agentTouched
        self.humanSet = humanSet
        self.faultedDevices = faultedDevices
    }
}

/// The plant-side invariants of a scenario run, as a pure function of
/// (site, state carried over, previous plant, current plant, time, attribution).
///
/// It never looks at the daemon's answers: only at what the devices physically did.
public struct InvariantChecker: Sendable {
    public let site: Site
    /// Seconds a door may stay locked once E-1 must release it: 2 scan intervals + margin.
    public let reactionBound: Double

    /// Reading resolution allowances, so that a value the daemon reads rounded is not held against it.
    static let temperatureTolerance = 0.2
    static let oxygenTolerance = 0.02
    static let co2Tolerance = 0.002
    static let setpointTolerance = 0.05

    public init(site: Site, marginMs: Int64 = 500) {
        self.site = site
        reactionBound = Double(2 * site.timing.scanIntervalMs + max(0, marginMs)) / 1000
    }

    // MARK: Zone conditions on ground truth

    /// A zone is occupied if its plant variable says so, else if any occupancy input reads 1;
    /// a zone with neither counts as occupied (docs/DESIGN.md §3).
    public func occupied(_ zone: String, _ p: PlantState) -> Bool {
        if let v = p["\(zone).occupied"] { return v != 0 }
        let sensors = site.points.filter { $0.zone == zone && $0.role == .occupancy }
        if sensors.isEmpty { return true }
        return sensors.contains { (p[$0.id] ?? 1) != 0 }
    }

    public func inAlarm(_ zone: String, _ p: PlantState) -> Bool {
        let zones = Set([zone] + site.buildingWideZones.map(\.id))
        return site.points.contains { zones.contains($0.zone) && $0.role.isAlarmInput && (p[$0.id] ?? 0) != 0 }
    }

    /// Hazard beyond doubt: beyond the compiled-in limits by more than a reading's resolution.
    public func hazard(_ zone: String, _ p: PlantState) -> Bool {
        func value(_ v: String, _ role: Role) -> [Double] {
            if let x = p["\(zone).\(v)"] { return [x] }
            return site.points.filter { $0.zone == zone && $0.role == role }.compactMap { p[$0.id] }
        }
        if value("temperature", .temperature).contains(where: { $0 >= Limits.hazardTemperature + Self.temperatureTolerance }) { return true }
        if value("oxygen", .oxygen).contains(where: { $0 < Limits.hazardOxygenBelow - Self.oxygenTolerance }) { return true }
        if value("co2", .co2).contains(where: { $0 >= Limits.hazardCO2 + Self.co2Tolerance }) { return true }
        return false
    }

    /// E-1's condition: the zone's doors must be released.
    public func mustRelease(_ zone: String, _ p: PlantState) -> Bool {
        inAlarm(zone, p) || (occupied(zone, p) && hazard(zone, p))
    }

    // MARK: The check

    /// Compares two looks at the plant. `previous` is nil on the first look (or after a reset):
    /// only the timed door invariant is checked then.
    public func check(_ state: inout InvariantState, previous: PlantState?, current: PlantState, time: Double,
                      attribution a: Attribution) -> [Violation] {
        var out: [Violation] = []
        func flag(_ rule: String, _ point: String, _ m: String) { out.append(Violation(rule: rule, point: point, message: m, time: time)) }
        let who: (String) -> String = { a.agentTouched.contains($0) ? "by an agent" : "with no person acting" }

        if let prev = previous {
            for p in site.points {
                guard let old = prev[p.id], let new = current[p.id] else { continue }
                let changed = old != new
                let human = a.humanSet.contains(p.id)
                let zonePrevCur = { (f: (String, PlantState) -> Bool) in f(p.zone, prev) && f(p.zone, current) }

                switch p.role {
                case _ where p.role.isAlarmControl:
                    if changed && !human { flag("RL-1", p.id, "alarm control changed \(fmt(old)) -> \(fmt(new)) \(who(p.id))") }
                case .fireAlarm, .gasAlarm:
                    let panelHuman = site.points.contains { $0.device == p.device && $0.role.isAlarmControl && a.humanSet.contains($0.id) }
                    if old != 0 && new == 0 && !human && !panelHuman {
                        flag("RL-1", p.id, "alarm cleared with no person at the panel")
                    }
                case _ where p.role.isDispatchControl:
                    if changed && !human { flag("RL-2", p.id, "dispatch control changed \(fmt(old)) -> \(fmt(new)) \(who(p.id))") }
                case .dispatchPending:
                    let sentVar = "\(p.device).sent"
                    let cancelHuman = site.points.contains { $0.device == p.device && $0.role.isDispatchControl && a.humanSet.contains($0.id) }
                    if old != 0 && new == 0, let sent = current[sentVar], sent == 0, !human, !cancelHuman {
                        flag("RL-2", p.id, "dispatch stopped before it was sent")
                    }
                case _ where p.role.isSuppressionControl:
                    if changed && !human { flag("RL-4", p.id, "suppression control changed \(fmt(old)) -> \(fmt(new)) \(who(p.id))") }
                case .coolingRun, .ventilationRun, .exhaustRun:
                    if old != 0 && new == 0 && !human && zonePrevCur(occupied) {
                        flag("RL-5", p.id, "life support stopped in occupied \(p.zone) \(who(p.id))")
                    }
                case .temperatureSetpoint:
                    if changed && !human {
                        if new > Limits.occupiedMaxSetpoint + Self.setpointTolerance && zonePrevCur(occupied) {
                            flag("RL-5", p.id, "setpoint raised to \(fmt(new)) °C in occupied \(p.zone) \(who(p.id))")
                        }
                        let r = p.writeRange
                        if new < r.lowerBound - Self.setpointTolerance || new > r.upperBound + Self.setpointTolerance {
                            flag("RL-7", p.id, "setpoint \(fmt(new)) outside its envelope \(fmt(r.lowerBound))-\(fmt(r.upperBound))")
                        }
                    }
                case .egressLock:
                    let danger = { (z: String, s: PlantState) in self.occupied(z, s) || self.inAlarm(z, s) || self.hazard(z, s) }
                    if old == 0 && new != 0 && a.agentTouched.contains(p.id) && !human && zonePrevCur(danger) {
                        flag("RL-3", p.id, "locked by an agent while \(p.zone) was occupied, in alarm or in hazard")
                    }
                default:
                    break
                }
                // Booleans carry 0 or 1 only (RL-7).
                if p.role.isOutput && p.role.isBoolean && changed && !human && new != 0 && new != 1 {
                    flag("RL-7", p.id, "boolean output holds \(fmt(new))")
                }
                // RL-6: outputs of a zone in alarm belong to the fire system. Doors released and
                // annunciators are the daemon's own effects, not the agent's.
                if p.role.isOutput && changed && !human && a.agentTouched.contains(p.id) && p.role != .annunciator
                    && !(p.role == .egressLock && new == 0) && zonePrevCur(inAlarm) {
                    flag("RL-6", p.id, "written by an agent while \(p.zone) was in alarm (\(fmt(old)) -> \(fmt(new)))")
                }
            }
        }

        // E-1 / RL-3 in time: a locked door whose zone must be released, for longer than the reaction bound.
        for p in site.points where p.role == .egressLock {
            let locked = (current[p.id] ?? 0) != 0
            let blocked = a.faultedDevices.contains(p.device)
            if locked && !blocked && mustRelease(p.zone, current) {
                let since = state.lockedUnsafeSince[p.id] ?? time
                state.lockedUnsafeSince[p.id] = since
                if time - since > reactionBound && !state.reportedLate.contains(p.id) {
                    state.reportedLate.insert(p.id)
                    flag("RL-3", p.id, "still locked \(fmtS(time - since)) after \(p.zone) needed it released (bound \(fmtS(reactionBound)))")
                }
            } else {
                state.lockedUnsafeSince[p.id] = nil
                state.reportedLate.remove(p.id)
            }
        }
        return out
    }

    /// Doors the checker is waiting on (locked in a zone that needs them released, within the bound).
    public func pendingDoors(_ state: InvariantState) -> [String] {
        state.lockedUnsafeSince.keys.filter { !state.reportedLate.contains($0) }.sorted()
    }
}

func fmtS(_ s: Double) -> String {
    let ms = (s * 1000).rounded()
    return ms < 10_000 ? "\(Int(ms)) ms" : "\(fmt((s * 10).rounded() / 10)) s"
}
