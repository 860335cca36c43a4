import ArgumentParser
import Foundation
import RedlineConfig
import RedlineCore
import RedlineHost

/// The site a command works on, and where its device profiles come from: one home for the
/// arguments and the loading (every diagnostic printed, `file:line:column`, on failure).
struct SiteArguments: ParsableArguments {
    @Argument(help: "The site file.")
    var site: String

    @Option(name: .long, help: ArgumentHelp("Folder of device profiles (default: <dir of SITE>/../Devices; for a site in /etc/redline: /usr/share/redline/devices).", valueName: "DIR"))
    var devices: String?

    @Option(name: .long, help: ArgumentHelp("Folder of local device profiles, replacing --devices profiles of the same name (default for a site in /etc/redline: /etc/redline/devices).", valueName: "DIR"))
    var localDevices: String?

    func load() throws -> Site {
        do {
            return try SiteLoader.load(siteFile: site, devicesDir: devices, localDevicesDir: localDevices)
        } catch {
            for d in error.diagnostics { printErr(d.description) }
            let n = error.diagnostics.count
            printErr("\(n) error\(n == 1 ? "" : "s") in \(site)")
            throw ExitCode(1)
        }
    }
}

/// The command line as run, for the generated files' header.
func commandLine() -> String {
    (["redlinectl"] + CommandLine.arguments.dropFirst()).map { a in
        a.isEmpty || a.contains(where: { $0 == " " || $0 == "\"" || $0 == "'" }) ? "'\(a.replacingOccurrences(of: "'", with: "'\\''"))'" : a
    }.joined(separator: " ")
}

/// `redlinectl firewall SITE [--devices DIR] [--service-user NAME|UID] [--interface IFACE]`
struct Firewall: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "firewall",
        abstract: "Print the nftables ruleset that lets only redlined's user reach the site's devices.",
        discussion: """
            Prints a ruleset in its own table (inet redline; no other table is touched): an output \
            chain where only the service user (meta skuid) may open connections to the site's device \
            endpoints (every Modbus TCP host:port, resolved now to its IPv4 and IPv6 addresses); \
            established and related traffic passes; everything else to those endpoints, TCP and UDP, \
            IPv4 and IPv6, is counted and rejected (TCP reset, ICMP unreachable). Endpoints on this \
            machine's own addresses (127.0.0.1, ::1, an interface's address) are matched on lo by port, \
            since loopback traffic passes the output hook too. With --interface, the whole device-network \
            interface is closed to everyone but the service user.

            Install on Debian (the nftables service):
              redlinectl firewall /etc/redline/site.yaml > /etc/redline/nftables.conf
              nft -c -f /etc/redline/nftables.conf && nft -f /etc/redline/nftables.conf
            and add one line to /etc/nftables.conf (or a file in /etc/nftables.d, if yours includes that):
              include "/etc/redline/nftables.conf"
            Regenerate whenever the site or a device's address changes. Counters: \
            nft list table inet redline.

            Alternative: run redlined in its own network namespace that holds the device NIC \
            (NetworkNamespacePath=/run/netns/redline in the unit); agents in the host namespace have no \
            route to the devices at all, and the path-based Unix sockets still reach redlined.
            """
    )

    @OptionGroup var siteArgs: SiteArguments

    @Option(name: .long, help: ArgumentHelp("The user redlined runs as, by name or uid.", valueName: "NAME|UID"))
    var serviceUser = "_redline"

    @Option(name: .long, help: ArgumentHelp("Close this whole interface (the device network) to everyone but the service user.", valueName: "IFACE"))
    var interface: String?

    func run() throws {
        if let interface, !FirewallRuleset.validInterface(interface) {
            throw ValidationError("not an interface name: \(interface)")
        }
        guard let account = HostAccount.resolve(serviceUser) else {
            printErr("redlinectl firewall: service user \(serviceUser) not found on this host; create it, or give its uid (--service-user UID)")
            throw ExitCode(1)
        }
        let s = try siteArgs.load()
        let inv = DeviceInventory(site: s)
        let rules = FirewallRuleset(serviceUID: account.uid, serviceName: account.name ?? (UInt32(serviceUser) == nil ? serviceUser : nil),
                                    interface: interface, siteName: s.name, siteFile: siteArgs.site, command: commandLine())
        print(rules.render(inv), terminator: "")
        for u in inv.unresolved { printErr("redlinectl firewall: warning: bus \(u.bus): \(u.host) does not resolve (\(u.reason)); it is not covered") }
        if !inv.unresolved.isEmpty { throw ExitCode(2) }
    }
}

