import Foundation
import Logging
import RedlineClient
import RedlineConfig
import RedlineCore
import RedlineIO
import RedlineTestSupport
import RedlineSync
import Testing

/// redline-sim serving the BACnet demo site (Firmware-Configs/demo-datacenter-bacnet.yaml) over
/// real UDP, read and written by bacpypes3 (PyPI; not our code) and by RedlineIO's client.
@Suite("BACnet site: redline-sim's BACnet/IP devices", .serialized)
struct BACnetSimTests {
    static let root = TestPaths.packageRoot()
    static let client = root.appendingPathComponent("Tests/interop/bacpypes3_client.py").path

    static func python() throws -> String {
        for p in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin").split(separator: ":") {
            let c = "\(p)/python3"
            if FileManager.default.isExecutableFile(atPath: c) { return c }
        }
        throw TestSupportError("python3 not found (scripts/setup.sh installs it with bacpypes3)")
    }

    /// One bacpypes3 ReadProperty or WriteProperty; its stdout, or "error: ..." when it failed.
    static func bacpypes3(_ dir: TempDir, devicePort: Int, _ args: [String]) throws -> String {
        let local = freeTCPPorts(1)[0]
        let child = try ChildProcess(executable: try python(), arguments: [client, String(local), String(devicePort)] + args,
                                     logPath: dir.file("bacpypes3-\(local).log"))
        child.process.waitUntilExit()
        _ = child.waitForOutput(containing: "\n", timeout: 2)
        let out = child.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        if child.process.terminationStatus != 0 {
            return "error: " + (child.stderr.split(separator: "\n").last.map(String.init) ?? "")
        }
        return out
    }

    /// The simulator alone on the BACnet demo site, on free ports; returns it and the port map.
    static func startSim(_ dir: TempDir) throws -> (SimProcess, [Int: Int]) {
        let src = root.appendingPathComponent("Firmware-Configs/demo-datacenter-bacnet.yaml").path
        let (site, ports) = try TestSites.withFreePorts(src, in: dir)
        let sim = try SimProcess(siteFile: site, devicesDir: root.appendingPathComponent("Devices").path,
                                 controlPath: dir.file("sim.sock"))
        return (sim, ports)
    }

    @Test("bacpypes3 reads and writes the CRAC's setpoint; a person's command at 8 wins; status flags and faults show")
    func bacpypes3AgainstSim() throws {
        let dir = TempDir()
        let (sim, ports) = try Self.startSim(dir)
        defer { sim.stop() }
        let crac1 = try #require(ports[47810]), door = try #require(ports[47809]), fire = try #require(ports[47808])

        #expect(try Self.bacpypes3(dir, devicePort: crac1, ["read", "device,301", "object-identifier"]) == "device,301")
        #expect(try Self.bacpypes3(dir, devicePort: crac1, ["read", "analog-value,1", "present-value"]) == "22.0")
        // bacpypes3 writes at 9: Present_Value, and the plant's setpoint, follow.
        #expect(try Self.bacpypes3(dir, devicePort: crac1, ["write", "analog-value,1", "present-value", "24.5", "9"]) == "ok")
        #expect(try Self.bacpypes3(dir, devicePort: crac1, ["read", "analog-value,1", "present-value"]) == "24.5")
        #expect(try sim.call("plant.get")["crac-1.setpoint"]?.numberValue == 24.5)
        // A person holds 20 at priority 8: it takes effect over the write at 9.
        let held = try sim.call("bacnet.set", ["point": "crac-1.setpoint", "priority": 8, "value": 20])
        #expect(held["presentValue"]?.numberValue == 20)
        #expect(try Self.bacpypes3(dir, devicePort: crac1, ["read", "analog-value,1", "present-value"]) == "20.0")
        #expect(try sim.call("plant.get")["crac-1.setpoint"]?.numberValue == 20)
        // Released at 8: the write at 9 is in effect again; released at 9: Relinquish_Default (22).
        _ = try sim.call("bacnet.set", ["point": "crac-1.setpoint", "priority": 8, "value": .null])
        #expect(try Self.bacpypes3(dir, devicePort: crac1, ["read", "analog-value,1", "present-value"]) == "24.5")
        #expect(try Self.bacpypes3(dir, devicePort: crac1, ["write", "analog-value,1", "present-value", "null", "9"]) == "ok")
        #expect(try Self.bacpypes3(dir, devicePort: crac1, ["read", "analog-value,1", "present-value"]) == "22.0")
        // Inputs read the plant; their Status_Flags are what bacnet.flags set.
        #expect(try Self.bacpypes3(dir, devicePort: fire, ["read", "life-safety-zone,1", "present-value"]) == "quiet")
        _ = try sim.call("plant.set", ["name": "fire-panel.alarm", "value": 1])
        #expect(try Self.bacpypes3(dir, devicePort: fire, ["read", "life-safety-zone,1", "present-value"]) == "alarm")
        _ = try sim.call("bacnet.flags", ["point": "sra-door.contact", "fault": true])
        #expect(try Self.bacpypes3(dir, devicePort: door, ["read", "binary-input,1", "status-flags"]) == "fault")
        // An input is not writable; a fault mode answers with an Error PDU.
        #expect(try Self.bacpypes3(dir, devicePort: door, ["write", "binary-input,1", "present-value", "inactive", "9"]).contains("write-access-denied"))
        _ = try sim.call("device.fault", ["device": "crac-1", "mode": "exception"])
        #expect(try Self.bacpypes3(dir, devicePort: crac1, ["read", "analog-value,1", "present-value"]).contains("Error(read-property): device: other"))
    }

    @Test("a BACnet device whose UDP endpoint is taken fails the simulator's start, naming the bus and endpoint")
    func endpointTaken() throws {
        let dir = TempDir()
        let (first, ports) = try Self.startSim(dir)
        defer { first.stop() }
        let fire = try #require(ports[47808])
        // A second simulator on the same site: the fire panel's endpoint (the first bus) is taken.
        do {
            let second = try SimProcess(siteFile: first.siteFile, devicesDir: Self.root.appendingPathComponent("Devices").path,
                                        controlPath: dir.file("sim-2.sock"), timeout: 10)
            second.stop()
            Issue.record("a second simulator started on taken endpoints")
        } catch {
            #expect("\(error)".contains("redline-sim: bus fire-panel-bn: cannot bind UDP 127.0.0.1:\(fire): Address already in use"), "\(error)")
        }
        #expect(first.child.isRunning)
    }

    @Test("device.fault modes on a BACnet device, as RedlineIO's client sees them over UDP")
    func faultModes() async throws {
        let dir = TempDir()
        let (sim, ports) = try Self.startSim(dir)
        defer { sim.stop() }
        let port = try #require(ports[47811])
        let sp = BACnetPointAddress(object: BACnetObjectId(type: .analogValue, instance: 1))
        func attempt(_ mode: String) async throws -> (Result<Void, DeviceError>, Result<[BACnetValue], DeviceError>, Int64) {
            _ = try sim.call("device.fault", ["device": "crac-2", "mode": .string(mode)])
            return await onOwnThread {
                let c = BACnetClient(host: "127.0.0.1", port: port, timeoutMs: 150, retries: 0, logger: Logger(label: "t"))
                defer { c.close() }
                let t0 = Monotonic.nanoseconds()
                let id = c.identify(deviceInstance: 302)
                let v = c.readProperties([sp])[0]
                return (id, v, Int64((Monotonic.nanoseconds() - t0) / 1_000_000))
            }
        }
        let healthy = try await attempt("none")
        #expect((try? healthy.0.get()) != nil)
        #expect(healthy.1 == .success([.real(22)]))
        let timeout = try await attempt("timeout")
        #expect(timeout.1 == .failure(.timeout))
        let offline = try await attempt("offline")
        #expect(offline.1 == .failure(.timeout))
        let exception = try await attempt("exception")
        #expect(exception.1 == .failure(.bacnet(.error(BACnetError(errorClass: 0, errorCode: 0)))))
        let garbage = try await attempt("garbage")
        guard case .failure(.bacnet(.malformed)) = garbage.1 else { Issue.record("garbage: \(garbage.1)"); return }
        // Another device answers at the endpoint: it has no Device object 302 (its objects
        // answer as usual, so only the identity check tells).
        let wrong = try await attempt("wrong-unit")
        guard case .failure(.bacnet(.error(.unknownObject))) = wrong.0 else { Issue.record("wrong-unit: \(wrong.0)"); return }
        #expect(wrong.1 == .success([.real(22)]))
        // Slow: min(50 ms, timeout/2) per answer by default, inside the client's 150 ms.
        let slow = try await attempt("slow")
        #expect(slow.1 == .success([.real(22)]))
        #expect(slow.2 >= 100, "identify and read took \(slow.2) ms")
    }
}

