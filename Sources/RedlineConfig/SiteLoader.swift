import Foundation
import RedlineCore
import Yams

/// What a load depends on outside the files: host names and user names.
public struct LoaderEnvironment: Sendable {
    /// Resolves Modbus TCP hosts (getaddrinfo), so that two spellings of one server are one endpoint.
    public var hosts: HostResolver
    /// Resolves agents named by user name (getpwnam).
    public var accounts: AccountDatabase

    public init(hosts: HostResolver, accounts: AccountDatabase) {
        self.hosts = hosts
        self.accounts = accounts
    }

    public static var system: LoaderEnvironment { LoaderEnvironment(hosts: .system, accounts: .system) }
}

/// A validated site and every file it was read from.
public struct LoadedSite: Sendable {
    public var site: Site
    /// Every file the loader read: the site file, then every `*.yaml` and `*.yml` of the devices
    /// folder (whatever its name, whether or not the site uses the profile in it).
    public var files: [String]
    /// The folders holding them: the site's folder, the devices folder, and the real folder of
    /// any file reached through a symlink.
    public var folders: [String]
}

/// Loads and validates device profiles and sites (docs/DESIGN.md §10).
///
/// Every error is collected and reported as `FILE:LINE:COLUMN: message`; a site
/// is returned only when there are none. Unknown keys are errors: a typo in a
/// safety configuration must never be silently ignored.
public enum SiteLoader {
    /// `<dir of site file>/../Devices`
    public static func defaultDevicesDir(forSite siteFile: String) -> String {
        URL(fileURLWithPath: siteFile).deletingLastPathComponent()
            .appendingPathComponent("..").appendingPathComponent("Devices").standardizedFileURL.path
    }

    /// The installed layout (the Debian package): a site in `/etc/redline` reads the packaged
    /// profiles and the local ones.
    public static let installedSiteDir = "/etc/redline"
    public static let packagedDevicesDir = "/usr/share/redline/devices"
    public static let localDevicesDirInstalled = "/etc/redline/devices"

    /// Where a site's profiles come from. Given folders are used as given. With neither given, a
    /// site whose folder is `installedSiteDir` (compared by real path) reads `packagedDevicesDir`
    /// with `localDevicesDirInstalled` over it; any other site reads `<dir of site file>/../Devices`.
    public static func profileFolders(siteFile: String, devicesDir: String?, localDevicesDir: String?,
                                      installedSiteDir: String = installedSiteDir,
                                      packaged: String = packagedDevicesDir,
                                      local: String = localDevicesDirInstalled) -> (devices: String, local: String?) {
        if devicesDir != nil || localDevicesDir != nil {
            return (devicesDir ?? defaultDevicesDir(forSite: siteFile), localDevicesDir)
        }
        let siteFolder = PathIdentity.realPath(folder(of: siteFile)) ?? folder(of: siteFile)
        let installed = PathIdentity.realPath(installedSiteDir) ?? installedSiteDir
        if siteFolder == installed { return (packaged, local) }
        return (defaultDevicesDir(forSite: siteFile), nil)
    }

    /// Loads and validates a site. Profiles come from `devicesDir`, default: `<dir of site file>/../Devices`,
    /// and from `localDevicesDir` when given: a profile there replaces the one of the same `name:`
    /// in `devicesDir` (the packaged `/usr/share/redline/devices` and the local `/etc/redline/devices`:
    /// local wins, as `/etc` wins over `/usr` for systemd units). Within one folder a name twice is an error.
    public static func load(siteFile: String, devicesDir: String? = nil, localDevicesDir: String? = nil,
                            environment: LoaderEnvironment = .system) throws(ConfigErrors) -> Site {
        try loadWithFiles(siteFile: siteFile, devicesDir: devicesDir, localDevicesDir: localDevicesDir,
                          environment: environment).site
    }

    /// Loads and validates a site, and reports every file and folder it was read from
    /// (the daemon checks each of them before it trusts the site).
    public static func loadWithFiles(siteFile: String, devicesDir: String? = nil, localDevicesDir: String? = nil,
                                     environment: LoaderEnvironment = .system) throws(ConfigErrors) -> LoadedSite {
        let (dir, localDevicesDir) = profileFolders(siteFile: siteFile, devicesDir: devicesDir,
                                                    localDevicesDir: localDevicesDir)
        let profiles = readProfiles(devicesDirs: [dir] + (localDevicesDir.map { [$0] } ?? []))
        let site = try parseSite(siteFile: siteFile, profiles: profiles,
                                 devicesDir: localDevicesDir.map { "\(dir) or \($0)" } ?? dir, environment: environment)
        let files = [siteFile] + profiles.files
        var folders: [String] = []
        func addFolder(_ f: String) { if !folders.contains(f) { folders.append(f) } }
        addFolder(folder(of: siteFile))
        addFolder(dir)
        if let localDevicesDir { addFolder(localDevicesDir) }
        for f in files {
            addFolder(folder(of: f))
            if let real = PathIdentity.realPath(f) { addFolder(folder(of: real)) }
        }
        return LoadedSite(site: site, files: files, folders: folders)
    }

    /// Reads and validates `siteFile` against profiles already read (`readProfiles`): `load` once
    /// it has read them. `devicesDir` names their folders in messages.
    package static func parseSite(siteFile: String, profiles: Profiles, devicesDir: String,
                                  environment: LoaderEnvironment) throws(ConfigErrors) -> Site {
        let r = Reader(file: siteFile)
        let site = SiteParser(reader: r, profiles: profiles.profiles, brokenProfiles: profiles.broken,
                              devicesDir: devicesDir, environment: environment).parse()
        let all = (profiles.diagnostics + r.diagnostics).ordered()
        guard all.isEmpty, let site else {
            throw ConfigErrors(diagnostics: all.isEmpty
                ? [ConfigDiagnostic(file: siteFile, line: 1, column: 1, message: "site could not be loaded")] : all)
        }
        return site
    }

