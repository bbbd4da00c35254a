//! Generated code run in a userspace eBPF interpreter: the values programs
//! compute, store in maps and send as events match bpftrace's semantics and
//! the bucket functions user space prints with.

#[expect(dead_code, reason = "the VM harness serves other tests too")]
mod vm;

use ferret_compiler::{CompiledProgram, EventKind, MapKind, Options, Ty};
use ferret_output::hist::{linear_index, log2_index};
use vm::{Machine, build, build_with, field, i64_at, put, record, run, run_all, str_at, u64_at};

/// Runs `src`'s programs once each and returns the printf events' first
/// argument as integers.
fn printed_ints(src: &str) -> Vec<i64> {
    let (prog, m) = run_all(src);
    m.events
        .iter()
        .filter(|ev| u64_at(ev, 0) as u32 != EventKind::RuntimeError as u32)
        .map(|ev| {
            let header = u64_at(ev, 0);
            assert_eq!(
                header as u32,
                EventKind::Printf as u32,
                "{src}: printf event"
            );
            let id = (header >> 32) as usize;
            let (off, _) = prog.printfs[id].args[0];
            i64_at(ev, off as usize)
        })
        .collect()
}

/// Evaluates `expr` in a begin probe after `setup` statements, through a
/// `printf("%d")` event.
fn eval(setup: &str, expr: &str) -> i64 {
    let src = format!("begin {{ {setup} printf(\"%d\", {expr}); }}");
    let got = printed_ints(&src);
    assert_eq!(got.len(), 1, "{src}: one event");
    got[0]
}

/// Evaluates `a OP b` both with variables (computed by the program) and
/// with literals (folded by the compiler).
fn eval_binop(a: i64, op: &str, b: i64) -> (i64, i64) {
    let lit = |v: i64| {
        if v == i64::MIN {
            "(-9223372036854775807 - 1)".to_string()
        } else if v < 0 {
            format!("(-{})", v.unsigned_abs())
        } else {
            v.to_string()
        }
    };
    let setup = format!("$a = {}; $b = {};", lit(a), lit(b));
    let runtime = eval(&setup, &format!("$a {op} $b"));
    let folded = eval("", &format!("{} {op} {}", lit(a), lit(b)));
    (runtime, folded)
}

const INTS: &[i64] = &[
    0,
    1,
    -1,
    2,
    -2,
    3,
    -3,
    7,
    -7,
    8,
    -8,
    100,
    -100,
    12345,
    -12345,
    i32::MAX as i64,
    i32::MIN as i64,
    i64::MAX,
    i64::MIN,
    i64::MIN + 1,
];

#[test]
fn signed_arithmetic_matches_c() {
    for &a in INTS {
        for &b in INTS {
            let cases: [(&str, i64); 8] = [
                ("+", a.wrapping_add(b)),
                ("-", a.wrapping_sub(b)),
                ("*", a.wrapping_mul(b)),
                ("&", a & b),
                ("|", a | b),
                ("^", a ^ b),
                ("/", if b == 0 { 1 } else { a.wrapping_div(b) }),
                ("%", if b == 0 { 1 } else { a.wrapping_rem(b) }),
            ];
            for (op, want) in cases {
                let (runtime, folded) = eval_binop(a, op, b);
                assert_eq!(runtime, want, "runtime {a} {op} {b}");
                assert_eq!(folded, want, "folded {a} {op} {b}");
            }
        }
    }
}

#[test]
fn signed_division_rounds_toward_zero() {
    for (a, b, q, r) in [
        (-7, 2, -3, -1),
        (7, -2, -3, 1),
        (-7, -2, 3, -1),
        (7, 2, 3, 1),
        (-1, 3, 0, -1),
        (-9, 3, -3, 0),
    ] {
        assert_eq!(eval_binop(a, "/", b), (q, q), "{a} / {b}");
        assert_eq!(eval_binop(a, "%", b), (r, r), "{a} % {b}");
    }
}

#[test]
fn division_by_zero_is_one() {
    assert_eq!(eval_binop(7, "/", 0), (1, 1));
    assert_eq!(eval_binop(-7, "/", 0), (1, 1));
    assert_eq!(eval_binop(7, "%", 0), (1, 1));
    assert_eq!(eval_binop(-7, "%", 0), (1, 1));
    assert_eq!(eval("$u = (uint64)7; $z = (uint64)0;", "$u / $z"), 1);
    assert_eq!(eval("$u = (uint64)7; $z = (uint64)0;", "$u % $z"), 1);
}

#[test]
fn division_by_zero_reports_a_runtime_error() {
    let (prog, m) = run_all("begin { $z = 0; printf(\"%d\", 5 % $z); printf(\"%d\", 5 / 1); }");
    let kinds: Vec<u32> = m.events.iter().map(|e| u64_at(e, 0) as u32).collect();
    assert_eq!(
        kinds,
        [
            EventKind::RuntimeError as u32,
            EventKind::Printf as u32,
            EventKind::Printf as u32
        ]
    );
    assert_eq!(
        prog.runtime_errors.len(),
        1,
        "one per division by a variable"
    );
    let id = (u64_at(&m.events[0], 0) >> 32) as usize;
    assert!(
        prog.runtime_errors[id]
            .message
            .starts_with("Divide or modulo by 0")
    );
}

#[test]
fn unsigned_division_and_modulo() {
    let big = (-16i64) as u64;
    for (b, q, r) in [
        (3u64, big / 3, big % 3),
        (2, big / 2, 0),
        (7, big / 7, big % 7),
    ] {
        let setup = format!("$u = (uint64)-16; $d = (uint64){b};");
        assert_eq!(eval(&setup, "$u / $d") as u64, q, "u / {b}");
        assert_eq!(eval(&setup, "$u % $d") as u64, r, "u % {b}");
    }
}

#[test]
fn shifts() {
    for &a in &[1i64, -1, -16, 16, 0x1234_5678_9abc, i64::MIN] {
        for s in [0u32, 1, 4, 31, 32, 63] {
            let setup = format!(
                "$a = {}; $s = {s}; $u = (uint64)$a;",
                if a == i64::MIN {
                    "(-9223372036854775807 - 1)".to_string()
                } else {
                    format!("({a})")
                }
            );
            assert_eq!(eval(&setup, "$a << $s"), a.wrapping_shl(s), "{a} << {s}");
            assert_eq!(eval(&setup, "$a >> $s"), a >> s, "signed {a} >> {s}");
            assert_eq!(
                eval(&setup, "$u >> $s") as u64,
                (a as u64) >> s,
                "unsigned {a} >> {s}"
            );
        }
    }
}

