import Crypto
import Testing
@testable import RedlineCore

@Suite("Audit chain") struct AuditChainTests {
    /// A realistic log: decisions with free text, including an override-code attempt.
    static func log(_ n: Int = 6) -> [String] {
        var prev = AuditChain.genesis
        var lines: [String] = []
        for k in 1...n {
            let fields: [(String, JSON)] = [
                ("agent", "facilities-agent"), ("point", k % 2 == 0 ? "dispatch.cancel" : "crac-1.setpoint"),
                ("value", .number(k % 2 == 0 ? 1 : 22.5)), ("outcome", k % 2 == 0 ? "denied" : "executed"),
                ("rule", k % 2 == 0 ? "RL-2" : .null), ("reason", .string("override code EXEC-4429 ✓ #\(k)")),
                ("seq", 999), // reserved names are ignored
            ]
            let rec = AuditChain.seal(seq: UInt64(k), time: "2026-11-29T02:00:0\(k)Z", kind: "decision", fields: fields, prev: prev)
            prev = rec["hash"]!.stringValue!
            lines.append(rec.encoded())
        }
        return lines
    }
    static func bytes(_ lines: [String]) -> [UInt8] { Array(lines.map { $0 + "\n" }.joined().utf8) }

    func brokenSeq(_ v: AuditChain.Verdict) -> UInt64?? {
        if case .broken(let s, _, _) = v { return .some(s) }
        return .none
    }

