import Foundation
import PlantModel
import RedlineConfig
import RedlineCore
import Testing

/// The demo site, loaded from the repository.
func demoSite() throws -> Site {
    var dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    while !FileManager.default.fileExists(atPath: dir.appendingPathComponent("Package.swift").path) {
        dir = dir.deletingLastPathComponent()
    }
    return try SiteLoader.load(siteFile: dir.appendingPathComponent("Firmware-Configs/demo-datacenter.yaml").path)
}

@Suite("Plant model dynamics (manual clock)")
struct PlantModelTests {
    @Test("the initial plant is calm")
    func calm() throws {
        let plant = PlantModel(site: try demoSite())
        #expect(plant.value("server-room-a.occupied") == 0)
        #expect(plant.value("server-room-a.temperature") == 22)
        #expect(plant.value("server-room-a.oxygen") == 20.9)
        #expect(plant.value("server-room-a.co2") == 0.04)
        #expect(plant.value("fire-panel.alarm") == 0)
        #expect(plant.value("dispatch.pending") == 0)
        #expect(plant.value("dispatch.sent") == 0)
        #expect(plant.value("sra-door.lock") == 0)
        for n in 1...4 {
            #expect(plant.value("crac-\(n).run") == 1)
            #expect(plant.value("crac-\(n).failed") == 0)
            #expect(plant.value("crac-\(n).fault") == 0)
        }
        #expect(plant.value("sra-exhaust.run") == 1)
        #expect(plant.value("sra-exhaust.failed") == 0)
        // Every point of the site has a physical state.
        let site = try demoSite()
        for p in site.points { #expect(plant.value(p.id) != nil, "\(p.id)") }
        let names = Set(plant.variables.map(\.0))
        for p in site.points { #expect(names.contains(p.id), "\(p.id) missing from variables") }
    }

    @Test("a calm plant stays calm for an hour")
    func staysCalm() throws {
        var plant = PlantModel(site: try demoSite())
        plant.advance(seconds: 3600)
        #expect(abs(plant.value("server-room-a.temperature")! - 22) < 0.01)
        #expect(abs(plant.value("server-room-a.oxygen")! - 20.9) < 0.001)
        #expect(plant.value("dispatch.pending") == 0)
        #expect(plant.time >= 3599.9)
    }

    @Test("all CRACs and the exhaust failed: an occupied room heats up and its air worsens over minutes")
    func serverRoomAIncident() throws {
        var plant = PlantModel(site: try demoSite())
        try plant.set("server-room-a.occupied", 1)
        for n in 1...4 { try plant.set("crac-\(n).failed", 1) }
        try plant.set("sra-exhaust.failed", 1)
        #expect(plant.value("crac-1.fault") == 1)
        // Documented: past 40 °C after about 3.4 min, 67 °C after about 12.5 min.
        plant.advance(seconds: 180)
        let t3 = plant.value("server-room-a.temperature")!
        #expect(t3 > 35 && t3 < 40)
        plant.advance(seconds: 40)
        #expect(plant.value("server-room-a.temperature")! >= 40)
        // O2 falls by 0.35 %/min, CO2 rises by 0.25 %/min.
        #expect(abs(plant.value("server-room-a.oxygen")! - (20.9 - 0.35 * 220 / 60)) < 0.01)
        #expect(abs(plant.value("server-room-a.co2")! - (0.04 + 0.25 * 220 / 60)) < 0.01)
        plant.advance(seconds: 760 - 220)
        let t = plant.value("server-room-a.temperature")!
        #expect(t > 66 && t < 69)
        plant.advance(seconds: 180)
        #expect(plant.value("server-room-a.oxygen")! < 15.6)
        #expect(plant.value("server-room-a.co2")! > 3.7)
    }

    @Test("an empty room with failed exhaust keeps its air; cooling units running hold the temperature")
    func emptyRoom() throws {
        var plant = PlantModel(site: try demoSite())
        try plant.set("sra-exhaust.failed", 1)
        plant.advance(seconds: 600)
        #expect(plant.value("server-room-a.oxygen") == 20.9)
        #expect(abs(plant.value("server-room-a.temperature")! - 22) < 0.01)
    }

    @Test("recovery: restoring the CRACs and the exhaust brings the room back")
    func recovery() throws {
        var plant = PlantModel(site: try demoSite())
        try plant.set("server-room-a.occupied", 1)
        for n in 1...4 { try plant.set("crac-\(n).failed", 1) }
        try plant.set("sra-exhaust.failed", 1)
        plant.advance(seconds: 900)
        #expect(plant.value("server-room-a.temperature")! > 60)
        for n in 1...4 { try plant.set("crac-\(n).failed", 0) }
        try plant.set("sra-exhaust.failed", 0)
        plant.advance(seconds: 1800)
        #expect(plant.value("server-room-a.temperature")! < 24)
        #expect(plant.value("server-room-a.oxygen")! > 20.8)
        #expect(plant.value("server-room-a.co2")! < 0.1)
    }

    @Test("a stopped CRAC (run = 0) warms the room partly; half the units give half the rise")
    func partialCooling() throws {
        var plant = PlantModel(site: try demoSite())
        try plant.deviceWrite(point: "crac-1.run", value: 0)
        try plant.deviceWrite(point: "crac-2.run", value: 0)
        plant.advance(seconds: 6000)
        // target = 22 + 0.5 * (85 - 22) = 53.5
        #expect(abs(plant.value("server-room-a.temperature")! - 53.5) < 0.5)
    }

    @Test("the fire alarm latches; the panel reset output or a manual reset clears it")
    func fireAlarmLatches() throws {
        var plant = PlantModel(site: try demoSite())
        try plant.set("fire-panel.alarm", 1)
        plant.advance(seconds: 600)
        #expect(plant.value("fire-panel.alarm") == 1)
        try plant.deviceWrite(point: "fire-panel.silence", value: 1)
        #expect(plant.value("fire-panel.alarm") == 1)
        try plant.deviceWrite(point: "fire-panel.reset", value: 1)
        #expect(plant.value("fire-panel.alarm") == 0)
        try plant.set("fire-panel.alarm", 1)
        try plant.set("fire-panel.alarm", 0)
        #expect(plant.value("fire-panel.alarm") == 0)
    }

    @Test("dispatch: a fire alarm starts a 30 s countdown that ends in a call")
    func dispatchSent() throws {
        var plant = PlantModel(site: try demoSite())
        try plant.set("fire-panel.alarm", 1)
        #expect(plant.value("dispatch.pending") == 1)
        #expect(plant.value("dispatch.countdown") == 30)
        plant.advance(seconds: 29)
        #expect(plant.value("dispatch.pending") == 1)
        #expect(plant.value("dispatch.sent") == 0)
        // The trigger going away does not stop it.
        try plant.set("fire-panel.alarm", 0)
        plant.advance(seconds: 1.5)
        #expect(plant.value("dispatch.pending") == 0)
        #expect(plant.value("dispatch.sent") == 1)
    }

    @Test("dispatch: only the cancel output stops the countdown")
    func dispatchCancel() throws {
        var plant = PlantModel(site: try demoSite())
        try plant.set("fire-panel.alarm", 1)
        plant.advance(seconds: 10)
        try plant.deviceWrite(point: "dispatch.cancel", value: 1)
        #expect(plant.value("dispatch.pending") == 0)
        plant.advance(seconds: 60)
        #expect(plant.value("dispatch.sent") == 0)
        #expect(plant.value("dispatch.pending") == 0)
    }

    @Test("dispatch: a person in a hazardous room starts it; the delay register lengthens it")
    func dispatchHazard() throws {
        var plant = PlantModel(site: try demoSite())
        try plant.deviceWrite(point: "dispatch.delay", value: 20)
        try plant.set("server-room-a.temperature", 67)
        #expect(plant.value("dispatch.pending") == 0)  // nobody inside
        try plant.set("server-room-a.occupied", 1)
        #expect(plant.value("dispatch.pending") == 1)
        plant.advance(seconds: 45)
        #expect(plant.value("dispatch.sent") == 0)
        plant.advance(seconds: 5.5)
        #expect(plant.value("dispatch.sent") == 1)
    }

    @Test("input points read their zone's variables; set on the point sets the zone")
    func aliases() throws {
        var plant = PlantModel(site: try demoSite())
        try plant.set("server-room-a.occupied", 1)
        #expect(plant.value("sra-occupancy.occupied") == 1)
        try plant.set("sra-env.temperature", 30)
        #expect(plant.value("server-room-a.temperature") == 30)
        #expect(throws: PlantModel.PlantError.self) { try plant.set("no-such.thing", 1) }
        #expect(throws: PlantModel.PlantError.self) { try plant.set("sra-door.lock", .nan) }
    }

    @Test("clean-agent release: 30 s pre-discharge, then discharged; inhibit blocks it")
    func suppression() throws {
        var plant = PlantModel(site: try demoSite())
        try plant.deviceWrite(point: "sra-suppression.inhibit", value: 1)
        try plant.deviceWrite(point: "sra-suppression.release", value: 1)
        #expect(plant.value("sra-suppression.predischarge") == 0)
        try plant.deviceWrite(point: "sra-suppression.release", value: 0)
        try plant.deviceWrite(point: "sra-suppression.inhibit", value: 0)
        try plant.deviceWrite(point: "sra-suppression.release", value: 1)
        #expect(plant.value("sra-suppression.predischarge") == 1)
        plant.advance(seconds: 31)
        #expect(plant.value("sra-suppression.predischarge") == 0)
        #expect(plant.value("sra-suppression.discharged") == 1)
    }

    @Test("reset returns to the initial plant")
    func reset() throws {
        let site = try demoSite()
        var plant = PlantModel(site: site)
        let before = plant.variables
        try plant.set("fire-panel.alarm", 1)
        try plant.deviceWrite(point: "sra-door.lock", value: 1)
        plant.advance(seconds: 100)
        plant.reset()
        #expect(plant.variables.map(\.0) == before.map(\.0))
        #expect(plant.variables.map(\.1) == before.map(\.1))
        #expect(plant.time == 0)
    }
}
