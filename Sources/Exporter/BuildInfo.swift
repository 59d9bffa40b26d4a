/// Version facts exported as `mdev_build_info` and shown on the landing page.
public struct BuildInfo: Hashable, Sendable {
    public var version: String
    /// The VCS revision the binary was built from; empty when unknown.
    public var revision: String
    public var swiftVersion: String

    /// - Parameters:
    ///   - version: The release version, e.g. `0.1.0`.
    ///   - revision: The VCS revision, e.g. a git commit hash; empty when unknown.
    ///   - swiftVersion: The compiler's language version; defaults to the one that compiled this module.
    public init(version: String, revision: String = "", swiftVersion: String = BuildInfo.compilerSwiftVersion) {
        self.version = version
        self.revision = revision
        self.swiftVersion = swiftVersion
    }

    /// The Swift version that compiled this module, to minor precision.
    public static var compilerSwiftVersion: String {
        #if compiler(>=6.5)
        "6.5+"
        #elseif compiler(>=6.4)
        "6.4"
        #elseif compiler(>=6.3)
        "6.3"
        #elseif compiler(>=6.2)
        "6.2"
        #elseif compiler(>=6.1)
        "6.1"
        #else
        "6.0"
        #endif
    }
}
