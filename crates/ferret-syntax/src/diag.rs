//! Source files, spans and diagnostics rendered the way users of compilers
//! expect: `file:line:col`, the source line, the span marked, a help line.

use std::fmt;
use std::sync::Arc;

/// A byte range `[start, end)` in one [`SourceFile`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Span {
    pub start: u32,
    pub end: u32,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Self {
        let clamp = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        Self {
            start: clamp(start),
            end: clamp(end.max(start)),
        }
    }

    /// The smallest span covering both.
    pub fn to(self, other: Span) -> Span {
        Span {
            start: self.start.min(other.start),
            end: self.end.max(other.end),
        }
    }
}

/// A program's text and the name errors call it by (`stdin` for `-e` and
/// `-`, as bpftrace does, or the script's path).
///
/// After preprocessing, `text` is what the parser reads and spans point
/// into it; the file then also remembers the text as written and where
/// macros were expanded, so diagnostics are shown against the original.
#[derive(Debug, Clone)]
pub struct SourceFile {
    pub name: String,
    pub text: String,
    origin: Option<Arc<Origin>>,
}

/// The text as written and how preprocessed offsets map back into it.
#[derive(Debug)]
struct Origin {
    text: String,
    /// In order of position; regions between them are copied unchanged.
    expansions: Vec<Expansion>,
}

/// A macro use `written` (in the original text) replaced by `len` bytes at
/// `at` in the preprocessed text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expansion {
    pub at: u32,
    pub len: u32,
    pub written: Span,
}

impl SourceFile {
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            text: text.into(),
            origin: None,
        }
    }

    /// A preprocessed file: `text` as the parser sees it, `original` as
    /// written, `expansions` in increasing order of `at`.
    pub fn preprocessed(
        name: impl Into<String>,
        text: String,
        original: String,
        expansions: Vec<Expansion>,
    ) -> Self {
        Self {
            name: name.into(),
            text,
            origin: Some(Arc::new(Origin {
                text: original,
                expansions,
            })),
        }
    }

    /// The text as written, before preprocessing.
    pub fn original_text(&self) -> &str {
        self.origin.as_ref().map_or(&self.text, |o| &o.text)
    }

    /// Where a span of the parsed text was written: a span inside a macro
    /// expansion becomes the macro's use.
    pub fn original_span(&self, span: Span) -> Span {
        let Some(origin) = &self.origin else {
            return span;
        };
        let map = |offset: u32, is_end: bool| -> u32 {
            // The last expansion starting before the offset (at or before,
            // for a start).
            let n = origin
                .expansions
                .partition_point(|e| e.at < offset || (!is_end && e.at == offset));
            let Some(e) = n.checked_sub(1).map(|i| origin.expansions[i]) else {
                return offset;
            };
            let end = e.at + e.len;
            if offset < end || (is_end && offset == end) {
                if is_end {
                    e.written.end
                } else {
                    e.written.start
                }
            } else {
                offset - end + e.written.end
            }
        };
        let start = map(span.start, false);
        Span {
            start,
            end: map(span.end, true).max(start),
        }
    }

    /// Whether `span` starts inside text a macro produced.
    pub fn in_expansion(&self, span: Span) -> bool {
        self.origin.as_ref().is_some_and(|o| {
            o.expansions
                .iter()
                .any(|e| e.at <= span.start && span.start < e.at + e.len)
        })
    }

    /// 1-based line and column (in characters) of a byte offset in the
    /// original text.
    pub fn line_col(&self, offset: u32) -> (usize, usize) {
        let text = self.original_text();
        let offset = (offset as usize).min(text.len());
        let before = &text[..floor_char_boundary(text, offset)];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let col = before[line_start..].chars().count() + 1;
        (line, col)
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

/// One error or warning about a span of the program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    /// What went wrong, without a trailing period: `unknown function 'prinft'`.
    pub message: String,
    pub span: Span,
    /// Short text under the marked span: `expected ';'`.
    pub label: Option<String>,
    /// `help: did you mean 'printf'?`
    pub help: Option<String>,
    /// Extra lines shown after the source (a verifier log tail, say).
    pub notes: Vec<String>,
}

