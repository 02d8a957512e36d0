//! Exhaustive search: every candidate of a keyspace, in blocks built once and scanned by the
//! SIMD kernels, on every core.
//!
//! A candidate's first characters vary fastest, and the first four sit in the block's first
//! word. So the first `p` characters (`p` ≤ 4) are precomputed once as a *table* of their
//! contributions to word 0, and the rest of the block, a *unit*, changes only after the whole
//! table has been scanned: a kernel adds a table entry to word 0 and leaves the 15 other
//! words alone. Units are grouped in chunks, the chunks spread over rayon's threads.

use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};

use rayon::prelude::*;

#[cfg(target_arch = "x86_64")]
use super::lanes::{
    Pair,
    x86::{HasAvx2, HasAvx512, Sse2},
};
use super::{Charset, FastHash, Simd, Work};
use super::{md5, sha256};

/// The longest password that fits one block: 64 bytes less the `0x80` and the 8-byte length.
pub(super) const MAX_LENGTH: usize = 55;

/// The widest kernel's lane count: tables are padded to a multiple of it.
const MAX_LANES: usize = 32;

/// Candidates per chunk (about a millisecond on a core): small enough to share the work
/// evenly and to stop soon after a find, large enough that handing out chunks costs nothing.
const CHUNK_CANDIDATES: u64 = 1 << 18;

/// A digest to search for, as the hash's words.
#[derive(Clone, Copy, Debug)]
pub(super) enum Target {
    Md5([u32; 4]),
    Sha256([u32; 8]),
}

impl Target {
    /// The target for `digest`.
    ///
    /// # Panics
    /// If `digest` is not the hash's length.
    pub(super) fn new(hash: FastHash, digest: &[u8]) -> Self {
        let length = hash.digest_len();
        assert_eq!(digest.len(), length, "{hash} digests have {length} bytes");
        let mut words = digest
            .chunks_exact(4)
            .map(|w| <[u8; 4]>::try_from(w).unwrap());
        match hash {
            FastHash::Md5 => Target::Md5(std::array::from_fn(|_| {
                u32::from_le_bytes(words.next().unwrap())
            })),
            FastHash::Sha256 => Target::Sha256(std::array::from_fn(|_| {
                u32::from_be_bytes(words.next().unwrap())
            })),
        }
    }

    fn hash(self) -> FastHash {
        match self {
            Target::Md5(_) => FastHash::Md5,
            Target::Sha256(_) => FastHash::Sha256,
        }
    }
}

/// The 16 words of the single block that holds `message`, padded as MD5 and SHA-256 pad it.
pub(crate) fn block_words(hash: FastHash, message: &[u8]) -> [u32; 16] {
    assert!(message.len() <= MAX_LENGTH);
    let mut block = [0u8; 64];
    block[..message.len()].copy_from_slice(message);
    block[message.len()] = 0x80;
    let bits = 8 * message.len() as u64;
    match hash {
        FastHash::Md5 => block[56..].copy_from_slice(&bits.to_le_bytes()),
        FastHash::Sha256 => block[56..].copy_from_slice(&bits.to_be_bytes()),
    }
    std::array::from_fn(|i| word(hash, block[4 * i..4 * i + 4].try_into().unwrap()))
}

/// A block word from its four bytes, in the hash's byte order.
fn word(hash: FastHash, bytes: [u8; 4]) -> u32 {
    match hash {
        FastHash::Md5 => u32::from_le_bytes(bytes),
        FastHash::Sha256 => u32::from_be_bytes(bytes),
    }
}

/// A kernel, with the proof that this processor runs it: holding one is what makes calling it
/// safe.
#[derive(Clone, Copy, Debug)]
enum Kernel {
    #[cfg(target_arch = "x86_64")]
    Avx512(HasAvx512),
    #[cfg(target_arch = "x86_64")]
    Avx2(HasAvx2),
    #[cfg(target_arch = "x86_64")]
    Sse2,
    Scalar,
}

