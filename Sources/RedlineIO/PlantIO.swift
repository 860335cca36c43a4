import Logging
import RedlineCore
import RedlineSync

/// The daemon's hands and eyes on the plant: one thread per bus, each owning its
/// backend (libmodbus or libgpiod context). Async callers are bridged to the bus
/// threads with continuations; buses work in parallel, one bus's requests in order.
///
/// Fail closed: unknown points, writes to inputs, non-finite values, values
/// outside the role's envelope and any device error are errors, never guesses.
/// A device-level error (connection, timeout, exception, malformed frame) on any
/// point of a device fails every point of that device in the same read.
public final class PlantIO: Sendable {
    public let site: Site
    private let logger: Logger
    private let workers: [String: BusWorker]
    private let busPoints: [String: [Point]]
    private let deviceStates = Lock(DeviceStates())
    /// Bus jobs submitted, by priority: how much device work each kind of caller causes.
    private let jobCounts = Lock([Int](repeating: 0, count: BusPriority.allCases.count))

    /// Bus jobs (one per bus read, one per write) submitted so far, by priority.
    public var jobsSubmitted: [BusPriority: Int] {
        let c = jobCounts.withLock { $0 }
        return Dictionary(uniqueKeysWithValues: BusPriority.allCases.map { ($0, c[$0.rawValue]) })
    }

    private struct DeviceStates {
        /// Device id -> description of its current device-level fault (absent = ok).
        var device: [String: String] = [:]
        /// Point id -> description of its current value fault (absent = ok).
        var point: [String: String] = [:]
    }

    /// Builds the workers; no thread is started and no device is touched yet.
    public init(site: Site, logger: Logger) {
        self.site = site
        self.logger = logger
        var byBus: [String: [Point]] = [:]
        for p in site.points { byBus[p.bus, default: []].append(p) }
        busPoints = byBus
        var ws: [String: BusWorker] = [:]
        for bus in site.buses {
            let points = byBus[bus.id] ?? []
            var log = logger
            log[metadataKey: "bus"] = "\(bus.id)"
            let captured = log
            switch bus.kind {
            case .modbusTCP, .modbusRTU:
                ws[bus.id] = BusWorker(name: bus.id) { ModbusBackend(bus: bus, logger: captured) }
            case .gpio(let chip):
                ws[bus.id] = BusWorker(name: bus.id) { RetryingBackend(logger: captured) { () throws(DeviceError) -> any BusBackend in
                    try GPIOBackend(chip: chip, label: bus.chipLabel, points: points, logger: captured)
                } }
            case .bacnetIP(let address, let port):
                let priority = site.bacnet?.writePriority
                ws[bus.id] = BusWorker(name: bus.id) {
                    BACnetBackend(bus: bus, address: address, port: port, writePriority: priority, logger: captured)
                }
            }
        }
        workers = ws
    }

    /// Starts one thread per bus. Connections are made lazily, on first use.
    public func start() {
        for w in workers.values { w.start() }
    }

    /// Reads points by id, grouped per bus, buses in parallel. `priority` places the
    /// reads in each bus's queue: the scanner reads at `.scan`, an agent's fresh re-read at `.agent`.
    public func read(_ ids: [String], priority: BusPriority = .scan) async -> [String: Result<Double, DeviceError>] {
        await readStamped(ids, priority: priority, clock: monotonicMillis).results
    }

    /// As `read`, with the time (`clock`, read on the bus thread) the earliest of the bus
    /// jobs began its transactions: the conservative time of the values, without the
    /// time spent queued behind other work.
    public func readStamped(_ ids: [String], priority: BusPriority, clock: @escaping @Sendable () -> Int64)
        async -> (startedAt: Int64, results: [String: Result<Double, DeviceError>]) {
        var earliest = Int64.max
        var out: [String: Result<Double, DeviceError>] = [:]
        var perBus: [String: [Point]] = [:]
        var seen = Set<String>()
        for id in ids where seen.insert(id).inserted {
            guard let p = site.point(id) else { out[id] = .failure(.unsupported("unknown point \(id)")); continue }
            perBus[p.bus, default: []].append(p)
        }
        let jobs = perBus.compactMap { bus, points -> (BusWorker, [Point])? in
            if let w = workers[bus] { return (w, points) }
            for p in points { out[p.id] = .failure(.unsupported("bus \(bus) is not configured")) }
            return nil
        }
        jobCounts.withLock { $0[priority.rawValue] += jobs.count }
        await withTaskGroup(of: (Int64, [String: Result<Double, DeviceError>]).self) { group in
            for (worker, points) in jobs {
                group.addTask {
                    let closed = Dictionary(uniqueKeysWithValues: points.map { ($0.id, Result<Double, DeviceError>.failure(.closed)) })
                    return await worker.run(priority, (clock(), closed)) { backend in (clock(), backend.read(points)) }
                }
            }
            for await (t, part) in group {
                earliest = min(earliest, t)
                out.merge(part) { a, _ in a }
            }
        }
        for (_, points) in perBus {
            for p in points where out[p.id] == nil { out[p.id] = .failure(.malformed("no value returned")) }
        }
        return (earliest == Int64.max ? clock() : earliest, check(out))
    }

