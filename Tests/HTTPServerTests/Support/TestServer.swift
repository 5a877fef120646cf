import Foundation
import HTTPServer
import HTTPTesting
import Logging

/// Lines logged through swift-log, kept for assertions.
final class LogCapture: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: [String] = []

    func append(_ line: String) { lock.withLock { stored.append(line) } }
    var lines: [String] { lock.withLock { stored } }

    func logger() -> Logger {
        var logger = Logger(label: "test") { _ in CapturingLogHandler(capture: self) }
        logger.logLevel = .info
        return logger
    }
}

struct CapturingLogHandler: LogHandler {
    let capture: LogCapture
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .info

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        capture.append("\(event.level) \(event.message)")
    }
}

/// Starts a server on 127.0.0.1 and a free port, runs `body`, and always shuts the server down.
func withServer<R>(
    _ configuration: ServerConfiguration = ServerConfiguration(),
    capture: LogCapture = LogCapture(),
    errorResponder: HTTPServer.ErrorResponder? = nil,
    handler: @escaping HTTPServer.Handler,
    _ body: (HTTPServer) throws -> R
) throws -> R {
    var configuration = configuration
    configuration.host = "127.0.0.1"
    configuration.port = 0
    configuration.threads = min(configuration.threads, 2)
    let server =
        if let errorResponder {
            HTTPServer(configuration: configuration, logger: capture.logger(), handler: handler, errorResponder: errorResponder)
        } else {
            HTTPServer(configuration: configuration, logger: capture.logger(), handler: handler)
        }
    try server.start()
    defer { server.shutdown(gracePeriod: .seconds(2)) }
    return try body(server)
}

/// Echoes what the server understood of the request, one fact per line, then the body size.
let describingHandler: HTTPServer.Handler = { request in
    var lines = ["method=\(request.method)", "path=\(request.path)"]
    for item in request.query { lines.append("query \(item.name)=\(item.value)") }
    lines.append("x-test=\(request.header("x-TEST") ?? "-")")
    lines.append("body=\(request.body.count)")
    lines.append("id=\(request.requestID)")
    return HTTPResponse(
        status: 200, headers: [("Content-Type", "text/plain")], body: Array(lines.joined(separator: "\n").utf8))
}

/// Answers with the request body unchanged.
let echoHandler: HTTPServer.Handler = { request in
    HTTPResponse(status: 200, headers: [("Content-Type", "application/octet-stream")], body: request.body)
}

/// Explicit synchronisation with a handler: the handler calls `pass()`, which tells the test it is inside and then
/// waits until the test calls `release()`. The only timeouts are hang guards.
final class Gate: Sendable {
    private let inside = DispatchSemaphore(value: 0)
    private let released = DispatchSemaphore(value: 0)

    /// In the handler: announce, then wait for the test (at most 60 s, so a failed test cannot hang a worker).
    func pass() {
        inside.signal()
        _ = released.wait(timeout: .now() + 60)
    }

    /// In the test: true once a handler is inside (false after `seconds`, a hang guard).
    func waitUntilInside(seconds: Int = 30) -> Bool {
        inside.wait(timeout: .now() + .seconds(seconds)) == .success
    }

    func release(_ count: Int = 1) {
        for _ in 0..<count { released.signal() }
    }
}

