//! The artifact on the host: download from the repository, check the sha256, unpack into
//! `<data dir>/instances/<id>/<version>`, and point `<id>/current` at it. The container
//! bind-mounts `current`, and the mount is resolved at every container start, so a
//! redeploy swaps the link and restarts the container (the original "restart service").

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::protocol::ArtifactRef;
use crate::repository::{self, Repository};

pub const CURRENT: &str = "current";

pub fn instance_dir(data_dir: &Path, id: &str) -> PathBuf {
    data_dir.join("instances").join(id)
}

/// Downloads, verifies and unpacks the artifact for `version`; returns what happened, for
/// the DOWNLOAD step. Nothing is unpacked when the checksum does not match.
pub async fn fetch(
    repo: &dyn Repository,
    artifact: &ArtifactRef,
    dir: &Path,
    version: &str,
) -> Result<String, String> {
    if version.is_empty() || version.starts_with('.') || version == CURRENT {
        return Err(format!("version {version:?} cannot name a directory"));
    }
    let bytes = download(repo, &artifact.name)
        .await
        .map_err(|e| format!("download of {} failed: {e}", artifact.name))?;
    repository::verify(artifact, &bytes).map_err(|e| e.to_string())?;
    let size = bytes.len();
    let (dir, owned_version) = (dir.to_path_buf(), version.to_string());
    let target = tokio::task::spawn_blocking(move || unpack(&bytes, &dir, &owned_version))
        .await
        .map_err(|e| format!("unpacking stopped: {e}"))??;
    Ok(format!("{} ({size} bytes) downloaded, checksum ok, unpacked to {}", artifact.name, target.display()))
}

/// The waits between tries of a download that failed for a reason that may pass: the bus
/// lost a node, a JetStream leader is being elected (seconds, in a 3-node cluster). About
/// 15 s in all, well inside the step's time.
const RETRY_AFTER_MS: [u64; 5] = [500, 1_000, 2_000, 4_000, 8_000];

/// The artifact's bytes, tried again while the failure is the bus's, not the artifact's: a
/// missing artifact or a bad checksum will not change, a timeout may.
async fn download(repo: &dyn Repository, name: &str) -> Result<bytes::Bytes, repository::RepoError> {
    let mut waits = RETRY_AFTER_MS.iter();
    loop {
        match repo.get(name).await {
            Err(repository::RepoError::Other(why)) => match waits.next() {
                Some(ms) => {
                    log::warn!("download of {name} failed ({why}); trying again in {ms} ms");
                    tokio::time::sleep(std::time::Duration::from_millis(*ms)).await;
                }
                None => return Err(repository::RepoError::Other(why)),
            },
            done => return done,
        }
    }
}

/// What one artifact may unpack to. A gzip bomb (1 MB packed, 1 GiB unpacked in a second)
/// would otherwise fill the host's disk from a small upload.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub bytes: u64,
    pub entries: u64,
}

pub const LIMITS: Limits = Limits { bytes: 512 * 1024 * 1024, entries: 50_000 };

fn unpack(bytes: &[u8], dir: &Path, version: &str) -> Result<PathBuf, String> {
    unpack_within(bytes, dir, version, LIMITS)
}

/// Unpacks the artifact `bytes` (a .tar.gz or a .tar) into `<dir>/<version>`, within
/// `limits`; public for the fuzz target, which unpacks any bytes with small limits.
pub fn unpack_within(bytes: &[u8], dir: &Path, version: &str, limits: Limits) -> Result<PathBuf, String> {
    let io = |what: &Path| {
        let what = what.display().to_string();
        move |e: std::io::Error| format!("{what}: {e}")
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let target = dir.join(version);
    // Unpack aside, then rename: a container never sees half an artifact.
    let tmp = dir.join(format!(".{version}.unpacking"));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(io(&tmp))?;
    }
    std::fs::create_dir_all(&tmp).map_err(io(&tmp))?;
    let reader: Box<dyn Read + '_> = if bytes.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::GzDecoder::new(bytes))
    } else if bytes.get(257..262) == Some(b"ustar") {
        Box::new(bytes)
    } else {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err("the artifact is neither a .tar.gz nor a .tar".into());
    };
    if let Err(e) = unpack_entries(reader, &tmp, limits) {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(format!("cannot unpack the artifact: {e}"));
    }
    if target.exists() {
        std::fs::remove_dir_all(&target).map_err(io(&target))?;
    }
    std::fs::rename(&tmp, &target).map_err(io(&target))?;
    Ok(target)
}

