//! The layering of `src/`, enforced (ARCHITECTURE.md, "Layers").
//!
//! Every top-level module of the library has a layer. A module may use
//! modules of its own layer or of lower layers, never of a higher one, so
//! data walks down the pipeline's stages without jumping back. The test
//! reads every `crate::…` path outside doc comments, comments and
//! `#[cfg(test)]` modules, and fails with the file, the line and the
//! offending path.
//!
//! A new top-level module must be given a layer here: the test fails until
//! it is.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

/// Layers, bottom to top. The names are the top-level modules of `src/`
/// (`lib` is the crate root, which re-exports from every layer).
const LAYERS: &[&[&str]] = &[
    // 0: the vocabulary: the row, the wire names, time, ids, levels, text,
    // counter sets and the counters' public snapshot (`Stats`), the
    // thread spawner every ringtrail thread goes through, and how private
    // files are made and opened.
    &[
        "row", "contract", "time", "ids", "level", "text", "counters", "stats", "thread", "files",
    ],
    // 1: pure transformations of rows, with no I/O of their own.
    &["encode", "render", "redact", "chain", "audit"],
    // 2: the library's error type (it wraps the stages' errors), the
    // one reader of connection URLs with its TLS connector (sink and read
    // both connect through it; its errors are `Error::Config`), and the
    // message bus of scale-out (it knows messages and shards, not rows or
    // batches).
    &["error", "tls", "transport"],
    // 3: the hot path: the caller's thread writes records into the ring.
    &["ring", "capture"],
    // 4: where batches go, and the schema they go into.
    &["schema", "sink"],
    // 5: the writer thread, which drains the ring into the sinks, the
    // `metrics` export it publishes, and the sink worker, which drains a
    // shard of the bus into the shipper.
    &["writer", "metrics", "worker"],
    // 6: the public handles.
    &["guard", "builder"],
    // 7: the read side: queries, follow, export, verify. Nothing in the
    // write path uses it.
    &["read"],
    // 8: the crate root, and the fuzz entry points (built for the fuzz
    // targets and the tests only).
    &["lib", "fuzz"],
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).expect("src/ is readable") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file of `src/` belongs to.
fn module_of(src: &Path, file: &Path) -> String {
    let relative = file.strip_prefix(src).expect("a file under src/");
    let first = relative
        .components()
        .next()
        .expect("a path")
        .as_os_str()
        .to_string_lossy()
        .into_owned();
    first.trim_end_matches(".rs").to_owned()
}

/// The names the crate root re-exports (`pub use stats::{JsonlStats,
/// Stats};` in `lib.rs`), each with the module it comes from, so that
/// `crate::Stats` counts as a use of `stats`.
fn root_reexports(lib: &str) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    for line in lib.lines() {
        let Some(rest) = line.trim().strip_prefix("pub use ") else {
            continue;
        };
        let rest = rest.trim_end_matches(';');
        let Some((module, names)) = rest.split_once("::") else {
            continue;
        };
        for name in names.trim_matches(|c| c == '{' || c == '}').split(',') {
            let name = name.trim().rsplit("::").next().unwrap_or("").trim();
            if !name.is_empty() {
                map.insert(name.to_owned(), module.to_owned());
            }
        }
    }
    map
}

/// The top-level modules and root re-exports named by the `crate::` paths
/// of one line of code: `crate::sink::Outcome` gives `sink`;
/// `crate::{Error, ring::Ring}` gives `Error` and `ring`.
fn crate_paths(line: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = line;
    while let Some(at) = rest.find("crate::") {
        let before = &rest[..at];
        rest = &rest[at + "crate::".len()..];
        // `$crate::` in macros, and `my_crate::` are other paths.
        if before.ends_with('$') || before.ends_with(|c: char| c.is_alphanumeric() || c == '_') {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            // One level of braces: the first segment of every path in it.
            let mut depth = 0usize;
            let mut segment_start = true;
            let mut word = String::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        if !word.is_empty() {
                            found.push(std::mem::take(&mut word));
                        }
                        segment_start = true;
                    }
                    c if c.is_alphanumeric() || c == '_' => {
                        if segment_start {
                            word.push(c);
                        }
                    }
                    _ => {
                        if !word.is_empty() {
                            found.push(std::mem::take(&mut word));
                            segment_start = false;
                        }
                    }
                }
            }
            if !word.is_empty() {
                found.push(word);
            }
        } else {
            let word: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            found.push(word);
        }
    }
    found.into_iter().filter(|w| !w.is_empty()).collect()
}

