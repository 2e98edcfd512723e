//! The renderer: bind → check → compile → rasterise (takumi, over a cached backdrop of the
//! template's static layers) → encode (pixeld-imaging).

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use takumi::prelude::{ImageSource, ImageSourceInput, RenderOptions};
use xxhash_rust::xxh3::Xxh3;

use crate::bind::{Data, Modification, bind};
use crate::compile::{Compiler, ImageLookup, rgba_source};
use crate::error::{Error, Result};
use crate::fonts::FontLibrary;
#[cfg(test)]
use crate::template::Layer;
use crate::template::{ImageFit, LayerKind, Template};
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
/// parsed once, decoded images are cached by content, and so is each template's backdrop (its
/// static layers, painted once, by the first render that needs it).
pub struct Renderer {
    fonts: FontLibrary,
    limits: Limits,
    image_limits: pixeld_imaging::Limits,
    images: Mutex<Lru<ImageSourceInput>>,
    /// Rendered static layers by content, see [`Backdrop`].
    /// A slot per backdrop: the first render of a template paints it while the others that
    /// need it wait for it (a CSV batch starts a render per core at once).
    backdrops: Mutex<Lru<BackdropSlot>>,
    /// How many backdrops have been painted (cache misses).
    backdrops_painted: std::sync::atomic::AtomicU64,
    /// Whether renders use backdrops (always, but for tests that compare with a render
    /// painted in one pass).
    use_backdrops: bool,
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
            images: Mutex::new(Lru::new(128 << 20)),
            backdrops: Mutex::new(Lru::new(64 << 20)),
            backdrops_painted: std::sync::atomic::AtomicU64::new(0),
            use_backdrops: true,
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
        if matches!(out.format, Format::Svg | Format::Pdf) {
            let (node, viewport) = compiler.page(&bound)?;
            let svg = |node| {
                let opts = takumi::prelude::SvgOptions::builder()
                    .viewport(viewport)
                    .node(node)
                    .fonts(&fonts.fonts)
                    .build();
                takumi::render_svg(opts).map_err(|e| Error::Render(e.to_string()))
            };
            let bytes = if out.format == Format::Svg {
                svg(node)?.into_bytes()
            } else {
                // The same tree measured, for the positions of the text runs.
                let opts = RenderOptions::builder()
                    .viewport(viewport)
                    .node(node.clone())
                    .fonts(&fonts.fonts)
                    .build();
                let measured = takumi::measure(opts).map_err(|e| Error::Render(e.to_string()))?;
                crate::pdf::document(&svg(node)?, &measured, &bound.page, out.scale, &fonts.fonts)?
            };
            return Ok(Rendered {
                bytes,
                format: out.format,
                width: bound.page.width,
                height: bound.page.height,
            });
        }
        let raster = |node, viewport| -> Result<pixeld_imaging::Rgba> {
            let opts = RenderOptions::builder()
                .viewport(viewport)
                .node(node)
                .fonts(&fonts.fonts)
                .build();
            let bitmap = takumi::render(opts).map_err(|e| Error::Render(e.to_string()))?;
            Ok(pixeld_imaging::Rgba {
                width: bitmap.width(),
                height: bitmap.height(),
                data: bitmap.into_raw(),
            })
        };
        let split = static_prefix(template, input.modifications).filter(|_| self.use_backdrops);
        let (pixels, backdrop) = match split {
            Some(k) => {
                let backdrop = self.backdrop(&bound, k, input.images, fonts, out.scale, |t| {
                    let (node, viewport) = compiler.page(t)?;
                    raster(node, viewport)
                })?;
                let mut over = bound.clone();
                over.page.background = None;
                over.layers.drain(..k);
                let pixels = if over.layers.iter().all(|l| l.common.hidden) {
                    backdrop.pixels.clone()
                } else {
                    let (node, viewport) = compiler.page(&over)?;
                    let layer = raster(node, viewport)?;
                    composite(&backdrop.pixels, layer)?
                };
                (pixels, Some(backdrop))
            }
            None => {
                let (node, viewport) = compiler.page(&bound)?;
                (raster(node, viewport)?, None)
            }
        };
        let (width, height) = (pixels.width, pixels.height);
        // A PNG over a backdrop is encoded against the previous one (see `Backdrop`).
        let reference = backdrop
            .filter(|_| out.format == Format::Png)
            .and_then(|b| {
                let base = b.png.lock().unwrap_or_else(|p| p.into_inner()).clone()?;
                Some((b, base))
            });
        let bytes = match reference {
            Some((backdrop, base)) => {
                let (bytes, next) = base
                    .encode(pixels)
                    .map_err(|e| Error::Encode(e.to_string()))?;
                if let Some(next) = next {
                    *backdrop.png.lock().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(next));
                }
                bytes
            }
            _ => encode(pixels, out)?,
        };
        Ok(Rendered {
            bytes,
            format: out.format,
            width,
            height,
        })
    }
}

