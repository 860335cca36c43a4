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

/// A blocking JSON-RPC 2.0 client over a Unix socket, one JSON object per line.
///
/// Used by `redlinectl`, the HIL runner, the MCP bridge and tests. Not for
/// concurrent use: give each thread its own client.
public final class LineClient {
    private var fd: Int32
    private var buffer: [UInt8] = []
    private var nextID = 1
    public let path: String

    /// Connects; `timeoutMs` bounds every later read and write.
    public init(path: String, timeoutMs: Int = 10_000) throws(ClientError) {
        self.path = path
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
        guard bytes.count < cap else { Glibc.close(fd); throw .connect(path, errno: ENAMETOOLONG) }
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
        while true {
            if let nl = buffer.firstIndex(of: 0x0A) {
                let line = Array(buffer[..<nl])
                buffer.removeSubrange(...nl)
                return line
            }
            var chunk = [UInt8](repeating: 0, count: 65536)
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n == 0 { throw .closed }
            if n < 0 {
                if errno == EINTR { continue }
                if errno == EAGAIN || errno == EWOULDBLOCK { throw .timeout }
                throw .io(String(cString: strerror(errno)))
            }
            buffer.append(contentsOf: chunk[..<n])
        }
    }

    /// Reads one line and parses it as JSON.
    public func readJSON() throws(ClientError) -> JSON {
        let line = try readLine()
        do { return try JSON.parse(line) } catch { throw .protocolError("\(error)") }
    }

    /// Sends a request and returns its full response object (result or error).
    public func request(_ method: String, _ params: JSON? = nil) throws(ClientError) -> JSON {
        let id = nextID
        nextID += 1
        let req = JSON.obj([("jsonrpc", "2.0"), ("id", .number(Double(id))), ("method", .string(method)), ("params", params)])
        try send(raw: Array((req.encoded() + "\n").utf8))
        return try readJSON()
    }

    /// Sends a request and returns its `result`, or throws its error.
    public func call(_ method: String, _ params: JSON? = nil) throws(ClientError) -> JSON {
        let resp = try request(method, params)
        if let err = resp["error"] {
            throw .rpc(code: Int(err["code"]?.numberValue ?? 0), message: err["message"]?.stringValue ?? "", data: err["data"])
        }
        guard let result = resp["result"] else { throw .protocolError("no result in \(resp.encoded())") }
        return result
    }
}
