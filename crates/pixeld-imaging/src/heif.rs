//! A header-only reader for the HEIF box structure shared by AVIF and HEIC: the primary
//! item's size, alpha, colour and orientation, read without touching the coded data, so the
//! limits are checked before a decoder sees a byte. Every read is bounds-checked against the
//! input, whatever the box sizes claim.

use crate::error::{Error, Result};

/// The CICP colour description of an `nclx` colour box (ITU-T H.273 code points).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Nclx {
    pub primaries: u16,
    pub transfer: u16,
    pub matrix: u16,
    pub full_range: bool,
}

/// What the `meta` box says about the primary item.
#[derive(Debug, Clone, Default)]
pub(crate) struct HeifInfo {
    pub width: u32,
    pub height: u32,
    /// Item type of the primary item, e.g. `av01`, `hvc1` or `grid`.
    pub item_type: [u8; 4],
    /// Whether an alpha auxiliary image belongs to the primary item.
    pub has_alpha: bool,
    pub icc: Option<Vec<u8>>,
    pub nclx: Option<Nclx>,
    /// `irot` and `imir` as the equivalent EXIF orientation (1 when absent).
    pub orientation: u8,
}

const ALPHA_URNS: [&[u8]; 2] = [
    b"urn:mpeg:mpegB:cicp:systems:auxiliary:alpha",
    b"urn:mpeg:hevc:2015:auxid:1",
];

/// Iterates over the boxes in `data` as (type, payload); stops at the first box that does
/// not fit, so a truncated or lying size can never index past the input.
fn boxes(data: &[u8]) -> impl Iterator<Item = ([u8; 4], &[u8])> {
    let mut rest = data;
    std::iter::from_fn(move || {
        let head = rest.get(..8)?;
        let size32 = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
        let kind: [u8; 4] = [head[4], head[5], head[6], head[7]];
        let (header_len, size) = match size32 {
            // Runs to the end of the enclosing data.
            0 => (8, rest.len()),
            1 => {
                let large = rest.get(8..16)?;
                let size = u64::from_be_bytes(large.try_into().ok()?);
                (16, usize::try_from(size).ok()?)
            }
            n => (8, n as usize),
        };
        if size < header_len || size > rest.len() {
            rest = &[];
            return None;
        }
        let payload = &rest[header_len..size];
        rest = &rest[size..];
        Some((kind, payload))
    })
}

/// Whether every box at this level, and inside the containers a HEIF/AVIF reader descends
/// into, fits inside its parent. Container parsers downstream (mp4parse) reserve memory for a
/// box's declared size before reading it, so a lying size must be refused first.
fn sizes_fit(data: &[u8], depth: usize) -> bool {
    if depth > 16 {
        return false;
    }
    let mut rest = data;
    while rest.len() >= 8 {
        let size32 = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]);
        let kind: [u8; 4] = [rest[4], rest[5], rest[6], rest[7]];
        let (header_len, size) = match size32 {
            0 => (8, rest.len()),
            1 => match rest.get(8..16).and_then(|b| b.try_into().ok()) {
                Some(b) => match usize::try_from(u64::from_be_bytes(b)) {
                    Ok(s) => (16, s),
                    Err(_) => return false,
                },
                None => return false,
            },
            n => (8, n as usize),
        };
        if size < header_len || size > rest.len() {
            return false;
        }
        let payload = &rest[header_len..size];
        let inner = match &kind {
            b"meta" => payload.get(4..),
            b"iinf" => payload
                .first()
                .and_then(|v| payload.get(if *v == 0 { 6 } else { 8 }..)),
            b"iprp" | b"ipco" | b"dinf" | b"moov" | b"trak" | b"mdia" | b"minf" | b"stbl" => {
                Some(payload)
            }
            _ => None,
        };
        if let Some(inner) = inner
            && !sizes_fit(inner, depth + 1)
        {
            return false;
        }
        rest = &rest[size..];
    }
    true
}

fn find<'a>(data: &'a [u8], kind: &[u8; 4]) -> Option<&'a [u8]> {
    boxes(data).find(|(k, _)| k == kind).map(|(_, p)| p)
}

/// A big-endian cursor over one box payload; every read fails cleanly at the end.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = (self.0.get(..n)?, self.0.get(n..)?);
        self.0 = rest;
        Some(head)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    /// 16 bits when `short`, else 32: many HEIF fields widen with the box version.
    fn id(&mut self, short: bool) -> Option<u32> {
        if short {
            self.u16().map(u32::from)
        } else {
            self.u32()
        }
    }
}

