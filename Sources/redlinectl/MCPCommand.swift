#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import Foundation
import MCP
import RedlineClient
import RedlineCore
import Synchronization

/// `redlinectl mcp`: a stdio MCP server for LLM agents.
///
/// It runs as the agent's own uid and speaks only to the agent socket, so the
/// daemon identifies the agent by SO_PEERCRED and every compartment and red line
/// applies unchanged. It offers nothing from the operator side.
struct MCPServe: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mcp",
        abstract: "Serve the agent socket to an LLM as MCP tools over stdio (run as the agent's uid).",
        discussion: """
            Speaks the Model Context Protocol on stdin/stdout and offers four tools: \
            list_points, read_points, write_point and get_request. Each call goes to the \
            agent socket of redlined, so the agent's grants and every red line apply unchanged. \
            Denials come back as tool results with isError set, naming the rule; they are final. \
            Nothing on the operator side (approvals, quarantine, status, configuration) is offered.

            Attach it to an MCP client as a stdio server whose command runs as the agent's own \
            uid (the uid the site file gives the agent, e.g. 2001 for facilities-agent), for \
            example in a desktop client's configuration:

              "mcpServers": {
                "redline": {
                  "command": "/usr/local/bin/redlinectl",
                  "args": ["mcp", "--socket", "/run/redline/agent.sock"]
                }
              }

            If the client runs as another user, have it start the server as the agent through \
            sudo, with a sudoers rule that allows exactly this command \
            (alice ALL=(facilities-agent) NOPASSWD: /usr/local/bin/redlinectl mcp):

              "command": "/usr/bin/sudo",
              "args": ["-n", "-u", "facilities-agent", "/usr/local/bin/redlinectl", "mcp"]

            or, from a client running as root, through setpriv:

              "command": "/usr/bin/setpriv",
              "args": ["--reuid", "facilities-agent", "--regid", "facilities-agent",
                       "--init-groups", "/usr/local/bin/redlinectl", "mcp"]

            The agent's account needs to reach the agent socket and nothing else: when redlined \
            runs with --agent-group redline-agents the socket is mode 0660, so put the account in \
            that group (usermod -aG redline-agents facilities-agent) and keep it out of \
            redline-operators. It needs no access to the operator socket, the configuration, the \
            audit log or any device. Logs go to stderr; stdout carries only MCP.
            """)

    @Option(name: .long, help: ArgumentHelp("Agent socket (default: \(SocketPaths.agentHelp)).", valueName: "PATH"))
    var socket: String?

    @Option(name: .long, help: ArgumentHelp("How long to wait for redlined on each call, in milliseconds.", valueName: "MS"))
    var timeoutMs: Int = 15_000

    var agentPath: String { SocketPaths.agent(socket) }

    func validate() throws {
        guard timeoutMs > 0 else { throw ValidationError("--timeout-ms must be positive") }
    }

    func run() async throws {
        // A daemon or client that goes away must give EPIPE, not kill the server.
        signal(SIGPIPE, SIG_IGN)
        let link = DaemonLink(path: agentPath, timeoutMs: timeoutMs)
        let server = Server(
            name: "redline", version: "1.0.0", title: "Redline (mediated building controls)",
            instructions: MCPText.instructions,
            capabilities: .init(tools: .init(listChanged: false)))
        await server.withMethodHandler(ListTools.self) { _ in .init(tools: MCPTools.all) }
        let inFlight = InFlight()
        await server.withMethodHandler(CallTool.self) { params in
            inFlight.enter()
            defer { inFlight.leave() }
            return try await MCPTools.call(params, link: link)
        }
        printErr("redlinectl mcp: serving MCP on stdio; agent socket \(agentPath)")
        try await server.start(transport: StdioTransport())
        await server.waitUntilCompleted()
        // stdin closed: answer what was already asked (a write may be executing) before leaving.
        let deadline = ContinuousClock.now + .milliseconds(timeoutMs)
        while inFlight.count > 0, ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(10)) }
        try? await Task.sleep(for: .milliseconds(200))
        await server.stop()
    }
}

