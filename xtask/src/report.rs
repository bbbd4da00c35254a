//! The results table.

use std::fmt::Write as _;

/// One measured value.
#[derive(Debug, Clone)]
pub enum Cell {
    /// A number, shown with `decimals` digits after the point.
    Num(f64, usize),
    /// Free text (counts with context, flags).
    Text(String),
    /// Not measured (tool skipped).
    Skipped,
    /// The measurement failed; the reason goes to the problems list.
    Failed,
}

impl Cell {
    fn num(&self) -> Option<f64> {
        match self {
            Cell::Num(v, _) => Some(*v),
            _ => None,
        }
    }

    fn show(&self) -> String {
        match self {
            Cell::Num(v, d) => format!("{v:.d$}"),
            Cell::Text(s) => s.clone(),
            Cell::Skipped => "-".into(),
            Cell::Failed => "FAILED".into(),
        }
    }
}

/// What "good" means for a row.
#[derive(Debug, Clone, Copy)]
pub enum Goal {
    /// Informational only.
    None,
    /// ferret / bpftrace must not exceed this.
    RatioAtMost(f64),
    /// ferret's own value must stay below this.
    FerretBelow(f64),
    /// ferret's value must be zero (nothing lost).
    FerretZero,
}

impl Goal {
    fn show(self) -> String {
        match self {
            Goal::None => String::new(),
            Goal::RatioAtMost(1.0) => "ratio <= 1".into(),
            Goal::RatioAtMost(r) => format!("ratio <= 1/{:.0}", 1.0 / r),
            Goal::FerretBelow(v) => format!("ferret < {v}"),
            Goal::FerretZero => "ferret = 0".into(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Row {
    pub bench: String,
    pub metric: String,
    pub ferret: Cell,
    pub bpftrace: Cell,
    pub goal: Goal,
    /// Whether a ferret/bpftrace ratio means anything for this row.
    pub ratio: bool,
}

impl Row {
    pub fn new(bench: &str, metric: &str, ferret: Cell, bpftrace: Cell) -> Row {
        Row {
            bench: bench.into(),
            metric: metric.into(),
            ferret,
            bpftrace,
            goal: Goal::None,
            ratio: true,
        }
    }

    pub fn goal(mut self, goal: Goal) -> Row {
        self.goal = goal;
        self
    }

    pub fn no_ratio(mut self) -> Row {
        self.ratio = false;
        self
    }

    fn ratio_value(&self) -> Option<f64> {
        if !self.ratio {
            return None;
        }
        let (f, b) = (self.ferret.num()?, self.bpftrace.num()?);
        (b != 0.0).then_some(f / b)
    }

    fn met(&self) -> &'static str {
        let ok = match self.goal {
            Goal::None => return "",
            Goal::RatioAtMost(r) => self.ratio_value().map(|v| v <= r),
            Goal::FerretBelow(v) => self.ferret.num().map(|f| f < v),
            Goal::FerretZero => self.ferret.num().map(|f| f == 0.0),
        };
        match ok {
            Some(true) => "yes",
            Some(false) => "NO",
            None => "?",
        }
    }
}

/// Renders the rows as a Markdown table.
pub fn table(rows: &[Row]) -> String {
    let header = [
        "benchmark",
        "metric",
        "ferret",
        "bpftrace",
        "ferret/bpftrace",
        "goal",
        "met",
    ];
    let body: Vec<[String; 7]> = rows
        .iter()
        .map(|r| {
            [
                r.bench.clone(),
                r.metric.clone(),
                r.ferret.show(),
                r.bpftrace.show(),
                r.ratio_value()
                    .map(|v| format!("{v:.3}"))
                    .unwrap_or_default(),
                r.goal.show(),
                r.met().into(),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &body {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    let line = |out: &mut String, cells: &[String]| {
        out.push('|');
        for (c, w) in cells.iter().zip(widths) {
            let _ = write!(out, " {c:<w$} |");
        }
        out.push('\n');
    };
    line(&mut out, &header.map(String::from));
    out.push('|');
    for w in widths {
        let _ = write!(out, "{}|", "-".repeat(w + 2));
    }
    out.push('\n');
    for row in &body {
        line(&mut out, row);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_and_goals() {
        let r =
            Row::new("b", "m", Cell::Num(1.0, 1), Cell::Num(20.0, 1)).goal(Goal::RatioAtMost(0.1));
        assert_eq!(r.ratio_value(), Some(0.05));
        assert_eq!(r.met(), "yes");
        let r = Row::new("b", "m", Cell::Num(3.0, 1), Cell::Skipped).goal(Goal::FerretBelow(2.0));
        assert_eq!(r.met(), "NO");
        let r = Row::new("b", "m", Cell::Failed, Cell::Num(1.0, 0)).goal(Goal::RatioAtMost(1.0));
        assert_eq!(r.met(), "?");
        let t = table(&[r]);
        assert!(t.contains("FAILED"));
        assert!(t.contains("ratio <= 1 "));
    }
}
