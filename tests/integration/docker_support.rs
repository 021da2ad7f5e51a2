//! A real dockerd for the Docker driver's tests: a per-test host id, data directory and
//! artifact repository, all removed by `Drop` with every container and network the test
//! made (found by label), so a failing test still cleans up. Traffic goes to 127.0.0.1
//! only. Without `QD_DOCKER` a test skips and says why, unless `CI=true`, where it fails.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use quarterdeck::plane::agent::docker::{DockerConfig, DockerDriver};
use quarterdeck::plane::agent::driver::{RuntimeDriver, StepReport, StepSender};
use quarterdeck::protocol::{
    ArtifactRef, HealthCheck, InstanceReport, InstanceSpec, InstanceState, RunSpec, StepName,
};
use quarterdeck::repository::{DirRepository, Repository};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

/// The label every container a test starts by hand carries, so its guard finds it.
pub const TEST_LABEL: &str = "quarterdeck.test";

/// The test image, from `QD_TEST_IMAGE` (set by ./scripts/test).
pub fn image() -> String {
    std::env::var("QD_TEST_IMAGE").unwrap_or_else(|_| "quarterdeck-test/httpd".into())
}

/// Whether dockerd and the test image are there. `false` means skip: it has printed why.
/// With `CI=true` a missing engine fails the test.
pub fn docker_or_skip(test: &str) -> bool {
    if std::env::var("QD_DOCKER").is_ok_and(|v| v == "1") {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("CI=true but QD_DOCKER is not set: dockerd or the test image is missing (run ./scripts/test)");
    }
    eprintln!("skipped: {test}: no Docker engine (QD_DOCKER unset; run ./scripts/test)");
    false
}

static UNIQUE: AtomicU64 = AtomicU64::new(0);

