@testable import BastionLDAP
import Testing

@Suite("Connection state machine")
struct StateMachineTests {
    private let bind = LDAPOperation.bind(LDAPBindRequest(name: "cn=x", password: Array("pw".utf8)))
    private let search = LDAPOperation.search(LDAPSearchRequest(baseObject: "dc=t"), LDAPSearchLimits(maximumEntries: 2, maximumBytes: 1000))

    private func entry(_ id: Int32, _ dn: String) -> LDAPMessage { LDAPMessage(messageID: id, .searchResultEntry(LDAPEntry(dn: dn))) }
    private func done(_ id: Int32, _ code: LDAPResultCode = .success) -> LDAPMessage {
        LDAPMessage(messageID: id, .searchResultDone(LDAPResult(resultCode: code)))
    }

    @Test func bindIsAnsweredByItsResultWhateverTheCode() {
        var machine = LDAPConnectionStateMachine()
        #expect(machine.send(bind) == .write(LDAPMessage(messageID: 1, .bindRequest(LDAPBindRequest(name: "cn=x", password: Array("pw".utf8))))))
        let refused = LDAPResult(resultCode: .invalidCredentials)
        #expect(machine.received(LDAPMessage(messageID: 1, .bindResponse(LDAPBindResponse(result: refused))), size: 14, bytesAfter: 0) == .succeed(.bind(refused)))
        #expect(machine.isIdle)
        // Message ids increase per operation.
        guard case .write(let next) = machine.send(bind) else { Issue.record("expected a write"); return }
        #expect(next.messageID == 2)
    }

    @Test func messageIDsWrapToOneNotZero() {
        // 0 is reserved for unsolicited notifications (RFC 4511 §4.1.1.1).
        var machine = LDAPConnectionStateMachine(firstMessageID: Int32.max)
        var ids: [Int32] = []
        for _ in 0..<2 {
            guard case .write(let message) = machine.send(bind) else { Issue.record("expected a write"); return }
            ids.append(message.messageID)
            _ = machine.received(LDAPMessage(messageID: message.messageID, .bindResponse(LDAPBindResponse(result: LDAPResult(resultCode: .success)))), size: 10, bytesAfter: 0)
        }
        #expect(ids == [Int32.max, 1])
    }

    @Test func searchCollectsEntriesUntilDone() {
        var machine = LDAPConnectionStateMachine()
        _ = machine.send(search)
        #expect(machine.received(entry(1, "cn=a"), size: 10, bytesAfter: 0) == .none)
        #expect(machine.received(LDAPMessage(messageID: 1, .searchResultReference(["ldap://x/"])), size: 10, bytesAfter: 0) == .none)
        #expect(machine.received(entry(1, "cn=b"), size: 10, bytesAfter: 0) == .none)
        #expect(machine.received(done(1), size: 10, bytesAfter: 0) == .succeed(.search([LDAPEntry(dn: "cn=a"), LDAPEntry(dn: "cn=b")])))
        #expect(machine.isIdle)
    }

    @Test func searchFailureResultKeepsTheConnection() {
        var machine = LDAPConnectionStateMachine()
        _ = machine.send(search)
        let result = LDAPResult(resultCode: .noSuchObject, matchedDN: "dc=t")
        #expect(machine.received(LDAPMessage(messageID: 1, .searchResultDone(result)), size: 10, bytesAfter: 0) == .fail(.result(result)))
        #expect(machine.isIdle)
    }

    @Test func searchBeyondTheEntryLimitFailsAndCloses() {
        var machine = LDAPConnectionStateMachine()
        _ = machine.send(search)
        _ = machine.received(entry(1, "cn=a"), size: 10, bytesAfter: 0)
        _ = machine.received(entry(1, "cn=b"), size: 10, bytesAfter: 0)
        guard case .failAndClose(.limitExceeded) = machine.received(entry(1, "cn=c"), size: 10, bytesAfter: 0) else {
            Issue.record("expected limitExceeded"); return
        }
        // Later operations fail with the reason the connection closed.
        guard case .fail(.limitExceeded) = machine.send(bind) else { Issue.record("expected the close reason"); return }
    }

    @Test func searchBeyondTheByteLimitFailsAndCloses() {
        var machine = LDAPConnectionStateMachine()
        _ = machine.send(search)
        guard case .failAndClose(.limitExceeded) = machine.received(entry(1, "cn=a"), size: 1001, bytesAfter: 0) else {
            Issue.record("expected limitExceeded"); return
        }
    }

    @Test func referencesCountTowardsTheByteLimit() {
        var machine = LDAPConnectionStateMachine()
        _ = machine.send(search)
        for _ in 0..<10 { _ = machine.received(LDAPMessage(messageID: 1, .searchResultReference(["ldap://x/"])), size: 100, bytesAfter: 0) }
        guard case .failAndClose(.limitExceeded) = machine.received(LDAPMessage(messageID: 1, .searchResultReference(["ldap://x/"])), size: 100, bytesAfter: 0) else {
            Issue.record("expected limitExceeded"); return
        }
    }

    @Test func wrongMessageIDIsAProtocolError() {
        var machine = LDAPConnectionStateMachine()
        _ = machine.send(bind)
        guard case .failAndClose(.protocolError) = machine.received(LDAPMessage(messageID: 7, .bindResponse(LDAPBindResponse(result: LDAPResult(resultCode: .success)))), size: 10, bytesAfter: 0) else {
            Issue.record("expected a protocol error"); return
        }
    }

