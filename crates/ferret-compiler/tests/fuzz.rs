//! The compiler must return, never panic, on any program the parser
//! accepts, and every program it produces must be well formed: jumps land
//! inside the program on instruction boundaries, the last instruction is
//! `exit`, map loads are where `map_loads` says.
//!
//! Inputs are a corpus of valid programs and thousands of deterministic
//! mutations of them (token edits, splices, byte noise).

use std::time::{Duration, Instant};

use ferret_bpf::Insn;
use ferret_bpf::insn::{BPF_CALL, BPF_EXIT, BPF_JMP, helper};
use ferret_compiler::{CompiledProgram, FixedTarget, Options, compile};
use ferret_syntax::{SourceFile, parse};

const FORMAT: &str = "name: sys_enter_openat
ID: 633
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;
\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;

\tfield:int __syscall_nr;\toffset:8;\tsize:4;\tsigned:1;
\tfield:int dfd;\toffset:16;\tsize:8;\tsigned:0;
\tfield:const char * filename;\toffset:24;\tsize:8;\tsigned:0;
\tfield:int flags;\toffset:32;\tsize:8;\tsigned:0;
\tfield:umode_t mode;\toffset:40;\tsize:8;\tsigned:0;
\tfield:char comm[16];\toffset:48;\tsize:16;\tsigned:0;
\tfield:__data_loc char[] name;\toffset:64;\tsize:4;\tsigned:0;
\tfield:int vals[4];\toffset:68;\tsize:16;\tsigned:1;

print fmt: \"\"
";

fn target() -> FixedTarget {
    FixedTarget {
        ncpus: 4,
        ..FixedTarget::default()
    }
    .with_format("syscalls", "sys_enter_openat", FORMAT)
    .with_format("sched", "sched_switch", FORMAT)
}

/// Valid programs covering most of what the compiler lowers.
const CORPUS: &[&str] = &[
    "begin { printf(\"hello %d\\n\", 1); exit(); }",
    "tracepoint:syscalls:sys_enter_openat /pid == 1/ { @[comm] = count(); }",
    "t:syscalls:sys_enter_openat { @f[str(args.filename)] = count(); @n[args.name] = sum(args.flags); }",
    "t:syscalls:sys_enter_* { @c[probe] = count(); } end { print(@c); clear(@c); }",
    "begin { $a = 5; $b = -3; printf(\"%d %d %d %d\\n\", $a / $b, $a % $b, $a << 2, $a >> 1); }",
    "begin { $x = (uint8)300; $y = (int8)200; @v = $x + $y; @w = (uint32)-1; @z = (bool)$x; }",
    "t:sched:sched_switch { @h = hist(args.dfd); @k = hist(args.flags, 3); @l = lhist(args.mode, 0, 100, 10); }",
    "t:sched:sched_switch { @mn = min(args.flags); @mx = max(args.flags); @a = avg(args.dfd); @s = stats(args.dfd); }",
    "begin { @c = count(); if (@c > 5) { printf(\"%d\\n\", @c); } else { @c = count(); } }",
    "begin { $s = \"abc\"; if ($s == \"abc\" && comm != \"bash\" || !(1 > 2)) { @m[$s, 1] = 2; } }",
    "begin { $i = 0; while ($i < 10) { $i++; if ($i == 3) { continue; } if ($i > 7) { break; } @x += $i; } }",
    "begin { unroll(4) { @u++; } $t = (1, \"two\", 3); @t = $t; printf(\"%d %s\\n\", $t.0, $t.1); }",
    "interval:s:1 { print(@x); zero(@x); } i:ms:100 { @x = count(); }",
    "profile:hz:99 { @s[kstack] = count(); @t[kstack(3)] = count(); @cpu[cpu] = count(); }",
    "begin { $c = pid > 100 ? \"big\" : \"small\"; printf(\"%s %d %d %d\\n\", $c, tid, uid, gid); }",
    "begin { @m[1] = 1; delete(@m[1]); delete(@m, 1); @n = nsecs; @e = elapsed; @r = rand; @g = cgroup; }",
    "begin { let $v: uint16 = 7; let $w: uint64; let $s: string; $w = $v * 2; print($w); print(($v, $w)); }",
    "end { printf(\"%s %s %s\\n\", comm, probe, ksym(0)); exit(3); }",
    "t:syscalls:sys_enter_openat { $p = args.filename; printf(\"%s %s\\n\", str($p, 8), args.comm); return; }",
    "begin { @a = 1; @a = @a + 1; @b[\"x\"] = @a; @a -= 1; @a *= 3; @a /= 2; @a %= 5; @a <<= 1; @a ^= 3; }",
    "begin { $a = 1; $b = $a ? ($a ? 2 : 3) : 4; $c = ~$b & 0xff | 0x100 ^ -1; @r = $c; }",
    "begin /$1 > 0/ { printf(\"%d %d\\n\", $1, $#); }",
    "t:syscalls:sys_enter_openat /args.dfd == -100 && str(args.filename) == \"/etc/passwd\"/ { @ = count(); }",
    "begin { @m[1, \"a\"] = 2; for ($kv : @m) { if ($kv.0.0 == 1) { continue; } printf(\"%s %d\\n\", $kv.0.1, $kv.1); } for ($i : 0..5) { if ($i == 3) { break; } @c[$i] = count(); } printf(\"%d\\n\", len(@c)); }",
    "t:syscalls:sys_enter_openat { @c[comm] = count(); for ($kv : @c) { for ($j : 0..$kv.1) { if ($j > 2) { return; } } } $r = (a = 1, b = comm); print($r.b); let $x; $x = strstr(str(args.filename), \"a\"); }",
    "begin { let $s; if (pid > 1) { $s = str_concat(\"a\", \"b\"); } else { $s = \"c\"; } print(($s, memcmp($s, \"ab\", 2), signal_name(2), nsecs(boot), len(kstack))); }",
];

