// C = A B by 64 x 64 tiles, each invocation computing 4 x 4 elements of C from registers:
// every value loaded from workgroup memory now feeds 4 multiply-adds instead of 1.
struct Dims { m: u32, k: u32, n: u32, unused: u32 }

@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read_write> c: array<f32>;
@group(0) @binding(3) var<storage, read> dims: Dims;

const TILE: u32 = 64u;  // rows and columns of C per workgroup
const DEPTH: u32 = 16u; // slice of k held in workgroup memory at a time
var<workgroup> slice_a: array<f32, 1024>; // TILE rows x DEPTH
var<workgroup> slice_b: array<f32, 1024>; // DEPTH x TILE columns

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) group: vec3<u32>, @builtin(local_invocation_id) local: vec3<u32>) {
    let row0 = group.y * TILE;
    let col0 = group.x * TILE;
    let thread = local.y * 16u + local.x;
    var sum: array<f32, 16>;
    for (var k0 = 0u; k0 < dims.k; k0 += DEPTH) {
        for (var l = 0u; l < 4u; l++) {
            let e = thread + l * 256u;
            let ar = row0 + e / DEPTH;
            let ak = k0 + e % DEPTH;
            var a_value = 0.0;
            if ar < dims.m && ak < dims.k {
                a_value = a[ar * dims.k + ak];
            }
            slice_a[e] = a_value;
            let bk = k0 + e / TILE;
            let bc = col0 + e % TILE;
            var b_value = 0.0;
            if bk < dims.k && bc < dims.n {
                b_value = b[bk * dims.n + bc];
            }
            slice_b[e] = b_value;
        }
        workgroupBarrier();
        for (var kk = 0u; kk < DEPTH; kk++) {
            // Rows local.y + 16 i and columns local.x + 16 j: neighbours read neighbours.
            var a_row: array<f32, 4>;
            var b_col: array<f32, 4>;
            for (var i = 0u; i < 4u; i++) {
                a_row[i] = slice_a[(local.y + 16u * i) * DEPTH + kk];
                b_col[i] = slice_b[kk * TILE + local.x + 16u * i];
            }
            for (var i = 0u; i < 4u; i++) {
                for (var j = 0u; j < 4u; j++) {
                    sum[i * 4u + j] = fma(a_row[i], b_col[j], sum[i * 4u + j]);
                }
            }
        }
        workgroupBarrier();
    }
    for (var i = 0u; i < 4u; i++) {
        for (var j = 0u; j < 4u; j++) {
            let row = row0 + local.y + 16u * i;
            let col = col0 + local.x + 16u * j;
            if row < dims.m && col < dims.n {
                c[row * dims.n + col] = sum[i * 4u + j];
            }
        }
    }
}