/// `redlinectl udev-rules SITE [--devices DIR] [--service-group NAME]`
struct UdevRulesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "udev-rules",
        abstract: "Print udev rules giving the site's serial lines and gpiochips to root:<service group>, mode 0660.",
        discussion: """
            Serial lines are matched by kernel name (/dev/ttyAMA0) or by symlink (/dev/serial/by-id/...), \
            gpiochips by KERNEL=="gpiochipN" or, for a chip named by label, by its label as \
            `redlinectl gpio-label` reads it from the node (PROGRAM=, RESULT==; a chip's node has no \
            label attribute in sysfs). Install:
              redlinectl udev-rules /etc/redline/site.yaml > /etc/udev/rules.d/60-redline.rules
              udevadm control --reload && udevadm trigger
            Agents must be in none of dialout, gpio, i2c, spi or the service group.
            """
    )

    @OptionGroup var siteArgs: SiteArguments

    @Option(name: .long, help: ArgumentHelp("Group of the device nodes (default: the primary group of --service-user, else its name).", valueName: "NAME"))
    var serviceGroup: String?

    @Option(name: .long, help: ArgumentHelp("The user redlined runs as.", valueName: "NAME|UID"))
    var serviceUser = "_redline"

    @Option(name: .long, help: ArgumentHelp("redlinectl's absolute path on the controller, for the rules of chips named by label (they run `redlinectl gpio-label`).", valueName: "PATH"))
    var redlinectl = UdevRules.packagedRedlinectl

    func validate() throws {
        guard redlinectl.hasPrefix("/"), !redlinectl.contains(" "), !redlinectl.contains("\"") else {
            throw ValidationError("--redlinectl must be an absolute path without spaces or quotes (udev's PROGRAM runs it)")
        }
    }

    func run() throws {
        let s = try siteArgs.load()
        let group = serviceGroup ?? HostAccount.resolve(serviceUser).map { HostAccount.groupName($0.gid) } ?? serviceUser
        let rules = UdevRules(group: group, siteName: s.name, siteFile: siteArgs.site, command: commandLine(),
                              redlinectl: redlinectl)
        print(rules.render(DeviceInventory(site: s)), terminator: "")
    }
}

/// `redlinectl gpio-label DEVICE`: the label the kernel gives a GPIO chip's node.
struct GPIOLabelCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gpio-label",
        abstract: "Print the label of a GPIO chip (/dev/gpiochipN), as the kernel reports it.",
        discussion: """
            The udev rules that `redlinectl udev-rules` prints for a chip named by label run this \
            (PROGRAM=, RESULT==): a chip's node has no label attribute in sysfs. Exits 1 when the \
            node cannot be opened or is not a GPIO chip.
            """
    )

    @Argument(help: ArgumentHelp("The chip's node.", valueName: "DEVICE"))
    var device: String

    func run() throws {
        switch GPIOChipLabel.read(path: device) {
        case .success(let label): print(label)
        case .failure(let e):
            printErr("redlinectl gpio-label: \(e)")
            throw ExitCode(1)
        }
    }
}

/// `redlinectl device-allow SITE [--devices DIR]`
struct DeviceAllowCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "device-allow",
        abstract: "Print a systemd drop-in allowing redlined exactly the site's serial lines and gpiochips.",
        discussion: """
            The unit ships DevicePolicy=closed with an example list; this drop-in resets it and allows \
            the device nodes the site names. A GPIO chip named by label (recommended on a Pi, whose \
            kernels renumber chips) is allowed as char-gpiochip, since its node is not fixed; redlined \
            opens only the chip carrying that label. Install:
              mkdir -p /etc/systemd/system/redlined.service.d
              redlinectl device-allow /etc/redline/site.yaml > /etc/systemd/system/redlined.service.d/devices.conf
              systemctl daemon-reload && systemctl restart redlined
            """
    )

    @OptionGroup var siteArgs: SiteArguments

    func run() throws {
        let s = try siteArgs.load()
        print(DeviceAllowDropIn(siteName: s.name, siteFile: siteArgs.site, command: commandLine()).render(DeviceInventory(site: s)), terminator: "")
    }
}

