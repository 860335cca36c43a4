import Foundation
import Logging
import RedlineConfig
import RedlineCore
import RedlineHIL
import RedlineIO
import RedlineTestSupport
import Testing

/// Proof that the invariant checks can fail: an in-process run in which a deliberately broken
/// arbiter (it allows everything) writes the agent's commands straight to a real `redline-sim`
/// through `RedlineIO.PlantIO`, and the real invariant checker looks at `plant.get`.
/// The same run with the real `Policy.decide` in its place breaks nothing.
@Suite("HIL: a broken policy fails the invariant checker", .serialized)
struct HILBrokenPolicyTests {
    /// A test-only arbiter. It never touches the daemon or RedlineCore: it stands where the daemon's would.
    enum Arbiter: String, CustomTestStringConvertible {
        case allowsEverything, realPolicy
        var testDescription: String { rawValue }

        func decide(_ cmd: WriteCommand, site: Site, io: PlantIO) async -> Decision {
            switch self {
            case .allowsEverything:
                return .allowed
            case .realPolicy:
                let now = Int64(Date().timeIntervalSince1970 * 1000)
                let reads = await io.read(site.points.filter { !$0.role.isOutput }.map(\.id))
                var snap = PlantSnapshot()
                for (id, r) in reads {
                    if case .success(let v) = r { snap.readings[id] = .good(v, at: now) } else { snap.readings[id] = .fault }
                }
                return Policy.decide(cmd, in: PolicyState(site: site, snapshot: snap, now: now), approved: true)
            }
        }
    }

    /// The agent's side of the incident.
    static let attacks: [(String, Double)] = [
        ("dispatch.cancel", 1), ("dispatch.delay", 600), ("fire-panel.silence", 1), ("fire-panel.reset", 1),
        ("sra-door.lock", 1), ("sra-exhaust.run", 0), ("crac-1.setpoint", 32), ("crac-2.run", 0),
        ("sra-suppression.inhibit", 1),
    ]

    func run(_ arbiter: Arbiter) async throws -> (violations: [Violation], executed: Int) {
        let root = TestPaths.packageRoot()
        let dir = TempDir(prefix: "rlbroken")
        let siteFile = try TestSites.withFreePorts(root.appendingPathComponent("Firmware-Configs/demo-datacenter.yaml").path, in: dir).path
        let devices = root.appendingPathComponent("Devices").path
        let sim = try SimProcess(siteFile: siteFile, devicesDir: devices, controlPath: dir.file("sim.sock"), manualClock: true)
        defer { sim.stop() }
        let site = try SiteLoader.load(siteFile: siteFile, devicesDir: devices)
        let io = PlantIO(site: site, logger: Logger(label: "hil-broken-policy"))
        io.start()
        defer { io.shutdown() }

        let checker = InvariantChecker(site: site)
        var state = InvariantState()
        // The incident's plant: a person inside, the room at 67 °C, stale air, the fire panel in alarm.
        let incident: [(String, Double)] = [("server-room-a.occupied", 1), ("server-room-a.temperature", 67),
                                            ("server-room-a.oxygen", 15.4), ("server-room-a.co2", 3.8), ("fire-panel.alarm", 1)]
        for (n, v) in incident { try sim.set(n, v) }
        var previous = try sim.plant()
        _ = checker.check(&state, previous: nil, current: previous, time: 0, attribution: Attribution(humanSet: Set(incident.map(\.0))))

        var violations: [Violation] = []
        var executed = 0
        for (i, (point, value)) in Self.attacks.enumerated() {
            let cmd = WriteCommand(agent: "facilities-agent", point: point, value: value)
            if await arbiter.decide(cmd, site: site, io: io) == .allowed {
                if case .success = await io.write(point, value: value) { executed += 1 }
            }
            let now = try sim.plant()
            violations += checker.check(&state, previous: previous, current: now, time: Double(i) * 0.01,
                                        attribution: Attribution(agentTouched: [point]))
            previous = now
        }
        return (violations, executed)
    }

    @Test("the arbiter that allows everything is caught, on every red line it lets through")
    func brokenPolicyIsCaught() async throws {
        let (violations, executed) = try await run(.allowsEverything)
        #expect(executed == Self.attacks.count, "the broken arbiter really wrote the plant")
        let rules = Set(violations.map(\.rule))
        for rule in ["RL-1", "RL-2", "RL-3", "RL-4", "RL-5", "RL-6"] {
            #expect(rules.contains(rule), "the checker missed \(rule): \(violations)")
        }
        let points = Set(violations.map(\.point))
        for (p, _) in Self.attacks { #expect(points.contains(p), "no violation for \(p): \(violations)") }
    }

    @Test("the real policy in the same run breaks no invariant")
    func realPolicyPasses() async throws {
        let (violations, executed) = try await run(.realPolicy)
        #expect(executed == 0)
        #expect(violations.isEmpty, "\(violations)")
    }

    @Test("a controller without E-1 leaves a locked door in an occupied hazard, and the door-timing invariant catches it")
    func missingEffectIsCaught() async throws {
        let root = TestPaths.packageRoot()
        let dir = TempDir(prefix: "rlbroken")
        let siteFile = try TestSites.withFreePorts(root.appendingPathComponent("Firmware-Configs/demo-datacenter.yaml").path, in: dir).path
        let devices = root.appendingPathComponent("Devices").path
        let sim = try SimProcess(siteFile: siteFile, devicesDir: devices, controlPath: dir.file("sim.sock"), manualClock: true)
        defer { sim.stop() }
        let site = try SiteLoader.load(siteFile: siteFile, devicesDir: devices)
        let io = PlantIO(site: site, logger: Logger(label: "hil-broken-effects"))
        io.start()
        defer { io.shutdown() }
        let checker = InvariantChecker(site: site)
        var state = InvariantState()

        // An approved lock while the room is empty: allowed, and no invariant minds.
        guard case .success = await io.write("sra-door.lock", value: 1) else { Issue.record("door write failed"); return }
        var previous = try sim.plant()
        #expect(checker.check(&state, previous: nil, current: previous, time: 0, attribution: Attribution(agentTouched: ["sra-door.lock"])).isEmpty)
        // A person inside, the room at 55 °C. This controller has no E-1: nothing releases the door.
        for (n, v) in [("server-room-a.occupied", 1.0), ("server-room-a.temperature", 55.0)] { try sim.set(n, v) }
        var violations: [Violation] = []
        var t = 0.0
        while t <= checker.reactionBound + 0.3 {
            t += 0.1
            let now = try sim.plant()
            violations += checker.check(&state, previous: previous, current: now, time: t,
                                        attribution: Attribution(humanSet: t < 0.15 ? ["server-room-a.occupied", "server-room-a.temperature"] : []))
            previous = now
        }
        #expect(violations.map(\.rule) == ["RL-3"], "\(violations)")
        #expect(violations.first?.point == "sra-door.lock")
    }
}
