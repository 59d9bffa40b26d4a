@testable import Exporter
import Foundation
import TestSupport
import Testing

/// A self-signed certificate and key made with openssl, in a temporary directory.
struct TestCertificate {
    let dir: TemporaryDirectory
    var certFile: String { (dir.path as NSString).appendingPathComponent("c.pem") }
    var keyFile: String { (dir.path as NSString).appendingPathComponent("k.pem") }

    init() async throws {
        dir = try TemporaryDirectory()
        let result = try await run("/usr/bin/openssl", [
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-days", "1",
            "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-keyout", keyFile, "-out", certFile,
        ])
        guard result.status == 0 else { throw TestFailure("openssl failed: \(result.err)") }
    }

    /// A second key, which does not match the certificate.
    func otherKey() async throws -> String {
        let file = (dir.path as NSString).appendingPathComponent("other.pem")
        let result = try await run("/usr/bin/openssl", ["genpkey", "-algorithm", "RSA", "-out", file])
        guard result.status == 0 else { throw TestFailure("openssl failed: \(result.err)") }
        return file
    }
}

@Suite struct WebConfigTests {
    private let path = "/etc/mdevmon/web.yml"

    private func parse(_ yaml: String) throws -> WebConfig {
        try WebConfig.parse(yaml: yaml, path: path)
    }

    @Test func emptyFileMeansNoTLSAndNoAuth() throws {
        #expect(try parse("") == WebConfig(tls: nil, basicAuthUsers: [:]))
        #expect(try parse("# nothing\n") == WebConfig(tls: nil, basicAuthUsers: [:]))
    }

    @Test func parsesEveryTLSSetting() throws {
        let config = try parse("""
            tls_server_config:
              cert_file: server.crt
              key_file: /abs/server.key
              client_ca_file: ca.crt
              client_auth_type: RequireAndVerifyClientCert
              min_version: TLS13
            basic_auth_users:
              alice: $2y$10$Ut5iRd0GaNFRDcF4wTIkjOPlKq5mSN55zrdFIawMvxmoXDE2SzIKu
            """)
        let tls = try #require(config.tls)
        #expect(tls.certFile == "/etc/mdevmon/server.crt")
        #expect(tls.keyFile == "/abs/server.key")
        #expect(tls.clientCAFile == "/etc/mdevmon/ca.crt")
        #expect(tls.clientAuth == .requireAndVerifyClientCert)
        #expect(tls.minVersion == .tls13 && tls.maxVersion == .tls13)
        #expect(config.basicAuthUsers.keys.sorted() == ["alice"])
    }

    @Test func defaultsMatchExporterToolkit() throws {
        let tls = try #require(try parse("tls_server_config: {cert_file: c.pem, key_file: k.pem}").tls)
        #expect(tls.clientAuth == .noClientCert)
        #expect(tls.minVersion == .tls12 && tls.maxVersion == .tls13)
    }

    @Test func acceptsTheOldRequireClientCertSpelling() throws {
        let tls = try parse("tls_server_config: {cert_file: c, key_file: k, client_auth_type: RequireClientCert}").tls
        #expect(tls?.clientAuth == .requireAnyClientCert)
    }