    /// Writes one output and reads it back; success carries the read-back value.
    ///
    /// `priority` places the write in its bus's queue (`.safety` for the daemon's own
    /// safe-state writes, which go before any queued agent work). `guard`, if given, runs
    /// on the bus thread immediately before the write goes on the wire; a non-nil answer
    /// withholds the write (`.withheld`), so a decision can be checked against what is
    /// true at the moment of actuation rather than when it was queued.
    public func write(_ id: String, value: Double, priority: BusPriority = .agent,
                      guard check: (@Sendable () -> String?)? = nil) async -> Result<Double, DeviceError> {
        if let refused = PlantRules.refusal(site: site, point: id, value: value) { return .failure(refused) }
        return await actuate(id, "write of \(fmt(value))", priority: priority) { p, backend in
            if let check, let why = check() { return .failure(.withheld(why)) }
            return backend.write(p, value: value)
        }
    }

    /// The command state of an output (Priority_Array and Relinquish_Default), read now;
    /// nil for an object without one.
    public func commandState(_ id: String, priority: BusPriority = .agent) async -> Result<BACnetCommandable?, DeviceError> {
        switch output(id) {
        case .failure(let e): return .failure(e)
        case .success(let (p, worker)):
            jobCounts.withLock { $0[priority.rawValue] += 1 }
            return await worker.run(priority, Result<BACnetCommandable?, DeviceError>.failure(.closed)) { $0.commandState(p) }
        }
    }

    /// Releases the agents' command of an output and reads it back; success carries the value
    /// in effect after. `guard`, if given, runs on the bus thread with the value the release
    /// will put in effect, read in the same job just before the release goes on the wire; a
    /// non-nil answer withholds it (`.withheld`).
    public func release(_ id: String, priority: BusPriority = .agent,
                        guard check: (@Sendable (Double) -> String?)? = nil) async -> Result<Double, DeviceError> {
        await actuate(id, "release", priority: priority) { p, backend in
            backend.release(p, check: { below in check?(below) })
        }
    }

    /// An output of a configured bus, or why not.
    private func output(_ id: String) -> Result<(Point, BusWorker), DeviceError> {
        guard let p = site.point(id) else { return .failure(.unsupported("unknown point \(id)")) }
        guard p.role.isOutput else { return .failure(.unsupported("\(id) is an input")) }
        guard let worker = workers[p.bus] else { return .failure(.unsupported("bus \(p.bus) is not configured")) }
        return .success((p, worker))
    }

    /// Runs one write or release on the output's bus thread; a read-back outside the physical
    /// range fails it, and every failure but a withheld one is logged.
    private func actuate(_ id: String, _ what: String, priority: BusPriority,
                         _ body: @escaping @Sendable (Point, any BusBackend) -> Result<Double, DeviceError>) async -> Result<Double, DeviceError> {
        let p: Point, worker: BusWorker
        switch output(id) {
        case .failure(let e): return .failure(e)
        case .success(let x): (p, worker) = x
        }
        jobCounts.withLock { $0[priority.rawValue] += 1 }
        let result = await worker.run(priority, Result<Double, DeviceError>.failure(.closed)) { body(p, $0) }
        switch result {
        case .success(let v):
            guard case .success = PlantRules.readBack(p, v) else {
                logger.warning("\(what) read back a value outside the physical range", metadata: ["point": "\(id)", "value": "\(fmt(v))"])
                return .failure(.outOfRange(v))
            }
        case .failure(.withheld):
            break
        case .failure where priority == .safety:
            // The daemon's own safe-state writes are re-asserted every scan: their caller logs
            // and audits a failure once per change, not once per attempt.
            break
        case .failure(let e):
            logger.warning("\(what) failed", metadata: ["point": "\(id)", "error": "\(e)"])
        }
        return result
    }

    /// Stops the bus threads; queued requests still finish, later ones fail with `.closed`.
    public func shutdown() {
        for w in workers.values { w.stop() }
    }

