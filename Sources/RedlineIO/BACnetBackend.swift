import Logging
import RedlineCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A BACnet/IP client for one device endpoint (IPv4 address and UDP port), over a plain POSIX
/// UDP socket owned by the thread that calls it: the bus thread (`BusWorker`), like the
/// libmodbus context of `ModbusBackend`. A blocking `poll` with the bus's timeout waits for the
/// reply on that thread; nothing runs on the cooperative pool, and no event loop is involved
/// (SwiftNIO's DatagramBootstrap would put the socket on an event-loop thread and make the bus
/// thread block on a future per transaction: two threads and a hand-off for one request/reply).
///
/// Every request is built by `BACnetCodec` from `BACnetRequest`, whose cases are the whitelist
/// (ReadProperty, ReadPropertyMultiple, WriteProperty, SubscribeCOV); every reply is judged by
/// `BACnetReply.check` before anything in it is believed.
///
/// Transactions: each new request takes the next invoke id; a retry (after a timeout) resends
/// the same request with the same invoke id (ASHRAE 135 §5.4: the same transaction), so a
/// reply to any attempt answers it. Datagrams from any other address, replies with another
/// invoke id (a late answer to an earlier request), and unsolicited traffic (broadcasts,
/// unconfirmed requests) are dropped and the wait goes on until the deadline; anything else
/// from the device ends the transaction with its typed fault. Before a new request, datagrams
/// already queued are drained, so a late reply never waits in the socket to meet a newer one.
public final class BACnetClient {
    public let host: String
    public let port: Int
    public let timeoutMs: Int
    public let retries: Int
    private let logger: Logger
    private var fd: Int32 = -1
    private var peer = sockaddr_in()
    private var invokeId: UInt8
    /// Set when the device rejects ReadPropertyMultiple: reads fall back to ReadProperty.
    public private(set) var rpmUnsupported = false
    /// Properties per ReadPropertyMultiple, so that a reply stays well under one 1476-octet APDU.
    public static let maxPropertiesPerRPM = 24
    /// Datagrams dropped (wrong source, wrong invoke id, unsolicited), for the tests and the log.
    public private(set) var dropped = 0
    /// Datagrams sent (a retry counts again) and transactions begun, for the tests and the log.
    public private(set) var sent = 0
    public private(set) var transactions = 0

    public init(host: String, port: Int, timeoutMs: Int, retries: Int, logger: Logger) {
        self.host = host
        self.port = port
        self.timeoutMs = max(1, timeoutMs)
        self.retries = max(0, retries)
        self.logger = logger
        self.invokeId = UInt8.random(in: 0...255)
    }

    deinit { close() }

    public func close() {
        if fd >= 0 { _ = systemClose(fd) }
        fd = -1
    }

    // MARK: Transactions

    /// Sends one whitelisted request and returns its checked answer.
    public func transact(_ request: BACnetRequest) -> Result<BACnetReply.Answer, DeviceError> {
        if let e = ensureSocket() { return .failure(e) }
        invokeId &+= 1
        let req = BACnetConfirmedRequest(invokeId: invokeId, request)
        let frame = req.encode()
        guard frame.count <= BACnetCodec.maxFrame else { return .failure(.unsupported("request of \(frame.count) bytes")) }
        drain()
        transactions += 1
        for attempt in 0...retries {
            if attempt > 0 { logger.debug("BACnet \(host):\(port): retry \(attempt) of invoke id \(req.invokeId)") }
            let sent = frame.withUnsafeBytes { buf in
                withUnsafePointer(to: &peer) { p in
                    p.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        sendto(fd, buf.baseAddress, buf.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                    }
                }
            }
            if sent < 0 { return .failure(.connection("sendto: \(String(cString: strerror(errno)))")) }
            self.sent += 1
            switch awaitReply(req, deadline: monotonicMillis() + Int64(timeoutMs)) {
            case .some(let r): return r
            case .none: continue  // timed out: retry
            }
        }
        return .failure(.timeout)
    }

