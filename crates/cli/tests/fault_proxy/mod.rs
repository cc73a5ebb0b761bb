//! A fault-injecting HTTP/1.1 proxy on loopback, for running `compressor batch` against a real
//! object store (moto, fake-gcs-server) that misbehaves the way cloud stores do: throttling
//! (S3's `503 SlowDown`, GCS's `429`), `503` errors, connections reset while a request is sent or
//! while its answer is read, and answers that stall half way through. Each request is read whole,
//! offered to the test's plan (method, target, and how many times that same request came before),
//! then forwarded, answered by the proxy, or cut. Everything the proxy does is counted, so a test
//! can assert that its faults really fired.
//!
//! One thread per client connection; each forwarded request gets its own upstream connection.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What the proxy does to one request instead of forwarding it faithfully.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    /// Answered by the proxy: S3's `503 SlowDown`, GCS's `429 rateLimitExceeded`.
    SlowDown,
    /// Answered by the proxy: `503` with the store's error body.
    Unavailable,
    /// The request's head and half its body reach the server, then both connections are reset.
    ResetMidRequest,
    /// The server's answer (the request took effect) reaches the client only half way, then the
    /// connection is reset.
    ResetMidResponse,
    /// The server's answer reaches the client half way, then nothing more until the client gives
    /// up (or [`FaultProxy::STALL_LIMIT`] passes).
    StallMidBody,
}

impl Fault {
    pub const ALL: [Fault; 5] = [Fault::SlowDown, Fault::Unavailable, Fault::ResetMidRequest, Fault::ResetMidResponse, Fault::StallMidBody];
}

/// Which store is behind the proxy: it decides the error bodies the proxy answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Store {
    S3,
    Gcs,
}

/// One request as the plan sees it.
#[derive(Debug)]
pub struct Request<'a> {
    pub method: &'a str,
    /// Path and query, as sent.
    pub target: &'a str,
    /// 1 for the first time this method and target are seen, 2 for the first repeat (a retry), …
    pub attempt: u32,
}

impl Request<'_> {
    /// The target without its query, percent-decoded (object_store escapes GCS object names
    /// whole, slashes included).
    pub fn path(&self) -> String {
        let raw = self.target.split('?').next().unwrap_or(self.target).as_bytes();
        let mut decoded = Vec::with_capacity(raw.len());
        let mut i = 0;
        while i < raw.len() {
            let hex = raw.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok());
            match (raw[i], hex) {
                (b'%', Some(byte)) => {
                    decoded.push(byte);
                    i += 3;
                }
                (byte, _) => {
                    decoded.push(byte);
                    i += 1;
                }
            }
        }
        String::from_utf8_lossy(&decoded).into_owned()
    }
}

type Plan = dyn Fn(&Request) -> Option<Fault> + Send + Sync;

/// What the proxy saw and did.
#[derive(Debug, Default, Clone)]
pub struct Counts {
    /// Requests read whole from clients.
    pub requests: u64,
    /// Of those, repeats of an earlier request's method and target: the client's retries.
    pub repeats: u64,
    /// Requests answered by the server and passed back whole.
    pub forwarded: u64,
    /// Faults injected, by kind.
    pub faults: BTreeMap<Fault, u64>,
    /// Stalled answers that the client gave up on (closed the connection) before the limit.
    pub stalls_abandoned: u64,
}

impl Counts {
    pub fn faults_total(&self) -> u64 {
        self.faults.values().sum()
    }
}

struct Shared {
    upstream: SocketAddr,
    store: Store,
    plan: Box<Plan>,
    stop: AtomicBool,
    counts: Mutex<Counts>,
    seen: Mutex<HashMap<String, u32>>,
}

/// A running proxy; stopped when dropped.
pub struct FaultProxy {
    address: SocketAddr,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

impl FaultProxy {
    /// How long a stalled answer is held at most when the client does not give up.
    pub const STALL_LIMIT: Duration = Duration::from_secs(60);

    /// Listens on a free loopback port and forwards to `upstream` (`http://host:port`), faulting
    /// the requests `plan` picks.
    pub fn start(upstream: &str, store: Store, plan: impl Fn(&Request) -> Option<Fault> + Send + Sync + 'static) -> FaultProxy {
        let upstream = upstream.strip_prefix("http://").unwrap_or(upstream).trim_end_matches('/').parse().expect("upstream host:port");
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let address = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            upstream,
            store,
            plan: Box::new(plan),
            stop: AtomicBool::new(false),
            counts: Mutex::default(),
            seen: Mutex::default(),
        });
        let accepting = shared.clone();
        let accept = std::thread::spawn(move || {
            while !accepting.stop.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((client, _)) => {
                        let shared = accepting.clone();
                        std::thread::spawn(move || {
                            let _ = serve(&shared, client);
                        });
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::sleep(Duration::from_millis(5)),
                    Err(e) => panic!("fault proxy accept: {e}"),
                }
            }
        });
        FaultProxy { address, shared, accept: Some(accept) }
    }

    /// Where clients are pointed instead of the server.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    pub fn counts(&self) -> Counts {
        self.shared.counts.lock().unwrap().clone()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

