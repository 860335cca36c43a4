import Testing
import PropertyBased
@testable import RedlineCore

/// The demo site with the door, the occupancy sensor, the CRACs and the fire panel as BACnet
/// devices (as `Firmware-Configs/demo-datacenter-bacnet.yaml` puts them), built in code, and
/// the agents' site-wide write priority 9.
enum BACnetDemo {
    static let bacnetDevices: Set<String> = ["fire-panel", "sra-occupancy", "sra-door", "crac-1", "crac-2", "crac-3", "crac-4"]
    static let priority = BACnetPriority(9)!

    /// The object a demo point becomes on BACnet.
    static func object(_ p: Point, instance: UInt32) -> BACnetObjectType {
        switch p.role {
        case .fireAlarm: return .lifeSafetyPoint
        case .temperatureSetpoint: return .analogValue
        case _ where p.role.isOutput: return .binaryOutput
        default: return .binaryInput
        }
    }

    static func makeSite(property: (Point) -> BACnetPropertyId = { _ in .presentValue }) -> Site {
        let demo = Demo.site
        var instance: UInt32 = 0
        var buses = demo.buses
        var points: [Point] = []
        var devices: [Device] = []
        for (k, d) in demo.devices.enumerated() {
            guard bacnetDevices.contains(d.id) else {
                devices.append(d)
                points += demo.points.filter { $0.device == d.id }
                continue
            }
            let inst = UInt32(1000 + k)
            let bus = "\(d.id)-bacnet"
            buses.append(Bus(id: bus, kind: .bacnetIP(address: "127.0.0.1", port: 47808 + k), timeoutMs: 100, retries: 1))
            devices.append(Device(id: d.id, profile: d.profile, bus: bus, unit: nil, zone: d.zone, deviceInstance: inst))
            for p in demo.points where p.device == d.id {
                instance += 1
                var q = p
                q.bus = bus
                q.unitId = nil
                q.deviceInstance = inst
                q.binding = .bacnet(BACnetPointAddress(object: BACnetObjectId(type: object(p, instance: instance), instance: instance),
                                                       property: property(p)))
                points.append(q)
            }
        }
        let used = Set(devices.map(\.bus))
        return Site(name: "summitbridge-dc2-bacnet", timing: demo.timing, zones: demo.zones,
                    buses: buses.filter { used.contains($0.id) }, devices: devices, points: points,
                    agents: demo.agents, operators: demo.operators, approvals: demo.approvals,
                    bacnet: BACnetSettings(writePriority: priority))
    }

    static let site = makeSite()

    /// Calm plant, every input believed, plus `overrides`.
    static func state(_ overrides: [String: Double] = [:], site: Site = site) -> PolicyState {
        Demo.state(overrides, site: site)
    }

    static func commandable(_ slots: [Int: Double], default rd: Double) -> BACnetCommandable {
        var a = BACnetPriorityArray.empty
        for (level, v) in slots { a[BACnetPriority(level)!] = v }
        return BACnetCommandable(priorityArray: a, relinquishDefault: rd)
    }

    static func decide(_ id: String, _ request: BACnetCommand, _ c: BACnetCommandable?, in state: PolicyState = state(),
                       approved: Bool = false) -> BACnetDecision {
        Policy.decideBACnet(agent: Demo.facilities, point: id, request: request, commandable: c, in: state, approved: approved)
    }
}

@Suite("Issue 17: BACnet inputs that prove nothing are unknown (RL-0)")
struct BACnetInputTrustTests {
    static let flags: [(String, BACnetStatusFlags)] = [
        ("fault", BACnetStatusFlags(fault: true)),
        ("overridden", BACnetStatusFlags(overridden: true)),
        ("out-of-service", BACnetStatusFlags(outOfService: true)),
        ("in-alarm and fault", BACnetStatusFlags(inAlarm: true, fault: true)),
    ]

