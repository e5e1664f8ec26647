@testable import BastionLDAP
import SwiftASN1
import Testing

/// Strings an attacker might offer as a user name.
let hostileValues = [
    "*", "(", ")", "\\", "\0", ",", "+", "=", "#alice", " alice", "alice ", "  ", "a\0b",
    "alice)(uid=*", "*)(|(uid=*", "admin*", "\\2a", "alice,ou=admins", "cn=admin+uid=x", "\"quoted\"", "<x>;y",
    "ünïcødé", "日本語", "emoji 🛡️", "line\nbreak", "tab\there", "\u{7F}", "%u", "%d",
]

@Suite("Filters")
struct FilterTests {
    @Test(arguments: [
        ("(uid=alice)", LDAPFilter.equality("uid", "alice")),
        ("(&(objectClass=person)(uid=alice))", .and([.equality("objectClass", "person"), .equality("uid", "alice")])),
        ("(|(a=1)(b=2)(c=3))", .or([.equality("a", "1"), .equality("b", "2"), .equality("c", "3")])),
        ("(!(cn=x))", .not(.equality("cn", "x"))),
        ("(cn=*)", .present(attribute: "cn")),
        ("(cn=)", .equalityMatch(attribute: "cn", value: [])),
        ("(cn=a*)", .substrings(attribute: "cn", initial: Array("a".utf8), any: [], final: nil)),
        ("(cn=*a)", .substrings(attribute: "cn", initial: nil, any: [], final: Array("a".utf8))),
        ("(cn=*a*b*)", .substrings(attribute: "cn", initial: nil, any: [Array("a".utf8), Array("b".utf8)], final: nil)),
        ("(cn=a*b*c)", .substrings(attribute: "cn", initial: Array("a".utf8), any: [Array("b".utf8)], final: Array("c".utf8))),
        ("(age>=18)", .greaterOrEqual(attribute: "age", value: Array("18".utf8))),
        ("(age<=65)", .lessOrEqual(attribute: "age", value: Array("65".utf8))),
        ("(sn~=smith)", .approxMatch(attribute: "sn", value: Array("smith".utf8))),
        ("(cn=\\2a\\28\\29\\5c\\00)", .equalityMatch(attribute: "cn", value: [0x2A, 0x28, 0x29, 0x5C, 0x00])),
        ("(cn=\\C3\\A9)", .equality("cn", "é")),
        ("(cn=é)", .equality("cn", "é")),
        ("(2.5.4.3=x)", .equality("2.5.4.3", "x")),
        ("(cn;lang-de=x)", .equality("cn;lang-de", "x")),
        ("(member=uid=a\\5c,b,ou=people)", .equality("member", "uid=a\\,b,ou=people")),
        // RFC 4515 §4 examples
        ("(o=Parens R Us \\28for all your parenthetical needs\\29)", .equality("o", "Parens R Us (for all your parenthetical needs)")),
        ("(cn=*\\2A*)", .substrings(attribute: "cn", initial: nil, any: [[0x2A]], final: nil)),
        ("(filename=C:\\5cMyFile)", .equality("filename", "C:\\MyFile")),
        ("(bin=\\00\\00\\00\\04)", .equalityMatch(attribute: "bin", value: [0, 0, 0, 4])),
        ("(sn=Lu\\c4\\8di\\c4\\87)", .equality("sn", "Lučić")),
    ] as [(String, LDAPFilter)])
    func parses(_ text: String, expected: LDAPFilter) throws {
        let filter = try LDAPFilter(parsing: text)
        #expect(filter == expected)
        // The string form parses back to the same filter.
        #expect(try LDAPFilter(parsing: filter.description) == filter)
    }

    @Test(arguments: [
        "", "uid=alice", "(uid=alice", "uid=alice)", "(uid=alice))", "((uid=alice))", "(&)", "(|)", "(!)",
        "(!(a=1)(b=2))", "(=x)", "(uid)", "(uid~x)", "(uid>x)", "(cn=a(b)", "(cn=a\\zz)", "(cn=a\\2)", "(cn=\\)",
        "(cn=**)", "(cn=a**b)", "(cn~=a*)", "(cn>=*)", "(cn:dn:=x)", "(:caseExactMatch:=x)", "(1cn=x)", "(-cn=x)",
        "(c n=x)", "(cn;=x)", "(01.2=x)", "(1..2=x)", "(cn=a\0b)", "(&(a=1)x)", " (a=1)", "(a=1) ",
    ])
    func refuses(_ text: String) {
        #expect(throws: LDAPFilterSyntaxError.self) { try LDAPFilter(parsing: text) }
    }

    @Test func refusesNestingBeyondTheLimit() throws {
        let within = String(repeating: "(!", count: LDAPFilter.maximumNesting - 1) + "(a=1)" + String(repeating: ")", count: LDAPFilter.maximumNesting - 1)
        _ = try LDAPFilter(parsing: within)
        let deep = String(repeating: "(!", count: 100_000) + "(a=1)" + String(repeating: ")", count: 100_000)
        #expect(throws: LDAPFilterSyntaxError.self) { try LDAPFilter(parsing: deep) }
        let deepAnd = String(repeating: "(&", count: 1_000) + "(a=1)" + String(repeating: ")", count: 1_000)
        #expect(throws: LDAPFilterSyntaxError.self) { try LDAPFilter(parsing: deepAnd) }
    }

    @Test func refusesOverlongStrings() {
        let long = "(cn=" + String(repeating: "a", count: LDAPFilter.maximumLength) + ")"
        #expect(throws: LDAPFilterSyntaxError.self) { try LDAPFilter(parsing: long) }
    }

