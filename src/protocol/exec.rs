//! Exec sessions: a process in an instance's container, run by the instance's agent for one
//! user (docs/protocol.md §4 "Exec"). Shaped as the log streams: the user sits in every
//! subject (`qd.v1.agent.<host>.exec.<user>.<verb>` and the stream
//! `qd.v1.exec.<user>.<session id>`), a session id is one token, keep-alives go both ways,
//! and every field is bounded. Bytes travel base64-encoded in JSON, at most
//! [`EXEC_CHUNK_MAX`] raw bytes a message, so every message fits max_payload.

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::subjects::{self, SessionKind};
use super::validate;

/// What a user asks an agent about its exec sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecVerb {
    /// Start a session (a request: answered with `Reply<ExecStarted>`).
    Start,
    /// Bytes for the process's stdin (a publish).
    Input,
    /// The viewer's terminal changed size (a publish).
    Resize,
    /// The viewer is still there (a publish); without one for [`EXEC_KEEPALIVE_TIMEOUT_MS`]
    /// the agent kills the process.
    Keepalive,
    /// End the session now (a publish): the agent kills the process.
    Stop,
}

impl ExecVerb {
    pub const ALL: [ExecVerb; 5] =
        [ExecVerb::Start, ExecVerb::Input, ExecVerb::Resize, ExecVerb::Keepalive, ExecVerb::Stop];

    pub fn as_str(self) -> &'static str {
        match self {
            ExecVerb::Start => "start",
            ExecVerb::Input => "input",
            ExecVerb::Resize => "resize",
            ExecVerb::Keepalive => "keepalive",
            ExecVerb::Stop => "stop",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        ExecVerb::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// `qd.v1.agent.<host>.exec.<user>.<verb>`.
    pub fn subject(self, host: &str, user: &str) -> String {
        subjects::session_request(SessionKind::Exec, host, user, self.as_str())
    }
}

/// A viewer sends a keep-alive this often while its session is open.
pub const EXEC_KEEPALIVE_EVERY_MS: u64 = 2_000;
/// An agent kills a session whose viewer has been silent this long.
pub const EXEC_KEEPALIVE_TIMEOUT_MS: u64 = 10_000;
/// An agent sends an `Alive` frame this often when the process is quiet, so the viewer
/// can tell a quiet shell from a lost agent.
pub const EXEC_ALIVE_EVERY_MS: u64 = 2_000;
/// A viewer gives the session up (agent lost) after this long without any frame.
pub const EXEC_AGENT_SILENT_MS: u64 = 10_000;
/// The most raw bytes in one input or output chunk (base64 makes it 4/3 of that on the wire).
pub const EXEC_CHUNK_MAX: usize = 32 * 1024;
/// The most arguments, and bytes in all, of a command.
pub const EXEC_ARGS_MAX: usize = 64;
pub const EXEC_CMD_BYTES_MAX: usize = 4096;
/// Terminal sizes outside 1..=1000 are refused.
pub const EXEC_TERM_MAX: u16 = 1000;

/// The shells tried, in order, when a session names no command; the last is used when the
/// image has neither.
pub const SHELLS: [&str; 2] = ["/bin/bash", "/bin/sh"];

/// `qd.v1.agent.<host>.exec.<user>.start`: run `cmd` (empty: a shell) in `instance`'s
/// container, its output to `stream` (`qd.v1.exec.<user>.<session id>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecRequest {
    pub instance: String,
    #[serde(default)]
    pub cmd: Vec<String>,
    /// A pseudo-terminal (stdout and stderr are then one output).
    #[serde(default)]
    pub tty: bool,
    #[serde(default)]
    pub cols: u16,
    #[serde(default)]
    pub rows: u16,
    pub stream: String,
}

impl ExecRequest {
    /// Bounds of every field; `user` owns the stream.
    pub fn check(&self, user: &str) -> Result<(), String> {
        validate::instance_id(&self.instance)?;
        check_stream(user, &self.stream)?;
        if self.cmd.len() > EXEC_ARGS_MAX {
            return Err(format!("a command has at most {EXEC_ARGS_MAX} arguments, not {}", self.cmd.len()));
        }
        let bytes: usize = self.cmd.iter().map(String::len).sum();
        if bytes > EXEC_CMD_BYTES_MAX {
            return Err(format!("a command has at most {EXEC_CMD_BYTES_MAX} bytes, not {bytes}"));
        }
        if let Some(bad) = self.cmd.iter().find(|a| a.contains('\0')) {
            return Err(format!("argument {} holds a NUL byte", validate::quoted(bad)));
        }
        if self.cmd.first().is_some_and(String::is_empty) {
            return Err("the command's first word is empty".into());
        }
        if self.tty {
            check_size(self.cols, self.rows)?;
        }
        Ok(())
    }
}

