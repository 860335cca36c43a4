import Foundation
import MCP
import RedlineClient
import RedlineCore
import RedlineMCP
import RedlineSync
import Testing

/// An in-memory daemon behind the MCP server: answers scripted per method, every call recorded.
/// It stands in for the agent socket only; the MCP server, its tool dispatch and its texts are real,
/// and the client is the MCP SDK's own `Client` over its `InMemoryTransport`.
final class ScriptedDaemon: RPCTransport, @unchecked Sendable {
    typealias Answer = @Sendable (JSON?) -> Result<JSON, ClientError>
    private let answers: [String: Answer]
    private let log = Lock<[(method: String, params: JSON?)]>([])
    let how = "in memory (scripted daemon answers)"

    init(_ answers: [String: Answer]) { self.answers = answers }

    var calls: [(method: String, params: JSON?)] { log.withLock { $0 } }

    func request(_ method: String, _ params: JSON?) throws(ClientError) -> JSON {
        log.withLock { $0.append((method, params)) }
        guard let answer = answers[method] else {
            return .obj([("jsonrpc", "2.0"), ("id", 1), ("error", .obj([("code", -32601), ("message", .string("no method \(method)"))]))])
        }
        switch answer(params) {
        case .success(let r): return .obj([("jsonrpc", "2.0"), ("id", 1), ("result", r)])
        case .failure(.rpc(let code, let message, _)):
            return .obj([("jsonrpc", "2.0"), ("id", 1), ("error", .obj([("code", .number(Double(code))), ("message", .string(message))]))])
        case .failure(let e): throw e
        }
    }

    func close() {}
}

/// A connected MCP client and the server under test.
struct Session {
    let client: Client
    let served: Task<Void, any Error>

    static func start(_ daemon: ScriptedDaemon) async throws -> Session {
        let (clientSide, serverSide) = await InMemoryTransport.createConnectedPair()
        let server = RedlineMCPServer(daemon: daemon, drainMs: 1000)
        let served = Task { try await server.serve(on: serverSide) }
        let client = Client(name: "redline-mcp-tests", version: "1")
        _ = try await client.connect(transport: clientSide)
        return Session(client: client, served: served)
    }

    func call(_ tool: String, _ args: [String: Value]? = nil) async throws -> (text: String, isError: Bool) {
        let (content, isError) = try await client.callTool(name: tool, arguments: args)
        let text = content.compactMap { c -> String? in if case .text(let t, _, _) = c { return t } else { return nil } }.joined(separator: "\n")
        return (text, isError ?? false)
    }

    func end() async {
        await client.disconnect()
        served.cancel()
    }
}

func write(_ outcome: String, rule: String? = nil, explanation: String = "because") -> ScriptedDaemon.Answer {
    { _ in .success(.obj([("requestId", "r-7"), ("outcome", .string(outcome)), ("rule", rule.map { .string($0) }), ("explanation", .string(explanation))])) }
}

