//! The README's reference sections are generated from the code, so they
//! cannot drift: the configuration keys (each `src/config/` section's
//! documented TOML), the drop reasons (`datapath::drop_reason`) and the
//! metrics (`control::metrics_catalogue`). Each lies between
//! `<!-- generated: NAME -->` and `<!-- end: NAME -->`; this test fails
//! when one differs from what the code says, and
//! `DLVS_UPDATE_README=1 cargo test --test readme` writes them anew.
//!
//! It also holds each section's documentation to its keys: every key a
//! section's raw (serde) struct reads is in that section's TOML block.

use std::path::{Path, PathBuf};

use dlvs::control::metrics_catalogue::{Kind, METRICS};
use dlvs::datapath::DropReason;

/// The sections, in the README's order: (file, TOML table).
const SECTIONS: &[(&str, &str)] = &[
    ("dpdk", "[dpdk]"),
    ("interface", "[[interface]]"),
    ("neighbor", "[[neighbor]]"),
    ("route", "[[route]]"),
    ("arp", "[arp]"),
    ("mark", "[[mark]]"),
    ("conn", "[conn]"),
    ("control", "[control]"),
    ("metrics", "[metrics]"),
    ("health", "[[health]]"),
    ("feedback", "[feedback]"),
    ("vrrp", "[[vrrp]]"),
    ("sync", "[sync]"),
    ("bgp", "[bgp]"),
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The TOML block of a section file's module doc.
fn toml_block(file: &str) -> String {
    let text = std::fs::read_to_string(root().join("src/config").join(format!("{file}.rs")))
        .unwrap_or_else(|e| panic!("src/config/{file}.rs: {e}"));
    let doc: Vec<&str> = text
        .lines()
        .take_while(|l| l.starts_with("//!"))
        .map(|l| {
            l.strip_prefix("//! ")
                .unwrap_or(l.strip_prefix("//!").unwrap_or(l))
        })
        .collect();
    let start = doc
        .iter()
        .position(|l| *l == "```toml")
        .unwrap_or_else(|| panic!("src/config/{file}.rs documents no ```toml block"));
    let end = start
        + doc[start..]
            .iter()
            .position(|l| *l == "```")
            .unwrap_or_else(|| panic!("src/config/{file}.rs: the toml block is not closed"));
    doc[start + 1..end].join("\n")
}

/// The keys a section's raw struct reads: the fields of every
/// `struct Raw...` in its file.
fn raw_keys(file: &str) -> Vec<String> {
    let text =
        std::fs::read_to_string(root().join("src/config").join(format!("{file}.rs"))).unwrap();
    let mut keys = Vec::new();
    let mut inside = false;
    for line in text.lines() {
        let t = line.trim();
        if t.contains("struct Raw") && t.ends_with('{') {
            inside = true;
            continue;
        }
        if inside && t == "}" {
            inside = false;
        }
        if inside && !t.starts_with("//") && !t.starts_with('#') {
            let field = t
                .trim_start_matches("pub(crate) ")
                .trim_start_matches("pub(super) ")
                .trim_start_matches("pub ");
            if let Some((name, _)) = field.split_once(':') {
                keys.push(name.trim().to_owned());
            }
        }
    }
    keys
}

fn configuration() -> String {
    let mut out = String::from("```toml\n");
    for (i, (file, _)) in SECTIONS.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&toml_block(file));
        out.push('\n');
    }
    out.push_str("```\n");
    out
}

fn drop_reasons() -> String {
    let mut out = String::from("| reason | the frame |\n| --- | --- |\n");
    for r in DropReason::ALL {
        out.push_str(&format!("| `{}` | {} |\n", r.as_str(), r.doc()));
    }
    out
}

fn metrics() -> String {
    let mut out =
        String::from("| metric | kind | labels | what it counts |\n| --- | --- | --- | --- |\n");
    for m in METRICS {
        let kind = match m.kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
        };
        let labels: Vec<String> = m.labels.iter().map(|l| format!("`{l}`")).collect();
        out.push_str(&format!(
            "| `{}` | {kind} | {} | {} |\n",
            m.name,
            labels.join(", "),
            m.help
        ));
    }
    out
}

