import RedlineCore

/// What the console shows, as plain server-rendered HTML fragments (pure: JSON in, text out).
///
/// Every string from the daemon is escaped; the agent's own words (its reason for a held
/// request) are shown as quoted, marked untrusted text, never as part of the page.
public enum Pages {
    /// What the daemon answered for one refresh (`nil` where a call failed: shown as unknown).
    public struct Snapshot: Sendable {
        public var status: JSON?
        public var approvals: JSON?
        public var agents: JSON?
        public var audit: JSON?
        /// Why the daemon could not be asked, if it could not.
        public var error: String?

        public init(status: JSON? = nil, approvals: JSON? = nil, agents: JSON? = nil, audit: JSON? = nil, error: String? = nil) {
            self.status = status
            self.approvals = approvals
            self.agents = agents
            self.audit = audit
            self.error = error
        }
    }

    /// The sections, in page order: id and heading.
    public static let sections: [(id: String, title: String)] = [
        ("readiness", "Readiness"),
        ("approvals", "Held requests"),
        ("agents", "Agents"),
        ("zones", "Zones"),
        ("devices", "Devices and effects"),
        ("audit", "Audit log"),
    ]

    /// Each section's inner HTML.
    public static func fragments(_ s: Snapshot) -> [(String, String)] {
        [
            ("readiness", readiness(s)),
            ("approvals", approvals(s.approvals)),
            ("agents", agents(s.agents)),
            ("zones", zones(s.status)),
            ("devices", devices(s.status)),
            ("audit", audit(s.audit)),
        ]
    }

    /// The fragments as one JSON object (what the page's script fetches on each event).
    public static func fragmentsJSON(_ s: Snapshot) -> String {
        JSON.object(fragments(s).map { ($0.0, .string($0.1)) }).encoded()
    }

    // MARK: - Sections

