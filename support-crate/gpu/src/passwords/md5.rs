//! MD5 (RFC 1321) on [`Lanes`], and the search kernel that tests a table of candidates.

use super::Work;
use super::lanes::{Lanes, splat_each};

/// The state before the first block.
pub(super) const IV: [u32; 4] = [0x6745_2301, 0xefcd_ab89, 0x98ba_dcfe, 0x1032_5476];

/// `floor(|sin(i + 1)| · 2³²)`: one constant per step.
const K: [u32; 64] = [
    0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613, 0xfd469501,
    0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193, 0xa679438e, 0x49b40821,
    0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d, 0x02441453, 0xd8a1e681, 0xe7d3fbc8,
    0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed, 0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a,
    0xfffa3942, 0x8771f681, 0x6d9d6122, 0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70,
    0x289b7ec6, 0xeaa127fa, 0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665,
    0xf4292244, 0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
    0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb, 0xeb86d391,
];

/// The rotation of each step: four per round, repeated.
const SHIFT: [u32; 64] = {
    let rounds = [
        [7, 12, 17, 22],
        [5, 9, 14, 20],
        [4, 11, 16, 23],
        [6, 10, 15, 21],
    ];
    let mut shift = [0; 64];
    let mut i = 0;
    while i < 64 {
        shift[i] = rounds[i / 16][i % 4];
        i += 1;
    }
    shift
};

/// The message word each step reads: in order, then in strides of 5, 3 and 7.
const WORD: [usize; 64] = {
    let mut word = [0; 64];
    let mut i = 0;
    while i < 64 {
        word[i] = match i / 16 {
            0 => i,
            1 => (5 * i + 1) % 16,
            2 => (3 * i + 5) % 16,
            _ => (7 * i) % 16,
        };
        i += 1;
    }
    word
};

/// The round's mixing function of `b`, `c`, `d`.
#[inline(always)]
fn mix<L: Lanes>(round: usize, b: L, c: L, d: L) -> L {
    match round {
        0 => d.xor(b.and(c.xor(d))), // (b & c) | (!b & d)
        1 => c.xor(d.and(b.xor(c))), // (b & d) | (c & !d)
        2 => b.xor(c).xor(d),
        _ => c.xor(b.or(d.not())),
    }
}

/// Step `I` with `x`, its message word plus its constant. The state rotates by one word per
/// step, so the new word is always at index 1 and the word written at step `j` is at index
/// 0 from step `j + 3` on.
#[inline(always)]
fn step<L: Lanes, const I: usize>([a, b, c, d]: [L; 4], x: L) -> [L; 4] {
    let new = b.add(a.add(mix(I / 16, b, c, d)).add(x).rotl(SHIFT[I]));
    [d, new, b, c]
}

/// Step `i` backwards: the state before it, from the state after it.
fn unstep(i: usize, [d, new, b, c]: [u32; 4], x: u32) -> [u32; 4] {
    let a = (new.wrapping_sub(b))
        .rotate_right(SHIFT[i])
        .wrapping_sub(mix(i / 16, [b], [c], [d])[0])
        .wrapping_sub(x);
    [a, b, c, d]
}

/// Runs the listed steps on `$state`, each with `$x(step)`. A macro, so that each step's
/// index is a constant and its rotation, constant and mixing function are fixed at compile
/// time.
macro_rules! steps {
    ($state:ident, $x:ident; $($i:literal)*) => {
        $( $state = step::<_, $i>($state, $x($i)); )*
    };
}

/// The MD5 compression of one 64-byte block, as 16 little-endian words, from `state`.
#[inline(always)]
pub(super) fn compress<L: Lanes>(state: [L; 4], words: &[L; 16]) -> [L; 4] {
    let proof = state[0].proof();
    let x = |i: usize| words[WORD[i]].add(L::splat(proof, K[i]));
    let mut s = state;
    steps!(s, x; 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15
                 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31
                 32 33 34 35 36 37 38 39 40 41 42 43 44 45 46 47
                 48 49 50 51 52 53 54 55 56 57 58 59 60 61 62 63);
    std::array::from_fn(|i| state[i].add(s[i]))
}

/// The digest of a single-block message, from its 16 words.
pub(super) fn digest_words(words: &[u32; 16]) -> [u32; 4] {
    let lanes: [[u32; 1]; 16] = words.map(|w| [w]);
    compress(IV.map(|w| [w]), &lanes).map(|[w]| w)
}

