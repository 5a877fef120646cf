#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Where to listen and the limits that keep one client from hurting the others.
public struct ServerConfiguration: Sendable {
    /// Address to bind: a numeric IPv4/IPv6 address or a host name (first address wins).
    public var host: String
    /// TCP port; 0 asks the kernel for a free one (read it back from `HTTPServer.port`).
    public var port: Int
    /// Worker threads of libmicrohttpd's internal epoll pool; handlers run synchronously on them.
    public var threads: Int
    /// Largest accepted request body; larger ones get 413 (from Content-Length up front, or while counting a chunked body).
    public var maxBodyBytes: Int
    /// Open connections across the server; further ones are closed at accept.
    /// (libmicrohttpd splits it evenly between the pool threads, so keep it well above `threads`.)
    public var connectionLimit: Int
    /// Open connections per client IP; 0 turns the limit off.
    public var perIPConnectionLimit: Int
    /// A connection that sends nothing for this long (silent, or stalled mid-request) is closed.
    public var idleTimeoutSeconds: Int
    /// Per-connection memory for the request line and headers; a request whose headers do not fit gets 431.
    /// 16 KiB, Node.js's header limit (libmicrohttpd's default is 32 KiB): MHD zeroes the whole pool between
    /// keep-alive requests, so each KiB here is paid by every request (32 KiB was ~8% of a small GET's CPU).
    public var connectionMemoryLimitBytes: Int
    /// Backlog of the listening socket.
    public var listenBacklog: Int

    public init(
        host: String = "0.0.0.0",
        port: Int = 8080,
        threads: Int = ServerConfiguration.processorCount,
        maxBodyBytes: Int = 64 << 20,
        connectionLimit: Int = 1000,
        perIPConnectionLimit: Int = 0,
        idleTimeoutSeconds: Int = 30,
        connectionMemoryLimitBytes: Int = 16 << 10,
        listenBacklog: Int = 1024
    ) {
        self.host = host
        self.port = port
        self.threads = threads
        self.maxBodyBytes = maxBodyBytes
        self.connectionLimit = connectionLimit
        self.perIPConnectionLimit = perIPConnectionLimit
        self.idleTimeoutSeconds = idleTimeoutSeconds
        self.connectionMemoryLimitBytes = connectionMemoryLimitBytes
        self.listenBacklog = listenBacklog
    }

    /// Online processors, at least 1.
    public static var processorCount: Int {
        max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
    }

    /// A description of the first setting that libmicrohttpd could not honour, or nil when all are usable.
    func validationError() -> String? {
        if !(0...65535).contains(port) { return "port \(port) is outside 0...65535" }
        if threads < 1 || threads > 1024 { return "threads must be in 1...1024 (got \(threads))" }
        if maxBodyBytes < 0 { return "maxBodyBytes must not be negative" }
        if connectionLimit < 1 || connectionLimit > Int(UInt32.max) { return "connectionLimit must be positive" }
        if perIPConnectionLimit < 0 || perIPConnectionLimit > Int(UInt32.max) { return "perIPConnectionLimit must be >= 0" }
        if idleTimeoutSeconds < 1 || idleTimeoutSeconds > Int(UInt32.max) { return "idleTimeoutSeconds must be >= 1" }
        if connectionMemoryLimitBytes < 4096 { return "connectionMemoryLimitBytes must be at least 4096" }
        if listenBacklog < 1 || listenBacklog > Int(Int32.max) { return "listenBacklog must be positive" }
        return nil
    }
}
