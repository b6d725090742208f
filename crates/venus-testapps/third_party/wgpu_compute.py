"""wgpu_compute: two WebGPU compute kernels through wgpu-native's Vulkan backend, results
checked exactly against the same computation in Python.

Kernels (WGSL):
  - collatz: steps[i] = number of Collatz steps from i + 1 down to 1, for i < N;
  - scan: inclusive prefix sum of each 256-element block (workgroup shared memory and
    barriers), input x[i] = (i * 7 + 3) % 101.

The adapter is the first Vulkan one (wgpu also offers GL; we want Vulkan, so that the
Vulkan loader's driver, VK_DRIVER_FILES, is what runs). Output lines (stdout):
  adapter: <summary> | vendor=<vendor> | description=<description>
  collatz OK n=<N> sum=<sum of steps> max=<max steps>
  scan OK n=<N> last=<last block's total>
  wgpu-compute OK
Exit status 0 only when both kernels matched; a mismatch prints the first wrong index.

Run: <venv>/bin/python wgpu_compute.py [N]   (N a multiple of 256, default 65536)
"""

import array
import sys

import wgpu

COLLATZ = """
@group(0) @binding(0) var<storage, read_write> steps: array<u32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
    let i = id.x;
    if (i >= arrayLength(&steps)) { return; }
    var n = i + 1u;
    var count = 0u;
    loop {
        if (n <= 1u) { break; }
        if (n % 2u == 0u) { n = n / 2u; } else { n = 3u * n + 1u; }
        count = count + 1u;
    }
    steps[i] = count;
}
"""

SCAN = """
@group(0) @binding(0) var<storage, read_write> data: array<u32>;
var<workgroup> tile: array<u32, 256>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    tile[lid] = data[gid.x];
    workgroupBarrier();
    var offset = 1u;
    while (offset < 256u) {
        var add = 0u;
        if (lid >= offset) { add = tile[lid - offset]; }
        workgroupBarrier();
        tile[lid] = tile[lid] + add;
        workgroupBarrier();
        offset = offset * 2u;
    }
    data[gid.x] = tile[lid];
}
"""


def vulkan_adapter():
    adapters = wgpu.gpu.enumerate_adapters_sync()
    for adapter in adapters:
        if adapter.info["backend_type"] == "Vulkan":
            return adapter
    found = [a.summary for a in adapters]
    sys.exit(f"wgpu_compute: no Vulkan adapter (found: {found})")


def run_kernel(device, source, words, groups):
    """Runs `source` (one read_write storage buffer at binding 0, initialised from `words`)
    with `groups` workgroups and returns the buffer's words."""
    data = array.array("I", words)
    usage = wgpu.BufferUsage.STORAGE | wgpu.BufferUsage.COPY_SRC | wgpu.BufferUsage.COPY_DST
    buffer = device.create_buffer_with_data(data=data, usage=usage)
    module = device.create_shader_module(code=source)
    pipeline = device.create_compute_pipeline(
        layout="auto", compute={"module": module, "entry_point": "main"}
    )
    bind_group = device.create_bind_group(
        layout=pipeline.get_bind_group_layout(0),
        entries=[{"binding": 0, "resource": {"buffer": buffer}}],
    )
    encoder = device.create_command_encoder()
    compute_pass = encoder.begin_compute_pass()
    compute_pass.set_pipeline(pipeline)
    compute_pass.set_bind_group(0, bind_group)
    compute_pass.dispatch_workgroups(groups, 1, 1)
    compute_pass.end()
    device.queue.submit([encoder.finish()])
    return list(device.queue.read_buffer(buffer).cast("I"))


def collatz_steps(n):
    count = 0
    while n > 1:
        n = n // 2 if n % 2 == 0 else 3 * n + 1
        count += 1
    return count


def first_mismatch(got, want):
    for i, (g, w) in enumerate(zip(got, want)):
        if g != w:
            return f"index {i}: got {g}, want {w}"
    if len(got) != len(want):
        return f"length {len(got)}, want {len(want)}"
    return None


def check(name, got, want):
    wrong = first_mismatch(got, want)
    if wrong:
        sys.exit(f"wgpu_compute: {name} mismatch at {wrong}")


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 65536
    if n <= 0 or n % 256:
        sys.exit("wgpu_compute: N must be a positive multiple of 256")
    adapter = vulkan_adapter()
    info = adapter.info
    print(f"adapter: {adapter.summary} | vendor={info['vendor']} | description={info['description']}")
    device = adapter.request_device_sync()

    steps = run_kernel(device, COLLATZ, [0] * n, (n + 63) // 64)
    check("collatz", steps, [collatz_steps(i + 1) for i in range(n)])
    print(f"collatz OK n={n} sum={sum(steps)} max={max(steps)}")

    xs = [(i * 7 + 3) % 101 for i in range(n)]
    scanned = run_kernel(device, SCAN, xs, n // 256)
    want = []
    for block in range(0, n, 256):
        total = 0
        for x in xs[block : block + 256]:
            total += x
            want.append(total)
    check("scan", scanned, want)
    print(f"scan OK n={n} last={scanned[-1]}")
    print("wgpu-compute OK", flush=True)


if __name__ == "__main__":
    main()
