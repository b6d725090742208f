#version 450
// Passes the position through (already in clip space, z is the depth) with the texture
// coordinate and a per-vertex tint.
layout(location = 0) in vec3 pos;
layout(location = 1) in vec2 uv;
layout(location = 2) in vec4 tint;
layout(location = 0) out vec2 v_uv;
layout(location = 1) out vec4 v_tint;

void main() {
    gl_Position = vec4(pos, 1.0);
    v_uv = uv;
    v_tint = tint;
}
