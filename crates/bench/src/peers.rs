//! The peer tools: their exact command lines, finding them on the search path, and running any
//! child process (peers and our own engine worker) under `wait4` to read its CPU time and peak
//! memory.
//!
//! Linux counts a child's peak RSS from the moment it is forked, so a child of the benchmark
//! process (which grows to hundreds of MiB while scoring) would report at least the parent's
//! size. Children are therefore started by a [`Spawner`]: a small helper process (this program
//! with the hidden `--spawner` flag) that forks them and reports their `wait4` usage.

use std::ffi::OsString;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::time::Instant;

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

use crate::Category;

/// How a peer gets its input and gives its output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Io {
    /// `{in}` and `{out}` in the arguments are replaced by file paths.
    Files,
    /// Input on standard input, output on standard output.
    Pipes,
    /// `{in}` is the input file and `{out}` an empty folder the tool writes its output into
    /// under a name of its own choosing (caesiumclt, rimage): the one file found there is taken.
    Folder,
}

/// One peer tool at one setting.
#[derive(Debug, Clone)]
pub struct Peer {
    /// Short name used by `--tools` and in reports, e.g. `oxipng-o2`.
    pub id: &'static str,
    pub category: Category,
    pub program: &'static str,
    /// Arguments; `{in}` and `{out}` stand for the input and output paths.
    pub args: &'static [&'static str],
    pub io: Io,
    /// The input must first be decoded to PPM/PGM with `djpeg` (cjpeg reads no JPEG); not timed.
    pub needs_ppm: bool,
    /// Exit codes that mean "nothing better found, input kept" rather than failure
    /// (pngquant exits 99 when the minimum quality cannot be reached).
    pub keeps_input_on: &'static [i32],
}

impl Peer {
    /// The command line as a person would type it (for reports).
    pub fn command_line(&self) -> String {
        let mut parts = vec![self.program.to_string()];
        if self.needs_ppm {
            parts.insert(0, "djpeg -pnm {in} > {in}.ppm (untimed);".into());
        }
        parts.extend(self.args.iter().map(|a| a.to_string()));
        let line = parts.join(" ");
        let line = if self.needs_ppm { line.replace("-outfile {out} {in}", "-outfile {out} {in}.ppm") } else { line };
        match self.io {
            Io::Files => line,
            Io::Pipes => format!("{line} < {{in}} > {{out}}"),
            Io::Folder => format!("{line} ({{out}}: an empty folder)"),
        }
    }
}

