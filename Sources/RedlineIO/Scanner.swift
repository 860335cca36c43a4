import Logging
import RedlineCore
import RedlineSync

/// Keeps the plant snapshot fresh: reads every point of the site (inputs and
/// outputs) each `site.timing.scanIntervalMs`.
///
/// A successful read stores the value with the time its bus read started (the
/// conservative end, so ages never flatter a reading). A failed read marks the
/// point `faulted` at once and keeps its last good value and time for diagnosis;
/// `PlantSnapshot.quality` then reports `fault`, and an input not refreshed within
/// `stale-after-ms` reports `stale`. A device error fails all of that device's
/// points (see `PlantIO`).
public final class Scanner: Sendable {
    public let site: Site
    private let io: PlantIO
    private let logger: Logger
    private let clock: @Sendable () -> Int64
    private let idsByBus: [[String]]
    private let state = Lock(State())

    private struct State {
        var snapshot = PlantSnapshot()
        var fullScans = 0
        /// Reads completed per bus (in `run`), and the counts at the last full scan.
        var busDone: [Int] = []
        var busMark: [Int] = []
        /// How long each bus's last scan read took on its thread, in ms (by bus id).
        var busReadMs: [String: Int64] = [:]
        /// How long each bus's last scan took in `run`, from submitting its read to its results, in seconds.
        var busScanSeconds: [String: Double] = [:]
    }

    public init(site: Site, io: PlantIO, logger: Logger, clock: @escaping @Sendable () -> Int64 = monotonicMillis) {
        self.site = site
        self.io = io
        self.logger = logger
        self.clock = clock
        var groups: [String: [String]] = [:]
        var order: [String] = []
        for p in site.points {
            if groups[p.bus] == nil { order.append(p.bus) }
            groups[p.bus, default: []].append(p.id)
        }
        self.idsByBus = order.map { groups[$0]! }
    }

    /// The latest snapshot.
    public var snapshot: PlantSnapshot { state.withLock { $0.snapshot } }

    /// How long each bus's last scan took (seconds, by bus id; a bus not scanned yet is absent).
    public var lastScanSeconds: [String: Double] { state.withLock { $0.busScanSeconds } }

    /// Number of completed full scans.
    public var fullScans: Int { state.withLock { $0.fullScans } }

    /// Reads every point once (buses in parallel) and merges the results. Each bus's
    /// part is merged as soon as it arrives, and `onPart` sees the snapshot then: the
    /// effects need not wait for the slowest bus to act on a fast one's alarm.
    @discardableResult
    public func scanOnce(onPart: (@Sendable (PlantSnapshot) -> Void)? = nil) async -> PlantSnapshot {
        await withTaskGroup(of: (Int64, [String: Result<Double, DeviceError>]).self) { group in
            for ids in idsByBus where !ids.isEmpty {
                group.addTask { [io, clock] in
                    await io.readStamped(ids, priority: .scan, clock: clock)
                }
            }
            for await (t, results) in group {
                let snap = state.withLock { s in
                    Self.merge(results, at: t, into: &s.snapshot)
                    return s.snapshot
                }
                onPart?(snap)
            }
        }
        return state.withLock { s in
            s.fullScans += 1
            return s.snapshot
        }
    }

    /// Re-reads some points now (at agent priority: an agent's fresh re-read never
    /// delays a scan or a safe-state write), merges them, and returns the snapshot.
    public func refresh(_ ids: [String], priority: BusPriority = .agent) async -> PlantSnapshot {
        var groups: [String: [String]] = [:]
        for id in ids { groups[site.point(id)?.bus ?? "", default: []].append(id) }
        let parts = await withTaskGroup(of: (Int64, [String: Result<Double, DeviceError>]).self) { group in
            for ids in groups.values where !ids.isEmpty {
                group.addTask { [io, clock] in
                    await io.readStamped(ids, priority: priority, clock: clock)
                }
            }
            var out: [(Int64, [String: Result<Double, DeviceError>])] = []
            for await part in group { out.append(part) }
            return out
        }
        return state.withLock { s in
            for (t, results) in parts { Self.merge(results, at: t, into: &s.snapshot) }
            return s.snapshot
        }
    }

