//! The artifact on the host: download from the repository, check the sha256, unpack into
//! `<data dir>/instances/<id>/<version>`, and point `<id>/current` at it. The container
//! bind-mounts `current`, and the mount is resolved at every container start, so a
//! redeploy swaps the link and restarts the container (the original "restart service").

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::plane::repository::{self, Repository};
use crate::protocol::ArtifactRef;

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
    let bytes =
        repo.get(&artifact.name).await.map_err(|e| format!("download of {} failed: {e}", artifact.name))?;
    repository::verify(artifact, &bytes).map_err(|e| e.to_string())?;
    let size = bytes.len();
    let (dir, owned_version) = (dir.to_path_buf(), version.to_string());
    let target = tokio::task::spawn_blocking(move || unpack(&bytes, &dir, &owned_version))
        .await
        .map_err(|e| format!("unpacking stopped: {e}"))??;
    Ok(format!("{} ({size} bytes) downloaded, checksum ok, unpacked to {}", artifact.name, target.display()))
}

fn unpack(bytes: &[u8], dir: &Path, version: &str) -> Result<PathBuf, String> {
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
    // `unpack` refuses entries that would land outside the directory (`..`, absolute).
    if let Err(e) = tar::Archive::new(reader).unpack(&tmp) {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(format!("cannot unpack the artifact: {e}"));
    }
    if target.exists() {
        std::fs::remove_dir_all(&target).map_err(io(&target))?;
    }
    std::fs::rename(&tmp, &target).map_err(io(&target))?;
    Ok(target)
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
