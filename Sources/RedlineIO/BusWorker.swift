import Dispatch
import Foundation
import RedlineSync

#if canImport(Glibc)
import Glibc
#endif

/// Who a bus job is for. A bus thread always takes the most urgent queued job first,
/// so the daemon's own safety work never waits behind agent work: a safe-state write
/// waits at most for the one job already on the wire, never for queued agent jobs.
public enum BusPriority: Int, Sendable, CaseIterable, Comparable {
    /// Safe-state writes (E-1, E-3, E-4).
    case safety = 0
    /// The scanner's reads (what the effects and the watchdog depend on).
    case scan = 1
    /// Anything an agent caused: fresh re-reads, agent and approved writes.
    case agent = 2

    public static func < (a: BusPriority, b: BusPriority) -> Bool { a.rawValue < b.rawValue }
}

/// One thread that owns one bus's backend (and so its C context). Jobs run on it
/// most urgent first, in submission order within a priority; blocking C calls never
/// run on the cooperative pool.
final class BusWorker: Sendable {
    typealias Job = @Sendable (any BusBackend) -> Void
    typealias Factory = @Sendable () -> any BusBackend

    /// A FIFO with O(1) amortized push and pop.
    private struct Queue {
        var jobs: [Job] = []
        var head = 0
        var isEmpty: Bool { head >= jobs.count }
        var count: Int { jobs.count - head }
        mutating func push(_ j: @escaping Job) { jobs.append(j) }
        mutating func pop() -> Job? {
            guard head < jobs.count else { return nil }
            let j = jobs[head]
            head += 1
            if head > 64, head * 2 > jobs.count {
                jobs.removeFirst(head)
                head = 0
            }
            return j
        }
    }

    private struct State {
        var queues = [Queue](repeating: Queue(), count: BusPriority.allCases.count)
        var started = false
        var stopped = false
    }

    let name: String
    private let factory: Factory
    private let state = Lock(State())
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
    func submit(_ priority: BusPriority, _ job: @escaping Job) -> Bool {
        let ok = state.withLock { s -> Bool in
            if s.stopped { return false }
            s.queues[priority.rawValue].push(job)
            return true
        }
        if ok { wake.signal() }
        return ok
    }

    /// Runs `body` on the bus thread and returns its result; `fallback` if the worker is stopped.
    func run<T: Sendable>(_ priority: BusPriority, _ fallback: T, _ body: @escaping @Sendable (any BusBackend) -> T) async -> T {
        start()
        // Resumed exactly once: by the job on the bus thread, or here if the worker is stopped.
        return await withUnsafeContinuation { (cont: UnsafeContinuation<T, Never>) in
            if !submit(priority, { backend in cont.resume(returning: body(backend)) }) {
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

    /// After a job, the thread polls its queue this long before sleeping, so that a
    /// request following closely (a write's caller, the next bus of a scan) does not
    /// pay a thread wake-up. Bounded, so an idle bus costs no CPU.
    static let spinNanoseconds: UInt64 = 100_000

    private func take() -> (Job?, Bool) {
        state.withLock { s -> (Job?, Bool) in
            for i in s.queues.indices {
                if let j = s.queues[i].pop() { return (j, false) }
            }
            return (nil, s.stopped)
        }
    }

    private func loop() {
        let backend = factory()
        var lastJob: UInt64 = 0
        var spins = 0
        while true {
            let (job, done) = take()
            if let job {
                job(backend)
                lastJob = DispatchTime.now().uptimeNanoseconds
                continue
            }
            if done { break }
            if DispatchTime.now().uptimeNanoseconds &- lastJob < Self.spinNanoseconds {
                spins &+= 1
                if spins % 64 == 0 { sched_yield() }  // stay polite on a busy machine
                continue
            }
            // Sleep until a submit (or stop) signals. Signals for jobs already taken
            // while polling leave the count high; those waits return at once and the
            // loop finds the queue empty, which is harmless.
            wake.wait()
        }
        backend.close()
    }
}
