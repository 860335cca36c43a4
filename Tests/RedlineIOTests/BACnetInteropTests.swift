import Foundation
import Logging
import RedlineCore
import RedlineIO
import RedlineTestSupport
import Testing

/// Runs `body` on a thread of its own (the client's blocking socket calls never run on the
/// cooperative pool, as on a bus thread) and returns its result.
func onOwnThread<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { (c: CheckedContinuation<T, Never>) in
        let t = Thread { c.resume(returning: body()) }
        t.start()
    }
}

/// Interop with bacpypes3 (PyPI), a BACnet implementation we did not write: RedlineIO's
/// BACnet/IP client against a bacpypes3 device on 127.0.0.1, and a bacpypes3 client as the
/// person at the operator workstation who holds a value at priority 8.
@Suite("Interop with bacpypes3", .serialized)
struct BACnetInteropTests {
    static let av1 = BACnetPointAddress(object: BACnetObjectId(type: .analogValue, instance: 1))
    static let bv2 = BACnetPointAddress(object: BACnetObjectId(type: .binaryValue, instance: 2))
    static let ai3 = BACnetPointAddress(object: BACnetObjectId(type: .analogInput, instance: 3))
    static let ai4 = BACnetPointAddress(object: BACnetObjectId(type: .analogInput, instance: 4))
    static let agent = BACnetPriority(9)!

    /// What the sequence observed, collected on the client's thread.
    struct Observed: Sendable {
        var first: [Result<BACnetPointReading, DeviceError>] = []
        var firstSent = 0
        var executed: Result<BACnetReadBack, DeviceError>?
        var personWrite = ""
        var overridden: Result<BACnetReadBack, DeviceError>?
        var overriddenPresent: Double?
        var afterPersonReleased: Result<BACnetPointReading, DeviceError>?
        var released: Result<BACnetReadBack, DeviceError>?
        var releasedPresent: Double?
        var binaryOff: Result<BACnetReadBack, DeviceError>?
        var binaryReleased: Result<BACnetReadBack, DeviceError>?
        var reservedPriority: Result<Void, DeviceError>?
        var reservedSent = 0
        var unknownObject: Result<[BACnetValue], DeviceError>?
        var rpmUnsupported = true
        var retries = 0
        var forbidden: [Result<Void, DeviceError>] = []
        var identified: Result<Void, DeviceError>?
        var wrongDevice: Result<Void, DeviceError>?
    }

    static func outcome(_ r: Result<(BACnetReadBack, BACnetPointReading), DeviceError>) -> Result<BACnetReadBack, DeviceError> {
        r.map(\.0)
    }

