import ArgumentParser
import Foundation
import RedlineClient
import RedlineCore

#if canImport(Glibc)
import Glibc
#endif

/// Starting and stopping the real processes a benchmark measures.
///
/// The bench's own launcher: unlike `RedlineTestSupport.TestPaths` it never falls back
/// to the debug build folder, so a release benchmark cannot silently measure debug
/// binaries (the executables next to this one, or in `$REDLINE_BIN`; output to a log
/// file in a temp folder).
enum BenchPaths {
    /// `name` in `$REDLINE_BIN`, else beside this executable (`.build/<config>/`).
    static func executable(_ name: String) -> String? {
        var dirs: [String] = []
        if let bin = ProcessInfo.processInfo.environment["REDLINE_BIN"] { dirs.append(bin) }
        let me = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        dirs.append(me.deletingLastPathComponent().path)
        for d in dirs {
            let p = URL(fileURLWithPath: d).appendingPathComponent(name).path
            if FileManager.default.isExecutableFile(atPath: p) { return p }
        }
        return nil
    }

    /// A new private folder under the temp directory.
    static func makeTempDir(prefix: String) throws -> String {
        var template = Array((NSTemporaryDirectory() + "\(prefix)-XXXXXX").utf8CString)
        guard let p = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw ValidationError("mkdtemp: \(String(cString: strerror(errno)))")
        }
        return String(cString: p)
    }
}

/// A child process; its stdout and stderr are appended to `logPath`.
final class BenchChild: @unchecked Sendable {
    let process = Process()
    let name: String
    let logPath: String

    init(name: String, executable: String, arguments: [String], logPath: String) throws {
        self.name = name
        self.logPath = logPath
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        guard let log = FileHandle(forWritingAtPath: logPath) else { throw ValidationError("cannot write \(logPath)") }
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardOutput = log
        process.standardError = log
        process.standardInput = FileHandle.nullDevice
        try process.run()
        try? log.close()
    }

    var pid: Int32 { process.processIdentifier }
    var isRunning: Bool { process.isRunning }
    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// Waits until the log contains `text`; false if the process exits or time runs out first.
    func waitForLog(containing text: String, timeout: Double) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if log.contains(text) { return true }
            if !process.isRunning { return log.contains(text) }
            usleep(20_000)
        }
        return log.contains(text)
    }

    /// SIGTERM, then SIGKILL after `grace` seconds; waits for the exit.
    func stop(grace: Double = 5) {
        guard process.isRunning else { return }
        process.terminate()
        let deadline = Date().addingTimeInterval(grace)
        while process.isRunning, Date() < deadline { usleep(10_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }

    /// Resident set size from /proc/PID/status (`VmRSS`), in KiB.
    var rssKiB: Int? { Self.statusField("VmRSS", pid: pid) }
    /// Peak resident set size (`VmHWM`), in KiB.
    var peakRssKiB: Int? { Self.statusField("VmHWM", pid: pid) }

    /// User + system CPU time of all threads, in microseconds (/proc/PID/stat, clock-tick resolution).
    var cpuMicros: UInt64? { Self.cpuMicros(pid: pid) }

    /// User + system CPU time of all threads of `pid`, in microseconds.
    static func cpuMicros(pid: Int32) -> UInt64? {
        guard let text = readProc("/proc/\(pid)/stat"),
              let close = text.lastIndex(of: ")") else { return nil }
        // Fields after "pid (comm)": state is field 3; utime and stime are fields 14 and 15.
        let f = text[text.index(after: close)...].split(separator: " ")
        guard f.count > 13, let u = UInt64(f[11]), let s = UInt64(f[12]) else { return nil }
        return (u + s) * 1_000_000 / UInt64(max(1, sysconf(Int32(_SC_CLK_TCK))))
    }

    /// Context switches (voluntary + involuntary) summed over all threads.
    var contextSwitches: Int {
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
        var n = 0
        for t in tasks {
            guard let text = Self.readProc("/proc/\(pid)/task/\(t)/status") else { continue }
            for line in text.split(separator: "\n") where line.contains("ctxt_switches:") {
                if let v = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).last.flatMap({ Int($0) }) { n += v }
            }
        }
        return n
    }

    /// `Pss` from /proc/PID/smaps_rollup (shared pages divided among the processes mapping them), in KiB.
    var pssKiB: Int? {
        guard let text = Self.readProc("/proc/\(pid)/smaps_rollup") else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("Pss:") {
            return line.split(whereSeparator: { $0 == " " || $0 == "\t" }).dropFirst().first.flatMap { Int($0) }
        }
        return nil
    }

    /// Resident KiB per mapped file (anonymous memory under ""), largest first.
    var rssByMapping: [(String, Int)] {
        guard let text = Self.readProc("/proc/\(pid)/smaps") else { return [] }
        var out: [String: Int] = [:]
        var current = ""
        for line in text.split(separator: "\n") {
            let parts = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            if let first = parts.first, first.contains("-"), first.allSatisfy({ $0.isHexDigit || $0 == "-" }) {
                current = parts.count >= 6 ? String(parts[5]) : ""
            } else if parts.first == "Rss:", parts.count >= 2, let v = Int(parts[1]) {
                out[current, default: 0] += v
            }
        }
        return out.sorted { $0.value > $1.value }
    }

    /// A /proc file read to its end (they report size 0, so read until EOF).
    static func readProc(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 { if errno == EINTR { continue }; return nil }
            if n == 0 { break }
            out += chunk[..<n]
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func statusField(_ field: String, pid: Int32) -> Int? {
        guard let text = readProc("/proc/\(pid)/status") else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix(field + ":") {
            let parts = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            if parts.count >= 2 { return Int(parts[1]) }
        }
        return nil
    }
}

/// One JSON-RPC call on a Unix socket as another uid, through a `UidRelay` (how the bench
/// reaches the operator socket while the agent runs as the bench's own uid).
enum PeerCall {
    static func call(path: String, uid: UInt32, method: String, params: JSON? = nil, timeout: Double = 5) throws -> JSON {
        do {
            let relay = try UidRelay(path: path, uid: uid, hop: .socat(linger: timeout), timeout: timeout)
            defer { relay.close() }
            return try relay.call(method, params)
        } catch {
            throw ValidationError("\(method) on \(path) as uid \(uid): \(error)")
        }
    }
}

/// Runs blocking work on a dedicated thread (never on the cooperative pool).
func onThread<T: Sendable>(_ name: String, _ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { (cont: CheckedContinuation<T, any Error>) in
        let t = Thread {
            do { cont.resume(returning: try body()) } catch { cont.resume(throwing: error) }
        }
        t.name = name
        t.stackSize = 4 << 20
        t.start()
    }
}
