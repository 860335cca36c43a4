import Logging
import RedlineCore
import RedlineSync

/// Readiness and the systemd watchdog, driven by completed scans only.
///
/// READY=1 follows the first full scan; WATCHDOG=1 follows scans at a quarter of the
/// period systemd asked for. Neither waits for agent work or for the disk: the watchdog stops
/// exactly when scans stop.
final class Liveness: Sendable {
    private let notifier: SystemdNotifier
    private let ledger: Ledger
    private let audit: AuditLog
    private let logger: Logger
    private let site: Site
    private let state = Lock(Inner())

    private struct Inner {
        var readySent = false
        var lastWatchdogAt: Int64?
    }

    init(site: Site, notifier: SystemdNotifier, ledger: Ledger, audit: AuditLog, logger: Logger) {
        self.site = site
        self.notifier = notifier
        self.ledger = ledger
        self.audit = audit
        self.logger = logger
    }

    /// How often WATCHDOG=1 is sent, in ms: a quarter of WATCHDOG_USEC (or 1 s without systemd), so
    /// that the gap between two messages, scan jitter included, stays under half of what systemd allows.
    var watchdogPeriodMs: Int64 { notifier.watchdogUsec.map { max(1, Int64($0 / 4000)) } ?? 1000 }

    /// A full scan completed at `now`.
    func scanned(at now: Int64) {
        let first = ledger.state.withLock { s -> Bool in
            s.counters.scans += 1
            s.lastScanAt = now
            defer { s.ready = true }
            return !s.ready
        }
        if first {
            logger.info("first full scan complete; accepting writes", metadata: ["points": "\(site.points.count)"])
            audit.submit(kind: "ready", [("site", .string(site.name))])
        }
        let (sendReady, sendDog) = state.withLock { s -> (Bool, Bool) in
            let ready = !s.readySent
            s.readySent = true
            let dog = s.lastWatchdogAt.map { now - $0 >= watchdogPeriodMs } ?? true
            if dog { s.lastWatchdogAt = now }
            return (ready, dog)
        }
        if sendReady { notifier.send("READY=1\nSTATUS=scanning \(site.points.count) points") }
        if sendDog { notifier.send("WATCHDOG=1") }
    }
}