    @Test func unsolicitedMessagesAndWrongAnswersAreProtocolErrors() {
        let cases: [(LDAPOperation?, LDAPMessage)] = [
            (nil, LDAPMessage(messageID: 1, .bindResponse(LDAPBindResponse(result: LDAPResult(resultCode: .success))))),
            (bind, entry(1, "cn=a")),
            (bind, LDAPMessage(messageID: 1, .bindRequest(LDAPBindRequest(name: "", password: [])))),
            (search, LDAPMessage(messageID: 1, .bindResponse(LDAPBindResponse(result: LDAPResult(resultCode: .success))))),
            (.startTLS, LDAPMessage(messageID: 1, .bindResponse(LDAPBindResponse(result: LDAPResult(resultCode: .success))))),
            (.startTLS, LDAPMessage(messageID: 1, .extendedResponse(LDAPExtendedResponse(result: LDAPResult(resultCode: .success), name: "1.2.3")))),
            (bind, LDAPMessage(messageID: 0, .bindResponse(LDAPBindResponse(result: LDAPResult(resultCode: .success))))),
        ]
        for (operation, message) in cases {
            var machine = LDAPConnectionStateMachine()
            if let operation { _ = machine.send(operation) }
            guard case .failAndClose(.protocolError) = machine.received(message, size: 10, bytesAfter: 0) else {
                Issue.record("expected a protocol error for \(message)"); continue
            }
            #expect(machine.closeReason != nil)
        }
    }

    @Test func noticeOfDisconnectionClosesWithTheServersReason() {
        var machine = LDAPConnectionStateMachine()
        _ = machine.send(bind)
        let notice = LDAPMessage(messageID: 0, .extendedResponse(LDAPExtendedResponse(
            result: LDAPResult(resultCode: .unavailable, diagnosticMessage: "shutting down"), name: LDAPExtendedResponse.noticeOfDisconnectionName)))
        guard case .failAndClose(.connectionClosed(let why)) = machine.received(notice, size: 10, bytesAfter: 0) else {
            Issue.record("expected connectionClosed"); return
        }
        #expect(why.contains("shutting down"))
    }

    @Test func startTLSSuccessInstallsTLSOnlyWhenNothingFollows() {
        let agreed = LDAPMessage(messageID: 1, .extendedResponse(LDAPExtendedResponse(result: LDAPResult(resultCode: .success), name: LDAPExtendedRequest.startTLSName)))
        var machine = LDAPConnectionStateMachine()
        #expect(machine.send(.startTLS) == .write(LDAPMessage(messageID: 1, .extendedRequest(.startTLS))))
        #expect(machine.received(agreed, size: 10, bytesAfter: 0) == .installTLS)
        #expect(machine.isIdle)

        var injected = LDAPConnectionStateMachine()
        _ = injected.send(.startTLS)
        guard case .failAndClose(.protocolError) = injected.received(agreed, size: 10, bytesAfter: 5) else {
            Issue.record("bytes after the StartTLS response must be refused"); return
        }
    }

    @Test func startTLSRefusalKeepsThePlainConnection() {
        var machine = LDAPConnectionStateMachine()
        _ = machine.send(.startTLS)
        let refused = LDAPResult(resultCode: .protocolError, diagnosticMessage: "unsupported")
        #expect(machine.received(LDAPMessage(messageID: 1, .extendedResponse(LDAPExtendedResponse(result: refused))), size: 10, bytesAfter: 0) == .fail(.result(refused)))
        #expect(machine.isIdle)
    }

    @Test func oneOperationAtATime() {
        var machine = LDAPConnectionStateMachine()
        _ = machine.send(bind)
        guard case .fail(.invalidRequest) = machine.send(search) else { Issue.record("expected invalidRequest"); return }
    }

    @Test func timeoutFailsTheOperationInFlightOnly() {
        var machine = LDAPConnectionStateMachine()
        _ = machine.send(bind)
        #expect(machine.timedOut(messageID: 9, after: .seconds(1)) == .none)
        #expect(machine.timedOut(messageID: 1, after: .seconds(1)) == .failAndClose(.timedOut(operation: "bind", after: .seconds(1))))
        #expect(machine.timedOut(messageID: 1, after: .seconds(1)) == .none)
        #expect(machine.send(bind) == .fail(.timedOut(operation: "bind", after: .seconds(1))))
    }

    @Test func closeKeepsTheFirstReason() {
        var machine = LDAPConnectionStateMachine()
        _ = machine.send(bind)
        #expect(machine.errorCaught(.tlsFailure("bad certificate")) == .failAndClose(.tlsFailure("bad certificate")))
        #expect(machine.channelInactive() == .none)
        #expect(machine.closeReason == .tlsFailure("bad certificate"))
        #expect(machine.received(done(1), size: 10, bytesAfter: 0) == .none)
    }

    @Test func unbindWritesAndCloses() {
        var machine = LDAPConnectionStateMachine()
        #expect(machine.send(.unbind) == .writeAndClose(LDAPMessage(messageID: 1, .unbindRequest)))
        guard case .fail(.connectionClosed) = machine.send(bind) else { Issue.record("expected closed"); return }
    }
}
