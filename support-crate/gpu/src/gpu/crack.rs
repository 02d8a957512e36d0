//! Brute force of MD5 and SHA-256 on the GPU: one candidate password per invocation, built as
//! the CPU cracker builds its candidates (`passwords::search`).
//!
//! A candidate's first characters vary fastest. The first `p` of them are a *table* of their
//! contributions to the block's word 0, uploaded once; the other characters make a *unit*,
//! the block with the first `p` characters left zero. A dispatch covers a batch of units:
//! invocation `(x, y)` hashes unit `y`'s block with `table[x]` added to its word 0. So no
//! invocation divides to find its candidate (on lavapipe, a division per character cost more
//! than the hash), and the GPU and the CPU do the same work per candidate but for the hash
//! itself, where the GPU takes none of the CPU's shortcuts: every step, every digest word.

use std::ops::Range;
use std::time::{Duration, Instant};

use super::{Gpu, GpuError, Timed, Workgroups};
use crate::passwords::{self, Charset, FastHash};

fn source(kind: FastHash) -> &'static str {
    match kind {
        FastHash::Md5 => super::sources::MD5_CRACK,
        FastHash::Sha256 => super::sources::SHA256_CRACK,
    }
}

/// Four bytes as a block word: MD5 is little-endian, SHA-256 big-endian.
fn word(kind: FastHash, bytes: [u8; 4]) -> u32 {
    match kind {
        FastHash::Md5 => u32::from_le_bytes(bytes),
        FastHash::Sha256 => u32::from_be_bytes(bytes),
    }
}

/// The digest as the kernel compares it, in the hash's word order.
fn words(kind: FastHash, digest: &[u8]) -> Vec<u32> {
    digest
        .chunks(4)
        .map(|w| word(kind, [w[0], w[1], w[2], w[3]]))
        .collect()
}

/// The longest password one message block holds (the kernels hash a single block).
pub const MAX_LENGTH: usize = 55;

/// The table's smallest size: 16 workgroups wide, so that the last one's idle invocations
/// waste little.
const MIN_TABLE: u64 = 4096;

/// Invocations per workgroup, along x (the kernels' `@workgroup_size`).
const WORKGROUP: u64 = 256;

/// The largest batch in units: a dispatch has at most 65 535 workgroups along y.
const MAX_UNITS: u64 = 65_535;

impl Gpu {
    /// Tries every password of exactly `length` characters from `charset` until one hashes to
    /// `digest`; returns it, or `None` when the keyspace holds none.
    ///
    /// ```
    /// use parcours_gpu::passwords::FastHash;
    /// let gpu = parcours_gpu::gpu::gpu().unwrap();
    /// // MD5("abc")
    /// let digest = [0x90, 0x01, 0x50, 0x98, 0x3c, 0xd2, 0x4f, 0xb0, 0xd6, 0x96, 0x3f, 0x7d,
    ///               0x28, 0xe1, 0x7f, 0x72];
    /// let found = gpu.crack(FastHash::Md5, &digest, "abcdefghijklmnopqrstuvwxyz", 3).unwrap();
    /// assert_eq!(found.value.as_deref(), Some("abc"));
    /// ```
    pub fn crack(
        &self,
        kind: FastHash,
        digest: &[u8],
        charset: &str,
        length: usize,
    ) -> Result<Timed<Option<String>>, GpuError> {
        Ok(self.search(kind, digest, charset, length, u64::MAX)?.0)
    }

