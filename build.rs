//! Build script: embeds the dashboard under `web/` and compresses it once, here, rather
//! than at every start-up. It writes `$OUT_DIR/web_assets.rs` (included by `src/web.rs`):
//! the asset version (a hash of every file), a table of every file sorted by path with its
//! bytes and, when it pays, a gzipped copy, and the page with the versioned asset prefix
//! filled in. The binary then serves static bytes: no heap copy, no deflate at start-up.
//! New files under `web/` are picked up because the whole directory is watched.

use std::error::Error;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// Files smaller than this are not worth a gzip header and a decompression step.
const GZIP_MIN_BYTES: usize = 512;
/// Placeholder in `index.html` replaced by the versioned asset prefix.
const PREFIX_MARK: &str = "%ASSETS%";

// Cargo reads a build script's directives from its stdout.
#[allow(clippy::print_stdout)]
fn main() -> Result<(), Box<dyn Error>> {
    println!("cargo:rerun-if-changed=web");
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("web");
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    let gz_dir = out.join("web-gz");
    std::fs::create_dir_all(&gz_dir)?;

    let mut names = Vec::new();
    walk(&root, &root, &mut names)?;
    // Sorted by bytes, as `str`'s `Ord` compares: the table is binary-searched.
    names.sort();

    let mut hasher = Sha256::new();
    let mut table = String::new();
    for (i, name) in names.iter().enumerate() {
        let path = root.join(name);
        let data = std::fs::read(&path)?;
        hasher.update(name.as_bytes());
        hasher.update(Sha256::digest(&data));
        let gz = compressed(name, &data, &gz_dir.join(format!("{i}.gz")))?;
        writeln!(
            table,
            "    ({name:?}, include_bytes!({:?}), {gz}),",
            path.to_string_lossy()
        )?;
    }
    let version: String = hasher.finalize()[..6]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();

    let template = std::fs::read_to_string(root.join("index.html")).unwrap_or_default();
    let page = template.replace(PREFIX_MARK, &format!("/assets/{version}"));
    let page_path = out.join("index.html");
    std::fs::write(&page_path, &page)?;
    let page_gz = compressed("index.html", page.as_bytes(), &out.join("index.html.gz"))?;

    let code = format!(
        "/// Hash of every embedded file; part of every asset URL.\n\
         pub(crate) const VERSION: &str = {version:?};\n\
         /// One embedded file: (path, bytes, gzipped bytes).\n\
         pub(crate) type Entry = (&'static str, &'static [u8], Option<&'static [u8]>);\n\
         /// Every file under `web/`, sorted by path.\n\
         pub(crate) static FILES: &[Entry] = &[\n{table}];\n\
         /// `index.html` with the asset prefix filled in, and gzipped.\n\
         pub(crate) static INDEX: (&[u8], Option<&[u8]>) = (include_bytes!({:?}), {page_gz});\n",
        page_path.to_string_lossy()
    );
    std::fs::write(out.join("web_assets.rs"), code)?;
    Ok(())
}

/// Collects the paths of every file under `dir`, relative to `root`, with `/` separators.
fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) -> Result<(), Box<dyn Error>> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            walk(root, &path, out)?;
        } else {
            let rel = path.strip_prefix(root)?;
            let parts: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            out.push(parts.join("/"));
        }
    }
    Ok(())
}

/// Gzips `data` into `dest` when its type compresses and the result is smaller; returns
/// the Rust expression for the table (`Some(include_bytes!(…))` or `None`).
fn compressed(name: &str, data: &[u8], dest: &Path) -> Result<String, Box<dyn Error>> {
    // The text types of `mime_of` in src/web.rs; images and unknown files stay as they are.
    let text = matches!(
        name.rsplit_once('.').map(|(_, ext)| ext),
        Some("html" | "js" | "mjs" | "css" | "svg" | "json" | "md" | "txt" | "LICENSE")
    );
    if !text || data.len() < GZIP_MIN_BYTES {
        return Ok("None".into());
    }
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(data)?;
    let gz = enc.finish()?;
    if gz.len() >= data.len() {
        return Ok("None".into());
    }
    std::fs::write(dest, &gz)?;
    Ok(format!(
        "Some(include_bytes!({:?}))",
        dest.to_string_lossy()
    ))
}
