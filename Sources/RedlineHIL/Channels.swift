import Foundation
import RedlineClient
import RedlineCore

/// How the runner connects as an agent (an `RPCTransport` from RedlineClient).
public enum AgentConnector {
    /// This program's own executable (for the relay child).
    public static var selfExecutable: String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }

    /// Connects to the agent socket as `uid`: through a setpriv relay (`UidRelay`, this program's
    /// own `relay` command) when running as root and the uid differs, directly (`LineClient`)
    /// otherwise (the daemon then sees this process's uid; `how` says so).
    public static func connect(path: String, uid: UInt32) throws(ClientError) -> any RPCTransport {
        let me = geteuid()
        if me == uid { return try LineClient(path: path, timeoutMs: 15_000, how: "direct to \(path) as uid \(uid) (this process's own uid)") }
        if me == 0 { return try UidRelay(path: path, uid: uid, hop: .relay(executable: selfExecutable), timeout: 15) }
        return try LineClient(path: path, timeoutMs: 15_000, how: "direct to \(path) as uid \(me): NOT the agent's uid \(uid) (not root, cannot switch); the daemon sees uid \(me)")
    }

    /// `redline-hil relay`: copies request lines from stdin to the socket and each answer line to stdout.
    public static func relay(socket path: String) -> Int32 { UidRelay.serveStdio(socket: path, name: "redline-hil relay") }
}