/// The value that step 44's new word plus word 0 must take for the block to hash to
/// `digest`, given words 1 to 15 (`words[0]` holds the part of word 0 that all candidates
/// share).
///
/// Why it exists: the last 15 steps read words 1 to 15 only, which are the same for every
/// candidate of a scan, and each step can be run backwards. So instead of running all 64
/// steps per candidate, the scan runs the target's digest backwards once, through steps 63
/// to 49, and through step 48 up to the one term that depends on the candidate's word 0.
/// Each candidate then needs 45 steps instead of 64, and still gets an exact test: a lane
/// whose word matches is checked with the full hash (one lane in 4 billion matches by
/// chance). Hashcat plays the same trick. Algebra, not only SIMD, makes crackers fast.
fn step_44_target(digest: [u32; 4], words: &[u32; 16]) -> u32 {
    let mut state: [u32; 4] = std::array::from_fn(|i| digest[i].wrapping_sub(IV[i]));
    for i in (49..64).rev() {
        state = unstep(i, state, words[WORD[i]].wrapping_add(K[i]));
    }
    // Step 48 reads word 0: leave the candidates' part of it for the scan.
    unstep(48, state, words[0].wrapping_add(K[48]))[0]
}

/// Tests the candidates whose word 0 is `words[0] + table[j]`, the other words being
/// `words[1..]`, against `digest`, doing `work` per candidate. Returns the first `j` whose
/// block hashes to `digest`. `table.len()` is a multiple of `L::WIDTH`.
#[inline(always)]
pub(super) fn scan<L: Lanes>(
    proof: L::Proof,
    words: &[u32; 16],
    table: &[u32],
    digest: [u32; 4],
    work: Work,
) -> Option<usize> {
    match work {
        Work::Shortcuts => scan_with_shortcuts::<L>(proof, words, table, digest),
        Work::EveryStep => scan_every_step::<L>(proof, words, table, digest),
    }
}

/// [`scan`] with the shortcut of [`step_44_target`]: 45 steps per candidate.
#[inline(always)]
fn scan_with_shortcuts<L: Lanes>(
    proof: L::Proof,
    words: &[u32; 16],
    table: &[u32],
    digest: [u32; 4],
) -> Option<usize> {
    // Each step's message word plus constant; for word 0, the part all candidates share.
    let shared: [u32; 45] = std::array::from_fn(|i| words[WORD[i]].wrapping_add(K[i]));
    let wanted = L::splat(proof, step_44_target(digest, words));
    let iv: [L; 4] = splat_each(proof, &IV);
    for (group, first_characters) in table.chunks_exact(L::WIDTH).enumerate() {
        let first_characters = L::load(proof, first_characters);
        let x = |i: usize| {
            if WORD[i] == 0 {
                first_characters.add(L::splat(proof, shared[i]))
            } else {
                L::splat(proof, shared[i])
            }
        };
        let mut s = iv;
        steps!(s, x; 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15
                     16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31
                     32 33 34 35 36 37 38 39 40 41 42 43 44);
        let mut matches = s[1].add(first_characters).equal_lanes(wanted);
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

/// [`scan`] without shortcuts, as the GPU kernel hashes: all 64 steps per candidate, and the
/// four words of its digest compared with `digest`'s.
#[inline(always)]
fn scan_every_step<L: Lanes>(
    proof: L::Proof,
    words: &[u32; 16],
    table: &[u32],
    digest: [u32; 4],
) -> Option<usize> {
    let shared: [L; 16] = splat_each(proof, words);
    let iv: [L; 4] = splat_each(proof, &IV);
    let wanted: [L; 4] = splat_each(proof, &digest);
    let every_lane = u64::MAX >> (64 - L::WIDTH);
    for (group, first_characters) in table.chunks_exact(L::WIDTH).enumerate() {
        let mut block = shared;
        block[0] = block[0].add(L::load(proof, first_characters));
        let state = compress(iv, &block);
        let matches = (0..4).fold(every_lane, |mask, i| mask & state[i].equal_lanes(wanted[i]));
        if matches != 0 {
            return Some(group * L::WIDTH + matches.trailing_zeros() as usize);
        }
    }
    None
}

/// Whether the candidate really hashes to `digest` (the scan's test is on one word).
#[cold]
fn confirm(words: &[u32; 16], first_characters: u32, digest: [u32; 4]) -> bool {
    let mut block = *words;
    block[0] = block[0].wrapping_add(first_characters);
    digest_words(&block) == digest
}
