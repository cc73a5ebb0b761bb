//! A small, bounds-checked reader for the parts of the HEIF/MIAF container (ISO/IEC 23008-12 on top
//! of ISO BMFF, ISO/IEC 14496-12) that a still AVIF image needs: the primary item's AV1 payload and
//! properties, and its alpha auxiliary item.
//!
//! Everything works on byte slices; every length and offset is checked, so hostile input gives an
//! error, never a panic or an allocation larger than the input.

use crate::AvifError;
use std::collections::{HashMap, HashSet};

fn corrupt(msg: impl Into<String>) -> AvifError {
    AvifError::Corrupt(msg.into())
}

fn unsupported(msg: impl Into<String>) -> AvifError {
    AvifError::Unsupported(msg.into())
}

/// Printable form of a four-character code for error messages.
pub(crate) fn fourcc(t: [u8; 4]) -> String {
    t.iter().map(|&b| if b.is_ascii_graphic() { b as char } else { '?' }).collect()
}

/// A cursor over a byte slice that reads big-endian integers and fails cleanly at the end.
struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
    what: &'static str,
}

impl<'a> Reader<'a> {
    fn new(data: &'a [u8], what: &'static str) -> Self {
        Reader { data, pos: 0, what }
    }

    fn bytes(&mut self, n: usize) -> Result<&'a [u8], AvifError> {
        let end =
            self.pos.checked_add(n).filter(|&e| e <= self.data.len()).ok_or_else(|| corrupt(format!("truncated '{}' box", self.what)))?;
        let out = &self.data[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, AvifError> {
        Ok(self.bytes(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, AvifError> {
        let b = self.bytes(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, AvifError> {
        let b = self.bytes(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Result<u64, AvifError> {
        let b = self.bytes(8)?;
        Ok(u64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
    }

    /// An unsigned integer of 0, 4 or 8 bytes (the variable-size fields of `iloc`).
    fn uint(&mut self, size: u8) -> Result<u64, AvifError> {
        match size {
            0 => Ok(0),
            4 => Ok(u64::from(self.u32()?)),
            8 => self.u64(),
            _ => Err(corrupt(format!("invalid field size {size} in 'iloc'"))),
        }
    }

    fn fourcc(&mut self) -> Result<[u8; 4], AvifError> {
        let b = self.bytes(4)?;
        Ok([b[0], b[1], b[2], b[3]])
    }

    /// Version and flags of a FullBox.
    fn full_box(&mut self) -> Result<(u8, u32), AvifError> {
        let v = self.u32()?;
        Ok(((v >> 24) as u8, v & 0x00ff_ffff))
    }

    fn rest(&mut self) -> &'a [u8] {
        let out = &self.data[self.pos..];
        self.pos = self.data.len();
        out
    }
}

/// One box: its type and its payload.
struct Bmff<'a> {
    kind: [u8; 4],
    body: &'a [u8],
}

/// Splits `data` into consecutive boxes.
fn boxes(data: &[u8]) -> Result<Vec<Bmff<'_>>, AvifError> {
    let mut out = Vec::new();
    let mut pos = 0usize;
    while pos < data.len() {
        let mut r = Reader::new(&data[pos..], "box header");
        let size32 = r.u32()?;
        let kind = r.fourcc()?;
        let size = match size32 {
            0 => (data.len() - pos) as u64, // extends to the end of the enclosing box or file
            1 => r.u64()?,
            s => u64::from(s),
        };
        if kind == *b"uuid" {
            r.bytes(16)?;
        }
        let header = r.pos as u64;
        if size < header || size > (data.len() - pos) as u64 {
            return Err(corrupt(format!("box '{}' has an invalid size {size}", fourcc(kind))));
        }
        let end = pos + size as usize;
        out.push(Bmff { kind, body: &data[pos + header as usize..end] });
        pos = end;
    }
    Ok(out)
}

/// Colour information from an `nclx` `colr` property (ITU-T H.273 code points).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Nclx {
    pub primaries: u16,
    pub transfer: u16,
    pub matrix: u16,
    pub full_range: bool,
}

/// A transformative property of the primary item, in the order it must be applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Transform {
    /// `irot`: rotate anti-clockwise by this many quarter turns (0..=3).
    Rotate(u8),
    /// `imir` mode 1: left and right are exchanged.
    MirrorLeftRight,
    /// `imir` mode 0: top and bottom are exchanged.
    MirrorTopBottom,
}

#[derive(Clone, Debug)]
enum Property {
    Ispe(u32, u32),
    Nclx(Nclx),
    Icc(Vec<u8>),
    Transform(Transform),
    AuxType(Vec<u8>),
    /// A property this reader knows and deliberately ignores (see the crate docs).
    Ignored,
    /// Anything else: fine unless an item marks it essential.
    Unknown([u8; 4]),
}

fn parse_property(b: &Bmff<'_>) -> Result<Property, AvifError> {
    let mut r = Reader::new(b.body, "property");
    Ok(match &b.kind {
        b"ispe" => {
            r.full_box()?;
            Property::Ispe(r.u32()?, r.u32()?)
        }
        b"colr" => match &r.fourcc()? {
            b"nclx" => {
                let primaries = r.u16()?;
                let transfer = r.u16()?;
                let matrix = r.u16()?;
                let full_range = r.u8()? & 0x80 != 0;
                Property::Nclx(Nclx { primaries, transfer, matrix, full_range })
            }
            b"prof" | b"rICC" => Property::Icc(r.rest().to_vec()),
            _ => Property::Ignored, // e.g. 'nclc' (QuickTime); nothing usable
        },
        b"irot" => Property::Transform(Transform::Rotate(r.u8()? & 3)),
        // ISO/IEC 23008-12:2022 6.5.12 `mode` (the 2017 edition's ambiguous "axis" is the same bit):
        // 0 exchanges top and bottom, 1 exchanges left and right (as libavif and Pillow read it).
        b"imir" => Property::Transform(if r.u8()? & 1 == 0 { Transform::MirrorTopBottom } else { Transform::MirrorLeftRight }),
        b"auxC" => {
            r.full_box()?;
            let rest = r.rest();
            let end = rest.iter().position(|&c| c == 0).unwrap_or(rest.len());
            Property::AuxType(rest[..end].to_vec())
        }
        // Known and not needed: the AV1 payload carries its own sequence header (av1C, pixi); HDR
        // and display metadata (clli, mdcv, cclv, amve, pasp); layer sizes of progressive images
        // (a1lx: the decoder outputs the last, complete layer); clean aperture (clap: not applied,
        // see the crate docs).
        // Layer selection: 0xFFFF lets the decoder choose (it outputs the last, complete layer, as
        // without `lsel`); a fixed layer is not supported.
        b"lsel" if r.u16()? == 0xFFFF => Property::Ignored,
        b"av1C" | b"pixi" | b"clli" | b"mdcv" | b"cclv" | b"amve" | b"pasp" | b"a1lx" | b"clap" => Property::Ignored,
        other => Property::Unknown(*other),
    })
}

/// Where an item's bytes are, from `iloc`.
struct Location {
    construction_method: u8,
    data_reference_index: u16,
    /// (offset, length); length 0 means "to the end of the source".
    extents: Vec<(u64, u64)>,
}

/// What [`parse`] found for the primary item.
pub(crate) struct Image {
    /// Width and height from `ispe`: the decoded image's size, before transformations.
    pub ispe: (u32, u32),
    /// The AV1 payload (OBUs) of the colour image.
    pub color: Vec<u8>,
    /// The AV1 payload of the alpha auxiliary image, if any.
    pub alpha: Option<Vec<u8>>,
    /// Colour channels are premultiplied by alpha (`prem` reference).
    pub premultiplied: bool,
    pub nclx: Option<Nclx>,
    pub icc: Option<Vec<u8>>,
    pub transforms: Vec<Transform>,
    /// A `grid` primary item: `ispe` is then the grid's output size, `color` is empty and
    /// `alpha` is set only for a single alpha image covering the whole output.
    pub grid: Option<Grid>,
}

/// A `grid` derived image: `rows` × `columns` tiles of `tile` size each, placed row by row and
/// cropped to the output size (ISO/IEC 23008-12 6.6.2.3).
pub(crate) struct Grid {
    pub rows: u32,
    pub columns: u32,
    pub tile: (u32, u32),
    /// The AV1 payload of each colour tile, row-major.
    pub color: Vec<Vec<u8>>,
    /// The AV1 payload of each alpha tile, when the alpha image is a grid of the same layout.
    pub alpha: Option<Vec<Vec<u8>>>,
}

/// Most tiles one grid may have (255 × 255 is what the box can say; this bounds the work a
/// small file can ask for).
const MAX_GRID_TILES: u32 = 4096;

/// The grid of `item`: rows, columns and output size from its payload, tiles from its `dimg`
/// references (all `av01`, all of one size that covers the output).
fn parse_grid(data: &[u8], meta: &Meta<'_>, item: u32, with_payload: bool) -> Result<((u32, u32), Grid, u32), AvifError> {
    let payload = item_data(data, meta, item)?;
    let mut r = Reader::new(&payload, "grid");
    let version = r.u8()?;
    if version != 0 {
        return Err(unsupported(format!("'grid' version {version}")));
    }
    let flags = r.u8()?;
    let rows = u32::from(r.u8()?) + 1;
    let columns = u32::from(r.u8()?) + 1;
    let (width, height) = if flags & 1 == 1 { (r.u32()?, r.u32()?) } else { (u32::from(r.u16()?), u32::from(r.u16()?)) };
    if width == 0 || height == 0 {
        return Err(corrupt(format!("grid output size is {width}x{height}")));
    }
    if rows * columns > MAX_GRID_TILES {
        return Err(unsupported(format!("grid of {rows}x{columns} tiles (at most {MAX_GRID_TILES})")));
    }
    let tiles: Vec<u32> =
        meta.references.iter().filter(|&&(kind, from, _)| kind == *b"dimg" && from == item).map(|&(_, _, to)| to).collect();
    if tiles.len() as u32 != rows * columns {
        return Err(corrupt(format!("grid of {rows}x{columns} has {} tiles", tiles.len())));
    }
    let mut tile_size = None;
    for &tile in &tiles {
        match meta.items.get(&tile) {
            Some(t) if *t == *b"av01" => {}
            Some(t) => return Err(unsupported(format!("grid tile of type '{}'", fourcc(*t)))),
            None => return Err(corrupt(format!("grid tile {tile} is not listed in 'iinf'"))),
        }
        let size = item_properties(meta, tile)?.iter().find_map(|p| if let Property::Ispe(w, h) = p { Some((*w, *h)) } else { None });
        let size = size.ok_or_else(|| corrupt("grid tile has no size ('ispe')"))?;
        if *tile_size.get_or_insert(size) != size {
            return Err(corrupt("grid tiles differ in size"));
        }
    }
    let (tw, th) = tile_size.unwrap_or((0, 0));
    // The tiles cover the output, and no whole row or column lies outside it.
    let covers = |tile: u32, n: u32, out: u32| {
        u64::from(tile) * u64::from(n) >= u64::from(out) && u64::from(tile) * u64::from(n - 1) < u64::from(out)
    };
    if tw == 0 || th == 0 || !covers(tw, columns, width) || !covers(th, rows, height) {
        return Err(corrupt(format!("{columns}x{rows} tiles of {tw}x{th} do not match the grid's {width}x{height}")));
    }
    let color = if with_payload { tiles.iter().map(|&t| item_data(data, meta, t)).collect::<Result<_, _>>()? } else { Vec::new() };
    Ok(((width, height), Grid { rows, columns, tile: (tw, th), color, alpha: None }, tiles[0]))
}

struct Meta<'a> {
    primary: Option<u32>,
    /// Item id → item type.
    items: HashMap<u32, [u8; 4]>,
    locations: HashMap<u32, Location>,
    /// (type, from, to)
    references: Vec<([u8; 4], u32, u32)>,
    properties: Vec<Property>,
    /// Item id → (essential, 1-based property index), in association order.
    associations: HashMap<u32, Vec<(bool, u16)>>,
    idat: Option<&'a [u8]>,
}

const ALPHA_URNS: [&[u8]; 2] = [b"urn:mpeg:mpegB:cicp:systems:auxiliary:alpha", b"urn:mpeg:hevc:2015:auxid:1"];

/// Parses the container far enough to say what the primary image is and how big it is.
/// `with_payload`: also copy out the AV1 payloads (not needed for [`crate::dimensions`]).
pub(crate) fn parse(data: &[u8], with_payload: bool) -> Result<Image, AvifError> {
    let top = boxes(data)?;
    let ftyp = top.first().filter(|b| b.kind == *b"ftyp").ok_or_else(|| unsupported("not an AVIF file: no 'ftyp' box at the start"))?;
    let brands: Vec<&[u8]> = ftyp.body.chunks_exact(4).enumerate().filter(|&(i, _)| i != 1).map(|(_, c)| c).collect();
    if !brands.iter().any(|b| *b == b"avif" || *b == b"avis") {
        let major = brands.first().map(|b| fourcc([b[0], b[1], b[2], b[3]])).unwrap_or_default();
        return Err(unsupported(format!("not an AVIF file (major brand '{major}', no 'avif' or 'avis' brand)")));
    }
    let sequence = brands.iter().any(|b| *b == b"avis");
    let mut metas = top.iter().filter(|b| b.kind == *b"meta");
    let meta = match (metas.next(), metas.next()) {
        (Some(m), None) => m,
        (None, _) if sequence => return Err(unsupported("animated AVIF (image sequence) without a still primary image")),
        (None, _) => return Err(corrupt("no 'meta' box")),
        (Some(_), Some(_)) => return Err(corrupt("more than one 'meta' box")),
    };
    let meta = parse_meta(meta.body)?;

    let primary = meta.primary.ok_or_else(|| {
        if sequence {
            unsupported("animated AVIF (image sequence) without a still primary image")
        } else {
            corrupt("no primary item ('pitm')")
        }
    })?;
    let item_type = |id: u32| meta.items.get(&id).copied();
    match item_type(primary) {
        Some(t) if t == *b"av01" || t == *b"grid" => {}
        Some(t) if t == *b"iovl" => return Err(unsupported("overlay ('iovl') AVIF images are not supported")),
        Some(t) if t == *b"tmap" => return Err(unsupported("tone-mapped ('tmap') primary images are not supported")),
        Some(t) => return Err(unsupported(format!("primary item of type '{}' is not an AV1 image", fourcc(t)))),
        None => return Err(corrupt("primary item is not listed in 'iinf'")),
    }

    // The primary item's properties, in association order (transformations apply in that order).
    let mut ispe = None;
    let mut nclx = None;
    let mut icc = None;
    let mut transforms = Vec::new();
    for prop in item_properties(&meta, primary)? {
        match prop {
            Property::Ispe(w, h) => ispe = ispe.or(Some((*w, *h))),
            Property::Nclx(n) => nclx = nclx.or(Some(*n)),
            Property::Icc(p) if icc.is_none() => icc = Some(p.clone()),
            Property::Transform(t) => transforms.push(*t),
            _ => {}
        }
    }
    let mut grid = None;
    if item_type(primary) == Some(*b"grid") {
        let (size, g, first_tile) = parse_grid(data, &meta, primary, with_payload)?;
        // The output size is the grid's (its `ispe`, where present, must agree; some writers omit it).
        if ispe.is_some_and(|s| s != size) {
            return Err(corrupt(format!("grid 'ispe' {:?} differs from its output size {size:?}", ispe.unwrap_or_default())));
        }
        ispe = Some(size);
        // Colour described on the tiles only is the image's colour.
        for prop in item_properties(&meta, first_tile)? {
            match prop {
                Property::Nclx(n) => nclx = nclx.or(Some(*n)),
                Property::Icc(p) if icc.is_none() => icc = Some(p.clone()),
                _ => {}
            }
        }
        grid = Some(g);
    }
    let (w, h) = ispe.ok_or_else(|| corrupt("primary image has no size ('ispe')"))?;
    if w == 0 || h == 0 {
        return Err(corrupt(format!("primary image has a zero size ({w}x{h})")));
    }
    let ispe = (w, h);

    // The alpha plane: an AV1 item that is an auxiliary ('auxl') of the primary with an alpha URN.
    let alpha_id = alpha_of(&meta, primary)?;
    let premultiplied = alpha_id.is_some_and(|a| {
        meta.references.iter().any(|&(kind, from, to)| kind == *b"prem" && ((from == primary && to == a) || (from == a && to == primary)))
    });

    // An alpha grid must have the colour grid's layout; a single alpha image must cover the output.
    let alpha_grid = alpha_id.filter(|&a| item_type(a) == Some(*b"grid"));
    if let Some(a) = alpha_grid {
        let (size, alpha, _) = parse_grid(data, &meta, a, with_payload)?;
        let Some(g) = grid.as_mut() else { return Err(unsupported("a grid alpha image for a single colour image")) };
        if size != ispe || (alpha.rows, alpha.columns, alpha.tile) != (g.rows, g.columns, g.tile) {
            return Err(unsupported("an alpha grid laid out unlike its colour grid"));
        }
        g.alpha = with_payload.then_some(alpha.color);
    }
    // Or each colour tile with its own alpha item (libavif's "alpha_nogrid", heif-enc -T).
    if alpha_id.is_none()
        && let Some(g) = grid.as_mut()
    {
        let tiles: Vec<u32> =
            meta.references.iter().filter(|&&(kind, from, _)| kind == *b"dimg" && from == primary).map(|&(_, _, to)| to).collect();
        let alphas = tiles.iter().map(|&t| alpha_of(&meta, t)).collect::<Result<Vec<_>, _>>()?;
        if alphas.iter().all(Option::is_some) {
            if with_payload {
                g.alpha = Some(alphas.iter().flatten().map(|&a| item_data(data, &meta, a)).collect::<Result<_, _>>()?);
            }
        } else if alphas.iter().any(Option::is_some) {
            return Err(unsupported("alpha on some grid tiles only"));
        }
    }
    let whole_alpha = alpha_id.filter(|_| alpha_grid.is_none());
    let (color, alpha) = match (with_payload, &grid) {
        (false, _) => (Vec::new(), None),
        (true, Some(_)) => (Vec::new(), whole_alpha.map(|a| item_data(data, &meta, a)).transpose()?),
        (true, None) => (item_data(data, &meta, primary)?, whole_alpha.map(|a| item_data(data, &meta, a)).transpose()?),
    };
    Ok(Image { ispe, color, alpha, premultiplied, nclx, icc, transforms, grid })
}

/// The alpha auxiliary image of `item`: an `av01` or `grid` item that is its `auxl` with an
/// alpha URN.
fn alpha_of(meta: &Meta<'_>, item: u32) -> Result<Option<u32>, AvifError> {
    let mut checked = HashSet::new();
    for &(kind, from, to) in &meta.references {
        let alpha_type = meta.items.get(&from).is_some_and(|t| t == b"av01" || t == b"grid");
        if kind != *b"auxl" || to != item || from == item || !alpha_type || !checked.insert(from) {
            continue;
        }
        let is_alpha =
            item_properties(meta, from)?.iter().any(|p| matches!(p, Property::AuxType(urn) if ALPHA_URNS.contains(&urn.as_slice())));
        if is_alpha {
            return Ok(Some(from));
        }
    }
    Ok(None)
}

impl Image {
    /// Width and height after the transformations (an odd number of quarter turns swaps them).
    pub(crate) fn output_size(&self) -> (u32, u32) {
        let turns: u32 = self.transforms.iter().map(|t| if let Transform::Rotate(n) = t { u32::from(*n) } else { 0 }).sum();
        let (w, h) = self.ispe;
        if turns % 2 == 1 { (h, w) } else { (w, h) }
    }
}

/// The properties associated with `item`, checking that none the item marks essential is unknown.
fn item_properties<'m>(meta: &'m Meta<'_>, item: u32) -> Result<Vec<&'m Property>, AvifError> {
    let mut out = Vec::new();
    for &(essential, index) in meta.associations.get(&item).map(Vec::as_slice).unwrap_or_default() {
        if index == 0 {
            continue; // "no property"
        }
        let prop = meta.properties.get(usize::from(index) - 1).ok_or_else(|| corrupt(format!("property index {index} is out of range")))?;
        if let Property::Unknown(kind) = prop
            && essential
        {
            return Err(unsupported(format!("essential property '{}' is not supported", fourcc(*kind))));
        }
        out.push(prop);
    }
    Ok(out)
}

fn parse_meta(body: &[u8]) -> Result<Meta<'_>, AvifError> {
    let mut r = Reader::new(body, "meta");
    let (version, _) = r.full_box()?;
    if version != 0 {
        return Err(unsupported(format!("'meta' box version {version}")));
    }
    let mut meta = Meta {
        primary: None,
        items: HashMap::new(),
        locations: HashMap::new(),
        references: Vec::new(),
        properties: Vec::new(),
        associations: HashMap::new(),
        idat: None,
    };
    let (mut seen_iinf, mut seen_iloc, mut seen_iprp) = (false, false, false);
    for b in boxes(r.rest())? {
        match &b.kind {
            b"hdlr" => {
                let mut r = Reader::new(b.body, "hdlr");
                r.full_box()?;
                r.u32()?; // pre_defined
                let handler = r.fourcc()?;
                if handler != *b"pict" {
                    return Err(unsupported(format!("'meta' handler '{}' is not 'pict'", fourcc(handler))));
                }
            }
            b"pitm" => {
                if meta.primary.is_some() {
                    return Err(corrupt("more than one 'pitm' box"));
                }
                let mut r = Reader::new(b.body, "pitm");
                let (v, _) = r.full_box()?;
                meta.primary = Some(if v == 0 { u32::from(r.u16()?) } else { r.u32()? });
            }
            b"iinf" => {
                if std::mem::replace(&mut seen_iinf, true) {
                    return Err(corrupt("more than one 'iinf' box"));
                }
                parse_iinf(b.body, &mut meta.items)?;
            }
            b"iloc" => {
                if std::mem::replace(&mut seen_iloc, true) {
                    return Err(corrupt("more than one 'iloc' box"));
                }
                parse_iloc(b.body, &mut meta.locations)?;
            }
            b"iref" => parse_iref(b.body, &mut meta.references)?,
            b"iprp" => {
                if std::mem::replace(&mut seen_iprp, true) {
                    return Err(corrupt("more than one 'iprp' box"));
                }
                parse_iprp(b.body, &mut meta.properties, &mut meta.associations)?;
            }
            b"idat" => {
                if meta.idat.is_some() {
                    return Err(corrupt("more than one 'idat' box"));
                }
                meta.idat = Some(b.body);
            }
            _ => {}
        }
    }
    Ok(meta)
}

fn parse_iinf(body: &[u8], items: &mut HashMap<u32, [u8; 4]>) -> Result<(), AvifError> {
    let mut r = Reader::new(body, "iinf");
    let (version, _) = r.full_box()?;
    let _entry_count = if version == 0 { u32::from(r.u16()?) } else { r.u32()? }; // the boxes themselves count
    for b in boxes(r.rest())? {
        if b.kind != *b"infe" {
            continue;
        }
        let mut r = Reader::new(b.body, "infe");
        let (version, _) = r.full_box()?;
        let id = match version {
            2 => u32::from(r.u16()?),
            3 => r.u32()?,
            _ => continue, // versions 0 and 1 have no item type: nothing an AVIF reader can use
        };
        let protection = r.u16()?;
        let kind = r.fourcc()?;
        // Protected (encrypted) items cannot be decoded; record them under a type nothing accepts.
        if items.insert(id, if protection != 0 { *b"prot" } else { kind }).is_some() {
            return Err(corrupt(format!("item {id} is listed twice in 'iinf'")));
        }
    }
    Ok(())
}

/// At most this many extents in all (with zero-size fields an extent takes no bytes, so the box's
/// size alone would not bound them).
const MAX_EXTENTS: usize = 1 << 16;

fn parse_iloc(body: &[u8], out: &mut HashMap<u32, Location>) -> Result<(), AvifError> {
    let mut r = Reader::new(body, "iloc");
    let (version, _) = r.full_box()?;
    if version > 2 {
        return Err(unsupported(format!("'iloc' box version {version}")));
    }
    let sizes = r.u16()?;
    let offset_size = (sizes >> 12) as u8;
    let length_size = ((sizes >> 8) & 15) as u8;
    let base_offset_size = ((sizes >> 4) & 15) as u8;
    let index_size = if version >= 1 { (sizes & 15) as u8 } else { 0 };
    let count = if version < 2 { u32::from(r.u16()?) } else { r.u32()? };
    let mut total_extents = 0usize;
    for _ in 0..count {
        let id = if version < 2 { u32::from(r.u16()?) } else { r.u32()? };
        let construction_method = if version >= 1 { (r.u16()? & 15) as u8 } else { 0 };
        let data_reference_index = r.u16()?;
        let base = r.uint(base_offset_size)?;
        let extent_count = r.u16()?;
        let mut extents = Vec::new();
        for _ in 0..extent_count {
            r.uint(index_size)?;
            let offset = base.checked_add(r.uint(offset_size)?).ok_or_else(|| corrupt("'iloc' offset overflows"))?;
            let length = r.uint(length_size)?;
            extents.push((offset, length));
            total_extents += 1;
            if total_extents > MAX_EXTENTS {
                return Err(corrupt("too many extents in 'iloc'"));
            }
        }
        if out.insert(id, Location { construction_method, data_reference_index, extents }).is_some() {
            return Err(corrupt(format!("item {id} is listed twice in 'iloc'")));
        }
    }
    Ok(())
}

fn parse_iref(body: &[u8], out: &mut Vec<([u8; 4], u32, u32)>) -> Result<(), AvifError> {
    let mut r = Reader::new(body, "iref");
    let (version, _) = r.full_box()?;
    let id = |r: &mut Reader<'_>| if version == 0 { r.u16().map(u32::from) } else { r.u32() };
    for b in boxes(r.rest())? {
        let mut r = Reader::new(b.body, "iref");
        let from = id(&mut r)?;
        let count = r.u16()?;
        for _ in 0..count {
            let to = id(&mut r)?;
            out.push((b.kind, from, to));
        }
    }
    Ok(())
}

fn parse_iprp(body: &[u8], properties: &mut Vec<Property>, associations: &mut HashMap<u32, Vec<(bool, u16)>>) -> Result<(), AvifError> {
    for b in boxes(body)? {
        match &b.kind {
            b"ipco" => {
                if !properties.is_empty() {
                    return Err(corrupt("more than one 'ipco' box"));
                }
                for p in boxes(b.body)? {
                    properties.push(parse_property(&p)?);
                }
            }
            b"ipma" => {
                let mut r = Reader::new(b.body, "ipma");
                let (version, flags) = r.full_box()?;
                let count = r.u32()?;
                for _ in 0..count {
                    let item = if version < 1 { u32::from(r.u16()?) } else { r.u32()? };
                    let n = r.u8()?;
                    for _ in 0..n {
                        let (essential, index) = if flags & 1 != 0 {
                            let v = r.u16()?;
                            (v & 0x8000 != 0, v & 0x7fff)
                        } else {
                            let v = r.u8()?;
                            (v & 0x80 != 0, u16::from(v & 0x7f))
                        };
                        associations.entry(item).or_default().push((essential, index));
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// The bytes of an item: its extents, concatenated. The total may not exceed the file's size
/// (overlapping extents could otherwise multiply a small file into a huge allocation).
fn item_data(file: &[u8], meta: &Meta<'_>, item: u32) -> Result<Vec<u8>, AvifError> {
    let loc = meta.locations.get(&item).ok_or_else(|| corrupt(format!("item {item} has no location ('iloc')")))?;
    if loc.data_reference_index != 0 {
        return Err(unsupported("item data in an external file"));
    }
    let source: &[u8] = match loc.construction_method {
        0 => file,
        1 => meta.idat.ok_or_else(|| corrupt("item stored in 'idat' but there is no 'idat' box"))?,
        2 => return Err(unsupported("item data constructed from other items ('iloc' construction method 2)")),
        m => return Err(corrupt(format!("invalid 'iloc' construction method {m}"))),
    };
    let mut out = Vec::new();
    for &(offset, length) in &loc.extents {
        let start = usize::try_from(offset)
            .ok()
            .filter(|&s| s <= source.len())
            .ok_or_else(|| corrupt(format!("item {item} lies outside the file")))?;
        let end = if length == 0 {
            source.len()
        } else {
            usize::try_from(length)
                .ok()
                .and_then(|l| start.checked_add(l))
                .filter(|&e| e <= source.len())
                .ok_or_else(|| corrupt(format!("item {item} extends past the end of the file")))?
        };
        if out.len() + (end - start) > file.len() {
            return Err(corrupt(format!("item {item}'s extents add up to more than the file")));
        }
        out.extend_from_slice(&source[start..end]);
    }
    if out.is_empty() {
        return Err(corrupt(format!("item {item} is empty")));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iloc_extents_without_bytes_are_bounded() {
        // Version 0, all field sizes 0: every extent takes no bytes; 40 items of 65535 extents each.
        let mut body = vec![0, 0, 0, 0, 0x00, 0x00, 0, 40];
        for id in 1..=40u16 {
            body.extend_from_slice(&id.to_be_bytes());
            body.extend_from_slice(&[0, 0, 0xff, 0xff]);
        }
        let mut out = HashMap::new();
        assert!(matches!(parse_iloc(&body, &mut out), Err(AvifError::Corrupt(m)) if m.contains("extents")));
    }

    #[test]
    fn box_sizes_are_checked() {
        assert!(boxes(&[0, 0, 0, 4, b'f', b'r', b'e', b'e']).is_err(), "size below the header");
        assert!(boxes(&[0, 0, 0, 9, b'f', b'r', b'e', b'e']).is_err(), "size past the end");
        assert!(boxes(&[0, 0, 0, 1, b'f', b'r', b'e', b'e', 0xff, 0, 0, 0, 0, 0, 0, 0]).is_err(), "huge 64-bit size");
        let ok = boxes(&[0, 0, 0, 0, b'f', b'r', b'e', b'e', 1, 2]).unwrap();
        assert_eq!((ok.len(), ok[0].body), (1, &[1u8, 2][..]), "size 0 runs to the end");
    }
}
