import Foundation
import RedlineClient
import RedlineCore
import RedlineTestSupport
import RedlineSync
import Synchronization
import Testing

/// The daemon's own safety actions hold their timing whatever agents do (issue: liveness).
/// Real simulator and daemon; agents connect as their own uids through setpriv.
///
/// These suites load the machine on purpose (63 agent connections with 60 KB lines), so
/// `scripts/test.sh` runs every suite named `UnderLoad...` on its own, after the others:
/// run in parallel with them, the flood would make their timing flaky, not these.
@Suite("Liveness under agent load", .serialized, .enabled(if: uidAvailable, "needs root to connect as the agents' uids"))
struct UnderLoadLivenessTests {
    static let facilities: UInt32 = 2001
    static let reporting: UInt32 = 2002
    /// The demo site's scan interval.
    static let scanMs: Int64 = 100
    static let longReason = String(repeating: "Override code EXEC-4429, certain it is a false alarm. ", count: 1100)  // ~60 KB

    /// A read-only agent's flood: writes it has no grant for, with ~60 KB reasons, half of them to unknown points.
    static func floodLine(_ k: Int, _ i: Int) -> String {
        let point = (k + i) % 2 == 0 ? "crac-1.setpoint" : "no-such.point-\(i % 7)"
        return JSON.obj([("jsonrpc", "2.0"), ("id", .number(Double(i))), ("method", "points.write"),
                         ("params", .obj([("id", .string(point)), ("value", 30), ("reason", .string(longReason))]))]).encoded()
    }

    /// Locks the server-room door through an operator's approval, on a calm, empty plant.
    func lockDoor(_ s: PlantAndDaemon, _ c: UidRelay) throws {
        let held = try c.write("sra-door.lock", 1)
        let rid = try #require(held["requestId"]?.stringValue)
        let done = try s.operatorCall("approvals.approve", ["requestId": .string(rid)])
        try #require(done["outcome"]?.stringValue == "executed", "\(done.encoded())")
        try #require(try s.sim.plant()["sra-door.lock"] == 1)
    }

    /// Polls the plant until `pred` holds; returns the monotonic time it was first seen, or nil after `timeout` ms.
    func firstSeen(_ s: PlantAndDaemon, timeout: Int64 = 10_000, _ pred: ([String: Double]) -> Bool) throws -> Int64? {
        let ctl = try s.sim.control()
        defer { ctl.close() }
        let deadline = Monotonic.milliseconds() + timeout
        while Monotonic.milliseconds() < deadline {
            let o = try ctl.call("plant.get")
            var plant: [String: Double] = [:]
            if case .object(let kv) = o { for (k, v) in kv { if let n = v.numberValue { plant[k] = n } } }
            if pred(plant) { return Monotonic.milliseconds() }
            usleep(1000)
        }
        return nil
    }

