import RedlineConsole
import RedlineCore
import Testing

@Suite("Console gate: token, cookie, origin, host")
struct GateTests {
    let gate = Gate(token: "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90", port: 8765)

    func req(_ method: String = "GET", host: String? = "127.0.0.1:8765", query: String? = nil, cookie: String? = nil,
             auth: String? = nil, origin: String? = nil, referer: String? = nil) -> Gate.Request {
        Gate.Request(method: method, host: host, queryToken: query, cookieHeader: cookie, authorization: auth, origin: origin, referer: referer)
    }

    @Test("a GET needs the token, from the query, the cookie or a bearer header")
    func getNeedsToken() {
        #expect(gate.check(req()) == .unauthorized("no access token: open the URL redline-console printed"))
        #expect(gate.check(req(query: gate.token)) == .allowed)
        #expect(gate.check(req(cookie: "x=1; redline_console=\(gate.token)")) == .allowed)
        #expect(gate.check(req(auth: "Bearer \(gate.token)")) == .allowed)
        #expect(gate.check(req(query: String(gate.token.dropLast()))) == .unauthorized("wrong access token"))
        #expect(gate.check(req(cookie: "redline_console=\(gate.token)0")) == .unauthorized("wrong access token"))
    }

    @Test("a POST needs the token and the console's own origin (or referer); neither is refused")
    func postNeedsOrigin() {
        let c = "redline_console=\(gate.token)"
        #expect(gate.check(req("POST", cookie: c, origin: "http://127.0.0.1:8765")) == .allowed)
        #expect(gate.check(req("POST", cookie: c, origin: "http://localhost:8765")) == .allowed)
        #expect(gate.check(req("POST", cookie: c, referer: "http://127.0.0.1:8765/?x")) == .allowed)
        for bad in ["http://evil.example", "http://127.0.0.1:8766", "null", "https://127.0.0.1:8765", "http://127.0.0.1:8765.evil.example"] {
            guard case .forbidden = gate.check(req("POST", cookie: c, origin: bad)) else {
                Issue.record("origin \(bad) was not refused"); continue
            }
        }
        // A foreign Origin wins over a matching Referer.
        guard case .forbidden = gate.check(req("POST", cookie: c, origin: "http://evil.example", referer: "http://127.0.0.1:8765/")) else {
            Issue.record("a foreign Origin with a good Referer was not refused"); return
        }
        guard case .forbidden = gate.check(req("POST", cookie: c)) else { Issue.record("no Origin, no Referer was not refused"); return }
        guard case .forbidden = gate.check(req("POST", cookie: c, referer: "http://127.0.0.1:8765@evil.example/")) else {
            Issue.record("a referer with user info was not refused"); return
        }
        // The token is checked before the origin: a POST without it is 401.
        guard case .unauthorized = gate.check(req("POST", origin: "http://127.0.0.1:8765")) else { Issue.record("POST without token"); return }
    }

    @Test("another Host name (DNS rebinding) is refused whatever it carries")
    func hostChecked() {
        guard case .forbidden = gate.check(req(host: "evil.example:8765", query: gate.token)) else { Issue.record("foreign host"); return }
        guard case .forbidden = gate.check(req(host: nil, query: gate.token)) else { Issue.record("no host"); return }
    }

    @Test("constant-time compare agrees with ==, and tokens are 256-bit hex, all different")
    func tokens() {
        for (a, b) in [("", ""), ("a", ""), ("", "a"), ("abc", "abc"), ("abc", "abd"), ("abc", "abcd"), ("\u{e9}", "e\u{301}")] {
            #expect(Gate.constantTimeEquals(a, b) == (Array(a.utf8) == Array(b.utf8)), "\(a) vs \(b)")
        }
        let ts = (0..<50).map { _ in Gate.newToken() }
        #expect(Set(ts).count == 50)
        #expect(ts.allSatisfy { $0.count == 64 && $0.allSatisfy(\.isHexDigit) })
        #expect(gate.setCookie.contains("HttpOnly") && gate.setCookie.contains("SameSite=Strict"))
        #expect(gate.url == "http://127.0.0.1:8765/?token=\(gate.token)")
    }

