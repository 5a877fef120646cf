import CMicroHTTPD
import Logging
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Why the server could not start.
public enum HTTPServerError: Error, CustomStringConvertible, Equatable {
    case invalidConfiguration(String)
    case cannotResolve(host: String, reason: String)
    case addressInUse(host: String, port: Int)
    case cannotListen(host: String, port: Int, reason: String)
    case daemonFailed
    case alreadyStarted

    public var description: String {
        switch self {
        case .invalidConfiguration(let why): "invalid server configuration: \(why)"
        case .cannotResolve(let host, let reason): "cannot resolve listen address \"\(host)\": \(reason)"
        case .addressInUse(let host, let port): "cannot listen on \(host):\(port): address already in use"
        case .cannotListen(let host, let port, let reason): "cannot listen on \(host):\(port): \(reason)"
        case .daemonFailed: "libmicrohttpd failed to start (see its message in the log)"
        case .alreadyStarted: "the server was already started"
        }
    }
}

/// Receives the access log as bytes: one call per request with the whole line (no newline), valid only during the
/// call, from any worker thread. For servers that log every request: no String, `Logger.Message` or `LogEvent`
/// per line (~3,500 instructions of a small request). Without a sink the lines go to the logger (`.info`, source
/// `HTTPServer.accessLogSource`); either way they are written only when the logger logs `.info`.
public protocol AccessLogSink: Sendable {
    func writeAccessLine(_ line: UnsafeRawBufferPointer)
}

/// An HTTP/1.1 server on libmicrohttpd's internal epoll thread pool. The handler runs synchronously on those
/// threads, once per request, after the whole body has arrived.
public final class HTTPServer: Sendable {
    public typealias Handler = @Sendable (HTTPRequest) -> HTTPResponse
    public typealias ErrorResponder = @Sendable (_ status: Int, _ detail: String) -> HTTPResponse

    /// The source of access-log lines written through the logger (the module's name, as swift-log's default).
    public static let accessLogSource = "HTTPServer"

    private let core: ServerCore
    private let running: Locked<RunningDaemon?>

    /// - Parameters:
    ///   - handler: answers every request that passed the server's own limits.
    ///   - logger: used for the access log (one `.info` line per request; its level is read once, here) and for
    ///     libmicrohttpd's own messages (`.notice`).
    ///   - errorResponder: builds the server's own refusals (413, and 500 for an invalid handler status),
    ///     so an application can answer them in its own format.
    ///   - accessLog: where access-log lines go instead of the logger.
    public init(
        configuration: ServerConfiguration,
        logger: Logger,
        handler: @escaping Handler,
        errorResponder: @escaping ErrorResponder = { status, detail in
            HTTPResponse.plainText(status: status, "\(status) \(HTTPStatus.reasonPhrase(status)): \(detail)\n")
        },
        accessLog: (any AccessLogSink)? = nil
    ) {
        core = ServerCore(
            configuration: configuration, logger: logger, handler: handler, errorResponder: errorResponder,
            accessLog: accessLog)
        running = Locked(nil)
    }

    deinit {
        // Never leave a daemon calling into a freed core.
        if let daemon = running.withLock({ $0.take() }) {
            core.suspensions.close(waitNanoseconds: 0)
            daemon.stopNow()
            core.suspensions.daemonStopped()
        }
    }

