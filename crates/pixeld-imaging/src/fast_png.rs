//! Lossless PNG for pixels served while someone waits (rendered cards): one filter for the
//! whole image, chosen from a sample of rows, and one deflate pass.
//!
//! Unfiltered rows that are mostly matches (rendered cards, UI: the sample costs at most half
//! a bit per byte) go through [`crate::zlib`], a deflate parser that looks for matches where
//! pictures repeat (the pixel to the left, the row above, the row above shifted by a pixel)
//! before it hashes: on the bench card it takes about half of libdeflate level 5's time for
//! 5.6 % more bytes. Everything else (photographs and smooth wallpapers, which want a
//! prediction filter; noise) goes through libdeflate level 5, whose hash chains find the short
//! matches those have, where ours was both slower and larger.
//!
//! oxipng's fastest preset deflates the whole image once per filter strategy it tries, and
//! its `MinSum` trial alone costs several times what the render does. A residual-sum heuristic
//! (libpng's) is cheap but wrong on rendered gradients: in a 135° gradient each row is the row
//! above shifted by one pixel, which LZ77 matches whole when the rows are left unfiltered. So
//! the filters are ranked by compressing the sample with libdeflate.

use libdeflater::{CompressionLvl, Compressor};

use crate::error::{Error, Result};
use crate::raw::Rgba;
use crate::zlib;

/// libdeflate's level for the filter trials and the rows [`crate::zlib`] does not take: on the
/// bench card (unfiltered) level 4 was 1.8 % larger for ~0.3 ms less, level 6 1 % smaller for
/// ~0.8 ms more.
const LEVEL: i32 = 5;

/// Sampled bands of rows spread evenly over the image, each with the row above it as context
/// (24 of the bench card's 630 rows per trial, and the 8 context rows again alone; the four
/// trials cost ~1.5 ms there, a third of the encoder). On 46 rendered cards and photos
/// (takumi's test fixtures, the bench card and variants of it, a 1280×720 photo) the choice,
/// measured with libdeflate for every filter, came out 1.1 % above the smallest of the four
/// (geometric mean) and at most 13 % above it; 4 bands of 4 rows cost as much for +2.4 % and
/// at most +31 %, 8 bands of 4 rows 0.5 ms more for +0.9 %.
const BANDS: usize = 8;
const BAND_ROWS: usize = 2;

/// The PNG row filters tried. Avg is left out: one more trial, and rarely the smallest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Filter {
    None = 0,
    Sub = 1,
    Up = 2,
    Paeth = 4,
}

/// In order of preference on a tie: cheapest to apply first.
const CANDIDATES: [Filter; 4] = [Filter::None, Filter::Up, Filter::Sub, Filter::Paeth];

/// Encodes straight-alpha RGBA pixels as a lossless 8-bit PNG, fast: RGB when every pixel is
/// opaque, one filter chosen from a row sample, one deflate pass (pixeld's own, `src/zlib.rs`,
/// for unfiltered rows that are mostly matches, libdeflate's for the rest), no metadata, no
/// palette. For renders; uploaded images go through [`crate::process`], where oxipng's effort
/// is an option.
pub fn encode_png_fast(pixels: Rgba) -> Result<Vec<u8>> {
    encode(pixels, None)
}

fn encode(pixels: Rgba, force: Option<Filter>) -> Result<Vec<u8>> {
    let Rgba {
        width,
        height,
        data,
    } = pixels;
    let (w, h) = (width as usize, height as usize);
    if w == 0 || h == 0 || w.checked_mul(h).and_then(|n| n.checked_mul(4)) != Some(data.len()) {
        return Err(Error::Encode(
            "pixel buffer does not match its dimensions".to_owned(),
        ));
    }
    let opaque = is_opaque(&data);
    let bpp = if opaque { 3 } else { 4 };
    let rows = Rows::new(data, w, bpp);

    let mut z = Compressor::new(CompressionLvl::new(LEVEL).expect("libdeflate level 1-12"));
    let (filter, ours) = match force {
        Some(f) => (f, f == Filter::None),
        None => choose(&rows, &mut z),
    };
    let idat = if ours {
        // The rows already carry a zero ("None") filter byte each: the stream as it is.
        zlib::compress(&rows.data, rows.pitch, bpp)
    } else if filter == Filter::None {
        deflate(&mut z, &rows.data)?
    } else {
        let mut filtered = Vec::with_capacity(rows.data.len());
        for y in 0..h {
            rows.filter(filter, y, &mut filtered);
        }
        deflate(&mut z, &filtered)?
    };
    drop(rows);
    write_png(width, height, opaque, &idat)
}

