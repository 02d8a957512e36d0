// Edge detection: the magnitude of the Sobel gradient of a grey image, edges clamped.
struct Shape { width: u32, height: u32, radius: u32, unused: u32 }

@group(0) @binding(0) var<storage, read> input: array<f32>;
@group(0) @binding(1) var<storage, read_write> output: array<f32>;
@group(0) @binding(2) var<storage, read> shape: Shape;

fn pixel(x: i32, y: i32) -> f32 {
    let cx = u32(clamp(x, 0, i32(shape.width) - 1));
    let cy = u32(clamp(y, 0, i32(shape.height) - 1));
    return input[cy * shape.width + cx];
}

@compute @workgroup_size(16, 16)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
    if id.x >= shape.width || id.y >= shape.height {
        return;
    }
    let x = i32(id.x);
    let y = i32(id.y);
    let gx = (pixel(x + 1, y - 1) + 2.0 * pixel(x + 1, y) + pixel(x + 1, y + 1))
           - (pixel(x - 1, y - 1) + 2.0 * pixel(x - 1, y) + pixel(x - 1, y + 1));
    let gy = (pixel(x - 1, y + 1) + 2.0 * pixel(x, y + 1) + pixel(x + 1, y + 1))
           - (pixel(x - 1, y - 1) + 2.0 * pixel(x, y - 1) + pixel(x + 1, y - 1));
    output[id.y * shape.width + id.x] = sqrt(gx * gx + gy * gy);
}
