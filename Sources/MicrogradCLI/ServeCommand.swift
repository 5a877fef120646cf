import ArgumentParser
import HTTPServer
import Logging
import MicrogradGraph
import MicrogradService

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `micrograd serve`: the HTTP service, until SIGTERM or SIGINT, then a graceful stop.
struct ServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the HTTP service (POST /evaluate, GET /graph.dot, the page at /).")

    @Option(help: "Address to listen on. [env: HOST] (default: 0.0.0.0)")
    var host: String?

    @Option(help: "TCP port; 0 picks a free one. [env: PORT] (default: 8080)")
    var port: Int?

    @Option(help: "Worker threads. [env: THREADS] (default: number of cores)")
    var threads: Int?

    @Option(help: "Largest request body in bytes (413 beyond). [env: MAX_BODY_BYTES] (default: 67108864)")
    var maxBodyBytes: Int?

    @Option(help: "Most nodes in one graph (422 beyond). [env: MAX_NODES] (default: 1000000)")
    var maxNodes: Int?

    @Option(help: "Longest expression in bytes (413 beyond). [env: MAX_EXPRESSION_BYTES] (default: 1048576)")
    var maxExpressionBytes: Int?

    @Option(help: "Open connections at most. [env: CONNECTION_LIMIT] (default: 1000)")
    var connectionLimit: Int?

    @Option(help: "Open connections per client IP; 0 = no limit. [env: PER_IP_CONNECTION_LIMIT] (default: 0)")
    var perIPConnectionLimit: Int?

    @Option(help: "Seconds a silent or stalled connection is kept. [env: IDLE_TIMEOUT] (default: 30)")
    var idleTimeout: Int?

    @Option(help: "Bytes per connection for the request line and headers (431 beyond). [env: HEADER_MEMORY] (default: 32768)")
    var headerMemory: Int?

    @Option(help: """
        Where graphs are kept: 'memory' (this process) or redis://[:PASSWORD@]HOST:PORT[/DB], shared by every \
        replica using it. [env: STORE] (default: memory)
        """)
    var store: String?

    @Option(help: "Evaluated graphs kept for GET /graph.* (memory store; Redis is bounded by its maxmemory). [env: STORE_GRAPHS] (default: 256)")
    var storeGraphs: Int?

    @Option(help: "Bytes of evaluated graphs kept (memory store); with Redis, the largest graph stored. [env: STORE_BYTES] (default: 268435456)")
    var storeBytes: Int?

    @Option(help: "Seconds an evaluated graph stays in Redis. [env: STORE_TTL] (default: 3600)")
    var storeTtl: Int?

    @Option(help: "Milliseconds one Redis command may wait before Redis counts as down. [env: STORE_TIMEOUT] (default: 500)")
    var storeTimeout: Int?

    @Option(help: "Milliseconds a connect to Redis may take. [env: STORE_CONNECT_TIMEOUT] (default: 250)")
    var storeConnectTimeout: Int?

    @Flag(help: "Serve stored graphs by id only (no 'most recent graph'). [env: PRIVATE=1]")
    var `private` = false

    @Option(help: "Largest graph drawn as SVG, in nodes. [env: SVG_MAX_NODES] (default: 2000)")
    var svgMaxNodes: Int?

    @Option(help: "Seconds Graphviz may take for one SVG. [env: SVG_TIMEOUT] (default: 10)")
    var svgTimeout: Int?

    @Option(help: "Graphviz dot executable. [env: DOT_PATH] (default: dot)")
    var dotPath: String?

    @Option(help: "Seconds in-flight requests get to finish on SIGTERM. [env: GRACE_PERIOD] (default: 10)")
    var gracePeriod: Int?

    @Option(help: "trace, debug, info, notice, warning, error or critical. [env: LOG_LEVEL] (default: info)")
    var logLevel: String?

    func run() throws {
        // Before any thread exists, so every thread inherits the mask and only sigwait sees SIGTERM/SIGINT.
        TerminationSignals.block()
        signal(SIGPIPE, SIG_IGN)

        let levelName = EnvironmentDefault.string(logLevel, "LOG_LEVEL", default: "info")
        guard let level = Logger.Level(rawValue: levelName.lowercased()) else {
            throw ValidationError("Unknown log level '\(levelName)'.")
        }
        // StreamLogHandler stamps every line through localtime_r; with TZ unset, glibc stats /etc/localtime on each
        // call (a syscall per access-log line, ~6% of a small request's CPU). Naming the same zone once avoids it.
        if getenv("TZ") == nil { setenv("TZ", ":/etc/localtime", 0) }
        LoggingSystem.bootstrap { label in
            var handler = LineLogHandler(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "micrograd")
        let configuration = try makeConfiguration()
        let grace = try EnvironmentDefault.int(gracePeriod, "GRACE_PERIOD", default: 10)

        let running: ServingGraphService
        do {
            running = try GraphService.serve(
                configuration: configuration, store: try makeStore(configuration, logger: logger), logger: logger,
                accessLog: AccessLogLines(label: logger.label))
        } catch {
            throw ValidationError("Cannot start the server: \(error)")
        }
        logger.info("micrograd listening", metadata: [
            "host": "\(configuration.server.host)", "port": "\(running.port)",
            "threads": "\(configuration.server.threads)", "private": "\(configuration.isPrivate)",
        ])

        let signal = TerminationSignals.wait()
        logger.info("stopping", metadata: ["signal": "\(signal)", "grace_seconds": "\(grace)"])
        running.shutdown(gracePeriod: .seconds(grace))
        logger.info("stopped")
    }

    func makeConfiguration() throws -> ServiceConfiguration {
        let server = ServerConfiguration(
            host: EnvironmentDefault.string(host, "HOST", default: "0.0.0.0"),
            port: try EnvironmentDefault.int(port, "PORT", default: 8080),
            threads: try EnvironmentDefault.int(threads, "THREADS", default: ServerConfiguration.processorCount),
            maxBodyBytes: try EnvironmentDefault.int(maxBodyBytes, "MAX_BODY_BYTES", default: 64 << 20),
            connectionLimit: try EnvironmentDefault.int(connectionLimit, "CONNECTION_LIMIT", default: 1000),
            perIPConnectionLimit: try EnvironmentDefault.int(perIPConnectionLimit, "PER_IP_CONNECTION_LIMIT", default: 0),
            idleTimeoutSeconds: try EnvironmentDefault.int(idleTimeout, "IDLE_TIMEOUT", default: 30),
            connectionMemoryLimitBytes: try EnvironmentDefault.int(
                headerMemory, "HEADER_MEMORY", default: ServerConfiguration().connectionMemoryLimitBytes))
        let limits = GraphLimits(
            maxNodes: try positive(EnvironmentDefault.int(maxNodes, "MAX_NODES", default: 1_000_000), "max-nodes"),
            maxExpressionBytes: try positive(
                EnvironmentDefault.int(maxExpressionBytes, "MAX_EXPRESSION_BYTES", default: 1 << 20), "max-expression-bytes"))
        let store = InMemoryGraphStore.Limits(
            maxGraphs: try EnvironmentDefault.int(storeGraphs, "STORE_GRAPHS", default: 256),
            maxBytes: try EnvironmentDefault.int(storeBytes, "STORE_BYTES", default: 256 << 20))
        let svg = SVGRenderer.Configuration(
            dotPath: EnvironmentDefault.string(dotPath, "DOT_PATH", default: "dot"),
            timeout: .seconds(try positive(EnvironmentDefault.int(svgTimeout, "SVG_TIMEOUT", default: 10), "svg-timeout")),
            maxNodes: try EnvironmentDefault.int(svgMaxNodes, "SVG_MAX_NODES", default: 2_000))
        return ServiceConfiguration(
            server: server, graphLimits: limits, store: store,
            isPrivate: try EnvironmentDefault.flag(`private`, "PRIVATE"), svg: svg)
    }

    /// nil: the in-memory store the service makes from `configuration.store`.
    func makeStore(_ configuration: ServiceConfiguration, logger: Logger) throws -> (any GraphStore)? {
        let location = EnvironmentDefault.string(store, "STORE", default: "memory")
        if location == "memory" { return nil }
        do {
            let store = try RedisGraphStore(
                url: location,
                connectTimeout: .milliseconds(try positive(
                    EnvironmentDefault.int(storeConnectTimeout, "STORE_CONNECT_TIMEOUT", default: 250), "store-connect-timeout")),
                commandTimeout: .milliseconds(try positive(
                    EnvironmentDefault.int(storeTimeout, "STORE_TIMEOUT", default: 500), "store-timeout")),
                ttl: .seconds(try positive(EnvironmentDefault.int(storeTtl, "STORE_TTL", default: 3600), "store-ttl")),
                remembersMostRecent: !configuration.isPrivate, maxValueBytes: configuration.store.maxBytes, logger: logger)
            logger.info("graph store", metadata: ["store": "\(store.client.configuration.redactedURL)"])
            return store
        } catch {
            throw ValidationError("--store: \(error) ('memory' or redis://[:PASSWORD@]HOST:PORT[/DB])")
        }
    }

    private func positive(_ value: Int, _ name: String) throws -> Int {
        guard value > 0 else { throw ValidationError("--\(name) must be positive (got \(value)).") }
        return value
    }
}
