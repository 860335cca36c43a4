import Foundation
import RedlineCore
import RedlineTestSupport
import Testing

/// The codec against bacpypes3's (PyPI; not our code) own encoder and decoder: the same
/// messages give the same APDU bytes, and bacpypes3 reads our requests as we meant them.
@Suite("BACnet codec against bacpypes3's encoder and decoder")
struct BACnetCodecInteropTests {
    static let av1 = BACnetObjectId(type: .analogValue, instance: 1)
    static let bv2 = BACnetObjectId(type: .binaryValue, instance: 2)
    static let pv1 = BACnetPointAddress(object: av1)

    /// Our encodings of the messages bacpypes3_frames.py builds, by its names.
    static let ours: [(String, [UInt8])] = {
        let requests: [(String, BACnetConfirmedRequest)] = [
            ("rp", BACnetConfirmedRequest(invokeId: 1, .readProperty(pv1))),
            ("rp-index", BACnetConfirmedRequest(invokeId: 2, .readProperty(BACnetPointAddress(object: av1, property: .priorityArray, arrayIndex: 8)))),
            ("wp", BACnetConfirmedRequest(invokeId: 3, .writeProperty(pv1, value: .real(21.5), priority: BACnetPriority(9)))),
            ("wp-null", BACnetConfirmedRequest(invokeId: 4, .writeProperty(BACnetPointAddress(object: bv2), value: .null, priority: BACnetPriority(9)))),
            ("rpm", BACnetConfirmedRequest(invokeId: 5, .readPropertyMultiple([
                BACnetReadAccessSpec(object: av1, properties: [BACnetPropertyRef(.presentValue), BACnetPropertyRef(.statusFlags)]),
                BACnetReadAccessSpec(object: bv2, properties: [BACnetPropertyRef(.priorityArray, arrayIndex: 8)]),
            ]))),
            ("cov", BACnetConfirmedRequest(invokeId: 6, .subscribeCOV(processId: 7, object: BACnetObjectId(type: .analogInput, instance: 3),
                                                                      confirmed: false, lifetimeSeconds: 300))),
        ]
        let responses: [(String, BACnetResponse)] = [
            ("rp-ack", .readPropertyAck(invokeId: 1, address: pv1, values: [.real(21.5)])),
            ("rpm-ack", .readPropertyMultipleAck(invokeId: 5, results: [
                BACnetReadAccessResult(object: av1, results: [(BACnetPropertyRef(.presentValue), .success([.real(21.5)])),
                                                               (BACnetPropertyRef(.statusFlags), .success([.bitString([false, false, false, false])]))]),
                BACnetReadAccessResult(object: bv2, results: [(BACnetPropertyRef(.priorityArray, arrayIndex: 8), .success([.null])),
                                                               (BACnetPropertyRef(.units), .failure(.error(.unknownProperty)))]),
            ])),
            ("simple-ack", .simpleAck(invokeId: 3, service: .writeProperty)),
            ("error", .error(invokeId: 1, service: .readProperty, .unknownProperty)),
            ("reject", .reject(invokeId: 1, reason: 9)),
            ("abort", .abort(invokeId: 1, reason: 4, server: true)),
        ]
        return requests.map { ($0.0, Array($0.1.encode().dropFirst(6))) } + responses.map { ($0.0, Array($0.1.encode().dropFirst(6))) }
    }()

    static func hex(_ b: [UInt8]) -> String { b.map { String(format: "%02x", $0) }.joined() }

    static func run(_ args: [String], dir: TempDir) throws -> String {
        let py = try #require(InteropTests.python(), "python3 not found")
        let child = try ChildProcess(executable: py, arguments: [InteropTests.scripts.appendingPathComponent("bacpypes3_frames.py").path] + args,
                                     logPath: dir.file("bacpypes3_frames.log"))
        child.process.waitUntilExit()
        _ = child.waitForOutput(containing: "\n", timeout: 2)
        #expect(child.process.terminationStatus == 0, "bacpypes3_frames.py failed: \(child.stderr)")
        return child.stdout
    }

    @Test func theSameMessagesGiveTheSameBytes() throws {
        let out = try Self.run(["encode"], dir: TempDir())
        var theirs: [String: String] = [:]
        for line in out.split(separator: "\n") {
            let parts = line.split(separator: " ")
            if parts.count == 2 { theirs[String(parts[0])] = String(parts[1]) }
        }
        #expect(theirs.count == Self.ours.count, "\(out)")
        for (name, bytes) in Self.ours {
            #expect(theirs[name] == Self.hex(bytes), "\(name)")
        }
    }

    @Test func bacpypes3ReadsOurRequestsAsMeant() throws {
        let names = ["rp", "rp-index", "wp", "wp-null", "rpm", "cov"]
        let apdus = names.map { n in Self.hex(Self.ours.first { $0.0 == n }!.1) }
        let lines = try Self.run(["decode"] + apdus, dir: TempDir()).split(separator: "\n").map(String.init)
        #expect(lines == [
            "ReadPropertyRequest 1 objectIdentifier=analog-value,1 propertyIdentifier=present-value",
            "ReadPropertyRequest 2 objectIdentifier=analog-value,1 propertyIdentifier=priority-array propertyArrayIndex=8",
            "WritePropertyRequest 3 objectIdentifier=analog-value,1 propertyIdentifier=present-value priority=9",
            "WritePropertyRequest 4 objectIdentifier=binary-value,2 propertyIdentifier=present-value priority=9",
            "ReadPropertyMultipleRequest 5 analog-value,1:present-value,status-flags binary-value,2:priority-array[8]",
            "SubscribeCOVRequest 6 subscriberProcessIdentifier=7 monitoredObjectIdentifier=analog-input,3 lifetime=300",
        ])
    }
}
