//! Folded stacks (`frame;frame;leaf count` per line) → a call tree, and the
//! questions kv-dash asks of it: layout for drawing, search with share of
//! samples, top-N functions, and the difference between two profiles.
//! No UI types here; navigation state lives in `app`.

use std::collections::HashMap;

/// Index of a frame in a [`FlameGraph`]. The root (all samples) is 0.
pub type FrameId = usize;

/// One frame: a function at one position of the call tree.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    pub name: String,
    /// Samples in this frame and everything it called.
    pub total: u64,
    /// Samples with this frame on top of the stack.
    pub self_samples: u64,
    pub parent: Option<FrameId>,
    /// Largest first, then by name, so the widest callee is drawn leftmost.
    pub children: Vec<FrameId>,
    pub depth: usize,
}

/// A bad line in a folded file.
#[derive(Debug, Clone, PartialEq)]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

impl std::error::Error for ParseError {}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct FlameGraph {
    frames: Vec<Frame>,
}

/// Result of a search: which frames match, and the share of all samples
/// spent under a matching frame (nested matches counted once).
#[derive(Debug, Clone, PartialEq)]
pub struct SearchResult {
    pub pattern: String,
    pub matched: Vec<bool>,
    pub samples: u64,
    pub share: f64,
    pub frames: usize,
}

/// What a top-N table ranks functions by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopBy {
    Self_,
    Total,
}

impl TopBy {
    pub fn label(self) -> &'static str {
        match self {
            TopBy::Self_ => "self",
            TopBy::Total => "total",
        }
    }
}

/// One function's samples, summed over every place it appears.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FunctionStat {
    pub name: String,
    pub self_samples: u64,
    /// Samples with the function anywhere on the stack (recursion counted once).
    pub total_samples: u64,
    pub self_percent: f64,
    pub total_percent: f64,
}

/// A function's share of its profile in two runs.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DiffRow {
    pub name: String,
    pub self_percent_a: f64,
    pub self_percent_b: f64,
    pub total_percent_a: f64,
    pub total_percent_b: f64,
}

impl DiffRow {
    /// Change in total share, percentage points (B − A).
    pub fn total_delta(&self) -> f64 {
        self.total_percent_b - self.total_percent_a
    }

    pub fn self_delta(&self) -> f64 {
        self.self_percent_b - self.self_percent_a
    }
}

/// A frame placed for drawing: `depth` rows below the zoomed frame,
/// columns `x .. x + width`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bar {
    pub frame: FrameId,
    pub depth: usize,
    pub x: u16,
    pub width: u16,
}

