import Logging
import RedlineCore
import RedlineIO
import RedlineSync

/// How much of the daemon's work one agent may cause (docs/DESIGN.md §7).
public struct AgentLimits: Sendable {
    /// Writes in progress per agent (deciding, queued in the lane or executing).
    public var inFlightPerAgent = 8
    /// Requests an agent may have waiting for an operator.
    public var heldPerAgent = 100
    /// Fresh re-decisions of one write whose guard withheld it before it counts as failed.
    public var maxAttempts = 5
    public init(inFlightPerAgent: Int = 8, heldPerAgent: Int = 100, maxAttempts: Int = 5) {
        self.inFlightPerAgent = max(1, inFlightPerAgent)
        self.heldPerAgent = max(1, heldPerAgent)
        self.maxAttempts = max(1, maxAttempts)
    }
}

/// The arbiter: every agent write and every approved write.
///
/// 1. Admission: the agent's share of work (`AgentLimits`), else an immediate -32007.
/// 2. What can be decided without the plant is decided without it: a write that every
///    zone condition would deny (no grant, quarantine, not ready, RL-1/2/4/7/8, range)
///    is decided on the latest snapshot, audited and answered, with no device I/O and
///    without entering the lane.
/// 3. The rest runs in the fair lane, one at a time: fresh re-read of the zone's
///    condition inputs (at agent priority), decide with the pure policy (RL-11 sees the
///    effects' drives), audit the decision durably, then write. The write carries a guard
///    that runs on the bus thread just before it goes on the wire: if the readings it
///    was decided on are older than one scan interval, or an effect now drives the output,
///    it is withheld and decided again on fresh readings.
final class Arbiter: Sendable {
    let site: Site
    private let plant: any PlantAccess
    private let audit: AuditLog
    private let ledger: Ledger
    private let effects: EffectsRunner
    private let logger: Logger
    private let clock: @Sendable () -> Int64
    private let limits: AgentLimits
    private let lane: FairLane

    init(site: Site, plant: any PlantAccess, audit: AuditLog, ledger: Ledger, effects: EffectsRunner,
         logger: Logger, clock: @escaping @Sendable () -> Int64, limits: AgentLimits, executor: (any TaskExecutor)? = nil) {
        lane = FairLane(executor: executor)
        self.site = site
        self.plant = plant
        self.audit = audit
        self.ledger = ledger
        self.effects = effects
        self.logger = logger
        self.clock = clock
        self.limits = limits
    }

    // MARK: - Agent writes

    func write(agent: Agent, peer: Peer, point id: String, value: Double, freeText: [(String, JSON)]) async throws(RPCError) -> WriteAnswer {
        let (point, rid) = try admit(agent: agent, peer: peer, point: id, asked: ("value", .number(value)), freeText: freeText)
        defer { ledger.finished(agent: agent.name) }
        // What is decided is what will be written: the value quantized through the point's encoding.
        let asked = WriteCommand(agent: agent.name, point: point.id, value: value)
        let (cmd, representable) = Policy.quantize(asked, site: site)
        let requested: Double? = cmd.value != value || !representable ? value : nil

        // Decided without the plant when no reading could change the outcome: no I/O, no lane.
        let pre = policyState(snapshot: plant.snapshot)
        if !representable {
            let (_, d) = Policy.decideQuantized(asked, in: pre)
            return await conclude(rid, cmd, d, freeText: freeText, peer: peer, approvedBy: nil, requested: requested)
        }
        if Policy.deniedWhateverThePlant(cmd, in: pre) {
            return await conclude(rid, cmd, Policy.decide(cmd, in: pre), freeText: freeText, peer: peer, approvedBy: nil, requested: requested)
        }
        return await lane.run(agent: agent.name) {
            await self.decideAndExecute(rid, cmd, freeText: freeText, peer: peer, approvedBy: nil, requested: requested)
        }
    }