/// Reads the primary item's properties. Fails with [`Error::Corrupt`] when the structure is
/// broken or the primary item has no size.
pub(crate) fn read(b: &[u8], format_name: &str) -> Result<HeifInfo> {
    let bad = |what: &str| Error::corrupt(format!("{format_name} file {what}"));
    if !sizes_fit(b, 0) {
        return Err(bad("with a box larger than the data around it"));
    }
    let meta = find(b, b"meta").ok_or_else(|| bad("without a meta box"))?;
    // `meta` is a full box: version and flags come first.
    let meta = meta.get(4..).ok_or_else(|| bad("with an empty meta box"))?;

    let pitm = find(meta, b"pitm").ok_or_else(|| bad("without a primary item"))?;
    let mut r = Reader(pitm);
    let version = r.u8().ok_or_else(|| bad("with a short pitm box"))?;
    r.take(3);
    let primary = r
        .id(version == 0)
        .ok_or_else(|| bad("with a short pitm box"))?;

    let mut info = HeifInfo {
        orientation: 1,
        ..HeifInfo::default()
    };
    if let Some(iinf) = find(meta, b"iinf") {
        info.item_type = item_type(iinf, primary).unwrap_or(*b"    ");
    }

    let iprp = find(meta, b"iprp").ok_or_else(|| bad("without item properties"))?;
    let ipco = find(iprp, b"ipco").ok_or_else(|| bad("without item properties"))?;
    let props: Vec<([u8; 4], &[u8])> = boxes(ipco).collect();
    let assoc = associations(iprp).ok_or_else(|| bad("with a broken ipma box"))?;
    let of = |item: u32| -> Vec<([u8; 4], &[u8])> {
        assoc
            .iter()
            .filter(|(i, _)| *i == item)
            .flat_map(|(_, idx)| idx.iter())
            // Property indices are 1-based; 0 means "none".
            .filter_map(|&k| props.get(usize::from(k).checked_sub(1)?).copied())
            .collect()
    };

    let (mut rotation, mut mirror) = (0u8, None);
    for (kind, p) in of(primary) {
        match &kind {
            b"ispe" if info.width == 0 => {
                let mut r = Reader(p);
                r.take(4);
                if let (Some(w), Some(h)) = (r.u32(), r.u32()) {
                    (info.width, info.height) = (w, h);
                }
            }
            b"colr" => {
                let mut r = Reader(p);
                match r.take(4) {
                    Some(b"nclx") if info.nclx.is_none() => {
                        if let (Some(cp), Some(tc), Some(mc), Some(fr)) =
                            (r.u16(), r.u16(), r.u16(), r.u8())
                        {
                            info.nclx = Some(Nclx {
                                primaries: cp,
                                transfer: tc,
                                matrix: mc,
                                full_range: fr & 0x80 != 0,
                            });
                        }
                    }
                    Some(b"prof" | b"rICC") if info.icc.is_none() => {
                        info.icc = Some(r.0.to_vec());
                    }
                    _ => {}
                }
            }
            b"irot" => rotation = p.first().map_or(0, |a| a & 3),
            b"imir" => mirror = p.first().map(|m| m & 1),
            _ => {}
        }
    }
    if info.width == 0 || info.height == 0 {
        return Err(bad("without image dimensions"));
    }
    info.orientation = exif_orientation(rotation, mirror);

    // An alpha plane is an auxiliary item that references the primary through `auxl` and
    // carries an `auxC` property naming alpha.
    if let Some(iref) = find(meta, b"iref") {
        info.has_alpha = auxiliaries(iref, primary).into_iter().any(|aux| {
            of(aux).iter().any(|(kind, p)| {
                kind == b"auxC"
                    && ALPHA_URNS
                        .iter()
                        .any(|urn| p.get(4..).is_some_and(|s| s.starts_with(urn)))
            })
        });
    }
    Ok(info)
}

/// The item type of `item` from the `iinf` box (`infe` version 2 and 3 only, which is all
/// that HEIF allows).
fn item_type(iinf: &[u8], item: u32) -> Option<[u8; 4]> {
    let mut r = Reader(iinf);
    let version = r.u8()?;
    r.take(3)?;
    r.id(version == 0)?;
    boxes(r.0).filter(|(k, _)| k == b"infe").find_map(|(_, p)| {
        let mut r = Reader(p);
        let version = r.u8()?;
        r.take(3)?;
        if version < 2 {
            return None;
        }
        let id = r.id(version == 2)?;
        r.u16()?; // protection index
        let kind: [u8; 4] = r.take(4)?.try_into().ok()?;
        (id == item).then_some(kind)
    })
}

