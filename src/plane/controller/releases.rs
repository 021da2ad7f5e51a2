//! Releases: recorded where a deploy starts (`record`), kept per app (the newest
//! [`RELEASES_KEPT`]), stored durably in the KV bucket `qd_releases` (one key per app),
//! answered to `ctl.releases`, and rolled back to (`start_rollback`).
//!
//! Durable before acknowledged, as the state is: a command that records a release is
//! answered only once the write is in the bucket (`flushed`). A controller killed between
//! its state and its release write (the command unanswered) records the missing release
//! when it starts again (`recover`).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::{mpsc, watch};

use super::core::Controller;
use super::store::StoreError;
use crate::protocol::clock::now_ms;
use crate::protocol::release::{
    self, Cause, RELEASES_KEPT, RELEASES_MAX_BYTES, Release, ReleaseList, ReleasesRequest, RollbackRequest,
};
use crate::protocol::{AppSpec, ErrorCode, WireError, validate};

pub use crate::protocol::release::BUCKET;

/// Who a release recovered at start is credited to: the command that made it is not
/// known any more.
const RECOVERED_BY: &str = "unknown";

/// Where an app's releases are kept.
#[async_trait]
pub trait ReleaseLog: Send + Sync + 'static {
    /// Every app's releases, as last saved.
    async fn load(&self) -> Result<Vec<(String, Vec<Release>)>, StoreError>;
    /// Replaces `app`'s releases with `releases`.
    async fn save(&self, app: &str, releases: &[Release]) -> Result<(), StoreError>;
}

/// The sandbox's log: the book in memory is the only copy, as the sandbox's state is.
pub struct MemoryLog;

#[async_trait]
impl ReleaseLog for MemoryLog {
    async fn load(&self) -> Result<Vec<(String, Vec<Release>)>, StoreError> {
        Ok(Vec::new())
    }

    async fn save(&self, _app: &str, _releases: &[Release]) -> Result<(), StoreError> {
        Ok(())
    }
}

/// The KV bucket `qd_releases`: the key is the app's name, the value its releases as JSON,
/// oldest first.
pub struct KvLog {
    kv: async_nats::jetstream::kv::Store,
}

impl KvLog {
    /// Opens the bucket, creating it (one value per key, on file) when missing.
    pub async fn open(
        js: &async_nats::jetstream::Context,
        replicas: Option<usize>,
    ) -> Result<KvLog, StoreError> {
        use async_nats::jetstream::{kv, stream};
        let kv = match js.get_key_value(BUCKET).await {
            Ok(kv) => kv,
            Err(_) => js
                .create_key_value(kv::Config {
                    bucket: BUCKET.into(),
                    history: 1,
                    storage: stream::StorageType::File,
                    num_replicas: replicas.unwrap_or(1),
                    ..Default::default()
                })
                .await
                .map_err(|e| StoreError(format!("release bucket: {e}")))?,
        };
        if let Some(n) = replicas {
            crate::bus::replicas::ensure(js, &format!("KV_{BUCKET}"), n).await.map_err(StoreError)?;
        }
        Ok(KvLog { kv })
    }
}

#[async_trait]
impl ReleaseLog for KvLog {
    async fn load(&self) -> Result<Vec<(String, Vec<Release>)>, StoreError> {
        let fail = |what: &str, e: &dyn std::fmt::Display| StoreError(format!("release bucket {what}: {e}"));
        let mut keys = self.kv.keys().await.map_err(|e| fail("keys", &e))?;
        let mut out = Vec::new();
        while let Some(key) = keys.next().await {
            let key = key.map_err(|e| fail("keys", &e))?;
            let Some(value) = self.kv.get(&key).await.map_err(|e| fail("read", &e))? else { continue };
            match serde_json::from_slice::<Vec<Release>>(&value) {
                Ok(list) => out.push((key, list)),
                // One app's unreadable history must not stop the controller: its next
                // release starts a new list, and the log says what was lost.
                Err(e) => log::error!("releases of {key} are unreadable and are dropped: {e}"),
            }
        }
        Ok(out)
    }

    async fn save(&self, app: &str, releases: &[Release]) -> Result<(), StoreError> {
        let value =
            serde_json::to_vec(releases).map_err(|e| StoreError(format!("releases of {app}: {e}")))?;
        self.kv.put(app, Bytes::from(value)).await.map_err(|e| StoreError(format!("release write: {e}")))?;
        Ok(())
    }
}

