// A tiny server process for HTTPServerTests' SIGTERM test: the test starts it, reads "PORT n" from stdout,
// sends requests, signals it, releases the held request through stdin, and checks that it completes and the
// process exits 0.
// Handlers live in Handlers.swift (closures in this file would be @MainActor and trap on MHD's threads).
import HTTPServer
import Logging
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

TerminationSignals.block()

var logger = Logger(label: "http-test-host", factory: { label in StreamLogHandler.standardError(label: label) })
logger.logLevel = .info
// HTTP_TEST_HOST_ADDRESS lets a person try other listen addresses (0.0.0.0, ::, ::1) by hand.
let address = getenv("HTTP_TEST_HOST_ADDRESS").map { String(cString: $0) } ?? "127.0.0.1"
let server = HTTPServer(
    configuration: ServerConfiguration(host: address, port: 0, threads: 4, idleTimeoutSeconds: 60),
    logger: logger,
    handler: TestHostRoutes.router.respond(to:))
do {
    try server.start()
} catch {
    writeLine("ERROR \(error)")
    exit(1)
}
writeLine("PORT \(server.port)")
let signal = TerminationSignals.wait()
writeLine("SIGNAL \(signal)")
server.shutdown(gracePeriod: .seconds(10))
writeLine("STOPPED")
exit(0)
