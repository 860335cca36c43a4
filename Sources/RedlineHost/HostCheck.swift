import Foundation
import RedlineConfig
import RedlineCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// An account as host-check and the generators use it: from the user database, or a bare
/// uid (then its gid is the uid and it has no supplementary groups, as `setpriv --regid` gives).
public struct HostAccount: Sendable, Hashable {
    public var name: String?
    public var uid: UInt32
    public var gid: UInt32
    public var groups: [UInt32]
    /// Whether the user database knows it.
    public var exists: Bool

    /// `spec` is a user name or a numeric uid.
    public static func resolve(_ spec: String, db: AccountDatabase = .system) -> HostAccount? {
        if let uid = UInt32(spec) { return account(uid: uid, db: db) }
        guard let u = db.userNamed(spec) else { return nil }
        return HostAccount(name: u.name, uid: u.uid, gid: u.gid, groups: groupList(u.name, u.gid), exists: true)
    }

    public static func account(uid: UInt32, db: AccountDatabase = .system) -> HostAccount {
        guard let u = db.userWithUID(uid) else { return HostAccount(name: nil, uid: uid, gid: uid, groups: [], exists: false) }
        return HostAccount(name: u.name, uid: u.uid, gid: u.gid, groups: groupList(u.name, u.gid), exists: true)
    }

    /// getgrouplist: the primary group and every group listing the user.
    public static func groupList(_ name: String, _ gid: UInt32) -> [UInt32] {
        var n: Int32 = 64
        while n <= 65536 {
            var list = [gid_t](repeating: 0, count: Int(n))
            var count = n
            if getgrouplist(name, gid_t(gid), &list, &count) >= 0 {
                var out: [UInt32] = []
                for g in list.prefix(Int(count)) where !out.contains(UInt32(g)) { out.append(UInt32(g)) }
                return out
            }
            n = max(count, n * 4)
        }
        return [gid]
    }

    public static func groupName(_ gid: UInt32, db: AccountDatabase = .system) -> String {
        db.groupsWithGID(gid).first?.name ?? "\(gid)"
    }

    public var identity: ProbeIdentity { ProbeIdentity(uid: uid, gid: gid, groups: groups) }
    public var shown: String { name.map { "\($0) (uid \(uid))" } ?? "uid \(uid)" }
}

/// `redlinectl host-check`: tries, as each agent's uid, every way around redlined, and as the
/// service user what redlined needs (docs/THREAT-MODEL.md §4).
public struct HostCheck: Sendable {
    public var siteFile: String
    public var devicesDir: String?
    public var localDevicesDir: String?
    public var serviceUser = "_redline"
    public var agentSocket = SocketPaths.agentDefault
    public var operatorSocket = SocketPaths.operatorDefault
    public var audit = "/var/lib/redline/audit.jsonl"
    public var only: Set<CheckCategory> = Set(CheckCategory.allCases)
    public var connectTimeoutMs = 1000

    public init(siteFile: String, devicesDir: String? = nil, localDevicesDir: String? = nil) {
        self.siteFile = siteFile
        self.devicesDir = devicesDir
        self.localDevicesDir = localDevicesDir
    }

