#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import Foundation
import RedlineClient
import RedlineConfig
import RedlineCore
import RedlineHIL

/// `redline-hil`: hardware-in-the-loop scenarios, the adversarial agent and guided proof tests.
///
/// A tool of the safety engineer's bench, not of the controller: it carries the scenario
/// runner and the fuzzer (RedlineHIL), which the `redlinectl` shipped on a controller does not link.
@main
struct RedlineHILTool: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "redline-hil",
        abstract: "Run HIL scenarios against a live redlined (simulated plant or, guided, a real site).",
        discussion: """
            run plays scenario files (Simulators/Scenarios/*.yaml) against redlined and checks the \
            plant's invariants after every step; run --guided is a proof test on a real site; \
            fuzz is a seeded adversarial agent. Run as root, each agent connects as its own uid \
            through a setpriv relay (redline-hil relay), so the daemon identifies it by SO_PEERCRED \
            exactly as in production.

            This tool belongs on the engineer's machine or a test rig; the controller needs only \
            redlined and redlinectl.
            """,
        subcommands: [HILRun.self, HILFuzz.self, HILRelay.self])
}

/// Socket and site options shared by `run` and `fuzz`.
struct HILOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("The site file (default: the scenario's `site:`).", valueName: "FILE"))
    var site: String?

    @Option(name: .long, help: ArgumentHelp("Directory of device profiles (default: <site dir>/../Devices).", valueName: "DIR"))
    var devices: String?

    @Option(name: .long, help: ArgumentHelp("Agent socket (default: \(SocketPaths.agentHelp)).", valueName: "PATH"))
    var agentSocket: String?

    @Option(name: .long, help: ArgumentHelp("Operator socket (default: \(SocketPaths.operatorHelp)).", valueName: "PATH"))
    var operatorSocket: String?

    @Option(name: .long, help: ArgumentHelp("redline-sim's control socket (required unless --guided).", valueName: "PATH"))
    var simControl: String?

    @Option(name: .long, help: ArgumentHelp("The daemon's audit log: `audit` steps are checked and the chain verified.", valueName: "PATH"))
    var audit: String?

    @Option(name: .long, help: ArgumentHelp("Margin added to 2 scan intervals before a door must be released (E-1).", valueName: "MS"))
    var reactionMarginMs: Int64 = 500

    var agentPath: String { SocketPaths.agent(agentSocket) }
    var operatorPath: String { SocketPaths.operator(operatorSocket) }

    func loadSite(_ file: String) throws -> Site {
        do { return try SiteLoader.load(siteFile: file, devicesDir: devices) } catch {
            printErr("redline-hil: invalid site \(file)\n\(error)")
            throw ExitCode(2)
        }
    }
}

/// Unbuffered line output (the runner's prompts must reach a pipe at once).
func emit(_ s: String) {
    FileHandle.standardOutput.write(Data((s + "\n").utf8))
}

