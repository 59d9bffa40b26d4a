import Foundation
import HummingbirdTLS

extension WebConfig.TLSServerConfig {
    /// Loads the certificate, key and client CAs and builds the server's TLS settings, so that an
    /// unreadable or malformed file fails at startup with the field that names it.
    /// - Parameter path: The web config file, for error messages.
    func channelConfiguration(path: String) throws(WebConfigError) -> TLSChannelConfiguration {
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
        case .noClientCert:
            tls.certificateVerification = .none
            return TLSChannelConfiguration(tlsConfiguration: tls)
        case .requestClientCert:
            tls.certificateVerification = .optionalVerification
            return TLSChannelConfiguration(tlsConfiguration: tls, customVerificationCallback: Self.acceptAny)
        case .requireAnyClientCert:
            tls.certificateVerification = .noHostnameVerification
            return TLSChannelConfiguration(tlsConfiguration: tls, customVerificationCallback: Self.acceptAny)
        case .verifyClientCertIfGiven:
            tls.certificateVerification = .optionalVerification
            return TLSChannelConfiguration(tlsConfiguration: tls)
        case .requireAndVerifyClientCert:
            tls.certificateVerification = .noHostnameVerification
            return TLSChannelConfiguration(tlsConfiguration: tls)
        }
    }

    private static let acceptAny: TLSChannelConfiguration.CustomVerificationCallback = { _, promise in
        promise.succeed(.certificateVerified)
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