/// Runs a blocking body on a thread of its own (never the cooperative pool).
func onOwnThread<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { c in
        let t = Thread { c.resume(returning: body()) }
        t.start()
    }
}

/// redlined and redline-sim on the BACnet demo site, real processes over real UDP.
@Suite("BACnet site: redlined runs the BACnet/IP buses", .serialized)
struct BACnetDaemonTests {
    static let facilities: UInt32 = 2001

    static func quality(_ c: UidRelay, _ id: String) throws -> String? {
        try c.request("points.read", ["ids": [.string(id)]])["result"]?["values"]?.arrayValue?.first?["quality"]?.stringValue
    }

    @Test("ready on the BACnet demo; an agent's setpoint write executes at 9; a person's hold at 8 makes it 'overridden'; a fault flag is RL-0 and a lock is denied RL-3")
    func daemonOnBACnetSite() throws {
        let s = try PlantAndDaemon(site: "demo-datacenter-bacnet.yaml")
        let c = try s.agent(uid: Self.facilities)
        defer { c.close() }
        try s.waitScans(2)
        // Every BACnet point is read and good (the fire panel's life-safety zone, the CRACs...).
        for id in ["fire-panel.alarm", "fire-panel.trouble", "sra-door.contact", "sra-door.lock", "crac-1.run", "crac-1.setpoint", "crac-4.fault"] {
            #expect(try Self.quality(c, id) == "good", "\(id)")
        }
        let w = try c.write("crac-1.setpoint", 24.5)
        #expect(w["outcome"]?.stringValue == "executed", "\(w.encoded())")
        #expect(try s.sim.plant()["crac-1.setpoint"] == 24.5)

        // A person at the panel holds 20 °C at priority 8: the agent's write lands at 9, overridden.
        _ = try s.sim.call("bacnet.set", ["point": "crac-1.setpoint", "priority": 8, "value": 20])
        let over = try c.write("crac-1.setpoint", 23)
        #expect(over["outcome"]?.stringValue == "failed", "\(over.encoded())")
        #expect(over["explanation"]?.stringValue?.contains("written, but overridden at priority 8") == true, "\(over.encoded())")
        #expect(try s.sim.plant()["crac-1.setpoint"] == 20)
        let records = try s.auditRecords().filter { $0["kind"]?.stringValue == "result" && $0["outcome"]?.stringValue == "executed" }
        #expect(!records.contains { $0["point"]?.stringValue == "crac-1.setpoint" && $0["readBack"]?.numberValue == 23 })
        _ = try s.sim.call("bacnet.set", ["point": "crac-1.setpoint", "priority": 8, "value": .null])

        // The same with a real operator workstation: bacpypes3 writes 21 at priority 8.
        let site = try SiteLoader.load(siteFile: s.siteFile, devicesDir: s.root.appendingPathComponent("Devices").path)
        guard case .bacnetIP(_, let crac1)? = site.buses.first(where: { $0.id == "crac-1-bn" })?.kind else {
            Issue.record("no crac-1-bn bus"); return
        }
        let dir = TempDir()
        #expect(try BACnetSimTests.bacpypes3(dir, devicePort: crac1, ["write", "analog-value,1", "present-value", "21.0", "8"]) == "ok")
        let over2 = try c.write("crac-1.setpoint", 22.5)
        #expect(over2["explanation"]?.stringValue?.contains("written, but overridden at priority 8: the value in effect is 21") == true, "\(over2.encoded())")
        #expect(try BACnetSimTests.bacpypes3(dir, devicePort: crac1, ["write", "analog-value,1", "present-value", "null", "8"]) == "ok")
        try s.waitScans(2)
        // Released at 8: the agent's 22.5 at 9 is in effect now.
        #expect(try s.sim.plant()["crac-1.setpoint"] == 22.5)

        // The fire panel's alarm zone reports fault in its Status_Flags: the alarm is unknown
        // (every zone counts as in alarm), the panel's other points stay good, and a lock is RL-3.
        _ = try s.sim.call("bacnet.flags", ["point": "fire-panel.alarm", "fault": true])
        try s.waitScans(3)
        #expect(try Self.quality(c, "fire-panel.alarm") != "good")
        #expect(try Self.quality(c, "fire-panel.trouble") == "good")
        let lock = try c.write("sra-door.lock", 1)
        #expect(lock["rule"]?.stringValue == "RL-3", "\(lock.encoded())")
        _ = try s.sim.call("bacnet.flags", ["point": "fire-panel.alarm", "fault": false])

        // A CRAC controller that stops answering: its points are unknown and nothing is written;
        // answering again (identified anew as device 302), it is read again.
        _ = try s.sim.call("device.fault", ["device": "crac-2", "mode": "timeout"])
        try s.waitScans(3)
        #expect(try Self.quality(c, "crac-2.setpoint") != "good")
        let dead = try c.write("crac-2.setpoint", 23)
        #expect(dead["outcome"]?.stringValue != "executed", "\(dead.encoded())")
        #expect(try s.sim.plant()["crac-2.setpoint"] == 22)
        // Another device answering at crac-3's endpoint is never believed.
        _ = try s.sim.call("device.fault", ["device": "crac-3", "mode": "wrong-unit"])
        _ = try s.sim.call("device.fault", ["device": "crac-2", "mode": "none"])
        try s.waitScans(4)
        #expect(try Self.quality(c, "crac-2.setpoint") == "good")
        #expect(try Self.quality(c, "crac-3.setpoint") != "good")
    }
}

