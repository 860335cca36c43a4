/// Outcome of a request, as reported to agents (docs/DESIGN.md §7).
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

    /// A release (`points.release`) rather than a write; `value` is then what it would put in effect.
    public var release: Bool = false

    public var command: WriteCommand { WriteCommand(agent: agent, point: point, value: value, release: release) }
}

public enum ApprovalError: Error, Sendable, Hashable, CustomStringConvertible {
    case unknownRequest(String)
    case notPending(String, Outcome)
    /// A deny that came after the approval began executing.
    case tooLate(String)

    public var description: String {
        switch self {
        case .unknownRequest(let id): return "no request \(id)"
        case .notPending(let id, let o): return "request \(id) is \(o.rawValue), not held"
        case .tooLate(let id): return "too late: request \(id) was approved and is executing; its outcome is final"
        }
    }
}

/// The approval state machine (docs/DESIGN.md §6) as a value driven by an explicit clock.
///
/// held -> (approve) -> executing -> re-decided by the caller -> executed | denied | failed
/// held -> (deny) -> denied;  held -> (timeout or zone alarm) -> expired.
/// An approval never skips a red line: `approve` only hands the request back
/// to be decided again on fresh readings. Approve and deny are atomic against each
/// other: once an approval is executing a deny is refused as too late, and once a
/// deny is recorded no approval can start.
///
/// Held requests are kept apart from the history of finished ones, which is bounded
/// in count (`retain`) and age (`maxAgeMs`) and trimmed in O(1) amortized time: one
/// request held for an hour never stops the history from being trimmed.
public struct ApprovalBook: Sendable, Hashable {
    private var held: [String: HeldRequest] = [:]
    private var heldOrder: [String] = []
    /// Ids of held requests whose approval is executing.
    private var executing: Set<String> = []
    private var history: [String: HeldRequest] = [:]
    private var historyOrder: [String] = []
    private var historyHead = 0
    /// Finished requests kept for `requests.get`; the oldest are dropped beyond this.
    public let retain: Int
    /// Finished requests older than this are dropped too.
    public let maxAgeMs: Int64

    public init(retain: Int = 10_000, maxAgeMs: Int64 = 3_600_000) {
        self.retain = Swift.max(1, retain)
        self.maxAgeMs = maxAgeMs
    }

    /// Looks a request up by id, held or finished.
    public struct Lookup: Sendable {
        let book: ApprovalBook
        public subscript(id: String) -> HeldRequest? { book.held[id] ?? book.history[id] }
    }
    public var requests: Lookup { Lookup(book: self) }

    /// Finished requests kept now (bounded).
    public var historyCount: Int { history.count }

    public mutating func hold(id: String, command: WriteCommand, now: Int64, timeoutMs: Int64, explanation: String) {
        held[id] = HeldRequest(id: id, agent: command.agent, point: command.point, value: command.value,
                               createdAt: now, expiresAt: Self.deadline(now, timeoutMs), outcome: .held, rule: nil, explanation: explanation,
                               release: command.release)
        heldOrder.append(id)
    }

    /// Records a request decided at once, so `requests.get` can answer for it.
    public mutating func record(id: String, command: WriteCommand, now: Int64, outcome: Outcome, rule: Rule?, explanation: String) {
        archive(HeldRequest(id: id, agent: command.agent, point: command.point, value: command.value,
                            createdAt: now, expiresAt: now, outcome: outcome, rule: rule, explanation: explanation,
                            release: command.release), now: now)
    }

    public var pending: [HeldRequest] { heldOrder.compactMap { held[$0] } }

    /// Expires held requests whose time is up (not those whose approval is executing). Returns them.
    public mutating func expire(now: Int64) -> [HeldRequest] {
        let due = pending.filter { now >= $0.expiresAt && !executing.contains($0.id) }
        return due.map { end($0.id, .expired, nil, "no operator decided within the timeout", now: now)! }
    }

    /// E-2: every held request for one of `points` expires (its zone went into alarm).
    /// An approval already executing is left to its re-decision, which sees the alarm.
    public mutating func expire(points: Set<String>, because why: String, now: Int64 = 0) -> [HeldRequest] {
        let due = pending.filter { points.contains($0.point) && !executing.contains($0.id) }
        return due.map { end($0.id, .expired, nil, why, now: now)! }
    }

    /// An operator approves: returns the request to re-decide; it is executing until `finish`.
    public mutating func approve(id: String, now: Int64) -> Result<HeldRequest, ApprovalError> {
        if let r = held[id], !executing.contains(id), now >= r.expiresAt {
            _ = end(id, .expired, nil, "no operator decided within the timeout", now: now)
        }
        guard let cur = held[id] else {
            if let h = history[id] { return .failure(.notPending(id, h.outcome)) }
            return .failure(.unknownRequest(id))
        }
        guard !executing.contains(id) else { return .failure(.tooLate(id)) }
        executing.insert(id)
        return .success(cur)
    }

    public mutating func deny(id: String, reason: String?, now: Int64 = 0) -> Result<HeldRequest, ApprovalError> {
        guard held[id] != nil else {
            if let h = history[id] { return .failure(.notPending(id, h.outcome)) }
            return .failure(.unknownRequest(id))
        }
        guard !executing.contains(id) else { return .failure(.tooLate(id)) }
        return .success(end(id, .denied, nil, "denied by an operator" + (reason.map { ": \($0)" } ?? ""), now: now)!)
    }

    /// Final outcome of an approved request after it was decided again and run.
    public mutating func finish(id: String, outcome: Outcome, rule: Rule?, explanation: String, now: Int64 = 0) {
        _ = end(id, outcome, rule, explanation, now: now)
    }

    /// Moves a held request to the history with its outcome.
    private mutating func end(_ id: String, _ outcome: Outcome, _ rule: Rule?, _ why: String, now: Int64) -> HeldRequest? {
        guard var r = held.removeValue(forKey: id) else { return nil }
        executing.remove(id)
        if let i = heldOrder.firstIndex(of: id) { heldOrder.remove(at: i) }
        r.outcome = outcome
        r.rule = rule
        r.explanation = why
        archive(r, now: now)
        return r
    }

    private mutating func archive(_ r: HeldRequest, now: Int64) {
        if history.updateValue(r, forKey: r.id) == nil { historyOrder.append(r.id) }
        // O(1) amortized: drop from the head while over count or age; compact the order array rarely.
        while historyOrder.count - historyHead > retain
                || (historyHead < historyOrder.count && (history[historyOrder[historyHead]].map { now - $0.createdAt > maxAgeMs } ?? true)) {
            history[historyOrder[historyHead]] = nil
            historyHead += 1
        }
        if historyHead > 1024, historyHead * 2 > historyOrder.count {
            historyOrder.removeFirst(historyHead)
            historyHead = 0
        }
    }

    /// `now + timeoutMs`, saturating instead of trapping on absurd timeouts.
    static func deadline(_ now: Int64, _ timeoutMs: Int64) -> Int64 {
        let (t, overflow) = now.addingReportingOverflow(Swift.max(0, timeoutMs))
        return overflow ? Int64.max : t
    }
}
