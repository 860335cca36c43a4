/// Outcome of a request, as reported to agents (DESIGN §7).
public enum Outcome: String, Sendable, Hashable, Codable {
    case executed, held, denied, failed, expired
}

/// A request held for an operator, bound to (agent, point, value).
public struct HeldRequest: Sendable, Hashable {
    public let id: String
    public let agent: String
    public let point: String
    public let value: Double
    public let createdAt: Int64
    public let expiresAt: Int64
    public var outcome: Outcome
    public var rule: Rule?
    public var explanation: String

    public var command: WriteCommand { WriteCommand(agent: agent, point: point, value: value) }
}

public enum ApprovalError: Error, Sendable, Hashable, CustomStringConvertible {
    case unknownRequest(String)
    case notPending(String, Outcome)

    public var description: String {
        switch self {
        case .unknownRequest(let id): return "no request \(id)"
        case .notPending(let id, let o): return "request \(id) is \(o.rawValue), not held"
        }
    }
}

/// The approval state machine (DESIGN §4, §5 E-2) as a value driven by an explicit clock.
///
/// held -> (approve) -> re-decided by the caller -> executed | denied | failed
/// held -> (deny) -> denied;  held -> (timeout or zone alarm) -> expired.
/// An approval never skips a red line: `approve` only hands the request back
/// to be decided again on fresh readings.
public struct ApprovalBook: Sendable, Hashable {
    public private(set) var requests: [String: HeldRequest] = [:]
    private var order: [String] = []
    /// Finished requests kept for `requests.get`; oldest dropped beyond this.
    public let retain: Int

    public init(retain: Int = 10_000) { self.retain = retain }

    public mutating func hold(id: String, command: WriteCommand, now: Int64, timeoutMs: Int64, explanation: String) {
        let r = HeldRequest(id: id, agent: command.agent, point: command.point, value: command.value,
                            createdAt: now, expiresAt: Self.deadline(now, timeoutMs), outcome: .held, rule: nil, explanation: explanation)
        requests[id] = r
        order.append(id)
        trim()
    }

    /// Records a request decided at once, so `requests.get` can answer for it.
    public mutating func record(id: String, command: WriteCommand, now: Int64, outcome: Outcome, rule: Rule?, explanation: String) {
        requests[id] = HeldRequest(id: id, agent: command.agent, point: command.point, value: command.value,
                                   createdAt: now, expiresAt: now, outcome: outcome, rule: rule, explanation: explanation)
        order.append(id)
        trim()
    }

    public var pending: [HeldRequest] {
        order.compactMap { requests[$0] }.filter { $0.outcome == .held }
    }

    /// Expires held requests whose time is up. Returns them.
    public mutating func expire(now: Int64) -> [HeldRequest] {
        var out: [HeldRequest] = []
        for r in pending where now >= r.expiresAt {
            requests[r.id]?.outcome = .expired
            requests[r.id]?.explanation = "no operator decided within the timeout"
            out.append(requests[r.id]!)
        }
        return out
    }

    /// E-2: every held request for one of `points` expires (its zone went into alarm).
    public mutating func expire(points: Set<String>, because why: String) -> [HeldRequest] {
        var out: [HeldRequest] = []
        for r in pending where points.contains(r.point) {
            requests[r.id]?.outcome = .expired
            requests[r.id]?.explanation = why
            out.append(requests[r.id]!)
        }
        return out
    }

    /// An operator approves: returns the request to re-decide; it stays held until `finish`.
    public mutating func approve(id: String, now: Int64) -> Result<HeldRequest, ApprovalError> {
        guard let r = requests[id] else { return .failure(.unknownRequest(id)) }
        if r.outcome == .held && now >= r.expiresAt {
            requests[id]?.outcome = .expired
            requests[id]?.explanation = "no operator decided within the timeout"
        }
        guard let cur = requests[id], cur.outcome == .held else { return .failure(.notPending(id, requests[id]!.outcome)) }
        return .success(cur)
    }

    public mutating func deny(id: String, reason: String?) -> Result<HeldRequest, ApprovalError> {
        guard let r = requests[id] else { return .failure(.unknownRequest(id)) }
        guard r.outcome == .held else { return .failure(.notPending(id, r.outcome)) }
        requests[id]?.outcome = .denied
        requests[id]?.explanation = "denied by an operator" + (reason.map { ": \($0)" } ?? "")
        return .success(requests[id]!)
    }

    /// Final outcome of an approved request after it was decided again and run.
    public mutating func finish(id: String, outcome: Outcome, rule: Rule?, explanation: String) {
        requests[id]?.outcome = outcome
        requests[id]?.rule = rule
        requests[id]?.explanation = explanation
    }

    /// `now + timeoutMs`, saturating instead of trapping on absurd timeouts.
    static func deadline(_ now: Int64, _ timeoutMs: Int64) -> Int64 {
        let (t, overflow) = now.addingReportingOverflow(Swift.max(0, timeoutMs))
        return overflow ? Int64.max : t
    }

    private mutating func trim() {
        while order.count > retain, let first = order.first {
            if requests[first]?.outcome == .held { break }
            order.removeFirst()
            requests[first] = nil
        }
    }
}
