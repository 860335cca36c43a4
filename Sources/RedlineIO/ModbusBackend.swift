import CModbus
import Logging
import RedlineCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Modbus function codes RedlineIO may send. Nothing else is ever put on a bus:
/// no 22 (mask write), no 23 (read/write multiple), no diagnostics, no broadcast.
enum FunctionCode: UInt8, CaseIterable {
    case readCoils = 1
    case readDiscreteInputs = 2
    case readHoldingRegisters = 3
    case readInputRegisters = 4
    case writeSingleCoil = 5
    case writeSingleRegister = 6
    case writeMultipleCoils = 15
    case writeMultipleRegisters = 16

    static func read(_ table: ModbusTable) -> FunctionCode {
        switch table {
        case .coil: return .readCoils
        case .discreteInput: return .readDiscreteInputs
        case .holdingRegister: return .readHoldingRegisters
        case .inputRegister: return .readInputRegisters
        }
    }
}

/// Names of the standard Modbus exception codes.
func modbusExceptionName(_ code: Int) -> String {
    switch code {
    case 1: return "illegal function"
    case 2: return "illegal data address"
    case 3: return "illegal data value"
    case 4: return "server device failure"
    case 5: return "acknowledge"
    case 6: return "server device busy"
    case 8: return "memory parity error"
    case 10: return "gateway path unavailable"
    case 11: return "gateway target failed to respond"
    default: return "unknown exception"
    }
}

/// Engineering value <-> raw Modbus encoding of a point: RedlineCore's codec, the one
/// `Point.quantized(_:)` is computed with (so the policy and the wire agree).
enum ModbusCodec {
    /// Decodes a raw register or bit into engineering units.
    static func decode(raw: UInt16, table: ModbusTable, scale: Double, signed: Bool) -> Double {
        ModbusRegisterCodec.decode(raw: raw, table: table, scale: scale, signed: signed)
    }

    /// Encodes an engineering value; `nil` if it cannot be represented.
    static func encode(_ value: Double, table: ModbusTable, scale: Double, signed: Bool) -> UInt16? {
        ModbusRegisterCodec.encode(value, table: table, scale: scale, signed: signed)
    }
}

/// One Modbus bus (TCP or RTU) through libmodbus. Owned by its bus thread.
///
/// Requests are built here from the whitelisted function codes and sent with
/// `modbus_send_raw_request`; every response is checked strictly (unit id,
/// function code, byte count, echo of writes, MBAP header) before a value is
/// believed. Any transport or framing error closes the connection; reconnects
/// back off exponentially (100 ms doubling to 1.6 s) and reset on success.
final class ModbusBackend: BusBackend {
    static let minBackoffMs: Int64 = 100
    static let maxBackoffMs: Int64 = 1600

    let bus: Bus
    private let logger: Logger
    private let isTCP: Bool
    private var ctx: OpaquePointer?
    private var connected = false
    private var backoffMs: Int64 = 0
    private var nextAttemptAt: Int64 = 0
    private var lastError: DeviceError?
    private var buffer = [UInt8](repeating: 0, count: 512)

    init(bus: Bus, logger: Logger) {
        self.bus = bus
        self.logger = logger
        if case .modbusTCP = bus.kind { isTCP = true } else { isTCP = false }
    }

    // MARK: BusBackend

    func read(_ points: [Point]) -> [String: Result<Double, DeviceError>] {
        var out: [String: Result<Double, DeviceError>] = [:]
        // The same plan the scan budget of a serial line is computed from (ModbusReadPlan).
        let (reads, rejected) = ModbusReadPlan.plan(points)
        for (i, why) in rejected {
            let p = points[i]
            switch why {
            case .notModbus: out[p.id] = .failure(.unsupported("\(p.id) is not a Modbus point"))
            case .noValidUnit: out[p.id] = .failure(.unsupported("\(p.id) has no valid unit id"))
            case .invalidAddress: out[p.id] = .failure(.unsupported("\(p.id) has an invalid address"))
            }
        }
        for r in reads {
            switch readRaw(unit: r.unit, table: r.table, address: r.start, count: r.count) {
            case .success(let raws):
                for i in r.points {
                    let p = points[i]
                    guard case .modbus(_, let a, let scale, let signed) = p.binding else { continue }
                    out[p.id] = .success(ModbusCodec.decode(raw: raws[a - r.start], table: r.table, scale: scale, signed: signed))
                }
            case .failure(let e):
                for i in r.points { out[points[i].id] = .failure(e) }
            }
        }
        return out
    }

