import Dispatch
import Foundation
import RedlineSync

/// A task executor with a thread of its own. The daemon runs three: the safety path
/// (scan loops, effects, watchdog), the arbiter's lane, and the operator socket, so
/// that agent work keeping the cooperative pool busy (parsing a flood of long lines,
/// say) cannot delay any of them. Nothing blocking runs on these threads: device I/O
/// stays on the bus threads, the audit log's writes on its own.
final class DedicatedExecutor: TaskExecutor, Sendable {
    private let jobs = Lock<[UnownedJob]>([])
    private let wake = DispatchSemaphore(value: 0)

    init(name: String) {
        let thread = Thread { [self] in self.loop() }
        thread.name = name
        thread.start()
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let j = UnownedJob(job)
        jobs.withLock { $0.append(j) }
        wake.signal()
    }

    private func loop() {
        while true {
            wake.wait()
            let batch = jobs.withLock { q -> [UnownedJob] in
                defer { q.removeAll(keepingCapacity: true) }
                return q
            }
            for j in batch { j.runSynchronously(on: asUnownedTaskExecutor()) }
        }
    }
}
