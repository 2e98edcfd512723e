//! AVIF decoding: mp4parse finds the coded AV1 data of the primary item (and its alpha
//! plane), libdav1d decodes it, and the YUV planes are converted to 8-bit RGB(A) here.
//!
//! The size is checked twice before libdav1d runs: from the container (`ispe`, by
//! [`crate::format::read_header`]) and from the AV1 sequence header, which is what the decoder
//! actually allocates for; libdav1d's own frame size limit is the last backstop.

use dav1d::{PixelLayout, PlanarImageComponent};
use image::{DynamicImage, RgbImage, RgbaImage};

use crate::error::{Error, Result};
use crate::heif::{self, Nclx};
use crate::limits::Limits;

/// Decodes the primary image of an AVIF file to 8-bit RGB, or RGBA when it has alpha.
/// `width`×`height` is the `ispe` size that the limits were checked against.
pub(crate) fn decode(
    bytes: &[u8],
    width: u32,
    height: u32,
    limits: &Limits,
) -> Result<DynamicImage> {
    let info = heif::read(bytes, "AVIF")?;
    if &info.item_type == b"grid" {
        return Err(Error::UnsupportedFormat(
            "tiled (grid) AVIF images cannot be decoded here".to_owned(),
        ));
    }
    let ctx = mp4parse::read_avif(
        &mut std::io::Cursor::new(bytes),
        mp4parse::ParseStrictness::Normal,
    )
    .map_err(|e| match e {
        mp4parse::Error::Unsupported(what) => {
            Error::UnsupportedFormat(format!("AVIF feature not supported: {what}"))
        }
        mp4parse::Error::OutOfMemory => Error::ResourceLimit("AVIF container".to_owned()),
        e => Error::corrupt(format!("AVIF container: {e:?}")),
    })?;
    let coded = ctx
        .primary_item_coded_data()
        .filter(|c| !c.is_empty())
        .ok_or_else(|| Error::corrupt("AVIF file without image data"))?;
    let seq = SequenceHeader::find(coded)?;
    check_sequence(&seq, width, height, limits)?;
    let picture = decode_av1(coded, limits)?;
    if (picture.width(), picture.height()) != (width, height) {
        return Err(Error::corrupt(format!(
            "AVIF image is {}×{} but its header says {width}×{height}",
            picture.width(),
            picture.height()
        )));
    }
    // The matrix comes from the container's colour box when it names one (as in libavif);
    // the range always from the AV1 header, which is what the encoder actually used (ravif
    // writes a full-range `colr` box over limited-range data, for one).
    let matrix = match info.nclx {
        Some(Nclx { matrix, .. }) if matrix != 2 => matrix,
        _ => seq.matrix,
    };
    let full_range = seq.full_range;
    let alpha = match ctx.alpha_item_coded_data().filter(|c| !c.is_empty()) {
        Some(coded) => {
            let aseq = SequenceHeader::find(coded)?;
            check_sequence(&aseq, width, height, limits)?;
            let a = decode_av1(coded, limits)?;
            if (a.width(), a.height()) != (width, height) {
                return Err(Error::corrupt(
                    "AVIF alpha plane differs in size from the image",
                ));
            }
            Some(alpha_plane(&a, aseq.full_range))
        }
        None => None,
    };
    let rgb = to_rgb(&picture, matrix, full_range);
    Ok(match alpha {
        None => DynamicImage::ImageRgb8(
            RgbImage::from_raw(width, height, rgb).ok_or_else(|| Error::corrupt("AVIF size"))?,
        ),
        Some(alpha) => {
            let mut rgba = Vec::with_capacity(alpha.len() * 4);
            for (px, &a) in rgb.chunks_exact(3).zip(&alpha) {
                if ctx.premultiplied_alpha {
                    // Undo the premultiplication: the pipeline works on straight alpha.
                    let un = |c: u8| {
                        (u32::from(c) * 255 + u32::from(a) / 2)
                            .checked_div(u32::from(a))
                            .map_or(0, |v| v.min(255) as u8)
                    };
                    rgba.extend_from_slice(&[un(px[0]), un(px[1]), un(px[2]), a]);
                } else {
                    rgba.extend_from_slice(&[px[0], px[1], px[2], a]);
                }
            }
            DynamicImage::ImageRgba8(
                RgbaImage::from_raw(width, height, rgba)
                    .ok_or_else(|| Error::corrupt("AVIF size"))?,
            )
        }
    })
}

