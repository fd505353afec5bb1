//! Holds the layers: reads every file of `src/` and fails when it imports a module its row
//! of the tables in docs/architecture.md does not allow (top-level modules, and the
//! studio's files), or when the tables themselves allow a loop. Test modules are left out.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Table = BTreeMap<String, BTreeSet<String>>;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The rows between `<!-- NAME:start -->` and `<!-- NAME:end -->`: the first cell's name,
/// the second cell's names (each in backticks).
fn table(doc: &str, name: &str) -> Table {
    let start = format!("<!-- {name}:start -->");
    let end = format!("<!-- {name}:end -->");
    let body = doc
        .split(&start)
        .nth(1)
        .and_then(|b| b.split(&end).next())
        .unwrap_or_else(|| panic!("docs/architecture.md has no {start} … {end} table"));
    let mut out = Table::new();
    for line in body.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.trim().trim_matches('|').split('|').collect();
        assert_eq!(cells.len(), 2, "a row of two cells: {line}");
        let module = cells[0].trim().trim_matches('`').to_string();
        let allowed = cells[1]
            .split(',')
            .map(|x| x.trim().trim_matches('`').to_string())
            .filter(|x| !x.is_empty())
            .collect();
        assert!(
            out.insert(module.clone(), allowed).is_none(),
            "{module} has two rows"
        );
    }
    assert!(!out.is_empty(), "the {name} table is empty");
    out
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The file's lines that are code: whole-line comments and the test module left out.
fn code_lines(text: &str) -> Vec<(usize, String)> {
    let text = match text.find("#[cfg(test)]\nmod tests") {
        Some(i) => &text[..i],
        None => text,
    };
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim_start().starts_with("//"))
        .map(|(i, l)| (i + 1, l.to_string()))
        .collect()
}

/// The names right after each `prefix` in `code` (a `{a, b::c}` group gives `a` and `b`),
/// where the prefix starts a path (not inside another identifier, not `$crate`).
fn names_after(code: &str, prefix: &str) -> Vec<String> {
    let mut out = Vec::new();
    let bytes = code.as_bytes();
    let mut from = 0;
    while let Some(i) = code[from..].find(prefix).map(|i| i + from) {
        from = i + prefix.len();
        let before = i.checked_sub(1).map(|b| bytes[b]);
        if before.is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b == b':')
        {
            continue;
        }
        let rest = &code[from..];
        if let Some(group) = rest.strip_prefix('{') {
            // Top-level items of the group.
            let mut depth = 0;
            let mut item = String::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        out.push(std::mem::take(&mut item));
                        continue;
                    }
                    _ => {}
                }
                item.push(c);
            }
            out.push(item);
        } else {
            out.push(rest.to_string());
        }
    }
    out.into_iter()
        .map(|s| {
            s.trim()
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '*')
                .collect::<String>()
        })
        .filter(|s| !s.is_empty() && s != "self")
        .collect()
}

/// Fails naming every loop the allowed edges make (self-references aside).
fn assert_acyclic(t: &Table, what: &str) {
    fn visit(n: &str, t: &Table, stack: &mut Vec<String>, done: &mut BTreeSet<String>, what: &str) {
        if done.contains(n) {
            return;
        }
        if let Some(i) = stack.iter().position(|s| s == n) {
            panic!(
                "the {what} table allows a loop: {} → {n}",
                stack[i..].join(" → ")
            );
        }
        stack.push(n.to_string());
        for m in t.get(n).into_iter().flatten().filter(|m| *m != n) {
            visit(m, t, stack, done, what);
        }
        stack.pop();
        done.insert(n.to_string());
    }
    let mut done = BTreeSet::new();
    for n in t.keys() {
        visit(n, t, &mut Vec::new(), &mut done, what);
    }
}

