//! The three entry points: probe, process and analyze.

use image::{DynamicImage, GenericImageView};
use serde::{Deserialize, Serialize};

use crate::analyze::{self, Analysis};
use crate::anim;
use crate::color;
use crate::decode;
use crate::encode::{self, Keep};
use crate::error::Result;
use crate::format::{self, Header, SourceFormat};
use crate::limits::Limits;
use crate::metadata::{self, ExifSummary};
use crate::options::{Color, Format, IccMode, Options, OutputFormat, Rotation, accepts};
use crate::transform;

/// What the header of an image says, learned without decoding pixels.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Probe {
    /// Detected format (from the bytes, never from a file name).
    pub format: SourceFormat,
    /// Width as displayed (after EXIF orientation).
    pub width: u32,
    /// Height as displayed (after EXIF orientation).
    pub height: u32,
    /// Whether the pixel format has an alpha channel.
    pub has_alpha: bool,
    /// Whether the file holds more than one frame.
    pub animated: bool,
    /// EXIF orientation 1-8 (1 = upright or no EXIF).
    pub orientation: u8,
    /// Camera, date and GPS presence, when there is readable EXIF.
    pub exif: Option<ExifSummary>,
    /// Description of the embedded ICC profile.
    pub icc_profile: Option<String>,
    /// Whether [`crate::process`] can decode it here (false for HEIC, and for AVIF in a
    /// build without the `avif-decode` feature).
    pub decodable: bool,
}

/// The result of [`crate::process`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// The encoded image.
    pub bytes: Vec<u8>,
    /// Its format (the resolution of `auto`).
    pub format: OutputFormat,
    /// Its width in pixels.
    pub width: u32,
    /// Its height in pixels.
    pub height: u32,
    /// Things that were ignored on the way (e.g. a corrupt EXIF block or ICC profile).
    pub warnings: Vec<String>,
}

pub(crate) struct Meta {
    exif: Option<exif::Exif>,
    orientation: u8,
    warnings: Vec<String>,
}

fn read_meta(header: &Header) -> Meta {
    let mut warnings = Vec::new();
    let exif = header
        .exif
        .as_deref()
        .and_then(|t| match metadata::parse(t) {
            Ok(e) => Some(e),
            Err(w) => {
                warnings.push(w);
                None
            }
        });
    let orientation = header
        .orientation
        .unwrap_or_else(|| exif.as_ref().map_or(1, metadata::orientation));
    Meta {
        exif,
        orientation,
        warnings,
    }
}

/// Reads the header only: format, size, alpha, animation, EXIF summary, ICC name.
pub fn probe(bytes: &[u8], limits: &Limits) -> Result<Probe> {
    let header = format::read_header(bytes, limits)?;
    let meta = read_meta(&header);
    let (width, height) = transform::oriented_size(header.width, header.height, meta.orientation);
    Ok(Probe {
        format: header.format,
        width,
        height,
        has_alpha: header.has_alpha,
        animated: header.animated,
        orientation: meta.orientation,
        exif: meta.exif.as_ref().map(metadata::summary),
        icc_profile: header.icc.as_deref().and_then(metadata::icc_description),
        decodable: header.format.is_decodable(),
    })
}

pub(crate) struct Upright {
    pub header: Header,
    pub image: DynamicImage,
    pub meta: Meta,
    /// Display size of the full-resolution source.
    pub full: (u32, u32),
}

/// Header check, decode (JPEGs shrunk in the DCT domain when the output is at most `scale`
/// of the source), convert to sRGB unless told otherwise, apply EXIF orientation.
pub(crate) fn decode_upright(
    bytes: &[u8],
    limits: &Limits,
    shrink_to: Option<(f64, IccMode)>,
    fast: bool,
) -> Result<Upright> {
    let header = format::read_header(bytes, limits)?;
    let mut meta = read_meta(&header);
    let full = transform::oriented_size(header.width, header.height, meta.orientation);
    let (scale, icc_mode) = shrink_to.unwrap_or((1.0, IccMode::Srgb));
    // `scale` is output pixels per source pixel; DCT scaling is uniform so axes don't matter.
    // Only the power-of-two scales have fast reduced IDCTs in libjpeg-turbo/mozjpeg. At 1/4
    // and 1/8 the reduced IDCT is close to a block average that aliases, so those leave at
    // least 2× for the Lanczos step (as libvips does): measured SSIM 0.995 instead of 0.947
    // against a full decode at 1/8, and +0.015 on a q80 JPEG at 1/4. At 1/2 the 4×4 IDCT is
    // good enough to go straight to the target (no measurable SSIM change on a q80 JPEG).
    // `fast` skips the margin everywhere, like sharp's default.
    let shrink = if header.format == SourceFormat::Jpeg && scale > 0.0 {
        [8u32, 4, 2]
            .into_iter()
            .find(|&k| {
                let margin = if fast || k == 2 { 1.0 } else { 2.0 };
                f64::from(k) * scale * margin <= 1.0
            })
            .unwrap_or(1)
    } else {
        1
    };
    // Only the power-of-two scales have fast reduced IDCTs in libjpeg-turbo/mozjpeg.
    let mut image = decode::decode(bytes, &header, limits, shrink)?;
    if let (Some(icc), IccMode::Srgb) = (&header.icc, icc_mode)
        && let Err(w) = color::convert_to_srgb(&mut image, icc)
    {
        meta.warnings.push(w);
    }
    transform::orient(&mut image, meta.orientation);
    Ok(Upright {
        header,
        image,
        meta,
        full,
    })
}

