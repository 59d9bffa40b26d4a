/// The families with one line per device. They make up nearly all of a large scrape, so each is
/// written straight into an array of exactly the right size from the table's pre-escaped label sets.
enum DeviceFamilies {
    static func render(_ table: borrowing DeviceTable) -> [RenderedFamily] {
        [
            family(table, "mdev_device_active", help: "Whether the mdev is active (created) now: 1 or 0.") {
                table.flags($0) & DeviceTable.active != 0 ? 1 : 0
            },
            family(table, "mdev_device_autostart", help: "Whether libvirt starts the mdev at boot: 1 or 0.") {
                table.flags($0) & DeviceTable.autostart != 0 ? 1 : 0
            },
            family(table, "mdev_device_domain_references",
                   help: "Number of domains whose persistent XML references the mdev's UUID.") {
                table.references($0)
            },
            family(table, "mdev_device_info",
                   help: "Metadata of each mdev libvirt knows (active or defined); always 1.",
                   withInfoLabels: true) { _ in 1 },
            family(table, "mdev_device_persistent",
                   help: "Whether the mdev is defined (persistent) in libvirt: 1 or 0.") {
                table.flags($0) & DeviceTable.persistent != 0 ? 1 : 0
            },
        ]
    }

    /// `name{uuid="…",parent="…"[,info labels]} value` for every device, after the header.
    private static func family(
        _ table: borrowing DeviceTable, _ name: String, help: String, withInfoLabels: Bool = false,
        value: (Int) -> Int
    ) -> RenderedFamily {
        var header = ByteSink(capacity: 256)
        MetricsWriter.writeHeader(name, type: .gauge, help: help, to: &header)
        let nameBytes = Array(name.utf8)
        var size = header.count
        for i in table.order {
            size += nameBytes.count + table.labelRange(i).count + 3 + decimalLength(value(i))
            if withInfoLabels { size += table.infoRange(i).count }
        }
        let bytes = [UInt8](unsafeUninitializedCapacity: size) { buffer, initialized in
            var out = buffer.baseAddress!
            func put(_ source: UnsafePointer<UInt8>, _ count: Int) {
                out.initialize(from: source, count: count)
                out += count
            }
            put(header.pointer(at: 0), header.count)
            nameBytes.withUnsafeBufferPointer { name in
                for i in table.order {
                    put(name.baseAddress!, name.count)
                    let labels = table.labelRange(i)
                    put(table.labels.pointer(at: labels.lowerBound), labels.count)
                    if withInfoLabels {
                        let info = table.infoRange(i)
                        put(table.infoLabels.pointer(at: info.lowerBound), info.count)
                    }
                    out[0] = UInt8(ascii: "}")
                    out[1] = UInt8(ascii: " ")
                    out += 2
                    out = writeDecimal(value(i), to: out)
                    out[0] = UInt8(ascii: "\n")
                    out += 1
                }
            }
            precondition(out == buffer.baseAddress! + size, "size computed for \(name) is off")
            initialized = size
        }
        return RenderedFamily(name: name, bytes: bytes)
    }

    private static func decimalLength(_ value: Int) -> Int {
        (value < 0 ? 1 : 0) + digitCount(value.magnitude)
    }

    private static func digitCount(_ magnitude: UInt) -> Int {
        var count = 1
        var rest = magnitude / 10
        while rest > 0 {
            count += 1
            rest /= 10
        }
        return count
    }

    private static func writeDecimal(_ value: Int, to out: UnsafeMutablePointer<UInt8>) -> UnsafeMutablePointer<UInt8> {
        var out = out
        if value < 0 {
            out.initialize(to: UInt8(ascii: "-"))
            out += 1
        }
        var magnitude = value.magnitude
        let length = digitCount(magnitude)
        var i = length
        repeat {
            i -= 1
            (out + i).initialize(to: UInt8(ascii: "0") + UInt8(magnitude % 10))
            magnitude /= 10
        } while magnitude > 0
        return out + length
    }
}
