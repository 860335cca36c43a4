import ArgumentParser
import Foundation
import Histogram
import RedlineClient
import RedlineCore

#if canImport(Glibc)
import Glibc
#endif

/// The flooding agent's process: `redline-bench flood-agent` run as the agent's uid through
/// `setpriv`, its output in a log file, flooding until its standard input is closed.
final class FloodProcess {
    let process = Process()
    private let input = Pipe()
    let logPath: String
    let connections: Int
    private(set) var startedAt: UInt64 = 0

    init(exe: String, uid: UInt32, socket: String, connections: Int, point: String, unknownPoint: String,
         reasonBytes: Int, logPath: String) throws {
        self.logPath = logPath
        self.connections = connections
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        guard let log = FileHandle(forWritingAtPath: logPath) else { throw ValidationError("cannot write \(logPath)") }
        process.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
        process.arguments = ["--reuid", String(uid), "--regid", String(uid), "--clear-groups", exe, "flood-agent",
                             "--socket", socket, "--connections", String(connections), "--point", point,
                             "--unknown-point", unknownPoint, "--reason-bytes", String(reasonBytes)]
        process.standardInput = input
        process.standardOutput = log
        process.standardError = log
        try process.run()
        try? log.close()
    }

    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }
    var cpuMicros: UInt64? { BenchChild.cpuMicros(pid: process.processIdentifier) }

    /// Waits until every connection has had its first answer; (open, refused).
    func waitOpen(timeout: Double) throws -> (Int, Int) {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let line = log.split(separator: "\n").first(where: { $0.hasPrefix("flood-agent: open ") }) {
                let f = line.split(separator: " ")
                startedAt = DaemonBenchRun.nanos()
                return (Int(f[2]) ?? 0, Int(f[4]) ?? 0)
            }
            if !process.isRunning { throw ValidationError("flood-agent exited:\n\(log)") }
            usleep(20_000)
        }
        throw ValidationError("flood-agent did not open its connections in \(timeout) s:\n\(log)")
    }

    /// Stops the flood; its totals and how long it flooded (s).
    func stop() throws -> (JSON, Double) {
        let seconds = Double(DaemonBenchRun.nanos() - startedAt) / 1e9
        try? input.fileHandleForWriting.close()
        let deadline = Date().addingTimeInterval(60)
        while process.isRunning, Date() < deadline { usleep(20_000) }
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
        guard let line = log.split(separator: "\n").first(where: { $0.hasPrefix("flood-agent totals: ") }) else {
            throw ValidationError("flood-agent gave no totals:\n\(log)")
        }
        return (try JSON.parse(Array(line.dropFirst("flood-agent totals: ".count).utf8)), seconds)
    }
}

/// Phase F (issue 10): E-1 and the readings' age at actuation under a read-only agent's flood.
extension DaemonBenchRun {
    struct FloodSetup {
        let d: Daemon
        let site: Site
        let ctl: LineClient
        let agent: LineClient
        let lock: Point
        let alarm: Point
        let floodUid: UInt32
        let benchExe: String
        let dir: String
    }

