//! SSIMULACRA2 in tiles, so that scoring holds a few tiles and a quarter-size copy of the image
//! rather than about 150 bytes per pixel: the same score as the `ssimulacra2` crate's
//! `compute_frame_ssimulacra2` (to float rounding), which this follows step by step.
//!
//! The metric (libjxl's `tools/ssimulacra2.cc`): at each of up to six scales, each a 2×2 box
//! average of the one before in linear RGB, both images go to XYB; per channel, five blurred planes
//! (μ1, μ2, σ1², σ2², σ12) give an SSIM error map and two edge maps (artifacts, detail lost), and
//! the score is a fixed function of each map's mean and 4th-power mean. Those are sums over
//! pixels, so they add up over tiles: each tile is blurred with a margin beyond the blur's reach
//! and only its core is summed. The cores also make the next scale (tile edges are even, so its
//! 2×2 blocks never straddle two tiles), which is then scored in tiles in turn.
//!
//! The arithmetic is the crate's, operation for operation (sRGB to linear, XYB with its cube root,
//! the recursive blur with its coefficients, the maps), so each pixel's maps are bit for bit the
//! crate's on the same window; only the order of the sums differs. What makes it cheaper: sRGB to
//! linear is a table (its inputs are 8-bit, or 8-bit times an 8-bit alpha); the cube root is
//! inlined so the conversion vectorises; the blur's horizontal pass runs 8 rows at once (on a
//! transposed strip of them), so its recursion vectorises like the vertical one; the products
//! blurred for σ are formed as they are read, and buffers are kept from tile to tile.

use ssimulacra2::{ColorPrimaries, LinearRgb, Rgb, TransferCharacteristic};

/// Scales scored at most (1:1 to 1:32).
const NUM_SCALES: usize = 6;

/// The side of a tile's core, at most, at every scale. (256 would hold a quarter of the buffers,
/// but moved the score further from the whole image's: 0.0996 on `tests/score_tiles.rs`.)
const TILE: usize = 512;

/// Pixels of context around a tile's core. The crate's blur (Charalampidis's recursive Gaussian,
/// σ 1.5, radius 5) spreads a pixel 4 pixels each way and no further (beyond that its response is
/// rounding noise, about 1e-7), and every map is pointwise in the blurred planes; so 8 is twice
/// what the cores need.
const MARGIN: usize = 8;

/// One image of the pair at one scale, as tiles read it.
#[derive(Clone, Copy)]
enum Source<'a> {
    /// Full size: sRGB RGBA8, composited over a background as it is read, through `linear`.
    Rgba8 { rgba: &'a [u8], linear: &'a Linearize },
    /// A smaller scale, already in linear RGB.
    Linear(&'a [[f32; 3]]),
}

/// A rectangle of one scale's image: columns `x0..x1`, rows `y0..y1`.
#[derive(Clone, Copy)]
struct Rect {
    x0: usize,
    x1: usize,
    y0: usize,
    y1: usize,
}

impl Rect {
    fn width(&self) -> usize {
        self.x1 - self.x0
    }

    fn height(&self) -> usize {
        self.y1 - self.y0
    }
}

/// Per channel, the sums over one scale's pixels that the score needs: of the SSIM error and its
/// 4th power, and of the artifact and detail-lost maps and their 4th powers.
#[derive(Default)]
struct ScaleSums {
    ssim: [[f64; 2]; 3],
    edge: [[f64; 4]; 3],
}

/// sRGB RGBA8 composited over a grey background, to linear RGB: the crate's conversion of each
/// value the composite can take, computed once. Indexed by `alpha << 8 | value` where some pixel
/// is translucent, else by `value` (alpha 255) alone.
pub(super) struct Linearize {
    table: Vec<f32>,
    alpha_mask: usize,
}

