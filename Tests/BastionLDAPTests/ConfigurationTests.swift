import BastionLDAP
import Foundation
import Testing

@Suite("Directory configuration")
struct ConfigurationTests {
    private func config(
        _ url: String = "ldaps://dir.example.org",
        startTLS: Bool = false,
        user: LDAPDirectoryConfiguration.UserLookup = .bindDNTemplate("uid=%u,ou=people,dc=example,dc=org"),
        bindDN: String? = nil, bindPassword: String? = nil,
        groups: LDAPDirectoryConfiguration.GroupLookup = .none,
        tls: LDAPDirectoryConfiguration.TLS = .init()
    ) throws -> LDAPDirectoryConfiguration {
        LDAPDirectoryConfiguration(url: try LDAPURL(parsing: url), tls: tls, startTLS: startTLS, userLookup: user,
                                   serviceBindDN: bindDN, serviceBindPassword: bindPassword, groupLookup: groups)
    }

    private func refusal(_ configuration: LDAPDirectoryConfiguration) -> LDAPConfigurationError? {
        do {
            try configuration.validate()
            return nil
        } catch {
            return error
        }
    }

    @Test func acceptsTLSConfigurations() throws {
        try config().validate()
        try config("ldap://dir.example.org", startTLS: true).validate()
        try config("ldap://127.0.0.1:3890").validate()
        try config("ldap://[::1]").validate()
        try config(user: .search(base: "ou=people,dc=example,dc=org", filter: "(&(objectClass=person)(uid=%u))"),
                   bindDN: "cn=reader,dc=example,dc=org", bindPassword: "secret",
                   groups: .search(base: "ou=groups,dc=example,dc=org")).validate()
        try config(groups: .userAttribute()).validate()
        try config(user: .bindDNTemplate("uid=%u,ou=100%%,dc=x")).validate()
    }

    @Test func refusesCleartextPasswordsToRemoteHosts() throws {
        let error = try #require(refusal(try config("ldap://dir.example.org")))
        #expect(error.key == "url")
        #expect(error.message.contains("clear text"))
        #expect(refusal(try config("ldap://10.1.2.3:389"))?.key == "url")
    }

    @Test func refusesStartTLSOnLDAPS() throws {
        #expect(refusal(try config("ldaps://dir.example.org", startTLS: true))?.key == "start_tls")
    }

    @Test(arguments: [
        ("bind_dn_template", LDAPDirectoryConfiguration.UserLookup.bindDNTemplate("uid=alice,ou=people")),
        ("bind_dn_template", .bindDNTemplate("uid=%x,ou=people")),
        ("bind_dn_template", .bindDNTemplate("uid=%u,ou=people%")),
        ("search_filter", .search(base: "dc=x", filter: "(uid=alice)")),
        ("search_filter", .search(base: "dc=x", filter: "(uid=%u")),
        ("search_filter", .search(base: "dc=x", filter: "(uid=%d)")),
        ("search_base", .search(base: "", filter: "(uid=%u)")),
    ] as [(String, LDAPDirectoryConfiguration.UserLookup)])
    func refusesBadUserLookups(_ key: String, lookup: LDAPDirectoryConfiguration.UserLookup) throws {
        #expect(refusal(try config(user: lookup))?.key == key)
    }

    @Test func refusesBadGroupLookups() throws {
        #expect(refusal(try config(groups: .search(base: "dc=x", filter: "(member=cn=fixed)")))?.key == "group_filter")
        #expect(refusal(try config(groups: .search(base: "dc=x", filter: "(member=%d")))?.key == "group_filter")
        #expect(refusal(try config(groups: .search(base: "", filter: "(member=%d)")))?.key == "group_base")
        #expect(refusal(try config(groups: .search(base: "dc=x", attribute: "c n")))?.key == "group_attribute")
        #expect(refusal(try config(groups: .userAttribute("member)(x")))?.key == "member_of_attribute")
    }

    @Test func refusesHalfAServiceAccount() throws {
        #expect(refusal(try config(bindDN: "cn=reader"))?.key == "bind_password")
        #expect(refusal(try config(bindPassword: "secret"))?.key == "bind_dn")
        #expect(refusal(try config(bindDN: "cn=reader", bindPassword: ""))?.key == "bind_password")
        #expect(refusal(try config(bindDN: "", bindPassword: "secret"))?.key == "bind_dn")
    }

    @Test func refusesUnreadableTLSFiles() throws {
        let missing = "/nonexistent/\(UUID().uuidString).pem"
        #expect(refusal(try config(tls: .init(caFile: missing)))?.key == "tls.ca")
        #expect(refusal(try config(tls: .init(certificateFile: missing, keyFile: missing)))?.key == "tls.cert")
        #expect(refusal(try config(tls: .init(keyFile: missing)))?.key == "tls.cert")
        #expect(refusal(try config(tls: .init(certificateFile: missing)))?.key == "tls.key")
        // TLS files on a connection that never uses TLS are a mistake worth reporting.
        #expect(refusal(try config("ldap://127.0.0.1", tls: .init(caFile: missing)))?.key == "tls")
        let notPEM = FileManager.default.temporaryDirectory.appendingPathComponent("\(UUID().uuidString).pem")
        try Data("not a certificate".utf8).write(to: notPEM)
        defer { try? FileManager.default.removeItem(at: notPEM) }
        #expect(refusal(try config(tls: .init(caFile: notPEM.path)))?.key == "tls.ca")
    }

    @Test func descriptionHidesTheServicePassword() throws {
        let configuration = try config(bindDN: "cn=reader", bindPassword: "s3cret-value")
        #expect(!configuration.description.contains("s3cret-value"))
        #expect(configuration.description.contains("cn=reader"))
    }

    @Test func authenticatorRefusesAnInvalidConfiguration() throws {
        #expect(throws: LDAPConfigurationError.self) { try LDAPDirectoryAuthenticator(configuration: try config("ldap://dir.example.org")) }
    }
}