    /// Runs every selected check. Throws when the site does not load or a probe cannot run.
    public func run() throws -> [CheckResult] {
        let loaded: LoadedSite
        do {
            loaded = try SiteLoader.loadWithFiles(siteFile: siteFile, devicesDir: devicesDir, localDevicesDir: localDevicesDir)
        } catch {
            throw ProbeError.system(error.diagnostics.map(\.description).joined(separator: "\n"))
        }
        let site = loaded.site
        let inv = DeviceInventory(site: site)
        let db = AccountDatabase.system
        var results: [CheckResult] = []
        let service = HostAccount.resolve(serviceUser, db: db)

        // The service user reaches every endpoint (so a block seen below is the firewall's).
        if only.contains(.service) {
            if let service {
                let targets = endpointTargets(inv)
                let outcomes = try Prober.run(as: service.identity, targets.map(\.action))
                for (t, o) in zip(targets, outcomes) {
                    results.append(Verdict.mustSucceed(.service, "service user \(service.shown) can connect to \(t.label)", o,
                        fix: "redlined itself cannot reach the device: check that the firewall's meta skuid is \(service.uid), the route, and that the device is on"))
                }
            } else {
                results.append(CheckResult(.service, .skip, "service user can connect to the device endpoints",
                                           detail: "skipped: service user \(serviceUser) not found",
                                           fix: "create the service user, or pass --service-user NAME|UID", unverified: true))
            }
        }
        if only.contains(.network) || only.contains(.service) {
            // A TCP connect proves nothing about a UDP endpoint (a refused connect looks like a
            // block): BACnet/IP endpoints are not probed yet, and say so rather than pass.
            for e in inv.endpoints where e.transport == .udp {
                results.append(CheckResult(.network, .skip, "bus \(e.bus): udp \(e.host):\(e.port) is checked",
                                           detail: "UDP (BACnet/IP) endpoints are not probed by this build; the firewall ruleset covers them",
                                           fix: "check by hand that an agent's uid cannot reach it", unverified: true))
            }
            for u in inv.unresolved {
                results.append(CheckResult(.network, .skip, "bus \(u.bus): \(u.host) is checked", detail: "does not resolve: \(u.reason)",
                                           fix: "fix the host name in the site", unverified: true))
            }
        }

        let daemons = Self.runningDaemons()
        for agent in site.agents {
            let acct = HostAccount.account(uid: agent.uid, db: db)
            let who = "agent \(agent.name) (uid \(agent.uid))"
            var plan: [(action: ProbeAction, judge: (ProbeOutcome) -> CheckResult)] = []

            if only.contains(.network) {
                for t in endpointTargets(inv) {
                    plan.append((t.action, { Verdict.mustFail(.network, "\(who) cannot connect to \(t.label)", $0,
                        fix: "load the firewall: redlinectl firewall \(self.siteFile) > /etc/redline/nftables.conf && nft -f /etc/redline/nftables.conf") }))
                }
            }
            if only.contains(.devices) {
                let nodes = Self.deviceNodes(inv)
                if nodes.isEmpty {
                    results.append(CheckResult(.devices, .skip, "\(who) cannot open device nodes",
                                               detail: "no serial line, gpiochip, /dev/gpiomem or /sys/class/gpio/export on this host"))
                }
                for node in nodes {
                    let owner = Self.ownerGroup(node.path, db: db)
                    plan.append((.open(path: node.path, flags: node.flags), { Verdict.mustFail(.devices, "\(who) cannot open \(node.path)", $0,
                        fix: "redlinectl udev-rules \(self.siteFile) > /etc/udev/rules.d/60-redline.rules && udevadm trigger; keep \(agent.name) out of group \(owner)") }))
                }
            }
            if only.contains(.files) {
                let fm = FileManager.default
                if fm.fileExists(atPath: audit) {
                    plan.append((.open(path: audit, flags: O_RDONLY), { Verdict.mustFail(.files, "\(who) cannot read the audit log \(self.audit)", $0,
                        fix: "chmod 0640 and chown the service user, folder 0750 (StateDirectoryMode=0750)") }))
                    plan.append((.open(path: audit, flags: O_WRONLY | O_APPEND), { Verdict.mustFail(.files, "\(who) cannot write the audit log \(self.audit)", $0,
                        fix: "the audit log must be writable by the service user only") }))
                } else {
                    results.append(CheckResult(.files, .skip, "\(who) cannot read or write the audit log", detail: "\(audit) does not exist"))
                }
                let auditDir = (audit as NSString).deletingLastPathComponent
                var folders = loaded.folders
                if fm.fileExists(atPath: auditDir), !folders.contains(auditDir) { folders.append(auditDir) }
                for f in loaded.files {
                    plan.append((.open(path: f, flags: O_WRONLY), { Verdict.mustFail(.files, "\(who) cannot write \(f)", $0,
                        fix: "chown root:root and chmod 0644 \(f)") }))
                }
                for d in folders {
                    plan.append((.access(path: d, mode: W_OK), { Verdict.mustFail(.files, "\(who) cannot create or replace files in \(d)/", $0,
                        fix: "chown root and chmod 0755 (or 0750) \(d)") }))
                }
            }
            if only.contains(.daemon) {
                if daemons.isEmpty {
                    results.append(CheckResult(.daemon, .skip, "\(who) cannot signal or trace redlined", detail: "no redlined running"))
                }
                for pid in daemons {
                    plan.append((.signal(pid: pid), { Verdict.mustFail(.daemon, "\(who) cannot signal redlined (pid \(pid))", $0,
                        fix: "run redlined as its own service user, never as an agent's uid") }))
                    plan.append((.ptrace(pid: pid), { Verdict.mustFail(.daemon, "\(who) cannot ptrace redlined (pid \(pid))", $0,
                        fix: "run redlined as its own user; set kernel.yama.ptrace_scope=2") }))
                }
            }
            if only.contains(.sockets) {
                plan.append((.unixConnect(path: agentSocket, readLineMs: nil), { o in
                    if case .failed(let e) = o, e == ENOENT {
                        return CheckResult(.sockets, .skip, "\(who) can connect to the agent socket \(self.agentSocket)",
                                           detail: "no such socket (redlined not running?)", unverified: true)
                    }
                    return Verdict.mustSucceed(.sockets, "\(who) can connect to the agent socket \(self.agentSocket)", o,
                        fix: "usermod -aG redline-agents \(acct.name ?? agent.name) (redlined --agent-group redline-agents)")
                }))
                plan.append((.unixConnect(path: operatorSocket, readLineMs: 2000), {
                    Verdict.operatorRefusal("\(who) is refused on the operator socket \(self.operatorSocket)", $0,
                        fix: "remove \(agent.name) from the operator group and from operators: in the site")
                }))
            }
            if !plan.isEmpty {
                let outcomes = try Prober.run(as: acct.identity, plan.map(\.action))
                for (p, o) in zip(plan, outcomes) { results.append(p.judge(o)) }
            }
            if only.contains(.groups) {
                var serviceGroups: [(name: String, gid: UInt32)] = []
                if let service, service.exists { serviceGroups.append((HostAccount.groupName(service.gid, db: db), service.gid)) }
                let groups: [(name: String, gid: UInt32)]? = acct.exists
                    ? acct.groups.map { (HostAccount.groupName($0, db: db), $0) } : nil
                results += Verdict.groups(agent: agent.name, uid: agent.uid, groups: groups, serviceGroups: serviceGroups)
            }
        }
        return results
    }

