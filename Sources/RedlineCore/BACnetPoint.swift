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

    /// The command state read, in numbers, for the rules of `BACnetCommanding` (the one home of
    /// priority-array semantics): nil when the priority array was not read, is not 16 slots, or
    /// holds anything but numbers and NULL, or Relinquish_Default is not a number.
    public var commandable: BACnetCommandable? {
        guard let pa = priorityArray, let rd = relinquishDefault?.number else { return nil }
        var slots: [Double?] = []
        for v in pa {
            if v == .null { slots.append(nil) } else if let n = v.number { slots.append(n) } else { return nil }
        }
        return BACnetPriorityArray(slots).map { BACnetCommandable(priorityArray: $0, relinquishDefault: rd) }
    }

    /// The highest priority whose slot is not empty (nil: none, or no well-formed command state).
    public var activePriority: BACnetPriority? {
        guard let c = commandable, case .priority(let p) = BACnetCommanding.presentValue(c).source else { return nil }
        return p
    }

    /// The value that takes effect (`BACnetCommanding.presentValue`); nil when nothing can be said.
    public var effective: Double? { commandable.map { BACnetCommanding.presentValue($0).value } }

    /// Why this reading, as an input, proves nothing (RL-0), by `BACnetInputTrust.distrust`:
    /// Status_Flags not read or not four bits, a Reliability that is not an Enumerated, or a
    /// Present_Value that is not a number, besides what `distrust` says. Nil: believable.
    public func unknownAsInput() -> String? {
        let flags = statusFlags.flatMap(BACnetStatusFlags.init)
        if statusFlags != nil, flags == nil { return "Status_Flags malformed: \(statusFlags!)" }
        var rel: UInt32?
        if let r = reliability {
            guard case .enumerated(let e) = r else { return "Reliability malformed: \(r)" }
            rel = e
        }
        if let why = BACnetInputTrust.distrust(statusFlags: flags, reliability: rel) { return why }
        guard value.number != nil else { return "Present_Value \(value) is not a number" }
        return nil
    }

    /// What a write of `written` (nil: a release, NULL) at `priority` achieved, judged by
    /// `BACnetCommanding.readBack` on this read-back (Present_Value, Priority_Array and
    /// Relinquish_Default read after the write).
    public func outcome(of written: BACnetValue?, at priority: BACnetPriority) -> BACnetReadBack {
        guard let c = commandable else { return .mismatch("no 16-slot priority array with a Relinquish_Default read back") }
        let request: BACnetCommand
        if let written {
            guard let w = written.number else { return .mismatch("wrote \(written), which is not a number") }
            request = .write(w)
        } else {
            request = .relinquish
        }
        return BACnetCommanding.readBack(request, at: priority, after: c, presentValue: value.number)
    }
}
