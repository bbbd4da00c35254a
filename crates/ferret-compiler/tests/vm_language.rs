//! Records, `let` declarations and the string and name functions, run in
//! the userspace VM: the values programs compute and the bytes their
//! events carry.

#[expect(dead_code, reason = "this test uses part of the shared VM harness")]
mod vm;

use ferret_compiler::syscalls::SyscallAbi;
use ferret_compiler::{CompiledProgram, EventKind, FixedTarget, Options, Ty};
use vm::{Machine, build, build_for, i64_at, record, run, run_all, str_at, u64_at};

/// Runs `src` and returns each printf event's arguments, integers as their
/// decimal text and strings as themselves.
fn printed(src: &str) -> Vec<Vec<String>> {
    let (prog, m) = run_all(src);
    events_text(&prog, &m)
}

fn events_text(prog: &CompiledProgram, m: &Machine) -> Vec<Vec<String>> {
    m.events
        .iter()
        .filter(|ev| u64_at(ev, 0) as u32 == EventKind::Printf as u32)
        .map(|ev| {
            let id = (u64_at(ev, 0) >> 32) as usize;
            prog.printfs[id]
                .args
                .iter()
                .map(|(off, ty)| match ty {
                    Ty::Str { .. } => String::from_utf8_lossy(&str_at(ev, *off as usize)).into(),
                    _ => i64_at(ev, *off as usize).to_string(),
                })
                .collect()
        })
        .collect()
}

/// The one line `src` prints, its arguments joined by `|`.
fn line(src: &str) -> String {
    let got = printed(src);
    assert_eq!(got.len(), 1, "{src}: one printf");
    got[0].join("|")
}

#[test]
fn record_fields_read_by_name() {
    assert_eq!(
        line(
            r#"begin { $v = 99; $r = (a = 0, b = "str", c = (5, 6), d = $v);
               printf("%d %s %d %d %d", $r.a, $r.b, $r.c.0, $r.c.1, $r.d); }"#
        ),
        "0|str|5|6|99"
    );
}

#[test]
fn records_assigned_in_another_field_order_keep_the_first() {
    let (prog, m) = run_all("begin { $r = (x = 1, y = 2); $r = (y = 20, x = 10); print($r); }");
    let ty = Ty::Record(vec![("x".into(), Ty::I64), ("y".into(), Ty::I64)]);
    assert_eq!(prog.print_values, [ty]);
    let ev = &m.events[0];
    assert_eq!((i64_at(ev, 8), i64_at(ev, 16)), (10, 20));
}

#[test]
fn records_in_maps_keep_their_type() {
    let prog = build(r#"begin { @r[(k = 1, s = "a")] = (n = 2, t = "bb"); }"#);
    let map = &prog.maps[0];
    assert!(matches!(&map.key, Some(Ty::Record(f)) if f[0].0 == "k" && f[1].0 == "s"));
    assert!(matches!(&map.kind, ferret_compiler::MapKind::Plain(Ty::Record(f)) if f.len() == 2));
}

#[test]
fn untyped_let_takes_the_type_of_its_assignments() {
    // Assigned in both branches, read after: one variable.
    assert_eq!(
        line(
            r#"begin { let $s; if (pid > 1) { $s = "long string"; } else { $s = "x"; }
               printf("%s", $s); }"#
        ),
        "long string"
    );
    // Assigned on one path only: zero on the other, as bpftrace's.
    assert_eq!(
        line("begin { let $n; if (pid == 1) { $n = 5; } printf(\"%d\", $n); }"),
        "0"
    );
    assert_eq!(
        line("begin { let $n; $n = 1; $n = (uint8)3; printf(\"%d\", $n); }"),
        "3"
    );
}

#[test]
fn typed_let_declarations() {
    assert_eq!(
        line(
            r#"begin { let $b: bool; let $a: uint8[4]; let $s: string[16]; let $i: int16 = -2;
               printf("%d %d %s %d", $b, $a[3], $s, $i); }"#
        ),
        "0|0||-2"
    );
}

