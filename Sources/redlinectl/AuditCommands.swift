#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import RedlineCore

/// `redlinectl audit …`: verify, repair and witness audit logs (docs/DESIGN.md §9).
struct Audit: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Work with audit logs.", subcommands: [Verify.self, Repair.self, Witness.self])

    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Verify a hash-chained audit log.",
            discussion: """
                Prints `ok N records`, or the first bad seq, and exits non-zero on any break. \
                Give rotated files oldest first (audit.jsonl.2 audit.jsonl.1 audit.jsonl) to check the chain across them. \
                With --checkpoints (a witness's folder) it also checks the log against every witnessed checkpoint: \
                cut or deleted trailing records, deleted leading records or files, and records re-sealed without the key.
                """)
        @Option(name: .long, help: ArgumentHelp("A witness's folder (`redlinectl audit witness`): check the log against its checkpoints.", valueName: "DIR"))
        var checkpoints: String?
        @Option(name: .long, help: ArgumentHelp("The files given start at this seq on purpose (older ones were removed); checkpoints before it are not checked.", valueName: "SEQ"))
        var fromSeq: UInt64?
        @Argument(help: "Audit log files, oldest first.") var files: [String]

        func run() throws {
            var witnessed: [AuditCheckpoint] = []
            var v = AuditChain.Verifier()
            if let dir = checkpoints {
                let store = try WitnessStore(dir: dir)
                guard let key = store.key else {
                    printErr("redlinectl: \(dir) holds no pinned key (\(dir)/key): run `redlinectl audit witness` first")
                    throw ExitCode(1)
                }
                witnessed = try store.checkpoints()
                for cp in witnessed where !cp.verify(key) {
                    printErr("redlinectl: \(dir): the checkpoint at seq \(cp.seq) is not signed by the pinned key")
                    throw ExitCode(2)
                }
                v.watch = Set(witnessed.map(\.seq))
            }
            for f in files {
                guard let data = readAll(f) else {
                    printErr("redlinectl: cannot read \(f): \(String(cString: strerror(errno)))")
                    throw ExitCode(1)
                }
                var start = 0
                for (i, b) in data.enumerated() where b == 0x0A {
                    v.feed(data[start..<i])
                    start = i + 1
                }
                if start < data.count { v.feed(data[start...]) }
                if case .broken = v.verdict {
                    print("\(f): \(v.verdict)")
                    throw ExitCode(2)
                }
            }
            if checkpoints != nil {
                let problems = AuditEvidence.problems(log: v, checkpoints: witnessed, fromSeq: fromSeq)
                if !problems.isEmpty {
                    for p in problems { print(p) }
                    throw ExitCode(2)
                }
                print("\(v.verdict.description) (seq \(v.firstSeq)…\(v.lastSeq)); \(witnessed.count) witnessed checkpoints match")
                return
            }
            let skips = v.skipped.isEmpty ? "" : "; gaps: " + v.skipped.map { "\($0.lowerBound)…\($0.upperBound)" }.joined(separator: ", ")
            print(v.verdict.description + (v.count > 0 ? " (seq \(v.firstSeq)…\(v.lastSeq))" : "") + skips)
        }
    }

    struct Repair: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Cut a broken audit log back to its last good record, and record the cut.",
            discussion: """
                An explicit operator step, with redlined stopped (the log is locked while it runs). Everything from the \
                first bad record on is moved to FILE.cut-<time> (nothing is lost), the file is cut there, and a `repair` \
                record is appended: it continues the chain, says what was cut (bytes, lines, SHA-256, where it went, who) \
                and skips every seq the cut part used, so no seq is sealed twice.
                """)
        @Argument(help: "The audit log (the current file, normally /var/lib/redline/audit.jsonl).") var file: String

        func run() throws {
            let fd = open(file, O_RDWR | O_APPEND | O_CLOEXEC)
            guard fd >= 0 else { printErr("redlinectl: cannot open \(file): \(String(cString: strerror(errno)))"); throw ExitCode(1) }
            defer { close(fd) }
            guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
                printErr("redlinectl: \(file) is locked: stop redlined first")
                throw ExitCode(1)
            }
            guard let data = readAll(file) else { printErr("redlinectl: cannot read \(file)"); throw ExitCode(1) }
            let dir = file.lastIndex(of: "/").map { String(file[..<$0]) } ?? "."
            var headSeq: UInt64 = 0
            if let h = readAll(dir + "/audit.head"), let cp = try? AuditCheckpoint.parse(String(decoding: h, as: UTF8.self)) { headSeq = cp.seq }
            guard let plan = AuditEvidence.planRepair(data, headSeq: headSeq) else {
                print("\(file) verifies: nothing to repair")
                return
            }
            let time = utcNow()
            let saved = "\(file).cut-\(time.replacingOccurrences(of: ":", with: ""))"
            let cut = Array(data[plan.cutOffset...])
            let sfd = open(saved, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o640)
            guard sfd >= 0, writeFully(sfd, cut), fsync(sfd) == 0 else {
                printErr("redlinectl: cannot save the cut part to \(saved): \(String(cString: strerror(errno))); nothing was changed")
                if sfd >= 0 { close(sfd) }
                throw ExitCode(1)
            }
            close(sfd)
            syncDir(dir)
            let rec = AuditEvidence.repairRecord(plan, time: time, savedTo: saved, uid: getuid())
            guard ftruncate(fd, off_t(plan.cutOffset)) == 0, fsync(fd) == 0 else {
                printErr("redlinectl: cannot cut \(file): \(String(cString: strerror(errno))) (the cut part is saved in \(saved))")
                throw ExitCode(1)
            }
            guard writeFully(fd, Array((rec.encoded() + "\n").utf8)), fsync(fd) == 0 else {
                printErr("redlinectl: \(file) was cut but the repair record could not be written: \(String(cString: strerror(errno)))")
                throw ExitCode(1)
            }
            let seq = UInt64(rec["seq"]?.numberValue ?? 0)
            print("cut \(plan.cutBytes) bytes (\(plan.cutLines) lines, \(plan.reason)) from \(file) after seq \(plan.lastGoodSeq); "
                + "saved to \(saved); recorded as repair record seq \(seq)")
        }
    }

    struct Witness: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Keep a controller's signed audit checkpoints, and refuse a log that was cut, rolled back or forked.",
            discussion: """
                Run it on another machine or account: over an SSH-forwarded operator socket (--socket), or on exported \
                checkpoint files (--from, e.g. cut from the journal). The first run pins the key (--key audit.pub, or \
                the one the daemon serves: compare it with /var/lib/redline/audit.pub). Each new checkpoint must be \
                signed by that key and must not go back (fewer records) nor fork (another hash at a seq already \
                witnessed); it is stored in DIR. Exit 3, loudly, on a rollback or fork. \
                `redlinectl audit verify --checkpoints DIR FILE...` then checks log files against what DIR holds.
                """)
        @Argument(help: "The witness's folder (checkpoints and the pinned key).") var dir: String
        @Option(name: .long, help: ArgumentHelp("Operator socket to fetch the latest checkpoint from (default: \(SocketPaths.operatorHelp)).", valueName: "PATH"))
        var socket: String?
        @Option(name: .long, parsing: .upToNextOption, help: ArgumentHelp("Checkpoint files to witness instead of the socket, oldest first.", valueName: "FILE"))
        var from: [String] = []
        @Option(name: .long, help: ArgumentHelp("The controller's public key (audit.pub) to pin on the first run.", valueName: "FILE"))
        var key: String?
        @Option(name: .long, help: ArgumentHelp("Keep witnessing, every this many seconds (socket only).", valueName: "S"))
        var interval: Double?

        func run() throws {
            let store = try WitnessStore(dir: dir)
            if let key {
                guard let text = readAll(key), let k = AuditKeys.VerifierKey.parse(String(decoding: text, as: UTF8.self)) else {
                    printErr("redlinectl: \(key) is not an audit key (origin+keyid+base64)")
                    throw ExitCode(1)
                }
                try store.pin(k)
            }
            if !from.isEmpty {
                for f in from {
                    guard let t = readAll(f) else { printErr("redlinectl: cannot read \(f)"); throw ExitCode(1) }
                    let cp: AuditCheckpoint
                    do { cp = try AuditCheckpoint.parse(String(decoding: t, as: UTF8.self)) } catch {
                        printErr("redlinectl: \(f): \(error)")
                        throw ExitCode(1)
                    }
                    try witness(cp, store: store, served: nil)
                }
                return
            }
            let path = SocketPaths.operator(socket)
            while true {
                let r = try call(path, "audit.checkpoint")
                guard let text = r["checkpoint"]?.stringValue, let cp = try? AuditCheckpoint.parse(text) else {
                    printErr("redlinectl: the daemon's answer holds no checkpoint")
                    throw ExitCode(1)
                }
                let served = r["key"]?.stringValue.flatMap { AuditKeys.VerifierKey.parse($0) }
                if try witness(cp, store: store, served: served) {
                    _ = try? call(path, "audit.witnessed", .obj([("seq", .number(Double(cp.seq))), ("hash", .string(cp.hash))]))
                }
                guard let interval else { return }
                usleep(useconds_t(max(0.1, interval) * 1_000_000))
            }
        }

        /// Judges and stores one checkpoint; true if it is now witnessed.
        @discardableResult
        func witness(_ cp: AuditCheckpoint, store: WitnessStore, served: AuditKeys.VerifierKey?) throws -> Bool {
            if store.key == nil {
                guard let served else {
                    printErr("redlinectl: no key pinned in \(dir): give --key audit.pub")
                    throw ExitCode(1)
                }
                printErr("redlinectl: pinning the key the daemon serves: \(served.text) (compare it with the controller's audit.pub)")
                try store.pin(served)
            }
            let key = store.key!
            let all = try store.checkpoints()
            let known = Dictionary(all.map { ($0.seq, $0.hash) }, uniquingKeysWith: { a, _ in a })
            let verdict = CheckpointConsistency.judge(cp, last: all.max { $0.seq < $1.seq }, key: key, known: known)
            guard verdict.isAccepted else {
                try? store.keepRefused(cp)
                printErr("redlinectl: REFUSED checkpoint seq \(cp.seq) of \(cp.time): \(verdict)")
                throw ExitCode(3)
            }
            if verdict == .extends { try store.add(cp) }
            print("\(cp.origin) seq \(cp.seq) \(cp.time): \(verdict)")
            return true
        }
    }
}

