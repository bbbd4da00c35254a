//! Recursive-descent parser producing [`crate::ast::Program`]. Binary
//! operators use an operator-precedence stack over C's precedence table, so
//! long chains like `a + b + c + ...` need no recursion.
//!
//! Attach points are context-sensitive, so the top level reads them raw from
//! the lexer (a run of characters up to whitespace, `,`, `{` or a `/` that
//! opens a predicate; `/` belongs to the attach point when it follows `:` or
//! continues a path that began with `:/`) and switches to tokens for the
//! predicate and body.

use std::collections::VecDeque;

use crate::ast::{
    AttachPoint, BinOp, Block, Expr, ExprKind, Probe, Program, Stmt, StmtKind, TypeName, UnaryOp,
};
use crate::lexer::{Lexer, Token, TokenKind as T};
use crate::{Diagnostic, SourceFile, Span};

/// How deeply blocks and expressions may nest (each binary operator and
/// postfix operation in a chain also counts one level). Later stages walk the
/// tree recursively, so an unbounded tree could overflow their stacks.
const MAX_DEPTH: usize = 256;

/// Parsing stops once this many errors were found.
const MAX_ERRORS: usize = 32;

const KEYWORDS: &[&str] = &[
    "if", "else", "while", "for", "unroll", "let", "break", "continue", "return", "true", "false",
    "sizeof", "offsetof",
];

/// Top-level constructs of bpftrace that are not probes and that ferret
/// does not parse yet.
const TOP_LEVEL_WORDS: &[&str] = &["struct", "union", "enum"];

/// Words that can only start a type, so `(` followed by one is a cast.
const TYPE_WORDS: &[&str] = &[
    "bool", "string", "buffer", "void", "int8", "int16", "int32", "int64", "uint8", "uint16",
    "uint32", "uint64", "struct", "union", "enum",
];

/// Marks a parse failure whose diagnostic has already been recorded.
struct Failed;

type PResult<T> = Result<T, Failed>;

/// Stack for the parsing thread. Nesting is capped at [`MAX_DEPTH`] levels,
/// which in unoptimised builds needs a few megabytes of stack, more than a
/// test thread's default 2 MiB. Only the pages actually touched are used.
const PARSER_STACK: usize = 16 << 20;

/// Parses a whole script. On failure returns every error found (at least
/// one), ordered by position.
pub fn parse(file: &SourceFile) -> Result<Program, Vec<Diagnostic>> {
    // Parse on a thread whose stack is known to hold the deepest nesting we
    // accept, so the caller's stack size cannot turn a deep program into a
    // crash.
    std::thread::scope(|scope| {
        let spawned = std::thread::Builder::new()
            .name("ferret-parse".to_owned())
            .stack_size(PARSER_STACK)
            .spawn_scoped(scope, || parse_here(file));
        match spawned {
            Ok(handle) => match handle.join() {
                Ok(result) => result,
                Err(panic) => std::panic::resume_unwind(panic),
            },
            // Out of threads or memory: the caller's stack is very likely
            // enough for any real program.
            Err(_) => parse_here(file),
        }
    })
}

fn parse_here(file: &SourceFile) -> Result<Program, Vec<Diagnostic>> {
    let mut parser = Parser::new(file);
    let mut program = parser.program();
    let mut errors = parser.errors;
    errors.extend(parser.lexer.take_diags());
    if errors.is_empty() {
        errors = crate::macros::expand(&mut program);
        if errors.is_empty() {
            return Ok(program);
        }
    }
    errors.sort_by_key(|d| (d.span.start, d.span.end));
    // Re-lexing after the parser drops its lookahead can report a lexer
    // error twice.
    let mut unique: Vec<Diagnostic> = Vec::with_capacity(errors.len());
    for d in errors {
        if !unique.contains(&d) {
            unique.push(d);
        }
    }
    Err(unique)
}

struct Parser<'a> {
    text: &'a str,
    lexer: Lexer<'a>,
    lookahead: VecDeque<Token>,
    errors: Vec<Diagnostic>,
    /// End of the last consumed token, for spans of finished nodes.
    prev_end: u32,
    depth: usize,
    depth_reported: bool,
}

impl<'a> Parser<'a> {
    fn new(file: &'a SourceFile) -> Self {
        Self {
            text: &file.text,
            lexer: Lexer::new(&file.text),
            lookahead: VecDeque::new(),
            errors: Vec::new(),
            prev_end: 0,
            depth: 0,
            depth_reported: false,
        }
    }

    // ---- token access ----

    fn fill(&mut self, n: usize) {
        while self.lookahead.len() <= n {
            let token = self.lexer.next_token();
            self.lookahead.push_back(token);
        }
    }

    fn peek(&mut self) -> &Token {
        self.peek_nth(0)
    }

    fn peek_nth(&mut self, n: usize) -> &Token {
        self.fill(n);
        &self.lookahead[n]
    }

    fn peek_kind(&mut self) -> &T {
        &self.peek().kind
    }

    fn bump(&mut self) -> Token {
        self.fill(0);
        let token = match self.lookahead.pop_front() {
            Some(t) => t,
            None => self.lexer.next_token(),
        };
        self.prev_end = token.span.end;
        token
    }

    fn at(&mut self, kind: &T) -> bool {
        self.peek_kind() == kind
    }

