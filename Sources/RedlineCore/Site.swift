/// A zone: a room or area whose conditions gate the red lines.
public struct Zone: Sendable, Hashable {
    public var id: String
    /// Alarms of a building-wide zone put every zone in alarm.
    public var buildingWide: Bool
    public init(id: String, buildingWide: Bool = false) {
        self.id = id
        self.buildingWide = buildingWide
    }
}

/// Timing of the scan loop.
public struct Timing: Sendable, Hashable {
    public var scanIntervalMs: Int64
    public var staleAfterMs: Int64
    public init(scanIntervalMs: Int64 = 100, staleAfterMs: Int64 = 500) {
        self.scanIntervalMs = scanIntervalMs
        self.staleAfterMs = staleAfterMs
    }
}

/// The four Modbus data tables.
public enum ModbusTable: String, Sendable, Hashable, CaseIterable {
    case coil
    case discreteInput = "discrete-input"
    case holdingRegister = "holding-register"
    case inputRegister = "input-register"

    /// Coils and holding registers can be written; the others are read-only by protocol.
    public var isWritable: Bool { self == .coil || self == .holdingRegister }
    /// Coils and discrete inputs carry single bits.
    public var isBit: Bool { self == .coil || self == .discreteInput }
}

/// A GPIO line, by offset on the chip or by its name.
public enum GPIOLine: Sendable, Hashable, CustomStringConvertible {
    case offset(Int)
    case name(String)
    public var description: String {
        switch self {
        case .offset(let o): return String(o)
        case .name(let n): return n
        }
    }
}

/// Where a point lives in hardware. Never visible to agents (RL-8).
public enum PointBinding: Sendable, Hashable {
    case modbus(table: ModbusTable, address: Int, scale: Double, signed: Bool)
    case gpio(line: GPIOLine, activeLow: Bool)
    /// An object and property of a BACnet device (the device instance is the point's `deviceInstance`).
    case bacnet(BACnetPointAddress)
}

/// Serial line settings of a Modbus RTU bus.
public struct SerialSettings: Sendable, Hashable {
    public var device: String
    public var baud: Int
    public var parity: Character
    public var dataBits: Int
    public var stopBits: Int
    public init(device: String, baud: Int = 19200, parity: Character = "E", dataBits: Int = 8, stopBits: Int = 1) {
        self.device = device
        self.baud = baud
        self.parity = parity
        self.dataBits = dataBits
        self.stopBits = stopBits
    }
}

/// How a site names a GPIO chip, as libgpiod's lookup reads it: a number (`0`) or a device
/// name (`gpiochip0`) is the node `/dev/gpiochipN`, anything with a `/` is a path, and anything
/// else is the chip's label (`pinctrl-rp1`). Pi kernels renumber chips between releases, so a
/// label is the stable name; a number or device name can be pinned to a label with `label:`.
public enum GPIOChipName: Sendable, Hashable {
    case node(String)
    case path(String)
    case label(String)

    public init(_ spelled: String) {
        if !spelled.isEmpty, spelled.allSatisfy({ $0.isASCII && $0.isNumber }) {
            self = .node("/dev/gpiochip\(Int(spelled) ?? 0)")
        } else if spelled.hasPrefix("gpiochip"), !spelled.contains("/") {
            self = .node("/dev/" + spelled)
        } else if spelled.contains("/") {
            self = .path(spelled)
        } else {
            self = .label(spelled)
        }
    }

    /// The device node or path; nil for a label (resolved against the real chips at start-up).
    public var path: String? {
        switch self {
        case .node(let p), .path(let p): return p
        case .label: return nil
        }
    }
}

/// A physical bus the daemon owns.
public enum BusKind: Sendable, Hashable {
    case modbusTCP(host: String, port: Int)
    case modbusRTU(SerialSettings)
    case gpio(chip: String)
    /// BACnet/IP (Annex J): the device network's IP address and UDP port (47808, 0xBAC0, by default).
    case bacnetIP(address: String, port: Int)

    /// The standard BACnet/IP UDP port.
    public static let bacnetDefaultPort = 47808
}