/// A witness's folder: `key` (the pinned verifier key) and one `<seq>.checkpoint` per checkpoint.
final class WitnessStore {
    let dir: String
    private(set) var key: AuditKeys.VerifierKey?

    init(dir: String) throws {
        self.dir = dir
        if mkdir(dir, 0o700) != 0 && errno != EEXIST {
            printErr("redlinectl: cannot create \(dir): \(String(cString: strerror(errno)))")
            throw ExitCode(1)
        }
        key = readAll(dir + "/key").flatMap { AuditKeys.VerifierKey.parse(String(decoding: $0, as: UTF8.self)) }
    }

    func pin(_ k: AuditKeys.VerifierKey) throws {
        if let key {
            guard key.text == k.text else {
                printErr("redlinectl: \(dir) already pins another key (\(key.text)); refusing \(k.text)")
                throw ExitCode(3)
            }
            return
        }
        try writeFile(dir + "/key", k.text + "\n")
        key = k
    }

    func checkpoints() throws -> [AuditCheckpoint] {
        guard let d = opendir(dir) else { return [] }
        defer { closedir(d) }
        var out: [AuditCheckpoint] = []
        while let e = readdir(d) {
            let name = withUnsafePointer(to: e.pointee.d_name) { $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) } }
            guard name.hasSuffix(".checkpoint"), !name.hasPrefix("refused-"), let t = readAll(dir + "/" + name) else { continue }
            do { out.append(try AuditCheckpoint.parse(String(decoding: t, as: UTF8.self))) } catch {
                printErr("redlinectl: \(dir)/\(name): \(error)")
                throw ExitCode(2)
            }
        }
        return out.sorted { $0.seq < $1.seq }
    }

    func add(_ cp: AuditCheckpoint) throws {
        let n = String(cp.seq)
        try writeFile(dir + "/" + String(repeating: "0", count: max(0, 20 - n.count)) + n + ".checkpoint", cp.text)
    }

    func keepRefused(_ cp: AuditCheckpoint) throws {
        try writeFile(dir + "/refused-\(cp.seq)-\(utcNow().replacingOccurrences(of: ":", with: "")).checkpoint.txt", cp.text)
    }

    func writeFile(_ path: String, _ text: String) throws {
        let tmp = path + ".tmp"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0, writeFully(fd, Array(text.utf8)), fsync(fd) == 0 else {
            printErr("redlinectl: cannot write \(tmp): \(String(cString: strerror(errno)))")
            if fd >= 0 { close(fd) }
            throw ExitCode(1)
        }
        close(fd)
        guard rename(tmp, path) == 0 else {
            printErr("redlinectl: cannot rename \(tmp): \(String(cString: strerror(errno)))")
            throw ExitCode(1)
        }
        syncDir(dir)
    }
}

