import BastionAdmin
import BastionSecurity
import BastionServer
import Foundation
import Testing

@Suite struct AdminSettingsTests {
    func parsed(_ text: String) -> String? {
        AdminSettings.parseListen(text).map { "\($0.scheme.rawValue) \($0.host) \($0.port)" }
    }

    @Test func parsesListenURLs() {
        #expect(parsed("https://127.0.0.1:9443") == "https 127.0.0.1 9443")
        #expect(parsed("http://127.0.0.1:9883") == "http 127.0.0.1 9883")
        #expect(parsed("http://[::1]:0") == "http ::1 0")
        #expect(parsed("http://localhost:80/") == "http localhost 80")
        for bad in ["ftp://127.0.0.1:1", "127.0.0.1:1", "http://127.0.0.1", "http://127.0.0.1:99999", "http://:1", "http://::1:1", "http://a/b:1"] {
            #expect(parsed(bad) == nil, "\(bad)")
        }
    }

    @Test func noAdminSectionAndNoFlagMeansNoListener() throws {
        #expect(try AdminSettings.resolve(config: nil, flag: nil, file: nil) == nil)
    }

    @Test func anEmptySectionUsesHTTPSOnLoopback() throws {
        let settings = try #require(try AdminSettings.resolve(config: AdminConfig(), flag: nil, file: nil))
        #expect(settings.scheme == .https)
        #expect(settings.host == "127.0.0.1")
        #expect(settings.port == 9443)
        #expect(settings.certificateFile == nil)  // the development CA's
    }

    @Test func offLoopbackNeedsHTTPSAndARealCertificate() throws {
        let plain = #expect(throws: ConfigError.self) { try AdminSettings.resolve(config: nil, flag: "http://0.0.0.0:9883", file: nil) }
        #expect(plain?.key == "--admin-listen")
        var config = AdminConfig()
        config.listen = "https://192.0.2.1:9443"
        let error = #expect(throws: ConfigError.self) { try AdminSettings.resolve(config: config, flag: nil, file: "b.yaml") }
        #expect(error?.key == "admin.tls")
        config.tls = AdminTLSConfig()
        config.tls?.cert = "/etc/bastion/admin.pem"
        #expect(throws: ConfigError.self) { try AdminSettings.resolve(config: config, flag: nil, file: "b.yaml") }
        config.tls?.key = "/etc/bastion/admin.key"
        let settings = try #require(try AdminSettings.resolve(config: config, flag: nil, file: "b.yaml"))
        #expect(settings.certificateFile == "/etc/bastion/admin.pem")
        #expect(settings.host == "192.0.2.1")
    }

    @Test func ldapSettingsAreCheckedAtStartup() throws {
        var config = AdminConfig()
        config.ldap = AdminLDAPConfig(url: "ldap://directory.example:389", role_map: ["admins": "admin"])
        config.ldap?.bind_dn = "uid=%u,ou=people,dc=example,dc=org"
        config.ldap?.group_base = "ou=groups,dc=example,dc=org"
        // Clear text off loopback is refused …
        #expect(throws: ConfigError.self) { try AdminSettings.resolve(config: config, flag: nil, file: "b.yaml") }
        config.ldap?.start_tls = true
        let settings = try #require(try AdminSettings.resolve(config: config, flag: nil, file: "b.yaml"))
        #expect(settings.ldap?.roleMap == ["admins": .admin])
        config.ldap?.role_map = ["admins": "root"]
        let role = #expect(throws: ConfigError.self) { try AdminSettings.resolve(config: config, flag: nil, file: "b.yaml") }
        #expect(role?.key == "admin.ldap.role_map.admins")
        config.ldap?.role_map = ["admins": "admin"]
        config.ldap?.group_base = nil
        #expect(throws: ConfigError.self) { try AdminSettings.resolve(config: config, flag: nil, file: "b.yaml") }
    }

    @Test func loopbackHosts() {
        #expect(AdminSettings.isLoopback(host: "127.0.0.1"))
        #expect(AdminSettings.isLoopback(host: "::1"))
        #expect(AdminSettings.isLoopback(host: "localhost"))
        #expect(!AdminSettings.isLoopback(host: "0.0.0.0"))
        #expect(!AdminSettings.isLoopback(host: "example.com"))
    }
}

@Suite struct AdminProtectionSettingsTests {
    func resolve(_ yaml: String, listen: [String] = []) throws(ConfigError) -> ProtectionSettings {
        let file = try ConfigLoader.parse(yaml, file: "test.yaml")
        var options = ServeOptions()
        options.configPath = "test.yaml"
        options.listen = listen
        return try ProtectionSettings.resolve(file: file, options: options)
    }

    @Test func defaultsAreSecure() throws {
        let s = try resolve("{}")
        #expect(s.connectionLimits == ConnectionLimits())
        #expect(s.publishRate.isUnlimited)
        #expect(s.publishRate.action == .backpressure)
        #expect(s.authFailures.perAddress == 10)
        #expect(s.banPolicy.initial == .seconds(60))
        #expect(s.banPolicy.maximum == .seconds(3600))
        #expect(!s.audit.isEnabled)
        #expect(s.admin == nil)
        #expect(s.listenerConnectionLimits.count == 1)
    }

