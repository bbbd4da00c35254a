//! Tests against the running kernel (root, tracefs). See `common::kernel`
//! for when they skip.

mod common;

use std::{
    collections::HashSet,
    time::{Duration, Instant},
};

use common::*;
use ferret_bpf::{
    Insn, Reg, Size,
    insn::{AluOp, JmpOp, helper},
};
use ferret_kernel::{
    HardwareEvent, KernelError, KernelSymbols, PerfTarget, SoftwareEvent, load, tracefs,
};

#[test]
fn tracefs_lists_and_reads_formats() -> TestResult {
    let Some(tfs) = kernel() else { return Ok(()) };
    let all = tracefs::list_tracepoints(&tfs)?;
    let syscalls: Vec<_> = all.iter().filter(|(c, _)| c == "syscalls").collect();
    assert!(
        syscalls.len() > 100,
        "only {} syscall tracepoints",
        syscalls.len()
    );

    let start = Instant::now();
    for (cat, ev) in &syscalls {
        let format = tracefs::read_format(&tfs, cat, ev)?;
        assert!(format.contains("field:"), "{cat}:{ev}");
    }
    let took = start.elapsed();
    eprintln!("read {} formats in {took:?}", syscalls.len());

    assert!(tracefs::event_id(&tfs, "syscalls", "sys_enter_getppid")? > 0);
    assert!(tracefs::exists(&tfs, "syscalls", "sys_enter_getppid"));
    assert!(matches!(
        tracefs::read_format(&tfs, "syscalls", "sys_enter_nope"),
        Err(KernelError::NoSuchTracepoint { .. })
    ));
    Ok(())
}

#[test]
fn bpffs_is_available() -> TestResult {
    let Some(_) = kernel() else { return Ok(()) };
    let mount = ferret_kernel::ensure_bpffs()?;
    assert_eq!(mount.path, std::path::Path::new("/sys/fs/bpf"));
    // A second call finds it mounted.
    assert!(!ferret_kernel::ensure_bpffs()?.mounted_by_us);
    Ok(())
}

#[test]
fn kernel_symbols_round_trip() -> TestResult {
    let Some(_) = kernel() else { return Ok(()) };
    let start = Instant::now();
    let syms = KernelSymbols::load()?;
    eprintln!("{} kernel symbols in {:?}", syms.len(), start.elapsed());
    assert!(!syms.is_empty());
    let addr = syms
        .address_of("do_sys_openat2")
        .ok_or("no do_sys_openat2")?;
    assert_eq!(syms.resolve(addr + 3), Some(("do_sys_openat2", 3)));
    Ok(())
}

#[test]
fn tracepoint_counts_getppid() -> TestResult {
    let Some(_) = kernel() else { return Ok(()) };
    let def = counter_object("tracepoint/syscalls/sys_enter_getppid", "count_getppid");
    let mut obj = load(&def)?;
    assert_eq!(obj.program_names(), vec!["count_getppid".to_string()]);
    obj.attach_tracepoint("count_getppid", "syscalls", "sys_enter_getppid")?;
    getppid_a_few_times(5);
    assert!(counter_value(&obj)? >= 5);
    let (_ns, _runs) = obj.run_stats("count_getppid")?;
    Ok(())
}

#[test]
fn missing_tracepoint_is_reported() -> TestResult {
    let Some(_) = kernel() else { return Ok(()) };
    let def = counter_object("tracepoint/x", "prog");
    let mut obj = load(&def)?;
    let err = obj.attach_tracepoint("prog", "syscalls", "sys_enter_foo");
    let Err(err) = err else {
        return Err("attached to a tracepoint that does not exist".into());
    };
    assert_eq!(
        err.to_string(),
        "tracepoint syscalls:sys_enter_foo does not exist"
    );
    assert!(matches!(
        obj.attach_tracepoint("nope", "syscalls", "sys_enter_getppid"),
        Err(KernelError::NoSuchProgram(_))
    ));
    assert!(matches!(
        obj.run_once("prog"),
        Err(KernelError::WrongProgramType { .. })
    ));
    Ok(())
}

