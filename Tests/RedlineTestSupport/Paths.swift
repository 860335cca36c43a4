import Foundation
import RedlineSync

/// Locations in the package and the build folder, for tests that run real programs.
public enum TestPaths {
    /// The package root: the nearest folder above `file` that holds Package.swift.
    public static func packageRoot(from file: String = #filePath) -> URL {
        var dir = URL(fileURLWithPath: file).deletingLastPathComponent()
        while dir.path != "/" {
            if FileManager.default.fileExists(atPath: dir.appendingPathComponent("Package.swift").path) { return dir }
            dir = dir.deletingLastPathComponent()
        }
        return URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
    }

    /// The project's red-team corpus: `Tests/RedTeam` (format in its README). Always there.
    public static func redTeamFolder(file: String = #filePath) -> URL {
        packageRoot(from: file).appendingPathComponent("Tests/RedTeam")
    }

    /// Extra red-team cases in the same format, when there are any: the folder named by
    /// `$REDLINE_REDTEAM_DIR`, else the steering repository's `shared/redteam` beside the
    /// checkout. `nil` when that folder does not exist (a clone with nothing beside it):
    /// the project's own corpus stands alone, and the extra cases are optional input.
    public static func extraRedTeamFolder(file: String = #filePath) -> URL? {
        let url: URL
        if let d = ProcessInfo.processInfo.environment["REDLINE_REDTEAM_DIR"], !d.isEmpty {
            url = URL(fileURLWithPath: d)
        } else {
            url = packageRoot(from: file).deletingLastPathComponent().appendingPathComponent("shared/redteam")
        }
        var isDir: ObjCBool = false
        return FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir) && isDir.boolValue ? url : nil
    }

    /// A built executable (`redline-sim`, `redlined`, `redlinectl`, ...).
    /// `REDLINE_BIN` (a folder) wins; otherwise the folder of the running test
    /// bundle and its parents are searched, then `<root>/.build/debug`.
    public static func executable(_ name: String, file: String = #filePath) -> String? {
        let fm = FileManager.default
        var candidates: [URL] = []
        if let bin = ProcessInfo.processInfo.environment["REDLINE_BIN"], !bin.isEmpty {
            candidates.append(URL(fileURLWithPath: bin).appendingPathComponent(name))
        }
        var dir = URL(fileURLWithPath: CommandLine.arguments.first ?? "").deletingLastPathComponent()
        for _ in 0..<6 where dir.path != "/" {
            candidates.append(dir.appendingPathComponent(name))
            candidates.append(dir.appendingPathComponent("debug").appendingPathComponent(name))
            dir = dir.deletingLastPathComponent()
        }
        let root = packageRoot(from: file)
        candidates.append(root.appendingPathComponent(".build/debug").appendingPathComponent(name))
        return candidates.first { fm.isExecutableFile(atPath: $0.path) }?.path
    }
}

/// A fresh temporary folder with a short path (Unix socket paths are limited to 107 bytes).
public final class TempDir: @unchecked Sendable {
    public let path: String

    public init(prefix: String = "rl") {
        var template = Array("/tmp/\(prefix)-XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        path = made.map { String(cString: $0) } ?? NSTemporaryDirectory() + "\(prefix)-\(UUID().uuidString.prefix(8))"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    /// A path inside the folder.
    public func file(_ name: String) -> String { path + "/" + name }

    public func write(_ name: String, _ text: String) throws -> String {
        let p = file(name)
        try text.write(toFile: p, atomically: true, encoding: .utf8)
        return p
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }
}

/// Ports on 127.0.0.1 that were free for TCP and for UDP a moment ago, for servers a test starts.
///
/// Never the same port twice in one test process (suites run in parallel), and never inside the
/// kernel's ephemeral range (`ip_local_port_range`): there, any outgoing connection's source port
/// could take the port between this check and the server's bind ("Address already in use").
public func freeTCPPorts(_ count: Int) -> [Int] {
    PortPool.shared.take(count)
}

final class PortPool: Sendable {
    static let shared = PortPool()
    private let state: Lock<(next: Int, handedOut: Set<Int>)>
    private let range: Range<Int>

    init() {
        // Below the ephemeral range (Linux: 32768 by default), above the well-known and demo ports.
        var low = 32768
        if let text = try? String(contentsOfFile: "/proc/sys/net/ipv4/ip_local_port_range", encoding: .utf8),
           let first = text.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" }).first, let v = Int(first) {
            low = v
        }
        let lower = 20_000
        range = lower..<max(lower + 1000, low)
        // A start that differs between processes, so two test runs side by side rarely meet.
        state = Lock((Int(getpid()) &* 7919 % range.count, []))
    }

    func take(_ count: Int) -> [Int] {
        state.withLock { s in
            var out: [Int] = []
            var tried = 0
            while out.count < count, tried < range.count {
                let port = range.lowerBound + s.next % range.count
                s.next += 1
                tried += 1
                if s.handedOut.contains(port) || !Self.bindable(port, SOCK_STREAM) || !Self.bindable(port, SOCK_DGRAM) { continue }
                s.handedOut.insert(port)
                out.append(port)
            }
            precondition(out.count == count, "no \(count) free ports in \(range)")
            return out
        }
    }

    static func bindable(_ port: Int, _ type: __socket_type) -> Bool {
        let fd = socket(AF_INET, Int32(type.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        return withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }
}

/// Site files for tests.
public enum TestSites {
    /// A copy of a site file with every `port: N` replaced by a free port, so that
    /// tests can run side by side. Returns the new file and old-to-new port map.
    public static func withFreePorts(_ siteFile: String, in dir: TempDir, name: String = "site.yaml") throws -> (path: String, ports: [Int: Int]) {
        let text = try String(contentsOfFile: siteFile, encoding: .utf8)
        let regex = try NSRegularExpression(pattern: "port:\\s*([0-9]+)")
        let ns = text as NSString
        let matches = regex.matches(in: text, range: NSRange(location: 0, length: ns.length))
        let old = matches.map { Int(ns.substring(with: $0.range(at: 1)))! }
        let fresh = freeTCPPorts(Set(old).count)
        var map: [Int: Int] = [:]
        for (o, n) in zip(Array(Set(old)).sorted(), fresh) { map[o] = n }
        var out = text
        for m in matches.reversed() {
            let r = Range(m.range, in: out)!
            out.replaceSubrange(r, with: "port: \(map[Int(ns.substring(with: m.range(at: 1)))!]!)")
        }
        return (try dir.write(name, out), map)
    }
}
