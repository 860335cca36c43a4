import Logging
import RedlineCore
import RedlineIO
import RedlineSync

/// Runs the pure effects machine (RedlineCore `EffectsMachine`) on every scan update
/// and carries out what it returns: safe-state writes at `.safety` priority, E-2
/// expiries in memory, and audit records queued without waiting.
///
/// Nothing here waits for agent work, and the scan loop never waits for anything here:
/// `update` decides synchronously (microseconds), hands the writes to the bus threads,
/// where they go before any queued agent job, and returns. All outputs of a step are
/// submitted at once (buses in parallel), so several locks of a zone are released together.
final class EffectsRunner: Sendable {
    let machine: EffectsMachine
    private let plant: any PlantAccess
    private let audit: AuditLog
    private let ledger: Ledger
    private let logger: Logger
    private let clock: @Sendable () -> Int64
    /// Where the safe-state writes' tasks run (the safety thread, in the daemon).
    private let executor: (any TaskExecutor)?
    private let state = Lock(Inner())

    private struct Inner {
        var effects = EffectState()
        /// Safe-state writes on their way ("point=value"): not submitted again until done.
        var inFlight: Set<String> = []
        /// Effect writes that failed last time (logged and audited once per change).
        var failures: Set<String> = []
        /// Writes submitted whose outcome is not yet counted, logged and audited.
        var unfinished = 0
    }

    init(site: Site, plant: any PlantAccess, audit: AuditLog, ledger: Ledger, logger: Logger, clock: @escaping @Sendable () -> Int64,
         executor: (any TaskExecutor)? = nil) {
        self.executor = executor
        machine = EffectsMachine(site: site)
        self.plant = plant
        self.audit = audit
        self.ledger = ledger
        self.logger = logger
        self.clock = clock
    }

    /// Safe-state writes submitted whose outcome is not yet counted, logged and audited.
    var writesInFlight: Int { state.withLock { $0.unfinished } }

    /// The effects' state now (for status and RL-11).
    var current: EffectState { state.withLock { $0.effects } }

    /// The drives in force, for the policy's RL-11.
    var driven: [String: Drive] { state.withLock { $0.effects.driven } }

    /// The drive on one output, if any: checked on the bus thread just before an agent write goes out.
    func drive(of point: String) -> Drive? { state.withLock { $0.effects.driven[point] } }

    /// An agent's write executed: E-4 remembers a reduction of life support.
    func agentWrote(_ point: Point, value: Double, before: Double?, at: Int64) {
        state.withLock { EffectsMachine.agentWrote(point, value: value, before: before, at: at, into: &$0.effects) }
    }

    /// One step on a new snapshot. `fullScan` re-asserts every drive; a partial update
    /// (one bus's part of a scan) writes only drives that are new.
    func update(_ snap: PlantSnapshot, fullScan: Bool) {
        let now = clock()
        let (step, toWrite) = state.withLock { s -> (EffectStep, [Drive]) in
            let step = machine.step(snapshot: snap, previous: s.effects, now: now)
            s.effects = step.state
            let targets = fullScan ? step.drives : step.newDrives
            let go = targets.filter { s.inFlight.insert("\($0.point)=\($0.value)").inserted }
            s.unfinished += go.count
            return (step, go)
        }
        if !toWrite.isEmpty {
            Task(executorPreference: executor, priority: .high) {
                await withTaskGroup(of: Void.self) { group in
                    for d in toWrite { group.addTask { await self.enforce(d) } }
                }
            }
        }
        record(step.events)
    }

    /// Drives an output to its safe-state value. No policy: this is the daemon's own action.
    private func enforce(_ d: Drive) async {
        defer { state.withLock { $0.unfinished -= 1 } }
        let r = await plant.write(d.point, value: d.value, priority: .safety, guard: nil)
        let key = "\(d.effect.rawValue) \(d.point)"
        let (recovered, firstFailure) = state.withLock { s -> (Bool, Bool) in
            s.inFlight.remove("\(d.point)=\(d.value)")
            switch r {
            case .success: return (s.failures.remove(key) != nil, false)
            case .failure: return (false, s.failures.insert(key).inserted)
            }
        }
        switch r {
        case .success:
            ledger.state.withLock { $0.counters.effectWrites += 1 }
            if recovered { logger.notice("safe-state write recovered", metadata: ["point": "\(d.point)"]) }
        case .failure(let err):
            if firstFailure {
                logger.critical("safe-state write failed", metadata: ["effect": "\(d.effect.rawValue)", "point": "\(d.point)", "error": "\(err)"])
                audit.submit(kind: "effect-failed", [("effect", .string(d.effect.rawValue)), ("point", .string(d.point)),
                                                     ("value", .number(d.value)), ("error", .string(err.description))])
            }
        }
    }

    /// Audits (and, for E-2, acts on) the step's events. Queued, never awaited.
    private func record(_ events: [EffectEvent]) {
        for e in events {
            switch e {
            case .engaged(let key, let why):
                logger.warning("safe-state effect engaged", metadata: ["effect": "\(key)", "why": "\(why)"])
                audit.submit(kind: "effect", [("effect", .string(key.effect.rawValue)), ("zone", .string(key.zone)),
                                              ("state", "engaged"), ("why", .string(why))])
            case .ended(let key, let why):
                logger.notice("safe-state effect ended", metadata: ["effect": "\(key)"])
                audit.submit(kind: "effect", [("effect", .string(key.effect.rawValue)), ("zone", .string(key.zone)),
                                              ("state", "ended"), ("why", .string(why))])
            case .expireHeld(let zone, let points, let why):
                let now = clock()
                let expired = ledger.expire(points: Set(points), because: "expired: \(why)", now: now)
                if !expired.isEmpty {
                    logger.warning("held approvals expired: zone in alarm", metadata: ["zone": "\(zone)", "count": "\(expired.count)"])
                }
                audit.submit(kind: "effect", [("effect", "E-2"), ("zone", .string(zone)), ("why", .string(why)),
                                              ("expired", .array(expired.map { .string($0.id) }))])
            case .reductionForgotten(let point, let why):
                audit.submit(kind: "effect", [("effect", "E-4"), ("point", .string(point)), ("state", "forgotten"), ("why", .string(why))])
            }
        }
    }
}
