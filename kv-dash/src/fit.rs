//! Fitting a table to a width without cutting a number, an id or a
//! status: columns give way by steps (a shorter form first, then dropping
//! whole columns), and only free text (a note) is ever cut, with `…`.
//! Shared by the plain-text tables (`kv-dash list --width`) and the
//! browser's runs table, so both give way the same.

/// One column of a table to fit.
#[derive(Debug, Clone)]
pub struct FitColumn {
    pub title: String,
    pub cells: Vec<String>,
    /// Right-aligned (numbers).
    pub right: bool,
    /// A narrower form of the same information (title, cells), used
    /// before anything is dropped.
    pub short: Option<(String, Vec<String>)>,
    /// Free text that may be cut with `…`, given at least this width; it
    /// takes the width left over. `None`: never cut.
    pub flex_min: Option<usize>,
}

impl FitColumn {
    pub fn new(title: impl Into<String>, cells: Vec<String>) -> FitColumn {
        FitColumn {
            title: title.into(),
            cells,
            right: false,
            short: None,
            flex_min: None,
        }
    }

    pub fn right(mut self) -> FitColumn {
        self.right = true;
        self
    }

    pub fn short(mut self, title: impl Into<String>, cells: Vec<String>) -> FitColumn {
        self.short = Some((title.into(), cells));
        self
    }

    pub fn flex(mut self, min: usize) -> FitColumn {
        self.flex_min = Some(min);
        self
    }

    /// Widest of the title and the cells, in characters.
    fn natural(&self) -> usize {
        self.cells
            .iter()
            .map(|c| c.chars().count())
            .chain(std::iter::once(self.title.chars().count()))
            .max()
            .unwrap_or(0)
    }

    /// What the column needs: all of it, or its minimum when it is text.
    fn need(&self) -> usize {
        match self.flex_min {
            Some(min) => self.natural().min(min),
            None => self.natural(),
        }
    }
}

/// One way a table gives way, in the order a table lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Use the column's short form.
    Shorten(usize),
    /// Leave the column out.
    Drop(usize),
}

/// A column as it is shown: its index in the input, title, cells and width.
#[derive(Debug, Clone, PartialEq)]
pub struct Fitted {
    pub index: usize,
    pub title: String,
    pub cells: Vec<String>,
    pub right: bool,
    pub width: usize,
}

/// Applies `steps` in order until the columns, `gap` apart, fit in
/// `width`; a text column then takes what is left (its cells cut with
/// `…`). Numbers, ids and statuses are never cut: when even every step
/// leaves the table too wide, the columns that remain are shown whole and
/// the caller's line is wider than `width`.
pub fn fit(mut cols: Vec<FitColumn>, steps: &[Step], width: usize, gap: usize) -> Vec<Fitted> {
    let mut shown: Vec<bool> = vec![true; cols.len()];
    let total = |cols: &[FitColumn], shown: &[bool]| {
        let kept: Vec<&FitColumn> = cols
            .iter()
            .zip(shown)
            .filter(|c| *c.1)
            .map(|c| c.0)
            .collect();
        kept.iter().map(|c| c.need()).sum::<usize>() + gap * kept.len().saturating_sub(1)
    };
    for step in steps {
        if total(&cols, &shown) <= width {
            break;
        }
        match *step {
            Step::Shorten(i) => {
                if let Some((title, cells)) = cols[i].short.take() {
                    cols[i].title = title;
                    cols[i].cells = cells;
                }
            }
            Step::Drop(i) => shown[i] = false,
        }
    }
    let spare = width.saturating_sub(total(&cols, &shown));
    cols.into_iter()
        .enumerate()
        .zip(shown)
        .filter(|(_, s)| *s)
        .map(|((index, c), _)| {
            let width = match c.flex_min {
                Some(_) => (c.need() + spare).min(c.natural()),
                None => c.natural(),
            };
            let cut = |s: &str| {
                if c.flex_min.is_some() {
                    cut_words(s, width)
                } else {
                    s.to_string()
                }
            };
            Fitted {
                index,
                title: cut(&c.title),
                cells: c.cells.iter().map(|s| cut(s)).collect(),
                right: c.right,
                width,
            }
        })
        .collect()
}

