import Foundation
import Logging
import RedlineCore
import RedlineIO
import RedlineTestSupport
import Testing

@Suite("RedlineIO against redline-sim: every demo-site point", .serialized)
struct DemoSiteIOTests {
    @Test("reads every point and writes every output with read-back", arguments: Transport.allCases)
    func everyPoint(_ transport: Transport) async throws {
        let dir = TempDir()
        let siteFile = try demoSiteCopy(transport, in: dir)
        let site = try loadSite(siteFile)
        let sim = try startSim(siteFile, in: dir, manual: true)
        defer { sim.stop() }
        let (logger, _) = capturingLogger()
        let io = PlantIO(site: site, logger: logger)
        io.start()
        defer { io.shutdown() }

        // Every point reads what the plant physically holds.
        let plant = try sim.plant()
        let values = await io.read(site.points.map(\.id))
        #expect(values.count == site.points.count)
        for p in site.points {
            let v = try #require(try? values[p.id]?.get(), "\(p.id): \(String(describing: values[p.id]))")
            let expected = try #require(plant[p.id], "\(p.id) missing from plant.get")
            #expect(abs(v - expected) <= tolerance(p), "\(p.id): read \(v), plant \(expected)")
        }

        // Every output: write another value, read it back, and see it on the device.
        for p in site.points where p.role.isOutput {
            let before = try #require(try? values[p.id]?.get())
            let target = otherValue(for: p, current: before)
            let r = await io.write(p.id, value: target)
            let back = try #require(try? r.get(), "\(p.id) write \(target): \(r)")
            #expect(abs(back - target) <= tolerance(p), "\(p.id): wrote \(target), read back \(back)")
            let physical = try #require(try sim.plant()[p.id])
            #expect(abs(physical - target) <= tolerance(p), "\(p.id): device holds \(physical), wrote \(target)")
            let restore = await io.write(p.id, value: before)
            #expect((try? restore.get()) != nil, "\(p.id) restore: \(restore)")
        }

        // Inputs are never writable, and unknown points are refused.
        await #expect(throws: DeviceError.self) { try (await io.write("sra-env.temperature", value: 20)).get() }
        await #expect(throws: DeviceError.self) { try (await io.write("no-such.point", value: 1)).get() }
        // Out-of-envelope writes never reach the device.
        await #expect(throws: DeviceError.self) { try (await io.write("crac-1.setpoint", value: 80)).get() }
        await #expect(throws: DeviceError.self) { try (await io.write("sra-door.lock", value: 0.5)).get() }
        await #expect(throws: DeviceError.self) { try (await io.write("crac-1.setpoint", value: .nan)).get() }
        #expect(try sim.plant()["crac-1.setpoint"] != 80)
    }

    @Test("a full scan makes every point good, inputs and outputs", arguments: Transport.allCases)
    func scanAllGood(_ transport: Transport) async throws {
        let dir = TempDir()
        let siteFile = try demoSiteCopy(transport, in: dir)
        let site = try loadSite(siteFile)
        let sim = try startSim(siteFile, in: dir)
        defer { sim.stop() }
        let (logger, _) = capturingLogger()
        let io = PlantIO(site: site, logger: logger)
        io.start()
        defer { io.shutdown() }
        let scanner = Scanner(site: site, io: io, logger: logger)
        #expect(scanner.fullScans == 0)
        await scanner.scanOnce()  // connects every bus
        let snap = await scanner.scanOnce()
        #expect(scanner.fullScans == 2)
        // Every point read successfully, and (right after the scan) is good.
        let now = monotonicMillis()
        for p in site.points {
            #expect(snap.readOK(p.id), "\(p.id)")
            let age = now - (snap.readings[p.id]?.at ?? 0)
            if age <= site.timing.staleAfterMs { #expect(snap.quality(p.id, site: site) == .good, "\(p.id)") }
        }
        #expect(snap.readings["sra-env.temperature"]?.value == 22)
        #expect(snap.readings["sra-env.oxygen"]?.value == 20.9)

        // refresh() re-reads a subset now and merges it.
        try sim.set("server-room-a.occupied", 1)
        let after = await scanner.refresh(["sra-occupancy.occupied"])
        #expect(after.readings["sra-occupancy.occupied"]?.value == 1)
        #expect(scanner.snapshot.readings["sra-occupancy.occupied"]?.value == 1)
    }

    @Test("run() scans at the site's interval until cancelled, and inputs go stale without scans")
    func runLoop() async throws {
        let dir = TempDir()
        let siteFile = try demoSiteCopy(.tcp, in: dir)
        let site = try loadSite(siteFile)
        let sim = try startSim(siteFile, in: dir)
        defer { sim.stop() }
        let (logger, _) = capturingLogger()
        let io = PlantIO(site: site, logger: logger)
        io.start()
        defer { io.shutdown() }
        let scanner = Scanner(site: site, io: io, logger: logger)
        let t0 = Monotonic.milliseconds()
        let task = Task { await scanner.run { _ in } }
        // No timed assertion (a loaded CI machine scans late): wait, boundedly, for four full
        // scans, then check the snapshot right after the next one, while the loop still runs.
        func waitFor(_ done: () -> Bool) async throws {
            let deadline = Monotonic.milliseconds() + 20_000
            while !done(), Monotonic.milliseconds() < deadline { try await Task.sleep(for: .milliseconds(5)) }
        }
        try await waitFor { scanner.fullScans >= 4 }
        #expect(scanner.fullScans >= 4, "the run loop keeps scanning")
        let n = scanner.fullScans
        try await waitFor { scanner.fullScans > n }
        // Read, and read well (its freshness at this moment depends on the machine's load).
        #expect(scanner.snapshot.readOK("sra-env.temperature"))
        task.cancel()
        await task.value
        let scans = scanner.fullScans
        // The interval is kept: never more scans than the time it ran allows (one per 100 ms), plus one.
        let ran = Monotonic.milliseconds() - t0
        #expect(Int64(scans) <= ran / site.timing.scanIntervalMs + 1, "scans: \(scans) in \(ran) ms")
        try await Task.sleep(for: .milliseconds(200))
        #expect(scanner.fullScans == scans, "no scan after cancel")
        try await Task.sleep(for: .milliseconds(Int(site.timing.staleAfterMs) + 100))
        #expect(scanner.snapshot.quality("sra-env.temperature", site: site) == .stale)
    }
}