impl Kernel {
    /// The kernel of `simd`, if this processor runs it.
    fn detect(simd: Simd) -> Option<Kernel> {
        match simd {
            #[cfg(target_arch = "x86_64")]
            Simd::Avx512 => HasAvx512::detect().map(Kernel::Avx512),
            #[cfg(target_arch = "x86_64")]
            Simd::Avx2 => HasAvx2::detect().map(Kernel::Avx2),
            #[cfg(target_arch = "x86_64")]
            Simd::Sse2 => Some(Kernel::Sse2),
            #[cfg(not(target_arch = "x86_64"))]
            Simd::Avx512 | Simd::Avx2 | Simd::Sse2 => None,
            Simd::Scalar => Some(Kernel::Scalar),
        }
    }
}

/// A search of one keyspace for one target, ready to run over any range of its units.
pub(super) struct Search {
    target: Target,
    kernel: Kernel,
    work: Work,
    symbols: Vec<u8>,
    length: usize,
    /// How many first characters the table covers.
    table_characters: usize,
    /// Their contributions to word 0, then copies of the last one up to a multiple of
    /// [`MAX_LANES`] (a copy is tested again, never counted again).
    table: Vec<u32>,
    /// The table's real entries: `symbols.len()` to the power `table_characters`.
    table_len: u64,
    /// Keyspace divided by `table_len`.
    units: u64,
}

impl Search {
    /// A search for `target` among the passwords of `length` characters from `charset`, with
    /// the kernels of `simd` doing `work` per candidate.
    ///
    /// # Panics
    /// If the processor lacks `simd`, `length` is not in 1..=55, or the keyspace has more
    /// than 2⁶⁴ units.
    pub(super) fn new(
        target: Target,
        charset: &Charset,
        length: usize,
        simd: Simd,
        work: Work,
    ) -> Self {
        let kernel = Kernel::detect(simd).unwrap_or_else(|| panic!("this processor has no {simd}"));
        assert!(
            (1..=MAX_LENGTH).contains(&length),
            "the kernels hash single blocks: 1 to {MAX_LENGTH} characters, not {length}"
        );
        let symbols = charset.symbols().to_vec();
        let n = symbols.len() as u64;
        // Enough first characters for a table that fills the lanes with little padding.
        let table_characters = (1..=length.min(4))
            .find(|&p| n.pow(p as u32) >= 16 * MAX_LANES as u64)
            .unwrap_or(length.min(4));
        let table_len = n.pow(table_characters as u32);
        let units = (n as u128)
            .checked_pow((length - table_characters) as u32)
            .and_then(|units| u64::try_from(units).ok())
            .expect("a keyspace too large to search");
        let hash = target.hash();
        let mut table: Vec<u32> = (0..table_len)
            .map(|q| {
                let mut prefix = [0u8; 4];
                decode(&symbols, q as u128, &mut prefix[..table_characters]);
                word(hash, prefix)
            })
            .collect();
        let padded = table.len().next_multiple_of(MAX_LANES);
        table.resize(padded, *table.last().expect("a charset has symbols"));
        Search {
            target,
            kernel,
            work,
            symbols,
            length,
            table_characters,
            table,
            table_len,
            units,
        }
    }

    /// How many units the keyspace has.
    pub(super) fn units(&self) -> u64 {
        self.units
    }

    /// How many candidates a unit holds.
    pub(super) fn candidates_per_unit(&self) -> u64 {
        self.table_len
    }

