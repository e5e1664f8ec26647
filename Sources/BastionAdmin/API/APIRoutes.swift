import BastionSecurity
import Foundation
import HTTPTypes
import Hummingbird

/// One route of the REST API: what the OpenAPI document lists and the role it needs (nil: none).
public struct APIRouteSpec: Sendable, Hashable {
    public var method: String
    public var path: String
    public var role: AdminRole?
    public var summary: String
}

/// `/api/v1`: JSON in and out. Unknown routes 404, bad input 400 with a message, no or a wrong
/// token 401, too small a role 403.
enum APIRoutes {
    static let prefix = "/api/v1"

    /// Every route, in the order the OpenAPI document lists them.
    static let specs: [APIRouteSpec] = [
        .init(method: "GET", path: "/api/v1/openapi.json", role: nil, summary: "This document"),
        .init(method: "GET", path: "/api/v1/whoami", role: .viewer, summary: "The caller's name and role"),
        .init(method: "GET", path: "/api/v1/stats", role: .viewer, summary: "Broker counters"),
        .init(method: "GET", path: "/api/v1/clients", role: .viewer, summary: "Connected clients"),
        .init(method: "POST", path: "/api/v1/clients/kick", role: .operator, summary: "Disconnect a client: {\"client_id\": ...}"),
        .init(method: "GET", path: "/api/v1/sessions", role: .viewer, summary: "Sessions with owner and offline queue depth"),
        .init(method: "GET", path: "/api/v1/subscriptions", role: .viewer, summary: "Subscriptions"),
        .init(method: "GET", path: "/api/v1/retained", role: .viewer, summary: "Retained messages matching ?filter= (default #)"),
        .init(method: "DELETE", path: "/api/v1/retained", role: .operator, summary: "Clear the retained message of ?topic="),
        .init(method: "GET", path: "/api/v1/bans", role: .viewer, summary: "Bans in force"),
        .init(method: "POST", path: "/api/v1/bans", role: .operator, summary: "Add a ban"),
        .init(method: "DELETE", path: "/api/v1/bans", role: .operator, summary: "Lift a ban (?ip=, ?cidr=, ?user=, ?client_id=)"),
        .init(method: "GET", path: "/api/v1/acl/check", role: .viewer, summary: "Decide ?username=&client_id=&topic=&action= and name the rule"),
        .init(method: "GET", path: "/api/v1/acl/lint", role: .viewer, summary: "Lint warnings of the ACL in force"),
        .init(method: "POST", path: "/api/v1/acl/reload", role: .admin, summary: "Re-read the password file and the ACL"),
        .init(method: "POST", path: "/api/v1/config/reload", role: .admin, summary: "Re-read the configuration"),
        .init(method: "GET", path: "/api/v1/audit", role: .viewer, summary: "Newest audit records (?event=&contains=&limit=)"),
        .init(method: "GET", path: "/api/v1/alerts", role: .viewer, summary: "Alerts raised since start"),
        .init(method: "GET", path: "/api/v1/bridges", role: .viewer, summary: "Bridge links (404 until a bridge provider is installed)"),
        .init(method: "GET", path: "/api/v1/sparkplug", role: .viewer, summary: "Sparkplug inventory: groups, edge nodes, devices, host applications, counters"),
        .init(method: "GET", path: "/api/v1/sparkplug/nodes", role: .viewer, summary: "Sparkplug edge nodes (404 until a provider is installed)"),
        .init(method: "GET", path: "/api/v1/certificates", role: .admin, summary: "TLS certificates served"),
        .init(method: "GET", path: "/api/v1/users", role: .admin, summary: "Console users"),
        .init(method: "POST", path: "/api/v1/users", role: .admin, summary: "Create a user: {\"name\", \"role\"}; answers the generated password once"),
        .init(method: "DELETE", path: "/api/v1/users/{name}", role: .admin, summary: "Delete a user"),
        .init(method: "POST", path: "/api/v1/users/{name}/role", role: .admin, summary: "Change a user's role: {\"role\"}"),
        .init(method: "POST", path: "/api/v1/users/{name}/reset-totp", role: .admin, summary: "Make a user enrol TOTP again"),
        .init(method: "GET", path: "/api/v1/tokens", role: .admin, summary: "API tokens"),
        .init(method: "POST", path: "/api/v1/tokens", role: .admin, summary: "Create a token: {\"name\", \"role\", \"expires_days\"}; answers it once"),
        .init(method: "DELETE", path: "/api/v1/tokens/{id}", role: .admin, summary: "Revoke a token"),
    ]

