//! PDF output: takumi's vector SVG converted by svg2pdf, under an invisible text layer.
//!
//! takumi's SVG backend draws every glyph as an outline `<path>`, so a PDF made from the SVG
//! alone looks right but holds no text: nothing to search, select or copy. The text runs that
//! takumi measured for the same layout are therefore written again as real PDF text in
//! rendering mode 3 (neither filled nor stroked), each one stretched with horizontal scaling
//! (`Tz`) over the width its glyphs cover: the technique of OCR'd "searchable" scans.
//!
//! That text is set in a glyphless font ([`glyphless`]) rather than in subsets of the real
//! fonts. The text is never painted, so the real outlines would add nothing but bytes (a CJK
//! subset alone is tens of kilobytes, and a run may mix faces from the fallback chain), and
//! mapping each character back to a glyph of the face takumi picked would duplicate its
//! shaping. With a `Type0` font in `Identity-H` encoding, character ids are given out per
//! document in order of first use, every id draws the same empty glyph, and a `ToUnicode`
//! CMap maps each id to its character, so any Unicode scalar (the whole BMP and beyond, up to
//! 65,535 distinct characters per document) extracts as itself.
//!
//! PDF has no filters, so filtered elements (soft box shadows, grey or blurred images) are
//! drawn by takumi and placed as pictures ([`filters`]); everything else stays vector.
//!
//! The bytes are reproducible: no dates, no random file id, object numbers fixed by the
//! writing order (see [`sort_resource_entries`] for the one thing svg2pdf leaves to chance).

mod filters;
mod glyphless;

use std::collections::HashMap;

use miniz_oxide::deflate::compress_to_vec_zlib;
use pdf_writer::types::{CidFontType, FontFlags, SystemInfo, TextRenderingMode, UnicodeCmap};
use pdf_writer::{Content, Filter, Finish, Name, Pdf, Rect, Ref, Str, TextStr};
use takumi::prelude::{Fonts, MeasuredNode};

use crate::error::{Error, Result};
use crate::template::Page;

/// An affine transform `(a, b, c, d, e, f)`: `x' = a·x + c·y + e`, `y' = b·x + d·y + f`.
type Affine = [f32; 6];

/// `m ∘ n`: `n` applied first.
fn concat(m: Affine, n: Affine) -> Affine {
    [
        m[0] * n[0] + m[2] * n[1],
        m[1] * n[0] + m[3] * n[1],
        m[0] * n[2] + m[2] * n[3],
        m[1] * n[2] + m[3] * n[3],
        m[0] * n[4] + m[2] * n[5] + m[4],
        m[1] * n[4] + m[3] * n[5] + m[5],
    ]
}

/// Rounded to a thousandth of a unit: far below a device pixel, and shorter to write.
fn round(v: f32) -> f32 {
    (v * 1000.0).round() / 1000.0
}

/// The page size in PDF points: CSS pixels at the page's `dpi` (72 by default, one pixel per
/// point; 96 gives CSS's physical inch, so a 1200 px page is 900 pt).
fn page_points(page: &Page) -> (f32, f32) {
    let k = 72.0 / page.dpi.max(1) as f32;
    (page.width as f32 * k, page.height as f32 * k)
}

