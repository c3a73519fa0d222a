//! Runs the real `kv-check` binary on history files in a temp dir.

use std::path::PathBuf;
use std::process::{Command, Output};

use kv_core::history::{Action, HistoryOp, HistoryWriter, Outcome, ReadValue};
use kv_core::value::ValueId;
use kv_testkit::TempDir;

fn kv_check(args: &[&std::ffi::OsStr]) -> (i32, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = Command::new(env!("CARGO_BIN_EXE_kv-check"))
        .args(args)
        .output()
        .unwrap();
    (
        status.code().unwrap(),
        String::from_utf8(stdout).unwrap(),
        String::from_utf8(stderr).unwrap(),
    )
}

fn id(client: u32, thread: u32, seq: u64) -> ValueId {
    ValueId {
        client,
        thread,
        seq,
    }
}

fn op(
    thread: u32,
    seq: u64,
    key: u64,
    action: Action,
    invoke_ns: u64,
    complete_ns: u64,
) -> HistoryOp {
    HistoryOp {
        thread,
        seq,
        key,
        action,
        invoke_ns,
        complete_ns,
        outcome: Outcome::Ok,
    }
}

/// Two clients: client 1 writes key 5 twice; client 2 reads it. With
/// `stale`, client 2's last get returns the overwritten value.
fn two_clients(dir: &TempDir, stale: bool) -> Vec<PathBuf> {
    let (c1, c2) = (dir.0.join("c1.hist"), dir.0.join("c2.hist"));
    let mut w = HistoryWriter::new(&c1, 1).unwrap();
    w.record(&op(0, 0, 5, Action::Put(id(1, 0, 0)), 1_000, 2_000))
        .unwrap();
    w.record(&op(0, 1, 5, Action::Put(id(1, 0, 1)), 3_000, 4_000))
        .unwrap();
    // An unrelated key, concurrent with everything.
    w.record(&op(1, 0, 6, Action::Get(ReadValue::Init), 500, 9_000))
        .unwrap();
    w.finish().unwrap();
    let mut r = HistoryWriter::new(&c2, 2).unwrap();
    r.record(&op(
        0,
        0,
        5,
        Action::Get(ReadValue::Written(id(1, 0, 0))),
        2_100,
        2_900,
    ))
    .unwrap();
    let last = if stale { id(1, 0, 0) } else { id(1, 0, 1) };
    r.record(&op(
        0,
        1,
        5,
        Action::Get(ReadValue::Written(last)),
        4_100,
        4_900,
    ))
    .unwrap();
    r.finish().unwrap();
    vec![c1, c2]
}

fn os(paths: &[PathBuf]) -> Vec<&std::ffi::OsStr> {
    paths.iter().map(|p| p.as_os_str()).collect()
}

#[test]
fn linearizable_run_passes() {
    let dir = TempDir::new("pass");
    let paths = two_clients(&dir, false);
    let (code, out, err) = kv_check(&os(&paths));
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(out, "PASS: 5 ops on 2 keys (histories: 2 files)\n");
}

/// Histories of two machines: their monotonic clocks are unrelated, so
/// there is no verdict to give, and none is given.
#[test]
fn histories_from_two_machines_are_refused() {
    let dir = TempDir::new("two-machines");
    let paths = two_clients(&dir, false);
    // A binary history (`.hist`): its header line is plain text.
    let bytes = std::fs::read(&paths[1]).unwrap();
    let boot = kv_core::history::boot_id().unwrap();
    let head = format!("# kvlab-history v2 client=2 clock=CLOCK_MONOTONIC boot={boot}");
    assert!(bytes.starts_with(head.as_bytes()));
    let other = "00000000-0000-0000-0000-000000000000";
    assert_eq!(other.len(), boot.len());
    let mut changed = bytes.clone();
    let at = head.len() - boot.len();
    changed[at..head.len()].copy_from_slice(other.as_bytes());
    std::fs::write(&paths[1], changed).unwrap();
    let (code, out, err) = kv_check(&os(&paths));
    assert_eq!(code, 2, "{out}{err}");
    assert_eq!(out, "");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(&format!(
            "c2.hist: recorded on another machine (boot id {other}) than {} (boot id {boot})",
            paths[0].display()
        )) && err.contains("run check mode with every client on one host"),
        "{err}"
    );
}

