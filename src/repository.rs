//! The artifact repository: `ALLOCATE_REPOSITORY_REQUEST` names a slot for `app@version`,
//! the artifact is uploaded there with its SHA-256, and agents download it and check the
//! checksum. On NATS it is a JetStream Object Store bucket; a local directory serves tests
//! and the sandbox. Shared: the plane (controller slots, agent downloads) and the cockpit's
//! upload both use it, so neither reaches into the other.

use std::collections::HashMap;
use std::path::PathBuf;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::io::AsyncReadExt;

use crate::bus::NatsBus;
use crate::protocol::ArtifactRef;

#[derive(Debug, Clone, thiserror::Error)]
pub enum RepoError {
    #[error("no artifact {0} in the repository")]
    NotFound(String),
    #[error("checksum mismatch for {name}: expected sha256 {expected}, got {actual}")]
    Checksum { name: String, expected: String, actual: String },
    #[error("repository: {0}")]
    Other(String),
}

/// The slot an artifact of `app@version` goes into: `<app>@<version>`. An app name never
/// holds `@` (nor does a version), so no two apps' versions share a slot; with `-` they
/// did (`shop`@`web-1` and `shop-web`@`1`), and one app's upload replaced the other's
/// artifact.
pub fn slot(app: &str, version: &str) -> String {
    format!("{app}@{version}")
}

/// Lowercase hex SHA-256.
pub fn sha256_hex(data: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, data);
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// Checks downloaded bytes against the checksum the deploy was given.
pub fn verify(artifact: &ArtifactRef, data: &[u8]) -> Result<(), RepoError> {
    let actual = sha256_hex(data);
    if actual == artifact.sha256 {
        Ok(())
    } else {
        Err(RepoError::Checksum { name: artifact.name.clone(), expected: artifact.sha256.clone(), actual })
    }
}

#[async_trait]
pub trait Repository: Send + Sync + 'static {
    /// Stores `data` in `slot`. Storing the same content again is a no-op.
    async fn put(&self, slot: &str, data: Bytes) -> Result<ArtifactRef, RepoError>;
    /// What the slot holds, if anything.
    async fn info(&self, slot: &str) -> Result<Option<ArtifactRef>, RepoError>;
    /// The slot's bytes, unchecked: callers verify against the ref they were given.
    async fn get(&self, slot: &str) -> Result<Bytes, RepoError>;
}

/// The JetStream Object Store bucket `qd_artifacts`.
pub struct ObjectStoreRepository {
    js: async_nats::jetstream::Context,
    /// Whether this client may create the bucket (an uploader: the controller, an
    /// operator). An agent only reads it: with roles on, the server refuses it the create.
    creates: bool,
    /// The copies a bucket this client creates gets.
    replicas: usize,
    /// `qd_artifacts`, or another bucket of the same shape (`qd_sessions`).
    bucket: &'static str,
    store: tokio::sync::OnceCell<async_nats::jetstream::object_store::ObjectStore>,
}

/// The Object Store bucket artifacts live in.
pub const BUCKET: &str = "qd_artifacts";
const SHA_KEY: &str = "sha256";

impl ObjectStoreRepository {
    /// The bucket, created with one copy if it does not exist yet: for the clients that
    /// upload.
    pub async fn open(bus: &NatsBus) -> Result<Self, RepoError> {
        Self::open_with(bus, None).await
    }

    /// The bucket, created if need be and, with `Some(n)`, brought to n copies (the
    /// controller's `--replicas`).
    pub async fn open_with(bus: &NatsBus, replicas: Option<usize>) -> Result<Self, RepoError> {
        Self::open_bucket(bus, BUCKET, replicas).await
    }

    /// `open_with` of another bucket of the same shape (the controller's `qd_sessions`).
    pub async fn open_bucket(
        bus: &NatsBus,
        bucket: &'static str,
        replicas: Option<usize>,
    ) -> Result<Self, RepoError> {
        let repo = ObjectStoreRepository {
            js: bus.jetstream(),
            creates: true,
            replicas: replicas.unwrap_or(1),
            bucket,
            store: Default::default(),
        };
        repo.store().await?;
        if let Some(n) = replicas {
            crate::bus::replicas::ensure(&repo.js, &format!("OBJ_{bucket}"), n)
                .await
                .map_err(RepoError::Other)?;
        }
        Ok(repo)
    }

    /// The bucket for reading only, looked up at its first use: an agent may start before
    /// anyone created it, and needs it only when a deploy brings an artifact.
    pub fn reader(bus: &NatsBus) -> Self {
        Self::reader_of(bus, BUCKET)
    }

