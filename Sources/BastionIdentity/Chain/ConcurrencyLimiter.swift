import DequeModule
import Synchronization

/// Bounds the work in progress for one backend: at most `maximumConcurrent` calls run, at most
/// `maximumQueued` wait; beyond that a caller is refused at once (the client gets "server busy"),
/// so a slow backend cannot pile up unbounded work or stall logins that other backends decide.
/// A waiter whose task is cancelled (its deadline passed) leaves the queue.
public final class ConcurrencyLimiter: Sendable {
    public enum Acquisition: Sendable, Equatable {
        case acquired
        case busy
        case cancelled
    }

    public let maximumConcurrent: Int
    public let maximumQueued: Int
    private let state = Mutex(State())

    private struct Waiter {
        var id: UInt64
        var continuation: CheckedContinuation<Bool, Never>
    }

    private struct State {
        var active = 0
        var waiters = Deque<Waiter>()
        /// Ids given out to callers that have not registered their continuation yet.
        var reserved = Set<UInt64>()
        /// Reserved ids whose task was cancelled before they registered.
        var cancelledEarly = Set<UInt64>()
        var nextID: UInt64 = 0
    }

    public init(maximumConcurrent: Int, maximumQueued: Int) {
        self.maximumConcurrent = max(1, maximumConcurrent)
        self.maximumQueued = max(0, maximumQueued)
    }

    /// Calls running and waiting, for tests and metrics.
    public var usage: (active: Int, queued: Int) {
        state.withLock { ($0.active, $0.waiters.count + $0.reserved.count) }
    }

    /// Takes a slot, waiting in line when all are taken. `.acquired` must be paired with `release()`.
    public func acquire() async -> Acquisition {
        enum Start { case acquired, busy, wait(UInt64) }
        let start: Start = state.withLock { state in
            if state.active < maximumConcurrent {
                state.active += 1
                return .acquired
            }
            guard state.waiters.count + state.reserved.count < maximumQueued else { return .busy }
            let id = state.nextID
            state.nextID += 1
            state.reserved.insert(id)
            return .wait(id)
        }
        let id: UInt64
        switch start {
        case .acquired: return .acquired
        case .busy: return .busy
        case .wait(let reserved): id = reserved
        }
        let granted = await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
                let cancelled = state.withLock { state -> Bool in
                    state.reserved.remove(id)
                    if state.cancelledEarly.remove(id) != nil { return true }
                    state.waiters.append(Waiter(id: id, continuation: continuation))
                    return false
                }
                if cancelled { continuation.resume(returning: false) }
            }
        } onCancel: {
            let waiter = state.withLock { state -> Waiter? in
                if let index = state.waiters.firstIndex(where: { $0.id == id }) { return state.waiters.remove(at: index) }
                if state.reserved.contains(id) { state.cancelledEarly.insert(id) }
                return nil
            }
            waiter?.continuation.resume(returning: false)
        }
        return granted ? .acquired : .cancelled
    }

    /// Gives the slot to the next waiter, or frees it.
    public func release() {
        let next = state.withLock { state -> Waiter? in
            if let waiter = state.waiters.popFirst() { return waiter }
            state.active -= 1
            return nil
        }
        next?.continuation.resume(returning: true)
    }
}
