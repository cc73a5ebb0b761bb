//! The engine's option registry (`compressor_engine::OPTIONS`) walked across every surface: each
//! option is a `compress` flag and (unless the registry says why not) a `/v1/compress` parameter
//! of `compressor serve` and of its OpenAPI document; each takes the same spellings on both, and
//! refuses a value outside its range with the same message.

use std::process::{Command, Output};

use compressor_engine::{Http, OPTIONS, OptionDef, Surface, ValueKind};
use compressor_test_support::Served;

fn compressor() -> Command {
    Command::new(env!("CARGO_BIN_EXE_compressor"))
}

/// `compressor serve` on a free port, stopped on drop.
fn serve() -> Served {
    let mut command = compressor();
    command.args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json", "--workers", "2"]).env("RUST_LOG", "info");
    Served::start(command)
}

/// Values of `def` that must be accepted, each with the options it needs beside it.
fn accepted(def: &OptionDef) -> Vec<String> {
    match def.value {
        ValueKind::Choice(names) => names().into_iter().flat_map(|n| [n.to_owned(), n.to_ascii_uppercase()]).collect(),
        ValueKind::Integer { min, max } => vec![min.to_string(), max.min(1 << 40).to_string()],
        ValueKind::Number { min, max } => vec![min.to_string(), max.to_string(), ((min + max) / 2.0).to_string()],
        ValueKind::Quality => vec!["0".into(), "65-80".into(), "100".into()],
        ValueKind::Switch => vec!["true".into()],
        ValueKind::Colour => vec!["102030".into(), "#ABCDEF".into()],
    }
}

/// Values of `def` that must be refused (a switch's are only for HTTP: a flag takes no value).
fn refused(def: &OptionDef) -> Vec<String> {
    match def.value {
        ValueKind::Choice(_) => vec!["nope".into()],
        ValueKind::Integer { min, max } => {
            let mut values = vec!["many".into(), "-1".into()];
            values.extend((min > 0).then(|| (min - 1).to_string()));
            values.extend((max < u64::MAX).then(|| (max + 1).to_string()));
            values
        }
        ValueKind::Number { min, max } => vec![(min - 1.0).to_string(), (max + 1.0).to_string(), "NaN".into()],
        ValueKind::Quality => vec!["080".into(), "80-20".into(), "101".into(), " 80".into()],
        ValueKind::Switch => vec!["yes".into()],
        ValueKind::Colour => vec!["fff".into(), "gggggg".into()],
    }
}

/// The options an option needs beside it (by name and value) to be a valid request on its own.
fn companions(name: &str, value: &str) -> Vec<(&'static str, &'static str)> {
    match (name, value.to_ascii_lowercase().as_str()) {
        ("fit", "scale") | ("enlarge", _) => vec![("width", "8")],
        ("fit", _) => vec![("width", "8"), ("height", "8")],
        ("allow_downscale", _) => vec![("max_bytes", "100000")],
        _ => vec![],
    }
}

fn cli(image: &std::path::Path, options: &[(&str, &str)]) -> Output {
    let mut command = compressor();
    command.arg("compress").arg(image).args(["-o", "-"]);
    for (name, value) in options {
        let def = compressor_engine::option(name).unwrap();
        // `--flag=VALUE`, so that a value starting with `-` is the flag's.
        match def.value {
            ValueKind::Switch => command.arg(format!("--{}", def.flag())),
            _ => command.arg(format!("--{}={value}", def.flag())),
        };
    }
    command.output().unwrap()
}

fn http(client: &reqwest::blocking::Client, serve: &Served, image: &[u8], options: &[(&str, &str)]) -> (u16, serde_json::Value) {
    let response = client.post(format!("http://{}/v1/compress", serve.address)).query(options).body(image.to_vec()).send().unwrap();
    let status = response.status().as_u16();
    let body = if status == 200 { serde_json::Value::Null } else { response.json().unwrap_or(serde_json::Value::Null) };
    (status, body)
}

