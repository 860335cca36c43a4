import ArgumentParser

/// `redlinectl`: the command-line face of Redline for integrators, operators,
/// agents' developers and safety engineers.
@main
struct RedlineCtl: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "redlinectl",
        abstract: "Check site configurations, talk to redlined, verify audit logs and run HIL scenarios.",
        subcommands: [
            Check.self,
            Describe.self, Read.self, Write.self, Request.self,
            Status.self, Approvals.self, Agents.self, Watch.self,
            Audit.self,
            HIL.self,
            MCPServe.self,
            Firewall.self, UdevRulesCommand.self, DeviceAllowCommand.self, HostCheckCommand.self,
        ]
    )
}
