/// A small, strict BACnet/IP codec (ASHRAE 135 Annex J, clauses 6 and 20-21): pure functions
/// from values to frames and back, no I/O. Used by the client backend in RedlineIO and by a
/// server (redline-sim), and fuzzed (`Fuzz/bacnet-replies`).
///
/// What it speaks, and nothing more:
/// - BVLL: Original-Unicast-NPDU (0x0a) only. Broadcasts, forwarded NPDUs, BBMD and foreign
///   device functions are refused.
/// - NPDU: version 1, no routing (DNET/SNET absent); network-layer messages refused.
/// - APDU: Confirmed-Request for ReadProperty (12), ReadPropertyMultiple (14), WriteProperty
///   (15) and SubscribeCOV (5); Simple-ACK, Complex-ACK (RP, RPM), Error, Reject, Abort.
///   Segmentation is never accepted: requests say so (SA = 0), a segmented reply is a fault.
/// - Application tags: Null, Boolean, Unsigned, Signed, Real, Double, Enumerated, BitString,
///   CharacterString (UTF-8), ObjectIdentifier. Anything else in a value is refused.

// MARK: - Values

/// An application-tagged primitive value.
public enum BACnetValue: Sendable, Hashable, CustomStringConvertible {
    case null
    case boolean(Bool)
    case unsigned(UInt64)
    case signed(Int64)
    case real(Float)
    case double(Double)
    case enumerated(UInt32)
    case bitString([Bool])
    case characterString(String)
    /// Raw object type (it may be one outside `BACnetObjectType`) and instance.
    case objectId(type: UInt16, instance: UInt32)

    /// The value as a number, for the kinds a point can carry (Boolean 0/1, Unsigned, Signed,
    /// Real, Double, Enumerated); nil for the others and for a non-finite Real or Double.
    public var number: Double? {
        switch self {
        case .boolean(let b): return b ? 1 : 0
        case .unsigned(let u): return Double(u)
        case .signed(let s): return Double(s)
        case .real(let f): return f.isFinite ? Double(f) : nil
        case .double(let d): return d.isFinite ? d : nil
        case .enumerated(let e): return Double(e)
        case .null, .bitString, .characterString, .objectId: return nil
        }
    }

    public static func objectId(_ id: BACnetObjectId) -> BACnetValue { .objectId(type: id.type.rawValue, instance: id.instance) }

    public var description: String {
        switch self {
        case .null: return "null"
        case .boolean(let b): return String(b)
        case .unsigned(let u): return String(u)
        case .signed(let s): return String(s)
        case .real(let f): return "\(f)"
        case .double(let d): return "\(d)"
        case .enumerated(let e): return "enum \(e)"
        case .bitString(let bits): return "bits " + bits.map { $0 ? "1" : "0" }.joined()
        case .characterString(let s): return "\"\(s)\""
        case .objectId(let t, let i): return (BACnetObjectType(rawValue: t)?.yamlName ?? "type-\(t)") + ":\(i)"
        }
    }
}

/// One property of an object, as ReadPropertyMultiple names it.
public struct BACnetPropertyRef: Sendable, Hashable {
    public var property: BACnetPropertyId
    public var arrayIndex: UInt32?
    public init(_ property: BACnetPropertyId, arrayIndex: UInt32? = nil) {
        self.property = property
        self.arrayIndex = arrayIndex
    }
}

/// ReadAccessSpecification: one object and the properties read from it.
public struct BACnetReadAccessSpec: Sendable, Hashable {
    public var object: BACnetObjectId
    public var properties: [BACnetPropertyRef]
    public init(object: BACnetObjectId, properties: [BACnetPropertyRef]) {
        self.object = object
        self.properties = properties
    }

    /// Specs for `addresses`, one per object in the order objects first appear, each with its
    /// properties in the order given.
    public static func grouping(_ addresses: [BACnetPointAddress]) -> [BACnetReadAccessSpec] {
        var specs: [BACnetReadAccessSpec] = []
        var at: [BACnetObjectId: Int] = [:]
        for a in addresses {
            let ref = BACnetPropertyRef(a.property, arrayIndex: a.arrayIndex)
            if let i = at[a.object] {
                specs[i].properties.append(ref)
            } else {
                at[a.object] = specs.count
                specs.append(BACnetReadAccessSpec(object: a.object, properties: [ref]))
            }
        }
        return specs
    }

    /// The addresses read, in the order of the request (and so of the reply).
    public var addresses: [BACnetPointAddress] {
        properties.map { BACnetPointAddress(object: object, property: $0.property, arrayIndex: $0.arrayIndex) }
    }
}

/// A device's answer for one property: its value(s), or the error it gave for that property.
public struct BACnetPropertyResult: Sendable, Hashable {
    public var address: BACnetPointAddress
    public var result: Result<[BACnetValue], BACnetFault>
    public init(address: BACnetPointAddress, result: Result<[BACnetValue], BACnetFault>) {
        self.address = address
        self.result = result
    }
}

/// ReadAccessResult: one object's results, in the order the properties were asked.
public struct BACnetReadAccessResult: Sendable, Hashable {
    public var object: BACnetObjectId
    public var results: [(ref: BACnetPropertyRef, value: Result<[BACnetValue], BACnetFault>)]
    public init(object: BACnetObjectId, results: [(ref: BACnetPropertyRef, value: Result<[BACnetValue], BACnetFault>)]) {
        self.object = object
        self.results = results
    }

    public static func == (a: Self, b: Self) -> Bool {
        a.object == b.object && a.results.count == b.results.count
            && zip(a.results, b.results).allSatisfy { $0.ref == $1.ref && $0.value == $1.value }
    }

    public func hash(into h: inout Hasher) {
        h.combine(object)
        for r in results { h.combine(r.ref); h.combine(r.value) }
    }
}

// MARK: - Services (the choke point)

