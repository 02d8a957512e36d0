// Brute force of a MD5 hash, one candidate per invocation: invocation (x, y) hashes the block of
// unit y (the candidate's characters after its first few, those left zero) with table[x] (its
// first characters) added to word 0, as the CPU cracker builds its candidates. Each candidate
// gets all 64 steps of MD5 and its whole digest compared: none of the CPU cracker's shortcuts.
// The steps are written out, not looped, so that every word stays in a register.
struct Search {
    digest: array<u32, 4>,
    table_len: u32,
    units: u32,      // units in this batch
    unused: vec2<u32>,
}

@group(0) @binding(0) var<storage, read> search: Search;
@group(0) @binding(1) var<storage, read> table: array<u32>;  // first characters, as word 0 parts
@group(0) @binding(2) var<storage, read> units: array<vec4<u32>>;  // 16 words per unit
@group(0) @binding(3) var<storage, read_write> found: atomic<u32>;

fn rotl(x: u32, n: u32) -> u32 { return (x << n) | (x >> (32u - n)); }

fn ff(a: u32, b: u32, c: u32, d: u32, m: u32, s: u32, k: u32) -> u32 { return b + rotl(a + ((b & c) | (~b & d)) + m + k, s); }
fn gg(a: u32, b: u32, c: u32, d: u32, m: u32, s: u32, k: u32) -> u32 { return b + rotl(a + ((d & b) | (~d & c)) + m + k, s); }
fn hh(a: u32, b: u32, c: u32, d: u32, m: u32, s: u32, k: u32) -> u32 { return b + rotl(a + (b ^ c ^ d) + m + k, s); }
fn ii(a: u32, b: u32, c: u32, d: u32, m: u32, s: u32, k: u32) -> u32 { return b + rotl(a + (c ^ (b | ~d)) + m + k, s); }

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let x = gid.x;
    let unit = gid.y;
    if x >= search.table_len || unit >= search.units { return; }
    // Four words per load: on lavapipe, a fifth faster than sixteen loads.
    let u = unit * 4u;
    let q0 = units[u];
    let q1 = units[u + 1u];
    let q2 = units[u + 2u];
    let q3 = units[u + 3u];
    let m0 = q0.x + table[x];
    let m1 = q0.y;
    let m2 = q0.z;
    let m3 = q0.w;
    let m4 = q1.x;
    let m5 = q1.y;
    let m6 = q1.z;
    let m7 = q1.w;
    let m8 = q2.x;
    let m9 = q2.y;
    let m10 = q2.z;
    let m11 = q2.w;
    let m12 = q3.x;
    let m13 = q3.y;
    let m14 = q3.z;
    let m15 = q3.w;
    var a = 0x67452301u;
    var b = 0xefcdab89u;
    var c = 0x98badcfeu;
    var d = 0x10325476u;
    a = ff(a, b, c, d, m0, 7u, 0xd76aa478u);
    d = ff(d, a, b, c, m1, 12u, 0xe8c7b756u);
    c = ff(c, d, a, b, m2, 17u, 0x242070dbu);
    b = ff(b, c, d, a, m3, 22u, 0xc1bdceeeu);
    a = ff(a, b, c, d, m4, 7u, 0xf57c0fafu);
    d = ff(d, a, b, c, m5, 12u, 0x4787c62au);
    c = ff(c, d, a, b, m6, 17u, 0xa8304613u);
    b = ff(b, c, d, a, m7, 22u, 0xfd469501u);
    a = ff(a, b, c, d, m8, 7u, 0x698098d8u);
    d = ff(d, a, b, c, m9, 12u, 0x8b44f7afu);
    c = ff(c, d, a, b, m10, 17u, 0xffff5bb1u);
    b = ff(b, c, d, a, m11, 22u, 0x895cd7beu);
    a = ff(a, b, c, d, m12, 7u, 0x6b901122u);
    d = ff(d, a, b, c, m13, 12u, 0xfd987193u);
    c = ff(c, d, a, b, m14, 17u, 0xa679438eu);
    b = ff(b, c, d, a, m15, 22u, 0x49b40821u);
    a = gg(a, b, c, d, m1, 5u, 0xf61e2562u);
    d = gg(d, a, b, c, m6, 9u, 0xc040b340u);
    c = gg(c, d, a, b, m11, 14u, 0x265e5a51u);
    b = gg(b, c, d, a, m0, 20u, 0xe9b6c7aau);
    a = gg(a, b, c, d, m5, 5u, 0xd62f105du);
    d = gg(d, a, b, c, m10, 9u, 0x02441453u);
    c = gg(c, d, a, b, m15, 14u, 0xd8a1e681u);
    b = gg(b, c, d, a, m4, 20u, 0xe7d3fbc8u);
    a = gg(a, b, c, d, m9, 5u, 0x21e1cde6u);
    d = gg(d, a, b, c, m14, 9u, 0xc33707d6u);
    c = gg(c, d, a, b, m3, 14u, 0xf4d50d87u);
    b = gg(b, c, d, a, m8, 20u, 0x455a14edu);
    a = gg(a, b, c, d, m13, 5u, 0xa9e3e905u);
    d = gg(d, a, b, c, m2, 9u, 0xfcefa3f8u);
    c = gg(c, d, a, b, m7, 14u, 0x676f02d9u);
    b = gg(b, c, d, a, m12, 20u, 0x8d2a4c8au);
    a = hh(a, b, c, d, m5, 4u, 0xfffa3942u);
    d = hh(d, a, b, c, m8, 11u, 0x8771f681u);
    c = hh(c, d, a, b, m11, 16u, 0x6d9d6122u);
    b = hh(b, c, d, a, m14, 23u, 0xfde5380cu);
    a = hh(a, b, c, d, m1, 4u, 0xa4beea44u);
    d = hh(d, a, b, c, m4, 11u, 0x4bdecfa9u);
    c = hh(c, d, a, b, m7, 16u, 0xf6bb4b60u);
    b = hh(b, c, d, a, m10, 23u, 0xbebfbc70u);
    a = hh(a, b, c, d, m13, 4u, 0x289b7ec6u);
    d = hh(d, a, b, c, m0, 11u, 0xeaa127fau);
    c = hh(c, d, a, b, m3, 16u, 0xd4ef3085u);
    b = hh(b, c, d, a, m6, 23u, 0x04881d05u);
    a = hh(a, b, c, d, m9, 4u, 0xd9d4d039u);
    d = hh(d, a, b, c, m12, 11u, 0xe6db99e5u);
    c = hh(c, d, a, b, m15, 16u, 0x1fa27cf8u);
    b = hh(b, c, d, a, m2, 23u, 0xc4ac5665u);
    a = ii(a, b, c, d, m0, 6u, 0xf4292244u);
    d = ii(d, a, b, c, m7, 10u, 0x432aff97u);
    c = ii(c, d, a, b, m14, 15u, 0xab9423a7u);
    b = ii(b, c, d, a, m5, 21u, 0xfc93a039u);
    a = ii(a, b, c, d, m12, 6u, 0x655b59c3u);
    d = ii(d, a, b, c, m3, 10u, 0x8f0ccc92u);
    c = ii(c, d, a, b, m10, 15u, 0xffeff47du);
    b = ii(b, c, d, a, m1, 21u, 0x85845dd1u);
    a = ii(a, b, c, d, m8, 6u, 0x6fa87e4fu);
    d = ii(d, a, b, c, m15, 10u, 0xfe2ce6e0u);
    c = ii(c, d, a, b, m6, 15u, 0xa3014314u);
    b = ii(b, c, d, a, m13, 21u, 0x4e0811a1u);
    a = ii(a, b, c, d, m4, 6u, 0xf7537e82u);
    d = ii(d, a, b, c, m11, 10u, 0xbd3af235u);
    c = ii(c, d, a, b, m2, 15u, 0x2ad7d2bbu);
    b = ii(b, c, d, a, m9, 21u, 0xeb86d391u);
    let hash = vec4<u32>(a + 0x67452301u, b + 0xefcdab89u, c + 0x98badcfeu, d + 0x10325476u);
    if all(hash == vec4<u32>(search.digest[0], search.digest[1], search.digest[2], search.digest[3])) {
        atomicMin(&found, unit * search.table_len + x);
    }
}
