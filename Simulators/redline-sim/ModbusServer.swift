import CModbus
import Foundation
import PlantModel
import RedlineCore
import RedlineSync

#if canImport(Glibc)
import Glibc
#endif

/// Raw <-> engineering values, as a real device stores them.
enum Codec {
    static func encode(_ value: Double, table: ModbusTable, scale: Double, signed: Bool) -> UInt16 {
        if table.isBit { return value != 0 ? 1 : 0 }
        guard value.isFinite, scale != 0 else { return 0 }
        let n = (value / scale).rounded()
        // A transmitter saturates at the ends of its register range.
        if signed { return UInt16(bitPattern: Int16(max(-32768, min(32767, n)))) }
        return UInt16(max(0, min(65535, n)))
    }

    static func decode(_ raw: UInt16, table: ModbusTable, scale: Double, signed: Bool) -> Double {
        if table.isBit { return raw != 0 ? 1 : 0 }
        let n = signed ? Double(Int16(bitPattern: raw)) : Double(raw)
        let inverse = scale != 0 ? (1 / scale).rounded() : 0
        if inverse > 1, abs(1 / scale - inverse) < 1e-9 * inverse { return n / inverse }
        return n * scale
    }
}

/// Modbus RTU CRC-16 (polynomial 0xA001, initial 0xFFFF), low byte first on the wire.
func crc16(_ bytes: some Sequence<UInt8>) -> UInt16 {
    var crc: UInt16 = 0xFFFF
    for b in bytes {
        crc ^= UInt16(b)
        for _ in 0..<8 { crc = (crc & 1) != 0 ? (crc >> 1) ^ 0xA001 : crc >> 1 }
    }
    return crc
}

/// One simulated device: its points and its register map.
struct SimDevice {
    let device: Device
    let points: [(Point, ModbusTable, Int, Double, Bool)]
    let mapping: UnsafeMutablePointer<modbus_mapping_t>

    init?(device: Device, site: Site) {
        var pts: [(Point, ModbusTable, Int, Double, Bool)] = []
        var size: [ModbusTable: Int] = [:]
        for p in site.points where p.device == device.id {
            guard case .modbus(let t, let a, let s, let sg) = p.binding else { continue }
            pts.append((p, t, a, s, sg))
            size[t] = max(size[t] ?? 1, a + 1)
        }
        guard let m = modbus_mapping_new(Int32(size[.coil] ?? 1), Int32(size[.discreteInput] ?? 1),
                                         Int32(size[.holdingRegister] ?? 1), Int32(size[.inputRegister] ?? 1)) else { return nil }
        self.device = device
        self.points = pts
        self.mapping = m
    }

    /// Copies the plant's physical state into the register map.
    func load(from plant: PlantModel) {
        let m = mapping.pointee
        for (p, t, a, s, sg) in points {
            let raw = Codec.encode(plant.value(p.id) ?? 0, table: t, scale: s, signed: sg)
            switch t {
            case .coil: m.tab_bits[a] = UInt8(raw)
            case .discreteInput: m.tab_input_bits[a] = UInt8(raw)
            case .holdingRegister: m.tab_registers[a] = raw
            case .inputRegister: m.tab_input_registers[a] = raw
            }
        }
    }

    /// Applies writes the client made to outputs back to the plant.
    func store(into plant: inout PlantModel) {
        let m = mapping.pointee
        for (p, t, a, s, sg) in points where t.isWritable && p.role.isOutput {
            let raw: UInt16 = t == .coil ? UInt16(m.tab_bits[a]) : m.tab_registers[a]
            let current = Codec.encode(plant.value(p.id) ?? 0, table: t, scale: s, signed: sg)
            if raw != current {
                try? plant.deviceWrite(point: p.id, value: Codec.decode(raw, table: t, scale: s, signed: sg))
            }
        }
    }
}

/// Serves the Modbus devices of one bus, on its own thread with its own libmodbus context.
final class BusServer: Sendable {
    let bus: Bus
    let sim: Simulator
    let deviceIDs: [String]
    private let thread = ServerThread()

    init(bus: Bus, sim: Simulator) {
        self.bus = bus
        self.sim = sim
        self.deviceIDs = sim.modbusDevices.filter { $0.bus == bus.id }.map(\.id)
    }

    /// Starts the thread and waits until it listens; returns an error message if it cannot.
    func start() -> String? {
        thread.start(name: "redline-sim-\(bus.id)") { [self] in self.main() }
    }

    private func devices() -> [Int: SimDevice] {
        var out: [Int: SimDevice] = [:]
        for d in sim.modbusDevices where d.bus == bus.id {
            if let unit = d.unit, let sd = SimDevice(device: d, site: sim.site) { out[unit] = sd }
        }
        return out
    }

    private func main() {
        switch bus.kind {
        case .modbusTCP(let host, let port): serveTCP(host: host, port: port)
        case .modbusRTU(let s): serveRTU(s)
        case .gpio, .bacnetIP: thread.fail("bus \(bus.id) is not a Modbus bus")
        }
    }

