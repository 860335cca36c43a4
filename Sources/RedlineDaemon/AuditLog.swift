#if canImport(Glibc)
import Glibc
#endif
import NIOPosix
import RedlineCore
import Synchronization

/// The append-only, hash-chained audit log (DESIGN §9).
///
/// Records are written by one dedicated thread (never the cooperative pool) and,
/// unless `fsync` is off, are on disk before `append` returns: the daemon writes
/// a decision, waits for it, and only then touches a device. Rotation renames
/// the file and continues the chain in a new one, so `seq` and `prev` never break.
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

    struct State {
        var fd: Int32
        var seq: UInt64
        var lastHash: String
        var size: Int
    }

    public enum OpenError: Error, CustomStringConvertible {
        case io(String)
        case corruptTail(String)
        public var description: String {
            switch self {
            case .io(let m): return m
            case .corruptTail(let m): return m
            }
        }
    }

    public let options: Options
    private let state: Mutex<State>
    private let pool: NIOThreadPool

    /// Opens (or creates) the log and recovers the chain from its last record.
    /// A torn final line (a crash mid-write) is cut off: it was never acknowledged.
    /// A last record that does not verify is refused: someone must look at it.
    public init(options: Options) throws(OpenError) {
        self.options = options
        let (st, note) = try AuditLog.open(path: options.path)
        state = Mutex(st)
        pool = NIOThreadPool(numberOfThreads: 1)
        pool.start()
        if let note { recoveryNote = note } else { recoveryNote = nil }
    }

    /// What recovery did at open, if anything (logged by the daemon and written as a record).
    public let recoveryNote: String?

    public var lastSeq: UInt64 { state.withLock { $0.seq } }

    /// Appends a record on the audit thread; returns its `seq` once written (and fsynced).
    @discardableResult
    public func append(kind: String, _ fields: [(String, JSON)]) async throws -> UInt64 {
        try await pool.runIfActive { try self.appendNow(kind: kind, fields) }
    }

    /// Appends synchronously on the caller's thread (start-up and shutdown only).
    @discardableResult
    public func appendNow(kind: String, _ fields: [(String, JSON)]) throws -> UInt64 {
        try state.withLock { st in
            let seq = st.seq + 1
            let rec = AuditChain.seal(seq: seq, time: AuditLog.timestamp(), kind: kind, fields: fields, prev: st.lastHash)
            let line = Array((rec.encoded() + "\n").utf8)
            try AuditLog.writeAll(st.fd, line)
            if options.fsync, fdatasync(st.fd) != 0 { throw OpenError.io("fdatasync: \(String(cString: strerror(errno)))") }
            st.seq = seq
            st.lastHash = rec["hash"]?.stringValue ?? st.lastHash
            st.size += line.count
            if st.size >= options.maxBytes { try rotate(&st) }
            return seq
        }
    }

    public func close() {
        try? pool.syncShutdownGracefully()
        state.withLock { st in
            if st.fd >= 0 { fsync(st.fd); Glibc.close(st.fd); st.fd = -1 }
        }
    }

    private func rotate(_ st: inout State) throws {
        fsync(st.fd)
        Glibc.close(st.fd)
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
        guard size > 0 else { return (State(fd: fd, seq: 0, lastHash: AuditChain.genesis, size: 0), nil) }

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
        guard size > 0 else { return (State(fd: fd, seq: 0, lastHash: AuditChain.genesis, size: 0), note) }
        let body = tail.dropLast()
        let start = body.lastIndex(of: 0x0A).map { $0 + 1 } ?? body.startIndex
        let lastLine = Array(body[start...])
        var v = AuditChain.Verifier()
        v.feed(lastLine)
        guard case .ok(_, let seq, let hash) = v.verdict else {
            Glibc.close(fd)
            throw .corruptTail("\(path): the last record does not verify (\(v.verdict)); move the file aside after investigating")
        }
        return (State(fd: fd, seq: seq, lastHash: hash, size: size), note)
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
