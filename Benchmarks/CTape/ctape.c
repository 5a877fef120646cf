#include "ctape.h"
#include <math.h>
#include <stdlib.h>
#include <stdio.h>

enum { LEAF, ADD, SUB, MUL, DIV, NEG, POWC, POW, EXP, LOG, TANH, RELU, SIGMOID };

void ct_free(ct_tape *t) {
    free(t->nodes);
    t->nodes = NULL;
    t->count = t->capacity = 0;
}

static __attribute__((noinline)) void grow(ct_tape *t) {
    int64_t cap = t->capacity * 2 > 1024 ? t->capacity * 2 : 1024;
    ct_node *p = realloc(t->nodes, (size_t)cap * sizeof(ct_node));
    if (!p) { fprintf(stderr, "ctape: out of memory\n"); abort(); }
    t->nodes = p;
    t->capacity = cap;
}

static inline double sigmoid(double x) {
    if (x >= 0) return 1 / (1 + exp(-x));
    double e = exp(x);
    return e / (1 + e);
}

// Appends a node and computes its forward value (the op is a constant at every call site, so this folds).
static inline int32_t push(ct_tape *t, uint8_t op, int32_t a, int32_t b, double v) {
    if (t->count == t->capacity) grow(t);
    ct_node *n = t->nodes;
    double x = a >= 0 ? n[a].data : 0, y = b >= 0 ? n[b].data : 0, out;
    switch (op) {
    case LEAF: out = v; break;
    case ADD: out = x + y; break;
    case SUB: out = x - y; break;
    case MUL: out = x * y; break;
    case DIV: out = x / y; break;
    case NEG: out = -x; break;
    case POWC: out = pow(x, v); break;
    case POW: out = pow(x, y); break;
    case EXP: out = exp(x); break;
    case LOG: out = log(x); break;
    case TANH: out = tanh(x); break;
    case RELU: out = x < 0 ? 0 : x; break;
    default: out = sigmoid(x); break;
    }
    int32_t i = (int32_t)t->count++;
    n[i].data = out;
    n[i].grad = 0;
    n[i].a = a;
    n[i].b = b;
    n[i].op = op;
    return i;
}

static inline int32_t leaf(ct_tape *t, double v) { return push(t, LEAF, -1, -1, v); }
static inline int32_t add(ct_tape *t, int32_t a, int32_t b) { return push(t, ADD, a, b, 0); }
static inline int32_t mul(ct_tape *t, int32_t a, int32_t b) { return push(t, MUL, a, b, 0); }

void ct_backward(ct_tape *t, int32_t output) {
    ct_node *n = t->nodes;
    n[output].grad = 1;
    for (int64_t i = output; i >= 0; i--) {
        ct_node nd = n[i];
        double g = nd.grad;
        int32_t a = nd.a, b = nd.b;
        switch (nd.op) {
        case LEAF: break;
        case ADD: n[a].grad += g; n[b].grad += g; break;
        case SUB: n[a].grad += g; n[b].grad -= g; break;
        case MUL: n[a].grad += n[b].data * g; n[b].grad += n[a].data * g; break;
        case DIV: n[a].grad += g / n[b].data; n[b].grad -= nd.data / n[b].data * g; break;
        case NEG: n[a].grad -= g; break;
        case POWC: break;  // not used by the workloads (the exponent would need a side table)
        case POW: {
            double x = n[a].data, y = n[b].data;
            n[a].grad += (y == 0 ? 0 : y * pow(x, y - 1)) * g;
            n[b].grad += (x == 0 && y >= 0 ? 0 : nd.data * log(x)) * g;
            break;
        }
        case EXP: n[a].grad += nd.data * g; break;
        case LOG: n[a].grad += g / n[a].data; break;
        case TANH: n[a].grad += (1 - nd.data * nd.data) * g; break;
        case RELU: n[a].grad += (nd.data > 0 ? g : 0); break;
        default: n[a].grad += nd.data * (1 - nd.data) * g; break;
        }
    }
}

