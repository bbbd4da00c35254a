//! A tiny model of the C++ output stream bpftrace formats into.
//!
//! bpftrace renders values and printf conversions with `std::ostream`, not
//! `snprintf`, so the observable rules are the stream's: the field width
//! applies to the *first* insertion only and is then reset; padding uses the
//! fill character on the left (right-aligned) or the right (left-aligned),
//! also for numbers (`%05d` of -42 gives `00-42`); `+` only affects signed
//! decimals; the `0x` prefix of `#` is only added to non-zero values.

use crate::value::Value;

/// Largest field width honoured; wider requests are capped so untrusted
/// format strings cannot make us allocate without bound.
pub const MAX_WIDTH: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Base {
    Dec,
    Oct,
    Hex,
}

#[derive(Debug, Clone)]
pub(crate) struct Stream {
    pub out: Vec<u8>,
    /// Pending field width for the next insertion (0 = none).
    pub width: usize,
    pub fill: u8,
    pub left: bool,
    pub showpos: bool,
    pub showbase: bool,
    pub uppercase: bool,
    pub base: Base,
}

impl Default for Stream {
    fn default() -> Self {
        Stream {
            out: Vec::new(),
            width: 0,
            fill: b' ',
            left: false,
            showpos: false,
            showbase: false,
            uppercase: false,
            base: Base::Dec,
        }
    }
}

impl Stream {
    /// One formatted insertion: pads `body` to the pending width.
    pub fn put(&mut self, body: &[u8]) {
        let width = self.width.min(MAX_WIDTH);
        self.width = 0;
        let pad = width.saturating_sub(body.len());
        if self.left {
            self.out.extend_from_slice(body);
            self.out.extend(std::iter::repeat_n(self.fill, pad));
        } else {
            self.out.extend(std::iter::repeat_n(self.fill, pad));
            self.out.extend_from_slice(body);
        }
    }

    fn digits(&self, mut u: u64, base: Base) -> Vec<u8> {
        let (radix, table): (u64, &[u8; 16]) = match (base, self.uppercase) {
            (Base::Dec, _) => (10, b"0123456789abcdef"),
            (Base::Oct, _) => (8, b"0123456789abcdef"),
            (Base::Hex, false) => (16, b"0123456789abcdef"),
            (Base::Hex, true) => (16, b"0123456789ABCDEF"),
        };
        let mut rev = Vec::with_capacity(24);
        loop {
            rev.push(table[(u % radix) as usize]);
            u /= radix;
            if u == 0 {
                break;
            }
        }
        rev.reverse();
        rev
    }

    /// Integer insertion as the stream's numeric formatter does it.
    fn put_int(&mut self, magnitude_or_bits: u64, negative: bool, signed: bool) {
        let base = self.base;
        let mut body = Vec::with_capacity(24);
        if base == Base::Dec {
            if negative {
                body.push(b'-');
            } else if self.showpos && signed {
                body.push(b'+');
            }
        } else if self.showbase && magnitude_or_bits != 0 {
            body.push(b'0');
            if base == Base::Hex {
                body.push(if self.uppercase { b'X' } else { b'x' });
            }
        }
        body.extend(self.digits(magnitude_or_bits, base));
        self.put(&body);
    }

    pub fn put_i64(&mut self, v: i64) {
        if self.base == Base::Dec {
            self.put_int(v.unsigned_abs(), v < 0, true);
        } else {
            // Non-decimal output shows the two's complement bits.
            self.put_int(v as u64, false, true);
        }
    }

    pub fn put_u64(&mut self, v: u64) {
        self.put_int(v, false, false);
    }

    /// `operator<<(const void*)`: hex with `0x` (none for null), whatever
    /// the stream's base and case.
    pub fn put_ptr(&mut self, v: u64) {
        let saved = (self.base, self.showbase, self.uppercase);
        self.base = Base::Hex;
        self.showbase = true;
        self.uppercase = false;
        self.put_u64(v);
        (self.base, self.showbase, self.uppercase) = saved;
    }

    /// A value as bpftrace's text emitter writes it into this stream.
    pub fn put_value(&mut self, v: &Value) {
        match v {
            Value::Int(i) => self.put_i64(*i),
            Value::UInt(u) => self.put_u64(*u),
            Value::Bool(b) => self.put(if *b { b"true" } else { b"false" }),
            Value::Str(s) => self.put(s),
            Value::Sym(s) => self.put(s.as_bytes()),
            Value::Symbolic { name, .. } => self.put(name.as_bytes()),
            Value::None => self.put(b"null"),
            Value::Stack(frames) => self.put(&stack_text(frames)),
            Value::Buffer(b) => self.put(&hex_buffer(b, true, true)),
            Value::Tuple(items) => {
                self.put(b"(");
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        self.put(b", ");
                    }
                    self.put_value(item);
                }
                self.put(b")");
            }
            Value::Array(items) => {
                self.put(b"[");
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        self.put(b",");
                    }
                    self.put_value(item);
                }
                self.put(b"]");
            }
            Value::Record(fields) => {
                if fields.is_empty() {
                    self.put(b"{}");
                    return;
                }
                self.put(b"{ ");
                for (i, (name, item)) in fields.iter().enumerate() {
                    if i > 0 {
                        self.put(b", ");
                    }
                    self.put(b".");
                    self.put(name.as_bytes());
                    self.put(b" = ");
                    self.put_value(item);
                }
                self.put(b" }");
            }
        }
    }
}

/// A stack as one string: a leading newline, then each frame's line.
pub(crate) fn stack_text(frames: &[String]) -> Vec<u8> {
    let mut s = Vec::with_capacity(1 + frames.iter().map(|f| f.len() + 1).sum::<usize>());
    s.push(b'\n');
    for f in frames {
        s.extend_from_slice(f.as_bytes());
        s.push(b'\n');
    }
    s
}

/// bpftrace's buffer rendering: printable ASCII kept (if `keep_ascii`),
/// other bytes as `\xNN` (if `escape_hex`) or as space-separated `NN`.
pub(crate) fn hex_buffer(data: &[u8], keep_ascii: bool, escape_hex: bool) -> Vec<u8> {
    let mut s = Vec::with_capacity(data.len() * 4);
    for (i, &b) in data.iter().enumerate() {
        if keep_ascii && (32..=126).contains(&b) {
            s.push(b);
        } else if escape_hex {
            s.extend_from_slice(format!("\\x{b:02x}").as_bytes());
        } else {
            s.extend_from_slice(format!("{b:02x}").as_bytes());
            if i + 1 != data.len() {
                s.push(b' ');
            }
        }
    }
    s
}
