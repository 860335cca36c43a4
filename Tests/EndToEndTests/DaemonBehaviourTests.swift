import Foundation
import RedlineClient
import RedlineCore
import RedlineTestSupport
import Testing

/// Each test here owns its simulator and daemon: they change the plant and must not race others.
@Suite("Daemon behaviour on a live plant", .serialized, .enabled(if: uidAvailable, "needs root to connect as the agents' uids"))
struct DaemonBehaviourTests {
    static let facilities: UInt32 = 2001

    /// Locks the server-room door through an operator's approval, on an empty calm plant.
    func lockDoor(_ s: PlantAndDaemon, _ c: UidRelay) throws {
        let held = try c.write("sra-door.lock", 1)
        #expect(held["outcome"]?.stringValue == "held")
        let rid = try #require(held["requestId"]?.stringValue)
        let done = try s.operatorCall("approvals.approve", ["requestId": .string(rid)])
        #expect(done["outcome"]?.stringValue == "executed")
        #expect(try s.sim.plant()["sra-door.lock"] == 1)
    }

    @Test("RL9: approving after an alarm starts does not execute")
    func RL9_approvalAfterAlarmDoesNotExecute() throws {
        let s = try PlantAndDaemon()
        let c = try s.agent(uid: Self.facilities)
        defer { c.close() }
        let held = try c.write("sra-door.lock", 1, reason: "secure the room")
        let rid = try #require(held["requestId"]?.stringValue)
        try s.sim.set("fire-panel.alarm", 1)
        try s.waitScans(2)
        let r = try LineClient(path: s.operatorSocket).request("approvals.approve", ["requestId": .string(rid)])
        // E-2 expired it; if the operator was quicker than the scan, the re-decision denies it.
        let outcome = r["result"]?["outcome"]?.stringValue
        #expect(r["error"] != nil || outcome == "denied", "approval after alarm must not execute: \(r.encoded())")
        #expect(try s.sim.plant()["sra-door.lock"] == 0)
        let state = try c.request("requests.get", ["requestId": .string(rid)])["result"]
        #expect(state?["outcome"]?.stringValue == "expired")
    }

    @Test("RL9: approving after someone walks in is decided again and denied RL-3")
    func RL9_approvalAfterOccupancyIsDenied() throws {
        let s = try PlantAndDaemon()
        let c = try s.agent(uid: Self.facilities)
        defer { c.close() }
        let held = try c.write("sra-door.lock", 1)
        let rid = try #require(held["requestId"]?.stringValue)
        try s.sim.set("server-room-a.occupied", 1)
        try s.waitScans(1)
        let r = try s.operatorCall("approvals.approve", ["requestId": .string(rid)])
        #expect(r["outcome"]?.stringValue == "denied")
        #expect(r["rule"]?.stringValue == "RL-3")
        #expect(try s.sim.plant()["sra-door.lock"] == 0)
        #expect(try c.request("requests.get", ["requestId": .string(rid)])["result"]?["rule"]?.stringValue == "RL-3")
    }

    @Test("RL9: the occupancy re-read happens at write time, not from the scan cache")
    func RL9_freshReadBeforeWrite() throws {
        // A slow scan interval makes the cache old; the decision must still see the person.
        let s = try PlantAndDaemon()
        let c = try s.agent(uid: Self.facilities)
        defer { c.close() }
        try s.sim.set("server-room-a.occupied", 1)
        // No waiting for a scan: the write path re-reads the zone's inputs itself.
        let r = try c.write("crac-3.run", 0)
        #expect(r["outcome"]?.stringValue == "denied")
        #expect(r["rule"]?.stringValue == "RL-5")
        #expect(try s.sim.plant()["crac-3.run"] == 1)
    }

    @Test("E-1 releases a locked door on the plant within two scans of an alarm")
    func E1_releasesDoorOnAlarm() throws {
        let s = try PlantAndDaemon()
        let c = try s.agent(uid: Self.facilities)
        defer { c.close() }
        try lockDoor(s, c)
        let start = try s.scans()
        try s.sim.set("fire-panel.alarm", 1)
        var released: Int?
        for _ in 0..<400 {
            if try s.sim.plant()["sra-door.lock"] == 0 { released = try s.scans(); break }
            usleep(5_000)
        }
        let at = try #require(released, "the door was never released")
        // Counting scans, not milliseconds: the bound holds on a slow machine too.
        #expect(at - start <= 3, "released \(at - start) scans after the alarm (bound: 2, plus the one in progress)")
        // And it stays released: a second lock attempt is refused while the alarm holds.
        let again = try c.write("sra-door.lock", 1)
        #expect(again["outcome"]?.stringValue == "denied")
        #expect(try s.sim.plant()["sra-door.lock"] == 0)
        let status = try s.operatorCall("status")
        let effects: [JSON] = status["effectsActive"]?.arrayValue ?? []
        #expect(effects.contains(.string("E-1 server-room-a")), "active effects: \(effects)")
    }

    @Test("E-1 and E-3: an occupied room in hazard gets its door released and its annunciator on")
    func E1_E3_occupiedHazard() throws {
        let s = try PlantAndDaemon()
        let c = try s.agent(uid: Self.facilities)
        defer { c.close() }
        try lockDoor(s, c)
        try s.sim.set("server-room-a.occupied", 1)
        try s.sim.set("server-room-a.co2", 3.8)
        try s.waitScans(3)
        let p = try s.sim.plant()
        #expect(p["sra-door.lock"] == 0)
        #expect(p["sra-annunciator.strobe"] == 1)
    }

