//! `:context NAME` in the event loop: the connect runs beside the loop (the cockpit stays
//! on its plane, live, until the new one answers), then the backend is swapped and the old
//! one shut down, or the app is told why not.

use futures_util::future::BoxFuture;
use tokio::task::JoinHandle;

use crate::app::{App, PlaneLabel};
use crate::backend::{BackendHandle, Connection};

/// A backend on another plane, connected, and what the header says of it.
pub struct Switched {
    pub backend: BackendHandle,
    pub plane: PlaneLabel,
    pub connection: Connection,
}

/// Connects to the named context's plane (the cockpit's command line builds it:
/// `cli::cockpit::connector`).
pub type Connect = Box<dyn Fn(String) -> BoxFuture<'static, Result<Switched, String>> + Send + Sync>;

/// The switch under way, if any: the context's name and its connect.
#[derive(Default)]
pub struct Switching(Option<(String, JoinHandle<Result<Switched, String>>)>);

impl Switching {
    /// Starts connecting to `name`; a switch still under way is given up for it.
    pub fn start(&mut self, connect: &Connect, name: String) {
        if let Some((_, old)) = self.0.take() {
            old.abort();
        }
        let connecting = tokio::spawn(connect(name.clone()));
        self.0 = Some((name, connecting));
    }

    /// The switch's outcome once its connect ends; never, while none is under way.
    pub async fn done(&mut self) -> (String, Result<Switched, String>) {
        let Some((name, connecting)) = self.0.as_mut() else { return std::future::pending().await };
        let result = connecting.await.map_err(|e| format!("the connect stopped: {e}")).and_then(|r| r);
        let name = name.clone();
        self.0 = None;
        (name, result)
    }
}

/// Carries out a switch's outcome: on success the app drops the old plane's state and the
/// old backend is shut down (nothing of it reaches the app afterwards); otherwise the app
/// says why and stays where it was.
pub async fn finish(
    app: &mut App,
    backend: &mut BackendHandle,
    name: &str,
    result: Result<Switched, String>,
) {
    match result {
        Ok(Switched { backend: new, plane, connection }) => {
            let old = std::mem::replace(backend, new);
            app.switched(plane, connection);
            old.shutdown().await;
        }
        Err(why) => app.switch_failed(name, &why),
    }
}