/// A terminal size within bounds.
pub fn check_size(cols: u16, rows: u16) -> Result<(), String> {
    let ok = |n: u16| (1..=EXEC_TERM_MAX).contains(&n);
    if ok(cols) && ok(rows) {
        Ok(())
    } else {
        Err(format!("terminal size {cols}x{rows} is out of bounds (1..={EXEC_TERM_MAX} each)"))
    }
}

/// The stream is `user`'s own, one token.
pub fn check_stream(user: &str, stream: &str) -> Result<(), String> {
    if subjects::is_session_stream_of(SessionKind::Exec, user, stream) {
        Ok(())
    } else {
        Err(format!(
            "exec stream subject {} must be qd.v1.exec.{user}.<session id> (letters, digits, - and _, at \
             most 64): a stream of {user}'s own",
            validate::quoted(stream)
        ))
    }
}

/// The answer to a start: the session runs, and what it runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecStarted {
    /// The session id (the stream's last token).
    pub session: String,
    /// The command run (the shell found, when none was named).
    pub cmd: Vec<String>,
}

/// `input`: bytes for the process's stdin, in order (`seq` from 0, so the agent sees a
/// lost chunk). An empty `data` with `eof` closes stdin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecInput {
    pub stream: String,
    pub seq: u64,
    /// Base64 of at most [`EXEC_CHUNK_MAX`] bytes.
    pub data: String,
    #[serde(default)]
    pub eof: bool,
}

/// `resize`: the viewer's terminal size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecResize {
    pub stream: String,
    pub cols: u16,
    pub rows: u16,
}

/// `keepalive` and `stop`: about one session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecRef {
    pub stream: String,
}

/// Which output of the process a chunk came from (one, `stdout`, with a TTY).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExecFd {
    Stdout,
    Stderr,
}

/// One message on the session's stream, agent to viewer. `seq` counts frames from 0, so
/// the viewer sees a lost one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecFrame {
    pub seq: u64,
    pub what: ExecPayload,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExecPayload {
    /// Output: base64 of at most [`EXEC_CHUNK_MAX`] bytes.
    Out { fd: ExecFd, data: String },
    /// Nothing to say, but the agent and the session are there.
    Alive,
    /// The last frame.
    End(ExecEnd),
}

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExecEndReason {
    /// The process exited (its code in `exit_code`).
    Exited,
    /// The viewer asked (`stop`).
    Stopped,
    /// The viewer's keep-alives stopped: the process was killed.
    ViewerLost,
    /// The container stopped or was removed under the session.
    ContainerDied,
    /// The runtime failed (the detail says how).
    Failed,
    #[serde(other)]
    Unknown,
}

