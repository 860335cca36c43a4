import Logging
import RedlineCore
import Synchronization

/// Keeps the plant snapshot fresh: reads every point of the site (inputs and
/// outputs) each `site.timing.scanIntervalMs`.
///
/// A successful read stores the value with the time the scan started (the
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
    private let ids: [String]
    private let state = Mutex(State())

    private struct State {
        var snapshot = PlantSnapshot()
        var fullScans = 0
    }

    public init(site: Site, io: PlantIO, logger: Logger, clock: @escaping @Sendable () -> Int64 = monotonicMillis) {
        self.site = site
        self.io = io
        self.logger = logger
        self.clock = clock
        self.ids = site.points.map(\.id)
    }

    /// The latest snapshot.
    public var snapshot: PlantSnapshot { state.withLock { $0.snapshot } }

    /// Number of completed full scans.
    public var fullScans: Int { state.withLock { $0.fullScans } }

    /// Reads every point once and merges the results.
    @discardableResult
    public func scanOnce() async -> PlantSnapshot {
        let started = clock()
        let results = await io.read(ids)
        return state.withLock { s in
            Self.merge(results, at: started, into: &s.snapshot)
            s.fullScans += 1
            return s.snapshot
        }
    }

    /// Re-reads some points now, merges them, and returns the snapshot.
    public func refresh(_ ids: [String]) async -> PlantSnapshot {
        let started = clock()
        let results = await io.read(ids)
        return state.withLock { s in
            Self.merge(results, at: started, into: &s.snapshot)
            return s.snapshot
        }
    }

    /// Scans at the site's interval until the task is cancelled, calling `onScan` after each scan.
    public func run(onScan: @escaping @Sendable (PlantSnapshot) async -> Void) async {
        let interval = max(1, site.timing.scanIntervalMs)
        while !Task.isCancelled {
            let started = monotonicMillis()
            let snap = await scanOnce()
            await onScan(snap)
            let wait = interval - (monotonicMillis() - started)
            if wait > 0 {
                do { try await Task.sleep(for: .milliseconds(wait)) } catch { break }
            } else {
                await Task.yield()
            }
        }
    }

    static func merge(_ results: [String: Result<Double, DeviceError>], at t: Int64, into snap: inout PlantSnapshot) {
        for (id, r) in results {
            let old = snap.readings[id]
            switch r {
            case .success(let v):
                // A slower, older read never overwrites a newer good value.
                if let old, !old.faulted, let at = old.at, at > t { continue }
                snap.readings[id] = Reading(value: v, at: t)
            case .failure:
                snap.readings[id] = Reading(value: old?.value, at: old?.at, faulted: true)
            }
        }
    }
}
