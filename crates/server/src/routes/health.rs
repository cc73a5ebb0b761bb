//! Health, readiness, metrics and the OpenAPI document: open routes, no key needed.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Extension;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::AppState;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Status {
    /// `ok`, `ready`, `draining` or `saturated`
    #[schema(example = "ready")]
    pub status: &'static str,
}

/// Health check of the old server (load balancers use it): always `OK` while the process serves.
#[utoipa::path(get, path = "/health", tag = "health",
    responses((status = 200, description = "The text `OK`", body = String, content_type = "text/plain")))]
pub async fn health() -> &'static str {
    "OK"
}

/// Liveness: the process is up and serving HTTP.
#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, description = "Alive", body = Status)))]
pub async fn healthz() -> axum::Json<Status> {
    axum::Json(Status { status: "ok" })
}

/// Readiness: 200 while new work is accepted; 503 while shutting down or when every worker and
/// queue slot is taken (of the image pool; of the video pool on a video-only instance).
#[utoipa::path(get, path = "/readyz", tag = "health", responses(
    (status = 200, description = "Accepting work", body = Status),
    (status = 503, description = "Draining (shutting down) or saturated", body = Status),
))]
pub async fn readyz(State(state): State<AppState>) -> Response {
    if state.draining.load(Ordering::SeqCst) {
        (StatusCode::SERVICE_UNAVAILABLE, axum::Json(Status { status: "draining" })).into_response()
    } else if state.saturated() {
        (StatusCode::SERVICE_UNAVAILABLE, axum::Json(Status { status: "saturated" })).into_response()
    } else {
        axum::Json(Status { status: "ready" }).into_response()
    }
}

/// Prometheus metrics (text exposition format).
#[utoipa::path(get, path = "/metrics", tag = "health",
    responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain; version=0.0.4")))]
pub async fn metrics(State(state): State<AppState>) -> Response {
    if let Some(reserved) = state.pool.memory_reserved() {
        state.metrics.gauge(crate::metrics::MEMORY_RESERVED).set(reserved as f64);
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], state.metrics.render()).into_response()
}

/// The OpenAPI document to serve, rendered once at start-up.
#[derive(Clone)]
pub struct OpenApiJson(pub Arc<String>);

/// This API's OpenAPI 3.1 document.
#[utoipa::path(get, path = "/openapi.json", tag = "health",
    responses((status = 200, description = "OpenAPI 3.1 document", body = Object, content_type = "application/json")))]
pub async fn openapi(Extension(doc): Extension<OpenApiJson>) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], doc.0.as_str().to_owned()).into_response()
}
