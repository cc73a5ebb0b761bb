//! Where images are read from and written to: a local folder, `s3://bucket/prefix` or
//! `gs://bucket/prefix`, all behind `object_store` so the pipeline has one code path.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ClientConfigKey, ObjectStore, RetryConfig};

/// A store and a prefix inside it.
#[derive(Clone)]
pub struct Location {
    pub store: Arc<dyn ObjectStore>,
    pub prefix: Path,
    /// As the user wrote it, for messages.
    pub display: String,
    pub is_local: bool,
    /// For local locations, the folder on disk.
    pub local_root: Option<std::path::PathBuf>,
    /// For local locations, the store itself (it maps keys to file paths).
    local: Option<Arc<LocalFileSystem>>,
}

impl std::fmt::Debug for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.display)
    }
}

/// How each request to an object store is bounded: a 503, a 429, a reset connection or a timeout
/// is retried up to `retries` times with exponential backoff (object_store's: 100 ms doubling up
/// to 15 s, jittered, and no retry begun after 3 minutes), and each attempt, from connecting to
/// the end of its body, may take `timeout`, so a stalled transfer is cut and retried rather than
/// waited on forever. Then the request fails, and with it the key (recorded as failed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Requests {
    pub retries: usize,
    pub timeout: Duration,
}

impl Default for Requests {
    fn default() -> Self {
        let retry = RetryConfig::default();
        // object_store's own timeout, 30 s: what the store answers with when it is not configured.
        Requests { retries: retry.max_retries, timeout: Duration::from_secs(30) }
    }
}

impl Requests {
    fn retry(&self) -> RetryConfig {
        RetryConfig { max_retries: self.retries, ..RetryConfig::default() }
    }

    fn timeout(&self) -> String {
        format!("{}ms", self.timeout.as_millis().max(1))
    }
}

impl Location {
    /// Parses a location. Credentials and endpoints come from the usual environment variables
    /// (`AWS_ACCESS_KEY_ID`, `AWS_ENDPOINT_URL`, `GOOGLE_APPLICATION_CREDENTIALS`, …); requests
    /// to object stores are bounded by `requests`.
    pub fn parse(spec: &str, create_local: bool, requests: Requests) -> anyhow::Result<Self> {
        if let Some(rest) = spec.strip_prefix("s3://") {
            let (bucket, prefix) = split_bucket(rest)?;
            let mut builder = AmazonS3Builder::from_env()
                .with_bucket_name(bucket)
                .with_retry(requests.retry())
                .with_config(AmazonS3ConfigKey::Client(ClientConfigKey::Timeout), requests.timeout());
            // S3-compatible servers on plain HTTP (MinIO, moto, a local test server) need this.
            let endpoint = std::env::var("AWS_ENDPOINT_URL").or_else(|_| std::env::var("AWS_ENDPOINT")).unwrap_or_default();
            if endpoint.starts_with("http://") {
                builder = builder.with_config(AmazonS3ConfigKey::Client(ClientConfigKey::AllowHttp), "true");
            }
            if !endpoint.is_empty() {
                builder = builder.with_endpoint(endpoint).with_virtual_hosted_style_request(false);
            }
            let store = builder.build().with_context(|| format!("configuring S3 for {spec}"))?;
            return Ok(Location::remote(Arc::new(store), prefix, spec));
        }
        if let Some(rest) = spec.strip_prefix("gs://") {
            let (bucket, prefix) = split_bucket(rest)?;
            let store = GoogleCloudStorageBuilder::from_env()
                .with_bucket_name(bucket)
                .with_retry(requests.retry())
                .with_config(GoogleConfigKey::Client(ClientConfigKey::Timeout), requests.timeout())
                .build()
                .with_context(|| format!("configuring GCS for {spec}"))?;
            return Ok(Location::remote(Arc::new(store), prefix, spec));
        }
        if spec.contains("://") {
            bail!("{spec}: only local folders, s3:// and gs:// are supported");
        }
        let dir = std::path::PathBuf::from(spec);
        if create_local {
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {spec}"))?;
        }
        let root = dir.canonicalize().with_context(|| format!("{spec} is not a readable folder"))?;
        if !root.is_dir() {
            bail!("{spec} is not a folder");
        }
        let store = Arc::new(LocalFileSystem::new_with_prefix(&root).with_context(|| format!("opening {spec}"))?);
        Ok(Location {
            store: store.clone(),
            prefix: Path::default(),
            display: spec.into(),
            is_local: true,
            local_root: Some(root),
            local: Some(store),
        })
    }

    /// A bucket prefix behind an object store.
    fn remote(store: Arc<dyn ObjectStore>, prefix: &str, spec: &str) -> Location {
        Location { store, prefix: Path::from(prefix), display: spec.into(), is_local: false, local_root: None, local: None }
    }

    /// The file on disk holding `key`, for local locations.
    pub fn local_path(&self, key: &Path) -> Option<std::path::PathBuf> {
        self.local.as_ref()?.path_to_filesystem(key).ok()
    }

    /// The key of `relative` (slash-separated, already sanitised) under this location.
    pub fn child(&self, relative: &str) -> Path {
        relative.split('/').fold(self.prefix.clone(), |p, part| p.child(part))
    }

    /// Removes what a killed run left of an unfinished local write of `relative`: object_store
    /// stages a local PUT in `<file>#<n>` (n = 1, 2, …) and renames it, so a SIGKILL between the
    /// two leaves the staging file beside the output. Remote PUTs are atomic and leave nothing.
    pub fn remove_staging_leftovers(&self, relative: &str) {
        let Some(root) = &self.local_root else { return };
        let file = root.join(relative);
        for n in 1.. {
            let mut staging = file.clone().into_os_string();
            staging.push(format!("#{n}"));
            if std::fs::remove_file(&staging).is_err() {
                break;
            }
        }
    }

    /// `key` relative to the prefix, or `None` if it is not under it.
    pub fn relative(&self, key: &Path) -> Option<String> {
        let parts: Vec<_> = key.prefix_match(&self.prefix)?.map(|p| p.as_ref().to_owned()).collect();
        (!parts.is_empty()).then(|| parts.join("/"))
    }
}

fn split_bucket(rest: &str) -> anyhow::Result<(&str, &str)> {
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        bail!("missing bucket name");
    }
    Ok((bucket, prefix.trim_matches('/')))
}

/// Refuses relative keys that could leave the destination (`..`, absolute, empty segments).
pub fn sanitise(relative: &str) -> Option<String> {
    let parts: Vec<&str> = relative.split('/').collect();
    let safe = !relative.starts_with('/') && parts.iter().all(|p| !p.is_empty() && *p != "." && *p != ".." && !p.contains('\\'));
    safe.then(|| relative.to_owned())
}
