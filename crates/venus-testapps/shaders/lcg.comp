#version 450
// Compute-bound: each invocation runs `iters` steps of four independent u32 LCG chains
// (x = x * 1664525 + 1013904223, wrapping) seeded from its index and writes their xor;
// the host checks every output exactly through the closed form of the iterated map.
layout(local_size_x = 256) in;
layout(set = 0, binding = 0) writeonly buffer O { uint o[]; };
layout(push_constant) uniform P { uint n; uint iters; } p;

void main() {
    uint i = gl_GlobalInvocationID.x;
    if (i >= p.n) {
        return;
    }
    uvec4 x = uvec4(i, i ^ 0x9e3779b9u, i * 3u + 1u, ~i);
    for (uint k = 0u; k < p.iters; k++) {
        x = x * 1664525u + 1013904223u;
    }
    o[i] = x.x ^ x.y ^ x.z ^ x.w;
}
