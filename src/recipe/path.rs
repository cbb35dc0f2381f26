//! Value paths: the one syntax of `query --selector`, `--set` paths, the
//! registry's value paths and the paths `diff` prints. Keys are separated by
//! `.` and list indexes written `[N]` (`a.b[0].c`); a leading `.` is
//! optional. A key that holds `.`, `[`, `]`, `"`, `\` or a space is quoted
//! (`components."a.b"`), and inside quotes or a bare key `\` takes the next
//! character literally (`feature\.node\.kubernetes\.io/x`, as Helm writes it).
//! [`Path`]'s `Display` writes this syntax back, so every path aicr prints can
//! be pasted into a selector.
//!
//! A path has at most [`MAX_DEPTH`] segments: every walker over values
//! recurses once per level, and a bounded path keeps that bounded too.

use std::fmt;

/// The most keys and indexes one path may have.
pub const MAX_DEPTH: usize = 64;

/// One step of a path.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Segment {
    Key(String),
    /// A list index; negative counts from the end where the reader allows
    /// it (`query`), and is refused where it does not (`--set`).
    Index(i64),
}

/// A parsed path. Ordered segment by segment, so `[2]` sorts before `[10]`.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Path(pub Vec<Segment>);

/// A path that does not parse: what was wrong, and where (1-based, in
/// characters).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{reason} at character {pos}")]
pub struct SyntaxError {
    pub pos: usize,
    pub reason: &'static str,
}

impl Path {
    /// Parses `text`; `""` and `"."` are the empty path (the root).
    pub fn parse(text: &str) -> Result<Path, SyntaxError> {
        let err = |pos: usize, reason| SyntaxError {
            pos: pos + 1,
            reason,
        };
        let lead = text.len() - text.trim_start().len();
        let s = text.trim();
        let (s, offset) = match s.strip_prefix('.') {
            Some(rest) => (rest, text[..lead].chars().count() + 1),
            None => (s, text[..lead].chars().count()),
        };
        let chars: Vec<char> = s.chars().collect();
        let err = |i: usize, reason| err(i + offset, reason);
        let mut segs = Vec::new();
        let mut i = 0;
        let mut expect_segment = true;
        while i < chars.len() {
            let starts_segment = expect_segment || chars[i] == '[';
            if starts_segment && segs.len() == MAX_DEPTH {
                return Err(err(i, "a path may have at most 64 keys and indexes"));
            }
            match chars[i] {
                '[' => {
                    let close = chars[i..]
                        .iter()
                        .position(|&c| c == ']')
                        .ok_or_else(|| err(i, "unclosed ["))?;
                    let text: String = chars[i + 1..i + close].iter().collect();
                    let n: i64 = text
                        .trim()
                        .parse()
                        .map_err(|_| err(i, "a list index must be an integer"))?;
                    segs.push(Segment::Index(n));
                    i += close + 1;
                    expect_segment = false;
                }
                '.' if !expect_segment => {
                    i += 1;
                    expect_segment = true;
                    if i == chars.len() {
                        return Err(err(i - 1, "a path cannot end with ."));
                    }
                }
                '.' => return Err(err(i, "empty key")),
                '"' if expect_segment => {
                    let mut key = String::new();
                    i += 1;
                    loop {
                        match chars.get(i) {
                            None => return Err(err(i - 1, "unclosed quote")),
                            Some('"') => break,
                            Some('\\') if i + 1 < chars.len() => {
                                key.push(chars[i + 1]);
                                i += 2;
                            }
                            Some(&c) => {
                                key.push(c);
                                i += 1;
                            }
                        }
                    }
                    i += 1;
                    segs.push(Segment::Key(key));
                    expect_segment = false;
                }
                _ if expect_segment => {
                    let mut key = String::new();
                    while i < chars.len() && chars[i] != '.' && chars[i] != '[' {
                        match chars[i] {
                            '"' | ']' => {
                                return Err(err(
                                    i,
                                    "unexpected character; quote keys that contain it",
                                ))
                            }
                            '\\' if i + 1 < chars.len() => {
                                key.push(chars[i + 1]);
                                i += 2;
                            }
                            c => {
                                key.push(c);
                                i += 1;
                            }
                        }
                    }
                    segs.push(Segment::Key(key));
                    expect_segment = false;
                }
                _ => return Err(err(i, "expected . or [ between keys")),
            }
        }
        Ok(Path(segs))
    }

