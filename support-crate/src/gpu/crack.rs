//! Brute force of MD5 and SHA-256 on the GPU: one candidate password per invocation.

use std::time::{Duration, Instant};

use super::{Gpu, GpuError, Timed, Workgroups};
use crate::passwords::{self, Charset, FastHash};

fn source(kind: FastHash) -> &'static str {
    match kind {
        FastHash::Md5 => super::sources::MD5_CRACK,
        FastHash::Sha256 => super::sources::SHA256_CRACK,
    }
}

/// The digest as the kernel compares it: MD5 is little-endian, SHA-256 big-endian.
fn words(kind: FastHash, digest: &[u8]) -> Vec<u32> {
    digest
        .chunks(4)
        .map(|w| {
            let word = [w[0], w[1], w[2], w[3]];
            match kind {
                FastHash::Md5 => u32::from_le_bytes(word),
                FastHash::Sha256 => u32::from_be_bytes(word),
            }
        })
        .collect()
}

/// The longest password one message block holds (the kernels hash a single block).
pub const MAX_LENGTH: usize = 55;

/// The most candidates one dispatch tries: keeps `first digit + id` within a `u32`.
const MAX_BATCH: u64 = 1 << 28;

impl Gpu {
    /// Tries every password of exactly `length` characters from `charset` until one hashes to
    /// `digest`; returns it, or `None` when the keyspace holds none.
    ///
    /// ```
    /// use parcours::passwords::FastHash;
    /// let gpu = parcours::gpu::gpu().unwrap();
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
        self.search(kind, digest, charset, length, u64::MAX)
    }

    /// Hashes per second on this GPU: tries `candidates` passwords of 8 lowercase letters
    /// against a digest none of them has.
    pub fn hash_rate(&self, kind: FastHash, candidates: u64) -> Result<f64, GpuError> {
        let digest = vec![0u8; kind.digest_len()];
        let timed = self.search(kind, &digest, "abcdefghijklmnopqrstuvwxyz", 8, candidates)?;
        Ok(candidates as f64 / timed.kernel.as_secs_f64())
    }

    fn search(
        &self,
        kind: FastHash,
        digest: &[u8],
        charset: &str,
        length: usize,
        limit: u64,
    ) -> Result<Timed<Option<String>>, GpuError> {
        // Checks the charset (not empty, ASCII, no symbol twice) as the CPU cracker does.
        let symbols = Charset::custom("searched", charset);
        let alphabet: Vec<char> = charset.chars().collect();
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
        assert!(
            !alphabet.is_empty() && alphabet.len() <= 256 && charset.is_ascii(),
            "crack: the charset must be 1 to 256 ASCII characters"
        );
        let kernel = self.compile(source(kind))?;
        let base = alphabet.len() as u64;
        let keyspace = base
            .checked_pow(length as u32)
            .unwrap_or(u64::MAX)
            .min(limit);
        let found = self.zeros::<u32>(1);
        let (mut tried, mut batch) = (0u64, 1u64 << 16);
        let (mut upload, mut busy) = (Duration::ZERO, Duration::ZERO);
        while tried < keyspace {
            let count = batch.min(keyspace - tried);
            let started = Instant::now();
            let mut search = words(kind, digest);
            search.extend([base as u32, length as u32, count as u32, 0]);
            let mut first = [0u32; 64];
            let mut rest = tried;
            for digit in first.iter_mut().take(length) {
                *digit = (rest % base) as u32;
                rest /= base;
            }
            search.extend(first);
            search.extend((0..256).map(|i| alphabet.get(i).map_or(0, |&c| c as u32)));
            let parameters = self.upload(&search);
            self.write(&found, &[u32::MAX]);
            upload += started.elapsed();
            let time = self.dispatch(
                &kernel,
                &[&parameters, &found],
                Workgroups::cover(count as usize, 256),
            )?;
            busy += time;
            let started = Instant::now();
            let hit = self.download(&found)?[0];
            upload += started.elapsed();
            if hit != u32::MAX {
                let index = tried + u64::from(hit);
                let password = passwords::candidate(&symbols, length, u128::from(index));
                return Ok(Timed {
                    value: Some(password),
                    upload,
                    kernel: busy,
                    download: Duration::ZERO,
                });
            }
            tried += count;
            // Grow batches to about 50 ms each: few submissions, yet an early stop when found.
            if time < Duration::from_millis(50) {
                batch = (batch * 2).min(MAX_BATCH);
            }
        }
        Ok(Timed {
            value: None,
            upload,
            kernel: busy,
            download: Duration::ZERO,
        })
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
