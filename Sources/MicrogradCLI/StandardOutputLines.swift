import Synchronization
import Threads

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Standard output through buffers, like nginx's `access_log ... buffer=64k flush=250ms`: lines are appended
/// under a lock and written when the buffer is full, when a line asks for it (warnings, errors, lines with
/// metadata), at most `flushInterval` after they were appended, and at exit (`atexit`, so a SIGTERM stop, which
/// returns from `main`, and error exits both flush). A `write(2)` per access-log line was ~10% of a small
/// request's CPU. Only a crash or SIGKILL can lose lines: those of the last `flushInterval`.
///
/// Lines of one buffer keep the order they were appended in. The access log goes to per-thread buffers (`lanes`):
/// one shared buffer was a lock, a count and a line of text written by every worker thread per request, memory
/// the two cores passed back and forth. So the access lines of one thread (hence of one connection) keep their
/// order; against other threads' and the other log lines, order holds only up to a flush (lanes are written
/// first). Every `write(2)` holds `writing` and carries whole lines only, so lines never interleave.
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

    /// Access-log buffers, one per worker thread (by `currentThreadIndex()`; threads past the last lane use the
    /// shared buffer). Their memory is touched only when used.
    private static let laneCount = 32
    private let lanes: [Lane] = (0..<BufferedStandardOutput.laneCount).map { _ in Lane() }

    /// One thread's access-log buffer, appended to without a lock: its thread writes lines at `tail` and publishes
    /// them with a release store (a plain store on x86; the lock's two locked instructions were ~70% of appending
    /// a line). Writing out, by the flusher or by the thread itself when the buffer is full, holds `writeOut`:
    /// it writes [head, tail) and moves `head`; only the thread, under `writeOut`, starts over at 0. Its own
    /// allocation, padded past its neighbours' cache lines.
    private final class Lane: @unchecked Sendable {
        let base = UnsafeMutablePointer<UInt8>.allocate(capacity: BufferedStandardOutput.capacity)
        let head = Atomic<Int>(0)
        let tail = Atomic<Int>(0)
        let writeOut = Mutex(())
        /// The owning thread's only. Behind a pointer: as a class `var` passed inout, every line paid a dynamic
        /// exclusivity check (~80 instructions). Alone in an aligned 128-byte block: a small allocation could share
        /// a cache line with the next lane's `tail`, which another thread writes per request.
        let stamp: UnsafeMutablePointer<LogTimestamp> = {
            precondition(MemoryLayout<LogTimestamp>.size <= 128)
            let stamp = UnsafeMutableRawPointer.allocate(byteCount: 128, alignment: 128)
                .bindMemory(to: LogTimestamp.self, capacity: 1)
            stamp.initialize(to: LogTimestamp())
            return stamp
        }()
        private let padding: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
                              UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)

        /// Writes out what was published and not yet written; with `restart`, also starts over at 0 (owner only).
        func flush(restart: Bool) {
            writeOut.withLock { _ in
                let end = tail.load(ordering: .acquiring)
                let start = head.load(ordering: .relaxed)
                if end > start { writeAll(UnsafeRawBufferPointer(start: base + start, count: end - start)) }
                head.store(restart ? 0 : end, ordering: .relaxed)
                if restart { tail.store(0, ordering: .relaxed) }
            }
        }
    }

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

    /// Appends an access-log line to the calling thread's lane: `build` writes at most `reserve` bytes at the
    /// pointer, with the lane's timestamp cache, and returns how many it wrote.
    func appendToLane(reserve: Int, _ build: (UnsafeMutablePointer<UInt8>, inout LogTimestamp) -> Int) {
        let index = currentThreadIndex()
        guard index < Self.laneCount, reserve <= Self.capacity else {
            // A thread past the lanes, or a line longer than a lane: built aside, then into the shared buffer.
            var stamp = LogTimestamp()
            withUnsafeTemporaryAllocation(of: UInt8.self, capacity: reserve) { line in
                let count = build(line.baseAddress!, &stamp)
                append(reserve: count, flush: false) { $0.append(UnsafeRawBufferPointer(UnsafeMutableBufferPointer(rebasing: line[..<count]))) }
            }
            return
        }
        lanes.withUnsafeBufferPointer { lanes in
            // Borrowed: a retain would write the lane's reference count, shared with the flusher.
            Unmanaged.passUnretained(lanes[index])._withUnsafeGuaranteedRef { lane in
                var end = lane.tail.load(ordering: .relaxed)  // only this thread stores it
                if end + reserve > Self.capacity {
                    lane.flush(restart: true)
                    end = 0
                }
                end += build(lane.base + end, &lane.stamp.pointee)
                lane.tail.store(end, ordering: .releasing)
            }
        }
    }

    /// Writes out whatever is buffered: the lanes, then the shared buffer.
    func flush() {
        for lane in lanes { lane.flush(restart: false) }
        buffer.withLock { $0.writeOut() }
    }

    /// Held around every `write(2)`: buffers written from different threads never interleave within a write.
    fileprivate static let writing = Mutex(())
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

/// Writes all of `bytes` to standard output, retrying on EINTR and partial writes; one writer at a time.
private func writeAll(_ bytes: UnsafeRawBufferPointer) {
    BufferedStandardOutput.writing.withLock { _ in writeAllUnlocked(bytes) }
}

private func writeAllUnlocked(_ bytes: UnsafeRawBufferPointer) {
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
