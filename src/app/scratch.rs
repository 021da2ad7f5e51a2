//! A scratch artifact file for the wizard's tests (test-only): made in its own temporary
//! directory, which goes when the value is dropped. The tests that draw the wizard take
//! the file from here, so no view's test does file I/O of its own.

use std::path::PathBuf;

pub(crate) struct ScratchArtifact {
    pub dir: PathBuf,
    pub file: PathBuf,
}

impl ScratchArtifact {
    /// `name` of `size` bytes in a directory named for `tag` and this process.
    pub fn new(tag: &str, name: &str, size: usize) -> ScratchArtifact {
        let dir = std::env::temp_dir().join(format!("qd-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        let file = dir.join(name);
        std::fs::write(&file, vec![7u8; size]).expect("artifact");
        ScratchArtifact { dir, file }
    }
}

impl Drop for ScratchArtifact {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