    /// `reader` of another bucket of the same shape; it also puts into it (an agent's
    /// session recordings), never creating it.
    pub fn reader_of(bus: &NatsBus, bucket: &'static str) -> Self {
        ObjectStoreRepository {
            js: bus.jetstream(),
            creates: false,
            replicas: 1,
            bucket,
            store: Default::default(),
        }
    }

    async fn store(&self) -> Result<&async_nats::jetstream::object_store::ObjectStore, RepoError> {
        self.store
            .get_or_try_init(|| async {
                let bucket = self.bucket;
                match self.js.get_object_store(bucket).await {
                    Ok(s) => Ok(s),
                    Err(_) if self.creates => self
                        .js
                        .create_object_store(async_nats::jetstream::object_store::Config {
                            bucket: bucket.into(),
                            num_replicas: self.replicas,
                            ..Default::default()
                        })
                        .await
                        .map_err(|e| RepoError::Other(format!("cannot open bucket {bucket}: {e}"))),
                    Err(e) => Err(RepoError::Other(format!("cannot open bucket {bucket}: {e}"))),
                }
            })
            .await
    }
}

#[async_trait]
impl Repository for ObjectStoreRepository {
    async fn put(&self, slot: &str, data: Bytes) -> Result<ArtifactRef, RepoError> {
        let sha256 = sha256_hex(&data);
        if let Some(existing) = self.info(slot).await?
            && existing.sha256 == sha256
        {
            return Ok(existing);
        }
        let meta = async_nats::jetstream::object_store::ObjectMetadata {
            name: slot.to_string(),
            metadata: HashMap::from([(SHA_KEY.to_string(), sha256.clone())]),
            ..Default::default()
        };
        let size = data.len() as u64;
        self.store()
            .await?
            .put(meta, &mut data.as_ref())
            .await
            .map_err(|e| RepoError::Other(format!("upload of {slot} failed: {e}")))?;
        Ok(ArtifactRef { name: slot.to_string(), sha256, size })
    }

    async fn info(&self, slot: &str) -> Result<Option<ArtifactRef>, RepoError> {
        use async_nats::jetstream::object_store::InfoErrorKind;
        match self.store().await?.info(slot).await {
            Ok(info) => Ok(Some(ArtifactRef {
                name: slot.to_string(),
                sha256: info.metadata.get(SHA_KEY).cloned().unwrap_or_default(),
                size: info.size as u64,
            })),
            Err(e) if e.kind() == InfoErrorKind::NotFound => Ok(None),
            Err(e) => Err(RepoError::Other(format!("{slot}: {e}"))),
        }
    }

    async fn get(&self, slot: &str) -> Result<Bytes, RepoError> {
        use async_nats::jetstream::object_store::GetErrorKind;
        let mut object = match self.store().await?.get(slot).await {
            Ok(o) => o,
            Err(e) if e.kind() == GetErrorKind::NotFound => return Err(RepoError::NotFound(slot.into())),
            Err(e) => return Err(RepoError::Other(format!("{slot}: {e}"))),
        };
        let mut buf = Vec::new();
        object
            .read_to_end(&mut buf)
            .await
            .map_err(|e| RepoError::Other(format!("download of {slot}: {e}")))?;
        Ok(Bytes::from(buf))
    }
}

/// A directory of `<slot>` files with `<slot>.sha256` beside them.
pub struct DirRepository {
    dir: PathBuf,
}

impl DirRepository {
    pub fn new(dir: impl Into<PathBuf>) -> Result<Self, RepoError> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir).map_err(|e| RepoError::Other(format!("{}: {e}", dir.display())))?;
        Ok(DirRepository { dir })
    }

    fn path(&self, slot: &str) -> Result<PathBuf, RepoError> {
        if slot.is_empty() || slot.contains('/') || slot.contains("..") {
            return Err(RepoError::Other(format!("bad slot name {slot:?}")));
        }
        Ok(self.dir.join(slot))
    }

    /// A file beside the slot's, `<slot>.<suffix>`: appended, since a slot's version has
    /// dots, and replacing its last extension gave `site@1.0.0` and `site@1.0.1` one file.
    fn beside(&self, slot: &str, suffix: &str) -> Result<PathBuf, RepoError> {
        self.path(&format!("{slot}.{suffix}"))
    }
}

