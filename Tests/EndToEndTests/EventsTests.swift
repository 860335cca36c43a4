import Foundation
import RedlineClient
import RedlineCore
import RedlineTestSupport
import Testing

/// Operator events (`events.subscribe`, `redlinectl watch`) on a live daemon and plant.
@Suite("Operator events on a live plant", .serialized, .enabled(if: uidAvailable, "needs root to connect as the agents' uids"))
struct EventsTests {
    static let facilities: UInt32 = 2001

    static func names(_ events: [JSON]) -> [String] { events.compactMap { $0["event"]?.stringValue } }

    /// A subscriber in a process of its own (`redlinectl watch --json`): its socket lives outside
    /// this test process, whose many parallel suites open and close file descriptors all the time.
    final class Watcher {
        let child: ChildProcess
        init(_ s: PlantAndDaemon) throws {
            let ctl = try #require(TestPaths.executable("redlinectl"), "redlinectl is not built (run `swift build` first)")
            child = try ChildProcess(executable: ctl, arguments: ["watch", "--json", "--no-reconnect", "--socket", s.operatorSocket],
                                     logPath: s.dir.file("watch-\(UUID().uuidString).err"))
            let end = Date().addingTimeInterval(20)
            while Date() < end, !child.stderr.contains("subscribed") { Thread.sleep(forTimeInterval: 0.05) }
            guard child.stderr.contains("subscribed") else { throw TestSupportError("watch did not subscribe: \(child.stderr)") }
        }
        /// The audit seq the subscription started after (from watch's own line).
        var fromSeq: Int? {
            guard let r = child.stderr.range(of: "audit seq ") else { return nil }
            return Int(child.stderr[r.upperBound...].prefix { $0.isNumber })
        }
        var events: [JSON] { child.stdout.split(separator: "\n").compactMap { try? JSON.parse(String($0)) } }
        /// Waits until `want` holds for the events so far (or times out); returns them.
        func collect(timeout: Double = 45, until want: ([JSON]) -> Bool) -> [JSON] {
            let end = Date().addingTimeInterval(timeout)
            while Date() < end, !want(events) { Thread.sleep(forTimeInterval: 0.05) }
            return events
        }
        func stop() { child.stop() }
    }

    /// Drives one of every event kind a scripted plant can cause.
    static func script(_ s: PlantAndDaemon, _ c: UidRelay) throws {
        // request.held, then request.approved (it executes: the door locks)
        let held = try c.write("sra-door.lock", 1, reason: "night mode")
        let rid = try #require(held["requestId"]?.stringValue)
        _ = try s.operatorCall("approvals.approve", ["requestId": .string(rid)])
        _ = try c.write("sra-door.lock", 0)
        // request.held, then request.denied by the operator
        let held2 = try c.write("sra-door.lock", 1)
        _ = try s.operatorCall("approvals.deny", ["requestId": .string(held2["requestId"]?.stringValue ?? ""), "reason": "not tonight"])
        // redline.denied x3, then agent.quarantined; agent.released
        for _ in 0..<3 { _ = try c.write("dispatch.cancel", 1) }
        _ = try s.operatorCall("agents.release", ["agent": "facilities-agent"])
        // device.faulted, device.recovered
        try s.sim.fault("sra-occupancy", "timeout")
        try s.waitScans(3)
        try s.sim.fault("sra-occupancy", "none")
        try s.waitScans(3)
        // a held lock, then an alarm: E-2 expires it (request.expired), E-1 engages and ends
        _ = try c.write("sra-door.lock", 1)
        try s.sim.set("fire-panel.alarm", 1)
        try s.waitScans(3)
        try s.sim.set("fire-panel.alarm", 0)
        try s.waitScans(3)
    }

    static let scripted = ["request.held", "request.approved", "request.denied", "redline.denied", "agent.quarantined",
                           "agent.released", "device.faulted", "device.recovered", "request.expired", "effect.engaged", "effect.ended"]

