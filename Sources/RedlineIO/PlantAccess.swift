import Logging
import RedlineCore

/// The plant seam: the one door through which the daemon reads fresh values, writes
/// outputs and records what it wrote (docs/DESIGN.md §1.4).
///
/// Modelled on NIO's `Channel`/`EmbeddedChannel`: the daemon (`Engine`, `Arbiter`,
/// `EffectsRunner`) holds an `any PlantAccess` and never knows which plant it has.
///
/// - `BusPlant` (here) is the real one: a `Scanner` over a `PlantIO`, one thread per bus
///   owning its libmodbus or libgpiod context.
/// - `MemoryPlant` (module `RedlineTesting`) holds values in memory and scans when a test
///   says so, on a manual clock: the daemon's behaviour, effects, approvals, quarantine and
///   the red-team corpus run in process with it, fast and without root.
///
/// What is checked on the way (unknown points, writes to inputs, physical envelopes,
/// device-level failure propagation, a newer reading never overwritten by an older one)
/// has one home, `PlantRules`, which both implementations apply.
public protocol PlantAccess: Sendable {
    var site: Site { get }

    /// The latest snapshot (every point's last reading, its time and whether it faulted).
    var snapshot: PlantSnapshot { get }

    /// Device jobs submitted so far, by priority (for `status`).
    var jobsSubmitted: [BusPriority: Int] { get }

    /// How long each bus's last scan took, in seconds, by bus id (for `status` and the
    /// metrics); a bus not scanned yet is absent.
    var lastScanSeconds: [String: Double] { get }

    /// Re-reads some points now, so that their readings are as young as possible together,
    /// merges them, and returns the snapshot (the arbiter's fresh re-read).
    func refreshAligned(_ ids: [String], priority: BusPriority) async -> PlantSnapshot

    /// Writes one output and reads it back; success carries the read-back value. `check`,
    /// if given, runs immediately before the write goes out (on the bus thread, for the real
    /// plant); a non-nil answer withholds the write (`.withheld`).
    func write(_ id: String, value: Double, priority: BusPriority,
               guard check: (@Sendable () -> String?)?) async -> Result<Double, DeviceError>

    /// The command state of a BACnet output (Priority_Array and Relinquish_Default), read now
    /// (nil: the object has none); other outputs answer `.unsupported`.
    func commandState(_ id: String, priority: BusPriority) async -> Result<BACnetCommandable?, DeviceError>

    /// Releases the agents' command of a BACnet output (NULL at the agents' priority) and reads
    /// it back; success carries the value in effect after. `check` runs immediately before the
    /// release goes out (on the bus thread, for the real plant), given the value the release
    /// will put in effect as read in the same job; a non-nil answer withholds it (`.withheld`).
    /// Other outputs answer `.unsupported`: a register or a line has no command to release.
    func release(_ id: String, priority: BusPriority, guard check: (@Sendable (Double) -> String?)?) async -> Result<Double, DeviceError>

    /// Merges a value read outside the scan (a write's read-back), stamped with when that
    /// exchange started.
    func record(_ id: String, readBack value: Double, at t: Int64)

    /// Scans until the task is cancelled. `onPart` runs after each bus's part of a scan is
    /// merged, `onScan` after every bus has been read again since the last full scan.
    /// Neither may wait for agent work.
    func run(onPart: (@Sendable (PlantSnapshot) -> Void)?, onScan: @escaping @Sendable (PlantSnapshot) async -> Void) async
}

extension PlantAccess {
    public func refreshAligned(_ ids: [String]) async -> PlantSnapshot { await refreshAligned(ids, priority: .agent) }

    public func write(_ id: String, value: Double, priority: BusPriority = .agent) async -> Result<Double, DeviceError> {
        await write(id, value: value, priority: priority, guard: nil)
    }
}

/// The checks every plant applies to what it reads and writes: one home, used by
/// `PlantIO` (and so `BusPlant`) and by the memory plant of `RedlineTesting`.
public enum PlantRules {
    /// Why a write of `value` to `id` must not be attempted at all, or nil.
    public static func refusal(site: Site, point id: String, value: Double) -> DeviceError? {
        guard let p = site.point(id) else { return .unsupported("unknown point \(id)") }
        guard p.role.isOutput else { return .unsupported("\(id) is an input") }
        guard value.isFinite, p.role.envelope.contains(value) else { return .outOfRange(value) }
        return nil
    }

