//! `POST /v1/video/compress`: the video service. The upload is streamed to a temporary file
//! (never held in memory) before it asks for a place in the video pool, so slow uploads keep no
//! other video out (uploads read at once are counted instead, which bounds their disk), then
//! transcoded by `compressor-video` (ffmpeg) on the pool, and the result streamed back from its
//! file. The work is cancelled, its child killed and its files
//! removed when the client goes away or the request times out.

use std::path::Path;

use axum::body::Body;
use axum::extract::{FromRequest, Multipart, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use compressor_video::{Choices, Limits, Options, Report};
use http_body_util::BodyExt;
use serde::Deserialize;
use tokio::io::AsyncWriteExt;

use super::upload;
use crate::AppState;
use crate::config::VideoConfig;
use crate::error::{ApiError, write_error};

pub const ROUTE: &str = "/v1/video/compress";

/// Query parameters; the same spellings as the command line's flags.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct VideoParams {
    /// `keep` (default: WebM stays WebM, everything else, GIFs included, becomes MP4), `mp4`
    /// (H.264 + AAC, plays everywhere) or `webm` (VP9 + Opus)
    #[param(value_type = Option<VideoFormatName>, inline, example = "mp4")]
    pub format: Option<String>,
    /// 0-100, higher is better, mapped to the codec's CRF (default: x264 CRF 23, VP9 CRF 32)
    #[param(minimum = 0, maximum = 100)]
    pub quality: Option<u8>,
    /// `false` drops the audio track
    pub audio: Option<bool>,
    /// Searches the CRF for the smallest output whose mean SSIMULACRA2 on frames sampled across
    /// the video is at least this (0-100; `quality` is then ignored); `X-Quality-Score` reports it
    #[param(minimum = 0, maximum = 100)]
    pub target_quality: Option<f64>,
}

/// The video formats, for the document (parsed ignoring case).
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum VideoFormatName {
    Keep,
    Mp4,
    Webm,
}

/// Raw video bytes.
#[derive(utoipa::ToSchema)]
#[schema(value_type = String, format = Binary)]
#[allow(dead_code)]
pub struct VideoBytes(Vec<u8>);

/// The multipart form accepted by `POST /v1/video/compress`.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct VideoForm {
    /// The video file
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
}

