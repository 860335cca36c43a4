import Foundation
import PlantModel
import RedlineCore

#if canImport(Glibc)
import Glibc
#endif

/// The simulator's control socket: JSON-RPC 2.0, one object per line, on a Unix socket.
final class ControlServer: Sendable {
    let path: String
    let sim: Simulator
    let listener: Int32

    /// Binds and listens (replacing a stale socket file, never another kind of file).
    init(path: String, sim: Simulator) throws(SimError) {
        self.path = path
        self.sim = sim
        var st = stat()
        if lstat(path, &st) == 0 {
            guard (st.st_mode & S_IFMT) == S_IFSOCK else { throw SimError("\(path) exists and is not a socket") }
            unlink(path)
        }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw SimError("socket: \(String(cString: strerror(errno)))") }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else {
            Glibc.close(fd)
            throw SimError("control socket path too long: \(path)")
        }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            for (i, b) in bytes.enumerated() { raw[i] = b }
        }
        let ok = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard ok == 0, listen(fd, 16) == 0 else {
            let m = String(cString: strerror(errno))
            Glibc.close(fd)
            throw SimError("cannot listen on \(path): \(m)")
        }
        listener = fd
    }

    func start() {
        let t = Thread { [self] in
            while self.sim.isRunning {
                let c = accept(self.listener, nil, nil)
                if c < 0 { if errno == EINTR { continue } else { break } }
                let ct = Thread { self.serve(c) }
                ct.name = "redline-sim-control-client"
                ct.start()
            }
        }
        t.name = "redline-sim-control"
        t.start()
    }

    func remove() { unlink(path) }

    private func serve(_ fd: Int32) {
        defer { Glibc.close(fd) }
        var pending: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buf.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { return }
            pending += buf[0..<n]
            while let nl = pending.firstIndex(of: 0x0A) {
                let line = Array(pending[..<nl])
                pending.removeSubrange(...nl)
                if line.allSatisfy({ $0 == 0x20 || $0 == 0x0D || $0 == 0x09 }) { continue }
                if let reply = respond(line) {
                    let out = Array((reply.encoded() + "\n").utf8)
                    var off = 0
                    while off < out.count {
                        let w = out[off...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
                        if w <= 0 { return }
                        off += w
                    }
                }
            }
            if pending.count > 1 << 20 {
                let e = error(.null, -32600, "request line too long")
                _ = Array((e.encoded() + "\n").utf8).withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
                return
            }
        }
    }

    private func error(_ id: JSON, _ code: Int, _ message: String) -> JSON {
        ["jsonrpc": "2.0", "id": id, "error": ["code": .number(Double(code)), "message": .string(message)]]
    }

    /// Handles one request line; `nil` for notifications.
    func respond(_ line: [UInt8]) -> JSON? {
        let req: JSON
        do { req = try JSON.parse(line) } catch { return self.error(.null, -32700, "parse error: \(error)") }
        guard case .object = req, req["jsonrpc"] == "2.0", let method = req["method"]?.stringValue else {
            return self.error(req["id"] ?? .null, -32600, "invalid request")
        }
        let id = req["id"]
        let params = req["params"] ?? .object([])
        let result: Result<JSON, RPCError> = call(method, params)
        guard let id else { return nil }
        switch result {
        case .success(let r): return ["jsonrpc": "2.0", "id": id, "result": r]
        case .failure(let e): return self.error(id, e.code, e.message)
        }
    }

    struct RPCError: Error {
        var code: Int
        var message: String
        static func params(_ m: String) -> RPCError { RPCError(code: -32602, message: m) }
    }

    private func call(_ method: String, _ params: JSON) -> Result<JSON, RPCError> {
        switch method {
        case "plant.get":
            let vars = sim.withPlant { $0.variables }
            return .success(.object(vars.map { ($0.0, .number($0.1)) }))
        case "plant.set":
            guard let name = params["name"]?.stringValue else { return .failure(.params("plant.set needs {name, value}")) }
            guard let value = params["value"]?.numberValue ?? params["value"]?.boolValue.map({ $0 ? 1 : 0 }) else {
                return .failure(.params("plant.set needs a numeric value"))
            }
            do {
                let now = try sim.withPlant { (p: inout PlantModel) throws(PlantModel.PlantError) -> Double in
                    try p.set(name, value)
                    return p.value(name) ?? value
                }
                return .success(["name": .string(name), "value": .number(now)])
            } catch {
                return .failure(.params("\(error)"))
            }
        case "plant.reset":
            sim.withPlant { $0.reset() }
            sim.bacnet.reset()
            sim.clearFaults()
            return .success(["reset": true])
        case "plant.advance":
            guard sim.manualClock else { return .failure(RPCError(code: -32000, message: "plant.advance needs --clock manual")) }
            guard let s = params["seconds"]?.numberValue, s.isFinite, s >= 0, s <= 86_400 else {
                return .failure(.params("plant.advance needs {seconds} between 0 and 86400"))
            }
            let t = sim.withPlant { p -> Double in p.advance(seconds: s); return p.time }
            return .success(["time": .number(t)])
        case "device.fault":
            guard let device = params["device"]?.stringValue, let m = params["mode"]?.stringValue else {
                return .failure(.params("device.fault needs {device, mode}"))
            }
            guard let mode = FaultMode(rawValue: m) else {
                return .failure(.params("unknown mode \(m); modes: \(FaultMode.allCases.map(\.rawValue).joined(separator: ", "))"))
            }
            guard sim.modbusDevices.contains(where: { $0.id == device }) || sim.bacnetDevices.contains(where: { $0.id == device }) else {
                return .failure(.params("unknown Modbus or BACnet device \(device)"))
            }
            var delay: Int?
            if let d = params["delayMs"] {
                guard let n = d.numberValue, n >= 0, n <= 10_000, n == n.rounded() else {
                    return .failure(.params("delayMs must be a whole number of milliseconds, 0-10000"))
                }
                delay = Int(n)
            }
            sim.setFault(mode, device: device, delayMs: delay)
            return .success(["device": .string(device), "mode": .string(mode.rawValue), "delayMs": delay.map { .number(Double($0)) } ?? .null])
        case "bacnet.set":
            // A command at any priority 1-16 from someone other than Redline (a person at the
            // panel at 8, life safety at 1...): {point, priority, value} or value null to release.
            guard let point = params["point"]?.stringValue, let n = params["priority"]?.numberValue, n == n.rounded(),
                  let priority = BACnetPriority(Int(n)), let v = params["value"] else {
                return .failure(.params("bacnet.set needs {point, priority 1-16, value (a number, or null to release)}"))
            }
            guard let p = sim.site.point(point), case .bacnet(let a) = p.binding, p.role.isOutput else {
                return .failure(.params("\(point) is not a BACnet output"))
            }
            var value: Double?
            if v != .null {
                guard let x = v.numberValue ?? v.boolValue.map({ $0 ? 1 : 0 }), BACnetEncoding.encode(x, for: a.object.type) != nil else {
                    return .failure(.params("\(v) is not a value of a \(a.object.type) object"))
                }
                value = BACnetEncoding.quantize(x, for: a.object.type)
            }
            guard let pv = sim.commandBACnet(point, priority: priority, value: value) else {
                return .failure(.params("\(point) is not a BACnet output"))
            }
            return .success(["point": .string(point), "priority": .number(n), "presentValue": .number(pv)])
        case "bacnet.flags":
            // Status_Flags, Out_Of_Service and Reliability of a BACnet object, as the device
            // would report them: {point, fault?, overridden?, outOfService?, inAlarm?, reliability?}.
            guard let point = params["point"]?.stringValue else { return .failure(.params("bacnet.flags needs {point, ...}")) }
            var rel: UInt32?
            if let r = params["reliability"] {
                guard let x = r.numberValue, x >= 0, x <= 255, x == x.rounded() else { return .failure(.params("reliability must be an enumeration value 0-255")) }
                rel = UInt32(x)
            }
            guard let st = sim.bacnet.setFlags(point, { s in
                if let b = params["fault"]?.boolValue { s.flags.fault = b }
                if let b = params["overridden"]?.boolValue { s.flags.overridden = b }
                if let b = params["outOfService"]?.boolValue { s.flags.outOfService = b }
                if let b = params["inAlarm"]?.boolValue { s.flags.inAlarm = b }
                if let rel { s.reliability = rel }
            }) else {
                return .failure(.params("\(point) is not a BACnet point"))
            }
            return .success(["point": .string(point), "statusFlags": .string(st.flags.description), "reliability": .number(Double(st.reliability))])
        default:
            return .failure(RPCError(code: -32601, message: "no such method: \(method)"))
        }
    }
}

struct SimError: Error, CustomStringConvertible {
    let description: String
    init(_ m: String) { description = m }
}
