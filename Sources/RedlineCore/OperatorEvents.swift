/// Operator events (docs/DESIGN.md §8): what an operator is told as it happens, derived from
/// the audit records the daemon has made durable. A daemon that stops or restarts ends every
/// subscription (the connection closes): that is the "not ready" signal, and a subscriber that
/// reconnects learns the audit seq it missed from `events.subscribe`'s answer. One home for the mapping: an event exists
/// only for a record that is on disk, and carries that record's `seq`, so an operator (or a
/// witness) can always find the record behind a notification. Pure: no I/O, no clock.
public enum OperatorEvents {
    /// Every event name, as `events.subscribe` documents them.
    public static let names: [String] = [
        "request.held", "request.approved", "request.denied", "request.expired",
        "redline.denied",
        "agent.quarantined", "agent.released",
        "effect.engaged", "effect.ended", "effect.failed", "effect.overridden", "effect.recovered",
        "device.faulted", "device.recovered",
        "daemon.ready",
        "site.escalated", "site.cleared",
        "audit.gap",
    ]

    /// The events one durable audit record stands for (none for most records: a read, an
    /// executed result, a checkpoint). Unknown kinds give none: a newer daemon's record never
    /// makes an older console fail.
    public static func events(for record: JSON) -> [JSON] {
        guard let kind = record["kind"]?.stringValue, let seq = record["seq"]?.numberValue else { return [] }
        let time = record["time"] ?? .null
        func event(_ name: String, _ summary: String, _ keys: [String], extra: [(String, JSON)] = []) -> JSON {
            var f: [(String, JSON)] = [("event", .string(name)), ("seq", .number(seq)), ("time", time)]
            for k in keys { if let v = record[k], v != .null { f.append((k, v)) } }
            f += extra
            f.append(("summary", .string(summary)))
            return .obj(f)
        }
        func s(_ k: String) -> String { record[k]?.stringValue ?? record[k].map { $0.encoded() } ?? "?" }
        switch kind {
        case "decision":
            switch record["outcome"]?.stringValue {
            case "held":
                return [event("request.held", "\(s("agent")) asks \(s("point")) = \(s("value")); held for an operator: \(s("explanation"))",
                              ["requestId", "agent", "point", "value", "explanation", "timeoutS"])]
            case "denied":
                let rule = record["rule"]?.stringValue ?? ""
                if rule.hasPrefix("RL-") {
                    return [event("redline.denied", "\(s("agent")) denied \(s("point")) = \(s("value")) by red line \(rule): \(s("explanation"))",
                                  ["requestId", "agent", "point", "value", "rule", "explanation", "approvedBy"])]
                }
                if record["approvedBy"] != nil {
                    return [event("request.denied", "approved \(s("requestId")) denied on fresh readings (\(rule)): \(s("explanation"))",
                                  ["requestId", "agent", "point", "value", "rule", "explanation", "approvedBy"])]
                }
                return []
            default:
                return []
            }
        case "approval":
            switch record["action"]?.stringValue {
            case "approve":
                return [event("request.approved", "uid \(s("by")) approved \(s("requestId"))", ["requestId", "by"])]
            case "deny":
                return [event("request.denied", "uid \(s("by")) denied \(s("requestId"))", ["requestId", "by", "reason"])]
            default:
                return []
            }
        case "expired":
            return [event("request.expired", "\(s("requestId")) (\(s("agent")), \(s("point"))) expired: \(s("why"))",
                          ["requestId", "agent", "point", "why"])]
        case "quarantine":
            return [event("agent.quarantined", "\(s("agent")) quarantined after \(s("threshold")) red-line denials in \(s("windowS")) s",
                          ["agent", "after", "threshold", "windowS"])]
        case "release":
            return [event("agent.released", "uid \(s("by")) released \(s("agent"))", ["agent", "by", "wasQuarantined"])]
        case "effect":
            let effect = s("effect")
            // E-2 ends held requests of a zone in alarm: each is an expiry the operator is told of.
            if let expired = record["expired"]?.arrayValue {
                return expired.compactMap(\.stringValue).map { id in
                    event("request.expired", "\(id) expired: \(s("why"))", ["zone", "why"], extra: [("requestId", .string(id)), ("effect", .string(effect))])
                }
            }
            switch record["state"]?.stringValue {
            case "engaged":
                return [event("effect.engaged", "\(effect) engaged in \(s("zone")): \(s("why"))", ["effect", "zone", "why"])]
            case "ended":
                return [event("effect.ended", "\(effect) ended in \(s("zone")): \(s("why"))", ["effect", "zone", "why"])]
            default:
                return []
            }
        case "effect-failed":
            return [event("effect.failed", "\(s("effect")) could not write \(s("point")) = \(s("value")): \(s("error"))",
                          ["effect", "point", "value", "error"])]
        case "effect-overridden":
            // Never "done": the safe value waits in the agents' slot, re-asserted every scan.
            return [event("effect.overridden", "\(s("effect")) wrote \(s("point")) = \(s("value")) at priority \(s("writePriority")), "
                          + "but priority \(s("priority")) overrides it: the value in effect is \(record["inEffect"]?.numberValue.map(fmt) ?? "unknown"); "
                          + "re-asserted every scan, it takes effect when priority \(s("priority")) is relinquished",
                          ["effect", "point", "value", "writePriority", "priority", "inEffect"])]
        case "effect-recovered":
            return [event("effect.recovered", "\(s("effect")) \(s("point")) = \(s("value")) is in effect again (it was \(s("after")))",
                          ["effect", "point", "value", "after"])]
        case "device":
            switch record["state"]?.stringValue {
            case "faulted":
                return [event("device.faulted", "device \(s("device")) faulted: \(s("why"))", ["device", "zone", "why"])]
            case "recovered":
                return [event("device.recovered", "device \(s("device")) recovered", ["device", "zone"])]
            default:
                return []
            }
        case "escalation":
            switch record["state"]?.stringValue {
            case "entered":
                return [event("site.escalated", "site-wide escalation, agents-held: every agent write but a safe value waits for an operator (\(s("why")))", ["why", "after"])]
            case "cleared":
                return [event("site.cleared", "uid \(s("by")) cleared agents-held", ["by", "why"])]
            default:
                return []
            }
        case "ready":
            return [event("daemon.ready", "redlined ready: first full scan of \(s("site")) complete", ["site"])]
        case "gap":
            return [event("audit.gap", "the audit log could not be written for a while: see record \(Int(seq))", [])]
        default:
            return []
        }
    }
}