    func floodPhase(daemonExe: String, siteFile: String, devicesDir: String, dir: String, site: Site, simControl: String) throws {
        guard let flooder = site.agent(named: cfg.floodAgent) else { throw ValidationError("no agent \(cfg.floodAgent) in the site") }
        guard flooder.uid != getuid(), !site.operators.contains(where: { $0.uid == flooder.uid }) else {
            throw ValidationError("\(cfg.floodAgent) must have a uid of its own (not the bench's \(getuid()), not an operator's)")
        }
        guard site.point(cfg.floodPoint).map({ flooder.canSee($0.id) && !flooder.canWrite($0.id) }) == true else {
            throw ValidationError("--flood-point \(cfg.floodPoint) must be visible to \(cfg.floodAgent) without a write grant")
        }
        guard site.point(cfg.floodUnknownPoint) == nil else { throw ValidationError("--flood-unknown-point must not be in the site") }
        guard let benchExe = BenchPaths.executable("redline-bench") else { throw ValidationError("redline-bench not found beside itself") }
        guard let lock = site.points.first(where: { $0.role == .egressLock }),
              let alarm = site.points.first(where: { $0.role == .fireAlarm && site.zone($0.zone)?.buildingWide == true }) else {
            throw ValidationError("the site needs an egress lock and a building-wide fire alarm")
        }
        guard site.devices.contains(where: { $0.id == cfg.sensor }) else { throw ValidationError("no device \(cfg.sensor)") }
        guard let age = site.point(cfg.agePoint),
              site.conditionPointIDs(zone: age.zone).contains(where: { site.point($0)?.device == cfg.sensor }) else {
            throw ValidationError("--age-point \(cfg.agePoint)'s zone must have a condition input on \(cfg.sensor)")
        }

        let m = cfg.maxConnections
        // No rotation: the readings-age pass reads the result records from an offset of one file.
        let d = try startDaemon(exe: daemonExe, siteFile: siteFile, devicesDir: devicesDir, dir: dir, tag: "flood",
                                extra: ["--max-connections", String(m), "--max-connections-per-uid", String(m), "--audit-rotate-mib", "65536"])
        defer { d.child.stop() }
        print("\n== phase F: agent flood, redlined --max-connections \(m) --max-connections-per-uid \(m), audit fsync on (pid \(d.child.pid)) ==")
        loadAverage("phase F start")
        let ctl = try LineClient(path: simControl, timeoutMs: 30_000)
        defer { ctl.close() }
        // The bench's agent (cfg.agent) holds the one connection the flood leaves; it is opened first.
        let agent = try LineClient(path: d.agentSocket, timeoutMs: 30_000)
        defer { agent.close() }
        let f = FloodSetup(d: d, site: site, ctl: ctl, agent: agent, lock: lock, alarm: alarm, floodUid: flooder.uid,
                           benchExe: benchExe, dir: dir)
        print("flood: \(cfg.floodAgent) (uid \(flooder.uid), read-only) holds \(cfg.flood) of \(m) connections; each sends points.write "
              + "with a \(cfg.floodReasonBytes)-byte reason, even connections of \(cfg.floodPoint) (no grant), odd ones of "
              + "\(cfg.floodUnknownPoint) (unknown); \(cfg.agent) keeps the last connection")

        for delay in cfg.sensorDelays {
            let base = try e1Rounds(f, sensorDelayMs: delay, label: "baseline, no flood")
            let flood = try startFlood(f)
            let (cpu0, dcpu0, st0) = (flood.cpuMicros ?? 0, d.child.cpuMicros ?? 0, status(d))
            let under = try e1Rounds(f, sensorDelayMs: delay, label: "\(cfg.flood)-connection flood")
            try floodReport(f, flood, cpu0: cpu0, daemonCPU0: dcpu0, status0: st0)
            summary.append(e1Ratio(base, under, sensorDelayMs: delay, intervalMs: site.timing.scanIntervalMs))
        }
        if cfg.ageWrites > 0 {
            let base = try ageRun(f, label: "baseline, no flood")
            let flood = try startFlood(f)
            let (cpu0, dcpu0, st0) = (flood.cpuMicros ?? 0, d.child.cpuMicros ?? 0, status(d))
            let under = try ageRun(f, label: "\(cfg.flood)-connection flood")
            try floodReport(f, flood, cpu0: cpu0, daemonCPU0: dcpu0, status0: st0)
            summary.append(base)
            summary.append(under)
        }
        if let s = status(d) {
            print("daemon status at the end of phase F: counters \(s["counters"]?.encoded() ?? "?"), actuationReadingsAgeMs "
                  + "\(s["actuationReadingsAgeMs"]?.encoded() ?? "?"), deviceJobs \(s["deviceJobs"]?.encoded() ?? "?")")
        }
        loadAverage("phase F end")
    }

    func status(_ d: Daemon) -> JSON? { try? PeerCall.call(path: d.operatorSocket, uid: cfg.operatorUid, method: "status", timeout: 20) }

