import Foundation
import Logging
import RedlineCore
import RedlineIO
import RedlineTestSupport
import RedlineSync
import Testing

/// A hostile BACnet/IP device on a real UDP socket: for each request it receives, a script
/// says what to send back (datagrams, each after a delay; from its own port or from another).
/// Frames are built with BACnetCodec (the server half of the codec) or by hand.
final class ScriptedDevice: Sendable {
    struct Send: Sendable {
        var afterMs: Int
        var bytes: [UInt8]
        var fromOtherPort = false
    }
    typealias Script = @Sendable (_ n: Int, _ request: BACnetConfirmedRequest) -> [Send]

    let port: Int
    private let fd: Int32
    private let other: Int32
    private let stopped = Lock(false)
    let received = Lock<[BACnetConfirmedRequest]>([])

    init(_ script: @escaping Script) throws {
        func udp() throws -> (Int32, Int) {
            let s = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
            var a = sockaddr_in()
            a.sin_family = sa_family_t(AF_INET)
            a.sin_addr.s_addr = inet_addr("127.0.0.1")
            var len = socklen_t(MemoryLayout<sockaddr_in>.size)
            let ok = withUnsafeMutablePointer(to: &a) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(s, $0, len) == 0 && getsockname(s, $0, &len) == 0 }
            }
            guard s >= 0, ok else { throw TestSupportError("cannot bind a UDP socket") }
            var tv = timeval(tv_sec: 0, tv_usec: 100_000)
            setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
            return (s, Int(UInt16(bigEndian: a.sin_port)))
        }
        (fd, port) = try udp()
        (other, _) = try udp()
        let t = Thread { [self] in self.serve(script) }
        t.start()
    }

    func stop() {
        stopped.withLock { $0 = true }
        Thread.sleep(forTimeInterval: 0.15)
        close(fd)
        close(other)
    }

    private func serve(_ script: Script) {
        var buf = [UInt8](repeating: 0, count: 2048)
        var n = 0
        while !stopped.withLock({ $0 }) {
            var from = sockaddr_in()
            var len = socklen_t(MemoryLayout<sockaddr_in>.size)
            let got = buf.withUnsafeMutableBytes { b in
                withUnsafeMutablePointer(to: &from) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { recvfrom(fd, b.baseAddress, b.count, 0, $0, &len) } }
            }
            guard got > 0, case .request(let req) = BACnetCodec.parseRequest(Array(buf[0..<got])) else { continue }
            received.withLock { $0.append(req) }
            for s in script(n, req) {
                if s.afterMs > 0 { Thread.sleep(forTimeInterval: Double(s.afterMs) / 1000) }
                _ = s.bytes.withUnsafeBytes { b in
                    withUnsafePointer(to: &from) {
                        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(s.fromOtherPort ? other : fd, b.baseAddress, b.count, 0, $0, len) }
                    }
                }
            }
            n += 1
        }
    }
}

@Suite("BACnet/IP transactions against a hostile device", .serialized)
struct BACnetTransactionTests {
    static let pv = BACnetPointAddress(object: BACnetObjectId(type: .analogValue, instance: 1))
    static let sf = BACnetPointAddress(object: BACnetObjectId(type: .analogValue, instance: 1), property: .statusFlags)

    static func ack(_ req: BACnetConfirmedRequest, _ v: Float, invokeId: UInt8? = nil) -> [UInt8] {
        guard case .readProperty(let a) = req.request else { return [] }
        return BACnetResponse.readPropertyAck(invokeId: invokeId ?? req.invokeId, address: a, values: [.real(v)]).encode()
    }

    static func client(_ port: Int, timeoutMs: Int, retries: Int) -> BACnetClient {
        BACnetClient(host: "127.0.0.1", port: port, timeoutMs: timeoutMs, retries: retries, logger: Logger(label: "bacnet-test"))
    }

    struct Late: Sendable {
        var first: Result<[BACnetValue], DeviceError>
        var second: Result<[BACnetValue], DeviceError>
        var dropped: Int
    }

    @Test("a late reply never answers a newer request")
    func lateReply() async throws {
        // Request 0 is answered (99.0) only after the client gave up on it; request 1 is then
        // answered (21.5) right after that late reply.
        let device = try ScriptedDevice { n, req in
            n == 0 ? [.init(afterMs: 900, bytes: Self.ack(req, 99))] : [.init(afterMs: 0, bytes: Self.ack(req, 21.5))]
        }
        defer { device.stop() }
        let r: Late = await onOwnThread {
            let c = Self.client(device.port, timeoutMs: 600, retries: 0)
            defer { c.close() }
            let first = c.readProperties([Self.pv])[0]
            let second = c.readProperties([Self.pv])[0]
            return Late(first: first, second: second, dropped: c.dropped)
        }
        #expect(r.first == .failure(.timeout))
        #expect(r.second == .success([.real(21.5)]), "the late 99.0 must not be believed")
        #expect(r.dropped >= 1)
    }

