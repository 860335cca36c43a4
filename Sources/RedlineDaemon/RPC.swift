import RedlineCore

/// JSON-RPC 2.0 error codes used on both sockets (docs/DESIGN.md §7).
public enum RPCCode: Int, Sendable {
    case parse = -32700
    case invalidRequest = -32600
    case methodNotFound = -32601
    case invalidParams = -32602
    case internalError = -32603
    case unknownPoint = -32004
    /// Server-defined: the connection exceeded its request rate.
    case rateLimited = -32005
    /// Server-defined: the peer is not admitted on this socket.
    case notAdmitted = -32006
}

/// A JSON-RPC error answer.
public struct RPCError: Error, Sendable {
    public var code: RPCCode
    public var message: String
    public init(_ code: RPCCode, _ message: String) {
        self.code = code
        self.message = message
    }
}

/// A line that is not a valid request, with the id to answer (null if unknown).
public struct RejectedLine: Error, Sendable {
    public var id: JSON
    public var error: RPCError
}

/// One parsed JSON-RPC request.
public struct RPCRequest: Sendable {
    public var id: JSON
    public var method: String
    public var params: JSON?
    /// No `id`: the caller wants no answer (still decided and audited).
    public var isNotification: Bool
}

public enum RPC {
    /// Maximum bytes in one request line.
    public static let maxLine = 64 * 1024

    /// Parses a line into a request, or the error answer to send back.
    public static func parse(line: [UInt8]) -> Result<RPCRequest, RejectedLine> {
        let value: JSON
        do { value = try JSON.parse(line) } catch {
            return .failure(RejectedLine(id: .null, error: RPCError(.parse, "parse error: \(error)")))
        }
        if case .array = value {
            return .failure(RejectedLine(id: .null, error: RPCError(.invalidRequest, "batch requests are refused: send one request per line")))
        }
        guard case .object = value else {
            return .failure(RejectedLine(id: .null, error: RPCError(.invalidRequest, "a request must be a JSON object")))
        }
        let idValue = value["id"]
        let id: JSON = idValue ?? .null
        switch id {
        case .null, .string, .number: break
        default: return .failure(RejectedLine(id: .null, error: RPCError(.invalidRequest, "id must be a string, a number or null")))
        }
        guard value["jsonrpc"] == .string("2.0") else {
            return .failure(RejectedLine(id: id, error: RPCError(.invalidRequest, "jsonrpc must be \"2.0\"")))
        }
        guard let method = value["method"]?.stringValue else {
            return .failure(RejectedLine(id: id, error: RPCError(.invalidRequest, "method must be a string")))
        }
        let params = value["params"]
        if let p = params {
            switch p {
            case .object, .array: break
            default: return .failure(RejectedLine(id: id, error: RPCError(.invalidRequest, "params must be an object or an array")))
            }
        }
        return .success(RPCRequest(id: id, method: method, params: params, isNotification: idValue == nil))
    }

    public static func result(id: JSON, _ result: JSON) -> JSON {
        .object([("jsonrpc", "2.0"), ("id", id), ("result", result)])
    }

    public static func error(id: JSON, _ e: RPCError) -> JSON {
        .object([("jsonrpc", "2.0"), ("id", id),
                 ("error", .object([("code", .number(Double(e.code.rawValue))), ("message", .string(e.message))]))])
    }
}

/// Typed access to `params`, with -32602 for anything missing or of the wrong type.
struct Params {
    let value: JSON?
    let method: String
    init(_ value: JSON?, method: String) {
        self.value = value
        self.method = method
    }

    /// The params object; `allowed: nil` accepts any member (free text is logged, never consulted).
    func object(allowed: Set<String>?) throws(RPCError) -> [(String, JSON)] {
        guard let v = value else { return [] }
        guard case .object(let kv) = v else { throw RPCError(.invalidParams, "\(method): params must be an object") }
        guard let allowed else { return kv }
        for (k, _) in kv where !allowed.contains(k) {
            throw RPCError(.invalidParams, "\(method): unknown parameter \"\(k)\"")
        }
        return kv
    }

    func string(_ key: String, allowed: Set<String>?) throws(RPCError) -> String {
        _ = try object(allowed: allowed)
        guard let s = value?[key]?.stringValue else {
            throw RPCError(.invalidParams, "\(method): \"\(key)\" must be a string")
        }
        return s
    }

    func optionalString(_ key: String) throws(RPCError) -> String? {
        guard let v = value?[key], !v.isNull else { return nil }
        guard let s = v.stringValue else { throw RPCError(.invalidParams, "\(method): \"\(key)\" must be a string") }
        return s
    }

    func number(_ key: String) throws(RPCError) -> Double {
        guard let n = value?[key]?.numberValue else {
            throw RPCError(.invalidParams, "\(method): \"\(key)\" must be a JSON number")
        }
        return n
    }

    func stringArray(_ key: String) throws(RPCError) -> [String] {
        guard let a = value?[key]?.arrayValue else {
            throw RPCError(.invalidParams, "\(method): \"\(key)\" must be an array of strings")
        }
        var out: [String] = []
        for e in a {
            guard let s = e.stringValue else { throw RPCError(.invalidParams, "\(method): \"\(key)\" must be an array of strings") }
            out.append(s)
        }
        return out
    }
}
