//! Runs compiled programs in rbpf's interpreter, with the kernel helpers
//! they call stubbed in memory: hash and per-CPU maps, the event ring
//! buffer, the current task's ids and name, and reads of "kernel" memory.
//!
//! Map loads are replaced by fake handles the helpers recognise. Every
//! pointer a helper is handed is checked against the memory the program may
//! legitimately own (its stack, the context record, map values), so a wrong
//! address in generated code fails the run instead of corrupting the test.

use std::cell::RefCell;
use std::ops::Range;

use ferret_bpf::insn::helper;
use ferret_bpf::{AluOp, Insn, Reg};
use ferret_compiler::{CompiledProgram, FixedTarget, Options, compile};
use ferret_syntax::{SourceFile, parse};

/// Category and event of the tracepoint [`target`] provides.
pub const TP: &str = "tracepoint:test:ev";

/// A tracepoint with one field of each kind the compiler reads.
pub const TP_FORMAT: &str = "name: ev
ID: 1000
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;
\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;

\tfield:int sig;\toffset:8;\tsize:4;\tsigned:1;
\tfield:unsigned int uval;\toffset:12;\tsize:4;\tsigned:0;
\tfield:long val;\toffset:16;\tsize:8;\tsigned:1;
\tfield:unsigned long uval64;\toffset:24;\tsize:8;\tsigned:0;
\tfield:unsigned char small;\toffset:32;\tsize:1;\tsigned:0;
\tfield:short half;\toffset:34;\tsize:2;\tsigned:1;
\tfield:const char * filename;\toffset:40;\tsize:8;\tsigned:0;
\tfield:char comm[16];\toffset:48;\tsize:16;\tsigned:0;
\tfield:__data_loc char[] name;\toffset:64;\tsize:4;\tsigned:0;
\tfield:__data_loc u8[] bytes;\toffset:68;\tsize:4;\tsigned:0;

print fmt: \"\"
";

/// Byte offsets of the fields of [`TP_FORMAT`].
pub mod field {
    pub const SIG: usize = 8;
    pub const UVAL: usize = 12;
    pub const VAL: usize = 16;
    pub const UVAL64: usize = 24;
    pub const SMALL: usize = 32;
    pub const HALF: usize = 34;
    pub const FILENAME: usize = 40;
    pub const COMM: usize = 48;
    pub const NAME: usize = 64;
    pub const BYTES: usize = 68;
    /// Where the `__data_loc` string's bytes go.
    pub const NAME_DATA: usize = 80;
    /// Size of a record.
    pub const RECORD: usize = 160;
}

/// The target every test compiles for: `tracepoint:test:ev` and a
/// `syscalls:sys_enter_test` tracepoint with the same layout.
pub fn target(ncpus: u64) -> FixedTarget {
    FixedTarget {
        ncpus,
        ..FixedTarget::default()
    }
    .with_format("test", "ev", TP_FORMAT)
    .with_format("syscalls", "sys_enter_test", TP_FORMAT)
}

/// Parses and compiles `src`, panicking with the diagnostics on failure.
pub fn build(src: &str) -> CompiledProgram {
    build_with(src, 1, &Options::default())
}

pub fn build_with(src: &str, ncpus: u64, opts: &Options) -> CompiledProgram {
    build_for(src, &target(ncpus), opts)
}

pub fn build_for(src: &str, target: &FixedTarget, opts: &Options) -> CompiledProgram {
    let file = SourceFile::new("test.bt", src);
    let ast = parse(&file).unwrap_or_else(|d| panic!("parse error in {src:?}: {d:?}"));
    compile(&ast, target, opts).unwrap_or_else(|d| panic!("compile error in {src:?}: {d:?}"))
}

use ferret_bpf::insn::map_type::{
    ARRAY as BPF_MAP_TYPE_ARRAY, PERCPU_ARRAY as BPF_MAP_TYPE_PERCPU_ARRAY,
    PERCPU_HASH as BPF_MAP_TYPE_PERCPU_HASH, RINGBUF as BPF_MAP_TYPE_RINGBUF,
};
const MAP_LOOKUP_PERCPU_ELEM: u32 = helper::MAP_LOOKUP_PERCPU_ELEM as u32;
/// A helper id no kernel uses: the prologue the harness adds calls it with
/// the frame pointer so the other helpers know where the stack is.
const RECORD_FP: i32 = 0x7ff0_0001;
/// `neg` on 64 bits.
const NEG64: u8 = 0x87;
/// What `bpf_get_func_ip` says: the probed function's address.
pub const FUNC_IP: u64 = 0xffff_ffff_8123_4560;
/// Fake map handles are this plus the map's index.
const HANDLE_BASE: u64 = 0x4d41_5000;
/// Loads of a callback's address become this plus the callback's first
/// instruction (after the harness's prologue), which the loop helpers
/// call.
const FUNC_BASE: u64 = 0x4655_4e00_0000;

const EFAULT: u64 = -14i64 as u64;
/// Reads below this address fail as in the kernel, without a fault.
const NULL_PAGE: u64 = 4096;
const ENOENT: u64 = -2i64 as u64;
const EEXIST: u64 = -17i64 as u64;
const E2BIG: u64 = -7i64 as u64;
const EAGAIN: u64 = -11i64 as u64;
const EINVAL: u64 = -22i64 as u64;