#[test]
fn comparisons_respect_signedness() {
    // Signed: -1 < 1.
    for (expr, want) in [
        ("$a < $b", 1),
        ("$a <= $b", 1),
        ("$a > $b", 0),
        ("$a >= $b", 0),
        ("$a == $b", 0),
        ("$a != $b", 1),
        ("$a == $a", 1),
        ("$a <= $a", 1),
        ("$a >= $a", 1),
        ("$a < $a", 0),
    ] {
        assert_eq!(eval("$a = -1; $b = 1;", expr), want, "signed {expr}");
    }
    // Unsigned: 0xffff...ffff > 1.
    for (expr, want) in [
        ("$a < $b", 0),
        ("$a <= $b", 0),
        ("$a > $b", 1),
        ("$a >= $b", 1),
        ("$a == $b", 0),
        ("$a != $b", 1),
    ] {
        assert_eq!(
            eval("$a = (uint64)-1; $b = (uint64)1;", expr),
            want,
            "unsigned {expr}"
        );
    }
    // Tracepoint fields keep their signedness: `uval` is unsigned.
    let src = format!(
        "{} {{ printf(\"%d\", args.uval > (uint32)1); printf(\"%d\", args.sig < 0); }}",
        vm::TP
    );
    let prog = build(&src);
    let mut m = Machine::new(&prog, 1);
    let mut ctx = record();
    put(&mut ctx, field::UVAL, &u32::MAX.to_le_bytes());
    put(&mut ctx, field::SIG, &(-5i32).to_le_bytes());
    run(&mut m, &prog, 0, &mut ctx).unwrap();
    let got: Vec<i64> = m.events.iter().map(|e| i64_at(e, 8)).collect();
    assert_eq!(got, [1, 1]);
}

#[test]
fn casts_truncate_and_extend() {
    for (expr, want) in [
        ("(uint8)300", 44),
        ("(int8)200", -56),
        ("(uint8)-1", 255),
        ("(int8)127", 127),
        ("(int8)128", -128),
        ("(uint16)-1", 65535),
        ("(int16)40000", -25536),
        ("(uint32)-1", 4_294_967_295),
        ("(int32)4294967295", -1),
        ("(int32)2147483648", -2_147_483_648),
        ("(uint64)-5", -5),
        ("(int64)-5", -5),
        ("(bool)5", 1),
        ("(bool)0", 0),
        ("(uint8)(int8)-1", 255),
        ("(int16)(uint8)-1", 255),
    ] {
        assert_eq!(eval("", expr), want, "{expr}");
        // The same through a variable, so nothing is known at compile time.
        let inner = expr.rsplit(')').next().unwrap_or_default();
        let casts = &expr[..expr.len() - inner.len()];
        assert_eq!(
            eval(&format!("$v = {inner};"), &format!("{casts}$v")),
            want,
            "{casts}$v with $v = {inner}"
        );
    }
}

#[test]
fn unary_operators() {
    for &a in INTS {
        let setup = if a == i64::MIN {
            "$a = (-9223372036854775807 - 1);".to_string()
        } else {
            format!("$a = ({a});")
        };
        assert_eq!(eval(&setup, "-$a"), a.wrapping_neg(), "-{a}");
        assert_eq!(eval(&setup, "~$a"), !a, "~{a}");
        assert_eq!(eval(&setup, "!$a"), i64::from(a == 0), "!{a}");
        assert_eq!(eval(&setup, "!!$a"), i64::from(a != 0), "!!{a}");
    }
}

#[test]
fn ternaries() {
    for (a, want) in [(5, 10), (0, 20), (-3, 20)] {
        assert_eq!(eval(&format!("$a = {a};"), "$a > 0 ? 10 : 20"), want);
        assert_eq!(
            eval(&format!("$a = {a};"), "$a > 0 ? ($a == 5 ? 10 : 11) : 20"),
            want
        );
    }
    // String arms.
    for (a, want) in [(1, "yes"), (0, "no")] {
        let src = format!("begin {{ $a = {a}; printf(\"%s\", $a ? \"yes\" : \"no\"); }}");
        let (prog, m) = run_all(&src);
        let (off, _) = prog.printfs[0].args[0];
        assert_eq!(str_at(&m.events[0], off as usize), want.as_bytes());
    }
}

#[test]
fn logical_operators_short_circuit() {
    for (a, b) in [(0, 0), (0, 1), (1, 0), (1, 1), (5, -3), (-1, 0)] {
        let setup = format!("$a = {a}; $b = {b};");
        let (ta, tb) = (a != 0, b != 0);
        assert_eq!(eval(&setup, "$a && $b"), i64::from(ta && tb), "{a} && {b}");
        assert_eq!(eval(&setup, "$a || $b"), i64::from(ta || tb), "{a} || {b}");
    }
    // The right operand runs only when needed.
    let side = |cond: &str| eval(&format!("$i = 0; $r = {cond};"), "$i");
    assert_eq!(side("0 && $i++"), 0);
    assert_eq!(side("1 && $i++"), 1);
    assert_eq!(side("1 || $i++"), 0);
    assert_eq!(side("0 || $i++"), 1);
    assert_eq!(side("0 && (1 || $i++)"), 0);
}

#[test]
fn compound_assignment_and_increments() {
    assert_eq!(eval("$a = 5; $a += 3; $a *= 2; $a -= 1;", "$a"), 15);
    assert_eq!(eval("$a = -17; $a /= 4;", "$a"), -4);
    assert_eq!(eval("$a = -17; $a %= 4;", "$a"), -1);
    assert_eq!(
        eval("$a = 1; $a <<= 10; $a |= 3; $a ^= 1; $a &= 0xff0f;", "$a"),
        1026
    );
    assert_eq!(eval("$a = 5; $b = $a++;", "$b * 100 + $a"), 506);
    assert_eq!(eval("$a = 5; $b = ++$a;", "$b * 100 + $a"), 606);
    assert_eq!(eval("$a = 5; $b = $a--;", "$b * 100 + $a"), 504);
    assert_eq!(eval("@m = 5; @m++; @m += 10;", "@m"), 16);
}

#[test]
fn control_flow() {
    assert_eq!(
        eval(
            "$s = 0; $i = 0; while ($i < 10) { $i++; if ($i % 2 == 0) { continue; } $s += $i; }",
            "$s"
        ),
        25
    );
    assert_eq!(
        eval(
            "$s = 0; $i = 0; while (1) { $i++; if ($i > 4) { break; } $s += $i; }",
            "$s"
        ),
        10
    );
    assert_eq!(eval("$s = 0; unroll(5) { $s = $s * 2 + 1; }", "$s"), 31);
    assert_eq!(
        eval(
            "$a = 3; $r = 0; if ($a > 5) { $r = 1; } else if ($a > 2) { $r = 2; } else { $r = 3; }",
            "$r"
        ),
        2
    );
    // A predicate and `return` skip the rest of the probe.
    assert_eq!(
        printed_ints("begin /0/ { printf(\"%d\", 1); } begin /2 > 1/ { printf(\"%d\", 2); }"),
        [2]
    );
    assert_eq!(
        printed_ints("begin { printf(\"%d\", 1); return; printf(\"%d\", 2); }"),
        [1]
    );
}

