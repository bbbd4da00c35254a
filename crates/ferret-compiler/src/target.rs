//! What the compiler needs to know about the kernel it compiles for, handed
//! in by the caller so compilation stays pure: the tracepoints that exist and
//! their record layouts, the kernel's types (BTF), the number of CPUs, the
//! clock at start.

use std::collections::HashMap;
use std::sync::Arc;

use ferret_btf::Btf;
use ferret_usym::{Binary, Function};

use crate::syscalls::SyscallAbi;

/// The kernel a program is compiled for.
pub trait Target {
    /// Every tracepoint as `(category, event)`.
    fn tracepoints(&self) -> Vec<(String, String)>;
    /// The text of `events/CATEGORY/EVENT/format`, if that tracepoint exists.
    fn tracepoint_format(&self, category: &str, event: &str) -> Option<String>;
    /// Online CPUs, the value of `ncpus`.
    fn ncpus(&self) -> u64;
    /// `CLOCK_BOOTTIME` at program start in ns, the origin of `elapsed`.
    fn start_ns(&self) -> u64;
    /// Whether the kernel makes kprobes (`CONFIG_KPROBES`).
    fn kprobes(&self) -> bool {
        false
    }
    /// The functions kprobe wildcards match, as `(function, module)` with
    /// an empty module for the kernel image's own; sorted.
    fn kernel_functions(&self) -> Vec<(String, String)> {
        Vec::new()
    }
    /// Whether the kernel makes fentry/fexit programs (BPF trampolines),
    /// asked with a function they could trace (its module, `vmlinux` for
    /// the kernel image's, and its id in that module's BTF); `Err` says
    /// why not.
    fn fentry(&self, module: &str, btf_id: u32) -> Result<(), String> {
        let _ = (module, btf_id);
        Err("this target cannot load programs".into())
    }
    /// The address of kernel symbol `name` (`kaddr("avenrun")`).
    fn kernel_symbol(&self, name: &str) -> Option<u64> {
        let _ = name;
        None
    }
    /// The cgroup v2 id of the cgroup directory at `path` (`cgroupid()`).
    fn cgroup_id(&self, path: &str) -> Option<u64> {
        let _ = path;
        None
    }
    /// The syscall numbers and register layout of the kernel's
    /// architecture, when ferret knows them: wide `syscalls:*` wildcards
    /// then compile to one program on the raw syscall tracepoints.
    fn syscall_abi(&self) -> Option<SyscallAbi> {
        None
    }
    /// The kernel's types, read on first use (programs that use no kernel
    /// type never ask); `Err` says why there are none.
    fn btf(&self) -> Result<&Btf, String> {
        Err("this target has no BTF".into())
    }
    /// `(st_dev, st_ino)` of ferret's own pid namespace when it is not the
    /// initial one: `pid` and `tid` are then numbered as that namespace
    /// numbers them, as bpftrace's are.
    fn pid_namespace(&self) -> Option<(u64, u64)> {
        None
    }
    /// `CLOCK_TAI` minus `CLOCK_BOOTTIME` at start, in ns (`nsecs(sw_tai)`).
    fn tai_offset_ns(&self) -> Option<u64> {
        None
    }
    /// The files a uprobe or USDT target names (`/bin/bash`, `bash`,
    /// `libc`; `""` is `pid`'s executable), best first: see
    /// [`ferret_usym::Resolver`]. `any_file` (`--unsafe`) accepts files
    /// that are not ELF executables or libraries.
    fn user_binaries(&self, target: &str, pid: Option<u32>, any_file: bool) -> Vec<String> {
        let _ = (target, pid, any_file);
        Vec::new()
    }
    /// Every file process `pid` maps (its executable and libraries).
    fn process_binaries(&self, pid: u32) -> Vec<String> {
        let _ = pid;
        Vec::new()
    }
    /// The functions and USDT probes of the binary at `path`.
    fn user_binary(&self, path: &str) -> Result<Arc<Binary>, String> {
        Err(format!("cannot read {path}"))
    }
    /// Whether an instruction of function `f` in the binary at `path`
    /// starts `offset` bytes in; None when that cannot be checked.
    fn user_instruction_boundary(&self, path: &str, f: &Function, offset: u64) -> Option<bool> {
        let _ = (path, f, offset);
        None
    }
    /// The loaded kernel modules that publish their own BTF
    /// (`/sys/kernel/btf/MODULE`), sorted.
    fn btf_modules(&self) -> Vec<String> {
        Vec::new()
    }
    /// Module `name`'s types, split on top of [`Target::btf`]'s; read on
    /// first use.
    fn module_btf(&self, name: &str) -> Result<&Btf, String> {
        Err(format!("no BTF for module {name}"))
    }
}

