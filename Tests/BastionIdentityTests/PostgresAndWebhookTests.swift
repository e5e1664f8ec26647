import BastionCore
@testable import BastionIdentity
import BastionSecurity
import Foundation
import HummingbirdBcrypt
import Testing

@Suite struct PostgresSettingsTests {
    @Test func urlsNameUserHostPortAndDatabase() throws {
        let parsed = try PostgresSettings.parseURL("postgres://bastion@127.0.0.1:5433/iot")
        #expect(parsed.host == "127.0.0.1" && parsed.port == 5433 && parsed.username == "bastion" && parsed.database == "iot")
        #expect(try PostgresSettings.parseURL("postgresql://u@db.plant.example/x").port == 5432)
        #expect(throws: PostgresSettingsError.self) { try PostgresSettings.parseURL("postgres://u:secret@h/db") }
        #expect(throws: PostgresSettingsError.self) { try PostgresSettings.parseURL("mysql://u@h/db") }
        #expect(throws: PostgresSettingsError.self) { try PostgresSettings.parseURL("postgres://h/db") }
        #expect(throws: PostgresSettingsError.self) { try PostgresSettings.parseURL("postgres://u@h/db?sslmode=disable") }
    }

    @Test func queriesBindOnlyUserNameAndClientID() throws {
        #expect(try PostgresSettings.placeholders(in: "SELECT h FROM t WHERE u = $1", key: "q", requireUsername: true) == 1)
        #expect(try PostgresSettings.placeholders(in: "SELECT a, t FROM acl WHERE u = $1 AND (c IS NULL OR c = $2)", key: "q", requireUsername: true) == 2)
        #expect(try PostgresSettings.placeholders(in: "SELECT a, t FROM acl WHERE c = $2", key: "q", requireUsername: false) == 2)
        #expect(throws: PostgresSettingsError.self) { try PostgresSettings.placeholders(in: "SELECT h FROM t WHERE u = $3", key: "q", requireUsername: true) }
        #expect(throws: PostgresSettingsError.self) { try PostgresSettings.placeholders(in: "SELECT h FROM t", key: "q", requireUsername: true) }
    }

    @Test func aclRowsTakeMosquittoWordsAndNumbers() {
        #expect(ACLRow.access(text: "readwrite") == .readwrite)
        #expect(ACLRow.access(text: "DENY") == .deny)
        #expect(ACLRow.access(text: "all") == nil)
        #expect(ACLRow.access(number: 1) == .read && ACLRow.access(number: 2) == .write)
        #expect(ACLRow.access(number: 3) == .readwrite && ACLRow.access(number: 4) == .subscribe)
        #expect(ACLRow.access(number: 0) == nil)
    }

    @Test func storedHashesOfEverySupportedFormat() throws {
        let seven = try PasswordHash.make(password: Array("pw".utf8), iterations: 1000).encoded
        let scram = try PasswordHash.makeScram(password: Array("pw".utf8), algorithm: .sha512).encoded
        let bcrypt = Bcrypt.hash("pw", cost: 4)
        for text in [seven, scram, bcrypt] {
            let hash = try #require(StoredPasswordHash(text), "\(text.prefix(8)) parses")
            #expect(hash.matches(Array("pw".utf8)))
            #expect(!hash.matches(Array("pw2".utf8)))
            #expect(!hash.matches(Array("pw\u{0}".utf8)))
        }
        #expect(StoredPasswordHash(scram)?.scramKeys?.algorithm == .sha512)
        #expect(StoredPasswordHash("plaintext") == nil)
        #expect(StoredPasswordHash("$2b$31$" + String(repeating: "a", count: 53)) == nil, "a cost that would stall the pool")
    }
}

@Suite struct WebhookTests {
    let base = request("alice", "secret")

    func decide(_ json: String, status: Int = 200, request: AuthenticationRequest? = nil) -> BackendDecision {
        WebhookResponse.decision(status: status, body: Array(json.utf8), request: request ?? base, source: "hook")
    }

