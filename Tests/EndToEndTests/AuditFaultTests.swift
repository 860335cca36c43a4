import Foundation
import RedlineClient
import RedlineCore
import RedlineTestSupport
import Testing

/// A tmpfs of `size`, mounted for one test.
final class SmallMount: @unchecked Sendable {
    let path: String
    init(in dir: TempDir, size: String) throws {
        path = dir.file("disk")
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        try Self.run("/bin/mount", ["-t", "tmpfs", "-o", "size=\(size),mode=0755", "tmpfs", path])
    }
    func unmount() { try? Self.run("/bin/umount", ["-l", path]) }
    static func run(_ tool: String, _ args: [String]) throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: tool)
        p.arguments = args
        try p.run()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { throw TestSupportError("\(tool) \(args) failed") }
    }

    /// Fills the disk with a file of zeros until a write fails; returns its path.
    func fill() -> String {
        let hog = path + "/hog"
        let fd = open(hog, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        let chunk = [UInt8](repeating: 0, count: 1024)
        while chunk.withUnsafeBytes({ write(fd, $0.baseAddress, $0.count) }) > 0 {}
        close(fd)
        return hog
    }
}

func lines(_ path: String) throws -> [String] {
    try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map(String.init)
}

func records(_ path: String) throws -> [JSON] { try lines(path).map { try JSON.parse($0) } }

/// Issue 14: the audit log survives faults and proves its own completeness, on a live daemon and plant.
@Suite("Audit log faults and completeness", .serialized, .enabled(if: uidAvailable, "needs root (tmpfs, agents' uids)"))
struct AuditFaultTests {
    static let facilities: UInt32 = 2001

    func lockDoor(_ s: PlantAndDaemon, _ c: UidRelay) throws {
        let held = try c.write("sra-door.lock", 1)
        let rid = try #require(held["requestId"]?.stringValue)
        let done = try s.operatorCall("approvals.approve", ["requestId": .string(rid)])
        #expect(done["outcome"]?.stringValue == "executed")
    }

