/// BACnet's own ways of going wrong, decided in the interlock (issue 17; docs/DESIGN.md §4.2, §10).
///
/// Pure and total, like the rest of RedlineCore: the priority array decides which value takes
/// effect, Status_Flags and Reliability decide whether an input proves anything, and only
/// Present_Value of an object type an agent may command is ever an agent's to write (RL-8).
/// The wire (RedlineIO) reads and writes; what the readings mean is decided here.

// MARK: - What an agent may write (RL-8)

extension BACnetObjectType {
    /// Object types whose Present_Value an agent's write may command: outputs and values.
    /// Inputs are read-only by protocol (their Present_Value is writable only out of service,
    /// which is exactly what must never happen); life-safety objects are commanded only through
    /// LifeSafetyOperation, which is never sent; a Command object runs actions; everything else
    /// (schedules, loops, files, devices, notification classes, access doors...) is not a point
    /// an agent's number can mean.
    public var agentCommandable: Bool {
        switch self {
        case .analogOutput, .analogValue, .binaryOutput, .binaryValue: return true
        default: return false
        }
    }

    /// Analog objects carry a REAL (IEEE 754 single precision) Present_Value.
    public var carriesReal: Bool {
        switch self {
        case .analogInput, .analogOutput, .analogValue: return true
        default: return false
        }
    }

    /// Binary objects carry BACnetBinaryPV: inactive (0) or active (1).
    public var carriesBinary: Bool {
        switch self {
        case .binaryInput, .binaryOutput, .binaryValue: return true
        default: return false
        }
    }

    /// Multi-state objects carry an Unsigned state number, 1...Number_Of_States.
    public var carriesState: Bool {
        switch self {
        case .multiStateInput, .multiStateOutput, .multiStateValue: return true
        default: return false
        }
    }
}

extension BACnetPointAddress {
    /// Why an agent's write may never target this address, or nil when it may (RL-8).
    ///
    /// Only Present_Value, of a whole (not indexed) property, of an object type an agent may
    /// command. Everything else is refused, and the properties the standard uses to make an
    /// input prove nothing (Out_Of_Service, Reliability), to decide the value behind the agent's
    /// slot (Priority_Array, Relinquish_Default) or to say who hears of an alarm (notification
    /// and event properties) are named as such.
    public var agentWriteRefusal: String? {
        if property.isAgentForbidden {
            return "\(property.yamlName) is never an agent's to write: \(Self.why(property))"
        }
        if property != .presentValue {
            return "agents write only present-value, not \(property.yamlName)"
        }
        if arrayIndex != nil { return "present-value is not an array; an array index cannot be written" }
        if !object.type.agentCommandable {
            return "\(object.type.yamlName) objects cannot be commanded by an agent"
                + (object.type.isLifeSafety ? " (life-safety objects answer only to LifeSafetyOperation, which Redline never sends)" : "")
        }
        return nil
    }

    static func why(_ p: BACnetPropertyId) -> String {
        switch p {
        case .outOfService, .reliability, .reliabilityEvaluationInhibit, .statusFlags, .eventState:
            return "it decides whether the object's value proves anything (an out-of-service input reads whatever anyone writes)"
        case .priorityArray, .relinquishDefault, .priorityForWriting, .currentCommandPriority, .valueSource,
             .commandTimeArray, .lastCommandTime:
            return "it decides which command takes effect, behind the agent's own priority"
        case .objectIdentifier, .objectName, .objectType, .objectList, .all, .zoneMembers, .memberOf, .doorMembers,
             .acceptedModes, .protocolServicesSupported, .segmentationSupported, .maxAPDULengthAccepted, .vendorIdentifier:
            return "it is the identity or structure of the device"
        default:
            return "it is an alarm or notification property (who is told of an alarm, when and about what)"
        }
    }
}

// MARK: - What lands on the device (§4.2)

