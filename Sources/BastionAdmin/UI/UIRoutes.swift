import BastionLDAP
import BastionSecurity
import Foundation
import HTTPTypes
import Hummingbird

/// The server-rendered web UI: login (password, then TOTP or its enrolment), the pages, and the
/// forms they post. Every form carries the session's CSRF token; every action redirects to a
/// fixed page of the console (never to a caller-supplied URL).
enum UIRoutes {
    static func register(_ router: Router<AdminRequestContext>, _ state: AdminState) {
        router.get("/") { _, context -> Response in
            context.principal?.method == .session ? Responses.redirect("/ui/overview") : Responses.redirect("/login")
        }
        router.get("ui/style.css") { _, _ -> Response in
            var response = Responses.text(.ok, Pages.css, contentType: "text/css; charset=utf-8")
            response.headers[.cacheControl] = "max-age=3600"
            return response
        }
        LoginRoutes.register(router, state)
        PageRoutes.register(router, state)
    }
}

/// Login, TOTP, enrolment, logout.
enum LoginRoutes {
    static func register(_ router: Router<AdminRequestContext>, _ state: AdminState) {
        router.get("login") { _, context -> Response in
            if context.principal?.method == .session { return Responses.redirect("/ui/overview") }
            return loginPage(state, context: context, error: nil, username: "", status: .ok)
        }
        router.post("login") { request, context -> Response in
            guard let form = await Bodies.form(request), let session = context.webSession, session.stage == .anonymous,
                  constantTimeEqual(Array((form["_csrf"] ?? "").utf8), Array(session.csrf.utf8)) else {
                return Responses.error(.forbidden, "the login form expired or did not come from this console; reload the login page", api: false)
            }
            return await login(form["username"] ?? "", form["password"] ?? "", session: session, context, state)
        }
        router.get("login/code") { _, context -> Response in
            guard let session = context.webSession, session.stage == .needsCode else { return Responses.redirect("/login") }
            return Responses.html(.ok, Pages.page("code", title: "Two-factor authentication", context: [:], user: nil, role: nil, csrf: session.csrf))
        }
        router.post("login/code") { request, context -> Response in
            guard let form = await Bodies.form(request), let session = context.webSession, session.stage == .needsCode,
                  let user = session.user, constantTimeEqual(Array((form["_csrf"] ?? "").utf8), Array(session.csrf.utf8)) else {
                return Responses.error(.forbidden, "the form expired; log in again", api: false)
            }
            let address = context.remoteIP ?? "unknown"
            let now = state.clock.now()
            if let wait = state.throttle.retryAfter(user: user, address: address, now: now) {
                state.audit.record(.adminLogin(.init(remoteIP: context.remoteIP, user: user, method: .totp, outcome: .lockedOut,
                                                     reason: .tooManyFailures)))
                return Responses.html(.tooManyRequests, Pages.page("code", title: "Two-factor authentication",
                                                                   context: ["error": "Too many failed attempts; try again in \(Int(wait.rounded(.up))) seconds."],
                                                                   user: nil, role: nil, csrf: session.csrf))
            }
            guard let stored = state.users.user(named: user), let secret = stored.totpSecret,
                  state.totp.verify(code: form["code"] ?? "", secret: secret, user: user, now: now) else {
                state.throttle.failed(user: user, address: address, now: now)
                state.audit.record(.adminLogin(.init(remoteIP: context.remoteIP, user: user, method: .totp, outcome: .failure, reason: .badCode)))
                return Responses.html(.unauthorized, Pages.page("code", title: "Two-factor authentication",
                                                                context: ["error": "That code is not valid."], user: nil, role: nil, csrf: session.csrf))
            }
            state.throttle.succeeded(user: user)
            state.audit.record(.adminLogin(.init(remoteIP: context.remoteIP, user: user, method: .totp, outcome: .success, role: stored.role.rawValue)))
            return activate(session, user: user, role: stored.role, source: "password", state)
        }
        router.get("login/enrol") { _, context -> Response in
            guard let session = context.webSession, case .enrolling(let secret) = session.stage, let user = session.user else {
                return Responses.redirect("/login")
            }
            return enrolPage(secret: secret, user: user, csrf: session.csrf, error: nil, status: .ok)
        }
        router.post("login/enrol") { request, context -> Response in
            guard let form = await Bodies.form(request), let session = context.webSession, case .enrolling(let secret) = session.stage,
                  let user = session.user, constantTimeEqual(Array((form["_csrf"] ?? "").utf8), Array(session.csrf.utf8)) else {
                return Responses.error(.forbidden, "the form expired; log in again", api: false)
            }
            guard let stored = state.users.user(named: user),
                  state.totp.verify(code: form["code"] ?? "", secret: secret, user: user, now: state.clock.now()) else {
                state.audit.record(.adminLogin(.init(remoteIP: context.remoteIP, user: user, method: .totp, outcome: .failure, reason: .badCode)))
                return enrolPage(secret: secret, user: user, csrf: session.csrf, error: "That code is not valid; check the app's clock.", status: .unauthorized)
            }
            do {
                try state.users.setTOTP(secret, for: user)
            } catch {
                return Responses.error(.badRequest, "cannot save the TOTP secret: \(error)", api: false)
            }
            // The generated first password has served its purpose once its owner has a second factor.
            if user == "admin" { try? FileManager.default.removeItem(atPath: state.configuration.initialPasswordFile) }
            let principal = AdminPrincipal(name: user, role: stored.role, method: .session)
            state.record(principal, context, .totpEnrol, target: user, outcome: .success)
            state.audit.record(.adminLogin(.init(remoteIP: context.remoteIP, user: user, method: .totp, outcome: .success, role: stored.role.rawValue)))
            return activate(session, user: user, role: stored.role, source: "password", state)
        }
        router.post("logout") { request, context -> Response in
            guard let form = await Bodies.form(request), let session = context.webSession,
                  constantTimeEqual(Array((form["_csrf"] ?? "").utf8), Array(session.csrf.utf8)) else {
                return Responses.error(.forbidden, "the form expired; reload the page", api: false)
            }
            state.sessions.remove(session.id)
            if let principal = context.principal { state.record(principal, context, .logout, target: nil, outcome: .success) }
            return Responses.redirect("/login", cookie: Responses.clearedSessionCookie)
        }
    }

