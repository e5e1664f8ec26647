import BastionSecurity
import Foundation
import Testing

/// One sample of every event, for schema round trips.
enum AuditSamples {
    static let peer = AuditPeer(listener: "mqtt://127.0.0.1:1883", remoteAddress: "127.0.0.1:50000")

    static let all: [AuditEvent] = [
        .started(.init(version: "0.1.0", listeners: ["mqtt://127.0.0.1:1883", "mqtts://0.0.0.0:8883"], configPath: nil, pid: 42)),
        .shutdown(.init(cause: .signal, uptimeSeconds: 3600)),
        .connectionAccepted(.init(peer: peer, clientID: "sensor-1", username: "alice", identity: "alice", protocolVersion: "5.0",
                                  tlsVersion: "TLSv1.3", tlsCipher: "TLS_AES_128_GCM_SHA256", certificateSerial: "0A1B", cleanStart: true)),
        .connectionAccepted(.init(peer: peer, clientID: "plain", username: nil, identity: nil, protocolVersion: "3.1.1", cleanStart: false)),
        .connectionRefused(.init(peer: peer, reason: .banned)),
        .authFailure(.init(peer: peer, clientID: "c", username: "bob", reason: .badPassword, protocolVersion: "3.1.1")),
        .authFailure(.init(peer: AuditPeer(listener: nil, ip: nil, port: nil), clientID: nil, username: nil, reason: .noCredentials)),
        .authorizationDenied(.init(peer: peer, clientID: "c", username: "bob", operation: .subscribe, topic: "secret/#", rule: "acl_file:3")),
        .ban(.init(BanEntry(subject: .ip(IPAddress("127.0.0.1")!), origin: .authFailures, note: nil, since: .origin,
                            expires: .origin + .seconds(60), offence: 1))),
        .ban(.init(BanEntry(subject: .address(IPRange("10.0.0.0/8")!), origin: .config, note: "lab", since: .origin, expires: nil, offence: 0))),
        .unban(.init(subject: .username("mallory"), cause: .expired)),
        .limitReached(.init(limit: .packetSize, action: .disconnected, peer: peer, clientID: "c", username: nil, value: 300_000, maximum: 262_144)),
        .configReload(.init(outcome: .rejected, path: "/etc/bastion.yaml", error: "limits.max_inflight: 0 is out of range")),
        .alert(.init(Alert(kind: .authFailures, count: 120, threshold: 100, window: .seconds(60)))),
        .alert(.init(Alert.event(.sessionDropping, subject: "client_id plc-17"))),
        .banSuppressed(.init(subject: .ip(IPAddress("127.0.0.1")!), origin: .protocolViolations)),
        .sessionHijackRefused(.init(peer: peer, clientID: "alice-dev", identity: "user:mallory", owner: "user:alice")),
        .sparkplugCommand(.init(peer: peer, clientID: "scada-1", username: "scada", topic: "spBv1.0/plant1/DCMD/press7/valve",
                                group: "plant1", edgeNode: "press7", device: "valve", metrics: ["open"], outcome: .refused,
                                reason: "command signature does not verify", signature: .bad)),
        .sparkplugCommand(.init(peer: peer, clientID: "hist", username: nil, topic: "spBv1.0/plant1/NCMD/press7", group: "plant1",
                                edgeNode: "press7", device: nil, metrics: nil, outcome: .accepted, reason: nil, signature: .notRequired)),
        .sparkplugPayloadInvalid(.init(peer: peer, clientID: "press7", topic: "spBv1.0/plant1/NBIRTH/press7",
                                       error: "Sparkplug payload truncated", will: false)),
        .adminLogin(.init(remoteIP: "127.0.0.1", user: "admin", method: .password, outcome: .success, role: "admin")),
        .adminLogin(.init(remoteIP: nil, user: "mallory", method: .ldap, outcome: .failure, reason: .directoryUnavailable)),
        .adminAction(.init(remoteIP: "127.0.0.1", user: "alice", role: "operator", via: .session, action: .banAdd,
                           target: "ip 192.0.2.7", outcome: .success)),
        .adminAction(.init(remoteIP: "::1", user: "token:ci", role: "viewer", via: .token, action: .userCreate, target: nil,
                           outcome: .denied, detail: "needs role admin")),
        .bridge(.init(kind: .connected, bridge: "it-dmz", remote: "mqtts://broker-it.example:8883")),
        .bridge(.init(kind: .disconnected, bridge: "it-dmz", remote: "mqtts://broker-it.example:8883", reason: "connection lost")),
        .bridge(.init(kind: .refused, bridge: "it-dmz", remote: "mqtts://broker-it.example:8883", reason: "not authorized")),
        .bridge(.init(kind: .unreachable, bridge: "it-dmz", reason: "connection refused")),
        .bridge(.init(kind: .queueFull, bridge: "it-dmz", dropped: 3)),
        .recordsDropped(count: 17),
    ]
}