/// One map of the object.
#[derive(Debug, Clone)]
pub struct FakeMap {
    pub name: String,
    pub map_type: u32,
    pub key_size: u32,
    pub value_size: u32,
    pub max_entries: u32,
    /// Key bytes to the arena offset of each CPU's value (one for maps that
    /// are not per-CPU), in insertion order.
    entries: Vec<(Vec<u8>, Vec<usize>)>,
}

impl FakeMap {
    fn percpu(&self) -> bool {
        matches!(
            self.map_type,
            BPF_MAP_TYPE_PERCPU_HASH | BPF_MAP_TYPE_PERCPU_ARRAY
        )
    }

    fn is_array(&self) -> bool {
        matches!(
            self.map_type,
            BPF_MAP_TYPE_ARRAY | BPF_MAP_TYPE_PERCPU_ARRAY
        )
    }

    fn find(&self, key: &[u8]) -> Option<usize> {
        self.entries.iter().position(|(k, _)| k == key)
    }
}

/// Where in [`Machine::kernel_mem`] the current task's `task_struct` is.
pub const TASK: usize = 2048;

/// Where CPU 0's copy of every per-CPU variable is (a BTF-id load gives its
/// address); CPU `n`'s is `PERCPU_STRIDE * n` further.
pub const PERCPU: usize = 256;
pub const PERCPU_STRIDE: usize = 256;

/// Bytes of memory map values live in; addresses inside it stay valid for
/// the life of the machine.
const ARENA_WORDS: usize = 1 << 19;

/// The kernel a program runs against: maps, events, and what the helpers
/// report about the current task. Persists across runs, like a kernel.
pub struct Machine {
    pub maps: Vec<FakeMap>,
    /// Every event sent through the ring buffer.
    pub events: Vec<Vec<u8>>,
    /// Makes `ringbuf_output` fail, as when the buffer is full.
    pub ringbuf_full: bool,
    /// Map operations return a 32-bit `int`, zero-extended into r0, as
    /// kernels before 6.4 do when the verifier calls them directly.
    pub int_map_ops: bool,
    pub ncpus: u32,
    /// The CPU the next run happens on.
    pub cpu: u32,
    pub comm: Vec<u8>,
    pub pid: u32,
    pub tid: u32,
    pub uid: u32,
    pub gid: u32,
    pub ktime: u64,
    /// Bytes `probe_read*` may read besides the record, stack and maps;
    /// tests put strings here and pass their address in a record.
    pub kernel_mem: Vec<u8>,
    /// Helper ids called during the last run, in order.
    pub calls: Vec<u32>,
    /// The running program as the interpreter has it, for the loop
    /// helpers to call its callbacks.
    code: Vec<Insn>,
    arena: Vec<u64>,
    arena_used: usize,
    stack: Range<u64>,
    ctx: Range<u64>,
    faults: Vec<String>,
}

thread_local! {
    static CURRENT: RefCell<Option<Machine>> = const { RefCell::new(None) };
}

impl Machine {
    /// A machine holding the maps of `prog`'s object.
    pub fn new(prog: &CompiledProgram, ncpus: u32) -> Self {
        let mut maps: Vec<FakeMap> = prog
            .object
            .maps
            .iter()
            .map(|m| FakeMap {
                name: m.name.clone(),
                map_type: m.map_type,
                key_size: m.key_size,
                value_size: m.value_size,
                max_entries: m.max_entries,
                entries: Vec::new(),
            })
            .collect();
        maps.sort_by(|a, b| a.name.cmp(&b.name));
        let mut machine = Self {
            maps,
            events: Vec::new(),
            ringbuf_full: false,
            int_map_ops: false,
            ncpus,
            cpu: 0,
            comm: b"ferret-test".to_vec(),
            pid: 4242,
            tid: 4243,
            uid: 1000,
            gid: 100,
            ktime: 123_456_789_000,
            kernel_mem: vec![0; 4096],
            calls: Vec::new(),
            code: Vec::new(),
            arena: vec![0; ARENA_WORDS],
            arena_used: 0,
            stack: 0..0,
            ctx: 0..0,
            faults: Vec::new(),
        };
        // What the runtime writes before attaching.
        for (map, key, value) in &prog.map_entries {
            let i = machine.map_index(map);
            let entry = machine.insert(i, key.clone()).expect("room for the entry");
            let addr = machine.addr(machine.slot(i, entry, 0));
            assert!(machine.write(addr, value, "map_entries"));
        }
        machine
    }

    /// What `get_current_task` returns: the address of `kernel_mem[TASK]`.
    pub fn task_addr(&self) -> u64 {
        self.kernel_addr(TASK)
    }

    fn map_index(&self, name: &str) -> usize {
        self.maps
            .iter()
            .position(|m| m.name == name)
            .unwrap_or_else(|| panic!("no map {name} in the object"))
    }

    pub fn map(&self, name: &str) -> &FakeMap {
        &self.maps[self.map_index(name)]
    }