/// The PNG file around compressed image data: signature, IHDR, IDAT chunks, IEND.
fn write_png(width: u32, height: u32, opaque: bool, idat: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(idat.len() + 64);
    let mut enc = png::Encoder::new(&mut out, width, height);
    enc.set_color(if opaque {
        png::ColorType::Rgb
    } else {
        png::ColorType::Rgba
    });
    enc.set_depth(png::BitDepth::Eight);
    let png_err = |e: png::EncodingError| Error::Encode(e.to_string());
    let mut writer = enc.write_header().map_err(png_err)?;
    // A chunk holds at most 2^31 - 1 bytes.
    for part in idat.chunks(1 << 30) {
        writer
            .write_chunk(png::chunk::IDAT, part)
            .map_err(png_err)?;
    }
    writer.finish().map_err(png_err)?;
    Ok(out)
}

/// Rows per span of a [`PngBase`], at least: 16 rows of a 1200 px card (57 KiB) are about a
/// tenth of its picture, and a span's closing stored block costs at most 5 bytes.
const SPAN_ROWS: usize = 16;

/// Rows per span for rows of `pitch` bytes: [`SPAN_ROWS`], or more for narrow pictures, so
/// that a span is at least the 32 KiB that compressing it first indexes.
fn span_rows(pitch: usize) -> usize {
    SPAN_ROWS.max((32 * 1024usize).div_ceil(pitch.max(1)))
}

/// An opaque picture that later ones mostly repeat, such as a template's static layers under
/// changing text, kept with its PNG image data compressed in spans of 16 rows (more when rows
/// are short).
/// [`PngBase::encode`] compresses only the spans of a new picture whose rows, or the rows
/// within deflate's 32 KiB reach before them, differ from the base, and copies the others.
///
/// Only for pictures [`encode_png_fast`] would leave unfiltered and give to pixeld's own
/// deflate (rendered cards, UI): [`PngBase::new`] returns `None` for the others.
#[derive(Debug, Clone)]
pub struct PngBase {
    width: u32,
    height: u32,
    /// The unfiltered RGB rows, each after its zero filter byte.
    rows: Vec<u8>,
    spans: Vec<Vec<u8>>,
}

impl PngBase {
    /// The base for `pixels`, or `None` when they have translucent pixels or are better
    /// filtered (photographs, noise): then there is nothing to gain over [`encode_png_fast`].
    pub fn new(pixels: &Rgba) -> Option<PngBase> {
        let (w, h) = (pixels.width as usize, pixels.height as usize);
        if w == 0
            || h == 0
            || w.checked_mul(h).and_then(|n| n.checked_mul(4)) != Some(pixels.data.len())
            || !is_opaque(&pixels.data)
        {
            return None;
        }
        let rows = Rows::new(pixels.data.clone(), w, 3);
        let mut z = Compressor::new(CompressionLvl::new(LEVEL).expect("libdeflate level 1-12"));
        if choose(&rows, &mut z) != (Filter::None, true) {
            return None;
        }
        let span = span_rows(rows.pitch) * rows.pitch;
        let spans = (0..rows.data.len())
            .step_by(span)
            .map(|s| {
                let e = (s + span).min(rows.data.len());
                zlib::compress_span(&rows.data, s, e, rows.pitch, 3)
            })
            .collect();
        Some(PngBase {
            width: pixels.width,
            height: pixels.height,
            rows: rows.data,
            spans,
        })
    }

