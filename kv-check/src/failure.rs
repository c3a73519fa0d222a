//! What a FAIL keeps of its key once the check has moved on: the
//! conflicting ops and the ops of the key nearest them in time, as copies.
//! The report and the witness page need nothing else, so neither path of
//! the check has to keep a failing key's whole history (or anyone's).

use crate::check::{OpRef, Violation};
use crate::load::{Rec, NEVER};

/// Ops a failure keeps at most (the conflicting ones always among them):
/// what its witness page draws.
pub const MAX_OPS: usize = 80;

/// One failing key: its violation, naming ops by their index in `recs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub violation: Violation,
    /// The conflicting ops first, then the nearby ones.
    pub recs: Vec<Rec>,
    /// How many of `recs` are conflicting ops.
    pub conflicting: usize,
}

impl Failure {
    pub fn key(&self) -> u64 {
        self.violation.key()
    }

    /// The ops of the key near the conflict that are not part of it.
    pub fn nearby(&self) -> &[Rec] {
        &self.recs[self.conflicting..]
    }

    /// Keeps what `violation` needs of `recs`, the key's ops (in any
    /// order; the violation names them by index in it): its conflicting
    /// ops, and up to [`MAX_OPS`] in all of the others overlapping the
    /// window around them (the conflict's span, widened by a quarter each
    /// side), nearest first.
    pub fn keep(recs: &[Rec], violation: &Violation) -> Failure {
        let conflict: Vec<usize> = violation
            .ops(recs)
            .into_iter()
            .filter_map(|o| match o {
                OpRef::Rec(i) => Some(i),
                OpRef::Initial => None,
            })
            .collect();
        let lo = conflict.iter().map(|&i| recs[i].invoke).min().unwrap_or(0);
        let hi = conflict
            .iter()
            .map(|&i| {
                let r = &recs[i];
                if r.complete == NEVER {
                    r.invoke
                } else {
                    r.complete
                }
            })
            .max()
            .unwrap_or(lo);
        let pad = ((hi - lo) / 4).max(1_000);
        let (from, to) = (lo.saturating_sub(pad), hi.saturating_add(pad));
        let centre = lo / 2 + hi / 2;
        let mut others: Vec<usize> = (0..recs.len())
            .filter(|&i| {
                let r = &recs[i];
                !conflict.contains(&i) && r.invoke <= to && r.complete >= from
            })
            .collect();
        // Nearest first; ties by position, so the choice is deterministic.
        others.sort_by_key(|&i| (recs[i].invoke.abs_diff(centre), recs[i].loc));
        others.truncate(MAX_OPS.saturating_sub(conflict.len()));
        let kept: Vec<Rec> = conflict.iter().chain(&others).map(|&i| recs[i]).collect();
        let index_of = |i: usize| {
            conflict
                .iter()
                .position(|&c| c == i)
                .expect("a violation names only its conflicting ops")
        };
        Failure {
            violation: violation.map_ops(index_of),
            recs: kept,
            conflicting: conflict.len(),
        }
    }
}