impl Linearize {
    fn new(background: f32, translucent: bool) -> Option<Linearize> {
        let alphas: Vec<u8> = if translucent { (0..=255).collect() } else { vec![255] };
        let data = alphas
            .iter()
            .flat_map(|&a| {
                (0..=255u8).map(move |v| {
                    // The composite as the engine always formed it, then the crate's sRGB decoding.
                    let alpha = f32::from(a) / 255.0;
                    let c = f32::from(v) / 255.0 * alpha + background * (1.0 - alpha);
                    [c; 3]
                })
            })
            .collect();
        let rgb = Rgb::new(data, 256, alphas.len(), TransferCharacteristic::SRGB, ColorPrimaries::BT709).ok()?;
        let table = LinearRgb::try_from(rgb).ok()?.data().iter().map(|p| p[0]).collect();
        Some(Linearize { table, alpha_mask: if translucent { 0xFF00 } else { 0 } })
    }

    #[inline(always)]
    fn pixel(&self, p: &[u8]) -> [f32; 3] {
        let base = (usize::from(p[3]) << 8) & self.alpha_mask;
        [self.table[base | usize::from(p[0])], self.table[base | usize::from(p[1])], self.table[base | usize::from(p[2])]]
    }
}

/// The score of two sRGB RGBA8 images of `width`×`height`, composited over `background` (0 for
/// black, 1 for white; `translucent` when either has a pixel with alpha below 255); `None` below
/// 8×8, or when the buffers do not hold that many pixels.
pub(crate) fn ssimulacra2_rgba8(
    reference: &[u8],
    distorted: &[u8],
    width: usize,
    height: usize,
    background: f32,
    translucent: bool,
) -> Option<f64> {
    if width < 8 || height < 8 || reference.len() != width * height * 4 || distorted.len() != width * height * 4 {
        return None;
    }
    let linear = Linearize::new(background, translucent)?;
    let mut sources = (Source::Rgba8 { rgba: reference, linear: &linear }, Source::Rgba8 { rgba: distorted, linear: &linear });
    let (mut width, mut height) = (width, height);
    let mut smaller: (Vec<[f32; 3]>, Vec<[f32; 3]>);
    let mut averages = Vec::with_capacity(NUM_SCALES);
    // Tile buffers, kept from tile to tile and scale to scale. Tiles are scored in sequence: in
    // parallel (rows of tiles on the rayon pool) a second set of buffers raised the peak memory of
    // a 12 MP score by 27 MB, for no less CPU.
    let mut workspace = Workspace::default();
    for scale in 0..NUM_SCALES {
        // As the crate does (and libjxl): a scale is scored while the one before it is at least 8×8.
        let next = (width.div_ceil(2), height.div_ceil(2));
        let makes_next = scale + 1 < NUM_SCALES && width >= 8 && height >= 8;
        let mut next_images =
            if makes_next { (vec![[0.0; 3]; next.0 * next.1], vec![[0.0; 3]; next.0 * next.1]) } else { Default::default() };
        // Rows of tiles, each with the rows of the next scale that its cores make (its band).
        let mut bands = Vec::new();
        let (mut rest_ref, mut rest_dist) = (&mut next_images.0[..], &mut next_images.1[..]);
        for (y0, y1) in tile_rows(height) {
            let rows = if makes_next { y1.div_ceil(2) - y0 / 2 } else { 0 };
            let (band_ref, r) = rest_ref.split_at_mut(rows * next.0);
            let (band_dist, d) = rest_dist.split_at_mut(rows * next.0);
            (rest_ref, rest_dist) = (r, d);
            bands.push((y0, y1, band_ref, band_dist));
        }
        let mut sums = ScaleSums::default();
        for (y0, y1, band_ref, band_dist) in bands {
            for (x0, x1) in tile_columns(width) {
                let core = Rect { x0, x1, y0, y1 };
                let next_bands = makes_next.then_some((&mut *band_ref, &mut *band_dist, next.0));
                workspace.add_tile(sources, (width, height), core, next_bands, &mut sums)?;
            }
        }
        averages.push(sums.averages(width * height));
        if !makes_next {
            break;
        }
        smaller = next_images;
        sources = (Source::Linear(&smaller.0), Source::Linear(&smaller.1));
        (width, height) = next;
    }
    Some(score(&averages))
}

/// The spans of a side cut into near-equal tiles of at most [`TILE`], with even edges (so the
/// next scale's 2×2 blocks fall inside one core).
fn spans(side: usize) -> impl Iterator<Item = (usize, usize)> {
    let step = side.div_ceil(side.div_ceil(TILE)).next_multiple_of(2);
    (0..side).step_by(step).map(move |start| (start, (start + step).min(side)))
}

