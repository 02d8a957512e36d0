// Brute force of a MD5 hash over a keyspace: invocation `id` tries the candidate whose
// digits (in base `charset_len`, first character fastest) are the batch's first digits plus id.
// Each invocation hashes one candidate: 64 steps of MD5. The steps are written out, not looped, so
// that every word stays in a register.
struct Search {
    digest: array<u32, 4>,
    charset_len: u32,
    length: u32,
    count: u32,      // candidates in this batch
    unused: u32,
    first: array<u32, 64>, // digits of the batch's first candidate
    charset: array<u32, 256>,
}

@group(0) @binding(0) var<storage, read> search: Search;
@group(0) @binding(1) var<storage, read_write> found: atomic<u32>;

fn rotl(x: u32, n: u32) -> u32 { return (x << n) | (x >> (32u - n)); }
fn rotr(x: u32, n: u32) -> u32 { return (x >> n) | (x << (32u - n)); }

// The message block of candidate `id`: its characters, a 0x80 byte, zeros, the bit length.
fn block(id: u32) -> array<u32, 16> {
    var m: array<u32, 16>;
    var carry = id;
    for (var i = 0u; i < search.length; i++) {
        let digit = search.first[i] + carry;
        carry = digit / search.charset_len;
        let byte = search.charset[digit % search.charset_len];
        m[i / 4u] |= byte << (8u * (i % 4u));
    }
    m[search.length / 4u] |= 0x80u << (8u * (search.length % 4u));
    m[14] = search.length * 8u;
    return m;
}

fn ff(a: u32, b: u32, c: u32, d: u32, m: u32, s: u32, k: u32) -> u32 { return b + rotl(a + ((b & c) | (~b & d)) + m + k, s); }
fn gg(a: u32, b: u32, c: u32, d: u32, m: u32, s: u32, k: u32) -> u32 { return b + rotl(a + ((d & b) | (~d & c)) + m + k, s); }
fn hh(a: u32, b: u32, c: u32, d: u32, m: u32, s: u32, k: u32) -> u32 { return b + rotl(a + (b ^ c ^ d) + m + k, s); }
fn ii(a: u32, b: u32, c: u32, d: u32, m: u32, s: u32, k: u32) -> u32 { return b + rotl(a + (c ^ (b | ~d)) + m + k, s); }

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let id = gid.x + gid.y * groups.x * 256u;
    if id >= search.count { return; }
    let m = block(id);
    let m0 = m[0];
    let m1 = m[1];
    let m2 = m[2];
    let m3 = m[3];
    let m4 = m[4];
    let m5 = m[5];
    let m6 = m[6];
    let m7 = m[7];
    let m8 = m[8];
    let m9 = m[9];
    let m10 = m[10];
    let m11 = m[11];
    let m12 = m[12];
    let m13 = m[13];
    let m14 = m[14];
    let m15 = m[15];
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
        atomicMin(&found, id);
    }
}