    private var allOffline: Bool {
        !deviceIDs.isEmpty && deviceIDs.allSatisfy { sim.fault(of: $0) == .offline }
    }

    // MARK: TCP

    private func serveTCP(host: String, port: Int) {
        guard let ctx = modbus_new_tcp_pi(host, String(port)) else { return thread.fail("bus \(bus.id): cannot create a TCP context") }
        let units = devices()
        var listener: Int32 = -1
        // The previous simulator may still hold the port for a moment: retry for 3 s.
        for attempt in 0..<60 {
            listener = modbus_tcp_pi_listen(ctx, 32)
            if listener >= 0 { break }
            if attempt == 59 {
                return thread.fail("bus \(bus.id): cannot listen on \(host):\(port): \(String(cString: modbus_strerror(errno)))")
            }
            usleep(50_000)
        }
        thread.ready()
        var clients: [Int32] = []
        var query = [UInt8](repeating: 0, count: 512)
        while sim.isRunning {
            if allOffline {
                if listener >= 0 { Glibc.close(listener); listener = -1 }
                for c in clients { Glibc.close(c) }
                clients.removeAll()
                usleep(20_000)
                continue
            }
            if listener < 0 {
                listener = modbus_tcp_pi_listen(ctx, 32)
                if listener < 0 { usleep(50_000); continue }
            }
            var fds = [pollfd(fd: listener, events: Int16(POLLIN), revents: 0)]
            fds += clients.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            let n = poll(&fds, nfds_t(fds.count), 50)
            if n <= 0 { continue }
            var closed = Set<Int32>()
            for f in fds.dropFirst() where f.revents != 0 {
                modbus_set_socket(ctx, f.fd)
                let rc = query.withUnsafeMutableBufferPointer { modbus_receive(ctx, $0.baseAddress) }
                if rc < 0 {
                    closed.insert(f.fd)
                } else if rc > 0 {
                    handle(ctx: ctx, fd: f.fd, query: Array(query[0..<Int(rc)]), header: 7, units: units, tcp: true)
                }
            }
            for c in closed { Glibc.close(c) }
            clients.removeAll { closed.contains($0) }
            if fds[0].revents & Int16(POLLIN) != 0 {
                var s = listener
                let c = modbus_tcp_pi_accept(ctx, &s)
                if c >= 0 { clients.append(c) }
            }
        }
        for c in clients { Glibc.close(c) }
        if listener >= 0 { Glibc.close(listener) }
        modbus_free(ctx)
    }

    // MARK: RTU

    private func serveRTU(_ s: SerialSettings) {
        var master: Int32 = -1, slave: Int32 = -1
        guard openpty(&master, &slave, nil, nil, nil) == 0 else { return thread.fail("bus \(bus.id): openpty failed: \(String(cString: strerror(errno)))") }
        var tio = termios()
        tcgetattr(slave, &tio)
        cfmakeraw(&tio)
        tcsetattr(slave, TCSANOW, &tio)
        guard let namePtr = ttyname(slave) else { return thread.fail("bus \(bus.id): ttyname failed") }
        let ptyName = String(cString: namePtr)
        // Publish the pseudo-terminal at the bus's configured device path (a symlink).
        var st = stat()
        if lstat(s.device, &st) == 0 {
            guard (st.st_mode & S_IFMT) == S_IFLNK else {
                return thread.fail("bus \(bus.id): \(s.device) exists and is not a symlink; refusing to replace it")
            }
            unlink(s.device)
        }
        guard symlink(ptyName, s.device) == 0 else {
            return thread.fail("bus \(bus.id): cannot create \(s.device): \(String(cString: strerror(errno)))")
        }
        let units = devices()
        let parity = CChar(bitPattern: s.parity.asciiValue ?? UInt8(ascii: "N"))
        guard let ctx = modbus_new_rtu(ptyName, Int32(s.baud), parity, Int32(s.dataBits), Int32(s.stopBits)) else {
            return thread.fail("bus \(bus.id): cannot create an RTU context")
        }
        // A multi-drop line: frames are delimited here (by function code, CRC checked),
        // so that every unit of the bus answers; libmodbus builds and sends the replies.
        // (libmodbus's RTU modbus_receive serves one unit id, and after a frame for
        // another unit it swallows the next frame as that unit's answer.)
        if let first = units.keys.sorted().first { modbus_set_slave(ctx, Int32(first)) }
        modbus_set_socket(ctx, master)
        thread.ready()
        var framer = RTUFramer(fd: master)
        while sim.isRunning {
            guard let frame = framer.next() else { continue }
            // Corrupted frames are ignored, as a real device on the line ignores them.
            guard frame.count >= 4, crc16(frame.dropLast(2)) == UInt16(frame[frame.count - 2]) | UInt16(frame[frame.count - 1]) << 8 else { continue }
            if allOffline { continue }
            handle(ctx: ctx, fd: master, query: frame, header: 1, units: units, tcp: false)
        }
        if let cur = try? FileManager.default.destinationOfSymbolicLink(atPath: s.device), cur == ptyName { unlink(s.device) }
        modbus_free(ctx)
        Glibc.close(master)
        Glibc.close(slave)
    }

