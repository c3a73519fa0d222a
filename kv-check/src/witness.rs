//! A witness page for a FAIL: one self-contained HTML file (inline SVG and
//! CSS, no scripts, nothing fetched) showing the failing key's ops in a
//! window around the violation, one lane per client thread, the
//! conflicting ops highlighted, and the sentence that says why no order of
//! them works. Only the window is drawn, so the page stays small however
//! long the history is.

use std::collections::BTreeMap;
use std::fmt::Write;

use kv_core::history::{Action, HistoryOp, Outcome};

use crate::check::{Initial, OpRef, Summary};
use crate::failure::{Failure, MAX_OPS};
use crate::load::{InputError, Loaded, Loc};
use crate::report::{fail_text, fetch_rows, kind_value, op_line};

const WIDTH: f64 = 1000.0;
const LEFT: f64 = 150.0;
const LANE: f64 = 30.0;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The file name of the witness of `key`.
pub fn file_name(key: u64) -> String {
    format!("witness-key-{key}.html")
}

fn label(op: &HistoryOp) -> String {
    let (kind, value) = kind_value(op);
    format!("{kind} {value}")
}

/// The page for one failing key of `summary`; `pages` are the keys that
/// get a page (this one among them), named on it.
pub fn witness_html(
    loaded: &Loaded,
    summary: &Summary,
    failure: &Failure,
    initial: Initial,
    pages: &[u64],
) -> Result<String, InputError> {
    let recs = &failure.recs;
    let key = failure.key();
    let text = fail_text(loaded, summary, failure, initial)?;
    let reason = text
        .lines()
        .next()
        .unwrap_or_default()
        .trim_start_matches("FAIL: ")
        .to_string();
    let initial_involved = failure.violation.ops(recs).contains(&OpRef::Initial);
    let nearby = failure.nearby().len();
    let shown: Vec<(usize, bool)> = (0..recs.len())
        .map(|i| (i, i < failure.conflicting))
        .collect();
    let locs: Vec<Loc> = shown.iter().map(|&(i, _)| recs[i].loc).collect();
    let rows = fetch_rows(loaded, &locs)?;

    let mut lanes: BTreeMap<(u32, u32), usize> = BTreeMap::new();
    let mut ops: Vec<(u32, &HistoryOp, bool, Loc)> = Vec::new();
    for &(i, hot) in &shown {
        let loc = recs[i].loc;
        if let Some((client, op)) = rows.get(&loc) {
            lanes.insert((*client, op.thread), 0);
            ops.push((*client, op, hot, loc));
        }
    }
    for (n, lane) in lanes.values_mut().enumerate() {
        *lane = n;
    }
    ops.sort_by_key(|(c, op, _, _)| (*c, op.thread, op.invoke_ns));
    // Times on the checker's clock: the reference clock with ε for
    // histories of several hosts, else the one machine's clock.
    let maps: Option<Vec<kv_core::clock::ClockMap>> = loaded
        .clocks
        .as_ref()
        .map(|c| c.iter().map(|c| c.mapper()).collect());
    let at = |file: usize, t: u64| -> (i128, u64) {
        match maps.as_ref().and_then(|m| m[file].map(t)) {
            Some(m) => (m.reference_ns, m.epsilon_ns),
            None => (i128::from(t), 0),
        }
    };
    // (invoke, ε, completion and ε unless unknown) per op.
    type Span = ((i128, u64), Option<(i128, u64)>);
    let spans: Vec<Span> = ops
        .iter()
        .map(|(_, op, _, loc)| {
            let inv = at(loc.file(), op.invoke_ns);
            let cmp = (op.outcome != Outcome::Unknown)
                .then(|| at(loc.file(), op.complete_ns.max(op.invoke_ns)));
            (inv, cmp)
        })
        .collect();
    let t0 = spans
        .iter()
        .map(|(i, _)| i.0 - i128::from(i.1))
        .min()
        .unwrap_or(0);
    let t1 = spans
        .iter()
        .map(|(i, c)| c.map_or(i.0, |c| c.0 + i128::from(c.1)))
        .max()
        .unwrap_or(t0)
        .max(t0 + 1);
    let span = (t1 - t0) as f64 * 1.1;
    let x = |t: i128| LEFT + (t - t0).max(0) as f64 / span * (WIDTH - LEFT - 10.0);
    let height = 40.0 + LANE * lanes.len() as f64;

    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" role="img" aria-label="ops of key {key}">"#
    );
    for (&(client, thread), &lane) in &lanes {
        let y = 20.0 + LANE * lane as f64;
        let _ = write!(
            svg,
            r#"<text x="4" y="{:.0}" class="lane">client {client} thread {thread}</text><line x1="{LEFT}" x2="{WIDTH}" y1="{:.0}" y2="{:.0}" class="grid"/>"#,
            y + 18.0,
            y + LANE - 2.0,
            y + LANE - 2.0
        );
    }
    for ((client, op, hot, loc), (inv, cmp)) in ops.iter().zip(&spans) {
        let lane = lanes[&(*client, op.thread)];
        let y = 24.0 + LANE * lane as f64;
        let unknown = cmp.is_none();
        let x0 = x(inv.0);
        let x1 = match cmp {
            None => WIDTH - 10.0,
            Some(c) => x(c.0).max(x0 + 2.0),
        };
        let class = match (hot, matches!(op.action, Action::Put(_)), unknown) {
            (true, _, _) => "op conflict",
            (false, _, true) => "op unknown",
            (false, true, _) => "op put",
            (false, false, _) => "op get",
        };
        let where_ = format!("{}:{}", loaded.paths[loc.file()].display(), loc.line());
        // ε as whiskers: how far each end may really lie.
        let mid = y + (LANE - 10.0) / 2.0;
        let mut whiskers = String::new();
        if inv.1 > 0 {
            let _ = write!(
                whiskers,
                r#"<line class="eps" x1="{:.1}" x2="{x0:.1}" y1="{mid:.0}" y2="{mid:.0}"/>"#,
                x(inv.0 - i128::from(inv.1))
            );
        }
        if let Some(c) = cmp.filter(|c| c.1 > 0) {
            let _ = write!(
                whiskers,
                r#"<line class="eps" x1="{x1:.1}" x2="{:.1}" y1="{mid:.0}" y2="{mid:.0}"/>"#,
                x(c.0 + i128::from(c.1))
            );
        }
        let _ = write!(
            svg,
            r#"<g class="{class}"><title>{}   {}</title>{whiskers}<rect x="{x0:.1}" y="{y:.0}" width="{:.1}" height="{:.0}" rx="3"/><text x="{:.1}" y="{:.0}">{}</text></g>"#,
            esc(&op_line(*client, op)),
            esc(&where_),
            x1 - x0,
            LANE - 10.0,
            x0 + 3.0,
            y + 14.0,
            esc(&label(op))
        );
    }
    let _ = write!(
        svg,
        r#"<text x="{LEFT}" y="{:.0}" class="axis">{} ns</text><text x="{:.0}" y="{:.0}" class="axis" text-anchor="end">+{} ns</text></svg>"#,
        height - 4.0,
        t0,
        WIDTH - 10.0,
        height - 4.0,
        t1 - t0
    );

    let mut table = String::from(
        "<table><tr><th>conflicting op (client thread seq: kind value, invoke..complete ns, outcome)</th><th>where</th></tr>",
    );
    for (client, op, _, loc) in ops.iter().filter(|o| o.2) {
        let _ = write!(
            table,
            r#"<tr class="conflict"><td>{}</td><td>{}:{}</td></tr>"#,
            esc(&op_line(*client, op)),
            esc(&loaded.paths[loc.file()].display().to_string()),
            loc.line()
        );
    }
    table.push_str("</table>");
    let more = if summary.failed_keys > 1 {
        let others: Vec<String> = pages
            .iter()
            .filter(|&&k| k != key)
            .map(|&k| file_name(k))
            .collect();
        let rest = summary.failed_keys - pages.len() as u64;
        format!(
            "<p>{} keys failed; every key is checked on its own. {}{}</p>",
            summary.failed_keys,
            if others.is_empty() {
                String::new()
            } else {
                format!(
                    "Pages of the other failing keys beside this one: {}. ",
                    others.join(", ")
                )
            },
            if rest > 0 {
                format!("{rest} more failing keys have no page (kv-check --max-witnesses).")
            } else {
                String::new()
            }
        )
    } else {
        String::new()
    };
    let clock_note = match loaded.clock_report {
        Some(c) => format!(
            "Histories of several hosts: times are on the reference clock, each end widened by its clock uncertainty ε (whiskers; median {} ns, max {} ns).",
            c.epsilon_median_ns, c.epsilon_max_ns
        ),
        None => "Clock uncertainty ε: 0 (all histories on one clock).".to_string(),
    };
    let initial_note = if initial_involved {
        "<p>The key's initial value (a virtual put before every op) is part of the conflict.</p>"
    } else {
        ""
    };
    Ok(format!(
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>kv-check witness: key {key}</title>
<style>
body {{ font-family: sans-serif; margin: 1.5em; max-width: 1040px; }}
.op rect {{ fill: #c8d8ec; stroke: #4a6f9c; }} .op.put rect {{ fill: #d8ecc8; stroke: #5c8c3c; }}
.op.unknown rect {{ fill: #eee; stroke: #999; stroke-dasharray: 4 3; }}
.op.conflict rect {{ fill: #f6c1bd; stroke: #b3261e; stroke-width: 2; }}
.op text {{ font-size: 11px; }} .lane, .axis {{ font-size: 11px; fill: #444; }} .grid {{ stroke: #eee; }} .eps {{ stroke: #333; stroke-width: 1.5; }}
table {{ border-collapse: collapse; font-size: 12px; margin-top: 1em; }} td, th {{ border: 1px solid #ccc; padding: 2px 6px; text-align: left; }}
tr.conflict td {{ background: #fbe3e1; }}
</style></head><body>
<h1>FAIL: key {key}</h1>
<p class="why">{}</p>
{initial_note}
<p>Bars run from an op's invoke to its completion (a dashed bar: no reply, it may have happened any time after its invoke). Red: the ops that conflict. Grey lanes: {} other ops of this key near them ({} shown at most). {clock_note}</p>
{svg}
{table}
{more}
</body></html>
"#,
        esc(&reason),
        nearby,
        MAX_OPS,
    ))
}
