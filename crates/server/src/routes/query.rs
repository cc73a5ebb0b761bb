//! The image routes' query, read through the engine's option registry (`compressor_engine::OPTIONS`):
//! every option it offers over HTTP is a parameter, parsed by the registry with the same
//! spellings and ranges as the command line, and documented from it (enum, range, pattern). A new
//! engine option reaches `/v1/compress`, `/v1/variants` and the OpenAPI document from its entry.

use compressor_engine::{
    COLOUR_PATTERN, Format, Http, OPTIONS, OptionDef, Options, OutputFormat, QUALITY_PATTERN, Surface, ValueKind, option,
};
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::{KnownFormat, Required, SchemaFormat};

use crate::AppState;
use crate::error::ApiError;

fn invalid(message: String) -> ApiError {
    ApiError::Refused { code: "invalid_options", message }
}

/// The query's `name=value` pairs, percent-decoded; a name given twice is refused (which one
/// would count is a guess).
pub(super) fn pairs(query: Option<&str>) -> Result<Vec<(String, String)>, ApiError> {
    let mut pairs: Vec<(String, String)> = Vec::new();
    for (name, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        if pairs.iter().any(|(n, _)| *n == name) {
            return Err(invalid(format!("parameter {name:?} is given more than once")));
        }
        pairs.push((name.into_owned(), value.into_owned()));
    }
    Ok(pairs)
}

/// Whether the HTTP API offers the registry's option.
fn offered(def: &OptionDef) -> bool {
    def.http == Http::Offered
}

/// Engine options from query pairs (each an option the registry offers over HTTP) and the
/// `Accept` header (the candidates of `format=auto`), checked together; the server's limits
/// always apply.
pub(super) fn options(pairs: &[(String, String)], accept: &str, state: &AppState) -> Result<Options, ApiError> {
    let mut options = Options { limits: state.config.limits(), ..Options::default() };
    for (name, value) in pairs {
        if !option(name).is_some_and(offered) {
            let names: Vec<&str> = OPTIONS.iter().filter(|d| offered(d)).map(|d| d.name).collect();
            return Err(invalid(format!("unknown parameter {name:?}; this route takes {}", names.join(", "))));
        }
        options.set(name, value)?;
    }
    if options.format == OutputFormat::Auto {
        options.auto_formats = accepted_formats(accept);
    }
    options.validate()?;
    Ok(options)
}

/// Media ranges of an `Accept` header with their q-values (q=0 ranges are dropped).
fn media_ranges(accept: &str) -> impl Iterator<Item = String> + '_ {
    accept.split(',').filter_map(|range| {
        let mut parts = range.split(';');
        let media = parts.next()?.trim().to_ascii_lowercase();
        let q = parts
            .filter_map(|p| p.trim().strip_prefix("q=").or_else(|| p.trim().strip_prefix("Q=")))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        (!media.is_empty() && q > 0.0).then_some(media)
    })
}

pub(super) fn accepts_json(accept: &str) -> bool {
    media_ranges(accept).any(|m| m == "application/json")
}

/// The formats `format=auto` may choose from: the writable image types the client lists (by the
/// engine's media types); empty (the engine's default candidates) when it accepts any image
/// (`*/*`, `image/*`) or lists none.
fn accepted_formats(accept: &str) -> Vec<Format> {
    let mut formats = Vec::new();
    for media in media_ranges(accept) {
        if media == "*/*" || media == "image/*" {
            return Vec::new();
        }
        let format = Format::ALL.into_iter().find(|f| f.writable() && f.media_types().contains(&media.as_str()));
        if let Some(format) = format.filter(|f| !formats.contains(f)) {
            formats.push(format);
        }
    }
    formats
}

/// The registry's HTTP options as OpenAPI query parameters, without those in `except`.
pub(super) fn parameters(except: &[&str]) -> Vec<Parameter> {
    OPTIONS
        .iter()
        .filter(|def| offered(def) && !except.contains(&def.name))
        .map(|def| {
            let mut description = def.help(Surface::Http);
            if let Some(default) = def.default {
                description.push_str(&format!(". Default `{default}`"));
            }
            ParameterBuilder::new()
                .name(def.name)
                .parameter_in(ParameterIn::Query)
                .required(Required::False)
                .description(Some(description))
                .schema(Some(schema(def)))
                .example(def.default.map(|d| example(def, d)))
                .build()
        })
        .collect()
}

fn example(def: &OptionDef, default: &str) -> serde_json::Value {
    match def.value {
        ValueKind::Integer { .. } => default.parse::<u64>().map(serde_json::Value::from).unwrap_or_else(|_| default.into()),
        _ => default.into(),
    }
}

fn schema(def: &OptionDef) -> Schema {
    let object = match def.value {
        ValueKind::Choice(names) => ObjectBuilder::new().schema_type(Type::String).enum_values(Some(names())),
        ValueKind::Integer { min, max } => ObjectBuilder::new()
            .schema_type(Type::Integer)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
            .minimum(Some(min as f64))
            .maximum(Some(max as f64)),
        ValueKind::Number { min, max } => ObjectBuilder::new()
            .schema_type(Type::Number)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Double)))
            .minimum(Some(min))
            .maximum(Some(max)),
        ValueKind::Quality => ObjectBuilder::new().schema_type(Type::String).pattern(Some(QUALITY_PATTERN)),
        ValueKind::Switch => ObjectBuilder::new().schema_type(Type::Boolean),
        ValueKind::Colour => ObjectBuilder::new().schema_type(Type::String).pattern(Some(COLOUR_PATTERN)),
    };
    Schema::Object(object.build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_header_to_auto_candidates() {
        assert_eq!(accepted_formats(""), vec![]);
        assert_eq!(accepted_formats("image/webp, image/png;q=0.5"), vec![Format::WebP, Format::Png]);
        assert_eq!(accepted_formats("image/avif,image/webp,image/*;q=0.8"), vec![]);
        assert_eq!(accepted_formats("*/*"), vec![]);
        assert_eq!(accepted_formats("image/avif;q=0, image/jpeg"), vec![Format::Jpeg]);
        assert_eq!(accepted_formats("image/tiff, image/gif"), vec![Format::Gif], "TIFF is read, not written");
        assert_eq!(accepted_formats("application/json"), vec![]);
        assert!(accepts_json("application/json"));
        assert!(accepts_json("image/png, application/json;q=0.9"));
        assert!(!accepts_json("application/json;q=0"));
        assert!(!accepts_json("*/*"));
    }

    #[test]
    fn pairs_are_decoded_and_a_repeated_name_is_refused() {
        let read = pairs(Some("quality=65-80&background=%23102030&fit=cover")).unwrap();
        assert_eq!(read[1], ("background".to_owned(), "#102030".to_owned()));
        assert!(pairs(Some("quality=60&quality=70")).is_err());
        assert_eq!(pairs(None).unwrap(), vec![]);
    }
}
