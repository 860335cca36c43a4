import Foundation
import RedlineCore
import Testing
@testable import RedlineHost

@Suite("host-check verdicts")
struct VerdictTests {
    @Test("what an agent must not do is ok only when it failed")
    func mustFail() {
        #expect(Verdict.mustFail(.network, "c", .failed(ECONNREFUSED), fix: "f").status == .ok)
        #expect(Verdict.mustFail(.network, "c", .timedOut, fix: "f").status == .ok)
        let bad = Verdict.mustFail(.network, "agent a (uid 2001) cannot connect to 10.0.0.1:502 (bus b)", .succeeded, fix: "load the firewall")
        #expect(bad.status == .fail)
        #expect(bad.line() == "FAIL  agent a (uid 2001) cannot connect to 10.0.0.1:502 (bus b)  (succeeded)  fix: load the firewall")
        #expect(bad.fails(strict: false))
    }

    @Test("what must work is ok only when it worked")
    func mustSucceed() {
        #expect(Verdict.mustSucceed(.service, "c", .succeeded, fix: "f").line() == "ok    c")
        let r = Verdict.mustSucceed(.service, "c", .failed(ECONNREFUSED), fix: "f")
        #expect(r.status == .fail && r.detail == "ECONNREFUSED")
    }

    @Test("the operator socket must refuse an agent: at connect, or with -32006")
    func operatorRefusal() {
        #expect(Verdict.operatorRefusal("c", .failed(EACCES), fix: "f").status == .ok)
        let line = #"{"jsonrpc":"2.0","id":null,"error":{"code":-32006,"message":"uid 2001 is the agent a; agents are never admitted"}}"#
        #expect(Verdict.operatorRefusal("c", .answered(line), fix: "f").status == .ok)
        #expect(Verdict.operatorRefusal("c", .answered(""), fix: "f").status == .fail)
        #expect(Verdict.operatorRefusal("c", .answered(#"{"error":{"code":-32007}}"#), fix: "f").status == .fail)
        let absent = Verdict.operatorRefusal("c", .failed(ENOENT), fix: "f")
        #expect(absent.status == .skip && absent.unverified)
    }

    @Test("strict fails unverified skips only")
    func strict() {
        let unverified = CheckResult(.service, .skip, "c", detail: "skipped: service user _redline not found", unverified: true)
        let notApplicable = CheckResult(.daemon, .skip, "d", detail: "no redlined running")
        #expect(!unverified.fails(strict: false) && unverified.fails(strict: true))
        #expect(!notApplicable.fails(strict: true))
        #expect(unverified.line().hasPrefix("skip  c  (skipped: service user _redline not found)"))
        #expect(unverified.line(strict: true).hasPrefix("FAIL  c"))
        #expect(unverified.json(strict: true)["fails"] == .bool(true))
        #expect(unverified.json()["status"] == .string("skip"))
    }

    @Test("no agent is root or in a privileged group")
    func groups() {
        let service = [(name: "_redline", gid: UInt32(998))]
        let clean = Verdict.groups(agent: "a", uid: 2001, groups: [("a", 2001), ("redline-agents", 990)], serviceGroups: service)
        #expect(clean.map(\.status) == [.ok, .ok])
        let bad = Verdict.groups(agent: "a", uid: 2001, groups: [("a", 2001), ("dialout", 20), ("_redline", 998), ("docker", 995)],
                                 serviceGroups: service)
        #expect(bad[1].status == .fail)
        #expect(bad[1].detail == "in dialout,_redline,docker")
        #expect(bad[1].fix == "gpasswd -d a dialout; gpasswd -d a _redline; gpasswd -d a docker")
        for g in ["sudo", "gpio", "i2c", "spi", "redline-operators"] {
            #expect(Verdict.groups(agent: "a", uid: 2001, groups: [(g, 4242)], serviceGroups: [])[1].status == .fail, "\(g)")
        }
        let root = Verdict.groups(agent: "a", uid: 0, groups: [], serviceGroups: [])
        #expect(root[0].status == .fail)
        let missing = Verdict.groups(agent: "a", uid: 2001, groups: nil, serviceGroups: service)
        #expect(missing[1].status == .skip && missing[1].unverified)
    }
}

/// The probe itself, as root only: a child drops to another uid and is refused what that uid may not do.
@Suite("host-check probes (root)")
struct ProbeTests {
    @Test("a probe as nobody cannot open a root-only file or write /, and can connect to a listener")
    func probe() throws {
        guard geteuid() == 0 else { return }
        // A TCP listener on loopback.
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { p -> Int32 in
                _ = bind(fd, p, len)
                return getsockname(fd, p, &len)
            }
        }
        #expect(listen(fd, 4) == 0)
        let port = Int(UInt16(bigEndian: addr.sin_port))
        let secret = NSTemporaryDirectory() + "rl-probe-\(UUID().uuidString)"
        #expect(FileManager.default.createFile(atPath: secret, contents: Data("x".utf8), attributes: [.posixPermissions: 0o600]))
        defer { try? FileManager.default.removeItem(atPath: secret) }
        let out = try Prober.run(as: ProbeIdentity(uid: 65534, gid: 65534, groups: []), [
            .open(path: secret, flags: O_RDONLY),
            .access(path: "/", mode: W_OK),
            .tcpConnect(address: "127.0.0.1", port: port, timeoutMs: 1000),
            .signal(pid: 1),
            .unixConnect(path: "/nonexistent/rl.sock", readLineMs: 100),
        ])
        #expect(out == [.failed(EACCES), .failed(EACCES), .succeeded, .failed(EPERM), .failed(ENOENT)])
        // Root itself could open it: the refusal is the uid's.
        #expect(try Prober.run(as: ProbeIdentity(uid: 0, gid: 0, groups: []), [.open(path: secret, flags: O_RDONLY)]) == [.succeeded])
    }
}
