import BastionSecurity
import Foundation
import HTTPTypes
import Hummingbird

/// The console's pages (GET) and the forms they post.
enum PageRoutes {
    typealias PageBody = @Sendable (Request, AdminRequestContext, AdminPrincipal, WebSessionStore.Session) async -> Response

    /// Fixed notices shown after a redirect, chosen by code: nothing from the query string is
    /// echoed into a page.
    static let notices: [String: String] = [
        "kicked": "The client was disconnected.", "not-connected": "That client is not connected.",
        "cleared": "The retained message was cleared.", "no-retained": "No retained message on that topic.",
        "banned": "The ban is in force.", "lifted": "The ban was lifted.", "no-ban": "There is no such ban.",
        "configured": "That ban is in the configuration file; edit the file and reload.",
        "reloaded": "Reloaded.", "reload-failed": "The reload was rejected; the running configuration stays (see the audit log).",
        "deleted": "Deleted.", "reset": "The user enrols TOTP again at the next login.", "failed": "That did not work; see the audit log.",
    ]

    static func register(_ router: Router<AdminRequestContext>, _ state: AdminState) {
        let control = state.control

        /// A page for a logged-in browser with at least `role`.
        func page(_ path: RouterPath, _ role: AdminRole, _ body: @escaping PageBody) {
            router.get(path) { request, context -> Response in
                guard let principal = context.principal, principal.method == .session, let session = context.webSession else {
                    return Responses.redirect("/login")
                }
                guard principal.role.includes(role) else {
                    return Responses.error(.forbidden, "this page needs the \(role.rawValue) role", api: false)
                }
                return await body(request, context, principal, session)
            }
        }

        /// A form post: logged in, the session's CSRF token, at least `role` (refusals audited).
        func form(_ path: RouterPath, _ role: AdminRole, _ action: AuditEvent.AdminAction.Action,
                  _ body: @escaping @Sendable ([String: String], AdminRequestContext, AdminPrincipal, WebSessionStore.Session) async -> Response) {
            router.post(path) { request, context -> Response in
                guard let principal = context.principal, principal.method == .session, let session = context.webSession else {
                    return Responses.redirect("/login")
                }
                guard let fields = await Bodies.form(request),
                      constantTimeEqual(Array((fields["_csrf"] ?? "").utf8), Array(session.csrf.utf8)) else {
                    return Responses.error(.forbidden, "the form expired or did not come from this console; reload the page", api: false)
                }
                guard principal.role.includes(role) else {
                    state.record(principal, context, action, target: nil, outcome: .denied, detail: "needs role \(role.rawValue)")
                    return Responses.error(.forbidden, "this needs the \(role.rawValue) role", api: false)
                }
                return await body(fields, context, principal, session)
            }
        }

        @Sendable func render(_ name: String, _ title: String, _ context: [String: Any], _ principal: AdminPrincipal,
                    _ session: WebSessionStore.Session, status: HTTPResponse.Status = .ok) -> Response {
            Responses.html(status, Pages.page(name, title: title, context: context, user: principal.name, role: principal.role, csrf: session.csrf))
        }

        @Sendable func notice(_ request: Request) -> String? { Query.dictionary(request)["msg"].flatMap { notices[$0] } }

        page("ui/overview", .viewer) { _, _, principal, session in
            let samples = state.history.all
            let stats = control.stats()
            let connections = samples.map { Double($0.stats.clients_connected) } + [Double(stats.clients_connected)]
            let received = StatsHistory.rates(samples, \.messages_received)
            let sent = StatsHistory.rates(samples, \.messages_sent)
            let alerts = control.alerts(limit: 20).reversed().map {
                ["at": $0.at, "kind": $0.kind, "count": $0.count, "threshold": $0.threshold, "subject": $0.subject as Any] as [String: Any]
            }
            return render("overview", "Overview", [
                "stats": stats, "connections": Sparkline.svg(connections), "received": Sparkline.svg(received), "sent": Sparkline.svg(sent),
                "rateIn": Sparkline.format(received.last ?? 0), "rateOut": Sparkline.format(sent.last ?? 0),
                "alerts": alerts, "hasAlerts": !alerts.isEmpty,
            ], principal, session)
        }
        page("ui/clients", .viewer) { request, _, principal, session in
            let clients = await control.clients(limit: 1000)
            return render("clients", "Clients", ["clients": clients, "canOperate": principal.role.includes(.operator),
                                                 "message": notice(request) as Any], principal, session)
        }
        form("ui/clients/kick", .operator, .clientKick) { fields, context, principal, _ in
            let id = fields["client_id"] ?? ""
            let kicked = await control.kick(clientID: id)
            state.record(principal, context, .clientKick, target: id, outcome: kicked ? .success : .failure, detail: kicked ? nil : "not connected")
            return kicked ? Responses.redirect("/ui/clients?msg=kicked") : Responses.redirect("/ui/clients?msg=not-connected")
        }
        page("ui/sessions", .viewer) { _, _, principal, session in
            render("sessions", "Sessions", ["sessions": await control.sessions(limit: 1000)], principal, session)
        }
        page("ui/subscriptions", .viewer) { _, _, principal, session in
            render("subscriptions", "Topics", ["rows": TopicTree.rows(await control.subscriptions(limit: 5000))], principal, session)
        }
        page("ui/retained", .viewer) { request, _, principal, session in
            let filter = Query.dictionary(request)["filter"] ?? "#"
            let list = await control.retained(filter: filter, limit: 500)
            return render("retained", "Retained messages", [
                "filter": filter, "retained": list ?? [], "canOperate": principal.role.includes(.operator),
                "error": (list == nil ? "'\(filter)' is not a valid topic filter." : nil) as Any, "message": notice(request) as Any,
            ], principal, session, status: list == nil ? .badRequest : .ok)
        }
        form("ui/retained/delete", .operator, .retainedDelete) { fields, context, principal, _ in
            let topic = fields["topic"] ?? ""
            let outcome = await control.deleteRetained(topic: topic)
            state.record(principal, context, .retainedDelete, target: topic, outcome: outcome == .deleted ? .success : .failure)
            return outcome == .deleted ? Responses.redirect("/ui/retained?msg=cleared") : Responses.redirect("/ui/retained?msg=no-retained")
        }
        page("ui/acl", .viewer) { request, _, principal, session in
            let q = Query.dictionary(request)
            let action = ACLQuery.Action(rawValue: q["action"] ?? "publish") ?? .publish
            var context: [String: Any] = [
                "query": ["username": q["username"] ?? "", "client_id": q["client_id"] ?? "", "topic": q["topic"] ?? ""],
                "actions": ACLQuery.Action.allCases.map { ["value": $0.rawValue, "selected": $0 == action] as [String: Any] },
                "warnings": control.lintACL(), "canAdmin": principal.role.includes(.admin), "message": notice(request) as Any,
            ]
            if let topic = q["topic"], !topic.isEmpty {
                let result = control.checkACL(ACLQuery(username: q["username"].flatMap { $0.isEmpty ? nil : $0 }, client_id: q["client_id"] ?? "",
                                                       topic: topic, action: action))
                context["result"] = ["allowed": result.allowed, "rule": result.rule] as [String: Any]
            }
            return render("acl", "ACL checker", context, principal, session)
        }
        form("ui/acl/reload", .admin, .aclReload) { _, context, principal, _ in
            let outcome = await control.reloadACL()
            state.record(principal, context, .aclReload, target: nil, outcome: outcome.ok ? .success : .failure, detail: outcome.error)
            return outcome.ok ? Responses.redirect("/ui/acl?msg=reloaded") : Responses.redirect("/ui/acl?msg=reload-failed")
        }
        form("ui/config/reload", .admin, .configReload) { _, context, principal, _ in
            let outcome = await control.reloadConfig()
            state.record(principal, context, .configReload, target: nil, outcome: outcome.ok ? .success : .failure, detail: outcome.error)
            return outcome.ok ? Responses.redirect("/ui/users?msg=reloaded") : Responses.redirect("/ui/users?msg=reload-failed")
        }
        page("ui/bans", .viewer) { request, _, principal, session in
            let bans = bansList(state)
            return render("bans", "Bans", ["bans": bans, "canOperate": principal.role.includes(.operator), "message": notice(request) as Any],
                          principal, session)
        }
        form("ui/bans/add", .operator, .banAdd) { fields, context, principal, session in
            guard let bans = control.bans else { return Responses.error(.notFound, "bans are disabled", api: false) }
            let value = (fields["value"] ?? "").trimmingCharacters(in: .whitespaces)
            var request = BanAPI.BanRequest(reason: fields["reason"].flatMap { $0.isEmpty ? nil : $0 })
            switch fields["kind"] {
            case "user": request.user = value
            case "client_id": request.client_id = value
            default: if value.contains("/") { request.cidr = value } else { request.ip = value }
            }
            if let text = fields["duration"], !text.isEmpty {
                guard let seconds = Double(text) else {
                    return render("bans", "Bans", ["bans": bansList(state), "canOperate": true, "error": "The duration is a number of seconds."],
                                  principal, session, status: .badRequest)
                }
                request.duration_seconds = seconds
            }
            let response = BanHandlers.add(request, principal: principal, context, bans: bans, state)
            switch response.status {
            case .created: return Responses.redirect("/ui/bans?msg=banned")
            case .conflict: return Responses.redirect("/ui/bans?msg=configured")
            default:
                return render("bans", "Bans", ["bans": bansList(state), "canOperate": true,
                                               "error": "That is not a valid subject or duration."], principal, session, status: .badRequest)
            }
        }
        form("ui/bans/remove", .operator, .banRemove) { fields, context, _, _ in
            let kinds = ["ip": "ip", "cidr": "cidr", "username": "user", "client_id": "client_id"]
            guard let kind = kinds[fields["type"] ?? ""], let value = fields["value"] else { return Responses.redirect("/ui/bans?msg=no-ban") }
            let response = BanHandlers.remove(query: [kind: value], context, state)
            switch response.status {
            case .ok: return Responses.redirect("/ui/bans?msg=lifted")
            case .conflict: return Responses.redirect("/ui/bans?msg=configured")
            default: return Responses.redirect("/ui/bans?msg=no-ban")
            }
        }
        page("ui/audit", .viewer) { request, _, principal, session in
            let q = Query.dictionary(request)
            let event = q["event"] ?? "", contains = q["contains"] ?? ""
            let lines = await control.auditTail(AuditQuery(event: event.isEmpty ? nil : event, contains: contains.isEmpty ? nil : contains, limit: 200))
            return render("audit", "Audit log", ["lines": Array(lines.reversed()), "hasLines": !lines.isEmpty, "event": event, "contains": contains],
                          principal, session)
        }
        page("ui/users", .admin) { request, _, principal, session in
            render("users", "Users", usersContext(state, extra: ["message": notice(request) as Any]), principal, session)
        }
        form("ui/users/create", .admin, .userCreate) { fields, context, principal, session in
            guard let role = AdminRole(rawValue: fields["role"] ?? "") else {
                return render("users", "Users", usersContext(state, extra: ["error": "Pick a role."]), principal, session, status: .badRequest)
            }
            let name = fields["name"] ?? ""
            switch await UserHandlers.createUser(name: name, role: role, password: nil, principal, context, state) {
            case .success(let password):
                return render("users", "Users", usersContext(state, extra: ["secret": password, "secretLabel": "Password of \(name)"]),
                              principal, session)
            case .failure:
                return render("users", "Users", usersContext(state, extra: ["error": "That user cannot be created (a name of letters, digits and . _ @ -, not taken)."]),
                              principal, session, status: .badRequest)
            }
        }
        form("ui/users/delete", .admin, .userDelete) { fields, context, principal, _ in
            let response = UserHandlers.deleteUser(fields["name"] ?? "", principal, context, state)
            return response.status == .ok ? Responses.redirect("/ui/users?msg=deleted") : Responses.redirect("/ui/users?msg=failed")
        }
        form("ui/users/reset-totp", .admin, .userTOTPReset) { fields, context, principal, _ in
            let response = UserHandlers.resetTOTP(fields["name"] ?? "", principal, context, state)
            return response.status == .ok ? Responses.redirect("/ui/users?msg=reset") : Responses.redirect("/ui/users?msg=failed")
        }
        form("ui/tokens/create", .admin, .tokenCreate) { fields, context, principal, session in
            let name = fields["name"] ?? ""
            guard let role = AdminRole(rawValue: fields["role"] ?? ""), let days = Double(fields["days"] ?? "90") else {
                return render("users", "Users", usersContext(state, extra: ["error": "Pick a role and a number of days."]), principal, session,
                              status: .badRequest)
            }
            switch UserHandlers.createToken(name: name, role: role, days: days, principal, context, state) {
            case .success(let (_, text)):
                return render("users", "Users", usersContext(state, extra: ["secret": text, "secretLabel": "Token \(name)"]), principal, session)
            case .failure:
                return render("users", "Users", usersContext(state, extra: ["error": "That token cannot be created (name, role, 1 to 366 days)."]),
                              principal, session, status: .badRequest)
            }
        }
        form("ui/tokens/delete", .admin, .tokenDelete) { fields, context, principal, _ in
            let response = UserHandlers.deleteToken(fields["id"] ?? "", principal, context, state)
            return response.status == .ok ? Responses.redirect("/ui/users?msg=deleted") : Responses.redirect("/ui/users?msg=failed")
        }
    }

