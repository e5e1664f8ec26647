import Testing

@testable import BastionServer

@Suite("Listener URLs")
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
        let url = try ListenerURL(parsing: text)
        #expect(url.scheme == scheme)
        #expect(url.host == host)
        #expect(url.port == port)
        #expect(url.path == path)
        // The canonical form parses back to the same value.
        #expect(try ListenerURL(parsing: url.description) == url)
    }

    @Test func canonicalDescription() throws {
        #expect(try ListenerURL(parsing: "wss://[::1]").description == "wss://[::1]:443/mqtt")
        #expect(try ListenerURL(parsing: "mqtt://localhost").description == "mqtt://localhost:1883")
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
        let error = #expect(throws: ListenerURLError.self) { try ListenerURL(parsing: text) }
        #expect(error?.description.contains(fragment) == true, "\(error?.description ?? "")")
        #expect(error?.description.contains(text) == true)
    }

    @Test(arguments: [
        ("mqtt://127.0.0.1", true),
        ("mqtt://127.8.9.10", true),
        ("mqtt://localhost", true),
        ("mqtt://[::1]", true),
        ("mqtt://[::ffff:127.0.0.1]", true),
        ("mqtt://0.0.0.0", false),
        ("mqtt://[::]", false),
        ("mqtt://10.0.0.1", false),
        ("mqtt://broker.example", false),
        ("mqtt://128.0.0.1", false),
    ])
    func loopback(text: String, expected: Bool) throws {
        #expect(try ListenerURL(parsing: text).isLoopback == expected)
    }

    @Test func schemeProperties() {
        #expect(ListenerURL.Scheme.mqtts.isTLS && ListenerURL.Scheme.wss.isTLS)
        #expect(!ListenerURL.Scheme.mqtt.isTLS && !ListenerURL.Scheme.ws.isTLS)
        #expect(ListenerURL.Scheme.ws.isWebSocket && ListenerURL.Scheme.wss.isWebSocket)
    }
}