    /// The folder holding `path` (`.` for a bare file name).
    static func folder(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    /// Loads every `*.yaml` and `*.yml` profile in `devicesDir`, keyed by profile name.
    public static func loadProfiles(devicesDir: String) throws(ConfigErrors) -> [String: DeviceProfile] {
        let p = readProfiles(devicesDirs: [devicesDir])
        guard p.diagnostics.isEmpty else { throw ConfigErrors(diagnostics: p.diagnostics.ordered()) }
        return p.profiles
    }

    /// The profiles of one or more folders, as a site is checked against them.
    package struct Profiles: Sendable {
        var profiles: [String: DeviceProfile] = [:]
        var broken: Set<String> = []
        var diagnostics: [ConfigDiagnostic] = []
        /// Every file read, in order.
        var files: [String] = []
    }

    /// Reads every folder in order; a profile in a later folder replaces one of the same name from
    /// an earlier folder (a broken one too: a broken local profile is an error, never a fallback
    /// to the packaged one).
    static func readProfiles(devicesDirs: [String]) -> Profiles {
        var out = Profiles()
        for dir in devicesDirs {
            let p = readProfiles(devicesDir: dir)
            out.diagnostics += p.diagnostics
            out.files += p.files
            for (name, profile) in p.profiles {
                out.profiles[name] = profile
                out.broken.remove(name)
            }
            for name in p.broken {
                out.profiles[name] = nil
                out.broken.insert(name)
            }
        }
        return out
    }

    static func readProfiles(devicesDir: String) -> Profiles {
        var out = Profiles()
        let fm = FileManager.default
        let names: [String]
        do {
            names = try fm.contentsOfDirectory(atPath: devicesDir)
                .filter { $0.hasSuffix(".yaml") || $0.hasSuffix(".yml") }.sorted()
        } catch {
            out.diagnostics.append(ConfigDiagnostic(file: devicesDir, line: 1, column: 1,
                                                    message: "cannot read the devices folder: \(Reader.describe(error))"))
            return out
        }
        return profiles(of: names.map { readProfile(file: devicesDir.hasSuffix("/") ? devicesDir + $0 : devicesDir + "/" + $0) })
    }

    /// One profile file, read and parsed on its own (before its folder's duplicate-name check).
    package struct ProfileFile: Sendable {
        package let file: String
        let name: String?
        /// Where the `profile:` name is (for the duplicate-name error).
        let nameLine: Int
        let nameColumn: Int
        let profile: DeviceProfile?
        let diagnostics: [ConfigDiagnostic]
    }

    package static func readProfile(file: String) -> ProfileFile {
        let r = Reader(file: file)
        let parsed = ProfileParser.parse(file: file, reader: r)
        return ProfileFile(file: file, name: parsed.name, nameLine: parsed.nameNode?.mark?.line ?? 1,
                           nameColumn: parsed.nameNode?.mark?.column ?? 1, profile: parsed.profile,
                           diagnostics: r.diagnostics)
    }

    /// One folder's profiles from its files, in the order of their names: a profile name that
    /// an earlier file already defines is an error at the later one, which is then left out.
    package static func profiles(of files: [ProfileFile]) -> Profiles {
        var out = Profiles()
        var firstFile: [String: String] = [:]
        for pf in files {
            out.files.append(pf.file)
            if let n = pf.name {
                if let other = firstFile[n] {
                    out.diagnostics += pf.diagnostics
                    out.diagnostics.append(ConfigDiagnostic(file: pf.file, line: pf.nameLine, column: pf.nameColumn,
                                                            message: "duplicate profile '\(n)' (also defined in \(other))"))
                    continue
                }
                firstFile[n] = pf.file
            }
            out.diagnostics += pf.diagnostics
            if let p = pf.profile, pf.diagnostics.isEmpty {
                out.profiles[p.name] = p
            } else if let n = pf.name {
                out.broken.insert(n)
            }
        }
        return out
    }
}

/// Parses one site file against loaded profiles.
struct SiteParser {
    let r: Reader
    let profiles: [String: DeviceProfile]
    let brokenProfiles: Set<String>
    let devicesDir: String
    let environment: LoaderEnvironment

    init(reader: Reader, profiles: [String: DeviceProfile], brokenProfiles: Set<String>, devicesDir: String,
         environment: LoaderEnvironment = .system) {
        self.r = reader
        self.profiles = profiles
        self.brokenProfiles = brokenProfiles
        self.devicesDir = devicesDir
        self.environment = environment
    }

    static let siteKeys = ["site", "description", "timing", "zones", "buses", "bacnet", "devices", "agents", "operators", "approvals", "quarantine"]
    static let roleOverride = "a site cannot change a profile point's role (docs/DESIGN.md §10); roles come only from the device profile"
    static let deviceSpecial = ["roles": roleOverride, "role": roleOverride, "points": roleOverride,
                                "override": roleOverride, "overrides": roleOverride]
    /// Where the timing envelope is explained.
    static let envelopeRef = "see docs/DESIGN.md §4.4, the timing envelope"

    func parse() -> Site? {
        guard let root = r.compose(),
              let f = r.fields(root, "site", allowed: Self.siteKeys, required: ["site", "zones", "buses", "devices", "agents"])
        else { return nil }
        let name = f["site"].flatMap { r.string($0, "site name") }
        _ = f["description"].flatMap { r.string($0, "description") }
        let timing = f["timing"].map(parseTiming) ?? ParsedTiming()
        let zones = f["zones"].map(parseZones) ?? []
        let (buses, brokenBuses) = f["buses"].map(parseBuses) ?? ([], [])
        let (devices, points, brokenDevices) = f["devices"].map {
            parseDevices($0, zones: zones.map(\.zone), buses: buses, brokenBuses: brokenBuses)
        } ?? ([], [], [])
        checkBusTiming(buses, timing: timing, points: points)
        if brokenDevices.isEmpty && brokenBuses.isEmpty { checkAlarmSources(zones, points: points) }
        let operators = f["operators"].map(parseOperators) ?? []
        let ids = points.map(\.id)
        func checkPattern(_ text: String, _ node: Node, _ what: String) -> PointPattern {
            let p = PointPattern(text)
            if !ids.contains(where: p.matches) {
                // A pattern aimed at a device that failed to load is not reported twice.
                let devicePart = String(text.split(separator: ".", maxSplits: 1).first ?? "")
                if brokenDevices.contains(where: { PointPattern(devicePart).matches($0) }) {
                } else if !devicePart.contains("*") && !devices.contains(where: { $0.id == devicePart }) {
                    r.error(node, "\(what) pattern '\(text)' names unknown device '\(devicePart)'")
                } else {
                    r.error(node, "\(what) pattern '\(text)' matches no point")
                }
            }
            return p
        }
        let agents = f["agents"].map { parseAgents($0, operators: operators, check: checkPattern) } ?? []
        let approvals = f["approvals"].map { parseApprovals($0, check: checkPattern) } ?? []
        if !approvals.isEmpty && operators.isEmpty {
            r.error(f["approvals"], "approvals need at least one operator to approve them")
        }
        let quarantine = f["quarantine"].map(parseQuarantine) ?? QuarantinePolicy()
        let bacnet = parseBACnet(f["bacnet"], key: f.keys["bacnet"], buses: buses, brokenBuses: brokenBuses, root: root)
        guard r.diagnostics.isEmpty, let name else { return nil }
        return Site(name: name, timing: timing.timing, zones: zones.map(\.zone), buses: buses.map(\.bus), devices: devices,
                    points: points, agents: agents, operators: operators, approvals: approvals, quarantine: quarantine,
                    bacnet: bacnet)
    }

