//! Typed run facts: what each process of a run is configured to do. `kv-run
//! plan` parses the server and client arguments once into these and stores
//! them per node in the manifest ([`crate::manifest::Node::facts`]); each
//! process reports the config it actually ran with in its summary
//! ([`crate::summary`]); `kv-run record` compares the two
//! ([`NodeFacts::differences`]). Nothing reads argument text after plan.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::limits::Limits;
use crate::workload::{Theta, Workload};

/// How an open-loop client spaces intended start times.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Arrival {
    /// Every op exactly 1/rate after the previous one.
    Fixed,
    /// Exponential gaps with mean 1/rate (a Poisson process), seeded.
    Poisson,
}

impl Arrival {
    pub fn name(self) -> &'static str {
        match self {
            Arrival::Fixed => "fixed",
            Arrival::Poisson => "poisson",
        }
    }
}

impl fmt::Display for Arrival {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `--arrival` names neither `fixed` nor `poisson`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--arrival must be fixed or poisson, got '{0}'")]
pub struct BadArrival(pub String);

impl FromStr for Arrival {
    type Err = BadArrival;
    fn from_str(s: &str) -> Result<Self, BadArrival> {
        match s {
            "fixed" => Ok(Arrival::Fixed),
            "poisson" => Ok(Arrival::Poisson),
            _ => Err(BadArrival(s.to_string())),
        }
    }
}

/// An open-loop client's pace (`--rate`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpenLoopFacts {
    /// Ops per second for the whole process.
    pub rate_per_s: f64,
    pub arrival: Arrival,
    pub flush_us: u64,
}

/// A client's effective configuration: defaults filled in, names canonical
/// (`ycsb-a`, `a` and `YCSB-A` are all [`Workload::A`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientFacts {
    pub workload: Workload,
    pub theta: Theta,
    /// Seconds of load generation.
    pub secs: f64,
    pub threads: u32,
    pub batch: u32,
    pub window: u32,
    pub connections: u32,
    /// First generator seed (thread i uses seed + i).
    pub seed: u64,
    pub client_id: u32,
    /// The servers, `HOST:PORT`, in shard order; empty with `--in-process`.
    pub hosts: Vec<String>,
    /// `--in-process`: records preloaded into its own store.
    pub in_process_preload: Option<u64>,
    /// `None`: closed loop.
    pub open_loop: Option<OpenLoopFacts>,
    /// Check mode: a history of every op is written.
    pub check: bool,
}

/// A server's effective configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerFacts {
    /// Address and port it listens on.
    pub bind: String,
    pub port: u16,
    /// Records `0..preload` loaded before serving.
    pub preload: u64,
    /// Tokio worker threads as asked (`None`: one per core).
    pub workers: Option<u32>,
    pub limits: Limits,
}

/// One node's facts, by role.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "role", rename_all = "lowercase")]
pub enum NodeFacts {
    Server(ServerFacts),
    Client(ClientFacts),
}

impl NodeFacts {
    pub fn client(&self) -> Option<&ClientFacts> {
        match self {
            NodeFacts::Client(c) => Some(c),
            NodeFacts::Server(_) => None,
        }
    }

    pub fn server(&self) -> Option<&ServerFacts> {
        match self {
            NodeFacts::Server(s) => Some(s),
            NodeFacts::Client(_) => None,
        }
    }

    /// Every field where `ran` differs from `self` (the plan), as
    /// `name: planned X, ran Y`, in field order. Compared through their
    /// serialized form, so a field added to the types is compared without
    /// touching this; nested fields are named with dots (`limits.max_batch_ops`).
    pub fn differences(&self, ran: &NodeFacts) -> Vec<String> {
        let (Ok(planned), Ok(ran)) = (serde_json::to_value(self), serde_json::to_value(ran)) else {
            return vec!["facts do not serialize".into()];
        };
        let mut out = Vec::new();
        diff("", &planned, &ran, &mut out);
        out
    }
}

fn diff(path: &str, planned: &serde_json::Value, ran: &serde_json::Value, out: &mut Vec<String>) {
    use serde_json::Value;
    match (planned, ran) {
        (Value::Object(p), Value::Object(r)) => {
            for (k, pv) in p {
                let name = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                diff(&name, pv, r.get(k).unwrap_or(&Value::Null), out);
            }
        }
        (p, r) if p != r => out.push(format!("{path}: planned {p}, ran {r}")),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> ClientFacts {
        ClientFacts {
            workload: Workload::A,
            theta: Theta::new(0.99).unwrap(),
            secs: 30.0,
            threads: 4,
            batch: 1024,
            window: 8,
            connections: 2,
            seed: 7,
            client_id: 0,
            hosts: vec!["127.0.0.1:8080".into()],
            in_process_preload: None,
            open_loop: None,
            check: false,
        }
    }

    #[test]
    fn equal_facts_agree_and_a_difference_is_named() {
        let planned = NodeFacts::Client(client());
        assert!(planned.differences(&planned.clone()).is_empty());
        let ran = NodeFacts::Client(ClientFacts {
            threads: 3,
            ..client()
        });
        assert_eq!(planned.differences(&ran), ["threads: planned 4, ran 3"]);
    }

    #[test]
    fn nested_limits_are_named_with_dots() {
        let s = ServerFacts {
            bind: "127.0.0.1".into(),
            port: 1,
            preload: 10,
            workers: None,
            limits: Limits::default(),
        };
        let mut other = s.clone();
        other.limits.max_batch_ops = 5;
        let d = NodeFacts::Server(s).differences(&NodeFacts::Server(other));
        assert_eq!(d.len(), 1);
        assert!(d[0].starts_with("limits.max_batch_ops: planned "), "{d:?}");
    }

    #[test]
    fn facts_round_trip_with_their_role() {
        let f = NodeFacts::Client(client());
        let text = serde_json::to_string(&f).unwrap();
        assert!(text.contains(r#""role":"client""#), "{text}");
        assert!(text.contains(r#""workload":"YCSB-A""#), "{text}");
        assert_eq!(serde_json::from_str::<NodeFacts>(&text).unwrap(), f);
        assert_eq!("poisson".parse::<Arrival>(), Ok(Arrival::Poisson));
        assert!("uniform".parse::<Arrival>().is_err());
    }
}
