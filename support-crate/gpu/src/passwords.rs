//! Testing the strength of a password: how many candidates an attacker must try, how fast a
//! processor tries them, and why passwords are stored with slow hashes.
//!
//! A password drawn from a [`Charset`] of `N` symbols with `L` characters is one of `N^L`
//! candidates: its [`keyspace`]. An attacker who holds its hash tries candidates until one
//! hashes the same, half the keyspace on average. So the time to crack is the keyspace over
//! the attacker's rate, and the rate depends on the hash: a fast one (MD5, SHA-256), made to
//! checksum files, goes at tens to hundreds of millions a second on one core; a slow one
//! (bcrypt, Argon2), made for passwords, at tens.
//!
//! ```
//! use parcours_gpu::passwords::*;
//!
//! let digest = md5(b"pass");
//! assert_eq!(to_hex(&digest), "1a1dc91c907325c69271ddf0c944bc72");
//! assert_eq!(crack_md5(digest, &Charset::lowercase(), 4).as_deref(), Some("pass"));
//!
//! let pin = Policy::new("4-digit PIN", Charset::digits(), 4);
//! assert_eq!(pin.keyspace(), 10_000);
//! assert_eq!(time_to_crack(&pin, 1000.0).as_secs(), 5); // half of 10 000 at 1000 per second
//! ```
//!
//! The crackers here ([`crack_md5`], [`crack_sha256`], [`hash_rate`]) are *multi-buffer*: the
//! hash is written once, over lanes of 32-bit words, and each lane hashes another candidate,
//! 16 to a register with AVX-512 ([`Simd`]). The lanes, the precomputed block and the
//! shortcuts that skip the last steps are explained in the source; [`Work`] turns the
//! shortcuts off, to compare with hashers that take none (the course's GPU kernels).
//!
//! A keyspace splits into ranges of candidate indices ([`candidate`] numbers them) that need
//! nothing from each other: [`crack_range`] searches one on the calling thread, and
//! `Gpu::crack_range` one on the GPU, so that the GPU and the CPU's threads can each search a
//! share at the same time.

mod lanes;
mod md5;
mod search;
mod sha256;

use std::fmt;
use std::hint::black_box;
use std::ops::Range;
use std::time::{Duration, Instant};

use rayon::prelude::*;

use parcours::display::{Table, format_duration};
pub(crate) use search::block_words;
use search::{Search, Target};

/// The crates behind the slow hashes, for cells that want more than the rates.
pub use ::argon2;
pub use ::bcrypt;

/// The symbols a password is drawn from (ASCII only, each once).
///
/// ```
/// use parcours_gpu::passwords::Charset;
/// assert_eq!(Charset::alphanumeric().size(), 62);
/// assert_eq!(Charset::printable().size(), 95);
/// assert_eq!(Charset::custom("hex", "0123456789abcdef").size(), 16);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Charset {
    name: String,
    symbols: Vec<u8>,
}

impl Charset {
    /// `0` to `9`.
    pub fn digits() -> Self {
        Self::custom("digits", "0123456789")
    }

    /// `a` to `z`.
    pub fn lowercase() -> Self {
        Self::custom("lowercase letters", "abcdefghijklmnopqrstuvwxyz")
    }

    /// `a` to `z`, then `0` to `9`: 36 symbols.
    pub fn lower_digits() -> Self {
        Self::custom(
            "lowercase letters and digits",
            "abcdefghijklmnopqrstuvwxyz0123456789",
        )
    }

    /// Lower and upper case letters and digits: 62 symbols.
    pub fn alphanumeric() -> Self {
        Self::custom(
            "letters and digits",
            "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
        )
    }

    /// The 95 printable ASCII characters, space included: all a keyboard types without
    /// accents.
    pub fn printable() -> Self {
        let symbols: String = (' '..='~').collect();
        Self::custom("printable ASCII", &symbols)
    }

    /// The symbols of `symbols`, in that order (a candidate's index counts in this order).
    ///
    /// # Panics
    /// If `symbols` is empty, not ASCII, or has a symbol twice (the keyspace would count it
    /// twice).
    ///
    /// ```should_panic
    /// parcours_gpu::passwords::Charset::custom("twice", "abca");
    /// ```
    pub fn custom(name: &str, symbols: &str) -> Self {
        assert!(!symbols.is_empty(), "charset `{name}` has no symbols");
        assert!(
            symbols.is_ascii(),
            "charset `{name}` is not ASCII: {symbols:?}"
        );
        let bytes = symbols.as_bytes();
        if let Some(twice) = bytes
            .iter()
            .find(|&&b| bytes.iter().filter(|&&c| c == b).count() > 1)
        {
            panic!("charset `{name}` has {:?} more than once", *twice as char);
        }
        Charset {
            name: name.to_string(),
            symbols: bytes.to_vec(),
        }
    }

    /// What the symbols are, in words.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The symbols, in order.
    pub fn symbols(&self) -> &[u8] {
        &self.symbols
    }

    /// How many symbols.
    pub fn size(&self) -> usize {
        self.symbols.len()
    }
}

impl fmt::Display for Charset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name, self.size())
    }
}

/// How many passwords of exactly `length` characters `charset` makes: `size^length`, or
/// `u128::MAX` when that does not fit.
///
/// ```
/// use parcours_gpu::passwords::{Charset, keyspace};
/// assert_eq!(keyspace(&Charset::digits(), 4), 10_000);
/// assert_eq!(keyspace(&Charset::alphanumeric(), 8), 218_340_105_584_896);
/// assert_eq!(keyspace(&Charset::printable(), 40), u128::MAX);
/// ```
pub fn keyspace(charset: &Charset, length: usize) -> u128 {
    u32::try_from(length)
        .ok()
        .and_then(|length| (charset.size() as u128).checked_pow(length))
        .unwrap_or(u128::MAX)
}

