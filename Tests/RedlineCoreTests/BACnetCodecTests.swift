import Testing
import PropertyBased
@testable import RedlineCore

/// Hex to bytes ("81 0a 00 11" or "810a0011").
func hexBytes(_ s: String) -> [UInt8] {
    let digits = s.filter { !$0.isWhitespace }
    var out: [UInt8] = []
    var i = digits.startIndex
    while i < digits.endIndex {
        let j = digits.index(i, offsetBy: 2)
        out.append(UInt8(digits[i..<j], radix: 16)!)
        i = j
    }
    return out
}

/// Golden frames, computed by hand from ASHRAE 135 (clauses 20.1-20.2, 21; Annex J) and, for
/// the service parts, cross-checked against bacpypes3 0.0.110's encoder (the bytes after the
/// APDU header are exactly what `ReadPropertyRequest(...).encode()` and friends produce).
enum BACnetGolden {
    static let av1 = BACnetObjectId(type: .analogValue, instance: 1)
    static let bv2 = BACnetObjectId(type: .binaryValue, instance: 2)
    static let pv1 = BACnetPointAddress(object: av1)

    // Requests: BVLL 81 0a LEN LEN, NPDU 01 04 (expecting reply), APDU 00 05 ID SERVICE.
    static let readProperty = (BACnetConfirmedRequest(invokeId: 1, .readProperty(pv1)),
                               hexBytes("810a0011 0104 00050 10c 0c00800001 1955"))
    static let readPriorityArray8 = (BACnetConfirmedRequest(invokeId: 2, .readProperty(BACnetPointAddress(object: av1, property: .priorityArray, arrayIndex: 8))),
                                     hexBytes("810a0013 0104 0005020c 0c00800001 1957 2908"))
    static let write21_5at9 = (BACnetConfirmedRequest(invokeId: 3, .writeProperty(pv1, value: .real(21.5), priority: BACnetPriority(9))),
                               hexBytes("810a001a 0104 0005030f 0c00800001 1955 3e 4441ac0000 3f 4909"))
    static let relinquishAt9 = (BACnetConfirmedRequest(invokeId: 4, .writeProperty(BACnetPointAddress(object: bv2), value: .null, priority: BACnetPriority(9))),
                                hexBytes("810a0016 0104 0005040f 0c01400002 1955 3e 00 3f 4909"))
    static let rpm = (BACnetConfirmedRequest(invokeId: 5, .readPropertyMultiple([
        BACnetReadAccessSpec(object: av1, properties: [BACnetPropertyRef(.presentValue), BACnetPropertyRef(.statusFlags)]),
        BACnetReadAccessSpec(object: bv2, properties: [BACnetPropertyRef(.priorityArray, arrayIndex: 8)]),
    ])), hexBytes("810a0020 0104 0005050e 0c008000011e0955096f1f 0c014000021e095719081f"))
    static let subscribe = (BACnetConfirmedRequest(invokeId: 6, .subscribeCOV(processId: 7, object: BACnetObjectId(type: .analogInput, instance: 3),
                                                                           confirmed: false, lifetimeSeconds: 300)),
                            hexBytes("810a0016 0104 00050605 0907 1c00000003 2900 3a012c"))

    // Replies: NPDU 01 00.
    static let writeAck = hexBytes("810a0009 0100 20030f")
    static let readAck21_5 = hexBytes("810a0017 0100 30010c 0c00800001 1955 3e 4441ac0000 3f")
    static let rpmAck = hexBytes("""
        810a0036 0100 30050e
        0c008000011e 2955 4e 4441ac0000 4f 296f 4e 820400 4f 1f
        0c014000021e 2957 3908 4e 00 4f 2975 5e 9102 9120 5f 1f
        """)
    static let errorUnknownProperty = hexBytes("810a000d 0100 50010c 9102 9120")
    static let rejectUnrecognized = hexBytes("810a0009 0100 600109")
    static let abortSegmentation = hexBytes("810a0009 0100 710104")
    static let segmentedAck = hexBytes("810a000b 0100 3c01 0001 0c")
}

