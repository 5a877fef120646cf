// The Swift side of Benchmarks/http/run.sh: HTTPServer + Router answering a fixed GET, with the same daemon
// settings as c_server.c. Usage: HTTPBenchServer PORT [THREADS] [--access-log]
import HTTPServer
import Logging
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

TerminationSignals.block()

let arguments = CommandLine.arguments
let port = arguments.count > 1 ? Int(arguments[1]) ?? 8081 : 8081
let threads = arguments.count > 2 ? Int(arguments[2]) ?? ServerConfiguration.processorCount : ServerConfiguration.processorCount
var logger = Logger(label: "http-bench", factory: { label in StreamLogHandler.standardError(label: label) })
// The access log is at .info: off unless asked for, so the comparison measures the server, not stderr.
logger.logLevel = arguments.contains("--access-log") ? .info : .warning

let server = HTTPServer(
    configuration: ServerConfiguration(host: "127.0.0.1", port: port, threads: threads),
    logger: logger,
    handler: BenchRoutes.router.respond(to:))
do {
    try server.start()
} catch {
    print("HTTPBenchServer: \(error)")
    exit(1)
}
_ = TerminationSignals.wait()
server.shutdown(gracePeriod: .seconds(5))
