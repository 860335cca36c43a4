#if canImport(Glibc)
import Glibc
#endif

/// sd_notify without libsystemd: one datagram to `$NOTIFY_SOCKET`.
public struct SystemdNotifier: Sendable {
    let path: String?
    /// The watchdog period systemd asked for, if any.
    public let watchdogUsec: UInt64?

    public init(environment: [String: String]) {
        path = environment["NOTIFY_SOCKET"].flatMap { $0.isEmpty ? nil : $0 }
        watchdogUsec = environment["WATCHDOG_USEC"].flatMap(UInt64.init)
    }

    public var enabled: Bool { path != nil }

    /// Sends `state` (e.g. "READY=1"). Failures are ignored: systemd is optional.
    @discardableResult
    public func send(_ state: String) -> Bool {
        guard let path else { return false }
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        var bytes = Array(path.utf8)
        let abstract = bytes.first == UInt8(ascii: "@")
        if abstract { bytes[0] = 0 }
        guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else { return false }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            for (i, b) in bytes.enumerated() { raw[i] = b }
        }
        let len = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count + (abstract ? 0 : 1))
        let msg = Array(state.utf8)
        let n = withUnsafePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
                msg.withUnsafeBytes { sendto(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL), sa, len) }
            }
        }
        return n == msg.count
    }
}
