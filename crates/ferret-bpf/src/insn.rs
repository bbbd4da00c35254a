//! eBPF instructions (kernel `struct bpf_insn`) and constructors for the
//! forms code generation emits.

/// A register r0..r10.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reg(pub u8);

impl Reg {
    pub const R0: Reg = Reg(0);
    pub const R1: Reg = Reg(1);
    pub const R2: Reg = Reg(2);
    pub const R3: Reg = Reg(3);
    pub const R4: Reg = Reg(4);
    pub const R5: Reg = Reg(5);
    pub const R6: Reg = Reg(6);
    pub const R7: Reg = Reg(7);
    pub const R8: Reg = Reg(8);
    pub const R9: Reg = Reg(9);
    /// The read-only frame pointer.
    pub const FP: Reg = Reg(10);
}

// Instruction classes.
pub const BPF_LD: u8 = 0x00;
pub const BPF_LDX: u8 = 0x01;
pub const BPF_ST: u8 = 0x02;
pub const BPF_STX: u8 = 0x03;
pub const BPF_ALU: u8 = 0x04;
pub const BPF_JMP: u8 = 0x05;
pub const BPF_JMP32: u8 = 0x06;
pub const BPF_ALU64: u8 = 0x07;
// Sources.
pub const BPF_K: u8 = 0x00;
pub const BPF_X: u8 = 0x08;
// Modes.
pub const BPF_IMM: u8 = 0x00;
pub const BPF_MEM: u8 = 0x60;
pub const BPF_ATOMIC: u8 = 0xc0;
/// `src_reg` of an `ld_imm64` whose immediate is a map file descriptor.
pub const BPF_PSEUDO_MAP_FD: u8 = 1;
/// `src_reg` of an `ld_imm64` whose immediate is the BTF id of a kernel
/// variable (the verifier puts in its address); the second half's
/// immediate is the fd of the module BTF holding it, 0 for vmlinux.
pub const BPF_PSEUDO_BTF_ID: u8 = 3;
/// `src_reg` of a `call` to a bpf-to-bpf function (`imm`: relative offset).
pub const BPF_PSEUDO_CALL: u8 = 1;
/// `src_reg` of an `ld_imm64` loading the address of a function, e.g. a
/// callback (`imm`: offset of its first instruction, relative to the next
/// instruction).
pub const BPF_PSEUDO_FUNC: u8 = 4;
/// Atomic add (the `imm` of a `BPF_ATOMIC` store).
pub const BPF_ATOMIC_ADD: i32 = 0x00;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Size {
    /// 1 byte
    B,
    /// 2 bytes
    H,
    /// 4 bytes
    W,
    /// 8 bytes
    DW,
}

impl Size {
    pub fn bits(self) -> u8 {
        match self {
            Size::W => 0x00,
            Size::H => 0x08,
            Size::B => 0x10,
            Size::DW => 0x18,
        }
    }

    pub fn bytes(self) -> usize {
        match self {
            Size::B => 1,
            Size::H => 2,
            Size::W => 4,
            Size::DW => 8,
        }
    }