    /// [`Gpu::crack`] over a share of the keyspace: tries the candidates numbered
    /// `candidates` (as [`passwords::candidate`] numbers them, first character fastest) of
    /// `length` characters from `charset`; returns the one that hashes to `digest`, or `None`
    /// when none of them does. The CPU's counterpart is [`passwords::crack_range`]: give the
    /// GPU a share and the CPU's threads the rest, and both search at once.
    ///
    /// # Errors
    /// [`GpuError::Range`] when `candidates` ends before it starts or goes past the keyspace
    /// (nothing is searched); the GPU's errors as [`Gpu::crack`].
    ///
    /// # Panics
    /// As [`Gpu::crack`]: if `digest` is not a `kind` digest, or `length` is not in 1..=55.
    ///
    /// ```
    /// use parcours_gpu::passwords::{self, Charset, FastHash};
    /// let gpu = parcours_gpu::gpu::gpu().unwrap();
    /// let lower = Charset::lowercase();
    /// let dog = passwords::md5(b"dog"); // candidate 3 + 14·26 + 6·26² = 4423
    /// let found = gpu.crack_range(FastHash::Md5, &dog, &lower, 3, 4000..5000).unwrap();
    /// assert_eq!(found.value.as_deref(), Some("dog"));
    /// let missed = gpu.crack_range(FastHash::Md5, &dog, &lower, 3, 0..4423).unwrap();
    /// assert_eq!(missed.value, None);
    /// assert!(gpu.crack_range(FastHash::Md5, &dog, &lower, 3, 0..20_000).is_err());
    /// ```
    pub fn crack_range(
        &self,
        kind: FastHash,
        digest: &[u8],
        charset: &Charset,
        length: usize,
        candidates: Range<u128>,
    ) -> Result<Timed<Option<String>>, GpuError> {
        passwords::check_range(&candidates, passwords::keyspace(charset, length))?;
        let plan = Plan::new(kind, digest, charset, length);
        if candidates.is_empty() {
            // Else the unit around `start` would be searched for nothing.
            let nothing = Timed {
                value: None,
                upload: Duration::ZERO,
                kernel: Duration::ZERO,
                download: Duration::ZERO,
            };
            return Ok(nothing);
        }
        let units = passwords::covering_units(&candidates, plan.table_len);
        let (timed, _) = self.search_units(&plan, units)?;
        // A hit outside the range, in the first or last unit, is the digest's only candidate
        // (no two short passwords are known to share an MD5 or SHA-256 digest): none inside.
        Ok(timed.map(|hit| {
            hit.filter(|index| candidates.contains(index))
                .map(|index| passwords::candidate(charset, length, index))
        }))
    }

    /// Hashes per second on this GPU: tries at least `candidates` passwords of 8 letters or
    /// digits against a digest none of them has, kernel time only.
    ///
    /// The keyspace and the way candidates are built are those of [`passwords::hash_rate`],
    /// but not the hash: each candidate is hashed in full, every step, every word of the
    /// digest compared. The CPU rate to compare with is [`passwords::hash_rate_doing`] with
    /// [`passwords::Work::EveryStep`].
    ///
    /// # Panics
    /// If `candidates` is 0.
    pub fn hash_rate(&self, kind: FastHash, candidates: u64) -> Result<f64, GpuError> {
        assert!(candidates > 0, "hash_rate: try at least one candidate");
        let digest = vec![0u8; kind.digest_len()];
        let (charset, length) = passwords::rate_keyspace();
        let symbols = std::str::from_utf8(charset.symbols()).expect("charsets are ASCII");
        let (timed, tried) = self.search(kind, &digest, symbols, length, candidates)?;
        Ok(tried as f64 / timed.kernel.as_secs_f64())
    }

    /// Searches the passwords of `length` characters from `charset` for one that hashes to
    /// `digest`, stopping after about `limit` candidates (whole units); returns it and how
    /// many candidates were tried.
    fn search(
        &self,
        kind: FastHash,
        digest: &[u8],
        charset: &str,
        length: usize,
        limit: u64,
    ) -> Result<(Timed<Option<String>>, u64), GpuError> {
        assert!(
            !charset.is_empty() && charset.len() <= 256 && charset.is_ascii(),
            "crack: the charset must be 1 to 256 ASCII characters"
        );
        // Checks the charset (no symbol twice) as the CPU cracker does.
        let symbols = Charset::custom("searched", charset);
        let plan = Plan::new(kind, digest, &symbols, length);
        let units = plan.units.min(limit.div_ceil(plan.table_len));
        let (timed, tried) = self.search_units(&plan, 0..units)?;
        let timed = timed.map(|hit| hit.map(|index| passwords::candidate(&symbols, length, index)));
        Ok((timed, tried))
    }

