//! Images from a registry: the digest a tag names now (dockerd's distribution endpoint),
//! and the pull of an image the host lacks, its progress counted in bytes and reported at
//! most once per `PROGRESS_EVERY`, never once per message of Docker's stream (which
//! sends several per layer per second).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::query_parameters::CreateImageOptionsBuilder;
use futures_util::StreamExt;

use super::connect;
use crate::protocol::image::{ImageRef, PullBytes};

/// The least time between two progress reports of one pull.
pub(super) const PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// The digest `image`'s tag names in its registry now, or the registry's answer.
pub(super) async fn resolve(docker: &Docker, image: &str) -> Result<String, String> {
    let found = docker.inspect_registry_image(image, None).await.map_err(|e| connect::message(&e))?;
    found.descriptor.digest.ok_or_else(|| format!("the registry gave no digest for {image}"))
}

/// Bytes of each layer Docker said it fetched, and how many it expects.
#[derive(Debug, Default)]
pub(super) struct Progress {
    layers: HashMap<String, (u64, u64)>,
}

impl Progress {
    /// Takes one message of Docker's pull stream.
    pub(super) fn see(
        &mut self,
        layer: Option<&str>,
        status: &str,
        current: Option<i64>,
        total: Option<i64>,
    ) {
        // "Pulling from <repo>" names the tag, not a layer.
        let Some(layer) = layer.filter(|l| !l.is_empty() && !status.starts_with("Pulling from")) else {
            return;
        };
        let (cur, tot) = (current.unwrap_or(0).max(0) as u64, total.unwrap_or(0).max(0) as u64);
        let entry = self.layers.entry(layer.to_string()).or_default();
        match status {
            "Downloading" => {
                entry.0 = entry.0.max(cur);
                entry.1 = entry.1.max(tot);
            }
            // What was downloaded is all of it.
            "Download complete" | "Verifying Checksum" | "Pull complete" => entry.0 = entry.0.max(entry.1),
            _ => {}
        }
    }

    /// `(bytes fetched, bytes expected)` so far.
    pub(super) fn bytes(&self) -> (u64, u64) {
        self.layers.values().fold((0, 0), |(c, t), (lc, lt)| (c + lc, t + lt.max(lc)))
    }

    pub(super) fn in_words(&self) -> String {
        let (done, total) = self.bytes();
        format!("{}, {} layer(s)", PullBytes { done, total }.in_words(), self.layers.len())
    }
}

/// Pulls `image` from its registry, calling `report` with the progress at most once per
/// `PROGRESS_EVERY`; returns the total in words. Fails with Docker's (the registry's)
/// answer.
pub(super) async fn pull(
    docker: &Docker,
    image: &ImageRef,
    mut report: impl FnMut(String),
) -> Result<String, String> {
    let (from, which) = image.pull_args();
    let options = CreateImageOptionsBuilder::new().from_image(&from).tag(&which).build();
    let mut stream = docker.create_image(Some(options), None, None);
    let mut progress = Progress::default();
    let started = Instant::now();
    let mut last = started;
    while let Some(item) = stream.next().await {
        let info = item.map_err(|e| connect::message(&e))?;
        if let Some(err) = info.error_detail.and_then(|d| d.message) {
            return Err(err);
        }
        let (cur, tot) = info.progress_detail.map(|p| (p.current, p.total)).unwrap_or_default();
        progress.see(info.id.as_deref(), info.status.as_deref().unwrap_or(""), cur, tot);
        if last.elapsed() >= PROGRESS_EVERY {
            last = Instant::now();
            // The bytes first: narrow views (the wizard) cut the end.
            report(format!("{} pulled of {}", progress.in_words(), image.repository));
        }
    }
    let what =
        if which.starts_with("sha256:") { format!("{from}@{which}") } else { format!("{from}:{which}") };
    Ok(format!("{} in {:.1}s, pulled {what}", progress.in_words(), started.elapsed().as_secs_f64()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_counts_each_layer_once_and_a_finished_layer_whole() {
        let mut p = Progress::default();
        p.see(Some("1"), "Pulling from qd-test/app", None, None);
        p.see(Some("a"), "Pulling fs layer", None, None);
        p.see(Some("a"), "Downloading", Some(100), Some(1000));
        p.see(Some("b"), "Downloading", Some(50), Some(500));
        p.see(Some("a"), "Downloading", Some(600), Some(1000));
        assert_eq!(p.bytes(), (650, 1500));
        p.see(Some("a"), "Download complete", None, None);
        p.see(Some("b"), "Extracting", Some(10), Some(500));
        assert_eq!(p.bytes(), (1050, 1500), "extracting is not downloading");
        p.see(Some("b"), "Pull complete", None, None);
        p.see(None, "Digest: sha256:...", None, None);
        assert_eq!(p.bytes(), (1500, 1500));
        assert_eq!(p.in_words(), "1500 of 1500 bytes, 2 layer(s)");
    }
}