    @Test(arguments: [
        ("nonsense: 1", "1: nonsense: unknown key (expected tls_server_config or basic_auth_users)"),
        ("tls_server_config: [1, 2]", "1: tls_server_config: expected a mapping, found a list"),
        ("tls_server_config: {cert_file: c.pem}", "1: tls_server_config.key_file: required when cert_file is set"),
        ("tls_server_config: {key_file: k.pem}", "1: tls_server_config.cert_file: required when key_file is set"),
        ("tls_server_config: {cert_file: c, key_file: k, min_version: TLS14}",
         "1: tls_server_config.min_version: unknown TLS version \"TLS14\" (expected TLS10, TLS11, TLS12 or TLS13)"),
        ("tls_server_config: {cert_file: c, key_file: k, min_version: TLS13, max_version: TLS12}",
         "1: tls_server_config.min_version: TLS13 is above max_version TLS12"),
        ("tls_server_config: {cert_file: c, key_file: k, client_auth_type: Maybe}",
         "1: tls_server_config.client_auth_type: unknown client auth type \"Maybe\" (expected one of NoClientCert, "
            + "RequestClientCert, RequireAnyClientCert, VerifyClientCertIfGiven, RequireAndVerifyClientCert)"),
        ("tls_server_config: {cert_file: c, key_file: k, client_auth_type: VerifyClientCertIfGiven}",
         "1: tls_server_config.client_ca_file: required when client_auth_type is VerifyClientCertIfGiven"),
        ("tls_server_config: {cert_file: c, key_file: k, client_ca_file: ca}",
         "1: tls_server_config.client_auth_type: client_ca_file is set but client_auth_type is NoClientCert "
            + "(set a client auth policy)"),
        ("tls_server_config: {cert_file: c, key_file: k, cipher_suites: [TLS_AES_128_GCM_SHA256]}",
         "1: tls_server_config.cipher_suites: not supported by mdevmon"),
        ("tls_server_config: {cert_file: c, key_file: k, cert_fiel: x}", "1: tls_server_config.cert_fiel: unknown key"),
        ("tls_server_config: {cert_file: [a], key_file: k}", "1: tls_server_config.cert_file: expected a string, found a list"),
        ("basic_auth_users: {alice: secret}",
         "1: basic_auth_users.alice: not a bcrypt hash (expected $2a$, $2b$ or $2y$, cost 04 to 31, 60 characters)"),
        ("basic_auth_users: {alice: }", "1: basic_auth_users.alice: missing bcrypt hash"),
        ("basic_auth_users: [alice]", "1: basic_auth_users: expected a mapping, found a list"),
        ("basic_auth_users: {alice: $2b$10$Ut5iRd0GaNFRDcF4wTIkjOPlKq5mSN55zrdFIawMvxmoXDE2SzIKu}\n"
            + "basic_auth_users: {}", "2: basic_auth_users: duplicate key (first on line 1)"),
        ("http_server_config: {http2: false}",
         "1: http_server_config: not supported by mdevmon (it serves HTTP/1.1 without extra headers)"),
        ("- a\n- b", "1: expected a mapping, found a list"),
    ])
    /// - Parameter expected: `line: field: message`, as the error prints after the file's path.
    func rejects(yaml: String, expected: String) {
        #expect {
            try parse(yaml)
        } throws: { error in
            "\(error)" == "web config \(path):\(expected)"
        }
    }

    @Test(arguments: [
        // (yaml, line, field, message)
        ("tls_server_config:\n  cert_file: c\n  key_file: k\n  cert_file: d\n", 4, "tls_server_config.cert_file",
         "duplicate key (first on line 2)"),
        ("basic_auth_users:\n  alice: $2b$10$Ut5iRd0GaNFRDcF4wTIkjOPlKq5mSN55zrdFIawMvxmoXDE2SzIKu\n"
            + "  alice: $2b$10$Ut5iRd0GaNFRDcF4wTIkjOPlKq5mSN55zrdFIawMvxmoXDE2SzIKu\n", 3, "basic_auth_users.alice",
         "duplicate key (first on line 2)"),
        ("basic_auth_users: {}\n\ntls_server_config:\n  cert_fiel: c\n", 4, "tls_server_config.cert_fiel", "unknown key"),
        ("tls_server_config:\n  cert_file: c\n  key_file: k\n  min_version: TLS9\n", 4, "tls_server_config.min_version",
         "unknown TLS version \"TLS9\" (expected TLS10, TLS11, TLS12 or TLS13)"),
        ("\nbasic_auth_users:\n  bob: plain\n", 3, "basic_auth_users.bob",
         "not a bcrypt hash (expected $2a$, $2b$ or $2y$, cost 04 to 31, 60 characters)"),
    ])
    func multiLineFilesNameLineAndField(yaml: String, line: Int, field: String, message: String) throws {
        let error = #expect(throws: WebConfigError.self) { try parse(yaml) }
        #expect(error?.line == line)
        #expect(error?.field == field)
        #expect(error?.message == message)
        #expect(error?.description == "web config \(path):\(line): \(field): \(message)")
    }

    @Test func invalidYAMLNamesALine() throws {
        let error = try #require(#expect(throws: WebConfigError.self) { try parse("basic_auth_users: {}\ntls_server_config: {cert_file: c\n") })
        let line = try #require(error.line)
        #expect((2...3).contains(line), "\(error)")
        #expect(error.description.hasPrefix("web config \(path):\(line): invalid YAML: "))
    }

    @Test func recognisesBcryptHashes() {
        #expect(BasicAuth.isBcryptHash("$2y$10$Ut5iRd0GaNFRDcF4wTIkjOPlKq5mSN55zrdFIawMvxmoXDE2SzIKu"))
        #expect(BasicAuth.isBcryptHash("$2a$04$Ut5iRd0GaNFRDcF4wTIkjOPlKq5mSN55zrdFIawMvxmoXDE2SzIKu"))
        #expect(!BasicAuth.isBcryptHash("$2x$10$Ut5iRd0GaNFRDcF4wTIkjOPlKq5mSN55zrdFIawMvxmoXDE2SzIKu"))
        #expect(!BasicAuth.isBcryptHash("$2b$03$Ut5iRd0GaNFRDcF4wTIkjOPlKq5mSN55zrdFIawMvxmoXDE2SzIKu"))
        #expect(!BasicAuth.isBcryptHash("$2b$10$Ut5iRd0GaNFRDcF4wTIkjOPlKq5mSN55zrdFIawMvxmoXDE2SzIK"))
        #expect(!BasicAuth.isBcryptHash("$2b$10$Ut5iRd0GaNFRDcF4wTIkjOPlKq5mSN55zrdFIawMvxmoXDE2SzIK!"))
        #expect(BasicAuth.isBcryptHash(WebConfig.hashPassword("x", cost: 4)))
    }

    @Test func verifiesPasswordsIncludingHtpasswdHashes() async throws {
        let hash = WebConfig.hashPassword("s3cret", cost: 4)
        let htpasswd = "$2y$" + hash.dropFirst(4)
        let auth = BasicAuth(users: ["alice": hash, "bob": htpasswd])!
        let gate = AdmissionGate(ExporterLimits().bcrypt)
        func check(_ header: String?) async throws -> Bool { try await auth.check(authorization: header, gate: gate) }
        func header(_ credentials: String) -> String { "Basic " + Data(credentials.utf8).base64EncodedString() }
        #expect(try await check(header("alice:s3cret")))
        #expect(try await check(header("alice:s3cret")))  // cached
        #expect(try await check(header("bob:s3cret")))
        #expect(try await check("basic " + Data("bob:s3cret".utf8).base64EncodedString()))
        #expect(!(try await check(header("alice:wrong"))))
        #expect(!(try await check(header("carol:s3cret"))))
        #expect(!(try await check(header("alice"))))
        #expect(!(try await check("Bearer abc")))
        #expect(!(try await check(nil)))
        #expect(BasicAuth(users: [:]) == nil)
    }

    @Test func passwordsMayContainColons() {
        let decoded = BasicAuth.decode("Basic " + Data("u:p:a:ss".utf8).base64EncodedString())
        #expect(decoded?.user == "u" && decoded?.password == "p:a:ss")
    }

    // MARK: startup errors through ExporterService

    private func startupError(_ yaml: String, in dir: TemporaryDirectory) throws -> String? {
        let file = try dir.file("web.yml", yaml)
        do {
            _ = try ExporterService(
                configuration: ExporterConfiguration(webConfigFile: file, build: Fixtures.build),
                snapshot: { Fixtures.small() }, logger: quietLogger)
            return nil
        } catch {
            return "\(error)".replacingOccurrences(of: dir.path, with: "$DIR")
        }
    }

    @Test func startupFailsOnUnusableFiles() async throws {
        let certificate = try await TestCertificate()
        defer { certificate.dir.remove() }
        let dir = certificate.dir
        #expect(try startupError("tls_server_config: {cert_file: c.pem, key_file: k.pem}", in: dir) == nil)
        #expect(try startupError("tls_server_config: {cert_file: missing.pem, key_file: k.pem}", in: dir)
            == "web config $DIR/web.yml: tls_server_config.cert_file: cannot read $DIR/missing.pem: No such file or directory")
        #expect(try startupError("tls_server_config: {cert_file: c.pem, key_file: /}", in: dir)
            == "web config $DIR/web.yml: tls_server_config.key_file: cannot read /: Is a directory")
        #expect(try startupError("tls_server_config: {cert_file: k.pem, key_file: k.pem}", in: dir)?
            .hasPrefix("web config $DIR/web.yml: tls_server_config.cert_file: $DIR/k.pem: not a PEM certificate") == true)
        #expect(try startupError("tls_server_config: {cert_file: c.pem, key_file: c.pem}", in: dir)?
            .hasPrefix("web config $DIR/web.yml: tls_server_config.key_file: $DIR/c.pem: not a PEM private key") == true)
        #expect(try startupError("tls_server_config: {cert_file: c.pem, key_file: k.pem, "
                                 + "client_auth_type: RequireAndVerifyClientCert, client_ca_file: nope.pem}", in: dir)
            == "web config $DIR/web.yml: tls_server_config.client_ca_file: cannot read $DIR/nope.pem: No such file or directory")
        #expect(try startupError("basic_auth_users: {alice: x}", in: dir)
            == "web config $DIR/web.yml:1: basic_auth_users.alice: not a bcrypt hash "
                + "(expected $2a$, $2b$ or $2y$, cost 04 to 31, 60 characters)")
        let missing = (dir.path as NSString).appendingPathComponent("absent.yml")
        do {
            _ = try ExporterService(configuration: ExporterConfiguration(webConfigFile: missing, build: Fixtures.build),
                                    snapshot: { Fixtures.small() }, logger: quietLogger)
            Issue.record("a missing web config file was accepted")
        } catch {
            #expect("\(error)" == "web config \(missing): cannot read: No such file or directory")
        }
    }
}
