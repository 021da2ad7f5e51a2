//! The controller's tasks, owned, after mini-redis's shutdown: every loop and every
//! operation runs in one `JoinSet` under one shutdown signal, so `stop` ends them all and
//! returns only once they have ended, and a controller handle dropped without `stop`
//! takes its tasks with it. Nothing of a stopped controller runs on: a deposed leader's
//! operation must not send an agent command after the new leader has started.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;

/// How long `stop` lets its tasks end at their next await before it aborts what is left.
/// Each ends when the signal wakes it, so only a task stuck outside an await waits this.
const GRACE: Duration = Duration::from_secs(5);

pub(crate) struct Tasks {
    /// `None` once stopped: nothing starts after that.
    set: Mutex<Option<JoinSet<()>>>,
    /// Raised once, by `stop` or `abort`.
    shutdown: watch::Sender<bool>,
    /// Tasks started and not yet ended (dropped, whether they finished or were stopped).
    live: Arc<AtomicUsize>,
}

/// Counts a task as live from its start until its future is dropped.
struct Live(Arc<AtomicUsize>);

impl Live {
    fn new(count: &Arc<AtomicUsize>) -> Live {
        count.fetch_add(1, Ordering::SeqCst);
        Live(count.clone())
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Default for Tasks {
    fn default() -> Self {
        Tasks {
            set: Mutex::new(Some(JoinSet::new())),
            shutdown: watch::channel(false).0,
            live: Arc::default(),
        }
    }
}

impl Tasks {
    fn lock(&self) -> MutexGuard<'_, Option<JoinSet<()>>> {
        // The set is only ever taken or added to under the lock: a panic elsewhere while
        // it was held leaves it whole.
        self.set.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts `task`, which ends at its next await once the shutdown signal is raised. After
    /// `stop`, nothing starts.
    pub fn spawn<F>(&self, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let mut guard = self.lock();
        let Some(set) = guard.as_mut() else {
            log::debug!("the controller is stopped: a task it would have started is not");
            return;
        };
        // Finished tasks leave the set here, so it holds the live ones, not the history of
        // every operation this leader ran.
        while let Some(done) = set.try_join_next() {
            report(done);
        }
        let mut signal = self.shutdown.subscribe();
        let live = Live::new(&self.live);
        set.spawn(async move {
            let _live = live;
            tokio::select! {
                biased;
                _ = signal.wait_for(|stop| *stop) => {}
                () = task => {}
            }
        });
    }

    /// Tasks started and not yet ended.
    pub fn live(&self) -> usize {
        self.live.load(Ordering::SeqCst)
    }

    /// Raises the signal and waits until every task has ended (aborting, after `GRACE`,
    /// any that did not). Nothing starts afterwards.
    pub async fn stop(&self) {
        let set = self.lock().take();
        self.shutdown.send_replace(true);
        let Some(mut set) = set else { return };
        let all_ended = async {
            while let Some(done) = set.join_next().await {
                report(done);
            }
        };
        if tokio::time::timeout(GRACE, all_ended).await.is_err() {
            log::warn!("{} controller tasks did not end within {GRACE:?}; aborted", set.len());
            set.shutdown().await;
        }
    }

    /// `stop` without the wait, for a handle dropped: the signal is raised and every task
    /// aborted (a `JoinSet` dropped aborts its tasks).
    pub fn abort(&self) {
        let set = self.lock().take();
        self.shutdown.send_replace(true);
        drop(set);
    }
}

/// A task that panicked says so: detached, its panic went unseen.
fn report(done: Result<(), tokio::task::JoinError>) {
    if let Err(e) = done
        && e.is_panic()
    {
        log::error!("a controller task panicked: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A task that never ends by itself, and says when it was dropped.
    fn forever(dropped: &Arc<AtomicUsize>) -> impl Future<Output = ()> + Send + 'static {
        let guard = Live::new(dropped);
        async move {
            let _guard = guard;
            std::future::pending::<()>().await
        }
    }

    #[tokio::test]
    async fn stop_ends_every_task_and_waits_for_them() {
        let tasks = Tasks::default();
        let held = Arc::new(AtomicUsize::new(0));
        for _ in 0..10 {
            tasks.spawn(forever(&held));
        }
        tasks.spawn(async {});
        tokio::task::yield_now().await;
        assert_eq!(held.load(Ordering::SeqCst), 10, "each task holds its state");
        tasks.stop().await;
        assert_eq!(tasks.live(), 0, "stop returns once every task has ended");
        assert_eq!(held.load(Ordering::SeqCst), 0, "each task's state was dropped");
        tasks.spawn(forever(&held));
        assert_eq!((tasks.live(), held.load(Ordering::SeqCst)), (0, 0), "nothing starts after stop");
    }

    #[tokio::test]
    async fn finished_tasks_leave_the_set() {
        let tasks = Tasks::default();
        for _ in 0..100 {
            tasks.spawn(async {});
        }
        let settled = async {
            while tasks.live() > 0 {
                tokio::task::yield_now().await;
            }
        };
        tokio::time::timeout(Duration::from_secs(30), settled).await.expect("the tasks end");
        tasks.spawn(async {});
        let kept = tasks.lock().as_ref().map_or(0, JoinSet::len);
        assert!(kept <= 1, "{kept} tasks kept in the set after they ended");
    }

    #[tokio::test]
    async fn abort_drops_every_task() {
        let tasks = Tasks::default();
        let held = Arc::new(AtomicUsize::new(0));
        tasks.spawn(forever(&held));
        tokio::task::yield_now().await;
        tasks.abort();
        let ended = async {
            while tasks.live() > 0 {
                tokio::task::yield_now().await;
            }
        };
        tokio::time::timeout(Duration::from_secs(30), ended).await.expect("aborted tasks end");
        assert_eq!(held.load(Ordering::SeqCst), 0);
    }
}