fn check_sequence(seq: &SequenceHeader, width: u32, height: u32, limits: &Limits) -> Result<()> {
    limits.check_dimensions(seq.max_width, seq.max_height)?;
    if seq.max_width < width || seq.max_height < height {
        return Err(Error::corrupt(format!(
            "AVIF header says {width}×{height} but the AV1 stream is at most {}×{}",
            seq.max_width, seq.max_height
        )));
    }
    Ok(())
}

fn dav1d_error(e: dav1d::Error) -> Error {
    match e {
        dav1d::Error::NotEnoughMemory => Error::ResourceLimit("AV1 decoder out of memory".into()),
        dav1d::Error::UnsupportedBitstream => {
            Error::UnsupportedFormat("AV1 bitstream feature not supported".to_owned())
        }
        e => Error::corrupt(format!("AV1 data: {e}")),
    }
}

/// Decodes one still AV1 frame. One thread, no frame delay: the server parallelises across
/// requests, and a still image has nothing to pipeline.
fn decode_av1(coded: &[u8], limits: &Limits) -> Result<dav1d::Picture> {
    let mut settings = dav1d::Settings::new();
    settings.set_n_threads(1);
    settings.set_max_frame_delay(1);
    settings.set_frame_size_limit(u32::try_from(limits.max_pixels).unwrap_or(u32::MAX));
    let mut dec = dav1d::Decoder::with_settings(&settings).map_err(dav1d_error)?;
    let mut pending = match dec.send_data(coded.to_vec(), None, None, None) {
        Ok(()) => false,
        Err(dav1d::Error::Again) => true,
        Err(e) => return Err(dav1d_error(e)),
    };
    // With one thread and no delay, every call makes progress; a stream that still has no
    // picture once all data is in is incomplete. The bound is a guard against a busy loop.
    for _ in 0..16 {
        match dec.get_picture() {
            Ok(p) => return Ok(p),
            Err(dav1d::Error::Again) if pending => match dec.send_pending_data() {
                Ok(()) => pending = false,
                Err(dav1d::Error::Again) => {}
                Err(e) => return Err(dav1d_error(e)),
            },
            Err(dav1d::Error::Again) => break,
            Err(e) => return Err(dav1d_error(e)),
        }
    }
    Err(Error::corrupt(
        "the AVIF image data is truncated or incomplete",
    ))
}

/// Reads sample `x` of row `y` of a plane, 8-bit or 16-bit storage.
struct PlaneRef {
    data: dav1d::Plane,
    stride: usize,
    wide: bool,
}

impl PlaneRef {
    fn new(p: &dav1d::Picture, c: PlanarImageComponent) -> Self {
        PlaneRef {
            data: p.plane(c),
            stride: p.stride(c) as usize,
            wide: p.bit_depth() > 8,
        }
    }

    /// One row as i32 samples (at most `width` of them).
    fn row(&self, y: usize, width: usize, out: &mut Vec<i32>) {
        out.clear();
        let start = y * self.stride;
        if self.wide {
            let row = self.data.get(start..start + width * 2).unwrap_or(&[]);
            out.extend(
                row.chunks_exact(2)
                    .map(|b| i32::from(u16::from_ne_bytes([b[0], b[1]]))),
            );
        } else {
            let row = self.data.get(start..start + width).unwrap_or(&[]);
            out.extend(row.iter().map(|&v| i32::from(v)));
        }
        // A short plane (never from libdav1d) reads as black rather than panicking.
        out.resize(width, 0);
    }
}

/// Luma weights (Kr, Kb) of an H.273 matrix; `None` for identity (GBR) and YCgCo.
fn kr_kb(matrix: u16) -> Option<(f32, f32)> {
    Some(match matrix {
        0 | 8 => return None,
        1 => (0.2126, 0.0722),
        4 => (0.30, 0.11),
        7 => (0.212, 0.087),
        9 | 10 => (0.2627, 0.0593),
        // 5, 6 (BT.601), 2 (unspecified, which encoders mean as BT.601, like libavif) and
        // anything rarer.
        _ => (0.299, 0.114),
    })
}

