//! The program's command-line parameters, resolved before lowering:
//! `getopt("name", default)` becomes the value of `--name=value` (or the
//! default) as a literal, and `$1`.. in attach points (`i:ms:$1`) become
//! the positional values, as bpftrace treats them.

use ferret_syntax::Diagnostic;
use ferret_syntax::ast::{BinOp, Block, Expr, ExprKind, Program, Stmt, StmtKind, UnaryOp};

/// A named parameter's type, from its default.
#[derive(Debug, Clone, PartialEq)]
enum Default {
    Bool(bool),
    Uint(u64),
    Int(i64),
    Str(Vec<u8>),
}

/// One `getopt` name as the script uses it.
#[derive(Debug, Clone)]
pub struct NamedParam {
    pub name: String,
    pub description: String,
}

/// Every name `program` reads with `getopt`, in order of first use.
pub fn named_params(program: &Program) -> Vec<NamedParam> {
    let mut found: Vec<NamedParam> = Vec::new();
    let mut visit = |e: &mut Expr| {
        if let ExprKind::Call { name, args, .. } = &e.kind
            && name == "getopt"
            && let Some(ExprKind::Str(n)) = args.first().map(|a| &a.kind)
        {
            let n = String::from_utf8_lossy(n).into_owned();
            let description = match args.get(2).map(|a| &a.kind) {
                Some(ExprKind::Str(d)) => String::from_utf8_lossy(d).into_owned(),
                _ => String::new(),
            };
            match found.iter_mut().find(|p| p.name == n) {
                Some(p) if p.description.is_empty() => p.description = description,
                Some(_) => {}
                None => found.push(NamedParam {
                    name: n,
                    description,
                }),
            }
        }
    };
    let mut copy = program.clone();
    walk_program(&mut copy, &mut visit);
    found
}

