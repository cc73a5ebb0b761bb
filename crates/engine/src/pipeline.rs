//! From input bytes to the chosen output: same-format optimisation, conversion between formats,
//! `auto` (try several formats, keep the smallest), and the searches for a target quality or a
//! maximum size.

use crate::codecs::{self, encode_plain, score_of};
use crate::error::Error;
use crate::format::{Format, ImageInfo};
use crate::image::Image;
use crate::image::color::{self, Output, ProfileAction};
use crate::options::{Fit, Mode, Options, OutputFormat, Resize};
use crate::resize;
use crate::result::{Candidate, CandidateReport, Encoded};
use crate::score;

/// Most encodes one search may spend (bisection over quality 0-100 to within ~3 steps).
const MAX_SEARCH_ENCODES: usize = 7;

/// A target-quality search stops at a passing result scoring at most this much above the target:
/// less than one quality step moves the score on most images.
const CLOSE_ENOUGH: f64 = 1.0;

/// Score points per quality step assumed before a second measurement gives the slope (about
/// what JPEG, WebP and AVIF show around their defaults).
const ASSUMED_SCORE_PER_QUALITY: f64 = 0.6;

pub(crate) fn run(input: &[u8], info: &ImageInfo, options: &Options) -> Result<Encoded, Error> {
    if keeps_format(input, info, options)? && options.resize.is_none() {
        return codecs::optimise(input, info, options);
    }
    let Some(request) = &options.resize else {
        return at_full_size(input, info, &codecs::decode(input, info, options)?, options);
    };
    let shrink = decode_shrink(input, info, request)?;
    let source = codecs::decode_shrunk(input, info, options, shrink)?;
    let (width, height) = whole_upright_size(info, &source, shrink);
    let plan = resize::plan(width, height, request);
    let mut notes = Vec::new();
    if plan.not_enlarged {
        notes.push(format!("not enlarged beyond the image's {width}x{height} (allow enlarge to upscale)"));
    }
    let mut encoded = if plan.keeps(width, height) {
        at_full_size(input, info, &source, options)?
    } else {
        resize::check_limits(&plan, &options.limits)?;
        notes.push(resized_note(width, height, &plan, request.fit));
        if shrink > 1 {
            notes.push(shrunk_note(shrink));
        }
        let upright = source.apply_orientation();
        let plan = plan.on_source((width, height), (upright.width, upright.height));
        let resized = resize::apply(&upright, &plan)?;
        options.cancel.check()?;
        Encoded { resized_from: Some((width, height)), ..convert(&resized, None, info, options)? }
    };
    encoded.notes.splice(0..0, notes);
    Ok(encoded)
}

/// How much smaller a resize may decode the image: a JPEG's DCT scaling by 1/2, 1/4 or 1/8 costs
/// far less than decoding every pixel (libvips' shrink-on-load), but it averages in sRGB, so it
/// is used only while Lanczos3 keeps at least [`JPEG_SHRINK_HEADROOM`]× of the reduction to do
/// in linear light.
fn decode_shrink(input: &[u8], info: &ImageInfo, request: &Resize) -> Result<u32, Error> {
    if info.format != Format::Jpeg {
        return Ok(1);
    }
    let (width, height) = upright(info.width, info.height, codecs::jpeg::orientation(input)?);
    let plan = resize::plan(width, height, request);
    let reduction = f64::min(plan.region.width / f64::from(plan.width.max(1)), plan.region.height / f64::from(plan.height.max(1)));
    Ok([8, 4, 2].into_iter().find(|&s| f64::from(s) * JPEG_SHRINK_HEADROOM <= reduction).unwrap_or(1))
}

/// A width and height as displayed under an EXIF orientation.
fn upright(width: u32, height: u32, orientation: u16) -> (u32, u32) {
    if (5..=8).contains(&orientation) { (height, width) } else { (width, height) }
}

/// The whole image's size as displayed: the decode's own, or the header's when the decode was
/// shrunk.
fn whole_upright_size(info: &ImageInfo, source: &Image, shrink: u32) -> (u32, u32) {
    if shrink == 1 { upright_size(source) } else { upright(info.width, info.height, source.orientation) }
}

