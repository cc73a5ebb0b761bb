//! Video quality and test clips for the video categories.
//!
//! A video is scored as the mean SSIMULACRA2 of [`SAMPLES`] frames spread evenly over the
//! source (all of them when it has fewer): each sampled source frame is compared with the
//! output frame shown at the same time (the last one whose timestamp is not after it), both
//! decoded by `ffmpeg` to 8-bit RGB PNGs and scored by the engine's own scorer
//! ([`measure::ssimulacra2`]). The same code scores every tool. When an output's frames have
//! another size (H.264's even sides), the source frames are scaled to it by ffmpeg first.
//!
//! The MP4 inputs are made here ([`make_clips`]): there are no videos in the corpus, so a few
//! short clips are generated deterministically with ffmpeg and encoded at a high quality, as a
//! camera original would be.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, bail};

use crate::measure::{self, Rgba};

/// Frames sampled per video.
pub const SAMPLES: usize = 10;

/// ffmpeg and ffprobe, found on the search path.
#[derive(Debug, Clone)]
pub struct Tools {
    pub ffmpeg: PathBuf,
    pub ffprobe: PathBuf,
}

impl Tools {
    pub fn find(search_path: &OsString) -> anyhow::Result<Tools> {
        let find = |p: &str| {
            crate::peers::find(p, search_path)
                .with_context(|| format!("the video categories need {p} (Debian's ffmpeg package: scripts/install-deps.sh)"))
        };
        Ok(Tools { ffmpeg: find("ffmpeg")?, ffprobe: find("ffprobe")? })
    }
}

/// The frames of a file's first video stream, as ffprobe lists its packets.
#[derive(Debug, Clone, PartialEq)]
pub struct Timeline {
    /// Presentation times in seconds, sorted, relative to the first frame.
    pub times: Vec<f64>,
    /// Seconds of video: the container's duration, else up to the end of the last frame.
    pub duration: f64,
    /// As stored.
    pub width: u32,
    pub height: u32,
}

impl Timeline {
    pub fn frames(&self) -> usize {
        self.times.len()
    }

    /// The index of the frame shown at `time` (seconds from the first frame).
    pub fn shown_at(&self, time: f64) -> usize {
        self.times.partition_point(|&t| t <= time + 5e-4).saturating_sub(1)
    }
}

/// Reads the timeline of `path` (no frame is decoded).
pub fn timeline(ffprobe: &Path, path: &Path) -> anyhow::Result<Timeline> {
    let out = Command::new(ffprobe)
        .args([
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "packet=pts_time,duration_time:stream=width,height:format=duration",
        ])
        .args(["-of", "json"])
        .arg(path)
        .stdin(Stdio::null())
        .output()
        .context("running ffprobe")?;
    if !out.status.success() {
        bail!("ffprobe {}: {}", path.display(), String::from_utf8_lossy(&out.stderr).trim());
    }
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).context("ffprobe's JSON")?;
    let number = |v: &serde_json::Value| v.as_str().and_then(|s| s.parse::<f64>().ok()).filter(|x| x.is_finite());
    let stream = json["streams"].get(0).context("no video stream")?;
    let (width, height) = (stream["width"].as_u64().unwrap_or(0) as u32, stream["height"].as_u64().unwrap_or(0) as u32);
    let mut packets: Vec<(f64, f64)> = json["packets"]
        .as_array()
        .map(|ps| ps.iter().filter_map(|p| Some((number(&p["pts_time"])?, number(&p["duration_time"]).unwrap_or(0.0)))).collect())
        .unwrap_or_default();
    if packets.is_empty() {
        bail!("{}: no video frames", path.display());
    }
    packets.sort_by(|a, b| a.0.total_cmp(&b.0));
    let first = packets[0].0;
    let last = packets[packets.len() - 1];
    let duration = number(&json["format"]["duration"]).filter(|d| *d > 0.0).unwrap_or(last.0 - first + last.1);
    Ok(Timeline { times: packets.iter().map(|p| p.0 - first).collect(), duration, width, height })
}

/// `samples` frame indices spread evenly over `frames` (the middle of each equal part).
pub fn sample_indices(frames: usize, samples: usize) -> Vec<usize> {
    let k = samples.min(frames);
    (0..k).map(|i| ((2 * i + 1) * frames / (2 * k)).min(frames - 1)).collect()
}

