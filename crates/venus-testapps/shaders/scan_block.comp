#version 450
// Pass 1 of the multi-level scan: each workgroup scans (inclusive, u32 wrapping) its block of
// 1024 elements of `data` in place (4 per invocation, then a Hillis-Steele scan of the 256
// per-invocation totals in shared memory) and writes the block's total to sums[block].
layout(local_size_x = 256) in;
layout(set = 0, binding = 0) buffer Data { uint data[]; };
layout(set = 0, binding = 1) buffer Sums { uint sums[]; };
layout(push_constant) uniform P { uint n; } p;

shared uint partial[256];

void main() {
    uint lid = gl_LocalInvocationID.x;
    uint base = gl_WorkGroupID.x * 1024u + lid * 4u;
    uint v[4];
    uint acc = 0u;
    for (uint k = 0u; k < 4u; k++) {
        uint i = base + k;
        acc += i < p.n ? data[i] : 0u;
        v[k] = acc;
    }
    partial[lid] = acc;
    memoryBarrierShared();
    barrier();
    for (uint off = 1u; off < 256u; off <<= 1) {
        uint t = lid >= off ? partial[lid - off] : 0u;
        memoryBarrierShared();
        barrier();
        partial[lid] += t;
        memoryBarrierShared();
        barrier();
    }
    uint prefix = lid > 0u ? partial[lid - 1u] : 0u;
    for (uint k = 0u; k < 4u; k++) {
        uint i = base + k;
        if (i < p.n) {
            data[i] = v[k] + prefix;
        }
    }
    if (lid == 255u) {
        sums[gl_WorkGroupID.x] = partial[255];
    }
}
