import Foundation
import Testing
import RedlineConfig
import RedlineCore

/// Issue 11, "decide on what will be written": a profile whose encoding cannot carry what the
/// policy decides on is refused. Each test names the hole it closes; all use only
/// `SiteLoader.loadProfiles`, so they run unchanged against the code before the fix.
@Suite("Issue 11: scales the policy cannot trust are refused")
struct ScaleValidationTests {
    static func errors(_ fixture: String) -> [ConfigDiagnostic] {
        let dir = FixtureTests.fixtures.appendingPathComponent("profiles/\(fixture)").path
        do {
            _ = try SiteLoader.loadProfiles(devicesDir: dir)
            return []
        } catch {
            return error.diagnostics
        }
    }

    @Test func zeroScaleIsRefused() {
        #expect(Self.errors("scale-zero").contains { $0.message.contains("scale 0 is not usable") })
    }

    @Test func negativeScaleIsRefused() {
        let d = Self.errors("scale-negative")
        #expect(d.count == 1 && d[0].line == 4 && d[0].column == 94, "\(d)")
        #expect(d.first?.message.contains("scale -1 is not usable") == true, "\(d)")
    }

    @Test func setpointScaleThatWrites32As32Point2IsRefused() {
        let d = Self.errors("scale-inexact")
        #expect(d.count == 1, "\(d)")
        #expect(d.first?.message.contains("32 °C would be written as 32.2 °C") == true, "\(d)")
    }

    @Test func setpointScaleThatWrites27As28IsRefused() {
        let d = Self.errors("scale-coarse")
        #expect(d.contains { $0.line == 4 && $0.message.contains("27 °C would be written as 28 °C") }, "\(d)")
        // A boolean register with scale 2 would turn "run" (1) into 2.
        #expect(d.contains { $0.line == 5 && $0.message.contains("1 would be written as 2") }, "\(d)")
    }

    @Test func setpointScalesThatCarryTheLimitsExactlyLoad() throws {
        for scale in ["0.1", "0.5", "1", "0.01"] {
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("redline-scale-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: dir) }
            try "profile: p\ndescription: d\npoints:\n  - {name: sp, role: temperature-setpoint, table: holding-register, address: 0, scale: \(scale)}\n"
                .write(to: dir.appendingPathComponent("p.yaml"), atomically: true, encoding: .utf8)
            #expect(throws: Never.self, "scale \(scale)") { try SiteLoader.loadProfiles(devicesDir: dir.path) }
        }
    }
}
