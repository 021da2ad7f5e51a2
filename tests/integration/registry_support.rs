//! A real Docker registry for the tests of images pulled from one: Debian's
//! `docker-registry` (distribution 2.8), started by the test on a free port of 127.0.0.1
//! (which dockerd trusts as an insecure registry by default), its storage in a temp dir.
//! Images are made from the test image with a layer of their own (random bytes, so a
//! pull has something to fetch), pushed, and removed locally. Dropping the guard stops the
//! registry and removes every local image of its address, which no other test uses: start
//! the registry before the stack, so the stack's containers are gone by then.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::docker_support::{docker, image};
use crate::nats_support::{eventually, unique_dir};
use crate::stack_support::free_port;

/// `QD_REGISTRY` (set by ./scripts/test): the registry binary. Without it a test skips and
/// says why, unless `CI=true`, where it fails.
pub fn registry_bin(test: &str) -> Option<String> {
    match std::env::var("QD_REGISTRY").ok().filter(|v| !v.is_empty()) {
        Some(p) => Some(p),
        None if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("CI=true but QD_REGISTRY is not set: run ./scripts/test")
        }
        None => {
            eprintln!("skipped: {test}: no docker-registry (QD_REGISTRY unset; run ./scripts/test)");
            None
        }
    }
}

/// Marks the containers `build` makes, for a moment, to commit its layer.
const BUILD_LABEL: &str = "quarterdeck.registry-build=1";

pub struct Registry {
    child: Child,
    dir: PathBuf,
    /// `127.0.0.1:PORT`.
    pub addr: String,
}

impl Registry {
    pub fn start(test: &str) -> Option<Registry> {
        let bin = registry_bin(test)?;
        let dir = unique_dir(&format!("registry-{test}"));
        let addr = format!("127.0.0.1:{}", free_port());
        let config = dir.join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  \
                 delete:\n    enabled: true\nhttp:\n  addr: {addr}\n",
                dir.join("data").display()
            ),
        )
        .expect("registry config");
        let log = std::fs::File::create(dir.join("registry.log")).expect("registry log");
        let child = Command::new(&bin)
            .args(["serve", config.to_str().unwrap()])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {bin}: {e}"));
        let registry = Registry { child, dir, addr };
        eventually(Duration::from_secs(20), "the registry listens", || {
            std::net::TcpStream::connect(&registry.addr).map(|_| ()).map_err(|e| e.to_string())
        });
        Some(registry)
    }

    /// `addr/path`, e.g. `127.0.0.1:PORT/qd-test/app:1`.
    pub fn name(&self, path: &str) -> String {
        format!("{}/{path}", self.addr)
    }

    /// A new local image: the test image plus a layer of `bytes` random bytes, tagged
    /// `name`. Its own layer means a host without it has bytes to pull.
    pub fn build(&self, name: &str, bytes: usize) -> String {
        let payload = self.dir.join(format!("layer-{}.bin", name.replace(['/', ':'], "_")));
        let mut data = vec![0u8; bytes];
        let mut x: u64 = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(7, |d| d.as_nanos() as u64)
            | 1;
        for b in data.iter_mut() {
            // xorshift: incompressible enough that the layer weighs what it says.
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
        std::fs::write(&payload, data).expect("layer payload");
        // A label of its own: the image inherits it, and so do containers made from it.
        let container = docker(&["create", "--label", BUILD_LABEL, &image(), "sh"]);
        let copied = Command::new("docker")
            .args(["cp", payload.to_str().unwrap(), &format!("{container}:/qd-layer.bin")])
            .output()
            .expect("docker cp");
        let committed = copied.status.success().then(|| {
            Command::new("docker").args(["commit", &container, name]).output().expect("docker commit")
        });
        let _ = Command::new("docker").args(["rm", "-f", &container]).output();
        assert!(copied.status.success(), "docker cp: {}", String::from_utf8_lossy(&copied.stderr));
        let committed = committed.expect("committed");
        assert!(committed.status.success(), "docker commit: {}", String::from_utf8_lossy(&committed.stderr));
        name.to_string()
    }

    /// Pushes the local `name` and returns the digest the registry gave it.
    pub fn push(&self, name: &str) -> String {
        let out = docker(&["push", name]);
        out.split_whitespace()
            .find(|w| w.starts_with("sha256:") && w.len() == 71)
            .map(str::to_string)
            .unwrap_or_else(|| panic!("no digest in the push's output: {out}"))
    }

    /// Removes the local tag `name` (and its image when no other tag holds it), so hosts
    /// must pull.
    pub fn forget(&self, name: &str) {
        docker(&["rmi", name]);
    }

    /// Every local image of this registry, as `repository tag digest id`; none when
    /// docker cannot be asked (a test that skipped for want of it drops its guard too).
    pub fn local_images(&self) -> Vec<String> {
        let format = "{{.Repository}} {{.Tag}} {{.Digest}} {{.ID}}";
        let out = Command::new("docker").args(["images", "--digests", "--format", format]).output();
        let text = out.map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default();
        text.lines().filter(|l| l.starts_with(&self.addr)).map(str::to_string).collect()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let ids: Vec<String> = self
            .local_images()
            .iter()
            .filter_map(|l| l.split_whitespace().nth(3).map(str::to_string))
            .collect();
        for id in ids {
            let _ = Command::new("docker").args(["rmi", "-f", &id]).output();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// What each container of `host` runs: the reference it was created from
/// (`Config.Image`) and the image's id (the digest of its config, the same on every host).
pub fn images_of_host(host: &str) -> Vec<(String, String)> {
    let ids = docker(&["ps", "-q", "--filter", &format!("label=quarterdeck.host={host}")]);
    ids.split_whitespace()
        .map(|id| {
            let out = docker(&["inspect", "--format", "{{.Config.Image}} {{.Image}}", id]);
            let (reference, image) = out.split_once(' ').unwrap_or((&out, ""));
            (reference.to_string(), image.to_string())
        })
        .collect()
}

/// The id of a local image.
pub fn image_id(name: &str) -> String {
    docker(&["image", "inspect", "--format", "{{.Id}}", name])
}
