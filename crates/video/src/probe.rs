//! What a file holds, from `ffprobe`'s JSON, and the limits checked on it before any transcode.

use std::path::Path;

use serde::Deserialize;

use crate::error::{Error, LimitKind};
use crate::ffmpeg::{Bounds, Command, run};

/// Limits checked on the probe, before ffmpeg decodes a single frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    pub max_duration_seconds: f64,
    pub max_frame_pixels: u64,
    pub max_input_bytes: u64,
    pub max_frames: u64,
}

impl Limits {
    /// The defaults, written here only: the command line, batch and the service (its
    /// `--max-video-bytes`) read them.
    pub const DEFAULT: Limits =
        Limits { max_duration_seconds: 600.0, max_frame_pixels: 36_000_000, max_input_bytes: 500_000_000, max_frames: 100_000 };
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}

/// The streams that matter of one input.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Probe {
    /// ffprobe's demuxer names, e.g. `mov,mp4,m4a,3gp,3g2,mj2`, `matroska,webm`, `gif`.
    pub container: String,
    pub video_codec: String,
    /// As stored (before any rotation).
    pub width: u32,
    pub height: u32,
    /// Rotation metadata in degrees (0, 90, 180, 270), which ffmpeg applies when transcoding.
    pub rotation: i32,
    pub duration_seconds: f64,
    /// From the container when it says, else duration × average frame rate.
    pub frames: u64,
    pub frame_rate: f64,
    pub audio_codec: Option<String>,
}

impl Probe {
    /// Width and height as displayed.
    pub fn display_size(&self) -> (u32, u32) {
        if self.rotation.rem_euclid(180) == 90 { (self.height, self.width) } else { (self.width, self.height) }
    }

    pub fn is_gif(&self) -> bool {
        self.container == "gif"
    }

    pub fn is_mp4(&self) -> bool {
        self.container.split(',').any(|c| c == "mp4" || c == "mov")
    }

    pub fn is_webm(&self) -> bool {
        self.container.split(',').any(|c| c == "webm")
    }

    pub fn check(&self, limits: &Limits) -> Result<(), Error> {
        let over = |what, value: f64, limit: f64| if value > limit { Err(Error::LimitExceeded { what, value, limit }) } else { Ok(()) };
        over(LimitKind::FramePixels, u64::from(self.width) as f64 * f64::from(self.height), limits.max_frame_pixels as f64)?;
        over(LimitKind::DurationSeconds, self.duration_seconds, limits.max_duration_seconds)?;
        over(LimitKind::Frames, self.frames as f64, limits.max_frames as f64)
    }
}

#[derive(Deserialize)]
struct Json {
    #[serde(default)]
    streams: Vec<Stream>,
    format: Option<Format>,
}

#[derive(Deserialize)]
struct Format {
    format_name: String,
    duration: Option<String>,
}

#[derive(Deserialize)]
struct Stream {
    codec_type: Option<String>,
    codec_name: Option<String>,
    width: Option<u32>,
    height: Option<u32>,
    nb_frames: Option<String>,
    avg_frame_rate: Option<String>,
    r_frame_rate: Option<String>,
    duration: Option<String>,
    #[serde(default)]
    side_data_list: Vec<SideData>,
    #[serde(default)]
    tags: std::collections::HashMap<String, String>,
}

#[derive(Deserialize)]
struct SideData {
    rotation: Option<f64>,
}

/// Probes `path` with ffprobe under `bounds`.
pub fn probe(path: &Path, bounds: &Bounds) -> Result<Probe, Error> {
    parse(&run(Command::probe(path), bounds)?.check()?.stdout)
}

fn parse(json: &[u8]) -> Result<Probe, Error> {
    let json: Json = serde_json::from_slice(json).map_err(|e| Error::corrupt(format!("ffprobe output: {e}")))?;
    let format = json.format.ok_or_else(|| Error::Unsupported { detail: "no container recognised".into() })?;
    let video = json
        .streams
        .iter()
        .find(|s| s.codec_type.as_deref() == Some("video") && s.width.is_some_and(|w| w > 0) && s.height.is_some_and(|h| h > 0))
        .ok_or_else(|| Error::Unsupported { detail: format!("no video stream in {}", format.format_name) })?;
    let audio = json.streams.iter().find(|s| s.codec_type.as_deref() == Some("audio"));
    let seconds = |s: &Option<String>| s.as_deref().and_then(|d| d.parse::<f64>().ok()).filter(|d| d.is_finite() && *d >= 0.0);
    let duration_seconds = seconds(&format.duration).or_else(|| seconds(&video.duration)).unwrap_or(0.0);
    let frame_rate = [&video.avg_frame_rate, &video.r_frame_rate].into_iter().find_map(|r| rate(r.as_deref()?)).unwrap_or(0.0);
    let frames = video
        .nb_frames
        .as_deref()
        .and_then(|n| n.parse::<u64>().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| (duration_seconds * frame_rate).ceil() as u64);
    let rotation = video
        .side_data_list
        .iter()
        .find_map(|d| d.rotation)
        .or_else(|| video.tags.get("rotate").and_then(|r| r.parse::<f64>().ok()))
        .map_or(0, |r| (r.round() as i32).rem_euclid(360));
    Ok(Probe {
        container: format.format_name,
        video_codec: video.codec_name.clone().unwrap_or_default(),
        width: video.width.unwrap_or(0),
        height: video.height.unwrap_or(0),
        rotation,
        duration_seconds,
        frames,
        frame_rate,
        audio_codec: audio.and_then(|a| a.codec_name.clone()),
    })
}

/// `30000/1001` → 29.97; `0/0` → none.
fn rate(text: &str) -> Option<f64> {
    let (n, d) = text.split_once('/')?;
    let (n, d) = (n.parse::<f64>().ok()?, d.parse::<f64>().ok()?);
    (d > 0.0 && n > 0.0).then(|| n / d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_ffprobe_prints() {
        let json = br#"{"streams":[
            {"codec_type":"video","codec_name":"h264","width":1920,"height":1080,"avg_frame_rate":"30000/1001",
             "nb_frames":"300","side_data_list":[{"rotation":-90}]},
            {"codec_type":"audio","codec_name":"aac"}],
            "format":{"format_name":"mov,mp4,m4a,3gp,3g2,mj2","duration":"10.010000"}}"#;
        let p = parse(json).unwrap();
        assert_eq!((p.width, p.height, p.rotation, p.frames), (1920, 1080, 270, 300));
        assert_eq!(p.display_size(), (1080, 1920));
        assert!((p.frame_rate - 29.97).abs() < 0.01);
        assert_eq!(p.audio_codec.as_deref(), Some("aac"));
        assert!(p.is_mp4() && !p.is_webm());
        let no_video = br#"{"streams":[{"codec_type":"audio","codec_name":"mp3"}],"format":{"format_name":"mp3"}}"#;
        assert!(matches!(parse(no_video), Err(Error::Unsupported { .. })));
        assert!(matches!(parse(b"not json"), Err(Error::Corrupt { .. })));
        assert_eq!(rate("0/0"), None);
        let limits = Limits { max_duration_seconds: 5.0, ..Limits::default() };
        assert!(matches!(p.check(&limits), Err(Error::LimitExceeded { what: LimitKind::DurationSeconds, .. })));
    }
}
