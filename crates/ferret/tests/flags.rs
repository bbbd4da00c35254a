//! End-to-end: command-line flags (-o, -q, -f json, -l, -lv, --dry-run, -d,
//! -V).

mod common;

use common::{TempDir, kernel_or_skip, run, run_prog};

macro_rules! kernel {
    () => {
        if !kernel_or_skip(module_path!()) {
            return;
        }
    };
}

#[test]
fn version() {
    let out = run(&["-V"], None);
    assert_eq!(out.ok(), format!("ferret v{}\n", env!("CARGO_PKG_VERSION")));
    let out = run(&["--version"], None);
    assert_eq!(out.ok(), format!("ferret v{}\n", env!("CARGO_PKG_VERSION")));
}

#[test]
fn debug_prints_instructions_then_runs() {
    kernel!();
    for flags in [
        &["-d"][..],
        &["-d", "dis"],
        &["--debug", "codegen"],
        &["--dump"],
    ] {
        let out = run_prog(flags, r#"begin { printf("ran\n"); exit(); }"#, &[]);
        let stdout = out.ok_with_stderr("Attached 1 probe\n");
        let mut lines = stdout.lines();
        assert_eq!(lines.next(), Some("; begin (ferret_p0)"), "{flags:?}");
        assert_eq!(
            lines.next(),
            Some("   0: (7b) *(u64 *)(r10 -8) = r1"),
            "{stdout}"
        );
        assert!(stdout.contains("call bpf_ringbuf_output#130"), "{stdout}");
        // Then the trace runs, as bpftrace's -d does.
        assert!(stdout.ends_with(": (95) exit\n\nran\n\n\n"), "{stdout}");
    }
}

#[test]
fn debug_rejects_unknown_stages() {
    let out = run_prog(&["-d", "libbpf"], "begin { }", &[]);
    assert_eq!(out.code, Some(1));
    assert_eq!(
        out.stderr,
        "ferret: invalid stage for -d: 'libbpf' (a bpftrace stage ferret does not have): \
         expected all, codegen or dis\nTry 'ferret --help' for more information.\n"
    );
}

#[test]
fn dry_run_exits_zero_without_output() {
    kernel!();
    let out = run_prog(
        &["--dry-run"],
        r#"begin { printf("begin\n"); } tracepoint:sched:sched_switch { @ = count(); } end { printf("end\n"); }"#,
        &[],
    );
    assert_eq!(out.ok(), "");
}

#[test]
fn quiet_and_attached_message() {
    kernel!();
    let prog = r#"begin { printf("x\n"); exit(); }"#;
    let loud = run_prog(&[], prog, &[]);
    assert_eq!(loud.code, Some(0));
    assert_eq!(loud.stdout, "x\n\n\n");
    assert_eq!(loud.stderr, "Attached 1 probe\n");
    let quiet = run_prog(&["-q"], prog, &[]);
    assert_eq!(quiet.ok(), "x\n\n\n");
    let quiet = run_prog(&["--quiet"], prog, &[]);
    assert_eq!(quiet.ok(), "x\n\n\n");
}

#[test]
fn output_file() {
    kernel!();
    let dir = TempDir::new("outf");
    let file = dir.path("out.txt");
    let out = run_prog(
        &["-q", "-o", file.to_str().unwrap()],
        r#"begin { printf("to file\n"); @z = 1; exit(); }"#,
        &[],
    );
    assert_eq!(out.ok(), "");
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "to file\n\n\n@z: 1\n"
    );
    // --output, and the Attached message still on stderr.
    let out = run_prog(
        &["--output", file.to_str().unwrap()],
        r#"begin { printf("again\n"); exit(); }"#,
        &[],
    );
    assert_eq!(out.code, Some(0));
    assert_eq!(out.stdout, "");
    assert_eq!(out.stderr, "Attached 1 probe\n");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "again\n\n\n");
}

