/// BACnet value types shared by the site configuration (RedlineConfig), the policy and the
/// BACnet/IP wire (RedlineIO, redline-sim). Numbers are those of ASHRAE 135 (BACnetObjectType,
/// BACnetPropertyIdentifier); YAML spellings are the standard's own hyphenated names.
///
/// Closed vocabularies on purpose: a site may name only the object types and properties listed
/// here, so that nothing the interlock does not understand can be configured.

/// A BACnet object type (ASHRAE 135 BACnetObjectType), with its YAML spelling as `yamlName`.
public enum BACnetObjectType: UInt16, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    case analogInput = 0
    case analogOutput = 1
    case analogValue = 2
    case binaryInput = 3
    case binaryOutput = 4
    case binaryValue = 5
    case calendar = 6
    case command = 7
    case device = 8
    case eventEnrollment = 9
    case file = 10
    case group = 11
    case loop = 12
    case multiStateInput = 13
    case multiStateOutput = 14
    case notificationClass = 15
    case program = 16
    case schedule = 17
    case multiStateValue = 19
    case trendLog = 20
    case lifeSafetyPoint = 21
    case lifeSafetyZone = 22
    case accumulator = 23
    case accessDoor = 30
    case timer = 31
    case accessPoint = 33
    case accessZone = 36
    case integerValue = 45
    case largeAnalogValue = 46
    case positiveIntegerValue = 48
    case networkPort = 56

    /// The standard's spelling, as written in YAML: "analog-value", "life-safety-point"...
    public var yamlName: String {
        switch self {
        case .analogInput: return "analog-input"
        case .analogOutput: return "analog-output"
        case .analogValue: return "analog-value"
        case .binaryInput: return "binary-input"
        case .binaryOutput: return "binary-output"
        case .binaryValue: return "binary-value"
        case .calendar: return "calendar"
        case .command: return "command"
        case .device: return "device"
        case .eventEnrollment: return "event-enrollment"
        case .file: return "file"
        case .group: return "group"
        case .loop: return "loop"
        case .multiStateInput: return "multi-state-input"
        case .multiStateOutput: return "multi-state-output"
        case .notificationClass: return "notification-class"
        case .program: return "program"
        case .schedule: return "schedule"
        case .multiStateValue: return "multi-state-value"
        case .trendLog: return "trend-log"
        case .lifeSafetyPoint: return "life-safety-point"
        case .lifeSafetyZone: return "life-safety-zone"
        case .accumulator: return "accumulator"
        case .accessDoor: return "access-door"
        case .timer: return "timer"
        case .accessPoint: return "access-point"
        case .accessZone: return "access-zone"
        case .integerValue: return "integer-value"
        case .largeAnalogValue: return "large-analog-value"
        case .positiveIntegerValue: return "positive-integer-value"
        case .networkPort: return "network-port"
        }
    }

    /// The type spelled `name` in YAML, or nil.
    public init?(yamlName name: String) {
        guard let t = Self.allCases.first(where: { $0.yamlName == name }) else { return nil }
        self = t
    }

    /// Object types whose Present_Value is commanded through a priority array by the standard
    /// (analog/binary/multi-state outputs, access doors). Value objects (analog-value,
    /// binary-value, multi-state-value...) may or may not be commandable: a device says so by
    /// having a Priority_Array.
    public var alwaysCommandable: Bool {
        switch self {
        case .analogOutput, .binaryOutput, .multiStateOutput, .accessDoor: return true
        default: return false
        }
    }

    /// Life Safety Point and Life Safety Zone (issue 17: they map to the existing roles).
    public var isLifeSafety: Bool { self == .lifeSafetyPoint || self == .lifeSafetyZone }

    public var description: String { yamlName }
}

