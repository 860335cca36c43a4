import Foundation
import Logging
import RedlineCore
import RedlineIO
import RedlineTestSupport
import Testing

/// Interop with pymodbus (PyPI), a Modbus implementation we did not write.
@Suite("Interop with pymodbus", .serialized)
struct InteropTests {
    static let scripts = root.appendingPathComponent("Tests/interop")

    static func python() -> String? {
        for p in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin").split(separator: ":") {
            let c = "\(p)/python3"
            if FileManager.default.isExecutableFile(atPath: c) { return c }
        }
        return nil
    }

    /// Runs a python script to completion and returns its stdout.
    static func run(_ script: String, _ args: [String], dir: TempDir) throws -> String {
        guard let py = python() else { throw TestSupportError("python3 not found") }
        let child = try ChildProcess(executable: py, arguments: [scripts.appendingPathComponent(script).path] + args,
                                     logPath: dir.file("\(script).log"))
        child.process.waitUntilExit()
        _ = child.waitForOutput(containing: "\n", timeout: 2)
        #expect(child.process.terminationStatus == 0, "\(script) failed: \(child.stderr)")
        return child.stdout
    }

    @Test("a pymodbus client reads and writes redline-sim")
    func pymodbusClientAgainstSim() throws {
        let dir = TempDir()
        let (siteFile, ports) = try TestSites.withFreePorts(demoSiteFile, in: dir)
        let sim = try startSim(siteFile, in: dir, manual: true)
        defer { sim.stop() }
        // Demo ports: 15022 sra-env, 15024 sra-door, 15025 crac-1, 15020 fire-panel.
        let args = [15022, 15024, 15025, 15020].map { String(ports[$0]!) }
        let out = try Self.run("pymodbus_client.py", args, dir: dir)
        let json = try JSON.parse(out.trimmingCharacters(in: .whitespacesAndNewlines))
        func nums(_ k: String) -> [Double] { json[k]?.arrayValue?.compactMap(\.numberValue) ?? [] }
        // 22.0 °C (x0.1), 45 % RH (x0.1), 20.90 % O2 (x0.01), 0.040 % CO2 (x0.001).
        #expect(nums("env_ir") == [220, 450, 2090, 40])
        #expect(json["door_lock_before"] == 0)
        #expect(json["door_contact"] == 1)
        #expect(json["crac_setpoint_before"] == 220)
        #expect(nums("fire_di") == [0, 0])
        #expect(json["door_lock_after"] == 1)
        #expect(json["crac_setpoint_after"] == 255)
        #expect(nums("fire_coils_after") == [1, 0, 1, 0])
        #expect(json["other_unit_is_error"] == true)
        // The writes changed the simulated devices' physical state.
        let plant = try sim.plant()
        #expect(plant["sra-door.lock"] == 1)
        #expect(plant["crac-1.setpoint"] == 25.5)
        #expect(plant["fire-panel.silence"] == 1)
        #expect(plant["fire-panel.acknowledge"] == 0)
        #expect(plant["fire-panel.reset"] == 1)
    }

    @Test("RedlineIO reads and writes a pymodbus server")
    func redlineIOAgainstPymodbus() async throws {
        let dir = TempDir()
        let port = freeTCPPorts(1)[0]
        let py = try #require(Self.python())
        let server = try ChildProcess(executable: py,
                                      arguments: [Self.scripts.appendingPathComponent("pymodbus_server.py").path, String(port), "3"],
                                      logPath: dir.file("server.log"))
        defer { server.stop() }
        #expect(server.waitForOutput(containing: "ready", timeout: 20), "pymodbus server: \(server.stderr)")

        let bus = Bus(id: "py", kind: .modbusTCP(host: "127.0.0.1", port: port), timeoutMs: 500)
        func pt(_ name: String, _ role: Role, _ table: ModbusTable, _ address: Int, scale: Double = 1, signed: Bool = false, unit: Int = 3) -> Point {
            Point(id: "dev\(unit).\(name)", device: "dev\(unit)", name: name, role: role, zone: "z", bus: "py", unitId: unit,
                  binding: .modbus(table: table, address: address, scale: scale, signed: signed))
        }
        let points = [
            pt("temperature", .temperature, .inputRegister, 0, scale: 0.1, signed: true),
            pt("humidity", .humidity, .inputRegister, 1, scale: 0.1),
            pt("oxygen", .oxygen, .inputRegister, 2, scale: 0.01),
            pt("co2", .co2, .inputRegister, 3, scale: 0.001),
            pt("contact", .doorContact, .discreteInput, 0),
            pt("occupied", .occupancy, .discreteInput, 1),
            pt("lock", .egressLock, .coil, 0),
            pt("run", .coolingRun, .coil, 1),
            pt("setpoint", .temperatureSetpoint, .holdingRegister, 0, scale: 0.1),
            pt("delay", .dispatchDelay, .holdingRegister, 1),
            pt("temperature", .temperature, .inputRegister, 0, scale: 0.1, signed: true, unit: 9),
        ]
        let site = Site(name: "interop", zones: [Zone(id: "z")], buses: [bus],
                        devices: [Device(id: "dev3", profile: "p", bus: "py", unit: 3, zone: "z"),
                                  Device(id: "dev9", profile: "p", bus: "py", unit: 9, zone: "z")],
                        points: points, agents: [])
        let (logger, _) = capturingLogger()
        let io = PlantIO(site: site, logger: logger)
        io.start()
        defer { io.shutdown() }

        let r = await io.read(points.filter { $0.device == "dev3" }.map(\.id))
        func v(_ id: String) -> Double? { try? r[id]?.get() }
        #expect(v("dev3.temperature") == -5.2)  // 0xFFCC, signed, x0.1
        #expect(v("dev3.humidity") == 45.6)
        #expect(v("dev3.oxygen") == 20.9)
        #expect(v("dev3.co2") == 0.04)
        #expect(v("dev3.contact") == 1)
        #expect(v("dev3.occupied") == 0)
        #expect(v("dev3.lock") == 0)
        #expect(v("dev3.run") == 1)
        #expect(v("dev3.setpoint") == 21.5)
        #expect(v("dev3.delay") == 7)

        #expect((try? (await io.write("dev3.lock", value: 1)).get()) == 1)
        #expect((try? (await io.write("dev3.run", value: 0)).get()) == 0)
        #expect((try? (await io.write("dev3.setpoint", value: 23.4)).get()) == 23.4)
        #expect((try? (await io.write("dev3.delay", value: 120)).get()) == 120)

        // An independent pymodbus client sees what RedlineIO wrote.
        let check = try Self.runInline(py, """
            from pymodbus.client import ModbusTcpClient
            c = ModbusTcpClient('127.0.0.1', port=\(port)); c.connect()
            print([int(b) for b in c.read_coils(0, count=2, device_id=3).bits[:2]], c.read_holding_registers(0, count=2, device_id=3).registers)
            """, dir: dir)
        #expect(check.contains("[1, 0] [234, 120]"), "pymodbus saw: \(check)")

        // pymodbus answers an unknown unit with exception 4: a typed error, every point of that device faulted.
        let other = await io.read(["dev9.temperature"])["dev9.temperature"]
        #expect(other == .failure(.exception(code: 4, "server device failure")), "\(String(describing: other))")
    }

    static func runInline(_ py: String, _ code: String, dir: TempDir) throws -> String {
        let child = try ChildProcess(executable: py, arguments: ["-c", code], logPath: dir.file("inline.log"))
        child.process.waitUntilExit()
        _ = child.waitForOutput(containing: "\n", timeout: 2)
        return child.stdout
    }
}
