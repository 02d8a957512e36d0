//! Lanes: several 32-bit words that every operation transforms at once.
//!
//! MD5 and SHA-256 are long chains of 32-bit additions, rotations and logic, each step
//! depending on the one before: a single hash leaves most of a core idle. Hashing many
//! candidates side by side, one per lane, fills the core. The hash functions are written
//! once, generic over [`Lanes`], and the caller picks the lanes: `x86::Avx512` (16 in a
//! register), `x86::Avx2` (8), `x86::Sse2` (4), `Pair` of one of them (two registers whose
//! independent chains hide each other's latency), or `[u32; 1]`, plain scalar code. Arrays of
//! any width also work, as the portable reference the tests compare with.
//!
//! Vector lanes run instructions that not every processor has, and running one that the
//! processor lacks is undefined behaviour. So lanes are made only from a [`Lanes::Proof`]:
//! a zero-sized value that exists only once the processor was checked (`x86::HasAvx512::detect`
//! runs `is_x86_feature_detected!`). A value of lanes then proves it too, and every operation on
//! it is safe. The proofs cost nothing at run time: they have no bytes, and vanish once inlined.

/// A group of 32-bit words processed in lock step.
pub(crate) trait Lanes: Copy {
    /// Proof that this processor runs the lanes' instructions, needed to make lanes from
    /// words. `()` for lanes that need nothing beyond the target's own instructions.
    type Proof: Copy;

    /// How many words.
    const WIDTH: usize;

    /// The same word in every lane.
    fn splat(proof: Self::Proof, word: u32) -> Self;

    /// The first `WIDTH` words of `words`.
    fn load(proof: Self::Proof, words: &[u32]) -> Self;

    /// The proof these lanes were made with: to make more, such as constants.
    fn proof(self) -> Self::Proof;

    /// Lane-wise wrapping addition.
    fn add(self, other: Self) -> Self;

    /// Lane-wise `&`.
    fn and(self, other: Self) -> Self;

    /// Lane-wise `|`.
    fn or(self, other: Self) -> Self;

    /// Lane-wise `^`.
    fn xor(self, other: Self) -> Self;

    /// Lane-wise `!`.
    fn not(self) -> Self;

    /// Lane-wise rotation to the left.
    fn rotl(self, bits: u32) -> Self;

    /// Lane-wise logical shift to the right.
    fn shr(self, bits: u32) -> Self;

    /// The bitwise majority of `self`, `b` and `c`.
    #[inline(always)]
    fn majority(self, b: Self, c: Self) -> Self {
        self.and(b).or(c.and(self.or(b)))
    }

    /// A bit per lane, set where the lanes of `self` and `other` are equal (lane 0: bit 0).
    fn equal_lanes(self, other: Self) -> u64;
}

impl<const W: usize> Lanes for [u32; W] {
    type Proof = ();

    const WIDTH: usize = W;

    #[inline(always)]
    fn splat((): (), word: u32) -> Self {
        [word; W]
    }

    #[inline(always)]
    fn load((): (), words: &[u32]) -> Self {
        words[..W].try_into().expect("W words")
    }

    #[inline(always)]
    fn proof(self) {}

    #[inline(always)]
    fn add(self, other: Self) -> Self {
        std::array::from_fn(|i| self[i].wrapping_add(other[i]))
    }

    #[inline(always)]
    fn and(self, other: Self) -> Self {
        std::array::from_fn(|i| self[i] & other[i])
    }

    #[inline(always)]
    fn or(self, other: Self) -> Self {
        std::array::from_fn(|i| self[i] | other[i])
    }

    #[inline(always)]
    fn xor(self, other: Self) -> Self {
        std::array::from_fn(|i| self[i] ^ other[i])
    }

    #[inline(always)]
    fn not(self) -> Self {
        std::array::from_fn(|i| !self[i])
    }

    #[inline(always)]
    fn rotl(self, bits: u32) -> Self {
        std::array::from_fn(|i| self[i].rotate_left(bits))
    }

    #[inline(always)]
    fn shr(self, bits: u32) -> Self {
        std::array::from_fn(|i| self[i] >> bits)
    }

    #[inline(always)]
    fn equal_lanes(self, other: Self) -> u64 {
        // No early exit: a branch per lane would stop the compiler from comparing all lanes
        // with one instruction.
        (0..W).fold(0, |mask, i| mask | (u64::from(self[i] == other[i]) << i))
    }
}