    @Test("status flags fault, overridden or out-of-service make the reading a fault", arguments: flags.map(\.0))
    func RL0_statusFlagsMakeAnInputUnknown(_ name: String) throws {
        let f = try #require(Self.flags.first { $0.0 == name }?.1)
        let r = BACnetInputTrust.reading(value: 0, at: Demo.now, statusFlags: f, reliability: 0)
        #expect(r.faulted && r.value == nil)
        #expect(BACnetInputTrust.distrust(statusFlags: f, reliability: 0)?.contains(name.components(separatedBy: " ").last!) == true)
    }

    @Test(arguments: [1, 2, 3, 7, 12, 65535] as [UInt32])
    func RL0_reliabilityOtherThanNoFaultMakesAnInputUnknown(_ reliability: UInt32) {
        #expect(BACnetInputTrust.reading(value: 0, at: Demo.now, statusFlags: BACnetStatusFlags(), reliability: reliability).faulted)
    }

    @Test func RL0_normalFlagsAndNoFaultAreBelieved() {
        // In-alarm alone is not a fault: the value carries the alarm. Reliability is optional (nil).
        for f in [BACnetStatusFlags(), BACnetStatusFlags(inAlarm: true)] {
            for rel in [0, nil] as [UInt32?] {
                #expect(BACnetInputTrust.reading(value: 1, at: Demo.now, statusFlags: f, reliability: rel) == .good(1, at: Demo.now))
            }
        }
        // Status_Flags not read is unknown; so is no value.
        #expect(BACnetInputTrust.reading(value: 1, at: Demo.now, statusFlags: nil, reliability: 0).faulted)
        #expect(BACnetInputTrust.reading(value: nil, at: Demo.now, statusFlags: BACnetStatusFlags(), reliability: 0).faulted)
    }

    /// Issue 17's test: an occupancy input whose value says "empty" but whose Status_Flags show
    /// fault (or out of service: anyone may write its Present_Value) leaves the zone occupied,
    /// and a lock is denied RL-3, as for a Modbus fault.
    @Test(arguments: flags.map(\.0))
    func RL3_lockDeniedWhenTheZonesBACnetInputShowsFault(_ name: String) throws {
        let f = try #require(Self.flags.first { $0.0 == name }?.1)
        var state = BACnetDemo.state()
        let empty = BACnetDemo.decide("sra-door.lock", .write(1), nil, in: state, approved: true)
        #expect(empty.decision == .allowed, "believed empty room: the lock is only held for approval")
        state.snapshot["sra-occupancy.occupied"] = BACnetInputTrust.reading(value: 0, at: Demo.now, statusFlags: f, reliability: 0)
        let d = BACnetDemo.decide("sra-door.lock", .write(1), nil, in: state, approved: true)
        #expect(d.decision.rule == .rl3, "\(d.decision)")
        guard case .denied(_, let why) = d.decision else { return }
        #expect(why.contains("sra-occupancy.occupied is fault (RL-0"), "\(why)")
        // Releasing stays allowed.
        #expect(BACnetDemo.decide("sra-door.lock", .write(0), nil, in: state).decision == .allowed)
    }

    @Test func RL3_lockDeniedWhenReliabilityIsNotNoFault() {
        var state = BACnetDemo.state()
        state.snapshot["fire-panel.alarm"] = BACnetInputTrust.reading(value: 0, at: Demo.now, statusFlags: BACnetStatusFlags(), reliability: 4)
        let d = BACnetDemo.decide("sra-door.lock", .write(1), nil, in: state, approved: true)
        #expect(d.decision.rule == .rl3, "\(d.decision)")
    }

