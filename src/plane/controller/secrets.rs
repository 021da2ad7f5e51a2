//! `secret.set`: a secret's new value is written to the `qd_secrets` bucket as the next
//! version, and the app is deployed again (same version, same count) with the new
//! `SecretRef`, through the one deploy path, so it is a release like any other change.
//! The value lives only in this command's body and in the bucket: the spec, the events,
//! the audit record (`audit::redacted`) and every message carry the reference.
//!
//! The value is in the bucket before anything names it: the request loop writes it
//! ([`prewrite`], a round trip) before the command is decided, and only then does the
//! handler commit the spec. A controller killed in between leaves at most a version that
//! no spec names, never a spec naming a version that was not stored.

use bytes::Bytes;

use super::commands::{answered_before, start_deploy};
use super::core::Controller;
use crate::protocol::{
    Accepted, AppSpec, DeployRequest, Envelope, ErrorCode, RunPatch, SecretSetRequest, Strategy, WireError,
    decode, validate,
};
use crate::secrets::{Secrets, VERSIONS_KEPT, secret_ref};

/// A secret's value as the request loop wrote it, before its command was decided.
pub(crate) struct Written {
    app: String,
    name: String,
    version: u64,
    sha8: String,
    /// The write's error, if it failed (it names the key at most, never the value).
    outcome: Result<(), String>,
}

/// What a `secret.set` would change: checked the same way before the write and when the
/// command is decided, so both agree on the version.
struct Plan {
    store: Secrets,
    existing: AppSpec,
    version: u64,
}

fn plan(ctl: &Controller, req: &SecretSetRequest) -> Result<Plan, WireError> {
    let SecretSetRequest { app, name, value } = req;
    validate::name("app", app).map_err(WireError::bad_request)?;
    validate::env_name("secret", name).map_err(WireError::bad_request)?;
    validate::secret_value(name, value).map_err(WireError::bad_request)?;
    let Some(store) = ctl.secrets() else {
        return Err(WireError::new(ErrorCode::Unavailable, "this controller has no secret store"));
    };
    let Some(existing) = ctl.read(|core| core.fleet.apps.get(app).cloned()) else {
        return Err(WireError::not_found(format!("no app {app}: deploy it before setting its secrets")));
    };
    if existing.run.env.contains_key(name) {
        return Err(WireError::bad_request(format!(
            "{name} is an env variable of {app}: unset it first (`ctl env unset {app} {name}`)"
        )));
    }
    // The next version after the one the fleet names.
    let version = existing.run.secrets.get(name).map_or(0, |r| r.version) + 1;
    Ok(Plan { store, existing, version })
}

/// Writes the value of a `secret.set` to the bucket under the version the fleet makes
/// next. Nothing is written for a command the handler will refuse anyway (malformed, late,
/// invalid) nor for a repeat of one already decided: the repeat is answered as the first.
///
/// A command refused after the write (its app busy, ...) leaves that version in the
/// bucket unused: harmless, since no spec names it and the next `secret.set` of that name
/// writes the same key again.
pub(super) async fn prewrite(ctl: &Controller, payload: &[u8]) -> Option<Written> {
    let envelope: Envelope<SecretSetRequest> = decode(payload).ok()?;
    envelope.check_deadline(crate::protocol::clock::now_ms()).ok()?;
    validate::command_id(&envelope.id).ok()?;
    if answered_before(ctl, &envelope.id).is_some() {
        return None;
    }
    let req = envelope.body;
    let Plan { store, version, .. } = plan(ctl, &req).ok()?;
    let sha8 = secret_ref(req.value.as_bytes(), version).sha8;
    let value = Bytes::from(req.value.into_bytes());
    let outcome = store.0.put(&req.app, &req.name, version, value).await.map_err(|e| e.to_string());
    Some(Written { app: req.app, name: req.name, version, sha8, outcome })
}