/// Code fragments spliced in so mutations reach more of the compiler than
/// byte noise alone.
const FRAGMENTS: &[&str] = &[
    "{",
    "}",
    "(",
    ")",
    "[",
    "]",
    ";",
    ",",
    "?",
    ":",
    "=",
    "==",
    "!=",
    "<",
    ">>",
    "<<",
    "+",
    "-",
    "*",
    "/",
    "%",
    "&&",
    "||",
    "!",
    "~",
    "++",
    "--",
    "+=",
    "@x",
    "@",
    "@m[1]",
    "@m[1, 2]",
    "$a",
    "$b",
    "$1",
    "$#",
    "0",
    "1",
    "-1",
    "0xffffffff",
    "9223372036854775807",
    "18446744073709551615",
    "\"s\"",
    "\"\"",
    "comm",
    "pid",
    "tid",
    "nsecs",
    "cpu",
    "probe",
    "kstack",
    "args.dfd",
    "args.filename",
    "args.comm",
    "args.name",
    "args.vals",
    "args.nope",
    "args",
    "retval",
    "arg0",
    "count()",
    "sum(1)",
    "hist(1)",
    "hist(1, 9)",
    "lhist(1, 0, 10, 0)",
    "lhist(1, 10, 0, 1)",
    "min($a)",
    "avg(\"s\")",
    "printf(\"%d\", 1)",
    "printf(\"%s\", 1)",
    "printf(\"%d\")",
    "printf(\"%r\", 1)",
    "print(@x)",
    "print(1, 2)",
    "clear(@x)",
    "zero(1)",
    "delete(@m, 1)",
    "exit()",
    "exit(1, 2)",
    "str(1)",
    "str(\"a\", 2)",
    "ksym(1)",
    "kstack(0)",
    "(uint8)",
    "(int64)",
    "(bool)",
    "(string)",
    "(struct x *)",
    "(1, \"a\")",
    ".0",
    ".5",
    "if (1) { }",
    "else { }",
    "for ($kv : @m) { }",
    "for ($i : 0..3) { }",
    "break;",
    "continue;",
    "(a = 1, b = \"s\")",
    ".a",
    "let $z;",
    "len(@m)",
    "while (0) { }",
    "unroll(0) { }",
    "unroll(101) { }",
    "break;",
    "continue;",
    "return;",
    "let $v: uint8 = 1;",
    "let $q;",
    "for ($i : 0..3) { }",
    "sizeof(int)",
    "*$a",
    "&$a",
    "$a = \"x\";",
    "$a = 1;",
    "@x = count();",
    "@x = 1;",
    "@x = \"s\";",
    "@m[\"k\"] = 1;",
    "begin",
    "end",
    "t:syscalls:sys_enter_openat",
    "i:s:1",
    "p:hz:99",
    "kprobe:f",
    "\n",
    " ",
];