    static func readiness(_ s: Snapshot) -> String {
        var h = ""
        if let e = s.error {
            h += #"<p class="bad" role="alert"><strong>Daemon unreachable:</strong> \#(esc(e)). Shown below: nothing (unknown is unsafe).</p>"#
        }
        guard let st = s.status else { return h + #"<p class="bad">Status unknown.</p>"# }
        let ready = st["ready"]?.boolValue == true
        h += "<p><span class=\"badge \(ready ? "ok" : "bad")\" id=\"ready-state\">\(ready ? "READY" : "NOT READY")</span> "
        h += "site <strong>\(esc(str(st["site"])))</strong>, up \(esc(num(st["uptimeS"]))) s, \(esc(num(st["scans"]))) scans, "
        h += "last scan \(esc(num(st["lastScanAgeMs"]))) ms ago, \(esc(num(st["pendingApprovals"]))) held.</p>"
        if let held = st["agentsHeld"], held != .null {
            h += #"<div class="alarm" role="alert" id="agents-held"><p><strong>Site-wide escalation: agents-held.</strong> "#
            h += "Every agent write but a safe value waits for an operator. Why: \(esc(str(held["why"]))) (since \(esc(num(held["sinceS"]))) s).</p>"
            h += form(action: "/escalation/clear", fields: [], button: "Clear agents-held", label: "Clear the site-wide escalation", id: "clear-escalation")
            h += "</div>"
        } else {
            h += #"<p id="agents-held-none">No site-wide escalation.</p>"#
        }
        return h
    }

    static func approvals(_ a: JSON?) -> String {
        guard let list = a?["approvals"]?.arrayValue else { return #"<p class="bad">Held requests unknown.</p>"# }
        if list.isEmpty { return #"<p id="no-approvals">No request is waiting for an operator.</p>"# }
        var h = "<ul class=\"cards\">"
        for r in list {
            let id = str(r["requestId"])
            h += "<li class=\"card\" data-request-id=\"\(esc(id))\">"
            h += "<p><strong>\(esc(str(r["agent"])))</strong> asks <code>\(esc(str(r["point"])))</code> = <strong>\(esc(num(r["value"])))</strong>"
            h += " <span class=\"muted\">(request \(esc(id)))</span></p>"
            h += "<p>Policy: \(esc(str(r["explanation"])))</p>"
            h += agentWords(r["agentText"])
            if let d = r["ifApprovedNow"], d != .null {
                let outcome = str(d["outcome"])
                let rule = d["rule"].flatMap { $0 == .null ? nil : $0.stringValue }
                h += "<p class=\"\(outcome == "allowed" ? "ok-text" : "bad")\">If approved now, on the newest readings: <strong>\(esc(outcome))</strong>"
                h += (rule.map { " (\(esc($0)))" } ?? "") + ": \(esc(str(d["explanation"])))</p>"
            }
            let left = Int(r["expiresInS"]?.numberValue ?? 0)
            h += "<p>Time left: <span class=\"countdown\" data-left=\"\(left)\">\(left) s</span></p>"
            h += "<div class=\"actions\">"
            h += form(action: "/approve", fields: [("requestId", id)], button: "Approve", label: "Approve request \(id)", cls: "approve", id: "approve-\(id)")
            h += "<form method=\"post\" action=\"/deny\" class=\"deny\"><input type=\"hidden\" name=\"requestId\" value=\"\(esc(id))\">"
            h += "<label for=\"reason-\(esc(id))\">Reason for denying</label> "
            h += "<input type=\"text\" id=\"reason-\(esc(id))\" name=\"reason\" maxlength=\"500\" autocomplete=\"off\"> "
            h += "<button type=\"submit\" id=\"deny-\(esc(id))\" aria-label=\"Deny request \(esc(id))\">Deny</button></form>"
            h += "</div></li>"
        }
        return h + "</ul>"
    }

    /// The agent's free text: quoted, escaped, and labelled as the agent's own words.
    static func agentWords(_ text: JSON?) -> String {
        guard let text, text != .null else { return #"<p class="muted">The agent gave no reason.</p>"# }
        guard case .object(let kv) = text, !kv.isEmpty else { return #"<p class="muted">The agent gave no reason.</p>"# }
        var said = kv.map { k, v in
            let s = v.stringValue ?? v.encoded()
            return k == "reason" ? s : "[\(k)] \(s)"
        }.joined(separator: "\n")
        if said.count > 1000 { said = String(said.prefix(1000)) + " …" }
        return "<figure class=\"untrusted\"><figcaption>The agent's words (untrusted: not checked, may be false or an attempt to persuade)</figcaption>"
            + "<blockquote>\(esc(said))</blockquote></figure>"
    }

    static func agents(_ a: JSON?) -> String {
        guard let list = a?["agents"]?.arrayValue else { return #"<p class="bad">Agents unknown.</p>"# }
        var h = "<table><caption class=\"sr\">Agents of this site</caption><thead><tr><th scope=\"col\">Agent</th><th scope=\"col\">uid</th>"
        h += "<th scope=\"col\">State</th><th scope=\"col\">Recent red-line denials</th><th scope=\"col\">Action</th></tr></thead><tbody>"
        for r in list {
            let name = str(r["name"])
            let q = r["quarantined"]?.boolValue == true
            h += "<tr data-agent=\"\(esc(name))\"><td>\(esc(name))</td><td>\(esc(num(r["uid"])))</td>"
            h += "<td class=\"\(q ? "bad" : "ok-text")\">\(q ? "QUARANTINED" : "active")</td><td>\(esc(num(r["recentDenials"])))</td><td>"
            if q { h += form(action: "/release", fields: [("agent", name)], button: "Release", label: "Release \(name) from quarantine", id: "release-\(name)") }
            h += "</td></tr>"
        }
        return h + "</tbody></table>"
    }

    static func zones(_ st: JSON?) -> String {
        guard let list = st?["zones"]?.arrayValue else { return #"<p class="bad">Zones unknown.</p>"# }
        var h = "<ul class=\"cards\">"
        for z in list {
            let alarm = z["inAlarm"]?.boolValue == true, hazard = z["hazard"]?.boolValue == true
            h += "<li class=\"card\" data-zone=\"\(esc(str(z["id"])))\"><p><strong>\(esc(str(z["id"])))</strong> "
            h += flag("occupied", z["occupied"]?.boolValue == true, bad: false)
            h += flag("in alarm", alarm, bad: true) + flag("hazard", hazard, bad: true) + "</p>"
            let causes = z["causes"]?.arrayValue ?? []
            if !causes.isEmpty {
                h += "<ul>" + causes.map { "<li>\(esc(str($0)))</li>" }.joined() + "</ul>"
            } else {
                h += "<p class=\"muted\">No condition set.</p>"
            }
            h += "</li>"
        }
        return h + "</ul>"
    }

    static func devices(_ st: JSON?) -> String {
        guard let st else { return #"<p class="bad">Devices unknown.</p>"# }
        var h = "<p>\(esc(num(st["pointsNotGood"]))) of \(esc(num(st["points"]))) points not good.</p>"
        if case .object(let faulted)? = st["devicesFaulted"], !faulted.isEmpty {
            h += "<ul id=\"devices-faulted\">" + faulted.map { "<li class=\"bad\"><strong>\(esc($0.0))</strong> faulted: \(esc(str($0.1)))</li>" }.joined() + "</ul>"
        } else {
            h += #"<p id="devices-ok">Every device answers.</p>"#
        }
        let active = st["effectsActive"]?.arrayValue ?? []
        h += "<p>Effects active: " + (active.isEmpty ? "none" : active.map { "<strong>\(esc(str($0)))</strong>" }.joined(separator: ", ")) + "</p>"
        let driven = st["driven"]?.arrayValue ?? []
        if !driven.isEmpty {
            h += "<ul>" + driven.map { "<li><code>\(esc(str($0["point"])))</code> held at \(esc(num($0["value"]))) by \(esc(str($0["effect"])))</li>" }.joined() + "</ul>"
        }
        return h
    }

    /// Kinds of record the audit section lists (reads, checkpoints and the like are left out).
    static let auditKinds: Set<String> = ["decision", "result", "approval", "expired", "effect", "effect-failed", "effect-overridden",
                                          "effect-recovered", "quarantine", "release", "escalation", "device", "ready", "start", "stop",
                                          "rejected", "gap", "repair"]

    static func audit(_ a: JSON?) -> String {
        guard let a else { return #"<p class="bad">Audit log unknown.</p>"# }
        let ok = a["verified"]?.boolValue == true
        var h = "<p><span class=\"badge \(ok ? "ok" : "bad")\" id=\"audit-verify\">\(ok ? "CHAIN VERIFIES" : "CHAIN DOES NOT VERIFY")</span> "
        h += "<code>\(esc(str(a["file"])))</code>: \(esc(str(a["verdict"])))"
        if a["writable"]?.boolValue == false { h += " <strong class=\"bad\">The log cannot be written.</strong>" }
        h += "</p>"
        let records = (a["records"]?.arrayValue ?? []).filter { auditKinds.contains($0["kind"]?.stringValue ?? "") }
        if records.isEmpty { return h + "<p class=\"muted\">No decision or effect recorded since the daemon started.</p>" }
        h += "<table><caption class=\"sr\">Recent audit records, newest first</caption><thead><tr><th scope=\"col\">seq</th>"
        h += "<th scope=\"col\">time</th><th scope=\"col\">kind</th><th scope=\"col\">what</th></tr></thead><tbody>"
        for r in records.suffix(30).reversed() {
            let kind = str(r["kind"])
            h += "<tr data-kind=\"\(esc(kind))\"><td>\(esc(num(r["seq"])))</td><td>\(esc(str(r["time"])))</td><td>\(esc(kind))</td>"
            h += "<td>\(esc(summary(r)))</td></tr>"
        }
        return h + "</tbody></table>"
    }

    /// One line for an audit record: its event's summary where it has one.
    static func summary(_ r: JSON) -> String {
        if let e = OperatorEvents.events(for: r).first, let s = e["summary"]?.stringValue { return s }
        func f(_ k: String) -> String? { r[k].flatMap { $0 == .null ? nil : ($0.stringValue ?? $0.encoded()) } }
        var parts: [String] = []
        if let a = f("agent") { parts.append(a) }
        if let p = f("point") { parts.append(p + (f("value").map { " = \($0)" } ?? "")) }
        for k in ["outcome", "rule", "action", "reason", "effect", "state", "error", "explanation"] {
            if let v = f(k) { parts.append("\(k): \(v)") }
        }
        return parts.joined(separator: "; ")
    }

    // MARK: - The page

    /// The whole page, every section rendered (it works without JavaScript: forms post and
    /// come back here; the script only refreshes sections on each event and posts in place).
    public static func page(_ s: Snapshot, site: String?) -> String {
        let title = "Redline console" + (site.map { " — \($0)" } ?? "")
        var h = """
            <!doctype html>
            <html lang="en"><head><meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <title>\(esc(title))</title>
            <style>\(css)</style></head><body>
            <header><h1>\(esc(title))</h1>
            <p id="live" class="muted" aria-live="polite">Live updates: connecting…</p>
            <p id="result" role="status" aria-live="polite"></p></header><main>
            """
        for (id, html) in fragments(s) {
            let t = sections.first { $0.id == id }?.title ?? id
            h += "<section aria-labelledby=\"h-\(id)\"><h2 id=\"h-\(id)\">\(esc(t))</h2><div id=\"\(id)\">\(html)</div></section>"
        }
        h += """
            <section aria-labelledby="h-events"><h2 id="h-events">Events</h2><ol id="events" reversed></ol></section>
            </main><script>\(script)</script></body></html>
            """
        return h
    }

    /// A one-button form. The button's `id` lets the script give focus back after a section is re-rendered.
    static func form(action: String, fields: [(String, String)], button: String, label: String, cls: String? = nil, id: String) -> String {
        var h = "<form method=\"post\" action=\"\(action)\"\(cls.map { " class=\"\($0)\"" } ?? "")>"
        for (k, v) in fields { h += "<input type=\"hidden\" name=\"\(esc(k))\" value=\"\(esc(v))\">" }
        return h + "<button type=\"submit\" id=\"\(esc(id))\" aria-label=\"\(esc(label))\">\(esc(button))</button></form>"
    }

    static func flag(_ name: String, _ on: Bool, bad: Bool) -> String {
        "<span class=\"badge \(on ? (bad ? "bad" : "warn") : "off")\">\(on ? name : "not " + name)</span> "
    }

    static func str(_ j: JSON?) -> String {
        guard let j, j != .null else { return "—" }
        return j.stringValue ?? j.encoded()
    }

    static func num(_ j: JSON?) -> String {
        guard let n = j?.numberValue else { return "—" }
        return n == n.rounded() && abs(n) < 1e15 ? String(Int64(n)) : String(n)
    }

    /// HTML-escapes text for element content and quoted attribute values.
    public static func esc(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.utf8.count)
        for c in s.unicodeScalars {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            case "`": out += "&#96;"
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }

    static let css = """
        :root{color-scheme:light;font-family:system-ui,sans-serif;font-size:17px;line-height:1.45;color:#111;background:#fff}
        body{margin:0 auto;max-width:60rem;padding:0.75rem}
        h1{font-size:1.4rem;margin:0.3rem 0}h2{font-size:1.15rem;border-bottom:2px solid #333;margin-top:1.4rem}
        .badge{display:inline-block;padding:0.1rem 0.45rem;border-radius:0.3rem;font-weight:700;border:1px solid #333}
        .ok{background:#0a5d1e;color:#fff}.bad{color:#9b0000}.badge.bad{background:#9b0000;color:#fff}
        .warn{background:#7a4a00;color:#fff}.off{background:#eee;color:#333;font-weight:400}.ok-text{color:#0a5d1e}
        .muted{color:#444}.alarm{border:3px solid #9b0000;padding:0.5rem;background:#fff0f0}
        .cards{list-style:none;padding:0}.card{border:1px solid #666;border-radius:0.4rem;padding:0.5rem 0.75rem;margin:0.5rem 0}
        .untrusted{margin:0.4rem 0;border-left:6px solid #7a4a00;background:#fff8e6;padding:0.3rem 0.6rem}
        .untrusted figcaption{font-weight:700;color:#5c3700;font-size:0.9rem}
        .untrusted blockquote{margin:0.2rem 0;white-space:pre-wrap;overflow-wrap:anywhere;font-family:ui-monospace,monospace}
        .actions{display:flex;flex-wrap:wrap;gap:0.5rem;align-items:center}.actions form{margin:0}
        button{font-size:1rem;padding:0.45rem 0.9rem;min-height:2.6rem;border:2px solid #111;border-radius:0.3rem;background:#f2f2f2;color:#111;cursor:pointer}
        .approve button{background:#0a5d1e;color:#fff;border-color:#0a5d1e}
        input[type=text]{font-size:1rem;padding:0.4rem;min-height:2.2rem;border:2px solid #444;border-radius:0.3rem;max-width:100%}
        :focus-visible{outline:3px solid #1a4fd6;outline-offset:2px}
        table{border-collapse:collapse;width:100%;font-size:0.95rem}th,td{border-bottom:1px solid #999;padding:0.3rem;text-align:left;vertical-align:top}
        td{overflow-wrap:anywhere}code{font-size:0.95em}
        .sr{position:absolute;left:-9999px}#events{font-size:0.9rem;padding-left:1.5rem}
        @media (max-width:36rem){table{font-size:0.85rem}th:nth-child(2),td:nth-child(2){display:none}}
        """

    /// Small vanilla script: one EventSource; on each event, fetch the sections again and swap
    /// them in; forms post in place and show the daemon's answer.
    static let script = """
        (function(){
        var live=document.getElementById('live'),result=document.getElementById('result'),events=document.getElementById('events');
        var pending=null;
        function refresh(){if(pending)return;pending=setTimeout(function(){pending=null;
          fetch('/fragments',{credentials:'same-origin',headers:{'Accept':'application/json'}}).then(function(r){
            if(!r.ok)throw new Error('HTTP '+r.status);return r.json();}).then(function(f){
            var a=document.activeElement,aid=a&&a.id,val=a&&a.value;
            Object.keys(f).forEach(function(k){var el=document.getElementById(k);if(el)el.innerHTML=f[k];});
            if(aid){var n=document.getElementById(aid);if(n){n.focus();if(val!==undefined&&n.value!==undefined)n.value=val;}}
          }).catch(function(e){live.textContent='Refresh failed: '+e.message;});},100);}
        function tick(){document.querySelectorAll('.countdown').forEach(function(c){var l=Math.max(0,parseInt(c.dataset.left,10)-1);
          c.dataset.left=l;c.textContent=l+' s';});}
        setInterval(tick,1000);
        document.addEventListener('submit',function(ev){var f=ev.target;if(!f.action)return;ev.preventDefault();
          var b=f.querySelector('button');if(b)b.disabled=true;
          fetch(f.action,{method:'POST',credentials:'same-origin',headers:{'Accept':'application/json'},
            body:new URLSearchParams(new FormData(f))}).then(function(r){return r.json().then(function(j){return [r,j];});})
          .then(function(p){result.textContent=p[1].message||(p[0].ok?'Done':'Refused');refresh();})
          .catch(function(e){result.textContent='Failed: '+e.message;if(b)b.disabled=false;});});
        var es=new EventSource('/events');
        es.addEventListener('open',function(){live.textContent='Live updates: connected';});
        es.addEventListener('link',function(m){var d=JSON.parse(m.data);
          live.textContent=d.connected?'Live updates: connected to redlined':'Live updates: redlined unreachable, reconnecting ('+d.why+')';refresh();});
        es.addEventListener('redline',function(m){var e=JSON.parse(m.data);var li=document.createElement('li');
          li.textContent='#'+e.seq+' '+e.event+': '+(e.summary||'');events.insertBefore(li,events.firstChild);
          while(events.children.length>30)events.removeChild(events.lastChild);refresh();});
        es.addEventListener('error',function(){live.textContent='Live updates: reconnecting to the console…';});
        })();
        """
}