/// The page background and the first top-level layers of a template, rendered once and
/// reused by every render of the template whatever its data: the layers are painted in order,
/// so those under the first layer that data or a modification can change are the same in
/// every render. A render paints the other layers over a transparent page and lays them over
/// the backdrop ([`composite`]), and a PNG re-encodes only the rows that differ from the
/// previous render's ([`pixeld_imaging::PngBase`]; the bytes do not depend on which render
/// came before).
struct Backdrop {
    pixels: pixeld_imaging::Rgba,
    /// The last PNG render over this backdrop (at first the backdrop alone) with its image
    /// data in spans, when the backdrop is opaque and unfiltered PNG suits it: renders of a
    /// template mostly repeat the one before, over its static layers and elsewhere.
    png: Mutex<Option<Arc<pixeld_imaging::PngBase>>>,
}

/// How many top-level layers, from the first, no data or modification can change, when the
/// template gains from a backdrop: `None` when its background takes data, or when there is
/// nothing static under the first changing layer (no background and no such layers).
fn static_prefix(template: &Template, modifications: &[Modification]) -> Option<usize> {
    let takes_data = |v: Result<String, serde_json::Error>| v.map_or(true, |j| j.contains("{{"));
    if takes_data(serde_json::to_string(&template.page)) {
        return None;
    }
    let named: BTreeSet<&str> = modifications.iter().map(|m| m.name.as_str()).collect();
    let changes = |l: &crate::template::Layer| {
        takes_data(serde_json::to_string(l)) || {
            let mut stack = vec![l];
            let mut hit = false;
            while let Some(l) = stack.pop() {
                hit |= named.contains(l.common.name.as_str());
                stack.extend(l.children());
            }
            hit
        }
    };
    let k = template.layers.iter().take_while(|l| !changes(l)).count();
    (k > 0 || template.page.background.is_some()).then_some(k)
}

/// Lays `layer` (straight alpha, as takumi returns it) over `base` (the same size), as source
/// over, in `layer`'s buffer; the result differs from painting the layer's shapes onto the
/// base directly by the rounding of its translucent edges, at most a level or two.
fn composite(
    base: &pixeld_imaging::Rgba,
    mut layer: pixeld_imaging::Rgba,
) -> Result<pixeld_imaging::Rgba> {
    if (base.width, base.height) != (layer.width, layer.height)
        || base.data.len() != layer.data.len()
    {
        return Err(Error::Render("layers of different sizes".to_owned()));
    }
    // Eight pixels at a time: most of a layer of text is empty (the base shows through) and
    // the rest mostly opaque glyph cores.
    for (l8, b8) in layer.data.chunks_mut(32).zip(base.data.chunks(32)) {
        let alpha = l8
            .iter()
            .skip(3)
            .step_by(4)
            .fold((255u8, 0u8), |(and, or), &a| (and & a, or | a));
        match alpha {
            (_, 0) => l8.copy_from_slice(b8),
            (255, _) => {}
            _ => {
                for (l, b) in l8.chunks_exact_mut(4).zip(b8.chunks_exact(4)) {
                    over(l, b);
                }
            }
        }
    }
    Ok(layer)
}

/// One straight-alpha pixel `l` over `b`, into `l`.
fn over(l: &mut [u8], b: &[u8]) {
    let a = u32::from(l[3]);
    if a == 255 {
        return;
    }
    if a == 0 {
        l.copy_from_slice(b);
        return;
    }
    let ab = u32::from(b[3]);
    if ab == 255 {
        for c in 0..3 {
            l[c] = ((u32::from(l[c]) * a + u32::from(b[c]) * (255 - a) + 127) / 255) as u8;
        }
        l[3] = 255;
    } else {
        // Over a translucent base: weights in 1/255² units.
        let wb = ab * (255 - a);
        let total = a * 255 + wb;
        if total == 0 {
            return;
        }
        for c in 0..3 {
            l[c] = ((u32::from(l[c]) * a * 255 + u32::from(b[c]) * wb + total / 2) / total) as u8;
        }
        l[3] = ((total + 127) / 255) as u8;
    }
}

