/// The closed vocabulary of safety roles (docs/DESIGN.md §2).
///
/// A point's role says what it physically is. Red lines are written over roles,
/// so a site maps hardware to roles and this code decides what agents may do.
public enum Role: String, CaseIterable, Sendable, Hashable, Codable {
    // Inputs
    case fireAlarm = "fire-alarm"
    case gasAlarm = "gas-alarm"
    case fireTrouble = "fire-trouble"
    case suppressionPredischarge = "suppression-predischarge"
    case suppressionDischarged = "suppression-discharged"
    case dispatchPending = "dispatch-pending"
    case occupancy
    case doorContact = "door-contact"
    case temperature
    case oxygen
    case co2
    case humidity
    case equipmentFault = "equipment-fault"
    case status
    // Outputs
    case alarmSilence = "alarm-silence"
    case alarmAcknowledge = "alarm-acknowledge"
    case alarmReset = "alarm-reset"
    case alarmDisable = "alarm-disable"
    case dispatchCancel = "dispatch-cancel"
    case dispatchDelay = "dispatch-delay"
    case egressLock = "egress-lock"
    case suppressionRelease = "suppression-release"
    case suppressionAbort = "suppression-abort"
    case suppressionInhibit = "suppression-inhibit"
    case suppressionLockout = "suppression-lockout"
    case coolingRun = "cooling-run"
    case ventilationRun = "ventilation-run"
    case exhaustRun = "exhaust-run"
    case temperatureSetpoint = "temperature-setpoint"
    case annunciator
    case generalOutput = "general-output"

    /// True for roles the daemon may drive; false for sensed inputs.
    public var isOutput: Bool {
        switch self {
        case .fireAlarm, .gasAlarm, .fireTrouble, .suppressionPredischarge, .suppressionDischarged,
             .dispatchPending, .occupancy, .doorContact, .temperature, .oxygen, .co2, .humidity,
             .equipmentFault, .status:
            return false
        default:
            return true
        }
    }

    /// Alarm-panel outputs covered by RL-1.
    public var isAlarmControl: Bool {
        switch self {
        case .alarmSilence, .alarmAcknowledge, .alarmReset, .alarmDisable: return true
        default: return false
        }
    }

    /// Dispatch outputs covered by RL-2.
    public var isDispatchControl: Bool { self == .dispatchCancel || self == .dispatchDelay }

    /// Suppression outputs covered by RL-4.
    public var isSuppressionControl: Bool {
        switch self {
        case .suppressionRelease, .suppressionAbort, .suppressionInhibit, .suppressionLockout: return true
        default: return false
        }
    }

    /// Life-support run outputs covered by RL-5 (1 = running).
    public var isLifeSupportRun: Bool { self == .coolingRun || self == .ventilationRun || self == .exhaustRun }

    /// Inputs that put a zone "in alarm" (docs/DESIGN.md §3).
    public var isAlarmInput: Bool {
        switch self {
        case .fireAlarm, .gasAlarm, .suppressionPredischarge, .suppressionDischarged: return true
        default: return false
        }
    }

    /// Environment inputs whose limits define a hazard (docs/DESIGN.md §3).
    public var isEnvironmentInput: Bool { self == .temperature || self == .oxygen || self == .co2 }

    /// True for points that carry only 0 or 1.
    public var isBoolean: Bool {
        switch self {
        case .temperature, .oxygen, .co2, .humidity, .temperatureSetpoint, .dispatchDelay, .status:
            return false
        default:
            return true
        }
    }

    /// The value that is always safe to hold an output at; `nil` where no value is safe by itself.
    /// Doors released, life support running, alarm controls and suppression idle.
    public var safeValue: Double? {
        switch self {
        case .egressLock: return 0
        case .coolingRun, .ventilationRun, .exhaustRun: return 1
        case .alarmSilence, .alarmAcknowledge, .alarmReset, .alarmDisable,
             .dispatchCancel, .dispatchDelay,
             .suppressionRelease, .suppressionAbort, .suppressionInhibit, .suppressionLockout:
            return 0
        default:
            return nil
        }
    }

    /// The compiled-in envelope of values (RL-7 for outputs, physical range for inputs).
    /// A site may narrow it, never widen it.
    public var envelope: ClosedRange<Double> {
        switch self {
        case .temperatureSetpoint: return Limits.setpointEnvelope
        case .dispatchDelay: return 0...600
        case .temperature: return -40...150
        case .oxygen, .co2, .humidity: return 0...100
        case .status: return 0...65535
        default: return 0...1
        }
    }

    /// Engineering unit, where the role implies one.
    public var unit: String? {
        switch self {
        case .temperature, .temperatureSetpoint: return "°C"
        case .oxygen, .co2: return "% vol"
        case .humidity: return "% RH"
        case .dispatchDelay: return "s"
        default: return nil
        }
    }
}

/// Compiled-in limits. No configuration can change these.
public enum Limits {
    /// Hazard when a zone's temperature is at or above this (°C).
    public static let hazardTemperature = 40.0
    /// Hazard when a zone's oxygen is below this (% vol).
    public static let hazardOxygenBelow = 19.5
    /// Hazard when a zone's CO2 is at or above this (% vol).
    public static let hazardCO2 = 0.5
    /// RL-5: highest setpoint an agent may set in an occupied zone (°C, ASHRAE upper bound).
    public static let occupiedMaxSetpoint = 27.0
    /// RL-7: the physical envelope of a temperature setpoint (°C).
    public static let setpointEnvelope: ClosedRange<Double> = 15...32
    /// docs/DESIGN.md §6.1: at most this many red-line denials within the window before quarantine.
    public static let quarantineThreshold = 3
    /// docs/DESIGN.md §6.1: the quarantine window, in milliseconds (10 minutes).
    public static let quarantineWindowMs: Int64 = 600_000
    /// docs/DESIGN.md §6.2: this many agents quarantined within the quarantine window put the
    /// site in `agents-held` (coordinated agents gain nothing by spreading across identities).
    public static let escalationQuarantinedAgents = 2
    /// docs/DESIGN.md §6.2: this many red-line denials across all agents within the window do too.
    public static let escalationDenials = 10
    /// How long a write held by `agents-held` waits for an operator when no approval rule says (ms).
    public static let escalationHoldMs: Int64 = 300_000

    // The timing envelope (README, "Timing envelope"). A site may tighten these, never loosen them.

    /// Longest scan interval (ms): every input is read at least once a second.
    public static let maxScanIntervalMs: Int64 = 1000
    /// Longest stale window (ms): a reading older than this is unknown, whatever the site says.
    public static let maxStaleAfterMs: Int64 = 5000
    /// A reading goes stale after at most this many scan intervals (a few missed scans, not minutes).
    public static let maxStaleAfterScans: Int64 = 5
    /// Longest approval timeout (ms, 1 hour): a held write is decided on a plant seen recently.
    public static let maxApprovalTimeoutMs: Int64 = 3_600_000
    // A bus's response timeout must be below the stale window: a silent device faults its
    // points before their last readings would have gone stale anyway.

    // Serial (Modbus RTU) scan budget, see `SerialScanBudget`.

    /// Bits per character on a Modbus serial line (start, 8 data, parity or second stop, stop).
    public static let serialBitsPerCharacter = 11.0
    /// Silent interval between frames, in characters (t3.5); fixed at 1.75 ms above 19200 baud.
    public static let serialInterFrameCharacters = 3.5
    public static let serialInterFrameFixedMs = 1.75
    /// Allowance per transaction for the device to turn the line round and answer (ms).
    public static let serialTurnaroundMs = 10.0
}