/// One app's releases to write, and the ticket that says it was.
struct Write {
    app: String,
    releases: Vec<Release>,
    ticket: u64,
}

#[derive(Default)]
struct Books {
    apps: BTreeMap<String, Vec<Release>>,
    /// The ticket of the newest write asked for.
    asked: u64,
}

/// Every app's releases, in memory, with a queue of writes to the log.
pub(crate) struct Book {
    log: Arc<dyn ReleaseLog>,
    books: Mutex<Books>,
    queue: mpsc::UnboundedSender<Write>,
    pending: Mutex<Option<mpsc::UnboundedReceiver<Write>>>,
    /// The ticket of the newest write that is in the log.
    written: watch::Sender<u64>,
}

impl Book {
    pub(crate) fn new(log: Arc<dyn ReleaseLog>) -> Book {
        let (queue, pending) = mpsc::unbounded_channel();
        Book {
            log,
            books: Mutex::new(Books::default()),
            queue,
            pending: Mutex::new(Some(pending)),
            written: watch::channel(0).0,
        }
    }

    fn books(&self) -> std::sync::MutexGuard<'_, Books> {
        self.books.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Changes `app`'s releases and queues their write; the change's result.
    fn change<R>(&self, app: &str, f: impl FnOnce(&mut Vec<Release>) -> R) -> R {
        let mut books = self.books();
        let list = books.apps.entry(app.to_string()).or_default();
        let out = f(list);
        let releases = list.clone();
        books.asked += 1;
        let ticket = books.asked;
        // The receiver lives as long as the controller's tasks; once they are stopped
        // nothing waits for the write either.
        let _ = self.queue.send(Write { app: app.to_string(), releases, ticket });
        out
    }

    pub(crate) fn list(&self, app: &str) -> Vec<Release> {
        self.books().apps.get(app).cloned().unwrap_or_default()
    }

    /// The ticket of the newest write asked for: `flushed` of it waits for every release
    /// recorded so far.
    pub(crate) fn asked(&self) -> u64 {
        self.books().asked
    }

    /// Waits until write `ticket` (and every one before it) is in the log, at most
    /// `within`; whether it is.
    pub(crate) async fn flushed(&self, ticket: u64, within: Duration) -> bool {
        let mut written = self.written.subscribe();
        let reached = written.wait_for(|w| *w >= ticket);
        matches!(tokio::time::timeout(within, reached).await, Ok(Ok(_)))
    }
}

/// Appends `release` to `list` as the next number, dropping the oldest past
/// [`RELEASES_KEPT`], and past [`RELEASES_MAX_BYTES`] of JSON (big specs: one app's
/// releases are one KV value and one answer, each within the bus's max_payload); the
/// number given. The newest is always kept.
fn append(list: &mut Vec<Release>, mut release: Release) -> u64 {
    release.number = list.last().map_or(1, |r| r.number + 1);
    let number = release.number;
    list.push(release);
    let excess = list.len().saturating_sub(RELEASES_KEPT);
    list.drain(..excess);
    while list.len() > 1 && serde_json::to_vec(list).map_or(0, |b| b.len()) > RELEASES_MAX_BYTES {
        list.remove(0);
    }
    number
}

/// Tries of one write before it is given up (about 10 s): the commands behind it must not
/// wait for ever on a write the bucket refuses.
const WRITE_TRIES: u32 = 20;

/// Records a release of `app` as it is now asked for: the one place a release is made
/// (a deploy, a rollback, and a scale or env change as they are deploys or commit a new
/// spec). Its number.
pub(crate) fn record(
    ctl: &Controller,
    app: &AppSpec,
    who: &str,
    operation_id: Option<&str>,
    cause: Cause,
) -> u64 {
    let release = Release {
        number: 0,
        spec: Release::spec_of(app),
        who: who.to_string(),
        when: now_ms(),
        operation_id: operation_id.map(str::to_string),
        cause,
    };
    ctl.releases().change(&app.name, |list| append(list, release))
}

/// The deploy of `operation_id` pinned its image to a digest: its release says which.
pub(crate) fn pinned(ctl: &Controller, operation_id: &str, app: &AppSpec) {
    let digest = app.digest.clone();
    let known = ctl.releases().books().apps.get(&app.name).is_some_and(|list| {
        list.iter().any(|r| r.operation_id.as_deref() == Some(operation_id) && r.spec.digest != digest)
    });
    if known {
        ctl.releases().change(&app.name, |list| {
            for r in list.iter_mut().filter(|r| r.operation_id.as_deref() == Some(operation_id)) {
                r.spec.digest = digest.clone();
            }
        });
    }
}

