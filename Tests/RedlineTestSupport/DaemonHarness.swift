import Foundation
import RedlineClient
import RedlineCore

/// A running `redlined` against a running `redline-sim`, on free ports in a temp folder.
///
/// Everything is real: the simulator serves Modbus TCP, the daemon scans it,
/// and clients connect to the daemon's Unix sockets.
public final class PlantAndDaemon: @unchecked Sendable {
    public let dir: TempDir
    public let sim: SimProcess
    public private(set) var daemon: ChildProcess
    public let siteFile: String
    public let root: URL
    public let agentSocket: String
    public let operatorSocket: String
    public let auditPath: String
    let extraArgs: [String]
    let extraEnvironment: [String: String]?

    /// Starts both for `site` (a file under Firmware-Configs by default), waiting until the daemon is ready.
    /// With `manualClock` the simulator runs `--clock manual` (plant time moves only on `plant.advance`).
    public init(site: String = "demo-datacenter.yaml", daemonArgs: [String] = [], manualClock: Bool = false,
                daemonEnvironment: [String: String]? = nil, siteEdit: ((String) -> String)? = nil,
                auditPath audit: ((TempDir) throws -> String)? = nil,
                file: String = #filePath) throws {
        root = TestPaths.packageRoot(from: file)
        dir = TempDir(prefix: "rle2e")
        chmod(dir.path, 0o755)  // agents (other uids) must reach the socket
        let src = root.appendingPathComponent("Firmware-Configs").appendingPathComponent(site).path
        siteFile = try TestSites.withFreePorts(src, in: dir).path
        if let siteEdit {
            let text = try String(contentsOfFile: siteFile, encoding: .utf8)
            try siteEdit(text).write(toFile: siteFile, atomically: true, encoding: .utf8)
        }
        chmod(siteFile, 0o644)
        agentSocket = dir.file("agent.sock")
        operatorSocket = dir.file("operator.sock")
        auditPath = try audit?(dir) ?? dir.file("audit.jsonl")
        extraArgs = daemonArgs
        extraEnvironment = daemonEnvironment.map { ProcessInfo.processInfo.environment.merging($0) { $1 } }
        sim = try SimProcess(siteFile: siteFile, devicesDir: root.appendingPathComponent("Devices").path,
                             controlPath: dir.file("sim.sock"), manualClock: manualClock, logPath: dir.file("sim.log"))
        daemon = try PlantAndDaemon.startDaemon(root: root, siteFile: siteFile, agentSocket: agentSocket,
                                                operatorSocket: operatorSocket, auditPath: auditPath,
                                                logPath: dir.file("redlined.log"), extra: daemonArgs, environment: extraEnvironment)
        try waitReady()
    }

    static func startDaemon(root: URL, siteFile: String, agentSocket: String, operatorSocket: String,
                            auditPath: String, logPath: String, extra: [String], environment: [String: String]? = nil) throws -> ChildProcess {
        guard let exe = TestPaths.executable("redlined") else {
            throw TestSupportError("redlined is not built (run `swift build` first, or set REDLINE_BIN)")
        }
        let args = [
            "--config", siteFile, "--devices", root.appendingPathComponent("Devices").path,
            "--agent-socket", agentSocket, "--operator-socket", operatorSocket, "--audit", auditPath,
        ] + extra
        return try ChildProcess(executable: exe, arguments: args, logPath: logPath, environment: environment)
    }

    /// Waits until the operator socket reports `ready` (the first full scan completed).
    public func waitReady(timeout: Double = 30) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if !daemon.isRunning { throw TestSupportError("redlined exited: \(daemon.stderr)") }
            if let s = try? operatorCall("status"), s["ready"]?.boolValue == true { return }
            usleep(50_000)
        }
        throw TestSupportError("redlined did not become ready: \(daemon.stderr)")
    }

    /// Kills the daemon with SIGKILL (no clean-up) and starts a new one on the same files.
    public func killAndRestartDaemon() throws {
        kill(daemon.process.processIdentifier, SIGKILL)
        daemon.process.waitUntilExit()
        daemon = try PlantAndDaemon.startDaemon(root: root, siteFile: siteFile, agentSocket: agentSocket,
                                                operatorSocket: operatorSocket, auditPath: auditPath,
                                                logPath: dir.file("redlined-2.log"), extra: extraArgs, environment: extraEnvironment)
        try waitReady()
    }

    /// Stops the daemon (SIGTERM, a clean stop) and leaves the simulator running.
    public func stopDaemon() { daemon.stop() }

    private var starts = 2

    /// Starts a daemon on the same files with `extra` arguments added. Returns nil once it is ready,
    /// or its exit status and stderr if it refused to start.
    @discardableResult
    public func startDaemon(extra: [String] = []) throws -> (status: Int32, stderr: String)? {
        starts += 1
        daemon = try PlantAndDaemon.startDaemon(root: root, siteFile: siteFile, agentSocket: agentSocket,
                                                operatorSocket: operatorSocket, auditPath: auditPath,
                                                logPath: dir.file("redlined-\(starts).log"), extra: extraArgs + extra,
                                                environment: extraEnvironment)
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            if !daemon.isRunning {
                daemon.process.waitUntilExit()
                return (daemon.process.terminationStatus, daemon.stderr)
            }
            if let s = try? operatorCall("status"), s["ready"]?.boolValue == true { return nil }
            usleep(50_000)
        }
        throw TestSupportError("redlined neither started nor refused: \(daemon.stderr)")
    }

    /// One call on the operator socket as this process's user (root is an operator of the demo site).
    @discardableResult
    public func operatorCall(_ method: String, _ params: JSON? = nil) throws -> JSON {
        try FreshConnections(path: operatorSocket).call(method, params)
    }

    /// Scans completed so far, from `status`.
    public func scans() throws -> Int { Int(try operatorCall("status")["scans"]?.numberValue ?? 0) }

    /// Waits until at least `n` more scans have completed, so plant changes are seen.
    public func waitScans(_ n: Int = 2, timeout: Double = 10) throws {
        let start = try scans()
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if try scans() >= start + n { return }
            usleep(20_000)
        }
        throw TestSupportError("daemon did not complete \(n) scans in \(timeout) s")
    }

    /// A client connected to the agent socket as `uid` (through `setpriv`, so SO_PEERCRED is real).
    public func agent(uid: UInt32) throws -> UidRelay {
        try UidRelay(path: agentSocket, uid: uid)
    }

    /// The audit log's records.
    public func auditRecords() throws -> [JSON] {
        let text = try String(contentsOfFile: auditPath, encoding: .utf8)
        return try text.split(separator: "\n").map { try JSON.parse(String($0)) }
    }

    public func stop() {
        daemon.stop()
        sim.stop()
    }

    deinit { stop() }
}

extension UidRelay {
    /// `points.write`, returning the result object (or throwing on an error answer).
    public func write(_ id: String, _ value: Double, reason: String? = nil) throws -> JSON {
        let r = try request("points.write", .obj([("id", .string(id)), ("value", .number(value)), ("reason", reason.map { .string($0) })]))
        if let e = r["error"] { throw TestSupportError("points.write error: \(e.encoded())") }
        return r["result"] ?? .null
    }
}
