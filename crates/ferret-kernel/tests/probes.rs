//! Attaching every probe kind the loader knows beyond tracepoints and
//! timers: tp_btf, fentry/fexit, kprobes, uprobes; and programs with
//! bpf-to-bpf callbacks (BTF func_info). See `common::kernel` for when
//! they skip.

mod common;

use std::{
    hint::black_box,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use aya_obj::btf::{Btf, BtfKind};
use common::*;
use ferret_bpf::{
    Insn, Reg, Size,
    insn::{AluOp, BPF_PSEUDO_FUNC, JmpOp, helper},
};
use ferret_kernel::{KernelError, load};

/// The id of a type in the running kernel's BTF.
fn vmlinux_btf_id(name: &str, kind: BtfKind) -> Result<u32, Box<dyn std::error::Error>> {
    let btf = Btf::from_sys_fs()?;
    Ok(btf.id_by_type_name_kind(name, kind)?)
}

/// Polls the counter until it reaches `at_least` or a second passes.
fn wait_for_count(obj: &ferret_kernel::LoadedObject, at_least: u64) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        let n = counter_value(obj).unwrap_or(0);
        if n >= at_least || Instant::now() > deadline {
            return n;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn tp_btf_counts_context_switches() -> TestResult {
    let Some(_) = kernel() else { return Ok(()) };
    let id = vmlinux_btf_id("btf_trace_sched_switch", BtfKind::Typedef)?;
    let mut obj = load(&counter_object("tp_btf/sched_switch", "switches"))?;
    assert!(matches!(
        obj.load_program("switches"),
        Err(KernelError::Invalid(_))
    ));
    obj.attach_tp_btf("switches", id)?;
    for _ in 0..5 {
        std::thread::sleep(Duration::from_millis(2));
    }
    assert!(wait_for_count(&obj, 5) >= 5);
    // Loaded against one tracepoint, it cannot move to another.
    assert!(matches!(
        obj.set_attach_btf_id("switches", id + 1),
        Err(KernelError::Invalid(_))
    ));
    Ok(())
}

/// Kernel BTF objects are found by name: vmlinux's always, a module's when
/// it is loaded with BTF; a program of a module's tracepoint loads against
/// the module's object.
#[test]
fn kernel_btf_objects_by_name() -> TestResult {
    let Some(_) = kernel() else { return Ok(()) };
    ferret_kernel::loader::kernel_btf_object("vmlinux")?;
    assert!(matches!(
        ferret_kernel::loader::kernel_btf_object("no_such_module"),
        Err(KernelError::Invalid(_))
    ));
    let mut obj = load(&counter_object("tp_btf/sched_switch", "switches"))?;
    assert!(matches!(
        obj.set_attach_btf_module("switches", "no_such_module"),
        Err(KernelError::Invalid(_))
    ));
    // vmlinux's own object named explicitly loads as without one.
    let id = vmlinux_btf_id("btf_trace_sched_switch", BtfKind::Typedef)?;
    obj.set_attach_btf_id("switches", id)?;
    obj.set_attach_btf_module("switches", "vmlinux")?;
    obj.load_program("switches")?;
    Ok(())
}

/// fentry needs BPF trampolines. Where the kernel refuses them (as ours
/// does) the error says so; elsewhere the probe counts openat calls.
#[test]
fn fentry_attaches_or_is_reported_unavailable() -> TestResult {
    let Some(_) = kernel() else { return Ok(()) };
    let id = vmlinux_btf_id("do_sys_openat2", BtfKind::Func)?;
    for section in ["fentry/do_sys_openat2", "fexit/do_sys_openat2"] {
        let mut obj = load(&counter_object(section, "opens"))?;
        match obj.attach_fentry("opens", id) {
            Ok(()) => {
                for _ in 0..3 {
                    std::fs::File::open("/proc/self/stat")?;
                }
                assert!(wait_for_count(&obj, 3) >= 3, "{section}");
            }
            Err(KernelError::Unavailable(message)) => {
                let kind = &section[..section.find('/').unwrap_or_default()];
                let expected = format!("{kind} is not available on this kernel (");
                assert!(message.starts_with(&expected), "{message}");
            }
            Err(other) => return Err(format!("{section}: {other}").into()),
        }
    }
    Ok(())
}

fn kprobes_available() -> bool {
    Path::new("/sys/bus/event_source/devices/kprobe").exists()
        || Path::new("/sys/kernel/tracing/kprobe_events").exists()
}

/// Where the kernel has kprobes they count openat calls (entry and
/// return, one function or several through one multi link); elsewhere
/// the error says kprobes are off.
#[test]
fn kprobes_attach_or_are_reported_unavailable() -> TestResult {
    let Some(_) = kernel() else { return Ok(()) };
    let available = kprobes_available();
    for (section, retprobe) in [
        ("kprobe/do_sys_openat2", false),
        ("kretprobe/do_sys_openat2", true),
        ("kprobe.multi/do_sys_*", false),
        ("kretprobe.multi/do_sys_*", true),
    ] {
        let mut obj = load(&counter_object(section, "opens"))?;
        let result = if section.contains(".multi") {
            obj.attach_kprobes("opens", &["do_sys_openat2", "do_sys_poll"], retprobe)
                .map(|n| assert_eq!(n, 2))
        } else {
            obj.attach_kprobe("opens", "do_sys_openat2", 0, retprobe)
        };
        match result {
            Ok(()) => {
                assert!(available, "{section} attached without kprobes");
                for _ in 0..3 {
                    std::fs::File::open("/proc/self/stat")?;
                }
                assert!(wait_for_count(&obj, 3) >= 3, "{section}");
            }
            Err(e) if !available => assert_eq!(
                e.to_string(),
                "kprobes are not available on this kernel (CONFIG_KPROBES is off)",
                "{section}"
            ),
            Err(e) => return Err(format!("{section}: {e}").into()),
        }
    }
    let mut obj = load(&counter_object("kretprobe/x", "ret"))?;
    assert!(matches!(
        obj.attach_kprobe("ret", "do_sys_openat2", 4, true),
        Err(KernelError::Invalid(_))
    ));
    Ok(())
}

/// The function the uprobe tests probe.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn ferret_uprobe_target(x: u64) -> u64 {
    black_box(x.wrapping_mul(3))
}

/// This test binary and the file offset of `f` in it, from the mapping
/// that holds `f` in `/proc/self/maps`.
fn file_offset_of(f: usize) -> Result<(PathBuf, u64), Box<dyn std::error::Error>> {
    let maps = std::fs::read_to_string("/proc/self/maps")?;
    for line in maps.lines() {
        let mut fields = line.split_whitespace();
        let (Some(range), Some(_perms), Some(offset)) =
            (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let Some((start, end)) = range.split_once('-') else {
            continue;
        };
        let (start, end) = (
            usize::from_str_radix(start, 16)?,
            usize::from_str_radix(end, 16)?,
        );
        if (start..end).contains(&f) {
            let path = fields.nth(2).ok_or("anonymous mapping")?;
            let offset = u64::from_str_radix(offset, 16)?;
            return Ok((PathBuf::from(path), (f - start) as u64 + offset));
        }
    }
    Err("function not in any mapping".into())
}

/// A pid no process has.
fn dead_pid() -> u32 {
    (4_000_000..)
        .find(|pid| !Path::new(&format!("/proc/{pid}")).exists())
        .unwrap_or(4_000_000)
}

fn append(path: &Path, line: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut file = std::fs::OpenOptions::new().append(true).open(path)?;
    writeln!(file, "{line}")
}

fn call_target(times: u64) {
    for i in 0..times {
        black_box(ferret_uprobe_target(black_box(i)));
    }
}

/// Uprobes and uretprobes on a function of this binary, for this process
/// and for every process, through the uprobe PMU and through tracefs.
#[test]
fn uprobes_count_calls() -> TestResult {
    let Some(_) = kernel() else { return Ok(()) };
    let (binary, offset) = file_offset_of(ferret_uprobe_target as *const () as usize)?;
    let pid = std::process::id();
    // A probe left by a ferret that was killed: removed before ours are
    // made (this is the only test here that makes probes through tracefs).
    let uprobe_events = Path::new("/sys/kernel/tracing/uprobe_events");
    let dead = dead_pid();
    let stale = format!("ferret_{dead}/p0");
    append(
        uprobe_events,
        &format!("p:{stale} {}:{offset:#x}", binary.display()),
    )?;
    for (section, retprobe, only_us, through_tracefs) in [
        ("uprobe/target", false, true, false),
        ("uretprobe/target", true, false, false),
        ("uprobe/target", false, false, true),
        ("uretprobe/target", true, true, true),
    ] {
        let case = format!("{section} pid-only={only_us} tracefs={through_tracefs}");
        let mut obj = load(&counter_object(section, "calls"))?;
        let pid = only_us.then_some(pid);
        if through_tracefs {
            obj.attach_uprobe_through_tracefs("calls", &binary, offset, retprobe, pid)?;
        } else {
            obj.attach_uprobe("calls", &binary, offset, retprobe, pid)?;
        }
        call_target(7);
        assert_eq!(wait_for_count(&obj, 7), 7, "{case}");
        drop(obj);
        let events = std::fs::read_to_string("/sys/kernel/tracing/uprobe_events")?;
        let ours = format!("ferret_{}/", std::process::id());
        assert!(!events.contains(&ours), "{case}: left behind:\n{events}");
    }
    let events = std::fs::read_to_string(uprobe_events)?;
    assert!(
        !events.contains(&stale),
        "{stale} is still there:\n{events}"
    );
    let mut obj = load(&counter_object("uprobe/x", "missing"))?;
    let err = obj.attach_uprobe("missing", Path::new("/nonexistent/binary"), 0, false, None);
    assert!(matches!(err, Err(KernelError::Attach { .. })), "{err:?}");
    Ok(())
}

/// `bpf_for_each_map_elem` over a 4-slot array with a callback that adds
/// each value to `sum`. The verifier takes the callback only with BTF
/// func_info, which the loader makes from the program's subprogram starts.
#[test]
fn for_each_map_elem_callback_runs_for_every_element() -> TestResult {
    let Some(_) = kernel() else { return Ok(()) };
    const CALLBACK: usize = 8;
    let mut insns = Vec::new();
    insns.extend(Insn::ld_map_fd(Reg::R1)); // 0: the array to walk
    let [mut lo, hi] = Insn::ld_imm64(Reg::R2, 0); // 2: the callback
    lo.src = BPF_PSEUDO_FUNC;
    lo.imm = (CALLBACK - 2 - 1) as i32;
    insns.extend([lo, hi]);
    insns.extend([
        Insn::mov64_imm(Reg::R3, 0),              // 4: callback context
        Insn::mov64_imm(Reg::R4, 0),              // 5: flags
        Insn::call(helper::FOR_EACH_MAP_ELEM),    // 6: r0 = elements visited
        Insn::exit(),                             // 7
        Insn::mov64_reg(Reg::R6, Reg::R3),        // 8: callback(map, key, value, ctx)
        Insn::store_imm(Size::W, Reg::FP, -4, 0), // 9
        Insn::mov64_reg(Reg::R2, Reg::FP),        // 10
        Insn::alu64_imm(AluOp::Add, Reg::R2, -4), // 11
    ]);
    insns.extend(Insn::ld_map_fd(Reg::R1)); // 12: sum
    insns.extend([
        Insn::call(helper::MAP_LOOKUP_ELEM),             // 14
        Insn::jmp_imm(JmpOp::Jeq, Reg::R0, 0, 2),        // 15
        Insn::load(Size::DW, Reg::R1, Reg::R6, 0),       // 16
        Insn::atomic_add(Size::DW, Reg::R0, 0, Reg::R1), // 17
        Insn::mov64_imm(Reg::R0, 0),                     // 18: continue
        Insn::exit(),                                    // 19
    ]);
    let mut prog = program("raw_tp/walk", "walk", insns, vec![(0, 0), (12, 1)]);
    prog.subprograms = vec![CALLBACK];
    let maps = vec![
        map("items", MAP_ARRAY, 4, 8, 4),
        map("sum", MAP_ARRAY, 4, 8, 1),
    ];

    // Without func_info the verifier refuses the callback.
    let mut bare = prog.clone();
    bare.subprograms.clear();
    let mut obj = load(&object(maps.clone(), vec![bare]))?;
    match obj.load_program("walk") {
        Err(KernelError::Verifier { log, .. }) => {
            assert!(log.contains("func_info"), "log: {log}")
        }
        other => return Err(format!("expected a verifier error, got {other:?}").into()),
    }

    let mut obj = load(&object(maps, vec![prog]))?;
    let items = obj.map("items")?;
    for i in 0u32..4 {
        items.update(&i.to_ne_bytes(), &u64::from(i + 1).to_ne_bytes())?;
    }
    assert_eq!(obj.run_once("walk")?, 4);
    let sum = obj
        .map("sum")?
        .lookup(&0u32.to_ne_bytes())?
        .ok_or("no sum")?;
    assert_eq!(u64_at(&sum), 1 + 2 + 3 + 4);
    Ok(())
}