    func startFlood(_ f: FloodSetup) throws -> FloodProcess {
        guard cfg.flood > 0 else { throw ValidationError("--flood 0: no flood") }
        // Each flood starts from the same state: the flooding agent is quarantined after three
        // red-line denials (RL-6 while the alarm is on), and released here by an operator.
        let rel = try? PeerCall.call(path: f.d.operatorSocket, uid: cfg.operatorUid, method: "agents.release",
                                     params: .obj([("agent", .string(cfg.floodAgent))]), timeout: 20)
        if rel?["released"] == .bool(true) { print("(\(cfg.floodAgent) released from quarantine by the operator before this flood)") }
        // Earlier floods' red-line denials add up (docs/DESIGN.md §6.2): each flood starts outside agents-held.
        let cleared = try? PeerCall.call(path: f.d.operatorSocket, uid: cfg.operatorUid, method: "escalation.clear", params: nil, timeout: 20)
        if cleared?["cleared"] == .bool(true) { print("(site-wide escalation cleared by the operator before this flood)") }
        let p = try FloodProcess(exe: f.benchExe, uid: f.floodUid, socket: f.d.agentSocket, connections: cfg.flood,
                                 point: cfg.floodPoint, unknownPoint: cfg.floodUnknownPoint, reasonBytes: cfg.floodReasonBytes,
                                 logPath: "\(f.dir)/flood-\(DaemonBenchRun.nanos()).log")
        let (open, refused) = try p.waitOpen(timeout: 60)
        print("flood started: \(open) connections open, \(refused) refused")
        if open < cfg.flood { print("  WARNING: only \(open) of \(cfg.flood) flood connections were admitted") }
        usleep(useconds_t(cfg.floodWarmupSeconds * 1e6))
        loadAverage("flood on")
        return p
    }

    /// Stops the flood and prints what it did and what it cost the daemon.
    func floodReport(_ f: FloodSetup, _ p: FloodProcess, cpu0: UInt64, daemonCPU0: UInt64, status0: JSON?) throws {
        let cpu = (p.cpuMicros ?? 0) &- cpu0
        let dcpu = (f.d.child.cpuMicros ?? 0) &- daemonCPU0
        let status1 = status(f.d)
        loadAverage("flood end")
        let (t, seconds) = try p.stop()
        func n(_ k: String) -> Double { t[k]?.numberValue ?? 0 }
        let rate = n("requests") / max(0.001, seconds)
        print(String(format: "flood: %.0f requests in %.1f s (%.0f requests/s, %.1f MB/s of requests): %.0f denied (no grant), "
                     + "%.0f unknown point, %.0f busy (-32007), %.0f rate-limited, %.0f other errors, %.0f other answers, %.0f broken connections",
                     n("requests"), seconds, rate, n("bytes") / max(0.001, seconds) / 1e6, n("denied"), n("unknown"), n("busy"),
                     n("rateLimited"), n("otherErrors"), n("other"), n("broken"))
              + (t["firstOther"]?.stringValue.map { "; first other: \($0)" } ?? ""))
        print(String(format: "  redlined used %.0f%% of one core while flooded, the flood-agent process %.0f%% (from the flood's start "
                     + "to its end, the measurements included)", 100 * Double(dcpu) / 1e6 / seconds, 100 * Double(cpu) / 1e6 / seconds))
        if let s0 = status0, let s1 = status1 {
            func c(_ s: JSON, _ k: String) -> Double { s["counters"]?[k]?.numberValue ?? 0 }
            func j(_ s: JSON, _ k: String) -> Double { s["deviceJobs"]?[k]?.numberValue ?? 0 }
            print(String(format: "  daemon counters during the flood: +%.0f writes decided, +%.0f busy, +%.0f withheld, "
                         + "+%.0f failed; device jobs +%.0f safety, +%.0f scan, +%.0f agent (the agent jobs are the bench's agent's)",
                         c(s1, "writes") - c(s0, "writes"),
                         c(s1, "busy") - c(s0, "busy"), c(s1, "withheld") - c(s0, "withheld"), c(s1, "failed") - c(s0, "failed"),
                         j(s1, "safety") - j(s0, "safety"), j(s1, "scan") - j(s0, "scan"), j(s1, "agent") - j(s0, "agent")))
            var rules: [String] = []
            if case .object(let kv)? = s1["counters"]?["denied"] {
                for (rule, v) in kv {
                    let n = (v.numberValue ?? 0) - (s0["counters"]?["denied"]?[rule]?.numberValue ?? 0)
                    if n > 0 { rules.append("\(rule) +\(Int(n))") }
                }
            }
            print("  denials during the flood by rule (the flooding agent is quarantined after 3 red-line denials, RL-6 during an alarm): "
                  + (rules.isEmpty ? "none" : rules.sorted().joined(separator: ", ")))
        }
    }

