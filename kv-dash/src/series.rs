//! Series of trials as the browser and `kv-dash show` present them: which
//! runs share a series id, the median and spread of their throughput and
//! p99, and the verdict against the baseline (`kv_core::series`,
//! `kv_core::trials`). Built once per log so moving the cursor reads no
//! files.

use std::collections::HashMap;
use std::path::Path;

use kv_core::runlog::RunRecord;
use kv_core::series::{self, Baseline, Group, GroupComparison, SeriesInfo, TrialInfo};
use kv_core::trials::{Comparison, Metric, Spread};

use crate::browse::fmt_ops;

/// One series: what it is, its trials and their figures.
#[derive(Debug, Clone)]
pub struct SeriesSummary {
    pub series_id: String,
    /// What distinguishes it (`--batch 4`, `HEAD~1 (3f2a…)`), may be empty.
    pub label: String,
    pub created_at: String,
    /// Trials asked for (the members found when no series file says).
    pub asked: u32,
    /// Run ids of its trials, in log order.
    pub members: Vec<String>,
    pub failed: usize,
    /// Throughput (servers' total) over the ok trials.
    pub throughput: Option<Spread>,
    pub p99_us: Option<Spread>,
    pub ok: usize,
    /// The other series of an A/B.
    pub compared_with: Option<String>,
    /// This series is the baseline.
    pub is_baseline: bool,
    /// Throughput of this series against the baseline (not for the
    /// baseline itself).
    pub vs_baseline: Option<Comparison>,
    /// What the baseline is, as `compare` names it (`series s-…`, `tag x`).
    pub baseline_label: Option<String>,
}

/// `median 1,300,000 ±0.4%`: the median, and half the range of the
/// trials relative to it (the spread a reader can compare between rows).
pub fn median_spread(s: &Spread, fmt: impl Fn(f64) -> String) -> String {
    let half = (s.max - s.min) / 2.0;
    if s.median > 0.0 && half > 0.0 {
        format!("{} ±{:.1}%", fmt(s.median), half / s.median * 100.0)
    } else {
        fmt(s.median)
    }
}

impl SeriesSummary {
    /// `+30.0% [+29.4%, +30.6%] better`, `too few trials`, or the
    /// baseline's own mark.
    pub fn verdict(&self) -> String {
        if self.is_baseline {
            return "baseline".into();
        }
        self.vs_baseline
            .as_ref()
            .map_or_else(|| "-".into(), Comparison::summary)
    }

    /// The series' items of a run's detail (flowed to the pane's width):
    /// series and trial, throughput median and range, the verdict.
    pub fn detail_items(&self, trial: u32) -> Vec<String> {
        let mut items = vec![if self.label.is_empty() {
            format!("series {}: trial {trial} of {}", self.series_id, self.asked)
        } else {
            format!(
                "series {} ({}): trial {trial} of {}",
                self.series_id, self.label, self.asked
            )
        }];
        if let Some(t) = &self.throughput {
            items.push(format!(
                "throughput median {} over {} ok trials",
                median_spread(t, |v| format!("{} ops/s", fmt_ops(v))),
                self.ok
            ));
            items.push(format!("(min {}, max {})", fmt_ops(t.min), fmt_ops(t.max)));
        }
        if self.failed > 0 {
            items.push(format!("{} failed", self.failed));
        }
        if self.is_baseline {
            items.push("this series is the baseline".into());
        } else if let Some(c) = &self.vs_baseline {
            let of = self.baseline_label.as_deref().unwrap_or("baseline");
            items.push(format!("vs baseline: {} ({of})", c.summary()));
        }
        items
    }
}

/// Every series of a log and which run belongs to which.
#[derive(Debug, Clone, Default)]
pub struct SeriesIndex {
    /// Oldest first.
    pub series: Vec<SeriesSummary>,
    /// Run id → (position in `series`, trial number).
    of_run: HashMap<String, (usize, u32)>,
}

impl SeriesIndex {
    /// Reads each run's `trial.json` once (a run's `series_id` column
    /// alone says nothing of its trial number) and the series files.
    pub fn build(dir: &Path, runs: &[RunRecord]) -> SeriesIndex {
        let infos = SeriesInfo::list(dir);
        let mut members: Vec<(String, Vec<(usize, u32)>)> = infos
            .iter()
            .map(|i| (i.series_id.clone(), Vec::new()))
            .collect();
        for (k, r) in runs.iter().enumerate() {
            let trial = TrialInfo::read(dir, &r.run_id);
            let id = match &trial {
                Some(t) if !t.series_id.is_empty() => t.series_id.clone(),
                _ if !r.series_id.is_empty() => r.series_id.clone(),
                _ => continue,
            };
            let n = trial.map_or(0, |t| t.trial);
            match members.iter_mut().find(|m| m.0 == id) {
                Some(m) => m.1.push((k, n)),
                None => members.push((id, vec![(k, n)])),
            }
        }
        let baseline = Baseline::read(dir);
        let base_group = baseline
            .as_ref()
            .and_then(|b| series::resolve(dir, runs, b.spec()).ok());
        let mut index = SeriesIndex::default();
        for (id, trials) in members {
            if trials.is_empty() {
                continue;
            }
            let info = infos.iter().find(|i| i.series_id == id);
            let group = Group::new(
                format!("series {id}"),
                trials.iter().map(|&(k, _)| &runs[k]).collect(),
                dir,
            );
            let is_baseline = matches!(&baseline, Some(Baseline::Series(b)) if *b == id);
            let vs_baseline = match (&base_group, is_baseline) {
                (Some(base), false) => {
                    let c: GroupComparison = series::compare_groups(base, &group);
                    c.metric(Metric::Throughput).cloned()
                }
                _ => None,
            };
            let pos = index.series.len();
            for &(k, n) in &trials {
                index.of_run.insert(runs[k].run_id.clone(), (pos, n));
            }
            index.series.push(SeriesSummary {
                label: info.map_or(String::new(), |i| i.label.clone()),
                created_at: info.map_or_else(
                    || runs[trials[0].0].started_at.clone(),
                    |i| i.created_at.clone(),
                ),
                asked: info.map_or(trials.len() as u32, |i| i.trials),
                members: trials
                    .iter()
                    .map(|&(k, _)| runs[k].run_id.clone())
                    .collect(),
                failed: group.failed,
                throughput: group.sample(Metric::Throughput).spread(),
                p99_us: group.sample(Metric::P99).spread(),
                ok: group.runs.len(),
                compared_with: info.and_then(|i| i.compared_with.clone()),
                is_baseline,
                vs_baseline,
                baseline_label: base_group.as_ref().map(|g| g.label.clone()),
                series_id: id,
            });
        }
        index
            .series
            .sort_by(|a, b| (&a.created_at, &a.series_id).cmp(&(&b.created_at, &b.series_id)));
        // Positions changed with the sort: map the runs again.
        let pos: HashMap<&str, usize> = index
            .series
            .iter()
            .enumerate()
            .map(|(i, s)| (s.series_id.as_str(), i))
            .collect();
        let mut of_run = HashMap::new();
        for s in &index.series {
            for m in &s.members {
                let (_, n) = index.of_run[m];
                of_run.insert(m.clone(), (pos[s.series_id.as_str()], n));
            }
        }
        index.of_run = of_run;
        index
    }

    /// The series a run is a trial of, and its trial number.
    pub fn of_run(&self, run_id: &str) -> Option<(&SeriesSummary, u32)> {
        let &(i, n) = self.of_run.get(run_id)?;
        Some((&self.series[i], n))
    }
}
