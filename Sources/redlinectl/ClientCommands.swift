#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import RedlineClient
import RedlineCore

/// Where the sockets are: flag, then environment, then the daemon's default.
struct SocketOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Agent socket (default: \(SocketPaths.agentHelp)).", valueName: "PATH"))
    var socket: String?

    @Flag(name: .long, help: "Print the raw JSON result instead of text.")
    var json = false

    var agentPath: String { SocketPaths.agent(socket) }
}

struct OperatorSocketOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Operator socket (default: \(SocketPaths.operatorHelp)).", valueName: "PATH"))
    var socket: String?

    @Flag(name: .long, help: "Print the raw JSON result instead of text.")
    var json = false

    var operatorPath: String { SocketPaths.operator(socket) }
}


func printErr(_ s: String) {
    var line = s + "\n"
    line.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
}

/// Calls one method and turns transport and RPC errors into a clear message and exit code 1.
func call(_ path: String, _ method: String, _ params: JSON? = nil) throws -> JSON {
    do {
        return try FreshConnections(path: path).call(method, params)
    } catch {
        printErr("redlinectl: \(method): \(error)")
        throw ExitCode(1)
    }
}

func show(_ v: JSON) { print(v.encoded()) }

/// Prints a write/request answer and returns its exit code (0 executed/held, 3 denied or expired, 4 failed).
func showAnswer(_ r: JSON, json: Bool) -> Int32 {
    let outcome = r["outcome"]?.stringValue ?? "?"
    if json { show(r) } else {
        let rule = r["rule"]?.stringValue.map { " [\($0)]" } ?? ""
        print("\(r["requestId"]?.stringValue ?? "-"): \(outcome)\(rule): \(r["explanation"]?.stringValue ?? "")")
        if outcome == "held" { print("waiting for an operator; check with: redlinectl request \(r["requestId"]?.stringValue ?? "")") }
    }
    switch outcome {
    case "executed", "held": return 0
    case "failed": return 4
    default: return 3
    }
}

struct Describe: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show this agent's points and the red lines (agent socket).")
    @OptionGroup var opts: SocketOptions

    func run() throws {
        let r = try call(opts.agentPath, "site.describe")
        if opts.json { return show(r) }
        print("site \(r["site"]?.stringValue ?? "?"), agent \(r["agent"]?.stringValue ?? "?")")
        print("")
        for p in r["points"]?.arrayValue ?? [] {
            var extra = ""
            if let lo = p["min"]?.numberValue, let hi = p["max"]?.numberValue { extra = " range \(fmt(lo))..\(fmt(hi))" }
            if let u = p["unit"]?.stringValue { extra += " \(u)" }
            let id = p["id"]?.stringValue ?? ""
            print("  \(id.padding(28)) \((p["access"]?.stringValue ?? "").padding(10)) \((p["role"]?.stringValue ?? "").padding(24)) \(p["zone"]?.stringValue ?? "")\(extra)")
        }
        print("\nred lines (compiled in; nothing you send can change them):")
        for l in r["redLines"]?.arrayValue ?? [] {
            print("  \((l["id"]?.stringValue ?? "").padding(6)) \(l["title"]?.stringValue ?? "")")
        }
    }
}

struct Read: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Read points (agent socket).")
    @OptionGroup var opts: SocketOptions
    @Argument(help: "Point ids, e.g. sra-env.temperature.") var ids: [String]

    func run() throws {
        let r = try call(opts.agentPath, "points.read", .obj([("ids", .array(ids.map { .string($0) }))]))
        if opts.json { return show(r) }
        for v in r["values"]?.arrayValue ?? [] {
            let value = v["value"]?.numberValue.map(fmt) ?? "-"
            let age = v["ageMs"]?.numberValue.map { "\(fmt($0)) ms ago" } ?? "never read"
            print("\((v["id"]?.stringValue ?? "").padding(28)) \(value.padding(10)) \((v["quality"]?.stringValue ?? "").padding(6)) \(age)")
        }
    }
}

