//! The crate's layers, checked on its sources (../shared/DESIGN.md,
//! "Layout"): each folder of src/ imports only folders below it, lowest
//! first `wire` (and the capture reader `pcap`), then `config` and
//! `sched`, `conn`, `service`, `datapath`, `control`; and no files of the
//! crate, or of the dlvs-admin crate (admin/) beneath it, import each
//! other in a circle.
//!
//! What counts as an import: every `crate::`, `super::` and `self::`
//! path in the code, and paths that start with a child module's name, in
//! `use` trees as anywhere else; tests included (test code follows the
//! layers too). A path is the file of the longest module it names; an
//! item a folder's `mod.rs` re-exports (`pub use child::Item`) is its
//! child's. A folder's `mod.rs` declares its files and holds what they
//! share: its own use of them is containment and not counted, theirs of
//! it is. Comment lines are skipped.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Folders (and top-level files) of src/, by layer, lowest first. Equal
/// layers may not import each other.
const LAYERS: &[(&str, usize)] = &[
    ("wire", 0),
    ("pcap", 0),
    ("config", 1),
    ("sched", 1),
    ("conn", 2),
    ("service", 3),
    ("datapath", 4),
    ("control", 5),
];

/// Module path (`["datapath", "l4", "fast"]`) to its file, relative to
/// src/ (`datapath/l4/fast.rs`). The crate root and the binaries are no
/// layer's.
fn modules(src: &Path) -> BTreeMap<Vec<String>, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            if p.extension().map_or(true, |x| x != "rs") {
                continue;
            }
            let rel = p.strip_prefix(src).unwrap().to_string_lossy().into_owned();
            if rel == "main.rs" || rel == "lib.rs" || rel.starts_with("bin/") {
                continue;
            }
            let mut path: Vec<String> = rel
                .trim_end_matches(".rs")
                .split('/')
                .map(str::to_owned)
                .collect();
            if path.last().is_some_and(|l| l == "mod") {
                path.pop();
            }
            out.insert(path, rel);
        }
    }
    out
}

/// The paths of a `use` tree (`a::{b, c::{d, e}}` is `a::b`, `a::c::d`,
/// `a::c::e`), each as its segments; `as` renames and globs dropped.
fn use_paths(tree: &str) -> Vec<Vec<String>> {
    fn expand(prefix: &[String], t: &str, out: &mut Vec<Vec<String>>) {
        let t = t.trim();
        if t.is_empty() {
            return;
        }
        if let Some(open) = t.find('{') {
            let head: Vec<String> = t[..open]
                .split("::")
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect();
            let inner = &t[open + 1..t.rfind('}').unwrap_or(t.len())];
            let mut p = prefix.to_vec();
            p.extend(head);
            // Split the inner list at top-level commas.
            let (mut depth, mut start) = (0, 0);
            for (i, c) in inner.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        expand(&p, &inner[start..i], out);
                        start = i + 1;
                    }
                    _ => {}
                }
            }
            expand(&p, &inner[start..], out);
            return;
        }
        let t = t.split(" as ").next().unwrap_or(t);
        let mut p = prefix.to_vec();
        p.extend(
            t.split("::")
                .map(str::trim)
                .filter(|s| !s.is_empty() && *s != "*")
                .map(str::to_owned),
        );
        out.push(p);
    }
    let mut out = Vec::new();
    expand(&[], tree, &mut out);
    out
}