    // MARK: timing

    /// The timing, and whether each part is inside the compiled-in envelope (so later checks
    /// against it do not repeat an error already reported).
    struct ParsedTiming {
        var timing = Timing()
        var scanOK = true
        var staleOK = true
    }

    /// The timing envelope: scan-interval-ms at most `Limits.maxScanIntervalMs`, stale-after-ms
    /// at most `Limits.maxStaleAfterMs` and at most `Limits.maxStaleAfterScans` scan intervals,
    /// and more than one scan interval. A site may tighten these, never loosen them.
    func parseTiming(_ node: Node) -> ParsedTiming {
        var t = ParsedTiming()
        guard let f = r.fields(node, "timing", allowed: ["scan-interval-ms", "stale-after-ms"]) else {
            t.scanOK = false
            t.staleOK = false
            return t
        }
        if let n = f["scan-interval-ms"] {
            if let v = r.int(n, "scan-interval-ms", in: 1...Int(Int32.max)) {
                if Int64(v) > Limits.maxScanIntervalMs {
                    r.error(n, "scan-interval-ms \(v) loosens the compiled-in maximum of \(Limits.maxScanIntervalMs) ms; a site may only tighten the timing envelope (\(Self.envelopeRef))")
                    t.scanOK = false
                } else {
                    t.timing.scanIntervalMs = Int64(v)
                }
            } else {
                t.scanOK = false
            }
        }
        let scan = t.timing.scanIntervalMs
        let maxByScans = Limits.maxStaleAfterScans * scan
        if let n = f["stale-after-ms"] {
            if let v = r.int(n, "stale-after-ms", in: 1...Int(Int32.max)) {
                let stale = Int64(v)
                if stale > Limits.maxStaleAfterMs {
                    r.error(n, "stale-after-ms \(v) loosens the compiled-in maximum of \(Limits.maxStaleAfterMs) ms; a site may only tighten the timing envelope (\(Self.envelopeRef))")
                    t.staleOK = false
                } else if t.scanOK, stale <= scan {
                    r.error(n, "stale-after-ms (\(v)) must be greater than scan-interval-ms (\(scan)), or every reading would count as stale")
                    t.staleOK = false
                } else if t.scanOK, stale > maxByScans {
                    r.error(n, "stale-after-ms \(v) is more than \(Limits.maxStaleAfterScans) scan intervals (\(Limits.maxStaleAfterScans) x \(scan) ms = \(maxByScans) ms), the compiled-in maximum; a site may only tighten the timing envelope (\(Self.envelopeRef))")
                    t.staleOK = false
                } else if !t.scanOK {
                    t.staleOK = false
                } else {
                    t.timing.staleAfterMs = stale
                }
            } else {
                t.staleOK = false
            }
        } else if t.scanOK {
            let stale = t.timing.staleAfterMs
            if stale <= scan {
                r.error(f["scan-interval-ms"], "scan-interval-ms (\(scan)) must be less than stale-after-ms (\(stale))")
                t.scanOK = false
            } else if stale > maxByScans {
                r.error(f["scan-interval-ms"], "with scan-interval-ms \(scan), the default stale-after-ms of \(stale) is more than \(Limits.maxStaleAfterScans) scan intervals (\(maxByScans) ms), the compiled-in maximum; set stale-after-ms to at most \(maxByScans) (\(Self.envelopeRef))")
                t.scanOK = false
            }
        }
        return t
    }

    /// Bus response timeouts below the stale window, and serial lines fast enough for the scan interval.
    func checkBusTiming(_ buses: [ParsedBus], timing: ParsedTiming, points: [Point]) {
        let t = timing.timing
        for b in buses {
            // GPIO buses have no response timeout (timeout-ms is unused there).
            if timing.staleOK, b.family == .bacnet, Int64(b.bus.timeoutMs) * Int64(1 + b.bus.retries) >= t.staleAfterMs {
                let tries = 1 + b.bus.retries
                r.error(b.retriesNode ?? b.timeoutNode ?? b.idNode,
                        "bus '\(b.bus.id)' gives up on a silent device only after \(tries) x timeout-ms \(b.bus.timeoutMs) = \(Int64(tries) * Int64(b.bus.timeoutMs)) ms, which is not below the stale window (stale-after-ms \(t.staleAfterMs)): a silent device must fault its points before their readings go stale; the compiled-in envelope requires timeout-ms x (1 + retries) < stale-after-ms (\(Self.envelopeRef))")
            } else if timing.staleOK, !b.isGPIO, b.family != .bacnet, Int64(b.bus.timeoutMs) >= t.staleAfterMs {
                let which = b.timeoutNode == nil ? "has the default timeout-ms of \(b.bus.timeoutMs), which" : "timeout-ms \(b.bus.timeoutMs)"
                r.error(b.timeoutNode ?? b.idNode,
                        "bus '\(b.bus.id)' \(which) is not below the stale window (stale-after-ms \(t.staleAfterMs)): a silent device must fault its points before their readings go stale; the compiled-in envelope requires timeout-ms < stale-after-ms (\(Self.envelopeRef))")
            }
            if timing.scanOK, case .modbusRTU(let settings) = b.bus.kind {
                let mine = points.filter { $0.bus == b.bus.id }
                let budget = SerialScanBudget(baud: settings.baud, points: mine)
                if !budget.fits(scanIntervalMs: t.scanIntervalMs) {
                    r.error(b.baudNode ?? b.kindNode ?? b.idNode,
                            "bus '\(b.bus.id)' cannot sustain scan-interval-ms \(t.scanIntervalMs) at \(settings.baud) baud: one scan takes at least \(SerialScanBudget.ms(budget.totalMs)) ms (\(budget.explanation)); lengthen scan-interval-ms, raise the baud rate or split the devices over more lines (\(Self.envelopeRef))")
                }
            }
        }
    }

