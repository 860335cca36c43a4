#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import RedlineCore
// The clients' monotonic clock is the daemon's: one implementation, in RedlineClock.
@_exported import RedlineClock

/// One JSON-RPC 2.0 conversation with a line-protocol server: redlined's agent or operator
/// socket, or the simulator's control socket (docs/DESIGN.md §7).
///
/// Two implementations: `LineClient` (a Unix socket connection as this process's uid) and
/// `UidRelay` (a child process connects as another uid, so the daemon's SO_PEERCRED sees that
/// uid). `redlinectl`, the MCP server (`RedlineMCP`), the HIL runner, the bench and the tests
/// all talk through this protocol. Not for concurrent use: give each thread its own transport.
public protocol RPCTransport: AnyObject {
    /// Sends one request and returns its whole response object (result or error).
    func request(_ method: String, _ params: JSON?) throws(ClientError) -> JSON
    /// How this transport reaches its socket, for the record (HIL reports name it).
    var how: String { get }
    /// Ends the conversation; later requests fail.
    func close()
}

extension RPCTransport {
    /// Sends a request and returns its `result`, or throws its error answer as `ClientError.rpc`.
    public func call(_ method: String, _ params: JSON? = nil) throws(ClientError) -> JSON {
        try RPCMessage.result(of: request(method, params))
    }

    /// A request without parameters; its whole response object.
    public func request(_ method: String) throws(ClientError) -> JSON { try request(method, nil) }
}

/// The JSON-RPC 2.0 envelopes, written once.
public enum RPCMessage {
    /// A request object.
    public static func request(id: Int, method: String, params: JSON?) -> JSON {
        .obj([("jsonrpc", "2.0"), ("id", .number(Double(id))), ("method", .string(method)), ("params", params)])
    }

    /// A request as one line of bytes, newline included.
    public static func line(id: Int, method: String, params: JSON?) -> [UInt8] {
        Array((request(id: id, method: method, params: params).encoded() + "\n").utf8)
    }

    /// The `result` of a response object, or its error answer thrown as `ClientError.rpc`.
    public static func result(of response: JSON) throws(ClientError) -> JSON {
        if let err = response["error"] {
            throw .rpc(code: Int(err["code"]?.numberValue ?? 0), message: err["message"]?.stringValue ?? "", data: err["data"])
        }
        guard let result = response["result"] else { throw .protocolError("no result in \(response.encoded())") }
        return result
    }

    /// Parses one answer line.
    public static func parse(_ line: [UInt8]) throws(ClientError) -> JSON {
        do { return try JSON.parse(line) } catch { throw .protocolError("\(error)") }
    }
}

/// Bytes read from a file descriptor, cut into lines (without their newline).
struct LineReader {
    private(set) var pending: [UInt8] = []

    /// The next complete line, or `nil` at end of file (what came after the last newline stays
    /// in `pending`). With a `deadline` (monotonic ns) it waits in `poll` and throws `.timeout`
    /// once it passes; without one it reads as the descriptor blocks (a socket's SO_RCVTIMEO
    /// gives EAGAIN, which is `.timeout` too).
    mutating func next(fd: Int32, deadline: UInt64? = nil) throws(ClientError) -> [UInt8]? {
        while true {
            if let nl = pending.firstIndex(of: 0x0A) {
                let line = Array(pending[..<nl])
                pending.removeSubrange(...nl)
                return line
            }
            if let deadline {
                let now = Monotonic.nanoseconds()
                if now >= deadline { throw .timeout }
                var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                let r = poll(&p, 1, Int32(max(1, (deadline - now) / 1_000_000)))
                if r <= 0 { continue }
            }
            var chunk = [UInt8](repeating: 0, count: 65536)
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n == 0 { return nil }
            if n < 0 {
                if errno == EINTR { continue }
                if errno == EAGAIN || errno == EWOULDBLOCK { throw .timeout }
                throw .io(String(cString: strerror(errno)))
            }
            pending.append(contentsOf: chunk[..<n])
        }
    }

    /// Takes what is left after the last newline.
    mutating func takeRest() -> [UInt8] {
        defer { pending = [] }
        return pending
    }
}

