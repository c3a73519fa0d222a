//! Reading `kv-dash live`'s node table from a captured screen (tmux
//! `capture-pane`, or a rendered test buffer): kv-dash's own tests and
//! run-cluster's terminal test read rows the same way.

/// A node's table row, from its name on: after the color swatch (`■ `), or
/// the two blanks of a row without one.
pub fn row_of<'a>(screen: &'a str, node: &str) -> Option<&'a str> {
    screen.lines().find_map(|l| {
        let rest = l.strip_prefix('│')?;
        let rest = rest
            .strip_prefix("■ ")
            .or_else(|| rest.strip_prefix("  "))
            .unwrap_or(rest);
        rest.starts_with(&format!("{node} ")).then_some(rest)
    })
}

/// The OPS/S cell of a node's row (PROCESS ADDRESS OPS/S ...), as a number;
/// None when the row is missing or the cell is not a number (`-`).
pub fn ops_of(screen: &str, node: &str) -> Option<f64> {
    let row = row_of(screen, node)?;
    let cells: Vec<&str> = row.trim_matches('│').split_whitespace().collect();
    cells.get(2)?.replace(',', "").parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_with_and_without_a_swatch() {
        let screen = "│PROCESS        ADDRESS        OPS/S\n\
                      │■ server-node0 127.0.0.1:8080 100,000  ● up\n\
                      │  client-node1 127.0.0.1:9000 -        ✖ DOWN\n\
                      │client-node10 127.0.0.1:9001 7        ● up\n";
        assert_eq!(ops_of(screen, "server-node0"), Some(100_000.0));
        assert_eq!(ops_of(screen, "client-node1"), None, "a '-' is no number");
        assert!(row_of(screen, "client-node1").unwrap().contains("DOWN"));
        assert_eq!(ops_of(screen, "client-node10"), Some(7.0));
        assert_eq!(
            row_of(screen, "client-node"),
            None,
            "a name is matched whole"
        );
    }
}