    /// Entries of map `name` as (key, value) for `cpu` (ignored for maps
    /// that are not per-CPU), in insertion order.
    pub fn entries(&self, name: &str, cpu: u32) -> Vec<(Vec<u8>, Vec<u8>)> {
        let m = self.map(name);
        m.entries
            .iter()
            .map(|(k, offs)| {
                let off = offs[if m.percpu() { cpu as usize } else { 0 }];
                (
                    k.clone(),
                    self.arena_bytes(off, m.value_size as usize).to_vec(),
                )
            })
            .collect()
    }

    /// The value of `key` in map `name` on `cpu`.
    pub fn value(&self, name: &str, key: &[u8], cpu: u32) -> Option<Vec<u8>> {
        self.entries(name, cpu)
            .into_iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }

    pub fn clear_map(&mut self, name: &str) {
        let i = self.map_index(name);
        self.maps[i].entries.clear();
    }

    fn arena_bytes(&self, off: usize, len: usize) -> &[u8] {
        // SAFETY: the arena is a live Vec<u64>; viewing its words as bytes
        // is always valid and the range is checked by the slice index.
        let all = unsafe {
            std::slice::from_raw_parts(self.arena.as_ptr().cast::<u8>(), self.arena.len() * 8)
        };
        &all[off..off + len]
    }

    fn arena_range(&self) -> Range<u64> {
        let base = self.arena.as_ptr() as u64;
        base..base + (self.arena.len() * 8) as u64
    }

    fn alloc(&mut self, len: usize) -> usize {
        let off = self.arena_used;
        // 8-aligned, with a gap so an overrun reads zeros, not a neighbour.
        self.arena_used += len.div_ceil(8) * 8 + 8;
        assert!(self.arena_used <= ARENA_WORDS * 8, "arena exhausted");
        off
    }

    fn addr(&self, off: usize) -> u64 {
        self.arena.as_ptr() as u64 + off as u64
    }

    fn kernel_range(&self) -> Range<u64> {
        let base = self.kernel_mem.as_ptr() as u64;
        base..base + self.kernel_mem.len() as u64
    }

    /// The address of `kernel_mem[off]`, to store in a record as a pointer.
    pub fn kernel_addr(&self, off: usize) -> u64 {
        self.kernel_mem.as_ptr() as u64 + off as u64
    }

    fn writable(&self, addr: u64, len: u64) -> bool {
        let end = addr.checked_add(len);
        [self.stack.clone(), self.arena_range()]
            .iter()
            .any(|r| r.start <= addr && end.is_some_and(|e| e <= r.end))
    }

    /// The end of the readable region holding `addr`.
    fn readable_end(&self, addr: u64) -> Option<u64> {
        [
            self.stack.clone(),
            self.ctx.clone(),
            self.arena_range(),
            self.kernel_range(),
        ]
        .into_iter()
        .find(|r| r.contains(&addr))
        .map(|r| r.end)
    }

    fn readable(&self, addr: u64, len: u64) -> bool {
        self.readable_end(addr)
            .is_some_and(|end| addr.checked_add(len).is_some_and(|e| e <= end))
    }

    fn fault(&mut self, msg: String) -> u64 {
        self.faults.push(msg);
        EFAULT
    }

    /// Copies `len` bytes the program owns at `addr` (checked).
    fn read(&mut self, addr: u64, len: u64, what: &str) -> Option<Vec<u8>> {
        if !self.readable(addr, len) {
            self.fault(format!("{what}: cannot read {len} bytes at {addr:#x}"));
            return None;
        }
        // SAFETY: the range lies inside memory checked above to be live for
        // this run (the interpreter's stack, the record, the arena, or
        // kernel_mem).
        Some(unsafe { std::slice::from_raw_parts(addr as *const u8, len as usize) }.to_vec())
    }

    fn write(&mut self, addr: u64, bytes: &[u8], what: &str) -> bool {
        if !self.writable(addr, bytes.len() as u64) {
            self.fault(format!(
                "{what}: cannot write {} bytes at {addr:#x}",
                bytes.len()
            ));
            return false;
        }
        // SAFETY: the range lies inside the interpreter's stack or the
        // arena, both live and writable for this run; the helper holds no
        // other reference into them.
        unsafe { std::ptr::copy(bytes.as_ptr(), addr as *mut u8, bytes.len()) };
        true
    }

    fn map_of(&mut self, handle: u64, what: &str) -> Option<usize> {
        let i = handle.wrapping_sub(HANDLE_BASE);
        if i < self.maps.len() as u64 {
            Some(i as usize)
        } else {
            self.fault(format!("{what}: {handle:#x} is not a map"));
            None
        }
    }

    fn key_of(&mut self, map: usize, key: u64, what: &str) -> Option<Vec<u8>> {
        let size = u64::from(self.maps[map].key_size);
        self.read(key, size, what)
    }

    /// Creates `key` in `map` with zeroed values on every CPU.
    fn insert(&mut self, map: usize, key: Vec<u8>) -> Option<usize> {
        let m = &self.maps[map];
        if m.entries.len() >= m.max_entries as usize {
            return None;
        }
        let n = if m.percpu() { self.ncpus as usize } else { 1 };
        let size = m.value_size as usize;
        let offs = (0..n).map(|_| self.alloc(size)).collect();
        self.maps[map].entries.push((key, offs));
        Some(self.maps[map].entries.len() - 1)
    }