/// Unpacks entry by entry, each checked before a byte of it is written: the sizes and the
/// count against `limits`, and the kind (no devices, FIFOs or sparse files). `unpack_in`
/// refuses a path outside the directory (`..`, absolute) and the permissions lose their
/// setuid, setgid and sticky bits (the tar crate's default without preserve-permissions).
fn unpack_entries(reader: impl Read, into: &Path, limits: Limits) -> Result<(), String> {
    use tar::EntryType;
    let mut archive = tar::Archive::new(reader);
    let (mut entries, mut bytes) = (0u64, 0u64);
    for entry in archive.entries().map_err(|e| e.to_string())? {
        let mut entry = entry.map_err(|e| e.to_string())?;
        let path = entry.path().map(|p| p.display().to_string()).unwrap_or_else(|_| "?".into());
        let path = crate::protocol::validate::quoted(&path);
        entries += 1;
        if entries > limits.entries {
            return Err(format!("more than {} entries", limits.entries));
        }
        let kind = entry.header().entry_type();
        if matches!(kind, EntryType::Block | EntryType::Char | EntryType::Fifo | EntryType::GNUSparse) {
            return Err(format!("{path} is a {kind:?} entry, which an artifact may not hold"));
        }
        bytes = bytes.saturating_add(entry.size());
        if bytes > limits.bytes {
            return Err(format!(
                "it unpacks to more than {} MiB (at {path}); an artifact may unpack to {} MiB at most",
                limits.bytes / (1024 * 1024),
                limits.bytes / (1024 * 1024)
            ));
        }
        if !entry.unpack_in(into).map_err(|e| format!("{path}: {e}"))? {
            return Err(format!("{path} would land outside the artifact's directory"));
        }
    }
    Ok(())
}

/// Points `<dir>/current` at `version`, atomically (a new link renamed over the old one).
pub fn activate(dir: &Path, version: &str) -> Result<(), String> {
    let next = dir.join(".current.next");
    let _ = std::fs::remove_file(&next);
    std::os::unix::fs::symlink(version, &next).map_err(|e| format!("{}: {e}", next.display()))?;
    std::fs::rename(&next, dir.join(CURRENT)).map_err(|e| format!("{}: {e}", dir.display()))
}

/// The version `current` points at, if any.
pub fn active_version(dir: &Path) -> Option<String> {
    std::fs::read_link(dir.join(CURRENT)).ok()?.to_str().map(str::to_string)
}

