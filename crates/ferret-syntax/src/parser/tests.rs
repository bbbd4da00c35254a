//! Parse → AST checks for every construct. Expressions are compared through
//! a compact S-expression rendering to keep the expectations readable.

use crate::ast::{Expr, ExprKind, Probe, Program, Stmt, StmtKind, TypeName, UnaryOp};
use crate::{SourceFile, Span, parse};

pub(super) fn program(src: &str) -> Program {
    let file = SourceFile::new("stdin", src);
    match parse(&file) {
        Ok(p) => p,
        Err(errors) => {
            let rendered: Vec<String> = errors.iter().map(|d| d.render(&file)).collect();
            panic!("unexpected errors for {src:?}:\n{}", rendered.join("\n"));
        }
    }
}

fn probe(src: &str) -> Probe {
    let mut p = program(src);
    assert_eq!(p.probes.len(), 1, "{src}");
    p.probes.remove(0)
}

fn stmts(body: &str) -> Vec<Stmt> {
    probe(&format!("BEGIN {{ {body} }}")).body.stmts
}

fn stmt(body: &str) -> StmtKind {
    let mut s = stmts(body);
    assert_eq!(s.len(), 1, "{body}");
    s.remove(0).kind
}

/// The expression of `BEGIN { <src>; }` rendered as an S-expression.
fn expr(src: &str) -> String {
    match stmt(src) {
        StmtKind::Expr(e) => sexp(&e),
        other => panic!("not an expression statement: {other:?}"),
    }
}

fn ty(t: &TypeName) -> String {
    let mut s = t.name.clone();
    for _ in 0..t.pointer_depth {
        s.push('*');
    }
    if let Some(n) = t.array_len {
        s.push_str(&format!("[{n}]"));
    }
    s
}

fn list(items: &[Expr]) -> String {
    items.iter().map(sexp).collect::<Vec<_>>().join(" ")
}

pub(super) fn sexp(e: &Expr) -> String {
    match &e.kind {
        ExprKind::Int(n) => n.to_string(),
        ExprKind::Str(b) => format!("{:?}", String::from_utf8_lossy(b)),
        ExprKind::Bool(b) => b.to_string(),
        ExprKind::Ident(n) => n.clone(),
        ExprKind::Var(n) => format!("${n}"),
        ExprKind::Map { name, keys } if keys.is_empty() => format!("@{name}"),
        ExprKind::Map { name, keys } => format!("@{name}[{}]", list(keys)),
        ExprKind::Call { name, args, .. } => format!("{name}({})", list(args)),
        ExprKind::Unary { op, expr } => {
            let op = match op {
                UnaryOp::Neg => "-",
                UnaryOp::Not => "!",
                UnaryOp::BitNot => "~",
                UnaryOp::Deref => "*",
                UnaryOp::AddrOf => "&",
            };
            format!("({op} {})", sexp(expr))
        }
        ExprKind::Binary { op, lhs, rhs } => {
            format!("({} {} {})", op.symbol(), sexp(lhs), sexp(rhs))
        }
        ExprKind::Ternary {
            cond,
            then,
            otherwise,
        } => format!("(? {} {} {})", sexp(cond), sexp(then), sexp(otherwise)),
        ExprKind::Field {
            expr, field, arrow, ..
        } => format!(
            "({} {} {field})",
            if *arrow { "->" } else { "." },
            sexp(expr)
        ),
        ExprKind::TupleIndex { expr, index } => format!("(.{index} {})", sexp(expr)),
        ExprKind::Index { expr, index } => format!("(index {} {})", sexp(expr), sexp(index)),
        ExprKind::Cast { ty: t, expr } => format!("(cast {} {})", ty(t), sexp(expr)),
        ExprKind::Tuple(items) => format!("(tuple {})", list(items)),
        ExprKind::Record(fields) => format!(
            "(record {})",
            fields
                .iter()
                .map(|(n, e)| format!("{n}={}", sexp(e)))
                .collect::<Vec<_>>()
                .join(" ")
        ),
        ExprKind::IncDec {
            target,
            increment,
            prefix,
        } => {
            let op = if *increment { "++" } else { "--" };
            if *prefix {
                format!("({op}pre {})", sexp(target))
            } else {
                format!("({op}post {})", sexp(target))
            }
        }
        ExprKind::SizeofType(t) => format!("(sizeof {})", ty(t)),
        ExprKind::Offsetof { ty: t, fields } => {
            format!("(offsetof {} {})", ty(t), fields.join("."))
        }
        ExprKind::Block { stmts, value } => {
            let mut parts: Vec<String> = stmts.iter().map(stmt_sexp).collect();
            if let Some(v) = value {
                parts.push(format!("=> {}", sexp(v)));
            }
            format!("{{{}}}", parts.join("; "))
        }
    }
}

