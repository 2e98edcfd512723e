//! Animated GIF and WebP: decoded, transformed and re-encoded one frame at a time, so the
//! memory held is a few canvases whatever the frame count. Delays and the loop count are
//! carried over unchanged.

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::Cursor;

use image::{DynamicImage, Rgba, RgbaImage};

use crate::encode::{self, Keep};
use crate::error::{Error, Result};
use crate::format::{self, SourceFormat};
use crate::limits::Limits;
use crate::options::Options;

/// One composited frame: the whole canvas as it is shown, and for how long.
pub(crate) struct Frame {
    pub image: RgbaImage,
    pub delay_ms: u32,
}

/// The loop count, kept in the source's own terms: the output has the source's format.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Looping {
    Gif(gif::Repeat),
    /// WebP's ANIM loop count: 0 = forever.
    Webp(u16),
}

/// A frame-by-frame decoder that composites each frame onto the canvas.
pub(crate) enum Source<'a> {
    Gif {
        dec: Box<gif::Decoder<Cursor<&'a [u8]>>>,
        canvas: RgbaImage,
    },
    Webp {
        dec: Box<image_webp::WebPDecoder<Cursor<&'a [u8]>>>,
        buf: Vec<u8>,
    },
}

fn gif_error(e: gif::DecodingError) -> Error {
    match e {
        gif::DecodingError::MemoryLimit | gif::DecodingError::OutOfMemory => {
            Error::ResourceLimit(e.to_string())
        }
        e => Error::corrupt(format!("GIF: {e}")),
    }
}

fn webp_error(e: image_webp::DecodingError) -> Error {
    match e {
        image_webp::DecodingError::MemoryLimitExceeded => Error::ResourceLimit(e.to_string()),
        e => Error::corrupt(format!("WebP: {e}")),
    }
}

/// Bytes one decoded canvas may take (RGBA), plus slack for the decoders' own buffers.
fn frame_budget(limits: &Limits) -> u64 {
    limits.max_pixels.saturating_mul(4).saturating_add(16 << 20)
}

impl<'a> Source<'a> {
    /// Opens a GIF or animated WebP; the header limits were checked by the caller.
    pub fn open(bytes: &'a [u8], format: SourceFormat, limits: &Limits) -> Result<Self> {
        match format {
            SourceFormat::Gif => {
                let mut o = gif::DecodeOptions::new();
                o.set_color_output(gif::ColorOutput::RGBA);
                if let Some(n) = std::num::NonZeroU64::new(frame_budget(limits)) {
                    o.set_memory_limit(gif::MemoryLimit::Bytes(n));
                }
                let dec = o.read_info(Cursor::new(bytes)).map_err(gif_error)?;
                let (w, h) = (u32::from(dec.width()), u32::from(dec.height()));
                limits.check_dimensions(w, h)?;
                Ok(Source::Gif {
                    dec: Box::new(dec),
                    canvas: RgbaImage::new(w, h),
                })
            }
            SourceFormat::Webp => {
                let mut dec =
                    image_webp::WebPDecoder::new(Cursor::new(bytes)).map_err(webp_error)?;
                dec.set_memory_limit(usize::try_from(frame_budget(limits)).unwrap_or(usize::MAX));
                let (w, h) = dec.dimensions();
                limits.check_dimensions(w, h)?;
                if !dec.is_animated() {
                    return Err(Error::corrupt("WebP: not an animation"));
                }
                let n = dec
                    .output_buffer_size()
                    .ok_or_else(|| Error::ResourceLimit("WebP canvas".to_owned()))?;
                Ok(Source::Webp {
                    dec: Box::new(dec),
                    buf: vec![0; n],
                })
            }
            other => Err(Error::UnsupportedFormat(format!(
                "{} animations are not supported",
                other.name()
            ))),
        }
    }

    pub fn looping(&self) -> Looping {
        match self {
            Source::Gif { dec, .. } => Looping::Gif(dec.repeat()),
            Source::Webp { dec, .. } => Looping::Webp(match dec.loop_count() {
                image_webp::LoopCount::Forever => 0,
                image_webp::LoopCount::Times(n) => n.get(),
            }),
        }
    }