/// A BACnet property identifier (ASHRAE 135 BACnetPropertyIdentifier), with its YAML spelling.
public enum BACnetPropertyId: UInt32, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    case ackedTransitions = 0
    case ackRequired = 1
    case activeText = 4
    case alarmValue = 6
    case alarmValues = 7
    case all = 8
    case notificationClass = 17
    case covIncrement = 22
    case deadband = 25
    case descriptionText = 28
    case eventEnable = 35
    case eventState = 36
    case faultValues = 39
    case highLimit = 45
    case inactiveText = 46
    case limitEnable = 52
    case lowLimit = 59
    case maxAPDULengthAccepted = 62
    case maxPresValue = 65
    case minPresValue = 69
    case notifyType = 72
    case numberOfStates = 74
    case objectIdentifier = 75
    case objectList = 76
    case objectName = 77
    case objectType = 79
    case outOfService = 81
    case eventParameters = 83
    case polarity = 84
    case presentValue = 85
    case priority = 86
    case priorityArray = 87
    case priorityForWriting = 88
    case protocolServicesSupported = 97
    case recipientList = 102
    case reliability = 103
    case relinquishDefault = 104
    case segmentationSupported = 107
    case stateText = 110
    case statusFlags = 111
    case timeDelay = 113
    case units = 117
    case vendorIdentifier = 120
    case eventTimeStamps = 130
    case notificationThreshold = 137
    case directReading = 156
    case maintenanceRequired = 158
    case memberOf = 159
    case mode = 160
    case operationExpected = 161
    case silenced = 163
    case trackingValue = 164
    case zoneMembers = 165
    case lifeSafetyAlarmValues = 166
    case acceptedModes = 175
    case doorAlarmState = 226
    case doorMembers = 228
    case doorStatus = 231
    case lockStatus = 233
    case maskedAlarmValues = 234
    case securedStatus = 235
    case eventMessageTexts = 351
    case eventMessageTextsConfig = 352
    case eventDetectionEnable = 353
    case eventAlgorithmInhibit = 354
    case eventAlgorithmInhibitRef = 355
    case timeDelayNormal = 356
    case reliabilityEvaluationInhibit = 357
    case faultHighLimit = 388
    case faultLowLimit = 389
    case commandTimeArray = 430
    case currentCommandPriority = 431
    case lastCommandTime = 432
    case valueSource = 433

    /// The standard's spelling, as written in YAML: "present-value", "status-flags"...
    public var yamlName: String {
        switch self {
        case .ackedTransitions: return "acked-transitions"
        case .ackRequired: return "ack-required"
        case .activeText: return "active-text"
        case .alarmValue: return "alarm-value"
        case .alarmValues: return "alarm-values"
        case .all: return "all"
        case .notificationClass: return "notification-class"
        case .covIncrement: return "cov-increment"
        case .deadband: return "deadband"
        case .descriptionText: return "description"
        case .eventEnable: return "event-enable"
        case .eventState: return "event-state"
        case .faultValues: return "fault-values"
        case .highLimit: return "high-limit"
        case .inactiveText: return "inactive-text"
        case .limitEnable: return "limit-enable"
        case .lowLimit: return "low-limit"
        case .maxAPDULengthAccepted: return "max-apdu-length-accepted"
        case .maxPresValue: return "max-pres-value"
        case .minPresValue: return "min-pres-value"
        case .notifyType: return "notify-type"
        case .numberOfStates: return "number-of-states"
        case .objectIdentifier: return "object-identifier"
        case .objectList: return "object-list"
        case .objectName: return "object-name"
        case .objectType: return "object-type"
        case .outOfService: return "out-of-service"
        case .eventParameters: return "event-parameters"
        case .polarity: return "polarity"
        case .presentValue: return "present-value"
        case .priority: return "priority"
        case .priorityArray: return "priority-array"
        case .priorityForWriting: return "priority-for-writing"
        case .protocolServicesSupported: return "protocol-services-supported"
        case .recipientList: return "recipient-list"
        case .reliability: return "reliability"
        case .relinquishDefault: return "relinquish-default"
        case .segmentationSupported: return "segmentation-supported"
        case .stateText: return "state-text"
        case .statusFlags: return "status-flags"
        case .timeDelay: return "time-delay"
        case .units: return "units"
        case .vendorIdentifier: return "vendor-identifier"
        case .eventTimeStamps: return "event-time-stamps"
        case .notificationThreshold: return "notification-threshold"
        case .directReading: return "direct-reading"
        case .maintenanceRequired: return "maintenance-required"
        case .memberOf: return "member-of"
        case .mode: return "mode"
        case .operationExpected: return "operation-expected"
        case .silenced: return "silenced"
        case .trackingValue: return "tracking-value"
        case .zoneMembers: return "zone-members"
        case .lifeSafetyAlarmValues: return "life-safety-alarm-values"
        case .acceptedModes: return "accepted-modes"
        case .doorAlarmState: return "door-alarm-state"
        case .doorMembers: return "door-members"
        case .doorStatus: return "door-status"
        case .lockStatus: return "lock-status"
        case .maskedAlarmValues: return "masked-alarm-values"
        case .securedStatus: return "secured-status"
        case .eventMessageTexts: return "event-message-texts"
        case .eventMessageTextsConfig: return "event-message-texts-config"
        case .eventDetectionEnable: return "event-detection-enable"
        case .eventAlgorithmInhibit: return "event-algorithm-inhibit"
        case .eventAlgorithmInhibitRef: return "event-algorithm-inhibit-ref"
        case .timeDelayNormal: return "time-delay-normal"
        case .reliabilityEvaluationInhibit: return "reliability-evaluation-inhibit"
        case .faultHighLimit: return "fault-high-limit"
        case .faultLowLimit: return "fault-low-limit"
        case .commandTimeArray: return "command-time-array"
        case .currentCommandPriority: return "current-command-priority"
        case .lastCommandTime: return "last-command-time"
        case .valueSource: return "value-source"
        }
    }

    /// The property spelled `name` in YAML, or nil.
    public init?(yamlName name: String) {
        guard let p = Self.allCases.first(where: { $0.yamlName == name }) else { return nil }
        self = p
    }

    /// Properties an agent may never write (RL-8): what makes an input prove nothing
    /// (Out_Of_Service, Reliability and its inhibit), what decides the effective value behind
    /// the agent's slot (Priority_Array, Relinquish_Default), and everything of alarm and event
    /// notification (who is told, when, about what). Also the identity and structure of the
    /// object. Whether the site lets an agent write anything else is the profile's business;
    /// this set is the floor no site can lower.
    public var isAgentForbidden: Bool {
        switch self {
        case .outOfService, .reliability, .reliabilityEvaluationInhibit,
             .priorityArray, .relinquishDefault, .priorityForWriting,
             .currentCommandPriority, .valueSource, .commandTimeArray, .lastCommandTime,
             .statusFlags, .eventState,
             // Notification and alarming.
             .notificationClass, .eventEnable, .ackedTransitions, .ackRequired, .notifyType,
             .recipientList, .timeDelay, .timeDelayNormal, .limitEnable, .highLimit, .lowLimit,
             .faultHighLimit, .faultLowLimit, .deadband, .alarmValue, .alarmValues, .faultValues,
             .lifeSafetyAlarmValues, .maskedAlarmValues, .eventDetectionEnable,
             .eventAlgorithmInhibit, .eventAlgorithmInhibitRef, .eventMessageTexts,
             .eventMessageTextsConfig, .eventParameters, .eventTimeStamps, .notificationThreshold,
             // Identity and structure.
             .objectIdentifier, .objectName, .objectType, .objectList, .all,
             .zoneMembers, .memberOf, .doorMembers, .acceptedModes,
             .protocolServicesSupported, .segmentationSupported, .maxAPDULengthAccepted,
             .vendorIdentifier:
            return true
        default:
            return false
        }
    }

    public var description: String { yamlName }
}

