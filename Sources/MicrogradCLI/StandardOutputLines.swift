import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Standard output for `StreamLogHandler`, one `write(2)` per line and no lock for ordinary lines.
///
/// swift-log's default stream locks the `FILE` (flockfile), writes and flushes for every line, so the pool
/// threads queue behind each other on every access-log line: under wrk that lock was ~0.75 futex calls per
/// request. A write of at most PIPE_BUF bytes to a pipe is atomic (POSIX), and the handler hands over each
/// line whole, so short lines cannot interleave; longer ones (rare) are written under a lock, in pieces.
struct StandardOutputLines: TextOutputStream, Sendable {
    private static let longLines = Mutex(())

    func write(_ string: String) {
        var line = string
        line.withUTF8 { Self.write(bytes: $0) }
    }

    /// One whole line (or several), written atomically when it fits PIPE_BUF.
    static func write(bytes: UnsafeBufferPointer<UInt8>) {
        if bytes.count <= Int(PIPE_BUF) {
            writeAll(bytes)
        } else {
            longLines.withLock { _ in writeAll(bytes) }
        }
    }

    private static func writeAll(_ bytes: UnsafeBufferPointer<UInt8>) {
        guard var p = bytes.baseAddress else { return }
        var left = bytes.count
        while left > 0 {
            let n = writeToStandardOutput(p, left)
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
}

/// `write(2)` to fd 1 (a free function: inside the stream type, `write` names its own method).
private func writeToStandardOutput(_ bytes: UnsafePointer<UInt8>, _ count: Int) -> Int {
    write(STDOUT_FILENO, bytes, count)
}
