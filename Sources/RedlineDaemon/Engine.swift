import Logging
import RedlineCore
import RedlineIO
import Synchronization

/// The answer to one write request.
struct WriteAnswer: Sendable {
    var requestId: String
    var outcome: Outcome
    var rule: Rule?
    var explanation: String

    var json: JSON {
        .obj([("requestId", .string(requestId)), ("outcome", .string(outcome.rawValue)),
              ("rule", rule.map { .string($0.rawValue) }), ("explanation", .string(explanation))])
    }
}

/// The arbiter and the daemon's own safety actions.
///
/// Every write, an agent's, an approved one or a safe-state effect, runs in
/// one serial lane: re-read the zone's condition inputs, decide with the pure
/// policy, audit the decision (on disk), write the device, read it back, audit
/// the result. Any error on the way denies or fails; nothing is written
/// without a decision on disk.
final class Engine: Sendable {
    let site: Site
    let io: PlantIO
    let scanner: Scanner
    let audit: AuditLog
    let logger: Logger
    let notifier: SystemdNotifier
    let clock: @Sendable () -> Int64
    private let lane = SerialQueue()
    private let bootTag: String
    private let state: Mutex<State>
    /// Egress locks and annunciators per zone, found once: the effects look them up every scan.
    private let effectOutputs: [String: (locks: [Point], annunciators: [Point])]

    struct Counters: Sendable {
        var writes = 0
        var executed = 0
        var held = 0
        var failed = 0
        var denied: [String: Int] = [:]
        var reads = 0
        var badLines = 0
        var scans = 0
        var effectWrites = 0
    }

    struct State: Sendable {
        var ready = false
        var quarantine: QuarantineBook
        var approvals = ApprovalBook()
        var nextRequest: UInt64 = 1
        var zoneInAlarm: [String: Bool] = [:]
        /// Effects currently holding, by key "E-1 zone": audited on change only.
        var effects: Set<String> = []
        /// Effect writes that failed last time (logged once per change).
        var effectFailures: Set<String> = []
        var counters = Counters()
        var lastScanAt: Int64?
        var startedAt: Int64
        var readySent = false
        var lastWatchdogAt: Int64?
    }

    init(site: Site, io: PlantIO, scanner: Scanner, audit: AuditLog, logger: Logger,
         notifier: SystemdNotifier, clock: @escaping @Sendable () -> Int64 = monotonicMillis) {
        self.site = site
        self.io = io
        self.scanner = scanner
        self.audit = audit
        self.logger = logger
        self.notifier = notifier
        self.clock = clock
        let now = clock()
        bootTag = String(UInt64(truncatingIfNeeded: now &+ Int64(audit.lastSeq) &* 7919) & 0xFFFF, radix: 16)
        state = Mutex(State(quarantine: QuarantineBook(policy: site.quarantine), startedAt: now))
        var outputs: [String: (locks: [Point], annunciators: [Point])] = [:]
        for p in site.points {
            if p.role == .egressLock { outputs[p.zone, default: ([], [])].locks.append(p) }
            if p.role == .annunciator { outputs[p.zone, default: ([], [])].annunciators.append(p) }
        }
        effectOutputs = outputs
    }

    func shutdown() { lane.finish() }

    var isReady: Bool { state.withLock { $0.ready } }

    private func newRequestId() -> String {
        let n = state.withLock { s in
            defer { s.nextRequest += 1 }
            return s.nextRequest
        }
        return "r-\(bootTag)-\(n)"
    }

    // MARK: - Agent methods

