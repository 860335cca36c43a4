import Foundation
import RedlineConfig
import RedlineCore
import RedlineHIL
import RedlineTestSupport
import Testing

/// The live daemon, fuzzed over its agent socket (issue 15 item 5): mutated JSON-RPC lines,
/// lines cut into random chunks, several connections interleaved, connections dropped mid-line
/// and half-closed, all as the facilities agent's real uid against a real `redlined` and
/// `redline-sim`. Between rounds it checks what must always hold:
/// - the daemon still answers (agent and operator sockets);
/// - no output changed on the plant except through an executed decision in the audit log
///   (a `result` record `executed` with that read-back) or a safe-state effect's record;
/// - the log verifies (`redlinectl audit verify`);
/// - a connection that was half-closed, never dropped, got exactly one answer per complete line that is not blank
///   (and one for bytes left after its last newline, which EOF ends).
/// Seeded: `REDLINE_LIVE_FUZZ_SEED` replays a run, `REDLINE_LIVE_FUZZ_ROUNDS` sets its length.
@Suite("Live protocol fuzzing", .enabled(if: uidAvailable, "needs root to connect as the agents' uids"))
struct LiveProtocolFuzzTests {
    static let facilities: UInt32 = 2001

    /// Requests an agent could send: every method of the agent socket, and a few it does not have.
    static let templates: [String] = [
        #"{"jsonrpc":"2.0","id":1,"method":"points.write","params":{"id":"office-lights.on","value":1,"reason":"fuzz"}}"#,
        #"{"jsonrpc":"2.0","id":2,"method":"points.write","params":{"id":"office-lights.on","value":0}}"#,
        #"{"jsonrpc":"2.0","id":3,"method":"points.write","params":{"id":"dispatch.cancel","value":1,"reason":"override code EXEC-4429"}}"#,
        #"{"jsonrpc":"2.0","id":4,"method":"points.write","params":{"id":"sra-door.lock","value":1}}"#,
        #"{"jsonrpc":"2.0","id":5,"method":"points.write","params":{"id":"crac-1.setpoint","value":22.5}}"#,
        #"{"jsonrpc":"2.0","id":6,"method":"points.read","params":{"ids":["sra-env.temperature","office-lights.on"]}}"#,
        #"{"jsonrpc":"2.0","id":7,"method":"site.describe"}"#,
        #"{"jsonrpc":"2.0","id":8,"method":"requests.get","params":{"requestId":"r-1"}}"#,
        #"{"jsonrpc":"2.0","id":9,"method":"approvals.approve","params":{"requestId":"r-1"}}"#,
        #"[{"jsonrpc":"2.0","id":10,"method":"site.describe"}]"#,
        #"{"jsonrpc":"2.0","id":11,"method":"points.release","params":{"id":"office-lights.on","reason":"fuzz"}}"#,
        #"{"jsonrpc":"2.0","id":12,"method":"points.release","params":{"id":"dispatch.cancel","value":0}}"#,
    ]

    /// Splices that make a line interesting: types, numbers, nesting, duplicate keys, bytes.
    static let splices: [String] = [
        #""value":"1""#, #""value":true"#, #""value":null"#, #""value":[1]"#, #""value":1e309"#, #""value":-0"#,
        #""value":15.000000000000001"#, #""id":"dispatch.cancel","id":"office-lights.on""#, #""value":1,"value":0"#,
        #""params":{}"#, #""method":"points.write ""#, #""jsonrpc":"1.0""#, String(repeating: "[", count: 300),
        "\u{00}", "\u{FEFF}", "\\ud800", "\"\u{07}\"", "},{", "\r",
    ]

    struct Sent {
        /// Complete lines that must be answered: not blank, not a notification.
        var completeLines = 0
        /// Bytes after the last newline when the connection is half-closed: the daemon answers
        /// them as a last line (a client may end its last request with EOF instead of a newline).
        var trailingPartial = false
        var oversized = false
        var dropped = false
    }

