import Logging
import RedlineCore
import RedlineIO
import RedlineSync

/// Runs the pure effects machine (RedlineCore `EffectsMachine`) on every scan update
/// and carries out what it returns: safe-state writes at `.safety` priority, E-2
/// expiries in memory, and audit records queued without waiting.
///
/// On a BACnet output an effect writes in the agents' slot (the site's `write-priority`, as
/// every write of the daemon is): it undoes what agents commanded and never outranks a person
/// or a life-safety system at 1-8. A write such a priority overrides is never counted as done:
/// it is logged, audited (`effect-overridden`, with the priority and the value in effect) and
/// told to operators once per change, and re-asserted every full scan like any drive, so the
/// safe value takes effect the moment the higher priority is relinquished.
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
        /// How the last write of each drive ("E-1 point") went, while it is driven; absent is
        /// done. Logged and audited once per change, never once per scan.
        var outcomes: [String: WriteOutcome] = [:]
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

    /// The drives whose last write did not take effect (overridden or failed), for `status`:
    /// what an operator must see while it lasts, not only when it began.
    var troubled: JSON {
        let (outcomes, driven) = state.withLock { ($0.outcomes, $0.effects.driven) }
        let rows: [JSON] = driven.values.sorted { ($0.effect, $0.point) < ($1.effect, $1.point) }.compactMap { d in
            guard let o = outcomes[Self.key(d)] else { return nil }
            var f: [(String, JSON)] = [("effect", .string(d.effect.rawValue)), ("point", .string(d.point)), ("value", .number(d.value))]
            switch o {
            case .done: return nil
            case .overridden(let p, let inEffect):
                f += [("state", "overridden"), ("priority", .number(Double(p))), ("inEffect", inEffect.map { .number($0) } ?? .null)]
            case .failed:
                f.append(("state", "failed"))
            }
            return .object(f)
        }
        return .array(rows)
    }

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
            // A drive that ended starts afresh if it comes back: its next trouble is told again.
            let driven = Set(step.drives.map(Self.key))
            s.outcomes = s.outcomes.filter { driven.contains($0.key) }
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

    /// How a safe-state write went: done, overridden by a higher BACnet priority, or failed.
    enum WriteOutcome: Hashable {
        case done
        case overridden(priority: Int, inEffect: Double?)
        case failed

        init(_ r: Result<Double, DeviceError>) {
            switch r {
            case .success: self = .done
            case .failure(.overridden(let p, let e)): self = .overridden(priority: p, inEffect: e)
            case .failure: self = .failed
            }
        }
    }

    private static func key(_ d: Drive) -> String { "\(d.effect.rawValue) \(d.point)" }

    /// Drives an output to its safe-state value. No policy: this is the daemon's own action.
    private func enforce(_ d: Drive) async {
        defer { state.withLock { $0.unfinished -= 1 } }
        let r = await plant.write(d.point, value: d.value, priority: .safety, guard: nil)
        let outcome = WriteOutcome(r)
        let before = state.withLock { s -> WriteOutcome in
            s.inFlight.remove("\(d.point)=\(d.value)")
            let before = s.outcomes[Self.key(d)] ?? .done
            // Kept only while the drive is in force (a late answer to an ended drive is not kept).
            if s.effects.driven[d.point] == d { s.outcomes[Self.key(d)] = outcome == .done ? nil : outcome }
            return before
        }
        if case .success = r { ledger.state.withLock { $0.counters.effectWrites += 1 } }
        // In the agents' slot either way (a BACnet override leaves the value written there).
        var landed = false
        switch r {
        case .success, .failure(.overridden): landed = true
        default: break
        }
        if landed, let p = machine.site.point(d.point),
           let forgotten = state.withLock({ EffectsMachine.effectLanded(d, point: p, into: &$0.effects) }) {
            record([forgotten])
        }
        guard outcome != before else { return }
        let what: [(String, JSON)] = [("effect", .string(d.effect.rawValue)), ("point", .string(d.point)), ("value", .number(d.value))]
        switch r {
        case .success:
            logger.notice("safe-state write in effect again", metadata: ["effect": "\(d.effect.rawValue)", "point": "\(d.point)"])
            audit.submit(kind: "effect-recovered", what + [("after", .string(before == .failed ? "failed" : "overridden"))])
        case .failure(.overridden(let p, let inEffect)):
            logger.critical("safe-state write overridden by a higher priority; re-asserted every scan",
                            metadata: ["effect": "\(d.effect.rawValue)", "point": "\(d.point)", "priority": "\(p)",
                                       "inEffect": "\(inEffect.map(fmt) ?? "unknown")"])
            let slot = machine.site.bacnet.map { JSON.number(Double($0.writePriority.level)) } ?? .null
            audit.submit(kind: "effect-overridden", what + [("writePriority", slot), ("priority", .number(Double(p))),
                                                             ("inEffect", inEffect.map { .number($0) } ?? .null)])
        case .failure(let err):
            logger.critical("safe-state write failed", metadata: ["effect": "\(d.effect.rawValue)", "point": "\(d.point)", "error": "\(err)"])
            audit.submit(kind: "effect-failed", what + [("error", .string(err.description))])
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
