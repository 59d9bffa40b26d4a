import Foundation

/// libvirt 9.0 refuses `virNodeDeviceGetAutostart` on a read-only connection, yet a read-only
/// monitor must still report autostart. For mdevs libvirt itself takes the flag from mdevctl's
/// definition (`/etc/mdevctl.d/<parent addr>/<uuid>`, `"start": "auto"`), so read it there.
enum MdevctlAutostart {
    static let configRoot = "/etc/mdevctl.d"

    /// The autostart flag from mdevctl's definition of the mdev in `xml`; false when the XML is not an
    /// mdev or no readable definition exists (a transient device has none).
    static func read(deviceXML xml: String, root: String = configRoot) -> Bool {
        guard case .mdev(let def)? = try? NodeDeviceXML.parse(xml), let address = def.parentAddress,
              !address.contains("/"), !def.uuid.contains("/"),
              let data = FileManager.default.contents(atPath: "\(root)/\(address)/\(def.uuid)"),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
        else { return false }
        return (object["start"] as? String) == "auto"
    }
}
