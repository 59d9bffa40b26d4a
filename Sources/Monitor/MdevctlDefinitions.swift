import Foundation

/// mdevctl's definition files (`/etc/mdevctl.d/<parent addr>/<uuid>`), where libvirt itself reads what a
/// persistent mdev is: whether it exists (persistence), `"start": "auto"` (autostart), and the type and
/// attrs its next start applies. Reading them on a local connection spares the full sync per-device RPCs,
/// and a read-only monitor still learns autostart, which libvirt 9.0 refuses it
/// (`virNodeDeviceGetAutostart`).
enum MdevctlDefinitions {
    static let configRoot = "/etc/mdevctl.d"

    /// The autostart flag from mdevctl's definition of the mdev in `xml`; false when the XML is not an
    /// mdev or no readable definition exists (a transient device has none).
    static func read(deviceXML xml: String, root: String = configRoot) -> Bool {
        guard case .mdev(let def)? = try? NodeDeviceXML.parse(xml), case .defined(true, _)? = definition(of: def, root: root)
        else { return false }
        return true
    }

    /// What mdevctl's definition files say of an mdev.
    enum Definition: Equatable {
        /// `<root>/<parent addr>/<uuid>` exists: libvirt lists the device as persistent. `config` is nil
        /// when the file's `mdev_type` or `attrs` cannot be read as mdevctl writes them.
        case defined(autostart: Bool, config: MdevConfig?)
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
        return .defined(autostart: (object["start"] as? String) == "auto", config: config(object))
    }

    /// `{"mdev_type": "…", "attrs": [{"name": "value"}, …]}`: attrs are one-key objects, in the order the
    /// vendor driver gets them.
    private static func config(_ object: [String: Any]) -> MdevConfig? {
        guard let type = object["mdev_type"] as? String else { return nil }
        var attrs: [MdevAttr] = []
        switch object["attrs"] {
        case nil, is NSNull: break
        case let list as [[String: Any]]:
            for attr in list {
                guard attr.count == 1, let only = attr.first, let value = only.value as? String else { return nil }
                attrs.append(MdevAttr(name: only.key, value: value))
            }
        default: return nil
        }
        return MdevConfig(mdevType: type, attrs: attrs)
    }
}
