#if canImport(Glibc)
import Glibc
#endif
import Foundation
import MCP
import RedlineClient
import RedlineCore

// MARK: - Talking to redlined off the cooperative pool

/// Runs the blocking calls of an `RPCTransport` on one dedicated thread, one call at a time
/// (blocking socket calls stay off the cooperative pool). The transport is used only on that
/// thread. `redlinectl mcp` gives it `FreshConnections`: each call opens a fresh connection
/// (cheap on a Unix socket), so a restarted daemon is picked up and a broken connection never
/// leaks into the next call.
final class DaemonLink: @unchecked Sendable {
    private struct Job {
        let method: String
        let params: JSON?
        let done: @Sendable (Result<JSON, ClientError>) -> Void
    }

    private let transport: any RPCTransport  // used only on the link's thread
    private let cond = NSCondition()
    private var jobs: [Job] = []  // guarded by cond

    init(_ transport: any RPCTransport) {
        self.transport = transport
        let thread = Thread { [self] in self.work() }
        thread.name = "redline-agent-socket"
        thread.start()
    }

    /// One JSON-RPC call on the agent socket.
    func call(_ method: String, _ params: JSON? = nil) async -> Result<JSON, ClientError> {
        await withCheckedContinuation { (c: CheckedContinuation<Result<JSON, ClientError>, Never>) in
            cond.lock()
            jobs.append(Job(method: method, params: params) { c.resume(returning: $0) })
            cond.signal()
            cond.unlock()
        }
    }

    private func work() {
        while true {
            cond.lock()
            while jobs.isEmpty { cond.wait() }
            let job = jobs.removeFirst()
            cond.unlock()
            job.done(perform(job.method, job.params))
        }
    }

    /// Not inlined into `work()`, on purpose: inlined (with the transport devirtualized), the whole `LineClient` (connect, send and
    /// read loops, typed throws) lands inside `work()`'s endless loop, and the optimizer's loop-invariant
    /// code motion pass (its alias analysis, `AccessPathWalker`) then took tens of minutes on that one
    /// function in `swift build -c release` (Swift 6.3): the whole module compiles in seconds without it.
    /// One call per job costs nothing next to opening a socket.
    @inline(never)
    private func perform(_ method: String, _ params: JSON?) -> Result<JSON, ClientError> {
        do {
            return .success(try transport.call(method, params))
        } catch {
            return .failure(error)
        }
    }
}
