//! The console's boundaries, enforced (ARCHITECTURE.md):
//!
//! - it reads through `ringtrail::read` and the row vocabulary only: never
//!   the writer, the ring, sinks or `Ingest`;
//! - it does not depend on the OTLP receiver (`serve` joins them);
//! - pages are built with `html::Html` only: no `format!` of markup, no
//!   inline `<script>` or `style=`.

use std::fs;
use std::path::{Path, PathBuf};

/// What the console may name in the library.
const READ_API: &[&str] = &[
    "ringtrail::read",
    "ringtrail::render",
    "ringtrail::time",
    "ringtrail::tls::ConnectOptions",
    "ringtrail::audit::rules::FindingCode",
    "ringtrail::audit::contract::field",
    "ringtrail::level::",
    "ringtrail::Row",
    "ringtrail::Result",
    "ringtrail::Error",
    "ringtrail::contract::",
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

#[test]
fn the_console_reads_only_and_escapes_everything() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    assert!(files.len() > 8, "found the sources");
    let mut bad = Vec::new();
    for file in &files {
        let text = fs::read_to_string(file).unwrap();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.starts_with("//") {
                continue;
            }
            let mut rest = line;
            while let Some(at) = rest.find("ringtrail::") {
                let path = &rest[at..];
                let before = rest[..at].chars().last();
                // `ringtrail_console::…` and the like are not the library.
                let library = !matches!(before, Some(c) if c.is_alphanumeric() || c == '_');
                if library && !READ_API.iter().any(|ok| path.starts_with(ok)) {
                    bad.push(format!("{}:{}: {line}", file.display(), n + 1));
                }
                rest = &path["ringtrail::".len()..];
            }
            for forbidden in [
                "ringtrail_otlp",
                "Ingest",
                "<script>",
                "style=",
                "innerHTML",
            ] {
                if line.contains(forbidden) {
                    bad.push(format!("{}:{}: {forbidden}: {line}", file.display(), n + 1));
                }
            }
            // Markup is written with `Html::raw` literals only.
            if line.contains("format!(\"<") || line.contains("push_str(\"<") {
                bad.push(format!(
                    "{}:{}: markup outside Html: {line}",
                    file.display(),
                    n + 1
                ));
            }
        }
    }
    let manifest = fs::read_to_string(root.join("Cargo.toml")).unwrap();
    if manifest.contains("ringtrail-otlp") {
        bad.push("Cargo.toml depends on ringtrail-otlp".into());
    }
    let script = fs::read_to_string(root.join("assets/console.js")).unwrap();
    for forbidden in [
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
        "eval(",
    ] {
        let used = script
            .lines()
            .any(|l| !l.trim_start().starts_with("//") && l.contains(forbidden));
        if used {
            bad.push(format!("assets/console.js uses {forbidden}"));
        }
    }
    assert!(
        bad.is_empty(),
        "the console's boundaries:\n{}",
        bad.join("\n")
    );
}
