#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// An append-only byte buffer for building response bodies without intermediate Strings.
///
/// Bytes are written into a small chunk (stays in L1/L2) and moved to the result Array 64 KiB at a time:
/// the result's pages are touched once, and there is no final whole-body copy. Doubles are written in place by
/// ``ShortestDecimal`` (the same text as `description`): no String is made per number. Owns raw memory: finish
/// with `take()`.
///
/// Direct mode (`init(into:)`): the bytes go straight into a caller's buffer (an Array's uninitialized storage
/// sized by an upper bound), with no chunk and no copy at all; 100k-node JSON encoding took half the time of
/// the chunked path. Should the buffer ever fall short, the writer moves what it has to `out` and carries on
/// chunked (`isDirect` turns false, and the caller finishes with `take()`).
struct ByteWriter {
    private static let chunkSize = 1 << 16
    private var out: [UInt8] = []
    private var base: UnsafeMutablePointer<UInt8>
    private var limit = ByteWriter.chunkSize
    private(set) var count = 0
    /// True while writing into the caller's buffer given to `init(into:)`.
    private(set) var isDirect = false

    /// `capacity`: the expected size of the whole body (reserved once in the result).
    init(capacity: Int) {
        out.reserveCapacity(capacity)
        base = .allocate(capacity: Self.chunkSize)
    }

    /// Writes into `buffer`; `count` bytes of it are initialized while `isDirect` holds.
    init(into buffer: UnsafeMutableBufferPointer<UInt8>) {
        if let start = buffer.baseAddress, buffer.count > 0 {
            base = start
            limit = buffer.count
            isDirect = true
        } else {
            base = .allocate(capacity: Self.chunkSize)
        }
    }

    /// The bytes `body` writes, straight into the result's storage, allocated at `bound` bytes: an upper bound of
    /// what `body` writes (the untouched tail costs address space only, no resident memory). Should the bound
    /// fall short, the result is still complete (the writer goes on in storage of its own), only slower.
    static func bytes(bound: Int, _ body: (inout ByteWriter) -> Void) -> [UInt8] {
        if bound <= SmallBodyScratch.capacity {
            // Written into this thread's scratch and copied once into an array of the exact size. Allocating at the
            // bound instead went through an unspecialised standard library function (~1,100 instructions; see
            // `Array.filled`), and a bound over ~1 KB made glibc consolidate its fast bins on every request.
            var w = ByteWriter(into: UnsafeMutableBufferPointer(start: SmallBodyScratch.current, count: bound))
            body(&w)
            return w.take()
        }
        var spilled: [UInt8]?
        let bytes = [UInt8](unsafeUninitializedCapacity: bound) { buffer, initialized in
            var w = ByteWriter(into: buffer)
            body(&w)
            if w.isDirect {
                initialized = w.count
            } else {
                spilled = w.take()
                initialized = 0
            }
        }
        return spilled ?? bytes
    }

    /// The bytes written, as an Array; the writer is spent.
    consuming func take() -> [UInt8] {
        if isDirect { return Array(UnsafeBufferPointer(start: base, count: count)) }
        flush()
        base.deallocate()
        return out
    }

    private mutating func flush() {
        out.append(contentsOf: UnsafeBufferPointer(start: base, count: count))
        count = 0
        if isDirect {
            // The caller's buffer is full: go on through a chunk of our own.
            isDirect = false
            base = .allocate(capacity: Self.chunkSize)
            limit = Self.chunkSize
        }
    }

    /// Makes room for `extra` contiguous bytes (at most `chunkSize / 2`; larger writes go through `bytes`).
    @inline(__always)
    mutating func reserve(_ extra: Int) {
        if count + extra > limit { flush() }
    }

    @inline(__always)
    mutating func byte(_ b: UInt8) {
        reserve(1)
        base[count] = b
        count += 1
    }

    @inline(__always)
    mutating func bytes(_ b: UnsafeBufferPointer<UInt8>) {
        guard let p = b.baseAddress, b.count > 0 else { return }
        if count + b.count > limit {
            flush()
            if b.count > Self.chunkSize / 2 {
                out.append(contentsOf: b)
                return
            }
        }
        (base + count).update(from: p, count: b.count)
        count += b.count
    }

    @inline(__always)
    mutating func ascii(_ s: StaticString) {
        bytes(UnsafeBufferPointer(start: s.utf8Start, count: s.utf8CodeUnitCount))
    }

    mutating func utf8(_ s: String) {
        var s = s
        s.withUTF8 { bytes($0) }
    }

    mutating func int(_ value: Int) {
        if value < 0 { byte(UInt8(ascii: "-")) }
        unsigned(value.magnitude)
    }