/// Every peer, in the order they are run. The Go-style re-encoder is `go-png`, built from
/// `bench/go-png` by `scripts/install-bench-tools.sh`.
pub fn all() -> Vec<Peer> {
    use Category::*;
    let mut peers = vec![
        Peer {
            id: "oxipng-o2",
            category: LosslessPng,
            program: "oxipng",
            args: &["-o", "2", "--quiet", "--out", "{out}", "{in}"],
            io: Io::Files,
            needs_ppm: false,
            keeps_input_on: &[],
        },
        Peer {
            id: "oxipng-o4",
            category: LosslessPng,
            program: "oxipng",
            args: &["-o", "4", "--quiet", "--out", "{out}", "{in}"],
            io: Io::Files,
            needs_ppm: false,
            keeps_input_on: &[],
        },
        Peer {
            id: "optipng-o2",
            category: LosslessPng,
            program: "optipng",
            args: &["-o2", "-quiet", "-clobber", "-out", "{out}", "{in}"],
            io: Io::Files,
            needs_ppm: false,
            keeps_input_on: &[],
        },
        Peer { id: "go-png", category: LosslessPng, program: "go-png", args: &[], io: Io::Pipes, needs_ppm: false, keeps_input_on: &[] },
        Peer {
            id: "pngquant-65-80-s4",
            category: LossyPng,
            program: "pngquant",
            args: &["--quality=65-80", "--speed", "4", "-"],
            io: Io::Pipes,
            needs_ppm: false,
            keeps_input_on: &[99],
        },
        Peer {
            id: "pngquant-60-80",
            category: LossyPng,
            program: "pngquant",
            args: &["--quality=60-80", "-"],
            io: Io::Pipes,
            needs_ppm: false,
            keeps_input_on: &[99],
        },
        Peer {
            id: "jpegtran",
            category: JpegLossless,
            program: "jpegtran",
            args: &["-optimize", "-progressive", "-copy", "none", "-outfile", "{out}", "{in}"],
            io: Io::Files,
            needs_ppm: false,
            keeps_input_on: &[],
        },
        Peer {
            id: "cjpeg-q80",
            category: JpegLossy,
            program: "cjpeg",
            args: &["-quality", "80", "-outfile", "{out}", "{in}"],
            io: Io::Files,
            needs_ppm: true,
            keeps_input_on: &[],
        },
        Peer {
            id: "cwebp-q80",
            category: WebP,
            program: "cwebp",
            args: &["-quiet", "-q", "80", "{in}", "-o", "{out}"],
            io: Io::Files,
            needs_ppm: false,
            keeps_input_on: &[],
        },
        Peer {
            id: "avifenc",
            category: Avif,
            program: "avifenc",
            args: &["{in}", "{out}"],
            io: Io::Files,
            needs_ppm: false,
            keeps_input_on: &[],
        },
        // libvips' thumbnailer as people run it: shrink-on-load for JPEG, its default resampling
        // (sRGB, Lanczos3 after a box pre-shrink), then WebP at q 80 without metadata.
        Peer {
            id: "vipsthumbnail-1280",
            category: Resize1280,
            program: "vipsthumbnail",
            args: &["{in}", "--size", "1280x", "-o", "{out}[Q=80,strip]"],
            io: Io::Files,
            needs_ppm: false,
            keeps_input_on: &[],
        },
        Peer {
            id: "vipsthumbnail-cover-300",
            category: ResizeCover300,
            program: "vipsthumbnail",
            args: &["{in}", "--size", "300x300", "--smartcrop", "centre", "-o", "{out}[Q=80,strip]"],
            io: Io::Files,
            needs_ppm: false,
            keeps_input_on: &[],
        },
        // Animated GIFs: gifsicle's strongest lossless optimisation (the GIF stays a GIF).
        Peer {
            id: "gifsicle-o3",
            category: GifMp4,
            program: "gifsicle",
            args: &["-O3", "{in}", "-o", "{out}"],
            io: Io::Files,
            needs_ppm: false,
            keeps_input_on: &[],
        },
        // ffmpeg as people run it: its default H.264 settings, spelled out (the audio, if any,
        // gets ffmpeg's default AAC), and SVT-AV1 with all its defaults into WebM.
        Peer {
            id: "ffmpeg-x264-crf23",
            category: VideoMp4,
            program: "ffmpeg",
            args: &[
                "-nostdin",
                "-hide_banner",
                "-loglevel",
                "error",
                "-i",
                "{in}",
                "-c:v",
                "libx264",
                "-crf",
                "23",
                "-preset",
                "medium",
                "-y",
                "{out}",
            ],
            io: Io::Files,
            needs_ppm: false,
            keeps_input_on: &[],
        },
        Peer {
            id: "ffmpeg-svtav1",
            category: VideoWebM,
            program: "ffmpeg",
            args: &["-nostdin", "-hide_banner", "-loglevel", "error", "-i", "{in}", "-c:v", "libsvtav1", "-y", "{out}"],
            io: Io::Files,
            needs_ppm: false,
            keeps_input_on: &[],
        },
    ];
    // The service workload's peers are the old server's two routes as it ran them (pngquant
    // --quality=60-80 as a subprocess with default speed and threads, Go's image/png at
    // BestCompression) and oxipng -o 2: the same commands as above, in the service categories.
    for (id, category) in [("pngquant-60-80", ServiceLossy), ("go-png", ServiceLossless), ("oxipng-o2", ServiceLossless)] {
        let peer = peers.iter().find(|p| p.id == id).expect("defined above").clone();
        peers.push(Peer { category, ..peer });
    }
    peers
}

