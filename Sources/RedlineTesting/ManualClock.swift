import RedlineSync

/// A monotonic millisecond clock that moves only when a test says so (the model of
/// NIOEmbedded's `EmbeddedEventLoop.advanceTime`). Hand `read` to the daemon as its clock.
public final class ManualClock: Sendable {
    private let ms: Lock<Int64>

    /// Starts well above zero, as the real monotonic clock does, so no age is ever negative.
    public init(startingAt ms: Int64 = 1_000_000) { self.ms = Lock(ms) }

    /// Milliseconds now.
    public var now: Int64 { ms.withLock { $0 } }

    /// Moves the clock forward (never back: a monotonic clock does not jump backwards).
    public func advance(by delta: Int64) {
        precondition(delta >= 0, "a monotonic clock does not go back")
        ms.withLock { $0 += delta }
    }

    /// The clock as the daemon takes it.
    public var read: @Sendable () -> Int64 { { [self] in now } }
}
