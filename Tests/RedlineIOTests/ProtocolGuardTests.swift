import Foundation
import Logging
import RedlineTestSupport
import RedlineCore
import Testing
@testable import RedlineIO

@Suite("Modbus protocol guards and encodings")
struct ProtocolGuardTests {
    let bus = Bus(id: "b", kind: .modbusTCP(host: "127.0.0.1", port: 1), timeoutMs: 50)

    @Test("only function codes 1, 2, 3, 4, 5, 6, 15 and 16 can ever be sent")
    func functionCodes() {
        #expect(Set(FunctionCode.allCases.map(\.rawValue)) == [1, 2, 3, 4, 5, 6, 15, 16])
        let backend = ModbusBackend(bus: bus, logger: Logger(label: "t"))
        defer { backend.close() }
        for fc: UInt8 in [0, 7, 8, 17, 22, 23, 43, 0x83] {
            let r = backend.transact(unit: 1, pdu: [fc, 0, 0, 0, 1])
            guard case .failure(.unsupported) = r else { Issue.record("function \(fc) was not refused: \(r)"); continue }
        }
    }

    @Test("unit 0 (broadcast) and ids above 247 are never addressed", arguments: [0, 248, 255, -1])
    func units(_ unit: Int) {
        let backend = ModbusBackend(bus: bus, logger: Logger(label: "t"))
        defer { backend.close() }
        guard case .failure(.unsupported) = backend.transact(unit: unit, pdu: [3, 0, 0, 0, 1]) else {
            Issue.record("unit \(unit) was not refused")
            return
        }
        let p = Point(id: "d.x", device: "d", name: "x", role: .temperature, zone: "z", bus: "b", unitId: unit,
                      binding: .modbus(table: .inputRegister, address: 0, scale: 0.1, signed: true))
        guard case .failure(.unsupported) = backend.read([p])["d.x"] else { Issue.record("read on unit \(unit) not refused"); return }
    }

    @Test("register encodings: scale, two's complement, saturation refused")
    func codec() {
        #expect(ModbusCodec.decode(raw: 0xFFCC, table: .inputRegister, scale: 0.1, signed: true) == -5.2)
        #expect(ModbusCodec.decode(raw: 0xFFCC, table: .inputRegister, scale: 0.1, signed: false) == 6548.4)
        #expect(ModbusCodec.decode(raw: 2090, table: .inputRegister, scale: 0.01, signed: false) == 20.9)
        #expect(ModbusCodec.decode(raw: 40, table: .inputRegister, scale: 0.001, signed: false) == 0.04)
        #expect(ModbusCodec.decode(raw: 7, table: .coil, scale: 1, signed: false) == 1)
        #expect(ModbusCodec.encode(-5.2, table: .holdingRegister, scale: 0.1, signed: true) == 0xFFCC)
        #expect(ModbusCodec.encode(-5.2, table: .holdingRegister, scale: 0.1, signed: false) == nil)
        #expect(ModbusCodec.encode(6553.6, table: .holdingRegister, scale: 0.1, signed: false) == nil)
        #expect(ModbusCodec.encode(3276.8, table: .holdingRegister, scale: 0.1, signed: true) == nil)
        #expect(ModbusCodec.encode(.infinity, table: .holdingRegister, scale: 1, signed: false) == nil)
        #expect(ModbusCodec.encode(.nan, table: .coil, scale: 1, signed: false) == nil)
        #expect(ModbusCodec.encode(0.5, table: .coil, scale: 1, signed: false) == nil)
        #expect(ModbusCodec.encode(1, table: .coil, scale: 1, signed: false) == 1)
        #expect(ModbusCodec.encode(23.4, table: .holdingRegister, scale: 0.1, signed: false) == 234)
    }

    @Test("a bus nobody listens on fails with a connection error, then backs off without I/O")
    func refusedConnection() {
        let port = freeTCPPorts(1)[0]
        let b = Bus(id: "b", kind: .modbusTCP(host: "127.0.0.1", port: port), timeoutMs: 100)
        let backend = ModbusBackend(bus: b, logger: Logger(label: "t"))
        defer { backend.close() }
        guard case .failure(.connection) = backend.transact(unit: 1, pdu: [3, 0, 0, 0, 1]) else {
            Issue.record("expected a connection error")
            return
        }
        // Within the back-off window the same error comes back at once.
        let t0 = monotonicMillis()
        guard case .failure(.connection) = backend.transact(unit: 1, pdu: [3, 0, 0, 0, 1]) else {
            Issue.record("expected the same connection error")
            return
        }
        #expect(monotonicMillis() - t0 < 50)
    }
}

