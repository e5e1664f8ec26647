@testable import BastionSecurity
import Testing

@Suite struct CanonicalNameTests {
    @Test func decomposedNamesBecomePrecomposed() {
        #expect(Array(CanonicalName.nfc("cafe\u{301}").utf8) == Array("caf\u{e9}".utf8))
        #expect(CanonicalName.nfc("plain-ascii") == "plain-ascii")
    }

    @Test func allowlistPatternsAreCompared() throws {
        let allowlist = try ClientAllowlist(["*": ["caf\u{e9}-*"]], requireClientIDEqualsUsername: false)
        // A pattern written decomposed in the configuration still matches the client's (normalised) id.
        let decomposedPattern = try ClientAllowlist(["*": ["cafe\u{301}-*"]], requireClientIDEqualsUsername: false)
        let identity = Identity(username: nil, clientID: CanonicalName.nfc("cafe\u{301}-1"))
        #expect(allowlist.decide(identity, rolesOfUser: []).allowed)
        #expect(decomposedPattern.decide(identity, rolesOfUser: []).allowed)
    }
}