/// How many passwords of 1 to `max_length` characters `charset` makes (saturating at
/// `u128::MAX`): what an attacker tries who does not know the length. Barely more than
/// [`keyspace`] of `max_length` alone: the longest passwords outnumber all the shorter ones.
///
/// ```
/// use parcours_gpu::passwords::{Charset, keyspace_up_to};
/// assert_eq!(keyspace_up_to(&Charset::digits(), 4), 11_110);
/// ```
pub fn keyspace_up_to(charset: &Charset, max_length: usize) -> u128 {
    (1..=max_length).fold(0u128, |sum, length| {
        sum.saturating_add(keyspace(charset, length))
    })
}

/// The entropy of a password drawn uniformly at random: `length · log2(size)` bits, the
/// number of fair coin flips that would pick it. Each bit doubles the attacker's work.
///
/// ```
/// use parcours_gpu::passwords::{Charset, entropy_bits};
/// assert_eq!(entropy_bits(&Charset::custom("bits", "01"), 64), 64.0);
/// assert!((entropy_bits(&Charset::alphanumeric(), 8) - 47.63).abs() < 0.01);
/// ```
pub fn entropy_bits(charset: &Charset, length: usize) -> f64 {
    length as f64 * (charset.size() as f64).log2()
}

/// The candidate number `index` (in `0..keyspace(charset, length)`): `index` written in base
/// `charset.size()` with the charset's symbols as digits, first character the least
/// significant, so it varies fastest (the crackers rely on that order).
///
/// # Panics
/// If `index` is not below the keyspace.
///
/// ```
/// use parcours_gpu::passwords::{Charset, candidate};
/// let lower = Charset::lowercase();
/// assert_eq!(candidate(&lower, 3, 0), "aaa");
/// assert_eq!(candidate(&lower, 3, 1), "baa");
/// assert_eq!(candidate(&lower, 3, 26), "aba");
/// assert_eq!(candidate(&lower, 3, 26 * 26 * 26 - 1), "zzz");
/// ```
pub fn candidate(charset: &Charset, length: usize, index: u128) -> String {
    let keyspace = keyspace(charset, length);
    assert!(
        index < keyspace || keyspace == u128::MAX,
        "candidate {index} of a keyspace of {keyspace}"
    );
    let mut password = vec![0; length];
    search::decode(charset.symbols(), index, &mut password);
    String::from_utf8(password).expect("charsets are ASCII")
}

/// A password policy: which symbols, and how many.
///
/// ```
/// use parcours_gpu::passwords::{Charset, Policy};
/// let policy = Policy::new("8 letters and digits", Charset::alphanumeric(), 8);
/// assert_eq!(policy.keyspace(), 62u128.pow(8));
/// assert!(policy.entropy_bits() > 47.0);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// What the policy is called in a table.
    pub name: String,
    /// The symbols passwords are drawn from.
    pub charset: Charset,
    /// How many characters a password has.
    pub length: usize,
}

impl Policy {
    /// A policy of `length` characters from `charset`.
    pub fn new(name: impl Into<String>, charset: Charset, length: usize) -> Self {
        Policy {
            name: name.into(),
            charset,
            length,
        }
    }

    /// Policies from a PIN to a long random password, weakest first.
    pub fn typical() -> Vec<Policy> {
        vec![
            Policy::new("4-digit PIN", Charset::digits(), 4),
            Policy::new("6-digit PIN", Charset::digits(), 6),
            Policy::new("8 lowercase letters", Charset::lowercase(), 8),
            Policy::new("8 letters and digits", Charset::alphanumeric(), 8),
            Policy::new("10 letters and digits", Charset::alphanumeric(), 10),
            Policy::new("12 printable characters", Charset::printable(), 12),
            Policy::new("16 printable characters", Charset::printable(), 16),
        ]
    }

    /// How many passwords the policy allows: [`keyspace`].
    pub fn keyspace(&self) -> u128 {
        keyspace(&self.charset, self.length)
    }

    /// The entropy of a random password under the policy: [`entropy_bits`].
    pub fn entropy_bits(&self) -> f64 {
        entropy_bits(&self.charset, self.length)
    }
}

/// The expected time to find a random password of `policy` at `hashes_per_second`: half its
/// keyspace (an attacker who knows the policy finds it, on average, halfway through).
/// `Duration::MAX` (some 585 billion years) when longer.
///
/// ```
/// use parcours_gpu::passwords::{Charset, Policy, time_to_crack};
/// let pin = Policy::new("6-digit PIN", Charset::digits(), 6);
/// assert_eq!(time_to_crack(&pin, 10.0).as_secs(), 50_000);
/// ```
pub fn time_to_crack(policy: &Policy, hashes_per_second: f64) -> Duration {
    seconds_to_duration(expected_seconds(policy, hashes_per_second))
}

/// The time to try every password of `policy` at `hashes_per_second`: the worst case,
/// twice [`time_to_crack`].
///
/// ```
/// use parcours_gpu::passwords::{Charset, Policy, worst_time_to_crack};
/// let pin = Policy::new("6-digit PIN", Charset::digits(), 6);
/// assert_eq!(worst_time_to_crack(&pin, 10.0).as_secs(), 100_000);
/// ```
pub fn worst_time_to_crack(policy: &Policy, hashes_per_second: f64) -> Duration {
    seconds_to_duration(2.0 * expected_seconds(policy, hashes_per_second))
}

fn expected_seconds(policy: &Policy, hashes_per_second: f64) -> f64 {
    policy.keyspace() as f64 / 2.0 / hashes_per_second
}

fn seconds_to_duration(seconds: f64) -> Duration {
    Duration::try_from_secs_f64(seconds).unwrap_or(Duration::MAX)
}

