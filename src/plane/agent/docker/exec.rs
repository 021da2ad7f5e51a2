//! Exec sessions through Docker's exec API: create, start attached (with a TTY or without),
//! resize, inspect for the exit code.
//!
//! Killing: on this dockerd (checked by hand, and by `docker_exec_of_a_dead_viewer_is_killed`)
//! closing the attach connection does not end the process, with a TTY or without: it
//! keeps running in the container. Docker has no exec kill, so the kill is a second exec,
//! `kill -KILL` of the process and its descendants by their pids in the container: the
//! exec's pid (`inspect_exec`, in the host's namespace) and its descendants' are read from
//! the host's /proc (`task/*/children`), and each is mapped to the container's namespace by
//! the last `NSpid` field of its `status`. The agent runs beside its dockerd, so /proc is
//! the host's.

use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;
use bollard::Docker;
use bollard::container::LogOutput;
use bollard::exec::{CreateExecOptions, ResizeExecOptions, StartExecOptions, StartExecResults};
use futures_util::StreamExt;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::{Mutex, mpsc};

use super::{Inner, labels};
use crate::plane::agent::driver::{DriverError, EXEC_CHANNEL, ExecHandle, ExecProcess};
use crate::protocol::exec::{EXEC_CHUNK_MAX, ExecFd, SHELLS};

fn failed(what: &str) -> impl Fn(bollard::errors::Error) -> DriverError + '_ {
    move |e| DriverError::Failed(format!("{what}: {e}"))
}

pub async fn start(
    inner: &Arc<Inner>,
    id: &str,
    cmd: Vec<String>,
    tty: bool,
    (cols, rows): (u16, u16),
) -> Result<ExecProcess, DriverError> {
    if !inner.cache().has(id) {
        return Err(DriverError::NotFound(id.into()));
    }
    let container = labels::container_name(id);
    let docker = inner.docker.clone();
    let cmd = if cmd.is_empty() { vec![shell(&docker, &container).await] } else { cmd };
    let opts = CreateExecOptions {
        attach_stdin: Some(true),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        tty: Some(tty),
        cmd: Some(cmd.clone()),
        ..Default::default()
    };
    let exec = docker.create_exec(&container, opts).await.map_err(|e| match e {
        bollard::errors::Error::DockerResponseServerError { status_code: 404, .. } => {
            DriverError::NotFound(id.into())
        }
        // 409: the container is not running.
        other => DriverError::Failed(format!("cannot exec in {id}: {other}")),
    })?;
    let started = docker
        .start_exec(&exec.id, Some(StartExecOptions { detach: false, tty, output_capacity: None }))
        .await
        .map_err(failed("cannot start the exec"))?;
    let StartExecResults::Attached { mut output, input } = started else {
        return Err(DriverError::Failed("docker started the exec detached".into()));
    };
    if tty {
        // Before any output: a shell draws its prompt for the size it starts with.
        let _ = docker.resize_exec(&exec.id, ResizeExecOptions { width: cols, height: rows }).await;
    }
    let (tx, rx) = mpsc::channel(EXEC_CHANNEL);
    tokio::spawn(async move {
        loop {
            let item = tokio::select! {
                item = output.next() => item,
                // The session is gone: stop reading (the kill ends the process).
                _ = tx.closed() => return,
            };
            let (fd, bytes) = match item {
                Some(Ok(LogOutput::StdErr { message })) => (ExecFd::Stderr, message),
                Some(Ok(LogOutput::StdOut { message } | LogOutput::Console { message })) => {
                    (ExecFd::Stdout, message)
                }
                Some(Ok(LogOutput::StdIn { .. })) => continue,
                Some(Err(err)) => {
                    log::info!("exec output ended: {err}");
                    return;
                }
                None => return,
            };
            for chunk in bytes.chunks(EXEC_CHUNK_MAX) {
                if tx.send((fd, chunk.to_vec())).await.is_err() {
                    return;
                }
            }
        }
    });
    let handle = DockerExec { docker, container, exec: exec.id, input: Mutex::new(Some(input)) };
    Ok(ExecProcess { cmd, output: rx, handle: Box::new(handle) })
}

/// The first shell of `SHELLS` the image runs, the last as the fallback.
async fn shell(docker: &Docker, container: &str) -> String {
    let (last, rest) = SHELLS.split_last().unwrap_or((&"/bin/sh", &[]));
    for candidate in rest {
        let probe = vec![candidate.to_string(), "-c".into(), "exit 0".into()];
        if run(docker, container, probe).await == Ok(Some(0)) {
            return candidate.to_string();
        }
    }
    last.to_string()
}

