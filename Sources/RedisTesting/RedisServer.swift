// RedisTesting: a real redis-server per test, on a free loopback port with its own temporary directory, always stopped.
import Foundation
import RedisClient
#if canImport(Glibc)
import Glibc
#endif

public struct RedisServerError: Error, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}

/// One redis-server process (restartable on the same port and directory, so AOF durability can be tested).
///
/// redis-server daemonizes (so it is reaped by init, not by us) and a small `sh` watchdog kills it once the test
/// process is gone: a crashed test run leaves no redis-server behind. Both are spawned with every descriptor above
/// stderr closed, so no test's socket outlives the test in them.
public final class RedisServer {
    public let port: Int
    public let directory: URL
    public let arguments: [String]

    private struct Running {
        var pid: pid_t
        var watchdog: pid_t
    }
    private var running: Running?

    /// The redis-server process id while it runs.
    public var pid: pid_t? { running?.pid }

    /// Starts redis-server (no RDB snapshots, `DEBUG` enabled for loopback, the given extra arguments, e.g.
    /// `["--appendonly", "yes"]`).
    public init(arguments: [String] = []) throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("redis-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var lastError: any Error = RedisServerError("not started")
        var started: (port: Int, running: Running)?
        for _ in 0..<5 where started == nil {  // a free port can be taken between probing and binding: try another
            do {
                let candidate = try Self.freePort()
                started = (candidate, try Self.launch(port: candidate, directory: directory, arguments: arguments))
            } catch {
                lastError = error
            }
        }
        guard let started else {
            try? FileManager.default.removeItem(at: directory)
            throw lastError
        }
        self.port = started.port
        self.directory = directory
        self.arguments = arguments
        self.running = started.running
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(at: directory)
    }

    public var url: String { "redis://127.0.0.1:\(port)" }

    public func configuration(
        commandTimeout: Duration = .milliseconds(500), probeInterval: Duration = .milliseconds(100)
    ) -> RedisConfiguration {
        RedisConfiguration(host: "127.0.0.1", port: port, commandTimeout: commandTimeout, probeInterval: probeInterval)
    }

    /// Starts the server again (same port, same directory: an AOF written before is loaded).
    public func start() throws {
        guard running == nil else { return }
        running = try Self.launch(port: port, directory: directory, arguments: arguments)
    }

    /// SIGTERM (a clean shutdown) and waits for the process to go.
    public func stop() {
        if let running { Self.end(running, with: SIGTERM) }
        running = nil
    }

    /// SIGKILL: no shutdown, no final fsync (only what was already on disk survives).
    public func kill9() {
        if let running { Self.end(running, with: SIGKILL) }
        running = nil
    }

    private static func end(_ running: Running, with signal: Int32) {
        kill(running.watchdog, SIGKILL)
        var status: Int32 = 0
        waitpid(running.watchdog, &status, 0)
        kill(running.pid, signal)
        let deadline = ContinuousClock.now + .seconds(10)
        while isAlive(running.pid), ContinuousClock.now < deadline { usleep(5_000) }
        if isAlive(running.pid) { kill(running.pid, SIGKILL) }
    }

    /// A command on a fresh connection with a generous timeout (setup and fault injection, not the code under test).
    @discardableResult
    public func send(_ arguments: String...) throws -> RedisValue {
        try Self.send(port: port, arguments)
    }

    /// Sends a command that blocks the server (`DEBUG SLEEP`, `CLIENT PAUSE`) from another thread and returns at once.
    public func sendInBackground(_ arguments: String...) {
        let port = port
        Thread.detachNewThread { _ = try? Self.send(port: port, arguments) }
    }

    private static func send(port: Int, _ arguments: [String]) throws -> RedisValue {
        var configuration = RedisConfiguration(host: "127.0.0.1", port: port, commandTimeout: .seconds(30))
        configuration.maxIdleConnections = 0
        let client = RedisClient(configuration: configuration)
        defer { client.close() }
        return try client.command(arguments.map { Array($0.utf8) })
    }

