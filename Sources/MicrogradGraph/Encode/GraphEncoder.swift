import Micrograd

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Response bodies for an evaluated graph (JSON, DOT, JGF) and for problems. Byte writers throughout:
/// Foundation's JSONEncoder is an order of magnitude slower and writes `4` for 4.0. Same input, same bytes.
public enum GraphEncoder {
    /// The evaluate response: `{"id","output","value","nodes":[...]}`, nodes in topological order.
    ///
    /// Written straight into the result's storage, allocated at an upper bound of its size: a guess of 80 bytes
    /// per node fell short for full-precision numbers (~91), and the regrowth copied the body into fresh pages;
    /// the bound's untouched tail costs address space only, no resident memory.
    /// `graphID` nil: no `id` member (the graph was answered but not stored).
    public static func json(_ g: EvaluatedGraph, graphID: String?) -> [UInt8] {
        let bound = jsonSizeBound(g, graphID: graphID)
        if bound <= SmallBodyScratch.capacity {
            // Written into this thread's scratch and copied once into an array of the exact size. Allocating at the
            // bound instead went through an unspecialised standard library function (~1,100 instructions; see
            // `Array.filled`), and a bound over ~1 KB made glibc consolidate its fast bins on every request.
            var w = ByteWriter(into: UnsafeMutableBufferPointer(start: SmallBodyScratch.current, count: bound))
            writeJSON(g, graphID: graphID, to: &w)
            return w.take()
        }
        var spilled: [UInt8]?
        let bytes = [UInt8](unsafeUninitializedCapacity: bound) { buffer, initialized in
            var w = ByteWriter(into: buffer)
            writeJSON(g, graphID: graphID, to: &w)
            if w.isDirect {
                initialized = w.count
            } else {
                spilled = w.take()  // the bound fell short (it should not): the writer went on in its own storage
                initialized = 0
            }
        }
        return spilled ?? bytes
    }

    /// The output's id and value (`"d","value":4.0`; nulls for an empty graph): shared by the JSON and JGF writers.
    static func writeOutput(of g: EvaluatedGraph, to w: inout ByteWriter) {
        guard g.spec.count > 0 else { return w.ascii("null,\"value\":null") }
        w.jsonString(g.spec.ids[Int(g.spec.output)])
        w.ascii(",\"value\":")
        w.jsonNumber(g.outputValue)
    }

    static func writeJSON(_ g: EvaluatedGraph, graphID: String?, to w: inout ByteWriter) {
        let spec = g.spec
        if let graphID {
            w.ascii("{\"id\":")
            w.jsonString(graphID)
            w.ascii(",\"output\":")
        } else {
            w.ascii("{\"output\":")
        }
        writeOutput(of: g, to: &w)
        w.ascii(",\"nodes\":[")
        for i in 0..<spec.count {
            if i > 0 { w.byte(UInt8(ascii: ",")) }
            w.ascii("{\"id\":")
            w.jsonString(spec.ids[i])
            if let label = spec.labels[i] {
                w.ascii(",\"label\":")
                w.jsonString(label)
            }
            let op = spec.ops[i]
            if op != .leaf {
                w.ascii(",\"op\":\"")
                w.ascii(op.staticName)
                w.ascii("\",\"inputs\":[")
                w.jsonString(spec.ids[Int(spec.lhs[i])])
                if spec.rhs[i] >= 0 {
                    w.byte(UInt8(ascii: ","))
                    w.jsonString(spec.ids[Int(spec.rhs[i])])
                }
                w.byte(UInt8(ascii: "]"))
                if op == .powConst {
                    w.ascii(",\"exponent\":")
                    w.jsonNumber(spec.values[i])
                }
            } else if spec.isConstant[i] {
                w.ascii(",\"constant\":true")
            }
            w.ascii(",\"data\":")
            w.jsonNumber(g.data[i])
            w.ascii(",\"grad\":")
            w.jsonNumber(g.grad[i])
            w.byte(UInt8(ascii: "}"))
        }
        w.ascii("]}")
    }

    /// At most what `json` writes: per node 100 bytes of punctuation and member names, 3 numbers of at most
    /// 32 bytes (the longest shortest-round-trip double has 24), and its strings (id, label, input ids) quoted
    /// and escaped (at most 6 bytes per byte).
    static func jsonSizeBound(_ g: EvaluatedGraph, graphID: String?) -> Int {
        let spec = g.spec
        var stringBytes = (graphID?.utf8.count ?? 0) + (spec.count > 0 ? spec.ids[Int(spec.output)].utf8.count : 0)
        for i in 0..<spec.count {
            stringBytes += spec.ids[i].utf8.count + (spec.labels[i]?.utf8.count ?? 0)
            if spec.lhs[i] >= 0 { stringBytes += spec.ids[Int(spec.lhs[i])].utf8.count }
            if spec.rhs[i] >= 0 { stringBytes += spec.ids[Int(spec.rhs[i])].utf8.count }
        }
        return 128 + 32 + spec.count * (100 + 3 * 32 + 4 * 2) + 6 * stringBytes
    }

    /// An RFC 9457 `application/problem+json` body; the location's members are extension members.
    /// The caller chooses `type`, `title` and `status` (the service's mapping of a ``Problem/Kind``).
    public static func problem(
        type: String, title: String, status: Int, detail: String, instance: String? = nil,
        location: Problem.Location = .init()
    ) -> [UInt8] {
        let (pointer, column, line, unbound) = (location.pointer, location.column, location.line, location.unbound)
        var w = ByteWriter(capacity: 256 + detail.utf8.count + 16 * (unbound?.count ?? 0))
        w.ascii("{\"type\":")
        w.jsonString(type)
        w.ascii(",\"title\":")
        w.jsonString(title)
        w.ascii(",\"status\":")
        w.int(status)
        w.ascii(",\"detail\":")
        w.jsonString(detail)
        if let instance {
            w.ascii(",\"instance\":")
            w.jsonString(instance)
        }
        if let pointer {
            w.ascii(",\"pointer\":")
            w.jsonString(pointer)
        }
        if let line {
            w.ascii(",\"line\":")
            w.int(line)
        }
        if let column {
            w.ascii(",\"column\":")
            w.int(column)
        }
        if let unbound {
            w.ascii(",\"unbound\":[")
            for (i, name) in unbound.enumerated() {
                if i > 0 { w.byte(UInt8(ascii: ",")) }
                w.jsonString(name)
            }
            w.byte(UInt8(ascii: "]"))
        }
        w.byte(UInt8(ascii: "}"))
        return w.take()
    }

    /// A JSON string literal for `text` (RFC 8259 escaping), for callers outside this module that build JSON.
    public static func jsonString(_ text: String) -> String {
        var w = ByteWriter(capacity: text.utf8.count + 2)
        w.jsonString(text)
        return String(decoding: w.take(), as: UTF8.self)
    }
}

/// A per-thread buffer for small response bodies (see `GraphEncoder.json`), made on a thread's first one and freed
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