/// Runs `cmd` in the container to its end, its output dropped; its exit code.
async fn run(docker: &Docker, container: &str, cmd: Vec<String>) -> Result<Option<i64>, DriverError> {
    let opts = CreateExecOptions::<String> {
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        cmd: Some(cmd),
        ..Default::default()
    };
    let exec = docker.create_exec(container, opts).await.map_err(failed("exec"))?;
    if let StartExecResults::Attached { mut output, .. } =
        docker.start_exec(&exec.id, None).await.map_err(failed("exec"))?
    {
        while output.next().await.is_some() {}
    }
    Ok(docker.inspect_exec(&exec.id).await.map_err(failed("exec"))?.exit_code)
}

struct DockerExec {
    docker: Docker,
    container: String,
    exec: String,
    input: Mutex<Option<Pin<Box<dyn AsyncWrite + Send>>>>,
}

#[async_trait]
impl ExecHandle for DockerExec {
    async fn write(&self, bytes: &[u8]) -> Result<(), DriverError> {
        let mut input = self.input.lock().await;
        let Some(w) = input.as_mut() else {
            return Err(DriverError::Failed("stdin is closed".into()));
        };
        w.write_all(bytes).await.map_err(|e| DriverError::Failed(format!("stdin: {e}")))?;
        w.flush().await.map_err(|e| DriverError::Failed(format!("stdin: {e}")))
    }

    async fn close_stdin(&self) -> Result<(), DriverError> {
        if let Some(mut w) = self.input.lock().await.take() {
            w.shutdown().await.map_err(|e| DriverError::Failed(format!("stdin: {e}")))?;
        }
        Ok(())
    }

    async fn resize(&self, cols: u16, rows: u16) -> Result<(), DriverError> {
        self.docker
            .resize_exec(&self.exec, ResizeExecOptions { width: cols, height: rows })
            .await
            .map_err(failed("resize"))
    }

    async fn exit_code(&self) -> Result<Option<i64>, DriverError> {
        let info = self.docker.inspect_exec(&self.exec).await.map_err(failed("inspect exec"))?;
        Ok(if info.running == Some(true) { None } else { info.exit_code })
    }

    async fn container_running(&self) -> Result<bool, DriverError> {
        let info = self
            .docker
            .inspect_container(&self.container, None::<bollard::query_parameters::InspectContainerOptions>)
            .await;
        match info {
            Ok(c) => Ok(c.state.and_then(|s| s.running).unwrap_or(false)),
            Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => Ok(false),
            Err(e) => Err(DriverError::Failed(format!("inspect {}: {e}", self.container))),
        }
    }

    async fn kill(&self) -> Result<(), DriverError> {
        let info = self.docker.inspect_exec(&self.exec).await.map_err(failed("inspect exec"))?;
        let Some(pid) = info.pid.filter(|p| *p > 0 && info.running == Some(true)) else { return Ok(()) };
        let pids = in_container(&tree(pid));
        if pids.is_empty() {
            return Err(DriverError::Failed(format!(
                "cannot kill exec process {pid}: its pid in the container is not readable from /proc \
                 (is the agent on its Docker host?)"
            )));
        }
        let mut cmd = vec!["kill".to_string(), "-KILL".into()];
        cmd.extend(pids.iter().map(i64::to_string));
        match run(&self.docker, &self.container, cmd).await? {
            Some(0) => Ok(()),
            // Some may have ended between the read and the kill: fine if the exec did.
            code => match self.exit_code().await? {
                Some(_) => Ok(()),
                None => Err(DriverError::Failed(format!("kill of exec process {pid} exited {code:?}"))),
            },
        }
    }
}

/// `pid` and its descendants (host pids), parents first.
fn tree(pid: i64) -> Vec<i64> {
    let mut out = vec![pid];
    let mut i = 0;
    while i < out.len() && out.len() < 4096 {
        let p = out[i];
        if let Ok(tasks) = std::fs::read_dir(format!("/proc/{p}/task")) {
            for task in tasks.flatten() {
                let children = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
                out.extend(children.split_whitespace().filter_map(|c| c.parse::<i64>().ok()));
            }
        }
        i += 1;
    }
    out
}

/// The pids in the container's namespace of these host pids (those still there).
fn in_container(host_pids: &[i64]) -> Vec<i64> {
    host_pids
        .iter()
        .filter_map(|p| std::fs::read_to_string(format!("/proc/{p}/status")).ok())
        .filter_map(|status| nspid(&status))
        .collect()
}

/// The innermost pid of a `/proc/<pid>/status`: the last field of its `NSpid:` line.
fn nspid(status: &str) -> Option<i64> {
    status.lines().find_map(|l| l.strip_prefix("NSpid:"))?.split_whitespace().last()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pid_in_the_container_is_the_last_nspid() {
        assert_eq!(nspid("Name:\tsleep\nNSpid:\t14027\t7\nNSpgid:\t1\n"), Some(7));
        assert_eq!(nspid("NSpid:\t42\n"), Some(42));
        assert_eq!(nspid("Name:\tsleep\n"), None);
        let me = i64::from(std::process::id());
        assert_eq!(tree(me).first(), Some(&me));
        assert_eq!(in_container(&[me]).len(), 1, "this process's own status is readable");
    }
}
