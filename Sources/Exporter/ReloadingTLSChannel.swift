import HummingbirdCore
import Logging
import NIOCore

/// HTTP/1.1 over TLS whose TLS context is chosen as each connection is set up, so a renewed
/// certificate (or key, client CA, TLS version) serves the next connection without a restart.
/// Hummingbird's own TLS channel fixes its context when the server starts.
struct ReloadingTLSChannel: ServerChildChannel, HTTPChannelHandler {
    typealias Value = HTTP1Channel.Value

    let base: HTTP1Channel
    /// The TLS in force; called once per connection, on its event loop.
    let tls: @Sendable () -> ServerTLS

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        let tls = tls()
        return channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(tls.handler())
        }.flatMap {
            base.setup(channel: channel, logger: logger)
        }
    }

    func handle(value: Value, logger: Logger) async {
        await base.handle(value: value, logger: logger)
    }

    var responder: HTTPChannelHandler.Responder { base.responder }
}