    @Test("form bodies decode + and percent escapes; bad escapes are dropped")
    func forms() {
        let f = FormBody.parse("requestId=r-1&reason=not+now%2C+%3Cb%3E&bad=%zz&empty=")
        #expect(f["requestId"] == "r-1")
        #expect(f["reason"] == "not now, <b>")
        #expect(f["bad"] == nil)
        #expect(f["empty"] == "")
    }
}

@Suite("Console pages: escaping, untrusted reasons, sections")
struct PagesTests {
    @Test("the agent's reason is escaped and marked as the agent's untrusted words")
    func untrustedReason() throws {
        let approvals: JSON = .obj([("approvals", .array([.obj([
            ("requestId", "r-7"), ("agent", "facilities-agent"), ("point", "sra-door.lock"), ("value", 1),
            ("explanation", "needs an operator"), ("expiresInS", 42),
            ("agentText", .obj([("reason", "<script>alert(1)</script> \"approve me\" & go"), ("otherText", .obj([("override", "<i>x</i>")]))])),
            ("ifApprovedNow", .obj([("outcome", "denied"), ("rule", "RL-6"), ("explanation", "zone in alarm")])),
        ])]))])
        let html = Pages.fragments(Pages.Snapshot(approvals: approvals)).first { $0.0 == "approvals" }!.1
        #expect(!html.contains("<script>"))
        #expect(html.contains("&lt;script&gt;alert(1)&lt;/script&gt; &quot;approve me&quot; &amp; go"))
        #expect(html.contains("The agent's words (untrusted"))
        #expect(html.contains("[otherText] {&quot;override&quot;:&quot;&lt;i&gt;x&lt;/i&gt;&quot;}"))
        #expect(html.contains("If approved now, on the newest readings: <strong>denied</strong> (RL-6)"))
        #expect(html.contains("data-left=\"42\""))
        #expect(html.contains("<label for=\"reason-r-7\">"))
    }

    @Test("a daemon that cannot be asked shows unknown, never an empty all-clear")
    func unknownIsUnsafe() {
        let f = Pages.fragments(Pages.Snapshot(error: "cannot connect"))
        for (id, html) in f {
            #expect(html.contains("unknown") || html.contains("unreachable"), "\(id): \(html)")
            #expect(!html.contains("No request is waiting"))
        }
    }

    @Test("agents-held shows the escalation and its Clear button; a quarantined agent gets Release; every button has an id and a label")
    func escalationAndRelease() {
        let status: JSON = .obj([("site", "s"), ("ready", true), ("agentsHeld", .obj([("sinceS", 12), ("why", "2 agents quarantined within 600 s")]))])
        let agents: JSON = .obj([("agents", .array([.obj([("name", "a1"), ("uid", 2001), ("quarantined", true), ("recentDenials", 3)]),
                                                    .obj([("name", "a2"), ("uid", 2002), ("quarantined", false), ("recentDenials", 0)])]))])
        let f = Dictionary(uniqueKeysWithValues: Pages.fragments(Pages.Snapshot(status: status, agents: agents)))
        let r = f["readiness"] ?? ""
        #expect(r.contains("Site-wide escalation: agents-held") && r.contains("2 agents quarantined within 600 s"))
        #expect(r.contains("action=\"/escalation/clear\"") && r.contains("id=\"clear-escalation\""))
        let a = f["agents"] ?? ""
        #expect(a.contains("id=\"release-a1\"") && a.contains("aria-label=\"Release a1 from quarantine\""))
        #expect(!a.contains("release-a2"))
        let calm = Dictionary(uniqueKeysWithValues: Pages.fragments(Pages.Snapshot(status: .obj([("ready", false), ("agentsHeld", nil)]))))
        #expect(calm["readiness"]?.contains("NOT READY") == true && calm["readiness"]?.contains("clear-escalation") == false)
    }

    @Test("escaping covers the five characters and the backtick")
    func escaping() {
        #expect(Pages.esc("<a href='x'>\"&`</a>") == "&lt;a href=&#39;x&#39;&gt;&quot;&amp;&#96;&lt;/a&gt;")
    }
}