/// The confirmed services Redline may send. Nothing else can be encoded as a request: no
/// AcknowledgeAlarm, LifeSafetyOperation, DeviceCommunicationControl, ReinitializeDevice,
/// WriteGroup, file services or private transfers (issue 17). Like Modbus `FunctionCode`.
public enum BACnetConfirmedService: UInt8, Sendable, Hashable, CaseIterable {
    case subscribeCOV = 5
    case readProperty = 12
    case readPropertyMultiple = 14
    case writeProperty = 15
}

/// A confirmed-service request. Its cases are the whitelist: the encoder has no way to emit
/// any other service.
public enum BACnetRequest: Sendable, Hashable {
    case readProperty(BACnetPointAddress)
    case readPropertyMultiple([BACnetReadAccessSpec])
    /// WriteProperty of one primitive value (`.null` relinquishes the slot at `priority`).
    case writeProperty(BACnetPointAddress, value: BACnetValue, priority: BACnetPriority?)
    /// SubscribeCOV; `confirmed` and `lifetimeSeconds` both nil cancel the subscription.
    case subscribeCOV(processId: UInt32, object: BACnetObjectId, confirmed: Bool?, lifetimeSeconds: UInt32?)

    public var service: BACnetConfirmedService {
        switch self {
        case .readProperty: return .readProperty
        case .readPropertyMultiple: return .readPropertyMultiple
        case .writeProperty: return .writeProperty
        case .subscribeCOV: return .subscribeCOV
        }
    }
}

/// A request with its invoke id, as sent to one device.
public struct BACnetConfirmedRequest: Sendable, Hashable {
    public var invokeId: UInt8
    public var request: BACnetRequest
    public init(invokeId: UInt8, _ request: BACnetRequest) {
        self.invokeId = invokeId
        self.request = request
    }

    /// The whole BVLL frame (Original-Unicast-NPDU, NPDU expecting a reply, APDU).
    public func encode() -> [UInt8] { BACnetCodec.encodeRequest(self) }
}

/// BACnetErrorClass / BACnetErrorCode of an Error PDU (or an RPM property access error).
public struct BACnetError: Sendable, Hashable, CustomStringConvertible {
    public var errorClass: UInt32
    public var errorCode: UInt32
    public init(errorClass: UInt32, errorCode: UInt32) {
        self.errorClass = errorClass
        self.errorCode = errorCode
    }

    public static let classObject: UInt32 = 1, classProperty: UInt32 = 2, classServices: UInt32 = 5
    public static let unknownObject = BACnetError(errorClass: classObject, errorCode: 31)
    public static let unknownProperty = BACnetError(errorClass: classProperty, errorCode: 32)
    public static let writeAccessDenied = BACnetError(errorClass: classProperty, errorCode: 40)
    public static let invalidDataType = BACnetError(errorClass: classProperty, errorCode: 9)
    public static let valueOutOfRange = BACnetError(errorClass: classProperty, errorCode: 37)
    public static let invalidArrayIndex = BACnetError(errorClass: classProperty, errorCode: 42)
    public static let propertyIsNotAnArray = BACnetError(errorClass: classProperty, errorCode: 50)

    public var description: String {
        let classes = ["device", "object", "property", "resources", "security", "services", "vt", "communication"]
        let c = errorClass < classes.count ? classes[Int(errorClass)] : "class \(errorClass)"
        let codes: [UInt32: String] = [0: "other", 9: "invalid-data-type", 27: "read-access-denied",
                                       29: "service-request-denied", 31: "unknown-object", 32: "unknown-property",
                                       37: "value-out-of-range", 40: "write-access-denied", 42: "invalid-array-index",
                                       44: "not-cov-property", 45: "optional-functionality-not-supported",
                                       50: "property-is-not-an-array"]
        return "\(c): \(codes[errorCode] ?? "code \(errorCode)")"
    }
}

/// Why a reply is not believed. Every case is a device error; none carries a value.
public enum BACnetFault: Error, Sendable, Hashable, CustomStringConvertible {
    /// Not a frame this codec accepts (framing, tags, lengths, trailing bytes).
    case malformed(String)
    /// A well-formed reply, but not the answer to this request (service, object, property).
    case notAnAnswer(String)
    /// A reply with another invoke id: a late answer to an earlier request, never to this one.
    case wrongInvokeId(expected: UInt8, got: UInt8)
    /// A segmented reply (segmentation is never accepted).
    case segmented
    /// The device answered with an Error PDU (or a property access error inside RPM).
    case error(BACnetError)
    /// The device rejected the request (Reject PDU reason).
    case reject(reason: UInt8)
    /// The transaction was aborted (Abort PDU reason; `server` when the device sent it).
    case abort(reason: UInt8, server: Bool)
    /// A value of a kind this codec does not decode (an application tag outside the list).
    case unsupported(String)

    public static let rejectUnrecognizedService: UInt8 = 9
    public static let abortSegmentationNotSupported: UInt8 = 4

    public var description: String {
        switch self {
        case .malformed(let m): return "malformed BACnet frame: \(m)"
        case .notAnAnswer(let m): return "reply does not answer the request: \(m)"
        case .wrongInvokeId(let e, let g): return "reply for invoke id \(g), expected \(e)"
        case .segmented: return "segmented reply refused"
        case .error(let e): return "BACnet error (\(e))"
        case .reject(let r): return "BACnet reject (\(Self.rejectName(r)))"
        case .abort(let r, let s): return "BACnet abort by \(s ? "device" : "client") (\(Self.abortName(r)))"
        case .unsupported(let m): return "unsupported: \(m)"
        }
    }

    public static func rejectName(_ r: UInt8) -> String {
        let names = ["other", "buffer-overflow", "inconsistent-parameters", "invalid-parameter-data-type", "invalid-tag",
                     "missing-required-parameter", "parameter-out-of-range", "too-many-arguments",
                     "undefined-enumeration", "unrecognized-service"]
        return r < names.count ? names[Int(r)] : "reason \(r)"
    }

