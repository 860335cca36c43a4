#if canImport(Glibc)
import Glibc
#endif
import Crypto
import Dispatch
import Foundation
import RedlineClock
import RedlineCore
import RedlineSync

/// The append-only, hash-chained audit log (docs/DESIGN.md §9).
///
/// Records are queued in the order `append` is called and sealed (seq, prev, hash) and
/// written by one dedicated thread (never the cooperative pool) with group commit: the
/// thread takes every record queued since its last write, writes them with one `write` and
/// makes them durable with one `fdatasync`. Unless `fsync` is off, a record is on disk
/// before `append` returns: the daemon writes a decision, waits for it, and only then
/// touches a device.
///
/// Faults (issue 14):
/// - A failed write or fsync leaves nothing behind: the file is cut back to its last
///   durable length (and that cut is synced) before anything else is written; if the cut
///   itself fails, nothing is written until it succeeds. The records of the failed batch are
///   failed to their waiters and their seqs are spent: no seq is ever sealed twice.
///   We cut back rather than exit (as PostgreSQL does on a failed fsync) because the file is
///   append-only: pages the kernel may have dropped belong to the batch that is cut away,
///   and everything before it was synced by an earlier, successful fdatasync.
/// - The first batch written after a failure begins with a `gap` record: the seqs spent,
///   the records lost by kind, decisions by outcome, effects by id, and the time span.
/// - Rotation checks every unlink, rename and open, syncs the directory, and on any failure
///   keeps writing the file it had.
/// - Opening verifies the whole current file and compares it with the state directory's
///   last checkpoint (`audit.head`): a broken record, or fewer records than the head says,
///   refuses start-up (unless the operator accepts a missing log, which a `gap` records).
/// - Checkpoints (`AuditCheckpoint`, Ed25519) are signed every N records and T seconds.
public final class AuditLog: Sendable {
    public struct Checkpointing: Sendable {
        /// `redline/<site>`.
        public var origin: String
        /// The raw Ed25519 private key (swift-crypto's key types are not Sendable).
        public var keyBytes: [UInt8]
        public var key: Curve25519.Signing.PrivateKey? { try? Curve25519.Signing.PrivateKey(rawRepresentation: keyBytes) }
        public var everyRecords: Int
        public var everySeconds: Double
        /// Told each new checkpoint on the audit thread (the daemon logs it).
        public var onCheckpoint: @Sendable (AuditCheckpoint) -> Void
        public init(origin: String, key: Curve25519.Signing.PrivateKey, everyRecords: Int = 1000, everySeconds: Double = 60,
                    onCheckpoint: @escaping @Sendable (AuditCheckpoint) -> Void = { _ in }) {
            self.origin = origin
            keyBytes = Array(key.rawRepresentation)
            self.everyRecords = max(1, everyRecords)
            self.everySeconds = max(0.05, everySeconds)
            self.onCheckpoint = onCheckpoint
        }
    }

    public struct Options: Sendable {
        public var path: String
        public var fsync: Bool = true
        /// Rotate when the file reaches this size.
        public var maxBytes: Int = 64 * 1024 * 1024
        /// Rotated files kept (`audit.jsonl.1` is the newest).
        public var keep: Int = 8
        public var checkpoints: Checkpointing?
        /// Start even if the log holds fewer records than the state directory's head says
        /// (the operator's explicit choice; a `gap` record says what is missing).
        public var acceptMissing = false
        /// Told warnings that are not failures (retention, a failed rotation, the head file).
        public var onWarning: @Sendable (String) -> Void = { _ in }
        public init(path: String, fsync: Bool = true, maxBytes: Int = 64 * 1024 * 1024, keep: Int = 8,
                    checkpoints: Checkpointing? = nil, acceptMissing: Bool = false,
                    onWarning: @escaping @Sendable (String) -> Void = { _ in }) {
            self.path = path
            self.fsync = fsync
            self.maxBytes = maxBytes
            self.keep = keep
            self.checkpoints = checkpoints
            self.acceptMissing = acceptMissing
            self.onWarning = onWarning
        }

        /// The folder holding the log, its key and its head.
        public var stateDir: String { AuditLog.dirname(path) }
        public var headPath: String { stateDir + "/audit.head" }
        /// The last checkpoint a witness stored ("SEQ HASH"): retention warnings survive a restart.
        public var witnessedPath: String { stateDir + "/audit.witnessed" }
    }

