/// Where redlined's sockets are unless told otherwise, in one place for the daemon and every client
/// (docs/DESIGN.md §7 and §8). The environment variables name other paths
/// for clients; `RedlineClient` resolves them (`SocketPaths.agent(_:)`, `SocketPaths.operator(_:)`).
public enum SocketPaths {
    public static let agentDefault = "/run/redline/agent.sock"
    public static let operatorDefault = "/run/redline/operator.sock"
    public static let agentVariable = "REDLINE_AGENT_SOCKET"
    public static let operatorVariable = "REDLINE_OPERATOR_SOCKET"

    /// For help texts: "$REDLINE_AGENT_SOCKET or /run/redline/agent.sock".
    public static let agentHelp = "$\(agentVariable) or \(agentDefault)"
    public static let operatorHelp = "$\(operatorVariable) or \(operatorDefault)"
}
