import Foundation
import Testing
import RedlineConfig
import RedlineCore

/// Issue 11, "a compiled-in timing envelope, like the value envelopes": a site may tighten the
/// scan interval, the stale window, bus timeouts and approval timeouts, never loosen them;
/// every zone has an alarm source; a serial line must be able to sustain its scan interval.
/// The `…IsRefused` tests use only `SiteLoader.load`, so they run against the code before the fix.
@Suite("Issue 11: the compiled-in timing envelope")
struct TimingEnvelopeTests {
    static let base = VariantTests.base

    static func fixture(_ name: String) -> (String, [ConfigDiagnostic]) {
        let file = FixtureTests.fixtures.appendingPathComponent("sites/\(name).yaml").path
        return (file, diagnostics(site: file))
    }

    /// The single diagnostic of a fixture, and the text at its position.
    static func only(_ name: String) throws -> (ConfigDiagnostic, String) {
        let (file, d) = fixture(name)
        #expect(d.count == 1, "\(d)")
        let hit = try #require(d.first)
        return (hit, String(try FixtureTests.text(file, line: hit.line, column: hit.column)))
    }

    static func errors(_ text: String) throws -> [ConfigDiagnostic] { diagnostics(site: try temporaryFile(text)) }

    @Test func scanIntervalOfAMinuteIsRefused() throws {
        let (d, at) = try Self.only("scan-interval-loosened")
        #expect(at.hasPrefix("60000"))
        #expect(d.message == "scan-interval-ms 60000 loosens the compiled-in maximum of 1000 ms; a site may only tighten the timing envelope (see docs/DESIGN.md §4.4, the timing envelope)")
        // With a stale window longer than the scan, the code before issue 11 accepted a minute's scans.
        let (file, _) = Self.fixture("scan-interval-loosened")
        let d2 = try Self.errors(try String(contentsOfFile: file, encoding: .utf8)
            .replacingOccurrences(of: "stale-after-ms: 5000}", with: "stale-after-ms: 120000}"))
        #expect(d2.map { String($0.message.prefix(44)) } == ["scan-interval-ms 60000 loosens the compiled-", "stale-after-ms 120000 loosens the compiled-i"], "\(d2)")
    }

    @Test func staleWindowOfTenMinutesIsRefused() throws {
        let (d, at) = try Self.only("stale-after-loosened")
        #expect(at.hasPrefix("600000"))
        #expect(d.message.hasPrefix("stale-after-ms 600000 loosens the compiled-in maximum of 5000 ms"))
    }

    @Test func staleWindowOfMoreThanFiveScansIsRefused() throws {
        let d = try Self.errors(Self.base.replacingOccurrences(of: "stale-after-ms: 500}", with: "stale-after-ms: 600}"))
        #expect(d.count == 1 && d[0].message.hasPrefix("stale-after-ms 600 is more than 5 scan intervals (5 x 100 ms = 500 ms), the compiled-in maximum"), "\(d)")
        // Without stale-after-ms the default (500 ms) must fit too.
        let d2 = try Self.errors(Self.base.replacingOccurrences(of: "timing: {scan-interval-ms: 100, stale-after-ms: 500}", with: "timing: {scan-interval-ms: 50}"))
        #expect(d2.count == 1 && d2[0].message.contains("the default stale-after-ms of 500 is more than 5 scan intervals (250 ms)"), "\(d2)")
    }

    @Test func busTimeoutOfAMinuteIsRefused() throws {
        let (d, at) = try Self.only("bus-timeout-loosened")
        #expect(at.hasPrefix("60000"))
        #expect(d.message.contains("timeout-ms 60000 is not below the stale window (stale-after-ms 500)"))
        // The default timeout (200 ms) counts too.
        let d2 = try Self.errors(Self.base.replacingOccurrences(of: "timing: {scan-interval-ms: 100, stale-after-ms: 500}", with: "timing: {scan-interval-ms: 50, stale-after-ms: 200}"))
        #expect(d2.count == 1 && d2[0].message.contains("bus 'bus-a' has the default timeout-ms of 200, which is not below the stale window (stale-after-ms 200)"), "\(d2)")
    }

