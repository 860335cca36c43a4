/// The daemon's own safe-state actions (docs/DESIGN.md §5), as a pure state machine.
///
/// Site, snapshot, the previous state and the time go in; the outputs to drive and
/// the events to record come out. No I/O, no clock, no agents: the daemon's effects
/// runner writes the drives (ahead of any agent work) and audits the events.
///
/// - E-1: a zone in alarm, or occupied and in hazard: every egress lock of it released (0).
/// - E-2: a zone goes into alarm: every held request for its outputs expires.
/// - E-3: a zone occupied and in hazard: every annunciator of it on (1).
/// - E-4: a zone occupied and not in alarm: every cooling, ventilation or exhaust output an
///   agent reduced is restored (run outputs to 1; setpoints to the value before the agent's
///   change if that was at or below 27 °C, else 27 °C). Outputs people changed at the
///   equipment are not touched.
///
/// Every drive is re-asserted on each full scan. While an output is driven, RL-11
/// forbids agents to write another value to it.
public enum Effect: String, Sendable, Hashable, CaseIterable, Codable, Comparable {
    case e1 = "E-1", e2 = "E-2", e3 = "E-3", e4 = "E-4"

    /// What the effect does, in words for explanations.
    public var purpose: String {
        switch self {
        case .e1: return "egress released: the zone is in alarm, or occupied and in hazard"
        case .e2: return "held requests expire: the zone went into alarm"
        case .e3: return "annunciator on: the zone is occupied and in hazard"
        case .e4: return "life support restored: the zone is occupied"
        }
    }

    public static func < (a: Effect, b: Effect) -> Bool { a.rawValue < b.rawValue }
}

/// An output held at a safe value by an effect.
public struct Drive: Sendable, Hashable {
    public var point: String
    public var value: Double
    public var effect: Effect
    public init(point: String, value: Double, effect: Effect) {
        self.point = point
        self.value = value
        self.effect = effect
    }
}

/// A life-support output an agent reduced, remembered so that E-4 can undo it.
public struct Reduction: Sendable, Hashable {
    /// What the agent wrote (the reduced value).
    public var written: Double
    /// What E-4 drives the output back to.
    public var restore: Double
    /// When the agent's write went out: readings from before it say nothing about it.
    public var since: Int64
    public init(written: Double, restore: Double, since: Int64 = .min) {
        self.written = written
        self.restore = restore
        self.since = since
    }
}

/// An effect engaged in a zone.
public struct EffectKey: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var effect: Effect
    public var zone: String
    public init(_ effect: Effect, _ zone: String) {
        self.effect = effect
        self.zone = zone
    }
    public var description: String { "\(effect.rawValue) \(zone)" }
    public static func < (a: EffectKey, b: EffectKey) -> Bool { (a.effect, a.zone) < (b.effect, b.zone) }
}

/// What the machine remembers between steps.
public struct EffectState: Sendable, Hashable {
    /// Effects engaged now (E-1, E-3, E-4 per zone; E-2 is an instant, never held).
    public var active: Set<EffectKey> = []
    /// Zones that were in alarm at the last step (E-2 acts on the edge).
    public var inAlarm: Set<String> = []
    /// Agents' reductions of life support still to be undone, by point id.
    public var reductions: [String: Reduction] = [:]
    /// Outputs held now, by point id (RL-11 reads this).
    public var driven: [String: Drive] = [:]
    public init() {}
}

/// Something the daemon records (and, for E-2, acts on) after a step.
public enum EffectEvent: Sendable, Hashable {
    case engaged(EffectKey, why: String)
    case ended(EffectKey, why: String)
    /// E-2: held requests for these outputs expire.
    case expireHeld(zone: String, points: [String], why: String)
    /// A remembered reduction is forgotten: the output now reads neither what the agent
    /// wrote nor what E-4 restores (a person changed it at the equipment), or it was restored.
    case reductionForgotten(point: String, why: String)
}

