import Foundation
import RedlineClient
import RedlineCore
import Testing

public struct TestSupportError: Error, CustomStringConvertible {
    public let description: String
    public init(_ d: String) { description = d }
}

/// A child process whose stdout is scanned for a ready line; stderr goes to a log file.
public final class ChildProcess: @unchecked Sendable {
    public let process = Process()
    public let logPath: String
    private let lock = NSLock()
    private var output = ""
    private let lineArrived = DispatchSemaphore(value: 0)

    /// Starts `executable` with `arguments`; stderr is appended to `logPath`.
    public init(executable: String, arguments: [String], logPath: String, environment: [String: String]? = nil) throws {
        self.logPath = logPath
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let environment { process.environment = environment }
        let out = Pipe()
        process.standardOutput = out
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        process.standardError = FileHandle(forWritingAtPath: logPath)
        process.standardInput = FileHandle.nullDevice
        try process.run()
        // The reader owns its own descriptor: Foundation's availableData traps if the pipe is
        // closed under it (when this object goes away while the child still writes).
        let fd = dup(out.fileHandleForReading.fileDescriptor)
        let t = Thread { [weak self] in
            defer { close(fd) }
            var buf = [UInt8](repeating: 0, count: 4096)
            while true {
                let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { break }
                guard let self else { break }
                self.lock.lock()
                self.output += String(decoding: buf[..<n], as: UTF8.self)
                self.lock.unlock()
                self.lineArrived.signal()
            }
            self?.lineArrived.signal()
        }
        t.start()
    }

    /// Everything written to stdout so far.
    public var stdout: String { lock.lock(); defer { lock.unlock() }; return output }

    /// The stderr log so far.
    public var stderr: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// Waits until stdout contains `text` (true) or the process exits or time runs out (false).
    public func waitForOutput(containing text: String, timeout: Double) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if stdout.contains(text) { return true }
            if !process.isRunning { return stdout.contains(text) }
            _ = lineArrived.wait(timeout: .now() + 0.05)
        }
        return stdout.contains(text)
    }

    public var isRunning: Bool { process.isRunning }

    /// SIGTERM, then SIGKILL after `grace` seconds; waits for the exit. Then fails the running
    /// test if the child's stderr holds a sanitizer report (a report in a child process does not
    /// fail the parent by itself; the sanitizer builds of scripts/sanitizers.sh rely on this).
    public func stop(grace: Double = 3) {
        defer { reportSanitizerFindings() }
        guard process.isRunning else { return }
        process.terminate()
        let deadline = Date().addingTimeInterval(grace)
        while process.isRunning, Date() < deadline { usleep(10_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }

    private var sanitizerChecked = false

    private func reportSanitizerFindings() {
        lock.lock()
        let first = !sanitizerChecked
        sanitizerChecked = true
        lock.unlock()
        guard first else { return }
        for report in SanitizerReports.find(in: stderr) {
            Issue.record("\(process.executableURL?.lastPathComponent ?? "child") (log \(logPath)): \(report)")
        }
    }

    deinit { stop(grace: 1) }
}

/// Reports of AddressSanitizer, ThreadSanitizer, LeakSanitizer and UndefinedBehaviorSanitizer
/// in a process's stderr: each from its first line to its SUMMARY line (or 40 lines).
public enum SanitizerReports {
    static let starts = ["WARNING: ThreadSanitizer:", "ERROR: AddressSanitizer:", "ERROR: LeakSanitizer:", "runtime error:"]

    public static func find(in log: String) -> [String] {
        let lines = log.split(separator: "\n", omittingEmptySubsequences: false)
        var out: [String] = []
        var i = 0
        while i < lines.count {
            if starts.contains(where: { lines[i].contains($0) }) {
                var j = i
                while j < lines.count, j - i < 40, !lines[j].hasPrefix("SUMMARY:") { j += 1 }
                out.append(lines[i...min(j, lines.count - 1)].joined(separator: "\n"))
                i = j + 1
            } else {
                i += 1
            }
        }
        return out
    }
}

/// A running `redline-sim` with its control socket.
public final class SimProcess: @unchecked Sendable {
    public let child: ChildProcess
    public let controlPath: String
    public let siteFile: String

    /// Starts redline-sim for `siteFile` and waits for its ready line.
    public init(siteFile: String, devicesDir: String? = nil, controlPath: String, manualClock: Bool = false,
                logPath: String? = nil, timeout: Double = 20) throws {
        guard let exe = TestPaths.executable("redline-sim") else {
            throw TestSupportError("redline-sim is not built (run `swift build` first, or set REDLINE_BIN)")
        }
        var args = ["--site", siteFile, "--control", controlPath]
        if let devicesDir { args += ["--devices", devicesDir] }
        if manualClock { args += ["--clock", "manual"] }
        self.controlPath = controlPath
        self.siteFile = siteFile
        child = try ChildProcess(executable: exe, arguments: args, logPath: logPath ?? controlPath + ".log")
        guard child.waitForOutput(containing: "redline-sim: serving", timeout: timeout) else {
            let err = child.stderr
            child.stop()
            throw TestSupportError("redline-sim did not become ready: \(err)")
        }
    }

    /// A new connection to the control socket.
    public func control() throws -> LineClient { try LineClient(path: controlPath) }

    /// One call on a fresh control connection.
    @discardableResult
    public func call(_ method: String, _ params: JSON = .object([])) throws -> JSON {
        try control().call(method, params)
    }

    /// `plant.get` as a dictionary.
    public func plant() throws -> [String: Double] {
        guard let o = try call("plant.get").objectValue else { throw TestSupportError("plant.get returned no object") }
        var out: [String: Double] = [:]
        for (k, v) in o { if let n = v.numberValue { out[k] = n } }
        return out
    }

    public func set(_ name: String, _ value: Double) throws {
        try call("plant.set", ["name": .string(name), "value": .number(value)])
    }

    public func fault(_ device: String, _ mode: String, delayMs: Int? = nil) throws {
        try call("device.fault", .obj([("device", .string(device)), ("mode", .string(mode)),
                                       ("delayMs", delayMs.map { .number(Double($0)) })]))
    }

    public func advance(_ seconds: Double) throws {
        try call("plant.advance", ["seconds": .number(seconds)])
    }

    public func stop() { child.stop() }
}