    static func loginPage(_ state: AdminState, context: AdminRequestContext, error: String?, username: String,
                          status: HTTPResponse.Status) -> Response {
        // Reuse the pre-login session, or start one to carry the form's CSRF token.
        let session: WebSessionStore.Session
        if let existing = context.webSession, existing.stage == .anonymous {
            session = existing
        } else {
            session = state.sessions.create(stage: .anonymous, user: nil, role: nil, source: nil, now: state.clock.now())
        }
        var response = Responses.html(status, Pages.page("login", title: "Log in", context: ["error": error as Any, "username": username],
                                                         user: nil, role: nil, csrf: session.csrf))
        response.headers[.setCookie] = Responses.sessionCookie(session.id, maxAge: Int(WebSessionStore.anonymousLifetime))
        return response
    }

    static func enrolPage(secret: String, user: String, csrf: String, error: String?, status: HTTPResponse.Status) -> Response {
        let uri = TOTPVerifier.provisioningURI(secret: secret, user: user)
        let qr = (try? QRCode(text: uri).svg(scale: 4)) ?? ""
        return Responses.html(status, Pages.page("enrol", title: "Set up two-factor authentication",
                                                 context: ["qr": qr, "secret": TOTPVerifier.base32(secret), "error": error as Any],
                                                 user: nil, role: nil, csrf: csrf))
    }

    /// A fresh session id at every step up: an id seen before login is never one that is logged in.
    static func advance(_ old: WebSessionStore.Session, to stage: WebSessionStore.Stage, user: String, role: AdminRole?, source: String,
                        _ state: AdminState) -> WebSessionStore.Session {
        state.sessions.remove(old.id)
        return state.sessions.create(stage: stage, user: user, role: role, source: source, now: state.clock.now())
    }