    struct Target {
        var action: ProbeAction
        var label: String
    }

    func endpointTargets(_ inv: DeviceInventory) -> [Target] {
        inv.endpoints.filter { $0.transport == .tcp }.flatMap { e in
            e.addresses.map { a in
                let shown = a.contains(":") ? "[\(a)]:\(e.port)" : "\(a):\(e.port)"
                return Target(action: .tcpConnect(address: a, port: e.port, timeoutMs: connectTimeoutMs),
                              label: "\(shown) (bus \(e.bus))")
            }
        }
    }

    /// Serial lines and gpiochips of the site, every gpiochip of the host, /dev/gpiomem and the
    /// sysfs export file: those that exist.
    static func deviceNodes(_ inv: DeviceInventory) -> [(path: String, flags: Int32)] {
        var paths: [(String, Int32)] = []
        func add(_ p: String, _ flags: Int32) {
            if !paths.contains(where: { $0.0 == p }), access(p, F_OK) == 0 { paths.append((p, flags)) }
        }
        for s in inv.serial { add(s.path, O_RDWR) }
        for g in inv.gpioChips { if let p = DeviceInventory.gpioChipPath(g.chip) { add(p, O_RDWR) } }
        let chips = ((try? FileManager.default.contentsOfDirectory(atPath: "/dev")) ?? []).filter { $0.hasPrefix("gpiochip") }.sorted()
        for c in chips { add("/dev/" + c, O_RDWR) }
        add("/dev/gpiomem", O_RDWR)
        add("/sys/class/gpio/export", O_WRONLY)
        return paths.map { (path: $0.0, flags: $0.1) }
    }

    static func ownerGroup(_ path: String, db: AccountDatabase) -> String {
        var st = stat()
        guard stat(path, &st) == 0 else { return "?" }
        return HostAccount.groupName(UInt32(st.st_gid), db: db)
    }

    /// Pids of processes named redlined (from /proc/PID/comm).
    public static func runningDaemons() -> [Int32] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        var out: [Int32] = []
        for e in entries {
            guard let pid = Int32(e), pid != getpid() else { continue }
            guard let comm = try? String(contentsOfFile: "/proc/\(e)/comm", encoding: .utf8) else { continue }
            if comm.trimmingCharacters(in: .whitespacesAndNewlines) == "redlined" { out.append(pid) }
        }
        return out.sorted()
    }
}
