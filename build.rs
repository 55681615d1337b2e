//! Build script: rebuilds warden when the dashboard under `web/` changes, so the
//! embedded assets (and new files, which the embedding macro cannot track) stay current.

fn main() {
    println!("cargo:rerun-if-changed=web");
}