    /// The checked reply to `req`, or nil at the deadline.
    private func awaitReply(_ req: BACnetConfirmedRequest, deadline: Int64) -> Result<BACnetReply.Answer, DeviceError>? {
        var buffer = [UInt8](repeating: 0, count: BACnetCodec.maxFrame + 1)
        while true {
            let left = deadline - monotonicMillis()
            if left <= 0 { return nil }
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let n = poll(&pfd, 1, Int32(min(left, Int64(Int32.max))))
            if n < 0 {
                if errno == EINTR { continue }
                return .failure(.connection("poll: \(String(cString: strerror(errno)))"))
            }
            if n == 0 { return nil }
            var from = sockaddr_in()
            var fromLen = socklen_t(MemoryLayout<sockaddr_in>.size)
            let got = buffer.withUnsafeMutableBytes { buf in
                withUnsafeMutablePointer(to: &from) { p in
                    p.withMemoryRebound(to: sockaddr.self, capacity: 1) { recvfrom(fd, buf.baseAddress, buf.count, 0, $0, &fromLen) }
                }
            }
            if got < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                // ECONNREFUSED: an ICMP port unreachable for an earlier datagram; the device is not there.
                if errno == ECONNREFUSED { return .failure(.connection("device port unreachable")) }
                return .failure(.connection("recvfrom: \(String(cString: strerror(errno)))"))
            }
            guard from.sin_addr.s_addr == peer.sin_addr.s_addr, from.sin_port == peer.sin_port else {
                dropped += 1
                continue
            }
            let reply = Array(buffer[0..<got])
            switch BACnetReply.check(request: req, reply: reply) {
            case .success(let a):
                return .success(a)
            case .failure(.wrongInvokeId(_, let other)):
                logger.debug("BACnet \(host):\(port): dropped a reply for invoke id \(other) (waiting for \(req.invokeId))")
                dropped += 1
                continue
            case .failure(let f):
                if Self.isUnsolicited(reply) {
                    dropped += 1
                    continue
                }
                return .failure(.bacnet(f))
            }
        }
    }

    /// Traffic a device may send on its own from its own port (a broadcast, a forwarded NPDU,
    /// an unconfirmed request such as I-Am or a COV notification, a request): not a reply.
    static func isUnsolicited(_ frame: [UInt8]) -> Bool {
        guard frame.count >= 7, frame[0] == 0x81 else { return false }
        if frame[1] != 0x0a { return true }
        // Original-Unicast: an APDU of type 0 (confirmed request) or 1 (unconfirmed request).
        guard frame[4] == 0x01, frame[5] & 0xA8 == 0 else { return false }
        return frame[6] >> 4 <= 1
    }

    private func drain() {
        var scratch = [UInt8](repeating: 0, count: 2048)
        while true {
            let n = scratch.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            if n < 0 { break }
            dropped += 1
        }
    }

    private func ensureSocket() -> DeviceError? {
        if fd >= 0 { return nil }
        var addr = in_addr()
        guard inet_pton(AF_INET, host, &addr) == 1 else { return .connection("\(host) is not an IPv4 address") }
        guard (1...65535).contains(port) else { return .connection("port \(port) out of range") }
        let s = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        guard s >= 0 else { return .connection("socket: \(String(cString: strerror(errno)))") }
        var local = sockaddr_in()
        local.sin_family = sa_family_t(AF_INET)
        local.sin_port = 0
        local.sin_addr.s_addr = INADDR_ANY
        let bound = withUnsafePointer(to: &local) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(s, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else {
            let e = String(cString: strerror(errno))
            _ = systemClose(s)
            return .connection("bind: \(e)")
        }
        peer = sockaddr_in()
        peer.sin_family = sa_family_t(AF_INET)
        peer.sin_port = in_port_t(UInt16(port).bigEndian)
        peer.sin_addr = addr
        fd = s
        return nil
    }

    // MARK: Reads

    /// Reads `addresses` (any objects of this device) in as few ReadPropertyMultiple requests as
    /// fit, one result per address in order. Falls back to one ReadProperty per address when the
    /// device rejects ReadPropertyMultiple (Reject unrecognized-service, or an Error of class
    /// services), and, for one request, when an RPM reply would need segmentation.
    public func readProperties(_ addresses: [BACnetPointAddress]) -> [Result<[BACnetValue], DeviceError>] {
        var out: [Result<[BACnetValue], DeviceError>] = []
        var start = 0
        while start < addresses.count {
            let chunk = Array(addresses[start..<min(addresses.count, start + Self.maxPropertiesPerRPM)])
            start += chunk.count
            out += readChunk(chunk)
        }
        return out
    }

    private func readChunk(_ chunk: [BACnetPointAddress]) -> [Result<[BACnetValue], DeviceError>] {
        if !rpmUnsupported, chunk.count > 1 {
            let specs = BACnetReadAccessSpec.grouping(chunk)
            switch transact(.readPropertyMultiple(specs)) {
            case .success(.results(let results)):
                // Grouping by object reorders: map the results back to the addresses asked.
                var by: [BACnetPointAddress: Result<[BACnetValue], DeviceError>] = [:]
                for r in results { by[r.address] = r.result.mapError { .bacnet($0) } }
                return chunk.map { by[$0] ?? .failure(.bacnet(.notAnAnswer("no result for \($0)"))) }
            case .success(let other):
                return chunk.map { _ in .failure(.bacnet(.notAnAnswer("\(other) to ReadPropertyMultiple"))) }
            case .failure(.bacnet(.reject(let reason))) where reason == BACnetFault.rejectUnrecognizedService:
                logger.notice("BACnet \(host):\(port): ReadPropertyMultiple rejected; reading property by property")
                rpmUnsupported = true
            case .failure(.bacnet(.error(let e))) where e.errorClass == BACnetError.classServices:
                logger.notice("BACnet \(host):\(port): ReadPropertyMultiple refused (\(e)); reading property by property")
                rpmUnsupported = true
            case .failure(.bacnet(.abort(let reason, _))) where reason == BACnetFault.abortSegmentationNotSupported:
                break  // too large for one APDU: this chunk property by property
            case .failure(.bacnet(.segmented)):
                break
            case .failure(let e):
                return chunk.map { _ in .failure(e) }
            }
        }
        return chunk.map { a in
            switch transact(.readProperty(a)) {
            case .success(.values(let v)): return .success(v)
            case .success(let other): return .failure(.bacnet(.notAnAnswer("\(other) to ReadProperty")))
            case .failure(let e): return .failure(e)
            }
        }
    }

    /// What to read with a point: its Status_Flags and Reliability (inputs, RL-0), its
    /// Priority_Array and Relinquish_Default (commandable outputs: the value in effect).
    public struct PointRead: Sendable, Hashable {
        public var address: BACnetPointAddress
        public var status: Bool
        public var commandable: Bool
        public init(_ address: BACnetPointAddress, status: Bool = false, commandable: Bool = false) {
            self.address = address
            self.status = status
            self.commandable = commandable
        }
    }

    /// Reads points with what was asked of each, in one batch of ReadPropertyMultiple requests.
    /// A point fails if its own property fails or if anything asked with it fails (unknown is
    /// unsafe: a point whose Status_Flags cannot be read is not a reading).
    public func readPoints(_ points: [PointRead]) -> [Result<BACnetPointReading, DeviceError>] {
        var addresses: [BACnetPointAddress] = []
        var slots: [(value: Int, sf: Int?, rel: Int?, pa: Int?, rd: Int?)] = []
        func add(_ a: BACnetPointAddress) -> Int {
            addresses.append(a)
            return addresses.count - 1
        }
        for p in points {
            let o = p.address.object
            let v = add(p.address)
            let sf = p.status ? add(BACnetPointAddress(object: o, property: .statusFlags)) : nil
            let rel = p.status ? add(BACnetPointAddress(object: o, property: .reliability)) : nil
            let pa = p.commandable ? add(BACnetPointAddress(object: o, property: .priorityArray)) : nil
            let rd = p.commandable ? add(BACnetPointAddress(object: o, property: .relinquishDefault)) : nil
            slots.append((v, sf, rel, pa, rd))
        }
        let results = readProperties(addresses)
        return zip(points, slots).map { p, s in
            func one(_ i: Int?) -> Result<BACnetValue?, DeviceError> {
                guard let i else { return .success(nil) }
                switch results[i] {
                case .failure(let e): return .failure(e)
                case .success(let vs):
                    guard vs.count == 1 else { return .failure(.bacnet(.notAnAnswer("\(vs.count) values for \(addresses[i])"))) }
                    return .success(vs[0])
                }
            }
            do {
                guard let value = try one(s.value).get() else { return .failure(.malformed("no value")) }
                var r = BACnetPointReading(address: p.address, value: value)
                r.statusFlags = try one(s.sf).get()
                r.reliability = try one(s.rel).get()
                r.relinquishDefault = try one(s.rd).get()
                if let pa = s.pa {
                    let slots = try results[pa].get()
                    guard slots.count == 16 else { return .failure(.bacnet(.notAnAnswer("priority-array of \(slots.count) slots"))) }
                    r.priorityArray = slots
                }
                return .success(r)
            } catch let e as DeviceError {
                return .failure(e)
            } catch {
                return .failure(.malformed("\(error)"))
            }
        }
    }

    /// Checks that the device at this endpoint is device `instance`: its Device object answers
    /// for Object_Identifier with exactly that id (the BACnet counterpart of a Modbus reply from
    /// the wrong unit). Anything else is a fault.
    public func identify(deviceInstance instance: UInt32) -> Result<Void, DeviceError> {
        let device = BACnetObjectId.device(instance)
        switch readProperties([BACnetPointAddress(object: device, property: .objectIdentifier)])[0] {
        case .failure(let e): return .failure(e)
        case .success(let v):
            guard v == [.objectId(device)] else {
                return .failure(.bacnet(.notAnAnswer("device \(instance) answered with \(v)")))
            }
            return .success(())
        }
    }

    // MARK: Writes

    /// Writes `value` at `priority` (`.null` relinquishes that slot). Redline never writes at a
    /// priority above 9: 1-8 belong to life safety, critical equipment and manual operators.
    /// Nor does it ever write a property of `BACnetPropertyId.isAgentForbidden` (RL-8: Out_Of_Service,
    /// Reliability, Priority_Array, Relinquish_Default, notification properties...), whatever
    /// the caller: the second lock behind the policy's.
    public func write(_ address: BACnetPointAddress, value: BACnetValue, priority: BACnetPriority) -> Result<Void, DeviceError> {
        guard priority.allowedForAgents else { return .failure(.unsupported("priority \(priority) is reserved (1-8)")) }
        guard !address.property.isAgentForbidden else { return .failure(.unsupported("\(address.property) is never written (RL-8)")) }
        switch transact(.writeProperty(address, value: value, priority: priority)) {
        case .success(.acknowledged): return .success(())
        case .success(let other): return .failure(.bacnet(.notAnAnswer("\(other) to WriteProperty")))
        case .failure(let e): return .failure(e)
        }
    }

    /// Releases the agent's slot: WriteProperty NULL at `priority`, and only there.
    public func relinquish(_ address: BACnetPointAddress, priority: BACnetPriority) -> Result<Void, DeviceError> {
        write(address, value: .null, priority: priority)
    }

    /// Writes (or, with nil, relinquishes) at `priority`, then reads back Present_Value, the
    /// priority array and Relinquish_Default, and says what took effect.
    public func command(_ address: BACnetPointAddress, value: BACnetValue?, priority: BACnetPriority) -> Result<(BACnetReadBack, BACnetPointReading), DeviceError> {
        if case .failure(let e) = write(address, value: value ?? .null, priority: priority) { return .failure(e) }
        switch readPoints([PointRead(address, commandable: true)])[0] {
        case .failure(let e): return .failure(e)
        case .success(let r): return .success((r.outcome(of: value, at: priority), r))
        }
    }
}

