//! User-space probes' generated code run in the userspace eBPF interpreter:
//! arguments and return values from the saved registers, USDT argument specs,
//! user stacks and symbols, against a binary described by hand.

#[expect(dead_code, reason = "the VM harness serves other tests too")]
mod vm;

use std::path::Path;
use std::sync::Arc;

use ferret_compiler::{CompiledProgram, FixedTarget, Options, Ty, compile};
use ferret_syntax::{SourceFile, parse};
use ferret_usym::{Binary, Function, UsdtProbe};
use vm::{Machine, i64_at, put, run, str_at, u64_at};

/// Size of x86-64's `struct pt_regs`.
const PT_REGS: usize = 168;
const RDI: usize = 112;
const RSI: usize = 104;
const RDX: usize = 96;
const RCX: usize = 88;
const R8: usize = 72;
const R9: usize = 64;
const RAX: usize = 80;
const RBX: usize = 40;
const RBP: usize = 32;

fn target() -> FixedTarget {
    let func = |name: &str, address: u64, size: u64| Function {
        name: name.into(),
        address,
        size,
        file_offset: address - 0x1000,
    };
    let site = |name: &str, args: &str| UsdtProbe {
        provider: "app".into(),
        name: name.into(),
        address: 0x2010,
        file_offset: 0x1010,
        semaphore_offset: Some(0x5000),
        args_text: args.into(),
    };
    let mut bin = Binary::from_parts(
        Path::new("/bin/app"),
        vec![
            func("add", 0x2000, 0x40),
            func("_ZN2ns5parseEi", 0x3000, 0x20),
        ],
        vec![
            site(
                "specs",
                "-4@%edi 8@-8(%rbp) 2@$-3 -1@%sil 8@8(%rbx,%rcx,2) -2@%r9w",
            ),
            site("two", "8@%rdi 8@%rsi"),
        ],
    );
    bin.data.push(func("counter", 0x6010, 8));
    let mut t = FixedTarget {
        ncpus: 1,
        ..FixedTarget::default()
    };
    t.binaries.insert("/bin/app".into(), Arc::new(bin));
    t
}

fn compile_src(src: &str) -> Result<CompiledProgram, String> {
    let file = SourceFile::new("test.bt", src);
    let ast = parse(&file).map_err(|d| format!("{d:?}"))?;
    compile(&ast, &target(), &Options::default()).map_err(|d| {
        d.iter()
            .map(|d| d.message.clone())
            .collect::<Vec<_>>()
            .join("; ")
    })
}

/// Runs the first program of `src` with `regs` as its context; returns
/// the machine and the compiled program.
fn run_with(
    src: &str,
    regs: &mut [u8],
    setup: impl FnOnce(&mut Machine),
) -> (CompiledProgram, Machine) {
    let prog = compile_src(src).unwrap_or_else(|e| panic!("{src}: {e}"));
    let mut m = Machine::new(&prog, 1);
    setup(&mut m);
    let r0 = run(&mut m, &prog, 0, regs).unwrap_or_else(|e| panic!("{src}: {e}"));
    assert_eq!(r0, 0);
    (prog, m)
}

/// The integer arguments of the only printf event.
fn printed(prog: &CompiledProgram, m: &Machine) -> Vec<i64> {
    assert_eq!(m.events.len(), 1, "one event");
    let ev = &m.events[0];
    let id = (u64_at(ev, 0) >> 32) as usize;
    prog.printfs[id]
        .args
        .iter()
        .map(|(off, _)| i64_at(ev, *off as usize))
        .collect()
}

fn regs(values: &[(usize, u64)]) -> Vec<u8> {
    let mut r = vec![0u8; PT_REGS];
    for (off, v) in values {
        put(&mut r, *off, &v.to_le_bytes());
    }
    r
}

#[test]
fn uprobe_arguments_come_from_the_argument_registers() {
    let mut r = regs(&[
        (RDI, 1),
        (RSI, 2),
        (RDX, 3),
        (RCX, 4),
        (R8, 5),
        (R9, -6i64 as u64),
    ]);
    let (prog, m) = run_with(
        r#"uprobe:/bin/app:add { printf("%d %d %d %d %d %d", arg0, arg1, arg2, arg3, arg4, arg5); }"#,
        &mut r,
        |_| {},
    );
    assert_eq!(printed(&prog, &m), [1, 2, 3, 4, 5, -6]);
    assert!(matches!(
        prog.printfs[0].args[0].1,
        Ty::Int {
            bytes: 8,
            signed: false
        }
    ));
}

#[test]
fn uretprobe_return_value_and_func() {
    let mut r = regs(&[(RAX, -5i64 as u64)]);
    let (prog, m) = run_with(
        r#"uretprobe:/bin/app:add { printf("%d %s %s", retval, func, probe); }"#,
        &mut r,
        |_| {},
    );
    let ev = &m.events[0];
    let args = &prog.printfs[0].args;
    assert_eq!(i64_at(ev, args[0].0 as usize), -5);
    assert_eq!(str_at(ev, args[1].0 as usize), b"add");
    assert_eq!(str_at(ev, args[2].0 as usize), b"uretprobe:/bin/app:add");
    // A C++ function's func is its demangled name.
    let (prog, m) = run_with(
        r#"uprobe:/bin/app:cpp:"ns::parse" { printf("%s", func); }"#,
        &mut regs(&[]),
        |_| {},
    );
    assert_eq!(
        str_at(&m.events[0], prog.printfs[0].args[0].0 as usize),
        b"ns::parse(int)"
    );
}

