//! Format sniffing and header parsing: everything [`crate::probe`] learns without decoding
//! pixels.

use std::io::Cursor;

use image::ImageDecoder;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::heif;
use crate::limits::Limits;
use crate::metadata;

/// The format of an input image, recognised from its magic bytes (never from a file name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceFormat {
    /// JPEG / JFIF / EXIF.
    Jpeg,
    /// PNG (and APNG).
    Png,
    /// WebP, lossy or lossless.
    Webp,
    /// GIF; only the first frame is decoded.
    Gif,
    /// AVIF (still images; the primary image of a sequence). Decoded with libdav1d when
    /// the `avif-decode` feature is on (the default).
    Avif,
    /// HEIC/HEIF; recognised, never decoded (no permissively licensed decoder).
    Heic,
    /// TIFF.
    Tiff,
    /// Windows bitmap.
    Bmp,
}

impl SourceFormat {
    /// Recognises the format from the first bytes of the input.
    pub fn sniff(b: &[u8]) -> Option<SourceFormat> {
        if b.starts_with(&[0xFF, 0xD8, 0xFF]) {
            Some(SourceFormat::Jpeg)
        } else if b.starts_with(b"\x89PNG\r\n\x1a\n") {
            Some(SourceFormat::Png)
        } else if b.starts_with(b"GIF87a") || b.starts_with(b"GIF89a") {
            Some(SourceFormat::Gif)
        } else if b.len() >= 12 && &b[..4] == b"RIFF" && &b[8..12] == b"WEBP" {
            Some(SourceFormat::Webp)
        } else if b.starts_with(b"II*\0") || b.starts_with(b"MM\0*") {
            Some(SourceFormat::Tiff)
        } else if b.starts_with(b"BM") && b.len() >= 26 {
            Some(SourceFormat::Bmp)
        } else if b.len() >= 16 && &b[4..8] == b"ftyp" {
            isobmff_brand(b)
        } else {
            None
        }
    }

    /// Lower-case name, as used in error messages and JSON.
    pub fn name(self) -> &'static str {
        match self {
            SourceFormat::Jpeg => "jpeg",
            SourceFormat::Png => "png",
            SourceFormat::Webp => "webp",
            SourceFormat::Gif => "gif",
            SourceFormat::Avif => "avif",
            SourceFormat::Heic => "heic",
            SourceFormat::Tiff => "tiff",
            SourceFormat::Bmp => "bmp",
        }
    }

    /// Whether [`crate::process`] and [`crate::analyze`] can decode this format here.
    pub fn is_decodable(self) -> bool {
        let avif_off = self == SourceFormat::Avif && !cfg!(feature = "avif-decode");
        self != SourceFormat::Heic && !avif_off
    }

    fn image_format(self) -> Option<image::ImageFormat> {
        Some(match self {
            SourceFormat::Jpeg => image::ImageFormat::Jpeg,
            SourceFormat::Png => image::ImageFormat::Png,
            SourceFormat::Webp => image::ImageFormat::WebP,
            SourceFormat::Gif => image::ImageFormat::Gif,
            SourceFormat::Tiff => image::ImageFormat::Tiff,
            SourceFormat::Bmp => image::ImageFormat::Bmp,
            SourceFormat::Avif | SourceFormat::Heic => return None,
        })
    }
}

fn isobmff_brand(b: &[u8]) -> Option<SourceFormat> {
    let size = u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize;
    let end = size.clamp(16, b.len().min(256));
    // Major brand at 8..12, compatible brands from 16 on.
    let brands = std::iter::once(&b[8..12]).chain(b[16..end].chunks_exact(4));
    let mut heif = false;
    for brand in brands {
        match brand {
            b"avif" | b"avis" => return Some(SourceFormat::Avif),
            b"heic" | b"heix" | b"hevc" | b"hevx" | b"heim" | b"heis" | b"mif1" | b"msf1" => {
                heif = true
            }
            _ => {}
        }
    }
    heif.then_some(SourceFormat::Heic)
}

/// What the header says, before any pixel is decoded.
#[derive(Debug, Clone)]
pub(crate) struct Header {
    pub format: SourceFormat,
    pub width: u32,
    pub height: u32,
    pub has_alpha: bool,
    pub animated: bool,
    /// Number of frames (GIF and WebP; 1 for everything else), counted from the block
    /// structure without decoding.
    pub frames: u32,
    /// GIF only: whether it carries comments or application data other than the loop count
    /// (which a byte-for-byte pass-through would keep).
    pub gif_extras: bool,
    /// Orientation set by the container itself (HEIF `irot`/`imir`), which wins over EXIF.
    pub orientation: Option<u8>,
    /// JPEG colour components (3 = YCbCr, 1 = grey, 4 = CMYK/YCCK); 0 for other formats.
    pub jpeg_components: u8,
    /// JPEG: offset of the first start-of-scan marker; 0 for other formats.
    pub jpeg_scan_start: usize,
    pub exif: Option<Vec<u8>>,
    pub icc: Option<Vec<u8>>,
}

