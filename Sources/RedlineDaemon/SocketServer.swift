#if canImport(Glibc)
import Glibc
#endif
import Logging
import NIOCore
import NIOPosix
import RedlineClock
import RedlineCore
import RedlineSync

/// Credentials of a connected peer, from `SO_PEERCRED` (never from anything it says).
public struct Peer: Sendable, Hashable, CustomStringConvertible {
    public var pid: Int32
    public var uid: UInt32
    public var gid: UInt32
    package init(pid: Int32, uid: UInt32, gid: UInt32) {
        self.pid = pid
        self.uid = uid
        self.gid = gid
    }
    public var description: String { "pid \(pid) uid \(uid) gid \(gid)" }
}

/// What a socket does with admitted peers' requests.
protocol LineService: Sendable {
    associatedtype Session: Sendable
    /// Decides whether a peer may talk here. `.failure` carries the message it is told before disconnect.
    func admit(_ peer: Peer) -> Result<Session, RPCError>
    /// Answers one request; `nil` for no answer (notifications).
    func handle(_ request: RPCRequest, session: Session) async -> Result<JSON, RPCError>
    /// Records a line that could not be parsed (for auditing abuse).
    func rejected(_ error: RPCError, session: Session) async
    /// Whether `request` turns the connection into a stream of notifications (nil: it does not;
    /// it is handled as usual). `disconnect` closes the connection (for a subscriber that lags).
    func subscription(for request: RPCRequest, session: Session, disconnect: @escaping @Sendable () -> Void) -> Result<Subscription, RPCError>?
}

extension LineService {
    func subscription(for request: RPCRequest, session: Session, disconnect: @escaping @Sendable () -> Void) -> Result<Subscription, RPCError>? { nil }

    /// The answer to one parsed line that is not a subscription, as the socket sends it back
    /// (nil for a notification: decided and audited, never answered). The one entry point of
    /// requests, for the socket (`LineServer`) and the in-process daemon (`DaemonCore`).
    func answer(_ parsed: Result<RPCRequest, RejectedLine>, session: Session) async -> JSON? {
        switch parsed {
        case .failure(let rej):
            await rejected(rej.error, session: session)
            return RPC.error(id: rej.id, rej.error)
        case .success(let req):
            let answer = await handle(req, session: session)
            if req.isNotification { return nil }
            switch answer {
            case .success(let r): return RPC.result(id: req.id, r)
            case .failure(let e): return RPC.error(id: req.id, e)
            }
        }
    }
}

/// A stream of notifications on one connection: the answer to the subscribing request, the
/// notifications' `params` in order, and what to do when the connection ends.
struct Subscription: Sendable {
    var ack: JSON
    var method: String
    var events: AsyncStream<JSON>
    var end: @Sendable () -> Void
}

/// Limits that keep one client from starving others.
public struct ConnectionLimits: Sendable {
    public var maxConnections: Int = 64
    /// Connections one uid may hold at once: a share, so that one agent holding every
    /// connection it may have leaves room for the others (default: half the cap).
    public var maxConnectionsPerUid: Int = 32
    /// Sustained requests per second per connection, and the burst allowed above it.
    public var ratePerSecond: Double = 1000
    public var burst: Double = 2000
    /// A connection that sends nothing for this long is closed.
    public var idleTimeoutSeconds: Int64 = 300
    public init(maxConnections: Int = 64, maxConnectionsPerUid: Int? = nil, ratePerSecond: Double = 1000, burst: Double = 2000,
                idleTimeoutSeconds: Int64 = 300) {
        self.maxConnections = max(1, maxConnections)
        self.maxConnectionsPerUid = max(1, min(self.maxConnections, maxConnectionsPerUid ?? max(1, maxConnections / 2)))
        self.ratePerSecond = ratePerSecond
        self.burst = burst
        self.idleTimeoutSeconds = max(1, idleTimeoutSeconds)
    }
}

/// A Unix-domain JSON-RPC server: one object per line, peers identified by `SO_PEERCRED`.
struct LineServer<S: LineService>: Sendable {
    let name: String
    let path: String
    let mode: mode_t
    let group: gid_t?
    let limits: ConnectionLimits
    let service: S
    let eventLoops: any EventLoopGroup
    let logger: Logger

    typealias Conn = (NIOAsyncChannel<Frame, ByteBuffer>, Peer?)

