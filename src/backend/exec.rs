//! Opens the cockpit's exec sessions (`s`, `:exec`) on the backend's bus, as the
//! connection's user: the event loop asks, then runs the session on the terminal.

use std::sync::Arc;

use crate::bus::Bus;
use crate::client::exec::{self, ExecError, ExecOptions, ExecSession, ExecTarget};
use crate::protocol::ExecStart;

/// Cheap to clone; shares the backend's bus.
#[derive(Clone)]
pub struct ExecOpener {
    bus: Arc<dyn Bus>,
    source: String,
}

impl ExecOpener {
    pub(super) fn new(bus: Arc<dyn Bus>, source: String) -> ExecOpener {
        ExecOpener { bus, source }
    }

    /// A session with a terminal of `cols`x`rows` for `start`; the agent says no, or the
    /// server does for a user without the exec grant.
    pub async fn open(&self, start: &ExecStart, cols: u16, rows: u16) -> Result<ExecSession, ExecError> {
        let target = ExecTarget { host: start.host.clone(), instance: start.instance.clone() };
        let opts = ExecOptions { cmd: start.cmd.clone(), tty: true, cols, rows };
        exec::open(self.bus.clone(), &self.source, &target, opts).await
    }
}
