@testable import Exporter
import Foundation
import TestSupport
import Testing

@Suite struct TLSAuthTests {
    private func configuration(webConfig: String) -> ExporterConfiguration {
        ExporterConfiguration(
            listenAddresses: [ListenAddress(host: "127.0.0.1", port: 0)], webConfigFile: webConfig,
            build: Fixtures.build)
    }

    @Test func tlsWithBasicAuth() async throws {
        let certificate = try await TestCertificate()
        defer { certificate.dir.remove() }
        let hash = WebConfig.hashPassword("hunter2", cost: 4)
        let web = try certificate.dir.file("web.yml", """
            tls_server_config:
              cert_file: c.pem
              key_file: k.pem
            basic_auth_users:
              prometheus: \(hash)
            """)
        try await withServer(configuration(webConfig: web)) { port async throws in
            let https = "https://127.0.0.1:\(port)"
            // Plain HTTP to a TLS port gets no HTTP response.
            let plain = try await curl(["http://127.0.0.1:\(port)/metrics"])
            #expect(plain.exitCode != 0 || plain.status != 200)

            let anonymous = try await curl(["--cacert", certificate.certFile, "\(https)/metrics"])
            #expect(anonymous.status == 401)
            #expect(anonymous.headers["www-authenticate"] == "Basic")

            let wrong = try await curl(["--cacert", certificate.certFile, "-u", "prometheus:hunter3", "\(https)/metrics"])
            #expect(wrong.status == 401)
            #expect(wrong.headers["www-authenticate"] == "Basic")

            let unknownUser = try await curl(["--cacert", certificate.certFile, "-u", "root:hunter2", "\(https)/"])
            #expect(unknownUser.status == 401)

            let right = try await curl(["--cacert", certificate.certFile, "-u", "prometheus:hunter2", "--compressed",
                                        "\(https)/metrics"])
            #expect(right.status == 200)
            #expect(right.headers["content-encoding"] == "gzip")
            #expect(right.bodyText.contains("# TYPE mdev_device_info gauge"))

            // Auth covers every path, as with exporter-toolkit.
            #expect(try await curl(["--cacert", certificate.certFile, "\(https)/healthz"]).status == 401)
            #expect(try await curl(["--cacert", certificate.certFile, "\(https)/nope"]).status == 401)
            #expect(try await curl(["--cacert", certificate.certFile, "-u", "prometheus:hunter2", "\(https)/nope"])
                .status == 404)
        }
    }

    @Test func basicAuthOverPlainHTTP() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let web = try dir.file("web.yml", "basic_auth_users:\n  alice: \(WebConfig.hashPassword("pw", cost: 4))\n")
        try await withServer(configuration(webConfig: web)) { port async throws in
            #expect(try await curl(["http://127.0.0.1:\(port)/healthz"]).status == 401)
            #expect(try await curl(["-u", "alice:pw", "http://127.0.0.1:\(port)/healthz"]).status == 200)
        }
    }

    @Test func minimumTLSVersionIsEnforced() async throws {
        let certificate = try await TestCertificate()
        defer { certificate.dir.remove() }
        let web = try certificate.dir.file(
            "web.yml", "tls_server_config: {cert_file: c.pem, key_file: k.pem, min_version: TLS13}\n")
        try await withServer(configuration(webConfig: web)) { port async throws in
            let url = "https://127.0.0.1:\(port)/healthz"
            #expect(try await curl(["--cacert", certificate.certFile, "--tlsv1.3", url]).status == 200)
            let old = try await curl(["--cacert", certificate.certFile, "--tls-max", "1.2", url])
            #expect(old.exitCode != 0)
        }
    }

    @Test func clientCertificatesAreRequiredAndVerified() async throws {
        let server = try await TestCertificate()
        defer { server.dir.remove() }
        let client = try await TestCertificate()
        defer { client.dir.remove() }
        let web = try server.dir.file("web.yml", """
            tls_server_config:
              cert_file: c.pem
              key_file: k.pem
              client_auth_type: RequireAndVerifyClientCert
              client_ca_file: \(client.certFile)
            """)
        try await withServer(configuration(webConfig: web)) { port async throws in
            let url = "https://127.0.0.1:\(port)/healthz"
            let without = try await curl(["--cacert", server.certFile, url])
            #expect(without.status != 200)
            let with = try await curl(["--cacert", server.certFile, "--cert", client.certFile, "--key", client.keyFile, url])
            #expect(with.status == 200, "\(with.stderr)")
            // A certificate the CA file does not vouch for is refused.
            let stranger = try await curl(["--cacert", server.certFile, "--cert", server.certFile, "--key", server.keyFile, url])
            #expect(stranger.status != 200)
        }
    }

    /// The TLS context is made when the web config is read, so a key that does not match fails there,
    /// naming the field, before anything listens.
    @Test func mismatchedKeyFailsWhenStarting() async throws {
        let certificate = try await TestCertificate()
        defer { certificate.dir.remove() }
        let web = try certificate.dir.file(
            "web.yml", "tls_server_config: {cert_file: c.pem, key_file: \(try await certificate.otherKey())}\n")
        #expect {
            _ = try ExporterService(configuration: configuration(webConfig: web), snapshot: { Fixtures.small() },
                                    logger: quietLogger)
        } throws: { error in
            "\(error)".hasPrefix("web config \(web): tls_server_config.key_file: ") && "\(error)".contains("does the key match")
        }
    }

    /// The certificate, key and web config follow their files: a replaced certificate is presented by
    /// the next connection, a changed password applies to the next request, and a broken file keeps
    /// the previous version in force with one warning naming the file and the problem.
    @Test func replacedFilesApplyToNewConnectionsWithoutARestart() async throws {
        let first = try await TestCertificate()
        defer { first.dir.remove() }
        let second = try await TestCertificate()
        defer { second.dir.remove() }
        @Sendable func webConfig(password: String, tls: Bool = true) -> String {
            (tls ? "tls_server_config:\n  cert_file: c.pem\n  key_file: k.pem\n" : "")
                + "basic_auth_users:\n  alice: \(WebConfig.hashPassword(password, cost: 4))\n"
        }
        let web = try first.dir.file("web.yml", webConfig(password: "pw"))
        let log = LogCapture()
        try await withServer(configuration(webConfig: web), logger: log.logger,
                             webConfigCheckInterval: .milliseconds(100)) { port async throws in
            let url = "https://127.0.0.1:\(port)/healthz"
            func status(trusting ca: String, _ credentials: String = "alice:pw") async throws -> Int {
                try await curl(["--cacert", ca, "-u", credentials, url]).status
            }
            #expect(try await status(trusting: first.certFile) == 200)
            let oldCertificate = first.dir.path + "/old.pem"
            try FileManager.default.copyItem(atPath: first.certFile, toPath: oldCertificate)

            // A renewed certificate and key, written in place (as an ACME client does).
            for (from, to) in [(second.keyFile, first.keyFile), (second.certFile, first.certFile)] {
                try Data(contentsOf: URL(fileURLWithPath: from)).write(to: URL(fileURLWithPath: to), options: .atomic)
            }
            #expect(try await eventually(every: .milliseconds(100)) { try await status(trusting: second.certFile) == 200 },
                    "new connections still present the old certificate")
            #expect(try await status(trusting: oldCertificate) != 200, "the old certificate is still presented")

            // A broken certificate: the previous one stays, and one warning names the file and the problem.
            try "not a certificate\n".write(toFile: first.certFile, atomically: true, encoding: .utf8)
            let broken = { log.records(atLeast: .warning).filter { $0.message.contains("not a PEM certificate") } }
            // Files are looked at when a connection needs them.
            var served = true
            let warned = try await eventually(every: .milliseconds(100)) {
                served = try await status(trusting: second.certFile) == 200 && served
                return !broken().isEmpty
            }
            #expect(warned, "\(log.records.map(\.message))")
            #expect(served, "the previous certificate stays in force")
            #expect(broken().first?.message.contains("tls_server_config.cert_file: \(first.certFile)") == true,
                    "\(broken().map(\.message))")
            for _ in 0..<3 {
                #expect(try await status(trusting: second.certFile) == 200)
                try await Task.sleep(for: .milliseconds(150))
            }
            #expect(broken().count == 1, "a broken file is reported once: \(broken().map(\.message))")

            // A changed password (and the certificate mended).
            try Data(contentsOf: URL(fileURLWithPath: second.certFile))
                .write(to: URL(fileURLWithPath: first.certFile), options: .atomic)
            try webConfig(password: "pw2").write(toFile: web, atomically: true, encoding: .utf8)
            #expect(try await eventually(every: .milliseconds(100)) {
                try await status(trusting: second.certFile, "alice:pw2") == 200
            })
            #expect(try await status(trusting: second.certFile) == 401)

            // TLS cannot be turned off without a restart: refused, HTTPS goes on.
            try webConfig(password: "pw2", tls: false).write(toFile: web, atomically: true, encoding: .utf8)
            let refused = try await eventually(every: .milliseconds(100)) {
                served = try await status(trusting: second.certFile, "alice:pw2") == 200 && served
                return log.records(atLeast: .warning).contains { $0.message.contains("TLS cannot be turned off") }
            }
            #expect(refused && served)
        }
    }
}