impl Renderer {
    /// The backdrop of `bound`'s first `k` layers, from the cache or painted by `paint`.
    fn backdrop(
        &self,
        bound: &Template,
        k: usize,
        images: &Images,
        fonts: &FontLibrary,
        scale: f32,
        paint: impl FnOnce(&Template) -> Result<pixeld_imaging::Rgba>,
    ) -> Result<Arc<Backdrop>> {
        let mut base = bound.clone();
        base.layers.truncate(k);
        base.variables.clear();
        let mut h = Xxh3::new();
        h.update(&serde_json::to_vec(&base).map_err(|e| Error::Render(e.to_string()))?);
        h.update(&scale.to_bits().to_le_bytes());
        h.update(&fonts.id.to_le_bytes());
        for (_, l) in base.walk() {
            if let LayerKind::Image(i) = &l.kind
                && let Some(bytes) = images.get(i.src.trim())
            {
                h.update(&(bytes.len() as u64).to_le_bytes());
                h.update(bytes);
            }
        }
        let key = h.digest128();
        let slot = {
            let mut cache = self.backdrops.lock().unwrap_or_else(|p| p.into_inner());
            match cache.get(key) {
                Some(slot) => slot,
                None => {
                    // The pixels, and about twice the PNG rows (the backdrop's and the last
                    // render's), counted before they exist.
                    let area = bound.page.width as f32 * bound.page.height as f32 * scale * scale;
                    let slot = BackdropSlot::default();
                    cache.put(key, slot.clone(), (area * 10.0) as usize);
                    slot
                }
            }
        };
        let mut painted = slot.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(b) = &*painted {
            return Ok(b.clone());
        }
        // A failed paint leaves the slot empty: the next render tries again.
        let pixels = paint(&base)?;
        self.backdrops_painted
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let png = pixeld_imaging::PngBase::new(&pixels);
        let backdrop = Arc::new(Backdrop {
            pixels,
            png: Mutex::new(png.map(Arc::new)),
        });
        *painted = Some(backdrop.clone());
        Ok(backdrop)
    }
}