    // MARK: - Plant and device control

    func plantSet(_ f: FloodSetup, _ name: String, _ v: Double) throws {
        _ = try f.ctl.call("plant.set", .obj([("name", .string(name)), ("value", .number(v))]))
    }

    func plantValue(_ f: FloodSetup, _ name: String) throws -> Double? { try f.ctl.call("plant.get")[name]?.numberValue }

    func sensorMode(_ f: FloodSetup, delayMs: Int?) throws {
        _ = try f.ctl.call("device.fault", .obj([("device", .string(cfg.sensor)), ("mode", delayMs == nil ? "none" : "slow"),
                                                 ("delayMs", delayMs.map { .number(Double($0)) })]))
    }

    /// Clears the fire alarm (the panel latches: a set to 0 is the reset at the panel) and waits
    /// until the daemon reads it off and has scanned a few times since (E-1 ended).
    func calm(_ f: FloodSetup) throws {
        try plantSet(f, f.alarm.id, 0)
        let by = Date().addingTimeInterval(10)
        while Date() < by {
            let v = try f.agent.call("points.read", .obj([("ids", .array([.string(f.alarm.id)]))]))["values"]?.arrayValue?.first
            if v?["value"] == .number(0), v?["quality"] == .string("good") { break }
            usleep(10_000)
        }
        usleep(useconds_t(3 * f.site.timing.scanIntervalMs * 1000))
    }

    /// The agent asks for the lock (held for an operator), the operator approves; the final answer.
    func lockViaApproval(_ f: FloodSetup) throws -> JSON {
        let held = try f.agent.call("points.write", .obj([("id", .string(f.lock.id)), ("value", 1),
                                                         ("reason", "redline-bench: lock the door before the alarm")]))
        guard held["outcome"]?.stringValue == "held", let rid = held["requestId"]?.stringValue else {
            if held["rule"]?.stringValue == "quarantined" {
                _ = try? PeerCall.call(path: f.d.operatorSocket, uid: cfg.operatorUid, method: "agents.release",
                                       params: .obj([("agent", .string(cfg.agent))]), timeout: 20)
            }
            return held
        }
        return try PeerCall.call(path: f.d.operatorSocket, uid: cfg.operatorUid, method: "approvals.approve",
                                 params: .obj([("requestId", .string(rid))]), timeout: 30)
    }

    // MARK: - E-1 under the flood

    struct E1Result {
        var hist: Histogram<UInt64>
        var label: String
        var missed = 0, skipped = 0
    }

