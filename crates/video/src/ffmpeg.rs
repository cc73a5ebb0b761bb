//! Every ffmpeg and ffprobe command line of the crate, and the one way they are run.
//!
//! Command lines: [`Command`]'s constructors ([`Command::probe`], [`Command::encode`],
//! [`Command::cut`], [`Command::decode_rgb`]) are the only places arguments are written; each
//! ffmpeg one starts with the same guards (`-nostdin`, local files only, errors only).
//!
//! Running ([`run`], and [`Budget`] for a call's shared deadline): never through a shell, stdin
//! closed, `RLIMIT_AS`/`RLIMIT_CPU` (no core dumps), a wall-clock deadline, and the child's whole
//! process group killed when the deadline passes, the caller cancels, or the run is dropped
//! (an error or a panic). Standard error is read as it comes, line by line, as [`Message`]
//! events: memory stays bounded however much a hostile input makes ffmpeg print (the last
//! [`STDERR_TAIL`] bytes are kept, as ab-av1 keeps them, and a line is cut at [`MAX_LINE`]).
//! Standard output (ffprobe's JSON) is read up to [`MAX_STDOUT`].
//!
//! A child that fails gives an error carrying its command line and the tail of its standard error
//! ([`ChildLog`], from [`crate::Error::log`]).

use std::ffi::{OsStr, OsString};
use std::io::Read as _;
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Child, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::VideoFormat;
use crate::error::Error;

/// The engine's switch: set by a caller that no longer wants the result (a client that went
/// away, Ctrl-C); the running child is killed within about 10 ms and the call returns
/// [`Error::Cancelled`].
pub use compressor_engine::Cancel;

/// The last bytes of a child's standard error kept for its error (ab-av1 keeps 32 KB).
pub(crate) const STDERR_TAIL: usize = 32 * 1024;
/// A longer line of standard error is cut there (the rest of it is skipped, not buffered).
pub(crate) const MAX_LINE: usize = 4096;
/// The most of standard output read (ffprobe's JSON of one file is a few KB).
pub(crate) const MAX_STDOUT: usize = 16 << 20;

/// The arguments every ffmpeg run starts with: no reading of our stdin, only local files as
/// input and output, errors only on stderr.
const FFMPEG_GUARDS: [&str; 6] = ["-nostdin", "-hide_banner", "-loglevel", "error", "-protocol_whitelist", "file"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Program {
    Ffmpeg,
    Ffprobe,
}

impl Program {
    pub fn name(self) -> &'static str {
        match self {
            Program::Ffmpeg => "ffmpeg",
            Program::Ffprobe => "ffprobe",
        }
    }
}

/// One command line.
#[derive(Debug, Clone)]
pub(crate) struct Command {
    pub program: Program,
    pub args: Vec<OsString>,
}

impl Command {
    /// ffmpeg with the guards, `before` (input options), and `-i input`.
    fn ffmpeg(before: &[&str], input: &Path) -> Command {
        let mut command = Command { program: Program::Ffmpeg, args: Vec::new() };
        command.push(&FFMPEG_GUARDS).push(before).push(&["-i"]).push_os(input.as_os_str());
        command
    }

    fn push(&mut self, args: &[&str]) -> &mut Command {
        self.args.extend(args.iter().map(OsString::from));
        self
    }

    fn push_os(&mut self, arg: &OsStr) -> &mut Command {
        self.args.push(arg.to_owned());
        self
    }

    /// ffprobe's JSON of the container and streams of `input`.
    pub fn probe(input: &Path) -> Command {
        let mut command = Command { program: Program::Ffprobe, args: Vec::new() };
        command.push(&["-v", "error", "-protocol_whitelist", "file", "-print_format", "json", "-show_format", "-show_streams", "-i"]);
        command.push_os(input.as_os_str()).push(&["-hide_banner"]);
        command
    }

