//! From input bytes to the chosen output: same-format optimisation, conversion between formats,
//! `auto` (try several formats, keep the smallest), and the searches for a target quality or a
//! maximum size.

use crate::image::Image;
use crate::pixels::Pixels;
use crate::{
    Candidate, CandidateReport, Encoded, Error, Format, ImageInfo, Mode, Options, OutputFormat, avif, gif, jpeg, png, score, webp,
};

pub const DEFAULT_WEBP_QUALITY: u8 = 80;
pub const DEFAULT_AVIF_QUALITY: u8 = 70;

/// Most encodes one search may spend (bisection over quality 0-100 to within ~3 steps).
const MAX_SEARCH_ENCODES: usize = 7;

pub(crate) fn run(input: &[u8], info: &ImageInfo, options: &Options) -> Result<Encoded, Error> {
    let target = match options.format {
        OutputFormat::Keep => Some(info.format),
        OutputFormat::To(f) => Some(f),
        OutputFormat::Auto => None,
    };
    let searching = options.target_quality.is_some() || options.max_bytes.is_some();
    if options.mode == Mode::Lossless && options.target_quality.is_some() {
        return Err(Error::InvalidOptions { detail: "target_quality needs lossy mode (lossless output is exact)".into() });
    }
    if target == Some(info.format) && !searching {
        return optimise_same_format(input, info, options);
    }
    let source = decode(input, info, options)?;
    let formats = match target {
        Some(f) => vec![f],
        None => auto_formats(info.format, &source, options),
    };
    let mut candidates = Vec::new();
    let mut errors = Vec::new();
    for format in formats {
        let result = prepare(&source, info.format, format, options).and_then(|image| encode_for_goal(&image, format, options));
        match result {
            Ok(c) => candidates.push(c),
            Err(e) if target.is_none() => errors.push(format!("{format}: {e}")),
            Err(e) => return Err(e),
        }
    }
    choose(input, info, candidates, errors, options)
}

/// Picks the smallest candidate that meets the target (all meet it when there is none); under
/// `auto` the untouched input competes too, so `auto` never returns something larger.
fn choose(
    input: &[u8],
    info: &ImageInfo,
    mut candidates: Vec<Candidate>,
    errors: Vec<String>,
    options: &Options,
) -> Result<Encoded, Error> {
    if candidates.is_empty() {
        return Err(Error::unsupported(format!("no output format could encode this image: {}", errors.join("; "))));
    }
    let meets = |c: &Candidate| match (options.target_quality, c.score) {
        (Some(t), Some(s)) => s >= t,
        _ => true,
    };
    candidates.sort_by_key(|c| c.data.len());
    let best = candidates.iter().position(meets).unwrap_or(0);
    let reports: Vec<CandidateReport> = candidates.iter().map(Candidate::report).collect();
    let mut notes: Vec<String> = errors.iter().map(|e| format!("skipped {e}")).collect();
    let chosen = candidates.swap_remove(best);
    if options.format == OutputFormat::Auto && chosen.data.len() >= input.len() {
        notes.push("no candidate was smaller than the input; input kept".into());
        return Ok(Encoded { candidates: reports, ..Encoded::unchanged(input, info, notes) });
    }
    if !meets(&chosen) {
        notes.push(format!("no candidate reached the target quality; returning the smallest ({})", chosen.format));
    }
    let mut encoded = chosen.into_encoded();
    encoded.notes.splice(0..0, notes);
    if reports.len() > 1 || options.format == OutputFormat::Auto {
        encoded.candidates = reports;
    }
    Ok(encoded)
}