public struct Bus: Sendable, Hashable {
    public var id: String
    public var kind: BusKind
    /// Response timeout for one transaction.
    public var timeoutMs: Int
    /// BACnet/IP buses only: how many times a transaction that timed out is sent again
    /// (BACnet's Number_Of_APDU_Retries) before the device's points fault. `timeoutMs x (1 + retries)`
    /// is below the stale window in a valid site.
    public var retries: Int
    /// GPIO buses only: the label the chip must carry (`gpio: {chip: gpiochip4, label: pinctrl-rp1}`).
    /// The daemon refuses to start, and the backend refuses to open the chip, when it does not.
    public var chipLabel: String?
    public init(id: String, kind: BusKind, timeoutMs: Int = 200, chipLabel: String? = nil, retries: Int = 0) {
        self.id = id
        self.kind = kind
        self.timeoutMs = timeoutMs
        self.chipLabel = chipLabel
        self.retries = retries
    }

    public var isBACnet: Bool { if case .bacnetIP = kind { return true } else { return false } }
}

/// One device instance of a site.
public struct Device: Sendable, Hashable {
    public var id: String
    public var profile: String
    public var bus: String
    /// Modbus unit id (1-247); `nil` for GPIO and BACnet devices.
    public var unit: Int?
    /// BACnet device instance (0-4194302); `nil` for Modbus and GPIO devices.
    public var deviceInstance: UInt32?
    public var zone: String
    public init(id: String, profile: String, bus: String, unit: Int?, zone: String, deviceInstance: UInt32? = nil) {
        self.id = id
        self.profile = profile
        self.bus = bus
        self.unit = unit
        self.deviceInstance = deviceInstance
        self.zone = zone
    }
}

/// A declared point, addressed by agents as `DEVICE.POINT`.
public struct Point: Sendable, Hashable {
    public var id: String
    public var device: String
    public var name: String
    public var role: Role
    public var zone: String
    public var bus: String
    public var unitId: Int?
    /// The BACnet device instance of a point on a BACnet/IP bus; `nil` otherwise.
    public var deviceInstance: UInt32?
    public var binding: PointBinding
    public var unit: String?
    /// Configured range for writes; always inside `role.envelope` in a valid site.
    public var min: Double?
    public var max: Double?

    public init(id: String, device: String, name: String, role: Role, zone: String, bus: String,
                unitId: Int?, binding: PointBinding, unit: String? = nil, min: Double? = nil, max: Double? = nil,
                deviceInstance: UInt32? = nil) {
        self.id = id
        self.device = device
        self.name = name
        self.role = role
        self.zone = zone
        self.bus = bus
        self.unitId = unitId
        self.deviceInstance = deviceInstance
        self.binding = binding
        self.unit = unit ?? role.unit
        self.min = min
        self.max = max
    }

    /// The range an agent's write must fall in: the configured range, never wider than the compiled envelope.
    public var writeRange: ClosedRange<Double> {
        let env = role.envelope
        let lo = Swift.max(env.lowerBound, min ?? env.lowerBound)
        let hi = Swift.min(env.upperBound, max ?? env.upperBound)
        return lo <= hi ? lo...hi : env.lowerBound...env.lowerBound
    }
}

/// A glob over point ids: `*` matches any run of characters (including none).
public struct PointPattern: Sendable, Hashable, CustomStringConvertible {
    public let text: String
    /// `text` as UTF-8, kept so that matching allocates nothing.
    private let bytes: [UInt8]
    public init(_ text: String) {
        self.text = text
        self.bytes = Array(text.utf8)
    }
    public var description: String { text }
    public static func == (a: PointPattern, b: PointPattern) -> Bool { a.text == b.text }
    public func hash(into h: inout Hasher) { h.combine(text) }

    public func matches(_ id: String) -> Bool {
        var id = id
        return id.withUTF8 { s in bytes.withUnsafeBufferPointer { p in Self.match(p, s) } }
    }

    /// True when any of `patterns` matches `id` (one UTF-8 view of `id` for all of them).
    public static func any(_ patterns: [PointPattern], matches id: String) -> Bool {
        var id = id
        return id.withUTF8 { s in
            patterns.withUnsafeBufferPointer { ps in
                for k in ps.indices where ps[k].bytes.withUnsafeBufferPointer({ match($0, s) }) { return true }
                return false
            }
        }
    }

