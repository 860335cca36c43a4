#if canImport(Glibc)
import Glibc
#endif
import Foundation
import NIOPosix
import RedlineClient
import RedlineCore
import RedlineSync

/// The console's calls to the operator socket. `LineClient` blocks in read and write, so every
/// call runs on a thread of a small NIOThreadPool, never on the cooperative pool; each call has
/// a fresh connection (a restarted daemon is picked up, a broken one never leaks).
public final class DaemonLink: Sendable {
    public let operatorSocket: String
    private let pool: NIOThreadPool

    public init(operatorSocket: String, threads: Int = 2) {
        self.operatorSocket = operatorSocket
        pool = NIOThreadPool(numberOfThreads: threads)
        pool.start()
    }

    /// One call; its result, or the error answer or transport failure thrown as `ClientError`.
    public func call(_ method: String, _ params: JSON? = nil) async throws -> JSON {
        let path = operatorSocket
        return try await pool.runIfActive {
            try FreshConnections(path: path, timeoutMs: 15_000).call(method, params)
        }
    }

    /// What the page shows, asked of the daemon (each part `nil` if its call failed).
    public func snapshot() async -> Pages.Snapshot {
        var s = Pages.Snapshot()
        do {
            s.status = try await call("status")
            s.approvals = try await call("approvals.list")
            s.agents = try await call("agents.list")
            s.audit = try await call("audit.recent", .obj([("limit", 100)]))
        } catch {
            s.error = "\(error)"
        }
        return s
    }

    public func shutdown() async { try? await pool.shutdownGracefully() }
}

/// The console's one `events.subscribe` connection, on a thread of its own (it blocks reading),
/// reconnecting when the daemon restarts; every event goes to every browser's SSE stream.
public final class EventFeed: Sendable {
    public enum Message: Sendable {
        case event(JSON)
        case link(connected: Bool, why: String)
        /// A comment line every few seconds, so a closed browser stream is noticed.
        case keepAlive
    }

    private struct State {
        var next = 0
        var subscribers: [Int: AsyncStream<Message>.Continuation] = [:]
        var connected = false
        var lastWhy = "not connected yet"
        var stopped = false
    }

    private let state = Lock(State())
    public let operatorSocket: String

    public init(operatorSocket: String) {
        self.operatorSocket = operatorSocket
    }

    public func start() {
        let t = Thread { [self] in self.loop() }
        t.name = "redline-console-events"
        t.start()
    }

    public func stop() { state.withLock { $0.stopped = true } }

    /// A browser's stream: the link state first, then every event. A browser that falls 256
    /// messages behind loses the oldest (the page refetches everything on the next one anyway).
    public func subscribe() -> (Int, AsyncStream<Message>) {
        let (stream, cont) = AsyncStream<Message>.makeStream(bufferingPolicy: .bufferingNewest(256))
        let id = state.withLock { s in
            s.next += 1
            s.subscribers[s.next] = cont
            cont.yield(.link(connected: s.connected, why: s.lastWhy))
            return s.next
        }
        return (id, stream)
    }

    public func unsubscribe(_ id: Int) {
        state.withLock { $0.subscribers.removeValue(forKey: id) }?.finish()
    }

    public var subscriberCount: Int { state.withLock { $0.subscribers.count } }

    /// Sends to every browser (also the keep-alives, so that closed streams are noticed).
    public func broadcast(_ m: Message) {
        state.withLock { s in
            if case .link(let c, let why) = m { s.connected = c; s.lastWhy = why }
            for c in s.subscribers.values { c.yield(m) }
        }
    }

    private func loop() {
        var backoff = 0.25
        while !state.withLock({ $0.stopped }) {
            let client: LineClient
            do {
                client = try LineClient(path: operatorSocket, timeoutMs: 30_000)
                _ = try client.call("events.subscribe")
            } catch {
                if state.withLock({ $0.connected || $0.lastWhy == "not connected yet" }) {
                    broadcast(.link(connected: false, why: "\(error)"))
                }
                Thread.sleep(forTimeInterval: backoff)
                backoff = min(5, backoff * 2)
                continue
            }
            backoff = 0.25
            broadcast(.link(connected: true, why: "subscribed"))
            while true {
                let msg: JSON
                do {
                    msg = try client.readJSON()
                } catch ClientError.timeout {
                    continue
                } catch {
                    broadcast(.link(connected: false, why: "the event stream ended (\(error))"))
                    break
                }
                if msg["method"]?.stringValue == "event", let e = msg["params"] { broadcast(.event(e)) }
            }
            client.close()
            Thread.sleep(forTimeInterval: backoff)
        }
    }
}
