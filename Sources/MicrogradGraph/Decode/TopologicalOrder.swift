/// Deterministic topological order of a graph given as per-node inputs, without recursion.
///
/// Depth-first post-order, starting from nodes in index (request) order and visiting inputs in operand
/// order, with an explicit stack: a graph whose nodes are already sorted keeps its order exactly, and a
/// 1,000,000-deep chain costs heap, not stack.
enum TopologicalOrder {
    struct Cycle: Error {
        /// The node whose input closes the cycle, and which of its inputs.
        var node: Int32
        var input: Int
        /// The cycle in data-flow order (each node is an input of the next), first node repeated at the end.
        var path: [Int32]
    }

    /// `lhs[i]`, `rhs[i]`: inputs of node `i` (-1 when absent). Returns node indices, inputs before users,
    /// or nil when the nodes are already in order (the result would be the identity).
    static func sort(lhs: [Int32], rhs: [Int32]) -> Result<[Int32]?, Cycle> {
        let count = lhs.count
        // Common case: already sorted (every input before its user). DFS post-order then is the identity.
        var sorted = true
        for i in 0..<count where lhs[i] >= Int32(i) || rhs[i] >= Int32(i) {
            sorted = false
            break
        }
        if sorted { return .success(nil) }
        // 0: not visited, 1: on the stack, 2: emitted.
        var state = [UInt8].filled(with: 0, count: count)
        var order: [Int32] = []
        order.reserveCapacity(count)
        var stack: [Int32] = []
        var nextInput: [UInt8] = []  // per stack entry: which input to visit next (0, 1, 2 = done)
        for root in 0..<count where state[root] == 0 {
            state[root] = 1
            stack.append(Int32(root))
            nextInput.append(0)
            while let top = stack.last {
                let t = Int(top)
                let k = nextInput[nextInput.count - 1]
                let child = k == 0 ? lhs[t] : k == 1 ? rhs[t] : -1
                if k < 2 {
                    nextInput[nextInput.count - 1] = k + 1
                    if child < 0 { continue }
                    switch state[Int(child)] {
                    case 0:
                        state[Int(child)] = 1
                        stack.append(child)
                        nextInput.append(0)
                    case 1:
                        return .failure(cycle(closedBy: top, input: Int(k), child: child, stack: stack))
                    default:
                        break
                    }
                    continue
                }
                state[t] = 2
                order.append(top)
                stack.removeLast()
                nextInput.removeLast()
            }
        }
        return .success(order)
    }

    private static func cycle(closedBy top: Int32, input: Int, child: Int32, stack: [Int32]) -> Cycle {
        // The stack from `child` up to `top` is a dependency path (each entry uses the next); reverse it
        // for data-flow order.
        let from = stack.lastIndex(of: child) ?? 0
        var path = Array(stack[from...].reversed())
        path.append(path[0])
        return Cycle(node: top, input: input, path: path)
    }
}
