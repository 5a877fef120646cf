#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The pthread key holding each thread's tape. The destructor releases the tape when its thread exits.
private let currentTapeKey: pthread_key_t = {
    var key = pthread_key_t()
    let status = pthread_key_create(&key) { pointer in
        if let pointer { Unmanaged<Tape>.fromOpaque(pointer).release() }
    }
    precondition(status == 0, "pthread_key_create failed: \(status)")
    return key
}()

extension Tape {
    /// This thread's tape, created on first use, where `Value(2.0)` puts its leaves.
    ///
    /// It lives as long as its thread (the main thread's for the whole process), which is what lets a
    /// ``Value`` refer to it without reference counting. Values must not cross threads.
    public static var current: Tape {
        if let pointer = pthread_getspecific(currentTapeKey) {
            return Unmanaged<Tape>.fromOpaque(pointer).takeUnretainedValue()
        }
        return makeCurrent()
    }

    @inline(never)
    private static func makeCurrent() -> Tape {
        let tape = Tape()
        let status = pthread_setspecific(currentTapeKey, Unmanaged.passRetained(tape).toOpaque())
        precondition(status == 0, "pthread_setspecific failed: \(status)")
        return tape
    }
}