    /// The encode of `input` to `output` in `format` at `crf`, and the method name for the report
    /// (target-quality samples are encoded with the same, without audio).
    pub fn encode(input: &Path, output: &Path, format: VideoFormat, crf: u32, audio: bool, gif: bool) -> (Command, String) {
        let mut command = Command::ffmpeg(&[], input);
        // The first video stream (rotation applied by ffmpeg), the first audio stream if kept; frames
        // keep their own timestamps (variable frame rate and GIF delays survive).
        command.push(&["-map", "0:v:0", "-fps_mode", "vfr", "-map_metadata", "-1", "-pix_fmt", "yuv420p"]);
        command.push(gif_time_base(gif));
        let crf_text = crf.to_string();
        let method = match format {
            VideoFormat::WebM => {
                command.push(&[
                    "-c:v",
                    "libvpx-vp9",
                    "-crf",
                    &crf_text,
                    "-b:v",
                    "0",
                    "-row-mt",
                    "1",
                    "-deadline",
                    "good",
                    "-cpu-used",
                    "2",
                ]);
                format!("vp9-crf{crf}")
            }
            _ => {
                // As `even_for`: a 1-pixel side becomes 2 (rounding it down would leave none).
                command.push(&["-vf", r"scale=max(2\,trunc(iw/2)*2):max(2\,trunc(ih/2)*2)"]);
                command.push(&["-c:v", "libx264", "-preset", "medium", "-crf", &crf_text, "-movflags", "+faststart"]);
                format!("h264-crf{crf}")
            }
        };
        match (audio, format) {
            (true, VideoFormat::WebM) => command.push(&["-map", "0:a:0", "-c:a", "libopus", "-b:a", "96k"]),
            (true, _) => command.push(&["-map", "0:a:0", "-c:a", "aac", "-b:a", "128k"]),
            (false, _) => command.push(&["-an"]),
        };
        command.push(&["-f", if format == VideoFormat::WebM { "webm" } else { "mp4" }, "-y"]).push_os(output.as_os_str());
        (command, method)
    }

    /// `seconds` of the first video stream of `input` from `start`, into lossless FFV1 (frames as
    /// decoded, rotation applied, timestamps kept).
    pub fn cut(input: &Path, output: &Path, start: f64, seconds: f64, gif: bool) -> Command {
        let mut command = Command::ffmpeg(&["-ss", &format!("{start:.3}")], input);
        command.push(&["-t", &seconds.to_string(), "-map", "0:v:0", "-fps_mode", "vfr", "-map_metadata", "-1", "-an", "-sn", "-dn"]);
        command.push(gif_time_base(gif)).push(&["-c:v", "ffv1", "-f", "matroska", "-y"]).push_os(output.as_os_str());
        command
    }

    /// Every `every`-th frame (at most `limit`) of `input`, decoded to rgb24 at `width`×`height`:
    /// the same frames of a sample and of its encodes (frames keep their order and count: the
    /// encode keeps every frame, and nothing is dropped or repeated here).
    pub fn decode_rgb(input: &Path, output: &Path, (width, height): (u32, u32), every: u64, limit: u64) -> Command {
        // Full chroma interpolation (not swscale's fast nearest-neighbour 4:2:0 to RGB), as a
        // player would show it.
        let scale = format!("scale={width}:{height}:flags=bicubic+accurate_rnd+full_chroma_int");
        let filter = if every > 1 { format!("select=eq(mod(n\\,{every})\\,{}),{scale}", every / 2) } else { scale };
        let mut command = Command::ffmpeg(&[], input);
        command.push(&["-map", "0:v:0", "-vf", &filter, "-fps_mode", "passthrough", "-frames:v", &limit.to_string()]);
        command.push(&["-pix_fmt", "rgb24", "-f", "rawvideo", "-y"]).push_os(output.as_os_str());
        command
    }

    /// The command line as a shell would take it (for messages only: it is never run so).
    pub fn display(&self) -> String {
        let quote = |arg: &OsStr| {
            let arg = arg.to_string_lossy();
            if !arg.is_empty() && arg.chars().all(|c| c.is_ascii_alphanumeric() || "-_./:=+,@%".contains(c)) {
                arg.into_owned()
            } else {
                format!("'{}'", arg.replace('\'', r"'\''"))
            }
        };
        std::iter::once(self.program.name().to_owned()).chain(self.args.iter().map(|a| quote(a))).collect::<Vec<_>>().join(" ")
    }
}

