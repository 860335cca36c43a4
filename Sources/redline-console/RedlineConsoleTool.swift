import ArgumentParser
import Foundation
import RedlineClient
import RedlineConsole
import RedlineCore

@main
struct RedlineConsoleTool: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "redline-console",
        abstract: "The operators' web console: readiness, held requests, quarantines, escalation, devices and the audit log, live.",
        discussion: """
            Run it as your own operator account, on the controller: it talks only to redlined's operator \
            socket, so the daemon knows you by your uid exactly as it does for redlinectl (approvals and \
            releases are audited under it). It refuses to start as an agent's account, or any account the \
            operator socket does not admit.

            It listens on 127.0.0.1 only, on --port or a random free port, and prints a URL with a fresh \
            random access token (256 bits), as Jupyter does:
              http://127.0.0.1:PORT/?token=...
            Open it once: the token moves into an HttpOnly, SameSite=Strict cookie. Every request needs the \
            token; approve, deny, release and clear also need the console's own origin (a page on another \
            site cannot post to it, even with the token). The token changes at every start.

            From another machine, forward the same port number over SSH and open the printed URL there:
              ssh -L 8765:127.0.0.1:8765 operator@controller   # then, on the controller:
              redline-console --port 8765

            Examples:
              redline-console
              redline-console --port 8765 --operator-socket /run/redline/operator.sock
            """
    )

    @Option(name: .long, help: ArgumentHelp("Operator socket (default: \(SocketPaths.operatorHelp)).", valueName: "PATH"))
    var operatorSocket: String?

    @Option(name: .long, help: ArgumentHelp("TCP port on 127.0.0.1; 0 picks a free one.", valueName: "N"))
    var port: Int = 0

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be from 0 to 65535") }
    }

    func run() async throws {
        // A daemon that closes a connection mid-write must give an error, not end the console.
        signal(SIGPIPE, SIG_IGN)
        let path = SocketPaths.operator(operatorSocket)
        let server = ConsoleServer(operatorSocket: path, port: port, site: nil)
        // Who am I to the daemon? It admits operators only, and never an agent's uid.
        let status: JSON
        do {
            status = try await server.link.call("status")
        } catch ClientError.rpc(let code, let message, _) {
            fail("the operator socket \(path) refused uid \(getuid()): \(message) (error \(code)).\n"
                 + "redline-console runs as an operator's own account, never as an agent's; nothing was started.", code: 3)
        } catch ClientError.connect(let p, let e) where e == EACCES {
            fail("uid \(getuid()) may not connect to the operator socket \(p) (permission denied): "
                 + "run redline-console as an operator's own account (a member of the operators' group); nothing was started.", code: 3)
        } catch {
            fail("cannot reach redlined on \(path): \(error). Is redlined running? (--operator-socket or $\(SocketPaths.operatorVariable) name another socket.)", code: 1)
        }
        let site = status["site"]?.stringValue ?? "?"
        try await server.run { gate in
            var out = "redline-console: site \(site), as uid \(getuid()), on the operator socket \(path)\n"
            out += "redline-console: open this URL (its token is the key; keep it to yourself):\n\n    \(gate.url)\n\n"
            out += "redline-console: from another machine: ssh -L \(gate.port):127.0.0.1:\(gate.port) <this host>, then open the same URL there\n"
            FileHandle.standardOutput.write(Data(out.utf8))
        }
    }

    func fail(_ message: String, code: Int32) -> Never {
        FileHandle.standardError.write(Data("redline-console: \(message)\n".utf8))
        Foundation.exit(code)
    }
}