#[test]
fn every_option_is_set_and_refused_alike_on_the_command_line_and_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("small.png");
    let png = compressor_test_support::noisy_png(16, 16, 3);
    std::fs::write(&image, &png).unwrap();
    let serve = serve();
    let client = reqwest::blocking::Client::new();

    for def in OPTIONS {
        let on_http = def.http == Http::Offered;
        for value in accepted(def) {
            let mut options = vec![(def.name, value.as_str())];
            options.extend(companions(def.name, &value));
            let out = cli(&image, &options);
            assert_ne!(out.status.code(), Some(2), "--{} {value}: {}", def.flag(), String::from_utf8_lossy(&out.stderr));
            if on_http {
                let (status, body) = http(&client, &serve, &png, &options);
                assert_ne!(status, 400, "{}={value}: {body}", def.name);
            }
        }
        for value in refused(def) {
            let mut options = vec![(def.name, value.as_str())];
            options.extend(companions(def.name, &value));
            let cli_message = match def.value {
                ValueKind::Switch => None,
                _ => {
                    let out = cli(&image, &options);
                    assert_eq!(out.status.code(), Some(2), "--{} {value:?} is a usage error", def.flag());
                    Some(String::from_utf8_lossy(&out.stderr).into_owned())
                }
            };
            if on_http {
                let (status, body) = http(&client, &serve, &png, &options);
                assert_eq!((status, body["error"]["code"].as_str()), (400, Some("invalid_options")), "{}={value:?}: {body}", def.name);
                let message = body["error"]["message"].as_str().unwrap();
                assert!(message.contains(def.name), "{message}");
                if let Some(cli_message) = cli_message {
                    assert!(cli_message.contains(message), "the same words on both: {cli_message:?} vs {message:?}");
                }
            }
        }
    }
    // A parameter that is no option, or an option the HTTP API does not offer, is refused by name.
    for name in ["qualty", "max_pixels"] {
        let (status, body) = http(&client, &serve, &png, &[(name, "1")]);
        assert_eq!(status, 400, "{body}");
        assert!(body["error"]["message"].as_str().unwrap().contains(name), "{body}");
    }
}

#[test]
fn the_openapi_document_and_the_help_list_every_option_with_its_values() {
    let serve = serve();
    let doc: serde_json::Value = reqwest::blocking::get(format!("http://{}/openapi.json", serve.address)).unwrap().json().unwrap();
    let params = doc["paths"]["/v1/compress"]["post"]["parameters"].as_array().unwrap();
    let help = String::from_utf8(compressor().args(["compress", "--help"]).output().unwrap().stdout).unwrap();
    for def in OPTIONS {
        assert!(help.contains(&format!("--{}", def.flag())), "--{} in compress --help", def.flag());
        let param = params.iter().find(|p| p["name"] == def.name);
        let Http::Offered = def.http else {
            assert!(param.is_none(), "{} is not offered over HTTP but documented", def.name);
            continue;
        };
        let param = param.unwrap_or_else(|| panic!("{} is not in the document", def.name));
        let schema = &param["schema"];
        assert!(param["description"].as_str().unwrap().starts_with(&def.help(Surface::Http)), "{param}");
        match def.value {
            ValueKind::Choice(names) => assert_eq!(schema["enum"], serde_json::json!(names()), "{param}"),
            ValueKind::Integer { min, max } => {
                assert_eq!(
                    (schema["type"].as_str(), schema["minimum"].as_u64(), schema["maximum"].as_u64()),
                    (Some("integer"), Some(min), Some(max))
                )
            }
            ValueKind::Number { min, max } => {
                assert_eq!(
                    (schema["type"].as_str(), schema["minimum"].as_f64(), schema["maximum"].as_f64()),
                    (Some("number"), Some(min), Some(max))
                )
            }
            ValueKind::Quality => assert_eq!(schema["pattern"], compressor_engine::QUALITY_PATTERN),
            ValueKind::Switch => assert_eq!(schema["type"], "boolean"),
            ValueKind::Colour => assert_eq!(schema["pattern"], compressor_engine::COLOUR_PATTERN),
        }
    }
}
