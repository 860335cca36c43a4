import Foundation
import RedlineCore
import Yams

/// What a value on the plant (or a reading) must be.
public enum ValueMatch: Sendable, Hashable, CustomStringConvertible {
    case equals(Double)
    case range(min: Double?, max: Double?)

    public func matches(_ v: Double?) -> Bool {
        guard let v, v.isFinite else { return false }
        switch self {
        case .equals(let x): return abs(v - x) <= max(1e-6, abs(x) * 1e-6)
        case .range(let lo, let hi): return (lo.map { v >= $0 } ?? true) && (hi.map { v <= $0 } ?? true)
        }
    }

    public var description: String {
        switch self {
        case .equals(let x): return fmt(x)
        case .range(let lo, let hi):
            switch (lo, hi) {
            case let (l?, h?): return "\(fmt(l))..\(fmt(h))"
            case let (l?, nil): return ">= \(fmt(l))"
            case let (nil, h?): return "<= \(fmt(h))"
            default: return "any"
            }
        }
    }
}

/// The expected answer to an agent or operator action.
public struct Expectation: Sendable, Hashable, CustomStringConvertible {
    public var outcome: String?
    public var rule: String?
    /// A JSON-RPC error code instead of a result.
    public var error: Int?

    public init(outcome: String? = nil, rule: String? = nil, error: Int? = nil) {
        self.outcome = outcome
        self.rule = rule
        self.error = error
    }

    public var isEmpty: Bool { outcome == nil && rule == nil && error == nil }

    public var description: String {
        if let error { return "error \(error)" }
        return [outcome, rule.map { "[\($0)]" }].compactMap { $0 }.joined(separator: " ")
    }
}

/// An agent's `points.write`.
public struct AgentWrite: Sendable, Hashable {
    public var agent: String
    public var point: String
    public var value: Double
    public var reason: String?
    public var label: String?
    public var expect: Expectation
}

/// One action of a scenario's timeline.
public enum Action: Sendable, Hashable {
    /// Narrative only.
    case say(String)
    /// Physical changes (`plant.set`, in order); in guided mode the engineer makes them.
    case plant([PlantChange], instruction: String?)
    /// A device fault (`device.fault`); in guided mode the engineer causes it.
    case fault(device: String, mode: String, instruction: String?)
    /// Plant time passes (`plant.advance`, manual clock); in guided mode the engineer lets it pass.
    case advance(seconds: Double, instruction: String?)
    /// Wall-clock time passes.
    case wait(seconds: Double)
    case write(AgentWrite)
    /// `points.read` by an agent, with expected values.
    case read(agent: String, expect: [PlantChange])
    /// `requests.get` by the agent that made the labelled request.
    case request(label: String, expect: Expectation)
    case approve(label: String, expect: Expectation)
    case deny(label: String, reason: String?, expect: Expectation)
    case release(agent: String)
    /// The plant's ground truth (`plant.get`), polled until it matches or `within` seconds pass.
    case expectState([StateExpectation], within: Double)
    /// Records that must be in the daemon's audit log (written during this scenario), and the chain must verify.
    case audit([JSON])
}

public struct PlantChange: Sendable, Hashable {
    public var name: String
    public var value: Double
}

public struct StateExpectation: Sendable, Hashable {
    public var name: String
    public var match: ValueMatch
}

public struct Step: Sendable, Hashable {
    /// 1-based line in the scenario file.
    public var line: Int
    public var title: String?
    public var action: Action
}

/// A scenario: a YAML timeline of steps (see `Simulators/Scenarios/README.md`).
public struct Scenario: Sendable {
    public var name: String
    public var file: String
    public var description: String
    /// `manual` when the steps use `advance` (the simulator must run with `--clock manual`).
    public var clock: String?
    /// The site file, relative to the scenario file; `--site` overrides it.
    public var site: String?
    public var steps: [Step]

    /// The site file this scenario names, resolved against its folder.
    public var siteFile: String? {
        guard let site else { return nil }
        if site.hasPrefix("/") { return site }
        return URL(fileURLWithPath: file).deletingLastPathComponent().appendingPathComponent(site).standardizedFileURL.path
    }

