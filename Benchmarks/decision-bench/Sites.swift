import RedlineCore

/// The sites the benchmark decides on.
enum Sites {
    static let now: Int64 = 10_000_000

    static func point(_ device: String, _ name: String, _ role: Role, zone: String, address: Int,
                      table: ModbusTable = .coil, min: Double? = nil, max: Double? = nil) -> Point {
        Point(id: "\(device).\(name)", device: device, name: name, role: role, zone: zone, bus: "\(device)-io", unitId: 1,
              binding: .modbus(table: table, address: address, scale: 1, signed: false), min: min, max: max)
    }

    // MARK: demo site (Firmware-Configs/demo-datacenter.yaml)

    static func demoSite() -> Site {
        var pts: [Point] = []
        pts += [point("fire-panel", "alarm", .fireAlarm, zone: "building", address: 0, table: .discreteInput),
                point("fire-panel", "trouble", .fireTrouble, zone: "building", address: 1, table: .discreteInput),
                point("fire-panel", "silence", .alarmSilence, zone: "building", address: 0),
                point("fire-panel", "acknowledge", .alarmAcknowledge, zone: "building", address: 1),
                point("fire-panel", "reset", .alarmReset, zone: "building", address: 2),
                point("fire-panel", "disable", .alarmDisable, zone: "building", address: 3),
                point("dispatch", "pending", .dispatchPending, zone: "building", address: 0, table: .discreteInput),
                point("dispatch", "cancel", .dispatchCancel, zone: "building", address: 0),
                point("dispatch", "delay", .dispatchDelay, zone: "building", address: 0, table: .holdingRegister, min: 0, max: 600)]
        let z = "server-room-a"
        pts += [point("sra-env", "temperature", .temperature, zone: z, address: 0, table: .inputRegister),
                point("sra-env", "humidity", .humidity, zone: z, address: 1, table: .inputRegister),
                point("sra-env", "oxygen", .oxygen, zone: z, address: 2, table: .inputRegister),
                point("sra-env", "co2", .co2, zone: z, address: 3, table: .inputRegister),
                point("sra-occupancy", "occupied", .occupancy, zone: z, address: 0, table: .discreteInput),
                point("sra-door", "lock", .egressLock, zone: z, address: 0),
                point("sra-door", "contact", .doorContact, zone: z, address: 0, table: .discreteInput)]
        for k in 1...4 {
            pts += [point("crac-\(k)", "run", .coolingRun, zone: z, address: 0),
                    point("crac-\(k)", "setpoint", .temperatureSetpoint, zone: z, address: 0, table: .holdingRegister, min: 15, max: 32),
                    point("crac-\(k)", "fault", .equipmentFault, zone: z, address: 0, table: .discreteInput)]
        }
        pts += [point("sra-exhaust", "run", .exhaustRun, zone: z, address: 0),
                point("sra-suppression", "release", .suppressionRelease, zone: z, address: 0),
                point("sra-suppression", "abort", .suppressionAbort, zone: z, address: 1),
                point("sra-suppression", "inhibit", .suppressionInhibit, zone: z, address: 2),
                point("sra-suppression", "lockout", .suppressionLockout, zone: z, address: 3),
                point("sra-suppression", "predischarge", .suppressionPredischarge, zone: z, address: 0, table: .discreteInput),
                point("sra-suppression", "discharged", .suppressionDischarged, zone: z, address: 1, table: .discreteInput),
                point("sra-annunciator", "strobe", .annunciator, zone: z, address: 0),
                point("office-lights", "on", .generalOutput, zone: "office-1", address: 0),
                point("office-ahu", "run", .ventilationRun, zone: "office-1", address: 0),
                point("office-ahu", "setpoint", .temperatureSetpoint, zone: "office-1", address: 0, table: .holdingRegister, min: 16, max: 30)]
        let writes = ["fire-panel.silence", "fire-panel.acknowledge", "fire-panel.reset", "fire-panel.disable",
                      "dispatch.cancel", "dispatch.delay", "sra-door.lock", "crac-*.run", "crac-*.setpoint",
                      "sra-exhaust.run", "sra-suppression.release", "sra-suppression.abort", "sra-suppression.inhibit",
                      "sra-suppression.lockout", "sra-annunciator.strobe", "office-lights.on", "office-ahu.run",
                      "office-ahu.setpoint"]
        return Site(name: "summitbridge-dc2", timing: Timing(scanIntervalMs: 100, staleAfterMs: 500),
                    zones: [Zone(id: "building", buildingWide: true), Zone(id: "server-room-a"), Zone(id: "office-1")],
                    points: pts,
                    agents: [Agent(name: "facilities-agent", uid: 2001, read: [PointPattern("*")], write: writes.map(PointPattern.init)),
                             Agent(name: "reporting-agent", uid: 2002, read: [PointPattern("sra-env.*"), PointPattern("crac-*.*")], write: [])],
                    operators: [Operator(uid: 0)],
                    approvals: [ApprovalRule(points: [PointPattern("sra-door.lock")], timeoutMs: 300_000)])
    }

