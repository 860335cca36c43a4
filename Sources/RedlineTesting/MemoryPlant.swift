import PlantModel
import RedlineCore
import RedlineIO
import RedlineSync

/// A device fault a test injects (PlantModel's `FaultMode`, the simulator's names): what every
/// access to the device's points answers.
extension FaultMode {
    /// The error the device's points read, or nil when they read normally.
    public var error: DeviceError? {
        switch self {
        case .offline: return .connection("connection refused")
        case .timeout: return .timeout
        case .exception: return .exception(code: 4, "server device failure")
        case .garbage: return .malformed("wrong byte count")
        case .wrongUnit: return .malformed("reply from another unit")
        case .slow, .none: return nil
        }
    }
}

/// The in-memory plant behind the plant seam (`PlantAccess`), for in-process tests:
/// what `EmbeddedChannel` is to a NIO channel.
///
/// It holds values, and nothing of the daemon's judgement: what the points read comes from a
/// `PlantModel` (the same pure physics `redline-sim` serves over Modbus, so a fire alarm
/// latches, a failed CRAC's fault input reads 1 and a released suppression starts its
/// pre-discharge); time moves only with `advance(ms:)`, which moves the `ManualClock` and
/// the model together; a scan happens only when a test calls `scan()`. A test can inject a
/// device fault (every point of the device reads, and every write fails, with that fault's
/// error), stall a device (its reads never complete, so its readings grow old and go
/// stale), and see every write that reached the plant (`writes`).
///
/// The checks on the way (unknown points, inputs, envelopes, device-level propagation, a
/// newer reading never overwritten) are `PlantRules`, the same code the real plant runs;
/// policy and effects are not here at all: they are the daemon's, and run unchanged above.
public final class MemoryPlant: PlantAccess {
    public let site: Site
    public let clock: ManualClock
    private let state: Lock<State>

    /// A write that reached the plant (or was refused on the way).
    public struct Write: Sendable, Hashable, CustomStringConvertible {
        public var point: String
        public var value: Double
        public var priority: BusPriority
        public var at: Int64
        /// What the plant answered: the read-back value, or why not.
        public var result: Result<Double, DeviceError>
        public var landed: Bool { if case .success = result { return true } else { return false } }
        public var description: String { "\(point)=\(fmt(value)) at \(at) (\(priority)): \(result)" }
    }

    private struct Callbacks {
        var onPart: (@Sendable (PlantSnapshot) -> Void)?
        var onScan: @Sendable (PlantSnapshot) async -> Void
    }

    private struct State {
        var model: PlantModel
        var snapshot = PlantSnapshot()
        var faults: [String: FaultMode] = [:]
        var stalled: Set<String> = []
        var writes: [Write] = []
        var jobs = [Int](repeating: 0, count: BusPriority.allCases.count)
        var callbacks: Callbacks?
        var fullScans = 0
        var beforeWrite: (@Sendable (String) -> Void)?
    }

    public init(site: Site, clock: ManualClock = ManualClock()) {
        self.site = site
        self.clock = clock
        state = Lock(State(model: PlantModel(site: site)))
    }

    // MARK: - What a test does to the plant

    /// Sets a plant variable (`server-room-a.temperature`, `crac-1.failed`) or a point's
    /// physical state (`sra-door.lock`), as the physical world or a person would.
    public func set(_ name: String, _ value: Double) throws {
        try state.withLock { s in try s.model.set(name, value) }
    }

    /// A variable's or a point's physical value now (ground truth, not what the daemon read).
    public func value(_ name: String) -> Double? { state.withLock { $0.model.value(name) } }

    /// Injects (or with `.none` clears) a device fault.
    public func fault(_ device: String, _ mode: FaultMode) {
        state.withLock { $0.faults[device] = mode == .none ? nil : mode }
    }

    /// Stalls (or resumes) a device: its reads never complete, so its readings age.
    public func stall(_ device: String, _ stalled: Bool = true) {
        state.withLock { s in
            if stalled { s.stalled.insert(device) } else { s.stalled.remove(device) }
        }
    }

    /// Runs `f` with the point id just before each write's guard (the moment a real write
    /// waits on its bus thread): a test can change the plant between decision and actuation.
    public func beforeWrite(_ f: (@Sendable (String) -> Void)?) { state.withLock { $0.beforeWrite = f } }

    /// Moves time: the manual clock and the physics together.
    public func advance(ms: Int64) {
        clock.advance(by: ms)
        state.withLock { $0.model.advance(seconds: Double(ms) / 1000) }
    }

    /// Every write that reached the plant so far, in order.
    public var writes: [Write] { state.withLock { $0.writes } }

    /// Completed full scans.
    public var fullScans: Int { state.withLock { $0.fullScans } }

    /// Whether `run` is serving scans (the daemon's scan loop is attached).
    public var isRunning: Bool { state.withLock { $0.callbacks != nil } }

    /// One full scan now: each bus's points are read and merged (the daemon's `onPart` sees
    /// each bus's part), then the daemon's `onScan` runs and is awaited.
    @discardableResult
    public func scan() async -> PlantSnapshot {
        var buses: [String] = []
        for p in site.points where !buses.contains(p.bus) { buses.append(p.bus) }
        let callbacks = state.withLock { $0.callbacks }
        for bus in buses {
            let ids = site.points.filter { $0.bus == bus }.map(\.id)
            let snap = read(ids, priority: .scan)
            callbacks?.onPart?(snap)
        }
        let snap = state.withLock { s in
            s.fullScans += 1
            return s.snapshot
        }
        await callbacks?.onScan(snap)
        return snap
    }

