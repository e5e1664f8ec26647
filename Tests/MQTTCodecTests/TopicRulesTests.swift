import MQTTCodec
import Testing

// Topic names, topic filters and matching (spec 5.0 4.7, 3.1.1 4.7) and shared subscriptions (5.0 4.8.2).

@Suite("Topic rules")
struct TopicRulesTests {
    // MARK: Names

    @Test(arguments: ["a", "/", "a/b", "a//b", "/a/", " ", "$SYS/broker/load", "sport/tennis/player1", "€/𝄞", "$share/g/t"])
    func validNames(topic: String) throws {
        try TopicRules.validateName(topic, limits: nil)
        try TopicRules.validateName(topic, limits: DecoderLimits())
    }

    @Test(arguments: ["+", "#", "a/+", "a/#", "+/a", "a+", "a#b", "sport/tennis/#"])
    func wildcardsAreNotAllowedInNames(topic: String) {
        #expect(throws: MQTTDecodeError.self) { try TopicRules.validateName(topic, limits: nil) }
        do {
            try TopicRules.validateName(topic, limits: nil)
        } catch {
            #expect(error.reasonCode == .topicNameInvalid)
        }
    }

    @Test func emptyNameIsInvalid() {
        #expect(throws: MQTTDecodeError.self) { try TopicRules.validateName("", limits: nil) }
    }

    @Test func nameLimits() throws {
        let limits = DecoderLimits(maximumTopicLength: 5, maximumTopicLevels: 3)
        try TopicRules.validateName("abcde", limits: limits)
        try TopicRules.validateName("a/b/c", limits: limits)
        #expect(throws: MQTTDecodeError.self) { try TopicRules.validateName("abcdef", limits: limits) }
        #expect(throws: MQTTDecodeError.self) { try TopicRules.validateName("a/b/c/", limits: limits) }
        // Length is counted in UTF-8 bytes, as on the wire.
        #expect(throws: MQTTDecodeError.self) { try TopicRules.validateName("€€", limits: limits) }
    }

    // MARK: Filters

    @Test(arguments: ["#", "+", "a", "/", "a/#", "a/+", "+/+", "/+", "+/", "a/+/b", "+/tennis/#", "sport/+/player1",
                      "$SYS/#", "$share/g/a/#", "$share/group/+", "$share/g/#", "a//b", "$share", "$sharex/g/a", "$shar/g"])
    func validFilters(filter: String) throws {
        try TopicRules.validateFilter(filter, limits: nil)
    }

    @Test func invalidFilters() {
        let cases: [(String, TopicRules.FilterError)] = [
            ("", .empty),
            ("a/b#", .misplacedWildcard),
            ("a/#/b", .misplacedWildcard),
            ("a+", .misplacedWildcard),
            ("+a", .misplacedWildcard),
            ("a/+b/c", .misplacedWildcard),
            ("sport/tennis#", .misplacedWildcard),
            ("#/", .misplacedWildcard),
            ("##", .misplacedWildcard),
            ("$share/", .invalidShareName),
            ("$share//a", .invalidShareName),
            ("$share/g", .invalidShareName),
            ("$share/g/", .invalidShareName),
            ("$share/g+/a", .invalidShareName),
            ("$share/g#/a", .invalidShareName),
            ("$share/g/a#", .misplacedWildcard),
        ]
        for (filter, expected) in cases {
            #expect(throws: expected, "\(filter)") { try TopicRules.validateFilter(filter, limits: nil) }
        }
    }