/// xorshift64*: small, deterministic, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Splits a program into rough tokens: words, numbers, strings, and single
/// punctuation characters (whitespace kept as its own token).
fn tokens(src: &str) -> Vec<String> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let start = i;
        if c.is_alphanumeric() || c == '_' || c == '$' || c == '@' {
            while i < chars.len()
                && (chars[i].is_alphanumeric() || matches!(chars[i], '_' | '$' | '@' | ':' | '.'))
            {
                i += 1;
            }
        } else if c == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            i = (i + 1).min(chars.len());
        } else {
            i += 1;
        }
        out.push(chars[start..i].iter().collect());
    }
    out
}

fn mutate(rng: &mut Rng, src: &str) -> String {
    let mut toks = tokens(src);
    let edits = 1 + rng.below(3);
    for _ in 0..edits {
        let n = toks.len().max(1);
        match rng.below(8) {
            0 => {
                if !toks.is_empty() {
                    toks.remove(rng.below(n));
                }
            }
            1 => {
                let t = rng.pick(FRAGMENTS).to_string();
                toks.insert(rng.below(n + 1).min(toks.len()), t);
            }
            2 => {
                if !toks.is_empty() {
                    let at = rng.below(n);
                    toks[at] = rng.pick(FRAGMENTS).to_string();
                }
            }
            3 => {
                if !toks.is_empty() {
                    let (a, b) = (rng.below(n), rng.below(n));
                    toks.swap(a, b);
                }
            }
            4 => {
                if !toks.is_empty() {
                    let at = rng.below(n);
                    let t = toks[at].clone();
                    toks.insert(at, t);
                }
            }
            5 => {
                // Splice a run of tokens from another program.
                let other = tokens(rng.pick::<&str>(CORPUS));
                let from = rng.below(other.len());
                let len = rng.below(12).min(other.len() - from);
                let at = rng.below(n + 1).min(toks.len());
                for (k, t) in other[from..from + len].iter().enumerate() {
                    toks.insert(at + k, t.clone());
                }
            }
            6 => {
                // Replace a number with an extreme one.
                let nums: Vec<usize> = (0..toks.len())
                    .filter(|&i| toks[i].chars().all(|c| c.is_ascii_digit()))
                    .collect();
                if !nums.is_empty() {
                    let at = *rng.pick(&nums);
                    toks[at] = rng
                        .pick(&[
                            "0",
                            "1",
                            "5",
                            "64",
                            "127",
                            "128",
                            "255",
                            "1000",
                            "4294967296",
                        ])
                        .to_string();
                }
            }
            _ => {
                // Byte noise.
                let mut bytes = toks.concat().into_bytes();
                if !bytes.is_empty() {
                    let at = rng.below(bytes.len());
                    bytes[at] = *rng.pick(NOISE);
                }
                toks = tokens(&String::from_utf8_lossy(&bytes));
            }
        }
    }
    toks.concat()
}

/// Bytes byte-noise mutations write.
const NOISE: &[u8] = b" {}()[];,.:$@\"\\/*+-<>=!&|^~?%0129azAZ_#\n";