/// A duration for people, from nanoseconds to multiples of the age of the universe.
///
/// ```
/// use std::time::Duration;
/// use parcours_gpu::passwords::format_long_duration;
/// assert_eq!(format_long_duration(Duration::from_millis(1500)), "1.50 s");
/// assert_eq!(format_long_duration(Duration::from_secs(5400)), "1.50 hours");
/// assert_eq!(format_long_duration(Duration::from_secs(3 * 86_400)), "3.00 days");
/// assert_eq!(format_long_duration(Duration::from_secs(315_576_000_000)), "10.0 thousand years");
/// assert_eq!(format_long_duration(Duration::MAX), "42.4 × the age of the universe");
/// ```
pub fn format_long_duration(duration: Duration) -> String {
    format_seconds(duration.as_secs_f64())
}

/// [`format_long_duration`] for seconds beyond what a `Duration` holds.
fn format_seconds(seconds: f64) -> String {
    const MINUTE: f64 = 60.0;
    const HOUR: f64 = 60.0 * MINUTE;
    const DAY: f64 = 24.0 * HOUR;
    const YEAR: f64 = 365.25 * DAY;
    /// 13.8 billion years (Planck 2018).
    const AGE_OF_THE_UNIVERSE: f64 = 13.8e9 * YEAR;
    if seconds.is_nan() || seconds == f64::INFINITY {
        return "forever".to_string();
    }
    let years = seconds / YEAR;
    match seconds {
        s if s < MINUTE => format_duration(Duration::from_secs_f64(s)),
        s if s < HOUR => format!("{} minutes", three_digits(s / MINUTE)),
        s if s < DAY => format!("{} hours", three_digits(s / HOUR)),
        s if s < YEAR => format!("{} days", three_digits(s / DAY)),
        _ if years < 1e3 => format!("{} years", three_digits(years)),
        _ if years < 1e6 => format!("{} thousand years", three_digits(years / 1e3)),
        _ if years < 1e9 => format!("{} million years", three_digits(years / 1e6)),
        s if s < AGE_OF_THE_UNIVERSE => format!("{} billion years", three_digits(years / 1e9)),
        s => {
            let ages = s / AGE_OF_THE_UNIVERSE;
            let ages = if ages < 1e3 {
                three_digits(ages)
            } else {
                format!("{ages:.1e}")
            };
            format!("{ages} × the age of the universe")
        }
    }
}

/// Three significant digits for values in [1, 1000).
fn three_digits(value: f64) -> String {
    match value {
        v if v >= 100.0 => format!("{v:.0}"),
        v if v >= 10.0 => format!("{v:.1}"),
        v => format!("{v:.2}"),
    }
}

/// The expected time to crack each policy (a row) at each rate (a column, `(label, hashes
/// per second)`), with each policy's keyspace and entropy.
///
/// ```
/// use parcours_gpu::passwords::{Policy, crack_time_table};
/// let table = crack_time_table(&Policy::typical(), &[("MD5, one GPU", 50e9), ("bcrypt", 1e4)]);
/// assert_eq!(table.len(), 7);
/// assert_eq!(table.rows()[0][4], "100 ns"); // a 4-digit PIN: 5000 guesses at 50 G/s
/// assert!(table.rows()[6][5].ends_with("the age of the universe"));
/// ```
pub fn crack_time_table(policies: &[Policy], rates: &[(&str, f64)]) -> Table {
    let mut header = vec!["policy", "symbols", "keyspace", "entropy"];
    header.extend(rates.iter().map(|(label, _)| *label));
    let mut table = Table::new(header).title(
        "Expected time to find a random password (half the keyspace) at each rate of guessing",
    );
    for policy in policies {
        let mut row = vec![
            policy.name.clone(),
            policy.charset.size().to_string(),
            format!("{:.3e}", policy.keyspace() as f64),
            format!("{:.1} bits", policy.entropy_bits()),
        ];
        row.extend(
            rates
                .iter()
                .map(|&(_, rate)| format_seconds(expected_seconds(policy, rate))),
        );
        table.push_row(row);
    }
    table
}

/// The MD5 digest of `message` (RustCrypto's `md-5`, the reference the crackers are tested
/// against).
///
/// ```
/// let digest = parcours_gpu::passwords::md5(b"");
/// assert_eq!(parcours_gpu::passwords::to_hex(&digest), "d41d8cd98f00b204e9800998ecf8427e");
/// ```
pub fn md5(message: &[u8]) -> [u8; 16] {
    use ::md5::Digest;
    ::md5::Md5::digest(message).into()
}

/// The SHA-256 digest of `message` (RustCrypto's `sha2`).
///
/// ```
/// let digest = parcours_gpu::passwords::sha256(b"abc");
/// assert!(parcours_gpu::passwords::to_hex(&digest).starts_with("ba7816bf"));
/// ```
pub fn sha256(message: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(message).into()
}

/// `bytes` in lowercase hexadecimal, as digests are usually written.
pub fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The `N` bytes written in hexadecimal by `hex`, such as a digest to crack.
///
/// # Panics
/// If `hex` is not `2 N` hexadecimal digits.
///
/// ```
/// use parcours_gpu::passwords::{crack_md5, from_hex, Charset};
/// let found = crack_md5(from_hex("900150983cd24fb0d6963f7d28e17f72"), &Charset::lowercase(), 3);
/// assert_eq!(found.as_deref(), Some("abc"));
/// ```
pub fn from_hex<const N: usize>(hex: &str) -> [u8; N] {
    let hex = hex.trim();
    assert!(
        hex.len() == 2 * N && hex.is_ascii(),
        "expected {} hexadecimal digits, got {hex:?}",
        2 * N
    );
    std::array::from_fn(|i| {
        u8::from_str_radix(&hex[2 * i..2 * i + 2], 16)
            .unwrap_or_else(|_| panic!("not hexadecimal: {hex:?}"))
    })
}

/// The fast hashes the crackers know.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FastHash {
    /// MD5: 128-bit digests, 64 steps on 4 words.
    Md5,
    /// SHA-256: 256-bit digests, 64 rounds on 8 words and a message schedule.
    Sha256,
}