/// The quality ladder of the rate–distortion categories: 8 points from 30 to 95, which hold the
/// documented default of every tool swept (sharp 80 and AVIF 50, cwebp and cjpeg 75 lie between
/// their neighbours and are run as their own default points).
pub const LADDER: [u8; 8] = [30, 50, 60, 70, 80, 85, 90, 95];

/// The peers of the rate–distortion categories: each run at every step of [`LADDER`]. In the
/// arguments `{q}` is the step's quality and `{avif-q}` the AV1 quantizer avifenc 0.11 takes
/// for it (libavif 1.x's own mapping of quality to quantizer, so the ladder means the same);
/// `{to}` is the category's format, or `original` for an input already in it. sharp is not here: it runs in one long-lived node process ([`Sharp`]).
pub fn rd_peers() -> Vec<Peer> {
    use Category::*;
    let mut peers = vec![
        // pngquant never gives up (minimum 0), as our sweep runs with `quality=0-N`.
        Peer {
            id: "pngquant",
            category: RdPng,
            program: "pngquant",
            args: &["--quality=0-{q}", "-"],
            io: Io::Pipes,
            needs_ppm: false,
            keeps_input_on: &[99],
        },
        Peer {
            id: "cjpeg",
            category: RdJpeg,
            program: "cjpeg",
            args: &["-quality", "{q}", "-outfile", "{out}", "{in}"],
            io: Io::Files,
            needs_ppm: true,
            keeps_input_on: &[],
        },
        Peer {
            id: "cwebp",
            category: RdWebP,
            program: "cwebp",
            args: &["-quiet", "-q", "{q}", "{in}", "-o", "{out}"],
            io: Io::Files,
            needs_ppm: false,
            keeps_input_on: &[],
        },
        Peer {
            id: "avifenc",
            category: RdAvif,
            program: "avifenc",
            args: &["--min", "{avif-q}", "--max", "{avif-q}", "{in}", "{out}"],
            io: Io::Files,
            needs_ppm: false,
            keeps_input_on: &[],
        },
    ];
    let in_a_folder =
        |id, category, program, args| Peer { id, category, program, args, io: Io::Folder, needs_ppm: false, keeps_input_on: &[] };
    // caesiumclt as its README shows it: `-q N -o FOLDER`, metadata not kept (no `-e`; the
    // JPEG's ICC profile is kept, as caesiumclt does unless `--strip-icc`, which would drop
    // it without converting the pixels). Lossy PNG is libimagequant at quality 0-N written
    // by lodepng; JPEG is mozjpeg and WebP libwebp, both after caesiumclt's own conversion
    // when the input is in another format. No AVIF.
    peers.extend([RdPng, RdJpeg, RdWebP].map(|category| in_a_folder(CAESIUMCLT, category, "caesiumclt", CAESIUMCLT_ARGS)));
    // rimage: one subcommand per codec, `-x` strips metadata, `-d FOLDER` the output. Lossy
    // PNG is its `--quantization N` (libimagequant at quality 0-N, no dithering) then oxipng
    // at its default effort, as the issue measured it.
    let rimage: [(Category, &'static [&'static str]); 4] = [
        (RdPng, &["oxipng", "--quantization={q}", "-x", "--quiet", "--no-progress", "-d", "{out}", "{in}"]),
        (RdJpeg, &["mozjpeg", "-q", "{q}", "-x", "--quiet", "--no-progress", "-d", "{out}", "{in}"]),
        (RdWebP, &["webp", "-q", "{q}", "-x", "--quiet", "--no-progress", "-d", "{out}", "{in}"]),
        (RdAvif, &["avif", "-q", "{q}", "-x", "--quiet", "--no-progress", "-d", "{out}", "{in}"]),
    ];
    peers.extend(rimage.map(|(category, args)| in_a_folder(RIMAGE, category, "rimage", args)));
    peers
}

