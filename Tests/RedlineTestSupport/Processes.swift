import Foundation
import RedlineCore

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
        FileManager.default.createFile(atPath: logPath, contents: nil)
        process.standardError = FileHandle(forWritingAtPath: logPath)
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let handle = out.fileHandleForReading
        let t = Thread { [weak self] in
            while true {
                let d = handle.availableData
                if d.isEmpty { break }
                guard let self else { break }
                self.lock.lock()
                self.output += String(decoding: d, as: UTF8.self)
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

    /// SIGTERM, then SIGKILL after `grace` seconds; waits for the exit.
    public func stop(grace: Double = 3) {
        guard process.isRunning else { return }
        process.terminate()
        let deadline = Date().addingTimeInterval(grace)
        while process.isRunning, Date() < deadline { usleep(10_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }

    deinit { stop(grace: 1) }
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
    public func control() throws -> JSONRPCLineClient { try JSONRPCLineClient(path: controlPath) }

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

    public func fault(_ device: String, _ mode: String) throws {
        try call("device.fault", ["device": .string(device), "mode": .string(mode)])
    }

    public func advance(_ seconds: Double) throws {
        try call("plant.advance", ["seconds": .number(seconds)])
    }

    public func stop() { child.stop() }
}

/// A JSON-RPC 2.0 client over a Unix stream socket, one JSON object per line.
public final class JSONRPCLineClient: @unchecked Sendable {
    public let fd: Int32
    private var nextID = 1
    private var pending: [UInt8] = []

    /// Connects; `timeout` bounds every read and write.
    public init(path: String, timeout: Double = 10) throws {
        let s = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard s >= 0 else { throw TestSupportError("socket: \(errno)") }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else { close(s); throw TestSupportError("socket path too long") }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in for (i, b) in bytes.enumerated() { raw[i] = b } }
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(s, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard rc == 0 else {
            let e = String(cString: strerror(errno))
            close(s)
            throw TestSupportError("cannot connect to \(path): \(e)")
        }
        var tv = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - Double(Int(timeout))) * 1e6))
        setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        fd = s
    }

    deinit { close(fd) }

    /// Sends raw bytes (a line terminator is not added).
    public func send(raw: [UInt8]) throws {
        var off = 0
        while off < raw.count {
            let n = raw[off...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if n <= 0 { throw TestSupportError("write failed: \(String(cString: strerror(errno)))") }
            off += n
        }
    }

    /// Reads one line (without the newline); `nil` at end of stream.
    public func readLine() throws -> [UInt8]? {
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            if let nl = pending.firstIndex(of: 0x0A) {
                let line = Array(pending[..<nl])
                pending.removeSubrange(...nl)
                return line
            }
            let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n == 0 { return nil }
            if n < 0 { throw TestSupportError("read failed: \(String(cString: strerror(errno)))") }
            pending += buf[0..<n]
        }
    }

    /// Sends a request object and returns the whole response object.
    public func request(_ method: String, _ params: JSON? = nil) throws -> JSON {
        let id = nextID
        nextID += 1
        let req = JSON.obj([("jsonrpc", "2.0"), ("id", .number(Double(id))), ("method", .string(method)), ("params", params)])
        try send(raw: Array((req.encoded() + "\n").utf8))
        while true {
            guard let line = try readLine() else { throw TestSupportError("connection closed before the response to \(method)") }
            let resp = try JSON.parse(line)
            if resp["id"] == .number(Double(id)) || resp["id"] == .null { return resp }
        }
    }

    /// Sends a request and returns its `result`, throwing on a JSON-RPC error.
    @discardableResult
    public func call(_ method: String, _ params: JSON? = nil) throws -> JSON {
        let resp = try request(method, params)
        if let e = resp["error"] {
            throw TestSupportError("\(method) failed: \(e["message"]?.stringValue ?? e.encoded()) (\(e["code"]?.numberValue.map { fmt($0) } ?? "?"))")
        }
        return resp["result"] ?? .null
    }
}