/// The part of a resize left to Lanczos3 in linear light when a JPEG is decoded shrunk.
const JPEG_SHRINK_HEADROOM: f64 = 1.5;

/// One encoding per width, resized from a single decode of the input (for `srcset` variants).
/// Widths beyond the image's own are skipped unless `enlarge`; a width equal to it is the image
/// at full size. Returns each width's result in order, `None` for the skipped ones.
pub(crate) fn variants(
    input: &[u8],
    info: &ImageInfo,
    widths: &[u32],
    enlarge: bool,
    options: &Options,
) -> Result<Vec<Option<Encoded>>, Error> {
    let request = |w: u32| Resize::variant(w, enlarge);
    for &w in widths {
        request(w).validate()?;
    }
    // One decode for all: as small as the widest variant that will be made allows.
    let shrink = match info.format {
        Format::Jpeg => {
            let (width, _) = upright(info.width, info.height, codecs::jpeg::orientation(input)?);
            match widths.iter().copied().filter(|&w| enlarge || w <= width).max() {
                Some(widest) if widest < width => decode_shrink(input, info, &request(widest))?,
                _ => 1,
            }
        }
        _ => 1,
    };
    let source = codecs::decode_shrunk(input, info, options, shrink)?;
    let (width, height) = whole_upright_size(info, &source, shrink);
    // Every variant within the limits before any is made.
    let plans: Vec<_> = widths.iter().map(|&w| resize::plan(width, height, &request(w))).collect();
    for plan in plans.iter().filter(|p| !p.not_enlarged && !p.keeps(width, height)) {
        resize::check_limits(plan, &options.limits)?;
    }
    let upright = source.clone().apply_orientation();
    plans
        .into_iter()
        .map(|plan| {
            if plan.not_enlarged {
                return Ok(None);
            }
            if plan.keeps(width, height) {
                return at_full_size(input, info, &source, options).map(Some);
            }
            let resized = resize::apply(&upright, &plan.on_source((width, height), (upright.width, upright.height)))?;
            let mut encoded = Encoded { resized_from: Some((width, height)), ..convert(&resized, None, info, options)? };
            encoded.notes.insert(0, resized_note(width, height, &plan, Fit::Scale));
            if shrink > 1 {
                encoded.notes.insert(1, shrunk_note(shrink));
            }
            Ok(Some(encoded))
        })
        .collect()
}

/// The output keeps the input's format and no search is asked for: the format's own optimiser,
/// unless the colour policy needs the pixels converted, which only a re-encoding can do.
fn keeps_format(input: &[u8], info: &ImageInfo, options: &Options) -> Result<bool, Error> {
    let searching = options.target_quality.is_some() || options.max_bytes.is_some();
    let target = if let OutputFormat::To(f) = options.format { f } else { info.format };
    if options.format == OutputFormat::Auto || target != info.format || !info.format.writable() || searching {
        return Ok(false);
    }
    let icc = codecs::embedded_icc(input, info)?;
    Ok(color::decide(icc.as_deref(), info.format, Output::SameFile, options) != ProfileAction::Convert)
}

/// What `keep` means for a format the engine only reads: TIFF and BMP become PNG (lossless in
/// lossless mode; in lossy mode what a PNG of the same pixels would become, quantized when that
/// meets the quality); HEIC becomes what `auto` would pick among JPEG, WebP and AVIF.
fn kept_as(format: Format) -> Option<Format> {
    match format {
        Format::Tiff | Format::Bmp => Some(Format::Png),
        Format::Heic => None,
        f => Some(f),
    }
}

/// The formats a HEIC input kept (`keep`) is converted to: the web's photo formats.
const HEIC_KEPT_AS: [Format; 3] = [Format::Jpeg, Format::WebP, Format::Avif];

/// A lossy PNG of `image`, made as a PNG input would be: written losslessly, then optimised by
/// the PNG codec (quantized when that meets the quality, else the lossless file).
fn as_lossy_png(image: &Image, options: &Options) -> Result<Encoded, Error> {
    let lossless = codecs::png::encode_lossless(image, options)?;
    let info = ImageInfo { format: Format::Png, width: image.width, height: image.height };
    codecs::png::compress(&lossless, &info, options)
}

