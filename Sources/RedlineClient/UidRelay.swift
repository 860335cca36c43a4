import Foundation
import RedlineCore

/// The `RPCTransport` that connects as another uid: `setpriv` drops to the uid (and the given
/// supplementary groups) and runs a relay child whose stdin and stdout are this object's pipes.
/// The child opens the Unix socket, so the daemon identifies the uid through SO_PEERCRED exactly
/// as it would a real agent or operator process. Needs root to switch uid.
///
/// Used by the HIL runner and the fuzzer (to act as each agent), by the bench (to reach the
/// operator socket while its agent runs as the bench's own uid) and by the end-to-end tests.
/// Not for concurrent use.
public final class UidRelay: RPCTransport, @unchecked Sendable {
    /// What the child runs after `setpriv`.
    public enum Hop: Sendable {
        /// `socat -t LINGER STDIO UNIX-CONNECT:PATH` (LINGER: seconds socat waits for the socket to
        /// close after this side has; its stderr is discarded).
        case socat(linger: Double)
        /// `EXECUTABLE relay --socket PATH`: a program that runs `UidRelay.serveStdio` (redline-hil
        /// relay); its stderr is this process's. Closing waits up to 1 s for it to leave.
        case relay(executable: String)
    }

    let process = Process()
    let toPeer = Pipe()
    let fromPeer = Pipe()
    private var reader = LineReader()
    private var nextID = 1
    private let hop: Hop
    /// Seconds a read waits for a line unless told otherwise.
    public let timeout: Double
    public let path: String
    public let uid: UInt32
    public let how: String

    /// Whether this process can switch to another uid (it runs as root).
    public static var canSwitchUser: Bool { getuid() == 0 }

    /// Starts the relay child. `groups`: supplementary groups it holds (none by default).
    public init(path: String, uid: UInt32, groups: [UInt32] = [], hop: Hop = .socat(linger: 0.5), timeout: Double = 10) throws(ClientError) {
        self.path = path
        self.uid = uid
        self.hop = hop
        self.timeout = timeout
        let groupArgs = groups.isEmpty ? ["--clear-groups"] : ["--groups", groups.map(String.init).joined(separator: ",")]
        var args = ["--reuid", String(uid), "--regid", String(uid)] + groupArgs
        switch hop {
        case .socat(let linger):
            args += ["socat", "-t", String(linger), "STDIO", "UNIX-CONNECT:\(path)"]
            how = "via setpriv and socat as uid \(uid) to \(path)"
            process.standardError = FileHandle.nullDevice
        case .relay(let executable):
            args += [executable, "relay", "--socket", path]
            how = "via setpriv relay as uid \(uid) to \(path)"
            process.standardError = FileHandle.standardError
        }
        process.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
        process.arguments = args
        process.standardInput = toPeer
        process.standardOutput = fromPeer
        do { try process.run() } catch { throw .io("cannot start setpriv relay: \(error)") }
    }

    deinit { close() }

    public func close() {
        try? toPeer.fileHandleForWriting.close()
        guard process.isRunning else { return }
        if case .relay = hop {
            let deadline = Monotonic.nanoseconds() + 1_000_000_000
            while process.isRunning && Monotonic.nanoseconds() < deadline { usleep(5_000) }
        }
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
    }

    /// Sends raw bytes as they are (for protocol tests).
    public func send(raw: [UInt8]) throws(ClientError) {
        do { try toPeer.fileHandleForWriting.write(contentsOf: raw) } catch { throw .io("relay: \(error)") }
    }

    public func sendLine(_ text: String) throws(ClientError) { try send(raw: Array((text + "\n").utf8)) }

    /// Closes the sending side only (the peer sees a half-close); answers can still be read.
    public func finishSending() { try? toPeer.fileHandleForWriting.close() }

    /// The next line, or `nil` once the peer closed (what came after its last newline is returned
    /// first); throws `.timeout` after `timeout` seconds (by default the relay's own).
    public func readLine(timeout: Double? = nil) throws(ClientError) -> [UInt8]? {
        let wait = timeout ?? self.timeout
        let deadline = Monotonic.nanoseconds() + UInt64(max(0, wait) * 1e9)
        if let line = try reader.next(fd: fromPeer.fileHandleForReading.fileDescriptor, deadline: deadline) { return line }
        let rest = reader.takeRest()
        return rest.isEmpty ? nil : rest
    }

    public func readJSON(timeout: Double? = nil) throws(ClientError) -> JSON {
        guard let line = try readLine(timeout: timeout) else { throw .closed }
        return try RPCMessage.parse(line)
    }

    public func request(_ method: String, _ params: JSON?) throws(ClientError) -> JSON {
        let id = nextID
        nextID += 1
        try send(raw: RPCMessage.line(id: id, method: method, params: params))
        return try readJSON()
    }

    /// The relay child's side (`redline-hil relay`): copies request lines from stdin to the socket
    /// and each answer line to stdout. Every request gets one answer line, so a line-for-line relay
    /// is exact. `name` prefixes its messages on stderr. Returns the exit status.
    public static func serveStdio(socket path: String, name: String) -> Int32 {
        let client: LineClient
        do { client = try LineClient(path: path, timeoutMs: 60_000) } catch {
            FileHandle.standardError.write(Data("\(name): \(error)\n".utf8))
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
                FileHandle.standardError.write(Data("\(name): \(error)\n".utf8))
                return 1
            }
        }
        return 0
    }
}
