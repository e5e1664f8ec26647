import Hummingbird
import Mustache

protocol OptionalValue {
    var wrapped: Any? { get }
}

extension Optional: OptionalValue {
    var wrapped: Any? { self.map { $0 as Any } }
}

/// The web UI's Mustache templates, compiled into the binary rather than shipped as resource
/// files: the broker is one executable that can be copied anywhere, with no bundle to locate at
/// run time, and a template can never be edited out from under a running console. `{{name}}`
/// escapes HTML (the default, kept everywhere); the only `{{{raw}}}` values are the page body
/// (itself rendered from these templates) and SVG drawn from numbers (`Sparkline`, `QRCode`).
enum Pages {
    static let library: MustacheLibrary = {
        var library = MustacheLibrary()
        for (name, text) in templates {
            do {
                try library.register(text, named: name)
            } catch {
                preconditionFailure("template \(name) does not parse: \(error)")
            }
        }
        return library
    }()

    static func render(_ name: String, _ context: [String: Any]) -> String {
        library.render(withoutNils(context), withTemplate: name) ?? ""
    }

    /// Mustache unwraps optional fields of structs but not optional values in dictionaries (it
    /// would print "nil" or "Optional(…)"), so they are unwrapped, and missing ones dropped, first.
    static func withoutNils(_ value: Any) -> Any {
        if let dictionary = value as? [String: Any] {
            var out: [String: Any] = [:]
            for (key, element) in dictionary {
                if let optional = element as? any OptionalValue {
                    if let wrapped = optional.wrapped { out[key] = withoutNils(wrapped) }
                    continue
                }
                out[key] = withoutNils(element)
            }
            return out
        }
        if let array = value as? [[String: Any]] { return array.map(withoutNils) }
        return value
    }

    /// A full page: `body` rendered with `context`, inside the layout with navigation for `role`.
    static func page(_ name: String, title: String, context: [String: Any], user: String?, role: AdminRole?, csrf: String?) -> String {
        var context = context
        context["csrf"] = csrf
        let body = render(name, context)
        var layout: [String: Any] = ["title": title, "body": body, "csrf": csrf as Any]
        if let user, let role {
            layout["user"] = user
            layout["role"] = role.rawValue
            layout["nav"] = navigation(for: role, current: name)
        }
        return render("layout", layout)
    }

    static func navigation(for role: AdminRole, current: String) -> [[String: Any]] {
        var items: [(String, String, String)] = [
            ("overview", "/ui/overview", "Overview"), ("clients", "/ui/clients", "Clients"), ("sessions", "/ui/sessions", "Sessions"),
            ("subscriptions", "/ui/subscriptions", "Topics"), ("retained", "/ui/retained", "Retained"), ("acl", "/ui/acl", "ACL"),
            ("bans", "/ui/bans", "Bans"), ("audit", "/ui/audit", "Audit log"),
        ]
        if role.includes(.admin) { items.append(("users", "/ui/users", "Users")) }
        return items.map { ["href": $0.1, "label": $0.2, "current": $0.0 == current] }
    }

    static func errorPage(status: HTTPResponse.Status, message: String) -> String {
        render("layout", ["title": "\(status.code) \(status.reasonPhrase)",
                          "body": render("error", ["status": "\(status.code) \(status.reasonPhrase)", "message": message])])
    }

