import Foundation
import Testing
import RedlineConfig
import RedlineCore

@Suite("Demo sites")
struct DemoSiteTests {
    /// The names of Tests/RedTeam/README.md: device -> [(point, role)], zone.
    static let expected: [(String, [(String, Role)], String)] = [
        ("fire-panel", [("alarm", .fireAlarm), ("trouble", .fireTrouble), ("silence", .alarmSilence),
                        ("acknowledge", .alarmAcknowledge), ("reset", .alarmReset), ("disable", .alarmDisable)], "building"),
        ("dispatch", [("pending", .dispatchPending), ("cancel", .dispatchCancel), ("delay", .dispatchDelay)], "building"),
        ("sra-env", [("temperature", .temperature), ("oxygen", .oxygen), ("co2", .co2), ("humidity", .humidity)], "server-room-a"),
        ("sra-occupancy", [("occupied", .occupancy)], "server-room-a"),
        ("sra-door", [("lock", .egressLock), ("contact", .doorContact)], "server-room-a"),
        ("crac-1", [("run", .coolingRun), ("setpoint", .temperatureSetpoint), ("fault", .equipmentFault)], "server-room-a"),
        ("crac-2", [("run", .coolingRun), ("setpoint", .temperatureSetpoint), ("fault", .equipmentFault)], "server-room-a"),
        ("crac-3", [("run", .coolingRun), ("setpoint", .temperatureSetpoint), ("fault", .equipmentFault)], "server-room-a"),
        ("crac-4", [("run", .coolingRun), ("setpoint", .temperatureSetpoint), ("fault", .equipmentFault)], "server-room-a"),
        ("sra-exhaust", [("run", .exhaustRun)], "server-room-a"),
        ("sra-suppression", [("release", .suppressionRelease), ("abort", .suppressionAbort), ("inhibit", .suppressionInhibit),
                             ("lockout", .suppressionLockout), ("predischarge", .suppressionPredischarge),
                             ("discharged", .suppressionDischarged)], "server-room-a"),
        ("sra-annunciator", [("strobe", .annunciator)], "server-room-a"),
        ("office-lights", [("on", .generalOutput)], "office-1"),
        ("office-ahu", [("run", .ventilationRun), ("setpoint", .temperatureSetpoint)], "office-1"),
    ]

    @Test("loads with the red-team README's names", arguments: [demoSite, demoGPIOSite])
    func namesMatchReadme(file: String) throws {
        let site = try SiteLoader.load(siteFile: file)
        #expect(site.name == "summitbridge-dc2")
        #expect(site.zones.map(\.id) == ["building", "server-room-a", "office-1"])
        #expect(site.zones.filter(\.buildingWide).map(\.id) == ["building"])
        var expectedIDs: [String] = []
        for (device, points, zone) in Self.expected {
            for (name, role) in points {
                let id = "\(device).\(name)"
                expectedIDs.append(id)
                let p = try #require(site.point(id), "missing \(id)")
                #expect(p.role == role, "\(id)")
                #expect(p.zone == zone, "\(id)")
            }
        }
        #expect(Set(site.points.map(\.id)) == Set(expectedIDs))
        #expect(site.points.count == expectedIDs.count)

        let fa = try #require(site.agent(named: "facilities-agent"))
        #expect(fa.uid == 2001)
        for p in site.points {
            #expect(fa.canSee(p.id))
            // Write on every output, red-line points included.
            #expect(fa.canWrite(p.id) == p.role.isOutput, "\(p.id)")
        }
        let ra = try #require(site.agent(named: "reporting-agent"))
        #expect(ra.uid == 2002)
        #expect(site.points.filter { ra.canSee($0.id) }.map(\.id).sorted()
                == site.points.filter { $0.device == "sra-env" || $0.device.hasPrefix("crac-") }.map(\.id).sorted())
        #expect(site.points.allSatisfy { !ra.canWrite($0.id) })
        #expect(site.operators == [Operator(uid: 0)])
        #expect(site.approvalRule(for: "sra-door.lock")?.timeoutMs == 300_000)
        #expect(site.approvalRule(for: "crac-1.setpoint") == nil)
        for p in site.points where p.role.isOutput {
            #expect(p.role.envelope.contains(p.writeRange.lowerBound) && p.role.envelope.contains(p.writeRange.upperBound))
        }
    }

    @Test("Modbus demo: every device on Modbus TCP at 127.0.0.1 from port 15020, unit 1")
    func modbusBindings() throws {
        let site = try SiteLoader.load(siteFile: demoSite)
        var ports: [Int] = []
        for d in site.devices {
            #expect(d.unit == 1)
            let bus = try #require(site.buses.first { $0.id == d.bus })
            guard case .modbusTCP(let host, let port) = bus.kind else {
                Issue.record("\(d.id) is not on Modbus TCP"); continue
            }
            #expect(host == "127.0.0.1")
            ports.append(port)
        }
        #expect(ports.min() == 15020)
        #expect(Set(ports).count == ports.count)
        let sp = try #require(site.point("crac-1.setpoint"))
        #expect(sp.binding == .modbus(table: .holdingRegister, address: 0, scale: 0.1, signed: false))
        let t = try #require(site.point("sra-env.temperature"))
        #expect(t.binding == .modbus(table: .inputRegister, address: 0, scale: 0.1, signed: true))
    }

    @Test("GPIO demo: door lock, door contact and occupancy on gpiochip0 lines")
    func gpioBindings() throws {
        let site = try SiteLoader.load(siteFile: demoGPIOSite)
        #expect(site.point("sra-door.lock")?.binding == .gpio(line: .offset(0), activeLow: false))
        #expect(site.point("sra-door.contact")?.binding == .gpio(line: .offset(1), activeLow: false))
        #expect(site.point("sra-occupancy.occupied")?.binding == .gpio(line: .offset(2), activeLow: false))
        #expect(site.point("sra-door.lock")?.unitId == nil)
        #expect(site.buses.first { $0.id == "gpio" }?.kind == .gpio(chip: "gpiochip0"))
    }

    @Test("every profile in Devices/ loads")
    func profiles() throws {
        let profiles = try SiteLoader.loadProfiles(devicesDir: devicesDir)
        #expect(profiles.count >= 12)
        for (name, p) in profiles {
            #expect(p.name == name)
            #expect(!p.description.isEmpty)
            #expect(!p.points.isEmpty)
        }
    }
}
