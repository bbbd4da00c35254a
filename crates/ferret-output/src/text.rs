//! bpftrace's default text output: values, maps, histograms.

use std::cmp::Ordering;

use crate::hist::{self, Label};
use crate::stream::Stream;
use crate::value::{MapDump, MapEntry, MapValue, Value};

/// Text of a value as `print(v)` / `%s` / map output show it, as bytes
/// (strings may hold any bytes).
pub fn format_value_bytes(v: &Value) -> Vec<u8> {
    let mut s = Stream::default();
    s.put_value(v);
    s.out
}

/// [`format_value_bytes`], with invalid UTF-8 replaced.
pub fn format_value(v: &Value) -> String {
    String::from_utf8_lossy(&format_value_bytes(v)).into_owned()
}

/// `print(v)` of a non-map value: the value and a newline.
pub fn format_print_value(v: &Value) -> Vec<u8> {
    let mut out = format_value_bytes(v);
    out.push(b'\n');
    out
}

/// A map key as printed between the brackets: a top-level tuple loses its
/// parentheses (as does any key text that starts with `(` and ends with
/// `)`, exactly as bpftrace does it).
pub(crate) fn key_text(key: &Value) -> Vec<u8> {
    let s = format_value_bytes(key);
    if s.len() >= 2 && s[0] == b'(' && s[s.len() - 1] == b')' {
        s[1..s.len() - 1].to_vec()
    } else {
        s
    }
}

/// Per-bucket counts of one histogram entry, as bpftrace lays them out.
pub(crate) struct HistRows {
    /// `(label, count)` from the first to the last non-empty bucket.
    pub rows: Vec<(String, u64)>,
    /// JSON form: `(min, max, count)` with closed bounds.
    pub json: Vec<(Option<i128>, Option<i128>, u64)>,
}

/// Dense counts (index → count), capped at bpftrace's slot count.
fn dense(buckets: &std::collections::BTreeMap<u64, u64>, slots: usize) -> Vec<u64> {
    let len = buckets
        .range(..slots as u64)
        .next_back()
        .map_or(0, |(i, _)| *i as usize + 1);
    let mut v = vec![0u64; len];
    for (&i, &c) in buckets.range(..slots as u64) {
        v[i as usize] = c;
    }
    v
}

/// First and last bucket bpftrace considers non-empty. It looks at counts
/// through a 32-bit signed view, so e.g. a count of 2^32 reads as empty.
fn nonzero_span(counts: &[u64]) -> Option<(usize, usize)> {
    let nz = |c: &u64| (*c as i32) > 0;
    let first = counts.iter().position(nz)?;
    let last = counts.iter().rposition(nz)?;
    Some((first, last))
}

/// Numeric value of a label for JSON (symbolic labels carry an unsigned
/// number; plain ones a signed one).
fn label_num(l: &Label, numeric: u64) -> i128 {
    match l {
        Label::Num(n) => i128::from(*n),
        Label::Text(_) => i128::from(numeric),
    }
}

/// JSON's closed upper bound: one less than the label, as a signed 64-bit
/// value.
fn one_less(l: &Label, numeric: u64) -> i128 {
    match l {
        Label::Num(n) => i128::from(n.wrapping_sub(1)),
        Label::Text(_) => {
            if numeric == 0 {
                -1
            } else {
                i128::from((numeric - 1) as i64)
            }
        }
    }
}

/// Numeric value behind log2 label `i`.
fn log2_numeric(i: u64, k: u8) -> u64 {
    let k = u32::from(k.min(5));
    let n = 1u64 << k;
    let interval = i & (n - 1);
    let power = (i >> k).saturating_sub(1);
    1u64.checked_shl(power as u32)
        .unwrap_or(0)
        .wrapping_mul(n + interval)
}