pub(super) fn start_secret_set(
    ctl: &Controller,
    req: SecretSetRequest,
    command_id: &str,
    user: &str,
    written: Option<Written>,
) -> Result<Accepted, WireError> {
    let Plan { store, existing, version } = plan(ctl, &req)?;
    let SecretSetRequest { app, name, value } = req;
    let reference = secret_ref(value.as_bytes(), version);
    // Only a write of exactly this value as exactly this version lets a spec name it.
    let written = written
        .filter(|w| w.app == app && w.name == name && w.version == version && w.sha8 == reference.sha8);
    match written.map(|w| w.outcome) {
        Some(Ok(())) => {}
        Some(Err(why)) => {
            return Err(WireError::new(
                ErrorCode::Unavailable,
                format!("the value of {name} v{version} could not be stored, nothing changed: {why}"),
            ));
        }
        None => {
            return Err(WireError::new(
                ErrorCode::Unavailable,
                format!(
                    "the value of {name} v{version} was not stored before the command was decided; try again"
                ),
            ));
        }
    }
    let mut secrets = existing.run.secrets.clone();
    secrets.insert(name.clone(), reference);
    let deploy = DeployRequest {
        app: app.clone(),
        version: existing.version.clone(),
        instances: existing.instances,
        image: None,
        port: None,
        constraints: None,
        domain: None,
        tags: None,
        run: Some(RunPatch { secrets: Some(secrets), ..RunPatch::default() }),
        strategy: Strategy::Rolling,
    };
    let accepted = start_deploy(ctl, deploy, command_id, user)?;
    // Versions a rollback could still name are kept; the ones past them go, once the new
    // one is named.
    if version > VERSIONS_KEPT {
        ctl.spawn(async move {
            if let Err(e) = store.0.delete(&app, &name, version - VERSIONS_KEPT).await {
                log::warn!("{app}: could not delete an old version of a secret: {e}");
            }
        });
    }
    Ok(accepted)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use async_trait::async_trait;
    use bytes::Bytes;
    use tokio::sync::watch;

    use crate::bus::{Bus, LocalBus, RequestError};
    use crate::plane::controller::store::MemoryStore;
    use crate::plane::controller::{Controller, ControllerConfig};
    use crate::protocol::subjects::CtlVerb;
    use crate::protocol::{Accepted, AppSpec, Envelope, ErrorCode, Fleet, SecretRef, SecretSetRequest};
    use crate::secrets::{MemorySecrets, SecretError, SecretStore, Secrets, secret_ref};

    /// A store whose writes wait until `open` turns true, or fail while `broken`.
    struct Held {
        inner: MemorySecrets,
        open: watch::Receiver<bool>,
        broken: bool,
        puts: AtomicUsize,
    }

    #[async_trait]
    impl SecretStore for Held {
        async fn put(&self, app: &str, name: &str, version: u64, value: Bytes) -> Result<(), SecretError> {
            self.puts.fetch_add(1, Ordering::SeqCst);
            if self.broken {
                return Err(SecretError::Other(format!("cannot write {name} v{version}: no responders")));
            }
            let mut open = self.open.clone();
            open.wait_for(|o| *o).await.map_err(|e| SecretError::Other(e.to_string()))?;
            self.inner.put(app, name, version, value).await
        }
        async fn get(&self, app: &str, name: &str, version: u64) -> Result<Option<Bytes>, SecretError> {
            self.inner.get(app, name, version).await
        }
        async fn delete(&self, app: &str, name: &str, version: u64) -> Result<(), SecretError> {
            self.inner.delete(app, name, version).await
        }
    }

    fn fleet() -> Fleet {
        let mut f = Fleet::default();
        let app = AppSpec::for_test("web", 1, 0.5);
        f.apps.insert("web".into(), app);
        f
    }

    async fn controller(bus: Arc<dyn Bus>, store: Arc<Held>) -> crate::plane::controller::ControllerHandle {
        let state = Arc::new(MemoryStore::new(bus.clone()));
        Controller::start_with_secrets(
            bus,
            ControllerConfig::default(),
            fleet(),
            state,
            None,
            Some(Secrets(store)),
        )
        .await
        .expect("controller")
    }

    fn named(ctl: &Controller) -> Option<SecretRef> {
        ctl.read(|core| core.fleet.apps.get("web").and_then(|a| a.run.secrets.get("DB_PASS").cloned()))
    }

    /// Whether a release of web names its secret.
    fn released(ctl: &Controller) -> bool {
        ctl.releases().list("web").iter().any(|r| r.spec.run.secrets.contains_key("DB_PASS"))
    }

    fn set(id: &str) -> Envelope<SecretSetRequest> {
        let req = SecretSetRequest { app: "web".into(), name: "DB_PASS".into(), value: "hunter2".into() };
        Envelope::with_id(id.to_string(), "test", req)
    }

    /// The crash window: while the value is not yet in the bucket no spec names its
    /// version and the command is not answered; once it is, both follow, and a repeat of
    /// the command writes nothing again.
    #[tokio::test]
    async fn no_spec_names_a_secret_version_before_its_value_is_stored() {
        let bus: Arc<dyn Bus> = Arc::new(LocalBus::new());
        let (open, gate) = watch::channel(false);
        let held =
            Arc::new(Held { inner: MemorySecrets::default(), open: gate, broken: false, puts: 0.into() });
        let ctl = controller(bus.clone(), held.clone()).await;
        let env = set("secret-1");
        let sender = bus.clone();
        let sent = env.clone();
        let mut first = tokio::spawn(async move {
            crate::bus::command::<_, Accepted>(
                sender.as_ref(),
                CtlVerb::SecretSet,
                &sent,
                Duration::from_secs(60),
            )
            .await
        });
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while held.puts.load(Ordering::SeqCst) == 0 {
            assert!(tokio::time::Instant::now() < deadline, "the value was never written");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(named(&ctl), None, "the spec names a version not stored yet");
        assert!(!released(&ctl), "a release names it");
        let early = tokio::time::timeout(Duration::from_millis(500), &mut first).await;
        assert!(early.is_err(), "answered before the value was stored: {early:?}");
        assert_eq!(named(&ctl), None, "the spec names a version not stored yet");

        open.send_replace(true);
        let answered = first.await.expect("the sender");
        let accepted = answered.expect("accepted once stored");
        assert!(accepted.operation_id.is_some());
        let want = secret_ref(b"hunter2", 1);
        // The deploy itself fails here (no host), which puts the spec back: the release
        // recorded where it started is what it committed.
        let releases = ctl.releases().list("web");
        let committed = releases.last().and_then(|r| r.spec.run.secrets.get("DB_PASS").cloned());
        assert_eq!(committed, Some(want.clone()));
        let stored = held.inner.get("web", "DB_PASS", 1).await.expect("read");
        assert_eq!(stored.as_deref(), Some(&b"hunter2"[..]));
        // The same command again (a client's retry) is answered as the first, writing nothing.
        let again: Result<Accepted, RequestError> =
            crate::bus::command(bus.as_ref(), CtlVerb::SecretSet, &env, Duration::from_secs(30)).await;
        assert_eq!(again.map(|a| a.operation_id).ok(), Some(accepted.operation_id));
        assert_eq!(held.puts.load(Ordering::SeqCst), 1, "a repeated command id wrote again");
        ctl.stop().await;
    }

    /// A write that fails: refused as `unavailable` with the reason, nothing committed.
    #[tokio::test]
    async fn a_failed_write_is_refused_as_unavailable_and_commits_nothing() {
        let bus: Arc<dyn Bus> = Arc::new(LocalBus::new());
        let (_open, gate) = watch::channel(true);
        let held =
            Arc::new(Held { inner: MemorySecrets::default(), open: gate, broken: true, puts: 0.into() });
        let ctl = controller(bus.clone(), held.clone()).await;
        let (rev, ops) = ctl.read(|core| (core.fleet.revision, core.fleet.operations.len()));
        let refused: Result<Accepted, RequestError> =
            crate::bus::command(bus.as_ref(), CtlVerb::SecretSet, &set("secret-2"), Duration::from_secs(30))
                .await;
        let Err(RequestError::Refused(e)) = refused else { panic!("not refused: {refused:?}") };
        assert_eq!(e.code, ErrorCode::Unavailable, "{e:?}");
        assert!(e.reason.contains("DB_PASS v1") && e.reason.contains("no responders"), "{}", e.reason);
        assert!(!e.reason.contains("hunter2"), "{}", e.reason);
        assert_eq!(named(&ctl), None);
        assert!(!released(&ctl));
        assert_eq!(ctl.read(|core| core.fleet.operations.len()), ops, "an operation started");
        // Only the audit record of the refusal may follow.
        assert!(ctl.read(|core| core.fleet.revision) <= rev + 1);
        ctl.stop().await;
    }
}