#[test]
fn stale_read_fails_naming_the_key_and_ops() {
    let dir = TempDir::new("fail");
    let paths = two_clients(&dir, true);
    let (code, out, err) = kv_check(&os(&paths));
    assert_eq!(code, 1, "{out}{err}");
    let first = out.lines().next().unwrap();
    assert!(
        first.starts_with("FAIL: key 5: stale read of 1.0.0"),
        "{out}"
    );
    // The put that was missed, and the stale get, with their rows.
    assert!(
        out.contains("client 1 thread 0 seq 1: put 1.0.1, 3000..4000, ok"),
        "{out}"
    );
    assert!(
        out.contains("client 2 thread 0 seq 1: get 1.0.0, 4100..4900, ok"),
        "{out}"
    );
    assert!(out.contains("c2.hist:4"), "{out}");
    assert!(!out.contains("key 6") && !out.contains("get init"), "{out}");
}

/// Checks a witness page is a self-contained, well-formed page for `key`
/// naming `ops` as the conflict; returns its text.
pub fn assert_witness(path: &std::path::Path, key: u64, ops: &[&str]) -> String {
    let html = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(html.starts_with("<!DOCTYPE html>") && html.trim_end().ends_with("</html>"));
    assert!(
        html.contains(&format!("<h1>FAIL: key {key}</h1>")),
        "{html}"
    );
    // Self-contained: nothing fetched, nothing run.
    for banned in ["<script", "src=", "href=", "<link", "@import"] {
        assert!(!html.contains(banned), "{banned} in the witness");
    }
    // Balanced elements (a cheap well-formedness check of what we emit).
    for tag in ["svg", "g", "table", "tr", "style", "p"] {
        let open =
            html.matches(&format!("<{tag} ")).count() + html.matches(&format!("<{tag}>")).count();
        assert_eq!(
            open,
            html.matches(&format!("</{tag}>")).count(),
            "<{tag}> unbalanced"
        );
    }
    for op in ops {
        let row = format!(r#"<tr class="conflict"><td>{op}</td>"#);
        assert!(html.contains(&row), "{op} not marked as conflicting");
    }
    html
}

#[test]
fn a_fail_writes_a_witness_page_of_the_conflicting_ops() {
    let dir = TempDir::new("witness");
    let paths = two_clients(&dir, true);
    let out_file = dir.0.join("check.txt");
    let mut args = os(&paths);
    args.extend([std::ffi::OsStr::new("--output"), out_file.as_os_str()]);
    let (code, out, err) = kv_check(&args);
    assert_eq!(code, 1, "{out}{err}");
    let page = dir.0.join("witness-key-5.html");
    assert!(
        out.contains(&format!("witness: {}", page.display())),
        "{out}"
    );
    let html = assert_witness(
        &page,
        5,
        &[
            "client 1 thread 0 seq 1: put 1.0.1, 3000..4000, ok",
            "client 2 thread 0 seq 1: get 1.0.0, 4100..4900, ok",
        ],
    );
    assert!(html.contains("stale read of 1.0.0"), "the sentence");
    // Lanes per client thread; the unrelated key 6 is not drawn.
    assert!(html.contains("client 1 thread 0</text>") && html.contains("client 2 thread 0</text>"));
    assert!(
        !html.contains("client 1 thread 1</text>"),
        "key 6's lane drawn"
    );
    // Without --output or --witness-dir no page is written anywhere.
    let other = TempDir::new("no-witness");
    let (code, out, _) = kv_check(&os(&two_clients(&other, true)));
    assert_eq!(code, 1);
    assert!(!out.contains("witness:"), "{out}");
    assert!(!other.0.join("witness-key-5.html").exists());
}

#[test]
fn initial_flag_chooses_the_starting_value() {
    let dir = TempDir::new("initial");
    let h = dir.write(
        "c.hist",
        "# kvlab-history v1 client=0 clock=CLOCK_MONOTONIC\n\
         thread,seq,kind,key,value,invoke_ns,complete_ns,outcome\n\
         0,0,get,3,none,10,20,ok\n\
         # end ops=1\n",
    );
    let (code, out, _) = kv_check(&[h.as_os_str(), "--initial".as_ref(), "absent".as_ref()]);
    assert_eq!(code, 0, "{out}");
    let (code, out, _) = kv_check(&[h.as_os_str()]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.starts_with("FAIL: key 3: a get found the key absent"),
        "{out}"
    );
    // --preload N (the servers' flag): key 3 starts absent below N=3 only.
    let (code, out, _) = kv_check(&[h.as_os_str(), "--preload".as_ref(), "3".as_ref()]);
    assert_eq!(code, 0, "{out}");
    let (code, out, _) = kv_check(&[h.as_os_str(), "--preload".as_ref(), "4".as_ref()]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.starts_with(
            "FAIL: key 3: a get found the key absent, but it starts preloaded \
             (keys below 4 were preloaded) and nothing deletes"
        ),
        "{out}"
    );
}

#[test]
fn malformed_history_is_a_one_line_error() {
    let dir = TempDir::new("malformed");
    let h = dir.write(
        "bad.hist",
        "# kvlab-history v1 client=0 clock=CLOCK_MONOTONIC\n\
         thread,seq,kind,key,value,invoke_ns,complete_ns,outcome\n\
         0,0,get,3,init,10,20,ok\n\
         0,1,gte,3,init,30,40,ok\n\
         # end ops=2\n",
    );
    let (code, out, err) = kv_check(&[h.as_os_str()]);
    assert_eq!(code, 2, "{out}{err}");
    assert_eq!(out, "");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("bad.hist: line 4: kind: 'gte'"), "{err}");
}