/// Decodes the frames at `indices` (presentation order) of `path` to RGBA (opaque: ffmpeg's
/// RGB, alpha dropped the way it is when encoding to video), optionally scaled to `size`.
pub fn frames(ffmpeg: &Path, path: &Path, indices: &[usize], size: Option<(u32, u32)>) -> anyhow::Result<Vec<Rgba>> {
    let mut unique = indices.to_vec();
    unique.sort_unstable();
    unique.dedup();
    let select = unique.iter().map(|i| format!("eq(n,{i})")).collect::<Vec<_>>().join("+");
    let mut filter = format!("select='{select}'");
    if let Some((w, h)) = size {
        filter.push_str(&format!(",scale={w}:{h}"));
    }
    let dir = tempfile::tempdir()?;
    let out = Command::new(ffmpeg)
        .args(["-nostdin", "-hide_banner", "-loglevel", "error", "-i"])
        .arg(path)
        .args(["-map", "0:v:0", "-vf", &filter, "-fps_mode", "passthrough", "-pix_fmt", "rgb24", "-c:v", "png"])
        .args(["-compression_level", "1", "-f", "image2"])
        .arg(dir.path().join("%05d.png"))
        .stdin(Stdio::null())
        .output()
        .context("running ffmpeg")?;
    if !out.status.success() {
        bail!("ffmpeg could not decode {}: {}", path.display(), String::from_utf8_lossy(&out.stderr).trim());
    }
    let mut decoded = Vec::with_capacity(unique.len());
    for n in 1..=unique.len() {
        let file = dir.path().join(format!("{n:05}.png"));
        let data = std::fs::read(&file).with_context(|| format!("{}: frame {} of {:?} not decoded", path.display(), n, unique))?;
        decoded.push(measure::decode_png(&data)?);
    }
    Ok(indices.iter().map(|i| decoded[unique.binary_search(i).expect("deduplicated from indices")].clone()).collect())
}

/// The mean SSIMULACRA2 of the sampled frames, and the worst of them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VideoScore {
    pub mean: f64,
    pub min: f64,
    pub frames: usize,
}

/// One source video, its sampled frames decoded once (per output size) to score any number of
/// outputs against.
pub struct Reference {
    ffmpeg: PathBuf,
    ffprobe: PathBuf,
    path: PathBuf,
    pub timeline: Timeline,
    indices: Vec<usize>,
    /// Sampled frames at each size asked for so far.
    decoded: Vec<((u32, u32), Vec<Rgba>)>,
}

impl Reference {
    pub fn new(tools: &Tools, path: &Path, samples: usize) -> anyhow::Result<Reference> {
        let timeline = timeline(&tools.ffprobe, path)?;
        let indices = sample_indices(timeline.frames(), samples);
        let native = frames(&tools.ffmpeg, path, &indices, None)?;
        let size = (native[0].width, native[0].height);
        Ok(Reference {
            ffmpeg: tools.ffmpeg.clone(),
            ffprobe: tools.ffprobe.clone(),
            path: path.to_path_buf(),
            timeline,
            indices,
            decoded: vec![(size, native)],
        })
    }

    /// The sampled source frames at `size`.
    fn at(&mut self, size: (u32, u32)) -> anyhow::Result<&[Rgba]> {
        if !self.decoded.iter().any(|(s, _)| *s == size) {
            let scaled = frames(&self.ffmpeg, &self.path, &self.indices, Some(size))?;
            self.decoded.push((size, scaled));
        }
        Ok(&self.decoded.iter().find(|(s, _)| *s == size).expect("decoded above").1)
    }

    /// Scores the video at `output` against this source.
    pub fn score(&mut self, output: &Path) -> anyhow::Result<VideoScore> {
        let out_timeline = timeline(&self.ffprobe, output)?;
        let shown: Vec<usize> = self.indices.iter().map(|&i| out_timeline.shown_at(self.timeline.times[i])).collect();
        let distorted = frames(&self.ffmpeg, output, &shown, None)?;
        let size = (distorted[0].width, distorted[0].height);
        let reference = self.at(size)?;
        let mut scores = Vec::with_capacity(distorted.len());
        for (n, (r, d)) in reference.iter().zip(&distorted).enumerate() {
            match measure::ssimulacra2(r, d) {
                Some(s) => scores.push(s),
                None => bail!("frame {} ({}×{}) cannot be scored (sizes differ or below 8×8)", self.indices[n], d.width, d.height),
            }
        }
        Ok(VideoScore {
            mean: scores.iter().sum::<f64>() / scores.len() as f64,
            min: scores.iter().copied().fold(f64::INFINITY, f64::min),
            frames: scores.len(),
        })
    }
}

/// A generated test clip.
#[derive(Debug, Clone)]
pub struct Clip {
    /// File name, e.g. `mandelbrot.mp4`.
    pub name: String,
    pub path: PathBuf,
    /// What it shows and how it was made, for the report.
    pub description: String,
}

/// Size, frame rate and length of the generated clips: 960×540 at 30 fps for 2 s (1 s at
/// 256×144 for a quick run).
fn clip_format(quick: bool) -> (u32, u32, u32, u32) {
    if quick { (256, 144, 30, 1) } else { (960, 540, 30, 2) }
}

