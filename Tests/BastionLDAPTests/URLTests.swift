import BastionLDAP
import Testing

@Suite("LDAP URLs")
struct URLTests {
    @Test(arguments: [
        ("ldap://dir.example.org", LDAPURL.Scheme.ldap, "dir.example.org", 389),
        ("ldaps://dir.example.org", .ldaps, "dir.example.org", 636),
        ("ldap://dir.example.org:1389", .ldap, "dir.example.org", 1389),
        ("LDAPS://DIR.example.org:10636/", .ldaps, "DIR.example.org", 10636),
        ("ldap://127.0.0.1", .ldap, "127.0.0.1", 389),
        ("ldap://[::1]", .ldap, "::1", 389),
        ("ldaps://[2001:db8::7]:6360", .ldaps, "2001:db8::7", 6360),
    ] as [(String, LDAPURL.Scheme, String, Int)])
    func parses(_ text: String, scheme: LDAPURL.Scheme, host: String, port: Int) throws {
        let url = try LDAPURL(parsing: text)
        #expect(url.scheme == scheme)
        #expect(url.host == host)
        #expect(url.port == port)
        #expect(try LDAPURL(parsing: url.description) == url)
    }

    @Test(arguments: [
        "", "dir.example.org", "http://dir.example.org", "ldapi:///var/run/slapd", "ldap://", "ldap://:389",
        "ldap://host:0", "ldap://host:65536", "ldap://host:-1", "ldap://host:+1", "ldap://host:12ab", "ldap://host:",
        "ldap://host/dc=example,dc=org", "ldap://host?cn", "ldap://user@host", "ldap://[::1", "ldap://[not-v6]",
        "ldap://[127.0.0.1]", "ldap://::1", "ldap://ho st", "ldap://host%00", "ldap://[::1]x",
    ])
    func refuses(_ text: String) {
        #expect(throws: LDAPError.self) { try LDAPURL(parsing: text) }
    }

    @Test func loopback() throws {
        for text in ["ldap://127.0.0.1", "ldap://127.1.2.3", "ldap://[::1]", "ldap://localhost", "ldap://LOCALHOST"] {
            #expect(try LDAPURL(parsing: text).isLoopback, "\(text)")
        }
        for text in ["ldap://10.0.0.1", "ldap://128.0.0.1", "ldap://[::2]", "ldap://localhost.example.org", "ldap://127.example.org"] {
            #expect(try !LDAPURL(parsing: text).isLoopback, "\(text)")
        }
    }
}
