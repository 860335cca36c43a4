import Logging
import RedlineCore
import RedlineIO

/// The daemon's parts, wired together; what the two sockets' services call.
///
/// Each job has one home:
/// - `Arbiter`: agent writes and approvals (admission, fresh re-read, policy, audit, guarded write);
/// - `EffectsRunner`: the safe-state effects (pure `EffectsMachine` in RedlineCore) and their writes;
/// - `Ledger`: request ids, held and finished requests, quarantine, counters;
/// - `Liveness`: readiness and the systemd watchdog;
/// - `Wire`: the JSON shapes of answers.
///
/// Data flow: the scanner's updates go to the effects runner (and, after each full
/// scan, to liveness) without waiting for anything; agent requests go to the arbiter.
final class Engine: Sendable {
    let site: Site
    let io: PlantIO
    let scanner: Scanner
    let audit: AuditLog
    let ledger: Ledger
    let effects: EffectsRunner
    let arbiter: Arbiter
    let liveness: Liveness
    let clock: @Sendable () -> Int64

    init(site: Site, io: PlantIO, scanner: Scanner, audit: AuditLog, logger: Logger, notifier: SystemdNotifier,
         limits: AgentLimits = AgentLimits(), safety: (any TaskExecutor)? = nil, lane: (any TaskExecutor)? = nil,
         clock: @escaping @Sendable () -> Int64 = monotonicMillis) {
        self.site = site
        self.io = io
        self.scanner = scanner
        self.audit = audit
        self.clock = clock
        ledger = Ledger(site: site, now: clock(), bootSalt: audit.lastSeq)
        effects = EffectsRunner(site: site, io: io, audit: audit, ledger: ledger, logger: logger, clock: clock, executor: safety)
        arbiter = Arbiter(site: site, io: io, scanner: scanner, audit: audit, ledger: ledger, effects: effects,
                          logger: logger, clock: clock, limits: limits, executor: lane)
        liveness = Liveness(site: site, notifier: notifier, ledger: ledger, audit: audit, logger: logger)
    }

    var isReady: Bool { ledger.isReady }

    // MARK: - The scan loop's callbacks (never wait for agent work)

    /// One bus's part of a scan arrived: effects act on it at once (after the first full scan).
    func onPart(_ snap: PlantSnapshot) {
        guard ledger.isReady else { return }
        effects.update(snap, fullScan: false)
    }

    /// A full scan completed: effects re-assert every drive; readiness and the watchdog follow.
    func onScan(_ snap: PlantSnapshot) {
        effects.update(snap, fullScan: true)
        liveness.scanned(at: clock())
        arbiter.auditExpiries()
    }

    // MARK: - Agent methods

    func describe(agent: Agent) -> JSON { Wire.describe(site: site, agent: agent) }

    func read(agent: Agent, ids: [String]) throws(RPCError) -> JSON {
        for id in ids where site.point(id) == nil || !agent.canSee(id) {
            throw RPCError(.unknownPoint, "unknown point \"\(id)\"")
        }
        ledger.state.withLock { $0.counters.reads += ids.count }
        return Wire.values(site: site, ids: ids, snapshot: scanner.snapshot, now: clock())
    }

    func write(agent: Agent, peer: Peer, point id: String, value: Double, freeText: [(String, JSON)] = []) async throws(RPCError) -> WriteAnswer {
        try await arbiter.write(agent: agent, peer: peer, point: id, value: value, freeText: freeText)
    }

    func rejectedWrite(agent: Agent, peer: Peer, params: JSON?, error: RPCError) {
        arbiter.rejectedWrite(agent: agent, peer: peer, params: params, error: error)
    }

    func request(agent: Agent, id: String) throws(RPCError) -> WriteAnswer {
        arbiter.auditExpiries()
        let r = ledger.state.withLock { $0.approvals.requests[id] }
        guard let r, r.agent == agent.name else { throw RPCError(.invalidParams, "no request \"\(id)\" for \(agent.name)") }
        return WriteAnswer(requestId: r.id, outcome: r.outcome, rule: r.rule, explanation: r.explanation)
    }

    // MARK: - Operator methods

    func approve(id: String, by peer: Peer) async throws(RPCError) -> WriteAnswer { try await arbiter.approve(id: id, by: peer) }

    func deny(id: String, reason: String?, by peer: Peer) async throws(RPCError) -> WriteAnswer {
        try await arbiter.deny(id: id, reason: reason, by: peer)
    }

    func pendingApprovals() -> JSON {
        arbiter.auditExpiries()
        return Wire.approvals(ledger.state.withLock { $0.approvals.pending }, now: clock())
    }

    func agentsList() -> JSON {
        let now = clock()
        return Wire.agents(site: site, quarantine: ledger.state.withLock { $0.quarantine }, now: now)
    }

    func release(agent name: String, by peer: Peer) async throws(RPCError) -> JSON {
        guard site.agent(named: name) != nil else { throw RPCError(.invalidParams, "no agent \"\(name)\"") }
        // Audited first: a release that cannot be recorded does not happen (the agent stays quarantined).
        let was = ledger.state.withLock { $0.quarantine.isQuarantined(name) }
        do {
            try await audit.append(kind: "release", [("agent", .string(name)), ("by", .number(Double(peer.uid))), ("wasQuarantined", .bool(was))])
        } catch {
            throw RPCError(.internalError, "the audit log cannot be written (\(error)); \(name) stays as it is")
        }
        let released = ledger.state.withLock { $0.quarantine.release(name) }
        return .obj([("agent", .string(name)), ("released", .bool(released))])
    }

    func status() -> JSON {
        Wire.status(site: site, ledger: ledger.state.withLock { $0 }, snapshot: scanner.snapshot, effects: effects.current,
                    deviceJobs: io.jobsSubmitted, auditSeq: audit.durableSeq, audit: audit.statusJSON, now: clock())
    }

    /// The latest signed checkpoint and the key it verifies with (`audit.checkpoint`).
    func auditCheckpoint() throws(RPCError) -> JSON {
        guard let cp = audit.latestCheckpoint, let key = audit.verifierKey else {
            throw RPCError(.internalError, "no audit checkpoint yet")
        }
        return .obj([("checkpoint", .string(cp.text)), ("key", .string(key.text)), ("seq", .number(Double(cp.seq)))])
    }

    /// A witness stored the checkpoint at `seq`: rotation may remove records up to it without a warning.
    func auditWitnessed(seq: UInt64, hash: String) throws(RPCError) -> JSON {
        guard audit.witnessed(seq: seq, hash: hash) else {
            throw RPCError(.invalidParams, "seq \(seq) with that hash is not one of this daemon's recent checkpoints")
        }
        return .obj([("witnessedSeq", .number(Double(seq)))])
    }

    func countBadLine() { ledger.state.withLock { $0.counters.badLines += 1 } }
}
