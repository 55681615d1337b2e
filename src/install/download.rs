//! Verified downloads: Minecraft server jars from Mojang's version manifest (SHA-1) or
//! PaperMC's downloads API (SHA-256), and plain URLs with a SHA-256. A file is streamed
//! to a temporary name beside its final one, hashed on the way, and renamed into place
//! only when the checksum matches; a mismatch removes it.

use std::path::Path;

use serde_json::Value;
use tokio::io::AsyncWriteExt;

use super::Failure;

/// A published checksum.
#[derive(Debug, Clone, PartialEq)]
pub enum Checksum {
    /// SHA-1, hex (Mojang).
    Sha1(String),
    /// SHA-256, hex (PaperMC, URL sources).
    Sha256(String),
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

enum Hasher {
    Sha1(sha1::Sha1),
    Sha256(sha2::Sha256),
}

impl Hasher {
    fn new(c: &Checksum) -> Hasher {
        match c {
            Checksum::Sha1(_) => Hasher::Sha1(<sha1::Sha1 as sha1::Digest>::new()),
            Checksum::Sha256(_) => Hasher::Sha256(<sha2::Sha256 as sha2::Digest>::new()),
        }
    }

    fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Sha1(h) => sha1::Digest::update(h, data),
            Hasher::Sha256(h) => sha2::Digest::update(h, data),
        }
    }

    fn finish(self) -> String {
        match self {
            Hasher::Sha1(h) => hex(&sha1::Digest::finalize(h)),
            Hasher::Sha256(h) => hex(&sha2::Digest::finalize(h)),
        }
    }
}

fn net(what: &str, url: &str, e: impl std::fmt::Display) -> Failure {
    Failure::new(
        "download_failed",
        format!("cannot {what} {url}: {e}; check the network and the install.*_url settings"),
    )
}

async fn get_json(http: &reqwest::Client, url: &str) -> Result<Value, Failure> {
    let resp = http
        .get(url)
        .send()
        .await
        .map_err(|e| net("fetch", url, e))?;
    if !resp.status().is_success() {
        return Err(net("fetch", url, format!("HTTP {}", resp.status())));
    }
    resp.json().await.map_err(|e| net("read JSON from", url, e))
}

/// Downloads `url` into `dir/file`, verified against `sum`. Returns the bytes written.
pub async fn fetch_verified(
    http: &reqwest::Client,
    url: &str,
    sum: &Checksum,
    dir: &Path,
    file: &str,
) -> Result<u64, Failure> {
    let part = dir.join(format!(".{file}.part"));
    let result = fetch_to(http, url, sum, &part).await;
    match result {
        Ok(n) => {
            tokio::fs::rename(&part, dir.join(file))
                .await
                .map_err(|e| {
                    Failure::new(
                        "write_failed",
                        format!("cannot rename {} into place: {e}", part.display()),
                    )
                })?;
            Ok(n)
        }
        Err(f) => {
            let _ = tokio::fs::remove_file(&part).await;
            Err(f)
        }
    }
}

async fn fetch_to(
    http: &reqwest::Client,
    url: &str,
    sum: &Checksum,
    part: &Path,
) -> Result<u64, Failure> {
    let mut resp = http
        .get(url)
        .send()
        .await
        .map_err(|e| net("download", url, e))?;
    if !resp.status().is_success() {
        return Err(net("download", url, format!("HTTP {}", resp.status())));
    }
    let write_err = |e: std::io::Error| {
        Failure::new(
            "write_failed",
            format!(
                "cannot write {}: {e}; check free space and permissions",
                part.display()
            ),
        )
    };
    let mut out = tokio::fs::File::create(part).await.map_err(write_err)?;
    let mut hasher = Hasher::new(sum);
    let mut n = 0u64;
    while let Some(chunk) = resp.chunk().await.map_err(|e| net("download", url, e))? {
        hasher.update(&chunk);
        out.write_all(&chunk).await.map_err(write_err)?;
        n += chunk.len() as u64;
    }
    out.sync_all().await.map_err(write_err)?;
    let got = hasher.finish();
    let (kind, want) = match sum {
        Checksum::Sha1(w) => ("SHA-1", w),
        Checksum::Sha256(w) => ("SHA-256", w),
    };
    if !got.eq_ignore_ascii_case(want) {
        return Err(Failure::new(
            "checksum_mismatch",
            format!(
                "{url} has {kind} {got}, but {want} was published; the download is corrupt or \
                 was tampered with, nothing was installed"
            ),
        ));
    }
    Ok(n)
}

/// A Minecraft server jar to download: where, its published checksum, its build, the
/// Minecraft version and the Java major version it needs when the source says.
#[derive(Debug, Clone, PartialEq)]
pub struct Jar {
    /// Download URL.
    pub url: String,
    /// Published checksum.
    pub sum: Checksum,
    /// The build warden records (vanilla: the version; Paper: `VERSION-BUILD`).
    pub build: String,
    /// The Minecraft version.
    pub minecraft: String,
    /// The Java major version the build needs, when its metadata says.
    pub java: Option<u32>,
}

