import Foundation
import PropertyBased
import Testing
import RedlineConfig
import RedlineCore

let demoBACnetSite = repoPath("Firmware-Configs/demo-datacenter-bacnet.yaml")

/// Issue 17, configuration: bacnet-ip buses, devices by device instance, points by object,
/// instance and property, one site-wide agent priority (9-16), RL-8 in the loader, overlaps on
/// physical endpoints. Each broken fixture asserts the exact FILE:LINE:COLUMN and the token there.
@Suite("Issue 17: BACnet/IP configuration")
struct BACnetConfigTests {
    typealias E = FixtureTests.Expected
    static func e(_ line: Int, _ column: Int, _ token: String, _ message: String) -> E { FixtureTests.e(line, column, token, message) }

    static let siteCases: [(String, [E])] = [
        ("bacnet-priority-too-high", [e(9, 26, "8", "write-priority 8 is above what agents may have: priorities 1-8 belong to life safety, critical equipment control and manual operators; agents write at 9-16")]),
        ("bacnet-priority-missing", [e(8, 25, "{address", "bus 'bn' is a bacnet-ip bus, but the site fixes no agent priority: add `bacnet: {write-priority: P}`")]),
        ("bacnet-settings-without-bus", [e(8, 1, "bacnet", "bacnet settings apply only to a site with a bacnet-ip bus")]),
        ("bacnet-unit-on-bacnet-bus", [e(13, 53, "unit", "device 'crac' is on BACnet/IP bus 'bn', which names devices by device-instance, not by a Modbus unit id")]),
        ("bacnet-instance-on-modbus-bus", [e(12, 65, "device-instance", "device-instance names devices on a bacnet-ip bus; 'bus-a' is a Modbus bus")]),
        ("bacnet-device-instance-range", [e(13, 70, "4194303", "device instance 4194303 is outside 0-4194302 (4194303 is BACnet's wildcard")]),
        ("bacnet-duplicate-instance", [e(15, 74, "301", "device instance 301 is already device 'crac' on bus 'bn' (127.0.0.1:47808)")]),
        ("bacnet-profile-on-modbus-bus", [e(12, 54, "bus-a", "profile 'bacnet-vav-controller' has BACnet points (temperature, occupied, setpoint, fan) but bus 'bus-a' is a Modbus bus")]),
        ("bacnet-retries-on-modbus", [e(7, 61, "retries", "retries apply only to bacnet-ip buses; bus 'bus-a' is modbus-tcp")]),
        ("bacnet-retries-too-slow", [e(8, 86, "2", "bus 'bn' gives up on a silent device only after 3 x timeout-ms 200 = 600 ms, which is not below the stale window (stale-after-ms 500)")]),
        // Aliases on one physical endpoint: 127.0.0.1 and localhost, same port, same device instance.
        ("bacnet-aliased-point", [
            e(15, 10, "crac-b", "point crac-b.run overlaps crac.run: both at device 301 binary-output:1.present-value of one physical endpoint, this host (loopback) UDP port 47808: bus 'bn-2' (localhost:47808) and bus 'bn' (127.0.0.1:47808) reach the same device"),
            e(15, 10, "crac-b", "point crac-b.setpoint overlaps crac.setpoint: both at device 301 analog-value:1.present-value"),
            e(15, 10, "crac-b", "point crac-b.fault overlaps crac.fault: both at device 301 binary-input:1.present-value"),
        ]),
    ]