/// Every path of `code` that starts with `crate`, `super`, `self` or one
/// of `children`: those of `use` items whole, others as identifier chains.
fn paths(code: &str, children: &BTreeSet<String>) -> Vec<(Vec<String>, bool)> {
    let mut out = Vec::new();
    // Whether the path is inside an inline module (`mod tests { .. }`),
    // where `super` is the file's own module.
    let mut inline = false;
    let mut text = String::new();
    let mut marks = Vec::new();
    for line in code.lines() {
        let t = line.trim_start();
        if t.starts_with("//") {
            continue;
        }
        let words: Vec<&str> = t.split_whitespace().collect();
        let is_mod_block = words
            .iter()
            .position(|w| *w == "mod")
            .is_some_and(|i| words.get(i + 2) == Some(&"{"));
        if is_mod_block {
            inline = true;
        }
        marks.push((text.len(), inline));
        text.push_str(line);
        text.push('\n');
    }
    let inline_at = |pos: usize| {
        marks
            .iter()
            .take_while(|(start, _)| *start <= pos)
            .last()
            .is_some_and(|m| m.1)
    };
    // `use` items, which may span lines.
    let mut rest = text.as_str();
    let mut offset = 0;
    let mut used = Vec::new();
    while let Some(i) = rest.find("use ") {
        let before = rest[..i].chars().last();
        let at = offset + i;
        if before.map_or(true, |c| !(c.is_alphanumeric() || c == '_')) {
            if let Some(end) = rest[i..].find(';') {
                let tree = &rest[i + 4..i + end];
                // A `use` item holds no string: one that seems to is prose.
                if !tree.contains('"') {
                    for p in use_paths(tree) {
                        out.push((p, inline_at(at)));
                    }
                    used.push((at, at + end));
                }
            }
        }
        offset += i + 4;
        rest = &rest[i + 4..];
    }
    // Other paths: identifier chains joined by `::`.
    let bytes = text.as_bytes();
    let ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut i = 0;
    while i < bytes.len() {
        if !ident(bytes[i]) || (i > 0 && (ident(bytes[i - 1]) || bytes[i - 1] == b':')) {
            i += 1;
            continue;
        }
        let start = i;
        let mut segs = Vec::new();
        let mut j = i;
        loop {
            let s = j;
            while j < bytes.len() && ident(bytes[j]) {
                j += 1;
            }
            segs.push(text[s..j].to_owned());
            if text[j..].starts_with("::") && j + 2 < bytes.len() && ident(bytes[j + 2]) {
                j += 2;
            } else {
                break;
            }
        }
        let in_use = used.iter().any(|&(a, b)| start >= a && start < b);
        let first = segs[0].as_str();
        let rooted = matches!(first, "crate" | "super" | "self") || children.contains(first);
        if !in_use && rooted && segs.len() > 1 {
            out.push((segs, inline_at(start)));
        }
        i = j.max(i + 1);
    }
    out
}

/// `pub use child::...` items of a folder module: item name to the child.
fn reexports(code: &str, children: &BTreeSet<String>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for stmt in code.split(';') {
        let s = stmt.trim();
        let Some(tree) = s
            .strip_prefix("pub use ")
            .or_else(|| s.strip_prefix("pub(crate) use "))
        else {
            continue;
        };
        for p in use_paths(tree) {
            let p: Vec<&str> = p
                .iter()
                .map(String::as_str)
                .skip_while(|s| *s == "self")
                .collect();
            if p.len() >= 2 && children.contains(p[0]) {
                out.insert(p[p.len() - 1].to_owned(), p[0].to_owned());
            }
        }
    }
    out
}

/// `code` without its `pub use` and `pub(crate) use` items.
fn without_reexports(code: &str) -> String {
    let mut out = String::new();
    let mut skipping = false;
    for line in code.lines() {
        let t = line.trim_start();
        if t.starts_with("pub use ") || t.starts_with("pub(crate) use ") {
            skipping = true;
        }
        if !skipping {
            out.push_str(line);
        }
        out.push('\n');
        if skipping && line.contains(';') {
            skipping = false;
        }
    }
    out
}

struct House {
    modules: BTreeMap<Vec<String>, String>,
    /// File to the files it imports.
    edges: BTreeMap<String, BTreeSet<String>>,
}

