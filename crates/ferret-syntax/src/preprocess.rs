//! The C preprocessor subset bpftrace scripts use, run before lexing:
//! `#define` (object-like and function-like), `#undef`, `#include`
//! (skipped: kernel types come from BTF), `#if`/`#ifdef`/`#ifndef`/
//! `#elif`/`#else`/`#endif` with `BPFTRACE_HAVE_BTF` defined, `#error`,
//! and a `#!` first line.
//!
//! Written by hand: the C preprocessor crates need a C toolchain at run time
//! or preprocess whole C translation units with their own lexers; ferret only
//! needs this subset, and it must map every expanded span back to the
//! source so diagnostics point at what the user wrote. Directive lines and
//! skipped regions are blanked with spaces, so offsets outside macro uses do
//! not move; each macro use is recorded as an [`Expansion`].

use std::collections::HashMap;

use crate::diag::{Expansion, closest};
use crate::{Diagnostic, SourceFile, Span};

/// Macros every script sees, as bpftrace defines them.
const PREDEFINED: &[(&str, &str)] = &[("BPFTRACE_HAVE_BTF", "1")];

/// Expansion stops beyond this nesting or output size, so a recursive or
/// exponential set of macros ends with an error instead of exhausting memory.
const MAX_DEPTH: usize = 64;
const MAX_EXPANSION: usize = 1 << 20;

const DIRECTIVES: &[&str] = &[
    "define", "undef", "include", "if", "ifdef", "ifndef", "elif", "else", "endif", "error",
    "warning", "pragma", "line",
];

/// The result of preprocessing a script.
#[derive(Debug)]
pub struct Preprocessed {
    /// The text to parse; its spans render against the original text.
    pub file: SourceFile,
    /// `#include`d files, as written (`<linux/sched.h>`), which were not read
    /// because ferret takes kernel types from BTF.
    pub skipped_includes: Vec<String>,
    /// `#warning` lines.
    pub warnings: Vec<Diagnostic>,
}

/// Preprocesses `file`. Errors point into the text as written.
pub fn preprocess(file: &SourceFile) -> Result<Preprocessed, Vec<Diagnostic>> {
    let mut p = Pre::new(&file.text);
    p.run();
    if !p.diags.is_empty() {
        return Err(p.diags);
    }
    let out = Preprocessed {
        file: if p.expansions.is_empty() {
            // Offsets did not move: only blanks replaced directives.
            SourceFile::new(file.name.clone(), p.out)
        } else {
            SourceFile::preprocessed(file.name.clone(), p.out, file.text.clone(), p.expansions)
        },
        skipped_includes: p.includes,
        warnings: p.warnings,
    };
    Ok(out)
}

#[derive(Debug, Clone)]
struct Define {
    /// `None` for an object-like macro; the parameter names otherwise, with
    /// `__VA_ARGS__` last for a variadic one.
    params: Option<Vec<String>>,
    body: String,
}

struct Cond {
    /// The `#if`/`#ifdef`/`#ifndef` line, for an unterminated one.
    span: Span,
    /// Whether the enclosing region is kept.
    outer: bool,
    /// Whether the current branch is kept.
    active: bool,
    /// Whether some branch was already kept.
    taken: bool,
    seen_else: bool,
}

struct Pre<'a> {
    src: &'a str,
    out: String,
    expansions: Vec<Expansion>,
    defines: HashMap<String, Define>,
    conds: Vec<Cond>,
    diags: Vec<Diagnostic>,
    warnings: Vec<Diagnostic>,
    includes: Vec<String>,
}

fn is_ident_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_'
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Length of the identifier at the start of `s`.
fn ident_len(s: &str) -> usize {
    s.bytes().position(|b| !is_ident(b)).unwrap_or(s.len())
}

/// Length of the string literal at the start of `s` (which starts with
/// `"`), up to its closing quote or the end of the line.
fn string_len(s: &str) -> usize {
    let b = s.as_bytes();
    let mut i = 1;
    while i < b.len() {
        match b[i] {
            b'\\' if i + 1 < b.len() && b[i + 1] != b'\n' => i += 2,
            b'"' => return i + 1,
            b'\n' => return i,
            _ => i += 1,
        }
    }
    b.len()
}