/// GIF delays are in hundredths of a second. Without this the encoder's time base is ffmpeg's
/// guess from the average rate, and `-fps_mode vfr` drops every frame that lands on the same tick
/// of it (`rich__table_movie.gif`: 84 frames became 56).
fn gif_time_base(gif: bool) -> &'static [&'static str] {
    if gif { &["-enc_time_base:v", "1:100"] } else { &[] }
}

/// A child that failed: what was run, how it ended, and the last of what it printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildLog {
    /// The command line, quoted as a shell would take it (it was run without one).
    pub command: String,
    /// `exit status: 1`, `signal: 9 (SIGKILL)`.
    pub status: String,
    /// The last [`STDERR_TAIL`] bytes (at most) of its standard error, whole lines.
    pub stderr: String,
}

impl std::fmt::Display for ChildLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.command, self.status)?;
        if !self.stderr.is_empty() {
            write!(f, "; its standard error ends:\n{}", self.stderr)?;
        }
        Ok(())
    }
}

/// One line a child printed on standard error, e.g. `[aac @ 0x55d0c8] Unsupported channel layout`:
/// `from` is the component in brackets (`aac`), if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Message<'a> {
    pub from: Option<&'a str>,
    pub text: &'a str,
}

impl<'a> Message<'a> {
    fn parse(line: &'a str) -> Message<'a> {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix('[')
            && let Some((component, text)) = rest.split_once("] ")
        {
            let from = component.split_once(" @ ").map_or(component, |c| c.0);
            return Message { from: Some(from), text: text.trim() };
        }
        Message { from: None, text: line }
    }

    /// The output side failed (an encoder that would not open or take the frames, a muxer, the
    /// output file), or memory ran out: the transcode failed on an input that was read.
    fn is_output_side(&self) -> bool {
        let text = self.text.to_ascii_lowercase();
        ["encoder", "output stream", "output file", "write header", "writing trailer", "cannot allocate memory"]
            .iter()
            .any(|p| text.contains(p))
    }

    /// The disk (or quota) the child writes to is full (strerror of ENOSPC and EDQUOT).
    fn is_no_space(&self) -> bool {
        let text = self.text.to_ascii_lowercase();
        text.contains("no space left on device") || text.contains("disk quota exceeded")
    }
}

/// What a child's standard error said, kept bounded: its tail, its last message, and whether any
/// message blamed the output side.
#[derive(Debug, Default)]
pub(crate) struct Stderr {
    tail: std::collections::VecDeque<u8>,
    last: Option<String>,
    output_side: bool,
    /// The first message that said the disk is full.
    no_space: Option<String>,
    /// The line being read (at most [`MAX_LINE`] bytes of it).
    line: Vec<u8>,
}

impl Stderr {
    /// Takes the next bytes read: whole lines (ended by `\n` or `\r`) become events.
    fn feed(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if b == b'\n' || b == b'\r' {
                self.end_line();
            } else if self.line.len() < MAX_LINE {
                self.line.push(b);
            }
        }
    }

    fn end_line(&mut self) {
        if self.line.iter().all(u8::is_ascii_whitespace) {
            self.line.clear();
            return;
        }
        let line = String::from_utf8_lossy(&self.line).into_owned();
        self.line.clear();
        self.event(Message::parse(&line));
        self.tail.extend(line.as_bytes());
        self.tail.push_back(b'\n');
        if self.tail.len() > STDERR_TAIL {
            self.tail.drain(..self.tail.len() - STDERR_TAIL);
        }
    }

    fn event(&mut self, message: Message<'_>) {
        self.output_side |= message.is_output_side();
        if self.no_space.is_none() && message.is_no_space() {
            self.no_space = Some(message.text.chars().take(300).collect());
        }
        self.last = Some(message.text.chars().take(300).collect());
    }

