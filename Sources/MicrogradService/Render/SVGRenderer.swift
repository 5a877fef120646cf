#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Renders DOT to SVG with Graphviz's `dot`, run as a subprocess under a time limit.
///
/// Pipes both ways are served by one `poll` loop so a large graph can neither deadlock
/// (dot blocking on a full stdout while we block writing its stdin) nor outlive the deadline.
public struct SVGRenderer: Sendable {
    public struct Configuration: Sendable, Equatable {
        /// The `dot` executable, looked up on PATH unless it contains a slash.
        public var dotPath: String
        public var timeout: Duration
        /// Graphs with more nodes are refused before `dot` is started: layout is superlinear.
        public var maxNodes: Int
        public var maxOutputBytes: Int

        public init(dotPath: String = "dot", timeout: Duration = .seconds(10), maxNodes: Int = 2_000,
                    maxOutputBytes: Int = 64 << 20) {
            self.dotPath = dotPath
            self.timeout = timeout
            self.maxNodes = maxNodes
            self.maxOutputBytes = maxOutputBytes
        }
    }

    public enum Failure: Error, Equatable {
        /// `dot` could not be started (not installed, not executable).
        case unavailable(String)
        case timedOut
        case outputTooLarge
        /// `dot` ran and failed; carries the start of its stderr.
        case failed(String)
    }

    public let configuration: Configuration

    public init(configuration: Configuration = Configuration()) {
        self.configuration = configuration
    }

    public func render(dot source: [UInt8]) -> Result<[UInt8], Failure> {
        var stdinPipe: [Int32] = [-1, -1], stdoutPipe: [Int32] = [-1, -1], stderrPipe: [Int32] = [-1, -1]
        guard makePipe(&stdinPipe) else { return .failure(.unavailable("pipe: \(errnoText())")) }
        guard makePipe(&stdoutPipe) else {
            closeAll(stdinPipe)
            return .failure(.unavailable("pipe: \(errnoText())"))
        }
        guard makePipe(&stderrPipe) else {
            closeAll(stdinPipe + stdoutPipe)
            return .failure(.unavailable("pipe: \(errnoText())"))
        }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, stdinPipe[0], 0)
        posix_spawn_file_actions_adddup2(&actions, stdoutPipe[1], 1)
        posix_spawn_file_actions_adddup2(&actions, stderrPipe[1], 2)

        let arguments = [configuration.dotPath, "-Tsvg"]
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        // Its own process group, so a timeout kills whatever it started too (a `dot` wrapper or plugin that forks
        // must not outlive the deadline holding our pipes).
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP))
        posix_spawnattr_setpgroup(&attributes, 0)

        var pid: pid_t = 0
        let spawned = posix_spawnp(&pid, configuration.dotPath, &actions, &attributes, &argv, environ)
        close(stdinPipe[0]); close(stdoutPipe[1]); close(stderrPipe[1])
        guard spawned == 0 else {
            closeAll([stdinPipe[1], stdoutPipe[0], stderrPipe[0]])
            return .failure(.unavailable("cannot run '\(configuration.dotPath)': \(String(cString: strerror(spawned)))"))
        }

        let outcome = exchange(input: source, stdin: stdinPipe[1], stdout: stdoutPipe[0], stderr: stderrPipe[0], pid: pid)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        switch outcome {
        case .failure(let failure):
            return .failure(failure)
        case .success(let (output, errors)):
            let exitedCleanly = (status & 0x7f) == 0 && ((status >> 8) & 0xff) == 0
            guard exitedCleanly else {
                let message = String(decoding: errors.prefix(500), as: UTF8.self)
                return .failure(.failed(message.isEmpty ? "dot exited with status \(status)" : message))
            }
            return .success(output)
        }
    }

    /// Feeds `input` to the child and collects its output until both output pipes close or time runs out
    /// (then the child is killed). Closes every descriptor it is given.
    private func exchange(input: [UInt8], stdin: Int32, stdout: Int32, stderr: Int32, pid: pid_t)
        -> Result<([UInt8], [UInt8]), Failure>
    {
        var inputFD = stdin, outputFD = stdout, errorFD = stderr
        defer { closeAll([inputFD, outputFD, errorFD].filter { $0 >= 0 }) }
        for fd in [inputFD, outputFD, errorFD] { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }
        if input.isEmpty { close(inputFD); inputFD = -1 }

        let deadline = ContinuousClock.now.advanced(by: configuration.timeout)
        var written = 0
        var output: [UInt8] = [], errors: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)

        while outputFD >= 0 || errorFD >= 0 {
            let remaining = ContinuousClock.now.duration(to: deadline)
            guard remaining > .zero else {
                kill(-pid, SIGKILL)
                return .failure(.timedOut)
            }
            var fds = [pollfd(fd: inputFD, events: Int16(POLLOUT), revents: 0),
                       pollfd(fd: outputFD, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: errorFD, events: Int16(POLLIN), revents: 0)]
            let millis = Int32(clamping: remaining.components.seconds * 1000 + remaining.components.attoseconds / 1_000_000_000_000_000 + 1)
            let ready = poll(&fds, 3, millis)
            if ready < 0 {
                if errno == EINTR { continue }
                kill(-pid, SIGKILL)
                return .failure(.failed("poll: \(errnoText())"))
            }
            if inputFD >= 0, fds[0].revents != 0 {
                let n = input.withUnsafeBytes { write(inputFD, $0.baseAddress! + written, $0.count - written) }
                if n > 0 { written += n }
                if n < 0 && errno != EAGAIN && errno != EINTR || written == input.count {
                    close(inputFD); inputFD = -1  // EOF for dot (or it stopped reading: its exit status will tell)
                }
            }
            if outputFD >= 0, fds[1].revents != 0 {
                let n = chunk.withUnsafeMutableBytes { read(outputFD, $0.baseAddress!, $0.count) }
                if n > 0 {
                    output.append(contentsOf: chunk[0..<n])
                    if output.count > configuration.maxOutputBytes {
                        kill(-pid, SIGKILL)
                        return .failure(.outputTooLarge)
                    }
                } else if n == 0 || (errno != EAGAIN && errno != EINTR) {
                    close(outputFD); outputFD = -1
                }
            }
            if errorFD >= 0, fds[2].revents != 0 {
                let n = chunk.withUnsafeMutableBytes { read(errorFD, $0.baseAddress!, $0.count) }
                if n > 0 {
                    if errors.count < 4096 { errors.append(contentsOf: chunk[0..<n]) }
                } else if n == 0 || (errno != EAGAIN && errno != EINTR) {
                    close(errorFD); errorFD = -1
                }
            }
        }
        return .success((output, errors))
    }

    /// A pipe whose ends close on exec, so concurrent renders do not leak descriptors into each other's children.
    private func makePipe(_ fds: inout [Int32]) -> Bool {
        guard pipe(&fds) == 0 else { return false }
        for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        return true
    }

    private func closeAll(_ fds: [Int32]) { for fd in fds where fd >= 0 { close(fd) } }
    private func errnoText() -> String { String(cString: strerror(errno)) }
}
