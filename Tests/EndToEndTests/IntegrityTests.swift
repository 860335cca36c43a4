import Foundation
import RedlineClient
import RedlineCore
import RedlineTestSupport
import RedlineSync
import Testing

/// The holes around the red lines (issue: integrity), closed and proved on a live daemon.
@Suite("Integrity around the red lines", .serialized, .enabled(if: uidAvailable, "needs root to connect as the agents' uids"))
struct IntegrityTests {
    static let facilities: UInt32 = 2001
    static let reporting: UInt32 = 2002

    /// `offsetMs` > 0: the deny is sent that long after the approval; < 0: the approval that long after the deny.
    @Test("approve and deny racing on purpose: the operators' answers match the final outcome and the plant",
          arguments: [-20, -5, -1, 0, 1, 3, 6, 12, 25, 50])
    func approveDenyRace(offsetMs: Int) throws {
        let s = try PlantAndDaemon()
        let c = try s.agent(uid: Self.facilities)
        defer { c.close() }
        // A slower zone re-read widens the window in which the two can meet.
        try s.sim.fault("sra-env", "slow", delayMs: 20)
        let held = try c.write("sra-door.lock", 1)
        let rid = try #require(held["requestId"]?.stringValue)
        let approveAnswer = Lock<JSON?>(nil), denyAnswer = Lock<JSON?>(nil)
        // Both connections are open before either request is sent, so only the offset separates them.
        let path = s.operatorSocket
        let ready = DispatchSemaphore(value: 0), go = DispatchSemaphore(value: 0)
        let ta = Thread {
            let ac = try? LineClient(path: path)
            ready.signal(); go.wait()
            if offsetMs < 0 { usleep(UInt32(-offsetMs) * 1000) }
            let r = try? ac?.request("approvals.approve", ["requestId": .string(rid)])
            approveAnswer.withLock { $0 = r }
        }
        let td = Thread {
            let dc = try? LineClient(path: path)
            ready.signal(); go.wait()
            if offsetMs > 0 { usleep(UInt32(offsetMs) * 1000) }
            let r = try? dc?.request("approvals.deny", ["requestId": .string(rid), "reason": "not today"])
            denyAnswer.withLock { $0 = r }
        }
        ta.start()
        td.start()
        ready.wait(); ready.wait()
        go.signal(); go.signal()
        let deadline = Date().addingTimeInterval(10)
        while (approveAnswer.withLock({ $0 }) == nil || denyAnswer.withLock({ $0 }) == nil) && Date() < deadline { usleep(5000) }
        let approve = try #require(approveAnswer.withLock { $0 })
        let deny = try #require(denyAnswer.withLock { $0 })
        let final = try #require(try c.request("requests.get", ["requestId": .string(rid)])["result"]?["outcome"]?.stringValue)
        let locked = try s.sim.plant()["sra-door.lock"] == 1
        let approveOutcome = approve["result"]?["outcome"]?.stringValue
        let denyOutcome = deny["result"]?["outcome"]?.stringValue
        print("race at \(offsetMs) ms: approve \(approveOutcome ?? approve["error"]?["message"]?.stringValue ?? "?"), deny \(denyOutcome ?? deny["error"]?["message"]?.stringValue ?? "?"), final \(final), locked \(locked)")
        if denyOutcome == "denied" {
            // The deny won: no approval executed, the door never locked.
            #expect(approveOutcome == nil, "an approval answered \(approve.encoded()) after a deny was recorded")
            #expect(final == "denied")
            #expect(!locked)
        } else {
            // The approval won: the deny was told it was too late, and the outcome is the approval's.
            #expect(deny["error"]?["message"]?.stringValue?.contains("too late") == true || deny["error"]?["message"]?.stringValue?.contains("not held") == true,
                    "\(deny.encoded())")
            #expect(approveOutcome == final)
            #expect(locked == (final == "executed"))
        }
    }

    @Test("an agent holding an operator group is refused on the operator socket")
    func agentWithOperatorGroupIsRefused() throws {
        let s = try PlantAndDaemon(siteEdit: { $0.replacingOccurrences(of: "  - {uid: 0}\n", with: "  - {uid: 0}\n  - {gid: 3333}\n") })
        // Without the agent check, gid 3333 would admit uid 2001 (it is not an account here, so the
        // start-up group check cannot see it; the connection check must).
        let op = try UidRelay(path: s.operatorSocket, uid: Self.facilities, groups: [3333])
        defer { op.close() }
        let refused = try op.readJSON()
        #expect(refused["error"]?["code"]?.numberValue == -32006, "\(refused.encoded())")
        #expect(refused["error"]?["message"]?.stringValue?.contains("agents are never admitted") == true)
        // A person (not an agent) in that group is admitted.
        let person = try UidRelay(path: s.operatorSocket, uid: 3001, groups: [3333])
        defer { person.close() }
        #expect(try person.request("status")["result"]?["ready"]?.boolValue == true)
    }

    @Test("explanations name only inputs the agent may read")
    func explanationsStayInTheCompartment() throws {
        let s = try PlantAndDaemon()
        let r = try s.agent(uid: Self.reporting)
        defer { r.close() }
        try s.sim.set("server-room-a.occupied", 1)
        try s.waitScans(2)
        let a = try r.write("crac-1.run", 0)
        #expect(a["rule"]?.stringValue == "RL-5")
        let why = a["explanation"]?.stringValue ?? ""
        #expect(!why.contains("sra-occupancy"), "\(why)")
        #expect(why.contains("server-room-a is occupied (by an input you cannot read)"), "\(why)")
        #expect(try r.request("points.read", ["ids": ["sra-occupancy.occupied"]])["error"]?["code"]?.numberValue == -32004)
        try s.sim.set("fire-panel.alarm", 1)
        try s.waitScans(2)
        let b = try r.write("crac-1.run", 1)
        #expect(b["rule"]?.stringValue == "RL-6")
        let bWhy = b["explanation"]?.stringValue ?? ""
        #expect(!bWhy.contains("fire-panel"), "\(bWhy)")
    }

    @Test("every expiry is audited, however it is first noticed, and malformed write attempts are audited with their text")
    func everythingIsAudited() throws {
        let s = try PlantAndDaemon(siteEdit: { $0.replacingOccurrences(of: "timeout-s: 300", with: "timeout-s: 1") })
        let c = try s.agent(uid: Self.facilities)
        defer { c.close() }
        let held = try c.write("sra-door.lock", 1)
        let rid = try #require(held["requestId"]?.stringValue)
        usleep(1_300_000)
        // First noticed through requests.get (or by a scan: either way it is in the log once).
        #expect(try c.request("requests.get", ["requestId": .string(rid)])["result"]?["outcome"]?.stringValue == "expired")
        // The record is queued at once and written by the audit thread: give it a moment.
        var expired: [JSON] = []
        for _ in 0..<30 {
            expired = try s.auditRecords().filter { $0["kind"]?.stringValue == "expired" && $0["requestId"]?.stringValue == rid }
            if !expired.isEmpty { break }
            usleep(100_000)
        }
        usleep(300_000)
        expired = try s.auditRecords().filter { $0["kind"]?.stringValue == "expired" && $0["requestId"]?.stringValue == rid }
        #expect(expired.count == 1, "\(expired.map { $0.encoded() })")
        // A write with a string value and an override code: refused -32602, audited with what it said.
        let bad = try c.request("points.write", ["id": "dispatch.cancel", "value": "1", "reason": "Override code EXEC-4429"])
        #expect(bad["error"]?["code"]?.numberValue == -32602)
        usleep(200_000)
        let rec = try s.auditRecords().last { $0["kind"]?.stringValue == "rejected" }
        let text = rec?["text"]?.encoded() ?? ""
        #expect(text.contains("EXEC-4429") && text.contains("dispatch.cancel"), "\(rec?.encoded() ?? "none")")
    }
}

