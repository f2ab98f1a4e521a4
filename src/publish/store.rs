//! The lake: an output URL turned into an object store and the operations publishing needs.

use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;

use futures::TryStreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::azure::MicrosoftAzureBuilder;
use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, WriteMultipart};
use tokio::io::AsyncReadExt;

use super::Error;

/// Uploads larger than this go in parts, so nothing is held whole in memory.
pub const MULTIPART_CHUNK: usize = 8 * 1024 * 1024;

/// Where tables are published: an object store and the prefix of the lake in it.
#[derive(Clone, Debug)]
pub struct Lake {
    store: Arc<dyn ObjectStore>,
    /// The URL as given, for messages and manifests.
    pub url: String,
    /// The local folder of a `file://` lake (packages can be staged in place).
    pub local_root: Option<PathBuf>,
}

impl Lake {
    /// Opens the lake at `url`: a path or `file://` URL, `s3://bucket/prefix` (AWS or any
    /// S3-compatible endpoint), `gs://`, `az://`, or `memory://`. Cloud credentials, region,
    /// endpoint and addressing come from the providers' usual environment variables
    /// (`AWS_ACCESS_KEY_ID`, `AWS_REGION`, `AWS_ENDPOINT_URL`, `AWS_ALLOW_HTTP`,
    /// `AWS_S3_FORCE_PATH_STYLE`, `GOOGLE_APPLICATION_CREDENTIALS`, `AZURE_STORAGE_ACCOUNT_NAME`...).
    pub fn open(url: &str) -> Result<Lake, Error> {
        let bad = |why: String| Error::BadUrl {
            url: url.to_string(),
            why,
        };
        let scheme = url.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
        let cloud: Option<Arc<dyn ObjectStore>> = match scheme.as_deref() {
            None | Some("file") => None,
            Some("memory") => Some(Arc::new(InMemory::new())),
            Some("s3" | "s3a") => {
                let mut b = AmazonS3Builder::from_env().with_url(url);
                if let Ok(v) = std::env::var("AWS_S3_FORCE_PATH_STYLE") {
                    b = b.with_virtual_hosted_style_request(!matches!(v.as_str(), "1" | "true" | "TRUE"));
                }
                Some(Arc::new(b.build().map_err(|e| bad(e.to_string()))?))
            }
            Some("gs") => Some(Arc::new(
                GoogleCloudStorageBuilder::from_env()
                    .with_url(url)
                    .build()
                    .map_err(|e| bad(e.to_string()))?,
            )),
            Some("az" | "abfs" | "abfss" | "azure") => Some(Arc::new(
                MicrosoftAzureBuilder::from_env()
                    .with_url(url)
                    .build()
                    .map_err(|e| bad(e.to_string()))?,
            )),
            Some(other) => {
                return Err(bad(format!(
                    "unsupported scheme {other}://: use a path, file://, s3://, gs://, az:// or memory://"
                )));
            }
        };
        if let Some(store) = cloud {
            // The lake is a prefix inside the bucket or container.
            let parsed = url::Url::parse(url).map_err(|e| bad(e.to_string()))?;
            let prefix = parsed.path().trim_matches('/');
            let store: Arc<dyn ObjectStore> = if prefix.is_empty() || scheme.as_deref() == Some("memory") {
                store
            } else {
                Arc::new(PrefixStore::new(store, prefix))
            };
            return Ok(Lake {
                store,
                url: url.to_string(),
                local_root: None,
            });
        }
        let local = match scheme {
            None => PathBuf::from(url),
            _ => url::Url::parse(url)
                .ok()
                .and_then(|u| u.to_file_path().ok())
                .ok_or_else(|| bad("not a valid file:// URL (use an absolute path)".into()))?,
        };
        // A folder that cannot be made is the disk's failure, not the URL's.
        let io = |source| Error::Local {
            path: local.clone(),
            source,
        };
        std::fs::create_dir_all(&local).map_err(io)?;
        let local = local.canonicalize().map_err(io)?;
        let store = LocalFileSystem::new_with_prefix(&local).map_err(|e| bad(e.to_string()))?;
        Ok(Lake {
            store: Arc::new(store),
            url: format!("file://{}", local.display()),
            local_root: Some(local),
        })
    }

    /// A lake over an existing store (tests, embedding).
    pub fn from_store(store: Arc<dyn ObjectStore>, url: &str) -> Lake {
        Lake {
            store,
            url: url.to_string(),
            local_root: None,
        }
    }

