//! `strftime()` and `time()`: local wall-clock time formatted with the C
//! library's strftime, plus bpftrace's extensions `%f` (microseconds), `%k`
//! (nanoseconds) and `%l` (milliseconds).

use std::ffi::CString;

fn clock_ns(clock: libc::clockid_t) -> i128 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the duration of the call.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    i128::from(ts.tv_sec) * 1_000_000_000 + i128::from(ts.tv_nsec)
}

/// Wall-clock time of the boot, in ns since the epoch: what turns
/// `nsecs` (boot time) into a date.
pub fn boot_wall_ns() -> i128 {
    clock_ns(libc::CLOCK_REALTIME) - clock_ns(libc::CLOCK_BOOTTIME)
}

/// The current wall-clock time in ns since the epoch.
pub fn now_ns() -> i128 {
    clock_ns(libc::CLOCK_REALTIME)
}

/// Formats `epoch_ns` (ns since the epoch) in local time with `fmt`, as
/// bpftrace does; `(?)` when it cannot.
pub fn format(epoch_ns: i128, fmt: &[u8], max_len: usize) -> Vec<u8> {
    let secs = epoch_ns.div_euclid(1_000_000_000);
    let sub = epoch_ns.rem_euclid(1_000_000_000) as u64;
    let Ok(time) = libc::time_t::try_from(secs) else {
        return b"(?)".to_vec();
    };
    if time == 0 {
        return b"(?)".to_vec();
    }
    // SAFETY: an all-zero tm is a valid value for localtime_r to overwrite.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are valid for the call; localtime_r is thread safe.
    if unsafe { libc::localtime_r(&time, &mut tm) }.is_null() {
        return b"(?)".to_vec();
    }
    let fmt = replace(fmt, b"%f", format!("{:06}", sub / 1000).as_bytes());
    let fmt = replace(&fmt, b"%k", format!("{sub:09}").as_bytes());
    let fmt = replace(&fmt, b"%l", format!("{:03}", sub / 1_000_000).as_bytes());
    let Ok(cfmt) = CString::new(fmt) else {
        return b"(?)".to_vec();
    };
    let mut buf = vec![0u8; max_len.max(64)];
    // SAFETY: `buf` has `buf.len()` writable bytes, `cfmt` is NUL-terminated
    // and `tm` was filled in by localtime_r.
    let n = unsafe { libc::strftime(buf.as_mut_ptr().cast(), buf.len(), cfmt.as_ptr(), &tm) };
    if n == 0 {
        return b"(?)".to_vec();
    }
    buf.truncate(n);
    buf
}

fn replace(s: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.push(s[i]);
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extensions_give_fractions_of_a_second() {
        let t = 1_700_000_000_123_456_789i128;
        assert_eq!(format(t, b"%f", 64), b"123456");
        assert_eq!(format(t, b"%k", 64), b"123456789");
        assert_eq!(format(t, b"%l|%%", 64), b"123|%");
        assert_eq!(format(0, b"%H", 64), b"(?)");
    }
}
