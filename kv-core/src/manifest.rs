//! `cluster.json`: what a run started and where (the run manifest). Written by `kv-run plan`
//! before anything starts, completed with PIDs by `kv-run set-pids`, read by
//! `collect`, `record`, kv-dash and the tests. Paths are relative to the
//! log directory that holds the manifest.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::facts::{ClientFacts, NodeFacts, ServerFacts};
use crate::stats::Role;

/// File name of the manifest inside a run's log directory.
pub const MANIFEST_FILE: &str = "cluster.json";

/// Version of this layout; bumped when a field changes meaning.
pub const MANIFEST_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub version: u32,
    pub run_id: String,
    /// UTC, RFC 3339.
    pub started_at: String,
    /// `local`, `cloudlab`, `hosts` or `emulated`.
    pub backend: String,
    /// Load-generation time of every client, seconds.
    pub secs: f64,
    /// Base seed: client i's threads use seeds `seed + i*threads ..`.
    pub seed: u64,
    /// Generator threads of the first client; each client's own count is
    /// [`Node::threads`] (they differ when hosts have different cores).
    pub threads: u32,
    /// The run's positional arguments, as typed.
    pub server_args: String,
    pub client_args: String,
    pub note: String,
    pub tag: String,
    pub profile: bool,
    pub check: bool,
    /// Directory of the binaries on this machine.
    pub bin_dir: String,
    /// Per-node directory root on remote hosts (remote backends only).
    pub remote_dir: Option<String>,
    /// Every flag run-cluster.sh was given, for config.json.
    pub script_args: Vec<String>,
    pub nodes: Vec<Node>,
    /// The emulated backend's resources and names (`--emulate`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emulate: Option<crate::emulation::Emulation>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Node {
    /// `node0`, `node1`, ...: servers first, then clients (the course's order).
    pub name: String,
    pub role: Role,
    /// The host the process runs on (`127.0.0.1` locally).
    pub host: String,
    /// `user@host` to reach it over ssh, or `None` when local.
    pub ssh: Option<String>,
    pub ssh_port: Option<u16>,
    /// Address the process binds, as the other nodes reach it.
    pub bind: String,
    /// Server: its RPC port. Client: its stats port.
    pub port: u16,
    /// Where to poll this node's stats (`HOST:PORT`).
    pub stats_addr: String,
    /// Full argument list of the process (program first).
    pub argv: Vec<String>,
    /// Log file, relative to the log directory.
    pub log: String,
    /// PID on this machine: the process itself, or its ssh session.
    pub pid: Option<u32>,
    /// PID on the remote host (remote backends).
    pub remote_pid: Option<u32>,
    /// Remote working directory (remote backends).
    pub remote_dir: Option<String>,
    /// Client: index within the run (`--client-id`).
    pub client_id: Option<u32>,
    /// Client: first and last generator seed.
    pub seeds: Option<(u64, u64)>,
    /// Summary JSON file, relative to the log directory (a client's; a
    /// server's too in newer manifests).
    pub summary_json: Option<String>,
    /// Profile prefix (`server-node0`): files `<prefix>.{svg,pb,folded}`.
    pub profile_prefix: Option<String>,
    /// Client: its generator threads (absent in older manifests).
    #[serde(default)]
    pub threads: Option<u32>,
    /// What this node runs with, parsed once by `kv-run plan` from its
    /// command line (absent in older manifests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub facts: Option<NodeFacts>,
}

impl Node {
    pub fn is_server(&self) -> bool {
        self.role == Role::Server
    }

    /// A client's planned config (`None` for servers and older manifests).
    pub fn client_facts(&self) -> Option<&ClientFacts> {
        self.facts.as_ref()?.client()
    }

    pub fn server_facts(&self) -> Option<&ServerFacts> {
        self.facts.as_ref()?.server()
    }
}

/// Why a manifest could not be read or written, naming the file.
#[derive(Debug, Error)]
pub enum ManifestError {
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} is not a kvlab manifest", path.display())]
    Malformed {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("cannot write {}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl ManifestError {
    /// The file does not exist (yet): the run has not been planned.
    pub fn is_not_found(&self) -> bool {
        matches!(self, ManifestError::Read { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
    }
}

impl Manifest {
    pub fn read(path: &Path) -> Result<Manifest, ManifestError> {
        let text = std::fs::read_to_string(path).map_err(|source| ManifestError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        serde_json::from_str(&text).map_err(|source| ManifestError::Malformed {
            path: path.to_path_buf(),
            source,
        })
    }

    pub fn write(&self, path: &Path) -> Result<(), ManifestError> {
        // Serializing plain data cannot fail.
        let text = serde_json::to_string_pretty(self).expect("manifest serializes");
        // Write then rename: readers (kv-dash) never see half a file.
        let tmp = path.with_extension("json.tmp");
        let write_err = |p: &Path| {
            let path = p.to_path_buf();
            move |source| ManifestError::Write { path, source }
        };
        std::fs::write(&tmp, text + "\n").map_err(write_err(&tmp))?;
        std::fs::rename(&tmp, path).map_err(write_err(path))
    }

    /// Records every server preloads: keys 0..N start with the preloaded
    /// value, the others absent. From the servers' facts; a manifest older
    /// than facts is read from its server args (`--preload N`, else the
    /// default), `None` when N is not a number (the server refused it too).
    pub fn preloaded_keys(&self) -> Option<u64> {
        if let Some(s) = self.servers().find_map(Node::server_facts) {
            return Some(s.preload);
        }
        let words: Vec<&str> = self.server_args.split_whitespace().collect();
        let mut value = None;
        for (i, w) in words.iter().enumerate() {
            // `-preload` too: the course's single-dash spelling (goflags).
            if *w == "--preload" || *w == "-preload" {
                value = Some(words.get(i + 1).copied().unwrap_or(""));
            } else if let Some(v) = w
                .strip_prefix("--preload=")
                .or_else(|| w.strip_prefix("-preload="))
            {
                value = Some(v);
            }
        }
        match value {
            None => Some(crate::workload::RECORD_COUNT),
            Some(v) => v.parse().ok(),
        }
    }

    pub fn servers(&self) -> impl Iterator<Item = &Node> {
        self.nodes.iter().filter(|n| n.is_server())
    }

    pub fn clients(&self) -> impl Iterator<Item = &Node> {
        self.nodes.iter().filter(|n| !n.is_server())
    }

    /// Each client's generator threads in node order (older manifests
    /// knew only one count for all).
    pub fn client_threads(&self) -> Vec<u32> {
        self.clients()
            .map(|n| {
                n.client_facts()
                    .map(|f| f.threads)
                    .or(n.threads)
                    .unwrap_or(self.threads)
            })
            .collect()
    }

    /// The first client's planned config: the run's workload, theta,
    /// batch, window and connections (every client gets the same args).
    pub fn client_facts(&self) -> Option<&ClientFacts> {
        self.clients().find_map(Node::client_facts)
    }

    /// Server addresses as clients get them: `HOST:PORT,HOST:PORT`.
    pub fn server_hosts(&self) -> String {
        self.servers()
            .map(|n| n.stats_addr.clone())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Distinct hosts, in node order.
    pub fn hosts(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for n in &self.nodes {
            if !out.contains(&n.host) {
                out.push(n.host.clone());
            }
        }
        out
    }
}

/// The log directory of a manifest path (its parent).
pub fn log_dir_of(manifest: &Path) -> PathBuf {
    manifest
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}
