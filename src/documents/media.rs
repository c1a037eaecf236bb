//! `media`: audio files. The document holds the metadata (`name`, `description`, ...); the audio
//! is uploaded with `PUT /v2/accounts/{account_id}/media/{id}/raw` and stored on disk where
//! FreeSWITCH (same host) can play it:
//!
//! ```text
//! <data_dir>/media/<account_id>/<media_id>.wav   (audio/wav, audio/x-wav)
//! <data_dir>/media/<account_id>/<media_id>.mp3   (audio/mpeg, audio/mp3)
//! ```
//!
//! [`file_path`] is the one place that convention is written; the engine resolves a media id
//! with [`stored_file`]. Files are written atomically (temporary file, fsync, rename, fsync of
//! the directory). The upload facts live in the private [`FILE_FIELD`] (`{"file","content_type",
//! "size"}`), kept across POST/PATCH; `content_type` and `content_length` are mirrored into the
//! public fields as Kazoo does.

use super::schema::{no_extra, pick};
use super::{Collection, PrivateFields};
use crate::callflow::errors::FieldErrors;
use crate::store::StoredDoc;
use serde_json::{Map, Value};
use std::io::Write;
use std::path::{Path, PathBuf};

schema_module!(media_schema, "media.json", no_extra);

/// Private field with the upload facts.
pub const FILE_FIELD: &str = "pvt_media";

/// Default upload limit (10 MiB).
pub const DEFAULT_MAX_MEDIA_BYTES: usize = 10 * 1024 * 1024;

/// Audio formats accepted: (content type, file extension).
pub const FORMATS: [(&str, &str); 4] = [
    ("audio/wav", "wav"),
    ("audio/x-wav", "wav"),
    ("audio/mpeg", "mp3"),
    ("audio/mp3", "mp3"),
];

/// The media collection (`/v2/accounts/{id}/media`).
pub static MEDIA: Collection = Collection {
    name: "media",
    aliases: &[],
    pvt_type: "media",
    singular: "media",
    schema: media_schema::schema,
    validate: media_schema::validate,
    unique_keys: super::no_unique_keys,
    unique_error: super::generic_unique_error,
    summary,
    references: super::no_references,
    private: Some(&UPLOAD),
};

static UPLOAD: PrivateFields = PrivateFields {
    keep: &[FILE_FIELD],
    extract: no_write_only,
    finish: upload_finish,
    on_delete: Some(forget_file),
};

/// A deleted media document's file goes too (the document is only soft-deleted, but nothing can
/// reach the file any more).
fn forget_file(data_dir: &Path, account_id: &str, media_id: &str) {
    remove_files(data_dir, account_id, media_id, None);
}

fn no_write_only(
    _fields: &mut Map<String, Value>,
    _base: Option<&Map<String, Value>>,
    _id: &str,
) -> Result<Map<String, Value>, FieldErrors> {
    Ok(Map::new())
}

fn upload_finish(
    pending: Map<String, Value>,
    _public: &Map<String, Value>,
    _current: Option<&StoredDoc>,
) -> Result<Map<String, Value>, FieldErrors> {
    Ok(pending)
}

fn summary(doc: &StoredDoc) -> Value {
    pick(
        doc,
        &[
            "name",
            "description",
            "media_source",
            "language",
            "content_type",
            "content_length",
        ],
    )
}

/// The file extension for an upload's `Content-Type` (parameters ignored), if accepted.
pub fn extension_for(content_type: &str) -> Option<&'static str> {
    let base = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    FORMATS
        .iter()
        .find(|(ct, _)| *ct == base)
        .map(|(_, ext)| *ext)
}

/// The content type a stored file is served with.
pub fn content_type_for(extension: &str) -> &'static str {
    if extension == "mp3" {
        "audio/mpeg"
    } else {
        "audio/wav"
    }
}

/// Where a media file lives: `<data_dir>/media/<account_id>/<media_id>.<ext>`, absolute (made
/// absolute against the current directory when `data_dir` is relative), so FreeSWITCH on the
/// same host can `playback` it.
pub fn file_path(data_dir: &Path, account_id: &str, media_id: &str, ext: &str) -> PathBuf {
    let path = data_dir
        .join("media")
        .join(account_id)
        .join(format!("{media_id}.{ext}"));
    std::path::absolute(&path).unwrap_or(path)
}

/// The uploaded file of a media id, if there is one (`.wav` first, then `.mp3`). Ids that are
/// not plain ids (`/`, `..`) never resolve.
pub fn stored_file(data_dir: &Path, account_id: &str, media_id: &str) -> Option<PathBuf> {
    if !crate::util::is_valid_id(account_id) || !crate::util::is_valid_id(media_id) {
        return None;
    }
    ["wav", "mp3"]
        .iter()
        .map(|ext| file_path(data_dir, account_id, media_id, ext))
        .find(|path| path.is_file())
}

/// Writes `bytes` to `path` atomically: a temporary file in the same directory, fsync, rename,
/// fsync of the directory. Creates the directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| std::io::Error::other("media path has no directory"))?;
    std::fs::create_dir_all(dir)?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("media");
    let temp = dir.join(format!(".{name}.{}.tmp", crate::util::random_hex(6)));
    let result = (|| {
        let mut file = std::fs::File::create(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&temp, path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}

/// Removes every stored file of a media id except the one with extension `keep`.
pub fn remove_files(data_dir: &Path, account_id: &str, media_id: &str, keep: Option<&str>) {
    if !crate::util::is_valid_id(account_id) || !crate::util::is_valid_id(media_id) {
        return;
    }
    for ext in ["wav", "mp3"] {
        if Some(ext) == keep {
            continue;
        }
        let path = file_path(data_dir, account_id, media_id, ext);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => {
                tracing::warn!(%error, path = %path.display(), "could not remove a media file")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_types() {
        assert_eq!(extension_for("audio/x-wav"), Some("wav"));
        assert_eq!(extension_for("Audio/MPEG; charset=binary"), Some("mp3"));
        assert_eq!(extension_for("text/plain"), None);
        let path = file_path(Path::new("/var/lib/callflowd"), "acc", "m1", "wav");
        assert_eq!(path, PathBuf::from("/var/lib/callflowd/media/acc/m1.wav"));
        assert!(file_path(Path::new("data"), "a", "b", "mp3").is_absolute());
    }

    #[test]
    fn atomic_write_and_lookup() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(stored_file(dir.path(), "acc", "m1"), None);
        let path = file_path(dir.path(), "acc", "m1", "mp3");
        write_atomic(&path, b"ID3").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"ID3");
        assert_eq!(stored_file(dir.path(), "acc", "m1"), Some(path.clone()));
        assert_eq!(stored_file(dir.path(), "acc", "../acc/m1"), None);
        remove_files(dir.path(), "acc", "m1", Some("mp3"));
        assert!(path.is_file());
        remove_files(dir.path(), "acc", "m1", None);
        assert!(!path.exists());
        let leftovers = std::fs::read_dir(path.parent().unwrap()).unwrap().count();
        assert_eq!(leftovers, 0, "no temporary files left behind");
    }
}