/// Compress one video, or turn an animated GIF into a video.
///
/// The video is the raw request body or the `file` field of a `multipart/form-data` form (MP4,
/// MOV, WebM, Matroska or GIF, recognised by content). The answer streams the compressed video;
/// when nothing smaller is found in the same container the upload comes back unchanged.
#[utoipa::path(
    post,
    path = "/v1/video/compress",
    tag = "video",
    params(VideoParams),
    request_body(
        description = "The video, raw or as the `file` field of a multipart form",
        content(
            (VideoBytes = "application/octet-stream"),
            (VideoBytes = "video/*"),
            (VideoBytes = "image/gif"),
            (VideoForm = "multipart/form-data"),
        ),
    ),
    responses(
        (status = 200, description = "The compressed video",
            headers(
                ("X-Original-Size" = u64, description = "Upload size in bytes"),
                ("X-Compressed-Size" = u64, description = "Output size in bytes"),
                ("X-Compression-Ratio" = f64, description = "Output size / upload size"),
                ("X-Compression-Method" = String, description = "For example `h264-crf23`, or `unchanged`"),
                ("X-Processing-Ms" = u64, description = "Probe and transcode time in milliseconds"),
                ("X-Video-Size" = String, description = "Output width x height as displayed, for example `1280x720`"),
                ("X-Video-Codec" = String, description = "`h264` or `vp9` (or the input's codec when unchanged)"),
                ("X-Audio-Codec" = String, description = "`aac` or `opus` (absent without audio)"),
                ("X-Duration-Seconds" = f64, description = "Duration of the video"),
                ("X-Quality-Score" = f64, description = "With `target_quality`: the mean SSIMULACRA2 the search reached"),
                ("X-Compression-Notes" = String, description = "Decisions worth telling a user about, `; `-separated (absent when none)"),
                ("Content-Disposition" = String, description = "attachment with a safe file name"),
            ),
            content(
                (VideoBytes = "video/mp4"),
                (VideoBytes = "video/webm"),
            )),
    ),
    security((), ("bearer" = []), ("api_key" = [])),
)]
pub async fn compress_video(State(state): State<AppState>, request: Request) -> Result<Response, ApiError> {
    let params = Query::<VideoParams>::try_from_uri(request.uri())
        .map_err(|e| ApiError::Refused { code: "invalid_options", message: e.body_text() })?
        .0;
    let video = state.config.video.clone().ok_or_else(|| ApiError::Internal("video route without video config".into()))?;
    let pool = state.video_pool.clone().ok_or_else(|| ApiError::Internal("video route without video pool".into()))?;
    let options = options(&params, &video)?;

    let uploading = pool.try_start_upload()?;
    let temp_dir = video.temp_dir.clone().unwrap_or_else(std::env::temp_dir);
    let upload = read_video(request, video.max_body_bytes, &temp_dir).await?;
    drop(uploading);
    state.metrics.bytes_in(ROUTE, upload.size as usize);
    let admission = pool.try_admit()?;

    let cancel = compressor_engine::CancelOnDrop(options.cancel.clone());
    let input = upload.file;
    let (input, compressed) = pool
        .run(admission, 0, move || {
            let result = compressor_video::compress(input.path(), &options);
            (input, result)
        })
        .await?;
    let compressed = compressed.map_err(ApiError::from)?;
    drop(cancel);

    let report = compressed.report;
    // The file to send: the new one, or the upload itself when nothing smaller was found. Its
    // open handle keeps the data readable after the temporary file's name is removed.
    let file = match compressed.output {
        Some(output) => output.reopen(),
        None => input.reopen(),
    }
    .map_err(|e| ApiError::Internal(format!("reopening the result: {e}")))?;
    state.metrics.bytes_out(ROUTE, report.output_size as usize);
    state.metrics.compression_ratio(report.format.extension(), report.output_size as f64 / report.input_size.max(1) as f64);

    let filename = upload::output_filename(upload.filename.as_deref(), report.format.extension());
    let headers = answer_headers(&report, &filename)?;
    let stream = tokio_util::io::ReaderStream::with_capacity(tokio::fs::File::from_std(file), 256 * 1024);
    Ok((headers, Body::from_stream(stream)).into_response())
}

/// The request's choices, checked before the upload is taken; the limits are the service's.
fn options(params: &VideoParams, video: &VideoConfig) -> Result<Options, ApiError> {
    let choices = Choices {
        format: params.format.as_deref().map(str::parse).transpose()?,
        quality: params.quality,
        target_quality: params.target_quality,
        audio: params.audio,
    };
    Ok(Options {
        limits: Limits { max_input_bytes: video.max_body_bytes, ..Limits::DEFAULT },
        timeout: video.timeout,
        temp_dir: video.temp_dir.clone(),
        ..choices.options()?
    })
}

/// The answer's headers: the video's type and name, and what the transcode did.
fn answer_headers(report: &Report, filename: &str) -> Result<HeaderMap, ApiError> {
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(report.format.mime_type()));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(report.output_size));
    let disposition = format!("attachment; filename=\"{filename}\"");
    headers.insert(header::CONTENT_DISPOSITION, HeaderValue::from_str(&disposition).map_err(|e| ApiError::Internal(e.to_string()))?);
    headers.insert("x-original-size", HeaderValue::from(report.input_size));
    headers.insert("x-compressed-size", HeaderValue::from(report.output_size));
    headers.insert("x-compression-ratio", super::v1::decimal(report.output_size as f64 / report.input_size.max(1) as f64, 4));
    let text = |value: &str| HeaderValue::from_str(value).ok();
    let mut insert = |name: &'static str, value: Option<HeaderValue>| {
        if let Some(value) = value {
            headers.insert(name, value);
        }
    };
    insert("x-compression-method", text(&report.method));
    insert("x-processing-ms", Some(HeaderValue::from(report.ms)));
    insert("x-video-size", Some(super::v1::size_header(report.width, report.height)));
    insert("x-video-codec", text(&report.video_codec));
    insert("x-audio-codec", report.audio_codec.as_deref().and_then(text));
    insert("x-duration-seconds", Some(super::v1::decimal(report.duration_seconds, 3)));
    insert("x-quality-score", report.score.map(|score| super::v1::decimal(score, 2)));
    let notes: String = report.notes.join("; ").chars().map(|c| if c.is_ascii_graphic() || c == ' ' { c } else { '_' }).collect();
    insert("x-compression-notes", (!notes.is_empty()).then(|| text(&notes)).flatten());
    Ok(headers)
}