    static func activate(_ old: WebSessionStore.Session, user: String, role: AdminRole, source: String, _ state: AdminState) -> Response {
        let session = advance(old, to: .active, user: user, role: role, source: source, state)
        return Responses.redirect("/ui/overview", cookie: Responses.sessionCookie(session.id, maxAge: state.sessions.cookieLifetime))
    }

    static func login(_ username: String, _ password: String, session: WebSessionStore.Session, _ context: AdminRequestContext,
                      _ state: AdminState) async -> Response {
        let address = context.remoteIP ?? "unknown"
        let now = state.clock.now()
        let user = String(username.prefix(256))
        func failed(_ reason: AuditEvent.AdminLogin.Reason, method: AuditEvent.AdminLogin.Method, count: Bool = true,
                    status: HTTPResponse.Status = .unauthorized, message: String = "Wrong user name or password.") -> Response {
            if count { state.throttle.failed(user: user, address: address, now: now) }
            state.audit.record(.adminLogin(.init(remoteIP: context.remoteIP, user: user, method: method, outcome: .failure, reason: reason)))
            return loginPage(state, context: context, error: message, username: user, status: status)
        }
        if let wait = state.throttle.retryAfter(user: user, address: address, now: now) {
            state.audit.record(.adminLogin(.init(remoteIP: context.remoteIP, user: user, method: .password, outcome: .lockedOut,
                                                 reason: .tooManyFailures)))
            return loginPage(state, context: context, error: "Too many failed logins; try again in \(Int(wait.rounded(.up))) seconds.",
                             username: user, status: .tooManyRequests)
        }
        guard !user.isEmpty, !password.isEmpty else { return failed(.badPassword, method: .password) }

        if let local = state.users.user(named: user) {
            guard await state.verify(password, against: local.hash) else { return failed(.badPassword, method: .password) }
            state.audit.record(.adminLogin(.init(remoteIP: context.remoteIP, user: user, method: .password, outcome: .success,
                                                 role: local.role.rawValue)))
            if local.totpEnrolled {
                let next = advance(session, to: .needsCode, user: user, role: local.role, source: "password", state)
                return Responses.redirect("/login/code", cookie: Responses.sessionCookie(next.id, maxAge: Int(WebSessionStore.anonymousLifetime)))
            }
            let next = advance(session, to: .enrolling(secret: TOTPVerifier.newSecret()), user: user, role: local.role, source: "password", state)
            return Responses.redirect("/login/enrol", cookie: Responses.sessionCookie(next.id, maxAge: Int(WebSessionStore.anonymousLifetime)))
        }
        guard let directory = state.directory, let ldap = state.configuration.ldap, AdminUserStore.isValidName(user) else {
            // As costly as a wrong password, so a user name's existence does not show in the timing.
            _ = await state.verify(password, against: state.unmatchable)
            return failed(.unknownUser, method: .password)
        }
        switch await directory.authenticate(username: user, password: password) {
        case .authenticated(_, let groups):
            guard let role = ldap.role(for: groups) else {
                return failed(.noRole, method: .ldap, count: false, status: .forbidden,
                              message: "Your directory account has no role in this console.")
            }
            state.throttle.succeeded(user: user)
            state.audit.record(.adminLogin(.init(remoteIP: context.remoteIP, user: user, method: .ldap, outcome: .success, role: role.rawValue)))
            return activate(session, user: user, role: role, source: "ldap", state)
        case .invalidCredentials:
            return failed(.badPassword, method: .ldap)
        case .unavailable(let why):
            state.logger.warning("directory unavailable for an admin login", metadata: ["reason": "\(why)"])
            return failed(.directoryUnavailable, method: .ldap, count: false, status: .serviceUnavailable,
                          message: "The directory cannot be reached; try again later.")
        }
    }
}
