//! The runtime driver interface: what an agent needs from a container runtime. The `sim`
//! driver implements it for the sandbox; the Docker driver (bollard) implements it for real
//! hosts.

use async_trait::async_trait;
use tokio::sync::mpsc;

use crate::protocol::exec::ExecFd;
use crate::protocol::{ContainerReport, HostMetrics, InstanceReport, InstanceSpec, LogLine, StepName};

/// A deploy or restart step reached by an instance, reported to the controller at once.
#[derive(Debug, Clone)]
pub struct StepReport {
    pub step: StepName,
    pub instance: InstanceReport,
    pub detail: String,
    /// The step is still under way (a pull's progress): the controller keeps it running.
    pub running: bool,
}

pub type StepSender = mpsc::Sender<StepReport>;

/// How many steps the agent may have queued to publish before a driver reporting one
/// waits: a handful per deploy or restart in flight, so this is reached only while the
/// bus holds the agent's publishes back, and then the deploys wait for it (#10).
pub const STEP_CHANNEL: usize = 1024;

/// An instance's log lines, in order. The driver's producer stops when this is dropped;
/// the channel closes when the log ends (the container stopped, or no follow).
pub type LogReceiver = mpsc::Receiver<LogLine>;

/// How many lines a driver may have in flight to the agent before it waits.
pub const LOG_CHANNEL: usize = 1024;

/// A piece of an exec process's output, and which output it came from.
pub type ExecChunk = (ExecFd, Vec<u8>);

/// A process an exec session runs in an instance's container: its output (closed when the
/// process's output ends) and its handle.
pub struct ExecProcess {
    /// What runs (the shell found, when the session named no command).
    pub cmd: Vec<String>,
    pub output: mpsc::Receiver<ExecChunk>,
    pub handle: Box<dyn ExecHandle>,
}

/// How many output chunks a driver may have in flight to the agent before it reads no more
/// from the process (which then blocks on its writes: the flow control of a session).
pub const EXEC_CHANNEL: usize = 64;

/// What an agent does to a running exec process.
#[async_trait]
pub trait ExecHandle: Send + Sync {
    async fn write(&self, bytes: &[u8]) -> Result<(), DriverError>;
    async fn close_stdin(&self) -> Result<(), DriverError>;
    async fn resize(&self, cols: u16, rows: u16) -> Result<(), DriverError>;
    /// The exit code once the process ended (`None` while it runs, or when the runtime does
    /// not know it).
    async fn exit_code(&self) -> Result<Option<i64>, DriverError>;
    /// Whether the container the process runs in still runs (asked of the runtime, not a
    /// cache: a process killed with its container must not read as one that exited).
    async fn container_running(&self) -> Result<bool, DriverError>;
    /// Kills the process and what it started: a session's end never leaves it running.
    async fn kill(&self) -> Result<(), DriverError>;
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DriverError {
    #[error("no instance {0} on this host")]
    NotFound(String),
    #[error("{0}")]
    Failed(String),
}

#[async_trait]
pub trait RuntimeDriver: Send + Sync + 'static {
    /// `sim` or `docker`, for logs and the host's facts.
    fn name(&self) -> &'static str;
    /// CPU cores and memory (MB) this host offers.
    fn capacity(&self) -> (u32, u64);
    /// Host-level warnings (storage driver, discard ...); empty when all is well.
    async fn warnings(&self) -> Vec<String> {
        Vec::new()
    }
    async fn host_metrics(&self) -> HostMetrics;
    /// Containers on the host that this agent does not manage; never touched.
    async fn unmanaged(&self) -> Vec<ContainerReport> {
        Vec::new()
    }
    /// Every instance this driver runs for the agent, as it is now.
    async fn list(&self) -> Result<Vec<InstanceReport>, DriverError>;
    /// Whether the driver runs an instance with this id.
    async fn has(&self, id: &str) -> bool;
    /// Downloads, creates and starts the instance, then checks its health, reporting each
    /// step. Returns once the instance runs or has failed.
    async fn deploy(&self, spec: InstanceSpec, steps: StepSender) -> Result<(), DriverError>;
    /// The digest (`sha256:...`) an image's tag names now in its registry. An error says
    /// the registry's answer (no such tag, unreachable).
    async fn resolve(&self, image: &str) -> Result<String, DriverError> {
        Err(DriverError::Failed(format!("the {} runtime driver cannot resolve {image}", self.name())))
    }
    /// Restarts an instance in place and waits until it is healthy again.
    async fn restart(&self, id: &str, steps: StepSender) -> Result<(), DriverError>;
    /// Stops and removes an instance. Removing one that is not there is not an error.
    async fn remove(&self, id: &str) -> Result<(), DriverError>;
    /// The instance's log: the last `tail` lines, then, with `follow`, new lines as they
    /// come. Drivers that cannot read logs say so.
    async fn logs(&self, id: &str, tail: u32, follow: bool) -> Result<LogReceiver, DriverError> {
        let _ = (id, tail, follow);
        Err(DriverError::Failed(format!("the {} runtime driver cannot stream logs", self.name())))
    }
    /// Runs `cmd` (empty: the first shell of `protocol::exec::SHELLS` the image has) in the
    /// instance's container, attached, with a pseudo-terminal of `cols`x`rows` when `tty`.
    /// Drivers that cannot say so.
    async fn exec(
        &self,
        id: &str,
        cmd: Vec<String>,
        tty: bool,
        size: (u16, u16),
    ) -> Result<ExecProcess, DriverError> {
        let _ = (id, cmd, tty, size);
        Err(DriverError::Failed(format!("the {} runtime driver cannot exec in an instance", self.name())))
    }
    /// The instance's log from `since_ms` on (ms since epoch), followed: how a log view
    /// goes on with the next run of a container after a restart, without the lines it
    /// already showed.
    async fn logs_since(&self, id: &str, since_ms: u64) -> Result<LogReceiver, DriverError> {
        let _ = since_ms;
        self.logs(id, 0, true).await
    }
}
