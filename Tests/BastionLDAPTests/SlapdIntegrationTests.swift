import BastionLDAP
import NIOSSL
import Testing

/// Against a real OpenLDAP server (scripts/test-servers/slapd.sh, seed documented there).
/// Without slapd installed these tests fail and say how to install it.
@Suite("OpenLDAP integration", .slapd, .timeLimit(.minutes(2)))
struct SlapdIntegrationTests {
    private static let people = "ou=people,dc=bastion,dc=test"
    private static let groups = "ou=groups,dc=bastion,dc=test"
    private static let reader = "cn=reader,dc=bastion,dc=test"

    private func tls(_ server: SlapdServer, ca: String? = nil) throws -> TLSConfiguration {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(ca ?? server.caFile))
        return configuration
    }

    private func authenticator(
        _ server: SlapdServer,
        url: LDAPURL? = nil,
        startTLS: Bool = false,
        ca: String? = nil,
        user: LDAPDirectoryConfiguration.UserLookup = .bindDNTemplate("uid=%u,\(people)"),
        service: Bool = false,
        groups: LDAPDirectoryConfiguration.GroupLookup = .none
    ) throws -> LDAPDirectoryAuthenticator {
        let url = url ?? server.ldapURL
        let usesTLS = startTLS || url.scheme == .ldaps
        return try LDAPDirectoryAuthenticator(configuration: LDAPDirectoryConfiguration(
            url: url, tls: .init(caFile: usesTLS ? (ca ?? server.caFile) : nil), startTLS: startTLS, userLookup: user,
            serviceBindDN: service ? Self.reader : nil, serviceBindPassword: service ? "reader-pass" : nil,
            groupLookup: groups, connectTimeout: .seconds(5), operationTimeout: .seconds(5)))
    }

    // MARK: connection level

    @Test func bindSucceedsAndWrongPasswordIsInvalidCredentials() async throws {
        let server = try slapd()
        let connection = try await LDAPConnection.connect(to: server.ldapURL)
        let good = try await connection.simpleBind(dn: SlapdServer.userDN("alice"), password: "alice-pass")
        #expect(good.isSuccess)
        let bad = try await connection.simpleBind(dn: SlapdServer.userDN("alice"), password: "wrong")
        #expect(bad.resultCode == .invalidCredentials)
        #expect(bad.resultCode.rawValue == 49)
        await connection.unbind()
    }

    @Test func searchReturnsEntriesWithAttributes() async throws {
        let server = try slapd()
        let connection = try await LDAPConnection.connect(to: server.ldapURL)
        #expect(try await connection.simpleBind(dn: Self.reader, password: "reader-pass").isSuccess)
        let entries = try await connection.search(base: Self.people, filter: try LDAPFilter(parsing: "(objectClass=inetOrgPerson)"),
                                                  attributes: ["uid", "mail", "memberOf"])
        #expect(Set(entries.map(\.dn)) == Set(["alice", "bob", "carol"].map(SlapdServer.userDN)))
        let alice = try #require(entries.first { $0.stringValues(of: "uid") == ["alice"] })
        #expect(alice.stringValues(of: "mail") == ["alice@bastion.test"])
        #expect(Set(alice.stringValues(of: "memberOf")) == ["cn=operators,\(Self.groups)", "cn=viewers,\(Self.groups)"])
        // Passwords are not readable, even to the service account.
        let withPassword = try await connection.search(base: SlapdServer.userDN("bob"), scope: .baseObject,
                                                       filter: .present(attribute: "objectClass"), attributes: ["userPassword"])
        #expect(withPassword.first?.values(of: "userPassword").isEmpty == true)
        await connection.unbind()
    }

    @Test func searchLimitsAndErrors() async throws {
        let server = try slapd()
        let connection = try await LDAPConnection.connect(to: server.ldapURL)
        #expect(try await connection.simpleBind(dn: Self.reader, password: "reader-pass").isSuccess)
        // Server-side size limit: the result code comes back as an error.
        await #expect {
            try await connection.search(base: Self.people, sizeLimit: 1, filter: .equality("objectClass", "inetOrgPerson"))
        } throws: { error in
            guard case LDAPError.result(let result) = error else { return false }
            return result.resultCode == .sizeLimitExceeded
        }
        // A missing base.
        await #expect {
            try await connection.search(base: "ou=nowhere,dc=bastion,dc=test", filter: .present(attribute: "objectClass"))
        } throws: { error in
            guard case LDAPError.result(let result) = error else { return false }
            return result.resultCode == .noSuchObject && result.matchedDN == "dc=bastion,dc=test"
        }
        // The client-side cap closes the connection.
        await #expect {
            try await connection.search(base: Self.people, filter: .equality("objectClass", "inetOrgPerson"),
                                        limits: LDAPSearchLimits(maximumEntries: 2))
        } throws: { error in
            guard case LDAPError.limitExceeded = error else { return false }
            return true
        }
        await connection.close()
    }

    @Test func startTLSThenBind() async throws {
        let server = try slapd()
        let connection = try await LDAPConnection.connect(to: server.ldapURL)
        try await connection.startTLS(configuration: try tls(server))
        #expect(try await connection.simpleBind(dn: SlapdServer.userDN("carol"), password: "carol-pass").isSuccess)
        await connection.unbind()
    }

    @Test func ldapsThenBind() async throws {
        let server = try slapd()
        let connection = try await LDAPConnection.connect(to: server.ldapsURL, tls: try tls(server))
        #expect(try await connection.simpleBind(dn: SlapdServer.userDN("bob"), password: "bob-pass").isSuccess)
        await connection.unbind()
    }

    @Test func untrustedCertificateIsATLSFailure() async throws {
        let server = try slapd()
        let connection = try await LDAPConnection.connect(to: server.ldapsURL, tls: try tls(server, ca: server.otherCAFile))
        await #expect {
            try await connection.simpleBind(dn: SlapdServer.userDN("bob"), password: "bob-pass")
        } throws: { error in
            guard case LDAPError.tlsFailure = error else { return false }
            return true
        }
    }

    @Test func certificateForAnotherNameIsATLSFailure() async throws {
        // A server whose certificate names only "localhost": reached as 127.0.0.1 it must be refused.
        let server = try slapd()
        let serverTLS = TLSConfiguration.makeServerConfiguration(
            certificateChain: try NIOSSLCertificate.fromPEMFile(server.localhostCertificateFile).map { .certificate($0) },
            privateKey: .privateKey(try NIOSSLPrivateKey(file: server.localhostKeyFile, format: .pem)))
        let fake = try await FakeLDAPServer.start(.scripted { request in
            LDAPMessage(messageID: request.messageID, .bindResponse(LDAPBindResponse(result: LDAPResult(resultCode: .success)))).serializedBytes
        }, tls: try NIOSSLContext(configuration: serverTLS))
        defer { Task { await fake.stop() } }

        let byName = try await LDAPConnection.connect(to: LDAPURL(scheme: .ldaps, host: "localhost", port: fake.port), tls: try tls(server))
        #expect(try await byName.simpleBind(dn: "cn=x", password: "pw").isSuccess)
        await byName.close()

        let byAddress = try await LDAPConnection.connect(to: LDAPURL(scheme: .ldaps, host: "127.0.0.1", port: fake.port), tls: try tls(server))
        await #expect {
            try await byAddress.simpleBind(dn: "cn=x", password: "pw")
        } throws: { error in
            guard case LDAPError.tlsFailure = error else { return false }
            return true
        }
    }

    // MARK: authenticator

    @Test func templateBind() async throws {
        let server = try slapd()
        let outcome = try await authenticator(server).authenticate(username: "alice", password: "alice-pass")
        #expect(outcome == .authenticated(dn: SlapdServer.userDN("alice"), groups: []))
    }

    @Test func wrongPasswordAndUnknownUserAreInvalidCredentials() async throws {
        let server = try slapd()
        let authenticator = try authenticator(server)
        #expect(await authenticator.authenticate(username: "alice", password: "bob-pass") == .invalidCredentials)
        #expect(await authenticator.authenticate(username: "mallory", password: "anything") == .invalidCredentials)
        let searching = try self.authenticator(server, user: .search(base: Self.people, filter: "(uid=%u)"), service: true)
        #expect(await searching.authenticate(username: "mallory", password: "anything") == .invalidCredentials)
        #expect(await searching.authenticate(username: "alice", password: "bob-pass") == .invalidCredentials)
    }

    @Test func emptyPasswordIsRefusedLocally() async throws {
        // slapd would answer an unauthenticated bind (DN, no password) with success.
        let server = try slapd()
        #expect(try await authenticator(server).authenticate(username: "alice", password: "") == .invalidCredentials)
    }

    @Test func searchThenBindWithGroupSearch() async throws {
        let server = try slapd()
        let authenticator = try authenticator(
            server, user: .search(base: "dc=bastion,dc=test", filter: "(&(objectClass=inetOrgPerson)(uid=%u))"), service: true,
            groups: .search(base: Self.groups))
        #expect(await authenticator.authenticate(username: "alice", password: "alice-pass")
            == .authenticated(dn: SlapdServer.userDN("alice"), groups: ["operators", "viewers"]))
        #expect(await authenticator.authenticate(username: "bob", password: "bob-pass")
            == .authenticated(dn: SlapdServer.userDN("bob"), groups: ["viewers"]))
        #expect(await authenticator.authenticate(username: "carol", password: "carol-pass")
            == .authenticated(dn: SlapdServer.userDN("carol"), groups: ["admins"]))
    }

    @Test func groupSearchAsTheUserAndMemberOf() async throws {
        let server = try slapd()
        let asUser = try authenticator(server, groups: .search(base: Self.groups, filter: "(&(objectClass=groupOfNames)(member=%d))"))
        #expect(await asUser.authenticate(username: "alice", password: "alice-pass")
            == .authenticated(dn: SlapdServer.userDN("alice"), groups: ["operators", "viewers"]))
        let memberOf = try authenticator(server, groups: .userAttribute("memberOf"))
        #expect(await memberOf.authenticate(username: "alice", password: "alice-pass")
            == .authenticated(dn: SlapdServer.userDN("alice"), groups: ["operators", "viewers"]))
        let searchedMemberOf = try authenticator(server, user: .search(base: Self.people, filter: "(uid=%u)"), service: true,
                                                 groups: .userAttribute())
        #expect(await searchedMemberOf.authenticate(username: "carol", password: "carol-pass")
            == .authenticated(dn: SlapdServer.userDN("carol"), groups: ["admins"]))
    }

    @Test func anonymousSearchThatSeesNothingIsUnavailable() async throws {
        // The seed lets anonymous clients read nothing: the base does not exist for them.
        let server = try slapd()
        let authenticator = try authenticator(server, user: .search(base: Self.people, filter: "(uid=%u)"))
        guard case .unavailable = await authenticator.authenticate(username: "alice", password: "alice-pass") else {
            Issue.record("expected unavailable"); return
        }
    }

    @Test func wrongServiceAccountPasswordIsUnavailable() async throws {
        let server = try slapd()
        let authenticator = try LDAPDirectoryAuthenticator(configuration: LDAPDirectoryConfiguration(
            url: server.ldapURL, userLookup: .search(base: Self.people, filter: "(uid=%u)"),
            serviceBindDN: Self.reader, serviceBindPassword: "not-the-password"))
        guard case .unavailable = await authenticator.authenticate(username: "alice", password: "alice-pass") else {
            Issue.record("expected unavailable"); return
        }
    }

    @Test(arguments: ["*", "alice)(uid=*", "*)(|(uid=*", "al*", "alice\\", "alice,ou=people", "uid=alice", "alice+cn=x", "#alice", "alice\u{0}"])
    func injectionAttemptsFindNobody(_ username: String) async throws {
        let server = try slapd()
        let searching = try authenticator(server, user: .search(base: Self.people, filter: "(uid=%u)"), service: true)
        #expect(await searching.authenticate(username: username, password: "alice-pass") == .invalidCredentials)
        let template = try authenticator(server)
        #expect(await template.authenticate(username: username, password: "alice-pass") == .invalidCredentials)
    }

    @Test(arguments: ["ALICE", " alice", "alice  ", "Alice"])
    func namesTheDirectoryConsidersEqualReportTheEntrysDN(_ username: String) async throws {
        // uid matching ignores case and surrounding spaces: the outcome names the one entry.
        let server = try slapd()
        let alice = LDAPAuthenticationOutcome.authenticated(dn: SlapdServer.userDN("alice"), groups: ["operators", "viewers"])
        let searching = try authenticator(server, user: .search(base: Self.people, filter: "(uid=%u)"), service: true, groups: .userAttribute())
        #expect(await searching.authenticate(username: username, password: "alice-pass") == alice)
        let template = try authenticator(server, groups: .search(base: Self.groups))
        #expect(await template.authenticate(username: username, password: "alice-pass") == alice)
    }

    @Test func startTLSAndLDAPSLogins() async throws {
        let server = try slapd()
        let startTLS = try authenticator(server, startTLS: true, groups: .userAttribute())
        #expect(await startTLS.authenticate(username: "bob", password: "bob-pass")
            == .authenticated(dn: SlapdServer.userDN("bob"), groups: ["viewers"]))
        let ldaps = try authenticator(server, url: server.ldapsURL, groups: .userAttribute())
        #expect(await ldaps.authenticate(username: "bob", password: "bob-pass")
            == .authenticated(dn: SlapdServer.userDN("bob"), groups: ["viewers"]))
        // A client certificate is accepted by the configuration (slapd does not ask for one).
        let withClientCertificate = try LDAPDirectoryAuthenticator(configuration: LDAPDirectoryConfiguration(
            url: server.ldapsURL,
            tls: .init(caFile: server.caFile, certificateFile: server.clientCertificateFile, keyFile: server.clientKeyFile),
            userLookup: .bindDNTemplate("uid=%u,\(Self.people)")))
        #expect(await withClientCertificate.authenticate(username: "carol", password: "carol-pass")
            == .authenticated(dn: SlapdServer.userDN("carol"), groups: []))
    }

    @Test func untrustedServerMakesLoginsUnavailable() async throws {
        let server = try slapd()
        for authenticator in [try authenticator(server, startTLS: true, ca: server.otherCAFile),
                              try authenticator(server, url: server.ldapsURL, ca: server.otherCAFile)] {
            guard case .unavailable(let why) = await authenticator.authenticate(username: "alice", password: "alice-pass") else {
                Issue.record("expected unavailable"); continue
            }
            #expect(why.contains("TLS"))
        }
    }
}

@Suite("OpenLDAP stopped", .timeLimit(.minutes(2)))
struct SlapdStoppedTests {
    @Test func stoppedServerIsUnavailableQuickly() async throws {
        let server = try await SlapdServer.start()
        let authenticator = try LDAPDirectoryAuthenticator(configuration: LDAPDirectoryConfiguration(
            url: server.ldapURL, userLookup: .bindDNTemplate("uid=%u,ou=people,dc=bastion,dc=test"),
            connectTimeout: .seconds(5), operationTimeout: .seconds(5)))
        let before = await authenticator.authenticate(username: "bob", password: "bob-pass")
        await server.stop()
        #expect(before == .authenticated(dn: SlapdServer.userDN("bob"), groups: []))
        guard case .unavailable(let why) = await authenticator.authenticate(username: "bob", password: "bob-pass") else {
            Issue.record("expected unavailable"); return
        }
        #expect(why.contains("connect"))
    }
}
