// Sum reduction, first level: each workgroup adds a strided share of the input in
// registers, then halves its 256 partial sums in workgroup memory, one barrier per step.
@group(0) @binding(0) var<storage, read> input: array<f32>;
@group(0) @binding(1) var<storage, read_write> partial: array<f32>;

var<workgroup> scratch: array<f32, 256>;

@compute @workgroup_size(256)
fn main(
    @builtin(local_invocation_index) local: u32,
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
) {
    let n = arrayLength(&input);
    // Consecutive invocations read consecutive elements: coalesced loads.
    var sum = 0.0;
    for (var i = group.x * 256u + local; i < n; i += groups.x * 256u) {
        sum += input[i];
    }
    scratch[local] = sum;
    workgroupBarrier();
    for (var half = 128u; half > 0u; half >>= 1u) {
        if local < half {
            scratch[local] += scratch[local + half];
        }
        workgroupBarrier();
    }
    if local == 0u {
        partial[group.x] = scratch[0];
    }
}
