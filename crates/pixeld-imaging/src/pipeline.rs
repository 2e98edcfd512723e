//! The three entry points: probe, process and analyze.

use fast_image_resize as fr;
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

/// How far a JPEG shrinks on decode when the output is `scale` of it, in eighths of its size
/// (1, 2, 3, 4, or 8 for full size; see [`crate::jpeg_scaled::scaled`]).
fn jpeg_eighths(header: &Header, scale: f64, fast: bool) -> u32 {
    // `scale` is output pixels per source pixel; DCT scaling is uniform so axes don't matter.
    // A reduced IDCT works block by block, so the smaller it gets the more it aliases, and
    // the Lanczos step after it needs room to filter that out: each scale is used only when
    // the decoded picture is at least `margin` times the output (as libvips does at 1/8 and
    // 1/4). Measured against a full decode resized with Lanczos3:
    // - 1/8 and 1/4 (a near block average): 2×; SSIM 0.995 instead of 0.947 at 1/8, and
    //   +0.015 on a q80 JPEG at 1/4;
    // - 3/8: 1.5× (see `bench/imaging/README.md`);
    // - 1/2 (4×4 IDCT): good enough to go straight to the target (no measurable SSIM
    //   change on a q80 JPEG).
    // Only 1/2 and full size have SIMD IDCTs in libjpeg-turbo; 1/8 to 3/8 are our own
    // decoder's. `fast` skips the margin everywhere, like sharp's default.
    if header.format != SourceFormat::Jpeg || scale <= 0.0 {
        return 8;
    }
    [(1u32, 2.0), (2, 2.0), (3, 1.5), (4, 1.0)]
        .into_iter()
        .find(|&(eighths, margin)| {
            let margin = if fast { 1.0 } else { margin };
            scale * margin <= f64::from(eighths) / 8.0
        })
        .map_or(8, |(eighths, _)| eighths)
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
    let eighths = jpeg_eighths(&header, scale, fast);
    let mut image = decode::decode(bytes, &header, limits, eighths)?;
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
    process_with(bytes, opts, limits, true)
}