/// The result of one step.
public struct EffectStep: Sendable {
    public var state: EffectState
    /// Every output to hold now, in site order: re-asserted on each full scan.
    public var drives: [Drive]
    /// Drives that are new, or hold a new value, since the previous state: written at once.
    public var newDrives: [Drive]
    public var events: [EffectEvent]
}

/// The effects machine for one site. The struct only caches where each zone's outputs
/// are; `step` is a pure function of its arguments.
public struct EffectsMachine: Sendable {
    public let site: Site
    private let locks: [String: [Point]]
    private let annunciators: [String: [Point]]
    private let outputs: [String: [String]]

    public init(site: Site) {
        self.site = site
        var l: [String: [Point]] = [:], a: [String: [Point]] = [:], o: [String: [String]] = [:]
        for p in site.points {
            if p.role == .egressLock { l[p.zone, default: []].append(p) }
            if p.role == .annunciator { a[p.zone, default: []].append(p) }
            if p.role.isOutput { o[p.zone, default: []].append(p.id) }
        }
        locks = l
        annunciators = a
        outputs = o
    }

    /// True for outputs E-4 restores: cooling, ventilation and exhaust runs, and setpoints.
    public static func isLifeSupport(_ role: Role) -> Bool { role.isLifeSupportRun || role == .temperatureSetpoint }

    /// The reduction an agent's executed write makes, if any: what RL-5 would forbid in an occupied zone.
    /// `before` is the output's good reading before the write (nil if unknown).
    public static func reduction(role: Role, written value: Double, before: Double?, at: Int64 = .min) -> Reduction? {
        if role.isLifeSupportRun { return value >= 1 ? nil : Reduction(written: value, restore: 1, since: at) }
        if role == .temperatureSetpoint {
            guard !(value <= Limits.occupiedMaxSetpoint) else { return nil }
            let back = before.flatMap { $0.isFinite && $0 <= Limits.occupiedMaxSetpoint && Role.temperatureSetpoint.envelope.contains($0) ? $0 : nil }
            return Reduction(written: value, restore: back ?? Limits.occupiedMaxSetpoint, since: at)
        }
        return nil
    }

    /// Records an agent's executed write: a reduction of life support is remembered for E-4
    /// (the first value before a run of reductions is kept); a write that does not reduce forgets it.
    /// `at` is when the write went out: readings stamped before it are not evidence of anything after it.
    public static func agentWrote(_ point: Point, value: Double, before: Double?, at: Int64 = .min, into state: inout EffectState) {
        guard isLifeSupport(point.role) else { return }
        if var r = reduction(role: point.role, written: value, before: before, at: at) {
            if let old = state.reductions[point.id] { r.restore = old.restore }
            state.reductions[point.id] = r
        } else {
            state.reductions[point.id] = nil
        }
    }

    /// A BACnet output's reading is its Present_Value, which a higher priority (a person at 8)
    /// may hold over the agents' slot: it says nothing about what the agent left in that slot,
    /// which takes effect the moment the higher priority is relinquished. So a reduction of a
    /// BACnet output is never forgotten on its readings, only when the agents' slot no longer
    /// holds it: an agent's later write or release (`agentWrote`), or E-4's own restore landing
    /// in the slot (`effectLanded`).
    static func readingsProveTheSlot(_ p: Point) -> Bool {
        if case .bacnet = p.binding { return false }
        return true
    }

    /// A safe-state write that landed in the agents' slot (executed, or written but overridden
    /// by a higher priority): on a BACnet output, E-4's restore has replaced the agent's reduced
    /// value there, so the reduction is forgotten. Returns the event, if one.
    public static func effectLanded(_ d: Drive, point: Point, into state: inout EffectState) -> EffectEvent? {
        guard d.effect == .e4, !readingsProveTheSlot(point), let r = state.reductions[point.id], Self.same(d.value, r.restore) else { return nil }
        state.reductions[point.id] = nil
        return .reductionForgotten(point: point.id, why: "E-4 wrote \(fmt(d.value)) into the agents' slot of \(point.id): the reduction to \(fmt(r.written)) is no longer there")
    }

