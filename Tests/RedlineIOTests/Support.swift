import Foundation
import Logging
import RedlineConfig
import RedlineCore
import RedlineIO
import RedlineTestSupport
import RedlineSync
import Testing

enum Transport: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case tcp, rtu
    var testDescription: String { rawValue.uppercased() }
}

let root = TestPaths.packageRoot()
let devicesDir = root.appendingPathComponent("Devices").path
let demoSiteFile = root.appendingPathComponent("Firmware-Configs/demo-datacenter.yaml").path

/// A demo-site copy on free TCP ports, or with every bus turned into Modbus RTU on a
/// pseudo-terminal under `dir` (one bus per device, as on the TCP site).
func demoSiteCopy(_ transport: Transport, in dir: TempDir) throws -> String {
    let (path, _) = try TestSites.withFreePorts(demoSiteFile, in: dir)
    guard transport == .rtu else { return path }
    var text = try String(contentsOfFile: path, encoding: .utf8)
    let regex = try NSRegularExpression(pattern: "modbus-tcp:\\s*\\{host:\\s*[0-9.]+,\\s*port:\\s*([0-9]+)\\}")
    let ns = text as NSString
    for m in regex.matches(in: text, range: NSRange(location: 0, length: ns.length)).reversed() {
        let port = ns.substring(with: m.range(at: 1))
        let r = Range(m.range, in: text)!
        text.replaceSubrange(r, with: "modbus-rtu: {device: \(dir.path)/tty\(port), baud: 115200}")
    }
    try text.write(toFile: path, atomically: true, encoding: .utf8)
    return path
}

func loadSite(_ path: String) throws -> Site {
    try SiteLoader.load(siteFile: path, devicesDir: devicesDir)
}

func startSim(_ siteFile: String, in dir: TempDir, manual: Bool = false, name: String = "sim") throws -> SimProcess {
    try SimProcess(siteFile: siteFile, devicesDir: devicesDir, controlPath: dir.file("\(name).sock"),
                   manualClock: manual, logPath: dir.file("\(name).log"))
}

/// Log lines captured from a Logger, for "logged once per change" checks.
final class LogStore: Sendable {
    private let lines = Lock<[String]>([])
    func append(_ s: String) { lines.withLock { $0.append(s) } }
    var all: [String] { lines.withLock { $0 } }
    func count(_ needle: String...) -> Int { all.filter { l in needle.allSatisfy { l.contains($0) } }.count }
}

struct CapturingLogHandler: LogHandler {
    let store: LogStore
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace
    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }
    func log(event: LogEvent) {
        let all = self.metadata.merging(event.metadata ?? [:]) { $1 }
        let md = all.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        store.append("\(event.level) \(event.message) \(md)")
    }
}

func capturingLogger() -> (Logger, LogStore) {
    let store = LogStore()
    let logger = Logger(label: "redline.io.test") { _ in CapturingLogHandler(store: store) }
    return (logger, store)
}

/// Polls `condition` until it holds or `timeout` seconds pass.
func eventually(timeout: Double = 8, _ condition: () async throws -> Bool) async rethrows -> Bool {
    let deadline = monotonicMillis() + Int64(timeout * 1000)
    while monotonicMillis() < deadline {
        if try await condition() { return true }
        try? await Task.sleep(for: .milliseconds(50))
    }
    return try await condition()
}

extension PlantSnapshot {
    /// The last read of `id` succeeded (freshness aside: that depends on machine load).
    func readOK(_ id: String) -> Bool {
        guard let r = readings[id], !r.faulted, r.value != nil else { return false }
        return true
    }

    func quality(_ id: String, site: Site) -> Quality {
        quality(of: site.point(id)!, now: monotonicMillis(), staleAfterMs: site.timing.staleAfterMs)
    }
}

/// A value an output can be written to that differs from `current` and is inside its write range.
func otherValue(for p: Point, current: Double) -> Double {
    if p.role.isBoolean { return current == 0 ? 1 : 0 }
    let r = p.writeRange
    let candidate = (r.lowerBound + r.upperBound) / 2
    let rounded: Double
    if case .modbus(_, _, let scale, _) = p.binding, scale > 0 { rounded = (candidate / scale).rounded() * scale } else { rounded = candidate.rounded() }
    return abs(rounded - current) < 1e-9 ? r.lowerBound : rounded
}

/// Half a step of a point's register resolution, for comparisons.
func tolerance(_ p: Point) -> Double {
    if case .modbus(_, _, let scale, _) = p.binding { return abs(scale) / 2 + 1e-9 }
    return 1e-9
}
