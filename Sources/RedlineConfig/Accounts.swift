import RedlineCore
import RedlineSync

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The user and group databases (passwd and group, through NSS), or a fixed set for tests.
public struct AccountDatabase: Sendable {
    public struct User: Sendable, Hashable {
        public var name: String
        public var uid: UInt32
        /// Primary group.
        public var gid: UInt32
        public init(name: String, uid: UInt32, gid: UInt32) {
            self.name = name
            self.uid = uid
            self.gid = gid
        }
    }

    public struct Group: Sendable, Hashable {
        public var name: String
        public var gid: UInt32
        /// Supplementary members, by user name.
        public var members: [String]
        public init(name: String, gid: UInt32, members: [String]) {
            self.name = name
            self.gid = gid
            self.members = members
        }
    }

    /// getpwnam
    public var userNamed: @Sendable (String) -> User?
    /// getpwuid
    public var userWithUID: @Sendable (UInt32) -> User?
    /// Every entry with this gid: getgrgid and, since a gid may be listed more than once, getgrent.
    public var groupsWithGID: @Sendable (UInt32) -> [Group]

    public init(userNamed: @escaping @Sendable (String) -> User?, userWithUID: @escaping @Sendable (UInt32) -> User?,
                groupsWithGID: @escaping @Sendable (UInt32) -> [Group]) {
        self.userNamed = userNamed
        self.userWithUID = userWithUID
        self.groupsWithGID = groupsWithGID
    }

    /// A fixed database.
    public init(users: [User], groups: [Group]) {
        self.init(userNamed: { n in users.first { $0.name == n } },
                  userWithUID: { u in users.first { $0.uid == u } },
                  groupsWithGID: { g in groups.filter { $0.gid == g } })
    }

    /// The system's databases.
    public static let system = AccountDatabase(
        userNamed: { name in SystemAccounts.user { pwd, buf, n, res in getpwnam_r(name, pwd, buf, n, res) } },
        userWithUID: { uid in SystemAccounts.user { pwd, buf, n, res in getpwuid_r(uid_t(uid), pwd, buf, n, res) } },
        groupsWithGID: { gid in SystemAccounts.groups(gid: gid) })
}

enum SystemAccounts {
    /// getgrent walks process-wide state: one walker at a time.
    static let groupWalk = Lock(())

    static func user(_ call: (UnsafeMutablePointer<passwd>, UnsafeMutablePointer<CChar>, Int,
                              UnsafeMutablePointer<UnsafeMutablePointer<passwd>?>) -> Int32) -> AccountDatabase.User? {
        var size = 4096
        while size <= 1 << 20 {
            var pwd = passwd()
            var result: UnsafeMutablePointer<passwd>?
            var buf = [CChar](repeating: 0, count: size)
            let rc = buf.withUnsafeMutableBufferPointer { call(&pwd, $0.baseAddress!, size, &result) }
            if rc == ERANGE { size *= 4; continue }
            guard rc == 0, let r = result else { return nil }
            return AccountDatabase.User(name: String(cString: r.pointee.pw_name), uid: UInt32(r.pointee.pw_uid), gid: UInt32(r.pointee.pw_gid))
        }
        return nil
    }

    static func makeGroup(_ g: UnsafeMutablePointer<group>) -> AccountDatabase.Group {
        var members: [String] = []
        if var m = g.pointee.gr_mem {
            while let name = m.pointee {
                members.append(String(cString: name))
                m += 1
            }
        }
        return AccountDatabase.Group(name: String(cString: g.pointee.gr_name), gid: UInt32(g.pointee.gr_gid), members: members)
    }

    static func groups(gid: UInt32) -> [AccountDatabase.Group] {
        var out: [AccountDatabase.Group] = []
        var size = 4096
        while size <= 1 << 22 {
            var grp = group()
            var result: UnsafeMutablePointer<group>?
            var buf = [CChar](repeating: 0, count: size)
            let rc = buf.withUnsafeMutableBufferPointer { getgrgid_r(gid_t(gid), &grp, $0.baseAddress!, size, &result) }
            if rc == ERANGE { size *= 4; continue }
            if rc == 0, let r = result { out.append(makeGroup(r)) }
            break
        }
        groupWalk.withLock { _ in
            setgrent()
            while let g = getgrent() {
                if UInt32(g.pointee.gr_gid) == gid { out.append(makeGroup(g)) }
            }
            endgrent()
        }
        var seen = Set<AccountDatabase.Group>()
        return out.filter { seen.insert($0).inserted }
    }
}