/// Removes every unpacked version but `keep` (after a redeploy is healthy).
pub fn prune(dir: &Path, keep: &str) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        if name != CURRENT && name != keep && entry.path().is_dir() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Removes the instance's directory and everything in it.
pub fn remove_all(dir: &Path) {
    if let Err(e) = std::fs::remove_dir_all(dir)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        log::warn!("cannot remove {}: {e}", dir.display());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A repository that fails its first `fail` gets with `error`, then serves `data`.
    struct Flaky {
        fail: std::sync::atomic::AtomicUsize,
        error: fn() -> repository::RepoError,
        data: bytes::Bytes,
    }

    #[async_trait::async_trait]
    impl Repository for Flaky {
        async fn put(&self, _: &str, _: bytes::Bytes) -> Result<ArtifactRef, repository::RepoError> {
            unreachable!("agents never upload")
        }
        async fn info(&self, _: &str) -> Result<Option<ArtifactRef>, repository::RepoError> {
            Ok(None)
        }
        async fn get(&self, _: &str) -> Result<bytes::Bytes, repository::RepoError> {
            use std::sync::atomic::Ordering;
            match self.fail.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)) {
                Ok(_) => Err((self.error)()),
                Err(_) => Ok(self.data.clone()),
            }
        }
    }

    /// Seen on the lab: the JetStream meta leader died during a rolling deploy, one
    /// download timed out, and the instance (so the whole roll) failed.
    #[tokio::test(start_paused = true)]
    async fn a_download_the_bus_cut_short_is_tried_again_and_a_missing_artifact_is_not() {
        let flaky =
            |fail: usize, error| Flaky { fail: fail.into(), error, data: bytes::Bytes::from_static(b"ok") };
        let timeout = || repository::RepoError::Other("download of site@v2: timed out".into());
        let repo = flaky(3, timeout);
        assert_eq!(download(&repo, "site@v2").await.expect("the fourth try").as_ref(), b"ok");
        let repo = flaky(RETRY_AFTER_MS.len() + 1, timeout);
        assert!(matches!(download(&repo, "site@v2").await, Err(repository::RepoError::Other(_))));
        let missing = || repository::RepoError::NotFound("site@v2".into());
        let repo = flaky(1, missing);
        assert!(matches!(download(&repo, "site@v2").await, Err(repository::RepoError::NotFound(_))));
        assert_eq!(repo.fail.load(std::sync::atomic::Ordering::SeqCst), 0, "asked once");
    }

    fn tar_gz(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), Default::default()));
        for (name, data) in files {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            builder.append_data(&mut header, name, *data).unwrap();
        }
        builder.into_inner().unwrap().finish().unwrap()
    }

    /// A gzip bomb: `mib` MiB of zeros in one file, a few hundred KiB packed.
    fn bomb(mib: usize) -> Vec<u8> {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let mut tar = tar::Builder::new(&mut gz);
        let mut header = tar::Header::new_gnu();
        header.set_size((mib * 1024 * 1024) as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, "zeros", std::io::repeat(0).take((mib * 1024 * 1024) as u64)).unwrap();
        tar.into_inner().unwrap();
        gz.finish().unwrap()
    }

    #[test]
    fn a_gzip_bomb_is_refused_before_it_is_written() {
        let dir = std::env::temp_dir().join(format!("qd-artifact-bomb-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let packed = bomb(64);
        assert!(packed.len() < 1024 * 1024, "a bomb: {} bytes packed", packed.len());
        let limits = Limits { bytes: 8 * 1024 * 1024, entries: 100 };
        let err = unpack_within(&packed, &dir, "1.0", limits).unwrap_err();
        assert!(err.contains("more than 8 MiB") && err.contains("zeros"), "{err}");
        assert!(!dir.join("1.0").exists() && !dir.join(".1.0.unpacking").exists());
        // Many small entries are counted too.
        let many: Vec<(String, &[u8])> = (0..101).map(|i| (format!("f{i}"), &b"x"[..])).collect();
        let many: Vec<(&str, &[u8])> = many.iter().map(|(n, d)| (n.as_str(), *d)).collect();
        let err = unpack_within(&tar_gz(&many), &dir, "2.0", limits).unwrap_err();
        assert!(err.contains("more than 100 entries"), "{err}");
        // Under the limits it unpacks.
        unpack_within(&tar_gz(&many[..100]), &dir, "3.0", limits).unwrap();
        assert!(dir.join("3.0/f99").exists());
        remove_all(&dir);
    }

    #[test]
    fn devices_fifos_and_escaping_paths_are_refused_and_setuid_is_dropped() {
        let dir = std::env::temp_dir().join(format!("qd-artifact-kinds-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for kind in [tar::EntryType::Char, tar::EntryType::Block, tar::EntryType::Fifo] {
            let mut builder = tar::Builder::new(Vec::new());
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(kind);
            header.set_size(0);
            header.set_cksum();
            builder.append_data(&mut header, "dev", &[][..]).unwrap();
            let err = unpack(&builder.into_inner().unwrap(), &dir, "1.0").unwrap_err();
            assert!(err.contains("may not hold"), "{kind:?}: {err}");
        }
        // A path with `..` written raw into the header (the builder refuses to).
        let mut header = tar::Header::new_gnu();
        header.as_gnu_mut().unwrap().name[..13].copy_from_slice(b"../escaped.sh");
        header.set_size(1);
        header.set_mode(0o644);
        header.set_cksum();
        let mut builder = tar::Builder::new(Vec::new());
        builder.append(&header, &b"x"[..]).unwrap();
        let err = unpack(&builder.into_inner().unwrap(), &dir, "2.0").unwrap_err();
        assert!(err.contains("escaped.sh"), "{err}");
        assert!(!dir.join("escaped.sh").exists());
        // setuid is dropped.
        let mut header = tar::Header::new_gnu();
        header.set_size(1);
        header.set_mode(0o4755);
        header.set_cksum();
        let mut builder = tar::Builder::new(Vec::new());
        builder.append_data(&mut header, "suid", &b"x"[..]).unwrap();
        unpack(&builder.into_inner().unwrap(), &dir, "3.0").unwrap();
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("3.0/suid")).unwrap().permissions().mode();
        assert_eq!(mode & 0o7000, 0, "mode {mode:o}");
        remove_all(&dir);
    }

    #[test]
    fn unpack_activate_and_prune() {
        let dir = std::env::temp_dir().join(format!("qd-artifact-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        unpack(&tar_gz(&[("index.html", b"one")]), &dir, "1.0").unwrap();
        activate(&dir, "1.0").unwrap();
        assert_eq!(std::fs::read(dir.join("current/index.html")).unwrap(), b"one");
        unpack(&tar_gz(&[("index.html", b"two")]), &dir, "2.0").unwrap();
        activate(&dir, "2.0").unwrap();
        assert_eq!(active_version(&dir).as_deref(), Some("2.0"));
        assert_eq!(std::fs::read(dir.join("current/index.html")).unwrap(), b"two");
        prune(&dir, "2.0");
        assert!(!dir.join("1.0").exists());
        assert!(unpack(b"not an archive", &dir, "3.0").unwrap_err().contains("neither"));
        assert!(!dir.join(".3.0.unpacking").exists());
        remove_all(&dir);
        assert!(!dir.exists());
    }
}
