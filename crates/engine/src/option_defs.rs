//! The option registry: every option a caller can set by name, defined once with its accepted
//! values, range, default, help text and the surfaces that offer it. The command line builds its
//! flags from [`OPTIONS`], the HTTP API parses its query and writes its OpenAPI parameters from
//! it, and batch and bench reach the same [`Options`] through [`Options::set`]; so adding an
//! option is one entry here (and its field in [`Options`]).

use crate::error::Error;
use crate::options::{Fit, MetadataPolicy, Mode, Named, Options, OutputFormat, Quality, Resize};

/// A surface through which options are set, for spelling an option the way its user types it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    /// Command-line flags: `--first-frame`, `--quality 80`.
    Cli,
    /// HTTP query parameters: `first_frame=true`, `quality=80`.
    Http,
}

/// What values an option takes.
#[derive(Debug, Clone, Copy)]
pub enum ValueKind {
    /// One of these words, in any case (aliases included).
    Choice(fn() -> Vec<&'static str>),
    /// A whole number within the range.
    Integer { min: u64, max: u64 },
    /// A number within the range.
    Number { min: f64, max: f64 },
    /// `N` or `MIN-MAX`, each 0-100 in plain digits (no sign, space or leading zero), MIN <= MAX.
    Quality,
    /// On or off: a flag on the command line, `true` or `false` over HTTP.
    Switch,
    /// A colour as six hexadecimal digits, RRGGBB (a leading `#` allowed).
    Colour,
}

/// The regular expression of [`ValueKind::Quality`], for documents (the parser below is the rule).
pub const QUALITY_PATTERN: &str = r"^(100|[1-9]?[0-9])(-(100|[1-9]?[0-9]))?$";
/// The regular expression of [`ValueKind::Colour`].
pub const COLOUR_PATTERN: &str = r"^#?[0-9A-Fa-f]{6}$";

/// A value read by its [`ValueKind`], handed to the option's setter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    /// The accepted spelling as listed in the choice (lower case).
    Word(&'static str),
    Integer(u64),
    Number(f64),
    Quality(Quality),
    Switch(bool),
    Colour([u8; 3]),
}

/// Whether the HTTP API offers an option, and if not, why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Http {
    Offered,
    /// Not a request parameter; the reason is for readers and the registry test.
    NotOffered(&'static str),
}

/// One option.
pub struct OptionDef {
    /// The name in snake case: the HTTP parameter, and (with dashes) the long flag.
    pub name: &'static str,
    /// The command line's one-letter flag, if it has one.
    pub short: Option<char>,
    pub value: ValueKind,
    /// The default as a user would type it, for help texts (`None`: unset, or the format's own).
    pub default: Option<&'static str>,
    /// One or two sentences, the same on every surface.
    help: &'static str,
    pub http: Http,
    set: fn(&mut Options, Value),
}

impl OptionDef {
    /// The long command-line flag without its dashes: `first-frame`.
    pub fn flag(&self) -> String {
        self.name.replace('_', "-")
    }

    /// The help text, with the other options it names spelled as `surface` spells them
    /// (`--max-bytes` or `max_bytes`); quality's names the formats' defaults from their constants.
    pub fn help(&self, surface: Surface) -> String {
        let mut help = self.help.to_owned();
        if self.name == "quality" {
            help += &format!(
                " (defaults: PNG {}, JPEG {}, WebP {}, AVIF {})",
                crate::DEFAULT_PNG_QUALITY,
                crate::DEFAULT_JPEG_QUALITY,
                crate::DEFAULT_WEBP_QUALITY,
                crate::DEFAULT_AVIF_QUALITY
            );
        }
        for other in OPTIONS {
            help = help.replace(&format!("{{{}}}", other.name), &other.named(surface));
        }
        help
    }

    /// The option's name as `surface` spells it: `--first-frame` or `first_frame`.
    pub fn named(&self, surface: Surface) -> String {
        match surface {
            Surface::Cli => format!("--{}", self.flag()),
            Surface::Http => self.name.to_owned(),
        }
    }