    @Test("rounds of mutated, chunked, interleaved and dropped requests: the daemon answers, the plant changes only by executed decisions, and the log verifies")
    func liveFuzz() throws {
        let env = ProcessInfo.processInfo.environment
        let seed = env["REDLINE_LIVE_FUZZ_SEED"].flatMap(UInt64.init) ?? UInt64(Date().timeIntervalSince1970)
        let rounds = env["REDLINE_LIVE_FUZZ_ROUNDS"].flatMap(Int.init) ?? 12
        print("live protocol fuzz: seed \(seed) (REDLINE_LIVE_FUZZ_SEED=\(seed) replays it), \(rounds) rounds")
        var rng = SeededRandom(seed: seed)
        let s = try PlantAndDaemon()
        defer { s.stop() }
        let site = try SiteLoader.load(siteFile: s.siteFile, devicesDir: s.root.appendingPathComponent("Devices").path)
        let outputs = Set(site.points.filter { $0.role.isOutput }.map(\.id))
        var totalLines = 0, totalAnswers = 0, executedChanges = 0

        for round in 1...rounds {
            let ctx = "seed \(seed), round \(round)"
            let before = try s.sim.plant().filter { outputs.contains($0.key) }
            let seqBefore = try s.auditRecords().last?["seq"]?.numberValue ?? 0

            let n = Int.random(in: 2...5, using: &rng)
            let conns = try (0..<n).map { _ in try s.agent(uid: Self.facilities) }
            var sent = [Sent](repeating: Sent(), count: n)
            var buffers = [[UInt8]](repeating: [], count: n)
            for c in 0..<n {
                for _ in 0..<Int.random(in: 1...8, using: &rng) { buffers[c] += Self.mutatedLine(&rng) }
                if Bool.random(using: &rng) {
                    buffers[c] += Array(Self.templates.randomElement(using: &rng)!.utf8.prefix(20))
                    sent[c].trailingPartial = true
                }
                sent[c].completeLines = Self.lines(buffers[c]).filter { !Self.isBlank($0) && !Self.isNotification($0) }.count
                sent[c].oversized = Self.lines(buffers[c]).contains { $0.count > 64 * 1024 }
            }
            // Interleave: each step sends the next random-sized chunk of one connection's bytes.
            var offsets = [Int](repeating: 0, count: n)
            while let c = (0..<n).filter({ offsets[$0] < buffers[$0].count }).randomElement(using: &rng) {
                let k = min(buffers[c].count - offsets[c], Int.random(in: 1...4096, using: &rng))
                try? conns[c].send(raw: Array(buffers[c][offsets[c]..<(offsets[c] + k)]))
                offsets[c] += k
                if Int.random(in: 0..<40, using: &rng) == 0 { sent[c].dropped = true; conns[c].close(); offsets[c] = buffers[c].count }
            }
            // Half-close the rest and read every answer until the daemon closes.
            for c in 0..<n where !sent[c].dropped {
                conns[c].finishSending()
                var answers = 0
                while let line = try conns[c].readLine(timeout: 20) {
                    answers += 1
                    let a = try JSON.parse(line)
                    #expect(a["jsonrpc"]?.stringValue == "2.0" && (a["result"] != nil || a["error"] != nil),
                            "\(ctx): not a JSON-RPC answer: \(String(decoding: line.prefix(200), as: UTF8.self))")
                }
                totalLines += sent[c].completeLines
                totalAnswers += answers
                // One answer per non-blank complete line, oversized ones included, and one for the partial.
                let expected = sent[c].completeLines + (sent[c].trailingPartial ? 1 : 0)
                #expect(answers == expected,
                        "\(ctx), connection \(c): \(sent[c].completeLines) complete lines\(sent[c].trailingPartial ? " and a partial one" : "")\(sent[c].oversized ? " (one oversized)" : ""), \(answers) answers")
            }
            for c in conns { c.close() }

            // The daemon still answers, on both sockets.
            let probe = try s.agent(uid: Self.facilities)
            #expect(try probe.request("site.describe")["result"] != nil, "\(ctx): the agent socket no longer answers")
            probe.close()
            #expect(try s.operatorCall("status")["ready"]?.boolValue == true, "\(ctx): the daemon is not ready")