/// The output format: `format=auto` keeps an animated GIF a GIF, and an animated WebP a WebP
/// when the client takes WebP, so that the animation survives.
fn choose_format(opts: &Options, header: &Header) -> OutputFormat {
    if header.animated && opts.format == Format::Auto {
        let accept = opts.accept.as_deref().unwrap_or("");
        match header.format {
            SourceFormat::Gif => return OutputFormat::Gif,
            SourceFormat::Webp if accept.is_empty() || accepts(accept, "image/webp") => {
                return OutputFormat::Webp;
            }
            _ => {}
        }
    }
    opts.output_format(header.has_alpha)
}

/// Crop, rotate/flip, fit, blur/sharpen and flatten: everything `opts` does to the pixels of
/// one decoded (upright) image or animation frame.
fn transform_image(
    mut img: DynamicImage,
    opts: &Options,
    geo: &transform::Geometry,
    full: (u32, u32),
    format: OutputFormat,
    smart: &mut Option<(f64, f64)>,
) -> Result<DynamicImage> {
    if let Some(c) = opts.crop {
        img = transform::crop(&img, c, full)?;
    }
    img = transform::rotate_flip(img, opts);
    img = transform::fit(img, geo, opts, format != OutputFormat::Jpeg, smart)?;
    img = transform::blur_sharpen(img, opts);
    if img.color().has_alpha() {
        match (format, opts.background) {
            (OutputFormat::Jpeg, bg) => img = transform::flatten(img, bg.unwrap_or(Color::WHITE)),
            (_, Some(bg)) if bg.a == 255 => img = transform::flatten(img, bg),
            _ => {}
        }
    }
    Ok(transform::drop_opaque_alpha(img))
}

/// The metadata that survives into the output.
fn kept_metadata(
    header: &Header,
    opts: &Options,
    icc_mode: IccMode,
    warnings: &mut Vec<String>,
) -> Keep {
    let mut keep = Keep::default();
    if icc_mode == IccMode::Keep {
        // The pixels are still in the source colour space; without the profile they would
        // be shown wrong, so it is embedded even when other metadata is stripped.
        keep.icc = header.icc.clone();
    }
    if opts.keep_metadata {
        keep.exif = header
            .exif
            .as_deref()
            .and_then(|t| metadata::rewrite_exif(t, opts.keep_gps));
        if keep.exif.is_none() && header.exif.is_some() {
            warnings.push("EXIF could not be rewritten and was dropped".to_owned());
        }
    }
    keep
}

/// Decodes, transforms and encodes one image. See [`Options`] for what can be asked.
///
/// An animated GIF or WebP whose output keeps its format (see [`Format::Auto`]) is processed
/// frame by frame, keeping delays and the loop count; other outputs get its first frame.
pub fn process(bytes: &[u8], opts: &Options, limits: &Limits) -> Result<Output> {
    opts.validate()?;
    // Everything size-related is decided from the header, before any pixel is decoded.
    let header = format::read_header(bytes, limits)?;
    let orientation = read_meta(&header).orientation;
    let full = transform::oriented_size(header.width, header.height, orientation);
    if let Some(c) = opts.crop {
        transform::crop_fits(c, full)?;
    }
    let region = opts.crop.map_or(full, |c| (c.width, c.height));
    let region = match opts.rotate {
        Rotation::Cw90 | Rotation::Cw270 => (region.1, region.0),
        _ => region,
    };
    let geo = transform::geometry(region, opts, limits)?;
    let scale = (f64::from(geo.scaled.0) / f64::from(region.0))
        .max(f64::from(geo.scaled.1) / f64::from(region.1));
    let format = choose_format(opts, &header);
    // AVIF output cannot carry the profile, so its pixels must be converted.
    let icc_mode = if format == OutputFormat::Avif {
        IccMode::Srgb
    } else {
        opts.icc
    };
    let animated = header.animated
        && matches!(
            (header.format, format),
            (SourceFormat::Gif, OutputFormat::Gif) | (SourceFormat::Webp, OutputFormat::Webp)
        );
    if animated {
        return process_animation(bytes, header, opts, limits, &geo, full, format, icc_mode);
    }

    let up = decode_upright(bytes, limits, Some((scale, icc_mode)), opts.fast_shrink)?;
    let mut warnings = up.meta.warnings;
    let img = transform_image(up.image, opts, &geo, up.full, format, &mut None)?;
    let keep = kept_metadata(&up.header, opts, icc_mode, &mut warnings);
    let bytes = encode::encode(&img, format, opts, &keep)?;
    let (width, height) = img.dimensions();
    Ok(Output {
        bytes,
        format,
        width,
        height,
        warnings,
    })
}

