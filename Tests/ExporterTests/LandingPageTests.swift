@testable import Exporter
import Foundation
import Monitor
import Testing

struct FakeReferenceProblems: LandingContributor {
    func landingSections(snapshot: IndexSnapshot) -> [LandingSection] {
        [LandingSection(title: "Reference problems <1>", columns: ["Domain", "UUID", "Reason"],
                        rows: snapshot.sortedDomains.map { [$0.name, "<script>alert(1)</script>"] })]
    }
}

@Suite struct LandingPageTests {
    private func page(_ snapshot: IndexSnapshot = Fixtures.small(), sections: [LandingSection] = []) -> String {
        LandingPage.render(snapshot: snapshot, build: Fixtures.build, telemetryPath: "/metrics", sections: sections)
    }

    @Test func showsStatusCountsAndDevices() {
        let html = page()
        #expect(html.hasPrefix("<!DOCTYPE html>"))
        #expect(html.contains("<tr><th>URI</th><td>qemu:///system</td></tr>"))
        #expect(html.contains("<tr><th>Connection</th><td>connected, synced</td></tr>"))
        // The time itself, not "59 s ago": the page is cached while the index does not change.
        #expect(html.contains("<tr><th>Last sync</th><td>2023-11-14T22:13:20Z</td></tr>"))
        #expect(html.contains("<tr><th>Reconnects</th><td>2</td></tr>"))
        #expect(html.contains("<tr><td>total</td><td>2</td></tr>"))
        #expect(html.contains("<tr><td>active</td><td>1</td></tr>"))
        #expect(html.contains("<tr><td>inactive</td><td>1</td></tr>"))
        #expect(html.contains("<th>UUID</th><th>Parent</th><th>Type</th><th>State</th><th>Persistence</th>"
                              + "<th>Autostart</th><th>Domains</th>"))
        #expect(html.contains("<td>22222222-2222-4222-8222-222222222222</td><td>pci_0000_3b_00_0</td><td>nvidia-558</td>"
                              + "<td>inactive</td><td>persistent</td><td>no</td><td></td>"))
        #expect(!html.contains("<script"))
    }

    @Test func showsTheErrorWhenDisconnected() {
        let html = page(Fixtures.small(connected: false, synced: false))
        #expect(html.contains("<td class=\"bad\">disconnected</td>"))
        #expect(html.contains("<tr><th>Last sync</th><td>never</td></tr>"))
        #expect(html.contains("<tr><th>Problem</th><td>libvirt unreachable (libvirt&#39;s own error is in the journal)</td></tr>"))
        #expect(!html.contains("libvirt-sock"), "libvirt's own error text is for the journal")
    }

    @Test func namesAStuckCall() {
        var snapshot = Fixtures.small()
        snapshot.status.stuckCall = "start node device mdev_x"
        let html = page(snapshot)
        #expect(html.contains("<tr><th>Problem</th><td>libvirt call not returning: start node device mdev_x</td></tr>"))
    }

    @Test func contributedSectionsAreEscapedAndPadded() {
        let html = page(sections: FakeReferenceProblems().landingSections(snapshot: Fixtures.small()))
        #expect(html.contains("<h2>Reference problems &lt;1&gt;</h2>"))
        #expect(html.contains("<tr><td>vm &quot;q&quot; \\ &lt;b&gt;\nx</td><td>&lt;script&gt;alert(1)&lt;/script&gt;</td><td></td></tr>"))
        #expect(!html.contains("<script"))
        let empty = page(sections: [LandingSection(title: "Reference problems", columns: ["Domain"], rows: [])])
        #expect(empty.contains("<h2>Reference problems</h2>\n<p>None.</p>"))
    }

    @Test func failAndWarnCellsStandOut() {
        let html = page(sections: [LandingSection(
            title: "Host checks", columns: ["Check", "Status"],
            rows: [["udev_rules", "FAIL"], ["state_dir", "WARN"], ["libvirt", "PASS"]])])
        #expect(html.contains("<tr><td>udev_rules</td><td class=\"bad\">FAIL</td></tr>"))
        #expect(html.contains("<tr><td>state_dir</td><td class=\"bad\">WARN</td></tr>"))
        #expect(html.contains("<tr><td>libvirt</td><td>PASS</td></tr>"))
    }

    @Test func escapesEverySpecialCharacter() {
        #expect(LandingPage.escape(#"<a href="x">'&'</a>"#) == "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;")
        #expect(LandingPage.escape("plain") == "plain")
    }
}
