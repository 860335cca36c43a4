@testable import RedlineCore

/// The demo site (`Firmware-Configs/demo-datacenter.yaml` with its `Devices/*.yaml`
/// profiles), built in code so these tests do not depend on the YAML loader.
enum Demo {
    static let now: Int64 = 1_000_000
    static let facilities = "facilities-agent"
    static let reporting = "reporting-agent"

    struct ProfilePoint {
        let name: String
        let role: Role
        let table: ModbusTable
        let address: Int
        var scale: Double = 1
        var signed = false
        var min: Double? = nil
        var max: Double? = nil
    }

    static let profiles: [String: [ProfilePoint]] = [
        "fire-alarm-panel": [
            .init(name: "alarm", role: .fireAlarm, table: .discreteInput, address: 0),
            .init(name: "trouble", role: .fireTrouble, table: .discreteInput, address: 1),
            .init(name: "silence", role: .alarmSilence, table: .coil, address: 0),
            .init(name: "acknowledge", role: .alarmAcknowledge, table: .coil, address: 1),
            .init(name: "reset", role: .alarmReset, table: .coil, address: 2),
            .init(name: "disable", role: .alarmDisable, table: .coil, address: 3),
        ],
        "emergency-dispatch-gateway": [
            .init(name: "pending", role: .dispatchPending, table: .discreteInput, address: 0),
            .init(name: "cancel", role: .dispatchCancel, table: .coil, address: 0),
            .init(name: "delay", role: .dispatchDelay, table: .holdingRegister, address: 0, min: 0, max: 600),
        ],
        "environment-sensor": [
            .init(name: "temperature", role: .temperature, table: .inputRegister, address: 0, scale: 0.1, signed: true),
            .init(name: "humidity", role: .humidity, table: .inputRegister, address: 1, scale: 0.1),
            .init(name: "oxygen", role: .oxygen, table: .inputRegister, address: 2, scale: 0.01),
            .init(name: "co2", role: .co2, table: .inputRegister, address: 3, scale: 0.001),
        ],
        "occupancy-sensor": [
            .init(name: "occupied", role: .occupancy, table: .discreteInput, address: 0),
        ],
        "maglock-door-controller": [
            .init(name: "lock", role: .egressLock, table: .coil, address: 0),
            .init(name: "contact", role: .doorContact, table: .discreteInput, address: 0),
        ],
        "crac-unit": [
            .init(name: "run", role: .coolingRun, table: .coil, address: 0),
            .init(name: "setpoint", role: .temperatureSetpoint, table: .holdingRegister, address: 0, scale: 0.1, min: 15, max: 32),
            .init(name: "fault", role: .equipmentFault, table: .discreteInput, address: 0),
        ],
        "exhaust-fan": [
            .init(name: "run", role: .exhaustRun, table: .coil, address: 0),
        ],
        "clean-agent-panel": [
            .init(name: "release", role: .suppressionRelease, table: .coil, address: 0),
            .init(name: "abort", role: .suppressionAbort, table: .coil, address: 1),
            .init(name: "inhibit", role: .suppressionInhibit, table: .coil, address: 2),
            .init(name: "lockout", role: .suppressionLockout, table: .coil, address: 3),
            .init(name: "predischarge", role: .suppressionPredischarge, table: .discreteInput, address: 0),
            .init(name: "discharged", role: .suppressionDischarged, table: .discreteInput, address: 1),
        ],
        "annunciator": [
            .init(name: "strobe", role: .annunciator, table: .coil, address: 0),
        ],
        "lighting-relay": [
            .init(name: "on", role: .generalOutput, table: .coil, address: 0),
        ],
        "air-handler": [
            .init(name: "run", role: .ventilationRun, table: .coil, address: 0),
            .init(name: "setpoint", role: .temperatureSetpoint, table: .holdingRegister, address: 0, scale: 0.1, min: 16, max: 30),
        ],
    ]

    /// (device id, profile, bus, zone), in the site file's order.
    static let deviceTable: [(String, String, String, String)] = [
        ("fire-panel", "fire-alarm-panel", "fire-panel-gw", "building"),
        ("dispatch", "emergency-dispatch-gateway", "dispatch-gw", "building"),
        ("sra-env", "environment-sensor", "sra-env-io", "server-room-a"),
        ("sra-occupancy", "occupancy-sensor", "sra-occ-io", "server-room-a"),
        ("sra-door", "maglock-door-controller", "sra-door-io", "server-room-a"),
        ("crac-1", "crac-unit", "crac-1-io", "server-room-a"),
        ("crac-2", "crac-unit", "crac-2-io", "server-room-a"),
        ("crac-3", "crac-unit", "crac-3-io", "server-room-a"),
        ("crac-4", "crac-unit", "crac-4-io", "server-room-a"),
        ("sra-exhaust", "exhaust-fan", "sra-exhaust-io", "server-room-a"),
        ("sra-suppression", "clean-agent-panel", "sra-supp-io", "server-room-a"),
        ("sra-annunciator", "annunciator", "sra-annun-io", "server-room-a"),
        ("office-lights", "lighting-relay", "office-lights-io", "office-1"),
        ("office-ahu", "air-handler", "office-ahu-io", "office-1"),
    ]