impl ExecEndReason {
    pub fn as_str(self) -> &'static str {
        match self {
            ExecEndReason::Exited => "exited",
            ExecEndReason::Stopped => "stopped",
            ExecEndReason::ViewerLost => "viewer_lost",
            ExecEndReason::ContainerDied => "container_died",
            ExecEndReason::Failed => "failed",
            ExecEndReason::Unknown => "unknown",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecEnd {
    #[serde(default)]
    pub exit_code: Option<i64>,
    pub reason: ExecEndReason,
    /// For people; at most [`validate::QUOTE_MAX`]×4 bytes.
    #[serde(default)]
    pub detail: String,
}

/// Base64 of `bytes` (callers cut to [`EXEC_CHUNK_MAX`] first).
pub fn encode_chunk(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The bytes of a chunk, or why it is not one: bad base64, or more than [`EXEC_CHUNK_MAX`].
pub fn decode_chunk(data: &str) -> Result<Vec<u8>, String> {
    // 4 characters carry 3 bytes: anything longer cannot be within the bound.
    if data.len() > EXEC_CHUNK_MAX.div_ceil(3) * 4 {
        return Err(format!("a chunk holds at most {EXEC_CHUNK_MAX} bytes"));
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data)
        .map_err(|e| format!("a chunk is not base64: {e}"))?;
    if bytes.len() > EXEC_CHUNK_MAX {
        return Err(format!("a chunk holds at most {EXEC_CHUNK_MAX} bytes, not {}", bytes.len()));
    }
    Ok(bytes)
}

/// `bytes` in chunks of at most [`EXEC_CHUNK_MAX`].
pub fn chunks(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    bytes.chunks(EXEC_CHUNK_MAX)
}

/// A viewer's count of the frames lost before the one numbered `seq`, `next` being the
/// one it expected; `next` moves past `seq`. An older frame (a duplicate) loses nothing and
/// moves nothing back. Saturating: `seq` is the agent's word, and `u64::MAX` is a number
/// it can send.
pub fn frames_lost(next: &mut u64, seq: u64) -> u64 {
    let lost = seq.saturating_sub(*next);
    *next = (*next).max(seq.saturating_add(1));
    lost
}

/// A session is reported to the controller at its start and its end
/// (`qd.v1.agent.<host>.session`), whatever its kind, so only the controller writes the
/// audit trail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionReport {
    pub kind: SessionKindWire,
    pub user: String,
    pub session: String,
    pub instance: String,
    /// What ran (exec: the command; port-forward: the port).
    #[serde(default)]
    pub what: String,
    pub started_at: u64,
    /// Set on the end report.
    #[serde(default)]
    pub end: Option<SessionEnd>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionEnd {
    pub ended_at: u64,
    #[serde(default)]
    pub exit_code: Option<i64>,
    /// `exited`, `stopped`, `viewer_lost`, ... (the kind's own words).
    pub reason: String,
    #[serde(default)]
    pub detail: String,
    /// The object in the sessions bucket holding the session's recording, if any.
    #[serde(default)]
    pub recording: Option<String>,
}

/// `SessionKind` as it travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionKindWire {
    Exec,
    Forward,
}

impl From<SessionKind> for SessionKindWire {
    fn from(k: SessionKind) -> Self {
        match k {
            SessionKind::Exec => SessionKindWire::Exec,
            SessionKind::Forward => SessionKindWire::Forward,
        }
    }
}

impl SessionKindWire {
    pub fn as_str(self) -> &'static str {
        match self {
            SessionKindWire::Exec => "exec",
            SessionKindWire::Forward => "port-forward",
        }
    }
}

impl SessionReport {
    /// Bounds of what the controller writes into the audit trail from it.
    pub fn check(&self) -> Result<(), String> {
        validate::instance_id(&self.instance)?;
        token("session", &self.session)?;
        token("user", &self.user)?;
        if self.what.len() > EXEC_CMD_BYTES_MAX {
            return Err(format!("what ran is at most {EXEC_CMD_BYTES_MAX} bytes"));
        }
        if let Some(end) = &self.end {
            if end.reason.len() > 32 || end.detail.len() > 4 * validate::QUOTE_MAX {
                return Err("a session end's reason or detail is too long".into());
            }
            if let Some(r) = &end.recording {
                token("recording", r)?;
            }
        }
        Ok(())
    }
}

/// A session id (and a user, a recording's name): one subject token of letters, digits,
/// `-` and `_`, at most 64.
pub fn token(what: &str, v: &str) -> Result<(), String> {
    if (1..=64).contains(&v.len()) && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        Ok(())
    } else {
        Err(format!("{what} {} is not one token of at most 64 letters, digits, - and _", validate::quoted(v)))
    }
}

/// The Object Store bucket session recordings live in (asciicast v2, one object a
/// session, named by its session id).
pub const SESSIONS_BUCKET: &str = "qd_sessions";