struct Write: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Ask to write a point (agent socket).",
        discussion: "Exit status: 0 executed or held, 3 denied, 4 failed, 1 error. The reason is logged, never consulted.")
    @OptionGroup var opts: SocketOptions
    @Argument(help: "Point id, e.g. office-lights.on.") var id: String
    @Argument(help: "Value (a number).") var value: Double
    @Option(help: "Why (kept in the audit log; it does not influence the decision).") var reason: String?

    func run() throws {
        let r = try call(opts.agentPath, "points.write",
                         .obj([("id", .string(id)), ("value", .number(value)), ("reason", reason.map { .string($0) })]))
        let code = showAnswer(r, json: opts.json)
        if code != 0 { throw ExitCode(code) }
    }
}

struct ReleasePoint: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "release-point",
        abstract: "Ask to release your command of a BACnet output (agent socket).",
        discussion: """
            Writes NULL at the site's agent priority, and only there: the next priority below (a schedule's,             say) or the object's Relinquish_Default takes effect, and the red lines are decided on that value,             read from the device. Points that are not BACnet outputs have nothing to release: write them.             Exit status: 0 executed or held, 3 denied, 4 failed, 1 error. The reason is logged, never consulted.
            """)
    @OptionGroup var opts: SocketOptions
    @Argument(help: "Point id, e.g. crac-1.setpoint.") var id: String
    @Option(help: "Why (kept in the audit log; it does not influence the decision).") var reason: String?

    func run() throws {
        let r = try call(opts.agentPath, "points.release", .obj([("id", .string(id)), ("reason", reason.map { .string($0) })]))
        let code = showAnswer(r, json: opts.json)
        if code != 0 { throw ExitCode(code) }
    }
}

struct Request: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show the outcome of an earlier write (agent socket).")
    @OptionGroup var opts: SocketOptions
    @Argument(help: "Request id returned by write.") var requestId: String

    func run() throws {
        let r = try call(opts.agentPath, "requests.get", .obj([("requestId", .string(requestId))]))
        let code = showAnswer(r, json: opts.json)
        if code != 0 { throw ExitCode(code) }
    }
}

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Daemon health, zone conditions and counters (operator socket).")
    @OptionGroup var opts: OperatorSocketOptions

    func run() throws {
        let r = try call(opts.operatorPath, "status")
        if opts.json { return show(r) }
        print("site \(r["site"]?.stringValue ?? "?"): \(r["ready"]?.boolValue == true ? "ready" : "NOT READY (first scan pending)"), "
              + "up \(fmt(r["uptimeS"]?.numberValue ?? 0)) s, \(fmt(r["scans"]?.numberValue ?? 0)) scans, "
              + "\(fmt(r["pointsNotGood"]?.numberValue ?? 0))/\(fmt(r["points"]?.numberValue ?? 0)) points not good")
        for z in r["zones"]?.arrayValue ?? [] {
            var flags: [String] = []
            if z["occupied"]?.boolValue == true { flags.append("occupied") }
            if z["inAlarm"]?.boolValue == true { flags.append("IN ALARM") }
            if z["hazard"]?.boolValue == true { flags.append("HAZARD") }
            print("  zone \((z["id"]?.stringValue ?? "").padding(16)) \(flags.isEmpty ? "calm" : flags.joined(separator: ", "))")
            for c in z["causes"]?.arrayValue ?? [] { print("      \(c.stringValue ?? "")") }
        }
        let q = (r["quarantined"]?.arrayValue ?? []).compactMap(\.stringValue)
        print("quarantined agents: \(q.isEmpty ? "none" : q.joined(separator: ", "))")
        if let held = r["agentsHeld"], held != .null {
            print("SITE-WIDE ESCALATION (agents-held) for \(fmt(held["sinceS"]?.numberValue ?? 0)) s: \(held["why"]?.stringValue ?? "")")
            print("  every agent write but a safe value waits for an operator; clear with: redlinectl agents clear-escalation")
        }
        print("pending approvals: \(fmt(r["pendingApprovals"]?.numberValue ?? 0))")
        let e = (r["effectsActive"]?.arrayValue ?? []).compactMap(\.stringValue)
        print("safe-state effects active: \(e.isEmpty ? "none" : e.joined(separator: ", "))")
        if let c = r["counters"] { print("counters: \(c.encoded())") }
        for line in auditStatusLines(r["audit"]) { print(line) }
    }
}

