//! The artifact store `qd_artifacts` with roles on (issue 15, hardening): anyone could read
//! and overwrite artifacts. It is written by an operator's upload (`ctl deploy --artifact`:
//! `ALLOCATE_REPOSITORY_REQUEST`, then the bytes into the slot) and read by agents; a
//! viewer neither reads nor writes it, an agent cannot write or delete, and an operator
//! cannot reconfigure the bucket (its retention would drop every app's artifacts).

use bytes::Bytes;
use quarterdeck::backend::upload;
use quarterdeck::bus::Bus;
use quarterdeck::repository::{BUCKET, ObjectStoreRepository, Repository};

use crate::nats_support::{
    Mode, Plane, PlaneConfig, WAIT, check, connect_as, ctl_as, deploy_args, eventually,
};

/// The plane with roles on (sim agents: these tests claim nothing about Docker).
fn role_plane(test: &str) -> Option<Plane> {
    Plane::start(test, PlaneConfig { mode: Mode::Roles, ..PlaneConfig::default() })
}

/// The server logged a publish violation on a subject starting with `prefix`.
fn publish_refused(plane: &Plane, prefix: &str) -> Result<(), String> {
    let wanted = format!("Publish Violation - Subject \"{prefix}");
    check(plane.nats.log().contains(&wanted), || format!("no {wanted:?} in the server's log"))
}

#[test]
fn nats_artifacts_scope_operators_upload_agents_read_and_nobody_else_touches_the_store() {
    let test = "nats_artifacts_scope_operators_upload_agents_read_and_nobody_else_touches_the_store";
    let Some(plane) = role_plane(test) else { return };
    let tarball = crate::docker_support::site(&[("index.html", "<h1>v1</h1>")]);
    let file = plane.nats.dir().join("web.tar.gz");
    std::fs::write(&file, &tarball).expect("artifact");
    let mut args = deploy_args("web", "1.0.0", "1");
    args.extend(["--artifact", file.to_str().expect("utf-8 path")]);
    let out = ctl_as(&plane.nats, "operator/alice", &args);
    let said = format!("{}{}", out.stdout, out.stderr);
    assert!(out.ok(), "alice's upload and deploy: {said}");
    assert!(said.contains("to web@1.0.0"), "the upload went into its slot: {said}");
    let slot = "web@1.0.0";

    crate::nats_support::block_on(async {
        // An agent reads it, and can neither overwrite nor delete it.
        let h1 = connect_as(&plane.nats, "agent/h1").await;
        let repo = ObjectStoreRepository::open(&h1).await.expect("the agent opens the store");
        assert_eq!(repo.get(slot).await.expect("the agent reads"), Bytes::from(tarball.clone()));
        let overwrite = repo.put(slot, Bytes::from_static(b"not a tarball")).await;
        assert!(overwrite.is_err(), "the agent overwrote {slot}");
        let store = h1.jetstream().get_object_store(BUCKET).await.expect("the bucket");
        assert!(store.delete(slot).await.is_err(), "the agent deleted {slot}");
        assert_eq!(repo.get(slot).await.expect("still there"), Bytes::from(tarball.clone()), "unchanged");

        // A viewer cannot even open it, and a write by hand is refused.
        let carol = connect_as(&plane.nats, "viewer/carol").await;
        assert!(ObjectStoreRepository::open(&carol).await.is_err(), "the viewer opened the store");
        let _ = carol.subscribe(&format!("$O.{BUCKET}.>")).await;
        let _ = carol.publish(&format!("$O.{BUCKET}.C.forged"), Bytes::from_static(b"x")).await;
        let _ = carol.flush().await;

        // An operator uploads, but does not reconfigure the bucket: a max_age (here ten
        // minutes, a valid change the server would take) would drop every app's artifacts.
        let alice = connect_as(&plane.nats, "operator/alice").await;
        let js = alice.jetstream();
        let mut stream = js.get_stream(format!("OBJ_{BUCKET}")).await.expect("alice reads the bucket");
        let mut config = stream.info().await.expect("its config").config.clone();
        config.max_age = std::time::Duration::from_secs(600);
        let update = js.update_stream(config).await;
        assert!(update.is_err(), "alice reconfigured the bucket: {update:?}");
        assert_eq!(repo.get(slot).await.expect("still there"), Bytes::from(tarball.clone()), "unchanged");
        // Her upload path may replace a slot's bytes (the old chunks purged), which the
        // agent then reads.
        let rebuilt = Bytes::from(crate::docker_support::site(&[("index.html", "<h1>v1, rebuilt</h1>")]));
        let alices = ObjectStoreRepository::open(&alice).await.expect("alice opens the store");
        let done = upload::store(&alices, slot, rebuilt.clone()).await.expect("alice re-uploads");
        assert!(!done.already_there, "{done:?}");
        assert_eq!(repo.get(slot).await.expect("the agent reads"), rebuilt);
    });
    eventually(WAIT, "the server refused the agent's writes and the viewer's reads and writes", || {
        publish_refused(&plane, &format!("$O.{BUCKET}.C."))?;
        publish_refused(&plane, &format!("$O.{BUCKET}.M."))?;
        publish_refused(&plane, &format!("$JS.API.STREAM.INFO.OBJ_{BUCKET}"))?;
        publish_refused(&plane, &format!("$O.{BUCKET}.C.forged"))?;
        publish_refused(&plane, &format!("$JS.API.STREAM.UPDATE.OBJ_{BUCKET}"))?;
        plane.nats.violation("Subscription", &format!("$O.{BUCKET}.>"))
    });
    // The store still serves the deploy path: a second version uploads and deploys.
    std::fs::write(&file, crate::docker_support::site(&[("index.html", "<h1>v2</h1>")])).expect("artifact");
    let mut args = deploy_args("web", "2.0.0", "1");
    args.extend(["--artifact", file.to_str().expect("utf-8 path")]);
    let out = ctl_as(&plane.nats, "operator/alice", &args);
    assert!(out.ok(), "the next upload: {out}");
}

/// App `shop`@`web-1.0` and app `shop-web`@`1.0` were given one slot (`shop-web-1.0`), so
/// the upload path of one replaced the other's artifact. Each app's version has a slot of
/// its own, and each keeps its bytes.
#[test]
fn nats_artifacts_scope_one_apps_upload_never_lands_in_another_apps_slot() {
    use quarterdeck::repository::slot;
    let test = "nats_artifacts_scope_one_apps_upload_never_lands_in_another_apps_slot";
    let Some(plane) = role_plane(test) else { return };
    let mut uploaded = Vec::new();
    for (app, version) in [("shop-web", "1.0"), ("shop", "web-1.0")] {
        let bytes = crate::docker_support::site(&[("index.html", &format!("<h1>{app}</h1>"))]);
        let file = plane.nats.dir().join(format!("{app}.tar.gz"));
        std::fs::write(&file, &bytes).expect("artifact");
        let mut args = deploy_args(app, version, "1");
        args.extend(["--artifact", file.to_str().expect("utf-8 path")]);
        let out = ctl_as(&plane.nats, "operator/alice", &args);
        assert!(out.ok(), "{app}@{version}: {out}");
        uploaded.push((slot(app, version), bytes));
    }
    crate::nats_support::block_on(async {
        let h1 = connect_as(&plane.nats, "agent/h1").await;
        let repo = ObjectStoreRepository::open(&h1).await.expect("the agent opens the store");
        for (slot, bytes) in &uploaded {
            assert_eq!(repo.get(slot).await.expect("the agent reads"), Bytes::from(bytes.clone()), "{slot}");
        }
    });
}
