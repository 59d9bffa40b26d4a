import Foundation
import NIOSSL

/// A server's TLS, ready for connections: the context (certificate, key, client CAs, versions) and
/// whether any client certificate is accepted unverified.
struct ServerTLS: Sendable {
    let context: NIOSSLContext
    /// `RequestClientCert` and `RequireAnyClientCert`: a presented certificate is not checked.
    let acceptsAnyClientCertificate: Bool

    /// The handler for one connection.
    func handler() -> NIOSSLServerHandler {
        acceptsAnyClientCertificate
            ? NIOSSLServerHandler(context: context, customVerificationCallback: { _, promise in promise.succeed(.certificateVerified) },
                                  configuration: .init())
            : NIOSSLServerHandler(context: context, configuration: .init())
    }
}

extension WebConfig.TLSServerConfig {
    /// Loads the certificate, key and client CAs and builds the server's TLS context, so that an
    /// unreadable or malformed file, or a key that does not match the certificate, fails with the field
    /// that names it (at startup, or when a reload is refused).
    /// - Parameter path: The web config file, for error messages.
    func serverTLS(path: String) throws(WebConfigError) -> ServerTLS {
        let prefix = "tls_server_config"
        let chain = try certificates(certFile, field: "\(prefix).cert_file", path: path)
        let keyBytes = try read(keyFile, field: "\(prefix).key_file", path: path)
        let key: NIOSSLPrivateKey
        do {
            key = try NIOSSLPrivateKey(bytes: keyBytes, format: .pem)
        } catch {
            throw WebConfigError(path: path, field: "\(prefix).key_file",
                                 message: "\(keyFile): not a PEM private key (\(error))")
        }

        var tls = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        switch minVersion {
        case .tls10: tls.minimumTLSVersion = .tlsv1
        case .tls11: tls.minimumTLSVersion = .tlsv11
        case .tls12: tls.minimumTLSVersion = .tlsv12
        case .tls13: tls.minimumTLSVersion = .tlsv13
        }
        switch maxVersion {
        case .tls10: tls.maximumTLSVersion = .tlsv1
        case .tls11: tls.maximumTLSVersion = .tlsv11
        case .tls12: tls.maximumTLSVersion = .tlsv12
        case .tls13: tls.maximumTLSVersion = .tlsv13
        }
        if let clientCAFile {
            tls.trustRoots = .certificates(
                try certificates(clientCAFile, field: "\(prefix).client_ca_file", path: path))
            tls.sendCANameList = true
        }

        // Go's tls.ClientAuthType, mapped onto BoringSSL's verify modes. The two "don't verify" modes
        // that still ask for a certificate accept whatever the client presents.
        switch clientAuth {
        case .noClientCert: tls.certificateVerification = .none
        case .requestClientCert, .verifyClientCertIfGiven: tls.certificateVerification = .optionalVerification
        case .requireAnyClientCert, .requireAndVerifyClientCert: tls.certificateVerification = .noHostnameVerification
        }
        let context: NIOSSLContext
        do {
            context = try NIOSSLContext(configuration: tls)
        } catch {
            // BoringSSL checks here that the key belongs to the certificate.
            throw WebConfigError(path: path, field: "\(prefix).key_file",
                                 message: "\(keyFile) cannot serve \(certFile) (does the key match the certificate?): \(error)")
        }
        return ServerTLS(context: context,
                         acceptsAnyClientCertificate: clientAuth == .requestClientCert || clientAuth == .requireAnyClientCert)
    }

    private func certificates(_ file: String, field: String, path: String) throws(WebConfigError) -> [NIOSSLCertificate] {
        let bytes = try read(file, field: field, path: path)
        let chain: [NIOSSLCertificate]
        do {
            chain = try NIOSSLCertificate.fromPEMBytes(bytes)
        } catch {
            throw WebConfigError(path: path, field: field, message: "\(file): not a PEM certificate (\(error))")
        }
        guard !chain.isEmpty else {
            throw WebConfigError(path: path, field: field, message: "\(file): holds no PEM certificate")
        }
        return chain
    }

    private func read(_ file: String, field: String, path: String) throws(WebConfigError) -> [UInt8] {
        do {
            return [UInt8](try Data(contentsOf: URL(fileURLWithPath: file)))
        } catch {
            throw WebConfigError(path: path, field: field, message: "cannot read \(file): \(WebConfig.describe(error))")
        }
    }
}