/// Reads the header, enforcing `limits` on bytes, pixels and dimensions.
pub(crate) fn read_header(bytes: &[u8], limits: &Limits) -> Result<Header> {
    limits.check_bytes(bytes.len())?;
    let format = SourceFormat::sniff(bytes).ok_or_else(|| {
        Error::UnsupportedFormat(
            "not a JPEG, PNG, WebP, GIF, AVIF, HEIC, TIFF or BMP image".to_owned(),
        )
    })?;
    let header = match format {
        SourceFormat::Jpeg => jpeg_header(bytes)?,
        SourceFormat::Avif | SourceFormat::Heic => {
            // The primary item's `ispe`, from the box structure alone: the limits below are
            // checked before any coded data is read.
            let info = heif::read(bytes, &format.name().to_ascii_uppercase())?;
            Header {
                format,
                width: info.width,
                height: info.height,
                has_alpha: info.has_alpha,
                animated: format == SourceFormat::Avif && avif_is_sequence(bytes),
                frames: 1,
                gif_extras: false,
                orientation: Some(info.orientation),
                jpeg_components: 0,
                jpeg_scan_start: 0,
                exif: None,
                icc: info.icc,
            }
        }
        _ => generic_header(bytes, format, limits)?,
    };
    limits.check_dimensions(header.width, header.height)?;
    limits.check_frames(header.frames, header.width, header.height)?;
    Ok(header)
}

/// Opens an `image` crate decoder with limits set; reading its header is cheap.
pub(crate) fn image_decoder<'a>(
    bytes: &'a [u8],
    format: SourceFormat,
    limits: &Limits,
) -> Result<Box<dyn ImageDecoder + 'a>> {
    image_decoder_with(bytes, format, limits.image_limits())
}

fn image_decoder_with<'a>(
    bytes: &'a [u8],
    format: SourceFormat,
    image_limits: image::Limits,
) -> Result<Box<dyn ImageDecoder + 'a>> {
    let fmt = format
        .image_format()
        .ok_or_else(|| unsupported_decode(format))?;
    let mut reader = image::ImageReader::with_format(Cursor::new(bytes), fmt);
    // Our own check runs on the dimensions first; these are the allocation backstop.
    reader.limits(image_limits.clone());
    let mut dec = reader.into_decoder().map_err(Error::from_image)?;
    dec.set_limits(image_limits).map_err(Error::from_image)?;
    Ok(Box::new(dec))
}

pub(crate) fn unsupported_decode(format: SourceFormat) -> Error {
    match format {
        SourceFormat::Heic => Error::UnsupportedFormat(
            "HEIC/HEIF images cannot be decoded: no permissively licensed decoder is available; convert to JPEG, PNG, WebP or AVIF first".to_owned(),
        ),
        SourceFormat::Avif => Error::UnsupportedFormat(
            "AVIF images can be written but not read in this build (feature \"avif-decode\" is off)".to_owned(),
        ),
        other => Error::UnsupportedFormat(format!("cannot decode {}", other.name())),
    }
}

fn generic_header(bytes: &[u8], format: SourceFormat, limits: &Limits) -> Result<Header> {
    // Only headers are parsed here; the dimension limits are ours to check right after, so
    // the decoder gets the allocation cap alone. (Without a cap, a WebP claiming a 3 GB EXIF
    // chunk made image-webp allocate 3 GB: found by the fuzzer.)
    let mut header_limits = limits.image_limits();
    header_limits.max_image_width = None;
    header_limits.max_image_height = None;
    let mut dec = image_decoder_with(bytes, format, header_limits).map_err(|e| match e {
        // A header-only parse that fails means broken data, whatever the crate calls it.
        Error::UnsupportedFormat(m) | Error::ResourceLimit(m) => Error::Corrupt(m),
        e => e,
    })?;
    let (width, height) = dec.dimensions();
    let has_alpha = dec.color_type().has_alpha();
    // Metadata that fails to parse is not worth refusing the image for.
    let (icc, exif) = if format == SourceFormat::Webp {
        // Our own chunk walk never reads past the input, whatever the chunk sizes claim.
        webp_metadata(bytes)
    } else {
        (
            dec.icc_profile().ok().flatten(),
            dec.exif_metadata().ok().flatten(),
        )
    };
    let exif = exif.map(metadata::strip_exif_prefix);
    let (frames, gif_extras) = match format {
        SourceFormat::Gif => {
            let scan = gif_scan(bytes);
            (scan.frames.max(1), scan.extras)
        }
        SourceFormat::Webp if webp_is_animated(bytes) => (webp_frame_count(bytes).max(1), false),
        _ => (1, false),
    };
    let animated = match format {
        SourceFormat::Png => png_is_animated(bytes),
        _ => frames > 1,
    };
    Ok(Header {
        format,
        width,
        height,
        has_alpha,
        animated,
        frames,
        gif_extras,
        orientation: None,
        jpeg_components: 0,
        jpeg_scan_start: 0,
        exif,
        icc,
    })
}

