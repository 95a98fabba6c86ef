//! The shared state of a running API: configuration, database, blob store, targeting engine,
//! caches and counters.

use crate::auth::{KeyringCache, NonceCache};
use crate::blobs::BlobStore;
use crate::config::Config;
use crate::db::Db;
use crate::error::{Error, Result};
use crate::filecache::FileCache;
use crate::keys::VerifiedKeys;
use crate::metrics::Metrics;
use crate::poll::PollCache;
use crate::targeting::Engine;
use mig_protocol::time::Timestamp;
use std::ops::Deref;
use std::sync::Arc;

/// Everything a request handler needs.
pub struct Inner {
    pub cfg: Config,
    pub db: Db,
    pub blobs: BlobStore,
    /// Verified file bodies the front sends from memory (filecache.rs).
    pub file_cache: FileCache,
    /// Gzip streams of blobs sent to Go loaders (`[v1]`), under the blob's name, as large as
    /// the file cache (`[limits] filecache`) when v1 is on.
    pub v1_bodies: FileCache,
    /// The gzip streams being sent to Go loaders, whether the v1 cache holds them or not (one
    /// too large for it included), and held while one is compressed: misses are made one at a
    /// time, and many Go loaders asking for a large file at once share one copy in memory
    /// (`serve::v1_fetch`).
    pub v1_sending: std::sync::Mutex<V1Sending>,
    pub engine: Engine,
    pub metrics: Metrics,
    pub nonces: NonceCache,
    pub keyrings: KeyringCache,
    /// Investigator API keys that already passed PBKDF2.
    pub api_keys: VerifiedKeys,
    /// The online freshness key (`[freshness]`, docs/design.md §4.20), when configured.
    pub freshness: Option<crate::freshness::Signer>,
    /// Root 1 of the root of trust (`[root]`, roots.rs), when configured.
    pub root: Option<mig_protocol::root::Root>,
    /// Each loader's last manifest answer (poll.rs).
    pub poll: PollCache,
    /// How often each loader may report (reports/rate.rs).
    pub report_rate: crate::reports::rate::ReportRate,
    /// Held while the engine's plugins are changed (plugins.rs).
    pub plugin_sync: std::sync::Mutex<()>,
    /// Stored plugin versions (`name@sha256`) that failed to load, logged once.
    pub plugin_failures: std::sync::Mutex<std::collections::HashSet<String>>,
    pub started: Timestamp,
    /// What tokens must name (Config::audience), set once the server knows where it answers.
    audience: std::sync::OnceLock<String>,
}

/// Gzip streams of blobs by the blob's name, alive while a v1 answer is sending them.
pub type V1Sending = std::collections::HashMap<String, std::sync::Weak<bytes::Bytes>>;

/// A cheap handle on [`Inner`].
#[derive(Clone)]
pub struct App(Arc<Inner>);

impl Deref for App {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl App {
    /// Opens the database (creating it on first start), the blob store and the engine, and
    /// does nothing else: `server::start_up` loads the stored plugins and collects garbage.
    pub fn open(cfg: Config) -> Result<App> {
        // A key others can read, or one loaders would not count, stops the start.
        let freshness = cfg
            .freshness
            .as_ref()
            .map(crate::freshness::Signer::load)
            .transpose()?;
        let root = if cfg.root_keys.is_empty() {
            None
        } else {
            let threshold = cfg.root_threshold.unwrap_or(cfg.required_signatures);
            Some(load_root1(&cfg.root_keys, threshold)?)
        };
        let db = Db::open(&cfg.database())?;
        let blobs = BlobStore::for_database(&cfg.db_path)?;
        let engine = Engine::new()
            .map_err(|e| Error::Internal(format!("starting the targeting engine: {e}")))?;
        let nonces = NonceCache::new(cfg.token_duration.saturating_mul(2), cfg.tokens);
        let file_cache = FileCache::new(cfg.limits.file_cache);
        let v1_bodies = FileCache::new(if cfg.v1.enabled() {
            cfg.limits.file_cache
        } else {
            0
        });
        let api_keys = VerifiedKeys::new(cfg.limits.api_key_cache);
        let poll = PollCache::new(cfg.limits.poll_cache);
        let app = App(Arc::new(Inner {
            cfg,
            db,
            blobs,
            file_cache,
            v1_bodies,
            v1_sending: Default::default(),
            engine,
            metrics: Metrics::default(),
            nonces,
            keyrings: KeyringCache::default(),
            api_keys,
            freshness,
            root,
            poll,
            report_rate: Default::default(),
            plugin_sync: std::sync::Mutex::new(()),
            plugin_failures: Default::default(),
            started: Timestamp::now(),
            audience: std::sync::OnceLock::new(),
        }));
        Ok(app)
    }

    /// Fixes the audience tokens must name now that the server answers at `addr` (a port 0 of
    /// the configuration is known only once bound).
    pub fn bound(&self, addr: std::net::SocketAddr) -> Result<&str> {
        let audience = self.cfg.audience(addr)?;
        Ok(self.audience.get_or_init(|| audience))
    }

    /// The audience tokens must name (docs/design.md §3.8): `[authentication] audience`, else
    /// the URL the server answers on.
    pub fn audience(&self) -> Result<&str> {
        match self.audience.get() {
            Some(a) => Ok(a),
            None => self.bound(self.cfg.listen),
        }
    }

    /// Runs blocking work (SQLite, PBKDF2, OpenPGP, WASM) off the async executor.
    pub async fn run<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&App) -> Result<T> + Send + 'static,
    {
        let app = self.clone();
        rocket::tokio::task::spawn_blocking(move || f(&app))
            .await
            .map_err(|e| Error::Internal(format!("blocking task failed: {e}")))?
    }
}

/// The largest key file `[root] keys` names.
const MAX_ROOT_KEY_FILE: u64 = 256 * 1024;

/// Root 1 of the root of trust from the key files `keys` and `threshold`: the keys and threshold
/// built into the loaders (docs/design.md §4.21). The error names the file.
fn load_root1(keys: &[std::path::PathBuf], threshold: usize) -> Result<mig_protocol::root::Root> {
    let mut texts = Vec::new();
    for path in keys {
        let meta = std::fs::metadata(path).map_err(Error::io("reading the root key", path))?;
        if meta.len() > MAX_ROOT_KEY_FILE {
            return Err(Error::Config(format!(
                "[root] keys: {} is larger than {MAX_ROOT_KEY_FILE} bytes",
                path.display()
            )));
        }
        let text =
            std::fs::read_to_string(path).map_err(Error::io("reading the root key", path))?;
        texts.push((path.display().to_string(), text));
    }
    let ring = mig_protocol::signature::Keyring::from_armored(
        texts.iter().map(|(n, t)| (n.as_str(), t.as_str())),
    )
    .map_err(|e| Error::Config(format!("[root] keys: {e}")))?;
    mig_protocol::root::Root::built_in(ring, threshold)
        .map_err(|e| Error::Config(format!("[root]: {e}")))
}
