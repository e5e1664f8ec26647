import BastionCore
@testable import BastionIdentity
import Testing
import BastionTesting

@Suite struct DecisionCacheTests {
    let allow = DecisionCache.Outcome.allowed(BackendGrant(username: "alice"), by: "b")

    @Test func remembersExactRequestsForTheTTL() {
        let clock = ManualClock()
        let cache = DecisionCache(ttl: .seconds(30), clock: { clock.now })
        cache.insert(allow, for: request(), wallNow: 0)
        #expect(cache.lookup(request()) == allow)
        #expect(cache.lookup(request("alice", "other")) == nil)
        #expect(cache.lookup(request("alice", "secret", clientID: "dev-2")) == nil)
        #expect(cache.lookup(request("alicesecret", nil)) == nil)
        var elsewhere = request()
        elsewhere.remoteHost = "10.0.0.9"
        #expect(cache.lookup(elsewhere) == nil)
        clock.advance(.seconds(31))
        #expect(cache.lookup(request()) == nil)
        #expect(cache.count == 0)
    }

    @Test func aTokenExpiryShortensTheLifetime() {
        let clock = ManualClock()
        let cache = DecisionCache(ttl: .seconds(30), clock: { clock.now })
        cache.insert(allow, for: request(), expiresAt: 1005, wallNow: 1000)
        clock.advance(.seconds(4))
        #expect(cache.lookup(request()) != nil)
        clock.advance(.seconds(2))
        #expect(cache.lookup(request()) == nil)
        cache.insert(allow, for: request(), expiresAt: 900, wallNow: 1000)
        #expect(cache.lookup(request()) == nil)
    }

    @Test func staysWithinItsBounds() {
        let cache = DecisionCache(ttl: .seconds(30), maximumEntries: 10)
        for i in 0..<100 { cache.insert(allow, for: request("u\(i)"), wallNow: 0) }
        #expect(cache.count <= 10)
        #expect(cache.lookup(request("u99")) != nil)
        #expect(cache.lookup(request("u0")) == nil)

        let rules = (0..<100).map { BackendACLRule(access: .read, filter: "plant/line\($0)/#") }
        let heavy = DecisionCache.Outcome.allowed(BackendGrant(username: "x", rules: rules), by: "b")
        let small = DecisionCache(ttl: .seconds(30), maximumEntries: 1000, maximumWeight: 20_000)
        for i in 0..<50 { small.insert(heavy, for: request("u\(i)"), wallNow: 0) }
        #expect(small.count < 10)
    }

    @Test func replacingAnEntryKeepsOneCopy() {
        let cache = DecisionCache(ttl: .seconds(30), maximumEntries: 5)
        for _ in 0..<100 { cache.insert(allow, for: request(), wallNow: 0) }
        #expect(cache.count == 1)
        cache.removeAll()
        #expect(cache.lookup(request()) == nil)
    }
}