/// The format's own optimiser: lossless re-encodings are verified, lossy ones scored.
fn optimise_same_format(input: &[u8], info: &ImageInfo, options: &Options) -> Result<Encoded, Error> {
    match info.format {
        Format::Png => png::compress(input, info, options),
        Format::Jpeg => jpeg::compress(input, info, options),
        Format::Gif | Format::WebP => {
            let source = decode(input, info, options)?;
            let mut candidate = encode_for_goal(&source, info.format, options)?;
            // Palette quantization can lose to the exact re-encoding on already-paletted GIFs.
            if info.format == Format::Gif && !candidate.lossless {
                let exact = encode_for_goal(&source, info.format, &Options { mode: Mode::Lossless, ..options.clone() });
                if let Ok(exact) = exact
                    && exact.data.len() <= candidate.data.len()
                {
                    candidate = exact;
                }
            }
            // Lossless re-encodings must decode to the same frames, timing and loop count.
            if candidate.lossless && decode_output(&candidate.data, info.format, options).ok().as_ref() != Some(&source) {
                return Ok(Encoded::unchanged(input, info, vec!["re-encoded frames did not match the input exactly; input kept".into()]));
            }
            Ok(candidate.into_encoded())
        }
        // AVIF is lossy only: re-encode at the quality asked for; lossless mode keeps the input.
        Format::Avif if options.mode == Mode::Lossless => {
            Ok(Encoded::unchanged(input, info, vec!["AVIF cannot be re-encoded losslessly by this build; input kept".into()]))
        }
        Format::Avif => {
            let source = decode(input, info, options)?;
            Ok(encode_for_goal(&source, info.format, options)?.into_encoded())
        }
    }
}

pub(crate) fn decode(input: &[u8], info: &ImageInfo, options: &Options) -> Result<Image, Error> {
    match info.format {
        Format::Png => png::decode_image(input, options),
        Format::Jpeg => jpeg::decode_image(input),
        Format::Gif => gif::decode(input, &options.limits),
        Format::WebP => webp::decode(input, &options.limits),
        Format::Avif => avif::decode(input, &options.limits),
    }
}

/// Decodes bytes this engine just produced (for scores and verification).
fn decode_output(data: &[u8], format: Format, options: &Options) -> Result<Image, Error> {
    let info = crate::format::probe(data)?;
    let mut image = decode(data, &info, &Options { first_frame: true, ..options.clone() })?;
    if format == Format::Png || format == Format::Jpeg {
        image.orientation = 1; // compare pixels as stored
    }
    Ok(image)
}

/// Formats `auto` tries: the caller's list, or WebP, AVIF and the input's own; minus those that
/// cannot hold this image (animation into still-only formats, lossless into lossy-only ones).
fn auto_formats(input: Format, image: &Image, options: &Options) -> Vec<Format> {
    let mut formats = if options.auto_formats.is_empty() { vec![Format::WebP, Format::Avif, input] } else { options.auto_formats.clone() };
    formats.dedup();
    formats.retain(|&f| {
        let still_only = matches!(f, Format::Png | Format::Jpeg | Format::Avif);
        let lossy_only = matches!(f, Format::Jpeg | Format::Avif);
        let cannot_animate = image.is_animated() && still_only && !options.first_frame;
        let cannot_be_exact = options.mode == Mode::Lossless && lossy_only;
        !cannot_animate && !cannot_be_exact
    });
    formats
}

/// Makes the decoded image fit the target format: upright pixels when converting, first frame
/// for still-only formats (only when allowed), flattened alpha for JPEG.
fn prepare(source: &Image, from: Format, to: Format, options: &Options) -> Result<Image, Error> {
    let mut image = source.clone();
    if to != from {
        image = image.apply_orientation();
    }
    if image.is_animated() && matches!(to, Format::Png | Format::Jpeg | Format::Avif) {
        if !options.first_frame {
            return Err(Error::unsupported(format!(
                "animated input ({} frames) into still-only {to}: pass --first-frame to keep the first frame",
                image.frames.len()
            )));
        }
        image = image.into_first_frame();
    }
    if to == Format::Jpeg && image.has_alpha() {
        image = image.flatten(options.background);
    }
    Ok(image)
}

