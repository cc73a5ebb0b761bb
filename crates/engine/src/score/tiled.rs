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

use ssimulacra2::{Blur, ColorPrimaries, LinearRgb, Rgb, TransferCharacteristic, Xyb};

/// Scales scored at most (1:1 to 1:32).
const NUM_SCALES: usize = 6;

/// The side of a tile's core, at most, at every scale.
const TILE: usize = 512;

/// Pixels of context around a tile's core. The crate's blur (Charalampidis's recursive Gaussian,
/// σ 1.5, radius 5) spreads a pixel 4 pixels each way and no further (beyond that its response is
/// rounding noise, about 1e-7), and every map is pointwise in the blurred planes; so 8 is twice
/// what the cores need.
const MARGIN: usize = 8;

/// One image of the pair at one scale, as tiles read it.
#[derive(Clone, Copy)]
enum Source<'a> {
    /// Full size: sRGB RGBA8, composited over a grey `background` (0 to 1) as it is read.
    Rgba8 { rgba: &'a [u8], background: f32 },
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

/// The score of two sRGB RGBA8 images of `width`×`height`, composited over `background` (0 for
/// black, 1 for white); `None` below 8×8, or when the buffers do not hold that many pixels.
pub(crate) fn ssimulacra2_rgba8(reference: &[u8], distorted: &[u8], width: usize, height: usize, background: f32) -> Option<f64> {
    if width < 8 || height < 8 || reference.len() != width * height * 4 || distorted.len() != width * height * 4 {
        return None;
    }
    let mut sources = (Source::Rgba8 { rgba: reference, background }, Source::Rgba8 { rgba: distorted, background });
    let (mut width, mut height) = (width, height);
    let mut smaller: (Vec<[f32; 3]>, Vec<[f32; 3]>);
    let mut averages = Vec::with_capacity(NUM_SCALES);
    for scale in 0..NUM_SCALES {
        // As the crate does (and libjxl): a scale is scored while the one before it is at least 8×8.
        let next = (width.div_ceil(2), height.div_ceil(2));
        let makes_next = scale + 1 < NUM_SCALES && width >= 8 && height >= 8;
        let mut next_images =
            if makes_next { (vec![[0.0; 3]; next.0 * next.1], vec![[0.0; 3]; next.0 * next.1]) } else { Default::default() };
        let mut sums = ScaleSums::default();
        for core in tiles(width, height) {
            let window = Rect {
                x0: core.x0.saturating_sub(MARGIN),
                x1: (core.x1 + MARGIN).min(width),
                y0: core.y0.saturating_sub(MARGIN),
                y1: (core.y1 + MARGIN).min(height),
            };
            let reference = linear_window(sources.0, width, window)?;
            let distorted = linear_window(sources.1, width, window)?;
            if makes_next {
                downscale_core(&reference, window, core, (width, height), &mut next_images.0, next.0);
                downscale_core(&distorted, window, core, (width, height), &mut next_images.1, next.0);
            }
            add_tile(reference, distorted, window, core, &mut sums);
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

/// Cores covering a `width`×`height` image in near-equal tiles of at most [`TILE`] a side, with
/// even edges (so the next scale's 2×2 blocks fall inside one core).
fn tiles(width: usize, height: usize) -> impl Iterator<Item = Rect> {
    let step = |side: usize| side.div_ceil(side.div_ceil(TILE)).next_multiple_of(2);
    let (step_x, step_y) = (step(width), step(height));
    (0..height).step_by(step_y).flat_map(move |y0| {
        (0..width).step_by(step_x).map(move |x0| Rect { x0, x1: (x0 + step_x).min(width), y0, y1: (y0 + step_y).min(height) })
    })
}

/// The `window` of a scale's image (`width` wide), in linear RGB.
fn linear_window(source: Source, width: usize, window: Rect) -> Option<LinearRgb> {
    let rows = window.y0..window.y1;
    match source {
        Source::Rgba8 { rgba, background } => {
            let data = rows
                .flat_map(|y| rgba[(y * width + window.x0) * 4..(y * width + window.x1) * 4].chunks_exact(4))
                .map(|p| {
                    let alpha = f32::from(p[3]) / 255.0;
                    let c = |v: u8| f32::from(v) / 255.0 * alpha + background * (1.0 - alpha);
                    [c(p[0]), c(p[1]), c(p[2])]
                })
                .collect();
            let rgb = Rgb::new(data, window.width(), window.height(), TransferCharacteristic::SRGB, ColorPrimaries::BT709).ok()?;
            LinearRgb::try_from(rgb).ok()
        }
        Source::Linear(pixels) => {
            let data = rows.flat_map(|y| &pixels[y * width + window.x0..y * width + window.x1]).copied().collect();
            LinearRgb::new(data, window.width(), window.height()).ok()
        }
    }
}

/// Writes the next scale's pixels that `core` covers: 2×2 box averages, the last row and column
/// repeated where a side is odd (as the crate's `downscale_by_2`, in its order of additions).
fn downscale_core(image: &LinearRgb, window: Rect, core: Rect, (width, height): (usize, usize), out: &mut [[f32; 3]], out_width: usize) {
    let data = image.data();
    for oy in core.y0 / 2..core.y1.div_ceil(2) {
        for ox in core.x0 / 2..core.x1.div_ceil(2) {
            for c in 0..3 {
                let mut sum = 0f32;
                for iy in 0..2 {
                    for ix in 0..2 {
                        let x = (ox * 2 + ix).min(width - 1);
                        let y = (oy * 2 + iy).min(height - 1);
                        sum += data[(y - window.y0) * window.width() + (x - window.x0)][c];
                    }
                }
                out[oy * out_width + ox][c] = sum * 0.25;
            }
        }
    }
}

/// Adds one tile's error maps over its core to `sums`; `reference` and `distorted` hold `window`.
fn add_tile(reference: LinearRgb, distorted: LinearRgb, window: Rect, core: Rect, sums: &mut ScaleSums) {
    let (width, height) = (window.width(), window.height());
    let img1 = positive_xyb_planes(reference);
    let img2 = positive_xyb_planes(distorted);
    let mut blur = Blur::new(width, height);
    let mut mul = [vec![0.0f32; width * height], vec![0.0f32; width * height], vec![0.0f32; width * height]];
    multiply(&img1, &img1, &mut mul);
    let sigma1_sq = blur.blur(&mul);
    multiply(&img2, &img2, &mut mul);
    let sigma2_sq = blur.blur(&mul);
    multiply(&img1, &img2, &mut mul);
    let sigma12 = blur.blur(&mul);
    drop(mul);
    let mu1 = blur.blur(&img1);
    let mu2 = blur.blur(&img2);

    for c in 0..3 {
        let (ssim, edge) = (&mut sums.ssim[c], &mut sums.edge[c]);
        for y in core.y0..core.y1 {
            let at = (y - window.y0) * width + core.x0 - window.x0;
            let row = at..at + core.width();
            let (m1, m2, p1, p2) = (&mu1[c][row.clone()], &mu2[c][row.clone()], &img1[c][row.clone()], &img2[c][row.clone()]);
            let (s11, s22, s12) = (&sigma1_sq[c][row.clone()], &sigma2_sq[c][row.clone()], &sigma12[c][row]);
            for x in 0..core.width() {
                let d = ssim_error(m1[x], m2[x], s11[x], s22[x], s12[x]);
                ssim[0] += d;
                ssim[1] += d.powi(4);
                // d1 > 0: the distorted image has an edge where the reference is smooth (ringing,
                // banding, blocking); d1 < 0: the reference has one the distorted lost (blurring).
                let d1 = (1.0 + f64::from((p2[x] - m2[x]).abs())) / (1.0 + f64::from((p1[x] - m1[x]).abs())) - 1.0;
                let artifact = d1.max(0.0);
                let detail_lost = (-d1).max(0.0);
                edge[0] += artifact;
                edge[1] += artifact.powi(4);
                edge[2] += detail_lost;
                edge[3] += detail_lost.powi(4);
            }
        }
    }
}

/// 1 − SSIM at one pixel, without SSIM's luminance denominator (libjxl's correction: the values
/// are already perceptually uniform, so errors in the darks should not weigh more), at least 0.
fn ssim_error(mu1: f32, mu2: f32, s11: f32, s22: f32, s12: f32) -> f64 {
    const C2: f32 = 0.0009;
    let (mu11, mu22, mu12, mu_diff) = (mu1 * mu1, mu2 * mu2, mu1 * mu2, mu1 - mu2);
    let num_m = mu_diff.mul_add(-mu_diff, 1.0);
    let num_s = 2f32.mul_add(s12 - mu12, C2);
    let denom_s = (s11 - mu11) + (s22 - mu22) + C2;
    (1.0 - f64::from((num_m * num_s) / denom_s)).max(0.0)
}

/// XYB shifted to about 0..1 (so that the SSIM formula's differences stay within 1), one plane
/// per channel.
fn positive_xyb_planes(image: LinearRgb) -> [Vec<f32>; 3] {
    let xyb = Xyb::from(image);
    let mut planes = [Vec::with_capacity(xyb.data().len()), Vec::with_capacity(xyb.data().len()), Vec::with_capacity(xyb.data().len())];
    for &[x, y, b] in xyb.data() {
        planes[0].push(x.mul_add(14.0, 0.42));
        planes[1].push(y + 0.01);
        planes[2].push((b - y) + 0.55);
    }
    planes
}

fn multiply(a: &[Vec<f32>; 3], b: &[Vec<f32>; 3], out: &mut [Vec<f32>; 3]) {
    for ((a, b), out) in a.iter().zip(b).zip(out.iter_mut()) {
        for ((&a, &b), out) in a.iter().zip(b).zip(out.iter_mut()) {
            *out = a * b;
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