    typealias Waiter = @Sendable (Result<UInt64, any Error>) -> Void

    struct Entry {
        var kind: String
        var fields: [(String, JSON)]
        var time: String
        var waiter: Waiter?
    }

    /// What went unrecorded since the last durable record.
    struct Gap {
        var from: UInt64
        var records = 0
        /// Earlier attempts to write this gap record, which failed too (each spent a seq).
        var failedGapRecords = 0
        var kinds: [String: Int] = [:]
        var decisions: [String: Int] = [:]
        var effects: [String: Int] = [:]
        var firstTime: String?
        var lastTime: String?
        var reason: String

        mutating func count(_ e: Entry) {
            records += 1
            kinds[e.kind, default: 0] += 1
            if e.kind == "decision" { decisions[e.fields.first { $0.0 == "outcome" }?.1.stringValue ?? "?", default: 0] += 1 }
            if e.kind == "effect" || e.kind.hasPrefix("effect-") {
                effects[e.fields.first { $0.0 == "effect" }?.1.stringValue ?? "?", default: 0] += 1
            }
            if firstTime == nil { firstTime = e.time }
            lastTime = e.time
        }

        func fields(to: UInt64) -> [(String, JSON)] {
            func tally(_ d: [String: Int]) -> JSON { .object(d.sorted { $0.key < $1.key }.map { ($0.key, .number(Double($0.value))) }) }
            return [("skipped", .obj([("from", .number(Double(from))), ("to", .number(Double(to)))])),
                    ("reason", .string(reason)), ("records", .number(Double(records))),
                    ("failedGapRecords", .number(Double(failedGapRecords))),
                    ("kinds", tally(kinds)), ("decisions", tally(decisions)), ("effects", tally(effects)),
                    ("firstTime", firstTime.map { .string($0) } ?? .null), ("lastTime", lastTime.map { .string($0) } ?? .null)]
        }
    }

    struct State {
        var fd: Int32
        /// The next seq to seal (seqs below it are spent, written or not).
        var nextSeq: UInt64
        /// The last durable record and the file's length after it.
        var durableSeq: UInt64
        var durableHash: String
        var size: Int
        var pending: [Entry] = []
        /// Records queued, and records the writer has finished with (written or refused).
        var enqueued = 0
        var processed = 0
        var closed = false
        var writerDone = false
        /// Batches written and records in them (for status and benchmarks).
        var batches = 0
        var records = 0
        /// How long the last batch's fdatasync took, in seconds (nil before the first, or with fsync off).
        var lastFsyncSeconds: Double?
        /// The last write failure while it lasts (cleared by the next durable batch), and records lost to it.
        var failure: String?
        var lostRecords = 0
        /// Records not written since the last durable one (written as a `gap` record once writing works).
        var gap: Gap?
        /// The file may hold bytes past `size` (a cut-back that failed): cut again before writing.
        var dirtyTail = false
        var rotationError: String?
        var checkpoint: AuditCheckpoint?
        var checkpointAt: Double = 0
        var recentCheckpoints: [UInt64: String] = [:]
        var headError: String?
        var witnessedSeq: UInt64 = 0
        var witnessedHash = ""
        /// A witness covered more since `audit.witnessed` was last written (the audit thread writes it).
        var witnessedDirty = false
        /// The last seq of the file the next rotation removes, if a witness has not covered it.
        var unwitnessedNext: (file: String, lastSeq: UInt64)?
        var unwitnessedRemoved = 0
    }

    public enum OpenError: Error, CustomStringConvertible {
        case io(String)
        case corruptTail(String)
        case broken(String)
        case missing(String)
        case closed
        public var description: String {
            switch self {
            case .io(let m), .corruptTail(let m), .broken(let m), .missing(let m): return m
            case .closed: return "the audit log is closed"
            }
        }
    }

    public let options: Options
    private let state: Lock<State>
    /// Told of every batch of records once it is durable, on the writer thread; must not block.
    private let observer = Lock<(@Sendable ([JSON]) -> Void)?>(nil)