extension BACnetDaemonTests {
    static func value(_ c: UidRelay, _ id: String) throws -> JSON? {
        try c.request("points.read", ["ids": [.string(id)]])["result"]?["values"]?.arrayValue?.first
    }

    @Test("RL0 over BACnet: the fire panel's life-safety zone read as quiet, then as an alarm once the panel latches one: every zone is in alarm, with the panel as the cause")
    func lifeSafetyZoneAlarmIsReadAsAnAlarm() throws {
        let s = try PlantAndDaemon(site: "demo-datacenter-bacnet.yaml")
        let c = try s.agent(uid: Self.facilities)
        defer { c.close() }
        try s.waitScans(2)
        let quiet = try Self.value(c, "fire-panel.alarm")
        #expect(quiet?["quality"]?.stringValue == "good" && quiet?["value"]?.numberValue == 0, "\(quiet?.encoded() ?? "none")")
        let calm = try s.operatorCall("status")["zones"]?.arrayValue ?? []
        #expect(calm.first { $0["id"]?.stringValue == "server-room-a" }?["inAlarm"]?.boolValue == false, "\(calm.map { $0.encoded() })")

        try s.sim.set("fire-panel.alarm", 1)   // the panel latches an alarm (a life-safety zone's state: alarm)
        try s.waitScans(3)
        let alarm = try Self.value(c, "fire-panel.alarm")
        #expect(alarm?["quality"]?.stringValue == "good" && alarm?["value"]?.numberValue == 1, "\(alarm?.encoded() ?? "none")")
        let zones = try s.operatorCall("status")["zones"]?.arrayValue ?? []
        #expect(!zones.isEmpty && zones.allSatisfy { $0["inAlarm"]?.boolValue == true }, "\(zones.map { $0.encoded() })")
        let room = zones.first { $0["id"]?.stringValue == "server-room-a" }
        #expect(room?["causes"]?.arrayValue?.contains { $0.stringValue?.contains("fire-panel.alarm") == true } == true, "\(room?.encoded() ?? "none")")
    }
}