/// The image at its own size: optimised in its format, or converted from the decoded `source`.
fn at_full_size(input: &[u8], info: &ImageInfo, source: &Image, options: &Options) -> Result<Encoded, Error> {
    if keeps_format(input, info, options)? { codecs::optimise(input, info, options) } else { convert(source, Some(input), info, options) }
}

/// Width and height as displayed (after the EXIF orientation).
fn upright_size(image: &Image) -> (u32, u32) {
    upright(image.width, image.height, image.orientation)
}

fn shrunk_note(shrink: u32) -> String {
    format!("JPEG decoded at 1/{shrink} scale (libjpeg's scaled inverse DCT) before resizing")
}

fn resized_note(width: u32, height: u32, plan: &resize::Plan, fit: Fit) -> String {
    let crop = if plan.region.width < f64::from(width) || plan.region.height < f64::from(height) {
        format!(", centred crop of {:.0}x{:.0}", plan.region.width, plan.region.height)
    } else {
        String::new()
    };
    let how = match fit {
        Fit::Scale => "aspect kept",
        Fit::Inside => "fit inside the box",
        Fit::Cover => "cover",
        Fit::Fill => "stretched",
    };
    format!("resized {width}x{height} to {}x{} ({how}{crop}; Lanczos3 in linear light)", plan.width, plan.height)
}

/// Encodes decoded pixels in the target format, or under `auto` in each candidate format keeping
/// the smallest. `input` is the original file when `source` is its full-size decode: `auto` then
/// keeps it if nothing beats it.
fn convert(source: &Image, input: Option<&[u8]>, info: &ImageInfo, options: &Options) -> Result<Encoded, Error> {
    let target = match options.format {
        OutputFormat::Keep => kept_as(info.format),
        OutputFormat::To(f) => Some(f),
        OutputFormat::Auto => None,
    };
    let mut notes = source.notes.clone();
    if options.format == OutputFormat::Keep && !info.format.writable() {
        notes.push(match target {
            Some(f) => format!("{} is not written: converted to {f} (the output for {} kept)", info.format, info.format),
            None => format!("{} is not written: converted to the smallest of JPEG, WebP and AVIF, as auto would choose", info.format),
        });
    }
    // The input competes (auto keeps it when nothing is smaller) only in a format the web takes.
    let input = input.filter(|_| info.format.writable());
    let searching = options.target_quality.is_some() || options.max_bytes.is_some();
    let png_made_as_png = !info.format.writable() || info.format == Format::Png;
    if target == Some(Format::Png) && png_made_as_png && options.mode == Mode::Lossy && !searching {
        let image = prepare(source, info.format, Format::Png, options)?;
        let mut encoded = as_lossy_png(&image, options)?;
        encoded.notes.splice(0..0, notes.into_iter().chain(image.notes));
        return Ok(encoded);
    }
    let formats = match target {
        Some(f) => vec![f],
        None => can_hold(requested_formats(info.format, options), source, options),
    };
    let mut candidates = Vec::new();
    let mut errors = Vec::new();
    for format in formats {
        let result = prepare(source, info.format, format, options).and_then(|image| {
            let mut candidate = encode_for_goal(&image, format, options)?;
            candidate.notes.splice(0..0, image.notes);
            Ok(candidate)
        });
        match result {
            Ok(c) => candidates.push(c),
            Err(e) if target.is_none() => errors.push(format!("{format}: {e}")),
            Err(e) => return Err(e),
        }
    }
    let mut encoded = choose(input, info, candidates, errors, options)?;
    encoded.notes.splice(0..0, notes);
    Ok(encoded)
}