    fn eat(&mut self, kind: &T) -> bool {
        let found = self.at(kind);
        if found {
            self.bump();
        }
        found
    }

    fn at_keyword(&mut self, word: &str) -> bool {
        matches!(self.peek_kind(), T::Ident(w) if w == word)
    }

    /// Forgets lookahead tokens and rewinds the lexer to the first of them,
    /// so the next attach point can be read raw.
    fn reset_lookahead(&mut self) {
        if let Some(first) = self.lookahead.front() {
            self.lexer.set_pos(first.span.start as usize);
            self.lookahead.clear();
        }
    }

    fn span_from(&self, start: Span) -> Span {
        Span {
            start: start.start,
            end: self.prev_end.max(start.end),
        }
    }

    // ---- errors ----

    fn too_many_errors(&self) -> bool {
        self.errors.len() + self.lexer.diag_count() >= MAX_ERRORS
    }

    fn describe(&self, token: &Token) -> String {
        let source = self
            .text
            .get(token.span.start as usize..token.span.end as usize)
            .unwrap_or("");
        match &token.kind {
            T::Eof => "end of file".to_owned(),
            T::Ident(w) if KEYWORDS.contains(&w.as_str()) => format!("keyword '{w}'"),
            T::Ident(w) => format!("identifier '{w}'"),
            T::Var(n) => format!("variable '${n}'"),
            T::Map(n) => format!("map '@{n}'"),
            T::Int(_) => format!("integer '{source}'"),
            T::Str(_) if source.chars().count() <= 24 => format!("string {source}"),
            T::Str(_) => "string literal".to_owned(),
            kind => format!("'{}'", kind.symbol().unwrap_or(source)),
        }
    }

    /// `expected X but found Y`, pointing at the found token.
    fn expected(&self, what: &str, found: &Token) -> Diagnostic {
        let mut d = Diagnostic::error(
            found.span,
            format!("expected {what} but found {}", self.describe(found)),
        )
        .with_label(format!("expected {what}"));
        // A lone `=` where a condition should end is a comparison typo.
        if found.kind == T::Assign && matches!(what, "')'" | "'/'") {
            d = d.with_help("did you mean '=='?");
        }
        d
    }

    /// Records an error, unless it is about the end of input after an
    /// unterminated string or comment swallowed the real end, or it follows
    /// a lexical error (a stray character) on the same line.
    fn report(&mut self, d: Diagnostic) {
        let at_eof = d.span.start as usize >= self.text.len();
        if at_eof && self.lexer.saw_unterminated() {
            return;
        }
        if let Some(end) = self.lexer.last_error_end()
            && end <= d.span.start
            && self
                .text
                .get(end as usize..d.span.start as usize)
                .is_some_and(|between| !between.contains('\n'))
        {
            return;
        }
        self.errors.push(d);
    }

    /// Records an error caused by reaching the end of input, unless an
    /// unterminated string or comment is the real cause.
    fn report_eof(&mut self, d: Diagnostic) {
        if !self.lexer.saw_unterminated() {
            self.errors.push(d);
        }
    }

    fn expect(&mut self, kind: &T, what: &str) -> PResult<Token> {
        if self.at(kind) {
            return Ok(self.bump());
        }
        let found = self.peek().clone();
        let d = self.expected(what, &found);
        self.report(d);
        Err(Failed)
    }

    /// Runs `f` one nesting level deeper; levels taken inside `f` by
    /// [`Self::enter`] are given back when it returns.
    fn nested<R>(&mut self, f: impl FnOnce(&mut Self) -> PResult<R>) -> PResult<R> {
        let saved = self.depth;
        let result = self.enter().and_then(|()| f(self));
        self.depth = saved;
        result
    }

    fn enter(&mut self) -> PResult<()> {
        if self.depth < MAX_DEPTH {
            self.depth += 1;
            return Ok(());
        }
        if !self.depth_reported {
            self.depth_reported = true;
            let span = self.peek().span;
            self.report(
                Diagnostic::error(span, "program is nested too deeply")
                    .with_label("nesting limit reached here")
                    .with_help(format!(
                        "at most {MAX_DEPTH} levels of nested blocks and expressions are supported"
                    )),
            );
        }
        Err(Failed)
    }

    // ---- probes ----

    fn program(&mut self) -> Program {
        let mut program = Program::default();
        let mut items = items::Order::default();
        loop {
            self.reset_lookahead();
            self.lexer.skip_trivia();
            if self.lexer.pos() >= self.text.len() || self.too_many_errors() {
                break;
            }
            if self.at_c_definition() {
                match self.c_definition() {
                    Ok(Some(def)) => program.c_definitions.push(def),
                    Ok(None) => {}
                    Err(Failed) => break,
                }
                continue;
            }
            if self.top_level_item(&mut program, &mut items) {
                continue;
            }
            items.saw_main_item();
            match self.probe() {
                Ok(Some(probe)) => program.probes.push(probe),
                Ok(None) => {}
                Err(Failed) => break,
            }
        }
        let probes = &program.probes;
        if probes.is_empty() && self.errors.is_empty() && self.lexer.diag_count() == 0 {
            self.errors.push(
                Diagnostic::error(Span::new(0, 0), "no probes in program")
                    .with_label("expected a probe")
                    .with_help(
                        "a program is one or more probes, like 'begin { printf(\"hello\\n\"); }'",
                    ),
            );
        }
        program
    }

