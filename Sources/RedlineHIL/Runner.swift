import Foundation
import RedlineClient
import RedlineCore


func sleepSeconds(_ s: Double) { if s > 0 { usleep(useconds_t(min(s, 3600) * 1e6)) } }

/// Where and how to run scenarios.
public struct RunConfig {
    public var site: Site
    public var siteFile: String?
    public var agentSocket: String
    public var operatorSocket: String
    /// The simulator's control socket; nil in guided mode.
    public var simControl: String?
    /// The daemon's audit log, to check `audit` steps and verify the chain.
    public var auditPath: String?
    /// Guided proof test: an engineer performs physical steps on a real site.
    public var guided: Bool
    /// Reaction margin added to 2 scan intervals for E-1.
    public var marginMs: Int64
    /// The agent whose readings stand for the plant in guided mode (default: the one that sees most points).
    public var observer: String?
    /// Where lines go (stdout).
    public var output: (String) -> Void
    /// Where the engineer's answers come from (stdin) in guided mode.
    public var input: () -> String?

    public init(site: Site, siteFile: String? = nil, agentSocket: String, operatorSocket: String, simControl: String?,
                auditPath: String? = nil, guided: Bool = false, marginMs: Int64 = 500, observer: String? = nil,
                output: @escaping (String) -> Void = { print($0) }, input: @escaping () -> String? = { readLine() }) {
        self.site = site
        self.siteFile = siteFile
        self.agentSocket = agentSocket
        self.operatorSocket = operatorSocket
        self.simControl = simControl
        self.auditPath = auditPath
        self.guided = guided
        self.marginMs = marginMs
        self.observer = observer
        self.output = output
        self.input = input
    }
}

struct StepFailure: Error { let message: String; init(_ m: String) { message = m } }

/// Runs scenarios against a live daemon and simulator (or, guided, a real site).
public final class ScenarioRunner {
    let cfg: RunConfig
    let checker: InvariantChecker
    var channels: [String: any RPCTransport] = [:]
    var connections: [String] = []
    var invState = InvariantState()
    var previous: PlantState?
    var touched: Set<String> = []
    var human: Set<String> = []
    var faulted: Set<String> = []
    var checks = 0
    var stepViolations: [Violation] = []
    var labels: [String: (agent: String, id: String, point: String)] = [:]
    var auditStartSeq: UInt64 = 0
    var stepNo = 0

    public init(config: RunConfig) {
        cfg = config
        checker = InvariantChecker(site: config.site, marginMs: config.marginMs)
    }

    deinit { for c in channels.values { c.close() } }

    var scanInterval: Double { Double(cfg.site.timing.scanIntervalMs) / 1000 }

    // MARK: Connections

    func sim() throws(StepFailure) -> LineClient {
        guard let path = cfg.simControl else { throw StepFailure("no simulator control socket (guided mode)") }
        do { return try LineClient(path: path, timeoutMs: 15_000) } catch { throw StepFailure("simulator control: \(error)") }
    }

    func simCall(_ method: String, _ params: JSON? = nil) throws(StepFailure) -> JSON {
        let c = try sim()
        defer { c.close() }
        do { return try c.call(method, params) } catch { throw StepFailure("\(method): \(error)") }
    }

    func operatorCall(_ method: String, _ params: JSON? = nil) throws(StepFailure) -> JSON {
        do {
            let c = try LineClient(path: cfg.operatorSocket, timeoutMs: 15_000)
            defer { c.close() }
            return try c.call(method, params)
        } catch { throw StepFailure("operator \(method): \(error)") }
    }

    func channel(_ agent: String) throws(StepFailure) -> any RPCTransport {
        if let c = channels[agent] { return c }
        guard let a = cfg.site.agent(named: agent) else { throw StepFailure("no agent \"\(agent)\" in site \(cfg.site.name)") }
        do {
            let c = try AgentConnector.connect(path: cfg.agentSocket, uid: a.uid)
            channels[agent] = c
            connections.append("\(agent): \(c.how)")
            cfg.output("  connected \(agent) \(c.how)")
            return c
        } catch { throw StepFailure("cannot connect as \(agent): \(error)") }
    }

    var observerAgent: String? {
        if let o = cfg.observer { return o }
        return cfg.site.agents.max { a, b in
            cfg.site.points.filter { a.canSee($0.id) }.count < cfg.site.points.filter { b.canSee($0.id) }.count
        }?.name
    }

