//! The traffic log nginx writes and the router tails: `DIR/logs/traffic.log`, one `qd_json`
//! line per request, written by nginx in 64 KiB blocks (flushed at least every second) so
//! that logging costs nginx about what a plain access log does. A thread reads what was
//! appended every `PASS_EVERY` and feeds the complete lines to the shared traffic window;
//! a line that is not `qd_json` is counted and logged at most once a minute, never fatal.
//!
//! The file is kept bounded here: past `ROTATE_AT` it is renamed to `traffic.log.1` (the
//! older one replaced) and nginx is asked to reopen its logs; the renamed file is read to
//! its end through the open handle before the new one is followed. A file cut short
//! (truncated) is read again from its start.

use std::collections::HashMap;
use std::fs::File;
use std::io::ErrorKind;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::config::TRAFFIC_LOG;
use super::traffic::Window;
use crate::protocol::clock::now_ms;

/// How often the file is read: with nginx's `flush=1s`, a request is counted at most ~1.5 s
/// after it was logged.
const PASS_EVERY: Duration = Duration::from_millis(500);
/// The size of one read.
const CHUNK: usize = 64 * 1024;
/// The most read in one pass (32 MiB/s at one pass every 500 ms, some 250 000 requests/s):
/// more waits for the next pass.
const MAX_PASS_BYTES: u64 = 16 * 1024 * 1024;
/// A longer line is no `qd_json` line: it is dropped and counted as bad, so the partial
/// line kept between passes stays bounded.
pub const MAX_LINE: usize = 16 * 1024;
/// The size past which the file is rotated.
pub const ROTATE_AT: u64 = 64 * 1024 * 1024;
/// How often the same trouble is logged at most.
const LOG_EVERY: Duration = Duration::from_secs(60);

/// What asks nginx to reopen its log files after the rename.
pub type Reopen = Box<dyn FnMut() -> Result<(), String> + Send>;

/// The traffic reading: the window the tailed lines go into.
#[derive(Clone)]
pub struct TrafficFeed {
    window: Arc<Mutex<Window>>,
}

impl TrafficFeed {
    /// Starts tailing `DIR/logs/traffic.log` from its current end (older lines are not this
    /// window's); `reopen` is called after each rotation. The thread stops once every clone
    /// of the feed is dropped.
    pub fn start(
        dir: &Path,
        reopen: impl FnMut() -> Result<(), String> + Send + 'static,
    ) -> Result<Self, String> {
        let window = Arc::new(Mutex::new(Window::default()));
        let tailer = Tailer::at_end(dir.join(TRAFFIC_LOG), ROTATE_AT, Box::new(reopen));
        let shared = window.clone();
        std::thread::Builder::new()
            .name("traffic-log".into())
            .spawn(move || tail(tailer, shared))
            .map_err(|e| format!("cannot start the traffic log reader: {e}"))?;
        Ok(TrafficFeed { window })
    }

    /// Where the lines are read from, for the log.
    pub fn path(dir: &Path) -> PathBuf {
        dir.join(TRAFFIC_LOG)
    }

    fn window(&self) -> MutexGuard<'_, Window> {
        lock(&self.window)
    }

    /// Which app each domain is (lower case) after an apply.
    pub fn set_domains(&self, domains: HashMap<String, String>) {
        self.window().set_domains(domains);
    }

    /// The traffic over the window up to now.
    pub fn traffic(&self) -> crate::protocol::Traffic {
        self.window().traffic(now_ms())
    }
}

fn lock(window: &Mutex<Window>) -> MutexGuard<'_, Window> {
    // A panic while holding it cannot leave the counts unusable: take them as they are.
    window.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Logs a trouble at most once a `LOG_EVERY`.
#[derive(Default)]
struct Throttle(Option<Instant>);

impl Throttle {
    fn due(&mut self) -> bool {
        let due = self.0.is_none_or(|at| at.elapsed() >= LOG_EVERY);
        if due {
            self.0 = Some(Instant::now());
        }
        due
    }
}