#[test]
fn json_lines() {
    kernel!();
    let out = run_prog(
        &["-f", "json"],
        r#"begin { printf("x %d\n", 5); print((1, "a")); print(-2);
                   @m["k"] = 2; @s = stats(4); @c = count(); @h = hist(3); exit(); }"#,
        &[],
    );
    assert_eq!(
        out.ok(),
        r#"{"type": "attached_probes", "count": 1, "data": {"probes": 1}}
{"type": "printf", "data": "x 5\n"}
{"type": "value", "data": [1,"a"]}
{"type": "value", "data": -2}
{"type": "map", "data": {"@c": 1}}
{"type": "hist", "data": {"@h": [{"min": 2, "max": 3, "count": 1}]}}
{"type": "map", "data": {"@m": {"k": 2}}}
{"type": "stats", "data": {"@s": {"count": 1, "average": 4, "total": 4}}}
"#
    );
    let quiet = run_prog(
        &["-q", "-f", "json"],
        r#"begin { printf("q\n"); exit(); }"#,
        &[],
    );
    assert_eq!(quiet.ok(), "{\"type\": \"printf\", \"data\": \"q\\n\"}\n");
}

#[test]
fn bad_format_is_a_usage_error() {
    let out = run_prog(&["-f", "xml"], "begin { exit(); }", &[]);
    assert_eq!(out.code, Some(1));
    assert_eq!(out.stdout, "");
    assert!(out.stderr.contains("xml"), "{out:#?}");
}

#[test]
fn list_tracepoints() {
    kernel!();
    let out = run(&["-l", "tracepoint:sched:*"], None);
    let stdout = out.ok();
    assert!(
        stdout.lines().any(|l| l == "tracepoint:sched:sched_switch"),
        "{stdout}"
    );
    assert!(
        stdout.lines().all(|l| l.starts_with("tracepoint:sched:")),
        "{stdout}"
    );
    assert!(!stdout.contains("    "), "fields without -v: {stdout}");
}

#[test]
fn list_verbose_shows_fields() {
    kernel!();
    for args in [
        &["-lv", "tracepoint:sched:sched_switch"][..],
        &["-l", "-v", "tracepoint:sched:sched_switch"][..],
        &["-v", "-l", "tracepoint:sched:sched_switch"][..],
    ] {
        let out = run(args, None);
        let stdout = out.ok();
        let lines: Vec<&str> = stdout.lines().collect();
        assert_eq!(
            lines.first(),
            Some(&"tracepoint:sched:sched_switch"),
            "{args:?}: {stdout}"
        );
        for field in [
            "    char prev_comm[16]",
            "    pid_t prev_pid",
            "    pid_t next_pid",
        ] {
            assert!(lines.contains(&field), "{args:?}: no {field:?} in {stdout}");
        }
    }
}

#[test]
fn json_every_map_kind() {
    kernel!();
    let out = run_prog(
        &["-f", "json"],
        r#"begin {
             printf("p %d\n", 1);
             print((1, "two", (3, 4)));
             @count["a"] = count(); @count["b"] = count(); @count["b"] = count();
             @sum = sum(-5); @min = min(3); @max = max(9); @avg = avg(7); @avg = avg(8);
             @stats[1, "x"] = stats(10);
             @hist = hist(5); @lhist["k"] = lhist(15, 0, 100, 10);
             @tuple[1, "a"] = (2, "b");
             @str = "text";
             exit();
           }"#,
        &[],
    );
    assert_eq!(
        out.ok(),
        r#"{"type": "attached_probes", "count": 1, "data": {"probes": 1}}
{"type": "printf", "data": "p 1\n"}
{"type": "value", "data": [1,"two",[3,4]]}
{"type": "stats", "data": {"@avg": 7}}
{"type": "map", "data": {"@count": {"a": 1, "b": 2}}}
{"type": "hist", "data": {"@hist": [{"min": 4, "max": 7, "count": 1}]}}
{"type": "hist", "data": {"@lhist": {"k": [{"min": 10, "max": 19, "count": 1}]}}}
{"type": "map", "data": {"@max": 9}}
{"type": "map", "data": {"@min": 3}}
{"type": "stats", "data": {"@stats": {"1,x": {"count": 1, "average": 10, "total": 10}}}}
{"type": "map", "data": {"@str": "text"}}
{"type": "map", "data": {"@sum": -5}}
{"type": "map", "data": {"@tuple": {"1,a": [2,"b"]}}}
"#
    );
}

