import Foundation
import RedlineCore

/// The cause-and-effect matrix: the safety engineer's review sheet (docs/DESIGN.md §10).
///
/// Rows are life-safety points, columns are agents. Every cell is derived from
/// the real policy: `Policy.decide` is evaluated for representative values of
/// the point on a calm plant and on plants where the zone is occupied, in alarm
/// or in hazard. Nothing here is a hand-written table of what the rules say.
public struct CauseEffectMatrix: Sendable {
    /// The plants every write is tried on.
    public enum Scenario: String, Sendable, CaseIterable {
        case calm
        case occupied
        case alarm = "in alarm"
        case hazard
        case occupiedHazard = "occupied in hazard"

        public var description: String {
            switch self {
            case .calm: return "every input fresh and good: nobody present, no alarm, 22 °C, 20.9 % O2, 0.04 % CO2"
            case .occupied: return "calm, but every occupancy input reads 1"
            case .alarm: return "calm, but every fire/gas alarm and suppression input is active"
            case .hazard: return "calm, but every temperature input reads 45 °C"
            case .occupiedHazard: return "every occupancy input reads 1 and every temperature input 45 °C (E-1 and E-3 drive their outputs: RL-11)"
            }
        }
    }

    /// The decision for one value on one scenario.
    public struct Outcome: Sendable, Hashable {
        public var value: Double
        public var scenario: Scenario
        /// `allowed`, `approval`, `not visible`, or the denying rule (`RL-3`, `not-writable`, ...).
        public var result: String
    }

    public struct Cell: Sendable {
        public var agent: String
        /// One line per group of values, e.g. `lock: needs approval when calm; denied RL-3 when occupied/in alarm/hazard`.
        public var lines: [String]
        public var outcomes: [Outcome]
        public var summary: String { lines.joined(separator: "; ") }
    }

    public struct Row: Sendable {
        public var point: Point
        public var cells: [Cell]
    }

    public let site: Site
    public let rows: [Row]
    /// Conditions of each zone on the calm plant (RL-0 makes some zones never calm).
    public let calmZones: [(zone: String, condition: ZoneCondition)]

    /// The time every scenario is evaluated at (monotonic ms).
    public static let now: Int64 = 1_000_000

    /// Life-safety points: every output except `general-output`, then the inputs the red lines depend on.
    public static func isLifeSafety(_ role: Role) -> Bool {
        if role.isOutput { return role != .generalOutput }
        return role.isAlarmInput || role == .occupancy || role.isEnvironmentInput || role == .dispatchPending
    }

    public init(site: Site) {
        self.site = site
        let snapshots = Dictionary(uniqueKeysWithValues: Scenario.allCases.map { ($0, Self.snapshot(site, $0)) })
        let calm = snapshots[.calm]!
        // One policy state per scenario (with the effects' drives), shared by every cell.
        let states = snapshots.mapValues { Self.state(site: site, snapshot: $0) }
        calmZones = site.zones.map { ($0.id, ZoneCondition.evaluate(zone: $0.id, site: site, snapshot: calm, now: Self.now)) }
        let points = site.points.filter { Self.isLifeSafety($0.role) && $0.role.isOutput }
            + site.points.filter { Self.isLifeSafety($0.role) && !$0.role.isOutput }
        rows = points.map { p in
            Row(point: p, cells: site.agents.map { a in Self.cell(site: site, agent: a, point: p, states: states) })
        }
    }

    // MARK: deriving cells from the policy

    /// The policy state of a scenario's plant, with the effects' drives on it as the daemon
    /// would hold them (so RL-11 shows where an effect holds an output).
    public static func state(site: Site, snapshot: PlantSnapshot) -> PolicyState {
        let driven = EffectsMachine(site: site).step(snapshot: snapshot, previous: EffectState(), now: now).state.driven
        return PolicyState(site: site, snapshot: snapshot, now: now, driven: driven)
    }

    /// The plant of a scenario: every input of the site fresh and good at `now`.
    public static func snapshot(_ site: Site, _ s: Scenario) -> PlantSnapshot {
        var snap = PlantSnapshot()
        for p in site.points where !p.role.isOutput {
            var v: Double
            switch p.role {
            case .temperature: v = s == .hazard || s == .occupiedHazard ? 45 : 22
            case .oxygen: v = 20.9
            case .co2: v = 0.04
            case .humidity: v = 45
            case .occupancy: v = s == .occupied || s == .occupiedHazard ? 1 : 0
            default: v = p.role.isAlarmInput && s == .alarm ? 1 : 0
            }
            snap[p.id] = .good(v, at: now)
        }
        return snap
    }

