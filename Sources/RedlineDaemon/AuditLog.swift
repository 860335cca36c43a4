#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import Foundation
import RedlineCore
import Synchronization

/// The append-only, hash-chained audit log (docs/DESIGN.md §9).
///
/// Records are sealed (seq, prev, hash) in the order `append` is called, and written
/// by one dedicated thread (never the cooperative pool) with group commit: the thread
/// takes every record queued since its last write, writes them with one `write` and
/// makes them durable with one `fdatasync`. So a flood of records from one agent costs
/// one fsync per batch, not one each, and never makes the log the bottleneck of anyone
/// else's decision. Unless `fsync` is off, a record is on disk before `append` returns:
/// the daemon writes a decision, waits for it, and only then touches a device.
///
/// A failed write or fsync leaves nothing behind: the file is cut back to its last
/// durable length, every record sealed after that point is failed to its waiter, and
/// the chain continues from the last durable record. Rotation renames the file and
/// continues the chain in a new one, so `seq` and `prev` never break.
public final class AuditLog: Sendable {
    public struct Options: Sendable {
        public var path: String
        public var fsync: Bool = true
        /// Rotate when the file reaches this size.
        public var maxBytes: Int = 64 * 1024 * 1024
        /// Rotated files kept (`audit.jsonl.1` is the newest).
        public var keep: Int = 8
        public init(path: String, fsync: Bool = true, maxBytes: Int = 64 * 1024 * 1024, keep: Int = 8) {
            self.path = path
            self.fsync = fsync
            self.maxBytes = maxBytes
            self.keep = keep
        }
    }

    typealias Waiter = @Sendable (Result<UInt64, any Error>) -> Void

    struct Pending {
        var seq: UInt64
        var bytes: [UInt8]
        var hash: String
        var waiter: Waiter?
        /// The sealed record, for the observer (operator events) once it is durable.
        var record: JSON
    }

    struct State {
        var fd: Int32
        /// The last sealed record (queued or written).
        var seq: UInt64
        var lastHash: String
        /// The last durable record and the file's length after it.
        var durableSeq: UInt64
        var durableHash: String
        var size: Int
        var pending: [Pending] = []
        var closed = false
        var writerDone = false
        /// Batches written and records in them (for status and benchmarks).
        var batches = 0
        var records = 0
        /// The last write failure while it lasts (cleared by the next durable batch), and records lost to it.
        var failure: String?
        var lostRecords = 0
    }

    public enum OpenError: Error, CustomStringConvertible {
        case io(String)
        case corruptTail(String)
        case closed
        public var description: String {
            switch self {
            case .io(let m): return m
            case .corruptTail(let m): return m
            case .closed: return "the audit log is closed"
            }
        }
    }

    public let options: Options
    private let state: Mutex<State>
    /// Told of every batch of records once it is durable, on the writer thread; must not block.
    private let observer = Mutex<(@Sendable ([JSON]) -> Void)?>(nil)

    /// Sets the one observer of durable records (the daemon's operator events). It is called on
    /// the audit thread after each successful write, with the records in seq order, and must
    /// return at once: the log never waits for anyone it tells.
    public func observeDurable(_ f: @escaping @Sendable ([JSON]) -> Void) {
        observer.withLock { $0 = f }
    }
    private let wake = DispatchSemaphore(value: 0)
    private let finished = DispatchSemaphore(value: 0)

    /// Opens (or creates) the log and recovers the chain from its last record.
    /// A torn final line (a crash mid-write) is cut off: it was never acknowledged.
    /// A last record that does not verify is refused: someone must look at it.
    public init(options: Options) throws(OpenError) {
        self.options = options
        let (st, note) = try AuditLog.open(path: options.path)
        state = Mutex(st)
        if let note { recoveryNote = note } else { recoveryNote = nil }
        let thread = Thread { [self] in self.writerLoop() }
        thread.name = "redline-audit"
        thread.start()
    }

    /// What recovery did at open, if anything (logged by the daemon and written as a record).
    public let recoveryNote: String?

    /// The last sealed record's seq.
    public var lastSeq: UInt64 { state.withLock { $0.seq } }

    /// Write batches so far and the records they held (group commit at work).
    public var batchStats: (batches: Int, records: Int) { state.withLock { ($0.batches, $0.records) } }