    @Test("disk full: agent writes fail closed, E-1 still acts, status says why, and a gap record accounts for every spent seq")
    func diskFullGap() throws {
        var disk: SmallMount?
        let s = try PlantAndDaemon(auditPath: { dir in
            let m = try SmallMount(in: dir, size: "64k")
            disk = m
            return m.path + "/audit.jsonl"
        })
        defer { s.stop(); disk?.unmount() }
        let mnt = try #require(disk)
        let c = try s.agent(uid: Self.facilities)
        defer { c.close() }
        try lockDoor(s, c)
        let hog = mnt.fill()
        // The log's last page may still hold a few records; then agent writes fail closed: nothing reaches the plant.
        var value = 1.0
        var refused = JSON.null
        for _ in 0..<40 {
            refused = try c.write("office-lights.on", value)
            if refused["outcome"]?.stringValue != "executed" { break }
            value = 1 - value
        }
        #expect(refused["outcome"]?.stringValue == "failed", "\(refused.encoded())")
        #expect(refused["explanation"]?.stringValue?.contains("nothing was written") == true, "\(refused.encoded())")
        #expect(try s.sim.plant()["office-lights.on"] == 1 - value, "the refused write reached the plant")
        let before = try records(s.auditPath)
        let lastBefore = UInt64(try #require(before.last?["seq"]?.numberValue))
        let st = try s.operatorCall("status")["audit"]
        #expect(st?["writable"]?.boolValue == false)
        #expect(st?["error"]?.stringValue?.contains("No space") == true, "\(st?.encoded() ?? "")")
        #expect((st?["unrecorded"]?["records"]?.numberValue ?? 0) >= 1)
        let shown = try runCtl(["status", "--socket", s.operatorSocket])
        #expect(shown.output.contains("audit: NOT WRITABLE") && shown.output.contains("No space"), "\(shown.output)")
        // Effects keep running: the fire alarm releases the door with the log unwritable.
        try s.sim.set("fire-panel.alarm", 1)
        var released = false
        for _ in 0..<400 where !released {
            released = try s.sim.plant()["sra-door.lock"] == 0
            if !released { usleep(10_000) }
        }
        #expect(released, "E-1 did not release the door while the audit log was full")
        usleep(300_000)  // let E-1's own records try (and fail) to be written
        #expect(try records(s.auditPath).count == before.count, "nothing was written while the disk was full")

        // Space comes back: the next write works, after a gap record.
        try FileManager.default.removeItem(atPath: hog)
        try s.sim.set("fire-panel.alarm", 0)
        try s.waitScans(3)
        let ok = try c.write("office-lights.on", 1)
        #expect(ok["outcome"]?.stringValue == "executed", "\(ok.encoded())")
        #expect(try s.operatorCall("status")["audit"]?["writable"]?.boolValue == true)
        let after = try records(s.auditPath)
        let gap = try #require(after.first { $0["kind"]?.stringValue == "gap" }, "no gap record")
        let from = UInt64(try #require(gap["skipped"]?["from"]?.numberValue))
        let to = UInt64(try #require(gap["skipped"]?["to"]?.numberValue))
        let gapSeq = UInt64(try #require(gap["seq"]?.numberValue))
        #expect(from == lastBefore + 1)
        #expect(to == gapSeq - 1)
        // Every spent seq is accounted for and none is in the file: no seq was sealed twice.
        let seqs = after.compactMap { $0["seq"]?.numberValue.map { UInt64($0) } }
        #expect(!seqs.contains { $0 >= from && $0 <= to })
        #expect(Set(seqs).count == seqs.count)
        // Each spent seq was a record that failed, or an earlier try at this gap record that failed too.
        #expect((gap["records"]?.numberValue ?? 0) + (gap["failedGapRecords"]?.numberValue ?? 0) == Double(to - from + 1), "\(gap.encoded())")
        #expect((gap["kinds"]?["decision"]?.numberValue ?? 0) >= 1, "\(gap.encoded())")
        #expect((gap["decisions"]?["allowed"]?.numberValue ?? 0) >= 1, "\(gap.encoded())")
        #expect((gap["effects"]?["E-1"]?.numberValue ?? 0) >= 1, "\(gap.encoded())")
        #expect(gap["firstTime"]?.stringValue != nil && gap["lastTime"]?.stringValue != nil)
        let v = try runCtl(["audit", "verify", s.auditPath])
        #expect(v.status == 0 && v.output.contains("gaps: \(from)…\(to)"), "\(v.output)")
    }

    /// The system calls the faults are injected into, and when (strace's `when=FIRST+STEP`, counted
    /// per call). Only the audit writer calls fdatasync, and the log is the only file written with
    /// pwrite (one call per batch; a failed one makes no cut-back call). Each period refuses a
    /// share of the writes (two batches per write: the decision, then its result).
    static let eioFaults: [(syscall: String, when: String)] = [("fdatasync", "4+6"), ("pwrite64", "3+3")]

    @Test("EIO on write and on fdatasync (injected by strace into the real daemon): failed writes answer failed and reach nothing, the log cuts back, gap records follow, and it verifies",
          .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/strace"), "needs strace (scripts/setup.sh)"),
          arguments: eioFaults.map(\.syscall))
    func eioOnWriteAndFsync(_ syscall: String) throws {
        let when = try #require(Self.eioFaults.first { $0.syscall == syscall }?.when)
        // strace attaches to the running daemon's threads: from then on the chosen call fails with EIO.
        let s = try PlantAndDaemon()
        defer { s.stop() }
        let trace = try ChildProcess(executable: "/usr/bin/strace", arguments: [
            "-f", "-qq", "-o", s.dir.file("strace.out"), "-e", "trace=\(syscall)", "-e", "inject=\(syscall):error=EIO:when=\(when)",
            "-p", String(s.daemon.process.processIdentifier),
        ], logPath: s.dir.file("strace.log"))
        defer { trace.stop() }
        usleep(500_000)
        let c = try s.agent(uid: Self.facilities)
        defer { c.close() }
        var executed: [String] = []
        var failed = 0
        var value = 1.0
        for _ in 0..<30 {
            let before = try s.sim.plant()["office-lights.on"]
            let r = try c.write("office-lights.on", value)
            let plant = try s.sim.plant()["office-lights.on"]
            if r["outcome"]?.stringValue == "executed" {
                executed.append(try #require(r["requestId"]?.stringValue))
                #expect(plant == value)
                value = 1 - value
            } else {
                #expect(r["outcome"]?.stringValue == "failed", "\(r.encoded())")
                #expect(r["explanation"]?.stringValue?.contains("Input/output error") == true, "\(r.encoded())")
                #expect(plant == before, "a write whose decision was not durable reached the plant")
                failed += 1
            }
        }
        #expect(failed >= 3 && executed.count >= 10, "failed \(failed), executed \(executed.count)")
        usleep(300_000)
        let recs = try records(s.auditPath)
        let decided = Set(recs.filter { $0["kind"]?.stringValue == "decision" }.compactMap { $0["requestId"]?.stringValue })
        #expect(executed.allSatisfy { decided.contains($0) }, "an executed write is missing from the log")
        let gaps = recs.filter { $0["kind"]?.stringValue == "gap" }
        #expect(gaps.count >= 2, "\(gaps.count) gap records")
        #expect(gaps.allSatisfy { $0["reason"]?.stringValue?.contains("Input/output error") == true })
        let seqs = recs.compactMap { $0["seq"]?.numberValue }
        #expect(Set(seqs).count == seqs.count)
        let v = try runCtl(["audit", "verify", s.auditPath])
        #expect(v.status == 0 && v.output.contains("gaps:"), "\(v.output)")
        let injected = (try? String(contentsOfFile: s.dir.file("strace.out"), encoding: .utf8))?
            .split(separator: "\n").filter { $0.contains("(INJECTED)") } ?? []
        #expect(!injected.isEmpty, "strace injected nothing into \(syscall)")
        print("EIO on \(syscall): \(executed.count) executed, \(failed) refused, \(gaps.count) gap records; \(v.output)")
    }

    @Test("a broken record refuses start-up with its seq and the repair; `audit repair` cuts, keeps and records the cut")
    func brokenRecordRefusesStartAndRepair() throws {
        let s = try PlantAndDaemon()
        defer { s.stop() }
        let c = try s.agent(uid: Self.facilities)
        for i in 0..<6 { _ = try c.write("office-lights.on", Double(i % 2)) }
        c.close()
        // Repair is refused while redlined holds the log.
        let busy = try runCtl(["audit", "repair", s.auditPath])
        #expect(busy.status != 0 && busy.output.contains("locked"), "\(busy.output)")
        s.stopDaemon()
        var ls = try lines(s.auditPath)
        let k = try #require(ls.firstIndex { $0.contains("\"kind\":\"decision\"") })
        let badSeq = Int(try #require(try JSON.parse(ls[k])["seq"]?.numberValue))
        let maxSeq = Int(try #require(try JSON.parse(ls.last!)["seq"]?.numberValue))
        ls[k] = ls[k].replacingOccurrences(of: "office-lights.on", with: "office-lights.of")
        try (ls.joined(separator: "\n") + "\n").write(toFile: s.auditPath, atomically: false, encoding: .utf8)

        let refused = try #require(try s.startDaemon(), "redlined started on a broken log")
        #expect(refused.status == 74)
        #expect(refused.stderr.contains("broken at seq \(badSeq)"), "\(refused.stderr)")
        #expect(refused.stderr.contains("redlinectl audit repair \(s.auditPath)"), "\(refused.stderr)")

        let r = try runCtl(["audit", "repair", s.auditPath])
        #expect(r.status == 0, "\(r.output)")
        #expect(r.output.contains("after seq \(badSeq - 1)"), "\(r.output)")
        let saved = try #require(try FileManager.default.contentsOfDirectory(atPath: s.dir.path).first { $0.hasPrefix("audit.jsonl.cut-") })
        #expect(try String(contentsOfFile: s.dir.file(saved), encoding: .utf8).contains("office-lights.of"), "the cut part is kept")
        #expect(try runCtl(["audit", "verify", s.auditPath]).status == 0)
        #expect(try s.startDaemon() == nil, "redlined does not start after the repair")
        let recs = try records(s.auditPath)
        let repair = try #require(recs.first { $0["kind"]?.stringValue == "repair" })
        #expect(repair["skipped"]?["from"]?.numberValue == Double(badSeq))
        #expect((repair["skipped"]?["to"]?.numberValue ?? 0) >= Double(maxSeq), "the cut records' seqs are never sealed again")
        #expect(repair["savedTo"]?.stringValue == s.dir.file(saved))
        #expect(repair["cutLines"]?.numberValue == Double(ls.count - k))
        #expect(try runCtl(["audit", "verify", s.auditPath]).status == 0)
    }

    @Test("a missing or cut log refuses start-up, unless --accept-missing-audit-log, which the log records")
    func missingLogRefusesStart() throws {
        let s = try PlantAndDaemon()
        defer { s.stop() }
        let c = try s.agent(uid: Self.facilities)
        for i in 0..<4 { _ = try c.write("office-lights.on", Double(i % 2)) }
        c.close()
        s.stopDaemon()
        let full = try lines(s.auditPath)
        let lastSeq = Int(try #require(try JSON.parse(full.last!)["seq"]?.numberValue))

        // Trailing records cut.
        try (full.dropLast(2).joined(separator: "\n") + "\n").write(toFile: s.auditPath, atomically: false, encoding: .utf8)
        let cut = try #require(try s.startDaemon(), "started on a cut log")
        #expect(cut.status == 74 && cut.stderr.contains("ends at seq \(lastSeq - 2)") && cut.stderr.contains("--accept-missing-audit-log"), "\(cut.stderr)")

        // The whole file deleted.
        try FileManager.default.removeItem(atPath: s.auditPath)
        let gone = try #require(try s.startDaemon(), "started on a deleted log")
        #expect(gone.status == 74 && gone.stderr.contains("missing or empty") && gone.stderr.contains("up to seq \(lastSeq)"), "\(gone.stderr)")
        try? FileManager.default.removeItem(atPath: s.auditPath)

        #expect(try s.startDaemon(extra: ["--accept-missing-audit-log"]) == nil)
        let recs = try records(s.auditPath)
        #expect(recs.first?["kind"]?.stringValue == "gap")
        #expect(recs.first?["skipped"]?["to"]?.numberValue == Double(lastSeq))
        #expect(recs.first?["reason"]?.stringValue?.contains("--accept-missing-audit-log") == true)
        #expect(recs.first?["seq"]?.numberValue == Double(lastSeq + 1), "the chain goes on after the lost seqs, never reusing them")
        let start = try #require(recs.first { $0["kind"]?.stringValue == "start" })
        #expect(start["acceptedMissingLog"]?.stringValue?.contains("missing or empty") == true)
    }

    @Test("signed checkpoints: the witness keeps them and refuses a rolled-back log or a forgery; verify --checkpoints catches every manipulation")
    func checkpointsAndWitness() throws {
        let s = try PlantAndDaemon(daemonArgs: ["--checkpoint-records", "4", "--checkpoint-seconds", "0.2"])
        defer { s.stop() }
        let wdir = s.dir.file("witness")
        let c = try s.agent(uid: Self.facilities)
        for i in 0..<8 { _ = try c.write("office-lights.on", Double(i % 2)) }
        usleep(600_000)
        // The served checkpoint verifies with the published key.
        let served = try s.operatorCall("audit.checkpoint")
        let pub = try String(contentsOfFile: s.dir.file("audit.pub"), encoding: .utf8)
        #expect(served["key"]?.stringValue == pub.trimmingCharacters(in: .whitespacesAndNewlines))
        let key = try #require(AuditKeys.VerifierKey.parse(pub))
        let cp0 = try AuditCheckpoint.parse(try #require(served["checkpoint"]?.stringValue))
        #expect(cp0.verify(key) && cp0.origin.hasPrefix("redline/"), "\(cp0.text)")
        let w1 = try runCtl(["audit", "witness", wdir, "--socket", s.operatorSocket, "--key", s.dir.file("audit.pub")])
        #expect(w1.status == 0, "\(w1.output)")
        #expect(try s.operatorCall("status")["audit"]?["witnessedSeq"]?.numberValue == Double(cp0.seq))
        // Keep an early copy of the state, for the rollback below.
        let oldLog = try Data(contentsOf: URL(fileURLWithPath: s.auditPath))
        let oldHead = try Data(contentsOf: URL(fileURLWithPath: s.dir.file("audit.head")))
        for i in 0..<16 { _ = try c.write("office-lights.on", Double(i % 2)) }
        c.close()
        usleep(600_000)
        let w2 = try runCtl(["audit", "witness", wdir, "--socket", s.operatorSocket])
        #expect(w2.status == 0 && w2.output.contains("extends"), "\(w2.output)")
        s.stopDaemon()
        // The final checkpoint (at the clean stop) is exported in audit.head: witnessed from the file.
        let w3 = try runCtl(["audit", "witness", wdir, "--from", s.dir.file("audit.head")])
        #expect(w3.status == 0, "\(w3.output)")
        let all = try lines(s.auditPath)
        // Record sizes by kind (for the README's disk budget), with the newline.
        var sizes: [String: [Int]] = [:]
        for l in all { sizes[(try? JSON.parse(l))?["kind"]?.stringValue ?? "?", default: []].append(l.utf8.count + 1) }
        print("audit record bytes by kind: " + sizes.sorted { $0.key < $1.key }.map { "\($0.key) avg \($0.value.reduce(0, +) / $0.value.count) max \($0.value.max()!) (n=\($0.value.count))" }.joined(separator: "; "))
        let vOK = try runCtl(["audit", "verify", "--checkpoints", wdir, s.auditPath])
        #expect(vOK.status == 0, "\(vOK.output)")

        func manipulated(_ name: String, _ ls: [String]) throws -> (status: Int32, output: String) {
            let f = s.dir.file(name)
            try (ls.isEmpty ? "" : ls.joined(separator: "\n") + "\n").write(toFile: f, atomically: false, encoding: .utf8)
            let plain = try runCtl(["audit", "verify", f])
            let checked = try runCtl(["audit", "verify", "--checkpoints", wdir, f])
            print("\(name): plain verify → \(plain.output.trimmingCharacters(in: .newlines)); with checkpoints → \(checked.output.trimmingCharacters(in: .newlines))")
            return checked
        }
        let trailing = try manipulated("trailing.jsonl", Array(all.dropLast(2)))
        #expect(trailing.status == 2 && trailing.output.contains("TRUNCATED"), "\(trailing.output)")
        let leading = try manipulated("leading.jsonl", Array(all.dropFirst(3)))
        #expect(leading.status == 2 && leading.output.contains("LEADING RECORDS MISSING"), "\(leading.output)")
        let empty = try manipulated("empty.jsonl", [])
        #expect(empty.status == 2 && empty.output.contains("MISSING"), "\(empty.output)")
        // Re-sealed without the key: one decision rewritten and every later record re-hashed.
        var resealed = all
        let k = try #require(all.firstIndex { $0.contains("\"outcome\":\"executed\"") })
        var prev = try #require(try JSON.parse(all[k - 1])["hash"]?.stringValue)
        for i in k..<all.count {
            guard case .object(let kv) = try JSON.parse(all[i]) else { continue }
            var fields = kv.filter { !["seq", "time", "kind", "prev", "hash"].contains($0.0) }
            if i == k { fields = fields.map { $0.0 == "outcome" ? ($0.0, "denied") : $0 } }
            let rec = AuditChain.seal(seq: UInt64(kv.first { $0.0 == "seq" }!.1.numberValue!), time: kv.first { $0.0 == "time" }!.1.stringValue!,
                                      kind: kv.first { $0.0 == "kind" }!.1.stringValue!, fields: fields, prev: prev)
            prev = rec["hash"]!.stringValue!
            resealed[i] = rec.encoded()
        }
        let reseal = try manipulated("resealed.jsonl", resealed)
        #expect(try runCtl(["audit", "verify", s.dir.file("resealed.jsonl")]).status == 0, "the chain alone cannot tell")
        #expect(reseal.status == 2 && reseal.output.contains("RE-SEALED"), "\(reseal.output)")

        // A forged checkpoint (more records claimed, no key) is refused.
        let head = try String(contentsOfFile: s.dir.file("audit.head"), encoding: .utf8)
        let headCp = try AuditCheckpoint.parse(head)
        let forged = head.replacingOccurrences(of: "\n\(headCp.seq)\n", with: "\n\(headCp.seq + 50)\n")
        try forged.write(toFile: s.dir.file("forged.checkpoint"), atomically: false, encoding: .utf8)
        let wf = try runCtl(["audit", "witness", wdir, "--from", s.dir.file("forged.checkpoint")])
        #expect(wf.status == 3 && wf.output.contains("BAD SIGNATURE"), "\(wf.output)")

        // Rollback: the log and head restored from the early copy; redlined starts on it (they agree),
        // but the witness refuses its checkpoints.
        try oldLog.write(to: URL(fileURLWithPath: s.auditPath))
        try oldHead.write(to: URL(fileURLWithPath: s.dir.file("audit.head")))
        #expect(try s.startDaemon() == nil)
        usleep(600_000)
        let wr = try runCtl(["audit", "witness", wdir, "--socket", s.operatorSocket])
        #expect(wr.status == 3 && (wr.output.contains("ROLLBACK") || wr.output.contains("FORK")), "\(wr.output)")
        print("rolled back: \(wr.output)")
    }
}