/// [`process`], with the YCbCr path of [`process_planar`] allowed or not (tests compare the
/// two).
fn process_with(bytes: &[u8], opts: &Options, limits: &Limits, planar: bool) -> Result<Output> {
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

    if planar && let Some(out) = process_planar(bytes, &header, opts, &geo, scale, format, icc_mode)
    {
        return out;
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

/// JPEG to JPEG or lossy WebP without RGB in between, where nothing but a resize happens:
/// the JPEG's own YCbCr planes, shrunk on decode by [`crate::jpeg_scaled`], are each resized
/// and coded as they are (for WebP only the range changes, from JFIF's full to VP8's
/// limited). Both formats code BT.601 YCbCr, with half-resolution chroma (JPEG below
/// quality 90), so the RGB route would upsample the chroma, convert to RGB, resize three
/// full planes, convert back and subsample again: about a tenth of a 12 MP → 800 px job
/// (`bench/imaging/README.md`), and the chroma is filtered once instead of three times.
///
/// `None` (the caller takes the RGB route) unless the source is a sequential YCbCr JPEG that
/// [`crate::jpeg_scaled`] decodes at this scale, upright, with no colour profile to convert,
/// and the options only resize it.
#[allow(clippy::too_many_arguments)]
fn process_planar(
    bytes: &[u8],
    header: &Header,
    opts: &Options,
    geo: &transform::Geometry,
    scale: f64,
    format: OutputFormat,
    icc_mode: IccMode,
) -> Option<Result<Output>> {
    let plain = (format == OutputFormat::Jpeg || format == OutputFormat::Webp && !opts.lossless)
        && header.format == SourceFormat::Jpeg
        && header.jpeg_components == 3
        && (header.icc.is_none() || icc_mode == IccMode::Keep)
        && geo.scaled == geo.out
        && opts.crop.is_none()
        && opts.rotate == Rotation::None
        && !opts.flip
        && !opts.flop
        && opts.blur.is_none()
        && opts.sharpen.is_none();
    if !plain {
        return None;
    }
    let mut meta = read_meta(header);
    let eighths = jpeg_eighths(header, scale, opts.fast_shrink);
    if meta.orientation != 1 || eighths > crate::jpeg_scaled::MAX_EIGHTHS {
        return None;
    }
    let (w, h) = geo.out;
    // Output pixels per chroma sample, across and down.
    let f = if format == OutputFormat::Jpeg && !encode::jpeg_subsampled(opts) {
        1
    } else {
        2
    };
    // Half-resolution chroma out of a 3/8 luma needs no more than the 1/4 decode of the
    // chroma (at least the output's chroma size, whatever the file's subsampling, since 3/8
    // leaves luma 1.5× the output): the 2×2 IDCT costs a chroma block about a third less
    // than the 3×3, and the chroma is as sharp as `fast_shrink`'s.
    let chroma_eighths = if eighths == 3 && f == 2 { 2 } else { eighths };
    let ycc = decode::decode_jpeg_ycc(bytes, header, eighths, chroma_eighths)?;
    let keep = kept_metadata(header, opts, icc_mode, &mut meta.warnings);
    let chroma = (w.div_ceil(f), h.div_ceil(f));
    let planes = (|| {
        let size = (ycc.width as u32, ycc.height as u32);
        let whole = (f64::from(size.0), f64::from(size.1));
        let y = transform::resize_plane(&ycc.y, size, whole, (w, h), fr::FilterType::Lanczos3)?;
        // Chroma sample j stands for output pixels f·j to f·j + f − 1, as in libwebp's and
        // libjpeg's own subsampling: with an odd width the last one lies half outside the
        // picture, so the source window grows to match (past the plane's edge, which
        // repeats).
        let c = (ycc.chroma.0 as u32, ycc.chroma.1 as u32);
        let (sx, sy) = ycc.subsampling;
        let window = (
            f64::from(f * chroma.0) * f64::from(size.0) / (f64::from(w) * sx),
            f64::from(f * chroma.1) * f64::from(size.1) / (f64::from(h) * sy),
        );
        // The triangle filter: about as soft as the RGB route's chroma, which the encoder
        // averages over 2×2 after the Lanczos step. With Lanczos3 here too the WebP was
        // 1.3 % larger at the same SSIM (bench/imaging/README.md), for colour detail that
        // half-resolution chroma barely shows.
        let cb = transform::resize_plane(&ycc.cb, c, window, chroma, fr::FilterType::Bilinear)?;
        let cr = transform::resize_plane(&ycc.cr, c, window, chroma, fr::FilterType::Bilinear)?;
        Ok([y, cb, cr])
    })();
    Some(planes.and_then(|planes| {
        Ok(Output {
            bytes: if format == OutputFormat::Jpeg {
                encode::encode_jpeg_ycc(planes, (w, h), opts, &keep)?
            } else {
                encode::encode_webp_ycc(planes, (w, h), opts, &keep)?
            },
            format,
            width: w,
            height: h,
            warnings: meta.warnings,
        })
    }))
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

#[cfg(test)]
mod tests {
    use image::{ImageFormat, Rgb, RgbImage};

    use super::*;
    use crate::compare::{mean_abs_error, ssim};

    /// A photograph from Debian's mate-backgrounds (2560×1600, 4:2:0, as the package ships
    /// it), or `None` locally when the package is missing (a failure under `CI=true`).
    fn garden() -> Option<Vec<u8>> {
        let path = "/usr/share/backgrounds/mate/nature/Garden.jpg";
        match std::fs::read(path) {
            Ok(b) => Some(b),
            Err(e) => {
                assert!(
                    std::env::var("CI").as_deref() != Ok("true"),
                    "{path} is missing ({e}); run tests/fixtures.sh"
                );
                None
            }
        }
    }

    fn both_routes(bytes: &[u8], query: &str) -> (Output, Output) {
        let opts = Options::from_query(query).unwrap();
        let limits = Limits::default();
        (
            process_with(bytes, &opts, &limits, true).unwrap(),
            process_with(bytes, &opts, &limits, false).unwrap(),
        )
    }

    fn pixels(out: &Output) -> DynamicImage {
        let format = match out.format {
            OutputFormat::Jpeg => ImageFormat::Jpeg,
            _ => ImageFormat::WebP,
        };
        image::load_from_memory_with_format(&out.bytes, format).unwrap()
    }

    #[test]
    fn jpeg_to_jpeg_or_webp_through_ycbcr_looks_like_the_rgb_route() {
        let Some(jpeg) = garden() else { return };
        for query in [
            "w=400&format=webp&q=90&fast_shrink=true",
            "w=300&format=webp&q=75",
            "w=300&h=188&fit=fill&format=webp",
            "w=301&h=187&fit=fill&format=webp",
            // 3/8 on decode (2560 → 960 px, 1.6× the output).
            "w=600&format=webp",
            "w=601&h=375&fit=fill&format=jpeg",
            "w=400&format=jpeg&fast_shrink=true",
            "w=301&h=187&fit=fill&format=jpeg",
            // Quality 90 and up keeps chroma at full resolution (4:4:4).
            "w=301&format=jpeg&q=92",
            "w=160&format=jpeg&q=80&progressive=true",
        ] {
            let (planar, rgb) = both_routes(&jpeg, query);
            assert_ne!(
                planar.bytes, rgb.bytes,
                "{query}: the YCbCr route was not taken"
            );
            assert_eq!((planar.width, planar.height), (rgb.width, rgb.height));
            let (a, b) = (pixels(&planar), pixels(&rgb));
            assert_eq!(a.dimensions(), (planar.width, planar.height));
            let similar = ssim(&a, &b).unwrap();
            let error = mean_abs_error(&a, &b).unwrap();
            assert!(similar > 0.98, "{query}: SSIM {similar} between the routes");
            assert!(
                error < 2.0,
                "{query}: mean error {error} between the routes"
            );
            // Against the picture itself (a full decode, resized), the new route is as good.
            let reference = crate::compare::resize_exact(
                &crate::compare::decode_reference(&jpeg, &Limits::default()).unwrap(),
                planar.width,
                planar.height,
            )
            .unwrap();
            let (sa, sb) = (ssim(&reference, &a).unwrap(), ssim(&reference, &b).unwrap());
            assert!(
                sa > sb - 0.003,
                "{query}: SSIM {sa} against {sb} by the RGB route"
            );
        }
    }

    #[test]
    fn flat_colours_keep_their_value_through_the_ycbcr_route() {
        // Full-range JFIF YCbCr must come out of VP8's limited range as the same colours (a
        // wrong range mapping would wash out or crush them by 10-30 levels), and out of a
        // JPEG's planes, subsampled or not, too.
        let colours = [
            [230u8, 30, 40],
            [20, 160, 60],
            [30, 60, 200],
            [224, 172, 140],
            [16, 16, 16],
            [245, 245, 245],
        ];
        let img = RgbImage::from_fn(768, 512, |x, y| {
            Rgb(colours[(x / 256 + 3 * (y / 256)) as usize])
        });
        let mut jpeg = Vec::new();
        DynamicImage::ImageRgb8(img)
            .write_with_encoder(image::codecs::jpeg::JpegEncoder::new_with_quality(
                &mut jpeg, 95,
            ))
            .unwrap();
        // Quality 80 quantises a flat saturated blue's chroma by up to ±3.5 levels, which
        // moves its blue by up to 6 whichever route it takes.
        for (query, tolerance) in [
            ("w=96&format=webp&q=95", 4),
            ("w=96&format=jpeg&q=95", 4),
            ("w=96&format=jpeg&q=80", 7),
        ] {
            let (planar, rgb) = both_routes(&jpeg, query);
            assert_ne!(
                planar.bytes, rgb.bytes,
                "{query}: the YCbCr route was not taken"
            );
            let (out, before) = (pixels(&planar).to_rgb8(), pixels(&rgb).to_rgb8());
            for (i, want) in colours.iter().enumerate() {
                let (cx, cy) = (16 + 32 * (i as u32 % 3), 16 + 32 * (i as u32 / 3));
                let (got, old) = (out.get_pixel(cx, cy).0, before.get_pixel(cx, cy).0);
                for c in 0..3 {
                    assert!(
                        got[c].abs_diff(want[c]) <= tolerance,
                        "{query}: colour {i}: {got:?} instead of {want:?} (RGB route {old:?})"
                    );
                }
            }
        }
    }

    #[test]
    fn three_eighths_on_decode_by_either_decoder_looks_like_the_picture() {
        // 1001 px → 240 px decodes at 3/8 (376 px, a 1.57× margin): baseline by our decoder,
        // progressive by libjpeg-turbo's 3×3 IDCT. Both must look like the full picture.
        let Some(jpeg) = garden() else { return };
        let img = image::load_from_memory(&jpeg).unwrap().to_rgb8();
        let crop = image::imageops::crop_imm(&img, 37, 21, 1001, 667).to_image();
        let limits = Limits::default();
        let opts = Options::from_query("w=240&format=png").unwrap();
        let header = |b: &[u8]| format::read_header(b, &limits).unwrap();
        for progressive in [false, true] {
            let mut bytes = Vec::new();
            let mut enc = jpeg_encoder::Encoder::new(&mut bytes, 90);
            enc.set_progressive(progressive);
            enc.encode(crop.as_raw(), 1001, 667, jpeg_encoder::ColorType::Rgb)
                .unwrap();
            assert_eq!(jpeg_eighths(&header(&bytes), 240.0 / 1001.0, false), 3);
            assert_eq!(
                crate::jpeg_scaled::decode(&bytes, 3).is_some(),
                !progressive,
                "only baseline is ours"
            );
            let out = process(&bytes, &opts, &limits).unwrap();
            assert_eq!((out.width, out.height), (240, 160));
            let got = image::load_from_memory(&out.bytes).unwrap();
            let reference = crate::compare::resize_exact(
                &crate::compare::decode_reference(&bytes, &limits).unwrap(),
                240,
                160,
            )
            .unwrap();
            let similar = ssim(&reference, &got).unwrap();
            assert!(similar > 0.99, "progressive {progressive}: SSIM {similar}");
        }
        // The scale each margin picks, for a 4000 px photo.
        let h = header(&jpeg);
        let pick = |w: f64, fast| jpeg_eighths(&h, w / 4000.0, fast);
        assert_eq!(pick(200.0, false), 1); // 500 px: 2.5×
        assert_eq!(pick(500.0, false), 2); // 1000 px: 2×
        assert_eq!(pick(800.0, false), 3); // 1500 px: 1.875×
        assert_eq!(pick(1000.0, false), 3); // 1500 px: 1.5×
        assert_eq!(pick(1100.0, false), 4); // 2000 px
        assert_eq!(pick(800.0, true), 2); // straight to 1000 px
        assert_eq!(pick(2001.0, false), 8);
    }

    #[test]
    fn anything_but_a_plain_resize_of_a_colour_jpeg_takes_the_rgb_route() {
        let Some(jpeg) = garden() else { return };
        let gray = {
            let img = image::load_from_memory(&jpeg).unwrap().to_luma8();
            let mut out = Vec::new();
            DynamicImage::ImageLuma8(img)
                .write_with_encoder(image::codecs::jpeg::JpegEncoder::new_with_quality(
                    &mut out, 85,
                ))
                .unwrap();
            out
        };
        let cases = [
            (&jpeg, "w=400&format=webp&rotate=90&fast_shrink=true"),
            (&jpeg, "w=400&format=webp&flip=true&fast_shrink=true"),
            (&jpeg, "w=400&h=400&fit=cover&format=webp&fast_shrink=true"),
            (
                &jpeg,
                "w=400&h=400&fit=contain&format=webp&fast_shrink=true",
            ),
            (&jpeg, "w=400&format=webp&blur=1&fast_shrink=true"),
            (&jpeg, "w=400&format=webp&lossless=true&fast_shrink=true"),
            (&jpeg, "w=400&format=png&fast_shrink=true"),
            (&jpeg, "crop=0,0,1280,800&w=300&format=webp"),
            // Shrunk by 1/2 on decode: libjpeg-turbo's RGB.
            (&jpeg, "w=1200&format=webp"),
            (&gray, "w=300&format=webp"),
        ];
        for (bytes, query) in cases {
            let (planar, rgb) = both_routes(bytes, query);
            assert_eq!(planar, rgb, "{query}");
        }
    }
}
