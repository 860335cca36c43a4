import Foundation
import RedlineConfig
import RedlineCore

/// `site-yaml`: SiteLoader on site and profile YAML (seeded from Firmware-Configs/*.yaml,
/// Devices/*.yaml and the configuration fixtures).
///
/// Input: a site file, optionally followed by a line `#@@profile NAME.yaml` and a profile that
/// replaces Devices/NAME.yaml (or is added, for a new name). Oracles: no crash; every error is
/// `FILE:LINE:COLUMN: message` with a file that was read and a line and column from 1; and an
/// accepted site never widens an envelope (a configured min/max outside its role's envelope or
/// an empty range), never aliases an output (two outputs on the same physical bus endpoint, unit,
/// table and address, or GPIO chip and line), never loosens the timing envelope
/// (0 < scan <= 1000 ms, 0 < stale <= min(5000, 5 x scan)).
///
/// The real profiles are read and parsed once per process (`SiteLoader.readProfile`); each input
/// goes through the loader's own steps after that: the replaced profile read from its file, the
/// folder's profiles combined (`SiteLoader.profiles(of:)`, the duplicate-name check), the site read
/// from its file and checked against them (`SiteLoader.parseSite`). Re-reading 17 unchanged
/// profiles on every input was 90 % of the time. `checkWithLoader` (the replayer and
/// FuzzRegressionTests) also runs the whole `SiteLoader.load` on the folder and requires the same verdict.
public enum SiteOracle {
    public static let profileMarker = "#@@profile "

    /// The project root: REDLINE_ROOT, else the checkout this file was compiled from.
    static let root: String = {
        if let r = ProcessInfo.processInfo.environment["REDLINE_ROOT"] { return r }
        return URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().path
    }()

    struct Work: Sendable {
        let dir: String
        let devices: String
        let site: String
        let profiles: [String: Data]
        /// The real profiles, read and parsed once.
        let parsed: [String: SiteLoader.ProfileFile]
    }

    /// A private folder with a copy of the real device profiles (made once per process).
    static let work: Work = {
        let fm = FileManager.default
        let dir = NSTemporaryDirectory() + "redline-fuzz-site-\(getpid())"
        let devices = dir + "/Devices"
        try? fm.createDirectory(atPath: devices, withIntermediateDirectories: true)
        try? fm.createDirectory(atPath: dir + "/Firmware-Configs", withIntermediateDirectories: true)
        var profiles: [String: Data] = [:]
        let src = root + "/Devices"
        for name in (try? fm.contentsOfDirectory(atPath: src)) ?? [] where name.hasSuffix(".yaml") {
            if let d = fm.contents(atPath: src + "/" + name) {
                profiles[name] = d
                _ = fm.createFile(atPath: devices + "/" + name, contents: d)
            }
        }
        var parsed: [String: SiteLoader.ProfileFile] = [:]
        for name in profiles.keys { parsed[name] = SiteLoader.readProfile(file: devices + "/" + name) }
        return Work(dir: dir, devices: devices, site: dir + "/Firmware-Configs/site.yaml", profiles: profiles, parsed: parsed)
    }()

    /// Hosts resolve to themselves (loopback to this host): no DNS from a fuzz run.
    static func resolve(_ host: String) -> String {
        let h = host.lowercased()
        return h == "localhost" || h.hasPrefix("127.") || h == "::1" ? HostResolver.thisHost : h
    }

    static let environment = LoaderEnvironment(
        hosts: HostResolver { .success([resolve($0)]) },
        accounts: AccountDatabase(
            users: [.init(name: "root", uid: 0, gid: 0), .init(name: "facilities-agent", uid: 2001, gid: 2001),
                    .init(name: "reporting-agent", uid: 2002, gid: 2002), .init(name: "operator", uid: 1000, gid: 1000)],
            groups: [.init(name: "root", gid: 0, members: []), .init(name: "operators", gid: 1000, members: ["operator"])]))

    public static func check(_ input: [UInt8]) throws(OracleFailure) { try check(input, withLoader: false) }

    public static func checkWithLoader(_ input: [UInt8]) throws(OracleFailure) { try check(input, withLoader: true) }

    /// One input at a time: they share the work folder (FuzzRegressionTests runs targets' regressions and seeds in parallel).
    static let busy = NSLock()

    static func check(_ input: [UInt8], withLoader: Bool) throws(OracleFailure) {
        busy.lock()
        defer { busy.unlock() }
        let w = work
        let fm = FileManager.default
        var siteBytes = input
        var replaced: String?
        var files = w.parsed
        if let r = input.firstRange(of: Array(("\n" + profileMarker).utf8)) {
            siteBytes = Array(input[..<r.lowerBound])
            let rest = input[r.upperBound...]
            let nl = rest.firstIndex(of: 0x0A) ?? rest.endIndex
            var name = String(decoding: rest[..<nl], as: UTF8.self)
            // A NUL ends the path for the system: "Devices/\0x.yaml" is "Devices/", and removing it
            // afterwards took the whole folder (every later input then ran without profiles).
            if !name.hasSuffix(".yaml") || name.contains("/") || name.hasPrefix(".") || name.count > 64 || name.utf8.contains(0) {
                name = "zz-fuzz.yaml"
            }
            let body = nl < rest.endIndex ? Data(rest[(nl + 1)...]) : Data()
            _ = fm.createFile(atPath: w.devices + "/" + name, contents: body)
            replaced = name
            files[name] = SiteLoader.readProfile(file: w.devices + "/" + name)
        }
        defer {
            if let name = replaced {
                if let original = w.profiles[name] {
                    _ = fm.createFile(atPath: w.devices + "/" + name, contents: original)
                } else {
                    try? fm.removeItem(atPath: w.devices + "/" + name)
                }
            }
        }
        _ = fm.createFile(atPath: w.site, contents: Data(siteBytes))

        // The folder's files in the order the loader lists them (sorted names).
        let profiles = SiteLoader.profiles(of: files.keys.sorted().map { files[$0]! })
        let verdict: Result<Site, ConfigErrors>
        do {
            verdict = .success(try SiteLoader.parseSite(siteFile: w.site, profiles: profiles, devicesDir: w.devices,
                                                        environment: environment))
        } catch {
            verdict = .failure(error)
        }
        if withLoader { try compareWithLoader(verdict, work: w) }
        switch verdict {
        case .failure(let error):
            for d in error.diagnostics { try checkDiagnostic(d, work: w) }
            guard !error.diagnostics.isEmpty else { throw OracleFailure("a refused site with no diagnostic") }
        case .success(let site):
            try checkAccepted(site)
        }
    }

