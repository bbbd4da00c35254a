//! Top-level items other than probes: `config = { ... }`, `macro`
//! definitions and `let @m = hash(N);` map declarations, in bpftrace's
//! order (the config block before everything else).

use super::{Failed, PResult, Parser, T};
use crate::ast::{ConfigItem, ConfigValue, MacroParam, MacroParamKind, MapDecl, Program};
use crate::diag::closest;
use crate::{Diagnostic, Span};

/// The kernel map types a declaration may name, as bpftrace spells them.
pub const MAP_DECL_KINDS: &[&str] = &["hash", "lruhash", "percpuhash", "percpulruhash"];

/// What has been seen so far, to enforce the order of items.
#[derive(Default)]
pub(super) struct Order {
    config: Option<Span>,
    main_items: bool,
}

impl Order {
    pub(super) fn saw_main_item(&mut self) {
        self.main_items = true;
    }
}

impl Parser<'_> {
    /// Parses a top-level item that is not a probe, if one starts here.
    pub(super) fn top_level_item(&mut self, program: &mut Program, order: &mut Order) -> bool {
        let word = match self.peek_kind() {
            T::Ident(w) if matches!(w.as_str(), "config" | "macro" | "let" | "import") => w.clone(),
            _ => return false,
        };
        let next = self.peek_nth(1).kind.clone();
        match (word.as_str(), next) {
            ("config", T::Assign) => {
                let start = self.peek().span;
                let misplaced = if let Some(first) = order.config {
                    Some(
                        Diagnostic::error(start, "duplicate config block")
                            .with_label("second config block")
                            .with_help(format!(
                                "merge it into the first one, at line {}",
                                self.line_of(first)
                            )),
                    )
                } else if order.main_items {
                    Some(
                        Diagnostic::error(start, "config must appear before probes and macros")
                            .with_label("too late for a config block")
                            .with_help("move the config block to the top of the script"),
                    )
                } else {
                    None
                };
                order.config.get_or_insert(start);
                match self.config_block() {
                    Ok(items) if misplaced.is_none() => program.config = items,
                    Ok(_) => {}
                    Err(Failed) => self.skip_definition(),
                }
                if let Some(d) = misplaced {
                    self.report(d);
                }
            }
            ("macro", T::Ident(_)) => {
                order.saw_main_item();
                match self.macro_def() {
                    Ok(m) => program.macros.push(m),
                    Err(Failed) => self.skip_definition(),
                }
            }
            ("let", T::Map(_)) => {
                order.saw_main_item();
                match self.map_decl() {
                    Ok(d) => program.map_decls.push(d),
                    Err(Failed) => self.skip_definition(),
                }
            }
            ("import", _) => {
                let start = self.peek().span;
                self.report(
                    Diagnostic::error(start, "'import' is not supported")
                        .with_label("imports another script")
                        .with_help("paste the imported definitions into this script"),
                );
                self.skip_definition();
            }
            _ => return false,
        }
        true
    }

    fn line_of(&self, span: Span) -> usize {
        self.text[..(span.start as usize).min(self.text.len())]
            .matches('\n')
            .count()
            + 1
    }

    /// `config = { key = value; ... }`
    fn config_block(&mut self) -> PResult<Vec<ConfigItem>> {
        self.bump();
        self.expect(&T::Assign, "'='")?;
        self.expect(&T::LBrace, "'{'")?;
        let mut items = Vec::new();
        while !self.eat(&T::RBrace) {
            let found = self.peek().clone();
            let T::Ident(key) = found.kind else {
                let d = self
                    .expected("a config setting like 'max_strlen = 128'", &found)
                    .with_label("expected a setting");
                self.report(d);
                return Err(Failed);
            };
            self.bump();
            self.expect(&T::Assign, "'='")?;
            let v = self.peek().clone();
            let value = match v.kind {
                T::Int(n) => ConfigValue::Int(n),
                T::Str(bytes) => ConfigValue::Str(String::from_utf8_lossy(&bytes).into_owned()),
                T::Ident(w) if w == "true" || w == "false" => ConfigValue::Bool(w == "true"),
                T::Ident(w) => ConfigValue::Ident(w),
                _ => {
                    let d = self.expected("a number, string, true/false or a word", &v);
                    self.report(d);
                    return Err(Failed);
                }
            };
            self.bump();
            items.push(ConfigItem {
                key,
                key_span: found.span,
                value,
                value_span: v.span,
            });
            if !self.eat(&T::Semi) && !self.at(&T::RBrace) {
                let found = self.peek().clone();
                let d = self.expected("';' or '}'", &found);
                self.report(d);
                return Err(Failed);
            }
        }
        self.eat(&T::Semi);
        Ok(items)
    }

    /// `macro name(params) { body }`
    fn macro_def(&mut self) -> PResult<crate::ast::Macro> {
        let start = self.bump().span;
        let found = self.bump();
        let T::Ident(name) = found.kind else {
            return Err(Failed);
        };
        let name_span = found.span;
        self.expect(&T::LParen, "'('")?;
        let mut params: Vec<MacroParam> = Vec::new();
        if !self.eat(&T::RParen) {
            loop {
                let p = self.peek().clone();
                let (kind, pname) = match p.kind {
                    T::Var(n) => (MacroParamKind::Var, n),
                    T::Map(n) => (MacroParamKind::Map, n),
                    T::Ident(n) => (MacroParamKind::Expr, n),
                    _ => {
                        let d = self
                            .expected("a macro parameter ($var, @map or name)", &p)
                            .with_label("expected a parameter");
                        self.report(d);
                        return Err(Failed);
                    }
                };
                self.bump();
                if params.iter().any(|q| q.kind == kind && q.name == pname) {
                    self.report(
                        Diagnostic::error(
                            p.span,
                            format!(
                                "parameter {} is listed twice",
                                &self.text[p.span.start as usize..p.span.end as usize]
                            ),
                        )
                        .with_label("already a parameter of this macro"),
                    );
                }
                params.push(MacroParam {
                    kind,
                    name: pname,
                    span: p.span,
                });
                if self.eat(&T::RParen) {
                    break;
                }
                self.expect(&T::Comma, "',' or ')'")?;
            }
        }
        let body = self.block_expr()?;
        Ok(crate::ast::Macro {
            name,
            name_span,
            params,
            span: start.to(body.span),
            body,
        })
    }

    /// `let @name = kind(N);`
    fn map_decl(&mut self) -> PResult<MapDecl> {
        let start = self.bump().span;
        let found = self.bump();
        let T::Map(name) = found.kind else {
            return Err(Failed);
        };
        let name_span = found.span;
        self.expect(&T::Assign, "'='")?;
        let k = self.peek().clone();
        let usage = "declare a map with its kind and size, like 'let @m = lruhash(100);'";
        let T::Ident(kind) = k.kind else {
            let d = self.expected("a map type like 'hash'", &k).with_help(usage);
            self.report(d);
            return Err(Failed);
        };
        self.bump();
        if !MAP_DECL_KINDS.contains(&kind.as_str()) {
            let mut d = Diagnostic::error(k.span, format!("invalid map type '{kind}'"))
                .with_label("not a map type");
            d = match closest(&kind, MAP_DECL_KINDS.iter().copied()) {
                Some(best) => d.with_help(format!("did you mean '{best}'?")),
                None => d.with_help(format!("valid map types: {}", MAP_DECL_KINDS.join(", "))),
            };
            self.report(d);
            return Err(Failed);
        }
        self.expect(&T::LParen, "'('")?;
        let n = self.peek().clone();
        let max_entries = match n.kind {
            T::Int(v) if v > 0 && v <= u64::from(u32::MAX) => v,
            _ => {
                let d = Diagnostic::error(
                    n.span,
                    "a map declaration takes its maximum number of entries",
                )
                .with_label("expected a number from 1 to 4294967295")
                .with_help(usage);
                self.report(d);
                return Err(Failed);
            }
        };
        self.bump();
        self.expect(&T::RParen, "')'")?;
        let end = self.prev_end;
        if !self.eat(&T::Semi) {
            let found = self.peek().clone();
            let d = self.expected("';'", &found);
            self.report(d);
            return Err(Failed);
        }
        Ok(MapDecl {
            name,
            name_span,
            kind,
            kind_span: k.span,
            max_entries,
            span: Span {
                start: start.start,
                end,
            },
        })
    }
}
