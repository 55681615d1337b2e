//! SteamCMD's bootstrap: when no SteamCMD is configured (`install.steamcmd`) and none is
//! in `PATH`, Valve's bootstrap archive (`steamcmd_linux.tar.gz`, or `steamcmd.zip` on
//! Windows, from `install.steamcmd_url`) is downloaded and unpacked into
//! `DATA/steamcmd`. The archive is written and unpacked in the hidden
//! `DATA/.steamcmd.bootstrap`, which is renamed to `DATA/steamcmd` only when it holds the
//! executable, so an interrupted bootstrap leaves nothing that looks usable. The caller
//! holds a lock: one bootstrap at a time. Valve publishes no checksum for the archive; it
//! comes over HTTPS from Valve's CDN, and SteamCMD updates itself on its first run.

use std::path::{Path, PathBuf};

use tokio::io::AsyncWriteExt;

use super::Failure;

/// The bootstrap archive of this OS.
pub fn archive_name() -> &'static str {
    if cfg!(windows) {
        "steamcmd.zip"
    } else {
        "steamcmd_linux.tar.gz"
    }
}

/// SteamCMD's executable in its folder on this OS.
pub fn executable_name() -> &'static str {
    if cfg!(windows) {
        "steamcmd.exe"
    } else {
        "steamcmd.sh"
    }
}

/// `DATA/steamcmd`: where a bootstrapped SteamCMD lives.
pub fn dir(data_dir: &Path) -> PathBuf {
    data_dir.join("steamcmd")
}

fn failure(message: String) -> Failure {
    Failure::new("steamcmd_missing", message)
}

/// The bootstrapped SteamCMD, downloading and unpacking it first when it is not there.
pub async fn ensure(
    http: &reqwest::Client,
    base_url: &str,
    data_dir: &Path,
) -> Result<PathBuf, Failure> {
    let final_dir = dir(data_dir);
    let exe = final_dir.join(executable_name());
    if exe.is_file() {
        return Ok(exe);
    }
    let url = format!("{}/{}", base_url.trim_end_matches('/'), archive_name());
    tracing::info!(%url, dir = %final_dir.display(), "no SteamCMD configured or in PATH; bootstrapping it");
    let tmp = data_dir.join(".steamcmd.bootstrap");
    let io = |what: &str, p: &Path, e: std::io::Error| {
        failure(format!(
            "cannot {what} {} while installing SteamCMD: {e}; check free space and permissions, or install SteamCMD yourself and set install.steamcmd",
            p.display()
        ))
    };
    let t = tmp.clone();
    let _ = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(&t)).await;
    tokio::fs::create_dir_all(&tmp)
        .await
        .map_err(|e| io("create", &tmp, e))?;
    let result = async {
        let archive = tmp.join(format!(".{}.part", archive_name()));
        download(http, &url, &archive).await?;
        let (a, t) = (archive.clone(), tmp.clone());
        tokio::task::spawn_blocking(move || unpack(&a, &t))
            .await
            .map_err(|e| failure(format!("unpacking SteamCMD failed: {e}")))??;
        tokio::fs::remove_file(&archive)
            .await
            .map_err(|e| io("remove", &archive, e))?;
        let unpacked = tmp.join(executable_name());
        if !unpacked.is_file() {
            return Err(failure(format!(
                "{url} has no {} inside; set install.steamcmd_url to Valve's installer folder or install SteamCMD yourself and set install.steamcmd",
                executable_name()
            )));
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            tokio::fs::set_permissions(&unpacked, std::fs::Permissions::from_mode(0o755))
                .await
                .map_err(|e| io("make executable", &unpacked, e))?;
        }
        // A folder without the executable (removed by hand) is replaced.
        if final_dir.exists() {
            let d = final_dir.clone();
            tokio::task::spawn_blocking(move || std::fs::remove_dir_all(&d))
                .await
                .map_err(|e| failure(e.to_string()))?
                .map_err(|e| io("replace", &final_dir, e))?;
        }
        tokio::fs::rename(&tmp, &final_dir)
            .await
            .map_err(|e| io("rename into place", &final_dir, e))?;
        Ok(exe.clone())
    }
    .await;
    if result.is_err() {
        let t = tmp.clone();
        let _ = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(&t)).await;
    }
    result
}

async fn download(http: &reqwest::Client, url: &str, to: &Path) -> Result<(), Failure> {
    let net = |e: String| {
        failure(format!(
            "cannot download SteamCMD from {url}: {e}; check the network and install.steamcmd_url, or install SteamCMD yourself and set install.steamcmd"
        ))
    };
    let mut resp = http.get(url).send().await.map_err(|e| net(e.to_string()))?;
    if !resp.status().is_success() {
        return Err(net(format!("HTTP {}", resp.status())));
    }
    let write = |e: std::io::Error| failure(format!("cannot write {}: {e}", to.display()));
    let mut out = tokio::fs::File::create(to).await.map_err(write)?;
    while let Some(chunk) = resp.chunk().await.map_err(|e| net(e.to_string()))? {
        out.write_all(&chunk).await.map_err(write)?;
    }
    out.sync_all().await.map_err(write)?;
    Ok(())
}

/// Unpacks the archive into `into`, as a zip or a gzipped tar by its name (entries that
/// would land outside it are refused by both readers).
fn unpack(archive: &Path, into: &Path) -> Result<(), Failure> {
    let bad = |e: String| {
        failure(format!(
            "SteamCMD's archive {} cannot be unpacked: {e}",
            archive.display()
        ))
    };
    let file = std::fs::File::open(archive).map_err(|e| bad(e.to_string()))?;
    if archive
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("zip"))
    {
        let mut zip = zip::ZipArchive::new(file).map_err(|e| bad(e.to_string()))?;
        zip.extract(into).map_err(|e| bad(e.to_string()))
    } else {
        let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(file));
        tar.unpack(into).map_err(|e| bad(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tar_gz_unpacks_into_the_folder_on_every_os() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let archive = tmp.path().join("a.tar.gz");
        {
            let gz = flate2::write::GzEncoder::new(
                std::fs::File::create(&archive).expect("create"),
                flate2::Compression::fast(),
            );
            let mut b = tar::Builder::new(gz);
            let data = b"#!/bin/sh\n";
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o755);
            h.set_cksum();
            b.append_data(&mut h, "steamcmd.sh", &data[..])
                .expect("append");
            b.into_inner().expect("tar").finish().expect("gz");
        }
        let into = tmp.path().join("out");
        std::fs::create_dir_all(&into).expect("mkdir");
        unpack(&archive, &into).expect("unpack");
        assert_eq!(
            std::fs::read(into.join("steamcmd.sh")).expect("read"),
            b"#!/bin/sh\n"
        );
    }
}
