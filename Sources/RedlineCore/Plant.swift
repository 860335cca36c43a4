/// Quality of an input as agents and the policy see it.
public enum Quality: String, Sendable, Hashable, CaseIterable {
    case good
    case stale
    case fault
    case neverRead = "never-read"
}

/// The last known state of one input. Times are monotonic milliseconds supplied by the caller.
public struct Reading: Sendable, Hashable {
    /// Last value read successfully (engineering units).
    public var value: Double?
    /// When `value` was read.
    public var at: Int64?
    /// The most recent read attempt failed.
    public var faulted: Bool

    public init(value: Double? = nil, at: Int64? = nil, faulted: Bool = false) {
        self.value = value
        self.at = at
        self.faulted = faulted
    }

    public static func good(_ value: Double, at: Int64) -> Reading { Reading(value: value, at: at) }
    public static let fault = Reading(faulted: true)
}

/// The plant as last seen: one reading per point id. Absent means never read.
public struct PlantSnapshot: Sendable, Hashable {
    public var readings: [String: Reading]
    public init(readings: [String: Reading] = [:]) { self.readings = readings }

    public subscript(id: String) -> Reading? {
        get { readings[id] }
        set { readings[id] = newValue }
    }

    /// RL-0: the quality of a point at `now`. Anything but `good` counts as danger.
    public func quality(of point: Point, now: Int64, staleAfterMs: Int64) -> Quality {
        assess(point, now: now, staleAfterMs: staleAfterMs).quality
    }

    /// Quality and, when good, the value: one lookup.
    func assess(_ point: Point, now: Int64, staleAfterMs: Int64) -> (quality: Quality, value: Double) {
        Self.quality(readings[point.id], role: point.role, now: now, staleAfterMs: staleAfterMs)
    }

    func assess(id: String, role: Role, now: Int64, staleAfterMs: Int64) -> (quality: Quality, value: Double) {
        Self.quality(readings[id], role: role, now: now, staleAfterMs: staleAfterMs)
    }

    static func quality(_ reading: Reading?, role: Role, now: Int64, staleAfterMs: Int64) -> (quality: Quality, value: Double) {
        guard let r = reading else { return (.neverRead, .nan) }
        if r.faulted { return (.fault, .nan) }
        guard let v = r.value, let at = r.at else { return (.neverRead, .nan) }
        if !v.isFinite || !role.envelope.contains(v) { return (.fault, .nan) }
        // A reading from the future is stale; so is one too old to subtract without overflow.
        if at > now { return (.stale, .nan) }
        let (age, overflow) = now.subtractingReportingOverflow(at)
        if overflow || age > staleAfterMs { return (.stale, .nan) }
        return (.good, v)
    }

    /// The value of a point if and only if it is fresh and good.
    public func freshValue(of point: Point, now: Int64, staleAfterMs: Int64) -> Double? {
        quality(of: point, now: now, staleAfterMs: staleAfterMs) == .good ? readings[point.id]?.value : nil
    }

    /// Age of the last good value in milliseconds, if any.
    public func ageMs(of id: String, now: Int64) -> Int64? {
        readings[id]?.at.map {
            let (age, overflow) = now.subtractingReportingOverflow($0)
            return overflow ? ($0 > now ? 0 : Int64.max) : Swift.max(0, age)
        }
    }
}

/// The three conditions of a zone (docs/DESIGN.md §3), each with the inputs that caused it.
public struct ZoneCondition: Sendable, Hashable {
    public var occupied: Bool = false
    public var inAlarm: Bool = false
    public var hazard: Bool = false
    /// Human-readable causes, e.g. "sra-occupancy.occupied is stale (RL-0)".
    public var causes: [String] = []

    public init(occupied: Bool = false, inAlarm: Bool = false, hazard: Bool = false, causes: [String] = []) {
        self.occupied = occupied
        self.inAlarm = inAlarm
        self.hazard = hazard
        self.causes = causes
    }

    /// Evaluates a zone on a snapshot. Unknown is unsafe (RL-0): an input that is
    /// not fresh and good takes its dangerous value, and a zone with no occupancy
    /// input is occupied.
    public static func evaluate(zone: String, site: Site, snapshot: PlantSnapshot, now: Int64) -> ZoneCondition {
        var c = ZoneCondition()
        let stale = site.timing.staleAfterMs
        let inputs = site.inputs(of: zone)

        /// The fresh, good value of an input, or `nil` after recording why it is unknown.
        func known(_ id: String, _ role: Role) -> Double? {
            let (q, v) = snapshot.assess(id: id, role: role, now: now, staleAfterMs: stale)
            if q == .good { return v }
            c.causes.append("\(id) is \(q.rawValue) (RL-0: unknown counts as danger)")
            return nil
        }

        if inputs.occupancy.isEmpty {
            c.occupied = true
            c.causes.append("\(zone) has no occupancy sensor (RL-0: assumed occupied)")
        }
        for i in inputs.occupancy {
            let id = site.points[i].id, role = site.points[i].role
            guard let v = known(id, role) else { c.occupied = true; continue }
            if v != 0 { c.occupied = true; c.causes.append("\(id) reports occupied") }
        }

        func alarm(_ i: Int) {
            let id = site.points[i].id, role = site.points[i].role
            guard let v = known(id, role) else { c.inAlarm = true; return }
            if v != 0 { c.inAlarm = true; c.causes.append("\(id) is active") }
        }
        for i in inputs.alarm { alarm(i) }
        for (z, i) in site.buildingWideAlarms where z != zone { alarm(i) }

        for i in inputs.environment {
            let id = site.points[i].id, role = site.points[i].role
            guard let v = known(id, role) else { c.hazard = true; continue }
            switch role {
            case .temperature where v >= Limits.hazardTemperature:
                c.hazard = true; c.causes.append("\(id) is \(fmt(v)) °C (limit \(fmt(Limits.hazardTemperature)))")
            case .oxygen where v < Limits.hazardOxygenBelow:
                c.hazard = true; c.causes.append("\(id) is \(fmt(v)) % (below \(fmt(Limits.hazardOxygenBelow)))")
            case .co2 where v >= Limits.hazardCO2:
                c.hazard = true; c.causes.append("\(id) is \(fmt(v)) % (limit \(fmt(Limits.hazardCO2)))")
            default: break
            }
        }
        return c
    }
}

/// Formats a number without a trailing ".0" for integral values.
public func fmt(_ v: Double) -> String {
    if v.isFinite, v == v.rounded(), abs(v) < 1e15 { return String(Int64(v)) }
    return String(v)
}