    fn slot(&self, map: usize, entry: usize, cpu: u32) -> usize {
        let m = &self.maps[map];
        m.entries[entry].1[if m.percpu() { cpu as usize } else { 0 }]
    }

    fn lookup(&mut self, map: u64, key: u64, cpu: u32, what: &str) -> u64 {
        let Some(m) = self.map_of(map, what) else {
            return 0;
        };
        if matches!(self.maps[m].map_type, BPF_MAP_TYPE_RINGBUF) {
            return self.fault(format!("{what} on a ring buffer"));
        }
        let Some(k) = self.key_of(m, key, what) else {
            return 0;
        };
        let entry = match self.maps[m].find(&k) {
            Some(e) => e,
            None if self.maps[m].is_array() => {
                let idx = u32::from_le_bytes(k[..4].try_into().expect("4-byte key"));
                if idx >= self.maps[m].max_entries {
                    return 0;
                }
                match self.insert(m, k) {
                    Some(e) => e,
                    None => return 0,
                }
            }
            None => return 0,
        };
        let off = self.slot(m, entry, cpu);
        self.addr(off)
    }

    /// What r0 holds after a map operation returned `r`.
    fn map_op_result(&self, r: u64) -> u64 {
        if self.int_map_ops { r & 0xffff_ffff } else { r }
    }

    fn update(&mut self, map: u64, key: u64, value: u64, flags: u64) -> u64 {
        let what = "map_update_elem";
        let Some(m) = self.map_of(map, what) else {
            return EFAULT;
        };
        let Some(k) = self.key_of(m, key, what) else {
            return EFAULT;
        };
        let size = u64::from(self.maps[m].value_size);
        let Some(v) = self.read(value, size, what) else {
            return EFAULT;
        };
        let entry = match (self.maps[m].find(&k), flags) {
            (Some(_), 1) => return EEXIST,
            (None, 2) => return ENOENT,
            (Some(e), 0 | 2) => e,
            (None, 0 | 1) => match self.insert(m, k) {
                Some(e) => e,
                None => return E2BIG,
            },
            _ => return EINVAL,
        };
        let off = self.slot(m, entry, self.cpu);
        let addr = self.addr(off);
        self.write(addr, &v, what);
        0
    }

    fn delete(&mut self, map: u64, key: u64) -> u64 {
        let what = "map_delete_elem";
        let Some(m) = self.map_of(map, what) else {
            return EFAULT;
        };
        let Some(k) = self.key_of(m, key, what) else {
            return EFAULT;
        };
        match self.maps[m].find(&k) {
            Some(e) => {
                self.maps[m].entries.remove(e);
                0
            }
            None => ENOENT,
        }
    }

    fn ringbuf_output(&mut self, map: u64, data: u64, size: u64, flags: u64) -> u64 {
        let what = "ringbuf_output";
        let Some(m) = self.map_of(map, what) else {
            return EFAULT;
        };
        if self.maps[m].map_type != BPF_MAP_TYPE_RINGBUF {
            return self.fault(format!("{what} on map {}", self.maps[m].name));
        }
        if flags != 0 {
            return self.fault(format!("{what}: flags {flags}"));
        }
        let Some(bytes) = self.read(data, size, what) else {
            return EFAULT;
        };
        if self.ringbuf_full {
            return EAGAIN;
        }
        self.events.push(bytes);
        0
    }

    fn probe_read(&mut self, dst: u64, size: u64, src: u64) -> u64 {
        let what = "probe_read";
        if !self.writable(dst, size) {
            return self.fault(format!("{what}: bad destination {dst:#x}+{size}"));
        }
        if src < NULL_PAGE {
            self.write(dst, &vec![0; size as usize], what);
            return EFAULT;
        }
        match self.read(src, size, what) {
            Some(bytes) => {
                self.write(dst, &bytes, what);
                0
            }
            None => EFAULT,
        }
    }

    fn probe_read_str(&mut self, dst: u64, size: u64, src: u64) -> u64 {
        let what = "probe_read_str";
        if size == 0 || !self.writable(dst, size) {
            return self.fault(format!("{what}: bad destination {dst:#x}+{size}"));
        }
        if src < NULL_PAGE {
            // The kernel fails a read of the null page and zeroes `dst`;
            // programs rely on that (join() stops at a NULL argv entry).
            self.write(dst, &vec![0; size as usize], what);
            return EFAULT;
        }
        let Some(end) = self.readable_end(src) else {
            return self.fault(format!("{what}: cannot read at {src:#x}"));
        };
        let avail = (end - src).min(size - 1);
        let bytes = self.read(src, avail, what).unwrap_or_default();
        let mut out: Vec<u8> = bytes.into_iter().take_while(|&b| b != 0).collect();
        out.push(0);
        let n = out.len() as u64;
        self.write(dst, &out, what);
        n
    }

