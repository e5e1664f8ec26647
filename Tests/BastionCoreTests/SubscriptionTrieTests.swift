import BastionCore
import MQTTCodec
import Testing

@Suite struct SubscriptionTrieTests {
    private func matches(_ trie: SubscriptionTrie<Subscriber>, _ topic: String) -> [String] {
        var out: [String] = []
        trie.forEachMatch(topic, pickShared: { _, start in start }) { out.append("\($0.subscriber.name):\($0.subscription.filter)") }
        return out.sorted()
    }

    @Test func literalPlusAndHashMatching() {
        let trie = SubscriptionTrie<Subscriber>()
        let a = Subscriber("a")
        trie.insert(a, subscription("plant/line1/temp"))
        trie.insert(a, subscription("plant/+/temp"))
        trie.insert(a, subscription("plant/#"))
        trie.insert(a, subscription("#"))
        trie.insert(a, subscription("other/+"))
        #expect(matches(trie, "plant/line1/temp") == ["a:#", "a:plant/#", "a:plant/+/temp", "a:plant/line1/temp"])
        #expect(matches(trie, "plant/line2/temp") == ["a:#", "a:plant/#", "a:plant/+/temp"])
        #expect(matches(trie, "plant/line1/pressure") == ["a:#", "a:plant/#"])
        #expect(matches(trie, "other/x") == ["a:#", "a:other/+"])
        #expect(matches(trie, "other/x/y") == ["a:#"])
    }

    @Test func hashMatchesTheParentLevel() {
        let trie = SubscriptionTrie<Subscriber>()
        trie.insert(Subscriber("a"), subscription("sport/tennis/#"))
        #expect(matches(trie, "sport/tennis") == ["a:sport/tennis/#"])
        #expect(matches(trie, "sport/tennis/player1/ranking") == ["a:sport/tennis/#"])
        #expect(matches(trie, "sport") == [])
    }

    @Test func plusMatchesEmptyLevels() {
        let trie = SubscriptionTrie<Subscriber>()
        trie.insert(Subscriber("a"), subscription("+/+"))
        trie.insert(Subscriber("b"), subscription("/+"))
        #expect(matches(trie, "/finance") == ["a:+/+", "b:/+"])
        #expect(matches(trie, "a/") == ["a:+/+"])
    }

    @Test func dollarTopicsAreNotMatchedByLeadingWildcards() {
        let trie = SubscriptionTrie<Subscriber>()
        let s = Subscriber("s")
        trie.insert(s, subscription("#"))
        trie.insert(s, subscription("+/monitor/Clients"))
        trie.insert(s, subscription("$SYS/#"))
        trie.insert(s, subscription("$SYS/monitor/+"))
        #expect(matches(trie, "$SYS/monitor/Clients") == ["s:$SYS/#", "s:$SYS/monitor/+"])
        #expect(matches(trie, "x/monitor/Clients") == ["s:#", "s:+/monitor/Clients"])
    }

    @Test func insertReplacesAndRemovePrunes() {
        let trie = SubscriptionTrie<Subscriber>()
        let a = Subscriber("a")
        trie.insert(a, subscription("a/b", qos: .atMostOnce))
        trie.insert(a, subscription("a/b", qos: .exactlyOnce))
        #expect(trie.count == 1)
        var qos: QoS?
        trie.forEachMatch("a/b", pickShared: { _, s in s }) { qos = $0.subscription.options.qos }
        #expect(qos == .exactlyOnce)
        #expect(trie.remove(a, filter: "a/b"))
        #expect(!trie.remove(a, filter: "a/b"))
        #expect(trie.count == 0)
        #expect(matches(trie, "a/b") == [])
    }

    @Test func sharedGroupsPickOneMemberRoundRobin() {
        let trie = SubscriptionTrie<Subscriber>()
        let members = (0..<3).map { Subscriber("m\($0)") }
        for m in members { trie.insert(m, subscription("$share/g/data/#")) }
        trie.insert(Subscriber("plain"), subscription("data/#"))
        var picked: [String] = []
        for _ in 0..<6 {
            var got: [String] = []
            trie.forEachMatch("data/1", pickShared: { _, start in start }) { got.append($0.subscriber.name) }
            #expect(got.contains("plain"))
            #expect(got.count == 2)
            picked.append(got.first { $0 != "plain" }!)
        }
        #expect(picked == ["m0", "m1", "m2", "m0", "m1", "m2"])
        #expect(trie.sharedMembers(group: "g", filter: "data/#").count == 3)
        #expect(trie.remove(members[1], filter: "$share/g/data/#"))
        #expect(trie.sharedMembers(group: "g", filter: "data/#").map(\.subscriber.name) == ["m0", "m2"])
    }

    @Test func pickerMaySkipAGroup() {
        let trie = SubscriptionTrie<Subscriber>()
        trie.insert(Subscriber("m"), subscription("$share/g/t"))
        var count = 0
        trie.forEachMatch("t", pickShared: { _, _ in nil }) { _ in count += 1 }
        #expect(count == 0)
    }

    @Test func manyDistinctSubscriptionsMatchExactly() {
        let trie = SubscriptionTrie<Subscriber>()
        let s = Subscriber("s")
        for i in 0..<100_000 { trie.insert(s, subscription("devices/\(i)/temp")) }
        #expect(matches(trie, "devices/4242/temp") == ["s:devices/4242/temp"])
        #expect(trie.count == 100_000)
    }
}