/// Each word of `words` in every lane of its own group.
///
/// A loop, not `words.map(L::splat)`: `map` may stay a function call, compiled without the
/// caller's vector instructions, which then passes each register through memory (that alone
/// made SHA-256 a third slower).
#[inline(always)]
pub(crate) fn splat_each<L: Lanes, const N: usize>(proof: L::Proof, words: &[u32; N]) -> [L; N] {
    let mut lanes = [L::splat(proof, 0); N];
    for (lanes, &word) in lanes.iter_mut().zip(words) {
        *lanes = L::splat(proof, word);
    }
    lanes
}

/// Two groups of lanes side by side: `Pair<Avx512>` hashes 32 candidates in two registers,
/// whose chains are independent, so that one's instructions run while the other's wait for
/// their results.
#[derive(Clone, Copy)]
pub(crate) struct Pair<L>(L, L);

impl<L: Lanes> Lanes for Pair<L> {
    type Proof = L::Proof;

    const WIDTH: usize = 2 * L::WIDTH;

    #[inline(always)]
    fn splat(proof: L::Proof, word: u32) -> Self {
        Pair(L::splat(proof, word), L::splat(proof, word))
    }

    #[inline(always)]
    fn load(proof: L::Proof, words: &[u32]) -> Self {
        Pair(L::load(proof, words), L::load(proof, &words[L::WIDTH..]))
    }

    #[inline(always)]
    fn proof(self) -> L::Proof {
        self.0.proof()
    }

    #[inline(always)]
    fn add(self, other: Self) -> Self {
        Pair(self.0.add(other.0), self.1.add(other.1))
    }

    #[inline(always)]
    fn and(self, other: Self) -> Self {
        Pair(self.0.and(other.0), self.1.and(other.1))
    }

    #[inline(always)]
    fn or(self, other: Self) -> Self {
        Pair(self.0.or(other.0), self.1.or(other.1))
    }

    #[inline(always)]
    fn xor(self, other: Self) -> Self {
        Pair(self.0.xor(other.0), self.1.xor(other.1))
    }

    #[inline(always)]
    fn not(self) -> Self {
        Pair(self.0.not(), self.1.not())
    }

    #[inline(always)]
    fn rotl(self, bits: u32) -> Self {
        Pair(self.0.rotl(bits), self.1.rotl(bits))
    }

    #[inline(always)]
    fn shr(self, bits: u32) -> Self {
        Pair(self.0.shr(bits), self.1.shr(bits))
    }

    #[inline(always)]
    fn majority(self, b: Self, c: Self) -> Self {
        Pair(self.0.majority(b.0, c.0), self.1.majority(b.1, c.1))
    }

    #[inline(always)]
    fn equal_lanes(self, other: Self) -> u64 {
        self.0.equal_lanes(other.0) | self.1.equal_lanes(other.1) << L::WIDTH
    }
}

/// Lanes in x86-64 vector registers, through `core::arch`.
///
/// Plain arrays would be simpler, but LLVM does not reliably turn hundreds of chained array
/// operations into vector instructions: it left them scalar, ten times slower. Intrinsics say
/// exactly which instruction to use. Shift counts are constants once the hash is inlined, so
/// LLVM emits the immediate forms (`vprold`, `vpsrld`), and it fuses each tree of logic
/// operations into one `vpternlogd` where AVX-512 has it.
///
/// Soundness rests on this module's privacy: only its code can make an `Avx512` or an `Avx2`
/// (their fields are private), and it makes them only from a [`HasAvx512`] or a [`HasAvx2`],
/// which only `detect` makes, after `is_x86_feature_detected!` said the processor has the
/// instructions. So safe code cannot reach an AVX-512 or AVX2 instruction on a processor
/// without them. SSE2 is part of x86-64: `Sse2` needs no proof.
#[cfg(target_arch = "x86_64")]
pub(crate) mod x86 {
    use std::arch::x86_64::*;

    use super::Lanes;

    // Every x86-64 target has SSE2: the reason `Sse2` asks for no proof.
    const _: () = assert!(cfg!(target_feature = "sse2"));

    /// Proof that this processor runs AVX-512F. Zero-sized; only [`HasAvx512::detect`] makes one.
    #[derive(Clone, Copy, Debug)]
    pub(crate) struct HasAvx512(());

    impl HasAvx512 {
        /// The proof, if this processor has AVX-512F.
        pub(crate) fn detect() -> Option<Self> {
            is_x86_feature_detected!("avx512f").then_some(HasAvx512(()))
        }
    }

    /// Proof that this processor runs AVX2. Zero-sized; only [`HasAvx2::detect`] makes one.
    #[derive(Clone, Copy, Debug)]
    pub(crate) struct HasAvx2(());

