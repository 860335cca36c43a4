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
/// A line that cannot be requested (missing name, held by another consumer) does not stop
/// the others from being held: its point fails every access with the reason, and the
/// request is tried again on the next access. Only a chip that cannot be opened fails `init`.
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
    private var held: [String: Held] = [:]
    /// Why a point's line is not held (logged once per distinct reason).
    private var failed: [String: DeviceError] = [:]

    /// Opens `chip` (a name such as `gpiochip0`, a path, a label or a number) and requests
    /// the line of every GPIO point in `points`. Points with another binding are refused.
    public init(chip: String, points: [Point], logger: Logger) throws(DeviceError) {
        self.chipName = chip
        self.logger = logger
        redline_gpiod_clear_errno()
        guard let c = gpiod_chip_open_lookup(chip) else {
            throw .connection("cannot open GPIO chip \(chip): \(Self.lastError())")
        }
        self.chip = c
        for p in points { self.points[p.id] = p }
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
        let result = request(chip: chip, point: p, ref: ref, activeLow: activeLow)
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

    private func request(chip: OpaquePointer, point p: Point, ref: GPIOLine, activeLow: Bool) -> Result<Held, DeviceError> {
        redline_gpiod_clear_errno()
        let found: OpaquePointer?
        switch ref {
        case .offset(let o):
            guard o >= 0, o < Int(gpiod_chip_num_lines(chip)) else {
                return .failure(.connection("\(chipName) has no line \(o)"))
            }
            found = gpiod_chip_get_line(chip, UInt32(o))
        case .name(let n):
            found = gpiod_chip_find_line(chip, n)
        }
        guard let line = found else {
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
