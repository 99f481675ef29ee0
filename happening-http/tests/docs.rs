//! The configuration reference in docs/http.md names every flag and environment variable
//! of every subcommand (read from the binary's own `--help`), so it cannot fall behind.

mod common;

use std::collections::BTreeSet;

/// `--flag` names and `[env: NAME` variables in a subcommand's help.
fn options(sub: &str) -> BTreeSet<String> {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_happening")).args([sub, "--help"]).output().expect("run happening");
    assert!(out.status.success(), "happening {sub} --help failed");
    let help = String::from_utf8(out.stdout).expect("UTF-8 help");
    let mut found = BTreeSet::new();
    for word in help.split(|c: char| c.is_whitespace() || c == ',' || c == ']') {
        if let Some(flag) = word.strip_prefix("--").filter(|f| f.chars().all(|c| c.is_ascii_lowercase() || c == '-') && !f.is_empty()) {
            found.insert(format!("--{flag}"));
        }
    }
    for part in help.split("[env: ").skip(1) {
        let name: String = part.chars().take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_').collect();
        found.insert(name);
    }
    found.remove("--help");
    found.remove("--version");
    found
}

#[test]
fn every_flag_and_variable_is_documented() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/http.md")).expect("docs/http.md");
    let mut missing = Vec::new();
    for sub in ["serve", "migrate", "token", "reconcile", "audit", "worker", "healthcheck"] {
        let opts = options(sub);
        assert!(!opts.is_empty() || sub == "migrate", "no options parsed from `happening {sub} --help`");
        for o in opts {
            if !doc.contains(&format!("`{o}`")) {
                missing.push(format!("{sub}: {o}"));
            }
        }
    }
    assert!(missing.is_empty(), "not in docs/http.md (as `code`): {missing:?}");
}