    func write(_ point: Point, value: Double) -> Result<Double, DeviceError> {
        guard case .modbus(let table, let address, let scale, let signed) = point.binding else {
            return .failure(.unsupported("\(point.id) is not a Modbus point"))
        }
        guard table.isWritable else { return .failure(.unsupported("\(point.id) is in a read-only table")) }
        guard let unit = point.unitId, (1...247).contains(unit), (0...65535).contains(address) else {
            return .failure(.unsupported("\(point.id) has no valid unit id or address"))
        }
        // Encoded through Point.wireValue, the function Point.quantized is: the raw value on
        // the wire decodes to exactly the quantized value. A value the encoding would change
        // (22.35 on a 0.1 register) is refused rather than rounded behind the decision's back:
        // the caller decides on `point.quantized(value)` and writes that.
        guard let wire = point.wireValue(for: value) else { return .failure(.outOfRange(value)) }
        guard wire.value == value else {
            return .failure(.unsupported("\(point.id) cannot hold \(fmt(value)) exactly (it would be \(fmt(wire.value))); decide on and write the quantized value"))
        }
        let raw = wire.raw
        let fc: FunctionCode = table == .coil ? .writeSingleCoil : .writeSingleRegister
        let wireValue: UInt16 = table == .coil ? (raw == 0 ? 0x0000 : 0xFF00) : raw
        let pdu: [UInt8] = [fc.rawValue, UInt8(address >> 8), UInt8(address & 0xFF),
                            UInt8(wireValue >> 8), UInt8(wireValue & 0xFF)]
        // Single writes echo the request exactly (checked by ModbusReply.check in transact).
        switch transact(unit: unit, pdu: pdu) {
        case .failure(let e): return .failure(e)
        case .success: break
        }
        switch readRaw(unit: unit, table: table, address: address, count: 1) {
        case .failure(let e): return .failure(e)
        case .success(let raws):
            let back = ModbusCodec.decode(raw: raws[0], table: table, scale: scale, signed: signed)
            let wrote = ModbusCodec.decode(raw: raw, table: table, scale: scale, signed: signed)
            guard raws[0] == raw || (table.isBit && (raws[0] != 0) == (raw != 0)) else {
                return .failure(.readBackMismatch(wrote: wrote, read: back))
            }
            return .success(back)
        }
    }

    func close() {
        if let ctx {
            if connected { modbus_close(ctx) }
            modbus_free(ctx)
        }
        ctx = nil
        connected = false
    }

    // MARK: Transactions

    /// Reads `count` consecutive bits or registers.
    func readRaw(unit: Int, table: ModbusTable, address: Int, count: Int) -> Result<[UInt16], DeviceError> {
        let fc = FunctionCode.read(table)
        let pdu: [UInt8] = [fc.rawValue, UInt8(address >> 8), UInt8(address & 0xFF), UInt8(count >> 8), UInt8(count & 0xFF)]
        switch transact(unit: unit, pdu: pdu) {
        case .failure(let e): return .failure(e)
        case .success(let values):
            guard values.count == count else { return fail(.malformed("\(values.count) values, expected \(count)"), close: true) }
            return .success(values)
        }
    }