    /// `points.release`: the agents' command of a BACnet output released (NULL at the site's
    /// agent priority, and only there), decided on the value that will then take effect, read
    /// from the device (`Policy.decideBACnet`). The same path as a write: admission, the lane,
    /// a fresh re-read, the decision audited first, a guard on the bus thread (which also
    /// withholds the release when the value below has changed since it was decided), read-back.
    func release(agent: Agent, peer: Peer, point id: String, freeText: [(String, JSON)]) async throws(RPCError) -> WriteAnswer {
        let (point, rid) = try admit(agent: agent, peer: peer, point: id, asked: ("release", .bool(true)), freeText: freeText)
        defer { ledger.finished(agent: agent.name) }
        let cmd = WriteCommand(agent: agent.name, point: point.id, value: .nan, release: true)
        // A point with no BACnet priority of the agents' (a register, a line) is decided
        // without the plant: there is nothing to release, whatever it reads.
        guard case .bacnet = point.binding, site.bacnet != nil else {
            let d = Policy.decideBACnet(agent: agent.name, point: point.id, request: .relinquish, commandable: nil,
                                        in: policyState(snapshot: plant.snapshot))
            return await conclude(rid, d.command, d.decision, freeText: freeText, peer: peer, approvedBy: nil)
        }
        return await lane.run(agent: agent.name) {
            await self.decideAndExecute(rid, cmd, freeText: freeText, peer: peer, approvedBy: nil)
        }
    }

    /// Admission of an agent's command: the point must be visible to it (else audited as
    /// rejected, and answered as unknown, identical for a missing point), and its share of the
    /// daemon's work (`AgentLimits`) not used up. Returns the point and a new request id; the
    /// caller must call `ledger.finished(agent:)` when done.
    private func admit(agent: Agent, peer: Peer, point id: String, asked: (String, JSON), freeText: [(String, JSON)]) throws(RPCError) -> (Point, String) {
        guard let point = site.point(id), agent.canSee(point.id) else {
            audit.submit(kind: "rejected", [("agent", .string(agent.name)), ("uid", .number(Double(peer.uid))),
                                            ("point", .string(id)), asked,
                                            ("text", FreeText.stored(freeText)), ("error", "unknown point")])
            throw RPCError(.unknownPoint, "unknown point \"\(id)\"")
        }
        guard ledger.admit(agent: agent.name, limit: limits.inFlightPerAgent) else {
            throw RPCError(.busy, "\(agent.name) already has \(limits.inFlightPerAgent) writes in progress; wait for their answers before sending more")
        }
        let pendingHeld = ledger.state.withLock { s in s.approvals.pending.reduce(0) { $0 + ($1.agent == agent.name ? 1 : 0) } }
        if pendingHeld >= limits.heldPerAgent {
            ledger.state.withLock { $0.counters.count(.busy, agent: agent.name) }
            ledger.finished(agent: agent.name)
            throw RPCError(.busy, "\(agent.name) has \(pendingHeld) requests waiting for an operator (limit \(limits.heldPerAgent)); wait for them to be decided")
        }
        return (point, ledger.newRequestId())
    }

    /// A `points.write` or `points.release` whose parameters were malformed: audited with its
    /// free text (capped), never decided.
    func rejectedWrite(agent: Agent, peer: Peer, method: String, params: JSON?, error: RPCError) {
        audit.submit(kind: "rejected", [("agent", .string(agent.name)), ("uid", .number(Double(peer.uid))),
                                        ("method", .string(method)), ("text", FreeText.stored([("params", params ?? .null)])),
                                        ("error", .string(error.message))])
    }

    private func policyState(snapshot: PlantSnapshot) -> PolicyState {
        let (ready, quarantined, held) = ledger.state.withLock { ($0.ready, $0.quarantine.names, $0.quarantine.agentsHeld) }
        return PolicyState(site: site, snapshot: snapshot, now: clock(), ready: ready, quarantined: quarantined, driven: effects.driven,
                           agentsHeld: held)
    }

