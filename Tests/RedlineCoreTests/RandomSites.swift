import PropertyBased
@testable import RedlineCore

/// A small deterministic RNG so that a generated scenario depends only on one seed
/// (drawn from PropertyBased's seeded generator, so `.fixedSeed` reproduces failures).
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func chance(_ p: Double) -> Bool { Double.random(in: 0..<1, using: &self) < p }
    mutating func pick<T>(_ xs: [T]) -> T { xs[Int.random(in: 0..<xs.count, using: &self)] }
}

/// A random site, plant, command and policy state.
struct Scenario: Sendable, CustomStringConvertible {
    var seed: UInt64
    var site: Site
    var snapshot: PlantSnapshot
    var now: Int64
    var ready: Bool
    var quarantined: Set<String>
    var command: WriteCommand
    var approved: Bool

    var state: PolicyState { PolicyState(site: site, snapshot: snapshot, now: now, ready: ready, quarantined: quarantined) }
    func decide(_ c: WriteCommand? = nil, snapshot s: PlantSnapshot? = nil) -> Decision {
        var st = state
        if let s { st.snapshot = s }
        return Policy.decide(c ?? command, in: st, approved: approved)
    }

    var description: String {
        let p = site.point(command.point)
        let readings = site.points.map { pt -> String in
            guard let r = snapshot[pt.id] else { return "\(pt.id)[\(pt.role.rawValue)@\(pt.zone)]=never" }
            return "\(pt.id)[\(pt.role.rawValue)@\(pt.zone)]=\(r.value.map(fmt) ?? "-")\(r.faulted ? "!fault" : "")@\(r.at.map { String(now - $0) } ?? "-")"
        }
        return "seed \(seed): \(command.agent) \(command.point)[\(p?.role.rawValue ?? "?")@\(p?.zone ?? "?") \(p?.min.map(fmt) ?? "")..\(p?.max.map(fmt) ?? "")] = \(fmt(command.value)) approved=\(approved) ready=\(ready) q=\(quarantined.sorted()) bw=\(site.buildingWideZones.map(\.id)) stale=\(site.timing.staleAfterMs)\n  agents: \(site.agents.map { "\($0.name) r\($0.read) w\($0.write)" })\n  approvals: \(site.approvals.map { "\($0.points)" })\n  " + readings.joined(separator: " ")
    }

    static let commandValues: [Double] = [0, 1, -0.0, 0.5, 2, -1, 14.9, 15, 16, 20, 26.9, 27, 27.1, 30, 32, 32.1, 100, 600,
                                          .nan, .infinity, -.infinity, .greatestFiniteMagnitude]

    static func readingValue(_ role: Role, _ r: inout SplitMix64) -> Double {
        switch role {
        case .temperature: return r.pick([22, 22, 30, 39.9, 40, 41, 67, -40, 150, 151, -41, .nan])
        case .oxygen: return r.pick([20.9, 20.9, 19.5, 19.49, 19.6, 15.4, 0, 100, 100.1, -0.1])
        case .co2: return r.pick([0.04, 0.04, 0.49, 0.5, 0.51, 3.8, 100, 101])
        case .humidity: return Double.random(in: -5...105, using: &r)
        case .status: return Double(Int.random(in: -1...70000, using: &r))
        default: return r.pick([0, 0, 0, 1, 1, 0.5, 2, -1])
        }
    }

    static func randomReading(_ role: Role, now: Int64, stale: Int64, _ r: inout SplitMix64) -> Reading? {
        let v = readingValue(role, &r)
        switch Int.random(in: 0..<20, using: &r) {
        case 0: return nil                                            // never read
        case 1: return .fault                                         // failed, no value
        case 2: return Reading(value: v, at: now, faulted: true)      // last attempt failed
        case 3: return .good(v, at: now - stale - Int64.random(in: 1...10_000, using: &r))  // stale
        case 4: return .good(v, at: now + Int64.random(in: 1...1000, using: &r))           // from the future
        case 5: return Reading(value: v, at: nil)
        case 6: return .good(v, at: now - stale)                      // exactly at the limit: fresh
        default: return .good(v, at: now - Int64.random(in: 0...stale, using: &r))
        }
    }

