import Foundation
import RedlineSync

/// A device server's own thread, and the handshake that tells its starter whether it came up:
/// the thread's body calls `ready()` once it serves, or `fail(_:)` with why it cannot. Used by
/// the Modbus bus servers and the BACnet/IP device servers alike.
final class ServerThread: Sendable {
    private let started = DispatchSemaphore(value: 0)
    private let failure = Lock<String?>(nil)

    /// Starts `body` on a thread named `name` and waits until it calls `ready()` or `fail(_:)`;
    /// returns the failure's message, if any.
    func start(name: String, _ body: @escaping @Sendable () -> Void) -> String? {
        let t = Thread(block: body)
        t.name = name
        t.start()
        started.wait()
        return failure.withLock { $0 }
    }

    /// The server listens: its starter goes on.
    func ready() { started.signal() }

    /// The server cannot start: its starter gets `message`.
    func fail(_ message: String) {
        failure.withLock { $0 = message }
        started.signal()
    }
}
