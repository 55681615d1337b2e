//! `warden ctl files ls|get|put`: list, download and upload a program's files over the
//! API, streaming (a download is written to disk as it arrives; an upload is read from
//! disk as it is sent).

use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow, bail};
use clap::Subcommand;
use futures_util::StreamExt;
use serde_json::Value;
use tokio::io::AsyncWriteExt;

use super::{Client, fmt_ms, print_json};

/// `warden ctl files …`.
#[derive(Subcommand)]
pub enum FilesCmd {
    /// List a folder of a program's files (every page).
    Ls {
        /// Program name.
        name: String,
        /// Folder relative to the program's file root.
        #[arg(default_value = "")]
        path: String,
        /// List the program's console logs instead.
        #[arg(long)]
        logs: bool,
    },
    /// Download a file (or a folder as an archive).
    Get {
        /// Program name.
        name: String,
        /// File or folder relative to the program's file root.
        path: String,
        /// Where to write it (default: its name in the current folder; `-` for stdout).
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// Archive format for a folder: zip or tar.zst.
        #[arg(long, default_value = "zip")]
        format: String,
        /// Read from the program's console logs instead.
        #[arg(long)]
        logs: bool,
    },
    /// Upload a local file into a folder of the program.
    Put {
        /// Program name.
        name: String,
        /// Local file.
        file: PathBuf,
        /// Destination folder relative to the program's file root.
        #[arg(default_value = "")]
        path: String,
        /// Replace an existing file of the same name.
        #[arg(long)]
        overwrite: bool,
    },
}

impl Client {
    /// `{base}/api/programs/{name}/files{rest}` with query pairs, properly encoded.
    fn files_url(
        &self,
        name: &str,
        rest: &str,
        query: &[(&str, &str)],
    ) -> anyhow::Result<reqwest::Url> {
        let mut url =
            reqwest::Url::parse(&format!("{}/api/programs/{name}/files{rest}", self.base))
                .with_context(|| format!("invalid server URL {}", self.base))?;
        url.query_pairs_mut().extend_pairs(query);
        Ok(url)
    }
}

/// Runs `warden ctl files …`.
pub async fn run(c: &Client, cmd: FilesCmd, json: bool) -> anyhow::Result<()> {
    match cmd {
        FilesCmd::Ls { name, path, logs } => ls(c, &name, &path, logs, json).await,
        FilesCmd::Get {
            name,
            path,
            output,
            format,
            logs,
        } => get(c, &name, &path, output, &format, logs).await,
        FilesCmd::Put {
            name,
            file,
            path,
            overwrite,
        } => put(c, &name, &file, &path, overwrite, json).await,
    }
}

async fn ls(c: &Client, name: &str, path: &str, logs: bool, json: bool) -> anyhow::Result<()> {
    let area = if logs { "logs" } else { "files" };
    let mut after: Option<String> = None;
    loop {
        let mut query = vec![("path", path), ("area", area)];
        if let Some(a) = &after {
            query.push(("after", a));
        }
        let url = c.files_url(name, "", &query)?;
        let v = c.send(c.http.get(url)).await?;
        if json {
            print_json(&v)?;
        } else {
            for e in v["entries"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
                let kind = e["type"].as_str().unwrap_or("?");
                let size = if kind == "dir" {
                    "-".to_string()
                } else {
                    e["size"].as_u64().unwrap_or(0).to_string()
                };
                outln!(
                    "{:<7} {:>12}  {:<19}  {}{}",
                    kind,
                    size,
                    e["modified_ms"].as_i64().map(fmt_ms).unwrap_or_default(),
                    e["name"].as_str().unwrap_or(""),
                    if kind == "dir" { "/" } else { "" }
                );
            }
        }
        match v["next_after"].as_str() {
            Some(a) => after = Some(a.to_string()),
            None => return Ok(()),
        }
    }
}

