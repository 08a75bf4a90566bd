//! `GET /api/cases/{id}/export/{format}[?repo=R]`: the case as OSV records, a CSAF 2.0 VEX
//! document or CVE JSON 5 records, for those who may read the case. One document is the
//! body; several (OSV, CVE without `repo`) are a JSON array. Never cacheable: before
//! publication the documents carry embargoed details.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use lockstep_core::RepoId;
use lockstep_export::{ExportError, Format, Options};
use serde_json::Value;

use crate::AppState;
use crate::api::readable;
use crate::auth::Bearer;
use crate::error::ApiError;

pub(crate) async fn export(
    State(app): State<Arc<AppState>>,
    bearer: Bearer,
    Path((id, format)): Path<(String, String)>,
    Query(query): Query<BTreeMap<String, String>>,
) -> Result<Response, ApiError> {
    let case = readable(&app, &bearer.into(), &id).await?;
    let format: Format = format.parse().map_err(ApiError::not_found)?;
    if let Some(key) = query.keys().find(|k| *k != "repo") {
        return Err(ApiError::bad_request(format!(
            "unknown query parameter {key:?}: only repo"
        )));
    }
    let repo: Option<RepoId> = query
        .get("repo")
        .map(|r| r.parse().map_err(ApiError::bad_request))
        .transpose()?;
    let events = app.store.events(&case.id).await.map_err(ApiError::store)?;
    let docs = lockstep_export::export(&case, &events, format, repo.as_ref(), &Options::default())
        .map_err(|e| match e {
            ExportError::RepoNotApplicable | ExportError::NotInCase { .. } => {
                ApiError::bad_request(e)
            }
            _ => ApiError::not_found(e),
        })?;
    let body = match docs.as_slice() {
        [one] => one.json.clone(),
        _ => Value::Array(docs.into_iter().map(|d| d.json).collect()),
    };
    let mut response = Json(body).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}
