import MicrogradGraph
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Unguessable evaluation ids, for stores that keep graphs by id.
public enum EvaluationID {
    /// A fresh id: 32 lowercase hex digits of 128 bits from the system's CSPRNG.
    public static func random() -> String {
        let (high, low) = randomPool.withLock { $0.next128() }
        return String(unsafeUninitializedCapacity: 32) { out in
            for k in 0..<16 {
                out[k] = ASCII.hexDigit(high >> UInt64(60 - 4 * k))
                out[16 + k] = ASCII.hexDigit(low >> UInt64(60 - 4 * k))
            }
            return 32
        }
    }

    /// Kernel randomness fetched 4 KiB at a time, not two system calls per id.
    private static let randomPool = Mutex(RandomPool())

    private struct RandomPool {
        var words = [UInt64](repeating: 0, count: 512)
        var next = 512

        mutating func next128() -> (UInt64, UInt64) {
            if next + 2 > words.count {
                words.withUnsafeMutableBytes { Self.fillFromKernel($0) }
                next = 0
            }
            defer { next += 2 }
            return (words[next], words[next + 1])
        }

        /// getentropy(3) (getrandom(2) underneath) gives at most 256 bytes per call and fails only on broken systems.
        static func fillFromKernel(_ buffer: UnsafeMutableRawBufferPointer) {
            var filled = 0
            #if canImport(Glibc)
            while filled < buffer.count {
                let n = min(256, buffer.count - filled)
                guard getentropy(buffer.baseAddress! + filled, n) == 0 else { break }
                filled += n
            }
            #endif
            // Elsewhere, or if getentropy ever failed: the standard library's CSPRNG, a word at a time.
            var generator = SystemRandomNumberGenerator()
            while filled < buffer.count {
                buffer[filled] = UInt8(truncatingIfNeeded: generator.next() as UInt64)
                filled += 1
            }
        }
    }
}