    fn call(&mut self, id: u32, a: [u64; 5]) -> u64 {
        self.calls.push(id);
        let cpu = self.cpu;
        match id {
            _ if id == RECORD_FP as u32 => {
                self.stack = a[0] - 512..a[0];
                // A kernel program's stack starts out as whatever was there
                // before: fill it with garbage so that code relying on
                // zeroes it did not write fails here too.
                self.write(a[0] - 512, &[0xa5; 512], "stack garbage");
                0
            }
            _ if id == helper::MAP_LOOKUP_ELEM as u32 => {
                self.lookup(a[0], a[1], cpu, "map_lookup_elem")
            }
            MAP_LOOKUP_PERCPU_ELEM => {
                if a[2] >= u64::from(self.ncpus) {
                    return 0;
                }
                self.lookup(a[0], a[1], a[2] as u32, "map_lookup_percpu_elem")
            }
            _ if id == helper::MAP_UPDATE_ELEM as u32 => {
                let r = self.update(a[0], a[1], a[2], a[3]);
                self.map_op_result(r)
            }
            _ if id == helper::MAP_DELETE_ELEM as u32 => {
                let r = self.delete(a[0], a[1]);
                self.map_op_result(r)
            }
            _ if id == helper::RINGBUF_OUTPUT as u32 => self.ringbuf_output(a[0], a[1], a[2], a[3]),
            _ if [
                helper::PROBE_READ,
                helper::PROBE_READ_KERNEL,
                helper::PROBE_READ_USER,
            ]
            .contains(&(id as i32)) =>
            {
                self.probe_read(a[0], a[1], a[2])
            }
            _ if [
                helper::PROBE_READ_STR,
                helper::PROBE_READ_KERNEL_STR,
                helper::PROBE_READ_USER_STR,
            ]
            .contains(&(id as i32)) =>
            {
                self.probe_read_str(a[0], a[1], a[2])
            }
            _ if id == helper::GET_CURRENT_COMM as u32 => {
                let size = a[1] as usize;
                if size == 0 {
                    return EINVAL;
                }
                // As 6.1 does (strscpy, not strscpy_pad): the bytes after
                // the terminating NUL keep what was there.
                let n = self.comm.len().min(size - 1).min(15);
                let mut buf = self.comm[..n].to_vec();
                buf.push(0);
                self.write(a[0], &buf, "get_current_comm");
                0
            }
            _ if id == helper::GET_CURRENT_PID_TGID as u32 => {
                (u64::from(self.pid) << 32) | u64::from(self.tid)
            }
            _ if id == helper::GET_CURRENT_UID_GID as u32 => {
                (u64::from(self.gid) << 32) | u64::from(self.uid)
            }
            _ if id == helper::KTIME_GET_NS as u32 || id == helper::KTIME_GET_BOOT_NS as u32 => {
                self.ktime
            }
            _ if id == helper::GET_SMP_PROCESSOR_ID as u32 => u64::from(cpu),
            _ if id == helper::GET_PRANDOM_U32 as u32 => 0x1234_5678,
            _ if id == helper::GET_CURRENT_CGROUP_ID as u32 => 0xc6,
            _ if id == helper::GET_FUNC_IP as u32 => {
                if self.ctx.contains(&a[0]) {
                    FUNC_IP
                } else {
                    self.fault(format!("get_func_ip: {:#x} is not the context", a[0]))
                }
            }
            _ if id == helper::GET_STACKID as u32 => 7,
            _ if id == helper::GET_CURRENT_TASK as u32 => self.task_addr(),
            _ if id == helper::PER_CPU_PTR as u32 => {
                if a[1] >= u64::from(self.ncpus) {
                    return 0;
                }
                a[0] + a[1] * PERCPU_STRIDE as u64
            }
            _ if id == helper::THIS_CPU_PTR as u32 => a[0] + u64::from(cpu) * PERCPU_STRIDE as u64,
            _ => self.fault(format!("unexpected helper {id}")),
        }
    }
}

fn with_machine(f: impl FnOnce(&mut Machine) -> u64) -> u64 {
    CURRENT.with(|c| {
        let mut guard = c.borrow_mut();
        let m = guard.as_mut().expect("a machine is running");
        f(m)
    })
}

macro_rules! stub {
    ($name:ident, $id:expr) => {
        fn $name(a: u64, b: u64, c: u64, d: u64, e: u64) -> u64 {
            with_machine(|m| m.call($id, [a, b, c, d, e]))
        }
    };
}

