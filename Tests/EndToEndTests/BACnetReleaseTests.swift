import Foundation
import RedlineClient
import RedlineCore
import RedlineTestSupport
import Testing

/// `points.release` on the BACnet demo site, through real processes: redlined's BACnet/IP
/// client against redline-sim's devices over UDP (issue 17: "an agent's release of an output
/// writes NULL at the agent priority, and only there"; "relinquish returns to the next priority
/// or to Relinquish_Default, and the red lines are decided on that value").
@Suite("BACnet site: an agent releases its command (points.release)", .serialized)
struct BACnetReleaseTests {
    static let facilities: UInt32 = 2001

    static func release(_ c: UidRelay, _ id: String, reason: String? = nil) throws -> JSON {
        let r = try c.request("points.release", .obj([("id", .string(id)), ("reason", reason.map { .string($0) })]))
        if let e = r["error"] { throw TestSupportError("points.release error: \(e.encoded())") }
        return r["result"] ?? .null
    }

    /// The decision and result records of one request, from the audit log. The decision is
    /// durable before the answer; the result is queued, so it is waited for (boundedly) unless
    /// none is expected.
    static func records(_ s: PlantAndDaemon, _ rid: String, result expected: Bool = true) throws -> (decision: JSON?, result: JSON?) {
        let deadline = Date().addingTimeInterval(expected ? 5 : 0.3)
        while true {
            let recs = try s.auditRecords().filter { $0["requestId"]?.stringValue == rid }
            let d = recs.last { $0["kind"]?.stringValue == "decision" }, r = recs.last { $0["kind"]?.stringValue == "result" }
            if (r != nil) || Date() >= deadline { return (d, r) }
            usleep(20_000)
        }
    }

