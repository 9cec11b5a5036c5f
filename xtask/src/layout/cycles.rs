//! Import cycles among a crate's top-level modules. Each file under `src/`
//! belongs to a top-level module (a folder module is one node; `lib.rs` and
//! `main.rs` are the root, which is left out); its non-test code's
//! `crate::x`, `use crate::{x, y::z}` and `super::x` (when `super` reaches
//! the root) make edges to `x`, `y`. A strongly connected component of more
//! than one module is a cycle.

use super::source::{code_only, is_ident, without_tests};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// Where an edge was seen first: file (relative to `src/`) and line.
pub type Seen = (String, usize);

/// module -> module it imports -> where.
pub type Graph = BTreeMap<String, BTreeMap<String, Seen>>;

/// The top-level module a file belongs to and its module path below `src/`
/// (`a/b.rs` and `a/b/mod.rs` are `[a, b]`; `lib.rs`, `main.rs` are `[]`).
pub fn module_path(rel: &str) -> Vec<String> {
    let stem = rel.strip_suffix(".rs").unwrap_or(rel);
    let mut parts: Vec<String> = stem.split('/').map(str::to_string).collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    if parts == ["lib"] || parts == ["main"] {
        parts.clear();
    }
    parts
}

/// The graph of `files` (path relative to `src/`, text).
pub fn graph(files: &[(String, String)]) -> Graph {
    let tops: BTreeSet<String> = files
        .iter()
        .filter_map(|(rel, _)| module_path(rel).first().cloned())
        .collect();
    let mut g: Graph = tops.iter().map(|m| (m.clone(), BTreeMap::new())).collect();
    for (rel, text) in files {
        let path = module_path(rel);
        let Some(me) = path.first() else {
            continue;
        };
        let code = without_tests(&code_only(text));
        for (target, line) in references(&code, path.len()) {
            if target != *me && tops.contains(&target) {
                g.entry(me.clone())
                    .or_default()
                    .entry(target)
                    .or_insert_with(|| (rel.clone(), line));
            }
        }
    }
    g
}

/// The top-level names a file at module depth `depth` refers to, with
/// their lines: after `crate::`, and after as many `super::` as reach the root.
pub fn references(code: &str, depth: usize) -> Vec<(String, usize)> {
    let c: Vec<char> = code.chars().collect();
    let mut found = Vec::new();
    let mut i = 0;
    while i < c.len() {
        // `$crate::x` counts (a macro of this crate), `a::crate::x` is no path.
        let word_start = i == 0 || !(is_ident(c[i - 1]) || c[i - 1] == ':');
        if word_start && starts(&c, i, "crate::") {
            names_after(&c, i + "crate::".len(), &mut found);
            i += "crate::".len();
            continue;
        }
        if word_start && starts(&c, i, "super::") {
            let mut j = i;
            let mut supers = 0;
            while starts(&c, j, "super::") {
                supers += 1;
                j = skip_ws(&c, j + "super::".len());
            }
            if supers == depth {
                names_after(&c, j, &mut found);
            }
            i = j;
            continue;
        }
        i += 1;
    }
    let newlines: Vec<usize> = (0..c.len()).filter(|&k| c[k] == '\n').collect();
    found
        .into_iter()
        .map(|(name, at)| (name, newlines.partition_point(|&n| n < at) + 1))
        .collect()
}

fn starts(c: &[char], i: usize, s: &str) -> bool {
    (i..)
        .zip(s.chars())
        .all(|(j, want)| c.get(j) == Some(&want))
}

fn skip_ws(c: &[char], mut i: usize) -> usize {
    while c.get(i).is_some_and(|ch| ch.is_whitespace()) {
        i += 1;
    }
    i
}

fn ident_at(c: &[char], i: usize) -> String {
    c[i.min(c.len())..]
        .iter()
        .take_while(|&&ch| is_ident(ch))
        .collect()
}

/// The name after a path prefix, or the first name of each element of a
/// `{a, b::c, d::{e, f}}` group, with the index where it starts.
fn names_after(c: &[char], i: usize, out: &mut Vec<(String, usize)>) {
    let i = skip_ws(c, i);
    if c.get(i) != Some(&'{') {
        let name = ident_at(c, i);
        if !name.is_empty() {
            out.push((name, i));
        }
        return;
    }
    let mut depth = 0usize;
    let mut expect_name = true;
    let mut j = i;
    while j < c.len() {
        match c[j] {
            '{' => {
                depth += 1;
                if depth == 1 {
                    expect_name = true;
                }
            }
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return;
                }
            }
            ',' if depth == 1 => expect_name = true,
            ch if expect_name && depth == 1 && is_ident(ch) => {
                let name = ident_at(c, j);
                let name_len = name.chars().count();
                expect_name = false;
                if name != "self" {
                    out.push((name, j));
                }
                j += name_len;
                continue;
            }
            _ => {}
        }
        j += 1;
    }
}