    /// Decides on fresh readings and, if allowed, writes (guarded) and reads back. Runs in the lane only.
    private func decideAndExecute(_ rid: String, _ asked: WriteCommand, freeText: [(String, JSON)], peer: Peer?, approvedBy: Peer?,
                                  requested: Double? = nil) async -> WriteAnswer {
        var cmd = asked
        guard let point = site.point(cmd.point) else {
            return WriteAnswer(requestId: rid, outcome: .denied, rule: .rl8, explanation: "no such point")
        }
        let conditionIDs = site.conditionPointIDs(zone: point.zone)
        var lastWithheld = ""
        for attempt in 1...limits.maxAttempts {
            // The conditioned red lines are decided on a fresh re-read of the zone's condition inputs.
            // Buses answer at different speeds: slow buses are read first and fast ones after, so
            // that all the readings are young when the write goes out.
            let t0 = clock()
            let snap = await plant.refreshAligned(conditionIDs, priority: .agent)
            let tRead = clock()
            let state = policyState(snapshot: snap)
            let decision: Decision
            if cmd.release {
                // A release is decided on what it will put in effect: the command state, read now.
                switch await plant.commandState(point.id, priority: .agent) {
                case .failure(let e):
                    try? await auditOrLog("result", [("requestId", .string(rid)), ("point", .string(point.id)), ("release", .bool(true)),
                                                     ("outcome", "failed"), ("error", .string("command state unreadable: \(e)"))])
                    return failure(rid, cmd, approvedBy, "device error: \(e) (the command state a release is decided on could not be read; nothing was sent)")
                case .success(let c):
                    let d = Policy.decideBACnet(agent: cmd.agent, point: point.id, request: .relinquish, commandable: c, in: state,
                                                approved: approvedBy != nil)
                    cmd = d.command
                    decision = d.decision
                }
            } else {
                decision = Policy.decide(cmd, in: state, approved: approvedBy != nil)
            }
            guard decision == .allowed else {
                return await conclude(rid, cmd, decision, freeText: freeText, peer: peer, approvedBy: approvedBy, requested: requested)
            }
            do {
                try await audit.append(kind: "decision", fields(rid, cmd, freeText, peer, approvedBy, attempt, requested)
                                       + [("outcome", "allowed")])
            } catch {
                return failure(rid, cmd, approvedBy, "audit log unavailable (\(error)); nothing was written")
            }
            let tAudit = clock()
            let before = plant.snapshot.freshValue(of: point, now: clock(), staleAfterMs: site.timing.staleAfterMs)
            let age = AgeBox()
            let sentAt = AgeBox()
            // A safe value (a release, a run command) needs no confirmation: it is always allowed.
            let needsConfirmation = cmd.value != point.role.safeValue
            let decided = cmd
            let result: Result<Double, DeviceError>
            if decided.release {
                result = await plant.release(point.id, priority: .agent, guard: { [self] below in
                    sentAt.set(clock())
                    if (point.quantized(below) ?? below) != decided.value {
                        return "the priorities below the agents' changed: the release would now put \(fmt(below)) in effect, not \(fmt(decided.value))"
                    }
                    return confirm(decided, point: point, conditionIDs: conditionIDs, approved: approvedBy != nil,
                                   checkReadings: needsConfirmation, age: age)
                })
            } else {
                result = await plant.write(point.id, value: decided.value, priority: .agent, guard: { [self] in
                    sentAt.set(clock())
                    return confirm(decided, point: point, conditionIDs: conditionIDs, approved: approvedBy != nil,
                                   checkReadings: needsConfirmation, age: age)
                })
            }
            // The read-back is stamped with when the write went on the wire (on the bus thread), so a
            // scan read that ran just before it never counts as newer.
            let writeStarted = sentAt.value ?? clock()
            var withheldWhy = "-"
            if case .failure(.withheld(let w)) = result { withheldWhy = w }
            logger.debug("write timing", metadata: ["request": "\(rid)", "attempt": "\(attempt)", "readMs": "\(tRead - t0)", "withheld": "\(withheldWhy)",
                                                    "auditMs": "\(tAudit - tRead)", "writeMs": "\(clock() - tAudit)",
                                                    "readingsAgeMs": "\(age.value.map { "\($0)" } ?? "-")"])
            switch result {
            case .failure(.withheld(let why)):
                lastWithheld = why
                ledger.state.withLock { $0.counters.count(.withheld, agent: cmd.agent) }
                audit.submit(kind: "result", [("requestId", .string(rid)), ("point", .string(point.id)),
                                              ("outcome", "withheld"), ("why", .string(why)), ("attempt", .number(Double(attempt)))])
                continue
            case .success(let readBack):
                plant.record(point.id, readBack: readBack, at: writeStarted)
                // What the agent left in place: for a release, the value below its slot (which
                // takes effect when any higher priority lets go), not the Present_Value read.
                effects.agentWrote(point, value: cmd.release ? cmd.value : readBack, before: before, at: writeStarted)
                let why = cmd.release ? released(point, decided: cmd.value, presentValue: readBack)
                                      : "\(point.id) = \(fmt(readBack)) written and read back"
                var resultFields: [(String, JSON)] = [("requestId", .string(rid)), ("point", .string(point.id))]
                    + (cmd.release ? [("release", .bool(true))] : [])
                    + [("outcome", "executed"), ("readBack", .number(readBack))]
                if let a = age.value {
                    resultFields.append(("readingsAgeMs", .number(Double(a))))
                    ledger.recordActuationAge(a)
                }
                // Queued, not awaited: the decision record was durable before the write (what must
                // be), and the result is sealed in order before anything later; waiting for its
                // fsync would only add a second disk flush and two thread hand-offs to every write.
                audit.submit(kind: "result", resultFields)
                ledger.state.withLock { s in
                    s.counters.count(.executed, agent: cmd.agent)
                    if approvedBy == nil { s.counters.writes += 1 }
                    record(&s, rid, cmd, approvedBy, .executed, nil, why)
                }
                logger.info("write executed", metadata: ["request": "\(rid)", "agent": "\(cmd.agent)", "point": "\(point.id)", "value": "\(fmt(readBack))"])
                return WriteAnswer(requestId: rid, outcome: .executed, rule: nil, explanation: why)
            case .failure(let err):
                if case .overridden = err, !cmd.release {
                    // Written, but a higher priority holds the object: the value sits in the
                    // agents' slot and takes effect when that priority lets go. E-4 must know a
                    // reduction it will then have to undo.
                    effects.agentWrote(point, value: cmd.value, before: before, at: writeStarted)
                }
                try? await auditOrLog("result", [("requestId", .string(rid)), ("point", .string(point.id))]
                                      + (cmd.release ? [("release", .bool(true))] : [])
                                      + [("outcome", "failed"), ("error", .string(err.description))])
                return failure(rid, cmd, approvedBy, "device error: \(err)")
            }
        }
        try? await auditOrLog("result", [("requestId", .string(rid)), ("point", .string(point.id)), ("outcome", "failed"),
                                         ("error", .string("withheld \(limits.maxAttempts) times: \(lastWithheld)"))])
        return failure(rid, cmd, approvedBy, "not written: the plant changed faster than the write could be decided (\(lastWithheld))")
    }