    /// Sets the one observer of durable records (the daemon's operator events). It is called on
    /// the audit thread after each successful write, with the records in seq order, and must
    /// return at once: the log never waits for anyone it tells.
    public func observeDurable(_ f: @escaping @Sendable ([JSON]) -> Void) {
        observer.withLock { $0 = f }
    }
    private let wake = DispatchSemaphore(value: 0)
    private let finished = DispatchSemaphore(value: 0)

    /// What recovery did at open, if anything (logged by the daemon and written in the start record).
    public let recoveryNote: String?
    /// What the state directory said was missing, when the operator accepted it (nil otherwise).
    public let acceptedMissing: String?

    /// Opens (or creates) the log, verifies the whole current file and recovers the chain.
    /// A torn final line (a crash mid-write) is cut off: it was never acknowledged.
    /// Anything else that does not verify is refused, with the seq and the repair to run.
    public init(options: Options) throws(OpenError) {
        self.options = options
        let opened = try AuditLog.open(options)
        state = Lock(opened.state)
        recoveryNote = opened.note
        acceptedMissing = opened.accepted
        let thread = Thread { [self] in self.writerLoop() }
        thread.name = "redline-audit"
        thread.start()
    }

    /// The last sealed seq (written or spent).
    public var lastSeq: UInt64 { state.withLock { $0.nextSeq - 1 } }

    /// Every record queued so far has been written (or refused): nothing is on its way to the disk.
    package var isIdle: Bool { state.withLock { $0.enqueued == $0.processed } }

    /// The last durable record's seq.
    public var durableSeq: UInt64 { state.withLock { $0.durableSeq } }

    /// Write batches so far and the records they held (group commit at work).
    public var batchStats: (batches: Int, records: Int) { state.withLock { ($0.batches, $0.records) } }

    /// Why the log cannot be written right now (nil while it can), and how many records
    /// failures have refused so far: `status` shows both, so operators see why writes fail.
    public var health: (failure: String?, lostRecords: Int) { state.withLock { ($0.failure, $0.lostRecords) } }

    /// The latest signed checkpoint.
    public var latestCheckpoint: AuditCheckpoint? { state.withLock { $0.checkpoint } }

    /// The key checkpoints verify with.
    public var verifierKey: AuditKeys.VerifierKey? {
        options.checkpoints.flatMap { c in c.key.map { AuditKeys.VerifierKey(origin: c.origin, key: $0.publicKey) } }
    }

    /// The audit part of `status`.
    public var statusJSON: JSON {
        state.withLock { st in
            var out: [(String, JSON?)] = [
                ("writable", .bool(st.failure == nil)), ("error", st.failure.map { .string($0) } ?? .null),
                ("refusedRecords", .number(Double(st.lostRecords))),
                ("seq", .number(Double(st.durableSeq))),
                ("lastFsyncS", st.lastFsyncSeconds.map { .number($0) } ?? .null),
            ]
            if let g = st.gap {
                out.append(("unrecorded", .obj([("fromSeq", .number(Double(g.from))), ("records", .number(Double(g.records))),
                                                ("since", g.firstTime.map { .string($0) } ?? .null)])))
            }
            out.append(("rotationError", st.rotationError.map { .string($0) }))
            out.append(("headError", st.headError.map { .string($0) }))
            if let cp = st.checkpoint {
                out.append(("checkpoint", .obj([("seq", .number(Double(cp.seq))), ("time", .string(cp.time)), ("keyId", .string(cp.keyId))])))
            }
            out.append(("witnessedSeq", .number(Double(st.witnessedSeq))))
            if let u = st.unwitnessedNext {
                out.append(("retentionWarning", .string(AuditLog.retentionWarning(u.file, u.lastSeq, st.witnessedSeq))))
            }
            out.append(("unwitnessedRemoved", .number(Double(st.unwitnessedRemoved))))
            return .obj(out)
        }
    }

    static func retentionWarning(_ file: String, _ last: UInt64, _ witnessed: UInt64) -> String {
        "\(file) (records up to seq \(last)) will be removed at the next rotation and no witness has covered it "
            + "(witnessed up to seq \(witnessed)): run `redlinectl audit witness` or copy it away"
    }

