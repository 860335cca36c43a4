import Foundation
import PropertyBased
import Testing
import RedlineConfig
import RedlineCore

/// Property (d): no configuration accepted by the loader widens an envelope.
@Suite("Property (d): configs never widen an envelope")
struct EnvelopePropertyTests {
    /// Writable roles with a table that can carry them.
    static let roles: [(Role, String)] = [
        (.temperatureSetpoint, "holding-register"), (.dispatchDelay, "holding-register"),
        (.egressLock, "coil"), (.coolingRun, "coil"), (.exhaustRun, "coil"), (.annunciator, "coil"),
        (.generalOutput, "holding-register"), (.suppressionInhibit, "coil"),
    ]

    /// A value from 20 % below to 20 % above the role's envelope, on a grid of 1/40 of its width.
    static func value(_ role: Role, _ step: Int?) -> Double? {
        guard let step else { return nil }
        let env = role.envelope
        return env.lowerBound + (env.upperBound - env.lowerBound) * Double(step) / 40
    }

    static func yaml(_ v: Double) -> String { fmt(v) }

    /// Writes a profile and a site (the site's YAML text carries `limits:`), loads the site with the default devices folder.
    static func load(role: Role, table: String, profile: (Double?, Double?), site: (Double?, Double?)) throws -> (Result<Site, ConfigErrors>, String) {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("redline-prop-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        let devices = root.appendingPathComponent("Devices"), configs = root.appendingPathComponent("Firmware-Configs")
        try FileManager.default.createDirectory(at: devices, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: configs, withIntermediateDirectories: true)
        var point = "  - {name: out, role: \(role.rawValue), table: \(table), address: 0"
        if let lo = profile.0 { point += ", min: \(yaml(lo))" }
        if let hi = profile.1 { point += ", max: \(yaml(hi))" }
        point += "}\n"
        try ("profile: gen\ndescription: generated\npoints:\n" + point + "  - {name: occupied, role: occupancy, table: discrete-input, address: 0}\n"
             // Every zone needs an alarm source.
             + "  - {name: alarm, role: fire-alarm, table: discrete-input, address: 1}\n")
            .write(to: devices.appendingPathComponent("gen.yaml"), atomically: true, encoding: .utf8)
        var limits = ""
        if site.0 != nil || site.1 != nil {
            var parts: [String] = []
            if let lo = site.0 { parts.append("min: \(yaml(lo))") }
            if let hi = site.1 { parts.append("max: \(yaml(hi))") }
            limits = ", limits: {out: {\(parts.joined(separator: ", "))}}"
        }
        let text = """
            site: generated
            zones:
              - {id: room}
            buses:
              - {id: bus, modbus-tcp: {host: 127.0.0.1, port: 15020}}
            devices:
              - {id: dev, profile: gen, bus: bus, unit: 1, zone: room\(limits)}
            agents:
              - {name: agent, uid: 3000, read: ["*"], write: ["dev.out"]}

            """
        let file = configs.appendingPathComponent("site.yaml").path
        try text.write(toFile: file, atomically: true, encoding: .utf8)
        do {
            return (.success(try SiteLoader.load(siteFile: file)), text)
        } catch {
            return (.failure(error), text)
        }
    }

    @Test("accepted configs stay inside the envelope; every widening config is rejected")
    func neverWidens() async throws {
        let step = Gen.int(in: -8...48).optional(valueRate: 0.7)
        await propertyCheck(count: 300, input: Gen.int(in: 0...(Self.roles.count - 1)), step, step, step, step) { r, pl, ph, sl, sh in
            let (role, table) = Self.roles[r]
            let profile = (Self.value(role, pl), Self.value(role, ph))
            let site = (Self.value(role, sl), Self.value(role, sh))
            let env = role.envelope
            let given = [profile.0, profile.1, site.0, site.1].compactMap { $0 }
            let widens = given.contains { !env.contains($0) }
            let (result, text) = try Self.load(role: role, table: table, profile: profile, site: site)
            switch result {
            case .success(let loaded):
                #expect(!widens, "accepted a widening config:\n\(text)")
                let p = try #require(loaded.point("dev.out"))
                #expect(env.contains(p.writeRange.lowerBound) && env.contains(p.writeRange.upperBound))
                #expect((p.min ?? env.lowerBound) >= env.lowerBound, "min \(String(describing: p.min)) of \(role)")
                #expect((p.max ?? env.upperBound) <= env.upperBound, "max \(String(describing: p.max)) of \(role)")
                // A site only narrows its profile.
                if let lo = profile.0 { #expect(p.writeRange.lowerBound >= lo) }
                if let hi = profile.1 { #expect(p.writeRange.upperBound <= hi) }
                for (lo, hi) in [(profile.0, profile.1), (site.0, site.1)] {
                    if let lo, let hi { #expect(lo <= hi) }
                }
            case .failure(let errors):
                if widens {
                    // Rejected, and the diagnostic names the envelope wherever the widening value can be
                    // checked: in the profile, or in the site when its profile loaded.
                    let profileWidens = [profile.0, profile.1].compactMap { $0 }.contains { !env.contains($0) }
                    let profileLoads = !profileWidens && (profile.0 ?? env.lowerBound) <= (profile.1 ?? env.upperBound)
                    if profileWidens || profileLoads {
                        #expect(errors.diagnostics.contains { $0.message.contains("the compiled envelope of \(role.rawValue)") },
                                "\(errors)\n\(text)")
                    }
                } else {
                    // Rejected without widening: only for an empty or profile-widening range.
                    #expect(errors.diagnostics.allSatisfy { $0.message.contains("below min") || $0.message.contains("is empty") || $0.message.contains("widens the profile's range") },
                            "\(errors)\n\(text)")
                }
            }
        }
    }
}
