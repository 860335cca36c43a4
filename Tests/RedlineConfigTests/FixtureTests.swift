import Foundation
import Testing
import RedlineConfig
import RedlineCore

/// One broken file per error class; each asserts the exact FILE:LINE:COLUMN of every diagnostic,
/// and that the file's text at that position is the offending node.
@Suite("Config errors: exact positions")
struct FixtureTests {
    struct Expected: Sendable, CustomStringConvertible {
        var line: Int
        var column: Int
        /// The text that starts at line:column (the offending node).
        var token: String
        /// A fragment of the message.
        var message: String
        var description: String { "\(line):\(column) \(token) \(message)" }
    }

    static func e(_ line: Int, _ column: Int, _ token: String, _ message: String) -> Expected {
        Expected(line: line, column: column, token: token, message: message)
    }

    static let fixtures: URL = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!

    /// Site files checked against the repository's Devices/.
    static let siteCases: [(String, [Expected])] = [
        ("unknown-key", [e(11, 5, "{", "device is missing 'zone'"), e(11, 65, "zonee", "unknown key 'zonee' in device (did you mean 'zone'?")]),
        ("duplicate-zone", [e(6, 10, "room", "duplicate zone id 'room' (first declared at 5:10)")]),
        ("duplicate-bus", [e(8, 10, "bus-a", "duplicate bus id 'bus-a' (first declared at 7:10)")]),
        ("duplicate-device", [e(13, 10, "occ", "duplicate device id 'occ' (first declared at 11:10)")]),
        ("duplicate-agent-name", [e(18, 12, "agent-a", "duplicate agent name 'agent-a'")]),
        ("duplicate-uid", [e(18, 26, "2001", "uid 2001 is listed twice")]),
        ("duplicate-key", [e(16, 5, "uid", "'uid' appears more than once in this mapping (first at 15:5)")]),
        ("agent-is-operator", [e(15, 10, "0", "uid 0 is an operator")]),
        ("unknown-profile", [e(12, 26, "crac-unti", "unknown profile 'crac-unti'")]),
        ("unknown-bus", [e(11, 49, "bus-b", "unknown bus 'bus-b'")]),
        ("unknown-zone", [e(12, 71, "rooom", "unknown zone 'rooom'")]),
        ("unknown-device", [e(17, 23, "\"crac-9.run\"", "names unknown device 'crac-9'")]),
        ("overlapping-registers", [
            e(13, 10, "crac-b", "point crac-b.run overlaps crac.run: both at bus 'bus-a' unit 3 coil 0"),
            e(13, 10, "crac-b", "point crac-b.setpoint overlaps crac.setpoint: both at bus 'bus-a' unit 3 holding-register 0"),
            e(13, 10, "crac-b", "point crac-b.fault overlaps crac.fault: both at bus 'bus-a' unit 3 discrete-input 0"),
        ]),
        ("envelope-widened", [
            e(12, 102, "10", "crac.setpoint min 10 is wider than the compiled envelope of temperature-setpoint (15-32)"),
            e(12, 111, "35", "crac.setpoint max 35 is wider than the compiled envelope of temperature-setpoint (15-32)"),
        ]),
        ("grant-matches-nothing", [e(16, 17, "\"crac.*pressure\"", "read grant pattern 'crac.*pressure' matches no point")]),
        ("quarantine-loosened", [
            e(20, 25, "5", "quarantine threshold 5 loosens the compiled-in limit of 3"),
            e(20, 38, "60", "quarantine window 60 s loosens the compiled-in window of 600 s"),
        ]),
        ("role-override", [e(10, 81, "roles", "a site cannot change a profile point's role")]),
        ("bus-kind-mismatch", [e(11, 49, "gpio", "profile 'occupancy-sensor' has Modbus points (occupied) but bus 'gpio' is a GPIO bus")]),
        ("gpio-profile-on-modbus-bus", [
            e(13, 52, "bus-a", "profile 'gpio-door-interface' has GPIO line points (lock, contact) but bus 'bus-a' is a Modbus bus"),
            e(13, 80, "lines", "lines apply only to devices on a GPIO bus"),
        ]),
        ("unit-id-broadcast", [e(11, 62, "0", "unit id 0 is the Modbus broadcast address")]),
        ("unit-id-range", [e(11, 62, "248", "unit id 248 is outside 1-247")]),
        ("yaml-syntax", [e(6, 6, ":", "YAML syntax error: did not find expected ',' or '}' (while parsing a flow mapping at 5:5)")]),
        ("wrong-type", [e(7, 53, "\"15020\"", "port must be an integer, not a string ('15020')")]),
        ("stale-after", [e(2, 49, "100", "stale-after-ms (100) must be greater than scan-interval-ms (100)")]),
        // Issue 11: agents by user name.
        ("agent-unknown-user", [e(15, 11, "redline-no-such-user", "unknown user 'redline-no-such-user': no such account in the user database")]),
        // Issue 11: physical identity, not spelling.
        ("aliased-output-behind-localhost", [
            e(16, 10, "sra-lights", "point sra-lights.on overlaps sra-door.lock: both at unit 1 coil 0 of one physical endpoint, this host (loopback) port 15024: bus 'lights-io' (localhost:15024) and bus 'sra-door-io' (127.0.0.1:15024) reach the same device"),
        ]),
        // Issue 11: the compiled-in timing envelope, and an alarm source for every zone.
        ("scan-interval-loosened", [e(2, 28, "60000", "scan-interval-ms 60000 loosens the compiled-in maximum of 1000 ms")]),
        ("stale-after-loosened", [e(2, 50, "600000", "stale-after-ms 600000 loosens the compiled-in maximum of 5000 ms")]),
        ("bus-timeout-loosened", [e(7, 73, "60000", "bus 'bus-a' timeout-ms 60000 is not below the stale window (stale-after-ms 500)")]),
        ("zone-without-alarm", [e(5, 10, "room", "zone 'room' has no alarm source")]),
        ("approval-loosened", [e(21, 32, "86400", "approval timeout-s 86400 loosens the compiled-in maximum of 3600 s (1 hour)")]),
        ("rtu-too-slow", [e(8, 56, "1200", "bus 'rs485' cannot sustain scan-interval-ms 100 at 1200 baud: one scan takes at least")]),
    ]