/// Cuts `s` to at most `width` characters, with `…` when cut.
pub fn cut(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        return s.to_string();
    }
    if width == 0 {
        return String::new();
    }
    let mut out: String = s.chars().take(width - 1).collect();
    out.push('…');
    out
}

/// Cuts text to at most `width` characters at a word boundary, with `…`:
/// a word (a number, an id in a note) is shown whole or not at all.
pub fn cut_words(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        return s.to_string();
    }
    let mut out = String::new();
    for word in s.split(' ') {
        let len = out.chars().count();
        let add = word.chars().count() + usize::from(len > 0);
        if len + add + 1 > width {
            break;
        }
        if len > 0 {
            out.push(' ');
        }
        out.push_str(word);
    }
    if width > 0 {
        out.push('…');
    }
    out
}

/// Flows `items` into lines of at most `width` characters, `sep` between
/// two items on a line; an item is never split (one longer than `width`
/// gets a line of its own). Detail panes use it so a narrow screen wraps
/// between figures instead of cutting one.
pub fn flow(items: &[String], sep: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    for item in items.iter().filter(|i| !i.is_empty()) {
        let (len, add) = (line.chars().count(), item.chars().count());
        if !line.is_empty() && len + sep.chars().count() + add > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push_str(sep);
        }
        line.push_str(item);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cols() -> Vec<FitColumn> {
        vec![
            FitColumn::new("ID", vec!["20250101-100000-aaaa".into()]),
            FitColumn::new("STATUS", vec!["FAILED: server 1 exited".into()])
                .short("STATUS", vec!["FAILED".into()]),
            FitColumn::new("OPS/S", vec!["3,057,417".into()]).right(),
            FitColumn::new("CONFIG", vec!["1s 1c 2t b1024 w8".into()]),
            FitColumn::new("NOTE", vec!["a long note about the run".into()]).flex(6),
        ]
    }

    const STEPS: [Step; 3] = [Step::Shorten(1), Step::Drop(4), Step::Drop(3)];

    #[test]
    fn wide_enough_keeps_everything_whole() {
        let f = fit(cols(), &STEPS, 200, 2);
        assert_eq!(f.len(), 5);
        assert_eq!(f[1].cells[0], "FAILED: server 1 exited");
        assert_eq!(f[4].cells[0], "a long note about the run");
    }

    #[test]
    fn shortens_then_cuts_only_text_then_drops() {
        // id 20 + FAILED 6 + ops 9 + config 17 + note min 6, gaps 8 = 66.
        let f = fit(cols(), &STEPS, 70, 2);
        assert_eq!(f.len(), 5);
        assert_eq!(f[1].cells[0], "FAILED");
        assert_eq!(
            f[4].cells[0], "a long…",
            "the note gets what is left, in words"
        );
        assert_eq!(f[4].width, 10);
        let f = fit(cols(), &STEPS, 45, 2);
        let idx: Vec<usize> = f.iter().map(|c| c.index).collect();
        assert_eq!(idx, [0, 1, 2], "note, then config dropped");
        assert_eq!(f[2].cells[0], "3,057,417");
        // Too narrow even for what must stay: shown whole, never cut.
        let f = fit(cols(), &STEPS, 10, 2);
        assert_eq!(f[0].cells[0], "20250101-100000-aaaa");
    }

    #[test]
    fn text_is_cut_between_words() {
        assert_eq!(cut_words("[sweep-20261202-1900] closed loop", 20), "…");
        assert_eq!(cut_words("batch 128, big one", 12), "batch 128,…");
        assert_eq!(cut_words("short", 12), "short");
    }

    #[test]
    fn flow_never_splits_an_item() {
        let items: Vec<String> = ["total 3,057,417 ops/s", "p50 300", "p99 900 us"]
            .map(String::from)
            .to_vec();
        assert_eq!(
            flow(&items, "  ", 30),
            ["total 3,057,417 ops/s  p50 300", "p99 900 us"]
        );
        assert_eq!(flow(&items, "  ", 10)[0], "total 3,057,417 ops/s");
    }
}