    /// `cfg.floodReactions` rounds: door locked through an approval, sensor slow, alarm at a random
    /// phase of the scan; the time until the plant shows the door released.
    func e1Rounds(_ f: FloodSetup, sensorDelayMs delay: Int, label: String) throws -> E1Result {
        let interval = f.site.timing.scanIntervalMs
        var r = E1Result(hist: Self.hist(), label: label)
        var lockWhileSlow = true
        var lockNote = "executed with \(cfg.sensor) slow"
        loadAverage("E-1, \(cfg.sensor) \(delay) ms, \(label), start")
        for _ in 0..<cfg.floodReactions {
            try calm(f)
            // Lock through an approval: first with the sensor already slow; if the daemon fails it
            // closed (readings too old at actuation), with the sensor healthy, slowing it after.
            try sensorMode(f, delayMs: lockWhileSlow ? delay : nil)
            // The transaction in progress ends, then the sensor's scan loop reads it in the new mode.
            usleep(useconds_t((2 * interval + 2 * Int64(delay)) * 1000))
            var a = try lockViaApproval(f)
            if a["outcome"]?.stringValue != "executed", lockWhileSlow {
                lockWhileSlow = false
                lockNote = "with \(cfg.sensor) slow the approved lock was \(a["outcome"]?.stringValue ?? "?") "
                    + "(\(a["explanation"]?.stringValue ?? a.encoded())); locked with the sensor healthy, then slowed it"
                try sensorMode(f, delayMs: nil)
                usleep(useconds_t((2 * interval + 2 * Int64(delay)) * 1000))
                a = try lockViaApproval(f)
            }
            guard a["outcome"]?.stringValue == "executed", try plantValue(f, f.lock.id) == 1 else {
                print("  round skipped: lock not executed: \(a.encoded())")
                r.skipped += 1
                continue
            }
            if !lockWhileSlow { try sensorMode(f, delayMs: delay) }
            // Let the sensor's scan loop run slow for a while before the alarm.
            usleep(useconds_t((2 * interval + 2 * Int64(delay)) * 1000))
            guard try plantValue(f, f.lock.id) == 1 else { r.skipped += 1; continue }
            usleep(useconds_t.random(in: 0..<useconds_t(interval * 1000)))
            let t0 = Self.nanos()
            try plantSet(f, f.alarm.id, 1)
            var released: UInt64?
            let limit = t0 + 5_000_000_000
            while Self.nanos() < limit {
                if try plantValue(f, f.lock.id) == 0 { released = Self.nanos(); break }
                usleep(500)
            }
            if let released { r.hist.record((released - t0) / 1000) } else { r.missed += 1 }
        }
        try calm(f)
        try sensorMode(f, delayMs: nil)
        report("alarm -> door released on the plant (\(cfg.sensor) slow \(delay) ms, \(label))", r.hist)
        print("  door lock before each alarm: through an approval, \(lockNote)"
              + (r.skipped > 0 ? "; \(r.skipped) rounds skipped" : "") + (r.missed > 0 ? "; \(r.missed) never released within 5 s" : ""))
        loadAverage("E-1, \(cfg.sensor) \(delay) ms, \(label), end")
        return r
    }

    func e1Ratio(_ base: E1Result, _ under: E1Result, sensorDelayMs delay: Int, intervalMs: Int64) -> String {
        func ms(_ v: UInt64) -> Double { Double(v) / 1000 }
        let b50 = base.hist.valueAtPercentile(50), b99 = base.hist.valueAtPercentile(99)
        let u50 = under.hist.valueAtPercentile(50), u99 = under.hist.valueAtPercentile(99)
        let bound = UInt64(2 * intervalMs + 20) * 1000
        let line = String(format: "E-1 alarm -> door release, %@ slow %d ms, n=%llu+%llu: baseline p50 %.1f ms p99 %.1f ms; "
                          + "under the %d-connection flood p50 %.1f ms p99 %.1f ms (max %.1f ms); ratio flood/baseline p50 %.2f, p99 %.2f",
                          cfg.sensor as NSString, delay, base.hist.totalCount, under.hist.totalCount, ms(b50), ms(b99),
                          cfg.flood, ms(u50), ms(u99), ms(under.hist.max),
                          Double(u50) / Double(max(1, b50)), Double(u99) / Double(max(1, b99)))
            + " - flood p99 <= 2 scans + 20 ms (\(2 * intervalMs + 20) ms): \(u99 <= bound && under.missed == 0 ? "met" : "MISSED")"
            + (under.missed + base.missed > 0 ? " [\(base.missed)+\(under.missed) never released]" : "")
            + (under.skipped + base.skipped > 0 ? " [\(base.skipped)+\(under.skipped) rounds skipped]" : "")
        print(line)
        return line
    }

