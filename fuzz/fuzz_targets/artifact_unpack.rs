//! The artifact unpacker an agent runs on what it downloaded, over any bytes, into a fresh
//! directory per input, with small limits so their refusals are reached. Nothing lands
//! outside the version's directory; a refusal leaves nothing behind; what is unpacked
//! stays within the limits and holds no device, FIFO or setuid file.
#![no_main]

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use libfuzzer_sys::fuzz_target;
use quarterdeck::plane::agent::docker::artifact::{Limits, unpack_within};

const LIMITS: Limits = Limits { bytes: 1024 * 1024, entries: 64 };

fn scratch() -> PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    let base = if Path::new("/dev/shm").is_dir() { PathBuf::from("/dev/shm") } else { std::env::temp_dir() };
    base.join(format!("qd-fuzz-unpack-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed)))
}

/// Every entry under `dir` (links not followed): (path, metadata).
fn walk(dir: &Path, out: &mut Vec<(PathBuf, std::fs::Metadata)>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let Ok(meta) = std::fs::symlink_metadata(e.path()) else { continue };
        if meta.is_dir() {
            walk(&e.path(), out);
        }
        out.push((e.path(), meta));
    }
}

/// Removes `root` even when an entry took away its own permissions.
fn clean(root: &Path) {
    if std::fs::remove_dir_all(root).is_ok() {
        return;
    }
    let mut all = Vec::new();
    walk(root, &mut all);
    for (p, m) in all {
        if m.is_dir() {
            let _ = std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o700));
        }
    }
    let _ = std::fs::remove_dir_all(root);
}

fuzz_target!(|data: &[u8]| {
    let root = scratch();
    let dir = root.join("instance");
    std::fs::create_dir_all(&root).expect("a scratch directory");
    std::fs::write(root.join("sentinel"), b"untouched").expect("the sentinel");
    let result = unpack_within(data, &dir, "1.0", LIMITS);
    let mut outside: Vec<String> = std::fs::read_dir(&root)
        .expect("the scratch directory")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    outside.sort();
    assert!(
        outside == ["instance", "sentinel"] || outside == ["sentinel"],
        "something landed beside the instance directory: {outside:?}"
    );
    assert_eq!(std::fs::read(root.join("sentinel")).ok().as_deref(), Some(&b"untouched"[..]));
    let mut inside: Vec<String> = std::fs::read_dir(&dir)
        .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    inside.sort();
    match &result {
        Ok(target) => {
            assert_eq!(target, &dir.join("1.0"));
            assert_eq!(inside, ["1.0"], "only the version's directory is left");
            let mut all = Vec::new();
            walk(target, &mut all);
            // Each entry makes at most one file or link (directories also come from paths).
            let files = all.iter().filter(|(_, m)| !m.is_dir()).count() as u64;
            assert!(files <= LIMITS.entries, "{files} files unpacked, over the limit");
            let bytes: u64 = all.iter().filter(|(_, m)| m.is_file()).map(|(_, m)| m.len()).sum();
            assert!(bytes <= LIMITS.bytes, "{bytes} bytes unpacked, over the limit");
            for (p, m) in &all {
                let t = m.file_type();
                assert!(
                    !(t.is_block_device() || t.is_char_device() || t.is_fifo() || t.is_socket()),
                    "{p:?}"
                );
                assert_eq!(m.permissions().mode() & 0o7000, 0, "{p:?} kept setuid, setgid or sticky");
            }
        }
        Err(e) => {
            assert!(!e.is_empty());
            assert!(inside.is_empty(), "a refused artifact left {inside:?}");
        }
    }
    clean(&root);
});
