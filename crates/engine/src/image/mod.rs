//! A decoded image, the meeting point of every decoder and encoder: frames of RGBA pixels, their
//! timing, and the metadata that conversions carry across formats.

pub(crate) mod color;
pub(crate) mod metadata;
pub(crate) mod pixels;

use pixels::{Pixels, Samples};

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Frame {
    /// Full-canvas pixels (animation frames are composited by the decoder).
    pub pixels: Pixels,
    /// How long the frame shows, in milliseconds (0 for still images).
    pub delay_ms: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Image {
    pub width: u32,
    pub height: u32,
    pub frames: Vec<Frame>,
    /// Animation loop count, 0 meaning forever.
    pub loop_count: u32,
    pub icc: Option<Vec<u8>>,
    /// EXIF orientation 1-8 (1 is upright).
    pub orientation: u16,
    /// What the decoder left out, for the report (a TIFF's further pages).
    pub notes: Vec<String>,
}

impl Image {
    pub fn still(pixels: Pixels) -> Self {
        Image {
            width: pixels.width,
            height: pixels.height,
            frames: vec![Frame { pixels, delay_ms: 0 }],
            loop_count: 0,
            icc: None,
            orientation: 1,
            notes: Vec::new(),
        }
    }

    pub fn is_animated(&self) -> bool {
        self.frames.len() > 1
    }

    pub fn first(&self) -> &Pixels {
        &self.frames[0].pixels
    }

    pub fn has_alpha(&self) -> bool {
        self.frames.iter().any(|f| f.pixels.has_alpha())
    }

    /// Keeps only the first frame.
    pub fn into_first_frame(mut self) -> Self {
        self.frames.truncate(1);
        self.frames[0].delay_ms = 0;
        self
    }

    /// Turns the pixels upright according to the EXIF orientation, so the result looks the same
    /// in viewers that ignore EXIF; the orientation becomes 1.
    pub fn apply_orientation(mut self) -> Self {
        if self.orientation <= 1 || self.orientation > 8 {
            self.orientation = 1;
            return self;
        }
        let o = self.orientation;
        for frame in &mut self.frames {
            frame.pixels = orient(&frame.pixels, o);
        }
        if o >= 5 {
            std::mem::swap(&mut self.width, &mut self.height);
        }
        self.orientation = 1;
        self
    }

    /// Composites translucent pixels over an opaque background colour (for formats without alpha).
    pub fn flatten(mut self, background: [u8; 3]) -> Self {
        for frame in &mut self.frames {
            let rgba = frame.pixels.to_rgba8();
            let flat = rgba
                .chunks_exact(4)
                .flat_map(|p| {
                    let a = u32::from(p[3]);
                    let mix = |c: u8, bg: u8| ((u32::from(c) * a + u32::from(bg) * (255 - a) + 127) / 255) as u8;
                    [mix(p[0], background[0]), mix(p[1], background[1]), mix(p[2], background[2]), 255]
                })
                .collect();
            frame.pixels = Pixels::rgba8(frame.pixels.width, frame.pixels.height, flat);
        }
        self
    }
}

/// EXIF orientation transform: 2 mirror, 3 rotate 180, 4 flip, 5 transpose, 6 rotate 90 CW,
/// 7 transverse, 8 rotate 270 CW. Output pixel (x, y) reads input pixel `source(x, y)`.
fn orient(p: &Pixels, orientation: u16) -> Pixels {
    let (w, h) = (p.width as usize, p.height as usize);
    let (ow, oh) = if orientation >= 5 { (h, w) } else { (w, h) };
    let source = |x: usize, y: usize| -> usize {
        let (sx, sy) = match orientation {
            2 => (w - 1 - x, y),
            3 => (w - 1 - x, h - 1 - y),
            4 => (x, h - 1 - y),
            5 => (y, x),
            6 => (y, h - 1 - x),
            7 => (w - 1 - y, h - 1 - x),
            8 => (w - 1 - y, x),
            _ => (x, y),
        };
        sy * w + sx
    };
    fn remap<T: Copy>(v: &[T], ow: usize, oh: usize, source: impl Fn(usize, usize) -> usize) -> Vec<T> {
        let mut out = Vec::with_capacity(v.len());
        for y in 0..oh {
            for x in 0..ow {
                let s = source(x, y) * 4;
                out.extend_from_slice(&v[s..s + 4]);
            }
        }
        out
    }
    let samples = match &p.samples {
        Samples::Rgba8(v) => Samples::Rgba8(remap(v, ow, oh, source)),
        Samples::Rgba16(v) => Samples::Rgba16(remap(v, ow, oh, source)),
    };
    Pixels { width: ow as u32, height: oh as u32, samples }
}

/// Bounds (left, top, right, bottom; right and bottom exclusive) of the pixels where `canvas`
/// differs from `shown`, both `w`×`h` pixels of one representation; `None` when none differ.
/// Animation encoders store only this rectangle of each frame.
pub(crate) fn changed_bounds<P: PartialEq>(canvas: &[P], shown: &[P], w: usize, h: usize) -> Option<(usize, usize, usize, usize)> {
    let (mut left, mut top, mut right, mut bottom) = (w, h, 0, 0);
    for y in 0..h {
        let (row, seen) = (&canvas[y * w..(y + 1) * w], &shown[y * w..(y + 1) * w]);
        if let Some(first) = row.iter().zip(seen).position(|(c, s)| c != s) {
            let last = row.iter().zip(seen).rposition(|(c, s)| c != s).unwrap_or(first);
            left = left.min(first);
            right = right.max(last + 1);
            top = top.min(y);
            bottom = y + 1;
        }
    }
    (right > left).then_some((left, top, right, bottom))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 3x2 image whose pixels are numbered 0..6 in the red channel.
    fn numbered() -> Pixels {
        Pixels::rgba8(3, 2, (0..6u8).flat_map(|i| [i, 0, 0, 255]).collect())
    }

    fn reds(p: &Pixels) -> Vec<u8> {
        p.to_rgba8().chunks_exact(4).map(|c| c[0]).collect()
    }

    #[test]
    fn orientations_match_the_exif_definitions() {
        // 0 1 2
        // 3 4 5
        assert_eq!(reds(&orient(&numbered(), 2)), [2, 1, 0, 5, 4, 3]);
        assert_eq!(reds(&orient(&numbered(), 3)), [5, 4, 3, 2, 1, 0]);
        assert_eq!(reds(&orient(&numbered(), 4)), [3, 4, 5, 0, 1, 2]);
        assert_eq!(reds(&orient(&numbered(), 5)), [0, 3, 1, 4, 2, 5]);
        assert_eq!(reds(&orient(&numbered(), 6)), [3, 0, 4, 1, 5, 2]);
        assert_eq!(reds(&orient(&numbered(), 7)), [5, 2, 4, 1, 3, 0]);
        assert_eq!(reds(&orient(&numbered(), 8)), [2, 5, 1, 4, 0, 3]);
        assert_eq!((orient(&numbered(), 6).width, orient(&numbered(), 6).height), (2, 3));
    }

    #[test]
    fn changed_bounds_are_the_smallest_rectangle_around_the_differences() {
        let shown = vec![0u8; 5 * 4];
        let mut canvas = shown.clone();
        assert_eq!(changed_bounds(&canvas, &shown, 5, 4), None);
        canvas[5 + 1] = 1; // (1, 1)
        canvas[2 * 5 + 3] = 1; // (3, 2)
        assert_eq!(changed_bounds(&canvas, &shown, 5, 4), Some((1, 1, 4, 3)));
    }
}
