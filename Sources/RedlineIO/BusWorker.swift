import Dispatch
import Foundation
import Synchronization

/// One thread that owns one bus's backend (and so its C context). Jobs run on it
/// in submission order; blocking C calls never run on the cooperative pool.
final class BusWorker: Sendable {
    typealias Job = @Sendable (any BusBackend) -> Void
    typealias Factory = @Sendable () -> any BusBackend

    private struct State {
        var jobs: [Job] = []
        var head = 0
        var started = false
        var stopped = false
    }

    let name: String
    private let factory: Factory
    private let state = Mutex(State())
    private let wake = DispatchSemaphore(value: 0)

    init(name: String, factory: @escaping Factory) {
        self.name = name
        self.factory = factory
    }

    /// Starts the thread (once). The backend is created on the thread.
    func start() {
        let go = state.withLock { s -> Bool in
            if s.started || s.stopped { return false }
            s.started = true
            return true
        }
        guard go else { return }
        let thread = Thread { [self] in self.loop() }
        thread.name = "redline-bus-\(name)"
        thread.start()
    }

    /// Queues a job; false once the worker has been stopped.
    func submit(_ job: @escaping Job) -> Bool {
        let ok = state.withLock { s -> Bool in
            if s.stopped { return false }
            s.jobs.append(job)
            return true
        }
        if ok { wake.signal() }
        return ok
    }

    /// Runs `body` on the bus thread and returns its result; `fallback` if the worker is stopped.
    func run<T: Sendable>(_ fallback: T, _ body: @escaping @Sendable (any BusBackend) -> T) async -> T {
        start()
        return await withCheckedContinuation { (cont: CheckedContinuation<T, Never>) in
            if !submit({ backend in cont.resume(returning: body(backend)) }) {
                cont.resume(returning: fallback)
            }
        }
    }

    /// Stops taking jobs; queued jobs still run, then the backend is closed on its thread.
    func stop() {
        let wasStarted = state.withLock { s -> Bool in
            s.stopped = true
            return s.started
        }
        if wasStarted { wake.signal() }
    }

    private func loop() {
        let backend = factory()
        while true {
            wake.wait()
            let (job, done) = state.withLock { s -> (Job?, Bool) in
                if s.head < s.jobs.count {
                    let j = s.jobs[s.head]
                    s.head += 1
                    if s.head > 64, s.head * 2 > s.jobs.count {
                        s.jobs.removeFirst(s.head)
                        s.head = 0
                    }
                    return (j, false)
                }
                return (nil, s.stopped)
            }
            if let job { job(backend) }
            if done { break }
        }
        backend.close()
    }
}
