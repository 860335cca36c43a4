import Foundation
import RedlineCore
@testable import RedlineDaemon
import RedlineTestSupport
import Testing

@Suite("Audit log writer")
struct AuditLogTests {
    func lines(_ path: String) throws -> [String] {
        try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map(String.init)
    }

    @Test("records chain from genesis and verify")
    func chain() async throws {
        let dir = TempDir()
        let log = try AuditLog(options: .init(path: dir.file("a.jsonl")))
        for i in 0..<5 { try await log.append(kind: "decision", [("n", .number(Double(i)))]) }
        log.close()
        let data = Array(try Data(contentsOf: URL(fileURLWithPath: dir.file("a.jsonl"))))
        #expect(AuditChain.verify(data) == .ok(records: 5, lastSeq: 5, lastHash: try JSON.parse(try lines(dir.file("a.jsonl")).last!)["hash"]!.stringValue!))
    }

    @Test("reopening continues the chain")
    func reopen() async throws {
        let dir = TempDir()
        let p = dir.file("a.jsonl")
        var log = try AuditLog(options: .init(path: p))
        try await log.append(kind: "x", [])
        log.close()
        log = try AuditLog(options: .init(path: p))
        #expect(log.lastSeq == 1)
        try await log.append(kind: "y", [])
        log.close()
        let v = AuditChain.verify(Array(try Data(contentsOf: URL(fileURLWithPath: p))))
        guard case .ok(let n, _, _) = v else { Issue.record("\(v)"); return }
        #expect(n == 2)
    }

