//! The crates keep their layers: no import loop among sibling modules (a module and the
//! modules beside it under the same parent), and the types of one edge stay at that edge — no
//! clap type below the command line, the wasmtime sandbox named only where a front door builds
//! it (or behind the guest seam).
//!
//! The sources are read as text: every `crate::…`, `super::…` and `self::…` path names a
//! module, and a path from inside module `a` (or below it) to module `b` (or below it), where
//! `a` and `b` are siblings, is an edge `a → b` among the children of their parent. A module
//! may use its ancestors and its descendants freely; the sibling graph of every parent must be
//! acyclic.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A module path from the crate root (`[]` is the root).
type ModPath = Vec<String>;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is in the workspace")
        .to_owned()
}

/// Every `.rs` file under `dir`.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read source dir") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// The module a file under `src` defines (`None` for a binary's root).
fn module_of(src: &Path, file: &Path) -> Option<ModPath> {
    let relative = file.strip_prefix(src).ok()?;
    let mut parts: Vec<String> = relative
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop()?;
    match last.as_str() {
        "lib.rs" if parts.is_empty() => Some(parts),
        "main.rs" if parts.is_empty() => None,
        "mod.rs" => Some(parts),
        other => {
            parts.push(other.trim_end_matches(".rs").to_owned());
            Some(parts)
        }
    }
}

/// `text` without line comments, block comments and the contents of string literals (so a
/// path in a doc comment or a message is not a use).
fn code_only(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i + 1 < bytes.len() && !(bytes[i] == b'*' && bytes[i + 1] == b'/') {
                    i += 1;
                }
                i += 2;
            }
            b'"' => {
                // Raw strings (r"…", r#"…"#) hold no escapes; others may.
                let raw = i > 0 && (bytes[i - 1] == b'r' || bytes[i - 1] == b'#');
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    if !raw && bytes[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
                i += 1;
                out.push_str("\"\"");
            }
            b'\'' if bytes.get(i + 2) == Some(&b'\'') || bytes.get(i + 1) == Some(&b'\\') => {
                // A char literal ('"', '\'', '\n'): skipped so its quote opens no string.
                let from = if bytes.get(i + 1) == Some(&b'\\') {
                    i + 3
                } else {
                    i + 2
                };
                let close = bytes[from.min(bytes.len())..]
                    .iter()
                    .position(|&b| b == b'\'')
                    .map_or(bytes.len(), |p| from + p + 1);
                i = close;
            }
            _ => {
                let ch = text[i..].chars().next().expect("in bounds");
                out.push(ch);
                i += ch.len_utf8();
            }
        }
    }
    out
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// The paths `code` names from its root keyword: `crate::a::b` → `(Crate, [a, b])`,
/// `super::super::x` → `(Super(2), [x])`; a `use` group's members each give a path.
fn paths(code: &str) -> Vec<(usize, Vec<String>)> {
    // The anchor: 0 = crate, n > 0 = n levels of super. `self::` is the file's own module
    // (never a sibling edge) and is skipped.
    let bytes = code.as_bytes();
    let mut found = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let at_word = i == 0 || !is_ident(bytes[i - 1]) && bytes[i - 1] != b':';
        if !code.is_char_boundary(i) {
            i += 1;
            continue;
        }
        let rest = &code[i..];
        let (anchor, skip) = if at_word && rest.starts_with("crate::") {
            (0, "crate::".len())
        } else if at_word && rest.starts_with("super::") {
            let mut n = 0;
            let mut j = 0;
            while code[i + j..].starts_with("super::") {
                n += 1;
                j += "super::".len();
            }
            (n, j)
        } else {
            i += 1;
            continue;
        };
        let mut j = i + skip;
        read_tree(code, &mut j, anchor, Vec::new(), &mut found);
        i = j.max(i + 1);
    }
    found
}