    // MARK: Looking at the plant

    /// Ground truth: `plant.get`, or in guided mode the daemon's readings of every point the observer sees.
    func lookAtPlant() throws(StepFailure) -> PlantState {
        if cfg.simControl != nil {
            guard let o = try simCall("plant.get").objectValue else { throw StepFailure("plant.get returned no object") }
            var p: PlantState = [:]
            for (k, v) in o { if let n = v.numberValue { p[k] = n } }
            return p
        }
        guard let obs = observerAgent, let a = cfg.site.agent(named: obs) else { throw StepFailure("no observer agent") }
        let ids = cfg.site.points.filter { a.canSee($0.id) }.map(\.id)
        return try readPoints(obs, ids).compactMapValues { $0.quality == "good" ? $0.value : nil }
    }

    func readPoints(_ agent: String, _ ids: [String]) throws(StepFailure) -> [String: (value: Double?, quality: String)] {
        let r: JSON
        do { r = try channel(agent).call("points.read", .obj([("ids", .array(ids.map { .string($0) }))])) } catch let e as StepFailure {
            throw e
        } catch { throw StepFailure("points.read: \(error)") }
        var out: [String: (value: Double?, quality: String)] = [:]
        for v in r["values"]?.arrayValue ?? [] {
            if let id = v["id"]?.stringValue { out[id] = (v["value"]?.numberValue, v["quality"]?.stringValue ?? "?") }
        }
        return out
    }

    /// One invariant check: look, compare with the last look, forget the attribution.
    @discardableResult
    func observe() throws(StepFailure) -> PlantState {
        let now = try lookAtPlant()
        let v = checker.check(&invState, previous: previous, current: now, time: Monotonic.seconds(),
                              attribution: Attribution(agentTouched: touched, humanSet: human, faultedDevices: faulted))
        checks += 1
        previous = now
        touched = []
        human = []
        for x in v { cfg.output("  INVARIANT VIOLATED \(x)") }
        stepViolations += v
        return now
    }

    /// Keeps looking while a door waits for E-1, until it is released or its bound has passed.
    /// Returns how long each released door took (from the first look that found it due).
    func settleDoors() throws(StepFailure) -> String {
        let deadline = Monotonic.seconds() + checker.reactionBound + 2 * scanInterval + 0.2
        var notes: [String] = []
        while !checker.pendingDoors(invState).isEmpty && Monotonic.seconds() < deadline {
            let waiting = invState.lockedUnsafeSince
            sleepSeconds(scanInterval)
            let now = try observe()
            let t = Monotonic.seconds()
            for (door, since) in waiting where invState.lockedUnsafeSince[door] == nil && (now[door] ?? 1) == 0 {
                notes.append("\(door) released (E-1) within \(fmtS(t - since)) of being seen due (bound \(fmtS(checker.reactionBound)))")
            }
        }
        return notes.joined(separator: "; ")
    }

    /// Waits `s` seconds of wall time, checking the invariants every scan interval.
    func waitChecking(_ s: Double) throws(StepFailure) {
        let end = Monotonic.seconds() + s
        while Monotonic.seconds() < end {
            sleepSeconds(min(max(scanInterval, 0.05), end - Monotonic.seconds()))
            try observe()
        }
    }

    /// Waits until the daemon has completed `n` more scans.
    func waitScans(_ n: Int) throws(StepFailure) {
        let start = Int(try operatorCall("status")["scans"]?.numberValue ?? 0)
        let deadline = Monotonic.seconds() + 10
        while Monotonic.seconds() < deadline {
            if Int(try operatorCall("status")["scans"]?.numberValue ?? 0) >= start + n { return }
            sleepSeconds(0.02)
        }
        throw StepFailure("the daemon did not complete \(n) scans in 10 s")
    }

    // MARK: Running