int32_t ct_w1(ct_tape *t, int32_t steps) {
    int32_t x = leaf(t, 0.5);
    for (int32_t i = 0; i < steps; i++) {
        int32_t w = leaf(t, 1 + 0.01 * sin((double)i));
        int32_t b = leaf(t, 0.001 * cos((double)i));
        int32_t m = mul(t, x, w);
        x = push(t, TANH, add(t, m, b), -1, 0);
    }
    return x;
}

int32_t ct_w3(ct_tape *t, int32_t n) {
    // Separate statements: C leaves argument evaluation order unspecified, and the node order must match Swift's.
    int32_t a0 = leaf(t, 0.0), b0 = leaf(t, 1.0);
    int32_t acc = mul(t, a0, b0);
    for (int32_t i = 1; i < n; i++) {
        double fi = (double)i;
        int32_t a = leaf(t, fi * 1e-6);
        int32_t b = leaf(t, 1 - fi * 1e-7);
        acc = add(t, acc, mul(t, a, b));
    }
    return acc;
}

// SplitMix64, as in the Swift engine's nn.
static uint64_t splitmix(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static double uniform(uint64_t *s, double lo, double hi) {
    return lo + (hi - lo) * ((double)(splitmix(s) >> 11) * 0x1p-53);
}

enum { IN = 2, H = 16, LAYERS = 3 };
static const int sizes[LAYERS + 1] = {IN, H, H, 1};

int32_t ct_w2(ct_tape *t, const double *xs, const double *ys, int32_t n, uint64_t seed, int32_t *first_param) {
    // Parameters, neuron by neuron: nin weights then the bias (micrograd's Neuron.__init__ order).
    int32_t w[LAYERS][H][H], bias[LAYERS][H];
    int32_t params[IN * H + H + H * H + H + H + 1], np = 0;
    uint64_t rng = seed;
    for (int l = 0; l < LAYERS; l++)
        for (int j = 0; j < sizes[l + 1]; j++) {
            for (int k = 0; k < sizes[l]; k++) params[np++] = w[l][j][k] = leaf(t, uniform(&rng, -1, 1));
            params[np++] = bias[l][j] = leaf(t, 0);
        }
    *first_param = params[0];
    int32_t losses_sum = leaf(t, 0);
    for (int32_t s = 0; s < n; s++) {
        int32_t act[H], next[H];
        act[0] = leaf(t, xs[2 * s]);
        act[1] = leaf(t, xs[2 * s + 1]);  // separate statements: node order must match Swift's
        for (int l = 0; l < LAYERS; l++) {
            for (int j = 0; j < sizes[l + 1]; j++) {
                int32_t a = bias[l][j];
                for (int k = 0; k < sizes[l]; k++) {
                    int32_t p = mul(t, w[l][j][k], act[k]);
                    a = add(t, a, p);
                }
                next[j] = l != LAYERS - 1 ? push(t, RELU, a, -1, 0) : a;
            }
            for (int j = 0; j < sizes[l + 1]; j++) act[j] = next[j];
        }
        // (1 + -y * score).relu()
        int32_t minus_y = leaf(t, -ys[s]);
        int32_t m = mul(t, minus_y, act[0]);
        int32_t one = leaf(t, 1);
        int32_t margin = add(t, one, m);
        losses_sum = add(t, losses_sum, push(t, RELU, margin, -1, 0));
    }
    int32_t scale = leaf(t, 1.0 / n);
    int32_t data_loss = mul(t, losses_sum, scale);
    int32_t reg = leaf(t, 0);
    for (int i = 0; i < np; i++) {
        int32_t sq = mul(t, params[i], params[i]);
        reg = add(t, reg, sq);
    }
    int32_t alpha = leaf(t, 1e-4);
    int32_t reg_loss = mul(t, alpha, reg);
    return add(t, data_loss, reg_loss);
}
