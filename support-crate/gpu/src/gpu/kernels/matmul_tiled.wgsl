// C = A B by 16 x 16 tiles: a workgroup copies one tile of A and one of B into workgroup
// memory, then each of its 256 invocations reads them 16 times: 16x fewer global reads.
struct Dims { m: u32, k: u32, n: u32, unused: u32 }

@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read_write> c: array<f32>;
@group(0) @binding(3) var<storage, read> dims: Dims;

const TILE: u32 = 16u;
var<workgroup> tile_a: array<array<f32, 16>, 16>;
var<workgroup> tile_b: array<array<f32, 16>, 16>;

@compute @workgroup_size(16, 16)
fn main(@builtin(global_invocation_id) id: vec3<u32>, @builtin(local_invocation_id) local: vec3<u32>) {
    let row = id.y;
    let col = id.x;
    var sum = 0.0;
    for (var k0 = 0u; k0 < dims.k; k0 += TILE) {
        // Out-of-range elements load as zero, so edges need no special case below.
        var a_value = 0.0;
        if row < dims.m && k0 + local.x < dims.k {
            a_value = a[row * dims.k + k0 + local.x];
        }
        tile_a[local.y][local.x] = a_value;
        var b_value = 0.0;
        if k0 + local.y < dims.k && col < dims.n {
            b_value = b[(k0 + local.y) * dims.n + col];
        }
        tile_b[local.y][local.x] = b_value;
        workgroupBarrier();
        for (var i = 0u; i < TILE; i++) {
            sum = fma(tile_a[local.y][i], tile_b[i][local.x], sum);
        }
        // Nobody overwrites the tiles before everyone has used them.
        workgroupBarrier();
    }
    if row < dims.m && col < dims.n {
        c[row * dims.n + col] = sum;
    }
}