pub(crate) fn log2_rows(
    buckets: &std::collections::BTreeMap<u64, u64>,
    k: u8,
    div: u64,
) -> HistRows {
    let counts = dense(buckets, hist::LOG2_SLOTS);
    let mut out = HistRows {
        rows: Vec::new(),
        json: Vec::new(),
    };
    let Some((first, last)) = nonzero_span(&counts) else {
        return out;
    };
    for (i, &raw) in counts.iter().enumerate().take(last + 1).skip(first) {
        let i64_ = i as u64;
        let count = raw / div;
        out.rows.push((hist::log2_bucket_label(i64_, k), count));
        let upper = hist::log2_label(i64_, k);
        let max = Some(one_less(&upper, log2_numeric(i64_, k)));
        let min = (i > 0).then(|| {
            let lower = hist::log2_label(i64_ - 1, k);
            label_num(&lower, log2_numeric(i64_ - 1, k))
        });
        out.json.push((min, max, count));
    }
    out
}

pub(crate) fn linear_rows(
    buckets: &std::collections::BTreeMap<u64, u64>,
    min: i64,
    max: i64,
    step: i64,
) -> HistRows {
    let counts = dense(buckets, hist::LINEAR_SLOTS);
    let mut out = HistRows {
        rows: Vec::new(),
        json: Vec::new(),
    };
    let Some((first, last)) = nonzero_span(&counts) else {
        return out;
    };
    let bound = |i: u64| min.wrapping_add((i as i64).wrapping_mul(step));
    for i in first..=last {
        let i = i as u64;
        // lhist ignores print()'s divisor.
        let count = counts[i as usize];
        out.rows
            .push((hist::linear_bucket_label(i, min, max, step), count));
        let hi = bound(i);
        let max_json =
            (hi <= max).then(|| one_less(&hist::linear_label_value(hi, step), hi as u64));
        let min_json = (i > 0).then(|| {
            let lo = bound(i - 1);
            label_num(&hist::linear_label_value(lo, step), lo as u64)
        });
        out.json.push((min_json, max_json, count));
    }
    out
}

/// Histogram lines: label left-aligned in 16 columns, count right-aligned
/// in 8, then a bar of `@` scaled (in single precision, truncated) so the
/// largest bucket gets 52.
fn write_hist(out: &mut Vec<u8>, rows: &[(String, u64)]) {
    const BAR: usize = 52;
    let max = rows.iter().map(|r| r.1).max().unwrap_or(0);
    for (label, count) in rows {
        let ratio = (*count as f32 / max as f32) * BAR as f32;
        // NaN (all counts divided down to zero) gives no bar.
        let bar = if ratio.is_nan() {
            0
        } else {
            (ratio as usize).min(BAR)
        };
        let line = format!("{label:<16}{count:>8} |{:<BAR$}|\n", "@".repeat(bar));
        out.extend_from_slice(line.as_bytes());
    }
}

/// Value of a stats-like entry: `(count, average, total)`, the average
/// truncated toward zero as C++ integer division does.
pub(crate) fn stats_of(total: i64, count: u64) -> (i64, i64) {
    let count = count as i64;
    let avg = if count > 0 {
        total.wrapping_div(count)
    } else {
        0
    };
    (count, avg)
}

/// Signed division for `print(@m, top, div)`.
fn div_i(v: i64, div: u64) -> i64 {
    v.wrapping_div(div as i64)
}

/// The printable value of a non-histogram entry after `div`.
pub(crate) fn scalar_value(v: &MapValue, div: u64) -> Value {
    match v {
        MapValue::Count(c) => Value::UInt(c / div),
        MapValue::Sum(s) | MapValue::Plain(s) => match s {
            Value::Int(i) => Value::Int(div_i(*i, div)),
            Value::UInt(u) => Value::UInt(u / div),
            other => other.clone(),
        },
        MapValue::Min(m) | MapValue::Max(m) => Value::Int(div_i(*m, div)),
        MapValue::Avg { total, count } => Value::Int(div_i(stats_of(*total, *count).1, div)),
        MapValue::Stats { total, count } => {
            let (count, avg) = stats_of(*total, *count);
            Value::Record(vec![
                ("count".to_string(), Value::Int(count)),
                ("average".to_string(), Value::Int(div_i(avg, div))),
                ("total".to_string(), Value::Int(*total)),
            ])
        }
        MapValue::Hist { .. } | MapValue::Lhist { .. } => Value::None,
    }
}

