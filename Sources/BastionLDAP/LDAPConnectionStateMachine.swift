/// The decisions of one LDAP connection, free of IO: which message to send for an operation,
/// what an arriving message means for the operation in flight, and what a timeout, an error or
/// the end of the connection does to it. `LDAPChannelHandler` executes the actions.
struct LDAPConnectionStateMachine {
    private enum State {
        case idle
        case awaiting(Pending)
        case closed(LDAPError)
    }

    private struct Pending {
        enum Kind {
            case bind
            case search(SearchCollector)
            case startTLS
        }

        var messageID: Int32
        var operation: String
        var kind: Kind
    }

    private var state = State.idle
    private var nextMessageID: Int32

    /// `firstMessageID` lets tests start near the wrap-around.
    init(firstMessageID: Int32 = 1) {
        nextMessageID = firstMessageID
    }

    enum SendAction: Hashable {
        /// Write the message and start the operation's timer.
        case write(LDAPMessage)
        /// Write the message, report the operation done and close (UnbindRequest has no answer).
        case writeAndClose(LDAPMessage)
        case fail(LDAPError)
    }

    enum ReceiveAction: Hashable {
        /// Part of a search; wait for more.
        case none
        case succeed(LDAPOperationResponse)
        /// The operation failed; the connection stays usable.
        case fail(LDAPError)
        /// The server agreed to StartTLS: put TLS in place, then succeed.
        case installTLS
        /// Fail the operation in flight, if any, with this error and close.
        case failAndClose(LDAPError)
    }

    enum CloseAction: Hashable {
        case none
        /// Fail the operation in flight, if any, and close.
        case failAndClose(LDAPError)
    }

    var isIdle: Bool {
        if case .idle = state { true } else { false }
    }

    mutating func send(_ operation: LDAPOperation) -> SendAction {
        switch state {
        case .closed(let error):
            return .fail(error)
        case .awaiting(let pending):
            return .fail(.invalidRequest("\(operation.name) requested while \(pending.operation) is in progress"))
        case .idle:
            break
        }
        let messageID = nextMessageID
        nextMessageID = nextMessageID == Int32.max ? 1 : nextMessageID + 1
        switch operation {
        case .bind(let request):
            state = .awaiting(Pending(messageID: messageID, operation: operation.name, kind: .bind))
            return .write(LDAPMessage(messageID: messageID, .bindRequest(request)))
        case .search(let request, let limits):
            state = .awaiting(Pending(messageID: messageID, operation: operation.name, kind: .search(SearchCollector(limits: limits))))
            return .write(LDAPMessage(messageID: messageID, .searchRequest(request)))
        case .startTLS:
            state = .awaiting(Pending(messageID: messageID, operation: operation.name, kind: .startTLS))
            return .write(LDAPMessage(messageID: messageID, .extendedRequest(.startTLS)))
        case .unbind:
            state = .closed(.connectionClosed("unbound"))
            return .writeAndClose(LDAPMessage(messageID: messageID, .unbindRequest))
        }
    }

    /// `size` is the message's size on the wire; `bytesAfter` how many received bytes follow it.
    mutating func received(_ message: LDAPMessage, size: Int, bytesAfter: Int) -> ReceiveAction {
        if case .closed = state { return .none }
        if message.messageID == 0 {
            // Unsolicited notification (RFC 4511 §4.4): the server is about to drop the connection.
            if case .extendedResponse(let notice) = message.protocolOp {
                return close(.connectionClosed("server sent a notice of disconnection: \(notice.result)"))
            }
            return close(.protocolError("\(message.protocolOp.name) with message id 0"))
        }
        guard case .awaiting(var pending) = state else {
            return close(.protocolError("unsolicited \(message.protocolOp.name) (message id \(message.messageID))"))
        }
        guard message.messageID == pending.messageID else {
            return close(.protocolError("\(message.protocolOp.name) for message id \(message.messageID), expected \(pending.messageID)"))
        }
        switch (pending.kind, message.protocolOp) {
        case (.bind, .bindResponse(let response)):
            state = .idle
            return .succeed(.bind(response.result))
        case (.search(var collector), let op):
            switch collector.received(op, size: size) {
            case .needMore:
                pending.kind = .search(collector)
                state = .awaiting(pending)
                return .none
            case .done(let entries):
                state = .idle
                return .succeed(.search(entries))
            case .failed(let error):
                if case .result = error {
                    state = .idle
                    return .fail(error)
                }
                return close(error)
            }
        case (.startTLS, .extendedResponse(let response)):
            if let name = response.name, name != LDAPExtendedRequest.startTLSName {
                return close(.protocolError("StartTLS answered by extended response \(name)"))
            }
            guard response.result.isSuccess else {
                state = .idle
                return .fail(.result(response.result))
            }
            // Bytes after the StartTLS response would be read as if they came over TLS
            // (plaintext injection); a correct server sends nothing until the handshake.
            guard bytesAfter == 0 else {
                return close(.protocolError("data after the StartTLS response"))
            }
            state = .idle
            return .installTLS
        case (_, let op):
            return close(.protocolError("\(op.name) in answer to \(pending.operation)"))
        }
    }

    /// The timer of the operation with `messageID` fired.
    mutating func timedOut(messageID: Int32, after: Duration) -> CloseAction {
        guard case .awaiting(let pending) = state, pending.messageID == messageID else { return .none }
        return closeAction(.timedOut(operation: pending.operation, after: after))
    }

    /// Putting the TLS handler in place failed after the server agreed to StartTLS.
    mutating func tlsSetupFailed(_ error: LDAPError) -> CloseAction {
        closeAction(error)
    }

    mutating func errorCaught(_ error: LDAPError) -> CloseAction {
        closeAction(error)
    }

    mutating func channelInactive() -> CloseAction {
        closeAction(.connectionClosed("the server closed the connection"))
    }

    /// Why the connection is closed, once it is.
    var closeReason: LDAPError? {
        if case .closed(let error) = state { error } else { nil }
    }

    private mutating func close(_ error: LDAPError) -> ReceiveAction {
        if case .failAndClose(let error) = closeAction(error) { return .failAndClose(error) }
        return .none
    }

    private mutating func closeAction(_ error: LDAPError) -> CloseAction {
        if case .closed = state { return .none }
        state = .closed(error)
        return .failAndClose(error)
    }
}