    @Test func readsEveryKey() throws {
        let s = try resolve("""
            listeners:
              - url: mqtt://127.0.0.1:1883
              - url: mqtt://127.0.0.1:1884
                limits: {max_connections_per_ip: 2, publish_rate_messages: 1}
            limits:
              max_connections: 50
              max_connections_per_ip: 5
              connect_rate_per_ip: 3
              connect_burst_per_ip: 6
              publish_rate_messages: 100
              publish_rate_bytes: 10000
              publish_burst_seconds: 2
              publish_rate_action: disconnect
              auth_failures_per_ip: 4
              auth_failures_per_user: 8
              auth_failure_window: 30
              flap_connections: 9
              flap_window: 20
              flap_min_duration: 1.5
              ban_initial: 10
              ban_max: 100
            bans:
              - address: 10.0.0.0/8
                reason: lab
              - user: mallory
              - client_id: rogue
            alerts: {connection_rate: 1000, auth_failures: 50, acl_denials: 20, window: 30}
            audit: {path: /tmp/a.log, stdout: true, max_size_mb: 1, max_files: 3, queue_size: 10}
            admin: {listen: "http://127.0.0.1:0"}
            """)
        #expect(s.connectionLimits.maximumConnections == 50)
        #expect(s.connectionLimits.maximumConnectionsPerAddress == 5)
        #expect(s.connectionLimits.connectRatePerAddress == 3)
        #expect(s.connectionLimits.connectBurstPerAddress == 6)
        #expect(s.listenerConnectionLimits[0] == nil)
        #expect(s.listenerConnectionLimits[1]?.maximumConnectionsPerAddress == 2)
        #expect(s.listenerConnectionLimits[1]?.maximumConnections == 50)
        #expect(s.listenerPublishRates[1]?.messagesPerSecond == 1)
        #expect(s.listenerPublishRates[1]?.bytesPerSecond == 10000)
        #expect(s.publishRate.messagesPerSecond == 100)
        #expect(s.publishRate.burstSeconds == 2)
        #expect(s.publishRate.action == .disconnect)
        #expect(s.authFailures.perAddress == 4)
        #expect(s.authFailures.perUsername == 8)
        #expect(s.authFailures.window == .seconds(30))
        #expect(s.flapping.connections == 9)
        #expect(s.flapping.shortSession == .milliseconds(1500))
        #expect(s.banPolicy.initial == .seconds(10))
        #expect(s.banPolicy.maximum == .seconds(100))
        #expect(s.configuredBans.map(\.subject) == [.address(IPRange("10.0.0.0/8")!), .username("mallory"), .clientID("rogue")])
        #expect(s.configuredBans.first?.note == "lab")
        #expect(s.alerts.connections == 1000)
        #expect(s.alerts.window == .seconds(30))
        #expect(s.audit.path == "/tmp/a.log")
        #expect(s.audit.stdout)
        #expect(s.audit.maximumFileBytes == 1024 * 1024)
        #expect(s.audit.maximumFiles == 3)
        #expect(s.audit.queueCapacity == 10)
        #expect(s.admin?.port == 0)
    }

    @Test(arguments: [
        ("limits: {publish_rate_action: shout}", "limits.publish_rate_action"),
        ("limits: {connect_rate_per_ip: 0}", "limits.connect_rate_per_ip"),
        ("limits: {max_connections: 0}", "limits.max_connections"),
        ("limits: {ban_initial: 100, ban_max: 10}", "limits.ban_max"),
        ("bans: [{address: not-an-ip}]", "bans[0].address"),
        ("bans: [{user: a, client_id: b}]", "bans[0]"),
        ("alerts: {window: 0}", "alerts.window"),
        ("audit: {max_files: -1}", "audit.max_files"),
        ("admin: {listen: 'http://0.0.0.0:1'}", "admin.listen"),
        ("admin: {listen: 'https://0.0.0.0:1'}", "admin.tls"),
        ("listeners: [{url: 'mqtt://127.0.0.1:1', limits: {max_connections_per_ip: 0}}]", "listeners[0].limits.max_connections_per_ip"),
    ])
    func badValuesNameTheirKey(_ yaml: String, _ key: String) {
        let error = #expect(throws: ConfigError.self) { try resolve(yaml) }
        #expect(error?.key == key)
        #expect(error?.file == "test.yaml")
    }

    @Test func unknownKeysInTheNewSectionsAreRejected() {
        let error = #expect(throws: ConfigError.self) { try resolve("alerts: {connection_rates: 5}") }
        #expect(error?.key == "alerts.connection_rates")
    }

    @Test func flagsOverrideTheFile() throws {
        let file = try ConfigLoader.parse("audit: {path: /tmp/file.log}\nadmin: {listen: 'http://127.0.0.1:1'}", file: "t.yaml")
        var options = ServeOptions()
        options.auditLog = "/tmp/flag.log"
        options.adminListen = "http://127.0.0.1:2"
        let s = try ProtectionSettings.resolve(file: file, options: options)
        #expect(s.audit.path == "/tmp/flag.log")
        #expect(s.admin?.port == 2)
    }
}