    func describe(agent: Agent) -> JSON {
        let points: [JSON] = site.points.filter { agent.canSee($0.id) }.map { p in
            let writable = agent.canWrite(p.id) && p.role.isOutput
            let range = p.writeRange
            return .obj([
                ("id", .string(p.id)), ("role", .string(p.role.rawValue)), ("zone", .string(p.zone)),
                ("access", .string(writable ? "read-write" : "read")),
                ("unit", p.unit.map { .string($0) }),
                ("min", writable && !p.role.isBoolean ? .number(range.lowerBound) : nil),
                ("max", writable && !p.role.isBoolean ? .number(range.upperBound) : nil),
            ])
        }
        let lines: [JSON] = RedLines.all.map { .obj([("id", .string($0.id.rawValue)), ("title", .string($0.title))]) }
        return .obj([("site", .string(site.name)), ("agent", .string(agent.name)), ("points", .array(points)), ("redLines", .array(lines))])
    }

    func read(agent: Agent, ids: [String]) throws(RPCError) -> JSON {
        for id in ids where site.point(id) == nil || !agent.canSee(id) {
            throw RPCError(.unknownPoint, "unknown point \"\(id)\"")
        }
        let snap = scanner.snapshot
        let now = clock()
        state.withLock { $0.counters.reads += ids.count }
        let values: [JSON] = ids.map { id in
            let p = site.point(id)!
            let q = snap.quality(of: p, now: now, staleAfterMs: site.timing.staleAfterMs)
            let r = snap[id]
            let quality: String = q == .good ? "good" : (q == .stale ? "stale" : "fault")
            return .obj([("id", .string(id)), ("value", r?.value.map { .number($0) } ?? .null),
                         ("quality", .string(quality)), ("ageMs", snap.ageMs(of: id, now: now).map { .number(Double($0)) } ?? .null)])
        }
        return .obj([("values", .array(values))])
    }

    func write(agent: Agent, peer: Peer, point id: String, value: Double, freeText: [(String, JSON)] = []) async throws(RPCError) -> WriteAnswer {
        guard let point = site.point(id), agent.canSee(point.id) else {
            _ = try? await audit.append(kind: "rejected", [("agent", .string(agent.name)), ("uid", .number(Double(peer.uid))),
                                                       ("point", .string(id)), ("value", .number(value)),
                                                       ("text", .object(freeText)), ("error", "unknown point")])
            throw RPCError(.unknownPoint, "unknown point \"\(id)\"")
        }
        let rid = newRequestId()
        let cmd = WriteCommand(agent: agent.name, point: point.id, value: value)
        return await lane.run {
            await self.decideAndExecute(rid, cmd, freeText: freeText, peer: peer, approvedBy: nil)
        }
    }

    func request(agent: Agent, id: String) throws(RPCError) -> WriteAnswer {
        let r = state.withLock { s -> HeldRequest? in
            _ = s.approvals.expire(now: clock())
            return s.approvals.requests[id]
        }
        guard let r, r.agent == agent.name else { throw RPCError(.invalidParams, "no request \"\(id)\" for \(agent.name)") }
        return WriteAnswer(requestId: r.id, outcome: r.outcome, rule: r.rule, explanation: r.explanation)
    }

    // MARK: - The lane