/// Raw-byte order of a key as bpftrace's ordered containers see it
/// (little-endian integers, fixed-size zero-padded strings).
fn raw_key_bytes(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Int(i) => out.extend(i.to_le_bytes()),
        Value::UInt(u) => out.extend(u.to_le_bytes()),
        Value::Bool(b) => out.push(u8::from(*b)),
        Value::Symbolic { value, .. } => out.extend(value.to_le_bytes()),
        Value::Tuple(items) | Value::Array(items) => {
            for i in items {
                raw_key_bytes(i, out);
            }
        }
        Value::Record(fields) => {
            for (_, i) in fields {
                raw_key_bytes(i, out);
            }
        }
        other => {
            out.extend(format_value_bytes(other));
            out.push(0);
        }
    }
}

fn raw_key_cmp(a: &MapEntry, b: &MapEntry) -> Ordering {
    let enc = |e: &MapEntry| {
        let mut v = Vec::new();
        if let Some(k) = &e.key {
            raw_key_bytes(k, &mut v);
        }
        v
    };
    enc(a).cmp(&enc(b))
}

/// Key comparison for maps sorted by key: integers as signed numbers,
/// strings bytewise; in tuples only integer and string fields count, left
/// to right. Other keys keep their order.
fn key_cmp(a: &Value, b: &Value) -> Ordering {
    fn scalar(a: &Value, b: &Value) -> Ordering {
        match (a, b) {
            (Value::Int(_) | Value::UInt(_), Value::Int(_) | Value::UInt(_)) => {
                let n = |v: &Value| match v {
                    Value::Int(i) => *i,
                    Value::UInt(u) => *u as i64,
                    _ => 0,
                };
                n(a).cmp(&n(b))
            }
            (Value::Str(x), Value::Str(y)) => x.cmp(y),
            _ => Ordering::Equal,
        }
    }
    match (a, b) {
        (Value::Tuple(x), Value::Tuple(y)) => {
            for (p, q) in x.iter().zip(y) {
                let o = scalar(p, q);
                if o != Ordering::Equal {
                    return o;
                }
            }
            Ordering::Equal
        }
        _ => scalar(a, b),
    }
}

/// Whether plain values of this kind are sorted by value (integers and
/// enums) rather than by key.
fn sorts_by_value(v: &Value) -> bool {
    match v {
        Value::Int(_) | Value::UInt(_) => true,
        // Pointers are printed `0x…`; enums by name. Only enums count as
        // integers.
        Value::Symbolic { name, value } => *name != format!("0x{value:x}"),
        _ => false,
    }
}

fn value_cmp(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => x.cmp(y),
        (Value::UInt(x), Value::UInt(y)) => x.cmp(y),
        (Value::Symbolic { value: x, .. }, Value::Symbolic { value: y, .. }) => x.cmp(y),
        (Value::Int(x), Value::UInt(y)) => i128::from(*x).cmp(&i128::from(*y)),
        (Value::UInt(x), Value::Int(y)) => i128::from(*x).cmp(&i128::from(*y)),
        _ => Ordering::Equal,
    }
}

fn hist_total(v: &MapValue) -> u64 {
    match v {
        MapValue::Hist { buckets, .. } | MapValue::Lhist { buckets, .. } => {
            buckets.values().fold(0u64, |a, c| a.wrapping_add(*c))
        }
        _ => 0,
    }
}