/// A statement inside a block expression, compactly.
pub(super) fn stmt_sexp(s: &Stmt) -> String {
    match &s.kind {
        StmtKind::Expr(e) => sexp(e),
        StmtKind::Assign { target, op, value } => format!(
            "({}= {} {})",
            op.map_or("", |o| o.symbol()),
            sexp(target),
            sexp(value)
        ),
        StmtKind::Let { name, value, .. } => match value {
            Some(v) => format!("(let ${name} {})", sexp(v)),
            None => format!("(let ${name})"),
        },
        StmtKind::If { cond, then, .. } => format!(
            "(if {} {{{}}})",
            sexp(cond),
            then.stmts
                .iter()
                .map(stmt_sexp)
                .collect::<Vec<_>>()
                .join("; ")
        ),
        StmtKind::ForMap { var, map, body, .. } => format!(
            "(for ${var} {} {{{}}})",
            sexp(map),
            body.stmts
                .iter()
                .map(stmt_sexp)
                .collect::<Vec<_>>()
                .join("; ")
        ),
        other => format!("{other:?}"),
    }
}

fn attach_texts(src: &str) -> Vec<String> {
    probe(src)
        .attach_points
        .into_iter()
        .map(|a| a.text)
        .collect()
}

// ---- probes and attach points ----

#[test]
fn attach_points_are_kept_as_written() {
    for ap in [
        "BEGIN",
        "begin",
        "END",
        "tracepoint:syscalls:sys_enter_openat",
        "t:syscalls:sys_enter_*",
        "tracepoint:sched:sched_sw?tch",
        "interval:s:5",
        "i:1s",
        "profile:hz:99",
        "kprobe:vfs_read+16",
        "uprobe:/bin/bash:readline",
        "uprobe:/usr/lib/libc.so.6:malloc",
        "uprobe:libc:malloc",
        "i:ms:$1",
        "uprobe:./a.out:\"NS::f\"",
        "uprobe:/bin/prog:cpp:\"ns::fn(int)\"",
        "watchpoint:0x10000000:8:rw",
        "software:cpu-clock:100",
        "uprobe:/bin/x@file.c:12",
        "kprobe:mod:fn[1]",
    ] {
        assert_eq!(
            attach_texts(&format!("{ap} {{ }}")),
            vec![ap.to_owned()],
            "{ap}"
        );
        assert_eq!(
            attach_texts(&format!("{ap}{{}}")),
            vec![ap.to_owned()],
            "{ap}"
        );
    }
}

#[test]
fn attach_point_spans() {
    let p = probe("  BEGIN , kprobe:f\n{ }");
    assert_eq!(p.attach_points[0].span, Span::new(2, 7));
    assert_eq!(p.attach_points[1].span, Span::new(10, 18));
    assert_eq!(p.span, Span::new(2, 22));
    assert_eq!(p.body.span, Span::new(19, 22));
}

#[test]
fn several_attach_points() {
    assert_eq!(attach_texts("BEGIN,END {}"), ["BEGIN", "END"]);
    assert_eq!(
        attach_texts("kprobe:a,\n  kprobe:b ,kretprobe:c { }"),
        ["kprobe:a", "kprobe:b", "kretprobe:c"]
    );
}

#[test]
fn predicates() {
    for src in [
        "tracepoint:a:b /pid == 1/ { }",
        "tracepoint:a:b/pid == 1/{}",
        "tracepoint:a:b\n/pid == 1/\n{\n}",
        "tracepoint:a:b / pid == 1 / // why\n { }",
    ] {
        let p = probe(src);
        assert_eq!(p.attach_points[0].text, "tracepoint:a:b", "{src}");
        let pred = p.predicate.as_ref().map(sexp);
        assert_eq!(pred.as_deref(), Some("(== pid 1)"), "{src}");
    }
    let p = probe("uprobe:/bin/bash:readline /arg0 / 2 > 1/ { }");
    assert_eq!(p.attach_points[0].text, "uprobe:/bin/bash:readline");
    assert_eq!(
        p.predicate.as_ref().map(sexp).as_deref(),
        Some("(> (/ arg0 2) 1)")
    );
    let p = probe("uprobe:/bin/bash:readline/comm == \"bash\"/{}");
    assert_eq!(p.attach_points[0].text, "uprobe:/bin/bash:readline");
    assert!(p.predicate.is_some());
    assert!(probe("BEGIN { }").predicate.is_none());
}