/// caesiumclt's arguments in every format: `{to}` is the category's format, or `original` when
/// the input already is in it (caesiumclt refuses to "convert" a file to its own format).
const CAESIUMCLT_ARGS: &[&str] = &["-q", "{q}", "--format", "{to}", "-Q", "-o", "{out}", "{in}"];

/// The method names of the crates.io peers of the rate–distortion categories.
pub const CAESIUMCLT: &str = "caesiumclt";
pub const RIMAGE: &str = "rimage";

/// Whether an installed peer must first pass a trial encode (of a tiny PNG) to be run: rimage's
/// codecs are cargo features, and a build without one still lists its subcommand (`rimage avif`
/// without the `avif` feature, whose dav1d must be at least 1.3, fails every encode); the trial
/// also checks that caesiumclt takes the arguments as written here.
pub fn needs_trial(peer: &Peer) -> bool {
    peer.io == Io::Folder
}

/// The setting a tool runs at when told nothing (its "default point" in the rate–distortion
/// categories); sharp's are the defaults of its `png({palette: true})`, `jpeg`, `webp`, `avif`
/// calls but for PNG, where 80 is what the issue measured (sharp's own 100 keeps 256 colours).
pub fn default_quality(id: &str, category: Category) -> Option<u8> {
    use Category::*;
    match (id, category) {
        (SHARP, RdPng | RdJpeg | RdWebP) => Some(80),
        (SHARP, RdAvif) => Some(50),
        // pngquant without --quality aims at 100; avifenc 0.11's default quantizers 0-10 are
        // about quality 90 on libavif 1.x's scale.
        ("pngquant", _) => Some(100),
        ("cjpeg" | "cwebp", _) => Some(75),
        ("avifenc", _) => Some(90),
        // caesiumclt requires a quality; 80 is what it falls back to and its GUI's default.
        (CAESIUMCLT, _) => Some(80),
        // rimage's `--quantization` without a value, `mozjpeg`/`webp -q` and `avif -q` unset.
        (RIMAGE, RdAvif) => Some(50),
        (RIMAGE, _) => Some(75),
        _ => None,
    }
}

/// The AV1 quantizer (0-63) libavif 1.x maps `quality` (0-100) to.
pub fn avif_quantizer(quality: u8) -> u8 {
    ((u32::from(100 - quality.min(100)) * 63 + 50) / 100) as u8
}

/// The method name of sharp in the rate–distortion categories.
pub const SHARP: &str = "sharp";

/// sharp as one long-running node process (`bench/sharp/encode.js`) that encodes every job sent
/// to it and reports each job's CPU time (`process.cpuUsage()` deltas, every thread of the
/// process) and wall time: node's start-up is paid once, not per image.
pub struct Sharp {
    child: Child,
    input: Option<ChildStdin>,
    output: BufReader<ChildStdout>,
    /// sharp's and libvips' versions, as the script reported them.
    pub versions: String,
}

/// One job for [`Sharp`].
#[derive(Debug, Serialize)]
pub struct SharpJob<'a> {
    pub input: &'a Path,
    pub output: &'a Path,
    /// `png-palette`, `jpeg` (mozjpeg), `webp` or `avif`.
    pub format: &'a str,
    pub quality: u8,
    /// Apply the EXIF orientation (`.rotate()`), as image services calling sharp do; sharp
    /// does not unless asked.
    pub orient: bool,
}

#[derive(Debug, Deserialize)]
struct SharpAnswer {
    bytes: Option<u64>,
    cpu_s: Option<f64>,
    wall_s: Option<f64>,
    error: Option<String>,
    ready: Option<bool>,
    sharp: Option<String>,
    libvips: Option<String>,
}

