/// Version facts for `--version` and `mdev_build_info`.
enum BuildInfo {
    static let version = "0.1.0"
}
