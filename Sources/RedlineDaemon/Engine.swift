import Logging
import RedlineCore
import RedlineIO
import RedlineSync
#if canImport(Glibc)
import Glibc
#endif
import Foundation
import RedlineClock

/// The daemon's parts, wired together; what the two sockets' services call.
///
/// Each job has one home:
/// - `Arbiter`: agent writes and approvals (admission, fresh re-read, policy, audit, guarded write);
/// - `EffectsRunner`: the safe-state effects (pure `EffectsMachine` in RedlineCore) and their writes;
/// - `Ledger`: request ids, held and finished requests, quarantine, counters;
/// - `Liveness`: readiness and the systemd watchdog;
/// - `Wire`: the JSON shapes of answers.
///
/// Data flow: the plant's scan updates go to the effects runner (and, after each full
/// scan, to liveness) without waiting for anything; agent requests go to the arbiter.
final class Engine: Sendable {
    let site: Site
    /// The plant seam: the real buses (`BusPlant`) or a memory plant in tests.
    let plant: any PlantAccess
    let audit: AuditLog
    let ledger: Ledger
    let effects: EffectsRunner
    let arbiter: Arbiter
    let liveness: Liveness
    /// Operator events: fed by the audit log with each durable batch.
    let events: EventHub
    /// Which devices are faulted, by the last full scan (safety thread only).
    private let health = Lock(DeviceHealth())
    let clock: @Sendable () -> Int64

    init(site: Site, plant: any PlantAccess, audit: AuditLog, logger: Logger, notifier: SystemdNotifier,
         limits: AgentLimits = AgentLimits(), eventBuffer: Int = 1024, safety: (any TaskExecutor)? = nil, lane: (any TaskExecutor)? = nil,
         clock: @escaping @Sendable () -> Int64 = monotonicMillis) {
        self.site = site
        self.plant = plant
        self.audit = audit
        self.clock = clock
        ledger = Ledger(site: site, now: clock(), bootSalt: audit.lastSeq)
        effects = EffectsRunner(site: site, plant: plant, audit: audit, ledger: ledger, logger: logger, clock: clock, executor: safety)
        arbiter = Arbiter(site: site, plant: plant, audit: audit, ledger: ledger, effects: effects,
                          logger: logger, clock: clock, limits: limits, executor: lane)
        liveness = Liveness(site: site, notifier: notifier, ledger: ledger, audit: audit, logger: logger)
        let hub = EventHub(capacity: eventBuffer)
        events = hub
        let recent = RecentRecords()
        recentRecords = recent
        audit.observeDurable { records in
            hub.publish(records: records)
            recent.add(records)
        }
    }

    /// The last durable audit records, for `audit.recent`, and held requests' free text.
    static let recentCapacity = RecentRecords.capacity
    private let recentRecords: RecentRecords

    var isReady: Bool { ledger.isReady }

    // MARK: - The scan loop's callbacks (never wait for agent work)