/// The length of the token at the start of `rest` (a string, a number
/// with its suffix like `5ms`, an identifier or one character), and
/// whether it is an identifier, which may name a macro.
fn token_len(rest: &str) -> (usize, bool) {
    let b = rest.as_bytes()[0];
    if b == b'"' {
        (string_len(rest), false)
    } else if b.is_ascii_digit() {
        (ident_len(rest), false)
    } else if is_ident_start(b) {
        (ident_len(rest), true)
    } else {
        (rest.chars().next().map_or(1, char::len_utf8), false)
    }
}

/// Whether an identifier ending just before `at` in `text` is a
/// variable, map or field name, which bpftrace never expands.
fn is_name_position(text: &str, at: usize) -> bool {
    let before = text[..at].trim_end_matches([' ', '\t']);
    before.ends_with('.') && !before.ends_with("..")
        || before.ends_with("->")
        || text[..at].ends_with(['$', '@'])
}

impl<'a> Pre<'a> {
    fn new(src: &'a str) -> Self {
        let defines = PREDEFINED
            .iter()
            .map(|&(name, body)| {
                (
                    name.to_owned(),
                    Define {
                        params: None,
                        body: body.to_owned(),
                    },
                )
            })
            .collect();
        Self {
            src,
            out: String::with_capacity(src.len()),
            expansions: Vec::new(),
            defines,
            conds: Vec::new(),
            diags: Vec::new(),
            warnings: Vec::new(),
            includes: Vec::new(),
        }
    }

    fn active(&self) -> bool {
        self.conds.last().is_none_or(|c| c.active)
    }

    /// Copies `src[from..to]` as blanks, keeping line breaks.
    fn blank(&mut self, from: usize, to: usize) {
        for b in self.src[from..to].bytes() {
            self.out.push(if b == b'\n' { '\n' } else { ' ' });
        }
    }

    fn copy(&mut self, from: usize, to: usize) {
        self.out.push_str(&self.src[from..to]);
    }

    fn run(&mut self) {
        let src = self.src;
        let bytes = src.as_bytes();
        let mut i = 0;
        if src.starts_with("#!") {
            i = src.find('\n').unwrap_or(src.len());
            self.blank(0, i);
        }
        let mut line_start = true;
        while i < bytes.len() {
            let b = bytes[i];
            let rest = &src[i..];
            if b == b'#' && line_start {
                let end = self.logical_line_end(i);
                self.directive(i, end);
                self.blank(i, end);
                i = end;
                continue;
            }
            // Comments are kept for the lexer, or blanked in a skipped region.
            let comment_end = if let Some(body) = rest.strip_prefix("/*") {
                Some(body.find("*/").map_or(src.len(), |e| i + e + 4))
            } else if rest.starts_with("//") {
                Some(rest.find('\n').map_or(src.len(), |e| i + e))
            } else {
                None
            };
            if let Some(end) = comment_end {
                if self.active() {
                    self.copy(i, end);
                } else {
                    self.blank(i, end);
                }
                i = end;
                continue;
            }
            if b == b'\n' {
                line_start = true;
                self.out.push('\n');
                i += 1;
                continue;
            }
            if b == b' ' || b == b'\t' || b == b'\r' {
                self.out.push(char::from(b));
                i += 1;
                continue;
            }
            line_start = false;
            if !self.active() {
                let len = rest.chars().next().map_or(1, char::len_utf8);
                self.blank(i, i + len);
                i += len;
                continue;
            }
            let (len, ident) = token_len(rest);
            if ident && let Some(end) = self.expand_use(i, len) {
                i = end;
                continue;
            }
            self.copy(i, i + len);
            i += len;
        }
        for c in std::mem::take(&mut self.conds) {
            self.diags.push(
                Diagnostic::error(c.span, "unterminated conditional directive")
                    .with_label("this has no matching '#endif'")
                    .with_help("close it with '#endif'"),
            );
        }
    }