/// Walks JPEG segments up to the start of scan: size, components, EXIF (APP1) and ICC
/// (APP2, possibly split over several segments).
fn jpeg_header(b: &[u8]) -> Result<Header> {
    let mut pos = 2;
    let mut exif = None;
    let mut icc_parts: Vec<(u8, &[u8])> = Vec::new();
    let mut size = None;
    loop {
        // Fill bytes (0xFF padding) may precede a marker.
        while pos < b.len() && b[pos] == 0xFF && b.get(pos + 1) == Some(&0xFF) {
            pos += 1;
        }
        if pos + 4 > b.len() || b[pos] != 0xFF {
            return Err(Error::corrupt("JPEG header ends before the image data"));
        }
        let marker = b[pos + 1];
        if marker == 0xD8 || (0xD0..=0xD7).contains(&marker) || marker == 0x01 {
            pos += 2;
            continue;
        }
        let len = usize::from(u16::from_be_bytes([b[pos + 2], b[pos + 3]]));
        if len < 2 || pos + 2 + len > b.len() {
            return Err(Error::corrupt("JPEG segment runs past the end of the file"));
        }
        let seg = &b[pos + 4..pos + 2 + len];
        match marker {
            0xDA => break,
            0xD9 => return Err(Error::corrupt("JPEG ends before the image data")),
            0xC0..=0xCF if !matches!(marker, 0xC4 | 0xC8 | 0xCC) => {
                if seg.len() < 6 {
                    return Err(Error::corrupt("JPEG frame header is too short"));
                }
                let h = u32::from(u16::from_be_bytes([seg[1], seg[2]]));
                let w = u32::from(u16::from_be_bytes([seg[3], seg[4]]));
                if matches!(marker, 0xC3 | 0xC7 | 0xCB | 0xCF) {
                    return Err(Error::UnsupportedFormat("lossless JPEG".to_owned()));
                }
                size = Some((w, h, seg[5]));
            }
            0xE1 if seg.starts_with(b"Exif\0") && exif.is_none() => {
                exif = Some(metadata::strip_exif_prefix(seg.to_vec()));
            }
            0xE2 if seg.starts_with(b"ICC_PROFILE\0") && seg.len() > 14 => {
                icc_parts.push((seg[12], &seg[14..]));
            }
            _ => {}
        }
        pos += 2 + len;
    }
    let (width, height, components) =
        size.ok_or_else(|| Error::corrupt("JPEG without a frame header"))?;
    if height == 0 {
        // DNL-defined heights are legal but so rare that they are mostly broken files.
        return Err(Error::corrupt("JPEG with an unspecified height"));
    }
    icc_parts.sort_by_key(|(seq, _)| *seq);
    let icc =
        (!icc_parts.is_empty()).then(|| icc_parts.iter().flat_map(|(_, d)| *d).copied().collect());
    Ok(Header {
        format: SourceFormat::Jpeg,
        width,
        height,
        has_alpha: false,
        animated: false,
        frames: 1,
        gif_extras: false,
        orientation: None,
        jpeg_components: components,
        jpeg_scan_start: pos,
        exif,
        icc,
    })
}

/// Whether a complete JPEG scan follows the header: truncated uploads decode to grey
/// garbage in libjpeg, which only warns; we want an error instead.
/// Entropy-coded data cannot contain 0xFFD9, so any end marker after the first scan
/// ends the image; searching from the end finds it at once in a complete file.
pub(crate) fn jpeg_has_end_marker(b: &[u8], scan_start: usize) -> bool {
    b.get(scan_start..)
        .is_some_and(|scan| scan.windows(2).rev().any(|w| w == [0xFF, 0xD9]))
}

