import Foundation
import Logging
import RedlineCore
import RedlineIO
import RedlineTestSupport
import Testing

@Suite("Modbus RTU multi-drop line through redline-sim", .serialized)
struct RTUMultiDropTests {
    /// One RS-485 line with four units, as RTU buses usually are (the fire panel is every zone's alarm source).
    static func site(_ dir: TempDir) throws -> String {
        try dir.write("rtu.yaml", """
            site: rtu-test
            # 19200 baud cannot scan these four units every 100 ms (README, the timing envelope).
            timing: {scan-interval-ms: 250, stale-after-ms: 1000}
            zones:
              - {id: building, building-wide: true}
              - {id: room}
            buses:
              - {id: rs485, modbus-rtu: {device: \(dir.path)/ttyRS485, baud: 19200, parity: E}, timeout-ms: 200}
            devices:
              - {id: fire, profile: fire-alarm-panel,        bus: rs485, unit: 1, zone: building}
              - {id: env,  profile: environment-sensor,      bus: rs485, unit: 3, zone: room}
              - {id: door, profile: maglock-door-controller, bus: rs485, unit: 7, zone: room}
              - {id: crac, profile: crac-unit,               bus: rs485, unit: 9, zone: room}
            agents: []
            operators:
              - {uid: 0}
            """)
    }

    @Test("every unit on the line answers; a frame for an absent unit does not disturb the next")
    func multiDrop() async throws {
        let dir = TempDir()
        let siteFile = try Self.site(dir)
        let site = try loadSite(siteFile)
        let sim = try startSim(siteFile, in: dir, manual: true)
        defer { sim.stop() }
        let (logger, _) = capturingLogger()
        var io = PlantIO(site: site, logger: logger)
        io.start()

        let all = await io.read(site.points.map(\.id))
        for p in site.points { #expect((try? all[p.id]?.get()) != nil, "\(p.id): \(String(describing: all[p.id]))") }
        #expect(try all["env.oxygen"]?.get() == 20.9)
        #expect(try all["door.contact"]?.get() == 1)
        #expect((try? (await io.write("door.lock", value: 1)).get()) == 1)
        #expect((try? (await io.write("crac.setpoint", value: 19.5)).get()) == 19.5)
        let plant = try sim.plant()
        #expect(plant["door.lock"] == 1)
        #expect(plant["crac.setpoint"] == 19.5)

        // A unit nobody serves stays silent (a timeout), and the line keeps working.
        // (One master on the line at a time, as on RS-485.)
        io.shutdown()
        try await Task.sleep(for: .milliseconds(200))
        let ghost = Bus(id: "rs485", kind: site.buses[0].kind, timeoutMs: 200)
        let ghostPoint = Point(id: "ghost.t", device: "ghost", name: "t", role: .temperature, zone: "room", bus: "rs485",
                               unitId: 5, binding: .modbus(table: .inputRegister, address: 0, scale: 0.1, signed: true))
        let ghostSite = Site(name: "ghost", zones: [Zone(id: "room")], buses: [ghost],
                             devices: [Device(id: "ghost", profile: "p", bus: "rs485", unit: 5, zone: "room")],
                             points: [ghostPoint], agents: [])
        let ghostIO = PlantIO(site: ghostSite, logger: logger)
        let silent = await ghostIO.read(["ghost.t"])["ghost.t"]
        #expect(silent == .failure(.timeout), "\(String(describing: silent))")
        ghostIO.shutdown()
        try await Task.sleep(for: .milliseconds(200))
        io = PlantIO(site: site, logger: logger)
        io.start()
        defer { io.shutdown() }
        let after = await io.read(["env.temperature", "door.lock", "crac.fault"])
        #expect(try after["env.temperature"]?.get() == 22)
        #expect(try after["door.lock"]?.get() == 1)
        #expect(try after["crac.fault"]?.get() == 0)

        // A fault on one unit leaves the others on the line answering.
        try sim.fault("door", "exception")
        let mixed = await io.read(site.points.map(\.id))
        #expect(mixed["door.lock"] == .failure(.exception(code: 4, "server device failure")))
        #expect(mixed["door.contact"] == .failure(.exception(code: 4, "server device failure")))
        #expect((try? mixed["env.co2"]?.get()) == 0.04)
        #expect((try? mixed["crac.run"]?.get()) == 1)
    }
}
