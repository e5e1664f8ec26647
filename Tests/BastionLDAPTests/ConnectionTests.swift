@testable import BastionLDAP
import NIOCore
import NIOPosix
import NIOSSL
import Testing

/// LDAPConnection against servers that misbehave on purpose. Timeouts here are bounds, not measurements.
private func bindResponse(_ id: Int32, _ code: LDAPResultCode = .success) -> [UInt8] {
    LDAPMessage(messageID: id, .bindResponse(LDAPBindResponse(result: LDAPResult(resultCode: code)))).serializedBytes
}

@Suite("Connection against fake servers", .timeLimit(.minutes(1)))
struct ConnectionTests {

    @Test func silentServerTimesOut() async throws {
        let server = try await FakeLDAPServer.start(.silent)
        defer { Task { await server.stop() } }
        let connection = try await LDAPConnection.connect(to: server.url, operationTimeout: .milliseconds(200))
        await #expect(throws: LDAPError.timedOut(operation: "bind", after: .milliseconds(200))) {
            try await connection.simpleBind(dn: "cn=x", password: "pw")
        }
        // The connection is closed after a timeout, and says why.
        await #expect(throws: LDAPError.timedOut(operation: "bind", after: .milliseconds(200))) {
            try await connection.simpleBind(dn: "cn=x", password: "pw")
        }
        await connection.close()
    }

    @Test func garbageIsAProtocolError() async throws {
        let server = try await FakeLDAPServer.start(.reply(Array("HTTP/1.1 400 Bad Request\r\n\r\n".utf8)))
        defer { Task { await server.stop() } }
        let connection = try await LDAPConnection.connect(to: server.url, operationTimeout: .seconds(10))
        await #expect {
            try await connection.simpleBind(dn: "cn=x", password: "pw")
        } throws: { error in
            guard case LDAPError.protocolError = error else { return false }
            return true
        }
        await connection.close()
    }

    @Test func oversizedAnswerIsRefusedFromItsHeader() async throws {
        // Announces 16 MiB and sends only the header: the client must not wait for the body.
        let server = try await FakeLDAPServer.start(.reply([0x30, 0x84, 0x01, 0x00, 0x00, 0x00]))
        defer { Task { await server.stop() } }
        let connection = try await LDAPConnection.connect(to: server.url, operationTimeout: .seconds(10))
        await #expect {
            try await connection.simpleBind(dn: "cn=x", password: "pw")
        } throws: { error in
            guard case LDAPError.protocolError(let why) = error else { return false }
            return why.contains("too large")
        }
    }

    @Test func refusedConnectionFailsAtOnce() async throws {
        // Port 1 (tcpmux) has no listener here; a port freed by a test could be reused by another.
        let url = LDAPURL(scheme: .ldap, host: "127.0.0.1", port: 1)
        await #expect {
            try await LDAPConnection.connect(to: url, connectTimeout: .seconds(5))
        } throws: { error in
            guard case LDAPError.connectFailed = error else { return false }
            return true
        }
    }

    @Test func answerWithAnotherMessageIDIsAProtocolError() async throws {
        let server = try await FakeLDAPServer.start(.scripted { _ in bindResponse(42) })
        defer { Task { await server.stop() } }
        let connection = try await LDAPConnection.connect(to: server.url)
        await #expect {
            try await connection.simpleBind(dn: "cn=x", password: "pw")
        } throws: { error in
            guard case LDAPError.protocolError(let why) = error else { return false }
            return why.contains("42")
        }
    }

    @Test func serverClosingMidSearchIsReported() async throws {
        // One entry and part of another, then the server goes away without SearchResultDone.
        let entry = LDAPMessage(messageID: 1, .searchResultEntry(LDAPEntry(dn: "cn=a"))).serializedBytes
        let server = try await FakeLDAPServer.start(.replyAndClose(entry + [0x30, 0x05, 0x02]))
        defer { Task { await server.stop() } }
        let connection = try await LDAPConnection.connect(to: server.url, operationTimeout: .seconds(10))
        await #expect {
            try await connection.search(base: "dc=x", filter: .present(attribute: "objectClass"))
        } throws: { error in
            guard case LDAPError.connectionClosed = error else { return false }
            return true
        }
    }

    @Test func noticeOfDisconnectionFailsTheOperation() async throws {
        let server = try await FakeLDAPServer.start(.scripted { _ in
            LDAPMessage(messageID: 0, .extendedResponse(LDAPExtendedResponse(
                result: LDAPResult(resultCode: .unavailable, diagnosticMessage: "maintenance"),
                name: LDAPExtendedResponse.noticeOfDisconnectionName))).serializedBytes
        })
        defer { Task { await server.stop() } }
        let connection = try await LDAPConnection.connect(to: server.url)
        await #expect {
            try await connection.simpleBind(dn: "cn=x", password: "pw")
        } throws: { error in
            guard case LDAPError.connectionClosed(let why) = error else { return false }
            return why.contains("maintenance")
        }
    }

    @Test func plaintextAfterTheStartTLSResponseIsRefused() async throws {
        // A man in the middle appends a forged answer to the StartTLS response (command injection).
        let server = try await FakeLDAPServer.start(.scripted { request in
            LDAPMessage(messageID: request.messageID, .extendedResponse(LDAPExtendedResponse(
                result: LDAPResult(resultCode: .success), name: LDAPExtendedRequest.startTLSName))).serializedBytes
                + bindResponse(request.messageID + 1)
        })
        defer { Task { await server.stop() } }
        let connection = try await LDAPConnection.connect(to: server.url)
        await #expect {
            try await connection.startTLS(configuration: .makeClientConfiguration())
        } throws: { error in
            guard case LDAPError.protocolError(let why) = error else { return false }
            return why.contains("StartTLS")
        }
    }

    @Test func startTLSRefusedByTheServerThrowsItsResult() async throws {
        let refused = LDAPResult(resultCode: .protocolError, diagnosticMessage: "unsupported extended operation")
        let server = try await FakeLDAPServer.start(.scripted { request in
            LDAPMessage(messageID: request.messageID, .extendedResponse(LDAPExtendedResponse(result: refused))).serializedBytes
        })
        defer { Task { await server.stop() } }
        let connection = try await LDAPConnection.connect(to: server.url)
        await #expect(throws: LDAPError.result(refused)) {
            try await connection.startTLS(configuration: .makeClientConfiguration())
        }
    }

    @Test func tlsAgainstAPlainServerIsATLSFailure() async throws {
        let server = try await FakeLDAPServer.start(.reply(bindResponse(1)))
        defer { Task { await server.stop() } }
        let url = LDAPURL(scheme: .ldaps, host: "127.0.0.1", port: server.port)
        let connection = try await LDAPConnection.connect(to: url, operationTimeout: .seconds(10))
        await #expect {
            try await connection.simpleBind(dn: "cn=x", password: "pw")
        } throws: { error in
            guard case LDAPError.tlsFailure = error else { return false }
            return true
        }
    }

    @Test func searchCollectsEntriesAndEnforcesTheCap() async throws {
        let server = try await FakeLDAPServer.start(.scripted { request in
            let entries = (0..<5).flatMap {
                LDAPMessage(messageID: request.messageID, .searchResultEntry(LDAPEntry(dn: "cn=\($0)", attributes: [
                    LDAPAttribute(type: "cn", stringValues: ["\($0)"]),
                ]))).serializedBytes
            }
            return entries + LDAPMessage(messageID: request.messageID, .searchResultDone(LDAPResult(resultCode: .success))).serializedBytes
        })
        defer { Task { await server.stop() } }
        let connection = try await LDAPConnection.connect(to: server.url)
        let entries = try await connection.search(base: "dc=x", filter: .present(attribute: "objectClass"))
        #expect(entries.map(\.dn) == ["cn=0", "cn=1", "cn=2", "cn=3", "cn=4"])
        #expect(entries[3].stringValues(of: "CN") == ["3"])
        await #expect {
            try await connection.search(base: "dc=x", filter: .present(attribute: "objectClass"), limits: LDAPSearchLimits(maximumEntries: 4))
        } throws: { error in
            guard case LDAPError.limitExceeded = error else { return false }
            return true
        }
    }

    @Test func concurrentSecondOperationIsRefused() async throws {
        let server = try await FakeLDAPServer.start(.silent)
        defer { Task { await server.stop() } }
        let connection = try await LDAPConnection.connect(to: server.url, operationTimeout: .milliseconds(500))
        @Sendable func bindError() async -> LDAPError? {
            do {
                _ = try await connection.simpleBind(dn: "cn=x", password: "pw")
                return nil
            } catch {
                return error
            }
        }
        // Whichever bind reaches the connection first waits for the silent server until its
        // timeout; the other is refused at once.
        async let first = bindError()
        async let second = bindError()
        let errors = await [first, second]
        #expect(errors.contains(.timedOut(operation: "bind", after: .milliseconds(500))))
        #expect(errors.contains { if case .invalidRequest = $0 { true } else { false } })
    }

    @Test func emptyPasswordWithADNIsRefusedLocally() async throws {
        let server = try await FakeLDAPServer.start(.silent)
        defer { Task { await server.stop() } }
        let connection = try await LDAPConnection.connect(to: server.url, operationTimeout: .seconds(5))
        await #expect {
            try await connection.simpleBind(dn: "uid=alice,ou=people,dc=bastion,dc=test", password: "")
        } throws: { error in
            guard case LDAPError.invalidRequest = error else { return false }
            return true
        }
    }

    @Test func tlsConfigurationForPlainURLIsRefused() async throws {
        await #expect(throws: LDAPError.self) {
            try await LDAPConnection.connect(to: LDAPURL(scheme: .ldap, host: "127.0.0.1", port: 1), tls: .makeClientConfiguration())
        }
    }

    @Test func closeFailsTheOperationInFlight() async throws {
        let server = try await FakeLDAPServer.start(.silent)
        defer { Task { await server.stop() } }
        let connection = try await LDAPConnection.connect(to: server.url, operationTimeout: .seconds(30))
        let bind = Task { () async throws(LDAPError) -> LDAPResult in try await connection.simpleBind(dn: "cn=x", password: "pw") }
        // Whether the bind is already in flight or not yet sent, it fails with the close's reason.
        try await Task.sleep(for: .milliseconds(100))
        await connection.close()
        await #expect(throws: LDAPError.connectionClosed("closed by the client")) { try await bind.value }
    }

    @Test func operationAfterCloseFails() async throws {
        let server = try await FakeLDAPServer.start(.silent)
        defer { Task { await server.stop() } }
        let connection = try await LDAPConnection.connect(to: server.url)
        await connection.close()
        await #expect(throws: LDAPError.connectionClosed("closed by the client")) {
            try await connection.simpleBind(dn: "cn=x", password: "pw")
        }
    }
}

