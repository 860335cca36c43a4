import Crypto

/// Free text an agent sends (a `reason`, "override codes", any member besides `id` and
/// `value`) is inert (RL-10): the decision never sees it, and the audit log keeps it as
/// evidence. It is kept verbatim up to `maxStoredBytes`; longer text is kept as its first
/// `maxStoredBytes` bytes with the SHA-256 and length of the whole, so no agent can make
/// the audit log (and everyone's decisions, which wait for it) carry megabytes.
public enum FreeText {
    /// The most bytes of free text stored per request (4 KiB).
    public static let maxStoredBytes = 4096

    /// The audit form of `members`: the object as sent when its encoding fits, else
    /// `{"excerpt": first bytes as text, "bytes": total, "sha256": hex of the whole}`.
    public static func stored(_ members: [(String, JSON)]) -> JSON { capped(.object(members)) }

    /// `value` as sent when its encoding fits in `maxStoredBytes`, else its excerpt, length and hash.
    public static func capped(_ value: JSON) -> JSON {
        let whole = value
        let text = whole.encoded()
        let bytes = Array(text.utf8)
        if bytes.count <= maxStoredBytes { return whole }
        return .obj([
            ("excerpt", .string(prefix(text, maxBytes: maxStoredBytes))),
            ("bytes", .number(Double(bytes.count))),
            ("sha256", .string(SHA256.hash(data: bytes).map { b in
                let h = String(b, radix: 16)
                return h.count == 1 ? "0" + h : h
            }.joined())),
        ])
    }

    /// The longest prefix of `s` whose UTF-8 is at most `maxBytes` long, cut at a character boundary.
    static func prefix(_ s: String, maxBytes: Int) -> String {
        var n = 0
        var end = s.startIndex
        for (i, ch) in zip(s.indices, s) {
            let w = ch.utf8.count
            if n + w > maxBytes { break }
            n += w
            end = s.index(after: i)
        }
        return String(s[..<end])
    }
}
