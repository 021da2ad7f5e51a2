//! Prometheus metrics of the plane's services: one registry per service (`controller.rs`,
//! `agent.rs`, `router.rs`), encoded by `prometheus-client` and served on `GET /metrics`
//! (`serve.rs`). Each service updates its metrics where it already has the figures (an event
//! applied, a heartbeat sent, a status published), so a scrape reads atomics and never waits
//! on a service's own state.

pub mod agent;
pub mod controller;
pub mod router;
pub mod serve;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::registry::Registry;
use tokio::sync::watch;

use crate::bus::Connection;

/// The content type of what `encode` writes: the OpenMetrics text format, which Prometheus
/// reads (and asks for first).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Every metric name starts with this and `_`.
pub const PREFIX: &str = "quarterdeck";

/// What a metrics endpoint serves: a service's registry, encoded at each scrape.
pub trait Scrape: Send + Sync + 'static {
    fn registry(&self) -> &Registry;
}

/// The registry's text, in the crate's encoding; an error names what failed.
pub fn encode(registry: &Registry) -> Result<String, String> {
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, registry)
        .map_err(|e| format!("encoding the metrics failed: {e}"))?;
    Ok(text)
}

/// A new registry whose names all start with `quarterdeck_`.
pub(crate) fn registry() -> Registry {
    Registry::with_prefix(PREFIX)
}

/// The bus reconnect counter every service has, registered in `registry`.
pub(crate) fn reconnects(registry: &mut Registry) -> Counter {
    let counter = Counter::default();
    registry.register(
        "bus_reconnects",
        "Times the service's bus connection came back after it was lost",
        counter.clone(),
    );
    counter
}

/// Counts each return of a bus connection after a loss (`Bus::connection`), until the bus
/// is dropped. The task that runs it is owned by the service's metrics server.
pub async fn count_reconnects(mut state: watch::Receiver<Connection>, counter: Counter) {
    let mut connected = state.borrow_and_update().is_connected();
    while state.changed().await.is_ok() {
        let now = state.borrow_and_update().is_connected();
        if now && !connected {
            counter.inc();
        }
        connected = now;
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! What the registries' tests share: the encoded text parsed back by another crate.

    use super::*;

    /// The samples of `registry`'s text, as `prometheus-parse` reads them.
    pub fn parse(registry: &Registry) -> prometheus_parse::Scrape {
        let text = encode(registry).expect("encoded");
        let lines = text.lines().map(|l| Ok(l.to_string()));
        prometheus_parse::Scrape::parse(lines).expect("parsed")
    }

    /// The value of the sample `name` whose labels include `labels`.
    pub fn value(scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let sample = scrape
            .samples
            .iter()
            .find(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))?;
        match &sample.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => Some(*v),
            prometheus_parse::Value::Histogram(buckets) => buckets.last().map(|b| b.count),
            prometheus_parse::Value::Summary(_) => None,
        }
    }

    /// The metric names the registry defines, as a scrape shows them (a counter with
    /// `_total`), from the crate's own text.
    pub fn names(registry: &Registry) -> std::collections::BTreeSet<String> {
        let text = encode(registry).expect("encoded");
        text.lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .filter_map(|l| {
                let (name, kind) = l.split_once(' ')?;
                Some(if kind == "counter" { format!("{name}_total") } else { name.to_string() })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// Every metric the three registries define, as a scrape names it (a family shows only
    /// once it has a series: each registry is filled first).
    fn defined() -> BTreeSet<String> {
        let mut names = testing::names(controller::tests::filled().registry());
        names.extend(testing::names(agent::tests::filled().registry()));
        names.extend(testing::names(router::tests::filled().registry()));
        names
    }

    /// The metric names the README's Metrics section lists: each table row's first cell.
    fn documented() -> BTreeSet<String> {
        let readme =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("README");
        let section = readme.split("\n## Metrics").nth(1).expect("a Metrics section in the README");
        let section = section.split("\n## ").next().unwrap_or(section);
        section
            .lines()
            .filter_map(|l| l.strip_prefix("| `"))
            .filter_map(|l| l.split('`').next())
            .filter(|name| name.starts_with("quarterdeck_"))
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn the_readme_lists_every_metric_the_registries_define_and_no_other() {
        let (defined, documented) = (defined(), documented());
        let undocumented: Vec<_> = defined.difference(&documented).collect();
        let unknown: Vec<_> = documented.difference(&defined).collect();
        assert!(undocumented.is_empty(), "defined but not in the README's Metrics table: {undocumented:?}");
        assert!(unknown.is_empty(), "in the README's Metrics table but defined nowhere: {unknown:?}");
        assert!(defined.iter().all(|n| n.starts_with("quarterdeck_")), "{defined:?}");
    }

    #[tokio::test]
    async fn a_connection_that_comes_back_is_counted_once() {
        let (state, rx) = watch::channel(Connection::Connected);
        let counter = Counter::default();
        let task = tokio::spawn(count_reconnects(rx, counter.clone()));
        state.send_replace(Connection::Disconnected { since: 0, reason: "test".into() });
        // The test's runtime has one thread: a yield lets the task see the loss.
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert_eq!(counter.get(), 0, "a loss is no reconnect");
        state.send_replace(Connection::Connected);
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
        while counter.get() == 0 && tokio::time::Instant::now() < deadline {
            tokio::task::yield_now().await;
        }
        assert_eq!(counter.get(), 1);
        drop(state);
        task.await.expect("the count ends with the bus");
    }
}
