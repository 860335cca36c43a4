#if canImport(Glibc)
import Glibc
#endif
import RedlineCore

/// The agent socket (docs/DESIGN.md §7). Exactly five methods exist here; nothing on
/// this channel can change configuration, grants, approvals, quarantine or the
/// audit log (RL-9): such methods are simply not reachable.
struct AgentService: LineService {
    let engine: Engine

    struct Session: Sendable {
        let agent: Agent
        let peer: Peer
    }

    static let methods: Set<String> = ["site.describe", "points.read", "points.write", "points.release", "requests.get"]

    func admit(_ peer: Peer) -> Result<Session, RPCError> {
        guard let agent = engine.site.agent(uid: peer.uid) else {
            return .failure(RPCError(.notAdmitted, "uid \(peer.uid) is not an agent of site \(engine.site.name); disconnecting"))
        }
        return .success(Session(agent: agent, peer: peer))
    }

    func rejected(_ error: RPCError, session: Session) async { engine.countBadLine() }

    /// The params of `points.write` (`value: true`) or `points.release`: `id` (and `value`) are
    /// typed; everything else (`reason`, or any other member an agent adds, "override codes"
    /// included) is free text: audited (capped), never read (RL-10). A malformed command is
    /// still evidence: audited with what it said, then refused.
    private func command(_ req: RPCRequest, _ p: Params, _ session: Session, value typed: Bool) throws(RPCError)
        -> (id: String, value: Double?, freeText: [(String, JSON)]) {
        do throws(RPCError) {
            let members = try p.object(allowed: nil)
            let id = try p.string("id", allowed: nil)
            let value = typed ? try p.number("value") : nil
            let text = members.filter { $0.0 != "id" && !(typed && $0.0 == "value") }
            return (id, value, text)
        } catch {
            engine.rejectedWrite(agent: session.agent, peer: session.peer, method: req.method, params: req.params, error: error)
            throw error
        }
    }

    func handle(_ req: RPCRequest, session: Session) async -> Result<JSON, RPCError> {
        let p = Params(req.params, method: req.method)
        do throws(RPCError) {
            switch req.method {
            case "site.describe":
                _ = try p.object(allowed: [])
                return .success(engine.describe(agent: session.agent))
            case "points.read":
                _ = try p.object(allowed: ["ids"])
                return .success(try engine.read(agent: session.agent, ids: try p.stringArray("ids")))
            case "points.write":
                let (id, value, text) = try command(req, p, session, value: true)
                return .success(try await engine.write(agent: session.agent, peer: session.peer, point: id, value: value ?? .nan, freeText: text).json)
            case "points.release":
                let (id, _, text) = try command(req, p, session, value: false)
                return .success(try await engine.releasePoint(agent: session.agent, peer: session.peer, point: id, freeText: text).json)
            case "requests.get":
                let id = try p.string("requestId", allowed: ["requestId"])
                return .success(try engine.request(agent: session.agent, id: id).json)
            default:
                return .failure(RPCError(.methodNotFound, "no method \"\(req.method)\" on the agent socket"))
            }
        } catch {
            return .failure(error)
        }
    }
}

/// The operator socket (docs/DESIGN.md §8): admitted only for configured uids and gids.
struct OperatorService: LineService {
    let engine: Engine

    typealias Session = Peer

    func admit(_ peer: Peer) -> Result<Peer, RPCError> {
        // Agents are never operators, whatever their groups: an agent could otherwise
        // approve its own held lock or release its own quarantine.
        if let agent = engine.site.agent(uid: peer.uid) {
            return .failure(RPCError(.notAdmitted, "uid \(peer.uid) is the agent \(agent.name); agents are never admitted on the operator socket; disconnecting"))
        }
        let groups = OperatorService.groups(of: peer)
        let ok = engine.site.operators.contains { op in
            (op.uid.map { $0 == peer.uid } ?? false) || (op.gid.map { groups.contains($0) } ?? false)
        }
        guard ok else {
            return .failure(RPCError(.notAdmitted, "uid \(peer.uid) is not an operator of site \(engine.site.name); disconnecting"))
        }
        return .success(peer)
    }