/// A target with a fixed set of tracepoints, for tests and `--dry-run`
/// style compilation without a kernel.
#[derive(Debug, Default, Clone)]
pub struct FixedTarget {
    pub formats: HashMap<(String, String), String>,
    pub ncpus: u64,
    /// Kernel symbols and their addresses.
    pub symbols: HashMap<String, u64>,
    /// Cgroup paths and their ids.
    pub cgroups: HashMap<String, u64>,
    pub syscalls: Option<SyscallAbi>,
    /// Kernel types (tests build small blobs with `ferret_btf::BtfBuilder`).
    pub btf: Option<Arc<Btf>>,
    /// User-space binaries by path; a `lib` name finds the first whose file
    /// name starts with `NAME.so`.
    pub binaries: HashMap<String, Arc<Binary>>,
    /// Modules' types, split on top of `btf`.
    pub modules: HashMap<String, Arc<Btf>>,
    /// Whether kprobes can be made, and the functions they may attach to
    /// (`(function, module)`).
    pub kprobes: bool,
    pub kernel_functions: Vec<(String, String)>,
    /// Whether fentry/fexit programs can be made.
    pub fentry: bool,
}

impl FixedTarget {
    pub fn with_btf(mut self, btf: Btf) -> Self {
        self.btf = Some(Arc::new(btf));
        self
    }

    pub fn with_format(mut self, category: &str, event: &str, format: &str) -> Self {
        self.formats.insert(
            (category.to_string(), event.to_string()),
            format.to_string(),
        );
        self
    }
}

impl Target for FixedTarget {
    fn tracepoints(&self) -> Vec<(String, String)> {
        let mut all: Vec<_> = self.formats.keys().cloned().collect();
        all.sort();
        all
    }

    fn tracepoint_format(&self, category: &str, event: &str) -> Option<String> {
        self.formats
            .get(&(category.to_string(), event.to_string()))
            .cloned()
    }

    fn ncpus(&self) -> u64 {
        self.ncpus.max(1)
    }

    fn start_ns(&self) -> u64 {
        0
    }

    fn kprobes(&self) -> bool {
        self.kprobes
    }

    fn fentry(&self, _module: &str, _btf_id: u32) -> Result<(), String> {
        if self.fentry {
            Ok(())
        } else {
            Err("the kernel refuses BPF trampolines".into())
        }
    }

    fn kernel_functions(&self) -> Vec<(String, String)> {
        let mut all = self.kernel_functions.clone();
        all.sort();
        all
    }

    fn kernel_symbol(&self, name: &str) -> Option<u64> {
        self.symbols.get(name).copied()
    }

    fn cgroup_id(&self, path: &str) -> Option<u64> {
        self.cgroups.get(path).copied()
    }

    fn syscall_abi(&self) -> Option<SyscallAbi> {
        self.syscalls
    }
    fn btf(&self) -> Result<&Btf, String> {
        self.btf
            .as_deref()
            .ok_or_else(|| "this target has no BTF".to_string())
    }

    fn user_binaries(&self, target: &str, _pid: Option<u32>, _any_file: bool) -> Vec<String> {
        let mut paths: Vec<&String> = self.binaries.keys().collect();
        paths.sort();
        paths
            .into_iter()
            .filter(|p| {
                *p == target
                    || (target.starts_with("lib")
                        && p.rsplit('/')
                            .next()
                            .is_some_and(|f| f.starts_with(&format!("{target}.so"))))
            })
            .cloned()
            .collect()
    }

    fn user_binary(&self, path: &str) -> Result<Arc<Binary>, String> {
        self.binaries
            .get(path)
            .cloned()
            .ok_or_else(|| format!("cannot read {path}: No such file or directory"))
    }

    /// Binaries described by hand have no code: every offset starts an
    /// instruction.
    fn user_instruction_boundary(&self, _path: &str, _f: &Function, _offset: u64) -> Option<bool> {
        Some(true)
    }

    fn btf_modules(&self) -> Vec<String> {
        let mut names: Vec<String> = self.modules.keys().cloned().collect();
        names.sort();
        names
    }
    fn module_btf(&self, name: &str) -> Result<&Btf, String> {
        self.modules
            .get(name)
            .map(|b| &**b)
            .ok_or_else(|| format!("no BTF for module {name}"))
    }
}

/// One field of a tracepoint record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TracepointField {
    pub name: String,
    /// The C type as written in the format file (`const char *`).
    pub c_type: String,
    pub offset: u32,
    pub size: u32,
    pub signed: bool,
    pub kind: FieldKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    /// An integer of `size` bytes.
    Integer,
    /// A pointer (8 bytes on the 64-bit targets we support).
    Pointer,
    /// `char name[N]`
    CharArray { len: u32 },
    /// Another fixed array, `int x[N]`, of elements of `elem_size` bytes.
    Array { elem_size: u32, len: u32 },
    /// `__data_loc char[] name`: a u32 whose low half is the offset of the
    /// string in the record and high half its length.
    DataLocString,
    /// `__data_loc` of anything else (bytes).
    DataLocArray,
}

