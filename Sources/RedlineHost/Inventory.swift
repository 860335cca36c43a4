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
            case .bacnetIP(let address, let port):
                // BACnet/IP is UDP: the device network's address and port (replies come from it).
                switch resolver.resolve(address) {
                case .success(let addrs):
                    let v4 = Set(addrs.filter { !$0.contains(":") }).sorted()
                    let v6 = Set(addrs.filter { $0.contains(":") }).sorted()
                    endpoints.append(IPEndpoint(bus: bus.id, host: address, port: port, transport: .udp, addresses: v4 + v6))
                case .failure(let f):
                    unresolved.append((bus.id, address, f.reason))
                }
            }
        }
    }

    /// The device node of a chip named by number, `gpiochipN` or path; nil for a label.
    public static func gpioChipPath(_ chip: String) -> String? { GPIOChipName(chip).path }
}

