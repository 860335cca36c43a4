import Foundation
import RedlineClient
import RedlineCore

/// A JSON-RPC connection the runner talks through: a direct socket, or a relay child running as another uid.
public protocol RPCChannel: AnyObject {
    /// The whole response object (result or error).
    func request(_ method: String, _ params: JSON?) throws(ClientError) -> JSON
    /// How this channel reaches its socket, for the record.
    var how: String { get }
    func close()
}

extension RPCChannel {
    /// The `result`, or throws the error answer.
    public func call(_ method: String, _ params: JSON? = nil) throws(ClientError) -> JSON {
        let resp = try request(method, params)
        if let err = resp["error"] {
            throw .rpc(code: Int(err["code"]?.numberValue ?? 0), message: err["message"]?.stringValue ?? "", data: err["data"])
        }
        guard let result = resp["result"] else { throw .protocolError("no result in \(resp.encoded())") }
        return result
    }
}

/// A direct connection with `LineClient` (this process's own uid is what the daemon sees).
public final class DirectChannel: RPCChannel {
    let client: LineClient
    public let how: String

    public init(path: String, timeoutMs: Int = 15_000, how: String? = nil) throws(ClientError) {
        client = try LineClient(path: path, timeoutMs: timeoutMs)
        self.how = how ?? "direct to \(path) as uid \(getuid())"
    }

    public func request(_ method: String, _ params: JSON?) throws(ClientError) -> JSON {
        try client.request(method, params)
    }

    public func close() { client.close() }
}

/// A connection made by a child process running as another uid:
/// `setpriv --reuid UID --regid UID --clear-groups <redline-hil> relay --socket P`.
/// The relay copies request lines to the socket and answers back, so the daemon
/// identifies the agent's uid through SO_PEERCRED exactly as it would a real agent.
public final class RelayChannel: RPCChannel {
    let process = Process()
    let toRelay = Pipe()
    let fromRelay = Pipe()
    private var pending: [UInt8] = []
    private var nextID = 1
    let timeout: Double
    public let how: String

    public init(path: String, uid: UInt32, executable: String, timeout: Double = 15) throws(ClientError) {
        self.timeout = timeout
        how = "via setpriv relay as uid \(uid) to \(path)"
        process.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
        process.arguments = ["--reuid", String(uid), "--regid", String(uid), "--clear-groups",
                             executable, "relay", "--socket", path]
        process.standardInput = toRelay
        process.standardOutput = fromRelay
        process.standardError = FileHandle.standardError
        do { try process.run() } catch { throw .io("cannot start setpriv relay: \(error)") }
    }

    deinit { close() }

    public func close() {
        try? toRelay.fileHandleForWriting.close()
        if process.isRunning {
            let deadline = Date().addingTimeInterval(1)
            while process.isRunning && Date() < deadline { usleep(5_000) }
            if process.isRunning { process.terminate() }
            process.waitUntilExit()
        }
    }

    public func request(_ method: String, _ params: JSON?) throws(ClientError) -> JSON {
        let id = nextID
        nextID += 1
        let req = JSON.obj([("jsonrpc", "2.0"), ("id", .number(Double(id))), ("method", .string(method)), ("params", params)])
        do { try toRelay.fileHandleForWriting.write(contentsOf: Array((req.encoded() + "\n").utf8)) } catch {
            throw .io("relay: \(error)")
        }
        let line = try readLine()
        do { return try JSON.parse(line) } catch { throw .protocolError("\(error)") }
    }

    private func readLine() throws(ClientError) -> [UInt8] {
        let fd = fromRelay.fileHandleForReading.fileDescriptor
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            if let nl = pending.firstIndex(of: 0x0A) {
                let line = Array(pending[..<nl])
                pending.removeSubrange(...nl)
                return line
            }
            let left = deadline.timeIntervalSinceNow
            if left <= 0 { throw .timeout }
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let r = poll(&p, 1, Int32(max(1, left * 1000)))
            if r < 0 && errno == EINTR { continue }
            if r <= 0 { continue }
            var buf = [UInt8](repeating: 0, count: 65536)
            let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { throw .closed }
            pending += buf[..<n]
        }
    }
}

/// How the runner connects as an agent.
public enum AgentConnector {
    /// This program's own executable (for the relay child).
    public static var selfExecutable: String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }

    /// Connects to the agent socket as `uid`: through a setpriv relay when running as root and the uid differs,
    /// directly otherwise (the daemon then sees this process's uid; `note` says so).
    public static func connect(path: String, uid: UInt32) throws(ClientError) -> any RPCChannel {
        let me = geteuid()
        if me == uid { return try DirectChannel(path: path, how: "direct to \(path) as uid \(uid) (this process's own uid)") }
        if me == 0 { return try RelayChannel(path: path, uid: uid, executable: selfExecutable) }
        return try DirectChannel(path: path, how: "direct to \(path) as uid \(me): NOT the agent's uid \(uid) (not root, cannot switch); the daemon sees uid \(me)")
    }

    /// `redline-hil relay`: copies request lines from stdin to the socket and each answer line to stdout.
    /// Every request gets one answer line, so a line-for-line relay is exact.
    public static func relay(socket path: String) -> Int32 {
        let client: LineClient
        do { client = try LineClient(path: path, timeoutMs: 60_000) } catch {
            FileHandle.standardError.write(Data("redline-hil relay: \(error)\n".utf8))
            return 1
        }
        defer { client.close() }
        while let line = Swift.readLine(strippingNewline: true) {
            if line.isEmpty { continue }
            do {
                try client.send(raw: Array((line + "\n").utf8))
                let answer = try client.readLine()
                FileHandle.standardOutput.write(Data(answer + [0x0A]))
            } catch {
                FileHandle.standardError.write(Data("redline-hil relay: \(error)\n".utf8))
                return 1
            }
        }
        return 0
    }
}
