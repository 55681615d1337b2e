//! Valve's KeyValues text format (VDF/ACF), enough to read `appmanifest_APP.acf` and the
//! output of `app_info_print`: quoted or bare keys and values, nested `{ }` blocks,
//! `//` comments, `\"` `\\` `\n` `\t` escapes and `[$WIN32]`-style conditions (skipped).
//!
//! Hand-written on purpose: the crate made for it (keyvalues-parser 0.2) is built on pest
//! and pest_derive, a parser generator and proc-macro build for a grammar of a dozen
//! lines; the manifests warden reads are small and the tests below pin the format.

use std::fmt;

/// A value: a string, or a block of key/value pairs in file order.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `"key" "value"`.
    Str(String),
    /// `"key" { … }`.
    Obj(Vec<(String, Value)>),
}

impl Value {
    /// The first entry named `key` (keys compare without case, as Steam does).
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Obj(pairs) => pairs
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(key))
                .map(|(_, v)| v),
            Value::Str(_) => None,
        }
    }

    /// The text of a string value.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            Value::Obj(_) => None,
        }
    }
}

/// Why a text is not KeyValues, with the line.
#[derive(Debug, Clone, PartialEq)]
pub struct VdfError {
    /// 1-based line of the problem.
    pub line: usize,
    /// What was wrong.
    pub message: String,
}

impl fmt::Display for VdfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

#[derive(Debug, PartialEq)]
enum Tok {
    Str(String),
    Open,
    Close,
}

struct Lexer<'a> {
    chars: std::iter::Peekable<std::str::Chars<'a>>,
    line: usize,
}

impl Lexer<'_> {
    fn err(&self, message: impl Into<String>) -> VdfError {
        VdfError {
            line: self.line,
            message: message.into(),
        }
    }

    fn next_tok(&mut self) -> Result<Option<Tok>, VdfError> {
        loop {
            let Some(&c) = self.chars.peek() else {
                return Ok(None);
            };
            match c {
                '\n' => {
                    self.line += 1;
                    self.chars.next();
                }
                c if c.is_whitespace() => {
                    self.chars.next();
                }
                '/' => {
                    self.chars.next();
                    if self.chars.peek() != Some(&'/') {
                        return Err(self.err("a single '/' (comments start with '//')"));
                    }
                    while let Some(&c) = self.chars.peek() {
                        if c == '\n' {
                            break;
                        }
                        self.chars.next();
                    }
                }
                '[' => {
                    // A platform condition such as `[$WIN32]`: accepted and ignored.
                    for c in self.chars.by_ref() {
                        if c == ']' {
                            break;
                        }
                    }
                }
                '{' => {
                    self.chars.next();
                    return Ok(Some(Tok::Open));
                }
                '}' => {
                    self.chars.next();
                    return Ok(Some(Tok::Close));
                }
                '"' => {
                    self.chars.next();
                    return self.quoted().map(|s| Some(Tok::Str(s)));
                }
                _ => {
                    let mut s = String::new();
                    while let Some(&c) = self.chars.peek() {
                        if c.is_whitespace() || matches!(c, '{' | '}' | '"') {
                            break;
                        }
                        s.push(c);
                        self.chars.next();
                    }
                    return Ok(Some(Tok::Str(s)));
                }
            }
        }
    }

    fn quoted(&mut self) -> Result<String, VdfError> {
        let mut s = String::new();
        loop {
            match self.chars.next() {
                None => return Err(self.err("a quoted string is not closed")),
                Some('"') => return Ok(s),
                Some('\\') => match self.chars.next() {
                    Some('n') => s.push('\n'),
                    Some('t') => s.push('\t'),
                    Some('\\') => s.push('\\'),
                    Some('"') => s.push('"'),
                    Some(other) => {
                        s.push('\\');
                        s.push(other);
                    }
                    None => return Err(self.err("a quoted string is not closed")),
                },
                Some(c) => {
                    if c == '\n' {
                        self.line += 1;
                    }
                    s.push(c);
                }
            }
        }
    }
}

