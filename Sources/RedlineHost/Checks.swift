import RedlineCore

/// What host-check tests, by group (`--only` picks some).
public enum CheckCategory: String, Sendable, Hashable, CaseIterable {
    /// Agents cannot reach any device endpoint.
    case network
    /// The service user can (so the block is the firewall, not a dead device or route).
    case service
    /// Agents cannot open serial lines, gpiochips, /dev/gpiomem, /sys/class/gpio/export.
    case devices
    /// Agents cannot read or write the audit log, nor write the site, profiles or their folders.
    case files
    /// Agents cannot signal or ptrace a running redlined.
    case daemon
    /// Agents reach the agent socket and are refused on the operator socket.
    case sockets
    /// No agent is root or in a privileged group.
    case groups
}

public enum CheckStatus: String, Sendable, Hashable {
    case ok
    case fail = "FAIL"
    case skip
}

/// One line of host-check's report.
public struct CheckResult: Sendable, Hashable {
    public var category: CheckCategory
    public var status: CheckStatus
    public var check: String
    /// What was observed (errno text, the refusal line...).
    public var detail: String?
    /// How to fix a failure.
    public var fix: String?
    /// A skip that leaves a protection unverified (not merely not applicable): `--strict` fails it.
    public var unverified: Bool

    public init(_ category: CheckCategory, _ status: CheckStatus, _ check: String, detail: String? = nil,
                fix: String? = nil, unverified: Bool = false) {
        self.category = category
        self.status = status
        self.check = check
        self.detail = detail
        self.fix = fix
        self.unverified = unverified
    }

    /// Whether this result fails the run.
    public func fails(strict: Bool) -> Bool { status == .fail || (strict && status == .skip && unverified) }

    /// `ok|FAIL|skip  <check>  [(detail)]  [fix: ...]`
    public func line(strict: Bool = false) -> String {
        let shown = fails(strict: strict) && status == .skip ? "FAIL" : status.rawValue
        var s = shown.padding(toLength: 4, withPad: " ", startingAt: 0) + "  " + check
        if let detail { s += "  (\(detail))" }
        if status != .ok, let fix { s += "  fix: \(fix)" }
        return s
    }

    public func json(strict: Bool = false) -> JSON {
        var o: [(String, JSON)] = [
            ("category", .string(category.rawValue)),
            ("status", .string(status.rawValue)),
            ("check", .string(check)),
            ("fails", .bool(fails(strict: strict))),
        ]
        if let detail { o.append(("detail", .string(detail))) }
        if let fix { o.append(("fix", .string(fix))) }
        if status == .skip { o.append(("unverified", .bool(unverified))) }
        return .object(o)
    }
}

/// What a probe (one system call as some uid) observed.
public enum ProbeOutcome: Sendable, Hashable {
    /// The call succeeded (connected, opened, signalled, attached).
    case succeeded
    /// It failed with this errno.
    case failed(Int32)
    /// It did not complete in time (a dropped SYN, a socket that never answered).
    case timedOut
    /// Connected to a socket and read this (possibly empty) first line.
    case answered(String)

    public var text: String {
        switch self {
        case .succeeded: return "succeeded"
        case .failed(let e): return Errno.name(e)
        case .timedOut: return "timed out"
        case .answered(let l): return l.isEmpty ? "connected, no answer" : "answered: \(l.prefix(160))"
        }
    }
}

/// The verdicts, pure: an expectation and what was observed give a result.
public enum Verdict {
    /// Something an agent must not be able to do: ok only when the attempt failed.
    public static func mustFail(_ c: CheckCategory, _ check: String, _ o: ProbeOutcome, fix: String) -> CheckResult {
        switch o {
        case .failed, .timedOut: return CheckResult(c, .ok, check, detail: o.text)
        case .succeeded, .answered: return CheckResult(c, .fail, check, detail: o.text, fix: fix)
        }
    }