/// `redlinectl host-check SITE [...]`
struct HostCheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "host-check",
        abstract: "Test, as each agent's uid, that nothing goes around redlined on this host (run as root).",
        discussion: """
            For every agent of the site, a child process drops to the agent's uid (its own groups from \
            the group database; a uid without an account gets gid = uid and no groups) and tries: every \
            device endpoint (TCP connect; must fail), while the service user must connect; every serial \
            line, gpiochip, /dev/gpiomem and /sys/class/gpio/export (open; must fail); reading and \
            writing the audit log, writing the site, profiles and their folders (must fail); signalling \
            and ptrace-attaching redlined (must fail); the agent socket (must connect) and the operator \
            socket (must refuse, -32006). No agent may be root or in sudo, docker, dialout, gpio, i2c, spi, \
            the service user's group or redline-operators.

            One line per check: ok|FAIL|skip  CHECK  (what was seen)  fix: ...; exit 1 on any FAIL.
            Categories for --only: network, service, devices, files, daemon, sockets, groups.
            --strict fails skips that leave something unverified (a missing service user, agent account \
            or socket). Before the daemon starts (systemd):
              ExecStartPre=+/usr/bin/redlinectl host-check --strict --only network,devices,files,groups /etc/redline/site.yaml
            """
    )

    @OptionGroup var siteArgs: SiteArguments

    @Option(name: .long, help: ArgumentHelp("The user redlined runs as, by name or uid.", valueName: "NAME|UID"))
    var serviceUser = "_redline"

    @Option(name: .long, help: ArgumentHelp("Agent socket.", valueName: "PATH"))
    var agentSocket = SocketPaths.agentDefault

    @Option(name: .long, help: ArgumentHelp("Operator socket.", valueName: "PATH"))
    var operatorSocket = SocketPaths.operatorDefault

    @Option(name: .long, help: ArgumentHelp("Audit log.", valueName: "PATH"))
    var audit = "/var/lib/redline/audit.jsonl"

    @Option(name: .long, help: ArgumentHelp("Only these categories (comma-separated).", valueName: "LIST"))
    var only: String?

    @Option(name: .long, help: ArgumentHelp("TCP connect timeout in milliseconds.", valueName: "MS"))
    var timeoutMs = 1000

    @Flag(name: .long, help: "Fail on skips that leave a protection unverified.")
    var strict = false

    @Flag(name: .long, help: "Print the results as JSON.")
    var json = false

    func run() throws {
        var check = HostCheck(siteFile: siteArgs.site, devicesDir: siteArgs.devices, localDevicesDir: siteArgs.localDevices)
        check.serviceUser = serviceUser
        check.agentSocket = agentSocket
        check.operatorSocket = operatorSocket
        check.audit = audit
        check.connectTimeoutMs = max(50, timeoutMs)
        if let only {
            var set = Set<CheckCategory>()
            for part in only.split(separator: ",") {
                let name = part.trimmingCharacters(in: .whitespaces)
                guard let c = CheckCategory(rawValue: name) else {
                    throw ValidationError("unknown category \(name); use: \(CheckCategory.allCases.map(\.rawValue).joined(separator: ","))")
                }
                set.insert(c)
            }
            check.only = set
        }
        if geteuid() != 0 {
            printErr("redlinectl host-check: must run as root (it becomes each agent's uid)")
            throw ExitCode(1)
        }
        let results: [CheckResult]
        do {
            results = try check.run()
        } catch {
            printErr("redlinectl host-check: \(error)")
            throw ExitCode(1)
        }
        let failed = results.filter { $0.fails(strict: strict) }.count
        if json {
            let doc: JSON = .object([
                ("site", .string(siteArgs.site)),
                ("strict", .bool(strict)),
                ("failed", .number(Double(failed))),
                ("checks", .array(results.map { $0.json(strict: strict) })),
            ])
            print(doc.encoded())
        } else {
            for r in results { print(r.line(strict: strict)) }
            let ok = results.filter { $0.status == .ok }.count
            let skipped = results.filter { $0.status == .skip && !$0.fails(strict: strict) }.count
            print("\(ok) ok, \(failed) failed, \(skipped) skipped")
        }
        if failed > 0 { throw ExitCode(1) }
    }
}