/// A parsed tracepoint `format` file: the fields after the common ones,
/// and the common ones (`common_type`, `common_pid`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TracepointFormat {
    pub fields: Vec<TracepointField>,
    pub common: Vec<TracepointField>,
}

impl TracepointFormat {
    /// Parses the text of a tracefs `format` file. Lines look like
    /// `\tfield:const char * filename;\toffset:24;\tsize:8;\tsigned:0;`.
    pub fn parse(text: &str) -> TracepointFormat {
        let mut fields = Vec::new();
        let mut common = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            let Some(rest) = line.strip_prefix("field:") else {
                continue;
            };
            let mut decl = "";
            let mut offset = None;
            let mut size = None;
            let mut signed = false;
            for part in rest.split(';') {
                let part = part.trim();
                if let Some(v) = part.strip_prefix("offset:") {
                    offset = v.trim().parse().ok();
                } else if let Some(v) = part.strip_prefix("size:") {
                    size = v.trim().parse().ok();
                } else if let Some(v) = part.strip_prefix("signed:") {
                    signed = v.trim() == "1";
                } else if decl.is_empty() && !part.is_empty() {
                    decl = part;
                }
            }
            let (Some(offset), Some(size)) = (offset, size) else {
                continue;
            };
            if let Some(field) = parse_decl(decl, offset, size, signed) {
                if field.name.starts_with("common_") {
                    common.push(field);
                } else {
                    fields.push(field);
                }
            }
        }
        TracepointFormat { fields, common }
    }

    pub fn field(&self, name: &str) -> Option<&TracepointField> {
        self.fields.iter().find(|f| f.name == name)
    }
}

fn parse_decl(decl: &str, offset: u32, size: u32, signed: bool) -> Option<TracepointField> {
    let data_loc = decl.starts_with("__data_loc");
    // `__data_loc char[] name` puts the brackets before the name.
    let stripped;
    let decl = if data_loc {
        stripped = decl.trim_start_matches("__data_loc").replace("[]", "");
        stripped.trim()
    } else {
        decl
    };
    // The name is the last identifier, possibly followed by `[N]` or `[]`.
    let (head, array) = match decl.find('[') {
        Some(i) => (&decl[..i], Some(decl[i + 1..].trim_end_matches(']').trim())),
        None => (decl, None),
    };
    let head = head.trim();
    let split = head.rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))?;
    let name = head[split + 1..].to_string();
    let c_type = head[..=split].trim().to_string();
    if name.is_empty() {
        return None;
    }
    let is_char = c_type.ends_with("char") && !c_type.contains('*');
    let kind = if data_loc {
        if is_char || c_type.contains("char") {
            FieldKind::DataLocString
        } else {
            FieldKind::DataLocArray
        }
    } else if let Some(len) = array {
        let len: u32 = len.parse().ok()?;
        if is_char {
            FieldKind::CharArray { len }
        } else {
            FieldKind::Array {
                elem_size: if len == 0 { size } else { size / len.max(1) },
                len,
            }
        }
    } else if c_type.contains('*') {
        FieldKind::Pointer
    } else {
        FieldKind::Integer
    };
    Some(TracepointField {
        name,
        c_type,
        offset,
        size,
        signed,
        kind,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPENAT: &str = "name: sys_enter_openat
ID: 633
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;
\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;

\tfield:int __syscall_nr;\toffset:8;\tsize:4;\tsigned:1;
\tfield:int dfd;\toffset:16;\tsize:8;\tsigned:0;
\tfield:const char * filename;\toffset:24;\tsize:8;\tsigned:0;
\tfield:int flags;\toffset:32;\tsize:8;\tsigned:0;
\tfield:umode_t mode;\toffset:40;\tsize:8;\tsigned:0;
\tfield:char comm[16];\toffset:48;\tsize:16;\tsigned:0;
\tfield:__data_loc char[] name;\toffset:64;\tsize:4;\tsigned:0;

print fmt: \"dfd: 0x%08lx\"
";

    #[test]
    fn parses_fields_of_each_kind() {
        let f = TracepointFormat::parse(OPENAT);
        let names: Vec<_> = f.fields.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "__syscall_nr",
                "dfd",
                "filename",
                "flags",
                "mode",
                "comm",
                "name"
            ]
        );
        assert_eq!(
            f.field("filename").map(|f| f.kind),
            Some(FieldKind::Pointer)
        );
        assert_eq!(
            f.field("comm").map(|f| f.kind),
            Some(FieldKind::CharArray { len: 16 })
        );
        assert_eq!(
            f.field("name").map(|f| f.kind),
            Some(FieldKind::DataLocString)
        );
        assert_eq!(f.field("__syscall_nr").map(|f| f.signed), Some(true));
    }
}