/// Parses a whole text: the top-level pairs, in order. Lines before the first key that are
/// not part of the format (the noise `app_info_print` prints) must be cut off by the caller.
pub fn parse(text: &str) -> Result<Vec<(String, Value)>, VdfError> {
    let mut lx = Lexer {
        chars: text.chars().peekable(),
        line: 1,
    };
    let pairs = block(&mut lx, false)?;
    Ok(pairs)
}

fn block(lx: &mut Lexer<'_>, nested: bool) -> Result<Vec<(String, Value)>, VdfError> {
    let mut pairs = Vec::new();
    loop {
        let key = match lx.next_tok()? {
            None if nested => return Err(lx.err("a '{' block is not closed")),
            None => return Ok(pairs),
            Some(Tok::Close) if nested => return Ok(pairs),
            Some(Tok::Close) => return Err(lx.err("a '}' without its '{'")),
            Some(Tok::Open) => return Err(lx.err("a '{' where a key was expected")),
            Some(Tok::Str(k)) => k,
        };
        let value = match lx.next_tok()? {
            Some(Tok::Str(v)) => Value::Str(v),
            Some(Tok::Open) => Value::Obj(block(lx, true)?),
            Some(Tok::Close) | None => {
                return Err(lx.err(format!("key {key:?} has no value")));
            }
        };
        pairs.push((key, value));
    }
}

