import Foundation
import RedlineConfig
import RedlineCore
@testable import RedlineDaemon
import RedlineTestSupport
import Testing

@Suite("Start-up refusals and systemd notification")
struct StartupTests {
    func runDaemon(_ args: [String], timeout: Double = 20) throws -> (status: Int32, stderr: String) {
        let exe = try #require(TestPaths.executable("redlined"))
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = args
        let err = Pipe()
        p.standardError = err
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        let data = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    var root: URL { TestPaths.packageRoot() }

    /// A bound Unix datagram socket, as systemd's notify socket is.
    func datagramSocket(at path: String) throws -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in for (i, b) in path.utf8.enumerated() { raw[i] = b } }
        let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
        guard rc == 0 else { close(fd); throw TestSupportError("cannot bind \(path)") }
        return fd
    }

    @Test("a site writable by group or others is refused, as sshd would")
    func looseModes() throws {
        let dir = TempDir()
        let site = dir.file("site.yaml")
        try FileManager.default.copyItem(atPath: root.appendingPathComponent("Firmware-Configs/demo-datacenter.yaml").path, toPath: site)
        for mode: mode_t in [0o664, 0o666, 0o646] {
            chmod(site, mode)
            let r = try runDaemon(["--config", site, "--devices", root.appendingPathComponent("Devices").path,
                                   "--agent-socket", dir.file("a.sock"), "--operator-socket", dir.file("o.sock"), "--audit", dir.file("audit")])
            #expect(r.status == 78)
            #expect(r.stderr.contains("chmod go-w"), "\(r.stderr)")
        }
        #expect(!FileManager.default.fileExists(atPath: dir.file("a.sock")))
    }

    /// Runs redlined until it exits or `seconds` pass, then stops it: the status is nil if it was still running.
    func runDaemonBriefly(_ args: [String], seconds: Double = 15) throws -> (status: Int32?, stderr: String) {
        let exe = try #require(TestPaths.executable("redlined"))
        let dir = TempDir()
        let errPath = dir.file("stderr")
        #expect(FileManager.default.createFile(atPath: errPath, contents: nil))
        let err = try #require(FileHandle(forWritingAtPath: errPath))
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = args
        p.standardError = err
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        let deadline = Date().addingTimeInterval(seconds)
        while p.isRunning && Date() < deadline { usleep(50_000) }
        let finished = !p.isRunning
        if !finished { p.terminate() }
        p.waitUntilExit()
        try err.close()
        let text = (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? ""
        return (finished ? p.terminationStatus : nil, text)
    }

    /// The demo site with a private copy of Devices/ plus `door.yml`, a profile the site never names.
    func demoWithSpareProfile(_ dir: TempDir) throws -> (site: String, devices: String, door: String) {
        let devices = dir.file("Devices")
        try FileManager.default.createDirectory(atPath: devices, withIntermediateDirectories: true)
        chmod(dir.path, 0o755)
        chmod(devices, 0o755)
        let repoDevices = root.appendingPathComponent("Devices").path
        for name in try FileManager.default.contentsOfDirectory(atPath: repoDevices) where name.hasSuffix(".yaml") {
            try FileManager.default.copyItem(atPath: repoDevices + "/" + name, toPath: devices + "/" + name)
            chmod(devices + "/" + name, 0o644)
        }
        let door = try dir.write("Devices/door.yml", "profile: spare-door\ndescription: A spare door controller\npoints:\n  - {name: lock, role: egress-lock, table: coil, address: 0}\n")
        chmod(door, 0o644)
        let site = dir.file("site.yaml")
        try FileManager.default.copyItem(atPath: root.appendingPathComponent("Firmware-Configs/demo-datacenter.yaml").path, toPath: site)
        chmod(site, 0o644)
        return (site, devices, door)
    }

    @Test func worldWritableProfileWithAnyNameIsRefusedAtStartup() throws {
        // Before issue 11 only DIR/<profile>.yaml of the profiles the site used was checked:
        // a world-writable door.yml was loaded (and its profile trusted) without a word.
        let dir = TempDir()
        let (site, devices, door) = try demoWithSpareProfile(dir)
        chmod(door, 0o666)
        let r = try runDaemonBriefly(["--config", site, "--devices", devices, "--agent-socket", dir.file("a.sock"),
                                      "--operator-socket", dir.file("o.sock"), "--audit", dir.file("audit")])
        #expect(r.status == 78, "\(r.stderr)")
        #expect(r.stderr.contains("chmod go-w \(door)"), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir.file("a.sock")))
    }

    @Test func writableDevicesFolderIsRefusedAtStartup() throws {
        let dir = TempDir()
        let (site, devices, _) = try demoWithSpareProfile(dir)
        chmod(devices, 0o777)
        let r = try runDaemonBriefly(["--config", site, "--devices", devices, "--agent-socket", dir.file("a.sock"),
                                      "--operator-socket", dir.file("o.sock"), "--audit", dir.file("audit")])
        #expect(r.status == 78, "\(r.stderr)")
        #expect(r.stderr.contains("folder \(devices) is writable by anyone (mode 777)") && r.stderr.contains("chmod go-w \(devices)"), "\(r.stderr)")
    }

    @Test("an invalid site is refused with FILE:LINE:COLUMN for each error")
    func invalidSite() throws {
        let dir = TempDir()
        let text = try String(contentsOfFile: root.appendingPathComponent("Firmware-Configs/demo-datacenter.yaml").path, encoding: .utf8)
            .replacingOccurrences(of: "role: fire-alarm", with: "role: fire-alarm")
            .replacingOccurrences(of: "{id: office-1}", with: "{id: office-1, colour: blue}")
        let site = try dir.write("site.yaml", text)
        chmod(site, 0o644)
        let r = try runDaemon(["--config", site, "--devices", root.appendingPathComponent("Devices").path,
                               "--agent-socket", dir.file("a.sock"), "--operator-socket", dir.file("o.sock"), "--audit", dir.file("audit")])
        #expect(r.status == 78)
        #expect(r.stderr.contains("\(site):"), "\(r.stderr)")
        #expect(r.stderr.range(of: #"site\.yaml:\d+:\d+: "#, options: .regularExpression) != nil)
    }

    @Test("the notifier reaches a real datagram socket; without NOTIFY_SOCKET it stays silent")
    func notifier() throws {
        let dir = TempDir()
        let path = dir.file("notify")
        let fd = try datagramSocket(at: path)
        defer { close(fd) }
        let n = SystemdNotifier(environment: ["NOTIFY_SOCKET": path])
        #expect(n.send("READY=1"))
        var buf = [UInt8](repeating: 0, count: 64)
        let got = recv(fd, &buf, 64, Int32(MSG_DONTWAIT))
        #expect(got > 0 && String(decoding: buf[..<max(got, 0)], as: UTF8.self) == "READY=1")
        #expect(!SystemdNotifier(environment: [:]).send("READY=1"))
    }

    @Test("redlined sends READY=1 after its first scan and WATCHDOG=1 while scanning")
    func readyAndWatchdog() throws {
        let dir = TempDir()
        chmod(dir.path, 0o755)
        let (site, _) = try TestSites.withFreePorts(root.appendingPathComponent("Firmware-Configs/demo-datacenter.yaml").path, in: dir)
        chmod(site, 0o644)
        let sim = try SimProcess(siteFile: site, devicesDir: root.appendingPathComponent("Devices").path, controlPath: dir.file("sim.sock"))
        defer { sim.stop() }
        let path = dir.file("notify")
        let fd = try datagramSocket(at: path)
        defer { close(fd) }
        var tv = timeval(tv_sec: 15, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        let exe = try #require(TestPaths.executable("redlined"))
        var env = ProcessInfo.processInfo.environment
        env["NOTIFY_SOCKET"] = path
        env["WATCHDOG_USEC"] = "400000"
        let d = try ChildProcess(executable: exe, arguments: [
            "--config", site, "--devices", root.appendingPathComponent("Devices").path,
            "--agent-socket", dir.file("a.sock"), "--operator-socket", dir.file("o.sock"), "--audit", dir.file("audit"),
        ], logPath: dir.file("d.log"), environment: env)
        defer { d.stop() }
        var messages: [String] = []
        var buf = [UInt8](repeating: 0, count: 256)
        while messages.filter({ $0 == "WATCHDOG=1" }).count < 3 {
            let n = recv(fd, &buf, 256, 0)
            guard n > 0 else { break }
            messages.append(String(decoding: buf[..<n], as: UTF8.self))
        }
        #expect(messages.first?.hasPrefix("READY=1") == true, "\(messages)")
        #expect(messages.filter { $0 == "WATCHDOG=1" }.count >= 3)
    }
}

@Suite("Start-up refusal: an agent in an operator group")
struct OperatorSeparationStartupTests {
    @Test func agentInAnOperatorGroupStopsTheDaemonWithExit78() throws {
        let site = Site(name: "s", zones: [Zone(id: "z")], points: [],
                        agents: [Agent(name: "facilities-agent", uid: 2001, read: [], write: [])],
                        operators: [Operator(gid: 3000)])
        let accounts = AccountDatabase(users: [.init(name: "fa", uid: 2001, gid: 2001)],
                                       groups: [.init(name: "redline-operators", gid: 3000, members: ["fa"])])
        do {
            try RedlineDaemon.checkOperatorSeparation(site, accounts: accounts)
            Issue.record("an agent in the operator group was accepted")
        } catch {
            #expect(error.exitCode == 78)
            #expect(error.message.contains("agent 'facilities-agent' (uid 2001, user 'fa') is a member of operator group 'redline-operators' (gid 3000)"), "\(error)")
        }
        let clean = AccountDatabase(users: [.init(name: "fa", uid: 2001, gid: 2001)], groups: [.init(name: "redline-operators", gid: 3000, members: [])])
        #expect(throws: Never.self) { try RedlineDaemon.checkOperatorSeparation(site, accounts: clean) }
    }
}
