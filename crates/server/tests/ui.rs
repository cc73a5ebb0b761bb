//! The web page in a real browser: Debian's headless Chromium, driven through chromedriver, against
//! the service on a loopback port. Files go in through the page's file input, as a person's would.

mod common;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Server, client, config, corpus, corpus_file, free_port, parse_metrics};
use compressor_server::Config;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

/// chromedriver on a free port, and a browser session through it. Dropped, it stops chromedriver
/// and any browser process still using its profile folder (a test that failed never closed it).
struct Browser {
    client: Client,
    driver: Child,
    profile: tempfile::TempDir,
    /// Where the browser saves what download links give it.
    downloads: tempfile::TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let _ = Command::new("pkill").arg("-f").arg(self.profile.path()).status();
    }
}

/// A browser whose window is the size the tests used before the first-screen ones.
async fn browser() -> Browser {
    browser_sized(1280, 1200).await
}

/// A browser whose page area (`window.innerWidth` × `innerHeight`) is `width` × `height`.
async fn browser_sized(width: u32, height: u32) -> Browser {
    let port = free_port();
    let driver = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver is needed (Debian's chromium-driver; scripts/install-deps.sh installs it)");
    let profile = tempfile::tempdir().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "chromedriver did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let args = [
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-dev-shm-usage",
        &format!("--window-size={width},{height}"),
        &format!("--user-data-dir={}", profile.path().display()),
    ];
    let downloads = tempfile::tempdir().unwrap();
    let prefs = json!({ "download.default_directory": downloads.path(), "download.prompt_for_download": false });
    let mut capabilities = serde_json::Map::new();
    capabilities.insert("goog:chromeOptions".into(), json!({ "binary": "/usr/bin/chromium", "args": args, "prefs": prefs }));
    let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .expect("a browser session");
    let browser = Browser { client, driver, profile, downloads };
    // The window's size includes whatever the browser draws around the page (nothing, headless,
    // as a rule): asked for once more with the difference added, the page gets the size asked for.
    let inner = browser.inner_size().await;
    if inner != (width, height) {
        let (outer_width, outer_height) = browser.page().get_window_size().await.unwrap();
        let grow = |outer: u64, asked: u32, got: u32| (outer as i64 + asked as i64 - got as i64).max(1) as u32;
        browser.page().set_window_size(grow(outer_width, width, inner.0), grow(outer_height, height, inner.1)).await.unwrap();
    }
    assert_eq!(browser.inner_size().await, (width, height), "the page area's size");
    browser
}

impl Browser {
    fn page(&self) -> &Client {
        &self.client
    }

    /// Ends the session, which closes the browser.
    async fn close(self) {
        let _ = self.client.clone().close().await;
    }

    async fn js(&self, script: &str) -> Value {
        self.page().execute(script, vec![]).await.unwrap_or_else(|e| panic!("{script}: {e}"))
    }

    /// The page area's size: `window.innerWidth` × `window.innerHeight`.
    async fn inner_size(&self) -> (u32, u32) {
        let size = self.js("return [window.innerWidth, window.innerHeight];").await;
        (size[0].as_u64().unwrap() as u32, size[1].as_u64().unwrap() as u32)
    }

    /// Opens the folded options with one click on their summary line, as a person would (once).
    async fn open_options(&self) {
        if self.js("return document.getElementById('options-fold').open").await == false {
            self.page().find(Locator::Css("#options-fold > summary")).await.unwrap().click().await.unwrap();
        }
        assert_eq!(self.js("return document.getElementById('options-fold').open").await, true, "the options opened");
    }

    /// An element's box on the screen (`getBoundingClientRect`), the page's scroll and size.
    async fn geometry(&self, css: &str) -> Value {
        self.js(&format!(
            "const e = document.querySelector({css:?}); const r = e.getBoundingClientRect();
             return {{ top: r.top, bottom: r.bottom, left: r.left, right: r.right, width: r.width, height: r.height,
                      scrollY: window.scrollY, innerWidth: window.innerWidth, innerHeight: window.innerHeight,
                      visible: e.checkVisibility() }};"
        ))
        .await
    }

    /// Whether an element is drawn (visible, in a non-empty box; not in a closed `<details>`)
    /// wholly within the page area as it is now.
    async fn on_screen(&self, css: &str) -> bool {
        let g = self.geometry(css).await;
        let n = |k: &str| g[k].as_f64().unwrap();
        g["visible"] == true
            && n("width") > 0.0
            && n("height") > 0.0
            && n("top") >= 0.0
            && n("bottom") <= n("innerHeight")
            && n("left") >= 0.0
            && n("right") <= n("innerWidth")
    }

    /// Hands files to the page's file input, as choosing them in the dialog does.
    async fn add_files(&self, paths: &[PathBuf]) {
        let input = self.page().find(Locator::Id("files")).await.unwrap();
        let list: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        input.send_keys(&list.join("\n")).await.unwrap();
    }

