import Foundation
import RedlineCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The physical thing a bus reaches, compared by identity rather than spelling:
/// `localhost:15024`, `127.0.0.1:15024` and `[::1]:15024` are one Modbus server;
/// `/dev/serial/by-id/usb-FTDI…` and `/dev/ttyUSB0` are one serial line;
/// `0`, `gpiochip0` and `/dev/gpiochip0` are one GPIO chip.
public enum PhysicalEndpoint: Sendable, Hashable, CustomStringConvertible {
    /// Modbus TCP: the addresses the host resolved to (`HostResolver.thisHost` for every
    /// address of this machine), and the port.
    case tcp(addresses: Set<String>, port: Int)
    /// Modbus RTU: the serial device, symlinks resolved (lexically normalized where it does not exist yet).
    case serial(path: String)
    /// A GPIO chip: its device path, or `label:NAME` for a chip named by label.
    case gpioChip(String)
    /// BACnet/IP: the addresses the device network's address resolved to, and the UDP port.
    case udp(addresses: Set<String>, port: Int)

    /// Two endpoints are one physical endpoint: one TCP server (same port, a shared address),
    /// one serial line, one GPIO chip.
    public func isSame(as other: PhysicalEndpoint) -> Bool {
        switch (self, other) {
        case (.tcp(let a, let p), .tcp(let b, let q)): return p == q && !a.isDisjoint(with: b)
        case (.serial(let a), .serial(let b)): return a == b
        case (.gpioChip(let a), .gpioChip(let b)): return a == b
        case (.udp(let a, let p), .udp(let b, let q)): return p == q && !a.isDisjoint(with: b)
        default: return false
        }
    }

    public var description: String {
        switch self {
        case .tcp(let a, let port):
            let shown = a.sorted().map { $0 == HostResolver.thisHost ? "this host (loopback)" : $0 }
            return "\(shown.joined(separator: "/")) port \(port)"
        case .serial(let p): return p
        case .gpioChip(let c): return c
        case .udp(let a, let port):
            let shown = a.sorted().map { $0 == HostResolver.thisHost ? "this host (loopback)" : $0 }
            return "\(shown.joined(separator: "/")) UDP port \(port)"
        }
    }
}

/// Resolves TCP hosts to addresses (getaddrinfo), with every address of this machine
/// (127.0.0.0/8, ::1, the unspecified addresses that connect to it, and the addresses of its
/// interfaces) folded into one: `HostResolver.thisHost`. Injectable for tests.
public struct HostResolver: Sendable {
    /// The one name for "this machine", whichever of its addresses a host resolved to.
    public static let thisHost = "this-host"

    /// Why a host does not resolve.
    public struct Failure: Error, Sendable, Hashable, CustomStringConvertible {
        public var reason: String
        public init(_ reason: String) { self.reason = reason }
        public var description: String { reason }
    }

    /// Addresses of a host, or why it does not resolve.
    public var resolve: @Sendable (String) -> Result<Set<String>, Failure>

    public init(resolve: @escaping @Sendable (String) -> Result<Set<String>, Failure>) { self.resolve = resolve }

    /// getaddrinfo, plus this machine's interface addresses (getifaddrs), read once per resolver.
    public static var system: HostResolver {
        let local = NetAddress.interfaceAddresses()
        return HostResolver { host in
            NetAddress.lookup(host).map { Set($0.map { canonical($0, local: local) }) }
        }
    }

    /// A numeric address in canonical text form, with this machine's addresses folded into `thisHost`.
    static func canonical(_ address: String, local: Set<String>) -> String {
        var a = address
        // IPv4-mapped IPv6 (::ffff:127.0.0.1) is the IPv4 address.
        if a.lowercased().hasPrefix("::ffff:"), a.dropFirst(7).contains(".") { a = String(a.dropFirst(7)) }
        if a.hasPrefix("127.") || a == "::1" || a == "0.0.0.0" || a == "::" || local.contains(a) { return thisHost }
        return a
    }
}

/// Numeric address helpers over getaddrinfo, inet_ntop and getifaddrs.
public enum NetAddress {
    public static func isLoopback(_ a: String) -> Bool {
        a.hasPrefix("127.") || a == "::1" || a.lowercased().hasPrefix("::ffff:127.")
    }