    /// End of the directive starting at `start`: the end of its line,
    /// following `\` continuations.
    fn logical_line_end(&self, start: usize) -> usize {
        let src = self.src;
        let mut i = start;
        loop {
            let Some(nl) = src[i..].find('\n') else {
                return src.len();
            };
            let line = src[i..i + nl].trim_end_matches('\r');
            if !line.ends_with('\\') {
                return i + nl;
            }
            i += nl + 1;
        }
    }

    /// Expands the macro use whose name is `src[at..at + len]`, if it is
    /// one, and returns where the use ends in the source.
    fn expand_use(&mut self, at: usize, len: usize) -> Option<usize> {
        let src = self.src;
        let name = &src[at..at + len];
        let define = self.defines.get(name)?.clone();
        if is_name_position(src, at) {
            return None;
        }
        let mut end = at + len;
        let args = match &define.params {
            None => None,
            Some(_) => {
                let open = end + src[end..].len() - src[end..].trim_start().len();
                if !src[open..].starts_with('(') {
                    // A function-like macro's name without arguments is
                    // left alone, as in C.
                    return None;
                }
                match split_args(&src[open..]) {
                    Some((args, used)) => {
                        end = open + used;
                        Some(args)
                    }
                    None => {
                        self.diags.push(
                            Diagnostic::error(
                                Span::new(at, src.len()),
                                format!("unterminated argument list of macro '{name}'"),
                            )
                            .with_label("this '(' is never closed"),
                        );
                        return Some(src.len());
                    }
                }
            }
        };
        let span = Span::new(at, end);
        let mut disabled = vec![name.to_owned()];
        let mut budget = MAX_EXPANSION;
        let text = self
            .substitute(&define, name, args, &mut disabled, 0, &mut budget)
            .and_then(|body| self.expand_text(&body, &mut disabled, 1, &mut budget));
        match text {
            Ok(text) => {
                self.expansions.push(Expansion {
                    at: u32::try_from(self.out.len()).unwrap_or(u32::MAX),
                    len: u32::try_from(text.len()).unwrap_or(u32::MAX),
                    written: span,
                });
                self.out.push_str(&text);
            }
            Err(msg) => {
                self.diags
                    .push(Diagnostic::error(span, msg).with_label("in this macro use"));
                self.blank(at, end);
            }
        }
        Some(end)
    }

    /// A macro's body with its parameters replaced by the (expanded)
    /// arguments.
    fn substitute(
        &self,
        define: &Define,
        name: &str,
        args: Option<Vec<String>>,
        disabled: &mut Vec<String>,
        depth: usize,
        budget: &mut usize,
    ) -> Result<String, String> {
        let (Some(params), Some(mut args)) = (&define.params, args) else {
            return Ok(define.body.clone());
        };
        let variadic = params.last().is_some_and(|p| p == "__VA_ARGS__");
        let fixed = params.len() - usize::from(variadic);
        // `F()` passes no arguments, not one empty argument.
        if args.len() == 1 && args[0].trim().is_empty() && fixed == 0 {
            args.clear();
        }
        if args.len() < fixed || (!variadic && args.len() > fixed) {
            let takes = if variadic {
                format!("at least {fixed}")
            } else {
                fixed.to_string()
            };
            return Err(format!(
                "macro '{name}' takes {takes} argument{}, {} given",
                if fixed == 1 && !variadic { "" } else { "s" },
                args.len()
            ));
        }
        if variadic {
            let rest = args.split_off(fixed).join(",");
            args.push(rest);
        }
        let mut expanded = Vec::with_capacity(args.len());
        for a in &args {
            expanded.push(self.expand_text(a.trim(), disabled, depth + 1, budget)?);
        }
        let body = &define.body;
        let mut out = String::with_capacity(body.len());
        let mut i = 0;
        while i < body.len() {
            let rest = &body[i..];
            let (len, ident) = token_len(rest);
            match params.iter().position(|p| ident && *p == rest[..len]) {
                Some(k) => out.push_str(&expanded[k]),
                None => out.push_str(&rest[..len]),
            }
            i += len;
        }
        Ok(out)
    }

