#if canImport(Glibc)
import Glibc
#endif
import Crypto
import RedlineCore

/// The checkpoint signing key: `audit.key` in the state directory, mode 0600, created on first start.
enum AuditKeyFile {
    /// Loads the key, or creates it (durably) if there is none. Refuses a key others can read.
    static func loadOrCreate(stateDir: String) throws(StartupError) -> Curve25519.Signing.PrivateKey {
        let path = stateDir + "/audit.key"
        var st = stat()
        if stat(path, &st) == 0 {
            guard st.st_mode & 0o077 == 0 else {
                throw StartupError(message: "\(path) is readable or writable by others (mode \(String(st.st_mode & 0o777, radix: 8))): chmod 600 it, and treat the key as exposed", exitCode: 78)
            }
            guard let bytes = AuditLog.readFile(path),
                  let raw = Base64.decode(String(decoding: bytes, as: UTF8.self).filter { !$0.isWhitespace }),
                  let key = try? Curve25519.Signing.PrivateKey(rawRepresentation: raw) else {
                throw StartupError(message: "\(path): not an audit signing key (base64 of 32 bytes)", exitCode: 78)
            }
            return key
        }
        let key = Curve25519.Signing.PrivateKey()
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw StartupError(message: "cannot create \(path): \(AuditLog.errorText())", exitCode: 74) }
        defer { close(fd) }
        do {
            try AuditLog.writeAll(fd, Array((Base64.encode(Array(key.rawRepresentation)) + "\n").utf8))
            guard fsync(fd) == 0 else { throw AuditLog.OpenError.io("fsync of \(path): \(AuditLog.errorText())") }
            try AuditLog.syncDirectory(stateDir)
        } catch {
            unlink(path)
            throw StartupError(message: "cannot write \(path): \(error)", exitCode: 74)
        }
        return key
    }

    /// Writes the public key (signed-note verifier key) beside it, for witnesses to pin.
    static func publish(_ key: AuditKeys.VerifierKey, stateDir: String) throws(StartupError) {
        let path = stateDir + "/audit.pub"
        if let old = AuditLog.readFile(path), String(decoding: old, as: UTF8.self) == key.text + "\n" { return }
        do { try AuditLog.writeDurably(path, key.text + "\n", mode: 0o644) } catch {
            throw StartupError(message: "cannot write \(path): \(error)", exitCode: 74)
        }
    }
}