    static let facilitiesWrites = [
        "fire-panel.silence", "fire-panel.acknowledge", "fire-panel.reset", "fire-panel.disable",
        "dispatch.cancel", "dispatch.delay", "sra-door.lock", "crac-*.run", "crac-*.setpoint",
        "sra-exhaust.run", "sra-suppression.release", "sra-suppression.abort", "sra-suppression.inhibit",
        "sra-suppression.lockout", "sra-annunciator.strobe", "office-lights.on", "office-ahu.run",
        "office-ahu.setpoint",
    ]

    static func makeSite(quarantine: QuarantinePolicy = QuarantinePolicy()) -> Site {
        var buses: [Bus] = []
        var devices: [Device] = []
        var points: [Point] = []
        for (k, (id, profile, bus, zone)) in deviceTable.enumerated() {
            buses.append(Bus(id: bus, kind: .modbusTCP(host: "127.0.0.1", port: 15020 + k)))
            devices.append(Device(id: id, profile: profile, bus: bus, unit: 1, zone: zone))
            for pp in profiles[profile]! {
                points.append(Point(
                    id: "\(id).\(pp.name)", device: id, name: pp.name, role: pp.role, zone: zone, bus: bus, unitId: 1,
                    binding: .modbus(table: pp.table, address: pp.address, scale: pp.scale, signed: pp.signed),
                    min: pp.min, max: pp.max))
            }
        }
        return Site(
            name: "summitbridge-dc2",
            timing: Timing(scanIntervalMs: 100, staleAfterMs: 500),
            zones: [Zone(id: "building", buildingWide: true), Zone(id: "server-room-a"), Zone(id: "office-1")],
            buses: buses, devices: devices, points: points,
            agents: [
                Agent(name: facilities, uid: 2001, read: [PointPattern("*")], write: facilitiesWrites.map(PointPattern.init)),
                Agent(name: reporting, uid: 2002, read: [PointPattern("sra-env.*"), PointPattern("crac-*.*")], write: []),
            ],
            operators: [Operator(uid: 0)],
            approvals: [ApprovalRule(points: [PointPattern("sra-door.lock")], timeoutMs: 300_000)],
            quarantine: quarantine)
    }

    static let site = makeSite()

    /// The simulator's initial plant: calm, rooms empty, everything fresh and good.
    static func calmValues() -> [String: Double] {
        [
            "fire-panel.alarm": 0, "fire-panel.trouble": 0, "dispatch.pending": 0,
            "sra-env.temperature": 22, "sra-env.humidity": 45, "sra-env.oxygen": 20.9, "sra-env.co2": 0.04,
            "sra-occupancy.occupied": 0, "sra-door.contact": 1,
            "crac-1.fault": 0, "crac-2.fault": 0, "crac-3.fault": 0, "crac-4.fault": 0,
            "sra-suppression.predischarge": 0, "sra-suppression.discharged": 0,
        ]
    }

    static func snapshot(_ overrides: [String: Double] = [:], at time: Int64 = now) -> PlantSnapshot {
        var s = PlantSnapshot()
        for (id, v) in calmValues().merging(overrides, uniquingKeysWith: { $1 }) { s[id] = .good(v, at: time) }
        return s
    }

    /// A policy state on the demo site with the calm plant plus `overrides`.
    static func state(_ overrides: [String: Double] = [:], site: Site = site, ready: Bool = true,
                      quarantined: Set<String> = []) -> PolicyState {
        PolicyState(site: site, snapshot: snapshot(overrides), now: now, ready: ready, quarantined: quarantined)
    }

    static func decide(_ point: String, _ value: Double, agent: String = facilities, in state: PolicyState = state(),
                       approved: Bool = false) -> Decision {
        Policy.decide(WriteCommand(agent: agent, point: point, value: value), in: state, approved: approved)
    }

    static let occupied: [String: Double] = ["sra-occupancy.occupied": 1]
    static let buildingAlarm: [String: Double] = ["fire-panel.alarm": 1]
    static let roomAlarm: [String: Double] = ["sra-suppression.predischarge": 1]
}

extension Decision {
    var isHeld: Bool { if case .held = self { return true } else { return false } }
    var isDenied: Bool { if case .denied = self { return true } else { return false } }
}