    /// Rescans text produced by an expansion, expanding the macros in it
    /// except those being expanded already (`disabled`).
    fn expand_text(
        &self,
        text: &str,
        disabled: &mut Vec<String>,
        depth: usize,
        budget: &mut usize,
    ) -> Result<String, String> {
        if depth > MAX_DEPTH {
            return Err(format!(
                "macro expansion nested more than {MAX_DEPTH} levels deep"
            ));
        }
        let mut out = String::with_capacity(text.len());
        let mut i = 0;
        while i < text.len() {
            let rest = &text[i..];
            let (len, ident) = token_len(rest);
            if ident {
                let name = &rest[..len];
                let define = self
                    .defines
                    .get(name)
                    .filter(|_| !disabled.iter().any(|d| d == name) && !is_name_position(text, i));
                if let Some(define) = define {
                    let mut end = i + len;
                    let args = if define.params.is_some() {
                        let open = end + text[end..].len() - text[end..].trim_start().len();
                        match text[open..]
                            .starts_with('(')
                            .then(|| split_args(&text[open..]))
                            .flatten()
                        {
                            Some((args, used)) => {
                                end = open + used;
                                Some(args)
                            }
                            None => {
                                out.push_str(name);
                                i += len;
                                continue;
                            }
                        }
                    } else {
                        None
                    };
                    let define = define.clone();
                    disabled.push(name.to_owned());
                    let body = self.substitute(&define, name, args, disabled, depth, budget)?;
                    let expanded = self.expand_text(&body, disabled, depth + 1, budget);
                    disabled.pop();
                    let expanded = expanded?;
                    // Every expansion counts against one budget per use.
                    *budget = budget.checked_sub(expanded.len()).ok_or_else(|| {
                        format!("macro expansion is larger than {MAX_EXPANSION} bytes")
                    })?;
                    out.push_str(&expanded);
                    i = end;
                    continue;
                }
            }
            out.push_str(&rest[..len]);
            i += len;
        }
        Ok(out)
    }

    // ---- directives ----

    /// Handles the directive `src[start..end]` (which begins with `#`).
    fn directive(&mut self, start: usize, end: usize) {
        let line = strip_comments(&self.src[start + 1..end]);
        let line = line.trim_start();
        let name_len = ident_len(line);
        let name = &line[..name_len];
        let arg = line[name_len..].trim();
        let span = Span::new(start, end);
        let name_span = {
            let at = start + 1 + self.src[start + 1..end].find(name).unwrap_or(0);
            Span::new(start, at + name_len)
        };
        match name {
            "if" | "ifdef" | "ifndef" => {
                let outer = self.active();
                let active = outer && self.condition(name, arg, span);
                self.conds.push(Cond {
                    span: name_span,
                    outer,
                    active,
                    taken: active,
                    seen_else: false,
                });
            }
            "elif" | "else" => {
                let Some(c) = self.conds.last() else {
                    self.diags.push(
                        Diagnostic::error(name_span, format!("'#{name}' without '#if'"))
                            .with_label("no '#if' before this"),
                    );
                    return;
                };
                if c.seen_else {
                    self.diags.push(
                        Diagnostic::error(name_span, format!("'#{name}' after '#else'"))
                            .with_label("the '#else' branch must come last"),
                    );
                    return;
                }
                let (outer, taken) = (c.outer, c.taken);
                let active = if name == "else" {
                    outer && !taken
                } else {
                    outer && !taken && self.condition("if", arg, span)
                };
                if let Some(c) = self.conds.last_mut() {
                    c.active = active;
                    c.taken = taken || active;
                    c.seen_else = name == "else";
                }
            }
            "endif" => {
                if self.conds.pop().is_none() {
                    self.diags.push(
                        Diagnostic::error(name_span, "'#endif' without '#if'")
                            .with_label("no '#if' before this"),
                    );
                }
            }
            _ if !self.active() => {}
            "" | "pragma" | "line" => {}
            "define" => self.define(arg, span),
            "undef" => {
                self.defines.remove(arg);
            }
            "include" => {
                let ok = (arg.starts_with('<') && arg.ends_with('>'))
                    || (arg.len() >= 2 && arg.starts_with('"') && arg.ends_with('"'));
                if ok {
                    self.includes.push(arg.to_owned());
                } else {
                    self.diags.push(
                        Diagnostic::error(span, "expected <file> or \"file\" after '#include'")
                            .with_label("malformed #include"),
                    );
                }
            }
            "error" => self
                .diags
                .push(Diagnostic::error(span, format!("#error {arg}")).with_label("#error")),
            "warning" => self
                .warnings
                .push(Diagnostic::warning(span, format!("#warning {arg}")).with_label("#warning")),
            other => {
                let mut d = Diagnostic::error(
                    name_span,
                    format!("unknown preprocessor directive '#{other}'"),
                )
                .with_label("not a directive");
                if let Some(best) = closest(other, DIRECTIVES.iter().copied()) {
                    d = d.with_help(format!("did you mean '#{best}'?"));
                }
                self.diags.push(d);
            }
        }
    }

