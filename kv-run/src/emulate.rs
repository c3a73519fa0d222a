//! The emulated backend's part of `kv-run plan`: checks the `--emulate`
//! spec, the name prefix and subnet scripts/emulate.sh chose, and the CPU
//! budget against this machine's cores, before anything starts.

use anyhow::{bail, ensure, Result};
use kv_core::emulation::{EmulateSpec, Emulation};

use crate::plan::{Backend, PlanArgs};

/// The run's emulation, or `None` for other backends (which must not
/// be given `--emulate`).
pub fn plan_emulation(a: &PlanArgs, nodes: u32) -> Result<Option<Emulation>> {
    let Some(spec) = a.emulate.as_deref() else {
        ensure!(
            a.backend != Backend::Emulated,
            "--backend emulated needs --emulate cpus=C"
        );
        return Ok(None);
    };
    ensure!(
        a.backend == Backend::Emulated,
        "--emulate only goes with the emulated backend (got --backend {})",
        a.backend.name()
    );
    let spec: EmulateSpec = spec.parse()?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as u32;
    spec.check_budget(nodes, cores)?;
    // Interface names are at most 15 bytes: kve + 6 hex + v + index.
    ensure!(
        a.emulate_prefix.len() <= 9
            && a.emulate_prefix.starts_with("kve")
            && a.emulate_prefix[3..].chars().all(|c| c.is_ascii_hexdigit()),
        "--emulate-prefix must be kve and up to 6 hex digits, got '{}'",
        a.emulate_prefix
    );
    let octets: Vec<u8> = a
        .emulate_subnet
        .split('.')
        .filter_map(|o| o.parse().ok())
        .collect();
    if octets.len() != 3 || a.emulate_subnet.split('.').count() != 3 {
        bail!(
            "--emulate-subnet must be A.B.C (the run's /24), got '{}'",
            a.emulate_subnet
        );
    }
    // .0 is the network, .1 the bridge, .255 broadcast.
    ensure!(nodes <= 253, "an emulated run has at most 253 nodes");
    Ok(Some(Emulation {
        spec,
        prefix: a.emulate_prefix.clone(),
        subnet: a.emulate_subnet.clone(),
    }))
}

/// Node i's address: `.(i+2)` of the run's /24 (`.1` is the bridge).
pub fn node_addrs(e: &Emulation, nodes: usize) -> Vec<String> {
    (0..nodes)
        .map(|i| format!("{}.{}", e.subnet, i + 2))
        .collect()
}