/// The `--name` words on the command line no `getopt` reads, as an error
/// message listing the ones the program takes.
pub fn check_named(program: &Program, given: &[String]) -> Result<(), String> {
    let known = named_params(program);
    let unknown: Vec<&str> = given
        .iter()
        .map(|g| g.split_once('=').map_or(g.as_str(), |(n, _)| n))
        .filter(|n| !known.iter().any(|k| k.name == *n))
        .collect();
    if unknown.is_empty() {
        return Ok(());
    }
    let mut msg = format!(
        "unexpected program option{} {}",
        if unknown.len() == 1 { "" } else { "s" },
        unknown
            .iter()
            .map(|n| format!("--{n}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    if known.is_empty() {
        msg.push_str("\nthe program takes no options (it calls no getopt())");
    } else {
        msg.push_str("\nthe program's options:");
        for k in &known {
            msg.push_str(&format!("\n  --{}", k.name));
            if !k.description.is_empty() {
                msg.push_str(&format!("  {}", k.description));
            }
        }
    }
    Err(msg)
}

/// Replaces every `getopt(...)` in `program` with its value; `given` holds
/// the command line's `name=value` and `name` words.
pub fn resolve_getopt(program: &mut Program, given: &[String]) -> Vec<Diagnostic> {
    let mut diags = Vec::new();
    let mut defaults: Vec<(String, Default)> = Vec::new();
    let mut visit = |e: &mut Expr| {
        let ExprKind::Call { name, args, .. } = &e.kind else {
            return;
        };
        if name != "getopt" {
            return;
        }
        match getopt_value(args, e.span, given, &mut defaults) {
            Ok(kind) => e.kind = kind,
            Err(d) => diags.push(d),
        }
    };
    walk_program(program, &mut visit);
    diags
}

fn getopt_value(
    args: &[Expr],
    span: ferret_syntax::Span,
    given: &[String],
    defaults: &mut Vec<(String, Default)>,
) -> Result<ExprKind, Diagnostic> {
    let usage = "usage: getopt(\"name\"[, default[, \"description\"]])";
    if args.is_empty() || args.len() > 3 {
        return Err(Diagnostic::error(
            span,
            format!("getopt() takes 1 to 3 arguments, {} given", args.len()),
        )
        .with_label("wrong number of arguments")
        .with_help(usage));
    }
    let ExprKind::Str(name) = &args[0].kind else {
        return Err(Diagnostic::error(
            args[0].span,
            "getopt()'s first argument must be a string literal",
        )
        .with_label("not a string literal")
        .with_help(usage));
    };
    let name = String::from_utf8_lossy(name).into_owned();
    if let Some(d) = args.get(2)
        && !matches!(d.kind, ExprKind::Str(_))
    {
        return Err(
            Diagnostic::error(d.span, "getopt()'s description must be a string literal")
                .with_label("not a string literal"),
        );
    }
    let default = match args.get(1).map(|a| &a.kind) {
        None => Default::Bool(false),
        Some(ExprKind::Bool(b)) => Default::Bool(*b),
        Some(ExprKind::Int(n)) => Default::Uint(*n),
        Some(ExprKind::Str(s)) => Default::Str(s.clone()),
        Some(ExprKind::Unary {
            op: UnaryOp::Neg,
            expr,
        }) if matches!(expr.kind, ExprKind::Int(_)) => {
            let ExprKind::Int(n) = expr.kind else {
                unreachable!("checked by the guard")
            };
            Default::Int((n as i64).wrapping_neg())
        }
        Some(_) => {
            return Err(Diagnostic::error(
                args[1].span,
                "getopt()'s default must be a string, integer or boolean literal",
            )
            .with_label("not a literal"));
        }
    };
    match defaults.iter().find(|(n, _)| *n == name) {
        Some((_, first)) if *first != default => {
            return Err(Diagnostic::error(
                span,
                format!(
                    "program option '{name}' needs the same default value everywhere it is used"
                ),
            )
            .with_label("a different default")
            .with_help("wrap the getopt() call in a macro and use that"));
        }
        Some(_) => {}
        None => defaults.push((name.clone(), default.clone())),
    }
    let value = given.iter().rev().find_map(|g| match g.split_once('=') {
        Some((n, v)) if n == name => Some(Some(v)),
        None if g == &name => Some(None),
        _ => None,
    });
    let bad = |value: &str, why: &str| {
        Diagnostic::error(
            span,
            format!("program command line option --{name} {why} (value: {value})"),
        )
        .with_label("the option is read here")
    };
    Ok(match (default, value) {
        (Default::Bool(b), None) => ExprKind::Bool(b),
        (_, Some(None))
            if !matches!(args.get(1).map(|a| &a.kind), None | Some(ExprKind::Bool(_))) =>
        {
            let why = match args[1].kind {
                ExprKind::Str(_) => "expects a string",
                _ => "expects an integer",
            };
            return Err(bad("true", why));
        }
        (_, Some(None)) => ExprKind::Bool(true),
        (Default::Bool(_), Some(Some(v))) => match v.to_ascii_lowercase().as_str() {
            "1" | "true" => ExprKind::Bool(true),
            "0" | "false" => ExprKind::Bool(false),
            _ => return Err(bad(v, "expects a boolean (e.g. 'true')")),
        },
        (Default::Uint(n), None) => ExprKind::Int(n),
        (Default::Uint(_), Some(Some(v))) => match parse_int(v) {
            Some(n) if n >= 0 => ExprKind::Int(n as u64),
            Some(n) => negative(n),
            None => return Err(bad(v, "expects an integer")),
        },
        (Default::Int(n), None) => negative(n),
        (Default::Int(_), Some(Some(v))) => match parse_int(v) {
            Some(n) => negative(n),
            None => return Err(bad(v, "expects an integer")),
        },
        (Default::Str(s), None) => ExprKind::Str(s),
        (Default::Str(_), Some(Some(v))) => ExprKind::Str(v.as_bytes().to_vec()),
    })
}

/// A signed value as the parser would give it: `-N` is negation of `N`.
fn negative(n: i64) -> ExprKind {
    if n >= 0 {
        return ExprKind::Int(n as u64);
    }
    ExprKind::Unary {
        op: UnaryOp::Neg,
        expr: Box::new(Expr {
            kind: ExprKind::Int(n.unsigned_abs()),
            span: ferret_syntax::Span::default(),
        }),
    }
}

fn parse_int(v: &str) -> Option<i64> {
    let v = v.trim();
    let (neg, digits) = match v.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, v),
    };
    let n = match digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        Some(hex) => i64::from_str_radix(hex, 16).ok()?,
        None => digits.parse::<i64>().ok()?,
    };
    Some(if neg { -n } else { n })
}