    public func run(_ scenario: Scenario) -> ScenarioResult {
        var result = ScenarioResult(name: scenario.name, file: scenario.file, mode: cfg.guided ? "guided" : "simulated")
        let t0 = Monotonic.seconds()
        cfg.output("== \(scenario.name) (\(scenario.file)), \(cfg.guided ? "guided proof test" : "simulated plant")")
        if !scenario.description.isEmpty { cfg.output("   \(scenario.description.split(separator: "\n").joined(separator: "\n   "))") }
        do {
            try prepare(scenario)
        } catch {
            result.error = "preparing: \(error.message)"
            cfg.output("  ERROR \(result.error!)")
            result.seconds = Monotonic.seconds() - t0
            return result
        }
        for step in scenario.steps {
            stepNo += 1
            let title = step.title ?? describe(step.action)
            let at = Date()
            let s0 = Monotonic.seconds()
            stepViolations = []
            var status = StepResult.Status.passed
            var detail = ""
            do {
                detail = try perform(step.action)
                if detail.hasPrefix("SKIPPED") { status = .skipped }
                try observe()
                let doors = try settleDoors()
                if !doors.isEmpty { detail += (detail.isEmpty ? "" : "; ") + doors }
            } catch {
                status = .failed
                detail = error.message
            }
            if !stepViolations.isEmpty {
                status = .failed
                detail += (detail.isEmpty ? "" : "; ") + "invariants: " + stepViolations.map(\.description).joined(separator: "; ")
            }
            let st = StepResult(index: stepNo, line: step.line, title: title, status: status, detail: detail, at: at,
                                seconds: Monotonic.seconds() - s0, violations: stepViolations)
            result.violations += stepViolations
            result.steps.append(st)
            let mark = status == .passed ? "ok  " : (status == .failed ? "FAIL" : "skip")
            cfg.output("  \(mark) \(String(format: "%3d", stepNo)) \(title)\(detail.isEmpty ? "" : ": " + detail)")
            if cfg.guided && status == .failed && detail.contains("no answer") { break }
        }
        if let path = cfg.auditPath {
            result.auditVerdict = verifyAudit(path)
            if !(result.auditVerdict ?? "").hasPrefix("ok") {
                result.steps.append(StepResult(index: stepNo + 1, line: 0, title: "audit chain verifies", status: .failed,
                                               detail: result.auditVerdict ?? "", at: Date(), seconds: 0, violations: []))
            }
        }
        result.checks = checks
        result.connections = connections
        result.seconds = Monotonic.seconds() - t0
        cfg.output("  \(result.passed ? "PASS" : "FAIL") \(scenario.name): \(result.steps.count) steps, \(result.failedSteps.count) failed, \(result.violations.count) invariant violations, \(checks) invariant checks")
        return result
    }

    /// A calm start: plant reset, faults cleared, agents released, nothing held (simulated);
    /// in guided mode the engineer confirms the site is ready.
    func prepare(_ scenario: Scenario) throws(StepFailure) {
        invState = InvariantState()
        previous = nil
        touched = []; human = []; faulted = []; labels = [:]; checks = 0; stepNo = 0
        if cfg.guided {
            try prompt("Put \(cfg.site.name) in its normal state (rooms empty, alarms clear, doors released), make sure the test is authorised, then press Enter.",
                       equivalent: "plant.reset")
        } else {
            _ = try simCall("plant.reset")
        }
        for a in cfg.site.agents { _ = try operatorCall("agents.release", .obj([("agent", .string(a.name))])) }
        // Not in agents-held (docs/DESIGN.md §6.2) from earlier scenarios' red-line denials. A daemon
        // without the method (older than escalation) answers an error, which changes nothing here.
        _ = try? operatorCall("escalation.clear")
        for r in try operatorCall("approvals.list")["approvals"]?.arrayValue ?? [] {
            if let id = r["requestId"]?.stringValue { _ = try? operatorCall("approvals.deny", .obj([("requestId", .string(id)), ("reason", "HIL scenario start")])) }
        }
        try waitScans(3)
        auditStartSeq = UInt64(try operatorCall("status")["auditSeq"]?.numberValue ?? 0)
        try observe()
    }