    /// Binds the listening socket and starts the worker threads. Throws a clear error when the address is taken.
    public func start() throws {
        let configuration = core.configuration
        if let problem = configuration.validationError() { throw HTTPServerError.invalidConfiguration(problem) }
        try running.withLock { running in
            if running != nil { throw HTTPServerError.alreadyStarted }
            let listener = try ListeningSocket.open(
                host: configuration.host, port: configuration.port, backlog: Int32(configuration.listenBacklog))
            let settings = mhd_shim_settings(
                listen_socket: listener.fd,
                thread_pool_size: UInt32(configuration.threads),
                connection_timeout: UInt32(configuration.idleTimeoutSeconds),
                connection_limit: UInt32(configuration.connectionLimit),
                per_ip_connection_limit: UInt32(configuration.perIPConnectionLimit),
                connection_memory_limit: configuration.connectionMemoryLimitBytes)
            let flags = MHD_USE_EPOLL_INTERNAL_THREAD.rawValue | MHD_USE_ITC.rawValue | MHD_USE_ERROR_LOG.rawValue
                | MHD_ALLOW_SUSPEND_RESUME.rawValue  // deferred answers (DeferredResponse.swift)
            let coreReference = Unmanaged.passUnretained(core).toOpaque()
            core.admission.pointee = mhd_shim_admission(limit: UInt32(configuration.connectionLimit), open: 0)
            guard let daemon = mhd_shim_start_daemon(
                flags, settings, mhdAccessHandler, coreReference, mhdRequestCompleted, coreReference,
                mhdLog, coreReference, core.admission)
            else {
                close(listener.fd)
                throw HTTPServerError.daemonFailed
            }
            running = RunningDaemon(daemon: daemon, port: listener.port, listenFD: listener.fd)
            core.logger.info("listening on \(configuration.host):\(listener.port) with \(configuration.threads) threads")
        }
    }

    /// The bound port once started (useful with port 0), else 0.
    public var port: Int {
        running.withLock { $0?.port ?? 0 }
    }

    /// True once `shutdown` has begun (a readiness endpoint can answer 503 from then on).
    public var isDraining: Bool {
        core.state.isDraining
    }

    /// Requests received and not yet answered (or aborted).
    public var requestsInFlight: Int {
        core.state.requestsInFlight
    }

    /// Starts draining without stopping: every answer from now on carries `Connection: close`, so keep-alive
    /// clients reconnect (elsewhere, once a load balancer has seen /readyz fail), while the server still accepts.
    /// `shutdown` then stops accepting. Calling it again does nothing.
    public func beginDraining() {
        core.state.beginDraining()
    }

    /// Graceful stop: stop accepting, let requests in flight finish within `gracePeriod` (their responses carry
    /// `Connection: close`), then close every remaining connection, idle keep-alive ones included. Blocks until done.
    /// Calling it again, or before `start`, does nothing.
    public func shutdown(gracePeriod: Duration) {
        guard let daemon = running.withLock({ $0.take() }) else { return }
        core.state.beginDraining()
        // Stop listening now, not after the grace period: otherwise connections made while draining wait in the
        // kernel's backlog, their requests sent, and are reset when the socket is finally closed. Not through
        // MHD_quiesce_daemon: in 0.9.75 it races its own worker threads and aborts the process ("Failed to remove
        // listen FD from epoll set", daemon.c:5531) when a worker unregisters the socket first. See shim.h.
        adoptQueuedConnections(daemon)
        let placeholderWriteEnd = mhd_shim_stop_listening(daemon.listenFD)
        let (seconds, attoseconds) = gracePeriod.components
        let timeout = UInt64(max(0, seconds) * 1_000_000_000 + max(0, attoseconds) / 1_000_000_000)
        let deadline = monotonicNanoseconds() &+ timeout
        // Adopted connections count once their request begins; one that sends nothing is not waited for long.
        let adoptedDeadline = min(deadline, monotonicNanoseconds() &+ Self.adoptedRequestWait)
        var idle = false
        repeat {
            let now = monotonicNanoseconds()
            idle = core.state.waitUntilIdle(timeoutNanoseconds: deadline > now ? deadline - now : 0)
            if idle && core.state.adoptedWaiting { usleep(2_000) }
        } while idle && core.state.adoptedWaiting && monotonicNanoseconds() < adoptedDeadline
        if !idle {
            core.logger.warning(
                "shutdown grace period over with \(core.state.requestsInFlight) requests in flight; closing them")
        }
        // Deferred answers still pending get their timeout answers: MHD must not be stopped with a connection suspended.
        core.suspensions.close(waitNanoseconds: Self.suspendedAnswerWait)
        MHD_stop_daemon(daemon.daemon)  // closes the listening descriptor (now the placeholder's read end)
        core.suspensions.daemonStopped()
        if placeholderWriteEnd >= 0 { close(placeholderWriteEnd) }
        core.logger.info("server stopped")
    }
}