/// (item, property indices) from every `ipma` box.
fn associations(iprp: &[u8]) -> Option<Vec<(u32, Vec<u16>)>> {
    let mut out = Vec::new();
    for (_, p) in boxes(iprp).filter(|(k, _)| k == b"ipma") {
        let mut r = Reader(p);
        let version = r.u8()?;
        let flags = r.take(3)?;
        let wide = flags[2] & 1 != 0;
        let count = r.u32()?;
        for _ in 0..count {
            let item = r.id(version < 1)?;
            let n = r.u8()?;
            let mut idx = Vec::with_capacity(usize::from(n));
            for _ in 0..n {
                idx.push(if wide {
                    r.u16()? & 0x7FFF
                } else {
                    u16::from(r.u8()? & 0x7F)
                });
            }
            out.push((item, idx));
        }
    }
    Some(out)
}

/// Items that reference `primary` through an `auxl` (auxiliary image) reference.
fn auxiliaries(iref: &[u8], primary: u32) -> Vec<u32> {
    let mut r = Reader(iref);
    let Some(version) = r.u8() else {
        return Vec::new();
    };
    if r.take(3).is_none() {
        return Vec::new();
    }
    let short = version == 0;
    boxes(r.0)
        .filter(|(k, _)| k == b"auxl")
        .filter_map(|(_, p)| {
            let mut r = Reader(p);
            let from = r.id(short)?;
            let n = r.u16()?;
            let to: Option<Vec<u32>> = (0..n).map(|_| r.id(short)).collect();
            to?.contains(&primary).then_some(from)
        })
        .collect()
}

/// `irot` (anticlockwise quarter turns) then `imir` (0: top and bottom exchanged, 1: left
/// and right exchanged), the order MIAF prescribes, as one EXIF orientation.
fn exif_orientation(rotation: u8, mirror: Option<u8>) -> u8 {
    match (rotation, mirror) {
        (0, None) => 1,
        (1, None) => 8,
        (2, None) => 3,
        (3, None) => 6,
        (0, Some(1)) | (2, Some(0)) => 2,
        (0, Some(_)) | (2, Some(_)) => 4,
        (1, Some(1)) | (3, Some(0)) => 7,
        _ => 5,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn irot_and_imir_map_to_the_exif_orientation_that_shows_the_same_picture() {
        use image::{DynamicImage, GenericImageView, RgbImage};
        // A 3×2 image with distinct pixels, so that every transform is distinguishable.
        let base = DynamicImage::ImageRgb8(RgbImage::from_fn(3, 2, |x, y| {
            image::Rgb([x as u8 * 40, y as u8 * 90, 7])
        }));
        for rotation in 0..4u8 {
            for mirror in [None, Some(0), Some(1)] {
                // HEIF's definition: rotate anticlockwise, then mirror.
                let mut want = match rotation {
                    0 => base.clone(),
                    1 => base.rotate270(),
                    2 => base.rotate180(),
                    _ => base.rotate90(),
                };
                want = match mirror {
                    Some(0) => want.flipv(),
                    Some(_) => want.fliph(),
                    None => want,
                };
                let mut got = base.clone();
                crate::transform::orient(&mut got, exif_orientation(rotation, mirror));
                assert_eq!(got.dimensions(), want.dimensions());
                assert_eq!(
                    got.to_rgb8().into_raw(),
                    want.to_rgb8().into_raw(),
                    "irot {rotation} imir {mirror:?}"
                );
            }
        }
    }

    #[test]
    fn a_property_box_larger_than_its_container_is_refused_before_mp4parse_reserves_for_it() {
        // Found by the fuzzer: a `pixi` property inside `ipco` claims ~4 GB; mp4parse would
        // reserve that much before noticing (an out-of-memory under libFuzzer's malloc limit).
        let bytes = include_bytes!(
            "../../../fuzz/corpus/decode_analyze/regression-avif-oversized-pixi-box"
        );
        let e = read(bytes, "AVIF").unwrap_err();
        assert!(e.to_string().contains("box larger than"), "{e}");
        let e = crate::probe(bytes, &crate::Limits::default())
            .and_then(|_| crate::analyze(bytes, &crate::Limits::default()).map(|_| ()));
        assert!(e.is_err());
    }

    #[test]
    fn lying_box_sizes_end_the_walk_instead_of_reading_past_the_input() {
        let mut b = Vec::new();
        b.extend_from_slice(&1000u32.to_be_bytes());
        b.extend_from_slice(b"meta");
        b.extend_from_slice(&[0; 8]);
        assert_eq!(boxes(&b).count(), 0);
        let mut large = 1u32.to_be_bytes().to_vec();
        large.extend_from_slice(b"free");
        large.extend_from_slice(&u64::MAX.to_be_bytes());
        assert_eq!(boxes(&large).count(), 0);
        assert!(read(&b, "avif").is_err());
    }
}