    @Test("E1: under a 63-connection flood with the room's sensor slow, the door is released within 2 scans + 20 ms and the watchdog keeps beating",
          arguments: [50, 150])
    func E1_doorReleasedUnderAgentLoad(sensorDelayMs: Int) throws {
        let dir = TempDir(prefix: "rlnotify")
        let notify = try NotifyListener(path: dir.file("notify"))
        defer { notify.stop() }
        let watchdogUsec: Int64 = 2_000_000
        let s = try PlantAndDaemon(daemonArgs: ["--max-connections", "64", "--max-connections-per-uid", "64"],
                                   daemonEnvironment: ["NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": String(watchdogUsec)])
        let c = try s.agent(uid: Self.facilities)
        defer { c.close() }
        try lockDoor(s, c)

        // The connection cap is 64: the read-only agent takes every other one.
        let flood = try Flood(socket: s.agentSocket, uid: Self.reporting, connections: 63, request: Self.floodLine)
        defer { flood.stop() }
        try s.sim.fault("sra-env", "slow", delayMs: sensorDelayMs)
        let loadStart = Monotonic.milliseconds()
        usleep(1_500_000)
        let before = flood.answers
        #expect(before > 0, "the flood is answered")

        let t0 = Monotonic.milliseconds()
        try s.sim.set("fire-panel.alarm", 1)
        let released = try firstSeen(s) { $0["sra-door.lock"] == 0 }
        let t1 = try #require(released, "the door was never released")
        usleep(500_000)
        let loadEnd = Monotonic.milliseconds()
        let reaction = t1 - t0
        let gap = notify.longestWatchdogGap(from: loadStart + 200, to: loadEnd)
        print("E-1 under load (sensor \(sensorDelayMs) ms): released after \(reaction) ms; longest watchdog gap \(gap) ms; flood answers \(flood.answers - before) during the alarm phase, \(flood.answers) in all")
        #expect(reaction <= 2 * Self.scanMs + 20, "E-1 took \(reaction) ms under load")
        #expect(gap < watchdogUsec / 2000, "a watchdog gap of \(gap) ms (limit \(watchdogUsec / 2000) ms)")
        #expect(flood.answers > before, "agents were still being answered")
        // The daemon keeps serving, and the flood's denials are in the log, audited with capped reasons.
        let st = try s.operatorCall("status")
        #expect(st["ready"]?.boolValue == true)
        #expect((st["counters"]?["denied"]?["not-writable"]?.numberValue ?? 0) > 0)
        let rec = try s.auditRecords().last { $0["kind"]?.stringValue == "decision" && $0["rule"]?.stringValue == "not-writable" }
        #expect(rec?["reason"]?["bytes"]?.numberValue ?? 0 > 4096)
        #expect((rec?["reason"]?["excerpt"]?.stringValue?.utf8.count ?? .max) <= 4096)
        #expect(rec?["reason"]?["sha256"]?.stringValue?.count == 64)
    }

    @Test("freshness: an approved lock is never written more than one scan interval after the room reads occupied (swept)",
          arguments: [0, 5, 15, 40, 80, 150, 250, 400, 800])
    func freshnessOfApprovedLock(occupyAfterMs: Int) throws {
        let s = try PlantAndDaemon(daemonArgs: ["--max-connections", "64", "--max-connections-per-uid", "64", "--log-level", "debug"])
        let c = try s.agent(uid: Self.facilities)
        defer { c.close() }
        let flood = try Flood(socket: s.agentSocket, uid: Self.reporting, connections: 63, request: Self.floodLine)
        defer { flood.stop() }
        // Slow, but fast enough that the room's readings can be young at actuation: the zone's
        // re-read takes two transactions (its inputs are two register runs), 40 ms. At 50 ms a
        // transaction no reading could be under one scan interval old, and every lock fails closed.
        try s.sim.fault("sra-env", "slow", delayMs: 20)
        usleep(500_000)

        let held = try c.write("sra-door.lock", 1)
        let rid = try #require(held["requestId"]?.stringValue)
        // Watch the plant from now on: when the door first reads locked.
        let lockedAt = Lock<Int64?>(nil)
        let watching = Atomic<Bool>(true)
        let controlPath = s.sim.controlPath
        let watcher = Thread {
            guard let ctl = try? LineClient(path: controlPath) else { return }
            defer { ctl.close() }
            while watching.load(ordering: .relaxed) {
                if let o = try? ctl.call("plant.get"), o["sra-door.lock"]?.numberValue == 1 {
                    lockedAt.withLock { if $0 == nil { $0 = Monotonic.milliseconds() } }
                }
                usleep(2000)
            }
        }
        watcher.start()
        let answer = Lock<JSON?>(nil)
        let approver = Thread {
            let r = try? s.operatorCall("approvals.approve", ["requestId": .string(rid)])
            answer.withLock { $0 = r }
        }
        approver.start()
        usleep(UInt32(occupyAfterMs) * 1000)
        let occupiedAt = Monotonic.milliseconds()
        try s.sim.set("server-room-a.occupied", 1)
        let deadline = Date().addingTimeInterval(10)
        while answer.withLock({ $0 }) == nil && Date() < deadline { usleep(5000) }
        usleep(300_000)
        watching.store(false, ordering: .relaxed)
        usleep(50_000)
        let outcome = answer.withLock { $0 }?["outcome"]?.stringValue
        let locked = lockedAt.withLock { $0 }
        print("freshness sweep \(occupyAfterMs) ms: outcome \(outcome ?? "none") (\(answer.withLock { $0 }?["explanation"]?.stringValue ?? "")), locked \(locked.map { "\($0 - occupiedAt) ms after occupancy" } ?? "never")")
        if ProcessInfo.processInfo.environment["REDLINE_TEST_TIMING"] != nil,
           let log = try? String(contentsOfFile: s.dir.file("redlined.log"), encoding: .utf8) {
            for l in log.split(separator: "\n") where l.contains("write timing") || l.contains("approv") { print("  daemon: \(l.suffix(300))") }
        }
        if let locked {
            // Polling every 2 ms adds a few ms to the observed time, never less.
            #expect(locked - occupiedAt <= Self.scanMs + 10, "locked \(locked - occupiedAt) ms after the room read occupied")
            #expect(outcome == "executed")
        } else {
            #expect(outcome == "denied" || outcome == "failed", "\(outcome ?? "no answer")")
        }
        #expect(try s.sim.plant()["sra-door.lock"] == (outcome == "executed" ? 1 : 0), "the operator's answer matches the plant")
    }

}