/// One simulator + daemon on the BACnet demo site, shared by the suites below.
enum BACnetStack {
    private static let stacks = Lock<[Bool: PlantAndDaemon]>([:])

    static func get(manualClock: Bool) throws -> PlantAndDaemon {
        try stacks.withLock { s in
            if let x = s[manualClock], x.daemon.isRunning, x.sim.child.isRunning { return x }
            let fresh = try PlantAndDaemon(site: "demo-datacenter-bacnet.yaml", manualClock: manualClock)
            s[manualClock] = fresh
            atexit { BACnetStack.stopAll() }
            return fresh
        }
    }

    static func stopAll() { stacks.withLock { for v in $0.values { v.stop() } } }
}

/// The Server Room A HIL scenario and the red-team corpus, unchanged, against the BACnet demo
/// site: the fire panel, the door and the CRACs answer over BACnet/IP instead of Modbus TCP.
@Suite("BACnet site: HIL scenario and red-team corpus", .serialized,
       .enabled(if: uidAvailable, "needs root to connect as the agents' uids"))
struct BACnetScenarioTests {
    @Test("Server Room A on the BACnet site: every attack denied with its red line, E-1 releases the door, the dispatch is sent")
    func serverRoomA() throws {
        let s = try BACnetStack.get(manualClock: true)
        let dir = TempDir(prefix: "rlhil")
        let junit = dir.file("hil.xml")
        let r = try runHIL(["run", scenarioPath("summitbridge-server-room-a.yaml")] + hilArgs(s) + ["--junit", junit])
        #expect(r.status == 0, "\(r.stdout)\n\(r.stderr)")
        #expect(r.stdout.contains("PASS summitbridge-server-room-a"), "\(r.stdout)")
        #expect(!r.stdout.contains("INVARIANT VIOLATED"))
        let plant = try s.sim.plant()
        #expect(plant["dispatch.sent"] == 1)
        #expect(plant["sra-door.lock"] == 0 && plant["fire-panel.silence"] == 0 && plant["sra-exhaust.run"] == 1)
        let j = try parseJUnit(junit)
        #expect(j.failures == 0 && j.errors == 0 && j.tests >= 39)
    }