@Suite("BACnet codec: golden frames")
struct BACnetGoldenTests {
    typealias G = BACnetGolden

    @Test func requestsEncodeToTheGoldenFrames() {
        for (req, bytes) in [G.readProperty, G.readPriorityArray8, G.write21_5at9, G.relinquishAt9, G.rpm, G.subscribe] {
            #expect(req.encode() == bytes, "\(req.request)")
            // And a server parses them back to the same request.
            #expect(BACnetCodec.parseRequest(bytes) == .request(req))
        }
    }

    @Test func repliesDecodeToTheirValues() {
        #expect(BACnetReply.check(request: G.write21_5at9.0, reply: G.writeAck) == .success(.acknowledged))
        #expect(BACnetReply.check(request: G.readProperty.0, reply: G.readAck21_5) == .success(.values([.real(21.5)])))
        let pa8 = BACnetPointAddress(object: G.bv2, property: .priorityArray, arrayIndex: 8)
        // The golden RPM ack carries one property more (units, an error) than G.rpm asks: to
        // G.rpm it is not an answer; to the request with units it is.
        #expect(isNotAnAnswer(BACnetReply.check(request: G.rpm.0, reply: G.rpmAck)))
        let asked = BACnetConfirmedRequest(invokeId: 5, .readPropertyMultiple([
            BACnetReadAccessSpec(object: G.av1, properties: [BACnetPropertyRef(.presentValue), BACnetPropertyRef(.statusFlags)]),
            BACnetReadAccessSpec(object: G.bv2, properties: [BACnetPropertyRef(.priorityArray, arrayIndex: 8), BACnetPropertyRef(.units)]),
        ]))
        #expect(BACnetReply.check(request: asked, reply: G.rpmAck) == .success(.results([
            BACnetPropertyResult(address: G.pv1, result: .success([.real(21.5)])),
            BACnetPropertyResult(address: BACnetPointAddress(object: G.av1, property: .statusFlags), result: .success([.bitString([false, false, false, false])])),
            BACnetPropertyResult(address: pa8, result: .success([.null])),
            BACnetPropertyResult(address: BACnetPointAddress(object: G.bv2, property: .units), result: .failure(.error(.unknownProperty))),
        ])))
    }

    @Test func responsesEncodeToTheGoldenFrames() {
        #expect(BACnetResponse.simpleAck(invokeId: 3, service: .writeProperty).encode() == G.writeAck)
        #expect(BACnetResponse.readPropertyAck(invokeId: 1, address: G.pv1, values: [.real(21.5)]).encode() == G.readAck21_5)
        #expect(BACnetResponse.error(invokeId: 1, service: .readProperty, .unknownProperty).encode() == G.errorUnknownProperty)
        #expect(BACnetResponse.reject(invokeId: 1, reason: 9).encode() == G.rejectUnrecognized)
        #expect(BACnetResponse.abort(invokeId: 1, reason: 4, server: true).encode() == G.abortSegmentation)
        let rpmAck = BACnetResponse.readPropertyMultipleAck(invokeId: 5, results: [
            BACnetReadAccessResult(object: G.av1, results: [(BACnetPropertyRef(.presentValue), .success([.real(21.5)])),
                                                             (BACnetPropertyRef(.statusFlags), .success([.bitString([false, false, false, false])]))]),
            BACnetReadAccessResult(object: G.bv2, results: [(BACnetPropertyRef(.priorityArray, arrayIndex: 8), .success([.null])),
                                                             (BACnetPropertyRef(.units), .failure(.error(.unknownProperty)))]),
        ])
        #expect(rpmAck.encode() == G.rpmAck)
    }

    @Test func errorRejectAbortAndSegmentedRepliesAreTypedFaults() {
        #expect(BACnetReply.check(request: G.readProperty.0, reply: G.errorUnknownProperty) == .failure(.error(.unknownProperty)))
        #expect(BACnetReply.check(request: G.readProperty.0, reply: G.rejectUnrecognized) == .failure(.reject(reason: 9)))
        #expect(BACnetReply.check(request: G.readProperty.0, reply: G.abortSegmentation) == .failure(.abort(reason: 4, server: true)))
        #expect(BACnetReply.check(request: G.readProperty.0, reply: G.segmentedAck) == .failure(.segmented))
    }

    @Test func theVocabularyMatchesTheStandardsNumbers() {
        // Spot checks against ASHRAE 135 (and bacpypes3's tables).
        #expect(BACnetObjectType(yamlName: "analog-value")?.rawValue == 2)
        #expect(BACnetObjectType(yamlName: "multi-state-value")?.rawValue == 19)
        #expect(BACnetObjectType(yamlName: "life-safety-zone")?.rawValue == 22)
        #expect(BACnetObjectType(yamlName: "access-door")?.rawValue == 30)
        #expect(BACnetPropertyId(yamlName: "present-value")?.rawValue == 85)
        #expect(BACnetPropertyId(yamlName: "relinquish-default")?.rawValue == 104)
        #expect(BACnetPropertyId(yamlName: "description")?.rawValue == 28)
        #expect(BACnetPropertyId(yamlName: "analog-value") == nil)
        // Spellings are unique both ways.
        #expect(Set(BACnetObjectType.allCases.map(\.yamlName)).count == BACnetObjectType.allCases.count)
        #expect(Set(BACnetPropertyId.allCases.map(\.yamlName)).count == BACnetPropertyId.allCases.count)
        for p in BACnetPropertyId.allCases { #expect(BACnetPropertyId(yamlName: p.yamlName) == p) }
        for t in BACnetObjectType.allCases { #expect(BACnetObjectType(yamlName: t.yamlName) == t) }
        for p: BACnetPropertyId in [.outOfService, .reliability, .relinquishDefault, .priorityArray, .notificationClass,
                                    .eventEnable, .recipientList, .ackedTransitions, .notifyType] {
            #expect(p.isAgentForbidden, "\(p)")
        }
        #expect(!BACnetPropertyId.presentValue.isAgentForbidden)
        #expect(BACnetPriority(0) == nil && BACnetPriority(17) == nil && BACnetPriority(9)?.allowedForAgents == true)
        #expect(BACnetPriority(8)?.allowedForAgents == false)
    }
}

@Suite("BACnet codec: malformed and hostile replies")
struct BACnetHostileTests {
    typealias G = BACnetGolden

    /// Every golden reply with the request it answers.
    static let answered: [(BACnetConfirmedRequest, [UInt8])] = [
        (G.write21_5at9.0, G.writeAck), (G.readProperty.0, G.readAck21_5),
        (G.readProperty.0, G.errorUnknownProperty), (G.readProperty.0, G.rejectUnrecognized),
        (G.readProperty.0, G.abortSegmentation),
    ]

    @Test func aReplyForAnotherInvokeIdNeverAnswers() {
        for (req, reply) in Self.answered {
            for other: UInt8 in [0, req.invokeId &+ 1, 255] where other != req.invokeId {
                var r = req
                r.invokeId = other
                #expect(BACnetReply.check(request: r, reply: reply) == .failure(.wrongInvokeId(expected: other, got: req.invokeId)))
            }
        }
        var segReq = G.readProperty.0
        segReq.invokeId = 9
        #expect(BACnetReply.check(request: segReq, reply: G.segmentedAck) == .failure(.wrongInvokeId(expected: 9, got: 1)))
    }

    @Test func everyTruncationIsAFaultNeverAValue() {
        for (req, reply) in Self.answered + [(G.readProperty.0, G.segmentedAck)] {
            for n in 0..<reply.count {
                // Cut short, with the BVLL length left as sent and with it fixed up to match.
                var cut = Array(reply[0..<n])
                #expect(!isSuccess(BACnetReply.check(request: req, reply: cut)), "\(n) of \(reply.count)")
                if cut.count >= 4 { cut[2] = UInt8(n >> 8); cut[3] = UInt8(n & 0xFF) }
                #expect(!isSuccess(BACnetReply.check(request: req, reply: cut)), "fixed up \(n) of \(reply.count)")
            }
        }
    }

    @Test func truncatedTagsInsideAValueAreFaults() {
        // RP ack whose Real has 3 bytes (the tag says 4, so it swallows the closing tag).
        let short = hexBytes("810a0016 0100 30010c 0c00800001 1955 3e 4441ac00 3f")
        #expect(BACnetReply.check(request: G.readProperty.0, reply: short) == .failure(.malformed("truncated: closing tag 3 missing")))
        // A Real announced as 3 bytes.
        let r3 = hexBytes("810a0016 0100 30010c 0c00800001 1955 3e 43ac0000 3f")
        #expect(BACnetReply.check(request: G.readProperty.0, reply: r3) == .failure(.malformed("real of 3 bytes")))
        // Closing tag missing.
        let open = hexBytes("810a0016 0100 30010c 0c00800001 1955 3e 4441ac0000")
        #expect(!isSuccess(BACnetReply.check(request: G.readProperty.0, reply: open)))
        // An extended length pointing past the end.
        let ext = hexBytes("810a0014 0100 30010c 0c00800001 1955 3e 75ff 3f")
        #expect(!isSuccess(BACnetReply.check(request: G.readProperty.0, reply: ext)))
        // A trailing byte after the closing tag.
        let trailing = G.readAck21_5.withLength([0x00])
        #expect(BACnetReply.check(request: G.readProperty.0, reply: trailing) == .failure(.malformed("1 trailing bytes")))
        // Octet string (tag 6) is not a value this codec believes.
        let octets = hexBytes("810a0015 0100 30010c 0c00800001 1955 3e 6201ff 3f")
        #expect(BACnetReply.check(request: G.readProperty.0, reply: octets) == .failure(.unsupported("application tag 6")))
    }

    @Test func aWellFormedReplyToAnotherQuestionNeverAnswers() {
        // RP ack for Present_Value of analog-value 1, to a read of its priority array [8].
        #expect(isNotAnAnswer(BACnetReply.check(request: G.readPriorityArray8.0.withInvokeId(1), reply: G.readAck21_5)))
        // ... of analog-value 2.
        let av2 = BACnetConfirmedRequest(invokeId: 1, .readProperty(BACnetPointAddress(object: BACnetObjectId(type: .analogValue, instance: 2))))
        #expect(isNotAnAnswer(BACnetReply.check(request: av2, reply: G.readAck21_5)))
        // A read ack to a write, a write ack to a read, an ack naming another service.
        #expect(isNotAnAnswer(BACnetReply.check(request: G.write21_5at9.0.withInvokeId(1), reply: G.readAck21_5)))
        #expect(isNotAnAnswer(BACnetReply.check(request: G.readProperty.0.withInvokeId(3), reply: G.writeAck)))
        let covAck = hexBytes("810a0009 0100 200305")
        #expect(isNotAnAnswer(BACnetReply.check(request: G.write21_5at9.0, reply: covAck)))
        // An Error naming WriteProperty, to a ReadProperty.
        let wpError = hexBytes("810a000d 0100 50010f 9102 9128")
        #expect(isNotAnAnswer(BACnetReply.check(request: G.readProperty.0, reply: wpError)))
        // An RPM ack with a property missing, or an object short.
        let oneObject = hexBytes("810a0020 0100 30050e 0c008000011e 2955 4e 4441ac0000 4f 296f 4e 820400 4f 1f")
        #expect(isNotAnAnswer(BACnetReply.check(request: G.rpm.0, reply: oneObject)))
        let oneProperty = BACnetConfirmedRequest(invokeId: 5, .readPropertyMultiple([BACnetReadAccessSpec(object: G.av1, properties: [BACnetPropertyRef(.presentValue)])]))
        #expect(isNotAnAnswer(BACnetReply.check(request: oneProperty, reply: oneObject)))
        // A request coming back (an echo, or a device that loops) is not a reply.
        #expect(isNotAnAnswer(BACnetReply.check(request: G.readProperty.0, reply: G.readProperty.1)))
    }

    @Test func framingOutsideTheSubsetIsRefused() {
        let ack = G.readAck21_5
        var broadcast = ack; broadcast[1] = 0x0b            // Original-Broadcast-NPDU
        var forwarded = ack; forwarded[1] = 0x04            // Forwarded-NPDU
        var notBIP = ack; notBIP[0] = 0x82
        var version = ack; version[4] = 0x02
        var network = ack; network[5] = 0x80                // network-layer message
        var snet = ack; snet[5] = 0x08                      // SNET present (routed)
        var dnet = ack; dnet[5] = 0x20                      // DNET present
        var length = ack; length[3] &+= 1
        var segmentAck = ack; segmentAck[6] = 0x40          // Segment-ACK PDU
        var unconfirmed = ack; unconfirmed[6] = 0x10        // Unconfirmed-Request
        for (what, frame) in [("broadcast", broadcast), ("forwarded", forwarded), ("not B/IP", notBIP), ("version", version),
                              ("network message", network), ("SNET", snet), ("DNET", dnet), ("length", length),
                              ("segment ack", segmentAck), ("unconfirmed", unconfirmed)] {
            #expect(!isSuccess(BACnetReply.check(request: G.readProperty.0, reply: frame)), "\(what)")
        }
    }

    @Test func aServerRefusesEveryServiceOutsideTheWhitelist() {
        // ReinitializeDevice (20), DeviceCommunicationControl (17), AcknowledgeAlarm (0),
        // LifeSafetyOperation (27), AtomicWriteFile (7), ConfirmedPrivateTransfer (18).
        for s: UInt8 in [0, 7, 17, 18, 20, 27] {
            let frame = hexBytes("810a0009 0104 0005 07") + [s]
            var f = frame; f[3] = UInt8(f.count)
            #expect(BACnetCodec.parseRequest(f) == .refuse(.reject(invokeId: 7, reason: 9)), "service \(s)")
        }
        // A segmented request is aborted (segmentation-not-supported).
        let seg = hexBytes("810a000e 0104 0805 07 00 01 0c 0c00")
        #expect(BACnetCodec.parseRequest(seg) == .refuse(.abort(invokeId: 7, reason: 4, server: true)))
        // An unknown property is an Error, not a crash or a guess.
        let unknown = hexBytes("810a0012 0104 0005 07 0c 0c00800001 1a0fff")
        #expect(BACnetCodec.parseRequest(unknown) == .refuse(.error(invokeId: 7, service: .readProperty, .unknownProperty)))
    }
}

func isSuccess<T, E>(_ r: Result<T, E>) -> Bool {
    if case .success = r { return true }
    return false
}

func isNotAnAnswer<T>(_ r: Result<T, BACnetFault>) -> Bool {
    if case .failure(.notAnAnswer) = r { return true }
    return false
}

extension BACnetConfirmedRequest {
    func withInvokeId(_ id: UInt8) -> BACnetConfirmedRequest {
        var r = self
        r.invokeId = id
        return r
    }
}

extension Array where Element == UInt8 {
    /// This frame with `extra` appended and the BVLL length fixed up.
    func withLength(_ extra: [UInt8]) -> [UInt8] {
        var f = self + extra
        f[2] = UInt8(f.count >> 8)
        f[3] = UInt8(f.count & 0xFF)
        return f
    }
}
