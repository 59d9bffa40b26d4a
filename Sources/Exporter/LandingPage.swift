import Foundation
import Monitor

/// The `/` page: plain server-rendered HTML without JavaScript, every string escaped.
///
/// A pure function of what it is given (no clock): the page is cached until what it shows changes, so
/// it gives the last sync's time, not how long ago that was.
enum LandingPage {
    /// - Parameters:
    ///   - sections: Contributors' sections, shown after the device table.
    static func render(
        snapshot: IndexSnapshot, build: BuildInfo, telemetryPath: String, sections: [LandingSection]
    ) -> String {
        let status = snapshot.status
        let devices = snapshot.sortedDevices
        var html = ""
        html.reserveCapacity(4096 + devices.count * 400)

        html += """
            <!DOCTYPE html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            <title>mdevmon</title>
            <style>
            body { font-family: sans-serif; margin: 2em; }
            table { border-collapse: collapse; margin-bottom: 1em; }
            th, td { border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: left; }
            td.mono { font-family: monospace; }
            .bad { color: #b00; }
            </style>
            </head>
            <body>
            <h1>mdevmon</h1>

            """
        var versionLine = "Version \(escape(build.version))"
        if !build.revision.isEmpty { versionLine += " (revision \(escape(build.revision)))" }
        versionLine += ", Swift \(escape(build.swiftVersion))"
        html += "<p>\(versionLine)</p>\n"
        html += "<p><a href=\"\(escape(telemetryPath))\">Metrics</a> · "
        html += "<a href=\"/api/v1/devices\">Devices (JSON)</a> · <a href=\"/healthz\">Health</a></p>\n"

        html += "<h2>libvirt</h2>\n<table>\n"
        row(&html, header: "URI", status.uri)
        let state = status.connected ? (status.synced ? "connected, synced" : "connected, syncing") : "disconnected"
        html += "<tr><th>Connection</th><td\(status.connected && status.synced ? "" : " class=\"bad\"")>"
        html += "\(escape(state))</td></tr>\n"
        if let last = status.lastSyncTime {
            row(&html, header: "Last sync", last.formatted(Date.ISO8601FormatStyle()))
        } else {
            row(&html, header: "Last sync", "never")
        }
        row(&html, header: "Reconnects", String(status.reconnects))
        // The short reason /healthz gives, not libvirt's own error text: the journal has that.
        let health = Endpoints.health(status)
        if !health.healthy {
            row(&html, header: "Problem", status.connected ? health.reason : "\(health.reason) (libvirt's own error is in the journal)")
        }
        html += "</table>\n"

        let active = devices.count { $0.active }
        let persistent = devices.count { $0.persistent }
        let autostart = devices.count { $0.autostart }
        let referenced = devices.count { !$0.domains.isEmpty }
        html += "<h2>Devices</h2>\n<table>\n<tr><th>State</th><th>Count</th></tr>\n"
        for (label, count) in [
            ("total", devices.count), ("active", active), ("inactive", devices.count - active),
            ("persistent", persistent), ("transient", devices.count - persistent), ("autostart", autostart),
            ("referenced by a domain", referenced),
        ] {
            html += "<tr><td>\(label)</td><td>\(count)</td></tr>\n"
        }
        html += "</table>\n"
        html += "<p>\(snapshot.state.parents.count) parent device(s), \(snapshot.state.domains.count) domain(s).</p>\n"

        table(&html, columns: ["UUID", "Parent", "Type", "State", "Persistence", "Autostart", "Domains"],
              rows: devices.map { d in
                  [d.uuid, d.parent, d.mdevType, d.active ? "active" : "inactive",
                   d.persistent ? "persistent" : "transient", d.autostart ? "yes" : "no",
                   d.domains.joined(separator: ", ")]
              }, emptyText: "No mdevs.")

        for section in sections {
            html += "<h2>\(escape(section.title))</h2>\n"
            table(&html, columns: section.columns, rows: section.rows, emptyText: section.emptyText)
        }
        html += "</body>\n</html>\n"
        return html
    }

    private static func row(_ html: inout String, header: String, _ value: String) {
        html += "<tr><th>\(escape(header))</th><td>\(escape(value))</td></tr>\n"
    }

    private static func table(_ html: inout String, columns: [String], rows: [[String]], emptyText: String) {
        guard !rows.isEmpty else {
            html += "<p>\(escape(emptyText))</p>\n"
            return
        }
        html += "<table>\n<tr>"
        for column in columns { html += "<th>\(escape(column))</th>" }
        html += "</tr>\n"
        for row in rows {
            html += "<tr>"
            for i in 0..<max(columns.count, row.count) {
                let cell = i < row.count ? row[i] : ""
                // A contributor's FAIL or WARN cell (the host checks) stands out like a lost connection.
                html += cell == "FAIL" || cell == "WARN" ? "<td class=\"bad\">" : "<td>"
                html += "\(escape(cell))</td>"
            }
            html += "</tr>\n"
        }
        html += "</table>\n"
    }

    /// Escapes text for element content and double- or single-quoted attribute values.
    static func escape(_ text: String) -> String {
        guard text.utf8.contains(where: { $0 == 0x26 || $0 == 0x3C || $0 == 0x3E || $0 == 0x22 || $0 == 0x27 })
        else { return text }
        var out = ""
        out.reserveCapacity(text.utf8.count + 16)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }
}