    public static func abortName(_ r: UInt8) -> String {
        let names = ["other", "buffer-overflow", "invalid-apdu-in-this-state", "preempted-by-higher-priority-task",
                     "segmentation-not-supported", "security-error", "insufficient-security", "window-size-out-of-range",
                     "application-exceeded-reply-time", "out-of-resources", "tsm-timeout", "apdu-too-long"]
        return r < names.count ? names[Int(r)] : "reason \(r)"
    }
}

// MARK: - Responses

/// A reply APDU, as a server encodes it and a client parses it.
public enum BACnetResponse: Sendable, Hashable {
    case simpleAck(invokeId: UInt8, service: BACnetConfirmedService)
    /// ReadProperty-ACK: the address echoed and the value(s) (several for a whole array).
    case readPropertyAck(invokeId: UInt8, address: BACnetPointAddress, values: [BACnetValue])
    case readPropertyMultipleAck(invokeId: UInt8, results: [BACnetReadAccessResult])
    case error(invokeId: UInt8, service: BACnetConfirmedService, BACnetError)
    case reject(invokeId: UInt8, reason: UInt8)
    case abort(invokeId: UInt8, reason: UInt8, server: Bool)
    /// A Complex-ACK with the SEG bit (parsed only far enough to know whose it is).
    case segmentedAck(invokeId: UInt8)

    public var invokeId: UInt8 {
        switch self {
        case .simpleAck(let i, _), .readPropertyAck(let i, _, _), .readPropertyMultipleAck(let i, _),
             .error(let i, _, _), .reject(let i, _), .abort(let i, _, _), .segmentedAck(let i):
            return i
        }
    }

    /// The whole BVLL frame (Original-Unicast-NPDU, NPDU without reply expected, APDU).
    public func encode() -> [UInt8] { BACnetCodec.encodeResponse(self) }
}

/// What a server makes of an incoming frame.
public enum BACnetIncoming: Sendable, Hashable {
    /// A request to serve.
    case request(BACnetConfirmedRequest)
    /// A confirmed request this codec understood well enough to refuse: send this answer
    /// (Reject unrecognized-service, Abort segmentation-not-supported, Error unknown-object...).
    case refuse(BACnetResponse)
    /// Nothing to answer (not a confirmed request, or too broken to answer).
    case ignore(String)
}

// MARK: - The reply check

/// The checks a BACnet reply must pass before a value in it is believed, as a pure function of
/// the request and the reply bytes (fuzzed by `Fuzz/bacnet-replies`).
///
/// A reply answers a request only if it is a frame this codec accepts, carries the request's
/// invoke id, and: a Simple-ACK names the service of a WriteProperty or SubscribeCOV request; a
/// ReadProperty-ACK echoes the object, property and array index asked; a
/// ReadPropertyMultiple-ACK gives, object for object and property for property in the order
/// asked, a value or an error for each (nothing missing, nothing extra); an Error PDU names the
/// request's service. Errors, Rejects and Aborts are faults; so is a segmented reply.
public enum BACnetReply {
    /// What a request's answer carries.
    public enum Answer: Sendable, Hashable {
        /// WriteProperty or SubscribeCOV acknowledged.
        case acknowledged
        /// ReadProperty: the value(s) of the property.
        case values([BACnetValue])
        /// ReadPropertyMultiple: one result per property, in request order.
        case results([BACnetPropertyResult])
    }

    public static func check(request: BACnetConfirmedRequest, reply: [UInt8]) -> Result<Answer, BACnetFault> {
        let response: BACnetResponse
        switch BACnetCodec.parseResponse(reply) {
        case .failure(let f): return .failure(f)
        case .success(let r): response = r
        }
        guard response.invokeId == request.invokeId else {
            return .failure(.wrongInvokeId(expected: request.invokeId, got: response.invokeId))
        }
        switch response {
        case .segmentedAck:
            return .failure(.segmented)
        case .reject(_, let reason):
            return .failure(.reject(reason: reason))
        case .abort(_, let reason, let server):
            return .failure(.abort(reason: reason, server: server))
        case .error(_, let service, let e):
            guard service == request.request.service else {
                return .failure(.notAnAnswer("error for service \(service.rawValue), asked \(request.request.service.rawValue)"))
            }
            return .failure(.error(e))
        case .simpleAck(_, let service):
            switch request.request {
            case .writeProperty, .subscribeCOV:
                guard service == request.request.service else {
                    return .failure(.notAnAnswer("simple ack for service \(service.rawValue), asked \(request.request.service.rawValue)"))
                }
                return .success(.acknowledged)
            case .readProperty, .readPropertyMultiple:
                return .failure(.notAnAnswer("simple ack to a read"))
            }
        case .readPropertyAck(_, let address, let values):
            guard case .readProperty(let asked) = request.request else {
                return .failure(.notAnAnswer("ReadProperty ack to service \(request.request.service.rawValue)"))
            }
            guard address == asked else { return .failure(.notAnAnswer("ack for \(address), asked \(asked)")) }
            return .success(.values(values))
        case .readPropertyMultipleAck(_, let results):
            guard case .readPropertyMultiple(let specs) = request.request else {
                return .failure(.notAnAnswer("ReadPropertyMultiple ack to service \(request.request.service.rawValue)"))
            }
            guard results.count == specs.count else {
                return .failure(.notAnAnswer("\(results.count) objects in the ack, asked \(specs.count)"))
            }
            var out: [BACnetPropertyResult] = []
            for (spec, res) in zip(specs, results) {
                guard res.object == spec.object else { return .failure(.notAnAnswer("ack for \(res.object), asked \(spec.object)")) }
                guard res.results.count == spec.properties.count else {
                    return .failure(.notAnAnswer("\(res.results.count) properties of \(spec.object) in the ack, asked \(spec.properties.count)"))
                }
                for (ref, r) in zip(spec.properties, res.results) {
                    guard r.ref == ref else {
                        return .failure(.notAnAnswer("ack for \(spec.object).\(r.ref.property), asked \(spec.object).\(ref.property)"))
                    }
                    out.append(BACnetPropertyResult(address: BACnetPointAddress(object: spec.object, property: ref.property, arrayIndex: ref.arrayIndex),
                                                    result: r.value))
                }
            }
            return .success(.results(out))
        }
    }
}

