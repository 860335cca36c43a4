import Logging
import RedlineCore

/// Why a device access failed. Every one of these turns the affected inputs `fault`.
public enum DeviceError: Error, Sendable, Hashable, CustomStringConvertible {
    /// Could not connect or the connection dropped.
    case connection(String)
    /// No (complete) response within the bus's response timeout.
    case timeout
    /// The device answered with a Modbus exception code.
    case exception(code: Int, String)
    /// A BACnet device answered with an Error, Reject or Abort PDU, or a reply the codec
    /// refuses (segmented, not an answer to the request, malformed).
    case bacnet(BACnetFault)
    /// The response was malformed: wrong unit id, byte count, CRC, function code...
    case malformed(String)
    /// A write completed but reading it back gave another value.
    case readBackMismatch(wrote: Double, read: Double)
    /// The device reported a value outside the role's physical range.
    case outOfRange(Double)
    /// The operation is not possible on this point (for example, writing an input table).
    case unsupported(String)
    /// The backend has been shut down.
    case closed
    /// The write was not sent: its guard, checked on the bus thread just before the
    /// write would go on the wire, refused it (for example, the decision's readings
    /// had grown too old, or a safe-state effect now drives the output).
    case withheld(String)
    /// A BACnet write landed in the agent's slot of the priority array, but a higher priority
    /// (a person at 8, life safety...) holds the object: the value in effect is not the one
    /// written. Never an executed write.
    case overridden(priority: Int, effective: Double?)
    /// The device answered, but says its value proves nothing (a BACnet input whose
    /// Status_Flags show fault, overridden or out-of-service, or whose Reliability is not
    /// no-fault-detected): the point is unknown (RL-0); the device itself is fine.
    case untrusted(String)

    public var description: String {
        switch self {
        case .connection(let m): return "connection failed: \(m)"
        case .timeout: return "device did not answer in time"
        case .exception(let c, let m): return "Modbus exception \(c) (\(m))"
        case .bacnet(let f): return f.description
        case .malformed(let m): return "malformed response: \(m)"
        case .readBackMismatch(let w, let r): return "read-back mismatch: wrote \(fmt(w)), read \(fmt(r))"
        case .outOfRange(let v): return "value \(fmt(v)) outside the physical range"
        case .unsupported(let m): return "unsupported: \(m)"
        case .closed: return "device access is shut down"
        case .withheld(let m): return "not sent: \(m)"
        case .overridden(let p, let e): return "written, but overridden at priority \(p): the value in effect is \(e.map(fmt) ?? "unknown")"
        case .untrusted(let m): return "value not trusted: \(m)"
        }
    }
}

/// A bus's blocking device access. Every call happens on the bus's own thread,
/// which owns the underlying C context (libmodbus or libgpiod); never on the
/// cooperative pool.
protocol BusBackend: AnyObject {
    /// Reads points of this bus, one result per point id (engineering values).
    func read(_ points: [Point]) -> [String: Result<Double, DeviceError>]
    /// Writes one output, then reads it back. Success carries the read-back value.
    func write(_ point: Point, value: Double) -> Result<Double, DeviceError>
    /// The command state of an output: its Priority_Array and Relinquish_Default (BACnet), or
    /// nil for an object that has none.
    func commandState(_ point: Point) -> Result<BACnetCommandable?, DeviceError>
    /// Releases the agents' command of an output (BACnet: NULL at the agents' priority, and only
    /// there), then reads it back. `check` runs just before the release goes on the wire, with
    /// the value the release will then put in effect below any higher priority (read from the
    /// device in the same job); a non-nil answer withholds it (`.withheld`). Success carries
    /// Present_Value after the release.
    func release(_ point: Point, check: (Double) -> String?) -> Result<Double, DeviceError>
    /// Releases the context. Called once, on the bus thread.
    func close()
}

extension BusBackend {
    /// A Modbus register or coil, or a GPIO line, holds one value, whoever wrote it: there is no
    /// command of the agents' to release, only a value to write.
    func commandState(_ point: Point) -> Result<BACnetCommandable?, DeviceError> {
        .failure(.unsupported("\(point.id) has no priority array: only BACnet outputs are released"))
    }

    func release(_ point: Point, check: (Double) -> String?) -> Result<Double, DeviceError> {
        .failure(.unsupported("\(point.id) has no priority array to release: write its value instead"))
    }
}
