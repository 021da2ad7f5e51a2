//! Routes first: an instance is stopped only once the load balancer no longer sends it
//! requests. A route's removal is an event; each router applies it to nginx and then says
//! which revision it has applied (`RouterStatus.revision`). A scale-down waits until every
//! router heard from lately has applied its removals' revision before it stops any
//! container, so no request goes to a stopping instance.

use std::time::{Duration, Instant};

use super::core::Controller;

/// A router not heard from for this long is not waited for: it is down or cut off, and
/// whatever it serves is out of this controller's reach (it reports every 2 s).
pub(crate) const ROUTER_LIVE: Duration = Duration::from_secs(10);

/// The longest a scale-down waits for the routers; past it the instances go anyway (a
/// router that cannot apply reports `ROUTER_ERROR`), so an operation never hangs on one.
/// A drain waits longer for a new route (`drain::ROUTER_WAIT`): it fails rather than go on.
pub(crate) const APPLY_WAIT: Duration = Duration::from_secs(15);

/// How often the routers' reports are looked at while waiting.
const POLL: Duration = Duration::from_millis(50);

/// The live routers that have not yet applied `rev`, by id.
pub(crate) fn behind(
    routers: &std::collections::HashMap<String, (Instant, u64)>,
    rev: u64,
    now: Instant,
) -> Vec<String> {
    let mut ids: Vec<String> = routers
        .iter()
        .filter(|(_, (heard, applied))| now.saturating_duration_since(*heard) < ROUTER_LIVE && *applied < rev)
        .map(|(id, _)| id.clone())
        .collect();
    ids.sort();
    ids
}

impl Controller {
    /// Waits until every live router has applied revision `rev`; `Err` names the routers
    /// still behind after `within`.
    pub(crate) async fn routers_applied(&self, rev: u64, within: Duration) -> Result<(), String> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let late = self.read(|core| behind(&core.routers_applied, rev, Instant::now()));
            if late.is_empty() {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(format!(
                    "router(s) {} had not applied revision {rev} within {within:?}",
                    late.join(", ")
                ));
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn only_live_routers_behind_the_revision_are_waited_for() {
        let now = Instant::now();
        let old = now.checked_sub(ROUTER_LIVE + Duration::from_secs(1)).unwrap_or(now);
        let routers: HashMap<String, (Instant, u64)> = [
            ("r-ahead".to_string(), (now, 12)),
            ("r-at".to_string(), (now, 10)),
            ("r-behind".to_string(), (now, 9)),
            ("r-silent".to_string(), (old, 1)),
        ]
        .into_iter()
        .collect();
        assert_eq!(behind(&routers, 10, now), vec!["r-behind".to_string()]);
        assert_eq!(behind(&routers, 13, now), vec!["r-ahead", "r-at", "r-behind"]);
        assert!(behind(&HashMap::new(), 10, now).is_empty(), "no router: nothing to wait for");
    }
}