fn tile_rows(height: usize) -> impl Iterator<Item = (usize, usize)> {
    spans(height)
}

fn tile_columns(width: usize) -> impl Iterator<Item = (usize, usize)> {
    spans(width)
}

/// A tile's buffers: its window in linear RGB, both images' XYB planes, the five blurred planes
/// of one channel, and the blur's scratch.
#[derive(Default)]
struct Workspace {
    linear: Vec<[f32; 3]>,
    xyb: [[Vec<f32>; 3]; 2],
    blurred: [Vec<f32>; 5],
    blur: Blur,
}

/// Rows of the next scale that one row of tiles makes.
type Band<'a> = &'a mut [[f32; 3]];

/// `v` with at least `len` elements (grown once, then reused: every element is written before it
/// is read).
fn at_least<T: Copy + Default>(v: &mut Vec<T>, len: usize) -> &mut [T] {
    if v.len() < len {
        v.resize(len, T::default());
    }
    &mut v[..len]
}

impl Workspace {
    /// Adds one tile's error maps over `core` to `sums`, and writes the next scale's pixels that
    /// the core makes into the bands (rows from the core's first, `width` wide), if any.
    fn add_tile(
        &mut self,
        sources: (Source, Source),
        (width, height): (usize, usize),
        core: Rect,
        mut next: Option<(Band, Band, usize)>,
        sums: &mut ScaleSums,
    ) -> Option<()> {
        let window = Rect {
            x0: core.x0.saturating_sub(MARGIN),
            x1: (core.x1 + MARGIN).min(width),
            y0: core.y0.saturating_sub(MARGIN),
            y1: (core.y1 + MARGIN).min(height),
        };
        let len = window.width() * window.height();
        for (i, source) in [sources.0, sources.1].into_iter().enumerate() {
            let linear = at_least(&mut self.linear, len);
            linear_window(source, width, window, linear)?;
            if let Some((band_ref, band_dist, out_width)) = next.as_mut() {
                let band = if i == 0 { &mut **band_ref } else { &mut **band_dist };
                downscale_core(linear, window, core, (width, height), band, *out_width);
            }
            let [x, y, b] = &mut self.xyb[i];
            positive_xyb(linear, [at_least(x, len), at_least(y, len), at_least(b, len)]);
        }

        let (w, h) = (window.width(), window.height());
        for c in 0..3 {
            let (p1, p2) = (&self.xyb[0][c][..len], &self.xyb[1][c][..len]);
            let [mu1, mu2, s11, s22, s12] = &mut self.blurred;
            // The crate's order: σ1², σ2², σ12 (of products, rounded to f32 as it stores them), μ1, μ2.
            self.blur.blur(w, h, |i| p1[i] * p1[i], at_least(s11, len));
            self.blur.blur(w, h, |i| p2[i] * p2[i], at_least(s22, len));
            self.blur.blur(w, h, |i| p1[i] * p2[i], at_least(s12, len));
            self.blur.blur(w, h, |i| p1[i], at_least(mu1, len));
            self.blur.blur(w, h, |i| p2[i], at_least(mu2, len));
            let planes = [&mu1[..len], &mu2[..len], &s11[..len], &s22[..len], &s12[..len], p1, p2];
            add_channel(planes, w, window, core, &mut sums.ssim[c], &mut sums.edge[c]);
        }
        Some(())
    }
}

/// Writes the `window` of a scale's image (`width` wide), in linear RGB, into `out`.
fn linear_window(source: Source, width: usize, window: Rect, out: &mut [[f32; 3]]) -> Option<()> {
    let rows = out.chunks_exact_mut(window.width()).zip(window.y0..window.y1);
    match source {
        Source::Rgba8 { rgba, linear } => {
            for (out, y) in rows {
                let row = rgba.get((y * width + window.x0) * 4..(y * width + window.x1) * 4)?;
                for (out, p) in out.iter_mut().zip(row.chunks_exact(4)) {
                    *out = linear.pixel(p);
                }
            }
        }
        Source::Linear(pixels) => {
            for (out, y) in rows {
                out.copy_from_slice(pixels.get(y * width + window.x0..y * width + window.x1)?);
            }
        }
    }
    Some(())
}