    private static func match(_ p: UnsafeBufferPointer<UInt8>, _ s: UnsafeBufferPointer<UInt8>) -> Bool {
        var pi = 0, si = 0, star = -1, mark = 0
        while si < s.count {
            if pi < p.count, p[pi] != UInt8(ascii: "*"), p[pi] == s[si] {
                pi += 1; si += 1
            } else if pi < p.count, p[pi] == UInt8(ascii: "*") {
                star = pi; mark = si; pi += 1
            } else if star >= 0 {
                pi = star + 1; mark += 1; si = mark
            } else {
                return false
            }
        }
        while pi < p.count, p[pi] == UInt8(ascii: "*") { pi += 1 }
        return pi == p.count
    }
}

/// An agent's compartment: who it is and which points it may see and write.
public struct Agent: Sendable, Hashable {
    public var name: String
    public var uid: UInt32
    public var read: [PointPattern]
    public var write: [PointPattern]
    public init(name: String, uid: UInt32, read: [PointPattern], write: [PointPattern]) {
        self.name = name
        self.uid = uid
        self.read = read
        self.write = write
    }
    public func canSee(_ id: String) -> Bool { canWrite(id) || PointPattern.any(read, matches: id) }
    public func canWrite(_ id: String) -> Bool { PointPattern.any(write, matches: id) }
}

/// Who may use the operator socket.
public struct Operator: Sendable, Hashable {
    public var uid: UInt32?
    public var gid: UInt32?
    public init(uid: UInt32? = nil, gid: UInt32? = nil) {
        self.uid = uid
        self.gid = gid
    }
}

/// Writes to matching points wait for an operator (except writes of the point's safe value).
public struct ApprovalRule: Sendable, Hashable {
    public var points: [PointPattern]
    public var timeoutMs: Int64
    public init(points: [PointPattern], timeoutMs: Int64) {
        self.points = points
        self.timeoutMs = timeoutMs
    }
}

/// Quarantine after `threshold` red-line denials within `windowMs`. Only ever tighter than `Limits`.
public struct QuarantinePolicy: Sendable, Hashable {
    public var threshold: Int
    public var windowMs: Int64
    /// Agents quarantined within the window that put the site in `agents-held` (§6.2).
    public var escalationAgents: Int
    /// Red-line denials across all agents within the window that do.
    public var escalationDenials: Int
    /// Each is clamped to the compiled-in limits: a site may lower a threshold, never raise it,
    /// and lengthen the window, never shorten it.
    public init(threshold: Int = Limits.quarantineThreshold, windowMs: Int64 = Limits.quarantineWindowMs,
                escalationAgents: Int = Limits.escalationQuarantinedAgents, escalationDenials: Int = Limits.escalationDenials) {
        self.threshold = Swift.max(1, Swift.min(threshold, Limits.quarantineThreshold))
        self.windowMs = Swift.max(windowMs, Limits.quarantineWindowMs)
        self.escalationAgents = Swift.max(1, Swift.min(escalationAgents, Limits.escalationQuarantinedAgents))
        self.escalationDenials = Swift.max(1, Swift.min(escalationDenials, Limits.escalationDenials))
    }
}

/// How agents' writes reach BACnet devices: the one command priority every agent write uses
/// (`bacnet: {write-priority: P}` in the site). Only 9...16 is ever accepted: priorities 1-8
/// belong to life safety, critical equipment control and manual operators (docs/DESIGN.md §10).
public struct BACnetSettings: Sendable, Hashable {
    /// The agents' priority; a release writes NULL here, and only here.
    public let writePriority: BACnetPriority

    /// nil for a priority agents may not have (1-8).
    public init?(writePriority: BACnetPriority) {
        guard writePriority.allowedForAgents else { return nil }
        self.writePriority = writePriority
    }
}

/// A validated site: everything the policy needs, and the bindings the I/O layer needs.
public struct Site: Sendable {
    public var name: String
    public var timing: Timing
    public var zones: [Zone] { didSet { indexZones() } }
    public var buses: [Bus]
    public var devices: [Device]
    /// Points in declaration order.
    public private(set) var points: [Point]
    public var agents: [Agent] { didSet { indexAgents() } }
    public var operators: [Operator]
    public var approvals: [ApprovalRule]
    public var quarantine: QuarantinePolicy
    /// BACnet settings; present in a valid site exactly when it has a BACnet/IP bus.
    public var bacnet: BACnetSettings?