    func describe(_ a: Action) -> String {
        switch a {
        case .say(let t): return t
        case .plant(let ch, _): return "plant: " + ch.map { "\($0.name) = \(fmt($0.value))" }.joined(separator: ", ")
        case .fault(let d, let m, _): return "fault: \(d) \(m)"
        case .advance(let s, _): return "advance plant time \(fmt(s)) s"
        case .wait(let s): return "wait \(fmt(s)) s"
        case .write(let w):
            return "\(w.agent) writes \(w.point) = \(fmt(w.value))" + (w.reason.map { " (reason: \"\($0)\")" } ?? "")
                + (w.expect.isEmpty ? "" : ", expect \(w.expect)")
        case .read(let ag, let ex): return "\(ag) reads " + ex.map { "\($0.name) = \(fmt($0.value))" }.joined(separator: ", ")
        case .request(let l, let e): return "request \(l)" + (e.isEmpty ? "" : ", expect \(e)")
        case .approve(let l, let e): return "operator approves \(l)" + (e.isEmpty ? "" : ", expect \(e)")
        case .deny(let l, _, let e): return "operator denies \(l)" + (e.isEmpty ? "" : ", expect \(e)")
        case .release(let ag): return "operator releases \(ag)"
        case .expectState(let l, let w): return "plant shows " + l.map { "\($0.name) \($0.match)" }.joined(separator: ", ") + " within \(fmt(w)) s"
        case .audit(let p): return "audit log holds \(p.count) records: " + p.map { $0.encoded() }.joined(separator: ", ")
        }
    }

    /// Checks an answer against an expectation; returns the detail text.
    func judge(_ resp: JSON, _ e: Expectation) throws(StepFailure) -> String {
        if let err = resp["error"] {
            let code = Int(err["code"]?.numberValue ?? 0)
            let text = "error \(code): \(err["message"]?.stringValue ?? "")"
            if let want = e.error, want == code { return text }
            throw StepFailure("got \(text), expected \(e.isEmpty ? "an answer" : e.description)")
        }
        let r = resp["result"] ?? resp
        let outcome = r["outcome"]?.stringValue ?? "?"
        let rule = r["rule"]?.stringValue
        let text = "\(r["requestId"]?.stringValue ?? "-"): \(outcome)\(rule.map { " [\($0)]" } ?? ""): \(r["explanation"]?.stringValue ?? "")"
        if e.error != nil { throw StepFailure("got \(text), expected \(e)") }
        if let o = e.outcome, o != outcome { throw StepFailure("got \(text), expected \(e)") }
        if let want = e.rule, want != rule { throw StepFailure("got \(text), expected \(e)") }
        return text
    }