#[test]
fn string_equality() {
    for (setup, expr, want) in [
        ("", "\"abc\" == \"abc\"", 1),
        ("", "\"abc\" == \"abd\"", 0),
        ("", "\"abc\" != \"abd\"", 1),
        ("", "\"abc\" == \"abcdefghijkl\"", 0),
        ("", "\"abcdefghijkl\" == \"abc\"", 0),
        ("", "\"\" == \"\"", 1),
        ("", "\"\" == \"a\"", 0),
        ("$s = \"hello\";", "$s == \"hello\"", 1),
        ("$s = \"hello\";", "$s == \"hell\"", 0),
        ("$s = \"hello\";", "$s == \"hello!\"", 0),
        ("$s = \"hello\"; $t = \"hello\";", "$s == $t", 1),
        (
            "$s = \"a long string over sixteen bytes\";",
            "$s == \"a long string over sixteen bytes\"",
            1,
        ),
        (
            "$s = \"a long string over sixteen bytes\";",
            "$s == \"a long string over sixteen bytez\"",
            0,
        ),
        ("", "comm == \"ferret-test\"", 1),
        ("", "comm == \"ferret-tes\"", 0),
        ("", "comm == \"ferret-testx\"", 0),
        ("", "comm != \"bash\"", 1),
        ("", "\"ferret-test\" == comm", 1),
        ("$c = comm;", "$c == comm", 1),
        ("", "(1, \"a\") == (1, \"a\")", 1),
        ("", "(1, \"a\") == (2, \"a\")", 0),
    ] {
        assert_eq!(eval(setup, expr), want, "{setup} {expr}");
    }
}

/// 6.1's bpf_get_current_comm stops writing at the NUL (the VM's stub
/// does the same over a stack of garbage): comm must still compare by its
/// text and key maps by its text alone.
#[test]
fn comm_ignores_what_the_helper_leaves_after_the_nul() {
    assert_eq!(eval("", "comm == \"ferret-test\""), 1);
    let (prog, m) = run_all("begin { @[comm] = 1; }");
    let keys: Vec<Vec<u8>> = m
        .entries(&prog.maps[0].symbol, 0)
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    let mut want = b"ferret-test".to_vec();
    want.resize(16, 0);
    assert_eq!(keys, [want]);
}

#[test]
fn builtins_read_the_current_task() {
    assert_eq!(eval("", "pid"), 4242);
    assert_eq!(eval("", "tid"), 4243);
    assert_eq!(eval("", "uid"), 1000);
    assert_eq!(eval("", "gid"), 100);
    assert_eq!(eval("", "nsecs"), 123_456_789_000);
    assert_eq!(eval("", "cpu"), 0);
    // Options::default, FixedTarget with ncpus 1.
    assert_eq!(eval("", "ncpus"), 1);
    let src = "begin { printf(\"%s|%s\", comm, probe); }";
    let (prog, m) = run_all(src);
    let args = &prog.printfs[0].args;
    assert_eq!(str_at(&m.events[0], args[0].0 as usize), b"ferret-test");
    assert_eq!(str_at(&m.events[0], args[1].0 as usize), b"begin");
}

/// Compiles `@h = AGG(args.val)` style programs and runs them once per
/// value, returning the machine and the map's symbol.
fn run_per_value(src: &str, values: &[i64], ncpus: u64) -> (CompiledProgram, Machine) {
    let prog = build_with(src, ncpus, &Options::default());
    let mut m = Machine::new(&prog, ncpus as u32);
    for (i, &v) in values.iter().enumerate() {
        m.cpu = (i as u64 % ncpus) as u32;
        let mut ctx = record();
        put(&mut ctx, field::VAL, &v.to_le_bytes());
        run(&mut m, &prog, 0, &mut ctx).unwrap_or_else(|e| panic!("{src} with {v}: {e}"));
    }
    (prog, m)
}

/// Interesting histogram inputs: small numbers, powers of two and their
/// neighbours, extremes, and pseudo-random values.
fn hist_values() -> Vec<i64> {
    let mut vals: Vec<i64> = (-3..=300).collect();
    for bit in 0..63 {
        let p = 1i64 << bit;
        vals.extend([p - 1, p, p + 1, p + p / 2, -p]);
    }
    vals.extend([i64::MAX, i64::MIN, i64::MAX - 1]);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..300 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        vals.push((x >> (x % 64)) as i64);
    }
    vals
}

#[test]
fn hist_buckets_match_log2_index() {
    let values = hist_values();
    for k in 0..=5u8 {
        let src = format!("{} {{ @h = hist(args.val, {k}); }}", vm::TP);
        let prog = build(&src);
        let map = &prog.maps[0];
        assert_eq!(map.kind, MapKind::Hist { k });
        assert_eq!(map.key_size, 16);
        let mut m = Machine::new(&prog, 1);
        for &v in &values {
            m.clear_map(&map.symbol);
            let mut ctx = record();
            put(&mut ctx, field::VAL, &v.to_le_bytes());
            run(&mut m, &prog, 0, &mut ctx).unwrap_or_else(|e| panic!("hist({v}, {k}): {e}"));
            let entries = m.entries(&map.symbol, 0);
            assert_eq!(entries.len(), 1, "hist({v}, {k})");
            let (key, value) = &entries[0];
            assert_eq!(u64_at(key, 0), 0, "scalar map key");
            assert_eq!(u64_at(key, 8), log2_index(v, k), "bucket of hist({v}, {k})");
            assert_eq!(u64_at(value, 0), 1, "count of hist({v}, {k})");
        }
    }
}

#[test]
fn hist_default_k_and_constant_argument() {
    for v in [0i64, 1, 5, 1000, -4] {
        let (prog, m) = run_all(&format!(
            "begin {{ @h = hist({v}); @k[7] = hist({v}, 2); }}"
        ));
        let e = m.entries(&prog.maps[0].symbol, 0);
        assert_eq!(u64_at(&e[0].0, 8), log2_index(v, 0), "hist({v})");
        let e = m.entries(&prog.maps[1].symbol, 0);
        assert_eq!(u64_at(&e[0].0, 0), 7, "user key");
        assert_eq!(u64_at(&e[0].0, 8), log2_index(v, 2), "hist({v}, 2)");
    }
}

