#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import Foundation
import MCP
import RedlineClient
import RedlineCore
import RedlineMCP

/// `redlinectl mcp`: the `RedlineMCP` server for LLM agents, on stdio.
///
/// It runs as the agent's own uid and speaks only to the agent socket, so the
/// daemon identifies the agent by SO_PEERCRED and every compartment and red line
/// applies unchanged. It offers nothing from the operator side.
struct MCPServe: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mcp",
        abstract: "Serve the agent socket to an LLM as MCP tools over stdio (run as the agent's uid).",
        discussion: """
            Speaks the Model Context Protocol on stdin/stdout and offers four tools: \
            list_points, read_points, write_point and get_request. Each call goes to the \
            agent socket of redlined, so the agent's grants and every red line apply unchanged. \
            Denials come back as tool results with isError set, naming the rule; they are final. \
            Nothing on the operator side (approvals, quarantine, status, configuration) is offered.

            Attach it to an MCP client as a stdio server whose command runs as the agent's own \
            uid (the uid the site file gives the agent, e.g. 2001 for facilities-agent), for \
            example in a desktop client's configuration:

              "mcpServers": {
                "redline": {
                  "command": "/usr/local/bin/redlinectl",
                  "args": ["mcp", "--socket", "/run/redline/agent.sock"]
                }
              }

            If the client runs as another user, have it start the server as the agent through \
            sudo, with a sudoers rule that allows exactly this command \
            (alice ALL=(facilities-agent) NOPASSWD: /usr/local/bin/redlinectl mcp):

              "command": "/usr/bin/sudo",
              "args": ["-n", "-u", "facilities-agent", "/usr/local/bin/redlinectl", "mcp"]

            or, from a client running as root, through setpriv:

              "command": "/usr/bin/setpriv",
              "args": ["--reuid", "facilities-agent", "--regid", "facilities-agent",
                       "--init-groups", "/usr/local/bin/redlinectl", "mcp"]

            The agent's account needs to reach the agent socket and nothing else: when redlined \
            runs with --agent-group redline-agents the socket is mode 0660, so put the account in \
            that group (usermod -aG redline-agents facilities-agent) and keep it out of \
            redline-operators. It needs no access to the operator socket, the configuration, the \
            audit log or any device. Logs go to stderr; stdout carries only MCP.
            """)

    @Option(name: .long, help: ArgumentHelp("Agent socket (default: \(SocketPaths.agentHelp)).", valueName: "PATH"))
    var socket: String?

    @Option(name: .long, help: ArgumentHelp("How long to wait for redlined on each call, in milliseconds.", valueName: "MS"))
    var timeoutMs: Int = 15_000

    var agentPath: String { SocketPaths.agent(socket) }

    func validate() throws {
        guard timeoutMs > 0 else { throw ValidationError("--timeout-ms must be positive") }
    }

    func run() async throws {
        // A daemon or client that goes away must give EPIPE, not kill the server.
        signal(SIGPIPE, SIG_IGN)
        let server = RedlineMCPServer(daemon: FreshConnections(path: agentPath, timeoutMs: timeoutMs), drainMs: timeoutMs)
        printErr("redlinectl mcp: serving MCP on stdio; agent socket \(agentPath)")
        try await server.serve(on: StdioTransport())
    }
}