    /// How a user of `surface` sets this option to `value`: `--first-frame` or `first_frame=true`,
    /// `--quality 80` or `quality=80`.
    pub fn spelled(&self, surface: Surface, value: &str) -> String {
        match (surface, self.value) {
            (Surface::Cli, ValueKind::Switch) => self.named(surface),
            (Surface::Cli, _) => format!("{} {value}", self.named(surface)),
            (Surface::Http, _) => format!("{}={value}", self.name),
        }
    }

    /// Reads `text` as this option's value: its spelling and range, nothing else.
    pub fn parse(&self, text: &str) -> Result<Value, Error> {
        let invalid = |expected: String| Error::InvalidOptions { detail: format!("{} {text:?} is not {expected}", self.name) };
        match self.value {
            ValueKind::Choice(names) => {
                let names = names();
                names.iter().find(|n| n.eq_ignore_ascii_case(text)).map(|n| Value::Word(n)).ok_or_else(|| invalid(one_of(&names)))
            }
            ValueKind::Integer { min, max } => text
                .parse::<u64>()
                .ok()
                .filter(|v| (min..=max).contains(v))
                .map(Value::Integer)
                .ok_or_else(|| invalid(format!("a whole number in {min}-{max}"))),
            ValueKind::Number { min, max } => text
                .parse::<f64>()
                .ok()
                .filter(|v| (min..=max).contains(v))
                .map(Value::Number)
                .ok_or_else(|| invalid(format!("a number in {min}-{max}"))),
            ValueKind::Quality => text.parse::<Quality>().map(Value::Quality),
            ValueKind::Switch => match text.to_ascii_lowercase().as_str() {
                "true" => Ok(Value::Switch(true)),
                "false" => Ok(Value::Switch(false)),
                _ => Err(invalid("true or false".into())),
            },
            ValueKind::Colour => colour(text).map(Value::Colour).ok_or_else(|| invalid("a colour like ffffff (RRGGBB)".into())),
        }
    }

    /// The range of a numeric option, for checks of options built in code.
    fn range(&self) -> (f64, f64) {
        match self.value {
            ValueKind::Integer { min, max } => (min as f64, max as f64),
            ValueKind::Number { min, max } => (min, max),
            _ => (f64::NEG_INFINITY, f64::INFINITY),
        }
    }
}

/// `a, b or c`.
pub(crate) fn one_of(names: &[&str]) -> String {
    match names.split_last() {
        Some((last, [])) => (*last).to_owned(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    }
}

fn colour(text: &str) -> Option<[u8; 3]> {
    let hex = text.strip_prefix('#').unwrap_or(text);
    if hex.len() != 6 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let channel = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).ok();
    Some([channel(0)?, channel(2)?, channel(4)?])
}

fn names<T: Named>() -> Vec<&'static str> {
    T::NAMES.iter().map(|(name, _)| *name).collect()
}

fn word<T: Named>(value: Value) -> T {
    match value {
        Value::Word(w) => T::NAMES.iter().find(|(name, _)| *name == w).map(|(_, v)| *v).expect("a word from T's own list"),
        other => unreachable!("a choice gives a word, not {other:?}"),
    }
}

fn integer(value: Value) -> u64 {
    match value {
        Value::Integer(v) => v,
        other => unreachable!("{other:?}"),
    }
}

fn number(value: Value) -> f64 {
    match value {
        Value::Number(v) => v,
        other => unreachable!("{other:?}"),
    }
}

fn switch(value: Value) -> bool {
    match value {
        Value::Switch(v) => v,
        other => unreachable!("{other:?}"),
    }
}

fn resize(options: &mut Options) -> &mut Resize {
    options.resize.get_or_insert_with(Resize::default)
}

/// The largest side a resize may ask for (the largest any format the engine writes holds).
pub const MAX_SIDE: u64 = 65_535;
/// The largest `max_bytes`: the largest integer a JSON number holds exactly.
pub const MAX_BYTES_LIMIT: u64 = (1 << 53) - 1;