fn tail(mut tailer: Tailer, window: Arc<Mutex<Window>>) {
    let (mut bad_line, mut trouble) = (Throttle::default(), Throttle::default());
    while Arc::strong_count(&window) > 1 {
        let result = tailer.pass(&mut |block| add_block(&window, block, &mut bad_line));
        let dropped = std::mem::take(&mut tailer.dropped);
        if dropped > 0 {
            lock(&window).bad_lines += dropped;
        }
        if let Err(e) = result
            && trouble.due()
        {
            log::warn!("traffic log {}: {e}", tailer.path.display());
        }
        std::thread::sleep(PASS_EVERY);
    }
}

/// Adds complete lines (each ending in a newline) to the window, under one lock.
fn add_block(window: &Mutex<Window>, block: &[u8], throttle: &mut Throttle) {
    let now = now_ms();
    let mut window = lock(window);
    for line in block.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let line = String::from_utf8_lossy(line);
        if let Err(e) = window.add_line(&line, now)
            && throttle.due()
        {
            log::warn!(
                "access log line not counted ({} so far): {e}: {:.200}",
                window.bad_lines,
                line.trim_end()
            );
        }
    }
}

/// The file being read: its handle, which file it is, how far it was read.
struct Open {
    file: File,
    inode: u64,
    offset: u64,
}

impl Open {
    fn new(file: File, at_end: bool) -> Result<Open, String> {
        let meta = file.metadata().map_err(|e| format!("cannot stat the open file: {e}"))?;
        Ok(Open { file, inode: meta.ino(), offset: if at_end { meta.len() } else { 0 } })
    }
}

/// Reads what is appended to a file, line by line, across truncation, replacement and its
/// own rotation. Blocking: one `pass` at a time.
pub struct Tailer {
    path: PathBuf,
    rotate_at: u64,
    reopen: Reopen,
    open: Option<Open>,
    /// The start of a line whose end has not been written yet.
    partial: Vec<u8>,
    /// Inside a line over `MAX_LINE`: everything up to its newline is dropped.
    skipping: bool,
    /// The path names another file: it is followed once the old one has had a quiet pass
    /// (nginx's workers flush their buffers to the old file as they reopen).
    replaced: bool,
    /// Lines dropped (too long, or cut by a truncation or a replacement) since last taken.
    pub dropped: u64,
    buf: Vec<u8>,
    block: Vec<u8>,
}

impl Tailer {
    /// A tailer of `path` from its current end (from its start once it appears, if it
    /// does not exist yet).
    pub fn at_end(path: PathBuf, rotate_at: u64, reopen: Reopen) -> Tailer {
        let open = File::open(&path).ok().and_then(|f| Open::new(f, true).ok());
        Tailer {
            path,
            rotate_at,
            reopen,
            open,
            partial: Vec::new(),
            skipping: false,
            replaced: false,
            dropped: 0,
            buf: vec![0; CHUNK],
            block: Vec::new(),
        }
    }

    /// Reads what was appended since the last pass (at most `MAX_PASS_BYTES`), giving
    /// `sink` blocks of complete lines; follows a replaced file and rotates a large one.
    pub fn pass(&mut self, sink: &mut dyn FnMut(&[u8])) -> Result<(), String> {
        if self.open.is_none() {
            match File::open(&self.path) {
                Ok(f) => self.open = Some(Open::new(f, false)?),
                Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(format!("cannot open it: {e}")),
            }
        }
        let read = self.drain(sink, MAX_PASS_BYTES)?;
        if read == MAX_PASS_BYTES {
            return Ok(());
        }
        let inode = match std::fs::metadata(&self.path) {
            Ok(m) => Some(m.ino()),
            // Renamed away and not yet created again: nginx still writes to the old file.
            Err(e) if e.kind() == ErrorKind::NotFound => None,
            Err(e) => return Err(format!("cannot stat it: {e}")),
        };
        let current = self.open.as_ref().map(|o| (o.inode, o.offset));
        match (inode, current) {
            (Some(new), Some((old, _))) if new != old => {
                if self.replaced && read == 0 {
                    self.follow_new(sink, MAX_PASS_BYTES)?;
                } else {
                    self.replaced = true;
                }
                Ok(())
            }
            (Some(_), Some((_, offset))) if offset >= self.rotate_at => self.rotate(),
            _ => Ok(()),
        }
    }

    /// Leaves the old file (read to its end) for the one the path names now.
    fn follow_new(&mut self, sink: &mut dyn FnMut(&[u8]), budget: u64) -> Result<(), String> {
        self.end_line();
        self.replaced = false;
        self.open = None;
        let file = File::open(&self.path).map_err(|e| format!("cannot open the new file: {e}"))?;
        self.open = Some(Open::new(file, false)?);
        self.drain(sink, budget).map(|_| ())
    }