/// `str($N)` and `str($N + K)`: bpftrace reads a positional parameter given
/// to `str()` as its text (even when it looks like a number), and `+ K`
/// skips K characters. Both become string literals.
pub fn resolve_positional_strings(program: &mut Program, positional: &[String]) -> Vec<Diagnostic> {
    let mut diags = Vec::new();
    let mut visit = |e: &mut Expr| {
        let ExprKind::Call { name, args, .. } = &mut e.kind else {
            return;
        };
        if name != "str" || args.is_empty() || args.len() > 2 {
            return;
        }
        let (n, skip) = match &args[0].kind {
            ExprKind::Var(v) => (v.parse::<usize>().ok(), 0),
            ExprKind::Binary {
                op: BinOp::Add,
                lhs,
                rhs,
            } => match (&lhs.kind, &rhs.kind) {
                (ExprKind::Var(v), ExprKind::Int(k)) => (v.parse::<usize>().ok(), *k),
                _ => return,
            },
            _ => return,
        };
        let Some(n) = n.filter(|&n| n > 0) else {
            return;
        };
        let text = positional.get(n - 1).map_or("", String::as_str);
        let Some(rest) = usize::try_from(skip).ok().and_then(|k| text.get(k..)) else {
            diags.push(
                Diagnostic::error(
                    args[0].span,
                    format!(
                        "str(${n} + {skip}) is past the end of ${n}, which has {} characters",
                        text.len()
                    ),
                )
                .with_label("out of range"),
            );
            return;
        };
        let mut bytes = rest.as_bytes().to_vec();
        if let Some(ExprKind::Int(len)) = args.get(1).map(|a| &a.kind) {
            bytes.truncate(usize::try_from(*len).unwrap_or(usize::MAX));
        }
        args[0].kind = ExprKind::Str(bytes);
        args.truncate(1);
    };
    walk_program(program, &mut visit);
    diags
}

/// `$N` in an attach point replaced by the N-th positional parameter (the
/// empty string when there is none), `$#` by their count.
pub fn substitute_positional(text: &str, positional: &[String]) -> String {
    if !text.contains('$') {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('#') {
            out.push_str(&positional.len().to_string());
            rest = tail;
            continue;
        }
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            out.push('$');
            rest = after;
            continue;
        }
        let n: usize = after[..digits].parse().unwrap_or(0);
        if let Some(v) = n.checked_sub(1).and_then(|i| positional.get(i)) {
            out.push_str(v);
        }
        rest = &after[digits..];
    }
    out.push_str(rest);
    out
}

/// Calls `f` on every expression of the program (parents before their
/// children, which `f` may have replaced).
fn walk_program(program: &mut Program, f: &mut dyn FnMut(&mut Expr)) {
    for probe in &mut program.probes {
        if let Some(p) = &mut probe.predicate {
            walk_expr(p, f);
        }
        walk_block(&mut probe.body, f);
    }
}

fn walk_block(block: &mut Block, f: &mut dyn FnMut(&mut Expr)) {
    for s in &mut block.stmts {
        walk_stmt(s, f);
    }
}

fn walk_stmt(stmt: &mut Stmt, f: &mut dyn FnMut(&mut Expr)) {
    match &mut stmt.kind {
        StmtKind::Expr(e) => walk_expr(e, f),
        StmtKind::Assign { target, value, .. } => {
            walk_expr(target, f);
            walk_expr(value, f);
        }
        StmtKind::Let { value, .. } => {
            if let Some(v) = value {
                walk_expr(v, f);
            }
        }
        StmtKind::If {
            cond,
            then,
            otherwise,
        } => {
            walk_expr(cond, f);
            walk_block(then, f);
            if let Some(o) = otherwise {
                walk_block(o, f);
            }
        }
        StmtKind::Unroll { count: e, body } | StmtKind::While { cond: e, body } => {
            walk_expr(e, f);
            walk_block(body, f);
        }
        StmtKind::ForMap { map, body, .. } => {
            walk_expr(map, f);
            walk_block(body, f);
        }
        StmtKind::ForRange {
            start, end, body, ..
        } => {
            walk_expr(start, f);
            walk_expr(end, f);
            walk_block(body, f);
        }
        StmtKind::Break | StmtKind::Continue | StmtKind::Return => {}
    }
}

