//! The renderer: bind → check → compile → rasterise (takumi) → encode (pixeld-imaging).

use std::collections::{BTreeSet, HashMap};
use std::hash::{BuildHasher, Hasher};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use takumi::prelude::{ImageSource, ImageSourceInput, RenderOptions};

use crate::bind::{Data, Modification, bind};
use crate::compile::{Compiler, ImageLookup, rgba_source};
use crate::error::{Error, Result};
use crate::fonts::FontLibrary;
use crate::template::{LayerKind, Template};
use crate::validate::{Limits, check};

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// PNG (lossless; the default).
    Png,
    /// JPEG (mozjpeg).
    Jpeg,
    /// WebP.
    Webp,
    /// AVIF.
    Avif,
    /// SVG with text as vector paths.
    Svg,
    /// PDF: the SVG's vectors on a page sized by the template's `dpi`, with the text as an
    /// invisible, searchable layer.
    Pdf,
}

impl Format {
    /// The MIME type.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Png => "image/png",
            Format::Jpeg => "image/jpeg",
            Format::Webp => "image/webp",
            Format::Avif => "image/avif",
            Format::Svg => "image/svg+xml",
            Format::Pdf => "application/pdf",
        }
    }

    /// The usual file extension.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Png => "png",
            Format::Jpeg => "jpg",
            Format::Webp => "webp",
            Format::Avif => "avif",
            Format::Svg => "svg",
            Format::Pdf => "pdf",
        }
    }

    /// Reads `png`, `jpeg`/`jpg`, `webp`, `avif`, `svg`, `pdf`.
    pub fn parse(s: &str) -> Option<Format> {
        Some(match s.to_ascii_lowercase().as_str() {
            "png" => Format::Png,
            "jpeg" | "jpg" => Format::Jpeg,
            "webp" => Format::Webp,
            "avif" => Format::Avif,
            "svg" => Format::Svg,
            "pdf" => Format::Pdf,
            _ => return None,
        })
    }
}

/// How to encode the result.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputOptions {
    /// The format.
    pub format: Format,
    /// Quality 1–100 for JPEG, WebP and AVIF (encoder default when absent).
    pub quality: Option<u8>,
    /// Device pixels per CSS pixel, 1–4 (2 for "retina" output).
    pub scale: f32,
}

impl Default for OutputOptions {
    fn default() -> Self {
        OutputOptions {
            format: Format::Png,
            quality: None,
            scale: 1.0,
        }
    }
}

/// A finished render.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// Encoded bytes.
    pub bytes: Vec<u8>,
    /// The format written.
    pub format: Format,
    /// Width in pixels (CSS pixels for SVG and PDF).
    pub width: u32,
    /// Height in pixels (CSS pixels for SVG and PDF).
    pub height: u32,
}

/// Encoded image bytes for the `src` values of image layers that are not `data:` URIs (URLs
/// and `asset:` ids), fetched by the caller: the renderer does no I/O.
pub type Images = HashMap<String, Arc<[u8]>>;

/// What one render needs besides the template.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    /// Variable values.
    pub data: &'a Data,
    /// Layer changes by name.
    pub modifications: &'a [Modification],
    /// Fetched image bytes by `src`.
    pub images: &'a Images,
}

/// Renders templates with one font library. Share one `Renderer` across threads: fonts are
/// parsed once and decoded images are cached by content.
pub struct Renderer {
    fonts: FontLibrary,
    limits: Limits,
    image_limits: pixeld_imaging::Limits,
    images: Mutex<ImageCache>,
}

impl Renderer {
    /// A renderer with the bundled fonts and default limits.
    pub fn new() -> Result<Self> {
        Ok(Self::with_fonts(FontLibrary::bundled()?, Limits::default()))
    }

    /// A renderer with the given fonts and limits.
    pub fn with_fonts(fonts: FontLibrary, limits: Limits) -> Self {
        Renderer {
            fonts,
            limits,
            image_limits: pixeld_imaging::Limits::default(),
            images: Mutex::new(ImageCache::new(128 << 20)),
        }
    }