    /// A witness stored the checkpoint at `seq` with `hash`: records up to it may be removed by rotation.
    /// Refused (false) unless it is one of this daemon's checkpoints.
    public func witnessed(seq: UInt64, hash: String) -> Bool {
        state.withLock { st in
            guard st.recentCheckpoints[seq] == hash || (st.checkpoint?.seq == seq && st.checkpoint?.hash == hash) else { return false }
            if seq > st.witnessedSeq {
                st.witnessedSeq = seq
                st.witnessedHash = hash
                st.witnessedDirty = true
                wake.signal()
            }
            if let u = st.unwitnessedNext, u.lastSeq <= st.witnessedSeq { st.unwitnessedNext = nil }
            return true
        }
    }

    /// Writes `audit.witnessed` (on the audit thread: it syncs). A failure is told and retried at the next wake.
    private func persistWitnessed() {
        guard let (seq, hash) = state.withLock({ st -> (UInt64, String)? in
            guard st.witnessedDirty else { return nil }
            st.witnessedDirty = false
            return (st.witnessedSeq, st.witnessedHash)
        }) else { return }
        do { try AuditLog.writeDurably(options.witnessedPath, "\(seq) \(hash)\n", mode: 0o640) } catch {
            state.withLock { $0.witnessedDirty = true }
            options.onWarning("cannot write \(options.witnessedPath): \(error) (retention warnings may repeat after a restart)")
        }
    }

    /// Reads `audit.witnessed`. Anything unreadable, or beyond the log's last seq, counts as
    /// nothing witnessed: the cost of a wrong answer here is a warning too many, never one too few.
    static func readWitnessed(_ path: String, lastSeq: UInt64) -> (seq: UInt64, hash: String)? {
        guard let text = readFile(path).map({ String(decoding: $0, as: UTF8.self) }) else { return nil }
        let parts = text.split(whereSeparator: { $0 == " " || $0 == "\n" })
        guard parts.count == 2, let seq = UInt64(parts[0]), seq <= lastSeq,
              parts[1].count == 64, parts[1].allSatisfy(\.isHexDigit) else { return nil }
        return (seq, String(parts[1]))
    }

    /// Appends a record; returns its `seq` once written (and fsynced).
    @discardableResult
    public func append(kind: String, _ fields: [(String, JSON)]) async throws -> UInt64 {
        try await withCheckedThrowingContinuation { (c: CheckedContinuation<UInt64, any Error>) in
            enqueue(kind: kind, fields) { c.resume(with: $0) }
        }
    }

    /// Queues a record without waiting for it: for the daemon's own records (effects),
    /// which must never wait for the disk. `done`, if given, is told the outcome on the audit thread.
    public func submit(kind: String, _ fields: [(String, JSON)], done: (@Sendable (Result<UInt64, any Error>) -> Void)? = nil) {
        enqueue(kind: kind, fields, done)
    }

    /// Appends and waits on the caller's thread (start-up and tests only: it blocks).
    @discardableResult
    public func appendNow(kind: String, _ fields: [(String, JSON)]) throws -> UInt64 {
        let sem = DispatchSemaphore(value: 0)
        let box = Lock<Result<UInt64, any Error>?>(nil)
        enqueue(kind: kind, fields) { r in
            box.withLock { $0 = r }
            sem.signal()
        }
        sem.wait()
        return try box.withLock { $0! }.get()
    }

    private func enqueue(kind: String, _ fields: [(String, JSON)], _ waiter: Waiter?) {
        let e = Entry(kind: kind, fields: fields, time: AuditLog.timestamp(), waiter: waiter)
        let queued = state.withLock { st -> Bool in
            guard !st.closed else { return false }
            st.pending.append(e)
            st.enqueued += 1
            return true
        }
        if queued { wake.signal() } else { waiter?(.failure(OpenError.closed)) }
    }

    private func writerLoop() {
        while true {
            if let cp = options.checkpoints { _ = wake.wait(timeout: .now() + cp.everySeconds / 2) } else { wake.wait() }
            let (batch, closing) = state.withLock { st -> ([Entry], Bool) in
                let b = st.pending
                st.pending.removeAll(keepingCapacity: true)
                return (b, st.closed)
            }
            if !batch.isEmpty {
                writeBatch(batch)
                state.withLock { $0.processed += batch.count }
            }
            maybeCheckpoint(force: false)
            persistWitnessed()
            if closing && state.withLock({ $0.pending.isEmpty }) { break }
        }
        maybeCheckpoint(force: true)
        persistWitnessed()
        state.withLock { $0.writerDone = true }
        finished.signal()
    }