    /// Binds the socket and serves until cancelled.
    func run() async throws {
        if let st = try? fileStat(path), (st.st_mode & S_IFMT) == S_IFSOCK { unlink(path) }
        let idle = limits.idleTimeoutSeconds
        let server = try await ServerBootstrap(group: eventLoops)
            .serverChannelOption(.backlog, value: 64)
            // A client that sends its request and half-closes still gets its answer.
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .bind(unixDomainSocketPath: path) { channel -> EventLoopFuture<Conn> in
                let peerFuture: EventLoopFuture<PeerCred>
                if let provider = channel as? any SocketOptionProvider {
                    peerFuture = provider.unsafeGetSocketOption(level: SocketOptionLevel(SOL_SOCKET), name: SocketOptionName(SO_PEERCRED))
                } else {
                    peerFuture = channel.eventLoop.makeFailedFuture(ChannelError.operationUnsupported)
                }
                return peerFuture.map { Optional($0) }.recover { _ in nil }.flatMapThrowing { cred -> Conn in
                    try channel.pipeline.syncOperations.addHandler(IdleStateHandler(readTimeout: .seconds(idle)), name: "idle-timeout")
                    try channel.pipeline.syncOperations.addHandler(CloseWhenIdle())
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(LineDecoder(maxLength: RPC.maxLine)))
                    let async = try NIOAsyncChannel<Frame, ByteBuffer>(wrappingChannelSynchronously: channel)
                    return (async, cred.map { Peer(pid: $0.pid, uid: $0.uid, gid: $0.gid) })
                }
            }
        chmod(path, mode)
        if let g = group { chown(path, uid_t.max, g) }
        logger.info("\(name) socket listening", metadata: ["path": "\(path)", "mode": "\(String(mode, radix: 8))"])
        let open = ConnectionCount()
        try await withThrowingDiscardingTaskGroup { group in
            try await server.executeThenClose { inbound in
                for try await (conn, peer) in inbound {
                    group.addTask {
                        let refusal = open.add(uid: peer?.uid, limits: limits)
                        defer { if refusal == nil { open.remove(uid: peer?.uid) } }
                        await serve(conn, peer: peer, refusal: refusal)
                    }
                }
            }
        }
    }

    private func serve(_ conn: NIOAsyncChannel<Frame, ByteBuffer>, peer: Peer?, refusal: String?) async {
        do {
            try await conn.executeThenClose { inbound, outbound in
                @Sendable func send(_ v: JSON) async throws {
                    var buf = ByteBuffer()
                    buf.writeString(v.encoded() + "\n")
                    try await outbound.write(buf)
                }
                if let refusal {
                    logger.warning("\(name) connection refused", metadata: ["why": "\(refusal)", "peer": "\(peer.map { "\($0)" } ?? "?")"])
                    try await send(RPC.error(id: .null, RPCError(.busy, refusal)))
                    await drain(inbound)
                    return
                }
                guard let peer else {
                    try await send(RPC.error(id: .null, RPCError(.notAdmitted, "peer credentials unavailable")))
                    await drain(inbound)
                    return
                }
                let session: S.Session
                switch service.admit(peer) {
                case .success(let s): session = s
                case .failure(let e):
                    logger.warning("\(name) peer refused", metadata: ["peer": "\(peer)", "why": "\(e.message)"])
                    try await send(RPC.error(id: .null, e))
                    await drain(inbound)
                    return
                }
                var bucket = TokenBucket(rate: limits.ratePerSecond, burst: limits.burst, now: Monotonic.seconds())
                // At most one subscription per connection; it streams from a task of its own while
                // this loop goes on reading (so a closed connection ends it at once).
                var subscribed: Subscription?
                let streamer = StreamerTask()
                defer {
                    streamer.cancel()
                    subscribed?.end()
                }
                for try await frame in inbound {
                    let bytes: [UInt8]
                    switch frame {
                    case .tooLong(let n):
                        let e = RPCError(.invalidRequest, "request line of \(n) bytes exceeds the limit of \(RPC.maxLine) bytes")
                        await service.rejected(e, session: session)
                        try await send(RPC.error(id: .null, e))
                        continue
                    case .line(let buf):
                        bytes = Array(buf.readableBytesView)
                    }
                    if bytes.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { continue }
                    let parsed = RPC.parse(line: bytes)
                    guard bucket.take(now: Monotonic.seconds()) else {
                        let id: JSON
                        switch parsed {
                        case .success(let r): id = r.id
                        case .failure(let rej): id = rej.id
                        }
                        try await send(RPC.error(id: id, RPCError(.rateLimited, "rate limit exceeded (\(Int(limits.ratePerSecond)) requests/s); slow down")))
                        continue
                    }
                    switch parsed {
                    case .failure:
                        if let a = await service.answer(parsed, session: session) { try await send(a) }
                    case .success(let req):
                        let channel = conn.channel
                        if let sub = service.subscription(for: req, session: session, disconnect: { channel.close(promise: nil) }) {
                            switch sub {
                            case .failure(let e):
                                try await send(RPC.error(id: req.id, e))
                            case .success(let s) where subscribed != nil:
                                s.end()
                                try await send(RPC.error(id: req.id, RPCError(.invalidRequest, "this connection is already subscribed")))
                            case .success(let s):
                                subscribed = s
                                try await send(RPC.result(id: req.id, s.ack))
                                // A subscriber only listens: the read-idle timeout no longer applies.
                                _ = try? await channel.pipeline.removeHandler(name: "idle-timeout").get()
                                let method = s.method
                                streamer.start {
                                    for await e in s.events {
                                        do { try await send(.obj([("jsonrpc", "2.0"), ("method", .string(method)), ("params", e)])) } catch { break }
                                    }
                                    // The stream ended: the daemon is stopping, or this subscriber lagged.
                                    channel.close(promise: nil)
                                }
                            }
                            continue
                        }
                        if subscribed != nil {
                            if !req.isNotification {
                                try await send(RPC.error(id: req.id, RPCError(.invalidRequest, "this connection is subscribed to events; send requests on another connection")))
                            }
                            continue
                        }
                        if let a = await service.answer(parsed, session: session) { try await send(a) }
                    }
                }
            }
        } catch {
            logger.debug("\(name) connection ended", metadata: ["error": "\(error)"])
        }
    }
}

