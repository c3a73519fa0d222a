//! The Go-style spellings of long flags, as the course's skeleton binaries
//! take them (`-port 8080`, `-hosts a:8080,b:8080`, `-secs 30`,
//! `-workload YCSB-A`, `-theta 0.99`, `-port=8080`): Go's flag package
//! accepts one dash or two, so the course's scripts and habits use one.
//! Each word `-name` or `-name=value` whose `name` is one of the program's
//! long flags becomes `--name`/`--name=value` before clap parses; short
//! flags (`-h`), values (`--theta -1` stays) and everything after `--` are
//! left alone.

/// `args` (program first) with single-dash long flags given two dashes.
pub fn go_style(args: Vec<String>, longs: &[&str]) -> Vec<String> {
    let mut out = Vec::with_capacity(args.len());
    let mut rest = false;
    for (i, a) in args.into_iter().enumerate() {
        if i == 0 || rest {
            out.push(a);
            continue;
        }
        if a == "--" {
            rest = true;
            out.push(a);
            continue;
        }
        let name = a
            .strip_prefix('-')
            .filter(|n| !n.starts_with('-'))
            .map(|n| n.split_once('=').map_or(n, |(k, _)| k));
        match name {
            // Two letters at least: `-p` stays a short flag.
            Some(n) if n.len() >= 2 && (longs.contains(&n) || n == "help") => {
                out.push(format!("-{a}"));
            }
            _ => out.push(a),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn single_dash_long_flags_get_two() {
        let longs = ["hosts", "secs", "workload", "theta", "port"];
        assert_eq!(
            go_style(
                v("kvsclient -hosts a:1,b:2 -workload YCSB-A -secs=30 -theta 0.99"),
                &longs
            ),
            v("kvsclient --hosts a:1,b:2 --workload YCSB-A --secs=30 --theta 0.99")
        );
        // Short flags, unknown names, values and words after `--` stay.
        assert_eq!(
            go_style(v("kv -p 1 -bogus --port 2 --theta -1 -- -port"), &longs),
            v("kv -p 1 -bogus --port 2 --theta -1 -- -port")
        );
        assert_eq!(go_style(v("kv -help"), &longs), v("kv --help"));
    }
}