#[test]
fn lhist_buckets_match_linear_index() {
    for (min, max, step) in [
        (0i64, 10i64, 2i64),
        (0, 100, 10),
        (-50, 50, 7),
        (-1000, -10, 33),
        (5, 6, 1),
        (0, 1 << 40, 1 << 31),
        (-(1 << 40), 1 << 40, 1 << 33),
    ] {
        let src = format!(
            "{} {{ @l = lhist(args.val, {min}, {max}, {step}); }}",
            vm::TP
        );
        let prog = build(&src.replace("-(1099511627776)", "-1099511627776"));
        let map = &prog.maps[0];
        let mut m = Machine::new(&prog, 1);
        let mut values: Vec<i64> = vec![i64::MIN, i64::MAX, min, max, min - 1, max + 1, 0, -1];
        let span = (max - min) / step;
        for i in -2..=span.min(60) + 2 {
            let b = min + i * step;
            values.extend([b - 1, b, b + 1]);
        }
        for &v in &values {
            m.clear_map(&map.symbol);
            let mut ctx = record();
            put(&mut ctx, field::VAL, &v.to_le_bytes());
            run(&mut m, &prog, 0, &mut ctx).unwrap();
            let entries = m.entries(&map.symbol, 0);
            assert_eq!(entries.len(), 1);
            assert_eq!(
                u64_at(&entries[0].0, 8),
                linear_index(v, min, max, step),
                "lhist({v}, {min}, {max}, {step})"
            );
        }
    }
}

#[test]
fn histograms_count_per_bucket() {
    let values = [1i64, 2, 3, 3, 7, 20, -1, 2];
    let (prog, m) = run_per_value(
        &format!("{} {{ @h = hist(args.val); }}", vm::TP),
        &values,
        1,
    );
    let entries = m.entries(&prog.maps[0].symbol, 0);
    let mut want = std::collections::BTreeMap::new();
    for &v in &values {
        *want.entry(log2_index(v, 0)).or_insert(0u64) += 1;
    }
    let got: std::collections::BTreeMap<u64, u64> = entries
        .iter()
        .map(|(k, v)| (u64_at(k, 8), u64_at(v, 0)))
        .collect();
    assert_eq!(got, want);
}

#[test]
fn aggregations_update_per_cpu_values() {
    let values = [5i64, -3, 12, 7, 0, -20, 9, 4, 100, -1];
    let ncpus = 3u64;
    let src = format!(
        "{} {{ @c = count(); @s = sum(args.val); @mn = min(args.val); @mx = max(args.val); \
         @a = avg(args.val); @st = stats(args.val); @k[args.val % 2] = count(); }}",
        vm::TP
    );
    let (prog, m) = run_per_value(&src, &values, ncpus);
    let sym = |name: &str| {
        prog.maps
            .iter()
            .find(|mi| mi.name == name)
            .unwrap_or_else(|| panic!("map {name}"))
            .symbol
            .clone()
    };
    // Keyless aggregations live in slot 0 of a one-slot per-CPU array.
    let zero = 0u32.to_le_bytes();
    for cpu in 0..ncpus as u32 {
        let mine: Vec<i64> = values
            .iter()
            .enumerate()
            .filter(|(i, _)| *i as u32 % ncpus as u32 == cpu)
            .map(|(_, v)| *v)
            .collect();
        let get = |name: &str| {
            m.value(&sym(name), &zero, cpu)
                .unwrap_or_else(|| panic!("{name} on cpu {cpu}"))
        };
        assert_eq!(u64_at(&get("@c"), 0), mine.len() as u64, "count");
        assert_eq!(i64_at(&get("@s"), 0), mine.iter().sum::<i64>(), "sum");
        let mn = get("@mn");
        assert_eq!(
            (i64_at(&mn, 0), u64_at(&mn, 8)),
            (*mine.iter().min().unwrap(), 1),
            "min"
        );
        let mx = get("@mx");
        assert_eq!(
            (i64_at(&mx, 0), u64_at(&mx, 8)),
            (*mine.iter().max().unwrap(), 1),
            "max"
        );
        for name in ["@a", "@st"] {
            let v = get(name);
            assert_eq!(
                (i64_at(&v, 0), u64_at(&v, 8)),
                (mine.iter().sum::<i64>(), mine.len() as u64),
                "{name} (total, count)"
            );
        }
        for parity in [0i64, 1, -1] {
            let n = mine.iter().filter(|v| *v % 2 == parity).count() as u64;
            let got = m
                .value(&sym("@k"), &parity.to_le_bytes(), cpu)
                .map_or(0, |v| u64_at(&v, 0));
            assert_eq!(got, n, "count of parity {parity} on cpu {cpu}");
        }
    }
}

#[test]
fn min_max_ignore_the_initial_zero() {
    // All values positive: a zero-initialised min would stay 0.
    let (prog, m) = run_per_value(
        &format!("{} {{ @mn = min(args.val); @mx = max(args.val); }}", vm::TP),
        &[50, 40, 60],
        1,
    );
    let mn = m.value(&prog.maps[0].symbol, &[0; 4], 0).unwrap();
    assert_eq!(i64_at(&mn, 0), 40);
    let (prog, m) = run_per_value(
        &format!("{} {{ @mn = min(args.val); @mx = max(args.val); }}", vm::TP),
        &[-50, -40, -60],
        1,
    );
    let mx = m.value(&prog.maps[1].symbol, &[0; 4], 0).unwrap();
    assert_eq!(i64_at(&mx, 0), -40);
}

#[test]
fn reading_per_cpu_counters_sums_every_cpu() {
    let ncpus = 4u64;
    let values = [3i64, 4, 5, 6, 7, 8];
    let src = format!(
        "{} {{ @c = count(); @s = sum(args.val); printf(\"%d %d\", @c, @s); }}",
        vm::TP
    );
    let (prog, m) = run_per_value(&src, &values, ncpus);
    let offs: Vec<usize> = prog.printfs[0].args.iter().map(|a| a.0 as usize).collect();
    for (i, ev) in m.events.iter().enumerate() {
        assert_eq!(
            i64_at(ev, offs[0]),
            i as i64 + 1,
            "count after {} runs",
            i + 1
        );
        assert_eq!(
            i64_at(ev, offs[1]),
            values[..=i].iter().sum::<i64>(),
            "sum after {} runs",
            i + 1
        );
    }
}

