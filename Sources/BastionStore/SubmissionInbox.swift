import BastionCore
import Dispatch
import Synchronization

/// One `submit` call: applied atomically, completed once.
struct Submission: Sendable {
    var operations: [StoreOperation]
    var completion: @Sendable (Result<Void, StoreError>) -> Void
}

/// The hand-off between submitters (any thread, never blocked beyond a short lock) and the single
/// writer thread, which takes everything queued since its last commit as the next batch.
final class SubmissionInbox: Sendable {
    private struct State {
        var pending: [Submission] = []
        var pendingOperations = 0
        var closed = false
        /// The writer is asleep on `wakeup` and wants a signal once `pendingOperations` reaches
        /// `wakeThreshold`. Whoever clears this flag owes (or consumes) exactly one signal.
        var writerWaiting = false
        var wakeThreshold = 1
    }

    enum Next {
        case batch([Submission])
        /// The deadline passed with nothing queued.
        case idle
        /// Closed and fully drained.
        case closed
    }

    private let state = Mutex(State())
    private let wakeup = DispatchSemaphore(value: 0)

    /// False when the inbox is closed (the submission was not queued).
    func submit(_ submission: Submission) -> Bool {
        let (accepted, signal) = state.withLock { s -> (Bool, Bool) in
            guard !s.closed else { return (false, false) }
            s.pending.append(submission)
            s.pendingOperations += max(1, submission.operations.count)
            if s.writerWaiting && s.pendingOperations >= s.wakeThreshold {
                s.writerWaiting = false
                return (true, true)
            }
            return (true, false)
        }
        if signal { wakeup.signal() }
        return accepted
    }

    /// Stops accepting submissions; what is queued is still handed out.
    func close() {
        let signal = state.withLock { s -> Bool in
            s.closed = true
            defer { s.writerWaiting = false }
            return s.writerWaiting
        }
        if signal { wakeup.signal() }
    }

    /// Writer side: waits for work until `deadline`, then optionally lets the batch grow for
    /// `gather` (or until `target` operations are queued), then takes what is queued, up to
    /// `limit` operations (always at least one submission).
    func next(deadline: DispatchTime, gather: Duration, target: Int, limit: Int) -> Next {
        while !sleep(until: deadline, threshold: 1) {
            if state.withLock({ $0.pending.isEmpty && !$0.closed }) { return .idle }
        }
        if gather > .zero {
            _ = sleep(until: DispatchTime.now() + .nanoseconds(gather.nanoseconds), threshold: target)
        }
        return state.withLock { s in
            if s.pending.isEmpty { return s.closed ? .closed : .idle }
            if s.pendingOperations <= limit {
                let batch = s.pending
                s.pending = []
                s.pending.reserveCapacity(batch.count)
                s.pendingOperations = 0
                return .batch(batch)
            }
            var count = 0
            var operations = 0
            for submission in s.pending {
                let size = max(1, submission.operations.count)
                if count > 0 && operations + size > limit { break }
                count += 1
                operations += size
            }
            let batch = Array(s.pending.prefix(count))
            s.pending.removeFirst(count)
            s.pendingOperations -= operations
            return .batch(batch)
        }
    }

    /// True when `threshold` operations are queued (or the inbox is closed) before `deadline`.
    private func sleep(until deadline: DispatchTime, threshold: Int) -> Bool {
        let ready = state.withLock { s -> Bool in
            if s.closed || s.pendingOperations >= threshold { return true }
            s.writerWaiting = true
            s.wakeThreshold = threshold
            return false
        }
        if ready { return true }
        if wakeup.wait(timeout: deadline) == .success { return true }
        let stillWaiting = state.withLock { s -> Bool in
            defer { s.writerWaiting = false }
            return s.writerWaiting
        }
        // A submitter cleared the flag between the timeout and the lock: its signal is on the way;
        // consume it so the next sleep is not woken by a stale signal.
        if !stillWaiting { wakeup.wait() }
        return state.withLock { $0.closed || $0.pendingOperations >= threshold }
    }
}

extension Duration {
    var nanoseconds: Int {
        let (seconds, attoseconds) = components
        let total = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        guard !total.overflow else { return .max }
        return Int(total.partialValue) + Int(attoseconds / 1_000_000_000)
    }
}