    /// Sends one request PDU to `unit` and checks the reply with `ModbusReply.check` (framing, unit,
    /// function code, byte count, echo of writes: the pure function the fuzz target `modbus-replies`
    /// and the tests exercise). Returns the values of a read, nothing for a write. Exception
    /// responses become `.exception`; anything unexpected is `.malformed` and closes the link.
    func transact(unit: Int, pdu: [UInt8]) -> Result<[UInt16], DeviceError> {
        guard let first = pdu.first, FunctionCode(rawValue: first) != nil else {
            return .failure(.unsupported("function code not permitted"))
        }
        guard (1...247).contains(unit) else { return .failure(.unsupported("unit id \(unit) not permitted")) }
        if let e = ensureConnected() { return .failure(e) }
        guard let ctx else { return .failure(.closed) }
        modbus_set_slave(ctx, Int32(unit))
        let request = [UInt8(unit)] + pdu
        let sent = request.withUnsafeBufferPointer { modbus_send_raw_request(ctx, $0.baseAddress, Int32($0.count)) }
        if sent < 0 { return fail(errnoError(), close: true) }
        let n = Int(buffer.withUnsafeMutableBufferPointer { modbus_receive_confirmation(ctx, $0.baseAddress) })
        if n < 0 { return fail(errnoError(), close: true) }
        if n == 0 { return fail(.malformed("response from another unit"), close: true) }
        // libmodbus has framed the reply (and, for RTU, checked the CRC, checked again here);
        // the frame is the MBAP header and PDU for TCP, unit, PDU and CRC for RTU.
        let frame = Array(buffer[0..<min(n, buffer.count)])
        switch ModbusReply.check(unit: UInt8(unit), request: pdu, reply: frame, framing: isTCP ? .tcp(transactionID: 0) : .rtu) {
        case .success(let values):
            succeeded()
            return .success(values)
        case .failure(.exception(let code)):
            succeeded()
            return .failure(.exception(code: Int(code), modbusExceptionName(Int(code))))
        case .failure(.malformed(let why)):
            // The link answered: reconnect at the shortest backoff, as for any reply, so a device
            // that recovers from sending garbage is read again within a scan or two.
            succeeded()
            return fail(.malformed(why), close: true)
        }
    }

    // MARK: Connection management

    private func ensureConnected() -> DeviceError? {
        if connected { return nil }
        let now = monotonicMillis()
        if now < nextAttemptAt { return lastError ?? .connection("waiting to reconnect") }
        if ctx == nil {
            switch bus.kind {
            case .modbusTCP(let host, let port):
                ctx = modbus_new_tcp_pi(host, String(port))
            case .modbusRTU(let s):
                let parity = s.parity.asciiValue.map { CChar(bitPattern: $0) } ?? CChar(bitPattern: UInt8(ascii: "N"))
                ctx = modbus_new_rtu(s.device, Int32(s.baud), parity, Int32(s.dataBits), Int32(s.stopBits))
            case .gpio, .bacnetIP:
                return .unsupported("not a Modbus bus")
            }
            guard let ctx else { return scheduleRetry(.connection("cannot create a Modbus context: \(strerr(errno))")) }
            let ms = max(1, bus.timeoutMs)
            modbus_set_response_timeout(ctx, UInt32(ms / 1000), UInt32((ms % 1000) * 1000))
            modbus_set_byte_timeout(ctx, UInt32(ms / 1000), UInt32((ms % 1000) * 1000))
            modbus_set_error_recovery(ctx, MODBUS_ERROR_RECOVERY_NONE)
        }
        guard let ctx else { return .closed }
        if modbus_connect(ctx) < 0 {
            return scheduleRetry(.connection(strerr(errno)))
        }
        connected = true
        return nil
    }

    private func scheduleRetry(_ e: DeviceError) -> DeviceError {
        backoffMs = backoffMs == 0 ? Self.minBackoffMs : min(backoffMs * 2, Self.maxBackoffMs)
        nextAttemptAt = monotonicMillis() + backoffMs
        lastError = e
        return e
    }

    private func succeeded() {
        backoffMs = 0
        nextAttemptAt = 0
        lastError = nil
    }

    /// Records a failed transaction: closes the link (a TCP stream or serial line
    /// in an unknown state is never reused) and backs off before reconnecting.
    private func fail<T>(_ e: DeviceError, close: Bool) -> Result<T, DeviceError> {
        if close, let ctx, connected {
            modbus_close(ctx)
            connected = false
            _ = scheduleRetry(e)
        }
        return .failure(e)
    }

    private func errnoError() -> DeviceError {
        let e = redline_modbus_errno()
        let base: Int32 = 112_345_678
        switch e {
        case ETIMEDOUT: return .timeout
        case base + 1...base + 11: return .exception(code: Int(e - base), modbusExceptionName(Int(e - base)))
        case base + 12: return .malformed("bad CRC")
        case base + 13: return .malformed("invalid data")
        case base + 14: return .malformed("invalid exception code")
        case base + 15: return .malformed("unknown exception code")
        case base + 16: return .malformed("too many data")
        case base + 17: return .malformed("response from another unit")
        default: return .connection(strerr(e))
        }
    }

    private func strerr(_ e: Int32) -> String { String(cString: modbus_strerror(e)) }
}
