//! The parser must return, never panic or overflow its stack, on any input:
//! mutated valid programs, token soup, and pathological nesting.

use std::time::Instant;

use ferret_syntax::ast::{Expr, ExprKind, Program, Stmt, StmtKind};
use ferret_syntax::{Diagnostic, SourceFile, parse, preprocess};

const CORPUS: &[&str] = &[
    "BEGIN { printf(\"hello\\n\"); exit(); }",
    "tracepoint:syscalls:sys_enter_openat /pid == 1/ { @[comm] = count(); }",
    "kprobe:vfs_read+16, kretprobe:vfs_read { @bytes = hist(retval); @s[tid] = nsecs; }",
    "uprobe:/bin/bash:readline { printf(\"%s\\n\", str(arg0)); }",
    "interval:s:5 { print(@x); clear(@x); } i:1s { @t++; }",
    "profile:hz:99 /comm == \"x\"/ { @[kstack(perf, 3), ustack] = count(); }",
    "BEGIN { $x = (uint32)1e6; $y = (struct task_struct *)curtask; $z = $y->parent->pid; }",
    "END { for ($kv : @m) { printf(\"%d %d\\n\", $kv.0, $kv.1); } for ($i : 0..10) { @a += $i; } }",
    "BEGIN { if ($1 > 5ms) { @x = 1; } else if (!@y) { @y <<= 2; } else { @z--; } }",
    "BEGIN { unroll(3) { @n[1, \"a\"] = (1, 2).1; } while ($i < 5) { $i++; if ($i == 2) { continue; } break; } }",
    "BEGIN { let $a: int8[4]; let $b = sizeof(struct sk_buff) + offsetof(struct s, a.b); return; }",
    "t:sched:sched_sw?tch { @x = args.prev_pid ? 0x10 : 017 | 1_000 ^ ~5 & -3 % 7 >> 1; }",
    "#!/bin/bpftrace\n#include <linux/sched.h>\n/* c */ BEGIN // x\n{ @ = 1; }",
    "BEGIN { $s = \"a\\tb\\x41\\101\"; @m[$s] = max(strlen($s)); delete(@m, $s); }",
    "k:f / arg0 / 2 > 1 && (arg1 || arg2) / { $q = *$p + &$v; $t = ($a, ($b, $c)); }",
    "#ifndef BPFTRACE_HAVE_BTF\n#include <linux/sched.h>\n#else\n#define R 0\n#define F(a, b) ((a) + (b))\n#endif\n\
     config = { max_strlen = 64; stack_mode = perf; }\nlet @m = lruhash(10);\n\
     macro inc($x, @m, e) { $x += e; @m[$x] = 1; $x }\nmacro one() { 1 }\n\
     BEGIN { $a = R; $b = inc($a, @m, F(1, 2)); $c = { let $d = one; $d }; }",
];

/// Fragments spliced into programs so mutations reach deeper paths than
/// byte noise alone.
const FRAGMENTS: &[&str] = &[
    "\n#define X 1\n",
    "\n#define G(a) (a + X)\n",
    "\n#if 0\n",
    "\n#endif\n",
    "\n#else\n",
    "G(",
    "macro m(x) { x }",
    "config = {",
    "let @q = hash(2);",
    "{",
    "}",
    "(",
    ")",
    "[",
    "]",
    "/",
    "//",
    "/*",
    "*/",
    "\"",
    "\\",
    ";",
    ",",
    ":",
    "?",
    ".",
    "..",
    "->",
    "++",
    "--",
    "=",
    "==",
    "<<=",
    "@",
    "@x",
    "$",
    "$1",
    "$#",
    "if",
    "else",
    "for",
    "while",
    "unroll",
    "let",
    "break",
    "(uint8)",
    "(struct s *)",
    "sizeof(",
    "offsetof(",
    "0x",
    "1e",
    "5ms",
    "99999999999999999999999",
    "'",
    "#",
    "\n#",
    "\u{20ac}",
    "\u{1F600}",
    "\u{0}",
    "\t",
    "BEGIN",
    "kprobe:f",
    "uprobe:/a/b:c",
    "\"x:y\"",
    ":/",
    "true",
    "false",
    "\\x",
    "\\0",
    "\r\n",
];