    /// Parses one probe. `Ok(None)` means it was malformed and skipped;
    /// `Err` means parsing should stop.
    fn probe(&mut self) -> PResult<Option<Probe>> {
        let mut attach_points = Vec::new();
        loop {
            self.reset_lookahead();
            match self.lexer.attach_point() {
                Some((text, span)) => {
                    self.prev_end = span.end;
                    attach_points.push(AttachPoint { text, span });
                }
                None => {
                    let found = self.peek().clone();
                    let mut d = self
                        .expected("an attach point like 'begin' or 'kprobe:f'", &found)
                        .with_label("expected a probe");
                    if attach_points.is_empty() {
                        d = match found.kind {
                            T::Semi => d.with_help("a probe's block needs no ';' after it"),
                            T::RBrace => d.with_help("this '}' closes nothing: remove it"),
                            _ => d,
                        };
                    }
                    self.report(d);
                    return self.skip_probe(&found).map(|()| None);
                }
            }
            if !self.eat(&T::Comma) {
                break;
            }
        }
        let Some(first) = attach_points.first() else {
            return Ok(None);
        };
        let start = first.span;
        let first_text = first.text.clone();
        let header = self.span_from(start);

        let mut predicate = None;
        if matches!(self.peek_kind(), T::Slash | T::PredEnd) {
            predicate = self.predicate();
        }

        let found = self.peek().clone();
        match found.kind {
            T::LBrace => {}
            T::Eof => {
                let span = self.span_from(start);
                self.report_eof(
                    Diagnostic::error(span, "expected '{' but found end of file")
                        .with_label("this probe has no body")
                        .with_help("add a block, like '{ printf(\"hit\\n\"); }'"),
                );
                return Ok(None);
            }
            _ if attach_points.len() == 1 && TOP_LEVEL_WORDS.contains(&first_text.as_str()) => {
                self.report(
                    Diagnostic::error(start, format!("'{first_text}' is not supported yet"))
                        .with_label("not a probe")
                        .with_help("only probes are supported at the top level for now"),
                );
                self.skip_definition();
                return Ok(None);
            }
            _ => {
                let mut d = self.expected("'{'", &found);
                if matches!(found.kind, T::Ident(_)) {
                    d = d.with_help(
                        "every probe needs a body '{ ... }'; \
                         separate attach points sharing one body with ','",
                    );
                } else if predicate.is_none() && header.end == found.span.start {
                    d = d.with_help(format!(
                        "'{}' cannot appear in an attach point",
                        self.describe(&found).trim_matches('\'')
                    ));
                }
                self.report(d);
                return self.skip_probe(&found).map(|()| None);
            }
        }
        let body = self.block()?;
        let span = self.span_from(start);
        Ok(Some(Probe {
            attach_points,
            predicate,
            body,
            span,
        }))
    }

    /// Resynchronises after a malformed probe header: parses (and drops) the
    /// next block so its errors are still found, or skips a stray `}`.
    fn skip_probe(&mut self, found: &Token) -> PResult<()> {
        if matches!(found.kind, T::RBrace | T::Semi) {
            self.bump();
            return Ok(());
        }
        self.reset_lookahead();
        if self.lexer.pos() == found.span.start as usize && found.kind != T::LBrace {
            // Step over the offending token so progress is guaranteed.
            self.bump();
            self.reset_lookahead();
        }
        self.lexer.skip_to_open_brace();
        if self.at(&T::LBrace) {
            self.block()?;
        }
        Ok(())
    }