    /// Every row's state, name, status text and compressed bytes, in order.
    async fn rows(&self) -> Vec<Value> {
        let rows = self
            .js("return [...document.querySelectorAll('#results tbody tr')].map(tr => ({
                    state: tr.dataset.state,
                    name: tr.querySelector('td.name').textContent,
                    status: tr.querySelector('td.status').textContent,
                    bytes: tr.querySelector('td[data-label=Compressed]').dataset.bytes,
                    score: tr.querySelector('td[data-label=SSIMULACRA2]').textContent,
                    method: tr.querySelector('td[data-label=Method]').textContent,
                    href: (tr.querySelector('a.download') || {}).href || null,
                    download: (tr.querySelector('a.download') || {}).download || null,
                }));")
            .await;
        rows.as_array().unwrap().clone()
    }

    /// Waits until `count` rows are finished (done or failed).
    async fn finished(&self, count: usize, limit: Duration) -> Vec<Value> {
        let start = Instant::now();
        loop {
            let rows = self.rows().await;
            if rows.len() == count && rows.iter().all(|r| r["state"] == "done" || r["state"] == "error") {
                return rows;
            }
            assert!(start.elapsed() < limit, "rows not finished after {limit:?}: {rows:#?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Clicks a download link (found by CSS) as a person would and returns the file the browser
    /// saved, named as the link says.
    async fn download(&self, link: &str, name: &str) -> Vec<u8> {
        for old in std::fs::read_dir(self.downloads.path()).unwrap() {
            std::fs::remove_file(old.unwrap().path()).unwrap();
        }
        self.page().find(Locator::Css(link)).await.unwrap_or_else(|e| panic!("{link}: {e}")).click().await.unwrap();
        let saved = self.downloads.path().join(name);
        let start = Instant::now();
        loop {
            let partial =
                std::fs::read_dir(self.downloads.path()).unwrap().any(|e| e.unwrap().path().extension().is_some_and(|x| x == "crdownload"));
            if saved.is_file() && !partial {
                return std::fs::read(&saved).unwrap();
            }
            assert!(start.elapsed() < Duration::from_secs(30), "{name} was not downloaded");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Every URL the page has fetched, by the browser's own resource timing.
    async fn fetched(&self) -> Vec<String> {
        let urls = self.js("return performance.getEntriesByType('resource').map(e => e.name).concat([location.href]);").await;
        urls.as_array().unwrap().iter().map(|u| u.as_str().unwrap().to_owned()).collect()
    }
}

/// The format of some bytes, from their magic numbers.
fn format_of(data: &[u8]) -> &'static str {
    if data.starts_with(b"\x89PNG") {
        "png"
    } else if data.starts_with(&[0xFF, 0xD8, 0xFF]) {
        "jpeg"
    } else if data.starts_with(b"GIF8") {
        "gif"
    } else if data.len() > 12 && &data[..4] == b"RIFF" && &data[8..12] == b"WEBP" {
        "webp"
    } else {
        "unknown"
    }
}

async fn open(server: &Server) -> Browser {
    open_in(server, browser().await).await
}

async fn open_in(server: &Server, browser: Browser) -> Browser {
    browser.page().goto(&server.url("/")).await.unwrap();
    browser.page().wait().for_element(Locator::Id("files")).await.unwrap();
    browser
}

/// A screenshot PNG, an oriented camera JPEG and a GIF from the corpus (`None` without it).
fn three_corpus_files() -> Option<[PathBuf; 3]> {
    Some([
        corpus_file("png_real/screenshot/image-png__lorem_ipsum_screenshot.png")?,
        corpus_file("photos_jpeg/exif-orientation__Landscape_2.jpg")?,
        corpus_file("other/gif/pillow__hopper.gif")?,
    ])
}

#[tokio::test(flavor = "multi_thread")]
async fn three_real_files_compress_and_download_as_the_api_answers() {
    let Some([png, camera_jpeg, gif]) = three_corpus_files() else { return };
    // A name with a space and another spelling of the JPEG extension: the download keeps both
    // (the service's naming rule keeps an extension that says the output's format).
    let renamed = tempfile::tempdir().unwrap();
    let jpeg = renamed.path().join("Landscape 2.JPEG");
    std::fs::copy(&camera_jpeg, &jpeg).unwrap();
    let server = Server::start(config()).await;
    let browser = open(&server).await;

    // The picker offers what the format tables read, and the page says which.
    let accept = browser.js("return document.getElementById('files').accept").await;
    let offered: HashSet<&str> = accept.as_str().unwrap().split(',').collect();
    let mut readable: HashSet<String> = compressor_engine::Format::ALL
        .iter()
        .flat_map(|f| f.media_types().iter().map(|t| t.to_string()).chain(f.extensions().iter().map(|e| format!(".{e}"))))
        .collect();
    readable.extend(compressor_video::EXTENSIONS.iter().map(|e| format!(".{e}")));
    readable.extend(compressor_video::MEDIA_TYPES.iter().map(|t| t.to_string()));
    assert_eq!(offered, readable.iter().map(String::as_str).collect());
    let said = browser.js("return document.getElementById('formats').textContent").await;
    for format in compressor_engine::Format::ALL {
        assert!(said.as_str().unwrap().contains(format.title()), "{said} does not name {format}");
    }

    browser.add_files(&[png.clone(), jpeg.clone(), gif.clone()]).await;
    let rows = browser.finished(3, Duration::from_secs(120)).await;
    let http = client();
    for (n, (row, (path, format))) in rows.iter().zip([(&png, "png"), (&jpeg, "jpeg"), (&gif, "gif")]).enumerate() {
        assert_eq!(row["state"], "done", "{row}");
        let input = std::fs::read(path).unwrap();
        // What the API answers for the same file and the page's default options (no score).
        let answer = http.post(server.url("/v1/compress")).body(input.clone()).send().await.unwrap();
        let expected: usize = answer.headers()["x-compressed-size"].to_str().unwrap().parse().unwrap();
        assert_eq!(row["bytes"].as_str().unwrap().parse::<usize>().unwrap(), expected, "{row}");
        let link = format!("#results tbody tr:nth-child({}) a.download", n + 1);
        let downloaded = browser.download(&link, row["download"].as_str().unwrap()).await;
        assert_eq!(downloaded.len(), expected, "{row}");
        assert_eq!(format_of(&downloaded), format, "{row}");
        let info = compressor_engine::probe(&downloaded).unwrap_or_else(|e| panic!("{row}: {e}"));
        assert_eq!((info.width, info.height), {
            let i = compressor_engine::probe(&input).unwrap();
            (i.width, i.height)
        });
        // Named after the upload by the service's rule (here every extension already says the
        // output's format, so each name is the upload's own).
        let name = path.file_name().unwrap().to_str().unwrap();
        assert_eq!(row["download"], compressor_engine::Format::ALL.iter().find(|f| f.to_string() == format).unwrap().output_name(name));
        assert_eq!(row["download"], name, "{row}");
        assert_eq!(row["method"], answer_method(&http, &server, &input).await, "{row}");
        assert_eq!(row["score"], "", "no score unless asked for: {row}");
    }
    let total = browser.js("return document.getElementById('total-files').textContent").await;
    assert_eq!(total, "3 of 3 files done");

    // Download all: one ZIP of the three results, built in the page.
    let archive = browser.download("#download-all", "compressed.zip").await;
    let names = zip_names(&archive);
    let expected: HashSet<String> = rows.iter().map(|r| r["download"].as_str().unwrap().to_owned()).collect();
    assert_eq!(names.into_iter().collect::<HashSet<_>>(), expected);

    // Nothing was fetched from anywhere else, and the page's policy says so.
    let origin = server.url("");
    for url in browser.fetched().await {
        assert!(url.starts_with(&origin) || url.starts_with("blob:"), "the page fetched {url}");
    }
    let page = http.get(server.url("/")).send().await.unwrap();
    let csp = page.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'none'") && csp.contains("script-src 'self'") && csp.contains("connect-src 'self'"), "{csp}");
    let paint = browser.js("const p = performance.getEntriesByName('first-contentful-paint')[0]; return p ? p.startTime : null;").await;
    println!("first contentful paint: {paint} ms");

    // The screenshot the README shows: the page with these results, from the top.
    browser.js("window.scrollTo(0, 0); document.activeElement.blur(); return null;").await;
    let shot = browser.page().screenshot().await.unwrap();
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/ui");
    std::fs::create_dir_all(&docs).unwrap();
    std::fs::write(docs.join("page.png"), &shot).unwrap();
    assert_eq!(format_of(&shot), "png");
    browser.close().await;
}

/// The first screen, on a laptop's window and on a phone's: three files dropped in show their
/// results right under the drop area without any scrolling, each with its sizes and download,
/// while the options wait folded under one line that says what they are, a click away. Scores
/// (several times a compression's work on the server) are only measured when asked for.
#[tokio::test(flavor = "multi_thread")]
async fn the_first_screen_shows_results_under_the_drop_area_with_the_options_folded() {
    let Some([png, jpeg, gif]) = three_corpus_files() else { return };
    let server = Server::start(config()).await;
    for (width, height) in [(1366, 768), (390, 844)] {
        let size = format!("{width}×{height}");
        let browser = open_in(&server, browser_sized(width, height).await).await;
        let page = browser.page();
        // A new visitor: nothing scored, the options folded under their summary.
        let fresh = browser
            .js("return [document.getElementById('score').checked, document.getElementById('options-fold').open,
                         document.getElementById('options-summary').textContent];")
            .await;
        assert_eq!(fresh, json!([false, false, "Lossy · keep format · safe metadata · no resize"]), "{size}");
        assert!(!browser.on_screen("#quality").await, "{size}: the options start folded");

        browser.add_files(&[png.clone(), jpeg.clone(), gif.clone()]).await;
        // The first row is there at once, where the person is looking.
        let start = Instant::now();
        common::wait_until("the first row", Duration::from_secs(1), || async {
            browser.js("return document.querySelectorAll('#results tbody tr').length").await == 3
        })
        .await;
        println!("{size}: rows shown {:?} after the files were given", start.elapsed());
        let first = "#results tbody tr:first-child";
        let in_view = |when: &'static str| {
            let browser = &browser;
            let size = &size;
            async move {
                let g = browser.geometry(first).await;
                let n = |k: &str| g[k].as_f64().unwrap();
                assert_eq!(g["innerWidth"], width, "{size}");
                assert_eq!(g["innerHeight"], height, "{size}");
                assert_eq!(n("scrollY"), 0.0, "{size} {when}: the page scrolled: {g}");
                assert!(
                    n("top") >= 0.0 && n("bottom") <= n("innerHeight") && n("height") > 0.0,
                    "{size} {when}: the first row is off the screen: {g}"
                );
            }
        };
        in_view("added").await;
        let rows = browser.finished(3, Duration::from_secs(120)).await;
        in_view("finished").await;
        assert!(rows.iter().all(|r| r["state"] == "done"), "{size}: {rows:#?}");
        assert!(browser.on_screen(&format!("{first} a.download")).await, "{size}: the first download link is on the screen");

        // Its download is the file the row names, in that format, of the size it shows.
        let name = rows[0]["download"].as_str().unwrap();
        let downloaded = browser.download(&format!("{first} a.download"), name).await;
        let said = match name.rsplit_once('.').unwrap().1 {
            "jpg" => "jpeg",
            extension => extension,
        };
        assert_eq!(format_of(&downloaded), said, "{size}: {name}");
        assert_eq!(rows[0]["bytes"].as_str().unwrap().parse::<usize>().unwrap(), downloaded.len(), "{size}");

        // No score until asked for, and no column for it.
        assert!(rows.iter().all(|r| r["score"] == ""), "{size}: {rows:#?}");
        assert_eq!(browser.js("return document.getElementById('results').classList.contains('scored')").await, false, "{size}");

        // The options, in one click: their first fields come into view.
        page.find(Locator::Css("#options-fold > summary")).await.unwrap().click().await.unwrap();
        assert_eq!(browser.js("return document.getElementById('options-fold').open").await, true, "{size}");
        for field in ["#quality", "#format"] {
            assert!(browser.on_screen(field).await, "{size}: {field} is not on the screen: {}", browser.geometry(field).await);
        }
        // The summary line follows the form.
        page.find(Locator::Css("#format option[value=webp]")).await.unwrap().click().await.unwrap();
        let summary = || async { browser.js("return document.getElementById('options-summary').textContent").await };
        assert_eq!(summary().await, "Lossy · to WebP · safe metadata · no resize", "{size}");
        page.find(Locator::Css("#format option[value=keep]")).await.unwrap().click().await.unwrap();

        // Asked for, the scores come (with their column) for the lossy results.
        page.find(Locator::Id("score")).await.unwrap().click().await.unwrap();
        assert_eq!(summary().await, "Lossy · keep format · safe metadata · no resize · measure quality", "{size}");
        assert_eq!(browser.js("return document.getElementById('results').classList.contains('scored')").await, true, "{size}");
        let before: Vec<Value> = rows.iter().map(|r| r["href"].clone()).collect();
        page.find(Locator::Id("rerun")).await.unwrap().click().await.unwrap();
        let rows = browser.finished(3, Duration::from_secs(180)).await;
        for (row, old) in rows.iter().zip(&before) {
            assert_ne!(&row["href"], old, "{size}: compressed again: {row}");
            assert_eq!(row["state"], "done", "{size}: {row}");
            let lossy = ["-q", "quantized"].iter().any(|m| row["method"].as_str().unwrap().contains(m));
            assert_eq!(!row["score"].as_str().unwrap().is_empty(), lossy, "{size}: a lossy result shows its score: {row}");
        }
        assert!(rows.iter().any(|r| r["score"] != ""), "{size}: {rows:#?}");
        let header = browser.js("return getComputedStyle(document.querySelector('#results thead th.score')).display").await;
        assert_ne!(header, "none", "{size}: the score column");

        // Ticked, it is remembered for this person's next visit...
        page.refresh().await.unwrap();
        page.wait().for_element(Locator::Id("files")).await.unwrap();
        assert_eq!(browser.js("return document.getElementById('score').checked").await, true, "{size}");
        // ...but options saved by the page before scoring was opt-in (whose default was on) leave it off.
        browser
            .js(
                r#"localStorage.setItem('compressor.options', JSON.stringify({ mode: 'lossy', quality: '', format: 'keep', metadata: 'safe',
                    target_quality: '', max_bytes: '', width: '', height: '', fit: 'fit', enlarge: false, score: true,
                    video_format: 'keep', gif_as: 'image', audio: true })); return null;"#,
            )
            .await;
        page.refresh().await.unwrap();
        page.wait().for_element(Locator::Id("files")).await.unwrap();
        assert_eq!(browser.js("return document.getElementById('score').checked").await, false, "{size}");
        browser.close().await;
    }
}