    /// Renames the file to `.1` and has nginx reopen its logs; the open handle still
    /// reads the renamed file to its end.
    fn rotate(&mut self) -> Result<(), String> {
        let mut old = self.path.clone().into_os_string();
        old.push(".1");
        std::fs::rename(&self.path, &old).map_err(|e| format!("cannot rotate it: {e}"))?;
        (self.reopen)().map_err(|e| format!("rotated, but nginx did not reopen its logs: {e}"))
    }

    /// A partial line that will never be finished (its file was cut or left).
    fn end_line(&mut self) {
        if !self.partial.is_empty() || self.skipping {
            self.dropped += u64::from(!self.partial.is_empty());
            self.partial.clear();
            self.skipping = false;
        }
    }

    /// Reads the open file from its offset up to `budget` bytes; returns how many.
    fn drain(&mut self, sink: &mut dyn FnMut(&[u8]), budget: u64) -> Result<u64, String> {
        let Some(open) = self.open.as_mut() else { return Ok(0) };
        let len = open.file.metadata().map_err(|e| format!("cannot stat it: {e}"))?.len();
        if len < open.offset {
            open.offset = 0;
            self.end_line();
        }
        let mut total = 0u64;
        while total < budget {
            let Some(open) = self.open.as_mut() else { break };
            let want = CHUNK.min(usize::try_from(budget - total).unwrap_or(CHUNK));
            let n = open
                .file
                .read_at(&mut self.buf[..want], open.offset)
                .map_err(|e| format!("cannot read it: {e}"))?;
            if n == 0 {
                break;
            }
            open.offset += n as u64;
            total += n as u64;
            self.take(n, sink);
        }
        Ok(total)
    }

    /// Splits the first `n` bytes of `buf` into lines: complete ones go to `sink` in one
    /// block, the unfinished last one is kept for the next read.
    fn take(&mut self, n: usize, sink: &mut dyn FnMut(&[u8])) {
        self.block.clear();
        let mut rest = &self.buf[..n];
        while let Some(i) = rest.iter().position(|&b| b == b'\n') {
            let piece = &rest[..i];
            rest = &rest[i + 1..];
            if self.skipping {
                self.skipping = false;
            } else if self.partial.len() + piece.len() > MAX_LINE {
                self.dropped += 1;
                self.partial.clear();
            } else {
                self.block.extend_from_slice(&self.partial);
                self.block.extend_from_slice(piece);
                self.block.push(b'\n');
                self.partial.clear();
            }
        }
        if !self.skipping {
            if self.partial.len() + rest.len() > MAX_LINE {
                self.dropped += 1;
                self.partial.clear();
                self.skipping = true;
            } else {
                self.partial.extend_from_slice(rest);
            }
        }
        if !self.block.is_empty() {
            sink(&self.block);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("qd-tail-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a temp dir");
        dir
    }

    fn append(path: &Path, bytes: &str) {
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path).expect("opens");
        f.write_all(bytes.as_bytes()).expect("writes");
    }

    fn never() -> Reopen {
        Box::new(|| Err("not expected".into()))
    }

    /// The lines one pass gives.
    fn pass(t: &mut Tailer) -> Vec<String> {
        let mut lines = Vec::new();
        t.pass(&mut |block| {
            lines.extend(String::from_utf8_lossy(block).lines().map(str::to_string));
        })
        .expect("a pass");
        lines
    }

