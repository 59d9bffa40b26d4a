import Foundation
import Hummingbird
import NIOCore

/// A request context that knows its connection, so work queued for a client that left can be dropped.
struct ExporterRequestContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    let channel: any Channel

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
    }
}

/// Dispatches requests by path: `/`, the telemetry path, `/healthz`, `/api/v1/devices`. Unknown paths
/// get 404, other methods than GET and HEAD get 405 with `Allow`. With basic auth configured every
/// path needs credentials, as with exporter-toolkit. A request the exporter is too busy for (see
/// `ExporterLimits`) gets 503 with `Retry-After`.
struct ExporterResponder: HTTPResponder {
    typealias Context = ExporterRequestContext

    private enum Route {
        case landing, metrics, health, devices
    }

    let endpoints: Endpoints
    /// The basic auth in force (it follows the web config file), `nil` without.
    let auth: @Sendable () -> BasicAuth?
    let bcryptGate: AdmissionGate
    let departures: Departures
    let retryAfterSeconds: Int

    func respond(to request: Request, context: Context) async throws -> Response {
        if let auth = auth() {
            let departure = departures.departure(of: context.channel)
            guard let allowed = try? await auth.check(
                authorization: request.headers[.authorization], gate: bcryptGate, departure: departure)
            else { return busy() }
            if !allowed {
                var response = Self.text(.unauthorized, "Unauthorized\n")
                response.headers[.wwwAuthenticate] = "Basic"
                return response
            }
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
            let departure = departures.departure(of: context.channel)
            guard let page = try? await endpoints.landingPage(gzip: gzip, departure: departure) else { return busy() }
            response = pageResponse(page, gzip: gzip, type: "text/html; charset=utf-8", head: request.method == .head)
        case .metrics:
            let scrape = endpoints.metrics()
            // The cached chunks (or their cached gzip fragments) themselves, in gathered writes (writev):
            // a multi-megabyte body is never copied into one buffer.
            response = Self.body(ResponseBody(contentsOf: gzip ? scrape.gzippedBuffers() : scrape.buffers), gzip: gzip,
                                 type: "text/plain; version=0.0.4; charset=utf-8")
        case .devices:
            let departure = departures.departure(of: context.channel)
            guard let page = try? await endpoints.devicesJSON(gzip: gzip, departure: departure) else { return busy() }
            response = pageResponse(page, gzip: gzip, type: "application/json", head: request.method == .head)
        case .health:
            let (healthy, reason) = endpoints.health()
            response = Self.text(healthy ? .ok : .serviceUnavailable, reason + "\n")
        }
        return request.method == .head ? response.createHeadResponse() : response
    }

    /// A page whose permit is given back once the body is handed to the connection (at once for HEAD,
    /// which has none). The buffers are the cached body's: a slow reader costs no copy.
    private func pageResponse(_ page: PageBody, gzip: Bool, type: String, head: Bool) -> Response {
        if head {
            endpoints.written(page)
            return Self.body(ResponseBody(contentsOf: page.buffers), gzip: gzip, type: type)
        }
        let endpoints = endpoints
        return Self.body(ResponseBody(contentLength: page.count) { writer in
            defer { endpoints.written(page) }
            try await writer.write(contentsOf: page.buffers)
            try await writer.finish(nil)
        }, gzip: gzip, type: type)
    }

    /// Over a limit (or the client left while waiting, when nobody reads this).
    private func busy() -> Response {
        var response = Self.text(.serviceUnavailable, "503 busy, retry later\n")
        response.headers[.retryAfter] = String(retryAfterSeconds)
        return response
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
