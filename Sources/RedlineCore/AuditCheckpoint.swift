import Crypto

/// A signed statement "the audit log of `origin` had `seq` records, the last with chain hash
/// `hash`, at `time`" (docs/DESIGN.md §9), in the spirit of C2SP tlog-checkpoint and signed notes:
///
///     redline/<site>            origin
///     1234                      seq (the last record covered)
///     <base64 chain hash>       the hash of record `seq`
///     time 2026-12-01T12:00:00.000Z
///
///     — redline/<site> <base64(key id (4 bytes) || Ed25519 signature)>
///
/// The signature covers the body (every line up to and including the one before the blank line,
/// each ending in a newline). The key id is the first 4 bytes of
/// SHA-256(origin || "\n" || 0x01 || public key), as for signed-note Ed25519 keys.
/// A party holding the public key can tell a checkpoint from a forgery; one holding an older
/// checkpoint can tell a log that was cut, rolled back or re-sealed without the key.
public struct AuditCheckpoint: Sendable, Hashable {
    public var origin: String
    public var seq: UInt64
    /// The chain hash (hex, as in the records) of record `seq`.
    public var hash: String
    public var time: String
    /// The signature line's key id (hex) and signature bytes.
    public var keyId: String
    public var signature: [UInt8]

    /// The signed body.
    public var body: String { AuditCheckpoint.body(origin: origin, seq: seq, hash: hash, time: time) }

    /// The checkpoint as text (body, blank line, signature line).
    public var text: String { body + "\n— \(origin) " + Base64.encode(AuditKeys.bytes(hex: keyId) + signature) + "\n" }

    static func body(origin: String, seq: UInt64, hash: String, time: String) -> String {
        "\(origin)\n\(seq)\n\(Base64.encode(AuditKeys.bytes(hex: hash)))\ntime \(time)\n"
    }

    /// Signs a checkpoint.
    public static func sign(origin: String, seq: UInt64, hash: String, time: String,
                            key: Curve25519.Signing.PrivateKey) throws -> AuditCheckpoint {
        let b = body(origin: origin, seq: seq, hash: hash, time: time)
        let sig = try key.signature(for: Array(b.utf8))
        return AuditCheckpoint(origin: origin, seq: seq, hash: hash, time: time,
                               keyId: AuditKeys.keyId(origin: origin, publicKey: key.publicKey),
                               signature: Array(sig))
    }

    public struct ParseError: Error, Sendable, CustomStringConvertible {
        public var description: String
        init(_ m: String) { description = m }
    }

    /// Parses checkpoint text (it does not check the signature: `verify` does).
    public static func parse(_ text: String) throws(ParseError) -> AuditCheckpoint {
        let parts = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        guard let blank = parts.firstIndex(of: ""), blank >= 4 else { throw ParseError("not a checkpoint: expected origin, seq, hash and time lines, then a blank line") }
        let origin = parts[0]
        guard !origin.isEmpty, let seq = UInt64(parts[1]) else { throw ParseError("not a checkpoint: bad origin or seq line") }
        guard let h = Base64.decode(parts[2]), h.count == 32 else { throw ParseError("not a checkpoint: the hash line is not 32 bytes of base64") }
        guard parts[3].hasPrefix("time ") else { throw ParseError("not a checkpoint: no time line") }
        let time = String(parts[3].dropFirst(5))
        guard blank + 1 < parts.count else { throw ParseError("not a checkpoint: no signature line") }
        let sigLine = parts[blank + 1]
        let prefix = "— \(origin) "
        guard sigLine.hasPrefix(prefix), let raw = Base64.decode(String(sigLine.dropFirst(prefix.count))), raw.count == 68 else {
            throw ParseError("not a checkpoint: no signature line for \(origin)")
        }
        let cp = AuditCheckpoint(origin: origin, seq: seq, hash: AuditKeys.hex(h), time: time,
                                 keyId: AuditKeys.hex(Array(raw[0..<4])), signature: Array(raw[4...]))
        guard cp.body == parts[0...3].joined(separator: "\n") + "\n" else { throw ParseError("not a checkpoint: the body is not in canonical form") }
        return cp
    }

    /// True if the signature is the key's, over this body, for this origin.
    public func verify(_ key: AuditKeys.VerifierKey) -> Bool {
        guard key.origin == origin, key.keyId == keyId else { return false }
        return key.key?.isValidSignature(signature, for: Array(body.utf8)) ?? false
    }
}

/// Keys for audit checkpoints.
public enum AuditKeys {
    /// A public key as a signed-note verifier key: `<origin>+<key id hex>+<base64(0x01 || key)>`.
    public struct VerifierKey: Sendable {
        public var origin: String
        public var keyId: String
        /// The raw Ed25519 public key (swift-crypto's key types are not Sendable).
        public var raw: [UInt8]

        public init(origin: String, key: Curve25519.Signing.PublicKey) {
            self.origin = origin
            raw = Array(key.rawRepresentation)
            keyId = AuditKeys.keyId(origin: origin, publicKey: key)
        }

        public var key: Curve25519.Signing.PublicKey? { try? Curve25519.Signing.PublicKey(rawRepresentation: raw) }

        public var text: String { "\(origin)+\(keyId)+\(Base64.encode([0x01] + raw))" }

