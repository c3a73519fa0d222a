//! Run ids and times: making them, and finding a run by what a user typed.

use std::time::{SystemTime, UNIX_EPOCH};

use super::RunRecord;

/// Formats a time as UTC RFC 3339 with whole seconds: `2025-01-31T12:00:00Z`.
pub fn rfc3339_utc(t: SystemTime) -> String {
    let (y, mo, d, h, mi, s) = utc_parts(t);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

fn utc_parts(t: SystemTime) -> (i64, u32, u32, u32, u32, u32) {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400) as u32;
    let (y, mo, d) = civil_from_days(days);
    (y, mo, d, sod / 3600, sod / 60 % 60, sod % 60)
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian
/// (Howard Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// A new run id, `YYYYmmdd-HHMMSS-xxxx` (UTC start time, 4 random hex
/// digits): sorts by start time, and two runs started in the same second
/// still differ.
pub fn new_run_id(started: SystemTime) -> String {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU16, Ordering};
    use std::sync::OnceLock;
    // A random salt per process (RandomState is seeded randomly; pid and
    // clock mixed in) plus a counter: ids made by one process never collide
    // (65,536 per second), ids of two processes collide only if their salts
    // line up within the same second.
    static SALT: OnceLock<u16> = OnceLock::new();
    static COUNTER: AtomicU16 = AtomicU16::new(0);
    let salt = *SALT.get_or_init(|| {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u32(std::process::id());
        hasher.write_u128(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0),
        );
        hasher.finish() as u16
    });
    let (y, mo, d, h, mi, s) = utc_parts(started);
    let tag = salt.wrapping_add(COUNTER.fetch_add(1, Ordering::Relaxed));
    format!("{y:04}{mo:02}{d:02}-{h:02}{mi:02}{s:02}-{tag:04x}")
}

/// Why a typed run id names no single run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FindRunError {
    #[error("unknown run id '{spec}' (`kv-dash list` shows the {runs} recorded runs)")]
    Unknown { spec: String, runs: usize },
    #[error("run id '{spec}' is ambiguous: {n} runs match it: {list}", n = candidates.len(), list = candidate_list(candidates))]
    Ambiguous {
        spec: String,
        candidates: Vec<String>,
    },
}

fn candidate_list(c: &[String]) -> String {
    const SHOWN: usize = 8;
    let mut s = c.iter().take(SHOWN).cloned().collect::<Vec<_>>().join(", ");
    if c.len() > SHOWN {
        s += &format!(" and {} more", c.len() - SHOWN);
    }
    s
}

/// The one run a typed id names: the whole id, a unique prefix
/// (`20250131-12`), or a unique ending of at least the 4 hex digits (`ab12`,
/// `-ab12`, `0000-ab12`: they are what tell runs of one second apart). A
/// shorter ending is not accepted, so a tag like `e2e` is never taken for
/// an id. Every tool resolves run ids here, so they all accept the same forms.
pub fn find_run<'a>(runs: &'a [RunRecord], spec: &str) -> Result<&'a RunRecord, FindRunError> {
    let spec = spec.trim();
    if let Some(r) = runs.iter().find(|r| r.run_id == spec) {
        return Ok(r);
    }
    let tail =
        spec.chars().count() >= 4 && spec.chars().rev().take(4).all(|c| c.is_ascii_hexdigit());
    let hits: Vec<&RunRecord> = if spec.is_empty() {
        Vec::new()
    } else {
        runs.iter()
            .filter(|r| r.run_id.starts_with(spec) || (tail && r.run_id.ends_with(spec)))
            .collect()
    };
    match hits.as_slice() {
        [one] => Ok(one),
        [] => Err(FindRunError::Unknown {
            spec: spec.to_string(),
            runs: runs.len(),
        }),
        many => {
            let mut candidates: Vec<String> = many.iter().map(|r| r.run_id.clone()).collect();
            candidates.dedup();
            Err(FindRunError::Ambiguous {
                spec: spec.to_string(),
                candidates,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runs(ids: &[&str]) -> Vec<RunRecord> {
        ids.iter()
            .map(|id| RunRecord {
                run_id: id.to_string(),
                ..RunRecord::new(SystemTime::now())
            })
            .collect()
    }

    #[test]
    fn whole_id_prefix_and_ending() {
        let r = runs(&[
            "20250101-000000-aaaa",
            "20250101-000000-bbbb",
            "20250102-000000-ab12",
        ]);
        let id = |s: &str| find_run(&r, s).map(|r| r.run_id.as_str());
        assert_eq!(id("20250101-000000-aaaa"), Ok("20250101-000000-aaaa"));
        assert_eq!(id("20250102"), Ok("20250102-000000-ab12"));
        assert_eq!(id("bbbb"), Ok("20250101-000000-bbbb"));
        assert_eq!(id("-ab12"), Ok("20250102-000000-ab12"));
        assert_eq!(id("0000-ab12"), Ok("20250102-000000-ab12"));
        assert!(id("b12").is_err(), "shorter than the 4 hex digits");
        let err = find_run(&r, "20250101").unwrap_err();
        assert_eq!(
            err.to_string(),
            "run id '20250101' is ambiguous: 2 runs match it: \
             20250101-000000-aaaa, 20250101-000000-bbbb"
        );
        assert_eq!(
            find_run(&r, "cccc").unwrap_err(),
            FindRunError::Unknown {
                spec: "cccc".into(),
                runs: 3
            }
        );
        assert!(find_run(&r, "").is_err());
    }

    #[test]
    fn long_candidate_lists_are_cut() {
        let ids: Vec<String> = (0..12)
            .map(|i| format!("20250101-0000{i:02}-abcd"))
            .collect();
        let r = runs(&ids.iter().map(String::as_str).collect::<Vec<_>>());
        let err = find_run(&r, "abcd").unwrap_err().to_string();
        assert!(
            err.contains("12 runs match it") && err.ends_with("and 4 more"),
            "{err}"
        );
    }
}
