import Foundation
import Testing
import RedlineConfig
import RedlineCore

#if canImport(Glibc)
import Glibc
#endif

/// Issue 11, "every file the daemon loads is checked": the loader reports every file it read
/// and every folder holding one, and `ConfigFileCheck` refuses any that someone other than
/// root or redlined's user can change, with the command that fixes it.
@Suite("Issue 11: every file the daemon loads is checked", .serialized)
struct ConfigFileTests {
    struct Copy {
        var root: URL
        var site: String
        var devices: String
        var configs: String
    }

    /// A private copy of the demo site and profiles, every folder 0755 and every file 0644,
    /// plus `door.yml`: a profile the site never names, in a file not named after it.
    static func copyOfDemo() throws -> Copy {
        let fm = FileManager.default
        let root = fm.temporaryDirectory.appendingPathComponent("redline-files-\(UUID().uuidString)")
        let devices = root.appendingPathComponent("Devices"), configs = root.appendingPathComponent("Firmware-Configs")
        try fm.createDirectory(at: devices, withIntermediateDirectories: true)
        try fm.createDirectory(at: configs, withIntermediateDirectories: true)
        for name in try fm.contentsOfDirectory(atPath: devicesDir) where name.hasSuffix(".yaml") {
            try fm.copyItem(atPath: devicesDir + "/" + name, toPath: devices.appendingPathComponent(name).path)
        }
        try "profile: spare-door\ndescription: A door controller nobody uses yet\npoints:\n  - {name: lock, role: egress-lock, table: coil, address: 0}\n"
            .write(to: devices.appendingPathComponent("door.yml"), atomically: true, encoding: .utf8)
        let site = configs.appendingPathComponent("site.yaml").path
        try fm.copyItem(atPath: demoSite, toPath: site)
        for d in [root, devices, configs] { chmod(d.path, 0o755) }
        for f in try fm.contentsOfDirectory(atPath: devices.path) { chmod(devices.appendingPathComponent(f).path, 0o644) }
        chmod(site, 0o644)
        return Copy(root: root, site: site, devices: devices.path, configs: configs.path)
    }

    static func problems(_ c: Copy, daemonUID: UInt32 = UInt32(geteuid())) throws -> [String] {
        let loaded = try SiteLoader.loadWithFiles(siteFile: c.site, devicesDir: c.devices)
        return ConfigFileCheck.problems(loaded, daemonUID: daemonUID).map(\.message)
    }

    @Test func loaderReportsEveryFileItRead() throws {
        let c = try Self.copyOfDemo()
        defer { try? FileManager.default.removeItem(at: c.root) }
        let loaded = try SiteLoader.loadWithFiles(siteFile: c.site, devicesDir: c.devices)
        let profiles = try FileManager.default.contentsOfDirectory(atPath: c.devices).sorted().map { c.devices + "/" + $0 }
        #expect(loaded.files == [c.site] + profiles)
        #expect(loaded.files.contains(c.devices + "/door.yml"))
        #expect(loaded.folders == [c.configs, c.devices])
        #expect(try Self.problems(c).isEmpty)
    }

    @Test func worldWritableProfileWithAnyNameIsRefused() throws {
        let c = try Self.copyOfDemo()
        defer { try? FileManager.default.removeItem(at: c.root) }
        let door = c.devices + "/door.yml"
        chmod(door, 0o666)
        let p = try Self.problems(c)
        #expect(p.count == 1, "\(p)")
        #expect(p.first == "file \(door) is writable by anyone (mode 666); a safety configuration must be writable by its owner only: chmod go-w \(door)")
    }

    @Test func groupWritableSiteFileIsRefused() throws {
        let c = try Self.copyOfDemo()
        defer { try? FileManager.default.removeItem(at: c.root) }
        chmod(c.site, 0o664)
        let p = try Self.problems(c)
        #expect(p == ["file \(c.site) is writable by its group (mode 664); a safety configuration must be writable by its owner only: chmod go-w \(c.site)"])
    }

    @Test func writableDevicesFolderIsRefused() throws {
        let c = try Self.copyOfDemo()
        defer { try? FileManager.default.removeItem(at: c.root) }
        // Whoever can write the folder can replace any profile in it.
        chmod(c.devices, 0o777)
        let p = try Self.problems(c)
        #expect(p == ["folder \(c.devices) is writable by anyone (mode 777); a safety configuration must be writable by its owner only: chmod go-w \(c.devices)"])
    }

    @Test func writableSiteFolderIsRefused() throws {
        let c = try Self.copyOfDemo()
        defer { try? FileManager.default.removeItem(at: c.root) }
        chmod(c.configs, 0o775)
        let p = try Self.problems(c)
        #expect(p.count == 1 && p[0].hasSuffix("chmod go-w \(c.configs)"), "\(p)")
    }

    @Test func profileBehindASymlinkIsCheckedWhereItReallyIs() throws {
        let c = try Self.copyOfDemo()
        defer { try? FileManager.default.removeItem(at: c.root) }
        let elsewhere = c.root.appendingPathComponent("shared")
        try FileManager.default.createDirectory(at: elsewhere, withIntermediateDirectories: true)
        chmod(elsewhere.path, 0o777)
        try FileManager.default.moveItem(atPath: c.devices + "/door.yml", toPath: elsewhere.appendingPathComponent("door.yml").path)
        try FileManager.default.createSymbolicLink(atPath: c.devices + "/door.yml", withDestinationPath: elsewhere.appendingPathComponent("door.yml").path)
        let real = try #require(realpath(elsewhere.path, nil).map { p in defer { free(p) }; return String(cString: p) })
        let p = try Self.problems(c)
        #expect(p == ["folder \(real) is writable by anyone (mode 777); a safety configuration must be writable by its owner only: chmod go-w \(real)"])
    }

    @Test func profileOwnedByAnotherUserIsRefused() throws {
        let c = try Self.copyOfDemo()
        defer { try? FileManager.default.removeItem(at: c.root) }
        let door = c.devices + "/door.yml"
        if geteuid() == 0 {
            // As root the ownership itself can be changed: a file of uid 4242 is not root's or redlined's.
            #expect(chown(door, 4242, 4242) == 0)
            let p = try Self.problems(c)
            #expect(p == ["file \(door) is owned by uid 4242, neither root nor redlined's user (uid 0); only they may own a safety configuration: chown root \(door)"])
        } else {
            // Not root: the files are ours; a daemon running as another user must refuse them all.
            let other = UInt32(geteuid()) + 1
            let p = try Self.problems(c, daemonUID: other)
            #expect(p.contains("file \(door) is owned by uid \(geteuid()), neither root nor redlined's user (uid \(other)); only they may own a safety configuration: chown root \(door)"), "\(p)")
        }
    }
}
