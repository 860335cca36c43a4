import CGPIOD
import Logging
import RedlineCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// GPIO lines of one chip through libgpiod v1 (1.6).
///
/// Every line of the bus's points is requested once, with consumer `redline`, and held
/// until `close()` (normally the end of the process): a released line can change state.
/// Outputs are requested with their role's safe value (0 where the role has none) as the
/// initial value, so a door lock is released from the moment the daemon holds it.
/// `activeLow` bindings are handled by the kernel (libgpiod's active-low flag): values
/// read and written here are always logical.
///
/// Lines bound by name are resolved to offsets against the chip once, when the backend is
/// made (`resolveLines`): a name no line carries, a name several lines carry, an offset the
/// chip does not have, and a line two points resolve onto (by offset or by two names) are
/// refused for good, and the point fails every access. The daemon makes the same check at
/// start-up over all GPIO buses (`startupProblems`) and refuses to start on any of them.
///
/// A line that cannot be requested (held by another consumer) does not stop the others from
/// being held: its point fails every access with the reason, and the request is tried again
/// on the next access. Only a chip that cannot be opened fails `init`.
///
/// Not thread-safe: every call, `init` included, happens on the bus's own thread.
public final class GPIOBackend: BusBackend {
    public static let consumer = "redline"

    private struct Held {
        let line: OpaquePointer
        let isOutput: Bool
    }

    private let chipName: String
    private var chip: OpaquePointer?
    private let logger: Logger
    private var points: [String: Point] = [:]
    /// The offset each point's line resolved to, when the backend was made.
    private var offsets: [String: Int] = [:]
    /// Points whose binding was refused when the backend was made (never retried).
    private var refused: [String: DeviceError] = [:]
    private var held: [String: Held] = [:]
    /// Why a point's line is not held (logged once per distinct reason).
    private var failed: [String: DeviceError] = [:]

    /// Opens `chip` (a name such as `gpiochip0`, a path, a label or a number) and requests
    /// the line of every GPIO point in `points`. Points with another binding are refused.
    /// With `label`, the chip must carry that label (a renumbered chip is refused, not driven).
    public init(chip: String, label: String? = nil, points: [Point], logger: Logger) throws(DeviceError) {
        self.chipName = chip
        self.logger = logger
        let c: OpaquePointer
        switch GPIOChipLines.open(chip: chip) {
        case .success(let opened): c = opened
        case .failure(let e): throw e
        }
        if let label, let problem = GPIOChipLines(chip: c).labelMismatch(spelled: chip, expected: label) {
            gpiod_chip_close(c)
            throw .connection(problem)
        }
        self.chip = c
        for p in points { self.points[p.id] = p }
        let resolved = Self.resolveLines(points, on: GPIOChipLines(chip: c))
        offsets = resolved.offsets
        for (id, why) in resolved.refusals {
            refused[id] = .unsupported(why)
            logger.error("GPIO line binding refused", metadata: ["point": "\(id)", "error": "\(why)"])
        }
        // Outputs first: they matter most and should reach their safe value at once.
        for p in points.sorted(by: { ($0.role.isOutput ? 0 : 1, $0.id) < ($1.role.isOutput ? 0 : 1, $1.id) }) {
            _ = acquire(p)
        }
    }

    deinit {
        if let chip { gpiod_chip_close(chip) }
    }

    /// The point ids whose lines are currently held.
    public var heldPoints: [String] { held.keys.sorted() }

    public func read(_ points: [Point]) -> [String: Result<Double, DeviceError>] {
        var out: [String: Result<Double, DeviceError>] = [:]
        for p in points { out[p.id] = readOne(p) }
        return out
    }

    public func write(_ point: Point, value: Double) -> Result<Double, DeviceError> {
        guard point.role.isOutput else { return .failure(.unsupported("\(point.id) is an input")) }
        guard value == 0 || value == 1 else { return .failure(.outOfRange(value)) }
        let h: Held
        switch acquire(point) {
        case .failure(let e): return .failure(e)
        case .success(let x): h = x
        }
        redline_gpiod_clear_errno()
        if gpiod_line_set_value(h.line, value == 1 ? 1 : 0) != 0 {
            return .failure(.connection("set \(describe(point)): \(Self.lastError())"))
        }
        redline_gpiod_clear_errno()
        let back = gpiod_line_get_value(h.line)
        if back < 0 { return .failure(.connection("read back \(describe(point)): \(Self.lastError())")) }
        if Double(back) != value { return .failure(.readBackMismatch(wrote: value, read: Double(back))) }
        return .success(Double(back))
    }

