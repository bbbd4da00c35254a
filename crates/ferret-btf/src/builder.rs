//! Builds small BTF blobs in memory, for tests of everything that reads
//! BTF (this crate, the compiler's fixtures) without a kernel.

use std::collections::HashMap;

use crate::TypeId;

/// Appends types one by one; each method returns the new type's id.
#[derive(Debug, Default)]
pub struct BtfBuilder {
    types: Vec<u8>,
    strings: Vec<u8>,
    string_offsets: HashMap<String, u32>,
    count: u32,
    /// Ids are numbered after this many types (for split BTF).
    base_types: u32,
    /// String offsets start after this many bytes (for split BTF).
    base_strings: u32,
}

const KIND_INT: u32 = 1;
const KIND_PTR: u32 = 2;
const KIND_ARRAY: u32 = 3;
const KIND_STRUCT: u32 = 4;
const KIND_UNION: u32 = 5;
const KIND_ENUM: u32 = 6;
const KIND_FWD: u32 = 7;
const KIND_TYPEDEF: u32 = 8;
const KIND_VOLATILE: u32 = 9;
const KIND_CONST: u32 = 10;
const KIND_FUNC: u32 = 12;
const KIND_FUNC_PROTO: u32 = 13;
const KIND_VAR: u32 = 14;
const KIND_ENUM64: u32 = 19;

/// A member for [`BtfBuilder::struct_type`]: name, type, bit offset, and
/// bitfield width (0 for none).
pub type MemberSpec<'a> = (&'a str, TypeId, u32, u8);

impl BtfBuilder {
    pub fn new() -> Self {
        let mut b = Self::default();
        b.strings.push(0);
        b.string_offsets.insert(String::new(), 0);
        b
    }

    /// A builder for split BTF on top of a base with `base_types` types and
    /// a string table of `base_strings` bytes.
    pub fn split(base_types: u32, base_strings: u32) -> Self {
        let mut b = Self {
            base_types,
            base_strings,
            ..Self::default()
        };
        // The empty name is the base's.
        b.string_offsets.insert(String::new(), 0);
        b
    }

    fn string(&mut self, s: &str) -> u32 {
        if let Some(&off) = self.string_offsets.get(s) {
            return off;
        }
        let off = self.base_strings + self.strings.len() as u32;
        self.strings.extend_from_slice(s.as_bytes());
        self.strings.push(0);
        self.string_offsets.insert(s.to_string(), off);
        off
    }

    fn record(&mut self, name: &str, kind: u32, vlen: u32, flag: bool, size_or_type: u32) -> u32 {
        let name_off = self.string(name);
        let info = (u32::from(flag) << 31) | (kind << 24) | vlen;
        for w in [name_off, info, size_or_type] {
            self.types.extend_from_slice(&w.to_le_bytes());
        }
        self.count += 1;
        self.base_types + self.count
    }

    fn words(&mut self, words: &[u32]) {
        for w in words {
            self.types.extend_from_slice(&w.to_le_bytes());
        }
    }

    pub fn int(&mut self, name: &str, size: u32, signed: bool) -> TypeId {
        let enc = if signed { 1 << 24 } else { 0 };
        let enc = if name.contains("char") {
            enc | 2 << 24
        } else {
            enc
        };
        let id = self.record(name, KIND_INT, 0, false, size);
        self.words(&[enc | (size * 8)]);
        id
    }

    /// An integer whose value is `bits` wide at bit `offset`, as old BTF
    /// described bitfields.
    pub fn int_bits(
        &mut self,
        name: &str,
        size: u32,
        signed: bool,
        offset: u8,
        bits: u8,
    ) -> TypeId {
        let enc = if signed { 1 << 24 } else { 0 };
        let id = self.record(name, KIND_INT, 0, false, size);
        self.words(&[enc | (u32::from(offset) << 16) | u32::from(bits)]);
        id
    }

    pub fn ptr(&mut self, target: TypeId) -> TypeId {
        self.record("", KIND_PTR, 0, false, target)
    }

