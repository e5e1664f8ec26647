import BastionCore
import DequeModule
import NIOCore
import NIOPosix
import Synchronization

/// The password-hashing pool, shared fairly between client addresses: each source has its own
/// queue and the pool's threads take one job from each source in turn, so a few hundred wrong
/// passwords from a handful of addresses delay a legitimate client by a few turns, not by the
/// whole backlog. A source gets nil (the caller answers "server busy" at once) when it has its
/// share waiting: `sharedLimit` divided between the sources waiting now, never below
/// `perSourceLimit` — so one address alone may queue as much as the whole pool ever allowed, and
/// under contention each keeps a few. Work without a source shares one unlimited queue.
final class FairBlockingPool: BlockingWorkPool {
    private struct Job {
        var run: @Sendable () -> Void
        var cancel: @Sendable () -> Void
    }

    private struct State {
        var queues: [String: Deque<Job>] = [:]
        /// Sources with work waiting, in the order they get their next turn.
        var turns: Deque<String> = []
    }

    private let pool: NIOThreadPool
    private let perSourceLimit: Int
    private let sharedLimit: Int
    private let state = Mutex(State())

    init(pool: NIOThreadPool, perSourceLimit: Int = 8, sharedLimit: Int = 64) {
        self.pool = pool
        self.perSourceLimit = perSourceLimit
        self.sharedLimit = sharedLimit
    }

    struct ShuttingDown: Error {}

    func run<T: Sendable>(on eventLoop: any EventLoop, _ work: @escaping @Sendable () -> T) -> EventLoopFuture<T> {
        enqueue(on: eventLoop, key: "", limited: false, work)!
    }

    func run<T: Sendable>(on eventLoop: any EventLoop, source: String?, _ work: @escaping @Sendable () -> T) -> EventLoopFuture<T>? {
        enqueue(on: eventLoop, key: source.map { "@" + $0 } ?? "", limited: source != nil, work)
    }

    private func enqueue<T: Sendable>(on eventLoop: any EventLoop, key: String, limited: Bool,
                                      _ work: @escaping @Sendable () -> T) -> EventLoopFuture<T>? {
        let promise = eventLoop.makePromise(of: T.self)
        let job = Job(run: { promise.succeed(work()) }, cancel: { promise.fail(ShuttingDown()) })
        let accepted = state.withLock { s -> Bool in
            let waiting = s.queues[key]?.count ?? 0
            if limited {
                let sources = s.turns.count + (waiting == 0 ? 1 : 0)
                guard waiting < max(perSourceLimit, sharedLimit / sources) else { return false }
            }
            if waiting == 0 { s.turns.append(key) }
            s.queues[key, default: []].append(job)
            return true
        }
        guard accepted else {
            promise.fail(ShuttingDown())  // never handed out; completed so it is not leaked
            return nil
        }
        // One pool task per job; each runs whichever job has the next turn.
        pool.submit { [self] workState in
            guard let next = takeNext() else { return }
            if case .active = workState { next.run() } else { next.cancel() }
        }
        return promise.futureResult
    }

    private func takeNext() -> Job? {
        state.withLock { s -> Job? in
            guard let key = s.turns.popFirst(), var queue = s.queues[key], let job = queue.popFirst() else { return nil }
            if queue.isEmpty {
                s.queues[key] = nil
            } else {
                s.queues[key] = queue
                s.turns.append(key)
            }
            return job
        }
    }
}
