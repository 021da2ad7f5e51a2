//! Artifacts from the operator's machine into the repository, as the original flow has it:
//! `ALLOCATE_REPOSITORY_REQUEST` names the slot, then the bytes go there with their
//! sha256 (nothing is sent when the slot already holds the same bytes). `ctl deploy
//! --artifact` and the cockpit's wizard share this.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;

use super::Inbound;
use super::error::CommandError;
use crate::bus::{self, Bus, NatsBus, RequestError};
use crate::protocol::subjects::CtlVerb;
use crate::protocol::{AllocateRequest, Allocation, ArtifactRef, Envelope, Operator, UploadRequest};
use crate::repository::{ObjectStoreRepository, Repository, sha256_hex};

/// The largest artifact the cockpit uploads: it is read whole into memory first.
pub const MAX_ARTIFACT_BYTES: u64 = 512 * 1024 * 1024;

/// Where uploads go: a repository at hand (the sandbox's), or the Object Store behind a
/// NATS connection, opened when the first upload needs it so a cockpit that never
/// uploads never touches JetStream.
#[derive(Clone)]
pub enum RepoSource {
    Fixed(Arc<dyn Repository>),
    ObjectStore(Box<NatsBus>),
}

impl std::fmt::Debug for RepoSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RepoSource::Fixed(_) => "RepoSource::Fixed",
            RepoSource::ObjectStore(_) => "RepoSource::ObjectStore",
        })
    }
}

impl RepoSource {
    pub async fn open(&self) -> Result<Arc<dyn Repository>, String> {
        match self {
            RepoSource::Fixed(repo) => Ok(repo.clone()),
            RepoSource::ObjectStore(bus) => ObjectStoreRepository::open(bus)
                .await
                .map(|r| Arc::new(r) as Arc<dyn Repository>)
                .map_err(|e| format!("cannot open the artifact repository: {e}")),
        }
    }
}

/// What the upload did.
#[derive(Debug, Clone, PartialEq)]
pub struct Uploaded {
    pub artifact: ArtifactRef,
    /// The slot already held these bytes; nothing was sent.
    pub already_there: bool,
}

/// `ALLOCATE_REPOSITORY_REQUEST`: the controller names the slot for `app@version`.
pub async fn allocate(
    bus: &dyn Bus,
    source: &str,
    operator: Option<Operator>,
    app: &str,
    version: &str,
    timeout: Duration,
) -> Result<Allocation, RequestError> {
    let req = AllocateRequest { app: app.to_string(), version: version.to_string() };
    let env = Envelope::new(source, req).with_operator(operator);
    bus::command(bus, CtlVerb::RepoAllocate, &env, timeout).await
}

/// Puts `data` in `slot`, unless the slot already holds the same bytes.
pub async fn store(repo: &dyn Repository, slot: &str, data: Bytes) -> Result<Uploaded, String> {
    let sha256 = sha256_hex(&data);
    if let Some(existing) = repo.info(slot).await.map_err(|e| e.to_string())?
        && existing.sha256 == sha256
    {
        return Ok(Uploaded { artifact: existing, already_there: true });
    }
    let artifact = repo.put(slot, data).await.map_err(|e| e.to_string())?;
    Ok(Uploaded { artifact, already_there: false })
}

/// Reads an artifact file, with the checks the wizard also makes as the path is typed.
pub async fn read_artifact(path: &Path) -> Result<Bytes, String> {
    let meta = tokio::fs::metadata(path).await.map_err(|e| format!("{}: {e}", path.display()))?;
    check_artifact_file(path, &meta)?;
    tokio::fs::read(path).await.map(Bytes::from).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// A regular, non-empty file of at most `MAX_ARTIFACT_BYTES`, named like a tarball (the
/// agent unpacks .tar.gz and .tar).
pub fn check_artifact_file(path: &Path, meta: &std::fs::Metadata) -> Result<(), String> {
    let name = path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    if meta.is_dir() {
        return Err(format!("{} is a directory: pick a .tar.gz or .tar in it (Tab)", path.display()));
    }
    if !meta.is_file() {
        return Err(format!("{} is not a regular file", path.display()));
    }
    if ![".tar.gz", ".tgz", ".tar"].iter().any(|ext| name.ends_with(ext)) {
        return Err(format!("{name}: an artifact is a .tar.gz, .tgz or .tar"));
    }
    match meta.len() {
        0 => Err(format!("{} is empty", path.display())),
        n if n > MAX_ARTIFACT_BYTES => Err(format!(
            "{} is {} MB; the cockpit uploads at most {} MB (use `ctl deploy --artifact`)",
            path.display(),
            n / (1024 * 1024),
            MAX_ARTIFACT_BYTES / (1024 * 1024)
        )),
        _ => Ok(()),
    }
}

/// One upload for the app: allocate, read, store; the result goes back as an update.
pub(super) async fn session(
    bus: Arc<dyn Bus>,
    source: String,
    operator: Option<Operator>,
    repo: Option<RepoSource>,
    req: UploadRequest,
    updates: mpsc::Sender<Inbound>,
) {
    let result = async {
        let repo = repo.ok_or_else(|| {
            CommandError::Failed("this cockpit has no artifact repository to upload to".into())
        })?;
        let slot =
            allocate(bus.as_ref(), &source, operator, &req.app, &req.version, super::COMMAND_TIMEOUT).await?;
        let data = read_artifact(&req.path).await.map_err(CommandError::BadInput)?;
        let repo = repo.open().await.map_err(CommandError::Failed)?;
        store(repo.as_ref(), &slot.slot, data).await.map_err(CommandError::Failed)
    }
    .await;
    if let Err(err) = &result {
        log::warn!("upload of {} failed: {err}", req.path.display());
    }
    let _ = updates.send(Inbound::Uploaded { path: req.path, result }).await;
}
