import MicrogradGraph

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Unguessable evaluation ids, for stores that keep graphs by id.
public enum EvaluationID {
    /// A fresh id: 32 lowercase hex digits of 128 bits from the system's CSPRNG.
    public static func random() -> String {
        let (high, low) = RandomPool.current.pointee.next128()
        return String(unsafeUninitializedCapacity: 32) { out in
            // A literal's bytes, not the generic ASCII.hexDigit: called across modules it is not specialised
            // (~1,600 instructions an id).
            let digits: StaticString = "0123456789abcdef"
            let digit = digits.utf8Start
            var high = high, low = low
            for k in stride(from: 15, through: 0, by: -1) {
                out[k] = digit[Int(high & 0xF)]
                out[16 + k] = digit[Int(low & 0xF)]
                high >>= 4
                low >>= 4
            }
            return 32
        }
    }

    /// Kernel randomness fetched 4 KiB at a time, not two system calls per id; one pool per thread, so minting
    /// an id takes no lock (a shared pool's mutex was taken by every POST /evaluate on every worker thread).
    private struct RandomPool {
        var words = [UInt64](repeating: 0, count: 512)
        var next = 512

        /// This thread's pool, made on its first id and freed when the thread exits.
        static var current: UnsafeMutablePointer<RandomPool> {
            if let stored = pthread_getspecific(key) { return stored.assumingMemoryBound(to: RandomPool.self) }
            let pool = UnsafeMutablePointer<RandomPool>.allocate(capacity: 1)
            pool.initialize(to: RandomPool())
            pthread_setspecific(key, pool)
            return pool
        }

        private static let key: pthread_key_t = {
            var key = pthread_key_t()
            let status = pthread_key_create(&key) { stored in
                guard let pool = stored?.assumingMemoryBound(to: RandomPool.self) else { return }
                pool.deinitialize(count: 1)
                pool.deallocate()
            }
            precondition(status == 0, "pthread_key_create failed")
            return key
        }()

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
