import RedlineCore

/// The checks every red-team runner makes (in process, `InProcessTests/RedTeamInProcessTests`, and end
/// to end, `EndToEndTests/RedTeamTests`), in one home. Each returns the failures to record, so a runner
/// only gathers what it observed (through memory or through real sockets and Modbus) and reports these.
extension RedTeamCase {
    /// The request to send beside a case that expects -32004 (not visible): a hidden point and a point
    /// that does not exist must be answered alike, so an agent cannot map what it may not see.
    public var hiddenPointProbe: (params: JSON, original: String, missing: String)? {
        guard expect["error"]?.numberValue == -32004 else { return nil }
        return Self.missingPointProbe(params)
    }

    /// The answer: the expected error code (and, for -32004, the same answer as for a missing point),
    /// or a result with the expected outcome and rule.
    public func answerFailures(_ resp: JSON, probeAnswer other: JSON?) -> [String] {
        var out: [String] = []
        if let code = expect["error"]?.numberValue {
            if resp["error"]?["code"]?.numberValue != code { out.append("\(id): expected error \(fmt(code)), got \(resp.encoded())") }
            if let probe = hiddenPointProbe {
                let message = resp["error"]?["message"]?.stringValue
                let otherMessage = other?["error"]?["message"]?.stringValue?.replacingOccurrences(of: probe.missing, with: probe.original)
                if other?["error"]?["code"] != resp["error"]?["code"] || otherMessage != message {
                    out.append("\(id): \(resp.encoded()) differs from the answer for a point that does not exist, \(other?.encoded() ?? "none")")
                }
            }
        } else if resp["error"] != nil {
            out.append("\(id): expected a result, got \(resp.encoded())")
        }
        if let outcome = expect["outcome"]?.stringValue {
            let result = resp["result"]
            if result?["outcome"]?.stringValue != outcome { out.append("\(id): expected \(outcome), got \(resp.encoded())") }
            if let rule = expect["rule"]?.stringValue, result?["rule"]?.stringValue != rule {
                out.append("\(id): expected rule \(rule), got \(resp.encoded())")
            }
        }
        return out
    }

    /// Ground truth: unless the case expects execution, the attacked output did not move on the plant
    /// (an input's plant value is physics, free to drift; that an agent cannot write it is RL-8's answer);
    /// if it does, the output holds the value asked for (or the one `expect.plant` names).
    /// `isOutput` is the target's role in the site, nil when the site has no such point.
    public func plantFailures(target: String, isOutput: Bool?, before: Double?, after: Double?) -> [String] {
        if expect["outcome"]?.stringValue != "executed" {
            if isOutput != false, before != after {
                return ["\(id): \(target) changed on the plant from \(String(describing: before)) to \(String(describing: after))"]
            }
        } else if let v = expectedPlant.first(where: { $0.0 == target })?.1 ?? params["value"]?.numberValue, !Self.same(after, v) {
            return ["\(id): \(target) is \(String(describing: after)) on the plant, expected \(fmt(v))"]
        }
        return []
    }

    /// Every decision is in the audit log, with the agent's reason verbatim and inert.
    public func auditFailures(requestId: String, decision rec: JSON?) -> [String] {
        guard let rec else { return ["\(id): decision \(requestId) missing from the audit log"] }
        if let reason = params["reason"]?.stringValue, rec["reason"]?.stringValue != reason {
            return ["\(id): reason not audited verbatim"]
        }
        return []
    }

    /// The plant three scans after the answer: the daemon's own effects have acted (`expect.plant`).
    public func effectFailures(plant value: (String) -> Double?) -> [String] {
        expectedPlant.compactMap { name, v in
            Self.same(value(name), v) ? nil : "\(id): \(name) is \(String(describing: value(name))) on the plant, expected \(fmt(v))"
        }
    }
}
