//! Exec sessions, the verb chosen by the first byte: what an agent decodes on
//! `qd.v1.agent.<host>.exec.<user>.<verb>` (start, input, resize, keepalive/stop) with the
//! checks it makes (`plane/agent/exec.rs`), and the frames a viewer decodes on its stream
//! (`client/exec.rs`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use quarterdeck::client::exec::ExecOutcome;
use quarterdeck::protocol::exec::{
    EXEC_ARGS_MAX, EXEC_CHUNK_MAX, EXEC_CMD_BYTES_MAX, EXEC_TERM_MAX, ExecEndReason, ExecFrame, ExecInput,
    ExecPayload, ExecRef, ExecRequest, ExecResize, SHELLS, SessionReport, check_size, check_stream, cmd_line,
    decode_chunk, encode_chunk, frames_lost,
};
use quarterdeck::protocol::subjects::SessionKind;
use quarterdeck::protocol::{decode, validate};
use quarterdeck_fuzz::{envelope_round_trip, round_trip, session_stream_checks, split};

/// A chunk the receiver accepts holds at most the max, and encodes back to the same text
/// (base64 has one spelling of each byte string, so nothing is smuggled in padding).
fn chunk_checks(data: &str) {
    if let Ok(bytes) = decode_chunk(data) {
        assert!(bytes.len() <= EXEC_CHUNK_MAX, "a chunk of {} bytes let through", bytes.len());
        assert_eq!(decode_chunk(&encode_chunk(&bytes)).as_deref(), Ok(&bytes[..]));
    }
}

/// The agent's start (`ExecSessions::start`): a request it lets through runs a bounded
/// command, and the report it then sends passes the controller's check, so every session
/// it runs is audited.
fn start(req: &ExecRequest) {
    if req.check("alice").is_err() {
        return;
    }
    assert!(session_stream_checks(SessionKind::Exec, &req.stream), "{:?}", req.stream);
    assert!(validate::instance_id(&req.instance).is_ok());
    assert!(req.cmd.len() <= EXEC_ARGS_MAX);
    assert!(req.cmd.iter().map(String::len).sum::<usize>() <= EXEC_CMD_BYTES_MAX);
    assert!(req.cmd.iter().all(|a| !a.contains('\0')));
    if req.tty {
        assert!((1..=EXEC_TERM_MAX).contains(&req.cols) && (1..=EXEC_TERM_MAX).contains(&req.rows));
    }
    // What the driver runs: the command, or a shell when none was named.
    let cmd = match req.cmd.is_empty() {
        true => vec![SHELLS[0].to_string()],
        false => req.cmd.clone(),
    };
    let report = SessionReport {
        kind: SessionKind::Exec.into(),
        user: "alice".into(),
        session: req.stream.rsplit('.').next().unwrap_or_default().to_string(),
        instance: req.instance.clone(),
        what: validate::cut_owned(cmd_line(&cmd), 1024),
        started_at: 1,
        end: None,
    };
    assert_eq!(report.check(), Ok(()), "the agent's report of a session it runs is refused");
}

fuzz_target!(|data: &[u8]| {
    let Some((selector, payload)) = split(data) else { return };
    match selector % 5 {
        0 => {
            let Ok(env) = decode::<ExecRequest>(payload) else { return };
            envelope_round_trip(&env);
            round_trip(&env.body);
            start(&env.body);
            let _ = cmd_line(&env.body.cmd);
        }
        1 => {
            let Ok(env) = decode::<ExecInput>(payload) else { return };
            envelope_round_trip(&env);
            chunk_checks(&env.body.data);
            if check_stream("alice", &env.body.stream).is_ok() {
                assert!(session_stream_checks(SessionKind::Exec, &env.body.stream));
            }
            // The agent's count of input chunks (`next_input`).
            let _ = env.body.seq.saturating_add(1);
        }
        2 => {
            let Ok(env) = decode::<ExecResize>(payload) else { return };
            envelope_round_trip(&env);
            let r = &env.body;
            if check_size(r.cols, r.rows).is_ok() {
                assert!(r.cols >= 1 && r.rows >= 1 && r.cols <= EXEC_TERM_MAX && r.rows <= EXEC_TERM_MAX);
            }
            session_stream_checks(SessionKind::Exec, &r.stream);
        }
        3 => {
            let Ok(env) = decode::<ExecRef>(payload) else { return };
            envelope_round_trip(&env);
            let ok = check_stream("alice", &env.body.stream).is_ok();
            assert_eq!(ok, session_stream_checks(SessionKind::Exec, &env.body.stream));
        }
        _ => {
            // The viewer's reader: frames counted, output chunks decoded, the end shown.
            let Ok(env) = decode::<ExecFrame>(payload) else { return };
            envelope_round_trip(&env);
            round_trip(&env.body);
            let frame = env.body;
            for start in [0, frame.seq / 2, frame.seq, u64::MAX] {
                let mut next = start;
                let lost = frames_lost(&mut next, frame.seq);
                assert_eq!(lost, frame.seq.saturating_sub(start), "frames lost before {}", frame.seq);
                assert!(next >= start && (next > frame.seq || frame.seq == u64::MAX), "next {next}");
            }
            match frame.what {
                ExecPayload::Out { data, .. } => chunk_checks(&data),
                ExecPayload::Alive => {}
                ExecPayload::End(end) => {
                    // What `ctl exec` exits with and says: a shell's status (the code's low
                    // byte), and silence only for a process that exited 0.
                    let exited = match (end.reason, end.exit_code) {
                        (ExecEndReason::Exited, Some(code)) => Some(code),
                        _ => None,
                    };
                    let outcome = ExecOutcome::of_end(end);
                    let status = outcome.exit_status();
                    assert_eq!(outcome.message().is_none(), exited == Some(0), "{outcome:?}");
                    assert_eq!(
                        status == 0,
                        exited.is_some_and(|c| c & 0xff == 0),
                        "status {status} for {outcome:?}"
                    );
                }
            }
        }
    }
});
