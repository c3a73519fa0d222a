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