impl Sharp {
    /// Starts `node script`; fails (with why) when node or the installed sharp module is missing.
    pub fn start(node: &Path, script: &Path) -> anyhow::Result<Self> {
        let mut child = Command::new(node)
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("start {} {}", node.display(), script.display()))?;
        let input = child.stdin.take().context("sharp stdin")?;
        let mut output = BufReader::new(child.stdout.take().context("sharp stdout")?);
        let mut line = String::new();
        output.read_line(&mut line)?;
        let ready: Option<SharpAnswer> = serde_json::from_str(&line).ok();
        match ready {
            Some(SharpAnswer { ready: Some(true), sharp, libvips, .. }) => Ok(Sharp {
                child,
                input: Some(input),
                output,
                versions: format!("sharp {}, libvips {}", sharp.unwrap_or_default(), libvips.unwrap_or_default()),
            }),
            _ => {
                drop(input);
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    use std::io::Read;
                    e.read_to_string(&mut err).ok();
                }
                child.wait().ok();
                let first = err.lines().find(|l| l.contains("Error")).unwrap_or(err.lines().next().unwrap_or("no answer"));
                bail!("{} did not start: {first}", script.display())
            }
        }
    }

    /// Encodes one job; `Ok(Err(why))` when sharp refused it.
    pub fn encode(&mut self, job: &SharpJob) -> anyhow::Result<Result<Usage, String>> {
        let input = self.input.as_mut().context("sharp closed")?;
        writeln!(input, "{}", serde_json::to_string(job)?)?;
        input.flush()?;
        let mut line = String::new();
        if self.output.read_line(&mut line)? == 0 {
            bail!("the sharp process exited");
        }
        let answer: SharpAnswer = serde_json::from_str(&line).context("sharp answer")?;
        Ok(match (answer.error, answer.bytes, answer.cpu_s, answer.wall_s) {
            (None, Some(_), Some(cpu_s), Some(wall_s)) => Ok(Usage { wall_s, cpu_s, maxrss_kib: 0 }),
            (e, ..) => Err(e.unwrap_or_else(|| "no answer".into())),
        })
    }
}

impl Drop for Sharp {
    fn drop(&mut self) {
        drop(self.input.take());
        self.child.wait().ok();
    }
}

/// Finds `program` in `search_path` (a PATH-style list), like `which`.
pub fn find(program: &str, search_path: &OsString) -> Option<PathBuf> {
    if program.contains('/') {
        let p = PathBuf::from(program);
        return is_executable(&p).then_some(p);
    }
    std::env::split_paths(search_path).map(|dir| dir.join(program)).find(|p| is_executable(p))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// What one child process cost.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct Usage {
    pub wall_s: f64,
    /// User plus system CPU time of the child (and any threads it ran).
    pub cpu_s: f64,
    /// Peak resident set size of the child, KiB.
    pub maxrss_kib: u64,
}

/// How a child ended.
#[derive(Debug)]
pub struct Finished {
    pub status: ExitStatus,
    pub usage: Usage,
    pub stderr: String,
}

/// Runs `program args…` with optional stdin/stdout files, waits with `wait4` and returns its
/// exit status and resource usage. Wall time spans spawn to reap.
pub fn run_measured(program: &Path, args: &[OsString], stdin: Option<&Path>, stdout: Option<&Path>) -> anyhow::Result<Finished> {
    let mut cmd = Command::new(program);
    cmd.args(args);
    cmd.stdin(match stdin {
        Some(p) => Stdio::from(File::open(p).with_context(|| format!("open {}", p.display()))?),
        None => Stdio::null(),
    });
    cmd.stdout(match stdout {
        Some(p) => Stdio::from(File::create(p).with_context(|| format!("create {}", p.display()))?),
        None => Stdio::null(),
    });
    let stderr_file = tempfile::tempfile()?;
    cmd.stderr(Stdio::from(stderr_file.try_clone()?));
    let start = Instant::now();
    let child = cmd.spawn().with_context(|| format!("spawn {}", program.display()))?;
    let pid = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain old data; wait4 fills it for the child we just spawned.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let reaped = loop {
        // SAFETY: valid pointers to locals; pid is our own child, reaped only here.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
        if r == -1 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
            continue;
        }
        break r;
    };
    let wall_s = start.elapsed().as_secs_f64();
    // The child is reaped by wait4: `child` must not wait again; dropping it does not.
    drop(child);
    if reaped != pid {
        bail!("wait4 on {}: {}", program.display(), std::io::Error::last_os_error());
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    let usage = Usage { wall_s, cpu_s: tv(ru.ru_utime) + tv(ru.ru_stime), maxrss_kib: ru.ru_maxrss.max(0) as u64 };
    let mut stderr = String::new();
    {
        use std::io::{Read, Seek};
        let mut f = stderr_file;
        f.seek(std::io::SeekFrom::Start(0))?;
        f.take(4096).read_to_string(&mut stderr).ok();
    }
    Ok(Finished { status: ExitStatus::from_raw(status), usage, stderr: stderr.trim().to_string() })
}