#[test]
fn several_probes_with_comments_shebang_and_directives() {
    let src = "#!/usr/bin/env bpftrace\n\
               #include <linux/sched.h>\n\
               #define X 1 \\\n  + 2\n\
               /* block\n comment */\n\
               BEGIN { printf(\"hi\\n\"); } // trailing\n\
               \n  # define Y\n\
               END { exit(); }";
    let p = program(src);
    assert_eq!(p.probes.len(), 2);
    assert_eq!(p.probes[0].attach_points[0].text, "BEGIN");
    assert_eq!(p.probes[1].attach_points[0].text, "END");
}

#[test]
fn empty_blocks_and_stray_semicolons() {
    assert!(probe("BEGIN {}").body.stmts.is_empty());
    assert!(probe("BEGIN { ; ; }").body.stmts.is_empty());
    assert_eq!(stmts("a; b; c").len(), 3);
    assert_eq!(stmts("a; b; c;").len(), 3);
}

// ---- statements ----

#[test]
fn assignments() {
    let StmtKind::Assign { target, op, value } = stmt("@x = 1") else {
        panic!()
    };
    assert_eq!(
        (sexp(&target), op, sexp(&value)),
        ("@x".into(), None, "1".into())
    );
    let ops = [
        ("+=", "+"),
        ("-=", "-"),
        ("*=", "*"),
        ("/=", "/"),
        ("%=", "%"),
        ("&=", "&"),
        ("|=", "|"),
        ("^=", "^"),
        ("<<=", "<<"),
        (">>=", ">>"),
    ];
    for (written, symbol) in ops {
        let StmtKind::Assign { target, op, value } = stmt(&format!("$x {written} 2 + 3")) else {
            panic!("{written}")
        };
        assert_eq!(sexp(&target), "$x");
        assert_eq!(op.map(|o| o.symbol()), Some(symbol));
        assert_eq!(sexp(&value), "(+ 2 3)");
    }
    let StmtKind::Assign { target, value, .. } = stmt("@m[pid, comm] = count()") else {
        panic!()
    };
    assert_eq!(sexp(&target), "@m[pid comm]");
    assert_eq!(sexp(&value), "count()");
    let StmtKind::Assign { target, .. } = stmt("@ = hist(arg2)") else {
        panic!()
    };
    assert_eq!(sexp(&target), "@");
    let StmtKind::Assign { target, .. } = stmt("_ = 1") else {
        panic!()
    };
    assert_eq!(sexp(&target), "_");
}

#[test]
fn let_statements() {
    let StmtKind::Let {
        name,
        name_span,
        ty,
        value,
    } = stmt("let $x: uint32 = 5")
    else {
        panic!()
    };
    assert_eq!(name, "x");
    assert_eq!(name_span, Span::new(12, 14));
    assert_eq!(ty.as_ref().map(self::ty).as_deref(), Some("uint32"));
    assert_eq!(value.as_ref().map(sexp).as_deref(), Some("5"));

    let StmtKind::Let { ty, value, .. } = stmt("let $y") else {
        panic!()
    };
    assert!(ty.is_none() && value.is_none());
    let StmtKind::Let { ty, value, .. } = stmt("let $p: struct task_struct * = curtask") else {
        panic!()
    };
    assert_eq!(
        ty.as_ref().map(self::ty).as_deref(),
        Some("struct task_struct*")
    );
    assert_eq!(value.as_ref().map(sexp).as_deref(), Some("curtask"));
    let StmtKind::Let { ty, .. } = stmt("let $a: int8[4]") else {
        panic!()
    };
    assert_eq!(ty.as_ref().map(self::ty).as_deref(), Some("int8[4]"));
}