    public static func load(file: String) throws(ScenarioError) -> Scenario {
        let text: String
        do { text = try String(contentsOfFile: file, encoding: .utf8) } catch {
            throw ScenarioError("\(file): cannot read: \(error.localizedDescription)")
        }
        return try parse(text, file: file)
    }

    static let topKeys: Set<String> = ["scenario", "description", "clock", "site", "agent", "steps"]

    public static func parse(_ text: String, file: String) throws(ScenarioError) -> Scenario {
        let root = try YAMLJSON.load(text, file: file)
        guard case .mapping(let m) = root else { throw ScenarioError("\(file):1: a scenario is a mapping with `scenario` and `steps`") }
        let top = YAMLJSON.json(root)
        for (k, v) in m where !topKeys.contains(k.string ?? "") {
            _ = v
            throw ScenarioError("\(file):\(YAMLJSON.line(k)): unknown key `\(k.string ?? "?")` (expected one of \(topKeys.sorted().joined(separator: ", ")))")
        }
        guard let name = top["scenario"]?.stringValue else { throw ScenarioError("\(file):1: missing `scenario: NAME`") }
        let defaultAgent = top["agent"]?.stringValue
        var stepsNode: Node?
        for (k, v) in m where k.string == "steps" { stepsNode = v }
        guard let stepsNode, case .sequence(let seq) = stepsNode else { throw ScenarioError("\(file):\(stepsNode.map(YAMLJSON.line) ?? 1): missing `steps:` list") }
        var steps: [Step] = []
        for node in seq {
            let line = YAMLJSON.line(node)
            let j = YAMLJSON.json(node)
            do {
                steps.append(try parseStep(j, line: line, defaultAgent: defaultAgent))
            } catch {
                throw ScenarioError("\(file):\(line): \(error.description)")
            }
        }
        let clock = top["clock"]?.stringValue
        if let clock, clock != "manual", clock != "real" {
            let at = m.first { $0.key.string == "clock" }.map { YAMLJSON.line($0.value) } ?? 1
            throw ScenarioError("\(file):\(at): clock must be `manual` or `real`")
        }
        return Scenario(name: name, file: file, description: top["description"]?.stringValue ?? "", clock: clock,
                        site: top["site"]?.stringValue, steps: steps)
    }

    static let actionKeys = ["say", "plant", "fault", "advance", "wait", "write", "read", "request", "approve", "deny", "release", "expect", "audit"]

