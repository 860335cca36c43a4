import CHostShim

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Who a probe runs as: a uid, its primary gid and supplementary groups.
public struct ProbeIdentity: Sendable, Hashable {
    public var uid: UInt32
    public var gid: UInt32
    public var groups: [UInt32]
    public init(uid: UInt32, gid: UInt32, groups: [UInt32]) {
        self.uid = uid
        self.gid = gid
        self.groups = groups
    }
}

/// One attempt, made as the probe's identity.
public enum ProbeAction: Sendable, Hashable {
    /// TCP connect with a timeout.
    case tcpConnect(address: String, port: Int, timeoutMs: Int)
    /// open(2) with these flags (O_NONBLOCK | O_NOCTTY are always added; never O_CREAT or O_TRUNC).
    case open(path: String, flags: Int32)
    /// access(2) with the real (dropped) uid: `W_OK` on a folder says whether files can be made in it.
    case access(path: String, mode: Int32)
    /// kill(pid, 0).
    case signal(pid: Int32)
    /// PTRACE_SEIZE (does not stop the target; the probe's exit detaches).
    case ptrace(pid: Int32)
    /// connect(2) to a Unix socket; with `readLine`, wait that long for a first line and report it.
    case unixConnect(path: String, readLineMs: Int?)
}

public enum ProbeError: Error, CustomStringConvertible {
    case system(String)
    public var description: String { if case .system(let s) = self { return s } else { return "" } }
}

/// Runs probes in a forked child that has dropped to another identity: setgroups, setgid,
/// setuid, checked, then each action. Everything the child touches is prepared before the
/// fork (addresses, C strings, result buffers), so the child only makes system calls.
/// Needs root (CAP_SETUID, CAP_SETGID).
public enum Prober {
    static let textSize = 256

    /// One prepared action, plain memory only.
    struct Prepared {
        var kind: Int32 = 0
        var storage = sockaddr_storage()
        var length: socklen_t = 0
        var path: UnsafeMutablePointer<CChar>?
        var flags: Int32 = 0
        var pid: Int32 = 0
        var timeoutMs: Int32 = 0
        var read: Int32 = 0
    }

    /// One raw result, plain memory only: rc 0 success, 1 failed (err), 2 timed out, 3 answered (text).
    struct Raw {
        var rc: Int32 = 0
        var err: Int32 = 0
        var length: Int32 = 0
    }

