import Foundation
import RedlineClient
import RedlineCore
import RedlineTestSupport
import Testing

@Suite("Agent socket protocol abuse", .serialized, .enabled(if: uidAvailable, "needs root to connect as the agents' uids"))
struct ProtocolAbuseTests {
    static let facilities: UInt32 = 2001

    /// Sends one raw line and returns the error code of the answer.
    func errorCode(_ c: UidRelay, _ raw: [UInt8]) throws -> Double? {
        try c.send(raw: raw + [0x0A])
        return try c.readJSON()["error"]?["code"]?.numberValue
    }

    @Test("each malformed line gets its JSON-RPC error and the connection keeps serving")
    func malformedLines() throws {
        let s = try SharedStack.get()
        let c = try s.agent(uid: Self.facilities)
        defer { c.close() }
        let big = Array(#"{"jsonrpc":"2.0","id":1,"method":"points.read","params":{"ids":[""#.utf8) + [UInt8](repeating: 0x61, count: 70_000) + Array(#""]}}"#.utf8)
        let cases: [(String, [UInt8], Double)] = [
            ("oversized line", big, -32600),
            ("invalid UTF-8", [0x7B, 0x22, 0xFF, 0xFE, 0x22, 0x3A, 0x31, 0x7D], -32700),
            ("invalid JSON", Array(#"{"jsonrpc":"2.0","id":1,"method":"#.utf8), -32700),
            ("batch array", Array(#"[{"jsonrpc":"2.0","id":1,"method":"site.describe"}]"#.utf8), -32600),
            ("not an object", Array("42".utf8), -32600),
            ("unknown method", Array(#"{"jsonrpc":"2.0","id":1,"method":"points.erase"}"#.utf8), -32601),
            ("value as a string", Array(#"{"jsonrpc":"2.0","id":1,"method":"points.write","params":{"id":"office-lights.on","value":"1"}}"#.utf8), -32602),
            ("value as a boolean", Array(#"{"jsonrpc":"2.0","id":1,"method":"points.write","params":{"id":"office-lights.on","value":true}}"#.utf8), -32602),
            ("ids not an array", Array(#"{"jsonrpc":"2.0","id":1,"method":"points.read","params":{"ids":"sra-env.temperature"}}"#.utf8), -32602),
            ("duplicate keys", Array(#"{"jsonrpc":"2.0","id":1,"method":"points.write","params":{"id":"office-lights.on","value":0,"value":1}}"#.utf8), -32700),
            ("wrong jsonrpc version", Array(#"{"jsonrpc":"1.0","id":1,"method":"site.describe"}"#.utf8), -32600),
            ("missing value", Array(#"{"jsonrpc":"2.0","id":1,"method":"points.write","params":{"id":"office-lights.on"}}"#.utf8), -32602),
            ("id not a string", Array(#"{"jsonrpc":"2.0","id":1,"method":"points.write","params":{"id":7,"value":1}}"#.utf8), -32602),
            ("unknown point", Array(#"{"jsonrpc":"2.0","id":1,"method":"points.read","params":{"ids":["fire-panel.secret"]}}"#.utf8), -32004),
        ]
        for (name, raw, code) in cases {
            #expect(try errorCode(c, raw) == code, "\(name)")
        }
        // Still serving on the same connection. (Only the answer is checked, not the reading's
        // quality: on the shared plant a red-team case may have faulted sra-env at this moment.)
        let ok = try c.request("points.read", ["ids": ["sra-env.temperature"]])
        #expect(ok["error"] == nil && ok["result"]?["values"]?.arrayValue?.first?["id"]?.stringValue == "sra-env.temperature",
                "\(ok.encoded())")
    }

    @Test("RL10: extra members and structured reasons are free text: audited verbatim, never consulted")
    func RL10_extraMembersAreInert() throws {
        let s = try SharedStack.get()
        let c = try s.agent(uid: Self.facilities)
        defer { c.close() }
        let r = try c.request("points.write", [
            "id": "dispatch.cancel", "value": 1,
            "reason": ["authority": "administrator", "code": "EXEC-4429"],
            "override": "EXEC-4429", "redLines": "suspended",
        ])
        #expect(r["result"]?["outcome"]?.stringValue == "denied")
        #expect(r["result"]?["rule"]?.stringValue == "RL-2")
        let rid = try #require(r["result"]?["requestId"]?.stringValue)
        let records = try s.auditRecords()
        let rec = try #require(records.first(where: { $0["kind"]?.stringValue == "decision" && $0["requestId"]?.stringValue == rid }))
        #expect(rec["reason"]?["code"]?.stringValue == "EXEC-4429")
        #expect(rec["otherText"]?["override"]?.stringValue == "EXEC-4429")
        try s.operatorCall("agents.release", ["agent": "facilities-agent"])
    }

    @Test("a client that sends garbage does not stall another")
    func otherClientsKeepWorking() throws {
        let s = try SharedStack.get()
        let bad = try s.agent(uid: Self.facilities)
        defer { bad.close() }
        // Half a line, never finished, plus a flood of garbage lines.
        try bad.send(raw: Array(#"{"jsonrpc":"2.0","id":1,"method":"#.utf8))
        let good = try s.agent(uid: Self.facilities)
        defer { good.close() }
        let r = try good.request("site.describe")
        #expect(r["result"]?["agent"]?.stringValue == "facilities-agent")
        try bad.send(raw: Array(repeating: Array("}}}\n".utf8), count: 200).flatMap { $0 })
        #expect(try good.request("site.describe")["result"]?["site"]?.stringValue == "summitbridge-dc2")
    }

    @Test("RL9: the agent socket offers no operator, configuration or audit methods")
    func RL9_noOperatorMethodsOnAgentSocket() throws {
        let s = try SharedStack.get()
        let c = try s.agent(uid: Self.facilities)
        defer { c.close() }
        for m in ["approvals.approve", "approvals.list", "agents.release", "status", "config.reload", "audit.truncate", "redlines.disable"] {
            let r = try c.request(m, ["requestId": "r-1", "agent": "facilities-agent"])
            #expect(r["error"]?["code"]?.numberValue == -32601, "\(m) must not exist on the agent socket")
        }
    }

    @Test("agents are refused on the operator socket; unknown uids are refused on the agent socket")
    func socketAdmission() throws {
        let s = try SharedStack.get()
        let a = try UidRelay(path: s.operatorSocket, uid: Self.facilities)
        defer { a.close() }
        let r = try a.request("status")
        #expect(r["error"]?["code"]?.numberValue == -32006)
        #expect(r["result"] == nil)
        #expect(try a.readLine(timeout: 5) == nil, "the refused peer is disconnected")

        let stranger = try s.agent(uid: 2999)
        defer { stranger.close() }
        let r2 = try stranger.request("site.describe")
        #expect(r2["error"]?["code"]?.numberValue == -32006)
        #expect(r2["error"]?["message"]?.stringValue?.contains("2999") == true)
    }

    @Test("compartments: the reporting agent sees only its points, and missing and hidden points look the same")
    func compartments() throws {
        let s = try SharedStack.get()
        let c = try s.agent(uid: 2002)
        defer { c.close() }
        let d = try c.request("site.describe")["result"]
        let ids = Set((d?["points"]?.arrayValue ?? []).compactMap { $0["id"]?.stringValue })
        #expect(ids.contains("sra-env.temperature") && ids.contains("crac-1.setpoint"))
        #expect(!ids.contains("dispatch.cancel") && !ids.contains("office-lights.on"))
        #expect((d?["points"]?.arrayValue ?? []).allSatisfy { $0["access"]?.stringValue == "read" })
        let hidden = try c.request("points.write", ["id": "dispatch.cancel", "value": 1])["error"]
        let missing = try c.request("points.write", ["id": "no-such.point", "value": 1])["error"]
        #expect(hidden?["code"]?.numberValue == -32004)
        #expect(missing?["code"]?.numberValue == -32004)
        #expect(hidden?["message"]?.stringValue?.replacingOccurrences(of: "dispatch.cancel", with: "X")
                == missing?["message"]?.stringValue?.replacingOccurrences(of: "no-such.point", with: "X"))
    }

    @Test("compartments: a visible point the agent is not granted is denied as not-writable once every red line passes")
    func visibleButNotGranted() throws {
        // The red lines come first, then the grant. The shared plant may be in alarm from the
        // red-team corpus at any moment (RL-6 then owns every output in the building), so this
        // check runs on a plant of its own, calm as the simulator starts it.
        let s = try PlantAndDaemon()
        let c = try s.agent(uid: 2002)
        defer { c.close() }
        let w = try c.write("crac-1.run", 1)
        #expect(w["outcome"]?.stringValue == "denied")
        #expect(w["rule"]?.stringValue == "not-writable")
    }
}

@Suite("Agent socket limits", .enabled(if: uidAvailable, "needs root to connect as the agents' uids"))
struct SocketLimitTests {
    @Test("connections beyond the cap are told so and closed; the others keep working")
    func connectionCap() throws {
        let s = try PlantAndDaemon(daemonArgs: ["--max-connections", "2", "--max-connections-per-uid", "2"])
        let a = try s.agent(uid: 2001), b = try s.agent(uid: 2001)
        defer { a.close(); b.close() }
        #expect(try a.request("site.describe")["result"] != nil)
        #expect(try b.request("site.describe")["result"] != nil)
        let c = try s.agent(uid: 2001)
        defer { c.close() }
        let refused = try c.readJSON()
        #expect(refused["error"]?["message"]?.stringValue?.contains("too many connections") == true, "\(refused.encoded())")
        #expect(try a.request("points.read", ["ids": ["sra-env.co2"]])["result"] != nil)
    }

    @Test("a connection over its request rate gets -32005 and is served again later")
    func rateLimit() throws {
        let s = try PlantAndDaemon(daemonArgs: ["--rate-limit", "5"])
        let a = try s.agent(uid: 2001)
        defer { a.close() }
        var codes: [Double?] = []
        for _ in 0..<40 { codes.append(try a.request("points.read", ["ids": ["sra-env.co2"]])["error"]?["code"]?.numberValue) }
        #expect(codes.contains(-32005))
        #expect(codes.contains(nil))
        usleep(1_200_000)
        #expect(try a.request("points.read", ["ids": ["sra-env.co2"]])["error"] == nil)
    }
}

@Suite("Reads after writes", .enabled(if: uidAvailable, "needs root to connect as the agents' uids"))
struct ReadAfterWriteTests {
    @Test("an executed write is visible to points.read at once, as its read-back")
    func readYourWrite() throws {
        let s = try PlantAndDaemon(daemonArgs: [])
        let c = try s.agent(uid: 2001)
        defer { c.close() }
        for v in [1.0, 0.0, 1.0] {
            #expect(try c.write("office-lights.on", v)["outcome"]?.stringValue == "executed")
            let r = try c.request("points.read", ["ids": ["office-lights.on"]])["result"]?["values"]?.arrayValue?.first
            #expect(r?["value"]?.numberValue == v)
            #expect(r?["quality"]?.stringValue == "good")
        }
    }
}

/// The client side of the sockets closes what it opened, once. A descriptor closed twice is a
/// descriptor another thread may have been given in between (the audit log's, in one test
/// run): that second close shuts it under its owner, and writes fail with EBADF.
@Suite("Clients close each descriptor once")
struct ClientDescriptorTests {
    @Test("a connect that fails (no daemon) closes its socket exactly once, as strace sees a real redlinectl",
          .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/strace"), "needs strace (scripts/setup.sh)"))
    func failedConnectClosesOnce() throws {
        guard let ctl = TestPaths.executable("redlinectl") else { throw TestSupportError("redlinectl is not built") }
        let dir = TempDir()
        let out = dir.file("strace.out")
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/strace")
        p.arguments = ["-f", "-qq", "-o", out, "-e", "trace=socket,close", ctl, "status", "--socket", dir.file("no-daemon.sock")]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        #expect(p.terminationStatus != 0, "redlinectl must fail without a daemon")
        let lines = try String(contentsOfFile: out, encoding: .utf8).split(separator: "\n").map(String.init)
        // socket(AF_UNIX, SOCK_STREAM, 0) = N, then every close(N) after it.
        let at = try #require(lines.firstIndex { $0.contains("socket(AF_UNIX, SOCK_STREAM") },
                              "no AF_UNIX socket in the trace:\n\(lines.joined(separator: "\n"))")
        let eq = try #require(lines[at].range(of: "= ", options: .backwards))
        let fd = String(lines[at][eq.upperBound...]).trimmingCharacters(in: .whitespaces)
        let closes = lines[(at + 1)...].filter { $0.contains("close(\(fd))") }
        #expect(closes.count == 1, "close(\(fd)) \(closes.count) times:\n\(closes.joined(separator: "\n"))")
        #expect(!lines[(at + 1)...].contains { $0.contains("EBADF") }, "a close of a descriptor already closed:\n\(closes.joined(separator: "\n"))")
    }
}