    public func close() {
        if let chip {
            // Closing the chip releases every line requested from it.
            gpiod_chip_close(chip)
            logger.info("GPIO chip closed, lines released", metadata: ["chip": "\(chipName)"])
        }
        chip = nil
        held.removeAll()
    }

    // MARK: - private

    private func readOne(_ p: Point) -> Result<Double, DeviceError> {
        let h: Held
        switch acquire(p) {
        case .failure(let e): return .failure(e)
        case .success(let x): h = x
        }
        redline_gpiod_clear_errno()
        let v = gpiod_line_get_value(h.line)
        if v < 0 { return .failure(.connection("read \(describe(p)): \(Self.lastError())")) }
        return .success(Double(v))
    }

    /// The held line of a point, requesting it if it is not held yet.
    private func acquire(_ p: Point) -> Result<Held, DeviceError> {
        guard let chip else { return .failure(.closed) }
        if let h = held[p.id] { return .success(h) }
        guard let known = points[p.id], known.binding == p.binding else {
            return .failure(.unsupported("\(p.id) is not a point of GPIO bus on \(chipName)"))
        }
        guard case .gpio(let ref, let activeLow) = p.binding else {
            return .failure(.unsupported("\(p.id) is not bound to a GPIO line"))
        }
        if let why = refused[p.id] { return .failure(why) }
        guard let offset = offsets[p.id] else { return .failure(.unsupported("\(p.id): line \(ref) of \(chipName) was not resolved")) }
        let result = request(chip: chip, point: p, ref: ref, offset: offset, activeLow: activeLow)
        switch result {
        case .success(let h):
            held[p.id] = h
            if failed.removeValue(forKey: p.id) != nil {
                logger.notice("GPIO line now held", metadata: ["point": "\(p.id)", "line": "\(ref)"])
            }
        case .failure(let e):
            if failed[p.id] != e {
                logger.error("GPIO line not held", metadata: ["point": "\(p.id)", "line": "\(ref)", "error": "\(e)"])
            }
            failed[p.id] = e
        }
        return result
    }

    private func request(chip: OpaquePointer, point p: Point, ref: GPIOLine, offset o: Int, activeLow: Bool) -> Result<Held, DeviceError> {
        redline_gpiod_clear_errno()
        // By the offset resolved when the backend was made: the line checked is the line held.
        guard o >= 0, o < Int(gpiod_chip_num_lines(chip)) else {
            return .failure(.connection("\(chipName) has no line \(o)"))
        }
        guard let line = gpiod_chip_get_line(chip, UInt32(o)) else {
            return .failure(.connection("\(chipName) has no line \(ref): \(Self.lastError())"))
        }
        if let other = held.first(where: { $0.value.line == line }) {
            return .failure(.unsupported("line \(ref) of \(chipName) is already used by \(other.key)"))
        }
        redline_gpiod_clear_errno()
        let rc: Int32
        if p.role.isOutput {
            let initial: Int32 = (p.role.safeValue ?? 0) == 1 ? 1 : 0
            rc = redline_gpiod_request_output(line, Self.consumer, activeLow, initial)
        } else {
            rc = redline_gpiod_request_input(line, Self.consumer, activeLow)
        }
        if rc != 0 {
            return .failure(.connection("cannot request \(describe(p)): \(Self.lastError())"))
        }
        logger.debug("GPIO line held", metadata: [
            "point": "\(p.id)", "line": "\(ref)", "direction": "\(p.role.isOutput ? "output" : "input")",
        ])
        return .success(Held(line: line, isOutput: p.role.isOutput))
    }

    // MARK: - Resolving lines against the chip