    @Test func theRequestCarriesEveryFieldByName() throws {
        var certified = request(nil, nil, clientID: "dev-9")
        certified.certificateIdentity = "dev-9"
        certified.certificateSerial = "0A"
        certified.certificateFingerprint = "ab12"
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let text = String(decoding: try encoder.encode(WebhookRequest(certified)), as: UTF8.self)
        #expect(text == #"{"certificate":{"fingerprint_sha256":"ab12","identity":"dev-9","serial":"0A"},"client_id":"dev-9","listener":"mqtt:\/\/127.0.0.1:1883","password":null,"remote_address":"127.0.0.1","username":null}"#)
        let binary = AuthenticationRequest(username: "u", password: [0xFF, 0x00], clientID: "c")
        let encoded = try JSONSerialization.jsonObject(with: encoder.encode(WebhookRequest(binary))) as? [String: Any]
        #expect(encoded?["password_base64"] as? String == "/wA=")
    }

    @Test func allowDenyAndIgnore() {
        #expect(decide(#"{"result": "allow"}"#) == .allow(BackendGrant(username: "alice")))
        #expect(decide(#"{"result": "ignore"}"#) == .noOpinion)
        guard case .deny = decide(#"{"result": "deny"}"#) else { Issue.record("deny"); return }
        guard case .deny = decide("", status: 403) else { Issue.record("403"); return }
    }

    @Test func anACLAndRolesComeWithTheAllow() {
        let answer = decide(##"{"result": "allow", "username": "dev-7", "acl": [{"access": "write", "topic": "plant/7/#"}, {"access": "deny", "topic": "plant/7/secret"}], "roles": ["operators"]}"##)
        #expect(answer == .allow(BackendGrant(
            username: "dev-7",
            rules: [BackendACLRule(access: .write, filter: "plant/7/#", source: "hook acl"), BackendACLRule(access: .deny, filter: "plant/7/secret", source: "hook acl")],
            roles: ["operators"])))
        #expect(decide(#"{"result": "allow", "acl": []}"#) == .allow(BackendGrant(username: "alice", rules: [])))
    }

    @Test func garbageIsNeverAnAllow() {
        for body in ["", "allow", "[]", #"{"result": "yes"}"#, #"{"result": true}"#, #"{"allow": true}"#,
                     ##"{"result": "allow", "acl": "plant/#"}"##, ##"{"result": "allow", "acl": [{"access": "all", "topic": "#"}]}"##,
                     ##"{"result": "allow", "acl": [{"access": "read", "topic": "#", "extra": 1}]}"##,
                     #"{"result": "allow", "username": 7}"#, #"{"result": "allow", "admin": true}"#] {
            guard case .unavailable = decide(body) else {
                Issue.record("\(body) must be unavailable")
                continue
            }
        }
        for status in [500, 302, 404] {
            guard case .unavailable = decide(#"{"result": "allow"}"#, status: status) else {
                Issue.record("HTTP \(status) must be unavailable")
                continue
            }
        }
    }
}

@Suite struct LDAPBackendTests {
    @Test func groupsMapToRolesOnce() throws {
        let directory = try LDAPDirectoryAuthenticatorFactory.make()
        let backend = LDAPBackend(name: "ldap", directory: directory, roleMap: ["operators": ["ops"], "viewers": ["view", "ops"]])
        #expect(backend.roles(for: ["viewers", "operators", "other"]) == ["view", "ops"])
        #expect(backend.roles(for: []) == [])
    }
}

import BastionLDAP

enum LDAPDirectoryAuthenticatorFactory {
    static func make() throws -> LDAPDirectoryAuthenticator {
        try LDAPDirectoryAuthenticator(configuration: LDAPDirectoryConfiguration(
            url: LDAPURL(parsing: "ldap://127.0.0.1:1"), userLookup: .bindDNTemplate("uid=%u,ou=people,dc=x")))
    }
}