/// A BACnet object identifier: type and instance (22 bits, 0...4194303; 4194303 is the
/// wildcard and never names a real object).
public struct BACnetObjectId: Sendable, Hashable, CustomStringConvertible {
    public var type: BACnetObjectType
    public var instance: UInt32

    /// Largest instance number of a real object (4194303 = 0x3FFFFF is reserved as "any").
    public static let maxInstance: UInt32 = 0x3F_FFFE

    public init(type: BACnetObjectType, instance: UInt32) {
        self.type = type
        self.instance = instance
    }

    /// A valid id, or nil if the instance is out of range.
    public static func valid(type: BACnetObjectType, instance: Int) -> BACnetObjectId? {
        guard instance >= 0, instance <= Int(maxInstance) else { return nil }
        return BACnetObjectId(type: type, instance: UInt32(instance))
    }

    /// A device's own Device object.
    public static func device(_ instance: UInt32) -> BACnetObjectId { .init(type: .device, instance: instance) }

    public var description: String { "\(type.yamlName):\(instance)" }
}

/// Where a point lives in a BACnet device: object, property (default Present_Value) and,
/// for an array property, an element (1-based; 0 is the array's length).
public struct BACnetPointAddress: Sendable, Hashable, CustomStringConvertible {
    public var object: BACnetObjectId
    public var property: BACnetPropertyId
    public var arrayIndex: UInt32?