/// A connection with what was read from it but not yet used.
struct Conn {
    stream: TcpStream,
    buffer: Vec<u8>,
}

impl Conn {
    fn new(stream: TcpStream) -> Conn {
        Conn { stream, buffer: Vec::new() }
    }

    /// Reads more bytes into the buffer; false at the end of the stream.
    fn fill(&mut self) -> io::Result<bool> {
        let mut chunk = [0; 16 << 10];
        let n = self.stream.read(&mut chunk)?;
        self.buffer.extend_from_slice(&chunk[..n]);
        Ok(n > 0)
    }

    /// The next message head (through its blank line), or `None` if the stream ends before one.
    fn head(&mut self) -> io::Result<Option<Vec<u8>>> {
        loop {
            if let Some(end) = self.buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                return Ok(Some(self.buffer.drain(..end + 4).collect()));
            }
            if !self.fill()? {
                return Ok(None);
            }
        }
    }

    fn exactly(&mut self, n: usize) -> io::Result<Vec<u8>> {
        while self.buffer.len() < n {
            if !self.fill()? {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
        Ok(self.buffer.drain(..n).collect())
    }

    fn line(&mut self) -> io::Result<Vec<u8>> {
        loop {
            if let Some(end) = self.buffer.windows(2).position(|w| w == b"\r\n") {
                return Ok(self.buffer.drain(..end + 2).collect());
            }
            if !self.fill()? {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
    }

    /// A body as framed by `framing`, raw (chunked bodies keep their chunk lines).
    fn body(&mut self, framing: Framing) -> io::Result<Vec<u8>> {
        match framing {
            Framing::Empty => Ok(Vec::new()),
            Framing::Length(n) => self.exactly(n),
            Framing::Chunked => {
                let mut raw = Vec::new();
                loop {
                    let line = self.line()?;
                    let size = std::str::from_utf8(&line).ok().and_then(|l| usize::from_str_radix(l.trim().split(';').next()?, 16).ok());
                    let size = size.ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "bad chunk size"))?;
                    raw.extend_from_slice(&line);
                    if size == 0 {
                        // Trailers, up to the blank line.
                        loop {
                            let trailer = self.line()?;
                            raw.extend_from_slice(&trailer);
                            if trailer == b"\r\n" {
                                return Ok(raw);
                            }
                        }
                    }
                    raw.extend(self.exactly(size + 2)?);
                }
            }
            Framing::UntilClose => {
                while self.fill()? {}
                Ok(std::mem::take(&mut self.buffer))
            }
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Framing {
    Empty,
    Length(usize),
    Chunked,
    UntilClose,
}

/// A parsed message head: its first line's words and its headers (names in lower case).
struct Head {
    first: Vec<String>,
    headers: Vec<(String, String)>,
}

impl Head {
    fn parse(raw: &[u8]) -> Head {
        let text = String::from_utf8_lossy(raw);
        let mut lines = text.split("\r\n");
        let first = lines.next().unwrap_or("").splitn(3, ' ').map(str::to_owned).collect();
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
            .collect();
        Head { first, headers }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    fn closes(&self) -> bool {
        self.header("connection").is_some_and(|v| v.eq_ignore_ascii_case("close"))
    }

    fn chunked(&self) -> bool {
        self.header("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
    }

    fn length(&self) -> Option<usize> {
        self.header("content-length").and_then(|v| v.parse().ok())
    }

    fn request_framing(&self) -> Framing {
        match (self.chunked(), self.length()) {
            (true, _) => Framing::Chunked,
            (false, Some(n)) => Framing::Length(n),
            (false, None) => Framing::Empty,
        }
    }

    fn response_framing(&self, method: &str) -> Framing {
        let status: u16 = self.first.get(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        if method == "HEAD" || status / 100 == 1 || status == 204 || status == 304 {
            return Framing::Empty;
        }
        match (self.chunked(), self.length()) {
            (true, _) => Framing::Chunked,
            (false, Some(n)) => Framing::Length(n),
            (false, None) => Framing::UntilClose,
        }
    }
}

/// Serves one client connection, request after request, until it closes or a fault cuts it.
fn serve(shared: &Shared, client: TcpStream) -> io::Result<()> {
    client.set_nonblocking(false)?;
    let mut client = Conn::new(client);
    while let Some(raw_head) = client.head()? {
        let head = Head::parse(&raw_head);
        // fake-gcs-server tells path-style requests by their Host (its -public-host), so GCS
        // requests get the upstream's; S3 signs the Host the client sent, so those keep theirs.
        let raw_head = match shared.store {
            Store::Gcs => with_host(&raw_head, &shared.upstream.to_string()),
            Store::S3 => raw_head,
        };
        let body = client.body(head.request_framing())?;
        let (method, target) = (head.first.first().cloned().unwrap_or_default(), head.first.get(1).cloned().unwrap_or_default());
        let fault = {
            let mut seen = shared.seen.lock().unwrap();
            let attempt = seen.entry(format!("{method} {target}")).or_default();
            *attempt += 1;
            let fault = (shared.plan)(&Request { method: &method, target: &target, attempt: *attempt });
            let mut counts = shared.counts.lock().unwrap();
            counts.requests += 1;
            counts.repeats += u64::from(*attempt > 1);
            if let Some(fault) = fault {
                *counts.faults.entry(fault).or_default() += 1;
            }
            fault
        };
        match fault {
            Some(fault @ (Fault::SlowDown | Fault::Unavailable)) => {
                client.stream.write_all(&error_response(shared.store, fault))?;
                continue;
            }
            Some(Fault::ResetMidRequest) => {
                let mut upstream = TcpStream::connect(shared.upstream)?;
                upstream.write_all(&raw_head)?;
                upstream.write_all(&body[..body.len() / 2])?;
                reset(&upstream);
                reset(&client.stream);
                return Ok(());
            }
            _ => {}
        }
        let upstream = TcpStream::connect(shared.upstream)?;
        upstream.set_read_timeout(Some(Duration::from_secs(60)))?;
        let mut upstream = Conn::new(upstream);
        upstream.stream.write_all(&raw_head)?;
        upstream.stream.write_all(&body)?;
        let Some(response_head) = upstream.head()? else { return Err(io::ErrorKind::UnexpectedEof.into()) };
        let parsed = Head::parse(&response_head);
        let framing = parsed.response_framing(&method);
        let response_body = upstream.body(framing)?;
        // Half the body when there is one, else half the head: the client has begun reading.
        let cut = match response_body.len() {
            0 => response_head.len() / 2,
            body => response_head.len() + body / 2,
        };
        let response = [response_head, response_body].concat();
        match fault {
            Some(Fault::ResetMidResponse) => {
                client.stream.write_all(&response[..cut])?;
                reset(&client.stream);
                return Ok(());
            }
            Some(Fault::StallMidBody) => {
                client.stream.write_all(&response[..cut])?;
                let abandoned = stall(shared, &mut client.stream);
                shared.counts.lock().unwrap().stalls_abandoned += u64::from(abandoned);
                let _ = client.stream.shutdown(Shutdown::Both);
                return Ok(());
            }
            _ => {
                client.stream.write_all(&response)?;
                shared.counts.lock().unwrap().forwarded += 1;
                if head.closes() || parsed.closes() || matches!(framing, Framing::UntilClose) {
                    return Ok(());
                }
            }
        }
    }
    Ok(())
}

/// `head` with its Host header replaced by `host`.
fn with_host(head: &[u8], host: &str) -> Vec<u8> {
    let text = String::from_utf8_lossy(head);
    let lines: Vec<String> = text
        .split("\r\n")
        .map(|line| match line.split_once(':') {
            Some((name, _)) if name.eq_ignore_ascii_case("host") => format!("Host: {host}"),
            _ => line.to_owned(),
        })
        .collect();
    lines.join("\r\n").into_bytes()
}

/// Sends nothing more until the client closes its end (true) or the limit or the proxy's stop
/// comes first (false).
fn stall(shared: &Shared, client: &mut TcpStream) -> bool {
    let started = Instant::now();
    let _ = client.set_read_timeout(Some(Duration::from_millis(50)));
    let mut byte = [0; 1];
    while started.elapsed() < FaultProxy::STALL_LIMIT && !shared.stop.load(Ordering::SeqCst) {
        match client.read(&mut byte) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {}
            Err(_) => return true,
        }
    }
    false
}

/// Closes with a TCP reset rather than a FIN (SO_LINGER 0), as a dropped middlebox or a crashed
/// server does.
fn reset(stream: &TcpStream) {
    let linger = libc::linger { l_onoff: 1, l_linger: 0 };
    // SAFETY: a valid socket and a correctly sized option value.
    unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
    let _ = stream.shutdown(Shutdown::Read);
    // The descriptor is closed when the caller's stream drops; with linger 0 that sends RST.
}

/// The answer a throttled or failing store gives, in its own error format.
fn error_response(store: Store, fault: Fault) -> Vec<u8> {
    let (status, content_type, body) = match (store, fault) {
        (Store::S3, Fault::SlowDown) => (
            "503 Slow Down",
            "application/xml",
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message><RequestId>fault-proxy</RequestId></Error>",
        ),
        (Store::S3, _) => (
            "503 Service Unavailable",
            "application/xml",
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>ServiceUnavailable</Code><Message>Service is unable to handle request.</Message><RequestId>fault-proxy</RequestId></Error>",
        ),
        (Store::Gcs, Fault::SlowDown) => (
            "429 Too Many Requests",
            "application/json",
            r#"{"error":{"code":429,"message":"The rate of change requests to the object exceeds the rate limit. Please reduce the rate of create, update, and delete requests.","errors":[{"message":"rate limit","domain":"usageLimits","reason":"rateLimitExceeded"}]}}"#,
        ),
        (Store::Gcs, _) => (
            "503 Service Unavailable",
            "application/json",
            r#"{"error":{"code":503,"message":"Backend Error","errors":[{"message":"Backend Error","domain":"global","reason":"backendError"}]}}"#,
        ),
    };
    format!("HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n{body}", body.len()).into_bytes()
}
