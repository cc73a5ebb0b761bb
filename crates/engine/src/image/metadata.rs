//! Metadata that the policy needs to read or rebuild: EXIF orientation and PNG chunks.
//!
//! Under `safe`, EXIF is dropped (it can hold GPS positions) but the orientation must survive, so a
//! minimal EXIF block holding only the orientation tag is written in its place.

use crate::error::Error;

const ORIENTATION_TAG: u16 = 0x0112;

/// The orientation (1-8) stored in a TIFF-structured EXIF block (without the `Exif\0\0` prefix).
pub(crate) fn exif_orientation(tiff: &[u8]) -> Option<u16> {
    let big_endian = match tiff.get(0..4)? {
        b"MM\0*" => true,
        b"II*\0" => false,
        _ => return None,
    };
    let u16_at = |at: usize| {
        tiff.get(at..at + 2).map(|b| if big_endian { u16::from_be_bytes([b[0], b[1]]) } else { u16::from_le_bytes([b[0], b[1]]) })
    };
    let u32_at = |at: usize| {
        tiff.get(at..at + 4)
            .map(|b| if big_endian { u32::from_be_bytes([b[0], b[1], b[2], b[3]]) } else { u32::from_le_bytes([b[0], b[1], b[2], b[3]]) })
    };
    let ifd = u32_at(4)? as usize;
    let count = usize::from(u16_at(ifd)?);
    (0..count)
        .find_map(|i| {
            let entry = ifd.checked_add(2 + i * 12)?;
            (u16_at(entry)? == ORIENTATION_TAG).then(|| u16_at(entry + 8)).flatten()
        })
        .filter(|o| (1..=8).contains(o))
}

/// A big-endian TIFF block whose only entry is the orientation.
pub(crate) fn orientation_only_exif(orientation: u16) -> Vec<u8> {
    let mut out = Vec::with_capacity(26);
    out.extend_from_slice(b"MM\0*");
    out.extend_from_slice(&8u32.to_be_bytes()); // IFD0 offset
    out.extend_from_slice(&1u16.to_be_bytes()); // one entry
    out.extend_from_slice(&ORIENTATION_TAG.to_be_bytes());
    out.extend_from_slice(&3u16.to_be_bytes()); // SHORT
    out.extend_from_slice(&1u32.to_be_bytes()); // count
    out.extend_from_slice(&orientation.to_be_bytes());
    out.extend_from_slice(&[0, 0]); // value padding
    out.extend_from_slice(&0u32.to_be_bytes()); // no next IFD
    out
}

/// One PNG chunk, borrowed from the file.
pub(crate) struct PngChunk<'a> {
    pub name: [u8; 4],
    pub data: &'a [u8],
}

/// The chunks of a PNG file in order, up to and including IEND. Bytes after IEND are ignored.
pub(crate) fn png_chunks(png: &[u8]) -> Result<Vec<PngChunk<'_>>, Error> {
    let mut chunks = Vec::new();
    let mut pos = 8;
    loop {
        let header = png.get(pos..pos + 8).ok_or_else(|| Error::corrupt("PNG ends before its IEND chunk"))?;
        let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let name = [header[4], header[5], header[6], header[7]];
        let data = png
            .get(pos + 8..pos + 8 + len)
            .ok_or_else(|| Error::corrupt(format!("PNG chunk {} is truncated", String::from_utf8_lossy(&name))))?;
        pos += 12 + len;
        chunks.push(PngChunk { name, data });
        if &name == b"IEND" {
            return Ok(chunks);
        }
    }
}

/// Serialises chunks into a PNG file.
pub(crate) fn write_png<'a>(chunks: impl IntoIterator<Item = (&'a [u8; 4], &'a [u8])>) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    for (name, data) in chunks {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let start = out.len();
        out.extend_from_slice(name);
        out.extend_from_slice(data);
        let crc = crc32fast::hash(&out[start..]);
        out.extend_from_slice(&crc.to_be_bytes());
    }
    out
}

/// Chunks that carry pixels or animation, never metadata: kept under every policy.
pub(crate) const PNG_IMAGE_CHUNKS: [[u8; 4]; 4] = [*b"tRNS", *b"acTL", *b"fcTL", *b"fdAT"];

/// Chunks that describe the colours (the profile and what stands in for one).
pub(crate) const PNG_COLOUR_CHUNKS: [[u8; 4]; 5] = [*b"iCCP", *b"sRGB", *b"gAMA", *b"cHRM", *b"cICP"];

/// Chunks that change how the pixels are displayed (colour space, gamut, pixel aspect): kept under `safe`.
pub(crate) const PNG_DISPLAY_CHUNKS: [[u8; 4]; 10] =
    [*b"iCCP", *b"sRGB", *b"gAMA", *b"cHRM", *b"cICP", *b"mDCV", *b"cLLI", *b"sBIT", *b"pHYs", *b"bKGD"];
