//! SHA-256 (FIPS 180-4) on [`Lanes`], and the search kernel that tests a table of candidates.

use super::Work;
use super::lanes::{Lanes, splat_each};

/// The state before the first block.
pub(super) const IV: [u32; 8] = [
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
];

/// One constant per round: the cube roots of the first 64 primes, fractional parts.
const K: [u32; 64] = [
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
];

#[inline(always)]
fn big_sigma0<L: Lanes>(a: L) -> L {
    a.rotl(30).xor(a.rotl(19)).xor(a.rotl(10))
}

#[inline(always)]
fn big_sigma1<L: Lanes>(e: L) -> L {
    e.rotl(26).xor(e.rotl(21)).xor(e.rotl(7))
}

#[inline(always)]
fn small_sigma0<L: Lanes>(w: L) -> L {
    w.rotl(25).xor(w.rotl(14)).xor(w.shr(3))
}

#[inline(always)]
fn small_sigma1<L: Lanes>(w: L) -> L {
    w.rotl(15).xor(w.rotl(13)).xor(w.shr(10))
}

/// `f` where `e` is set, `g` elsewhere.
#[inline(always)]
fn choose<L: Lanes>(e: L, f: L, g: L) -> L {
    g.xor(e.and(f.xor(g)))
}

/// Round `T`. The message schedule is kept as a ring of 16 words: from round 16 on, each
/// round first extends it by one word, in place of the word it no longer needs.
#[inline(always)]
fn round<L: Lanes, const T: usize>([a, b, c, d, e, f, g, h]: [L; 8], w: &mut [L; 16]) -> [L; 8] {
    if T >= 16 {
        // w[T - 2], w[T - 7], w[T - 15] and w[T - 16], modulo 16.
        w[T % 16] = small_sigma1(w[(T + 14) % 16])
            .add(w[(T + 9) % 16])
            .add(small_sigma0(w[(T + 1) % 16]))
            .add(w[T % 16]);
    }
    let t1 = h
        .add(big_sigma1(e))
        .add(choose(e, f, g))
        .add(L::splat(a.proof(), K[T]))
        .add(w[T % 16]);
    let t2 = big_sigma0(a).add(a.majority(b, c));
    [t1.add(t2), a, b, c, d.add(t1), e, f, g]
}

/// Runs the listed rounds on `$state` and the schedule `$w`. A macro, so that each round's
/// index is a constant and its schedule indices and constant are fixed at compile time.
macro_rules! rounds {
    ($state:ident, $w:ident; $($t:literal)*) => {
        $( $state = round::<_, $t>($state, &mut $w); )*
    };
}

/// The SHA-256 compression of one 64-byte block, as 16 big-endian words, from `state`.
#[inline(always)]
pub(super) fn compress<L: Lanes>(state: [L; 8], words: &[L; 16]) -> [L; 8] {
    let mut w = *words;
    let mut s = state;
    rounds!(s, w; 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15
                  16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31
                  32 33 34 35 36 37 38 39 40 41 42 43 44 45 46 47
                  48 49 50 51 52 53 54 55 56 57 58 59 60 61 62 63);
    std::array::from_fn(|i| state[i].add(s[i]))
}

/// The digest of a single-block message, from its 16 words.
pub(super) fn digest_words(words: &[u32; 16]) -> [u32; 8] {
    let lanes: [[u32; 1]; 16] = words.map(|w| [w]);
    compress(IV.map(|w| [w]), &lanes).map(|[w]| w)
}