impl FlameGraph {
    /// Parses folded stacks. Blank lines are skipped; a line without a
    /// trailing sample count is an error naming its line.
    pub fn parse(text: &str) -> Result<FlameGraph, ParseError> {
        let mut frames = vec![Frame {
            name: "all".to_string(),
            total: 0,
            self_samples: 0,
            parent: None,
            children: Vec::new(),
            depth: 0,
        }];
        let mut index: HashMap<(FrameId, &str), FrameId> = HashMap::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim_end();
            if line.trim().is_empty() {
                continue;
            }
            let err = |message: &str| ParseError {
                line: i + 1,
                message: message.to_string(),
            };
            let (stack, count) = line
                .rsplit_once(' ')
                .ok_or_else(|| err("expected 'frame;frame;... COUNT'"))?;
            let count: u64 = count
                .trim()
                .parse()
                .map_err(|_| err(&format!("'{count}' is not a sample count")))?;
            frames[0].total += count;
            let mut at = 0;
            for name in stack.split(';').filter(|s| !s.is_empty()) {
                at = match index.get(&(at, name)) {
                    Some(&id) => id,
                    None => {
                        let id = frames.len();
                        let depth = frames[at].depth + 1;
                        frames.push(Frame {
                            name: name.to_string(),
                            total: 0,
                            self_samples: 0,
                            parent: Some(at),
                            children: Vec::new(),
                            depth,
                        });
                        frames[at].children.push(id);
                        index.insert((at, name), id);
                        id
                    }
                };
                frames[at].total += count;
            }
            frames[at].self_samples += count;
        }
        let mut graph = FlameGraph { frames };
        for id in 0..graph.frames.len() {
            let mut kids = std::mem::take(&mut graph.frames[id].children);
            kids.sort_by(|&a, &b| {
                let (fa, fb) = (&graph.frames[a], &graph.frames[b]);
                fb.total.cmp(&fa.total).then_with(|| fa.name.cmp(&fb.name))
            });
            graph.frames[id].children = kids;
        }
        Ok(graph)
    }

    pub fn root(&self) -> FrameId {
        0
    }

    pub fn frame(&self, id: FrameId) -> &Frame {
        &self.frames[id]
    }

    pub fn len(&self) -> usize {
        self.frames.len()
    }

    pub fn is_empty(&self) -> bool {
        self.total_samples() == 0
    }

    pub fn total_samples(&self) -> u64 {
        self.frames[0].total
    }

    /// Percent of all samples.
    pub fn percent(&self, samples: u64) -> f64 {
        match self.total_samples() {
            0 => 0.0,
            t => samples as f64 * 100.0 / t as f64,
        }
    }

    /// Frames from the root down to `id`, both included.
    pub fn path(&self, id: FrameId) -> Vec<FrameId> {
        let mut p = vec![id];
        let mut at = id;
        while let Some(parent) = self.frames[at].parent {
            p.push(parent);
            at = parent;
        }
        p.reverse();
        p
    }

    /// True when `id` is `ancestor` or below it.
    pub fn is_within(&self, id: FrameId, ancestor: FrameId) -> bool {
        let mut at = Some(id);
        while let Some(a) = at {
            if a == ancestor {
                return true;
            }
            at = self.frames[a].parent;
        }
        false
    }

    /// Siblings of `id` in drawing order, itself included; empty for the root.
    pub fn siblings(&self, id: FrameId) -> &[FrameId] {
        match self.frames[id].parent {
            Some(p) => &self.frames[p].children,
            None => &[],
        }
    }

    /// Places the subtree of `zoom` on `width` columns, `max_depth` rows.
    /// Frames narrower than one column are left out.
    pub fn layout(&self, zoom: FrameId, width: u16, max_depth: usize) -> Vec<Bar> {
        let mut bars = Vec::new();
        let total = self.frames[zoom].total;
        if total == 0 || width == 0 || max_depth == 0 {
            return bars;
        }
        let col = |offset: u64| (offset as u128 * width as u128 / total as u128) as u16;
        // (frame, depth below zoom, sample offset of its left edge)
        let mut stack = vec![(zoom, 0usize, 0u64)];
        while let Some((id, depth, offset)) = stack.pop() {
            let f = &self.frames[id];
            let x = col(offset);
            let end = col(offset + f.total);
            if end <= x {
                continue;
            }
            bars.push(Bar {
                frame: id,
                depth,
                x,
                width: end - x,
            });
            if depth + 1 < max_depth {
                let mut child_offset = offset;
                for &c in &f.children {
                    stack.push((c, depth + 1, child_offset));
                    child_offset += self.frames[c].total;
                }
            }
        }
        bars.sort_by_key(|b| (b.depth, b.x));
        bars
    }

    /// Case-insensitive substring search over frame names.
    pub fn search(&self, pattern: &str) -> SearchResult {
        let needle = pattern.to_lowercase();
        let matched: Vec<bool> = self
            .frames
            .iter()
            .enumerate()
            .map(|(i, f)| i != 0 && !needle.is_empty() && f.name.to_lowercase().contains(&needle))
            .collect();
        // A matching frame under another matching frame is already counted.
        let mut samples = 0;
        for (id, m) in matched.iter().enumerate() {
            if *m {
                let covered = self.path(id).iter().rev().skip(1).any(|&a| matched[a]);
                if !covered {
                    samples += self.frames[id].total;
                }
            }
        }
        SearchResult {
            pattern: pattern.to_string(),
            frames: matched.iter().filter(|m| **m).count(),
            share: self.percent(samples),
            matched,
            samples,
        }
    }

    /// Every function's self and total samples, summed over the tree.
    pub fn functions(&self) -> Vec<FunctionStat> {
        let mut by_name: HashMap<&str, (u64, u64)> = HashMap::new();
        for (id, f) in self.frames.iter().enumerate().skip(1) {
            let e = by_name.entry(&f.name).or_default();
            e.0 += f.self_samples;
            // Recursion: count total only at the outermost occurrence.
            let recursive = self
                .path(id)
                .iter()
                .rev()
                .skip(1)
                .any(|&a| a != 0 && self.frames[a].name == f.name);
            if !recursive {
                e.1 += f.total;
            }
        }
        by_name
            .into_iter()
            .map(|(name, (s, t))| FunctionStat {
                name: name.to_string(),
                self_samples: s,
                total_samples: t,
                self_percent: self.percent(s),
                total_percent: self.percent(t),
            })
            .collect()
    }

    /// The `n` functions with the most self (or total) samples.
    pub fn top(&self, by: TopBy, n: usize) -> Vec<FunctionStat> {
        let mut all = self.functions();
        all.sort_by(|a, b| {
            let key = |f: &FunctionStat| match by {
                TopBy::Self_ => (f.self_samples, f.total_samples),
                TopBy::Total => (f.total_samples, f.self_samples),
            };
            key(b).cmp(&key(a)).then_with(|| a.name.cmp(&b.name))
        });
        all.truncate(n);
        all
    }

    /// How each frame's share of all samples changed since `base`, in
    /// percentage points, indexed by [`FrameId`]. Frames are matched by
    /// their whole stack (a function called from elsewhere is another
    /// frame); a stack absent from `base` grew from zero. Shares, not
    /// samples, so profiles of different length compare.
    pub fn frame_deltas(&self, base: &FlameGraph) -> Vec<f64> {
        let mut in_base: Vec<Option<FrameId>> = vec![None; self.frames.len()];
        in_base[0] = Some(base.root());
        let mut deltas = vec![0.0; self.frames.len()];
        // Parents are created before their children, so ids are in
        // top-down order and a parent's match is known before its children's.
        for (id, f) in self.frames.iter().enumerate() {
            if let Some(p) = f.parent {
                in_base[id] = in_base[p].and_then(|bp| {
                    base.frames[bp]
                        .children
                        .iter()
                        .copied()
                        .find(|&c| base.frames[c].name == f.name)
                });
            }
            let before = in_base[id].map_or(0.0, |b| base.percent(base.frames[b].total));
            deltas[id] = self.percent(f.total) - before;
        }
        deltas
    }

    /// Shares of every function in `a` and `b`, largest change in total
    /// share first. Shares, not samples, so runs of different length compare.
    pub fn diff(a: &FlameGraph, b: &FlameGraph) -> Vec<DiffRow> {
        let fa: HashMap<String, FunctionStat> = a
            .functions()
            .into_iter()
            .map(|f| (f.name.clone(), f))
            .collect();
        let fb: HashMap<String, FunctionStat> = b
            .functions()
            .into_iter()
            .map(|f| (f.name.clone(), f))
            .collect();
        let mut names: Vec<&String> = fa.keys().chain(fb.keys()).collect();
        names.sort();
        names.dedup();
        let mut rows: Vec<DiffRow> = names
            .into_iter()
            .map(|n| {
                let (sa, ta) = fa
                    .get(n)
                    .map_or((0.0, 0.0), |f| (f.self_percent, f.total_percent));
                let (sb, tb) = fb
                    .get(n)
                    .map_or((0.0, 0.0), |f| (f.self_percent, f.total_percent));
                DiffRow {
                    name: n.clone(),
                    self_percent_a: sa,
                    self_percent_b: sb,
                    total_percent_a: ta,
                    total_percent_b: tb,
                }
            })
            .collect();
        rows.sort_by(|x, y| {
            y.total_delta()
                .abs()
                .total_cmp(&x.total_delta().abs())
                .then_with(|| y.self_delta().abs().total_cmp(&x.self_delta().abs()))
                .then_with(|| x.name.cmp(&y.name))
        });
        rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FOLDED: &str = "main;run;apply;store::get 600\n\
                          main;run;apply;store::put 250\n\
                          main;run;serve;decode 100\n\
                          main;park 50\n";

    fn find(g: &FlameGraph, name: &str) -> FrameId {
        (0..g.len()).find(|&i| g.frame(i).name == name).unwrap()
    }

    #[test]
    fn parses_totals_and_self() {
        let g = FlameGraph::parse(FOLDED).unwrap();
        assert_eq!(g.total_samples(), 1000);
        let run = find(&g, "run");
        assert_eq!(g.frame(run).total, 950);
        assert_eq!(g.frame(run).self_samples, 0);
        assert_eq!(g.frame(find(&g, "store::get")).self_samples, 600);
        // widest child first
        let apply = find(&g, "apply");
        assert_eq!(g.frame(run).children[0], apply);
    }

    #[test]
    fn bad_lines_name_their_number() {
        let e = FlameGraph::parse("a;b 1\n\na;b lots\n").unwrap_err();
        assert_eq!(e.line, 3);
        assert!(FlameGraph::parse("nocount\n").is_err());
        assert!(FlameGraph::parse("").unwrap().is_empty());
    }

    #[test]
    fn layout_fills_width_and_zooms() {
        let g = FlameGraph::parse(FOLDED).unwrap();
        let bars = g.layout(g.root(), 100, 10);
        assert_eq!(
            bars[0],
            Bar {
                frame: 0,
                depth: 0,
                x: 0,
                width: 100
            }
        );
        let get = bars
            .iter()
            .find(|b| b.frame == find(&g, "store::get"))
            .unwrap();
        assert_eq!((get.depth, get.x, get.width), (4, 0, 60));
        let apply = find(&g, "apply");
        let zoomed = g.layout(apply, 85, 10);
        assert_eq!(zoomed[0].width, 85);
        let get = zoomed
            .iter()
            .find(|b| b.frame == find(&g, "store::get"))
            .unwrap();
        assert_eq!((get.depth, get.width), (1, 60));
        assert!(zoomed.iter().all(|b| g.is_within(b.frame, apply)));
    }

    #[test]
    fn search_share_counts_nested_matches_once() {
        let g = FlameGraph::parse("a;x;x2 30\na;y 70\nb;x 100\n").unwrap();
        let r = g.search("X");
        assert_eq!(r.frames, 3);
        assert_eq!(r.samples, 130);
        assert!((r.share - 65.0).abs() < 1e-9);
        assert_eq!(g.search("").samples, 0);
    }

    #[test]
    fn top_by_self_and_total_with_recursion() {
        let g = FlameGraph::parse("main;f;f;g 10\nmain;f 5\nmain;h 20\n").unwrap();
        let top = g.top(TopBy::Total, 2);
        assert_eq!(top[0].name, "main");
        assert_eq!(top[1].name, "h");
        let f = g.functions().into_iter().find(|s| s.name == "f").unwrap();
        assert_eq!((f.self_samples, f.total_samples), (5, 15));
        assert_eq!(g.top(TopBy::Self_, 1)[0].name, "h");
    }

    #[test]
    fn frame_deltas_match_whole_stacks() {
        let a = FlameGraph::parse("m;get 60\nm;decode 40\n").unwrap();
        // `get` also called from `decode` now: another frame, new in b.
        let b = FlameGraph::parse("m;get 30\nm;decode 50\nm;decode;get 10\nm;new 10\n").unwrap();
        let d = b.frame_deltas(&a);
        assert_eq!(d.len(), b.len());
        let id = |path: &[&str]| {
            (0..b.len())
                .find(|&i| {
                    let names: Vec<&str> = b.path(i)[1..]
                        .iter()
                        .map(|&f| b.frame(f).name.as_str())
                        .collect();
                    names == path
                })
                .unwrap()
        };
        let close = |x: f64, y: f64| (x - y).abs() < 1e-9;
        assert!(close(d[b.root()], 0.0));
        assert!(close(d[id(&["m"])], 0.0));
        assert!(close(d[id(&["m", "get"])], -30.0));
        assert!(close(d[id(&["m", "decode"])], 20.0));
        assert!(close(d[id(&["m", "decode", "get"])], 10.0));
        assert!(close(d[id(&["m", "new"])], 10.0));
    }

    #[test]
    fn diff_orders_by_change() {
        let a = FlameGraph::parse("m;get 60\nm;decode 40\n").unwrap();
        let b = FlameGraph::parse("m;get 30\nm;decode 60\nm;new 10\n").unwrap();
        let d = FlameGraph::diff(&a, &b);
        assert_eq!(d[0].name, "get");
        assert!((d[0].total_delta() + 30.0).abs() < 1e-9);
        let new = d.iter().find(|r| r.name == "new").unwrap();
        assert_eq!(new.total_percent_a, 0.0);
        assert!((new.total_percent_b - 10.0).abs() < 1e-9);
    }
}
