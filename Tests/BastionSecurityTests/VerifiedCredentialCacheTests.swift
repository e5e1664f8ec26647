import BastionSecurity
import Testing

@Suite struct VerifiedCredentialCacheTests {
    @Test func remembersExactCredentialsForItsLifetime() {
        let clock = ManualLimitClock()
        let cache = VerifiedCredentialCache(lifetime: .seconds(300), clock: clock)
        cache.insert(username: "alice", password: Array("secret".utf8))
        #expect(cache.contains(username: "alice", password: Array("secret".utf8)))
        #expect(!cache.contains(username: "alice", password: Array("secret2".utf8)))
        #expect(!cache.contains(username: "alicesecret", password: []))
        #expect(!cache.contains(username: "bob", password: Array("secret".utf8)))
        clock.advance(by: .seconds(301))
        #expect(!cache.contains(username: "alice", password: Array("secret".utf8)))
    }

    @Test func staysWithinItsBound() {
        let cache = VerifiedCredentialCache(maximumEntries: 10)
        for i in 0..<100 { cache.insert(username: "u\(i)", password: [1]) }
        #expect(cache.contains(username: "u99", password: [1]))
        #expect((0..<100).filter { cache.contains(username: "u\($0)", password: [1]) }.count <= 10)
    }
}
