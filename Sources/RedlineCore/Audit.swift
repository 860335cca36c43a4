import Crypto

/// The tamper-evident audit record format (docs/DESIGN.md §9).
///
/// Each record is one JSON object per line with `seq`, `time`, `kind`, the
/// event's fields, `prev` (the previous record's hash) and `hash`: SHA-256, hex,
/// over the record's canonical encoding without `hash`.
public enum AuditChain {
    /// `prev` of the very first record.
    public static let genesis = String(repeating: "0", count: 64)

    /// Builds a sealed record. Event fields may not use the reserved names.
    public static func seal(seq: UInt64, time: String, kind: String, fields: [(String, JSON)], prev: String) -> JSON {
        let reserved: Set<String> = ["seq", "time", "kind", "prev", "hash"]
        var members: [(String, JSON)] = [("seq", .number(Double(seq))), ("time", .string(time)), ("kind", .string(kind))]
        members += fields.filter { !reserved.contains($0.0) }
        members.append(("prev", .string(prev)))
        let body = JSON.object(members)
        return .object(members + [("hash", .string(hash(body)))])
    }

    /// SHA-256 (hex) of a record's canonical encoding.
    public static func hash(_ body: JSON) -> String {
        let digest = SHA256.hash(data: Array(body.canonical.utf8))
        return digest.map { b in
            let h = String(b, radix: 16)
            return b < 16 ? "0" + h : h
        }.joined()
    }

    public enum Verdict: Sendable, Hashable, CustomStringConvertible {
        case ok(records: Int, lastSeq: UInt64, lastHash: String)
        /// The first bad record: the `seq` it should have had once the chain is anchored
        /// (a tampered record may lie about its own), else its own `seq` where readable, else `nil`.
        /// `line` is always its line number.
        case broken(seq: UInt64?, line: Int, reason: String)

        public var description: String {
            switch self {
            case .ok(let n, _, _): return "ok \(n) records"
            case .broken(let seq, let line, let why):
                return "broken at " + (seq.map { "seq \($0)" } ?? "line \(line)") + ": " + why
            }
        }
    }

    /// A running verifier; feed it lines in order, across rotated files.
    public struct Verifier: Sendable {
        public private(set) var count = 0
        public private(set) var lastSeq: UInt64 = 0
        public private(set) var lastHash: String = AuditChain.genesis
        public private(set) var failure: Verdict?
        /// Seq ranges a `gap` or `repair` record says are not in the log (failed writes, a cut tail).
        public private(set) var skipped: [ClosedRange<UInt64>] = []
        /// The first record's seq (0 before any).
        public private(set) var firstSeq: UInt64 = 0
        /// Seqs whose hashes to keep (checkpoints to check), and the hashes found.
        public var watch: Set<UInt64> = []
        public private(set) var found: [UInt64: String] = [:]
        private var line = 0
        private var started = false

        public init() {}

        /// Continues a chain whose earlier records are in files not given.
        public init(continuingAfter seq: UInt64, hash: String) {
            lastSeq = seq
            lastHash = hash
            started = true
        }

        public mutating func feed(_ bytes: some Collection<UInt8>) {
            guard failure == nil else { return }
            line += 1
            if bytes.isEmpty { return fail(nil, "empty line") }
            let rec: JSON
            do { rec = try JSON.parse(bytes) } catch { return fail(nil, "not JSON (\(error))") }
            guard case .object(let kv) = rec,
                  let seqD = rec["seq"]?.numberValue, seqD >= 1, let seq = UInt64(exactly: seqD),
                  let prev = rec["prev"]?.stringValue, let h = rec["hash"]?.stringValue,
                  rec["kind"]?.stringValue != nil, rec["time"]?.stringValue != nil
            else { return fail(nil, "missing seq, time, kind, prev or hash") }
            let body = JSON.object(kv.filter { $0.0 != "hash" })
            guard AuditChain.hash(body) == h else { return fail(seq, "hash does not match the record") }
            if started {
                if seq != lastSeq + 1, let skip = AuditChain.skip(rec), skip.lowerBound == lastSeq + 1, skip.upperBound + 1 == seq {
                    // A gap or repair record accounts for the seqs it jumps: they were never written, or were cut.
                    skipped.append(skip)
                } else {
                    guard seq == lastSeq + 1 else { return fail(seq, "expected seq \(lastSeq + 1)") }
                }
                guard prev == lastHash else { return fail(seq, "prev does not match the previous record's hash") }
            } else if seq == 1 {
                guard prev == AuditChain.genesis else { return fail(seq, "first record must chain from genesis") }
            }
            // A file that starts after rotation (seq > 1) anchors on its own first record.
            if !started { firstSeq = seq }
            started = true
            if watch.contains(seq) { found[seq] = h }
            count += 1
            lastSeq = seq
            lastHash = h
        }

        private mutating func fail(_ seq: UInt64?, _ why: String) {
            // Once anchored, the first bad record is the one at position lastSeq + 1,
            // whatever its (possibly tampered or unreadable) seq field says.
            failure = .broken(seq: started ? lastSeq + 1 : seq, line: line, reason: why)
        }

        /// Ends a log whose last line has no final newline: the last write was cut short.
        public mutating func truncatedEnd() {
            guard failure == nil else { return }
            failure = .broken(seq: count > 0 ? lastSeq : nil, line: line,
                              reason: "the last record has no final newline (truncated write)")
        }

        public var verdict: Verdict { failure ?? .ok(records: count, lastSeq: lastSeq, lastHash: lastHash) }
    }

    /// Kinds of record that may jump seq, saying which seqs they account for in `skipped`.
    public static let skipKinds: Set<String> = ["gap", "repair"]

    /// The seqs a `gap` or `repair` record says are missing (`skipped: {from, to}`), if any.
    public static func skip(_ rec: JSON) -> ClosedRange<UInt64>? {
        guard let k = rec["kind"]?.stringValue, skipKinds.contains(k), let s = rec["skipped"],
              let f = s["from"]?.numberValue, let t = s["to"]?.numberValue,
              let from = UInt64(exactly: f), let to = UInt64(exactly: t), from >= 1, from <= to else { return nil }
        return from...to
    }

    /// Verifies the lines of a log (split on `\n`; a final newline is expected).
    public static func verify(_ data: [UInt8]) -> Verdict {
        var v = Verifier()
        var start = 0
        for (i, b) in data.enumerated() where b == 0x0A {
            v.feed(data[start..<i])
            start = i + 1
        }
        if start < data.count {
            v.feed(data[start...])
            v.truncatedEnd()
        }
        return v.verdict
    }
}