    static func snapshot(_ site: Site, _ values: [String: Double]) -> PlantSnapshot {
        var s = PlantSnapshot()
        for p in site.points where !p.role.isOutput {
            let v: Double
            switch p.role {
            case .temperature: v = 22
            case .oxygen: v = 20.9
            case .co2: v = 0.04
            case .humidity: v = 45
            default: v = 0
            }
            s[p.id] = .good(values[p.id] ?? v, at: now - 120)
        }
        return s
    }

    static func demoWorkload() -> Workload {
        let site = demoSite()
        let plants: [[String: Double]] = [
            [:], ["sra-occupancy.occupied": 1], ["fire-panel.alarm": 1],
            ["sra-occupancy.occupied": 1, "sra-env.temperature": 67, "sra-env.oxygen": 15.4, "sra-env.co2": 3.8, "dispatch.pending": 1],
        ]
        let states = plants.map { PolicyState(site: site, snapshot: snapshot(site, $0), now: now) }
        var cmds: [WriteCommand] = []
        for p in site.points where p.role.isOutput {
            for v in [0.0, 1.0, 22.0, 28.0] { cmds.append(WriteCommand(agent: "facilities-agent", point: p.id, value: v)) }
        }
        cmds += [WriteCommand(agent: "reporting-agent", point: "crac-1.run", value: 0),
                 WriteCommand(agent: "reporting-agent", point: "dispatch.cancel", value: 1),
                 WriteCommand(agent: "facilities-agent", point: "no.such", value: 1)]
        return Workload(name: "demo site", states: states, commands: cmds)
    }

    // MARK: generated site, 10,000 points