/// xorshift64*: small, deterministic, good enough to drive mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

fn random_range(rng: &mut Rng, len: usize) -> (usize, usize) {
    let start = rng.below(len + 1);
    let end = (start + rng.below(8) + 1).min(len);
    (start, end.max(start))
}

fn mutate(rng: &mut Rng, program: &mut Vec<char>) {
    let len = program.len();
    match rng.below(8) {
        0 => {
            let (s, e) = random_range(rng, len);
            program.drain(s..e);
        }
        1 => {
            let (s, e) = random_range(rng, len);
            let copy: Vec<char> = program[s..e].to_vec();
            let at = rng.below(program.len() + 1);
            program.splice(at..at, copy);
        }
        2 => {
            let a = rng.below(len);
            let b = rng.below(len);
            if a < len && b < len {
                program.swap(a, b);
            }
        }
        3 | 4 => {
            let at = rng.below(len + 1);
            program.splice(at..at, rng.pick(FRAGMENTS).chars());
        }
        5 => {
            let at = rng.below(len + 1);
            let c = char::from_u32((rng.next() % 0x3_0000) as u32).unwrap_or('?');
            program.insert(at, c);
        }
        6 => {
            let other: Vec<char> = rng.pick(CORPUS).chars().collect();
            let (s, e) = random_range(rng, other.len());
            let at = rng.below(len + 1);
            program.splice(at..at, other[s..e].iter().copied());
        }
        _ => {
            let at = rng.below(len + 1);
            program.truncate(at);
        }
    }
}

/// Parses and renders every diagnostic (rendering checks spans are sane).
fn check(text: &str) {
    let written = SourceFile::new("fuzz.bt", text);
    let file = match preprocess(&written) {
        Ok(pre) => pre.file,
        Err(errors) => {
            check_diagnostics(&errors, &written, text);
            return;
        }
    };
    match parse(&file) {
        Ok(program) => check_spans(&program, file.text.len()),
        Err(errors) => check_diagnostics(&errors, &file, text),
    }
}

fn check_diagnostics(errors: &[Diagnostic], file: &SourceFile, text: &str) {
    assert!(!errors.is_empty(), "Err without errors for {text:?}");
    for d in errors {
        assert!(d.span.start <= d.span.end, "{d:?}");
        assert!(d.span.end as usize <= file.text.len(), "{d:?} in {text:?}");
        let shown = file.original_span(d.span);
        assert!(
            shown.end as usize <= text.len(),
            "{d:?} shown at {shown:?} in {text:?}"
        );
        let rendered = d.render(file);
        assert!(rendered.starts_with("fuzz.bt:"), "{rendered}");
    }
}

fn check_spans(program: &Program, len: usize) {
    for probe in &program.probes {
        assert!(probe.span.end as usize <= len);
        for stmt in &probe.body.stmts {
            check_stmt(stmt, len);
        }
    }
}

fn check_stmt(stmt: &Stmt, len: usize) {
    assert!(stmt.span.start <= stmt.span.end && stmt.span.end as usize <= len);
    match &stmt.kind {
        StmtKind::Expr(e) => check_expr(e, len),
        StmtKind::Assign { target, value, .. } => {
            check_expr(target, len);
            check_expr(value, len);
        }
        _ => {}
    }
}

fn check_expr(expr: &Expr, len: usize) {
    assert!(expr.span.start <= expr.span.end && expr.span.end as usize <= len);
    if let ExprKind::Binary { lhs, rhs, .. } = &expr.kind {
        check_expr(lhs, len);
        check_expr(rhs, len);
    }
}

#[test]
fn corpus_parses() {
    for src in CORPUS {
        let written = SourceFile::new("stdin", *src);
        let file = preprocess(&written)
            .unwrap_or_else(|e| panic!("{src}\n{e:?}"))
            .file;
        if let Err(errors) = parse(&file) {
            let rendered: Vec<String> = errors.iter().map(|d| d.render(&file)).collect();
            panic!("{src}\n{}", rendered.join("\n"));
        }
    }
}