    /// The access size for a field of `bytes` bytes (1, 2, 4 or 8).
    pub fn from_bytes(bytes: usize) -> Option<Size> {
        Some(match bytes {
            1 => Size::B,
            2 => Size::H,
            4 => Size::W,
            8 => Size::DW,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AluOp {
    Add = 0x00,
    Sub = 0x10,
    Mul = 0x20,
    Div = 0x30,
    Or = 0x40,
    And = 0x50,
    Lsh = 0x60,
    Rsh = 0x70,
    Neg = 0x80,
    Mod = 0x90,
    Xor = 0xa0,
    Mov = 0xb0,
    Arsh = 0xc0,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JmpOp {
    Jeq = 0x10,
    Jgt = 0x20,
    Jge = 0x30,
    Jset = 0x40,
    Jne = 0x50,
    Jsgt = 0x60,
    Jsge = 0x70,
    Jlt = 0xa0,
    Jle = 0xb0,
    Jslt = 0xc0,
    Jsle = 0xd0,
}

pub const BPF_JA: u8 = 0x00;
pub const BPF_CALL: u8 = 0x80;
pub const BPF_EXIT: u8 = 0x90;

/// One 8-byte eBPF instruction. `ld_imm64` takes two of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    pub code: u8,
    pub dst: u8,
    pub src: u8,
    pub off: i16,
    pub imm: i32,
}

impl Insn {
    pub fn new(code: u8, dst: Reg, src: Reg, off: i16, imm: i32) -> Self {
        Self {
            code,
            dst: dst.0,
            src: src.0,
            off,
            imm,
        }
    }

    /// Little-endian wire format.
    pub fn encode(&self) -> [u8; 8] {
        let mut b = [0u8; 8];
        b[0] = self.code;
        b[1] = (self.src << 4) | (self.dst & 0x0f);
        b[2..4].copy_from_slice(&self.off.to_le_bytes());
        b[4..8].copy_from_slice(&self.imm.to_le_bytes());
        b
    }

    pub fn decode(b: [u8; 8]) -> Self {
        Self {
            code: b[0],
            dst: b[1] & 0x0f,
            src: b[1] >> 4,
            off: i16::from_le_bytes([b[2], b[3]]),
            imm: i32::from_le_bytes([b[4], b[5], b[6], b[7]]),
        }
    }

    /// Is this the first half of a two-slot `ld_imm64`?
    pub fn is_ld_imm64(&self) -> bool {
        self.code == BPF_LD_IMM64
    }

    pub fn class(&self) -> u8 {
        self.code & 0x07
    }

    /// Is this a conditional or unconditional jump with a pc-relative offset?
    pub fn is_jump(&self) -> bool {
        let class = self.class();
        (class == BPF_JMP || class == BPF_JMP32) && !matches!(self.code & 0xf0, BPF_CALL | BPF_EXIT)
    }

    pub fn alu64_imm(op: AluOp, dst: Reg, imm: i32) -> Self {
        Self::new(BPF_ALU64 | BPF_K | op as u8, dst, Reg(0), 0, imm)
    }

    pub fn alu64_reg(op: AluOp, dst: Reg, src: Reg) -> Self {
        Self::new(BPF_ALU64 | BPF_X | op as u8, dst, src, 0, 0)
    }

    pub fn alu32_imm(op: AluOp, dst: Reg, imm: i32) -> Self {
        Self::new(BPF_ALU | BPF_K | op as u8, dst, Reg(0), 0, imm)
    }

    pub fn alu32_reg(op: AluOp, dst: Reg, src: Reg) -> Self {
        Self::new(BPF_ALU | BPF_X | op as u8, dst, src, 0, 0)
    }

    pub fn mov64_imm(dst: Reg, imm: i32) -> Self {
        Self::alu64_imm(AluOp::Mov, dst, imm)
    }

    pub fn mov64_reg(dst: Reg, src: Reg) -> Self {
        Self::alu64_reg(AluOp::Mov, dst, src)
    }

    /// `dst = -dst`
    pub fn neg64(dst: Reg) -> Self {
        Self::new(BPF_ALU64 | BPF_K | AluOp::Neg as u8, dst, Reg(0), 0, 0)
    }

    /// The two halves of `dst = imm` for a full 64-bit immediate.
    pub fn ld_imm64(dst: Reg, imm: u64) -> [Self; 2] {
        [
            Self::new(
                BPF_LD | BPF_DW_BITS | BPF_IMM,
                dst,
                Reg(0),
                0,
                imm as u32 as i32,
            ),
            Self::new(0, Reg(0), Reg(0), 0, (imm >> 32) as u32 as i32),
        ]
    }

    /// `dst = map` (the loader patches in the map's fd through a relocation
    /// at this instruction).
    pub fn ld_map_fd(dst: Reg) -> [Self; 2] {
        let [mut lo, hi] = Self::ld_imm64(dst, 0);
        lo.src = BPF_PSEUDO_MAP_FD;
        [lo, hi]
    }

    /// `dst = &var` for the kernel variable with vmlinux BTF id `id`.
    pub fn ld_btf_id(dst: Reg, id: u32) -> [Self; 2] {
        let [mut lo, hi] = Self::ld_imm64(dst, u64::from(id));
        lo.src = BPF_PSEUDO_BTF_ID;
        [lo, hi]
    }

    /// `dst = *(size *)(src + off)`
    pub fn load(size: Size, dst: Reg, src: Reg, off: i16) -> Self {
        Self::new(BPF_LDX | BPF_MEM | size.bits(), dst, src, off, 0)
    }

    /// `*(size *)(dst + off) = src`
    pub fn store(size: Size, dst: Reg, off: i16, src: Reg) -> Self {
        Self::new(BPF_STX | BPF_MEM | size.bits(), dst, src, off, 0)
    }

    /// `*(size *)(dst + off) = imm`
    pub fn store_imm(size: Size, dst: Reg, off: i16, imm: i32) -> Self {
        Self::new(BPF_ST | BPF_MEM | size.bits(), dst, Reg(0), off, imm)
    }

    /// `lock *(size *)(dst + off) += src` (size W or DW).
    pub fn atomic_add(size: Size, dst: Reg, off: i16, src: Reg) -> Self {
        Self::new(
            BPF_STX | BPF_ATOMIC | size.bits(),
            dst,
            src,
            off,
            BPF_ATOMIC_ADD,
        )
    }

    /// `if dst op imm goto pc + 1 + off`
    pub fn jmp_imm(op: JmpOp, dst: Reg, imm: i32, off: i16) -> Self {
        Self::new(BPF_JMP | BPF_K | op as u8, dst, Reg(0), off, imm)
    }

    /// `if dst op src goto pc + 1 + off`
    pub fn jmp_reg(op: JmpOp, dst: Reg, src: Reg, off: i16) -> Self {
        Self::new(BPF_JMP | BPF_X | op as u8, dst, src, off, 0)
    }

    /// `goto pc + 1 + off`
    pub fn ja(off: i16) -> Self {
        Self::new(BPF_JMP | BPF_JA, Reg(0), Reg(0), off, 0)
    }

    /// Call helper function number `helper`.
    pub fn call(helper: i32) -> Self {
        Self::new(BPF_JMP | BPF_CALL, Reg(0), Reg(0), 0, helper)
    }

    pub fn exit() -> Self {
        Self::new(BPF_JMP | BPF_EXIT, Reg(0), Reg(0), 0, 0)
    }

    /// `dst = bswap(dst)` of its low `bits` (16, 32 or 64) bits, upper
    /// bits cleared: the to-big-endian conversion on a little-endian CPU.
    pub fn bswap_le(dst: Reg, bits: i32) -> Self {
        Self::new(BPF_ALU | BPF_END_TO_BE, dst, Reg(0), 0, bits)
    }
}

/// `BPF_END | BPF_TO_BE`: byte-order conversion to big endian.
pub const BPF_END_TO_BE: u8 = 0xd0 | 0x08;

/// The size bits of a 64-bit access; `BPF_LD | BPF_DW_BITS | BPF_IMM` is
/// the `ld_imm64` opcode.
pub const BPF_DW_BITS: u8 = 0x18;
/// Opcode of the first half of `ld_imm64`.
pub const BPF_LD_IMM64: u8 = BPF_LD | BPF_DW_BITS | BPF_IMM;

/// Map types (`enum bpf_map_type`) the code generator creates.
pub mod map_type {
    pub const HASH: u32 = 1;
    pub const ARRAY: u32 = 2;
    pub const PERCPU_HASH: u32 = 5;
    pub const PERCPU_ARRAY: u32 = 6;
    pub const STACK_TRACE: u32 = 7;
    pub const LRU_HASH: u32 = 9;
    pub const LRU_PERCPU_HASH: u32 = 10;
    pub const RINGBUF: u32 = 27;
}

/// Kernel helper function ids (`enum bpf_func_id`) the code generator uses.
pub mod helper {
    pub const MAP_LOOKUP_ELEM: i32 = 1;
    pub const MAP_UPDATE_ELEM: i32 = 2;
    pub const MAP_DELETE_ELEM: i32 = 3;
    pub const PROBE_READ: i32 = 4;
    pub const KTIME_GET_NS: i32 = 5;
    pub const GET_PRANDOM_U32: i32 = 7;
    pub const GET_SMP_PROCESSOR_ID: i32 = 8;
    pub const GET_CURRENT_PID_TGID: i32 = 14;
    pub const GET_CURRENT_UID_GID: i32 = 15;
    pub const GET_CURRENT_COMM: i32 = 16;
    pub const GET_STACKID: i32 = 27;
    pub const GET_CURRENT_TASK: i32 = 35;
    pub const PROBE_READ_STR: i32 = 45;
    pub const GET_SOCKET_COOKIE: i32 = 46;
    pub const GET_CURRENT_CGROUP_ID: i32 = 80;
    pub const PROBE_READ_USER: i32 = 112;
    pub const PROBE_READ_KERNEL: i32 = 113;
    pub const PROBE_READ_USER_STR: i32 = 114;
    pub const PROBE_READ_KERNEL_STR: i32 = 115;
    pub const RINGBUF_OUTPUT: i32 = 130;
    pub const RINGBUF_RESERVE: i32 = 131;
    pub const RINGBUF_SUBMIT: i32 = 132;
    pub const RINGBUF_DISCARD: i32 = 133;
    pub const KTIME_GET_BOOT_NS: i32 = 125;
    pub const PER_CPU_PTR: i32 = 153;
    pub const THIS_CPU_PTR: i32 = 154;
    pub const FOR_EACH_MAP_ELEM: i32 = 164;
    pub const LOOP: i32 = 181;
    pub const GET_STACK: i32 = 67;
    pub const GET_NS_CURRENT_PID_TGID: i32 = 120;
    pub const GET_FUNC_IP: i32 = 173;
    pub const GET_FUNC_ARG: i32 = 183;
    pub const GET_FUNC_RET: i32 = 184;
    pub const MAP_LOOKUP_PERCPU_ELEM: i32 = 195;
    pub const GET_NUMA_NODE_ID: i32 = 42;
    pub const SEND_SIGNAL: i32 = 109;
    pub const SEND_SIGNAL_THREAD: i32 = 117;
    pub const JIFFIES64: i32 = 118;
    pub const KTIME_GET_TAI_NS: i32 = 208;

    /// Names of the kernel helpers by id (`enum bpf_func_id`), without the
    /// `bpf_` prefix; index 0 is `unspec`.
    const NAMES: [&str; 212] = [
        "unspec",
        "map_lookup_elem",
        "map_update_elem",
        "map_delete_elem",
        "probe_read",
        "ktime_get_ns",
        "trace_printk",
        "get_prandom_u32",
        "get_smp_processor_id",
        "skb_store_bytes",
        "l3_csum_replace",
        "l4_csum_replace",
        "tail_call",
        "clone_redirect",
        "get_current_pid_tgid",
        "get_current_uid_gid",
        "get_current_comm",
        "get_cgroup_classid",
        "skb_vlan_push",
        "skb_vlan_pop",
        "skb_get_tunnel_key",
        "skb_set_tunnel_key",
        "perf_event_read",
        "redirect",
        "get_route_realm",
        "perf_event_output",
        "skb_load_bytes",
        "get_stackid",
        "csum_diff",
        "skb_get_tunnel_opt",
        "skb_set_tunnel_opt",
        "skb_change_proto",
        "skb_change_type",
        "skb_under_cgroup",
        "get_hash_recalc",
        "get_current_task",
        "probe_write_user",
        "current_task_under_cgroup",
        "skb_change_tail",
        "skb_pull_data",
        "csum_update",
        "set_hash_invalid",
        "get_numa_node_id",
        "skb_change_head",
        "xdp_adjust_head",
        "probe_read_str",
        "get_socket_cookie",
        "get_socket_uid",
        "set_hash",
        "setsockopt",
        "skb_adjust_room",
        "redirect_map",
        "sk_redirect_map",
        "sock_map_update",
        "xdp_adjust_meta",
        "perf_event_read_value",
        "perf_prog_read_value",
        "getsockopt",
        "override_return",
        "sock_ops_cb_flags_set",
        "msg_redirect_map",
        "msg_apply_bytes",
        "msg_cork_bytes",
        "msg_pull_data",
        "bind",
        "xdp_adjust_tail",
        "skb_get_xfrm_state",
        "get_stack",
        "skb_load_bytes_relative",
        "fib_lookup",
        "sock_hash_update",
        "msg_redirect_hash",
        "sk_redirect_hash",
        "lwt_push_encap",
        "lwt_seg6_store_bytes",
        "lwt_seg6_adjust_srh",
        "lwt_seg6_action",
        "rc_repeat",
        "rc_keydown",
        "skb_cgroup_id",
        "get_current_cgroup_id",
        "get_local_storage",
        "sk_select_reuseport",
        "skb_ancestor_cgroup_id",
        "sk_lookup_tcp",
        "sk_lookup_udp",
        "sk_release",
        "map_push_elem",
        "map_pop_elem",
        "map_peek_elem",
        "msg_push_data",
        "msg_pop_data",
        "rc_pointer_rel",
        "spin_lock",
        "spin_unlock",
        "sk_fullsock",
        "tcp_sock",
        "skb_ecn_set_ce",
        "get_listener_sock",
        "skc_lookup_tcp",
        "tcp_check_syncookie",
        "sysctl_get_name",
        "sysctl_get_current_value",
        "sysctl_get_new_value",
        "sysctl_set_new_value",
        "strtol",
        "strtoul",
        "sk_storage_get",
        "sk_storage_delete",
        "send_signal",
        "tcp_gen_syncookie",
        "skb_output",
        "probe_read_user",
        "probe_read_kernel",
        "probe_read_user_str",
        "probe_read_kernel_str",
        "tcp_send_ack",
        "send_signal_thread",
        "jiffies64",
        "read_branch_records",
        "get_ns_current_pid_tgid",
        "xdp_output",
        "get_netns_cookie",
        "get_current_ancestor_cgroup_id",
        "sk_assign",
        "ktime_get_boot_ns",
        "seq_printf",
        "seq_write",
        "sk_cgroup_id",
        "sk_ancestor_cgroup_id",
        "ringbuf_output",
        "ringbuf_reserve",
        "ringbuf_submit",
        "ringbuf_discard",
        "ringbuf_query",
        "csum_level",
        "skc_to_tcp6_sock",
        "skc_to_tcp_sock",
        "skc_to_tcp_timewait_sock",
        "skc_to_tcp_request_sock",
        "skc_to_udp6_sock",
        "get_task_stack",
        "load_hdr_opt",
        "store_hdr_opt",
        "reserve_hdr_opt",
        "inode_storage_get",
        "inode_storage_delete",
        "d_path",
        "copy_from_user",
        "snprintf_btf",
        "seq_printf_btf",
        "skb_cgroup_classid",
        "redirect_neigh",
        "per_cpu_ptr",
        "this_cpu_ptr",
        "redirect_peer",
        "task_storage_get",
        "task_storage_delete",
        "get_current_task_btf",
        "bprm_opts_set",
        "ktime_get_coarse_ns",
        "ima_inode_hash",
        "sock_from_file",
        "check_mtu",
        "for_each_map_elem",
        "snprintf",
        "sys_bpf",
        "btf_find_by_name_kind",
        "sys_close",
        "timer_init",
        "timer_set_callback",
        "timer_start",
        "timer_cancel",
        "get_func_ip",
        "get_attach_cookie",
        "task_pt_regs",
        "get_branch_snapshot",
        "trace_vprintk",
        "skc_to_unix_sock",
        "kallsyms_lookup_name",
        "find_vma",
        "loop",
        "strncmp",
        "get_func_arg",
        "get_func_ret",
        "get_func_arg_cnt",
        "get_retval",
        "set_retval",
        "xdp_get_buff_len",
        "xdp_load_bytes",
        "xdp_store_bytes",
        "copy_from_user_task",
        "skb_set_tstamp",
        "ima_file_hash",
        "kptr_xchg",
        "map_lookup_percpu_elem",
        "skc_to_mptcp_sock",
        "dynptr_from_mem",
        "ringbuf_reserve_dynptr",
        "ringbuf_submit_dynptr",
        "ringbuf_discard_dynptr",
        "dynptr_read",
        "dynptr_write",
        "dynptr_data",
        "tcp_raw_gen_syncookie_ipv4",
        "tcp_raw_gen_syncookie_ipv6",
        "tcp_raw_check_syncookie_ipv4",
        "tcp_raw_check_syncookie_ipv6",
        "ktime_get_tai_ns",
        "user_ringbuf_drain",
        "cgrp_storage_get",
        "cgrp_storage_delete",
    ];

    /// The helper's name without the `bpf_` prefix, if `id` is a known one.
    pub fn name(id: i32) -> Option<&'static str> {
        let index = usize::try_from(id).ok()?;
        NAMES.get(index).copied().filter(|_| index != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_mov_and_exit() {
        assert_eq!(
            Insn::mov64_imm(Reg::R0, 1).encode(),
            [0xb7, 0x00, 0, 0, 1, 0, 0, 0]
        );
        assert_eq!(Insn::exit().encode(), [0x95, 0, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn ld_map_fd_marks_pseudo_src() {
        let [lo, hi] = Insn::ld_map_fd(Reg::R1);
        assert_eq!(lo.encode()[..2], [0x18, 0x11]);
        assert_eq!(hi.code, 0);
    }

    #[test]
    fn helper_names_match_ids() {
        assert_eq!(
            helper::name(helper::MAP_LOOKUP_ELEM),
            Some("map_lookup_elem")
        );
        assert_eq!(
            helper::name(helper::GET_CURRENT_PID_TGID),
            Some("get_current_pid_tgid")
        );
        assert_eq!(helper::name(helper::RINGBUF_OUTPUT), Some("ringbuf_output"));
        assert_eq!(
            helper::name(helper::KTIME_GET_BOOT_NS),
            Some("ktime_get_boot_ns")
        );
        assert_eq!(helper::name(helper::GET_FUNC_IP), Some("get_func_ip"));
        assert_eq!(helper::name(helper::GET_FUNC_RET), Some("get_func_ret"));
        assert_eq!(helper::name(0), None);
        assert_eq!(helper::name(-3), None);
        assert_eq!(helper::name(100_000), None);
    }

    #[test]
    fn decode_roundtrips() {
        let i = Insn::store(Size::DW, Reg::FP, -8, Reg::R6);
        assert_eq!(Insn::decode(i.encode()), i);
    }
}