/// Entries in bpftrace's print order. Sorts are stable, so entries that
/// compare equal keep the order they were read in (bpftrace uses an
/// unstable sort there, which is stable for up to 16 entries).
pub(crate) fn sorted_entries(map: &MapDump) -> Vec<&MapEntry> {
    let mut entries: Vec<&MapEntry> = map.entries.iter().collect();
    let Some(first) = entries.first() else {
        return entries;
    };
    match &first.value {
        MapValue::Hist { .. } | MapValue::Lhist { .. } => {
            // bpftrace collects histograms into a key-ordered container
            // first, then sorts by total count.
            entries.sort_by(|a, b| raw_key_cmp(a, b));
            entries.sort_by_key(|e| hist_total(&e.value));
        }
        MapValue::Count(_) => entries.sort_by_key(|e| match e.value {
            MapValue::Count(c) => c,
            _ => 0,
        }),
        MapValue::Min(_) | MapValue::Max(_) => entries.sort_by_key(|e| match e.value {
            // Compared as unsigned, as bpftrace does.
            MapValue::Min(v) | MapValue::Max(v) => v as u64,
            _ => 0,
        }),
        MapValue::Avg { .. } | MapValue::Stats { .. } => entries.sort_by_key(|e| match e.value {
            MapValue::Avg { total, count } | MapValue::Stats { total, count } => {
                stats_of(total, count).1
            }
            _ => 0,
        }),
        MapValue::Sum(_) => entries.sort_by(|a, b| match (&a.value, &b.value) {
            (MapValue::Sum(x), MapValue::Sum(y)) => value_cmp(x, y),
            _ => Ordering::Equal,
        }),
        MapValue::Plain(v) if sorts_by_value(v) => {
            entries.sort_by(|a, b| match (&a.value, &b.value) {
                (MapValue::Plain(x), MapValue::Plain(y)) => value_cmp(x, y),
                _ => Ordering::Equal,
            })
        }
        MapValue::Plain(_) => entries.sort_by(|a, b| match (&a.key, &b.key) {
            (Some(x), Some(y)) => key_cmp(x, y),
            _ => Ordering::Equal,
        }),
    }
    entries
}

/// Entries after sorting and keeping the last `top` (0 = all).
pub(crate) fn selected_entries(map: &MapDump, top: usize) -> Vec<&MapEntry> {
    let mut entries = sorted_entries(map);
    if top > 0 && entries.len() > top {
        entries.drain(..entries.len() - top);
    }
    entries
}

/// [`format_map`] as bytes.
pub fn format_map_bytes(map: &MapDump, top: usize, div: u64) -> Vec<u8> {
    let div = div.max(1);
    let mut out = Vec::new();
    for entry in selected_entries(map, top) {
        out.extend_from_slice(map.name.as_bytes());
        if let Some(key) = &entry.key {
            out.push(b'[');
            out.extend(key_text(key));
            out.push(b']');
        }
        match &entry.value {
            MapValue::Hist { k, buckets } => {
                out.extend_from_slice(b":\n");
                write_hist(&mut out, &log2_rows(buckets, *k, div).rows);
                out.push(b'\n');
            }
            MapValue::Lhist {
                min,
                max,
                step,
                buckets,
            } => {
                out.extend_from_slice(b":\n");
                write_hist(&mut out, &linear_rows(buckets, *min, *max, *step).rows);
                out.push(b'\n');
            }
            other => {
                out.extend_from_slice(b": ");
                out.extend(format_value_bytes(&scalar_value(other, div)));
                out.push(b'\n');
            }
        }
        if entry.key.is_none() {
            // A scalar map has one value; bpftrace stops at the first.
            break;
        }
    }
    out
}

/// A map as `print(@m, top, div)` prints it (`top` 0 = all, `div` 1 =
/// none): entries sorted as bpftrace sorts them, the last `top` kept,
/// values divided by `div` (not lhist counts, nor stats count/total).
/// Histograms are blocks ending with a blank line; an entry whose buckets
/// are all zero prints its header and the blank line only.
///
/// A map without entries prints nothing. For `print()` of an empty
/// *scalar* map bpftrace prints the zero value (`@x: 0`,
/// `@s: { .count = 0, .average = 0, .total = 0 }`): pass an entry with a
/// zero value and no key for that.
pub fn format_map(map: &MapDump, top: usize, div: u64) -> String {
    String::from_utf8_lossy(&format_map_bytes(map, top, div)).into_owned()
}

/// A map as printed at exit: the same as `print(@m)`.
pub fn format_map_at_exit(map: &MapDump) -> String {
    format_map(map, 0, 1)
}

/// All maps at exit, in bpftrace's order (by name, bytewise). bpftrace
/// prints `"\n\n"` before this (even when no map is printed).
pub fn format_maps_at_exit(maps: &[MapDump]) -> Vec<u8> {
    let mut sorted: Vec<&MapDump> = maps.iter().collect();
    sorted.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
    sorted
        .into_iter()
        .flat_map(|m| format_map_bytes(m, 0, 1))
        .collect()
}