/// The lines of a file that are code outside test modules: comments and
/// everything from the first `#[cfg(test)]` item to the end of its block
/// are left out.
fn code_lines(text: &str) -> Vec<(usize, &str)> {
    let mut lines = Vec::new();
    let mut skip_depth: Option<i64> = None;
    let mut pending_test = false;
    for (number, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        if let Some(depth) = skip_depth.as_mut() {
            *depth += line.matches('{').count() as i64 - line.matches('}').count() as i64;
            if *depth <= 0 && line.contains('}') {
                skip_depth = None;
            }
            continue;
        }
        if trimmed.starts_with("#[cfg(test)]") {
            pending_test = true;
            continue;
        }
        if pending_test {
            pending_test = false;
            let depth = line.matches('{').count() as i64 - line.matches('}').count() as i64;
            if depth > 0 {
                skip_depth = Some(depth);
            }
            // A one-line item (`#[cfg(test)] use …;`) is skipped as well.
            continue;
        }
        if trimmed.starts_with("//") {
            continue;
        }
        let code = match line.find("//") {
            Some(at) if !line[..at].contains('"') => &line[..at],
            _ => line,
        };
        lines.push((number + 1, code));
    }
    lines
}

#[test]
fn no_module_uses_a_higher_layer() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let reexports = root_reexports(&fs::read_to_string(src.join("lib.rs")).expect("lib.rs"));
    let mut unplaced = BTreeMap::new();
    let mut violations = Vec::new();
    for file in &files {
        let module = module_of(&src, file);
        let Some(own) = layer_of(&module) else {
            unplaced.insert(module, file.display().to_string());
            continue;
        };
        let text = fs::read_to_string(file).expect("a readable source file");
        for (number, line) in code_lines(&text) {
            for used in crate_paths(line) {
                // `crate::Stats` is a use of the module that defines it; a
                // capitalised name the root does not re-export is a macro
                // or a type of the root itself.
                let used = match reexports.get(&used) {
                    Some(from) => from.clone(),
                    None if used.starts_with(|c: char| c.is_ascii_uppercase()) => continue,
                    None => used,
                };
                if used == module {
                    continue;
                }
                match layer_of(&used) {
                    None => {
                        unplaced.insert(used, format!("{}:{number}", file.display()));
                    }
                    Some(layer) if layer > own => violations.push(format!(
                        "{}:{number}: `{module}` (layer {own}) uses `crate::{used}` (layer {layer})",
                        file.strip_prefix(&src).unwrap().display()
                    )),
                    Some(_) => {}
                }
            }
        }
    }
    assert!(
        unplaced.is_empty(),
        "modules with no layer in tests/tidy.rs (add them to LAYERS): {unplaced:?}"
    );
    assert!(
        violations.is_empty(),
        "a lower layer uses a higher one:\n{}",
        violations.join("\n")
    );
}

#[test]
fn the_checker_sees_every_form_of_path() {
    assert_eq!(crate_paths("use crate::sink::Outcome;"), ["sink"]);
    assert_eq!(
        crate_paths("use crate::{Error, ring::Ring, writer::{Control, x}};"),
        ["Error", "ring", "writer"]
    );
    let reexports = root_reexports("pub use stats::{JsonlStats, Stats};\npub use guard::Guard;\n");
    assert_eq!(reexports["Stats"], "stats");
    assert_eq!(reexports["JsonlStats"], "stats");
    assert_eq!(reexports["Guard"], "guard");
    assert_eq!(crate_paths("let x = crate::time::micros(t);"), ["time"]);
    assert!(crate_paths("$crate::row::Row").is_empty());
    assert!(crate_paths("ringtrail_crate::row").is_empty());
    let text = "use crate::a;\n// crate::b\n#[cfg(test)]\nmod tests {\n    use crate::c;\n}\nuse crate::d;\n";
    let seen: Vec<String> = code_lines(text)
        .into_iter()
        .flat_map(|(_, l)| crate_paths(l))
        .collect();
    assert_eq!(seen, ["a", "d"]);
}

#[test]
fn the_layers_name_each_module_once() {
    let mut seen = BTreeMap::new();
    for (layer, modules) in LAYERS.iter().enumerate() {
        for module in *modules {
            assert!(
                seen.insert(*module, layer).is_none(),
                "{module} is in two layers"
            );
        }
    }
}