/// What a walk over a GIF's blocks finds, without decompressing any image data.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct GifScan {
    /// Image descriptors seen (the frames), up to where the data ends or breaks.
    pub frames: u32,
    /// Comment, plain-text or application extensions other than the loop count.
    pub extras: bool,
}

pub(crate) fn gif_scan(b: &[u8]) -> GifScan {
    let mut scan = GifScan::default();
    // Header (6) + logical screen descriptor (7) + optional global colour table, then blocks.
    let Some(&flags) = b.get(10) else {
        return scan;
    };
    let mut pos = 13;
    if flags & 0x80 != 0 {
        pos += 3 << ((flags & 7) + 1);
    }
    let skip_sub_blocks = |mut p: usize| -> Option<usize> {
        loop {
            let n = usize::from(*b.get(p)?);
            p += 1;
            if n == 0 {
                return Some(p);
            }
            p += n;
        }
    };
    while let Some(&block) = b.get(pos) {
        match block {
            0x2C => {
                scan.frames += 1;
                let Some(&lflags) = b.get(pos + 9) else {
                    break;
                };
                pos += 10;
                if lflags & 0x80 != 0 {
                    pos += 3 << ((lflags & 7) + 1);
                }
                pos += 1; // LZW minimum code size
                match skip_sub_blocks(pos) {
                    Some(p) => pos = p,
                    None => break,
                }
            }
            0x21 => {
                let label = b.get(pos + 1).copied();
                // Graphic control (0xF9) is timing; the NETSCAPE/ANIMEXTS application block
                // is the loop count. Anything else is data a pass-through would keep.
                let app_id = b.get(pos + 3..pos + 14);
                let looping = label == Some(0xFF)
                    && matches!(app_id, Some(b"NETSCAPE2.0") | Some(b"ANIMEXTS1.0"));
                if label != Some(0xF9) && !looping {
                    scan.extras = true;
                }
                match skip_sub_blocks(pos + 2) {
                    Some(p) => pos = p,
                    None => break,
                }
            }
            _ => break,
        }
    }
    scan
}

fn png_is_animated(b: &[u8]) -> bool {
    let mut pos = 8;
    while pos + 8 <= b.len() {
        let len = u32::from_be_bytes([b[pos], b[pos + 1], b[pos + 2], b[pos + 3]]) as usize;
        match &b[pos + 4..pos + 8] {
            b"acTL" => return true,
            b"IDAT" => return false,
            _ => {}
        }
        pos = pos.saturating_add(12).saturating_add(len);
    }
    false
}

/// ICC profile and EXIF from the chunks of an extended WebP.
fn webp_metadata(b: &[u8]) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
    let (mut icc, mut exif) = (None, None);
    let mut pos = 12usize;
    while let Some(head) = b.get(pos..pos + 8) {
        let size = u32::from_le_bytes([head[4], head[5], head[6], head[7]]) as usize;
        let Some(data) = b.get(pos + 8..(pos + 8).saturating_add(size)) else {
            break;
        };
        match &head[..4] {
            b"ICCP" => icc = Some(data.to_vec()),
            b"EXIF" => exif = Some(data.to_vec()),
            _ => {}
        }
        pos = pos + 8 + size + (size & 1);
    }
    (icc, exif)
}

fn webp_is_animated(b: &[u8]) -> bool {
    b.len() > 20 && &b[12..16] == b"VP8X" && b[20] & 0x02 != 0
}

/// Top-level RIFF chunks of a WebP as (fourcc, data), bounded by the input.
pub(crate) fn webp_chunks(b: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    let mut pos = 12usize;
    std::iter::from_fn(move || {
        let head = b.get(pos..pos + 8)?;
        let size = u32::from_le_bytes([head[4], head[5], head[6], head[7]]) as usize;
        let data = b.get(pos + 8..(pos + 8).checked_add(size)?)?;
        pos = pos + 8 + size + (size & 1);
        Some((&head[..4], data))
    })
}

fn webp_frame_count(b: &[u8]) -> u32 {
    webp_chunks(b).filter(|(k, _)| *k == b"ANMF").count() as u32
}

/// Whether the `ftyp` box names the AVIF image sequence brand (an animated AVIF, of which
/// only the primary still image is decoded).
fn avif_is_sequence(b: &[u8]) -> bool {
    let size = b
        .get(..4)
        .map_or(0, |s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]) as usize);
    let end = size.clamp(16, b.len().min(256));
    b.get(8..12) == Some(b"avis")
        || b.get(16..end)
            .is_some_and(|c| c.chunks_exact(4).any(|c| c == b"avis"))
}