#[test]
fn if_else_chains() {
    let s = stmts("if ($x > 1) { a } else if ($x < 0) { b; } else { c } d");
    assert_eq!(s.len(), 2, "no ';' needed after if");
    let StmtKind::If {
        cond,
        then,
        otherwise,
    } = &s[0].kind
    else {
        panic!()
    };
    assert_eq!(sexp(cond), "(> $x 1)");
    assert_eq!(then.stmts.len(), 1);
    let otherwise = otherwise.as_ref().expect("else");
    let StmtKind::If {
        cond,
        otherwise: last,
        ..
    } = &otherwise.stmts[0].kind
    else {
        panic!()
    };
    assert_eq!(sexp(cond), "(< $x 0)");
    assert_eq!(last.as_ref().map(|b| b.stmts.len()), Some(1));

    let StmtKind::If {
        cond, otherwise, ..
    } = stmt("if (!@seen[tid]) { }")
    else {
        panic!()
    };
    assert_eq!(sexp(&cond), "(! @seen[tid])");
    assert!(otherwise.is_none());
}

#[test]
fn loops() {
    let StmtKind::Unroll { count, body } = stmt("unroll(5) { @x++; }") else {
        panic!()
    };
    assert_eq!((sexp(&count), body.stmts.len()), ("5".into(), 1));
    let StmtKind::While { cond, body } =
        stmt("while ($i < 10) { $i++; if ($i == 5) { break; } continue; }")
    else {
        panic!()
    };
    assert_eq!(sexp(&cond), "(< $i 10)");
    assert_eq!(body.stmts.len(), 3);
    assert_eq!(body.stmts[2].kind, StmtKind::Continue);
    let StmtKind::ForMap { var, map, body, .. } = stmt("for ($kv : @m) { print($kv.0); }") else {
        panic!()
    };
    assert_eq!((var.as_str(), sexp(&map)), ("kv", "@m".into()));
    assert_eq!(body.stmts.len(), 1);
    let StmtKind::ForRange {
        var, start, end, ..
    } = stmt("for ($i : 0..$n + 1) { }")
    else {
        panic!()
    };
    assert_eq!(
        (var.as_str(), sexp(&start), sexp(&end)),
        ("i", "0".into(), "(+ $n 1)".into())
    );
    assert_eq!(
        stmts("break; continue; return")
            .iter()
            .map(|s| s.kind.clone())
            .collect::<Vec<_>>(),
        [StmtKind::Break, StmtKind::Continue, StmtKind::Return]
    );
}

#[test]
fn statement_spans() {
    let s = stmts("@x = 1; if (1) { }");
    assert_eq!(s[0].span, Span::new(8, 14));
    assert_eq!(s[1].span, Span::new(16, 26));
}

// ---- expressions ----

#[test]
fn literals() {
    assert_eq!(expr("42"), "42");
    assert_eq!(expr("0x1F"), "31");
    assert_eq!(expr("017"), "15");
    assert_eq!(expr("0"), "0");
    assert_eq!(expr("1_000_000"), "1000000");
    assert_eq!(expr("1e6"), "1000000");
    assert_eq!(expr("10ul"), "10");
    assert_eq!(expr("10ULL"), "10");
    assert_eq!(expr("5ms"), "5000000");
    assert_eq!(expr("2s"), "2000000000");
    assert_eq!(expr("18446744073709551615"), u64::MAX.to_string());
    assert_eq!(expr("\"a\\tb\\n\""), "\"a\\tb\\n\"");
    assert_eq!(expr("true"), "true");
    assert_eq!(expr("false"), "false");
}

#[test]
fn names() {
    assert_eq!(expr("pid"), "pid");
    assert_eq!(expr("$x"), "$x");
    assert_eq!(expr("$1"), "$1");
    assert_eq!(expr("$#"), "$#");
    assert_eq!(expr("@"), "@");
    assert_eq!(expr("@name"), "@name");
    assert_eq!(expr("@[1]"), "@[1]");
    assert_eq!(expr("@m[a, b]"), "@m[a b]");
    assert_eq!(expr("@m[(a, b)]"), "@m[(tuple a b)]");
}

#[test]
fn calls() {
    assert_eq!(
        expr("printf(\"%d %s\\n\", pid, comm)"),
        "printf(\"%d %s\\n\" pid comm)"
    );
    assert_eq!(expr("exit()"), "exit()");
    assert_eq!(expr("kstack"), "kstack");
    assert_eq!(expr("kstack(perf, 3)"), "kstack(perf 3)");
    assert_eq!(expr("str(args.filename)"), "str((. args filename))");
    let StmtKind::Expr(e) = stmt("printf(\"x\")") else {
        panic!()
    };
    let ExprKind::Call { name_span, .. } = e.kind else {
        panic!()
    };
    assert_eq!(name_span, Span::new(8, 14));
}