public enum BACnetValueCodec {
    /// The value a BACnet object holds after `value` is written to its Present_Value, or nil
    /// when it cannot hold it at all: REAL rounds to single precision (and overflows), a binary
    /// object takes 0 or 1, a multi-state object a state number 1...4294967295.
    public static func quantized(_ value: Double, object: BACnetObjectType) -> Double? {
        guard value.isFinite else { return nil }
        if object.carriesBinary { return value == 0 || value == 1 ? value : nil }
        if object.carriesState {
            guard value >= 1, value <= Double(UInt32.max), value == value.rounded() else { return nil }
            return value
        }
        if object.carriesReal {
            let f = Float(value)
            guard f.isFinite else { return nil }
            return Double(f)
        }
        return nil
    }
}

// MARK: - Priority arrays: the value that will take effect

/// What an agent asks of a commandable point: a value at its priority, or a release (NULL at
/// its priority, and only there).
public enum BACnetCommand: Sendable, Hashable, CustomStringConvertible {
    case write(Double)
    case relinquish

    public var description: String {
        switch self {
        case .write(let v): return fmt(v)
        case .relinquish: return "release (NULL)"
        }
    }
}

/// A commandable object's Priority_Array as read: 16 slots, priority 1 first; nil is NULL.
public struct BACnetPriorityArray: Sendable, Hashable, CustomStringConvertible {
    public private(set) var slots: [Double?]

    /// nil unless exactly 16 slots (a device answering otherwise is answering something else).
    public init?(_ slots: [Double?]) {
        guard slots.count == BACnetPriority.range.count else { return nil }
        self.slots = slots
    }

    public static let empty = BACnetPriorityArray(slots: Array(repeating: nil, count: 16))
    private init(slots: [Double?]) { self.slots = slots }

    public subscript(_ p: BACnetPriority) -> Double? {
        get { slots[p.arraySlot] }
        set { slots[p.arraySlot] = newValue }
    }

    /// The highest priority (lowest level) holding a value, among `levels`.
    func firstHeld(in levels: ClosedRange<Int>) -> (BACnetPriority, Double)? {
        for level in levels {
            if let v = slots[level - 1], let p = BACnetPriority(level) { return (p, v) }
        }
        return nil
    }

    public var description: String {
        let held = slots.enumerated().compactMap { i, v in v.map { "\(i + 1):\(fmt($0))" } }
        return held.isEmpty ? "all NULL" : held.joined(separator: " ")
    }
}

/// The command state of a commandable object, as read from the device.
public struct BACnetCommandable: Sendable, Hashable {
    public var priorityArray: BACnetPriorityArray
    public var relinquishDefault: Double
    public init(priorityArray: BACnetPriorityArray, relinquishDefault: Double) {
        self.priorityArray = priorityArray
        self.relinquishDefault = relinquishDefault
    }
}

/// Where a Present_Value comes from.
public enum BACnetValueSource: Sendable, Hashable, CustomStringConvertible {
    case priority(BACnetPriority)
    case relinquishDefault
    /// The object has no priority array: the value written is the value.
    case direct

    public var description: String {
        switch self {
        case .priority(let p): return "priority \(p)"
        case .relinquishDefault: return "Relinquish_Default"
        case .direct: return "Present_Value"
        }
    }
}

/// What a command will do, decided before it is sent.
public struct BACnetEffect: Sendable, Hashable {
    /// The value the command puts in place at the agent's priority and below: the agent's own
    /// value, or on a release the next held priority below it or Relinquish_Default. It takes
    /// effect now when no higher priority holds a value, and the moment the higher ones are
    /// relinquished otherwise; red lines are decided on it, so an overridden write is never a
    /// latent way round them.
    public var decided: Double
    /// Where `decided` comes from.
    public var decidedSource: BACnetValueSource
    /// Present_Value right after the command.
    public var effective: Double
    public var effectiveSource: BACnetValueSource
    /// The higher priority that holds Present_Value over the agent's, if any.
    public var overriddenBy: BACnetPriority?

    /// In words, for the agent's answer and the audit record.
    public var explanation: String {
        if let p = overriddenBy {
            return "overridden at priority \(p): Present_Value stays \(fmt(effective)); \(fmt(decided)) (from \(decidedSource)) takes effect only when priority \(p) and every priority above the agent's are relinquished"
        }
        return "Present_Value becomes \(fmt(effective)) (from \(effectiveSource))"
    }
}

