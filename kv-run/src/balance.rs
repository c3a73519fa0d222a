//! Shard balance of a multi-server run: ops each server handled (the sum
//! of its per-second `ops/s` lines) and the imbalance, max / mean. Keys
//! are sharded by hash, so with a Zipf workload the shard holding the
//! hottest keys does more than its share, and a run is only as fast as
//! that shard while the servers have equal CPU.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerOps {
    pub node: String,
    pub ops: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardBalance {
    pub servers: Vec<ServerOps>,
    /// Busiest server's ops over the mean (1.0 = perfectly even).
    pub imbalance: f64,
}

impl ShardBalance {
    /// `None` for fewer than two servers or no ops at all.
    pub fn of(servers: Vec<ServerOps>) -> Option<ShardBalance> {
        if servers.len() < 2 {
            return None;
        }
        let total: f64 = servers.iter().map(|s| s.ops).sum();
        if total <= 0.0 {
            return None;
        }
        let mean = total / servers.len() as f64;
        let max = servers.iter().map(|s| s.ops).fold(0.0, f64::max);
        Some(ShardBalance {
            servers,
            imbalance: max / mean,
        })
    }

    /// `ops per server node0 1200 (60%), node1 800 (40%); imbalance max/mean 1.20`
    pub fn line(&self) -> String {
        let total: f64 = self.servers.iter().map(|s| s.ops).sum();
        let parts: Vec<String> = self
            .servers
            .iter()
            .map(|s| format!("{} {:.0} ({:.0}%)", s.node, s.ops, 100.0 * s.ops / total))
            .collect();
        format!(
            "ops per server {}; imbalance max/mean {:.2}",
            parts.join(", "),
            self.imbalance
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ops(v: &[f64]) -> Vec<ServerOps> {
        v.iter()
            .enumerate()
            .map(|(i, o)| ServerOps {
                node: format!("node{i}"),
                ops: *o,
            })
            .collect()
    }

    #[test]
    fn imbalance_is_max_over_mean() {
        let b = ShardBalance::of(ops(&[1200.0, 800.0])).unwrap();
        assert!((b.imbalance - 1.2).abs() < 1e-9);
        assert_eq!(
            b.line(),
            "ops per server node0 1200 (60%), node1 800 (40%); imbalance max/mean 1.20"
        );
        let even = ShardBalance::of(ops(&[5.0, 5.0, 5.0, 5.0])).unwrap();
        assert_eq!(even.imbalance, 1.0);
        assert!(
            ShardBalance::of(ops(&[7.0])).is_none(),
            "one server: no balance"
        );
        assert!(ShardBalance::of(ops(&[0.0, 0.0])).is_none());
    }
}
