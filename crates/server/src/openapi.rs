//! The OpenAPI 3.1 document. Paths come from the `#[utoipa::path]` annotations of the handlers the
//! router actually serves (see `routes::routes`), so the document cannot list a route that does not
//! exist or miss one that does; this module adds the title, tags and security schemes, and
//! [`finish`] is the one place for what every route shares: the error responses of the upload
//! routes (each status with the `ErrorBody` schema and its headers), the headers every response
//! carries, and the image media types (an annotation's `image/*` becomes the engine's formats).
//! The handlers declare only their own successful answers.

use compressor_engine::Format;

use crate::error::ERROR_CODES;
use serde_json::{Value, json};
use utoipa::Modify;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "compressor",
        description = "Self-hosted image and video compression. Errors are JSON: {\"error\":{\"code\":\"…\",\"message\":\"…\"}}. \
            A human-readable page of this document is served at /docs.",
        license(name = "GPL-3.0-or-later", identifier = "GPL-3.0-or-later"),
    ),
    tags(
        (name = "compress", description = "The compression API"),
        (name = "video", description = "The video service (ffmpeg): videos re-encoded, animated GIFs turned into video"),
        (name = "legacy", description = "Compatibility with the old Go server"),
        (name = "health", description = "Health, readiness, metrics and this document"),
    ),
    components(schemas(crate::error::ErrorBody)),
    modifiers(&SecuritySchemes),
)]
pub struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("bearer", SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()));
        components.add_security_scheme("api_key", SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-API-Key"))));
    }
}

/// The error statuses of every route that takes an upload (an operation with a request body),
/// with their shared response's name and what the status means; each response's description
/// then lists the codes [`ERROR_CODES`] gives that status, so the document cannot miss one.
const UPLOAD_ERRORS: [(u16, &str, &str); 9] = [
    (400, "BadRequest", "A request the route refuses as written (the parameters' descriptions state the combinations)"),
    (401, "Unauthorized", "Not authorised"),
    (413, "TooLarge", "Over a limit"),
    (415, "Unsupported", "Not a format this route reads"),
    (422, "Unprocessable", "Readable, but the request cannot be met"),
    (429, "RateLimited", "Too many requests"),
    (500, "Internal", "A bug"),
    (503, "Overloaded", "No room now"),
    (504, "Timeout", "Too slow"),
];

/// What only the video route adds: its upload and output are files on the temporary disk.
const VIDEO_ERRORS: [(u16, &str, &str); 1] = [(507, "InsufficientStorage", "No room on the temporary disk")];

/// `summary`: each code of `status` with its meaning.
fn error_description(status: u16, summary: &str) -> String {
    let codes: Vec<String> = ERROR_CODES.iter().filter(|c| c.status == status).map(|c| format!("`{}`: {}", c.code, c.meaning)).collect();
    format!("{summary}. {}", codes.join("; "))
}