#[test]
fn plain_maps_store_keys_and_values() {
    let (prog, m) = run_all(
        "begin { @a = 5; @b[1, \"x\"] = -7; @c[\"key\"] = \"value\"; @d[2] = (3, \"t\"); \
         @e = 1; delete(@e); @f[1] = 1; @f[2] = 2; delete(@f, 1); @g = @a + 1; }",
    );
    let sym = |n: &str| {
        prog.maps
            .iter()
            .find(|mi| mi.name == n)
            .unwrap()
            .symbol
            .clone()
    };
    assert_eq!(
        m.entries(&sym("@a"), 0),
        [(vec![0; 8], 5u64.to_le_bytes().to_vec())]
    );
    let b = m.entries(&sym("@b"), 0);
    assert_eq!(b.len(), 1);
    assert_eq!(u64_at(&b[0].0, 0), 1);
    assert_eq!(str_at(&b[0].0, 8), b"x");
    assert_eq!(i64_at(&b[0].1, 0), -7);
    let c = m.entries(&sym("@c"), 0);
    assert_eq!(str_at(&c[0].0, 0), b"key");
    assert_eq!(str_at(&c[0].1, 0), b"value");
    let d = m.entries(&sym("@d"), 0);
    assert_eq!(u64_at(&d[0].1, 0), 3);
    assert_eq!(str_at(&d[0].1, 8), b"t");
    assert!(m.entries(&sym("@e"), 0).is_empty(), "deleted");
    let f = m.entries(&sym("@f"), 0);
    assert_eq!(f.len(), 1);
    assert_eq!(u64_at(&f[0].0, 0), 2);
    assert_eq!(u64_at(&m.entries(&sym("@g"), 0)[0].1, 0), 6);
    // A missing key reads as zero.
    assert_eq!(eval("@m[1] = 5;", "@m[2]"), 0);
    assert_eq!(eval("@m[1] = 5;", "@m[1]"), 5);
}

#[test]
fn printf_event_layout() {
    let src = "begin { printf(\"a\"); printf(\"%d %s %u %s %d\", -5, \"hi\", 7, comm, (int8)-1); }";
    let (prog, m) = run_all(src);
    assert_eq!(prog.printfs.len(), 2);
    assert_eq!(prog.printfs[0].args, []);
    assert_eq!(m.events.len(), 2);
    assert_eq!(m.events[0], (EventKind::Printf as u64).to_le_bytes());
    let ev = &m.events[1];
    assert_eq!(u64_at(ev, 0), EventKind::Printf as u64 | 1 << 32);
    let args = &prog.printfs[1].args;
    let offs: Vec<u32> = args.iter().map(|a| a.0).collect();
    let mut want_off = 8;
    for (off, ty) in args {
        assert_eq!(*off, want_off, "{ty:?}");
        want_off += ty.size().div_ceil(8) * 8;
    }
    assert_eq!(ev.len(), want_off as usize, "event size");
    assert_eq!(i64_at(ev, offs[0] as usize), -5);
    assert_eq!(str_at(ev, offs[1] as usize), b"hi");
    assert_eq!(i64_at(ev, offs[2] as usize), 7);
    assert_eq!(str_at(ev, offs[3] as usize), b"ferret-test");
    assert_eq!(args[3].1, Ty::Str { cap: 16 });
    assert_eq!(i64_at(ev, offs[4] as usize), -1);
    // Strings are zero-padded after their NUL.
    let s = offs[1] as usize;
    assert!(
        ev[s + 2..s + args[1].1.size() as usize]
            .iter()
            .all(|&b| b == 0)
    );
}

#[test]
fn exit_event_carries_the_code() {
    for (call, code) in [("exit()", 0i64), ("exit(3)", 3), ("exit(-2)", -2)] {
        let src = format!("begin {{ printf(\"x\"); {call}; printf(\"after\"); }}");
        let (_, m) = run_all(&src);
        assert_eq!(m.events.len(), 2, "{src}: nothing runs after exit");
        let ev = &m.events[1];
        assert_eq!(ev.len(), 16);
        assert_eq!(u64_at(ev, 0), EventKind::Exit as u64);
        assert_eq!(i64_at(ev, 8), code);
    }
}

#[test]
fn print_clear_zero_events() {
    let (prog, m) = run_all(
        "begin { @x = count(); @y = 1; print(@y); clear(@x); zero(@y); print(5); print(@y, 3, 2); }",
    );
    let kinds: Vec<(u32, u32)> = m
        .events
        .iter()
        .map(|e| (u64_at(e, 0) as u32, (u64_at(e, 0) >> 32) as u32))
        .collect();
    let id = |n: &str| prog.maps.iter().position(|mi| mi.name == n).unwrap() as u32;
    assert_eq!(
        kinds,
        [
            (EventKind::PrintMap as u32, id("@y")),
            (EventKind::ClearMap as u32, id("@x")),
            (EventKind::ZeroMap as u32, id("@y")),
            (EventKind::PrintValue as u32, 0),
            (EventKind::PrintMap as u32, id("@y")),
        ]
    );
    assert_eq!((u64_at(&m.events[0], 8), u64_at(&m.events[0], 16)), (0, 1));
    assert_eq!(i64_at(&m.events[3], 8), 5);
    assert_eq!(prog.print_values, [Ty::I64]);
    assert_eq!((u64_at(&m.events[4], 8), u64_at(&m.events[4], 16)), (3, 2));
}

#[test]
fn full_ring_buffer_counts_lost_events() {
    let prog = build("begin { printf(\"a\"); printf(\"b\"); }");
    let mut m = Machine::new(&prog, 1);
    m.ringbuf_full = true;
    run(&mut m, &prog, 0, &mut record()).unwrap();
    assert!(m.events.is_empty());
    let lost = m.entries(&prog.lost_map, 0);
    assert_eq!(lost.len(), 1);
    assert_eq!(u64_at(&lost[0].1, 0), 2);
}

#[test]
fn tracepoint_fields() {
    let src = format!(
        "{} {{ printf(\"%d %d %d %d %d %d %s %s\", args.sig, args.uval, args.val, args.uval64, \
         args.small, args.half, args.comm, args.name); \
         printf(\"%d\", args.comm == \"bash\"); printf(\"%d\", args.name == \"dyn-name\"); }}",
        vm::TP
    );
    let prog = build(&src);
    let mut m = Machine::new(&prog, 1);
    let mut ctx = record();
    put(&mut ctx, field::SIG, &(-9i32).to_le_bytes());
    put(&mut ctx, field::UVAL, &0xffff_fff0u32.to_le_bytes());
    put(&mut ctx, field::VAL, &(-1234567890123i64).to_le_bytes());
    put(&mut ctx, field::UVAL64, &u64::MAX.to_le_bytes());
    put(&mut ctx, field::SMALL, &[200]);
    put(&mut ctx, field::HALF, &(-300i16).to_le_bytes());
    put(&mut ctx, field::COMM, b"bash\0\0\0\0\0\0\0\0\0\0\0\0");
    let name = b"dyn-name\0";
    let loc = ((name.len() as u32) << 16) | field::NAME_DATA as u32;
    put(&mut ctx, field::NAME, &loc.to_le_bytes());
    put(&mut ctx, field::NAME_DATA, name);
    run(&mut m, &prog, 0, &mut ctx).unwrap();
    let args = &prog.printfs[0].args;
    let ev = &m.events[0];
    let int = |i: usize| i64_at(ev, args[i].0 as usize);
    assert_eq!(int(0), -9);
    assert_eq!(int(1), 0xffff_fff0);
    assert_eq!(int(2), -1234567890123);
    assert_eq!(int(3), -1);
    assert_eq!(int(4), 200);
    assert_eq!(int(5), -300);
    assert_eq!(str_at(ev, args[6].0 as usize), b"bash");
    assert_eq!(str_at(ev, args[7].0 as usize), b"dyn-name");
    assert_eq!(i64_at(&m.events[1], 8), 1);
    assert_eq!(i64_at(&m.events[2], 8), 1);
}