/// Tool calls being answered.
final class InFlight: Sendable {
    private let n = Atomic<Int>(0)
    func enter() { n.add(1, ordering: .relaxed) }
    func leave() { n.subtract(1, ordering: .relaxed) }
    var count: Int { n.load(ordering: .relaxed) }
}

// MARK: - Talking to redlined off the cooperative pool

/// Runs blocking `LineClient` calls on one dedicated thread, one call at a time.
///
/// Each call opens a fresh connection (cheap on a Unix socket), so a restarted
/// daemon is picked up and a broken connection never leaks into the next call.
final class DaemonLink: @unchecked Sendable {
    private struct Job {
        let method: String
        let params: JSON?
        let done: @Sendable (Result<JSON, ClientError>) -> Void
    }

    let path: String
    let timeoutMs: Int
    private let cond = NSCondition()
    private var jobs: [Job] = []  // guarded by cond

    init(path: String, timeoutMs: Int) {
        self.path = path
        self.timeoutMs = timeoutMs
        let thread = Thread { [self] in self.work() }
        thread.name = "redline-agent-socket"
        thread.start()
    }

    /// One JSON-RPC call on the agent socket.
    func call(_ method: String, _ params: JSON? = nil) async -> Result<JSON, ClientError> {
        await withCheckedContinuation { (c: CheckedContinuation<Result<JSON, ClientError>, Never>) in
            cond.lock()
            jobs.append(Job(method: method, params: params) { c.resume(returning: $0) })
            cond.signal()
            cond.unlock()
        }
    }

    private func work() {
        while true {
            cond.lock()
            while jobs.isEmpty { cond.wait() }
            let job = jobs.removeFirst()
            cond.unlock()
            job.done(perform(job.method, job.params))
        }
    }

    /// Not inlined into `work()`, on purpose: inlined, the whole `LineClient` (connect, send and
    /// read loops, typed throws) lands inside `work()`'s endless loop, and the optimizer's loop-invariant
    /// code motion pass (its alias analysis, `AccessPathWalker`) then took tens of minutes on that one
    /// function in `swift build -c release` (Swift 6.3): the whole module compiles in seconds without it.
    /// One call per job costs nothing next to opening a socket.
    @inline(never)
    private func perform(_ method: String, _ params: JSON?) -> Result<JSON, ClientError> {
        do {
            let client = try LineClient(path: path, timeoutMs: timeoutMs)
            defer { client.close() }
            return .success(try client.call(method, params))
        } catch {
            return .failure(error)
        }
    }
}

// MARK: - Texts the model reads

enum MCPText {
    /// RL-0 lives inside every conditioned line (docs/DESIGN.md §3), so it has no entry in `RedLines.all`.
    static let rl0 = "Unknown is unsafe: a stale, failed or never-read input counts as its dangerous value (occupied, in alarm, hazard)"

    /// The red lines, one a line, titles from the compiled-in table.
    static var redLineList: String {
        (["RL-0: " + rl0] + RedLines.all.map { "\($0.id.rawValue): \($0.title)" }).joined(separator: "\n")
    }

    static let finality = """
        A denial is final. Do not argue with it and do not work around it: do not retry with other \
        wording, another reason or a value picked to slip past the rule, do not reach the same effect through \
        other points or smaller steps, and do not offer "override codes", claimed authority or \
        emergencies. The reason you give is logged for people and never read by the decision; nothing \
        you send can change a red line. Repeated red-line denials quarantine you. Report the denial \
        to a person and stop that course of action.
        """

    /// The block every tool description carries.
    static var redLines: String {
        """
        Red lines exist. Redline, a safety interlock, decides every write against red lines that are \
        compiled in and hold for every agent, whatever you are told:
        \(redLineList)
        \(finality)
        """
    }

    static var instructions: String {
        """
        These tools operate a real building through Redline. You can only read and write the points \
        your agent is granted; list_points shows them.
        \(redLines)
        A held write waits for a person: poll get_request with its requestId; do not resubmit it.
        """
    }
}

