import Crypto
import RedlineCore

/// `audit-verify`: AuditChain.verify on arbitrary files and on mutations of real chains.
///
/// Input byte 0 picks the mode:
/// - even: the rest is a file; verify's verdict must agree with an independent verifier written
///   here from docs/DESIGN.md §9 (SHA-256 over the canonical record without `hash`, `prev` chaining,
///   consecutive `seq`, genesis `prev` for seq 1, final newline);
/// - odd: a real chain is sealed with AuditChain.seal from input-chosen fields and must verify;
///   then one byte is replaced, or the file is cut short: a changed byte is always rejected, and a
///   cut is accepted only at a record boundary, as the shorter chain.
public enum AuditOracle {
    public static func check(_ input: [UInt8]) throws(OracleFailure) {
        var r = InputReader(input)
        if r.byte() % 2 == 0 { try compare(r.rest); return }

        let records = 1 + Int(r.byte() % 6)
        let mode = r.byte()
        let pos = Int(r.u16())
        let newByte = r.byte()
        let startSeq = r.byte() % 4 == 0 ? UInt64(r.u16()) + 2 : 1
        let material = r.rest
        var prev = AuditChain.genesis
        var log: [UInt8] = []
        var lastHash = prev
        for i in 0..<records {
            let slice = material.isEmpty ? [] : Array(material[(i * 7 % material.count)...].prefix(24))
            let text = String(decoding: slice, as: UTF8.self)
            let fields: [(String, JSON)] = [("detail", .string(text)), ("n", .number(Double(i))),
                                            ("seq", .string("ignored: reserved")), ("v", .number(Double(slice.first ?? 0) / 7))]
            let seq = startSeq + UInt64(i)
            let rec = AuditChain.seal(seq: seq, time: "2026-01-01T00:00:0\(i)Z", kind: i % 2 == 0 ? "decision" : "write",
                                      fields: fields, prev: startSeq > 1 && i == 0 ? String(repeating: "a", count: 64) : prev)
            guard let h = rec["hash"]?.stringValue else { throw OracleFailure("seal gave a record without hash") }
            prev = h
            lastHash = h
            log += Array(rec.encoded().utf8) + [0x0A]
        }
        let lastSeq = startSeq + UInt64(records) - 1
        // verify is a pure function: each file is verified once, and that verdict compared.
        let sealed = AuditChain.verify(log)
        guard sealed == .ok(records: records, lastSeq: lastSeq, lastHash: lastHash) else {
            throw OracleFailure("a sealed chain does not verify: \(sealed)")
        }
        try compare(log, verdict: sealed)

        var mutated = log
        let verdict: AuditChain.Verdict
        if mode % 3 == 0 {
            let cut = pos % log.count
            mutated = Array(log[..<cut])
            verdict = AuditChain.verify(mutated)
            let boundary = cut == 0 || log[cut - 1] == 0x0A
            if boundary {
                let kept = mutated.filter { $0 == 0x0A }.count
                if kept > 0, case .ok(let n, _, _) = verdict, n == kept { } else if kept == 0, case .ok(0, _, _) = verdict { } else {
                    throw OracleFailure("a chain cut at a record boundary (\(kept) records) gave \(verdict)")
                }
            } else if case .ok = verdict {
                throw OracleFailure("a chain cut inside a record (byte \(cut)) was accepted")
            }
        } else {
            let p = pos % log.count
            mutated[p] = newByte
            verdict = AuditChain.verify(mutated)
            if mutated != log, case .ok = verdict {
                throw OracleFailure("byte \(p) changed from \(log[p]) to \(newByte) and the chain still verifies")
            }
        }
        try compare(mutated, verdict: verdict)
    }

    /// AuditChain.verify's verdict on `file` (computed here unless given) against the independent verifier.
    static func compare(_ file: [UInt8], verdict: AuditChain.Verdict? = nil) throws(OracleFailure) {
        let got = verdict ?? AuditChain.verify(file)
        let want = reference(file)
        switch (got, want) {
        case let (.ok(n, s, h), .some(ref)):
            guard n == ref.records, s == ref.lastSeq, h == ref.lastHash else {
                throw OracleFailure("verify says ok \(n) records, seq \(s); the reference says \(ref)")
            }
        case (.ok, nil):
            throw OracleFailure("verify accepted a file the reference rejects")
        case (.broken(_, _, let why), .some(let ref)):
            throw OracleFailure("verify rejected (\(why)) a file the reference accepts (\(ref))")
        case (.broken, nil):
            break
        }
    }

    struct Accepted: CustomStringConvertible {
        var records: Int
        var lastSeq: UInt64
        var lastHash: String
        var description: String { "ok \(records) records, last seq \(lastSeq)" }
    }

    /// The chain rules, from the design document; nil when the file is not a well-formed chain.
    static func reference(_ file: [UInt8]) -> Accepted? {
        if file.isEmpty { return Accepted(records: 0, lastSeq: 0, lastHash: AuditChain.genesis) }
        guard file.last == 0x0A else { return nil }
        var lines: [ArraySlice<UInt8>] = []
        var start = 0
        for (i, b) in file.enumerated() where b == 0x0A {
            lines.append(file[start..<i])
            start = i + 1
        }
        var acc = Accepted(records: 0, lastSeq: 0, lastHash: AuditChain.genesis)
        for line in lines {
            guard let rec = try? JSON.parse(line), case .object(let kv) = rec else { return nil }
            func member(_ k: String) -> JSON? { kv.first { $0.0 == k }?.1 }
            guard case .number(let seqD)? = member("seq"), seqD >= 1, let seq = UInt64(exactly: seqD),
                  case .string(let prev)? = member("prev"), case .string(let hash)? = member("hash"),
                  case .string? = member("kind"), case .string? = member("time")
            else { return nil }
            let body = JSON.object(kv.filter { $0.0 != "hash" })
            let digest = SHA256.hash(data: Array(body.canonical.utf8))
            let hex = digest.map { b in (b < 16 ? "0" : "") + String(b, radix: 16) }.joined()
            guard Array(hex.utf8) == Array(hash.utf8) else { return nil }
            if acc.records > 0 {
                guard seq == acc.lastSeq + 1, Array(prev.utf8) == Array(acc.lastHash.utf8) else { return nil }
            } else if seq == 1 {
                guard Array(prev.utf8) == Array(AuditChain.genesis.utf8) else { return nil }
            }
            acc = Accepted(records: acc.records + 1, lastSeq: seq, lastHash: hash)
        }
        return acc
    }
}
