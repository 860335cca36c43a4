import Foundation
import MCP
import RedlineClient
import RedlineCore
import Synchronization

/// The MCP server for LLM agents: four tools (list_points, read_points, write_point,
/// get_request) over an `RPCTransport` to redlined's agent socket.
///
/// It offers nothing from the operator side. Every tool call becomes one JSON-RPC call on the
/// transport, made on a thread of its own; every answer, denial and transport failure comes back
/// as a tool result the model can read, and malformed calls are MCP `invalidParams` errors that
/// reach no daemon. `redlinectl mcp` serves it on stdio as the agent's own uid, with a
/// `FreshConnections` transport (README "Attaching an LLM agent over MCP").
public final class RedlineMCPServer: Sendable {
    let link: DaemonLink
    let inFlight = InFlight()
    /// How long `serve` waits, once its client has gone, for tool calls already being answered.
    public let drainMs: Int

    /// `daemon` is used only on the server's own thread from here on.
    public init(daemon: any RPCTransport, drainMs: Int) {
        link = DaemonLink(daemon)
        self.drainMs = drainMs
    }

    /// The tools, as `tools/list` gives them.
    public static var tools: [Tool] { MCPTools.all }

    /// The server's instructions to the model.
    public static var instructions: String { MCPText.instructions }

    /// An MCP server with the tool handlers installed, not yet started.
    public func makeServer() async -> Server {
        let server = Server(
            name: "redline", version: "1.0.0", title: "Redline (mediated building controls)",
            instructions: MCPText.instructions,
            capabilities: .init(tools: .init(listChanged: false)))
        await server.withMethodHandler(ListTools.self) { _ in .init(tools: MCPTools.all) }
        await server.withMethodHandler(CallTool.self) { [link, inFlight] params in
            inFlight.enter()
            defer { inFlight.leave() }
            return try await MCPTools.call(params, link: link)
        }
        return server
    }

    /// Serves on `transport` until its client goes away, then answers what was already asked
    /// (a write may be executing; at most `drainMs`) before stopping.
    public func serve(on transport: any Transport) async throws {
        let server = await makeServer()
        try await server.start(transport: transport)
        await server.waitUntilCompleted()
        let deadline = ContinuousClock.now + .milliseconds(drainMs)
        while inFlight.count > 0, ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(10)) }
        try? await Task.sleep(for: .milliseconds(200))
        await server.stop()
    }
}

/// Tool calls being answered.
final class InFlight: Sendable {
    private let n = Atomic<Int>(0)
    func enter() { n.add(1, ordering: .relaxed) }
    func leave() { n.subtract(1, ordering: .relaxed) }
    var count: Int { n.load(ordering: .relaxed) }
}