    /// Width and height of the base.
    pub fn size(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    /// Bytes held: the rows and their compressed spans.
    pub fn cost(&self) -> usize {
        self.rows.len() + self.spans.iter().map(Vec::len).sum::<usize>()
    }

    /// Encodes `pixels`, copying the base's compressed spans where `pixels` repeat it, and
    /// returns the PNG with the base of `pixels` themselves, for the next picture that
    /// resembles them (`None` when `pixels` went to [`encode_png_fast`]: another size, or
    /// translucent pixels). A span is a function of its rows and the 32 KiB before them, so
    /// the PNG is the same bytes whichever base it was encoded against; it decodes to exactly
    /// `pixels`.
    pub fn encode(&self, pixels: Rgba) -> Result<(Vec<u8>, Option<PngBase>)> {
        if (pixels.width, pixels.height) != (self.width, self.height)
            || pixels.data.len() != self.width as usize * self.height as usize * 4
            || !is_opaque(&pixels.data)
        {
            return Ok((encode_png_fast(pixels)?, None));
        }
        let rows = Rows::new(pixels.data, self.width as usize, 3);
        let pitch = rows.pitch;
        let height = rows.height();
        // changed[y]: how many of rows 0..y differ from the base's.
        let mut changed = Vec::with_capacity(height + 1);
        changed.push(0usize);
        for (new, old) in rows
            .data
            .chunks_exact(pitch)
            .zip(self.rows.chunks_exact(pitch))
        {
            let last = changed.last().copied().unwrap_or(0);
            changed.push(last + usize::from(new != old));
        }
        // A span's copies reach at most 32 KiB back: the rows that covers must match too.
        let reach = (32 * 1024usize).div_ceil(pitch);
        let n = span_rows(pitch);
        let spans: Vec<Vec<u8>> = (0..self.spans.len())
            .map(|k| {
                let (y0, y1) = (k * n, ((k + 1) * n).min(height));
                if changed[y1] == changed[y0.saturating_sub(reach)] {
                    self.spans[k].clone()
                } else {
                    zlib::compress_span(&rows.data, y0 * pitch, y1 * pitch, pitch, 3)
                }
            })
            .collect();
        let idat = zlib::zlib_from_spans(spans.iter().map(Vec::as_slice), &rows.data);
        let png = write_png(self.width, self.height, true, &idat)?;
        let next = PngBase {
            width: self.width,
            height: self.height,
            rows: rows.data,
            spans,
        };
        Ok((png, Some(next)))
    }
}

/// Whether every alpha byte is 255; stops at the first block that has a translucent pixel.
fn is_opaque(rgba: &[u8]) -> bool {
    // Blocks keep the inner loop branch-free (vectorised) and still stop early.
    rgba.chunks(4 * 1024)
        .all(|block| block.chunks_exact(4).fold(u8::MAX, |m, p| m & p[3]) == u8::MAX)
}

fn deflate(z: &mut Compressor, data: &[u8]) -> Result<Vec<u8>> {
    let mut out = vec![0; z.zlib_compress_bound(data.len())];
    let n = z
        .zlib_compress(data, &mut out)
        .map_err(|e| Error::Encode(format!("libdeflate: {e:?}")))?;
    out.truncate(n);
    Ok(out)
}

/// The candidate whose filtered sample rows compress smallest with libdeflate. (Trying
/// unfiltered rows with [`crate::zlib`] instead, as the final pass would, passed over None on
/// screenshots whose whole image it compresses smaller than libdeflate's Up: the sample's two
/// rows per band leave it too little to match.) Each band is measured as what it adds to the
/// row above it (compressed size with that row minus the size of the row alone), so that no
/// filter is charged for a band's first row having nothing to match: unfiltered rows depend on
/// that context most, and were wrongly passed over without it. The flag says whether the
/// unfiltered choice is mostly matches, for [`crate::zlib`].
fn choose(rows: &Rows, z: &mut Compressor) -> (Filter, bool) {
    let height = rows.height();
    let starts: Vec<usize> = if height <= BANDS * BAND_ROWS {
        vec![0]
    } else {
        (0..BANDS)
            .map(|b| (height - BAND_ROWS) * (2 * b + 1) / (2 * BANDS))
            .collect()
    };
    let mut sample = Vec::with_capacity(rows.pitch * starts.len() * (BAND_ROWS + 1));
    let mut context = Vec::with_capacity(rows.pitch * starts.len());
    let mut out = vec![0; z.zlib_compress_bound(sample.capacity())];
    let mut best = (usize::MAX, Filter::None);
    for filter in CANDIDATES {
        sample.clear();
        context.clear();
        for &y0 in &starts {
            if y0 > 0 {
                rows.filter(filter, y0 - 1, &mut sample);
                rows.filter(filter, y0 - 1, &mut context);
            }
            for y in y0..(y0 + BAND_ROWS).min(height) {
                rows.filter(filter, y, &mut sample);
            }
        }
        // Both buffers are within libdeflate's bound; a failure would only mean "not better".
        let mut size = |buf: &[u8]| z.zlib_compress(buf, &mut out).unwrap_or(usize::MAX / 2);
        let mut cost = size(&sample);
        if !context.is_empty() {
            cost = cost.saturating_sub(size(&context));
        }
        if cost < best.0 {
            best = (cost, filter);
        }
    }
    // Unfiltered rows that the sample shows to be mostly matches (at most half a bit per
    // byte) go to our deflate; others (noisy wallpapers) to libdeflate, where ours was slower
    // and larger.
    let counted = (sample.len() - context.len()).max(1);
    (best.1, best.1 == Filter::None && best.0 * 16 <= counted)
}

/// 8-bit rows of 3 (RGB) or 4 (RGBA) bytes per pixel, each after a zero byte: the PNG
/// stream with every row unfiltered, which is what the encoder compresses when it keeps
/// "None", without another copy.
struct Rows {
    data: Vec<u8>,
    /// Bytes from one row to the next: the filter byte and `width * bpp` bytes of pixels.
    pitch: usize,
    bpp: usize,
}

impl Rows {
    /// Packs RGBA rows, dropping alpha when `bpp` is 3, in the caller's buffer: a fresh one
    /// the size of the image costs its page faults on every render (~0.5 ms on the bench card).
    fn new(mut data: Vec<u8>, width: usize, bpp: usize) -> Rows {
        let height = data.len() / (width * 4);
        let pitch = width * bpp + 1;
        if bpp == 4 {
            // One byte more per row: move the rows down from the last one.
            data.resize(pitch * height, 0);
            for y in (0..height).rev() {
                data.copy_within(y * width * 4..(y + 1) * width * 4, y * pitch + 1);
                data[y * pitch] = 0;
            }
        } else {
            // One byte less per pixel, one more per row: row y moves towards the front (it
            // starts at y * pitch <= y * 4 * width), through a row-sized buffer so that it is
            // read whole before any of it is written over.
            let mut rgb = vec![0; pitch];
            for y in 0..height {
                let src = &data[y * width * 4..(y + 1) * width * 4];
                for (d, s) in rgb[1..].chunks_exact_mut(3).zip(src.chunks_exact(4)) {
                    d.copy_from_slice(&s[..3]);
                }
                data[y * pitch..(y + 1) * pitch].copy_from_slice(&rgb);
            }
            data.truncate(pitch * height);
        }
        Rows { data, pitch, bpp }
    }