    func perform(_ action: Action) throws(StepFailure) -> String {
        switch action {
        case .say:
            return ""

        case .plant(let changes, let instruction):
            if cfg.guided { return try guidedPlant(changes, instruction) }
            for c in changes {
                _ = try simCall("plant.set", .obj([("name", .string(c.name)), ("value", .number(c.value))]))
                human.insert(c.name)
            }
            return ""

        case .fault(let d, let mode, let instruction):
            if cfg.guided { return try guidedFault(d, mode, instruction) }
            _ = try simCall("device.fault", .obj([("device", .string(d)), ("mode", .string(mode))]))
            if mode == "none" { faulted.remove(d) } else { faulted.insert(d) }
            return ""

        case .advance(let s, let instruction):
            if cfg.guided {
                try prompt(instruction ?? "Let \(fmt(s)) s of plant time pass (keep the conditions as they are), then press Enter.",
                           equivalent: "plant.advance \(fmt(s))")
                return "engineer let \(fmt(s)) s pass"
            }
            do {
                let c = try sim()
                defer { c.close() }
                let r = try c.call("plant.advance", .obj([("seconds", .number(s))]))
                return "plant time \(fmt(((r["time"]?.numberValue ?? 0) * 10).rounded() / 10)) s"
            } catch let e as StepFailure { throw e } catch {
                throw StepFailure("plant.advance: \(error) (run redline-sim with --clock manual for scenarios that advance time)")
            }

        case .wait(let s):
            try waitChecking(s)
            return ""

        case .write(let w):
            let params = JSON.obj([("id", .string(w.point)), ("value", .number(w.value)), ("reason", w.reason.map { .string($0) })])
            touched.insert(w.point)
            let resp: JSON
            do { resp = try channel(w.agent).request("points.write", params) } catch let e as StepFailure { throw e } catch {
                throw StepFailure("points.write: \(error)")
            }
            if let label = w.label, let id = resp["result"]?["requestId"]?.stringValue { labels[label] = (w.agent, id, w.point) }
            return try judge(resp, w.expect)

        case .read(let agent, let expect):
            let got = try readPoints(agent, expect.map(\.name))
            var parts: [String] = []
            for e in expect {
                let v = got[e.name]
                parts.append("\(e.name) = \(v?.value.map(fmt) ?? "null") (\(v?.quality ?? "?"))")
                if !ValueMatch.equals(e.value).matches(v?.value) { throw StepFailure("read \(parts.joined(separator: ", ")), expected \(e.name) = \(fmt(e.value))") }
            }
            return parts.joined(separator: ", ")

        case .request(let label, let e):
            guard let l = labels[label] else { throw StepFailure("no earlier write labelled \(label) got a request id") }
            let resp: JSON
            do { resp = try channel(l.agent).request("requests.get", .obj([("requestId", .string(l.id))])) } catch let x as StepFailure { throw x } catch {
                throw StepFailure("requests.get: \(error)")
            }
            return try judge(resp, e)

        case .approve(let label, let e):
            guard let l = labels[label] else { throw StepFailure("no earlier write labelled \(label) got a request id") }
            touched.insert(l.point)
            let resp = try operatorRequest("approvals.approve", .obj([("requestId", .string(l.id))]))
            return try judge(resp, e)

        case .deny(let label, let reason, let e):
            guard let l = labels[label] else { throw StepFailure("no earlier write labelled \(label) got a request id") }
            let resp = try operatorRequest("approvals.deny", .obj([("requestId", .string(l.id)), ("reason", reason.map { .string($0) })]))
            return try judge(resp, e)

        case .release(let agent):
            let r = try operatorCall("agents.release", .obj([("agent", .string(agent))]))
            return "released: \(r["released"]?.boolValue == true ? "was quarantined" : "was not quarantined")"

        case .expectState(let list, let within):
            if cfg.guided { return try guidedExpect(list, within) }
            let deadline = Monotonic.seconds() + within
            var last: PlantState = [:]
            while true {
                last = try observe()
                let bad = list.filter { !$0.match.matches(last[$0.name]) }
                if bad.isEmpty { break }
                if Monotonic.seconds() >= deadline {
                    throw StepFailure("after \(fmt(within)) s: " + bad.map { "\($0.name) = \(last[$0.name].map(fmt) ?? "missing"), expected \($0.match)" }.joined(separator: "; "))
                }
                sleepSeconds(scanInterval)
            }
            return list.map { "\($0.name) = \(last[$0.name].map(fmt) ?? "?")" }.joined(separator: ", ")

        case .audit(let patterns):
            guard let path = cfg.auditPath else { return "SKIPPED: no --audit PATH given" }
            return try checkAudit(path, patterns)
        }
    }

    func operatorRequest(_ method: String, _ params: JSON) throws(StepFailure) -> JSON {
        do {
            let c = try LineClient(path: cfg.operatorSocket, timeoutMs: 15_000)
            defer { c.close() }
            return try c.request(method, params)
        } catch { throw StepFailure("operator \(method): \(error)") }
    }

    // MARK: Audit

    func auditRecords(_ path: String) throws(StepFailure) -> [JSON] {
        guard let data = FileManager.default.contents(atPath: path) else { throw StepFailure("cannot read the audit log \(path)") }
        return String(decoding: data, as: UTF8.self).split(separator: "\n").compactMap { try? JSON.parse(String($0)) }
    }

    func verifyAudit(_ path: String) -> String {
        guard let data = FileManager.default.contents(atPath: path) else { return "cannot read \(path)" }
        return AuditChain.verify(Array(data)).description
    }

    /// Each pattern must match a record written since the scenario began. A key ending in `~` matches
    /// a record whose field contains the text.
    func checkAudit(_ path: String, _ patterns: [JSON]) throws(StepFailure) -> String {
        let verdict = verifyAudit(path)
        guard verdict.hasPrefix("ok") else { throw StepFailure("audit chain: \(verdict)") }
        let records = try auditRecords(path).filter { UInt64($0["seq"]?.numberValue ?? 0) > auditStartSeq }
        var found: [String] = []
        for p in patterns {
            let hit = records.first { r in
                (p.objectValue ?? []).allSatisfy { (k, v) in
                    if k.hasSuffix("~") {
                        return (r[String(k.dropLast())]?.stringValue ?? r[String(k.dropLast())]?.encoded() ?? "").contains(v.stringValue ?? v.encoded())
                    }
                    return r[k] == v
                }
            }
            guard let hit else { throw StepFailure("no audit record since seq \(auditStartSeq) matches \(p.encoded()) (\(records.count) records)") }
            found.append("seq \(fmt(hit["seq"]?.numberValue ?? 0))")
        }
        return "\(verdict); " + found.joined(separator: ", ")
    }

