public import Logging

/// Each kind of event an operator may filter or alert on, with its stable journal `MESSAGE_ID`.
///
/// Log call sites attach `MessageID.x.metadata` under the key `message.id`; the journal handler turns
/// that key into the `MESSAGE_ID` field like any other dotted key. The IDs never change: operators'
/// alerting and `deploy/mdevmon.catalog` depend on them.
public enum MessageID: String, CaseIterable, Sendable {
    case deviceCreated = "202ea77633e84d68920fd63160db7796"
    case deviceDeleted = "9bf4b6fba937428b83297b40068e5d20"
    case deviceDefined = "174cc5720df84ff6a75fe1df5fa4d63d"
    case deviceUndefined = "89a56dbb5db84d15a52fc34802740f19"
    case deviceUpdated = "8ea4f381660744b3ba51e7593bb6768e"
    case connectionLost = "5c6802befd4b48938873a4a8de99fc7f"
    case connectionRestored = "913ae51d9a9d4d359f437a1f6f695eee"
    case restoreAttempted = "96d95f84ede645a5a93a0d434be17cc2"
    case restoreSucceeded = "bbfa2ce917cb44fd8bf21a9f81cc114f"
    case restoreFailed = "ecbbc38f1a6e4e3291993e77d59e2f02"
    case restoreGaveUp = "7ea09811fff94b9eb90d12d1bbcdd1f5"
    case referenceProblem = "5fb8310ebd9e4045a60c41deca91a9fa"
    case referenceResolved = "337eb4be11954663930d3186f213c1cd"
    case domainReferencesChanged = "ff67fda2eafc445cade4fb78414154cc"
    case domainStateChanged = "bf0489caab034b228c4cade229f7765c"
    case initialSyncCompleted = "45b100f77f244d948f0e79b2760d4ffc"
    case libvirtOperationFailed = "e27d848b8a89459d9cfe048c30700b24"
    case hostCheckPassed = "e50533feaa1ae68fb37cbf26abfafd10"
    case hostCheckWarning = "1dfb931459d35ccc14fa56044309f131"
    case hostCheckFailed = "6d04e6c4babbbbb272c8411acf974adf"
    case deviceUseChanged = "cc19ff07188b43bc91c5ab9c22dde7ca"
    case deviceRemovalFailed = "8727d23047c24a02b394ed0dc3b06afa"
    case definitionDrifted = "5dc25d7424044f988312caf6715613bc"
    case definitionInSync = "2e49b99ccfcd4b7db9360793a5071574"
    case libvirtCallStuck = "5261558ee6eb45a2ae80ad5f877e6363"
    case libvirtCallReturned = "9124c933cde045c592b21930604615fc"

    /// The metadata key the journal handler maps to `MESSAGE_ID`.
    public static let metadataKey = "message.id"

    public var id: String { rawValue }

    public var metadata: Logger.Metadata { [Self.metadataKey: .string(rawValue)] }
}

/// Dotted metadata keys shared by every module; the journal handler upper-cases them
/// (`mdev.uuid` → `MDEV_UUID`).
public enum LogKey {
    public static let mdevUUID = "mdev.uuid"
    public static let mdevParent = "mdev.parent"
    public static let mdevType = "mdev.type"
    public static let mdevName = "mdev.name"
    public static let domainName = "domain.name"
    public static let libvirtURI = "libvirt.uri"
    /// What a libvirt call that did not return was doing (`LibvirtCallWatch`).
    public static let libvirtCall = "libvirt.call"
    public static let error = "error"
    public static let checkID = "check.id"
    public static let checkStatus = "check.status"
    public static let checkFix = "check.fix"
    public static let libvirtErrorCode = "libvirt.error.code"
    public static let libvirtErrorDomain = "libvirt.error.domain"

    /// Journal fields for a failure: the error's text, and libvirt's own code and domain when libvirt
    /// raised it (`LIBVIRT_ERROR_CODE=55`), so an alert can match on what libvirt said.
    public static func fields(of error: any Error) -> Logger.Metadata {
        var fields: Logger.Metadata = [Self.error: .string("\(error)")]
        if let e = error as? LibvirtError {
            fields[Self.error] = .string(e.message)
            fields[Self.libvirtErrorCode] = .string(String(e.code))
            fields[Self.libvirtErrorDomain] = .string(String(e.domain))
        }
        return fields
    }
}