/// Loads the daemon on purpose: run on its own by scripts/test.sh (see UnderLoadLivenessTests).
@Suite("Bounded memory under a decision flood", .enabled(if: uidAvailable, "needs root to connect as the agents' uids"))
struct UnderLoadMemoryTests {
    static let facilities: UInt32 = 2001
    static let reporting: UInt32 = 2002

    @Test("request history stays bounded and memory flat under 50,000 decisions with a request held throughout")
    func boundedHistoryUnderAFlood() throws {
        let s = try PlantAndDaemon(daemonArgs: ["--no-audit-fsync", "--max-in-flight", "16"])
        let c = try s.agent(uid: Self.facilities)
        defer { c.close() }
        #expect(try c.write("sra-door.lock", 1)["outcome"]?.stringValue == "held")
        func rssKiB() -> Int {
            let text = (try? String(contentsOfFile: "/proc/\(s.daemon.process.processIdentifier)/status", encoding: .utf8)) ?? ""
            let line = text.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
            return Int(line.split(separator: " ").dropFirst().first ?? "0") ?? 0
        }
        func decisions() throws -> Int {
            let st = try s.operatorCall("status")
            return Int(st["counters"]?["writes"]?.numberValue ?? 0)
        }
        let line: @Sendable (Int, Int) -> String = { _, i in
            #"{"jsonrpc":"2.0","id":\#(i),"method":"points.write","params":{"id":"crac-1.setpoint","value":22}}"#
        }
        let flood = try Flood(socket: s.agentSocket, uid: Self.reporting, connections: 12, request: line)
        defer { flood.stop() }
        var atTen: Int?
        let deadline = Date().addingTimeInterval(600)
        while try decisions() < 50_000 && Date() < deadline {
            if atTen == nil, try decisions() >= 10_000 { atTen = rssKiB() }
            usleep(200_000)
        }
        flood.stop()
        let n = try decisions()
        let end = rssKiB()
        let st = try s.operatorCall("status")
        print("history under a flood: \(n) decisions; RSS \(atTen ?? 0) KiB at 10,000, \(end) KiB at the end; history \(st["requestHistory"]?.numberValue ?? -1)")
        #expect(n >= 50_000)
        #expect(st["pendingApprovals"]?.numberValue == 1, "the held request stayed held")
        #expect((st["requestHistory"]?.numberValue ?? .infinity) <= 10_000)
        #expect(end - (atTen ?? end) < 16 * 1024, "RSS grew from \(atTen ?? 0) to \(end) KiB")
        #expect(try c.write("office-lights.on", 1)["outcome"]?.stringValue == "executed", "still serving")
    }
}