    public static func run(as id: ProbeIdentity, _ actions: [ProbeAction]) throws(ProbeError) -> [ProbeOutcome] {
        if actions.isEmpty { return [] }
        let n = actions.count
        let prepared = UnsafeMutablePointer<Prepared>.allocate(capacity: n)
        prepared.initialize(repeating: Prepared(), count: n)
        let raw = UnsafeMutablePointer<Raw>.allocate(capacity: n)
        raw.initialize(repeating: Raw(), count: n)
        let text = UnsafeMutablePointer<UInt8>.allocate(capacity: n * textSize)
        text.initialize(repeating: 0, count: n * textSize)
        let groups = UnsafeMutablePointer<gid_t>.allocate(capacity: max(1, id.groups.count))
        for (i, g) in id.groups.enumerated() { groups[i] = gid_t(g) }
        defer {
            for i in 0..<n { prepared[i].path?.deallocate() }
            prepared.deallocate(); raw.deallocate(); text.deallocate(); groups.deallocate()
        }
        for (i, a) in actions.enumerated() {
            var p = Prepared()
            switch a {
            case .tcpConnect(let address, let port, let timeoutMs):
                guard fill(&p, address: address, port: port) else { throw .system("not a numeric address: \(address)") }
                p.kind = 1
                p.timeoutMs = Int32(timeoutMs)
            case .open(let path, let flags):
                p.kind = 2; p.path = cString(path); p.flags = (flags & ~(O_CREAT | O_TRUNC)) | O_NONBLOCK | O_NOCTTY | O_CLOEXEC
            case .access(let path, let mode):
                p.kind = 3; p.path = cString(path); p.flags = mode
            case .signal(let pid):
                p.kind = 4; p.pid = pid
            case .ptrace(let pid):
                p.kind = 5; p.pid = pid
            case .unixConnect(let path, let readLineMs):
                var un = sockaddr_un()
                un.sun_family = sa_family_t(AF_UNIX)
                let bytes = Array(path.utf8)
                guard bytes.count < MemoryLayout.size(ofValue: un.sun_path) else { throw .system("socket path too long: \(path)") }
                withUnsafeMutableBytes(of: &un.sun_path) { b in for (k, c) in bytes.enumerated() { b[k] = c } }
                withUnsafeMutableBytes(of: &p.storage) { dst in withUnsafeBytes(of: un) { dst.copyMemory(from: $0) } }
                p.length = socklen_t(MemoryLayout<sockaddr_un>.size)
                p.kind = 6
                p.read = readLineMs == nil ? 0 : 1
                p.timeoutMs = Int32(readLineMs ?? 0)
            }
            prepared[i] = p
        }

        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw .system("pipe: \(Errno.name(errno))") }
        let (rfd, wfd) = (fds[0], fds[1])
        let uid = uid_t(id.uid), gid = gid_t(id.gid), ngroups = id.groups.count
        let pid = fork()
        if pid < 0 {
            close(rfd); close(wfd)
            throw .system("fork: \(Errno.name(errno))")
        }
        if pid == 0 {
            // The child: system calls only, on memory prepared above.
            close(rfd)
            alarm(20)
            var status: Int32 = 0
            if setgroups(ngroups, groups) != 0 || setgid(gid) != 0 || setuid(uid) != 0
                || getuid() != uid || geteuid() != uid || getgid() != gid || getegid() != gid {
                status = 1
            }
            _ = withUnsafeBytes(of: &status) { write(wfd, $0.baseAddress, 4) }
            if status != 0 { _exit(1) }
            for i in 0..<n { perform(prepared + i, raw + i, text + i * textSize) }
            writeAll(wfd, UnsafeRawPointer(raw), n * MemoryLayout<Raw>.stride)
            writeAll(wfd, UnsafeRawPointer(text), n * textSize)
            _exit(0)
        }
        close(wfd)
        var status: Int32 = -1
        let got = withUnsafeMutableBytes(of: &status) { readAll(rfd, $0.baseAddress!, 4) }
        let rawBytes = n * MemoryLayout<Raw>.stride
        let okRaw = got == 4 && status == 0 && readAll(rfd, UnsafeMutableRawPointer(raw), rawBytes) == rawBytes
        let okText = okRaw && readAll(rfd, UnsafeMutableRawPointer(text), n * textSize) == n * textSize
        close(rfd)
        var ws: Int32 = 0
        while waitpid(pid, &ws, 0) < 0 && errno == EINTR {}
        guard got == 4, status == 0 else { throw .system("could not become uid \(id.uid) gid \(id.gid) (run host-check as root)") }
        guard okText else { throw .system("the probe as uid \(id.uid) did not finish (killed after 20 s?)") }
        var out: [ProbeOutcome] = []
        for i in 0..<n {
            let r = raw[i]
            switch r.rc {
            case 0: out.append(.succeeded)
            case 2: out.append(.timedOut)
            case 3:
                let len = Int(max(0, min(r.length, Int32(textSize))))
                let line = String(decoding: UnsafeBufferPointer(start: text + i * textSize, count: len), as: UTF8.self)
                out.append(.answered(line))
            default: out.append(.failed(r.err))
            }
        }
        return out
    }

    private static func cString(_ s: String) -> UnsafeMutablePointer<CChar> {
        let u = Array(s.utf8CString)
        let p = UnsafeMutablePointer<CChar>.allocate(capacity: u.count)
        p.initialize(from: u, count: u.count)
        return p
    }

    private static func fill(_ p: inout Prepared, address: String, port: Int) -> Bool {
        if address.contains(":") {
            var sin6 = sockaddr_in6()
            sin6.sin6_family = sa_family_t(AF_INET6)
            sin6.sin6_port = in_port_t(UInt16(port).bigEndian)
            guard inet_pton(AF_INET6, address, &sin6.sin6_addr) == 1 else { return false }
            withUnsafeMutableBytes(of: &p.storage) { dst in withUnsafeBytes(of: sin6) { dst.copyMemory(from: $0) } }
            p.length = socklen_t(MemoryLayout<sockaddr_in6>.size)
        } else {
            var sin = sockaddr_in()
            sin.sin_family = sa_family_t(AF_INET)
            sin.sin_port = in_port_t(UInt16(port).bigEndian)
            guard inet_pton(AF_INET, address, &sin.sin_addr) == 1 else { return false }
            withUnsafeMutableBytes(of: &p.storage) { dst in withUnsafeBytes(of: sin) { dst.copyMemory(from: $0) } }
            p.length = socklen_t(MemoryLayout<sockaddr_in>.size)
        }
        return true
    }

    /// In the child.
    private static func perform(_ p: UnsafeMutablePointer<Prepared>, _ r: UnsafeMutablePointer<Raw>, _ text: UnsafeMutablePointer<UInt8>) {
        func fail() { r.pointee.rc = 1; r.pointee.err = errno }
        switch p.pointee.kind {
        case 1, 6:
            let family = Int32(p.pointee.storage.ss_family)
            let fd = socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            if fd < 0 { return fail() }
            defer { close(fd) }
            let rc = withUnsafePointer(to: &p.pointee.storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, p.pointee.length) }
            }
            if rc != 0 {
                if errno != EINPROGRESS && errno != EAGAIN { return fail() }
                var pfd = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                let ready = poll(&pfd, 1, p.pointee.timeoutMs > 0 ? p.pointee.timeoutMs : 1000)
                if ready == 0 { r.pointee.rc = 2; return }
                if ready < 0 { return fail() }
                var soErr: Int32 = 0
                var len = socklen_t(4)
                _ = getsockopt(fd, SOL_SOCKET, SO_ERROR, &soErr, &len)
                if soErr != 0 { r.pointee.rc = 1; r.pointee.err = soErr; return }
            }
            r.pointee.rc = 0
            guard p.pointee.read != 0 else { return }
            // Read a first line: up to the newline, the buffer's end, EOF or the timeout.
            var have = 0
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            while have < textSize {
                let ready = poll(&pfd, 1, p.pointee.timeoutMs)
                if ready <= 0 { break }
                let got = read(fd, text + have, textSize - have)
                if got <= 0 { break }
                var newline = false
                for k in have..<(have + got) where text[k] == 10 { newline = true }
                have += got
                if newline { break }
            }
            var end = 0
            while end < have && text[end] != 10 { end += 1 }
            r.pointee.rc = 3
            r.pointee.length = Int32(end)
        case 2:
            let fd = open(p.pointee.path!, p.pointee.flags)
            if fd < 0 { return fail() }
            close(fd)
            r.pointee.rc = 0
        case 3:
            if access(p.pointee.path!, p.pointee.flags) != 0 { return fail() }
            r.pointee.rc = 0
        case 4:
            if kill(p.pointee.pid, 0) != 0 { return fail() }
            r.pointee.rc = 0
        case 5:
            let e = rl_ptrace_seize(p.pointee.pid)
            if e != 0 { r.pointee.rc = 1; r.pointee.err = e; return }
            r.pointee.rc = 0
        default:
            r.pointee.rc = 1
            r.pointee.err = EINVAL
        }
    }

    private static func writeAll(_ fd: Int32, _ p: UnsafeRawPointer, _ count: Int) {
        var done = 0
        while done < count {
            let w = write(fd, p + done, count - done)
            if w < 0 && errno == EINTR { continue }
            if w <= 0 { return }
            done += w
        }
    }

    private static func readAll(_ fd: Int32, _ p: UnsafeMutableRawPointer, _ count: Int) -> Int {
        var done = 0
        while done < count {
            let r = read(fd, p + done, count - done)
            if r < 0 && errno == EINTR { continue }
            if r <= 0 { break }
            done += r
        }
        return done
    }
}

/// A GPIO chip's label as the kernel reports it for its node (GPIO_GET_CHIPINFO_IOCTL):
/// what `redlinectl gpio-label` prints, and what the udev rules for a chip named by label match.
public enum GPIOChipLabel {
    /// The label of the chip at `path` (`/dev/gpiochip0`), or why it cannot be read.
    public static func read(path: String) -> Result<String, GPIOChipLabel.Failure> {
        var buf = [CChar](repeating: 0, count: 64)
        let e = rl_gpiochip_label(path, &buf, buf.count)
        guard e == 0 else {
            return .failure(Failure(path: path, errno: e))
        }
        return .success(String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
    }

    /// Why a chip's label could not be read: its path and the errno.
    public struct Failure: Error, Sendable, CustomStringConvertible {
        public var path: String
        public var errno: Int32
        public var description: String {
            "\(path): \(String(cString: strerror(errno)))"
        }
    }
}