// MARK: - Codec

public enum BACnetCodec {
    /// The UDP port of BACnet/IP (0xBAC0).
    public static let defaultPort = 47808
    /// Max APDU length accepted, encoded in requests (5 = 1476 octets, B/IP's largest).
    public static let maxAPDUCode: UInt8 = 5
    /// The largest BVLL frame accepted: 4 (BVLL) + 2 (NPDU) + 1476 (APDU).
    public static let maxFrame = 4 + 2 + 1476
    static let bvlcType: UInt8 = 0x81
    static let originalUnicast: UInt8 = 0x0a

    // MARK: Encoding

    public static func encodeRequest(_ r: BACnetConfirmedRequest) -> [UInt8] {
        var w = BACnetWriter()
        // Confirmed-Request, SEG = 0, MOR = 0, SA = 0 (no segmented response accepted);
        // max segments unspecified, max APDU 1476.
        w.bytes += [0x00, maxAPDUCode, r.invokeId, r.request.service.rawValue]
        switch r.request {
        case .readProperty(let a):
            w.contextObjectId(0, a.object)
            w.contextUnsigned(1, UInt64(a.property.rawValue))
            if let i = a.arrayIndex { w.contextUnsigned(2, UInt64(i)) }
        case .readPropertyMultiple(let specs):
            for s in specs {
                w.contextObjectId(0, s.object)
                w.opening(1)
                for p in s.properties {
                    w.contextUnsigned(0, UInt64(p.property.rawValue))
                    if let i = p.arrayIndex { w.contextUnsigned(1, UInt64(i)) }
                }
                w.closing(1)
            }
        case .writeProperty(let a, let value, let priority):
            w.contextObjectId(0, a.object)
            w.contextUnsigned(1, UInt64(a.property.rawValue))
            if let i = a.arrayIndex { w.contextUnsigned(2, UInt64(i)) }
            w.opening(3)
            w.application(value)
            w.closing(3)
            if let p = priority { w.contextUnsigned(4, UInt64(p.level)) }
        case .subscribeCOV(let pid, let object, let confirmed, let lifetime):
            w.contextUnsigned(0, UInt64(pid))
            w.contextObjectId(1, object)
            if let c = confirmed { w.contextBoolean(2, c) }
            if let l = lifetime { w.contextUnsigned(3, UInt64(l)) }
        }
        return frame(npduControl: 0x04, apdu: w.bytes)
    }

    public static func encodeResponse(_ r: BACnetResponse) -> [UInt8] {
        var w = BACnetWriter()
        switch r {
        case .simpleAck(let id, let s):
            w.bytes += [0x20, id, s.rawValue]
        case .readPropertyAck(let id, let a, let values):
            w.bytes += [0x30, id, BACnetConfirmedService.readProperty.rawValue]
            w.contextObjectId(0, a.object)
            w.contextUnsigned(1, UInt64(a.property.rawValue))
            if let i = a.arrayIndex { w.contextUnsigned(2, UInt64(i)) }
            w.opening(3)
            for v in values { w.application(v) }
            w.closing(3)
        case .readPropertyMultipleAck(let id, let results):
            w.bytes += [0x30, id, BACnetConfirmedService.readPropertyMultiple.rawValue]
            for res in results {
                w.contextObjectId(0, res.object)
                w.opening(1)
                for r in res.results {
                    w.contextUnsigned(2, UInt64(r.ref.property.rawValue))
                    if let i = r.ref.arrayIndex { w.contextUnsigned(3, UInt64(i)) }
                    switch r.value {
                    case .success(let values):
                        w.opening(4)
                        for v in values { w.application(v) }
                        w.closing(4)
                    case .failure(let f):
                        let e: BACnetError
                        if case .error(let x) = f { e = x } else { e = BACnetError(errorClass: 2, errorCode: 0) }
                        w.opening(5)
                        w.application(.enumerated(e.errorClass))
                        w.application(.enumerated(e.errorCode))
                        w.closing(5)
                    }
                }
                w.closing(1)
            }
        case .error(let id, let s, let e):
            w.bytes += [0x50, id, s.rawValue]
            w.application(.enumerated(e.errorClass))
            w.application(.enumerated(e.errorCode))
        case .reject(let id, let reason):
            w.bytes += [0x60, id, reason]
        case .abort(let id, let reason, let server):
            w.bytes += [server ? 0x71 : 0x70, id, reason]
        case .segmentedAck(let id):
            // Only for tests and hostile servers: a Complex-ACK, segment 0 of more, window 1.
            w.bytes += [0x3C, id, 0, 1, BACnetConfirmedService.readProperty.rawValue]
        }
        return frame(npduControl: 0x00, apdu: w.bytes)
    }

    static func frame(npduControl: UInt8, apdu: [UInt8]) -> [UInt8] {
        let length = 4 + 2 + apdu.count
        return [bvlcType, originalUnicast, UInt8(length >> 8), UInt8(length & 0xFF), 0x01, npduControl] + apdu
    }

    // MARK: Parsing: BVLL and NPDU

