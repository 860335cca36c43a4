import Foundation
import RedlineCore
import RedlineTestSupport
import Testing

/// `redlinectl mcp` driven by a real MCP client we did not write: the Python `mcp` SDK from PyPI.
///
/// The Python driver (Tests/mcp/mcp_client_driver.py) spawns the server over stdio as the
/// facilities agent (uid 2001, through setpriv), against a live daemon and simulator, and
/// checks every answer and the plant itself. This test owns its plant and daemon.
@Suite("MCP server with the Python MCP SDK", .enabled(if: uidAvailable, "needs root to run the MCP server as the agent's uid"))
struct MCPTests {
    static let facilities = 2001

    @Test("Python MCP client: initialize, five tools, RL-2 denial, execute, held + get_request, malformed calls, quarantine")
    func pythonClientDrivesRedlinectlMCP() throws {
        let s = try PlantAndDaemon()
        defer { s.stop() }
        let ctl = try #require(TestPaths.executable("redlinectl"), "redlinectl is not built (run `swift build` first)")
        let driver = s.root.appendingPathComponent("Tests/mcp/mcp_client_driver.py").path
        let dispatchBefore = try #require(try s.sim.plant()["dispatch.cancel"])
        let lightsBefore = try #require(try s.sim.plant()["office-lights.on"])
        #expect(lightsBefore == 0)

        let run = try runDriver(driver: driver, arguments: [
            "--sim-control", s.sim.controlPath,
            "--bad-socket", s.dir.file("no-daemon-here.sock"),
            "--",
            "/usr/bin/setpriv", "--reuid", String(Self.facilities), "--regid", String(Self.facilities), "--clear-groups",
            ctl, "mcp", "--socket", s.agentSocket,
        ], stderrLog: s.dir.file("mcp-driver.err"))

        let out = run.stdout
        print("mcp_client_driver.py:\n" + out)
        #expect(run.status == 0, "driver exited \(run.status)\nstdout:\n\(out)\nstderr:\n\(run.stderr)")
        for check in [
            "PASS initialize succeeds",
            "PASS tool list is exactly list_points, read_points, write_point, release_point, get_request",
            "PASS release_point dispatch.cancel (a register: nothing to release) is a denied error result",
            "PASS write_point dispatch.cancel=1 is an error result naming RL-2",
            "PASS plant dispatch.cancel unchanged",
            "PASS write_point office-lights.on=1 executes",
            "PASS plant office-lights.on is 1",
            "PASS write_point sra-door.lock=1 is held with a request id and get_request guidance",
            "PASS get_request on the held request says held",
            "PASS unknown tool name gets an MCP error (-32602)",
            "PASS write_point with value \"abc\" gets an MCP error (-32602)",
            "PASS the server goes on serving after malformed calls (read_points works)",
            "PASS after 3 red-line denials the agent is quarantined (error result naming quarantined)",
            "PASS daemon unreachable: error result with a clear message",
            "PASS daemon unreachable: the MCP server keeps serving",
        ] {
            #expect(out.contains(check), "missing `\(check)` in driver output:\n\(out)")
        }
        #expect(!out.contains("FAIL "), "driver reported failures:\n\(out)")
        #expect(out.contains("SUMMARY"), "no summary line:\n\(out)")

        // What the plant and the daemon saw, independently of the driver.
        #expect(try s.sim.plant()["dispatch.cancel"] == dispatchBefore)
        #expect(try s.sim.plant()["sra-door.lock"] == 0)
        let decisions = try s.auditRecords().filter { $0["kind"]?.stringValue == "decision" }
        let rl2 = decisions.first { $0["point"]?.stringValue == "dispatch.cancel" }
        #expect(rl2?["rule"]?.stringValue == "RL-2")
        #expect(rl2?["agent"]?.stringValue == "facilities-agent", "the MCP server must reach the daemon as the agent's uid")
        #expect(rl2?["uid"]?.numberValue == Double(Self.facilities))
        #expect(decisions.contains { $0["point"]?.stringValue == "office-lights.on" && $0["outcome"]?.stringValue == "allowed" })
        #expect(try s.auditRecords().contains { $0["kind"]?.stringValue == "quarantine" && $0["agent"]?.stringValue == "facilities-agent" })
        let held = try s.operatorCall("approvals.list")["approvals"]?.arrayValue ?? []
        #expect(held.contains { $0["point"]?.stringValue == "sra-door.lock" && $0["agent"]?.stringValue == "facilities-agent" })
    }

    @Test("redlinectl mcp --help explains how to attach it to an MCP client")
    func helpExplainsAttaching() throws {
        let ctl = try #require(TestPaths.executable("redlinectl"), "redlinectl is not built (run `swift build` first)")
        let p = Process()
        p.executableURL = URL(fileURLWithPath: ctl)
        p.arguments = ["mcp", "--help"]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        try p.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        #expect(p.terminationStatus == 0)
        for needle in ["mcpServers", "setpriv", "--socket", "uid", "list_points", "write_point"] {
            #expect(text.contains(needle), "`\(needle)` missing from mcp --help:\n\(text)")
        }
    }
}

struct DriverRun {
    let status: Int32
    let stdout: String
    let stderr: String
}

/// Runs the Python driver with `python3` from PATH (or `$REDLINE_PYTHON`), killing it after `timeout` seconds.
func runDriver(driver: String, arguments: [String], stderrLog: String, timeout: Double = 180) throws -> DriverRun {
    let p = Process()
    let python = ProcessInfo.processInfo.environment["REDLINE_PYTHON"] ?? "python3"
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = [python, "-u", driver] + arguments
    let out = Pipe()
    p.standardOutput = out
    _ = FileManager.default.createFile(atPath: stderrLog, contents: nil)
    p.standardError = FileHandle(forWritingAtPath: stderrLog)
    p.standardInput = FileHandle.nullDevice
    try p.run()
    let reader = OutputCollector(out.fileHandleForReading)
    let deadline = Date().addingTimeInterval(timeout)
    while p.isRunning, Date() < deadline { usleep(20_000) }
    if p.isRunning {
        kill(p.processIdentifier, SIGKILL)
    }
    p.waitUntilExit()
    let text = reader.finish()
    let err = (try? String(contentsOfFile: stderrLog, encoding: .utf8)) ?? ""
    return DriverRun(status: p.terminationStatus, stdout: text, stderr: err)
}

/// Reads a pipe to its end on its own thread, so the child never blocks on a full pipe.
final class OutputCollector: @unchecked Sendable {
    private let lock = NSLock()
    private var data = Data()
    private let done = DispatchSemaphore(value: 0)

    init(_ handle: FileHandle) {
        Thread { [self] in
            while true {
                let d = handle.availableData
                if d.isEmpty { break }
                lock.lock()
                data.append(d)
                lock.unlock()
            }
            done.signal()
        }.start()
    }

    /// Everything read, once the writer closed the pipe (or after 5 s).
    func finish() -> String {
        _ = done.wait(timeout: .now() + 5)
        lock.lock()
        defer { lock.unlock() }
        return String(decoding: data, as: UTF8.self)
    }
}