    @Test("events.subscribe: every kind arrives for a scripted scenario, in audit order, each naming its durable record")
    func everyKindInAuditOrder() throws {
        let s = try PlantAndDaemon()
        let watcher = try Watcher(s)
        defer { watcher.stop() }
        #expect(watcher.child.stderr.contains(", ready)"), "\(watcher.child.stderr)")
        let from = try #require(watcher.fromSeq, "\(watcher.child.stderr)")
        let c = try s.agent(uid: Self.facilities)
        defer { c.close() }
        try Self.script(s, c)
        let events = watcher.collect { got in Set(Self.scripted).isSubset(of: Set(Self.names(got))) }
        let names = Self.names(events)
        for kind in Self.scripted { #expect(names.contains(kind), "no \(kind) in \(names); watch said: \(watcher.child.stderr)") }
        #expect(names.filter { $0 == "redline.denied" }.count == 3)
        // In audit order, after the subscription, each with the seq of a record of the right kind.
        let seqs = events.compactMap { $0["seq"]?.numberValue }.map(Int.init)
        #expect(seqs == seqs.sorted() && seqs.first.map { $0 > from } == true, "\(seqs)")
        let records = Dictionary(try s.auditRecords().compactMap { r in r["seq"]?.numberValue.map { (Int($0), r) } }, uniquingKeysWith: { a, _ in a })
        for e in events {
            let seq = Int(e["seq"]?.numberValue ?? -1)
            let r = try #require(records[seq], "event \(e.encoded()) names no record")
            #expect(OperatorEvents.events(for: r).contains(e), "record \(seq) does not stand for \(e.encoded())")
        }
        // Subscribing changed nothing; other requests on a subscribed connection are refused, not mixed in.
        let sub = try LineClient(path: s.operatorSocket, timeoutMs: 1000)
        defer { sub.close() }
        let ack = try sub.call("events.subscribe")
        #expect(ack["subscribed"] == .bool(true) && ack["ready"] == .bool(true))
        try sub.send(raw: Array("{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"status\"}\n".utf8))
        let answer = Self.answer(sub, id: 7)
        #expect(answer?["error"]?["message"]?.stringValue?.contains("subscribed") == true, "\(answer?.encoded() ?? "none")")
        #expect(try s.operatorCall("status")["events"]?["subscribers"] == .number(2))
    }

    static func answer(_ sub: LineClient, id: Int) -> JSON? {
        let end = Date().addingTimeInterval(10)
        while Date() < end {
            if let m = try? sub.readJSON(), m["id"] == .number(Double(id)) { return m }
        }
        return nil
    }

    @Test("a subscriber that stops reading is disconnected, never waited for: writes, approvals and effects go on")
    func slowSubscriberIsDisconnected() throws {
        let s = try PlantAndDaemon(daemonArgs: ["--event-buffer", "16"])
        let slow = try LineClient(path: s.operatorSocket, timeoutMs: 1000)
        _ = try slow.call("events.subscribe")
        // It never reads again. Hold and deny locks until the daemon gives up on it.
        let c = try s.agent(uid: Self.facilities)
        defer { c.close() }
        var cycles = 0
        while cycles < 3000 {
            let h = try c.write("sra-door.lock", 1, reason: String(repeating: "x", count: 200))
            _ = try s.operatorCall("approvals.deny", ["requestId": .string(h["requestId"]?.stringValue ?? "")])
            cycles += 1
            if cycles % 50 == 0, try s.operatorCall("status")["events"]?["disconnectedSlow"] == .number(1) { break }
        }
        let st = try s.operatorCall("status")
        #expect(st["events"]?["disconnectedSlow"] == .number(1), "after \(cycles) hold/deny cycles: \(st["events"]?.encoded() ?? "")")
        #expect(st["events"]?["subscribers"] == .number(0))
        // The daemon went on: an agent write executes, and an alarm still releases the door.
        #expect(try c.write("office-lights.on", 1)["outcome"]?.stringValue == "executed")
        try s.sim.set("fire-panel.alarm", 1)
        try s.waitScans(3)
        #expect(try s.operatorCall("status")["effectsActive"]?.arrayValue?.contains(.string("E-1 server-room-a")) == true)
        // The slow subscriber, reading at last, finds its stream ended.
        var ended = false
        let end = Date().addingTimeInterval(20)
        while Date() < end {
            do { _ = try slow.readLine() } catch ClientError.closed { ended = true; break } catch ClientError.timeout { continue } catch { ended = true; break }
        }
        #expect(ended)
    }

    @Test("redlinectl watch --exec: one run per event with the event on stdin; a stuck command is stopped and the stream goes on; it reconnects after a restart")
    func watchExec() throws {
        let s = try PlantAndDaemon()
        let ctl = try #require(TestPaths.executable("redlinectl"), "redlinectl is not built (run `swift build` first)")
        let hooked = s.dir.file("hooked.jsonl")
        // The first held request's hook hangs; every other one appends its stdin and environment.
        let script = """
            if [ "$REDLINE_EVENT" = request.held ] && [ ! -e \(s.dir.file("hung-once")) ]; then touch \(s.dir.file("hung-once")); sleep 600; fi
            { cat; echo "env $REDLINE_EVENT $REDLINE_SEQ $REDLINE_AGENT $REDLINE_POINT"; } >> \(hooked)
            """
        let watch = try ChildProcess(executable: ctl, arguments: ["watch", "--json", "--socket", s.operatorSocket,
                                                                  "--exec", script, "--exec-timeout", "1"],
                                     logPath: s.dir.file("watch.err"))
        defer { watch.stop() }
        let subscribed = Date().addingTimeInterval(20)
        while Date() < subscribed, !(watch.stderr.contains("subscribed")) { Thread.sleep(forTimeInterval: 0.05) }
        #expect(watch.stderr.contains("subscribed"), "\(watch.stderr)")
        let c = try s.agent(uid: Self.facilities)
        let held = try c.write("sra-door.lock", 1)                  // request.held: its hook hangs, is stopped after 1 s
        _ = try c.write("dispatch.cancel", 1)                       // redline.denied: its hook runs after
        _ = try s.operatorCall("approvals.deny", ["requestId": .string(held["requestId"]?.stringValue ?? "")])
        c.close()
        #expect(watch.waitForOutput(containing: "\"request.denied\"", timeout: 20), "\(watch.stdout)\n\(watch.stderr)")
        let hookEnd = Date().addingTimeInterval(10)
        func hookedText() -> String { (try? String(contentsOfFile: hooked, encoding: .utf8)) ?? "" }
        while Date() < hookEnd, !hookedText().contains("env request.denied") { Thread.sleep(forTimeInterval: 0.05) }
        let text = hookedText()
        #expect(watch.stderr.contains("still running after 1 s"), "\(watch.stderr)")
        #expect(text.contains("env redline.denied") && text.contains("dispatch.cancel"), "\(text)")
        #expect(text.contains("\"event\":\"redline.denied\""), "\(text)")  // the event itself on stdin
        #expect(!text.contains("env request.held"), "the hung hook was stopped before it wrote: \(text)")
        // Restart the daemon: watch reconnects and streams the new daemon's events.
        try s.killAndRestartDaemon()
        let again = Date().addingTimeInterval(20)
        while Date() < again, !watch.stderr.contains("reconnected") { Thread.sleep(forTimeInterval: 0.05) }
        #expect(watch.stderr.contains("were not streamed"), "\(watch.stderr)")
        let c2 = try s.agent(uid: Self.facilities)
        defer { c2.close() }
        let d = try c2.write("dispatch.cancel", 1)
        #expect(d["outcome"]?.stringValue == "denied")
        let rid = try #require(d["requestId"]?.stringValue)
        #expect(watch.waitForOutput(containing: rid, timeout: 20), "\(watch.stdout)\n\(watch.stderr)")
    }

    @Test("an agent's account cannot subscribe: the operator socket refuses it")
    func agentRefused() throws {
        let s = try PlantAndDaemon()
        let p = try UidRelay(path: s.operatorSocket, uid: Self.facilities)
        defer { p.close() }
        try p.sendLine("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"events.subscribe\"}")
        let r = try p.readJSON()
        #expect(r["error"]?["message"]?.stringValue?.contains("agents are never admitted") == true, "\(r.encoded())")
    }
}

/// docs/DESIGN.md §6.2 on a live plant: coordinated agents.
@Suite("Site-wide escalation on a live plant", .serialized, .enabled(if: uidAvailable, "needs root to connect as the agents' uids"))
struct EscalationLiveTests {
    /// The demo site with two more agents that may write the dispatch and the lights.
    static func threeAgents(_ text: String) -> String {
        text.replacingOccurrences(of: "operators:\n", with: """
              - {name: agent-two, uid: 2003, read: ["*"], write: ["dispatch.cancel", "office-lights.on"]}
              - {name: agent-three, uid: 2004, read: ["*"], write: ["dispatch.cancel", "office-lights.on"]}
            operators:

            """)
    }

