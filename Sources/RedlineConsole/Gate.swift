/// Who may use the console: the holder of its access token, from its own origin.
///
/// The console binds 127.0.0.1 only, but any local process and any web page the operator
/// opens can reach that. So every request needs the random token (from the URL the console
/// printed, then from an HttpOnly SameSite=Strict cookie), and every state-changing request
/// must also come from the console's own origin (the Origin header, or the Referer when a
/// browser sends no Origin; neither means refused). Pure: no I/O.
public struct Gate: Sendable {
    public let token: String
    public let port: Int
    /// The cookie that carries the token after the first visit.
    public static let cookieName = "redline_console"

    public init(token: String, port: Int) {
        self.token = token
        self.port = port
    }

    /// The origins the console answers state-changing requests from.
    public var origins: [String] { ["http://127.0.0.1:\(port)", "http://localhost:\(port)"] }

    /// The hosts a request may name (a page on another name that resolves here, DNS
    /// rebinding, is refused even before the token is looked at).
    public var hosts: [String] { ["127.0.0.1:\(port)", "localhost:\(port)"] }

    /// The URL to print: open it once, and the cookie takes over.
    public var url: String { "http://127.0.0.1:\(port)/?token=\(token)" }

    public enum Verdict: Sendable, Equatable {
        case allowed
        /// No valid token (HTTP 401).
        case unauthorized(String)
        /// A valid token, but from elsewhere (HTTP 403).
        case forbidden(String)
    }

    /// What one request carries that the gate looks at.
    public struct Request: Sendable {
        public var method: String
        public var host: String?
        public var queryToken: String?
        public var cookieHeader: String?
        public var authorization: String?
        public var origin: String?
        public var referer: String?

        public init(method: String, host: String?, queryToken: String?, cookieHeader: String?, authorization: String?,
                    origin: String?, referer: String?) {
            self.method = method
            self.host = host
            self.queryToken = queryToken
            self.cookieHeader = cookieHeader
            self.authorization = authorization
            self.origin = origin
            self.referer = referer
        }
    }

    /// Whether `r` is answered. Safe methods (GET, HEAD) need the token; anything else needs the
    /// token and the console's own origin.
    public func check(_ r: Request) -> Verdict {
        guard let host = r.host, hosts.contains(host.lowercased()) else {
            return .forbidden("this console answers only to \(hosts[0]) (got host \(r.host ?? "none"))")
        }
        let offered = [r.queryToken, Gate.cookie(Gate.cookieName, in: r.cookieHeader), Gate.bearer(r.authorization)].compactMap { $0 }
        guard offered.contains(where: { Gate.constantTimeEquals($0, token) }) else {
            return .unauthorized(offered.isEmpty ? "no access token: open the URL redline-console printed" : "wrong access token")
        }
        if r.method == "GET" || r.method == "HEAD" { return .allowed }
        return sameOrigin(origin: r.origin, referer: r.referer)
            ? .allowed : .forbidden("cross-origin request refused: state changes come only from \(origins[0])")
    }

    /// The Origin header when there is one (it must be one of `origins` exactly, so "null" is
    /// refused), else the Referer's origin; neither is refused.
    public func sameOrigin(origin: String?, referer: String?) -> Bool {
        if let origin { return origins.contains(origin.lowercased()) }
        guard let referer, let o = Gate.origin(ofURL: referer) else { return false }
        return origins.contains(o)
    }

    /// `scheme://host[:port]` of an absolute http(s) URL, lowercased; nil for anything else.
    public static func origin(ofURL url: String) -> String? {
        let lower = url.lowercased()
        for scheme in ["http://", "https://"] where lower.hasPrefix(scheme) {
            let rest = lower.dropFirst(scheme.count)
            let authority = rest.prefix { $0 != "/" && $0 != "?" && $0 != "#" }
            guard !authority.isEmpty, !authority.contains("@") else { return nil }
            return scheme + authority
        }
        return nil
    }

    /// One cookie's value from a Cookie header (`a=1; b=2`).
    public static func cookie(_ name: String, in header: String?) -> String? {
        guard let header else { return nil }
        for part in header.split(separator: ";") {
            let kv = part.split(separator: "=", maxSplits: 1)
            if kv.count == 2, kv[0].trimmingSpaces == name { return String(kv[1].trimmingSpaces) }
        }
        return nil
    }

    static func bearer(_ header: String?) -> String? {
        guard let header, header.hasPrefix("Bearer ") else { return nil }
        return String(header.dropFirst(7))
    }

    /// Compares in time that depends on the lengths only, never on where the first difference is.
    public static func constantTimeEquals(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        var diff = UInt8(x.count == y.count ? 0 : 1)
        for i in 0..<max(x.count, y.count) {
            diff |= (i < x.count ? x[i] : 0) ^ (i < y.count ? y[i] : 0)
        }
        return diff == 0
    }

    /// A fresh token: 256 bits from the system's generator (getrandom), as hex.
    public static func newToken() -> String {
        var g = SystemRandomNumberGenerator()
        return (0..<4).map { _ in
            let h = String(g.next() as UInt64, radix: 16)
            return String(repeating: "0", count: 16 - h.count) + h
        }.joined()
    }

    /// The Set-Cookie value that keeps the token in the browser (never readable by scripts).
    public var setCookie: String { "\(Gate.cookieName)=\(token); Path=/; HttpOnly; SameSite=Strict" }
}

extension Substring {
    var trimmingSpaces: Substring {
        var s = self
        while s.first == " " { s = s.dropFirst() }
        while s.last == " " { s = s.dropLast() }
        return s
    }
}

/// `application/x-www-form-urlencoded` bodies, as browsers send forms.
public enum FormBody {
    public static func parse(_ body: String) -> [String: String] {
        var out: [String: String] = [:]
        for pair in body.split(separator: "&") {
            let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let k = decode(kv[0]), v = kv.count > 1 ? decode(kv[1]) : ""
            if let k, let v { out[k] = v }
        }
        return out
    }

    /// `+` is a space, `%XY` a byte; nil for a bad escape or bytes that are not UTF-8.
    static func decode(_ s: Substring) -> String? {
        var bytes: [UInt8] = []
        var it = Array(s.utf8)[...]
        while let b = it.popFirst() {
            switch b {
            case UInt8(ascii: "+"): bytes.append(0x20)
            case UInt8(ascii: "%"):
                guard it.count >= 2, let v = UInt8(String(decoding: it.prefix(2), as: UTF8.self), radix: 16) else { return nil }
                bytes.append(v)
                it = it.dropFirst(2)
            default: bytes.append(b)
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }
}