    /// `#define NAME body` or `#define NAME(params) body`.
    fn define(&mut self, arg: &str, span: Span) {
        let name_len = ident_len(arg);
        if name_len == 0 || !is_ident_start(arg.as_bytes()[0]) {
            self.diags.push(
                Diagnostic::error(span, "expected a macro name after '#define'")
                    .with_label("malformed #define")
                    .with_help("write '#define NAME value' or '#define NAME(a, b) expression'"),
            );
            return;
        }
        let name = &arg[..name_len];
        let rest = &arg[name_len..];
        let (params, body) = if let Some(list) = rest.strip_prefix('(') {
            let Some(close) = list.find(')') else {
                self.diags.push(
                    Diagnostic::error(
                        span,
                        format!("macro '{name}' has no ')' after its parameters"),
                    )
                    .with_label("malformed #define"),
                );
                return;
            };
            let mut params: Vec<String> = Vec::new();
            let inner = list[..close].trim();
            if !inner.is_empty() {
                for p in inner.split(',') {
                    let p = p.trim();
                    let p = if p == "..." { "__VA_ARGS__" } else { p };
                    if p.is_empty() || ident_len(p) != p.len() || params.iter().any(|q| q == p) {
                        self.diags.push(
                            Diagnostic::error(
                                span,
                                format!("invalid parameter '{p}' of macro '{name}'"),
                            )
                            .with_label("malformed #define"),
                        );
                        return;
                    }
                    params.push(p.to_owned());
                }
            }
            (Some(params), list[close + 1..].trim())
        } else {
            (None, rest.trim())
        };
        self.defines.insert(
            name.to_owned(),
            Define {
                params,
                body: body.to_owned(),
            },
        );
    }

    /// Evaluates the condition of `#if`, `#ifdef` or `#ifndef`.
    fn condition(&mut self, kind: &str, arg: &str, span: Span) -> bool {
        if kind != "if" {
            let name = &arg[..ident_len(arg)];
            if name.is_empty() {
                self.diags.push(
                    Diagnostic::error(span, format!("expected a macro name after '#{kind}'"))
                        .with_label(format!("malformed #{kind}")),
                );
                return false;
            }
            return self.defines.contains_key(name) == (kind == "ifdef");
        }
        // `defined` is resolved before expansion, as in C.
        let mut resolved = String::with_capacity(arg.len());
        let mut rest = arg;
        while let Some(pos) = find_word(rest, "defined") {
            resolved.push_str(&rest[..pos]);
            let after = rest[pos + "defined".len()..].trim_start();
            let (inner, used) = match after.strip_prefix('(') {
                Some(p) => match p.find(')') {
                    Some(close) => (p[..close].trim(), after.len() - p.len() + close + 1),
                    None => ("", 0),
                },
                None => (&after[..ident_len(after)], ident_len(after)),
            };
            if inner.is_empty() || ident_len(inner) != inner.len() {
                self.diags.push(
                    Diagnostic::error(span, "expected a macro name after 'defined'")
                        .with_label("malformed #if"),
                );
                return false;
            }
            resolved.push_str(if self.defines.contains_key(inner) {
                " 1 "
            } else {
                " 0 "
            });
            rest = &after[used..];
        }
        resolved.push_str(rest);
        let mut budget = MAX_EXPANSION;
        let expanded = match self.expand_text(&resolved, &mut Vec::new(), 0, &mut budget) {
            Ok(e) => e,
            Err(msg) => {
                self.diags
                    .push(Diagnostic::error(span, msg).with_label("in this condition"));
                return false;
            }
        };
        match eval_condition(&expanded) {
            Ok(v) => v != 0,
            Err(msg) => {
                self.diags.push(
                    Diagnostic::error(span, format!("invalid #if condition: {msg}"))
                        .with_label("cannot evaluate this"),
                );
                false
            }
        }
    }
}