fn house() -> House {
    house_at(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"))
}

/// The files of the crate whose sources are in `src`.
fn house_at(src: &Path) -> House {
    let src = src.to_path_buf();
    let modules = modules(&src);
    let children_of = |m: &[String]| -> BTreeSet<String> {
        modules
            .keys()
            .filter(|k| k.len() == m.len() + 1 && k.starts_with(m))
            .map(|k| k[m.len()].clone())
            .collect()
    };
    let mut re: BTreeMap<Vec<String>, BTreeMap<String, String>> = BTreeMap::new();
    for (m, f) in &modules {
        let code = std::fs::read_to_string(src.join(f)).unwrap();
        re.insert(m.clone(), reexports(&code, &children_of(m)));
    }
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (m, f) in &modules {
        let code = std::fs::read_to_string(src.join(f)).unwrap();
        let children = children_of(m);
        // A folder's `mod.rs` is its face: handing a child's items on
        // (`pub use child::Item`) is no use of them. What it uses in its
        // own code counts.
        let code = if f.ends_with("mod.rs") {
            without_reexports(&code)
        } else {
            code
        };
        let to = edges.entry(f.clone()).or_default();
        for (segs, inline) in paths(&code, &children) {
            // The absolute module path the segments start from.
            let mut abs: Vec<String> = m.clone();
            let mut rest = segs.as_slice();
            match rest[0].as_str() {
                "crate" => {
                    abs.clear();
                    rest = &rest[1..];
                }
                "self" => rest = &rest[1..],
                "super" => {
                    // In an inline module, the first `super` is the file.
                    let mut first = inline;
                    while rest.first().is_some_and(|s| s == "super") {
                        if first {
                            first = false;
                        } else {
                            abs.pop();
                        }
                        rest = &rest[1..];
                    }
                }
                _ => {}
            }
            abs.extend(rest.iter().cloned());
            // The longest module it names, then a folder's re-export.
            let Some(n) = (1..=abs.len())
                .rev()
                .find(|&n| modules.contains_key(&abs[..n]))
            else {
                continue;
            };
            let mut target = abs[..n].to_vec();
            if let Some(child) = abs.get(n).and_then(|item| re[&target].get(item)) {
                target.push(child.clone());
            }
            let file = &modules[&target];
            // A folder's `mod.rs` holds what its files share (a trait, an
            // error) and declares them: its use of its own files is
            // containment, not an import between neighbours.
            let own = f.ends_with("mod.rs") && target.starts_with(m);
            if file != f && !own {
                to.insert(file.clone());
            }
        }
    }
    House { modules, edges }
}

fn top(file: &str) -> &str {
    file.split('/').next().unwrap().trim_end_matches(".rs")
}

fn layer(folder: &str) -> usize {
    LAYERS
        .iter()
        .find(|(f, _)| *f == folder)
        .unwrap_or_else(|| panic!("src/{folder} is in no layer: add it to LAYERS"))
        .1
}

#[test]
fn no_folder_imports_one_above_it() {
    let h = house();
    assert!(h.modules.len() > 50, "read {} modules", h.modules.len());
    let mut wrong = Vec::new();
    for (from, tos) in &h.edges {
        for to in tos {
            let (a, b) = (top(from), top(to));
            if a != b && layer(b) >= layer(a) {
                wrong.push(format!("{from} -> {to}"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports of a folder that is not below:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn no_files_import_each_other_in_a_circle() {
    circles_of(house());
    // dlvs-admin, the DPDK-free crate dlvsadm and the director share.
    let admin = house_at(&Path::new(env!("CARGO_MANIFEST_DIR")).join("admin/src"));
    assert!(admin.edges.contains_key("rules_file.rs"));
    circles_of(admin);
}

fn circles_of(h: House) {
    // Tarjan's strongly connected components.
    struct T<'a> {
        edges: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on: BTreeSet<&'a str>,
        found: Vec<Vec<&'a str>>,
    }
    fn visit<'a>(t: &mut T<'a>, v: &'a str) {
        let i = t.index.len();
        t.index.insert(v, i);
        t.low.insert(v, i);
        t.stack.push(v);
        t.on.insert(v);
        for w in t.edges.get(v).into_iter().flatten() {
            let w = w.as_str();
            if !t.index.contains_key(w) {
                visit(t, w);
                let l = t.low[v].min(t.low[w]);
                t.low.insert(v, l);
            } else if t.on.contains(w) {
                let l = t.low[v].min(t.index[w]);
                t.low.insert(v, l);
            }
        }
        if t.low[v] == t.index[v] {
            let mut scc = Vec::new();
            while let Some(w) = t.stack.pop() {
                t.on.remove(w);
                scc.push(w);
                if w == v {
                    break;
                }
            }
            if scc.len() > 1 {
                scc.sort_unstable();
                t.found.push(scc);
            }
        }
    }
    let mut t = T {
        edges: &h.edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        found: Vec::new(),
    };
    for v in h.edges.keys() {
        if !t.index.contains_key(v.as_str()) {
            visit(&mut t, v);
        }
    }
    let circles: Vec<String> = t
        .found
        .iter()
        .map(|scc| {
            let ties: Vec<String> = scc
                .iter()
                .flat_map(|a| {
                    h.edges[*a]
                        .iter()
                        .filter(|b| scc.contains(&b.as_str()))
                        .map(move |b| format!("{a} -> {b}"))
                })
                .collect();
            ties.join(", ")
        })
        .collect();
    assert!(
        circles.is_empty(),
        "files that import each other:\n{}",
        circles.join("\n")
    );
}

/// The checker itself: a path through a re-export and an upward import
/// are seen.
#[test]
fn the_checker_sees_imports() {
    let h = house();
    let of = |f: &str| h.edges.get(f).cloned().unwrap_or_default();
    assert!(of("datapath/worker.rs").contains("datapath/engine.rs"));
    assert!(of("control/director.rs").contains("datapath/worker.rs"));
    assert!(of("control/director.rs").contains("config/mod.rs"));
    let t = use_paths("crate::a::{b, c::{d, e as f}, g::*}");
    assert_eq!(
        t,
        [
            vec!["crate", "a", "b"],
            vec!["crate", "a", "c", "d"],
            vec!["crate", "a", "c", "e"],
            vec!["crate", "a", "g"],
        ]
    );
}