    pub fn array(&mut self, elem: TypeId, index: TypeId, len: u32) -> TypeId {
        let id = self.record("", KIND_ARRAY, 0, false, 0);
        self.words(&[elem, index, len]);
        id
    }

    /// A struct (or union) of `size` bytes. Bitfield widths are recorded in
    /// the members (`kind_flag` set) when any member has one.
    pub fn struct_type(
        &mut self,
        name: &str,
        size: u32,
        union: bool,
        members: &[MemberSpec<'_>],
    ) -> TypeId {
        let bitfields = members.iter().any(|m| m.3 != 0);
        let kind = if union { KIND_UNION } else { KIND_STRUCT };
        let names: Vec<u32> = members.iter().map(|m| self.string(m.0)).collect();
        let id = self.record(name, kind, members.len() as u32, bitfields, size);
        for (m, name_off) in members.iter().zip(names) {
            let offset = if bitfields {
                (u32::from(m.3) << 24) | m.2
            } else {
                m.2
            };
            self.words(&[name_off, m.1, offset]);
        }
        id
    }

    /// An enum of `size` bytes; 64-bit values make it an `enum64`.
    pub fn enum_type(
        &mut self,
        name: &str,
        size: u32,
        signed: bool,
        values: &[(&str, i64)],
    ) -> TypeId {
        let wide = size == 8;
        let names: Vec<u32> = values.iter().map(|v| self.string(v.0)).collect();
        let kind = if wide { KIND_ENUM64 } else { KIND_ENUM };
        let id = self.record(name, kind, values.len() as u32, signed, size);
        for (v, name_off) in values.iter().zip(names) {
            if wide {
                self.words(&[name_off, v.1 as u32, (v.1 >> 32) as u32]);
            } else {
                self.words(&[name_off, v.1 as u32]);
            }
        }
        id
    }

    pub fn fwd(&mut self, name: &str, union: bool) -> TypeId {
        self.record(name, KIND_FWD, 0, union, 0)
    }

    pub fn typedef(&mut self, name: &str, target: TypeId) -> TypeId {
        self.record(name, KIND_TYPEDEF, 0, false, target)
    }

    pub fn const_of(&mut self, target: TypeId) -> TypeId {
        self.record("", KIND_CONST, 0, false, target)
    }

    pub fn volatile_of(&mut self, target: TypeId) -> TypeId {
        self.record("", KIND_VOLATILE, 0, false, target)
    }

    pub fn func_proto(&mut self, ret: TypeId, params: &[(&str, TypeId)]) -> TypeId {
        let names: Vec<u32> = params.iter().map(|p| self.string(p.0)).collect();
        let id = self.record("", KIND_FUNC_PROTO, params.len() as u32, false, ret);
        for (p, name_off) in params.iter().zip(names) {
            self.words(&[name_off, p.1]);
        }
        id
    }

    pub fn func(&mut self, name: &str, proto: TypeId) -> TypeId {
        self.record(name, KIND_FUNC, 1, false, proto)
    }

    /// A global variable of type `ty`.
    pub fn var(&mut self, name: &str, ty: TypeId) -> TypeId {
        let id = self.record(name, KIND_VAR, 0, false, ty);
        // Linkage: global.
        self.words(&[1]);
        id
    }

    /// The id the next type will get.
    pub fn next_id(&self) -> TypeId {
        self.base_types + self.count + 1
    }

    /// Bytes of the string table so far.
    pub fn strings_len(&self) -> u32 {
        self.strings.len() as u32
    }

    /// The finished blob: header, types, strings.
    pub fn finish(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(24 + self.types.len() + self.strings.len());
        out.extend_from_slice(&0xeb9f_u16.to_le_bytes());
        out.push(1);
        out.push(0);
        let type_len = self.types.len() as u32;
        for w in [24, 0, type_len, type_len, self.strings.len() as u32] {
            out.extend_from_slice(&w.to_le_bytes());
        }
        out.extend_from_slice(&self.types);
        out.extend_from_slice(&self.strings);
        out
    }
}
