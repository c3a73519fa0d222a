//! Folded stacks (`frame;frame;leaf count` per line) → a call tree, and the
//! questions kv-dash asks of it: layout for drawing, search with share of
//! samples, top-N functions, and the difference between two profiles.
//! No UI types here; navigation state lives in `app`.

use std::collections::HashMap;

pub use crate::functions::{DiffRow, FunctionStat, Grouping, TopBy};

/// Suffix of an inlined frame in a folded file (inferno's annotation,
/// written by `kv_core::folded`).
pub const INLINED: &str = kv_core::folded::INLINED;

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
    /// Written with inferno's `_[i]` suffix: inlined into its parent (the
    /// suffix is not part of `name`).
    pub inlined: bool,
}

/// A frame splits the work when its second-widest callee has this share of it.
pub const SPLIT_PERCENT: u64 = 10;

/// A frame of this project: its path starts in a `kv_` crate.
pub fn is_project(name: &str) -> bool {
    name.trim_start_matches('<').starts_with("kv_")
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
    /// Some frame carried an inline mark: the file says which frames are
    /// inlined (older files do not, and then nothing is known about it).
    inline_marks: bool,
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
            inlined: false,
        }];
        let mut inline_marks = false;
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
            // The count follows the last space: frame names themselves may
            // hold spaces (`<Box<dyn FnOnce() + Send> as FnOnce>::call_once`).
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
                        let (shown, inlined) = match name.strip_suffix(INLINED) {
                            Some(n) => (n, true),
                            None => (name, false),
                        };
                        inline_marks |= inlined;
                        frames.push(Frame {
                            name: shown.to_string(),
                            inlined,
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
        let mut graph = FlameGraph {
            frames,
            inline_marks,
        };
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

    /// True when the file marked inlined frames (`_[i]`).
    pub fn has_inline_marks(&self) -> bool {
        self.inline_marks
    }

    /// Where the work is: down the widest path, the first frame of this
    /// project (a `kv_` crate); without one, the first frame that splits
    /// (its second-widest callee holds at least [`SPLIT_PERCENT`] of it).
    /// Everything above is thread start and runtime plumbing.
    pub fn default_focus(&self) -> FrameId {
        let widest_path = {
            let mut p = vec![self.root()];
            while let Some(&c) = self.frames[*p.last().unwrap_or(&0)].children.first() {
                p.push(c);
            }
            p
        };
        if let Some(&id) = widest_path
            .iter()
            .find(|&&id| id != 0 && is_project(&self.frames[id].name))
        {
            return id;
        }
        widest_path
            .iter()
            .copied()
            .find(|&id| {
                let f = &self.frames[id];
                f.children
                    .get(1)
                    .is_some_and(|&c| self.frames[c].total * 100 >= f.total * SPLIT_PERCENT)
            })
            .unwrap_or(self.root())
    }

    /// The hot frame below `focus`: down the widest path, the deepest
    /// frame of this project still holding half of `focus`'s samples (in a
    /// server, the store lookup). `focus` itself when there is none.
    pub fn hot_frame(&self, focus: FrameId) -> FrameId {
        let half = self.frames[focus].total / 2;
        let mut at = focus;
        let mut hot = focus;
        while let Some(&c) = self.frames[at].children.first() {
            if self.frames[c].total < half.max(1) {
                break;
            }
            at = c;
            if is_project(&self.frames[c].name) {
                hot = c;
            }
        }
        hot
    }

    /// Frames matching a search, hottest first (the order `n` visits them).
    pub fn matches(&self, search: &SearchResult) -> Vec<FrameId> {
        let mut ids: Vec<FrameId> = (0..self.frames.len())
            .filter(|&i| search.matched.get(i).copied().unwrap_or(false))
            .collect();
        ids.sort_by(|&a, &b| {
            self.frames[b]
                .total
                .cmp(&self.frames[a].total)
                .then(a.cmp(&b))
        });
        ids
    }

    /// Samples under a matching frame within `zoom` (nested matches once).
    pub fn matched_within(&self, search: &SearchResult, zoom: FrameId) -> u64 {
        let mut samples = 0;
        let mut stack = vec![zoom];
        while let Some(id) = stack.pop() {
            if search.matched.get(id).copied().unwrap_or(false) {
                samples += self.frames[id].total;
            } else {
                stack.extend(self.frames[id].children.iter().copied());
            }
        }
        samples
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

    /// Stacks of `base` that `self` no longer has, as (frame of `base`,
    /// frame of `self` it hung under, share lost in points), largest loss
    /// first. Only the topmost missing frame of each stack is listed: its
    /// share includes everything below it.
    pub fn vanished(&self, base: &FlameGraph) -> Vec<Vanished> {
        let mut in_self: Vec<Option<FrameId>> = vec![None; base.frames.len()];
        in_self[0] = Some(self.root());
        let mut gone = Vec::new();
        for (id, f) in base.frames.iter().enumerate() {
            let Some(p) = f.parent else { continue };
            let Some(sp) = in_self[p] else { continue };
            in_self[id] = self.frames[sp]
                .children
                .iter()
                .copied()
                .find(|&c| self.frames[c].name == f.name);
            if in_self[id].is_none() {
                gone.push(Vanished {
                    base_frame: id,
                    name: f.name.clone(),
                    under: sp,
                    loss: base.percent(f.total),
                });
            }
        }
        gone.sort_by(|a, b| {
            b.loss
                .total_cmp(&a.loss)
                .then(a.base_frame.cmp(&b.base_frame))
        });
        gone
    }
}

/// A stack present only in the base profile of a diff.
#[derive(Debug, Clone, PartialEq)]
pub struct Vanished {
    pub base_frame: FrameId,
    pub name: String,
    /// The frame of the newer profile it was called from.
    pub under: FrameId,
    /// Its share of the base profile, percentage points.
    pub loss: f64,
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
        let g = FlameGraph::parse("main;m::f;m::f;m::g 10\nmain;m::f 5\nmain;m::h 20\n").unwrap();
        let top = g.top(TopBy::Total, 2);
        assert_eq!(top[0].name, "main");
        assert_eq!(top[1].name, "m::h");
        let f = g
            .functions()
            .into_iter()
            .find(|s| s.name == "m::f")
            .unwrap();
        assert_eq!((f.self_samples, f.total_samples), (5, 15));
        assert_eq!(g.top(TopBy::Self_, 1)[0].name, "m::h");
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
        let a = FlameGraph::parse("m;k::get 60\nm;k::decode 40\n").unwrap();
        let b = FlameGraph::parse("m;k::get 30\nm;k::decode 60\nm;k::new 10\n").unwrap();
        let d = FlameGraph::diff(&a, &b);
        assert_eq!(d[0].name, "k::get");
        assert!((d[0].total_delta() + 30.0).abs() < 1e-9);
        let new = d.iter().find(|r| r.name == "k::new").unwrap();
        assert_eq!(new.total_percent_a, 0.0);
        assert!((new.total_percent_b - 10.0).abs() < 1e-9);
    }
}