#[test]
fn precedence_follows_c() {
    assert_eq!(expr("1 + 2 * 3"), "(+ 1 (* 2 3))");
    assert_eq!(expr("1 - 2 - 3"), "(- (- 1 2) 3)");
    assert_eq!(expr("8 / 4 % 3 * 2"), "(* (% (/ 8 4) 3) 2)");
    assert_eq!(expr("1 << 2 + 3"), "(<< 1 (+ 2 3))");
    assert_eq!(expr("a < b == c > d"), "(== (< a b) (> c d))");
    assert_eq!(expr("a & b ^ c | d"), "(| (^ (& a b) c) d)");
    assert_eq!(expr("a == 1 & b"), "(& (== a 1) b)");
    assert_eq!(expr("a || b && c"), "(|| a (&& b c))");
    assert_eq!(expr("a && b || c && d"), "(|| (&& a b) (&& c d))");
    assert_eq!(
        expr("a >= 1 && b <= 2 || c != 3"),
        "(|| (&& (>= a 1) (<= b 2)) (!= c 3))"
    );
    assert_eq!(expr("a >> 1 >> 2"), "(>> (>> a 1) 2)");
    assert_eq!(expr("(1 + 2) * 3"), "(* (+ 1 2) 3)");
    assert_eq!(expr("a ? b : c ? d : e"), "(? a b (? c d e))");
    assert_eq!(expr("a || b ? 1 + 2 : 3"), "(? (|| a b) (+ 1 2) 3)");
}

#[test]
fn unary_and_postfix() {
    assert_eq!(expr("-1"), "(- 1)");
    assert_eq!(expr("!a && ~b"), "(&& (! a) (~ b))");
    assert_eq!(expr("*$p + &$v"), "(+ (* $p) (& $v))");
    assert_eq!(expr("- -x"), "(- (- x))");
    assert_eq!(expr("-a * b"), "(* (- a) b)");
    assert_eq!(expr("@x++"), "(++post @x)");
    assert_eq!(expr("@x--"), "(--post @x)");
    assert_eq!(expr("++$i"), "(++pre $i)");
    assert_eq!(expr("--@m[1]"), "(--pre @m[1])");
    assert_eq!(expr("args.filename"), "(. args filename)");
    assert_eq!(expr("args->filename"), "(-> args filename)");
    assert_eq!(expr("curtask->parent->pid"), "(-> (-> curtask parent) pid)");
    assert_eq!(expr("$kv.0"), "(.0 $kv)");
    assert_eq!(expr("$kv.0.1"), "(.1 (.0 $kv))");
    assert_eq!(expr("$s[2]"), "(index $s 2)");
    assert_eq!(expr("@m[1][2]"), "(index @m[1] 2)");
    assert_eq!(expr("*args.p[3]"), "(* (index (. args p) 3))");
    assert_eq!(expr("-$t.0"), "(- (.0 $t))");
}

#[test]
fn tuples_and_parens() {
    assert_eq!(expr("(1, \"a\")"), "(tuple 1 \"a\")");
    assert_eq!(expr("(1, (2, 3), $x)"), "(tuple 1 (tuple 2 3) $x)");
    assert_eq!(expr("((1))"), "1");
    assert_eq!(expr("(1, 2).1"), "(.1 (tuple 1 2))");
}

#[test]
fn for_loops_without_parentheses() {
    let StmtKind::ForRange { var, end, .. } = stmt("for $i : 0..$n { }") else {
        panic!()
    };
    assert_eq!((var.as_str(), sexp(&end)), ("i", "$n".into()));
    let StmtKind::ForMap { map, .. } = stmt("for $kv : @m { print($kv); }") else {
        panic!()
    };
    assert_eq!(sexp(&map), "@m");
}

#[test]
fn records() {
    assert_eq!(expr("(a = 1, b = \"x\")"), "(record a=1 b=\"x\")");
    assert_eq!(
        expr("(a = (1, 2), b = (c = $x))"),
        "(record a=(tuple 1 2) b=(record c=$x))"
    );
    assert_eq!(expr("(a = 1).a"), "(. (record a=1) a)");
    // A comparison in parentheses stays a comparison.
    assert_eq!(expr("(a == 1)"), "(== a 1)");
}

