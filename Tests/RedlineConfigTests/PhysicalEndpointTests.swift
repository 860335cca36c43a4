import Foundation
import Testing
import RedlineConfig
import RedlineCore

/// Issue 11, "physical identity, not spelling": two points on one physical output are refused
/// however their buses spell the endpoint. Tests named `…IsRefused` fail on the code before
/// the fix (it compared endpoints as strings); those that pass a `LoaderEnvironment` use the
/// injectable resolver added with it.
@Suite("Issue 11: overlaps are found by physical endpoint")
struct PhysicalEndpointTests {
    static let base = VariantTests.base

    /// `valid.yaml` with `buses` and `devices` lines appended to their sections.
    static func site(buses: [String] = [], devices: [String] = []) -> String {
        var text = base
        if !buses.isEmpty {
            text = text.replacingOccurrences(of: "  - {id: gpio, gpio: {chip: gpiochip0}}\n",
                                             with: "  - {id: gpio, gpio: {chip: gpiochip0}}\n" + buses.map { $0 + "\n" }.joined())
        }
        if !devices.isEmpty {
            text = text.replacingOccurrences(of: "  - {id: crac,  profile: crac-unit,        bus: bus-a, unit: 3, zone: room}\n",
                                             with: "  - {id: crac,  profile: crac-unit,        bus: bus-a, unit: 3, zone: room}\n" + devices.map { $0 + "\n" }.joined())
        }
        return text
    }

    static func errors(_ text: String, environment: LoaderEnvironment? = nil) throws -> (file: String, diagnostics: [ConfigDiagnostic]) {
        let file = try temporaryFile(text)
        guard let environment else { return (file, diagnostics(site: file)) }
        do {
            _ = try SiteLoader.load(siteFile: file, devicesDir: devicesDir, environment: environment)
            return (file, [])
        } catch {
            return (file, error.diagnostics)
        }
    }

    @Test func aliasedOutputBehindLocalhostIsRefused() throws {
        // The fixture of the issue: a lighting relay on the door lock's coil, via "localhost".
        let file = FixtureTests.fixtures.appendingPathComponent("sites/aliased-output-behind-localhost.yaml").path
        let d = diagnostics(site: file)
        #expect(d.count == 1, "\(d)")
        let hit = try #require(d.first)
        #expect(hit.description.hasPrefix("\(file):16:10: point sra-lights.on overlaps sra-door.lock: both at unit 1 coil 0 of one physical endpoint"), "\(hit)")
        // The same loader answers for redlinectl check and redlined; the port alone does not decide.
        let moved = try String(contentsOfFile: file, encoding: .utf8).replacingOccurrences(of: "host: localhost, port: 15024", with: "host: localhost, port: 15025")
        #expect(try Self.errors(moved).diagnostics.isEmpty)
    }

    @Test("every loopback spelling of 127.0.0.1 is one endpoint",
          arguments: ["localhost", "\"::1\"", "127.0.0.2", "127.1.2.3", "0.0.0.0", "\"::ffff:127.0.0.1\""])
    func aliasedOutputBehindAnotherLoopbackSpellingIsRefused(host: String) throws {
        let text = Self.site(buses: ["  - {id: bus-b, modbus-tcp: {host: \(host), port: 15020}}"],
                             devices: ["  - {id: crac-b, profile: crac-unit, bus: bus-b, unit: 3, zone: room}"])
        let (file, d) = try Self.errors(text)
        #expect(d.count == 3, "\(d)")  // run, setpoint and fault of crac-b
        for x in d {
            #expect(x.file == file)
            #expect(x.message.contains("overlaps crac.") && x.message.contains("of one physical endpoint, this host (loopback) port 15020"), "\(x)")
            #expect(String(try FixtureTests.text(file, line: x.line, column: x.column)).hasPrefix("crac-b"))
        }
    }

    @Test func hostNameResolvingToAServersAddressIsThatServer() throws {
        let hosts = HostResolver { host in
            switch host {
            case "door-gw.plant.example": return .success(["10.20.0.7", "fd00::7"])
            case "10.20.0.7": return .success(["10.20.0.7"])
            case "fd00::7": return .success(["fd00::7"])
            default: return .failure(.init("unknown host"))
            }
        }
        let env = LoaderEnvironment(hosts: hosts, accounts: .system)
        let text = Self.site(buses: ["  - {id: bus-b, modbus-tcp: {host: door-gw.plant.example, port: 15020}}",
                                     "  - {id: bus-c, modbus-tcp: {host: \"fd00::7\", port: 15020}}"],
                             devices: ["  - {id: crac-b, profile: crac-unit, bus: bus-b, unit: 3, zone: room}",
                                       "  - {id: crac-c, profile: crac-unit, bus: bus-c, unit: 3, zone: room}"])
            .replacingOccurrences(of: "host: 127.0.0.1", with: "host: 10.20.0.7")
        let d = try Self.errors(text, environment: env).diagnostics
        #expect(d.filter { $0.message.contains("crac-b.") && $0.message.contains("overlaps crac.") }.count == 3, "\(d)")
        // bus-c shares fd00::7 with bus-b, which shares 10.20.0.7 with bus-a: all one server.
        #expect(d.filter { $0.message.contains("crac-c.") && $0.message.contains("overlaps crac.") }.count == 3, "\(d)")
        #expect(d.count == 6, "\(d)")
    }