    // MARK: Guided mode

    /// Prints an instruction and waits for Enter (or a y/n answer when `question`).
    @discardableResult
    func prompt(_ text: String, equivalent: String, question: Bool = false) throws(StepFailure) -> String {
        cfg.output(">> STEP \(stepNo): \(text)")
        cfg.output("   (simulator equivalent: \(equivalent))")
        cfg.output(question ? "   Answer y or n, then press Enter:" : "   Press Enter when done.")
        guard let answer = cfg.input() else { throw StepFailure("no answer from the engineer (input closed)") }
        return answer.trimmingCharacters(in: .whitespaces).lowercased()
    }

    /// The points whose readings show a plant variable.
    func witnesses(_ name: String) -> [Point] {
        if let p = cfg.site.point(name) { return [p] }
        let parts = name.split(separator: ".", maxSplits: 1).map(String.init)
        guard parts.count == 2 else { return [] }
        let role: Role?
        switch parts[1] {
        case "occupied": role = .occupancy
        case "temperature": role = .temperature
        case "oxygen": role = .oxygen
        case "co2": role = .co2
        case "humidity": role = .humidity
        case "failed": return cfg.site.points.filter { $0.device == parts[0] && $0.role == .equipmentFault }
        default: role = nil
        }
        guard let role else { return [] }
        return cfg.site.points.filter { $0.zone == parts[0] && $0.role == role }
    }

    func instruction(for c: PlantChange) -> String {
        let parts = c.name.split(separator: ".", maxSplits: 1).map(String.init)
        let on = c.value != 0
        if let p = cfg.site.point(c.name) {
            switch p.role {
            case .occupancy: return on ? "Trigger the occupancy sensor \(p.id) in \(p.zone)" : "Clear the occupancy sensor \(p.id) in \(p.zone) (leave the room)"
            case .fireAlarm: return on ? "Put the fire panel \(p.device) into alarm (operate a test detector or call point)" : "Reset the fire panel \(p.device) at the panel"
            case .gasAlarm: return on ? "Put the gas detection \(p.device) into alarm with test gas" : "Reset the gas alarm \(p.device) at the panel"
            default: return "Make \(p.id) read \(fmt(c.value))"
            }
        }
        guard parts.count == 2 else { return "Make \(c.name) = \(fmt(c.value))" }
        switch parts[1] {
        case "occupied": return on ? "Trigger the occupancy sensor in \(parts[0])" : "Clear the occupancy sensor in \(parts[0]) (leave the room)"
        case "temperature": return "Bring the temperature sensor in \(parts[0]) to \(fmt(c.value)) °C (calibrator or heat gun)"
        case "oxygen": return "Bring the oxygen sensor in \(parts[0]) to \(fmt(c.value)) % (test gas or calibrator)"
        case "co2": return "Bring the CO2 sensor in \(parts[0]) to \(fmt(c.value)) % (test gas or calibrator)"
        case "failed": return on ? "Fail \(parts[0]) (trip it at its isolator so it stops)" : "Restore \(parts[0]) (close its isolator)"
        default: return "Make \(c.name) = \(fmt(c.value))"
        }
    }

    func near(_ v: Double, _ want: Double, _ role: Role) -> Bool {
        role.isBoolean ? (v != 0) == (want != 0) : abs(v - want) <= max(0.5, abs(want) * 0.05)
    }