#[test]
fn strstr_finds_the_first_occurrence() {
    for (expr, want) in [
        (r#"strstr("hello world", "o")"#, 4),
        (r#"strstr("hello world", "world")"#, 6),
        (r#"strstr("hello", "")"#, 0),
        (r#"strstr("", "")"#, 0),
        (r#"strstr("", "a")"#, -1),
        (r#"strstr("hello", "hellos")"#, -1),
        ("strstr(comm, \"test\")", 7),
    ] {
        assert_eq!(
            line(&format!("begin {{ printf(\"%d\", {expr}); }}")),
            want.to_string(),
            "{expr}"
        );
    }
}

#[test]
fn str_concat_joins_two_strings() {
    assert_eq!(
        line(r#"begin { printf("%s", str_concat("foo", "barbaz")); }"#),
        "foobarbaz"
    );
    assert_eq!(
        line(r#"begin { printf("%s", str_concat(comm, "!")); }"#),
        "ferret-test!"
    );
    assert_eq!(
        line(r#"begin { $e = ""; printf("%s", str_concat($e, str_concat("a", $e))); }"#),
        "a"
    );
}

#[test]
fn memcmp_gives_the_first_difference() {
    for (setup, expr, want) in [
        ("", r#"memcmp("abc", "abd", 3)"#, -1),
        ("", r#"memcmp("abd", "abc", 3)"#, 1),
        ("", r#"memcmp("abc", "abd", 2)"#, 0),
        ("", r#"memcmp("abc", "abc", 100)"#, 0),
        ("$a = 5; $b = 6;", "memcmp($a, $b, 8)", -1),
        (
            "$a = (uint8[2])0x8001; $b = (uint8[2])0x0001;",
            "memcmp($a, $b, 2)",
            -128,
        ),
        ("$n = 1;", r#"memcmp("ab", "ac", $n)"#, 0),
    ] {
        let src = format!("begin {{ {setup} printf(\"%d\", {expr}); }}");
        assert_eq!(line(&src), want.to_string(), "{src}");
    }
}

#[test]
fn syscall_names_come_from_the_table_the_runtime_fills() {
    let target = FixedTarget {
        syscalls: Some(SyscallAbi::x86_64(16)),
        ..vm::target(1)
    };
    let src = r#"begin { printf("%s %s %s %s %s", syscall_name(0), syscall_name(4),
                  syscall_name(257), syscall_name(9999), syscall_name(-1)); }"#;
    let prog = build_for(src, &target, &Options::default());
    // One entry per named number, in a map of its own.
    assert!(
        prog.map_entries
            .iter()
            .all(|(map, _, _)| map == "ferret_syscall_names")
    );
    assert!(prog.map_entries.len() > 300);
    let mut m = Machine::new(&prog, 1);
    run(&mut m, &prog, 0, &mut record()).unwrap();
    assert_eq!(
        events_text(&prog, &m)[0].join(" "),
        "read stat openat Unknown syscall Unknown syscall"
    );
}

#[test]
fn signal_names_are_descriptions() {
    assert_eq!(
        line(
            r#"begin { printf("%s|%s|%s|%s", signal_name(2), signal_name(15),
               signal_name(35), signal_name(65)); }"#
        ),
        "Interrupt|Terminated|Real-time signal 1|N/A"
    );
}

#[test]
fn nsecs_clocks_and_namespaced_ids() {
    assert_eq!(
        line(
            "begin { printf(\"%d %d %d %d\", nsecs(boot), nsecs(monotonic), pid(init), tid(curr_ns)); }"
        ),
        "123456789000|123456789000|4242|4243"
    );
}

#[test]
fn cgroup_path_carries_the_id_and_the_filter() {
    let (prog, m) = run_all("begin { print(cgroup_path(77, \"uni*\")); }");
    assert_eq!(
        prog.print_values,
        [Ty::CgroupPath {
            filter: "uni*".into()
        }]
    );
    assert_eq!(u64_at(&m.events[0], 8), 77);
}

// Loops: the harness runs `bpf_loop` and `bpf_for_each_map_elem`
// callbacks in an interpreter of their own, with the program's memory.

#[test]
fn range_loops_sum_break_and_continue() {
    assert_eq!(
        line("begin { $s = 0; for ($i : 1..5) { $s += $i; } printf(\"%d\", $s); }"),
        "10"
    );
    assert_eq!(
        line(
            "begin { $s = 0; for ($i : (-3)..10) { if ($i == 0) { continue; } if ($i == 3) { break; } $s = $s * 10 + $i; } printf(\"%d\", $s); }"
        ),
        // -3, -2, -1, 1, 2 folded as s*10+i
        ((((-3i64 * 10 - 2) * 10 - 1) * 10 + 1) * 10 + 2).to_string()
    );
    // No iterations when the range is empty or reversed.
    assert!(
        printed("begin { for ($i : 5..5) { printf(\"x\"); } for ($i : 5..1) { printf(\"y\"); } }")
            .is_empty()
    );
}

#[test]
fn return_and_exit_leave_the_probe_from_nested_loops() {
    let got = printed(
        "begin { for ($i : 1..4) { for ($j : 1..$i) { printf(\"%d\", $i * 10 + $j); if ($j == 2) { return; } } } printf(\"%d\", 0); }",
    );
    assert_eq!(got, [["21"], ["31"], ["32"]]);
    let (_, m) = run_all(
        "begin { for ($i : 0..5) { if ($i == 1) { exit(); } printf(\"%d\", $i); } printf(\"%d\", 9); }",
    );
    let kinds: Vec<u32> = m.events.iter().map(|e| u64_at(e, 0) as u32).collect();
    assert_eq!(kinds, [EventKind::Printf as u32, EventKind::Exit as u32]);
}

#[test]
fn map_loops_see_keys_values_and_per_cpu_totals() {
    let src = r#"begin {
        @m[1, "a"] = 10; @m[2, "b"] = 20;
        @c[7] = count();
        $sum = 0;
        for ($kv : @m) { $sum += $kv.0.0 * $kv.1; }
        for ($kv : @c) { printf("%d %d", $kv.0, $kv.1); }
        printf("%d %d %d", $sum, len(@m), len(@c));
    }"#;
    let prog = vm::build_with(src, 2, &Options::default());
    let mut m = Machine::new(&prog, 2);
    // Once on each CPU: the loop reads the count across both.
    for cpu in 0..2 {
        m.cpu = cpu;
        run(&mut m, &prog, 0, &mut record()).unwrap();
    }
    let got = events_text(&prog, &m);
    assert_eq!(
        got,
        [
            vec!["7", "1"],
            vec!["50", "2", "1"],
            vec!["7", "2"],
            vec!["50", "2", "1"]
        ]
    );
}

/// Regression: 6.1's verifier counts each nested callback's empty frame as
/// 32 bytes, and refused this probe ("combined stack size of 3 calls is
/// 544") while newer kernels took it.
#[test]
fn nested_map_loops_fit_the_strictest_verifier_stack() {
    let src = r#"begin {
        @m[1] = "one"; @m[2] = "two"; @m[3] = "three";
        $total = 0; $names = "";
        for ($kv : @m) {
          $total += $kv.0;
          if ($kv.0 == 2) { $names = $kv.1; }
          @copy[$kv.1] = $kv.0;
          while ($total > 100) { break; }
        }
        printf("%d %s %d %d", $total, $names, len(@m), len(@copy));
        for ($kv : @m) { for ($kv2 : @copy) { @pairs[$kv.0, $kv2.0] = 1; } }
        printf("%d", len(@pairs));
    }"#;
    let (prog, m) = run_all(src);
    assert!(
        vm::strict_verifier_stack(&prog, 0, 2) <= 512,
        "{}",
        vm::strict_verifier_stack(&prog, 0, 2)
    );
    assert_eq!(
        events_text(&prog, &m),
        [vec!["6", "two", "3", "3"], vec!["9"]]
    );
}

/// Regression: a search evaluated only for its type left its loop's
/// callback in the program with nothing calling it, which the verifier
/// refuses as unreachable code.
#[test]
fn a_search_evaluated_for_its_type_leaves_no_callback() {
    let src = format!(
        r#"begin {{ $s = "{}needle"; printf("%d", sizeof(strstr($s, "needle"))); }}"#,
        "x".repeat(300)
    );
    let prog = build(&src);
    assert_eq!(prog.programs[0].subprograms, Vec::<usize>::new());
    let mut m = Machine::new(&prog, 1);
    run(&mut m, &prog, 0, &mut record()).unwrap();
    assert_eq!(events_text(&prog, &m)[0].join(" "), "8");
}

#[test]
fn long_string_searches_walk_the_haystack_in_a_loop() {
    let src = format!(
        r#"begin {{ $s = "{}needle"; printf("%d %d", strstr($s, "needle"), strcontains($s, "nope")); }}"#,
        "x".repeat(300)
    );
    let prog = build(&src);
    assert_eq!(
        prog.programs[0].subprograms.len(),
        2,
        "two searches, two callbacks"
    );
    let mut m = Machine::new(&prog, 1);
    run(&mut m, &prog, 0, &mut record()).unwrap();
    assert_eq!(events_text(&prog, &m)[0].join(" "), "300 0");
}