    // MARK: BACnet

    /// `bacnet: {write-priority: P}`: the one priority every agent write to a BACnet device uses
    /// (a release writes NULL there). Required exactly when the site has a bacnet-ip bus, so that
    /// the integrator chooses a slot no other application of the building commands. P is 9-16:
    /// 1-8 belong to life safety, critical equipment control and manual operators.
    func parseBACnet(_ node: Node?, key: Node?, buses: [ParsedBus], brokenBuses: Set<String>, root: Node) -> BACnetSettings? {
        let first = buses.first { $0.family == .bacnet }
        guard let node else {
            if let first {
                r.error(first.kindNode ?? first.idNode, "bus '\(first.bus.id)' is a bacnet-ip bus, but the site fixes no agent priority: add `bacnet: {write-priority: P}` with P in 9-16, a priority no other application of the building commands (1-8 belong to life safety, critical equipment and manual operators)")
            }
            return nil
        }
        guard let f = r.fields(node, "bacnet", allowed: ["write-priority"], required: ["write-priority"]) else { return nil }
        if first == nil && brokenBuses.isEmpty {
            r.error(key, "bacnet settings apply only to a site with a bacnet-ip bus; this site has none")
        }
        guard let n = f["write-priority"], let v = r.int(n, "write-priority") else { return nil }
        guard let p = BACnetPriority(v) else {
            r.error(n, "write-priority \(v) is not a BACnet priority (1-16)")
            return nil
        }
        guard let settings = BACnetSettings(writePriority: p) else {
            r.error(n, "write-priority \(v) is above what agents may have: priorities 1-8 belong to life safety, critical equipment control and manual operators; agents write at 9-16 (9 is the highest)")
            return nil
        }
        return settings
    }

    // MARK: zones

    struct ParsedZone {
        var zone: Zone
        var idNode: Node
    }

    func parseZones(_ node: Node) -> [ParsedZone] {
        guard let list = r.sequence(node, "zones") else { return [] }
        if list.isEmpty { r.error(node, "a site needs at least one zone") }
        var out: [ParsedZone] = []
        var seen: [String: Node] = [:]
        for item in list {
            guard let f = r.fields(item, "zone", allowed: ["id", "building-wide", "description"], required: ["id"]),
                  let idNode = f["id"], let id = r.identifier(idNode, "zone id") else { continue }
            let bw = f["building-wide"].flatMap { r.bool($0, "building-wide") } ?? false
            _ = f["description"].flatMap { r.string($0, "description") }
            if let first = seen[id] {
                r.error(idNode, "duplicate zone id '\(id)' (first declared at \(first.mark?.description ?? "?"))")
                continue
            }
            seen[id] = idNode
            out.append(ParsedZone(zone: Zone(id: id, buildingWide: bw), idNode: idNode))
        }
        return out
    }

    /// Every zone can go into alarm: it has an alarm input of its own (fire, gas, suppression
    /// pre-discharge or discharged), or a building-wide zone other than itself has one (whose
    /// alarms put every zone in alarm, as `ZoneCondition` evaluates them).
    func checkAlarmSources(_ zones: [ParsedZone], points: [Point]) {
        let withAlarm = Set(points.filter { $0.role.isAlarmInput }.map(\.zone))
        for z in zones where !withAlarm.contains(z.zone.id) {
            let covered = zones.contains { $0.zone.buildingWide && $0.zone.id != z.zone.id && withAlarm.contains($0.zone.id) }
            if !covered {
                r.error(z.idNode, "zone '\(z.zone.id)' has no alarm source: no fire-alarm, gas-alarm or suppression input of its own and no building-wide zone with one, so it could never be in alarm (RL-3, RL-6 and the door release E-1 would never see a fire there); add an alarm input to it or to a building-wide zone")
            }
        }
    }

    // MARK: buses

    struct ParsedBus {
        var bus: Bus
        var idNode: Node
        var kindNode: Node?
        /// The host, serial device or chip node.
        var endpointNode: Node?
        var baudNode: Node?
        var timeoutNode: Node?
        var retriesNode: Node?
        /// What the site calls the endpoint (`localhost:15024`, `/dev/ttyS1`, `gpiochip0`).
        var spelled: String
        /// The physical endpoint: buses on one endpoint share its address space.
        var physical: PhysicalEndpoint
        /// Index of the first bus on the same physical endpoint (itself if none before it).
        var endpointGroup = 0
        var isGPIO: Bool { if case .gpio = bus.kind { return true } else { return false } }
        var family: BusFamily { BusFamily(bus.kind) }
    }