private func systemClose(_ fd: Int32) -> Int32 {
    #if canImport(Glibc)
    return Glibc.close(fd)
    #else
    return Darwin.close(fd)
    #endif
}

/// The bus backend of a BACnet/IP bus: one device endpoint, one `BACnetClient`, on the bus
/// thread. The device at the endpoint must answer as the device instance the site names: every
/// scan reads its Device object's Object_Identifier in the same ReadPropertyMultiple as the
/// points, and a write is sent only to a device identified since its last device-level fault.
/// A reply from another device is never a reading.
///
/// Reads: one `readPoints` batch per scan (ReadPropertyMultiple). An input is read with its
/// Status_Flags and Reliability; one that the device says proves nothing (fault, overridden,
/// out-of-service, or Reliability other than no-fault-detected) fails alone with `.untrusted`
/// (unknown, RL-0), and the device stays good. A commandable output is read with its
/// Priority_Array and Relinquish_Default, and reports the value in effect.
///
/// Writes: WriteProperty of Present_Value at the site's one agent priority, then a read-back of
/// the priority array. A write another priority overrides fails with `.overridden(priority:
/// effective:)`: it is never reported as executed at the value asked.
final class BACnetBackend: BusBackend {
    let bus: Bus
    let writePriority: BACnetPriority?
    private let client: BACnetClient
    private let logger: Logger
    private var identified: Set<UInt32> = []

