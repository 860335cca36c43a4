/// What this build is: `redlined --version`, `redlinectl --version`, `status` and the
/// `redline_build_info` metric all say this one version.
public enum BuildInfo {
    public static let version = "0.1.0"
}