/// Structural checks every compiled program must pass.
fn check_program(src: &str, prog: &CompiledProgram) {
    assert!(!prog.programs.is_empty(), "{src:?}: no programs");
    let known_maps: Vec<&str> = prog
        .maps
        .iter()
        .map(|m| m.symbol.as_str())
        .chain([prog.events_map.as_str(), prog.lost_map.as_str()])
        .chain(prog.stack_map.as_deref())
        .chain(prog.full_map.as_deref())
        .chain([
            "ferret_scratch",
            "ferret_scratch_irq",
            "ferret_signal_names",
            "ferret_syscall_names",
        ])
        .collect();
    for p in &prog.programs {
        let insns: &[Insn] = &p.insns;
        let n = insns.len();
        assert!(n > 0, "{src:?}: {} is empty", p.name);
        assert_eq!(
            insns[n - 1].code,
            BPF_JMP | BPF_EXIT,
            "{src:?}: {} does not end with exit",
            p.name
        );
        // Functions: the probe's, then its callbacks; each ends with exit,
        // jumps stay inside their function, callback loads name a start.
        let def = prog
            .object
            .programs
            .iter()
            .find(|d| d.name == p.name)
            .expect("the object has the program");
        assert_eq!(def.subprograms, p.subprograms, "{src:?}: {}", p.name);
        let mut starts = vec![0];
        starts.extend(&p.subprograms);
        starts.push(n);
        assert!(
            starts.windows(2).all(|w| w[0] < w[1]),
            "{src:?}: {starts:?}"
        );
        let function_of = |i: usize| starts.iter().rposition(|&s| s <= i).unwrap_or(0);
        for w in starts.windows(2) {
            assert_eq!(
                insns[w[1] - 1].code,
                BPF_JMP | BPF_EXIT,
                "{src:?}: {}: the function at {} does not end with exit",
                p.name,
                w[0]
            );
        }
        for (i, insn) in insns.iter().enumerate() {
            if insn.is_ld_imm64() && insn.src == ferret_bpf::insn::BPF_PSEUDO_FUNC {
                let target = i as i64 + 1 + i64::from(insn.imm);
                assert!(
                    p.subprograms.iter().any(|&s| s as i64 == target),
                    "{src:?}: {}: callback load at {i} to {target}",
                    p.name
                );
            }
            if insn.is_jump() {
                let target = (i as i64 + 1 + i64::from(insn.off)).max(0) as usize;
                assert_eq!(
                    function_of(i),
                    function_of(target),
                    "{src:?}: {}: jump at {i} leaves its function",
                    p.name
                );
            }
        }
        // Second halves of ld_imm64 are not instruction boundaries.
        let mut boundary = vec![true; n];
        let mut i = 0;
        while i < n {
            if insns[i].is_ld_imm64() {
                assert!(i + 1 < n, "{src:?}: {}: truncated ld_imm64 at {i}", p.name);
                assert_eq!(insns[i + 1].code, 0, "{src:?}: ld_imm64 second half at {i}");
                boundary[i + 1] = false;
                i += 2;
            } else {
                i += 1;
            }
        }
        for (i, insn) in insns.iter().enumerate() {
            if !boundary[i] {
                continue;
            }
            if insn.is_jump() {
                let target = i as i64 + 1 + i64::from(insn.off);
                assert!(
                    (0..n as i64).contains(&target) && boundary[target as usize],
                    "{src:?}: {}: jump at {i} to {target} (of {n})",
                    p.name
                );
            }
            if insn.code == BPF_JMP | BPF_CALL {
                assert!(
                    insn.imm == 195 || helper::name(insn.imm).is_some(),
                    "{src:?}: {}: call of unknown helper {} at {i}",
                    p.name,
                    insn.imm
                );
            }
        }
        for (at, map) in &p.map_loads {
            assert!(
                *at + 1 < n && insns[*at].is_ld_imm64() && insns[*at].src == 1,
                "{src:?}: {}: map load of {map} at {at} is not ld_imm64 with src_reg 1",
                p.name
            );
            assert!(
                known_maps.contains(&map.as_str()),
                "{src:?}: {}: unknown map {map}",
                p.name
            );
        }
        let loads = insns
            .iter()
            .enumerate()
            .filter(|(i, insn)| boundary[*i] && insn.is_ld_imm64() && insn.src == 1)
            .count();
        assert_eq!(
            loads,
            p.map_loads.len(),
            "{src:?}: {}: unrelocated map loads",
            p.name
        );
    }
}