    /// What an executed release did, in words: the agents' slot is NULL, and Present_Value reads
    /// what the priorities (a higher one, when a person or a life-safety system holds one) give.
    private func released(_ point: Point, decided: Double, presentValue: Double) -> String {
        let p = site.bacnet.map { " at priority \($0.writePriority)" } ?? ""
        let base = "\(point.id) released (NULL\(p)) and read back: Present_Value \(fmt(presentValue))"
        return presentValue == decided ? base : base + "; a higher priority holds it, and \(fmt(decided)) takes effect when that is relinquished"
    }

    /// The guard of an agent write, run on the bus thread just before the write goes on the
    /// wire: the decision must still hold on the newest readings there are (the fresh re-read
    /// and any scan since), every condition reading must be at most one scan interval old, and
    /// no effect may have taken the output. Returns why not, or nil to send.
    private func confirm(_ cmd: WriteCommand, point: Point, conditionIDs: [String], approved: Bool,
                         checkReadings: Bool, age: AgeBox) -> String? {
        let now = clock()
        if let d = effects.drive(of: point.id), !(d.value == cmd.value) {
            return "\(d.effect.rawValue) now holds \(point.id) at \(fmt(d.value))"
        }
        guard checkReadings else { return nil }
        let latest = plant.snapshot
        let interval = site.timing.scanIntervalMs
        var oldest: Int64 = 0
        for id in conditionIDs {
            guard let at = latest[id]?.at else { return "\(id) has no reading" }
            let (a, overflow) = now.subtractingReportingOverflow(at)
            if overflow || a > interval {
                return "the readings it was decided on are \(overflow ? "too" : "\(a) ms") old (limit: one scan interval, \(interval) ms)"
            }
            oldest = max(oldest, a)
        }
        let (ready, quarantined, held) = ledger.state.withLock { ($0.ready, $0.quarantine.names, $0.quarantine.agentsHeld) }
        let state = PolicyState(site: site, snapshot: latest, now: now, ready: ready, quarantined: quarantined, driven: effects.driven,
                                agentsHeld: held)
        let d = Policy.decide(cmd, in: state, approved: approved)
        guard d == .allowed else {
            return "the plant changed before the write went out (\(d.rule?.rawValue ?? "\(d)"))"
        }
        age.set(oldest)
        return nil
    }