    /// Searches `units` of `plan`'s keyspace in batches of growing size, until one holds the
    /// digest; returns the index of the candidate found and how many candidates were tried.
    fn search_units(
        &self,
        plan: &Plan,
        units: Range<u64>,
    ) -> Result<(Timed<Option<u128>>, u64), GpuError> {
        let (kind, length, table_len) = (plan.kind, plan.length, plan.table_len);
        let (symbols, table_characters) = (plan.symbols.symbols(), plan.table_characters);
        let kernel = self.compile(source(kind))?;
        // A batch's candidate index, `unit * table_len + x`, must fit a u32.
        let max_units = MAX_UNITS.min(u64::from(u32::MAX) / table_len);

        let started = Instant::now();
        let table = self.upload(&plan.table);
        let found = self.zeros::<u32>(1);
        let mut parameters = words(kind, &plan.digest);
        parameters.extend([table_len as u32, 0, 0, 0]);
        let count_at = parameters.len() - 3;
        // The characters after the table's, as digits and as the password's bytes (the
        // table's characters left zero): an odometer, first character fastest, set to the
        // first unit.
        let mut digits = vec![0usize; length];
        let mut unit = units.start;
        for digit in &mut digits[table_characters..] {
            *digit = (unit % symbols.len() as u64) as usize;
            unit /= symbols.len() as u64;
        }
        let mut password = vec![0u8; length];
        for (byte, &digit) in password.iter_mut().zip(&digits).skip(table_characters) {
            *byte = symbols[digit];
        }
        let mut upload = started.elapsed();
        let (mut done, mut batch, mut busy) = (0u64, 1u64, Duration::ZERO);
        let total = units.end.saturating_sub(units.start);
        while done < total {
            let count = batch.min(total - done);
            let started = Instant::now();
            let mut blocks = Vec::with_capacity(16 * count as usize);
            for _ in 0..count {
                blocks.extend(passwords::block_words(kind, &password));
                for position in table_characters..length {
                    digits[position] += 1;
                    if digits[position] < symbols.len() {
                        password[position] = symbols[digits[position]];
                        break;
                    }
                    digits[position] = 0;
                    password[position] = symbols[0];
                }
            }
            parameters[count_at] = count as u32;
            let parameters_buffer = self.upload(&parameters);
            let blocks = self.upload(&blocks);
            self.write(&found, &[u32::MAX]);
            upload += started.elapsed();
            let time = self.dispatch(
                &kernel,
                &[&parameters_buffer, &table, &blocks, &found],
                Workgroups([table_len.div_ceil(WORKGROUP) as u32, count as u32, 1]),
            )?;
            busy += time;
            let started = Instant::now();
            let hit = self.download(&found)?[0];
            upload += started.elapsed();
            if hit != u32::MAX {
                let first = u128::from(units.start + done) * u128::from(table_len);
                let timed = Timed {
                    value: Some(first + u128::from(hit)),
                    upload,
                    kernel: busy,
                    download: Duration::ZERO,
                };
                return Ok((timed, (done + count) * table_len));
            }
            done += count;
            // Grow batches to about 50 ms each: few submissions, yet an early stop when found.
            if time < Duration::from_millis(50) {
                batch = (batch * 2).min(max_units);
            }
        }
        let timed = Timed {
            value: None,
            upload,
            kernel: busy,
            download: Duration::ZERO,
        };
        Ok((timed, done * table_len))
    }
}

/// What a search of one keyspace uploads once: the digest and the table of first characters.
struct Plan {
    kind: FastHash,
    digest: Vec<u8>,
    symbols: Charset,
    length: usize,
    /// How many first characters the table covers.
    table_characters: usize,
    /// Their contributions to word 0.
    table: Vec<u32>,
    table_len: u64,
    /// How many units the keyspace has (`u64::MAX` when more).
    units: u64,
}