/// Writes the next scale's pixels that `core` covers into `out` (rows from the core's first):
/// 2×2 box averages, the last row and column repeated where a side is odd (as the crate's
/// `downscale_by_2`, in its order of additions).
fn downscale_core(image: &[[f32; 3]], window: Rect, core: Rect, (width, height): (usize, usize), out: &mut [[f32; 3]], out_width: usize) {
    for oy in core.y0 / 2..core.y1.div_ceil(2) {
        for ox in core.x0 / 2..core.x1.div_ceil(2) {
            for c in 0..3 {
                let mut sum = 0f32;
                for iy in 0..2 {
                    for ix in 0..2 {
                        let x = (ox * 2 + ix).min(width - 1);
                        let y = (oy * 2 + iy).min(height - 1);
                        sum += image[(y - window.y0) * window.width() + (x - window.x0)][c];
                    }
                }
                out[(oy - core.y0 / 2) * out_width + ox][c] = sum * 0.25;
            }
        }
    }
}

/// Lanes of the vectorised loops: 8 f32 fill an AVX2 register.
const LANES: usize = 8;

/// Adds one channel's error maps over `core` to its sums. `planes` are μ1, μ2, σ1², σ2², σ12 and
/// the two images' XYB planes, each holding `window` (`width` wide).
fn add_channel(planes: [&[f32]; 7], width: usize, window: Rect, core: Rect, ssim: &mut [f64; 2], edge: &mut [f64; 4]) {
    // Sums per lane, so the loop vectorises; added up at the end.
    let mut acc = [[0f64; LANES]; 6];
    let mut add = |lane: usize, m1: f32, m2: f32, s11: f32, s22: f32, s12: f32, p1: f32, p2: f32| {
        let d = ssim_error(m1, m2, s11, s22, s12);
        let d2 = d * d;
        // d1 > 0: the distorted image has an edge where the reference is smooth (ringing,
        // banding, blocking); d1 < 0: the reference has one the distorted lost (blurring).
        let d1 = (1.0 + f64::from((p2 - m2).abs())) / (1.0 + f64::from((p1 - m1).abs())) - 1.0;
        let artifact = d1.max(0.0);
        let detail_lost = (-d1).max(0.0);
        let (a2, l2) = (artifact * artifact, detail_lost * detail_lost);
        acc[0][lane] += d;
        acc[1][lane] += d2 * d2;
        acc[2][lane] += artifact;
        acc[3][lane] += a2 * a2;
        acc[4][lane] += detail_lost;
        acc[5][lane] += l2 * l2;
    };
    for y in core.y0..core.y1 {
        let at = (y - window.y0) * width + core.x0 - window.x0;
        let [m1, m2, s11, s22, s12, p1, p2] = planes.map(|p| &p[at..at + core.width()]);
        let mut x = 0;
        while x + LANES <= core.width() {
            for lane in 0..LANES {
                let i = x + lane;
                add(lane, m1[i], m2[i], s11[i], s22[i], s12[i], p1[i], p2[i]);
            }
            x += LANES;
        }
        for i in x..core.width() {
            add(0, m1[i], m2[i], s11[i], s22[i], s12[i], p1[i], p2[i]);
        }
    }
    let total = |k: usize| acc[k].iter().sum::<f64>();
    ssim[0] += total(0);
    ssim[1] += total(1);
    for (k, e) in edge.iter_mut().enumerate() {
        *e += total(k + 2);
    }
}

/// 1 − SSIM at one pixel, without SSIM's luminance denominator (libjxl's correction: the values
/// are already perceptually uniform, so errors in the darks should not weigh more), at least 0.
#[inline(always)]
fn ssim_error(mu1: f32, mu2: f32, s11: f32, s22: f32, s12: f32) -> f64 {
    const C2: f32 = 0.0009;
    let (mu11, mu22, mu12, mu_diff) = (mu1 * mu1, mu2 * mu2, mu1 * mu2, mu1 - mu2);
    let num_m = mu_diff.mul_add(-mu_diff, 1.0);
    let num_s = 2f32.mul_add(s12 - mu12, C2);
    let denom_s = (s11 - mu11) + (s22 - mu22) + C2;
    (1.0 - f64::from((num_m * num_s) / denom_s)).max(0.0)
}

