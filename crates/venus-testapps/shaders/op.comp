#version 450
// d[offset + i] = d[offset + i] * mul + add (u32, wrapping) for i < n: one step of the
// dependent chains in venus-sync.
layout(local_size_x = 64) in;
layout(set = 0, binding = 0) buffer D { uint d[]; };
layout(push_constant) uniform P { uint offset; uint n; uint mul; uint add; } p;

void main() {
    uint i = gl_GlobalInvocationID.x;
    if (i < p.n) {
        d[p.offset + i] = d[p.offset + i] * p.mul + p.add;
    }
}