/// Horizontal chroma upsampling of one row to `width` samples: a (3, 1)/4 filter for
/// half-width chroma (centre-sited), a copy otherwise.
fn upsample_row(src: &[i32], width: usize, half: bool, out: &mut Vec<i32>) {
    out.clear();
    if !half {
        out.extend_from_slice(&src[..width.min(src.len())]);
        out.resize(width, src.last().copied().unwrap_or(0));
        return;
    }
    let last = src.len().saturating_sub(1);
    let at = |i: isize| src[i.clamp(0, last as isize) as usize];
    for x in 0..width {
        let k = (x / 2) as isize;
        let near = at(k);
        let far = if x % 2 == 0 { at(k - 1) } else { at(k + 1) };
        // Kept ×4 here; the vertical pass divides.
        out.push(3 * near + far);
    }
}

/// YUV → 8-bit RGB, handling 4:0:0, 4:2:0, 4:2:2 and 4:4:4 at 8, 10 and 12 bits.
fn to_rgb(p: &dav1d::Picture, matrix: u16, full_range: bool) -> Vec<u8> {
    let (w, h) = (p.width() as usize, p.height() as usize);
    let depth = p.bits_per_component().map_or(8, |b| b.0) as i32;
    let max = ((1 << depth) - 1) as f32;
    let layout = p.pixel_layout();
    let y_plane = PlaneRef::new(p, PlanarImageComponent::Y);
    let chroma = (layout != PixelLayout::I400).then(|| {
        (
            PlaneRef::new(p, PlanarImageComponent::U),
            PlaneRef::new(p, PlanarImageComponent::V),
        )
    });
    let half_x = matches!(layout, PixelLayout::I420 | PixelLayout::I422);
    let half_y = layout == PixelLayout::I420;
    let cw = if half_x { w.div_ceil(2) } else { w };
    let ch = if half_y { h.div_ceil(2) } else { h };

    // Normalise to Y in 0..1 and Cb/Cr in -0.5..0.5.
    let scale = (1 << (depth - 8)) as f32;
    let (y_off, y_scale, c_scale) = if full_range {
        (0.0, 1.0 / max, 1.0 / max)
    } else {
        (16.0 * scale, 1.0 / (219.0 * scale), 1.0 / (224.0 * scale))
    };
    let c_mid = (1 << (depth - 1)) as f32;
    let coeffs = kr_kb(matrix).map(|(kr, kb)| {
        let kg = 1.0 - kr - kb;
        (
            2.0 * (1.0 - kr),
            2.0 * kb * (1.0 - kb) / kg,
            2.0 * kr * (1.0 - kr) / kg,
            2.0 * (1.0 - kb),
        )
    });
    let to8 = |v: f32| (v * 255.0 + 0.5).clamp(0.0, 255.0) as u8;

    let mut out = Vec::with_capacity(w * h * 3);
    let (mut yrow, mut tmp) = (Vec::new(), Vec::new());
    let (mut u0, mut u1, mut v0, mut v1) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut cache: Option<(usize, usize)> = None;
    for y in 0..h {
        y_plane.row(y, w, &mut yrow);
        let Some((up, vp)) = &chroma else {
            for &l in &yrow {
                let g = to8((l as f32 - y_off) * y_scale);
                out.extend_from_slice(&[g, g, g]);
            }
            continue;
        };
        // The two chroma rows around this luma row and their weights (×4 in total).
        let (r0, r1, w0, w1) = if half_y {
            let k = y / 2;
            let far = if y % 2 == 0 {
                k.saturating_sub(1)
            } else {
                (k + 1).min(ch - 1)
            };
            (k, far, 3, 1)
        } else {
            (y, y, 4, 0)
        };
        if cache != Some((r0, r1)) {
            up.row(r0, cw, &mut tmp);
            upsample_row(&tmp, w, half_x, &mut u0);
            up.row(r1, cw, &mut tmp);
            upsample_row(&tmp, w, half_x, &mut u1);
            vp.row(r0, cw, &mut tmp);
            upsample_row(&tmp, w, half_x, &mut v0);
            vp.row(r1, cw, &mut tmp);
            upsample_row(&tmp, w, half_x, &mut v1);
            cache = Some((r0, r1));
        }
        let div = if half_x { 16.0 } else { 4.0 };
        for x in 0..w {
            let cb = (w0 * u0[x] + w1 * u1[x]) as f32 / div;
            let cr = (w0 * v0[x] + w1 * v1[x]) as f32 / div;
            let rgb = match coeffs {
                Some((rv, gu, gv, bu)) => {
                    let l = (yrow[x] as f32 - y_off) * y_scale;
                    let (u, v) = ((cb - c_mid) * c_scale, (cr - c_mid) * c_scale);
                    [l + rv * v, l - gu * u - gv * v, l + bu * u]
                }
                None if matrix == 8 => {
                    // YCgCo: Cb carries Cg, Cr carries Co.
                    let l = (yrow[x] as f32 - y_off) * y_scale;
                    let (cg, co) = ((cb - c_mid) * c_scale, (cr - c_mid) * c_scale);
                    let t = l - cg;
                    [t + co, l + cg, t - co]
                }
                // Identity: the planes are G, B, R.
                None => [
                    (cr - y_off) * y_scale,
                    (yrow[x] as f32 - y_off) * y_scale,
                    (cb - y_off) * y_scale,
                ],
            };
            out.extend_from_slice(&[to8(rgb[0]), to8(rgb[1]), to8(rgb[2])]);
        }
    }
    out
}

