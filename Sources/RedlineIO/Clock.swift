// The daemon's clock (`monotonicMillis`, `Monotonic`) is RedlineClock's: one implementation for
// the daemon, the clients, the tools and the benches.
@_exported import RedlineClock