stub!(h_record_fp, RECORD_FP as u32);
stub!(h_lookup, helper::MAP_LOOKUP_ELEM as u32);
stub!(h_update, helper::MAP_UPDATE_ELEM as u32);
stub!(h_delete, helper::MAP_DELETE_ELEM as u32);
stub!(h_probe_read, helper::PROBE_READ as u32);
stub!(h_ktime, helper::KTIME_GET_NS as u32);
stub!(h_prandom, helper::GET_PRANDOM_U32 as u32);
stub!(h_cpu, helper::GET_SMP_PROCESSOR_ID as u32);
stub!(h_pid_tgid, helper::GET_CURRENT_PID_TGID as u32);
stub!(h_uid_gid, helper::GET_CURRENT_UID_GID as u32);
stub!(h_comm, helper::GET_CURRENT_COMM as u32);
stub!(h_stackid, helper::GET_STACKID as u32);
stub!(h_probe_read_str, helper::PROBE_READ_STR as u32);
stub!(h_cgroup, helper::GET_CURRENT_CGROUP_ID as u32);
stub!(h_probe_read_user, helper::PROBE_READ_USER as u32);
stub!(h_probe_read_kernel, helper::PROBE_READ_KERNEL as u32);
stub!(h_probe_read_user_str, helper::PROBE_READ_USER_STR as u32);
stub!(
    h_probe_read_kernel_str,
    helper::PROBE_READ_KERNEL_STR as u32
);
stub!(h_ktime_boot, helper::KTIME_GET_BOOT_NS as u32);
stub!(h_ringbuf_output, helper::RINGBUF_OUTPUT as u32);
stub!(h_lookup_percpu, MAP_LOOKUP_PERCPU_ELEM);
stub!(h_current_task, helper::GET_CURRENT_TASK as u32);
stub!(h_per_cpu_ptr, helper::PER_CPU_PTR as u32);
stub!(h_this_cpu_ptr, helper::THIS_CPU_PTR as u32);
stub!(h_func_ip, helper::GET_FUNC_IP as u32);

type Stub = fn(u64, u64, u64, u64, u64) -> u64;

const STUBS: &[(u32, Stub)] = &[
    (RECORD_FP as u32, h_record_fp),
    (helper::MAP_LOOKUP_ELEM as u32, h_lookup),
    (helper::MAP_UPDATE_ELEM as u32, h_update),
    (helper::MAP_DELETE_ELEM as u32, h_delete),
    (helper::PROBE_READ as u32, h_probe_read),
    (helper::KTIME_GET_NS as u32, h_ktime),
    (helper::GET_PRANDOM_U32 as u32, h_prandom),
    (helper::GET_SMP_PROCESSOR_ID as u32, h_cpu),
    (helper::GET_CURRENT_PID_TGID as u32, h_pid_tgid),
    (helper::GET_CURRENT_UID_GID as u32, h_uid_gid),
    (helper::GET_CURRENT_COMM as u32, h_comm),
    (helper::GET_STACKID as u32, h_stackid),
    (helper::PROBE_READ_STR as u32, h_probe_read_str),
    (helper::GET_CURRENT_CGROUP_ID as u32, h_cgroup),
    (helper::PROBE_READ_USER as u32, h_probe_read_user),
    (helper::PROBE_READ_KERNEL as u32, h_probe_read_kernel),
    (helper::PROBE_READ_USER_STR as u32, h_probe_read_user_str),
    (
        helper::PROBE_READ_KERNEL_STR as u32,
        h_probe_read_kernel_str,
    ),
    (helper::KTIME_GET_BOOT_NS as u32, h_ktime_boot),
    (helper::RINGBUF_OUTPUT as u32, h_ringbuf_output),
    (MAP_LOOKUP_PERCPU_ELEM, h_lookup_percpu),
    (helper::GET_CURRENT_TASK as u32, h_current_task),
    (helper::GET_FUNC_IP as u32, h_func_ip),
    (helper::LOOP as u32, h_loop),
    (helper::FOR_EACH_MAP_ELEM as u32, h_for_each),
    (helper::PER_CPU_PTR as u32, h_per_cpu_ptr),
    (helper::THIS_CPU_PTR as u32, h_this_cpu_ptr),
];

fn encode(insns: &[Insn]) -> Vec<u8> {
    insns.iter().flat_map(|i| i.encode()).collect()
}

/// The instructions the interpreter runs for program `index`: a prologue
/// reporting the frame pointer, then the program with map loads turned
/// into fake handles and callback loads into [`FUNC_BASE`] addresses.
fn interpreted(machine: &Machine, prog: &CompiledProgram, index: usize) -> Vec<Insn> {
    let p = &prog.programs[index];
    let mut insns = p.insns.clone();
    for (at, name) in &p.map_loads {
        let ld = insns[*at];
        assert!(
            ld.is_ld_imm64() && ld.src == 1,
            "map load {name} at {at} is not ld_imm64 with src_reg=1: {ld:?}"
        );
        let handle = HANDLE_BASE + machine.map_index(name) as u64;
        insns[*at].src = 0;
        insns[*at].imm = handle as i32;
        insns[*at + 1].imm = 0;
    }
    let prologue = [
        Insn::mov64_reg(Reg::R6, Reg::R1),
        Insn::mov64_reg(Reg::R1, Reg::FP),
        Insn::call(RECORD_FP),
        Insn::mov64_reg(Reg::R1, Reg::R6),
    ];
    for at in 0..insns.len() {
        let insn = insns[at];
        if insn.is_ld_imm64() && insn.src == ferret_bpf::insn::BPF_PSEUDO_FUNC {
            let target = (at as i64 + 1 + i64::from(insn.imm)) as u64 + prologue.len() as u64;
            let [lo, hi] = Insn::ld_imm64(Reg(insn.dst), FUNC_BASE + target);
            insns[at] = lo;
            insns[at + 1] = hi;
        }
    }
    // Kernel variables (`ld_imm64` of a BTF id) are at PERCPU.
    let percpu = machine.kernel_addr(PERCPU);
    for at in 0..insns.len() {
        if insns[at].is_ld_imm64() && insns[at].src == ferret_bpf::insn::BPF_PSEUDO_BTF_ID {
            let [lo, hi] = Insn::ld_imm64(Reg(insns[at].dst), percpu);
            insns[at] = lo;
            insns[at + 1] = hi;
        }
    }
    for insn in &mut insns {
        // rbpf negates with `-(x as i64)`, which panics on i64::MIN in debug
        // builds; multiplying by -1 is the same two's complement result.
        if insn.code == NEG64 {
            *insn = Insn::alu64_imm(AluOp::Mul, Reg(insn.dst), -1);
        }
    }
    prologue.iter().chain(&insns).copied().collect()
}

