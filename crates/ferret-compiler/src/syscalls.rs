//! What the compiler must know about an architecture's system calls to
//! serve many `syscalls:sys_enter_*` (or `sys_exit_*`) tracepoints from one
//! program on the raw `sys_enter` (`sys_exit`) tracepoint: which number
//! each tracepoint's syscall has, where the arguments are in `pt_regs`, and
//! how to tell a 32-bit (compat) syscall, which those tracepoints skip.
//!
//! The kernel offers no interface that maps a syscall tracepoint to its
//! number (the `__syscall_nr` field is in the record, not in the format), so
//! the tables are carried as data, taken from the kernel's own syscall
//! tables (see the `.tbl` files). Numbers are ABI and never change; a
//! tracepoint whose name is not in the table keeps its own program.

/// A 32-bit (compat) syscall, which the `syscalls:*` tracepoints ignore but
/// the raw `sys_enter`/`sys_exit` tracepoints report with compat numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompatCheck {
    /// Bits `mask` of the u32 at byte `offset` of the current task are set
    /// (x86_64: `TS_COMPAT` in `current->thread_info.status`; `thread_info`
    /// is the first member of `task_struct`).
    TaskU32 { offset: u32, mask: u32 },
    /// Bits `mask` of the u64 at byte `offset` of the syscall's `pt_regs`
    /// are set (aarch64: `PSR_MODE32_BIT` of the user `pstate`; an AArch32
    /// task makes every syscall from AArch32 state).
    RegsU64 { offset: u32, mask: u32 },
}

/// One architecture's syscall numbers and register layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyscallAbi {
    /// `NUMBER NAME` lines; `#` starts a comment line.
    table: &'static str,
    /// Byte offsets in `pt_regs` of arguments 0 to 5, as the syscall
    /// tracepoints read them (`syscall_get_arguments`).
    pub arg_offsets: [u32; 6],
    /// Byte offset in `pt_regs` of the syscall number the `sys_exit`
    /// tracepoints key on (`syscall_get_nr`), and its size in bytes.
    pub nr_offset: u32,
    pub nr_size: u32,
    pub compat: CompatCheck,
}

/// `TS_COMPAT`, "32-bit syscall active", in x86's `thread_info.status`.
const X86_TS_COMPAT: u32 = 0x2;
/// `PSR_MODE32_BIT` in arm64's `pstate`.
const ARM64_PSR_MODE32: u32 = 0x10;

impl SyscallAbi {
    /// x86_64. `status_offset` is where `thread_info.status` sits in the
    /// task: 16 since Linux 5.11 (after `flags` and `syscall_work`), 8
    /// before.
    pub fn x86_64(status_offset: u32) -> Self {
        // struct pt_regs: r15 r14 r13 r12 bp bx r11 r10 r9 r8 ax cx dx si di
        // orig_ax ip cs flags sp ss, 8 bytes each.
        Self {
            table: include_str!("syscalls/x86_64.tbl"),
            arg_offsets: [112, 104, 96, 56, 72, 64],
            nr_offset: 120,
            nr_size: 8,
            compat: CompatCheck::TaskU32 {
                offset: status_offset,
                mask: X86_TS_COMPAT,
            },
        }
    }

    /// aarch64, on the generic syscall table.
    pub fn aarch64() -> Self {
        // struct pt_regs: regs[31], sp, pc, pstate (user_pt_regs, UAPI),
        // then orig_x0 at 272 and the s32 syscallno at 280.
        Self {
            table: include_str!("syscalls/generic.tbl"),
            arg_offsets: [272, 8, 16, 24, 32, 40],
            nr_offset: 280,
            nr_size: 4,
            compat: CompatCheck::RegsU64 {
                offset: 264,
                mask: ARM64_PSR_MODE32,
            },
        }
    }

    /// Every `(number, name)` of the table, in ascending order.
    pub fn entries(&self) -> impl Iterator<Item = (u32, &'static str)> {
        self.table
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| {
                let (nr, name) = l.split_once(' ')?;
                Some((nr.parse().ok()?, name))
            })
    }

    /// The number of the syscall whose entry point is `sys_NAME`.
    pub fn number(&self, name: &str) -> Option<u32> {
        self.entries().find(|&(_, n)| n == name).map(|(nr, _)| nr)
    }

    /// The largest number in the table.
    pub fn max_number(&self) -> u32 {
        self.entries().map(|(nr, _)| nr).max().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_sorted_with_unique_numbers_and_names() {
        for abi in [SyscallAbi::x86_64(16), SyscallAbi::aarch64()] {
            let entries: Vec<_> = abi.entries().collect();
            assert!(entries.len() > 300);
            assert!(entries.windows(2).all(|w| w[0].0 < w[1].0));
            let mut names: Vec<_> = entries.iter().map(|e| e.1).collect();
            names.sort_unstable();
            names.dedup();
            assert_eq!(names.len(), entries.len());
            assert!(
                names
                    .iter()
                    .all(|n| n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
            );
        }
    }

    #[test]
    fn known_numbers() {
        let x86 = SyscallAbi::x86_64(16);
        assert_eq!(x86.number("read"), Some(0));
        assert_eq!(x86.number("newstat"), Some(4));
        assert_eq!(x86.number("openat"), Some(257));
        assert_eq!(x86.number("exit_group"), Some(231));
        assert_eq!(x86.number("stat"), None);
        let arm = SyscallAbi::aarch64();
        assert_eq!(arm.number("openat"), Some(56));
        assert_eq!(arm.number("getppid"), Some(173));
        assert_eq!(arm.number("open"), None);
    }
}
