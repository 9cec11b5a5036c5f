//! Rust source reduced to its code: comments and string and char literals
//! blanked, `#[cfg(test)]` items blanked, newlines kept so that line numbers
//! still hold. Enough to count braces and find paths without a parser.

/// `src` with comments, string literals (raw, byte and C strings too) and
/// char literals replaced by spaces; newlines are kept.
pub fn code_only(src: &str) -> String {
    let c: Vec<char> = src.chars().collect();
    let mut out = c.clone();
    let blank = |out: &mut Vec<char>, from: usize, to: usize| {
        for ch in out.iter_mut().take(to.min(c.len())).skip(from) {
            if *ch != '\n' {
                *ch = ' ';
            }
        }
    };
    let mut i = 0;
    while i < c.len() {
        let prev_ident = i > 0 && is_ident(c[i - 1]);
        match c[i] {
            '/' if c.get(i + 1) == Some(&'/') => {
                let end = (i..c.len()).find(|&j| c[j] == '\n').unwrap_or(c.len());
                blank(&mut out, i, end);
                i = end;
            }
            '/' if c.get(i + 1) == Some(&'*') => {
                // Block comments nest.
                let mut depth = 0;
                let mut j = i;
                while j < c.len() {
                    if c[j] == '/' && c.get(j + 1) == Some(&'*') {
                        depth += 1;
                        j += 2;
                    } else if c[j] == '*' && c.get(j + 1) == Some(&'/') {
                        depth -= 1;
                        j += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        j += 1;
                    }
                }
                blank(&mut out, i, j);
                i = j;
            }
            'b' | 'c' | 'r' if !prev_ident && raw_string_at(&c, i).is_some() => {
                let (open, hashes) = raw_string_at(&c, i).unwrap_or((i, 0));
                // The closing quote followed by as many `#` as opened it.
                let mut j = open + 1;
                while j < c.len() {
                    if c[j] == '"' && (1..=hashes).all(|k| c.get(j + k) == Some(&'#')) {
                        break;
                    }
                    j += 1;
                }
                blank(&mut out, open + 1, j);
                i = j + 1 + hashes;
            }
            '"' => {
                let mut j = i + 1;
                while j < c.len() && c[j] != '"' {
                    j += if c[j] == '\\' { 2 } else { 1 };
                }
                blank(&mut out, i + 1, j);
                i = j + 1;
            }
            '\'' => {
                // A char literal ('x', '\n', '\u{..}'), else a lifetime or label.
                if c.get(i + 1) == Some(&'\\') {
                    let mut j = i + 3;
                    while j < c.len() && c[j] != '\'' {
                        j += 1;
                    }
                    blank(&mut out, i + 1, j);
                    i = j + 1;
                } else if c.get(i + 2) == Some(&'\'') {
                    blank(&mut out, i + 1, i + 2);
                    i += 3;
                } else {
                    i += 1;
                }
            }
            _ => i += 1,
        }
    }
    out.into_iter().collect()
}

/// At `i`, `r"`, `r#"`, `br"`, `cr#"` ...: the index of the opening quote
/// and the number of `#`.
fn raw_string_at(c: &[char], i: usize) -> Option<(usize, usize)> {
    let mut j = i;
    if matches!(c.get(j), Some('b' | 'c')) {
        j += 1;
    }
    if c.get(j) != Some(&'r') {
        return None;
    }
    j += 1;
    let hashes = c[j.min(c.len())..]
        .iter()
        .take_while(|&&ch| ch == '#')
        .count();
    j += hashes;
    (c.get(j) == Some(&'"')).then_some((j, hashes))
}

pub fn is_ident(ch: char) -> bool {
    ch.is_alphanumeric() || ch == '_'
}

/// `code` (already [`code_only`]) with every `#[cfg(test)]` item blanked:
/// the attribute, any attributes after it, and the item up to its `;` or
/// its matching `}`. A file that opens with `#![cfg(test)]` is all test.
pub fn without_tests(code: &str) -> String {
    const ATTR: &str = "#[cfg(test)]";
    let mut c: Vec<char> = code.chars().collect();
    if code.contains("#![cfg(test)]") {
        return code
            .chars()
            .map(|ch| if ch == '\n' { ch } else { ' ' })
            .collect();
    }
    let attr: Vec<char> = ATTR.chars().collect();
    let mut i = 0;
    while i + attr.len() <= c.len() {
        if c[i..i + attr.len()] != attr[..] {
            i += 1;
            continue;
        }
        let end = item_end(&c, i + attr.len());
        for ch in c.iter_mut().take(end).skip(i) {
            if *ch != '\n' {
                *ch = ' ';
            }
        }
        i = end;
    }
    c.into_iter().collect()
}

/// The index just past the item that starts at or after `from` (after any
/// further attributes): its `;` outside brackets, or its block's `}`.
fn item_end(c: &[char], from: usize) -> usize {
    let mut depth = 0i32; // () and []
    let mut j = from;
    while j < c.len() {
        match c[j] {
            '(' | '[' => depth += 1,
            ')' | ']' => depth -= 1,
            ';' if depth == 0 => return j + 1,
            '{' if depth == 0 => return matching_brace(c, j).map_or(c.len(), |k| k + 1),
            _ => {}
        }
        j += 1;
    }
    c.len()
}

/// The index of the `}` that closes the `{` at `open`.
pub fn matching_brace(c: &[char], open: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (j, &ch) in c.iter().enumerate().skip(open) {
        match ch {
            '{' => depth += 1,
            '}' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return Some(j);
                }
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_strings_and_chars_are_blanked_lines_kept() {
        let src = "let a = \"{ crate::x }\"; // crate::y {\n/* crate::z /* nested */ } */ let b = '{';\nlet r = r#\"a \"}\" b\"#; let l: &'static str = x;\n";
        let code = code_only(src);
        assert_eq!(code.lines().count(), src.lines().count());
        assert!(!code.contains("crate::"), "{code}");
        assert!(!code.contains('{') && !code.contains('}'), "{code}");
        assert!(code.contains("let b = "), "{code}");
        assert!(code.contains("&'static str = x;"), "{code}");
        assert_eq!(code.len(), src.len());
    }

    #[test]
    fn escaped_quotes_and_byte_strings() {
        let code = code_only("f(\"a\\\"{\", b\"}\", br\"{\", '\\'', '\\u{7b}'); g()");
        assert!(!code.contains('{') && !code.contains('}'), "{code}");
        assert!(code.ends_with("); g()"), "{code}");
    }

    #[test]
    fn cfg_test_items_are_blanked() {
        let src = "use crate::a;\n#[cfg(test)]\nuse crate::b;\nfn keep() {}\n#[cfg(test)]\n#[allow(unused)]\nmod tests {\n    use crate::c;\n    fn f() { if x { } }\n}\nfn after() { crate::d::e(); }\n";
        let code = without_tests(&code_only(src));
        assert_eq!(code.lines().count(), src.lines().count());
        assert!(code.contains("crate::a") && code.contains("fn keep()"));
        assert!(!code.contains("crate::b") && !code.contains("crate::c"));
        assert!(
            code.contains("crate::d::e"),
            "code after the test module stays"
        );
    }

    #[test]
    fn a_file_that_is_all_test() {
        let code = without_tests("#![cfg(test)]\nuse crate::a;\n");
        assert!(!code.contains("crate"));
    }
}