    struct Retry: Sendable {
        var value: Result<[BACnetValue], DeviceError>
        var sent: Int
        var transactions: Int
        var invokeIds: [UInt8]
    }

    @Test("a timeout is retried with the same invoke id; a reply from another port is dropped")
    func retryAndWrongSource() async throws {
        let device = try ScriptedDevice { n, req in
            // Attempt 0: no answer. Attempt 1: a forged answer from another port, then the real one.
            n == 0 ? [] : [.init(afterMs: 0, bytes: Self.ack(req, 99), fromOtherPort: true), .init(afterMs: 20, bytes: Self.ack(req, 22.5))]
        }
        defer { device.stop() }
        let r: Retry = await onOwnThread {
            let c = Self.client(device.port, timeoutMs: 300, retries: 2)
            defer { c.close() }
            let v = c.readProperties([Self.pv])[0]
            return Retry(value: v, sent: c.sent, transactions: c.transactions, invokeIds: device.received.withLock { $0.map(\.invokeId) })
        }
        #expect(r.value == .success([.real(22.5)]))
        #expect(r.sent == 2 && r.transactions == 1)
        #expect(r.invokeIds.count == 2 && Set(r.invokeIds).count == 1, "\(r.invokeIds)")
    }

    @Test("segmented, Reject, Abort, Error and malformed replies are typed faults, never values")
    func typedFaults() async throws {
        let device = try ScriptedDevice { n, req in
            let id = req.invokeId
            switch n {
            case 0: return [.init(afterMs: 0, bytes: BACnetResponse.segmentedAck(invokeId: id).encode())]
            case 1: return [.init(afterMs: 0, bytes: BACnetResponse.reject(invokeId: id, reason: 4).encode())]
            case 2: return [.init(afterMs: 0, bytes: BACnetResponse.abort(invokeId: id, reason: 9, server: true).encode())]
            case 3: return [.init(afterMs: 0, bytes: BACnetResponse.error(invokeId: id, service: .readProperty, .unknownProperty).encode())]
            case 4: return [.init(afterMs: 0, bytes: Array(Self.ack(req, 5).dropLast(2)))]  // truncated, BVLL length wrong
            default:
                // The value of another property.
                return [.init(afterMs: 0, bytes: BACnetResponse.readPropertyAck(invokeId: id, address: Self.sf, values: [.real(5)]).encode())]
            }
        }
        defer { device.stop() }
        let r: [Result<[BACnetValue], DeviceError>] = await onOwnThread {
            let c = Self.client(device.port, timeoutMs: 500, retries: 0)
            defer { c.close() }
            return (0..<6).map { _ in c.readProperties([Self.pv])[0] }
        }
        #expect(r[0] == .failure(.bacnet(.segmented)))
        #expect(r[1] == .failure(.bacnet(.reject(reason: 4))))
        #expect(r[2] == .failure(.bacnet(.abort(reason: 9, server: true))))
        #expect(r[3] == .failure(.bacnet(.error(.unknownProperty))))
        guard case .failure(.bacnet(.malformed)) = r[4] else { Issue.record("truncated: \(r[4])"); return }
        guard case .failure(.bacnet(.notAnAnswer)) = r[5] else { Issue.record("other property: \(r[5])"); return }
    }

    struct Fallback: Sendable {
        var first: [Result<[BACnetValue], DeviceError>]
        var second: [Result<[BACnetValue], DeviceError>]
        var services: [BACnetConfirmedService]
        var rpmUnsupported: Bool
    }

    @Test("a device that rejects ReadPropertyMultiple is read property by property")
    func rpmFallback() async throws {
        let device = try ScriptedDevice { _, req in
            switch req.request {
            case .readPropertyMultiple: return [.init(afterMs: 0, bytes: BACnetResponse.reject(invokeId: req.invokeId, reason: 9).encode())]
            case .readProperty(let a):
                let v: BACnetValue = a.property == .statusFlags ? .bitString([false, false, false, false]) : .real(19.5)
                return [.init(afterMs: 0, bytes: BACnetResponse.readPropertyAck(invokeId: req.invokeId, address: a, values: [v]).encode())]
            default: return []
            }
        }
        defer { device.stop() }
        let r: Fallback = await onOwnThread {
            let c = Self.client(device.port, timeoutMs: 500, retries: 0)
            defer { c.close() }
            let first = c.readProperties([Self.pv, Self.sf])
            let second = c.readProperties([Self.pv, Self.sf])
            return Fallback(first: first, second: second, services: device.received.withLock { $0.map(\.request.service) },
                            rpmUnsupported: c.rpmUnsupported)
        }
        let want: [Result<[BACnetValue], DeviceError>] = [.success([.real(19.5)]), .success([.bitString([false, false, false, false])])]
        #expect(r.first == want && r.second == want)
        #expect(r.rpmUnsupported)
        // One RPM, then property by property, and RPM is not tried again.
        #expect(r.services == [.readPropertyMultiple, .readProperty, .readProperty, .readProperty, .readProperty])
    }
}