    /// Skips a top-level definition (`config = { .. }`, `struct S { .. };`,
    /// `import "x";`) up to its `;` or closing `}` without parsing it.
    fn skip_definition(&mut self) {
        let mut depth = 0usize;
        loop {
            match self.peek_kind() {
                T::Eof => return,
                T::Semi if depth == 0 => {
                    self.bump();
                    return;
                }
                T::LBrace => depth += 1,
                T::RBrace => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        self.bump();
                        self.eat(&T::Semi);
                        return;
                    }
                }
                _ => {}
            }
            self.bump();
        }
    }

    /// `/expr/`, starting at the opening slash. Returns `None` after
    /// reporting a malformed predicate.
    fn predicate(&mut self) -> Option<Expr> {
        self.bump();
        let result = match self.expr() {
            Ok(e) if self.at(&T::PredEnd) => {
                self.bump();
                return Some(e);
            }
            Ok(_) => {
                let found = self.peek().clone();
                let mut d = self
                    .expected("'/'", &found)
                    .with_label("expected '/' to end the predicate");
                if d.help.is_none() {
                    d = d.with_help(
                        "a predicate is closed by '/' before the '{', like '/pid == 1/'",
                    );
                }
                self.report(d);
                None
            }
            Err(Failed) => None,
        };
        // Skip the rest of the predicate, keeping the body.
        loop {
            match self.peek_kind() {
                T::PredEnd => {
                    self.bump();
                    break;
                }
                T::LBrace | T::Eof => break,
                _ => {
                    self.bump();
                }
            }
        }
        result
    }

    // ---- statements ----

    fn block(&mut self) -> PResult<Block> {
        self.block_and_tail().map(|(block, _)| block)
    }

    /// A block, and whether its last statement is an expression written
    /// without `;` (the value of a block expression).
    fn block_and_tail(&mut self) -> PResult<(Block, bool)> {
        let open = self.expect(&T::LBrace, "'{'")?;
        self.nested(|p| {
            let mut stmts = Vec::new();
            let mut tail = false;
            loop {
                if p.too_many_errors() {
                    return Err(Failed);
                }
                match p.peek_kind() {
                    T::RBrace => {
                        p.bump();
                        break;
                    }
                    T::Eof => {
                        p.report_eof(
                            Diagnostic::error(open.span, "expected '}' but found end of file")
                                .with_label("this '{' is not closed")
                                .with_help("add '}' to close the block"),
                        );
                        break;
                    }
                    T::Semi => {
                        tail = false;
                        p.bump();
                    }
                    _ => match p.stmt() {
                        Ok((stmt, needs_semi)) => {
                            tail = matches!(stmt.kind, StmtKind::Expr(_)) && p.at(&T::RBrace);
                            stmts.push(stmt);
                            if needs_semi && !p.stmt_end() {
                                p.recover_stmt();
                            }
                        }
                        Err(Failed) => p.recover_stmt(),
                    },
                }
            }
            Ok((
                Block {
                    stmts,
                    span: p.span_from(open.span),
                },
                tail,
            ))
        })
    }

    /// `{ stmts; value }` as an expression.
    fn block_expr(&mut self) -> PResult<Expr> {
        let (block, tail) = self.block_and_tail()?;
        let mut stmts = block.stmts;
        let value = match stmts.pop() {
            Some(Stmt {
                kind: StmtKind::Expr(e),
                ..
            }) if tail => Some(Box::new(e)),
            Some(other) => {
                stmts.push(other);
                None
            }
            None => None,
        };
        Ok(Expr {
            kind: ExprKind::Block { stmts, value },
            span: block.span,
        })
    }

    /// After a simple statement: consumes `;`, or accepts a following `}` or
    /// the end of input. Reports and returns false otherwise.
    fn stmt_end(&mut self) -> bool {
        match self.peek_kind() {
            T::Semi => {
                self.bump();
                true
            }
            T::RBrace | T::Eof => true,
            _ => {
                let found = self.peek().clone();
                let d = self.expected("';'", &found);
                self.report(d);
                false
            }
        }
    }

    /// Skips to just past the next `;` or up to the `}` closing the current
    /// block, stepping over nested blocks.
    fn recover_stmt(&mut self) {
        let mut depth = 0usize;
        loop {
            match self.peek_kind() {
                T::Eof => return,
                T::Semi if depth == 0 => {
                    self.bump();
                    return;
                }
                T::RBrace if depth == 0 => return,
                T::RBrace => depth -= 1,
                T::LBrace => depth += 1,
                _ => {}
            }
            self.bump();
        }
    }

    /// One statement, and whether it must be followed by `;` (or `}`).
    fn stmt(&mut self) -> PResult<(Stmt, bool)> {
        let keyword = match self.peek_kind() {
            T::Ident(w) if KEYWORDS.contains(&w.as_str()) => Some(w.clone()),
            _ => None,
        };
        let start = self.peek().span;
        let simple = |p: &mut Self, kind| {
            Ok((
                Stmt {
                    kind,
                    span: p.span_from(start),
                },
                true,
            ))
        };
        match keyword.as_deref() {
            Some("if") => return Ok((self.if_stmt()?, false)),
            Some("while") => {
                self.bump();
                let cond = self.expr()?;
                let body = self.block()?;
                let kind = StmtKind::While { cond, body };
                return Ok((
                    Stmt {
                        kind,
                        span: self.span_from(start),
                    },
                    false,
                ));
            }
            Some("unroll") => {
                self.bump();
                self.expect(&T::LParen, "'('")?;
                let count = self.expr()?;
                self.expect(&T::RParen, "')'")?;
                let body = self.block()?;
                let kind = StmtKind::Unroll { count, body };
                return Ok((
                    Stmt {
                        kind,
                        span: self.span_from(start),
                    },
                    false,
                ));
            }
            Some("for") => return Ok((self.for_stmt()?, false)),
            Some("break") => {
                self.bump();
                return simple(self, StmtKind::Break);
            }
            Some("continue") => {
                self.bump();
                return simple(self, StmtKind::Continue);
            }
            Some("return") => {
                self.bump();
                return simple(self, StmtKind::Return);
            }
            Some("let") => {
                let kind = self.let_stmt()?;
                return simple(self, kind);
            }
            Some("else") => {
                let found = self.peek().clone();
                self.report(
                    Diagnostic::error(found.span, "'else' without 'if'")
                        .with_label("no 'if' before this")
                        .with_help("'else' must directly follow the block of an 'if'"),
                );
                return Err(Failed);
            }
            _ => {}
        }

        let target = self.expr()?;
        let op = match self.peek_kind() {
            T::Assign => Some(None),
            T::PlusAssign => Some(Some(BinOp::Add)),
            T::MinusAssign => Some(Some(BinOp::Sub)),
            T::StarAssign => Some(Some(BinOp::Mul)),
            T::SlashAssign => Some(Some(BinOp::Div)),
            T::PercentAssign => Some(Some(BinOp::Mod)),
            T::AmpAssign => Some(Some(BinOp::BitAnd)),
            T::PipeAssign => Some(Some(BinOp::BitOr)),
            T::CaretAssign => Some(Some(BinOp::BitXor)),
            T::ShlAssign => Some(Some(BinOp::Shl)),
            T::ShrAssign => Some(Some(BinOp::Shr)),
            _ => None,
        };
        let Some(op) = op else {
            let is_block = matches!(target.kind, ExprKind::Block { .. });
            let span = self.span_from(start);
            return Ok((
                Stmt {
                    kind: StmtKind::Expr(target),
                    span,
                },
                !is_block,
            ));
        };
        self.bump();
        self.check_assignable(&target, op.is_none());
        let value = self.expr()?;
        simple(self, StmtKind::Assign { target, op, value })
    }

    /// Reports targets other than maps and variables (and `_` for a plain
    /// `=`, which discards a value). Parsing continues either way.
    fn check_assignable(&mut self, target: &Expr, plain: bool) {
        match &target.kind {
            ExprKind::Map { .. } | ExprKind::Var(_) => {}
            ExprKind::Ident(name) if name == "_" && plain => {}
            kind => {
                let mut d = Diagnostic::error(target.span, "cannot assign to this expression")
                    .with_label("not a map or variable");
                if let ExprKind::Ident(name) = kind {
                    d = d.with_help(format!(
                        "did you mean the variable '${name}' or the map '@{name}'?"
                    ));
                }
                self.report(d);
            }
        }
    }

    fn if_stmt(&mut self) -> PResult<Stmt> {
        // `else if` chains recurse, so they count towards the nesting limit.
        self.nested(|p| {
            let start = p.bump().span;
            let cond = p.expr()?;
            let then = p.block()?;
            let mut otherwise = None;
            if p.at_keyword("else") {
                p.bump();
                if p.at_keyword("if") {
                    let nested_if = p.if_stmt()?;
                    otherwise = Some(Block {
                        span: nested_if.span,
                        stmts: vec![nested_if],
                    });
                } else {
                    otherwise = Some(p.block()?);
                }
            }
            Ok(Stmt {
                kind: StmtKind::If {
                    cond,
                    then,
                    otherwise,
                },
                span: p.span_from(start),
            })
        })
    }

    fn for_stmt(&mut self) -> PResult<Stmt> {
        let start = self.bump().span;
        // The parentheses are optional, as in bpftrace: `for $i : 0..10 { }`.
        let paren = self.eat(&T::LParen);
        let var_span = self.peek().span;
        let var = self.var_name(if paren {
            "after 'for ('"
        } else {
            "after 'for'"
        })?;
        self.expect(&T::Colon, "':'")?;
        let first = self.expr()?;
        let kind = if self.eat(&T::DotDot) {
            let end = self.expr()?;
            if paren {
                self.expect(&T::RParen, "')'")?;
            }
            let body = self.block()?;
            StmtKind::ForRange {
                var,
                var_span,
                start: first,
                end,
                body,
            }
        } else {
            if paren {
                self.expect(&T::RParen, "')'")?;
            }
            if !matches!(first.kind, ExprKind::Map { .. }) {
                self.report(
                    Diagnostic::error(first.span, "expected a map or a range to iterate over")
                        .with_label("not a map or range")
                        .with_help("write 'for ($kv : @map)' or 'for ($i : 0..10)'"),
                );
            }
            let body = self.block()?;
            StmtKind::ForMap {
                var,
                var_span,
                map: first,
                body,
            }
        };
        Ok(Stmt {
            kind,
            span: self.span_from(start),
        })
    }

    /// A `$name` token's name (without the `$`).
    fn var_name(&mut self, context: &str) -> PResult<String> {
        let found = self.peek().clone();
        if let T::Var(name) = found.kind {
            self.bump();
            return Ok(name);
        }
        let d = self
            .expected(&format!("a variable like '$x' {context}"), &found)
            .with_label("expected a variable");
        self.report(d);
        Err(Failed)
    }

    fn let_stmt(&mut self) -> PResult<StmtKind> {
        self.bump();
        let name_span = self.peek().span;
        if let T::Map(_) = self.peek_kind() {
            self.report(
                Diagnostic::error(name_span, "maps are declared at the top level")
                    .with_label("a map cannot be declared here")
                    .with_help(
                        "declare it before the probes, like 'let @m = hash(100);', \
                         or create it by assigning to it: '@m = ...'",
                    ),
            );
            return Err(Failed);
        }
        let name = self.var_name("after 'let'")?;
        let ty = if self.eat(&T::Colon) {
            Some(self.type_name(true)?)
        } else {
            None
        };
        let value = if self.eat(&T::Assign) {
            Some(self.expr()?)
        } else {
            None
        };
        Ok(StmtKind::Let {
            name,
            name_span,
            ty,
            value,
        })
    }

    // ---- types ----

    fn at_type_start(&mut self, n: usize) -> bool {
        matches!(&self.peek_nth(n).kind, T::Ident(w) if TYPE_WORDS.contains(&w.as_str()))
    }

    /// `uint32`, `struct task_struct *`, `int8[4]`. With `any_name`, any
    /// identifier is taken as a type name (a typedef), as in `let` and
    /// `offsetof`.
    fn type_name(&mut self, any_name: bool) -> PResult<TypeName> {
        let found = self.peek().clone();
        let name = match &found.kind {
            T::Ident(w) if matches!(w.as_str(), "struct" | "union" | "enum") => {
                self.bump();
                let tag = self.peek().clone();
                match tag.kind {
                    T::Ident(tag_name) => {
                        self.bump();
                        format!("{w} {tag_name}")
                    }
                    _ => {
                        let d = self.expected(&format!("a name after '{w}'"), &tag);
                        self.report(d);
                        return Err(Failed);
                    }
                }
            }
            T::Ident(w)
                if TYPE_WORDS.contains(&w.as_str())
                    || (any_name && !KEYWORDS.contains(&w.as_str())) =>
            {
                self.bump();
                w.clone()
            }
            _ => {
                let d = self.expected("a type", &found);
                self.report(d);
                return Err(Failed);
            }
        };
        let mut pointer_depth: u8 = 0;
        while self.at(&T::Star) {
            let star = self.bump();
            pointer_depth = match pointer_depth.checked_add(1) {
                Some(d) => d,
                None => {
                    self.report(
                        Diagnostic::error(star.span, "too many '*' in pointer type")
                            .with_label("at most 255 levels of pointers"),
                    );
                    return Err(Failed);
                }
            };
        }
        let mut array_len = None;
        if self.eat(&T::LBracket) {
            let found = self.peek().clone();
            match found.kind {
                T::Int(n) => {
                    self.bump();
                    array_len = Some(n);
                }
                _ => {
                    let d = self.expected("an array length", &found);
                    self.report(d);
                    return Err(Failed);
                }
            }
            self.expect(&T::RBracket, "']'")?;
        }
        Ok(TypeName {
            name,
            pointer_depth,
            array_len,
            span: self.span_from(found.span),
        })
    }

    // ---- expressions ----

    fn expr(&mut self) -> PResult<Expr> {
        self.nested(|p| p.ternary())
    }

    fn ternary(&mut self) -> PResult<Expr> {
        let cond = self.binary()?;
        if !self.eat(&T::Question) {
            return Ok(cond);
        }
        let then = self.expr()?;
        self.expect(&T::Colon, "':'")?;
        let otherwise = self.expr()?;
        let span = cond.span.to(otherwise.span);
        Ok(Expr {
            kind: ExprKind::Ternary {
                cond: Box::new(cond),
                then: Box::new(then),
                otherwise: Box::new(otherwise),
            },
            span,
        })
    }

    /// Binary operators by precedence: operands and pending operators are
    /// kept on stacks and an operator is applied once one of lower or equal
    /// precedence follows (all are left-associative).
    fn binary(&mut self) -> PResult<Expr> {
        // Give back the levels taken per operator once the chain ends.
        let saved = self.depth;
        let result = self.binary_chain();
        self.depth = saved;
        result
    }

    fn binary_chain(&mut self) -> PResult<Expr> {
        let mut operands = vec![self.unary()?];
        let mut operators: Vec<(BinOp, u8)> = Vec::new();
        while let Some((op, prec)) = binary_op(self.peek_kind()) {
            // Each operator may add a level to the tree.
            self.enter()?;
            self.bump();
            while let Some(&(top, top_prec)) = operators.last() {
                if top_prec < prec {
                    break;
                }
                operators.pop();
                apply(&mut operands, top);
            }
            operators.push((op, prec));
            operands.push(self.unary()?);
        }
        while let Some((top, _)) = operators.pop() {
            apply(&mut operands, top);
        }
        // One operand is always left: each operator consumed two and pushed
        // one, and there was one more operand than operators.
        operands.pop().ok_or(Failed)
    }

    fn unary(&mut self) -> PResult<Expr> {
        self.nested(|p| p.unary_inner())
    }

    fn unary_inner(&mut self) -> PResult<Expr> {
        let op = match self.peek_kind() {
            T::Minus => Some(UnaryOp::Neg),
            T::Bang => Some(UnaryOp::Not),
            T::Tilde => Some(UnaryOp::BitNot),
            T::Star => Some(UnaryOp::Deref),
            T::Amp => Some(UnaryOp::AddrOf),
            _ => None,
        };
        if let Some(op) = op {
            let start = self.bump().span;
            let expr = self.unary()?;
            return Ok(Expr {
                span: start.to(expr.span),
                kind: ExprKind::Unary {
                    op,
                    expr: Box::new(expr),
                },
            });
        }
        if matches!(self.peek_kind(), T::PlusPlus | T::MinusMinus) {
            let token = self.bump();
            let target = self.unary()?;
            return Ok(self.inc_dec(target, &token, true));
        }
        if self.at(&T::LParen) && self.at_type_start(1) {
            let start = self.bump().span;
            let ty = self.type_name(false)?;
            self.expect(&T::RParen, "')'")?;
            let expr = self.unary()?;
            return Ok(Expr {
                span: start.to(expr.span),
                kind: ExprKind::Cast {
                    ty,
                    expr: Box::new(expr),
                },
            });
        }
        self.postfix()
    }

    fn inc_dec(&mut self, target: Expr, token: &Token, prefix: bool) -> Expr {
        let increment = token.kind == T::PlusPlus;
        if !matches!(target.kind, ExprKind::Map { .. } | ExprKind::Var(_)) {
            let op = if increment { "++" } else { "--" };
            self.report(
                Diagnostic::error(target.span, format!("'{op}' needs a map or variable"))
                    .with_label("not a map or variable"),
            );
        }
        Expr {
            span: target.span.to(token.span),
            kind: ExprKind::IncDec {
                target: Box::new(target),
                increment,
                prefix,
            },
        }
    }

    fn postfix(&mut self) -> PResult<Expr> {
        let mut expr = self.primary()?;
        loop {
            let kind = match self.peek_kind() {
                T::Dot | T::Arrow | T::LBracket | T::PlusPlus | T::MinusMinus => {
                    self.peek_kind().clone()
                }
                _ => return Ok(expr),
            };
            // Each postfix operation adds a level to the tree.
            self.enter()?;
            let token = self.bump();
            expr = match kind {
                T::Dot | T::Arrow => self.member(expr, kind == T::Arrow)?,
                T::LBracket => {
                    let index = self.expr()?;
                    self.expect(&T::RBracket, "']'")?;
                    Expr {
                        span: self.span_from(expr.span),
                        kind: ExprKind::Index {
                            expr: Box::new(expr),
                            index: Box::new(index),
                        },
                    }
                }
                _ => self.inc_dec(expr, &token, false),
            };
        }
    }

    /// What follows `.` or `->`: a field name, or a tuple index after `.`.
    fn member(&mut self, expr: Expr, arrow: bool) -> PResult<Expr> {
        let found = self.peek().clone();
        match found.kind {
            T::Ident(field) => {
                self.bump();
                Ok(Expr {
                    span: expr.span.to(found.span),
                    kind: ExprKind::Field {
                        expr: Box::new(expr),
                        field,
                        field_span: found.span,
                        arrow,
                    },
                })
            }
            T::Int(n) if !arrow => {
                self.bump();
                let Ok(index) = u32::try_from(n) else {
                    self.report(
                        Diagnostic::error(found.span, "tuple index is too large")
                            .with_label("not a valid tuple index"),
                    );
                    return Err(Failed);
                };
                Ok(Expr {
                    span: expr.span.to(found.span),
                    kind: ExprKind::TupleIndex {
                        expr: Box::new(expr),
                        index,
                    },
                })
            }
            _ => {
                let what = if arrow {
                    "a field name after '->'"
                } else {
                    "a field name or tuple index after '.'"
                };
                let d = self.expected(what, &found);
                self.report(d);
                Err(Failed)
            }
        }
    }

    fn primary(&mut self) -> PResult<Expr> {
        let token = self.peek().clone();
        let span = token.span;
        let kind = match token.kind {
            T::Int(n) => {
                self.bump();
                ExprKind::Int(n)
            }
            T::Str(bytes) => {
                self.bump();
                ExprKind::Str(bytes)
            }
            T::Var(name) => {
                self.bump();
                ExprKind::Var(name)
            }
            T::Map(name) => {
                self.bump();
                let keys = if self.eat(&T::LBracket) {
                    self.list(&T::RBracket, "']'")?
                } else {
                    Vec::new()
                };
                ExprKind::Map { name, keys }
            }
            T::Ident(name) => return self.word(name, span),
            T::LParen => return self.paren(),
            T::LBrace => return self.block_expr(),
            _ => {
                let d = self.expected("an expression", &token);
                self.report(d);
                return Err(Failed);
            }
        };
        Ok(Expr {
            kind,
            span: self.span_from(span),
        })
    }

    /// Expressions separated by `,` up to `close` (the opening bracket has
    /// been consumed). At least one expression is required.
    fn list(&mut self, close: &T, close_text: &str) -> PResult<Vec<Expr>> {
        let mut items = vec![self.expr()?];
        while self.eat(&T::Comma) {
            items.push(self.expr()?);
        }
        self.expect(close, close_text)?;
        Ok(items)
    }

    /// An expression starting with an identifier: a keyword literal,
    /// `sizeof`/`offsetof`, a call, or a bare builtin name.
    fn word(&mut self, name: String, start: Span) -> PResult<Expr> {
        let call = matches!(self.peek_nth(1).kind, T::LParen);
        let kind = match name.as_str() {
            "true" | "false" => {
                self.bump();
                ExprKind::Bool(name == "true")
            }
            "sizeof" if call => {
                self.bump();
                self.bump();
                if self.at_type_start(0) {
                    let ty = self.type_name(false)?;
                    self.expect(&T::RParen, "')'")?;
                    ExprKind::SizeofType(ty)
                } else {
                    let arg = self.expr()?;
                    self.expect(&T::RParen, "')'")?;
                    ExprKind::Call {
                        name,
                        name_span: start,
                        args: vec![arg],
                    }
                }
            }
            "offsetof" if call => {
                self.bump();
                self.bump();
                let ty = self.type_name(true)?;
                self.expect(&T::Comma, "','")?;
                let mut fields = vec![self.field_name()?];
                while self.eat(&T::Dot) {
                    fields.push(self.field_name()?);
                }
                self.expect(&T::RParen, "')'")?;
                ExprKind::Offsetof { ty, fields }
            }
            w if KEYWORDS.contains(&w) => {
                let token = self.peek().clone();
                let d = self.expected("an expression", &token);
                self.report(d);
                return Err(Failed);
            }
            _ if call => {
                self.bump();
                self.bump();
                let args = if self.eat(&T::RParen) {
                    Vec::new()
                } else {
                    self.list(&T::RParen, "')'")?
                };
                ExprKind::Call {
                    name,
                    name_span: start,
                    args,
                }
            }
            _ => {
                self.bump();
                ExprKind::Ident(name)
            }
        };
        Ok(Expr {
            kind,
            span: self.span_from(start),
        })
    }

    fn field_name(&mut self) -> PResult<String> {
        let found = self.peek().clone();
        if let T::Ident(name) = found.kind {
            self.bump();
            return Ok(name);
        }
        let d = self.expected("a field name", &found);
        self.report(d);
        Err(Failed)
    }

    /// `( expr )` or a tuple `( a, b, ... )`; casts were handled by the
    /// caller.
    fn paren(&mut self) -> PResult<Expr> {
        let start = self.bump().span;
        if matches!(self.peek_kind(), T::Ident(_)) && self.peek_nth(1).kind == T::Assign {
            return self.record(start);
        }
        let first = self.expr()?;
        if self.eat(&T::Comma) {
            let mut items = vec![first];
            items.extend(self.list(&T::RParen, "')'")?);
            return Ok(Expr {
                kind: ExprKind::Tuple(items),
                span: self.span_from(start),
            });
        }
        self.expect(&T::RParen, "')'")?;
        // `(float)x`: a word in parentheses directly followed by an operand
        // was meant as a cast to a type ferret does not know.
        if let ExprKind::Ident(name) = &first.kind
            && matches!(
                self.peek_kind(),
                T::Int(_) | T::Str(_) | T::Ident(_) | T::Var(_) | T::Map(_) | T::LParen
            )
        {
            let mut d = Diagnostic::error(first.span, format!("unknown type '{name}' in cast"))
                .with_label("not a type");
            let c_name = match name.as_str() {
                "int" | "long" | "s64" | "i64" => Some("int64"),
                "unsigned" | "uint" | "ulong" | "u64" | "size_t" => Some("uint64"),
                "u32" => Some("uint32"),
                "s32" | "i32" => Some("int32"),
                "u16" => Some("uint16"),
                "u8" | "char" => Some("uint8"),
                _ => crate::diag::closest(
                    name,
                    TYPE_WORDS
                        .iter()
                        .copied()
                        .filter(|w| w.starts_with("int") || w.starts_with("uint")),
                ),
            };
            d = match c_name {
                Some(t) => d.with_help(format!("did you mean '{t}'?")),
                None if matches!(name.as_str(), "float" | "double") => d.with_help(
                    "eBPF has no floating point; cast to an integer type like int64 or uint64",
                ),
                None => d.with_help(
                    "cast to bool, int8, int16, int32, int64, uint8, uint16, uint32 or uint64",
                ),
            };
            self.report(d);
            return Err(Failed);
        }
        Ok(Expr {
            kind: first.kind,
            span: self.span_from(start),
        })
    }
}

