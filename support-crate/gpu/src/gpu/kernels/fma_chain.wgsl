// A chain of `rounds` multiply-adds per element: 2 * rounds FLOP for 8 bytes moved,
// the knob that sets the arithmetic intensity in the crossover lesson.
@group(0) @binding(0) var<storage, read> input: array<f32>;
@group(0) @binding(1) var<storage, read_write> output: array<f32>;
@group(0) @binding(2) var<storage, read> rounds: u32;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = id.x + id.y * groups.x * 256u;
    if i < arrayLength(&input) {
        var x = input[i];
        for (var r = 0u; r < rounds; r++) {
            x = fma(x, 0.999, 0.001);
        }
        output[i] = x;
    }
}