/// Calls the running program's callback at instruction `target` with
/// `args` in r1-r5, in an interpreter of its own (rbpf helpers cannot call
/// back into the program that called them), and returns its r0. Its
/// pointers into the program's stack, record and maps stay valid: the
/// outer run is waiting in the helper.
fn call_back(target: u64, args: [u64; 5]) -> Result<u64, String> {
    let (code, memory) = CURRENT.with(|c| {
        let guard = c.borrow();
        let m = guard.as_ref().expect("a machine is running");
        (
            m.code.clone(),
            [
                m.stack.clone(),
                m.ctx.clone(),
                m.arena_range(),
                m.kernel_range(),
            ],
        )
    });
    let mut insns = Vec::new();
    for (i, a) in args.iter().enumerate() {
        insns.extend(Insn::ld_imm64(Reg(i as u8 + 1), *a));
    }
    let at = insns.len();
    let start = at + 2 + target as usize;
    let mut call = Insn::call((start - at - 1) as i32);
    call.src = ferret_bpf::insn::BPF_PSEUDO_CALL;
    insns.extend([call, Insn::exit()]);
    insns.extend(code);
    let bytes = encode(&insns);
    let mut vm = rbpf::EbpfVmRaw::new(Some(&bytes)).map_err(|e| format!("rbpf rejected: {e}"))?;
    for &(id, f) in STUBS {
        vm.register_helper(id, f).map_err(|e| e.to_string())?;
    }
    for range in memory {
        vm.register_allowed_memory(range);
    }
    vm.execute_program(&mut [])
        .map_err(|e| format!("callback failed: {e}"))
}

/// `bpf_loop(n, callback, ctx, flags)`: the callback with (index, ctx)
/// until it returns 1; the number of calls.
fn h_loop(n: u64, func: u64, ctx: u64, _flags: u64, _e: u64) -> u64 {
    with_machine(|m| {
        m.calls.push(helper::LOOP as u32);
        0
    });
    let mut calls = 0;
    for i in 0..n.min(1 << 23) {
        calls += 1;
        match call_back(func.wrapping_sub(FUNC_BASE), [i, ctx, 0, 0, 0]) {
            Ok(0) => {}
            Ok(_) => break,
            Err(e) => return with_machine(|m| m.fault(e)),
        }
    }
    calls
}

/// `bpf_for_each_map_elem(map, callback, ctx, flags)`: the callback with
/// (map, key, value, ctx) for each element (this CPU's value) until it
/// returns 1; the number of calls.
fn h_for_each(map: u64, func: u64, ctx: u64, _flags: u64, _e: u64) -> u64 {
    with_machine(|m| {
        m.calls.push(helper::FOR_EACH_MAP_ELEM as u32);
        0
    });
    let Some(elements) = CURRENT.with(|c| {
        let mut guard = c.borrow_mut();
        let m = guard.as_mut().expect("a machine is running");
        let i = m.map_of(map, "for_each_map_elem")?;
        let entries: Vec<(Vec<u8>, usize)> = (0..m.maps[i].entries.len())
            .map(|e| (m.maps[i].entries[e].0.clone(), m.slot(i, e, m.cpu)))
            .collect();
        Some(
            entries
                .into_iter()
                .map(|(key, value)| {
                    let k = m.alloc(key.len());
                    let addr = m.addr(k);
                    // SAFETY: `k` was just allocated in the arena with room
                    // for the key.
                    unsafe { std::ptr::copy(key.as_ptr(), addr as *mut u8, key.len()) };
                    (addr, m.addr(value))
                })
                .collect::<Vec<_>>(),
        )
    }) else {
        return EINVAL;
    };
    let mut calls = 0;
    for (key, value) in elements {
        calls += 1;
        match call_back(func.wrapping_sub(FUNC_BASE), [map, key, value, ctx, 0]) {
            Ok(0) => {}
            Ok(_) => break,
            Err(e) => return with_machine(|m| m.fault(e)),
        }
    }
    calls
}

