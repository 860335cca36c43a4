import Foundation
import RedlineTestSupport
import Testing

@Suite("HIL adversarial agent (`redline-hil fuzz`)", .serialized,
       .enabled(if: uidAvailable, "needs root to connect as the agents' uids"))
struct HILFuzzTests {
    /// The CI run: about 2,000 commands against a live daemon and a real-clock simulator, bounded in time.
    @Test("a bounded seeded run breaks no invariant and prints its seed")
    func boundedRun() throws {
        let s = try PlantAndDaemon()
        defer { s.stop() }
        try Self.boundedRun(s, commands: 2000, maxSeconds: 50, atLeast: 1000)
    }

    /// `redline-hil fuzz` against `s` for `commands` commands or `maxSeconds`: no invariant broken,
    /// at least `atLeast` commands, an invariant check after each, every red line tried and denied,
    /// legitimate commands executed, and the daemon still serving (also run on the BACnet site).
    static func boundedRun(_ s: PlantAndDaemon, commands: Int, maxSeconds: Int, atLeast: Int) throws {
        let seed = ProcessInfo.processInfo.environment["REDLINE_FUZZ_SEED"].flatMap(UInt64.init) ?? 20_261_129
        let r = try runHIL(["fuzz", "--seed", String(seed), "--commands", String(commands), "--max-seconds", String(maxSeconds)]
                           + hilArgs(s, audit: false), timeout: Double(maxSeconds) + 70)
        print(r.stdout.split(separator: "\n").filter { $0.contains("hil fuzz seed") }.joined(separator: "\n"))
        #expect(r.status == 0, "\(r.stdout)\n\(r.stderr)")
        #expect(r.stdout.contains("PASS hil fuzz seed \(seed):"))
        // The figures it reports: commands, rate, checks.
        let line = try #require(r.stdout.split(separator: "\n").first { $0.contains("hil fuzz seed \(seed):") })
        let n = line.split(separator: " ").map(String.init)
        let done = Int(n[n.firstIndex(of: "commands")! - 1]) ?? 0
        let checks = Int(n[n.firstIndex(of: "invariant")! - 1]) ?? 0
        #expect(done >= atLeast, "too few commands in the time bound: \(line)")
        #expect(checks >= done, "an invariant check after every command: \(line)")
        // Every kind of red line was tried and denied.
        for rule in ["RL-1", "RL-2", "RL-4", "RL-5", "RL-6", "RL-7", "RL-8"] {
            #expect(r.stdout.contains("denied \(rule):"), "no \(rule) denial in the run")
        }
        #expect(r.stdout.contains("executed:"), "legitimate commands went through too")
        // The daemon survived it.
        #expect(s.daemon.isRunning)
        #expect(try s.operatorCall("status")["ready"]?.boolValue == true)
    }

    @Test("the same seed makes the same choices (reproducible), another seed others")
    func reproducible() throws {
        let s = try PlantAndDaemon(manualClock: true)
        defer { s.stop() }
        func digest(_ seed: Int) throws -> String {
            let r = try runHIL(["fuzz", "--seed", String(seed), "--commands", "150", "--max-pause-ms", "0"] + hilArgs(s, audit: false))
            #expect(r.status == 0, "\(r.stdout)")
            let line = r.stdout.split(separator: "\n").first { $0.contains("choices digest") }
            return line.map(String.init) ?? "missing in \(r.stdout)"
        }
        let a = try digest(42), b = try digest(42), c = try digest(43)
        #expect(a.contains("choices digest"))
        #expect(a == b)
        #expect(a != c)
    }
}

@Suite("HIL fuzz failure report", .enabled(if: uidAvailable, "needs root to connect as the agents' uids"))
struct HILFuzzFailureTests {
    @Test("a run that cannot finish fails with its seed and the command that reproduces it")
    func failurePrintsSeed() throws {
        let s = try PlantAndDaemon(manualClock: true)
        defer { s.stop() }
        var args = hilArgs(s, audit: false)
        args[args.firstIndex(of: "--agent-socket")! + 1] = s.dir.file("no-such-agent.sock")
        let r = try runHIL(["fuzz", "--seed", "99", "--commands", "50"] + args)
        #expect(r.status == 1, "\(r.stdout)")
        #expect(r.stdout.contains("FAIL hil fuzz seed 99:"))
        #expect(r.stdout.contains("reproduce with: redline-hil fuzz --seed 99 --commands 50"))
    }
}