    @Test("a release returns the CRAC's setpoint to the next priority (a schedule at 12), then to Relinquish_Default; each is decided and audited on that value")
    func releaseReturnsToTheNextPriorityThenRelinquishDefault() throws {
        let s = try PlantAndDaemon(site: "demo-datacenter-bacnet.yaml")
        defer { s.stop() }
        let c = try s.agent(uid: Self.facilities)
        defer { c.close() }
        try s.waitScans(2)
        let relinquishDefault = try #require(try s.sim.plant()["crac-1.setpoint"])

        // The site says which points an agent may release: the BACnet outputs it may write.
        let described = try c.request("site.describe", nil)["result"]?["points"]?.arrayValue ?? []
        func releasable(_ id: String) -> Bool { described.first { $0["id"]?.stringValue == id }?["releasable"]?.boolValue == true }
        #expect(releasable("crac-1.setpoint") && releasable("sra-door.lock"))
        #expect(!releasable("office-lights.on") && !releasable("sra-env.temperature"))

        #expect(try c.write("crac-1.setpoint", 24.5)["outcome"]?.stringValue == "executed")
        // The building's schedule commands 23 at priority 12: the agent's 24.5 at 9 wins.
        _ = try s.sim.call("bacnet.set", ["point": "crac-1.setpoint", "priority": 12, "value": 23])
        #expect(try s.sim.plant()["crac-1.setpoint"] == 24.5)

        let r = try Self.release(c, "crac-1.setpoint", reason: "handing back to the schedule")
        #expect(r["outcome"]?.stringValue == "executed", "\(r.encoded())")
        #expect(r["explanation"]?.stringValue?.contains("released (NULL at priority 9)") == true, "\(r.encoded())")
        #expect(r["explanation"]?.stringValue?.contains("Present_Value 23") == true, "\(r.encoded())")
        #expect(try s.sim.plant()["crac-1.setpoint"] == 23)
        let rid = try #require(r["requestId"]?.stringValue)
        let (d, res) = try Self.records(s, rid)
        #expect(d?["outcome"]?.stringValue == "allowed" && d?["release"]?.boolValue == true, "\(d?.encoded() ?? "no decision")")
        #expect(d?["value"]?.numberValue == 23, "decided on the value the release puts in effect: \(d?.encoded() ?? "-")")
        #expect(d?["reason"]?.stringValue == "handing back to the schedule")
        #expect(res?["outcome"]?.stringValue == "executed" && res?["readBack"]?.numberValue == 23, "\(res?.encoded() ?? "no result")")

        // The schedule lets go too: with nothing below 9, Relinquish_Default is what a release gives.
        _ = try s.sim.call("bacnet.set", ["point": "crac-1.setpoint", "priority": 12, "value": .null])
        #expect(try c.write("crac-1.setpoint", 24)["outcome"]?.stringValue == "executed")
        let back = try Self.release(c, "crac-1.setpoint")
        #expect(back["outcome"]?.stringValue == "executed", "\(back.encoded())")
        #expect(try s.sim.plant()["crac-1.setpoint"] == relinquishDefault)
        let (d2, _) = try Self.records(s, try #require(back["requestId"]?.stringValue))
        #expect(d2?["value"]?.numberValue == relinquishDefault, "\(d2?.encoded() ?? "-")")

        // A person holding 20 at priority 8: the release still empties slot 9, and says who holds the value.
        #expect(try c.write("crac-1.setpoint", 24)["outcome"]?.stringValue == "executed")
        _ = try s.sim.call("bacnet.set", ["point": "crac-1.setpoint", "priority": 8, "value": 20])
        let under = try Self.release(c, "crac-1.setpoint")
        #expect(under["outcome"]?.stringValue == "executed", "\(under.encoded())")
        #expect(under["explanation"]?.stringValue?.contains("a higher priority holds it") == true, "\(under.encoded())")
        _ = try s.sim.call("bacnet.set", ["point": "crac-1.setpoint", "priority": 8, "value": .null])
        try s.waitScans(2)
        #expect(try s.sim.plant()["crac-1.setpoint"] == relinquishDefault, "the agent's 24 was released, not kept under the person's 20")

        // Points with no priority array have nothing to release: denied, with no device I/O.
        let jobs = try s.operatorCall("status")["deviceJobs"]?["agent"]?.numberValue
        let modbus = try Self.release(c, "office-lights.on")
        #expect(modbus["outcome"]?.stringValue == "denied" && modbus["rule"]?.stringValue == "out-of-range", "\(modbus.encoded())")
        #expect(try s.operatorCall("status")["deviceJobs"]?["agent"]?.numberValue == jobs)
        // An input is not an agent's to command at all.
        let input = try Self.release(c, "sra-env.temperature")
        #expect(input["outcome"]?.stringValue == "denied", "\(input.encoded())")

        // A device that does not answer: the command state cannot be read, so nothing is decided or sent.
        _ = try s.sim.call("device.fault", ["device": "crac-2", "mode": "timeout"])
        let dead = try Self.release(c, "crac-2.setpoint")
        #expect(dead["outcome"]?.stringValue == "failed", "\(dead.encoded())")
        #expect(dead["explanation"]?.stringValue?.contains("nothing was sent") == true, "\(dead.encoded())")
        _ = try s.sim.call("device.fault", ["device": "crac-2", "mode": "none"])

        // Malformed releases are refused and audited with what they said.
        let bad = try c.request("points.release", ["id": 7])
        #expect(bad["error"]?["code"]?.numberValue == -32602, "\(bad.encoded())")
        // Queued, not awaited by the answer: wait (bounded) for it to be durable.
        func rejectedRecorded() throws -> Bool {
            try s.auditRecords().contains { $0["kind"]?.stringValue == "rejected" && $0["method"]?.stringValue == "points.release" }
        }
        let deadline = Date().addingTimeInterval(5)
        while try !rejectedRecorded(), Date() < deadline { usleep(20_000) }
        #expect(try rejectedRecorded())
        guard case .ok = AuditChain.verify(Array(try #require(FileManager.default.contents(atPath: s.auditPath)))) else {
            Issue.record("audit chain does not verify"); return
        }
    }

    @Test("RL3 on a release: releasing the door to a schedule's lock at 12 in an occupied room is denied RL-3 and nothing is sent; empty, it is held for an operator and, approved, decided again and executed")
    func RL3ReleaseIsDecidedOnTheValueBelow() throws {
        let s = try PlantAndDaemon(site: "demo-datacenter-bacnet.yaml")
        defer { s.stop() }
        let c = try s.agent(uid: Self.facilities)
        defer { c.close() }
        try s.waitScans(2)
        // The agent holds the door unlocked at 9; the night schedule commands "locked" at 12.
        #expect(try c.write("sra-door.lock", 0)["outcome"]?.stringValue == "executed")
        _ = try s.sim.call("bacnet.set", ["point": "sra-door.lock", "priority": 12, "value": 1])
        #expect(try s.sim.plant()["sra-door.lock"] == 0)

        // Someone is in the room: the release would lock them in.
        try s.sim.set("sra-occupancy.occupied", 1)
        try s.waitScans(3)
        let r = try Self.release(c, "sra-door.lock", reason: "schedule says locked")
        #expect(r["outcome"]?.stringValue == "denied" && r["rule"]?.stringValue == "RL-3", "\(r.encoded())")
        #expect(try s.sim.plant()["sra-door.lock"] == 0, "the door must stay unlocked")
        let (d, res) = try Self.records(s, try #require(r["requestId"]?.stringValue), result: false)
        #expect(d?["outcome"]?.stringValue == "denied" && d?["value"]?.numberValue == 1 && d?["release"]?.boolValue == true,
                "\(d?.encoded() ?? "no decision")")
        #expect(res == nil, "a denied release sends nothing: \(res?.encoded() ?? "")")

        // The room is empty: the release would lock the door, which needs an operator here.
        try s.sim.set("sra-occupancy.occupied", 0)
        try s.waitScans(3)
        let held = try Self.release(c, "sra-door.lock")
        #expect(held["outcome"]?.stringValue == "held", "\(held.encoded())")
        let rid = try #require(held["requestId"]?.stringValue)
        let pending = try s.operatorCall("approvals.list")["approvals"]?.arrayValue ?? []
        #expect(pending.contains { $0["requestId"]?.stringValue == rid && $0["release"]?.boolValue == true && $0["value"]?.numberValue == 1 },
                "\(pending)")
        #expect(try s.sim.plant()["sra-door.lock"] == 0)
        let done = try s.operatorCall("approvals.approve", ["requestId": .string(rid)])
        #expect(done["outcome"]?.stringValue == "executed", "\(done.encoded())")
        #expect(try s.sim.plant()["sra-door.lock"] == 1, "approved, the release lets the schedule's lock take effect")
        let (_, result) = try Self.records(s, rid)
        #expect(result?["release"]?.boolValue == true && result?["outcome"]?.stringValue == "executed", "\(result?.encoded() ?? "-")")
    }
}