#[test]
fn str_reads_through_pointers() {
    for (probe, len_arg, want) in [
        (vm::TP, "", &b"/etc/passwd"[..]),
        ("tracepoint:syscalls:sys_enter_test", "", b"/etc/passwd"),
        (vm::TP, ", 4", b"/etc"),
    ] {
        let src = format!(
            "{probe} {{ printf(\"%s\", str(args.filename{len_arg})); \
             printf(\"%d\", str(args.filename{len_arg}) == \"{}\"); }}",
            String::from_utf8_lossy(want)
        );
        let prog = build_with(
            &src,
            1,
            &Options {
                max_strlen: 64,
                ..Options::default()
            },
        );
        let mut m = Machine::new(&prog, 1);
        m.kernel_mem[100..112].copy_from_slice(b"/etc/passwd\0");
        let mut ctx = record();
        put(&mut ctx, field::FILENAME, &m.kernel_addr(100).to_le_bytes());
        run(&mut m, &prog, 0, &mut ctx).unwrap_or_else(|e| panic!("{src}: {e}"));
        let user = probe.contains("syscalls");
        let read = if user {
            ferret_bpf::insn::helper::PROBE_READ_USER_STR
        } else {
            ferret_bpf::insn::helper::PROBE_READ_KERNEL_STR
        };
        assert!(
            m.calls.contains(&(read as u32)),
            "{src}: uses helper {read}"
        );
        assert_eq!(str_at(&m.events[0], 8), want, "{src}");
        assert_eq!(i64_at(&m.events[1], 8), 1, "{src}");
    }
}

#[test]
fn large_values_spill_to_scratch_memory() {
    // Default max_strlen (1024) strings cannot live on the 512-byte stack.
    let src = format!(
        "{} {{ $a = str(args.filename); @m[$a] = count(); printf(\"%s %s\", $a, str(args.filename)); }}",
        vm::TP
    );
    let prog = build(&src);
    let mut m = Machine::new(&prog, 1);
    m.kernel_mem[0..4].copy_from_slice(b"abc\0");
    let mut ctx = record();
    put(&mut ctx, field::FILENAME, &m.kernel_addr(0).to_le_bytes());
    run(&mut m, &prog, 0, &mut ctx).unwrap();
    let args = &prog.printfs[0].args;
    assert_eq!(str_at(&m.events[0], args[0].0 as usize), b"abc");
    assert_eq!(str_at(&m.events[0], args[1].0 as usize), b"abc");
    let e = m.entries(&prog.maps[0].symbol, 0);
    assert_eq!(str_at(&e[0].0, 0), b"abc");
}

#[test]
fn deep_expressions_spill_temporaries() {
    // More live temporaries than the three callee-saved registers.
    let expr = "(($a + 1) * (($a + 2) * (($a + 3) * (($a + 4) * ($a + 5)))))";
    assert_eq!(eval("$a = 1;", expr), 2 * 3 * 4 * 5 * 6);
    let expr = "$a + ($a + ($a + ($a + ($a + ($a + ($a + $a))))))";
    assert_eq!(eval("$a = 3;", expr), 24);
    let expr = "(pid + (tid + (uid + (gid + (cpu + (pid - tid))))))";
    assert_eq!(eval("", expr), 4242 + 4243 + 1000 + 100 + (4242 - 4243));
}

#[test]
fn pid_filter_skips_other_processes_in_tracepoints_only() {
    // -p 42: a tracepoint runs only for process 42; perf events are opened
    // for the process instead, so their programs carry no check.
    let src = format!(
        "{} {{ printf(\"tp\"); }} software:faults {{ printf(\"sw\"); }} interval:s:1 {{ printf(\"iv\"); }}",
        vm::TP
    );
    let opts = Options {
        filter_pid: Some(42),
        ..Options::default()
    };
    let prog = build_with(&src, 1, &opts);
    for (pid, expect) in [(41, 2), (42, 3)] {
        let mut m = Machine::new(&prog, 1);
        m.pid = pid;
        for i in 0..prog.programs.len() {
            run(&mut m, &prog, i, &mut record()).unwrap();
        }
        assert_eq!(m.events.len(), expect, "pid {pid}");
    }
    // Without -p, no check at all.
    let plain = build(&src);
    assert!(
        plain.programs[0].insns.len() < prog.programs[0].insns.len(),
        "the filter adds instructions"
    );
    assert_eq!(plain.programs[1].insns, prog.programs[1].insns);
}

#[test]
fn cpid_is_the_child_pid() {
    let opts = Options {
        child_pid: Some(4321),
        ..Options::default()
    };
    let prog = build_with("begin { printf(\"%d\", cpid); }", 1, &opts);
    let mut m = Machine::new(&prog, 1);
    run(&mut m, &prog, 0, &mut record()).unwrap();
    let off = prog.printfs[0].args[0].0 as usize;
    assert_eq!(i64_at(&m.events[0], off), 4321);
    assert_eq!(prog.printfs[0].args[0].1, Ty::U32);
}

#[test]
fn string_functions() {
    for (expr, want) in [
        ("strlen(\"hello\")", 5),
        ("strlen(\"\")", 0),
        ("strlen(comm)", 11),
        ("strncmp(\"abc\", \"abd\", 2)", 0),
        ("strncmp(\"abc\", \"abd\", 3)", 1),
        ("strncmp(\"abc\", \"abc\", 100)", 0),
        ("strncmp(\"abcdefghij\", \"abcdefghik\", 9)", 0),
        ("strncmp(\"abcdefghij\", \"abcdefghik\", 10)", 1),
        ("strncmp(\"ab\", \"abc\", 3)", 1),
        ("strcontains(\"hello world\", \"o w\")", 1),
        ("strcontains(\"hello world\", \"world\")", 1),
        ("strcontains(\"hello world\", \"worlds\")", 0),
        ("strcontains(\"hello\", \"\")", 1),
        ("strcontains(comm, \"test\")", 1),
        ("strcontains(comm, \"tset\")", 0),
        ("comm[0]", i64::from(b'f')),
        ("\"xyz\"[2]", i64::from(b'z')),
    ] {
        assert_eq!(eval("", expr), want, "{expr}");
    }
}