impl FastHash {
    /// The digest's length in bytes.
    pub fn digest_len(self) -> usize {
        match self {
            FastHash::Md5 => 16,
            FastHash::Sha256 => 32,
        }
    }

    /// The digest of `message`, with the reference crates.
    pub fn digest(self, message: &[u8]) -> Vec<u8> {
        match self {
            FastHash::Md5 => md5(message).to_vec(),
            FastHash::Sha256 => sha256(message).to_vec(),
        }
    }
}

impl fmt::Display for FastHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FastHash::Md5 => "MD5",
            FastHash::Sha256 => "SHA-256",
        })
    }
}

/// The instructions the crackers' kernels run on: how many candidates one instruction
/// hashes.
///
/// ```
/// use parcours_gpu::passwords::Simd;
/// let best = Simd::best();
/// assert!(best.is_available());
/// assert!(best.lanes() >= Simd::Scalar.lanes());
/// assert_eq!(Simd::available().last(), Some(&Simd::Scalar));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Simd {
    /// AVX-512 (x86-64): 16 lanes a register.
    Avx512,
    /// AVX2 (x86-64): 8 lanes a register.
    Avx2,
    /// SSE2 (x86-64, every processor has it): 4 lanes a register.
    Sse2,
    /// One lane: one candidate at a time, in plain Rust; the only kernel on other processors.
    Scalar,
}

impl Simd {
    /// The widest this processor runs.
    pub fn best() -> Simd {
        Simd::available()[0]
    }

    /// Those this processor runs, widest first.
    pub fn available() -> Vec<Simd> {
        [Simd::Avx512, Simd::Avx2, Simd::Sse2, Simd::Scalar]
            .into_iter()
            .filter(|simd| simd.is_available())
            .collect()
    }

    /// Whether this processor runs it.
    pub fn is_available(self) -> bool {
        match self {
            #[cfg(target_arch = "x86_64")]
            Simd::Avx512 => std::arch::is_x86_feature_detected!("avx512f"),
            #[cfg(target_arch = "x86_64")]
            Simd::Avx2 => std::arch::is_x86_feature_detected!("avx2"),
            #[cfg(target_arch = "x86_64")]
            Simd::Sse2 => true,
            #[cfg(not(target_arch = "x86_64"))]
            Simd::Avx512 | Simd::Avx2 | Simd::Sse2 => false,
            Simd::Scalar => true,
        }
    }

    /// How many 32-bit lanes a register holds: the candidates one instruction hashes.
    pub fn lanes(self) -> usize {
        match self {
            Simd::Avx512 => 16,
            Simd::Avx2 => 8,
            Simd::Sse2 => 4,
            Simd::Scalar => 1,
        }
    }
}

impl fmt::Display for Simd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Simd::Avx512 => "AVX-512",
            Simd::Avx2 => "AVX2",
            Simd::Sse2 => "SSE2",
            Simd::Scalar => "scalar",
        })
    }
}

/// The password of `length` characters from `charset` whose MD5 digest is `target`, found by
/// trying every candidate on every core with the best [`Simd`]; `None` if there is none.
///
/// # Panics
/// If `length` is not in 1..=55 (the crackers hash single blocks).
///
/// ```
/// use parcours_gpu::passwords::*;
/// let lower = Charset::lowercase();
/// assert_eq!(crack_md5(md5(b"zzz"), &lower, 3).as_deref(), Some("zzz"));
/// assert_eq!(crack_md5(md5(b"Zzz"), &lower, 3), None);
/// ```
pub fn crack_md5(target: [u8; 16], charset: &Charset, length: usize) -> Option<String> {
    crack(FastHash::Md5, Simd::best(), &target, charset, length)
}

/// The password of `length` characters from `charset` whose SHA-256 digest is `target`, as
/// [`crack_md5`] finds it.
///
/// ```
/// use parcours_gpu::passwords::*;
/// let digits = Charset::digits();
/// assert_eq!(crack_sha256(sha256(b"2024"), &digits, 4).as_deref(), Some("2024"));
/// ```
pub fn crack_sha256(target: [u8; 32], charset: &Charset, length: usize) -> Option<String> {
    crack(FastHash::Sha256, Simd::best(), &target, charset, length)
}

/// [`crack_md5`] or [`crack_sha256`] with the kernels of your choice: compare them.
///
/// # Panics
/// If `target` is not a `hash` digest, `length` not in 1..=55, or the processor lacks `simd`.
///
/// ```
/// use parcours_gpu::passwords::*;
/// for simd in Simd::available() {
///     let found = crack(FastHash::Md5, simd, &md5(b"go"), &Charset::lowercase(), 2);
///     assert_eq!(found.as_deref(), Some("go"), "{simd}");
/// }
/// ```
pub fn crack(
    hash: FastHash,
    simd: Simd,
    target: &[u8],
    charset: &Charset,
    length: usize,
) -> Option<String> {
    crack_doing(Work::Shortcuts, hash, simd, target, charset, length)
}

/// [`crack`], doing `work` per candidate.
fn crack_doing(
    work: Work,
    hash: FastHash,
    simd: Simd,
    target: &[u8],
    charset: &Charset,
    length: usize,
) -> Option<String> {
    let search = Search::new(Target::new(hash, target), charset, length, simd, work);
    let password = search.run(0..search.units())?;
    Some(String::from_utf8(password).expect("charsets are ASCII"))
}

/// Why a ranged search refused its candidates: they are not a range of the keyspace.
///
/// ```
/// use parcours_gpu::passwords::*;
/// let refused = crack_range(FastHash::Md5, &md5(b"ab"), &Charset::lowercase(), 2, 600..700);
/// assert_eq!(refused, Err(RangeError::BeyondKeyspace { start: 600, end: 700, keyspace: 676 }));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RangeError {
    /// The range ends before it starts. Refused rather than searched as empty: a split point
    /// computed past the keyspace would otherwise lose candidates without a word.
    #[error("candidates {start}..{end} end before they start")]
    Reversed {
        /// The first candidate asked for.
        start: u128,
        /// One past the last.
        end: u128,
    },
    /// The range goes past the keyspace's last candidate.
    #[error("candidates {start}..{end} go past the keyspace, whose candidates are 0..{keyspace}")]
    BeyondKeyspace {
        /// The first candidate asked for.
        start: u128,
        /// One past the last.
        end: u128,
        /// How many candidates the keyspace has.
        keyspace: u128,
    },
}

