#!/bin/sh
# Regenerates the committed SPIR-V (*.spv) from the GLSL sources in this directory.
# Needs glslangValidator (Debian: glslang-tools) and spirv-val (spirv-tools); the tests and
# programs only use the committed .spv files (include_bytes!).
set -eu
cd "$(dirname "$0")"
for src in *.comp *.vert *.frag; do
    glslangValidator -V --target-env vulkan1.0 -o "$src.spv" "$src"
    spirv-val --target-env vulkan1.0 "$src.spv"
done
