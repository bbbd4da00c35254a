//! A minimal BTF encoder: the few type kinds a program's `func_info` needs.
//!
//! The verifier only accepts bpf-to-bpf callbacks (`bpf_for_each_map_elem`,
//! `bpf_loop`, ...) in programs that come with BTF describing each function
//! ("missing btf func_info"). That BTF is tiny: one `FUNC` (static linkage)
//! per function pointing at a `FUNC_PROTO`. Written by hand because the BTF
//! crates on crates.io read BTF (or come with a whole loader), and this is
//! a hundred lines of fixed layout from `include/uapi/linux/btf.h`.

/// `BTF_MAGIC`
const MAGIC: u16 = 0xeb9f;
const VERSION: u8 = 1;
const HEADER_LEN: u32 = 24;

const KIND_INT: u32 = 1;
const KIND_PTR: u32 = 2;
const KIND_FUNC: u32 = 12;
const KIND_FUNC_PROTO: u32 = 13;
/// `BTF_INT_SIGNED`, in the encoding byte of an `INT`'s extra word.
const INT_SIGNED: u32 = 1;

/// Visibility of a `FUNC` (`enum btf_func_linkage`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Linkage {
    /// Verified inline at each call site; its prototype is advisory.
    Static = 0,
    /// Verified once, on its own, against its prototype.
    Global = 1,
}

/// Builds one BTF blob. Type ids start at 1 (0 is `void`).
#[derive(Debug, Clone)]
pub struct BtfBuilder {
    types: Vec<u8>,
    strings: Vec<u8>,
    count: u32,
}

impl Default for BtfBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl BtfBuilder {
    pub fn new() -> Self {
        Self {
            types: Vec::new(),
            // Offset 0 is the empty name.
            strings: vec![0],
            count: 0,
        }
    }

    fn name(&mut self, name: &str) -> u32 {
        if name.is_empty() {
            return 0;
        }
        let off = self.strings.len() as u32;
        self.strings.extend_from_slice(name.as_bytes());
        self.strings.push(0);
        off
    }

    fn words(&mut self, words: &[u32]) {
        for w in words {
            self.types.extend_from_slice(&w.to_ne_bytes());
        }
    }

    /// `struct btf_type`: name, info (kind, vlen), size or type.
    fn header(&mut self, name_off: u32, kind: u32, vlen: u32, size_or_type: u32) -> u32 {
        self.words(&[name_off, (kind << 24) | (vlen & 0xffff), size_or_type]);
        self.count += 1;
        self.count
    }

    /// An integer type of `size` bytes.
    pub fn int(&mut self, name: &str, size: u32, signed: bool) -> u32 {
        let name_off = self.name(name);
        let id = self.header(name_off, KIND_INT, 0, size);
        let encoding = if signed { INT_SIGNED } else { 0 };
        self.words(&[(encoding << 24) | (size * 8)]);
        id
    }

    /// A pointer to `target` (0: `void *`).
    pub fn ptr(&mut self, target: u32) -> u32 {
        self.header(0, KIND_PTR, 0, target)
    }

    /// A function prototype: return type and named parameters.
    pub fn func_proto(&mut self, ret: u32, params: &[(&str, u32)]) -> u32 {
        let offs: Vec<(u32, u32)> = params
            .iter()
            .map(|&(name, ty)| (self.name(name), ty))
            .collect();
        let id = self.header(0, KIND_FUNC_PROTO, params.len() as u32, ret);
        for (name_off, ty) in offs {
            self.words(&[name_off, ty]);
        }
        id
    }

    /// A function named `name` (a C identifier) of prototype `proto`.
    pub fn func(&mut self, name: &str, proto: u32, linkage: Linkage) -> u32 {
        let name_off = self.name(name);
        self.header(name_off, KIND_FUNC, linkage as u32, proto)
    }

    /// The blob `BPF_BTF_LOAD` takes: header, types, strings.
    pub fn encode(&self) -> Vec<u8> {
        let type_len = self.types.len() as u32;
        let mut out =
            Vec::with_capacity(HEADER_LEN as usize + self.types.len() + self.strings.len());
        out.extend_from_slice(&MAGIC.to_ne_bytes());
        out.push(VERSION);
        out.push(0); // flags
        for w in [
            HEADER_LEN,
            0, // type_off
            type_len,
            type_len, // str_off
            self.strings.len() as u32,
        ] {
            out.extend_from_slice(&w.to_ne_bytes());
        }
        out.extend_from_slice(&self.types);
        out.extend_from_slice(&self.strings);
        out
    }
}

/// One `struct bpf_func_info` record: where a function starts, and its
/// `FUNC` type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FuncInfo {
    pub insn_off: u32,
    pub type_id: u32,
}

/// Size of one encoded [`FuncInfo`] (`func_info_rec_size`).
pub const FUNC_INFO_SIZE: u32 = 8;

