//! Histogram bucket arithmetic (`hist`, `lhist`) and bucket labels.
//!
//! The index functions are the contract between the compiler (which emits
//! the same arithmetic in eBPF) and the printer: the kernel stores counts
//! under `key ++ index`, and the printer turns indices back into labels.

/// Number of bucket slots bpftrace reads back for one `hist()` key
/// (65 powers of two × up to 32 sub-buckets). Higher indices cannot occur.
pub const LOG2_SLOTS: usize = 65 * 32;
/// Number of bucket slots bpftrace reads back for one `lhist()` key.
pub const LINEAR_SLOTS: usize = 1002;

/// Bucket index of `v` in `hist(v, k)`, `k` in `0..=5`.
///
/// Algorithm (all 64-bit; this is what the eBPF code must compute):
/// 1. `v < 0` (signed compare) → `0`.
/// 2. `mask = (1 << k) - 1`; if `v <= mask` → `v + 1` (so zero → 1).
/// 3. Otherwise `l` = position of the leftmost set bit of `v` (0-based,
///    i.e. `floor(log2(v))`), found by the binary search
///    `for i in 5..=0: s = (v >= 1 << (1 << i)) << i; v >>= s; l += s`.
/// 4. `l -= k`; `x = (v_original >> l) & mask` (the `k` bits after the
///    leading one).
/// 5. Result `((l + 1) << k) + x + 1`.
///
/// Every value below `2^(k+1)` thus gets a bucket of its own (index
/// `v + 1`); above that, each power of two is split into `2^k` buckets.
/// The largest possible index (`i64::MAX`, `k = 5`) is 1888.
pub fn log2_index(v: i64, k: u8) -> u64 {
    if v < 0 {
        return 0;
    }
    // k is at most 5 in bpftrace; clamp so the shifts stay defined.
    let k = u32::from(k.min(5));
    let n0 = v as u64;
    let mask = (1u64 << k) - 1;
    if n0 <= mask {
        return n0 + 1;
    }
    let mut n = n0;
    let mut l: u64 = 0;
    for i in (0..=5u32).rev() {
        let threshold = 1u64 << (1u32 << i);
        let shift = u64::from(n >= threshold) << i;
        n >>= shift;
        l += shift;
    }
    // n0 > mask, hence l >= k.
    let l = l - u64::from(k);
    let x = (n0 >> l) & mask;
    ((l + 1) << k) + x + 1
}

/// Bucket index of `v` in `lhist(v, min, max, step)`.
///
/// Algorithm (this is what the eBPF code must compute):
/// 1. `v < min` (signed) → `0`.
/// 2. `v > max` (signed) → `1 + (max - min) / step`.
/// 3. Otherwise → `1 + (v - min) / step`.
///
/// Subtractions wrap and divisions are *unsigned* 64-bit; division by zero
/// yields 0, as in eBPF. Note `v == max` lands in the same bucket as
/// `v > max` when `(max - min)` is a multiple of `step`: the overflow bucket.
pub fn linear_index(v: i64, min: i64, max: i64, step: i64) -> u64 {
    let udiv = |a: i64, b: i64| (a as u64).checked_div(b as u64).unwrap_or(0);
    if v < min {
        0
    } else if v > max {
        udiv(max.wrapping_sub(min), step).wrapping_add(1)
    } else {
        udiv(v.wrapping_sub(min), step).wrapping_add(1)
    }
}

/// A label as bpftrace keeps it: a plain number (eligible for the
/// single-value `[n]` form when two neighbours differ by one) or text with a
/// unit suffix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Label {
    Num(i64),
    Text(String),
}

impl Label {
    fn text(&self) -> String {
        match self {
            Label::Num(n) => n.to_string(),
            Label::Text(s) => s.clone(),
        }
    }
}

/// Start value of the log2 bucket that follows bucket `index`, i.e. the
/// upper bound of bucket `index`, printed with a K/M/G/T/P/E suffix for
/// each factor of 1024. Only meaningful for `index > 2 << k`.
fn log2_symbolic(index: u64, k: u32) -> String {
    let n = 1u64 << k;
    let interval = index & (n - 1);
    let mut power = (index >> k).saturating_sub(1);
    let decade = power / 10;
    power -= 10 * decade;
    let base = 1u64
        .checked_shl(power as u32)
        .unwrap_or(0)
        .wrapping_mul(n + interval);
    const SUFFIXES: [&str; 7] = ["", "K", "M", "G", "T", "P", "E"];
    let suffix = SUFFIXES.get(decade as usize).copied().unwrap_or("?");
    format!("{base}{suffix}")
}