/// Linear RGB to XYB shifted to about 0..1 (so that the SSIM formula's differences stay within
/// 1), one plane per channel: the crate's conversion (through `yuvxyb`), step by step.
fn positive_xyb(linear: &[[f32; 3]], [px, py, pb]: [&mut [f32]; 3]) {
    // Opsin absorbance matrix and bias (libjxl's XYB).
    const M: [f32; 9] =
        [0.30, 1.0 - 0.078 - 0.30, 0.078, 0.23, 1.0 - 0.078 - 0.23, 0.078, 0.243_422_69, 0.204_767_45, 1.0 - 0.243_422_69 - 0.204_767_45];
    const BIAS: f32 = 0.003_793_073_4;
    let neg_bias_cbrt = -cbrt(BIAS);
    for (((&[r, g, b], x), y), bb) in linear.iter().zip(px.iter_mut()).zip(py.iter_mut()).zip(pb.iter_mut()) {
        let mixed = [
            M[0].mul_add(r, M[1].mul_add(g, M[2].mul_add(b, BIAS))),
            M[3].mul_add(r, M[4].mul_add(g, M[5].mul_add(b, BIAS))),
            M[6].mul_add(r, M[7].mul_add(g, M[8].mul_add(b, BIAS))),
        ]
        .map(|m| cbrt(if m < 0.0 { 0.0 } else { m }) + neg_bias_cbrt);
        let (xyb_x, xyb_y, xyb_b) = (0.5 * (mixed[0] - mixed[1]), 0.5 * (mixed[0] + mixed[1]), mixed[2]);
        *x = xyb_x.mul_add(14.0, 0.42);
        *y = xyb_y + 0.01;
        *bb = (xyb_b - xyb_y) + 0.55;
    }
}

/// The cube root as `yuvxyb` computes it (with its default `fastmath`), to the bit: an estimate
/// from the exponent bits, then two steps of Halley's iteration in f64. Inlined and branch-free,
/// so the conversion's loop vectorises (the crate calls it per value). For positive normal `x`.
#[inline(always)]
fn cbrt(x: f32) -> f32 {
    // (127 − 127/3 − 0.03306235651) · 2²³: the exponent's bias, divided by 3, tuned.
    const B1: u32 = 709_958_130;
    let bits = x.to_bits();
    let estimate = f32::from_bits((bits & 0x8000_0000) | ((bits & 0x7FFF_FFFF) / 3 + B1));
    let x = f64::from(x);
    let mut t = f64::from(estimate);
    for _ in 0..2 {
        let r = t * t * t;
        t = t * (x + x + r) / (x + r + r);
    }
    t as f32
}

/// The crate's blur (Charalampidis's recursive Gaussian, σ 1.5, as libjxl's `ssimulacra2.cc`),
/// giving the same bits as `ssimulacra2::Blur`: a horizontal pass, then a vertical one, each
/// treating pixels beyond the plane as 0, with the crate's coefficients and operation order.
/// The horizontal pass runs on strips of [`LANES`] rows transposed, so its recursion steps all
/// the strip's rows at once.
#[derive(Default)]
struct Blur {
    horizontal: Vec<f32>,
    strip_in: Vec<[f32; LANES]>,
    strip_out: Vec<[f32; LANES]>,
}

/// The blur's radius N: a pixel's horizontal output reads inputs N + 1 before and N − 1 after.
const RADIUS: usize = 5;

// The filter's coefficients, as the `ssimulacra2` crate's build script derives them for σ 1.5
// (checked bit for bit against its `Blur` in this module's tests).
const MUL_IN: [f32; 3] = [0.055_295_236, -0.058_836_687, 0.012_955_819];
const MUL_PREV: [f32; 3] = [1.902_113_1, 1.175_570_5, 0.000_000_000_000_000_122_464_69];
const MUL_PREV2: [f32; 3] = [-1.0, -1.0, -1.0];
const VERT_MUL_IN: [f32; 3] = MUL_IN;
const VERT_MUL_PREV: [f32; 3] = [-1.902_113_1, -1.175_570_5, -0.000_000_000_000_000_122_464_69];