/// The directive text without comments and with `\` continuations joined.
fn strip_comments(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut i = 0;
    while i < line.len() {
        let rest = &line[i..];
        if rest.starts_with("//") {
            break;
        }
        if let Some(comment) = rest.strip_prefix("/*") {
            i += comment.find("*/").map_or(rest.len(), |e| e + 4);
            out.push(' ');
            continue;
        }
        if rest.starts_with('"') {
            let len = string_len(rest);
            out.push_str(&rest[..len]);
            i += len;
            continue;
        }
        if let Some(after) = rest.strip_prefix('\\')
            && after.trim_start_matches('\r').starts_with('\n')
        {
            out.push(' ');
            i += 1 + after.find('\n').map_or(0, |n| n + 1);
            continue;
        }
        let c = rest.chars().next().unwrap_or(' ');
        out.push(if c == '\n' || c == '\r' { ' ' } else { c });
        i += c.len_utf8();
    }
    out
}

/// Position of `word` as a whole identifier in `text`.
fn find_word(text: &str, word: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(pos) = text[from..].find(word) {
        let at = from + pos;
        let before_ok = at == 0 || !is_ident(text.as_bytes()[at - 1]);
        let after_ok = text
            .as_bytes()
            .get(at + word.len())
            .is_none_or(|&b| !is_ident(b));
        if before_ok && after_ok {
            return Some(at);
        }
        from = at + word.len();
    }
    None
}

/// Splits `( a, (b, c), "d,e" )` into its top-level arguments; returns them
/// and the length used, or `None` when the list is not closed.
fn split_args(text: &str) -> Option<(Vec<String>, usize)> {
    let mut args = Vec::new();
    let mut depth = 0usize;
    let mut current = String::new();
    let mut i = 0;
    while i < text.len() {
        let rest = &text[i..];
        let c = rest.chars().next()?;
        match c {
            '"' => {
                let len = string_len(rest);
                current.push_str(&rest[..len]);
                i += len;
                continue;
            }
            '(' => {
                depth += 1;
                if depth > 1 {
                    current.push(c);
                }
            }
            ')' => {
                depth -= 1;
                if depth == 0 {
                    args.push(current);
                    return Some((args, i + 1));
                }
                current.push(c);
            }
            ',' if depth == 1 => args.push(std::mem::take(&mut current)),
            '\n' | '\r' => current.push(' '),
            _ => current.push(c),
        }
        i += c.len_utf8();
    }
    None
}

/// Evaluates a `#if` expression after macro expansion: C's integer
/// operators; identifiers left over are 0.
fn eval_condition(text: &str) -> Result<i64, String> {
    let tokens = cond_tokens(text)?;
    let mut pos = 0;
    let v = cond_expr(&tokens, &mut pos, 0)?;
    match tokens.get(pos) {
        None => Ok(v),
        Some(t) => Err(format!("unexpected '{t}'")),
    }
}

fn cond_tokens(text: &str) -> Result<Vec<String>, String> {
    const OPS: &[&str] = &[
        "<<", ">>", "<=", ">=", "==", "!=", "&&", "||", "(", ")", "!", "~", "*", "/", "%", "+",
        "-", "<", ">", "&", "^", "|", "?", ":",
    ];
    let mut tokens = Vec::new();
    let mut rest = text.trim_start();
    while !rest.is_empty() {
        let b = rest.as_bytes()[0];
        let len = if is_ident(b) {
            ident_len(rest)
        } else if let Some(op) = OPS.iter().find(|op| rest.starts_with(**op)) {
            op.len()
        } else {
            return Err(format!(
                "unexpected '{}'",
                rest.chars().next().unwrap_or(' ')
            ));
        };
        tokens.push(rest[..len].to_owned());
        rest = rest[len..].trim_start();
    }
    Ok(tokens)
}