    mutating func unsigned(_ value: UInt) {
        var v = value
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 24 bytes of stack for up to 20 digits
        withUnsafeMutableBytes(of: &digits) { buf in
            var i = 24
            repeat {
                i -= 1
                buf[i] = UInt8(truncatingIfNeeded: v % 10) + 48
                v /= 10
            } while v > 0
            bytes(UnsafeBufferPointer(start: buf.baseAddress!.assumingMemoryBound(to: UInt8.self) + i, count: 24 - i))
        }
    }

    // MARK: JSON

    /// A JSON number: shortest round-trip text, exactly `description` (`4.0`, `-0.0`, `1e-07`); non-finite as
    /// the agreed strings.
    @inline(__always)
    mutating func jsonNumber(_ d: Double) {
        if d.isFinite {
            shortest(d)
        } else {
            ascii(d.isNaN ? "\"NaN\"" : d < 0 ? "\"-Infinity\"" : "\"Infinity\"")
        }
    }

    /// `[a,b,...]`, each as `jsonNumber` writes it: one bounds check per number, or one for the whole array
    /// when it surely fits (always under `bytes(bound:)`), then a cursor in a register rather than `count`
    /// stored back per number. A long array that fits is written by `pool`'s threads (see `parallelNumbers`).
    mutating func jsonNumberArray(_ values: UnsafeBufferPointer<Double>, pool: WorkerPool? = nil) {
        byte(UInt8(ascii: "["))
        if values.count < (limit - count - ShortestDecimal.room) / (ShortestDecimal.maxLength + 1) {
            if let pool, pool.width > 1, values.count >= Self.parallelMinimum,
               Self.parts(values.count, pool: pool).bytes <= limit - count {
                count += Self.parallelNumbers(values, to: base + count, pool: pool)
            } else {
                count += Self.numbers(values, to: base + count)
            }
            byte(UInt8(ascii: "]"))
            return
        }
        for i in values.indices {
            reserve(ShortestDecimal.room + 1)
            if i > 0 {
                base[count] = UInt8(ascii: ",")
                count += 1
            }
            let d = values[i]
            if d.isFinite {
                count += ShortestDecimal.write(d, to: base + count)
            } else {
                jsonNumber(d)
            }
        }
        byte(UInt8(ascii: "]"))
    }

    /// Arrays from this many numbers on (~350 KB of text, ~1 ms of one thread) are split over the worker pool;
    /// below it, handing work over would cost more than it saves.
    static let parallelMinimum = 1 << 14
    /// At most this many parts: each needs up to `maxLength + 1 + room` bytes beyond the array's own bound.
    static let maxParts = 32

    /// How `parallelNumbers` cuts `count` numbers: parts of `perPart` numbers (the last may be shorter), part k
    /// written at `k * stride`, `bytes` in all (at most (count + parts) * (maxLength + 1) + parts * room).
    static func parts(_ count: Int, pool: WorkerPool) -> (parts: Int, perPart: Int, stride: Int, bytes: Int) {
        let parts = max(1, min(pool.width * 16, count / 2048, maxParts))
        let perPart = (count + parts - 1) / parts
        let stride = perPart * (ShortestDecimal.maxLength + 1) + ShortestDecimal.room
        return (parts, perPart, stride, parts * stride)
    }

    /// `values` comma-separated at `out` (room for `maxLength + 1` bytes per number and `room` more); returns the
    /// bytes written.
    @inline(__always)
    static func numbers(_ values: UnsafeBufferPointer<Double>, to out: UnsafeMutablePointer<UInt8>) -> Int {
        var p = out
        for i in values.indices {
            p[0] = UInt8(ascii: ",")
            p += i > 0 ? 1 : 0  // the comma stays only between numbers
            let d = values[i]
            if d.isFinite {
                p += ShortestDecimal.write(d, to: p)
            } else {
                let text: StaticString = d.isNaN ? "\"NaN\"" : d < 0 ? "\"-Infinity\"" : "\"Infinity\""
                p.update(from: text.utf8Start, count: text.utf8CodeUnitCount)  // at most 11 bytes < room
                p += text.utf8CodeUnitCount
            }
        }
        return p - out
    }

