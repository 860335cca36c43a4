/// The rule a decision names (docs/DESIGN.md §4).
public enum Rule: String, Sendable, Hashable, CaseIterable, Codable {
    case rl1 = "RL-1", rl2 = "RL-2", rl3 = "RL-3", rl4 = "RL-4", rl5 = "RL-5"
    case rl6 = "RL-6", rl7 = "RL-7", rl8 = "RL-8", rl9 = "RL-9", rl10 = "RL-10", rl11 = "RL-11"
    case quarantined
    case notWritable = "not-writable"
    case outOfRange = "out-of-range"
    case notReady = "not-ready"

    /// Red-line denials count towards quarantine (DESIGN §6).
    public var isRedLine: Bool { rawValue.hasPrefix("RL-") }
}

/// A command an agent asks for: a write, or the release of its command of a BACnet output
/// (`points.release`: NULL at the agents' priority). It carries no free text: RL-10 holds by
/// construction.
public struct WriteCommand: Sendable, Hashable {
    public var agent: String
    public var point: String
    /// The value decided on. For a write, the value written; for a release, the value that
    /// the release puts in effect (the next held priority below the agents', or
    /// Relinquish_Default), read from the device when it is decided (`Policy.decideBACnet`).
    public var value: Double
    /// A release of the agents' slot rather than a write of `value`.
    public var release: Bool
    public init(agent: String, point: String, value: Double, release: Bool = false) {
        self.agent = agent
        self.point = point
        self.value = value
        self.release = release
    }
}

/// The outcome of deciding a write.
public enum Decision: Sendable, Hashable {
    /// Not visible to this agent (or not declared): identical either way.
    case unknownPoint
    case denied(Rule, String)
    /// Needs an operator; expires after `timeoutMs`.
    case held(timeoutMs: Int64, String)
    case allowed

    public var rule: Rule? {
        if case .denied(let r, _) = self { return r }
        return nil
    }
    public var isAllowed: Bool { self == .allowed }
}

/// Everything a decision may depend on besides the command. Time is a parameter.
public struct PolicyState: Sendable {
    public var site: Site
    public var snapshot: PlantSnapshot
    public var now: Int64
    /// The first full scan has completed.
    public var ready: Bool
    public var quarantined: Set<String>
    /// Outputs a safe-state effect drives right now, with the value it holds them at (RL-11).
    public var driven: [String: Drive]
    /// The site is in `agents-held` (§6.2): every agent write but a safe value waits for an operator.
    public var agentsHeld: Bool

    public init(site: Site, snapshot: PlantSnapshot, now: Int64, ready: Bool = true, quarantined: Set<String> = [],
                driven: [String: Drive] = [:], agentsHeld: Bool = false) {
        self.site = site
        self.snapshot = snapshot
        self.now = now
        self.ready = ready
        self.quarantined = quarantined
        self.driven = driven
        self.agentsHeld = agentsHeld
    }
}

public enum Policy {
    /// The command as it will land on the device: its value quantized through the point's
    /// encoding (docs/DESIGN.md §4.2). `representable` is false when the encoding cannot
    /// carry the value at all (then the value is left as asked, for the red lines to name,
    /// and `decideQuantized` denies what they would not).
    public static func quantize(_ command: WriteCommand, site: Site) -> (command: WriteCommand, representable: Bool) {
        guard let point = site.point(command.point) else { return (command, true) }
        guard let q = point.quantized(command.value) else { return (command, false) }
        var c = command
        c.value = q
        return (c, true)
    }

    /// Decides on the value that will be written: quantizes, then decides; a value the
    /// encoding cannot carry is denied (`out-of-range`) wherever no red line denies it first.
    public static func decideQuantized(_ command: WriteCommand, in state: PolicyState, approved: Bool = false) -> (WriteCommand, Decision) {
        let (q, representable) = quantize(command, site: state.site)
        let d = decide(q, in: state, approved: approved)
        guard !representable else { return (q, d) }
        switch d {
        case .allowed, .held:
            return (q, .denied(.outOfRange, "\(fmt(command.value)) cannot be written to \(command.point): its encoding cannot carry it"))
        case .denied, .unknownPoint:
            return (q, d)
        }
    }