/// A read-back, judged against what was asked (issue 17: "written, but overridden at priority N"
/// is reported as such, never as executed at the requested value).
public enum BACnetReadBack: Sendable, Hashable, CustomStringConvertible {
    /// The agent's slot holds the request and Present_Value is it.
    case executed(value: Double)
    /// The agent's slot holds the request, but a higher priority holds Present_Value.
    case overridden(priority: BACnetPriority, presentValue: Double)
    /// The agent's slot is NULL and Present_Value is what the priorities below (or Relinquish_Default) give.
    case relinquished(presentValue: Double, source: BACnetValueSource)
    /// The device does not show what was asked: the write did not land as decided.
    case mismatch(String)

    public var isExecuted: Bool {
        switch self {
        case .executed, .relinquished: return true
        case .overridden, .mismatch: return false
        }
    }

    public var description: String {
        switch self {
        case .executed(let v): return "written and read back: Present_Value \(fmt(v))"
        case .overridden(let p, let v): return "written, but overridden at priority \(p): Present_Value is \(fmt(v))"
        case .relinquished(let v, let s): return "released; Present_Value is \(fmt(v)) (from \(s))"
        case .mismatch(let why): return "not as written: \(why)"
        }
    }
}

public enum BACnetCommanding {
    /// Present_Value of an object with this command state: the highest held priority, else
    /// Relinquish_Default (ASHRAE 135 §19.2).
    public static func presentValue(_ c: BACnetCommandable) -> (value: Double, source: BACnetValueSource) {
        if let (p, v) = c.priorityArray.firstHeld(in: BACnetPriority.range) { return (v, .priority(p)) }
        return (c.relinquishDefault, .relinquishDefault)
    }

    /// The command state after `request` at `priority`: the value in that slot, or NULL there. No other slot changes.
    public static func applying(_ request: BACnetCommand, at priority: BACnetPriority, to c: BACnetCommandable) -> BACnetCommandable {
        var out = c
        switch request {
        case .write(let v): out.priorityArray[priority] = v
        case .relinquish: out.priorityArray[priority] = nil
        }
        return out
    }

    /// What `request` at `priority` will do to an object in command state `c`; nil for a release
    /// of an object without a priority array (there is no slot to relinquish).
    public static func effect(of request: BACnetCommand, at priority: BACnetPriority, on c: BACnetCommandable?) -> BACnetEffect? {
        guard let c else {
            guard case .write(let v) = request else { return nil }
            return BACnetEffect(decided: v, decidedSource: .direct, effective: v, effectiveSource: .direct, overriddenBy: nil)
        }
        let after = applying(request, at: priority, to: c)
        let decided: (Double, BACnetValueSource)
        switch request {
        case .write(let v):
            decided = (v, .priority(priority))
        case .relinquish:
            let below = Int(priority.level) + 1
            if below <= BACnetPriority.range.upperBound, let (p, v) = after.priorityArray.firstHeld(in: below...BACnetPriority.range.upperBound) {
                decided = (v, .priority(p))
            } else {
                decided = (c.relinquishDefault, .relinquishDefault)
            }
        }
        let (now, source) = presentValue(after)
        var over: BACnetPriority?
        if priority.level > 1, let (p, _) = after.priorityArray.firstHeld(in: 1...(Int(priority.level) - 1)) { over = p }
        return BACnetEffect(decided: decided.0, decidedSource: decided.1, effective: now, effectiveSource: source, overriddenBy: over)
    }

    /// Judges a read-back of the Priority_Array and Relinquish_Default (hence Present_Value)
    /// after `request` at `priority`; the caller passes the request as decided (quantized).
    public static func readBack(_ request: BACnetCommand, at priority: BACnetPriority, after c: BACnetCommandable) -> BACnetReadBack {
        let (pv, source) = presentValue(c)
        let slot = c.priorityArray[priority]
        switch request {
        case .write(let v):
            guard let slot else { return .mismatch("the slot at priority \(priority) is NULL, not \(fmt(v))") }
            guard slot == v else { return .mismatch("the slot at priority \(priority) holds \(fmt(slot)), not \(fmt(v))") }
            if case .priority(let p) = source, p < priority { return .overridden(priority: p, presentValue: pv) }
            return pv == v ? .executed(value: v) : .mismatch("Present_Value is \(fmt(pv)), not \(fmt(v)), with no higher priority holding it")
        case .relinquish:
            if let slot { return .mismatch("the slot at priority \(priority) still holds \(fmt(slot))") }
            return .relinquished(presentValue: pv, source: source)
        }
    }
}