impl Parser<'_> {
    /// `(name = value, ...)` after the `(`.
    fn record(&mut self, start: Span) -> PResult<Expr> {
        let mut fields: Vec<(String, Expr)> = Vec::new();
        loop {
            let found = self.peek().clone();
            let T::Ident(name) = found.kind else {
                let d = self
                    .expected("a field name like 'a' in 'a = value'", &found)
                    .with_label("expected a field name");
                self.report(d);
                return Err(Failed);
            };
            self.bump();
            self.expect(&T::Assign, "'='")?;
            let value = self.expr()?;
            if fields.iter().any(|(n, _)| *n == name) {
                self.report(
                    Diagnostic::error(
                        found.span,
                        format!("the record has two fields named '{name}'"),
                    )
                    .with_label("duplicate field")
                    .with_help("give each field its own name"),
                );
            }
            fields.push((name, value));
            if !self.eat(&T::Comma) {
                break;
            }
        }
        self.expect(&T::RParen, "')'")?;
        Ok(Expr {
            kind: ExprKind::Record(fields),
            span: self.span_from(start),
        })
    }
}

fn binary_op(kind: &T) -> Option<(BinOp, u8)> {
    Some(match kind {
        T::OrOr => (BinOp::Or, 1),
        T::AndAnd => (BinOp::And, 2),
        T::Pipe => (BinOp::BitOr, 3),
        T::Caret => (BinOp::BitXor, 4),
        T::Amp => (BinOp::BitAnd, 5),
        T::EqEq => (BinOp::Eq, 6),
        T::Ne => (BinOp::Ne, 6),
        T::Lt => (BinOp::Lt, 7),
        T::Le => (BinOp::Le, 7),
        T::Gt => (BinOp::Gt, 7),
        T::Ge => (BinOp::Ge, 7),
        T::Shl => (BinOp::Shl, 8),
        T::Shr => (BinOp::Shr, 8),
        T::Plus => (BinOp::Add, 9),
        T::Minus => (BinOp::Sub, 9),
        T::Star => (BinOp::Mul, 10),
        T::Slash => (BinOp::Div, 10),
        T::Percent => (BinOp::Mod, 10),
        _ => return None,
    })
}

/// Replaces the top two operands with `lhs op rhs`.
fn apply(operands: &mut Vec<Expr>, op: BinOp) {
    let (Some(rhs), Some(lhs)) = (operands.pop(), operands.pop()) else {
        return;
    };
    operands.push(Expr {
        span: lhs.span.to(rhs.span),
        kind: ExprKind::Binary {
            op,
            lhs: Box::new(lhs),
            rhs: Box::new(rhs),
        },
    });
}

mod items;

mod cdefs;
#[cfg(test)]
mod error_tests;
#[cfg(test)]
mod item_tests;
#[cfg(test)]
mod tests;
