//! CloudLab node discovery, as the course's script does it: count the
//! experiment's nodes with `tmcc hostnames` (Emulab's own path first, then
//! PATH), fall back to the `geni-get -a` manifest, and name them
//! `node0..node{N-1}`. `geni-get -a` alone is not trusted first: its
//! manifest can come back truncated and lose nodes (the course moved to
//! tmcc for exactly that).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Result};

/// Where Emulab installs tmcc on every node (the course's script's path).
pub const TMCC_PATH: &str = "/usr/local/etc/emulab/tmcc";

/// What discovery found and how.
#[derive(Debug, Clone, PartialEq)]
pub struct Discovery {
    /// The command that answered, e.g. `/usr/local/etc/emulab/tmcc hostnames`.
    pub source: String,
    /// `node0..node{count-1}`.
    pub nodes: Vec<String>,
    /// Lines worth showing: a source that failed before the one used, or
    /// names that are not `node<i>`.
    pub notes: Vec<String>,
}

impl Discovery {
    /// One line for the run's header: source, count, names.
    pub fn line(&self) -> String {
        format!(
            "CloudLab nodes from `{}`: {} ({})",
            self.source,
            self.nodes.len(),
            self.nodes.join(" ")
        )
    }
}

/// The tmcc to run: Emulab's path, else the first `tmcc` on PATH.
pub fn find_tmcc() -> Option<PathBuf> {
    let fixed = Path::new(TMCC_PATH);
    if is_executable(fixed) {
        return Some(fixed.to_path_buf());
    }
    which("tmcc")
}