// MARK: - Inputs that prove nothing (RL-0)

public enum BACnetInputTrust {
    /// Why an input's value proves nothing about the plant, or nil when it may be believed.
    ///
    /// Status_Flags with fault, overridden or out-of-service set, or a Reliability other than
    /// no-fault-detected (0), make the value unknown: anyone may write the Present_Value of an
    /// out-of-service input, an overridden one is what a person set rather than what the sensor
    /// senses, and a faulted one is what the device says it cannot vouch for. Status_Flags not
    /// read is unknown too; Reliability is optional in the standard, and `nil` means the object
    /// has none (its fault flag then stands alone). In-alarm alone is not a fault: the value carries it.
    public static func distrust(statusFlags: BACnetStatusFlags?, reliability: UInt32?) -> String? {
        guard let f = statusFlags else { return "Status_Flags could not be read" }
        var why: [String] = []
        if f.fault { why.append("fault") }
        if f.overridden { why.append("overridden") }
        if f.outOfService { why.append("out-of-service") }
        if let r = reliability, r != BACnetReliability.noFaultDetected { why.append("Reliability \(r) (not no-fault-detected)") }
        return why.isEmpty ? nil : "Status_Flags/Reliability show " + why.joined(separator: ", ")
    }

    /// The reading of a BACnet input: good only when its value may be believed; otherwise a
    /// fault, which RL-0 turns into the input's dangerous value.
    public static func reading(value: Double?, at: Int64, statusFlags: BACnetStatusFlags?, reliability: UInt32?) -> Reading {
        guard let value, distrust(statusFlags: statusFlags, reliability: reliability) == nil else { return .fault }
        return .good(value, at: at)
    }
}

// MARK: - Life-safety objects map to the existing roles

/// BACnetLifeSafetyState (ASHRAE 135 §21), the Present_Value of Life Safety Point and Zone objects.
public enum BACnetLifeSafetyState {
    public static let quiet: UInt32 = 0
    /// Alarm states: pre-alarm, alarm, fault-pre-alarm, fault-alarm, holdup, duress, tamper-alarm,
    /// test-alarm, test-fault-alarm, local-alarm, general-alarm.
    static let alarm: Set<UInt32> = [1, 2, 4, 5, 9, 12, 13, 14, 15, 20, 21]
    /// Trouble states: fault, fault-pre-alarm, fault-alarm, not-ready, tamper, test-fault,
    /// test-fault-alarm, tamper-alarm, blocked, test-supervisory.
    static let trouble: Set<UInt32> = [3, 4, 5, 6, 8, 11, 12, 15, 19, 23]
    /// Every state the standard defines (0...23); others are proprietary and unknown here.
    static let defined: ClosedRange<UInt32> = 0...23

    /// The role's value (0 or 1) for a life-safety state, or nil when the state cannot be read
    /// as that role (unknown: RL-0 gives it the dangerous value).
    ///
    /// - `fire-alarm`, `gas-alarm`, `suppression-predischarge`, `suppression-discharged`: quiet is
    ///   0, an alarm state is 1, anything else (a fault without alarm, not-ready, test,
    ///   active, delayed, abnormal, a proprietary state) is unknown, so the zone is in alarm.
    /// - `fire-trouble`: a trouble state is 1, quiet and the other defined states 0.
    public static func value(_ state: UInt32, role: Role) -> Double? {
        if role == .fireTrouble {
            guard defined.contains(state) else { return nil }
            return trouble.contains(state) ? 1 : 0
        }
        guard role.isAlarmInput else { return nil }
        if state == quiet { return 0 }
        return alarm.contains(state) ? 1 : nil
    }

    /// Roles a life-safety object's Present_Value may carry.
    public static func carries(_ role: Role) -> Bool { role.isAlarmInput || role == .fireTrouble }
}
