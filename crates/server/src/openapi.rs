//! The OpenAPI 3.1 document. Paths come from the `#[utoipa::path]` annotations of the handlers the
//! router actually serves (see `routes::routes`), so the document cannot list a route that does not
//! exist or miss one that does; this module adds the title, tags and security schemes.

use utoipa::Modify;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "compressor",
        description = "Self-hosted image and video compression. Errors are JSON: {\"error\":{\"code\":\"…\",\"message\":\"…\"}}.",
        license(name = "GPL-3.0-or-later", identifier = "GPL-3.0-or-later"),
    ),
    tags(
        (name = "compress", description = "The compression API"),
        (name = "video", description = "The video service (ffmpeg): videos re-encoded, animated GIFs turned into video"),
        (name = "legacy", description = "Compatibility with the old Go server"),
        (name = "health", description = "Health, readiness, metrics and this document"),
    ),
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
