import BastionCore
import NIOCore
import Synchronization

/// What runs on a loop once the store has committed (or failed) a batch of its operations.
enum CommitFollowUp {
    /// A PUBACK / PUBREC / PUBCOMP waiting for its message (see `queueAcknowledgement`).
    case acknowledgement(MQTTConnectionHandler, sequence: Int)
    /// A QoS 2 PUBLISH or PUBREL waiting for its packet id to be stored (see `sendAfterCommit`).
    case gatedSend(MQTTConnectionHandler, sequence: Int)
    case callback((Result<Void, StoreError>) -> Void)
}

/// The store operations a loop collects during a read burst. They are submitted as one, in the
/// order they were made, at the end of the burst: one submission and one completion hop per
/// burst instead of several per message, and the store sees a message's enqueue and its
/// subscriber's acknowledgement together more often (it then writes neither).
struct PendingStoreWrites {
    var operations: [StoreOperation] = []
    var followUps: [CommitFollowUp] = []
    /// A submit is scheduled on the loop for operations made outside a read burst.
    var scheduled = false

    var isEmpty: Bool { operations.isEmpty && followUps.isEmpty }
}

/// Completions of a loop's submissions, handed from the store's writer to the loop. One commit
/// often completes several of a loop's submissions (one per read burst): they are run by one
/// task, in submission order, with one flush, so a publisher gets its acknowledgements of one
/// commit in one write and the loop is woken once.
final class CommittedSubmissions: Sendable {
    typealias Completion = (followUps: NIOLoopBound<[CommitFollowUp]>, result: Result<Void, StoreError>)

    private struct State {
        var completions: [Completion] = []
        var scheduled = false
    }

    private let state = Mutex(State())

    /// Writer side. True if the caller must schedule a `take` on the loop.
    func add(_ completion: Completion) -> Bool {
        state.withLock { s in
            s.completions.append(completion)
            if s.scheduled { return false }
            s.scheduled = true
            return true
        }
    }

    /// Loop side: everything completed so far.
    func take() -> [Completion] {
        state.withLock { s in
            s.scheduled = false
            var taken: [Completion] = []
            swap(&taken, &s.completions)
            return taken
        }
    }
}

extension LoopWorker {
    /// Queues operations for this burst's submission; `followUp` runs once they are committed.
    /// Session records (saved, deleted, wills) are submitted at once with everything before
    /// them: a client reconnecting on another loop must find its old connection's writes ahead
    /// of its new ones.
    func persist(_ operations: [StoreOperation], then followUp: CommitFollowUp? = nil) {
        guard broker.store != nil, !operations.isEmpty || followUp != nil else { return }
        storeWrites.operations += operations
        if let followUp { storeWrites.followUps.append(followUp) }
        if operations.contains(where: \.isSessionRecord) { return submitStoreWrites() }
        scheduleStoreWrites()
    }

    /// One operation, without building an array.
    func persist(_ operation: StoreOperation) {
        guard broker.store != nil else { return }
        storeWrites.operations.append(operation)
        scheduleStoreWrites()
    }

    /// Submits what this loop collected as one store submission.
    func submitStoreWrites() {
        guard !storeWrites.isEmpty, let store = broker.store else { return }
        let operations = storeWrites.operations
        let followUps = NIOLoopBound(storeWrites.followUps, eventLoop: eventLoop)
        storeWrites.operations.removeAll(keepingCapacity: true)
        storeWrites.followUps = []
        let loop = eventLoop
        let broker = self.broker
        let committed = self.committed
        store.submit(operations) { result in
            guard committed.add((followUps, result)) else { return }
            loop.execute { broker.worker(on: loop).runCommitted() }
        }
    }

    /// Operations made outside a read burst (timers, futures) still leave in this loop tick.
    private func scheduleStoreWrites() {
        guard !storeWrites.scheduled else { return }
        storeWrites.scheduled = true
        let loop = eventLoop
        let broker = self.broker
        loop.execute {
            let worker = broker.worker(on: loop)
            worker.storeWrites.scheduled = false
            worker.submitStoreWrites()
        }
    }

    private func runCommitted() {
        for (followUps, result) in committed.take() {
            broker.storeCompleted(result)
            let failure: StoreError? = if case .failure(let error) = result { error } else { nil }
            for followUp in followUps.value {
                switch followUp {
                case .acknowledgement(let handler, let sequence): handler.acknowledgementCommitted(sequence, failure: failure)
                case .gatedSend(let handler, let sequence): handler.gatedCommitted(sequence)
                case .callback(let body): body(result)
                }
            }
        }
        flush()
    }
}

extension StoreOperation {
    /// Writes about a session as a whole rather than one message.
    var isSessionRecord: Bool {
        switch self {
        case .saveSession, .deleteSession, .setPendingWill: true
        default: false
        }
    }
}