/// Reads a path or a `{…}` group at `*j`, pushing every path it names after `prefix`.
fn read_tree(
    code: &str,
    j: &mut usize,
    anchor: usize,
    prefix: Vec<String>,
    found: &mut Vec<(usize, Vec<String>)>,
) {
    let bytes = code.as_bytes();
    let mut path = prefix;
    loop {
        while *j < bytes.len() && bytes[*j].is_ascii_whitespace() {
            *j += 1;
        }
        if *j < bytes.len() && bytes[*j] == b'{' {
            *j += 1;
            loop {
                read_tree(code, j, anchor, path.clone(), found);
                while *j < bytes.len() && bytes[*j].is_ascii_whitespace() {
                    *j += 1;
                }
                match bytes.get(*j) {
                    Some(b',') => *j += 1,
                    Some(b'}') => {
                        *j += 1;
                        return;
                    }
                    _ => return,
                }
                while *j < bytes.len() && bytes[*j].is_ascii_whitespace() {
                    *j += 1;
                }
                if bytes.get(*j) == Some(&b'}') {
                    *j += 1;
                    return;
                }
            }
        }
        let start = *j;
        while *j < bytes.len() && is_ident(bytes[*j]) {
            *j += 1;
        }
        if start == *j {
            break;
        }
        path.push(code[start..*j].to_owned());
        if code[*j..].starts_with("::") {
            *j += 2;
        } else {
            break;
        }
    }
    if !path.is_empty() {
        found.push((anchor, path));
    }
}

/// For each parent module, its children's dependency edges.
type SiblingGraph = BTreeMap<ModPath, BTreeMap<String, BTreeSet<String>>>;

/// The sibling graph of the crate whose sources are in `src`.
fn sibling_graph(src: &Path) -> SiblingGraph {
    let files: Vec<(ModPath, String)> = rust_files(src)
        .into_iter()
        .filter_map(|f| {
            let module = module_of(src, &f)?;
            let text = std::fs::read_to_string(&f).expect("read source");
            Some((module, code_only(&text)))
        })
        .collect();
    let modules: BTreeSet<ModPath> = files.iter().map(|(m, _)| m.clone()).collect();
    let mut graph = SiblingGraph::new();
    for (module, code) in &files {
        for (anchor, path) in paths(code) {
            let base: ModPath = if anchor == 0 {
                Vec::new()
            } else {
                // `super` of a file module is its parent (inline modules are not told apart:
                // their `super::` then reads as an ancestor, which is never an edge).
                let keep = module.len().saturating_sub(anchor);
                module[..keep].to_vec()
            };
            // The longest prefix that is a module is the target.
            let mut target = base.clone();
            for segment in &path {
                let mut next = target.clone();
                next.push(segment.clone());
                if modules.contains(&next) {
                    target = next;
                } else {
                    break;
                }
            }
            let common = module
                .iter()
                .zip(&target)
                .take_while(|(a, b)| a == b)
                .count();
            if common == module.len() || common == target.len() {
                continue; // an ancestor or a descendant
            }
            graph
                .entry(module[..common].to_vec())
                .or_default()
                .entry(module[common].clone())
                .or_default()
                .insert(target[common].clone());
        }
    }
    graph
}