    struct Error: Encodable {
        var error: String
    }

    static func register(_ router: Router<AdminRequestContext>, _ state: AdminState) {
        let control = state.control
        let api = router.group("api/v1")

        /// Registers `body` behind the role check.
        func on(_ method: HTTPRequest.Method, _ path: RouterPath, _ role: AdminRole, action: AuditEvent.AdminAction.Action? = nil,
                _ body: @escaping @Sendable (Request, AdminRequestContext, AdminPrincipal) async -> Response) {
            api.on(path, method: method) { request, context -> Response in
                if let refusal = Authorization.check(context, request, role: role, state: state, action: action) { return refusal }
                guard let principal = context.principal else { return Responses.error(.unauthorized, "authentication required", api: true) }
                return await body(request, context, principal)
            }
        }

        api.get("openapi.json") { _, _ -> Response in
            Responses.text(.ok, OpenAPIDocument.json(), contentType: "application/json")
        }
        on(.get, "whoami", .viewer) { _, _, principal in
            Responses.json(.ok, ["name": principal.name, "role": principal.role.rawValue, "via": principal.method.rawValue])
        }
        on(.get, "stats", .viewer) { _, _, _ in Responses.json(.ok, control.stats()) }
        on(.get, "clients", .viewer) { request, _, _ in Responses.json(.ok, await control.clients(limit: Query.limit(request))) }
        on(.post, "clients/kick", .operator, action: .clientKick) { request, context, principal in
            struct Kick: Decodable { var client_id: String }
            let kick: Kick
            switch await Bodies.json(Kick.self, request) {
            case .success(let k): kick = k
            case .failure(let response): return response
            }
            let kicked = await control.kick(clientID: kick.client_id)
            state.record(principal, context, .clientKick, target: kick.client_id, outcome: kicked ? .success : .failure,
                         detail: kicked ? nil : "not connected")
            return kicked ? Responses.json(.ok, ["kicked": kick.client_id])
                : Responses.error(.notFound, "no connected client with that id", api: true)
        }
        on(.get, "sessions", .viewer) { request, _, _ in Responses.json(.ok, await control.sessions(limit: Query.limit(request))) }
        on(.get, "subscriptions", .viewer) { request, _, _ in Responses.json(.ok, await control.subscriptions(limit: Query.limit(request))) }
        on(.get, "retained", .viewer) { request, _, _ in
            let filter = Query.dictionary(request)["filter"] ?? "#"
            guard let list = await control.retained(filter: filter, limit: Query.limit(request)) else {
                return Responses.error(.badRequest, "'\(filter)' is not a valid topic filter", api: true)
            }
            return Responses.json(.ok, list)
        }
        on(.delete, "retained", .operator, action: .retainedDelete) { request, context, principal in
            guard let topic = Query.dictionary(request)["topic"], !topic.isEmpty else {
                return Responses.error(.badRequest, "name the topic: ?topic=", api: true)
            }
            switch await control.deleteRetained(topic: topic) {
            case .deleted:
                state.record(principal, context, .retainedDelete, target: topic, outcome: .success)
                return Responses.json(.ok, ["deleted": topic])
            case .notFound:
                state.record(principal, context, .retainedDelete, target: topic, outcome: .failure, detail: "no retained message")
                return Responses.error(.notFound, "no retained message on that topic", api: true)
            case .invalidTopic:
                return Responses.error(.badRequest, "'\(topic)' is not a topic name (no wildcards)", api: true)
            }
        }
        on(.get, "bans", .viewer) { _, _, _ in BanHandlers.list(state) }
        on(.post, "bans", .operator, action: .banAdd) { request, context, _ in await BanHandlers.add(request, context, state) }
        on(.delete, "bans", .operator, action: .banRemove) { request, context, _ in
            BanHandlers.remove(query: Query.dictionary(request), context, state)
        }
        on(.get, "acl/check", .viewer) { request, _, _ in
            let q = Query.dictionary(request)
            guard let topic = q["topic"], !topic.isEmpty else { return Responses.error(.badRequest, "name the topic: ?topic=", api: true) }
            guard let action = ACLQuery.Action(rawValue: q["action"] ?? "") else {
                return Responses.error(.badRequest, "action must be publish, subscribe or read", api: true)
            }
            let query = ACLQuery(username: q["username"].flatMap { $0.isEmpty ? nil : $0 }, client_id: q["client_id"] ?? "",
                                 certificate: q["certificate"].flatMap { $0.isEmpty ? nil : $0 }, topic: topic, action: action)
            return Responses.json(.ok, control.checkACL(query))
        }
        on(.get, "acl/lint", .viewer) { _, _, _ in Responses.json(.ok, ["warnings": control.lintACL()]) }
        on(.post, "acl/reload", .admin, action: .aclReload) { _, context, principal in
            let outcome = await control.reloadACL()
            state.record(principal, context, .aclReload, target: nil, outcome: outcome.ok ? .success : .failure, detail: outcome.error)
            return Responses.json(outcome.ok ? .ok : .badRequest, outcome)
        }
        on(.post, "config/reload", .admin, action: .configReload) { _, context, principal in
            let outcome = await control.reloadConfig()
            state.record(principal, context, .configReload, target: nil, outcome: outcome.ok ? .success : .failure, detail: outcome.error)
            return Responses.json(outcome.ok ? .ok : .badRequest, outcome)
        }
        on(.get, "audit", .viewer) { request, _, _ in
            let q = Query.dictionary(request)
            let lines = await control.auditTail(AuditQuery(event: q["event"].flatMap { $0.isEmpty ? nil : $0 },
                                                           contains: q["contains"].flatMap { $0.isEmpty ? nil : $0 },
                                                           limit: Query.limit(request, default: 100, maximum: 1000)))
            return Responses.text(.ok, "[" + lines.joined(separator: ",") + "]\n", contentType: "application/json")
        }
        on(.get, "alerts", .viewer) { request, _, _ in Responses.json(.ok, control.alerts(limit: Query.limit(request))) }
        on(.get, "bridges", .viewer) { _, _, _ in
            guard let provider = control.bridges else { return Responses.error(.notFound, "bridges are not configured", api: true) }
            return Responses.json(.ok, await provider.bridges())
        }
        on(.get, "sparkplug", .viewer) { _, _, _ in
            guard let provider = control.sparkplug else { return Responses.error(.notFound, "Sparkplug is not configured", api: true) }
            return Responses.text(.ok, await provider.inventoryJSON() + "\n", contentType: "application/json")
        }
        on(.get, "sparkplug/nodes", .viewer) { _, _, _ in
            guard let provider = control.sparkplug else { return Responses.error(.notFound, "Sparkplug is not configured", api: true) }
            return Responses.json(.ok, await provider.edgeNodes())
        }
        on(.get, "certificates", .admin) { _, _, _ in Responses.json(.ok, control.certificates()) }
        UserHandlers.register(on, state)
    }
}

