import Synchronization
import Threads

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

    /// Raw memory rather than an Array: an Array append (uniqueness and capacity checks) cost ~100 instructions,
    /// and a line is a dozen appends.
    struct Buffer: ~Copyable {
        private let base = UnsafeMutablePointer<UInt8>.allocate(capacity: BufferedStandardOutput.capacity)
        private(set) var count = 0
        /// LineLogHandler's cache of the current second's timestamp text, kept here to need no second lock.
        var stamp = LogTimestamp()

        deinit { base.deallocate() }

        mutating func append(_ bytes: UnsafeRawBufferPointer) {
            guard let source = bytes.baseAddress, bytes.count > 0 else { return }
            if count + bytes.count > BufferedStandardOutput.capacity {
                writeOut()
                if bytes.count > BufferedStandardOutput.capacity {  // longer than the whole buffer: straight out
                    writeAll(bytes)
                    return
                }
            }
            (base + count).update(from: source.assumingMemoryBound(to: UInt8.self), count: bytes.count)
            count += bytes.count
        }

        mutating func append(_ byte: UInt8) {
            if count == BufferedStandardOutput.capacity { writeOut() }
            base[count] = byte
            count += 1
        }

        /// A String's UTF-8, in one copy when it is contiguous (native and small strings are).
        mutating func append(_ text: String) {
            if text.utf8.withContiguousStorageIfAvailable({ append(UnsafeRawBufferPointer($0)) }) == nil {
                var text = text
                text.withUTF8 { append(UnsafeRawBufferPointer($0)) }
            }
        }

        /// Writes out and empties the buffer.
        mutating func writeOut() {
            if count == 0 { return }
            writeAll(UnsafeRawBufferPointer(start: base, count: count))
            count = 0
        }
    }

    private let buffer = Mutex(Buffer())

    private init() {
        // The flusher inherits the creating thread's signal mask; `serve` blocks SIGTERM/SIGINT before logging.
        _ = startDetachedThread {
            while true {
                usleep(BufferedStandardOutput.flushIntervalMicroseconds)
                BufferedStandardOutput.shared.flush()
            }
        }
        atexit { BufferedStandardOutput.shared.flush() }
    }

    /// Appends one line (or several) built by `build` straight into the buffer, writing the buffer out first if
    /// `reserve` more bytes might not fit, and afterwards when `flush` is true.
    func append(reserve: Int, flush: Bool, _ build: (inout Buffer) -> Void) {
        buffer.withLock { buffer in
            if buffer.count + reserve > Self.capacity { buffer.writeOut() }
            build(&buffer)
            if flush { buffer.writeOut() }
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
            BufferedStandardOutput.shared.append(reserve: bytes.count, flush: true) { $0.append(UnsafeRawBufferPointer(bytes)) }
        }
    }
}

/// Writes all of `bytes` to standard output, retrying on EINTR and partial writes.
private func writeAll(_ bytes: UnsafeRawBufferPointer) {
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