    static let templates: [String: String] = [
        "layout": """
            <!doctype html>
            <html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
            <title>{{title}} · Bastion</title><link rel="stylesheet" href="/ui/style.css"><link rel="icon" href="data:,"></head>
            <body><header><span class="brand">Bastion</span>
            {{#user}}<nav>{{#nav}}<a href="{{href}}"{{#current}} class="current" aria-current="page"{{/current}}>{{label}}</a>{{/nav}}</nav>
            <form method="post" action="/logout" class="logout"><input type="hidden" name="_csrf" value="{{csrf}}">
            <span>{{user}} ({{role}})</span> <button type="submit">Log out</button></form>{{/user}}
            </header><main><h1>{{title}}</h1>{{{body}}}</main></body></html>
            """,
        "error": """
            <p class="error">{{status}}: {{message}}</p><p><a href="/ui/overview">Back to the overview</a></p>
            """,
        "login": """
            {{#error}}<p class="error">{{error}}</p>{{/error}}
            <form method="post" action="/login" class="card narrow">
            <input type="hidden" name="_csrf" value="{{csrf}}">
            <label>User name <input name="username" autocomplete="username" required autofocus value="{{username}}"></label>
            <label>Password <input name="password" type="password" autocomplete="current-password" required></label>
            <button type="submit">Log in</button></form>
            """,
        "code": """
            {{#error}}<p class="error">{{error}}</p>{{/error}}
            <form method="post" action="/login/code" class="card narrow">
            <input type="hidden" name="_csrf" value="{{csrf}}">
            <label>Code from your authenticator app <input name="code" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9]{6}" required autofocus></label>
            <button type="submit">Verify</button></form>
            """,
        "enrol": """
            <p>Before going on, set up two-factor authentication. Scan the code with an authenticator app
            (or type the key), then enter the six-digit code it shows.</p>
            {{#error}}<p class="error">{{error}}</p>{{/error}}
            <div class="card narrow"><div class="qr">{{{qr}}}</div>
            <p>Key: <code id="totp-secret">{{secret}}</code></p>
            <form method="post" action="/login/enrol">
            <input type="hidden" name="_csrf" value="{{csrf}}">
            <label>Code <input name="code" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9]{6}" required autofocus></label>
            <button type="submit">Enable two-factor authentication</button></form></div>
            """,
        "overview": """
            <section class="cards">
            <div class="card"><h2>Connections</h2><p class="big">{{stats.clients_connected}}</p>{{{connections}}}<p class="muted">maximum {{stats.clients_maximum}}, offline sessions {{stats.sessions_offline}}</p></div>
            <div class="card"><h2>Messages in /s</h2><p class="big">{{rateIn}}</p>{{{received}}}<p class="muted">{{stats.messages_received}} received</p></div>
            <div class="card"><h2>Messages out /s</h2><p class="big">{{rateOut}}</p>{{{sent}}}<p class="muted">{{stats.messages_sent}} sent, {{stats.messages_dropped}} dropped</p></div>
            </section>
            <p class="muted">bastion {{stats.version}} · up {{stats.uptime_seconds}} s · {{stats.subscriptions}} subscriptions · {{stats.retained_messages}} retained · store {{#stats.store_healthy}}healthy{{/stats.store_healthy}}{{^stats.store_healthy}}<strong>failing</strong>{{/stats.store_healthy}}</p>
            <h2>Alerts</h2>
            {{#hasAlerts}}<table><thead><tr><th>When</th><th>Kind</th><th>Count</th><th>Threshold</th><th>Subject</th></tr></thead><tbody>
            {{#alerts}}<tr><td>{{at}}</td><td>{{kind}}</td><td>{{count}}</td><td>{{threshold}}</td><td>{{subject}}</td></tr>{{/alerts}}</tbody></table>{{/hasAlerts}}
            {{^alerts}}<p class="muted">No alerts.</p>{{/alerts}}
            """,
        "clients": """
            {{#message}}<p class="notice">{{message}}</p>{{/message}}
            <table><thead><tr><th>Client id</th><th>Identity</th><th>Address</th><th>Protocol</th><th>Listener</th><th>TLS</th><th>Subscriptions</th>{{#canOperate}}<th></th>{{/canOperate}}</tr></thead><tbody>
            {{#clients}}<tr><td>{{client_id}}</td><td>{{identity}}</td><td>{{address}}</td><td>{{protocol_version}}</td><td>{{listener}}</td><td>{{tls}}</td>
            <td>{{#subscriptions}}<code>{{.}}</code> {{/subscriptions}}</td>
            {{#canOperate}}<td><form method="post" action="/ui/clients/kick"><input type="hidden" name="_csrf" value="{{csrf}}"><input type="hidden" name="client_id" value="{{client_id}}"><button type="submit">Kick</button></form></td>{{/canOperate}}</tr>{{/clients}}
            </tbody></table>{{^clients}}<p class="muted">No clients connected.</p>{{/clients}}
            """,
        "sessions": """
            <table><thead><tr><th>Client id</th><th>Owner</th><th>Connected</th><th>Persistent</th><th>Queued</th><th>Subscriptions</th></tr></thead><tbody>
            {{#sessions}}<tr><td>{{client_id}}</td><td>{{owner}}</td><td>{{#connected}}yes{{/connected}}{{^connected}}no{{/connected}}</td><td>{{#persistent}}yes{{/persistent}}{{^persistent}}no{{/persistent}}</td><td>{{queued_messages}}</td><td>{{subscriptions}}</td></tr>{{/sessions}}
            </tbody></table>{{^sessions}}<p class="muted">No sessions.</p>{{/sessions}}
            """,
        "subscriptions": """
            <p class="muted">Topic filters subscribed to, as a tree by level.</p>
            <ul class="tree">{{#rows}}<li class="depth-{{depth}}"><code>{{level}}</code>{{#hasSubscribers}} <span class="muted">— {{#subscribers}}{{.}} {{/subscribers}}</span>{{/hasSubscribers}}</li>{{/rows}}</ul>
            {{^rows}}<p class="muted">No subscriptions.</p>{{/rows}}
            """,
        "retained": """
            {{#message}}<p class="notice">{{message}}</p>{{/message}}{{#error}}<p class="error">{{error}}</p>{{/error}}
            <form method="get" action="/ui/retained" class="inline"><label>Filter <input name="filter" value="{{filter}}"></label> <button type="submit">Show</button></form>
            <table><thead><tr><th>Topic</th><th>QoS</th><th>Bytes</th><th>Payload</th>{{#canOperate}}<th></th>{{/canOperate}}</tr></thead><tbody>
            {{#retained}}<tr><td><code>{{topic}}</code></td><td>{{qos}}</td><td>{{bytes}}</td><td>{{preview}}</td>
            {{#canOperate}}<td><form method="post" action="/ui/retained/delete"><input type="hidden" name="_csrf" value="{{csrf}}"><input type="hidden" name="topic" value="{{topic}}"><button type="submit">Clear</button></form></td>{{/canOperate}}</tr>{{/retained}}
            </tbody></table>{{^retained}}<p class="muted">No retained messages match.</p>{{/retained}}
            """,
        "acl": """
            {{#message}}<p class="notice">{{message}}</p>{{/message}}
            <form method="get" action="/ui/acl" class="card">
            <label>User name <input name="username" value="{{query.username}}"></label>
            <label>Client id <input name="client_id" value="{{query.client_id}}"></label>
            <label>Topic <input name="topic" value="{{query.topic}}" required></label>
            <label>Action <select name="action">{{#actions}}<option value="{{value}}"{{#selected}} selected{{/selected}}>{{value}}</option>{{/actions}}</select></label>
            <button type="submit">Check</button></form>
            {{#result}}<p class="{{#allowed}}allowed{{/allowed}}{{^allowed}}denied{{/allowed}}" id="acl-result">{{#allowed}}Allowed{{/allowed}}{{^allowed}}Denied{{/allowed}} by <code>{{rule}}</code></p>{{/result}}
            {{#error}}<p class="error">{{error}}</p>{{/error}}
            <h2>Lint</h2>{{#warnings}}<p class="warning">{{.}}</p>{{/warnings}}{{^warnings}}<p class="muted">No warnings.</p>{{/warnings}}
            {{#canAdmin}}<form method="post" action="/ui/acl/reload"><input type="hidden" name="_csrf" value="{{csrf}}"><button type="submit">Reload ACL and password file</button></form>{{/canAdmin}}
            """,
        "bans": """
            {{#message}}<p class="notice">{{message}}</p>{{/message}}{{#error}}<p class="error">{{error}}</p>{{/error}}
            <table><thead><tr><th>Type</th><th>Subject</th><th>Origin</th><th>Expires</th><th>Note</th>{{#canOperate}}<th></th>{{/canOperate}}</tr></thead><tbody>
            {{#bans}}<tr><td>{{type}}</td><td>{{value}}</td><td>{{origin}}</td><td>{{#permanent}}never{{/permanent}}{{^permanent}}{{expires_at}}{{/permanent}}</td><td>{{note}}</td>
            {{#canOperate}}<td><form method="post" action="/ui/bans/remove"><input type="hidden" name="_csrf" value="{{csrf}}"><input type="hidden" name="type" value="{{type}}"><input type="hidden" name="value" value="{{value}}"><button type="submit">Lift</button></form></td>{{/canOperate}}</tr>{{/bans}}
            </tbody></table>{{^bans}}<p class="muted">No bans.</p>{{/bans}}
            {{#canOperate}}<h2>Add a ban</h2><form method="post" action="/ui/bans/add" class="card">
            <input type="hidden" name="_csrf" value="{{csrf}}">
            <label>Kind <select name="kind"><option value="ip">IP address or CIDR</option><option value="user">User name</option><option value="client_id">Client id</option></select></label>
            <label>Subject <input name="value" required></label>
            <label>Duration (seconds, empty: until lifted) <input name="duration" inputmode="numeric"></label>
            <label>Reason <input name="reason"></label>
            <button type="submit">Ban</button></form>{{/canOperate}}
            """,
        "audit": """
            <form method="get" action="/ui/audit" class="inline">
            <label>Event <input name="event" value="{{event}}"></label> <label>Containing <input name="contains" value="{{contains}}"></label>
            <button type="submit">Filter</button></form>
            {{#hasLines}}<pre class="audit">{{#lines}}{{.}}
            {{/lines}}</pre>{{/hasLines}}{{^lines}}<p class="muted">No records (is audit.path set?).</p>{{/lines}}
            """,
        "users": """
            {{#message}}<p class="notice">{{message}}</p>{{/message}}{{#error}}<p class="error">{{error}}</p>{{/error}}
            {{#secret}}<p class="notice">{{secretLabel}}: <code id="new-secret">{{secret}}</code> — shown only now.</p>{{/secret}}
            <h2>Users</h2>
            <table><thead><tr><th>Name</th><th>Role</th><th>TOTP</th><th></th></tr></thead><tbody>
            {{#users}}<tr><td>{{name}}</td><td>{{role}}</td><td>{{#totp}}enrolled{{/totp}}{{^totp}}not yet{{/totp}}</td>
            <td><form method="post" action="/ui/users/delete" class="inline"><input type="hidden" name="_csrf" value="{{csrf}}"><input type="hidden" name="name" value="{{name}}"><button type="submit">Delete</button></form>
            <form method="post" action="/ui/users/reset-totp" class="inline"><input type="hidden" name="_csrf" value="{{csrf}}"><input type="hidden" name="name" value="{{name}}"><button type="submit">Reset TOTP</button></form></td></tr>{{/users}}
            </tbody></table>
            <form method="post" action="/ui/users/create" class="card"><input type="hidden" name="_csrf" value="{{csrf}}">
            <label>Name <input name="name" required></label>
            <label>Role <select name="role"><option>viewer</option><option>operator</option><option>admin</option></select></label>
            <button type="submit">Create user</button></form>
            <h2>API tokens</h2>
            <table><thead><tr><th>Name</th><th>Role</th><th>Expires</th><th>Created by</th><th></th></tr></thead><tbody>
            {{#tokens}}<tr><td>{{name}}</td><td>{{role}}</td><td>{{expires_at}}</td><td>{{created_by}}</td>
            <td><form method="post" action="/ui/tokens/delete"><input type="hidden" name="_csrf" value="{{csrf}}"><input type="hidden" name="id" value="{{id}}"><button type="submit">Revoke</button></form></td></tr>{{/tokens}}
            </tbody></table>
            <form method="post" action="/ui/tokens/create" class="card"><input type="hidden" name="_csrf" value="{{csrf}}">
            <label>Name <input name="name" required></label>
            <label>Role <select name="role"><option>viewer</option><option>operator</option><option>admin</option></select></label>
            <label>Days valid <input name="days" value="90" inputmode="numeric"></label>
            <button type="submit">Create token</button></form>
            {{#hasCertificates}}<h2>Certificates</h2><table><thead><tr><th>Listener</th><th>Subject</th><th>Issuer</th><th>Expires</th><th>Days left</th></tr></thead><tbody>
            {{#certificates}}<tr><td>{{listener}}</td><td>{{subject}}</td><td>{{issuer}}</td><td>{{not_after}}</td><td>{{days_left}}</td></tr>{{/certificates}}</tbody></table>{{/hasCertificates}}
            {{#canReload}}<form method="post" action="/ui/config/reload"><input type="hidden" name="_csrf" value="{{csrf}}"><button type="submit">Reload configuration</button></form>{{/canReload}}
            """,
    ]