    /// The font library.
    pub fn fonts(&self) -> &FontLibrary {
        &self.fonts
    }

    /// The limits templates are checked against.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The `src` values of the image layers the caller must fetch for this data (URLs and
    /// `asset:` ids; `data:` URIs are read here), after binding and modifications.
    pub fn image_sources(
        &self,
        template: &Template,
        data: &Data,
        modifications: &[Modification],
    ) -> Result<Vec<String>> {
        let bound = bind(template, data, modifications)?;
        let mut out = BTreeSet::new();
        for (_, l) in bound.walk() {
            if let LayerKind::Image(i) = &l.kind
                && !l.common.hidden
                && !i.src.trim_start().starts_with("data:")
            {
                out.insert(i.src.trim().to_owned());
            }
        }
        Ok(out.into_iter().collect())
    }

    /// Renders a template.
    pub fn render(
        &self,
        template: &Template,
        input: Input<'_>,
        out: &OutputOptions,
    ) -> Result<Rendered> {
        self.render_with(&self.fonts, template, input, out)
    }

    /// Renders with another font library (an organisation's: the bundled fonts plus uploads).
    pub fn render_with(
        &self,
        fonts: &FontLibrary,
        template: &Template,
        input: Input<'_>,
        out: &OutputOptions,
    ) -> Result<Rendered> {
        if !(1.0..=4.0).contains(&out.scale) {
            return Err(Error::Data("scale must be 1–4".to_owned()));
        }
        if let Some(q) = out.quality
            && !(1..=100).contains(&q)
        {
            return Err(Error::Data("quality must be 1–100".to_owned()));
        }
        let bound = bind(template, input.data, input.modifications)?;
        check(&bound, &self.limits)?;
        let (w, h) = (
            (bound.page.width as f32 * out.scale).round() as u32,
            (bound.page.height as f32 * out.scale).round() as u32,
        );
        if u64::from(w) * u64::from(h) > self.limits.max_pixels {
            return Err(Error::Invalid(vec![format!(
                "{w}×{h} output pixels; at most {} are allowed",
                self.limits.max_pixels
            )]));
        }
        let unknown: BTreeSet<String> = bound
            .walk()
            .into_iter()
            .filter_map(|(_, l)| match &l.kind {
                LayerKind::Text(t) => t.font.family.clone(),
                _ => None,
            })
            .filter(|f| fonts.resolve(f).is_none())
            .collect();
        if !unknown.is_empty() {
            return Err(Error::UnknownFonts(unknown.into_iter().collect()));
        }
        let lookup = Lookup {
            renderer: self,
            images: input.images,
            vector: matches!(out.format, Format::Svg | Format::Pdf),
        };
        let compiler = Compiler {
            fonts,
            images: &lookup,
            scale: out.scale,
        };
        let (node, viewport) = compiler.page(&bound)?;
        let svg = |node| {
            let opts = takumi::prelude::SvgOptions::builder()
                .viewport(viewport)
                .node(node)
                .fonts(&fonts.fonts)
                .build();
            takumi::render_svg(opts).map_err(|e| Error::Render(e.to_string()))
        };
        let vector = |bytes| Rendered {
            bytes,
            format: out.format,
            width: bound.page.width,
            height: bound.page.height,
        };
        match out.format {
            Format::Svg => return Ok(vector(svg(node)?.into_bytes())),
            Format::Pdf => {
                // The same tree measured, for the positions of the text runs.
                let opts = RenderOptions::builder()
                    .viewport(viewport)
                    .node(node.clone())
                    .fonts(&fonts.fonts)
                    .build();
                let measured = takumi::measure(opts).map_err(|e| Error::Render(e.to_string()))?;
                let pdf = crate::pdf::document(
                    &svg(node)?,
                    &measured,
                    &bound.page,
                    out.scale,
                    &fonts.fonts,
                )?;
                return Ok(vector(pdf));
            }
            _ => {}
        }
        let opts = RenderOptions::builder()
            .viewport(viewport)
            .node(node)
            .fonts(&fonts.fonts)
            .build();
        let bitmap = takumi::render(opts).map_err(|e| Error::Render(e.to_string()))?;
        let (width, height) = (bitmap.width(), bitmap.height());
        let pixels = pixeld_imaging::Rgba {
            width,
            height,
            data: bitmap.into_raw(),
        };
        let bytes = encode(pixels, out)?;
        Ok(Rendered {
            bytes,
            format: out.format,
            width,
            height,
        })
    }
}