    @Test func unresolvableHostIsRefused() throws {
        let env = LoaderEnvironment(hosts: HostResolver { _ in .failure(.init("Name or service not known")) }, accounts: .system)
        let (file, d) = try Self.errors(Self.base, environment: env)
        #expect(d.count == 1, "\(d)")
        let hit = try #require(d.first)
        #expect(hit.message.contains("host '127.0.0.1' does not resolve (Name or service not known)"), "\(hit)")
        #expect(String(try FixtureTests.text(file, line: hit.line, column: hit.column)).hasPrefix("127.0.0.1"))
    }

    @Test func distinctEndpointsAndUnitsAreNoOverlap() throws {
        // Another port, or the same server with another unit: no overlap.
        let other = Self.site(buses: ["  - {id: bus-b, modbus-tcp: {host: localhost, port: 15021}}"],
                              devices: ["  - {id: crac-b, profile: crac-unit, bus: bus-b, unit: 3, zone: room}",
                                        "  - {id: crac-c, profile: crac-unit, bus: bus-a, unit: 4, zone: room}"])
        #expect(try Self.errors(other).diagnostics.isEmpty)
    }

    @Test func serialLineBehindASymlinkIsOneLine() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("redline-tty-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("by-id"), withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let tty = dir.appendingPathComponent("ttyS9").path
        #expect(FileManager.default.createFile(atPath: tty, contents: nil))
        let link = dir.appendingPathComponent("by-id/usb-FTDI_RS485-if00").path
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: "../ttyS9")
        let text = Self.site(buses: ["  - {id: rtu-a, modbus-rtu: {device: \(tty), baud: 115200}}",
                                     "  - {id: rtu-b, modbus-rtu: {device: \(link), baud: 115200}}"],
                             devices: ["  - {id: occ-b, profile: occupancy-sensor, bus: rtu-a, unit: 2, zone: room}",
                                       "  - {id: crac-b, profile: crac-unit, bus: rtu-b, unit: 3, zone: room}"])
        let (file, d) = try Self.errors(text)
        #expect(d.count == 1, "\(d)")
        let hit = try #require(d.first)
        #expect(hit.message.contains("bus 'rtu-b' is on the same serial line as bus 'rtu-a'"), "\(hit)")
        #expect(String(try FixtureTests.text(file, line: hit.line, column: hit.column)).hasPrefix(link))
    }

    @Test func serialPathsThatDoNotExistYetAreComparedLexically() throws {
        let text = Self.site(buses: ["  - {id: rtu-a, modbus-rtu: {device: /nonexistent-redline/tty/../ttyX1, baud: 115200}}",
                                     "  - {id: rtu-b, modbus-rtu: {device: /nonexistent-redline//./ttyX1, baud: 115200}}"],
                             devices: ["  - {id: occ-b, profile: occupancy-sensor, bus: rtu-a, unit: 2, zone: room}"])
        let d = try Self.errors(text).diagnostics
        #expect(d.count == 1 && d[0].message.contains("is on the same serial line"), "\(d)")
    }

    @Test func gpioChipSpelledByNumberIsTheSameChip() throws {
        let text = Self.site(buses: ["  - {id: gpio-n, gpio: {chip: \"0\"}}"],
                             devices: ["  - {id: door,   profile: gpio-door-interface, bus: gpio,   zone: room, lines: {lock: 5, contact: 6}}",
                                       "  - {id: door-b, profile: gpio-door-interface, bus: gpio-n, zone: room, lines: {lock: 5, contact: 7}}"])
        let (file, d) = try Self.errors(text)
        #expect(d.count == 1, "\(d)")
        let hit = try #require(d.first)
        #expect(hit.message.contains("point door-b.lock overlaps door.lock: both at line 5 of one physical endpoint"), "\(hit)")
        #expect(String(try FixtureTests.text(file, line: hit.line, column: hit.column)).hasPrefix("door-b"))
    }

    @Test func gpioLineNameOnOneChipSpelledTwiceIsRefused() throws {
        let text = Self.site(buses: ["  - {id: gpio-p, gpio: {chip: /dev/gpiochip0}}"],
                             devices: ["  - {id: door,   profile: gpio-door-interface, bus: gpio,   zone: room, lines: {lock: relay-1, contact: 6}}",
                                       "  - {id: door-b, profile: gpio-door-interface, bus: gpio-p, zone: room, lines: {lock: relay-1, contact: 7}}"])
        let d = try Self.errors(text).diagnostics
        #expect(d.count == 1 && d[0].message.contains("both at line named 'relay-1' of one physical endpoint"), "\(d)")
    }
}
