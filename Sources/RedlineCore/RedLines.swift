/// Every red line, in one place (docs/DESIGN.md §4).
///
/// Each is compiled in. No configuration, agent text, approval or override code
/// reaches this table: it takes only the point, the value and the zone's
/// conditions. RL-0 (unknown is unsafe) lives inside ``ZoneCondition/evaluate``
/// and therefore inside every conditioned line below.
public struct RedLine: Sendable {
    public let id: Rule
    public let title: String
    /// Returns why the write is forbidden, or `nil` if this line allows it.
    /// `nil` for lines enforced by architecture rather than per write (RL-9, RL-10).
    let forbids: (@Sendable (RedLineInput) -> String?)?
}

/// What a red line may look at. Deliberately holds no free text (RL-10).
struct RedLineInput {
    let point: Point
    let value: Double
    /// Conditions of the point's zone, evaluated on fresh readings.
    let condition: ZoneCondition
    /// The safe-state effect driving this output right now, if any (RL-11).
    let drive: Drive?
    /// Whether the deciding agent may read an input: explanations name only those (compartments).
    let canSee: (String) -> Bool

    /// The zone's conditions in words, naming only inputs the agent may read.
    var summary: String { condition.summary(zone: point.zone, visibleTo: canSee) }
}

public enum RedLines {
    public static let all: [RedLine] = [
        RedLine(id: .rl1, title: "No agent write to alarm silence, acknowledge, reset or disable, ever") { i in
            i.point.role.isAlarmControl
                ? "\(i.point.id) is a fire-alarm control (\(i.point.role.rawValue)); only people at the panel may use it"
                : nil
        },
        RedLine(id: .rl2, title: "No agent write to dispatch cancel or delay, ever") { i in
            i.point.role.isDispatchControl
                ? "\(i.point.id) would cancel or delay an emergency-services dispatch; no agent may do that"
                : nil
        },
        RedLine(id: .rl3, title: "No egress lock set to locked while its zone is occupied, in alarm or in hazard; releasing is always allowed") { i in
            guard i.point.role == .egressLock, !(i.value == 0) else { return nil }
            let c = i.condition
            guard c.occupied || c.inAlarm || c.hazard else { return nil }
            return "locking \(i.point.id) could trap people in \(i.point.zone): " + i.summary
        },
        RedLine(id: .rl4, title: "No agent write to suppression release, abort, inhibit or lockout, ever") { i in
            i.point.role.isSuppressionControl
                ? "\(i.point.id) controls fire suppression (\(i.point.role.rawValue)); only the suppression panel decides"
                : nil
        },
        RedLine(id: .rl5, title: "While a zone is occupied, no agent may stop its cooling, ventilation or exhaust, or set a setpoint above 27 °C") { i in
            let reduces: Bool
            switch i.point.role {
            case .coolingRun, .ventilationRun, .exhaustRun: reduces = !(i.value >= 1)
            case .temperatureSetpoint: reduces = !(i.value <= Limits.occupiedMaxSetpoint)
            default: return nil
            }
            guard reduces else { return nil }
            let c = i.condition
            guard c.occupied else { return nil }
            return "\(i.point.zone) is occupied; \(i.point.id) = \(fmt(i.value)) would reduce life support: " + i.summary
        },
        RedLine(id: .rl6, title: "While a zone is in alarm, no agent may write its outputs (releasing an egress lock excepted): the fire system owns them") { i in
            // Outputs only: a write to an input is RL-8's to name.
            guard i.point.role.isOutput else { return nil }
            if i.point.role == .egressLock && i.value == 0 { return nil }
            let c = i.condition
            guard c.inAlarm else { return nil }
            return "\(i.point.zone) is in alarm; the fire system owns \(i.point.id): " + i.summary
        },
        RedLine(id: .rl7, title: "Numeric writes stay inside compiled-in envelopes (setpoints 15-32 °C, booleans 0 or 1, no NaN or infinity)") { i in
            let v = i.value, role = i.point.role
            if !v.isFinite { return "\(fmt(v)) is not a finite number" }
            // Envelopes bound writes to outputs; a write to an input is RL-8's to name.
            guard role.isOutput else { return nil }
            if role.isBoolean && !(v == 0 || v == 1) { return "\(i.point.id) takes only 0 or 1, not \(fmt(v))" }
            if !role.envelope.contains(v) {
                return "\(fmt(v)) is outside the physical envelope of \(role.rawValue) (\(fmt(role.envelope.lowerBound))-\(fmt(role.envelope.upperBound)))"
            }
            return nil
        },
        RedLine(id: .rl8, title: "Agents address declared points by name only; inputs are never writable, nor any BACnet property but an output's Present_Value") { i in
            guard i.point.role.isOutput else {
                return "\(i.point.id) is an input (\(i.point.role.rawValue)); inputs are never writable"
            }
            // Structural, whatever the loader let through: a BACnet output is written only at its
            // Present_Value, never Out_Of_Service, Reliability, Relinquish_Default, the
            // Priority_Array or a notification property (issue 17). The object is not named: raw
            // addresses are never shown to agents.
            if case .bacnet(let address) = i.point.binding, let why = address.agentWriteRefusal {
                return "\(i.point.id) is bound to a BACnet property agents may never write (\(why))"
            }
            return nil
        },
        RedLine(id: .rl9, title: "Nothing on the agent channel changes configuration, red lines, grants, approvals, quarantine or the audit log; approved commands are re-checked on fresh readings",
                forbids: nil),
        RedLine(id: .rl10, title: "Free text is inert: decisions never read reasons or any other text",
                forbids: nil),
        RedLine(id: .rl11, title: "While a safe-state effect drives an output (E-1 locks, E-3 annunciators, E-4 life support), no agent may write another value to it") { i in
            guard let d = i.drive, !(i.value == d.value) else { return nil }
            return "\(d.effect.rawValue) holds \(i.point.id) at \(fmt(d.value)) (\(d.effect.purpose)); no agent may write another value while it does"
        },
    ]
}

extension ZoneCondition {
    /// One line naming the conditions and their causes, where a cause whose input the
    /// reader may not see is replaced by "ZONE is CONDITION (by an input you cannot read)".
    public func summary(zone: String, visibleTo canSee: (String) -> Bool) -> String {
        var flags: [String] = []
        if occupied { flags.append("occupied") }
        if inAlarm { flags.append("in alarm") }
        if hazard { flags.append("hazard") }
        let head = flags.isEmpty ? "calm" : flags.joined(separator: ", ")
        var shown: [String] = []
        var hidden: [String] = []
        for (k, text) in causes.enumerated() {
            let input = k < causeInputs.count ? causeInputs[k] : nil
            if let input, !canSee(input) {
                let kind = k < causeKinds.count ? causeKinds[k] : "unsafe"
                let line = "\(zone) is \(kind) (by an input you cannot read)"
                if !hidden.contains(line) { hidden.append(line) }
            } else {
                shown.append(text)
            }
        }
        let all = shown + hidden
        return all.isEmpty ? head : head + " (" + all.joined(separator: "; ") + ")"
    }

    /// One line naming the conditions and all their causes (for operators).
    public var summary: String {
        var flags: [String] = []
        if occupied { flags.append("occupied") }
        if inAlarm { flags.append("in alarm") }
        if hazard { flags.append("hazard") }
        let head = flags.isEmpty ? "calm" : flags.joined(separator: ", ")
        return causes.isEmpty ? head : head + " (" + causes.joined(separator: "; ") + ")"
    }
}