/// Every option, in the order help texts list them.
pub const OPTIONS: &[OptionDef] = &[
    OptionDef {
        name: "mode",
        short: Some('m'),
        value: ValueKind::Choice(names::<Mode>),
        default: Some("lossy"),
        help: "lossy (palette quantization, JPEG re-encoding) or lossless (pixel-identical, verified)",
        http: Http::Offered,
        set: |o, v| o.mode = word(v),
    },
    OptionDef {
        name: "quality",
        short: Some('q'),
        value: ValueKind::Quality,
        default: None,
        help: "Quality 0-100, as N or MIN-MAX with MIN <= MAX; lossy PNG gives up below MIN (keeping lossless), the other formats use MAX",
        http: Http::Offered,
        set: |o, v| {
            if let Value::Quality(q) = v {
                o.quality = Some(q);
            }
        },
    },
    OptionDef {
        name: "format",
        short: Some('f'),
        value: ValueKind::Choice(names::<OutputFormat>),
        default: Some("keep"),
        help: "Output format: keep, png, jpeg (or jpg), webp, avif, gif, or auto (the smallest of WebP, AVIF and the input's format; \
               over HTTP the candidates come from the Accept header). HEIC, TIFF and BMP are read, not written: keep makes TIFF/BMP PNG \
               and HEIC the smallest of JPEG, WebP and AVIF",
        http: Http::Offered,
        set: |o, v| o.format = word(v),
    },
    OptionDef {
        name: "metadata",
        short: None,
        value: ValueKind::Choice(names::<MetadataPolicy>),
        default: Some("safe"),
        help: "What to do with metadata: strip, safe (keep the ICC profile, unless it only says sRGB, and orientation; drop EXIF/GPS, XMP, text) or keep. \
               No policy changes what a viewer sees: a profile that is dropped is converted into the pixels first",
        http: Http::Offered,
        set: |o, v| o.metadata = word(v),
    },
    OptionDef {
        name: "effort",
        short: None,
        value: ValueKind::Integer { min: 1, max: 6 },
        default: Some("2"),
        help: "1 (fastest) to 6 (smallest)",
        http: Http::Offered,
        set: |o, v| o.effort = integer(v) as u8,
    },
    OptionDef {
        name: "target_quality",
        short: None,
        value: ValueKind::Number { min: 0.0, max: 100.0 },
        default: None,
        help: "Smallest output whose SSIMULACRA2 score is at least this (0-100, e.g. 80; 90 is visually lossless); lossy mode only",
        http: Http::Offered,
        set: |o, v| o.target_quality = Some(number(v)),
    },
    OptionDef {
        name: "max_bytes",
        short: None,
        value: ValueKind::Integer { min: 1, max: MAX_BYTES_LIMIT },
        default: None,
        help: "Best-quality output no larger than this many bytes (an error when none is)",
        http: Http::Offered,
        set: |o, v| o.max_bytes = Some(integer(v)),
    },
    OptionDef {
        name: "allow_downscale",
        short: None,
        value: ValueKind::Switch,
        default: None,
        help: "With {max_bytes}: when even the lowest quality does not fit, shrink the image by steps until it does",
        http: Http::Offered,
        set: |o, v| o.allow_downscale = switch(v),
    },
    OptionDef {
        name: "width",
        short: None,
        value: ValueKind::Integer { min: 1, max: MAX_SIDE },
        default: None,
        help: "Resize to this width in pixels (as displayed, after the EXIF orientation); {fit} says how it combines with {height}",
        http: Http::Offered,
        set: |o, v| resize(o).width = Some(integer(v) as u32),
    },
    OptionDef {
        name: "height",
        short: None,
        value: ValueKind::Integer { min: 1, max: MAX_SIDE },
        default: None,
        help: "Resize to this height in pixels",
        http: Http::Offered,
        set: |o, v| resize(o).height = Some(integer(v) as u32),
    },
    OptionDef {
        name: "fit",
        short: None,
        value: ValueKind::Choice(names::<Fit>),
        default: Some("fit"),
        help: "How width and height apply: scale (one side given, the other follows), fit (inside the box, aspect kept; also \
               spelled inside or contain), cover (fill the box, centred crop) or fill (stretch). Needs {width} or {height}; scale takes \
               one side, cover and fill both",
        http: Http::Offered,
        set: |o, v| resize(o).fit = word(v),
    },
    OptionDef {
        name: "enlarge",
        short: None,
        value: ValueKind::Switch,
        default: None,
        help: "Allow resizing beyond the image's own size (by default no side is enlarged); needs {width} or {height} (or, for \
               responsive variants, applies to their widths)",
        http: Http::Offered,
        set: |o, v| resize(o).enlarge = switch(v),
    },
    OptionDef {
        name: "background",
        short: None,
        value: ValueKind::Colour,
        default: Some("ffffff"),
        help: "Colour that transparency is flattened onto for JPEG output, as RRGGBB",
        http: Http::Offered,
        set: |o, v| {
            if let Value::Colour(c) = v {
                o.background = c;
            }
        },
    },
    OptionDef {
        name: "first_frame",
        short: None,
        value: ValueKind::Switch,
        default: None,
        help: "Allow animated input into a still-only format (PNG, JPEG, AVIF) by keeping the first frame",
        http: Http::Offered,
        set: |o, v| o.first_frame = switch(v),
    },
    OptionDef {
        name: "score",
        short: None,
        value: ValueKind::Switch,
        default: None,
        help: "Compute the SSIMULACRA2 score of lossy results (costs more CPU than the compression itself; {target_quality} \
               always reports the score it reached)",
        http: Http::Offered,
        set: |o, v| o.score = switch(v),
    },
    OptionDef {
        name: "max_pixels",
        short: None,
        value: ValueKind::Integer { min: 1, max: u64::MAX },
        default: Some("100000000"),
        help: "Refuse images with more pixels than this (checked from the header, before decoding)",
        http: Http::NotOffered("a limit of the server's operator (compressor serve --max-pixels), not of a request"),
        set: |o, v| o.limits.max_pixels = integer(v),
    },
    OptionDef {
        name: "max_output_pixels",
        short: None,
        value: ValueKind::Integer { min: 1, max: u64::MAX },
        default: Some("50000000"),
        help: "Refuse a resize whose output would have more pixels than this (checked from the header, before any work)",
        http: Http::NotOffered("a limit of the server's operator (compressor serve --max-output-pixels), not of a request"),
        set: |o, v| o.limits.max_output_pixels = integer(v),
    },
];

