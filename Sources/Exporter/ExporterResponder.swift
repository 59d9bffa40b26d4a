import Foundation
import Hummingbird

/// Dispatches requests by path: `/`, the telemetry path, `/healthz`, `/api/v1/devices`. Unknown paths
/// get 404, other methods than GET and HEAD get 405 with `Allow`. With basic auth configured every
/// path needs credentials, as with exporter-toolkit.
struct ExporterResponder: HTTPResponder {
    typealias Context = BasicRequestContext

    private enum Route {
        case landing, metrics, health, devices
    }

    let endpoints: Endpoints
    let auth: BasicAuth?

    func respond(to request: Request, context: Context) async throws -> Response {
        if let auth, !(await auth.check(authorization: request.headers[.authorization])) {
            var response = Self.text(.unauthorized, "Unauthorized\n")
            response.headers[.wwwAuthenticate] = "Basic"
            return response
        }
        let route: Route
        switch request.uri.path {
        case "/": route = .landing
        case endpoints.configuration.telemetryPath: route = .metrics
        case "/healthz": route = .health
        case "/api/v1/devices": route = .devices
        default: return Self.text(.notFound, "404 page not found\n")
        }
        guard request.method == .get || request.method == .head else {
            var response = Self.text(.methodNotAllowed, "405 method not allowed\n")
            response.headers[.allow] = "GET, HEAD"
            return response
        }

        let gzip = AcceptEncoding.allowsGzip(request.headers[.acceptEncoding])
        let response: Response
        switch route {
        case .landing:
            response = Self.body(ByteBuffer(string: endpoints.landingPage()), gzip: gzip, type: "text/html; charset=utf-8")
        case .metrics:
            let scrape = endpoints.metrics()
            // The cached chunks (or their cached gzip fragments) themselves, in gathered writes (writev):
            // a multi-megabyte body is never copied into one buffer.
            response = Self.body(ResponseBody(contentsOf: gzip ? scrape.gzippedBuffers() : scrape.buffers), gzip: gzip,
                                 type: "text/plain; version=0.0.4; charset=utf-8")
        case .devices:
            response = Self.body(ByteBuffer(bytes: endpoints.devicesJSON()), gzip: gzip, type: "application/json")
        case .health:
            let (healthy, reason) = endpoints.health()
            response = Self.text(healthy ? .ok : .serviceUnavailable, reason + "\n")
        }
        return request.method == .head ? response.createHeadResponse() : response
    }

    /// A negotiable body, gzipped in one stream when asked for.
    private static func body(_ payload: ByteBuffer, gzip: Bool, type: String) -> Response {
        body(ResponseBody(contentsOf: gzip ? Gzip.compress(payload) : [payload]), gzip: gzip, type: type)
    }

    /// The same URL may be served gzipped or not, so caches must vary.
    private static func body(_ payload: ResponseBody, gzip: Bool, type: String) -> Response {
        var headers: HTTPFields = [.contentType: type, .vary: "Accept-Encoding"]
        if gzip { headers[.contentEncoding] = "gzip" }
        return Response(status: .ok, headers: headers, body: payload)
    }

    private static func text(_ status: HTTPResponse.Status, _ text: String) -> Response {
        Response(status: status, headers: [.contentType: "text/plain; charset=utf-8"],
                 body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
    }
}
