//! `-f json`: one JSON object per line, spaced exactly as bpftrace spaces
//! them (`": "` and `", "` in objects, nothing after `,` in arrays).
//!
//! Known bpftrace quirk not reproduced: after escaping a control character
//! bpftrace leaves its output stream in hexadecimal mode, so later raw
//! numbers in the same session (histogram counts, `lost_events`) come out
//! in hex. These functions are stateless and always print decimal.

use crate::text::{self, HistRows};
use crate::value::{MapDump, MapValue, Value};

/// A JSON string literal, escaped as bpftrace escapes it: `"` `\` `\n`
/// `\r` `\t` by name, other bytes below 0x20 as `\u00XX`, and — because
/// bpftrace treats bytes as signed `char` — bytes from 0x80 up as
/// `\uffffffXX`.
pub fn string(s: &[u8]) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for &b in s {
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            0..=0x1f => out.push_str(&format!("\\u{b:04x}")),
            0x80..=0xff => out.push_str(&format!("\\u{:04x}", i32::from(b as i8) as u32)),
            _ => out.push(char::from(b)),
        }
    }
    out.push('"');
    out
}

/// An integer, or its decimal text as a JSON string when a double cannot
/// hold it exactly.
fn number(v: i128) -> String {
    let d = v as f64;
    if d as i128 == v {
        v.to_string()
    } else {
        format!("\"{v}\"")
    }
}

/// A value in JSON: numbers, `true`/`false`, strings, arrays for tuples and
/// arrays, objects for records, `null` for none; enums and pointers as
/// their number; buffers as arrays of signed bytes.
pub fn value_json(v: &Value) -> String {
    match v {
        Value::Int(i) => number(i128::from(*i)),
        Value::UInt(u) => number(i128::from(*u)),
        Value::Bool(b) => b.to_string(),
        Value::Str(s) => string(s),
        Value::Sym(s) => string(s.as_bytes()),
        Value::Stack(frames) => string(&crate::stream::stack_text(frames)),
        Value::Symbolic { value, .. } => number(i128::from(*value)),
        Value::None => "null".to_string(),
        Value::Tuple(items) | Value::Array(items) => {
            let parts: Vec<String> = items.iter().map(value_json).collect();
            format!("[{}]", parts.join(","))
        }
        Value::Buffer(bytes) => {
            let parts: Vec<String> = bytes.iter().map(|b| (*b as i8).to_string()).collect();
            format!("[{}]", parts.join(","))
        }
        Value::Record(fields) => {
            let parts: Vec<String> = fields
                .iter()
                .map(|(k, v)| format!("{}: {}", string(k.as_bytes()), value_json(v)))
                .collect();
            format!("{{{}}}", parts.join(", "))
        }
    }
}

fn hist_json(rows: &HistRows) -> String {
    let parts: Vec<String> = rows
        .json
        .iter()
        .map(|(min, max, count)| {
            let mut s = String::from("{");
            if let Some(min) = min {
                s.push_str(&format!("\"min\": {}, ", number(*min)));
            }
            if let Some(max) = max {
                s.push_str(&format!("\"max\": {}, ", number(*max)));
            }
            s.push_str(&format!("\"count\": {count}}}"));
            s
        })
        .collect();
    format!("[{}]", parts.join(","))
}

fn entry_json(v: &MapValue, div: u64) -> String {
    match v {
        MapValue::Hist { k, buckets } => hist_json(&text::log2_rows(buckets, *k, div)),
        MapValue::Lhist {
            min,
            max,
            step,
            buckets,
        } => hist_json(&text::linear_rows(buckets, *min, *max, *step)),
        other => value_json(&text::scalar_value(other, div)),
    }
}

fn line(kind: &str, data: &str) -> String {
    format!("{{\"type\": \"{kind}\", \"data\": {data}}}\n")
}

/// `{"type": "attached_probes", "count": N, "data": {"probes": N}}`
pub fn attached_probes(n: u64) -> String {
    format!("{{\"type\": \"attached_probes\", \"count\": {n}, \"data\": {{\"probes\": {n}}}}}\n")
}

/// `{"type": "lost_events", "count": N, "data": {"events": N}}`
pub fn lost_events(n: u64) -> String {
    format!("{{\"type\": \"lost_events\", \"count\": {n}, \"data\": {{\"events\": {n}}}}}\n")
}

/// `{"type": "printf", "data": "…"}` for the formatted text.
pub fn printf(text: &[u8]) -> String {
    line("printf", &string(text))
}

/// Other plain-text events: `time`, `cat`, `join`, `syscall`.
pub fn text_event(kind: &str, text: &[u8]) -> String {
    line(kind, &string(text))
}

/// `{"type": "errorf"|"warnf"|"runtime_error", "msg": …, "filename": …,
/// "line": N, "col": N}`: a message about a place in the program.
pub fn located(kind: &str, msg: &[u8], filename: &str, line: u64, col: u64) -> String {
    format!(
        "{{\"type\": \"{kind}\", \"msg\": {}, \"filename\": {}, \"line\": {line}, \"col\": {col}}}\n",
        string(msg),
        string(filename.as_bytes())
    )
}

/// `{"type": "value", "data": …}` for `print(v)` of a non-map value.
pub fn value(v: &Value) -> String {
    line("value", &value_json(v))
}

/// `{"type": "map"|"hist"|"stats", "data": {"@m": …}}` for `print(@m,
/// top, div)` and exit printing (`top` 0 = all, `div` 1 = none). A map
/// without entries prints nothing. Keys are stringified without outer
/// parentheses and without any spaces.
pub fn map(map: &MapDump, top: usize, div: u64) -> String {
    let div = div.max(1);
    let entries = text::selected_entries(map, top);
    let Some(first) = entries.first() else {
        return String::new();
    };
    let kind = match first.value {
        MapValue::Hist { .. } | MapValue::Lhist { .. } => "hist",
        MapValue::Avg { .. } | MapValue::Stats { .. } => "stats",
        _ => "map",
    };
    let body = if first.key.is_none() {
        entry_json(&first.value, div)
    } else {
        let parts: Vec<String> = entries
            .iter()
            .map(|e| {
                let mut key = e.key.as_ref().map(text::key_text).unwrap_or_default();
                key.retain(|&c| c != b' ');
                format!("{}: {}", string(&key), entry_json(&e.value, div))
            })
            .collect();
        format!("{{{}}}", parts.join(", "))
    };
    line(
        kind,
        &format!("{{{}: {}}}", string(map.name.as_bytes()), body),
    )
}