    /// The CRAC setpoints are 0.1 °C Modbus registers on the Modbus demo and REAL analog values
    /// here: what the quantization cases (Tests/RedTeam/quantization.yaml) expect to land rounded
    /// lands as asked on BACnet (27.04, 14.96, 32.04), outside RL-5 or the envelope, and is denied.
    static let realNotRegister: Set<String> = ["Q-01", "Q-02", "Q-03"]

    @Test("red-team case on the BACnet site", arguments: RedTeamCorpus.own.cases())
    func redTeamCase(_ c: RedTeamCase) throws {
        var c = c
        if Self.realNotRegister.contains(c.id) { c.expect = ["outcome": "denied"] }
        try RedTeamTests().run(c, stack: { try BACnetStack.get(manualClock: false) })
    }
}

/// The daemon's own safe-state effects on a BACnet site (docs/DESIGN.md §5): written in the
/// agents' slot (priority 9 here), never above a person or life safety at 1-8.
@Suite("BACnet site: the daemon's effects under a person's hold", .serialized,
       .enabled(if: uidAvailable, "needs root to connect as the agents' uids"))
struct BACnetEffectTests {
    /// Waits (at most `timeout` s) until `want` holds for the audit records; returns them.
    static func audited(_ s: PlantAndDaemon, timeout: Double = 5, until want: ([JSON]) -> Bool) throws -> [JSON] {
        let end = Date().addingTimeInterval(timeout)
        var recs = try s.auditRecords()
        while Date() < end, !want(recs) { usleep(50_000); recs = try s.auditRecords() }
        return recs
    }

