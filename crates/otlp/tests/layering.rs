//! The receiver's boundaries, enforced (ARCHITECTURE.md):
//!
//! - it reaches the pipeline only through `ringtrail::Ingest` and the
//!   row vocabulary (`Record`, `Refused`, `Field`, `Value`, `row`,
//!   `audit`, `level`), never the writer, sinks or schema;
//! - the mapping (`src/map/`) is pure: it uses no transport, no
//!   receiver and no I/O, so OTLP → rows can be tested without a server.

use std::fs;
use std::path::{Path, PathBuf};

const PIPELINE_API: &[&str] = &[
    "ringtrail::Ingest",
    "ringtrail::Record",
    "ringtrail::Refused",
    "ringtrail::Field",
    "ringtrail::Value",
    "ringtrail::row::",
    "ringtrail::audit::",
    "ringtrail::level::",
    "ringtrail::{",
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Code lines of `text` (no comments), with their numbers.
fn code(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.starts_with("//"))
}

#[test]
fn the_receiver_uses_only_the_ingest_api_and_the_mapping_is_pure() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    assert!(files.len() > 5, "found the sources");
    let mut bad = Vec::new();
    for file in &files {
        let text = fs::read_to_string(file).unwrap();
        let in_map = file.starts_with(src.join("map"));
        for (n, line) in code(&text) {
            let mut rest = line;
            while let Some(at) = rest.find("ringtrail::") {
                let path = &rest[at..];
                if !PIPELINE_API.iter().any(|ok| path.starts_with(ok)) {
                    bad.push(format!("{}:{n}: {line}", file.display()));
                }
                // `ringtrail::{…}` lists: each name must be allowed.
                if let Some(list) = path.strip_prefix("ringtrail::{") {
                    let names = &list[..list.find('}').unwrap_or(list.len())];
                    for name in names.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                        let full = format!("ringtrail::{name}");
                        if !PIPELINE_API
                            .iter()
                            .any(|ok| full.starts_with(ok.trim_end_matches('{')))
                        {
                            bad.push(format!("{}:{n}: {name}", file.display()));
                        }
                    }
                }
                rest = &path["ringtrail::".len()..];
            }
            if in_map {
                for banned in [
                    "crate::http",
                    "crate::grpc",
                    "crate::receiver",
                    "crate::wire",
                    "tokio",
                    "std::net",
                    "std::fs",
                ] {
                    if line.contains(banned) {
                        bad.push(format!("{}:{n}: the mapping uses {banned}", file.display()));
                    }
                }
            }
        }
    }
    assert!(
        bad.is_empty(),
        "outside the receiver's boundaries:\n{}",
        bad.join("\n")
    );
}
