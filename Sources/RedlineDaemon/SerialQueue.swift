/// Runs jobs one at a time, in arrival order: the arbiter's single lane.
///
/// An actor would not do: it interleaves at every `await`, and a device write
/// awaits. Here a job runs to completion before the next one starts.
final class SerialQueue: Sendable {
    typealias Job = @Sendable () async -> Void
    private let continuation: AsyncStream<Job>.Continuation
    private let worker: Task<Void, Never>

    init() {
        let (stream, cont) = AsyncStream.makeStream(of: Job.self)
        continuation = cont
        worker = Task {
            for await job in stream { await job() }
        }
    }

    func run<T: Sendable>(_ body: @escaping @Sendable () async -> T) async -> T {
        await withCheckedContinuation { (c: CheckedContinuation<T, Never>) in
            let job: Job = { c.resume(returning: await body()) }
            if case .terminated = continuation.yield(job) {
                // Shut down: run inline rather than lose the answer.
                Task { await job() }
            }
        }
    }

    func finish() { continuation.finish() }
}