    /// Numeric addresses of `host` (AF_INET and AF_INET6), deduplicated.
    public static func lookup(_ host: String) -> Result<[String], HostResolver.Failure> {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        #if canImport(Glibc) || canImport(Musl)
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        #else
        hints.ai_socktype = SOCK_STREAM
        #endif
        var res: UnsafeMutablePointer<addrinfo>?
        let name = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        let rc = getaddrinfo(name, nil, &hints, &res)
        guard rc == 0 else { return .failure(HostResolver.Failure(String(cString: gai_strerror(rc)))) }
        defer { freeaddrinfo(res) }
        var out: [String] = []
        var p = res
        while let ai = p {
            if let s = numeric(ai.pointee.ai_addr), !out.contains(s) { out.append(s) }
            p = ai.pointee.ai_next
        }
        return out.isEmpty ? .failure(HostResolver.Failure("no IPv4 or IPv6 address")) : .success(out)
    }

    static func numeric(_ sa: UnsafeMutablePointer<sockaddr>?) -> String? {
        guard let sa else { return nil }
        func text(_ family: Int32, _ addr: UnsafeRawPointer) -> String? {
            withUnsafeTemporaryAllocation(of: CChar.self, capacity: Int(INET6_ADDRSTRLEN) + 1) { buf in
                guard let base = buf.baseAddress, inet_ntop(family, addr, base, socklen_t(buf.count)) != nil else { return nil }
                return String(cString: base)
            }
        }
        switch Int32(sa.pointee.sa_family) {
        case AF_INET:
            return sa.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { sin in
                var addr = sin.pointee.sin_addr
                return withUnsafeBytes(of: &addr) { text(AF_INET, $0.baseAddress!) }
            }
        case AF_INET6:
            return sa.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { sin6 -> String? in
                var addr = sin6.pointee.sin6_addr
                guard let s = withUnsafeBytes(of: &addr, { text(AF_INET6, $0.baseAddress!) }) else { return nil }
                // IPv4-mapped IPv6 is the IPv4 address.
                if s.lowercased().hasPrefix("::ffff:"), s.dropFirst(7).contains(".") { return String(s.dropFirst(7)) }
                return s
            }
        default:
            return nil
        }
    }

    /// Addresses of this machine's interfaces.
    public static func interfaceAddresses() -> Set<String> {
        var list: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&list) == 0 else { return [] }
        defer { freeifaddrs(list) }
        var out = Set<String>()
        var p = list
        while let ifa = p {
            if let s = numeric(ifa.pointee.ifa_addr) { out.insert(s) }
            p = ifa.pointee.ifa_next
        }
        return out
    }
}

/// Paths compared by what they name.
enum PathIdentity {
    /// `path` with symlinks resolved. Where it does not exist (yet), its longest existing
    /// prefix is resolved and the rest normalized lexically (`.`, `..`, repeated `/`).
    static func physical(_ path: String) -> String {
        let absolute = path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
        let lexical = normalized(absolute)
        if let r = realPath(lexical) { return r }
        var parts = lexical.split(separator: "/").map(String.init)
        var rest: [String] = []
        while !parts.isEmpty {
            rest.insert(parts.removeLast(), at: 0)
            let prefix = "/" + parts.joined(separator: "/")
            if let r = realPath(prefix) { return normalized(r + "/" + rest.joined(separator: "/")) }
        }
        return lexical
    }

    /// Lexical normalization of an absolute path: no `.`, no `..`, no repeated or trailing `/`.
    static func normalized(_ path: String) -> String {
        var out: [Substring] = []
        for part in path.split(separator: "/", omittingEmptySubsequences: true) {
            if part == "." { continue }
            if part == ".." { if !out.isEmpty { out.removeLast() }; continue }
            out.append(part)
        }
        return "/" + out.joined(separator: "/")
    }

    static func realPath(_ path: String) -> String? {
        guard let p = realpath(path, nil) else { return nil }
        defer { free(p) }
        return String(cString: p)
    }

    /// A GPIO chip as libgpiod's lookup names it: a number or `gpiochipN` is `/dev/gpiochipN`,
    /// a path is resolved, anything else is a label (resolved against the real chips at start-up).
    static func gpioChip(_ chip: String) -> String {
        switch GPIOChipName(chip) {
        case .node(let p), .path(let p): return physical(p)
        case .label(let l): return "label:" + l
        }
    }
}
