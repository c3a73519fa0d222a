//! Rate-limited error lines on stderr, shared by the accept loop and the
//! service (its own module so neither depends on the other for it).

use std::time::Instant;

/// Prints a line to stderr at most once per second per `kind` of event;
/// the lines dropped meanwhile are counted in the next one of that kind.
/// Per kind, so a flood of one problem never hides the first line of
/// another. Only error paths log, so a lock is fine here.
pub fn log_limited(kind: &'static str, msg: &str) {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    static KINDS: std::sync::Mutex<Vec<(&'static str, u64, u64)>> =
        std::sync::Mutex::new(Vec::new());
    let now_s = START.get_or_init(Instant::now).elapsed().as_secs();
    let mut kinds = KINDS.lock().unwrap_or_else(|e| e.into_inner());
    let i = match kinds.iter().position(|(k, _, _)| *k == kind) {
        Some(i) => i,
        None => {
            kinds.push((kind, u64::MAX, 0));
            kinds.len() - 1
        }
    };
    let (_, last_s, dropped) = &mut kinds[i];
    if *last_s == now_s {
        *dropped += 1;
        return;
    }
    *last_s = now_s;
    match std::mem::take(dropped) {
        0 => eprintln!("kv-server: {msg}"),
        n => eprintln!("kv-server: {msg} (and {n} similar lines suppressed)"),
    }
}
