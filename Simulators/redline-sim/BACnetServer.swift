import Foundation
import PlantModel
import RedlineCore
import RedlineSync

#if canImport(Glibc)
import Glibc
#endif

/// The BACnet side of one simulated object (a point of a BACnet device): the 16-slot priority
/// array and Relinquish_Default of a commandable output, and the Status_Flags, Reliability and
/// Out_Of_Service every object reports.
struct BACnetObjectState: Sendable {
    var priorityArray: [Double?] = Array(repeating: nil, count: 16)
    var relinquishDefault: Double
    var flags = BACnetStatusFlags()
    var reliability: UInt32 = BACnetReliability.noFaultDetected

    /// Present_Value of a commandable object: the highest non-null slot, else Relinquish_Default.
    var presentValue: Double { priorityArray.compactMap { $0 }.first ?? relinquishDefault }
}

/// The priority arrays and flags of every BACnet point of the site, shared by the device
/// threads and the control socket. An output's physical (plant) value is its Present_Value:
/// every change of a priority array writes the new Present_Value into the plant.
final class BACnetState: Sendable {
    private let objects: Lock<[String: BACnetObjectState]>
    private let initial: [String: BACnetObjectState]

    init(site: Site, plant: PlantModel) {
        var o: [String: BACnetObjectState] = [:]
        for p in site.points {
            guard case .bacnet = p.binding else { continue }
            o[p.id] = BACnetObjectState(relinquishDefault: plant.value(p.id) ?? 0)
        }
        initial = o
        objects = Lock(o)
    }

    func reset() { objects.withLock { $0 = initial } }

    func get(_ point: String) -> BACnetObjectState? { objects.withLock { $0[point] } }

    /// Sets (or with nil relinquishes) one slot; returns the new Present_Value.
    func command(_ point: String, priority: BACnetPriority, value: Double?) -> Double? {
        objects.withLock { o -> Double? in
            guard o[point] != nil else { return nil }
            o[point]!.priorityArray[priority.arraySlot] = value
            return o[point]!.presentValue
        }
    }

    func setFlags(_ point: String, _ body: (inout BACnetObjectState) -> Void) -> BACnetObjectState? {
        objects.withLock { o -> BACnetObjectState? in
            guard o[point] != nil else { return nil }
            body(&o[point]!)
            return o[point]
        }
    }
}

/// Serves one BACnet/IP device on its bus's UDP endpoint, on its own thread with its own
/// socket (blocking poll/recvfrom, never the cooperative pool). One device per endpoint: the
/// codec refuses routed NPDUs, so a device is addressed by its IP address and port alone.
///
/// Objects: the Device object (Object_Identifier, Object_Name, Object_Type, Vendor_Identifier)
/// and one object per point of the device's profile. Inputs read the plant; outputs are
/// commandable (Priority_Array, Relinquish_Default; Present_Value is the highest non-null slot,
/// else Relinquish_Default, and is the plant's value). Every object reports Status_Flags,
/// Reliability, Out_Of_Service and Event_State. WriteProperty is accepted for Present_Value of
/// an output (at its priority, 16 if none; NULL relinquishes) and refused (write-access-denied)
/// for anything else.
final class BACnetDeviceServer: Sendable {
    let bus: Bus
    let device: Device
    let instance: UInt32
    let sim: Simulator
    private let points: [(Point, BACnetPointAddress)]
    private let thread = ServerThread()

    init?(bus: Bus, device: Device, sim: Simulator) {
        guard let instance = device.deviceInstance else { return nil }
        self.bus = bus
        self.device = device
        self.instance = instance
        self.sim = sim
        self.points = sim.site.points.compactMap { p in
            guard p.device == device.id, case .bacnet(let a) = p.binding else { return nil }
            return (p, a)
        }
    }

    func start() -> String? {
        thread.start(name: "redline-sim-\(bus.id)") { [self] in self.main() }
    }