    init(bus: Bus, address: String, port: Int, writePriority: BACnetPriority?, logger: Logger) {
        self.bus = bus
        self.writePriority = writePriority
        self.logger = logger
        self.client = BACnetClient(host: address, port: port, timeoutMs: bus.timeoutMs, retries: bus.retries, logger: logger)
    }

    private static func address(_ p: Point) -> BACnetPointAddress? {
        if case .bacnet(let a) = p.binding { return a }
        return nil
    }

    private static func commandable(_ p: Point, _ a: BACnetPointAddress) -> Bool {
        p.role.isOutput && a.property == .presentValue && (a.object.type.agentCommandable || a.object.type.alwaysCommandable)
    }

    /// A failed exchange: a device-level fault means the device must be identified again
    /// before anything more is written to it.
    private func failed<T>(_ e: DeviceError) -> Result<T, DeviceError> {
        if e.isDeviceLevel { identified.removeAll() }
        return .failure(e)
    }

    /// The identity check of every device instance among `points`; the first failure, if any.
    private func identify(_ points: [Point]) -> DeviceError? {
        for instance in Set(points.compactMap(\.deviceInstance)).sorted() where !identified.contains(instance) {
            if case .failure(let e) = client.identify(deviceInstance: instance) {
                logger.warning("BACnet device at \(client.host):\(client.port) is not device \(instance): \(e)")
                return e
            }
            identified.insert(instance)
        }
        return nil
    }

