import Foundation

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

/// TCP ports on 127.0.0.1 that were free a moment ago (bound to port 0, then released).
public func freeTCPPorts(_ count: Int) -> [Int] {
    var fds: [Int32] = []
    var ports: [Int] = []
    for _ in 0..<count {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = 0
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { p -> Int32 in
                _ = bind(fd, p, len)
                return getsockname(fd, p, &len)
            }
        }
        ports.append(Int(UInt16(bigEndian: addr.sin_port)))
        fds.append(fd)
    }
    for fd in fds { close(fd) }
    return ports
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
