#if canImport(Glibc)
import Glibc
#endif

/// glibc malloc settings for serving large requests.
enum MallocTuning {
    /// A batch's buffers (100,000 rows: a 5 MB body, 20 MB reserved for the answer, columns of 0.8 MB) are over
    /// glibc's mmap threshold, so every request mapped fresh pages and faulted them in: ~7,300 page faults per
    /// request, a fifth of its CPU. Served from the heap and kept between requests (up to 64 MiB free at the top
    /// of a heap before it is trimmed), ~10. The MALLOC_MMAP_THRESHOLD_ / MALLOC_TRIM_THRESHOLD_ environment
    /// variables still win. `mallopt` is looked up at run time: the Glibc module does not import malloc.h, and
    /// another C library (musl) simply has no such symbol.
    static func keepLargeBuffers() {
        #if canImport(Glibc)
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "mallopt") else { return }  // RTLD_DEFAULT
        let mallopt = unsafeBitCast(symbol, to: (@convention(c) (Int32, Int32) -> Int32).self)
        let mmapThreshold: Int32 = -3, trimThreshold: Int32 = -1  // M_MMAP_THRESHOLD, M_TRIM_THRESHOLD (malloc.h)
        if getenv("MALLOC_MMAP_THRESHOLD_") == nil { _ = mallopt(mmapThreshold, 32 << 20) }
        if getenv("MALLOC_TRIM_THRESHOLD_") == nil { _ = mallopt(trimThreshold, 64 << 20) }
        #endif
    }
}