    /// The whole loader (folder listed, every profile read) gives the same verdict.
    static func compareWithLoader(_ verdict: Result<Site, ConfigErrors>, work w: Work) throws(OracleFailure) {
        let full: Result<Site, ConfigErrors>
        do { full = .success(try SiteLoader.load(siteFile: w.site, devicesDir: w.devices, environment: environment)) } catch { full = .failure(error) }
        switch (verdict, full) {
        case (.failure(let a), .failure(let b)):
            guard a.diagnostics == b.diagnostics else {
                throw OracleFailure("SiteLoader.load says \(b.diagnostics), its steps from parsed profiles say \(a.diagnostics)")
            }
        case (.success(let a), .success(let b)):
            guard a.points.map(\.id) == b.points.map(\.id), a.timing == b.timing, a.buses.map(\.id) == b.buses.map(\.id) else {
                throw OracleFailure("SiteLoader.load and its steps from parsed profiles accept different sites")
            }
        default:
            throw OracleFailure("SiteLoader.load says \(full), its steps from parsed profiles say \(verdict)")
        }
    }

    static func checkDiagnostic(_ d: ConfigDiagnostic, work w: Work) throws(OracleFailure) {
        guard d.line >= 1, d.column >= 1 else { throw OracleFailure("diagnostic without a position: \(d)") }
        guard d.file == w.site || d.file == w.devices || d.file.hasPrefix(w.devices + "/") else {
            throw OracleFailure("diagnostic names a file that was not read: \(d)")
        }
        let text = d.description
        guard text.hasPrefix("\(d.file):\(d.line):\(d.column): "), !d.message.isEmpty else {
            throw OracleFailure("diagnostic is not FILE:LINE:COLUMN: message: \(text)")
        }
    }

    static func checkAccepted(_ site: Site) throws(OracleFailure) {
        let t = site.timing
        guard t.scanIntervalMs > 0, t.scanIntervalMs <= 1000 else { throw OracleFailure("accepted scan interval \(t.scanIntervalMs) ms") }
        guard t.staleAfterMs > 0, t.staleAfterMs <= min(5000, 5 * t.scanIntervalMs) else {
            throw OracleFailure("accepted stale-after \(t.staleAfterMs) ms with scan \(t.scanIntervalMs) ms")
        }
        var endpoints: [String: String] = [:]
        for b in site.buses {
            switch b.kind {
            case .modbusTCP(let host, let port): endpoints[b.id] = "tcp \(resolve(host)):\(port)"
            case .modbusRTU(let s): endpoints[b.id] = "rtu \(s.device)"
            case .gpio(let chip): endpoints[b.id] = "gpio \(chip)"
            case .bacnetIP(let address, let port): endpoints[b.id] = "udp \(resolve(address)):\(port)"
            }
        }
        // Issue 17: agents never command BACnet above priority 9.
        if site.buses.contains(where: \.isBACnet) {
            guard let p = site.bacnet?.writePriority, p.level >= 9 else {
                throw OracleFailure("accepted a BACnet site with agent priority \(site.bacnet.map { "\($0.writePriority)" } ?? "none")")
            }
        }
        var outputs: [String: String] = [:]
        for p in site.points {
            let env = p.role.envelope
            if let lo = p.min, !(lo >= env.lowerBound && lo <= env.upperBound) {
                throw OracleFailure("\(p.id): min \(lo) outside the \(p.role) envelope \(env)")
            }
            if let hi = p.max, !(hi >= env.lowerBound && hi <= env.upperBound) {
                throw OracleFailure("\(p.id): max \(hi) outside the \(p.role) envelope \(env)")
            }
            if let lo = p.min, let hi = p.max, lo > hi { throw OracleFailure("\(p.id): empty range \(lo)...\(hi)") }
            let wr = p.writeRange
            guard wr.lowerBound >= env.lowerBound, wr.upperBound <= env.upperBound else {
                throw OracleFailure("\(p.id): write range \(wr) wider than the envelope \(env)")
            }
            guard p.role.isOutput else { continue }
            guard let ep = endpoints[p.bus] else { throw OracleFailure("\(p.id) is on an undeclared bus \(p.bus)") }
            let key: String
            switch p.binding {
            case .modbus(let table, let address, _, _): key = "\(ep) unit \(p.unitId.map(String.init) ?? "-") \(table) \(address)"
            case .gpio(let line, _): key = "\(ep) line \(line)"
            case .bacnet(let a):
                if let why = a.agentWriteRefusal { throw OracleFailure("\(p.id) is writable at \(a): \(why)") }
                key = "\(ep) device \(p.deviceInstance.map { String($0) } ?? "-") \(a)"
            }
            if let other = outputs[key] { throw OracleFailure("outputs \(other) and \(p.id) alias \(key)") }
            outputs[key] = p.id
        }
    }
}
