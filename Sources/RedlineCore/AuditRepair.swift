import Crypto

/// Checks of a log against witnessed checkpoints, and the plan of a repair (pure: the files are the caller's).
public enum AuditEvidence {
    /// What a verified log contradicts in the witnessed checkpoints (empty: nothing).
    /// `fromSeq`: the operator knowingly gives the log from this seq on (older files were removed).
    public static func problems(log v: AuditChain.Verifier, checkpoints: [AuditCheckpoint], fromSeq: UInt64?) -> [String] {
        var out: [String] = []
        let first = v.count > 0 ? v.firstSeq : 0
        let from = fromSeq ?? 1
        if v.count == 0 {
            if let top = checkpoints.map(\.seq).max(), top >= from {
                out.append("MISSING: the log holds no records, but a witnessed checkpoint covers seq \(top)")
            }
            return out
        }
        if first > from {
            out.append("LEADING RECORDS MISSING: the log starts at seq \(first), not \(from)"
                + (fromSeq == nil ? " (give the older files, or --from-seq \(first) if they were removed knowingly)" : ""))
        }
        for cp in checkpoints.sorted(by: { $0.seq < $1.seq }) where cp.seq >= from {
            if cp.seq > v.lastSeq {
                out.append("TRUNCATED: the log ends at seq \(v.lastSeq), but the checkpoint of \(cp.time) covers seq \(cp.seq): records \(v.lastSeq + 1)…\(cp.seq) are missing")
            } else if cp.seq < first {
                out.append("LEADING RECORDS MISSING: the checkpoint of \(cp.time) covers seq \(cp.seq), before the log's first record (seq \(first))")
            } else if v.skipped.contains(where: { $0.contains(cp.seq) }) {
                out.append("CUT: record \(cp.seq) was witnessed (checkpoint of \(cp.time)) but a gap or repair record skips it")
            } else if let h = v.found[cp.seq], h != cp.hash {
                out.append("RE-SEALED: record \(cp.seq) is not the one witnessed (checkpoint of \(cp.time)): the log was rewritten from there or earlier")
            } else if v.found[cp.seq] == nil {
                out.append("MISSING: record \(cp.seq) (checkpoint of \(cp.time)) is not in the files given")
            }
        }
        return out
    }

    /// Where a broken log must be cut, and what the cut takes.
    public struct RepairPlan: Sendable {
        /// Byte offset of the first bad line (everything from here on is cut).
        public var cutOffset: Int
        public var cutBytes: Int
        public var cutLines: Int
        /// The last good record (0 and genesis if none).
        public var lastGoodSeq: UInt64
        public var lastGoodHash: String
        /// The highest seq readable in the cut part or claimed by the state directory's head.
        public var highestSeen: UInt64
        public var reason: String
        public var cutSha256: String
    }

    /// Plans the repair of `data` (nil: the log verifies; nothing to cut). `headSeq`: the state
    /// directory's last checkpoint, whose seqs the repair record must not reuse.
    public static func planRepair(_ data: [UInt8], headSeq: UInt64 = 0) -> RepairPlan? {
        var v = AuditChain.Verifier()
        var start = 0
        var badAt: Int?
        var i = 0
        while i < data.count {
            if data[i] == 0x0A {
                v.feed(data[start..<i])
                if v.failure != nil { badAt = start; break }
                start = i + 1
            }
            i += 1
        }
        if badAt == nil, start < data.count {
            badAt = start
            v.feed(data[start...])
            v.truncatedEnd()
        }
        guard let cut = badAt else { return nil }
        let tail = Array(data[cut...])
        var highest: UInt64 = headSeq
        var lines = 0
        for line in tail.split(separator: 0x0A, omittingEmptySubsequences: false) where !line.isEmpty {
            lines += 1
            if let rec = try? JSON.parse(line), let n = rec["seq"]?.numberValue, let s = UInt64(exactly: n) { highest = max(highest, s) }
        }
        let digest = SHA256.hash(data: tail)
        return RepairPlan(cutOffset: cut, cutBytes: tail.count, cutLines: lines, lastGoodSeq: v.lastSeq, lastGoodHash: v.lastHash,
                          highestSeen: highest, reason: v.verdict.description, cutSha256: AuditKeys.hex(Array(digest)))
    }

    /// The record that says what a repair cut; it continues the chain from the last good record and
    /// skips every seq the cut part (or the head) used, so no seq is sealed twice.
    public static func repairRecord(_ p: RepairPlan, time: String, savedTo: String, uid: UInt32) -> JSON {
        let seq = max(p.lastGoodSeq, p.highestSeen) + 1
        var fields: [(String, JSON)] = []
        if seq > p.lastGoodSeq + 1 {
            fields.append(("skipped", .obj([("from", .number(Double(p.lastGoodSeq + 1))), ("to", .number(Double(seq - 1)))])))
        }
        fields += [("reason", .string(p.reason)), ("cutBytes", .number(Double(p.cutBytes))), ("cutLines", .number(Double(p.cutLines))),
                   ("cutSha256", .string(p.cutSha256)), ("savedTo", .string(savedTo)), ("by", .number(Double(uid)))]
        return AuditChain.seal(seq: seq, time: time, kind: "repair", fields: fields, prev: p.lastGoodHash)
    }
}
