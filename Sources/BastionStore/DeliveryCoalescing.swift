import BastionCore

/// Plays out in memory, for one transaction, the deliveries of messages first stored in it
/// (`putMessage(isNew: true)`). No such delivery can be on disk yet, so:
/// - a delivery enqueued and finished (dequeued) within the transaction is never written;
/// - its packet-id and release updates fold into the one insert of a delivery still owed;
/// - a new body that no delivery is left for is not written (a retained copy writes its own);
/// - a new message owed to exactly one session is written as one inline row (body and delivery
///   together, `inline_deliveries`): when it is acknowledged later, one row goes and no body is
///   left to collect.
///
/// Under load, a QoS 1 message to an online persistent session is often acknowledged by the
/// subscriber before the commit that would store it: four writes (body, delivery, packet id,
/// delete) become none. Every other operation is applied as it is; the state after the commit is
/// the same as applying all operations one by one.
struct DeliveryCoalescing {
    enum Action: Equatable {
        case apply
        case skip
        /// An `enqueue`, written with the delivery's packet id and release flag at the end of the
        /// transaction.
        case insert(packetID: UInt16?, released: Bool)
        /// A `putMessage` whose body goes into its one delivery's inline row.
        case holdBody
        /// An `enqueue` written as an inline row, with the held body.
        case insertInline(packetID: UInt16?, released: Bool)
    }

    /// One per operation, in order.
    private(set) var actions: [Action] = []
    /// Deliveries enqueued and finished within the transaction.
    private(set) var settledDeliveries = 0

    /// A delivery of a new message. A message's deliveries (to any session) form a chain through
    /// `next`, in queue order; most messages have one.
    private struct Row {
        var clientID: String
        var operation: Int
        var packetID: UInt16?
        var released: Bool
        var owed = true
        var next = -1
    }

    private struct NewMessage {
        var put: Int
        var first = -1
        var last = -1
    }

    private var rows: [Row] = []
    private var messages: [NewMessage] = []
    /// Message id → index in `messages`.
    private var newMessages: [MessageID: Int] = [:]

    /// The operations of `submissions` (those at `indices`), in order.
    init(_ submissions: [Submission], _ indices: [Int]) {
        for submission in indices {
            submissions[submission].operations.withUnsafeBufferPointer { play($0) }
        }
        settle()
    }

    init(_ operations: [StoreOperation]) {
        operations.withUnsafeBufferPointer { play($0) }
        settle()
    }

    private mutating func play(_ operations: UnsafeBufferPointer<StoreOperation>) {
        actions.reserveCapacity(actions.count + operations.count)
        for position in operations.indices {
            let index = actions.count
            actions.append(.apply)
            switch operations[position] {
            case .putMessage(let message, isNew: true):
                if newMessages[message.id] == nil {
                    newMessages[message.id] = messages.count
                    messages.append(NewMessage(put: index))
                }
            case .enqueue(let clientID, let delivery):
                guard let message = newMessages[delivery.messageID] else { continue }
                actions[index] = .skip
                append(Row(clientID: clientID, operation: index, packetID: delivery.packetID, released: delivery.released), to: message)
            case .assignPacketID(let clientID, let messageID, let packetID):
                guard let message = newMessages[messageID] else { continue }
                actions[index] = .skip
                // As stored: the first delivery not yet sent gets the id, else the first one.
                if let row = firstRow(of: message, clientID, preferring: { packetID, _ in packetID == nil }) {
                    rows[row].packetID = packetID
                }
            case .markReleased(let clientID, let messageID):
                guard let message = newMessages[messageID] else { continue }
                actions[index] = .skip
                if let row = firstRow(of: message, clientID, preferring: { packetID, released in packetID != nil && !released }) {
                    rows[row].released = true
                }
            case .dequeue(let clientID, let messageID):
                guard let message = newMessages[messageID] else { continue }
                actions[index] = .skip
                // As stored: the first delivery in queue order goes.
                if let row = firstRow(of: message, clientID, preferring: { _, _ in true }) {
                    rows[row].owed = false
                    settledDeliveries += 1
                }
            case .deleteSession(let clientID):
                // Applied as usual; it takes this session's new deliveries with it.
                for row in rows.indices where rows[row].clientID == clientID { rows[row].owed = false }
            default:
                break
            }
        }
    }

    /// Owed deliveries become inserts (inline when they are their message's only one); new bodies
    /// nothing is owed for are not written.
    private mutating func settle() {
        for message in messages {
            var owed = 0
            var only = -1
            var row = message.first
            while row >= 0 {
                if rows[row].owed {
                    owed += 1
                    only = row
                    actions[rows[row].operation] = .insert(packetID: rows[row].packetID, released: rows[row].released)
                }
                row = rows[row].next
            }
            switch owed {
            case 0:
                actions[message.put] = .skip
            case 1:
                actions[message.put] = .holdBody
                actions[rows[only].operation] = .insertInline(packetID: rows[only].packetID, released: rows[only].released)
            default:
                break
            }
        }
    }

    private mutating func append(_ row: Row, to message: Int) {
        rows.append(row)
        let index = rows.count - 1
        if messages[message].last >= 0 {
            rows[messages[message].last].next = index
        } else {
            messages[message].first = index
        }
        messages[message].last = index
    }

    /// The first owed delivery of the message to `clientID` matching `preferred`, else the first
    /// owed one to `clientID`.
    private func firstRow(
        of message: Int, _ clientID: String, preferring preferred: (_ packetID: UInt16?, _ released: Bool) -> Bool
    ) -> Int? {
        var fallback: Int?
        var index = messages[message].first
        while index >= 0 {
            if rows[index].owed, rows[index].clientID == clientID {
                if preferred(rows[index].packetID, rows[index].released) { return index }
                if fallback == nil { fallback = index }
            }
            index = rows[index].next
        }
        return fallback
    }
}
