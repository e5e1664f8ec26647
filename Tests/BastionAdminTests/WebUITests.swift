import BastionSecurity
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing
@testable import BastionAdmin

/// Login, TOTP, sessions, CSRF and the pages.
@Suite struct WebUITests {
    static let pages: [(path: String, role: AdminRole)] = [
        ("/ui/overview", .viewer), ("/ui/clients", .viewer), ("/ui/sessions", .viewer), ("/ui/subscriptions", .viewer),
        ("/ui/retained", .viewer), ("/ui/acl", .viewer), ("/ui/bans", .viewer), ("/ui/audit", .viewer), ("/ui/users", .admin),
    ]

    @Test func firstStartWritesPrivateFilesAndPrintsOnlyTheirPaths() throws {
        let console = try Console()
        defer { console.remove() }
        for file in ["admin-password", "admin-token", "admin-users"] {
            #expect(PKIFiles.mode(of: console.directory + "/" + file) == 0o600, "\(file)")
        }
        let printed = console.announcements.lines.withLock { $0.joined(separator: "\n") }
        #expect(printed.contains(console.directory + "/admin-password"))
        #expect(printed.contains(console.directory + "/admin-token"))
        #expect(!console.initialPassword.isEmpty && !printed.contains(console.initialPassword))
        #expect(!printed.contains(console.bootstrapToken))
        let users = try String(contentsOfFile: console.directory + "/admin-users", encoding: .utf8)
        #expect(users.hasPrefix("admin:admin:$7$"))
        #expect(!users.contains(console.initialPassword))
    }

    @Test func secretFilesOthersCanReadAreMadePrivate() throws {
        let console = try Console()
        defer { console.remove() }
        chmod(console.directory + "/admin-token", 0o644)
        chmod(console.directory + "/admin-users", 0o640)
        _ = try AdminServer(configuration: console.state.configuration, control: console.control, announce: { _ in })
        #expect(PKIFiles.mode(of: console.directory + "/admin-token") == 0o600)
        #expect(PKIFiles.mode(of: console.directory + "/admin-users") == 0o600)
    }

    @Test func aConfiguredTokenFileOthersCanReadIsRefused() throws {
        let console = try Console()
        defer { console.remove() }
        let path = console.directory + "/mine.token"
        FileManager.default.createFile(atPath: path, contents: Data("0123456789abcdef0123456789abcdef\n".utf8))
        chmod(path, 0o644)
        var configuration = AdminConfiguration(scheme: .https, host: "127.0.0.1", port: 443, dataDirectory: console.directory, tokenFile: path)
        #expect(throws: AdminSetupError.self) { try AdminServer(configuration: configuration, control: console.control, announce: { _ in }) }
        chmod(path, 0o600)
        configuration.bootstrapTokenFile = path
        _ = try AdminServer(configuration: configuration, control: console.control, announce: { _ in })
    }

    /// Logs in as the generated admin and enrols TOTP; returns the session cookie.
    func enrol(_ console: Console, _ client: some TestClientProtocol) async throws -> (cookie: String, secret: String) {
        let page = try await client.execute(uri: "/login", method: .get)
        #expect(page.status == .ok)
        let preLogin = try #require(page.cookie(Responses.sessionCookie))
        let setCookie = try #require(page.headers[.setCookie])
        for flag in ["HttpOnly", "Secure", "SameSite=Strict", "Max-Age=", "Path=/"] { #expect(setCookie.contains(flag), "\(flag)") }
        let csrf = try #require(hiddenField("_csrf", in: page.text))

        let login = try await client.execute(uri: "/login", method: .post, headers: cookieHeaders("\(Responses.sessionCookie)=\(preLogin)", form: true),
                                             body: formBody(["_csrf": csrf, "username": "admin", "password": console.initialPassword]))
        #expect(login.status == .seeOther)
        #expect(login.headers[.location] == "/login/enrol")
        let enrolling = try #require(login.cookie(Responses.sessionCookie))
        #expect(enrolling != preLogin)  // a new id at login: no session fixation
        // The pre-login id is worth nothing now.
        #expect(try await client.execute(uri: "/login/enrol", method: .get, headers: cookieHeaders("\(Responses.sessionCookie)=\(preLogin)")).status == .seeOther)
        // Not logged in until TOTP is set up.
        #expect(try await client.execute(uri: "/ui/overview", method: .get, headers: cookieHeaders("\(Responses.sessionCookie)=\(enrolling)")).status == .seeOther)

        let enrol = try await client.execute(uri: "/login/enrol", method: .get, headers: cookieHeaders("\(Responses.sessionCookie)=\(enrolling)"))
        #expect(enrol.status == .ok)
        #expect(enrol.text.contains("<svg"))
        let shown = try #require(enrol.text.range(of: "id=\"totp-secret\">").map { enrol.text[$0.upperBound...].prefix(while: { $0 != "<" }) })
        let secret = try #require(console.state.sessions.session(enrolling, now: console.clock.now()).flatMap { session -> String? in
            if case .enrolling(let s) = session.stage { return s }
            return nil
        })
        #expect(String(shown) == TOTPVerifier.base32(secret))
        let enrolCSRF = try #require(hiddenField("_csrf", in: enrol.text))

