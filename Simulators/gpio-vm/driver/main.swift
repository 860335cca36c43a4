// gpio-rig-driver: exercises RedlineIO's GPIOBackend against a real kernel GPIO chip
// (gpio-sim inside the rig's virtual machine). It acts on the lines through libgpiod,
// exactly as the daemon does, and observes/acts on the physical side through gpio-sim's
// sysfs attributes (`value` = what the line carries, `pull` = what the outside world drives).
//
//   gpio-rig-driver selftest --chip gpiochip0 --sim /sys/devices/platform/gpio-sim.0/gpiochip0
//   gpio-rig-driver hold     --chip gpiochip0 --lock 1
//
// Every check prints one line `GPIOVM-RESULT <name> PASS|FAIL <detail>`; selftest exits 1
// if any check failed. `hold` requests the demo site's lines, drives the lock, prints
// `GPIOVM-HOLDING` and then sleeps until killed (the rig checks what a killed process leaves).
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Logging
import RedlineCore
import RedlineIO

/// One line to standard output, unbuffered (the rig's shell waits for some of them).
func emit(_ line: String) {
    var bytes = Array((line + "\n").utf8)
    var off = 0
    while off < bytes.count {
        let n = bytes.withUnsafeMutableBytes { write(1, $0.baseAddress! + off, $0.count - off) }
        if n <= 0 { return }
        off += n
    }
}

func arg(_ name: String, _ fallback: String) -> String {
    let a = CommandLine.arguments
    if let i = a.firstIndex(of: name), i + 1 < a.count { return a[i + 1] }
    return fallback
}

let mode = CommandLine.arguments.count > 1 ? CommandLine.arguments[1] : "selftest"
let chip = arg("--chip", "gpiochip0")
let sim = arg("--sim", "/sys/devices/platform/gpio-sim.0/gpiochip0")

let logger: Logger = {
    var l = Logger(label: "gpio-rig-driver")
    l.logLevel = .notice
    return l
}()

func point(_ device: String, _ name: String, _ role: Role, _ line: GPIOLine, activeLow: Bool = false) -> Point {
    Point(id: "\(device).\(name)", device: device, name: name, role: role, zone: "server-room-a",
          bus: "gpio", unitId: nil, binding: .gpio(line: line, activeLow: activeLow))
}

// The demo site's GPIO points (Firmware-Configs/demo-datacenter-gpio.yaml) ...
let lock = point("sra-door", "lock", .egressLock, .offset(0))
let contact = point("sra-door", "contact", .doorContact, .offset(1))
let pir = point("sra-occupancy", "occupied", .occupancy, .offset(2))
// ... and extra bindings the rig chip provides: active-low lines and a line found by name.
let lockLow = point("door-b", "lock", .egressLock, .offset(3), activeLow: true)
let pirLow = point("pir-b", "occupied", .occupancy, .offset(4), activeLow: true)
let lockNamed = point("door-c", "lock", .egressLock, .name("door-c-lock"))   // line 5
let exhaust = point("exhaust", "run", .exhaustRun, .offset(6))               // safe value 1

// MARK: sysfs side

func sysfsRead(_ line: Int, _ attr: String) -> String {
    guard let f = fopen("\(sim)/sim_gpio\(line)/\(attr)", "r") else { return "<no \(attr)>" }
    defer { fclose(f) }
    var buf = [CChar](repeating: 0, count: 64)
    guard fgets(&buf, 64, f) != nil else { return "<empty>" }
    let bytes = buf.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }
    return String(decoding: bytes, as: UTF8.self).trimmingWhitespace()
}

func sysfsWrite(_ line: Int, _ attr: String, _ value: String) -> Bool {
    guard let f = fopen("\(sim)/sim_gpio\(line)/\(attr)", "w") else { return false }
    let ok = fputs(value, f) >= 0
    return fclose(f) == 0 && ok
}

func pull(_ line: Int, up: Bool) -> Bool { sysfsWrite(line, "pull", up ? "pull-up" : "pull-down") }

extension String {
    func trimmingWhitespace() -> String {
        var s = Substring(self)
        while let c = s.first, c == " " || c == "\n" || c == "\t" { s.removeFirst() }
        while let c = s.last, c == " " || c == "\n" || c == "\t" { s.removeLast() }
        return String(s)
    }
}

// MARK: results

var failures = 0
@MainActor func result(_ name: String, _ ok: Bool, _ detail: String) {
    if !ok { failures += 1 }
    emit("GPIOVM-RESULT \(name) \(ok ? "PASS" : "FAIL") \(detail)")
}

