import RedlineSync

/// The arbiter's lane: runs jobs one at a time, to completion (an actor would not do:
/// it interleaves at every `await`, and a device write awaits).
///
/// Fair: operators' jobs go first; agents' jobs are taken round-robin, one per agent
/// in turn, so an agent with many requests queued delays another agent by at most one
/// of its jobs. How much each agent may queue is bounded by the caller (`Ledger.admit`).
/// The daemon's own safe-state writes never enter this lane.
final class FairLane: Sendable {
    typealias Job = @Sendable () async -> Void

    private struct State {
        var operatorJobs: [Job] = []
        var queues: [String: [Job]] = [:]
        /// Agents with queued jobs, in round-robin order.
        var ring: [String] = []
        var next = 0
        var running = false
    }

    private let state = Lock(State())
    /// Where the lane's jobs run (a thread of the arbiter's own, in the daemon).
    private let executor: (any TaskExecutor)?

    init(executor: (any TaskExecutor)? = nil) { self.executor = executor }

    /// Runs `body` in the lane, as `agent`'s job, or an operator's when `agent` is nil.
    func run<T: Sendable>(agent: String?, _ body: @escaping @Sendable () async -> T) async -> T {
        await withCheckedContinuation { (c: CheckedContinuation<T, Never>) in
            let job: Job = { c.resume(returning: await body()) }
            let start = state.withLock { s -> Bool in
                if let agent {
                    if s.queues[agent] == nil { s.ring.append(agent) }
                    s.queues[agent, default: []].append(job)
                } else {
                    s.operatorJobs.append(job)
                }
                if s.running { return false }
                s.running = true
                return true
            }
            if start { Task(executorPreference: executor) { await self.drain() } }
        }
    }

    private func drain() async {
        while let job = take() { await job() }
    }

    private func take() -> Job? {
        state.withLock { s -> Job? in
            if !s.operatorJobs.isEmpty { return s.operatorJobs.removeFirst() }
            guard !s.ring.isEmpty else {
                s.running = false
                return nil
            }
            if s.next >= s.ring.count { s.next = 0 }
            let agent = s.ring[s.next]
            var q = s.queues[agent] ?? []
            let job = q.removeFirst()
            if q.isEmpty {
                s.queues[agent] = nil
                s.ring.remove(at: s.next)
            } else {
                s.queues[agent] = q
                s.next += 1
            }
            return job
        }
    }
}