/// The `a` that round 56 must compute for the block to hash to `digest`.
///
/// Why it exists: a round computes its new `a` and `e` from the same sum `T1`, the only
/// term that depends on the message. The digest holds the last four `a`s and the last four
/// `e`s (less the IV), so for each of the last four rounds `T1 = a − Σ0(b) − Maj(b, c, d)`
/// comes out of the digest alone, and then the `d` that round added to `T1` to make its
/// `e`: the `a`s of rounds 59 down to 56. So the scan stops after round 56 and compares
/// its `a`: 57 rounds and 41 schedule words per candidate instead of 64 and 48, and still an
/// exact test (a lane that matches is checked with the full hash). Algebra, not only SIMD,
/// makes crackers fast.
fn round_56_target(digest: [u32; 8]) -> u32 {
    let [a63, a62, a61, a60, e63, e62, e61, e60] =
        std::array::from_fn(|i| digest[i].wrapping_sub(IV[i]));
    // The `a` four rounds before the round that computed (a, e), from that round's b, c, d.
    let earlier = |a: u32, e: u32, b: u32, c: u32, d: u32| {
        let t1 = a
            .wrapping_sub(big_sigma0([b])[0])
            .wrapping_sub([b].majority([c], [d])[0]);
        e.wrapping_sub(t1)
    };
    let a59 = earlier(a63, e63, a62, a61, a60);
    let a58 = earlier(a62, e62, a61, a60, a59);
    let a57 = earlier(a61, e61, a60, a59, a58);
    earlier(a60, e60, a59, a58, a57)
}

/// Tests the candidates whose word 0 is `words[0] + table[j]`, the other words being
/// `words[1..]`, against `digest`, doing `work` per candidate. Returns the first `j` whose
/// block hashes to `digest`. `table.len()` is a multiple of `L::WIDTH`.
#[inline(always)]
pub(super) fn scan<L: Lanes>(
    proof: L::Proof,
    words: &[u32; 16],
    table: &[u32],
    digest: [u32; 8],
    work: Work,
) -> Option<usize> {
    match work {
        Work::Shortcuts => scan_with_shortcuts::<L>(proof, words, table, digest),
        Work::EveryStep => scan_every_step::<L>(proof, words, table, digest),
    }
}

/// [`scan`] with the shortcut of [`round_56_target`]: 57 rounds per candidate.
#[inline(always)]
fn scan_with_shortcuts<L: Lanes>(
    proof: L::Proof,
    words: &[u32; 16],
    table: &[u32],
    digest: [u32; 8],
) -> Option<usize> {
    let wanted = L::splat(proof, round_56_target(digest));
    let shared: [L; 16] = splat_each(proof, words);
    let iv: [L; 8] = splat_each(proof, &IV);
    for (group, first_characters) in table.chunks_exact(L::WIDTH).enumerate() {
        let mut w = shared;
        w[0] = w[0].add(L::load(proof, first_characters));
        let mut s = iv;
        rounds!(s, w; 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15
                      16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31
                      32 33 34 35 36 37 38 39 40 41 42 43 44 45 46 47
                      48 49 50 51 52 53 54 55 56);
        let mut matches = s[0].equal_lanes(wanted);
        while matches != 0 {
            let j = group * L::WIDTH + matches.trailing_zeros() as usize;
            if confirm(words, table[j], digest) {
                return Some(j);
            }
            matches &= matches - 1;
        }
    }
    None
}

/// [`scan`] without shortcuts, as the GPU kernel hashes: all 64 rounds per candidate, and the
/// eight words of its digest compared with `digest`'s.
#[inline(always)]
fn scan_every_step<L: Lanes>(
    proof: L::Proof,
    words: &[u32; 16],
    table: &[u32],
    digest: [u32; 8],
) -> Option<usize> {
    let shared: [L; 16] = splat_each(proof, words);
    let iv: [L; 8] = splat_each(proof, &IV);
    let wanted: [L; 8] = splat_each(proof, &digest);
    let every_lane = u64::MAX >> (64 - L::WIDTH);
    for (group, first_characters) in table.chunks_exact(L::WIDTH).enumerate() {
        let mut block = shared;
        block[0] = block[0].add(L::load(proof, first_characters));
        let state = compress(iv, &block);
        let matches = (0..8).fold(every_lane, |mask, i| mask & state[i].equal_lanes(wanted[i]));
        if matches != 0 {
            return Some(group * L::WIDTH + matches.trailing_zeros() as usize);
        }
    }
    None
}

/// Whether the candidate really hashes to `digest` (the scan's test is on one word).
#[cold]
fn confirm(words: &[u32; 16], first_characters: u32, digest: [u32; 8]) -> bool {
    let mut block = *words;
    block[0] = block[0].wrapping_add(first_characters);
    digest_words(&block) == digest
}
