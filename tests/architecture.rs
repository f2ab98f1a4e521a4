//! The module map holds: the stage engines name no source, and no two top-level modules
//! import each other, directly or through others. Imports are read from the source text
//! (`crate::module` paths, `use super::...` resolved to the file's top-level module).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

mod common;

/// The engines of the pipeline: they depend on `source` (the trait), never on `sources`.
const ENGINES: &[&str] = &["extract", "normalize", "reconcile", "publish"];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file of `src/` belongs to (`src/extract/http/mod.rs` → `extract`).
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).ok()?;
    let first = rel.components().next()?.as_os_str().to_string_lossy().into_owned();
    let name = first.trim_end_matches(".rs").to_string();
    (!matches!(name.as_str(), "lib" | "main")).then_some(name)
}

/// The code of a file without comments and its `#[cfg(test)]` module (tests may use anything;
/// a doc link is not an import).
fn code_of(text: &str) -> String {
    let code = text.split("#[cfg(test)]").next().unwrap_or(text);
    code.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Top-level modules named by `crate::x` paths in `text`.
fn crate_imports(text: &str, modules: &BTreeSet<String>) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for (i, _) in text.match_indices("crate::") {
        let rest = &text[i + "crate::".len()..];
        let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
        if modules.contains(&name) {
            found.insert(name);
        }
    }
    // `use crate::{a, b::c}` groups.
    for (i, _) in text.match_indices("crate::{") {
        let rest = &text[i + "crate::{".len()..];
        let group = &rest[..rest.find('}').unwrap_or(rest.len())];
        for part in group.split(',') {
            let name: String = part
                .trim()
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if modules.contains(&name) {
                found.insert(name);
            }
        }
    }
    found
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = common::repo().join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let modules: BTreeSet<String> = files.iter().filter_map(|f| module_of(&src, f)).collect();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let Some(module) = module_of(&src, file) else { continue };
        let text = std::fs::read_to_string(file).unwrap();
        let mut imports = crate_imports(&code_of(&text), &modules);
        imports.remove(&module);
        graph.entry(module).or_default().extend(imports);
    }
    graph
}

/// A cycle through `start`, if any: the path of modules back to it.
fn cycle_from(graph: &BTreeMap<String, BTreeSet<String>>, start: &str) -> Option<Vec<String>> {
    let mut stack = vec![(start.to_string(), vec![start.to_string()])];
    let mut seen = BTreeSet::new();
    while let Some((node, path)) = stack.pop() {
        for next in graph.get(&node).into_iter().flatten() {
            if next == start {
                let mut cycle = path.clone();
                cycle.push(start.to_string());
                return Some(cycle);
            }
            if seen.insert(next.clone()) {
                let mut p = path.clone();
                p.push(next.clone());
                stack.push((next.clone(), p));
            }
        }
    }
    None
}

#[test]
fn the_stage_engines_import_no_source() {
    let graph = graph();
    for engine in ENGINES {
        let imports = graph.get(*engine).cloned().unwrap_or_default();
        assert!(
            !imports.contains("sources"),
            "{engine} imports crate::sources: engines know sources only through crate::source"
        );
    }
}

#[test]
fn no_two_top_level_modules_import_each_other() {
    let graph = graph();
    let cycles: Vec<String> = graph
        .keys()
        .filter_map(|m| cycle_from(&graph, m))
        .map(|c| c.join(" -> "))
        .collect();
    assert!(
        cycles.is_empty(),
        "import cycles between top-level modules:\n{}",
        cycles.join("\n")
    );
}

#[test]
fn the_module_reader_sees_imports() {
    let modules: BTreeSet<String> = ["job", "schema", "source"].iter().map(|s| s.to_string()).collect();
    let found = crate_imports(
        "use crate::job::Job;\nuse crate::{schema::pii, source};\nfn f() { crate::other::x(); }",
        &modules,
    );
    assert_eq!(found, modules);
}
