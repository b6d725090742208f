#version 450
// Consumes an uploaded buffer: each workgroup sums (u32, wrapping) a grid-stride share of
// the n4 uvec4 of `d` and adds its total to `total` atomically.
layout(local_size_x = 256) in;
layout(set = 0, binding = 0) readonly buffer D { uvec4 d[]; };
layout(set = 0, binding = 1) buffer O { uint total; };
layout(push_constant) uniform P { uint n4; } p;
shared uint part[256];

void main() {
    uint stride = gl_NumWorkGroups.x * 256u;
    uint acc = 0u;
    for (uint i = gl_GlobalInvocationID.x; i < p.n4; i += stride) {
        uvec4 v = d[i];
        acc += v.x + v.y + v.z + v.w;
    }
    uint l = gl_LocalInvocationID.x;
    part[l] = acc;
    barrier();
    for (uint s = 128u; s > 0u; s >>= 1) {
        if (l < s) {
            part[l] += part[l + s];
        }
        barrier();
    }
    if (l == 0u) {
        atomicAdd(total, part[0]);
    }
}
