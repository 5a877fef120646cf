/// Interns node ids by their bytes: an open-addressing hash table over slices of one byte arena.
/// Cheaper than `Dictionary<String, Int32>`: no String is made per lookup.
/// Each distinct id gets a symbol number (0, 1, ... in order of first appearance) and its bytes are stored once.
/// Owns raw memory: call `release()` when done.
struct IDTable {
    private var slots: UnsafeMutablePointer<Int32>  // symbol + 1, 0 = empty
    private var mask: Int
    private(set) var count = 0
    private var hashes: Column<UInt32>
    private var starts: Column<Int32>
    private var lengths: Column<Int32>
    private var arena: UnsafeMutablePointer<UInt8>
    private var arenaCount = 0
    private var arenaCapacity: Int

    init(expectedCount: Int) {
        var capacity = 16
        while capacity < expectedCount + expectedCount / 2 { capacity <<= 1 }
        slots = .allocate(capacity: capacity)
        slots.initialize(repeating: 0, count: capacity)
        mask = capacity - 1
        arenaCapacity = max(64, expectedCount * 8)
        arena = .allocate(capacity: arenaCapacity)
        hashes = Column(capacity: expectedCount)
        starts = Column(capacity: expectedCount)
        lengths = Column(capacity: expectedCount)
    }

    mutating func release() {
        slots.deallocate()
        arena.deallocate()
        hashes.release(); starts.release(); lengths.release()
    }

    /// Slots, arena bytes and per-id entries this table holds: what keeping it for reuse would pin.
    var footprint: Int { (mask + 1) * 4 + arenaCapacity + hashes.capacity * 12 }

    /// Empties the table, keeping its memory.
    mutating func removeAll() {
        slots.update(repeating: 0, count: mask + 1)
        count = 0
        arenaCount = 0
        hashes.removeAll(); starts.removeAll(); lengths.removeAll()
    }

    /// The symbol for `key`, or -1.
    func find(_ key: UnsafeBufferPointer<UInt8>) -> Int32 {
        let h = Self.hash(key)
        var i = Int(h) & mask
        while true {
            let s = slots[i]
            if s == 0 { return -1 }
            if matches(Int(s - 1), key, h) { return s - 1 }
            i = (i + 1) & mask
        }
    }

    /// Loads the slots these hashes map to, all at once. Lookups in a table bigger than the caches are
    /// dominated by one memory miss each; issuing a batch of independent loads first lets them overlap
    /// (interning dominates decoding otherwise). `sink` keeps the loads alive.
    mutating func warm(_ hashes: UnsafeBufferPointer<UInt32>) {
        var acc: Int32 = 0
        for h in hashes { acc &+= slots[Int(h) & mask] }
        sink = acc
    }
    private var sink: Int32 = 0

    /// The symbol for `key`, inserting it (and copying its bytes) if new.
    mutating func intern(_ key: UnsafeBufferPointer<UInt8>) -> (symbol: Int32, isNew: Bool) {
        intern(key, hash: Self.hash(key))
    }

    mutating func intern(_ key: UnsafeBufferPointer<UInt8>, hash h: UInt32) -> (symbol: Int32, isNew: Bool) {
        var i = Int(h) & mask
        while true {
            let s = slots[i]
            if s == 0 { break }
            if matches(Int(s - 1), key, h) { return (s - 1, false) }
            i = (i + 1) & mask
        }
        let symbol = Int32(count)
        if arenaCount + key.count > arenaCapacity {
            let newCapacity = max(arenaCapacity * 2, arenaCount + key.count)
            let grown = UnsafeMutablePointer<UInt8>.allocate(capacity: newCapacity)
            grown.update(from: arena, count: arenaCount)
            arena.deallocate()
            arena = grown
            arenaCapacity = newCapacity
        }
        if let k = key.baseAddress { (arena + arenaCount).update(from: k, count: key.count) }
        hashes.append(h)
        starts.append(Int32(arenaCount))
        lengths.append(Int32(key.count))
        arenaCount += key.count
        count += 1
        slots[i] = symbol + 1
        if count * 2 > mask + 1 { grow() }
        return (symbol, true)
    }

    func bytes(_ symbol: Int32) -> UnsafeBufferPointer<UInt8> {
        UnsafeBufferPointer(start: arena + Int(starts[Int(symbol)]), count: Int(lengths[Int(symbol)]))
    }

    func string(_ symbol: Int32) -> String {
        String(decoding: bytes(symbol), as: UTF8.self)
    }

    @inline(__always)
    private func matches(_ symbol: Int, _ key: UnsafeBufferPointer<UInt8>, _ h: UInt32) -> Bool {
        guard hashes[symbol] == h, Int(lengths[symbol]) == key.count else { return false }
        let p = arena + Int(starts[symbol])
        for k in 0..<key.count where p[k] != key[k] { return false }
        return true
    }

    private mutating func grow() {
        let capacity = (mask + 1) * 2
        slots.deallocate()
        slots = .allocate(capacity: capacity)
        slots.initialize(repeating: 0, count: capacity)
        mask = capacity - 1
        for symbol in 0..<count {
            var i = Int(hashes[symbol]) & mask
            while slots[i] != 0 { i = (i + 1) & mask }
            slots[i] = Int32(symbol + 1)
        }
    }

    /// 8 bytes at a time, multiply-xorshift mixing: ids are short, so the tail dominates; good enough spread
    /// for linear probing, and the full bytes are compared on a hit anyway.
    @inline(__always)
    static func hash(_ key: UnsafeBufferPointer<UInt8>) -> UInt32 {
        var h: UInt64 = 0x9E37_79B9_7F4A_7C15 ^ UInt64(key.count)
        guard let p = key.baseAddress else { return UInt32(truncatingIfNeeded: h) }
        let raw = UnsafeRawPointer(p)
        var i = 0
        while i + 8 <= key.count {
            h = (h ^ raw.loadUnaligned(fromByteOffset: i, as: UInt64.self)) &* 0xFF51_AFD7_ED55_8CCD
            h ^= h >> 32
            i += 8
        }
        var tail: UInt64 = 0
        var shift: UInt64 = 0
        while i < key.count {
            tail |= UInt64(p[i]) << shift
            shift += 8
            i += 1
        }
        h = (h ^ tail) &* 0xC4CE_B9FE_1A85_EC53
        h ^= h >> 29
        h = h &* 0xFF51_AFD7_ED55_8CCD
        h ^= h >> 32
        return UInt32(truncatingIfNeeded: h)
    }
}