/// Mojang's version JSON of `version` (`latest` = the latest release) and its id.
async fn vanilla_meta(
    http: &reqwest::Client,
    base: &str,
    version: &str,
) -> Result<(String, Value), Failure> {
    let manifest_url = format!(
        "{}/mc/game/version_manifest_v2.json",
        base.trim_end_matches('/')
    );
    let manifest = get_json(http, &manifest_url).await?;
    let id = if version == "latest" {
        manifest["latest"]["release"]
            .as_str()
            .ok_or_else(|| bad(&manifest_url, "no latest.release"))?
            .to_string()
    } else {
        version.to_string()
    };
    let entry = manifest["versions"]
        .as_array()
        .and_then(|vs| vs.iter().find(|v| v["id"].as_str() == Some(id.as_str())))
        .ok_or_else(|| {
            Failure::new(
                "unknown_version",
                format!("Minecraft version {id:?} is not in Mojang's version manifest"),
            )
        })?;
    let url = entry["url"]
        .as_str()
        .ok_or_else(|| bad(&manifest_url, "a version without url"))?;
    let meta = get_json(http, url).await?;
    Ok((id, meta))
}

/// `javaVersion.majorVersion` of a Mojang version JSON.
fn meta_java(meta: &Value) -> Option<u32> {
    meta["javaVersion"]["majorVersion"]
        .as_u64()
        .and_then(|n| u32::try_from(n).ok())
}

/// The server jar of a vanilla `version` (`latest` = the latest release): its URL, SHA-1
/// and the Java it needs (`javaVersion.majorVersion`, else the table by version).
pub async fn vanilla_jar(
    http: &reqwest::Client,
    base: &str,
    version: &str,
) -> Result<Jar, Failure> {
    let (id, meta) = vanilla_meta(http, base, version).await?;
    let server = &meta["downloads"]["server"];
    let (Some(jar), Some(sha1)) = (server["url"].as_str(), server["sha1"].as_str()) else {
        return Err(Failure::new(
            "unknown_version",
            format!("Minecraft {id} has no server download"),
        ));
    };
    Ok(Jar {
        url: jar.to_string(),
        sum: Checksum::Sha1(sha1.to_string()),
        build: id.clone(),
        java: meta_java(&meta).or_else(|| super::java::table_major(&id)),
        minecraft: id,
    })
}

/// The Java major version `jar` needs: what its source said; else, for Paper, Mojang's
/// version JSON of the same Minecraft version (when reachable within a few seconds);
/// else the table by Minecraft version. `None` when nothing knows (a snapshot name).
pub async fn java_needed(http: &reqwest::Client, mojang: &str, jar: &Jar) -> Option<u32> {
    if let Some(n) = jar.java {
        return Some(n);
    }
    let lookup = vanilla_meta(http, mojang, &jar.minecraft);
    match tokio::time::timeout(std::time::Duration::from_secs(5), lookup).await {
        Ok(Ok((_, meta))) => meta_java(&meta),
        _ => None,
    }
    .or_else(|| super::java::table_major(&jar.minecraft))
}

/// The newest build of Paper `version` (`latest` = the newest version): URL and SHA-256,
/// and the Java it needs when the API says (`java.version.minimum`, as in PaperMC's
/// newer API; its v2 builds answer does not).
pub async fn paper_jar(http: &reqwest::Client, base: &str, version: &str) -> Result<Jar, Failure> {
    let base = format!("{}/v2/projects/paper", base.trim_end_matches('/'));
    let version = if version == "latest" {
        let project = get_json(http, &base).await?;
        project["versions"]
            .as_array()
            .and_then(|v| v.last())
            .and_then(Value::as_str)
            .ok_or_else(|| bad(&base, "no versions"))?
            .to_string()
    } else {
        version.to_string()
    };
    let builds_url = format!("{base}/versions/{version}/builds");
    let builds = get_json(http, &builds_url).await?;
    let build = builds["builds"]
        .as_array()
        .and_then(|b| b.last())
        .ok_or_else(|| {
            Failure::new(
                "unknown_version",
                format!("Paper has no builds for {version:?}"),
            )
        })?;
    let (Some(n), Some(name), Some(sha)) = (
        build["build"].as_u64(),
        build["downloads"]["application"]["name"].as_str(),
        build["downloads"]["application"]["sha256"].as_str(),
    ) else {
        return Err(bad(&builds_url, "a build without its application download"));
    };
    let java = [&builds["java"], &build["java"]]
        .iter()
        .find_map(|j| j["version"]["minimum"].as_u64())
        .and_then(|n| u32::try_from(n).ok());
    Ok(Jar {
        url: format!("{base}/versions/{version}/builds/{n}/downloads/{name}"),
        sum: Checksum::Sha256(sha.to_string()),
        build: format!("{version}-{n}"),
        minecraft: version,
        java,
    })
}

fn bad(url: &str, what: &str) -> Failure {
    Failure::new(
        "download_failed",
        format!("{url} answered in an unexpected shape ({what})"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashers_give_the_known_digests() {
        let mut h = Hasher::new(&Checksum::Sha1(String::new()));
        h.update(b"abc");
        assert_eq!(h.finish(), "a9993e364706816aba3e25717850c26c9cd0d89d");
        let mut h = Hasher::new(&Checksum::Sha256(String::new()));
        h.update(b"abc");
        assert_eq!(
            h.finish(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