#[test]
fn json_to_a_file_with_the_notify_line_on_stdout() {
    kernel!();
    let dir = TempDir::new("jsonf");
    let file = dir.path("out.json");
    let mut t = common::Tracer::start_prog(
        &["-f", "json", "-o", file.to_str().unwrap()],
        r#"interval:ms:100 { printf("tick\n"); exit(); }"#,
        &[],
    );
    assert_eq!(t.next_line(std::time::Duration::from_secs(2)), None);
    let out = t.finish();
    assert_eq!(out.ok(), "", "only the notify line on stdout");
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "{\"type\": \"attached_probes\", \"count\": 1, \"data\": {\"probes\": 1}}\n\
         {\"type\": \"printf\", \"data\": \"tick\\n\"}\n"
    );
}

#[test]
fn buffering_modes_all_deliver_everything() {
    kernel!();
    for mode in ["line", "full", "none"] {
        let dir = TempDir::new("buf");
        let file = dir.path("out.txt");
        let out = run_prog(
            &["-q", "-B", mode, "-o", file.to_str().unwrap()],
            r#"begin { printf("a"); printf("b\n"); @x = 1; exit(); }"#,
            &[],
        );
        assert_eq!(out.ok(), "");
        assert_eq!(
            std::fs::read_to_string(&file).unwrap(),
            "ab\n\n\n@x: 1\n",
            "-B {mode}"
        );
    }
}

#[test]
fn line_buffering_holds_a_partial_line() {
    kernel!();
    // Line buffering (the default) shows each complete line as its event
    // arrives, and a partial line only with its newline.
    let mut t = common::Tracer::start_prog(
        &["-q"],
        r#"interval:ms:100 { @n++; if (@n == 1) { printf("one\npart"); } if (@n == 8) { printf("ial\n"); exit(); } }"#,
        &[],
    );
    let first = t.next_line(std::time::Duration::from_secs(2));
    assert_eq!(first.as_deref(), Some("one\n"));
    let second = t.next_line(std::time::Duration::from_secs(5));
    assert_eq!(second.as_deref(), Some("partial\n"));
    let out = t.finish();
    assert_eq!(out.code, Some(0));
}

#[test]
fn list_software_and_hardware_events() {
    kernel!();
    let out = run(&["-l", "s:*fault*"], None);
    assert_eq!(
        out.ok(),
        "software:alignment-faults:\nsoftware:emulation-faults:\nsoftware:faults:\n\
         software:major-faults:\nsoftware:minor-faults:\nsoftware:page-faults:\n"
    );
    let out = run(&["-l", "hardware:*cycles*"], None);
    assert_eq!(
        out.ok(),
        "hardware:bus-cycles:\nhardware:cpu-cycles:\nhardware:cycles:\nhardware:ref-cycles:\n"
    );
}

#[test]
fn lost_events_reported_in_text_and_json() {
    kernel!();
    // 800 events of 480 bytes from one begin probe: more than the ring
    // buffer holds before ferret reads it.
    let tuple = format!("({})", vec!["$i"; 60].join(","));
    let prog = format!("begin {{ $i = 0; while ($i < 800) {{ print({tuple}); $i++; }} exit(); }}");
    let out = run_prog(&["-q"], &prog, &[]);
    assert_eq!(out.code, Some(0));
    let printed = out
        .stdout_lines()
        .iter()
        .filter(|l| l.starts_with('('))
        .count();
    let lost = 800 - printed;
    assert!(lost > 0, "nothing lost: {out:#?}");
    assert_eq!(
        out.stderr,
        format!("Lost {lost} events\nWARNING: Total lost event count: {lost}\n")
    );
    let out = run_prog(&["-q", "-f", "json"], &prog, &[]);
    assert_eq!(out.code, Some(0));
    let last = out.stdout_lines().last().copied().unwrap_or_default();
    let lost = 800 - (out.stdout_lines().len() - 1);
    assert_eq!(
        last,
        format!(
            "{{\"type\": \"lost_events\", \"count\": {lost}, \"data\": {{\"events\": {lost}}}}}"
        )
    );
    assert_eq!(
        out.stderr,
        format!("WARNING: Total lost event count: {lost}\n")
    );
}