    /// The next frame, or `None` after the last.
    pub fn next_frame(&mut self) -> Result<Option<Frame>> {
        match self {
            Source::Gif { dec, canvas } => {
                let Some(f) = dec.read_next_frame().map_err(gif_error)? else {
                    return Ok(None);
                };
                let (cw, ch) = canvas.dimensions();
                let (left, top) = (u32::from(f.left), u32::from(f.top));
                let (fw, fh) = (u32::from(f.width), u32::from(f.height));
                let dispose = f.dispose;
                let delay_ms = u32::from(f.delay) * 10;
                let saved = (dispose == gif::DisposalMethod::Previous).then(|| canvas.clone());
                // Frames may hang over the logical screen; what lies outside is not shown.
                for y in 0..fh.min(ch.saturating_sub(top)) {
                    for x in 0..fw.min(cw.saturating_sub(left)) {
                        let i = ((y * fw + x) * 4) as usize;
                        if let Some(px) = f.buffer.get(i..i + 4)
                            && px[3] != 0
                        {
                            canvas.put_pixel(left + x, top + y, Rgba([px[0], px[1], px[2], 255]));
                        }
                    }
                }
                let image = canvas.clone();
                match (dispose, saved) {
                    (gif::DisposalMethod::Background, _) => {
                        // Browsers clear to transparent, whatever the background colour says.
                        for y in top..(top + fh).min(ch) {
                            for x in left..(left + fw).min(cw) {
                                canvas.put_pixel(x, y, Rgba([0, 0, 0, 0]));
                            }
                        }
                    }
                    (gif::DisposalMethod::Previous, Some(saved)) => *canvas = saved,
                    _ => {}
                }
                Ok(Some(Frame { image, delay_ms }))
            }
            Source::Webp { dec, buf } => {
                let delay_ms = match dec.read_frame(buf) {
                    Ok(d) => d,
                    Err(image_webp::DecodingError::NoMoreFrames) => return Ok(None),
                    Err(e) => return Err(webp_error(e)),
                };
                let (w, h) = dec.dimensions();
                let rgba = if dec.has_alpha() {
                    buf.clone()
                } else {
                    buf.chunks_exact(3)
                        .flat_map(|p| [p[0], p[1], p[2], 255])
                        .collect()
                };
                let image = RgbaImage::from_raw(w, h, rgba)
                    .ok_or_else(|| Error::corrupt("WebP frame size"))?;
                Ok(Some(Frame { image, delay_ms }))
            }
        }
    }
}

/// A frame-by-frame encoder for the animation's own format.
pub(crate) enum Sink {
    Gif {
        enc: Option<gif::Encoder<Vec<u8>>>,
        repeat: gif::Repeat,
    },
    Webp(WebpAnim),
}

impl Sink {
    pub fn new(looping: Looping, opts: &Options, keep: Keep) -> Result<Sink> {
        Ok(match looping {
            Looping::Gif(repeat) => Sink::Gif { enc: None, repeat },
            Looping::Webp(loop_count) => Sink::Webp(WebpAnim {
                cfg: encode::webp_config(opts)?,
                effort: opts.effort(),
                frames: Vec::new(),
                size: None,
                alpha: false,
                loop_count,
                keep,
            }),
        })
    }

    pub fn add(&mut self, img: &DynamicImage, delay_ms: u32) -> Result<()> {
        match self {
            Sink::Gif { enc, repeat } => {
                let (w, h) = (img.width(), img.height());
                let too_big = || Error::invalid(format!("GIF cannot be {w}×{h} (at most 65535)"));
                let (w16, h16) = (
                    u16::try_from(w).map_err(|_| too_big())?,
                    u16::try_from(h).map_err(|_| too_big())?,
                );
                if enc.is_none() {
                    let mut e = gif::Encoder::new(Vec::new(), w16, h16, &[])
                        .map_err(|e| Error::Encode(e.to_string()))?;
                    e.set_repeat(*repeat)
                        .map_err(|e| Error::Encode(e.to_string()))?;
                    *enc = Some(e);
                }
                let (indices, palette, transparent) = quantize(&img.to_rgba8());
                let frame = gif::Frame {
                    width: w16,
                    height: h16,
                    delay: u16::try_from(delay_ms.div_ceil(10)).unwrap_or(u16::MAX),
                    // Every frame is a whole canvas; clearing lets transparent pixels of the
                    // next one show the page, not the previous frame.
                    dispose: gif::DisposalMethod::Background,
                    transparent,
                    palette: Some(palette),
                    buffer: Cow::Owned(indices),
                    ..gif::Frame::default()
                };
                enc.as_mut()
                    .expect("created above")
                    .write_frame(&frame)
                    .map_err(|e| Error::Encode(e.to_string()))
            }
            Sink::Webp(w) => w.add(img, delay_ms),
        }
    }

    pub fn finish(self) -> Result<Vec<u8>> {
        match self {
            Sink::Gif { enc, .. } => enc
                .ok_or_else(|| Error::corrupt("the animation has no frames"))?
                .into_inner()
                .map_err(|e| Error::Encode(e.to_string())),
            Sink::Webp(w) => w.finish(),
        }
    }
}