impl Diagnostic {
    pub fn error(span: Span, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Error,
            message: message.into(),
            span,
            label: None,
            help: None,
            notes: Vec::new(),
        }
    }

    pub fn warning(span: Span, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Warning,
            ..Self::error(span, message)
        }
    }

    #[must_use]
    pub fn with_label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    #[must_use]
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    #[must_use]
    pub fn with_note(mut self, note: impl Into<String>) -> Self {
        self.notes.push(note.into());
        self
    }

    /// Renders against the source it refers to:
    ///
    /// ```text
    /// script.bt:1:9: error: unknown function 'prinft'
    ///   |
    /// 1 | BEGIN { prinft("hi"); }
    ///   |         ^^^^^^ not a known function
    ///   |
    ///   = help: did you mean 'printf'?
    /// ```
    pub fn render(&self, file: &SourceFile) -> String {
        render(self, file)
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Error => "error",
            Self::Warning => "warning",
        })
    }
}

/// Finds the candidate closest to `name` by edit distance, for "did you
/// mean" help. Returns `None` when nothing is reasonably close. Swapped
/// neighbours count as one edit. Among equally close candidates one that
/// `name` abbreviates wins (`cnt`: `count`, not `cpu`), then the one nearest
/// in length (`prinft`: `printf`, not `print`).
pub fn closest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let len = name.chars().count();
    let limit = (len / 3).max(1) + 1;
    candidates
        .into_iter()
        // The distance is at least the difference in length: a cheap
        // filter first, for long lists (every kernel function).
        .filter(|c| c.len().abs_diff(name.len()) <= 4 * limit)
        .filter(|c| c.chars().count().abs_diff(len) <= limit)
        .map(|c| (edit_distance(name, c), c))
        .filter(|&(d, _)| d <= limit && d > 0)
        .min_by_key(|&(d, c)| {
            let abbreviation = !is_subsequence(name, c);
            (d, abbreviation, c.chars().count().abs_diff(len), c)
        })
        .map(|(_, c)| c)
}

/// Whether `short` is `long` with letters left out (`cnt` of `count`).
fn is_subsequence(short: &str, long: &str) -> bool {
    let mut rest = long.chars();
    short.chars().all(|c| rest.any(|l| l == c))
}

/// Levenshtein distance plus transpositions of adjacent characters
/// (optimal string alignment).
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut before: Vec<usize> = Vec::new();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, &ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, &cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            let mut d = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
            if i > 0 && j > 0 && ca == b[j - 1] && a[i - 1] == cb {
                d = d.min(before[j - 1] + 1);
            }
            cur[j + 1] = d;
        }
        before = std::mem::replace(&mut prev, cur);
    }
    prev[b.len()]
}

fn render(d: &Diagnostic, file: &SourceFile) -> String {
    use fmt::Write as _;
    let span = file.original_span(d.span);
    let (line, col) = file.line_col(span.start);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}:{}:{}: {}: {}",
        file.name, line, col, d.severity, d.message
    );
    let src_line = file.original_text().lines().nth(line - 1).unwrap_or("");
    let gutter = line.to_string().len();
    let pad = " ".repeat(gutter);
    let _ = writeln!(out, "{pad} |");
    let _ = writeln!(out, "{line} | {src_line}");
    let (end_line, end_col) = file.line_col(span.end);
    let width = if end_line == line {
        end_col.saturating_sub(col).max(1)
    } else {
        src_line.chars().count().saturating_sub(col - 1).max(1)
    };
    let _ = write!(out, "{pad} | {}{}", " ".repeat(col - 1), "^".repeat(width));
    if let Some(label) = &d.label {
        let _ = write!(out, " {label}");
    }
    out.push('\n');
    let expansion_note = file
        .in_expansion(d.span)
        .then_some("in the expansion of this macro");
    if d.help.is_some() || !d.notes.is_empty() || expansion_note.is_some() {
        let _ = writeln!(out, "{pad} |");
    }
    if let Some(help) = &d.help {
        let _ = writeln!(out, "{pad} = help: {help}");
    }
    for note in expansion_note
        .iter()
        .copied()
        .chain(d.notes.iter().map(String::as_str))
    {
        let _ = writeln!(out, "{pad} = note: {note}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closest_prefers_a_swap_of_the_same_length() {
        let names = ["print", "printf", "pid", "exit"];
        assert_eq!(closest("prinft", names), Some("printf"));
        assert_eq!(closest("pdi", names), Some("pid"));
        assert_eq!(closest("zzzzzz", names), None);
        assert_eq!(closest("printf", names), Some("print"));
        assert_eq!(closest("cnt", ["cpu", "count"]), Some("count"));
    }

    #[test]
    fn edit_distance_counts_a_transposition_once() {
        assert_eq!(edit_distance("ab", "ba"), 1);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
    }
}
