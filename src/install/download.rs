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

/// The server jar of a vanilla `version` (`latest` = the latest release): its URL and SHA-1.
pub async fn vanilla_jar(
    http: &reqwest::Client,
    base: &str,
    version: &str,
) -> Result<(String, Checksum, String), Failure> {
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
    let server = &meta["downloads"]["server"];
    let (Some(jar), Some(sha1)) = (server["url"].as_str(), server["sha1"].as_str()) else {
        return Err(Failure::new(
            "unknown_version",
            format!("Minecraft {id} has no server download"),
        ));
    };
    Ok((jar.to_string(), Checksum::Sha1(sha1.to_string()), id))
}

/// The newest build of Paper `version` (`latest` = the newest version): URL and SHA-256.
pub async fn paper_jar(
    http: &reqwest::Client,
    base: &str,
    version: &str,
) -> Result<(String, Checksum, String), Failure> {
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
    Ok((
        format!("{base}/versions/{version}/builds/{n}/downloads/{name}"),
        Checksum::Sha256(sha.to_string()),
        format!("{version}-{n}"),
    ))
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