extension HTTPServer {
    /// How long a stop waits for a request on a connection taken from the backlog (it was sent with the handshake,
    /// or is on its way).
    static let adoptedRequestWait: UInt64 = 1_000_000_000
    /// How long a stop waits for connections resumed with their timeout answers to queue them.
    static let suspendedAnswerWait: UInt64 = 1_000_000_000

    /// Connections in the listening socket's backlog have completed their handshake, their requests perhaps sent,
    /// but no worker has accepted them yet (a worker busy with a long request accepts nothing). Closing the socket
    /// would reset each one; they are handed to the daemon instead and served, with `Connection: close` as the
    /// server is draining. The socket is non-blocking: this stops at the first EAGAIN.
    fileprivate func adoptQueuedConnections(_ daemon: RunningDaemon) {
        for _ in 0..<max(1, core.configuration.listenBacklog) {
            var address = sockaddr_storage()
            var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let fd = withUnsafeMutablePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { accept(daemon.listenFD, $0, &length) }
            }
            if fd < 0 {
                if errno == EINTR || errno == ECONNABORTED { continue }
                return
            }
            _ = fcntl(fd, F_SETFD, fcntl(fd, F_GETFD) | FD_CLOEXEC)
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            core.state.adoptionStarted(fd)  // before MHD has it: a worker may begin its request at once
            let added = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { MHD_add_connection(daemon.daemon, fd, $0, length) }
            }
            if added != MHD_Result.YES { core.state.adoptionFailed(fd) }  // MHD closed the socket
        }
    }
}

/// The handle of a started daemon.
private struct RunningDaemon: @unchecked Sendable {
    let daemon: OpaquePointer
    let port: Int
    /// Ours: we opened it and passed it in; MHD closes it when it stops.
    let listenFD: Int32

    func stopNow() {
        MHD_stop_daemon(daemon)
    }
}

/// Opens the listening socket in Swift so a bind failure reports its real cause (MHD would only return NULL).
enum ListeningSocket {
    static func open(host: String, port: Int, backlog: Int32) throws -> (fd: Int32, port: Int) {
        var hints = addrinfo()
        hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = streamSocketType
        var results: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, String(port), &hints, &results)
        guard status == 0, let first = results else {
            throw HTTPServerError.cannotResolve(host: host, reason: String(cString: gai_strerror(status)))
        }
        defer { freeaddrinfo(results) }

        let fd = socket(first.pointee.ai_family, streamSocketType, 0)
        guard fd >= 0 else { throw HTTPServerError.cannotListen(host: host, port: port, reason: errnoText()) }
        var yes: Int32 = 1
        // Lets a restarted server bind while old connections sit in TIME_WAIT; a live listener still makes bind fail.
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        _ = fcntl(fd, F_SETFD, fcntl(fd, F_GETFD) | FD_CLOEXEC)
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)

        if bind(fd, first.pointee.ai_addr, first.pointee.ai_addrlen) != 0 {
            let code = errno
            close(fd)
            if code == EADDRINUSE { throw HTTPServerError.addressInUse(host: host, port: port) }
            throw HTTPServerError.cannotListen(host: host, port: port, reason: String(cString: strerror(code)))
        }
        if listen(fd, backlog) != 0 {
            let reason = errnoText()
            close(fd)
            throw HTTPServerError.cannotListen(host: host, port: port, reason: reason)
        }
        return (fd, boundPort(of: fd) ?? port)
    }

    private static func boundPort(of fd: Int32) -> Int? {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let ok = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) == 0 }
        }
        guard ok else { return nil }
        switch Int32(storage.ss_family) {
        case AF_INET:
            return withUnsafePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { Int(UInt16(bigEndian: $0.pointee.sin_port)) }
            }
        case AF_INET6:
            return withUnsafePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { Int(UInt16(bigEndian: $0.pointee.sin6_port)) }
            }
        default:
            return nil
        }
    }

    private static func errnoText() -> String { String(cString: strerror(errno)) }

    #if os(Linux)
    private static let streamSocketType = Int32(SOCK_STREAM.rawValue)
    #else
    private static let streamSocketType = SOCK_STREAM
    #endif
}

/// Refuses new connections on a listening socket (and resets those queued) without closing the descriptor.
