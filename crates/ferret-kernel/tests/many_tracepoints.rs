//! Attaching every syscall tracepoint, and handing the slow detach to a
//! background process. In its own test binary: the background process keeps
//! every fd of the process that forked it until that process exits.

mod common;

use std::time::{Duration, Instant};

use common::*;
use ferret_kernel::{load, tracefs};

#[test]
fn attaching_every_syscall_tracepoint_is_fast() -> TestResult {
    let Some(tfs) = kernel() else { return Ok(()) };
    // As ferret does: two descriptors per tracepoint.
    ferret_kernel::privileges::raise_open_file_limit();
    let points: Vec<_> = tracefs::list_tracepoints(&tfs)?
        .into_iter()
        .filter(|(c, _)| c == "syscalls")
        .collect();
    let def = counter_object("tracepoint/syscalls", "every");
    let mut obj = load(&def)?;
    wait_for_earlier_detachers();
    let start = Instant::now();
    for (cat, ev) in &points {
        obj.attach_tracepoint("every", cat, ev)?;
    }
    let took = start.elapsed();
    eprintln!("attached {} tracepoints in {took:?}", points.len());
    getppid_a_few_times(2);
    assert!(counter_value(&obj)? >= 4);
    // Detaching is slow in the kernel (an RCU grace period per tracepoint,
    // serialised under a mutex), so it happens in the background.
    let start = Instant::now();
    obj.detach_in_background()?;
    let took = start.elapsed();
    eprintln!("handed off detaching in {took:?}");
    Ok(())
}

/// A detacher left by an earlier run holds the kernel's trace event mutex
/// for a while, which would stall attaching here.
fn wait_for_earlier_detachers() {
    let name = ferret_kernel::loader::DETACHER_NAME
        .to_string_lossy()
        .into_owned();
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        let busy = std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| {
                std::fs::read_to_string(e.path().join("comm")).is_ok_and(|c| c.trim() == name)
            });
        if !busy {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}