    /// `numbers(values, to: out)` by the pool's threads: the numbers cut in parts of equal count (many per
    /// thread, ~0.1 ms each: a thread preempted while holding a part holds up the join, the shorter the part
    /// the less likely; and a late or busy thread leaves less undone), each part written at its own upper-bound offset
    /// and then moved down behind the one before, by whichever thread finds it next in line (so the moves
    /// overlap the writing of later parts). The cuts depend on the pool's width, the bytes do not: every number
    /// is written by the same code, and the parts joined in order. No memory beyond the caller's room.
    static func parallelNumbers(_ values: UnsafeBufferPointer<Double>, to out: UnsafeMutablePointer<UInt8>,
                                pool: WorkerPool) -> Int {
        let n = values.count
        let (parts, perPart, stride, _) = Self.parts(n, pool: pool)
        let placement = Mutex(Placement(parts: parts))
        pool.run(parts) { k in
            let lo = k * perPart, hi = min(n, lo + perPart)
            let at = out + k * stride
            var length = 0
            if lo < hi {
                if k > 0 {
                    at[0] = UInt8(ascii: ",")
                    length = 1
                }
                length += numbers(UnsafeBufferPointer(rebasing: values[lo..<hi]), to: at + length)
            }
            // Parts are moved down in order, one thread at a time: part j's place ends at or before j * stride,
            // below every part still being written; parts before j have moved out of it.
            var next = placement.withLock { $0.written(k, length: length) }
            while let (j, end, count) = next {
                if j > 0 { (out + end).update(from: out + j * stride, count: count) }
                next = placement.withLock { $0.placed() }
            }
        }
        return placement.withLock { state in
            precondition(state.next == parts, "every part is placed before the pool's run returns")
            return state.end
        }
    }

    /// Which parts of `parallelNumbers` are written and which are in place.
    struct Placement: ~Copyable {
        var lengths: [Int]
        var written: [Bool]
        /// Parts before `next` are in place, ending at `end`; `moving` while a thread moves part `next`.
        var next = 0
        var end = 0
        var moving = false

        init(parts: Int) {
            lengths = [Int](repeating: 0, count: parts)
            written = [Bool](repeating: false, count: parts)
        }

        /// Part k is written: the part to move now (index, destination offset, bytes) if the caller is to move it.
        mutating func written(_ k: Int, length: Int) -> (Int, Int, Int)? {
            lengths[k] = length
            written[k] = true
            guard !moving else { return nil }  // the mover will come to it
            return claim()
        }

        /// The part being moved is in place: the next one to move, if written.
        mutating func placed() -> (Int, Int, Int)? {
            end += lengths[next]
            next += 1
            moving = false
            return claim()
        }

        private mutating func claim() -> (Int, Int, Int)? {
            guard next < written.count, written[next] else { return nil }
            moving = true
            return (next, end, lengths[next])
        }
    }

    /// A finite double's shortest round-trip text, exactly `description`.
    @inline(__always)
    mutating func shortest(_ d: Double) {
        reserve(ShortestDecimal.room)
        count += ShortestDecimal.write(d, to: base + count)
    }

    /// A JSON string literal, escaped per RFC 8259 (quote, backslash, control characters); other UTF-8 as is.
    mutating func jsonString(_ s: String) {
        var s = s
        s.withUTF8 { jsonString(bytes: $0) }
    }

    mutating func jsonString(bytes s: UnsafeBufferPointer<UInt8>) {
        byte(UInt8(ascii: "\""))
        var plain = true
        for c in s where c < 0x20 || c == UInt8(ascii: "\"") || c == UInt8(ascii: "\\") {
            plain = false
            break
        }
        if plain {
            bytes(s)
        } else {
            for c in s { escaped(c) }
        }
        byte(UInt8(ascii: "\""))
    }

    private mutating func escaped(_ c: UInt8) {
        switch c {
        case UInt8(ascii: "\""): ascii("\\\"")
        case UInt8(ascii: "\\"): ascii("\\\\")
        case 0x0A: ascii("\\n")
        case 0x0D: ascii("\\r")
        case 0x09: ascii("\\t")
        case 0x08: ascii("\\b")
        case 0x0C: ascii("\\f")
        case 0..<0x20:
            ascii("\\u00")
            byte(ASCII.hexDigit(c >> 4))
            byte(ASCII.hexDigit(c))
        default: byte(c)
        }
    }
}

/// A per-thread buffer for small response bodies (see `ByteWriter.bytes(bound:)`), made on a thread's first one and freed
/// when the thread exits. Used by one call at a time on its thread.
enum SmallBodyScratch {
    static let capacity = 4096

    static var current: UnsafeMutablePointer<UInt8> {
        if let stored = pthread_getspecific(key) { return stored.assumingMemoryBound(to: UInt8.self) }
        let buffer = UnsafeMutablePointer<UInt8>.allocate(capacity: capacity)
        pthread_setspecific(key, buffer)
        return buffer
    }

    private static let key: pthread_key_t = {
        var key = pthread_key_t()
        let status = pthread_key_create(&key) { stored in
            stored?.assumingMemoryBound(to: UInt8.self).deallocate()
        }
        precondition(status == 0, "pthread_key_create failed")
        return key
    }()
}