/// The camera-original encode every clip gets: H.264 at CRF 12 (veryfast, 1 s GOP, 2 threads
/// for a reproducible bitstream), no audio, no metadata.
const ORIGINAL: [&str; 18] = [
    "-c:v",
    "libx264",
    "-preset",
    "veryfast",
    "-crf",
    "12",
    "-g",
    "30",
    "-threads",
    "2",
    "-pix_fmt",
    "yuv420p",
    "-an",
    "-map_metadata",
    "-1",
    "-fflags",
    "+bitexact",
    "-y",
];

/// Makes the test clips in `dir`: a pan-and-zoom over `photo` with sensor-like grain (when a
/// photo is given), ffmpeg's Mandelbrot zoom, its `testsrc2` pattern with grain, and the Game
/// of Life (screen-like flat colours and hard edges). Deterministic: fixed seeds, fixed encoder
/// threads.
pub fn make_clips(ffmpeg: &Path, dir: &Path, photo: Option<&Path>, quick: bool) -> anyhow::Result<Vec<Clip>> {
    std::fs::create_dir_all(dir)?;
    let (w, h, fps, seconds) = clip_format(quick);
    let frames = (fps * seconds).to_string();
    let size = format!("{w}x{h}");
    let mut specs: Vec<(&str, Vec<OsString>, String, String)> = Vec::new();
    if let Some(photo) = photo {
        let shown = photo.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        specs.push((
            "photo-zoom",
            vec!["-i".into(), photo.into()],
            format!(
                "crop=iw:iw*9/16,scale=3840:2160,zoompan=z='1+0.002*on':x='iw/2-(iw/zoom/2)':y='ih/2-(ih/zoom/2)':d={frames}:s={size}:fps={fps},noise=alls=5:allf=t"
            ),
            format!("a slow zoom into the corpus photo {shown} (16:9 centre crop) with temporal grain"),
        ));
    }
    // `-t` bounds the (endless) generator itself, not only the output.
    let lavfi =
        |source: String| vec![OsString::from("-f"), "lavfi".into(), "-t".into(), seconds.to_string().into(), "-i".into(), source.into()];
    specs.push((
        "mandelbrot",
        lavfi(format!("mandelbrot=size={size}:rate={fps}")),
        "null".into(),
        "ffmpeg's Mandelbrot zoom (lavfi mandelbrot): fine detail and smooth gradients".into(),
    ));
    specs.push((
        "testsrc2-grain",
        lavfi(format!("testsrc2=size={size}:rate={fps}")),
        "noise=alls=6:allf=t+u".into(),
        "ffmpeg's moving test pattern (lavfi testsrc2) with temporal grain".into(),
    ));
    specs.push((
        "life",
        lavfi(format!(
            "life=size={}x{}:rate={fps}:seed=7:ratio=0.3:mold=8:life_color=#f0e0a0:death_color=#102040:mold_color=#506080",
            w / 4,
            h / 4
        )),
        format!("scale={w}:{h}:flags=neighbor"),
        "Conway's Game of Life (lavfi life, seed 7, with mould) in 4×4-pixel cells: flat colours and hard edges, like screen content"
            .into(),
    ));
    let mut clips = Vec::new();
    for (name, input, filter, description) in specs {
        let path = dir.join(format!("{name}.mp4"));
        let out = Command::new(ffmpeg)
            .args(["-nostdin", "-hide_banner", "-loglevel", "error"])
            .args(&input)
            .args(["-vf", &filter, "-frames:v", &frames, "-r", &fps.to_string()])
            .args(ORIGINAL)
            .arg(&path)
            .stdin(Stdio::null())
            .output()
            .context("running ffmpeg")?;
        if !out.status.success() {
            bail!("making the clip {name}: {}", String::from_utf8_lossy(&out.stderr).trim());
        }
        let description = format!(
            "{description}; {w}×{h}, {fps} fps, {seconds} s, encoded as the camera original: libx264 CRF 12 veryfast, 1 s GOP, no audio"
        );
        clips.push(Clip { name: format!("{name}.mp4"), path, description });
    }
    Ok(clips)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_spread_evenly_and_never_repeat() {
        assert_eq!(sample_indices(100, 10), vec![5, 15, 25, 35, 45, 55, 65, 75, 85, 95]);
        assert_eq!(sample_indices(3, 10), vec![0, 1, 2]);
        assert_eq!(sample_indices(1, 10), vec![0]);
        let s = sample_indices(24, 10);
        assert_eq!(s.len(), 10);
        assert!(s.windows(2).all(|w| w[0] < w[1]), "{s:?}");
    }

    #[test]
    fn the_frame_shown_at_a_time_is_the_last_one_started() {
        let t = Timeline { times: vec![0.0, 0.1, 0.5, 0.6], duration: 0.7, width: 8, height: 8 };
        assert_eq!(t.shown_at(0.0), 0);
        assert_eq!(t.shown_at(0.3), 1);
        assert_eq!(t.shown_at(0.5), 2);
        assert_eq!(t.shown_at(0.4999), 2);
        assert_eq!(t.shown_at(9.0), 3);
    }
}