    /// The APDU of a frame once the BVLL and NPDU are accepted.
    public static func apdu(of frame: [UInt8]) -> Result<ArraySlice<UInt8>, BACnetFault> {
        guard frame.count >= 6 else { return .failure(.malformed("short frame (\(frame.count) bytes)")) }
        guard frame.count <= maxFrame else { return .failure(.malformed("frame of \(frame.count) bytes")) }
        guard frame[0] == bvlcType else { return .failure(.malformed("BVLC type 0x\(hex(frame[0])), not BACnet/IP")) }
        guard frame[1] == originalUnicast else {
            return .failure(.malformed("BVLL function 0x\(hex(frame[1])) refused (only Original-Unicast-NPDU)"))
        }
        let length = Int(frame[2]) << 8 | Int(frame[3])
        guard length == frame.count else { return .failure(.malformed("BVLL length \(length) for \(frame.count) bytes")) }
        guard frame[4] == 0x01 else { return .failure(.malformed("NPDU version \(frame[4])")) }
        let control = frame[5]
        guard control & 0x80 == 0 else { return .failure(.malformed("network-layer message refused")) }
        guard control & 0x50 == 0 else { return .failure(.malformed("reserved NPDU control bits set")) }
        guard control & 0x28 == 0 else { return .failure(.malformed("routed NPDU refused (DNET or SNET present)")) }
        let apdu = frame[6...]
        guard !apdu.isEmpty else { return .failure(.malformed("no APDU")) }
        return .success(apdu)
    }

    // MARK: Parsing: responses (client side)

    /// Parses a reply frame into a response; anything this codec does not accept is a fault.
    public static func parseResponse(_ frame: [UInt8]) -> Result<BACnetResponse, BACnetFault> {
        let apdu: ArraySlice<UInt8>
        switch self.apdu(of: frame) {
        case .failure(let f): return .failure(f)
        case .success(let a): apdu = a
        }
        do throws(BACnetFault) {
            var r = BACnetReader(apdu)
            let head = try r.byte()
            let type = head >> 4
            let flags = head & 0x0F
            switch type {
            case 2:  // Simple-ACK
                guard flags == 0 else { throw .malformed("Simple-ACK flags 0x\(hex(flags))") }
                let id = try r.byte()
                let s = try service(try r.byte())
                try r.end()
                return .success(.simpleAck(invokeId: id, service: s))
            case 3:  // Complex-ACK
                if flags & 0x08 != 0 {
                    let id = try r.byte()
                    return .success(.segmentedAck(invokeId: id))
                }
                guard flags == 0 else { throw .malformed("Complex-ACK flags 0x\(hex(flags))") }
                let id = try r.byte()
                let s = try service(try r.byte())
                switch s {
                case .readProperty:
                    let a = try readPropertyHead(&r, objectTag: 0, propertyTag: 1, indexTag: 2)
                    let values = try valueList(&r, tag: 3)
                    try r.end()
                    return .success(.readPropertyAck(invokeId: id, address: a, values: values))
                case .readPropertyMultiple:
                    var results: [BACnetReadAccessResult] = []
                    while !r.atEnd {
                        let object = try objectIdentifier(&r, tag: 0)
                        try r.expectOpening(1)
                        var items: [(ref: BACnetPropertyRef, value: Result<[BACnetValue], BACnetFault>)] = []
                        while !(try r.peekClosing(1)) {
                            let p = try propertyId(try r.contextUnsigned(2))
                            var index: UInt32?
                            if try r.peekContext(3) { index = try uint32(try r.contextUnsigned(3)) }
                            let value: Result<[BACnetValue], BACnetFault>
                            if try r.peekOpening(4) {
                                value = .success(try valueList(&r, tag: 4))
                            } else {
                                try r.expectOpening(5)
                                let e = try errorPair(&r)
                                try r.expectClosing(5)
                                value = .failure(.error(e))
                            }
                            items.append((BACnetPropertyRef(p, arrayIndex: index), value))
                        }
                        try r.expectClosing(1)
                        results.append(BACnetReadAccessResult(object: object, results: items))
                    }
                    guard !results.isEmpty else { throw .malformed("empty ReadPropertyMultiple ack") }
                    return .success(.readPropertyMultipleAck(invokeId: id, results: results))
                case .writeProperty, .subscribeCOV:
                    throw .notAnAnswer("Complex-ACK for service \(s.rawValue), which has none")
                }
            case 5:  // Error
                guard flags == 0 else { throw .malformed("Error PDU flags 0x\(hex(flags))") }
                let id = try r.byte()
                let s = try service(try r.byte())
                let e = try errorPair(&r)
                try r.end()
                return .success(.error(invokeId: id, service: s, e))
            case 6:  // Reject
                guard flags == 0 else { throw .malformed("Reject PDU flags 0x\(hex(flags))") }
                let id = try r.byte()
                let reason = try r.byte()
                try r.end()
                return .success(.reject(invokeId: id, reason: reason))
            case 7:  // Abort
                guard flags & 0x0E == 0 else { throw .malformed("Abort PDU flags 0x\(hex(flags))") }
                let id = try r.byte()
                let reason = try r.byte()
                try r.end()
                return .success(.abort(invokeId: id, reason: reason, server: flags & 0x01 != 0))
            case 0, 1:
                throw .notAnAnswer("a request, not a reply")
            default:
                throw .malformed("APDU type \(type) refused")
            }
        } catch {
            // An object type or property outside the vocabulary cannot echo anything asked.
            if case .error = error { return .failure(.notAnAnswer("object type or property never asked")) }
            return .failure(error)
        }
    }

    // MARK: Parsing: requests (server side)