#[test]
fn modules_import_only_what_docs_architecture_allows() {
    let doc = std::fs::read_to_string(root().join("docs/architecture.md")).unwrap();
    let modules = table(&doc, "layers");
    assert_acyclic(&modules, "layers");
    let src = root().join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut problems = Vec::new();
    let mut seen = BTreeSet::new();
    for f in &files {
        let rel = f.strip_prefix(&src).unwrap();
        let first = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        let module = first.trim_end_matches(".rs").to_string();
        if module == "lib" || module == "main" {
            continue;
        }
        seen.insert(module.clone());
        let Some(allowed) = modules.get(&module) else {
            problems.push(format!(
                "src/{}: module `{module}` has no row in docs/architecture.md's layers table",
                rel.display()
            ));
            continue;
        };
        let text = std::fs::read_to_string(f).unwrap();
        for (line, code) in code_lines(&text) {
            for used in names_after(&code, "crate::") {
                if used != module && modules.contains_key(&used) && !allowed.contains(&used) {
                    problems.push(format!(
                        "src/{}:{line}: `{module}` imports `{used}`, which its row does not allow",
                        rel.display()
                    ));
                }
            }
        }
    }
    for m in modules.keys() {
        if !seen.contains(m) {
            problems.push(format!(
                "docs/architecture.md lists `{m}`, which src/ does not have"
            ));
        }
    }
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

#[test]
fn studio_files_import_only_what_docs_architecture_allows() {
    let doc = std::fs::read_to_string(root().join("docs/architecture.md")).unwrap();
    let rows = table(&doc, "tui-layers");
    assert_acyclic(&rows, "tui-layers");
    let tui = root().join("src/tui");
    let mut files = Vec::new();
    rust_files(&tui, &mut files);
    let name_of = |p: &Path| {
        let rel = p.strip_prefix(&tui).unwrap().with_extension("");
        rel.to_string_lossy().replace('\\', "/")
    };
    // Which names are files (a `super::x` that is not one is an item of the parent).
    let file_names: BTreeSet<String> = files.iter().map(|p| name_of(p)).collect();
    let mut problems = Vec::new();
    for f in &files {
        let me = name_of(f);
        // Declarations and re-exports only; test helpers.
        if me == "screens/mod" || me == "testing" {
            continue;
        }
        let in_screens = me.starts_with("screens/");
        let row = rows
            .get(&me)
            .or_else(|| in_screens.then(|| rows.get("screens/*")).flatten());
        let Some(allowed) = row else {
            problems.push(format!(
                "src/tui/{me}.rs has no row in docs/architecture.md's tui-layers table"
            ));
            continue;
        };
        let text = std::fs::read_to_string(f).unwrap();
        for (line, code) in code_lines(&text) {
            let mut used: Vec<String> = names_after(&code, "crate::tui::")
                .into_iter()
                .map(|n| {
                    if n == "screens" {
                        let deeper = names_after(&code, "crate::tui::screens::");
                        match deeper.first() {
                            Some(d) if file_names.contains(&format!("screens/{d}")) => {
                                format!("screens/{d}")
                            }
                            _ => n,
                        }
                    } else {
                        n
                    }
                })
                .collect();
            if in_screens {
                used.extend(names_after(&code, "super::super::"));
                for n in names_after(&code, "super::") {
                    if n == "super" {
                        continue;
                    }
                    let sibling = format!("screens/{n}");
                    used.push(if file_names.contains(&sibling) {
                        sibling
                    } else {
                        "screens".into()
                    });
                }
            } else if me != "mod" {
                for n in names_after(&code, "super::") {
                    used.push(if file_names.contains(&n) || n == "screens" {
                        n
                    } else {
                        "mod".into()
                    });
                }
            }
            for u in used {
                let is_module = file_names.contains(&u) || u == "screens" || u == "mod";
                if u != me && is_module && !allowed.contains(&u) {
                    let wildcard = u.starts_with("screens/")
                        && in_screens
                        && allowed.contains("screens")
                        && !rows.contains_key(&u);
                    if !wildcard {
                        problems.push(format!(
                            "src/tui/{me}.rs:{line}: imports `{u}`, which its row does not allow"
                        ));
                    }
                }
            }
        }
    }
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

#[test]
fn the_checker_sees_imports_in_every_form() {
    assert_eq!(
        names_after(
            "use crate::{domain::Role, store::{Store, X}, self};",
            "crate::"
        ),
        ["domain", "store"]
    );
    assert_eq!(
        names_after("let x = crate::engine::Engine::spawn(a);", "crate::"),
        ["engine"]
    );
    assert!(names_after("$crate::store::StoreError", "crate::").is_empty());
    let mut t = Table::new();
    t.insert("a".into(), ["b".to_string()].into());
    t.insert("b".into(), ["a".to_string()].into());
    let looped = std::panic::catch_unwind(|| assert_acyclic(&t, "test"));
    assert!(looped.is_err());
}