    /// Searches `units` on every thread of rayon's pool; returns the password found.
    pub(super) fn run(&self, units: Range<u64>) -> Option<Vec<u8>> {
        let count = units.end - units.start;
        // Chunks of about CHUNK_CANDIDATES, and at least four per thread.
        let chunk = (CHUNK_CANDIDATES / self.table_len)
            .min(count / (4 * rayon::current_num_threads() as u64))
            .max(1);
        let chunks = count.div_ceil(chunk);
        // `find_map_any` hands out no more chunks once one has found the password; the flag
        // stops the chunks already running, at their next unit.
        let found = AtomicBool::new(false);
        (0..chunks).into_par_iter().find_map_any(|c| {
            let start = units.start + c * chunk;
            let end = (start + chunk).min(units.end);
            let password = self.run_chunk(start..end, &found);
            if password.is_some() {
                found.store(true, Ordering::Relaxed);
            }
            password
        })
    }

    /// Searches `units` on the calling thread alone: a ranged search's CPU share, which the
    /// caller spreads over threads itself.
    pub(super) fn run_here(&self, units: Range<u64>) -> Option<Vec<u8>> {
        self.run_chunk(units, &AtomicBool::new(false))
    }

    /// Searches `units` on this thread, unit after unit, until `found` is set.
    fn run_chunk(&self, units: Range<u64>, found: &AtomicBool) -> Option<Vec<u8>> {
        let hash = self.target.hash();
        // The first characters stay zero here: the table adds them.
        let mut password = vec![0u8; self.length];
        let mut digits = vec![0usize; self.length];
        let rest = self.table_characters..self.length;
        decode_digits(
            self.symbols.len(),
            units.start as u128,
            &mut digits[rest.clone()],
        );
        for (byte, &digit) in password[rest.clone()].iter_mut().zip(&digits[rest.clone()]) {
            *byte = self.symbols[digit];
        }
        for _ in units {
            if found.load(Ordering::Relaxed) {
                return None;
            }
            let words = block_words(hash, &password);
            // `j` is a real entry: a padding copy comes after the original, found first.
            if let Some(j) = self.scan(&words) {
                let mut prefix = vec![0u8; self.table_characters];
                decode(&self.symbols, j as u128, &mut prefix);
                password[..self.table_characters].copy_from_slice(&prefix);
                return Some(password);
            }
            // The next unit: an odometer on the characters after the table's.
            for position in rest.clone() {
                digits[position] += 1;
                if digits[position] < self.symbols.len() {
                    password[position] = self.symbols[digits[position]];
                    break;
                }
                digits[position] = 0;
                password[position] = self.symbols[0];
            }
        }
        None
    }

    /// The table index of the candidate, among those of `words`, that hashes to the target.
    fn scan(&self, words: &[u32; 16]) -> Option<usize> {
        let (table, work) = (&self.table[..], self.work);
        match (self.kernel, self.target) {
            #[cfg(target_arch = "x86_64")]
            (Kernel::Avx512(proof), Target::Md5(d)) => {
                avx512::md5_scan(proof, words, table, d, work)
            }
            #[cfg(target_arch = "x86_64")]
            (Kernel::Avx512(proof), Target::Sha256(d)) => {
                avx512::sha256_scan(proof, words, table, d, work)
            }
            #[cfg(target_arch = "x86_64")]
            (Kernel::Avx2(proof), Target::Md5(d)) => avx2::md5_scan(proof, words, table, d, work),
            #[cfg(target_arch = "x86_64")]
            (Kernel::Avx2(proof), Target::Sha256(d)) => {
                avx2::sha256_scan(proof, words, table, d, work)
            }
            #[cfg(target_arch = "x86_64")]
            (Kernel::Sse2, Target::Md5(d)) => md5::scan::<Pair<Sse2>>((), words, table, d, work),
            #[cfg(target_arch = "x86_64")]
            (Kernel::Sse2, Target::Sha256(d)) => sha256::scan::<Sse2>((), words, table, d, work),
            (Kernel::Scalar, Target::Md5(d)) => md5::scan::<[u32; 1]>((), words, table, d, work),
            (Kernel::Scalar, Target::Sha256(d)) => {
                sha256::scan::<[u32; 1]>((), words, table, d, work)
            }
        }
    }
}