/// Layout of Linux `struct ucred` (pid_t, uid_t, gid_t), which Glibc hides behind _GNU_SOURCE.
/// The task that streams a subscription's notifications, cancelled when its connection ends.
final class StreamerTask: Sendable {
    private let task = Lock<Task<Void, Never>?>(nil)
    func start(_ body: @escaping @Sendable () async -> Void) {
        task.withLock { $0 = Task { await body() } }
    }
    func cancel() { task.withLock { $0?.cancel() } }
}

struct PeerCred: Sendable {
    var pid: Int32 = 0
    var uid: UInt32 = 0
    var gid: UInt32 = 0
}

/// Open connections, in all and per uid.
final class ConnectionCount: Sendable {
    private let state = Lock<(total: Int, perUid: [UInt32: Int])>((0, [:]))

    /// Admits a new connection if the cap and the uid's share allow it; nil when admitted
    /// (then `remove` must follow), else why not. A refused connection takes no slot, so an
    /// agent whose share is full cannot crowd others out by opening more.
    func add(uid: UInt32?, limits: ConnectionLimits) -> String? {
        state.withLock { s in
            let mine = uid.map { s.perUid[$0, default: 0] } ?? 0
            if let uid, mine >= limits.maxConnectionsPerUid {
                return "too many connections from uid \(uid) (its share is \(limits.maxConnectionsPerUid)); close one first"
            }
            if s.total >= limits.maxConnections {
                return "too many connections (limit \(limits.maxConnections)); try again later"
            }
            s.total += 1
            if let uid { s.perUid[uid] = mine + 1 }
            return nil
        }
    }

    func remove(uid: UInt32?) {
        state.withLock { s in
            s.total -= 1
            if let uid {
                let n = s.perUid[uid, default: 1] - 1
                s.perUid[uid] = n > 0 ? n : nil
            }
        }
    }
}

/// Closes a connection that has sent nothing for the idle timeout.
final class CloseWhenIdle: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let e = event as? IdleStateHandler.IdleStateEvent, e == .read {
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }
}

/// Reads and discards what a refused peer already sent, for a moment, so that closing
/// the socket does not reset the connection before the peer has read why it was refused.
func drain(_ inbound: NIOAsyncChannelInboundStream<Frame>) async {
    await withTaskGroup(of: Void.self) { g in
        g.addTask { do { for try await _ in inbound {} } catch {} }
        g.addTask { try? await Task.sleep(for: .milliseconds(300)) }
        await g.next()
        g.cancelAll()
    }
}

struct TokenBucket {
    let rate: Double
    let burst: Double
    var tokens: Double
    var last: Double
    init(rate: Double, burst: Double, now: Double) {
        self.rate = rate
        self.burst = burst
        tokens = burst
        last = now
    }
    mutating func take(now: Double) -> Bool {
        tokens = min(burst, tokens + (now - last) * rate)
        last = now
        guard tokens >= 1 else { return false }
        tokens -= 1
        return true
    }
}

func fileStat(_ path: String) throws -> stat {
    var st = stat()
    guard stat(path, &st) == 0 else { throw AuditLog.OpenError.io("\(path): \(String(cString: strerror(errno)))") }
    return st
}