    /// Parses a request frame as a server would; a confirmed request it cannot serve is
    /// answered by the refusal the standard gives.
    public static func parseRequest(_ frame: [UInt8]) -> BACnetIncoming {
        let apdu: ArraySlice<UInt8>
        switch self.apdu(of: frame) {
        case .failure(let f): return .ignore(f.description)
        case .success(let a): apdu = a
        }
        guard apdu.count >= 4, apdu.first! >> 4 == 0 else { return .ignore("not a confirmed request") }
        let flags = apdu[apdu.startIndex] & 0x0F
        let id = apdu[apdu.startIndex + 2]
        if flags & 0x08 != 0 {
            return .refuse(.abort(invokeId: id, reason: BACnetFault.abortSegmentationNotSupported, server: true))
        }
        guard let s = BACnetConfirmedService(rawValue: apdu[apdu.startIndex + 3]) else {
            return .refuse(.reject(invokeId: id, reason: BACnetFault.rejectUnrecognizedService))
        }
        do throws(BACnetFault) {
            var r = BACnetReader(apdu[(apdu.startIndex + 4)...])
            let req: BACnetRequest
            switch s {
            case .readProperty:
                req = .readProperty(try readPropertyHead(&r, objectTag: 0, propertyTag: 1, indexTag: 2))
            case .readPropertyMultiple:
                var specs: [BACnetReadAccessSpec] = []
                while !r.atEnd {
                    let object = try objectIdentifier(&r, tag: 0)
                    try r.expectOpening(1)
                    var refs: [BACnetPropertyRef] = []
                    while !(try r.peekClosing(1)) {
                        let p = try propertyId(try r.contextUnsigned(0))
                        var index: UInt32?
                        if try r.peekContext(1) { index = try uint32(try r.contextUnsigned(1)) }
                        refs.append(BACnetPropertyRef(p, arrayIndex: index))
                    }
                    try r.expectClosing(1)
                    guard !refs.isEmpty else { throw .malformed("no property references") }
                    specs.append(BACnetReadAccessSpec(object: object, properties: refs))
                }
                guard !specs.isEmpty else { throw .malformed("no read access specifications") }
                req = .readPropertyMultiple(specs)
            case .writeProperty:
                let a = try readPropertyHead(&r, objectTag: 0, propertyTag: 1, indexTag: 2)
                let values = try valueList(&r, tag: 3)
                guard values.count == 1 else { throw .unsupported("WriteProperty of \(values.count) values") }
                var priority: BACnetPriority?
                if !r.atEnd {
                    let p = try r.contextUnsigned(4)
                    guard let pr = BACnetPriority(Int(clamping: p)) else {
                        return .refuse(.error(invokeId: id, service: s, .valueOutOfRange))
                    }
                    priority = pr
                }
                req = .writeProperty(a, value: values[0], priority: priority)
            case .subscribeCOV:
                let pid = try uint32(try r.contextUnsigned(0))
                let object = try objectIdentifier(&r, tag: 1)
                var confirmed: Bool?
                var lifetime: UInt32?
                if try r.peekContext(2) { confirmed = try r.contextBoolean(2) }
                if try r.peekContext(3) { lifetime = try uint32(try r.contextUnsigned(3)) }
                req = .subscribeCOV(processId: pid, object: object, confirmed: confirmed, lifetimeSeconds: lifetime)
            }
            try r.end()
            return .request(BACnetConfirmedRequest(invokeId: id, req))
        } catch {
            switch error {
            case .error(let e): return .refuse(.error(invokeId: id, service: s, e))
            default: return .refuse(.reject(invokeId: id, reason: 4))  // invalid-tag
            }
        }
    }

    // MARK: Pieces

    static func service(_ b: UInt8) throws(BACnetFault) -> BACnetConfirmedService {
        guard let s = BACnetConfirmedService(rawValue: b) else { throw .notAnAnswer("service \(b), never asked") }
        return s
    }

    static func uint32(_ v: UInt64) throws(BACnetFault) -> UInt32 {
        guard v <= UInt64(UInt32.max) else { throw .malformed("value \(v) too large") }
        return UInt32(v)
    }

    static func propertyId(_ v: UInt64) throws(BACnetFault) -> BACnetPropertyId {
        guard v <= UInt64(UInt32.max), let p = BACnetPropertyId(rawValue: UInt32(v)) else { throw .error(.unknownProperty) }
        return p
    }

    static func objectIdentifier(_ r: inout BACnetReader, tag: UInt32) throws(BACnetFault) -> BACnetObjectId {
        let (t, i) = try r.contextObjectId(tag)
        guard let type = BACnetObjectType(rawValue: t) else { throw .error(.unknownObject) }
        return BACnetObjectId(type: type, instance: i)
    }

    static func readPropertyHead(_ r: inout BACnetReader, objectTag: UInt32, propertyTag: UInt32, indexTag: UInt32) throws(BACnetFault) -> BACnetPointAddress {
        let object = try objectIdentifier(&r, tag: objectTag)
        let p = try propertyId(try r.contextUnsigned(propertyTag))
        var index: UInt32?
        if try r.peekContext(indexTag) { index = try uint32(try r.contextUnsigned(indexTag)) }
        return BACnetPointAddress(object: object, property: p, arrayIndex: index)
    }

    static func valueList(_ r: inout BACnetReader, tag: UInt32) throws(BACnetFault) -> [BACnetValue] {
        try r.expectOpening(tag)
        var values: [BACnetValue] = []
        while !(try r.peekClosing(tag)) { values.append(try r.application()) }
        try r.expectClosing(tag)
        return values
    }

    static func errorPair(_ r: inout BACnetReader) throws(BACnetFault) -> BACnetError {
        guard case .enumerated(let c) = try r.application(), case .enumerated(let code) = try r.application() else {
            throw .malformed("error class and code must be enumerated")
        }
        return BACnetError(errorClass: c, errorCode: code)
    }

    static func hex(_ b: UInt8) -> String {
        let d = Array("0123456789abcdef")
        return String([d[Int(b >> 4)], d[Int(b & 0x0F)]])
    }
}

// MARK: - Tag writer and reader

/// Encodes BACnet tags (clause 20.2), always in the shortest form.
struct BACnetWriter {
    var bytes: [UInt8] = []

    mutating func tag(_ number: UInt32, context: Bool, lvt: Int) {
        let cls: UInt8 = context ? 0x08 : 0x00
        let num: UInt8 = number < 15 ? UInt8(number) << 4 : 0xF0
        if lvt < 5 {
            bytes.append(num | cls | UInt8(lvt))
            if number >= 15 { bytes.append(UInt8(number)) }
        } else {
            bytes.append(num | cls | 5)
            if number >= 15 { bytes.append(UInt8(number)) }
            if lvt <= 253 {
                bytes.append(UInt8(lvt))
            } else if lvt <= 65535 {
                bytes += [254, UInt8(lvt >> 8), UInt8(lvt & 0xFF)]
            } else {
                bytes += [255, UInt8(lvt >> 24 & 0xFF), UInt8(lvt >> 16 & 0xFF), UInt8(lvt >> 8 & 0xFF), UInt8(lvt & 0xFF)]
            }
        }
    }