    // MARK: - Readings' age at actuation

    /// `cfg.ageWrites` executed writes of `cfg.agePoint` with the sensor slow; the age of the
    /// oldest condition reading when each went on the wire, from the audit's result records.
    func ageRun(_ f: FloodSetup, label: String) throws -> String {
        try calm(f)
        try sensorMode(f, delayMs: cfg.ageSensorDelayMs)
        usleep(useconds_t((3 * f.site.timing.scanIntervalMs + 4 * Int64(cfg.ageSensorDelayMs)) * 1000))
        loadAverage("readings age, \(label), start")
        let offset = (try? FileManager.default.attributesOfItem(atPath: f.d.audit)[.size] as? Int) ?? 0
        let s0 = status(f.d)
        var rids = Set<String>()
        var wall: [String: (sent: Int64, answered: Int64)] = [:]
        var outcomes: [String: Int] = [:]
        var latency = Self.hist()
        for i in 0..<cfg.ageWrites {
            let sent = Self.wallMillis()
            let t0 = Self.nanos()
            let a: JSON
            do {
                a = try f.agent.call("points.write", .obj([("id", .string(cfg.agePoint)), ("value", .number(22 + Double(i % 2))),
                                                          ("reason", "redline-bench: readings age")]))
            } catch {
                outcomes["error: \(error)", default: 0] += 1
                continue
            }
            let dt = (Self.nanos() - t0) / 1000
            let o = (a["outcome"]?.stringValue ?? "?") + (a["rule"]?.stringValue.map { " \($0)" } ?? "")
            outcomes[o, default: 0] += 1
            if o == "executed" { latency.record(dt) }
            if let rid = a["requestId"]?.stringValue { rids.insert(rid); wall[rid] = (sent, Self.wallMillis()) }
        }
        let s1 = status(f.d)
        try sensorMode(f, delayMs: nil)

        // The result records of these requests: executed ones carry readingsAgeMs; each withheld attempt has its own record.
        var ages = Self.hist()
        var agesList: [Int] = []
        var withheld = 0, failedRecords = 0
        var withheldWhy: [String: Int] = [:]
        // Where the time of each executed write went, from the records' seal times (wall clock, ms):
        // sent -> last decision sealed -> result sealed -> answer received.
        var decidedAt: [String: Int64] = [:]
        var toDecision = Self.hist(), decisionToResult = Self.hist(), resultToAnswer = Self.hist()
        usleep(200_000)
        let mine = "\"agent\":\"\(cfg.agent)\""
        for line in Self.auditLines(f.d.audit, from: offset, where: { head in
            head.contains("\"kind\":\"result\"") || (head.contains("\"kind\":\"decision\"") && head.contains(mine))
        }) {
            guard let rec = try? JSON.parse(line), let rid = rec["requestId"]?.stringValue, rids.contains(rid) else { continue }
            let at = rec["time"]?.stringValue.flatMap(Self.isoMillis)
            if rec["kind"]?.stringValue == "decision" {
                decidedAt[rid] = at
                continue
            }
            switch rec["outcome"]?.stringValue {
            case "executed":
                if let a = rec["readingsAgeMs"]?.numberValue { ages.record(UInt64(max(0, a))); agesList.append(Int(a)) }
                if let at, let dec = decidedAt[rid], let w = wall[rid] {
                    toDecision.record(UInt64(max(0, dec - w.sent)))
                    decisionToResult.record(UInt64(max(0, at - dec)))
                    resultToAnswer.record(UInt64(max(0, w.answered - at)))
                }
            case "withheld":
                withheld += 1
                let why = rec["why"]?.stringValue ?? "?"
                withheldWhy[why.replacingOccurrences(of: "[0-9]+ ms old", with: "N ms old", options: .regularExpression), default: 0] += 1
            case "failed": failedRecords += 1
            default: break
            }
        }
        let outs = outcomes.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
        report("points.write \(cfg.agePoint) executed, end to end (\(cfg.sensor) slow \(cfg.ageSensorDelayMs) ms, \(label))", latency)
        let interval = f.site.timing.scanIntervalMs
        let line = String(format: "readings age at actuation, %@ (%@ slow %d ms), %llu executed: p50 %llu ms, p99 %llu ms, max %llu ms "
                          + "(the guard's limit: one scan interval, %lld ms); outcomes: %@; %d withheld attempts, %d failed",
                          label as NSString, cfg.sensor as NSString, cfg.ageSensorDelayMs, ages.totalCount,
                          ages.valueAtPercentile(50), ages.valueAtPercentile(99), ages.max, interval, outs as NSString,
                          withheld, failedRecords)
        print(line)
        if toDecision.totalCount > 0 {
            func pp(_ h: Histogram<UInt64>) -> String { "p50 \(h.valueAtPercentile(50)) ms p99 \(h.valueAtPercentile(99)) ms" }
            print("  an executed write's time, from the audit records' seal times (ms): sent -> decision sealed (socket, parse, lane, "
                  + "fresh re-read) \(pp(toDecision)); decision -> result sealed (decision made durable, guarded write + read-back) "
                  + "\(pp(decisionToResult)); result -> answer received (result made durable, answer path) \(pp(resultToAnswer))")
        }
        if !withheldWhy.isEmpty {
            print("  withheld because: " + withheldWhy.sorted { $0.value > $1.value }.map { "\($0.key) (\($0.value))" }.joined(separator: "; "))
        }
        if let s0, let s1 {
            func c(_ s: JSON, _ k: String) -> Double { s["counters"]?[k]?.numberValue ?? 0 }
            print(String(format: "  status: +%.0f executed, +%.0f withheld, +%.0f failed, +%.0f busy; actuationReadingsAgeMs now %@ (all executed writes so far)",
                         c(s1, "executed") - c(s0, "executed"), c(s1, "withheld") - c(s0, "withheld"),
                         c(s1, "failed") - c(s0, "failed"), c(s1, "busy") - c(s0, "busy"),
                         (s1["actuationReadingsAgeMs"]?.encoded() ?? "?") as NSString))
        }
        loadAverage("readings age, \(label), end")
        return line
    }