#[test]
fn integer_helpers() {
    for (setup, expr, want) in [
        ("", "bswap((uint16)0x1234)", 0x3412),
        ("", "bswap((uint32)0x11223344)", 0x4433_2211),
        ("", "bswap((uint8)0x12)", 0x12),
        (
            "$x = (uint64)0x0102030405060708;",
            "bswap($x)",
            0x0807_0605_0403_0201,
        ),
        ("", "is_err(-4095)", 1),
        ("", "is_err(-1)", 1),
        ("", "is_err(-4096)", 0),
        ("", "is_err(0xffff8880001234)", 0),
        ("", "sizeof(comm)", 16),
        ("", "sizeof((uint16)1)", 2),
        ("", "sizeof(uint32)", 4),
        ("", "sizeof(int8[4])", 4),
        ("$a = (uint8[4])0x01020304;", "$a[0]", 4),
        ("$a = (uint8[4])0x01020304;", "$a[3]", 1),
        ("$a = (uint8[4])0x01020304; $i = 2;", "$a[$i]", 2),
        ("$a = (int8[2])(uint16)0xff7f;", "$a[1]", -1),
        ("$a = (uint8[4])0x01020304;", "(uint32)$a", 0x0102_0304),
        ("$t = (1, \"a\", 7);", "$t[2]", 7),
    ] {
        assert_eq!(eval(setup, expr), want, "{setup} {expr}");
    }
}

#[test]
fn array_index_out_of_bounds_reports_a_runtime_error() {
    let (prog, m) = run_all("begin { $a = (uint8[4])0x01020304; $i = 4; printf(\"%d\", $a[$i]); }");
    assert_eq!(
        u64_at(&m.events[0], 0) as u32,
        EventKind::RuntimeError as u32
    );
    let id = (u64_at(&m.events[0], 0) >> 32) as usize;
    assert!(
        prog.runtime_errors[id]
            .message
            .starts_with("Array access out of bounds")
    );
    assert_eq!(i64_at(&m.events[1], 8), 0);
}

#[test]
fn has_key_and_delete_report_presence() {
    let got = printed_ints(
        "begin { @m[1, \"a\"] = 5; printf(\"%d\", has_key(@m, (1, \"a\"))); \
         printf(\"%d\", has_key(@m, (2, \"a\"))); printf(\"%d\", delete(@m, (1, \"a\"))); \
         printf(\"%d\", delete(@m, (1, \"a\"))); printf(\"%d\", has_key(@m, (1, \"a\"))); }",
    );
    assert_eq!(got, [1, 0, 1, 0, 0]);
}

/// The first argument of the first printf event, and the event.
fn printed_event(src: &str) -> (CompiledProgram, Vec<u8>, u32) {
    let (prog, m) = run_all(src);
    let ev = m.events[0].clone();
    let id = (u64_at(&ev, 0) >> 32) as usize;
    let off = prog.printfs[id].args[0].0;
    (prog, ev, off)
}

#[test]
fn ntop_buf_and_macaddr_layouts() {
    let (prog, ev, off) = printed_event("begin { printf(\"%s\", ntop(0x0100007f)); }");
    assert_eq!(prog.printfs[0].args[0].1, Ty::Inet);
    let off = off as usize;
    assert_eq!(u64_at(&ev, off), 2, "AF_INET");
    assert_eq!(&ev[off + 8..off + 12], [127, 0, 0, 1]);

    let (_, ev, off) = printed_event("begin { printf(\"%s\", ntop(pton(\"::1\"))); }");
    let off = off as usize;
    assert_eq!(u64_at(&ev, off), 10, "AF_INET6");
    assert_eq!(ev[off + 8 + 15], 1);

    let (_, ev, off) = printed_event("begin { printf(\"%s\", ntop(10, pton(\"1.2.3.4\"))); }");
    let off = off as usize;
    assert_eq!(u64_at(&ev, off), 10, "explicit family");
    assert_eq!(&ev[off + 8..off + 12], [1, 2, 3, 4]);

    let (prog, ev, off) = printed_event("begin { printf(\"%r\", buf(\"ab\\x01cd\", 4)); }");
    assert_eq!(prog.printfs[0].args[0].1, Ty::Buffer { cap: 4 });
    let off = off as usize;
    assert_eq!(u64_at(&ev, off), 4, "length");
    assert_eq!(&ev[off + 8..off + 12], b"ab\x01c");

    let (_, ev, off) = printed_event(
        "begin { printf(\"%s\", macaddr(buf(\"\\x01\\x02\\x03\\x04\\x05\\x06\\x07\", 7))); }",
    );
    let off = off as usize;
    assert_eq!(&ev[off..off + 8], [1, 2, 3, 4, 5, 6, 0, 0]);
}

#[test]
fn buf_reads_a_clamped_length_through_a_pointer() {
    let src = format!(
        "{} {{ printf(\"%r\", buf(args.filename, args.val)); }}",
        vm::TP
    );
    let prog = build_with(
        &src,
        1,
        &Options {
            max_strlen: 16,
            ..Options::default()
        },
    );
    for (len, want) in [(3i64, 3usize), (100, 16), (0, 0)] {
        let mut m = Machine::new(&prog, 1);
        m.kernel_mem[100..120].copy_from_slice(b"0123456789abcdefghij");
        let mut ctx = record();
        put(&mut ctx, field::FILENAME, &m.kernel_addr(100).to_le_bytes());
        put(&mut ctx, field::VAL, &len.to_le_bytes());
        run(&mut m, &prog, 0, &mut ctx).unwrap_or_else(|e| panic!("{src}: {e}"));
        let ev = &m.events[0];
        assert_eq!(u64_at(ev, 8) as usize, want, "length {len}");
        assert_eq!(&ev[16..16 + want], &b"0123456789abcdef"[..want]);
    }
}

#[test]
fn join_reads_argv_until_null() {
    let src = "tracepoint:test:ev { join(args.filename, \",\"); }";
    let prog = build(src);
    let mut m = Machine::new(&prog, 1);
    m.kernel_mem[200..204].copy_from_slice(b"ls\0\0");
    m.kernel_mem[204..208].copy_from_slice(b"-l\0\0");
    let argv: Vec<u64> = vec![m.kernel_addr(200), m.kernel_addr(204), 0];
    for (i, p) in argv.iter().enumerate() {
        let at = 300 + i * 8;
        m.kernel_mem[at..at + 8].copy_from_slice(&p.to_le_bytes());
    }
    let mut ctx = record();
    put(&mut ctx, field::FILENAME, &m.kernel_addr(300).to_le_bytes());
    run(&mut m, &prog, 0, &mut ctx).unwrap_or_else(|e| panic!("{src}: {e}"));
    let ev = &m.events[0];
    assert_eq!(u64_at(ev, 0) as u32, EventKind::Join as u32);
    assert_eq!(prog.join_separators, [b",".to_vec()]);
    assert_eq!(str_at(ev, 8), b"ls");
    assert_eq!(str_at(ev, 8 + 1024), b"-l");
    assert_eq!(ev[8 + 2048], 0, "a NULL pointer ends the list");
}

