#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import RedlineCore

/// An error answer from a JSON-RPC peer, or a transport failure.
public enum ClientError: Error, Sendable, CustomStringConvertible {
    case connect(String, errno: Int32)
    case io(String)
    case closed
    case timeout
    case protocolError(String)
    case rpc(code: Int, message: String, data: JSON?)

    public var description: String {
        switch self {
        case .connect(let path, let e): return "cannot connect to \(path): \(String(cString: strerror(e)))"
        case .io(let m): return "I/O error: \(m)"
        case .closed: return "the server closed the connection"
        case .timeout: return "no answer in time"
        case .protocolError(let m): return "bad answer: \(m)"
        case .rpc(let code, let message, _): return "error \(code): \(message)"
        }
    }
}

/// A blocking JSON-RPC 2.0 client over a Unix socket, one JSON object per line: the
/// `RPCTransport` that connects as this process's own uid.
///
/// Used by `redlinectl`, the HIL runner, the MCP server, the bench and tests. Not for
/// concurrent use: give each thread its own client.
public final class LineClient: RPCTransport {
    private var fd: Int32
    private var reader = LineReader()
    private var nextID = 1
    public let path: String
    public let how: String

    /// Connects; `timeoutMs` bounds every later read and write. `how` is what `how` reports
    /// (by default "direct to PATH as uid N").
    public init(path: String, timeoutMs: Int = 10_000, how: String? = nil) throws(ClientError) {
        self.path = path
        self.how = how ?? "direct to \(path) as uid \(getuid())"
        #if canImport(Glibc)
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        #else
        fd = socket(AF_UNIX, SOCK_STREAM, 0)
        #endif
        guard fd >= 0 else { throw .connect(path, errno: errno) }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        let cap = MemoryLayout.size(ofValue: addr.sun_path)
        // Every throw below closes the socket and forgets it first: once every stored property
        // is set, a throwing init still runs `deinit`, which would otherwise close the same
        // number again, and by then it may be another thread's descriptor (the audit log's).
        guard bytes.count < cap else { Glibc.close(fd); fd = -1; throw .connect(path, errno: ENAMETOOLONG) }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            for (i, b) in bytes.enumerated() { raw[i] = b }
            raw[bytes.count] = 0
        }
        var tv = timeval(tv_sec: timeoutMs / 1000, tv_usec: (timeoutMs % 1000) * 1000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        if rc != 0 {
            let e = errno
            Glibc.close(fd)
            fd = -1
            throw .connect(path, errno: e)
        }
    }

    deinit { if fd >= 0 { Glibc.close(fd) } }

    public func close() {
        if fd >= 0 { Glibc.close(fd); fd = -1 }
    }

    /// Sends raw bytes as they are (for protocol tests).
    public func send(raw: [UInt8]) throws(ClientError) {
        var off = 0
        while off < raw.count {
            let n = raw[off...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                if errno == EAGAIN || errno == EWOULDBLOCK { throw .timeout }
                throw .io(String(cString: strerror(errno)))
            }
            off += n
        }
    }

    /// Reads one line (without its newline).
    public func readLine() throws(ClientError) -> [UInt8] {
        guard let line = try reader.next(fd: fd) else { throw .closed }
        return line
    }

    /// Reads one line and parses it as JSON.
    public func readJSON() throws(ClientError) -> JSON { try RPCMessage.parse(readLine()) }

    /// Sends a request and returns its full response object (result or error).
    public func request(_ method: String, _ params: JSON?) throws(ClientError) -> JSON {
        let id = nextID
        nextID += 1
        try send(raw: RPCMessage.line(id: id, method: method, params: params))
        return try readJSON()
    }
}

/// An `RPCTransport` that opens a fresh `LineClient` for every request and closes it after
/// the answer, so a restarted daemon is picked up and a broken connection never leaks into the
/// next request: the MCP server's link to the agent socket, and every one-off call
/// (`FreshConnections(path: p).call("status")`).
public final class FreshConnections: RPCTransport {
    public let path: String
    public let timeoutMs: Int
    public var how: String { "a fresh connection per request to \(path) as uid \(getuid())" }

    public init(path: String, timeoutMs: Int = 10_000) {
        self.path = path
        self.timeoutMs = timeoutMs
    }

    public func request(_ method: String, _ params: JSON?) throws(ClientError) -> JSON {
        let client = try LineClient(path: path, timeoutMs: timeoutMs)
        defer { client.close() }
        return try client.request(method, params)
    }

    public func close() {}
}

extension SocketPaths {
    /// The agent socket: `given`, else `$REDLINE_AGENT_SOCKET` (when set and not empty), else the default.
    public static func agent(_ given: String?) -> String { given ?? variable(agentVariable) ?? agentDefault }

    /// The operator socket: `given`, else `$REDLINE_OPERATOR_SOCKET` (when set and not empty), else the default.
    public static func `operator`(_ given: String?) -> String { given ?? variable(operatorVariable) ?? operatorDefault }

    static func variable(_ name: String) -> String? {
        guard let v = getenv(name) else { return nil }
        let s = String(cString: v)
        return s.isEmpty ? nil : s
    }
}