fn encode(pixels: pixeld_imaging::Rgba, out: &OutputOptions) -> Result<Vec<u8>> {
    use pixeld_imaging::OutputFormat as F;
    let format = match out.format {
        // Renders are served while the user waits: a one-pass lossless encoder, within ~5 % of
        // oxipng's fastest preset on rendered cards in a sixth of its time.
        Format::Png => {
            return pixeld_imaging::encode_png_fast(pixels)
                .map_err(|e| Error::Encode(e.to_string()));
        }
        Format::Jpeg => F::Jpeg,
        Format::Webp => F::Webp,
        Format::Avif => F::Avif,
        Format::Svg | Format::Pdf => unreachable!("SVG and PDF are written by the vector backend"),
    };
    let opts = pixeld_imaging::Options {
        quality: out.quality,
        // The fastest AVIF settings; the other lossy formats keep their encoders' balanced
        // defaults.
        effort: Some(match out.format {
            Format::Avif => 8,
            _ => 4,
        }),
        ..Default::default()
    };
    pixeld_imaging::encode_rgba(pixels, format, &opts).map_err(|e| Error::Encode(e.to_string()))
}

struct Lookup<'a> {
    renderer: &'a Renderer,
    images: &'a Images,
    /// For the SVG backend, which embeds encoded images and skips raw pixels.
    vector: bool,
}

/// How decoded pixels are handed to takumi.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Handover {
    /// Raw pixels, for the rasteriser.
    Pixels,
    /// Encoded for the SVG backend: JPEG when opaque, as photos are, PNG otherwise. svg2pdf
    /// embeds a JPEG as it is, and a PNG losslessly with its alpha as a soft mask.
    Encoded,
    /// PNG, for a filtered image: the PDF redraws filtered elements with takumi's own SVG
    /// rasteriser, which reads PNG but, with no JPEG decoder in takumi, not JPEG.
    Png,
}

impl ImageLookup for Lookup<'_> {
    fn image(
        &self,
        layer: &str,
        src: &str,
        box_px: Option<(u32, u32)>,
        filtered: bool,
    ) -> Result<ImageSourceInput> {
        let fail = |reason: String| Error::Image {
            layer: layer.to_owned(),
            reason,
        };
        let owned;
        let bytes: &[u8] = if let Some(rest) = src.strip_prefix("data:") {
            let (meta, payload) = rest
                .split_once(',')
                .ok_or_else(|| fail("a data URI needs a comma".to_owned()))?;
            owned = if meta.ends_with(";base64") {
                base64::engine::general_purpose::STANDARD
                    .decode(payload.trim())
                    .map_err(|e| fail(format!("data URI is not base64: {e}")))?
            } else {
                percent_decode(payload)
            };
            &owned
        } else {
            self.images
                .get(src)
                .ok_or_else(|| fail(format!("{src} was not fetched")))?
        };
        let head = &bytes[..bytes.len().min(512)];
        if String::from_utf8_lossy(head).trim_start().starts_with('<') {
            let source = ImageSource::from_bytes(bytes)
                .map_err(|e| fail(format!("SVG could not be read: {e:?}")))?;
            return Ok(ImageSourceInput::Loaded(source));
        }
        let handover = match (self.vector, filtered) {
            (false, _) => Handover::Pixels,
            (true, false) => Handover::Encoded,
            (true, true) => Handover::Png,
        };
        self.renderer
            .decoded(bytes, box_px, handover)
            .map_err(|e| fail(e.to_string()))
    }
}

fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let Some(v) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

impl Renderer {
    /// Decodes an image (shrunk on decode towards the box it fills), through the cache: as
    /// pixels for the rasteriser, or re-encoded for the vector backend, which embeds encoded
    /// images as data URLs and drops raw pixels. Re-encoding, rather than passing the original
    /// bytes on, keeps the decoder's orientation, colour conversion and shrinking, and any
    /// input format (AVIF, TIFF…) comes out as one a PDF or SVG reader understands.
    fn decoded(
        &self,
        bytes: &[u8],
        box_px: Option<(u32, u32)>,
        handover: Handover,
    ) -> Result<ImageSourceInput> {
        let mut h = self
            .images
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .hasher
            .build_hasher();
        h.write(bytes);
        if let Some((w, hh)) = box_px {
            h.write_u32(w);
            h.write_u32(hh);
        }
        h.write_u8(handover as u8);
        let key = h.finish();
        if let Some(img) = self
            .images
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
        {
            return Ok(img);
        }
        let px = pixeld_imaging::decode_rgba(bytes, &self.image_limits, box_px)
            .map_err(|e| Error::Render(e.to_string()))?;
        let (img, cost) = if handover == Handover::Pixels {
            let cost = px.data.len();
            (ImageSourceInput::Rgba(rgba_source(px)?), cost)
        } else {
            let encoded = encode_for_vector(px, handover == Handover::Png)?;
            let cost = encoded.len();
            (ImageSourceInput::Buffer(encoded), cost)
        };
        self.images
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .put(key, img.clone(), cost);
        Ok(img)
    }
}

/// Pixels for the vector backend: JPEG (quality 90) when opaque and not `lossless`, else PNG.
fn encode_for_vector(px: pixeld_imaging::Rgba, lossless: bool) -> Result<Vec<u8>> {
    let opaque = px.data.chunks_exact(4).all(|p| p[3] == 255);
    let (format, opts) = if opaque && !lossless {
        let opts = pixeld_imaging::Options {
            quality: Some(90),
            ..Default::default()
        };
        (pixeld_imaging::OutputFormat::Jpeg, opts)
    } else {
        let opts = pixeld_imaging::Options {
            effort: Some(0),
            ..Default::default()
        };
        (pixeld_imaging::OutputFormat::Png, opts)
    };
    pixeld_imaging::encode_rgba(px, format, &opts).map_err(|e| Error::Encode(e.to_string()))
}

/// Decoded images by content hash, least recently used evicted past a byte budget.
struct ImageCache {
    hasher: std::collections::hash_map::RandomState,
    entries: HashMap<u64, (ImageSourceInput, usize, u64)>,
    bytes: usize,
    budget: usize,
    tick: u64,
}

impl ImageCache {
    fn new(budget: usize) -> Self {
        ImageCache {
            hasher: Default::default(),
            entries: HashMap::new(),
            bytes: 0,
            budget,
            tick: 0,
        }
    }

    fn get(&mut self, key: u64) -> Option<ImageSourceInput> {
        self.tick += 1;
        let tick = self.tick;
        self.entries.get_mut(&key).map(|e| {
            e.2 = tick;
            e.0.clone()
        })
    }

    fn put(&mut self, key: u64, img: ImageSourceInput, cost: usize) {
        if cost > self.budget {
            return;
        }
        self.tick += 1;
        if let Some(old) = self.entries.insert(key, (img, cost, self.tick)) {
            self.bytes -= old.1;
        }
        self.bytes += cost;
        while self.bytes > self.budget {
            let Some((&oldest, _)) = self.entries.iter().min_by_key(|(_, e)| e.2) else {
                break;
            };
            if let Some(e) = self.entries.remove(&oldest) {
                self.bytes -= e.1;
            }
        }
    }
}