    /// `zones` rooms of 25 points each (sensors, door, four CRACs, exhaust, annunciator,
    /// lighting, air handler), a building-wide zone with a fire panel and dispatch
    /// gateway, and one agent per 8 rooms plus a site-wide facilities agent.
    static func largeSite(zones nz: Int) -> Site {
        var zones = [Zone(id: "building", buildingWide: true)]
        var pts: [Point] = [
            point("fire-panel", "alarm", .fireAlarm, zone: "building", address: 0, table: .discreteInput),
            point("fire-panel", "silence", .alarmSilence, zone: "building", address: 0),
            point("fire-panel", "reset", .alarmReset, zone: "building", address: 2),
            point("dispatch", "pending", .dispatchPending, zone: "building", address: 0, table: .discreteInput),
            point("dispatch", "cancel", .dispatchCancel, zone: "building", address: 0),
        ]
        var agents: [Agent] = []
        var groupPatterns: [PointPattern] = []
        for k in 0..<nz {
            let z = "room-\(k)"
            zones.append(Zone(id: z))
            pts += [point("\(z)-env", "temperature", .temperature, zone: z, address: 0, table: .inputRegister),
                    point("\(z)-env", "humidity", .humidity, zone: z, address: 1, table: .inputRegister),
                    point("\(z)-env", "oxygen", .oxygen, zone: z, address: 2, table: .inputRegister),
                    point("\(z)-env", "co2", .co2, zone: z, address: 3, table: .inputRegister),
                    point("\(z)-occupancy", "occupied", .occupancy, zone: z, address: 0, table: .discreteInput),
                    point("\(z)-smoke", "alarm", .fireAlarm, zone: z, address: 0, table: .discreteInput),
                    point("\(z)-door", "lock", .egressLock, zone: z, address: 0),
                    point("\(z)-door", "contact", .doorContact, zone: z, address: 0, table: .discreteInput)]
            for c in 1...4 {
                pts += [point("\(z)-crac-\(c)", "run", .coolingRun, zone: z, address: 0),
                        point("\(z)-crac-\(c)", "setpoint", .temperatureSetpoint, zone: z, address: 0, table: .holdingRegister, min: 15, max: 32),
                        point("\(z)-crac-\(c)", "fault", .equipmentFault, zone: z, address: 0, table: .discreteInput)]
            }
            pts += [point("\(z)-exhaust", "run", .exhaustRun, zone: z, address: 0),
                    point("\(z)-annunciator", "strobe", .annunciator, zone: z, address: 0),
                    point("\(z)-lights", "on", .generalOutput, zone: z, address: 0),
                    point("\(z)-ahu", "run", .ventilationRun, zone: z, address: 0),
                    point("\(z)-ahu", "setpoint", .temperatureSetpoint, zone: z, address: 0, table: .holdingRegister, min: 16, max: 30)]
            groupPatterns += ["\(z)-crac-*.run", "\(z)-crac-*.setpoint", "\(z)-door.lock", "\(z)-lights.on", "\(z)-ahu.*"].map(PointPattern.init)
            if k % 8 == 7 || k == nz - 1 {
                agents.append(Agent(name: "room-agent-\(agents.count)", uid: UInt32(3000 + agents.count),
                                    read: [PointPattern("*")], write: groupPatterns))
                groupPatterns = []
            }
        }
        agents.append(Agent(name: "facilities-agent", uid: 2001, read: [PointPattern("*")],
                            write: ["room-*.run", "room-*.setpoint", "room-*.lock", "room-*.on", "fire-panel.*", "dispatch.*"].map(PointPattern.init)))
        return Site(name: "generated-\(pts.count)", timing: Timing(scanIntervalMs: 100, staleAfterMs: 500),
                    zones: zones, points: pts, agents: agents, operators: [Operator(uid: 0)],
                    approvals: [ApprovalRule(points: [PointPattern("*.lock")], timeoutMs: 300_000)])
    }

    static func largeWorkload(zones nz: Int) -> Workload {
        let site = largeSite(zones: nz)
        var rng = SystemRandomNumberGenerator()
        // Plant states: calm; a quarter of the rooms occupied; one room in alarm and hazard; building alarm.
        var occupied: [String: Double] = [:]
        for k in stride(from: 0, to: nz, by: 4) { occupied["room-\(k)-occupancy.occupied"] = 1 }
        let plants: [[String: Double]] = [
            [:], occupied, ["room-3-smoke.alarm": 1, "room-3-env.temperature": 55, "room-3-occupancy.occupied": 1],
            ["fire-panel.alarm": 1],
        ]
        let states = plants.map { PolicyState(site: site, snapshot: snapshot(site, $0), now: now) }
        let outputs = site.points.filter { $0.role.isOutput && !$0.id.hasPrefix("fire-panel") && !$0.id.hasPrefix("dispatch") }
        var cmds: [WriteCommand] = []
        for _ in 0..<4096 {
            let p = outputs[Int.random(in: 0..<outputs.count, using: &rng)]
            let room = Int(p.zone.dropFirst(5)) ?? 0
            // Mostly the room's own agent; sometimes the site-wide agent or a neighbour without a grant.
            let agent: String
            switch Int.random(in: 0..<10, using: &rng) {
            case 0: agent = "facilities-agent"
            case 1: agent = "room-agent-\((room / 8 + 1) % ((nz + 7) / 8))"
            default: agent = "room-agent-\(room / 8)"
            }
            let v = [0.0, 1.0, 1.0, 22.0, 27.5, 0.5][Int.random(in: 0..<6, using: &rng)]
            cmds.append(WriteCommand(agent: agent, point: p.id, value: v))
        }
        cmds += [WriteCommand(agent: "facilities-agent", point: "dispatch.cancel", value: 1),
                 WriteCommand(agent: "room-agent-0", point: "room-99999-door.lock", value: 1)]
        return Workload(name: "generated site", states: states, commands: cmds)
    }
}