    /// A BACnet value as the point's engineering value (life-safety states mapped to the role).
    static func number(_ v: BACnetValue, point p: Point, object: BACnetObjectType) -> Result<Double, DeviceError> {
        if object.isLifeSafety {
            guard case .enumerated(let state) = v, let x = BACnetLifeSafetyState.value(state, role: p.role) else {
                return .failure(.untrusted("life-safety state \(v) is neither quiet nor an alarm"))
            }
            return .success(x)
        }
        guard let x = v.number else { return .failure(.malformed("\(p.id): present-value \(v) is not a number")) }
        if object.carriesBinary, x != 0, x != 1 { return .failure(.malformed("\(p.id): binary present-value \(v)")) }
        return .success(x)
    }

    func read(_ points: [Point]) -> [String: Result<Double, DeviceError>] {
        var out: [String: Result<Double, DeviceError>] = [:]
        var asked: [(Point, BACnetPointAddress)] = []
        for p in points {
            guard let a = Self.address(p) else { out[p.id] = .failure(.unsupported("\(p.id) is not a BACnet point")); continue }
            // No device instance, no identity check: never a reading.
            guard p.deviceInstance != nil else { out[p.id] = .failure(.unsupported("\(p.id) names no device instance")); continue }
            asked.append((p, a))
        }
        if asked.isEmpty { return out }
        // Each device's Object_Identifier is read in the same batch: a reply from another device
        // at this endpoint (a swapped controller, a misaddressed site) is caught on every scan.
        let instances = Set(asked.compactMap { $0.0.deviceInstance }).sorted()
        var reads = instances.map { BACnetClient.PointRead(BACnetPointAddress(object: .device($0), property: .objectIdentifier)) }
        reads += asked.map { p, a in
            BACnetClient.PointRead(a, status: !p.role.isOutput, commandable: Self.commandable(p, a))
        }
        let results = client.readPoints(reads)
        for (i, instance) in instances.enumerated() {
            let wrong: DeviceError?
            switch results[i] {
            case .failure(let e): wrong = e
            case .success(let r):
                wrong = r.value == .objectId(.device(instance))
                    ? nil : .bacnet(.notAnAnswer("the device at \(client.host):\(client.port) answers as \(r.value), not device \(instance)"))
            }
            if let wrong {
                identified.removeAll()
                for (p, _) in asked where p.deviceInstance == instance { out[p.id] = .failure(wrong) }
            } else {
                identified.insert(instance)
            }
        }
        for ((p, a), r) in zip(asked, results.dropFirst(instances.count)) where out[p.id] == nil {
            switch r {
            case .failure(let e):
                if e.isDeviceLevel { identified.removeAll() }
                out[p.id] = .failure(e)
            case .success(let reading):
                if !p.role.isOutput, let why = reading.unknownAsInput() {
                    out[p.id] = .failure(.untrusted(why))
                    continue
                }
                // A commandable output reports the value in effect by its priority array (the same
                // value as Present_Value on a device that keeps its own rules; BACnetCommanding).
                let v = Self.commandable(p, a) ? (reading.effective.map(BACnetValue.double) ?? reading.value) : reading.value
                out[p.id] = Self.number(v, point: p, object: a.object.type)
            }
        }
        return out
    }