    func rejected(_ error: RPCError, session: Peer) async { engine.countBadLine() }

    /// `events.subscribe`: the connection becomes a stream of `event` notifications, one per
    /// durable audit record that stands for an event (RedlineCore `OperatorEvents`), each with
    /// its `seq`. Nothing else changes; a subscriber that falls behind is disconnected.
    func subscription(for req: RPCRequest, session: Peer, disconnect: @escaping @Sendable () -> Void) -> Result<Subscription, RPCError>? {
        guard req.method == "events.subscribe" else { return nil }
        do throws(RPCError) {
            _ = try Params(req.params, method: req.method).object(allowed: [])
        } catch {
            return .failure(error)
        }
        let hub = engine.events
        let (id, stream) = hub.subscribe(disconnect: disconnect)
        let ack: JSON = .obj([
            ("subscribed", .bool(true)),
            ("events", .array(OperatorEvents.names.map { .string($0) })),
            ("auditSeq", .number(Double(engine.audit.durableSeq))),
            ("ready", .bool(engine.isReady)),
            ("bufferEvents", .number(Double(hub.capacity))),
        ])
        return .success(Subscription(ack: ack, method: "event", events: stream, end: { hub.unsubscribe(id) }))
    }

    func handle(_ req: RPCRequest, session peer: Peer) async -> Result<JSON, RPCError> {
        let p = Params(req.params, method: req.method)
        do throws(RPCError) {
            switch req.method {
            case "status":
                _ = try p.object(allowed: [])
                return .success(engine.status())
            case "approvals.list":
                _ = try p.object(allowed: [])
                return .success(engine.pendingApprovals())
            case "approvals.approve":
                let id = try p.string("requestId", allowed: ["requestId"])
                return .success(try await engine.approve(id: id, by: peer).json)
            case "approvals.deny":
                let id = try p.string("requestId", allowed: ["requestId", "reason"])
                return .success(try await engine.deny(id: id, reason: try p.optionalString("reason"), by: peer).json)
            case "agents.list":
                _ = try p.object(allowed: [])
                return .success(engine.agentsList())
            case "escalation.clear":
                _ = try p.object(allowed: [])
                return .success(try await engine.clearEscalation(by: peer))
            case "agents.release":
                let name = try p.string("agent", allowed: ["agent"])
                return .success(try await engine.release(agent: name, by: peer))
            case "audit.recent":
                _ = try p.object(allowed: ["limit"])
                var limit = 50
                if let v = req.params?["limit"] {
                    guard let n = v.numberValue, let l = Int(exactly: n), l >= 1, l <= Engine.recentCapacity else {
                        throw RPCError(.invalidParams, "limit must be a whole number from 1 to \(Engine.recentCapacity)")
                    }
                    limit = l
                }
                return .success(await engine.auditRecent(limit: limit))
            case "audit.checkpoint":
                _ = try p.object(allowed: [])
                return .success(try engine.auditCheckpoint())
            case "audit.witnessed":
                let hash = try p.string("hash", allowed: ["seq", "hash"])
                guard let n = req.params?["seq"]?.numberValue, let seq = UInt64(exactly: n) else {
                    throw RPCError(.invalidParams, "seq must be a whole number")
                }
                return .success(try engine.auditWitnessed(seq: seq, hash: hash))
            default:
                return .failure(RPCError(.methodNotFound, "no method \"\(req.method)\" on the operator socket"))
            }
        } catch {
            return .failure(error)
        }
    }

    /// Primary and supplementary groups of the peer process, from /proc.
    static func groups(of peer: Peer) -> Set<UInt32> {
        var out: Set<UInt32> = [peer.gid]
        guard let f = fopen("/proc/\(peer.pid)/status", "r") else { return out }
        defer { fclose(f) }
        var line: UnsafeMutablePointer<CChar>?
        var cap = 0
        while getline(&line, &cap, f) > 0 {
            guard let l = line else { break }
            let s = String(cString: l)
            if s.hasPrefix("Groups:") {
                for g in s.dropFirst(7).split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" }) {
                    if let v = UInt32(g) { out.insert(v) }
                }
            }
        }
        free(line)
        return out
    }
}