    fn finish(mut self) -> Stderr {
        self.end_line();
        self
    }

    /// The tail, from its first whole line.
    fn tail_text(&self) -> String {
        let (a, b) = self.tail.as_slices();
        let bytes = [a, b].concat();
        let start = if self.tail.len() == STDERR_TAIL { bytes.iter().position(|&b| b == b'\n').map_or(0, |i| i + 1) } else { 0 };
        String::from_utf8_lossy(&bytes[start..]).trim_end().to_owned()
    }
}

/// How much one child may use, and the switch that stops it early.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Bounds {
    /// Wall-clock time before the child is killed.
    pub timeout: Duration,
    /// Address space of the child (`RLIMIT_AS`), in bytes.
    pub memory_bytes: u64,
    pub cancel: Cancel,
}

/// A child that ran to its end (successfully or not).
pub(crate) struct Finished {
    pub command: Command,
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    stderr: Stderr,
}

impl Finished {
    fn log(&self) -> Box<ChildLog> {
        Box::new(ChildLog { command: self.command.display(), status: self.status.to_string(), stderr: self.stderr.tail_text() })
    }

    /// `Ok` when it succeeded; else the error it stands for. ffprobe failing: the file could not
    /// be read (`Corrupt`). ffmpeg stopped by a signal (its CPU or memory limit), or failing on
    /// the output side (an encoder, a muxer, memory): `Failed`; any other ffmpeg failure is the
    /// input's (`Corrupt`).
    pub fn check(self) -> Result<Finished, Error> {
        use std::os::unix::process::ExitStatusExt as _;
        if self.status.success() {
            return Ok(self);
        }
        let name = self.command.program.name();
        let last = || self.stderr.last.clone().unwrap_or_else(|| format!("{name} failed ({})", self.status));
        Err(match (self.command.program, self.status.signal()) {
            (Program::Ffprobe, _) => {
                let detail = self.stderr.last.clone().unwrap_or_else(|| "ffprobe could not read the file".into());
                Error::Corrupt { detail, log: Some(self.log()) }
            }
            (Program::Ffmpeg, Some(signal)) => {
                Error::Failed { detail: format!("ffmpeg was stopped by signal {signal} (CPU or memory limit)"), log: Some(self.log()) }
            }
            (Program::Ffmpeg, None) if let Some(said) = &self.stderr.no_space => {
                Error::NoSpace { detail: said.clone(), log: Some(self.log()) }
            }
            (Program::Ffmpeg, None) if self.stderr.output_side => Error::Failed { detail: last(), log: Some(self.log()) },
            (Program::Ffmpeg, None) => Error::Corrupt { detail: last(), log: Some(self.log()) },
        })
    }
}

/// Kills the child's process group unless it was reaped: on a timeout, an error, or a panic.
struct Reaper(Option<Child>);

impl Drop for Reaper {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            // SAFETY: the child leads its own process group (set before exec); a negative pid
            // signals the group. Nothing else can reuse the id before we reap it below.
            unsafe { libc::kill(-(child.id() as libc::pid_t), libc::SIGKILL) };
            let _ = child.wait();
        }
    }
}

