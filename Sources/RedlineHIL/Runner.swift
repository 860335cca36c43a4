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

struct StepFailure: Error {
    let message: String
    /// Nothing more can be done in this run (in guided mode: nobody answers any more).
    let endsRun: Bool
    init(_ m: String, endsRun: Bool = false) { message = m; self.endsRun = endsRun }
}

/// Runs scenarios against a live daemon: a step interpreter over a `PlantDriver`, the simulator
/// (`SimulatedPlant`) or, guided, a real site and a person (`GuidedPlant`).
public final class ScenarioRunner: PlantContext {
    let cfg: RunConfig
    let plant: any PlantDriver
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
        plant = config.guided ? GuidedPlant(input: config.input) : SimulatedPlant(control: config.simControl)
        checker = InvariantChecker(site: config.site, marginMs: config.marginMs)
    }

    deinit { for c in channels.values { c.close() } }

    var scanInterval: Double { Double(cfg.site.timing.scanIntervalMs) / 1000 }
    var site: Site { cfg.site }
    func setByPeople(_ name: String) { human.insert(name) }
    func deviceFault(_ device: String, mode: String) { if mode == "none" { faulted.remove(device) } else { faulted.insert(device) } }
    func say(_ line: String) { cfg.output(line) }

    // MARK: Connections

    func operatorCall(_ method: String, _ params: JSON? = nil) throws(StepFailure) -> JSON {
        do {
            return try FreshConnections(path: cfg.operatorSocket, timeoutMs: 15_000).call(method, params)
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
        let now = try plant.look(self)
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
        var result = ScenarioResult(name: scenario.name, file: scenario.file, mode: plant.mode)
        let t0 = Monotonic.seconds()
        cfg.output("== \(scenario.name) (\(scenario.file)), \(plant.title)")
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
            var endsRun = false
            do {
                detail = try perform(step.action)
                if detail.hasPrefix("SKIPPED") { status = .skipped }
                try observe()
                let doors = try settleDoors()
                if !doors.isEmpty { detail += (detail.isEmpty ? "" : "; ") + doors }
            } catch {
                status = .failed
                detail = error.message
                endsRun = error.endsRun
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
            if endsRun { break }
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

    /// A calm start: the plant in its normal state (the simulator reset, or the engineer confirms
    /// the site is ready), agents released, nothing held.
    func prepare(_ scenario: Scenario) throws(StepFailure) {
        invState = InvariantState()
        previous = nil
        touched = []; human = []; faulted = []; labels = [:]; checks = 0; stepNo = 0
        try plant.reset(self)
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
            return try plant.set(changes, instruction: instruction, self)

        case .fault(let d, let mode, let instruction):
            return try plant.fault(d, mode: mode, instruction: instruction, self)

        case .advance(let s, let instruction):
            return try plant.advance(s, instruction: instruction, self)

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
            return try plant.expect(list, within: within, self)

        case .audit(let patterns):
            guard let path = cfg.auditPath else { return "SKIPPED: no --audit PATH given" }
            return try checkAudit(path, patterns)
        }
    }

    func operatorRequest(_ method: String, _ params: JSON) throws(StepFailure) -> JSON {
        do {
            return try FreshConnections(path: cfg.operatorSocket, timeoutMs: 15_000).request(method, params)
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
}
