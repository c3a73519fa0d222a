//! Turning a check's result into the text `kv-check` prints. The ops of a
//! counterexample are read back from their files by line number: the check
//! keeps only what it compares, and a failure is printed once.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;

use kv_core::history::{Action, HistoryOp, HistoryReader, Outcome, ReadValue};

use crate::check::{Initial, OpRef, Summary, Violation};
use crate::failure::Failure;
use crate::load::{ClockReport, InputError, Loaded, Loc, Time, Value, BEGINNING};

/// Below this share of real-time order kept, a multi-host check is weak.
pub const LOW_POWER: f64 = 0.5;

/// `clocks: ε median 41 us, max 230 us; real-time order kept for 97.1% of
/// 10234 precedence edges`, and a warning when that share is low.
pub fn clock_line(c: &ClockReport) -> String {
    let us = |ns: u64| format!("{:.0} us", ns as f64 / 1e3);
    let mut line = format!(
        "clocks: histories of several hosts, mapped onto one reference clock; \
         ε median {}, max {}; real-time order kept for {:.1}% of {} precedence edges \
         (adjacent ops of a key, of different clients)",
        us(c.epsilon_median_ns),
        us(c.epsilon_max_ns),
        c.power() * 100.0,
        c.edges
    );
    if c.power() < LOW_POWER {
        line += "\nwarning: the clock uncertainty hides most real-time order, so the check \
                 can miss stale reads (low power); sample over a faster network or run \
                 check mode on one host";
    }
    line
}

/// `PASS: N ops on K keys (histories: F files)`.
pub fn pass_line(summary: &Summary, files: usize) -> String {
    format!(
        "PASS: {} ops on {} keys (histories: {files} files)",
        summary.ops, summary.keys
    )
}

/// Reads back the rows at `locs`: (client, op) by location.
pub fn fetch_rows(
    loaded: &Loaded,
    locs: &[Loc],
) -> Result<HashMap<Loc, (u32, HistoryOp)>, InputError> {
    let mut by_file: BTreeMap<usize, Vec<u64>> = BTreeMap::new();
    for loc in locs {
        by_file.entry(loc.file()).or_default().push(loc.line());
    }
    let mut rows = HashMap::new();
    for (file, mut lines) in by_file {
        let path = &loaded.paths[file];
        let fail = |message: String| InputError {
            path: path.clone(),
            message,
        };
        lines.sort_unstable();
        lines.dedup();
        let mut reader = HistoryReader::open(path).map_err(|e| fail(e.to_string()))?;
        let mut wanted = lines.iter().peekable();
        while let Some(&&line) = wanted.peek() {
            let op = reader
                .next_op()
                .map_err(|e| fail(e.to_string()))?
                .ok_or_else(|| {
                    fail(format!(
                        "line {line}: gone (file changed during the check?)"
                    ))
                })?;
            if reader.line() >= line {
                rows.insert(Loc::new(file, line), (reader.client(), op));
                wanted.next();
            }
        }
    }
    Ok(rows)
}

fn time(t: Time) -> String {
    if t == BEGINNING {
        "the beginning".into()
    } else {
        (t - 1).to_string()
    }
}

fn value_name(loaded: &Loaded, v: Value) -> String {
    match v {
        Value::INIT => "init".into(),
        Value::ABSENT => "none".into(),
        Value::OTHER => "other".into(),
        v => loaded
            .value_id(v)
            .map_or_else(|| "?".into(), |id| id.to_string()),
    }
}