fn cond_binary_prec(op: &str) -> Option<u8> {
    Some(match op {
        "||" => 1,
        "&&" => 2,
        "|" => 3,
        "^" => 4,
        "&" => 5,
        "==" | "!=" => 6,
        "<" | ">" | "<=" | ">=" => 7,
        "<<" | ">>" => 8,
        "+" | "-" => 9,
        "*" | "/" | "%" => 10,
        _ => return None,
    })
}

/// Precedence climbing over `tokens[pos..]` for operators binding tighter
/// than `min`; `?:` binds loosest.
fn cond_expr(tokens: &[String], pos: &mut usize, min: u8) -> Result<i64, String> {
    let mut lhs = cond_unary(tokens, pos)?;
    loop {
        let Some(op) = tokens.get(*pos) else {
            return Ok(lhs);
        };
        if op == "?" && min == 0 {
            *pos += 1;
            let then = cond_expr(tokens, pos, 0)?;
            if tokens.get(*pos).map(String::as_str) != Some(":") {
                return Err("expected ':' in '?:'".into());
            }
            *pos += 1;
            let otherwise = cond_expr(tokens, pos, 0)?;
            lhs = if lhs != 0 { then } else { otherwise };
            continue;
        }
        let Some(prec) = cond_binary_prec(op) else {
            return Ok(lhs);
        };
        if prec <= min {
            return Ok(lhs);
        }
        let op = op.clone();
        *pos += 1;
        let rhs = cond_expr(tokens, pos, prec)?;
        lhs = match op.as_str() {
            "||" => i64::from(lhs != 0 || rhs != 0),
            "&&" => i64::from(lhs != 0 && rhs != 0),
            "|" => lhs | rhs,
            "^" => lhs ^ rhs,
            "&" => lhs & rhs,
            "==" => i64::from(lhs == rhs),
            "!=" => i64::from(lhs != rhs),
            "<" => i64::from(lhs < rhs),
            ">" => i64::from(lhs > rhs),
            "<=" => i64::from(lhs <= rhs),
            ">=" => i64::from(lhs >= rhs),
            "<<" => lhs.wrapping_shl(rhs as u32),
            ">>" => lhs.wrapping_shr(rhs as u32),
            "+" => lhs.wrapping_add(rhs),
            "-" => lhs.wrapping_sub(rhs),
            "*" => lhs.wrapping_mul(rhs),
            "/" | "%" if rhs == 0 => return Err("division by zero".into()),
            "/" => lhs.wrapping_div(rhs),
            _ => lhs.wrapping_rem(rhs),
        };
    }
}

fn cond_unary(tokens: &[String], pos: &mut usize) -> Result<i64, String> {
    let Some(t) = tokens.get(*pos) else {
        return Err("expected a value".into());
    };
    *pos += 1;
    match t.as_str() {
        "!" => Ok(i64::from(cond_unary(tokens, pos)? == 0)),
        "~" => Ok(!cond_unary(tokens, pos)?),
        "-" => Ok(cond_unary(tokens, pos)?.wrapping_neg()),
        "+" => cond_unary(tokens, pos),
        "(" => {
            let v = cond_expr(tokens, pos, 0)?;
            if tokens.get(*pos).map(String::as_str) != Some(")") {
                return Err("expected ')'".into());
            }
            *pos += 1;
            Ok(v)
        }
        t if t.as_bytes()[0].is_ascii_digit() => {
            let digits = t.trim_end_matches(['u', 'U', 'l', 'L']);
            let parsed = if let Some(hex) = digits
                .strip_prefix("0x")
                .or_else(|| digits.strip_prefix("0X"))
            {
                u64::from_str_radix(hex, 16)
            } else if digits.len() > 1 && digits.starts_with('0') {
                u64::from_str_radix(&digits[1..], 8)
            } else {
                digits.parse()
            };
            parsed
                .map(|v| v as i64)
                .map_err(|_| format!("invalid number '{t}'"))
        }
        t if is_ident_start(t.as_bytes()[0]) => Ok(0),
        t => Err(format!("unexpected '{t}'")),
    }
}

#[cfg(test)]
mod tests;