    public init(object: BACnetObjectId, property: BACnetPropertyId = .presentValue, arrayIndex: UInt32? = nil) {
        self.object = object
        self.property = property
        self.arrayIndex = arrayIndex
    }

    public var description: String {
        "\(object).\(property.yamlName)" + (arrayIndex.map { "[\($0)]" } ?? "")
    }
}

/// A command priority of a priority array, 1 (highest: manual life safety) to 16 (lowest).
/// Agents write at one site-wide priority no higher than `BACnetPriority.highestForAgents` (9):
/// 1-8 belong to life safety, critical equipment control and manual operators.
public struct BACnetPriority: Sendable, Hashable, Comparable, CustomStringConvertible {
    public let level: UInt8

    public static let range: ClosedRange<Int> = 1...16
    /// The highest (numerically smallest) priority a site may give agents.
    public static let highestForAgents = BACnetPriority(unchecked: 9)
    /// Manual operator (8): "a person" in the tests.
    public static let manualOperator = BACnetPriority(unchecked: 8)
    /// Lowest (16): the default for writes without a priority.
    public static let lowest = BACnetPriority(unchecked: 16)

    /// A priority in 1...16, or nil.
    public init?(_ level: Int) {
        guard Self.range.contains(level) else { return nil }
        self.level = UInt8(level)
    }

    private init(unchecked level: UInt8) { self.level = level }

    /// Whether a site may give this priority to agents (9...16).
    public var allowedForAgents: Bool { level >= Self.highestForAgents.level }

    /// Index of this priority in a Priority_Array (0-based).
    public var arraySlot: Int { Int(level) - 1 }

    /// Lower level = higher priority; `a < b` orders by level (so `.manualOperator < .highestForAgents`).
    public static func < (a: BACnetPriority, b: BACnetPriority) -> Bool { a.level < b.level }

    public var description: String { String(level) }
}

/// Status_Flags (a 4-bit BACnetStatusFlags bit string): in-alarm, fault, overridden,
/// out-of-service. An input with fault, overridden or out-of-service set counts as unknown (RL-0).
public struct BACnetStatusFlags: Sendable, Hashable, CustomStringConvertible {
    public var inAlarm: Bool
    public var fault: Bool
    public var overridden: Bool
    public var outOfService: Bool

    public init(inAlarm: Bool = false, fault: Bool = false, overridden: Bool = false, outOfService: Bool = false) {
        self.inAlarm = inAlarm
        self.fault = fault
        self.overridden = overridden
        self.outOfService = outOfService
    }

    /// Whether the value proves nothing about the plant (fault, overridden or out of service).
    public var makesInputUnknown: Bool { fault || overridden || outOfService }

    public var description: String {
        var s: [String] = []
        if inAlarm { s.append("in-alarm") }
        if fault { s.append("fault") }
        if overridden { s.append("overridden") }
        if outOfService { s.append("out-of-service") }
        return s.isEmpty ? "normal" : s.joined(separator: ",")
    }
}

/// BACnetReliability: only `noFaultDetected` (0) lets an input be believed.
public enum BACnetReliability {
    public static let noFaultDetected: UInt32 = 0
}