    /// Decides a write. Small, total and pure: forbid always wins, and there is
    /// no path that allows a write without passing every red line.
    ///
    /// Order: visible -> ready -> quarantine -> RL-1..RL-11 -> write grant ->
    /// configured range -> agents-held -> approval. `approved` skips only the two hold steps,
    /// never a red line (RL-9).
    public static func decide(_ command: WriteCommand, in state: PolicyState, approved: Bool = false) -> Decision {
        decide(command, in: state, approved: approved, condition: nil)
    }

    /// True when `command` is denied whatever the plant reads: under every combination of
    /// the zone's conditions, driven or not by an effect. Such a write needs no fresh read
    /// (no device I/O at all); deciding it on the latest snapshot reports the same rule
    /// a fresh read would, because the rule does not depend on the readings.
    public static func deniedWhateverThePlant(_ command: WriteCommand, in state: PolicyState) -> Bool {
        guard let point = state.site.point(command.point) else { return true }
        var calm = state
        calm.driven[point.id] = nil
        for bits in 0..<8 {
            let c = ZoneCondition(occupied: bits & 1 != 0, inAlarm: bits & 2 != 0, hazard: bits & 4 != 0)
            switch decide(command, in: calm, approved: false, condition: c) {
            case .denied, .unknownPoint: continue
            case .held, .allowed: return false
            }
        }
        return true
    }

    /// `condition`, when given, replaces the zone's evaluated conditions (for
    /// `deniedWhateverThePlant`, which asks what each combination would decide).
    static func decide(_ command: WriteCommand, in state: PolicyState, approved: Bool, condition: ZoneCondition?) -> Decision {
        guard let agent = state.site.agent(named: command.agent),
              let point = state.site.point(command.point)
        else { return .unknownPoint }
        let writable = agent.canWrite(point.id)
        guard writable || agent.canSee(point.id) else { return .unknownPoint }

        guard state.ready else {
            return .denied(.notReady, "the first full scan has not completed; no writes until the plant has been read")
        }
        if state.quarantined.contains(agent.name) {
            return .denied(.quarantined, "\(agent.name) is quarantined after repeated red-line denials; an operator must release it")
        }
        if let (rule, why) = firstRedLine(point: point, value: command.value, state: state, condition: condition,
                                          visibleTo: { agent.canSee($0) }) {
            return .denied(rule, why)
        }
        guard writable else {
            return .denied(.notWritable, "\(agent.name) has no write grant for \(point.id)")
        }
        let range = point.writeRange
        guard range.contains(command.value) else {
            return .denied(.outOfRange, "\(fmt(command.value)) is outside the configured range of \(point.id) (\(fmt(range.lowerBound))-\(fmt(range.upperBound)))")
        }
        if !approved, state.agentsHeld, command.value != point.role.safeValue {
            let timeout = state.site.approvalRule(for: point.id)?.timeoutMs ?? Limits.escalationHoldMs
            return .held(timeoutMs: timeout, "the site is in agents-held (site-wide escalation): \(point.id) = \(fmt(command.value)) needs an operator's approval within \(timeout / 1000) s")
        }
        if !approved, let rule = state.site.approvalRule(for: point.id), command.value != point.role.safeValue {
            return .held(timeoutMs: rule.timeoutMs, "\(point.id) = \(fmt(command.value)) needs an operator's approval within \(rule.timeoutMs / 1000) s")
        }
        return .allowed
    }

