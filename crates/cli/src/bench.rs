//! `compressor bench` (and the standalone `compressor-bench`): its flags, turned into the bench
//! library's [`Settings`], whose `Default` holds the defaults shown here.

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::LazyLock;

use clap::Args;
use compressor_bench::Settings;

static DEFAULTS: LazyLock<Settings> = LazyLock::new(Settings::default);

#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// Corpus folders, walked recursively; PNG and JPEG files are benchmarked, and animated GIFs
    /// and videos by the video categories (repeatable)
    #[arg(long, default_values_os_t = DEFAULTS.corpus.clone())]
    pub corpus: Vec<PathBuf>,
    /// Peers to run, comma-separated ids (default: all); ours always runs.
    /// Ids: oxipng-o2, oxipng-o4, optipng-o2, go-png, pngquant-65-80-s4, pngquant-60-80, jpegtran, cjpeg-q80, cwebp-q80, avifenc,
    /// vipsthumbnail-1280, vipsthumbnail-cover-300, gifsicle-o3, ffmpeg-x264-crf23, ffmpeg-svtav1;
    /// in the rd-* categories: sharp, pngquant, cjpeg, cwebp, avifenc, caesiumclt, rimage
    #[arg(long, value_delimiter = ',')]
    pub tools: Vec<String>,
    /// Categories to run, comma-separated (default: all but the video ones): lossless-png, lossy-png, jpeg-lossless,
    /// jpeg-lossy, webp, avif, service-lossy, service-lossy-scored, service-lossless, resize-1280, resize-cover-300;
    /// and, only when named, gif-mp4, video-mp4, video-webm (the last two on clips generated with ffmpeg),
    /// and the rate–distortion sweeps rd-png, rd-jpeg, rd-webp, rd-avif (BD-rates against sharp and the other peers)
    #[arg(long, value_delimiter = ',')]
    pub categories: Vec<String>,
    /// Timed runs per (image, method); the median is reported. Default 3 (1 with --quick)
    #[arg(long)]
    pub runs: Option<usize>,
    /// Write the full results (every record, summaries, goals) as JSON here
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write the Markdown report here (default: standard output)
    #[arg(long)]
    pub markdown: Option<PathBuf>,
    /// Write the SVG plot (bytes saved against time, per method and category) here
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// A few small images per corpus folder and one run: a smoke test
    #[arg(long)]
    pub quick: bool,
    /// Run nothing: render --markdown/--plot from the JSON of an earlier run
    #[arg(long)]
    pub from_json: Option<PathBuf>,
    /// The Go-style re-encoder (default: bench/go-png/go-png if it exists, else go-png on PATH)
    #[arg(long)]
    pub go_png: Option<PathBuf>,
    /// Look for peers here instead of $PATH (a PATH-style list)
    #[arg(long, hide = true)]
    pub search_path: Option<OsString>,
    /// Program that runs our engine as `PROG --engine-worker CATEGORY IN OUT` (default: this program)
    #[arg(long, hide = true)]
    pub engine_exe: Option<PathBuf>,
    /// Internal: compress IN to OUT with our settings for CATEGORY and exit
    #[arg(long, hide = true, num_args = 3, value_names = ["CATEGORY", "IN", "OUT"])]
    pub engine_worker: Option<Vec<PathBuf>>,
    /// Internal: start measured children on request (see `peers::Spawner`)
    #[arg(long, hide = true)]
    pub spawner: bool,
    /// sharp's job script, run by node once for the whole run (default: bench/sharp/encode.js,
    /// installed by scripts/install-bench-tools.sh)
    #[arg(long)]
    pub sharp: Option<PathBuf>,
    /// Write one SVG per rate–distortion category (bytes relative to the input against
    /// SSIMULACRA2, one line per tool) into this folder, as rd-png.svg, rd-jpeg.svg, …
    #[arg(long)]
    pub rd_plots: Option<PathBuf>,
}

impl From<BenchArgs> for Settings {
    fn from(args: BenchArgs) -> Self {
        Settings {
            corpus: args.corpus,
            tools: args.tools,
            categories: args.categories,
            runs: args.runs,
            json: args.json,
            markdown: args.markdown,
            plot: args.plot,
            quick: args.quick,
            from_json: args.from_json,
            go_png: args.go_png,
            search_path: args.search_path,
            engine_exe: args.engine_exe,
            engine_worker: args.engine_worker,
            spawner: args.spawner,
            sharp: args.sharp,
            rd_plots: args.rd_plots,
        }
    }
}
