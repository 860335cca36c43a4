import Foundation
import RedlineClient
import RedlineCore
import RedlineSync
import Synchronization

/// A bound Unix datagram socket standing in for systemd's notify socket: records every
/// message with the monotonic time it arrived.
public final class NotifyListener: @unchecked Sendable {
    public let path: String
    private let fd: Int32
    private let messages = Lock<[(ms: Int64, text: String)]>([])
    private let running = Atomic<Bool>(true)
    private var thread: Thread?

    public init(path: String) throws {
        self.path = path
        unlink(path)
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in for (i, b) in path.utf8.enumerated() { raw[i] = b } }
        let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
        guard rc == 0 else { close(fd); throw TestSupportError("cannot bind \(path)") }
        var tv = timeval(tv_sec: 0, tv_usec: 200_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        let t = Thread { [self] in
            var buf = [UInt8](repeating: 0, count: 512)
            while running.load(ordering: .relaxed) {
                let n = recv(fd, &buf, buf.count, 0)
                if n > 0 {
                    let m = String(decoding: buf[..<n], as: UTF8.self)
                    messages.withLock { $0.append((Monotonic.milliseconds(), m)) }
                }
            }
        }
        t.start()
        thread = t
    }

    /// Arrival times of `WATCHDOG=1` messages (ms, monotonic).
    public var watchdogTimes: [Int64] { messages.withLock { $0.filter { $0.text == "WATCHDOG=1" }.map(\.ms) } }

    /// The longest gap between watchdog messages in [from, to], counting the edges.
    public func longestWatchdogGap(from: Int64, to: Int64) -> Int64 {
        let ts = [from] + watchdogTimes.filter { $0 > from && $0 < to } + [to]
        return zip(ts.dropFirst(), ts).map { $0 - $1 }.max() ?? (to - from)
    }

    public func stop() {
        running.store(false, ordering: .relaxed)
        usleep(250_000)
        close(fd)
    }
}

/// Agent load: `connections` connections as `uid`, each on its own thread, sending the
/// requests `request(connection, n)` makes, one at a time, until `stop()`.
public final class Flood: @unchecked Sendable {
    private let running = Atomic<Bool>(true)
    private let answered = Atomic<Int>(0)
    private let errors = Atomic<Int>(0)
    private var threads: [Thread] = []
    private let done = DispatchGroup()
    public private(set) var connections: [UidRelay] = []

    public init(socket path: String, uid: UInt32, connections n: Int, request: @escaping @Sendable (Int, Int) -> String) throws {
        for _ in 0..<n { connections.append(try UidRelay(path: path, uid: uid)) }
        for (k, c) in connections.enumerated() {
            done.enter()
            let t = Thread { [self] in
                defer { done.leave() }
                var i = 0
                while running.load(ordering: .relaxed) {
                    do {
                        try c.sendLine(request(k, i))
                        guard try c.readLine(timeout: 30) != nil else { errors.add(1, ordering: .relaxed); return }
                        answered.add(1, ordering: .relaxed)
                    } catch {
                        errors.add(1, ordering: .relaxed)
                        return
                    }
                    i += 1
                }
            }
            threads.append(t)
            t.start()
        }
    }

    /// Answers received so far (errors included: an error line is an answer).
    public var answers: Int { answered.load(ordering: .relaxed) }
    /// Connections that broke off (closed or timed out).
    public var broken: Int { errors.load(ordering: .relaxed) }

    public func stop() {
        running.store(false, ordering: .relaxed)
        _ = done.wait(timeout: .now() + 40)
        for c in connections { c.close() }
    }
}