    func parseBuses(_ node: Node) -> (buses: [ParsedBus], broken: Set<String>) {
        guard let list = r.sequence(node, "buses") else { return ([], []) }
        var out: [ParsedBus] = []
        var broken: Set<String> = []
        var seen: [String: Node] = [:]
        for item in list {
            guard let f = r.fields(item, "bus", allowed: ["id", "modbus-tcp", "modbus-rtu", "gpio", "bacnet-ip", "timeout-ms", "retries", "description"], required: ["id"]),
                  let idNode = f["id"], let id = r.identifier(idNode, "bus id") else { continue }
            _ = f["description"].flatMap { r.string($0, "description") }
            let kinds = ["modbus-tcp", "modbus-rtu", "gpio", "bacnet-ip"].filter { f.has($0) }
            var timeout = 200
            var timeoutOK = true
            if let n = f["timeout-ms"] {
                if let v = r.int(n, "timeout-ms", in: 1...Int(Int32.max)) { timeout = v } else { timeoutOK = false }
            }
            guard kinds.count == 1 else {
                r.error(kinds.count > 1 ? f[kinds[1]] : item,
                        "bus '\(id)' needs exactly one of modbus-tcp, modbus-rtu, gpio or bacnet-ip")
                broken.insert(id)
                continue
            }
            var kind: BusKind?
            var physical: PhysicalEndpoint?
            var endpointNode: Node?
            var spelled = ""
            var chipLabel: String?
            var labelOK = true
            var baudNode: Node?
            // Retries: BACnet/IP only (a UDP request may be lost; Modbus TCP is a stream, RTU
            // has the next scan). A silent device faults after timeout-ms x (1 + retries).
            var retries = 0
            if let n = f["retries"] {
                if kinds[0] != "bacnet-ip" {
                    r.error(f.keys["retries"], "retries apply only to bacnet-ip buses; bus '\(id)' is \(kinds[0])")
                    timeoutOK = false
                } else if let v = r.int(n, "retries", in: 0...3) { retries = v } else { timeoutOK = false }
            }
            switch kinds[0] {
            case "bacnet-ip":
                if let g = r.fields(f["bacnet-ip"]!, "bacnet-ip", allowed: ["address", "port"], required: ["address"]),
                   let addressNode = g["address"], let address = r.string(addressNode, "address") {
                    var port: Int? = BusKind.bacnetDefaultPort
                    if let pn = g["port"] { port = r.int(pn, "port", in: 1...65535) }
                    if let port {
                        spelled = address.contains(":") && !address.hasPrefix("[") ? "[\(address)]:\(port)" : "\(address):\(port)"
                        endpointNode = addressNode
                        switch environment.hosts.resolve(address) {
                        case .success(let addresses):
                            kind = .bacnetIP(address: address, port: port)
                            physical = .udp(addresses: addresses, port: port)
                        case .failure(let why):
                            r.error(addressNode, "address '\(address)' does not resolve (\(why)); every BACnet/IP address must resolve when the site is loaded, so that two buses reaching one device network are recognised as one")
                        }
                    }
                }
            case "modbus-tcp":
                if let g = r.fields(f["modbus-tcp"]!, "modbus-tcp", allowed: ["host", "port"], required: ["host", "port"]),
                   let hostNode = g["host"], let host = r.string(hostNode, "host"),
                   let port = g["port"].flatMap({ r.int($0, "port", in: 1...65535) }) {
                    spelled = host.contains(":") && !host.hasPrefix("[") ? "[\(host)]:\(port)" : "\(host):\(port)"
                    endpointNode = hostNode
                    switch environment.hosts.resolve(host) {
                    case .success(let addresses):
                        kind = .modbusTCP(host: host, port: port)
                        physical = .tcp(addresses: addresses, port: port)
                    case .failure(let why):
                        r.error(hostNode, "host '\(host)' does not resolve (\(why)); every Modbus TCP host must resolve when the site is loaded, so that two buses reaching one server are recognised as one")
                    }
                }
            case "modbus-rtu":
                if let g = r.fields(f["modbus-rtu"]!, "modbus-rtu", allowed: ["device", "baud", "parity", "data-bits", "stop-bits"], required: ["device"]),
                   let dev = g["device"].flatMap({ r.string($0, "serial device") }) {
                    endpointNode = g["device"]
                    var s = SerialSettings(device: dev)
                    var ok = true
                    baudNode = g["baud"]
                    if let n = g["baud"] {
                        if let b = r.int(n, "baud", in: 300...4_000_000) { s.baud = b } else { ok = false }
                    }
                    if let n = g["parity"] {
                        if let p = r.string(n, "parity"), ["N", "E", "O"].contains(p) { s.parity = Character(p) }
                        else { if case .scalar(let sc) = n, !sc.string.isEmpty { r.error(n, "parity must be N, E or O") }; ok = false }
                    }
                    if let n = g["data-bits"] {
                        if let b = r.int(n, "data-bits", in: 5...8) { s.dataBits = b } else { ok = false }
                    }
                    if let n = g["stop-bits"] {
                        if let b = r.int(n, "stop-bits", in: 1...2) { s.stopBits = b } else { ok = false }
                    }
                    if ok {
                        kind = .modbusRTU(s)
                        physical = .serial(path: PathIdentity.physical(dev))
                    }
                    spelled = dev
                }
            default:
                if let g = r.fields(f["gpio"]!, "gpio", allowed: ["chip", "label"], required: ["chip"]),
                   let chip = g["chip"].flatMap({ r.string($0, "chip") }) {
                    endpointNode = g["chip"]
                    kind = .gpio(chip: chip)
                    if let ln = g["label"] {
                        if let l = r.string(ln, "label") {
                            if case .label(let named) = GPIOChipName(chip), named != l {
                                r.error(ln, "chip '\(chip)' is already a label; it cannot also be required to be labelled '\(l)'")
                                labelOK = false
                            } else { chipLabel = l }
                        } else { labelOK = false }
                    }
                    physical = .gpioChip(PathIdentity.gpioChip(chip))
                    spelled = chip
                }
            }
            if let first = seen[id] {
                r.error(idNode, "duplicate bus id '\(id)' (first declared at \(first.mark?.description ?? "?"))")
                continue
            }
            seen[id] = idNode
            if let kind, let physical, timeoutOK, labelOK {
                out.append(ParsedBus(bus: Bus(id: id, kind: kind, timeoutMs: timeout, chipLabel: chipLabel, retries: retries), idNode: idNode, kindNode: f[kinds[0]],
                                     endpointNode: endpointNode, baudNode: baudNode, timeoutNode: f["timeout-ms"], retriesNode: f["retries"],
                                     spelled: spelled, physical: physical))
            } else {
                broken.insert(id)
            }
        }
        // Buses on one physical endpoint share one address space (union-find: an address shared
        // by a name resolving to several joins all of them).
        var parent = Array(out.indices)
        func root(_ i: Int) -> Int { var i = i; while parent[i] != i { i = parent[i] }; return i }
        for i in out.indices {
            for j in 0..<i where out[i].physical.isSame(as: out[j].physical) {
                let (a, b) = (root(i), root(j))
                if a != b { parent[max(a, b)] = min(a, b) }
            }
        }
        for i in out.indices { out[i].endpointGroup = root(i) }
        // One serial line has one master: two buses on it would interleave their frames.
        for i in out.indices {
            guard case .modbusRTU = out[i].bus.kind,
                  let j = (0..<i).first(where: { out[$0].endpointGroup == out[i].endpointGroup }) else { continue }
            r.error(out[i].endpointNode ?? out[i].idNode, "bus '\(out[i].bus.id)' is on the same serial line as bus '\(out[j].bus.id)' (\(out[i].spelled) and \(out[j].spelled) are both \(out[i].physical)); a line has one master, so declare the devices of both on one bus")
            broken.insert(out[i].bus.id)
        }
        return (out.filter { !broken.contains($0.bus.id) }, broken)
    }

