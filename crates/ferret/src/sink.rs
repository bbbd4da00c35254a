//! Where trace output goes (stdout or `-o FILE`) and when it gets there
//! (`-B line|full|none`), as bpftrace's stdio buffering does it.

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::path::Path;

use crate::cli::{Buffering, OutputFormat};
use crate::signals;

/// stdio's buffer size (`BUFSIZ`): full buffering writes in chunks of it.
const CAPACITY: usize = 8192;

/// Output for events and maps, text or JSON.
pub struct Sink {
    /// Unbuffered: all buffering is done here, so the modes mean what
    /// they say (Rust's stdout would add its own line buffering).
    out: File,
    buf: Vec<u8>,
    mode: Buffering,
    /// Output kept back by [`Sink::hold`].
    held: Option<Vec<u8>>,
    pub format: OutputFormat,
}

impl Sink {
    /// Output to `path` (created or truncated), or to stdout.
    pub fn new(path: Option<&Path>, format: OutputFormat, mode: Buffering) -> io::Result<Self> {
        let out = match path {
            Some(path) => File::create(path)?,
            None => File::from(io::stdout().as_fd().try_clone_to_owned()?),
        };
        Ok(Self {
            out,
            buf: Vec::with_capacity(CAPACITY),
            mode,
            held: None,
            format,
        })
    }

    /// Keeps everything written from now on until [`Sink::take_held`]:
    /// begin probes run before the `Attached` line but print after it.
    pub fn hold(&mut self) {
        self.held = Some(Vec::new());
    }

    /// Ends [`Sink::hold`], returning what was written meanwhile.
    pub fn take_held(&mut self) -> Vec<u8> {
        self.held.take().unwrap_or_default()
    }

    pub fn write(&mut self, bytes: &[u8]) {
        if let Some(held) = &mut self.held {
            held.extend_from_slice(bytes);
            return;
        }
        if self.mode == Buffering::None {
            self.write_out(bytes);
            return;
        }
        self.buf.extend_from_slice(bytes);
        if self.buf.len() >= CAPACITY {
            self.flush();
        }
    }

    /// One JSON record; the `json` functions end each with its newline.
    pub fn write_json(&mut self, record: &str) {
        self.write(record.as_bytes());
    }

    /// After a batch of events: line buffering writes out every complete
    /// line (a partial one waits for its newline, as with stdio).
    pub fn sync(&mut self) {
        if self.mode != Buffering::Line {
            return;
        }
        if let Some(end) = self.buf.iter().rposition(|&b| b == b'\n') {
            let rest = self.buf.split_off(end + 1);
            let lines = std::mem::replace(&mut self.buf, rest);
            self.write_out(&lines);
        }
    }

    /// Writes out everything buffered.
    pub fn flush(&mut self) {
        let all = std::mem::take(&mut self.buf);
        self.write_out(&all);
    }

    fn write_out(&mut self, bytes: &[u8]) {
        // A closed stdout (`| head`) ends the trace like Ctrl-C would.
        if !bytes.is_empty() && self.out.write_all(bytes).is_err() {
            signals::request_stop();
        }
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sink_to(path: &Path, mode: Buffering) -> Sink {
        Sink::new(Some(path), OutputFormat::Text, mode).unwrap()
    }

    fn read(path: &Path) -> String {
        std::fs::read_to_string(path).unwrap()
    }

    #[test]
    fn modes_decide_when_bytes_reach_the_file() {
        let dir = std::env::temp_dir().join(format!("ferret-sink-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("out");

        let mut line = sink_to(&path, Buffering::Line);
        line.write(b"a\nb");
        assert_eq!(read(&path), "");
        line.sync();
        assert_eq!(read(&path), "a\n");
        line.write(b"c\n");
        line.sync();
        assert_eq!(read(&path), "a\nbc\n");
        drop(line);

        let mut full = sink_to(&path, Buffering::Full);
        full.write(b"x\n");
        full.sync();
        assert_eq!(read(&path), "");
        full.write(&vec![b'y'; CAPACITY]);
        assert_eq!(read(&path).len(), CAPACITY + 2);
        full.write(b"z");
        drop(full);
        assert_eq!(read(&path).len(), CAPACITY + 3);

        let mut none = sink_to(&path, Buffering::None);
        none.write(b"p");
        assert_eq!(read(&path), "p");
        drop(none);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