    /// Decides on fresh readings and, if allowed, writes and reads back. Runs in the lane only.
    private func decideAndExecute(_ rid: String, _ cmd: WriteCommand, freeText: [(String, JSON)], peer: Peer?, approvedBy: Peer?) async -> WriteAnswer {
        guard let point = site.point(cmd.point) else {
            return WriteAnswer(requestId: rid, outcome: .denied, rule: .rl8, explanation: "no such point")
        }
        // The conditioned red lines are decided on a fresh re-read of the zone's condition inputs.
        let snap = point.role.isOutput ? await scanner.refresh(site.conditionPointIDs(zone: point.zone)) : scanner.snapshot
        let now = clock()
        let (ready, quarantined) = state.withLock { ($0.ready, $0.quarantine.names) }
        let decision = Policy.decide(cmd, in: PolicyState(site: site, snapshot: snap, now: now, ready: ready, quarantined: quarantined),
                                     approved: approvedBy != nil)
        var fields: [(String, JSON)] = [
            ("requestId", .string(rid)), ("agent", .string(cmd.agent)),
            ("point", .string(cmd.point)), ("value", .number(cmd.value)),
        ]
        if let peer { fields.append(("uid", .number(Double(peer.uid)))) }
        // Free text goes to the log as sent; the decision above never saw it (RL-10).
        if let reason = freeText.first(where: { $0.0 == "reason" })?.1 { fields.append(("reason", reason)) }
        let other = freeText.filter { $0.0 != "reason" }
        if !other.isEmpty { fields.append(("otherText", .object(other))) }
        if let approvedBy { fields.append(("approvedBy", .number(Double(approvedBy.uid)))) }

        switch decision {
        case .unknownPoint:
            return WriteAnswer(requestId: rid, outcome: .denied, rule: .notWritable, explanation: "point not visible to \(cmd.agent)")

        case .denied(let rule, let why):
            try? await auditOrLog("decision", fields + [("outcome", "denied"), ("rule", .string(rule.rawValue)), ("explanation", .string(why))])
            let newlyQuarantined = state.withLock { s -> Bool in
                s.counters.denied[rule.rawValue, default: 0] += 1
                s.counters.writes += 1
                record(&s, rid, cmd, now, approvedBy, .denied, rule, why)
                return s.quarantine.record(agent: cmd.agent, rule: rule, at: now)
            }
            if newlyQuarantined {
                logger.warning("agent quarantined after repeated red-line denials", metadata: ["agent": "\(cmd.agent)"])
                try? await auditOrLog("quarantine", [("agent", .string(cmd.agent)), ("after", .string(rid)),
                                                     ("threshold", .number(Double(site.quarantine.threshold))),
                                                     ("windowS", .number(Double(site.quarantine.windowMs / 1000)))])
            }
            logger.notice("write denied", metadata: ["request": "\(rid)", "agent": "\(cmd.agent)", "point": "\(cmd.point)",
                                                     "value": "\(fmt(cmd.value))", "rule": "\(rule.rawValue)"])
            return WriteAnswer(requestId: rid, outcome: .denied, rule: rule, explanation: why)

        case .held(let timeout, let why):
            do {
                try await audit.append(kind: "decision", fields + [("outcome", "held"), ("explanation", .string(why)),
                                                                   ("timeoutS", .number(Double(timeout / 1000)))])
            } catch {
                return failure(rid, cmd, now, approvedBy, "audit log unavailable (\(error)); the request was not held")
            }
            state.withLock { s in
                s.counters.writes += 1
                s.counters.held += 1
                s.approvals.hold(id: rid, command: cmd, now: now, timeoutMs: timeout, explanation: why)
            }
            logger.info("write held for an operator", metadata: ["request": "\(rid)", "agent": "\(cmd.agent)", "point": "\(cmd.point)"])
            return WriteAnswer(requestId: rid, outcome: .held, rule: nil, explanation: why)

        case .allowed:
            do {
                try await audit.append(kind: "decision", fields + [("outcome", "allowed")])
            } catch {
                return failure(rid, cmd, now, approvedBy, "audit log unavailable (\(error)); nothing was written")
            }
            let writeStarted = clock()
            let result = await io.write(point.id, value: cmd.value)
            switch result {
            case .success(let readBack):
                scanner.record(point.id, readBack: readBack, at: writeStarted)
                let why = "\(point.id) = \(fmt(readBack)) written and read back"
                try? await auditOrLog("result", [("requestId", .string(rid)), ("point", .string(point.id)),
                                                 ("outcome", "executed"), ("readBack", .number(readBack))])
                state.withLock { s in
                    s.counters.executed += 1
                    if approvedBy == nil { s.counters.writes += 1 }
                    record(&s, rid, cmd, now, approvedBy, .executed, nil, why)
                }
                logger.info("write executed", metadata: ["request": "\(rid)", "agent": "\(cmd.agent)", "point": "\(point.id)", "value": "\(fmt(readBack))"])
                return WriteAnswer(requestId: rid, outcome: .executed, rule: nil, explanation: why)
            case .failure(let err):
                try? await auditOrLog("result", [("requestId", .string(rid)), ("point", .string(point.id)),
                                                 ("outcome", "failed"), ("error", .string(err.description))])
                return failure(rid, cmd, now, approvedBy, "device error: \(err)")
            }
        }
    }