    impl HasAvx2 {
        /// The proof, if this processor has AVX2.
        pub(crate) fn detect() -> Option<Self> {
            is_x86_feature_detected!("avx2").then_some(HasAvx2(()))
        }
    }

    /// 16 lanes in an AVX-512 register; made from a [`HasAvx512`] only.
    #[derive(Clone, Copy)]
    pub(crate) struct Avx512(__m512i);

    /// 8 lanes in an AVX2 register; made from a [`HasAvx2`] only.
    #[derive(Clone, Copy)]
    pub(crate) struct Avx2(__m256i);

    /// 4 lanes in an SSE2 register: every x86-64 processor has them.
    #[derive(Clone, Copy)]
    pub(crate) struct Sse2(__m128i);

    // SAFETY, for every `unsafe` block below: the processor has AVX-512F, as the `HasAvx512`
    // given to `splat` and `load`, or the `Avx512` value made from one, proves; and loads read
    // `WIDTH` words that `words[..WIDTH]` checks are there.
    impl Lanes for Avx512 {
        type Proof = HasAvx512;

        const WIDTH: usize = 16;

        #[inline(always)]
        fn splat(_: HasAvx512, word: u32) -> Self {
            Avx512(unsafe { _mm512_set1_epi32(word as i32) })
        }

        #[inline(always)]
        fn load(_: HasAvx512, words: &[u32]) -> Self {
            let words = &words[..Self::WIDTH];
            Avx512(unsafe { _mm512_loadu_si512(words.as_ptr().cast()) })
        }

        #[inline(always)]
        fn proof(self) -> HasAvx512 {
            // `self` was made from a proof: it may give one back.
            HasAvx512(())
        }

        #[inline(always)]
        fn add(self, other: Self) -> Self {
            Avx512(unsafe { _mm512_add_epi32(self.0, other.0) })
        }

        #[inline(always)]
        fn and(self, other: Self) -> Self {
            Avx512(unsafe { _mm512_and_si512(self.0, other.0) })
        }

        #[inline(always)]
        fn or(self, other: Self) -> Self {
            Avx512(unsafe { _mm512_or_si512(self.0, other.0) })
        }

        #[inline(always)]
        fn xor(self, other: Self) -> Self {
            Avx512(unsafe { _mm512_xor_si512(self.0, other.0) })
        }

        #[inline(always)]
        fn not(self) -> Self {
            self.xor(Self::splat(self.proof(), !0))
        }

        #[inline(always)]
        fn rotl(self, bits: u32) -> Self {
            Avx512(unsafe { _mm512_rolv_epi32(self.0, _mm512_set1_epi32(bits as i32)) })
        }

        #[inline(always)]
        fn shr(self, bits: u32) -> Self {
            Avx512(unsafe { _mm512_srlv_epi32(self.0, _mm512_set1_epi32(bits as i32)) })
        }

        #[inline(always)]
        fn majority(self, b: Self, c: Self) -> Self {
            // LLVM makes two `vpternlogd` of the and/or form; one does it. The immediate is
            // the truth table: bit `4a + 2b + c` of 0xe8 is the majority of a, b and c.
            Avx512(unsafe { _mm512_ternarylogic_epi32::<0xe8>(self.0, b.0, c.0) })
        }

        #[inline(always)]
        fn equal_lanes(self, other: Self) -> u64 {
            u64::from(unsafe { _mm512_cmpeq_epi32_mask(self.0, other.0) })
        }
    }

    // SAFETY, for every `unsafe` block below: the processor has AVX2, as the `HasAvx2` given
    // to `splat` and `load`, or the `Avx2` value made from one, proves; and loads read `WIDTH`
    // words that `words[..WIDTH]` checks are there.
    impl Lanes for Avx2 {
        type Proof = HasAvx2;

        const WIDTH: usize = 8;

        #[inline(always)]
        fn splat(_: HasAvx2, word: u32) -> Self {
            Avx2(unsafe { _mm256_set1_epi32(word as i32) })
        }

        #[inline(always)]
        fn load(_: HasAvx2, words: &[u32]) -> Self {
            let words = &words[..Self::WIDTH];
            Avx2(unsafe { _mm256_loadu_si256(words.as_ptr().cast()) })
        }

        #[inline(always)]
        fn proof(self) -> HasAvx2 {
            // `self` was made from a proof: it may give one back.
            HasAvx2(())
        }

        #[inline(always)]
        fn add(self, other: Self) -> Self {
            Avx2(unsafe { _mm256_add_epi32(self.0, other.0) })
        }