    static let profileCases: [(String, [E])] = [
        // RL-8 in the loader: the properties agents may never write, and anything but Present_Value.
        ("bacnet-forbidden-property", [
            e(4, 89, "out-of-service", "point of role general-output is writable by agents, but out-of-service is never an agent's to write"),
            e(5, 89, "reliability", "but reliability is never an agent's to write"),
            e(6, 90, "relinquish-default", "point of role cooling-run is writable by agents, but relinquish-default is never an agent's to write: it decides which command takes effect"),
            e(7, 90, "priority-array", "but priority-array is never an agent's to write"),
            e(8, 89, "notification-class", "but notification-class is never an agent's to write: it is an alarm or notification property"),
            e(9, 89, "event-enable", "but event-enable is never an agent's to write"),
            e(10, 89, "limit-enable", "but limit-enable is never an agent's to write"),
            e(11, 89, "description", "agents write only present-value, not description (RL-8)"),
        ]),
        ("bacnet-unknown-object", [
            e(4, 46, "binary-outptu", "unknown object type 'binary-outptu'"),
            e(5, 49, "command", "a command object cannot carry a point"),
            e(6, 86, "present-valu", "unknown property 'present-valu'"),
        ]),
        ("bacnet-output-on-input-object", [
            e(4, 47, "binary-input", "role egress-lock is an output but binary-input objects cannot be commanded by an agent: an input's present-value is read-only by protocol"),
            e(5, 47, "life-safety-point", "role alarm-reset is an output but life-safety-point objects cannot be commanded by an agent (life-safety objects answer only to LifeSafetyOperation"),
            e(6, 49, "multi-state-value", "role general-output is an output but multi-state-value objects cannot be commanded by an agent"),
        ]),
        ("bacnet-role-object-mismatch", [
            e(4, 47, "binary-input", "role temperature cannot live on object type binary-input: it carries only 0 or 1"),
            e(5, 47, "analog-value", "role cooling-run cannot live on object type analog-value: it carries a number, not the 0 or 1 of cooling-run"),
            e(6, 47, "life-safety-zone", "role occupancy cannot live on object type life-safety-zone: it carries a life-safety state"),
            e(7, 82, "scale", "scale applies only to Modbus points, not to a BACnet object"),
        ]),
        ("bacnet-mixed-location", [
            e(4, 64, "object", "a point has exactly one of table (Modbus), line (GPIO) or object (BACnet), not both table and object"),
            e(5, 5, "{", "a point with an object needs an instance"),
            e(6, 74, "4194303", "object instance 4194303 is outside 0-4194302"),
            e(7, 87, "status-flags", "an input reads present-value (its status-flags and reliability are read with it, to judge it: RL-0), not status-flags"),
            e(8, 63, "instance", "instance applies only to BACnet points (with an object)"),
        ]),
    ]