    @Test func RL0_lifeSafetyStatesMapToTheAlarmRoles() {
        #expect(BACnetLifeSafetyState.value(0, role: .fireAlarm) == 0)
        for alarm: UInt32 in [1, 2, 5, 21] { #expect(BACnetLifeSafetyState.value(alarm, role: .fireAlarm) == 1) }
        // A fault without alarm, not-ready, test or a proprietary state: unknown, so in alarm (RL-0).
        for unknown: UInt32 in [3, 6, 10, 24, 300] { #expect(BACnetLifeSafetyState.value(unknown, role: .fireAlarm) == nil) }
        #expect(BACnetLifeSafetyState.value(3, role: .fireTrouble) == 1)
        #expect(BACnetLifeSafetyState.value(0, role: .fireTrouble) == 0)
        #expect(BACnetLifeSafetyState.value(2, role: .fireTrouble) == 0)
        #expect(BACnetLifeSafetyState.value(300, role: .fireTrouble) == nil)
        // A life-safety state is never an output, nor an occupancy.
        #expect(BACnetLifeSafetyState.value(0, role: .occupancy) == nil)
        #expect(!BACnetLifeSafetyState.carries(.egressLock))
    }
}

@Suite("Issue 17: the value decided is the value that takes effect through the priority array")
struct BACnetPriorityTests {
    /// Issue 17's test: a value held at priority 8 by a person makes the agent's write at 9 report overridden.
    @Test func RL5_writeUnderAPersonAtPriority8IsReportedOverridden() throws {
        let held = BACnetDemo.commandable([8: 1], default: 1)
        let d = BACnetDemo.decide("crac-1.run", .write(0), held)
        // The room is empty: stopping a CRAC is allowed, and decided on the agent's own value.
        #expect(d.decision == .allowed)
        let e = try #require(d.effect)
        #expect(e.decided == 0 && e.effective == 1 && e.overriddenBy == BACnetPriority(8))
        #expect(e.explanation.hasPrefix("overridden at priority 8: Present_Value stays 1"), "\(e.explanation)")
        // What the device shows afterwards is judged overridden, never executed at the requested value.
        let after = BACnetCommanding.applying(.write(0), at: BACnetDemo.priority, to: held)
        let rb = BACnetCommanding.readBack(.write(0), at: BACnetDemo.priority, after: after)
        #expect(rb == .overridden(priority: BACnetPriority(8)!, presentValue: 1))
        #expect(!rb.isExecuted)
        #expect(rb.description == "written, but overridden at priority 8: Present_Value is 1")
    }

    /// An overridden write is decided on its own value: it takes effect the moment the person
    /// relinquishes priority 8, so it must pass the red lines now.
    @Test func RL5_overriddenWriteIsStillDecidedOnItsOwnValue() {
        let held = BACnetDemo.commandable([8: 1], default: 1)
        let d = BACnetDemo.decide("crac-1.run", .write(0), held, in: BACnetDemo.state(Demo.occupied))
        #expect(d.decision.rule == .rl5, "\(d.decision)")
        #expect(d.command.value == 0)
    }

    /// Issue 17's test: a release returns to the next priority, or Relinquish_Default, and the
    /// red lines are decided on that value.
    @Test func RL5_releaseReturnsToTheNextPriorityAndIsDecidedOnIt() throws {
        // The agent holds the CRAC running at 9; a schedule holds it off at 16.
        let c = BACnetDemo.commandable([9: 1, 16: 0], default: 1)
        let occupied = BACnetDemo.decide("crac-1.run", .relinquish, c, in: BACnetDemo.state(Demo.occupied))
        #expect(occupied.decision.rule == .rl5, "\(occupied.decision)")
        #expect(occupied.command.value == 0)
        let e = try #require(occupied.effect)
        #expect(e.decided == 0 && e.decidedSource == .priority(BACnetPriority(16)!) && e.effective == 0)
        // In an empty room the same release is allowed, and the device then shows priority 16's value.
        let empty = BACnetDemo.decide("crac-1.run", .relinquish, c)
        #expect(empty.decision == .allowed)
        let after = BACnetCommanding.applying(.relinquish, at: BACnetDemo.priority, to: c)
        #expect(BACnetCommanding.readBack(.relinquish, at: BACnetDemo.priority, after: after)
                == .relinquished(presentValue: 0, source: .priority(BACnetPriority(16)!)))
    }

    @Test func RL5_releaseFallsToRelinquishDefault() {
        let off = BACnetDemo.commandable([9: 1], default: 0)
        let on = BACnetDemo.commandable([9: 1], default: 1)
        let occupied = BACnetDemo.state(Demo.occupied)
        let d = BACnetDemo.decide("crac-1.run", .relinquish, off, in: occupied)
        #expect(d.decision.rule == .rl5)
        #expect(d.effect?.decidedSource == .relinquishDefault)
        #expect(BACnetDemo.decide("crac-1.run", .relinquish, on, in: occupied).decision == .allowed)
    }

    @Test func RL3_releasingADoorOntoALockBelowIsDecidedAsLocking() {
        // The agent holds the door released at 9; a night schedule holds it locked at 12.
        let c = BACnetDemo.commandable([9: 0, 12: 1], default: 0)
        let d = BACnetDemo.decide("sra-door.lock", .relinquish, c, in: BACnetDemo.state(Demo.occupied))
        #expect(d.decision.rule == .rl3, "\(d.decision)")
        // With nothing below, it falls to Relinquish_Default 0: released, always allowed.
        let free = BACnetDemo.decide("sra-door.lock", .relinquish, BACnetDemo.commandable([9: 0], default: 0),
                                     in: BACnetDemo.state(Demo.occupied))
        #expect(free.decision == .allowed)
    }

    @Test func RL7_bacnetRealsAreDecidedAsTheObjectHoldsThem() {
        // 27.04 °C as a REAL is 27.040000915527344: above 27, so denied in an occupied room.
        let d = BACnetDemo.decide("crac-1.setpoint", .write(27.04), BACnetDemo.commandable([:], default: 22),
                                  in: BACnetDemo.state(Demo.occupied))
        #expect(d.decision.rule == .rl5)
        #expect(d.command.value == Double(Float(27.04)))
        #expect(BACnetDemo.decide("crac-1.setpoint", .write(.nan), nil).decision.rule == .rl7)
        #expect(BACnetDemo.decide("crac-1.setpoint", .write(1e40), nil).decision.isDenied)
    }

    @Test func RL8_releaseOfAnObjectWithoutPriorityArrayIsDenied() {
        let d = BACnetDemo.decide("crac-1.run", .relinquish, nil)
        #expect(d.decision.isDenied)
        // And a release of a Modbus point means nothing.
        #expect(Policy.decideBACnet(agent: Demo.facilities, point: "sra-exhaust.run", request: .relinquish, commandable: nil,
                                    in: BACnetDemo.state()).decision.isDenied)
        // Visibility comes first, identical for a missing and a hidden point.
        #expect(Policy.decideBACnet(agent: Demo.reporting, point: "sra-door.lock", request: .relinquish, commandable: nil,
                                    in: BACnetDemo.state()).decision == .unknownPoint)
    }

    // MARK: property tests over random priority arrays

    struct Case: CustomStringConvertible {
        var slots: [Double?]
        var relinquishDefault: Double
        var priority: BACnetPriority
        var request: BACnetCommand
        var occupied: Bool

        init(seed: UInt64) {
            var g = SplitMix64(state: seed)
            slots = (0..<16).map { _ in Int.random(in: 0..<3, using: &g) == 0 ? Double(Int.random(in: 0...1, using: &g)) : nil }
            relinquishDefault = Double(Int.random(in: 0...1, using: &g))
            priority = BACnetPriority(Int.random(in: 9...16, using: &g))!
            request = Bool.random(using: &g) ? .relinquish : .write(Double(Int.random(in: 0...1, using: &g)))
            occupied = Bool.random(using: &g)
        }
        var commandable: BACnetCommandable { BACnetCommandable(priorityArray: BACnetPriorityArray(slots)!, relinquishDefault: relinquishDefault) }
        var description: String { "slots \(commandable.priorityArray) default \(fmt(relinquishDefault)) at \(priority): \(request), occupied \(occupied)" }
        static let gen = Generator<Case, Shrink.None<Case>>(run: { rng in Case(seed: rng.next()) })
    }

    /// An independent reading of ASHRAE 135 §19.2, from the text.
    static func oracle(_ c: Case) -> (pv: Double, agentLevel: Double, over: Int?) {
        var s = c.slots
        let k = Int(c.priority.level) - 1
        switch c.request {
        case .write(let v): s[k] = v
        case .relinquish: s[k] = nil
        }
        let pv = s.compactMap { $0 }.first ?? c.relinquishDefault
        let agentLevel = s[k...].compactMap { $0 }.first ?? c.relinquishDefault
        let over = s[..<k].firstIndex { $0 != nil }.map { $0 + 1 }
        return (pv, agentLevel, over)
    }

    @Test func RL5_effectAgreesWithTheStandardOnRandomPriorityArrays() async {
        await propertyCheck(count: 3000, input: Case.gen) { c in
            let o = Self.oracle(c)
            guard let e = BACnetCommanding.effect(of: c.request, at: c.priority, on: c.commandable) else {
                Issue.record("no effect for \(c)"); return
            }
            #expect(e.effective == o.pv, "\(c)")
            #expect(e.decided == o.agentLevel, "\(c)")
            #expect(e.overriddenBy.map { Int($0.level) } == o.over, "\(c)")
            // The read-back of exactly that state agrees: overridden iff a higher priority holds.
            let after = BACnetCommanding.applying(c.request, at: c.priority, to: c.commandable)
            let rb = BACnetCommanding.readBack(c.request, at: c.priority, after: after)
            switch (c.request, o.over) {
            case (.write, nil): #expect(rb == .executed(value: o.pv), "\(c)")
            case (.write, let p?): #expect(rb == .overridden(priority: BACnetPriority(p)!, presentValue: o.pv), "\(c)")
            case (.relinquish, _): #expect(rb == .relinquished(presentValue: o.pv, source: BACnetCommanding.presentValue(after).source), "\(c)")
            }
            // Only the agent's slot changes.
            for level in BACnetPriority.range where level != Int(c.priority.level) {
                #expect(after.priorityArray[BACnetPriority(level)!] == c.commandable.priorityArray[BACnetPriority(level)!])
            }
        }
    }

    /// No allowed command leaves an occupied room's CRAC stopped at the agent's level, whatever
    /// the priority array: RL-5 is decided on the value that takes effect.
    @Test func RL5_noAllowedCommandStopsLifeSupportInAnOccupiedRoom() async {
        await propertyCheck(count: 3000, input: Case.gen) { c in
            var site = BACnetDemo.site
            site.bacnet = BACnetSettings(writePriority: c.priority)
            let state = BACnetDemo.state(c.occupied ? Demo.occupied : [:], site: site)
            let d = Policy.decideBACnet(agent: Demo.facilities, point: "crac-2.run", request: c.request,
                                        commandable: c.commandable, in: state)
            let o = Self.oracle(c)
            if c.occupied && o.agentLevel != 1 {
                #expect(d.decision.rule == .rl5, "\(c): \(d.decision)")
            } else {
                #expect(d.decision == .allowed, "\(c): \(d.decision)")
            }
            #expect(d.command.value == o.agentLevel)
        }
    }

    /// A door: no allowed command leaves it locked at the agent's level while the zone is occupied.
    @Test func RL3_noAllowedCommandLocksADoorInAnOccupiedRoom() async {
        await propertyCheck(count: 2000, input: Case.gen) { c in
            var site = BACnetDemo.site
            site.bacnet = BACnetSettings(writePriority: c.priority)
            let state = BACnetDemo.state(c.occupied ? Demo.occupied : [:], site: site)
            let d = Policy.decideBACnet(agent: Demo.facilities, point: "sra-door.lock", request: c.request,
                                        commandable: c.commandable, in: state, approved: true)
            let o = Self.oracle(c)
            #expect((d.decision == .allowed) == !(c.occupied && o.agentLevel == 1), "\(c): \(d.decision)")
        }
    }
}

