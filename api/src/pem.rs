//! PEM files named by the configuration (the front's certificate and key, PostgreSQL's CA).

use crate::error::{Error, Result};
use std::io::Read;
use std::path::Path;

/// Largest PEM file read (a long chain is a few KiB).
const MAX_PEM_BYTES: u64 = 1 << 20;

/// A PEM file, refused past [`MAX_PEM_BYTES`].
pub fn read_pem(path: &Path) -> Result<Vec<u8>> {
    let file = std::fs::File::open(path).map_err(Error::io("reading", path))?;
    let mut out = Vec::new();
    file.take(MAX_PEM_BYTES + 1)
        .read_to_end(&mut out)
        .map_err(Error::io("reading", path))?;
    if out.len() as u64 > MAX_PEM_BYTES {
        return Err(Error::Config(format!(
            "{}: larger than {MAX_PEM_BYTES} bytes",
            path.display()
        )));
    }
    Ok(out)
}