    /// Re-reads some points so that their readings are as young as possible together: the
    /// points of slow buses (a last scan read longer than a quarter of the scan interval) first,
    /// then the fast ones, so the fast readings are not already old when the slow ones arrive.
    public func refreshAligned(_ ids: [String], priority: BusPriority = .agent) async -> PlantSnapshot {
        let quarter = max(1, site.timing.scanIntervalMs / 4)
        let durations = state.withLock { $0.busReadMs }
        var slow: [String] = [], fast: [String] = []
        for id in ids {
            let bus = site.point(id)?.bus ?? ""
            if durations[bus, default: 0] > quarter { slow.append(id) } else { fast.append(id) }
        }
        guard !slow.isEmpty, !fast.isEmpty else { return await refresh(ids, priority: priority) }
        _ = await refresh(slow, priority: priority)
        return await refresh(fast, priority: priority)
    }

    /// Merges a value read outside the scan (a write's read-back), stamped with when that
    /// exchange started, so `points.read` shows a write at once instead of after the next scan.
    public func record(_ id: String, readBack value: Double, at t: Int64) {
        state.withLock { Self.merge([id: .success(value)], at: t, into: &$0.snapshot) }
    }

    /// Scans until the task is cancelled: each bus in its own loop, every
    /// `site.timing.scanIntervalMs`, so a slow device delays only its own bus and never
    /// the fire panel's. `onPart` runs after each bus read is merged; `onScan` after every
    /// bus has been read again since the last full scan (a "full scan": what readiness and
    /// the watchdog follow, so the watchdog stops when any bus stops completing reads).
    /// Neither may wait for agent work.
    public func run(onPart: (@Sendable (PlantSnapshot) -> Void)? = nil,
                    onScan: @escaping @Sendable (PlantSnapshot) async -> Void) async {
        let interval = max(1, site.timing.scanIntervalMs)
        let buses = idsByBus.filter { !$0.isEmpty }
        state.withLock { s in
            s.busDone = Array(repeating: 0, count: buses.count)
            s.busMark = s.busDone
        }
        await withTaskGroup(of: Void.self) { group in
            for (k, ids) in buses.enumerated() {
                group.addTask { [io, clock] in
                    while !Task.isCancelled {
                        let started = monotonicMillis()
                        let startedNs = Monotonic.nanoseconds()
                        let (t, results) = await io.readStamped(ids, priority: .scan, clock: clock)
                        let took = clock() - t
                        let scanSeconds = Double(Monotonic.nanoseconds() &- startedNs) / 1e9
                        let bus = self.site.point(ids[0])?.bus ?? ""
                        let (snap, full) = self.state.withLock { s -> (PlantSnapshot, Bool) in
                            Self.merge(results, at: t, into: &s.snapshot)
                            s.busReadMs[bus] = took
                            s.busScanSeconds[bus] = scanSeconds
                            s.busDone[k] += 1
                            let full = zip(s.busDone, s.busMark).allSatisfy { $0 > $1 }
                            if full { s.busMark = s.busDone }
                            if full { s.fullScans += 1 }
                            return (s.snapshot, full)
                        }
                        onPart?(snap)
                        if full { await onScan(snap) }
                        let wait = interval - (monotonicMillis() - started)
                        if wait > 0 {
                            do { try await Task.sleep(for: .milliseconds(wait)) } catch { break }
                        } else {
                            await Task.yield()
                        }
                    }
                }
            }
        }
    }

    static func merge(_ results: [String: Result<Double, DeviceError>], at t: Int64, into snap: inout PlantSnapshot) {
        PlantRules.merge(results, at: t, into: &snap)
    }
}