    /// Why the log cannot be written right now (nil while it can), and how many records
    /// failures have refused so far: `status` shows both, so operators see why writes fail.
    public var health: (failure: String?, lostRecords: Int) { state.withLock { ($0.failure, $0.lostRecords) } }

    /// Appends a record; returns its `seq` once written (and fsynced).
    @discardableResult
    public func append(kind: String, _ fields: [(String, JSON)]) async throws -> UInt64 {
        try await withCheckedThrowingContinuation { (c: CheckedContinuation<UInt64, any Error>) in
            enqueue(kind: kind, fields) { c.resume(with: $0) }
        }
    }

    /// Seals a record and queues it without waiting for it: for the daemon's own
    /// records (effects), which must never wait for the disk. `done`, if given, is
    /// told the outcome on the audit thread.
    public func submit(kind: String, _ fields: [(String, JSON)], done: (@Sendable (Result<UInt64, any Error>) -> Void)? = nil) {
        enqueue(kind: kind, fields, done)
    }

    /// Appends and waits on the caller's thread (start-up and tests only: it blocks).
    @discardableResult
    public func appendNow(kind: String, _ fields: [(String, JSON)]) throws -> UInt64 {
        let sem = DispatchSemaphore(value: 0)
        let box = Mutex<Result<UInt64, any Error>?>(nil)
        enqueue(kind: kind, fields) { r in
            box.withLock { $0 = r }
            sem.signal()
        }
        sem.wait()
        return try box.withLock { $0! }.get()
    }

    private func enqueue(kind: String, _ fields: [(String, JSON)], _ waiter: Waiter?) {
        let queued = state.withLock { st -> Bool in
            guard !st.closed else { return false }
            let seq = st.seq + 1
            let rec = AuditChain.seal(seq: seq, time: AuditLog.timestamp(), kind: kind, fields: fields, prev: st.lastHash)
            let hash = rec["hash"]?.stringValue ?? st.lastHash
            st.pending.append(Pending(seq: seq, bytes: Array((rec.encoded() + "\n").utf8), hash: hash, waiter: waiter, record: rec))
            st.seq = seq
            st.lastHash = hash
            return true
        }
        if queued { wake.signal() } else { waiter?(.failure(OpenError.closed)) }
    }

    private func writerLoop() {
        while true {
            wake.wait()
            let (batch, fd, closing) = state.withLock { st -> ([Pending], Int32, Bool) in
                let b = st.pending
                st.pending.removeAll(keepingCapacity: true)
                return (b, st.fd, st.closed)
            }
            if !batch.isEmpty { writeBatch(batch, fd: fd) }
            if closing && state.withLock({ $0.pending.isEmpty }) { break }
        }
        state.withLock { $0.writerDone = true }
        finished.signal()
    }

    /// Writes one batch with one write and one fdatasync; on failure cuts the file back.
    private func writeBatch(_ batch: [Pending], fd: Int32) {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(batch.reduce(0) { $0 + $1.bytes.count })
        for p in batch { bytes += p.bytes }
        var failure: (any Error)?
        do {
            try AuditLog.writeAll(fd, bytes)
            if options.fsync, fdatasync(fd) != 0 { throw OpenError.io("fdatasync: \(String(cString: strerror(errno)))") }
        } catch {
            failure = error
        }
        if let failure {
            // Nothing half-written stays: cut back to the last durable length, and fail every
            // record sealed after it (they chain onto records that are not on disk).
            let dropped = state.withLock { st -> [Pending] in
                if ftruncate(st.fd, off_t(st.size)) == 0 { _ = fdatasync(st.fd) }
                st.seq = st.durableSeq
                st.lastHash = st.durableHash
                let rest = st.pending
                st.pending.removeAll()
                st.failure = "\(failure)"
                st.lostRecords += batch.count + rest.count
                return rest
            }
            for p in batch + dropped { p.waiter?(.failure(failure)) }
            return
        }
        var rotateError: (any Error)?
        state.withLock { st in
            st.durableSeq = batch.last!.seq
            st.durableHash = batch.last!.hash
            st.failure = nil
            st.size += bytes.count
            st.batches += 1
            st.records += batch.count
            if st.size >= options.maxBytes {
                do { try rotate(&st) } catch { rotateError = error }
            }
        }
        _ = rotateError  // the records are durable; a failed rotation keeps writing the current file
        for p in batch { p.waiter?(.success(p.seq)) }
        if let tell = observer.withLock({ $0 }) { tell(batch.map(\.record)) }
    }