/// `Ok` when `candidates` is a range of a keyspace of `keyspace` candidates.
pub(crate) fn check_range(candidates: &Range<u128>, keyspace: u128) -> Result<(), RangeError> {
    let Range { start, end } = candidates.clone();
    if start > end {
        Err(RangeError::Reversed { start, end })
    } else if end > keyspace {
        Err(RangeError::BeyondKeyspace {
            start,
            end,
            keyspace,
        })
    } else {
        Ok(())
    }
}

/// The units (blocks of `per_unit` consecutive candidates, see `search`) that cover
/// `candidates`: the crackers search whole units, the first and last maybe in part outside.
///
/// # Panics
/// If a unit's number does not fit a u64 (a keyspace no search ends).
pub(crate) fn covering_units(candidates: &Range<u128>, per_unit: u64) -> Range<u64> {
    let per_unit = u128::from(per_unit);
    let unit = |n: u128| u64::try_from(n).expect("a keyspace too large to search");
    unit(candidates.start / per_unit)..unit(candidates.end.div_ceil(per_unit))
}

/// The index of `password` among the candidates of its length from `symbols`: the inverse
/// of [`candidate`].
fn index_of(symbols: &[u8], password: &[u8]) -> u128 {
    let base = symbols.len() as u128;
    password.iter().rev().fold(0, |index, byte| {
        let digit = symbols
            .iter()
            .position(|s| s == byte)
            .expect("a charset symbol");
        index * base + digit as u128
    })
}

/// The password whose `hash` digest is `target` among `candidates` (numbered as [`candidate`]
/// numbers them) of the passwords of `length` characters from `charset`, searched **on the
/// calling thread alone** with the best [`Simd`]; `Ok(None)` when none of them is.
///
/// One thread, so that a range is a share of the work to hand to a thread: split a keyspace
/// into ranges and search them on threads of your own (rayon, scoped threads), beside the
/// GPU's share (`Gpu::crack_range`). [`crack`] searches a whole keyspace on every core.
///
/// # Errors
/// [`RangeError`] when `candidates` ends before it starts or goes past the keyspace.
///
/// # Panics
/// As [`crack`]: if `target` is not a `hash` digest, `length` is not in 1..=55, or the
/// keyspace is too large for any search to end (over 2⁶⁴ blocks of candidates).
///
/// ```
/// use parcours_gpu::passwords::*;
/// let lower = Charset::lowercase();
/// let dog = md5(b"dog"); // candidate 3 + 14·26 + 6·26² = 4423 (first character fastest)
/// assert_eq!(crack_range(FastHash::Md5, &dog, &lower, 3, 4000..5000), Ok(Some("dog".to_string())));
/// assert_eq!(crack_range(FastHash::Md5, &dog, &lower, 3, 0..4423), Ok(None));
/// assert_eq!(crack_range(FastHash::Md5, &dog, &lower, 3, 4424..17_576), Ok(None));
/// ```
pub fn crack_range(
    hash: FastHash,
    target: &[u8],
    charset: &Charset,
    length: usize,
    candidates: Range<u128>,
) -> Result<Option<String>, RangeError> {
    check_range(&candidates, keyspace(charset, length))?;
    if candidates.is_empty() {
        return Ok(None);
    }
    let search = Search::new(
        Target::new(hash, target),
        charset,
        length,
        Simd::best(),
        Work::Shortcuts,
    );
    let units = covering_units(&candidates, search.candidates_per_unit());
    // A find outside the range, in the first or last unit, is the target's only candidate (no
    // two short passwords are known to share an MD5 or SHA-256 digest): the range holds none.
    let found = search
        .run_here(units)
        .filter(|password| candidates.contains(&index_of(charset.symbols(), password)));
    Ok(found.map(|password| String::from_utf8(password).expect("charsets are ASCII")))
}

/// How much of the hash the CPU cracker computes per candidate.
///
/// MD5's last 15 steps read no part of the message that changes between the candidates of a
/// scan, and SHA-256's digest gives away the `a` of round 56: the cracker runs the target
/// backwards once and stops each candidate early (the source explains both). A GPU kernel
/// that hashes each candidate in full does more work per candidate: compare it with
/// [`Work::EveryStep`], not with the shortcuts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Work {
    /// What the crackers do: MD5 stops after 45 of its 64 steps, SHA-256 after 57 of its 64
    /// rounds, and one word is compared (a match is then confirmed with the full hash).
    Shortcuts,
    /// Every step of the hash, and every word of the digest compared: what the course's GPU
    /// kernels do per candidate.
    EveryStep,
}

impl fmt::Display for Work {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Work::Shortcuts => "with shortcuts",
            Work::EveryStep => "every step",
        })
    }
}

/// The keyspace the rates are measured on, the CPU's ([`hash_rate`]) and the GPU's
/// (`Gpu::hash_rate`): passwords of 8 letters or digits.
pub(crate) fn rate_keyspace() -> (Charset, usize) {
    (Charset::alphanumeric(), 8)
}