    init(seed: UInt64) {
        self.seed = seed
        var r = SplitMix64(state: seed)
        let now = Int64.random(in: 1_000_000...1_000_000_000, using: &r)
        let stale = Int64.random(in: 50...2000, using: &r)
        let nz = Int.random(in: 1...5, using: &r)
        let zones = (0..<nz).map { Zone(id: "z\($0)", buildingWide: r.chance(0.2)) }
        var points: [Point] = []
        // Condition inputs are common, so that conditions vary; any role may appear.
        let conditionRoles: [Role] = [.occupancy, .occupancy, .fireAlarm, .gasAlarm, .suppressionPredischarge,
                                      .suppressionDischarged, .temperature, .oxygen, .co2]
        for z in zones {
            for k in 0..<Int.random(in: 0...9, using: &r) {
                let role = r.chance(0.45) ? r.pick(conditionRoles) : r.pick(Role.allCases)
                var lo: Double? = nil, hi: Double? = nil
                if r.chance(0.3) {
                    let env = role.envelope
                    // Mostly narrower than the envelope; sometimes (an invalid config) wider.
                    lo = r.chance(0.8) ? env.lowerBound + Double.random(in: 0...1, using: &r) * (env.upperBound - env.lowerBound) / 3 : env.lowerBound - 10
                    hi = r.chance(0.8) ? env.upperBound - Double.random(in: 0...1, using: &r) * (env.upperBound - env.lowerBound) / 3 : env.upperBound + 10
                }
                points.append(Point(id: "\(z.id).p\(k)", device: z.id, name: "p\(k)", role: role, zone: z.id, bus: "b",
                                    unitId: 1, binding: .modbus(table: .coil, address: k, scale: 1, signed: false), min: lo, max: hi))
            }
        }
        func randomPatterns(_ r: inout SplitMix64) -> [PointPattern] {
            (0..<Int.random(in: 0...4, using: &r)).map { _ in
                switch Int.random(in: 0..<5, using: &r) {
                case 0: return PointPattern("*")
                case 1: return PointPattern("z\(Int.random(in: 0..<nz, using: &r)).*")
                case 2: return PointPattern("*.p\(Int.random(in: 0...9, using: &r))")
                default: return PointPattern(points.isEmpty ? "nothing" : r.pick(points).id)
                }
            }
        }
        let agents = (0..<Int.random(in: 1...3, using: &r)).map {
            Agent(name: "agent-\($0)", uid: UInt32(2000 + $0), read: randomPatterns(&r), write: randomPatterns(&r))
        }
        let approvals = (0..<Int.random(in: 0...2, using: &r)).map { _ in
            ApprovalRule(points: randomPatterns(&r), timeoutMs: Int64.random(in: 1000...600_000, using: &r))
        }
        site = Site(name: "random", timing: Timing(scanIntervalMs: 100, staleAfterMs: stale), zones: zones,
                    points: points, agents: agents, approvals: approvals)
        var snap = PlantSnapshot()
        for p in points where !p.role.isOutput {
            if let reading = Self.randomReading(p.role, now: now, stale: stale, &r) { snap[p.id] = reading }
        }
        snapshot = snap
        self.now = now
        ready = r.chance(0.9)
        quarantined = Set(agents.map(\.name).filter { _ in r.chance(0.1) })
        let agent = r.chance(0.95) ? r.pick(agents).name : "stranger"
        let point = points.isEmpty || r.chance(0.05) ? "z0.nope" : r.pick(points).id
        let value = r.chance(0.8) ? r.pick(Self.commandValues) : Double.random(in: -50...650, using: &r)
        command = WriteCommand(agent: agent, point: point, value: value)
        approved = r.chance(0.3)
    }

    /// A generator of scenarios for `propertyCheck`.
    static let gen = Generator<Scenario, Shrink.None<Scenario>>(run: { rng in Scenario(seed: rng.next()) })
}
