//! The reader against the running kernel's BTF. Without it (a kernel built
//! without `CONFIG_DEBUG_INFO_BTF`) the tests fail under `CI=true` and print
//! SKIPPED elsewhere.

use std::io::Write as _;
use std::time::Instant;

use ferret_btf::{Btf, NameKind, Type};

fn vmlinux() -> Option<Btf> {
    match Btf::vmlinux() {
        Ok(btf) => Some(btf),
        Err(e) => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("BTF test cannot run under CI: {e}");
            }
            let _ = writeln!(std::io::stderr(), "SKIPPED: {e}");
            None
        }
    }
}

fn task_struct(btf: &Btf) -> u32 {
    btf.find(NameKind::Struct, "task_struct")
        .expect("struct task_struct")
}

#[test]
fn task_struct_pid_and_comm() {
    let Some(btf) = vmlinux() else { return };
    let task = task_struct(&btf);
    let pid = btf.member(task, "pid").expect("task_struct.pid");
    assert_eq!(pid.bit_offset % 8, 0);
    assert_eq!(btf.type_name(pid.type_id), "pid_t");
    assert_eq!(btf.size_of(pid.type_id), Some(4));
    assert!(matches!(btf.get(btf.strip(pid.type_id)), Some(Type::Int(i)) if i.signed));
    let comm = btf.member(task, "comm").expect("task_struct.comm");
    assert_eq!(btf.type_name(comm.type_id), "char[16]");
    let parent = btf.member(task, "real_parent").expect("real_parent");
    assert!(
        btf.type_name(parent.type_id)
            .starts_with("struct task_struct *")
    );
    assert!(btf.size_of(task).is_some_and(|s| s > 1000));
}

#[test]
fn a_bitfield() {
    let Some(btf) = vmlinux() else { return };
    let task = task_struct(&btf);
    // `unsigned sched_reset_on_fork:1;` has been in task_struct for years.
    let m = btf
        .member(task, "sched_reset_on_fork")
        .expect("task_struct.sched_reset_on_fork");
    assert_eq!(m.bitfield_size, 1);
}

#[test]
fn anonymous_members_are_searched() {
    let Some(btf) = vmlinux() else { return };
    let sk = btf.find(NameKind::Struct, "sock").expect("struct sock");
    // `skc_family` lives in `struct sock_common __sk_common`, reached as
    // `sk->__sk_common.skc_family`; `sk_buff`'s `len` sits in nested
    // anonymous unions.
    assert!(btf.member(sk, "__sk_common").is_some());
    let skb = btf
        .find(NameKind::Struct, "sk_buff")
        .expect("struct sk_buff");
    assert!(btf.member(skb, "len").is_some());
    assert!(btf.member_names(skb).contains(&"dev"));
}

#[test]
fn enum_constants() {
    let Some(btf) = vmlinux() else { return };
    let c = btf
        .enum_constant("BPF_MAP_TYPE_HASH")
        .expect("BPF_MAP_TYPE_HASH");
    assert_eq!(c.value, 1);
    assert_eq!(btf.enumerator_name(c.enum_id, 1), Some("BPF_MAP_TYPE_HASH"));
    assert_eq!(btf.name_of(c.enum_id), "bpf_map_type");
}

#[test]
fn raw_tracepoint_prototype() {
    let Some(btf) = vmlinux() else { return };
    let rt = btf.raw_tracepoint("sched_switch").expect("sched_switch");
    let names: Vec<&str> = rt.args.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(&names[..3], ["preempt", "prev", "next"]);
    assert_eq!(btf.type_name(rt.args[1].type_id), "struct task_struct *");
    assert!(rt.btf_trace_id.is_some());
    assert!(btf.raw_tracepoints().iter().any(|e| e == "sched_switch"));
}

/// Not a timing assertion: prints what indexing costs, for the record.
#[test]
fn index_costs() {
    let started = Instant::now();
    let Some(btf) = vmlinux() else { return };
    let parsed = started.elapsed();
    task_struct(&btf);
    let structs = started.elapsed();
    btf.enum_constant("BPF_ANY");
    let enums = started.elapsed();
    let _ = writeln!(
        std::io::stderr(),
        "vmlinux BTF: {} bytes, {} types; read+parse {parsed:?}, +struct index {:?}, +enum index {:?}",
        btf.size_in_bytes(),
        btf.last_id(),
        structs - parsed,
        enums - structs
    );
}
