//! Golden vectors: our generator must reproduce the reference's op stream
//! bit for bit, every row of every fixture, and its derived constants.

use std::path::Path;

use kv_core::workload::{OpKind, Theta, Workload, WorkloadSpec};

struct Fixture {
    workload: Workload,
    theta: Theta,
    seed: u64,
    header: std::collections::HashMap<String, String>,
    rows: Vec<(u64, u64, OpKind)>,
}

fn load(name: &str) -> Fixture {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut lines = text.lines();
    let comment = lines.next().expect("comment line");
    let header: std::collections::HashMap<String, String> = comment
        .trim_start_matches('#')
        .split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert_eq!(lines.next(), Some("index,key,op"));
    let rows = lines
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            assert_eq!(f.len(), 3, "row {l}");
            let kind = match f[2] {
                "get" => OpKind::Get,
                "put" => OpKind::Put,
                other => panic!("bad op {other}"),
            };
            (f[0].parse().unwrap(), f[1].parse().unwrap(), kind)
        })
        .collect();
    Fixture {
        workload: header["workload"].parse().unwrap(),
        theta: header["theta"].parse().unwrap(),
        seed: header["seed"].parse().unwrap(),
        header,
        rows,
    }
}

fn check(name: &str) {
    let f = load(name);
    assert_eq!(f.rows.len(), 100_000, "{name}: fixture size");
    let spec = WorkloadSpec::new(f.workload, f.theta);
    assert_eq!(
        spec.zipfian().zetan(),
        f.header["zetan"].parse::<f64>().unwrap(),
        "{name}: zetan"
    );
    assert_eq!(
        spec.zipfian().eta(),
        f.header["eta"].parse::<f64>().unwrap(),
        "{name}: eta"
    );
    assert_eq!(
        spec.zipfian().alpha(),
        f.header["alpha"].parse::<f64>().unwrap(),
        "{name}: alpha"
    );
    assert_eq!(
        spec.read_threshold(),
        f.header["read_threshold"].parse::<u64>().unwrap(),
        "{name}: read_threshold"
    );
    let mut gen = spec.generator(f.seed);
    for &(index, key, kind) in &f.rows {
        let op = gen.next_op();
        assert_eq!((op.key, op.kind), (key, kind), "{name}: row {index}");
    }
}

#[test]
fn ycsb_b_theta_099_seed_1() {
    check("ycsb-b_theta0.99_seed1.csv");
}

#[test]
fn ycsb_a_theta_05_seed_42() {
    check("ycsb-a_theta0.5_seed42.csv");
}

#[test]
fn ycsb_c_theta_099_seed_7_all_reads() {
    check("ycsb-c_theta0.99_seed7.csv");
}

#[test]
fn ycsb_b_read_share_is_95_percent() {
    let spec = WorkloadSpec::new(Workload::B, Theta::new(0.99).unwrap());
    let gets = spec
        .generator(3)
        .take(200_000)
        .filter(|o| o.kind == OpKind::Get)
        .count();
    let share = gets as f64 / 200_000.0;
    assert!((0.945..0.955).contains(&share), "read share {share}");
}

/// The fixtures are not snapshots of our own output: an independent
/// implementation of the documented reference algorithm
/// (scripts/gen-workload-vectors.py, Python) must reproduce each of them
/// byte for byte.
#[test]
fn fixtures_are_what_the_documented_script_makes() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let out = std::env::temp_dir().join(format!("kvlab-vectors-{}", std::process::id()));
    let status = std::process::Command::new("python3")
        .arg(root.join("scripts/gen-workload-vectors.py"))
        .arg("--out")
        .arg(&out)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("python3 is needed (scripts/install-test-deps.sh installs it)");
    assert!(status.success());
    for name in [
        "ycsb-a_theta0.5_seed42.csv",
        "ycsb-b_theta0.99_seed1.csv",
        "ycsb-c_theta0.99_seed7.csv",
    ] {
        let made = std::fs::read(out.join(name)).unwrap();
        let fixture = std::fs::read(root.join("kv-core/tests/fixtures").join(name)).unwrap();
        assert!(
            made == fixture,
            "{name}: the script's output differs from the fixture"
        );
    }
    std::fs::remove_dir_all(&out).unwrap();
}

/// YCSB-C by property, not by snapshot: every op a read, and the keys are
/// exactly YCSB-B's key stream for the same seed and theta (the read/write
/// draw is still consumed, so only the op kinds differ).
#[test]
fn ycsb_c_is_ycsb_b_keys_all_reads() {
    let c = load("ycsb-c_theta0.99_seed7.csv");
    assert_eq!(c.rows.len(), 100_000);
    assert!(
        c.rows.iter().all(|r| r.2 == OpKind::Get),
        "a YCSB-C op is a put"
    );
    let b = WorkloadSpec::new(Workload::B, c.theta);
    let b_keys: Vec<u64> = b
        .generator(c.seed)
        .take(c.rows.len())
        .map(|o| o.key)
        .collect();
    let c_keys: Vec<u64> = c.rows.iter().map(|r| r.1).collect();
    assert_eq!(c_keys, b_keys);
    // And the B stream does write: the property is not vacuous.
    assert!(b
        .generator(c.seed)
        .take(1000)
        .any(|o| o.kind == OpKind::Put));
}