    /// Downloads an object into a local file, streaming.
    pub async fn download(&self, path: &str, file: &FsPath) -> Result<u64, Error> {
        use futures::StreamExt;
        use tokio::io::AsyncWriteExt;
        let io = |e: std::io::Error| Error::Local {
            path: file.to_path_buf(),
            source: e,
        };
        if let Some(parent) = file.parent() {
            tokio::fs::create_dir_all(parent).await.map_err(io)?;
        }
        let mut out = tokio::fs::File::create(file).await.map_err(io)?;
        let mut stream = self
            .store
            .get(&Path::from(path))
            .await
            .map_err(|source| Error::store("download", path, source))?
            .into_stream();
        let mut n = 0;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|source| Error::store("download", path, source))?;
            n += chunk.len() as u64;
            out.write_all(&chunk).await.map_err(io)?;
        }
        out.flush().await.map_err(io)?;
        Ok(n)
    }

    /// The underlying store.
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// Every object under `prefix`.
    pub async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, Error> {
        let p = Path::from(prefix);
        self.store
            .list(Some(&p))
            .try_collect()
            .await
            .map_err(|source| Error::store("list", prefix, source))
    }

    /// The immediate sub-folders of `prefix`.
    pub async fn folders(&self, prefix: &str) -> Result<Vec<String>, Error> {
        let p = Path::from(prefix);
        let r = self
            .store
            .list_with_delimiter(Some(&p))
            .await
            .map_err(|source| Error::store("list", prefix, source))?;
        Ok(r.common_prefixes
            .iter()
            .filter_map(|p| p.filename().map(str::to_string))
            .collect())
    }

    /// Reads a small object whole; `None` if it does not exist.
    pub async fn read(&self, path: &str) -> Result<Option<bytes::Bytes>, Error> {
        match self.store.get(&Path::from(path)).await {
            Ok(r) => r
                .bytes()
                .await
                .map(Some)
                .map_err(|source| Error::store("read", path, source)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(source) => Err(Error::store("read", path, source)),
        }
    }

    /// Writes a small object, replacing it.
    pub async fn write(&self, path: &str, data: Vec<u8>) -> Result<(), Error> {
        self.store
            .put(&Path::from(path), PutPayload::from(data))
            .await
            .map(|_| ())
            .map_err(|source| Error::store("write", path, source))
    }

    /// Writes a small object only if none exists; `Ok(false)` if one does.
    pub async fn create(&self, path: &str, data: Vec<u8>) -> Result<bool, Error> {
        let opts = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        match self
            .store
            .put_opts(&Path::from(path), PutPayload::from(data), opts)
            .await
        {
            Ok(_) => Ok(true),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
            Err(source) => Err(Error::store("create", path, source)),
        }
    }

    /// Uploads a local file, in parts when it is large.
    pub async fn upload(&self, file: &FsPath, path: &str) -> Result<u64, Error> {
        let io = |e: std::io::Error| Error::Local {
            path: file.to_path_buf(),
            source: e,
        };
        let mut f = tokio::fs::File::open(file).await.map_err(io)?;
        let size = f.metadata().await.map_err(io)?.len();
        let target = Path::from(path);
        if size as usize <= MULTIPART_CHUNK {
            let mut buf = Vec::with_capacity(size as usize);
            f.read_to_end(&mut buf).await.map_err(io)?;
            self.store
                .put(&target, PutPayload::from(buf))
                .await
                .map_err(|source| Error::store("upload", path, source))?;
            return Ok(size);
        }
        let upload = self
            .store
            .put_multipart(&target)
            .await
            .map_err(|source| Error::store("upload", path, source))?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, MULTIPART_CHUNK);
        let mut buf = vec![0u8; MULTIPART_CHUNK];
        loop {
            let n = f.read(&mut buf).await.map_err(io)?;
            if n == 0 {
                break;
            }
            writer
                .wait_for_capacity(4)
                .await
                .map_err(|source| Error::store("upload", path, source))?;
            writer.write(&buf[..n]);
        }
        writer
            .finish()
            .await
            .map_err(|source| Error::store("upload", path, source))?;
        Ok(size)
    }

    /// Where a table of this lake lives, for delta-rs. A local lake's tables are given to
    /// delta-rs as absolute `file://` folders over the whole file system (delta-rs resolves
    /// `file://` paths as absolute); an object store's as their path inside the lake's store.
    pub fn table_location(&self, table: &str) -> Result<super::delta::TableLocation, Error> {
        let bad = |why: String| Error::BadUrl {
            url: self.url.clone(),
            why,
        };
        let (root, url): (Arc<dyn ObjectStore>, url::Url) = match &self.local_root {
            Some(local) => (
                Arc::new(LocalFileSystem::new()),
                url::Url::from_directory_path(local.join(table))
                    .map_err(|_| bad(format!("{} is not an absolute folder", local.display())))?,
            ),
            None => {
                let lake = url::Url::parse(&self.url).map_err(|e| bad(e.to_string()))?;
                let host = lake.host_str().unwrap_or_default();
                let url =
                    url::Url::parse(&format!("{}://{host}/{table}/", lake.scheme())).map_err(|e| bad(e.to_string()))?;
                (self.store.clone(), url)
            }
        };
        Ok(super::delta::TableLocation {
            name: table.to_string(),
            root,
            url,
        })
    }

    /// Moves an object to a path where none exists (never replacing one).
    pub async fn rename_new(&self, from: &str, to: &str) -> Result<(), Error> {
        self.store
            .rename_if_not_exists(&Path::from(from), &Path::from(to))
            .await
            .map_err(|source| Error::store("move", from, source))
    }

    /// Moves an object (atomic on a local file system; copy then delete elsewhere).
    pub async fn rename(&self, from: &str, to: &str) -> Result<(), Error> {
        self.store
            .rename(&Path::from(from), &Path::from(to))
            .await
            .map_err(|source| Error::store("rename", from, source))
    }

    /// Deletes an object; a missing one is not an error.
    pub async fn delete(&self, path: &str) -> Result<(), Error> {
        match self.store.delete(&Path::from(path)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(source) => Err(Error::store("delete", path, source)),
        }
    }

    /// Deletes every object under `prefix`.
    pub async fn delete_prefix(&self, prefix: &str) -> Result<(), Error> {
        for meta in self.list(prefix).await? {
            self.delete(meta.location.as_ref()).await?;
        }
        if let Some(root) = &self.local_root {
            // The local store leaves empty folders behind.
            let _ = remove_empty_dirs(&root.join(prefix));
        }
        Ok(())
    }
}

fn remove_empty_dirs(dir: &FsPath) -> std::io::Result<()> {
    if !dir.is_dir() {
        return Ok(());
    }
    for entry in std::fs::read_dir(dir)? {
        let p = entry?.path();
        if p.is_dir() {
            remove_empty_dirs(&p)?;
        }
    }
    std::fs::remove_dir(dir)
}
