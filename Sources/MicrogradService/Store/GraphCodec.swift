import Micrograd
import MicrogradGraph

/// The compact binary form a shared store keeps: an evaluated graph (spec + data + grad) or a registered spec.
///
/// Not the JSON answer (about 90 bytes a node): per node one flags byte (op, constant, label, value), the id and
/// label with varint lengths, each input as a varint distance back to it, and 8-byte doubles only where they carry
/// something. Little-endian, versioned by a 4-byte magic; a reader refuses any other version, a truncated value and
/// trailing bytes (``GraphCodec/Failure``) instead of trusting them.
public enum GraphCodec {
    public struct Failure: Error, Sendable, CustomStringConvertible {
        public var description: String
        init(_ description: String) { self.description = description }
    }

    static let evaluationMagic: [UInt8] = Array("MGE1".utf8)
    static let specMagic: [UInt8] = Array("MGS1".utf8)

    private static let constantFlag: UInt8 = 0x20, labelFlag: UInt8 = 0x40, valueFlag: UInt8 = 0x80, opMask: UInt8 = 0x1F

    public static func encode(_ graph: EvaluatedGraph) -> [UInt8] { encode(.evaluation(graph)) }

    public static func encode(_ spec: GraphSpec) -> [UInt8] { encode(.spec(spec)) }

    private enum Value {
        case evaluation(EvaluatedGraph)
        case spec(GraphSpec)
    }

    /// Measures, then writes into an array of exactly that size: appending byte by byte cost ~3,700 instructions
    /// for a 5-node evaluation, as much as building and queueing both of its Redis commands.
    private static func encode(_ value: Value) -> [UInt8] {
        var size = ByteCounter()
        write(value, into: &size)
        return [UInt8](unsafeUninitializedCapacity: size.count) { buffer, initialized in
            var writer = ByteWriterSink(at: buffer.baseAddress!)
            write(value, into: &writer)
            initialized = writer.at - buffer.baseAddress!
            precondition(initialized == size.count, "a graph's encoding is its measured size")
        }
    }

    private static func write(_ value: Value, into out: inout some ByteSink) {
        switch value {
        case .evaluation(let graph):
            out.put(evaluationMagic)
            write(graph.spec, into: &out)
            for value in graph.data { out.put(value) }
            for value in graph.grad { out.put(value) }
        case .spec(let spec):
            out.put(specMagic)
            write(spec, into: &out)
        }
    }

    public static func decodeEvaluation(_ bytes: [UInt8]) throws(Failure) -> EvaluatedGraph {
        var reader = Reader(bytes)
        try reader.expect(evaluationMagic)
        let spec = try readSpec(&reader)
        var data = [Double](), grad = [Double]()
        try reader.need(spec.count * 16)
        data.reserveCapacity(spec.count)
        grad.reserveCapacity(spec.count)
        for _ in 0..<spec.count { data.append(try reader.double()) }
        for _ in 0..<spec.count { grad.append(try reader.double()) }
        try reader.end()
        return EvaluatedGraph(spec: spec, data: data, grad: grad)
    }

    public static func decodeSpec(_ bytes: [UInt8]) throws(Failure) -> GraphSpec {
        var reader = Reader(bytes)
        try reader.expect(specMagic)
        let spec = try readSpec(&reader)
        try reader.end()
        return spec
    }

    private static func write(_ spec: GraphSpec, into out: inout some ByteSink) {
        out.putVarint(UInt64(spec.count))
        out.putVarint(UInt64(Int64(spec.output) &+ 1))  // -1 (no output, empty graph) is 0
        for i in 0..<spec.count {
            let op = spec.ops[i]
            let value = spec.values[i]
            var flags = op.rawValue
            if spec.isConstant[i] { flags |= constantFlag }
            if spec.labels[i] != nil { flags |= labelFlag }
            if value.bitPattern != 0 { flags |= valueFlag }
            out.put(flags)
            out.put(spec.ids[i])
            if let label = spec.labels[i] { out.put(label) }
            if op.arity >= 1 { out.putVarint(UInt64(i - Int(spec.lhs[i]))) }
            if op.arity >= 2 { out.putVarint(UInt64(i - Int(spec.rhs[i]))) }
            if value.bitPattern != 0 { out.put(value) }
        }
    }

