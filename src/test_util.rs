//! Helpers shared by the unit tests (compiled only for `cargo test`).

use std::fs;
use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// A fresh, empty directory under the system temp dir, removed on drop.
/// The name holds the process id and a counter, so tests running in
/// parallel never share one.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let n = COUNT.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("{}-{tag}-{}-{n}", crate::NAME, std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    /// Writes `text` to a file `name` inside the directory; returns its path.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        fs::write(&path, text).expect("write test file");
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Generous, so a loaded machine does not fail a test, but finite, so a
/// broken relay fails it instead of hanging.
pub const TEST_TIMEOUT: Duration = Duration::from_secs(10);

/// `s` with read and write timeouts of [`TEST_TIMEOUT`].
pub fn with_timeouts(s: TcpStream) -> TcpStream {
    s.set_read_timeout(Some(TEST_TIMEOUT)).unwrap();
    s.set_write_timeout(Some(TEST_TIMEOUT)).unwrap();
    s
}

/// A connected pair of loopback sockets.
pub fn socket_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let a = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (b, _) = listener.accept().unwrap();
    (with_timeouts(a), with_timeouts(b))
}

/// Everything `s` sends until end of file.
pub fn read_to_end(mut s: &TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    out
}
