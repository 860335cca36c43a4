#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import Foundation
import Logging
import RedlineClock
import RedlineCore
import RedlineMetrics
import RedlineSync

/// `--metrics-textfile PATH`: the daemon's metrics (`MetricsText`, from its own `status`) in
/// node_exporter's textfile format, written after scans (docs/DESIGN.md §8.1).
///
/// - It runs on a thread of its own: rendering and the file's syscalls never run on the safety
///   executor, the arbiter's lane, a bus thread or the cooperative pool, and nothing waits for it.
/// - At most once per interval, and only when a full scan completed since the last file: a
///   stalled scan loop leaves the file (and its mtime) old, which is what an alert should see.
/// - Atomically: `PATH.tmp` in the same folder is written whole, then renamed over `PATH`, so
///   node_exporter never reads half a file. No fsync: the file is rewritten every interval and
///   a crash loses nothing that matters; the disk's flushes belong to the audit log.
/// - A failure (a missing folder, a full disk) is logged when it starts and when it ends, and
///   counted in `status` (`counters.metricsWriteFailures`); it never stops anything.
/// - The file is mode 0644 whatever the umask: node_exporter runs as another user.
/// - On a clean stop the last file says `redline_ready 0`.
final class MetricsTextfile: Sendable {
    let path: String
    let intervalMs: Int
    private let engine: Engine
    private let logger: Logger
    private let wake = DispatchSemaphore(value: 0)
    private let finished = DispatchSemaphore(value: 0)
    private let state = Lock(State())

    private struct State {
        var stopping = false
        var lastError: String?
    }

    init(path: String, intervalMs: Int, engine: Engine, logger: Logger) {
        self.path = path
        self.intervalMs = max(100, intervalMs)
        self.engine = engine
        self.logger = logger
    }

    func start() {
        let thread = Thread { [self] in self.loop() }
        thread.name = "redline-metrics"
        thread.start()
    }

    /// Writes the last file (not ready) and ends the thread; waits at most a second for it
    /// (on a Dispatch thread: a write stuck in the kernel never holds up the cooperative pool).
    func stop() async {
        state.withLock { $0.stopping = true }
        wake.signal()
        let finished = self.finished
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            DispatchQueue.global().async {
                _ = finished.wait(timeout: .now() + 1)
                c.resume()
            }
        }
    }

    private func loop() {
        var writtenAtScan = 0
        while true {
            _ = wake.wait(timeout: .now() + .milliseconds(intervalMs))
            if state.withLock({ $0.stopping }) { break }
            let scans = engine.ledger.state.withLock { $0.counters.scans }
            guard scans > writtenAtScan else { continue }
            writtenAtScan = scans
            let t0 = Monotonic.nanoseconds()
            let bytes = writeOnce(status: engine.status())
            let took = Double(Monotonic.nanoseconds() &- t0) / 1e9
            if let bytes { engine.ledger.state.withLock { $0.metricsLastWrite = (took, bytes) } }
        }
        // The daemon is stopping: the last file says so.
        if case .object(var fields) = engine.status() {
            if let i = fields.firstIndex(where: { $0.0 == "ready" }) { fields[i].1 = .bool(false) }
            _ = writeOnce(status: .object(fields))
        }
        finished.signal()
    }

    /// Renders `status` and replaces the file with it; counts and logs the outcome. Returns the
    /// size written, or nil if the write failed.
    private func writeOnce(status: JSON) -> Int? {
        let bytes = MetricsText.renderBytes(status: status)
        let error = Self.replace(path, with: bytes)
        let (changed, wasFailing) = state.withLock { s -> (Bool, Bool) in
            defer { s.lastError = error }
            return (s.lastError != error, s.lastError != nil)
        }
        engine.ledger.state.withLock { s in
            if error == nil { s.counters.metricsWrites += 1 } else { s.counters.metricsWriteFailures += 1 }
        }
        if let error, changed {
            logger.error("metrics textfile not written (the daemon goes on; retried after the next scan)",
                         metadata: ["path": "\(path)", "error": "\(error)"])
        } else if error == nil, wasFailing {
            logger.notice("metrics textfile written again", metadata: ["path": "\(path)"])
        }
        return error == nil ? bytes.count : nil
    }

    /// Writes `bytes` to `path.tmp` and renames it over `path`; returns why not, or nil.
    static func replace(_ path: String, with bytes: [UInt8]) -> String? {
        let tmp = path + ".tmp"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { return "cannot open \(tmp): \(String(cString: strerror(errno)))" }
        // Readable by node_exporter's user whatever the daemon's umask (the unit's is 0077).
        guard fchmod(fd, 0o644) == 0 else {
            let e = String(cString: strerror(errno))
            close(fd)
            unlink(tmp)
            return "cannot chmod \(tmp): \(e)"
        }
        var off = 0
        while off < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + off, bytes.count - off) }
            if n < 0 {
                if errno == EINTR { continue }
                let e = String(cString: strerror(errno))
                close(fd)
                unlink(tmp)
                return "cannot write \(tmp): \(e)"
            }
            off += n
        }
        guard close(fd) == 0 else {
            let e = String(cString: strerror(errno))
            unlink(tmp)
            return "cannot close \(tmp): \(e)"
        }
        guard rename(tmp, path) == 0 else {
            let e = String(cString: strerror(errno))
            unlink(tmp)
            return "cannot rename \(tmp) to \(path): \(e)"
        }
        return nil
    }
}