/// How many `hash` digests per second the cracker tests with `simd` on all of rayon's
/// threads, over about `duration`. Every candidate counted was tested (against a digest no
/// candidate has, among passwords of 8 letters or digits), and the kernels take the same
/// shortcuts as when cracking: [`hash_rate_doing`] measures them without.
///
/// Run it inside a one-thread pool for the rate of one core:
///
/// ```
/// use std::time::Duration;
/// use parcours_gpu::passwords::*;
/// let pool = parcours::rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
/// let duration = Duration::from_millis(50);
/// let one_core = pool.install(|| hash_rate(FastHash::Md5, Simd::best(), duration));
/// let scalar = pool.install(|| hash_rate(FastHash::Md5, Simd::Scalar, duration));
/// assert!(one_core > 1e6 && scalar > 1e6, "{one_core} {scalar}");
/// ```
pub fn hash_rate(hash: FastHash, simd: Simd, duration: Duration) -> f64 {
    hash_rate_doing(Work::Shortcuts, hash, simd, duration)
}

/// [`hash_rate`], doing `work` per candidate: [`Work::EveryStep`] for the rate to compare
/// with a hasher that takes no shortcut, such as the course's GPU kernels.
///
/// ```
/// use std::time::Duration;
/// use parcours_gpu::passwords::*;
/// let duration = Duration::from_millis(50);
/// let every_step = hash_rate_doing(Work::EveryStep, FastHash::Sha256, Simd::best(), duration);
/// assert!(every_step > 1e5, "{every_step}");
/// ```
pub fn hash_rate_doing(work: Work, hash: FastHash, simd: Simd, duration: Duration) -> f64 {
    // Eight letters or digits: more candidates than any measurement can try. The target is
    // a digest of zeros, which no candidate is known to hash to.
    let target = vec![0u8; hash.digest_len()];
    let (charset, length) = rate_keyspace();
    let search = Search::new(Target::new(hash, &target), &charset, length, simd, work);
    let per_unit = search.candidates_per_unit();
    // Calibrate on growing batches, then run one batch sized to last `duration`.
    let mut units = 1;
    let mut next = 0;
    let seconds = loop {
        let start = Instant::now();
        black_box(search.run(next..next + units));
        next += units;
        let seconds = start.elapsed().as_secs_f64();
        if seconds >= duration.as_secs_f64() / 8.0 {
            break seconds;
        }
        units *= 2;
    };
    let units = ((units as f64 * duration.as_secs_f64() / seconds) as u64).max(1);
    let start = Instant::now();
    black_box(search.run(next..next + units));
    (units * per_unit) as f64 / start.elapsed().as_secs_f64()
}

/// MD5 digests per second on all of rayon's threads with the best [`Simd`], over about
/// `duration`: [`hash_rate`].
pub fn md5_rate(duration: Duration) -> f64 {
    hash_rate(FastHash::Md5, Simd::best(), duration)
}

/// SHA-256 digests per second on all of rayon's threads with the best [`Simd`], over about
/// `duration`: [`hash_rate`].
pub fn sha256_rate(duration: Duration) -> f64 {
    hash_rate(FastHash::Sha256, Simd::best(), duration)
}

/// A salt for the slow hashes' measurements: any fixed 16 bytes do.
const SALT: [u8; 16] = *b"parcours-salt-16";

/// bcrypt hashes per second at `cost` (each hash runs 2^`cost` rounds of Blowfish's key
/// setup: one more is twice as slow), timing `hashes` hashes on rayon's threads. Cost 10 to
/// 12 is the usual advice.
///
/// # Panics
/// If `cost` is not in 4..=31.
///
/// ```
/// let fast = parcours_gpu::passwords::bcrypt_rate(4, 8);
/// let slow = parcours_gpu::passwords::bcrypt_rate(6, 8);
/// assert!(slow < fast, "{slow} {fast}");
/// ```
pub fn bcrypt_rate(cost: u32, hashes: usize) -> f64 {
    assert!(
        (4..=31).contains(&cost),
        "bcrypt's cost is 4 to 31, not {cost}"
    );
    rate(hashes, |password| {
        black_box(bcrypt::hash_with_salt(password, cost, SALT).expect("a valid cost"));
    })
}

/// Argon2id hashes per second with the `argon2` crate's defaults (19 MiB of memory, 2 passes,
/// 1 lane: OWASP's advice), timing `hashes` hashes on rayon's threads. Each hash fills and
/// reads its memory: a GPU's thousands of cores share too little of it to help much.
///
/// ```
/// let rate = parcours_gpu::passwords::argon2_rate(2);
/// assert!(rate > 0.1 && rate < 1e4, "{rate}");
/// ```
pub fn argon2_rate(hashes: usize) -> f64 {
    let argon2 = argon2::Argon2::default();
    rate(hashes, |password| {
        let mut digest = [0u8; 32];
        argon2
            .hash_password_into(password, &SALT, &mut digest)
            .expect("default parameters are valid");
        black_box(digest);
    })
}

/// Hashes per second of `hash`, run on `hashes` different passwords on rayon's threads.
fn rate(hashes: usize, hash: impl Fn(&[u8]) + Sync) -> f64 {
    let start = Instant::now();
    (0..hashes).into_par_iter().for_each(|i| {
        hash(format!("password{i}").as_bytes());
    });
    hashes as f64 / start.elapsed().as_secs_f64()
}

#[cfg(test)]
mod tests {
    use super::lanes::{Lanes, splat_each};
    use super::search::{MAX_LENGTH, Target, block_words};
    use super::*;

    /// A small deterministic generator (xorshift64*): tests need varied inputs, not secrets.
    struct Random(u64);

    impl Random {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        fn bytes(&mut self, length: usize) -> Vec<u8> {
            (0..length).map(|_| self.next() as u8).collect()
        }
    }