/// The luma plane of an alpha image as 8-bit alpha.
fn alpha_plane(p: &dav1d::Picture, full_range: bool) -> Vec<u8> {
    let (w, h) = (p.width() as usize, p.height() as usize);
    let depth = p.bits_per_component().map_or(8, |b| b.0) as i32;
    let scale = (1 << (depth - 8)) as f32;
    let (off, range) = if full_range {
        (0.0, ((1 << depth) - 1) as f32)
    } else {
        (16.0 * scale, 219.0 * scale)
    };
    let plane = PlaneRef::new(p, PlanarImageComponent::Y);
    let mut row = Vec::new();
    let mut out = Vec::with_capacity(w * h);
    for y in 0..h {
        plane.row(y, w, &mut row);
        out.extend(
            row.iter()
                .map(|&a| ((a as f32 - off) / range * 255.0 + 0.5).clamp(0.0, 255.0) as u8),
        );
    }
    out
}

/// The parts of an AV1 sequence header that matter before and after decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SequenceHeader {
    max_width: u32,
    max_height: u32,
    matrix: u16,
    full_range: bool,
}

/// MSB-first bit reader over one OBU payload.
struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Bits<'_> {
    fn bit(&mut self) -> Option<u32> {
        let byte = *self.data.get(self.pos / 8)?;
        let b = (byte >> (7 - self.pos % 8)) & 1;
        self.pos += 1;
        Some(u32::from(b))
    }
    fn bits(&mut self, n: u32) -> Option<u32> {
        (0..n).try_fold(0u32, |acc, _| Some((acc << 1) | self.bit()?))
    }
    fn flag(&mut self) -> Option<bool> {
        self.bit().map(|b| b == 1)
    }
    fn uvlc(&mut self) -> Option<u32> {
        let mut zeros = 0;
        while !self.flag()? {
            zeros += 1;
            if zeros >= 32 {
                return Some(u32::MAX);
            }
        }
        Some(self.bits(zeros)?.saturating_add((1u32 << zeros) - 1))
    }
}

impl SequenceHeader {
    /// Finds and parses the sequence header OBU at the start of an AV1 item.
    fn find(coded: &[u8]) -> Result<SequenceHeader> {
        let bad = || Error::corrupt("AVIF image data without a valid AV1 sequence header");
        let mut pos = 0;
        while pos < coded.len() {
            let head = coded[pos];
            let kind = (head >> 3) & 0xF;
            let has_ext = head & 0x04 != 0;
            let has_size = head & 0x02 != 0;
            pos += 1 + usize::from(has_ext);
            let size = if has_size {
                let (size, n) = leb128(coded.get(pos..).ok_or_else(bad)?).ok_or_else(bad)?;
                pos += n;
                size
            } else {
                coded.len().saturating_sub(pos)
            };
            let end = pos.checked_add(size).filter(|&e| e <= coded.len());
            let payload = coded.get(pos..end.ok_or_else(bad)?).ok_or_else(bad)?;
            if kind == 1 {
                return Self::parse(payload).ok_or_else(bad);
            }
            pos += size;
        }
        Err(bad())
    }