    @Test func escapeVectors() {
        #expect(LDAPFilter.escape("*") == "\\2a")
        #expect(LDAPFilter.escape("(") == "\\28")
        #expect(LDAPFilter.escape(")") == "\\29")
        #expect(LDAPFilter.escape("\\") == "\\5c")
        #expect(LDAPFilter.escape("\0") == "\\00")
        #expect(LDAPFilter.escape("alice)(uid=*") == "alice\\29\\28uid=\\2a")
        #expect(LDAPFilter.escape("ünï") == "ünï")
        #expect(LDAPFilter.escape("plain.name-1") == "plain.name-1")
        #expect(LDAPFilter.escape(bytes: [0xC3, 0x28]) == "\\c3\\28")
    }

    @Test(arguments: hostileValues)
    func escapedValuesStayOneLiteralValue(_ value: String) throws {
        // Substituted into a template, an escaped value is exactly one equality assertion of its own bytes.
        let filter = try LDAPFilter(parsing: "(&(objectClass=person)(uid=\(LDAPFilter.escape(value))))")
        #expect(filter == .and([.equality("objectClass", "person"), .equality("uid", value)]))
    }

    @Test func encodesPerRFC4511() {
        func bytes(_ filter: LDAPFilter) -> [UInt8] {
            var coder = DER.Serializer()
            filter.serialize(into: &coder)
            return coder.serializedBytes
        }
        #expect(bytes(.equality("uid", "a")) == tlv(0xA3, octets("uid"), octets("a")))
        #expect(bytes(.present(attribute: "cn")) == tlv(0x87, Array("cn".utf8)))
        #expect(bytes(.not(.present(attribute: "cn"))) == tlv(0xA2, tlv(0x87, Array("cn".utf8))))
        #expect(bytes(.and([.present(attribute: "a"), .present(attribute: "b")])) == tlv(0xA0, tlv(0x87, [0x61]), tlv(0x87, [0x62])))
        #expect(bytes(.or([.present(attribute: "a")])) == tlv(0xA1, tlv(0x87, [0x61])))
        #expect(bytes(.substrings(attribute: "cn", initial: [0x61], any: [[0x62]], final: [0x63]))
            == tlv(0xA4, octets("cn"), tlv(0x30, tlv(0x80, [0x61]), tlv(0x81, [0x62]), tlv(0x82, [0x63]))))
        #expect(bytes(.greaterOrEqual(attribute: "n", value: [0x31])) == tlv(0xA5, octets("n"), octets("1")))
        #expect(bytes(.lessOrEqual(attribute: "n", value: [0x31])) == tlv(0xA6, octets("n"), octets("1")))
        #expect(bytes(.approxMatch(attribute: "n", value: [0x31])) == tlv(0xA8, octets("n"), octets("1")))
    }
}

@Suite("Distinguished names")
struct DistinguishedNameTests {
    @Test func escapeVectors() {
        #expect(LDAPDistinguishedName.escapeValue("alice") == "alice")
        #expect(LDAPDistinguishedName.escapeValue("a,b") == "a\\,b")
        #expect(LDAPDistinguishedName.escapeValue("a+b=c") == "a\\+b\\=c")
        #expect(LDAPDistinguishedName.escapeValue("\"<>;\\") == "\\\"\\<\\>\\;\\\\")
        #expect(LDAPDistinguishedName.escapeValue("#x#") == "\\#x#")
        #expect(LDAPDistinguishedName.escapeValue(" a b ") == "\\ a b\\ ")
        #expect(LDAPDistinguishedName.escapeValue(" ") == "\\ ")
        #expect(LDAPDistinguishedName.escapeValue("a\0b") == "a\\00b")
        #expect(LDAPDistinguishedName.escapeValue("a\nb") == "a\\0ab")
        #expect(LDAPDistinguishedName.escapeValue("Lučić") == "Lučić")
        #expect(LDAPDistinguishedName.escapeValue("*()") == "*()")
    }

    @Test(arguments: hostileValues)
    func escapedValuesStayOneRDNValue(_ value: String) throws {
        let dn = "uid=\(LDAPDistinguishedName.escapeValue(value)),ou=people,dc=bastion,dc=test"
        let rdn = try #require(LDAPDistinguishedName.firstRDN(of: dn))
        #expect(rdn.attribute == "uid")
        #expect(rdn.value == value)
        // Nothing the value holds ends the RDN early or starts another attribute of it.
        #expect(dn.hasSuffix(",ou=people,dc=bastion,dc=test"))
    }

    @Test func firstRDN() {
        #expect(LDAPDistinguishedName.firstRDN(of: "cn=operators,ou=groups,dc=bastion,dc=test")! == ("cn", "operators"))
        #expect(LDAPDistinguishedName.firstRDN(of: "CN=Domain Admins,CN=Users,DC=corp")! == ("CN", "Domain Admins"))
        #expect(LDAPDistinguishedName.firstRDN(of: "cn=a\\,b,dc=x")! == ("cn", "a,b"))
        #expect(LDAPDistinguishedName.firstRDN(of: "cn=Lu\\C4\\8Di\\C4\\87")! == ("cn", "Lučić"))
        #expect(LDAPDistinguishedName.firstRDN(of: "cn=single")! == ("cn", "single"))
        #expect(LDAPDistinguishedName.firstRDN(of: "") == nil)
        #expect(LDAPDistinguishedName.firstRDN(of: "cn=a+uid=b,dc=x") == nil)
        #expect(LDAPDistinguishedName.firstRDN(of: "cn=#04024869,dc=x") == nil)
        #expect(LDAPDistinguishedName.firstRDN(of: "cn=\\C3\\28") == nil)
        #expect(LDAPDistinguishedName.firstRDN(of: "cn=trailing\\") == nil)
    }
}