#[test]
fn usdt_arguments_follow_their_specs() {
    let base = 64usize;
    let (prog, m) = {
        let prog = compile_src(
            r#"usdt:/bin/app:app:specs { printf("%d %d %d %d %d %d", arg0, arg1, arg2, arg3, arg4, arg5); }"#,
        )
        .unwrap();
        let mut m = Machine::new(&prog, 1);
        // 8@-8(%rbp): rbp points 8 bytes past a u64 in readable memory;
        // 8@8(%rbx,%rcx,2): rbx + rcx*2 + 8.
        put(&mut m.kernel_mem, base, &77u64.to_le_bytes());
        put(&mut m.kernel_mem, base + 24, &(-9i64).to_le_bytes());
        let addr = m.kernel_addr(base);
        let mut r = regs(&[
            (RDI, 0xdead_beef_ffff_fffe),
            (RBP, addr + 8),
            (RSI, 0x1ff),
            (RBX, addr + 8),
            (RCX, 4),
            (R9, 0x1234_8000),
        ]);
        run(&mut m, &prog, 0, &mut r).unwrap();
        (prog, m)
    };
    // -4@%edi: the low 32 bits, signed; 2@$-3: 16 bits, unsigned;
    // -1@%sil: the low byte, signed; -2@%r9w: 0x8000 as i16.
    assert_eq!(printed(&prog, &m), [-2, 77, 0xfffd, -1, -9, -32768]);
    for (_, ty) in &prog.printfs[0].args {
        assert_eq!(*ty, Ty::I64);
    }
}

#[test]
fn ustack_keys_hold_the_stack_id_and_the_pid() {
    let (prog, m) = run_with(
        "uprobe:/bin/app:add { @[ustack(perf, 5)] = count(); }",
        &mut regs(&[]),
        |_| {},
    );
    let info = &prog.maps[0];
    assert_eq!(
        info.key,
        Some(Ty::UStack {
            limit: 5,
            mode: ferret_compiler::config::StackMode::Perf
        })
    );
    let entries = m.entries(&info.symbol, 0);
    assert_eq!(entries.len(), 1);
    // The VM's get_stackid gives 7; the machine's pid is 4242.
    assert_eq!(u64_at(&entries[0].0, 0), (4242 << 32) | 7);
    assert!(prog.stack_map.is_some());
}

/// Regression: `func` took the capacity of the first probe's function, so
/// longer names of the same block were cut short in map keys.
#[test]
fn func_keeps_every_name_whole() {
    let prog = compile_src(
        r#"uprobe:/bin/app:add, uprobe:/bin/app:cpp:"ns::parse" { @[func] = count(); }"#,
    )
    .unwrap();
    let mut m = Machine::new(&prog, 1);
    for i in 0..2 {
        run(&mut m, &prog, i, &mut regs(&[])).unwrap();
    }
    let mut keys: Vec<Vec<u8>> = m
        .entries(&prog.maps[0].symbol, 0)
        .iter()
        .map(|(k, _)| str_at(k, 0))
        .collect();
    keys.sort();
    assert_eq!(keys, [b"add".to_vec(), b"ns::parse(int)".to_vec()]);
}

#[test]
fn usym_and_uaddr() {
    let (prog, m) = run_with(
        r#"uprobe:/bin/app:add { print(usym(arg0)); printf("%d", uaddr("counter")); }"#,
        &mut regs(&[(RDI, 0x2004)]),
        |_| {},
    );
    assert_eq!(prog.print_values, [Ty::Usym]);
    let ev = &m.events[0];
    assert_eq!((u64_at(ev, 8), u64_at(ev, 16)), (0x2004, 4242));
    let id = (u64_at(&m.events[1], 0) >> 32) as usize;
    assert_eq!(
        i64_at(&m.events[1], prog.printfs[id].args[0].0 as usize),
        0x6010
    );
}

#[test]
fn misplaced_builtins_are_errors() {
    let err = |src: &str| compile_src(src).unwrap_err();
    assert_eq!(
        err("uprobe:/bin/app:add { print(retval); }"),
        "'retval' is only available in uretprobe probes"
    );
    assert_eq!(
        err("uprobe:/bin/app:add { print(arg6); }"),
        "'arg6' is not available: x86-64 passes arguments in registers only up to arg5"
    );
    assert_eq!(
        err("uretprobe:/bin/app:add { print(arg0); }"),
        "'arg0' is not available in uretprobe probes"
    );
    assert_eq!(
        err("usdt:/bin/app:app:two { print(func); }"),
        "'func' is not available in usdt probes"
    );
    assert_eq!(
        err("usdt:/bin/app:app:two { print(arg2); }"),
        "'arg2' is not available: usdt:/bin/app:app:two has 2 arguments"
    );
    assert_eq!(
        err(r#"uprobe:/bin/app:add { print(uaddr("countr")); }"#),
        "could not resolve symbol 'countr' in /bin/app"
    );
    assert_eq!(
        err(r#"begin { print(uaddr("counter")); }"#),
        "uaddr() is only available in uprobe, uretprobe and usdt probes"
    );
    assert_eq!(
        err("uprobe:/bin/app:add { print(ustack(fast)); }"),
        "unknown stack mode 'fast'"
    );
    assert_eq!(
        err("uprobe:/bin/app:add { print(ustack(200)); }"),
        "ustack's limit must be a literal between 1 and 127"
    );
}