    fn parse(data: &[u8]) -> Option<SequenceHeader> {
        let mut b = Bits { data, pos: 0 };
        let profile = b.bits(3)?;
        let _still = b.flag()?;
        let reduced = b.flag()?;
        if reduced {
            b.bits(5)?; // seq_level_idx[0]
        } else {
            let timing = b.flag()?;
            let mut decoder_model = false;
            let mut buffer_delay_len = 0;
            if timing {
                b.bits(32)?;
                b.bits(32)?;
                if b.flag()? {
                    b.uvlc()?;
                }
                decoder_model = b.flag()?;
                if decoder_model {
                    buffer_delay_len = b.bits(5)? + 1;
                    b.bits(32)?;
                    b.bits(5)?;
                    b.bits(5)?;
                }
            }
            let display_delay = b.flag()?;
            let points = b.bits(5)? + 1;
            for _ in 0..points {
                b.bits(12)?; // operating_point_idc
                let level = b.bits(5)?;
                if level > 7 {
                    b.bit()?; // seq_tier
                }
                if decoder_model && b.flag()? {
                    b.bits(buffer_delay_len)?;
                    b.bits(buffer_delay_len)?;
                    b.bit()?;
                }
                if display_delay && b.flag()? {
                    b.bits(4)?;
                }
            }
        }
        let wbits = b.bits(4)? + 1;
        let hbits = b.bits(4)? + 1;
        let max_width = b.bits(wbits)?.checked_add(1)?;
        let max_height = b.bits(hbits)?.checked_add(1)?;
        if !reduced && b.flag()? {
            b.bits(4)?;
            b.bits(3)?;
        }
        b.bits(3)?; // 128×128 superblocks, filter intra, intra edge filter
        if !reduced {
            b.bits(4)?; // interintra, masked compound, warped motion, dual filter
            let order_hint = b.flag()?;
            if order_hint {
                b.bits(2)?; // jnt_comp, ref_frame_mvs
            }
            let force_screen_content = if b.flag()? { 2 } else { b.bits(1)? };
            if force_screen_content > 0 && !b.flag()? {
                b.bit()?; // seq_force_integer_mv
            }
            if order_hint {
                b.bits(3)?;
            }
        }
        b.bits(3)?; // superres, cdef, restoration
        // color_config
        let high_bitdepth = b.flag()?;
        if profile == 2 && high_bitdepth {
            b.bit()?;
        }
        let mono = if profile == 1 { false } else { b.flag()? };
        let (cp, tc, mc) = if b.flag()? {
            (b.bits(8)?, b.bits(8)?, b.bits(8)?)
        } else {
            (2, 2, 2)
        };
        let full_range = if !mono && cp == 1 && tc == 13 && mc == 0 {
            true
        } else {
            b.flag()?
        };
        Some(SequenceHeader {
            max_width,
            max_height,
            matrix: mc as u16,
            full_range,
        })
    }
}

/// Unsigned LEB128 as used for OBU sizes (at most 8 bytes): (value, bytes read).
fn leb128(b: &[u8]) -> Option<(usize, usize)> {
    let mut value = 0u64;
    for (i, &byte) in b.iter().take(8).enumerate() {
        value |= u64::from(byte & 0x7F) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((usize::try_from(value).ok()?, i + 1));
        }
    }
    None
}

#[cfg(all(test, feature = "avif"))]
mod tests {
    use super::*;
    use crate::compare::{mean_abs_error, ssim};
    use image::GenericImageView;
    use rav1e::prelude::*;
    use rgb::FromSlice;

    /// Gradients plus three flat patches whose colour must survive exactly-ish.
    fn card() -> DynamicImage {
        DynamicImage::ImageRgb8(RgbImage::from_fn(64, 48, |x, y| match (x / 16, y / 16) {
            (0, 0) => image::Rgb([220, 20, 20]),
            (1, 0) => image::Rgb([20, 200, 40]),
            (2, 0) => image::Rgb([30, 40, 230]),
            _ => image::Rgb([(x * 4) as u8, (y * 5) as u8, ((x + y) * 2) as u8]),
        }))
    }

