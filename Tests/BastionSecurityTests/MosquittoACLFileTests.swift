import Testing
@testable import BastionSecurity
import BastionTesting

@Suite("Mosquitto ACL file format")
struct MosquittoACLFileTests {
    @Test("topic lines before any user line are for anonymous clients only")
    func anonymousSection() throws {
        let policy = try makePolicy("""
        topic read public/#
        user bob
        topic readwrite plant/#
        """)
        #expect(policy.allows(anonymousClient, .subscribe, "public/news"))
        #expect(policy.allows(anonymousClient, .read, "public/news"))
        #expect(!policy.allows(anonymousClient, .publish, "public/news"))
        #expect(!policy.allows(anonymousClient, .read, "plant/a"))
        #expect(!policy.allows(user("bob"), .read, "public/news"))
        #expect(policy.allows(user("bob"), .publish, "plant/a"))
        // A client with only a certificate identity is not anonymous.
        #expect(!policy.allows(Identity(username: nil, clientID: "d", certificateIdentity: "dev1"), .read, "public/news"))
        #expect(policy.decide(anonymousClient, .read, "public/x").rule == "acl.conf:1 anonymous: topic read public/#")
    }

    @Test("read = subscribe + receive, write = publish, readwrite = both, no word = readwrite")
    func accessWords() throws {
        let policy = try makePolicy("""
        user bob
        topic read r/#
        topic write w/#
        topic readwrite rw/#
        topic plain/#
        """)
        let bob = user("bob")
        #expect(policy.allows(bob, .subscribe, "r/#") && policy.allows(bob, .read, "r/x") && !policy.allows(bob, .publish, "r/x"))
        #expect(!policy.allows(bob, .subscribe, "w/#") && !policy.allows(bob, .read, "w/x") && policy.allows(bob, .publish, "w/x"))
        #expect(policy.allows(bob, .subscribe, "rw/#") && policy.allows(bob, .read, "rw/x") && policy.allows(bob, .publish, "rw/x"))
        #expect(policy.allows(bob, .subscribe, "plain/#") && policy.allows(bob, .read, "plain/x") && policy.allows(bob, .publish, "plain/x"))
        #expect(policy.decide(bob, .publish, "plain/x").rule == "acl.conf:5 user bob: topic readwrite plain/#")
    }

    @Test("deny lines deny every operation")
    func denyWord() throws {
        let policy = try makePolicy("""
        user bob
        topic readwrite plant/#
        topic deny plant/secret/#
        """)
        for operation in AccessOperation.allCases {
            #expect(!policy.allows(user("bob"), operation, "plant/secret/x"))
            #expect(policy.allows(user("bob"), operation, "plant/open"))
        }
    }

    @Test("whitespace, comments, blank lines and topics with spaces follow Mosquitto")
    func layout() throws {
        let policy = try makePolicy("""
        # a comment
            # an indented comment

        user   John Smith  \r
        topic    read    name with spaces/x   \r
        topic\twrite\tt/tabbed
           topic read indented/#
        user bob
        topic read
        """)
        let john = user("John Smith")
        #expect(policy.allows(john, .read, "name with spaces/x"))
        #expect(policy.decide(john, .read, "name with spaces/x").rule == "acl.conf:5 user John Smith: topic read name with spaces/x")
        #expect(policy.allows(john, .publish, "t/tabbed"))
        #expect(policy.allows(john, .read, "indented/a"))
        // "topic read" alone: "read" is the topic, with readwrite access (Mosquitto reads it so).
        #expect(policy.allows(user("bob"), .publish, "read"))
        #expect(policy.decide(user("bob"), .publish, "read").rule == "acl.conf:9 user bob: topic readwrite read")
    }

    @Test("%u and %c are plain text on topic lines")
    func noSubstitutionOnTopicLines() throws {
        let policy = try makePolicy("user bob\ntopic read a/%u/%c")
        #expect(policy.allows(user("bob"), .read, "a/%u/%c"))
        #expect(!policy.allows(user("bob", client: "c"), .read, "a/bob/c"))
    }

    @Test("errors name file and line", arguments: [
        ("user bob\nfoo bar\n", "acl.conf:2", "unknown keyword 'foo'"),
        ("user bob\n\ntopic reed x\n", "acl.conf:3", "unknown access 'reed'"),
        ("topic read a/#/b", "acl.conf:1", "invalid topic filter 'a/#/b'"),
        ("topic read a/b+", "acl.conf:1", "invalid topic filter"),
        ("# c\nuser\n", "acl.conf:2", "needs a username"),
        ("user   \n", "acl.conf:1", "needs a username"),
        ("topic\n", "acl.conf:1", "needs a topic filter"),
        ("pattern   \n", "acl.conf:1", "needs a topic filter"),
        ("Topic read x\n", "acl.conf:1", "unknown keyword 'Topic'"),
    ])
    func errors(text: String, source: String, fragment: String) {
        let error = #expect(throws: ACLError.self) { try makePolicy(text) }
        #expect(error?.source == source)
        #expect(error?.message.contains(fragment) == true, "\(String(describing: error))")
    }

    @Test("loading a missing ACL file names the path")
    func missingFile() {
        let error = #expect(throws: ACLError.self) { try AccessPolicy.load(aclFile: "/nonexistent/acl.conf") }
        #expect(error?.source == "/nonexistent/acl.conf")
    }

    @Test("load reads a file and reports rules with its path")
    func loadFromDisk() throws {
        let directory = try TemporaryDirectory()
        directory.write("acl.conf", "user bob\ntopic read plant/#\n")
        let path = directory.path + "/acl.conf"
        let policy = try AccessPolicy.load(aclFile: path, generation: 7)
        #expect(policy.generation == 7)
        #expect(policy.ruleCount == 1)
        #expect(policy.decide(user("bob"), .read, "plant/x").rule == "\(path):2 user bob: topic read plant/#")
    }

    @Test("no ACL and no rules: everything is denied")
    func emptyPolicy() throws {
        let policy = try makePolicy(nil)
        #expect(policy.decide(user("bob"), .publish, "a") == .defaultDeny)
        #expect(policy.decide(anonymousClient, .subscribe, "#") == .defaultDeny)
    }
}