    static func kind(_ k: String, _ recs: [JSON]) -> [JSON] {
        recs.filter { $0["kind"]?.stringValue == k && $0["point"]?.stringValue == "sra-door.lock" }
    }

    @Test("E4 on BACnet: an agent's raised setpoint under a person's hold at 8 is restored in the agents' slot when someone enters, so the person's release brings back the restore, not the agent's 30")
    func E4_reductionUnderAPersonsHoldIsRestoredInTheAgentsSlot() throws {
        let s = try PlantAndDaemon(site: "demo-datacenter-bacnet.yaml", manualClock: true)
        defer { s.stop() }
        let c = try s.agent(uid: 2001)
        defer { c.close() }
        try s.waitScans(2)
        let before = try #require(try s.sim.plant()["crac-1.setpoint"])
        // Empty room: the agent raises crac-1 to 30 °C (RL-5 allows it with nobody inside)...
        #expect(try c.write("crac-1.setpoint", 30)["outcome"]?.stringValue == "executed")
        // ...and a technician then holds 24 at the panel (priority 8), over the agent's 30 at 9.
        _ = try s.sim.call("bacnet.set", ["point": "crac-1.setpoint", "priority": 8, "value": 24])
        try s.waitScans(3)
        // Someone enters: E-4 must put the restore value into the agents' slot, under the hold.
        try s.sim.set("server-room-a.occupied", 1)
        let recs = try Self.audited(s) { r in
            r.contains { $0["kind"]?.stringValue == "effect-overridden" && $0["point"]?.stringValue == "crac-1.setpoint" && $0["effect"]?.stringValue == "E-4" }
        }
        #expect(recs.contains { $0["kind"]?.stringValue == "effect-overridden" && $0["point"]?.stringValue == "crac-1.setpoint" },
                "E-4's restore was not written: \(recs.suffix(6).map { $0.encoded() })")
        // The technician lets go, with the room still occupied: the restore takes effect, not 30.
        _ = try s.sim.call("bacnet.set", ["point": "crac-1.setpoint", "priority": 8, "value": .null])
        try s.waitScans(3)
        let now1 = try s.sim.plant()["crac-1.setpoint"]
        #expect(now1 == before, "an occupied room at \(now1 ?? .nan) °C")
        try s.sim.set("server-room-a.occupied", 0)
        try s.waitScans(2)