    static func bansList(_ state: AdminState) -> [BanAPI.Ban] {
        guard let bans = state.control.bans else { return [] }
        let now = SystemLimitClock().now()
        let wall = Int64(state.clock.now() * 1000)
        return bans.list().map { BanAPI.Ban($0, now: now, wallMilliseconds: wall) }
    }

    static func usersContext(_ state: AdminState, extra: [String: Any]) -> [String: Any] {
        var context: [String: Any] = [
            "users": state.users.list().map { ["name": $0.name, "role": $0.role.rawValue, "totp": $0.totpEnrolled] as [String: Any] },
            "tokens": state.tokens.list().map { UserHandlers.view($0) },
            "certificates": state.control.certificates(), "hasCertificates": !state.control.certificates().isEmpty, "canReload": true,
        ]
        context.merge(extra) { $1 }
        return context
    }
}

/// Subscriptions as a tree of topic levels, flattened into rows with a depth for the page.
enum TopicTree {
    final class Node {
        var children: [String: Node] = [:]
        var subscribers: [String] = []
    }

    static func rows(_ subscriptions: [SubscriptionSummary]) -> [[String: Any]] {
        let root = Node()
        for s in subscriptions {
            var node = root
            let levels = (s.share_group.map { ["$share/\($0)"] } ?? []) + s.filter.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
            for level in levels {
                let next = node.children[level] ?? Node()
                node.children[level] = next
                node = next
            }
            node.subscribers.append(s.client_id)
        }
        var rows: [[String: Any]] = []
        func walk(_ node: Node, depth: Int) {
            for key in node.children.keys.sorted() {
                let child = node.children[key]!
                rows.append(["level": key.isEmpty ? "(empty)" : key, "depth": min(depth, 7), "subscribers": child.subscribers.sorted(),
                             "hasSubscribers": !child.subscribers.isEmpty])
                walk(child, depth: depth + 1)
            }
        }
        walk(root, depth: 0)
        return rows
    }
}