/// Up to 256 colours (255 and a transparent index when some pixels are transparent):
/// exact when the frame has that few, NeuQuant otherwise. Alpha below 128 is transparent
/// (GIF has 1-bit alpha). Returns (indices, RGB palette, transparent index).
fn quantize(rgba: &RgbaImage) -> (Vec<u8>, Vec<u8>, Option<u8>) {
    let transparent = rgba.pixels().any(|p| p.0[3] < 128);
    let cap = if transparent { 255 } else { 256 };
    let mut exact: HashMap<[u8; 3], u8> = HashMap::new();
    let mut palette = Vec::new();
    let mut fits = true;
    for p in rgba.pixels().filter(|p| p.0[3] >= 128) {
        let c = [p.0[0], p.0[1], p.0[2]];
        if !exact.contains_key(&c) {
            if exact.len() == cap {
                fits = false;
                break;
            }
            exact.insert(c, exact.len() as u8);
            palette.extend_from_slice(&c);
        }
    }
    let t_index = transparent.then_some((palette.len() / 3) as u8);
    if fits {
        if transparent {
            palette.extend_from_slice(&[0, 0, 0]);
        }
        let indices = rgba
            .pixels()
            .map(|p| match t_index {
                Some(t) if p.0[3] < 128 => t,
                _ => exact[&[p.0[0], p.0[1], p.0[2]]],
            })
            .collect();
        return (indices, palette, t_index);
    }
    // Train on the visible pixels only, so the transparent index is never a visible colour.
    let visible: Vec<u8> = rgba
        .pixels()
        .filter(|p| p.0[3] >= 128)
        .flat_map(|p| [p.0[0], p.0[1], p.0[2], 255])
        .collect();
    let nq = color_quant::NeuQuant::new(10, cap, &visible);
    let mut palette = nq.color_map_rgb();
    // With transparency the palette holds 255 colours, so index 255 is free for it.
    let t_index = transparent.then(|| {
        palette.extend_from_slice(&[0, 0, 0]);
        255u8
    });
    let indices = rgba
        .pixels()
        .map(|p| match t_index {
            Some(t) if p.0[3] < 128 => t,
            _ => nq.index_of(&[p.0[0], p.0[1], p.0[2], 255]) as u8,
        })
        .collect();
    (indices, palette, t_index)
}

/// An animated WebP assembled from independently encoded frames: each frame is a whole
/// canvas, written without blending, so no frame depends on how the previous one was
/// compressed. Streaming, unlike libwebp's AnimEncoder (which keeps every frame), and it
/// keeps the last frame's duration, which the `webp` crate's wrapper loses.
pub(crate) struct WebpAnim {
    cfg: webp::WebPConfig,
    /// Effort for lossless frames of many colours (our own encoder's).
    effort: u8,
    frames: Vec<u8>,
    size: Option<(u32, u32)>,
    alpha: bool,
    loop_count: u16,
    keep: Keep,
}

fn u24(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.min(0xFF_FFFF).to_le_bytes()[..3]);
}

impl WebpAnim {
    fn add(&mut self, img: &DynamicImage, delay_ms: u32) -> Result<()> {
        let (w, h) = (img.width(), img.height());
        if *self.size.get_or_insert((w, h)) != (w, h) {
            return Err(Error::Encode("animation frames differ in size".to_owned()));
        }
        let simple = encode::webp_encode(img, &self.cfg, self.effort)?;
        self.alpha |= img.color().has_alpha();
        let mut anmf = Vec::with_capacity(simple.len() + 16);
        u24(&mut anmf, 0);
        u24(&mut anmf, 0);
        u24(&mut anmf, w - 1);
        u24(&mut anmf, h - 1);
        u24(&mut anmf, delay_ms);
        // Bit 1: do not blend with the previous canvas; bit 0 clear: no disposal.
        anmf.push(0x02);
        for (fourcc, data) in format::webp_chunks(&simple) {
            if matches!(fourcc, b"ALPH" | b"VP8 " | b"VP8L") {
                encode::riff_chunk(&mut anmf, fourcc.try_into().expect("4 bytes"), data);
            }
        }
        encode::riff_chunk(&mut self.frames, b"ANMF", &anmf);
        Ok(())
    }

    fn finish(self) -> Result<Vec<u8>> {
        let (w, h) = self
            .size
            .ok_or_else(|| Error::corrupt("the animation has no frames"))?;
        let mut flags = 0x02u8;
        if self.alpha {
            flags |= 0x10;
        }
        if self.keep.icc.is_some() {
            flags |= 0x20;
        }
        if self.keep.exif.is_some() {
            flags |= 0x08;
        }
        let mut vp8x = vec![flags, 0, 0, 0];
        u24(&mut vp8x, w - 1);
        u24(&mut vp8x, h - 1);
        let mut body = b"WEBP".to_vec();
        encode::riff_chunk(&mut body, b"VP8X", &vp8x);
        if let Some(icc) = &self.keep.icc {
            encode::riff_chunk(&mut body, b"ICCP", icc);
        }
        // Background colour (BGRA, only a hint) and loop count.
        let mut anim = vec![0, 0, 0, 0];
        anim.extend_from_slice(&self.loop_count.to_le_bytes());
        encode::riff_chunk(&mut body, b"ANIM", &anim);
        body.extend_from_slice(&self.frames);
        if let Some(exif) = &self.keep.exif {
            encode::riff_chunk(&mut body, b"EXIF", exif);
        }
        let mut out = b"RIFF".to_vec();
        out.extend_from_slice(&(body.len() as u32).to_le_bytes());
        out.extend_from_slice(&body);
        Ok(out)
    }
}

/// Encodes one still image as a single-frame GIF.
pub(crate) fn encode_gif(img: &DynamicImage) -> Result<Vec<u8>> {
    let mut sink = Sink::Gif {
        enc: None,
        repeat: gif::Repeat::Finite(0),
    };
    sink.add(img, 0)?;
    sink.finish()
}