        let wrong = try await client.execute(uri: "/login/enrol", method: .post, headers: cookieHeaders("\(Responses.sessionCookie)=\(enrolling)", form: true),
                                             body: formBody(["_csrf": enrolCSRF, "code": "000000"]))
        #expect(wrong.status == .unauthorized)
        let code = TOTPVerifier.code(secret: secret, at: console.clock.now())
        let done = try await client.execute(uri: "/login/enrol", method: .post, headers: cookieHeaders("\(Responses.sessionCookie)=\(enrolling)", form: true),
                                            body: formBody(["_csrf": enrolCSRF, "code": code]))
        #expect(done.status == .seeOther)
        #expect(done.headers[.location] == "/ui/overview")
        let active = try #require(done.cookie(Responses.sessionCookie))
        #expect(active != enrolling)
        return ("\(Responses.sessionCookie)=\(active)", secret)
    }

    @Test func firstLoginEnrolsTOTPThenLoginsNeedACode() async throws {
        let console = try Console()
        defer { console.remove() }
        try await console.app.test(.router) { client async throws in
            let (cookie, secret) = try await enrol(console, client)
            #expect(!FileManager.default.fileExists(atPath: console.directory + "/admin-password"))
            #expect(console.state.users.user(named: "admin")?.totpEnrolled == true)
            let overview = try await client.execute(uri: "/ui/overview", method: .get, headers: cookieHeaders(cookie))
            #expect(overview.status == .ok)
            #expect(overview.text.contains("<svg"))

            // The next login asks for a code, and a code works once.
            console.clock.advance(60)
            let password = "a-new-password-for-admin"
            try console.state.users.put(.init(name: "admin", role: .admin, hash: try PasswordHash.make(password: Array(password.utf8)),
                                              totpSecret: secret))
            let page = try await client.execute(uri: "/login", method: .get)
            let pre = "\(Responses.sessionCookie)=\(try #require(page.cookie(Responses.sessionCookie)))"
            let login = try await client.execute(uri: "/login", method: .post, headers: cookieHeaders(pre, form: true),
                                                 body: formBody(["_csrf": try #require(hiddenField("_csrf", in: page.text)), "username": "admin", "password": password]))
            #expect(login.headers[.location] == "/login/code")
            let step = "\(Responses.sessionCookie)=\(try #require(login.cookie(Responses.sessionCookie)))"
            let form = try await client.execute(uri: "/login/code", method: .get, headers: cookieHeaders(step))
            let csrf = try #require(hiddenField("_csrf", in: form.text))
            let code = TOTPVerifier.code(secret: secret, at: console.clock.now())
            let ok = try await client.execute(uri: "/login/code", method: .post, headers: cookieHeaders(step, form: true), body: formBody(["_csrf": csrf, "code": code]))
            #expect(ok.status == .seeOther)
            #expect(ok.headers[.location] == "/ui/overview")
        }
        let logins = await console.control.records().filter { $0["event"] as? String == "admin_login" }
        #expect(logins.contains { $0["method"] as? String == "password" && $0["outcome"] as? String == "success" })
        #expect(logins.contains { $0["method"] as? String == "totp" && $0["outcome"] as? String == "failure" && $0["reason"] as? String == "bad_code" })
        #expect(logins.filter { $0["method"] as? String == "totp" && $0["outcome"] as? String == "success" }.count == 2)
        let enrolled = await console.control.records().filter { $0["action"] as? String == "totp_enrol" }
        #expect(enrolled.count == 1)
    }

    @Test func aTOTPCodeCannotBeReplayed() {
        let verifier = TOTPVerifier()
        let secret = TOTPVerifier.newSecret()
        let now = 1_700_000_000.0
        let code = TOTPVerifier.code(secret: secret, at: now)
        #expect(verifier.verify(code: code, secret: secret, user: "u", now: now))
        #expect(!verifier.verify(code: code, secret: secret, user: "u", now: now + 1))
        // One step of drift either side is accepted; two are not.
        let next = TOTPVerifier.code(secret: secret, at: now + 30)
        #expect(verifier.verify(code: next, secret: secret, user: "u", now: now + 5))
        #expect(!verifier.verify(code: TOTPVerifier.code(secret: secret, at: now + 120), secret: secret, user: "u", now: now + 5))
        #expect(!verifier.verify(code: "12345a", secret: secret, user: "v", now: now))
    }

    @Test func rfc6238Vectors() {
        // RFC 6238 appendix B (SHA-1), last six digits.
        #expect(TOTPVerifier.code(secret: "12345678901234567890", at: 59) == "287082")
        #expect(TOTPVerifier.code(secret: "12345678901234567890", at: 1_111_111_109) == "081804")
        #expect(TOTPVerifier.code(secret: "12345678901234567890", at: 20_000_000_000) == "353130")
        #expect(TOTPVerifier.base32("12345678901234567890") == "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ")
        #expect(TOTPVerifier.provisioningURI(secret: "12345678901234567890", user: "admin").contains("secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"))
    }

    @Test func repeatedFailuresLockTheUserOutWithBackOff() async throws {
        let console = try Console()
        defer { console.remove() }
        try await console.app.test(.router) { client async throws in
            func attempt(_ password: String) async throws -> HTTPResponse.Status {
                let page = try await client.execute(uri: "/login", method: .get)
                let cookie = "\(Responses.sessionCookie)=\(try #require(page.cookie(Responses.sessionCookie)))"
                return try await client.execute(uri: "/login", method: .post, headers: cookieHeaders(cookie, form: true),
                                                body: formBody(["_csrf": try #require(hiddenField("_csrf", in: page.text)), "username": "admin",
                                                                "password": password])).status
            }
            for _ in 0..<5 { #expect(try await attempt("wrong") == .unauthorized) }
            // Locked: even the right password is refused, without being checked.
            #expect(try await attempt(console.initialPassword) == .tooManyRequests)
            console.clock.advance(31)
            #expect(try await attempt(console.initialPassword) == .seeOther)
            // The address stays counted: five more failures lock for twice as long.
            for _ in 0..<5 { _ = try await attempt("wrong") }
            console.clock.advance(31)
            #expect(try await attempt(console.initialPassword) == .tooManyRequests)
            console.clock.advance(30)
            #expect(try await attempt(console.initialPassword) == .seeOther)
        }
        let records = await console.control.records().filter { $0["event"] as? String == "admin_login" }
        #expect(records.filter { $0["outcome"] as? String == "failure" }.count == 10)
        #expect(records.filter { $0["outcome"] as? String == "locked_out" }.count == 2)
    }

    @Test func unknownUsersFailLikeWrongPasswords() async throws {
        let console = try Console()
        defer { console.remove() }
        try await console.app.test(.router) { client async throws in
            let page = try await client.execute(uri: "/login", method: .get)
            let cookie = "\(Responses.sessionCookie)=\(try #require(page.cookie(Responses.sessionCookie)))"
            let r = try await client.execute(uri: "/login", method: .post, headers: cookieHeaders(cookie, form: true),
                                             body: formBody(["_csrf": try #require(hiddenField("_csrf", in: page.text)), "username": "nobody", "password": "x"]))
            #expect(r.status == .unauthorized)
            #expect(r.text.contains("Wrong user name or password."))
        }
        let records = await console.control.records()
        #expect(records.contains { $0["event"] as? String == "admin_login" && $0["reason"] as? String == "unknown_user" })
    }

    @Test func formsWithoutTheCSRFTokenAreRefused() async throws {
        let console = try Console()
        defer { console.remove() }
        let (cookie, csrf) = console.session(.admin)
        try await console.app.test(.router) { client async throws in
            // The login form too.
            var r = try await client.execute(uri: "/login", method: .post, headers: cookieHeaders("x=y", form: true),
                                             body: formBody(["username": "admin", "password": console.initialPassword]))
            #expect(r.status == .forbidden)
            for (path, fields) in [("/ui/bans/add", ["kind": "ip", "value": "0.0.0.0/0"]), ("/ui/clients/kick", ["client_id": "sensor-1"]),
                                   ("/ui/users/create", ["name": "eve", "role": "admin"]), ("/logout", [:])] {
                r = try await client.execute(uri: path, method: .post, headers: cookieHeaders(cookie, form: true), body: formBody(fields))
                #expect(r.status == .forbidden, "\(path)")
                r = try await client.execute(uri: path, method: .post, headers: cookieHeaders(cookie, form: true),
                                             body: formBody(fields.merging(["_csrf": "wrong"]) { $1 }))
                #expect(r.status == .forbidden, "\(path)")
            }
            // The API with a session cookie needs the token in a header.
            var headers = cookieHeaders(cookie)
            headers[.contentType] = "application/json"
            r = try await client.execute(uri: "/api/v1/bans", method: .post, headers: headers, body: ByteBuffer(string: #"{"ip":"192.0.2.3"}"#))
            #expect(r.status == .forbidden)
            headers[HTTPField.Name("X-CSRF-Token")!] = csrf
            r = try await client.execute(uri: "/api/v1/bans", method: .post, headers: headers, body: ByteBuffer(string: #"{"ip":"192.0.2.3"}"#))
            #expect(r.status == .created)
            // A form with the right token goes through.
            r = try await client.execute(uri: "/ui/bans/add", method: .post, headers: cookieHeaders(cookie, form: true),
                                         body: formBody(["_csrf": csrf, "kind": "ip", "value": "192.0.2.4"]))
            #expect(r.status == .seeOther)
            #expect(r.headers[.location] == "/ui/bans?msg=banned")
        }
        #expect(Set(console.control.banList.list().map(\.subject.value)) == ["192.0.2.3", "192.0.2.4"])
        #expect(console.state.users.user(named: "eve") == nil)
    }

    @Test(arguments: [AdminRole.viewer, .operator, .admin])
    func everyPageByRole(_ role: AdminRole) async throws {
        let console = try Console()
        defer { console.remove() }
        let (cookie, _) = console.session(role)
        try await console.app.test(.router) { client async throws in
            for page in Self.pages {
                let anonymous = try await client.execute(uri: page.path, method: .get)
                #expect(anonymous.status == .seeOther && anonymous.headers[.location] == "/login", "\(page.path)")
                let r = try await client.execute(uri: page.path, method: .get, headers: cookieHeaders(cookie))
                #expect(r.status == (role.includes(page.role) ? .ok : .forbidden), "\(page.path) as \(role)")
                #expect(r.headers[.contentType] == "text/html; charset=utf-8")
                if role.includes(page.role) {
                    #expect(r.text.contains("<nav>"), "\(page.path)")
                    #expect(r.text.contains("name=\"_csrf\""), "\(page.path)")
                    #expect(r.text.contains("/ui/users") == role.includes(.admin), "\(page.path)")
                }
            }
            let clients = try await client.execute(uri: "/ui/clients", method: .get, headers: cookieHeaders(cookie))
            #expect(clients.text.contains("Kick") == role.includes(.operator))
        }
    }

    @Test func pagesEscapeWhatClientsChose() async throws {
        let console = try Console()
        defer { console.remove() }
        let (cookie, _) = console.session(.admin)
        try await console.app.test(.router) { client async throws in
            let r = try await client.execute(uri: "/ui/clients", method: .get, headers: cookieHeaders(cookie))
            #expect(!r.text.contains("<script>"))
            #expect(r.text.contains("&lt;script&gt;x&lt;/script&gt;"))
            let retained = try await client.execute(uri: "/ui/retained?filter=%22%3E%3Cscript%3E", method: .get, headers: cookieHeaders(cookie))
            #expect(!retained.text.contains("<script>"))
            // Missing values render as nothing, not as "nil" or "Optional(…)".
            for page in Self.pages {
                let r = try await client.execute(uri: page.path, method: .get, headers: cookieHeaders(cookie))
                #expect(!r.text.contains(">nil<") && !r.text.contains("Optional("), "\(page.path)")
            }
            let login = try await client.execute(uri: "/login", method: .get)
            #expect(!login.text.contains("nil") && !login.text.contains("Optional("))
            // Notices are chosen by code, never echoed.
            let notice = try await client.execute(uri: "/ui/bans?msg=%3Cb%3Ehi", method: .get, headers: cookieHeaders(cookie))
            #expect(!notice.text.contains("<b>hi"))
        }
    }

    @Test func operatorsActThroughFormsAndAdminsManageUsers() async throws {
        let console = try Console()
        defer { console.remove() }
        let op = console.session(.operator)
        let admin = console.session(.admin)
        try await console.app.test(.router) { client async throws in
            var r = try await client.execute(uri: "/ui/clients/kick", method: .post, headers: cookieHeaders(op.cookie, form: true),
                                             body: formBody(["_csrf": op.csrf, "client_id": "sensor-1"]))
            #expect(r.headers[.location] == "/ui/clients?msg=kicked")
            r = try await client.execute(uri: "/ui/users/create", method: .post, headers: cookieHeaders(op.cookie, form: true),
                                         body: formBody(["_csrf": op.csrf, "name": "eve", "role": "admin"]))
            #expect(r.status == .forbidden)
            r = try await client.execute(uri: "/ui/users/create", method: .post, headers: cookieHeaders(admin.cookie, form: true),
                                         body: formBody(["_csrf": admin.csrf, "name": "carol", "role": "operator"]))
            #expect(r.status == .ok)
            #expect(r.text.contains("id=\"new-secret\""))
            r = try await client.execute(uri: "/ui/tokens/create", method: .post, headers: cookieHeaders(admin.cookie, form: true),
                                         body: formBody(["_csrf": admin.csrf, "name": "ci", "role": "viewer", "days": "7"]))
            #expect(r.status == .ok)
            #expect(r.text.contains("bst_"))
            r = try await client.execute(uri: "/logout", method: .post, headers: cookieHeaders(admin.cookie, form: true), body: formBody(["_csrf": admin.csrf]))
            #expect(r.status == .seeOther)
            #expect(r.headers[.setCookie]?.contains("Max-Age=0") == true)
            #expect(try await client.execute(uri: "/ui/users", method: .get, headers: cookieHeaders(admin.cookie)).status == .seeOther)
        }
        #expect(console.control.kicked.withLock { $0 } == ["sensor-1"])
        #expect(console.state.users.user(named: "carol")?.role == .operator)
        #expect(console.state.users.user(named: "eve") == nil)
        let actions = await console.control.records().filter { $0["event"] as? String == "admin_action" }.compactMap { $0["action"] as? String }
        #expect(actions == ["client_kick", "user_create", "user_create", "token_create", "logout"])
    }

    @Test func sessionsExpire() async throws {
        let console = try Console()
        defer { console.remove() }
        let (cookie, _) = console.session(.viewer)
        try await console.app.test(.router) { client async throws in
            #expect(try await client.execute(uri: "/ui/overview", method: .get, headers: cookieHeaders(cookie)).status == .ok)
            console.clock.advance(31 * 60)  // idle too long
            #expect(try await client.execute(uri: "/ui/overview", method: .get, headers: cookieHeaders(cookie)).status == .seeOther)
        }
    }

    @Test func directoryGroupsMapToTheHighestRole() throws {
        let ldap = LDAPLoginConfiguration(
            directory: .init(url: .init(scheme: .ldap, host: "127.0.0.1"), userLookup: .bindDNTemplate("uid=%u,dc=x")),
            roleMap: ["viewers": .viewer, "Operators": .operator, "admins": .admin])
        #expect(ldap.role(for: ["viewers"]) == .viewer)
        #expect(ldap.role(for: ["viewers", "operators"]) == .operator)
        #expect(ldap.role(for: ["ADMINS", "viewers"]) == .admin)
        #expect(ldap.role(for: ["staff"]) == nil)
    }

    @Test func topicTreeNestsLevels() {
        let rows = TopicTree.rows([
            SubscriptionSummary(client_id: "a", filter: "plant/+/temp", qos: 0, share_group: nil, connected: true),
            SubscriptionSummary(client_id: "b", filter: "plant/line1/#", qos: 0, share_group: nil, connected: true),
        ])
        #expect(rows.map { $0["level"] as? String } == ["plant", "+", "temp", "line1", "#"])
        #expect(rows.map { $0["depth"] as? Int } == [0, 1, 2, 1, 2])
    }
}