/// `text` with the block NAME replaced by `body`; `None` if it has none.
fn with_block(text: &str, name: &str, body: &str) -> Option<String> {
    let begin = format!("<!-- generated: {name} -->\n");
    let end = format!("<!-- end: {name} -->");
    let a = text.find(&begin)? + begin.len();
    let b = a + text[a..].find(&end)?;
    Some(format!("{}{body}{}", &text[..a], &text[b..]))
}

#[test]
fn the_readme_s_references_are_the_code_s() {
    let path = root().join("README.md");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut want = text.clone();
    for (name, body) in [
        ("configuration", configuration()),
        ("drop reasons", drop_reasons()),
        ("metrics", metrics()),
    ] {
        want = with_block(&want, name, &body)
            .unwrap_or_else(|| panic!("README.md has no block `<!-- generated: {name} -->`"));
    }
    if want != text {
        if std::env::var_os("DLVS_UPDATE_README").is_some() {
            std::fs::write(&path, &want).unwrap();
            return;
        }
        let first = text
            .lines()
            .zip(want.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(0);
        panic!(
            "README.md's generated sections differ from the code from line {} on \
             (DLVS_UPDATE_README=1 cargo test --test readme writes them):\n  README: {:?}\n  code:   {:?}",
            first + 1,
            text.lines().nth(first).unwrap_or(""),
            want.lines().nth(first).unwrap_or("")
        );
    }
}

#[test]
fn every_key_a_section_reads_is_documented() {
    let mut missing = Vec::new();
    for (file, table) in SECTIONS {
        let block = toml_block(file);
        assert!(
            block.lines().any(|l| l.starts_with(table)),
            "src/config/{file}.rs: its block does not show {table}"
        );
        for key in raw_keys(file) {
            // `key =` as a whole word, on its own line or in an inline table.
            let pat = format!("{key} =");
            let shown = block.match_indices(&pat).any(|(at, _)| {
                block[..at]
                    .chars()
                    .last()
                    .map_or(true, |c| !(c.is_alphanumeric() || c == '_'))
            });
            if !shown {
                missing.push(format!("src/config/{file}.rs: {table} {key}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "keys without documentation:\n{}",
        missing.join("\n")
    );
    assert!(raw_keys("interface").contains(&"kernel".to_owned()));
}

/// Every metric name the code publishes is in the catalogue, and every
/// one of the catalogue is published somewhere.
#[test]
fn the_catalogue_holds_what_the_code_publishes() {
    let mut published = std::collections::BTreeSet::new();
    let mut stack = vec![root().join("src")];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension() == Some(std::ffi::OsStr::new("rs"))
                && !p.ends_with(Path::new("control/metrics_catalogue.rs"))
            {
                let text = std::fs::read_to_string(&p).unwrap();
                for part in text.split("\"dlvs_").skip(1) {
                    let name: String = part
                        .chars()
                        .take_while(|c| c.is_ascii_lowercase() || *c == '_' || c.is_ascii_digit())
                        .collect();
                    let metric = [
                        "port_",
                        "lcore_",
                        "service_",
                        "real_server_",
                        "vrrp_",
                        "sync_",
                        "bgp_",
                    ]
                    .iter()
                    .any(|p| name.starts_with(p));
                    if metric && part[name.len()..].starts_with('"') {
                        published.insert(format!("dlvs_{name}"));
                    }
                }
            }
        }
    }
    let catalogue: std::collections::BTreeSet<String> =
        METRICS.iter().map(|m| m.name.to_owned()).collect();
    let unknown: Vec<_> = published.difference(&catalogue).collect();
    let unused: Vec<_> = catalogue.difference(&published).collect();
    assert!(
        unknown.is_empty(),
        "published but not in the catalogue: {unknown:?}"
    );
    assert!(
        unused.is_empty(),
        "in the catalogue but never published: {unused:?}"
    );
}