    private static func readSpec(_ reader: inout Reader) throws(Failure) -> GraphSpec {
        let count = try reader.varint()
        // Every node takes at least 2 bytes: a count beyond that is a lie, refused before reserving memory for it.
        guard count <= UInt64(reader.remaining / 2) else { throw Failure("node count \(count) exceeds the value's size") }
        let outputPlusOne = try reader.varint()
        guard outputPlusOne <= count, (count == 0) == (outputPlusOne == 0) else {
            throw Failure("output \(Int64(outputPlusOne) - 1) is not a node of \(count)")
        }
        var spec = GraphSpec()
        spec.reserveCapacity(Int(count))
        spec.output = Int32(Int64(outputPlusOne) - 1)
        for i in 0..<Int(count) {
            let flags = try reader.byte()
            guard let op = Op(rawValue: flags & opMask) else { throw Failure("node \(i): unknown op \(flags & opMask)") }
            let id = try reader.string()
            let label = flags & labelFlag != 0 ? try reader.string() : nil
            let lhs = op.arity >= 1 ? try reader.input(of: i) : -1
            let rhs = op.arity >= 2 ? try reader.input(of: i) : -1
            let value = flags & valueFlag != 0 ? try reader.double() : 0
            spec.append(id: id, label: label, op: op, lhs: lhs, rhs: rhs, value: value, isConstant: flags & constantFlag != 0)
        }
        return spec
    }

    private struct Reader {
        let bytes: [UInt8]
        var offset = 0

        init(_ bytes: [UInt8]) { self.bytes = bytes }

        var remaining: Int { bytes.count - offset }

        func need(_ count: Int) throws(Failure) {
            guard count >= 0, count <= remaining else { throw Failure("truncated at byte \(offset) of \(bytes.count)") }
        }

        mutating func expect(_ magic: [UInt8]) throws(Failure) {
            guard bytes.count >= magic.count, Array(bytes[0..<magic.count]) == magic else {
                throw Failure("not a graph this version writes (expected \(String(decoding: magic, as: UTF8.self)))")
            }
            offset = magic.count
        }

        mutating func end() throws(Failure) {
            guard remaining == 0 else { throw Failure("\(remaining) unexpected bytes after the graph") }
        }

        mutating func byte() throws(Failure) -> UInt8 {
            try need(1)
            defer { offset += 1 }
            return bytes[offset]
        }

        mutating func varint() throws(Failure) -> UInt64 {
            var value: UInt64 = 0
            for shift in stride(from: 0, to: 64, by: 7) {
                let byte = try byte()
                value |= UInt64(byte & 0x7F) << UInt64(shift)
                if byte < 0x80 { return value }
            }
            throw Failure("varint longer than 64 bits at byte \(offset)")
        }

        mutating func string() throws(Failure) -> String {
            let length = try varint()
            guard length <= UInt64(remaining) else { throw Failure("truncated string at byte \(offset)") }
            defer { offset += Int(length) }
            return String(decoding: bytes[offset..<offset + Int(length)], as: UTF8.self)
        }

        /// An input of node `i`: a distance back, so it always names an earlier node (no cycles, no forward refs).
        mutating func input(of i: Int) throws(Failure) -> Int32 {
            let distance = try varint()
            guard distance >= 1, distance <= UInt64(i) else { throw Failure("node \(i): input \(distance) back does not exist") }
            return Int32(i - Int(distance))
        }

        mutating func double() throws(Failure) -> Double {
            try need(8)
            var bits: UInt64 = 0
            for k in 0..<8 { bits |= UInt64(bytes[offset + k]) << UInt64(8 * k) }
            offset += 8
            return Double(bitPattern: bits)
        }
    }
}

/// Where ``GraphCodec`` writes: a counter (the size pass) or memory of that size (the writing pass).
private protocol ByteSink {
    mutating func put(_ byte: UInt8)
    mutating func put(_ bytes: UnsafeRawBufferPointer)
}

extension ByteSink {
    mutating func put(_ bytes: [UInt8]) { bytes.withUnsafeBytes { put($0) } }

    mutating func putVarint(_ value: UInt64) {
        var value = value
        while value >= 0x80 {
            put(UInt8(truncatingIfNeeded: value) | 0x80)
            value >>= 7
        }
        put(UInt8(value))
    }

    /// Varint length, then the UTF-8 bytes.
    mutating func put(_ string: String) {
        var string = string
        string.withUTF8 { bytes in
            putVarint(UInt64(bytes.count))
            put(UnsafeRawBufferPointer(bytes))
        }
    }

    mutating func put(_ value: Double) {
        withUnsafeBytes(of: value.bitPattern.littleEndian) { put($0) }
    }
}

private struct ByteCounter: ByteSink {
    var count = 0
    mutating func put(_ byte: UInt8) { count += 1 }
    mutating func put(_ bytes: UnsafeRawBufferPointer) { count += bytes.count }
}

private struct ByteWriterSink: ByteSink {
    var at: UnsafeMutablePointer<UInt8>
    mutating func put(_ byte: UInt8) {
        at.pointee = byte
        at += 1
    }
    mutating func put(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        UnsafeMutableRawPointer(at).copyMemory(from: base, byteCount: bytes.count)
        at += bytes.count
    }
}