/// A one-page PDF of `page`: the `svg` takumi drew for it (in device pixels at `scale`),
/// scaled to the page, and the text runs of `measured` (takumi's measure of the same node
/// tree) as invisible text. `fonts` draw the SVG's filtered elements.
pub(crate) fn document(
    svg: &str,
    measured: &MeasuredNode,
    page: &Page,
    scale: f32,
    fonts: &Fonts,
) -> Result<Vec<u8>> {
    let mut options = svg2pdf::usvg::Options::default();
    // The SVG is ours and embeds images as data URLs; never read a path from the disk.
    options.image_href_resolver.resolve_string = Box::new(|_, _| None);
    let units = (page.width as f32 * scale, page.height as f32 * scale);
    let svg = filters::rasterise(svg, &options, units, fonts)?;
    let tree = svg2pdf::usvg::Tree::from_str(&svg, &options)
        .map_err(|e| Error::Render(format!("PDF: the SVG could not be read: {e}")))?;
    let (graphics, graphics_root) = svg2pdf::to_chunk(&tree, svg2pdf::ConversionOptions::default())
        .map_err(|e| Error::Render(format!("PDF: {e}")))?;

    let (width, height) = page_points(page);
    let mut text = TextLayer::default();
    // Device pixels (y down) → points (y up).
    let k = 72.0 / page.dpi.max(1) as f32 / scale;
    text.node(measured, [k, 0.0, 0.0, -k, 0.0, height]);

    let mut next = Ref::new(1);
    let catalog = next.bump();
    let page_tree = next.bump();
    let page_id = next.bump();
    let contents = next.bump();
    let info = next.bump();
    let font = (!text.is_empty()).then(|| FontRefs {
        type0: next.bump(),
        cid: next.bump(),
        descriptor: next.bump(),
        program: next.bump(),
        cid_to_gid: next.bump(),
        to_unicode: next.bump(),
    });
    // svg2pdf numbers its objects from 1; shifting them past ours keeps every number fixed.
    let offset = next.get() - 1;
    let graphics = graphics.renumber(|r| Ref::new(r.get() + offset));
    let graphics_root = Ref::new(graphics_root.get() + offset);

    let mut pdf = Pdf::new();
    pdf.catalog(catalog).pages(page_tree);
    pdf.pages(page_tree).kids([page_id]).count(1);
    let mut p = pdf.page(page_id);
    p.parent(page_tree)
        .media_box(Rect::new(0.0, 0.0, width, height))
        .contents(contents);
    // Blend the SVG's transparency groups in RGB, as a browser would.
    p.group()
        .transparency()
        .isolated(true)
        .knockout(false)
        .color_space()
        .device_rgb();
    let mut resources = p.resources();
    resources.x_objects().pair(Name(b"Graphics"), graphics_root);
    if let Some(f) = &font {
        resources.fonts().pair(Name(b"Text"), f.type0);
    }
    resources.finish();
    p.finish();

    let mut content = Content::new();
    content
        .save_state()
        .transform([width, 0.0, 0.0, height, 0.0, 0.0])
        .x_object(Name(b"Graphics"))
        .restore_state();
    if font.is_some() {
        text.write(&mut content, Name(b"Text"));
    }
    let content = compress_to_vec_zlib(&content.finish(), 6);
    pdf.stream(contents, &content).filter(Filter::FlateDecode);
    if let Some(f) = &font {
        text.write_font(&mut pdf, f);
    }
    pdf.extend(&graphics);
    pdf.document_info(info).producer(TextStr("pixeld"));

    let mut bytes = pdf.finish();
    sort_resource_entries(&mut bytes);
    Ok(bytes)
}

struct FontRefs {
    type0: Ref,
    cid: Ref,
    descriptor: Ref,
    program: Ref,
    cid_to_gid: Ref,
    to_unicode: Ref,
}

/// Text runs placed for the content stream, and the character ids they use.
#[derive(Default)]
struct TextLayer {
    /// Character id − 1 → character.
    chars: Vec<char>,
    ids: HashMap<char, u16>,
    /// (text matrix, font size, horizontal scaling %, 2-byte character ids).
    runs: Vec<(Affine, f32, f32, Vec<u8>)>,
}

impl TextLayer {
    fn is_empty(&self) -> bool {
        self.runs.is_empty()
    }

    /// Adds the runs of `node` and its descendants; `page` maps takumi's absolute device pixel
    /// coordinates to points.
    fn node(&mut self, node: &MeasuredNode, page: Affine) {
        // A measured node's transform is absolute (page coordinates), not relative to its
        // parent; its runs are relative to the node's box.
        let to_page = concat(page, node.transform);
        for run in &node.runs {
            self.run(to_page, run);
        }
        for child in &node.children {
            self.node(child, page);
        }
    }

    fn run(&mut self, to_page: Affine, run: &takumi::prelude::MeasuredTextRun) {
        if !(run.width > 0.0 && run.height > 0.0) {
            return;
        }
        let mut codes = Vec::new();
        for c in run.text.chars().filter(|c| !c.is_control()) {
            let id = match self.ids.get(&c) {
                Some(&id) => id,
                None => {
                    let Ok(id) = u16::try_from(self.chars.len() + 1) else {
                        // 65,535 distinct characters: the rest stay out of the text layer.
                        continue;
                    };
                    self.chars.push(c);
                    self.ids.insert(c, id);
                    id
                }
            };
            codes.extend(id.to_be_bytes());
        }
        let n = (codes.len() / 2) as f32;
        if n == 0.0 {
            return;
        }
        // The font is one line box tall (ascent + descent = 1 em), so its baseline sits at
        // the ascent below the run's top; the y axis flips back up for the glyph space.
        let size = run.height;
        let ascent = glyphless::ASCENT as f32 / glyphless::UNITS_PER_EM as f32;
        let at = [1.0, 0.0, 0.0, -1.0, run.x, run.y + ascent * size];
        let matrix = concat(to_page, at).map(round);
        let advance = glyphless::ADVANCE as f32 / glyphless::UNITS_PER_EM as f32;
        let scaling = 100.0 * run.width / (n * advance * size);
        self.runs.push((matrix, round(size), round(scaling), codes));
    }

    fn write(&self, content: &mut Content, font: Name<'_>) {
        content
            .begin_text()
            .set_text_rendering_mode(TextRenderingMode::Invisible);
        for (matrix, size, scaling, codes) in &self.runs {
            content
                .set_font(font, *size)
                .set_horizontal_scaling(*scaling)
                .set_text_matrix(*matrix)
                .show(Str(codes));
        }
        content.end_text();
    }

