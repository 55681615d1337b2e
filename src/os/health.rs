//! Readings for warden's own `/health`: the open-descriptor limit of warden itself.

/// warden's soft limit of open file descriptors, or `None` where there is no such
/// limit (Windows handles are bounded only by memory) or it cannot be read.
#[cfg(target_os = "linux")]
pub fn descriptor_limit() -> Option<u64> {
    // `/proc/self/limits` rather than getrlimit: it needs no extra nix feature and reads
    // the same value. The line is `Max open files  <soft>  <hard>  files`.
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    let soft = line
        .trim_start_matches("Max open files")
        .split_whitespace()
        .next()?;
    soft.parse().ok()
}

/// warden's soft limit of open file descriptors; none on this OS.
#[cfg(not(target_os = "linux"))]
pub fn descriptor_limit() -> Option<u64> {
    None
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    #[test]
    fn the_limit_is_read() {
        assert!(super::descriptor_limit().is_some_and(|n| n >= 64));
    }
}