/// A command for people: its words joined with spaces, each quoted when it must be.
pub fn cmd_line(cmd: &[String]) -> String {
    cmd.iter()
        .map(|a| {
            if !a.is_empty() && a.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c)) {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(cmd: &[&str]) -> ExecRequest {
        ExecRequest {
            instance: "web-0-abcd".into(),
            cmd: cmd.iter().map(|s| s.to_string()).collect(),
            tty: false,
            cols: 0,
            rows: 0,
            stream: subjects::session_stream(SessionKind::Exec, "alice", "s1"),
        }
    }

    #[test]
    fn a_request_is_bounded_in_every_field() {
        assert_eq!(req(&["cat", "/app/index.html"]).check("alice"), Ok(()));
        assert_eq!(req(&[]).check("alice"), Ok(()), "no command: a shell");
        assert!(req(&["ls"]).check("bob").unwrap_err().contains("bob's own"));
        let many: Vec<String> = (0..=EXEC_ARGS_MAX).map(|i| i.to_string()).collect();
        let r = ExecRequest { cmd: many, ..req(&[]) };
        assert!(r.check("alice").unwrap_err().contains("at most 64 arguments"));
        let long = "x".repeat(EXEC_CMD_BYTES_MAX + 1);
        assert!(req(&[&long]).check("alice").unwrap_err().contains("bytes"));
        assert!(req(&["a\0b"]).check("alice").unwrap_err().contains("NUL"));
        assert!(req(&[""]).check("alice").unwrap_err().contains("empty"));
        let tty = ExecRequest { tty: true, cols: 0, rows: 24, ..req(&[]) };
        assert!(tty.check("alice").unwrap_err().contains("0x24"));
        let tty = ExecRequest { tty: true, cols: 80, rows: 24, ..req(&[]) };
        assert_eq!(tty.check("alice"), Ok(()));
        let bad = ExecRequest { instance: "../x".into(), ..req(&[]) };
        assert!(bad.check("alice").is_err());
    }

    #[test]
    fn chunks_are_base64_and_bounded() {
        let bytes: Vec<u8> = (0..=255).collect();
        assert_eq!(decode_chunk(&encode_chunk(&bytes)), Ok(bytes));
        let max = vec![7u8; EXEC_CHUNK_MAX];
        assert_eq!(decode_chunk(&encode_chunk(&max)).map(|b| b.len()), Ok(EXEC_CHUNK_MAX));
        let over = vec![7u8; EXEC_CHUNK_MAX + 1];
        assert!(decode_chunk(&encode_chunk(&over)).unwrap_err().contains("at most"));
        assert!(decode_chunk("not base64!").unwrap_err().contains("not base64"));
        assert_eq!(chunks(&vec![0u8; EXEC_CHUNK_MAX * 2 + 1]).count(), 3);
    }

    #[test]
    fn frames_read_as_they_are_documented() {
        let f =
            ExecFrame { seq: 3, what: ExecPayload::Out { fd: ExecFd::Stderr, data: encode_chunk(b"hi") } };
        let text = serde_json::to_string(&f).unwrap();
        assert_eq!(text, r#"{"seq":3,"what":{"out":{"fd":"stderr","data":"aGk="}}}"#);
        let end: ExecFrame =
            serde_json::from_str(r#"{"seq":4,"what":{"end":{"exit_code":3,"reason":"exited"}}}"#).unwrap();
        assert_eq!(
            end.what,
            ExecPayload::End(ExecEnd {
                exit_code: Some(3),
                reason: ExecEndReason::Exited,
                detail: String::new()
            })
        );
        let alive: ExecFrame = serde_json::from_str(r#"{"seq":5,"what":"alive"}"#).unwrap();
        assert_eq!(alive.what, ExecPayload::Alive);
        let later: ExecEnd = serde_json::from_str(r#"{"reason":"a_new_one"}"#).unwrap();
        assert_eq!(later.reason, ExecEndReason::Unknown, "a newer agent's reason is read");
    }

    #[test]
    fn lost_frames_are_counted_whatever_the_sequence_numbers() {
        let mut next = 0;
        assert_eq!(frames_lost(&mut next, 0), 0);
        assert_eq!(frames_lost(&mut next, 3), 2, "frames 1 and 2 lost");
        assert_eq!(next, 4);
        assert_eq!(frames_lost(&mut next, 1), 0, "a late frame");
        assert_eq!(next, 4, "a late frame moves nothing back");
        // A broken agent's last number: no overflow (it panicked the viewer's reader).
        assert_eq!(frames_lost(&mut next, u64::MAX), u64::MAX - 4);
        assert_eq!(next, u64::MAX);
        assert_eq!(frames_lost(&mut next, u64::MAX), 0);
    }

    #[test]
    fn verbs_and_commands_read_back() {
        for v in ExecVerb::ALL {
            assert_eq!(ExecVerb::parse(v.as_str()), Some(v));
        }
        assert_eq!(ExecVerb::Start.subject("h1", "alice"), "qd.v1.agent.h1.exec.alice.start");
        assert_eq!(cmd_line(&["sh".into(), "-c".into(), "exit 3".into()]), "sh -c 'exit 3'");
        assert_eq!(cmd_line(&["it's".into()]), r"'it'\''s'");
    }

    #[test]
    fn a_session_report_is_bounded() {
        let mut r = SessionReport {
            kind: SessionKind::Exec.into(),
            user: "alice".into(),
            session: "s1".into(),
            instance: "web-0-abcd".into(),
            what: "sh".into(),
            started_at: 1,
            end: None,
        };
        assert_eq!(r.check(), Ok(()));
        r.session = "a.b".into();
        assert!(r.check().unwrap_err().contains("session"));
        r.session = "s1".into();
        r.end = Some(SessionEnd {
            ended_at: 2,
            exit_code: Some(0),
            reason: "exited".into(),
            detail: "x".repeat(1000),
            recording: None,
        });
        assert!(r.check().unwrap_err().contains("too long"));
    }
}