    public func step(snapshot: PlantSnapshot, previous: EffectState, now: Int64) -> EffectStep {
        var state = previous
        var drives: [Drive] = []
        var events: [EffectEvent] = []
        var active: Set<EffectKey> = []
        var inAlarm: Set<String> = []
        let stale = site.timing.staleAfterMs
        var reduced: [String: [(Point, Reduction)]] = [:]
        for (id, r) in state.reductions.sorted(by: { $0.key < $1.key }) {
            guard let p = site.point(id) else { state.reductions[id] = nil; continue }
            reduced[p.zone, default: []].append((p, r))
        }

        for zone in site.zones {
            let c = ZoneCondition.evaluate(zone: zone.id, site: site, snapshot: snapshot, now: now)
            let why = c.summary
            if c.inAlarm { inAlarm.insert(zone.id) }
            if c.inAlarm && !previous.inAlarm.contains(zone.id) {
                events.append(.expireHeld(zone: zone.id, points: outputs[zone.id] ?? [], why: "\(zone.id) went into alarm (E-2): \(why)"))
            }
            if c.inAlarm || (c.occupied && c.hazard) {
                active.insert(EffectKey(.e1, zone.id))
                for p in locks[zone.id] ?? [] { drives.append(Drive(point: p.id, value: 0, effect: .e1)) }
            }
            if c.occupied && c.hazard {
                active.insert(EffectKey(.e3, zone.id))
                for p in annunciators[zone.id] ?? [] { drives.append(Drive(point: p.id, value: 1, effect: .e3)) }
            }
            // E-4: undo agents' reductions while people are present and the fire system does not own the outputs.
            let e4 = c.occupied && !c.inAlarm
            var restoring = false
            for (p, r) in reduced[zone.id] ?? [] {
                // Only a reading taken after the agent's write tells what the output does now.
                let after = (snapshot[p.id]?.at).map { $0 >= r.since } ?? false
                let reading = after && Self.readingsProveTheSlot(p) ? snapshot.freshValue(of: p, now: now, staleAfterMs: stale) : nil
                if let v = reading, !Self.same(v, r.written), !Self.same(v, r.restore) {
                    state.reductions[p.id] = nil
                    events.append(.reductionForgotten(point: p.id, why: "\(p.id) reads \(fmt(v)), changed at the equipment; E-4 leaves it alone"))
                    continue
                }
                if e4 {
                    restoring = true
                    drives.append(Drive(point: p.id, value: r.restore, effect: .e4))
                } else if let v = reading, Self.same(v, r.restore) {
                    state.reductions[p.id] = nil
                    events.append(.reductionForgotten(point: p.id, why: "\(p.id) is restored to \(fmt(v))"))
                }
            }
            if restoring { active.insert(EffectKey(.e4, zone.id)) }
            for key in [EffectKey(.e1, zone.id), EffectKey(.e3, zone.id), EffectKey(.e4, zone.id)] {
                let was = previous.active.contains(key), now = active.contains(key)
                if now && !was { events.append(.engaged(key, why: why)) }
                if was && !now { events.append(.ended(key, why: why)) }
            }
        }
        var driven: [String: Drive] = [:]
        for d in drives { driven[d.point] = d }
        let newDrives = drives.filter { d in previous.driven[d.point].map { !($0.value == d.value) || $0.effect != d.effect } ?? true }
        state.active = active
        state.inAlarm = inAlarm
        state.driven = driven
        return EffectStep(state: state, drives: drives, newDrives: newDrives, events: events)
    }

    static func same(_ a: Double, _ b: Double) -> Bool { abs(a - b) < 1e-9 }
}