async fn get(
    c: &Client,
    name: &str,
    path: &str,
    output: Option<PathBuf>,
    format: &str,
    logs: bool,
) -> anyhow::Result<()> {
    let area = if logs { "logs" } else { "files" };
    let url = c.files_url(
        name,
        "/download",
        &[("path", path), ("area", area), ("format", format)],
    )?;
    let resp = c
        .http
        .get(url)
        .bearer_auth(&c.token)
        .send()
        .await
        .map_err(|e| super::unreachable(&c.base, &e))?;
    if !resp.status().is_success() {
        let status = resp.status();
        let v: Value = resp.json().await.unwrap_or(Value::Null);
        bail!(
            "{} (HTTP {})",
            v["error"]["message"].as_str().unwrap_or("download failed"),
            status.as_u16()
        );
    }
    let offered = resp
        .headers()
        .get(reqwest::header::CONTENT_DISPOSITION)
        .and_then(|v| v.to_str().ok())
        .and_then(offered_name);
    let mut body = resp.bytes_stream();
    if output.as_deref() == Some(Path::new("-")) {
        let mut out = tokio::io::stdout();
        while let Some(chunk) = body.next().await {
            out.write_all(&chunk?).await?;
        }
        out.flush().await?;
        return Ok(());
    }
    let target = match (output, offered) {
        (Some(p), _) => p,
        (None, Some(n)) => PathBuf::from(n),
        (None, None) => bail!("the server offered no file name; pass --output"),
    };
    let mut file = tokio::fs::File::create(&target)
        .await
        .with_context(|| format!("cannot create {}", target.display()))?;
    let mut written = 0u64;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.context("the download broke off")?;
        written += chunk.len() as u64;
        file.write_all(&chunk).await?;
    }
    file.flush().await?;
    errln!("{written} bytes written to {}", target.display());
    Ok(())
}

async fn put(
    c: &Client,
    name: &str,
    local: &Path,
    path: &str,
    overwrite: bool,
    json: bool,
) -> anyhow::Result<()> {
    let file = tokio::fs::File::open(local)
        .await
        .with_context(|| format!("cannot open {}", local.display()))?;
    let len = file.metadata().await?.len();
    let file_name = local
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| anyhow!("{} names no file", local.display()))?;
    let part = reqwest::multipart::Part::stream_with_length(
        reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::new(file)),
        len,
    )
    .file_name(file_name);
    let overwrite = if overwrite { "true" } else { "false" };
    let url = c.files_url(name, "/upload", &[("path", path), ("overwrite", overwrite)])?;
    let resp = c
        .http
        .post(url)
        .bearer_auth(&c.token)
        .multipart(reqwest::multipart::Form::new().part("files", part))
        .send()
        .await
        .map_err(|e| super::unreachable(&c.base, &e))?;
    let status = resp.status();
    let v: Value = resp.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        bail!(
            "{} (HTTP {})",
            v["error"]["message"].as_str().unwrap_or("upload failed"),
            status.as_u16()
        );
    }
    if json {
        return print_json(&v);
    }
    for f in v["files"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
        outln!(
            "uploaded {} ({} bytes)",
            f["path"].as_str().unwrap_or(""),
            f["size"].as_u64().unwrap_or(0)
        );
    }
    Ok(())
}

/// The file name from `filename*=UTF-8''…` (or `filename="…"`) of a Content-Disposition,
/// reduced to a plain name so a server cannot make the CLI write outside the current
/// folder.
fn offered_name(header: &str) -> Option<String> {
    let raw = header
        .split(';')
        .map(str::trim)
        .find_map(|p| p.strip_prefix("filename*=UTF-8''").and_then(percent_decode));
    let raw = raw.or_else(|| {
        header.split(';').map(str::trim).find_map(|p| {
            p.strip_prefix("filename=\"")
                .and_then(|v| v.strip_suffix('"'))
                .map(str::to_string)
        })
    })?;
    let name = raw.rsplit(['/', '\\']).next()?.to_string();
    (!name.is_empty() && name != "." && name != "..").then_some(name)
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offered_names_are_plain() {
        assert_eq!(
            offered_name("attachment; filename=\"_x.zip\"; filename*=UTF-8''%C3%A9x.zip")
                .as_deref(),
            Some("éx.zip")
        );
        assert_eq!(
            offered_name("attachment; filename=\"a.txt\"").as_deref(),
            Some("a.txt")
        );
        assert_eq!(
            offered_name("attachment; filename*=UTF-8''..%2F..%2Fetc%2Fpasswd").as_deref(),
            Some("passwd")
        );
        assert_eq!(
            offered_name("attachment; filename*=UTF-8''..").as_deref(),
            None
        );
        assert_eq!(offered_name("inline").as_deref(), None);
    }
}