/// The finished document as served: the generated one with the shared responses and headers.
pub fn finish(document: &utoipa::openapi::OpenApi) -> Value {
    let mut doc = serde_json::to_value(document).expect("the OpenAPI document serialises");
    let header =
        |description: &str, schema: Value, required: bool| json!({ "description": description, "required": required, "schema": schema });
    let components = doc["components"].as_object_mut().expect("components");
    components.insert(
        "headers".into(),
        json!({
            "X-Request-Id": header("The caller's `X-Request-Id`, or a new UUID", json!({ "type": "string", "minLength": 1 }), true),
            "Retry-After": header("Seconds to wait before trying again", json!({ "type": "integer", "minimum": 0 }), true),
            "X-RateLimit-Limit": header("Requests per window of the caller's bucket (only with --rate-limit)", json!({ "type": "integer", "minimum": 0 }), false),
            "X-RateLimit-Remaining": header("Requests left in the bucket (only with --rate-limit)", json!({ "type": "integer", "minimum": 0 }), false),
            "X-RateLimit-Reset": header("Seconds until the bucket is full again (only with --rate-limit)", json!({ "type": "integer", "minimum": 0 }), false),
            "WWW-Authenticate": header("`Bearer`", json!({ "type": "string", "enum": ["Bearer"] }), true),
        }),
    );
    let reference = |name: &str| json!({ "$ref": format!("#/components/headers/{name}") });
    let rate_headers = json!({
        "X-RateLimit-Limit": reference("X-RateLimit-Limit"),
        "X-RateLimit-Remaining": reference("X-RateLimit-Remaining"),
        "X-RateLimit-Reset": reference("X-RateLimit-Reset"),
    });
    let mut responses = serde_json::Map::new();
    for (status, name, summary) in UPLOAD_ERRORS.iter().chain(&VIDEO_ERRORS).copied() {
        let description = error_description(status, summary);
        let mut headers = json!({ "X-Request-Id": reference("X-Request-Id") });
        match status {
            401 => headers["WWW-Authenticate"] = reference("WWW-Authenticate"),
            429 => {
                headers["Retry-After"] = reference("Retry-After");
                headers.as_object_mut().unwrap().extend(rate_headers.as_object().unwrap().clone());
            }
            503 => headers["Retry-After"] = reference("Retry-After"),
            _ => {}
        }
        let content = json!({ "application/json": { "schema": { "$ref": "#/components/schemas/ErrorBody" } } });
        responses.insert(name.into(), json!({ "description": description, "headers": headers, "content": content }));
    }
    components.insert("responses".into(), Value::Object(responses));
    // The /v1 forms hold their one field and nothing else (another is 400); the legacy form is
    // read as the old server read it, past any other field.
    for (form, others) in [("CompressForm", false), ("VideoForm", false), ("LegacyForm", true)] {
        if let Some(schema) = components.get_mut("schemas").and_then(|s| s.get_mut(form)) {
            schema["additionalProperties"] = Value::Bool(others);
        }
    }

    // `image/*` in an annotation stands for the engine's formats: the ones it reads in a request
    // body, the ones it writes in a response; `video/*` in a request body for the video crate's
    // containers.
    let read: Vec<&str> = Format::ALL.iter().flat_map(|f| f.media_types()).copied().collect();
    let written: Vec<&str> = Format::ALL.iter().filter(|f| f.writable()).map(|f| f.mime_type()).collect();
    for item in doc["paths"].as_object_mut().expect("paths").values_mut() {
        for operation in item.as_object_mut().expect("path item").values_mut() {
            let uploads = operation.get("requestBody").is_some();
            let videos = operation
                .pointer("/requestBody/content")
                .and_then(Value::as_object)
                .is_some_and(|content| content.keys().any(|media| media.starts_with("video/")));
            if let Some(content) = operation.pointer_mut("/requestBody/content") {
                expand_media_types(content, "image/*", &read);
                expand_media_types(content, "video/*", compressor_video::MEDIA_TYPES);
            }
            let Some(responses) = operation.get_mut("responses").and_then(Value::as_object_mut) else { continue };
            for response in responses.values_mut() {
                if let Some(content) = response.get_mut("content") {
                    expand_media_types(content, "image/*", &written);
                }
                let headers = response.as_object_mut().expect("response").entry("headers").or_insert_with(|| json!({}));
                headers["X-Request-Id"] = reference("X-Request-Id");
                if uploads {
                    headers.as_object_mut().unwrap().extend(rate_headers.as_object().unwrap().clone());
                }
            }
            let shared = UPLOAD_ERRORS.iter().filter(|_| uploads).chain(VIDEO_ERRORS.iter().filter(|_| videos));
            for (status, name, _) in shared {
                responses.insert(status.to_string(), json!({ "$ref": format!("#/components/responses/{name}") }));
            }
        }
    }
    doc
}

/// Replaces an `image/*` entry of a `content` map by one entry for each of `types`.
fn expand_media_types(content: &mut Value, wildcard: &str, types: &[&str]) {
    let Some(content) = content.as_object_mut() else { return };
    if let Some(media) = content.remove(wildcard) {
        for media_type in types {
            content.insert((*media_type).into(), media.clone());
        }
    }
}