    fn assert_close(src: &DynamicImage, got: &DynamicImage, what: &str) {
        assert_eq!(src.dimensions(), got.dimensions(), "{what}");
        let s = ssim(src, got).unwrap();
        let mae = mean_abs_error(src, got).unwrap();
        assert!(s > 0.95 && mae < 4.0, "{what}: SSIM {s:.4}, MAE {mae:.2}");
        for (x, y) in [(8, 8), (24, 8), (40, 8)] {
            let (a, b) = (src.get_pixel(x, y).0, got.get_pixel(x, y).0);
            let err = (0..3).map(|c| a[c].abs_diff(b[c])).max().unwrap();
            assert!(err <= 10, "{what} at ({x},{y}): {b:?} vs {a:?}");
        }
    }

    fn decode_all(avif: &[u8]) -> DynamicImage {
        decode(avif, 64, 48, &Limits::default()).unwrap()
    }

    #[test]
    fn ravif_output_at_8_and_10_bits_ycbcr_and_rgb_decodes_to_the_source() {
        let src = card();
        let rgb = src.to_rgb8();
        let px = ravif::Img::new(rgb.as_raw().as_rgb(), 64, 48);
        for depth in [ravif::BitDepth::Eight, ravif::BitDepth::Ten] {
            for model in [ravif::ColorModel::YCbCr, ravif::ColorModel::RGB] {
                let enc = ravif::Encoder::new()
                    .with_quality(92.0)
                    .with_speed(10)
                    .with_bit_depth(depth)
                    .with_internal_color_model(model);
                let avif = enc.encode_rgb(px).unwrap().avif_file;
                assert_close(&src, &decode_all(&avif), &format!("{depth:?} {model:?}"));
            }
        }
    }

    #[test]
    fn limited_range_bt709_from_ravif_decodes_to_the_source() {
        let src = card();
        // BT.709 limited range, the other common combination, converted here by hand.
        let (kr, kb) = (0.2126f32, 0.0722f32);
        let planes: Vec<[u8; 3]> = src
            .to_rgb8()
            .pixels()
            .map(|p| {
                let [r, g, b] = p.0.map(|c| f32::from(c) / 255.0);
                let y = kr * r + (1.0 - kr - kb) * g + kb * b;
                let (u, v) = ((b - y) / (2.0 * (1.0 - kb)), (r - y) / (2.0 * (1.0 - kr)));
                [16.0 + 219.0 * y, 128.0 + 224.0 * u, 128.0 + 224.0 * v].map(|c| c.round() as u8)
            })
            .collect();
        let avif = ravif::Encoder::new()
            .with_quality(92.0)
            .with_speed(10)
            .encode_raw_planes_8_bit(
                64,
                48,
                planes,
                None::<[u8; 0]>,
                ravif::PixelRange::Limited,
                ravif::MatrixCoefficients::BT709,
            )
            .unwrap()
            .avif_file;
        assert_close(&src, &decode_all(&avif), "BT.709 limited");
    }

    #[test]
    fn premultiplied_alpha_is_undone() {
        // Left half opaque, right half 50 % alpha; the colour planes hold premultiplied
        // values, as the `prem` box announces.
        let want = |x: usize| [200u8, 100, 50, if x < 32 { 255 } else { 128 }];
        let planes: Vec<[u8; 3]> = (0..64 * 48)
            .map(|i| {
                let [r, g, b, a] = want(i % 64);
                let pre = |c: u8| (f32::from(c) * f32::from(a) / 255.0).round() as u8;
                // ColorModel::RGB stores G, B, R.
                [pre(g), pre(b), pre(r)]
            })
            .collect();
        let alpha: Vec<u8> = (0..64 * 48).map(|i| want(i % 64)[3]).collect();
        let avif = ravif::Encoder::new()
            .with_quality(95.0)
            .with_alpha_quality(95.0)
            .with_speed(10)
            .with_alpha_color_mode(ravif::AlphaColorMode::Premultiplied)
            .encode_raw_planes_8_bit(
                64,
                48,
                planes,
                Some(alpha),
                ravif::PixelRange::Full,
                ravif::MatrixCoefficients::Identity,
            )
            .unwrap()
            .avif_file;
        let got = decode_all(&avif).to_rgba8();
        for x in [8, 56] {
            let p = got.get_pixel(x as u32, 20).0;
            let err = (0..4).map(|c| p[c].abs_diff(want(x)[c])).max().unwrap();
            assert!(err <= 8, "x={x}: {p:?} vs {:?}", want(x));
        }
    }

