//! The game's own secrets in its config files (`server.properties`' `rcon.password`,
//! Palworld's `AdminPassword`…), masked for callers without `define` on the program.
//!
//! The table is derived from the shipped templates (`install/templates/*.toml`): wherever
//! a template writes a `secret = true` variable into a file, that file's name and the key
//! (an `entries` key of a properties/ini file) or the text before the placeholder on its
//! line (`AdminPassword="` in Palworld's one-line settings, `rcon_password "` in CS2's
//! `server.cfg`, `name="ServerPassword" value="` in 7 Days to Die's XML) say where a
//! secret value sits in any file of that name. Files match by name (case-insensitive),
//! wherever they are in the program's folder.
//!
//! Reading ([`mask`]) replaces each non-empty secret value by [`MASK`]. Saving back
//! ([`unmask`]) keeps the real value where the text still holds the mask: the n-th
//! masked value of a key takes the n-th value of that key in the file on disk. A mask
//! with no stored value to keep is refused, naming the line.

use std::sync::LazyLock;

use crate::install::template::{self, FileFormat};

/// Shown instead of a secret value.
pub const MASK: &str = "********";

/// Where a secret value sits in a file of a given name.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    /// File name, lower case.
    file: String,
    /// How the value is found.
    at: At,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum At {
    /// A `key=value` (or `key: value`) line; the value runs to the end of the line.
    Key(String),
    /// After this text on a line, up to `end` (or the end of the line).
    After { prefix: String, end: Option<char> },
}

impl At {
    fn name(&self) -> &str {
        match self {
            At::Key(k) => k,
            At::After { prefix, .. } => prefix
                .trim_end_matches(['"', '=', ' ', '\''])
                .rsplit(['"', ' ', '<'])
                .next()
                .unwrap_or(prefix),
        }
    }
}

static RULES: LazyLock<Vec<Rule>> = LazyLock::new(derive_rules);

/// The rules of every shipped template, plus the places the games themselves (or their
/// guides) put the same secrets: ARK's join password, a Source server's `server.cfg`, 7 Days
/// to Die's own `serverconfig.xml`.
fn derive_rules() -> Vec<Rule> {
    let after = |file: &str, prefix: &str| Rule {
        file: file.into(),
        at: At::After {
            prefix: prefix.into(),
            end: Some('"'),
        },
    };
    let mut rules = vec![
        Rule {
            file: "gameusersettings.ini".into(),
            at: At::Key("ServerPassword".into()),
        },
        after("server.cfg", "rcon_password \""),
        after("server.cfg", "sv_password \""),
        after(
            "serverconfig.xml",
            "<property name=\"ServerPassword\" value=\"",
        ),
    ];
    for t in template::shipped() {
        let secrets: Vec<String> = t
            .variables
            .iter()
            .filter(|v| v.secret)
            .map(|v| format!("{{{{{}}}}}", v.name))
            .collect();
        for f in &t.files {
            let file = f
                .path
                .rsplit('/')
                .next()
                .unwrap_or(&f.path)
                .to_ascii_lowercase();
            let mut add = |at: At| {
                let rule = Rule {
                    file: file.clone(),
                    at,
                };
                if !rules.contains(&rule) {
                    rules.push(rule);
                }
            };
            match f.format {
                FileFormat::Properties | FileFormat::Ini => {
                    for (key, value) in &f.entries {
                        if secrets.iter().any(|s| value.contains(s.as_str())) {
                            add(At::Key(key.clone()));
                        }
                    }
                }
                FileFormat::Text => {
                    for line in f.content.as_deref().unwrap_or("").lines() {
                        for s in &secrets {
                            let Some(pos) = line.find(s.as_str()) else {
                                continue;
                            };
                            let before = &line[..pos];
                            let prefix = before
                                .rsplit([',', '('])
                                .next()
                                .unwrap_or(before)
                                .trim_start();
                            if prefix.trim().is_empty() {
                                continue;
                            }
                            let end = line[pos + s.len()..]
                                .chars()
                                .next()
                                .filter(|c| matches!(c, '"' | '\'' | ',' | ')' | '<'));
                            add(At::After {
                                prefix: prefix.to_string(),
                                end,
                            });
                        }
                    }
                }
            }
        }
    }
    rules
}

