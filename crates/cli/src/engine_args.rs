//! Engine options as command-line flags, shared by every subcommand that compresses. The flags are
//! built from the engine's option registry (`compressor_engine::OPTIONS`): each option's name,
//! values, range, default and help are the registry's, so a new engine option is a new flag here
//! without a change to this file.

use clap::{Arg, ArgAction, ArgMatches, Command};
use compressor_engine::{OPTIONS, OptionDef, Options, OutputFormat, Surface, ValueKind};
use compressor_video::VideoFormat;

/// What the engine flags asked for: the options as given (checked together by [`EngineArgs::options`]),
/// and a video container when `--format` named one.
#[derive(Debug, Clone, Default)]
pub struct EngineArgs {
    given: Options,
    format: Option<FormatChoice>,
}

/// `--format`: an image format for the engine, or a video container for `compressor-video`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormatChoice {
    Image(OutputFormat),
    Video(VideoFormat),
}

/// The registry's help, which every surface shares, with what only the command line has.
fn cli_help(def: &OptionDef) -> String {
    let extra = match def.name {
        "format" => "; for videos and animated GIFs (compress only) mp4 or webm; --widths makes WebP unless --format says otherwise",
        "target_quality" => "; for videos the highest CRF whose sampled frames score at least this on average",
        _ => "",
    };
    let default = def.default.map(|d| format!(" [default: {d}]")).unwrap_or_default();
    format!("{}{extra}{default}", def.help(Surface::Cli))
}

/// A container `--format` names for videos, read by the video crate (`keep` is the image option's).
fn video_format(text: &str) -> Option<VideoFormat> {
    text.parse().ok().filter(|&f| f != VideoFormat::Keep)
}

fn arg(def: &'static OptionDef) -> Arg {
    let mut arg = Arg::new(def.name).long(def.flag()).help(cli_help(def));
    if let Some(short) = def.short {
        arg = arg.short(short);
    }
    match def.value {
        ValueKind::Switch => arg.action(ArgAction::SetTrue),
        _ => arg.action(ArgAction::Set).value_name(def.name.to_ascii_uppercase()).value_parser(move |text: &str| {
            if def.name == "format" && video_format(text).is_some() {
                return Ok(text.to_owned());
            }
            def.parse(text).map(|_| text.to_owned()).map_err(|e| e.to_string())
        }),
    }
}

impl clap::Args for EngineArgs {
    fn augment_args(command: Command) -> Command {
        OPTIONS.iter().fold(command, |command, def| command.arg(arg(def)))
    }

    fn augment_args_for_update(command: Command) -> Command {
        Self::augment_args(command)
    }
}

impl clap::FromArgMatches for EngineArgs {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let mut args = EngineArgs::default();
        args.update_from_arg_matches(matches)?;
        Ok(args)
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        for def in OPTIONS {
            let text = match def.value {
                ValueKind::Switch => matches.get_flag(def.name).then(|| "true".to_owned()),
                _ => matches.get_one::<String>(def.name).cloned(),
            };
            let Some(text) = text else { continue };
            if def.name == "format"
                && let Some(video) = video_format(&text)
            {
                self.format = Some(FormatChoice::Video(video));
                continue;
            }
            // The value parser has already read it; only the registry's setter is left.
            self.given.set(def.name, &text).map_err(|e| clap::Error::raw(clap::error::ErrorKind::ValueValidation, e))?;
            if def.name == "format" {
                self.format = Some(FormatChoice::Image(self.given.format));
            }
        }
        Ok(())
    }
}

impl EngineArgs {
    /// The image format asked for, if one was.
    pub fn image_format(&self) -> Option<OutputFormat> {
        match self.format {
            Some(FormatChoice::Image(f)) => Some(f),
            _ => None,
        }
    }

    /// The video container asked for (`--format mp4|webm`), if one was.
    pub fn video_format(&self) -> Option<VideoFormat> {
        match self.format {
            Some(FormatChoice::Video(f)) => Some(f),
            _ => None,
        }
    }

    /// The quality range asked for, if one was (videos read its maximum as theirs).
    pub fn quality(&self) -> Option<compressor_engine::Quality> {
        self.given.quality
    }

    /// The target score asked for, if one was (videos search their CRF for it too).
    pub fn target_quality(&self) -> Option<f64> {
        self.given.target_quality
    }

    /// The engine options, checked together (`Options::validate`) before any file is read: a
    /// refusal is a usage error.
    pub fn options(&self) -> anyhow::Result<Options> {
        self.given.validate()?;
        Ok(self.given.clone())
    }

    /// The options of responsive variants (`--widths`) and whether they may enlarge: `--enlarge`
    /// applies to the widths there, not to a resize.
    pub fn variant_options(&self) -> anyhow::Result<(Options, bool)> {
        let mut options = self.given.clone();
        let enlarge = options.resize.take().is_some_and(|r| r.enlarge);
        options.validate()?;
        Ok((options, enlarge))
    }
}
