//! Functions longer than a limit, counted from the `fn` line to the line of
//! its closing brace, in non-test code (nested functions and methods too).

use super::source::{code_only, matching_brace, without_tests};

/// A function over the limit: 1-based line of its `fn`, name, length in lines.
#[derive(Debug, PartialEq, Eq)]
pub struct LongFn {
    pub line: usize,
    pub name: String,
    pub lines: usize,
}

/// Every function in `text` whose body spans more than `limit` lines.
pub fn long_functions(text: &str, limit: usize) -> Vec<LongFn> {
    let code = without_tests(&code_only(text));
    let c: Vec<char> = code.chars().collect();
    let newlines: Vec<usize> = (0..c.len()).filter(|&k| c[k] == '\n').collect();
    let line_of = |at: usize| newlines.partition_point(|&n| n < at) + 1;
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(at) = find_fn(&c, i) {
        i = at + 2;
        let name: String = c[skip_ws(&c, at + 2)..]
            .iter()
            .take_while(|ch| ch.is_alphanumeric() || **ch == '_')
            .collect();
        if name.is_empty() {
            continue; // `fn(u8) -> u8`, a pointer type
        }
        // The body: the first `{` outside the signature's brackets; a `;`
        // first means a declaration without one.
        let mut depth = 0i32;
        let mut body = None;
        for (j, &ch) in c.iter().enumerate().skip(at) {
            match ch {
                '(' | '[' | '<' => depth += 1,
                // `->` closes nothing.
                '>' if j > 0 && c[j - 1] == '-' => {}
                ')' | ']' | '>' if depth > 0 => depth -= 1,
                ';' if depth == 0 => break,
                '{' if depth == 0 => {
                    body = Some(j);
                    break;
                }
                _ => {}
            }
        }
        let Some(open) = body else {
            continue;
        };
        let close = matching_brace(&c, open).unwrap_or(c.len().saturating_sub(1));
        let lines = line_of(close) - line_of(at) + 1;
        if lines > limit {
            out.push(LongFn {
                line: line_of(at),
                name,
                lines,
            });
        }
    }
    out
}

/// The next `fn` keyword at or after `from`.
fn find_fn(c: &[char], from: usize) -> Option<usize> {
    let ident = |ch: &char| ch.is_alphanumeric() || *ch == '_';
    (from..c.len().saturating_sub(2)).find(|&i| {
        c[i] == 'f'
            && c[i + 1] == 'n'
            && (i == 0 || !ident(&c[i - 1]))
            && c.get(i + 2).is_some_and(|ch| !ident(ch))
    })
}

fn skip_ws(c: &[char], mut i: usize) -> usize {
    while c.get(i).is_some_and(|ch| ch.is_whitespace()) {
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A function named `name` with `body` lines between its braces.
    fn function(name: &str, body: usize) -> String {
        let mut s = format!(
            "pub(crate) async fn {name}<T: Into<u8>>(x: [u8; 4]) -> Result<(), E>\nwhere T: Copy\n{{\n"
        );
        for i in 0..body {
            s.push_str(&format!("    let s{i} = \"}}\"; // }}\n"));
        }
        s.push_str("}\n");
        s
    }

    #[test]
    fn counts_from_fn_to_closing_brace() {
        // 3 lines of signature, `body` lines, the closing brace.
        let text = format!("{}\n{}", function("short", 116), function("long", 117));
        let found = long_functions(&text, 120);
        assert_eq!(
            found,
            [LongFn {
                line: 122,
                name: "long".into(),
                lines: 121
            }]
        );
    }

    #[test]
    fn methods_nested_fns_and_declarations() {
        let text = format!(
            "trait T {{ fn decl(&self); fn ptr(f: fn(u8) -> u8); }}\nimpl S {{\n{}}}\nfn outer() {{\n{}}}\n",
            function("method", 130),
            function("inner", 125)
        );
        let names: Vec<String> = long_functions(&text, 120)
            .into_iter()
            .map(|f| f.name)
            .collect();
        assert_eq!(names, ["method", "outer", "inner"]);
    }

    #[test]
    fn test_functions_do_not_count() {
        let text = format!(
            "fn small() {{}}\n#[cfg(test)]\nmod tests {{\n{}}}\n",
            function("a_long_test", 200)
        );
        assert!(long_functions(&text, 120).is_empty());
    }
}