/// A backdrop once painted.
type BackdropSlot = Arc<Mutex<Option<Arc<Backdrop>>>>;

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
        fit: ImageFit,
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
            .decoded(bytes, box_px, fit, handover)
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
        fit: ImageFit,
        handover: Handover,
    ) -> Result<ImageSourceInput> {
        let mut h = Xxh3::new();
        h.update(bytes);
        if let Some((w, hh)) = box_px {
            h.update(&w.to_le_bytes());
            h.update(&hh.to_le_bytes());
        }
        h.update(&[handover as u8, fit as u8]);
        let key = h.digest128();
        if let Some(img) = self
            .images
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
        {
            return Ok(img);
        }
        let mut px = pixeld_imaging::decode_rgba(bytes, &self.image_limits, box_px)
            .map_err(|e| Error::Render(e.to_string()))?;
        // Pixels go to the rasteriser at the size they are drawn, so that it copies them instead
        // of averaging a larger picture down on every render (Lanczos3 here, once per image).
        if handover == Handover::Pixels
            && let Some(size) = box_px.and_then(|b| drawn_size(fit, b, (px.width, px.height)))
        {
            px = pixeld_imaging::resize_rgba(px, size.0, size.1)
                .map_err(|e| Error::Render(e.to_string()))?;
        }
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

/// The size a picture of `size` pixels is drawn at in a box of `box_px` by `fit`, when that is
/// smaller than the picture in both directions (the rasteriser scales up by itself).
fn drawn_size(fit: ImageFit, box_px: (u32, u32), size: (u32, u32)) -> Option<(u32, u32)> {
    let (bw, bh) = (f64::from(box_px.0.max(1)), f64::from(box_px.1.max(1)));
    let (w, h) = (f64::from(size.0.max(1)), f64::from(size.1.max(1)));
    let (sx, sy) = match fit {
        ImageFit::Cover => {
            let s = (bw / w).max(bh / h);
            (s, s)
        }
        ImageFit::Contain => {
            let s = (bw / w).min(bh / h);
            (s, s)
        }
        ImageFit::Fill => (bw / w, bh / h),
    };
    let (tw, th) = ((w * sx).round().max(1.0), (h * sy).round().max(1.0));
    (tw < w && th < h).then_some((tw as u32, th as u32))
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

/// Values by content hash (decoded images, backdrops), least recently used evicted past a
/// byte budget.
struct Lru<V> {
    entries: HashMap<u128, (V, usize, u64)>,
    bytes: usize,
    budget: usize,
    tick: u64,
}

impl<V: Clone> Lru<V> {
    fn new(budget: usize) -> Self {
        Lru {
            entries: HashMap::new(),
            bytes: 0,
            budget,
            tick: 0,
        }
    }

    fn get(&mut self, key: u128) -> Option<V> {
        self.tick += 1;
        let tick = self.tick;
        self.entries.get_mut(&key).map(|e| {
            e.2 = tick;
            e.0.clone()
        })
    }

    fn put(&mut self, key: u128, img: V, cost: usize) {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn template(v: serde_json::Value) -> Template {
        crate::validate::parse(v.to_string().as_bytes(), &Limits::default()).expect("a template")
    }

    /// A 60×20 translucent logo as a data URI.
    fn logo() -> String {
        let img = image::RgbaImage::from_fn(60, 20, |x, y| {
            image::Rgba([
                (x * 4) as u8,
                200,
                (y * 12) as u8,
                if (x + y) % 5 == 0 { 0 } else { 180 },
            ])
        });
        let mut png = Vec::new();
        image::DynamicImage::ImageRgba8(img)
            .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .expect("encodes");
        format!(
            "data:image/png;base64,{}",
            base64::engine::general_purpose::STANDARD.encode(png)
        )
    }

    /// A card like the bench's: gradient, a static logo and frame, text from data, and a
    /// static shape above the text.
    fn card(background: bool) -> Template {
        let mut v = serde_json::json!({
            "page": {"width": 400, "height": 210},
            "layers": [
                {"type": "image", "name": "logo", "x": 20, "y": 16, "width": 120, "height": 40,
                 "src": logo(), "fit": "contain"},
                {"type": "frame", "name": "panel", "x": 10, "y": 70, "width": 380, "height": 90,
                 "background": "#ffffff22", "radius": 12},
                {"type": "text", "name": "title", "x": 20, "y": 76, "width": 360,
                 "text": "{{title}}", "size": 28, "color": "#ffffff", "font": {"weight": 700}},
                {"type": "shape", "name": "dot", "shape": "ellipse", "x": 340, "y": 170,
                 "width": 30, "height": 30, "fill": "#f59e0b"}
            ]
        });
        if background {
            v["page"]["background"] = serde_json::json!({"linear": {"angle": 135, "stops": [
                {"color": "#0f172a"}, {"color": "#1e3a8a", "at": 0.55}, {"color": "#7c3aed"}]}});
        }
        template(v)
    }

    fn render(
        r: &Renderer,
        t: &Template,
        title: &str,
        mods: &[Modification],
        format: Format,
    ) -> Vec<u8> {
        let data: Data = [("title".to_owned(), title.to_owned())].into();
        let input = Input {
            data: &data,
            modifications: mods,
            images: &Images::new(),
        };
        let out = OutputOptions {
            format,
            ..Default::default()
        };
        r.render(t, input, &out).expect("renders").bytes
    }

    fn pixels(png: &[u8]) -> image::RgbaImage {
        image::load_from_memory(png).expect("decodes").to_rgba8()
    }

    /// Largest channel difference, and how many channel values differ at all.
    fn difference(a: &image::RgbaImage, b: &image::RgbaImage) -> (u8, usize) {
        assert_eq!(a.dimensions(), b.dimensions());
        a.as_raw()
            .iter()
            .zip(b.as_raw())
            .fold((0, 0), |(max, n), (x, y)| {
                (max.max(x.abs_diff(*y)), n + usize::from(x != y))
            })
    }

    fn one_pass() -> Renderer {
        let mut r = Renderer::new().expect("fonts");
        r.use_backdrops = false;
        r
    }

    #[test]
    fn renders_over_a_backdrop_look_like_renders_painted_in_one_pass() {
        let r = Renderer::new().expect("fonts");
        let whole = one_pass();
        for background in [true, false] {
            let t = card(background);
            assert_eq!(static_prefix(&t, &[]), Some(2), "logo and panel are static");
            for title in [
                "Backdrops",
                "A longer title that wraps onto a second line",
                "",
            ] {
                let a = pixels(&render(&r, &t, title, &[], Format::Png));
                let b = pixels(&render(&whole, &t, title, &[], Format::Png));
                let (max, n) = difference(&a, &b);
                // Only the rounding of translucent glyph edges over the backdrop differs.
                assert!(max <= 3, "{title:?}: max difference {max}");
                assert!(n * 200 < a.as_raw().len(), "{title:?}: {n} values differ");
            }
        }
        // One backdrop per template (and background), whatever the titles.
        assert_eq!(r.backdrops.lock().unwrap().entries.len(), 2);
    }

    #[test]
    fn renders_started_together_paint_their_backdrop_once() {
        let r = Renderer::new().expect("fonts");
        let t = card(true);
        let pngs: Vec<Vec<u8>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|i| {
                    let (r, t) = (&r, &t);
                    s.spawn(move || render(r, t, &format!("Row {i}"), &[], Format::Png))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("renders"))
                .collect()
        });
        assert_eq!(
            r.backdrops_painted
                .load(std::sync::atomic::Ordering::Relaxed),
            1
        );
        // Each is its own picture, and the same bytes as that row rendered alone.
        for (i, png) in pngs.iter().enumerate() {
            assert_eq!(
                png,
                &render(&fresh(), &t, &format!("Row {i}"), &[], Format::Png)
            );
        }
    }

    /// A renderer of its own, with empty caches.
    fn fresh() -> Renderer {
        Renderer::new().expect("fonts")
    }

    #[test]
    fn a_backdrop_render_is_the_same_bytes_cold_or_warm_and_in_every_format() {
        let t = card(true);
        for format in [Format::Png, Format::Jpeg, Format::Webp] {
            let r = Renderer::new().expect("fonts");
            let cold = render(&r, &t, "Same bytes", &[], format);
            let warm = render(&r, &t, "Same bytes", &[], format);
            assert_eq!(cold, warm, "{format:?}");
            let other = render(&r, &t, "Other bytes", &[], format);
            assert_ne!(cold, other, "{format:?}");
            // After another render (the PNG's reference), the same data gives the same bytes.
            assert_eq!(
                render(&r, &t, "Same bytes", &[], format),
                cold,
                "{format:?}"
            );
        }
    }

    #[test]
    fn images_are_handed_over_at_the_size_they_are_drawn() {
        // A 400 px square avatar in an 88 px box, a 2× logo in its box, a stretched banner.
        assert_eq!(
            drawn_size(ImageFit::Cover, (88, 88), (400, 400)),
            Some((88, 88))
        );
        assert_eq!(
            drawn_size(ImageFit::Cover, (88, 88), (400, 200)),
            Some((176, 88))
        );
        assert_eq!(
            drawn_size(ImageFit::Contain, (240, 72), (480, 144)),
            Some((240, 72))
        );
        assert_eq!(
            drawn_size(ImageFit::Contain, (100, 100), (400, 200)),
            Some((100, 50))
        );
        assert_eq!(
            drawn_size(ImageFit::Fill, (300, 50), (600, 400)),
            Some((300, 50))
        );
        // Never larger, and not when one side would grow.
        assert_eq!(drawn_size(ImageFit::Cover, (500, 500), (400, 400)), None);
        assert_eq!(drawn_size(ImageFit::Fill, (300, 500), (600, 400)), None);
    }

    #[test]
    fn modifications_and_placeholders_keep_their_layers_out_of_the_backdrop() {
        let r = Renderer::new().expect("fonts");
        let t = card(true);
        let hide = |name: &str| Modification {
            name: name.to_owned(),
            hidden: Some(true),
            ..Default::default()
        };
        // Hiding the logo by a modification takes it out of the picture, in a render after
        // one that cached the backdrop with it.
        let with_logo = pixels(&render(&r, &t, "x", &[], Format::Png));
        let without = pixels(&render(&r, &t, "x", &[hide("logo")], Format::Png));
        let logo_px = |img: &image::RgbaImage| *img.get_pixel(40, 30);
        assert_ne!(logo_px(&with_logo), logo_px(&without));
        let whole = pixels(&render(&one_pass(), &t, "x", &[hide("logo")], Format::Png));
        assert!(difference(&without, &whole).0 <= 3);
        assert_eq!(static_prefix(&t, &[hide("logo")]), Some(0));
        assert_eq!(static_prefix(&t, &[hide("panel")]), Some(1));
        assert_eq!(static_prefix(&t, &[hide("dot")]), Some(2));
        // A background that takes data is never a backdrop; a page with nothing static has
        // none either.
        let mut v = serde_json::to_value(&t).unwrap();
        v["page"]["background"] = serde_json::json!("{{colour}}");
        assert_eq!(static_prefix(&template(v), &[]), None);
        let mut bare = card(false);
        bare.layers.drain(..2);
        assert_eq!(static_prefix(&bare, &[]), None);
        // A placeholder inside a frame's child makes the frame change.
        let mut nested = card(true);
        let title: Layer = nested.layers[2].clone();
        if let LayerKind::Frame(f) = &mut nested.layers[1].kind {
            f.children.push(title);
        }
        assert_eq!(static_prefix(&nested, &[]), Some(1));
    }
}
