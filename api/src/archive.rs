//! Manifest archives into the blob store: mig-archive (api/archive) reads them, this maps its
//! caps and errors onto the API's.

use crate::blobs::BlobStore;
use crate::config::Limits;
use crate::error::{Error, Result};
use std::io::Read;

pub use mig_archive::Extracted;

impl mig_archive::Store for BlobStore {
    type Error = Error;
    fn store(&self, member: &mut dyn Read) -> Result<(mig_protocol::Sha256, u64)> {
        let mut w = self.writer()?;
        std::io::copy(member, &mut w).map_err(Error::io("writing", self.dir()))?;
        w.finish()
    }
}

/// Reads a tar.gz upload, stores every member in `blobs`, and returns the entries in order.
pub fn extract(gz: impl Read, limits: &Limits, blobs: &BlobStore) -> Result<Vec<Extracted>> {
    let caps = mig_archive::Caps {
        entries: limits.entries,
        file_size: limits.file_size,
        total_size: limits.total_size,
    };
    mig_archive::extract(gz, &caps, blobs).map_err(|e| match e {
        mig_archive::Error::TooLarge(m) => Error::TooLarge(m),
        mig_archive::Error::Invalid(m) => Error::invalid("bad_archive", m),
        mig_archive::Error::Store(e) => e,
    })
}