struct HILRun: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run scenario files (Simulators/Scenarios/*.yaml) and check the plant's invariants after every step.",
        discussion: """
            Simulated: needs --sim-control (redline-sim's control socket; scenarios that `advance` \
            time need `redline-sim --clock manual`). Each scenario starts from a reset plant, \
            agents released and nothing held. After every step the plant's ground truth \
            (plant.get) is checked: no alarm control or dispatch control changed by an agent, \
            no suppression control touched, no life support reduced in an occupied zone, no door \
            locked by an agent in an occupied/alarm/hazard zone, and no door left locked for longer \
            than 2 scan intervals + margin once E-1 must release it.

            Agents are connected as their own uid: as root, through \
            `setpriv --reuid UID ... redline-hil relay`; otherwise directly (and the output says so).

            Guided (--guided): a proof test on a real site with no simulator. Each physical step is \
            an instruction to the engineer, confirmed on the real inputs (points.read) after Enter; \
            agent and operator steps run as usual; --report writes a Markdown proof-test record.

            Exit status: 0 all passed, 1 a step or invariant failed, 2 bad usage or files.
            """)

    @Argument(help: "Scenario files.")
    var files: [String]

    @OptionGroup var opts: HILOptions

    @Option(name: .long, help: ArgumentHelp("Write JUnit XML here.", valueName: "PATH"))
    var junit: String?

    @Option(name: .long, help: ArgumentHelp("Write a Markdown proof-test record here.", valueName: "PATH"))
    var report: String?

    @Flag(name: .long, help: "Guided proof test on real hardware: prompt the engineer for each physical step.")
    var guided = false

    @Option(name: .long, help: ArgumentHelp("Guided: the agent whose readings confirm physical steps (default: the one that sees most points).", valueName: "AGENT"))
    var observer: String?

    @Option(name: .long, help: ArgumentHelp("Engineer's name for the proof-test record.", valueName: "NAME"))
    var engineer: String?

    func run() throws {
        signal(SIGPIPE, SIG_IGN)
        var scenarios: [Scenario] = []
        for f in files {
            do { scenarios.append(try Scenario.load(file: f)) } catch {
                printErr("redline-hil run: \(error)")
                throw ExitCode(2)
            }
        }
        guard let siteFile = opts.site ?? scenarios.first?.siteFile else {
            printErr("redline-hil run: no site: pass --site FILE or give the scenario a `site:`")
            throw ExitCode(2)
        }
        if !guided && opts.simControl == nil {
            printErr("redline-hil run: --sim-control PATH is required (or --guided for a real site)")
            throw ExitCode(2)
        }
        let site = try opts.loadSite(siteFile)
        if getuid() != 0 { emit("note: not running as root: agents are connected directly as uid \(getuid()), not as their own uids") }
        let cfg = RunConfig(site: site, siteFile: siteFile, agentSocket: opts.agentPath, operatorSocket: opts.operatorPath,
                            simControl: guided ? nil : opts.simControl, auditPath: opts.audit, guided: guided,
                            marginMs: opts.reactionMarginMs, observer: observer, output: emit, input: { readLine() })
        var results: [ScenarioResult] = []
        for s in scenarios {
            let runner = ScenarioRunner(config: cfg)
            results.append(runner.run(s))
        }
        emit("")
        emit(Reports.summary(results))
        do {
            if let junit { try Reports.junit(results).write(toFile: junit, atomically: true, encoding: .utf8) }
            if let report {
                try Reports.proofRecord(results, site: site, siteFile: siteFile, engineer: engineer).write(toFile: report, atomically: true, encoding: .utf8)
            }
        } catch {
            printErr("redline-hil run: cannot write output: \(error)")
            throw ExitCode(2)
        }
        if !results.allSatisfy(\.passed) { throw ExitCode(1) }
    }
}

struct HILRelay: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "relay", abstract: "Copy request lines from stdin to a socket and answers to stdout (used by run and fuzz as root).",
        shouldDisplay: false)

    @Option(name: .long, help: "The socket.")
    var socket: String

    func run() throws {
        let rc = AgentConnector.relay(socket: socket)
        if rc != 0 { throw ExitCode(rc) }
    }
}

struct HILFuzz: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fuzz",
        abstract: "An adversarial agent: seeded random commands against the live daemon while the simulated plant changes at random.",
        discussion: """
            Every point (red-line points, inputs and made-up names included), values at and just \
            beyond every boundary, malformed parameters and override-code reasons, at random \
            moments; meanwhile occupancy, alarms, environment, unit failures and device faults \
            change at random and an operator approves, denies and releases. The plant's invariants \
            are checked after every command and every plant change. A failure prints the seed; \
            --seed reproduces the same sequence of choices.
            """)

    @OptionGroup var opts: HILOptions

    @Option(name: .long, help: "Seed (default: random, printed).")
    var seed: UInt64?

    @Option(name: .long, help: "Number of agent commands.")
    var commands = 2000

    @Option(name: .long, help: "Stop after this many seconds (0: no limit).")
    var maxSeconds: Double = 0

    @Option(name: .long, help: "Longest random pause between commands, in ms.")
    var maxPauseMs = 15

    func run() throws {
        signal(SIGPIPE, SIG_IGN)
        guard let siteFile = opts.site, let sim = opts.simControl else {
            printErr("redline-hil fuzz: --site FILE and --sim-control PATH are required")
            throw ExitCode(2)
        }
        let site = try opts.loadSite(siteFile)
        let s = seed ?? UInt64.random(in: 1...UInt64(UInt32.max))
        var cfg = FuzzConfig(seed: s, commands: commands, site: site, agentSocket: opts.agentPath,
                             operatorSocket: opts.operatorPath, simControl: sim)
        cfg.marginMs = opts.reactionMarginMs
        cfg.maxSeconds = maxSeconds
        cfg.maxPauseMs = maxPauseMs
        cfg.output = emit
        let result = Fuzzer(config: cfg).run()
        var again = "redline-hil fuzz --seed \(s) --commands \(commands) --site \(siteFile) --sim-control \(sim)"
        again += " --agent-socket \(opts.agentPath) --operator-socket \(opts.operatorPath)"
        emit(Fuzzer.report(result, reproduce: again))
        if !result.passed { throw ExitCode(1) }
    }
}


func printErr(_ s: String) {
    var line = s + "\n"
    line.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
}
