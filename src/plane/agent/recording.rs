//! A session's recording as an asciicast v2 file: a header line, then one
//! `[seconds, "o", text]` line per output chunk. Output only: input is in it as the process
//! echoed it, never as typed (a password typed without echo is not recorded). Bounded at
//! [`RECORDING_MAX`] bytes: past it a last line says the rest was left out.

use serde_json::json;

/// The most bytes a recording keeps.
pub const RECORDING_MAX: usize = 4 * 1024 * 1024;

pub struct Recording {
    started_ms: u64,
    text: String,
    /// The start of a UTF-8 sequence cut between two chunks.
    carry: Vec<u8>,
    full: bool,
}

impl Recording {
    pub fn new(started_ms: u64, (cols, rows): (u16, u16), command: &str) -> Recording {
        // A session without a TTY has no size: players need one.
        let (width, height) = if cols == 0 || rows == 0 { (80, 24) } else { (cols, rows) };
        let header = json!({
            "version": 2,
            "width": width,
            "height": height,
            "timestamp": started_ms / 1000,
            "command": command,
        });
        Recording { started_ms, text: format!("{header}\n"), carry: Vec::new(), full: false }
    }

    /// Output at `now_ms`.
    pub fn output(&mut self, now_ms: u64, bytes: &[u8]) {
        if self.full {
            return;
        }
        self.carry.extend_from_slice(bytes);
        let valid = match std::str::from_utf8(&self.carry) {
            Ok(_) => self.carry.len(),
            // An incomplete sequence at the end waits for the next chunk; an invalid one
            // is replaced.
            Err(e) if e.error_len().is_none() => e.valid_up_to(),
            Err(_) => self.carry.len(),
        };
        let rest = self.carry.split_off(valid);
        let text = String::from_utf8_lossy(&self.carry).into_owned();
        self.carry = rest;
        if text.is_empty() {
            return;
        }
        let t = now_ms.saturating_sub(self.started_ms) as f64 / 1000.0;
        let line = format!("{}\n", json!([t, "o", text]));
        if self.text.len() + line.len() > RECORDING_MAX {
            self.full = true;
            let note = format!("\r\n[quarterdeck: the recording stops here, at {RECORDING_MAX} bytes]\r\n");
            self.text.push_str(&format!("{}\n", json!([t, "o", note])));
            return;
        }
        self.text.push_str(&line);
    }

    pub fn finish(self) -> Vec<u8> {
        self.text.into_bytes()
    }
}

/// The output events of an asciicast v2 file: (seconds, text), in order; or why it is not one.
pub fn parse(cast: &str) -> Result<Vec<(f64, String)>, String> {
    let mut lines = cast.lines();
    let header: serde_json::Value = serde_json::from_str(lines.next().unwrap_or_default())
        .map_err(|e| format!("not an asciicast file: bad header: {e}"))?;
    if header["version"] != 2 {
        return Err(format!("not an asciicast v2 file: version {}", header["version"]));
    }
    let mut out = Vec::new();
    for (n, line) in lines.enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let bad = || format!("asciicast line {}: not [time, type, data]", n + 2);
        let (t, kind, data): (f64, String, String) = serde_json::from_str(line).map_err(|_| bad())?;
        if kind == "o" {
            out.push((t, data));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_is_recorded_with_its_time_and_reads_back() {
        let mut r = Recording::new(10_000, (100, 30), "/bin/sh");
        r.output(10_500, b"hello ");
        // "é" cut between two chunks.
        r.output(11_000, &[b'w', 0xc3]);
        r.output(11_250, &[0xa9, b'\n']);
        let cast = String::from_utf8(r.finish()).unwrap();
        let header: serde_json::Value = serde_json::from_str(cast.lines().next().unwrap()).unwrap();
        assert_eq!((header["width"].as_u64(), header["height"].as_u64()), (Some(100), Some(30)));
        assert_eq!(header["timestamp"], 10);
        let events = parse(&cast).unwrap();
        assert_eq!(events, [(0.5, "hello ".into()), (1.0, "w".into()), (1.25, "é\n".into())]);
    }

    #[test]
    fn a_recording_is_bounded() {
        let mut r = Recording::new(0, (0, 0), "yes");
        let chunk = vec![b'y'; 64 * 1024];
        for i in 0..200 {
            r.output(i, &chunk);
        }
        let cast = String::from_utf8(r.finish()).unwrap();
        assert!(cast.len() <= RECORDING_MAX + 200, "{}", cast.len());
        assert!(cast.contains("the recording stops here"));
        assert!(parse(&cast).is_ok());
        assert!(parse("{\"version\":1}").unwrap_err().contains("v2"));
        assert!(parse("{\"version\":2}\n[1]").unwrap_err().contains("line 2"));
    }
}