    // MARK: devices

    static let deviceKeys = ["id", "profile", "bus", "unit", "device-instance", "zone", "lines", "limits", "description"]

    func parseDevices(_ node: Node, zones: [Zone], buses: [ParsedBus], brokenBuses: Set<String>) -> ([Device], [Point], Set<String>) {
        guard let list = r.sequence(node, "devices") else { return ([], [], []) }
        var devices: [Device] = []
        var points: [Point] = []
        var broken: Set<String> = []
        var seen: [String: Node] = [:]
        /// physical endpoint + unit + location -> the point that holds it, and its bus.
        var occupied: [String: (point: String, bus: ParsedBus)] = [:]
        /// BACnet device instance -> the first device that has it.
        var instances: [UInt32: (device: String, bus: ParsedBus)] = [:]
        let zoneIDs = Set(zones.map(\.id))
        for item in list {
            let before = r.diagnostics.count
            guard let f = r.fields(item, "device", allowed: Self.deviceKeys, required: ["id", "profile", "bus", "zone"],
                                   special: Self.deviceSpecial) else { continue }
            guard let idNode = f["id"], let id = r.identifier(idNode, "device id") else { continue }
            _ = f["description"].flatMap { r.string($0, "description") }
            if let first = seen[id] {
                r.error(idNode, "duplicate device id '\(id)' (first declared at \(first.mark?.description ?? "?"))")
                continue
            }
            seen[id] = idNode

            var profile: DeviceProfile?
            if let n = f["profile"], let name = r.string(n, "profile") {
                profile = profiles[name]
                if profile == nil && !brokenProfiles.contains(name) {
                    r.error(n, "unknown profile '\(name)' (no such profile in \(devicesDir))")
                }
            }
            var bus: ParsedBus?
            if let n = f["bus"], let name = r.string(n, "bus") {
                bus = buses.first { $0.bus.id == name }
                if bus == nil && !brokenBuses.contains(name) { r.error(n, "unknown bus '\(name)'") }
            }
            var zone: String?
            if let n = f["zone"], let name = r.string(n, "zone") {
                if zoneIDs.contains(name) { zone = name } else { r.error(n, "unknown zone '\(name)'") }
            }

            // Unit id: Modbus only, 1-247 (0 is broadcast). Device instance: BACnet only.
            var unit: Int?
            var deviceInstance: UInt32?
            if let bus, bus.family != .bacnet, let k = f.keys["device-instance"] {
                r.error(k, "device-instance names devices on a bacnet-ip bus; '\(bus.bus.id)' is \(bus.family.aBus)\(bus.family == .modbus ? " (its devices have a unit id)" : "")")
            }
            if let bus, bus.family == .bacnet {
                if let k = f.keys["unit"] {
                    r.error(k, "device '\(id)' is on BACnet/IP bus '\(bus.bus.id)', which names devices by device-instance, not by a Modbus unit id")
                }
                if let n = f["device-instance"] {
                    if case .scalar(let s) = n, s.style == .plain, let v = Int(s.string) {
                        if let d = BACnetObjectId.valid(type: .device, instance: v) {
                            deviceInstance = d.instance
                            // Device instances are unique across a BACnet internetwork: the same
                            // one on two endpoints is two devices claiming one identity.
                            if let other = instances[d.instance], !other.bus.physical.isSame(as: bus.physical) {
                                r.error(n, "device instance \(v) is already device '\(other.device)' on bus '\(other.bus.bus.id)' (\(other.bus.spelled)); a device instance names one device in the whole BACnet internetwork")
                            } else if instances[d.instance] == nil {
                                instances[d.instance] = (id, bus)
                            }
                        } else {
                            r.error(n, "device instance \(v) is outside 0-\(BACnetObjectId.maxInstance) (4194303 is BACnet's wildcard, never a device)")
                        }
                    } else {
                        r.error(n, "device-instance must be an integer, not \(r.kind(n))")
                    }
                } else if f.keys["unit"] == nil {
                    r.error(item, "device '\(id)' on BACnet/IP bus '\(bus.bus.id)' needs a device-instance (0-\(BACnetObjectId.maxInstance))")
                }
            } else if let bus {
                if bus.isGPIO {
                    if let n = f["unit"] { r.error(n, "device '\(id)' is on GPIO bus '\(bus.bus.id)', which has no unit ids") }
                } else if let n = f["unit"] {
                    if case .scalar(let s) = n, s.style == .plain, let v = Int(s.string) {
                        if v == 0 { r.error(n, "unit id 0 is the Modbus broadcast address; use 1-247") }
                        else if !(1...247).contains(v) { r.error(n, "unit id \(v) is outside 1-247") }
                        else { unit = v }
                    } else {
                        r.error(n, "unit must be an integer, not \(r.kind(n))")
                    }
                } else {
                    r.error(item, "device '\(id)' on Modbus bus '\(bus.bus.id)' needs a unit id (1-247)")
                }
            }

            // Bus kind and bindings.
            if let bus, let profile {
                let mismatched = profile.points.filter { $0.location.family != bus.family }
                // One message per kind of mismatched point (a profile mixes at most what its author wrote).
                for family in [BusFamily.modbus, .gpio, .bacnet] {
                    let these = mismatched.filter { $0.location.family == family }
                    guard !these.isEmpty else { continue }
                    r.error(f["bus"], "profile '\(profile.name)' has \(family.points) (\(these.map(\.name).joined(separator: ", "))) but bus '\(bus.bus.id)' is \(bus.family.aBus)")
                }
            }
            var lines: [String: GPIOLine] = [:]
            if let n = f["lines"] {
                if let bus, !bus.isGPIO {
                    r.error(f.keys["lines"], "lines apply only to devices on a GPIO bus; '\(bus.bus.id)' is \(bus.family.aBus)")
                } else if case .mapping(let m) = n {
                    for (k, v) in m {
                        guard let pname = r.string(k, "point name") else { continue }
                        if let profile {
                            guard let pp = profile.point(pname) else {
                                r.error(k, "profile '\(profile.name)' has no point '\(pname)'")
                                continue
                            }
                            if !pp.location.isGPIO { r.error(k, "point '\(pname)' of '\(profile.name)' is not a GPIO line"); continue }
                        }
                        if case .scalar(let s) = v, s.style == .plain, let o = Int(s.string) {
                            if (0...511).contains(o) { lines[pname] = .offset(o) } else { r.error(v, "GPIO line offset \(o) is outside 0-511") }
                        } else if case .scalar = v, let s = r.string(v, "line name") {
                            lines[pname] = .name(s)
                        } else if case .scalar = v {
                        } else {
                            r.error(v, "a GPIO line must be an offset or a name, not \(r.kind(v))")
                        }
                    }
                } else {
                    r.error(n, "lines must be a mapping of point name to line offset or name, not \(r.kind(n))")
                }
            }

            // Site limits: may only narrow the profile's range (and so the envelope).
            var limits: [String: (min: Double?, max: Double?)] = [:]
            if let n = f["limits"] {
                if case .mapping(let m) = n {
                    for (k, v) in m {
                        guard let pname = r.string(k, "point name") else { continue }
                        let pp = profile?.point(pname)
                        if let profile, pp == nil { r.error(k, "profile '\(profile.name)' has no point '\(pname)'"); continue }
                        guard let g = r.fields(v, "limits of '\(pname)'", allowed: ["min", "max"],
                                               special: ["role": Self.roleOverride, "roles": Self.roleOverride]) else { continue }
                        let lo = g["min"].flatMap { x in r.double(x, "min").map { ($0, x) } }
                        let hi = g["max"].flatMap { x in r.double(x, "max").map { ($0, x) } }
                        guard let pp else { continue }
                        if !pp.role.isOutput {
                            r.error(k, "limits apply only to writable points; \(id).\(pname) is an input (\(pp.role.rawValue))")
                            continue
                        }
                        var ok = checkRange(r, role: pp.role, min: lo, max: hi, what: "\(id).\(pname)")
                        if ok, let (l, x) = lo, let pmin = pp.min, l < pmin {
                            r.error(x, "\(id).\(pname) min \(fmt(l)) widens the profile's range (\(fmt(pmin))-\(fmt(pp.max ?? pp.role.envelope.upperBound))); a site may only narrow it")
                            ok = false
                        }
                        if ok, let (h, x) = hi, let pmax = pp.max, h > pmax {
                            r.error(x, "\(id).\(pname) max \(fmt(h)) widens the profile's range (\(fmt(pp.min ?? pp.role.envelope.lowerBound))-\(fmt(pmax))); a site may only narrow it")
                            ok = false
                        }
                        let effLo = lo?.0 ?? pp.min, effHi = hi?.0 ?? pp.max
                        if ok, let l = effLo, let h = effHi, l > h {
                            r.error(hi?.1 ?? lo?.1 ?? v, "\(id).\(pname) range \(fmt(l))-\(fmt(h)) is empty")
                            ok = false
                        }
                        if ok { limits[pname] = (lo?.0, hi?.0) }
                    }
                } else {
                    r.error(n, "limits must be a mapping of point name to {min, max}, not \(r.kind(n))")
                }
            }

            guard r.diagnostics.count == before, let profile, let bus, let zone else {
                broken.insert(id)
                continue
            }
            devices.append(Device(id: id, profile: profile.name, bus: bus.bus.id, unit: unit, zone: zone, deviceInstance: deviceInstance))
            for pp in profile.points {
                let pid = "\(id).\(pp.name)"
                let binding: PointBinding
                // Where the point physically is: the physical endpoint (not the bus's spelling of
                // it), unit and register, or chip and line. GPIO lines bound by name are resolved
                // against the real chip when the daemon starts (GPIOBackend.resolveLines).
                let location: String
                switch pp.location {
                case .register(let table, let address):
                    binding = .modbus(table: table, address: address, scale: pp.scale, signed: pp.signed)
                    location = "unit \(unit ?? 0) \(table.rawValue) \(address)"
                case .line(let line):
                    let l = lines[pp.name] ?? line
                    binding = .gpio(line: l, activeLow: pp.activeLow)
                    switch l {
                    case .offset(let o): location = "line \(o)"
                    case .name(let n): location = "line named '\(n)'"
                    }
                case .bacnet(let address):
                    binding = .bacnet(address)
                    location = "device \(deviceInstance.map { String($0) } ?? "?") \(address)"
                }
                let slot = "\(bus.endpointGroup) \(location)"
                if let other = occupied[slot] {
                    if other.bus.bus.id == bus.bus.id {
                        r.error(idNode, "point \(pid) overlaps \(other.point): both at bus '\(bus.bus.id)' \(location)")
                    } else {
                        r.error(idNode, "point \(pid) overlaps \(other.point): both at \(location) of one physical endpoint, \(bus.physical): bus '\(bus.bus.id)' (\(bus.spelled)) and bus '\(other.bus.bus.id)' (\(other.bus.spelled)) reach the same device")
                    }
                    broken.insert(id)
                } else {
                    occupied[slot] = (pid, bus)
                }
                let lim = limits[pp.name]
                points.append(Point(id: pid, device: id, name: pp.name, role: pp.role, zone: zone, bus: bus.bus.id,
                                    unitId: unit, binding: binding, unit: pp.unit,
                                    min: lim?.min ?? pp.min, max: lim?.max ?? pp.max, deviceInstance: deviceInstance))
            }
        }
        return (devices, points, broken)
    }