fn rules_for(file_name: &str) -> Vec<&'static Rule> {
    let name = file_name.to_ascii_lowercase();
    RULES.iter().filter(|r| r.file == name).collect()
}

/// True when files named `file_name` may hold the game's secrets.
pub fn applies(file_name: &str) -> bool {
    !rules_for(file_name).is_empty()
}

/// A secret value found in a text: which rule, the byte range of the value, its line.
struct Found {
    rule: usize,
    start: usize,
    end: usize,
    line: usize,
}

fn find(rules: &[&Rule], text: &str) -> Vec<Found> {
    let mut out = Vec::new();
    let mut offset = 0;
    for (n, raw) in text.split_inclusive('\n').enumerate() {
        let line = raw.trim_end_matches(['\n', '\r']);
        for (i, rule) in rules.iter().enumerate() {
            match &rule.at {
                At::Key(key) => {
                    let lead = line.len() - line.trim_start().len();
                    let rest = &line[lead..];
                    if rest.len() >= key.len()
                        && rest.is_char_boundary(key.len())
                        && rest[..key.len()].eq_ignore_ascii_case(key)
                    {
                        let after = &rest[key.len()..];
                        let spaced = after.trim_start();
                        if let Some(v) = spaced.strip_prefix('=').or(spaced.strip_prefix(':')) {
                            let v_start = line.len() - v.trim_start().len();
                            out.push(Found {
                                rule: i,
                                start: offset + v_start,
                                end: offset + line.len(),
                                line: n + 1,
                            });
                        }
                    }
                }
                At::After { prefix, end } => {
                    let mut from = 0;
                    while let Some(p) = line[from..].find(prefix.as_str()) {
                        let v_start = from + p + prefix.len();
                        let v_len = match end {
                            Some(c) => line[v_start..].find(*c).unwrap_or(line.len() - v_start),
                            None => line.len() - v_start,
                        };
                        out.push(Found {
                            rule: i,
                            start: offset + v_start,
                            end: offset + v_start + v_len,
                            line: n + 1,
                        });
                        from = v_start + v_len;
                    }
                }
            }
        }
        offset += raw.len();
    }
    out.sort_by_key(|f| f.start);
    out
}

/// `text` of a file named `file_name` with its non-empty secret values replaced by
/// [`MASK`]; `None` when the file holds none.
pub fn mask(file_name: &str, text: &str) -> Option<String> {
    let rules = rules_for(file_name);
    let found = find(&rules, text);
    if !found.iter().any(|f| f.end > f.start) {
        return None;
    }
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for f in found.iter().filter(|f| f.end > f.start) {
        out.push_str(&text[at..f.start]);
        out.push_str(MASK);
        at = f.end;
    }
    out.push_str(&text[at..]);
    Some(out)
}

/// Largest file whose secrets are masked in a download; a larger file of a secret
/// file's name is left out of a folder archive (and refused alone).
pub const MAX_MASKED_BYTES: u64 = 4 << 20;

/// The bytes of a file named `file_name` with its secret values masked, in the file's
/// own encoding; `None` when there is nothing to mask (or it is not text).
pub fn mask_bytes(file_name: &str, bytes: &[u8]) -> Option<Vec<u8>> {
    let decoded = super::text::decode(bytes)?;
    let masked = mask(file_name, &decoded.text)?;
    super::text::encode(&masked, decoded.format).ok()
}