@Suite("Authenticator input checks", .timeLimit(.minutes(1)))
struct AuthenticatorInputTests {
    @Test func refusesBadInputWithoutContactingTheServer() async throws {
        let server = try await FakeLDAPServer.start(.silent)
        defer { Task { await server.stop() } }
        let authenticator = try LDAPDirectoryAuthenticator(configuration: LDAPDirectoryConfiguration(
            url: server.url, userLookup: .bindDNTemplate("uid=%u,ou=people,dc=bastion,dc=test"),
            operationTimeout: .milliseconds(200)))
        for (username, password) in [
            ("alice", ""), ("", "pw"), (String(repeating: "a", count: 257), "pw"), ("ali\0ce", "pw"), ("\0", "pw"),
        ] {
            #expect(await authenticator.authenticate(username: username, password: password) == .invalidCredentials)
        }
        #expect(server.acceptedConnections == 0)
        // A 256-byte name is allowed and does reach the (silent) server.
        guard case .unavailable = await authenticator.authenticate(username: String(repeating: "é", count: 128), password: "pw") else {
            Issue.record("expected unavailable from the silent server"); return
        }
        #expect(server.acceptedConnections == 1)
    }

    @Test func garbageServerMakesTheDirectoryUnavailable() async throws {
        let server = try await FakeLDAPServer.start(.reply(Array("SSH-2.0-OpenSSH_9.2\r\n".utf8)))
        defer { Task { await server.stop() } }
        let authenticator = try LDAPDirectoryAuthenticator(configuration: LDAPDirectoryConfiguration(
            url: server.url, userLookup: .bindDNTemplate("uid=%u,ou=people,dc=bastion,dc=test")))
        guard case .unavailable(let why) = await authenticator.authenticate(username: "alice", password: "alice-pass") else {
            Issue.record("expected unavailable"); return
        }
        #expect(why.contains("protocol error"))
    }

