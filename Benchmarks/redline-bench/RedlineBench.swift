import ArgumentParser

/// Benchmarks. Each area is a subcommand (`redline-bench io`, ...).
@main
struct RedlineBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "redline-bench",
        abstract: "Redline benchmarks (figures for the notes; never timing assertions in tests).",
        subcommands: [IOBench.self, DaemonBench.self, FloodAgent.self])
}