@Suite("Issue 17: agents write only an output's Present_Value (RL-8)")
struct BACnetRL8Tests {
    static let forbidden: [BACnetPropertyId] = [
        .outOfService, .reliability, .relinquishDefault, .priorityArray, .notificationClass, .eventEnable,
        .notifyType, .ackRequired, .limitEnable, .highLimit, .statusFlags, .eventState, .alarmValue,
    ]

    /// A site built in code (no loader) whose CRAC run command is bound to `property`.
    static func site(_ property: BACnetPropertyId) -> Site {
        BACnetDemo.makeSite(property: { $0.id == "crac-1.run" ? property : .presentValue })
    }

    @Test("the policy denies every forbidden property structurally, whatever the plant",
          arguments: forbidden.map(\.yamlName))
    func RL8_forbiddenBACnetPropertyIsNeverWritable(_ name: String) throws {
        let property = try #require(BACnetPropertyId(yamlName: name))
        let site = Self.site(property)
        let state = BACnetDemo.state(site: site)
        let d = Demo.decide("crac-1.run", 1, in: state, approved: true)
        #expect(d.rule == .rl8, "\(d)")
        guard case .denied(_, let why) = d else { return }
        #expect(why.contains("agents may never write (\(name) is never an agent's to write"), "\(why)")
        #expect(!why.contains("binary-output:"), "the object is never named to the agent: \(why)")
        #expect(Policy.deniedWhateverThePlant(WriteCommand(agent: Demo.facilities, point: "crac-1.run", value: 1), in: state))
        // Through the BACnet entry point too, for a release as for a value.
        for r in [BACnetCommand.write(1), .relinquish] {
            #expect(Policy.decideBACnet(agent: Demo.facilities, point: "crac-1.run", request: r,
                                        commandable: BACnetDemo.commandable([16: 1], default: 1), in: state).decision.rule == .rl8)
        }
    }

    @Test func RL8_otherPropertiesAndObjectTypesAreNotWritableEither() {
        // Not forbidden by name, but not Present_Value: still RL-8.
        #expect(Demo.decide("crac-1.run", 1, in: BACnetDemo.state(site: Self.site(.descriptionText)), approved: true).rule == .rl8)
        // Present_Value of an object type an agent cannot command.
        for type in [BACnetObjectType.binaryInput, .lifeSafetyPoint, .command, .accessDoor, .schedule, .multiStateOutput] {
            var site = BACnetDemo.site
            var p = site.point("crac-1.run")!
            p.binding = .bacnet(BACnetPointAddress(object: BACnetObjectId(type: type, instance: 1)))
            site = Site(name: site.name, timing: site.timing, zones: site.zones, buses: site.buses, devices: site.devices,
                        points: site.points.map { $0.id == p.id ? p : $0 }, agents: site.agents, operators: site.operators,
                        approvals: site.approvals, bacnet: site.bacnet)
            #expect(Demo.decide("crac-1.run", 1, in: BACnetDemo.state(site: site), approved: true).rule == .rl8, "\(type)")
        }
        // Present_Value of a binary output is an agent's to write.
        #expect(Demo.decide("crac-1.run", 1, in: BACnetDemo.state(), approved: true) == .allowed)
    }

    @Test func RL8_noAgentPriorityNoBACnetCommand() {
        var site = BACnetDemo.site
        site.bacnet = nil
        for r in [BACnetCommand.write(0), .relinquish] {
            let d = Policy.decideBACnet(agent: Demo.facilities, point: "sra-door.lock", request: r,
                                        commandable: BACnetDemo.commandable([:], default: 0), in: BACnetDemo.state(site: site))
            #expect(d.decision.rule == .notWritable, "\(d.decision)")
        }
    }

    @Test func RL8_agentPrioritiesAbove9DoNotExist() {
        for level in 1...8 { #expect(BACnetSettings(writePriority: BACnetPriority(level)!) == nil) }
        for level in 9...16 { #expect(BACnetSettings(writePriority: BACnetPriority(level)!)?.writePriority.level == UInt8(level)) }
    }
}