    /// Seals and writes one batch (after a `gap` record if records went unwritten) with one
    /// write and one fdatasync; on failure cuts the file back and spends the batch's seqs.
    private func writeBatch(_ batch: [Entry]) {
        let (fd, start, prevHash, gap, size, dirty) = state.withLock { st in
            (st.fd, st.nextSeq, st.durableHash, st.gap, st.size, st.dirtyTail)
        }
        var seq = start
        var prev = prevHash
        var bytes: [UInt8] = []
        var seqs: [UInt64] = []
        var sealed: [JSON] = []
        var gapWritten = false
        func seal(_ kind: String, _ fields: [(String, JSON)], _ time: String) {
            let rec = AuditChain.seal(seq: seq, time: time, kind: kind, fields: fields, prev: prev)
            prev = rec["hash"]?.stringValue ?? prev
            sealed.append(rec)
            bytes += Array((rec.encoded() + "\n").utf8)
            seqs.append(seq)
            seq += 1
        }
        if let gap, seq > gap.from {
            seal("gap", gap.fields(to: seq - 1), AuditLog.timestamp())
            gapWritten = true
        }
        for e in batch { seal(e.kind, e.fields, e.time) }
        var failure: (any Error)?
        do {
            if dirty {
                guard ftruncate(fd, off_t(size)) == 0, fdatasync(fd) == 0 else {
                    throw OpenError.io("cannot cut the audit log back to its last good length: \(String(cString: strerror(errno)))")
                }
                state.withLock { $0.dirtyTail = false }
            }
            try AuditLog.writeAll(fd, bytes, at: size)
            if options.fsync {
                let t0 = Monotonic.nanoseconds()
                let rc = fdatasync(fd)
                let err = errno
                let took = Double(Monotonic.nanoseconds() &- t0) / 1e9
                state.withLock { $0.lastFsyncSeconds = took }
                if rc != 0 { throw OpenError.io("audit fdatasync failed: \(String(cString: strerror(err)))") }
            }
        } catch {
            failure = error
        }
        if let failure {
            // Nothing half-written stays: cut back to the last durable length (synced) before anything else
            // is written. Every seq sealed here is spent; the next durable batch opens with a `gap` record.
            let cut = ftruncate(fd, off_t(size)) == 0 && fdatasync(fd) == 0
            state.withLock { st in
                st.dirtyTail = !cut
                st.nextSeq = seq
                st.failure = "\(failure)"
                st.lostRecords += batch.count
                var g = st.gap ?? Gap(from: start, reason: "\(failure)")
                if gapWritten { g.failedGapRecords += 1 }
                for e in batch { g.count(e) }
                st.gap = g
            }
            for e in batch { e.waiter?(.failure(failure)) }
            return
        }
        state.withLock { st in
            st.nextSeq = seq
            st.durableSeq = seq - 1
            st.durableHash = prev
            st.failure = nil
            if gapWritten { st.gap = nil }
            st.size += bytes.count
            st.batches += 1
            st.records += batch.count
        }
        // Operator events: the durable records (a gap record included), in seq order; never waits.
        // Told before the waiters resume, so that whatever an append's caller does next (answer
        // the agent "held", say) already finds its record in the daemon's recent records.
        if let tell = observer.withLock({ $0 }) { tell(sealed) }
        let offset = gapWritten ? 1 : 0
        for (i, e) in batch.enumerated() { e.waiter?(.success(seqs[i + offset])) }
        if state.withLock({ $0.size }) >= options.maxBytes {
            // The records are durable; a failed rotation keeps writing the current file (and says so).
            do {
                try rotate()
                state.withLock { $0.rotationError = nil }
            } catch {
                state.withLock { $0.rotationError = "\(error)" }
                options.onWarning("audit rotation failed, still writing \(options.path): \(error)")
            }
        }
    }

