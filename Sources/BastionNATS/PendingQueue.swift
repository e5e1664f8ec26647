import DequeModule
import Synchronization

/// The bounded queue between the event loop, which pushes, and one consumer task, which iterates.
/// Beyond its limits (messages and bytes) new elements are dropped and counted: a consumer that
/// falls behind can never make the client hold unbounded memory.
final class PendingQueue<Element: Sendable>: Sendable {
    struct Limits: Sendable {
        var messages: Int
        var bytes: Int
    }

    enum PushResult: Equatable {
        case queued
        /// Dropped; `firstInEpisode` is true for the first drop since the queue last had room.
        case dropped(firstInEpisode: Bool)
        case finished
    }

    private struct State {
        var items: Deque<(Element, Int)> = []
        var bytes = 0
        var waiter: CheckedContinuation<Element?, any Error>?
        /// Identifies the current waiter, so a timeout resumes only the wait it was made for.
        var waitID = 0
        var expiredID = -1
        var finished = false
        var failure: (any Error)?
        var dropped = 0
        var dropping = false
    }

    private let state = Mutex(State())
    let limits: Limits

    init(limits: Limits) { self.limits = limits }

    func push(_ element: Element, size: Int) -> PushResult {
        let (result, waiter): (PushResult, CheckedContinuation<Element?, any Error>?) = state.withLock { s in
            if s.finished { return (.finished, nil) }
            if let waiter = s.waiter {
                s.waiter = nil
                return (.queued, waiter)
            }
            if s.items.count >= limits.messages || s.bytes + size > limits.bytes {
                s.dropped += 1
                let first = !s.dropping
                s.dropping = true
                return (.dropped(firstInEpisode: first), nil)
            }
            s.items.append((element, size))
            s.bytes += size
            return (.queued, nil)
        }
        waiter?.resume(returning: element)
        return result
    }

    /// Ends iteration after the queued elements, or with `error` once they are consumed.
    func finish(throwing error: (any Error)? = nil) {
        let waiter: CheckedContinuation<Element?, any Error>? = state.withLock { s in
            guard !s.finished else { return nil }
            s.finished = true
            s.failure = error
            defer { s.waiter = nil }
            return s.waiter
        }
        if let error { waiter?.resume(throwing: error) } else { waiter?.resume(returning: nil) }
    }

    var droppedCount: Int { state.withLock { $0.dropped } }
    var pendingCount: Int { state.withLock { $0.items.count } }

    /// The next element, or nil when none arrived within `timeout` (no element is lost to it).
    func next(timeout: Duration) async throws -> Element? {
        if let ready = try takeReady() { return ready.value }
        let id = state.withLock { s in
            s.waitID += 1
            return s.waitID
        }
        let timer = Task { [weak self] in
            try await Task.sleep(for: timeout)
            self?.expireWait(id)
        }
        defer { timer.cancel() }
        return try await wait(id: id)
    }

    private func expireWait(_ id: Int) {
        let waiter: CheckedContinuation<Element?, any Error>? = state.withLock { s in
            guard s.waitID == id, let waiter = s.waiter else {
                // The wait has not begun yet: mark it expired so it returns at once.
                if s.waitID == id { s.expiredID = id }
                return nil
            }
            s.waiter = nil
            return waiter
        }
        waiter?.resume(returning: nil)
    }

    func next() async throws -> Element? {
        if let ready = try takeReady() { return ready.value }
        let id = state.withLock { s in
            s.waitID += 1
            return s.waitID
        }
        return try await wait(id: id)
    }

    private func wait(id: Int) async throws -> Element? {
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Element?, any Error>) in
                let immediate: Result<Element?, any Error>? = state.withLock { s in
                    if let (element, size) = s.items.popFirst() {
                        s.bytes -= size
                        return .success(element)
                    }
                    if s.finished { return s.failure.map { .failure($0) } ?? .success(nil) }
                    if Task.isCancelled || s.expiredID == id { return .success(nil) }
                    s.waiter = continuation
                    return nil
                }
                if let immediate { continuation.resume(with: immediate) }
            }
        } onCancel: {
            let waiter = self.state.withLock { s in
                defer { s.waiter = nil }
                return s.waiter
            }
            waiter?.resume(returning: nil)
        }
    }

    private struct Ready { var value: Element? }

    private func takeReady() throws -> Ready? {
        let result: Result<Element?, any Error>? = state.withLock { s in
            if let (element, size) = s.items.popFirst() {
                s.bytes -= size
                if s.items.isEmpty { s.dropping = false }
                return .success(element)
            }
            s.dropping = false
            if s.finished { return s.failure.map { .failure($0) } ?? .success(nil) }
            return nil
        }
        guard let result else { return nil }
        return Ready(value: try result.get())
    }
}
