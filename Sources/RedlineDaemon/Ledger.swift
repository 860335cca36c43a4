import RedlineCore
import RedlineSync

/// The daemon's bookkeeping, in one place: request ids, held and finished requests,
/// quarantine, readiness, per-agent work in progress and the counters `status` shows.
/// Every change is a short critical section; nothing here does I/O or waits.
final class Ledger: Sendable {
    struct Counters: Sendable {
        /// Agent writes decided (each request once, whatever its outcome; an approval is not a new write).
        var writes = 0
        var executed = 0
        var held = 0
        var failed = 0
        var denied: [String: Int] = [:]
        /// Agent writes whose guard withheld them at the bus (decided again on fresher readings).
        var withheld = 0
        /// Requests refused because the agent's share of work was full.
        var busy = 0
        /// Held requests whose time ran out or that an alarm (E-2) ended.
        var expired = 0
        var reads = 0
        var badLines = 0
        var scans = 0
        var effectWrites = 0
        /// Decisions by (outcome, rule, agent): every count above that is a decision (executed,
        /// held, failed, denied by rule, withheld, busy, expired) is also counted here, in the same
        /// critical section, by `count`; `redline_decisions_total` is rendered from this.
        var decisions: [DecisionKey: Int] = [:]
        /// The metrics textfile (`--metrics-textfile`): files written, and writes that failed.
        var metricsWrites = 0
        var metricsWriteFailures = 0

        /// Counts one decision, in `decisions` and in its outcome's counter. `rule` is the red
        /// line or policy rule of a denial ("" when there is none).
        mutating func count(_ outcome: DecisionOutcome, rule: String = "", agent: String) {
            switch outcome {
            case .executed: executed += 1
            case .held: held += 1
            case .failed: failed += 1
            case .denied: denied[rule, default: 0] += 1
            case .withheld: withheld += 1
            case .busy: busy += 1
            case .expired: expired += 1
            }
            decisions[DecisionKey(outcome: outcome.rawValue, rule: rule, agent: agent), default: 0] += 1
        }
    }

    /// What a decision ended in, as `status` and the metrics name it.
    enum DecisionOutcome: String, Sendable, CaseIterable {
        case executed, held, failed, denied, withheld, busy, expired
    }

    struct DecisionKey: Sendable, Hashable, Comparable {
        var outcome: String
        var rule: String
        var agent: String
        static func < (a: Self, b: Self) -> Bool { (a.outcome, a.rule, a.agent) < (b.outcome, b.rule, b.agent) }
    }

    struct State: Sendable {
        var ready = false
        var quarantine: QuarantineBook
        var approvals = ApprovalBook()
        var nextRequest: UInt64 = 1
        var counters = Counters()
        var lastScanAt: Int64?
        var startedAt: Int64
        /// Agent writes in progress (deciding, queued or executing), by agent.
        var inFlight: [String: Int] = [:]
        /// The oldest condition reading each executed write was decided on, at actuation (ms), most recent last.
        var actuationAges: [Int64] = []
        /// The last metrics textfile written: how long its status, render, write and rename took (s), and its size.
        var metricsLastWrite: (seconds: Double, bytes: Int)?
    }

    let state: Lock<State>
    private let bootTag: String

    init(site: Site, now: Int64, bootSalt: UInt64) {
        bootTag = String(UInt64(truncatingIfNeeded: now &+ Int64(truncatingIfNeeded: bootSalt) &* 7919) & 0xFFFF, radix: 16)
        state = Lock(State(quarantine: QuarantineBook(policy: site.quarantine), startedAt: now))
    }

    func newRequestId() -> String {
        let n = state.withLock { s in
            defer { s.nextRequest += 1 }
            return s.nextRequest
        }
        return "r-\(bootTag)-\(n)"
    }

    var isReady: Bool { state.withLock { $0.ready } }

    /// Takes one unit of `agent`'s share of work; false (and counted) if it is full.
    func admit(agent: String, limit: Int) -> Bool {
        state.withLock { s in
            let n = s.inFlight[agent, default: 0]
            guard n < limit else { s.counters.count(.busy, agent: agent); return false }
            s.inFlight[agent] = n + 1
            return true
        }
    }

    func finished(agent: String) {
        state.withLock { s in
            let n = s.inFlight[agent, default: 1] - 1
            s.inFlight[agent] = n > 0 ? n : nil
        }
    }

    /// Keeps the age of the readings an executed write was decided on (bounded sample).
    func recordActuationAge(_ ms: Int64) {
        state.withLock { s in
            s.actuationAges.append(ms)
            if s.actuationAges.count > 4096 { s.actuationAges.removeFirst(s.actuationAges.count - 4096) }
        }
    }

    /// Held requests whose time ran out, however this is first noticed: each is returned once.
    func expireDue(now: Int64) -> [HeldRequest] { expireDue(now: now) { _ in () }.expired }

    /// The same, then `body` in the same critical section at the same `now`: an operator's
    /// approve or deny first expires what is due, so a request whose time ran out is never
    /// decided by them, and its expiry is returned (to be audited) like any other.
    func expireDue<T: Sendable>(now: Int64, then body: (inout State) -> T) -> (expired: [HeldRequest], then: T) {
        state.withLock { s in
            let due = s.approvals.expire(now: now)
            for r in due { s.counters.count(.expired, agent: r.agent) }
            return (due, body(&s))
        }
    }

    /// E-2: every held request for one of `points` expires (its zone went into alarm); counted.
    func expire(points: Set<String>, because why: String, now: Int64) -> [HeldRequest] {
        state.withLock { s in
            let due = s.approvals.expire(points: points, because: why, now: now)
            for r in due { s.counters.count(.expired, agent: r.agent) }
            return due
        }
    }
}