func show(_ r: Result<Double, DeviceError>?) -> String {
    switch r {
    case .none: return "missing"
    case .success(let v): return v == v.rounded() ? String(Int(v)) : String(v)
    case .failure(let e): return "error(\(e))"
    }
}

func value(_ r: Result<Double, DeviceError>?) -> Double? {
    if case .success(let v) = r { return v }
    return nil
}

// MARK: selftest

@MainActor func selftest() -> Int32 {
    // Before Redline holds anything, the outside world pulls the lock lines to "locked"
    // physically, so that only the requested initial value can bring them to their safe level.
    _ = pull(0, up: true); _ = pull(3, up: false); _ = pull(5, up: true); _ = pull(6, up: false)
    let before = [0, 3, 5, 6].map { sysfsRead($0, "value") }

    let points = [lock, contact, pir, lockLow, pirLow, lockNamed, exhaust]
    let backend: GPIOBackend
    do {
        backend = try GPIOBackend(chip: chip, points: points, logger: logger)
    } catch {
        result("backend-open", false, "GPIOBackend(\(chip)) threw \(error)")
        return 1
    }
    result("backend-open", backend.heldPoints.count == points.count,
           "held \(backend.heldPoints.count)/\(points.count): \(backend.heldPoints.joined(separator: ","))")

    // 1. Safe value at start-up, on the physical line.
    let after = [0, 3, 5, 6].map { sysfsRead($0, "value") }
    result("safe-value-at-startup", after == ["0", "1", "0", "1"],
           "physical lock=\(after[0]) (was \(before[0])), active-low lock=\(after[1]) (was \(before[1])), named lock=\(after[2]) (was \(before[2])), exhaust-run=\(after[3]) (was \(before[3])); expected 0,1,0,1")
    let r0 = backend.read([lock, lockLow, lockNamed, exhaust])
    result("safe-value-read-back", r0.values.compactMap { value($0) } .count == 4
           && value(r0[lock.id]) == 0 && value(r0[lockLow.id]) == 0 && value(r0[lockNamed.id]) == 0 && value(r0[exhaust.id]) == 1,
           "logical lock=\(show(r0[lock.id])) lockLow=\(show(r0[lockLow.id])) named=\(show(r0[lockNamed.id])) exhaust=\(show(r0[exhaust.id]))")

    // 2. Write + read-back, followed by the physical line.
    var trail: [String] = []
    var ok = true
    for (p, line, activeLow) in [(lock, 0, false), (lockLow, 3, true), (lockNamed, 5, false)] {
        for v in [1.0, 0.0, 1.0, 0.0] {
            let w = backend.write(p, value: v)
            let phys = sysfsRead(line, "value")
            let expected = (v == 1) != activeLow ? "1" : "0"
            let good = value(w) == v && phys == expected
            ok = ok && good
            trail.append("\(p.id)=\(Int(v))->\(show(w))/phys \(phys)")
        }
    }
    result("write-readback-follows", ok, trail.joined(separator: " "))

    // 3. Inputs follow the outside world's pull.
    trail = []; ok = true
    for (p, line, activeLow) in [(pir, 2, false), (contact, 1, false), (pirLow, 4, true)] {
        for up in [true, false, true, false] {
            let pulled = pull(line, up: up)
            let r = backend.read([p])[p.id]
            let expected: Double = up != activeLow ? 1 : 0
            let good = pulled && value(r) == expected
            ok = ok && good
            trail.append("\(p.id) pull-\(up ? "up" : "down")->\(show(r))")
        }
    }
    result("input-pull-read", ok, trail.joined(separator: " "))

    // 4. Inputs are never writable, values other than 0/1 are refused, nothing moves.
    let wIn = backend.write(pir, value: 1)
    let wHalf = backend.write(lock, value: 0.5)
    let wNaN = backend.write(lock, value: .nan)
    let physAfter = sysfsRead(0, "value")
    let refused: Bool = {
        guard case .failure(.unsupported) = wIn, case .failure(.outOfRange) = wHalf, case .failure(.outOfRange) = wNaN
        else { return false }
        return physAfter == "0"
    }()
    result("bad-writes-refused", refused, "input: \(show(wIn)); 0.5: \(show(wHalf)); nan: \(show(wNaN)); lock line stays \(physAfter)")

    // 5. A line is held exclusively: a second requester (another process or instance) cannot
    // take it, and its attempt does not disturb the held value.
    _ = backend.write(lock, value: 1)
    var second: GPIOBackend? = try? GPIOBackend(chip: chip, points: [lock, pir], logger: logger)
    let s = second?.read([lock, pir]) ?? [:]
    let sw = second?.write(lock, value: 0)
    let physHeld = sysfsRead(0, "value")
    let exclusive: Bool = {
        guard case .failure(.connection) = s[lock.id], case .failure(.connection) = s[pir.id],
              case .failure(.connection) = sw else { return false }
        return physHeld == "1" && second?.heldPoints.isEmpty == true
    }()
    result("line-held-exclusively", exclusive,
           "second requester: read lock \(show(s[lock.id])), read pir \(show(s[pir.id])), write \(show(sw)); lock line stays \(physHeld)")
    second?.close(); second = nil
    _ = backend.write(lock, value: 0)

    // 6. Missing lines and chips fail closed with a reason. Bindings are resolved against the
    //    chip when the backend is made: a name no line carries, an offset the chip lacks and a
    //    line bound twice are refused for good (both points of the twice-bound line).
    let ghostName = point("ghost", "in", .occupancy, .name("no-such-line"))
    let ghostOffset = point("ghost", "out", .egressLock, .offset(99))
    let twiceA = point("twice", "a", .status, .offset(7))
    let twiceB = point("twice", "b", .status, .offset(7))
    let g = try? GPIOBackend(chip: chip, points: [ghostName, ghostOffset, twiceA, twiceB], logger: logger)
    let gr = g?.read([ghostName, ghostOffset, twiceA, twiceB]) ?? [:]
    let missingChip: String
    do {
        _ = try GPIOBackend(chip: "gpiochip9", points: [lock], logger: logger)
        missingChip = "opened?"
    } catch {
        missingChip = "\(error)"
    }
    let missingOK: Bool = {
        guard case .failure(.unsupported) = gr[ghostName.id], case .failure(.unsupported) = gr[ghostOffset.id],
              case .failure(.unsupported) = gr[twiceA.id], case .failure(.unsupported) = gr[twiceB.id] else { return false }
        return missingChip.hasPrefix("connection failed")
    }()
    result("missing-line-or-chip", missingOK,
           "name: \(show(gr[ghostName.id])); offset 99: \(show(gr[ghostOffset.id])); line 7 twice: \(show(gr[twiceA.id])) / \(show(gr[twiceB.id])); gpiochip9: \(missingChip)")
    g?.close()

    // 7. A point not of this bus is refused.
    let foreign = Point(id: "crac-1.run", device: "crac-1", name: "run", role: .coolingRun, zone: "server-room-a",
                        bus: "crac-1-io", unitId: 1, binding: .modbus(table: .coil, address: 0, scale: 1, signed: false))
    let fr = backend.read([foreign])[foreign.id]
    let fw = backend.write(foreign, value: 1)
    let foreignOK: Bool = {
        guard case .failure(.unsupported) = fr, case .failure(.unsupported) = fw else { return false }
        return true
    }()
    result("foreign-point-refused", foreignOK, "read \(show(fr)); write \(show(fw))")

    // 8. close() releases the lines: gpio-sim then shows the pull again; later calls fail closed.
    _ = pull(0, up: false)
    _ = backend.write(lock, value: 1)
    let heldPhys = sysfsRead(0, "value")
    backend.close()
    let releasedPhys = sysfsRead(0, "value")
    let rc = backend.read([lock])[lock.id]
    let closedOK: Bool = {
        guard case .failure(.closed) = rc else { return false }
        return heldPhys == "1" && releasedPhys == "0"
    }()
    result("close-releases", closedOK, "held at \(heldPhys), after close \(releasedPhys) (pull-down), read after close: \(show(rc))")

    return failures == 0 ? 0 : 1
}

// MARK: hold

@MainActor func hold() -> Int32 {
    let want = Double(arg("--lock", "1")) ?? 1
    let backend: GPIOBackend
    do {
        backend = try GPIOBackend(chip: chip, points: [lock, contact, pir], logger: logger)
    } catch {
        emit("GPIOVM-HOLD-ERROR \(error)")
        return 1
    }
    let w = backend.write(lock, value: want)
    emit("GPIOVM-HOLDING lock=\(show(w)) pid=\(getpid())")
    // Keep the backend (and so the chip and its lines) alive: an optimized build would
    // otherwise end its lifetime after its last use and release the lines.
    withExtendedLifetime(backend) {
        while true { pause() }
    }
    return 0
}

switch mode {
case "selftest": exit(selftest())
case "hold": exit(hold())
default:
    emit("usage: gpio-rig-driver selftest|hold [--chip NAME] [--sim DIR] [--lock 0|1]")
    exit(2)
}