/// One command for the spawner (one JSON line on its standard input).
#[derive(Debug, Serialize, Deserialize)]
struct Request {
    program: PathBuf,
    args: Vec<PathBuf>,
    stdin: Option<PathBuf>,
    stdout: Option<PathBuf>,
}

/// The spawner's answer (one JSON line on its standard output).
#[derive(Debug, Serialize, Deserialize)]
struct Response {
    /// Raw wait status, as `wait4` gave it.
    status: i32,
    usage: Usage,
    stderr: String,
    error: Option<String>,
}

/// A small helper process that starts measured children on the benchmark's behalf.
pub struct Spawner {
    child: Child,
    /// `None` only while dropping.
    input: Option<ChildStdin>,
    output: BufReader<ChildStdout>,
}

impl Spawner {
    /// Starts `program prefix… --spawner`.
    pub fn start(program: &Path, prefix: &[OsString]) -> anyhow::Result<Self> {
        let mut child = Command::new(program)
            .args(prefix)
            .arg("--spawner")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .with_context(|| format!("start the spawner {}", program.display()))?;
        let input = child.stdin.take().context("spawner stdin")?;
        let output = BufReader::new(child.stdout.take().context("spawner stdout")?);
        Ok(Spawner { child, input: Some(input), output })
    }

    /// [`run_measured`], in the spawner.
    pub fn run(&mut self, program: &Path, args: &[OsString], stdin: Option<&Path>, stdout: Option<&Path>) -> anyhow::Result<Finished> {
        let request = Request {
            program: program.to_path_buf(),
            args: args.iter().map(PathBuf::from).collect(),
            stdin: stdin.map(Path::to_path_buf),
            stdout: stdout.map(Path::to_path_buf),
        };
        let input = self.input.as_mut().context("spawner closed")?;
        writeln!(input, "{}", serde_json::to_string(&request)?)?;
        input.flush()?;
        let mut line = String::new();
        if self.output.read_line(&mut line)? == 0 {
            bail!("the spawner exited");
        }
        let response: Response = serde_json::from_str(&line).context("spawner answer")?;
        if let Some(e) = response.error {
            bail!("{e}");
        }
        Ok(Finished { status: ExitStatus::from_raw(response.status), usage: response.usage, stderr: response.stderr })
    }
}

impl Drop for Spawner {
    fn drop(&mut self) {
        // Closing its input ends the spawner's loop.
        drop(self.input.take());
        self.child.wait().ok();
    }
}

/// The spawner's loop: one request per input line, one response per output line, until EOF.
pub fn serve_spawner() -> anyhow::Result<()> {
    let stdin = std::io::stdin().lock();
    let mut stdout = std::io::stdout().lock();
    for line in stdin.lines() {
        let request: Request = serde_json::from_str(&line?).context("spawner request")?;
        let args: Vec<OsString> = request.args.into_iter().map(PathBuf::into_os_string).collect();
        let response = match run_measured(&request.program, &args, request.stdin.as_deref(), request.stdout.as_deref()) {
            Ok(f) => Response { status: f.status.into_raw(), usage: f.usage, stderr: f.stderr, error: None },
            Err(e) => Response { status: -1, usage: Usage::default(), stderr: String::new(), error: Some(format!("{e:#}")) },
        };
        writeln!(stdout, "{}", serde_json::to_string(&response)?)?;
        stdout.flush()?;
    }
    Ok(())
}