/// Whether `opts` leave every pixel of a `full`-sized upright image as it is.
fn changes_pixels(opts: &Options, geo: &transform::Geometry, full: (u32, u32)) -> bool {
    geo.out != full
        || geo.scaled != full
        || opts.crop.is_some()
        || opts.rotate != Rotation::None
        || opts.flip
        || opts.flop
        || opts.blur.is_some()
        || opts.sharpen.is_some()
        || opts.background.is_some()
}

/// An animation in, the same format out: every frame through [`transform_image`] with the
/// same geometry, streamed so that only a few canvases are in memory at once.
#[allow(clippy::too_many_arguments)]
fn process_animation(
    bytes: &[u8],
    header: Header,
    opts: &Options,
    limits: &Limits,
    geo: &transform::Geometry,
    full: (u32, u32),
    format: OutputFormat,
    icc_mode: IccMode,
) -> Result<Output> {
    let mut meta = read_meta(&header);
    // The output is as many frames as the input: the same budget applies to its size.
    limits.check_frames(header.frames, geo.out.0, geo.out.1)?;
    let untouched = !changes_pixels(opts, geo, full) && meta.orientation == 1;
    let no_metadata = match header.format {
        SourceFormat::Gif => !header.gif_extras,
        _ => {
            header.exif.is_none()
                && header.icc.is_none()
                && !format::webp_chunks(bytes).any(|(k, _)| k == b"XMP ")
        }
    };
    // A GIF re-encode cannot improve anything; a WebP one can only if asked to.
    let same_settings =
        header.format == SourceFormat::Gif || (opts.quality.is_none() && !opts.lossless);
    if untouched && no_metadata && same_settings {
        return Ok(Output {
            bytes: bytes.to_vec(),
            format,
            width: full.0,
            height: full.1,
            warnings: meta.warnings,
        });
    }

    let mut source = anim::Source::open(bytes, header.format, limits)?;
    let keep = kept_metadata(&header, opts, icc_mode, &mut meta.warnings);
    let mut sink = anim::Sink::new(source.looping(), opts, keep)?;
    let mut smart = None;
    let (mut frames, mut size) = (0u32, full);
    while let Some(frame) = source.next_frame()? {
        frames += 1;
        // The header's count is what the limits were checked against; a stream that holds
        // more frames than it showed is cut off with the same error.
        if frames > header.frames {
            limits.check_frames(frames, header.width, header.height)?;
        }
        let mut img = DynamicImage::ImageRgba8(frame.image);
        if let (Some(icc), IccMode::Srgb) = (&header.icc, icc_mode)
            && let Err(w) = color::convert_to_srgb(&mut img, icc)
            && frames == 1
        {
            meta.warnings.push(w);
        }
        transform::orient(&mut img, meta.orientation);
        let img = transform_image(img, opts, geo, full, format, &mut smart)?;
        size = img.dimensions();
        sink.add(&img, frame.delay_ms)?;
    }
    Ok(Output {
        bytes: sink.finish()?,
        format,
        width: size.0,
        height: size.1,
        warnings: meta.warnings,
    })
}

/// Analyses one image: header facts plus hashes, colours and a photo/graphic guess, from a
/// single decode (JPEGs are decoded at 1/2 to 1/8 scale, which is plenty for all measures).
pub fn analyze(bytes: &[u8], limits: &Limits) -> Result<Analysis> {
    let header = format::read_header(bytes, limits)?;
    // 256 px on the short side is enough for every measure below, and they all resize
    // further down themselves (to 128 px and less), so JPEGs shrink on decode as far as
    // that allows (`fast`): the 2× margin is for pictures people look at.
    let short = f64::from(header.width.min(header.height));
    let scale = (256.0 / short).min(1.0);
    let up = decode_upright(bytes, limits, Some((scale, IccMode::Srgb)), true)?;
    let lossless = matches!(
        up.header.format,
        SourceFormat::Png | SourceFormat::Gif | SourceFormat::Bmp | SourceFormat::Tiff
    );
    let m = analyze::measure(&up.image, lossless)?;
    Ok(Analysis {
        format: up.header.format,
        width: up.full.0,
        height: up.full.1,
        has_alpha: m.has_alpha,
        animated: up.header.animated,
        exif: up.meta.exif.as_ref().map(metadata::summary),
        icc_profile: up.header.icc.as_deref().and_then(metadata::icc_description),
        blurhash: m.blurhash,
        thumbhash: m.thumbhash,
        phash: m.phash,
        dominant_color: m.dominant_color,
        palette: m.palette,
        brightness: m.brightness,
        kind: m.kind,
        warnings: up.meta.warnings,
    })
}