    @Test func successfulBindWithAnAmbiguousSearchIsNotALogin() async throws {
        // The search returns two entries: refuse, even though any bind would succeed.
        let server = try await FakeLDAPServer.start(.scripted { request in
            switch request.protocolOp {
            case .searchRequest:
                return [LDAPMessage(messageID: request.messageID, .searchResultEntry(LDAPEntry(dn: "uid=a,dc=x"))),
                        LDAPMessage(messageID: request.messageID, .searchResultEntry(LDAPEntry(dn: "uid=a,dc=y"))),
                        LDAPMessage(messageID: request.messageID, .searchResultDone(LDAPResult(resultCode: .success)))]
                    .flatMap(\.serializedBytes)
            case .bindRequest:
                return LDAPMessage(messageID: request.messageID, .bindResponse(LDAPBindResponse(result: LDAPResult(resultCode: .success)))).serializedBytes
            default:
                return []
            }
        })
        defer { Task { await server.stop() } }
        let authenticator = try LDAPDirectoryAuthenticator(configuration: LDAPDirectoryConfiguration(
            url: server.url, userLookup: .search(base: "dc=x", filter: "(uid=%u)")))
        guard case .unavailable(let why) = await authenticator.authenticate(username: "a", password: "pw") else {
            Issue.record("expected unavailable"); return
        }
        #expect(why.contains("more than one"))
    }
}