impl Blur {
    /// Blurs the `width`×`height` plane whose pixel `i` (row-major) is `input(i)` into `out`.
    fn blur(&mut self, width: usize, height: usize, input: impl Fn(usize) -> f32, out: &mut [f32]) {
        let horizontal = at_least(&mut self.horizontal, width * height);
        // Strip positions: inputs from 2N (zeros before, as the pass reads before the row's
        // start, and after its end).
        let strip_len = width + 3 * RADIUS - 1;
        let strip_in = at_least(&mut self.strip_in, strip_len);
        let strip_out = at_least(&mut self.strip_out, width);
        strip_in[..2 * RADIUS].fill([0.0; LANES]);
        strip_in[2 * RADIUS + width..].fill([0.0; LANES]);
        for y0 in (0..height).step_by(LANES) {
            let rows = LANES.min(height - y0);
            for r in 0..rows {
                let at = (y0 + r) * width;
                for (x, s) in strip_in[2 * RADIUS..2 * RADIUS + width].iter_mut().enumerate() {
                    s[r] = input(at + x);
                }
            }
            horizontal_strip(strip_in, strip_out);
            for r in 0..rows {
                for (h, s) in horizontal[(y0 + r) * width..(y0 + r + 1) * width].iter_mut().zip(strip_out.iter()) {
                    *h = s[r];
                }
            }
        }
        vertical_pass(horizontal, out, width, height);
    }
}

/// The crate's horizontal recursion along a strip of rows (`out.len()` pixels long; `input` has
/// them from 2N, zeros around), all rows at once.
fn horizontal_strip(input: &[[f32; LANES]], out: &mut [[f32; LANES]]) {
    let mut prev = [[0f32; LANES]; 3];
    let mut prev2 = [[0f32; LANES]; 3];
    for k in 0..out.len() + RADIUS - 1 {
        let (left, right) = (&input[k], &input[k + 2 * RADIUS]);
        let mut sum_out = [0f32; LANES];
        for lane in 0..LANES {
            let sum = left[lane] + right[lane];
            let mut o = [0f32; 3];
            for j in 0..3 {
                o[j] = sum * MUL_IN[j];
                o[j] = MUL_PREV2[j].mul_add(prev2[j][lane], o[j]);
                prev2[j][lane] = prev[j][lane];
                o[j] = MUL_PREV[j].mul_add(prev[j][lane], o[j]);
                prev[j][lane] = o[j];
            }
            sum_out[lane] = o[0] + o[1] + o[2];
        }
        if k >= RADIUS - 1 {
            out[k - (RADIUS - 1)] = sum_out;
        }
    }
}

/// The crate's vertical recursion, on blocks of columns at once.
fn vertical_pass(input: &[f32], out: &mut [f32], width: usize, height: usize) {
    let mut x = 0;
    while x + 2 * LANES <= width {
        vertical_columns::<{ 2 * LANES }>(input, out, width, height, x);
        x += 2 * LANES;
    }
    while x < width {
        vertical_columns::<1>(input, out, width, height, x);
        x += 1;
    }
}

fn vertical_columns<const C: usize>(input: &[f32], out: &mut [f32], width: usize, height: usize, x0: usize) {
    let zeros = [0f32; C];
    let mut prev = [[0f32; C]; 3];
    let mut prev2 = [[0f32; C]; 3];
    let n_radius = RADIUS as isize;
    for n in 1 - n_radius..height as isize {
        // Rows beyond the plane read as 0 (`top` is never past its end, nor `bottom` before its start).
        let (top, bottom) = (n - n_radius - 1, n + n_radius - 1);
        let top: &[f32] = if top >= 0 { &input[top as usize * width + x0..][..C] } else { &zeros };
        let bottom: &[f32] = if bottom < height as isize { &input[bottom as usize * width + x0..][..C] } else { &zeros };
        let mut sum_out = [0f32; C];
        for i in 0..C {
            let sum = top[i] + bottom[i];
            let mut o = [0f32; 3];
            for j in 0..3 {
                o[j] = prev[j][i].mul_add(VERT_MUL_PREV[j], prev2[j][i]);
                o[j] = sum.mul_add(VERT_MUL_IN[j], -o[j]);
                prev2[j][i] = prev[j][i];
                prev[j][i] = o[j];
            }
            sum_out[i] = o[0] + o[1] + o[2];
        }
        if n >= 0 {
            out[n as usize * width + x0..][..C].copy_from_slice(&sum_out);
        }
    }
}

