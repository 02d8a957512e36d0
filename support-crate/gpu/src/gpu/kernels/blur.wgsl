// 2D convolution of a grey image with a (2r+1) x (2r+1) kernel of weights, edges clamped.
struct Shape { width: u32, height: u32, radius: u32, unused: u32 }

@group(0) @binding(0) var<storage, read> input: array<f32>;
@group(0) @binding(1) var<storage, read_write> output: array<f32>;
@group(0) @binding(2) var<storage, read> weights: array<f32>;
@group(0) @binding(3) var<storage, read> shape: Shape;

@compute @workgroup_size(16, 16)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
    if id.x >= shape.width || id.y >= shape.height {
        return;
    }
    let r = i32(shape.radius);
    let last = vec2<i32>(i32(shape.width) - 1, i32(shape.height) - 1);
    var sum = 0.0;
    var w = 0u;
    for (var dy = -r; dy <= r; dy++) {
        for (var dx = -r; dx <= r; dx++) {
            let p = clamp(vec2<i32>(i32(id.x) + dx, i32(id.y) + dy), vec2<i32>(0), last);
            sum += weights[w] * input[u32(p.y) * shape.width + u32(p.x)];
            w++;
        }
    }
    output[id.y * shape.width + id.x] = sum;
}
