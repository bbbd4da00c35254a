use std::sync::Arc;

use super::*;

/// The fixture: what the kernel's types look like, in miniature.
struct Fixture {
    btf: Btf,
    int: TypeId,
    task: TypeId,
    state: TypeId,
}

fn fixture() -> Fixture {
    let mut b = BtfBuilder::new();
    let int = b.int("int", 4, true);
    let uint = b.int("unsigned int", 4, false);
    let char_t = b.int("char", 1, true);
    let long = b.int("long", 8, true);
    let bool_t = b.int("_Bool", 1, false);
    let comm = b.array(char_t, int, 16);
    let task_fwd_ptr = b.next_id() + 5;
    let anon = b.struct_type("", 8, true, &[("a", int, 0, 0), ("b", long, 0, 0)]);
    let pid_t = b.typedef("pid_t", int);
    let cv = b.const_of(pid_t);
    let cv = b.volatile_of(cv);
    // struct task { volatile const pid_t pid; char comm[16]; struct task
    // *parent; unsigned flags:3, prio:5; union { int a; long b; }; }
    let task = b.struct_type(
        "task",
        48,
        false,
        &[
            ("pid", cv, 0, 0),
            ("comm", comm, 32, 0),
            ("parent", task_fwd_ptr, 192, 0),
            ("flags", uint, 256, 3),
            ("prio", uint, 259, 5),
            ("", anon, 320, 0),
        ],
    );
    let ptr = b.ptr(task);
    assert_eq!(ptr, task_fwd_ptr);
    let state = b.enum_type(
        "state",
        4,
        false,
        &[("RUNNING", 0), ("SLEEPING", 1), ("DEAD", 16)],
    );
    b.enum_type("big", 8, false, &[("HUGE", 1 << 40)]);
    b.fwd("sock", false);
    let void_ptr = b.ptr(0);
    let proto = b.func_proto(
        0,
        &[("__data", void_ptr), ("preempt", bool_t), ("prev", ptr)],
    );
    b.func("__probestub_switch", proto);
    let proto_ptr = b.ptr(proto);
    b.typedef("btf_trace_switch", proto_ptr);
    let unnamed = b.func_proto(0, &[("", void_ptr), ("", ptr)]);
    let unnamed_ptr = b.ptr(unnamed);
    b.typedef("btf_trace_exit", unnamed_ptr);
    let btf = Btf::parse(b.finish()).expect("fixture parses");
    Fixture {
        btf,
        int,
        task,
        state,
    }
}

#[test]
fn finds_types_by_kind_and_name() {
    let f = fixture();
    assert_eq!(f.btf.find(NameKind::Struct, "task"), Some(f.task));
    assert_eq!(f.btf.find(NameKind::Union, "task"), None);
    assert_eq!(f.btf.find(NameKind::Enum, "state"), Some(f.state));
    assert_eq!(f.btf.find(NameKind::Int, "int"), Some(f.int));
    assert_eq!(
        f.btf.find(NameKind::Struct, "sock"),
        None,
        "a forward declaration is not a struct"
    );
    assert_eq!(f.btf.kind(f.task), Some(Kind::Struct));
    assert!(f.btf.names(NameKind::Typedef).contains(&"pid_t"));
}

#[test]
fn members_offsets_and_qualifiers() {
    let f = fixture();
    let pid = f.btf.member(f.task, "pid").expect("pid");
    assert_eq!((pid.bit_offset, pid.bitfield_size), (0, 0));
    assert_eq!(f.btf.strip(pid.type_id), f.int);
    assert_eq!(f.btf.type_name(pid.type_id), "volatile const pid_t");
    let comm = f.btf.member(f.task, "comm").expect("comm");
    assert_eq!(comm.bit_offset, 32);
    assert_eq!(f.btf.type_name(comm.type_id), "char[16]");
    assert!(matches!(
        f.btf.get(comm.type_id),
        Some(Type::Array { len: 16, .. })
    ));
    let parent = f.btf.member(f.task, "parent").expect("parent");
    assert_eq!(f.btf.type_name(parent.type_id), "struct task *");
    assert_eq!(f.btf.size_of(f.task), Some(48));
    assert_eq!(f.btf.align_of(f.task), Some(8));
    assert_eq!(f.btf.size_of(comm.type_id), Some(16));
    assert!(f.btf.member(f.task, "nope").is_none());
}

