//! `PUT /v2/accounts/{account_id}/media/{id}/raw` (upload the audio of a media document) and
//! `GET .../raw` (download it).
//!
//! Uploads take `Content-Type: audio/wav | audio/x-wav | audio/mpeg | audio/mp3` (anything else:
//! 415), at most `media_max_bytes` (413), written atomically to
//! [`crate::documents::media::file_path`] before the document records it. The reply is the media
//! document (Kazoo envelope); the download is the bytes with their content type.

use super::AppState;
use super::envelope::{ApiError, Ctx, Passthrough, Reply};
use super::routes::{RouteSpec, Verb};
use crate::documents::media::{self, FILE_FIELD, MEDIA};
use crate::documents::{self, WriteContext};
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

const UPLOAD_TYPES: &[&str] = &["audio/wav", "audio/x-wav", "audio/mpeg", "audio/mp3"];

fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

async fn upload(
    State(state): State<AppState>,
    ctx: Ctx,
    Path((account_id, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Result<Reply, ApiError> {
    let declared = content_type(&headers);
    let ext = media::extension_for(&declared).ok_or(ApiError::UnsupportedMediaType(declared))?;
    if state.store.get_doc(&account_id, MEDIA.name, &id)?.is_none() {
        return Err(ApiError::NotFound(id));
    }
    let limit = state.settings.media_max_bytes;
    let too_big = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|n| n > limit as u64);
    if too_big {
        return Err(ApiError::TooLarge(limit));
    }
    let bytes = super::envelope::read_body(body, limit).await?;
    if bytes.is_empty() {
        let mut errors = crate::callflow::errors::FieldErrors::new();
        errors.add_message("raw", "required", "The upload is empty");
        return Err(ApiError::Validation(errors));
    }
    let size = bytes.len();
    let path = media::file_path(&state.settings.data_dir, &account_id, &id, ext);
    let target = path.clone();
    tokio::task::spawn_blocking(move || media::write_atomic(&target, &bytes))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(|e| ApiError::Internal(format!("writing {}: {e}", path.display())))?;

    let served_type = media::content_type_for(ext);
    let mut public = Map::new();
    public.insert("content_type".into(), json!(served_type));
    public.insert("content_length".into(), json!(size));
    let mut private = Map::new();
    private.insert(
        FILE_FIELD.into(),
        json!({"ext": ext, "content_type": served_type, "size": size, "uploaded": crate::util::gregorian_now()}),
    );
    let written = documents::set_server_fields(
        state.store.as_ref(),
        &MEDIA,
        &account_id,
        &id,
        public,
        private,
        WriteContext {
            request_id: &ctx.request_id,
            if_match: ctx.if_match.as_deref(),
        },
    )
    .await;
    match written {
        Ok(doc) => {
            media::remove_files(&state.settings.data_dir, &account_id, &id, Some(ext));
            Ok(Reply::ok(Value::Object(doc.public())).revision(doc.revision()))
        }
        Err(error) => {
            if matches!(error, documents::DocError::NotFound(_)) {
                // Deleted while uploading: nothing refers to the file.
                media::remove_files(&state.settings.data_dir, &account_id, &id, None);
            }
            Err(error.into())
        }
    }
}

async fn download(
    State(state): State<AppState>,
    Path((account_id, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let doc = state
        .store
        .get_doc(&account_id, MEDIA.name, &id)?
        .ok_or_else(|| ApiError::NotFound(id.clone()))?;
    let ext = doc
        .body
        .get(FILE_FIELD)
        .and_then(|f| f.get("ext"))
        .and_then(Value::as_str)
        .filter(|e| *e == "wav" || *e == "mp3")
        .ok_or_else(|| ApiError::NotFound(id.clone()))?;
    let path = media::file_path(&state.settings.data_dir, &account_id, &id, ext);
    let bytes = match tokio::fs::read(&path).await {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(ApiError::NotFound(id)),
        Err(e) => {
            return Err(ApiError::Internal(format!(
                "reading {}: {e}",
                path.display()
            )));
        }
    };
    let mut response = bytes.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(media::content_type_for(ext)),
    );
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{id}.{ext}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    response.extensions_mut().insert(Passthrough);
    Ok(response)
}

/// The raw media routes.
pub fn routes() -> Vec<RouteSpec> {
    let path = "/v2/accounts/{account_id}/media/{id}/raw";
    vec![
        RouteSpec::new(Verb::Put, path, "upload_media_raw", upload)
            .summary(
                "Upload a media document's audio (audio/wav, audio/x-wav, audio/mpeg, audio/mp3)",
            )
            .tag("media")
            .auth()
            .raw_request(UPLOAD_TYPES, json!({"type": "string", "format": "binary"}))
            .response(json!({"$ref": "#/components/schemas/media"}))
            .error(415, "Content-Type is not an accepted audio type"),
        RouteSpec::new(Verb::Get, path, "download_media_raw", download)
            .summary("Download a media document's audio")
            .tag("media")
            .auth()
            .raw(&["audio/wav", "audio/mpeg"])
            .response(json!({"type": "string", "format": "binary"})),
    ]
}