    @Test("a torn final line from a crash is cut off, noted, and the chain continues")
    func tornTail() async throws {
        let dir = TempDir()
        let p = dir.file("a.jsonl")
        var log = try AuditLog(options: .init(path: p))
        try await log.append(kind: "x", [])
        try await log.append(kind: "y", [])
        log.close()
        let h = try FileHandle(forWritingTo: URL(fileURLWithPath: p))
        h.seekToEndOfFile()
        h.write(Data(#"{"seq":3,"time":"2026-"#.utf8))
        try h.close()
        log = try AuditLog(options: .init(path: p))
        #expect(log.recoveryNote?.contains("torn") == true)
        #expect(log.lastSeq == 2)
        try await log.append(kind: "z", [])
        log.close()
        let v = AuditChain.verify(Array(try Data(contentsOf: URL(fileURLWithPath: p))))
        guard case .ok(let n, _, _) = v else { Issue.record("\(v)"); return }
        #expect(n == 3)
    }

    @Test("a tampered last record is refused at open")
    func tamperedTail() async throws {
        let dir = TempDir()
        let p = dir.file("a.jsonl")
        let log = try AuditLog(options: .init(path: p))
        try await log.append(kind: "decision", [("outcome", "denied")])
        log.close()
        let text = try String(contentsOfFile: p, encoding: .utf8).replacingOccurrences(of: "denied", with: "allowd")
        try text.write(toFile: p, atomically: true, encoding: .utf8)
        #expect(throws: AuditLog.OpenError.self) { try AuditLog(options: .init(path: p)) }
    }

    @Test("rotation keeps seq and prev continuous across files")
    func rotation() async throws {
        let dir = TempDir()
        let p = dir.file("a.jsonl")
        let log = try AuditLog(options: .init(path: p, maxBytes: 600, keep: 20))
        for i in 0..<12 { try await log.append(kind: "decision", [("n", .number(Double(i))), ("pad", .string(String(repeating: "x", count: 100)))]) }
        log.close()
        let rotated = (1...20).map { "\(p).\($0)" }.filter { FileManager.default.fileExists(atPath: $0) }
        #expect(rotated.count >= 2)
        var v = AuditChain.Verifier()
        for f in rotated.reversed() + [p] {
            let data = Array(try Data(contentsOf: URL(fileURLWithPath: f)))
            for line in data.split(separator: 0x0A) { v.feed(line) }
        }
        guard case .ok(let n, let last, _) = v.verdict else { Issue.record("\(v.verdict)"); return }
        #expect(n == 12 && last == 12)
        // The newest file alone still verifies (it anchors on its first record).
        let alone = AuditChain.verify(Array(try Data(contentsOf: URL(fileURLWithPath: p))))
        if case .broken = alone { Issue.record("newest file alone: \(alone)") }
    }
    @Test("a failed rotation (the old name cannot be removed) leaves a log that is still written, and says so; it rotates once it can")
    func failedRotationKeepsWriting() async throws {
        let dir = TempDir()
        let p = dir.file("a.jsonl")
        // A non-empty folder where the oldest rotated file goes: unlink fails (EISDIR), and so would the rename.
        try FileManager.default.createDirectory(atPath: p + ".1/blocker", withIntermediateDirectories: true)
        let warnings = WarningBox()
        let log = try AuditLog(options: .init(path: p, maxBytes: 500, keep: 1, onWarning: { warnings.add($0) }))
        for i in 0..<8 { try await log.append(kind: "decision", [("n", .number(Double(i))), ("pad", .string(String(repeating: "x", count: 100)))]) }
        #expect(log.statusJSON["rotationError"]?.stringValue?.contains("cannot remove \(p).1") == true, "\(log.statusJSON.encoded())")
        #expect(warnings.all.contains { $0.contains("audit rotation failed") })
        #expect(try lines(p).count == 8, "every record went to the current file")
        try FileManager.default.removeItem(atPath: p + ".1")
        try await log.append(kind: "decision", [("after", "the way is clear")])
        // The append returns when its record is durable; the rotation after it runs next, on the
        // audit thread (waiters are not held up by a rotation), so wait for it, boundedly.
        var cleared = false
        for _ in 0..<500 where !cleared {
            cleared = log.statusJSON["rotationError"] == nil || log.statusJSON["rotationError"] == .null
            if !cleared { try await Task.sleep(for: .milliseconds(10)) }
        }
        #expect(cleared, "\(log.statusJSON.encoded())")
        log.close()
        #expect(FileManager.default.fileExists(atPath: p + ".1"))
        var v = AuditChain.Verifier()
        for f in [p + ".1", p] { for line in Array(try Data(contentsOf: URL(fileURLWithPath: f))).split(separator: 0x0A) { v.feed(line) } }
        guard case .ok(let n, _, _) = v.verdict else { Issue.record("\(v.verdict)"); return }
        #expect(n == 9)
    }

    @Test("retention: the daemon warns before rotation removes records no witness has covered, and not once they are witnessed")
    func retentionWarnsBeforeRemovingUnwitnessed() async throws {
        let dir = TempDir()
        let p = dir.file("audit.jsonl")
        let warnings = WarningBox()
        let cp = AuditLog.Checkpointing(origin: "redline/test", key: .init(), everyRecords: 1, everySeconds: 3600)
        let log = try AuditLog(options: .init(path: p, maxBytes: 400, keep: 1, checkpoints: cp, onWarning: { warnings.add($0) }))
        for i in 0..<3 { try await log.append(kind: "decision", [("n", .number(Double(i))), ("pad", .string(String(repeating: "x", count: 150)))]) }
        // One rotation: audit.jsonl.1 is the next to go, unwitnessed.
        let warning = log.statusJSON["retentionWarning"]?.stringValue
        #expect(warning?.contains("\(p).1") == true && warning?.contains("no witness has covered it") == true, "\(log.statusJSON.encoded())")
        #expect(warnings.all.contains { $0.contains("will be removed at the next rotation") })
        for i in 0..<3 { try await log.append(kind: "decision", [("n", .number(Double(i))), ("pad", .string(String(repeating: "y", count: 150)))]) }
        #expect(log.statusJSON["unwitnessedRemoved"]?.numberValue ?? 0 >= 1, "\(log.statusJSON.encoded())")
        #expect(warnings.all.contains { $0.contains("which no witness has covered") })
        // A witness stores the latest checkpoint: nothing unwitnessed is left to warn about.
        usleep(100_000)
        let latest = try #require(log.latestCheckpoint)
        #expect(!log.witnessed(seq: latest.seq, hash: String(repeating: "0", count: 64)), "a hash that is not ours is refused")
        #expect(log.witnessed(seq: latest.seq, hash: latest.hash))
        let removedBefore = log.statusJSON["unwitnessedRemoved"]?.numberValue ?? 0
        for i in 0..<3 { try await log.append(kind: "decision", [("n", .number(Double(i))), ("pad", .string(String(repeating: "z", count: 150)))]) }
        log.close()
        #expect(log.statusJSON["unwitnessedRemoved"]?.numberValue == removedBefore, "a witnessed file was counted as unwitnessed")

        // The witnessed seq survives a restart: reopened, the daemon knows what a witness covered.
        let reopened = try AuditLog(options: .init(path: p, maxBytes: 400, keep: 1, checkpoints: cp, onWarning: { warnings.add($0) }))
        #expect(reopened.statusJSON["witnessedSeq"]?.numberValue == Double(latest.seq), "\(reopened.statusJSON.encoded())")
        reopened.close()
        // A file that says more than the log holds, or garbage, counts as nothing witnessed.
        for text in ["99999 \(latest.hash)\n", "not a checkpoint\n"] {
            try text.write(toFile: dir.file("audit.witnessed"), atomically: true, encoding: .utf8)
            let again = try AuditLog(options: .init(path: p, maxBytes: 400, keep: 1, checkpoints: cp, onWarning: { warnings.add($0) }))
            #expect(again.statusJSON["witnessedSeq"]?.numberValue == 0, "\(text): \(again.statusJSON.encoded())")
            again.close()
        }
    }
}

final class WarningBox: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [String] = []
    func add(_ s: String) { lock.lock(); items.append(s); lock.unlock() }
    var all: [String] { lock.lock(); defer { lock.unlock() }; return items }
}

@Suite("JSON-RPC parsing")
struct RPCParseTests {
    func code(_ s: String) -> Int? {
        if case .failure(let r) = RPC.parse(line: Array(s.utf8)) { return r.error.code.rawValue }
        return nil
    }