    private func fields(_ rid: String, _ cmd: WriteCommand, _ freeText: [(String, JSON)], _ peer: Peer?, _ approvedBy: Peer?,
                        _ attempt: Int, _ requested: Double? = nil) -> [(String, JSON)] {
        var f: [(String, JSON)] = [
            ("requestId", .string(rid)), ("agent", .string(cmd.agent)),
            ("point", .string(cmd.point)), ("value", .number(cmd.value)),
        ]
        // The value asked for, when the encoding made it another (the decision is on `value`).
        if let requested { f.append(("requested", .number(requested))) }
        // A release: `value` is what it puts in effect, read from the device when decided.
        if cmd.release { f.append(("release", .bool(true))) }
        if let peer { f.append(("uid", .number(Double(peer.uid)))) }
        // Free text goes to the log as sent (each part capped at 4 KiB, with the hash and length
        // of the whole); the decision never saw it (RL-10).
        if let reason = freeText.first(where: { $0.0 == "reason" })?.1 { f.append(("reason", FreeText.capped(reason))) }
        let other = freeText.filter { $0.0 != "reason" }
        if !other.isEmpty { f.append(("otherText", FreeText.stored(other))) }
        if let approvedBy { f.append(("approvedBy", .number(Double(approvedBy.uid)))) }
        if attempt > 1 { f.append(("attempt", .number(Double(attempt)))) }
        return f
    }

    /// Audits and answers a decision that is not an allowed write.
    private func conclude(_ rid: String, _ cmd: WriteCommand, _ decision: Decision, freeText: [(String, JSON)], peer: Peer?,
                          approvedBy: Peer?, requested: Double? = nil) async -> WriteAnswer {
        let base = fields(rid, cmd, freeText, peer, approvedBy, 1, requested)
        let now = clock()
        switch decision {
        case .unknownPoint:
            return WriteAnswer(requestId: rid, outcome: .denied, rule: .notWritable, explanation: "point not visible to \(cmd.agent)")
        case .allowed:
            return failure(rid, cmd, approvedBy, "internal: an allowed write reached conclude")
        case .denied(let rule, let why):
            try? await auditOrLog("decision", base + [("outcome", "denied"), ("rule", .string(rule.rawValue)), ("explanation", .string(why))])
            let (newlyQuarantined, escalated) = ledger.state.withLock { s -> (Bool, QuarantineBook.Escalation?) in
                s.counters.count(.denied, rule: rule.rawValue, agent: cmd.agent)
                if approvedBy == nil { s.counters.writes += 1 }
                record(&s, rid, cmd, approvedBy, .denied, rule, why)
                let was = s.quarantine.agentsHeld
                let q = s.quarantine.record(agent: cmd.agent, rule: rule, at: now)
                return (q, was ? nil : s.quarantine.escalation)
            }
            if newlyQuarantined {
                logger.warning("agent quarantined after repeated red-line denials", metadata: ["agent": "\(cmd.agent)"])
                try? await auditOrLog("quarantine", [("agent", .string(cmd.agent)), ("after", .string(rid)),
                                                     ("threshold", .number(Double(site.quarantine.threshold))),
                                                     ("windowS", .number(Double(site.quarantine.windowMs / 1000)))])
            }
            if let escalated {
                logger.critical("site-wide escalation: agents-held; every agent write but a safe value waits for an operator",
                                metadata: ["why": "\(escalated.why)"])
                try? await auditOrLog("escalation", [("state", "entered"), ("why", .string(escalated.why)), ("after", .string(rid))])
            }
            logger.notice("write denied", metadata: ["request": "\(rid)", "agent": "\(cmd.agent)", "point": "\(cmd.point)",
                                                     "value": "\(fmt(cmd.value))", "rule": "\(rule.rawValue)"])
            return WriteAnswer(requestId: rid, outcome: .denied, rule: rule, explanation: why)
        case .held(let timeout, let why):
            do {
                try await audit.append(kind: "decision", base + [("outcome", "held"), ("explanation", .string(why)),
                                                                 ("timeoutS", .number(Double(timeout / 1000)))])
            } catch {
                return failure(rid, cmd, approvedBy, "audit log unavailable (\(error)); the request was not held")
            }
            ledger.state.withLock { s in
                s.counters.writes += 1
                s.counters.count(.held, agent: cmd.agent)
                s.approvals.hold(id: rid, command: cmd, now: now, timeoutMs: timeout, explanation: why)
            }
            logger.info("write held for an operator", metadata: ["request": "\(rid)", "agent": "\(cmd.agent)", "point": "\(cmd.point)"])
            return WriteAnswer(requestId: rid, outcome: .held, rule: nil, explanation: why)
        }
    }