/// Bounded admission: shares, in-flight bounds, half-close and idle connections.
@Suite("Admission bounds", .serialized, .enabled(if: uidAvailable, "needs root to connect as the agents' uids"))
struct AdmissionTests {
    static let facilities: UInt32 = 2001
    static let reporting: UInt32 = 2002
    static func floodLine(_ k: Int, _ i: Int) -> String { UnderLoadLivenessTests.floodLine(k, i) }

    @Test("starvation: an agent holding every connection it may have cannot stop another agent or an operator from being served")
    func starvation() throws {
        let s = try PlantAndDaemon(daemonArgs: ["--max-connections", "8"])
        // The reporting agent asks for all 8; its share is 4, the rest are refused at once with -32007.
        var extra: [UidRelay] = []
        defer { for x in extra { x.close() } }
        let flood = try Flood(socket: s.agentSocket, uid: Self.reporting, connections: 4, request: Self.floodLine)
        defer { flood.stop() }
        usleep(300_000)
        for _ in 0..<4 {
            let x = try s.agent(uid: Self.reporting)
            extra.append(x)
            let refused = try x.readJSON()
            #expect(refused["error"]?["code"]?.numberValue == -32007, "\(refused.encoded())")
            #expect(refused["error"]?["message"]?.stringValue?.contains("share") == true)
        }
        let c = try s.agent(uid: Self.facilities)
        defer { c.close() }
        #expect(try c.write("office-lights.on", 1)["outcome"]?.stringValue == "executed")
        #expect(try s.operatorCall("status")["ready"]?.boolValue == true)
        #expect(flood.answers > 0)
    }

    @Test("bounded admission: writes over an agent's in-flight share get an immediate -32007; the others are answered")
    func inFlightShare() throws {
        let s = try PlantAndDaemon(daemonArgs: ["--max-in-flight", "1"])
        try s.sim.fault("sra-env", "slow", delayMs: 20)
        let conns = try (0..<4).map { _ in try s.agent(uid: Self.facilities) }
        defer { for c in conns { c.close() } }
        for (k, c) in conns.enumerated() {
            try c.sendLine(JSON.obj([("jsonrpc", "2.0"), ("id", .number(Double(k))), ("method", "points.write"),
                                     ("params", .obj([("id", "crac-1.setpoint"), ("value", 22)]))]).encoded())
        }
        let answers = try conns.map { try $0.readJSON() }
        let busy = answers.filter { $0["error"]?["code"]?.numberValue == -32007 }
        let executed = answers.filter { $0["result"]?["outcome"]?.stringValue == "executed" }
        #expect(busy.count >= 1, "\(answers.map { $0.encoded() })")
        #expect(executed.count >= 1, "\(answers.map { $0.encoded() })")
        #expect(busy.count + executed.count == 4, "\(answers.map { $0.encoded() })")
        #expect(busy.first?["error"]?["message"]?.stringValue?.contains("in progress") == true)
    }