    static func wallMillis() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
    }

    /// An audit record's time ("2026-12-01T10:45:38.974Z", UTC) in ms since the epoch.
    static func isoMillis(_ s: String) -> Int64? {
        let parts = s.split(whereSeparator: { "-T:.Z".contains($0) }).compactMap { Int32($0) }
        guard parts.count == 7 else { return nil }
        var t = tm()
        t.tm_year = parts[0] - 1900
        t.tm_mon = parts[1] - 1
        t.tm_mday = parts[2]
        t.tm_hour = parts[3]
        t.tm_min = parts[4]
        t.tm_sec = parts[5]
        return Int64(timegm(&t)) * 1000 + Int64(parts[6])
    }

    /// The lines of the audit file from `offset` on whose first 300 bytes satisfy `keep`
    /// (records name their kind, request and agent first; the flood writes GBs of audit).
    static func auditLines(_ path: String, from offset: Int, where keep: (String) -> Bool) -> [[UInt8]] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return [] }
        defer { close(fd) }
        var pos = off_t(offset)
        var carry: [UInt8] = []
        var out: [[UInt8]] = []
        var chunk = [UInt8](repeating: 0, count: 4 << 20)
        func scan(_ line: ArraySlice<UInt8>) {
            if keep(String(decoding: line.prefix(300), as: UTF8.self)) { out.append(Array(line)) }
        }
        while true {
            let n = chunk.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, pos) }
            if n <= 0 { break }
            pos += off_t(n)
            var data = carry
            data += chunk[..<n]
            var start = data.startIndex
            while let nl = data[start...].firstIndex(of: 0x0A) {
                scan(data[start..<nl])
                start = nl + 1
            }
            carry = Array(data[start...])
        }
        return out
    }
}
