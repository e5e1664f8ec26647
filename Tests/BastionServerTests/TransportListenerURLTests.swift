import Testing

@testable import BastionServer

@Suite("Listener URL parsing")
struct TransportListenerURLTests {
    @Test(arguments: [
        ("mqtt://127.0.0.1:1883", ListenerURL.Scheme.mqtt, "127.0.0.1", 1883, nil as String?),
        ("mqtt://0.0.0.0", .mqtt, "0.0.0.0", 1883, nil),
        ("mqtts://broker.example", .mqtts, "broker.example", 8883, nil),
        ("mqtts://[::1]:9883", .mqtts, "::1", 9883, nil),
        ("MQTTS://[::]", .mqtts, "::", 8883, nil),
        ("ws://127.0.0.1:8080", .ws, "127.0.0.1", 8080, "/mqtt"),
        ("ws://localhost", .ws, "localhost", 80, "/mqtt"),
        ("wss://0.0.0.0/broker/mqtt", .wss, "0.0.0.0", 443, "/broker/mqtt"),
        ("wss://[fe80::1]:8443/", .wss, "fe80::1", 8443, "/"),
        ("mqtt://127.0.0.1:0", .mqtt, "127.0.0.1", 0, nil),
        ("mqtts://127.0.0.1:8883/", .mqtts, "127.0.0.1", 8883, nil),
    ])
    func parses(text: String, scheme: ListenerURL.Scheme, host: String, port: Int, path: String?) throws {
        let parsed = try ListenerURLParser.parse(text)
        #expect(parsed.scheme == scheme)
        #expect(parsed.host == host)
        #expect(parsed.port == port)
        #expect(parsed.path == path)
    }

    @Test(arguments: [
        ("127.0.0.1:1883", "missing scheme"),
        ("http://127.0.0.1", "unknown scheme"),
        ("mqtt://::1:1883", "brackets"),
        ("mqtt://[::1:1883", "unterminated"),
        ("mqtt://[nothost]:1883", "not an IPv6 address"),
        ("mqtt://127.0.0.1:70000", "port"),
        ("mqtt://127.0.0.1:", "port"),
        ("mqtt://127.0.0.1:http", "port"),
        ("mqtt://:1883", "missing host"),
        ("mqtt://127.0.0.1:1883/mqtt", "take no path"),
        ("ws://user@127.0.0.1", "user information"),
        ("ws://127.0.0.1/mqtt?x=1", "query"),
        ("mqtt://bad_host", "not a valid host"),
    ])
    func rejects(text: String, fragment: String) {
        let error = #expect(throws: ListenerURLError.self) { try ListenerURLParser.parse(text) }
        #expect(error?.description.contains(fragment) == true, "\(error?.description ?? "")")
        #expect(error?.description.contains(text) == true)
    }

    @Test(arguments: [
        ("127.0.0.1", true),
        ("127.8.9.10", true),
        ("localhost", true),
        ("::1", true),
        ("::ffff:127.0.0.1", true),
        ("0.0.0.0", false),
        ("::", false),
        ("10.0.0.1", false),
        ("broker.example", false),
        ("128.0.0.1", false),
        ("127.example.com", false),
    ])
    func loopback(host: String, expected: Bool) {
        #expect(ListenerURLParser.isLoopback(host: host) == expected)
    }
}