        #[inline(always)]
        fn and(self, other: Self) -> Self {
            Avx2(unsafe { _mm256_and_si256(self.0, other.0) })
        }

        #[inline(always)]
        fn or(self, other: Self) -> Self {
            Avx2(unsafe { _mm256_or_si256(self.0, other.0) })
        }

        #[inline(always)]
        fn xor(self, other: Self) -> Self {
            Avx2(unsafe { _mm256_xor_si256(self.0, other.0) })
        }

        #[inline(always)]
        fn not(self) -> Self {
            self.xor(Self::splat(self.proof(), !0))
        }

        #[inline(always)]
        fn rotl(self, bits: u32) -> Self {
            // AVX2 has no rotation: two shifts and an `or`.
            let left = unsafe { _mm256_sllv_epi32(self.0, _mm256_set1_epi32(bits as i32)) };
            let right = unsafe { _mm256_srlv_epi32(self.0, _mm256_set1_epi32(32 - bits as i32)) };
            Avx2(left).or(Avx2(right))
        }

        #[inline(always)]
        fn shr(self, bits: u32) -> Self {
            Avx2(unsafe { _mm256_srlv_epi32(self.0, _mm256_set1_epi32(bits as i32)) })
        }

        #[inline(always)]
        fn equal_lanes(self, other: Self) -> u64 {
            let equal = unsafe { _mm256_cmpeq_epi32(self.0, other.0) };
            unsafe { _mm256_movemask_ps(_mm256_castsi256_ps(equal)) as u32 as u64 }
        }
    }

    // SAFETY, for every `unsafe` block below: SSE2 is part of x86-64, and loads read `WIDTH`
    // words that `words[..WIDTH]` checks are there.
    impl Lanes for Sse2 {
        type Proof = ();

        const WIDTH: usize = 4;

        #[inline(always)]
        fn splat((): (), word: u32) -> Self {
            Sse2(unsafe { _mm_set1_epi32(word as i32) })
        }

        #[inline(always)]
        fn load((): (), words: &[u32]) -> Self {
            let words = &words[..Self::WIDTH];
            Sse2(unsafe { _mm_loadu_si128(words.as_ptr().cast()) })
        }

        #[inline(always)]
        fn proof(self) {}

        #[inline(always)]
        fn add(self, other: Self) -> Self {
            Sse2(unsafe { _mm_add_epi32(self.0, other.0) })
        }

        #[inline(always)]
        fn and(self, other: Self) -> Self {
            Sse2(unsafe { _mm_and_si128(self.0, other.0) })
        }

        #[inline(always)]
        fn or(self, other: Self) -> Self {
            Sse2(unsafe { _mm_or_si128(self.0, other.0) })
        }

        #[inline(always)]
        fn xor(self, other: Self) -> Self {
            Sse2(unsafe { _mm_xor_si128(self.0, other.0) })
        }

        #[inline(always)]
        fn not(self) -> Self {
            self.xor(Self::splat((), !0))
        }

        #[inline(always)]
        fn rotl(self, bits: u32) -> Self {
            // SSE2 has no rotation: two shifts and an `or`.
            let left = unsafe { _mm_sll_epi32(self.0, _mm_cvtsi32_si128(bits as i32)) };
            let right = unsafe { _mm_srl_epi32(self.0, _mm_cvtsi32_si128(32 - bits as i32)) };
            Sse2(left).or(Sse2(right))
        }

        #[inline(always)]
        fn shr(self, bits: u32) -> Self {
            Sse2(unsafe { _mm_srl_epi32(self.0, _mm_cvtsi32_si128(bits as i32)) })
        }

        #[inline(always)]
        fn equal_lanes(self, other: Self) -> u64 {
            let equal = unsafe { _mm_cmpeq_epi32(self.0, other.0) };
            unsafe { _mm_movemask_ps(_mm_castsi128_ps(equal)) as u32 as u64 }
        }
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::Pair;
    use super::x86::{Avx2, Avx512, HasAvx2, HasAvx512};

    #[test]
    fn proofs_exist_only_where_the_processor_has_the_instructions_and_weigh_nothing() {
        assert_eq!(
            HasAvx512::detect().is_some(),
            std::arch::is_x86_feature_detected!("avx512f")
        );
        assert_eq!(
            HasAvx2::detect().is_some(),
            std::arch::is_x86_feature_detected!("avx2")
        );
        assert_eq!(size_of::<HasAvx512>() + size_of::<HasAvx2>(), 0);
        assert_eq!(size_of::<Pair<Avx512>>(), 2 * 64);
        assert_eq!(size_of::<Avx2>(), 32);
    }
}