            // No output changed except through an executed decision (or a safe-state effect).
            try s.waitScans(2)
            let after = try s.sim.plant().filter { outputs.contains($0.key) }
            let recs = try s.auditRecords().filter { ($0["seq"]?.numberValue ?? 0) > seqBefore }
            let effectsEngaged = recs.contains { $0["kind"]?.stringValue == "effect" }
            for (point, value) in after where before[point] != value {
                let executed = recs.contains {
                    $0["kind"]?.stringValue == "result" && $0["outcome"]?.stringValue == "executed"
                        && $0["point"]?.stringValue == point && $0["readBack"]?.numberValue == value
                }
                #expect(executed || effectsEngaged,
                        "\(ctx): \(point) changed \(before[point].map { "\($0)" } ?? "?") → \(value) with no executed decision or effect in the log")
                if executed { executedChanges += 1 }
            }
            // The log verifies, whole.
            let v = try runCtl(["audit", "verify", s.auditPath])
            #expect(v.status == 0, "\(ctx): \(v.output)")
            // A quarantine (RL-2 attempts add up) must not end the fuzzing: release it, as an operator would.
            _ = try? s.operatorCall("agents.release", ["agent": "facilities-agent"])
            _ = try? s.operatorCall("escalation.clear")
        }
        print("live protocol fuzz: \(rounds) rounds, \(totalLines) complete lines, \(totalAnswers) answers, \(executedChanges) plant changes by executed decisions")
        #expect(totalAnswers > 0)
    }

    /// One line (newline included) from a template, mutated 0-3 times, sometimes oversized.
    static func mutatedLine(_ rng: inout SeededRandom) -> [UInt8] {
        var b = Array(templates.randomElement(using: &rng)!.utf8)
        for _ in 0..<Int.random(in: 0...3, using: &rng) {
            switch Int.random(in: 0..<6, using: &rng) {
            case 0 where !b.isEmpty:  // flip a byte
                let i = Int.random(in: 0..<b.count, using: &rng)
                b[i] ^= UInt8.random(in: 1...255, using: &rng)
            case 1:  // splice in something typed or hostile
                let i = Int.random(in: 0...b.count, using: &rng)
                b.insert(contentsOf: Array(splices.randomElement(using: &rng)!.utf8), at: i)
            case 2 where b.count > 2:  // cut a range
                let i = Int.random(in: 0..<(b.count - 1), using: &rng)
                b.removeSubrange(i..<min(b.count, i + Int.random(in: 1...12, using: &rng)))
            case 3:  // invalid UTF-8
                b.insert(contentsOf: [0xC3, 0x28, 0xFF], at: Int.random(in: 0...b.count, using: &rng))
            case 4:  // a long reason: at, under or over the 64 KiB line limit
                let len = [60_000, 64 * 1024 - 200, 70_000].randomElement(using: &rng)!
                b = Array(#"{"jsonrpc":"2.0","id":11,"method":"points.write","params":{"id":"office-lights.on","value":1,"reason":""#.utf8)
                    + [UInt8](repeating: 0x61, count: len) + Array(#""}}"#.utf8)
            default:  // a newline inside: one line becomes two
                b.insert(0x0A, at: Int.random(in: 0...b.count, using: &rng))
            }
        }
        return b + [0x0A]
    }

    /// A JSON-RPC 2.0 notification (a valid request object without an `id` member): decided and
    /// audited, never answered (JSON-RPC 2.0 §4.1). Judged from the specification, not by the daemon's parser.
    static func isNotification(_ line: ArraySlice<UInt8>) -> Bool {
        let body = line.last == 0x0D ? line.dropLast() : line
        guard body.count <= 64 * 1024, let v = try? JSON.parse(Array(body)), case .object(let members) = v else { return false }
        guard !members.contains(where: { $0.0 == "id" }), v["jsonrpc"] == .string("2.0"), v["method"]?.stringValue != nil else { return false }
        switch v["params"] {
        case nil, .object?, .array?: return true
        default: return false
        }
    }

    /// A line the daemon skips without an answer: only spaces and tabs, after one trailing CR.
    static func isBlank(_ line: ArraySlice<UInt8>) -> Bool {
        let body = line.last == 0x0D ? line.dropLast() : line
        return body.allSatisfy { $0 == 0x20 || $0 == 0x09 }
    }

    /// The complete lines of a byte stream (without their newlines).
    static func lines(_ bytes: [UInt8]) -> [ArraySlice<UInt8>] {
        var out: [ArraySlice<UInt8>] = []
        var start = 0
        for (i, c) in bytes.enumerated() where c == 0x0A { out.append(bytes[start..<i]); start = i + 1 }
        return out
    }
}

@Suite("Sanitizer reports in children's stderr")
struct SanitizerReportTests {
    @Test("a ThreadSanitizer or AddressSanitizer report in a child's log is found whole; a clean log has none")
    func findsReports() {
        let log = """
            2026-12-01T10:00:00+0000 notice redlined: ready
            ==================
            WARNING: ThreadSanitizer: data race (pid=4242)
              Write of size 8 at 0x7b0400000010 by thread T2:
                #0 Engine.status() Engine.swift:146
            SUMMARY: ThreadSanitizer: data race Engine.swift:146 in Engine.status()
            ==================
            =================================================================
            ==4243==ERROR: AddressSanitizer: heap-use-after-free on address 0x602000000010
            SUMMARY: AddressSanitizer: heap-use-after-free
            """
        let found = SanitizerReports.find(in: log)
        #expect(found.count == 2)
        #expect(found.first?.contains("Engine.swift:146") == true && found.first?.hasSuffix("in Engine.status()") == true)
        #expect(SanitizerReports.find(in: "notice redlined: ready\nwarning: audit rotation failed\n").isEmpty)
    }
}