    mutating func opening(_ n: UInt32) { bytes.append(UInt8(n) << 4 | 0x0E) }
    mutating func closing(_ n: UInt32) { bytes.append(UInt8(n) << 4 | 0x0F) }

    static func unsignedBytes(_ v: UInt64) -> [UInt8] {
        var out: [UInt8] = []
        var x = v
        repeat {
            out.insert(UInt8(x & 0xFF), at: 0)
            x >>= 8
        } while x != 0
        return out
    }

    static func signedBytes(_ v: Int64) -> [UInt8] {
        // Shortest two's complement that sign-extends back to v.
        var n = 1
        while n < 8 {
            let shift = Int64(8 * n - 1)
            let lo = -(Int64(1) << shift), hi = (Int64(1) << shift) - 1
            if v >= lo && v <= hi { break }
            n += 1
        }
        let u = UInt64(bitPattern: v)
        return (0..<n).reversed().map { UInt8((u >> (8 * UInt64($0))) & 0xFF) }
    }

    static func objectIdBytes(type: UInt16, instance: UInt32) -> [UInt8] {
        let v = UInt32(type & 0x3FF) << 22 | (instance & 0x3F_FFFF)
        return [UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)]
    }

    mutating func contextUnsigned(_ n: UInt32, _ v: UInt64) {
        let b = Self.unsignedBytes(v)
        tag(n, context: true, lvt: b.count)
        bytes += b
    }

    mutating func contextObjectId(_ n: UInt32, _ id: BACnetObjectId) {
        tag(n, context: true, lvt: 4)
        bytes += Self.objectIdBytes(type: id.type.rawValue, instance: id.instance)
    }

    mutating func contextBoolean(_ n: UInt32, _ b: Bool) {
        tag(n, context: true, lvt: 1)
        bytes.append(b ? 1 : 0)
    }

    mutating func application(_ v: BACnetValue) {
        switch v {
        case .null:
            tag(0, context: false, lvt: 0)
        case .boolean(let b):
            tag(1, context: false, lvt: b ? 1 : 0)
        case .unsigned(let u):
            let b = Self.unsignedBytes(u)
            tag(2, context: false, lvt: b.count)
            bytes += b
        case .signed(let s):
            let b = Self.signedBytes(s)
            tag(3, context: false, lvt: b.count)
            bytes += b
        case .real(let f):
            tag(4, context: false, lvt: 4)
            let u = f.bitPattern
            bytes += [UInt8(u >> 24), UInt8(u >> 16 & 0xFF), UInt8(u >> 8 & 0xFF), UInt8(u & 0xFF)]
        case .double(let d):
            tag(5, context: false, lvt: 8)
            let u = d.bitPattern
            bytes += (0..<8).reversed().map { UInt8((u >> (8 * UInt64($0))) & 0xFF) }
        case .enumerated(let e):
            let b = Self.unsignedBytes(UInt64(e))
            tag(9, context: false, lvt: b.count)
            bytes += b
        case .bitString(let bits):
            let n = (bits.count + 7) / 8
            tag(8, context: false, lvt: 1 + n)
            bytes.append(UInt8(n * 8 - bits.count))
            for i in 0..<n {
                var byte: UInt8 = 0
                for j in 0..<8 where i * 8 + j < bits.count && bits[i * 8 + j] { byte |= 0x80 >> UInt8(j) }
                bytes.append(byte)
            }
        case .characterString(let s):
            let utf8 = Array(s.utf8)
            tag(7, context: false, lvt: 1 + utf8.count)
            bytes.append(0)  // character set 0: ISO 10646 (UTF-8)
            bytes += utf8
        case .objectId(let t, let i):
            tag(12, context: false, lvt: 4)
            bytes += Self.objectIdBytes(type: t, instance: i)
        }
    }
}

/// Decodes BACnet tags (clause 20.2) strictly: lengths within the data, sizes the standard
/// gives, no trailing bytes where the service ends.
struct BACnetReader {
    enum Kind: Equatable {
        case length(Int)
        case opening
        case closing
    }

    struct Tag {
        var number: UInt32
        var context: Bool
        /// For an application Boolean, the length field is the value.
        var lvt: UInt8
        var kind: Kind
        var headerLength: Int
    }

    let data: ArraySlice<UInt8>
    var at: Int

    init(_ data: ArraySlice<UInt8>) {
        self.data = data
        self.at = data.startIndex
    }

    var atEnd: Bool { at >= data.endIndex }

    func end() throws(BACnetFault) {
        guard atEnd else { throw .malformed("\(data.endIndex - at) trailing bytes") }
    }

    mutating func byte() throws(BACnetFault) -> UInt8 {
        guard at < data.endIndex else { throw .malformed("truncated") }
        defer { at += 1 }
        return data[at]
    }

    func peekTag() throws(BACnetFault) -> Tag {
        var i = at
        func next() throws(BACnetFault) -> UInt8 {
            guard i < data.endIndex else { throw .malformed("truncated tag") }
            defer { i += 1 }
            return data[i]
        }
        let first = try next()
        var number = UInt32(first >> 4)
        let context = first & 0x08 != 0
        let lvt = first & 0x07
        if number == 15 {
            number = UInt32(try next())
            guard number >= 15, number != 255 else { throw .malformed("bad extended tag number") }
        }
        var kind: Kind
        switch lvt {
        case 0...4:
            kind = .length(Int(lvt))
        case 5:
            let l = try next()
            if l <= 253 {
                kind = .length(Int(l))
            } else if l == 254 {
                kind = .length(Int(try next()) << 8 | Int(try next()))
            } else {
                var v = 0
                for _ in 0..<4 { v = v << 8 | Int(try next()) }
                kind = .length(v)
            }
        case 6:
            guard context else { throw .malformed("application tag with opening bit") }
            kind = .opening
        default:
            guard context else { throw .malformed("application tag with closing bit") }
            kind = .closing
        }
        if case .length(let n) = kind {
            // An application Boolean carries its value in the length field and no content.
            let content = (!context && number == 1) ? 0 : n
            guard content <= data.endIndex - i else { throw .malformed("tag length \(n) past the end") }
            if !context && number == 1 { kind = .length(0) }
        }
        return Tag(number: number, context: context, lvt: lvt, kind: kind, headerLength: i - at)
    }