    /// Reads every point now and merges the readings, without telling the daemon: a scan's
    /// reads landing just before a queued write goes out (what the write's guard then sees).
    @discardableResult
    public func readNow() -> PlantSnapshot { read(site.points.map(\.id), priority: .scan) }

    // MARK: - PlantAccess

    public var snapshot: PlantSnapshot { state.withLock { $0.snapshot } }

    public var jobsSubmitted: [BusPriority: Int] {
        let c = state.withLock { $0.jobs }
        return Dictionary(uniqueKeysWithValues: BusPriority.allCases.map { ($0, c[$0.rawValue]) })
    }

    /// The memory plant reads in no time on its manual clock and has no bus threads to time:
    /// it measures no scan durations.
    public var lastScanSeconds: [String: Double] { [:] }

    public func refreshAligned(_ ids: [String], priority: BusPriority) async -> PlantSnapshot {
        read(ids, priority: priority)
    }

    public func write(_ id: String, value: Double, priority: BusPriority,
                      guard check: (@Sendable () -> String?)?) async -> Result<Double, DeviceError> {
        let hook = state.withLock { s -> (@Sendable (String) -> Void)? in
            s.jobs[priority.rawValue] += 1
            return s.beforeWrite
        }
        hook?(id)
        let result: Result<Double, DeviceError>
        if let refused = PlantRules.refusal(site: site, point: id, value: value) {
            result = .failure(refused)
        } else if let p = site.point(id) {
            if let why = check?() {
                result = .failure(.withheld(why))
            } else {
                result = state.withLock { s -> Result<Double, DeviceError> in
                    if let e = s.faults[p.device]?.error { return .failure(e) }
                    if s.stalled.contains(p.device) { return .failure(.timeout) }
                    // What goes on the wire is the value's encoding; the read-back decodes it.
                    guard let wire = p.wireValue(for: value) else { return .failure(.outOfRange(value)) }
                    do { try s.model.deviceWrite(point: id, value: wire.value) } catch {
                        return .failure(.unsupported("\(error)"))
                    }
                    return PlantRules.readBack(p, Self.wire(p, s.model.value(id) ?? .nan))
                }
            }
        } else {
            result = .failure(.unsupported("unknown point \(id)"))
        }
        let at = clock.now
        state.withLock { $0.writes.append(Write(point: id, value: value, priority: priority, at: at, result: result)) }
        return result
    }

    /// The memory plant holds one value per point, as a register does: no priority arrays, so
    /// there is no command to release (BACnet releases run against `redline-sim`'s devices).
    public func commandState(_ id: String, priority: BusPriority) async -> Result<BACnetCommandable?, DeviceError> {
        state.withLock { $0.jobs[priority.rawValue] += 1 }
        return .failure(.unsupported("\(id): the memory plant keeps no priority arrays"))
    }

    public func release(_ id: String, priority: BusPriority, guard check: (@Sendable (Double) -> String?)?) async -> Result<Double, DeviceError> {
        state.withLock { $0.jobs[priority.rawValue] += 1 }
        return .failure(.unsupported("\(id): the memory plant keeps no priority arrays"))
    }

    public func record(_ id: String, readBack value: Double, at t: Int64) {
        state.withLock { PlantRules.merge([id: .success(value)], at: t, into: &$0.snapshot) }
    }

    public func run(onPart: (@Sendable (PlantSnapshot) -> Void)?, onScan: @escaping @Sendable (PlantSnapshot) async -> Void) async {
        state.withLock { $0.callbacks = Callbacks(onPart: onPart, onScan: onScan) }
        while !Task.isCancelled {
            do { try await Task.sleep(for: .seconds(3600)) } catch { break }
        }
        state.withLock { $0.callbacks = nil }
    }

    // MARK: - Reading

    /// Reads points now (the clock's time), through the same screening and merge as the real plant.
    @discardableResult
    private func read(_ ids: [String], priority: BusPriority) -> PlantSnapshot {
        let t = clock.now
        return state.withLock { s in
            var buses = Set<String>()
            var raw: [String: Result<Double, DeviceError>] = [:]
            for id in ids {
                guard let p = site.point(id) else { raw[id] = .failure(.unsupported("unknown point \(id)")); continue }
                buses.insert(p.bus)
                if s.stalled.contains(p.device) { continue }
                if let e = s.faults[p.device]?.error { raw[id] = .failure(e); continue }
                raw[id] = .success(Self.wire(p, s.model.value(id) ?? .nan))
            }
            s.jobs[priority.rawValue] += buses.count
            PlantRules.merge(PlantRules.screen(raw, site: site).results, at: t, into: &s.snapshot)
            return s.snapshot
        }
    }

    /// A physical value as the device reports it: through the point's encoding when it can
    /// carry it (30.04 °C on a 0.1 °C register reads 30), else as it is (and the envelope
    /// check in `PlantRules` then faults it).
    static func wire(_ p: Point, _ v: Double) -> Double { p.quantized(v) ?? v }
}