    /// Encodes `src` with rav1e at 8 bits in a subsampled layout (what libavif writes by
    /// default; ravif only writes 4:4:4), BT.601 full range.
    fn subsampled_avif(src: &DynamicImage, sampling: ChromaSampling) -> Vec<u8> {
        let (w, h) = (64usize, 48usize);
        let (kr, kb) = (0.299f32, 0.114f32);
        let yuv: Vec<[f32; 3]> = src
            .to_rgb8()
            .pixels()
            .map(|p| {
                let [r, g, b] = p.0.map(|c| f32::from(c) / 255.0);
                let y = kr * r + (1.0 - kr - kb) * g + kb * b;
                [
                    y,
                    (b - y) / (2.0 * (1.0 - kb)),
                    (r - y) / (2.0 * (1.0 - kr)),
                ]
            })
            .collect();
        let (sx, sy) = match sampling {
            ChromaSampling::Cs420 => (2, 2),
            ChromaSampling::Cs422 => (2, 1),
            _ => (1, 1),
        };
        let luma: Vec<u8> = yuv.iter().map(|p| (p[0] * 255.0).round() as u8).collect();
        // Box-filtered chroma, centred on each block.
        let chroma = |c: usize| -> Vec<u8> {
            let (cw, ch) = (w / sx, h / sy);
            (0..cw * ch)
                .map(|i| {
                    let (x, y) = ((i % cw) * sx, (i / cw) * sy);
                    let mut sum = 0.0;
                    for dy in 0..sy {
                        for dx in 0..sx {
                            sum += yuv[(y + dy) * w + x + dx][c];
                        }
                    }
                    (128.0 + 255.0 * sum / (sx * sy) as f32)
                        .round()
                        .clamp(0.0, 255.0) as u8
                })
                .collect()
        };
        let (c1, c2) = (chroma(1), chroma(2));
        let planes: &[(&[u8], usize)] = if sampling == ChromaSampling::Cs400 {
            &[(&luma, w)]
        } else {
            &[(&luma, w), (&c1, w / sx), (&c2, w / sx)]
        };
        let av1 = crate::av1enc::encode_planes(w, h, sampling, 20, 10, planes).unwrap();
        avif_serialize::Aviffy::new()
            .set_chroma_subsampling((sx == 2, sy == 2))
            .set_monochrome(sampling == ChromaSampling::Cs400)
            .set_matrix_coefficients(avif_serialize::constants::MatrixCoefficients::Bt601)
            .set_full_color_range(true)
            .to_vec(&av1, None, w as u32, h as u32, 8)
    }

    #[test]
    fn subsampled_chroma_4_2_0_and_4_2_2_decodes_to_the_source() {
        let src = card();
        for sampling in [ChromaSampling::Cs420, ChromaSampling::Cs422] {
            let avif = subsampled_avif(&src, sampling);
            assert_close(&src, &decode_all(&avif), &format!("{sampling:?}"));
        }
    }

    #[test]
    fn monochrome_decodes_to_grey() {
        let src = DynamicImage::ImageRgb8(card().grayscale().to_rgb8());
        let got = decode_all(&subsampled_avif(&src, ChromaSampling::Cs400));
        let s = ssim(&src, &got).unwrap();
        let mae = mean_abs_error(&src, &got).unwrap();
        assert!(s > 0.95 && mae < 3.0, "SSIM {s:.4}, MAE {mae:.2}");
        assert!(
            got.to_rgb8()
                .pixels()
                .all(|p| p.0[0] == p.0[1] && p.0[1] == p.0[2])
        );
    }

    #[test]
    fn the_sequence_header_gives_size_matrix_and_range() {
        let avif = subsampled_avif(&card(), ChromaSampling::Cs420);
        let ctx = mp4parse::read_avif(
            &mut std::io::Cursor::new(&avif),
            mp4parse::ParseStrictness::Normal,
        )
        .unwrap();
        let seq = SequenceHeader::find(ctx.primary_item_coded_data().unwrap()).unwrap();
        assert_eq!(
            seq,
            SequenceHeader {
                max_width: 64,
                max_height: 48,
                matrix: 6,
                full_range: true
            }
        );
    }
}