/// Runs `docker ARGS`, returning stdout (trimmed); panics with stderr if it fails.
pub fn docker(args: &[&str]) -> String {
    let out = Command::new("docker").args(args).output().unwrap_or_else(|e| panic!("docker {args:?}: {e}"));
    assert!(out.status.success(), "docker {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// `docker ARGS`, ignoring failures (cleanup).
fn docker_quiet(args: &[&str]) -> String {
    Command::new("docker")
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

/// One test's world: a host id nobody else uses, its data directory and repository.
pub struct Scene {
    pub host: String,
    /// Marks containers the test starts by hand.
    pub tag: String,
    pub dir: PathBuf,
    pub repo: Arc<DirRepository>,
}

impl Scene {
    pub fn new(test: &str) -> Scene {
        let n = UNIQUE.fetch_add(1, Ordering::Relaxed);
        let short: String =
            test.chars().filter(|c| c.is_ascii_alphanumeric()).take(12).collect::<String>().to_lowercase();
        let host = format!("t-{short}-{}-{n}", std::process::id());
        let dir = std::env::temp_dir().join(format!("qd-docker-{host}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("test dir");
        let repo = Arc::new(DirRepository::new(dir.join("repo")).expect("repository"));
        Scene { tag: host.clone(), host, dir, repo }
    }

    /// The driver's defaults for this scene: published on 127.0.0.1, quick periods.
    pub fn config(&self) -> DockerConfig {
        let mut c =
            DockerConfig::new(self.host.clone(), self.dir.join("data"), std::net::Ipv4Addr::LOCALHOST);
        c.health_timeout = Duration::from_secs(20);
        c.refresh_period = Duration::from_millis(300);
        c.stop_timeout = Duration::from_secs(1);
        c.extra_labels.insert(TEST_LABEL.into(), self.tag.clone());
        c
    }

    pub async fn driver(&self) -> DockerDriver {
        self.driver_with(self.config()).await
    }

    pub async fn driver_with(&self, config: DockerConfig) -> DockerDriver {
        let repo: Arc<dyn Repository> = self.repo.clone();
        DockerDriver::connect(config, repo).await.expect("the docker driver connects")
    }

    /// Uploads a site (files in a .tar.gz) as `app@version`.
    pub async fn upload(&self, app: &str, version: &str, files: &[(&str, &str)]) -> ArtifactRef {
        let slot = quarterdeck::repository::slot(app, version);
        self.repo.put(&slot, Bytes::from(site(files))).await.expect("upload")
    }

    /// Ids of every container of this scene (driver's or hand-started), running or not.
    pub fn containers(&self) -> Vec<String> {
        let mut ids: Vec<String> =
            [format!("label=quarterdeck.host={}", self.host), format!("label={TEST_LABEL}={}", self.tag)]
                .iter()
                .flat_map(|f| {
                    docker_quiet(&["ps", "-aq", "--no-trunc", "--filter", f])
                        .lines()
                        .map(str::to_string)
                        .collect::<Vec<_>>()
                })
                .filter(|l| !l.is_empty())
                .collect();
        ids.sort();
        ids.dedup();
        ids
    }

    /// Starts a container by hand, marked for cleanup but with no quarterdeck labels.
    pub fn run_by_hand(&self, name_suffix: &str, extra: &[&str]) -> String {
        let name = format!("{}-{name_suffix}", self.host);
        let label = format!("{TEST_LABEL}={}", self.tag);
        let mut args = vec!["run", "-d", "--name", &name, "--label", &label];
        args.extend_from_slice(extra);
        let image = image();
        args.extend_from_slice(&[&image, "sleep", "300"]);
        docker(&args)
    }
}

impl Drop for Scene {
    fn drop(&mut self) {
        let ids = self.containers();
        if !ids.is_empty() {
            let mut args = vec!["rm", "-f", "-v"];
            args.extend(ids.iter().map(String::as_str));
            docker_quiet(&args);
        }
        docker_quiet(&["network", "rm", &format!("qd-vlan-{}", self.host)]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A .tar.gz of `files`.
pub fn site(files: &[(&str, &str)]) -> Vec<u8> {
    let mut builder =
        tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast()));
    for (name, body) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(body.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder.append_data(&mut header, name, body.as_bytes()).expect("tar entry");
    }
    builder.into_inner().expect("tar").finish().expect("gzip")
}

/// A spec for the test image serving the artifact with busybox httpd on port 8080.
pub fn spec(id: &str, app: &str, version: &str, artifact: Option<ArtifactRef>) -> InstanceSpec {
    InstanceSpec {
        id: id.into(),
        app: app.into(),
        version: version.into(),
        index: id.split('-').nth(1).and_then(|i| i.parse().ok()).unwrap_or(0),
        image: image(),
        port: 8080,
        cpu: 0.5,
        memory_mb: 64,
        operation_id: "op-test".into(),
        run: RunSpec {
            cmd: Some(vec![
                "httpd".into(),
                "-f".into(),
                "-p".into(),
                "8080".into(),
                "-h".into(),
                "/app".into(),
            ]),
            mount: "/app".into(),
            health: HealthCheck::Http { path: "/index.html".into() },
            artifact,
            ..RunSpec::default()
        },
    }
}

/// Collects the steps a driver call reports.
pub struct Steps {
    pub tx: StepSender,
    rx: mpsc::Receiver<StepReport>,
}

impl Steps {
    pub fn new() -> Steps {
        let (tx, rx) = mpsc::channel(quarterdeck::plane::agent::driver::STEP_CHANNEL);
        Steps { tx, rx }
    }

    /// Every step reported so far, as (step, state, detail).
    pub fn drain(&mut self) -> Vec<(StepName, InstanceState, String)> {
        let mut out = Vec::new();
        while let Ok(s) = self.rx.try_recv() {
            out.push((s.step, s.instance.state, s.detail));
        }
        out
    }
}

pub async fn report(driver: &DockerDriver, id: &str) -> Option<InstanceReport> {
    driver.list().await.expect("list").into_iter().find(|r| r.id == id)
}

/// Polls the driver's list until `check` holds for instance `id`.
pub async fn wait_report(
    driver: &DockerDriver,
    id: &str,
    what: &str,
    check: impl Fn(&InstanceReport) -> bool,
) -> InstanceReport {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let r = report(driver, id).await;
        if let Some(r) = r.as_ref().filter(|r| check(r)) {
            return r.clone();
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {id}: {what}; last {r:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `GET path` on 127.0.0.1:port (HTTP/1.0): status and body.
pub async fn http_get(port: u16, path: &str) -> Result<(u16, String), String> {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.map_err(|e| e.to_string())?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf))
        .await
        .map_err(|_| "timed out".to_string())?
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&buf).to_string();
    let (head, body) = text.split_once("\r\n\r\n").ok_or_else(|| format!("no HTTP answer: {text:?}"))?;
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("bad status: {head:?}"))?;
    Ok((code, body.to_string()))
}

/// `docker inspect -f FORMAT container`.
pub fn inspect(container: &str, format: &str) -> String {
    docker(&["inspect", "-f", format, container])
}
