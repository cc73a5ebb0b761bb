//! The routes and the layers around them.

pub mod health;
pub mod legacy;
mod query;
pub mod ui;
mod upload;
pub mod v1;
pub mod variants;
pub mod video;

use std::any::Any;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::CompressionLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, json_error};
use crate::{AppState, guard, metrics, openapi};

/// Result headers a browser script may read.
const EXPOSED_HEADERS: [&str; 20] = [
    "x-original-size",
    "x-image-size",
    "x-video-size",
    "x-video-codec",
    "x-audio-codec",
    "x-duration-seconds",
    "x-compression-notes",
    "x-resized-from",
    "x-variant-count",
    "x-compressed-size",
    "x-compression-ratio",
    "x-compression-method",
    "x-quality-score",
    "x-processing-ms",
    "x-compression-metadata",
    "retry-after",
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-ratelimit-reset",
    "x-request-id",
];

/// Every route of the services this instance runs, each group with its own body limit and
/// timeout, and the OpenAPI document built from the same annotations.
fn routes(state: &AppState) -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let config = &state.config;
    let mut all = OpenApiRouter::with_openapi(openapi::ApiDoc::openapi());
    if config.images {
        let images = OpenApiRouter::new()
            .routes(routes!(v1::compress))
            .routes(routes!(variants::variants))
            .routes(routes!(legacy::compress_image))
            .route_layer(middleware::from_fn_with_state(state.clone(), guard::check))
            .layer(middleware::from_fn(crate::slow::enforce_min_rate))
            .layer(RequestBodyLimitLayer::new(config.max_body_bytes))
            .layer(TimeoutLayer::with_status_code(StatusCode::GATEWAY_TIMEOUT, config.request_timeout));
        all = all.merge(images);
    }
    if let Some(video) = &config.video {
        let videos = OpenApiRouter::new()
            .routes(routes!(video::compress_video))
            .route_layer(middleware::from_fn_with_state(state.clone(), guard::check))
            .layer(middleware::from_fn(crate::slow::enforce_min_rate))
            .layer(RequestBodyLimitLayer::new(usize::try_from(video.max_body_bytes).unwrap_or(usize::MAX)))
            .layer(TimeoutLayer::with_status_code(StatusCode::GATEWAY_TIMEOUT, video.timeout));
        all = all.merge(videos);
    }
    let open = OpenApiRouter::new()
        .routes(routes!(health::health))
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(health::metrics))
        .routes(routes!(health::openapi))
        .routes(routes!(ui::docs))
        .layer(TimeoutLayer::with_status_code(StatusCode::GATEWAY_TIMEOUT, config.request_timeout));
    all.merge(open).split_for_parts()
}

/// The whole service: routes plus the cross-cutting layers, outermost last:
/// request id → trace → request id on the response → CORS → metrics → JSON bodies for bare
/// errors → catch panic → each route group's timeout and body limit → routes.
pub fn router(state: AppState, extra: Option<Router<AppState>>) -> Router {
    let (mut routes, doc) = routes(&state);
    if let Some(extra) = extra {
        routes = routes.merge(extra);
    }
    if state.config.ui && state.config.images {
        routes = routes.merge(ui::router().layer(CompressionLayer::new()));
    }
    routes = routes.merge(ui::docs_assets().layer(CompressionLayer::new()));
    let doc = openapi::finish(&doc);
    let doc = health::OpenApiJson(Arc::new(serde_json::to_string_pretty(&doc).expect("the OpenAPI document serialises")));
    let config = &state.config;

    let cors = (!config.cors_origins.is_empty()).then(|| {
        let origins = if config.cors_origins.iter().any(|o| o == "*") {
            AllowOrigin::any()
        } else {
            AllowOrigin::list(config.cors_origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
        };
        CorsLayer::new()
            .allow_origin(origins)
            .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
            .allow_headers([
                header::CONTENT_TYPE,
                header::AUTHORIZATION,
                header::ACCEPT,
                HeaderName::from_static("x-api-key"),
                HeaderName::from_static("x-request-id"),
            ])
            .expose_headers(EXPOSED_HEADERS.map(HeaderName::from_static))
            .max_age(Duration::from_secs(600))
    });

    routes
        .fallback(not_found)
        .layer(DefaultBodyLimit::disable())
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(middleware::from_fn_with_state(state.clone(), json_errors))
        .layer(middleware::from_fn_with_state(state.clone(), metrics::track))
        .layer(axum::Extension(doc))
        .layer(tower::util::option_layer(cors))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|request: &Request| {
                    let id = request.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("-");
                    tracing::info_span!("request", method = %request.method(), path = %request.uri().path(), request_id = %id)
                })
                .on_response(DefaultOnResponse::new().level(tracing::Level::INFO)),
        )
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .with_state(state)
}

async fn not_found(request: Request) -> ApiError {
    ApiError::NotFound(format!("{} {}", request.method(), request.uri().path()))
}

fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response {
    let detail = panic.downcast_ref::<String>().cloned().or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()));
    ApiError::Internal(format!("the request handler panicked: {}", detail.unwrap_or_default())).into_response()
}

/// Gives the bare error responses of layers and of axum itself (413 from the body limit, 504 from
/// the timeout, 405 from method routing) the same JSON body as every other error.
async fn json_errors(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let (max_body_bytes, timeout) = match &state.config.video {
        Some(video) if request.uri().path().starts_with("/v1/video/") => (video.max_body_bytes, video.timeout),
        _ => (state.config.max_body_bytes as u64, state.config.request_timeout),
    };
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response.headers().get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (mut parts, _) = response.into_parts();
    let replacement = match status {
        StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::Refused { code: "too_large", message: format!("the request body is larger than the {max_body_bytes} byte limit") }
                .into_response()
        }
        StatusCode::GATEWAY_TIMEOUT => ApiError::Timeout(timeout.as_millis()).into_response(),
        StatusCode::INTERNAL_SERVER_ERROR => ApiError::Internal("unexpected failure".into()).into_response(),
        StatusCode::METHOD_NOT_ALLOWED => json_error(status, "method_not_allowed", "this route does not answer that method"),
        other => {
            let reason = other.canonical_reason().unwrap_or("error");
            json_error(other, &reason.to_ascii_lowercase().replace([' ', '-'], "_"), reason)
        }
    };
    let (fresh, body) = replacement.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.extend(fresh.headers);
    Response::from_parts(parts, body)
}