    pub fn segments(&self) -> &[Segment] {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A key as a path writes it: bare, or quoted when it is empty or holds
/// `.`, `[`, `]`, `"`, `\` or whitespace.
pub fn quote_key(k: &str) -> std::borrow::Cow<'_, str> {
    if k.is_empty() || k.contains(['.', '[', ']', '"', '\\']) || k.contains(char::is_whitespace) {
        let mut s = String::with_capacity(k.len() + 2);
        s.push('"');
        for c in k.chars() {
            if c == '"' || c == '\\' {
                s.push('\\');
            }
            s.push(c);
        }
        s.push('"');
        std::borrow::Cow::Owned(s)
    } else {
        std::borrow::Cow::Borrowed(k)
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Segment::Key(k) => {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    f.write_str(&quote_key(k))?;
                }
                Segment::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Segment::*;

    fn parse(s: &str) -> Vec<Segment> {
        Path::parse(s).unwrap().0
    }

    #[test]
    fn one_syntax() {
        assert_eq!(parse(""), vec![]);
        assert_eq!(parse("."), vec![]);
        assert_eq!(parse(".a.b"), vec![Key("a".into()), Key("b".into())]);
        assert_eq!(
            parse("a[0][-1].b"),
            vec![Key("a".into()), Index(0), Index(-1), Key("b".into())]
        );
        assert_eq!(
            parse(r#"c."x.y".z"#),
            vec![Key("c".into()), Key("x.y".into()), Key("z".into())]
        );
        assert_eq!(
            parse(r"l.k\.io/x"),
            vec![Key("l".into()), Key("k.io/x".into())]
        );
        assert_eq!(parse(r#""a\"b""#), vec![Key("a\"b".into())]);
    }

    #[test]
    fn errors_say_where() {
        for (bad, pos, reason) in [
            ("a..b", 3, "empty key"),
            ("a.", 2, "a path cannot end with ."),
            ("a[x]", 2, "a list index must be an integer"),
            ("a[0", 2, "unclosed ["),
            (
                "a\"b\"",
                2,
                "unexpected character; quote keys that contain it",
            ),
            ("\"open", 5, "unclosed quote"),
            ("[0]b", 4, "expected . or [ between keys"),
            (" .a..b", 5, "empty key"),
        ] {
            assert_eq!(
                Path::parse(bad).unwrap_err(),
                SyntaxError { pos, reason },
                "{bad}"
            );
        }
    }

    #[test]
    fn depth_is_bounded() {
        let ok = vec!["a"; MAX_DEPTH].join(".");
        assert_eq!(parse(&ok).len(), MAX_DEPTH);
        let deep = vec!["a"; 5000].join(".");
        assert_eq!(
            Path::parse(&deep).unwrap_err(),
            SyntaxError {
                pos: 129,
                reason: "a path may have at most 64 keys and indexes"
            }
        );
        assert!(Path::parse(&"[0]".repeat(65)).is_err());
    }

    #[test]
    fn display_parses_back() {
        for keys in [
            vec!["a", "b.c", "d[e]", "q\"uote", "back\\slash", "sp ace", ""],
            vec!["plain", "k8s.io/x"],
        ] {
            let mut p = Path(keys.iter().map(|k| Key(k.to_string())).collect());
            p.0.push(Index(3));
            assert_eq!(Path::parse(&p.to_string()).unwrap(), p, "{p}");
        }
        assert_eq!(
            Path(vec![Key("a".into()), Index(0), Key("b.c".into())]).to_string(),
            r#"a[0]."b.c""#
        );
    }
}
