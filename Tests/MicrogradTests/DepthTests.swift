#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Micrograd
import Testing

/// Nothing recurses over graph depth: a million-op chain is built, differentiated, walked and dropped on a
/// thread with a 512 KiB stack (a recursive walk or a recursive free of a class-per-node graph needs far more).
@Suite struct DepthTests {
    struct ChainResult {
        var output: Double
        var leafGrad: Double
        var count: Int
        var walked: Int
        var firstWalked: Int32
        var lastWalked: Int32
        var countAfterDrop: Int
        var tanhOutput: Double
        var tanhLeafGrad: Double
    }

    @Test func millionOpChainOnASmallStack() {
        let result = onNewThread(stackBytes: 512 * 1024) { () -> ChainResult in
            // f(x) = 1 - x, as two ops (neg, then + 1), applied 500,000 times: 1,000,000 ops.
            // f∘f is the identity, so the output is x0 again and d out/d x0 = (-1)^500000 = 1, exactly.
            let tape = Tape.current
            let x0 = Value(0.25)
            var x = x0
            for _ in 0..<500_000 { x = -x + 1 }
            x.backward()
            let order = x.topologicalOrder()
            var result = ChainResult(output: x.data, leafGrad: x0.grad, count: tape.count, walked: order.count,
                                     firstWalked: order.first!.index, lastWalked: order.last!.index, countAfterDrop: -1,
                                     tanhOutput: .nan, tanhLeafGrad: .nan)
            tape.removeAll(keepingCapacity: false)
            result.countAfterDrop = tape.count
            // A second chain is left on the thread's tape: it is freed when the thread exits.
            let y0 = Value(1.0)
            var y = y0
            for _ in 0..<1_000_000 { y = y.tanh() }
            y.backward()
            result.tanhOutput = y.data
            result.tanhLeafGrad = y0.grad
            return result
        }
        #expect(result.output == 0.25)
        #expect(result.leafGrad == 1)
        #expect(result.count == 1_500_001)  // x0, 500,000 × (neg, leaf 1, add)
        #expect(result.walked == 1_500_001)
        #expect(result.firstWalked == 0 && result.lastWalked == 1_500_000)
        #expect(result.countAfterDrop == 0)
        // The same chain in plain Doubles with libm: t_i = tanh(t_{i-1}), d t_n / d t_0 = prod (1 - t_i^2).
        var t = 1.0, derivative = 1.0
        for _ in 0..<1_000_000 {
            t = tanh(t)
            derivative *= 1 - t * t
        }
        // The engine's tanh is its own (shared with the batched path), within 1e-9 relative of libm's, as the goldens.
        #expect(abs(result.tanhOutput - t) <= 1e-9 * t, "\(result.tanhOutput) vs \(t)")
        #expect(derivative > 1e-12 && abs(result.tanhLeafGrad - derivative) <= 1e-9 * derivative, "\(result.tanhLeafGrad)")
    }

    @Test func deepChainOnAnOwnedTapeIsFreedAtOnce() {
        let (grad, out, freed) = onNewThread(stackBytes: 512 * 1024) { () -> (Double, Double, Bool) in
            var tape: Tape? = Tape()
            weak let released = tape
            var i = tape!.leaf(0.5)
            for _ in 0..<1_000_000 { i = tape!.apply(.neg, i) }
            tape!.backward(from: i)
            let g = tape!.grad(0), out = tape!.data(i)
            tape = nil  // the last reference: freed here, one buffer however deep the graph (no recursion)
            return (g, out, released == nil)
        }
        #expect(grad == 1 && out == 0.5)  // an even number of negations
        #expect(freed, "nothing else may keep the tape alive")
    }
}