    /// Resolves each point's line to an offset of `chip`. Refused (point id -> why): a name no
    /// line carries, a name several lines carry, an offset the chip does not have, and every
    /// point of a line that two or more points resolve onto (by offset, by name, or both).
    public static func resolveLines(_ points: [Point], on chip: GPIOChipLines) -> (offsets: [String: Int], refusals: [String: String]) {
        var offsets: [String: Int] = [:]
        var refusals: [String: String] = [:]
        for p in points.sorted(by: { $0.id < $1.id }) {
            guard case .gpio(let ref, _) = p.binding else {
                refusals[p.id] = "\(p.id) is not bound to a GPIO line"
                continue
            }
            switch ref {
            case .offset(let o):
                if o >= 0, o < chip.names.count { offsets[p.id] = o }
                else { refusals[p.id] = "\(p.id): \(chip.chip) has no line \(o) (it has \(chip.names.count) lines)" }
            case .name(let n):
                let hits = chip.names.indices.filter { chip.names[$0] == n }
                if hits.count == 1 { offsets[p.id] = hits[0] }
                else if hits.isEmpty { refusals[p.id] = "\(p.id): no line of \(chip.chip) is named '\(n)'" }
                else { refusals[p.id] = "\(p.id): \(hits.count) lines of \(chip.chip) are named '\(n)' (offsets \(hits.map(String.init).joined(separator: ", "))); bind it by offset" }
            }
        }
        var byOffset: [Int: [String]] = [:]
        for (id, o) in offsets { byOffset[o, default: []].append(id) }
        for (o, ids) in byOffset where ids.count > 1 {
            let spelled = ids.sorted().map { id -> String in
                let p = points.first { $0.id == id }
                if case .gpio(.name(let n), _)? = p?.binding { return "\(id) (named '\(n)')" }
                return "\(id) (offset \(o))"
            }
            for id in ids {
                offsets[id] = nil
                refusals[id] = "\(id): line \(o) of \(chip.chip) is bound more than once: \(spelled.joined(separator: ", "))"
            }
        }
        return (offsets, refusals)
    }

    /// The start-up check of every GPIO bus of a site against the real chips: one line per
    /// refusal (empty when every line resolves onto a line of its own). Buses whose chips are
    /// one chip (by libgpiod's name for it: `0`, `gpiochip0` and `/dev/gpiochip0` are one) are
    /// checked together. A chip the site names by label, or pins to a label with `label:`, must
    /// be there and carry it: no such chip, a label two chips carry, or a chip carrying another
    /// label is a refusal (Pi kernels renumber chips between releases). A chip named by number
    /// or device name that cannot be opened is a refusal only when a line on it is bound by name
    /// (offsets are checked again whenever the chip appears).
    public static func startupProblems(buses: [Bus], points: [Point]) -> [String] {
        var problems: [String] = []
        var byChip: [String: (chip: GPIOChipLines, buses: [String])] = [:]
        var order: [String] = []
        for bus in buses {
            guard case .gpio(let spelled) = bus.kind else { continue }
            let mine = points.filter { $0.bus == bus.id }
            switch GPIOChipLines.read(chip: spelled) {
            case .success(let lines):
                if let expected = bus.chipLabel, let problem = lines.labelMismatch(spelled: spelled, expected: expected) {
                    problems.append("GPIO bus '\(bus.id)': \(problem)")
                    continue
                }
                if byChip[lines.chip] == nil { order.append(lines.chip); byChip[lines.chip] = (lines, []) }
                byChip[lines.chip]!.buses.append(bus.id)
            case .failure(let why):
                let named = mine.filter { if case .gpio(.name, _) = $0.binding { return true } else { return false } }
                if case .label = GPIOChipName(spelled) {
                    // A label is the site's claim of which chip this is: no such chip is a mismatch.
                    problems.append("GPIO bus '\(bus.id)': \(why)")
                } else if let expected = bus.chipLabel {
                    problems.append("GPIO bus '\(bus.id)': \(why); the site requires it to be labelled '\(expected)'")
                } else if !named.isEmpty {
                    problems.append("GPIO bus '\(bus.id)': cannot resolve the line names of \(named.map(\.id).joined(separator: ", ")) against chip \(spelled): \(why)")
                }
            }
        }
        for chip in order {
            let (lines, busIDs) = byChip[chip]!
            let mine = points.filter { busIDs.contains($0.bus) }
            for (_, why) in resolveLines(mine, on: lines).refusals.sorted(by: { $0.key < $1.key }) {
                let via = busIDs.count > 1 ? " (buses \(busIDs.map { "'\($0)'" }.joined(separator: ", ")) are all \(chip))" : ""
                problems.append("GPIO: \(why)\(via)")
            }
        }
        return problems
    }