/// Encodes records for `BPF_PROG_LOAD`'s `func_info`.
pub fn encode_func_info(records: &[FuncInfo]) -> Vec<u8> {
    records
        .iter()
        .flat_map(|r| {
            let mut b = [0u8; 8];
            b[..4].copy_from_slice(&r.insn_off.to_ne_bytes());
            b[4..].copy_from_slice(&r.type_id.to_ne_bytes());
            b
        })
        .collect()
}

/// BTF and `func_info` for a program of `insn_count` instructions whose
/// subprograms start at `subprograms` (ascending, after 0): one static
/// `long f(void)` per function, the main one named after the program.
///
/// Static functions are verified at each call with the registers the
/// caller really passes, so an empty parameter list says nothing false
/// and gives the verifier nothing to compare.
pub fn program_func_info(program: &str, subprograms: &[usize]) -> (Vec<u8>, Vec<FuncInfo>) {
    let mut btf = BtfBuilder::new();
    let long = btf.int("long", 8, true);
    let proto = btf.func_proto(long, &[]);
    let main = identifier(program);
    let mut records = vec![FuncInfo {
        insn_off: 0,
        type_id: btf.func(&main, proto, Linkage::Static),
    }];
    for (i, &start) in subprograms.iter().enumerate() {
        let type_id = btf.func(&format!("{main}_sub{i}"), proto, Linkage::Static);
        records.push(FuncInfo {
            insn_off: start as u32,
            type_id,
        });
    }
    (btf.encode(), records)
}

/// `name` as a C identifier (what the kernel accepts as a `FUNC` name).
fn identifier(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .take(100)
        .collect();
    if !out.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
        out.insert(0, '_');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u32_at(b: &[u8], off: usize) -> u32 {
        u32::from_ne_bytes(b[off..off + 4].try_into().unwrap())
    }

    #[test]
    fn header_and_sections() {
        let mut b = BtfBuilder::new();
        let int = b.int("int", 4, true);
        let ptr = b.ptr(0);
        let proto = b.func_proto(int, &[("ctx", ptr)]);
        let func = b.func("f", proto, Linkage::Static);
        assert_eq!((int, ptr, proto, func), (1, 2, 3, 4));
        let blob = b.encode();
        assert_eq!(&blob[..4], &[0x9f, 0xeb, 1, 0]);
        let type_len = u32_at(&blob, 12);
        // INT 16, PTR 12, FUNC_PROTO 12 + 8, FUNC 12
        assert_eq!(type_len, 60);
        assert_eq!(u32_at(&blob, 8), 0);
        assert_eq!(u32_at(&blob, 16), type_len);
        let strings = &blob[24 + type_len as usize..];
        assert_eq!(strings, b"\0int\0ctx\0f\0");
        assert_eq!(u32_at(&blob, 20) as usize, strings.len());

        let types = &blob[24..];
        // INT: name "int", kind 1, size 4, signed 32 bits.
        assert_eq!(
            [u32_at(types, 0), u32_at(types, 4), u32_at(types, 8)],
            [1, 1 << 24, 4]
        );
        assert_eq!(u32_at(types, 12), (1 << 24) | 32);
        // PTR to void.
        assert_eq!(
            [u32_at(types, 16), u32_at(types, 20), u32_at(types, 24)],
            [0, 2 << 24, 0]
        );
        // FUNC_PROTO returning int, one parameter "ctx" of type 2.
        assert_eq!(
            [u32_at(types, 28), u32_at(types, 32), u32_at(types, 36)],
            [0, (13 << 24) | 1, 1]
        );
        assert_eq!([u32_at(types, 40), u32_at(types, 44)], [5, 2]);
        // FUNC "f", static, of the prototype.
        assert_eq!(
            [u32_at(types, 48), u32_at(types, 52), u32_at(types, 56)],
            [9, 12 << 24, 3]
        );
    }

    #[test]
    fn func_info_for_a_program() {
        let (blob, records) = program_func_info("ferret/p0", &[7, 12]);
        assert_eq!(
            records,
            vec![
                FuncInfo {
                    insn_off: 0,
                    type_id: 3
                },
                FuncInfo {
                    insn_off: 7,
                    type_id: 4
                },
                FuncInfo {
                    insn_off: 12,
                    type_id: 5
                },
            ]
        );
        let type_len = u32_at(&blob, 12) as usize;
        let strings = &blob[24 + type_len..];
        assert_eq!(
            strings,
            b"\0long\0ferret_p0\0ferret_p0_sub0\0ferret_p0_sub1\0"
        );
        let encoded = encode_func_info(&records);
        assert_eq!(encoded.len(), 3 * FUNC_INFO_SIZE as usize);
        assert_eq!(u32_at(&encoded, 8), 7);
        assert_eq!(u32_at(&encoded, 12), 4);
    }

    #[test]
    fn names_become_identifiers() {
        assert_eq!(identifier("a.b-c"), "a_b_c");
        assert_eq!(identifier("0x"), "_0x");
        assert_eq!(identifier(""), "_");
    }
}