    static func parseStep(_ j: JSON, line: Int, defaultAgent: String?) throws(ScenarioError) -> Step {
        guard let obj = j.objectValue else { throw ScenarioError("a step is a mapping, e.g. `- write: {point: P, value: V}`") }
        let keys = obj.map(\.0)
        var actions = keys.filter { actionKeys.contains($0) }
        // `expect` is the action only on its own; beside another action it is that action's expected answer.
        if actions.count > 1 { actions.removeAll { $0 == "expect" } }
        guard actions.count == 1, let key = actions.first else {
            throw ScenarioError("a step has exactly one action of \(actionKeys.joined(separator: ", ")); got \(keys.joined(separator: ", "))")
        }
        let allowed: Set<String> = [key, "title", "as", "label", "reason", "expect", "within-s", "instruction", "value", "point"]
        if let bad = keys.first(where: { !allowed.contains($0) }) { throw ScenarioError("unknown key `\(bad)` in a `\(key)` step") }
        let v = j[key]!
        let title = j["title"]?.stringValue
        let agent = j["as"]?.stringValue ?? defaultAgent
        let instruction = j["instruction"]?.stringValue
        func needAgent() throws(ScenarioError) -> String {
            guard let agent else { throw ScenarioError("`\(key)` needs `as: AGENT` (or a scenario-level `agent:`)") }
            return agent
        }
        let action: Action
        switch key {
        case "say":
            action = .say(v.stringValue ?? v.encoded())
        case "plant":
            action = .plant(try changes(v, "plant"), instruction: instruction)
        case "fault":
            guard let d = v["device"]?.stringValue, let mode = v["mode"]?.stringValue else {
                throw ScenarioError("`fault` needs {device, mode}")
            }
            action = .fault(device: d, mode: mode, instruction: instruction)
        case "advance":
            guard let s = v.numberValue, s > 0, s <= 86_400 else { throw ScenarioError("`advance` needs seconds (0 < s <= 86400)") }
            action = .advance(seconds: s, instruction: instruction)
        case "wait":
            guard let s = v.numberValue, s >= 0, s <= 3600 else { throw ScenarioError("`wait` needs seconds (0...3600)") }
            action = .wait(seconds: s)
        case "write":
            // `write: POINT` with `value:` beside it, or `write: {point, value, reason}`.
            let point = v.stringValue ?? v["point"]?.stringValue
            let value = v["value"]?.numberValue ?? j["value"]?.numberValue
            guard let point, let value else { throw ScenarioError("`write` needs a point and a numeric `value`") }
            let reason = v["reason"]?.stringValue ?? j["reason"]?.stringValue
            action = .write(AgentWrite(agent: try needAgent(), point: point, value: value, reason: reason,
                                       label: j["label"]?.stringValue, expect: try expectation(j["expect"])))
        case "read":
            action = .read(agent: try needAgent(), expect: try changes(v, "read"))
        case "request":
            guard let l = v.stringValue else { throw ScenarioError("`request` needs a label") }
            action = .request(label: l, expect: try expectation(j["expect"]))
        case "approve":
            guard let l = v.stringValue else { throw ScenarioError("`approve` needs the label of an earlier `write`") }
            action = .approve(label: l, expect: try expectation(j["expect"]))
        case "deny":
            guard let l = v.stringValue else { throw ScenarioError("`deny` needs the label of an earlier `write`") }
            action = .deny(label: l, reason: j["reason"]?.stringValue, expect: try expectation(j["expect"]))
        case "release":
            guard let a = v.stringValue else { throw ScenarioError("`release` needs an agent name") }
            action = .release(agent: a)
        case "expect":
            guard let o = v.objectValue, !o.isEmpty else { throw ScenarioError("`expect` needs {NAME: VALUE or {min, max}}") }
            var list: [StateExpectation] = []
            for (name, m) in o { list.append(StateExpectation(name: name, match: try match(m, name))) }
            action = .expectState(list, within: j["within-s"]?.numberValue ?? 3)
        case "audit":
            guard let a = v.arrayValue, a.allSatisfy({ $0.objectValue != nil }) else {
                throw ScenarioError("`audit` needs a list of record patterns, e.g. [{kind: decision, rule: RL-2}]")
            }
            action = .audit(a)
        default:
            throw ScenarioError("unknown action \(key)")
        }
        return Step(line: line, title: title, action: action)
    }

    static func changes(_ v: JSON, _ what: String) throws(ScenarioError) -> [PlantChange] {
        guard let o = v.objectValue, !o.isEmpty else { throw ScenarioError("`\(what)` needs {NAME: VALUE, ...}") }
        var out: [PlantChange] = []
        for (k, x) in o {
            guard let n = x.numberValue ?? x.boolValue.map({ $0 ? 1 : 0 }), n.isFinite else {
                throw ScenarioError("`\(what)`: \(k) needs a number")
            }
            out.append(PlantChange(name: k, value: n))
        }
        return out
    }

    static func match(_ v: JSON, _ name: String) throws(ScenarioError) -> ValueMatch {
        if let n = v.numberValue ?? v.boolValue.map({ $0 ? 1 : 0 }) { return .equals(n) }
        if v.objectValue != nil {
            let lo = v["min"]?.numberValue, hi = v["max"]?.numberValue
            if lo != nil || hi != nil { return .range(min: lo, max: hi) }
        }
        throw ScenarioError("expected value of \(name) must be a number or {min, max}")
    }

    static func expectation(_ v: JSON?) throws(ScenarioError) -> Expectation {
        guard let v, v != .null else { return Expectation() }
        if let s = v.stringValue { return Expectation(outcome: s) }
        guard v.objectValue != nil else { throw ScenarioError("`expect` is an outcome or {outcome, rule, error}") }
        return Expectation(outcome: v["outcome"]?.stringValue, rule: v["rule"]?.stringValue,
                           error: v["error"]?.numberValue.map { Int($0) })
    }
}
