/// What a BACnet point's read means for the interlock, as pure functions of what was read:
/// the value that takes effect through the priority array, whether an input can be believed,
/// and what a write at the agent priority achieved (issue 17, §10).

extension BACnetStatusFlags {
    /// Status_Flags as read (a BitString of at least four bits: in-alarm, fault, overridden,
    /// out-of-service); nil for anything else.
    public init?(_ v: BACnetValue) {
        guard case .bitString(let b) = v, b.count >= 4 else { return nil }
        self.init(inAlarm: b[0], fault: b[1], overridden: b[2], outOfService: b[3])
    }

    public var bitString: BACnetValue { .bitString([inAlarm, fault, overridden, outOfService]) }
}

/// How an engineering value travels as a Present_Value of each object type, and back.
public enum BACnetEncoding {
    /// The value `v` would take effect as on an object of `type` (the value decided on is the
    /// value written): analog objects carry a Real, so 22.1 is 22.100000381...; binary objects
    /// 0 or 1; multi-state objects 1...2^32-1. Nil if it cannot be encoded.
    public static func quantize(_ v: Double, for type: BACnetObjectType) -> Double? {
        encode(v, for: type)?.number
    }

    /// The Present_Value to write for `v` on an object of `type`; nil if not representable.
    public static func encode(_ v: Double, for type: BACnetObjectType) -> BACnetValue? {
        guard v.isFinite else { return nil }
        switch type {
        case .analogInput, .analogOutput, .analogValue, .largeAnalogValue:
            let f = Float(v)
            return f.isFinite ? .real(f) : nil
        case .binaryInput, .binaryOutput, .binaryValue:
            return v == 0 ? .enumerated(0) : v == 1 ? .enumerated(1) : nil
        case .multiStateInput, .multiStateOutput, .multiStateValue:
            guard v >= 1, v <= Double(UInt32.max), v.rounded() == v else { return nil }
            return .unsigned(UInt64(v))
        case .integerValue:
            guard v >= Double(Int32.min), v <= Double(Int32.max), v.rounded() == v else { return nil }
            return .signed(Int64(v))
        case .positiveIntegerValue:
            guard v >= 0, v <= Double(UInt32.max), v.rounded() == v else { return nil }
            return .unsigned(UInt64(v))
        default:
            return nil
        }
    }
}

/// What a write achieved, decided on the Present_Value and priority array read back.
public enum BACnetWriteOutcome: Sendable, Hashable, CustomStringConvertible {
    /// The agent's slot holds the value and it is the value in effect.
    case executed(Double)
    /// The agent's slot holds the value, but a higher priority holds another: "written, but
    /// overridden at priority N" (never reported as executed).
    case overridden(at: BACnetPriority, effective: Double?)
    /// The agent's slot is empty (a release), and this is the value now in effect, from
    /// priority `from` or (nil) from Relinquish_Default.
    case relinquished(effective: Double?, from: BACnetPriority?)
    /// The agent's slot does not hold what was written (or the object is not commandable).
    case notHeld(String)

    public var description: String {
        switch self {
        case .executed(let v): return "executed at \(v)"
        case .overridden(let p, let e): return "written, but overridden at priority \(p) (in effect: \(e.map { "\($0)" } ?? "unknown"))"
        case .relinquished(let e, let p): return "relinquished; in effect: \(e.map { "\($0)" } ?? "unknown") from \(p.map { "priority \($0)" } ?? "relinquish-default")"
        case .notHeld(let m): return "not held: \(m)"
        }
    }
}

/// One point read from a BACnet device with what the interlock needs to judge it.
public struct BACnetPointReading: Sendable, Hashable {
    public var address: BACnetPointAddress
    /// The property read (normally Present_Value).
    public var value: BACnetValue
    public var statusFlags: BACnetValue?
    public var reliability: BACnetValue?
    /// The 16 slots of Priority_Array (`.null` = empty), when read.
    public var priorityArray: [BACnetValue]?
    public var relinquishDefault: BACnetValue?

    public init(address: BACnetPointAddress, value: BACnetValue, statusFlags: BACnetValue? = nil, reliability: BACnetValue? = nil,
                priorityArray: [BACnetValue]? = nil, relinquishDefault: BACnetValue? = nil) {
        self.address = address
        self.value = value
        self.statusFlags = statusFlags
        self.reliability = reliability
        self.priorityArray = priorityArray
        self.relinquishDefault = relinquishDefault
    }

    /// The highest priority whose slot is not empty, if the priority array was read and is well formed.
    public var activePriority: BACnetPriority? {
        guard let pa = priorityArray, pa.count == 16 else { return nil }
        return pa.firstIndex { $0 != .null }.flatMap { BACnetPriority($0 + 1) }
    }

    /// The value that takes effect: the highest non-empty slot, else Relinquish_Default. Nil when
    /// the priority array was not read or is not 16 slots (then nothing can be said).
    public var effective: BACnetValue? {
        guard let pa = priorityArray, pa.count == 16 else { return nil }
        if let p = activePriority { return pa[p.arraySlot] }
        return relinquishDefault
    }

    /// Why this reading, as an input, proves nothing (RL-0): Status_Flags with fault, overridden
    /// or out-of-service, a Reliability other than no-fault-detected, either of them asked for
    /// and not a well-formed value, or a Present_Value that is not a number. Nil: believable.
    public func unknownAsInput(statusRequired: Bool = true) -> String? {
        if statusRequired || statusFlags != nil {
            guard let sf = statusFlags.flatMap(BACnetStatusFlags.init) else { return "status-flags missing or malformed" }
            if sf.makesInputUnknown { return "status-flags \(sf)" }
        }
        if statusRequired || reliability != nil {
            guard case .enumerated(let r)? = reliability else { return "reliability missing or malformed" }
            if r != BACnetReliability.noFaultDetected { return "reliability \(r)" }
        }
        guard value.number != nil else { return "present-value \(value) is not a number" }
        return nil
    }

    /// What a write of `written` (nil: a release, NULL) at `priority` achieved, judged on this
    /// read-back (Present_Value, Priority_Array, Relinquish_Default read after the write).
    public func outcome(of written: BACnetValue?, at priority: BACnetPriority) -> BACnetWriteOutcome {
        guard let pa = priorityArray, pa.count == 16 else { return .notHeld("no 16-slot priority array read back") }
        let slot = pa[priority.arraySlot]
        let eff = effective?.number
        guard let written else {
            guard slot == .null else { return .notHeld("priority \(priority) still holds \(slot)") }
            return .relinquished(effective: eff, from: activePriority)
        }
        guard Self.same(slot, written) else { return .notHeld("priority \(priority) holds \(slot), wrote \(written)") }
        if let p = activePriority, p < priority { return .overridden(at: p, effective: eff) }
        guard let v = value.number, let w = written.number, v == w else {
            return .notHeld("present-value \(value) while priority \(priority) holds \(written)")
        }
        return .executed(v)
    }

    /// Two values equal as numbers when both are numbers (a device may answer Enumerated for a
    /// binary written as Enumerated, or widen an Unsigned), else exactly.
    static func same(_ a: BACnetValue, _ b: BACnetValue) -> Bool {
        if let x = a.number, let y = b.number { return x == y }
        return a == b
    }
}
