import Foundation
import Testing
import RedlineConfig
import RedlineCore

#if canImport(Glibc)
import Glibc
#endif

/// Issue 12, device profiles of the installed package: the packaged ones in
/// /usr/share/redline/devices, local ones in /etc/redline/devices; a local profile replaces the
/// packaged one of the same `name:` (as /etc wins over /usr for systemd units), a broken local
/// profile is an error (never a silent fall-back), and a site in /etc/redline reads both.
@Suite("Issue 12: packaged and local device profiles")
struct ProfileFoldersTests {
    struct Layout {
        var root: URL
        var packaged: String
        var local: String
        var site: String
    }

    /// `etc/redline/site.yaml` (the demo site), `usr/share/redline/devices` (the demo profiles) and
    /// an empty `etc/redline/devices`, under a fresh temporary folder.
    static func layout() throws -> Layout {
        let fm = FileManager.default
        let root = fm.temporaryDirectory.appendingPathComponent("redline-profiles-\(UUID().uuidString)")
        let packaged = root.appendingPathComponent("usr/share/redline/devices").path
        let etc = root.appendingPathComponent("etc/redline").path
        try fm.createDirectory(atPath: packaged, withIntermediateDirectories: true)
        try fm.createDirectory(atPath: etc + "/devices", withIntermediateDirectories: true)
        for name in try fm.contentsOfDirectory(atPath: devicesDir) where name.hasSuffix(".yaml") {
            try fm.copyItem(atPath: devicesDir + "/" + name, toPath: packaged + "/" + name)
        }
        try fm.copyItem(atPath: demoSite, toPath: etc + "/site.yaml")
        return Layout(root: root, packaged: packaged, local: etc + "/devices", site: etc + "/site.yaml")
    }

    static func lightsAddress(_ site: Site) -> Int? {
        guard case .modbus(_, let address, _, _)? = site.points.first(where: { $0.id == "office-lights.on" })?.binding
        else { return nil }
        return address
    }

    @Test func localProfileReplacesThePackagedOneOfTheSameName() throws {
        let l = try Self.layout()
        defer { try? FileManager.default.removeItem(at: l.root) }
        let packagedOnly = try SiteLoader.load(siteFile: l.site, devicesDir: l.packaged, localDevicesDir: l.local)
        // A local lighting-relay wired to coil 7 (file name differs on purpose: the name inside counts).
        try "profile: lighting-relay\ndescription: Local relay board\npoints:\n  - {name: on, role: general-output, table: coil, address: 7}\n"
            .write(toFile: l.local + "/our-relay.yaml", atomically: true, encoding: .utf8)
        let loaded = try SiteLoader.loadWithFiles(siteFile: l.site, devicesDir: l.packaged, localDevicesDir: l.local)
        #expect(Self.lightsAddress(packagedOnly) == 0)
        #expect(Self.lightsAddress(loaded.site) == 7)
        // Other profiles still come from the packaged folder; both files are reported (and checked).
        #expect(loaded.site.points.contains { $0.id == "sra-door.lock" })
        #expect(loaded.files.contains(l.local + "/our-relay.yaml"))
        #expect(loaded.files.contains(l.packaged + "/lighting-relay.yaml"))
        #expect(loaded.folders.contains(l.local))
    }

    @Test func brokenLocalProfileIsAnErrorNotAFallback() throws {
        let l = try Self.layout()
        defer { try? FileManager.default.removeItem(at: l.root) }
        try "profile: lighting-relay\npoints:\n  - {name: on, role: no-such-role, table: coil, address: 7}\n"
            .write(toFile: l.local + "/lighting-relay.yaml", atomically: true, encoding: .utf8)
        let e = #expect(throws: ConfigErrors.self) {
            try SiteLoader.load(siteFile: l.site, devicesDir: l.packaged, localDevicesDir: l.local)
        }
        #expect(e?.diagnostics.contains { $0.file == l.local + "/lighting-relay.yaml" } == true)
    }

    @Test func twoLocalProfilesOfOneNameAreAnError() throws {
        let l = try Self.layout()
        defer { try? FileManager.default.removeItem(at: l.root) }
        for f in ["a.yaml", "b.yaml"] {
            try "profile: lighting-relay\npoints:\n  - {name: on, role: general-output, table: coil, address: 7}\n"
                .write(toFile: l.local + "/" + f, atomically: true, encoding: .utf8)
        }
        let e = #expect(throws: ConfigErrors.self) {
            try SiteLoader.load(siteFile: l.site, devicesDir: l.packaged, localDevicesDir: l.local)
        }
        #expect(e?.diagnostics.contains { $0.message.contains("duplicate profile 'lighting-relay'") } == true)
    }

    @Test func siteInTheInstalledFolderReadsPackagedAndLocalProfiles() throws {
        let l = try Self.layout()
        defer { try? FileManager.default.removeItem(at: l.root) }
        let etc = (l.site as NSString).deletingLastPathComponent
        let installed = SiteLoader.profileFolders(siteFile: l.site, devicesDir: nil, localDevicesDir: nil,
                                                  installedSiteDir: etc, packaged: l.packaged, local: l.local)
        #expect(installed.devices == l.packaged)
        #expect(installed.local == l.local)
        // Elsewhere: <dir of site>/../Devices and no local folder.
        let other = SiteLoader.profileFolders(siteFile: "/srv/x/Firmware-Configs/site.yaml", devicesDir: nil, localDevicesDir: nil,
                                              installedSiteDir: etc, packaged: l.packaged, local: l.local)
        #expect(other.devices == "/srv/x/Devices")
        #expect(other.local == nil)
        // Given folders are used as given.
        let given = SiteLoader.profileFolders(siteFile: l.site, devicesDir: "/d", localDevicesDir: nil,
                                              installedSiteDir: etc, packaged: l.packaged, local: l.local)
        #expect(given.devices == "/d" && given.local == nil)
        #expect(SiteLoader.profileFolders(siteFile: "/etc/redline/site.yaml", devicesDir: nil, localDevicesDir: nil)
            == ("/usr/share/redline/devices", "/etc/redline/devices"))
    }
}