    private func main() {
        guard case .bacnetIP(let address, let port) = bus.kind else { return thread.fail("bus \(bus.id) is not a BACnet/IP bus") }
        var addr = in_addr()
        guard inet_pton(AF_INET, address, &addr) == 1 else { return thread.fail("bus \(bus.id): \(address) is not an IPv4 address") }
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { return thread.fail("bus \(bus.id): socket: \(String(cString: strerror(errno)))") }
        // No SO_REUSEADDR: on UDP it would let a second socket share the endpoint and split the
        // datagrams between them; one device per endpoint, and a taken port fails the start.
        var local = sockaddr_in()
        local.sin_family = sa_family_t(AF_INET)
        local.sin_port = in_port_t(UInt16(port).bigEndian)
        local.sin_addr = addr
        let bound = withUnsafePointer(to: &local) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else {
            let e = String(cString: strerror(errno))
            Glibc.close(fd)
            return thread.fail("bus \(bus.id): cannot bind UDP \(address):\(port): \(e)")
        }
        thread.ready()
        var buffer = [UInt8](repeating: 0, count: 2048)
        while sim.isRunning {
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            if poll(&pfd, 1, 50) <= 0 { continue }
            var from = sockaddr_in()
            var fromLen = socklen_t(MemoryLayout<sockaddr_in>.size)
            let n = buffer.withUnsafeMutableBytes { buf in
                withUnsafeMutablePointer(to: &from) { p in
                    p.withMemoryRebound(to: sockaddr.self, capacity: 1) { recvfrom(fd, buf.baseAddress, buf.count, 0, $0, &fromLen) }
                }
            }
            if n <= 0 { continue }
            guard let reply = answer(Array(buffer[0..<n])) else { continue }
            _ = reply.withUnsafeBytes { buf in
                withUnsafePointer(to: &from) { p in
                    p.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(fd, buf.baseAddress, buf.count, 0, $0, fromLen) }
                }
            }
        }
        Glibc.close(fd)
    }

    // MARK: Requests

    /// The reply frame to one datagram, or nil to stay silent.
    func answer(_ frame: [UInt8]) -> [UInt8]? {
        let req: BACnetConfirmedRequest
        switch BACnetCodec.parseRequest(frame) {
        case .ignore: return nil
        case .refuse(let r):
            if sim.fault(of: device.id) == .offline || sim.fault(of: device.id) == .timeout { return nil }
            return r.encode()
        case .request(let r): req = r
        }
        var wrongInstance = false
        switch sim.fault(of: device.id) {
        case .offline, .timeout:
            return nil
        case .exception:
            // Error PDU, class device, code other.
            return BACnetResponse.error(invokeId: req.invokeId, service: req.request.service, BACnetError(errorClass: 0, errorCode: 0)).encode()
        case .garbage:
            // The right answer with a BVLL length that does not match the datagram.
            var r = serve(req, asInstance: instance).encode()
            let len = r.count + 1
            r[2] = UInt8(len >> 8)
            r[3] = UInt8(len & 0xFF)
            return r
        case .wrongUnit:
            wrongInstance = true
        case .slow:
            usleep(UInt32(max(1, sim.slowDelayMs(of: device.id) ?? min(50, bus.timeoutMs / 2))) * 1000)
        case .none:
            break
        }
        if wrongInstance {
            // Another device answers at this endpoint: its Device object has another instance.
            return serve(req, asInstance: instance == BACnetObjectId.maxInstance ? 0 : instance + 1).encode()
        }
        return serve(req, asInstance: instance).encode()
    }

    private func serve(_ req: BACnetConfirmedRequest, asInstance me: UInt32) -> BACnetResponse {
        let id = req.invokeId
        switch req.request {
        case .readProperty(let a):
            switch read(a, me: me) {
            case .success(let v): return .readPropertyAck(invokeId: id, address: a, values: v)
            case .failure(.error(let e)): return .error(invokeId: id, service: .readProperty, e)
            case .failure: return .error(invokeId: id, service: .readProperty, BACnetError(errorClass: 0, errorCode: 0))
            }
        case .readPropertyMultiple(let specs):
            let results = specs.map { s in
                BACnetReadAccessResult(object: s.object, results: s.properties.map { ref in
                    let a = BACnetPointAddress(object: s.object, property: ref.property, arrayIndex: ref.arrayIndex)
                    return (ref: ref, value: read(a, me: me))
                })
            }
            return .readPropertyMultipleAck(invokeId: id, results: results)
        case .writeProperty(let a, let value, let priority):
            if let e = write(a, value: value, priority: priority ?? .lowest) { return .error(invokeId: id, service: .writeProperty, e) }
            return .simpleAck(invokeId: id, service: .writeProperty)
        case .subscribeCOV:
            return .error(invokeId: id, service: .subscribeCOV, BACnetError(errorClass: BACnetError.classServices, errorCode: 45))
        }
    }

    private func point(_ o: BACnetObjectId) -> Point? { points.first { $0.1.object == o }?.0 }

    /// The plant value of a point as its object's Present_Value.
    static func encode(_ v: Double, type: BACnetObjectType) -> BACnetValue {
        if type.isLifeSafety { return .enumerated(v != 0 ? 2 : 0) }  // BACnetLifeSafetyState quiet (0) / alarm (2)
        return BACnetEncoding.encode(v, for: type) ?? .real(Float(v))
    }

    private func read(_ a: BACnetPointAddress, me: UInt32) -> Result<[BACnetValue], BACnetFault> {
        let one: (BACnetValue) -> Result<[BACnetValue], BACnetFault> = { v in
            a.arrayIndex == nil ? .success([v]) : .failure(.error(.propertyIsNotAnArray))
        }
        if a.object.type == .device {
            guard a.object.instance == me else { return .failure(.error(.unknownObject)) }
            switch a.property {
            case .objectIdentifier: return one(.objectId(.device(me)))
            case .objectName: return one(.characterString(device.id))
            case .objectType: return one(.enumerated(UInt32(BACnetObjectType.device.rawValue)))
            case .vendorIdentifier: return one(.unsigned(999))
            case .maxAPDULengthAccepted: return one(.unsigned(1476))
            case .segmentationSupported: return one(.enumerated(3))  // no-segmentation
            default: return .failure(.error(.unknownProperty))
            }
        }
        guard let p = point(a.object), let st = sim.bacnet.get(p.id) else { return .failure(.error(.unknownObject)) }
        let commandable = p.role.isOutput
        switch a.property {
        case .presentValue:
            let v = commandable ? st.presentValue : (sim.withPlant { $0.value(p.id) } ?? 0)
            return one(Self.encode(v, type: a.object.type))
        case .statusFlags: return one(st.flags.bitString)
        case .reliability: return one(.enumerated(st.reliability))
        case .outOfService: return one(.boolean(st.flags.outOfService))
        case .eventState: return one(.enumerated(0))
        case .objectIdentifier: return one(.objectId(a.object))
        case .objectName: return one(.characterString(p.id))
        case .objectType: return one(.enumerated(UInt32(a.object.type.rawValue)))
        case .relinquishDefault where commandable:
            return one(Self.encode(st.relinquishDefault, type: a.object.type))
        case .priorityArray where commandable:
            let slots = st.priorityArray.map { $0.map { Self.encode($0, type: a.object.type) } ?? .null }
            guard let i = a.arrayIndex else { return .success(slots) }
            if i == 0 { return .success([.unsigned(16)]) }
            guard i <= 16 else { return .failure(.error(.invalidArrayIndex)) }
            return .success([slots[Int(i) - 1]])
        default:
            return .failure(.error(.unknownProperty))
        }
    }

    private func write(_ a: BACnetPointAddress, value: BACnetValue, priority: BACnetPriority) -> BACnetError? {
        guard a.object.type != .device, let p = point(a.object) else { return .unknownObject }
        guard a.property == .presentValue, a.arrayIndex == nil, p.role.isOutput else { return .writeAccessDenied }
        let v: Double?
        switch value {
        case .null: v = nil
        default:
            let type = a.object.type
            let fits: Bool
            switch value {
            case .real, .double: fits = type.carriesReal
            case .enumerated: fits = type.carriesBinary
            case .unsigned: fits = type.carriesState
            default: fits = false
            }
            guard fits, let n = value.number else { return .invalidDataType }
            guard BACnetEncoding.encode(n, for: type) != nil else { return .valueOutOfRange }
            v = n
        }
        sim.commandBACnet(p.id, priority: priority, value: v)
        return nil
    }
}

extension Simulator {
    /// Sets (nil: relinquishes) one slot of a BACnet output's priority array and puts the
    /// resulting Present_Value into the plant. Nil if `point` is not a BACnet point.
    @discardableResult
    func commandBACnet(_ point: String, priority: BACnetPriority, value: Double?) -> Double? {
        withPlant { plant -> Double? in
            guard let pv = bacnet.command(point, priority: priority, value: value) else { return nil }
            if plant.value(point) != pv { try? plant.deviceWrite(point: point, value: pv) }
            return pv
        }
    }
}