    /// Signs a checkpoint when N records or T seconds have passed since the last (or at once for the first).
    private func maybeCheckpoint(force: Bool) {
        guard let cfg = options.checkpoints else { return }
        let now = Monotonic.seconds()
        let due = state.withLock { st -> (UInt64, String)? in
            guard st.durableSeq > 0, st.durableSeq > (st.checkpoint?.seq ?? 0) else { return nil }
            guard let last = st.checkpoint, !force else { return (st.durableSeq, st.durableHash) }
            let n = st.durableSeq - last.seq
            return n >= UInt64(cfg.everyRecords) || now - st.checkpointAt >= cfg.everySeconds ? (st.durableSeq, st.durableHash) : nil
        }
        guard let (seq, hash) = due else { return }
        guard let key = cfg.key, let cp = try? AuditCheckpoint.sign(origin: cfg.origin, seq: seq, hash: hash, time: AuditLog.timestamp(), key: key) else {
            options.onWarning("cannot sign an audit checkpoint at seq \(seq)")
            return
        }
        let headError: String?
        do { try AuditLog.writeDurably(options.headPath, cp.text, mode: 0o644); headError = nil } catch { headError = "\(error)" }
        state.withLock { st in
            st.checkpoint = cp
            st.checkpointAt = now
            st.recentCheckpoints[seq] = hash
            if st.recentCheckpoints.count > 256, let m = st.recentCheckpoints.keys.min() { st.recentCheckpoints[m] = nil }
            st.headError = headError
        }
        if let headError { options.onWarning("cannot write \(options.headPath): \(headError)") }
        cfg.onCheckpoint(cp)
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

    /// Rotation: `audit.jsonl.N-1` → `.N` … `audit.jsonl` → `.1`, a new `audit.jsonl`, the directory synced.
    /// Every step is checked; until the new file is open the old descriptor keeps the log writable.
    private func rotate() throws(OpenError) {
        let p = options.path
        let fd = state.withLock { $0.fd }
        guard fsync(fd) == 0 else { throw .io("fsync before rotation: \(AuditLog.errorText())") }
        let (witnessed, _) = state.withLock { ($0.witnessedSeq, 0) }
        if options.keep > 0 {
            let oldest = "\(p).\(options.keep)"
            if let last = AuditLog.lastSeq(ofFile: oldest), last > witnessed {
                state.withLock { $0.unwitnessedRemoved += 1 }
                options.onWarning("removing \(oldest) (records up to seq \(last)), which no witness has covered (witnessed up to seq \(witnessed))")
            }
            if unlink(oldest) != 0 && errno != ENOENT { throw .io("cannot remove \(oldest): \(AuditLog.errorText())") }
            if options.keep > 1 {
                for i in stride(from: options.keep - 1, through: 1, by: -1) {
                    if rename("\(p).\(i)", "\(p).\(i + 1)") != 0 && errno != ENOENT {
                        throw .io("cannot rename \(p).\(i) to \(p).\(i + 1): \(AuditLog.errorText())")
                    }
                }
            }
            guard rename(p, "\(p).1") == 0 else { throw .io("cannot rename \(p) to \(p).1: \(AuditLog.errorText())") }
        } else {
            guard unlink(p) == 0 else { throw .io("cannot remove \(p): \(AuditLog.errorText())") }
        }
        let nfd = Glibc.open(p, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o640)
        guard nfd >= 0 else {
            let why = AuditLog.errorText()
            // Put the old file back under its name so that the log stays where readers look.
            if options.keep > 0, rename("\(p).1", p) != 0 {
                throw .io("cannot open a new \(p) (\(why)) nor restore it from \(p).1 (\(AuditLog.errorText())); still writing \(p).1")
            }
            throw .io("cannot open a new \(p): \(why)")
        }
        _ = flock(nfd, LOCK_EX | LOCK_NB)
        do { try AuditLog.syncDirectory(options.stateDir) } catch {
            options.onWarning("rotation: \(error)")
        }
        state.withLock { st in
            Glibc.close(st.fd)
            st.fd = nfd
            st.size = 0
        }
        if options.keep > 0 {
            let next = "\(p).\(options.keep)"
            if let last = AuditLog.lastSeq(ofFile: next), last > witnessed {
                state.withLock { $0.unwitnessedNext = (next, last) }
                options.onWarning(AuditLog.retentionWarning(next, last, witnessed))
            } else {
                state.withLock { $0.unwitnessedNext = nil }
            }
        }
    }

    /// Writes all of `bytes`; at `offset` with `pwrite` when one is given. The log's records are
    /// written at the end the writer knows (`size`: the last durable length), never by O_APPEND:
    /// a short write is continued where it stopped, a failed one is cut back to exactly there,
    /// and the log is the only file written with `pwrite` (the fault tests inject EIO into it alone).
    static func writeAll(_ fd: Int32, _ bytes: [UInt8], at offset: Int? = nil) throws {
        var off = 0
        while off < bytes.count {
            let n = bytes[off...].withUnsafeBytes { b in
                offset.map { pwrite(fd, b.baseAddress, b.count, off_t($0 + off)) } ?? write(fd, b.baseAddress, b.count)
            }
            if n < 0 {
                if errno == EINTR { continue }
                throw OpenError.io("audit write failed: \(errorText())")
            }
            if n == 0 { throw OpenError.io("audit write failed: the file took no bytes") }
            off += n
        }
    }

    static func errorText() -> String { String(cString: strerror(errno)) }

    static func dirname(_ path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    /// fsync of a directory: makes the names created, renamed or removed in it durable.
    static func syncDirectory(_ dir: String) throws(OpenError) {
        let d = Glibc.open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard d >= 0 else { throw .io("cannot open \(dir) to sync it: \(errorText())") }
        defer { Glibc.close(d) }
        guard fsync(d) == 0 else { throw .io("fsync of \(dir): \(errorText())") }
    }

    /// Writes a small file whole and durably: a temporary file, fsync, rename, fsync of the folder.
    static func writeDurably(_ path: String, _ text: String, mode: mode_t) throws(OpenError) {
        let tmp = path + ".tmp"
        let fd = Glibc.open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        guard fd >= 0 else { throw .io("cannot create \(tmp): \(errorText())") }
        do {
            try writeAll(fd, Array(text.utf8))
        } catch {
            Glibc.close(fd)
            unlink(tmp)
            throw .io("cannot write \(tmp): \(error)")
        }
        guard fsync(fd) == 0 else { let e = errorText(); Glibc.close(fd); unlink(tmp); throw .io("fsync of \(tmp): \(e)") }
        Glibc.close(fd)
        guard rename(tmp, path) == 0 else { let e = errorText(); unlink(tmp); throw .io("cannot rename \(tmp) to \(path): \(e)") }
        try syncDirectory(dirname(path))
    }

    static func readFile(_ path: String) -> [UInt8]? {
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { Glibc.close(fd) }
        return readFD(fd)
    }

    static func readFD(_ fd: Int32) -> [UInt8]? {
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 1 << 16)
        var off: off_t = 0
        while true {
            let n = buf.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, off) }
            if n < 0 { if errno == EINTR { continue }; return nil }
            if n == 0 { return out }
            out += buf[..<n]
            off += off_t(n)
        }
    }

    /// The seq of a file's last complete record (nil if none can be read).
    static func lastSeq(ofFile path: String) -> UInt64? { lastRecord(ofFile: path).map { $0.seq } }

    /// The last complete record of a file, read from its last MiB only (rotation calls this on the audit thread).
    static func lastRecord(ofFile path: String) -> (seq: UInt64, hash: String)? {
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { Glibc.close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, st.st_size > 0 else { return nil }
        let size = Int(st.st_size)
        let window = min(size, 1 << 20)
        var data = [UInt8](repeating: 0, count: window)
        let n = data.withUnsafeMutableBytes { pread(fd, $0.baseAddress, window, off_t(size - window)) }
        guard n == window else { return nil }
        var body = data[...]
        if body.last == 0x0A { body = body.dropLast() } else if let nl = body.lastIndex(of: 0x0A) { body = body[..<nl] } else { return nil }
        let start = body.lastIndex(of: 0x0A).map { $0 + 1 } ?? body.startIndex
        var v = AuditChain.Verifier()
        v.feed(body[start...])
        guard case .ok(_, let seq, let hash) = v.verdict else { return nil }
        return (seq, hash)
    }

    struct Opened {
        var state: State
        var note: String?
        var accepted: String?
    }

    /// Opens the log: locks it, verifies the whole current file, recovers the chain, and compares
    /// it with the state directory's head. Refuses what it cannot trust, saying what to run.
    private static func open(_ o: Options) throws(OpenError) -> Opened {
        let path = o.path
        let existed = access(path, F_OK) == 0
        // No O_APPEND: records are written with pwrite at the end the writer knows (see writeAll).
        let fd = Glibc.open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o640)
        guard fd >= 0 else { throw .io("cannot open audit log \(path): \(errorText())") }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            Glibc.close(fd)
            throw .io("\(path) is locked by another process (another redlined, or `redlinectl audit repair`)")
        }
        if !existed {
            do { try syncDirectory(o.stateDir) } catch { Glibc.close(fd); throw error }
        }
        guard var data = readFD(fd) else { Glibc.close(fd); throw .io("cannot read audit log \(path): \(errorText())") }
        var note: String?
        if let last = data.last, last != 0x0A {
            // A torn final line (a crash mid-write, never acknowledged): cut it off.
            let keep = data.lastIndex(of: 0x0A).map { $0 + 1 } ?? 0
            let cut = data.count - keep
            guard ftruncate(fd, off_t(keep)) == 0, fsync(fd) == 0 else {
                Glibc.close(fd)
                throw .io("cannot cut a torn final line off \(path): \(errorText())")
            }
            data.removeLast(cut)
            note = "cut a torn final line of \(cut) bytes (written during a crash, never acknowledged)"
        }
        var v = AuditChain.Verifier()
        let head: AuditCheckpoint?
        if let text = readFile(o.headPath).map({ String(decoding: $0, as: UTF8.self) }) {
            do { head = try AuditCheckpoint.parse(text) } catch {
                Glibc.close(fd)
                throw .broken("\(o.headPath): \(error); it is the log's last checkpoint: restore it, or move it aside after investigating")
            }
            v.watch = [head!.seq]
        } else {
            head = nil
        }
        var lineStart = 0
        for (i, b) in data.enumerated() where b == 0x0A {
            v.feed(data[lineStart..<i])
            lineStart = i + 1
        }
        if case .broken(let seq, let line, let why) = v.verdict {
            Glibc.close(fd)
            let at = seq.map { "seq \($0)" } ?? "line \(line)"
            throw .broken("""
                \(path): broken at \(at) (line \(line)): \(why). redlined does not write on a broken log. \
                Stop here, keep a copy of the file, investigate, then run `redlinectl audit repair \(path)`: \
                it cuts the log from \(at) on, keeps what it cut, and records the cut in the log
                """)
        }
        var seq = v.lastSeq
        var hash = v.lastHash
        if v.count == 0, let prior = lastRecord(ofFile: "\(path).1") {
            // A new file after rotation: the chain continues from the newest rotated file.
            seq = prior.seq
            hash = prior.hash
        }
        var st = State(fd: fd, nextSeq: seq + 1, durableSeq: seq, durableHash: hash, size: data.count)
        if let w = readWitnessed(o.witnessedPath, lastSeq: max(seq, head?.seq ?? 0)) {
            st.witnessedSeq = w.seq
            st.witnessedHash = w.hash
        }
        var accepted: String?
        if let head {
            st.checkpoint = head
            st.checkpointAt = Monotonic.seconds()
            if head.seq > seq {
                let what = v.count == 0 && seq == 0
                    ? "\(path) is missing or empty"
                    : "\(path) ends at seq \(seq)"
                let msg = "the state directory's last checkpoint (\(o.headPath), \(head.time)) says the log held records up to seq \(head.seq), but \(what)"
                guard o.acceptMissing else {
                    Glibc.close(fd)
                    throw .missing("\(msg). Restore the missing records, or start redlined with --accept-missing-audit-log: a gap record will say what is missing")
                }
                accepted = msg
                var g = Gap(from: seq + 1, reason: "accepted at start-up by --accept-missing-audit-log: \(msg)")
                g.records = 0
                st.gap = g
                st.nextSeq = head.seq + 1
                if seq == 0 { st.durableHash = head.hash }
            } else if head.seq >= v.firstSeq, v.count > 0, v.found[head.seq] != head.hash,
                      !v.skipped.contains(where: { $0.contains(head.seq) }) {
                Glibc.close(fd)
                throw .broken("""
                    \(path): record \(head.seq) does not match the state directory's last checkpoint (\(o.headPath), \(head.time)): \
                    the log was re-sealed or replaced. Investigate; `redlinectl audit verify --checkpoints` with a witness's folder says more
                    """)
            }
        }
        return Opened(state: st, note: note, accepted: accepted)
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
