#version 450
// Pass 2 of the multi-level scan: once `sums` holds the inclusive scan of the block totals,
// block g (> 0) of `data` gets sums[g - 1] added to each of its 1024 elements.
layout(local_size_x = 256) in;
layout(set = 0, binding = 0) buffer Data { uint data[]; };
layout(set = 0, binding = 1) buffer Sums { uint sums[]; };
layout(push_constant) uniform P { uint n; } p;

void main() {
    uint g = gl_WorkGroupID.x;
    if (g == 0u) {
        return;
    }
    uint add = sums[g - 1u];
    uint base = g * 1024u + gl_LocalInvocationID.x * 4u;
    for (uint k = 0u; k < 4u; k++) {
        uint i = base + k;
        if (i < p.n) {
            data[i] += add;
        }
    }
}