#[test]
fn mutated_programs_never_panic() {
    let started = Instant::now();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut runs = 0;
    for round in 0..6000 {
        let mut program: Vec<char> = rng.pick(CORPUS).chars().collect();
        for _ in 0..=rng.below(1 + round % 12) {
            mutate(&mut rng, &mut program);
        }
        let text: String = program.into_iter().collect();
        check(&text);
        runs += 1;
    }
    assert_eq!(runs, 6000);
    eprintln!("took {:?}", started.elapsed());
}

#[test]
fn token_soup_never_panics() {
    let mut rng = Rng(42);
    for _ in 0..2000 {
        let mut text = String::new();
        if rng.below(2) == 0 {
            text.push_str("BEGIN { ");
        }
        for _ in 0..rng.below(40) {
            let fragment = *rng.pick(FRAGMENTS);
            text.push_str(fragment);
            if rng.below(3) == 0 {
                text.push(' ');
            }
        }
        check(&text);
    }
}

fn message_of(text: &str) -> Vec<String> {
    let file = SourceFile::new("stdin", text);
    match parse(&file) {
        Ok(_) => Vec::new(),
        Err(errors) => errors.into_iter().map(|d| d.message).collect(),
    }
}

#[test]
fn pathological_nesting_is_an_error_not_a_crash() {
    let n = 20_000;
    let too_deep = "program is nested too deeply";
    let cases = [
        format!("BEGIN {{ $x = {}1{}; }}", "(".repeat(n), ")".repeat(n)),
        format!("BEGIN {{ $x = {}1; }}", "-".repeat(n)),
        format!("BEGIN {{ $x = {}1; }}", "!~".repeat(n)),
        format!("BEGIN {{ $x = {}1; }}", "(uint8)".repeat(n)),
        format!("BEGIN {{ $x = 1{}; }}", " + 1".repeat(n)),
        format!("BEGIN {{ $x = 1{}; }}", " ? 1 : 1".repeat(n)),
        format!("BEGIN {{ $x = $a{}; }}", ".b".repeat(n)),
        format!("BEGIN {{ $x = $a{}; }}", "[0]".repeat(n)),
        format!("BEGIN {{ $x = {}1{}; }}", "f(".repeat(n), ")".repeat(n)),
        format!("BEGIN {{ $x = {}1{}; }}", "@m[".repeat(n), "]".repeat(n)),
        format!("BEGIN {{ {}{} }}", "if (1) { ".repeat(n), "}".repeat(n)),
        format!("BEGIN {{ if (1) {{ }} {} }}", "else if (1) { } ".repeat(n)),
        format!("BEGIN {{ {}{} }}", "while (1) { ".repeat(n), "}".repeat(n)),
    ];
    let started = Instant::now();
    for src in &cases {
        let messages = message_of(src);
        assert_eq!(messages, [too_deep], "{}", &src[..40]);
    }
    // Unbalanced, deep and garbage-filled input ends quickly too.
    for src in [
        "{".repeat(n),
        "(".repeat(n),
        format!("BEGIN {}", "{".repeat(n)),
        format!("BEGIN {{ {}", "(".repeat(n)),
        "}".repeat(n),
        "`".repeat(n),
        "a".repeat(n),
        "BEGIN { } ".repeat(n / 10),
    ] {
        let _ = message_of(&src);
    }
    eprintln!("took {:?}", started.elapsed());
}

#[test]
fn nesting_just_under_the_limit_parses() {
    // Parentheses cost two levels each (the expression and its operand).
    let depth = 100;
    let src = format!(
        "BEGIN {{ $x = {}1{}; }}",
        "(".repeat(depth),
        ")".repeat(depth)
    );
    assert_eq!(message_of(&src), Vec::<String>::new());
    let src = format!(
        "BEGIN {{ {}{} }}",
        "if (1) { ".repeat(depth),
        "}".repeat(depth)
    );
    assert_eq!(message_of(&src), Vec::<String>::new());
    let src = format!("BEGIN {{ $x = 1{}; }}", " + 1".repeat(200));
    assert_eq!(message_of(&src), Vec::<String>::new());
}