/// Per channel, the 1-norm and 4-norm of each map at one scale: `[ssim; 2]` and
/// `[artifact, artifact⁴ norm, detail lost, detail lost⁴ norm]`, as the crate orders them.
struct ScaleAverages {
    ssim: [[f64; 2]; 3],
    edge: [[f64; 4]; 3],
}

impl ScaleSums {
    fn averages(&self, pixels: usize) -> ScaleAverages {
        let one_per_pixels = 1.0f64 / pixels as f64;
        let norms = |sum: f64, sum4: f64| [one_per_pixels * sum, (one_per_pixels * sum4).sqrt().sqrt()];
        ScaleAverages {
            ssim: self.ssim.map(|[s, s4]| norms(s, s4)),
            edge: self.edge.map(|[a, a4, d, d4]| {
                let ([a, a4], [d, d4]) = (norms(a, a4), norms(d, d4));
                [a, a4, d, d4]
            }),
        }
    }
}

/// The score from each scale's averages: a weighted sum of the 108 norms (6 scales × 3 channels ×
/// 3 maps × 2 norms), mapped onto 0..100. Weights and mapping from libjxl's `tools/ssimulacra2.cc`
/// (as the crate has them); fewer scales than six shift the weights as they do there.
fn score(scales: &[ScaleAverages]) -> f64 {
    let mut ssim = 0.0f64;
    let mut i = 0;
    for c in 0..3 {
        for scale in scales {
            for n in 0..2 {
                for value in [scale.ssim[c][n], scale.edge[c][n], scale.edge[c][n + 2]] {
                    ssim = WEIGHT[i].mul_add(value.abs(), ssim);
                    i += 1;
                }
            }
        }
    }
    ssim *= 0.956_238_261_683_484_4_f64;
    ssim = (6.248_496_625_763_138e-5 * ssim * ssim)
        .mul_add(ssim, 2.326_765_642_916_932f64.mul_add(ssim, -0.020_884_521_182_843_837 * ssim * ssim));
    if ssim > 0.0 { ssim.powf(0.627_633_646_783_138_7).mul_add(-10.0, 100.0) } else { 100.0 }
}

#[rustfmt::skip]
const WEIGHT: [f64; 108] = [
    0.0, 0.000_737_660_670_740_658_6, 0.0, 0.0, 0.000_779_348_168_286_730_9, 0.0,
    0.0, 0.000_437_115_573_010_737_9, 0.0, 1.104_172_642_665_734_6, 0.000_662_848_341_292_71, 0.000_152_316_327_837_187_52,
    0.0, 0.001_640_643_745_659_975_4, 0.0, 1.842_245_552_053_929_8, 11.441_172_603_757_666, 0.0,
    0.000_798_910_943_601_516_3, 0.000_176_816_438_078_653, 0.0, 1.878_759_497_954_638_7, 10.949_069_906_051_42, 0.0,
    0.000_728_934_699_150_807_2, 0.967_793_708_062_683_3, 0.0, 0.000_140_034_242_854_358_84, 0.998_176_697_785_496_7, 0.000_319_497_559_344_350_53,
    0.000_455_099_211_379_206_3, 0.0, 0.0, 0.001_364_876_616_324_339_8, 0.0, 0.0,
    0.0, 0.0, 0.0, 7.466_890_328_078_848, 0.0, 17.445_833_984_131_262,
    0.000_623_560_163_404_146_6, 0.0, 0.0, 6.683_678_146_179_332, 0.000_377_244_079_796_112_96, 1.027_889_937_768_264,
    225.205_153_008_492_74, 0.0, 0.0, 19.213_238_186_143_016, 0.001_140_152_458_661_836_1, 0.001_237_755_635_509_985,
    176.393_175_984_506_94, 0.0, 0.0, 24.433_009_998_704_76, 0.285_208_026_121_177_57, 0.000_448_543_692_383_340_8,
    0.0, 0.0, 0.0, 34.779_063_444_837_72, 44.835_625_328_877_896, 0.0,
    0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
    0.0, 0.000_868_055_657_329_169_8, 0.0, 0.0, 0.0, 0.0,
    0.0, 0.000_531_319_187_435_874_7, 0.0, 0.000_165_338_141_613_791_12, 0.0, 0.0,
    0.0, 0.0, 0.0, 0.000_417_917_180_325_133_6, 0.001_729_082_823_472_283_3, 0.0,
    0.002_082_700_584_663_643_7, 0.0, 0.0, 8.826_982_764_996_862, 23.192_433_439_989_26, 0.0,
    95.108_049_881_108_6, 0.986_397_803_440_068_2, 0.983_438_279_246_535_3, 0.001_228_640_504_827_849_3, 171.266_725_589_730_7, 0.980_785_887_243_537_9,
    0.0, 0.0, 0.0, 0.000_513_006_458_899_067_9, 0.0, 0.000_108_540_578_584_115_37,
];