    private func failure(_ rid: String, _ cmd: WriteCommand, _ now: Int64, _ approvedBy: Peer?, _ why: String) -> WriteAnswer {
        logger.error("write failed", metadata: ["request": "\(rid)", "point": "\(cmd.point)", "why": "\(why)"])
        state.withLock { s in
            s.counters.failed += 1
            record(&s, rid, cmd, now, approvedBy, .failed, nil, why)
        }
        return WriteAnswer(requestId: rid, outcome: .failed, rule: nil, explanation: why)
    }

    /// Keeps an outcome for `requests.get`: a new record, or the end of an approved one.
    private func record(_ s: inout State, _ rid: String, _ cmd: WriteCommand, _ now: Int64, _ approvedBy: Peer?,
                        _ outcome: Outcome, _ rule: Rule?, _ why: String) {
        if approvedBy != nil {
            s.approvals.finish(id: rid, outcome: outcome, rule: rule, explanation: why)
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

    // MARK: - Operator methods

    func approve(id: String, by peer: Peer) async throws(RPCError) -> WriteAnswer {
        let answer: Result<WriteAnswer, RPCError> = await lane.run {
            let now = self.clock()
            let got = self.state.withLock { $0.approvals.approve(id: id, now: now) }
            switch got {
            case .failure(let e): return .failure(RPCError(.invalidParams, e.description))
            case .success(let req):
                try? await self.auditOrLog("approval", [("requestId", .string(id)), ("by", .number(Double(peer.uid))), ("action", "approve")])
                let a = await self.decideAndExecute(id, req.command, freeText: [], peer: nil, approvedBy: peer)
                // A re-decision that denies ends the request too.
                self.state.withLock { s in
                    if s.approvals.requests[id]?.outcome == .held {
                        s.approvals.finish(id: id, outcome: a.outcome, rule: a.rule, explanation: a.explanation)
                    }
                }
                return .success(a)
            }
        }
        return try answer.get()
    }

    func deny(id: String, reason: String?, by peer: Peer) async throws(RPCError) -> WriteAnswer {
        let r = state.withLock { $0.approvals.deny(id: id, reason: reason) }
        switch r {
        case .failure(let e): throw RPCError(.invalidParams, e.description)
        case .success(let req):
            try? await auditOrLog("approval", [("requestId", .string(id)), ("by", .number(Double(peer.uid))), ("action", "deny"),
                                               ("reason", reason.map { .string($0) } ?? .null)])
            return WriteAnswer(requestId: id, outcome: req.outcome, rule: nil, explanation: req.explanation)
        }
    }

    func pendingApprovals() -> JSON {
        let now = clock()
        let list = state.withLock { s -> [HeldRequest] in
            _ = s.approvals.expire(now: now)
            return s.approvals.pending
        }
        return .obj([("approvals", .array(list.map { r in
            .obj([("requestId", .string(r.id)), ("agent", .string(r.agent)), ("point", .string(r.point)),
                  ("value", .number(r.value)), ("explanation", .string(r.explanation)),
                  ("expiresInS", .number(Double(max(0, r.expiresAt - now) / 1000)))])
        }))])
    }

    func agentsList() -> JSON {
        let now = clock()
        return state.withLock { s in
            .obj([("agents", .array(site.agents.map { a in
                .obj([("name", .string(a.name)), ("uid", .number(Double(a.uid))),
                      ("quarantined", .bool(s.quarantine.isQuarantined(a.name))),
                      ("recentDenials", .number(Double(s.quarantine.recentDenials(a.name, at: now))))])
            }))])
        }
    }

    func release(agent name: String, by peer: Peer) async throws(RPCError) -> JSON {
        guard site.agent(named: name) != nil else { throw RPCError(.invalidParams, "no agent \"\(name)\"") }
        let was = state.withLock { $0.quarantine.release(name) }
        try? await auditOrLog("release", [("agent", .string(name)), ("by", .number(Double(peer.uid))), ("wasQuarantined", .bool(was))])
        logger.notice("agent released by an operator", metadata: ["agent": "\(name)", "by": "\(peer.uid)"])
        return .obj([("agent", .string(name)), ("released", .bool(was))])
    }

    func status() -> JSON {
        let snap = scanner.snapshot
        let now = clock()
        let zones: [JSON] = site.zones.map { z in
            let c = ZoneCondition.evaluate(zone: z.id, site: site, snapshot: snap, now: now)
            return .obj([("id", .string(z.id)), ("occupied", .bool(c.occupied)), ("inAlarm", .bool(c.inAlarm)),
                         ("hazard", .bool(c.hazard)), ("causes", .array(c.causes.map { .string($0) }))])
        }
        var faulted = 0
        for p in site.points where snap.quality(of: p, now: now, staleAfterMs: site.timing.staleAfterMs) != .good { faulted += 1 }
        return state.withLock { s in
            let c = s.counters
            return .obj([
                ("site", .string(site.name)), ("ready", .bool(s.ready)),
                ("uptimeS", .number(Double((now - s.startedAt) / 1000))),
                ("scans", .number(Double(c.scans))),
                ("lastScanAgeMs", s.lastScanAt.map { .number(Double(now - $0)) } ?? .null),
                ("points", .number(Double(site.points.count))), ("pointsNotGood", .number(Double(faulted))),
                ("zones", .array(zones)),
                ("quarantined", .array(s.quarantine.names.sorted().map { .string($0) })),
                ("pendingApprovals", .number(Double(s.approvals.pending.count))),
                ("effectsActive", .array(s.effects.sorted().map { .string($0) })),
                ("counters", .obj([
                    ("writes", .number(Double(c.writes))), ("executed", .number(Double(c.executed))),
                    ("held", .number(Double(c.held))), ("failed", .number(Double(c.failed))),
                    ("denied", .object(c.denied.sorted { $0.key < $1.key }.map { ($0.key, .number(Double($0.value))) })),
                    ("valuesRead", .number(Double(c.reads))), ("badLines", .number(Double(c.badLines))),
                    ("effectWrites", .number(Double(c.effectWrites))),
                ])),
                ("auditSeq", .number(Double(audit.lastSeq))),
            ])
        }
    }

    func countBadLine() { state.withLock { $0.counters.badLines += 1 } }

    // MARK: - Safe-state effects (DESIGN §5), run after every scan

    func onScan(_ snap: PlantSnapshot) async {
        let now = clock()
        let first = state.withLock { s -> Bool in
            s.counters.scans += 1
            s.lastScanAt = now
            defer { s.ready = true }
            return !s.ready
        }
        if first {
            logger.info("first full scan complete; accepting writes", metadata: ["points": "\(site.points.count)"])
            try? await auditOrLog("ready", [("site", .string(site.name))])
        }

        // Act first, then write the story: the safe-state writes must not wait for audit fsyncs.
        var desired: [(Point, Double, String)] = []
        var records: [() async -> Void] = []
        for zone in site.zones {
            let c = ZoneCondition.evaluate(zone: zone.id, site: site, snapshot: snap, now: now)
            // E-2: a zone goes into alarm -> held approvals for its outputs expire (in memory, at once).
            let expired = state.withLock { s -> [HeldRequest]? in
                let was = s.zoneInAlarm[zone.id] ?? false
                s.zoneInAlarm[zone.id] = c.inAlarm
                guard c.inAlarm && !was else { return nil }
                let pts = Set(site.points.filter { $0.zone == zone.id && $0.role.isOutput }.map(\.id))
                return s.approvals.expire(points: pts, because: "expired: \(zone.id) went into alarm (E-2)")
            }
            if let expired {
                if !expired.isEmpty {
                    logger.warning("held approvals expired: zone in alarm", metadata: ["zone": "\(zone.id)", "count": "\(expired.count)"])
                }
                records.append {
                    try? await self.auditOrLog("effect", [("effect", "E-2"), ("zone", .string(zone.id)), ("why", .string(c.summary)),
                                                          ("expired", .array(expired.map { .string($0.id) }))])
                }
            }
            // E-1: release egress in alarm, or occupied and in hazard. E-3: annunciate occupied hazard.
            let e1 = c.inAlarm || (c.occupied && c.hazard)
            let e3 = c.occupied && c.hazard
            if let r = transition("E-1 \(zone.id)", active: e1, why: c.summary) { records.append(r) }
            if let r = transition("E-3 \(zone.id)", active: e3, why: c.summary) { records.append(r) }
            let outputs = effectOutputs[zone.id]
            if e1 { desired += (outputs?.locks ?? []).map { ($0, 0, "E-1") } }
            if e3 { desired += (outputs?.annunciators ?? []).map { ($0, 1, "E-3") } }
        }
        for (p, v, effect) in desired {
            await enforce(p, value: v, effect: effect)
        }
        for record in records { await record() }

        // Held requests whose time ran out.
        let expired = state.withLock { $0.approvals.expire(now: now) }
        for r in expired {
            try? await auditOrLog("expired", [("requestId", .string(r.id)), ("point", .string(r.point))])
        }

        // systemd: ready once scanned; the watchdog only while scans complete.
        let (sendReady, sendDog) = state.withLock { s -> (Bool, Bool) in
            let ready = !s.readySent
            s.readySent = true
            let period = notifier.watchdogUsec.map { Int64($0 / 2000) } ?? 1000
            let dog = s.lastWatchdogAt.map { now - $0 >= period } ?? true
            if dog { s.lastWatchdogAt = now }
            return (ready, dog)
        }
        if sendReady { notifier.send("READY=1\nSTATUS=scanning \(site.points.count) points") }
        if sendDog { notifier.send("WATCHDOG=1") }
    }

    /// Records an effect engaging or ending (in memory, at once); returns its audit record, if it changed.
    private func transition(_ key: String, active: Bool, why: String) -> (() async -> Void)? {
        let changed = state.withLock { s -> Bool in
            active ? s.effects.insert(key).inserted : s.effects.remove(key) != nil
        }
        guard changed else { return nil }
        let parts = key.split(separator: " ", maxSplits: 1).map(String.init)
        if active {
            logger.warning("safe-state effect engaged", metadata: ["effect": "\(key)", "why": "\(why)"])
        } else {
            logger.notice("safe-state effect ended", metadata: ["effect": "\(key)"])
        }
        return {
            try? await self.auditOrLog("effect", [("effect", .string(parts[0])), ("zone", .string(parts.count > 1 ? parts[1] : "")),
                                                  ("state", .string(active ? "engaged" : "ended")), ("why", .string(why))])
        }
    }

    /// Drives an output to its safe-state value, re-asserted every scan. No policy: this is the daemon's own action.
    private func enforce(_ p: Point, value: Double, effect: String) async {
        let r = await lane.run { await self.io.write(p.id, value: value) }
        let key = "\(effect) \(p.id)"
        switch r {
        case .success:
            let recovered = state.withLock { s -> Bool in
                s.counters.effectWrites += 1
                return s.effectFailures.remove(key) != nil
            }
            if recovered { logger.notice("safe-state write recovered", metadata: ["point": "\(p.id)"]) }
        case .failure(let err):
            let firstFailure = state.withLock { $0.effectFailures.insert(key).inserted }
            if firstFailure {
                logger.critical("safe-state write failed", metadata: ["effect": "\(effect)", "point": "\(p.id)", "error": "\(err)"])
                try? await auditOrLog("effect-failed", [("effect", .string(effect)), ("point", .string(p.id)),
                                                        ("value", .number(value)), ("error", .string(err.description))])
            }
        }
    }
}