impl Plan {
    /// # Panics
    /// If `digest` is not a `kind` digest, or `length` is not in 1..=55.
    fn new(kind: FastHash, digest: &[u8], symbols: &Charset, length: usize) -> Plan {
        assert_eq!(
            digest.len(),
            kind.digest_len(),
            "crack: a {kind:?} digest has {} bytes",
            kind.digest_len()
        );
        assert!(
            (1..=MAX_LENGTH).contains(&length),
            "crack: length must be 1..={MAX_LENGTH}"
        );
        let base = symbols.size() as u64;
        // The first characters in the table: enough for MIN_TABLE entries, at most four
        // (they must fit word 0), at most the password.
        let table_characters = (1..=length.min(4))
            .find(|&p| base.pow(p as u32) >= MIN_TABLE)
            .unwrap_or(length.min(4));
        let table_len = base.pow(table_characters as u32);
        let table: Vec<u32> = (0..table_len)
            .map(|q| {
                let prefix = passwords::candidate(symbols, table_characters, q.into());
                let mut bytes = [0u8; 4];
                bytes[..table_characters].copy_from_slice(prefix.as_bytes());
                word(kind, bytes)
            })
            .collect();
        let units = base
            .checked_pow((length - table_characters) as u32)
            .unwrap_or(u64::MAX);
        Plan {
            kind,
            digest: digest.to_vec(),
            symbols: symbols.clone(),
            length,
            table_characters,
            table,
            table_len,
            units,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Digests from the reference tools (`printf %s ... | md5sum`, `sha256sum`).
    const MD5_ZZ9: &str = "e0df37ad690a0effed4b5accbe85f047";

    #[test]
    fn md5_finds_a_password_at_the_end_of_its_keyspace() {
        let gpu = crate::gpu::gpu().unwrap();
        let found = gpu
            .crack(
                FastHash::Md5,
                &passwords::from_hex::<16>(MD5_ZZ9),
                "abcdefghijklmnopqrstuvwxyz0123456789",
                3,
            )
            .unwrap();
        assert_eq!(found.value.as_deref(), Some("zz9"));
    }

    #[test]
    fn finds_every_password_whatever_its_units_and_batches() {
        // "abc": a table of at most 81 entries, so passwords of 5 to 7 characters span many
        // units and several batches; digits: a table of 10 000, two workgroups' worth of
        // idle invocations at its end. First, last and in-between candidates, both hashes.
        let gpu = crate::gpu::gpu().unwrap();
        let cases = [
            ("abc", "a"),
            ("abc", "cb"),
            ("abc", "cccc"),
            ("abc", "aaaaa"),
            ("abc", "bcacab"),
            ("abc", "ccccccc"),
            ("abc", "abcabca"),
            ("0123456789", "999999"),
            ("0123456789", "000001"),
            ("0123456789", "314159"),
        ];
        for (charset, password) in cases {
            for kind in [FastHash::Md5, FastHash::Sha256] {
                let digest = kind.digest(password.as_bytes());
                let found = gpu.crack(kind, &digest, charset, password.len()).unwrap();
                assert_eq!(found.value.as_deref(), Some(password), "{kind:?}");
            }
        }
    }

    #[test]
    fn the_rate_counts_the_candidates_tried() {
        let gpu = crate::gpu::gpu().unwrap();
        let digest = [0u8; 16];
        // 62 symbols: a table of 62³ = 238 328 entries; 10 units asked for, 10 units tried.
        let (charset, length) = passwords::rate_keyspace();
        let symbols = std::str::from_utf8(charset.symbols()).unwrap();
        let asked = 10 * 62u64.pow(3) - 5;
        let (timed, tried) = gpu
            .search(FastHash::Md5, &digest, symbols, length, asked)
            .unwrap();
        assert_eq!(timed.value, None);
        assert_eq!(tried, 10 * 62u64.pow(3));
    }

    #[test]
    fn a_range_finds_what_it_holds_and_nothing_else() {
        // Lowercase, 4 characters: a table of 26³ = 17 576 candidates, 26 units. Ranges cut
        // units anywhere; each partition of the keyspace finds the password in one range only.
        let gpu = crate::gpu::gpu().unwrap();
        let lower = Charset::lowercase();
        let keyspace = passwords::keyspace(&lower, 4);
        let unit = 26u128.pow(3);
        for index in [0, 1, unit - 1, unit, 5 * unit + 4321, keyspace - 1] {
            let password = passwords::candidate(&lower, 4, index);
            for kind in [FastHash::Md5, FastHash::Sha256] {
                let digest = kind.digest(password.as_bytes());
                let crack = |range: Range<u128>| {
                    gpu.crack_range(kind, &digest, &lower, 4, range.clone())
                        .unwrap()
                        .value
                };
                assert_eq!(crack(index..index + 1).as_deref(), Some(&*password));
                assert_eq!(crack(0..index), None, "{password} before itself");
                assert_eq!(crack(index + 1..keyspace), None, "{password} after itself");
                for cuts in [[index / 2, index, index + 1], [7, unit + 3, keyspace - 5]] {
                    let bounds: Vec<u128> = [0].into_iter().chain(cuts).chain([keyspace]).collect();
                    let finds: Vec<Option<String>> = bounds
                        .windows(2)
                        .filter(|w| w[0] <= w[1])
                        .map(|w| crack(w[0]..w[1]))
                        .collect();
                    let found: Vec<&String> = finds.iter().flatten().collect();
                    assert_eq!(found, [&password], "{kind:?} cut at {cuts:?}");
                }
            }
        }
    }

    #[test]
    fn a_range_agrees_with_the_cpus() {
        // Digits, 6 characters: a table of 10 000, 100 units, several batches.
        let gpu = crate::gpu::gpu().unwrap();
        let digits = Charset::digits();
        let digest = passwords::sha256(b"271828");
        for range in [
            0..271_828,
            271_828..271_829,
            200_000..300_000,
            271_829..1_000_000,
        ] {
            let on_gpu = gpu
                .crack_range(FastHash::Sha256, &digest, &digits, 6, range.clone())
                .unwrap()
                .value;
            let on_cpu =
                passwords::crack_range(FastHash::Sha256, &digest, &digits, 6, range.clone());
            assert_eq!(Ok(on_gpu), on_cpu, "{range:?}");
        }
    }

    #[test]
    fn a_range_outside_the_keyspace_is_an_error_and_an_empty_one_finds_nothing() {
        use passwords::RangeError;
        let gpu = crate::gpu::gpu().unwrap();
        let digits = Charset::digits();
        let digest = passwords::md5(b"42");
        let beyond = gpu.crack_range(FastHash::Md5, &digest, &digits, 2, 50..101);
        assert!(
            matches!(
                beyond,
                Err(GpuError::Range(RangeError::BeyondKeyspace {
                    start: 50,
                    end: 101,
                    keyspace: 100
                }))
            ),
            "{beyond:?}"
        );
        #[allow(clippy::reversed_empty_ranges)]
        let reversed = gpu.crack_range(FastHash::Md5, &digest, &digits, 2, 60..40);
        assert!(
            matches!(
                reversed,
                Err(GpuError::Range(RangeError::Reversed { start: 60, end: 40 }))
            ),
            "{reversed:?}"
        );
        let before = crate::gpu::dispatches();
        let empty = gpu.crack_range(FastHash::Md5, &digest, &digits, 2, 42..42);
        assert_eq!(empty.unwrap().value, None);
        let found = gpu.crack_range(FastHash::Md5, &digest, &digits, 2, 0..100);
        assert_eq!(found.unwrap().value.as_deref(), Some("42"));
        // Other tests may dispatch meanwhile: at least the one search's.
        assert!(crate::gpu::dispatches() > before);
    }

    #[test]
    fn sha256_finds_a_password_and_misses_an_absent_one() {
        let gpu = crate::gpu::gpu().unwrap();
        // sha256("gpu")
        let digest = passwords::from_hex::<32>(
            "e3c5ba51dba85ab0c990db5e309f4d7bdb282470fb02aee75b9022c1399e91c8",
        );
        let lowercase = "abcdefghijklmnopqrstuvwxyz";
        let absent = gpu.crack(FastHash::Sha256, &digest, lowercase, 2).unwrap();
        assert_eq!(absent.value, None);
        let found = gpu.crack(FastHash::Sha256, &digest, lowercase, 3).unwrap();
        assert_eq!(found.value.as_deref(), Some("gpu"));
    }
}