    @Test("escalation: two agents quarantined means a third agent's lighting write is held; an operator clears it; writes flow again")
    func twoQuarantinedHoldTheThird() throws {
        let s = try PlantAndDaemon(siteEdit: Self.threeAgents)
        let watcher = try EventsTests.Watcher(s)
        defer { watcher.stop() }
        let one = try s.agent(uid: 2001), two = try s.agent(uid: 2003), three = try s.agent(uid: 2004)
        defer { one.close(); two.close(); three.close() }
        #expect(try three.write("office-lights.on", 1)["outcome"]?.stringValue == "executed")
        for _ in 0..<3 { _ = try one.write("dispatch.cancel", 1) }
        #expect(try three.write("office-lights.on", 0)["outcome"]?.stringValue == "executed")  // one quarantine: not yet
        for _ in 0..<3 { _ = try two.write("dispatch.cancel", 1) }
        let held = try three.write("office-lights.on", 1)
        #expect(held["outcome"]?.stringValue == "held", "\(held.encoded())")
        #expect(held["explanation"]?.stringValue?.contains("agents-held") == true)
        #expect(try s.sim.plant()["office-lights.on"] == 0)
        let st = try s.operatorCall("status")
        #expect(st["agentsHeld"]?["why"]?.stringValue?.contains("2 agents quarantined") == true, "\(st["agentsHeld"]?.encoded() ?? "nil")")
        // A red line is still a denial, not a hold.
        #expect(try three.write("dispatch.cancel", 1)["rule"]?.stringValue == "RL-2")
        // The operator clears it (audited); writes flow again; the quarantined stay quarantined.
        #expect(try s.operatorCall("escalation.clear")["cleared"] == .bool(true))
        #expect(try s.operatorCall("status")["agentsHeld"] == .null)
        #expect(try three.write("office-lights.on", 1)["outcome"]?.stringValue == "executed")
        #expect(try s.sim.plant()["office-lights.on"] == 1)
        #expect(try one.write("office-lights.on", 0)["rule"]?.stringValue == "quarantined")
        let records = try s.auditRecords().filter { $0["kind"]?.stringValue == "escalation" }
        #expect(records.compactMap { $0["state"]?.stringValue } == ["entered", "cleared"])
        let events = EventsTests.names(watcher.collect(timeout: 15) { EventsTests.names($0).contains("site.cleared") })
        #expect(events.contains("site.escalated") && events.contains("site.cleared"), "\(events)")
    }
}
