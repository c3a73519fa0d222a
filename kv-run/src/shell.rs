//! Quoting for the bash that `kv-run plan` hands to run-cluster.sh.

/// One word, quoted for POSIX shells: `'it'\''s'`.
pub fn quote(word: &str) -> String {
    if !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./:=,@+%".contains(&b))
    {
        return word.to_string();
    }
    format!("'{}'", word.replace('\'', r"'\''"))
}

/// Words joined into one command line that a shell splits back exactly.
pub fn join(words: &[String]) -> String {
    words.iter().map(|w| quote(w)).collect::<Vec<_>>().join(" ")
}

/// `NAME=(w1 w2 ...)`: a bash array assignment.
pub fn array(name: &str, values: &[String]) -> String {
    format!("{name}=({})", join(values))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_round_trip_through_bash() {
        let words: Vec<String> = ["plain", "", "it's", "a b", "$HOME", "x\"y", "--k=v"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let out = std::process::Command::new("bash")
            .args(["-c", &format!("printf '%s\\n' {}", join(&words))])
            .output()
            .unwrap();
        let back: Vec<String> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect();
        assert_eq!(back, words);
    }
}