    /// Scans the plant until cancelled, feeding `onPart` and `onScan`.
    func runScans() async {
        await plant.run(onPart: { [self] in onPart($0) }, onScan: { [self] in onScan($0) })
    }

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
        // A device faulting or recovering is audited (and so told to operators); queued, never awaited.
        let now = clock()
        for t in health.withLock({ $0.step(site: site, snapshot: snap, now: now) }) {
            audit.submit(kind: "device", [("device", .string(t.device)), ("zone", .string(t.zone)),
                                          ("state", .string(t.faulted ? "faulted" : "recovered"))]
                                         + (t.faulted ? [("why", .string(t.why))] : []))
        }
    }

    // MARK: - Agent methods

    func describe(agent: Agent) -> JSON { Wire.describe(site: site, agent: agent) }

    func read(agent: Agent, ids: [String]) throws(RPCError) -> JSON {
        for id in ids where site.point(id) == nil || !agent.canSee(id) {
            throw RPCError(.unknownPoint, "unknown point \"\(id)\"")
        }
        ledger.state.withLock { $0.counters.reads += ids.count }
        return Wire.values(site: site, ids: ids, snapshot: plant.snapshot, now: clock())
    }

    func write(agent: Agent, peer: Peer, point id: String, value: Double, freeText: [(String, JSON)] = []) async throws(RPCError) -> WriteAnswer {
        try await arbiter.write(agent: agent, peer: peer, point: id, value: value, freeText: freeText)
    }

    func releasePoint(agent: Agent, peer: Peer, point id: String, freeText: [(String, JSON)] = []) async throws(RPCError) -> WriteAnswer {
        try await arbiter.release(agent: agent, peer: peer, point: id, freeText: freeText)
    }

    func rejectedWrite(agent: Agent, peer: Peer, method: String = "points.write", params: JSON?, error: RPCError) {
        arbiter.rejectedWrite(agent: agent, peer: peer, method: method, params: params, error: error)
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
        let now = clock()
        let (pending, ready, quarantined, held) = ledger.state.withLock {
            ($0.approvals.pending, $0.ready, $0.quarantine.names, $0.quarantine.agentsHeld)
        }
        // What an approval now would meet: the policy on the newest scan's readings (an actual
        // approval decides again on a fresh re-read of the zone's conditions).
        let state = PolicyState(site: site, snapshot: plant.snapshot, now: now, ready: ready, quarantined: quarantined,
                                driven: effects.driven, agentsHeld: held)
        let texts = recentRecords
        return Wire.approvals(pending, now: now, agentText: { texts.heldText($0.id) },
                              ifApprovedNow: { Policy.decide($0.command, in: state, approved: true) })
    }

    /// `audit.recent`: the last `limit` durable records this daemon wrote (since it started), and
    /// whether the current audit file verifies (its hash chain, read on a thread of its own).
    func auditRecent(limit: Int) async -> JSON {
        let records = recentRecords.last(limit)
        let path = audit.options.path
        let verdict = await verifyFile(path)
        return .obj([("records", .array(records)), ("file", .string(path)),
                     ("verified", .bool(verdict.ok)), ("verdict", .string(verdict.text)),
                     ("writable", audit.statusJSON["writable"])])
    }

    /// Verifies the current audit file on a new thread (never the operator thread).
    private let fileCheck = AuditFileCheck()

    func verifyFile(_ path: String) async -> (ok: Bool, text: String) {
        let check = fileCheck
        return await withCheckedContinuation { (c: CheckedContinuation<(ok: Bool, text: String), Never>) in
            let t = Thread { c.resume(returning: check.check(path: path)) }
            t.name = "redline-audit-verify"
            t.start()
        }
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

    /// An operator's clear of `agents-held` (audited first: a clear the log cannot record does not happen).
    func clearEscalation(by peer: Peer) async throws(RPCError) -> JSON {
        guard let e = ledger.state.withLock({ $0.quarantine.escalation }) else {
            return .obj([("agentsHeld", .bool(false)), ("cleared", .bool(false))])
        }
        do {
            try await audit.append(kind: "escalation", [("state", "cleared"), ("by", .number(Double(peer.uid))), ("why", .string(e.why))])
        } catch {
            throw RPCError(.internalError, "the audit log cannot be written (\(error)); the site stays in agents-held")
        }
        ledger.state.withLock { _ = $0.quarantine.clearEscalation() }
        return .obj([("agentsHeld", .bool(false)), ("cleared", .bool(true))])
    }

    func status() -> JSON {
        let faulted = health.withLock { $0.faulted }
        let base = Wire.status(site: site, ledger: ledger.state.withLock { $0 }, snapshot: plant.snapshot, effects: effects.current,
                               deviceJobs: plant.jobsSubmitted, auditSeq: audit.durableSeq, audit: audit.statusJSON,
                               scanSeconds: plant.lastScanSeconds, devicesFaulted: faulted, now: clock())
        guard case .object(var fields) = base else { return base }
        let escalation = ledger.state.withLock { $0.quarantine.escalation }
        fields.append(("agentsHeld", escalation.map { e in .obj([("sinceS", .number(Double((clock() - e.since) / 1000))), ("why", .string(e.why))]) } ?? .null))
        // Safe-state writes that do not take effect right now: a person's hold above them, a device fault.
        fields.append(("effectsNotInEffect", effects.troubled))
        fields.append(("devicesFaulted", .object(faulted.sorted { $0.key < $1.key }.map { ($0.key, JSON.string($0.value)) })))
        let e = events.stats
        fields.append(("events", .obj([("subscribers", .number(Double(e.subscribers))), ("published", .number(Double(e.published))),
                                       ("disconnectedSlow", .number(Double(e.disconnectedSlow)))])))
        return .object(fields)
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

/// The last durable audit records (fed with each durable batch, on the audit thread), and the
/// agent's free text of each held request, kept apart so that a flood of other records cannot
/// push it out while the request waits.
final class RecentRecords: Sendable {
    static let capacity = 200
    static let heldTexts = 1024
    private struct State {
        var records: [JSON] = []
        var texts: [String: JSON] = [:]
        var order: [String] = []
    }
    private let state = Lock(State())

    func add(_ batch: [JSON]) {
        state.withLock { s in
            s.records.append(contentsOf: batch)
            if s.records.count > Self.capacity { s.records.removeFirst(s.records.count - Self.capacity) }
            for r in batch where r["kind"]?.stringValue == "decision" && r["outcome"]?.stringValue == "held" {
                guard let id = r["requestId"]?.stringValue else { continue }
                // What the agent sent beside id and value, as audited (capped): `reason` and `otherText`.
                let said: [(String, JSON)] = ["reason", "otherText"].compactMap { k in r[k].map { (k, $0) } }
                s.texts[id] = .object(said)
                s.order.append(id)
                if s.order.count > Self.heldTexts { s.texts[s.order.removeFirst()] = nil }
            }
        }
    }

    func last(_ n: Int) -> [JSON] { state.withLock { Array($0.records.suffix(n)) } }

    func heldText(_ id: String) -> JSON? { state.withLock { $0.texts[id] } }
}

/// Whether the current audit file's hash chain verifies, for `audit.recent`, without reading
/// the whole file at every call (a console refreshes on every event): the verifier goes on from
/// where the last check stopped (complete lines only, since the writer may be appending), and
/// starts again from the first byte when the file is another one (rotation), shrank, or the
/// last whole-file check is more than `fullEverySeconds` old (an edit of bytes already checked
/// is found then). Blocking: call it on a thread of its own.
final class AuditFileCheck: Sendable {
    static let fullEverySeconds = 60.0
    private struct State {
        var file: (dev: UInt64, ino: UInt64)?
        var offset = 0
        var verifier = AuditChain.Verifier()
        var fullAt = -Double.infinity
    }
    private let state = Lock(State())

    func check(path: String) -> (ok: Bool, text: String) {
        state.withLock { s in
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { s = State(); return (false, "cannot read \(path): \(String(cString: strerror(errno)))") }
            defer { close(fd) }
            var st = stat()
            guard fstat(fd, &st) == 0 else { s = State(); return (false, "cannot stat \(path): \(String(cString: strerror(errno)))") }
            let now = Monotonic.seconds()
            let same = s.file.map { $0.dev == UInt64(st.st_dev) && $0.ino == UInt64(st.st_ino) } ?? false
            if !same || Int(st.st_size) < s.offset || now - s.fullAt >= Self.fullEverySeconds {
                s = State()
                s.file = (UInt64(st.st_dev), UInt64(st.st_ino))
                s.fullAt = now
            }
            guard lseek(fd, off_t(s.offset), SEEK_SET) >= 0 else { return (false, "cannot seek in \(path)") }
            var pending: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 1 << 16)
            while true {
                let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if n < 0 && errno == EINTR { continue }
                if n < 0 { s = State(); return (false, "cannot read \(path): \(String(cString: strerror(errno)))") }
                if n == 0 { break }
                pending.append(contentsOf: chunk[..<n])
                var start = 0
                for i in pending.indices where pending[i] == 0x0A {
                    s.verifier.feed(pending[start..<i])
                    start = i + 1
                }
                s.offset += start
                pending.removeFirst(start)
            }
            let verdict = s.verifier.verdict
            if case .ok = verdict { return (true, verdict.description) }
            return (false, verdict.description)
        }
    }
}
