//! An instance's container log through Docker's logs API (`follow`, `tail`,
//! `timestamps`). One reader per request; it stops as soon as the agent drops the
//! receiver (the viewer closed, or went quiet), which closes the HTTP stream to dockerd.

use std::sync::Arc;

use bollard::container::LogOutput;
use bollard::query_parameters::LogsOptions;
use futures_util::StreamExt;

use super::{Inner, labels};
use crate::plane::agent::driver::{DriverError, LOG_CHANNEL, LogReceiver};
use crate::protocol::clock::rfc3339_ms;
use crate::protocol::{LogLine, LogSource};

/// Where a log read starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum From {
    /// The last N lines.
    Tail(u32),
    /// Every line at or after this time (ms since epoch).
    Since(u64),
}

pub async fn stream(
    inner: &Arc<Inner>,
    id: &str,
    from: From,
    follow: bool,
) -> Result<LogReceiver, DriverError> {
    if !inner.cache().has(id) {
        return Err(DriverError::NotFound(id.into()));
    }
    let container = labels::container_name(id);
    let (tail, since_ms) = match from {
        From::Tail(n) => (n.to_string(), 0),
        From::Since(ms) => ("all".to_string(), ms),
    };
    let opts = LogsOptions {
        follow,
        stdout: true,
        stderr: true,
        timestamps: true,
        tail,
        // Docker counts in whole seconds; the lines of that second before `since_ms` are
        // left out below by their own timestamps.
        since: i32::try_from(since_ms / 1000).unwrap_or(i32::MAX),
        ..Default::default()
    };
    let docker = inner.docker.clone();
    let (tx, rx) = tokio::sync::mpsc::channel(LOG_CHANNEL);
    tokio::spawn(async move {
        let mut logs = docker.logs(&container, Some(opts));
        // A chunk may end mid-line; the rest comes with the next chunk of the same output.
        let mut partial: [String; 2] = Default::default();
        loop {
            let item = tokio::select! {
                item = logs.next() => item,
                // The viewer is gone: stop reading at once, even from a quiet container.
                _ = tx.closed() => return,
            };
            let out = match item {
                Some(Ok(out)) => out,
                Some(Err(err)) => {
                    let text = format!("(quarterdeck: docker logs failed: {err})");
                    let _ = tx.send(LogLine { ts: 0, source: LogSource::Stderr, text }).await;
                    return;
                }
                None => break,
            };
            let (source, bytes) = match out {
                LogOutput::StdErr { message } => (LogSource::Stderr, message),
                LogOutput::StdOut { message } | LogOutput::Console { message } => {
                    (LogSource::Stdout, message)
                }
                LogOutput::StdIn { .. } => continue,
            };
            let buf = &mut partial[usize::from(source == LogSource::Stderr)];
            buf.push_str(&String::from_utf8_lossy(&bytes));
            while let Some(nl) = buf.find('\n') {
                let raw: String = buf.drain(..=nl).collect();
                let line = parse(source, raw.trim_end_matches(['\n', '\r']));
                if line.ts != 0 && line.ts < since_ms {
                    continue;
                }
                if tx.send(line).await.is_err() {
                    return;
                }
            }
        }
        for (k, rest) in partial.into_iter().enumerate() {
            if !rest.is_empty() {
                let source = if k == 0 { LogSource::Stdout } else { LogSource::Stderr };
                let _ = tx.send(parse(source, &rest)).await;
            }
        }
    });
    Ok(rx)
}

/// A line as Docker gives it with `timestamps`: `2026-11-25T10:12:01.123456789Z text`.
fn parse(source: LogSource, raw: &str) -> LogLine {
    match raw.split_once(' ').and_then(|(ts, text)| Some((rfc3339_ms(ts)?, text))) {
        Some((ts, text)) => LogLine { ts, source, text: text.to_string() },
        None => LogLine { ts: 0, source, text: raw.to_string() },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_timestamps_are_read() {
        let l = parse(LogSource::Stdout, "2026-11-25T10:12:01.123456789Z GET / 200");
        assert_eq!(l.text, "GET / 200");
        assert_eq!(l.ts, 1_795_601_521_123);
        assert_eq!(rfc3339_ms("1970-01-01T00:00:01Z"), Some(1000));
        let l = parse(LogSource::Stderr, "no timestamp here");
        assert_eq!((l.ts, l.text.as_str()), (0, "no timestamp here"));
    }
}