/// Picks the smallest candidate that meets the target (all meet it when there is none); under
/// `auto` the untouched input competes too, so `auto` never returns something larger.
fn choose(
    input: Option<&[u8]>,
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
    if let Some(input) = input
        && options.format == OutputFormat::Auto
        && chosen.data.len() >= input.len()
    {
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

/// The formats a request may produce from an input in `input`, before the image is seen: the
/// format asked for, the one `keep` makes, or `auto`'s candidates (the caller's list, or WebP,
/// AVIF and the input's own, an unwritable one stood in for by its nearest writable one). The one
/// rule, which the memory estimate reads too.
pub(crate) fn requested_formats(input: Format, options: &Options) -> Vec<Format> {
    match (options.format, kept_as(input)) {
        (OutputFormat::To(f), _) | (OutputFormat::Keep, Some(f)) => vec![f],
        (OutputFormat::Keep, None) => HEIC_KEPT_AS.to_vec(),
        (OutputFormat::Auto, _) if !options.auto_formats.is_empty() => options.auto_formats.clone(),
        (OutputFormat::Auto, own) => vec![Format::WebP, Format::Avif, own.unwrap_or(Format::Jpeg)],
    }
}

/// Candidates minus those that cannot hold this image: animation into still-only formats
/// (unless the first frame is allowed), lossless results into lossy-only ones.
fn can_hold(mut formats: Vec<Format>, image: &Image, options: &Options) -> Vec<Format> {
    formats.dedup();
    formats.retain(|&f| {
        let cannot_animate = image.is_animated() && !f.writes_animation() && !options.first_frame;
        let cannot_be_exact = options.mode == Mode::Lossless && f.lossy_only();
        !cannot_animate && !cannot_be_exact
    });
    formats
}

/// Makes the decoded image fit the target format: upright pixels when converting (and for PNG,
/// whose encoders write no orientation), first frame for still-only formats (only when allowed),
/// flattened alpha for JPEG, colours as the colour policy says. Its notes are what this did
/// that the report should say.
fn prepare(source: &Image, from: Format, to: Format, options: &Options) -> Result<Image, Error> {
    let mut image = source.clone();
    image.notes.clear();
    if to != from || to == Format::Png {
        image = image.apply_orientation();
    }
    if image.is_animated() && !to.writes_animation() {
        if !options.first_frame {
            return Err(Error::needs(
                "first_frame",
                format!("{to} holds one picture and this animation has {} frames, so all but the first would be lost", image.frames.len()),
            ));
        }
        image = image.into_first_frame();
    }
    // Colours settled before flattening, so that a converted image meets its sRGB background.
    let (mut image, note) = color::for_output(image, to, options)?;
    image.notes.extend(note);
    if to == Format::Jpeg && image.has_alpha() {
        image = image.flatten(options.background);
    }
    Ok(image)
}

/// The image in `format` meeting the options' goal (a target quality or a size searched for, or
/// the plain encoding); shrunk by steps when it cannot fit `max_bytes` and downscaling is allowed.
fn encode_for_goal(image: &Image, format: Format, options: &Options) -> Result<Candidate, Error> {
    match encode_at_size(image, format, options) {
        Err(Error::CannotFit { max_bytes, smallest }) if options.allow_downscale => {
            downscale_to_fit(image, format, max_bytes, smallest, options)
        }
        result => result,
    }
}

fn encode_at_size(image: &Image, format: Format, options: &Options) -> Result<Candidate, Error> {
    let too_large = |data: &[u8]| options.max_bytes.filter(|&m| data.len() as u64 > m);
    if options.mode == Mode::Lossless {
        if format != Format::Png && !image.frames.iter().all(|f| f.pixels.fits_in_8_bits()) {
            return Err(Error::unsupported(format!(
                "{format} stores 8-bit samples and this image has 16-bit ones, so {format} cannot hold it losslessly; PNG can"
            )));
        }
        let exact = encode_plain(image, format, options)?;
        // The guarantee of lossless mode, for conversions and resized pixels too.
        if !codecs::decodes_to(&exact.data, format, image, options) {
            return Err(Error::internal(format!("lossless {format} output did not decode to the same pixels")));
        }
        if let Some(max) = too_large(&exact.data) {
            return Err(Error::CannotFit { max_bytes: max, smallest: exact.data.len() as u64 });
        }
        return Ok(exact);
    }
    if let Some(target) = options.target_quality {
        let Searched { data, quality, score, notes } = search_target_quality(image, format, target, options)?;
        let data = codecs::finish_search(format, data, options)?;
        if let Some(max) = too_large(&data) {
            return Err(Error::CannotFit { max_bytes: max, smallest: data.len() as u64 });
        }
        return Ok(Candidate::of(format, image, data, Some(quality), score, notes));
    }
    if let Some(max) = options.max_bytes {
        let (data, quality) = search_max_bytes(image, format, max, options)?;
        let score = options.score.then(|| score_of(image, &data, options)).flatten();
        return Ok(Candidate::of(format, image, data, Some(quality), score, vec![]));
    }
    encode_plain(image, format, options)
}

/// Most size reductions one downscale search tries.
const MAX_DOWNSCALE_STEPS: usize = 8;
/// Downscaling stops before either side goes below this.
const MIN_DOWNSCALED_SIDE: u32 = 8;

/// Shrinks `image` (always from its full size) until its encoding fits `max_bytes`. Bytes fall
/// roughly with the pixel count, so each step scales the sides by the square root of what is left
/// to save, a little further, and at most to half.
fn downscale_to_fit(image: &Image, format: Format, max_bytes: u64, mut smallest: u64, options: &Options) -> Result<Candidate, Error> {
    let mut scale = 1.0;
    for _ in 0..MAX_DOWNSCALE_STEPS {
        scale *= ((max_bytes as f64 / smallest as f64).sqrt() * 0.95).clamp(0.5, 0.9);
        let plan = resize::Plan::scaled(image.width, image.height, scale);
        if plan.width.min(plan.height) < MIN_DOWNSCALED_SIDE {
            break;
        }
        let smaller = resize::apply(image, &plan)?;
        match encode_at_size(&smaller, format, options) {
            Ok(mut fitted) => {
                fitted.notes.push(format!(
                    "downscaled from {}x{} to {}x{} to fit within {max_bytes} bytes",
                    image.width, image.height, plan.width, plan.height
                ));
                fitted.resized_from = Some((image.width, image.height));
                return Ok(fitted);
            }
            Err(Error::CannotFit { smallest: s, .. }) => smallest = s,
            Err(e) => return Err(e),
        }
    }
    Err(Error::CannotFit { max_bytes, smallest })
}

/// The outcome of a target-quality search.
struct Searched {
    data: Vec<u8>,
    quality: u8,
    score: Option<f64>,
    notes: Vec<String>,
}

/// Smallest output whose score reaches `target`: a bracketing search over the quality setting
/// that steps by interpolation (the score rises about linearly with quality over a few steps), so
/// it usually ends after three encodes where bisection spends six, and stops early on a passing
/// result within [`CLOSE_ENOUGH`] of the target. Large images are searched on a proxy made of
/// the tiles the score samples (so each step costs a fraction of a full encode), then encoded
/// once in full and checked.
fn search_target_quality(image: &Image, format: Format, target: f64, options: &Options) -> Result<Searched, Error> {
    // The proxy is in the image's colours (its profile) and stored orientation, as its encodings are.
    let proxy = score::proxy(image.first()).map(|p| Image { width: p.width, height: p.height, icc: image.icc.clone(), ..Image::still(p) });
    let probe = proxy.as_ref().unwrap_or(image);
    let evaluate = |q: u8| -> Result<(Vec<u8>, f64), Error> {
        let data = codecs::encode(probe, format, q, false, options)?;
        match score_of(probe, &data, options) {
            Some(score) => Ok((data, score)),
            // A decode the caller stopped scores nothing: that is the cancel, not an unscorable format.
            None => {
                options.cancel.check()?;
                Err(Error::unsupported(format!("{format} output cannot be scored by this build, so a target quality cannot be searched")))
            }
        }
    };
    // `low` fails (assumed at 0), `high` passes (assumed at 100, to be shown); each with its score
    // once measured.
    let (mut low, mut high): ((u8, Option<f64>), (u8, Option<f64>)) = ((0, None), (100, None));
    let mut best: Option<(u8, Vec<u8>, Option<f64>)> = None;
    // Steps in a row that landed on the same side: interpolation that keeps creeping up on the
    // target from one side gives way to bisection, so the bracket always shrinks.
    let (mut last_passed, mut same_side) = (None, 0);
    for _ in 0..MAX_SEARCH_ENCODES - 1 {
        if high.0 - low.0 <= 3 {
            break;
        }
        let q = match last_passed {
            None => codecs::default_quality(format, options).clamp(1, 99),
            Some(_) if same_side >= 2 => low.0 + (high.0 - low.0) / 2,
            Some(_) => next_quality(low, high, target),
        };
        let (data, score) = evaluate(q)?;
        let passed = score >= target;
        same_side = if last_passed == Some(passed) { same_side + 1 } else { 1 };
        last_passed = Some(passed);
        if passed {
            high = (q, Some(score));
            best = Some((q, data, Some(score)));
            if score - target <= CLOSE_ENOUGH {
                break;
            }
        } else {
            low = (q, Some(score));
        }
    }
    let mut notes = Vec::new();
    let (mut quality, data, score) = match best {
        Some(b) => b,
        None => {
            let (data, score) = evaluate(100)?;
            if score < target {
                notes.push(format!("target quality {target} not reached; best score {score:.1} at quality 100"));
            }
            (100, data, Some(score))
        }
    };
    if proxy.is_none() {
        return Ok(Searched { data, quality, score, notes });
    }
    // Encode the full image at the quality found on the proxy; step up if the full image falls short.
    for attempt in 0.. {
        let data = codecs::encode(image, format, quality, false, options)?;
        let score = score_of(image, &data, options);
        if quality >= 100 || score.is_some_and(|s| s >= target) || attempt == 2 {
            return Ok(Searched { data, quality, score, notes });
        }
        notes.push(format!("full image scored {:.1} at quality {quality}, below {target}; raised by 5", score.unwrap_or(f64::NAN)));
        quality = (quality + 5).min(100);
    }
    unreachable!("the loop returns by its third attempt")
}

/// The next quality to try: where the line through the two measured ends of the bracket reaches
/// the target (aiming half of [`CLOSE_ENOUGH`] above it, so the step tends to pass), or a step
/// from the one measured end at the assumed slope; the middle of the bracket when the line says
/// nothing useful. Strictly inside the bracket, which must be wider than 2.
fn next_quality(low: (u8, Option<f64>), high: (u8, Option<f64>), target: f64) -> u8 {
    let aim = target + CLOSE_ENOUGH / 2.0;
    let middle = f64::from(low.0) + f64::from(high.0 - low.0) / 2.0;
    let estimate = match (low.1, high.1) {
        (Some(sl), Some(sh)) if sh > sl => f64::from(low.0) + (aim - sl) / (sh - sl) * f64::from(high.0 - low.0),
        (Some(sl), None) => f64::from(low.0) + (aim - sl) / ASSUMED_SCORE_PER_QUALITY,
        (None, Some(sh)) => f64::from(high.0) - (sh - aim) / ASSUMED_SCORE_PER_QUALITY,
        _ => middle,
    };
    let estimate = if estimate.is_finite() { estimate } else { middle };
    (estimate.round() as i32).clamp(i32::from(low.0) + 1, i32::from(high.0) - 1).max(0) as u8
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
        let data = codecs::encode(image, format, mid, false, options)?;
        smallest = smallest.min(data.len() as u64);
        if fits(&data) {
            low = i16::from(mid);
            best = Some((mid, data));
        } else {
            high = i16::from(mid);
        }
    }
    if best.is_none() {
        let data = codecs::encode(image, format, 0, false, options)?;
        smallest = smallest.min(data.len() as u64);
        if !fits(&data) {
            return Err(Error::CannotFit { max_bytes, smallest });
        }
        best = Some((0, data));
    }
    let (quality, data) = best.unwrap();
    Ok((data, quality))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every step of the target-quality search lands strictly inside its bracket, whatever the
    /// scores measured at its ends say (falling, equal, wild or missing).
    #[test]
    fn the_next_quality_is_strictly_inside_the_bracket() {
        let scores = [None, Some(-50.0), Some(0.0), Some(59.9), Some(60.0), Some(75.0), Some(99.0), Some(f64::INFINITY)];
        for low in 0u8..=96 {
            for high in low + 3..=100 {
                for &sl in &scores {
                    for &sh in &scores {
                        for target in [0.0, 60.0, 80.0, 100.0] {
                            let q = next_quality((low, sl), (high, sh), target);
                            assert!(low < q && q < high, "{q} outside ({low}, {high}) for scores {sl:?} {sh:?} and target {target}");
                        }
                    }
                }
            }
        }
    }
}
