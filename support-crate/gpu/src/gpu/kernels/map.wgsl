// Element-wise map: output[i] = f(input[i]), f given by the caller's WGSL expression of `x`.
@group(0) @binding(0) var<storage, read> input: array<f32>;
@group(0) @binding(1) var<storage, read_write> output: array<f32>;

fn f(x: f32) -> f32 {
    return {{EXPRESSION}};
}

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    // Dispatches of more than 65 535 workgroups are spread over y (Workgroups::cover).
    let i = id.x + id.y * groups.x * 256u;
    if i < arrayLength(&input) {
        output[i] = f(input[i]);
    }
}