#[async_trait]
impl Repository for DirRepository {
    async fn put(&self, slot: &str, data: Bytes) -> Result<ArtifactRef, RepoError> {
        let path = self.path(slot)?;
        let sha256 = sha256_hex(&data);
        let io = |e: std::io::Error| RepoError::Other(format!("{}: {e}", path.display()));
        // Write aside, then rename: a reader never sees half an artifact.
        let tmp = self.beside(slot, "part")?;
        tokio::fs::write(&tmp, &data).await.map_err(io)?;
        tokio::fs::rename(&tmp, &path).await.map_err(io)?;
        tokio::fs::write(self.beside(slot, "sha256")?, &sha256).await.map_err(io)?;
        Ok(ArtifactRef { name: slot.to_string(), sha256, size: data.len() as u64 })
    }

    async fn info(&self, slot: &str) -> Result<Option<ArtifactRef>, RepoError> {
        let path = self.path(slot)?;
        let Ok(meta) = tokio::fs::metadata(&path).await else { return Ok(None) };
        let sha256 = tokio::fs::read_to_string(self.beside(slot, "sha256")?).await.unwrap_or_default();
        Ok(Some(ArtifactRef { name: slot.to_string(), sha256, size: meta.len() }))
    }

    async fn get(&self, slot: &str) -> Result<Bytes, RepoError> {
        let path = self.path(slot)?;
        tokio::fs::read(&path).await.map(Bytes::from).map_err(|_| RepoError::NotFound(slot.into()))
    }
}

/// Artifacts in memory: the sandbox's repository, so the wizard's upload runs the whole
/// flow there too. Gone when the process ends.
#[derive(Default)]
pub struct MemoryRepository {
    slots: std::sync::Mutex<HashMap<String, (ArtifactRef, Bytes)>>,
}

impl MemoryRepository {
    fn slots(&self) -> std::sync::MutexGuard<'_, HashMap<String, (ArtifactRef, Bytes)>> {
        // A panic while holding the lock leaves the map whole: every write is one insert.
        self.slots.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[async_trait]
impl Repository for MemoryRepository {
    async fn put(&self, slot: &str, data: Bytes) -> Result<ArtifactRef, RepoError> {
        let artifact =
            ArtifactRef { name: slot.to_string(), sha256: sha256_hex(&data), size: data.len() as u64 };
        self.slots().insert(slot.to_string(), (artifact.clone(), data));
        Ok(artifact)
    }

    async fn info(&self, slot: &str) -> Result<Option<ArtifactRef>, RepoError> {
        Ok(self.slots().get(slot).map(|(a, _)| a.clone()))
    }

    async fn get(&self, slot: &str) -> Result<Bytes, RepoError> {
        self.slots().get(slot).map(|(_, b)| b.clone()).ok_or_else(|| RepoError::NotFound(slot.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn dir_repository_round_trip_and_checksum() {
        let dir = std::env::temp_dir().join(format!("qd-repo-{}", std::process::id()));
        let repo = DirRepository::new(&dir).unwrap();
        let art = repo.put("site-1.0", Bytes::from_static(b"hello")).await.unwrap();
        assert_eq!(art.sha256, "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
        assert_eq!(repo.info("site-1.0").await.unwrap(), Some(art.clone()));
        let data = repo.get("site-1.0").await.unwrap();
        assert!(verify(&art, &data).is_ok());
        let err = verify(&art, b"tampered").unwrap_err();
        assert!(err.to_string().contains("checksum mismatch"), "{err}");
        assert!(matches!(repo.get("nope").await, Err(RepoError::NotFound(_))));
        assert!(repo.put("../x", Bytes::new()).await.is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn no_two_apps_versions_share_a_slot() {
        assert_eq!(slot("shop-web", "1.0"), "shop-web@1.0");
        assert_ne!(slot("shop", "web-1.0"), slot("shop-web", "1.0"));
    }

    #[tokio::test]
    async fn versions_that_differ_after_their_last_dot_keep_their_own_checksums() {
        let dir = std::env::temp_dir().join(format!("qd-repo-dots-{}", std::process::id()));
        let repo = DirRepository::new(&dir).unwrap();
        let a = repo.put(&slot("site", "1.0.0"), Bytes::from_static(b"one")).await.unwrap();
        let b = repo.put(&slot("site", "1.0.1"), Bytes::from_static(b"two")).await.unwrap();
        assert_eq!(repo.info(&slot("site", "1.0.0")).await.unwrap(), Some(a));
        assert_eq!(repo.info(&slot("site", "1.0.1")).await.unwrap(), Some(b));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
