//! Frames → functions, for the top-N table and the diff.
//!
//! A folded stack is a chain of frames, most of them (with fat LTO) inlined
//! helpers of the standard library: `copy_nonoverlapping`, `as_bytes`,
//! `try_fold`. Which of two sibling helpers a sample lands in flips from run
//! to run, so ranking frames makes two runs of one config look different.
//! Grouped by [`Grouping::Functions`], a frame that was inlined counts for
//! the function it was inlined into (the code that actually ran), and
//! generic instances of one function are one function: on the real runs'
//! fixtures the swing between `as_bytes` and the shard lock (+27/−25
//! points) becomes `kv_server::store::apply` 52.4% → 54.4%. Names are compared in full
//! (`dashmap::get` is not `kv_server::store::get`); a name without a path
//! in a file without inline marks (older profiles) is told apart by its
//! caller, so unrelated `{closure#0}`s or `run`s are never merged.

use std::collections::HashMap;

use crate::flame::{FlameGraph, FrameId};

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

/// How frames are counted in tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Grouping {
    /// Inlined frames count for their enclosing (real) function.
    #[default]
    Functions,
    /// Every frame name on its own (inlined detail).
    Frames,
}

impl Grouping {
    pub fn label(self) -> &'static str {
        match self {
            Grouping::Functions => "functions",
            Grouping::Frames => "frames (inlined detail)",
        }
    }

    pub fn toggle(self) -> Grouping {
        match self {
            Grouping::Functions => Grouping::Frames,
            Grouping::Frames => Grouping::Functions,
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
    pub self_samples_a: u64,
    pub self_samples_b: u64,
    pub total_samples_a: u64,
    pub total_samples_b: u64,
    /// The 95% interval of the change in total share includes zero: with
    /// these sample counts the change may be sampling noise.
    pub noise: bool,
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

/// Profiles with fewer samples than this get a warning: one sample is
/// more than 0.1 point, and a change of a few points may be chance.
pub const FEW_SAMPLES: u64 = 1000;

/// Half-width of the 95% interval of a change of share from `k_a` of `n_a`
/// samples to `k_b` of `n_b`, in percentage points: the Agresti–Caffo
/// interval for two binomial proportions (one sample added to each side
/// of each, so 0 → 1 sample is never "certain").
pub fn change_margin(k_a: u64, n_a: u64, k_b: u64, n_b: u64) -> f64 {
    let var = |k: u64, n: u64| {
        let (k, n) = (k as f64 + 1.0, n as f64 + 2.0);
        let p = k / n;
        p * (1.0 - p) / n
    };
    1.96 * (var(k_a, n_a) + var(k_b, n_b)).sqrt() * 100.0
}

/// True when the name carries a path outside its generic arguments.
fn has_path(name: &str) -> bool {
    name.starts_with('<') || strip_generics(name).contains("::")
}

/// `tokio::task::poll<F, S>` → `tokio::task::poll`; a name that starts
/// with `<` (`<T as Trait>::f`) is kept whole: its type is its identity.
pub fn strip_generics(name: &str) -> String {
    if name.starts_with('<') {
        return name.to_string();
    }
    let mut out = String::with_capacity(name.len());
    let mut depth = 0usize;
    for c in name.chars() {
        match c {
            '<' => depth += 1,
            '>' if depth > 0 => depth -= 1,
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

/// Each frame's function: `keys[frame]` indexes `names`. The root has none.
pub struct FunctionKeys {
    pub names: Vec<String>,
    pub keys: Vec<Option<usize>>,
    /// The frame's samples count for its parent's function (absorbed).
    pub absorbed: Vec<bool>,
}

impl FunctionKeys {
    pub fn of(g: &FlameGraph, grouping: Grouping) -> FunctionKeys {
        let mut names: Vec<String> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        let mut keys: Vec<Option<usize>> = vec![None; g.len()];
        let mut absorbed = vec![false; g.len()];
        // Parents come before children (ids are in creation order).
        for id in 1..g.len() {
            let f = g.frame(id);
            let parent = f.parent.unwrap_or(0);
            let parent_key = keys[parent];
            if grouping == Grouping::Functions && f.inlined {
                if let Some(k) = parent_key {
                    keys[id] = Some(k);
                    absorbed[id] = true;
                    continue;
                }
            }
            let name = match grouping {
                Grouping::Frames => f.name.clone(),
                Grouping::Functions => {
                    let known = has_path(&f.name) || (g.has_inline_marks() && !f.inlined);
                    match parent_key {
                        Some(pk) if !known => format!("{} (in {})", f.name, base(&names[pk])),
                        _ if has_path(&f.name) => strip_generics(&f.name),
                        _ => f.name.clone(),
                    }
                }
            };
            let k = *index.entry(name.clone()).or_insert_with(|| {
                names.push(name);
                names.len() - 1
            });
            keys[id] = Some(k);
        }
        FunctionKeys {
            names,
            keys,
            absorbed,
        }
    }
}

/// `run (in main)` → `run`: the caller is said once, not nested.
fn base(name: &str) -> &str {
    name.split(" (in ").next().unwrap_or(name)
}

impl FlameGraph {
    /// Every function's self and total samples ([`Grouping::Functions`]).
    pub fn functions(&self) -> Vec<FunctionStat> {
        self.functions_by(Grouping::Functions)
    }

    pub fn functions_by(&self, grouping: Grouping) -> Vec<FunctionStat> {
        let fk = FunctionKeys::of(self, grouping);
        let mut self_s = vec![0u64; fk.names.len()];
        let mut total_s = vec![0u64; fk.names.len()];
        // Depth-first with a count of each function on the current stack,
        // so a function's total is taken at its outermost frame only.
        let mut on_stack = vec![0u32; fk.names.len()];
        let mut stack: Vec<(FrameId, bool)> = vec![(self.root(), false)];
        while let Some((id, leaving)) = stack.pop() {
            let key = fk.keys[id];
            if leaving {
                if let Some(k) = key {
                    on_stack[k] -= 1;
                }
                continue;
            }
            let f = self.frame(id);
            if let Some(k) = key {
                self_s[k] += f.self_samples;
                if on_stack[k] == 0 {
                    total_s[k] += f.total;
                }
                on_stack[k] += 1;
            }
            stack.push((id, true));
            stack.extend(f.children.iter().map(|&c| (c, false)));
        }
        fk.names
            .into_iter()
            .enumerate()
            .map(|(k, name)| FunctionStat {
                name,
                self_samples: self_s[k],
                total_samples: total_s[k],
                self_percent: self.percent(self_s[k]),
                total_percent: self.percent(total_s[k]),
            })
            .collect()
    }

    /// The `n` functions with the most self (or total) samples.
    pub fn top(&self, by: TopBy, n: usize) -> Vec<FunctionStat> {
        self.top_by(by, n, Grouping::Functions)
    }

    pub fn top_by(&self, by: TopBy, n: usize, grouping: Grouping) -> Vec<FunctionStat> {
        let mut all = self.functions_by(grouping);
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

    /// Shares of every function in `a` and `b`, largest change in total
    /// share first. Shares, not samples, so runs of different length compare.
    pub fn diff(a: &FlameGraph, b: &FlameGraph) -> Vec<DiffRow> {
        FlameGraph::diff_by(a, b, Grouping::Functions)
    }

    pub fn diff_by(a: &FlameGraph, b: &FlameGraph, grouping: Grouping) -> Vec<DiffRow> {
        let by_name = |g: &FlameGraph| -> HashMap<String, FunctionStat> {
            g.functions_by(grouping)
                .into_iter()
                .map(|f| (f.name.clone(), f))
                .collect()
        };
        let (fa, fb) = (by_name(a), by_name(b));
        let (na, nb) = (a.total_samples(), b.total_samples());
        let mut names: Vec<&String> = fa.keys().chain(fb.keys()).collect();
        names.sort();
        names.dedup();
        let mut rows: Vec<DiffRow> = names
            .into_iter()
            .map(|n| {
                let zero = || FunctionStat {
                    name: n.clone(),
                    self_samples: 0,
                    total_samples: 0,
                    self_percent: 0.0,
                    total_percent: 0.0,
                };
                let sa = fa.get(n).cloned().unwrap_or_else(zero);
                let sb = fb.get(n).cloned().unwrap_or_else(zero);
                let delta = sb.total_percent - sa.total_percent;
                let margin = change_margin(sa.total_samples, na, sb.total_samples, nb);
                DiffRow {
                    name: n.clone(),
                    self_percent_a: sa.self_percent,
                    self_percent_b: sb.self_percent,
                    total_percent_a: sa.total_percent,
                    total_percent_b: sb.total_percent,
                    self_samples_a: sa.self_samples,
                    self_samples_b: sb.self_samples,
                    total_samples_a: sa.total_samples,
                    total_samples_b: sb.total_samples,
                    noise: delta.abs() <= margin,
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

    fn stat<'a>(s: &'a [FunctionStat], name: &str) -> &'a FunctionStat {
        s.iter()
            .find(|f| f.name == name)
            .unwrap_or_else(|| panic!("no {name} in {s:?}"))
    }

    #[test]
    fn inlined_std_frames_count_for_their_function() {
        let g = FlameGraph::parse(
            "t;kv_server::store::apply;kv_server::store::get_[i];hashbrown::raw::find_inner<K>_[i];core::str::as_bytes_[i] 30\n\
             t;kv_server::store::apply;kv_server::store::get_[i];hashbrown::raw::find_inner<V>_[i];core::ptr::copy_nonoverlapping<u8>_[i] 70\n\
             t;kv_server::store::apply;mi_malloc 5\n\
             t;dashmap::get<K> 10\n",
        )
        .unwrap();
        let f = g.functions();
        let apply = stat(&f, "kv_server::store::apply");
        assert_eq!((apply.self_samples, apply.total_samples), (100, 105));
        assert!(f
            .iter()
            .all(|s| !s.name.contains("as_bytes") && !s.name.contains("find_inner")));
        assert_eq!(stat(&f, "mi_malloc").self_samples, 5);
        assert_eq!(stat(&f, "dashmap::get").self_samples, 10);
        // Inlined detail keeps every frame.
        let d = g.functions_by(Grouping::Frames);
        assert_eq!(stat(&d, "core::str::as_bytes").self_samples, 30);
        assert_eq!(
            stat(&d, "core::ptr::copy_nonoverlapping<u8>").self_samples,
            70
        );
        assert_eq!(stat(&d, "hashbrown::raw::find_inner<V>").total_samples, 70);
    }

    #[test]
    fn short_names_without_paths_are_not_merged() {
        // An older file: no inline marks, bare names.
        let g = FlameGraph::parse("t;main;run;{closure#0} 5\nt;serve;run;{closure#0} 7\n").unwrap();
        let f = g.functions();
        assert_eq!(stat(&f, "run (in main)").self_samples, 0);
        assert_eq!(stat(&f, "{closure#0} (in run)").self_samples, 12);
        assert_eq!(stat(&f, "run (in serve)").total_samples, 7);
        // Same path, different generic instances: one function.
        let g = FlameGraph::parse("t;tokio::poll<A> 5\nt;tokio::poll<B> 7\n").unwrap();
        assert_eq!(stat(&g.functions(), "tokio::poll").self_samples, 12);
    }

    #[test]
    fn margin_grows_with_fewer_samples() {
        // 40% → 45% of 10,000 samples each: beyond noise (margin ~1.4 points).
        let m = change_margin(4000, 10_000, 4500, 10_000);
        assert!(m > 1.0 && m < 2.0, "{m}");
        // The same shares from 40 and 287 samples: ±16 points.
        let m = change_margin(16, 40, 129, 287);
        assert!(m > 10.0, "{m}");
        assert!(change_margin(0, 1000, 1, 1000) > 0.1);
    }

    #[test]
    fn diff_marks_noise_and_lists_functions_only_in_a() {
        let a = FlameGraph::parse("m;k::get 5000\nm;k::decode 4000\nm;k::gone 1000\n").unwrap();
        let b = FlameGraph::parse("m;k::get 5050\nm;k::decode 4950\n").unwrap();
        let d = FlameGraph::diff(&a, &b);
        let row = |n: &str| d.iter().find(|r| r.name == n).unwrap();
        assert!(row("k::get").noise, "{:?}", row("k::get"));
        assert!(!row("k::decode").noise);
        assert!(!row("k::gone").noise);
        assert_eq!(row("k::gone").total_percent_b, 0.0);
        assert!((row("k::gone").total_delta() + 10.0).abs() < 1e-9);
    }
}
