//! Upload progress: a bar on stderr while a large body is sent. Only on a terminal and never in
//! `--json` (`Ui::shows_progress`), so scripts and pipes see nothing extra.

use std::io::{Read, Write};

/// Bodies smaller than this are sent without a bar: they are gone before it could be read.
pub const MIN_BYTES: u64 = 256 * 1024;
/// Characters of the bar itself.
const WIDTH: u64 = 30;

/// A bar redrawn in place (`\r`) whenever the whole percentage changes.
pub struct Bar {
    label: String,
    total: u64,
    done: u64,
    shown: Option<u64>,
    out: Box<dyn Write>,
}

impl Bar {
    pub fn new(label: &str, total: u64, out: Box<dyn Write>) -> Self {
        Bar {
            label: label.to_string(),
            total,
            done: 0,
            shown: None,
            out,
        }
    }

    /// `n` more bytes sent.
    pub fn advance(&mut self, n: u64) {
        self.done = self.done.saturating_add(n).min(self.total);
        let pct = percent(self.done, self.total);
        if self.shown != Some(pct) {
            self.shown = Some(pct);
            let _ = write!(self.out, "\r{}", line(&self.label, self.done, self.total));
            let _ = self.out.flush();
        }
    }

    /// Ends the bar's line (whether or not everything was sent).
    pub fn finish(&mut self) {
        if self.shown.is_some() {
            let _ = writeln!(self.out);
            let _ = self.out.flush();
        }
    }
}

fn percent(done: u64, total: u64) -> u64 {
    if total == 0 {
        100
    } else {
        // u128: no overflow whatever the sizes.
        (u128::from(done) * 100 / u128::from(total)) as u64
    }
}

/// One drawing: `uploading manifest [#########.....................]  30%  1.5 of 5.0 MiB`.
pub fn line(label: &str, done: u64, total: u64) -> String {
    let pct = percent(done, total);
    let filled = pct * WIDTH / 100;
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    format!(
        "{label} [{}{}] {pct:>3}%  {:.1} of {:.1} MiB",
        "#".repeat(filled as usize),
        ".".repeat((WIDTH - filled) as usize),
        mib(done),
        mib(total)
    )
}

/// A reader that moves `bar` as the HTTP client reads the body to send it.
pub struct Reader<'a, R: Read> {
    pub inner: R,
    pub bar: &'a mut Bar,
}

impl<R: Read> Read for Reader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bar.advance(n as u64);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::rc::Rc;

    #[derive(Clone, Default)]
    struct Screen(Rc<RefCell<Vec<u8>>>);
    impl Write for Screen {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.borrow_mut().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn the_line_shows_the_share_sent() {
        assert_eq!(
            line("up", 0, 4 << 20),
            format!("up [{}]   0%  0.0 of 4.0 MiB", ".".repeat(30))
        );
        assert_eq!(
            line("up", 1 << 20, 4 << 20),
            format!(
                "up [{}{}]  25%  1.0 of 4.0 MiB",
                "#".repeat(7),
                ".".repeat(23)
            )
        );
        assert_eq!(
            line("up", 4 << 20, 4 << 20),
            format!("up [{}] 100%  4.0 of 4.0 MiB", "#".repeat(30))
        );
        assert_eq!(percent(u64::MAX, u64::MAX), 100);
    }

    #[test]
    fn reading_through_the_bar_redraws_it_once_per_percent_and_ends_the_line() {
        let screen = Screen::default();
        let body = vec![7u8; 1000];
        let mut bar = Bar::new("up", body.len() as u64, Box::new(screen.clone()));
        let mut r = Reader {
            inner: &body[..],
            bar: &mut bar,
        };
        let mut copy = Vec::new();
        let mut chunk = [0u8; 3];
        loop {
            let n = r.read(&mut chunk).unwrap();
            if n == 0 {
                break;
            }
            copy.extend_from_slice(&chunk[..n]);
        }
        bar.finish();
        assert_eq!(copy, body, "the bytes pass through unchanged");
        let text = String::from_utf8(screen.0.borrow().clone()).unwrap();
        assert_eq!(text.matches('\r').count(), 101, "0% to 100%, each once");
        assert!(text.ends_with("100%  0.0 of 0.0 MiB\n"), "{text:?}");
    }
}