/// Runs `command` under `bounds`, reading its standard error (and output) as it comes, so a
/// chatty child never blocks on a full pipe and never costs more than a bounded amount of memory.
pub(crate) fn run(command: Command, bounds: &Bounds) -> Result<Finished, Error> {
    if bounds.cancel.is_cancelled() {
        return Err(Error::Cancelled);
    }
    let program = command.program.name();
    let cpu_seconds = bounds.timeout.as_secs().saturating_mul(available_cpus()).saturating_add(5);
    let memory = bounds.memory_bytes;
    let mut child = std::process::Command::new(program);
    let stdout = if command.program == Program::Ffprobe { Stdio::piped() } else { Stdio::null() };
    child.args(&command.args).stdin(Stdio::null()).stdout(stdout).stderr(Stdio::piped());
    // SAFETY: only async-signal-safe calls (setpgid, prctl, setrlimit) between fork and exec.
    unsafe {
        child.pre_exec(move || {
            // Its own group, so a kill reaches whatever it starts; and killed if we die (Ctrl-C
            // reaches only our group, and a crash runs no destructor). This thread waits for the
            // child, so it cannot exit first.
            libc::setpgid(0, 0);
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            let limit = |resource, value: u64| {
                let rlim = libc::rlimit { rlim_cur: value as libc::rlim_t, rlim_max: value as libc::rlim_t };
                if libc::setrlimit(resource, &rlim) != 0 { Err(std::io::Error::last_os_error()) } else { Ok(()) }
            };
            limit(libc::RLIMIT_AS, memory)?;
            limit(libc::RLIMIT_CPU, cpu_seconds)?;
            limit(libc::RLIMIT_CORE, 0)
        });
    }
    let mut child = child.spawn().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::ToolMissing { program: program.to_owned() },
        _ => Error::Io(e),
    })?;
    let (out_pipe, err_pipe) = (child.stdout.take(), child.stderr.take());
    let mut reaper = Reaper(Some(child));
    std::thread::scope(|scope| {
        // The readers end when the pipes close: when the child exits or its group is killed
        // (the reaper does that before this scope waits for them).
        let stderr = scope.spawn(move || {
            let mut stderr = Stderr::default();
            if let Some(mut pipe) = err_pipe {
                let mut buffer = [0u8; 8192];
                while let Ok(n @ 1..) = pipe.read(&mut buffer) {
                    stderr.feed(&buffer[..n]);
                }
            }
            stderr.finish()
        });
        let stdout = scope.spawn(move || {
            let mut stdout = Vec::new();
            if let Some(pipe) = out_pipe {
                let mut limited = pipe.take(MAX_STDOUT as u64 + 1);
                let _ = limited.read_to_end(&mut stdout);
                // Past the limit: drained, not kept.
                let _ = std::io::copy(&mut limited.into_inner(), &mut std::io::sink());
            }
            stdout
        });
        let deadline = Instant::now() + bounds.timeout;
        let status = loop {
            let child = reaper.0.as_mut().expect("not reaped yet");
            if let Some(status) = child.try_wait()? {
                reaper.0.take(); // reaped: nothing to kill
                break status;
            }
            if Instant::now() >= deadline {
                drop(reaper); // kills the group
                return Err(Error::Timeout { program: program.to_owned(), seconds: bounds.timeout.as_secs_f64() });
            }
            if bounds.cancel.is_cancelled() {
                drop(reaper);
                return Err(Error::Cancelled);
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let stderr = stderr.join().expect("the stderr reader does not panic");
        let stdout = stdout.join().expect("the stdout reader does not panic");
        if stdout.len() > MAX_STDOUT {
            return Err(Error::corrupt(format!("{program} printed more than {MAX_STDOUT} bytes")));
        }
        Ok(Finished { command, status, stdout, stderr })
    })
}

fn available_cpus() -> u64 {
    std::thread::available_parallelism().map_or(1, |n| n.get() as u64)
}

/// One deadline for a whole call (a target-quality search and the final encode share it): each
/// child gets what is left of it.
pub(crate) struct Budget {
    deadline: Instant,
    timeout: Duration,
    memory_bytes: u64,
    cancel: Cancel,
}

impl Budget {
    pub fn new(timeout: Duration, memory_bytes: u64, cancel: Cancel) -> Self {
        Budget { deadline: Instant::now() + timeout, timeout, memory_bytes, cancel }
    }

    /// `Cancelled` or `Timeout` (naming `what`) when the work should stop now; for steps done in
    /// this process (scoring), between frames.
    pub fn check(&self, what: &str) -> Result<(), Error> {
        if self.cancel.is_cancelled() {
            return Err(Error::Cancelled);
        }
        if Instant::now() >= self.deadline {
            return Err(Error::Timeout { program: what.to_owned(), seconds: self.timeout.as_secs_f64() });
        }
        Ok(())
    }

    /// Runs `command` with what is left of the deadline (a timeout names the whole call's limit),
    /// and checks that it succeeded.
    pub fn run(&self, command: Command) -> Result<Finished, Error> {
        self.check(command.program.name())?;
        let bounds = Bounds {
            timeout: self.deadline.saturating_duration_since(Instant::now()),
            memory_bytes: self.memory_bytes,
            cancel: self.cancel.clone(),
        };
        match run(command, &bounds) {
            Err(Error::Timeout { program, .. }) => Err(Error::Timeout { program, seconds: self.timeout.as_secs_f64() }),
            result => result?.check(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stderr_is_kept_bounded_as_whole_lines() {
        let mut stderr = Stderr::default();
        for i in 0..100_000 {
            stderr.feed(format!("[h264 @ 0x55d0c8a0] error {i} while decoding MB 3 4\n").as_bytes());
        }
        stderr.feed(&vec![b'x'; 1 << 20]); // one endless line
        stderr.feed(
            b"\r[aac @ 0x1] Unsupported channel layout \"9 channels\"\nError initializing output stream 0:1 -- Error while opening encoder",
        );
        let stderr = stderr.finish();
        let tail = stderr.tail_text();
        assert!(tail.len() <= STDERR_TAIL, "{}", tail.len());
        assert!(tail.starts_with("[h264 @ 0x55d0c8a0] error "), "whole lines: {}", &tail[..80]);
        assert!(tail.ends_with("Error while opening encoder"), "{}", &tail[tail.len() - 80..]);
        assert!(tail.contains(&format!("\n{}\n", "x".repeat(MAX_LINE))), "a long line is cut at MAX_LINE");
        assert!(stderr.output_side);
        assert_eq!(stderr.last.as_deref(), Some("Error initializing output stream 0:1 -- Error while opening encoder"));
    }

    #[test]
    fn messages_name_their_component() {
        let m = Message::parse("[libvpx-vp9 @ 0x5581] Failed to initialize encoder: Invalid parameter");
        assert_eq!(m, Message { from: Some("libvpx-vp9"), text: "Failed to initialize encoder: Invalid parameter" });
        assert!(m.is_output_side());
        let m = Message::parse("clip.mp4: Invalid data found when processing input");
        assert_eq!(m.from, None);
        assert!(!m.is_output_side());
        assert!(!Message::parse("[h264 @ 0x1] error while decoding MB 10 3").is_output_side());
        let full = Message::parse("[out#0/mp4 @ 0x1] Error writing trailer: No space left on device");
        assert!(full.is_no_space());
        assert!(!m.is_no_space());
    }

    #[test]
    fn command_lines_start_with_the_guards_and_quote_for_display() {
        let (encode, method) = Command::encode(Path::new("/in/my clip.mov"), Path::new("/out/o.mp4"), VideoFormat::Mp4, 23, true, false);
        assert_eq!(method, "h264-crf23");
        assert_eq!(
            &encode.args[..8],
            ["-nostdin", "-hide_banner", "-loglevel", "error", "-protocol_whitelist", "file", "-i", "/in/my clip.mov"]
        );
        let shown = encode.display();
        assert!(
            shown.starts_with("ffmpeg -nostdin -hide_banner -loglevel error -protocol_whitelist file -i '/in/my clip.mov' -map 0:v:0"),
            "{shown}"
        );
        assert!(shown.ends_with("-c:a aac -b:a 128k -f mp4 -y /out/o.mp4"), "{shown}");
        let cut = Command::cut(Path::new("a.mp4"), Path::new("b.mkv"), 1.5, 1.5, true);
        assert_eq!(&cut.args[6..10], ["-ss", "1.500", "-i", "a.mp4"]);
        assert!(cut.display().contains("-enc_time_base:v 1:100 -c:v ffv1"), "{}", cut.display());
        let probe = Command::probe(Path::new("a.mp4"));
        assert_eq!(
            probe.display(),
            "ffprobe -v error -protocol_whitelist file -print_format json -show_format -show_streams -i a.mp4 -hide_banner"
        );
    }
}