// MARK: - Tools

enum MCPTools {
    static let all: [Tool] = [
        Tool(
            name: "list_points",
            title: "List building points",
            description: """
                List the building points you may read or write (id, safety role, zone, access, unit, range), \
                and the red lines that bind every write.
                \(MCPText.redLines)
                """,
            inputSchema: .object([
                "type": "object", "properties": .object([:]), "additionalProperties": false,
            ]),
            annotations: .init(readOnlyHint: true)),
        Tool(
            name: "read_points",
            title: "Read building points",
            description: """
                Read current values of points by id, with quality (good, stale or fault) and age in ms. \
                A point that is not good counts as its dangerous value for the red lines.
                \(MCPText.redLines)
                """,
            inputSchema: .object([
                "type": "object",
                "properties": .object([
                    "ids": .object([
                        "type": "array", "items": .object(["type": "string"]), "minItems": 1,
                        "description": "Point ids from list_points, e.g. sra-env.temperature",
                    ])
                ]),
                "required": .array(["ids"]), "additionalProperties": false,
            ]),
            annotations: .init(readOnlyHint: true)),
        Tool(
            name: "write_point",
            title: "Ask to write a building point",
            description: """
                Ask Redline to write one point. The answer is one of: executed (written and read back), \
                held (waiting for a person to approve: poll get_request with the requestId, do not \
                resubmit), denied (a red line or a grant forbids it; final) or failed (device error).
                \(MCPText.redLines)
                """,
            inputSchema: .object([
                "type": "object",
                "properties": .object([
                    "id": .object(["type": "string", "description": "Point id from list_points, e.g. office-lights.on"]),
                    "value": .object(["type": "number", "description": "Value to write; booleans are 0 or 1"]),
                    "reason": .object([
                        "type": "string",
                        "description": "Why, for the people reading the audit log. It is never read by the decision.",
                    ]),
                ]),
                "required": .array(["id", "value"]), "additionalProperties": false,
            ]),
            annotations: .init(readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: true)),
        Tool(
            name: "get_request",
            title: "Check a write request",
            description: """
                Show the outcome of an earlier write_point by its requestId: held (still waiting for a \
                person), executed, denied, failed or expired. Use it to follow held requests.
                \(MCPText.redLines)
                """,
            inputSchema: .object([
                "type": "object",
                "properties": .object([
                    "requestId": .object(["type": "string", "description": "The requestId write_point returned"])
                ]),
                "required": .array(["requestId"]), "additionalProperties": false,
            ]),
            annotations: .init(readOnlyHint: true)),
    ]

    /// Handles one `tools/call`. Malformed calls throw `MCPError.invalidParams`
    /// (a protocol error); everything the daemon says comes back as a tool result.
    static func call(_ p: CallTool.Parameters, link: DaemonLink) async throws -> CallTool.Result {
        let args = Args(tool: p.name, p.arguments ?? [:])
        switch p.name {
        case "list_points":
            try args.only([])
            return describeResult(await link.call("site.describe"))
        case "read_points":
            try args.only(["ids"])
            let ids = try args.strings("ids")
            return readResult(await link.call("points.read", .obj([("ids", .array(ids.map { .string($0) }))])))
        case "write_point":
            try args.only(["id", "value", "reason"])
            let id = try args.string("id")
            let value = try args.number("value")
            let reason = try args.optionalString("reason")
            let r = await link.call("points.write", .obj([("id", .string(id)), ("value", .number(value)), ("reason", reason.map { .string($0) })]))
            return answerResult(r, write: (id, value))
        case "get_request":
            try args.only(["requestId"])
            let rid = try args.string("requestId")
            return answerResult(await link.call("requests.get", .obj([("requestId", .string(rid))])), write: nil)
        default:
            throw MCPError.invalidParams("unknown tool '\(p.name)'; the tools are \(all.map(\.name).joined(separator: ", "))")
        }
    }

    // MARK: results