    #[test]
    fn it_starts_at_the_end_and_joins_lines_written_in_pieces() {
        let dir = temp_dir("pieces");
        let path = dir.join("traffic.log");
        append(&path, "old 1\nold 2\n");
        let mut t = Tailer::at_end(path.clone(), u64::MAX, never());
        assert!(pass(&mut t).is_empty());
        append(&path, "new 1\nne");
        assert_eq!(pass(&mut t), ["new 1"]);
        append(&path, "w 2");
        assert!(pass(&mut t).is_empty(), "a partial line waits for its end");
        append(&path, "\nnew 3\n");
        assert_eq!(pass(&mut t), ["new 2", "new 3"]);
        assert_eq!(t.dropped, 0);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_file_that_appears_later_is_read_from_its_start() {
        let dir = temp_dir("later");
        let path = dir.join("traffic.log");
        let mut t = Tailer::at_end(path.clone(), u64::MAX, never());
        assert!(pass(&mut t).is_empty());
        append(&path, "first\n");
        assert_eq!(pass(&mut t), ["first"]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_truncated_file_is_read_again_from_its_start() {
        let dir = temp_dir("truncate");
        let path = dir.join("traffic.log");
        append(&path, "");
        let mut t = Tailer::at_end(path.clone(), u64::MAX, never());
        append(&path, "a long first line\nhalf");
        assert_eq!(pass(&mut t), ["a long first line"]);
        std::fs::OpenOptions::new().write(true).open(&path).expect("opens").set_len(0).expect("truncates");
        append(&path, "after\n");
        assert_eq!(pass(&mut t), ["after"]);
        assert_eq!(t.dropped, 1, "the half line before the cut");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_replaced_file_is_read_to_its_end_then_the_new_one_from_its_start() {
        let dir = temp_dir("replace");
        let path = dir.join("traffic.log");
        append(&path, "");
        let mut t = Tailer::at_end(path.clone(), u64::MAX, never());
        append(&path, "one\n");
        std::fs::rename(&path, dir.join("traffic.log.1")).expect("renames");
        assert_eq!(pass(&mut t), ["one"]);
        // nginx writes to the renamed file until it reopens, then to a new one.
        append(&dir.join("traffic.log.1"), "two\n");
        append(&path, "three\n");
        assert_eq!(pass(&mut t), ["two"]);
        append(&dir.join("traffic.log.1"), "late flush\n");
        assert_eq!(pass(&mut t), ["late flush"], "the old file is read while it is still written");
        assert_eq!(pass(&mut t), ["three"], "after a quiet pass on the old file, the new one");
        append(&path, "four\n");
        assert_eq!(pass(&mut t), ["four"]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_large_file_is_rotated_and_nginx_asked_to_reopen() {
        let dir = temp_dir("rotate");
        let path = dir.join("traffic.log");
        append(&path, "");
        append(&dir.join("traffic.log.1"), "the older rotation\n");
        let reopened = Arc::new(AtomicUsize::new(0));
        let (count, new_file) = (reopened.clone(), path.clone());
        // As nginx does on reopen: a new file at the path.
        let reopen: Reopen = Box::new(move || {
            count.fetch_add(1, Ordering::SeqCst);
            append(&new_file, "");
            Ok(())
        });
        let mut t = Tailer::at_end(path.clone(), 10, reopen);
        append(&path, "0123456789\n");
        assert_eq!(pass(&mut t), ["0123456789"]);
        assert_eq!(reopened.load(Ordering::SeqCst), 1);
        let old = std::fs::read_to_string(dir.join("traffic.log.1")).expect("the rotated file");
        assert_eq!(old, "0123456789\n", "the older rotation is replaced");
        assert_eq!(std::fs::metadata(&path).expect("a new file").len(), 0);
        append(&dir.join("traffic.log.1"), "flushed at reopen\n");
        append(&path, "new\n");
        assert_eq!(pass(&mut t), ["flushed at reopen"]);
        assert_eq!(pass(&mut t), ["new"], "after a quiet pass on the old file, the new one");
        assert_eq!(reopened.load(Ordering::SeqCst), 1, "the new file is small");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_line_over_the_limit_is_dropped_and_counted() {
        let dir = temp_dir("oversize");
        let path = dir.join("traffic.log");
        append(&path, "");
        let mut t = Tailer::at_end(path.clone(), u64::MAX, never());
        let long = "x".repeat(MAX_LINE + 1);
        append(&path, &format!("short\n{long}"));
        assert_eq!(pass(&mut t), ["short"]);
        append(&path, "still the long one\nnext\n");
        assert_eq!(pass(&mut t), ["next"]);
        append(&path, &format!("{long}\nafter\n"));
        assert_eq!(pass(&mut t), ["after"]);
        assert_eq!(t.dropped, 2);
        assert!(t.partial.capacity() <= 2 * MAX_LINE + CHUNK, "the partial line stays bounded");
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// GETs `/` from nginx on `port`; the answer does not matter, its log line does.
    fn request(port: u16) {
        use std::io::Read;
        let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).expect("nginx answers");
        c.write_all(b"GET / HTTP/1.0\r\nHost: x.test\r\n\r\n").expect("sends");
        let _ = c.read_to_end(&mut Vec::new());
    }

    /// Passes until `want` lines in all were read, or 20 s.
    fn read_until(t: &mut Tailer, lines: &mut usize, want: usize) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while *lines < want {
            *lines += pass(t).len();
            assert!(Instant::now() < deadline, "{lines} lines of {want} read");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stops the nginx started from `0` even when the test fails halfway, and removes `0`.
    struct QuitNginx(PathBuf);

    impl Drop for QuitNginx {
        fn drop(&mut self) {
            if let Ok(pid) = std::fs::read_to_string(self.0.join("nginx.pid")) {
                let _ = std::process::Command::new("kill").args(["-QUIT", pid.trim()]).status();
            }
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[tokio::test]
    async fn a_real_nginx_reopens_its_log_after_the_rotation_and_no_line_is_lost() {
        use crate::plane::router::Applier;
        use crate::plane::router::config::{AccessLog, Target, render, tests::fleet};
        use crate::plane::router::nginx::NginxApplier;
        let Some(nginx) = std::env::var("QD_NGINX").ok().filter(|v| !v.is_empty()) else {
            eprintln!("skipped: no nginx (QD_NGINX)");
            return;
        };
        let dir = temp_dir("nginx");
        let port =
            std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a port").port();
        let listen = format!("127.0.0.1:{port}");
        let mut applier = NginxApplier::new(&dir, Path::new(&nginx), None, &listen).expect("an applier");
        let dir = std::fs::canonicalize(&dir).expect("the dir");
        let target = Target { listen: &listen, dir: &dir, log: AccessLog::Traffic };
        applier.apply(&render(&fleet(vec![], vec![]), target)).await.expect("nginx starts");
        let _quit = QuitNginx(dir.clone());
        let path = TrafficFeed::path(&dir);
        let mut t = Tailer::at_end(path.clone(), 2000, Box::new(applier.log_reopener()));
        let mut lines = 0;
        // Enough lines to pass the 2000 bytes, read as nginx flushes them (flush=1s).
        for _ in 0..40 {
            request(port);
        }
        read_until(&mut t, &mut lines, 40);
        let deadline = Instant::now() + Duration::from_secs(20);
        while !(dir.join("logs/traffic.log.1").exists() && path.exists()) {
            lines += pass(&mut t).len();
            assert!(Instant::now() < deadline, "not rotated and reopened");
            std::thread::sleep(Duration::from_millis(100));
        }
        for _ in 0..10 {
            request(port);
        }
        read_until(&mut t, &mut lines, 50);
        assert_eq!(lines, 50, "each request read once");
        let count = |p: &Path| std::fs::read_to_string(p).expect("a log file").lines().count();
        let (old, new) = (count(&dir.join("logs/traffic.log.1")), count(&path));
        assert!(new >= 10, "nginx writes the new file after the reopen: {new} lines");
        assert_eq!(old + new, 50, "the two files hold every request");
        applier.stop().await;
    }

    #[test]
    fn the_feed_counts_the_lines_appended_to_the_traffic_log() {
        let dir = temp_dir("feed");
        std::fs::create_dir_all(dir.join("logs")).expect("logs");
        let path = TrafficFeed::path(&dir);
        append(&path, "{\"h\":\"shop.test\",\"old\":\"line\"}\n");
        let feed = TrafficFeed::start(&dir, || Ok(())).expect("starts");
        feed.set_domains([("shop.test".to_string(), "shop".to_string())].into_iter().collect());
        let line = r#"{"h":"shop.test","ua":"127.0.0.1:1","s":"500","us":"500","urt":"0.002","rt":"0.002"}"#;
        append(&path, &format!("{line}\ngarbage\n{line}\n"));
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let t = feed.traffic();
            if t.apps.get("shop").is_some_and(|s| s.requests == 2) {
                assert_eq!(t.backends["shop"]["127.0.0.1:1"].errors_5xx, 2);
                assert_eq!(feed.window().bad_lines, 1, "the old line is not read, garbage is bad");
                break;
            }
            assert!(Instant::now() < deadline, "the lines were not counted: {t:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