    private func describe(_ p: Point) -> String {
        if case .gpio(let ref, _) = p.binding { return "\(chipName) line \(ref) (\(p.id))" }
        return p.id
    }

    private static func lastError() -> String {
        let e = redline_gpiod_errno()
        guard e != 0, let s = strerror(e) else { return "unknown error" }
        return String(cString: s)
    }
}

/// The lines of a GPIO chip as libgpiod reports them: its name and each line's name by offset.
public struct GPIOChipLines: Sendable, Hashable {
    /// libgpiod's name of the chip (`gpiochip0`), whatever it was opened as.
    public var chip: String
    /// The chip's label (`pinctrl-rp1`, `gpio-sim.0-node0`): stable across kernel releases.
    public var label: String
    /// Line names by offset (`nil` for an unnamed line).
    public var names: [String?]

    public init(chip: String, label: String = "", names: [String?]) {
        self.chip = chip
        self.label = label
        self.names = names
    }

    /// Reads an open chip.
    init(chip c: OpaquePointer) {
        chip = String(cString: gpiod_chip_name(c))
        label = gpiod_chip_label(c).map { String(cString: $0) } ?? ""
        names = (0..<gpiod_chip_num_lines(c)).map { o in
            gpiod_chip_get_line(c, o).flatMap { gpiod_line_name($0) }.map { String(cString: $0) }
        }
    }

    /// Why this chip is not the one the site means, or nil when it carries `expected`.
    public func labelMismatch(spelled: String, expected: String) -> String? {
        guard label != expected else { return nil }
        return "GPIO chip \(spelled) (\(chip)) is labelled '\(label)', but the site requires '\(expected)'"
            + " (kernels renumber chips between releases: name the chip by its label, or fix the name)"
    }

    /// Opens `chip` as libgpiod looks it up (number, device name, path or label). A label must
    /// name exactly one chip: two chips carrying it are refused, never guessed between.
    static func open(chip: String) -> Result<OpaquePointer, DeviceError> {
        if case .label(let l) = GPIOChipName(chip) {
            let carriers = chipsLabelled(l)
            if carriers.count > 1 {
                return .failure(.connection("GPIO chip label '\(l)' is carried by \(carriers.count) chips (\(carriers.joined(separator: ", "))); name the chip by device name and pin it with `label:`"))
            }
            if carriers.isEmpty {
                return .failure(.connection("no GPIO chip is labelled '\(l)' (chips here: \(describeAll()))"))
            }
        }
        redline_gpiod_clear_errno()
        guard let c = gpiod_chip_open_lookup(chip) else {
            let e = redline_gpiod_errno()
            return .failure(.connection("cannot open GPIO chip \(chip): \(e != 0 ? String(cString: strerror(e)) : "unknown error")"))
        }
        return .success(c)
    }

    /// Opens `chip` (name, path, label or number, as libgpiod looks it up), reads it and closes it.
    public static func read(chip: String) -> Result<GPIOChipLines, DeviceError> {
        switch open(chip: chip) {
        case .failure(let e): return .failure(e)
        case .success(let c):
            defer { gpiod_chip_close(c) }
            return .success(GPIOChipLines(chip: c))
        }
    }

    /// Every chip of this host as `name ('label')`, for error messages.
    static func describeAll() -> String {
        let all = allChips()
        return all.isEmpty ? "none" : all.map { "\($0.name) ('\($0.label)')" }.joined(separator: ", ")
    }

    /// The names of the chips carrying `label`.
    static func chipsLabelled(_ label: String) -> [String] {
        allChips().filter { $0.label == label }.map(\.name)
    }

    /// Every GPIO chip of this host: (libgpiod name, label), by libgpiod's iterator.
    static func allChips() -> [(name: String, label: String)] {
        guard let it = gpiod_chip_iter_new() else { return [] }
        defer { gpiod_chip_iter_free(it) }
        var out: [(name: String, label: String)] = []
        while let c = gpiod_chip_iter_next(it) {
            out.append((String(cString: gpiod_chip_name(c)), gpiod_chip_label(c).map { String(cString: $0) } ?? ""))
        }
        return out
    }
}