        // The same when the agent's write itself was the overridden one: written, not executed,
        // but in the agents' slot all the same.
        _ = try s.sim.call("bacnet.set", ["point": "crac-1.setpoint", "priority": 8, "value": 24])
        let over = try c.write("crac-1.setpoint", 31)
        #expect(over["explanation"]?.stringValue?.contains("overridden at priority 8") == true, "\(over.encoded())")
        try s.sim.set("server-room-a.occupied", 1)
        try s.waitScans(4)
        _ = try s.sim.call("bacnet.set", ["point": "crac-1.setpoint", "priority": 8, "value": .null])
        try s.waitScans(3)
        let now2 = try s.sim.plant()["crac-1.setpoint"]
        #expect(now2 == before, "an occupied room at \(now2 ?? .nan) °C")
    }

    @Test("E1 on BACnet: a person holds the door locked at 8; E-1's release at 9 is reported overridden (audit, operator event) once, re-asserted every scan, and takes effect the moment the person relinquishes, with no agent involved")
    func E1_overriddenByAPersonAtPriority8_takesEffectOnRelinquish() throws {
        let s = try PlantAndDaemon(site: "demo-datacenter-bacnet.yaml", manualClock: true)
        defer { s.stop() }
        let watcher = try EventsTests.Watcher(s)
        defer { watcher.stop() }
        try s.waitScans(2)

        // A person at the door controller holds it locked at priority 8.
        let held = try s.sim.call("bacnet.set", ["point": "sra-door.lock", "priority": 8, "value": 1])
        #expect(held["presentValue"]?.numberValue == 1)
        // Someone is inside, and the air is bad: occupied and in hazard, so E-1 must release the door.
        try s.sim.set("server-room-a.occupied", 1)
        try s.sim.set("server-room-a.oxygen", 15.4)
        let over = try Self.audited(s) { !Self.kind("effect-overridden", $0).isEmpty }
        let rec = try #require(Self.kind("effect-overridden", over).first, "no effect-overridden record: \(over.suffix(8).map { $0.encoded() })")
        #expect(rec["effect"]?.stringValue == "E-1" && rec["value"]?.numberValue == 0, "\(rec.encoded())")
        #expect(rec["priority"]?.numberValue == 8 && rec["inEffect"]?.numberValue == 1 && rec["writePriority"]?.numberValue == 9, "\(rec.encoded())")
        // Never reported as done: no recovery, and the door is locked on the plant.
        #expect(Self.kind("effect-recovered", over).isEmpty)
        #expect(try s.sim.plant()["sra-door.lock"] == 1)
        // Operators are told, with the record's seq.
        let seq = try #require(rec["seq"]?.numberValue)
        let told = watcher.collect(timeout: 10) { $0.contains { $0["event"]?.stringValue == "effect.overridden" } }
        let event = try #require(told.first { $0["event"]?.stringValue == "effect.overridden" }, "events: \(EventsTests.names(told))")
        #expect(event["seq"]?.numberValue == seq && event["priority"]?.numberValue == 8 && event["inEffect"]?.numberValue == 1)
        #expect(event["summary"]?.stringValue?.contains("priority 8 overrides it: the value in effect is 1") == true, "\(event.encoded())")

        // Another BACnet client (a workstation, or an agent holding a raw BACnet client) puts
        // "locked" into the agents' slot too. E-1 re-asserts its release there on every full scan...
        _ = try s.sim.call("bacnet.set", ["point": "sra-door.lock", "priority": 9, "value": 1])
        try s.waitScans(5)
        #expect(try s.sim.plant()["sra-door.lock"] == 1, "priority 8 still holds the door")
        // ...and the override, unchanged, is told once, not once per scan.
        #expect(Self.kind("effect-overridden", try s.auditRecords()).count == 1)
        // While it lasts, `status` shows it.
        let trouble = try s.operatorCall("status")["effectsNotInEffect"]?.arrayValue ?? []
        #expect(trouble.contains { $0["effect"]?.stringValue == "E-1" && $0["point"]?.stringValue == "sra-door.lock"
                && $0["state"]?.stringValue == "overridden" && $0["priority"]?.numberValue == 8 && $0["inEffect"]?.numberValue == 1 },
                "\(trouble)")

        // The person relinquishes: the release in the agents' slot takes effect at once.
        _ = try s.sim.call("bacnet.set", ["point": "sra-door.lock", "priority": 8, "value": .null])
        let released = Date()
        while Date().timeIntervalSince(released) < 1, try s.sim.plant()["sra-door.lock"] != 0 { usleep(20_000) }
        #expect(try s.sim.plant()["sra-door.lock"] == 0, "the door is still locked 1 s after the person relinquished")
        let after = try Self.audited(s) { !Self.kind("effect-recovered", $0).isEmpty }
        let recovered = Self.kind("effect-recovered", after)
        let was = recovered.first?["after"]?.stringValue
        #expect(recovered.count == 1 && was == "overridden", "\(recovered.map { $0.encoded() })")
        #expect(try s.operatorCall("status")["effectsNotInEffect"]?.arrayValue?.isEmpty == true)
        let toldAgain = watcher.collect(timeout: 10) { $0.contains { $0["event"]?.stringValue == "effect.recovered" } }
        #expect(toldAgain.contains { $0["event"]?.stringValue == "effect.recovered" }, "events: \(EventsTests.names(toldAgain))")

        // No agent was involved: not one agent decision in the whole log. And the log verifies.
        #expect(after.allSatisfy { $0["kind"]?.stringValue != "decision" })
        let log = try #require(FileManager.default.contents(atPath: s.auditPath))
        guard case .ok = AuditChain.verify(Array(log)) else { Issue.record("audit chain does not verify"); return }
    }
}