/// The kernels compiled for AVX-512: 16 lanes a register.
///
/// Each is a safe function taking the proof, around a `#[target_feature]` function: the
/// attribute makes the compiler use AVX-512 in the hash, inlined there, and calling such a
/// function is unsafe unless the processor has the feature, which the proof shows.
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::super::lanes::{
        Pair,
        x86::{Avx512, HasAvx512},
    };
    use super::{Work, md5, sha256};

    pub(super) fn md5_scan(
        proof: HasAvx512,
        words: &[u32; 16],
        table: &[u32],
        digest: [u32; 4],
        work: Work,
    ) -> Option<usize> {
        #[target_feature(enable = "avx512f")]
        fn compiled(
            proof: HasAvx512,
            words: &[u32; 16],
            table: &[u32],
            digest: [u32; 4],
            work: Work,
        ) -> Option<usize> {
            md5::scan::<Pair<Avx512>>(proof, words, table, digest, work)
        }
        // SAFETY: `proof` shows that the processor has AVX-512F.
        unsafe { compiled(proof, words, table, digest, work) }
    }

    pub(super) fn sha256_scan(
        proof: HasAvx512,
        words: &[u32; 16],
        table: &[u32],
        digest: [u32; 8],
        work: Work,
    ) -> Option<usize> {
        #[target_feature(enable = "avx512f")]
        fn compiled(
            proof: HasAvx512,
            words: &[u32; 16],
            table: &[u32],
            digest: [u32; 8],
            work: Work,
        ) -> Option<usize> {
            sha256::scan::<Avx512>(proof, words, table, digest, work)
        }
        // SAFETY: `proof` shows that the processor has AVX-512F.
        unsafe { compiled(proof, words, table, digest, work) }
    }
}

/// The kernels compiled for AVX2: 8 lanes a register, wrapped as in [`avx512`].
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::super::lanes::{
        Pair,
        x86::{Avx2, HasAvx2},
    };
    use super::{Work, md5, sha256};

    pub(super) fn md5_scan(
        proof: HasAvx2,
        words: &[u32; 16],
        table: &[u32],
        digest: [u32; 4],
        work: Work,
    ) -> Option<usize> {
        #[target_feature(enable = "avx2")]
        fn compiled(
            proof: HasAvx2,
            words: &[u32; 16],
            table: &[u32],
            digest: [u32; 4],
            work: Work,
        ) -> Option<usize> {
            md5::scan::<Pair<Avx2>>(proof, words, table, digest, work)
        }
        // SAFETY: `proof` shows that the processor has AVX2.
        unsafe { compiled(proof, words, table, digest, work) }
    }

    pub(super) fn sha256_scan(
        proof: HasAvx2,
        words: &[u32; 16],
        table: &[u32],
        digest: [u32; 8],
        work: Work,
    ) -> Option<usize> {
        #[target_feature(enable = "avx2")]
        fn compiled(
            proof: HasAvx2,
            words: &[u32; 16],
            table: &[u32],
            digest: [u32; 8],
            work: Work,
        ) -> Option<usize> {
            sha256::scan::<Avx2>(proof, words, table, digest, work)
        }
        // SAFETY: `proof` shows that the processor has AVX2.
        unsafe { compiled(proof, words, table, digest, work) }
    }
}

/// Writes `index` in base `symbols.len()` into `out`, first character the least significant.
pub(super) fn decode(symbols: &[u8], index: u128, out: &mut [u8]) {
    let mut digits = vec![0; out.len()];
    decode_digits(symbols.len(), index, &mut digits);
    for (byte, digit) in out.iter_mut().zip(digits) {
        *byte = symbols[digit];
    }
}

fn decode_digits(base: usize, mut index: u128, digits: &mut [usize]) {
    for digit in digits {
        *digit = (index % base as u128) as usize;
        index /= base as u128;
    }
}