/// bpftrace's label for index `i` of a log2 histogram: the upper bound of
/// bucket `i` (and lower bound of bucket `i + 1`).
pub(crate) fn log2_label(i: u64, k: u8) -> Label {
    let k = u32::from(k.min(5));
    if i <= (2u64 << k) {
        Label::Num(i as i64)
    } else {
        Label::Text(log2_symbolic(i, k))
    }
}

/// bpftrace's lhist label for the value `number`: K/M suffixes only when
/// `step` is a multiple of 1024, and only on exact multiples.
pub(crate) fn linear_label_value(number: i64, step: i64) -> Label {
    const KILO: i64 = 1024;
    const MEGA: i64 = 1024 * 1024;
    if step % KILO != 0 {
        return Label::Num(number);
    }
    let text = if number == 0 {
        "0".to_string()
    } else if number % MEGA == 0 {
        format!("{}M", number / MEGA)
    } else if number % KILO == 0 {
        format!("{}K", number / KILO)
    } else {
        number.to_string()
    };
    Label::Text(text)
}

/// Bracketed label of a bucket given its lower and (optional) upper label,
/// `[n]` when both are plain numbers one apart.
fn interval(lower: &Label, upper: Option<&Label>) -> String {
    match upper {
        None => format!("[{}, ...)", lower.text()),
        Some(upper) => {
            if let (Label::Num(a), Label::Num(b)) = (lower, upper)
                && a.checked_add(1) == Some(*b)
            {
                format!("[{a}]")
            } else {
                format!("[{}, {})", lower.text(), upper.text())
            }
        }
    }
}

/// Printed label of log2 bucket `index` of `hist(n, k)`:
/// `(..., 0)`, `[0]`, `[1]`, `[2, 4)`, `[512, 1K)`, `[1M, 2M)`, and for
/// `k > 0` finer ones such as `[4, 6)` or `[1280, 1536)`.
pub fn log2_bucket_label(index: u64, k: u8) -> String {
    if index == 0 {
        return "(..., 0)".to_string();
    }
    interval(&log2_label(index - 1, k), Some(&log2_label(index, k)))
}