    /// The first red line that forbids writing `value` to `point`, in order RL-1 to RL-11.
    public static func firstRedLine(point: Point, value: Double, state: PolicyState, condition override: ZoneCondition? = nil,
                                    visibleTo canSee: @escaping (String) -> Bool = { _ in true }) -> (Rule, String)? {
        // Only outputs governed by the conditioned lines (RL-3, RL-5, RL-6) need the zone's
        // conditions; the others are decided by RL-1, RL-2, RL-4 or RL-8 before any line
        // looks at them. Should one ever look, it sees the most dangerous zone (fail closed).
        let role = point.role
        let needed = role.isOutput && !role.isAlarmControl && !role.isDispatchControl && !role.isSuppressionControl
        let condition = override ?? (needed
            ? ZoneCondition.evaluate(zone: point.zone, site: state.site, snapshot: state.snapshot, now: state.now)
            : ZoneCondition(occupied: true, inAlarm: true, hazard: true, causes: ["not evaluated for \(role.rawValue)"]))
        let input = RedLineInput(point: point, value: value, condition: condition, drive: state.driven[point.id], canSee: canSee)
        for line in RedLines.all {
            if let why = line.forbids?(input) { return (line.id, why) }
        }
        return nil
    }
}

/// A decided command to a BACnet point: what it will do on the device, and the decision.
public struct BACnetDecision: Sendable, Hashable {
    /// The command as decided: its value is the one the red lines were decided on (`effect.decided`).
    public var command: WriteCommand
    /// What the command will do to the priority array, when it can be sent at all.
    public var effect: BACnetEffect?
    public var request: BACnetCommand
    /// The site's agent priority it is sent at.
    public var priority: BACnetPriority?
    public var decision: Decision
}

extension Policy {
    /// Decides a command to a BACnet point (docs/DESIGN.md §4.2, §10; issue 17).
    ///
    /// The value decided is the value that will take effect: a write is first quantized as the
    /// object holds it (REAL, 0/1); a release (NULL at the agent priority) is decided on what
    /// the priorities below it, or Relinquish_Default, then hold. A write that a higher priority
    /// overrides is still decided on its own value: it takes effect the moment that priority is
    /// relinquished, so it is never a way round a red line. `commandable` is the object's
    /// Priority_Array and Relinquish_Default as last read (nil: the object has none). Everything
    /// else is `decideQuantized`, in its order; any step that cannot be decided denies.
    public static func decideBACnet(agent: String, point id: String, request: BACnetCommand,
                                    commandable: BACnetCommandable?, in state: PolicyState,
                                    approved: Bool = false) -> BACnetDecision {
        let priority = state.site.bacnet?.writePriority
        func out(_ value: Double, _ effect: BACnetEffect?, _ d: Decision) -> BACnetDecision {
            BACnetDecision(command: WriteCommand(agent: agent, point: id, value: value, release: request == .relinquish), effect: effect,
                           request: request, priority: priority, decision: d)
        }
        // Visibility first, identical for a missing point and one the agent may not see.
        guard let a = state.site.agent(named: agent), let point = state.site.point(id), a.canSee(id) || a.canWrite(id) else {
            return out(.nan, nil, .unknownPoint)
        }
        var request = request
        if case .write(let v) = request, let q = point.quantized(v) { request = .write(q) }
        let isBACnet: Bool
        if case .bacnet = point.binding { isBACnet = true } else { isBACnet = false }
        if isBACnet && priority == nil {
            // A valid site has one whenever it has a BACnet bus; without it, no slot is the agents'.
            return out(.nan, nil, .denied(.notWritable, "the site fixes no BACnet priority for agents, so no agent may command \(id)"))
        }
        guard isBACnet, let priority else {
            // Not a BACnet point: a plain write is decided as ever, a release means nothing there.
            if case .write(let v) = request {
                let (c, d) = decideQuantized(WriteCommand(agent: agent, point: id, value: v), in: state, approved: approved)
                return BACnetDecision(command: c, effect: nil, request: request, priority: priority, decision: d)
            }
            return out(.nan, nil, .denied(.outOfRange, "\(id) is not a commandable BACnet point: there is no priority to release"))
        }
        guard let effect = BACnetCommanding.effect(of: request, at: priority, on: commandable) else {
            return out(.nan, nil, .denied(.outOfRange, "\(id) has no priority array: there is nothing to release, only a value to write"))
        }
        let (c, d) = decideQuantized(WriteCommand(agent: agent, point: id, value: effect.decided, release: request == .relinquish),
                                     in: state, approved: approved)
        return BACnetDecision(command: c, effect: effect, request: request, priority: priority, decision: d)
    }
}
