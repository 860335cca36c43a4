import RedlineCore
import RedlineSync

/// Operator events (`events.subscribe`, docs/DESIGN.md §8): every durable audit record that
/// stands for an event (`OperatorEvents`) goes to every subscriber, in seq order.
///
/// The audit thread publishes and never waits: each subscriber has a bounded buffer, and one
/// that falls `capacity` events behind is disconnected (its buffer finished, its connection
/// closed), never waited for. Subscribing changes nothing but this list.
final class EventHub: Sendable {
    struct Subscriber: Sendable {
        let continuation: AsyncStream<JSON>.Continuation
        let disconnect: @Sendable () -> Void
    }

    struct State: Sendable {
        var next = 1
        var subscribers: [Int: Subscriber] = [:]
        var published = 0
        var disconnectedSlow = 0
    }

    let capacity: Int
    private let state = Lock(State())

    init(capacity: Int = 1024) {
        self.capacity = max(1, capacity)
    }

    /// A new subscriber: its stream of event objects, and `disconnect`, which the hub calls
    /// (once, off its lock) if the subscriber falls behind.
    func subscribe(disconnect: @escaping @Sendable () -> Void) -> (id: Int, events: AsyncStream<JSON>) {
        let (stream, cont) = AsyncStream<JSON>.makeStream(bufferingPolicy: .bufferingOldest(capacity))
        let id = state.withLock { s in
            defer { s.next += 1 }
            s.subscribers[s.next] = Subscriber(continuation: cont, disconnect: disconnect)
            return s.next
        }
        return (id, stream)
    }

    func unsubscribe(_ id: Int) {
        let sub = state.withLock { $0.subscribers.removeValue(forKey: id) }
        sub?.continuation.finish()
    }

    /// Called by the audit log with each durable batch (on its thread).
    func publish(records: [JSON]) {
        let events = records.flatMap(OperatorEvents.events(for:))
        guard !events.isEmpty else { return }
        let slow = state.withLock { s -> [Subscriber] in
            s.published += events.count
            var slow: [Int] = []
            for (id, sub) in s.subscribers {
                for e in events {
                    if case .dropped = sub.continuation.yield(e) { slow.append(id); break }
                }
            }
            s.disconnectedSlow += slow.count
            return slow.compactMap { s.subscribers.removeValue(forKey: $0) }
        }
        for sub in slow {
            sub.continuation.finish()
            sub.disconnect()
        }
    }

    /// For `status`: subscribers now, events published, subscribers disconnected for lagging.
    var stats: (subscribers: Int, published: Int, disconnectedSlow: Int) {
        state.withLock { ($0.subscribers.count, $0.published, $0.disconnectedSlow) }
    }
}