    @Test("RedlineIO reads, writes at priority 9, sees an override at 8 and relinquishes on a bacpypes3 device")
    func clientAgainstBacpypes3Device() async throws {
        let dir = TempDir()
        let py = try #require(InteropTests.python(), "python3 not found")
        let ports = freeTCPPorts(2)
        let (devicePort, personPort) = (ports[0], ports[1])
        let device = try ChildProcess(executable: py,
                                      arguments: [InteropTests.scripts.appendingPathComponent("bacpypes3_device.py").path, String(devicePort)],
                                      logPath: dir.file("bacpypes3_device.log"))
        defer { device.stop() }
        try #require(device.waitForOutput(containing: "ready", timeout: 20), "bacpypes3 device did not start: \(device.stderr)")
        let script = InteropTests.scripts.appendingPathComponent("bacpypes3_client.py").path
        let logFile = dir.file("bacpypes3_client.log")

        /// The person: a bacpypes3 client writing at priority 8 (blocking; runs on the test's own thread).
        @Sendable func person(_ value: String) -> String {
            guard let child = try? ChildProcess(executable: py, arguments: [script, String(personPort), String(devicePort), "write",
                                                                             "analog-value,1", "present-value", value, "8"],
                                                logPath: logFile) else { return "cannot start" }
            child.process.waitUntilExit()
            _ = child.waitForOutput(containing: "\n", timeout: 2)
            return child.stdout.trimmingCharacters(in: .whitespacesAndNewlines) + (child.process.terminationStatus == 0 ? "" : " (\(child.stderr))")
        }

        let o: Observed = await onOwnThread {
            var o = Observed()
            let client = BACnetClient(host: "127.0.0.1", port: devicePort, timeoutMs: 3000, retries: 2, logger: Logger(label: "bacnet-test"))
            defer { client.close() }
            o.identified = client.identify(deviceInstance: 1001)
            o.wrongDevice = client.identify(deviceInstance: 1002)
            let before0 = client.transactions
            // One ReadPropertyMultiple for four points and their status or priority properties.
            o.first = client.readPoints([
                .init(Self.av1, commandable: true), .init(Self.bv2, commandable: true),
                .init(Self.ai3, status: true), .init(Self.ai4, status: true),
            ])
            o.firstSent = client.transactions - before0
            o.rpmUnsupported = client.rpmUnsupported
            o.executed = Self.outcome(client.command(Self.av1, value: .real(24.5), priority: Self.agent))
            o.personWrite = person("25.0")
            let over = client.command(Self.av1, value: .real(23.0), priority: Self.agent)
            o.overridden = Self.outcome(over)
            o.overriddenPresent = (try? over.get())?.1.value.number
            _ = person("null")
            o.afterPersonReleased = client.readPoints([.init(Self.av1, commandable: true)])[0]
            let rel = client.command(Self.av1, value: nil, priority: Self.agent)
            o.released = Self.outcome(rel)
            o.releasedPresent = (try? rel.get())?.1.value.number
            o.binaryOff = Self.outcome(client.command(Self.bv2, value: .enumerated(0), priority: Self.agent))
            o.binaryReleased = Self.outcome(client.command(Self.bv2, value: nil, priority: Self.agent))
            let before = client.sent
            o.reservedPriority = client.write(Self.av1, value: .real(30), priority: BACnetPriority(8)!)
            for property: BACnetPropertyId in [.outOfService, .relinquishDefault, .reliability, .priorityArray, .notificationClass] {
                o.forbidden.append(client.write(BACnetPointAddress(object: Self.av1.object, property: property), value: .boolean(true), priority: Self.agent))
            }
            o.reservedSent = client.sent - before
            o.retries = client.sent - client.transactions
            o.unknownObject = client.readProperties([BACnetPointAddress(object: BACnetObjectId(type: .analogValue, instance: 77))])[0]
            return o
        }

        // The device at the endpoint is device 1001, and not 1002.
        guard case .success? = o.identified else { Issue.record("device 1001 not identified: \(String(describing: o.identified))"); return }
        guard case .failure(.bacnet)? = o.wrongDevice else { Issue.record("device 1002 accepted: \(String(describing: o.wrongDevice))"); return }
        // The first read: one transaction (ReadPropertyMultiple, not rejected) for everything.
        #expect(o.firstSent == 1)
        if o.retries > 0 { print("bacpypes3 interop: \(o.retries) retries after a timeout (a slow Python device on a busy machine)") }
        #expect(!o.rpmUnsupported)
        try #require(o.first.count == 4)
        let av = try o.first[0].get()
        #expect(av.value == .real(21.0))
        #expect(av.priorityArray == [BACnetValue](repeating: .null, count: 16))
        #expect(av.relinquishDefault == .real(21.0))
        #expect(av.effective == 21.0 && av.activePriority == nil)
        let bv = try o.first[1].get()
        #expect(bv.value == .enumerated(1) && bv.relinquishDefault == .enumerated(1))
        let room = try o.first[2].get()
        #expect(room.value == .real(22.5))
        #expect(room.unknownAsInput() == nil, "a healthy input is believed")
        let faulty = try o.first[3].get()
        #expect(faulty.unknownAsInput() == "Status_Flags/Reliability show fault, Reliability 4 (not no-fault-detected)", "status-flags fault and reliability open-loop: unknown")
        #expect(faulty.reliability == .enumerated(4))  // open-loop

        // Written at 9 and in effect.
        #expect(o.executed == .success(.executed(value: 24.5)))
        // Held at 8 by a person: the agent's write at 9 lands in its slot but is overridden.
        #expect(o.personWrite == "ok")
        #expect(o.overridden == .success(.overridden(priority: BACnetPriority(8)!, presentValue: 25.0)))
        #expect(o.overriddenPresent == 25.0)
        // The person lets go: the agent's 23.0 at 9 takes effect.
        let after = try #require(try? o.afterPersonReleased?.get())
        #expect(after.effective == 23.0 && after.activePriority == Self.agent && after.value == .real(23.0))
        // The agent releases (NULL at 9): back to Relinquish_Default.
        #expect(o.released == .success(.relinquished(presentValue: 21.0, source: .relinquishDefault)))
        #expect(o.releasedPresent == 21.0)
        // A binary value: off at 9, then released to its relinquish default (active).
        #expect(o.binaryOff == .success(.executed(value: 0)))
        #expect(o.binaryReleased == .success(.relinquished(presentValue: 1, source: .relinquishDefault)))
        // Priority 8 is never written by Redline, and nothing goes on the wire for it.
        guard case .failure(.unsupported)? = o.reservedPriority else {
            Issue.record("a write at priority 8 was not refused: \(String(describing: o.reservedPriority))")
            return
        }
        // Nor any RL-8 property, whatever the caller.
        #expect(o.forbidden.count == 5)
        for f in o.forbidden {
            guard case .failure(.unsupported) = f else { Issue.record("an RL-8 property was written: \(f)"); continue }
        }
        #expect(o.reservedSent == 0)
        // An object the device does not have: its Error, typed.
        #expect(o.unknownObject == .failure(.bacnet(.error(.unknownObject))))
    }
}