    /// Profile folders checked with `loadProfiles`: (folder, file, expected).
    static let profileCases: [(String, String, [Expected])] = [
        ("unknown-role", "test-device.yaml", [e(5, 25, "smoke-alarm", "unknown role 'smoke-alarm'")]),
        ("duplicate-point", "test-device.yaml", [e(5, 12, "run", "duplicate point name 'run' (first declared at 4:5)")]),
        ("duplicate-profile", "b.yaml", [e(2, 10, "test-device", "duplicate profile 'test-device'")]),
        ("overlapping-registers", "test-device.yaml", [e(5, 5, "{", "point 'stop' overlaps point 'run' at coil 0")]),
        ("role-table-mismatch", "test-device.yaml", [e(4, 44, "discrete-input", "role egress-lock is an output but discrete-input is read-only by protocol")]),
        ("numeric-on-bit", "test-device.yaml", [e(4, 57, "coil", "role temperature-setpoint carries numbers but coil carries only 0 or 1")]),
        ("envelope-widened", "test-device.yaml", [
            e(4, 113, "45", "point 'setpoint' max 45 is wider than the compiled envelope of temperature-setpoint (15-32)"),
            e(5, 83, "-5", "point 'delay' min -5 is wider than the compiled envelope of dispatch-delay (0-600)"),
        ]),
        ("wrong-type", "test-device.yaml", [
            e(4, 58, "zero", "address must be an integer, not a string ('zero')"),
            e(5, 95, "yes-please", "signed must be true or false"),
        ]),
        ("unknown-key", "test-device.yaml", [e(4, 5, "{", "a point with a table needs an address"), e(4, 49, "adress", "unknown key 'adress' in profile point")]),
        // Issue 11: decide on what will be written.
        ("scale-zero", "test-device.yaml", [e(4, 94, "0", "scale 0 is not usable: engineering value = raw x scale needs a scale above 0")]),
        ("scale-negative", "test-device.yaml", [e(4, 94, "-1", "scale -1 is not usable")]),
        ("scale-inexact", "test-device.yaml", [
            e(4, 94, "0.7", "cannot carry the compiled-in limits exactly with scale 0.7: 15 °C would be written as 14.7 °C, 27 °C would be written as 27.3 °C, 32 °C would be written as 32.2 °C"),
        ]),
        ("scale-coarse", "test-device.yaml", [
            e(4, 94, "2", "cannot carry the compiled-in limits exactly with scale 2: 15 °C would be written as 16 °C, 27 °C would be written as 28 °C"),
            e(5, 80, "2", "point 'run' (cooling-run) carries only 0 and 1, but with scale 2: 1 would be written as 2; use scale 1"),
        ]),
    ]