/// Runs program `index` of `prog` once with `ctx` as its context (the
/// tracepoint record), on `machine.cpu`. Returns r0, or the interpreter's
/// error or the first bad helper call.
pub fn run(
    machine: &mut Machine,
    prog: &CompiledProgram,
    index: usize,
    ctx: &mut [u8],
) -> Result<u64, String> {
    let insns = interpreted(machine, prog, index);
    let code = encode(&insns);
    machine.code = insns;
    let mut vm = rbpf::EbpfVmRaw::new(Some(&code)).map_err(|e| format!("rbpf rejected: {e}"))?;
    for &(id, f) in STUBS {
        vm.register_helper(id, f).map_err(|e| e.to_string())?;
    }
    let arena = machine.arena_range();
    vm.register_allowed_memory(arena);
    let ctx_range = ctx.as_ptr() as u64..ctx.as_ptr() as u64 + ctx.len() as u64;
    let mut m = std::mem::replace(machine, Machine::empty());
    m.ctx = ctx_range;
    m.calls.clear();
    m.faults.clear();
    CURRENT.with(|c| *c.borrow_mut() = Some(m));
    let result = vm.execute_program(ctx);
    let m = CURRENT
        .with(|c| c.borrow_mut().take())
        .expect("the machine is still there");
    *machine = m;
    let r0 = result.map_err(|e| format!("execution failed: {e}"))?;
    if let Some(f) = machine.faults.first() {
        return Err(f.clone());
    }
    Ok(r0)
}

impl Machine {
    /// A placeholder while the real machine is lent to the helpers.
    fn empty() -> Self {
        Self {
            maps: Vec::new(),
            events: Vec::new(),
            ringbuf_full: false,
            int_map_ops: false,
            ncpus: 1,
            cpu: 0,
            comm: Vec::new(),
            pid: 0,
            tid: 0,
            uid: 0,
            gid: 0,
            ktime: 0,
            kernel_mem: Vec::new(),
            calls: Vec::new(),
            code: Vec::new(),
            arena: Vec::new(),
            arena_used: 0,
            stack: 0..0,
            ctx: 0..0,
            faults: Vec::new(),
        }
    }
}

/// A zeroed tracepoint record of [`TP_FORMAT`]'s size.
pub fn record() -> Vec<u8> {
    vec![0; field::RECORD]
}

pub fn put(record: &mut [u8], off: usize, bytes: &[u8]) {
    record[off..off + bytes.len()].copy_from_slice(bytes);
}

/// Compiles `src` and runs every program once, in order, on a fresh
/// machine, with a zeroed record; returns the machine.
pub fn run_all(src: &str) -> (CompiledProgram, Machine) {
    let prog = build(src);
    let mut m = Machine::new(&prog, 1);
    for i in 0..prog.programs.len() {
        let mut ctx = record();
        let r0 = run(&mut m, &prog, i, &mut ctx).unwrap_or_else(|e| panic!("{src}: {e}"));
        assert_eq!(r0, 0, "{src}: programs return 0");
    }
    (prog, m)
}

pub fn u64_at(bytes: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(bytes[off..off + 8].try_into().expect("8 bytes"))
}

pub fn i64_at(bytes: &[u8], off: usize) -> i64 {
    u64_at(bytes, off) as i64
}

/// The bytes of a NUL-terminated string at `off`, without the NUL.
pub fn str_at(bytes: &[u8], off: usize) -> Vec<u8> {
    bytes[off..]
        .iter()
        .take_while(|&&b| b != 0)
        .copied()
        .collect()
}

/// The stack 6.1's verifier, the strictest, counts for program `index`
/// when its loop callbacks nest `nesting` deep: the probe's frame (its
/// deepest frame-pointer access) rounded up to 32 bytes, and 32 for each
/// nested callback, whose frame is empty. Callbacks reach the probe's frame
/// through r6, so their accesses count towards it.
pub fn strict_verifier_stack(prog: &CompiledProgram, index: usize, nesting: i32) -> i32 {
    use ferret_bpf::insn::{BPF_LDX, BPF_ST, BPF_STX};
    let info = &prog.programs[index];
    let callbacks_start = info
        .subprograms
        .first()
        .copied()
        .unwrap_or(info.insns.len());
    let mut deepest = 0;
    for (at, insn) in info.insns.iter().enumerate() {
        let frame = if at < callbacks_start {
            Reg::FP
        } else {
            Reg::R6
        }
        .0;
        let depth = match insn.code & 0x07 {
            BPF_LDX if insn.src == frame => -i32::from(insn.off),
            BPF_ST | BPF_STX if insn.dst == frame => -i32::from(insn.off),
            _ => frame_address_depth(insn, info.insns.get(at + 1), frame).unwrap_or(0),
        };
        deepest = deepest.max(depth);
    }
    let round = |n: i32| (n.max(1) + 31) & !31;
    round(deepest) + 32 * nesting
}

/// The depth of `rX = frame; rX += imm`, an address in the frame.
fn frame_address_depth(insn: &Insn, next: Option<&Insn>, frame: u8) -> Option<i32> {
    let copies_frame = insn.code == Insn::mov64_reg(Reg::R0, Reg::R0).code && insn.src == frame;
    let add = next
        .filter(|n| n.code == Insn::alu64_imm(AluOp::Add, Reg::R0, 0).code && n.dst == insn.dst)?;
    copies_frame.then_some(-add.imm)
}