    @Test("RL0: a device fault turns the writes it conditions into denials")
    func RL0_deviceFaultDenies() throws {
        let s = try PlantAndDaemon()
        let c = try s.agent(uid: Self.facilities)
        defer { c.close() }
        // Occupancy sensor silent: the room counts as occupied.
        try s.sim.fault("sra-occupancy", "timeout")
        try s.waitScans(3)
        let lock = try c.write("sra-door.lock", 1)
        #expect(lock["rule"]?.stringValue == "RL-3")
        let crac = try c.write("crac-1.run", 0)
        #expect(crac["rule"]?.stringValue == "RL-5")
        let q = try c.request("points.read", ["ids": ["sra-occupancy.occupied"]])["result"]?["values"]?.arrayValue?.first
        #expect(q?["quality"]?.stringValue != "good")
        // Fire panel answering garbage: every zone counts as in alarm.
        try s.operatorCall("agents.release", ["agent": "facilities-agent"])
        try s.sim.fault("fire-panel", "garbage")
        try s.waitScans(3)
        let lights = try c.write("office-lights.on", 1)
        #expect(lights["rule"]?.stringValue == "RL-6")
        #expect(try s.sim.plant()["office-lights.on"] == 0)
        // Faults cleared: the same write goes through.
        try s.sim.fault("fire-panel", "none")
        try s.sim.fault("sra-occupancy", "none")
        try s.waitScans(3)
        let again = try c.write("office-lights.on", 1)
        #expect(again["outcome"]?.stringValue == "executed", "\(again.encoded())")
        if again["outcome"]?.stringValue != "executed", let log = try? String(contentsOfFile: s.dir.file("redlined.log"), encoding: .utf8) {
            for l in log.split(separator: "\n") where l.contains("fire-panel") { print("  daemon: \(l.suffix(250))") }
        }
    }

    @Test("quarantine: three red-line denials in ten minutes stop every write until an operator releases the agent")
    func quarantine() throws {
        let s = try PlantAndDaemon()
        let c = try s.agent(uid: Self.facilities)
        defer { c.close() }
        for _ in 0..<3 { #expect(try c.write("dispatch.cancel", 1)["rule"]?.stringValue == "RL-2") }
        let blocked = try c.write("office-lights.on", 1)
        #expect(blocked["rule"]?.stringValue == "quarantined")
        #expect(try s.sim.plant()["office-lights.on"] == 0)
        let agents = try s.operatorCall("agents.list")["agents"]?.arrayValue ?? []
        #expect(agents.contains(where: { $0["name"] == "facilities-agent" && $0["quarantined"] == .bool(true) }))
        try s.operatorCall("agents.release", ["agent": "facilities-agent"])
        #expect(try c.write("office-lights.on", 1)["outcome"]?.stringValue == "executed")
        let kinds = try s.auditRecords().compactMap { $0["kind"]?.stringValue }
        #expect(kinds.contains("quarantine") && kinds.contains("release"))
    }

    @Test("crash: after kill -9 mid-traffic the audit log verifies and holds every decision a client was told of")
    func crashKeepsEveryAcknowledgedDecision() throws {
        let s = try PlantAndDaemon()
        let told = LockedList()
        let stop = LockedFlag()
        let threads = (0..<3).map { k in
            Thread {
                guard let c = try? s.agent(uid: Self.facilities) else { return }
                defer { c.close() }
                var i = 0
                while !stop.value {
                    let (id, v): (String, Double) = [("office-lights.on", Double(i % 2)), ("dispatch.cancel", 1), ("crac-2.setpoint", 20)][(i + k) % 3]
                    guard let r = try? c.write(id, v), let rid = r["requestId"]?.stringValue else { break }
                    told.append(rid)
                    i += 1
                }
            }
        }
        threads.forEach { $0.start() }
        while told.count < 60 { usleep(10_000) }
        kill(s.daemon.process.processIdentifier, SIGKILL)
        s.daemon.process.waitUntilExit()
        stop.value = true
        usleep(200_000)

        let verify = try runCtl(["audit", "verify", s.auditPath])
        #expect(verify.status == 0, "audit verify: \(verify.output)")
        #expect(verify.output.hasPrefix("ok "))
        let decided = Set(try s.auditRecords().filter { $0["kind"]?.stringValue == "decision" }.compactMap { $0["requestId"]?.stringValue })
        let missing = told.items.filter { !decided.contains($0) }
        #expect(missing.isEmpty, "decisions told to clients but not in the log: \(missing.prefix(5))")

        // The daemon comes back on the same log and the chain continues.
        try s.killAndRestartDaemon()
        let c = try s.agent(uid: Self.facilities)
        defer { c.close() }
        #expect(try c.write("office-lights.on", 1)["outcome"]?.stringValue == "executed")
        #expect(try runCtl(["audit", "verify", s.auditPath]).status == 0)
    }
}

final class LockedList: @unchecked Sendable {
    private let lock = NSLock()
    private var list: [String] = []
    func append(_ s: String) { lock.lock(); list.append(s); lock.unlock() }
    var items: [String] { lock.lock(); defer { lock.unlock() }; return list }
    var count: Int { items.count }
}

final class LockedFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var v = false
    var value: Bool {
        get { lock.lock(); defer { lock.unlock() }; return v }
        set { lock.lock(); v = newValue; lock.unlock() }
    }
}

/// Runs `redlinectl` with arguments; returns its exit status and standard output.
func runCtl(_ args: [String], input: String? = nil) throws -> (status: Int32, output: String) {
    guard let exe = TestPaths.executable("redlinectl") else { throw TestSupportError("redlinectl is not built") }
    let p = Process()
    p.executableURL = URL(fileURLWithPath: exe)
    p.arguments = args
    let out = Pipe()
    p.standardOutput = out
    p.standardError = out
    try p.run()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return (p.terminationStatus, String(decoding: data, as: UTF8.self))
}
