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

    /// The defaults of every setting: the configuration types' own.
    static let defaults = ServiceConfiguration()
    static let defaultGraceSeconds = 10
    static let defaultDrainDelaySeconds = 0
    static let defaultLogLevel = Logger.Level.info

    @Option(help: "Address to listen on. [env: HOST] (default: \(defaults.server.host))")
    var host: String?

    @Option(help: "TCP port; 0 picks a free one. [env: PORT] (default: \(defaults.server.port))")
    var port: Int?

    @Option(help: "Worker threads. [env: THREADS] (default: number of cores)")
    var threads: Int?

    @Option(help: "Largest request body in bytes (413 beyond). [env: MAX_BODY_BYTES] (default: \(defaults.server.maxBodyBytes))")
    var maxBodyBytes: Int?

    @Option(help: "Most nodes in one graph (422 beyond). [env: MAX_NODES] (default: \(defaults.graphLimits.maxNodes))")
    var maxNodes: Int?

    @Option(help: "Longest expression in bytes (413 beyond). [env: MAX_EXPRESSION_BYTES] (default: \(defaults.graphLimits.maxExpressionBytes))")
    var maxExpressionBytes: Int?

    @Option(help: "Open connections at most. [env: CONNECTION_LIMIT] (default: \(defaults.server.connectionLimit))")
    var connectionLimit: Int?

    @Option(help: "Open connections per client IP; 0 = no limit. [env: PER_IP_CONNECTION_LIMIT] (default: \(defaults.server.perIPConnectionLimit))")
    var perIPConnectionLimit: Int?

    @Option(help: "Seconds a silent or stalled connection is kept. [env: IDLE_TIMEOUT] (default: \(defaults.server.idleTimeoutSeconds))")
    var idleTimeout: Int?

    @Option(help: "Bytes per connection for the request line and headers (431 beyond). [env: HEADER_MEMORY] (default: \(defaults.server.connectionMemoryLimitBytes))")
    var headerMemory: Int?

    @Option(help: """
        Where graphs are kept: 'memory' (this process) or redis://[:PASSWORD@]HOST:PORT[/DB], shared by every \
        replica using it. [env: STORE] (default: memory)
        """)
    var store: String?

    @Option(help: "Evaluated graphs kept for GET /graph.* (memory store; Redis is bounded by its maxmemory). [env: STORE_GRAPHS] (default: \(defaults.store.maxGraphs))")
    var storeGraphs: Int?

    @Option(help: "Bytes of evaluated graphs kept (memory store); with Redis, the largest graph stored. [env: STORE_BYTES] (default: \(defaults.store.maxBytes))")
    var storeBytes: Int?

    @Option(help: "Seconds an evaluated graph stays in Redis. [env: STORE_TTL] (default: \(seconds(RedisGraphStore.defaultTTL)))")
    var storeTtl: Int?

    @Option(help: "Milliseconds one Redis command may wait before Redis counts as down. [env: STORE_TIMEOUT] (default: \(milliseconds(RedisGraphStore.defaultCommandTimeout)))")
    var storeTimeout: Int?

    @Option(help: "Milliseconds a connect to Redis may take. [env: STORE_CONNECT_TIMEOUT] (default: \(milliseconds(RedisGraphStore.defaultConnectTimeout)))")
    var storeConnectTimeout: Int?

    @Flag(help: "Serve stored graphs by id only (no 'most recent graph'). [env: PRIVATE=1]")
    var `private` = false

    @Option(help: "Largest graph drawn as SVG, in nodes. [env: SVG_MAX_NODES] (default: \(defaults.svg.maxNodes))")
    var svgMaxNodes: Int?

    @Option(help: "Seconds Graphviz may take for one SVG. [env: SVG_TIMEOUT] (default: \(defaults.svg.timeout.components.seconds))")
    var svgTimeout: Int?

    @Option(help: "Graphviz dot executable. [env: DOT_PATH] (default: \(defaults.svg.dotPath))")
    var dotPath: String?

    @Option(help: "Seconds in-flight requests get to finish on SIGTERM. [env: GRACE_PERIOD] (default: \(defaultGraceSeconds))")
    var gracePeriod: Int?

    @Option(help: """
        Seconds to go on accepting after SIGTERM while /readyz answers 503, so load balancers stop routing here \
        before the listener closes; a second signal ends it early. [env: DRAIN_DELAY] (default: \(defaultDrainDelaySeconds))
        """)
    var drainDelay: Int?

    @Option(help: "trace, debug, info, notice, warning, error or critical. [env: LOG_LEVEL] (default: \(defaultLogLevel))")
    var logLevel: String?

    func run() throws {
        // Before any thread exists, so every thread inherits the mask and only sigwait sees SIGTERM/SIGINT.
        TerminationSignals.block()
        signal(SIGPIPE, SIG_IGN)

        let levelName = EnvironmentDefault.string(logLevel, "LOG_LEVEL", default: Self.defaultLogLevel.rawValue)
        guard let level = Logger.Level(rawValue: levelName.lowercased()) else {
            throw ValidationError("Unknown log level '\(levelName)'.")
        }
        // StreamLogHandler stamps every line through localtime_r; with TZ unset, glibc stats /etc/localtime on each
        // call (a syscall per access-log line). Naming the same zone once avoids it.
        if getenv("TZ") == nil { setenv("TZ", ":/etc/localtime", 0) }
        MallocTuning.keepLargeBuffers()
        LoggingSystem.bootstrap { label in
            var handler = LineLogHandler(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "micrograd")
        let configuration = try makeConfiguration()
        let grace = try EnvironmentDefault.int(gracePeriod, "GRACE_PERIOD", default: Self.defaultGraceSeconds)
        let delay = try EnvironmentDefault.int(drainDelay, "DRAIN_DELAY", default: Self.defaultDrainDelaySeconds)
        guard grace >= 0, delay >= 0 else {
            throw ValidationError("--grace-period and --drain-delay must not be negative (got \(grace), \(delay)).")
        }

        let running: ServingGraphService
        do {
            running = try GraphService.serve(
                configuration: configuration, store: try makeStore(configuration, logger: logger), logger: logger,
                accessLog: AccessLogLines(label: logger.label))
        } catch {
            throw ValidationError("Cannot start the server: \(error)")
        }
        // Every effective setting, once: what the environment and the command line amounted to.
        let settings = configuration.server
        logger.info("micrograd listening", metadata: [
            "host": "\(settings.host)", "port": "\(running.port)", "threads": "\(settings.threads)",
            "private": "\(configuration.isPrivate)", "max_body_bytes": "\(settings.maxBodyBytes)",
            "max_nodes": "\(configuration.graphLimits.maxNodes)",
            "max_expression_bytes": "\(configuration.graphLimits.maxExpressionBytes)",
            "connection_limit": "\(settings.connectionLimit)", "per_ip_connection_limit": "\(settings.perIPConnectionLimit)",
            "idle_timeout": "\(settings.idleTimeoutSeconds)", "header_memory": "\(settings.connectionMemoryLimitBytes)",
            "store_graphs": "\(configuration.store.maxGraphs)", "store_bytes": "\(configuration.store.maxBytes)",
            "svg_max_nodes": "\(configuration.svg.maxNodes)", "svg_timeout": "\(configuration.svg.timeout.components.seconds)",
            "dot_path": "\(configuration.svg.dotPath)", "grace_period": "\(grace)", "drain_delay": "\(delay)",
            "log_level": "\(level)",
        ])

        // The stop, in order (docs/container.md, "Stopping"): not ready at once (/readyz 503, answers close their
        // connections) while still accepting for the drain delay; then stop accepting and give requests in flight
        // the grace period; exit 0.
        let signal = TerminationSignals.wait()
        running.beginDraining()
        logger.info("draining", metadata: [
            "signal": "\(signal)", "drain_delay_seconds": "\(delay)", "grace_seconds": "\(grace)",
        ])
        if delay > 0, let second = TerminationSignals.wait(timeout: .seconds(delay)) {
            logger.info("second signal: ending the drain delay", metadata: ["signal": "\(second)"])
        }
        logger.info("stopping")
        running.shutdown(gracePeriod: .seconds(grace))
        logger.info("stopped")
    }

    /// Every option's default is the configuration types' own (ServiceConfiguration()), shown in the help above.
    func makeConfiguration() throws -> ServiceConfiguration {
        var c = Self.defaults
        c.server.host = EnvironmentDefault.string(host, "HOST", default: c.server.host)
        c.server.port = try EnvironmentDefault.int(port, "PORT", default: c.server.port)
        c.server.threads = try EnvironmentDefault.int(threads, "THREADS", default: c.server.threads)
        c.server.maxBodyBytes = try EnvironmentDefault.int(maxBodyBytes, "MAX_BODY_BYTES", default: c.server.maxBodyBytes)
        c.server.connectionLimit = try EnvironmentDefault.int(connectionLimit, "CONNECTION_LIMIT", default: c.server.connectionLimit)
        c.server.perIPConnectionLimit = try EnvironmentDefault.int(
            perIPConnectionLimit, "PER_IP_CONNECTION_LIMIT", default: c.server.perIPConnectionLimit)
        c.server.idleTimeoutSeconds = try EnvironmentDefault.int(idleTimeout, "IDLE_TIMEOUT", default: c.server.idleTimeoutSeconds)
        c.server.connectionMemoryLimitBytes = try EnvironmentDefault.int(
            headerMemory, "HEADER_MEMORY", default: c.server.connectionMemoryLimitBytes)
        c.graphLimits.maxNodes = try positive(
            EnvironmentDefault.int(maxNodes, "MAX_NODES", default: c.graphLimits.maxNodes), "max-nodes")
        c.graphLimits.maxExpressionBytes = try positive(
            EnvironmentDefault.int(maxExpressionBytes, "MAX_EXPRESSION_BYTES", default: c.graphLimits.maxExpressionBytes),
            "max-expression-bytes")
        c.store.maxGraphs = try EnvironmentDefault.int(storeGraphs, "STORE_GRAPHS", default: c.store.maxGraphs)
        c.store.maxBytes = try EnvironmentDefault.int(storeBytes, "STORE_BYTES", default: c.store.maxBytes)
        c.svg.dotPath = EnvironmentDefault.string(dotPath, "DOT_PATH", default: c.svg.dotPath)
        c.svg.timeout = .seconds(try positive(
            EnvironmentDefault.int(svgTimeout, "SVG_TIMEOUT", default: Int(c.svg.timeout.components.seconds)), "svg-timeout"))
        c.svg.maxNodes = try EnvironmentDefault.int(svgMaxNodes, "SVG_MAX_NODES", default: c.svg.maxNodes)
        c.isPrivate = try EnvironmentDefault.flag(`private`, "PRIVATE")
        return c
    }

    /// `--store` or `STORE`; "memory" is the in-memory store.
    private var storeLocation: String { EnvironmentDefault.string(store, "STORE", default: "memory") }

    /// nil: the in-memory store the service makes from `configuration.store`.
    func makeStore(_ configuration: ServiceConfiguration, logger: Logger) throws -> (any GraphStore)? {
        let location = storeLocation
        if location == "memory" { return nil }
        do {
            let store = try RedisGraphStore(
                url: location,
                connectTimeout: .milliseconds(try positive(EnvironmentDefault.int(
                    storeConnectTimeout, "STORE_CONNECT_TIMEOUT", default: milliseconds(RedisGraphStore.defaultConnectTimeout)),
                    "store-connect-timeout")),
                commandTimeout: .milliseconds(try positive(EnvironmentDefault.int(
                    storeTimeout, "STORE_TIMEOUT", default: milliseconds(RedisGraphStore.defaultCommandTimeout)), "store-timeout")),
                ttl: .seconds(try positive(EnvironmentDefault.int(
                    storeTtl, "STORE_TTL", default: seconds(RedisGraphStore.defaultTTL)), "store-ttl")),
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

/// Whole seconds and milliseconds of a default, for the help text and the environment fallback.
private func seconds(_ duration: Duration) -> Int { Int(duration.components.seconds) }
private func milliseconds(_ duration: Duration) -> Int {
    Int(duration.components.seconds) * 1_000 + Int(duration.components.attoseconds / 1_000_000_000_000_000)
}
