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