#[test]
fn bitfields_and_anonymous_members() {
    let f = fixture();
    let prio = f.btf.member(f.task, "prio").expect("prio");
    assert_eq!((prio.bit_offset, prio.bitfield_size), (259, 5));
    let b = f
        .btf
        .member(f.task, "b")
        .expect("b, inside the anonymous union");
    assert_eq!(b.bit_offset, 320);
    assert_eq!(
        f.btf.member_names(f.task),
        ["pid", "comm", "parent", "flags", "prio", "a", "b"]
    );
}

#[test]
fn old_style_bitfields_live_in_the_int_type() {
    let mut b = BtfBuilder::new();
    // An int whose encoding says: 3 bits at bit 2 of its 4 bytes.
    let bits = b.int_bits("unsigned int", 4, false, 2, 3);
    let s = b.struct_type("s", 4, false, &[("x", bits, 8, 0)]);
    let btf = Btf::parse(b.finish()).expect("parses");
    let x = btf.member(s, "x").expect("x");
    assert_eq!((x.bit_offset, x.bitfield_size), (10, 3));
}

#[test]
fn enum_constants_both_ways() {
    let f = fixture();
    let c = f.btf.enum_constant("SLEEPING").expect("SLEEPING");
    assert_eq!((c.enum_id, c.value, c.size), (f.state, 1, 4));
    assert_eq!(f.btf.enumerator_name(f.state, 16), Some("DEAD"));
    assert_eq!(f.btf.enumerator_name(f.state, 5), None);
    assert_eq!(f.btf.enum_constant("HUGE").map(|c| c.value), Some(1 << 40));
    assert!(f.btf.enum_constant("RUNNIN").is_none());
    let mut names = f.btf.enum_constant_names();
    names.sort();
    assert_eq!(names, ["DEAD", "HUGE", "RUNNING", "SLEEPING"]);
}

#[test]
fn raw_tracepoint_arguments() {
    let f = fixture();
    let rt = f.btf.raw_tracepoint("switch").expect("switch");
    let names: Vec<&str> = rt.args.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["preempt", "prev"]);
    assert_eq!(f.btf.type_name(rt.args[1].type_id), "struct task *");
    assert!(rt.btf_trace_id.is_some());
    // Only the typedef: unnamed parameters get argN names.
    let exit = f.btf.raw_tracepoint("exit").expect("exit");
    assert_eq!(exit.args[0].name, "arg0");
    assert_eq!(f.btf.raw_tracepoints(), ["exit", "switch"]);
    assert!(f.btf.raw_tracepoint("nope").is_none());
}

#[test]
fn function_prototypes() {
    let f = fixture();
    // A traced function's view: every parameter, `__data` included.
    let func = f.btf.function("__probestub_switch").expect("function");
    let names: Vec<&str> = func.args.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["__data", "preempt", "prev"]);
    assert_eq!(func.ret, 0);
    assert_eq!(f.btf.name_of(func.id), "__probestub_switch");
    assert!(f.btf.function("btf_trace_switch").is_none());
    assert!(f.btf.function("nope").is_none());
}

#[test]
fn split_btf_sees_its_base() {
    let f = fixture();
    let base_strings = f.btf.strs_len as u32;
    let base = Arc::new(f.btf);
    let mut b = BtfBuilder::split(base.last_id(), base_strings);
    let ptr = b.ptr(f.task);
    let module_struct = b.struct_type("module_thing", 8, false, &[("owner", ptr, 0, 0)]);
    let module = Btf::parse_split(b.finish(), Arc::clone(&base)).expect("split parses");
    assert_eq!(
        module.find(NameKind::Struct, "module_thing"),
        Some(module_struct)
    );
    assert_eq!(module.find(NameKind::Struct, "task"), Some(f.task));
    let owner = module.member(module_struct, "owner").expect("owner");
    assert_eq!(module.type_name(owner.type_id), "struct task *");
    assert_eq!(module.enum_constant("DEAD").map(|c| c.value), Some(16));
}

#[test]
fn rejects_bad_blobs() {
    assert!(Btf::parse(vec![0; 10]).is_err());
    let mut blob = BtfBuilder::new().finish();
    blob[0] = 0;
    assert!(Btf::parse(blob).is_err());
    let mut b = BtfBuilder::new();
    b.int("int", 4, true);
    let mut blob = b.finish();
    // Claim more type bytes than there are.
    blob[16] = 200;
    assert!(Btf::parse(blob).is_err());
}