    private func failure(_ rid: String, _ cmd: WriteCommand, _ approvedBy: Peer?, _ why: String) -> WriteAnswer {
        logger.error("write failed", metadata: ["request": "\(rid)", "point": "\(cmd.point)", "why": "\(why)"])
        ledger.state.withLock { s in
            s.counters.count(.failed, agent: cmd.agent)
            if approvedBy == nil { s.counters.writes += 1 }
            record(&s, rid, cmd, approvedBy, .failed, nil, why)
        }
        return WriteAnswer(requestId: rid, outcome: .failed, rule: nil, explanation: why)
    }

    /// Keeps an outcome for `requests.get`: a new record, or the end of an approved one.
    private func record(_ s: inout Ledger.State, _ rid: String, _ cmd: WriteCommand, _ approvedBy: Peer?,
                        _ outcome: Outcome, _ rule: Rule?, _ why: String) {
        let now = clock()
        if approvedBy != nil {
            s.approvals.finish(id: rid, outcome: outcome, rule: rule, explanation: why, now: now)
        } else {
            s.approvals.record(id: rid, command: cmd, now: now, outcome: outcome, rule: rule, explanation: why)
        }
    }

    private func auditOrLog(_ kind: String, _ fields: [(String, JSON)]) async throws {
        do { try await audit.append(kind: kind, fields) } catch {
            logger.critical("audit write failed", metadata: ["kind": "\(kind)", "error": "\(error)"])
            throw error
        }
    }

    // MARK: - Approvals

    /// Approves a held request: atomically marks it executing (a deny from now on is
    /// "too late"), then decides it again on fresh readings and runs it if allowed.
    func approve(id: String, by peer: Peer) async throws(RPCError) -> WriteAnswer {
        let now = clock()
        let (expired, got) = ledger.expireDue(now: now) { $0.approvals.approve(id: id, now: now) }
        auditExpired(expired)
        let req: HeldRequest
        switch got {
        case .failure(let e):
            throw RPCError(.invalidParams, e.description)
        case .success(let r): req = r
        }
        try? await auditOrLog("approval", [("requestId", .string(id)), ("by", .number(Double(peer.uid))), ("action", "approve")])
        let a = await lane.run(agent: nil) {
            await self.decideAndExecute(id, req.command, freeText: [], peer: nil, approvedBy: peer)
        }
        // Whatever the re-decision said ends the request (a denial or failure too).
        ledger.state.withLock { s in
            if s.approvals.requests[id]?.outcome == .held {
                s.approvals.finish(id: id, outcome: a.outcome, rule: a.rule, explanation: a.explanation, now: self.clock())
            }
        }
        return a
    }

    /// Denies a held request, unless its approval is already executing (then it is too late,
    /// and the answer says so: the outcome the operator sees is always the final one).
    func deny(id: String, reason: String?, by peer: Peer) async throws(RPCError) -> WriteAnswer {
        let now = clock()
        let (expired, r) = ledger.expireDue(now: now) { s in
            let r = s.approvals.deny(id: id, reason: reason, now: now)
            // An operator's denial is a decision too (rule "operator": no red line or policy rule decided it).
            if case .success(let req) = r { s.counters.count(.denied, rule: "operator", agent: req.agent) }
            return r
        }
        auditExpired(expired)
        switch r {
        case .failure(let e):
            throw RPCError(.invalidParams, e.description)
        case .success(let req):
            try? await auditOrLog("approval", [("requestId", .string(id)), ("by", .number(Double(peer.uid))), ("action", "deny"),
                                               ("reason", reason.map { .string($0) } ?? .null)])
            return WriteAnswer(requestId: id, outcome: req.outcome, rule: nil, explanation: req.explanation)
        }
    }

    /// Expires held requests whose time ran out and audits each, however it was first noticed
    /// (a scan, `requests.get`, `approvals.list`; an approve or deny expires what is due first, in its own critical section).
    @discardableResult
    func auditExpiries() -> [HeldRequest] {
        let expired = ledger.expireDue(now: clock())
        auditExpired(expired)
        return expired
    }

    private func auditExpired(_ expired: [HeldRequest]) {
        for r in expired {
            audit.submit(kind: "expired", [("requestId", .string(r.id)), ("agent", .string(r.agent)), ("point", .string(r.point)),
                                           ("why", .string(r.explanation))])
        }
    }
}

/// The age of the readings at actuation, set on the bus thread and read after the write.
final class AgeBox: Sendable {
    private let v = Lock<Int64?>(nil)
    func set(_ a: Int64) { v.withLock { $0 = a } }
    var value: Int64? { v.withLock { $0 } }
}