/// The option called `name` (snake case, as HTTP spells it).
pub fn option(name: &str) -> Option<&'static OptionDef> {
    OPTIONS.iter().find(|def| def.name == name)
}

/// The registry's entry for a name the engine itself refers to (a bug if it is missing).
pub(crate) fn known(name: &str) -> &'static OptionDef {
    option(name).unwrap_or_else(|| panic!("option {name} is in the registry"))
}

impl Options {
    /// Sets the option called `name` from `text`, as every surface spells it: `set("quality",
    /// "65-80")`, `set("first_frame", "true")`. Each value is checked alone here; how options go
    /// together is [`Options::validate`]'s.
    pub fn set(&mut self, name: &str, text: &str) -> Result<(), Error> {
        let def = option(name).ok_or_else(|| Error::InvalidOptions { detail: format!("there is no option {name:?}") })?;
        let value = def.parse(text)?;
        (def.set)(self, value);
        Ok(())
    }

    /// Checks a numeric field built in code against its option's range.
    pub(crate) fn check_range(name: &str, value: f64) -> Result<(), Error> {
        let def = known(name);
        let (min, max) = def.range();
        if (min..=max).contains(&value) {
            Ok(())
        } else {
            Err(Error::InvalidOptions { detail: format!("{name} {value} is not in {min}-{max}") })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_option_sets_its_field_and_refuses_what_its_kind_refuses() {
        let mut options = Options::default();
        for (name, text) in [
            ("mode", "LOSSLESS"),
            ("quality", "60-70"),
            ("format", "jpg"),
            ("metadata", "strip"),
            ("effort", "5"),
            ("target_quality", "85.5"),
            ("max_bytes", "1000"),
            ("allow_downscale", "true"),
            ("width", "300"),
            ("fit", "cover"),
            ("height", "200"),
            ("enlarge", "true"),
            ("background", "#102030"),
            ("first_frame", "true"),
            ("score", "true"),
            ("max_pixels", "5000"),
            ("max_output_pixels", "6000"),
        ] {
            options.set(name, text).unwrap_or_else(|e| panic!("{name}={text}: {e}"));
        }
        assert_eq!(options.mode, Mode::Lossless);
        assert_eq!(options.quality, Some(Quality::new(60, 70)));
        assert_eq!(options.format, OutputFormat::To(crate::Format::Jpeg));
        assert_eq!(options.metadata, MetadataPolicy::Strip);
        assert_eq!((options.effort, options.target_quality, options.max_bytes), (5, Some(85.5), Some(1000)));
        assert_eq!(options.resize, Some(Resize { width: Some(300), height: Some(200), fit: Fit::Cover, enlarge: true }));
        assert_eq!(options.background, [0x10, 0x20, 0x30]);
        assert!(options.allow_downscale && options.first_frame && options.score);
        assert_eq!((options.limits.max_pixels, options.limits.max_output_pixels), (5000, 6000));
        assert_eq!(OPTIONS.len(), 17, "each option is set above");

        for (name, text) in [
            ("mode", "fast"),
            ("quality", "080"),
            ("quality", " 80"),
            ("quality", "80-20"),
            ("effort", "7"),
            ("target_quality", "NaN"),
            ("target_quality", "101"),
            ("max_bytes", "0"),
            ("width", "65536"),
            ("enlarge", "yes"),
            ("background", "fff"),
            ("nope", "1"),
        ] {
            match Options::default().set(name, text) {
                Err(Error::InvalidOptions { detail }) => assert!(detail.contains(name) || name == "quality", "{detail}"),
                other => panic!("{name}={text}: {other:?}"),
            }
        }
    }

    #[test]
    fn output_format_names_are_the_writable_formats() {
        for format in crate::Format::ALL {
            let named = format.to_string().parse::<OutputFormat>().ok() == Some(OutputFormat::To(format));
            assert_eq!(named, format.writable(), "{format}");
        }
    }

    /// The defaults help texts show are what `Options::default()` holds.
    #[test]
    fn the_defaults_shown_are_the_defaults() {
        for def in OPTIONS {
            let Some(default) = def.default else { continue };
            let defaults = Options::default();
            let mut options = defaults.clone();
            options.set(def.name, default).unwrap();
            if def.name == "fit" {
                assert_eq!(options.resize.map(|r| r.fit), Some(Fit::default()));
            } else {
                assert_eq!(options, defaults, "{}", def.name);
            }
        }
    }

    #[test]
    fn options_are_spelled_as_each_surface_types_them() {
        assert_eq!(known("first_frame").spelled(Surface::Cli, "true"), "--first-frame");
        assert_eq!(known("first_frame").spelled(Surface::Http, "true"), "first_frame=true");
        assert_eq!(known("quality").spelled(Surface::Cli, "80"), "--quality 80");
    }

    /// A help text that names another option names it as the reader's surface spells it.
    #[test]
    fn help_texts_name_other_options_as_each_surface_spells_them() {
        assert!(known("allow_downscale").help(Surface::Cli).starts_with("With --max-bytes: "));
        assert!(known("allow_downscale").help(Surface::Http).starts_with("With max_bytes: "));
        assert!(known("width").help(Surface::Cli).ends_with("--fit says how it combines with --height"));
        for def in OPTIONS {
            for surface in [Surface::Cli, Surface::Http] {
                let help = def.help(surface);
                assert!(!help.contains(['{', '}']), "{}: a name in braces that is no option: {help}", def.name);
                // Another option's snake-case name left bare would be the wrong spelling on the CLI.
                let bare = OPTIONS.iter().find(|o| o.name.contains('_') && help.contains(o.name) && surface == Surface::Cli);
                assert!(bare.is_none(), "{}: {help}", def.name);
            }
        }
    }
}
