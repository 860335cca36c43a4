import ArgumentParser
import CModbus
import Foundation
import Histogram
import Logging
import RedlineClient
import RedlineConfig
import RedlineCore
import RedlineIO
import RedlineTestSupport

/// `redline-bench io`: device I/O against redline-sim.
///
/// 1. One full scan of the site (every point, buses in parallel) through `Scanner.scanOnce()`.
/// 2. A single-register write plus read-back through `PlantIO.write` against the same
///    done with plain libmodbus (`modbus_write_register` + `modbus_read_registers` on one
///    context), interleaved in rounds in the same run, and their ratio (target <= 1.2).
struct IOBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "io",
        abstract: "Full-scan time and write+read-back round trip (RedlineIO vs plain libmodbus) against redline-sim.",
        discussion: """
            By default starts its own redline-sim (found next to this executable) for the site; \
            with --no-spawn it uses a simulator that is already serving the site.

            Example: swift build -c release && .build/release/redline-bench io
            """)

    @Option(help: "Site file (default: Firmware-Configs/demo-datacenter.yaml in the current directory).")
    var site = "Firmware-Configs/demo-datacenter.yaml"

    @Option(help: "Device profiles directory (default: <site dir>/../Devices).")
    var devices: String?

    @Option(help: "Full scans to time.")
    var scans = 300

    @Option(help: "Write+read-back round trips to time, for each of RedlineIO and plain libmodbus.")
    var roundTrips = 2000

    @Option(help: "Holding-register point to write (must be a TCP point).")
    var point = "crac-1.setpoint"

    @Flag(help: "Do not start redline-sim; use one already running.")
    var noSpawn = false

    func run() async throws {
        signal(SIGPIPE, SIG_IGN)
        let devicesDir = devices ?? URL(fileURLWithPath: site).deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Devices").path
        // A spawned simulator serves a copy of the site on free ports, so that the
        // benchmark never collides with a simulator or daemon already running.
        let siteFile = noSpawn ? site : try Self.copyWithFreePorts(site)
        defer { if !noSpawn { unlink(siteFile) } }
        let loaded: Site
        do { loaded = try SiteLoader.load(siteFile: siteFile, devicesDir: devicesDir) } catch {
            throw ValidationError("invalid site: \(error)")
        }
        guard let p = loaded.point(point), case .modbus(.holdingRegister, let address, let scale, _) = p.binding,
              let bus = loaded.buses.first(where: { $0.id == p.bus }), case .modbusTCP(let host, let port) = bus.kind,
              let unit = p.unitId else {
            throw ValidationError("\(point) must be a holding register on a Modbus TCP bus")
        }

        var sim: Process?
        let control = NSTemporaryDirectory() + "redline-bench-\(getpid()).sock"
        if !noSpawn {
            let exe = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("redline-sim").path
            guard FileManager.default.isExecutableFile(atPath: exe) else { throw ValidationError("redline-sim not found at \(exe); build it or use --no-spawn") }
            let proc = Process()
            proc.executableURL = URL(fileURLWithPath: exe)
            proc.arguments = ["--site", siteFile, "--control", control, "--devices", devicesDir]
            let out = Pipe()
            proc.standardOutput = out
            try proc.run()
            sim = proc
            var ready = ""
            while !ready.contains("serving") {
                let d = out.fileHandleForReading.availableData
                if d.isEmpty { throw ValidationError("redline-sim exited before it was ready") }
                ready += String(decoding: d, as: UTF8.self)
            }
        }
        defer {
            if let sim { sim.terminate(); sim.waitUntilExit() }
        }

        var logger = Logger(label: "redline-bench")
        logger.logLevel = .error
        let io = PlantIO(site: loaded, logger: logger)
        io.start()
        defer { io.shutdown() }
        let scanner = Scanner(site: loaded, io: io, logger: logger)

        // Warm up every connection.
        for _ in 0..<20 { await scanner.scanOnce() }
        let snap = scanner.snapshot
        let now = monotonicMillis()
        let good = loaded.points.filter { snap.quality(of: $0, now: now, staleAfterMs: loaded.timing.staleAfterMs) == .good }.count
        print("site \(loaded.name): \(loaded.points.count) points on \(loaded.buses.count) buses; \(good) good after warm-up")

        var scanHist = Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)
        for _ in 0..<scans {
            let t0 = nanos()
            await scanner.scanOnce()
            scanHist.record((nanos() - t0) / 1000)
        }
        report("full scan (\(loaded.points.count) points)", scanHist)

        var ioHist = Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)
        var plainHist = Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)
        let values = [22.0, 23.0]
        var failures = 0
        let rounds = 20
        let perRound = max(1, roundTrips / rounds)
        let timeoutMs = bus.timeoutMs
        var roundRatios: [Double] = []
        for round in 0..<rounds {
            var ioRound: [UInt64] = [], plainRound: [UInt64] = []
            // Alternate which goes first in each round.
            for which in (round % 2 == 0 ? [0, 1] : [1, 0]) {
                if which == 0 {
                    for i in 0..<perRound {
                        let t0 = nanos()
                        let r = await io.write(point, value: values[i % 2])
                        let dt = (nanos() - t0) / 1000
                        if case .success = r { ioHist.record(dt); ioRound.append(dt) } else { failures += 1 }
                    }
                } else {
                    let raws = values.map { UInt16(($0 / scale).rounded()) }
                    let (times, failed) = await Self.plainRoundTrips(host: host, port: port, unit: unit, address: address,
                                                                     raws: raws, count: perRound, timeoutMs: timeoutMs)
                    for t in times { plainHist.record(t) }
                    plainRound = times
                    failures += failed
                }
            }
            if let a = Self.median(ioRound), let b = Self.median(plainRound), b > 0 { roundRatios.append(a / b) }
        }
        report("write + read-back, RedlineIO", ioHist)
        report("write + read-back, plain libmodbus", plainHist)
        let ratio50 = Double(ioHist.valueAtPercentile(50)) / Double(max(1, plainHist.valueAtPercentile(50)))
        let ratioMean = ioHist.mean / max(1, plainHist.mean)
        print(String(format: "ratio RedlineIO / plain: p50 %.3f, mean %.3f, median of %d per-round p50 ratios %.3f (target <= 1.2)%@",
                     ratio50, ratioMean, roundRatios.count, Self.median(roundRatios.map { $0 * 1000 }).map { $0 / 1000 } ?? .nan,
                     failures > 0 ? " [\(failures) failed round trips]" as NSString : "" as NSString))
        var load = [Double](repeating: 0, count: 3)
        if getloadavg(&load, 3) == 3 { print(String(format: "load average during the run: %.2f %.2f %.2f", load[0], load[1], load[2])) }
    }

    static func median<T: BinaryInteger>(_ xs: [T]) -> Double? {
        median(xs.map { Double($0) })
    }

    static func median(_ xs: [Double]) -> Double? {
        guard !xs.isEmpty else { return nil }
        let s = xs.sorted()
        return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
    }

    private func nanos() -> UInt64 { Self.nanos() }

    /// Writes a copy of a site file with every `port: N` moved to a free port.
    static func copyWithFreePorts(_ path: String) throws -> String {
        var text = try String(contentsOfFile: path, encoding: .utf8)
        let regex = try NSRegularExpression(pattern: "port:\\s*[0-9]+")
        let ns = text as NSString
        let matches = regex.matches(in: text, range: NSRange(location: 0, length: ns.length))
        let ports = freeTCPPorts(matches.count)
        for (m, port) in zip(matches, ports).reversed() {
            text.replaceSubrange(Range(m.range, in: text)!, with: "port: \(port)")
        }
        let out = NSTemporaryDirectory() + "redline-bench-site-\(getpid()).yaml"
        try text.write(toFile: out, atomically: true, encoding: .utf8)
        return out
    }
    static func nanos() -> UInt64 { Monotonic.nanoseconds() }

    /// Plain libmodbus: one context on its own thread (blocking calls stay off the
    /// cooperative pool, as in RedlineIO); each round trip is modbus_write_register
    /// plus modbus_read_registers, timed inside the thread.
    static func plainRoundTrips(host: String, port: Int, unit: Int, address: Int, raws: [UInt16], count: Int,
                                timeoutMs: Int) async -> ([UInt64], Int) {
        await withCheckedContinuation { (cont: CheckedContinuation<([UInt64], Int), Never>) in
            let t = Thread {
                guard let ctx = modbus_new_tcp_pi(host, String(port)) else { return cont.resume(returning: ([], count)) }
                defer { modbus_free(ctx) }
                modbus_set_slave(ctx, Int32(unit))
                modbus_set_response_timeout(ctx, UInt32(timeoutMs / 1000), UInt32((timeoutMs % 1000) * 1000))
                guard modbus_connect(ctx) == 0 else { return cont.resume(returning: ([], count)) }
                defer { modbus_close(ctx) }
                var times: [UInt64] = []
                times.reserveCapacity(count)
                var failed = 0
                var reg: UInt16 = 0
                for i in 0..<count {
                    let raw = raws[i % raws.count]
                    let t0 = nanos()
                    let w = modbus_write_register(ctx, Int32(address), raw)
                    let r = modbus_read_registers(ctx, Int32(address), 1, &reg)
                    let dt = (nanos() - t0) / 1000
                    if w == 1, r == 1, reg == raw { times.append(dt) } else { failed += 1 }
                }
                cont.resume(returning: (times, failed))
            }
            t.start()
        }
    }

    private func report(_ name: String, _ h: Histogram<UInt64>) {
        print(String(format: "%@: n=%llu p50=%llu us p90=%llu us p99=%llu us max=%llu us mean=%.1f us",
                     name as NSString, h.totalCount, h.valueAtPercentile(50), h.valueAtPercentile(90),
                     h.valueAtPercentile(99), h.max, h.mean))
    }
}