    @Test("a write the agent has no grant for, or one from a quarantined agent, does no device I/O at all")
    func noDeviceIOWithoutAGrant() throws {
        let s = try PlantAndDaemon()
        let r = try s.agent(uid: Self.reporting)
        defer { r.close() }
        func agentJobs() throws -> Double { try s.operatorCall("status")["deviceJobs"]?["agent"]?.numberValue ?? -1 }
        let before = try agentJobs()
        for v in [22.0, 30, 15] {
            #expect(try r.write("crac-1.setpoint", v)["rule"]?.stringValue == "not-writable")
        }
        #expect(try agentJobs() == before, "no fresh re-read, no write")
        // The nearest write that may proceed does re-read the zone first.
        let c = try s.agent(uid: Self.facilities)
        defer { c.close() }
        #expect(try c.write("crac-1.setpoint", 22)["outcome"]?.stringValue == "executed")
        #expect(try agentJobs() > before)
    }

    @Test("a client that sends its request and half-closes still gets its answer")
    func halfClose() throws {
        let s = try PlantAndDaemon()
        let c = try s.agent(uid: Self.facilities)
        defer { c.close() }
        try c.sendLine(#"{"jsonrpc":"2.0","id":7,"method":"points.write","params":{"id":"office-lights.on","value":1}}"#)
        c.finishSending()
        let a = try c.readJSON()
        #expect(a["result"]?["outcome"]?.stringValue == "executed", "\(a.encoded())")
        #expect(try s.sim.plant()["office-lights.on"] == 1)
    }

    @Test("a last line over the limit, ended by a half-close instead of a newline, is answered too long, not dropped unsaid")
    func halfCloseAfterTooLongLine() throws {
        let s = try PlantAndDaemon()
        let c = try s.agent(uid: Self.facilities)
        defer { c.close() }
        try c.sendLine(#"{"jsonrpc":"2.0","id":1,"method":"site.describe"}"#)
        try c.send(raw: Array(repeating: UInt8(ascii: "x"), count: 70_000))
        c.finishSending()
        #expect(try c.readJSON()["result"] != nil)
        let a = try c.readJSON()
        #expect(a["error"]?["code"]?.numberValue == -32600, "\(a.encoded())")
        #expect(a["error"]?["message"]?.stringValue?.contains("70000 bytes exceeds the limit") == true, "\(a.encoded())")
    }

    @Test("an idle connection is closed after the idle timeout")
    func idleTimeout() throws {
        let s = try PlantAndDaemon(daemonArgs: ["--idle-timeout", "1"])
        let c = try s.agent(uid: Self.facilities)
        defer { c.close() }
        #expect(try c.request("site.describe")["result"] != nil)
        #expect(try c.readLine(timeout: 5) == nil, "the daemon closed the idle connection")
    }
}

/// The counters `status` shows agree with what agents were told.
@Suite("Status counters", .enabled(if: uidAvailable, "needs root to connect as the agents' uids"))
struct CounterTests {
    @Test("writes count each request once, whatever its outcome; an approval is not a new write")
    func countersAgree() throws {
        let s = try PlantAndDaemon()
        let c = try s.agent(uid: 2001)
        defer { c.close() }
        #expect(try c.write("office-lights.on", 1)["outcome"]?.stringValue == "executed")
        #expect(try c.write("dispatch.cancel", 1)["rule"]?.stringValue == "RL-2")
        let held = try c.write("sra-door.lock", 1)
        let rid = try #require(held["requestId"]?.stringValue)
        #expect(try s.operatorCall("approvals.approve", ["requestId": .string(rid)])["outcome"]?.stringValue == "executed")
        try s.sim.fault("office-lights", "timeout")
        #expect(try c.write("office-lights.on", 0)["outcome"]?.stringValue == "failed")
        let k = try s.operatorCall("status")["counters"]
        #expect(k?["writes"]?.numberValue == 4, "\(k?.encoded() ?? "")")
        #expect(k?["executed"]?.numberValue == 2)
        #expect(k?["held"]?.numberValue == 1)
        #expect(k?["failed"]?.numberValue == 1)
        #expect(k?["denied"]?["RL-2"]?.numberValue == 1)
    }
}

/// E-4 and RL-11 on a live plant.
@Suite("E-4 and RL-11 end to end", .serialized, .enabled(if: uidAvailable, "needs root to connect as the agents' uids"))
struct LifeSupportRestoreTests {
    @Test("E4: an exhaust an agent stopped at night runs again when a technician walks in")
    func E4_nightStopThenPersonEnters() throws {
        let s = try PlantAndDaemon()
        let c = try s.agent(uid: 2001)
        defer { c.close() }
        #expect(try c.write("sra-exhaust.run", 0, reason: "night: save energy")["outcome"]?.stringValue == "executed")
        #expect(try c.write("crac-2.setpoint", 32)["outcome"]?.stringValue == "executed")
        try s.waitScans(3)
        #expect(try s.sim.plant()["sra-exhaust.run"] == 0, "empty room: the stop stands")
        try s.sim.set("server-room-a.occupied", 1)
        try s.waitScans(3)
        // Restored within a few scans (a loaded machine may need more than three).
        for _ in 0..<50 where try s.sim.plant()["sra-exhaust.run"] != 1 { usleep(100_000) }
        let p = try s.sim.plant()
        #expect(p["sra-exhaust.run"] == 1)
        #expect(p["crac-2.setpoint"] ?? 0 <= 27)
        let recs = try s.auditRecords()
        #expect(recs.contains { $0["kind"]?.stringValue == "effect" && $0["effect"]?.stringValue == "E-4" && $0["state"]?.stringValue == "engaged" },
                "\(recs.filter { $0["kind"]?.stringValue?.hasPrefix("effect") == true || $0["kind"]?.stringValue == "result" }.map { $0.encoded() })")
        // While E-4 holds the setpoint, another value is RL-11 (a lower one RL-5 would allow).
        let r = try c.write("crac-2.setpoint", 24)
        #expect(r["rule"]?.stringValue == "RL-11", "\(r.encoded())")
        // The technician leaves: E-4 ends.
        try s.sim.set("server-room-a.occupied", 0)
        try s.waitScans(3)
        #expect(try s.auditRecords().contains { $0["effect"]?.stringValue == "E-4" && $0["state"]?.stringValue == "ended" })
    }

    @Test("RL11: an agent cannot switch off the annunciator E-3 drives in an occupied hazard")
    func RL11_annunciatorHeldByE3() throws {
        let s = try PlantAndDaemon()
        let c = try s.agent(uid: 2001)
        defer { c.close() }
        try s.sim.set("server-room-a.occupied", 1)
        try s.sim.set("server-room-a.co2", 0.8)
        try s.waitScans(3)
        #expect(try s.sim.plant()["sra-annunciator.strobe"] == 1)
        let r = try c.write("sra-annunciator.strobe", 0, reason: "too loud")
        #expect(r["outcome"]?.stringValue == "denied")
        #expect(r["rule"]?.stringValue == "RL-11", "\(r.encoded())")
        #expect(try s.sim.plant()["sra-annunciator.strobe"] == 1)
        #expect(try c.write("sra-annunciator.strobe", 1)["outcome"]?.stringValue == "executed")
    }
}