    /// Whether lanes `L`, hashing the first `L::WIDTH` messages side by side, get the
    /// reference crates' digests.
    #[inline(always)]
    fn lanes_match_references<L: Lanes>(proof: L::Proof, messages: &[Vec<u8>]) -> bool {
        let messages = &messages[..L::WIDTH];
        let every_lane = u64::MAX >> (64 - L::WIDTH);
        // Word `w` of every row, one per lane.
        let column = |rows: &[Vec<u32>], w: usize| {
            let words: Vec<u32> = rows.iter().map(|row| row[w]).collect();
            L::load(proof, &words)
        };
        let mut all_match = true;
        for hash in [FastHash::Md5, FastHash::Sha256] {
            let blocks: Vec<Vec<u32>> = messages
                .iter()
                .map(|m| block_words(hash, m).to_vec())
                .collect();
            let digests: Vec<Vec<u32>> = messages
                .iter()
                .map(|m| match Target::new(hash, &hash.digest(m)) {
                    Target::Md5(words) => words.to_vec(),
                    Target::Sha256(words) => words.to_vec(),
                })
                .collect();
            let mut words = [L::splat(proof, 0); 16];
            for (w, lanes) in words.iter_mut().enumerate() {
                *lanes = column(&blocks, w);
            }
            let state = match hash {
                FastHash::Md5 => md5::compress(splat_each(proof, &md5::IV), &words).to_vec(),
                FastHash::Sha256 => {
                    sha256::compress(splat_each(proof, &sha256::IV), &words).to_vec()
                }
            };
            for (w, lanes) in state.into_iter().enumerate() {
                all_match &= lanes.equal_lanes(column(&digests, w)) == every_lane;
            }
        }
        all_match
    }

    /// [`lanes_match_references`] for each x86-64 kernel's lanes, compiled for their
    /// instructions as the kernels are.
    #[cfg(target_arch = "x86_64")]
    mod x86 {
        use super::super::lanes::{
            Pair,
            x86::{Avx2, Avx512, HasAvx2, HasAvx512, Sse2},
        };
        use super::*;

        pub(super) fn sse2(messages: &[Vec<u8>]) -> bool {
            lanes_match_references::<Sse2>((), messages)
                && lanes_match_references::<Pair<Sse2>>((), messages)
        }

        pub(super) fn avx2(proof: HasAvx2, messages: &[Vec<u8>]) -> bool {
            #[target_feature(enable = "avx2")]
            fn compiled(proof: HasAvx2, messages: &[Vec<u8>]) -> bool {
                lanes_match_references::<Avx2>(proof, messages)
                    && lanes_match_references::<Pair<Avx2>>(proof, messages)
            }
            // SAFETY: `proof` shows that the processor has AVX2.
            unsafe { compiled(proof, messages) }
        }

        pub(super) fn avx512(proof: HasAvx512, messages: &[Vec<u8>]) -> bool {
            #[target_feature(enable = "avx512f")]
            fn compiled(proof: HasAvx512, messages: &[Vec<u8>]) -> bool {
                lanes_match_references::<Avx512>(proof, messages)
                    && lanes_match_references::<Pair<Avx512>>(proof, messages)
            }
            // SAFETY: `proof` shows that the processor has AVX-512F.
            unsafe { compiled(proof, messages) }
        }
    }

    #[test]
    fn every_lane_type_agrees_with_the_reference_crates() {
        let mut random = Random(7);
        for round in 0..4 {
            // 32 messages a round, of every length from 0 to 55.
            let messages: Vec<Vec<u8>> = (0..32)
                .map(|i| random.bytes((round * 32 + i) % (MAX_LENGTH + 1)))
                .collect();
            assert!(lanes_match_references::<[u32; 1]>((), &messages), "scalar");
            assert!(lanes_match_references::<[u32; 32]>((), &messages), "arrays");
            #[cfg(target_arch = "x86_64")]
            {
                use super::lanes::x86::{HasAvx2, HasAvx512};
                assert!(x86::sse2(&messages), "SSE2");
                if let Some(proof) = HasAvx2::detect() {
                    assert!(x86::avx2(proof, &messages), "AVX2");
                }
                if let Some(proof) = HasAvx512::detect() {
                    assert!(x86::avx512(proof, &messages), "AVX-512");
                }
            }
        }
    }

