import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Standard output through one buffer, like nginx's `access_log ... buffer=64k flush=250ms`: lines are appended
/// under a lock and written when the buffer is full, when a line asks for it (warnings, errors, lines with
/// metadata), at most `flushInterval` after they were appended, and at exit (`atexit`, so a SIGTERM stop, which
/// returns from `main`, and error exits both flush). A `write(2)` per access-log line was ~10% of a small
/// request's CPU. Only a crash or SIGKILL can lose lines: those of the last `flushInterval`.
///
/// The lock is held while writing, so the output keeps the order lines were appended in.
final class BufferedStandardOutput: Sendable {
    static let shared = BufferedStandardOutput()

    static let capacity = 64 << 10
    static let flushIntervalMicroseconds: UInt32 = 250_000

    struct Buffer: ~Copyable {
        var bytes: [UInt8] = []
        /// LineLogHandler's cache of the current second's timestamp text, kept here to need no second lock.
        var stamp = LogTimestamp()

        /// Writes out and empties the buffer, keeping its storage.
        mutating func writeOut() {
            if bytes.isEmpty { return }
            bytes.withUnsafeBufferPointer { writeAll($0) }
            bytes.removeAll(keepingCapacity: true)
        }
    }

    private let buffer: Mutex<Buffer>

    private init() {
        var initial = Buffer()
        initial.bytes.reserveCapacity(Self.capacity)
        buffer = Mutex(initial)
        // The flusher inherits the creating thread's signal mask; `serve` blocks SIGTERM/SIGINT before logging.
        var thread = pthread_t()
        _ = pthread_create(&thread, nil, { _ in
            while true {
                usleep(BufferedStandardOutput.flushIntervalMicroseconds)
                BufferedStandardOutput.shared.flush()
            }
        }, nil)
        atexit { BufferedStandardOutput.shared.flush() }
    }

    /// Appends one line (or several) built by `build` straight into the buffer, writing the buffer out first if
    /// `reserve` more bytes might not fit, and afterwards when it is full or `flush` is true.
    func append(reserve: Int, flush: Bool, _ build: (inout Buffer) -> Void) {
        buffer.withLock { buffer in
            if buffer.bytes.count + reserve > Self.capacity { buffer.writeOut() }
            build(&buffer)
            if flush || buffer.bytes.count >= Self.capacity { buffer.writeOut() }
        }
    }

    /// Writes out whatever is buffered.
    func flush() {
        buffer.withLock { $0.writeOut() }
    }
}

/// A `TextOutputStream` for `StreamLogHandler` (the path for lines with metadata): each line is written at once,
/// in order with the buffered ones.
struct StandardOutputLines: TextOutputStream, Sendable {
    func write(_ string: String) {
        var text = string
        text.withUTF8 { bytes in
            BufferedStandardOutput.shared.append(reserve: bytes.count, flush: true) { $0.bytes.append(contentsOf: bytes) }
        }
    }
}

/// Writes all of `bytes` to standard output, retrying on EINTR and partial writes.
private func writeAll(_ bytes: UnsafeBufferPointer<UInt8>) {
    guard var p = bytes.baseAddress else { return }
    var left = bytes.count
    while left > 0 {
        let n = write(STDOUT_FILENO, p, left)
        if n > 0 {
            p += n
            left -= n
        } else if n < 0 && errno == EINTR {
            continue
        } else {
            return  // stdout closed or full disk: a log line is not worth failing a request for
        }
    }
}
