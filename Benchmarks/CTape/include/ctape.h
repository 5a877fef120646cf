#pragma once
// A plain C flat tape: the speed baseline for the Swift engine (see Benchmarks/EngineBenchmark).
// One array of nodes (op code, two input indices, data, grad), grown by realloc; forward values are
// computed as nodes are appended; backward is one loop in reverse index order.
#include <stdint.h>

typedef struct {
    double data;
    double grad;
    int32_t a, b;
    uint8_t op;   // same codes as Swift's `Op` raw values
} ct_node;

typedef struct {
    ct_node *nodes;
    int64_t count, capacity;
} ct_tape;

void ct_free(ct_tape *t);
void ct_backward(ct_tape *t, int32_t output);

/// W1: x = 0.5; `steps` times x = tanh(x * w_i + b_i), w_i = 1 + 0.01 sin i, b_i = 0.001 cos i. Returns the output.
int32_t ct_w1(ct_tape *t, int32_t steps);
/// W3: acc = a0*b0, then acc = acc + a_i*b_i for i < n, a_i = i * 1e-6, b_i = 1 - i * 1e-7.
int32_t ct_w3(ct_tape *t, int32_t n);
/// W2: micrograd's demo step: MLP(2, [16, 16, 1]) (weights from SplitMix64(seed) uniform [-1, 1)) on `n`
/// points `xs` (x0, x1 pairs) with labels `ys` (+1/-1), SVM max-margin loss + 1e-4 L2.
/// Stores the index of the first parameter in *first_param.
int32_t ct_w2(ct_tape *t, const double *xs, const double *ys, int32_t n, uint64_t seed, int32_t *first_param);