/// The first executable `name` on PATH.
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Runs `prog args`, returning its stdout or a one-line reason.
fn run(prog: &Path, args: &[&str]) -> std::result::Result<String, String> {
    let shown = format!("{} {}", prog.display(), args.join(" "));
    match Command::new(prog).args(args).output() {
        Err(e) => Err(format!("cannot run {shown}: {e}")),
        Ok(o) if !o.status.success() => Err(format!(
            "{shown} failed ({}): {}",
            o.status,
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Ok(o) => Ok(String::from_utf8_lossy(&o.stdout).into_owned()),
    }
}

/// Finds the experiment's nodes: tmcc first, geni-get second.
pub fn discover() -> Result<Discovery> {
    let mut notes = Vec::new();
    if let Some(tmcc) = find_tmcc() {
        match run(&tmcc, &["hostnames"]) {
            Ok(text) => {
                let names = tmcc_names(&text);
                if !names.is_empty() {
                    return Ok(found(
                        format!("{} hostnames", tmcc.display()),
                        &names,
                        notes,
                    ));
                }
                notes.push(format!("{} hostnames listed no hosts", tmcc.display()));
            }
            Err(e) => notes.push(e),
        }
    }
    if let Some(geni) = which("geni-get") {
        match run(&geni, &["-a"]) {
            Ok(text) => {
                let names = geni_host_names(&text);
                if !names.is_empty() {
                    return Ok(found("geni-get -a".into(), &names, notes));
                }
                notes.push("geni-get -a listed no <host name=...> entries".into());
            }
            Err(e) => notes.push(e),
        }
    }
    if notes.is_empty() {
        bail!(
            "cannot find this experiment's nodes: neither {TMCC_PATH} (or tmcc on PATH) nor \
             geni-get exists (is this a CloudLab node?)"
        );
    }
    bail!("cannot find this experiment's nodes: {}", notes.join("; "))
}

/// `node0..node{n-1}` for `listed` names, with a note when the listed
/// names are not those (kvlab, like the course, reaches nodes as `node<i>`).
fn found(source: String, listed: &[String], notes: Vec<String>) -> Discovery {
    let nodes: Vec<String> = (0..listed.len()).map(|i| format!("node{i}")).collect();
    let mut notes = notes;
    let mut sorted = listed.to_vec();
    sorted.sort();
    let mut expected = nodes.clone();
    expected.sort();
    if sorted != expected {
        notes.push(format!(
            "note: {source} names {}; kvlab reaches the nodes as {} (the course's naming)",
            listed.join(" "),
            nodes.join(" ")
        ));
    }
    Discovery {
        source,
        nodes,
        notes,
    }
}

/// Distinct node names of `tmcc hostnames` output, whose lines read
/// `NAME=node1-link-0 IP=10.10.1.2 ALIASES='node1-0 node1'` (one line per
/// node and link): the shortest of NAME and its aliases is the node's own
/// name. Lines without `NAME=` count one node each, as the course's
/// `wc -l` does.
pub fn tmcc_names(text: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for (i, line) in text.lines().map(str::trim).enumerate() {
        if line.is_empty() {
            continue;
        }
        let mut words: Vec<&str> = Vec::new();
        if let Some(rest) = line
            .split_whitespace()
            .find_map(|w| w.strip_prefix("NAME="))
        {
            words.push(rest);
        }
        if let Some((_, aliases)) = line.split_once("ALIASES=") {
            let aliases = aliases.trim_matches(['\'', '"']);
            let aliases = aliases.split(['\'', '"']).next().unwrap_or("");
            words.extend(aliases.split_whitespace());
        }
        let name = match words.iter().min_by_key(|w| w.len()) {
            Some(w) => w.to_string(),
            None => format!("(line {})", i + 1),
        };
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names
}

/// Distinct `<host name="...">` entries of a `geni-get -a` manifest (whose
/// quotes may come escaped as `\"`), short names (before the first dot).
pub fn geni_host_names(text: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for s in text.split("<host name=").skip(1) {
        let s = s.trim_start_matches(['\\', '"']);
        let Some(end) = s.find(['\\', '"']) else {
            continue; // cut off mid-name: not a host we can count
        };
        let short = s[..end].split('.').next().unwrap_or("").to_string();
        if !short.is_empty() && !names.contains(&short) {
            names.push(short);
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tmcc_lines_name_each_node_once() {
        let text = "NAME=node1-link-0 IP=10.10.1.2 ALIASES='node1-0 node1'\n\
                    NAME=node0-link-0 IP=10.10.1.1 ALIASES='node0-0 node0'\n\
                    NAME=node1-link-1 IP=10.10.2.2 ALIASES='node1-1 node1'\n\n";
        assert_eq!(tmcc_names(text), ["node1", "node0"]);
        assert_eq!(
            tmcc_names("NAME=node0 IP=10.0.0.1 ALIASES=''\nNAME=node1 IP=10.0.0.2\n"),
            ["node0", "node1"]
        );
        // Unknown format: one node a line, like the course's `wc -l`.
        assert_eq!(tmcc_names("a\nb\n\nc\n").len(), 3);
        assert!(tmcc_names("\n\n").is_empty());
    }

    #[test]
    fn geni_manifest_hosts_even_when_cut_short() {
        let text = r#"<rspec><node client_id=\"node0\"><host name=\"node0.exp.cloudlab.us\"/></node>
            <node><host name=\"node1.exp.cloudlab.us\"/></node><host name=\"node1.exp.cloudlab.us\"/>"#;
        assert_eq!(geni_host_names(text), ["node0", "node1"]);
        assert_eq!(
            geni_host_names(r#"<host name="a"/><host name="b"/><host name="c"/>"#),
            ["a", "b", "c"]
        );
        assert!(geni_host_names("no hosts").is_empty());
        // Truncated inside the third name: two whole hosts, no garbage.
        assert_eq!(
            geni_host_names(r#"<host name="node0.x"/><host name="node1.x"/><host name="no"#),
            ["node0", "node1"]
        );
    }

    #[test]
    fn nodes_are_named_like_the_course_with_a_note_otherwise() {
        let d = found("t".into(), &["node1".into(), "node0".into()], vec![]);
        assert_eq!(d.nodes, ["node0", "node1"]);
        assert!(d.notes.is_empty());
        assert_eq!(d.line(), "CloudLab nodes from `t`: 2 (node0 node1)");
        let d = found("t".into(), &["a".into(), "b".into()], vec![]);
        assert_eq!(d.nodes, ["node0", "node1"]);
        assert!(d.notes[0].contains("names a b"), "{:?}", d.notes);
    }
}
