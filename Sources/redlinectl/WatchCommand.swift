import ArgumentParser
import Foundation
import RedlineClient
import RedlineCore

/// `redlinectl watch [--json] [--exec CMD]`: operator events as they happen.
struct Watch: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print operator events as they happen: held, approved, denied and expired requests, red-line denials, quarantines, effects, device faults.",
        discussion: """
            Subscribes on the operator socket (events.subscribe) and prints one line per event, each with \\
            the audit seq of the record it stands for. When redlined restarts, watch reconnects and says \\
            which audit records it did not stream (read them with `redlinectl audit`).

            With --exec, CMD runs once per event through /bin/sh, with the event as one JSON line on its \\
            stdin and REDLINE_EVENT, REDLINE_SEQ, REDLINE_SUMMARY, REDLINE_AGENT, REDLINE_POINT, \\
            REDLINE_REQUEST_ID and REDLINE_RULE in its environment (empty when the event has none). A \\
            command still running after --exec-timeout is stopped (SIGTERM, then SIGKILL) and watch goes on.
            Examples:
              redlinectl watch
              redlinectl watch --json | jq .
              redlinectl watch --exec 'curl -s -d "$REDLINE_SUMMARY" https://ntfy.sh/my-building'
              redlinectl watch --exec '[ "$REDLINE_EVENT" = request.held ] && mail -s "Redline: $REDLINE_SUMMARY" ops@example.org </dev/null'
            """
    )

    @OptionGroup var opts: OperatorSocketOptions

    @Option(name: .long, help: ArgumentHelp("Run CMD (with /bin/sh -c) once per event.", valueName: "CMD"))
    var exec: String?

    @Option(name: .long, help: ArgumentHelp("Seconds a --exec command may run before it is stopped.", valueName: "SECONDS"))
    var execTimeout: Double = 10

    @Flag(name: .long, help: "Exit when the connection ends instead of reconnecting.")
    var noReconnect = false

    @Option(name: .long, help: ArgumentHelp("Exit after this many events (for scripts and tests).", valueName: "N"))
    var count: Int?

    func validate() throws {
        guard execTimeout > 0 else { throw ValidationError("--exec-timeout must be above 0 seconds") }
        if let count, count < 1 { throw ValidationError("--count must be at least 1") }
    }

    func run() throws {
        // A hook that exits without reading its stdin must not kill watch with SIGPIPE.
        if exec != nil { signal(SIGPIPE, SIG_IGN) }
        var seen = 0
        var lastSeq: Int?
        var waitingSaid = false
        var backoff = 0.25
        while true {
            let client: LineClient
            do {
                client = try LineClient(path: opts.operatorPath, timeoutMs: 60_000)
            } catch {
                if noReconnect { throw error }
                if !waitingSaid { printErr("redlinectl watch: \(error); waiting for redlined"); waitingSaid = true }
                Thread.sleep(forTimeInterval: backoff)
                backoff = min(5, backoff * 2)
                continue
            }
            let ack: JSON
            do {
                ack = try client.call("events.subscribe")
            } catch ClientError.rpc(let code, let message, _) {
                // Refused (not an operator, an agent account): reconnecting would not change that.
                printErr("redlinectl watch: refused: \(message) (error \(code))")
                throw ExitCode(Int32(3))
            } catch {
                client.close()
                if noReconnect { throw error }
                Thread.sleep(forTimeInterval: backoff)
                backoff = min(5, backoff * 2)
                continue
            }
            waitingSaid = false
            backoff = 0.25
            let at = Int(ack["auditSeq"]?.numberValue ?? 0)
            if let last = lastSeq, at > last {
                printErr("redlinectl watch: reconnected at audit seq \(at); records \(last + 1)-\(at) were not streamed (see redlinectl audit)")
            } else {
                printErr("redlinectl watch: subscribed (audit seq \(at)\(ack["ready"]?.boolValue == true ? ", ready" : ", not ready yet"))")
            }
            lastSeq = at
            stream: while true {
                let msg: JSON
                do {
                    msg = try client.readJSON()
                } catch ClientError.timeout {
                    continue
                } catch {
                    printErr("redlinectl watch: the stream ended (\(error))")
                    break stream
                }
                guard msg["method"]?.stringValue == "event", let e = msg["params"] else { continue }
                if let s = e["seq"]?.numberValue { lastSeq = Int(s) }
                if opts.json {
                    print(e.encoded())
                } else {
                    let seq = e["seq"]?.numberValue.map { String(Int($0)) } ?? "?"
                    print("\(e["time"]?.stringValue ?? "")  #\(seq)  \(e["event"]?.stringValue ?? "?")  \(e["summary"]?.stringValue ?? "")")
                }
                fflush(nil)  // every output stream: a pipe to jq or a log sees each event at once
                if let exec { runHook(exec, event: e) }
                seen += 1
                if let count, seen >= count { return }
            }
            client.close()
            if noReconnect { throw ExitCode(Int32(1)) }
            Thread.sleep(forTimeInterval: backoff)
        }
    }

    /// Runs the hook for one event in a process group of its own; never longer than
    /// --exec-timeout (then the whole group gets SIGTERM, and SIGKILL a second later, so a
    /// pipeline or a `sleep` inside the command is stopped too).
    func runHook(_ command: String, event e: JSON) {
        func v(_ k: String) -> String {
            guard let x = e[k] else { return "" }
            if let s = x.stringValue { return s }
            if let n = x.numberValue { return fmt(n) }
            return x.encoded()
        }
        var env = ProcessInfo.processInfo.environment
        env["REDLINE_EVENT"] = v("event")
        env["REDLINE_SEQ"] = v("seq")
        env["REDLINE_SUMMARY"] = v("summary")
        env["REDLINE_AGENT"] = v("agent")
        env["REDLINE_POINT"] = v("point")
        env["REDLINE_REQUEST_ID"] = v("requestId")
        env["REDLINE_RULE"] = v("rule")
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else {
            printErr("redlinectl watch: cannot run --exec command: pipe: \(String(cString: strerror(errno)))")
            return
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, fds[0], 0)
        posix_spawn_file_actions_addclose(&actions, fds[0])
        posix_spawn_file_actions_addclose(&actions, fds[1])
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETPGROUP))
        posix_spawnattr_setpgroup(&attr, 0)
        let args: [String] = ["/bin/sh", "-c", command]
        let argv: [UnsafeMutablePointer<CChar>?] = args.map { strdup($0) } + [nil]
        let envp: [UnsafeMutablePointer<CChar>?] = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { for p in argv + envp { free(p) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, "/bin/sh", &actions, &attr, argv, envp)
        close(fds[0])
        guard rc == 0 else {
            close(fds[1])
            printErr("redlinectl watch: cannot run --exec command: \(String(cString: strerror(rc)))")
            return
        }
        // The event on stdin; a command that does not read it must not stop us (SIGPIPE is ignored in run()).
        let bytes = Array((e.encoded() + "\n").utf8)
        _ = bytes.withUnsafeBytes { write(fds[1], $0.baseAddress, $0.count) }
        close(fds[1])
        var status: Int32 = 0
        func now() -> Double { Monotonic.seconds() }
        func reaped() -> Bool { waitpid(pid, &status, WNOHANG) == pid }
        let deadline = now() + execTimeout
        while !reaped() {
            if now() >= deadline {
                printErr("redlinectl watch: --exec command still running after \(fmt(execTimeout)) s for event #\(v("seq")) (\(v("event"))); stopping it")
                kill(-pid, SIGTERM)
                let grace = now() + 1
                while !reaped() {
                    if now() >= grace { kill(-pid, SIGKILL); _ = waitpid(pid, &status, 0); break }
                    usleep(10_000)
                }
                return
            }
            usleep(10_000)
        }
        if status != 0 {
            printErr("redlinectl watch: --exec command exited with status \(status >> 8) for event #\(v("seq")) (\(v("event")))")
        }
    }
}