    @Test func filterLimits() throws {
        let limits = DecoderLimits(maximumTopicLength: 5, maximumTopicLevels: 3)
        try TopicRules.validateFilter("a/+/#", limits: limits)
        #expect(throws: TopicRules.FilterError.tooLong(5)) { try TopicRules.validateFilter("a/b/cd", limits: limits) }
        #expect(throws: TopicRules.FilterError.tooDeep(3)) {
            try TopicRules.validateFilter("a/b/c/", limits: DecoderLimits(maximumTopicLength: 10, maximumTopicLevels: 3))
        }
        // The levels of a shared subscription are those of its filter.
        try TopicRules.validateFilter("$share/g/a/b/c", limits: DecoderLimits(maximumTopicLevels: 3))
    }

    @Test func hasWildcard() {
        #expect(TopicRules.hasWildcard("a/+"))
        #expect(TopicRules.hasWildcard("#"))
        #expect(!TopicRules.hasWildcard("a/b"))
    }

    // MARK: Matching

    /// Spec 4.7.1's examples plus the `$` rule of 4.7.2.
    static let matching: [(filter: String, topic: String, matches: Bool)] = [
        ("sport/tennis/player1/#", "sport/tennis/player1", true),
        ("sport/tennis/player1/#", "sport/tennis/player1/ranking", true),
        ("sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", true),
        ("sport/#", "sport", true),
        ("#", "sport/tennis", true),
        ("#", "/", true),
        ("sport/tennis/+", "sport/tennis/player1", true),
        ("sport/tennis/+", "sport/tennis/player2", true),
        ("sport/tennis/+", "sport/tennis/player1/ranking", false),
        ("sport/+", "sport", false),
        ("sport/+", "sport/", true),
        ("+/+", "/finance", true),
        ("/+", "/finance", true),
        ("+", "/finance", false),
        ("+", "finance", true),
        ("+/+/+", "a//c", true),
        ("a/+/c", "a//c", true),
        ("+/", "a/", true),
        ("+/", "a", false),
        ("a/+/#", "a/b", true),
        ("a/+/#", "a", false),
        ("a/b", "a/b", true),
        ("a/b", "a/b/", false),
        ("a/b", "a/bc", false),
        ("a/b/", "a/b", false),
        ("A/b", "a/b", false),
        // Topics starting with '$' are not matched by a leading wildcard.
        ("#", "$SYS/broker", false),
        ("#", "$SYS", false),
        ("+/monitor/Clients", "$SYS/monitor/Clients", false),
        ("+", "$x", false),
        ("$SYS/#", "$SYS/monitor/Clients", true),
        ("$SYS/#", "$SYS", true),
        ("$SYS/monitor/+", "$SYS/monitor/Clients", true),
        ("a/#", "a/$b", true),
        ("+/$b", "a/$b", true),
    ]

    @Test func matches() {
        for (filter, topic, expected) in Self.matching {
            #expect(TopicRules.matches(filter: filter, topic: topic) == expected, "\(filter) vs \(topic)")
        }
    }

    // MARK: Shared subscriptions

    @Test func sharedFilterParsing() {
        let shared = SharedFilter("$share/consumers/sensors/+/temp")
        #expect(shared?.group == "consumers")
        #expect(shared?.filter == "sensors/+/temp")
        #expect(SharedFilter("$share/g/#")?.filter == "#")
        // The filter keeps further slashes, including empty levels.
        #expect(SharedFilter("$share/g//a/")?.filter == "/a/")
        for raw in ["a/b", "$share", "$share/", "$share/g", "$share/g/", "$share//a", "$share/g+/a", "$share/g#/a", "$SHARE/g/a", "share/g/a"] {
            #expect(SharedFilter(raw) == nil, "\(raw)")
        }
    }

    @Test func sharedFilterWorksOnCodePointsNotGraphemes() {
        // A combining mark after '/' or '+' forms one Swift Character with it, but MQTT's rules are
        // about the characters (code points) themselves.
        let combining = "\u{0301}"
        let shared = SharedFilter("$share/g/" + combining + "x")
        #expect(shared?.group == "g")
        #expect(shared?.filter == combining + "x")
        #expect(SharedFilter("$share/a+" + combining + "/t") == nil, "'+' in the share name")
        #expect(throws: TopicRules.FilterError.invalidShareName) {
            try TopicRules.validateFilter("$share/a+" + combining + "/t", limits: nil)
        }
        #expect(throws: TopicRules.FilterError.invalidShareName) {
            try TopicRules.validateFilter("$share/" + combining + "a+/t", limits: nil)
        }
    }
}