/// One encoding of the image in one format, with what it cost in quality.
fn encode_at(image: &Image, format: Format, quality: u8, lossless: bool, options: &Options) -> Result<Vec<u8>, Error> {
    match (format, lossless) {
        (Format::Png, true) => png::encode_lossless(image, options),
        (Format::Png, false) => png::encode_quantized(image, quality, options),
        (Format::Jpeg, true) => Err(Error::unsupported("JPEG cannot store decoded pixels losslessly; use lossy mode or another format")),
        (Format::Jpeg, false) => jpeg::encode_image(image, quality, options),
        (Format::WebP, _) => webp::encode(image, &webp::Settings { lossless, quality, effort: options.effort }),
        (Format::Avif, _) => avif::encode(image, quality, options.effort, if lossless { Mode::Lossless } else { Mode::Lossy }),
        (Format::Gif, true) => {
            gif::encode_exact(image)?.ok_or_else(|| Error::unsupported("a frame has more than 255 colours: GIF cannot hold it losslessly"))
        }
        (Format::Gif, false) => gif::encode_exact(&gif::quantize(image, quality, options.effort)?)?
            .ok_or_else(|| Error::internal("quantized GIF frames still exceed 255 colours")),
    }
}

fn default_quality(format: Format, options: &Options) -> u8 {
    options.quality.map(|q| q.max).unwrap_or(match format {
        Format::Png => png::DEFAULT_QUALITY.max,
        Format::Jpeg => jpeg::DEFAULT_QUALITY,
        Format::WebP => DEFAULT_WEBP_QUALITY,
        Format::Avif => DEFAULT_AVIF_QUALITY,
        Format::Gif => png::DEFAULT_QUALITY.max,
    })
}

/// SSIMULACRA2 of `data` (in `format`) against `reference`, on the first frame.
fn score_of(reference: &Pixels, data: &[u8], format: Format, options: &Options) -> Option<f64> {
    let decoded = decode_output(data, format, options).ok()?;
    score::ssimulacra2(reference, decoded.first())
}

fn encode_for_goal(image: &Image, format: Format, options: &Options) -> Result<Candidate, Error> {
    let lossless = options.mode == Mode::Lossless;
    let candidate = |data: Vec<u8>, quality: Option<u8>, score: Option<f64>, notes: Vec<String>| Candidate {
        format,
        width: image.width,
        height: image.height,
        method: match quality {
            Some(q) => format!("{format}-q{q}"),
            None => format!("{format}-lossless"),
        },
        data,
        score,
        lossless: quality.is_none(),
        notes,
    };
    if lossless {
        let data = encode_at(image, format, 100, true, options)?;
        if let Some(max) = options.max_bytes.filter(|&m| data.len() as u64 > m) {
            return Err(Error::CannotFit { max_bytes: max, smallest: data.len() as u64 });
        }
        return Ok(candidate(data, None, None, vec![]));
    }
    if let Some(target) = options.target_quality {
        let Searched { data, quality, score, notes } = search_target_quality(image, format, target, options)?;
        if let Some(max) = options.max_bytes.filter(|&m| data.len() as u64 > m) {
            return Err(Error::CannotFit { max_bytes: max, smallest: data.len() as u64 });
        }
        return Ok(candidate(data, Some(quality), score, notes));
    }
    if let Some(max) = options.max_bytes {
        let (data, quality) = search_max_bytes(image, format, max, options)?;
        let score = options.score.then(|| score_of(image.first(), &data, format, options)).flatten();
        return Ok(candidate(data, Some(quality), score, vec![]));
    }
    let quality = default_quality(format, options);
    let data = encode_at(image, format, quality, false, options)?;
    let score = options.score.then(|| score_of(image.first(), &data, format, options)).flatten();
    Ok(candidate(data, Some(quality), score, vec![]))
}