    /// Something that must work (the service user reaching a device, an agent reaching its socket).
    public static func mustSucceed(_ c: CheckCategory, _ check: String, _ o: ProbeOutcome, fix: String) -> CheckResult {
        switch o {
        case .succeeded, .answered: return CheckResult(c, .ok, check)
        case .failed, .timedOut: return CheckResult(c, .fail, check, detail: o.text, fix: fix)
        }
    }

    /// An agent on the operator socket: refused at connect (permissions), or admitted to the
    /// connection and told `-32006` (not admitted). Anything else is a failure.
    public static func operatorRefusal(_ check: String, _ o: ProbeOutcome, fix: String) -> CheckResult {
        switch o {
        case .failed(let e) where e == ENOENT:
            return CheckResult(.sockets, .skip, check, detail: "no operator socket (redlined not running?)", unverified: true)
        case .failed, .timedOut:
            return CheckResult(.sockets, .ok, check, detail: "refused at connect: \(o.text)")
        case .answered(let line) where line.contains("-32006"):
            return CheckResult(.sockets, .ok, check, detail: "refused with -32006")
        case .answered, .succeeded:
            return CheckResult(.sockets, .fail, check, detail: o.text, fix: fix)
        }
    }

    /// Groups an account must not be in.
    public static let privilegedGroups: [String] = ["root", "sudo", "wheel", "adm", "docker", "lxd", "libvirt", "disk",
                                                     "dialout", "gpio", "i2c", "spi", "kmem", "tty", "redline-operators"]

    /// An agent's groups against the privileged list and the service's own groups.
    public static func groups(agent: String, uid: UInt32, groups: [(name: String, gid: UInt32)]?,
                              serviceGroups: [(name: String, gid: UInt32)]) -> [CheckResult] {
        var out: [CheckResult] = []
        let who = "agent \(agent) (uid \(uid))"
        if uid == 0 {
            out.append(CheckResult(.groups, .fail, "\(who) is not root", detail: "uid 0",
                                   fix: "give the agent its own unprivileged uid in the site"))
        } else {
            out.append(CheckResult(.groups, .ok, "\(who) is not root"))
        }
        guard let groups else {
            out.append(CheckResult(.groups, .skip, "\(who) is in no privileged group", detail: "no such account in the user database",
                                   fix: "create the account: useradd --system --uid \(uid) --no-create-home --shell /usr/sbin/nologin \(agent)",
                                   unverified: true))
            return out
        }
        let serviceGIDs = Set(serviceGroups.map(\.gid))
        let bad = groups.filter { g in g.gid == 0 || privilegedGroups.contains(g.name) || serviceGIDs.contains(g.gid) }
        if bad.isEmpty {
            out.append(CheckResult(.groups, .ok, "\(who) is in no privileged group",
                                   detail: groups.isEmpty ? nil : "groups: " + groups.map(\.name).joined(separator: ",")))
        } else {
            let names = bad.map(\.name)
            let primary = bad.count == groups.count && groups.count == 1
            out.append(CheckResult(.groups, .fail, "\(who) is in no privileged group", detail: "in " + names.joined(separator: ","),
                                   fix: primary ? "give the account its own primary group (usermod -g)"
                                       : names.map { "gpasswd -d \(agent) \($0)" }.joined(separator: "; ")))
        }
        return out
    }
}

/// errno names for reports.
public enum Errno {
    public static func name(_ e: Int32) -> String {
        switch e {
        case EPERM: return "EPERM"
        case ENOENT: return "ENOENT"
        case ESRCH: return "ESRCH"
        case EACCES: return "EACCES"
        case EBUSY: return "EBUSY"
        case EROFS: return "EROFS"
        case ECONNREFUSED: return "ECONNREFUSED"
        case ETIMEDOUT: return "ETIMEDOUT"
        case ENETUNREACH: return "ENETUNREACH"
        case EHOSTUNREACH: return "EHOSTUNREACH"
        case EINPROGRESS: return "EINPROGRESS"
        case ENXIO: return "ENXIO"
        case ENODEV: return "ENODEV"
        default: return "errno \(e)"
        }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
