import Foundation
import Logging
import RedlineCore
import RedlineIO
import RedlineTestSupport
import Testing

@Suite("Device faults and bad input", .serialized)
struct FaultTests {
    static let faulty = "sra-env"
    static let healthy = ["sra-door.lock", "crac-1.setpoint", "fire-panel.alarm"]

    @Test("each fault mode makes the device's inputs non-good within one scan; recovery after none",
          arguments: Transport.allCases)
    func faultModes(_ transport: Transport) async throws {
        let dir = TempDir()
        let siteFile = try demoSiteCopy(transport, in: dir)
        let site = try loadSite(siteFile)
        let sim = try startSim(siteFile, in: dir)
        defer { sim.stop() }
        let (logger, logs) = capturingLogger()
        let io = PlantIO(site: site, logger: logger)
        io.start()
        defer { io.shutdown() }
        let scanner = Scanner(site: site, io: io, logger: logger)
        let envPoints = site.points.filter { $0.device == Self.faulty }.map(\.id)
        #expect(envPoints.count == 4)

        await scanner.scanOnce()  // connects every bus
        let first = await scanner.scanOnce()
        for id in envPoints + Self.healthy { #expect(first.readOK(id), "\(id) before any fault") }

        for mode in ["offline", "timeout", "exception", "garbage", "wrong-unit"] {
            try sim.fault(Self.faulty, mode)
            let snap = await scanner.scanOnce()
            for id in envPoints {
                #expect(snap.quality(id, site: site) == .fault, "\(transport) \(mode): \(id) is \(snap.quality(id, site: site))")
            }
            // Other devices keep answering (their freshness depends on machine load, not on the fault).
            for id in Self.healthy {
                #expect(snap.readOK(id), "\(transport) \(mode): healthy \(id) is \(snap.quality(id, site: site))")
            }
            // A write to a faulty device fails (and never claims success).
            try sim.fault("sra-door", mode)
            let w = await io.write("sra-door.lock", value: 0)
            #expect((try? w.get()) == nil, "\(transport) \(mode): write succeeded on a faulty device: \(w)")
            try sim.fault("sra-door", "none")

            try sim.fault(Self.faulty, "none")
            let recovered = await eventually {
                let s = await scanner.scanOnce()
                return envPoints.allSatisfy { s.readOK($0) } && Self.healthy.allSatisfy { s.readOK($0) }
            }
            #expect(recovered, "\(transport) \(mode): no recovery")
        }

        // slow: answers within the timeout, so readings stay good.
        try sim.fault(Self.faulty, "slow")
        let slow = await scanner.scanOnce()
        for id in envPoints { #expect(slow.readOK(id), "\(transport) slow: \(id)") }
        let w = await io.write("sra-door.lock", value: 0)
        #expect((try? w.get()) == 0)
        try sim.fault(Self.faulty, "none")

        // Each change of the device's state was logged once, not once per scan.
        let faults = logs.count("device fault", "device=\(Self.faulty)")
        let recoveries = logs.count("device answering again", "device=\(Self.faulty)")
        #expect(faults == 5, "fault log lines: \(faults)\n\(logs.all.joined(separator: "\n"))")
        #expect(recoveries == 5, "recovery log lines: \(recoveries)")
    }

    @Test("a fault persisting over many scans is logged once; the error kinds are typed", arguments: Transport.allCases)
    func loggedOnce(_ transport: Transport) async throws {
        let dir = TempDir()
        let siteFile = try demoSiteCopy(transport, in: dir)
        let site = try loadSite(siteFile)
        let sim = try startSim(siteFile, in: dir)
        defer { sim.stop() }
        let (logger, logs) = capturingLogger()
        let io = PlantIO(site: site, logger: logger)
        io.start()
        defer { io.shutdown() }
        let scanner = Scanner(site: site, io: io, logger: logger)
        await scanner.scanOnce()

        try sim.fault("sra-env", "exception")
        var errors: [DeviceError] = []
        for _ in 0..<6 {
            await scanner.scanOnce()
            if case .failure(let e) = await io.read(["sra-env.oxygen"])["sra-env.oxygen"] { errors.append(e) }
        }
        #expect(errors.count == 6)
        #expect(errors.allSatisfy { if case .exception(code: 4, _) = $0 { true } else { false } }, "\(errors)")
        #expect(logs.count("device fault", "device=sra-env") == 1)

        try sim.fault("sra-env", "wrong-unit")
        var malformed = 0
        for _ in 0..<4 {
            if case .failure(.malformed) = await io.read(["sra-env.oxygen"])["sra-env.oxygen"] { malformed += 1 }
        }
        #expect(malformed >= 1)
        try sim.fault("sra-env", "timeout")
        // After the reconnect back-off (at most 1.6 s), the silence is reported as a timeout.
        let timedOut = await eventually(timeout: 5) {
            if case .failure(.timeout) = await io.read(["sra-env.oxygen"])["sra-env.oxygen"] { return true }
            return false
        }
        #expect(timedOut)
        // Malformed frames: a wrong byte count over TCP, a bad CRC over RTU.
        try sim.fault("sra-env", "garbage")
        var detail = ""
        let malformedFrames = await eventually(timeout: 5) {
            if case .failure(.malformed(let m)) = await io.read(["sra-env.oxygen"])["sra-env.oxygen"] { detail = m; return true }
            return false
        }
        #expect(malformedFrames)
        #expect(detail.contains(transport == .tcp ? "byte count" : "CRC"), "\(detail)")
        try sim.fault("sra-env", "none")
    }

    @Test("values outside the physical range read fault, logged once per change; others stay good")
    func outOfRange() async throws {
        let dir = TempDir()
        let siteFile = try demoSiteCopy(.tcp, in: dir)
        let site = try loadSite(siteFile)
        // The manual clock: the plant's physics does not move 200 °C toward the room's between the
        // set and the read, however late a loaded machine reads it.
        let sim = try startSim(siteFile, in: dir, manual: true)
        defer { sim.stop() }
        let (logger, logs) = capturingLogger()
        let io = PlantIO(site: site, logger: logger)
        io.start()
        defer { io.shutdown() }
        let scanner = Scanner(site: site, io: io, logger: logger)

        // 200 °C is beyond the temperature envelope (-40...150); the transmitter sends it anyway.
        try sim.set("server-room-a.temperature", 200)
        for _ in 0..<5 { await scanner.scanOnce() }
        let snap = scanner.snapshot
        #expect(snap.quality("sra-env.temperature", site: site) == .fault)
        #expect(snap.readOK("sra-env.oxygen"))
        let r = await io.read(["sra-env.temperature"])["sra-env.temperature"]
        #expect(r == .failure(.outOfRange(200)))
        #expect(logs.count("point fault", "point=sra-env.temperature") == 1)

        // A signed register: -45 °C is below the envelope too.
        try sim.set("server-room-a.temperature", -45)
        let neg = await io.read(["sra-env.temperature"])["sra-env.temperature"]
        #expect(neg == .failure(.outOfRange(-45)))
        // Oxygen above 100 % is physically impossible.
        try sim.set("server-room-a.oxygen", 150)
        let o2 = await io.read(["sra-env.oxygen"])["sra-env.oxygen"]
        #expect(o2 == .failure(.outOfRange(150)))

        try sim.set("server-room-a.temperature", 23.5)
        try sim.set("server-room-a.oxygen", 20.9)
        for _ in 0..<3 { await scanner.scanOnce() }
        #expect(scanner.snapshot.readOK("sra-env.temperature"))
        #expect(scanner.snapshot.readings["sra-env.temperature"]?.value == 23.5)
        #expect(logs.count("point fault", "point=sra-env.temperature") == 1)
        #expect(logs.count("point good again", "point=sra-env.temperature") == 1)
    }

    @Test("reconnects after the simulator restarts", arguments: Transport.allCases)
    func reconnect(_ transport: Transport) async throws {
        let dir = TempDir()
        let siteFile = try demoSiteCopy(transport, in: dir)
        let site = try loadSite(siteFile)
        var sim = try startSim(siteFile, in: dir, name: "a")
        let (logger, _) = capturingLogger()
        let io = PlantIO(site: site, logger: logger)
        io.start()
        defer { io.shutdown() }
        let scanner = Scanner(site: site, io: io, logger: logger)
        let ids = site.points.map(\.id)
        await scanner.scanOnce()  // connects every bus
        let first = await scanner.scanOnce()
        #expect(ids.allSatisfy { first.readOK($0) })

        sim.stop()
        let down = await scanner.scanOnce()
        #expect(ids.allSatisfy { down.quality($0, site: site) == .fault })

        sim = try startSim(siteFile, in: dir, name: "b")
        defer { sim.stop() }
        try sim.set("server-room-a.temperature", 24)
        let back = await eventually(timeout: 10) {
            let s = await scanner.scanOnce()
            return ids.allSatisfy { s.readOK($0) }
        }
        #expect(back)
        #expect(scanner.snapshot.readings["sra-env.temperature"]?.value == 24)
        let w = await io.write("sra-door.lock", value: 1)
        #expect((try? w.get()) == 1)
        #expect(try sim.plant()["sra-door.lock"] == 1)
    }
}