    public func close() {
        let already = state.withLock { st -> Bool in
            defer { st.closed = true }
            return st.closed
        }
        guard !already else { return }
        wake.signal()
        finished.wait()
        state.withLock { st in
            if st.fd >= 0 { fsync(st.fd); Glibc.close(st.fd); st.fd = -1 }
        }
    }

    private func rotate(_ st: inout State) throws {
        fsync(st.fd)
        Glibc.close(st.fd)
        st.fd = -1
        let p = options.path
        if options.keep > 0 {
            unlink("\(p).\(options.keep)")
            if options.keep > 1 {
                for i in stride(from: options.keep - 1, through: 1, by: -1) { rename("\(p).\(i)", "\(p).\(i + 1)") }
            }
            rename(p, "\(p).1")
        } else {
            unlink(p)
        }
        st.fd = Glibc.open(p, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o640)
        guard st.fd >= 0 else { throw OpenError.io("cannot open \(p): \(String(cString: strerror(errno)))") }
        st.size = 0
    }

    static func writeAll(_ fd: Int32, _ bytes: [UInt8]) throws {
        var off = 0
        while off < bytes.count {
            let n = bytes[off...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw OpenError.io("audit write failed: \(String(cString: strerror(errno)))")
            }
            off += n
        }
    }

    private static func open(path: String) throws(OpenError) -> (State, String?) {
        let fd = Glibc.open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0o640)
        guard fd >= 0 else { throw .io("cannot open audit log \(path): \(String(cString: strerror(errno)))") }
        var st = stat()
        fstat(fd, &st)
        var size = Int(st.st_size)
        var note: String?
        guard size > 0 else { return (State(fd: fd, seq: 0, lastHash: AuditChain.genesis, durableSeq: 0, durableHash: AuditChain.genesis, size: 0), nil) }

        // Read the tail: enough for the last complete record.
        let window = min(size, 1 << 20)
        var tail = [UInt8](repeating: 0, count: window)
        let n = tail.withUnsafeMutableBytes { pread(fd, $0.baseAddress, window, off_t(size - window)) }
        guard n == window else { Glibc.close(fd); throw .io("cannot read audit log \(path)") }
        if tail.last != 0x0A {
            // A torn final line: cut it off.
            let cut = tail.lastIndex(of: 0x0A).map { window - $0 - 1 } ?? window
            guard cut < window || window == size else { Glibc.close(fd); throw .corruptTail("\(path): last record longer than 1 MiB and unterminated") }
            size -= cut
            ftruncate(fd, off_t(size))
            fsync(fd)
            tail.removeLast(cut)
            note = "cut a torn final line of \(cut) bytes (written during a crash, never acknowledged)"
        }
        guard size > 0 else { return (State(fd: fd, seq: 0, lastHash: AuditChain.genesis, durableSeq: 0, durableHash: AuditChain.genesis, size: 0), note) }
        let body = tail.dropLast()
        let start = body.lastIndex(of: 0x0A).map { $0 + 1 } ?? body.startIndex
        let lastLine = Array(body[start...])
        var v = AuditChain.Verifier()
        v.feed(lastLine)
        guard case .ok(_, let seq, let hash) = v.verdict else {
            Glibc.close(fd)
            throw .corruptTail("\(path): the last record does not verify (\(v.verdict)); move the file aside after investigating")
        }
        return (State(fd: fd, seq: seq, lastHash: hash, durableSeq: seq, durableHash: hash, size: size), note)
    }

    /// UTC time as ISO 8601 with milliseconds.
    static func timestamp() -> String {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        var t = ts.tv_sec
        var tmv = tm()
        gmtime_r(&t, &tmv)
        func pad(_ v: Int32, _ w: Int) -> String {
            let s = String(v)
            return String(repeating: "0", count: max(0, w - s.count)) + s
        }
        return "\(pad(tmv.tm_year + 1900, 4))-\(pad(tmv.tm_mon + 1, 2))-\(pad(tmv.tm_mday, 2))T"
            + "\(pad(tmv.tm_hour, 2)):\(pad(tmv.tm_min, 2)):\(pad(tmv.tm_sec, 2)).\(pad(Int32(ts.tv_nsec / 1_000_000), 3))Z"
    }
}