    /// A write's read-back, refused when it is outside the point's physical range.
    public static func readBack(_ p: Point, _ v: Double) -> Result<Double, DeviceError> {
        guard v.isFinite, p.role.envelope.contains(v) else { return .failure(.outOfRange(v)) }
        return .success(v)
    }

    /// Raw read results after device-level failure propagation (a device-level error on any
    /// point of a device fails every point of that device read with it) and the physical
    /// envelopes (a non-finite or out-of-range value is `.outOfRange`).
    public struct Screened: Sendable {
        public var results: [String: Result<Double, DeviceError>]
        /// Devices read, and the device-level error of each that failed.
        public var devicesRead: Set<String>
        public var deviceErrors: [String: DeviceError]
    }

    public static func screen(_ raw: [String: Result<Double, DeviceError>], site: Site) -> Screened {
        var out = raw
        var deviceError: [String: DeviceError] = [:]
        var devicesRead = Set<String>()
        for (id, r) in raw {
            guard let p = site.point(id) else { continue }
            devicesRead.insert(p.device)
            if case .failure(let e) = r, e.isDeviceLevel, deviceError[p.device] == nil { deviceError[p.device] = e }
        }
        for (id, r) in raw {
            guard let p = site.point(id) else { continue }
            if let e = deviceError[p.device] {
                out[id] = .failure(e)
                continue
            }
            if case .success(let v) = r, !v.isFinite || !p.role.envelope.contains(v) {
                out[id] = .failure(.outOfRange(v))
            }
        }
        return Screened(results: out, devicesRead: devicesRead, deviceErrors: deviceError)
    }

    /// Merges read results stamped `t` into a snapshot. A success stores the value at `t`
    /// unless a newer good value is already there; a failure marks the point faulted and
    /// keeps its last good value and time for diagnosis.
    public static func merge(_ results: [String: Result<Double, DeviceError>], at t: Int64, into snap: inout PlantSnapshot) {
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

/// The real plant: the scanner and the bus threads of `PlantIO`, behind the seam.
public final class BusPlant: PlantAccess {
    public let io: PlantIO
    public let scanner: Scanner
    public var site: Site { io.site }

    /// Builds the bus workers; no thread is started and no device is touched until `start`.
    public init(site: Site, logger: Logger, clock: @escaping @Sendable () -> Int64 = monotonicMillis) {
        io = PlantIO(site: site, logger: logger)
        scanner = Scanner(site: site, io: io, logger: logger, clock: clock)
    }

    /// Starts one thread per bus.
    public func start() { io.start() }

    /// Stops the bus threads; queued requests still finish, later ones fail with `.closed`.
    public func shutdown() { io.shutdown() }

    public var snapshot: PlantSnapshot { scanner.snapshot }
    public var jobsSubmitted: [BusPriority: Int] { io.jobsSubmitted }
    public var lastScanSeconds: [String: Double] { scanner.lastScanSeconds }

    public func refreshAligned(_ ids: [String], priority: BusPriority) async -> PlantSnapshot {
        await scanner.refreshAligned(ids, priority: priority)
    }

    public func write(_ id: String, value: Double, priority: BusPriority,
                      guard check: (@Sendable () -> String?)?) async -> Result<Double, DeviceError> {
        await io.write(id, value: value, priority: priority, guard: check)
    }

    public func commandState(_ id: String, priority: BusPriority) async -> Result<BACnetCommandable?, DeviceError> {
        await io.commandState(id, priority: priority)
    }

    public func release(_ id: String, priority: BusPriority, guard check: (@Sendable (Double) -> String?)?) async -> Result<Double, DeviceError> {
        await io.release(id, priority: priority, guard: check)
    }

    public func record(_ id: String, readBack value: Double, at t: Int64) { scanner.record(id, readBack: value, at: t) }

    public func run(onPart: (@Sendable (PlantSnapshot) -> Void)?, onScan: @escaping @Sendable (PlantSnapshot) async -> Void) async {
        await scanner.run(onPart: onPart, onScan: onScan)
    }
}