/// The outcome of a target-quality search.
struct Searched {
    data: Vec<u8>,
    quality: u8,
    score: Option<f64>,
    notes: Vec<String>,
}

/// Smallest output whose score reaches `target`: bisection over the quality setting. Large
/// images are searched on a proxy made of the tiles the score samples (so each step costs a
/// fraction of a full encode), then encoded once in full and checked.
fn search_target_quality(image: &Image, format: Format, target: f64, options: &Options) -> Result<Searched, Error> {
    let proxy = score::proxy(image.first()).map(|p| Image { width: p.width, height: p.height, ..Image::still(p) });
    let probe = proxy.as_ref().unwrap_or(image);
    let evaluate = |q: u8| -> Result<(Vec<u8>, Option<f64>), Error> {
        let data = encode_at(probe, format, q, false, options)?;
        let score = score_of(probe.first(), &data, format, options);
        Ok((data, score))
    };
    let (mut low, mut high) = (0u8, 100u8); // low fails (assumed), high passes (to be shown)
    let mut best: Option<(u8, Vec<u8>, Option<f64>)> = None;
    for _ in 0..MAX_SEARCH_ENCODES - 1 {
        if high - low <= 3 {
            break;
        }
        let mid = low + (high - low) / 2;
        let (data, score) = evaluate(mid)?;
        let Some(s) = score else {
            return Err(Error::unsupported(format!(
                "{format} output cannot be scored by this build, so a target quality cannot be searched"
            )));
        };
        if s >= target {
            high = mid;
            best = Some((mid, data, score));
        } else {
            low = mid;
        }
    }
    let mut notes = Vec::new();
    let (mut quality, data, score) = match best {
        Some(b) => b,
        None => {
            let (data, score) = evaluate(100)?;
            if score.is_none_or(|s| s < target) {
                notes.push(format!("target quality {target} not reached; best score {:.1} at quality 100", score.unwrap_or(f64::NAN)));
            }
            (100, data, score)
        }
    };
    if proxy.is_none() {
        return Ok(Searched { data, quality, score, notes });
    }
    // Encode the full image at the quality found on the proxy; step up if the full image falls short.
    for attempt in 0.. {
        let data = encode_at(image, format, quality, false, options)?;
        let score = score_of(image.first(), &data, format, options);
        if quality >= 100 || score.is_some_and(|s| s >= target) || attempt == 2 {
            return Ok(Searched { data, quality, score, notes });
        }
        notes.push(format!("full image scored {:.1} at quality {quality}, below {target}; raised by 5", score.unwrap_or(f64::NAN)));
        quality = (quality + 5).min(100);
    }
    unreachable!("the loop returns by its third attempt")
}

/// Best quality whose output fits in `max_bytes`: bisection over the quality setting.
fn search_max_bytes(image: &Image, format: Format, max_bytes: u64, options: &Options) -> Result<(Vec<u8>, u8), Error> {
    let fits = |data: &[u8]| data.len() as u64 <= max_bytes;
    // low fits, high does not; both start as assumptions.
    let (mut low, mut high): (i16, i16) = (-1, 101);
    let mut best: Option<(u8, Vec<u8>)> = None;
    let mut smallest = u64::MAX;
    for _ in 0..MAX_SEARCH_ENCODES {
        if high - low <= 1 {
            break;
        }
        let mid = ((low + high) / 2) as u8;
        let data = encode_at(image, format, mid, false, options)?;
        smallest = smallest.min(data.len() as u64);
        if fits(&data) {
            low = i16::from(mid);
            best = Some((mid, data));
        } else {
            high = i16::from(mid);
        }
    }
    if best.is_none() {
        let data = encode_at(image, format, 0, false, options)?;
        smallest = smallest.min(data.len() as u64);
        if !fits(&data) {
            return Err(Error::CannotFit { max_bytes, smallest });
        }
        best = Some((0, data));
    }
    let (quality, data) = best.unwrap();
    Ok((data, quality))
}