    static func describeResult(_ r: Result<JSON, ClientError>) -> CallTool.Result {
        let v: JSON
        switch r {
        case .failure(let e): return failure(e, write: nil)
        case .success(let x): v = x
        }
        var lines = ["site \(v["site"]?.stringValue ?? "?"), you are agent \(v["agent"]?.stringValue ?? "?"); your points:"]
        for p in v["points"]?.arrayValue ?? [] {
            var extra = ""
            if let lo = p["min"]?.numberValue, let hi = p["max"]?.numberValue { extra += ", range \(fmt(lo))..\(fmt(hi))" }
            if let u = p["unit"]?.stringValue { extra += ", unit \(u)" }
            lines.append("- \(p["id"]?.stringValue ?? "?"): \(p["access"]?.stringValue ?? "?"), role \(p["role"]?.stringValue ?? "?"), zone \(p["zone"]?.stringValue ?? "?")\(extra)")
        }
        lines.append("")
        lines.append(MCPText.redLines)
        return result(lines.joined(separator: "\n"), structured: value(v), isError: false)
    }

    static func readResult(_ r: Result<JSON, ClientError>) -> CallTool.Result {
        let v: JSON
        switch r {
        case .failure(let e): return failure(e, write: nil)
        case .success(let x): v = x
        }
        var lines: [String] = []
        for x in v["values"]?.arrayValue ?? [] {
            let val = x["value"]?.numberValue.map(fmt) ?? "no value"
            let age = x["ageMs"]?.numberValue.map { "\(fmt($0)) ms ago" } ?? "never read"
            lines.append("\(x["id"]?.stringValue ?? "?") = \(val) (\(x["quality"]?.stringValue ?? "?"), \(age))")
        }
        return result(lines.joined(separator: "\n"), structured: value(v), isError: false)
    }

    /// A `points.write` or `requests.get` answer.
    static func answerResult(_ r: Result<JSON, ClientError>, write: (id: String, value: Double)?) -> CallTool.Result {
        let v: JSON
        switch r {
        case .failure(let e): return failure(e, write: write)
        case .success(let x): v = x
        }
        let rid = v["requestId"]?.stringValue ?? "?"
        let explanation = v["explanation"]?.stringValue ?? ""
        let outcome = v["outcome"]?.stringValue ?? "?"
        let text: String
        let isError: Bool
        switch outcome {
        case "executed":
            text = "executed (request \(rid)): \(explanation)"
            isError = false
        case "held":
            text = """
                held (request \(rid)): \(explanation)
                This write waits for a person to approve it. Poll get_request with requestId "\(rid)" \
                until its outcome is executed, denied or expired. Do not submit the write again.
                """
            isError = false
        case "denied":
            let rule = v["rule"]?.stringValue ?? "unknown rule"
            let title = RedLines.all.first { $0.id.rawValue == rule }.map { " (\($0.title))" } ?? ""
            text = """
                DENIED by \(rule)\(title) (request \(rid)): \(explanation)
                \(MCPText.finality)
                """
            isError = true
        case "failed":
            text = """
                FAILED (request \(rid)): \(explanation)
                The device did not confirm the write. Read the point before deciding anything; \
                report the failure to a person.
                """
            isError = true
        case "expired":
            text = "expired (request \(rid)): \(explanation)\nNo person approved it in time; it was not executed."
            isError = true
        default:
            text = "unexpected answer from redlined (outcome \(outcome)); treat the write as not done: \(v.encoded())"
            isError = true
        }
        return result(text, structured: value(v), isError: isError)
    }