#[test]
fn ring_buffer_round_trip() -> TestResult {
    let Some(_) = kernel() else { return Ok(()) };
    let mut insns = vec![
        Insn::call(helper::GET_CURRENT_PID_TGID),
        Insn::store(Size::DW, Reg::FP, -8, Reg::R0),
    ];
    insns.extend(Insn::ld_map_fd(Reg::R1)); // index 2
    insns.extend([
        Insn::mov64_reg(Reg::R2, Reg::FP),
        Insn::alu64_imm(AluOp::Add, Reg::R2, -8),
        Insn::mov64_imm(Reg::R3, 8),
        Insn::mov64_imm(Reg::R4, 0),
        Insn::call(helper::RINGBUF_OUTPUT),
        Insn::mov64_imm(Reg::R0, 0),
        Insn::exit(),
    ]);
    let def = object(
        vec![map("events", MAP_RINGBUF, 0, 0, 1 << 16)],
        vec![program(
            "tracepoint/syscalls/sys_enter_getppid",
            "emit",
            insns,
            vec![(2, 0)],
        )],
    );
    let mut obj = load(&def)?;
    let mut reader = obj.events("events")?;
    obj.attach_tracepoint("emit", "syscalls", "sys_enter_getppid")?;
    getppid_a_few_times(3);

    // pid_tgid of this thread: tgid in the high half, tid in the low half.
    let pid = u64::from(std::process::id());
    let mut ours = 0;
    let deadline = Instant::now() + Duration::from_secs(2);
    while ours < 3 && Instant::now() < deadline {
        if reader.poll(Duration::from_millis(100))? {
            reader.drain(|bytes| {
                assert_eq!(bytes.len(), 8);
                if u64_at(bytes) >> 32 == pid {
                    ours += 1;
                }
            });
        }
    }
    assert!(ours >= 3, "saw {ours} of our events");
    // Nothing pending: poll times out.
    while reader.next().is_some() {}
    Ok(())
}

#[test]
fn begin_runs_once() -> TestResult {
    let Some(_) = kernel() else { return Ok(()) };
    let (insns, relocs) = count_insns(0, 7);
    let (pc_insns, pc_relocs) = count_insns(1, 0);
    let def = object(
        vec![
            map("counter", MAP_ARRAY, 4, 8, 1),
            map("percpu", MAP_PERCPU_ARRAY, 4, 8, 1),
        ],
        vec![
            program("raw_tp/begin", "begin", insns, relocs),
            program("raw_tp/end", "end", pc_insns, pc_relocs),
        ],
    );
    let mut obj = load(&def)?;
    assert_eq!(obj.run_once("begin")?, 7);
    assert_eq!(obj.run_once("begin")?, 7);
    assert_eq!(counter_value(&obj)?, 2);

    assert_eq!(obj.run_once("end")?, 0);
    let percpu = obj.map("percpu")?;
    let entries = percpu.percpu_entries()?;
    assert_eq!(entries.len(), 1);
    let (_, values) = &entries[0];
    assert_eq!(values.len(), ferret_kernel::cpus::possible_count()?);
    assert_eq!(values.iter().map(|v| u64_at(v)).sum::<u64>(), 1);
    Ok(())
}

#[test]
fn raw_map_operations() -> TestResult {
    let Some(_) = kernel() else { return Ok(()) };
    let (insns, relocs) = count_insns(1, 0);
    let def = object(
        vec![
            map("hash", MAP_HASH, 12, 4, 64),
            map("arr", MAP_ARRAY, 4, 8, 4),
        ],
        vec![program("raw_tp/begin", "begin", insns, relocs)],
    );
    let obj = load(&def)?;
    let hash = obj.map("hash")?;
    assert_eq!((hash.key_size(), hash.value_size()), (12, 4));
    for i in 0u8..10 {
        hash.update(&[i; 12], &[i, 0, 0, 1])?;
    }
    assert_eq!(hash.lookup(&[3; 12])?, Some(vec![3, 0, 0, 1]));
    assert_eq!(hash.lookup(&[99; 12])?, None);
    let keys: HashSet<_> = hash.entries()?.into_iter().map(|(k, _)| k[0]).collect();
    assert_eq!(keys, (0u8..10).collect());
    assert!(hash.delete(&[3; 12])?);
    assert!(!hash.delete(&[3; 12])?);
    hash.zero_values()?;
    assert_eq!(hash.lookup(&[4; 12])?, Some(vec![0; 4]));
    hash.clear()?;
    assert!(hash.entries()?.is_empty());
    assert!(matches!(
        hash.lookup(&[0; 4]),
        Err(KernelError::MapSize { .. })
    ));

    let arr = obj.map("arr")?;
    arr.update(&2u32.to_ne_bytes(), &5u64.to_ne_bytes())?;
    assert_eq!(arr.entries()?.len(), 4);
    arr.clear()?;
    assert!(arr.entries()?.iter().all(|(_, v)| u64_at(v) == 0));
    assert!(matches!(obj.map("nope"), Err(KernelError::NoSuchMap(_))));
    Ok(())
}

