//! The flags of kv-server and kv-client as types (clap), with their checks
//! and the run facts they give (`kv_core::facts`). The binaries parse their
//! command lines with these, and `kv-run plan` parses a run's argument text
//! with the same ones, once, so kv-run and kv-dash need neither binary's crate.

pub mod client;
pub mod server;

use clap::{CommandFactory, Parser};

/// A command line with the course's single-dash long flags (`-port 8080`)
/// given their two dashes, for the flags `P` has (kv_core::goflags).
/// `argv[0]` is the program.
pub fn go_style<P: CommandFactory>(argv: Vec<String>) -> Vec<String> {
    let cmd = P::command();
    let longs: Vec<&str> = cmd.get_arguments().filter_map(|a| a.get_long()).collect();
    kv_core::goflags::go_style(argv, &longs)
}

/// Argument text split into words as the binary reads them (single-dash
/// long flags read as `--`), without a program name.
pub fn words<P: CommandFactory>(text: &str) -> Vec<String> {
    let mut argv = vec![String::new()];
    argv.extend(text.split_whitespace().map(str::to_string));
    go_style::<P>(argv).split_off(1)
}

/// Arguments parsed exactly as the binary parses them, defaults included,
/// and which flags were typed rather than defaulted.
#[derive(Debug)]
pub struct Parsed<P> {
    pub args: P,
    given: Vec<String>,
}

impl<P> Parsed<P> {
    /// Whether the flag with clap id `id` (`threads`, `seed`) was typed.
    pub fn given(&self, id: &str) -> bool {
        self.given.iter().any(|g| g == id)
    }
}

/// Parses `words` (no program name) as binary `P` would. The error is
/// clap's, rendered to one line or a few (what the binary would print).
pub fn parse<P: Parser>(words: &[String]) -> Result<Parsed<P>, String> {
    let cmd = P::command();
    let name = cmd.get_name().to_string();
    let matches = cmd
        .try_get_matches_from(std::iter::once(name).chain(words.iter().cloned()))
        .map_err(|e| one_line(&e.render().to_string()))?;
    let given = matches
        .ids()
        .filter(|id| {
            matches.value_source(id.as_str()) == Some(clap::parser::ValueSource::CommandLine)
        })
        .map(|id| id.to_string())
        .collect();
    let args = P::from_arg_matches(&matches).map_err(|e| e.to_string())?;
    Ok(Parsed { args, given })
}

/// clap's first error line, without its `error: ` prefix: a bad flag is
/// named in one line (the usage that follows is for a terminal, not a log).
fn one_line(rendered: &str) -> String {
    let first = rendered
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("invalid arguments");
    first.strip_prefix("error: ").unwrap_or(first).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn course_flags_and_typed_flags() {
        let w = words::<client::Args>("-workload ycsb-a --threads 3");
        assert_eq!(w, ["--workload", "ycsb-a", "--threads", "3"]);
        let p = parse::<client::Args>(&w).unwrap();
        assert!(p.given("threads") && p.given("workload") && !p.given("seed"));
        assert_eq!(p.args.batch, 1024, "defaults as kv-client has them");
        assert!(parse::<client::Args>(&words::<client::Args>("--nonsense")).is_err());
        let s = parse::<server::Args>(&words::<server::Args>("-preload 10")).unwrap();
        assert_eq!(s.args.preload, 10);
        assert_eq!(s.args.facts().unwrap().preload, 10);
    }

    #[test]
    fn a_bad_flag_is_one_line_naming_it() {
        let Err(e) = parse::<server::Args>(&["--bogus-flag".to_string()]) else {
            panic!("an unknown flag is refused");
        };
        assert_eq!(e, "unexpected argument '--bogus-flag' found");
        let e = parse::<server::Args>(&words::<server::Args>("--workers 100000"))
            .expect("--workers parses as a number")
            .args
            .facts()
            .expect_err("--workers is bounded");
        assert_eq!(e.to_string(), "--workers must be at most 1024");
    }
}