    func peekOpening(_ n: UInt32) throws(BACnetFault) -> Bool {
        guard !atEnd else { return false }
        let t = try peekTag()
        return t.context && t.number == n && t.kind == .opening
    }

    func peekClosing(_ n: UInt32) throws(BACnetFault) -> Bool {
        guard !atEnd else { throw .malformed("truncated: closing tag \(n) missing") }
        let t = try peekTag()
        return t.context && t.number == n && t.kind == .closing
    }

    /// Whether a primitive context tag `n` comes next.
    func peekContext(_ n: UInt32) throws(BACnetFault) -> Bool {
        guard !atEnd else { return false }
        let t = try peekTag()
        guard t.context && t.number == n else { return false }
        guard case .length = t.kind else { return false }
        return true
    }

    mutating func expectOpening(_ n: UInt32) throws(BACnetFault) {
        let t = try peekTag()
        guard t.context, t.number == n, t.kind == .opening else { throw .malformed("opening tag \(n) expected") }
        at += t.headerLength
    }

    mutating func expectClosing(_ n: UInt32) throws(BACnetFault) {
        let t = try peekTag()
        guard t.context, t.number == n, t.kind == .closing else { throw .malformed("closing tag \(n) expected") }
        at += t.headerLength
    }

    /// The content of the primitive context tag `n`.
    mutating func context(_ n: UInt32) throws(BACnetFault) -> ArraySlice<UInt8> {
        let t = try peekTag()
        guard t.context, t.number == n, case .length(let len) = t.kind else { throw .malformed("context tag \(n) expected") }
        let start = at + t.headerLength
        at = start + len
        return data[start..<(start + len)]
    }

    mutating func contextUnsigned(_ n: UInt32) throws(BACnetFault) -> UInt64 {
        try Self.unsigned(try context(n))
    }

    mutating func contextBoolean(_ n: UInt32) throws(BACnetFault) -> Bool {
        let c = try context(n)
        guard c.count == 1, c.first! <= 1 else { throw .malformed("context boolean") }
        return c.first! == 1
    }

    mutating func contextObjectId(_ n: UInt32) throws(BACnetFault) -> (UInt16, UInt32) {
        try Self.objectId(try context(n))
    }

    static func unsigned(_ c: ArraySlice<UInt8>) throws(BACnetFault) -> UInt64 {
        guard (1...8).contains(c.count) else { throw .malformed("unsigned of \(c.count) bytes") }
        return c.reduce(0) { $0 << 8 | UInt64($1) }
    }

    static func objectId(_ c: ArraySlice<UInt8>) throws(BACnetFault) -> (UInt16, UInt32) {
        guard c.count == 4 else { throw .malformed("object identifier of \(c.count) bytes") }
        let v = c.reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        return (UInt16(v >> 22), v & 0x3F_FFFF)
    }

    /// One application-tagged primitive value.
    mutating func application() throws(BACnetFault) -> BACnetValue {
        let t = try peekTag()
        guard !t.context else { throw .unsupported("constructed or context-tagged value") }
        guard case .length(let len) = t.kind else { throw .malformed("application tag without length") }
        let start = at + t.headerLength
        let c = data[start..<(start + len)]
        at = start + len
        switch t.number {
        case 0:
            guard t.lvt == 0 else { throw .malformed("null with content") }
            return .null
        case 1:
            guard t.lvt <= 1 else { throw .malformed("boolean value \(t.lvt)") }
            return .boolean(t.lvt == 1)
        case 2:
            return .unsigned(try Self.unsigned(c))
        case 3:
            guard (1...8).contains(len) else { throw .malformed("signed of \(len) bytes") }
            var v: UInt64 = c.first! & 0x80 != 0 ? UInt64.max : 0
            for b in c { v = v << 8 | UInt64(b) }
            return .signed(Int64(bitPattern: v))
        case 4:
            guard len == 4 else { throw .malformed("real of \(len) bytes") }
            return .real(Float(bitPattern: c.reduce(UInt32(0)) { $0 << 8 | UInt32($1) }))
        case 5:
            guard len == 8 else { throw .malformed("double of \(len) bytes") }
            return .double(Double(bitPattern: c.reduce(UInt64(0)) { $0 << 8 | UInt64($1) }))
        case 7:
            guard len >= 1 else { throw .malformed("empty character string") }
            guard c.first! == 0 else { throw .unsupported("character set \(c.first!)") }
            guard let s = String(validating: c.dropFirst(), as: UTF8.self) else { throw .malformed("invalid UTF-8") }
            return .characterString(s)
        case 8:
            guard len >= 1 else { throw .malformed("empty bit string") }
            let unused = Int(c.first!)
            guard unused <= 7, !(len == 1 && unused != 0) else { throw .malformed("bit string with \(unused) unused bits") }
            var bits: [Bool] = []
            for b in c.dropFirst() { for j in 0..<8 { bits.append(b & (0x80 >> UInt8(j)) != 0) } }
            bits.removeLast(unused)
            return .bitString(bits)
        case 9:
            guard (1...4).contains(len) else { throw .malformed("enumerated of \(len) bytes") }
            return .enumerated(UInt32(try Self.unsigned(c)))
        case 12:
            let (ty, i) = try Self.objectId(c)
            return .objectId(type: ty, instance: i)
        default:
            throw .unsupported("application tag \(t.number)")
        }
    }
}