@Suite struct AuditRecordTests {
    @Test func timestampsAreRFC3339UTCWithMilliseconds() {
        #expect(RFC3339.format(millisecondsSinceEpoch: 0) == "1970-01-01T00:00:00.000Z")
        #expect(RFC3339.format(millisecondsSinceEpoch: 1_714_566_896_789) == "2024-05-01T12:34:56.789Z")
        #expect(RFC3339.format(millisecondsSinceEpoch: 951_782_400_005) == "2000-02-29T00:00:00.005Z")
    }

    @Test func recordsStartWithTimestampAndEventAndEndWithANewline() {
        let line = AuditRecord(timestamp: 0, event: .recordsDropped(count: 3)).jsonLine()
        #expect(String(decoding: line, as: UTF8.self) == "{\"ts\":\"1970-01-01T00:00:00.000Z\",\"event\":\"audit_dropped\",\"count\":3}\n")
    }

    @Test func clientChosenStringsAreCutSoARecordStaysSmall() {
        let long = String(repeating: "x", count: 60_000)
        let event = AuditEvent.authFailure(.init(peer: AuditSamples.peer, clientID: long, username: long + "é", reason: .badPassword))
        let line = String(decoding: AuditRecord(timestamp: 0, event: event).jsonLine(), as: UTF8.self)
        #expect(line.utf8.count < 3 * 1024)
        #expect(line.contains("…[+58976]"))
        #expect(AuditSchema.validate(line: String(line.dropLast())) == [])
    }

    @Test(arguments: AuditSamples.all)
    func everyEventMatchesItsSchema(_ event: AuditEvent) throws {
        let line = String(decoding: AuditRecord(timestamp: 1_714_566_896_789, event: event).jsonLine(), as: UTF8.self)
        #expect(line.hasSuffix("\n"))
        #expect(line.dropLast().contains("\n") == false)
        #expect(AuditSchema.validate(line: String(line.dropLast())) == [])
        // Also parses with Foundation's JSON parser, and carries exactly the schema's fields.
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        let fields = try #require(AuditSchema.events[event.name])
        #expect(Set(object.keys) == Set(fields.map(\.name) + ["ts", "event"]))
    }

    @Test func everyEventNameHasASchemaAndASample() {
        #expect(Set(AuditSamples.all.map(\.name)) == Set(AuditSchema.events.keys))
    }

    @Test func clientControlledTextCannotBreakTheLine() throws {
        let hostile = "evil\"}\n{\"event\":\"start\u{2028}\u{0}\\"
        let event = AuditEvent.authFailure(.init(peer: AuditSamples.peer, clientID: hostile, username: hostile, reason: .unknownUser))
        let line = String(decoding: AuditRecord(timestamp: 0, event: event).jsonLine(), as: UTF8.self)
        #expect(line.filter { $0 == "\n" }.count == 1)
        #expect(!line.contains("\u{2028}"))
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect(object["client_id"] as? String == hostile)
        #expect(object["event"] as? String == "auth_failure")
    }

    @Test func peerParsesServerAddressSpellings() {
        let v4 = AuditPeer(listener: "l", remoteAddress: "192.0.2.1:1234")
        #expect(v4.ip == "192.0.2.1")
        #expect(v4.port == 1234)
        let v6 = AuditPeer(listener: "l", remoteAddress: "[2001:db8::1]:8883")
        #expect(v6.ip == "2001:db8::1")
        #expect(v6.port == 8883)
        let unknown = AuditPeer(listener: "l", remoteAddress: "unknown")
        #expect(unknown.ip == nil)
        #expect(unknown.port == nil)
    }

    @Test func theValidatorCatchesSchemaViolations() {
        let valid = #"{"ts":"2024-05-01T12:34:56.789Z","event":"audit_dropped","count":3}"#
        #expect(AuditSchema.validate(line: valid).isEmpty)
        let cases = [
            "not json",
            #"["array"]"#,
            #"{"ts":"2024-05-01 12:34:56","event":"audit_dropped","count":3}"#,
            #"{"ts":"2024-05-01T12:34:56.789Z","event":"no_such_event"}"#,
            #"{"ts":"2024-05-01T12:34:56.789Z","event":"audit_dropped"}"#,
            #"{"ts":"2024-05-01T12:34:56.789Z","event":"audit_dropped","count":"3"}"#,
            #"{"ts":"2024-05-01T12:34:56.789Z","event":"audit_dropped","count":3,"password":"x"}"#,
            #"{"ts":"2024-05-01T12:34:56.789Z","event":"audit_dropped","count":true}"#,
            #"{"ts":"2024-05-01T12:34:56.789Z","event":"unban","subject_type":"ip","subject":"x","cause":"bored"}"#,
        ]
        for line in cases { #expect(!AuditSchema.validate(line: line).isEmpty, "\(line)") }
    }

    @Test func banRecordsFromBanEvents() {
        let entry = BanEntry(subject: .username("u"), origin: .manual, note: "n", since: .origin, expires: nil, offence: 0)
        #expect(AuditEvent(BanEvent.banned(entry)).name == "ban")
        #expect(AuditEvent(BanEvent.unbanned(.username("u"), .removed)).name == "unban")
    }
}