/// The build id an app manifest (`steamapps/appmanifest_APP.acf`) records as installed.
pub fn manifest_build_id(acf: &str) -> Result<String, VdfError> {
    let top = Value::Obj(parse(acf)?);
    top.get("AppState")
        .and_then(|s| s.get("buildid"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| VdfError {
            line: 1,
            message: "no AppState.buildid in the manifest".into(),
        })
}

/// The build id of `branch` of `app` in the output of SteamCMD's `+app_info_print APP`:
/// the block that starts with the line `"APP"` among other output lines, its
/// `depots.branches.BRANCH.buildid`.
pub fn app_info_build_id(output: &str, app: u32, branch: &str) -> Result<String, VdfError> {
    let head = format!("\"{app}\"");
    let missing = |message: String| VdfError { line: 1, message };
    let mut start = None;
    let mut offset = 0;
    for line in output.split_inclusive('\n') {
        if line.trim() == head {
            start = Some(offset);
            break;
        }
        offset += line.len();
    }
    let Some(start) = start else {
        return Err(missing(format!(
            "no app info block for app {app} in SteamCMD's output"
        )));
    };
    // The block ends at the brace that closes its first one (quotes respected).
    let text = &output[start..];
    let (mut depth, mut quoted, mut escaped, mut end) = (0usize, false, false, None);
    for (i, c) in text.char_indices() {
        if quoted {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => quoted = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => quoted = true,
            '{' => depth += 1,
            '}' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    end = Some(i + 1);
                    break;
                }
            }
            _ => {}
        }
    }
    let Some(end) = end else {
        return Err(missing(format!(
            "the app info block of app {app} is cut off"
        )));
    };
    let top = Value::Obj(parse(&text[..end])?);
    top.get(&app.to_string())
        .and_then(|a| a.get("depots"))
        .and_then(|d| d.get("branches"))
        .and_then(|b| b.get(branch))
        .and_then(|b| b.get("buildid"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| {
            missing(format!(
                "app {app} has no branch {branch:?} with a build id"
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_info_gives_the_branch_build_among_other_output() {
        let out = "Connecting anonymously to Steam Public...OK\nAppID : 896660, change number : 1/0\n\"896660\"\n{\n\t\"common\"\n\t{\n\t\t\"name\"\t\t\"Valheim {x}\"\n\t}\n\t\"depots\"\n\t{\n\t\t\"branches\"\n\t\t{\n\t\t\t\"public\"\n\t\t\t{\n\t\t\t\t\"buildid\"\t\t\"19500001\"\n\t\t\t}\n\t\t\t\"beta\"\n\t\t\t{\n\t\t\t\t\"buildid\"\t\t\"19600000\"\n\t\t\t}\n\t\t}\n\t}\n}\nUnloading Steam API...OK\n";
        assert_eq!(
            app_info_build_id(out, 896660, "public").ok().as_deref(),
            Some("19500001")
        );
        assert_eq!(
            app_info_build_id(out, 896660, "BETA").ok().as_deref(),
            Some("19600000")
        );
        assert!(app_info_build_id(out, 896660, "nope").is_err());
        assert!(app_info_build_id(out, 1, "public").is_err());
        assert!(app_info_build_id("\"896660\"\n{\n", 896660, "public").is_err());
    }

    const MANIFEST: &str = r#""AppState"
{
	"appid"		"896660"
	"Universe"		"1"
	"name"		"Valheim Dedicated Server"
	"StateFlags"		"4"
	"installdir"		"Valheim dedicated server"
	"buildid"		"14586324"
	"InstalledDepots"
	{
		"896661"
		{
			"manifest"		"4953217463212335871"
			"size"		"1006412580"
		}
	}
	"UserConfig"
	{
		"BetaKey"		"public"
	}
}
"#;

    #[test]
    fn reads_the_build_id_of_a_real_manifest() {
        assert_eq!(manifest_build_id(MANIFEST).expect("parses"), "14586324");
        let top = Value::Obj(parse(MANIFEST).expect("parses"));
        let size = top
            .get("appstate")
            .and_then(|s| s.get("InstalledDepots"))
            .and_then(|d| d.get("896661"))
            .and_then(|d| d.get("size"))
            .and_then(Value::as_str);
        assert_eq!(size, Some("1006412580"));
        assert_eq!(
            top.get("AppState")
                .and_then(|s| s.get("UserConfig"))
                .and_then(|u| u.get("betakey"))
                .and_then(Value::as_str),
            Some("public")
        );
    }

    #[test]
    fn escapes_comments_bare_words_and_conditions() {
        let text = "// a comment\nroot { key \"a \\\"quoted\\\" \\\\ \\n\" bare word\n \"cond\" \"x\" [$WIN32]\n}";
        let top = Value::Obj(parse(text).expect("parses"));
        let root = top.get("root").expect("root");
        assert_eq!(
            root.get("key").and_then(Value::as_str),
            Some("a \"quoted\" \\ \n")
        );
        assert_eq!(root.get("bare").and_then(Value::as_str), Some("word"));
        assert_eq!(root.get("cond").and_then(Value::as_str), Some("x"));
    }

    #[test]
    fn duplicate_keys_keep_file_order_and_get_finds_the_first() {
        let top = Value::Obj(parse("\"a\" \"1\" \"a\" \"2\"").expect("parses"));
        assert_eq!(top.get("a").and_then(Value::as_str), Some("1"));
        let Value::Obj(pairs) = top else {
            panic!("object")
        };
        assert_eq!(pairs.len(), 2);
    }

    #[test]
    fn broken_texts_say_where() {
        let e = parse("\"a\"\n{\n\"b\" \"c\"\n").expect_err("unclosed");
        assert!(e.message.contains("not closed"), "{e}");
        assert_eq!(e.line, 4);
        assert!(parse("\"a\" \"unterminated").is_err());
        assert!(parse("}").is_err());
        assert!(
            parse("\"k\"")
                .expect_err("no value")
                .message
                .contains("no value")
        );
        assert!(parse("{ }").is_err());
        assert!(parse("a / b").is_err());
        assert!(manifest_build_id("\"AppState\" { \"appid\" \"1\" }").is_err());
    }

    #[test]
    fn an_empty_text_has_no_pairs() {
        assert_eq!(parse("  \n// only a comment\n").expect("parses"), vec![]);
    }
}