/// A cycle among the children of one parent, as the module names around it.
fn cycle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(node.to_owned(), 1);
        stack.push(node.to_owned());
        for next in edges.get(node).into_iter().flatten() {
            match state.get(next.as_str()).copied().unwrap_or(0) {
                1 => {
                    let from = stack.iter().position(|n| n == next).expect("on the stack");
                    let mut loop_ = stack[from..].to_vec();
                    loop_.push(next.clone());
                    return Some(loop_);
                }
                0 => {
                    if let Some(found) = visit(next, edges, state, stack) {
                        return Some(found);
                    }
                }
                _ => {}
            }
        }
        stack.pop();
        state.insert(node.to_owned(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for node in edges.keys() {
        if state.get(node.as_str()).copied().unwrap_or(0) == 0
            && let Some(found) = visit(node, edges, &mut state, &mut Vec::new())
        {
            return Some(found);
        }
    }
    None
}

fn loops_of(src: &Path) -> Vec<String> {
    sibling_graph(src)
        .iter()
        .filter_map(|(parent, edges)| {
            cycle(edges).map(|c| {
                let at = if parent.is_empty() {
                    "crate".to_owned()
                } else {
                    parent.join("::")
                };
                format!("{at}: {}", c.join(" → "))
            })
        })
        .collect()
}

#[test]
fn no_crate_has_an_import_loop_among_sibling_modules() {
    let root = workspace();
    let mut loops = Vec::new();
    for krate in ["core", "wasm", "host"] {
        for found in loops_of(&root.join(krate).join("src")) {
            loops.push(format!("{krate}: {found}"));
        }
    }
    assert!(loops.is_empty(), "import loops:\n{}", loops.join("\n"));
}

#[test]
fn the_loop_finder_finds_a_loop_and_reads_use_groups() {
    let code = code_only(
        "use crate::{a::{b, c}, d};\nuse super::super::e::f; // crate::ignored\nlet s = \"crate::x\";\n",
    );
    let found = paths(&code);
    assert_eq!(
        found,
        vec![
            (0, vec!["a".to_owned(), "b".to_owned()]),
            (0, vec!["a".to_owned(), "c".to_owned()]),
            (0, vec!["d".to_owned()]),
            (2, vec!["e".to_owned(), "f".to_owned()]),
        ]
    );
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    edges
        .entry("lexer".into())
        .or_default()
        .insert("check".into());
    edges
        .entry("check".into())
        .or_default()
        .insert("print".into());
    assert_eq!(cycle(&edges), None);
    edges
        .entry("print".into())
        .or_default()
        .insert("lexer".into());
    assert_eq!(
        cycle(&edges),
        Some(vec![
            "check".into(),
            "print".into(),
            "lexer".into(),
            "check".into()
        ])
    );
}

/// The host's files (relative to `host/src`) that mention `word` as a path segment or type.
fn host_files_naming(word: &str) -> Vec<String> {
    let src = workspace().join("host").join("src");
    rust_files(&src)
        .into_iter()
        .filter(|f| {
            let code = code_only(&std::fs::read_to_string(f).expect("read source"));
            code.match_indices(word).any(|(at, _)| {
                let before = code[..at].bytes().last();
                let after = code[at + word.len()..].bytes().next();
                // `GuestError::Sandbox` is the seam's own variant, not the type.
                !before.is_some_and(is_ident)
                    && !after.is_some_and(is_ident)
                    && !code[..at].ends_with("GuestError::")
            })
        })
        .map(|f| {
            f.strip_prefix(&src)
                .expect("under src")
                .to_string_lossy()
                .into_owned()
        })
        .collect()
}

#[test]
fn clap_stays_in_the_command_line() {
    let outside: Vec<String> = host_files_naming("clap")
        .into_iter()
        .filter(|f| f != "main.rs" && f != "cli.rs" && !f.starts_with("cli/"))
        .collect();
    assert!(
        outside.is_empty(),
        "clap below the command line: {outside:?}"
    );
}

#[test]
fn the_sandbox_type_is_named_only_where_it_is_built_or_wrapped() {
    // The sandbox itself, the guest seam that wraps it, and the front doors that build one.
    let allowed = [
        "sandbox.rs",
        "guest.rs",
        "cli.rs",
        "serve.rs",
        "serve/start.rs",
        "serve/metrics.rs",
        "sync.rs",
    ];
    let outside: Vec<String> = host_files_naming("Sandbox")
        .into_iter()
        .filter(|f| !allowed.contains(&f.as_str()) && !f.starts_with("sandbox/"))
        .collect();
    assert!(
        outside.is_empty(),
        "the concrete sandbox is named in {outside:?}: take `&dyn Guest`"
    );
}

#[test]
fn the_database_library_stays_in_its_backend() {
    let outside: Vec<String> = host_files_naming("rusqlite")
        .into_iter()
        .filter(|f| f != "store/sqlite.rs" && !f.starts_with("store/sqlite/"))
        .collect();
    assert!(
        outside.is_empty(),
        "rusqlite outside the SQLite store: {outside:?}"
    );
}

#[test]
fn the_store_knows_no_wire_format() {
    let inside: Vec<String> = host_files_naming("audlink_wasm")
        .into_iter()
        .filter(|f| f == "store.rs" || f.starts_with("store/"))
        .collect();
    assert!(
        inside.is_empty(),
        "the store uses the guest's wire format: {inside:?}"
    );
}