#[test]
fn missing_and_unfinished_files_are_errors() {
    let dir = TempDir::new("missing");
    let (code, _, err) = kv_check(&[dir.0.join("nope.hist").as_os_str()]);
    assert_eq!(code, 2);
    assert!(err.contains("nope.hist: cannot open"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");

    let h = dir.write(
        "cut.hist",
        "# kvlab-history v1 client=0 clock=CLOCK_MONOTONIC\n\
         thread,seq,kind,key,value,invoke_ns,complete_ns,outcome\n\
         0,0,get,3,init,10,20,ok\n",
    );
    let (code, _, err) = kv_check(&[h.as_os_str()]);
    assert_eq!(code, 2);
    assert!(err.contains("cut.hist: line 4: no '# end' line"), "{err}");
}

#[test]
fn synthetic_histories_pass_and_injected_stale_reads_fail() {
    let dir = TempDir::new("synth");
    let out = dir.0.join("ok");
    let synth = |out: &PathBuf, extra: &[&str]| {
        let mut args: Vec<&std::ffi::OsStr> =
            ["synth", "--ops", "200000", "--keys", "1000", "--out"]
                .iter()
                .map(|s| s.as_ref())
                .collect();
        args.push(out.as_os_str());
        args.extend(extra.iter().map(std::ffi::OsStr::new));
        let (code, o, e) = kv_check(&args);
        assert_eq!(code, 0, "{o}{e}");
        let mut files: Vec<PathBuf> = std::fs::read_dir(out)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        files
    };
    let files = synth(&out, &[]);
    assert_eq!(files.len(), 4);
    let (code, o, e) = kv_check(&os(&files));
    assert_eq!(code, 0, "{o}{e}");
    assert!(o.starts_with("PASS: 200000 ops on "), "{o}");

    let bad = dir.0.join("stale");
    let files = synth(&bad, &["--stale-every", "1000"]);
    let (code, o, e) = kv_check(&os(&files));
    assert_eq!(code, 1, "{o}{e}");
    assert!(o.starts_with("FAIL: key "), "{o}");
}

/// A history of client `client` with header fields `extra` and `rows`.
fn history_text(client: u32, extra: &str, rows: &[&str]) -> String {
    let mut t = format!(
        "# kvlab-history v1 client={client} clock=CLOCK_MONOTONIC{extra}\n{}\n",
        kv_core::history::COLUMNS
    );
    for r in rows {
        t += r;
        t.push('\n');
    }
    t + &format!("# end ops={}\n", rows.len())
}

/// Item 5: a full disk while writing the verdict is exit 3, never the
/// verdict 1, and is said in one line. (`/dev/full` fails every write
/// with ENOSPC, as a full disk does.)
#[test]
fn a_full_disk_is_not_a_verdict() {
    let dir = TempDir::new("full");
    for stale in [false, true] {
        let paths = two_clients(&dir, stale);
        let mut args = os(&paths);
        args.extend([
            std::ffi::OsStr::new("--output"),
            std::ffi::OsStr::new("/dev/full"),
        ]);
        let (code, out, err) = kv_check(&args);
        assert_eq!(code, 3, "stale={stale}: {out}{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.starts_with("kv-check: cannot write /dev/full: No space left on device"),
            "{err}"
        );
        // Stdout on a full disk: the same.
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_kv-check"))
            .args(&paths)
            .stdout(full)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{err}");
        assert_eq!(
            err,
            "kv-check: cannot write the verdict to stdout: No space left on device (os error 28)\n"
        );
    }
    // --output gets the verdict itself when it can be written.
    let paths = two_clients(&dir, true);
    let report = dir.0.join("check.txt");
    let mut args = os(&paths);
    args.extend([std::ffi::OsStr::new("--output"), report.as_os_str()]);
    let (code, out, _) = kv_check(&args);
    assert_eq!(code, 1);
    assert_eq!(std::fs::read_to_string(&report).unwrap(), out);
}

/// Item 6: stdout is a pipe whose reader is gone (`kv-check … | head`
/// after head exited): no panic, one line, exit 3.
#[test]
fn a_closed_output_pipe_is_one_line_and_exit_3() {
    let dir = TempDir::new("pipe");
    let paths = two_clients(&dir, false);
    let (reader, writer) = std::io::pipe().unwrap();
    // Closed before the child starts: its first write must fail (EPIPE).
    drop(reader);
    let out = Command::new(env!("CARGO_BIN_EXE_kv-check"))
        .args(&paths)
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert_eq!(
        err,
        "kv-check: cannot write the verdict to stdout: Broken pipe (os error 32)\n"
    );
}

/// Item 7: the header's preload is used by default, so a run with
/// `--preload 10` checks right without repeating the flag, and the flag
/// still overrides it (with a note).
#[test]
fn the_recorded_preload_is_the_default() {
    let dir = TempDir::new("preload");
    let rows = ["0,0,get,5,init,10,20,ok", "0,1,get,50,none,30,40,ok"];
    let h = dir.write("c.hist", &history_text(0, " preload=10 run=ab", &rows));
    let (code, out, err) = kv_check(&[h.as_os_str()]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(out, "PASS: 2 ops on 2 keys (histories: 1 files)\n");
    assert_eq!(err, "");
    // A history without its preload (older writer) reads as all-preloaded:
    // key 50's absence is then a failure, as before.
    let old = dir.write("old.hist", &history_text(0, "", &rows));
    let (code, out, _) = kv_check(&[old.as_os_str()]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.starts_with("FAIL: key 50: a get found the key absent"),
        "{out}"
    );
    // An explicit flag wins, and says so.
    let (code, out, err) = kv_check(&[h.as_os_str(), "--preload".as_ref(), "100".as_ref()]);
    assert_eq!(code, 1, "{out}");
    assert_eq!(
        err,
        "kv-check: note: --preload 100 overrides the histories' recorded preload=10\n"
    );
}

/// Item 7: histories of two runs (servers restarted in between) are
/// refused, naming both files and runs.
#[test]
fn two_runs_mixed_are_refused() {
    let dir = TempDir::new("mixed");
    let a = dir.write(
        "a.hist",
        &history_text(0, " preload=10 run=aaaa", &["0,0,get,5,init,10,20,ok"]),
    );
    let b = dir.write(
        "b.hist",
        &history_text(1, " preload=10 run=bbbb", &["0,0,get,6,init,10,20,ok"]),
    );
    let (code, out, err) = kv_check(&[a.as_os_str(), b.as_os_str()]);
    assert_eq!(code, 2, "{out}{err}");
    assert_eq!(out, "");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(&format!(
            "b.hist: belongs to another run (run bbbb) than {} (run aaaa)",
            a.display()
        )),
        "{err}"
    );
    // A file without a run id among files with one: also refused.
    let old = dir.write(
        "old.hist",
        &history_text(2, "", &["0,0,get,7,init,10,20,ok"]),
    );
    let (code, _, err) = kv_check(&[a.as_os_str(), old.as_os_str()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("(run none (an older writer))"), "{err}");
    // Same run, different preload: not one run either.
    let c = dir.write(
        "c.hist",
        &history_text(3, " preload=0 run=aaaa", &["0,0,get,8,none,10,20,ok"]),
    );
    let (code, _, err) = kv_check(&[a.as_os_str(), c.as_os_str()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("c.hist: records preload 0 but"), "{err}");
}

/// Item 7: a check of no ops is not a PASS.
#[test]
fn an_empty_check_says_it_checked_nothing() {
    let dir = TempDir::new("empty");
    let empty = dir.write("e.hist", &history_text(0, " preload=10 run=ab", &[]));
    // Gets without a reply constrain nothing either.
    let unanswered = dir.write(
        "u.hist",
        &history_text(1, " preload=10 run=ab", &["0,0,get,5,-,10,20,unknown"]),
    );
    let (code, out, err) = kv_check(&[empty.as_os_str(), unanswered.as_os_str()]);
    assert_eq!(code, 2, "{out}{err}");
    assert_eq!(out, "");
    assert_eq!(
        err,
        "kv-check: nothing checked: the 2 histories hold no op with a reply (1 rows)\n"
    );
}

/// Item 8: another key's preloaded value, and replies of the wrong kind,
/// fail by name.
#[test]
fn foreign_initial_values_and_wrong_kind_replies_fail() {
    let dir = TempDir::new("foreign");
    let h = dir.write(
        "f.hist",
        &history_text(0, " preload=10 run=ab", &["0,0,get,5,init:6,10,20,ok"]),
    );
    let (code, out, _) = kv_check(&[h.as_os_str()]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.starts_with("FAIL: key 5: a get read another key's preloaded value"),
        "{out}"
    );
    assert!(
        out.contains("client 0 thread 0 seq 0: get init:6, 10..20, ok"),
        "{out}"
    );
    for (row, why) in [
        (
            "0,0,put,5,0.0.0,10,20,wrong-kind",
            "the server answered a put with a value",
        ),
        (
            "0,0,get,5,-,10,20,wrong-kind",
            "the server answered a get with 'stored'",
        ),
    ] {
        let h = dir.write("w.hist", &history_text(0, " preload=10 run=ab", &[row]));
        let (code, out, _) = kv_check(&[h.as_os_str()]);
        assert_eq!(code, 1, "{out}");
        assert!(out.starts_with(&format!("FAIL: key 5: {why}")), "{out}");
        assert!(out.contains("wrong-kind"), "{out}");
    }
}

/// Binary and old text histories check alike, together, and `dump`
/// renders a binary file as the text file of the same ops, so the line
/// numbers of a verdict can be looked up.
#[test]
fn text_and_binary_histories_agree() {
    let dir = TempDir::new("formats");
    let bin = two_clients(&dir, true);
    // The same histories as text files.
    let text: Vec<PathBuf> = bin
        .iter()
        .map(|p| {
            let csv = p.with_extension("csv");
            let out = Command::new(env!("CARGO_BIN_EXE_kv-check"))
                .arg("dump")
                .arg(p)
                .output()
                .unwrap();
            assert!(out.status.success());
            std::fs::write(&csv, &out.stdout).unwrap();
            csv
        })
        .collect();
    let dumped = std::fs::read_to_string(&text[1]).unwrap();
    assert!(
        dumped.starts_with("# kvlab-history v1 client=2 clock=CLOCK_MONOTONIC"),
        "{dumped}"
    );
    assert!(
        dumped.contains("\n0,1,get,5,1.0.0,4100,4900,ok\n# end ops=2\n"),
        "{dumped}"
    );
    let (code_b, out_b, _) = kv_check(&os(&bin));
    let (code_t, out_t, _) = kv_check(&os(&text));
    let (code_m, out_m, _) = kv_check(&os(&[text[0].clone(), bin[1].clone()]));
    assert_eq!((code_b, code_t, code_m), (1, 1, 1));
    // Same verdict, same line numbers; only the file names differ.
    assert_eq!(out_b.replace(".hist", ".csv"), out_t);
    assert_eq!(out_m.replace(".hist", ".csv"), out_t);
    assert!(out_b.contains("c2.hist:4"), "{out_b}");
}

/// Issue 17: the stale-read history of `two_clients`, as if written on two
/// hosts (different boot ids) whose clocks agree, with clock samples of
/// round trip `rtt_ns`: ε = rtt/2 (plus drift).
fn two_hosts(dir: &TempDir, rtt_ns: u64) -> Vec<PathBuf> {
    use kv_core::clock::{ClockLog, ClockSample};
    use kv_core::history::Header;
    let paths = two_clients(dir, true);
    for (i, p) in paths.iter().enumerate() {
        // Rewrite with another boot id per host.
        let ops = kv_core::history::read_history(p).unwrap();
        let header = Header {
            client: i as u32 + 1,
            boot: Some(format!("00000000-0000-0000-0000-00000000000{i}")),
            preload: None,
            run: None,
        };
        let mut w = HistoryWriter::create(p, &header).unwrap();
        for op in &ops.ops {
            w.record(op).unwrap();
        }
        w.finish().unwrap();
        ClockLog {
            reference: "ref-boot/1".into(),
            samples: vec![ClockSample {
                send_ns: 100_000 - rtt_ns / 2,
                recv_ns: 100_000 + rtt_ns / 2,
                reference_ns: 100_000,
            }],
        }
        .write(p)
        .unwrap();
    }
    paths
}

#[test]
fn clock_uncertainty_widens_ops_and_low_power_is_reported() {
    // Tight clocks (ε = 5 ns): the stale read is still a violation.
    let dir = TempDir::new("hosts-tight");
    let (code, out, err) = kv_check(&os(&two_hosts(&dir, 10)));
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.starts_with("FAIL: key 5: stale read"), "{out}");
    assert!(
        out.contains("\nclocks: ") && out.contains("ε median 0 us"),
        "{out}"
    );
    // ε = 5 us, larger than the gaps between the ops: no real-time order
    // is left, so nothing is a violation, and the check says it is weak.
    let dir = TempDir::new("hosts-loose");
    let (code, out, err) = kv_check(&os(&two_hosts(&dir, 10_000)));
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("PASS"), "{out}");
    assert!(out.contains("real-time order kept for 0.0% of"), "{out}");
    assert!(
        out.contains("warning: the clock uncertainty hides most real-time order"),
        "{out}"
    );
    // Samples against two different references are refused.
    let dir = TempDir::new("hosts-two-refs");
    let paths = two_hosts(&dir, 10);
    let mut other = kv_core::clock::ClockLog::read(&paths[1]).unwrap().unwrap();
    other.reference = "another-server/2".into();
    other.write(&paths[1]).unwrap();
    let (code, _, err) = kv_check(&os(&paths));
    assert_eq!(code, 2);
    assert!(err.contains("recorded on another machine"), "{err}");
}

/// Three keys with a stale read each (keys 5, 7 and 9) and one that passes.
fn three_failing_keys(dir: &TempDir) -> Vec<PathBuf> {
    let (c1, c2) = (dir.0.join("c1.hist"), dir.0.join("c2.hist"));
    let mut w = HistoryWriter::new(&c1, 1).unwrap();
    let mut r = HistoryWriter::new(&c2, 2).unwrap();
    for (n, key) in [9u64, 5, 7, 6].into_iter().enumerate() {
        let t = 10_000 * n as u64;
        let thread = n as u32;
        w.record(&op(
            thread,
            0,
            key,
            Action::Put(id(1, thread, 0)),
            t + 1_000,
            t + 2_000,
        ))
        .unwrap();
        w.record(&op(
            thread,
            1,
            key,
            Action::Put(id(1, thread, 1)),
            t + 3_000,
            t + 4_000,
        ))
        .unwrap();
        // Key 6 reads the latest value; the others the overwritten one.
        let read = if key == 6 { 1 } else { 0 };
        r.record(&op(
            0,
            n as u64,
            key,
            Action::Get(ReadValue::Written(id(1, thread, read))),
            t + 4_100,
            t + 4_900,
        ))
        .unwrap();
    }
    w.finish().unwrap();
    r.finish().unwrap();
    vec![c1, c2]
}

/// Issue 17: a page per failing key, at most --max-witnesses of them (the
/// smallest keys), and the verdict counts the keys left without one.
#[test]
fn every_failing_key_gets_a_witness_page_up_to_the_bound() {
    let dir = TempDir::new("witnesses");
    let paths = three_failing_keys(&dir);
    let mut args = os(&paths);
    args.extend([std::ffi::OsStr::new("--witness-dir"), dir.0.as_os_str()]);
    let (code, out, err) = kv_check(&args);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.starts_with("FAIL: key 5: stale read"), "{out}");
    assert!(out.contains("(3 keys failed; the first is shown)"), "{out}");
    let page = |k: u64| dir.0.join(format!("witness-key-{k}.html"));
    assert!(
        out.contains(&format!("\n  witness: {}\n", page(5).display())),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "\n  witness pages: 3 of 3 failing keys (keys 5, 7, 9) in {}",
            dir.0.display()
        )),
        "{out}"
    );
    assert!(!out.contains("no page"), "{out}");
    for (k, thread) in [(5, 1), (7, 2), (9, 0)] {
        let t = 10_000 * thread;
        let put = format!(
            "client 1 thread {thread} seq 1: put 1.{thread}.1, {}..{}, ok",
            t + 3_000,
            t + 4_000
        );
        let get = format!(
            "client 2 thread 0 seq {thread}: get 1.{thread}.0, {}..{}, ok",
            t + 4_100,
            t + 4_900
        );
        let html = assert_witness(&page(k), k, &[&put, &get]);
        assert!(html.contains("3 keys failed"), "{html}");
        let others: Vec<String> = [5, 7, 9]
            .iter()
            .filter(|&&o| o != k)
            .map(|o| format!("witness-key-{o}.html"))
            .collect();
        assert!(html.contains(&others.join(", ")), "{k}: {html}");
    }
    assert!(!page(6).exists(), "a page for the passing key");

    // At most two pages: keys 5 and 7; key 9 counted, not drawn.
    let bounded = TempDir::new("witnesses-bounded");
    let paths = three_failing_keys(&bounded);
    let mut args = os(&paths);
    args.extend(
        [
            "--witness-dir",
            bounded.0.to_str().unwrap(),
            "--max-witnesses",
            "2",
        ]
        .map(std::ffi::OsStr::new),
    );
    let (code, out, err) = kv_check(&args);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.contains("witness pages: 2 of 3 failing keys (keys 5, 7) in ")
            && out.contains("; 1 failing keys have no page (--max-witnesses N writes more)"),
        "{out}"
    );
    let pages: Vec<String> = std::fs::read_dir(&bounded.0)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".html"))
        .collect();
    let mut pages = pages;
    pages.sort();
    assert_eq!(pages, ["witness-key-5.html", "witness-key-7.html"]);
    let html = std::fs::read_to_string(bounded.0.join("witness-key-7.html")).unwrap();
    assert!(html.contains("1 more failing keys have no page"), "{html}");

    // --max-witnesses 0: the verdict as before, no page.
    let none = TempDir::new("witnesses-none");
    let paths = three_failing_keys(&none);
    let mut args = os(&paths);
    args.extend(
        [
            "--witness-dir",
            none.0.to_str().unwrap(),
            "--max-witnesses",
            "0",
        ]
        .map(std::ffi::OsStr::new),
    );
    let (code, out, _) = kv_check(&args);
    assert_eq!(code, 1);
    assert!(
        out.starts_with("FAIL: key 5: stale read") && !out.contains("witness: "),
        "{out}"
    );
    assert!(
        out.contains("witness pages: 0 of 3 failing keys (keys none)"),
        "{out}"
    );
}

/// The streaming check's spill directory cannot be written: one line,
/// exit 2, not a verdict. The in-memory check of the same files passes.
#[test]
fn an_unwritable_spill_directory_is_not_a_verdict() {
    let dir = TempDir::new("spill");
    let paths = two_clients(&dir, false);
    let mut args = os(&paths);
    let missing = dir.0.join("no-such-dir");
    args.extend([
        std::ffi::OsStr::new("--spill-dir"),
        missing.as_os_str(),
        "--spill-memory-mib".as_ref(),
        "0".as_ref(),
    ]);
    let (code, out, err) = kv_check(&args);
    assert_eq!(code, 2, "{out}{err}");
    assert_eq!(out, "");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with(&format!(
            "kv-check: cannot spill records to {}: No such file or directory",
            missing.display()
        )) && err.contains("--spill-dir DIR picks another place"),
        "{err}"
    );
    args.push("--in-memory".as_ref());
    let (code, out, _) = kv_check(&args);
    assert_eq!(code, 0, "{out}");
    assert_eq!(out, "PASS: 5 ops on 2 keys (histories: 2 files)\n");
}