/// Loads every app's releases, starts the writer, and records a release for each app whose
/// spec no release holds (its release write was lost with a killed controller, or the app
/// is older than releases). Before any command is served.
pub(crate) async fn start(ctl: &Controller) -> Result<(), StoreError> {
    let book = ctl.releases();
    let loaded = book.log.load().await?;
    book.books().apps = loaded.into_iter().collect();
    let pending = book.pending.lock().unwrap_or_else(|p| p.into_inner()).take();
    if let Some(pending) = pending {
        ctl.spawn(write_all(ctl.clone(), pending));
    }
    recover(ctl);
    Ok(())
}

fn recover(ctl: &Controller) {
    let apps: Vec<AppSpec> = ctl.read(|core| core.fleet.apps.values().cloned().collect());
    for app in apps {
        let list = ctl.releases().list(&app.name);
        if list.iter().any(|r| r.matches(&app)) {
            continue;
        }
        let number = record(ctl, &app, RECOVERED_BY, None, Cause::Deploy);
        log::warn!("{}: no release held its spec; recorded it as release {number}", app.name);
    }
}

/// Writes queued releases in order, each until it is in the log: a command's answer
/// waits for its write, so none is given up on.
async fn write_all(ctl: Controller, mut pending: mpsc::UnboundedReceiver<Write>) {
    while let Some(write) = pending.recv().await {
        for attempt in 1..=WRITE_TRIES {
            // A fenced controller may have been superseded: its view is not the truth.
            ctl.unfenced().await;
            match ctl.releases().log.save(&write.app, &write.releases).await {
                Ok(()) => break,
                Err(e) if attempt == WRITE_TRIES => {
                    log::error!(
                        "releases of {} not saved after {attempt} tries, kept in memory only: {e}",
                        write.app
                    );
                }
                Err(e) => {
                    log::warn!("releases of {}: {e}; trying again", write.app);
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
        ctl.releases().written.send_replace(write.ticket);
    }
}

/// The answer to `ctl.releases`.
pub(crate) fn answer(ctl: &Controller, req: ReleasesRequest) -> Result<ReleaseList, WireError> {
    validate::name("app", &req.app).map_err(WireError::bad_request)?;
    let releases = ctl.releases().list(&req.app);
    let app = ctl.read(|core| core.fleet.apps.get(&req.app).cloned());
    if releases.is_empty() && app.is_none() {
        return Err(WireError::new(ErrorCode::NotFound, format!("no app {} and no releases of it", req.app)));
    }
    let current = app.and_then(|a| release::current(&releases, &a).map(|r| r.number));
    Ok(ReleaseList { app: req.app, current, releases })
}

/// What a rollback goes back to: the release asked for (by default the one before the
/// current one), refused when it is unknown or is what runs now. The app as it is now,
/// and the release.
pub(crate) fn target(ctl: &Controller, req: &RollbackRequest) -> Result<(AppSpec, Release), WireError> {
    validate::name("app", &req.app).map_err(WireError::bad_request)?;
    let Some(app) = ctl.read(|core| core.fleet.apps.get(&req.app).cloned()) else {
        return Err(WireError::new(ErrorCode::NotFound, format!("no app {}", req.app)));
    };
    let list = ctl.releases().list(&req.app);
    let current = release::current(&list, &app).map(|r| r.number);
    let (Some(first), Some(last)) = (list.first(), list.last()) else {
        return Err(WireError::new(ErrorCode::NotFound, format!("{} has no releases", req.app)));
    };
    let kept = format!("releases {} to {} are kept", first.number, last.number);
    let wanted = match req.release {
        Some(n) => n,
        None => match list.iter().rev().find(|r| Some(r.number) < current) {
            Some(r) => r.number,
            None => {
                return Err(WireError::new(
                    ErrorCode::NotFound,
                    format!("{} has no release before the current one ({kept})", req.app),
                ));
            }
        },
    };
    let Some(release) = list.iter().find(|r| r.number == wanted).cloned() else {
        return Err(WireError::new(
            ErrorCode::NotFound,
            format!("{} has no release {wanted} ({kept})", req.app),
        ));
    };
    if release.matches(&app) {
        let now = current.map(|c| format!(" (release {c})")).unwrap_or_default();
        return Err(WireError::new(
            ErrorCode::Conflict,
            format!("{} already runs release {wanted}'s spec{now}: nothing to roll back", req.app),
        ));
    }
    Ok((app, release))
}

/// Whether the artifact release `r` names is still in the repository with its checksum;
/// why not. Asked before the rollback is decided, so a missing artifact is refused up
/// front rather than failing the operation.
pub(crate) async fn artifact_missing(ctl: &Controller, r: &Release) -> Option<String> {
    let art = r.spec.run.artifact.as_ref()?;
    let Some(repo) = ctl.repository() else {
        return Some(format!(
            "release {} needs artifact {}, and this controller has no repository",
            r.number, art.name
        ));
    };
    match repo.info(&art.name).await {
        Ok(Some(found)) if found.sha256 == art.sha256 => None,
        Ok(Some(found)) => Some(format!(
            "release {}'s artifact {} is no longer in the repository: the slot now holds sha256 {}, not {}",
            r.number,
            art.name,
            short(&found.sha256),
            short(&art.sha256)
        )),
        Ok(None) => {
            Some(format!("release {}'s artifact {} is no longer in the repository", r.number, art.name))
        }
        Err(e) => Some(format!("cannot check release {}'s artifact {}: {e}", r.number, art.name)),
    }
}

fn short(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}

/// The result of [`artifact_missing`] for one release of one app, checked before the
/// command was handled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ArtifactCheck {
    pub app: String,
    pub release: u64,
    pub missing: Option<String>,
}

/// The artifact check for a rollback request, when it names a release that can be
/// rolled back to; `None` for anything else (its refusal comes from `target`).
pub(crate) async fn precheck(ctl: &Controller, payload: &[u8]) -> Option<ArtifactCheck> {
    let req = crate::protocol::decode::<RollbackRequest>(payload).ok()?.body;
    let (_, r) = target(ctl, &req).ok()?;
    let missing = artifact_missing(ctl, &r).await;
    Some(ArtifactCheck { app: req.app, release: r.number, missing })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Constraints;

    fn release(version: &str) -> Release {
        Release {
            number: 0,
            spec: AppSpec {
                name: "shop".into(),
                version: version.into(),
                instances: 1,
                image: "nginx".into(),
                port: 80,
                constraints: Constraints::default(),
                domain: "shop.local".into(),
                tags: vec![],
                run: Default::default(),
                shortfall: None,
                digest: None,
            },
            who: "ana".into(),
            when: 0,
            operation_id: None,
            cause: Cause::Deploy,
        }
    }

    #[test]
    fn releases_are_numbered_on_and_the_newest_fifty_kept() {
        let mut list = Vec::new();
        assert_eq!(append(&mut list, release("1")), 1);
        assert_eq!(append(&mut list, release("2")), 2);
        for n in 3..=RELEASES_KEPT as u64 {
            assert_eq!(append(&mut list, release(&n.to_string())), n);
        }
        assert_eq!(list.len(), RELEASES_KEPT);
        assert_eq!(list[0].number, 1);
        // The 51st pushes out the first; numbers are never reused.
        assert_eq!(append(&mut list, release("51")), 51);
        assert_eq!(list.len(), RELEASES_KEPT);
        assert_eq!(list.first().map(|r| r.number), Some(2));
        assert_eq!(list.last().map(|r| (r.number, r.spec.version.as_str())), Some((51, "51")));
        for _ in 0..10 {
            append(&mut list, release("x"));
        }
        assert_eq!(list.len(), RELEASES_KEPT);
        assert_eq!(list.first().map(|r| r.number), Some(12));
        assert!(list.windows(2).all(|w| w[1].number == w[0].number + 1));
    }

    /// A release log whose saves wait until it is opened.
    struct Gated {
        open: watch::Receiver<bool>,
        saved: Mutex<Vec<(String, Vec<Release>)>>,
    }

    #[async_trait]
    impl ReleaseLog for Gated {
        async fn load(&self) -> Result<Vec<(String, Vec<Release>)>, StoreError> {
            Ok(Vec::new())
        }
        async fn save(&self, app: &str, releases: &[Release]) -> Result<(), StoreError> {
            let mut open = self.open.clone();
            let _ = open.wait_for(|o| *o).await;
            self.saved.lock().unwrap_or_else(|p| p.into_inner()).push((app.to_string(), releases.to_vec()));
            Ok(())
        }
    }

    /// The memory store, with the gated release log.
    struct GatedStore(super::super::store::MemoryStore, Arc<Gated>);

    #[async_trait]
    impl super::super::store::Store for GatedStore {
        async fn load(&self) -> Result<crate::protocol::Fleet, StoreError> {
            self.0.load().await
        }
        async fn commit(
            &self,
            batch: &[super::super::store::Outgoing],
        ) -> Result<(), super::super::store::CommitError> {
            self.0.commit(batch).await
        }
        async fn history(
            &self,
            since_ts: u64,
            limit: usize,
        ) -> Result<Vec<crate::protocol::Event>, StoreError> {
            self.0.history(since_ts, limit).await
        }
        fn releases(&self) -> Arc<dyn ReleaseLog> {
            self.1.clone()
        }
    }

    /// Durable before acknowledged: a deploy is answered only once its release is saved.
    #[tokio::test]
    async fn a_deploy_is_answered_only_once_its_release_is_saved() {
        use crate::bus::{Bus, LocalBus, RequestError};
        use crate::protocol::subjects::CtlVerb;
        use crate::protocol::{Accepted, DeployRequest, Envelope};
        let bus: Arc<dyn Bus> = Arc::new(LocalBus::new());
        let (open, gate) = watch::channel(false);
        let log = Arc::new(Gated { open: gate, saved: Mutex::new(Vec::new()) });
        let store = Arc::new(GatedStore(super::super::store::MemoryStore::new(bus.clone()), log.clone()));
        let config = super::super::ControllerConfig::default();
        let ctl = Controller::start(bus.clone(), config, crate::protocol::Fleet::default(), store, None)
            .await
            .expect("controller");
        let req = DeployRequest {
            app: "web".into(),
            version: "1".into(),
            instances: 1,
            image: Some("nginx:1.27".into()),
            port: Some(80),
            ..DeployRequest::default()
        };
        let env = Envelope::with_id("deploy-1".to_string(), "test", req);
        // Held: whatever the wait, no answer comes while the release is not saved.
        let held: Result<Accepted, RequestError> =
            crate::bus::command(bus.as_ref(), CtlVerb::Deploy, &env, Duration::from_millis(500)).await;
        assert!(held.is_err(), "answered before its release was saved: {held:?}");
        assert!(log.saved.lock().unwrap_or_else(|p| p.into_inner()).is_empty());
        // Saved: the same command is answered.
        open.send_replace(true);
        let answered: Result<Accepted, RequestError> =
            crate::bus::command(bus.as_ref(), CtlVerb::Deploy, &env, Duration::from_secs(30)).await;
        assert!(answered.is_ok(), "{answered:?}");
        let saved = log.saved.lock().unwrap_or_else(|p| p.into_inner()).clone();
        assert_eq!(saved.first().map(|(app, list)| (app.as_str(), list.len())), Some(("web", 1)));
        assert_eq!(ctl.releases().list("web")[0].cause, Cause::Deploy);
        ctl.stop().await;
    }

    #[test]
    fn big_releases_give_way_to_the_byte_bound_the_newest_always_kept() {
        let big = |version: &str| {
            let mut r = release(version);
            r.spec.tags = vec!["x".repeat(60_000)];
            r
        };
        let mut list = Vec::new();
        for n in 1..=20u64 {
            assert_eq!(append(&mut list, big(&n.to_string())), n);
        }
        let bytes = serde_json::to_vec(&list).map(|b| b.len()).unwrap_or(usize::MAX);
        assert!(bytes <= RELEASES_MAX_BYTES, "{bytes}");
        assert!(list.len() < 20 && list.len() >= 8, "{}", list.len());
        assert_eq!(list.last().map(|r| r.number), Some(20));
        // One release past the bound alone is still kept.
        let mut huge = release("h");
        huge.spec.tags = vec!["x".repeat(RELEASES_MAX_BYTES)];
        assert_eq!(append(&mut list, huge), 21);
        assert_eq!(list.iter().map(|r| r.number).collect::<Vec<_>>(), vec![21]);
    }

    #[tokio::test]
    async fn a_write_is_flushed_only_once_the_writer_has_saved_it() {
        let book = Book::new(Arc::new(MemoryLog));
        let ticket = book.change("shop", |list| append(list, release("1")));
        assert_eq!(ticket, 1);
        assert_eq!(book.asked(), 1);
        assert!(!book.flushed(1, Duration::from_millis(20)).await, "nothing wrote it yet");
        book.written.send_replace(1);
        assert!(book.flushed(1, Duration::from_millis(20)).await);
        assert_eq!(book.list("shop").len(), 1);
    }
}