/// Every strongly connected component of more than one module (Tarjan).
pub fn cycles(g: &Graph) -> Vec<Vec<String>> {
    struct Tarjan<'a> {
        g: &'a Graph,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        out: Vec<Vec<String>>,
    }
    impl<'a> Tarjan<'a> {
        fn visit(&mut self, v: &'a str) {
            let n = self.index.len();
            self.index.insert(v, n);
            self.low.insert(v, n);
            self.stack.push(v);
            self.on_stack.insert(v);
            for w in self.g.get(v).into_iter().flat_map(|e| e.keys()) {
                let w = w.as_str();
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let lw = self.low[w];
                    let lv = self.low.entry(v).or_default();
                    *lv = (*lv).min(lw);
                } else if self.on_stack.contains(w) {
                    let iw = self.index[w];
                    let lv = self.low.entry(v).or_default();
                    *lv = (*lv).min(iw);
                }
            }
            if self.low[v] == self.index[v] {
                let mut comp = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack.remove(w);
                    comp.push(w.to_string());
                    if w == v {
                        break;
                    }
                }
                if comp.len() > 1 {
                    comp.sort();
                    self.out.push(comp);
                }
            }
        }
    }
    let mut t = Tarjan {
        g,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in g.keys() {
        if !t.index.contains_key(v.as_str()) {
            t.visit(v);
        }
    }
    t.out.sort();
    t.out
}

/// A shortest cycle through `start` inside `comp`: `[start, .., start]`.
pub fn shortest_cycle(g: &Graph, comp: &[String], start: &str) -> Vec<String> {
    let inside: BTreeSet<&str> = comp.iter().map(String::as_str).collect();
    let mut prev: BTreeMap<&str, &str> = BTreeMap::new();
    let mut queue = VecDeque::from([start]);
    while let Some(v) = queue.pop_front() {
        for w in g.get(v).into_iter().flat_map(|e| e.keys()) {
            let w = w.as_str();
            if !inside.contains(w) {
                continue;
            }
            if w == start {
                let mut path = vec![start.to_string()];
                let mut at = v;
                while at != start {
                    path.push(at.to_string());
                    at = prev[at];
                }
                path.push(start.to_string());
                path.reverse();
                return path;
            }
            if !prev.contains_key(w) {
                prev.insert(w, v);
                queue.push_back(w);
            }
        }
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(p, t)| (p.to_string(), t.to_string()))
            .collect()
    }

    #[test]
    fn module_paths() {
        assert_eq!(module_path("lib.rs"), Vec::<String>::new());
        assert_eq!(module_path("main.rs"), Vec::<String>::new());
        assert_eq!(module_path("a.rs"), ["a"]);
        assert_eq!(module_path("a/mod.rs"), ["a"]);
        assert_eq!(module_path("a/b.rs"), ["a", "b"]);
        assert_eq!(module_path("a/b/mod.rs"), ["a", "b"]);
    }

    #[test]
    fn paths_groups_and_super() {
        let code = "use crate::a::X;\nuse crate::{b, c::{d, e}, self};\nfn f() { crate::g(); super::h(); super::super::i(); x::crate::j; }\n";
        let at_depth_1: Vec<String> = references(code, 1).into_iter().map(|r| r.0).collect();
        assert_eq!(at_depth_1, ["a", "b", "c", "g", "h"]);
        let at_depth_2: Vec<String> = references(code, 2).into_iter().map(|r| r.0).collect();
        assert_eq!(at_depth_2, ["a", "b", "c", "g", "i"]);
        let lines: Vec<usize> = references(code, 1).into_iter().map(|r| r.1).collect();
        assert_eq!(lines, [1, 2, 2, 3, 3]);
    }

    #[test]
    fn a_cycle_through_a_folder_module() {
        let g = graph(&files(&[
            (
                "lib.rs",
                "pub mod error; pub mod audit; pub mod digest; use crate::audit;",
            ),
            (
                "error.rs",
                "use crate::audit::ChainError;\nuse crate::digest::Digest;",
            ),
            ("audit/mod.rs", "mod chain;\nuse super::error::Error;"),
            (
                "audit/chain.rs",
                "use super::super::digest::Digest;\nuse super::Local;",
            ),
            ("digest.rs", "//! no imports\n"),
        ]));
        assert_eq!(
            g["error"].keys().collect::<Vec<_>>(),
            ["audit", "digest"],
            "{g:?}"
        );
        assert_eq!(g["audit"].keys().collect::<Vec<_>>(), ["digest", "error"]);
        assert_eq!(g["audit"]["digest"], ("audit/chain.rs".to_string(), 1));
        let found = cycles(&g);
        assert_eq!(found, [["audit", "error"]]);
        assert_eq!(
            shortest_cycle(&g, &found[0], "audit"),
            ["audit", "error", "audit"]
        );
    }

    #[test]
    fn test_code_and_comments_make_no_edge() {
        let g = graph(&files(&[
            ("a.rs", "use crate::b;\n"),
            (
                "b.rs",
                "/// See [`crate::a`].\nfn f() {}\n#[cfg(test)]\nmod tests { use crate::a; }\n",
            ),
        ]));
        assert!(cycles(&g).is_empty(), "{g:?}");
    }

    #[test]
    fn a_longer_cycle_is_reported_whole() {
        let g = graph(&files(&[
            ("a.rs", "use crate::b;"),
            ("b.rs", "use crate::c;"),
            ("c.rs", "use crate::a; use crate::d;"),
            ("d.rs", ""),
        ]));
        let found = cycles(&g);
        assert_eq!(found, [["a", "b", "c"]]);
        assert_eq!(shortest_cycle(&g, &found[0], "a"), ["a", "b", "c", "a"]);
    }
}