/// Users and tokens (role admin).
enum UserHandlers {
    struct UserView: Encodable {
        var name: String
        var role: String
        var totp_enrolled: Bool
    }

    struct TokenView: Encodable {
        var id: String
        var name: String
        var role: String
        var expires_at: String
        var created_by: String
        /// Only in the answer that creates it.
        var token: String?
    }

    static func view(_ t: APITokenStore.Token, token: String? = nil) -> TokenView {
        TokenView(id: t.id, name: t.name, role: t.role.rawValue, expires_at: RFC3339.format(millisecondsSinceEpoch: Int64(t.expires * 1000)),
                  created_by: t.createdBy, token: token)
    }

    typealias On = (HTTPRequest.Method, RouterPath, AdminRole, AuditEvent.AdminAction.Action?,
                    @escaping @Sendable (Request, AdminRequestContext, AdminPrincipal) async -> Response) -> Void

    static func register(_ on: On, _ state: AdminState) {
        on(.get, "users", .admin, nil) { _, _, _ in
            Responses.json(.ok, state.users.list().map { UserView(name: $0.name, role: $0.role.rawValue, totp_enrolled: $0.totpEnrolled) })
        }
        on(.post, "users", .admin, .userCreate) { request, context, principal in
            struct Create: Decodable { var name: String; var role: AdminRole; var password: String? }
            let create: Create
            switch await Bodies.json(Create.self, request) {
            case .success(let c): create = c
            case .failure(let response): return response
            }
            switch await createUser(name: create.name, role: create.role, password: create.password, principal, context, state) {
            case .success(let password):
                return Responses.json(.created, ["name": create.name, "role": create.role.rawValue, "password": password])
            case .failure(let response):
                return response
            }
        }
        on(.delete, "users/{name}", .admin, .userDelete) { _, context, principal in
            let name = context.parameters.get("name") ?? ""
            return deleteUser(name, principal, context, state)
        }
        on(.post, "users/{name}/role", .admin, .userRole) { request, context, principal in
            struct Change: Decodable { var role: AdminRole }
            let name = context.parameters.get("name") ?? ""
            let change: Change
            switch await Bodies.json(Change.self, request) {
            case .success(let c): change = c
            case .failure(let response): return response
            }
            return setRole(name, change.role, principal, context, state)
        }
        on(.post, "users/{name}/reset-totp", .admin, .userTOTPReset) { _, context, principal in
            resetTOTP(context.parameters.get("name") ?? "", principal, context, state)
        }
        on(.get, "tokens", .admin, nil) { _, _, _ in Responses.json(.ok, state.tokens.list().map { view($0) }) }
        on(.post, "tokens", .admin, .tokenCreate) { request, context, principal in
            struct Create: Decodable { var name: String; var role: AdminRole; var expires_days: Double? }
            let create: Create
            switch await Bodies.json(Create.self, request) {
            case .success(let c): create = c
            case .failure(let response): return response
            }
            switch createToken(name: create.name, role: create.role, days: create.expires_days ?? 90, principal, context, state) {
            case .success(let (token, text)): return Responses.json(.created, view(token, token: text))
            case .failure(let response): return response
            }
        }
        on(.delete, "tokens/{id}", .admin, .tokenDelete) { _, context, principal in
            deleteToken(context.parameters.get("id") ?? "", principal, context, state)
        }
    }