    // MARK: Requests

    private func handle(ctx: OpaquePointer, fd: Int32, query: [UInt8], header: Int, units: [Int: SimDevice], tcp: Bool) {
        guard query.count > header else { return }
        let unit = Int(query[header - 1])
        guard let dev = units[unit] else {
            // A TCP gateway says the target is missing; an RTU bus stays silent.
            if tcp { _ = query.withUnsafeBufferPointer { modbus_reply_exception(ctx, $0.baseAddress, 11) } }
            return
        }
        var q = query
        switch sim.fault(of: dev.device.id) {
        case .offline, .timeout:
            return
        case .exception:
            _ = q.withUnsafeBufferPointer { modbus_reply_exception(ctx, $0.baseAddress, 4) }
            return
        case .garbage:
            let frame = garbage(query: query, header: header, tcp: tcp)
            _ = frame.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            return
        case .wrongUnit:
            q[header - 1] = UInt8(unit >= 247 ? 1 : unit + 1)
        case .slow:
            usleep(UInt32(max(1, sim.slowDelayMs(of: dev.device.id) ?? min(50, bus.timeoutMs / 2))) * 1000)
        case .none:
            break
        }
        let function = query[header]
        sim.withPlant { dev.load(from: $0) }
        let rc = q.withUnsafeBufferPointer { modbus_reply(ctx, $0.baseAddress, Int32($0.count), dev.mapping) }
        if rc > 0, [5, 6, 15, 16].contains(function) {
            sim.withPlant { dev.store(into: &$0) }
        }
    }

    /// A frame that is well delimited but wrong: one data byte too many for a read,
    /// a wrong echo for a write; over RTU, also a bad CRC.
    private func garbage(query: [UInt8], header: Int, tcp: Bool) -> [UInt8] {
        let unit = query[header - 1], function = query[header]
        var pdu: [UInt8]
        if (1...4).contains(function), query.count >= header + 5 {
            let count = Int(query[header + 3]) << 8 | Int(query[header + 4])
            let bytes = (function <= 2 ? (count + 7) / 8 : count * 2) + 1
            pdu = [function, UInt8(truncatingIfNeeded: bytes)] + (0..<bytes).map { UInt8(truncatingIfNeeded: 0xA5 &+ $0) }
        } else if query.count >= header + 5 {
            pdu = Array(query[header..<(header + 5)])
            pdu[3] ^= 0x5A
            pdu[4] ^= 0xA5
        } else {
            pdu = [function, 0xFF]
        }
        if tcp {
            let len = pdu.count + 1
            return [query[0], query[1], 0, 0, UInt8(len >> 8), UInt8(len & 0xFF), unit] + pdu
        }
        let body = [unit] + pdu
        let crc = crc16(body) ^ 0xFFFF
        return body + [UInt8(crc & 0xFF), UInt8(crc >> 8)]
    }
}

/// Splits the byte stream of a Modbus RTU line into request frames: the length
/// follows from the function code (and byte count); an unknown function code's
/// frame ends at 5 ms of silence; a frame broken off for 50 ms is dropped.
struct RTUFramer {
    let fd: Int32
    private var buffer: [UInt8] = []

    init(fd: Int32) { self.fd = fd }

    /// The next complete frame, or nil when nothing arrived within 50 ms.
    mutating func next() -> [UInt8]? {
        while true {
            if let n = expectedLength(), buffer.count >= n {
                let frame = Array(buffer[0..<n])
                buffer.removeFirst(n)
                return frame
            }
            let waitMs: Int32 = buffer.isEmpty ? 50 : (expectedLength() == nil && buffer.count >= 2 ? 5 : 50)
            var fds = [pollfd(fd: fd, events: Int16(POLLIN), revents: 0)]
            let r = poll(&fds, 1, waitMs)
            if r <= 0 {
                if buffer.isEmpty { return nil }
                if buffer.count >= 2, expectedLength() == nil {
                    // Unknown function code: the silence ends the frame.
                    let frame = buffer
                    buffer.removeAll()
                    return frame
                }
                buffer.removeAll()  // a broken-off frame
                return nil
            }
            var chunk = [UInt8](repeating: 0, count: 512)
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n <= 0 {
                usleep(10_000)  // no client on the line (EIO on the master): wait
                return nil
            }
            buffer += chunk[0..<n]
        }
    }

    /// Total length of the frame at the head of the buffer, if its function code tells.
    private func expectedLength() -> Int? {
        guard buffer.count >= 2 else { return nil }
        switch buffer[1] {
        case 1...6: return 8
        case 15, 16:
            guard buffer.count >= 7 else { return Int.max }
            return 9 + Int(buffer[6])
        default: return nil
        }
    }
}
