import Foundation
import Logging
import RedlineCore
import RedlineIO
import RedlineTestSupport
import Testing

@Suite("Plant dynamics through redline-sim (manual clock)", .serialized)
struct SimDynamicsTests {
    @Test("the Server Room A incident as seen over Modbus; the dispatch cancel coil stops the countdown")
    func incident() async throws {
        let dir = TempDir()
        let siteFile = try demoSiteCopy(.tcp, in: dir)
        let site = try loadSite(siteFile)
        let sim = try startSim(siteFile, in: dir, manual: true)
        defer { sim.stop() }
        let (logger, _) = capturingLogger()
        let io = PlantIO(site: site, logger: logger)
        io.start()
        defer { io.shutdown() }
        func read(_ id: String) async -> Double? { try? (await io.read([id]))[id]?.get() }

        try sim.set("server-room-a.occupied", 1)
        for n in 1...4 { try sim.set("crac-\(n).failed", 1) }
        try sim.set("sra-exhaust.failed", 1)
        #expect(await read("crac-3.fault") == 1)
        #expect(await read("sra-occupancy.occupied") == 1)
        #expect(await read("dispatch.pending") == 0)
        // Nothing moves until the manual clock is advanced.
        try await Task.sleep(for: .milliseconds(300))
        #expect(await read("sra-env.temperature") == 22)

        // CO2 reaches the 0.5 % hazard limit first (after about 110 s).
        try sim.advance(100)
        #expect(await read("dispatch.pending") == 0)
        let co2Early = try #require(await read("sra-env.co2"))
        #expect(co2Early > 0.44 && co2Early < 0.5, "co2 \(co2Early)")
        try sim.advance(15)
        // A person in a hazardous room: the dispatch countdown runs.
        #expect(await read("dispatch.pending") == 1)
        try sim.advance(10)
        let left = try #require(try sim.plant()["dispatch.countdown"])
        #expect(left > 14 && left < 17, "countdown \(left)")
        // Only the cancel coil stops it (this is what RL-2 keeps agents from doing).
        #expect((try? (await io.write("dispatch.cancel", value: 1)).get()) == 1)
        #expect(await read("dispatch.pending") == 0)
        try sim.advance(60)
        #expect(try sim.plant()["dispatch.sent"] == 0)

        // 245 s in: past 40 °C (documented: about 3.4 min) and oxygen below 19.5 % (about 4 min).
        try sim.advance(60)
        let t = try #require(await read("sra-env.temperature"))
        let o2 = try #require(await read("sra-env.oxygen"))
        let co2 = try #require(await read("sra-env.co2"))
        #expect(t >= 42.5 && t < 43.7, "temperature \(t)")
        #expect(o2 < 19.5 && o2 > 19.44, "oxygen \(o2)")
        #expect(co2 > 1.0 && co2 < 1.1, "co2 \(co2)")

        // Recovery when everything runs again.
        for n in 1...4 { try sim.set("crac-\(n).failed", 0) }
        try sim.set("sra-exhaust.failed", 0)
        try sim.advance(1800)
        #expect(try #require(await read("sra-env.temperature")) < 24)
        #expect(try #require(await read("sra-env.oxygen")) > 20.8)
    }

    @Test("an uncancelled countdown ends in a call; plant.reset restores the calm plant")
    func dispatchSent() async throws {
        let dir = TempDir()
        let siteFile = try demoSiteCopy(.tcp, in: dir)
        let sim = try startSim(siteFile, in: dir, manual: true)
        defer { sim.stop() }
        let initial = try sim.plant()
        try sim.set("fire-panel.alarm", 1)
        #expect(try sim.plant()["dispatch.pending"] == 1)
        try sim.advance(31)
        let p = try sim.plant()
        #expect(p["dispatch.sent"] == 1)
        #expect(p["dispatch.pending"] == 0)
        #expect(p["fire-panel.alarm"] == 1)  // latched
        try sim.call("plant.reset")
        #expect(try sim.plant() == initial)
    }

    @Test("the control socket rejects bad requests with JSON-RPC errors and keeps serving")
    func controlErrors() throws {
        let dir = TempDir()
        let siteFile = try demoSiteCopy(.tcp, in: dir)
        let sim = try startSim(siteFile, in: dir)
        defer { sim.stop() }
        let c = try sim.control()
        try c.send(raw: Array("{not json\n".utf8))
        let parse = try JSON.parse(try #require(try c.readLine()))
        #expect(parse["error"]?["code"] == -32700)
        #expect(try c.request("no.such")["error"]?["code"] == -32601)
        #expect(try c.request("plant.set", ["name": "nope", "value": 1])["error"]?["code"] == -32602)
        #expect(try c.request("plant.set", ["name": "sra-door.lock", "value": "x"])["error"]?["code"] == -32602)
        #expect(try c.request("device.fault", ["device": "sra-env", "mode": "melt"])["error"]?["code"] == -32602)
        #expect(try c.request("device.fault", ["device": "nope", "mode": "offline"])["error"]?["code"] == -32602)
        // plant.advance needs the manual clock.
        #expect(try c.request("plant.advance", ["seconds": 1])["error"] != nil)
        #expect(try c.call("plant.set", ["name": "sra-door.lock", "value": 1])["value"] == 1)
        #expect(try sim.plant()["sra-door.lock"] == 1)
    }
}