    // Shared with the Users page.

    static func createUser(name: String, role: AdminRole, password: String?, _ principal: AdminPrincipal, _ context: AdminRequestContext,
                           _ state: AdminState) async -> Checked<String> {
        guard AdminUserStore.isValidName(name) else {
            return .failure(Responses.error(.badRequest, "user names are 1 to 64 letters, digits and . _ @ -", api: true))
        }
        guard state.users.user(named: name) == nil else {
            return .failure(Responses.error(.conflict, "user \(name) exists", api: true))
        }
        if let password, password.count < 12 {
            return .failure(Responses.error(.badRequest, "passwords have at least 12 characters", api: true))
        }
        let chosen = password ?? PrivateFiles.randomPassword()
        do {
            let hash = try await state.makeHash(chosen)
            try state.users.put(.init(name: name, role: role, hash: hash, totpSecret: nil))
        } catch {
            state.record(principal, context, .userCreate, target: name, outcome: .failure, detail: "\(error)")
            return .failure(Responses.error(.badRequest, "cannot create the user: \(error)", api: true))
        }
        state.record(principal, context, .userCreate, target: name, outcome: .success, detail: "role \(role.rawValue)")
        return .success(chosen)
    }

    static func deleteUser(_ name: String, _ principal: AdminPrincipal, _ context: AdminRequestContext, _ state: AdminState) -> Response {
        guard let user = state.users.user(named: name) else { return Responses.error(.notFound, "no such user", api: true) }
        if user.role == .admin, state.users.list().filter({ $0.role == .admin }).count == 1 {
            state.record(principal, context, .userDelete, target: name, outcome: .failure, detail: "last admin")
            return Responses.error(.conflict, "the last admin cannot be deleted", api: true)
        }
        do {
            _ = try state.users.remove(name)
        } catch {
            return Responses.error(.badRequest, "\(error)", api: true)
        }
        state.sessions.removeAll(user: name)
        state.record(principal, context, .userDelete, target: name, outcome: .success)
        return Responses.json(.ok, ["deleted": name])
    }

