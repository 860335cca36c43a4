#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Who may change what the daemon loads, as sshd's StrictModes asks: every file it read (the
/// site file and every profile file of the devices folder, whatever its name) and every folder
/// holding one must be owned by root or the daemon's user and writable by nobody else. A
/// writable folder is as bad as a writable file: anyone who can write it can replace the file.
public enum ConfigFileCheck {
    /// One refused file or folder, with the command that fixes it.
    public struct Problem: Sendable, Hashable, CustomStringConvertible {
        public var path: String
        public var message: String
        public var description: String { message }
    }

    /// The problems of `files` and `folders`, for a daemon running as `daemonUID`
    /// (both root and `daemonUID` may own them). Empty when everything is safe.
    public static func problems(files: [String], folders: [String], daemonUID: UInt32 = UInt32(geteuid())) -> [Problem] {
        var out: [Problem] = []
        var seen = Set<String>()
        for (path, isFolder) in folders.map({ ($0, true) }) + files.map({ ($0, false) }) where seen.insert(path).inserted {
            out += problems(path: path, isFolder: isFolder, daemonUID: daemonUID)
        }
        return out
    }

    /// Every file and folder of a loaded site.
    public static func problems(_ loaded: LoadedSite, daemonUID: UInt32 = UInt32(geteuid())) -> [Problem] {
        problems(files: loaded.files, folders: loaded.folders, daemonUID: daemonUID)
    }

    static func problems(path: String, isFolder: Bool, daemonUID: UInt32) -> [Problem] {
        let what = isFolder ? "folder" : "file"
        var st = stat()
        // stat follows symlinks: the target is what is read. The link itself is only as safe as
        // its folder, which is checked too.
        guard stat(path, &st) == 0 else {
            return [Problem(path: path, message: "\(what) \(path): \(String(cString: strerror(errno)))")]
        }
        var out: [Problem] = []
        let type = st.st_mode & S_IFMT
        if isFolder, type != S_IFDIR {
            out.append(Problem(path: path, message: "\(path) should be a folder"))
        } else if !isFolder, type != S_IFREG {
            out.append(Problem(path: path, message: "\(path) is not a regular file; a safety configuration must be one"))
        }
        let mode = st.st_mode & 0o7777
        if mode & 0o022 != 0 {
            out.append(Problem(path: path, message: "\(what) \(path) is writable by \(mode & 0o002 != 0 ? "anyone" : "its group") (mode \(String(mode, radix: 8))); "
                               + "a safety configuration must be writable by its owner only: chmod go-w \(path)"))
        }
        let owner = UInt32(st.st_uid)
        if owner != 0 && owner != daemonUID {
            out.append(Problem(path: path, message: "\(what) \(path) is owned by uid \(owner), neither root nor redlined's user (uid \(daemonUID)); "
                               + "only they may own a safety configuration: chown root \(path)"))
        }
        return out
    }
}
