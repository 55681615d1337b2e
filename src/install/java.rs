//! The Java check of Minecraft installs and updates: which Java a build needs (Mojang's
//! `javaVersion.majorVersion`, else a table by Minecraft version), which Java the server
//! will run with (its command when that is `java`, else `install.java`, else `java` in
//! `PATH`), and that Java's major version from `java -version`. A server whose Java is
//! too old fails with `java_too_old` before anything is downloaded or stopped.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::Failure;

/// Longest `java -version` run (a cold JVM on a slow host takes a second or two).
const VERSION_TIMEOUT: Duration = Duration::from_secs(20);

/// The Java major version in `java -version` output: `openjdk version "21.0.2"` → 21,
/// `java version "1.8.0_392"` → 8, `openjdk version "17" 2021-09-14` → 17.
pub fn parse_major(output: &str) -> Option<u32> {
    output.lines().find_map(|line| {
        let rest = &line[line.find("version \"")? + "version \"".len()..];
        let v = &rest[..rest.find('"')?];
        let mut parts = v.split(|c: char| !c.is_ascii_digit());
        let first: u32 = parts.next()?.parse().ok()?;
        if first == 1 {
            // The old scheme: 1.MAJOR.0_UPDATE.
            parts.next()?.parse().ok()
        } else {
            Some(first)
        }
    })
}