    func write(_ point: Point, value: Double) -> Result<Double, DeviceError> {
        guard let a = Self.address(point) else { return .failure(.unsupported("\(point.id) is not a BACnet point")) }
        guard point.deviceInstance != nil else { return .failure(.unsupported("\(point.id) names no device instance")) }
        guard let priority = writePriority else { return .failure(.unsupported("the site fixes no BACnet write priority")) }
        if let why = a.agentWriteRefusal { return .failure(.unsupported(why)) }
        guard let encoded = BACnetEncoding.encode(value, for: a.object.type) else {
            return .failure(.unsupported("\(fmt(value)) is not a value of a \(a.object.type) object"))
        }
        if let e = identify([point]) { return .failure(e) }
        switch client.command(a, value: encoded, priority: priority) {
        case .failure(let e):
            return failed(e)
        case .success((let outcome, let reading)):
            switch outcome {
            case .executed(let v):
                return .success(v)
            case .overridden(let p, let effective):
                // Reported to the caller (the agent's answer and the audit, or the effects runner's
                // once-per-change record); at debug level here, so that a held override re-asserted
                // every scan does not fill the log.
                logger.debug("BACnet write of \(point.id) at priority \(priority) overridden at priority \(p)")
                return .failure(.overridden(priority: Int(p.level), effective: effective))
            case .relinquished, .mismatch:
                return .failure(.readBackMismatch(wrote: value, read: reading.effective ?? reading.value.number ?? .nan))
            }
        }
    }

    /// Priority_Array and Relinquish_Default of a commandable output, read now; nil for an
    /// object without them (Present_Value is then the value written).
    func commandState(_ point: Point) -> Result<BACnetCommandable?, DeviceError> {
        guard let a = Self.address(point) else { return .failure(.unsupported("\(point.id) is not a BACnet point")) }
        guard point.deviceInstance != nil else { return .failure(.unsupported("\(point.id) names no device instance")) }
        if let e = identify([point]) { return .failure(e) }
        guard Self.commandable(point, a) else { return .success(nil) }
        switch client.readPoints([BACnetClient.PointRead(a, commandable: true)])[0] {
        case .failure(let e):
            return failed(e)
        case .success(let r):
            // A commandable object that answers without a whole, numeric command state is not
            // believed: there is nothing to decide a release on.
            guard let c = r.commandable else {
                return .failure(.malformed("\(point.id): Priority_Array or Relinquish_Default unreadable"))
            }
            return .success(c)
        }
    }

    /// NULL at the site's agent priority, and only there: read the command state, give `check`
    /// the value the release will put in effect (the next held priority below, or
    /// Relinquish_Default), send the release, and read back. A release is executed when the
    /// agents' slot reads NULL; Present_Value may then be a higher priority's (a person's),
    /// which is what the answer carries.
    func release(_ point: Point, check: (Double) -> String?) -> Result<Double, DeviceError> {
        guard let priority = writePriority else { return .failure(.unsupported("the site fixes no BACnet write priority")) }
        guard let a = Self.address(point) else { return .failure(.unsupported("\(point.id) is not a BACnet point")) }
        if let why = a.agentWriteRefusal { return .failure(.unsupported(why)) }
        let state: BACnetCommandable?
        switch commandState(point) {
        case .failure(let e): return .failure(e)
        case .success(let c): state = c
        }
        guard let effect = BACnetCommanding.effect(of: .relinquish, at: priority, on: state) else {
            return .failure(.unsupported("\(point.id) has no priority array: there is nothing to release"))
        }
        if let why = check(effect.decided) { return .failure(.withheld(why)) }
        switch client.command(a, value: nil, priority: priority) {
        case .failure(let e):
            return failed(e)
        case .success((let outcome, let reading)):
            switch outcome {
            case .relinquished(let pv, let source):
                logger.info("BACnet release of \(point.id) at priority \(priority): Present_Value \(fmt(pv)) from \(source)")
                return Self.number(.double(pv), point: point, object: a.object.type)
            case .executed, .overridden, .mismatch:
                // Not released as decided: the agents' slot still holds a value, or the device's
                // Present_Value is not what its own priority array gives.
                logger.warning("BACnet release of \(point.id) at priority \(priority) not as decided: \(outcome)")
                return .failure(.readBackMismatch(wrote: effect.effective, read: reading.effective ?? reading.value.number ?? .nan))
            }
        }
    }

    func close() { client.close() }
}