/// Printed label of bucket `index` of `lhist(n, min, max, step)`:
/// `(..., min)`, `[a, b)` (or `[a]` when `step == 1`), `[max, ...)`;
/// K/M suffixes only when `step` is a multiple of 1024 (`[0, 1K)`).
pub fn linear_bucket_label(index: u64, min: i64, max: i64, step: i64) -> String {
    let bound = |i: u64| min.wrapping_add((i as i64).wrapping_mul(step));
    if index == 0 {
        return format!("(..., {})", linear_label_value(min, step).text());
    }
    let lower = linear_label_value(bound(index - 1), step);
    let hi = bound(index);
    if hi <= max {
        interval(&lower, Some(&linear_label_value(hi, step)))
    } else {
        interval(&lower, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log2_k0() {
        assert_eq!(log2_index(-1, 0), 0);
        assert_eq!(log2_index(i64::MIN, 0), 0);
        assert_eq!(log2_index(0, 0), 1);
        assert_eq!(log2_index(1, 0), 2);
        assert_eq!(log2_index(2, 0), 3);
        assert_eq!(log2_index(3, 0), 3);
        assert_eq!(log2_index(4, 0), 4);
        assert_eq!(log2_index(7, 0), 4);
        assert_eq!(log2_index(20, 0), 6);
        assert_eq!(log2_index(1023, 0), 11);
        assert_eq!(log2_index(1024, 0), 12);
        assert_eq!(log2_index(i64::MAX, 0), 64);
    }

    #[test]
    fn log2_k_gt_0() {
        // The worked example in bpftrace's codegen: 225 with k = 2 → 28.
        assert_eq!(log2_index(225, 2), 28);
        assert_eq!(log2_index(3, 1), 4);
        assert_eq!(log2_index(4, 1), 5);
        assert_eq!(log2_index(5, 1), 5);
        assert_eq!(log2_index(6, 1), 6);
        assert_eq!(log2_index(i64::MAX, 5), 1888);
        for k in 0..=5u8 {
            for v in 0..(2i64 << k) {
                assert_eq!(log2_index(v, k), v as u64 + 1);
            }
        }
    }

    /// Every value falls inside the printed range of its bucket.
    #[test]
    fn log2_labels_consistent() {
        for k in 0..=5u8 {
            let mut v: i64 = 1;
            while v < (1 << 40) {
                for d in [0, 1, 3] {
                    let x = v + d;
                    let i = log2_index(x, k);
                    assert!((i as usize) < LOG2_SLOTS);
                    let lo = log2_label(i - 1, k);
                    if let Label::Num(lo) = lo {
                        assert!(lo <= x, "k={k} x={x} i={i}");
                    }
                }
                v = v * 3 / 2 + 1;
            }
        }
    }

    #[test]
    fn log2_label_text() {
        assert_eq!(log2_bucket_label(0, 0), "(..., 0)");
        assert_eq!(log2_bucket_label(1, 0), "[0]");
        assert_eq!(log2_bucket_label(2, 0), "[1]");
        assert_eq!(log2_bucket_label(3, 0), "[2, 4)");
        assert_eq!(log2_bucket_label(11, 0), "[512, 1K)");
        assert_eq!(log2_bucket_label(12, 0), "[1K, 2K)");
        assert_eq!(log2_bucket_label(22, 0), "[1M, 2M)");
        assert_eq!(log2_bucket_label(32, 0), "[1G, 2G)");
        assert_eq!(log2_bucket_label(42, 0), "[1T, 2T)");
        assert_eq!(log2_bucket_label(52, 0), "[1P, 2P)");
        assert_eq!(log2_bucket_label(62, 0), "[1E, 2E)");
        assert_eq!(log2_bucket_label(64, 0), "[4E, 8E)");
        // k = 1: single values up to 3, then half-powers.
        assert_eq!(log2_bucket_label(4, 1), "[3]");
        assert_eq!(log2_bucket_label(5, 1), "[4, 6)");
        assert_eq!(log2_bucket_label(6, 1), "[6, 8)");
        assert_eq!(log2_bucket_label(log2_index(225, 2), 2), "[224, 256)");
        // The suffix follows the power of the bucket width, not the value.
        assert_eq!(log2_bucket_label(log2_index(1300, 1), 1), "[1024, 1536)");
        assert_eq!(log2_bucket_label(log2_index(1600, 1), 1), "[1536, 2K)");
    }

    #[test]
    fn linear() {
        // lhist(2|3|7|-1|11, 0, 10, 2) as in bpftrace's lhist.txt fixture.
        assert_eq!(linear_index(-1, 0, 10, 2), 0);
        assert_eq!(linear_index(2, 0, 10, 2), 2);
        assert_eq!(linear_index(3, 0, 10, 2), 2);
        assert_eq!(linear_index(7, 0, 10, 2), 4);
        assert_eq!(linear_index(10, 0, 10, 2), 6);
        assert_eq!(linear_index(11, 0, 10, 2), 6);
        assert_eq!(linear_index(i64::MAX, i64::MIN, i64::MAX, 1 << 62), 4);
        assert_eq!(linear_index(5, 0, 10, 0), 1);
        assert_eq!(linear_bucket_label(0, 0, 10, 2), "(..., 0)");
        assert_eq!(linear_bucket_label(1, 0, 10, 2), "[0, 2)");
        assert_eq!(linear_bucket_label(5, 0, 10, 2), "[8, 10)");
        assert_eq!(linear_bucket_label(6, 0, 10, 2), "[10, ...)");
        assert_eq!(linear_bucket_label(3, 0, 10, 1), "[2]");
        assert_eq!(linear_bucket_label(1, 0, 4096, 1024), "[0, 1K)");
        assert_eq!(linear_bucket_label(5, 0, 4096, 1024), "[4K, ...)");
        assert_eq!(linear_bucket_label(0, -2048, 4096, 1024), "(..., -2K)");
        assert_eq!(linear_bucket_label(2, 0, 8 << 20, 1 << 20), "[1M, 2M)");
        assert_eq!(linear_bucket_label(2, 0, 10000, 1536), "[1536, 3072)");
    }
}
