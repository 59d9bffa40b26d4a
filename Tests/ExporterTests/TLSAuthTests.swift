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

    @Test func mismatchedKeyFailsWhenStarting() async throws {
        let certificate = try await TestCertificate()
        defer { certificate.dir.remove() }
        let web = try certificate.dir.file(
            "web.yml", "tls_server_config: {cert_file: c.pem, key_file: \(try await certificate.otherKey())}\n")
        let service = try ExporterService(configuration: configuration(webConfig: web), snapshot: { Fixtures.small() },
                                          logger: quietLogger)
        await #expect(throws: ExporterServeError.self) { try await service.run() }
    }
}