    fn height(&self) -> usize {
        self.data.len() / self.pitch
    }

    fn row(&self, y: usize) -> &[u8] {
        &self.data[y * self.pitch + 1..(y + 1) * self.pitch]
    }

    /// Appends row `y` with its filter-type byte, filtered as the PNG specification defines.
    fn filter(&self, filter: Filter, y: usize, out: &mut Vec<u8>) {
        let bpp = self.bpp;
        let row = self.row(y);
        let up = (y > 0).then(|| self.row(y - 1));
        out.push(filter as u8);
        match (filter, up) {
            (Filter::None, _) | (Filter::Up, None) => out.extend_from_slice(row),
            (Filter::Up, Some(up)) => {
                out.extend(row.iter().zip(up).map(|(x, b)| x.wrapping_sub(*b)));
            }
            // Without a row above, Paeth predicts from the left, as Sub does.
            (Filter::Sub, _) | (Filter::Paeth, None) => {
                out.extend_from_slice(&row[..bpp]);
                out.extend(row[bpp..].iter().zip(row).map(|(x, a)| x.wrapping_sub(*a)));
            }
            (Filter::Paeth, Some(up)) => {
                out.extend(row[..bpp].iter().zip(up).map(|(x, b)| x.wrapping_sub(*b)));
                out.extend(
                    row[bpp..]
                        .iter()
                        .zip(&up[bpp..])
                        .zip(row.iter().zip(up))
                        .map(|((x, b), (a, c))| x.wrapping_sub(paeth(*a, *b, *c))),
                );
            }
        }
    }
}

/// The Paeth predictor: whichever of left, above and upper-left is closest to left + above -
/// upper-left (ties in that order).
fn paeth(a: u8, b: u8, c: u8) -> u8 {
    let (a16, b16, c16) = (i16::from(a), i16::from(b), i16::from(c));
    let pa = (b16 - c16).abs();
    let pb = (a16 - c16).abs();
    let pc = (a16 + b16 - 2 * c16).abs();
    if pa <= pb && pa <= pc {
        a
    } else if pb <= pc {
        b
    } else {
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(png_bytes: &[u8]) -> (png::ColorType, Vec<u8>) {
        let mut r = png::Decoder::new(std::io::Cursor::new(png_bytes))
            .read_info()
            .expect("a PNG");
        let mut buf = vec![0; r.output_buffer_size().expect("fits")];
        let info = r.next_frame(&mut buf).expect("decodes");
        buf.truncate(info.buffer_size());
        (info.color_type, buf)
    }

    fn rgba(width: u32, height: u32, px: impl Fn(u32, u32) -> [u8; 4]) -> Rgba {
        let data = (0..height)
            .flat_map(|y| (0..width).map(move |x| (x, y)))
            .flat_map(|(x, y)| px(x, y))
            .collect();
        Rgba {
            width,
            height,
            data,
        }
    }

    /// A 135° three-channel gradient, what takumi paints for the bench card's background:
    /// colour depends on x + y only, so each row is the row above shifted by one pixel.
    fn diagonal(x: u32, y: u32) -> [u8; 4] {
        let v = ((x + y) * 255 / 914) as u8;
        [v, v / 2 + 20, 255 - v, 255]
    }

    /// A smooth two-axis gradient.
    fn smooth(x: u32, y: u32) -> [u8; 4] {
        [
            (x * 255 / 511) as u8,
            (y * 255 / 299) as u8,
            ((x + y) * 255 / 810) as u8,
            255,
        ]
    }

    /// The smooth gradient with per-pixel grain, as a photograph has.
    fn grainy(x: u32, y: u32) -> [u8; 4] {
        let n = ((x * 7919 + y * 104_729).wrapping_mul(2_654_435_761) >> 29) as u8;
        let [r, g, b, a] = smooth(x, y);
        [r.wrapping_add(n), g.wrapping_add(n), b.wrapping_add(n), a]
    }

    fn size(pixels: &Rgba, filter: Option<Filter>) -> usize {
        encode(pixels.clone(), filter).unwrap().len()
    }

    #[test]
    fn each_filter_decodes_to_the_exact_pixels_with_alpha_and_without() {
        let translucent = rgba(67, 41, |x, y| {
            let [r, g, b, _] = grainy(x, y);
            [r, g, b, (x * 7 + y * 3) as u8]
        });
        let opaque = rgba(67, 41, |x, y| {
            let [r, g, b, _] = grainy(x, y);
            [r, g, b, 255]
        });
        for filter in [None].into_iter().chain(CANDIDATES.map(Some)) {
            let (color, pixels) = decode(&encode(translucent.clone(), filter).unwrap());
            assert_eq!(color, png::ColorType::Rgba);
            assert_eq!(pixels, translucent.data, "{filter:?}");

            let (color, pixels) = decode(&encode(opaque.clone(), filter).unwrap());
            assert_eq!(
                color,
                png::ColorType::Rgb,
                "opaque pixels drop the alpha channel"
            );
            let rgb: Vec<u8> = opaque
                .data
                .chunks_exact(4)
                .flat_map(|p| [p[0], p[1], p[2]])
                .collect();
            assert_eq!(pixels, rgb, "{filter:?}");
        }
    }

    #[test]
    fn smooth_and_grainy_gradients_are_filtered_and_come_out_smaller_than_unfiltered() {
        for (name, px) in [
            ("smooth", smooth as fn(u32, u32) -> [u8; 4]),
            ("grainy", grainy),
        ] {
            let img = rgba(512, 300, px);
            let chosen = size(&img, None);
            let unfiltered = size(&img, Some(Filter::None));
            // Measured: about 1/20 and 1/8 of the unfiltered size.
            assert!(chosen * 4 < unfiltered, "{name}: {chosen} vs {unfiltered}");
        }
    }

    #[test]
    fn a_diagonal_gradient_like_the_bench_card_stays_unfiltered() {
        // Every prediction filter costs about twice the bytes here (the residual-sum heuristic
        // picked one), and a sample that ignored the rows above each band passed it over.
        let img = rgba(600, 315, diagonal);
        let chosen = size(&img, None);
        assert_eq!(chosen, size(&img, Some(Filter::None)));
        for f in [Filter::Sub, Filter::Up, Filter::Paeth] {
            let filtered = size(&img, Some(f));
            assert!(chosen * 3 < filtered * 2, "{f:?}: {chosen} vs {filtered}");
        }
    }

    #[test]
    fn noise_left_unfiltered_goes_through_libdeflate_and_still_decodes_exactly() {
        // Noise: no filter helps, so None is chosen, but the sample is far over half a bit
        // per byte, so the rows go to libdeflate rather than to the picture-distance parser.
        let img = rgba(97, 53, |x, y| {
            let mut h = x.wrapping_mul(0x9E37_79B9) ^ y.wrapping_mul(0x85EB_CA6B);
            h ^= h >> 15;
            h = h.wrapping_mul(0x2C1B_3C6D);
            h ^= h >> 12;
            let [r, g, b, _] = h.to_le_bytes();
            [r, g, b, 255]
        });
        let rows = Rows::new(img.data.clone(), 97, 3);
        let mut z = Compressor::new(CompressionLvl::new(LEVEL).unwrap());
        assert_eq!(choose(&rows, &mut z), (Filter::None, false));
        let (_, pixels) = decode(&encode_png_fast(img.clone()).unwrap());
        let rgb: Vec<u8> = img
            .data
            .chunks_exact(4)
            .flat_map(|p| [p[0], p[1], p[2]])
            .collect();
        assert_eq!(pixels, rgb);
    }

    #[test]
    fn a_rendered_gradient_goes_through_our_deflate() {
        let img = rgba(600, 315, diagonal);
        let rows = Rows::new(img.data.clone(), 600, 3);
        let mut z = Compressor::new(CompressionLvl::new(LEVEL).unwrap());
        assert_eq!(choose(&rows, &mut z), (Filter::None, true));
        let png = encode_png_fast(img.clone()).unwrap();
        let (_, pixels) = decode(&png);
        assert_eq!(pixels.len(), 600 * 315 * 3);
        assert!(
            pixels
                .chunks_exact(3)
                .eq(img.data.chunks_exact(4).map(|p| &p[..3]))
        );
    }

    /// The diagonal gradient with a block of "text" (pixels of another colour pattern) over
    /// rows `top..bottom`.
    fn card_with_text(top: u32, bottom: u32, seed: u32) -> Rgba {
        rgba(600, 315, move |x, y| {
            if (top..bottom).contains(&y) && (40..560).contains(&x) && (x * 3 + y + seed) % 7 < 3 {
                [255, 255, 255, 255]
            } else {
                diagonal(x, y)
            }
        })
    }

    fn rgb_of(img: &Rgba) -> Vec<u8> {
        img.data
            .chunks_exact(4)
            .flat_map(|p| [p[0], p[1], p[2]])
            .collect()
    }

    #[test]
    fn a_base_reencodes_only_what_changed_and_decodes_to_the_exact_new_pixels() {
        let base = PngBase::new(&card_with_text(0, 0, 0)).expect("a rendered gradient");
        assert_eq!(base.size(), (600, 315));
        for (top, bottom, seed) in [
            (120, 150, 1),
            (0, 3, 2),
            (300, 315, 3),
            (0, 315, 4),
            (0, 0, 0),
        ] {
            let img = card_with_text(top, bottom, seed);
            let (png, next) = base.encode(img.clone()).unwrap();
            assert!(next.is_some());
            let (color, pixels) = decode(&png);
            assert_eq!(color, png::ColorType::Rgb);
            assert_eq!(pixels, rgb_of(&img), "text over rows {top}..{bottom}");
            // A second, independent inflater agrees, Adler-32 included.
            let idat = png_idat(&png);
            let mut out = Vec::new();
            std::io::Read::read_to_end(&mut flate2::read::ZlibDecoder::new(&idat[..]), &mut out)
                .expect("a valid zlib stream");
            assert_eq!(out.len(), 315 * (600 * 3 + 1));
            // Within 15 % (or 600 bytes) of encoding the whole picture in one pass: each span
            // closes its last block.
            let whole = encode_png_fast(img).unwrap().len();
            assert!(
                png.len() <= whole * 115 / 100 + 600,
                "{} vs {whole}",
                png.len()
            );
        }
        // Rows far from the change are copied from the base: its first span is in the new
        // stream as it is.
        let (png, _) = base.encode(card_with_text(200, 220, 5)).unwrap();
        let first = &base.spans[0];
        assert!(png.windows(first.len()).any(|w| w == first.as_slice()));
        // A change in the first rows leaves no span of the base before it to copy, and the
        // later ones that are far enough still come from the base.
        let (png, _) = base.encode(card_with_text(0, 5, 6)).unwrap();
        assert!(!png.windows(first.len()).any(|w| w == first.as_slice()));
        let last = base.spans.last().unwrap();
        assert!(png.windows(last.len()).any(|w| w == last.as_slice()));
    }

    #[test]
    fn a_picture_encodes_to_the_same_bytes_against_any_base() {
        let plain = PngBase::new(&card_with_text(0, 0, 0)).unwrap();
        let (first, next) = plain.encode(card_with_text(40, 90, 1)).unwrap();
        let next = next.unwrap();
        for img in [
            card_with_text(40, 90, 1),
            card_with_text(60, 120, 2),
            card_with_text(0, 315, 3),
        ] {
            let (a, _) = plain.encode(img.clone()).unwrap();
            let (b, _) = next.encode(img.clone()).unwrap();
            let (c, _) = PngBase::new(&img).unwrap().encode(img.clone()).unwrap();
            assert_eq!(a, b);
            assert_eq!(a, c);
        }
        // And the base a picture leaves is the picture: encoding it again copies every span.
        let (again, _) = next.encode(card_with_text(40, 90, 1)).unwrap();
        assert_eq!(again, first);
    }

    #[test]
    fn narrow_pictures_get_spans_of_at_least_32_kib() {
        assert_eq!(span_rows(1200 * 3 + 1), SPAN_ROWS);
        assert_eq!(span_rows(40 * 3 + 1), 271);
        // A tall narrow strip: spans of 271 rows, a change in the middle, exact either way.
        let strip = |mark: u32| {
            rgba(40, 2000, move |x, y| {
                if y == mark {
                    [255, 0, 0, 255]
                } else {
                    diagonal(x, y)
                }
            })
        };
        let base = PngBase::new(&strip(5000)).expect("a rendered gradient");
        assert_eq!(base.spans.len(), 8);
        let img = strip(1000);
        let (png, _) = base.encode(img.clone()).unwrap();
        assert_eq!(decode(&png).1, rgb_of(&img));
        assert_eq!(png, PngBase::new(&img).unwrap().encode(img).unwrap().0);
    }

    /// The concatenated IDAT data of a PNG.
    fn png_idat(png: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut i = 8;
        while i + 8 <= png.len() {
            let len = u32::from_be_bytes(png[i..i + 4].try_into().unwrap()) as usize;
            if &png[i + 4..i + 8] == b"IDAT" {
                out.extend_from_slice(&png[i + 8..i + 8 + len]);
            }
            i += 12 + len;
        }
        out
    }

    #[test]
    fn a_base_hands_translucent_or_resized_pictures_and_photographs_to_the_plain_encoder() {
        let base = PngBase::new(&card_with_text(0, 0, 0)).unwrap();
        let translucent = rgba(600, 315, |x, y| {
            let [r, g, b, _] = diagonal(x, y);
            [r, g, b, if y == 100 { 128 } else { 255 }]
        });
        let (png, next) = base.encode(translucent.clone()).unwrap();
        assert!(next.is_none());
        let (color, pixels) = decode(&png);
        assert_eq!(color, png::ColorType::Rgba);
        assert_eq!(pixels, translucent.data);
        let smaller = rgba(300, 315, diagonal);
        let (_, pixels) = decode(&base.encode(smaller.clone()).unwrap().0);
        assert_eq!(pixels, rgb_of(&smaller));
        // Photographs are filtered, and a translucent picture is not a base.
        assert!(PngBase::new(&rgba(600, 315, grainy)).is_none());
        assert!(PngBase::new(&translucent).is_none());
    }

    #[test]
    fn a_buffer_of_the_wrong_length_is_refused() {
        let bad = Rgba {
            width: 3,
            height: 3,
            data: vec![0; 35],
        };
        assert!(matches!(encode_png_fast(bad), Err(Error::Encode(_))));
    }
}
