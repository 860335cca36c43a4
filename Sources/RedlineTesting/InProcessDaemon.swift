#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Logging
import RedlineCore
import RedlineDaemon
import RedlineIO
import RedlineSync

/// The real daemon in the test process, over a `MemoryPlant` and a `ManualClock`.
///
/// Everything above the plant is the daemon's own code, unchanged: `DaemonCore` builds the
/// engine, arbiter, effects runner, ledger, liveness and a real audit log (in a temporary
/// folder, without fsync), and each request goes in as a line through the same entry point
/// the sockets use (`LineService.answer`: parse, admit, handle, encode). Only the socket is
/// missing: the caller says which uid is asking, instead of `SO_PEERCRED` (its gid is taken to be
/// the uid, with no supplementary groups). No root needed.
///
/// Scans happen when the test calls `scan`, which moves the clock one scan interval and
/// waits for the effects' safe-state writes that scan decided. Nothing here sleeps for time
/// to pass: time is the manual clock.
public final class InProcessDaemon: Sendable {
    public let site: Site
    public let plant: MemoryPlant
    public let clock: ManualClock
    /// The audit log file (JSON lines).
    public let auditPath: String
    private let folder: String
    private let audit: AuditLog
    private let core: DaemonCore
    private let scanTask: Task<Void, Never>
    private let nextId = Lock(0)

    /// Builds and starts the daemon (its scan loop attached to the plant), without a first scan:
    /// call `scan()` to make it ready, as a real daemon is after its first full scan.
    public init(site: Site, limits: AgentLimits = AgentLimits(), clock: ManualClock = ManualClock()) async throws {
        self.site = site
        self.clock = clock
        plant = MemoryPlant(site: site, clock: clock)
        var template = Array("/tmp/rl-inproc-XXXXXX".utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw InProcessError("cannot make a temporary folder: \(String(cString: strerror(errno)))")
        }
        folder = String(cString: made)
        auditPath = folder + "/audit.jsonl"
        audit = try AuditLog(options: AuditLog.Options(path: auditPath, fsync: false))
        let quiet = Logger(label: "redline.inprocess") { _ in SwiftLogNoOpLogHandler() }
        core = DaemonCore(site: site, plant: plant, audit: audit, logger: quiet, notifier: SystemdNotifier(environment: [:]),
                          limits: limits, clock: clock.read)
        let core = core
        scanTask = Task { await core.runScans() }
        while !plant.isRunning { await Task.yield() }
    }

    /// Stops the scan loop, closes the audit log and removes the temporary folder.
    public func stop() async {
        scanTask.cancel()
        await scanTask.value
        audit.close()
        try? FileManager.default.removeItem(atPath: folder)
    }

    /// Ready for writes (after the first full scan).
    public var isReady: Bool { core.isReady }

    // MARK: - Time and scans

    /// `n` full scans, each one scan interval after the last, each followed by its effects' writes.
    public func scan(_ n: Int = 1) async {
        for _ in 0..<n {
            plant.advance(ms: site.timing.scanIntervalMs)
            await plant.scan()
            await settle()
        }
    }

    /// Lets `ms` of plant time pass as it does in a running daemon: a scan every scan interval.
    public func elapse(ms: Int64) async {
        let interval = max(1, site.timing.scanIntervalMs)
        await scan(Int(ms / interval))
        if ms % interval > 0 { plant.advance(ms: ms % interval) }
    }

    /// Moves time without scanning: as if every bus stopped answering, every reading ages (and,
    /// past `stale-after-ms`, goes stale, which the daemon treats as unknown: RL-0). Held
    /// requests and quarantine windows run on this clock too. For time passing in a running
    /// daemon, `elapse`.
    public func advance(ms: Int64) { plant.advance(ms: ms) }

    /// Waits until the safe-state writes already decided are done and every queued audit record
    /// is on disk. Bounded (the daemon's own writes go to memory, so this takes microseconds);
    /// if it were ever not, the test's own checks fail on what did not happen.
    public func settle() async {
        for _ in 0..<100_000 {
            if core.effectWritesInFlight == 0, audit.isIdle { return }
            await Task.yield()
        }
    }

    // MARK: - Requests

    /// A request as `uid` on the agent or operator socket; the whole answer object, as the socket sends it.
    /// A notification (`notification: true`) has no answer: `.null`.
    @discardableResult
    public func call(_ method: String, _ params: JSON? = nil, as uid: UInt32, on socket: DaemonSocket = .agent,
                     notification: Bool = false) async -> JSON {
        var members: [(String, JSON)] = [("jsonrpc", "2.0")]
        if !notification {
            let id = nextId.withLock { n -> Int in n += 1; return n }
            members.append(("id", .number(Double(id))))
        }
        members.append(("method", .string(method)))
        if let params { members.append(("params", params)) }
        return await send(line: Array(JSON.object(members).encoded().utf8), as: uid, on: socket)
    }

    /// A raw request line, answered as the socket would answer it (`.null` for no answer).
    public func send(line: [UInt8], as uid: UInt32, on socket: DaemonSocket = .agent) async -> JSON {
        // pid 0: no process, so the operator socket's group check sees only this gid (not the test process's groups).
        let peer = Peer(pid: 0, uid: uid, gid: uid)
        let answer = await core.answer(line: line, from: peer, on: socket == .agent ? .agent : .operator)
        await settle()
        return answer ?? .null
    }

    /// A request as the named agent of the site.
    @discardableResult
    public func agent(_ name: String, _ method: String, _ params: JSON? = nil) async throws -> JSON {
        guard let a = site.agent(named: name) else { throw InProcessError("no agent \(name) in site \(site.name)") }
        return await call(method, params, as: a.uid)
    }

    /// A request as the site's first operator uid.
    @discardableResult
    public func operatorCall(_ method: String, _ params: JSON? = nil) async throws -> JSON {
        guard let uid = site.operators.compactMap(\.uid).first else { throw InProcessError("site \(site.name) has no operator uid") }
        return await call(method, params, as: uid, on: .operator)
    }

    // MARK: - The audit log

    /// Every durable audit record so far, in order.
    public func auditRecords() async throws -> [JSON] {
        await settle()
        let text = try String(contentsOfFile: auditPath, encoding: .utf8)
        return try text.split(separator: "\n").map { try JSON.parse(Array($0.utf8)) }
    }
}

/// Which of the daemon's two sockets a request comes in on.
public enum DaemonSocket: Sendable { case agent, `operator` }

public struct InProcessError: Error, CustomStringConvertible {
    public var description: String
    public init(_ d: String) { description = d }
}