    @Test("errors by class", arguments: [
        ("{", -32700), ("[]", -32600), ("[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"x\"}]", -32600),
        ("\"text\"", -32600), ("{\"jsonrpc\":\"2.0\",\"id\":{},\"method\":\"x\"}", -32600),
        ("{\"id\":1,\"method\":\"x\"}", -32600), ("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":5}", -32600),
        ("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"x\",\"params\":3}", -32600),
        ("{\"jsonrpc\":\"2.0\",\"id\":1,\"id\":2,\"method\":\"x\"}", -32700),
    ])
    func errors(_ line: String, _ expected: Int) {
        #expect(code(line) == expected)
    }

    @Test("a valid request and a notification")
    func valid() throws {
        guard case .success(let r) = RPC.parse(line: Array(#"{"jsonrpc":"2.0","id":"a","method":"points.read","params":{"ids":[]}}"#.utf8)) else {
            Issue.record("did not parse"); return
        }
        #expect(r.method == "points.read" && r.id == .string("a") && !r.isNotification)
        guard case .success(let n) = RPC.parse(line: Array(#"{"jsonrpc":"2.0","method":"site.describe"}"#.utf8)) else {
            Issue.record("did not parse"); return
        }
        #expect(n.isNotification)
    }

    @Test("token bucket allows a burst then the sustained rate")
    func tokenBucket() {
        var b = TokenBucket(rate: 10, burst: 5, now: 0)
        var got: [Bool] = []
        for _ in 0..<6 { got.append(b.take(now: 0)) }
        got.append(b.take(now: 0.1))
        got.append(b.take(now: 0.1))
        #expect(got == [true, true, true, true, true, false, true, false])
    }
}

/// A 64 KiB tmpfs, mounted for one test.
struct SmallDisk {
    let path: String
    init(in dir: TempDir) throws {
        path = dir.file("small")
        mkdir(path, 0o755)
        try Self.run("/bin/mount", ["-t", "tmpfs", "-o", "size=64k", "tmpfs", path])
    }
    func unmount() { try? Self.run("/bin/umount", [path]) }
    static func run(_ tool: String, _ args: [String]) throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: tool)
        p.arguments = args
        try p.run()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { throw TestSupportError("\(tool) \(args) failed") }
    }
}

@Suite("Audit log on a full disk", .enabled(if: getuid() == 0, "needs root to mount a small tmpfs"))
struct AuditDiskFullTests {
    @Test("a failed append leaves nothing behind: the file is cut back, the failure shows, and the chain continues when space returns")
    func diskFull() async throws {
        let dir = TempDir()
        let mnt = try SmallDisk(in: dir)
        defer { mnt.unmount() }
        let path = mnt.path + "/audit.jsonl"
        let log = try AuditLog(options: .init(path: path))
        let filler = String(repeating: "f", count: 2000)
        var failures = 0
        var written = 0
        for i in 0..<200 {
            do {
                try await log.append(kind: "decision", [("n", .number(Double(i))), ("pad", .string(filler))])
                written += 1
            } catch {
                failures += 1
                if failures >= 3 { break }
            }
        }
        #expect(failures >= 1, "the tmpfs filled up")
        #expect(log.health.failure != nil)
        #expect(log.health.lostRecords >= failures)
        // Nothing half-written: the file verifies as it stands.
        let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
        guard case .ok(let n, _, _) = AuditChain.verify(bytes) else { Issue.record("\(AuditChain.verify(bytes))"); return }
        #expect(n == written)
        // Space comes back (the log is rotated away by hand here): the next record chains on the last good one.
        try FileManager.default.removeItem(atPath: path)
        try Data(bytes).write(to: URL(fileURLWithPath: dir.file("kept.jsonl")))
        log.close()
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let again = try AuditLog(options: .init(path: path))
        try await again.append(kind: "decision", [("after", "space came back")])
        again.close()
        let v = AuditChain.verify(Array(try Data(contentsOf: URL(fileURLWithPath: path))))
        guard case .ok(let m, _, _) = v else { Issue.record("\(v)"); return }
        #expect(m == written + 1)
    }

    @Test("records queued behind a failed batch fail too; the log keeps its last good length and writes again")
    func failureThenRecovery() async throws {
        let dir = TempDir()
        let mnt = try SmallDisk(in: dir)
        defer { mnt.unmount() }
        let path = mnt.path + "/audit.jsonl"
        let log = try AuditLog(options: .init(path: path))
        try await log.append(kind: "start", [])
        // Fill the disk with another file, then free it.
        let hog = mnt.path + "/hog"
        _ = FileManager.default.createFile(atPath: hog, contents: Data(repeating: 0, count: 60 * 1024))
        var failed = false
        for _ in 0..<10 {
            do { try await log.append(kind: "decision", [("pad", .string(String(repeating: "p", count: 3000)))]) } catch { failed = true; break }
        }
        #expect(failed)
        try FileManager.default.removeItem(atPath: hog)
        try await log.append(kind: "decision", [("after", "recovered")])
        #expect(log.health.failure == nil)
        log.close()
        let v = AuditChain.verify(Array(try Data(contentsOf: URL(fileURLWithPath: path))))
        guard case .ok = v else { Issue.record("the log does not verify after recovery: \(v)"); return }
    }
}