/// The method the API reports for an upload at the page's default options.
async fn answer_method(http: &reqwest::Client, server: &Server, input: &[u8]) -> String {
    let answer = http.post(server.url("/v1/compress")).body(input.to_vec()).send().await.unwrap();
    answer.headers()["x-compression-method"].to_str().unwrap().to_owned()
}

/// File names in a ZIP's central directory.
fn zip_names(archive: &[u8]) -> Vec<String> {
    let end = archive.windows(4).rposition(|w| w == [0x50, 0x4b, 0x05, 0x06]).expect("end of central directory");
    let count = u16::from_le_bytes([archive[end + 10], archive[end + 11]]) as usize;
    let mut at = u32::from_le_bytes(archive[end + 16..end + 20].try_into().unwrap()) as usize;
    let mut names = Vec::new();
    for _ in 0..count {
        assert_eq!(&archive[at..at + 4], [0x50, 0x4b, 0x01, 0x02]);
        let name_len = u16::from_le_bytes([archive[at + 28], archive[at + 29]]) as usize;
        let extra = u16::from_le_bytes([archive[at + 30], archive[at + 31]]) as usize;
        let comment = u16::from_le_bytes([archive[at + 32], archive[at + 33]]) as usize;
        names.push(String::from_utf8(archive[at + 46..at + 46 + name_len].to_vec()).unwrap());
        at += 46 + name_len + extra + comment;
    }
    names
}

