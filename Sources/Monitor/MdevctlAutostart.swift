import Foundation

/// libvirt 9.0 refuses `virNodeDeviceGetAutostart` on a read-only connection, yet a read-only
/// monitor must still report autostart. For mdevs libvirt itself takes the flag from mdevctl's
/// definition (`/etc/mdevctl.d/<parent addr>/<uuid>`, `"start": "auto"`), so read it there.
enum MdevctlAutostart {
    static let configRoot = "/etc/mdevctl.d"

    /// The autostart flag from mdevctl's definition of the mdev in `xml`; false when the XML is not an
    /// mdev or no readable definition exists (a transient device has none).
    static func read(deviceXML xml: String, root: String = configRoot) -> Bool {
        guard case .mdev(let def)? = try? NodeDeviceXML.parse(xml) else { return false }
        return definition(of: def, root: root) == .defined(autostart: true)
    }

    /// What mdevctl's definition files say of an mdev.
    enum Definition: Equatable {
        /// `<root>/<parent addr>/<uuid>` exists: libvirt lists the device as persistent.
        case defined(autostart: Bool)
        /// No such file: the device is transient.
        case none
    }

    /// mdevctl's definition of `def`, or nil when the files cannot answer (no parent address in the XML,
    /// a definition that cannot be read). The caller checks that `root` exists at all.
    static func definition(of def: MdevDefinition, root: String = configRoot) -> Definition? {
        guard let address = def.parentAddress, !address.contains("/"), !def.uuid.contains("/") else { return nil }
        let path = "\(root)/\(address)/\(def.uuid)"
        guard FileManager.default.fileExists(atPath: path) else { return Definition.none }
        guard let data = FileManager.default.contents(atPath: path),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return nil }
        return .defined(autostart: (object["start"] as? String) == "auto")
    }
}