#[test]
fn perf_events_fire() -> TestResult {
    let Some(_) = kernel() else { return Ok(()) };
    let def = counter_object("perf_event", "tick");
    let mut obj = load(&def)?;
    let n = obj.attach_perf_event(
        "tick",
        PerfTarget::Interval {
            period_ns: 10_000_000,
        },
    )?;
    assert_eq!(n, 1);
    std::thread::sleep(Duration::from_millis(300));
    let ticks = counter_value(&obj)?;
    assert!(
        (5..=60).contains(&ticks),
        "{ticks} ticks in 300 ms at 100 Hz"
    );

    let def = counter_object("perf_event", "prof");
    let mut obj = load(&def)?;
    let cpus = ferret_kernel::cpus::online()?.len();
    let n = obj.attach_perf_event(
        "prof",
        PerfTarget::Profile {
            frequency_hz: Some(99),
            period_ns: None,
        },
    )?;
    assert_eq!(n, cpus);
    assert!(matches!(
        obj.attach_perf_event(
            "prof",
            PerfTarget::Profile {
                frequency_hz: None,
                period_ns: None
            }
        ),
        Err(KernelError::Invalid(_))
    ));

    let def = counter_object("perf_event", "faults");
    let mut faults = load(&def)?;
    faults.attach_perf_event(
        "faults",
        PerfTarget::Software {
            event: SoftwareEvent::PageFaults,
            period: 1,
        },
    )?;
    // A new process faults in its pages (memory of this one may be warm).
    std::process::Command::new("true").status()?;
    std::thread::sleep(Duration::from_millis(100));
    assert!(counter_value(&obj)? > 0, "profile never fired");
    assert!(counter_value(&faults)? > 0, "no page faults counted");
    Ok(())
}

#[test]
fn perf_events_for_one_process_and_its_children() -> TestResult {
    use std::io::Write as _;
    let Some(_) = kernel() else { return Ok(()) };
    // A shell that waits for a line, then forks and execs a program.
    let mut child = std::process::Command::new("sh")
        .args(["-c", "read line; /bin/true"])
        .stdin(std::process::Stdio::piped())
        .spawn()?;
    let def = counter_object("perf_event", "faults");
    let mut faults = load(&def)?;
    let n = faults.attach_perf_event_for(
        "faults",
        PerfTarget::Software {
            event: SoftwareEvent::PageFaults,
            period: 1,
        },
        Some(child.id()),
    )?;
    assert_eq!(n, ferret_kernel::cpus::online()?.len());
    // Faults of this process are not the child's.
    let mut fresh = vec![0u8; 8 << 20];
    for i in (0..fresh.len()).step_by(4096) {
        fresh[i] = 1;
    }
    std::hint::black_box(&fresh);
    std::thread::sleep(Duration::from_millis(50));
    let before = counter_value(&faults)?;
    child.stdin.take().ok_or("stdin")?.write_all(b"go\n")?;
    child.wait()?;
    let after = counter_value(&faults)?;
    // The shell may still fault while it sleeps in read(); a whole exec of
    // /bin/true in its child faults far more.
    assert!(before < 50, "{before} faults counted before the child ran");
    assert!(
        after > before + 20,
        "{before} then {after}: child's exec not counted"
    );
    Ok(())
}

#[test]
fn hardware_events_need_a_pmu() -> TestResult {
    let Some(_) = kernel() else { return Ok(()) };
    let def = counter_object("perf_event", "cycles");
    let mut obj = load(&def)?;
    let result = obj.attach_perf_event(
        "cycles",
        PerfTarget::Hardware {
            event: HardwareEvent::CpuCycles,
            period: 1_000_000,
        },
    );
    let pmu = std::path::Path::new("/sys/bus/event_source/devices/cpu").exists();
    match result {
        Ok(n) => assert!(pmu && n > 0, "attached {n} without a CPU PMU"),
        Err(e) => assert!(!pmu, "a CPU PMU exists, yet: {e}"),
    }
    assert_eq!(
        HardwareEvent::from_name("cycles"),
        Some(HardwareEvent::CpuCycles)
    );
    assert_eq!(HardwareEvent::from_name("nope"), None);
    Ok(())
}