    // MARK: agents, operators, approvals, quarantine

    func parseOperators(_ node: Node) -> [Operator] {
        guard let list = r.sequence(node, "operators") else { return [] }
        var out: [Operator] = []
        for item in list {
            guard let f = r.fields(item, "operator", allowed: ["uid", "gid"]) else { continue }
            if f.has("uid") == f.has("gid") {
                r.error(item, "an operator has exactly one of uid or gid")
                continue
            }
            if let n = f["uid"], let v = r.int(n, "uid", in: 0...Int(UInt32.max)) { out.append(Operator(uid: UInt32(v))) }
            if let n = f["gid"], let v = r.int(n, "gid", in: 0...Int(UInt32.max)) { out.append(Operator(gid: UInt32(v))) }
        }
        return out
    }

    func parseAgents(_ node: Node, operators: [Operator], check: (String, Node, String) -> PointPattern) -> [Agent] {
        guard let list = r.sequence(node, "agents") else { return [] }
        var out: [Agent] = []
        var names: [String: Node] = [:]
        var uids: [UInt32: (String, Node)] = [:]
        let operatorUIDs = Set(operators.compactMap(\.uid))
        for item in list {
            guard let f = r.fields(item, "agent", allowed: ["name", "uid", "user", "read", "write", "description"], required: ["name"]) else { continue }
            _ = f["description"].flatMap { r.string($0, "description") }
            let name = f["name"].flatMap { r.identifier($0, "agent name") }
            // The account: by uid, or by user name resolved now (getpwnam), never both.
            var uid: UInt32?
            let uidNode = f["uid"] ?? f["user"]
            switch (f["uid"], f["user"]) {
            case (let n?, nil):
                uid = r.int(n, "uid", in: 0...Int(UInt32.max)).map(UInt32.init)
            case (nil, let n?):
                if let user = r.string(n, "user") {
                    if let account = environment.accounts.userNamed(user) {
                        uid = account.uid
                    } else {
                        r.error(n, "unknown user '\(user)': no such account in the user database (getpwnam); create it or name the agent by uid")
                    }
                }
            case (_?, let n?):
                r.error(n, "an agent has exactly one of uid or user, not both")
            case (nil, nil):
                r.error(item, "agent is missing 'uid' or 'user'")
            }
            let read = f["read"].map { r.stringList($0, "read") } ?? []
            let write = f["write"].map { r.stringList($0, "write") } ?? []
            let readP = read.map { check($0.0, $0.1, "read grant") }
            let writeP = write.map { check($0.0, $0.1, "write grant") }
            var ok = true
            if let name, let n = f["name"] {
                if let first = names[name] {
                    r.error(n, "duplicate agent name '\(name)' (first declared at \(first.mark?.description ?? "?"))")
                    ok = false
                } else { names[name] = n }
            }
            if let uid, let n = uidNode {
                if let (other, first) = uids[uid] {
                    r.error(n, "uid \(uid) is listed twice: already agent '\(other)' (at \(first.mark?.description ?? "?")); one uid is one agent")
                    ok = false
                } else { uids[uid] = (name ?? "?", n) }
                if operatorUIDs.contains(uid) {
                    r.error(n, "uid \(uid) is an operator; an agent must never hold operator rights")
                    ok = false
                }
            }
            if ok, let name, let uid { out.append(Agent(name: name, uid: uid, read: readP, write: writeP)) }
        }
        return out
    }