fn walk_expr(expr: &mut Expr, f: &mut dyn FnMut(&mut Expr)) {
    f(expr);
    match &mut expr.kind {
        ExprKind::Int(_)
        | ExprKind::Str(_)
        | ExprKind::Bool(_)
        | ExprKind::Ident(_)
        | ExprKind::Var(_)
        | ExprKind::SizeofType(_)
        | ExprKind::Offsetof { .. } => {}
        ExprKind::Map { keys: list, .. }
        | ExprKind::Call { args: list, .. }
        | ExprKind::Tuple(list) => {
            for e in list {
                walk_expr(e, f);
            }
        }
        ExprKind::Unary { expr: e, .. }
        | ExprKind::Field { expr: e, .. }
        | ExprKind::TupleIndex { expr: e, .. }
        | ExprKind::Cast { expr: e, .. }
        | ExprKind::IncDec { target: e, .. } => walk_expr(e, f),
        ExprKind::Binary { lhs, rhs, .. }
        | ExprKind::Index {
            expr: lhs,
            index: rhs,
        } => {
            walk_expr(lhs, f);
            walk_expr(rhs, f);
        }
        ExprKind::Ternary {
            cond,
            then,
            otherwise,
        } => {
            walk_expr(cond, f);
            walk_expr(then, f);
            walk_expr(otherwise, f);
        }
        ExprKind::Record(fields) => {
            for (_, e) in fields {
                walk_expr(e, f);
            }
        }
        ExprKind::Block { stmts, value } => {
            for s in stmts {
                walk_stmt(s, f);
            }
            if let Some(v) = value {
                walk_expr(v, f);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positional_in_attach_points() {
        let p = ["100".to_string(), "x".to_string()];
        assert_eq!(substitute_positional("i:ms:$1", &p), "i:ms:100");
        assert_eq!(substitute_positional("t:$2:$3", &p), "t:x:");
        assert_eq!(substitute_positional("i:s:$#", &p), "i:s:2");
        assert_eq!(substitute_positional("u:a$b", &p), "u:a$b");
    }

    /// The first statement of `src` (an expression) after `pass` ran with
    /// `words`, or the first error's message.
    fn after_pass(
        src: &str,
        words: &[&str],
        pass: fn(&mut Program, &[String]) -> Vec<Diagnostic>,
    ) -> Result<ExprKind, String> {
        let file = ferret_syntax::SourceFile::new("stdin", src);
        let mut program = ferret_syntax::parse(&file).expect("parses");
        let words: Vec<String> = words.iter().map(|s| s.to_string()).collect();
        if let Some(d) = pass(&mut program, &words).first() {
            return Err(d.message.clone());
        }
        let StmtKind::Expr(e) = &program.probes[0].body.stmts[0].kind else {
            panic!("not an expression");
        };
        Ok(e.kind.clone())
    }

    fn value(src: &str, given: &[&str]) -> Result<ExprKind, String> {
        after_pass(src, given, resolve_getopt)
    }

    #[test]
    fn getopt_types_come_from_defaults() {
        let b = "begin { getopt(\"v\"); }";
        assert_eq!(value(b, &[]), Ok(ExprKind::Bool(false)));
        assert_eq!(value(b, &["v"]), Ok(ExprKind::Bool(true)));
        assert_eq!(value(b, &["v=0"]), Ok(ExprKind::Bool(false)));
        let n = "begin { getopt(\"n\", 35, \"depth\"); }";
        assert_eq!(value(n, &[]), Ok(ExprKind::Int(35)));
        assert_eq!(value(n, &["n=7"]), Ok(ExprKind::Int(7)));
        assert_eq!(
            value(n, &["n=x"]),
            Err("program command line option --n expects an integer (value: x)".into())
        );
        assert_eq!(
            value(n, &["n"]),
            Err("program command line option --n expects an integer (value: true)".into())
        );
        let s = "begin { getopt(\"s\", \"hi\"); }";
        assert_eq!(value(s, &["s=bye"]), Ok(ExprKind::Str(b"bye".to_vec())));
        assert!(matches!(
            value("begin { getopt(\"i\", -1); }", &[]),
            Ok(ExprKind::Unary {
                op: UnaryOp::Neg,
                ..
            })
        ));
    }

    #[test]
    fn str_of_a_positional_parameter_is_its_text() {
        let str_arg = |src: &str, positional: &[&str]| {
            let call = after_pass(src, positional, resolve_positional_strings)?;
            let ExprKind::Call { args, .. } = call else {
                panic!("not a call");
            };
            match &args[0].kind {
                ExprKind::Str(s) => Ok::<_, String>(String::from_utf8_lossy(s).into_owned()),
                other => panic!("not a string: {other:?}"),
            }
        };
        assert_eq!(str_arg("begin { str($1); }", &["21"]), Ok("21".into()));
        assert_eq!(
            str_arg("begin { str($1 + 1); }", &["hello"]),
            Ok("ello".into())
        );
        assert_eq!(
            str_arg("begin { str($1, 2); }", &["hello"]),
            Ok("he".into())
        );
        assert_eq!(str_arg("begin { str($2); }", &["x"]), Ok("".into()));
        assert_eq!(
            str_arg("begin { str($1 + 9); }", &["hello"]),
            Err("str($1 + 9) is past the end of $1, which has 5 characters".into())
        );
    }

    #[test]
    fn unknown_options_list_the_known_ones() {
        let file = ferret_syntax::SourceFile::new(
            "stdin",
            "begin { getopt(\"depth\", 35, \"Maximum depth\"); getopt(\"v\"); }",
        );
        let program = ferret_syntax::parse(&file).expect("parses");
        assert_eq!(check_named(&program, &["depth=3".into()]), Ok(()));
        assert_eq!(
            check_named(&program, &["dpth=3".into()]),
            Err("unexpected program option --dpth\nthe program's options:\n  --depth  Maximum depth\n  --v"
                .into())
        );
    }
}