struct Approvals: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List, approve or deny held requests (operator socket).",
        subcommands: [List.self, Approve.self, Deny.self], defaultSubcommand: List.self)

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List held requests.")
        @OptionGroup var opts: OperatorSocketOptions
        func run() throws {
            let r = try call(opts.operatorPath, "approvals.list")
            if opts.json { return show(r) }
            let list = r["approvals"]?.arrayValue ?? []
            if list.isEmpty { print("no held requests") }
            for a in list {
                print("\(a["requestId"]?.stringValue ?? "")  \(a["agent"]?.stringValue ?? "") wants \(a["point"]?.stringValue ?? "") = "
                      + "\(fmt(a["value"]?.numberValue ?? .nan))  (expires in \(fmt(a["expiresInS"]?.numberValue ?? 0)) s)")
            }
        }
    }

    struct Approve: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Approve a held request. It is decided again, on fresh readings, before it runs: an approval never overrides a red line.")
        @OptionGroup var opts: OperatorSocketOptions
        @Argument(help: "Request id.") var requestId: String
        func run() throws {
            let r = try call(opts.operatorPath, "approvals.approve", .obj([("requestId", .string(requestId))]))
            let code = showAnswer(r, json: opts.json)
            if code != 0 { throw ExitCode(code) }
        }
    }

    struct Deny: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Deny a held request.")
        @OptionGroup var opts: OperatorSocketOptions
        @Argument(help: "Request id.") var requestId: String
        @Option(help: "Why (logged).") var reason: String?
        func run() throws {
            let r = try call(opts.operatorPath, "approvals.deny",
                             .obj([("requestId", .string(requestId)), ("reason", reason.map { .string($0) })]))
            _ = showAnswer(r, json: opts.json)
        }
    }
}

struct Agents: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List agents, release one from quarantine, or clear the site-wide escalation (operator socket).",
        subcommands: [List.self, Release.self, ClearEscalation.self], defaultSubcommand: List.self)

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List agents and their quarantine state.")
        @OptionGroup var opts: OperatorSocketOptions
        func run() throws {
            let r = try call(opts.operatorPath, "agents.list")
            if opts.json { return show(r) }
            for a in r["agents"]?.arrayValue ?? [] {
                let q = a["quarantined"]?.boolValue == true ? "QUARANTINED" : "active"
                print("\((a["name"]?.stringValue ?? "").padding(24)) uid \(fmt(a["uid"]?.numberValue ?? 0))  \(q)  "
                      + "recent red-line denials: \(fmt(a["recentDenials"]?.numberValue ?? 0))")
            }
        }
    }

    struct Release: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Release an agent from quarantine (audited).")
        @OptionGroup var opts: OperatorSocketOptions
        @Argument(help: "Agent name.") var agent: String
        func run() throws {
            let r = try call(opts.operatorPath, "agents.release", .obj([("agent", .string(agent))]))
            if opts.json { return show(r) }
            print(r["released"]?.boolValue == true ? "\(agent) released" : "\(agent) was not quarantined")
        }
    }

    struct ClearEscalation: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "clear-escalation",
            abstract: "End the site-wide escalation (agents-held; audited). Quarantined agents stay quarantined.",
            discussion: """
                When two agents are quarantined within the quarantine window, or red-line denials across all \
                agents reach the site-wide limit, every agent write but a safe value is held for an operator \
                (docs/DESIGN.md §6.2). Release or keep the agents first (redlinectl agents list), then clear it.
                """)
        @OptionGroup var opts: OperatorSocketOptions
        func run() throws {
            let r = try call(opts.operatorPath, "escalation.clear")
            if opts.json { return show(r) }
            print(r["cleared"]?.boolValue == true ? "agents-held cleared" : "the site was not in agents-held")
        }
    }
}

func readAll(_ path: String) -> [UInt8]? {
    guard let f = fopen(path, "rb") else { return nil }
    defer { fclose(f) }
    var out: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 1 << 16)
    while true {
        let n = buf.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, f) }
        if n == 0 { break }
        out.append(contentsOf: buf[..<n])
    }
    return out
}

extension String {
    func padding(_ n: Int) -> String { count >= n ? self : self + String(repeating: " ", count: n - count) }
}