    static func values(for p: Point) -> [Double] {
        if p.role.isBoolean { return [p.role.safeValue ?? 0, 1 - (p.role.safeValue ?? 0)] }
        let r = p.writeRange
        var vs: Set<Double> = [r.lowerBound, r.upperBound]
        if p.role == .temperatureSetpoint {
            let m = Limits.occupiedMaxSetpoint
            for v in [m, m + 0.5] where r.contains(v) { vs.insert(v) }
        }
        return vs.sorted()
    }

    static func label(_ p: Point, _ v: Double) -> String {
        switch p.role {
        case .egressLock: return v == 0 ? "release" : "lock"
        case .coolingRun, .ventilationRun, .exhaustRun: return v == 1 ? "run" : "stop"
        default: return p.role.isBoolean ? "write \(fmt(v))" : "set \(fmt(v))"
        }
    }

    /// A decision as a matrix outcome: `allowed`, `approval`, `not visible` or the rule.
    public static func result(_ d: Decision) -> String {
        switch d {
        case .allowed: return "allowed"
        case .held: return "approval"
        case .unknownPoint: return "not visible"
        case .denied(let rule, _): return rule.rawValue
        }
    }

    static func phrase(_ result: String) -> String {
        switch result {
        case "allowed": return "allowed"
        case "approval": return "write (approval)"
        case "not visible": return "not visible"
        case "not-writable": return "no write grant"
        default: return "denied \(result)"
        }
    }