/// On a tracepoint the kernel fires from kernel code (a fork): syscall
/// tracepoints hand the program the user registers, from which 6.1 takes
/// no kernel stack at all.
#[test]
fn kernel_stack_is_read_and_symbolized() -> TestResult {
    let Some(_) = kernel() else { return Ok(()) };
    let mut insns = vec![Insn::mov64_reg(Reg::R6, Reg::R1)];
    insns.push(Insn::mov64_reg(Reg::R1, Reg::R6));
    insns.extend(Insn::ld_map_fd(Reg::R2)); // index 2: stacks
    insns.extend([
        Insn::mov64_imm(Reg::R3, 0),
        Insn::call(helper::GET_STACKID),
        Insn::mov64_reg(Reg::R7, Reg::R0),
        Insn::jmp_imm(JmpOp::Jslt, Reg::R7, 0, 10),
        Insn::store_imm(Size::W, Reg::FP, -4, 0),
        Insn::mov64_reg(Reg::R2, Reg::FP),
        Insn::alu64_imm(AluOp::Add, Reg::R2, -4),
    ]);
    insns.extend(Insn::ld_map_fd(Reg::R1)); // index 11: counter
    insns.extend([
        Insn::call(helper::MAP_LOOKUP_ELEM),
        Insn::jmp_imm(JmpOp::Jeq, Reg::R0, 0, 2),
        Insn::alu64_imm(AluOp::Add, Reg::R7, 1),
        Insn::store(Size::DW, Reg::R0, 0, Reg::R7),
        Insn::mov64_imm(Reg::R0, 0),
        Insn::exit(),
    ]);
    let def = object(
        vec![
            map("stacks", MAP_STACK_TRACE, 4, 8 * 127, 128),
            map("counter", MAP_ARRAY, 4, 8, 1),
        ],
        vec![program(
            "tracepoint/sched/sched_process_fork",
            "stack",
            insns,
            vec![(2, 0), (11, 1)],
        )],
    );
    let mut obj = load(&def)?;
    obj.attach_tracepoint("stack", "sched", "sched_process_fork")?;
    std::process::Command::new("true").status()?;
    let id = counter_value(&obj)?;
    assert!(id > 0, "get_stackid failed or never ran");
    let id = u32::try_from(id - 1)?;
    let ips = obj.stack("stacks", id)?;
    assert!(!ips.is_empty());
    let syms = KernelSymbols::load()?;
    let names: Vec<_> = ips
        .iter()
        .filter_map(|&ip| syms.resolve(ip).map(|(n, _)| n.to_owned()))
        .collect();
    eprintln!("stack: {names:?}");
    assert_eq!(names.len(), ips.len());
    assert!(obj.stack("stacks", 12345)?.is_empty() || id == 12345);
    assert!(matches!(
        obj.map("counter")?.stack(0),
        Err(KernelError::WrongMapType { .. })
    ));
    Ok(())
}

#[test]
fn verifier_rejection_carries_the_log() -> TestResult {
    let Some(_) = kernel() else { return Ok(()) };
    // r5 is never written: the verifier must refuse to read it.
    let insns = vec![Insn::mov64_reg(Reg::R0, Reg::R5), Insn::exit()];
    let def = object(
        vec![],
        vec![program(
            "tracepoint/syscalls/sys_enter_getppid",
            "bad",
            insns,
            vec![],
        )],
    );
    let mut obj = load(&def)?;
    match obj.attach_tracepoint("bad", "syscalls", "sys_enter_getppid") {
        Err(KernelError::Verifier { program, log }) => {
            assert_eq!(program, "bad");
            assert!(log.contains("R5"), "log: {log}");
            Ok(())
        }
        other => Err(format!("expected a verifier error, got {other:?}").into()),
    }
}

#[test]
fn dropping_detaches_everything() -> TestResult {
    let Some(_) = kernel() else { return Ok(()) };
    let def = counter_object("tracepoint/syscalls/sys_enter_getppid", "gone");
    let mut obj = load(&def)?;
    obj.attach_tracepoint("gone", "syscalls", "sys_enter_getppid")?;
    let id = obj.program_id("gone").ok_or("no program id")?;
    let live = || -> bool {
        aya::programs::loaded_programs()
            .filter_map(Result::ok)
            .any(|p| p.id() == id)
    };
    assert!(live());
    drop(obj);
    // Programs are freed after an RCU grace period.
    let deadline = Instant::now() + Duration::from_secs(5);
    while live() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!live(), "program {id} still loaded after drop");
    Ok(())
}