    func parseApprovals(_ node: Node, check: (String, Node, String) -> PointPattern) -> [ApprovalRule] {
        guard let list = r.sequence(node, "approvals") else { return [] }
        var out: [ApprovalRule] = []
        for item in list {
            guard let f = r.fields(item, "approval", allowed: ["points", "timeout-s"], required: ["points", "timeout-s"]) else { continue }
            let pats = f["points"].map { r.stringList($0, "points") } ?? []
            if let n = f["points"], case .sequence(let s) = n, s.isEmpty { r.error(n, "an approval rule needs at least one point pattern") }
            let ps = pats.map { check($0.0, $0.1, "approval") }
            if let n = f["timeout-s"], let t = r.int(n, "timeout-s", in: 1...Int(Int32.max)) {
                if Int64(t) * 1000 > Limits.maxApprovalTimeoutMs {
                    r.error(n, "approval timeout-s \(t) loosens the compiled-in maximum of \(Limits.maxApprovalTimeoutMs / 1000) s (1 hour); a site may only tighten it (\(Self.envelopeRef))")
                } else {
                    out.append(ApprovalRule(points: ps, timeoutMs: Int64(t) * 1000))
                }
            }
        }
        return out
    }

    func parseQuarantine(_ node: Node) -> QuarantinePolicy {
        guard let f = r.fields(node, "quarantine", allowed: ["threshold", "window-s", "escalation-agents", "escalation-denials"]) else { return QuarantinePolicy() }
        var threshold = Limits.quarantineThreshold
        var windowMs = Limits.quarantineWindowMs
        if let n = f["threshold"], let v = r.int(n, "threshold", in: 1...Int(Int32.max)) {
            if v > Limits.quarantineThreshold {
                r.error(n, "quarantine threshold \(v) loosens the compiled-in limit of \(Limits.quarantineThreshold) red-line denials; a site may only tighten it")
            } else { threshold = v }
        }
        if let n = f["window-s"], let v = r.int(n, "window-s", in: 1...Int(Int32.max)) {
            if Int64(v) * 1000 < Limits.quarantineWindowMs {
                r.error(n, "quarantine window \(v) s loosens the compiled-in window of \(Limits.quarantineWindowMs / 1000) s; a site may only lengthen it")
            } else { windowMs = Int64(v) * 1000 }
        }
        var agents = Limits.escalationQuarantinedAgents
        if let n = f["escalation-agents"], let v = r.int(n, "escalation-agents", in: 1...Int(Int32.max)) {
            if v > Limits.escalationQuarantinedAgents {
                r.error(n, "escalation-agents \(v) loosens the compiled-in limit of \(Limits.escalationQuarantinedAgents) quarantined agents; a site may only lower it")
            } else { agents = v }
        }
        var denials = Limits.escalationDenials
        if let n = f["escalation-denials"], let v = r.int(n, "escalation-denials", in: 1...Int(Int32.max)) {
            if v > Limits.escalationDenials {
                r.error(n, "escalation-denials \(v) loosens the compiled-in limit of \(Limits.escalationDenials) red-line denials across all agents; a site may only lower it")
            } else { denials = v }
        }
        return QuarantinePolicy(threshold: threshold, windowMs: windowMs, escalationAgents: agents, escalationDenials: denials)
    }
}
