#!/usr/bin/env python3
"""Writes a POST /evaluate graph-form request: the chain x = x*w_i + b_i, 4 nodes per step.

    make_chain.py NODES OUT.json [SEED]

The graph has 1 + 4*floor((NODES-1)/4) nodes (100000 -> 99997, 1000000 -> 999997, under the service's
1,000,000-node cap): a leaf x0, then per step i the leaves w<i>, b<i>, m<i> = x<i-1>*w<i>, x<i> = m<i> + b<i>.
|w| = exp(u), u uniform in [-0.5, 0.5], so log|x| and the gradients random-walk instead of under/overflowing;
every number is a full 17-digit double. Same NODES and SEED, same bytes.
"""
import math
import random
import sys


def main():
    nodes = int(sys.argv[1])
    path = sys.argv[2]
    seed = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    steps = (nodes - 1) // 4
    rng = random.Random(seed)
    parts = ['{"nodes":[\n', '{"id":"x0","value":%r}' % rng.uniform(-1.0, 1.0)]
    for i in range(1, steps + 1):
        w = math.exp(rng.uniform(-0.5, 0.5)) * (1.0 if rng.random() < 0.5 else -1.0)
        b = rng.uniform(-1.0, 1.0)
        parts.append(
            ',\n{"id":"w%d","value":%r},\n{"id":"b%d","value":%r},\n'
            '{"id":"m%d","op":"mul","inputs":["x%d","w%d"]},\n'
            '{"id":"x%d","op":"add","inputs":["m%d","b%d"]}' % (i, w, i, b, i, i - 1, i, i, i, i))
    parts.append('],\n"output":"x%d"}\n' % steps)
    with open(path, "w") as f:
        f.write("".join(parts))


if __name__ == "__main__":
    main()