    /// Alive and not a zombie. Read with read(2): /proc files report size 0, which Foundation's whole-file readers
    /// take at its word.
    private static func isAlive(_ pid: pid_t) -> Bool {
        guard kill(pid, 0) == 0 else { return false }
        let fd = open("/proc/\(pid)/stat", O_RDONLY)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 512)
        let count = read(fd, &buffer, buffer.count)
        guard count > 0, let close = buffer[..<count].lastIndex(of: UInt8(ascii: ")")), close + 2 < count else { return false }
        return buffer[close + 2] != UInt8(ascii: "Z")
    }

    private static func launch(port: Int, directory: URL, arguments: [String]) throws -> Running {
        let pidFile = directory.appendingPathComponent("redis.pid").path
        unlink(pidFile)
        let launcher = try spawn(try executable(), [
            "--port", String(port), "--bind", "127.0.0.1", "--dir", directory.path,
            "--save", "", "--daemonize", "yes", "--pidfile", pidFile, "--enable-debug-command", "local",
            "--logfile", directory.appendingPathComponent("redis.log").path,
        ] + arguments)
        var status: Int32 = 0
        waitpid(launcher, &status, 0)  // the daemon forks off and this parent exits at once
        let deadline = ContinuousClock.now + .seconds(15)
        var pid: pid_t = 0
        while pid == 0, ContinuousClock.now < deadline {
            if let text = try? String(contentsOfFile: pidFile, encoding: .utf8),
               let value = pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines)) { pid = value } else { usleep(10_000) }
        }
        let log = { (try? String(contentsOf: directory.appendingPathComponent("redis.log"), encoding: .utf8)) ?? "" }
        guard pid > 0 else { throw RedisServerError("redis-server on port \(port) did not start; log:\n\(log().suffix(2000))") }
        let watchdog = try spawn("/bin/sh", [
            "-c", "while kill -0 $0 2>/dev/null && kill -0 $1 2>/dev/null; do sleep 1; done; kill $1 2>/dev/null",
            String(getpid()), String(pid),
        ])
        let running = Running(pid: pid, watchdog: watchdog)
        while ContinuousClock.now < deadline, isAlive(pid) {
            switch try? send(port: port, ["PING"]) {
            case .status("PONG")?: return running
            case .error(let message)? where message.hasPrefix("NOAUTH"): return running  // up, with requirepass
            default: usleep(20_000)
            }
        }
        end(running, with: SIGKILL)
        throw RedisServerError("redis-server on port \(port) did not become ready; log:\n\(log().suffix(2000))")
    }

    /// glibc's posix_spawn_file_actions_addclosefrom_np (2.34+), which Swift's Glibc module does not declare.
    private static func closeFrom3(_ actions: inout posix_spawn_file_actions_t) {
        typealias CloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addclosefrom_np")
        else { return }
        _ = unsafeBitCast(symbol, to: CloseFrom.self)(&actions, 3)
    }

    private static func spawn(_ path: String, _ arguments: [String]) throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        closeFrom3(&actions)
        let argv: [UnsafeMutablePointer<CChar>?] = ([path] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        // A fresh signal state: the caller's thread may block SIGTERM (servers that sigwait for it do), and a blocked
        // or ignored SIGTERM/SIGPIPE would be inherited across exec.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attributes, &empty)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGTERM, SIGINT, SIGPIPE, SIGHUP] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var pid: pid_t = 0
        let result = posix_spawn(&pid, path, &actions, &attributes, argv, environ)
        guard result == 0 else { throw RedisServerError("cannot start \(path): \(String(cString: strerror(result)))") }
        return pid
    }

    /// redis-server from PATH or the usual Debian places; scripts/install-deps installs it.
    public static func executable() throws -> String {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        let candidates = path.split(separator: ":").map(String.init) + ["/usr/bin", "/usr/sbin", "/usr/local/bin"]
        for directory in candidates {
            let candidate = directory + "/redis-server"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        throw RedisServerError("redis-server not found: run scripts/install-deps (Debian package redis-server)")
    }

    /// A free loopback port below the kernel's ephemeral range (32768-60999 by default): a port from that range (what
    /// binding port 0 hands out) can be taken, between a kill and a restart on the same port, by any outgoing
    /// connection's local end, and redis-server then cannot bind it.
    private static func freePort() throws -> Int {
        for _ in 0..<200 {
            let candidate = Int.random(in: 20_000..<32_768)
            if canBind(candidate) { return candidate }
        }
        throw RedisServerError("cannot find a free port in 20000-32767")
    }

    private static func canBind(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
    }
}
