#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The monotonic clock (CLOCK_MONOTONIC: never jumps with wall-clock changes), in one place for
/// the daemon, every client, tool and bench. RedlineCore reads no clock (time is a parameter
/// there); RedlineIO and RedlineClient re-export this module.
public enum Monotonic {
    @inlinable public static func nanoseconds() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
    }

    /// Whole milliseconds.
    public static func milliseconds() -> Int64 { Int64(nanoseconds() / 1_000_000) }

    /// Seconds, with the nanoseconds as a fraction.
    public static func seconds() -> Double { Double(nanoseconds()) / 1e9 }
}

/// Milliseconds of the monotonic clock: the daemon's default clock parameter.
public func monotonicMillis() -> Int64 { Monotonic.milliseconds() }
