/// The lock every shared state of Redline is behind: `Synchronization.Mutex`, except in the
/// ThreadSanitizer build (`scripts/sanitizers.sh thread` compiles with `-DREDLINE_TSAN`).
///
/// Why two: on Linux `Mutex` locks with futexes, which ThreadSanitizer does not intercept, so it
/// cannot see that two critical sections of one `Mutex` are ordered and reports them as a race
/// (`Tests/Sanitizers/mutex-false-positive.swift` is a correct program it reports). In the TSan
/// build the same API is a pthread mutex, which TSan does see, so a report there is about our own
/// locking. The normal build pays nothing: `Lock` is `Mutex` itself.
#if REDLINE_TSAN
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

public final class Lock<Value: ~Copyable>: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private var value: Value

    public init(_ initialValue: consuming sending Value) {
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        precondition(pthread_mutex_init(mutex, nil) == 0, "pthread_mutex_init failed")
        value = initialValue
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    public func withLock<Result: ~Copyable, E: Error>(
        _ body: (inout sending Value) throws(E) -> sending Result
    ) throws(E) -> sending Result {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&value)
    }
}
#else
import Synchronization

public typealias Lock<Value: ~Copyable> = Synchronization.Mutex<Value>
#endif