/// An upload on disk.
struct VideoUpload {
    file: tempfile::NamedTempFile,
    size: u64,
    filename: Option<String>,
}

/// The video of a request (the `file` field of a multipart form, or else the raw body), written
/// chunk by chunk to a temporary file in `dir` that is removed when dropped (also when the
/// client goes away mid-upload). Images are refused here with the route that takes them.
async fn read_video(request: Request, max_bytes: u64, dir: &Path) -> Result<VideoUpload, ApiError> {
    let file = tempfile::Builder::new()
        .prefix(".compressor-upload-")
        .tempfile_in(dir)
        .map_err(|e| write_error(&e, &format!("creating a temporary file in {}", dir.display())))?;
    let writer = file.reopen().map_err(|e| ApiError::Internal(format!("opening the temporary file: {e}")))?;
    let mut sink = Sink { out: tokio::io::BufWriter::new(tokio::fs::File::from_std(writer)), size: 0, head: Vec::new() };
    let max = usize::try_from(max_bytes).unwrap_or(usize::MAX);
    let filename = if upload::is_multipart(request.headers()) {
        let mut multipart = Multipart::from_request(request, &())
            .await
            .map_err(|e| ApiError::Refused { code: "invalid_multipart", message: e.body_text() })?;
        let mut found = None;
        while let Some(mut part) = multipart.next_field().await.map_err(|e| upload::multipart_error(e, max))? {
            if !upload::is_file_field(part.name(), "file", found.is_some(), upload::OtherFields::Refused)? {
                continue;
            }
            found = Some(part.file_name().map(str::to_owned));
            while let Some(chunk) = part.chunk().await.map_err(|e| upload::multipart_error(e, max))? {
                sink.write(&chunk).await?;
            }
        }
        found.ok_or_else(|| ApiError::Refused {
            code: "missing_file",
            message: "the multipart form has no field named \"file\" holding the video".into(),
        })?
    } else {
        let mut body = request.into_body();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| upload::body_error(&*e.into_inner(), max))?;
            if let Some(data) = frame.data_ref() {
                sink.write(data).await?;
            }
        }
        None
    };
    sink.out.flush().await.map_err(|e| write_error(&e, "writing the upload"))?;
    if sink.size == 0 {
        // As on the image routes, where an empty body is no format the engine reads.
        return Err(ApiError::Refused { code: "unsupported_format", message: "the request body is empty: it holds no video".into() });
    }
    if let Some(format) = compressor_engine::detect(&sink.head).filter(|f| *f != compressor_engine::Format::Gif) {
        return Err(ApiError::Refused {
            code: "unsupported_format",
            message: format!("this is a {format} image, not a video: send images to POST {}", super::v1::ROUTE),
        });
    }
    Ok(VideoUpload { file, size: sink.size, filename })
}

struct Sink {
    out: tokio::io::BufWriter<tokio::fs::File>,
    size: u64,
    /// The first bytes, to recognise images sent to the video route.
    head: Vec<u8>,
}

impl Sink {
    async fn write(&mut self, data: &[u8]) -> Result<(), ApiError> {
        if self.head.len() < 16 {
            self.head.extend_from_slice(&data[..data.len().min(16 - self.head.len())]);
        }
        self.size += data.len() as u64;
        self.out.write_all(data).await.map_err(|e| write_error(&e, "writing the upload"))
    }
}