    @Test func sealAndVerify() {
        let lines = Self.log()
        #expect(AuditChain.verify(Self.bytes(lines)) == .ok(records: 6, lastSeq: 6,
                                                             lastHash: (try! JSON.parse(lines[5]))["hash"]!.stringValue!))
        #expect(AuditChain.verify(Self.bytes(lines)).description == "ok 6 records")
        let first = try! JSON.parse(lines[0])
        #expect(first["seq"]?.numberValue == 1)
        #expect(first["prev"]?.stringValue == AuditChain.genesis)
        #expect(first["hash"]?.stringValue?.count == 64)
        #expect(AuditChain.verify([]) == .ok(records: 0, lastSeq: 0, lastHash: AuditChain.genesis))
    }

    @Test func everySingleByteTamperIsDetectedAtItsRecord() {
        let lines = Self.log(4)
        let data = Self.bytes(lines)
        // Line start offsets, to know which record a byte belongs to.
        var starts: [Int] = [0]
        for (i, b) in data.enumerated() where b == 0x0A { starts.append(i + 1) }
        var checked = 0
        for i in data.indices {
            let record = starts.lastIndex { $0 <= i }! + 1  // 1-based; a newline belongs to its line
            for replacement: UInt8 in [0x20, 0x30, 0x0A, 0x7B, 0xFF, data[i] ^ 0x01] where replacement != data[i] {
                var t = data
                t[i] = replacement
                let v = AuditChain.verify(t)
                guard case .broken(let seq, _, _) = v else {
                    Issue.record("tamper at byte \(i) (\(data[i]) -> \(replacement)) not detected")
                    continue
                }
                // Record 1 has no anchor before it: a readable record names its own seq, an unreadable one none.
                if record > 1 { #expect(seq == UInt64(record), "byte \(i) -> \(replacement): \(v)") }
                checked += 1
            }
        }
        #expect(checked > data.count * 5)
    }

    @Test func deletedRecordDetected() {
        var lines = Self.log()
        lines.remove(at: 2)  // seq 3
        let v = AuditChain.verify(Self.bytes(lines))
        #expect(brokenSeq(v) == .some(3))
        if case .broken(_, let line, _) = v { #expect(line == 3) }
    }

    @Test func reorderedRecordsDetected() {
        var lines = Self.log()
        lines.swapAt(3, 4)
        #expect(brokenSeq(AuditChain.verify(Self.bytes(lines))) == .some(4))
    }

    @Test func truncatedLastLineDetected() {
        let lines = Self.log()
        let data = Self.bytes(lines)
        for cut in [1, 2, 10, lines[5].utf8.count] {
            let t = Array(data.dropLast(cut))
            let v = AuditChain.verify(t)
            #expect(brokenSeq(v) == .some(6), "cut \(cut): \(v)")
            if case .broken(_, let line, _) = v { #expect(line == 6) }
        }
        // Cutting exactly one whole record is a shorter, valid log (a chain has no end marker).
        let whole = Array(data.dropLast(lines[5].utf8.count + 1))
        #expect(AuditChain.verify(whole) == AuditChain.verify(Self.bytes(Array(lines.prefix(5)))))
    }

    @Test func verifierContinuesAcrossRotation() {
        let lines = Self.log()
        var v = AuditChain.Verifier()
        for l in lines.prefix(3) { v.feed(Array(l.utf8)) }
        guard case .ok(_, let seq, let hash) = v.verdict else { Issue.record("broken"); return }
        var w = AuditChain.Verifier(continuingAfter: seq, hash: hash)
        for l in lines.dropFirst(3) { w.feed(Array(l.utf8)) }
        #expect(w.verdict.description == "ok 3 records")
        var bad = AuditChain.Verifier(continuingAfter: seq, hash: hash)
        for l in lines.dropFirst(4) { bad.feed(Array(l.utf8)) }
        #expect(brokenSeq(bad.verdict) == .some(4))
    }

    @Test func reservedFieldsCannotBeForged() {
        let rec = AuditChain.seal(seq: 1, time: "t", kind: "decision", fields: [("hash", "0"), ("prev", "x"), ("kind", "other")], prev: AuditChain.genesis)
        #expect(rec["kind"]?.stringValue == "decision")
        #expect(rec["prev"]?.stringValue == AuditChain.genesis)
        #expect(AuditChain.verify(Array((rec.encoded() + "\n").utf8)).description == "ok 1 records")
    }
}

@Suite("Audit checkpoints")
struct AuditCheckpointTests {
    @Test("checkpoint text and verifier keys round-trip, whatever the key's base64 holds ('+' and '/' included)")
    func roundTrip() throws {
        var sawPlus = false
        for i in 0..<200 {
            let key = Curve25519.Signing.PrivateKey()
            let vk = AuditKeys.VerifierKey(origin: "redline/site-\(i)", key: key.publicKey)
            if vk.text.split(separator: "+").count > 3 { sawPlus = true }
            let parsed = try #require(AuditKeys.VerifierKey.parse(vk.text), "\(vk.text)")
            #expect(parsed.raw == vk.raw && parsed.keyId == vk.keyId)
            let cp = try AuditCheckpoint.sign(origin: vk.origin, seq: UInt64(i + 1), hash: AuditChain.hash(.number(Double(i))),
                                              time: "2026-12-01T00:00:00.000Z", key: key)
            let back = try AuditCheckpoint.parse(cp.text)
            #expect(back == cp)
            #expect(back.verify(parsed))
            // Any other seq, hash or origin under the same signature does not verify.
            var other = back
            other.seq += 1
            #expect(!other.verify(parsed))
        }
        #expect(sawPlus, "no key with '+' in its base64 was tried")
    }

    @Test("a witness judges rollback, fork, foreign keys and forgeries")
    func judge() throws {
        let key = Curve25519.Signing.PrivateKey()
        let vk = AuditKeys.VerifierKey(origin: "redline/a", key: key.publicKey)
        func cp(_ seq: UInt64, _ h: Double, origin: String = "redline/a", with k: Curve25519.Signing.PrivateKey? = nil) throws -> AuditCheckpoint {
            try AuditCheckpoint.sign(origin: origin, seq: seq, hash: AuditChain.hash(.number(h)), time: "t", key: k ?? key)
        }
        let c10 = try cp(10, 1)
        #expect(CheckpointConsistency.judge(c10, last: nil, key: vk) == .extends)
        #expect(CheckpointConsistency.judge(try cp(12, 2), last: c10, key: vk) == .extends)
        #expect(CheckpointConsistency.judge(c10, last: c10, key: vk) == .same)
        #expect(CheckpointConsistency.judge(try cp(9, 3), last: c10, key: vk) == .rollback(had: 10, now: 9))
        #expect(CheckpointConsistency.judge(try cp(10, 4), last: c10, key: vk) == .fork(seq: 10))
        #expect(CheckpointConsistency.judge(try cp(12, 5), last: try cp(14, 6), key: vk, known: [12: AuditChain.hash(.number(2))]) == .fork(seq: 12))
        if case .foreign = CheckpointConsistency.judge(try cp(11, 1, with: .init()), last: c10, key: vk) {} else { Issue.record("another key was accepted") }
        if case .foreign = CheckpointConsistency.judge(try cp(11, 1, origin: "redline/b"), last: c10, key: vk) {} else { Issue.record("another origin was accepted") }
        var forged = try cp(11, 1)
        forged.seq = 99
        #expect(CheckpointConsistency.judge(forged, last: c10, key: vk) == .badSignature)
    }
}