@Suite("RedlineMCP over an in-memory transport")
struct MCPServerTests {
    @Test("tools/list gives exactly the five agent tools, each description carrying every red line and the finality rule")
    func toolListCarriesTheRedLines() async throws {
        let s = try await Session.start(ScriptedDaemon([:]))
        let tools = try await s.client.listTools().tools
        #expect(tools.map(\.name) == ["list_points", "read_points", "write_point", "release_point", "get_request"])
        for t in tools {
            let d = t.description ?? ""
            for rl in RedLines.all { #expect(d.contains("\(rl.id.rawValue): \(rl.title)"), "\(t.name) lacks \(rl.id.rawValue)") }
            #expect(d.contains("RL-0: "))
            #expect(d.contains("A denial is final."))
        }
        await s.end()
    }

    @Test("RL-2: a denied write_point is an error result naming the rule and saying the denial is final")
    func RL2_deniedWriteIsFinalErrorResult() async throws {
        let daemon = ScriptedDaemon(["points.write": write("denied", rule: "RL-2", explanation: "dispatch is not an agent's")])
        let s = try await Session.start(daemon)
        let r = try await s.call("write_point", ["id": "dispatch.cancel", "value": 1, "reason": "test"])
        #expect(r.isError)
        #expect(r.text.contains("DENIED by RL-2"), "\(r.text)")
        #expect(r.text.contains(RedLines.all.first { $0.id.rawValue == "RL-2" }!.title))
        #expect(r.text.contains("A denial is final."))
        let sent = try #require(daemon.calls.last)
        #expect(sent.method == "points.write")
        #expect(sent.params?["id"] == .string("dispatch.cancel"))
        #expect(sent.params?["value"] == .number(1))
        #expect(sent.params?["reason"] == .string("test"))
        await s.end()
    }

    @Test("release_point sends points.release with the id and the reason only; its answer reads as a write's; a call without id reaches no daemon")
    func releasePointIsPointsRelease() async throws {
        let daemon = ScriptedDaemon(["points.release": write("denied", rule: "RL-3", explanation: "the release would lock the door")])
        let s = try await Session.start(daemon)
        let r = try await s.call("release_point", ["id": "sra-door.lock", "reason": "schedule"])
        #expect(r.isError && r.text.contains("DENIED by RL-3") && r.text.contains("A denial is final."), "\(r.text)")
        let sent = try #require(daemon.calls.last)
        #expect(sent.method == "points.release")
        #expect(sent.params?["id"] == .string("sra-door.lock") && sent.params?["reason"] == .string("schedule"))
        #expect(sent.params?["value"] == nil)
        await #expect(throws: MCPError.self) { _ = try await s.call("release_point", ["value": 0]) }
        #expect(daemon.calls.count == 1)
        await s.end()
    }

    @Test("executed is a plain result; held is not an error and teaches get_request with the request id")
    func executedAndHeld() async throws {
        let s1 = try await Session.start(ScriptedDaemon(["points.write": write("executed")]))
        let ok = try await s1.call("write_point", ["id": "office-lights.on", "value": 1])
        #expect(!ok.isError)
        #expect(ok.text.hasPrefix("executed (request r-7)"), "\(ok.text)")
        await s1.end()

        let daemon = ScriptedDaemon(["points.write": write("held"), "requests.get": write("held")])
        let s2 = try await Session.start(daemon)
        let held = try await s2.call("write_point", ["id": "sra-door.lock", "value": 1])
        #expect(!held.isError)
        #expect(held.text.contains("get_request") && held.text.contains("\"r-7\"") && held.text.contains("Do not submit the write again"), "\(held.text)")
        let polled = try await s2.call("get_request", ["requestId": "r-7"])
        #expect(polled.text.hasPrefix("held (request r-7)"))
        #expect(daemon.calls.last?.method == "requests.get")
        #expect(daemon.calls.last?.params?["requestId"] == .string("r-7"))
        await s2.end()
    }

    @Test("malformed calls are MCP invalidParams errors that reach no daemon, and the server goes on serving")
    func malformedCallsReachNoDaemon() async throws {
        let daemon = ScriptedDaemon(["points.read": { _ in .success(.obj([("values", .array([.obj([("id", "a.b"), ("value", 2.5), ("quality", "good"), ("ageMs", 40)])]))])) }])
        let s = try await Session.start(daemon)
        for (tool, args) in [("no_such_tool", [:]), ("write_point", ["id": "x", "value": "abc"]), ("write_point", ["id": "x"]),
                             ("read_points", ["ids": .array([])]), ("list_points", ["extra": 1])] as [(String, [String: Value])] {
            await #expect(throws: MCPError.self, "\(tool) \(args)") { _ = try await s.call(tool, args) }
        }
        #expect(daemon.calls.isEmpty, "a malformed call reached the daemon: \(daemon.calls.map(\.method))")
        let r = try await s.call("read_points", ["ids": ["a.b"]])
        #expect(!r.isError)
        #expect(r.text == "a.b = 2.5 (good, 40 ms ago)")
        await s.end()
    }

    @Test("daemon errors and transport failures are error results; a failed write says its outcome is unknown")
    func failuresAreReadableResults() async throws {
        let daemon = ScriptedDaemon([
            "site.describe": { _ in .failure(.rpc(code: -32006, message: "not an agent", data: nil)) },
            "points.read": { _ in .failure(.connect("/run/redline/agent.sock", errno: ENOENT)) },
            "points.write": { _ in .failure(.timeout) },
            "requests.get": { _ in .failure(.rpc(code: -32004, message: "no such request", data: nil)) },
        ])
        let s = try await Session.start(daemon)
        let refused = try await s.call("list_points")
        #expect(refused.isError && refused.text.contains("must be started as the agent's own uid"), "\(refused.text)")
        let down = try await s.call("read_points", ["ids": ["a.b"]])
        #expect(down.isError && down.text.hasPrefix("cannot reach redlined"), "\(down.text)")
        let lost = try await s.call("write_point", ["id": "a.b", "value": 1])
        #expect(lost.isError && lost.text.contains("Its outcome is unknown"), "\(lost.text)")
        let unknown = try await s.call("get_request", ["requestId": "nope"])
        #expect(unknown.isError, "\(unknown.text)")
        #expect(daemon.calls.map(\.method) == ["site.describe", "points.read", "points.write", "requests.get"])
        await s.end()
    }

    @Test("an outcome the server does not know is an error result: the write counts as not done")
    func unknownOutcomeIsNotDone() async throws {
        let s = try await Session.start(ScriptedDaemon(["points.write": write("maybe")]))
        let r = try await s.call("write_point", ["id": "a.b", "value": 1])
        #expect(r.isError)
        #expect(r.text.contains("treat the write as not done"), "\(r.text)")
        await s.end()
    }
}
