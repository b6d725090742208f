#version 450
// Out-of-range buffer accesses for venus-compute's `robust` part (robust buffer access on the
// host, docs/robustness.md). Invocation i < n:
// - reads x[i] (in range) and writes r[4i] = x[i] * 2 + 1;
// - writes w[i + far_a] and w[i + far_b], both far beyond w's 4 KiB range, then reads them back
//   into r[4i + 1] and r[4i + 2];
// - writes w's length (elements in the descriptor's range) into r[4i + 3].
layout(local_size_x = 64) in;
layout(set = 0, binding = 0) readonly buffer X { float x[]; };
layout(set = 0, binding = 1) buffer W { float w[]; };
layout(set = 0, binding = 2) writeonly buffer R { float r[]; };
layout(push_constant) uniform P { uint n; uint far_a; uint far_b; } p;

void main() {
    uint i = gl_GlobalInvocationID.x;
    if (i >= p.n) {
        return;
    }
    w[i + p.far_a] = -7.0;
    w[i + p.far_b] = -9.0;
    r[4 * i] = x[i] * 2.0 + 1.0;
    r[4 * i + 1] = w[i + p.far_a];
    r[4 * i + 2] = w[i + p.far_b];
    r[4 * i + 3] = float(w.length());
}
