import RedlineConfig
import RedlineCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Resolves a device host to its numeric addresses (IPv4 and IPv6), and tells which
/// addresses are this machine's own (loopback and the interfaces' addresses): traffic to
/// those leaves through `lo`, whatever address spelling the client used.
/// Unlike `HostResolver`, nothing is folded: the firewall needs the real addresses.
public struct AddressResolver: Sendable {
    public var resolve: @Sendable (String) -> Result<[String], HostResolver.Failure>
    public var isLocal: @Sendable (String) -> Bool

    public init(resolve: @escaping @Sendable (String) -> Result<[String], HostResolver.Failure>,
                isLocal: @escaping @Sendable (String) -> Bool) {
        self.resolve = resolve
        self.isLocal = isLocal
    }

    /// getaddrinfo and getifaddrs.
    public static var system: AddressResolver {
        let local = NetAddress.interfaceAddresses()
        return AddressResolver(resolve: { NetAddress.lookup($0) },
                               isLocal: { NetAddress.isLoopback($0) || local.contains($0) })
    }

    /// A fixed table, for tests: hosts not in it do not resolve.
    public static func fixed(_ table: [String: [String]], local: Set<String> = []) -> AddressResolver {
        AddressResolver(resolve: { h in table[h].map { .success($0) } ?? .failure(HostResolver.Failure("unknown host \(h)")) },
                        isLocal: { NetAddress.isLoopback($0) || local.contains($0) })
    }
}

/// One IP endpoint of a device (a Modbus TCP gateway; later a BACnet/IP device).
public struct IPEndpoint: Sendable, Hashable {
    public enum Transport: String, Sendable, Hashable { case tcp, udp }
    public var bus: String
    public var host: String
    public var port: Int
    public var transport: Transport
    /// Numeric addresses, IPv4 first, each sorted.
    public var addresses: [String]

    public init(bus: String, host: String, port: Int, transport: Transport, addresses: [String]) {
        self.bus = bus
        self.host = host
        self.port = port
        self.transport = transport
        self.addresses = addresses
    }
}

/// Everything of the host a site's buses reach: what the firewall, the udev rules and
/// host-check are generated from.
public struct DeviceInventory: Sendable {
    public var endpoints: [IPEndpoint] = []
    /// Hosts that did not resolve: (bus, host, why).
    public var unresolved: [(bus: String, host: String, reason: String)] = []
    /// Modbus RTU lines: (bus, configured device path).
    public var serial: [(bus: String, path: String)] = []
    /// GPIO chips: (bus, chip as configured: `0`, `gpiochip0`, `/dev/gpiochip0` or a label).
    public var gpioChips: [(bus: String, chip: String)] = []
    /// Which addresses are this machine's own.
    public var isLocal: @Sendable (String) -> Bool = { _ in false }

    public init() {}

    public init(site: Site, resolver: AddressResolver = .system) {
        isLocal = resolver.isLocal
        for bus in site.buses {
            switch bus.kind {
            case .modbusTCP(let host, let port):
                switch resolver.resolve(host) {
                case .success(let addrs):
                    let v4 = Set(addrs.filter { !$0.contains(":") }).sorted()
                    let v6 = Set(addrs.filter { $0.contains(":") }).sorted()
                    endpoints.append(IPEndpoint(bus: bus.id, host: host, port: port, transport: .tcp, addresses: v4 + v6))
                case .failure(let f):
                    unresolved.append((bus.id, host, f.reason))
                }
            case .modbusRTU(let s):
                serial.append((bus.id, s.device))
            case .gpio(let chip):
                gpioChips.append((bus.id, chip))
            }
        }
    }

    /// The device node of a chip named by number, `gpiochipN` or path; nil for a label.
    public static func gpioChipPath(_ chip: String) -> String? {
        if !chip.isEmpty, chip.allSatisfy({ $0.isASCII && $0.isNumber }) { return "/dev/gpiochip\(Int(chip) ?? 0)" }
        if chip.hasPrefix("gpiochip"), !chip.contains("/") { return "/dev/" + chip }
        if chip.contains("/") { return chip }
        return nil
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
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
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