/// `FAIL: key K: why` and the counterexample's ops, one per line.
pub fn fail_text(
    loaded: &Loaded,
    summary: &Summary,
    failure: &Failure,
    initial: Initial,
) -> Result<String, InputError> {
    let violation: &Violation = &failure.violation;
    let recs = &failure.recs;
    let name = |v: Value| value_name(loaded, v);
    let mut out = format!("FAIL: key {}: ", violation.key());
    match violation {
        Violation::WrongReply { op, .. } => {
            out.push_str(if recs[*op].is_get() {
                "the server answered a get with 'stored', not a value"
            } else {
                "the server answered a put with a value, not 'stored'"
            });
        }
        Violation::UnwrittenRead { get, .. } => {
            let v = recs[*get].value();
            let why = match v {
                Value::OTHER => "a get read 'other', a value no check-mode put writes".to_string(),
                Value::FOREIGN_INIT => {
                    "a get read another key's preloaded value: the server mixed keys up".to_string()
                }
                Value::INIT => format!(
                    "a get read the preloaded value, but this key starts absent ({})",
                    match initial {
                        Initial::PreloadedBelow(n) => format!("only keys below {n} were preloaded"),
                        _ => "the run had no preload: --initial absent".into(),
                    }
                ),
                Value::ABSENT => format!(
                    "a get found the key absent, but it starts preloaded ({}) and nothing deletes",
                    match initial {
                        Initial::PreloadedBelow(n) => format!("keys below {n} were preloaded"),
                        _ => "--initial init".into(),
                    }
                ),
                v => format!("a get read {}, which no put of this key wrote", name(v)),
            };
            out.push_str(&why);
        }
        Violation::ReadBeforeWrite { get, .. } => {
            let v = name(recs[*get].value());
            let _ = write!(
                out,
                "a get of {v} completed before the put of {v} was invoked"
            );
        }
        Violation::Interleaved { a, b, .. } => {
            let _ = write!(
                out,
                "reads of {} and {} interleave: {} was current from {} until at least {}, \
                 and {} from {} until at least {}; no order of the two puts explains both",
                name(a.value),
                name(b.value),
                name(a.value),
                time(a.lo),
                time(a.hi),
                name(b.value),
                time(b.lo),
                time(b.hi)
            );
        }
        Violation::Stale {
            current, hidden, ..
        } => {
            let read = if hidden.lo_op != hidden.put || hidden.hi_op != hidden.put {
                " and read"
            } else {
                ""
            };
            let _ = write!(
                out,
                "stale read of {}: {} was written{read} entirely while {} was current \
                 (from {} until at least {})",
                name(current.value),
                name(hidden.value),
                name(current.value),
                time(current.lo),
                time(current.hi)
            );
        }
    }
    if summary.failed_keys > 1 {
        let _ = write!(
            out,
            " ({} keys failed; the first is shown)",
            summary.failed_keys
        );
    }
    let ops = violation.ops(recs);
    let locs: Vec<Loc> = ops
        .iter()
        .filter_map(|op| match op {
            OpRef::Rec(i) => Some(recs[*i].loc),
            OpRef::Initial => None,
        })
        .collect();
    let rows = fetch_rows(loaded, &locs)?;
    out.push_str(
        "\n  ops (client thread seq: kind value, invoke_ns..complete_ns, outcome, where):",
    );
    for op in ops {
        out.push_str("\n    ");
        match op {
            OpRef::Initial => out.push_str("the initial value (a virtual put before every op)"),
            OpRef::Rec(i) => {
                let loc = recs[i].loc;
                let where_ = format!("{}:{}", loaded.paths[loc.file()].display(), loc.line());
                match rows.get(&loc) {
                    Some((client, op)) => {
                        let _ = write!(out, "{}   {where_}", op_line(*client, op));
                    }
                    None => out.push_str(&where_),
                }
            }
        }
    }
    Ok(out)
}

/// The op's kind and value, e.g. `("put", "1.0.3")`.
pub fn kind_value(op: &HistoryOp) -> (&'static str, String) {
    match op.action {
        Action::Put(id) => ("put", id.to_string()),
        Action::Get(ReadValue::Written(id)) => ("get", id.to_string()),
        Action::Get(ReadValue::Init) => ("get", "init".into()),
        Action::Get(ReadValue::Absent) => ("get", "none".into()),
        Action::Get(ReadValue::Other) => ("get", "other".into()),
        Action::Get(ReadValue::InitOf(k)) => ("get", format!("init:{k}")),
        Action::Get(ReadValue::NotAValue) => ("get", "-".into()),
    }
}

/// One op, e.g. `client 1 thread 0 seq 3: put 1.0.3, 1000..1200, ok`.
pub fn op_line(client: u32, op: &HistoryOp) -> String {
    let (kind, value) = kind_value(op);
    let (complete, outcome) = match op.outcome {
        Outcome::Ok => (op.complete_ns.to_string(), "ok"),
        Outcome::WrongKind => (op.complete_ns.to_string(), "wrong-kind"),
        Outcome::Unknown => ("?".to_string(), "unknown"),
    };
    format!(
        "client {client} thread {} seq {}: {kind} {value}, {}..{complete}, {outcome}",
        op.thread, op.seq, op.invoke_ns
    )
}