    #[test]
    fn every_kernel_finds_passwords_of_every_length() {
        let mut random = Random(42);
        for charset in [
            Charset::digits(),
            Charset::lowercase(),
            Charset::custom("ab", "ab"),
        ] {
            for length in 1..=4 {
                let index = random.next() as u128 % keyspace(&charset, length);
                let password = candidate(&charset, length, index);
                for hash in [FastHash::Md5, FastHash::Sha256] {
                    let digest = hash.digest(password.as_bytes());
                    for simd in Simd::available() {
                        for work in [Work::Shortcuts, Work::EveryStep] {
                            let found = crack_doing(work, hash, simd, &digest, &charset, length);
                            assert_eq!(
                                found.as_ref(),
                                Some(&password),
                                "{hash} {simd} {work} {charset}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn candidates_beyond_the_table_are_found() {
        // Long enough that the search runs several units, chunks and outer words.
        let charset = Charset::custom("abc", "abc");
        for password in ["cabbac", "ccccccc", "abcabcab"] {
            let length = password.len();
            assert_eq!(
                crack_md5(md5(password.as_bytes()), &charset, length).as_deref(),
                Some(password)
            );
            assert_eq!(
                crack_sha256(sha256(password.as_bytes()), &charset, length).as_deref(),
                Some(password)
            );
        }
    }

    #[test]
    fn every_step_finds_candidates_beyond_the_table() {
        let charset = Charset::custom("abc", "abc");
        for password in ["cabbac", "abcabcab"] {
            for hash in [FastHash::Md5, FastHash::Sha256] {
                let digest = hash.digest(password.as_bytes());
                let found = crack_doing(
                    Work::EveryStep,
                    hash,
                    Simd::best(),
                    &digest,
                    &charset,
                    password.len(),
                );
                assert_eq!(found.as_deref(), Some(password), "{hash}");
            }
        }
    }

    #[test]
    fn absent_passwords_are_not_found() {
        let lower = Charset::lowercase();
        for simd in Simd::available() {
            for work in [Work::Shortcuts, Work::EveryStep] {
                let md5_of_another = md5(b"Abc");
                let found = crack_doing(work, FastHash::Md5, simd, &md5_of_another, &lower, 3);
                assert_eq!(found, None, "{simd} {work}");
                let sha256_of_another = sha256(b"abcd");
                let found =
                    crack_doing(work, FastHash::Sha256, simd, &sha256_of_another, &lower, 3);
                assert_eq!(found, None, "{simd} {work}");
            }
        }
    }

    #[test]
    fn every_step_is_slower_than_the_shortcuts() {
        // 64 steps against 45 for MD5: about 0.7 of the rate. Each the best of seven runs,
        // alternated, on one thread: a shared machine slows some runs, rarely all seven.
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        let rate = |work| {
            let duration = Duration::from_millis(30);
            pool.install(|| hash_rate_doing(work, FastHash::Md5, Simd::best(), duration))
        };
        let (mut shortcuts, mut every_step) = (0.0f64, 0.0f64);
        for _ in 0..7 {
            shortcuts = shortcuts.max(rate(Work::Shortcuts));
            every_step = every_step.max(rate(Work::EveryStep));
        }
        assert!(
            every_step < 0.9 * shortcuts,
            "every step {every_step:.3e} H/s, shortcuts {shortcuts:.3e} H/s"
        );
    }

    #[test]
    fn ranges_find_the_password_in_one_share_only() {
        // "abc" × 6: a table of 81, 9 units; digits × 5: a table of 1000, 100 units. Shares
        // cut units anywhere, and every cut of the keyspace finds the password exactly once.
        for (charset, length) in [(Charset::custom("abc", "abc"), 6), (Charset::digits(), 5)] {
            let keyspace = keyspace(&charset, length);
            for index in [0, 1, 80, 81, keyspace / 3, keyspace - 1] {
                let password = candidate(&charset, length, index);
                assert_eq!(index_of(charset.symbols(), password.as_bytes()), index);
                for hash in [FastHash::Md5, FastHash::Sha256] {
                    let digest = hash.digest(password.as_bytes());
                    let crack =
                        |range| crack_range(hash, &digest, &charset, length, range).unwrap();
                    assert_eq!(crack(index..index + 1).as_ref(), Some(&password));
                    assert_eq!(crack(0..index), None, "{hash} {password}");
                    assert_eq!(crack(index + 1..keyspace), None, "{hash} {password}");
                    assert_eq!(crack(index..index), None, "{hash} {password}");
                    for shares in [3, 7, 64] {
                        let cut = |s: u128| keyspace * s / shares;
                        let found: Vec<String> = (0..shares)
                            .filter_map(|s| crack(cut(s)..cut(s + 1)))
                            .collect();
                        assert_eq!(
                            found,
                            std::slice::from_ref(&password),
                            "{hash} in {shares} shares"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn ranges_outside_the_keyspace_are_refused() {
        let digits = Charset::digits();
        let digest = md5(b"123");
        let crack = |range| crack_range(FastHash::Md5, &digest, &digits, 3, range);
        assert_eq!(crack(0..1000), Ok(Some("123".to_string())));
        assert_eq!(
            crack(999..1001),
            Err(RangeError::BeyondKeyspace {
                start: 999,
                end: 1001,
                keyspace: 1000
            })
        );
        #[allow(clippy::reversed_empty_ranges)]
        let reversed = crack(500..400);
        assert_eq!(
            reversed,
            Err(RangeError::Reversed {
                start: 500,
                end: 400
            })
        );
        assert_eq!(
            reversed.unwrap_err().to_string(),
            "candidates 500..400 end before they start"
        );
    }

    #[test]
    fn candidates_are_a_bijection() {
        let charset = Charset::custom("abc", "abc");
        let all: std::collections::HashSet<String> =
            (0..27).map(|i| candidate(&charset, 3, i)).collect();
        assert_eq!(all.len(), 27);
        assert!(
            all.iter()
                .all(|c| c.len() == 3 && c.bytes().all(|b| b"abc".contains(&b)))
        );
    }

    #[test]
    #[should_panic(expected = "candidate 27 of a keyspace of 27")]
    fn candidates_stop_at_the_keyspace() {
        candidate(&Charset::custom("abc", "abc"), 3, 27);
    }

    #[test]
    fn keyspace_figures() {
        assert_eq!(keyspace(&Charset::lowercase(), 0), 1);
        assert_eq!(keyspace(&Charset::lower_digits(), 6), 36u128.pow(6));
        assert_eq!(keyspace_up_to(&Charset::lowercase(), 2), 26 + 26 * 26);
        assert_eq!(keyspace_up_to(&Charset::printable(), 100), u128::MAX);
        assert!((entropy_bits(&Charset::printable(), 12) - 78.84).abs() < 0.01);
        let policy = Policy::new("x", Charset::lowercase(), 8);
        assert_eq!(
            worst_time_to_crack(&policy, 1e9),
            2 * time_to_crack(&policy, 1e9)
        );
        assert_eq!(time_to_crack(&Policy::typical()[6], 1.0), Duration::MAX);
    }

    #[test]
    fn long_durations_read_well() {
        assert_eq!(format_seconds(90.0), "1.50 minutes");
        assert_eq!(format_seconds(400.0 * 86_400.0), "1.10 years");
        assert_eq!(format_seconds(3.2e6 * 3.15576e7), "3.20 million years");
        assert_eq!(format_seconds(2e9 * 3.15576e7), "2.00 billion years");
        assert_eq!(format_seconds(1e30), "2.3e12 × the age of the universe");
        assert_eq!(format_seconds(f64::INFINITY), "forever");
    }

    #[test]
    fn hex_round_trips() {
        let digest = sha256(b"hex");
        assert_eq!(from_hex::<32>(&to_hex(&digest)), digest);
    }

    #[test]
    fn slow_hashes_have_a_rate() {
        let rate = bcrypt_rate(4, 4);
        assert!(rate > 10.0, "{rate}");
    }
}
