//! Running ffmpeg and ffprobe: never through a shell, input and output as local files only, with
//! a wall-clock deadline, CPU-time and address-space limits, and the whole process group killed
//! when the deadline passes or the caller drops the run.

use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::error::Error;

/// How much one child may use, and the switch that stops it early.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Bounds {
    /// Wall-clock time before the child is killed.
    pub timeout: Duration,
    /// Address space of the child (`RLIMIT_AS`), in bytes.
    pub memory_bytes: u64,
    pub cancel: Cancel,
}

/// The engine's switch: set by a caller that no longer wants the result (a client that went
/// away, Ctrl-C); the running child is killed within about 10 ms and the call returns
/// [`Error::Cancelled`].
pub use compressor_engine::Cancel;

/// What a finished child printed on standard output and error.
pub(crate) struct Finished {
    pub stdout: Vec<u8>,
    pub stderr: String,
    pub status: ExitStatus,
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

/// Runs `program` with `args` under `bounds`, its standard output and error captured to files in
/// `scratch` (so a chatty child can never block on a full pipe).
pub(crate) fn run(program: &str, args: &[&std::ffi::OsStr], scratch: &Path, bounds: &Bounds) -> Result<Finished, Error> {
    if bounds.cancel.is_cancelled() {
        return Err(Error::Cancelled);
    }
    let (out_path, err_path) = (scratch.join(format!("{program}.stdout")), scratch.join(format!("{program}.stderr")));
    let (out, err) = (std::fs::File::create(&out_path)?, std::fs::File::create(&err_path)?);
    let cpu_seconds = bounds.timeout.as_secs().saturating_mul(available_cpus()).saturating_add(5);
    let memory = bounds.memory_bytes;
    let mut command = Command::new(program);
    command.args(args).stdin(Stdio::null()).stdout(out).stderr(err);
    // SAFETY: only async-signal-safe calls (setpgid, prctl, setrlimit) between fork and exec.
    unsafe {
        command.pre_exec(move || {
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
    let child = command.spawn().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::ToolMissing { program: program.to_owned() },
        _ => Error::Io(e),
    })?;
    let mut reaper = Reaper(Some(child));
    let deadline = Instant::now() + bounds.timeout;
    let status = loop {
        let child = reaper.0.as_mut().expect("not reaped yet");
        if let Some(status) = child.try_wait()? {
            reaper.0 = None;
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
    let stdout = std::fs::read(&out_path)?;
    let stderr = String::from_utf8_lossy(&std::fs::read(&err_path)?).trim().to_owned();
    Ok(Finished { stdout, stderr, status })
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

    /// [`run`] with what is left of the deadline; a timeout names the whole call's limit.
    pub fn run(&self, program: &str, args: &[&std::ffi::OsStr], scratch: &Path) -> Result<Finished, Error> {
        self.check(program)?;
        let bounds = Bounds {
            timeout: self.deadline.saturating_duration_since(Instant::now()),
            memory_bytes: self.memory_bytes,
            cancel: self.cancel.clone(),
        };
        run(program, args, scratch, &bounds).map_err(|e| match e {
            Error::Timeout { program, .. } => Error::Timeout { program, seconds: self.timeout.as_secs_f64() },
            e => e,
        })
    }

    /// Runs ffmpeg; a failure is `Failed` when a signal (a limit) stopped it, else `Corrupt`.
    pub fn ffmpeg(&self, args: &[std::ffi::OsString], scratch: &Path) -> Result<(), Error> {
        use std::os::unix::process::ExitStatusExt as _;
        let args: Vec<&std::ffi::OsStr> = args.iter().map(std::ffi::OsString::as_os_str).collect();
        let finished = self.run("ffmpeg", &args, scratch)?;
        if finished.status.success() {
            return Ok(());
        }
        Err(match finished.status.signal() {
            Some(signal) => Error::Failed { detail: format!("ffmpeg was stopped by signal {signal} (CPU or memory limit)") },
            None => Error::Corrupt { detail: crate::probe::first_line(&finished.stderr, "ffmpeg failed") },
        })
    }
}