    static func cell(site: Site, agent: Agent, point p: Point, states: [Scenario: PolicyState]) -> Cell {
        let scenarios = Scenario.allCases
        let vals = p.role.isOutput ? values(for: p) : [1]
        // An input is never writable (RL-8); the calm plant shows it without other lines in front.
        let tried = p.role.isOutput ? scenarios : [.calm]
        var outcomes: [Outcome] = []
        for v in vals {
            for s in tried {
                let state = states[s]!
                let d = Policy.decideQuantized(WriteCommand(agent: agent.name, point: p.id, value: v), in: state).1
                outcomes.append(Outcome(value: v, scenario: s, result: result(d)))
            }
        }
        let results = Set(outcomes.map(\.result))
        if results == ["not visible"] { return Cell(agent: agent.name, lines: ["not visible"], outcomes: outcomes) }
        if !p.role.isOutput {
            return Cell(agent: agent.name, lines: ["read; write " + phrase(results.sorted().joined(separator: "/"))], outcomes: outcomes)
        }
        if results.count == 1, let only = results.first {
            let line = only == "not-writable" ? "read (no write grant)" : phrase(only)
            return Cell(agent: agent.name, lines: [line], outcomes: outcomes)
        }
        // Without a write grant nothing is ever allowed: the grant is what stops this agent.
        if !agent.canWrite(p.id), !results.contains("allowed"), !results.contains("approval") {
            return Cell(agent: agent.name, lines: ["read (no write grant)"], outcomes: outcomes)
        }
        // Group values by their signature over the scenarios. Numeric values merge into ranges of
        // neighbours; boolean values with the same signature share a line.
        var groups: [(values: [Double], signature: [String])] = []
        for v in vals {
            let sig = scenarios.map { s in outcomes.first { $0.value == v && $0.scenario == s }!.result }
            if p.role.isBoolean, let i = groups.firstIndex(where: { $0.signature == sig }) {
                groups[i].values.append(v)
            } else if let last = groups.last, last.signature == sig {
                groups[groups.count - 1].values.append(v)
            } else {
                groups.append(([v], sig))
            }
        }
        var lines: [String] = []
        for g in groups {
            let name = g.values.count == 1 ? label(p, g.values[0])
                : p.role.isBoolean ? g.values.map { label(p, $0) }.joined(separator: "/").replacingOccurrences(of: "/write ", with: "/")
                : "set \(fmt(g.values.first!))-\(fmt(g.values.last!))"
            let distinct = g.signature.reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } }
            if distinct.count == 1 {
                lines.append("\(name) \(phrase(distinct[0]))")
            } else {
                let parts = distinct.map { r in
                    phrase(r) + " when " + zip(scenarios, g.signature).filter { $0.1 == r }.map(\.0.rawValue).joined(separator: "/")
                }
                lines.append("\(name): " + parts.joined(separator: ", "))
            }
        }
        return Cell(agent: agent.name, lines: lines, outcomes: outcomes)
    }

    // MARK: rendering

    /// Plain text with aligned columns; a cell's clauses go on separate lines.
    public func text() -> String {
        var out = "Cause-and-effect matrix for site \(site.name)\n"
        out += "Each cell is what Policy.decide answers for that agent, on these plants:\n"
        for s in Scenario.allCases { out += "  \(s.rawValue): \(s.description)\n" }
        out += "Zones on the calm plant:\n"
        for (z, c) in calmZones { out += "  \(z): \(c.summary)\n" }
        out += "Approval: \(site.approvals.isEmpty ? "none" : site.approvals.map { r in r.points.map(\.text).joined(separator: ", ") + " (\(r.timeoutMs / 1000) s)" }.joined(separator: "; "))\n"
        out += "Quarantine after \(site.quarantine.threshold) red-line denials within \(site.quarantine.windowMs / 1000) s.\n"
        if let b = site.bacnet {
            let points = site.points.filter { if case .bacnet = $0.binding { return true } else { return false } }
            let outputs = points.filter(\.role.isOutput).count
            out += "BACnet/IP: \(points.count) points, \(outputs) of them outputs; any agent write to them is at priority \(b.writePriority) only (Present_Value; a release writes NULL there, and only there), decided as below on the value that then takes effect through the priority array; an input whose Status_Flags show fault, overridden or out-of-service, or whose Reliability is not no-fault-detected, is unknown (RL-0).\n"
        }
        out += "\n"

        let headers = ["point", "role", "zone"] + site.agents.map { "\($0.name) (uid \($0.uid))" }
        var table: [[[String]]] = [headers.map { [$0] }]
        for row in rows {
            table.append([[row.point.id], [row.point.role.rawValue], [row.point.zone]] + row.cells.map(\.lines))
        }
        var widths = Array(repeating: 0, count: headers.count)
        for r in table { for (i, c) in r.enumerated() { widths[i] = max(widths[i], c.map(\.count).max() ?? 0) } }
        func rule() -> String { widths.map { String(repeating: "-", count: $0) }.joined(separator: "-+-") + "\n" }
        for (n, r) in table.enumerated() {
            let height = r.map(\.count).max() ?? 1
            for line in 0..<height {
                let cells = r.enumerated().map { i, c in
                    let s = line < c.count ? c[line] : ""
                    return s + String(repeating: " ", count: widths[i] - s.count)
                }
                var text = cells.joined(separator: " | ")
                while text.hasSuffix(" ") { text.removeLast() }
                out += text + "\n"
            }
            if n == 0 || n == table.count - 1 || height > 1 || table[n + 1].map(\.count).max() ?? 1 > 1 { out += rule() }
        }
        return out
    }

    public func json() -> JSON {
        .obj([
            ("site", .string(site.name)),
            ("scenarios", .array(Scenario.allCases.map { .obj([("name", .string($0.rawValue)), ("description", .string($0.description))]) })),
            ("zones", .array(calmZones.map { .obj([("zone", .string($0.zone)), ("calm", .string($0.condition.summary))]) })),
            ("agents", .array(site.agents.map { .obj([("name", .string($0.name)), ("uid", .number(Double($0.uid)))]) })),
            ("rows", .array(rows.map { row in
                .obj([
                    ("point", .string(row.point.id)),
                    ("role", .string(row.point.role.rawValue)),
                    ("zone", .string(row.point.zone)),
                    ("cells", .array(row.cells.map { c in
                        .obj([
                            ("agent", .string(c.agent)),
                            ("summary", .string(c.summary)),
                            ("outcomes", .array(c.outcomes.map { o in
                                .obj([("value", .number(o.value)), ("scenario", .string(o.scenario.rawValue)), ("result", .string(o.result))])
                            })),
                        ])
                    })),
                ])
            })),
        ])
    }
}