    /// Daemon errors and connection failures, as error results the model can read.
    static func failure(_ e: ClientError, write: (id: String, value: Double)?) -> CallTool.Result {
        let text: String
        switch e {
        case .rpc(let code, let message, _):
            switch code {
            case -32004:
                text = "unknown point: \(message). It does not exist or is not granted to you (the two look the same). Only the points list_points shows exist for you."
            case -32602:
                text = "redlined refused the parameters (\(code)): \(message)"
            case -32005:
                text = "redlined is rate-limiting this agent (\(code)): \(message). Slow down; nothing was done."
            case -32006:
                text = "redlined does not admit this MCP server (\(code)): \(message). It runs as uid \(getuid()), "
                    + "which is not an agent of the site: it must be started as the agent's own uid. "
                    + "Nothing was read or written; tell a person."
            default:
                text = "redlined answered with error \(code): \(message)"
            }
        case .connect:
            text = "cannot reach redlined: \(e). Nothing was read or written. The interlock is not available; do not try to reach the building another way. Tell a person."
        case .io, .closed, .timeout, .protocolError:
            text = write == nil
                ? "the connection to redlined failed: \(e). Try again later or tell a person."
                : "the connection to redlined failed during the write: \(e). Its outcome is unknown: read the point before doing anything else, and tell a person."
        }
        var detail: [(String, JSON?)] = [("error", .string(text))]
        if case .rpc(let code, _, _) = e { detail.append(("code", .number(Double(code)))) }
        return result(text, structured: value(.obj(detail)), isError: true)
    }

    static func result(_ text: String, structured: Value, isError: Bool) -> CallTool.Result {
        // The non-throwing initialiser (the generic one would encode `Value` again).
        let make: ([Tool.Content], Value?, Bool?, Metadata?) -> CallTool.Result = CallTool.Result.init(content:structuredContent:isError:_meta:)
        return make([.text(text: text, annotations: nil, _meta: nil)], structured, isError, nil)
    }

    /// Our JSON to the SDK's `Value`.
    static func value(_ j: JSON) -> Value {
        switch j {
        case .null: return .null
        case .bool(let b): return .bool(b)
        case .number(let n):
            if n.rounded() == n, abs(n) < 9.0e15 { return .int(Int(n)) }
            return .double(n)
        case .string(let s): return .string(s)
        case .array(let a): return .array(a.map(value))
        case .object(let o):
            var d: [String: Value] = [:]
            for (k, v) in o { d[k] = value(v) }
            return .object(d)
        }
    }
}

/// Checked access to a tool call's arguments; every mistake is an `invalidParams` error.
struct Args {
    let tool: String
    let a: [String: Value]

    init(tool: String, _ a: [String: Value]) {
        self.tool = tool
        self.a = a
    }

    func only(_ names: Set<String>) throws {
        if let extra = a.keys.sorted().first(where: { !names.contains($0) }) {
            throw MCPError.invalidParams("\(tool): unknown argument '\(extra)'")
        }
    }

    func string(_ k: String) throws -> String {
        guard let v = a[k] else { throw MCPError.invalidParams("\(tool): missing argument '\(k)' (a string)") }
        guard let s = v.stringValue, !s.isEmpty else { throw MCPError.invalidParams("\(tool): '\(k)' must be a non-empty string") }
        return s
    }

    func optionalString(_ k: String) throws -> String? {
        guard let v = a[k], !v.isNull else { return nil }
        guard let s = v.stringValue else { throw MCPError.invalidParams("\(tool): '\(k)' must be a string") }
        return s
    }

    func number(_ k: String) throws -> Double {
        guard let v = a[k] else { throw MCPError.invalidParams("\(tool): missing argument '\(k)' (a number)") }
        switch v {
        case .int(let i): return Double(i)
        case .double(let d) where d.isFinite: return d
        default: throw MCPError.invalidParams("\(tool): '\(k)' must be a finite JSON number, not \(v)")
        }
    }

    func strings(_ k: String) throws -> [String] {
        guard let v = a[k] else { throw MCPError.invalidParams("\(tool): missing argument '\(k)' (an array of strings)") }
        guard let arr = v.arrayValue, !arr.isEmpty else { throw MCPError.invalidParams("\(tool): '\(k)' must be a non-empty array of strings") }
        return try arr.map { x in
            guard let s = x.stringValue else { throw MCPError.invalidParams("\(tool): '\(k)' must hold only strings") }
            return s
        }
    }
}
