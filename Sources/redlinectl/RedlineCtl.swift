import ArgumentParser
import RedlineCore

/// `redlinectl`: the command-line face of Redline for integrators, operators,
/// agents' developers and safety engineers.
@main
struct RedlineCtl: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "redlinectl",
        abstract: "Check site configurations, talk to redlined, verify audit logs, serve MCP and confine the host.",
        discussion: """
            HIL scenarios, guided proof tests and the adversarial agent are in redline-hil, \
            a separate tool for the engineer's machine and test rigs; it is not installed on controllers.
            """,
        version: BuildInfo.version,
        subcommands: [
            Check.self,
            Describe.self, Read.self, Write.self, ReleasePoint.self, Request.self,
            Status.self, Metrics.self, Approvals.self, Agents.self, Watch.self,
            Audit.self,
            MCPServe.self,
            Firewall.self, UdevRulesCommand.self, GPIOLabelCommand.self, DeviceAllowCommand.self, HostCheckCommand.self,
        ]
    )
}