    func guidedPlant(_ changes: [PlantChange], _ given: String?) throws(StepFailure) -> String {
        var evidence: [String] = []
        // A step's own instruction covers all its changes (one prompt); otherwise one prompt per change.
        if let given {
            try prompt("\(given), then press Enter.", equivalent: changes.map { "plant.set \($0.name) \(fmt($0.value))" }.joined(separator: "; "))
        }
        for c in changes {
            if given == nil {
                try prompt("\(instruction(for: c)), then press Enter.", equivalent: "plant.set \(c.name) \(fmt(c.value))")
            }
            let pts = witnesses(c.name)
            guard let obs = observerAgent, !pts.isEmpty else {
                evidence.append("\(c.name) = \(fmt(c.value)): no input shows it; on the engineer's word")
                human.insert(c.name)
                continue
            }
            // Confirm on the real inputs (allow a few scans for the reading to arrive).
            let deadline = Monotonic.seconds() + Double(cfg.site.timing.staleAfterMs) / 1000 + 2
            var last: [String: (value: Double?, quality: String)] = [:]
            while true {
                last = try readPoints(obs, pts.map(\.id))
                let ok = pts.allSatisfy { p in last[p.id].map { $0.quality == "good" && near($0.value ?? .nan, c.value, p.role) } ?? false }
                if ok { break }
                if Monotonic.seconds() >= deadline {
                    throw StepFailure("NOT CONFIRMED: " + pts.map { "\($0.id) reads \(last[$0.id]?.value.map(fmt) ?? "null") (\(last[$0.id]?.quality ?? "?"))" }.joined(separator: ", ") + ", expected \(fmt(c.value))")
                }
                sleepSeconds(scanInterval)
            }
            for p in pts { human.insert(p.id) }
            human.insert(c.name)
            evidence.append("confirmed " + pts.map { "\($0.id) = \(last[$0.id]?.value.map(fmt) ?? "?") (\(last[$0.id]?.quality ?? "?"))" }.joined(separator: ", "))
        }
        return evidence.joined(separator: "; ")
    }

    func guidedFault(_ device: String, _ mode: String, _ given: String?) throws(StepFailure) -> String {
        let text = given ?? (mode == "none" ? "Reconnect \(device) to its bus" : "Disconnect \(device) from its bus (fault: \(mode))")
        try prompt("\(text), then press Enter.", equivalent: "device.fault \(device) \(mode)")
        if mode == "none" { faulted.remove(device) } else { faulted.insert(device) }
        let pts = cfg.site.points.filter { $0.device == device }
        guard let obs = observerAgent, !pts.isEmpty else { return "on the engineer's word" }
        let deadline = Monotonic.seconds() + Double(cfg.site.timing.staleAfterMs) / 1000 + 3
        while true {
            let got = try readPoints(obs, pts.map(\.id))
            let allGood = pts.allSatisfy { got[$0.id]?.quality == "good" }
            let noneGood = pts.allSatisfy { got[$0.id]?.quality != "good" }
            if mode == "none" ? allGood : noneGood {
                return "confirmed: \(device) readings " + (mode == "none" ? "good" : "not good (" + Set(pts.compactMap { got[$0.id]?.quality }).sorted().joined(separator: ", ") + ")")
            }
            if Monotonic.seconds() >= deadline { throw StepFailure("NOT CONFIRMED: \(device) readings are " + pts.map { "\($0.id) \(got[$0.id]?.quality ?? "?")" }.joined(separator: ", ")) }
            sleepSeconds(scanInterval)
        }
    }

    func guidedExpect(_ list: [StateExpectation], _ within: Double) throws(StepFailure) -> String {
        var parts: [String] = []
        let readable = list.filter { cfg.site.point($0.name) != nil }
        if !readable.isEmpty, let obs = observerAgent {
            let deadline = Monotonic.seconds() + within
            while true {
                let got = try readPoints(obs, readable.map(\.name))
                try observe()
                let bad = readable.filter { !$0.match.matches(got[$0.name]?.value) }
                if bad.isEmpty {
                    parts += readable.map { "\($0.name) reads \(got[$0.name]?.value.map(fmt) ?? "?")" }
                    break
                }
                if Monotonic.seconds() >= deadline {
                    throw StepFailure("after \(fmt(within)) s: " + bad.map { "\($0.name) reads \(got[$0.name]?.value.map(fmt) ?? "null"), expected \($0.match)" }.joined(separator: "; "))
                }
                sleepSeconds(scanInterval)
            }
        }
        for e in list where cfg.site.point(e.name) == nil {
            let a = try prompt("Check on site that \(e.name) is \(e.match) (no point reads it).", equivalent: "plant.get \(e.name), expect \(e.match)", question: true)
            guard a.hasPrefix("y") else { throw StepFailure("engineer reports \(e.name) is not \(e.match)") }
            parts.append("\(e.name) \(e.match): confirmed by the engineer")
        }
        return parts.joined(separator: ", ")
    }
}