    static func setRole(_ name: String, _ role: AdminRole, _ principal: AdminPrincipal, _ context: AdminRequestContext,
                        _ state: AdminState) -> Response {
        guard let user = state.users.user(named: name) else { return Responses.error(.notFound, "no such user", api: true) }
        if user.role == .admin, role != .admin, state.users.list().filter({ $0.role == .admin }).count == 1 {
            return Responses.error(.conflict, "the last admin keeps the admin role", api: true)
        }
        do {
            try state.users.setRole(role, for: name)
        } catch {
            return Responses.error(.badRequest, "\(error)", api: true)
        }
        state.sessions.removeAll(user: name)
        state.record(principal, context, .userRole, target: name, outcome: .success, detail: "role \(role.rawValue)")
        return Responses.json(.ok, ["name": name, "role": role.rawValue])
    }

    static func resetTOTP(_ name: String, _ principal: AdminPrincipal, _ context: AdminRequestContext, _ state: AdminState) -> Response {
        guard state.users.user(named: name) != nil else { return Responses.error(.notFound, "no such user", api: true) }
        do {
            try state.users.setTOTP(nil, for: name)
        } catch {
            return Responses.error(.badRequest, "\(error)", api: true)
        }
        state.sessions.removeAll(user: name)
        state.record(principal, context, .userTOTPReset, target: name, outcome: .success)
        return Responses.json(.ok, ["name": name, "totp_enrolled": "false"])
    }

    static func createToken(name: String, role: AdminRole, days: Double, _ principal: AdminPrincipal, _ context: AdminRequestContext,
                            _ state: AdminState) -> Checked<(APITokenStore.Token, String)> {
        guard AdminUserStore.isValidName(name) else {
            return .failure(Responses.error(.badRequest, "token names are 1 to 64 letters, digits and . _ @ -", api: true))
        }
        guard days.isFinite, days > 0, days <= 366 else {
            return .failure(Responses.error(.badRequest, "expires_days must be above 0 and at most 366", api: true))
        }
        do {
            let created = try state.tokens.create(name: name, role: role, lifetime: days * 86_400, createdBy: principal.name,
                                                  now: state.clock.now())
            state.record(principal, context, .tokenCreate, target: name, outcome: .success, detail: "role \(role.rawValue)")
            return .success(created)
        } catch {
            state.record(principal, context, .tokenCreate, target: name, outcome: .failure, detail: "\(error)")
            return .failure(Responses.error(.badRequest, "\(error)", api: true))
        }
    }

    static func deleteToken(_ id: String, _ principal: AdminPrincipal, _ context: AdminRequestContext, _ state: AdminState) -> Response {
        let removed = (try? state.tokens.remove(id: id)) ?? false
        state.record(principal, context, .tokenDelete, target: id, outcome: removed ? .success : .failure, detail: removed ? nil : "no such token")
        return removed ? Responses.json(.ok, ["deleted": id]) : Responses.error(.notFound, "no such token", api: true)
    }
}