func writeFully(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
    var off = 0
    while off < bytes.count {
        let n = bytes[off...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        if n < 0 { if errno == EINTR { continue }; return false }
        off += n
    }
    return true
}

func syncDir(_ dir: String) {
    let d = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    guard d >= 0 else { return }
    _ = fsync(d)
    close(d)
}

/// UTC now, ISO 8601 with milliseconds (as the audit records' `time`).
func utcNow() -> String {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    var t = ts.tv_sec
    var tmv = tm()
    gmtime_r(&t, &tmv)
    func pad(_ v: Int32, _ w: Int) -> String { let s = String(v); return String(repeating: "0", count: max(0, w - s.count)) + s }
    return "\(pad(tmv.tm_year + 1900, 4))-\(pad(tmv.tm_mon + 1, 2))-\(pad(tmv.tm_mday, 2))T"
        + "\(pad(tmv.tm_hour, 2)):\(pad(tmv.tm_min, 2)):\(pad(tmv.tm_sec, 2)).\(pad(Int32(ts.tv_nsec / 1_000_000), 3))Z"
}

/// The audit part of `redlinectl status`: whether the log can be written and why not, what went
/// unrecorded, the last checkpoint, and retention warnings.
func auditStatusLines(_ a: JSON?) -> [String] {
    guard let a else { return [] }
    func n(_ k: String) -> String { a[k]?.numberValue.map { String(UInt64($0)) } ?? "?" }
    var out: [String] = []
    if a["writable"]?.boolValue == false {
        out.append("audit: NOT WRITABLE (\(a["error"]?.stringValue ?? "?")): agent writes fail closed; effects go on; "
            + "\(n("refusedRecords")) records refused so far")
    } else {
        out.append("audit: writable, seq \(n("seq"))" + (a["checkpoint"]?["seq"]?.numberValue.map { ", checkpoint at seq \(UInt64($0))" } ?? "")
            + ", witnessed up to seq \(n("witnessedSeq"))")
    }
    if let u = a["unrecorded"] {
        out.append("  unrecorded since \(u["since"]?.stringValue ?? "?"): \(u["records"]?.numberValue.map { String(Int($0)) } ?? "?") records (a gap record follows once writing works)")
    }
    for k in ["rotationError", "headError", "retentionWarning"] {
        if let m = a[k]?.stringValue { out.append("  \(k): \(m)") }
    }
    if let r = a["unwitnessedRemoved"]?.numberValue, r > 0 { out.append("  unwitnessed files removed by rotation: \(Int(r))") }
    return out
}