    @Test func zoneWithoutAlarmSourceIsRefused() throws {
        let (d, at) = try Self.only("zone-without-alarm")
        #expect(at.hasPrefix("room"))
        #expect(d.message.hasPrefix("zone 'room' has no alarm source"))
    }

    @Test func buildingWideAlarmIsEveryZonesAlarmSource() throws {
        // valid.yaml: the room has no alarm input of its own; the building-wide fire panel covers it.
        #expect(try Self.errors(Self.base).isEmpty)
        // A building-wide zone needs a source too: another building-wide zone's alarm, or its own.
        let text = Self.base.replacingOccurrences(of: "  - {id: room}\n", with: "  - {id: room}\n  - {id: campus, building-wide: true}\n")
        #expect(try Self.errors(text).isEmpty)
    }

    @Test func approvalOfADayIsRefused() throws {
        let (d, at) = try Self.only("approval-loosened")
        #expect(at.hasPrefix("86400"))
        #expect(d.message.hasPrefix("approval timeout-s 86400 loosens the compiled-in maximum of 3600 s (1 hour)"))
    }

    @Test func serialBusTooSlowForItsScanIntervalIsRefused() throws {
        let (d, at) = try Self.only("rtu-too-slow")
        #expect(at.hasPrefix("1200"))
        // occupancy (unit 2: 1 read) and crac (unit 3: coil, holding register, discrete input): 4 transactions.
        #expect(d.message.hasPrefix("bus 'rs485' cannot sustain scan-interval-ms 100 at 1200 baud: one scan takes at least 819.17 ms"), "\(d)")
        #expect(d.message.contains("4 read transactions per scan, 32 request + 25 response bytes x 11 bits per character / 1200 baud = 522.5 ms, plus per transaction 2 inter-frame gaps of 3.5 characters = 32.08 ms and 10 ms turnaround"), "\(d)")
    }

    @Test func tighterTimingAndFastEnoughLinesAreAccepted() throws {
        let tight = Self.base
            .replacingOccurrences(of: "timing: {scan-interval-ms: 100, stale-after-ms: 500}", with: "timing: {scan-interval-ms: 50, stale-after-ms: 200}")
            .replacingOccurrences(of: "port: 15020}}", with: "port: 15020}, timeout-ms: 150}")
            + "approvals:\n  - {points: [\"crac.setpoint\"], timeout-s: 3600}\n"
        #expect(try Self.errors(tight).isEmpty)
        // The slow line of the fixture, scanned once a second (819 ms fits in 1000).
        let (file, _) = Self.fixture("rtu-too-slow")
        let slow = try String(contentsOfFile: file, encoding: .utf8)
            .replacingOccurrences(of: "timing: {scan-interval-ms: 100, stale-after-ms: 500}", with: "timing: {scan-interval-ms: 1000, stale-after-ms: 3000}")
        #expect(try Self.errors(slow).isEmpty)
    }

    @Test func checkPrintsTheScanBudgetOfASerialBus() throws {
        let (file, _) = Self.fixture("rtu-too-slow")
        let slow = try String(contentsOfFile: file, encoding: .utf8)
            .replacingOccurrences(of: "timing: {scan-interval-ms: 100, stale-after-ms: 500}", with: "timing: {scan-interval-ms: 1000, stale-after-ms: 3000}")
        let r = try CheckCommandTests.run(["check", try temporaryFile(slow), "--devices", devicesDir])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("scan budget of bus 'rs485': 819.17 ms of the 1000 ms scan interval (4 read transactions per scan"), "\(r.stdout)")
        let bad = try CheckCommandTests.run(["check", file, "--devices", devicesDir])
        #expect(bad.status != 0)
        #expect(bad.stderr.hasPrefix("\(file):8:56: bus 'rs485' cannot sustain scan-interval-ms 100 at 1200 baud"), "\(bad.stderr)")
    }
}