#[tokio::test(flavor = "multi_thread")]
async fn a_corrupt_file_shows_the_servers_error_and_the_others_carry_on() {
    let (Some(good), Some(also_good)) =
        (corpus_file("png_real/icon_alpha/small-n-flat__96_cloud-sync.png"), corpus_file("photos_jpeg/exif-orientation__Landscape_2.jpg"))
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.png");
    let mut bytes = std::fs::read(&good).unwrap();
    bytes.truncate(bytes.len() / 3);
    std::fs::write(&broken, &bytes).unwrap();
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "not an image").unwrap();

    let server = Server::start(config()).await;
    let answer = client().post(server.url("/v1/compress")).body(bytes).send().await.unwrap();
    let status = answer.status();
    let body: Value = answer.json().await.unwrap();
    let message = body["error"]["message"].as_str().unwrap().to_owned();

    let browser = open(&server).await;
    browser.add_files(&[good, broken, also_good, text]).await;
    let rows = browser.finished(4, Duration::from_secs(60)).await;
    assert_eq!(rows.iter().map(|r| r["state"].as_str().unwrap()).collect::<Vec<_>>(), ["done", "error", "done", "error"]);
    assert!(status.is_client_error(), "{status}");
    assert_eq!(rows[1]["status"], message.as_str(), "the server's own message");
    // The text file never reached the server: refused on the page.
    assert!(rows[3]["status"].as_str().unwrap().contains("Not a file this service reads"), "{}", rows[3]);
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_busy_server_is_waited_for_and_every_file_still_compresses() {
    let Some(corpus) = corpus() else { return };
    let server = Server::start(Config { workers: 1, queue: 0, ..config() }).await;
    // Six screenshots of 1-2 MP: each holds the one worker for a good fraction of a second.
    let dir = corpus.join("png_real/screenshot");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort_by_key(|p| std::fs::metadata(p).unwrap().len());
    let files: Vec<PathBuf> = files.into_iter().skip(1).take(6).collect();
    let browser = open(&server).await;
    browser.add_files(&files).await;
    let rows = browser.finished(6, Duration::from_secs(180)).await;
    assert!(rows.iter().all(|r| r["state"] == "done"), "{rows:#?}");
    let metrics = parse_metrics(&client().get(server.url("/metrics")).send().await.unwrap().text().await.unwrap());
    let refused = metrics.get(r#"compressor_rejected_total{reason="overloaded"}"#).copied().unwrap_or(0.0);
    println!("503s answered while six files went through one worker: {refused}");
    assert!(refused >= 1.0, "no 503 happened: the page's waiting was not exercised");
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_page_asks_for_an_api_key_refuses_a_wrong_one_and_uses_the_right_one() {
    let Some(file) = corpus_file("png_real/icon_alpha/small-n-flat__96_cloud-sync.png") else { return };
    let server = Server::start(Config { api_keys: ["right-key".to_owned()].into(), ..config() }).await;
    let browser = open(&server).await;
    let browser = &browser;
    let dialog_open = || async { browser.js("return document.getElementById('key-dialog').open").await == true };
    let answer = |key: &'static str| async move {
        let page = browser.page();
        let input = page.find(Locator::Id("key")).await.unwrap();
        input.clear().await.unwrap();
        input.send_keys(key).await.unwrap();
        page.find(Locator::Css("#key-form button[value=save]")).await.unwrap().click().await.unwrap();
    };
    browser.add_files(std::slice::from_ref(&file)).await;
    common::wait_until("the key dialog", Duration::from_secs(30), dialog_open).await;
    answer("wrong-key").await;
    common::wait_until("the key dialog again", Duration::from_secs(30), dialog_open).await;
    let reason = browser.js("return document.getElementById('key-reason').textContent").await;
    assert!(reason.as_str().unwrap().contains("refused"), "{reason}");
    answer("right-key").await;
    let rows = browser.finished(1, Duration::from_secs(60)).await;
    assert_eq!(rows[0]["state"], "done", "{rows:?}");
    let stored = browser.js("return localStorage.getItem('compressor.apiKey')").await;
    assert_eq!(stored, "right-key");
}

#[tokio::test(flavor = "multi_thread")]
async fn webp_chosen_in_the_options_gives_webp_and_the_comparison_slider_changes_the_view() {
    let Some(file) = corpus_file("png_real/screenshot/image-png__lorem_ipsum_screenshot.png") else { return };
    let server = Server::start(config()).await;
    let browser = open(&server).await;
    let page = browser.page();
    browser.open_options().await;
    page.find(Locator::Css("#format option[value=webp]")).await.unwrap().click().await.unwrap();
    browser.add_files(std::slice::from_ref(&file)).await;
    let rows = browser.finished(1, Duration::from_secs(60)).await;
    assert_eq!(rows[0]["state"], "done", "{rows:?}");
    assert!(rows[0]["download"].as_str().unwrap().ends_with(".webp"), "{rows:?}");
    let downloaded = browser.download("#results tbody tr a.download", rows[0]["download"].as_str().unwrap()).await;
    assert_eq!(format_of(&downloaded), "webp");
    // Remembered for the next visit.
    page.refresh().await.unwrap();
    page.wait().for_element(Locator::Id("files")).await.unwrap();
    assert_eq!(browser.js("return document.getElementById('format').value").await, "webp");
    let summary = browser.js("return document.getElementById('options-summary').textContent").await;
    assert!(summary.as_str().unwrap().contains("to WebP"), "the folded options say so: {summary}");
    browser.open_options().await;
    page.find(Locator::Css("#format option[value=keep]")).await.unwrap().click().await.unwrap();

    // The comparison: what shows left and right of the split follows the slider.
    browser.add_files(std::slice::from_ref(&file)).await;
    browser.finished(1, Duration::from_secs(60)).await;
    page.find(Locator::Css("#results tbody tr button.compare")).await.unwrap().click().await.unwrap();
    common::wait_until("the comparison", Duration::from_secs(10), || async {
        browser.js("return !document.getElementById('compare').hidden && document.getElementById('after').complete && document.getElementById('after').naturalWidth > 0").await == true
    })
    .await;
    let shown_at = |split: u32, fraction: f64| {
        let browser = &browser;
        let script = format!(
            "const s = document.getElementById('split'); s.value = {split}; s.dispatchEvent(new Event('input'));
             const v = document.getElementById('viewport').getBoundingClientRect();
             const i = document.getElementById('before').getBoundingClientRect();
             const left = Math.max(v.left, i.left), right = Math.min(v.right, i.right);
             const top = Math.max(v.top, i.top), bottom = Math.min(v.bottom, i.bottom);
             const e = document.elementFromPoint(left + (right - left) * {fraction}, (top + bottom) / 2);
             return e ? e.id : null;"
        );
        async move { browser.js(&script).await }
    };
    assert_eq!(shown_at(50, 0.25).await, "before");
    assert_eq!(shown_at(50, 0.75).await, "after");
    assert_eq!(shown_at(10, 0.25).await, "after", "moving the split left shows the compressed image there");
    assert_eq!(shown_at(90, 0.75).await, "before", "moving it right shows the original there");
    // Zoom to 1:1: the image is drawn at its own size.
    page.find(Locator::Id("zoom-1")).await.unwrap().click().await.unwrap();
    let scale = browser.js("return document.getElementById('before').style.transform").await;
    assert!(scale.as_str().unwrap().ends_with("scale(1)"), "{scale}");
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn resize_options_give_the_asked_size_and_the_comparison_matches_it() {
    let Some(file) = corpus_file("photos_jpeg/exif-orientation__Portrait_6.jpg") else { return }; // 1200x1800 upright
    let server = Server::start(config()).await;
    let browser = open(&server).await;
    let page = browser.page();
    browser.open_options().await;
    let width = page.find(Locator::Id("width")).await.unwrap();
    width.send_keys("300").await.unwrap();
    let height = page.find(Locator::Id("height")).await.unwrap();
    height.send_keys("300").await.unwrap();
    page.find(Locator::Css("#fit option[value=cover]")).await.unwrap().click().await.unwrap();
    browser.add_files(std::slice::from_ref(&file)).await;
    let rows = browser.finished(1, Duration::from_secs(60)).await;
    assert_eq!(rows[0]["state"], "done", "{rows:?}");
    assert!(rows[0]["method"].as_str().unwrap().ends_with("1200×1800 → 300×300"), "{rows:?}");
    let downloaded = browser.download("#results tbody tr a.download", rows[0]["download"].as_str().unwrap()).await;
    let (w, h, _) = compressor_test_support::jpeg_samples(&downloaded);
    assert_eq!((w, h), (300, 300));

    // The comparison draws the original into the output's box, so the two line up.
    page.find(Locator::Css("#results tbody tr button.compare")).await.unwrap().click().await.unwrap();
    common::wait_until("the comparison", Duration::from_secs(10), || async {
        browser.js("return document.getElementById('after').naturalWidth > 0 && document.getElementById('before').naturalWidth > 0").await
            == true
    })
    .await;
    let boxes = browser
        .js("const b = document.getElementById('before'), a = document.getElementById('after');
             return [b.offsetWidth, b.offsetHeight, a.offsetWidth, a.offsetHeight, getComputedStyle(b).objectFit];")
        .await;
    assert_eq!(boxes, json!([300, 300, 300, 300, "cover"]));

    // Remembered for the next visit.
    page.refresh().await.unwrap();
    page.wait().for_element(Locator::Id("files")).await.unwrap();
    let remembered = browser.js("return ['width', 'height', 'fit'].map(id => document.getElementById(id).value)").await;
    assert_eq!(remembered, json!(["300", "300", "cover"]));
    let summary = browser.js("return document.getElementById('options-summary').textContent").await;
    assert_eq!(summary, "Lossy · keep format · safe metadata · resize 300×300 cover");
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn videos_and_gifs_as_video_go_to_the_video_service_and_play_side_by_side() {
    let Some(gif) = corpus_file("other/gif/wuffs__muybridge.gif") else { return };
    let inputs = tempfile::tempdir().unwrap();
    let clip = inputs.path().join("clip.mp4");
    common::test_video(&clip, 320, 240, 2);
    let server = Server::start(config()).await;
    let browser = open(&server).await;
    let page = browser.page();
    browser.open_options().await;
    page.find(Locator::Css("#gif_as option[value=webm]")).await.unwrap().click().await.unwrap();
    browser.add_files(&[clip.clone(), gif.clone()]).await;
    let rows = browser.finished(2, Duration::from_secs(120)).await;
    for (n, (row, path, extension, codecs)) in
        [(&rows[0], &clip, "mp4", ["h264", "aac"].as_slice()), (&rows[1], &gif, "webm", ["vp9"].as_slice())].into_iter().enumerate()
    {
        assert_eq!(row["state"], "done", "{row}");
        let stem = path.file_stem().unwrap().to_str().unwrap();
        assert_eq!(row["download"], format!("{stem}.{extension}"), "{row}");
        let link = format!("#results tbody tr:nth-child({}) a.download", n + 1);
        let downloaded = browser.download(&link, row["download"].as_str().unwrap()).await;
        let input = std::fs::read(path).unwrap();
        assert!(downloaded.len() < input.len(), "{row}: {} -> {}", input.len(), downloaded.len());
        assert_eq!(row["bytes"].as_str().unwrap().parse::<usize>().unwrap(), downloaded.len());
        let saved = inputs.path().join(format!("out.{extension}"));
        std::fs::write(&saved, &downloaded).unwrap();
        let compressor_test_support::Probed { frames, codecs: found, .. } = compressor_test_support::ffprobe(&saved);
        assert!(frames > 10, "{row}: {frames} frames");
        assert_eq!(found, codecs, "{row}");
    }
    let method = rows[0]["method"].as_str().unwrap();
    assert!(method.starts_with("h264-crf") && method.ends_with("320×240, 2.0 s"), "{method}");

    // The comparison plays both videos together, split as images are.
    page.find(Locator::Css("#results tbody tr:nth-child(1) button.compare")).await.unwrap().click().await.unwrap();
    common::wait_until("both videos", Duration::from_secs(10), || async {
        browser
            .js("const b = document.getElementById('before-video'), a = document.getElementById('after-video');
                    return !b.hidden && !a.hidden && b.videoWidth > 0 && a.videoWidth === 320 && document.getElementById('after').hidden")
            .await
            == true
    })
    .await;
    page.find(Locator::Id("compare-play")).await.unwrap().click().await.unwrap();
    common::wait_until("playback", Duration::from_secs(10), || async {
        browser
            .js("const b = document.getElementById('before-video'), a = document.getElementById('after-video');
                    return !b.paused && !a.paused && b.currentTime > 0.3 && Math.abs(b.currentTime - a.currentTime) < 0.5")
            .await
            == true
    })
    .await;
    assert_eq!(browser.js("return document.getElementById('compare-play').textContent").await, "Pause");
    let shown = browser
        .js("const v = document.getElementById('viewport').getBoundingClientRect();
             const i = document.getElementById('before-video').getBoundingClientRect();
             const at = (f) => { const e = document.elementFromPoint(Math.max(v.left, i.left) + (Math.min(v.right, i.right) - Math.max(v.left, i.left)) * f, (Math.max(v.top, i.top) + Math.min(v.bottom, i.bottom)) / 2); return e ? e.id : null; };
             return [at(0.25), at(0.75)];")
        .await;
    assert_eq!(shown, json!(["before-video", "after-video"]));
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_api_page_renders_every_route_of_the_document_and_loads_nothing_from_elsewhere() {
    // The API page is there without the web page too.
    let server = Server::start(Config { ui: false, ..config() }).await;
    let http = client();
    let doc: Value = http.get(server.url("/openapi.json")).send().await.unwrap().json().await.unwrap();
    let browser = browser().await;
    browser.page().goto(&server.url("/docs")).await.unwrap();
    let start = Instant::now();
    while browser.js("return document.body.dataset.rendered || null;").await.is_null() {
        assert!(start.elapsed() < Duration::from_secs(30), "the API page did not render");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        browser.js("return document.body.dataset.rendered;").await,
        "true",
        "{}",
        browser.js("return document.body.innerText;").await
    );

    // One section per operation, with its parameters, request body media types and statuses.
    let shown = browser
        .js("return [...document.querySelectorAll('section.operation')].map(s => ({
                method: s.dataset.method, path: s.dataset.path,
                params: [...s.querySelectorAll('table.parameters tr[data-name]')].map(r => r.dataset.name),
                media: [...s.querySelectorAll('.body li[data-media]')].map(l => l.dataset.media),
                statuses: [...s.querySelectorAll('table.responses tr[data-status]')].map(r => r.dataset.status),
                text: s.innerText }));")
        .await;
    let shown = shown.as_array().unwrap();
    let mut operations = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            operations += 1;
            let section = shown
                .iter()
                .find(|s| s["method"] == method.as_str() && s["path"] == path.as_str())
                .unwrap_or_else(|| panic!("{method} {path} is not on the page"));
            let names = |list: &Value| -> Vec<String> { list.as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_owned()).collect() };
            let params: Vec<String> =
                op["parameters"].as_array().map(|p| p.iter().map(|p| p["name"].as_str().unwrap().to_owned()).collect()).unwrap_or_default();
            assert_eq!(names(&section["params"]), params, "{method} {path}");
            let media: Vec<String> = op["requestBody"]["content"].as_object().map(|c| c.keys().cloned().collect()).unwrap_or_default();
            assert_eq!(names(&section["media"]), media, "{method} {path}");
            let statuses: Vec<String> = op["responses"].as_object().unwrap().keys().cloned().collect();
            assert_eq!(names(&section["statuses"]), statuses, "{method} {path}");
        }
    }
    assert_eq!(shown.len(), operations);
    // Enums, ranges, patterns and shared headers are spelled out, resolved from their references.
    let text = |path: &str| shown.iter().find(|s| s["path"] == path).unwrap()["text"].as_str().unwrap().to_owned();
    let compress = text("/v1/compress");
    assert!(compress.contains(r#"one of "lossy", "lossless""#), "{compress}");
    assert!(compress.contains("≥ 1; ≤ 6"), "effort's range: {compress}");
    assert!(
        compress.contains("Retry-After") && compress.contains("X-RateLimit-Remaining") && compress.contains("X-Quality-Score"),
        "{compress}"
    );
    assert!(text("/compress-image").contains("pattern ^(pngquant|stdlib|)$"));

    // Everything came from this server, and its policy allows nothing else.
    let origin = server.url("");
    let fetched = browser.fetched().await;
    for url in &fetched {
        assert!(url.starts_with(&origin), "the API page fetched {url}");
    }
    for needed in ["/openapi.json", "/docs/docs.js", "/docs/docs.css"] {
        assert!(fetched.iter().any(|u| u.ends_with(needed)), "{needed} not fetched: {fetched:?}");
    }
    let page = http.get(server.url("/docs")).send().await.unwrap();
    let csp = page.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'none'") && csp.contains("script-src 'self'") && csp.contains("connect-src 'self'"), "{csp}");
    browser.close().await;
}
