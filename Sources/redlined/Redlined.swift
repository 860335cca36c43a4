#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import Logging
import RedlineCore
import RedlineDaemon

/// `redlined`: the interlock service. Thin: flags in, `RedlineDaemon.run` does the work.
@main
struct Redlined: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "redlined",
        abstract: "The Redline safety interlock daemon: the only process that touches the plant.",
        discussion: """
            redlined loads a site (Firmware-Configs/NAME.yaml with the profiles in Devices/), \
            opens every Modbus bus and GPIO chip of it, scans the plant, and serves agents on \
            the agent socket and people on the operator socket. Every agent write passes the \
            compiled-in red lines (redlinectl check --matrix shows them per point and agent); \
            every decision is written to the hash-chained audit log before a device is touched.

            Its own safe-state actions (E-1 release egress, E-3 annunciate, E-4 restore life \
            support) never wait for agents: each bus serves them, then scans, before any \
            agent work, and each agent's share of work is bounded (--max-in-flight, \
            --max-connections-per-uid, --idle-timeout); a full share gets an immediate \
            busy error (-32007), never a queue.

            It refuses an invalid site, and a site or profile file that anyone but its owner \
            or root can write. SIGTERM and SIGINT stop it gracefully; SIGHUP is refused \
            (configuration is read once; restart to change it). Under systemd it sends \
            READY=1 after the first full scan and WATCHDOG=1 while scans complete.

            Metrics for Prometheus: --metrics-textfile writes node_exporter's textfile format \
            (redline_ready, redline_decisions_total, redline_device_up, ...) after scans, \
            atomically, on a thread of its own; the daemon opens no listener for them. \
            redlinectl metrics prints the same text from the operator socket.

            Example (no root needed):
              redlined --config Firmware-Configs/demo-datacenter.yaml \\
                --agent-socket run/agent.sock --operator-socket run/operator.sock --audit run/audit.jsonl
            """,
        version: BuildInfo.version)

    @Option(name: .long, help: ArgumentHelp("Site configuration file.", valueName: "FILE"))
    var config: String

    @Option(name: .long, help: ArgumentHelp("Folder of device profiles (default: Devices/ beside the site's folder; for a site in /etc/redline: /usr/share/redline/devices).", valueName: "DIR"))
    var devices: String?

    @Option(name: .long, help: ArgumentHelp("Folder of local device profiles; one here replaces the --devices profile of the same name (default for a site in /etc/redline: /etc/redline/devices).", valueName: "DIR"))
    var localDevices: String?

    @Option(name: .long, help: ArgumentHelp("Agent socket path.", valueName: "PATH"))
    var agentSocket = SocketPaths.agentDefault

    @Option(name: .long, help: ArgumentHelp("Operator socket path.", valueName: "PATH"))
    var operatorSocket = SocketPaths.operatorDefault

    @Option(name: .long, help: ArgumentHelp("Audit log (JSON Lines, hash-chained, append-only).", valueName: "PATH"))
    var audit = "/var/lib/redline/audit.jsonl"

    @Flag(name: .long, help: "Do not fsync audit records (benchmarks only: a crash may lose acknowledged decisions).")
    var noAuditFsync = false

    @Option(name: .long, help: ArgumentHelp("Rotate the audit log at this many MiB (the chain continues).", valueName: "MIB"))
    var auditRotateMib = 64

    @Option(name: .long, help: ArgumentHelp("Rotate the audit log at this many bytes (overrides --audit-rotate-mib; for tests and small disks).", valueName: "BYTES"))
    var auditRotateBytes: Int?

    @Option(name: .long, help: ArgumentHelp("Rotated audit files kept: the log takes at most (N + 1) × the rotation size.", valueName: "N"))
    var auditKeep = 8

    @Option(name: .long, help: ArgumentHelp("Sign an audit checkpoint every N records (and every --checkpoint-seconds).", valueName: "N"))
    var checkpointRecords = 1000

    @Option(name: .long, help: ArgumentHelp("Sign an audit checkpoint at least this often while records arrive.", valueName: "S"))
    var checkpointSeconds = 60.0

    @Flag(name: .long, help: "Start although the audit log holds fewer records than the state directory's last checkpoint says (missing, emptied or cut). Recorded in the log as a gap.")
    var acceptMissingAuditLog = false

    @Option(name: .long, help: ArgumentHelp("Group owning the agent socket (mode 0660); default: mode 0666, peers still identified by uid.", valueName: "GROUP"))
    var agentGroup: String?

    @Option(name: .long, help: ArgumentHelp("Group owning the operator socket (mode 0660).", valueName: "GROUP"))
    var operatorGroup: String?

    @Option(name: .long, help: ArgumentHelp("Maximum concurrent connections per socket.", valueName: "N"))
    var maxConnections = 64

    @Option(name: .long, help: ArgumentHelp("Connections one uid may hold per socket (default: half of --max-connections), so one agent cannot take them all.", valueName: "N"))
    var maxConnectionsPerUid: Int?

    @Option(name: .long, help: ArgumentHelp("Sustained requests per second allowed per connection.", valueName: "N"))
    var rateLimit = 1000.0

    @Option(name: .long, help: ArgumentHelp("Writes one agent may have in progress at once; more get an immediate busy error (-32007).", valueName: "N"))
    var maxInFlight = 8

    @Option(name: .long, help: ArgumentHelp("Close a connection that sends nothing for this many seconds.", valueName: "S"))
    var idleTimeout: Int64 = 300

    @Option(name: .long, help: ArgumentHelp("Events an operator subscriber (events.subscribe, redlinectl watch) may fall behind by before it is disconnected; it is never waited for.", valueName: "N"))
    var eventBuffer = 1024

    @Option(name: .long, help: ArgumentHelp("Write the metrics in node_exporter's textfile format to this file after scans (PATH.tmp, then renamed over PATH; e.g. /run/redline/redline.prom, with node_exporter --collector.textfile.directory=/run/redline). A failed write is logged and counted and stops nothing.", valueName: "PATH"))
    var metricsTextfile: String?

    @Option(name: .long, help: ArgumentHelp("Write the metrics textfile at most this often, and only after a full scan (minimum 100).", valueName: "MS"))
    var metricsIntervalMs = 1000

    @Option(name: .long, help: ArgumentHelp("Log level: trace, debug, info, notice, warning, error, critical.", valueName: "LEVEL"))
    var logLevel = "info"

    func run() async throws {
        let level = Logger.Level(rawValue: logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var h = StreamLogHandler.standardError(label: label)
            h.logLevel = level
            return h
        }
        let logger = Logger(label: "redlined")
        var o = DaemonOptions(configPath: config)
        o.devicesDir = devices
        o.localDevicesDir = localDevices
        o.agentSocket = agentSocket
        o.operatorSocket = operatorSocket
        o.auditPath = audit
        o.auditFsync = !noAuditFsync
        o.auditMaxBytes = auditRotateBytes.map { max(4096, $0) } ?? max(1, auditRotateMib) * 1024 * 1024
        o.auditKeep = max(0, auditKeep)
        o.checkpointRecords = max(1, checkpointRecords)
        o.checkpointSeconds = max(0.1, checkpointSeconds)
        o.acceptMissingAuditLog = acceptMissingAuditLog
        o.agentGroup = agentGroup
        o.operatorGroup = operatorGroup
        o.limits = ConnectionLimits(maxConnections: maxConnections, maxConnectionsPerUid: maxConnectionsPerUid,
                                    ratePerSecond: rateLimit, burst: rateLimit * 2, idleTimeoutSeconds: idleTimeout)
        o.agentLimits = AgentLimits(inFlightPerAgent: maxInFlight)
        o.eventBuffer = max(1, eventBuffer)
        o.metricsTextfile = metricsTextfile
        o.metricsIntervalMs = max(100, metricsIntervalMs)
        do {
            try await RedlineDaemon.run(o, logger: logger)
        } catch let e as StartupError {
            logger.critical("redlined cannot start", metadata: ["why": "\(e.message)"])
            FileHandleless.printError("redlined: \(e.message)")
            throw ExitCode(e.exitCode)
        }
    }
}

enum FileHandleless {
    static func printError(_ s: String) {
        var line = s + "\n"
        line.withUTF8 { buf in _ = write(2, buf.baseAddress, buf.count) }
    }
}