    fn write_font(&self, pdf: &mut Pdf, refs: &FontRefs) {
        let name = Name(glyphless::NAME.as_bytes());
        pdf.type0_font(refs.type0)
            .base_font(name)
            .encoding_predefined(Name(b"Identity-H"))
            .descendant_font(refs.cid)
            .to_unicode(refs.to_unicode);
        pdf.cid_font(refs.cid)
            .subtype(CidFontType::Type2)
            .base_font(name)
            .system_info(SystemInfo {
                registry: Str(b"Adobe"),
                ordering: Str(b"Identity"),
                supplement: 0,
            })
            .font_descriptor(refs.descriptor)
            .default_width(glyphless::ADVANCE as f32)
            .cid_to_gid_map_stream(refs.cid_to_gid);
        let (ascent, descent, advance) = (
            glyphless::ASCENT as f32,
            glyphless::DESCENT as f32,
            glyphless::ADVANCE as f32,
        );
        pdf.font_descriptor(refs.descriptor)
            .name(name)
            .flags(FontFlags::FIXED_PITCH | FontFlags::SYMBOLIC)
            .bbox(Rect::new(0.0, descent, advance, ascent))
            .italic_angle(0.0)
            .ascent(ascent)
            .descent(descent)
            .cap_height(ascent)
            .stem_v(80.0)
            .font_file2(refs.program);
        let program = glyphless::font();
        pdf.stream(refs.program, &compress_to_vec_zlib(&program, 6))
            .filter(Filter::FlateDecode)
            .pair(Name(b"Length1"), program.len() as i32);
        // Character id 0 is unused; every other id draws glyph 1.
        let mut map = vec![0u8, 0];
        for _ in &self.chars {
            map.extend([0, 1]);
        }
        pdf.stream(refs.cid_to_gid, &compress_to_vec_zlib(&map, 6))
            .filter(Filter::FlateDecode);
        let mut cmap = UnicodeCmap::<u16>::new(
            Name(b"Pixeld-UCS"),
            SystemInfo {
                registry: Str(b"Adobe"),
                ordering: Str(b"UCS"),
                supplement: 0,
            },
        );
        for (i, &c) in self.chars.iter().enumerate() {
            cmap.pair(i as u16 + 1, c);
        }
        pdf.cmap(refs.to_unicode, &compress_to_vec_zlib(&cmap.finish(), 6))
            .filter(Filter::FlateDecode);
    }
}

/// The resource dictionaries svg2pdf 0.13 writes list their entries in `HashMap` order, which
/// changes from one conversion to the next. pdf-writer puts each entry on a line of its own,
/// so sorting those lines makes the bytes reproducible without moving anything: the lines of
/// a dictionary are only permuted, every object keeps its offset and the cross-reference
/// table stays right. Stream data is skipped by its `/Length`.
fn sort_resource_entries(pdf: &mut [u8]) {
    const KEYS: [&[u8]; 6] = [
        b"/XObject <<",
        b"/ExtGState <<",
        b"/Pattern <<",
        b"/Shading <<",
        b"/ColorSpace <<",
        b"/Font <<",
    ];
    let line_end = |pdf: &[u8], from: usize| {
        pdf[from..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(pdf.len(), |i| from + i)
    };
    let mut at = 0;
    let mut length: Option<usize> = None;
    while at < pdf.len() {
        let end = line_end(pdf, at);
        let line = pdf[at..end].trim_ascii();
        if line == b"stream" {
            // pdf-writer writes `stream\n`, the data, then `\nendstream`.
            at = match length.take() {
                Some(n) => end + 1 + n,
                None => memchr_endstream(pdf, end).unwrap_or(pdf.len()),
            };
            continue;
        }
        if let Some(n) = line.strip_prefix(b"/Length ") {
            length = std::str::from_utf8(n).ok().and_then(|n| n.parse().ok());
        }
        if KEYS.contains(&line) {
            let first = end + 1;
            let mut entries = Vec::new();
            let mut cursor = first;
            let mut simple = true;
            loop {
                if cursor >= pdf.len() {
                    simple = false;
                    break;
                }
                let e = line_end(pdf, cursor);
                let l = pdf[cursor..e].trim_ascii();
                if l == b">>" {
                    break;
                }
                simple &= l.starts_with(b"/") && !l.ends_with(b"<<");
                entries.push(pdf[cursor..e].to_vec());
                cursor = e + 1;
            }
            if simple && entries.len() > 1 {
                entries.sort();
                let mut w = first;
                for e in entries {
                    pdf[w..w + e.len()].copy_from_slice(&e);
                    pdf[w + e.len()] = b'\n';
                    w += e.len() + 1;
                }
            }
            at = cursor;
            continue;
        }
        at = end + 1;
    }
}

fn memchr_endstream(pdf: &[u8], from: usize) -> Option<usize> {
    pdf[from..]
        .windows(10)
        .position(|w| w == b"\nendstream")
        .map(|i| from + i)
}