/// `new` (a text being saved into a file named `file_name` by a caller who saw it
/// masked) with every secret value still equal to [`MASK`] replaced by the real one from
/// `current` (the file on disk, if any). An error names the line whose mask has no value
/// to keep.
pub fn unmask(file_name: &str, new: &str, current: Option<&str>) -> Result<String, String> {
    let rules = rules_for(file_name);
    let found = find(&rules, new);
    if !found.iter().any(|f| &new[f.start..f.end] == MASK) {
        return Ok(new.to_string());
    }
    let stored = current.map(|c| find(&rules, c)).unwrap_or_default();
    let mut out = String::with_capacity(new.len());
    let mut at = 0;
    let mut seen = vec![0usize; rules.len()];
    for f in &found {
        let nth = seen[f.rule];
        seen[f.rule] += 1;
        if &new[f.start..f.end] != MASK {
            continue;
        }
        let real = stored
            .iter()
            .filter(|s| s.rule == f.rule)
            .nth(nth)
            .and_then(|s| current.map(|c| &c[s.start..s.end]))
            .filter(|v| !v.is_empty() && *v != MASK)
            .ok_or_else(|| {
                format!(
                    "line {}: {} holds the mask {MASK:?} but the file has no stored value to keep there; type the real value, or ask someone with the define permission on the program",
                    f.line,
                    rules[f.rule].at.name()
                )
            })?;
        out.push_str(&new[at..f.start]);
        out.push_str(real);
        at = f.end;
    }
    out.push_str(&new[at..]);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_covers_the_games_secret_files() {
        for (file, text, secret) in [
            (
                "server.properties",
                "motd=hi\nrcon.password=s3cret\nrcon.port=25575\n",
                "s3cret",
            ),
            (
                "PalWorldSettings.ini",
                "[/Script/Pal.PalGameWorldSettings]\nOptionSettings=(ServerName=\"x\",AdminPassword=\"adm1n\",ServerPassword=\"j0in\",PublicPort=8211)\n",
                "adm1n",
            ),
            (
                "GameUserSettings.ini",
                "[ServerSettings]\nServerAdminPassword=arkpw\r\nServerPassword=joinpw\r\n",
                "arkpw",
            ),
            (
                "server.cfg",
                "hostname \"x\"\nrcon_password \"cs2pw\"\n",
                "cs2pw",
            ),
            (
                "serverconfig.xml",
                "<ServerSettings>\n  <property name=\"ServerPassword\" value=\"dayz\"/>\n</ServerSettings>\n",
                "dayz",
            ),
        ] {
            let masked = mask(file, text).unwrap_or_else(|| panic!("{file} not masked"));
            assert!(!masked.contains(secret), "{file}: {masked}");
            assert!(masked.contains(MASK), "{file}: {masked}");
            // Saving the masked text back keeps the real values.
            assert_eq!(unmask(file, &masked, Some(text)).expect("unmask"), text);
        }
        let pal = mask(
            "PalWorldSettings.ini",
            "OptionSettings=(AdminPassword=\"a\",ServerPassword=\"\",X=1)",
        )
        .expect("masked");
        assert_eq!(
            pal, "OptionSettings=(AdminPassword=\"********\",ServerPassword=\"\",X=1)",
            "an empty password stays visibly empty"
        );
        assert!(mask("notes.txt", "rcon.password=x").is_none());
        assert!(mask("server.properties", "motd=hi\n").is_none());
    }

    #[test]
    fn a_mask_with_nothing_to_keep_is_refused_and_other_edits_pass() {
        let text = "motd=hi\nrcon.password=s3cret\n";
        let edited = "motd=changed\nrcon.password=********\n";
        assert_eq!(
            unmask("server.properties", edited, Some(text)).expect("kept"),
            "motd=changed\nrcon.password=s3cret\n"
        );
        let err = unmask("server.properties", edited, None).expect_err("no stored value");
        assert!(
            err.contains("line 2") && err.contains("rcon.password"),
            "{err}"
        );
        let typed = "rcon.password=new\n";
        assert_eq!(
            unmask("server.properties", typed, Some(text)).expect("typed"),
            typed
        );
    }
}