    /// Applies device-level failure propagation and physical envelopes, and logs
    /// each change of a device's (or a point's) state once.
    private func check(_ raw: [String: Result<Double, DeviceError>]) -> [String: Result<Double, DeviceError>] {
        let screened = PlantRules.screen(raw, site: site)
        let out = screened.results
        let deviceError = screened.deviceErrors
        let devicesRead = screened.devicesRead
        var pointFaults: [String: String?] = [:]
        for (id, r) in out {
            guard let p = site.point(id), deviceError[p.device] == nil else { continue }
            switch r {
            case .success: pointFaults[id] = .some(nil)
            case .failure(let e): pointFaults[id] = e.kind
            }
        }
        let (deviceChanges, pointChanges) = deviceStates.withLock { s -> ([(String, String?)], [(String, String?)]) in
            var dc: [(String, String?)] = []
            for d in devicesRead.sorted() {
                let now = deviceError[d].map { $0.kind }
                if s.device[d] != now { s.device[d] = now; dc.append((d, now)) }
            }
            var pc: [(String, String?)] = []
            for (id, now) in pointFaults.sorted(by: { $0.key < $1.key }) {
                if s.point[id] != now { s.point[id] = now; pc.append((id, now)) }
            }
            return (dc, pc)
        }
        for (d, state) in deviceChanges {
            if let state {
                let detail = deviceError[d].map { "\($0)" } ?? state
                logger.warning("device fault: its points read fault", metadata: ["device": "\(d)", "fault": "\(state)", "error": "\(detail)"])
            } else {
                logger.notice("device answering again", metadata: ["device": "\(d)"])
            }
        }
        for (id, state) in pointChanges {
            if let state {
                logger.warning("point fault", metadata: ["point": "\(id)", "error": "\(state)"])
            } else {
                logger.notice("point good again", metadata: ["point": "\(id)"])
            }
        }
        return out
    }
}

extension DeviceError {
    /// Errors that say the device itself is not answering properly.
    public var isDeviceLevel: Bool {
        switch self {
        case .connection, .timeout, .exception, .bacnet, .malformed, .closed: return true
        case .readBackMismatch, .outOfRange, .unsupported, .withheld, .overridden, .untrusted: return false
        }
    }

    /// A stable name of the kind of fault: the state that is logged once per change
    /// (a connection that fails first with "reset" and then with "refused" is one state).
    var kind: String {
        switch self {
        case .connection: return "connection failed"
        case .timeout: return "no answer in time"
        case .exception(let code, let name): return "Modbus exception \(code) (\(name))"
        case .malformed: return "malformed responses"
        case .bacnet(let f):
            switch f {
            case .error(let e): return "BACnet error (\(e))"
            case .reject(let r): return "BACnet reject (\(BACnetFault.rejectName(r)))"
            case .abort(let r, _): return "BACnet abort (\(BACnetFault.abortName(r)))"
            case .segmented: return "segmented replies"
            case .malformed, .notAnAnswer, .wrongInvokeId, .unsupported: return "malformed responses"
            }
        case .readBackMismatch: return "read-back mismatch"
        case .outOfRange: return "value outside the physical range"
        case .unsupported(let m): return "unsupported: \(m)"
        case .closed: return "device access is shut down"
        case .withheld: return "write withheld"
        case .overridden(let p, _): return "overridden at priority \(p)"
        case .untrusted(let m): return "value not trusted: \(m)"
        }
    }
}

/// Creates a backend on first use and retries a failed creation at most once a second.
final class RetryingBackend: BusBackend {
    typealias Make = () throws(DeviceError) -> any BusBackend
    private let make: Make
    private let logger: Logger
    private var inner: (any BusBackend)?
    private var lastError: DeviceError = .closed
    private var nextAttemptAt: Int64 = 0

    /// Tries to create the backend at once (on the bus thread), so that GPIO output
    /// lines are requested at their safe values when the I/O starts, not at first use.
    init(logger: Logger, make: @escaping Make) {
        self.logger = logger
        self.make = make
        if case .failure(let e) = backend() {
            logger.error("bus backend not available; retrying every second", metadata: ["error": "\(e)"])
        }
    }

    private func backend() -> Result<any BusBackend, DeviceError> {
        if let inner { return .success(inner) }
        let now = monotonicMillis()
        if now < nextAttemptAt { return .failure(lastError) }
        do throws(DeviceError) {
            let b = try make()
            inner = b
            return .success(b)
        } catch {
            lastError = error
            nextAttemptAt = now + 1000
            return .failure(error)
        }
    }

    func read(_ points: [Point]) -> [String: Result<Double, DeviceError>] {
        switch backend() {
        case .success(let b): return b.read(points)
        case .failure(let e): return Dictionary(uniqueKeysWithValues: points.map { ($0.id, .failure(e)) })
        }
    }

    func write(_ point: Point, value: Double) -> Result<Double, DeviceError> {
        switch backend() {
        case .success(let b): return b.write(point, value: value)
        case .failure(let e): return .failure(e)
        }
    }

    func commandState(_ point: Point) -> Result<BACnetCommandable?, DeviceError> {
        switch backend() {
        case .success(let b): return b.commandState(point)
        case .failure(let e): return .failure(e)
        }
    }

    func release(_ point: Point, check: (Double) -> String?) -> Result<Double, DeviceError> {
        switch backend() {
        case .success(let b): return b.release(point, check: check)
        case .failure(let e): return .failure(e)
        }
    }

    func close() { inner?.close(); inner = nil }
}