#[test]
fn casts() {
    assert_eq!(expr("(uint32)x"), "(cast uint32 x)");
    assert_eq!(expr("(int8)x"), "(cast int8 x)");
    assert_eq!(
        expr("(struct task_struct *)curtask"),
        "(cast struct task_struct* curtask)"
    );
    assert_eq!(expr("(struct sock *)arg0"), "(cast struct sock* arg0)");
    assert_eq!(expr("(union u **)arg0"), "(cast union u** arg0)");
    assert_eq!(expr("(enum e)1"), "(cast enum e 1)");
    assert_eq!(expr("(int8[8])12345"), "(cast int8[8] 12345)");
    assert_eq!(expr("(string[64])$p"), "(cast string[64] $p)");
    assert_eq!(expr("(bool)1"), "(cast bool 1)");
    assert_eq!(expr("(uint64)$a * 2"), "(* (cast uint64 $a) 2)");
    assert_eq!(
        expr("((struct sock *)arg0)->sk_family"),
        "(-> (cast struct sock* arg0) sk_family)"
    );
    assert_eq!(expr("(x)"), "x", "a non-type in parentheses is not a cast");
}

#[test]
fn sizeof_and_offsetof() {
    assert_eq!(
        expr("sizeof(struct task_struct)"),
        "(sizeof struct task_struct)"
    );
    assert_eq!(expr("sizeof(uint32)"), "(sizeof uint32)");
    assert_eq!(expr("sizeof($x)"), "sizeof($x)");
    assert_eq!(
        expr("offsetof(struct sk_buff, len)"),
        "(offsetof struct sk_buff len)"
    );
    assert_eq!(
        expr("offsetof(struct s, a.b.c)"),
        "(offsetof struct s a.b.c)"
    );
    assert_eq!(expr("offsetof(foo_t, x)"), "(offsetof foo_t x)");
}

#[test]
fn expression_spans() {
    let StmtKind::Expr(e) = stmt("(1 + 22) * $x") else {
        panic!()
    };
    assert_eq!(e.span, Span::new(8, 21));
    let ExprKind::Binary { lhs, rhs, .. } = &e.kind else {
        panic!()
    };
    assert_eq!(lhs.span, Span::new(8, 16));
    assert_eq!(rhs.span, Span::new(19, 21));
    let StmtKind::Expr(e) = stmt("args->fname") else {
        panic!()
    };
    let ExprKind::Field { field_span, .. } = e.kind else {
        panic!()
    };
    assert_eq!(field_span, Span::new(14, 19));
}

#[test]
fn a_realistic_script() {
    let src = r#"
#!/usr/bin/env bpftrace
/*
 * opensnoop-like
 */
BEGIN
{
	printf("Tracing open syscalls... Hit Ctrl-C to end.\n");
	printf("%-6s %-16s %4s %3s %s\n", "PID", "COMM", "FD", "ERR", "PATH");
}

tracepoint:syscalls:sys_enter_open,
tracepoint:syscalls:sys_enter_openat
{
	@filename[tid] = args.filename;
}

tracepoint:syscalls:sys_exit_open,
tracepoint:syscalls:sys_exit_openat
/@filename[tid]/
{
	$ret = args.ret;
	$fd = $ret >= 0 ? $ret : -1;
	$errno = $ret >= 0 ? 0 : - $ret;

	printf("%-6d %-16s %4d %3d %s\n", pid, comm, $fd, $errno,
	    str(@filename[tid]));
	delete(@filename, tid);
}

interval:s:1 { @ticks++; if (@ticks >= 5) { exit(); } }

END
{
	clear(@filename);
}
"#;
    let p = program(src);
    assert_eq!(p.probes.len(), 5);
    assert_eq!(p.probes[1].attach_points.len(), 2);
    assert_eq!(
        p.probes[2].predicate.as_ref().map(sexp).as_deref(),
        Some("@filename[tid]")
    );
    assert_eq!(p.probes[2].body.stmts.len(), 5);
}

#[test]
fn deep_but_allowed_nesting() {
    let depth = 60;
    let src = format!(
        "BEGIN {{ $x = {}1{}; }}",
        "(".repeat(depth),
        ")".repeat(depth)
    );
    program(&src);
    let src = format!(
        "BEGIN {{ {} }}",
        "if (1) { ".repeat(depth) + &"}".repeat(depth)
    );
    program(&src);
}
