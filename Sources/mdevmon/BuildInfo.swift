import Exporter
import Foundation

/// Version facts for `--version` and `mdev_build_info`.
enum Version {
    static let string = "0.1.0"

    /// SwiftPM has no build-time stamping without a plugin, so the revision comes from
    /// MDEVMON_REVISION in the environment (deploy/install.sh sets it in the unit) or reads "unknown".
    static var buildInfo: Exporter.BuildInfo {
        Exporter.BuildInfo(version: string, revision: ProcessInfo.processInfo.environment["MDEVMON_REVISION"] ?? "unknown")
    }
}