    private var pointIndex: [String: Int]
    private var zoneIndex: [String: Int] = [:]
    private var agentIndex: [String: Int] = [:]
    /// Alarm inputs of building-wide zones, with each one's zone: they put every zone in alarm.
    private(set) var buildingWideAlarms: [(zone: String, point: Int)] = []
    /// Condition inputs per zone, precomputed: (occupancy, alarm, environment).
    private var conditionInputs: [String: ZoneInputs]

    struct ZoneInputs: Sendable {
        var occupancy: [Int] = []
        var alarm: [Int] = []
        var environment: [Int] = []
    }

    public init(name: String, timing: Timing = Timing(), zones: [Zone], buses: [Bus] = [], devices: [Device] = [],
                points: [Point], agents: [Agent], operators: [Operator] = [], approvals: [ApprovalRule] = [],
                quarantine: QuarantinePolicy = QuarantinePolicy(), bacnet: BACnetSettings? = nil) {
        self.name = name
        self.bacnet = bacnet
        self.timing = timing
        self.zones = zones
        self.buses = buses
        self.devices = devices
        self.points = points
        self.agents = agents
        self.operators = operators
        self.approvals = approvals
        self.quarantine = quarantine
        var pi: [String: Int] = [:]
        for (i, p) in points.enumerated() where pi[p.id] == nil { pi[p.id] = i }
        pointIndex = pi
        var ci: [String: ZoneInputs] = [:]
        for (i, p) in points.enumerated() {
            var z = ci[p.zone] ?? ZoneInputs()
            if p.role == .occupancy { z.occupancy.append(i) }
            if p.role.isAlarmInput { z.alarm.append(i) }
            if p.role.isEnvironmentInput { z.environment.append(i) }
            ci[p.zone] = z
        }
        conditionInputs = ci
        indexZones()
        indexAgents()
    }

    private mutating func indexZones() {
        var zi: [String: Int] = [:]
        for (i, z) in zones.enumerated() where zi[z.id] == nil { zi[z.id] = i }
        zoneIndex = zi
        var bw: [(zone: String, point: Int)] = []
        var seen = Set<String>()
        for z in zones where z.buildingWide && seen.insert(z.id).inserted {
            for i in conditionInputs[z.id]?.alarm ?? [] { bw.append((z.id, i)) }
        }
        buildingWideAlarms = bw
    }

    private mutating func indexAgents() {
        var ai: [String: Int] = [:]
        for (i, a) in agents.enumerated() where ai[a.name] == nil { ai[a.name] = i }
        agentIndex = ai
    }

    public func point(_ id: String) -> Point? { pointIndex[id].map { points[$0] } }
    public func zone(_ id: String) -> Zone? { zoneIndex[id].map { zones[$0] } }
    public func agent(named name: String) -> Agent? { agentIndex[name].map { agents[$0] } }
    public func agent(uid: UInt32) -> Agent? { agents.first { $0.uid == uid } }
    public var buildingWideZones: [Zone] { zones.filter(\.buildingWide) }

    /// The approval rule that covers a point, if any (the longest timeout wins where several match).
    public func approvalRule(for id: String) -> ApprovalRule? {
        var best: ApprovalRule?
        for rule in approvals where rule.points.contains(where: { $0.matches(id) }) {
            if best == nil || rule.timeoutMs > best!.timeoutMs { best = rule }
        }
        return best
    }

    /// Ids of the inputs a zone's conditions depend on (its own and building-wide alarms).
    public func conditionPointIDs(zone: String) -> [String] {
        var out: [Int] = []
        if let z = conditionInputs[zone] { out += z.occupancy + z.alarm + z.environment }
        for bz in zones where bz.buildingWide && bz.id != zone {
            out += conditionInputs[bz.id]?.alarm ?? []
        }
        return out.map { points[$0].id }
    }

    func inputs(of zone: String) -> ZoneInputs { conditionInputs[zone] ?? ZoneInputs() }
    func pointAt(_ i: Int) -> Point { points[i] }
}