    /// The text of `file` starting at a 1-based line and column (in Unicode scalars, as libyaml counts).
    static func text(_ file: String, line: Int, column: Int) throws -> Substring.UnicodeScalarView {
        let lines = try String(contentsOfFile: file, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false)
        let l = try #require(lines.count >= line ? lines[line - 1] : nil, "\(file) has no line \(line)")
        let scalars = l.unicodeScalars
        let start = try #require(scalars.index(scalars.startIndex, offsetBy: column - 1, limitedBy: scalars.endIndex))
        return scalars[start...]
    }

    static func assertExact(_ got: [ConfigDiagnostic], file: String, _ expected: [Expected]) throws {
        #expect(got.count == expected.count, "\(got.map(\.description))")
        for x in expected {
            let match = got.first { $0.file == file && $0.line == x.line && $0.column == x.column && $0.message.contains(x.message) }
            #expect(match != nil, "expected \(file):\(x) in \(got.map(\.description))")
            #expect(String(try text(file, line: x.line, column: x.column)).hasPrefix(x.token), "\(file):\(x.line):\(x.column) is not '\(x.token)'")
            if let match { #expect(match.description == "\(file):\(x.line):\(x.column): \(match.message)") }
        }
    }

    /// The site fixture `sites/NAME.yaml` (on the repository's Devices/) gives exactly `expected`.
    static func checkSite(_ name: String, _ expected: [Expected]) throws {
        let file = fixtures.appendingPathComponent("sites/\(name).yaml").path
        try assertExact(diagnostics(site: file), file: file, expected)
    }

    /// The profile folder fixture `profiles/NAME` fails to load with exactly `expected` in `fileName`,
    /// and a site on it fails too: the daemon never starts on a broken Devices folder.
    static func checkProfiles(_ name: String, file fileName: String, _ expected: [Expected]) throws {
        let dir = fixtures.appendingPathComponent("profiles/\(name)").path
        do {
            _ = try SiteLoader.loadProfiles(devicesDir: dir)
            Issue.record("\(name) loaded")
        } catch {
            try assertExact(error.diagnostics, file: dir + "/" + fileName, expected)
        }
        #expect(!diagnostics(site: fixtures.appendingPathComponent("sites/valid.yaml").path, devices: dir).isEmpty)
    }

    @Test("a broken site reports its error class at the exact position", arguments: siteCases.map(\.0))
    func site(_ name: String) throws {
        try Self.checkSite(name, try #require(Self.siteCases.first { $0.0 == name }?.1))
    }

    @Test("a broken profile reports its error class at the exact position", arguments: profileCases.map(\.0))
    func profile(_ name: String) throws {
        let (_, fileName, expected) = try #require(Self.profileCases.first { $0.0 == name })
        try Self.checkProfiles(name, file: fileName, expected)
    }

    @Test("the valid base of the fixtures loads")
    func validBase() throws {
        let site = try SiteLoader.load(siteFile: Self.fixtures.appendingPathComponent("sites/valid.yaml").path, devicesDir: devicesDir)
        #expect(site.name == "fixture")
        #expect(site.points.count == 10)
    }

    @Test("a file with several errors reports every one of them, in order")
    func severalErrors() throws {
        let file = Self.fixtures.appendingPathComponent("sites/several-errors.yaml").path
        let got = diagnostics(site: file)
        let expected = [
            Self.e(2, 49, "50", "stale-after-ms (50) must be greater than scan-interval-ms (100)"),
            Self.e(6, 10, "room", "duplicate zone id 'room'"),
            Self.e(11, 71, "lobby", "unknown zone 'lobby'"),
            Self.e(12, 62, "0", "unit id 0 is the Modbus broadcast address"),
            Self.e(18, 23, "\"crac.nothing\"", "write grant pattern 'crac.nothing' matches no point"),
            Self.e(21, 25, "4", "quarantine threshold 4 loosens"),
        ]
        try Self.assertExact(got, file: file, expected)
        #expect(got.map(\.line) == expected.map(\.line))
    }

    @Test("a missing site file or devices folder is an error, not a crash")
    func missingFiles() {
        let nowhere = "/nonexistent/redline/site.yaml"
        let d = diagnostics(site: nowhere)
        #expect(d.contains { $0.file == nowhere && $0.message.contains("cannot read file") })
        let d2 = diagnostics(site: demoSite, devices: "/nonexistent/redline/Devices")
        #expect(d2.contains { $0.file == "/nonexistent/redline/Devices" && $0.message.contains("cannot read the devices folder") })
    }
}

@Suite("Config errors: more variants")
struct VariantTests {
    static let base = try! String(contentsOf: FixtureTests.fixtures.appendingPathComponent("sites/valid.yaml"), encoding: .utf8)

    static func check(_ replace: String, with new: String, expect fragment: String, at token: String) throws {
        #expect(base.contains(replace))
        let file = try temporaryFile(base.replacingOccurrences(of: replace, with: new))
        let d = diagnostics(site: file)
        #expect(d.count == 1, "\(d)")
        let hit = try #require(d.first { $0.message.contains(fragment) }, "\(d)")
        #expect(hit.file == file)
        #expect(String(try FixtureTests.text(file, line: hit.line, column: hit.column)).hasPrefix(token), "\(hit)")
    }

    @Test("every way of redefining a profile point's role is refused", arguments: [
        ("roles: {alarm: general-output}", "roles"),
        ("role: general-output", "role"),
        ("points: {alarm: {role: general-output}}", "points"),
        ("overrides: {alarm: general-output}", "overrides"),
        ("limits: {silence: {role: general-output}}", "role"),
    ])
    func roleOverride(syntax: String, token: String) throws {
        try Self.check("unit: 1, zone: building}", with: "unit: 1, zone: building, \(syntax)}",
                       expect: "cannot change a profile point's role", at: token)
    }

    @Test("Modbus RTU settings are checked")
    func rtu() throws {
        try Self.check("  - {id: gpio, gpio: {chip: gpiochip0}}",
                       with: "  - {id: rs485, modbus-rtu: {device: /dev/ttyS1, baud: 19200, parity: X, data-bits: 8, stop-bits: 1}}",
                       expect: "parity must be N, E or O", at: "X")
        try Self.check("  - {id: gpio, gpio: {chip: gpiochip0}}",
                       with: "  - {id: rs485, modbus-rtu: {device: /dev/ttyS1, stop-bits: 3}}",
                       expect: "stop-bits 3 is outside 1-2", at: "3")
        let file = try temporaryFile(Self.base.replacingOccurrences(
            of: "  - {id: gpio, gpio: {chip: gpiochip0}}",
            with: "  - {id: rs485, modbus-rtu: {device: /dev/ttyS1, baud: 9600, parity: N, data-bits: 8, stop-bits: 2}, timeout-ms: 400}"))
        let site = try SiteLoader.load(siteFile: file, devicesDir: devicesDir)
        let bus = try #require(site.buses.first { $0.id == "rs485" })
        #expect(bus.kind == .modbusRTU(SerialSettings(device: "/dev/ttyS1", baud: 9600, parity: "N", dataBits: 8, stopBits: 2)))
        #expect(bus.timeoutMs == 400)  // below the stale window (500)
    }

    @Test("a GPIO chip may be pinned to its label; the label is checked where it is written")
    func gpioChipLabel() throws {
        let bus = "  - {id: gpio, gpio: {chip: gpiochip0}}"
        let file = try temporaryFile(Self.base.replacingOccurrences(
            of: bus, with: "  - {id: gpio, gpio: {chip: gpiochip4, label: pinctrl-rp1}}"))
        let site = try SiteLoader.load(siteFile: file, devicesDir: devicesDir)
        let gpio = try #require(site.buses.first { $0.id == "gpio" })
        #expect(gpio.kind == .gpio(chip: "gpiochip4"))
        #expect(gpio.chipLabel == "pinctrl-rp1")
        // Named by label alone: nothing to pin.
        let byLabel = try SiteLoader.load(siteFile: try temporaryFile(Self.base.replacingOccurrences(
            of: bus, with: "  - {id: gpio, gpio: {chip: pinctrl-rp1}}")), devicesDir: devicesDir)
        #expect(byLabel.buses.first { $0.id == "gpio" }?.chipLabel == nil)
        try Self.check(bus, with: "  - {id: gpio, gpio: {chip: gpiochip0, label: \"\"}}",
                       expect: "label must not be empty", at: "\"\"")
        try Self.check(bus, with: "  - {id: gpio, gpio: {chip: pinctrl-rp1, label: pinctrl-bcm2711}}",
                       expect: "chip 'pinctrl-rp1' is already a label", at: "pinctrl-bcm2711")
        try Self.check(bus, with: "  - {id: gpio, gpio: {chip: gpiochip0, lable: pinctrl-rp1}}",
                       expect: "lable", at: "lable")
    }

    @Test("site limits narrow the profile's range and may not widen it")
    func limits() throws {
        let file = try temporaryFile(Self.base.replacingOccurrences(
            of: "unit: 3, zone: room}", with: "unit: 3, zone: room, limits: {setpoint: {min: 18, max: 26}}}"))
        let site = try SiteLoader.load(siteFile: file, devicesDir: devicesDir)
        #expect(site.point("crac.setpoint")?.writeRange == 18...26)
        // office AHU profile: 16-30; 15 is inside the envelope but wider than the profile.
        try Self.check("unit: 3, zone: room}", with: "unit: 3, zone: room}\n  - {id: ahu, profile: air-handler, bus: bus-a, unit: 4, zone: room, limits: {setpoint: {min: 15}}}",
                       expect: "widens the profile's range (16-30)", at: "15")
        try Self.check("unit: 3, zone: room}", with: "unit: 3, zone: room, limits: {fault: {max: 1}}}",
                       expect: "limits apply only to writable points", at: "fault")
        try Self.check("unit: 3, zone: room}", with: "unit: 3, zone: room, limits: {setpoint: {min: 20, max: 19}}}",
                       expect: "max 19 is below min 20", at: "19")
    }

    @Test("approvals need an operator and matching points")
    func approvals() throws {
        try Self.check("operators:\n  - {uid: 0}\n", with: "approvals:\n  - {points: [\"crac.setpoint\"], timeout-s: 60}\n",
                       expect: "approvals need at least one operator", at: "-")
        try Self.check("operators:\n  - {uid: 0}\n", with: "operators:\n  - {uid: 0}\napprovals:\n  - {points: [\"crac.lock\"], timeout-s: 60}\n",
                       expect: "approval pattern 'crac.lock' matches no point", at: "\"crac.lock\"")
    }

    @Test("a quarantine that tightens is accepted")
    func quarantineTightens() throws {
        let file = try temporaryFile(Self.base + "quarantine: {threshold: 2, window-s: 1200}\n")
        let site = try SiteLoader.load(siteFile: file, devicesDir: devicesDir)
        #expect(site.quarantine == QuarantinePolicy(threshold: 2, windowMs: 1_200_000))
    }
}

@Suite("Config errors: duplicate YAML keys")
struct DuplicateKeyTests {
    @Test("a repeated key is reported where it repeats", arguments: [
        // (text, line, column of the repeat)
        ("site: a\nsite: b\n", 2, 1),
        ("zones:\n  - {id: a, id: b}\n", 2, 13),
        ("agents:\n  - name: a\n    uid: 1\n\n    # comment\n    uid: 2\n", 6, 5),
    ])
    func repeated(text: String, line: Int, column: Int) throws {
        let file = try temporaryFile(text)
        let d = diagnostics(site: file)
        #expect(d.count == 1, "\(d)")
        #expect(d.first?.line == line && d.first?.column == column, "\(d)")
        #expect(d.first?.message.contains("appears more than once") == true)
    }
}