#[cfg(test)]
mod tests {
    //! The steps done here rather than by the crate give its bits on a corpus photo (crops of odd
    //! sizes, and the 8×8 minimum), so the score can only differ by the order of its sums.

    use super::*;
    use ssimulacra2::Xyb;

    /// Crops of a corpus photo in linear RGB (through [`Linearize`]), with the crate's own
    /// conversion of the same pixels to check that against.
    fn crops() -> Vec<(usize, usize, Vec<[f32; 3]>)> {
        let Some(path) = compressor_test_support::corpus_file("png_real/photo/cid22_512/CID22-512_validation_1025469.png") else {
            return Vec::new();
        };
        let (width, _, rgba) = crate::decode_displayed(&std::fs::read(path).unwrap(), &crate::Limits::default()).unwrap();
        let linearize = Linearize::new(0.0, false).unwrap();
        [(203, 157), (8, 8), (33, 9), (512, 512)]
            .into_iter()
            .map(|(w, h)| {
                let pixels: Vec<&[u8]> = (0..h).flat_map(|y| rgba[y * width as usize * 4..][..w * 4].chunks_exact(4)).collect();
                let ours: Vec<[f32; 3]> = pixels.iter().map(|p| linearize.pixel(p)).collect();
                let data = pixels.iter().map(|p| [0, 1, 2].map(|c| f32::from(p[c]) / 255.0)).collect();
                let rgb = Rgb::new(data, w, h, TransferCharacteristic::SRGB, ColorPrimaries::BT709).unwrap();
                assert_eq!(ours, LinearRgb::try_from(rgb).unwrap().data(), "{w}x{h}: sRGB to linear");
                (w, h, ours)
            })
            .collect()
    }

    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    #[test]
    fn xyb_and_blur_are_the_crates_to_the_bit() {
        for (w, h, linear) in crops() {
            let mut planes = [vec![0.0; w * h], vec![0.0; w * h], vec![0.0; w * h]];
            let [x, y, b] = &mut planes;
            positive_xyb(&linear, [x, y, b]);
            let xyb = Xyb::from(LinearRgb::new(linear.clone(), w, h).unwrap());
            let expected: Vec<[f32; 3]> = xyb.data().iter().map(|&[x, y, b]| [x.mul_add(14.0, 0.42), y + 0.01, (b - y) + 0.55]).collect();
            for c in 0..3 {
                assert_eq!(bits(&planes[c]), bits(&expected.iter().map(|p| p[c]).collect::<Vec<_>>()), "{w}x{h}: XYB channel {c}");
            }

            let squares = planes.clone().map(|p| p.iter().map(|v| v * v).collect::<Vec<f32>>());
            let theirs = ssimulacra2::Blur::new(w, h).blur(&squares);
            let mut blur = Blur::default();
            for c in 0..3 {
                let mut ours = vec![0.0; w * h];
                let plane = &planes[c];
                blur.blur(w, h, |i| plane[i] * plane[i], &mut ours);
                assert_eq!(bits(&ours), bits(&theirs[c]), "{w}x{h}: blur of channel {c} squared");
            }
        }
    }
}