#[test]
fn timestamps_and_errnos_carry_their_integer() {
    let (prog, ev, off) =
        printed_event("begin { printf(\"%s %s\", strftime(\"%H:%M\", 1234), strerror(2)); }");
    assert_eq!(prog.printfs[0].args[0].1, Ty::Timestamp { format: 0 });
    assert_eq!(prog.time_formats, [b"%H:%M".to_vec()]);
    assert_eq!(u64_at(&ev, off as usize), 1234);
    let (off2, ty2) = prog.printfs[0].args[1].clone();
    assert_eq!(ty2, Ty::Errno);
    assert_eq!(u64_at(&ev, off2 as usize), 2);
}

// ---- program structure: block expressions, macros, map declarations,
// full maps, max_strlen, parameters ----

#[test]
fn block_expressions_and_macros_compute_values() {
    assert_eq!(
        printed_ints(
            "macro sq(x) { x * x }
             macro inc($v) { $v += 1; $v }
             begin {
               $y = 1;
               $x = { let $y = 2; $y * 3 };
               printf(\"%d\", $x);
               printf(\"%d\", $y);
               printf(\"%d\", sq(7));
               printf(\"%d\", inc($y) + $y);
             }"
        ),
        [6, 1, 49, 4]
    );
}

#[test]
fn declarations_choose_the_kernel_map() {
    let prog = build_with(
        "let @a = lruhash(7);
         let @b = percpulruhash(9);
         let @d = percpuhash(5);
         begin { @a[1] = 1; @b[1] = count(); @c[1] = 1; @d[2] = sum(3); }",
        1,
        &Options {
            max_map_keys: 3,
            ..Options::default()
        },
    );
    let m = Machine::new(&prog, 1);
    let kernel = |name: &str| {
        let info = prog.maps.iter().find(|i| i.name == name).expect("map");
        let fake = m.map(&info.symbol);
        (fake.map_type, fake.max_entries, info.declared)
    };
    assert_eq!(
        kernel("@a"),
        (ferret_bpf::insn::map_type::LRU_HASH, 7, true)
    );
    assert_eq!(
        kernel("@b"),
        (ferret_bpf::insn::map_type::LRU_PERCPU_HASH, 9, true)
    );
    assert_eq!(kernel("@c"), (ferret_bpf::insn::map_type::HASH, 3, false));
    assert_eq!(
        kernel("@d"),
        (ferret_bpf::insn::map_type::PERCPU_HASH, 5, true)
    );
}

#[test]
fn updates_refused_by_a_full_map_are_counted() {
    let prog = build_with(
        "begin { @m[1] = 1; @m[2] = 1; @m[3] = 1; @m[4] = 1; @n[1] = count(); @n[2] = count(); @n[3] = count(); }",
        1,
        &Options {
            max_map_keys: 2,
            ..Options::default()
        },
    );
    // Kernels before 6.4 return map errors as a zero-extended `int`.
    for int_map_ops in [false, true] {
        let mut m = Machine::new(&prog, 1);
        m.int_map_ops = int_map_ops;
        run(&mut m, &prog, 0, &mut record()).unwrap();
        let full = prog.full_map.as_deref().expect("a full-map counter");
        let count = |id: u32| {
            m.value(full, &id.to_le_bytes(), 0)
                .map_or(0, |v| u64_at(&v, 0))
        };
        assert_eq!((count(0), count(1)), (2, 1), "int_map_ops: {int_map_ops}");
    }
}

#[test]
fn max_strlen_bounds_str() {
    for (max_strlen, want) in [(5, &b"/etc/"[..]), (8, b"/etc/pas"), (64, b"/etc/passwd")] {
        let src = format!("{} {{ printf(\"%s\", str(args.filename)); }}", vm::TP);
        let prog = build_with(
            &src,
            1,
            &Options {
                max_strlen,
                ..Options::default()
            },
        );
        let mut m = Machine::new(&prog, 1);
        m.kernel_mem[100..112].copy_from_slice(b"/etc/passwd\0");
        let mut ctx = record();
        put(&mut ctx, field::FILENAME, &m.kernel_addr(100).to_le_bytes());
        run(&mut m, &prog, 0, &mut ctx).unwrap();
        assert_eq!(str_at(&m.events[0], 8), want, "max_strlen {max_strlen}");
    }
}

#[test]
fn getopt_and_positional_parameters_are_constants() {
    let prog = build_with(
        "begin { printf(\"%d\", getopt(\"n\", 3) + $1 + $#); }
         interval:ms:$1 { }",
        1,
        &Options {
            positional: vec!["40".into()],
            named_params: vec!["n=2".into()],
            ..Options::default()
        },
    );
    assert_eq!(
        prog.programs[1].attach,
        ferret_compiler::Attach::Interval {
            period_ns: 40_000_000
        }
    );
    let mut m = Machine::new(&prog, 1);
    run(&mut m, &prog, 0, &mut record()).unwrap();
    assert_eq!(i64_at(&m.events[0], 8), 43);
}

/// A `__data_loc` array reads, as in bpftrace, as the u64 address of its
/// data in the record.
#[test]
fn data_loc_array_is_the_address_of_its_data() {
    let src = format!("{} {{ printf(\"%d\", args.bytes); }}", vm::TP);
    let prog = build(&src);
    let mut m = Machine::new(&prog, 1);
    let mut ctx = record();
    put(&mut ctx, field::BYTES, &((4u32 << 16) | 120).to_le_bytes());
    let base = ctx.as_ptr() as u64;
    run(&mut m, &prog, 0, &mut ctx).unwrap();
    assert_eq!(u64_at(&m.events[0], 8), base + 120);
}

/// ntop of a 16-byte char array (a string, as BTF's `__u8 u6_addr8[16]`
/// reads in bpftrace too) is an IPv6 address, as bpftrace's tcpdrop.bt
/// relies on.
#[test]
fn ntop_of_a_16_byte_char_array_is_ipv6() {
    let src = format!("{} {{ printf(\"%s\", ntop(args.comm)); }}", vm::TP);
    let prog = build(&src);
    let mut m = Machine::new(&prog, 1);
    let mut ctx = record();
    let addr: Vec<u8> = (1..=16).collect();
    put(&mut ctx, field::COMM, &addr);
    run(&mut m, &prog, 0, &mut ctx).unwrap();
    let off = prog.printfs[0].args[0].0 as usize;
    let ev = &m.events[0];
    assert_eq!(u64_at(ev, off), 10, "AF_INET6");
    assert_eq!(&ev[off + 8..off + 24], &addr[..]);
}