    @Test("a broken BACnet site reports its error at the exact position", arguments: siteCases.map(\.0))
    func site(_ name: String) throws {
        try FixtureTests.checkSite(name, try #require(Self.siteCases.first { $0.0 == name }?.1))
    }

    @Test("a broken BACnet profile reports its error at the exact position", arguments: profileCases.map(\.0))
    func profile(_ name: String) throws {
        try FixtureTests.checkProfiles(name, file: "test-device.yaml", try #require(Self.profileCases.first { $0.0 == name }?.1))
    }

    @Test func demoBACnetSiteLoads() throws {
        let site = try SiteLoader.load(siteFile: demoBACnetSite, devicesDir: devicesDir)
        #expect(site.name == "summitbridge-dc2-bacnet")
        #expect(site.bacnet?.writePriority == BACnetPriority(9))
        let modbus = try SiteLoader.load(siteFile: demoSite, devicesDir: devicesDir)
        // The same points, roles and zones as the Modbus demo: scenarios and the red-team corpus
        // address them by the same names.
        #expect(site.points.map(\.id) == modbus.points.map(\.id))
        #expect(site.points.map(\.role) == modbus.points.map(\.role))
        #expect(site.points.map(\.zone) == modbus.points.map(\.zone))
        // The door, the CRACs and the fire panel are BACnet devices, each its own B/IP node on 127.0.0.1.
        let bacnetDevices = site.devices.filter { $0.deviceInstance != nil }
        #expect(Set(bacnetDevices.map(\.id)) == ["fire-panel", "sra-door", "crac-1", "crac-2", "crac-3", "crac-4"])
        var ports = Set<Int>()
        for d in bacnetDevices {
            let bus = try #require(site.buses.first { $0.id == d.bus })
            guard case .bacnetIP(let address, let port) = bus.kind else { Issue.record("\(d.id) is on \(bus.kind)"); continue }
            #expect(address == "127.0.0.1" && (47808...47813).contains(port))
            #expect(ports.insert(port).inserted)
            #expect(d.unit == nil)
            #expect(Int64(bus.timeoutMs * (1 + bus.retries)) < site.timing.staleAfterMs)
        }
        let alarm = try #require(site.point("fire-panel.alarm"))
        #expect(alarm.binding == .bacnet(BACnetPointAddress(object: BACnetObjectId(type: .lifeSafetyZone, instance: 1))))
        #expect(alarm.deviceInstance == 100)
        let lock = try #require(site.point("sra-door.lock"))
        #expect(lock.binding == .bacnet(BACnetPointAddress(object: BACnetObjectId(type: .binaryOutput, instance: 1), property: .presentValue)))
        #expect(lock.deviceInstance == 200 && lock.unitId == nil)
        // Every writable BACnet point is an output's Present_Value an agent may command (RL-8).
        for p in site.points where p.role.isOutput {
            if case .bacnet(let a) = p.binding { #expect(a.agentWriteRefusal == nil, "\(p.id)") }
        }
    }

    @Test func everyBACnetProfileOfTheRepositoryLoads() throws {
        let profiles = try SiteLoader.loadProfiles(devicesDir: devicesDir)
        for name in ["bacnet-fire-panel-gateway", "bacnet-access-door", "bacnet-crac-unit", "bacnet-vav-controller"] {
            let p = try #require(profiles[name], "\(name)")
            for pp in p.points {
                guard case .bacnet(let a) = pp.location else { Issue.record("\(name).\(pp.name) is not a BACnet point"); continue }
                if pp.role.isOutput { #expect(a.agentWriteRefusal == nil, "\(name).\(pp.name)") }
                else { #expect(a.property == .presentValue) }
            }
        }
        // The fire panel's silence, acknowledge, reset and disable exist, and are alarm controls (RL-1).
        let panel = try #require(profiles["bacnet-fire-panel-gateway"])
        #expect(panel.points.filter(\.role.isAlarmControl).map(\.name) == ["silence", "acknowledge", "reset", "disable"])
    }

    @Test func bacnetDefaultsAndPriorityRange() throws {
        // Port 47808 by default; every priority 9-16 loads; 1-8 and 17 are refused at the number.
        let text = try String(contentsOfFile: FixtureTests.fixtures.appendingPathComponent("sites/bacnet-priority-too-high.yaml").path, encoding: .utf8)
        for p in 1...17 {
            let file = try temporaryFile(text.replacingOccurrences(of: "write-priority: 8", with: "write-priority: \(p)")
                .replacingOccurrences(of: "address: 127.0.0.1, port: 47808", with: "address: 127.0.0.1"))
            let d = diagnostics(site: file)
            if (9...16).contains(p) {
                #expect(d.isEmpty, "\(p): \(d)")
                let site = try SiteLoader.load(siteFile: file, devicesDir: devicesDir)
                #expect(site.bacnet?.writePriority.level == UInt8(p))
                #expect(site.buses.first { $0.id == "bn" }?.kind == .bacnetIP(address: "127.0.0.1", port: 47808))
            } else {
                #expect(d.count == 1 && d[0].line == 9 && d[0].column == 26, "\(p): \(d)")
                #expect(d.first?.message.contains(p == 17 ? "is not a BACnet priority (1-16)" : "is above what agents may have") == true, "\(d)")
            }
        }
    }

    @Test func aBACnetDeviceAndAModbusServerOnOnePortAreNoAlias() throws {
        // UDP 47808 and TCP 47808 of one host are two endpoints; the same BACnet object of two
        // different device instances on one endpoint is two points.
        let text = try String(contentsOfFile: FixtureTests.fixtures.appendingPathComponent("sites/bacnet-aliased-point.yaml").path, encoding: .utf8)
            .replacingOccurrences(of: "bus: bn-2, device-instance: 301", with: "bus: bn-2, device-instance: 302")
            .replacingOccurrences(of: "{id: bus-a, modbus-tcp: {host: 127.0.0.1, port: 15020}}", with: "{id: bus-a, modbus-tcp: {host: 127.0.0.1, port: 47808}}")
        let file = try temporaryFile(text)
        #expect(diagnostics(site: file).isEmpty, "\(diagnostics(site: file))")
    }
}

/// Property: the loader accepts a BACnet profile point exactly when an independent reading of
/// issue 17's rules does, over random (role, object type, property) triples; and every writable
/// point it accepts is one the policy lets an agent command (RL-8 holds in both places).
@Suite("Issue 17: BACnet points accepted by the loader, against the rules")
struct BACnetPointPropertyTests {
    static let properties: [String] = ["present-value", "out-of-service", "reliability", "relinquish-default",
                                       "priority-array", "notification-class", "event-enable", "notify-type",
                                       "ack-required", "limit-enable", "status-flags", "description", "units",
                                       "tracking-value", "present-valeu"]
    static let objects: [String] = BACnetObjectType.allCases.map(\.yamlName) + ["analog-valeu"]
    static let pointObjects = ["analog-input", "analog-output", "analog-value", "binary-input", "binary-output", "binary-value",
                               "multi-state-input", "multi-state-output", "multi-state-value", "life-safety-point", "life-safety-zone"]

    struct Case: CustomStringConvertible {
        var role: Role
        var object: String
        var property: String?
        init(seed: UInt64) {
            var g = SplitMix(state: seed)
            role = Role.allCases[Int(g.next() % UInt64(Role.allCases.count))]
            // Half the draws from the object types a point can use, half from all (and a misspelling).
            let pool = g.next() % 2 == 0 ? BACnetPointPropertyTests.pointObjects : BACnetPointPropertyTests.objects
            object = pool[Int(g.next() % UInt64(pool.count))]
            // The default property half the time.
            let k = Int(g.next() % UInt64(BACnetPointPropertyTests.properties.count * 2))
            property = k < BACnetPointPropertyTests.properties.count ? BACnetPointPropertyTests.properties[k] : nil
        }
        var description: String { "\(role.rawValue) on \(object).\(property ?? "(default)")" }
        static let gen = Generator<Case, Shrink.None<Case>>(run: { rng in Case(seed: rng.next()) })
    }

    struct SplitMix: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    /// Issue 17 and DESIGN §10, read from the text.
    static func oracle(_ c: Case) -> Bool {
        let binary = ["binary-input", "binary-output", "binary-value"]
        let analog = ["analog-input", "analog-output", "analog-value"]
        let multi = ["multi-state-input", "multi-state-output", "multi-state-value"]
        let lifeSafety = ["life-safety-point", "life-safety-zone"]
        guard (binary + analog + multi + lifeSafety).contains(c.object) else { return false }
        if let p = c.property, p != "present-value" { return false }  // outputs and inputs alike
        let commandable = ["analog-output", "analog-value", "binary-output", "binary-value"]
        let outputs: Set<Role> = Set(Role.allCases.filter(\.isOutput))
        if outputs.contains(c.role) && !commandable.contains(c.object) { return false }
        let numeric: Set<Role> = [.temperature, .oxygen, .co2, .humidity, .temperatureSetpoint, .dispatchDelay, .status]
        if binary.contains(c.object) { return !numeric.contains(c.role) }
        if analog.contains(c.object) { return numeric.contains(c.role) }
        if multi.contains(c.object) { return c.role == .status }
        return [.fireAlarm, .gasAlarm, .suppressionPredischarge, .suppressionDischarged, .fireTrouble].contains(c.role)
    }

    @Test func loaderAcceptsExactlyTheBACnetPointsTheRulesAllow() async {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("redline-bacnet-prop-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        var accepted = 0, refused = 0
        await propertyCheck(count: 600, input: Case.gen) { c in
            let dir = root.appendingPathComponent(UUID().uuidString)
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            let text = "profile: gen\ndescription: generated\npoints:\n  - {name: p, role: \(c.role.rawValue), object: \(c.object), instance: 7"
                + (c.property.map { ", property: \($0)" } ?? "") + "}\n"
            try text.write(to: dir.appendingPathComponent("gen.yaml"), atomically: true, encoding: .utf8)
            let loaded: DeviceProfile?
            var errors: [ConfigDiagnostic] = []
            do throws(ConfigErrors) { loaded = try SiteLoader.loadProfiles(devicesDir: dir.path)["gen"] } catch { loaded = nil; errors = error.diagnostics }
            #expect((loaded != nil) == Self.oracle(c), "\(c): \(errors.map(\.message))")
            if loaded != nil { accepted += 1 } else { refused += 1 }
            // Every refusal points into the profile, at the point's line.
            for e in errors { #expect(e.line == 4 && e.column >= 5, "\(c): \(e)") }
            if let pp = loaded?.points.first, case .bacnet(let a) = pp.location, pp.role.isOutput {
                #expect(a.agentWriteRefusal == nil, "\(c)")
            }
        }
        // Both sides of the rule were tried (a generator that only ever hits refusals proves little).
        #expect(accepted >= 20 && refused >= 20, "accepted \(accepted), refused \(refused)")
    }
}