    static let css = """
        :root{--fg:#0f172a;--muted:#64748b;--line:#e2e8f0;--accent:#2563eb;--bad:#b91c1c;--good:#15803d}
        *{box-sizing:border-box}body{margin:0;font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;color:var(--fg);background:#f1f5f9}
        header{display:flex;flex-wrap:wrap;align-items:center;gap:1rem;padding:.5rem 1rem;background:#0f172a;color:#fff}
        .brand{font-weight:700;letter-spacing:.05em}nav{display:flex;flex-wrap:wrap;gap:.25rem;flex:1}
        nav a{color:#cbd5e1;text-decoration:none;padding:.25rem .5rem;border-radius:4px}nav a.current,nav a:hover{background:#1e293b;color:#fff}
        .logout{display:flex;align-items:center;gap:.5rem;margin:0}main{padding:1rem 1.5rem;max-width:1200px}
        h1{font-size:1.4rem;margin:.5rem 0 1rem}h2{font-size:1.05rem;margin:1.2rem 0 .5rem}
        table{border-collapse:collapse;width:100%;background:#fff;border:1px solid var(--line)}th,td{text-align:left;padding:.35rem .5rem;border-bottom:1px solid var(--line);vertical-align:top}
        th{background:#f8fafc;font-weight:600}code{font-family:ui-monospace,Menlo,monospace;font-size:.9em}
        .cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(260px,1fr));gap:1rem}
        .card{background:#fff;border:1px solid var(--line);border-radius:6px;padding:1rem;margin-bottom:1rem}.card h2{margin-top:0}
        .narrow{max-width:420px}.big{font-size:2rem;font-weight:700;margin:.2rem 0}.muted{color:var(--muted)}
        label{display:block;margin:.4rem 0}input,select{display:block;width:100%;max-width:420px;padding:.35rem;border:1px solid #cbd5e1;border-radius:4px;font:inherit}
        .inline{display:inline-block;margin:0 .25rem .5rem 0}.inline label{display:inline-block}.inline input{display:inline-block;width:auto}
        button{padding:.35rem .8rem;border:0;border-radius:4px;background:var(--accent);color:#fff;font:inherit;cursor:pointer}
        header button{background:#334155}.error{color:var(--bad);font-weight:600}.denied{color:var(--bad);font-weight:600}.allowed{color:var(--good);font-weight:600}
        .notice{background:#ecfdf5;border:1px solid #a7f3d0;padding:.5rem;border-radius:4px}.warning{color:#a16207}
        pre.audit{background:#fff;border:1px solid var(--line);padding:.5rem;overflow-x:auto;font-size:12px}
        .qr svg{display:block;margin:0 auto}.chart{display:block;margin:.3rem 0}
        ul.tree{list-style:none;padding:0;background:#fff;border:1px solid var(--line)}ul.tree li{padding:.15rem .5rem;border-bottom:1px solid var(--line)}
        .depth-0{padding-left:.5rem}.depth-1{padding-left:1.5rem!important}.depth-2{padding-left:2.5rem!important}.depth-3{padding-left:3.5rem!important}
        .depth-4{padding-left:4.5rem!important}.depth-5{padding-left:5.5rem!important}.depth-6{padding-left:6.5rem!important}.depth-7{padding-left:7.5rem!important}
        """
}
