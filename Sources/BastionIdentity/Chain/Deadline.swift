import Synchronization

/// Runs `work` in its own task and returns its result, or nil once `timeout` has passed. On
/// timeout the task is cancelled but not awaited: a backend call that ignores cancellation
/// finishes in the background (still holding its concurrency slot), and the caller moves on.
func withDeadline<T: Sendable>(_ timeout: Duration, _ work: @escaping @Sendable () async -> T) async -> T? {
    let race = DeadlineRace<T>()
    return await withCheckedContinuation { (continuation: CheckedContinuation<T?, Never>) in
        race.start(continuation)
        let worker = Task {
            let value = await work()
            race.finish(value)
        }
        let timer = Task {
            try? await Task.sleep(for: timeout)
            if race.finish(nil) { worker.cancel() }
        }
        race.onFinish { timer.cancel() }
    }
}

/// The first of the work and the timer to finish resumes the caller; the other finds it done.
private final class DeadlineRace<T: Sendable>: Sendable {
    private struct State {
        var continuation: CheckedContinuation<T?, Never>?
        var done = false
        var cleanup: (@Sendable () -> Void)?
    }

    private let state = Mutex(State())

    func start(_ continuation: CheckedContinuation<T?, Never>) {
        state.withLock { $0.continuation = continuation }
    }

    /// Runs `cleanup` when the race is over (at once if it already is).
    func onFinish(_ cleanup: @escaping @Sendable () -> Void) {
        let runNow = state.withLock { state -> Bool in
            if state.done { return true }
            state.cleanup = cleanup
            return false
        }
        if runNow { cleanup() }
    }

    /// Whether this call decided the race.
    @discardableResult
    func finish(_ value: T?) -> Bool {
        let (continuation, cleanup) = state.withLock { state -> (CheckedContinuation<T?, Never>?, (@Sendable () -> Void)?) in
            guard !state.done else { return (nil, nil) }
            state.done = true
            defer { state.continuation = nil; state.cleanup = nil }
            return (state.continuation, state.cleanup)
        }
        guard let continuation else { return false }
        continuation.resume(returning: value)
        cleanup?()
        return true
    }
}
