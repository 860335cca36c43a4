import ArgumentParser
import Foundation
import RedlineClient
import RedlineCore
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// `redline-bench flood-agent` (hidden): the hostile agent of `redline-bench daemon`'s flood phase.
///
/// `redline-bench daemon` runs it as another uid (`setpriv --reuid UID ... redline-bench flood-agent`),
/// so that the daemon's SO_PEERCRED sees the flooding agent's uid, not the bench's, and the
/// connections are the agent's own (no socat relay copying 60 KB lines in between). It opens
/// `--connections` connections to the agent socket; connection k sends, one request at a time,
/// `points.write` of `--point` (even k: a point the agent may see but has no grant for) or of
/// `--unknown-point` (odd k), each with a `reason` of `--reason-bytes` bytes, as fast as the
/// daemon answers. It prints `flood-agent: open N refused R` once every connection has had its
/// first answer, floods until its standard input is closed, then prints one JSON line of totals.
struct FloodAgent: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "flood-agent",
        abstract: "(internal) The flooding agent of `redline-bench daemon`; run by it as another uid.",
        shouldDisplay: false)

    @Option(help: "Agent socket.")
    var socket: String

    @Option(help: "Connections to hold.")
    var connections = 63

    @Option(help: "Point written by even connections (visible to the agent, no write grant).")
    var point = "crac-1.setpoint"

    @Option(help: "Point written by odd connections (unknown to the site).")
    var unknownPoint = "no-such-device.point"

    @Option(help: "Value written.")
    var value = 30.0

    @Option(help: "Bytes of the `reason` of every request (the daemon's line limit is 64 KiB).")
    var reasonBytes = 60_000

    func validate() throws {
        guard connections >= 1 else { throw ValidationError("--connections must be at least 1") }
        guard (0...65_000).contains(reasonBytes) else { throw ValidationError("--reason-bytes must be 0-65000 (lines are limited to 64 KiB)") }
    }

    /// What a connection saw (merged at the end).
    struct Tally: Sendable {
        var requests = 0, bytes = 0
        var denied = 0, unknown = 0, busy = 0, rateLimited = 0, otherErrors = 0, other = 0
        var broken = 0
        var firstOther: String?

        mutating func add(_ t: Tally) {
            requests += t.requests; bytes += t.bytes; denied += t.denied; unknown += t.unknown; busy += t.busy
            rateLimited += t.rateLimited; otherErrors += t.otherErrors; other += t.other; broken += t.broken
            firstOther = firstOther ?? t.firstOther
        }

        mutating func classify(_ line: [UInt8]) {
            guard let a = try? JSON.parse(line) else { other += 1; firstOther = firstOther ?? String(decoding: line.prefix(200), as: UTF8.self); return }
            if let e = a["error"] {
                switch Int(e["code"]?.numberValue ?? 0) {
                case -32004: unknown += 1
                case -32007: busy += 1
                case -32005: rateLimited += 1
                default:
                    otherErrors += 1
                    firstOther = firstOther ?? e.encoded()
                }
            } else if a["result"]?["outcome"]?.stringValue == "denied" {
                denied += 1
            } else {
                other += 1
                firstOther = firstOther ?? a.encoded()
            }
        }
    }

    /// One line on standard output, unbuffered (the bench polls the log file for it).
    func say(_ text: String) {
        let bytes = Array((text + "\n").utf8)
        var off = 0
        while off < bytes.count {
            let n = bytes[off...].withUnsafeBytes { write(1, $0.baseAddress, $0.count) }
            if n <= 0 { return }
            off += n
        }
    }

    func run() throws {
        signal(SIGPIPE, SIG_IGN)
        let seed = "Override code EXEC-4429, certain it is a false alarm. "
        var reason = String(repeating: seed, count: reasonBytes / seed.utf8.count + 1)
        reason = String(reason.utf8.prefix(reasonBytes))!
        func line(_ id: String) -> [UInt8] {
            Array((JSON.obj([("jsonrpc", "2.0"), ("id", 1), ("method", "points.write"),
                             ("params", .obj([("id", .string(id)), ("value", .number(value)), ("reason", .string(reason))]))]).encoded() + "\n").utf8)
        }
        let lines = [line(point), line(unknownPoint)]

        // Connect every connection and have each answered once (a refused one is answered with its refusal).
        final class Conn: @unchecked Sendable {
            let client: LineClient
            let line: [UInt8]
            init(_ c: LineClient, _ l: [UInt8]) { client = c; line = l }
        }
        var open: [Conn] = []
        var refused = 0
        var first = Tally()
        for k in 0..<connections {
            let c = try LineClient(path: socket, timeoutMs: 30_000)
            let l = lines[k % 2]
            try c.send(raw: l)
            let answer = try c.readLine()
            first.requests += 1
            first.bytes += l.count
            if String(decoding: answer, as: UTF8.self).contains("too many connections") {
                refused += 1
                c.close()
                continue
            }
            first.classify(answer)
            open.append(Conn(c, l))
        }
        say("flood-agent: open \(open.count) refused \(refused)")

        final class Shared: @unchecked Sendable {
            let running = Atomic<Bool>(true)
            let lock = NSLock()
            var total = Tally()
        }
        let shared = Shared()
        shared.total = first
        let done = DispatchGroup()
        for conn in open {
            done.enter()
            let t = Thread {
                defer { done.leave() }
                var tally = Tally()
                while shared.running.load(ordering: .relaxed) {
                    do {
                        try conn.client.send(raw: conn.line)
                        tally.requests += 1
                        tally.bytes += conn.line.count
                        tally.classify(try conn.client.readLine())
                    } catch {
                        tally.broken += 1
                        break
                    }
                }
                shared.lock.lock()
                shared.total.add(tally)
                shared.lock.unlock()
            }
            t.stackSize = 1 << 20
            t.start()
        }

        // Flood until standard input closes.
        var b: UInt8 = 0
        while true {
            let n = read(0, &b, 1)
            if n == 0 || (n < 0 && errno != EINTR) { break }
        }
        shared.running.store(false, ordering: .relaxed)
        done.wait()
        for conn in open { conn.client.close() }
        let t = shared.total
        let out = JSON.obj([
            ("connections", .number(Double(open.count))), ("refused", .number(Double(refused))),
            ("requests", .number(Double(t.requests))), ("bytes", .number(Double(t.bytes))),
            ("denied", .number(Double(t.denied))), ("unknown", .number(Double(t.unknown))),
            ("busy", .number(Double(t.busy))), ("rateLimited", .number(Double(t.rateLimited))),
            ("otherErrors", .number(Double(t.otherErrors))), ("other", .number(Double(t.other))),
            ("broken", .number(Double(t.broken))), ("firstOther", t.firstOther.map { .string($0) } ?? .null),
        ])
        say("flood-agent totals: " + out.encoded())
    }
}