/// The Java a Minecraft version needs when its metadata does not say: 1.20.5 and newer
/// (and the year-numbered versions from 26.1) 21, 1.18 to 1.20.4 17, 1.17 16, older 8.
/// `None` for names that are not release numbers (snapshots such as `24w14a`).
pub fn table_major(minecraft: &str) -> Option<u32> {
    let mut parts = minecraft.split('.');
    let major: u32 = parts.next()?.parse().ok()?;
    let minor: u32 = match parts.next() {
        Some(m) => m
            .split(|c: char| !c.is_ascii_digit())
            .next()?
            .parse()
            .ok()?,
        None => 0,
    };
    let patch: u32 = parts
        .next()
        .and_then(|p| p.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    if major != 1 {
        return Some(21);
    }
    Some(match (minor, patch) {
        (m, _) if m > 20 => 21,
        (20, p) if p >= 5 => 21,
        (m, _) if m >= 18 => 17,
        (17, _) => 16,
        _ => 8,
    })
}

/// Whether a program's command is a Java launcher (`java`, `/usr/bin/java`, `java.exe`).
pub fn is_java(command: &str) -> bool {
    let name = command
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or(command)
        .to_ascii_lowercase();
    matches!(name.as_str(), "java" | "java.exe" | "javaw" | "javaw.exe")
}

/// Which Java a server with `command` runs with, and whether it must exist.
#[derive(Debug, Clone, PartialEq)]
pub enum Runner {
    /// This executable (the command itself, or `install.java`).
    Path(PathBuf),
    /// The command is `java` but none is in `PATH`.
    Missing(String),
    /// The command is not Java (a script that may bring its own) and no Java was found.
    Unknown,
}

/// The Java the server will run with: its command when that is Java (a bare `java` is
/// looked up in `PATH`); otherwise `install.java`, else `java` in `PATH`.
pub fn runner(command: &str, configured: Option<&Path>) -> Runner {
    if is_java(command) {
        let p = Path::new(command);
        if p.components().count() > 1 {
            return Runner::Path(p.to_path_buf());
        }
        return match which::which(command) {
            Ok(p) => Runner::Path(p),
            Err(_) => Runner::Missing(command.to_string()),
        };
    }
    if let Some(c) = configured {
        return Runner::Path(c.to_path_buf());
    }
    match which::which("java") {
        Ok(p) => Runner::Path(p),
        Err(_) => Runner::Unknown,
    }
}

/// How to install Java `n` (the package of Debian and Ubuntu; elsewhere a download).
fn install_hint(n: u32) -> String {
    if cfg!(windows) {
        format!("Install Java {n} (e.g. from https://adoptium.net)")
    } else {
        format!("Install Java {n} (e.g. `apt install openjdk-{n}-jre-headless`)")
    }
}

/// The major version of the Java at `java`, from `java -version`.
pub async fn installed_major(java: &Path, fix: &str) -> Result<u32, Failure> {
    let missing = |why: String| {
        Failure::new(
            "java_missing",
            format!("cannot run {} -version: {why}; {fix}", java.display()),
        )
    };
    let run = tokio::process::Command::new(java)
        .arg("-version")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .output();
    let out = match tokio::time::timeout(VERSION_TIMEOUT, run).await {
        Err(_) => {
            return Err(missing(format!(
                "no answer within {} s",
                VERSION_TIMEOUT.as_secs()
            )));
        }
        Ok(Err(e)) => return Err(missing(e.to_string())),
        Ok(Ok(o)) => o,
    };
    // Java prints its version on stderr; some wrappers use stdout.
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    if !out.status.success() {
        return Err(missing(format!("it ended with {}", out.status)));
    }
    parse_major(&text).ok_or_else(|| {
        let first = text.trim().lines().next().unwrap_or("").to_string();
        missing(format!("its output has no version (it said {first:?})"))
    })
}

/// Checks that the Java a server with `command` runs with is at least `need` for
/// Minecraft `minecraft`. `fix` names the setting that chooses that Java.
pub async fn check(
    command: &str,
    configured: Option<&Path>,
    minecraft: &str,
    need: u32,
    fix: &str,
) -> Result<(), Failure> {
    let java = match runner(command, configured) {
        Runner::Path(p) => p,
        Runner::Missing(c) => {
            return Err(Failure::new(
                "java_missing",
                format!(
                    "Minecraft {minecraft} needs Java {need}, but no `{c}` is in PATH. {}, or {fix}.",
                    install_hint(need)
                ),
            ));
        }
        Runner::Unknown => {
            tracing::warn!(
                command,
                minecraft,
                need,
                "the server's command is not Java and no Java is in PATH; its Java is not checked"
            );
            return Ok(());
        }
    };
    let hint = format!(
        "{} or {fix}",
        install_hint(need).replacen("Install", "install", 1)
    );
    let have = installed_major(&java, &hint).await?;
    if have < need {
        return Err(Failure::new(
            "java_too_old",
            format!(
                "Minecraft {minecraft} needs Java {need}; {} is Java {have}. {}, or {fix}.",
                java.display(),
                install_hint(need)
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_versions_are_read_in_every_format() {
        let cases = [
            (
                "openjdk version \"21.0.2\" 2024-01-16\nOpenJDK Runtime Environment (build 21.0.2+13)",
                Some(21),
            ),
            (
                "java version \"1.8.0_392\"\nJava(TM) SE Runtime Environment (build 1.8.0_392-b08)",
                Some(8),
            ),
            ("openjdk version \"17\" 2021-09-14", Some(17)),
            ("openjdk version \"11.0.21\" 2023-10-17 LTS", Some(11)),
            ("openjdk version \"22-ea\" 2024-03-19", Some(22)),
            (
                "Picked up _JAVA_OPTIONS: -Xmx1g\nopenjdk version \"25\"",
                Some(25),
            ),
            ("java version \"1.7.0_80\"", Some(7)),
            ("bash: java: command not found", None),
            ("openjdk version \"\"", None),
        ];
        for (text, want) in cases {
            assert_eq!(parse_major(text), want, "{text}");
        }
    }

    #[test]
    fn the_table_gives_the_java_of_each_minecraft_era() {
        let cases = [
            ("1.21.4", Some(21)),
            ("1.20.5", Some(21)),
            ("1.20.4", Some(17)),
            ("1.18", Some(17)),
            ("1.18.2", Some(17)),
            ("1.17.1", Some(16)),
            ("1.16.5", Some(8)),
            ("1.8.9", Some(8)),
            ("26.1", Some(21)),
            ("1.21.5-rc1", Some(21)),
            ("24w14a", None),
            ("latest", None),
        ];
        for (v, want) in cases {
            assert_eq!(table_major(v), want, "{v}");
        }
    }

    #[test]
    fn java_commands_are_recognised() {
        assert!(is_java("java"));
        assert!(is_java("/usr/lib/jvm/java-21/bin/java"));
        assert!(is_java("C:\\Java\\bin\\java.exe"));
        assert!(!is_java("sh"));
        assert!(!is_java("./start.sh"));
        assert!(!is_java("/opt/javascript"));
        assert_eq!(
            runner("/opt/jdk/bin/java", None),
            Runner::Path(PathBuf::from("/opt/jdk/bin/java"))
        );
        assert_eq!(
            runner("./run.sh", Some(Path::new("/opt/jdk/bin/java"))),
            Runner::Path(PathBuf::from("/opt/jdk/bin/java"))
        );
    }
}