        public static func parse(_ text: String) -> VerifierKey? {
            let t = text.split(whereSeparator: \.isNewline).first.map(String.init) ?? ""
            let parts = t.split(separator: "+", maxSplits: 2, omittingEmptySubsequences: false).map(String.init)
            guard parts.count == 3, let raw = Base64.decode(parts[2]), raw.count == 33, raw[0] == 0x01,
                  let k = try? Curve25519.Signing.PublicKey(rawRepresentation: raw[1...]) else { return nil }
            let v = VerifierKey(origin: parts[0], key: k)
            return v.keyId == parts[1] ? v : nil
        }
    }

    public static func keyId(origin: String, publicKey: Curve25519.Signing.PublicKey) -> String {
        let d = SHA256.hash(data: Array(origin.utf8) + [0x0A, 0x01] + Array(publicKey.rawRepresentation))
        return hex(Array(d.prefix(4)))
    }

    public static func hex(_ b: [UInt8]) -> String {
        b.map { x in x < 16 ? "0" + String(x, radix: 16) : String(x, radix: 16) }.joined()
    }

    static func bytes(hex: String) -> [UInt8] {
        var out: [UInt8] = []
        var it = hex.utf8.makeIterator()
        while let a = it.next(), let b = it.next() {
            guard let hi = nibble(a), let lo = nibble(b) else { return [] }
            out.append(hi << 4 | lo)
        }
        return out
    }

    private static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case 0x30...0x39: return c - 0x30
        case 0x61...0x66: return c - 0x61 + 10
        case 0x41...0x46: return c - 0x41 + 10
        default: return nil
        }
    }
}

/// A witness's judgement of a new checkpoint against the last one it holds.
public enum CheckpointConsistency: Sendable, Equatable, CustomStringConvertible {
    /// The first one, or one that moves forward.
    case extends
    /// The same checkpoint again (same seq and hash).
    case same
    /// Fewer records than already witnessed: the log was cut or restored from an older copy.
    case rollback(had: UInt64, now: UInt64)
    /// The same seq with another hash: two different logs (re-sealed, or a second chain).
    case fork(seq: UInt64)
    /// Another origin or key than the one pinned.
    case foreign(String)
    /// The signature does not verify.
    case badSignature

    public var description: String {
        switch self {
        case .extends: return "extends the last checkpoint"
        case .same: return "same as the last checkpoint"
        case .rollback(let had, let now): return "ROLLBACK: witnessed seq \(had), now offered seq \(now): the log was cut or restored from an older copy"
        case .fork(let seq): return "FORK: a different chain hash at seq \(seq): the log was re-sealed or replaced"
        case .foreign(let why): return "FOREIGN: \(why)"
        case .badSignature: return "BAD SIGNATURE: the checkpoint was not signed by the pinned key"
        }
    }

    public var isAccepted: Bool { self == .extends || self == .same }

    /// Judges `new` against the last witnessed checkpoint (`last`), under the pinned key.
    /// A hash chain cannot prove that a longer log extends a shorter one without the records
    /// between; `verify --checkpoints` does that with the files. The witness refuses what it can
    /// tell alone: forged signatures, other keys, fewer records, and another hash at one seq.
    public static func judge(_ new: AuditCheckpoint, last: AuditCheckpoint?, key: AuditKeys.VerifierKey,
                             known: [UInt64: String] = [:]) -> CheckpointConsistency {
        guard new.origin == key.origin else { return .foreign("origin \(new.origin), pinned \(key.origin)") }
        guard new.keyId == key.keyId else { return .foreign("key \(new.keyId), pinned \(key.keyId)") }
        guard new.verify(key) else { return .badSignature }
        if let h = known[new.seq], h != new.hash { return .fork(seq: new.seq) }
        guard let last else { return .extends }
        if new.seq < last.seq { return .rollback(had: last.seq, now: new.seq) }
        if new.seq == last.seq { return new.hash == last.hash ? .same : .fork(seq: new.seq) }
        return .extends
    }
}

/// Standard base64 (RFC 4648, with padding).
public enum Base64 {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    public static func encode(_ b: [UInt8]) -> String {
        var out: [UInt8] = []
        var i = 0
        while i < b.count {
            let n = min(3, b.count - i)
            let x = UInt32(b[i]) << 16 | (n > 1 ? UInt32(b[i + 1]) << 8 : 0) | (n > 2 ? UInt32(b[i + 2]) : 0)
            out.append(alphabet[Int(x >> 18 & 63)])
            out.append(alphabet[Int(x >> 12 & 63)])
            out.append(n > 1 ? alphabet[Int(x >> 6 & 63)] : 0x3D)
            out.append(n > 2 ? alphabet[Int(x & 63)] : 0x3D)
            i += 3
        }
        return String(decoding: out, as: UTF8.self)
    }

    public static func decode(_ s: String) -> [UInt8]? {
        let c = Array(s.utf8)
        guard c.count % 4 == 0 else { return nil }
        var out: [UInt8] = []
        var i = 0
        while i < c.count {
            var x: UInt32 = 0
            var pad = 0
            for j in 0..<4 {
                let ch = c[i + j]
                let v: UInt32
                if ch == 0x3D {
                    guard i + 4 == c.count, j >= 2 else { return nil }
                    pad += 1
                    v = 0
                } else {
                    guard pad == 0, let idx = alphabet.firstIndex(of: ch) else { return nil }
                    v = UInt32(idx)
                }
                x = x << 6 | v
            }
            out.append(UInt8(x >> 16 & 0xFF))
            if pad < 2 { out.append(UInt8(x >> 8 & 0xFF)) }
            if pad < 1 { out.append(UInt8(x & 0xFF)) }
            i += 4
        }
        return out
    }
}