/// Parses and compiles one input; returns whether it compiled.
fn compile_one(src: &str, target: &FixedTarget, opts: &Options) -> bool {
    let file = SourceFile::new("fuzz.bt", src);
    let Ok(ast) = parse(&file) else {
        return false;
    };
    let result =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| compile(&ast, target, opts)));
    match result {
        Ok(Ok(prog)) => {
            check_program(src, &prog);
            true
        }
        Ok(Err(diags)) => {
            assert!(!diags.is_empty(), "{src:?}: error without diagnostics");
            false
        }
        Err(_) => panic!("compiler panicked on {src:?}"),
    }
}

/// Runs `f` on a thread with the main thread's usual 8 MiB stack: that is
/// what the ferret binary compiles on.
fn on_main_sized_stack(f: impl FnOnce() + Send) {
    std::thread::scope(|s| {
        std::thread::Builder::new()
            .stack_size(8 << 20)
            .spawn_scoped(s, f)
            .expect("spawn")
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p));
    });
}

#[test]
fn corpus_compiles_and_is_well_formed() {
    let target = target();
    let opts = Options {
        positional: vec!["5".into()],
        ..Options::default()
    };
    for src in CORPUS {
        let file = SourceFile::new("corpus.bt", *src);
        let ast = parse(&file).unwrap_or_else(|d| panic!("{src:?}: {d:?}"));
        let prog = compile(&ast, &target, &opts).unwrap_or_else(|d| panic!("{src:?}: {d:?}"));
        check_program(src, &prog);
    }
}

#[test]
fn mutated_programs_never_panic() {
    on_main_sized_stack(|| {
        let target = target();
        let opts = Options {
            positional: vec!["5".into(), "x".into()],
            max_strlen: 64,
            ..Options::default()
        };
        let budget = Duration::from_secs(10);
        let start = Instant::now();
        let mut rng = Rng(0x5eed_f0cc_ac1a_0001);
        let (mut tried, mut compiled) = (0usize, 0usize);
        let mut last = String::new();
        for round in 0..6000 {
            // Now and then mutate the previous mutation, to drift further.
            let base = if round % 4 == 3 {
                std::mem::take(&mut last)
            } else {
                (*rng.pick(CORPUS)).to_string()
            };
            let src = mutate(&mut rng, &base);
            tried += 1;
            if compile_one(&src, &target, &opts) {
                compiled += 1;
            }
            last = src;
        }
        let elapsed = start.elapsed();
        assert!(
            elapsed < budget,
            "{tried} programs took {elapsed:?}, over the {budget:?} budget"
        );
        // The mutations must still exercise code generation, not only errors.
        assert!(compiled * 20 > tried, "only {compiled} of {tried} compiled");
    });
}

#[test]
fn deep_and_wide_programs_do_not_crash() {
    on_main_sized_stack(|| {
        let target = target();
        let opts = Options::default();
        let mut inputs = Vec::new();
        for depth in [10, 50, 120, 250] {
            let (open, close) = ("(".repeat(depth), ")".repeat(depth));
            inputs.push(format!("begin {{ @x = {open}1{close}; }}"));
            inputs.push(format!("begin {{ @x = {}1; }}", "-".repeat(depth)));
            inputs.push(format!("begin {{ @x = {}1; }}", "!".repeat(depth)));
            inputs.push(format!(
                "begin {{ $a = 1; @x = {}$a{close}; }}",
                "($a + ".repeat(depth)
            ));
            inputs.push(format!(
                "begin {{ {} @x = 1; {} }}",
                "if (1) {".repeat(depth),
                "}".repeat(depth)
            ));
            inputs.push(format!(
                "begin {{ @x = {}1{}; }}",
                "1 ? (".repeat(depth),
                " : 2)".repeat(depth)
            ));
        }
        let long_sum: Vec<String> = (0..3000).map(|i| format!("$a{}", i % 7)).collect();
        inputs.push(format!(
            "begin {{ $a0 = 1; $a1 = 2; $a2 = 3; $a3 = 4; $a4 = 5; $a5 = 6; $a6 = 7; @x = {}; }}",
            long_sum.join(" + ")
        ));
        inputs.push(format!("begin {{ {} }}", "@x = count(); ".repeat(3000)));
        inputs.push(format!(
            "begin {{ {} }}",
            "printf(\"%s\", comm); ".repeat(500)
        ));
        for src in &inputs {
            compile_one(src, &target, &opts);
        }
    });
}
