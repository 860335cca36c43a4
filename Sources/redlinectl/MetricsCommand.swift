import ArgumentParser
import RedlineCore
import RedlineMetrics

/// `redlinectl metrics`: the daemon's metrics in the Prometheus text format, rendered from the
/// operator socket's `status` by the renderer `redlined --metrics-textfile` uses.
struct Metrics: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the daemon's metrics in the Prometheus text format (operator socket).",
        discussion: """
            The same text redlined --metrics-textfile writes, from the operator socket's status: \
            redline_ready, redline_build_info, redline_decisions_total{outcome,rule,agent}, \
            redline_approvals_pending, redline_scan_duration_seconds{bus}, redline_device_up{device}, \
            redline_zone_condition{zone,condition}, redline_agent_quarantined{agent}, \
            redline_effect_active{effect,zone}, redline_audit_fsync_duration_seconds. \
            To feed node_exporter from cron instead of the daemon's own file: \
            redlinectl metrics > redline.prom.tmp && mv redline.prom.tmp redline.prom
            """)

    @Option(name: .long, help: ArgumentHelp("Operator socket (default: \(SocketPaths.operatorHelp)).", valueName: "PATH"))
    var socket: String?

    func run() throws {
        let status = try call(SocketPaths.operator(socket), "status")
        print(MetricsText.render(status: status), terminator: "")
    }
}
