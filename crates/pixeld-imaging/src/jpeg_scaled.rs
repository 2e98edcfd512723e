//! Our own decoder for shrink-on-decode of sequential Huffman JPEGs at 1/8, 1/4 and 3/8 scale.
//!
//! At these scales a block contributes only its lowest 1×1, 2×2 or 3×3 frequencies to the
//! output, yet libjpeg-turbo still decodes every coefficient into a full 8×8 block before its
//! reduced IDCT, and its Huffman decoder is two thirds of a 12 MP photograph's decode. This
//! decoder does less work for the same picture (measured in `bench/imaging`: a 12 MP → 800 px
//! job with `fast_shrink` went from 35.4 to 27.6 ms):
//!
//! - **Coefficients past the kept corner are skipped, not decoded.** A lookup table gives,
//!   for the next [`LOOKUP_BITS`] bits, every whole symbol they hold (code plus magnitude
//!   bits): how many bits, how far through the block, and whether the block ends. A skipped
//!   coefficient costs no sign extension, dequantisation or store, and often no lookup of
//!   its own.
//! - **Inside the corner a second table decodes up to two coefficients per lookup**, with
//!   their signed values (stb_image's "fast AC" table, doubled).
//! - **The reduced IDCT is a sum of a few basis patterns.** Each kept coefficient adds its
//!   value times a precomputed n×n pattern (dequantisation folded in). The patterns are the
//!   exact box average of the full 8×8 IDCT over each output pixel's 8/n × 8/n source pixels
//!   (at 3/8 a source pixel on the border between two output pixels counts for each by the
//!   part of it that lies on its side), as libjpeg's reduced IDCTs approximate, truncated to
//!   the kept frequencies.
//! - **The bit reader refills eight bytes at a time** when none of them is 0xFF (then no byte
//!   stuffing or marker can be among them), byte by byte otherwise.
//!
//! Chroma planes are upsampled with libjpeg's "fancy" triangle filter and converted from
//! YCbCr with the JFIF (BT.601 full range) equations, as libjpeg does by default.
//!
//! It covers what cameras and encoders write for photographs: baseline or extended
//! sequential Huffman, 8-bit, one interleaved scan, grayscale or YCbCr with 4:4:4, 4:2:2,
//! 4:2:0 or 4:4:0 chroma, with or without restart markers. Anything else (progressive,
//! arithmetic coding, CMYK, Adobe RGB-transform files, several scans) and any stream it
//! finds broken returns `None`, and the caller decodes the file with libjpeg-turbo as
//! before, so broken files keep libjpeg's behaviour. Everything is safe Rust.

use std::sync::OnceLock;

/// Bits looked up at once in the Huffman tables: codes (plus, for AC coefficients, their
/// magnitude bits) up to this long are decoded by one lookup; longer ones by the canonical
/// code search.
const LOOKUP_BITS: u32 = 11;

/// The natural (row-major) position of each coefficient in zigzag order (ITU T.81 Figure 5).
const ZIGZAG: [u8; 64] = [
    0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20,
    13, 6, 7, 14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59,
    52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
];

/// Decoded pixels: 8-bit RGB, `width × height × 3` bytes.
pub(crate) struct Decoded {
    pub width: u32,
    pub height: u32,
    pub rgb: Vec<u8>,
}

/// The largest reduced IDCT this decoder does: `eighths` up to this (the output is
/// `eighths`/8 of the source); larger scales are libjpeg-turbo's.
pub(crate) const MAX_EIGHTHS: u32 = 3;

/// The size of a `size`-pixel side at `eighths`/8 scale, rounded up, as libjpeg does.
pub(crate) fn scaled(size: usize, eighths: u32) -> usize {
    (size * eighths as usize).div_ceil(8)
}

/// Decodes `bytes` at `eighths`/8 scale (1, 2 or 3; see [`scaled`] for the size), or
/// returns `None` when the file is outside what this decoder covers or broken.
///
/// At 1/2 the kept corner holds most of a photograph's coefficients, so there is little to
/// skip: measured in the 12 MP → 800 px job, this decoder was no faster than libjpeg-turbo
/// there (whose chroma, decoded at full size, is also the better), and 1/2 stays with it.
pub(crate) fn decode(bytes: &[u8], eighths: u32) -> Option<Decoded> {
    let parsed = parse(bytes)?;
    let planes = decode_planes(bytes, &parsed, eighths, eighths)?;
    Some(to_rgb(&parsed.frame, &planes, eighths))
}

/// The scan decoded into reduced planes, luma at `luma`/8 and chroma at `chroma`/8; `None`
/// for other scales.
fn decode_planes(bytes: &[u8], parsed: &Parsed, luma: u32, chroma: u32) -> Option<Planes> {
    match (luma, chroma) {
        (1, 1) => decode_scan::<1, 1>(bytes, parsed),
        (2, 2) => decode_scan::<2, 2>(bytes, parsed),
        (3, 3) => decode_scan::<3, 3>(bytes, parsed),
        (3, 2) => decode_scan::<3, 2>(bytes, parsed),
        _ => None,
    }
}

/// A YCbCr JPEG's own planes (JFIF: BT.601, full range), each tightly packed: luma
/// `width × height`, both chroma planes `chroma.0 × chroma.1`, one chroma sample per
/// `subsampling.0 × subsampling.1` luma samples (the last ones reaching past the edge when
/// the size is not a multiple): the file's own subsampling, times the ratio of the two
/// scales when chroma was decoded smaller.
pub(crate) struct Ycc {
    pub width: usize,
    pub height: usize,
    pub y: Vec<u8>,
    pub cb: Vec<u8>,
    pub cr: Vec<u8>,
    pub chroma: (usize, usize),
    pub subsampling: (f64, f64),
}

/// Like [`decode`], but stops before colour conversion and returns the YCbCr planes, for an
/// encoder that codes YCbCr itself: luma at `eighths`/8, chroma at `chroma_eighths`/8 (the
/// same, or 2 with luma at 3). `None` also for grayscale files.
pub(crate) fn decode_ycc(bytes: &[u8], eighths: u32, chroma_eighths: u32) -> Option<Ycc> {
    let parsed = parse(bytes)?;
    let f = &parsed.frame;
    if f.components.len() != 3 {
        return None;
    }
    let planes = decode_planes(bytes, &parsed, eighths, chroma_eighths)?;
    let (width, height) = (scaled(f.width, eighths), scaled(f.height, eighths));
    let chroma = chroma_size(f, chroma_eighths);
    let ratio = f64::from(eighths) / f64::from(chroma_eighths);
    let pack = |i: usize, (w, h): (usize, usize)| -> Vec<u8> {
        let stride = planes.strides[i];
        let mut out = Vec::with_capacity(w * h);
        for row in planes.planes[i].chunks_exact(stride).take(h) {
            out.extend_from_slice(&row[..w]);
        }
        out
    };
    Some(Ycc {
        width,
        height,
        y: pack(0, (width, height)),
        cb: pack(1, chroma),
        cr: pack(2, chroma),
        chroma,
        subsampling: (f.hmax as f64 * ratio, f.vmax as f64 * ratio),
    })
}

/// The real (not MCU-padded) size of the chroma planes at `eighths`/8 scale.
fn chroma_size(f: &Frame, eighths: u32) -> (usize, usize) {
    let (sx, sy) = (f.hmax, f.vmax); // chroma is 1×1, luma hmax×vmax
    (
        scaled(f.width.div_ceil(sx), eighths).max(1),
        scaled(f.height.div_ceil(sy), eighths).max(1),
    )
}

// ---------------------------------------------------------------------------------------
// Markers

#[derive(Clone, Copy)]
struct Component {
    id: u8,
    h: usize,
    v: usize,
    tq: usize,
    td: usize,
    ta: usize,
}

struct Frame {
    width: usize,
    height: usize,
    components: Vec<Component>,
    hmax: usize,
    vmax: usize,
}

struct Parsed {
    frame: Frame,
    quant: [[u16; 64]; 4],
    dc: [Option<Huffman>; 4],
    ac: [Option<Huffman>; 4],
    restart_interval: usize,
    /// Offset of the first entropy-coded byte of the (only) scan.
    scan_start: usize,
}

fn be16(b: &[u8], at: usize) -> Option<usize> {
    Some(usize::from(*b.get(at)?) << 8 | usize::from(*b.get(at + 1)?))
}

/// Reads every marker segment up to the first scan. `None` for anything this decoder does
/// not cover.
fn parse(b: &[u8]) -> Option<Parsed> {
    if b.get(..2)? != [0xFF, 0xD8] {
        return None;
    }
    let mut pos = 2;
    let mut frame: Option<Frame> = None;
    let mut quant = [[0u16; 64]; 4];
    let mut have_quant = [false; 4];
    let mut dc: [Option<Huffman>; 4] = Default::default();
    let mut ac: [Option<Huffman>; 4] = Default::default();
    let mut restart_interval = 0;
    let mut jfif = false;
    loop {
        // Markers may be preceded by any number of fill bytes 0xFF.
        if *b.get(pos)? != 0xFF {
            return None;
        }
        while *b.get(pos)? == 0xFF {
            pos += 1;
        }
        let marker = *b.get(pos)?;
        pos += 1;
        if (0xD0..=0xD7).contains(&marker) || marker == 0x01 {
            continue; // stand-alone markers
        }
        let len = be16(b, pos)?;
        if len < 2 {
            return None;
        }
        let seg = b.get(pos + 2..pos + len)?;
        pos += len;
        match marker {
            // Baseline and extended sequential, Huffman coded.
            0xC0 | 0xC1 => {
                if frame.is_some() {
                    return None;
                }
                frame = Some(parse_frame(seg)?);
            }
            // Progressive, lossless, arithmetic, hierarchical: libjpeg's.
            0xC2 | 0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF => return None,
            0xC4 => parse_huffman(seg, &mut dc, &mut ac)?,
            0xDB => parse_quant(seg, &mut quant, &mut have_quant)?,
            0xDD => restart_interval = be16(seg, 0)?,
            0xE0 if seg.starts_with(b"JFIF\0") => jfif = true,
            // Adobe: transform 1 is YCbCr; 0 (RGB or CMYK) and 2 (YCCK) are libjpeg's.
            0xEE if seg.starts_with(b"Adobe") && *seg.get(11)? != 1 => return None,
            0xDA => {
                let frame = frame?;
                let components = parse_scan_header(seg, &frame)?;
                // Every table the scan uses must be there.
                for c in &components {
                    if !have_quant[c.tq] || dc[c.td].is_none() || ac[c.ta].is_none() {
                        return None;
                    }
                }
                // Three components named R, G, B without JFIF are RGB to libjpeg.
                if !jfif && components.iter().map(|c| c.id).eq([b'R', b'G', b'B']) {
                    return None;
                }
                return Some(Parsed {
                    frame: Frame {
                        components,
                        ..frame
                    },
                    quant,
                    dc,
                    ac,
                    restart_interval,
                    scan_start: pos,
                });
            }
            0xD9 => return None,
            _ => {} // APPn, COM, DNL before a frame: nothing we need
        }
    }
}

fn parse_frame(s: &[u8]) -> Option<Frame> {
    let precision = *s.first()?;
    let height = be16(s, 1)?;
    let width = be16(s, 3)?;
    let count = usize::from(*s.get(5)?);
    if precision != 8 || height == 0 || width == 0 || !(count == 1 || count == 3) {
        return None;
    }
    let mut components = Vec::with_capacity(count);
    for i in 0..count {
        let c = s.get(6 + 3 * i..9 + 3 * i)?;
        let (h, v, tq) = (
            usize::from(c[1] >> 4),
            usize::from(c[1] & 15),
            usize::from(c[2]),
        );
        if !(1..=2).contains(&h) || !(1..=2).contains(&v) || tq > 3 {
            return None;
        }
        components.push(Component {
            id: c[0],
            h,
            v,
            tq,
            td: 0,
            ta: 0,
        });
    }
    if count == 1 {
        // One component is coded as non-interleaved 8×8 blocks whatever its factors say.
        components[0].h = 1;
        components[0].v = 1;
    } else if components[1..].iter().any(|c| c.h != 1 || c.v != 1) {
        // Only the first (luma) component may be sampled more densely.
        return None;
    }
    let hmax = components.iter().map(|c| c.h).max()?;
    let vmax = components.iter().map(|c| c.v).max()?;
    Some(Frame {
        width,
        height,
        components,
        hmax,
        vmax,
    })
}

fn parse_scan_header(s: &[u8], frame: &Frame) -> Option<Vec<Component>> {
    let count = usize::from(*s.first()?);
    // One scan holding every component, in frame order.
    if count != frame.components.len() {
        return None;
    }
    let mut out = Vec::with_capacity(count);
    for (i, fc) in frame.components.iter().enumerate() {
        let c = s.get(1 + 2 * i..3 + 2 * i)?;
        let (td, ta) = (usize::from(c[1] >> 4), usize::from(c[1] & 15));
        if c[0] != fc.id || td > 3 || ta > 3 {
            return None;
        }
        out.push(Component { td, ta, ..*fc });
    }
    let tail = s.get(1 + 2 * count..4 + 2 * count)?;
    // Spectral selection 0..63 and no successive approximation: a sequential scan.
    if tail != [0, 63, 0] {
        return None;
    }
    Some(out)
}

fn parse_quant(mut s: &[u8], quant: &mut [[u16; 64]; 4], have: &mut [bool; 4]) -> Option<()> {
    while let Some(&pq_tq) = s.first() {
        let (pq, tq) = (pq_tq >> 4, usize::from(pq_tq & 15));
        if tq > 3 || pq > 1 {
            return None;
        }
        let table = &mut quant[tq];
        if pq == 0 {
            let v = s.get(1..65)?;
            for (t, &q) in table.iter_mut().zip(v) {
                *t = u16::from(q);
            }
            s = &s[65..];
        } else {
            let v = s.get(1..129)?;
            for (i, t) in table.iter_mut().enumerate() {
                *t = u16::from(v[2 * i]) << 8 | u16::from(v[2 * i + 1]);
            }
            s = &s[129..];
        }
        have[tq] = true;
    }
    Some(())
}

fn parse_huffman(
    mut s: &[u8],
    dc: &mut [Option<Huffman>; 4],
    ac: &mut [Option<Huffman>; 4],
) -> Option<()> {
    while let Some(&tc_th) = s.first() {
        let (tc, th) = (tc_th >> 4, usize::from(tc_th & 15));
        if tc > 1 || th > 3 {
            return None;
        }
        let counts: [u8; 16] = s.get(1..17)?.try_into().ok()?;
        let total: usize = counts.iter().map(|&c| usize::from(c)).sum();
        let values = s.get(17..17 + total)?;
        let table = Huffman::new(&counts, values, tc == 1)?;
        if tc == 0 {
            dc[th] = Some(table);
        } else {
            ac[th] = Some(table);
        }
        s = &s[17 + total..];
    }
    Some(())
}

// ---------------------------------------------------------------------------------------
// Huffman tables

/// A lookup table indexed by the next [`LOOKUP_BITS`] bits. A fixed-size array, so that an
/// index of `LOOKUP_BITS` bits needs no bounds check in the decoder's loops.
type Table<T> = Box<[T; 1 << LOOKUP_BITS]>;

/// A table with `entry(window)` for each window (the other kind of table's are all zero and
/// never read: a DC table has no pairs or skips, an AC table no DC values).
fn table<T: Copy + Default>(entry: impl Fn(u32) -> T) -> Table<T> {
    let mut t = Box::new([T::default(); 1 << LOOKUP_BITS]);
    for (w, e) in (0u32..).zip(t.iter_mut()) {
        *e = entry(w);
    }
    t
}

/// One Huffman table, with lookup tables for its short codes.
struct Huffman {
    /// `(length << 8) | symbol` for every code of at most `LOOKUP_BITS` bits, indexed by the
    /// next `LOOKUP_BITS` bits of the stream; 0 where the code is longer.
    lookup: Table<u16>,
    /// DC tables only: `difference << 8 | bits` where the code and its magnitude bits fit in
    /// the next `LOOKUP_BITS` bits; 0 otherwise.
    dc_values: Table<i32>,
    /// AC tables only: up to two coefficients (or one and the end of block) whose codes and
    /// magnitude bits fit in the next `LOOKUP_BITS` bits, decoded at once: see [`Pair`].
    /// 0 where the first symbol does not fit (or is ZRL).
    pairs: Table<u64>,
    /// AC tables only: for the coefficients that are skipped, as many whole symbols as fit
    /// in the next `LOOKUP_BITS` bits: `advance << 8 | eob << 7 | bits`, where `advance`
    /// is how far they move through the block (run + 1 for a coefficient, 16 for ZRL) and
    /// `eob` says the last one ends the block. 0 where the first symbol does not fit.
    skips: Table<u16>,
    /// Canonical decoding of longer codes: the largest code of each length (−1: none).
    maxcode: [i32; 18],
    /// `symbols[code + offset[len]]` for a code of length `len`.
    offset: [i32; 17],
    symbols: Vec<u8>,
}

/// Fields of a [`Huffman::pairs`] entry, laid out so that the decoder does one shift and
/// mask per field: where the two values go relative to the current position, and how far
/// the position moves. Without a second coefficient its value is 0 and its place the next
/// position, which stays 0 until a later coefficient lands there.
struct Pair;

impl Pair {
    /// Bits used (codes and magnitude bits): 6 bits.
    const BITS: u64 = 0x3F;
    /// The entry ends the block.
    const EOB: u64 = 1 << 6;
    /// The first coefficient's offset from the position: its run, 4 bits.
    const AT1: u32 = 8;
    /// The second's offset: run + 1 + its run, 5 bits.
    const AT2: u32 = 16;
    /// How far the position moves: 6 bits.
    const ADVANCE: u32 = 24;
    /// The values, 16-bit two's complement.
    const V1: u32 = 32;
    const V2: u32 = 48;
}

impl Huffman {
    /// Builds the tables of a DHT segment. `None` when the lengths over-fill the code space.
    fn new(counts: &[u8; 16], symbols: &[u8], is_ac: bool) -> Option<Huffman> {
        let mut t = Huffman {
            lookup: table(|_| 0),
            dc_values: table(|_| 0),
            pairs: table(|_| 0),
            skips: table(|_| 0),
            maxcode: [-1; 18],
            offset: [0; 17],
            symbols: symbols.to_vec(),
        };
        let mut code: u32 = 0;
        let mut k = 0usize;
        for len in 1..=16u32 {
            let count = u32::from(counts[len as usize - 1]);
            t.offset[len as usize] = k as i32 - code as i32;
            for _ in 0..count {
                if code >= 1 << len {
                    return None; // over-full: not a prefix code
                }
                if len <= LOOKUP_BITS {
                    let shift = LOOKUP_BITS - len;
                    let first = (code << shift) as usize;
                    t.lookup[first..first + (1 << shift)]
                        .fill((len as u16) << 8 | u16::from(symbols[k]));
                }
                code += 1;
                k += 1;
            }
            if count > 0 {
                t.maxcode[len as usize] = code as i32 - 1;
            }
            code <<= 1;
        }
        t.maxcode[17] = i32::MAX; // sentinel: ends the search
        if is_ac {
            t.pairs = table(|w| t.pair_entry(w));
            t.skips = table(|w| t.skip_entry(w));
        } else {
            t.dc_values = table(|w| t.dc_entry(w));
        }
        Some(t)
    }

    /// The symbol at the start of `window` (its top `avail` bits), with its code length.
    fn symbol_in(&self, window: u32, avail: u32) -> Option<(u32, u8)> {
        let e = self.lookup[(window << (LOOKUP_BITS - avail)) as usize & ((1 << LOOKUP_BITS) - 1)];
        let len = u32::from(e >> 8);
        (e != 0 && len <= avail).then_some((len, e as u8))
    }

    /// A coefficient (or EOB/ZRL) at the start of `window`, with its magnitude bits:
    /// `(bits used, run, size, value)`, if all of it is within `avail` bits.
    fn coefficient_in(&self, window: u32, avail: u32) -> Option<(u32, u32, u32, i32)> {
        let (len, rs) = self.symbol_in(window, avail)?;
        let (run, size) = (u32::from(rs >> 4), u32::from(rs & 15));
        let total = len + size;
        if total > avail {
            return None;
        }
        let bits = (window >> (avail - total)) & ((1 << size) - 1);
        Some((total, run, size, extend(bits, size)))
    }

    fn dc_entry(&self, window: u32) -> i32 {
        let Some((len, size)) = self.symbol_in(window, LOOKUP_BITS) else {
            return 0;
        };
        let size = u32::from(size);
        if size > 11 || len + size > LOOKUP_BITS {
            return 0;
        }
        let bits = (window >> (LOOKUP_BITS - len - size)) & ((1 << size) - 1);
        extend(bits, size) << 8 | (len + size) as i32
    }

    fn pair_entry(&self, window: u32) -> u64 {
        let avail = LOOKUP_BITS;
        let Some((t1, run1, size1, v1)) = self.coefficient_in(window, avail) else {
            return 0;
        };
        if size1 == 0 {
            // EOB ends the block here; ZRL is left to the general path.
            return if run1 == 15 {
                0
            } else {
                u64::from(t1) | Pair::EOB
            };
        }
        let mut e = u64::from(t1)
            | u64::from(run1) << Pair::AT1
            | u64::from(run1 + 1) << Pair::AT2
            | u64::from(run1 + 1) << Pair::ADVANCE
            | u64::from(v1 as u16) << Pair::V1;
        let rest = avail - t1;
        if rest == 0 {
            return e;
        }
        let window2 = window & ((1 << rest) - 1);
        if let Some((t2, run2, size2, v2)) = self.coefficient_in(window2, rest) {
            if size2 == 0 {
                if run2 != 15 {
                    e += u64::from(t2);
                    e |= Pair::EOB;
                }
            } else {
                // The second's offset grows by its run; the move by its run and itself.
                e += u64::from(t2)
                    + (u64::from(run2) << Pair::AT2)
                    + (u64::from(run2 + 1) << Pair::ADVANCE);
                e |= u64::from(v2 as u16) << Pair::V2;
            }
        }
        e
    }

    fn skip_entry(&self, window: u32) -> u16 {
        let (mut used, mut advance) = (0u32, 0u32);
        while used < LOOKUP_BITS {
            let rest = LOOKUP_BITS - used;
            let Some((t, run, size, _)) = self.coefficient_in(window & ((1 << rest) - 1), rest)
            else {
                break;
            };
            used += t;
            if size == 0 && run != 15 {
                return (advance << 8 | 1 << 7 | used) as u16;
            }
            advance += if size == 0 { 16 } else { run + 1 };
        }
        if used == 0 {
            0
        } else {
            (advance << 8 | used) as u16
        }
    }
}

/// ITU T.81 F.2.2.1 EXTEND: `bits` (of `size` bits) as a signed magnitude.
#[inline(always)]
fn extend(bits: u32, size: u32) -> i32 {
    if size == 0 {
        0
    } else if bits < 1 << (size - 1) {
        bits as i32 - (1 << size) + 1
    } else {
        bits as i32
    }
}

// ---------------------------------------------------------------------------------------
// Bit reader

/// The reader is `Copy`, and everything that is not inlined into the block loop takes it (or
/// its bits) by value: a reader whose address reaches a call lives on the stack, and then
/// every bit consumed goes through a store and a reload on the decoder's critical path.
#[derive(Clone, Copy)]
struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
    /// The next bits of the stream, most significant first; the `count` top bits are valid.
    /// Bits below them are zero or, after a wide refill, the stream's own next bits.
    acc: u64,
    count: u32,
    /// Zero bytes fed after a marker or the end of the data (a broken stream if used).
    padding: u32,
}

impl<'a> Bits<'a> {
    fn new(data: &'a [u8], pos: usize) -> Self {
        Bits {
            data,
            pos,
            acc: 0,
            count: 0,
            padding: 0,
        }
    }

    /// Ensures at least 56 valid bits.
    #[inline(always)]
    fn refill(&mut self) {
        if let Some(w) = self.data.get(self.pos..self.pos + 8) {
            let w = u64::from_be_bytes(w.try_into().expect("8 bytes"));
            // Does any byte equal 0xFF? (A zero byte of !w, by the usual bit trick.)
            let inv = !w;
            let ff = inv.wrapping_sub(0x0101_0101_0101_0101) & !inv & 0x8080_8080_8080_8080;
            if ff == 0 {
                self.acc |= w >> self.count;
                self.pos += ((63 - self.count) >> 3) as usize;
                self.count |= 56;
                return;
            }
        }
        *self = self.refilled_bytewise();
    }

    /// Byte by byte: undoes 0xFF00 stuffing, stops at a marker and then feeds zeros, as
    /// libjpeg does.
    #[cold]
    #[inline(never)]
    fn refilled_bytewise(mut self) -> Self {
        while self.count <= 56 {
            let mut byte = 0u8;
            match self.data.get(self.pos) {
                Some(&0xFF) => {
                    let mut next = self.pos + 1;
                    while self.data.get(next) == Some(&0xFF) {
                        next += 1;
                    }
                    if self.data.get(next) == Some(&0) {
                        byte = 0xFF;
                        self.pos = next + 1;
                    } else {
                        self.padding += 1; // a marker: stay on it
                    }
                }
                Some(&b) => {
                    byte = b;
                    self.pos += 1;
                }
                None => self.padding += 1,
            }
            self.acc |= u64::from(byte) << (56 - self.count);
            self.count += 8;
        }
        self
    }

    #[inline(always)]
    fn peek(&self, n: u32) -> u32 {
        (self.acc >> (64 - n)) as u32
    }

    #[inline(always)]
    fn consume(&mut self, n: u32) {
        self.acc <<= n;
        self.count -= n;
    }

    /// Reads `n` (1..=16) bits.
    #[inline(always)]
    fn bits(&mut self, n: u32) -> u32 {
        let v = self.peek(n);
        self.consume(n);
        v
    }

    /// True once bits fed as padding have been consumed: the data ran out early.
    fn overran(&self) -> bool {
        self.padding * 8 > self.count
    }

    /// At a restart interval's end: drops the partial byte and expects RSTn; the reader
    /// after it.
    #[inline(never)]
    fn restarted(mut self, n: usize) -> Option<Self> {
        // Every valid bit left must be byte padding (at most 7 one-bits) or prefetched data
        // beyond the marker, which the refill never crosses, so what is left in the data
        // must be the marker itself.
        if self.overran() {
            return None;
        }
        let mut p = self.pos;
        if *self.data.get(p)? != 0xFF {
            return None;
        }
        while *self.data.get(p)? == 0xFF {
            p += 1;
        }
        if usize::from(*self.data.get(p)?) != 0xD0 + (n & 7) {
            return None;
        }
        if self.count - self.padding * 8 > 7 {
            return None; // whole bytes of data left unread before the marker
        }
        self.pos = p + 1;
        self.acc = 0;
        self.count = 0;
        self.padding = 0;
        Some(self)
    }
}

/// An AC symbol read by the general (one symbol) path.
enum Ac {
    /// End of block.
    End,
    /// ZRL: sixteen zero coefficients.
    Zeros16,
    /// `run` zeros, then a coefficient whose magnitude takes `size` bits.
    Coefficient { run: usize, size: u32 },
}

#[inline(always)]
fn ac_symbol(bits: &mut Bits, ac: &Huffman) -> Option<Ac> {
    let rs = symbol(bits, ac)?;
    let (run, size) = (usize::from(rs >> 4), u32::from(rs & 15));
    Some(match (run, size) {
        (15, 0) => Ac::Zeros16,
        (_, 0) => Ac::End,
        _ => Ac::Coefficient { run, size },
    })
}

/// The zigzag index of each coefficient of the 3×3 corner, row-major.
const CORNER: [usize; 9] = [0, 1, 5, 2, 4, 7, 3, 8, 12];

/// The most output pixels one block makes (3 × 3 at 3/8).
const MAX_PIXELS: usize = (MAX_EIGHTHS * MAX_EIGHTHS) as usize;

/// `out += value × pattern` over the first `N × N` values.
#[inline(always)]
fn add<const N: usize>(out: &mut [f32; MAX_PIXELS], pattern: &[f32; MAX_PIXELS], value: f32) {
    for (o, &w) in out[..N * N].iter_mut().zip(&pattern[..N * N]) {
        *o += value * w;
    }
}

/// Decodes one Huffman symbol (at least 16 valid bits needed).
#[inline(always)]
fn symbol(bits: &mut Bits, t: &Huffman) -> Option<u8> {
    let e = t.lookup[bits.peek(LOOKUP_BITS) as usize];
    if e != 0 {
        bits.consume(u32::from(e >> 8));
        return Some(e as u8);
    }
    let (len, symbol) = long_symbol(bits.acc, t)?;
    bits.consume(len);
    Some(symbol)
}

/// A code longer than [`LOOKUP_BITS`] at the top of `acc`: its length and symbol.
#[cold]
#[inline(never)]
fn long_symbol(acc: u64, t: &Huffman) -> Option<(u32, u8)> {
    let peek = |n: u32| (acc >> (64 - n)) as i32;
    let mut len = LOOKUP_BITS + 1;
    let mut code = peek(len);
    while code > t.maxcode[len as usize] {
        len += 1;
        if len > 16 {
            return None; // no such code: a broken stream
        }
        code = peek(len);
    }
    let symbol = *t.symbols.get((code + t.offset[len as usize]) as usize)?;
    Some((len, symbol))
}

// ---------------------------------------------------------------------------------------
// Entropy decoding and the reduced IDCT

/// Reduced-size component planes, each `stride × rows` bytes, MCU-padded.
struct Planes {
    planes: Vec<Vec<u8>>,
    strides: Vec<usize>,
}

/// Per component: for each zigzag index inside the kept corner, its n×n pattern with the
/// dequantisation folded in (`n * n` floats each; others are zero).
struct Patterns {
    per_k: Vec<[f32; MAX_PIXELS]>,
    /// Zigzag indices 0..=last hold every kept coefficient.
    last: usize,
    /// At 3/8 (nine coefficients, nine pixels) the coefficients are gathered and the block
    /// transformed in two 1-D passes instead: 18 four-lane multiply-adds per block rather
    /// than nine per coefficient. The quantiser step of each kept coefficient, row-major
    /// (at the zigzag indices of [`CORNER`]).
    steps: [f32; 9],
    /// `weights(3)` as columns: `across[u][x]` is output column x's weight of frequency u.
    across: [[f32; 4]; 3],
    /// `weights(3)` as it is: `down[y][v]`.
    down: [[f32; 3]; 3],
}

/// The 1-D weights of the box-averaged IDCT at n/8 scale: output pixel m (of n) from
/// frequency u (< n). Output pixel m covers source pixels 8m/n to 8(m+1)/n; a source pixel
/// that straddles a border counts for the part of it on each side.
fn weights(n: usize) -> &'static [[f32; 3]; 3] {
    static W: OnceLock<[[[f32; 3]; 3]; 3]> = OnceLock::new();
    let all = W.get_or_init(|| {
        let mut all = [[[0f32; 3]; 3]; 3];
        for (table, n) in all.iter_mut().zip(1usize..) {
            let s = 8.0 / n as f64;
            for (m, row) in table.iter_mut().enumerate().take(n) {
                let (from, to) = (s * m as f64, s * (m + 1) as f64);
                for (u, weight) in row.iter_mut().enumerate().take(n) {
                    let cu = if u == 0 {
                        std::f64::consts::FRAC_1_SQRT_2
                    } else {
                        1.0
                    };
                    let mut sum = 0.0;
                    for j in 0..8 {
                        let x = j as f64;
                        let part = (to.min(x + 1.0) - from.max(x)).max(0.0);
                        sum +=
                            part * ((2.0 * x + 1.0) * u as f64 * std::f64::consts::PI / 16.0).cos();
                    }
                    *weight = (cu / 2.0 * sum / s) as f32;
                }
            }
        }
        all
    });
    &all[n - 1]
}

impl Patterns {
    fn new(q: &[u16; 64], n: usize) -> Patterns {
        let w = weights(n);
        let mut per_k = vec![[0f32; MAX_PIXELS]; 64];
        let mut last = 0;
        let mut steps = [0f32; 9];
        for (k, &natural) in ZIGZAG.iter().enumerate() {
            let (v, u) = (usize::from(natural) / 8, usize::from(natural) % 8);
            if v >= n || u >= n {
                continue;
            }
            last = k;
            let qk = f32::from(q[k]);
            for y in 0..n {
                for x in 0..n {
                    per_k[k][y * n + x] = qk * w[y][v] * w[x][u];
                }
            }
            if n == 3 {
                steps[v * 3 + u] = qk;
            }
        }
        let w3 = weights(3);
        let mut across = [[0f32; 4]; 3];
        for (u, lanes) in across.iter_mut().enumerate() {
            for (x, lane) in lanes.iter_mut().take(3).enumerate() {
                *lane = w3[x][u];
            }
        }
        Patterns {
            per_k,
            last,
            steps,
            across,
            down: *w3,
        }
    }
}

/// Decodes the scan into reduced planes: NY×NY pixels per luma block, NC×NC per chroma
/// block.
fn decode_scan<const NY: usize, const NC: usize>(data: &[u8], p: &Parsed) -> Option<Planes> {
    let f = &p.frame;
    let interleaved = f.components.len() > 1;
    let (mcu_w, mcu_h) = (8 * f.hmax, 8 * f.vmax);
    let mcus_x = f.width.div_ceil(mcu_w);
    let mcus_y = f.height.div_ceil(mcu_h);
    let mut planes = Vec::new();
    let mut strides = Vec::new();
    let mut patterns = Vec::new();
    for (ci, c) in f.components.iter().enumerate() {
        let n = if ci == 0 { NY } else { NC };
        let stride = mcus_x * c.h * n;
        planes.push(vec![0u8; stride * mcus_y * c.v * n]);
        strides.push(stride);
        patterns.push(Patterns::new(&p.quant[c.tq], n));
    }
    let mut bits = Bits::new(data, p.scan_start);
    let mut pred = [0i32; 3];
    let total = mcus_x * mcus_y;
    let mut restarts = 0usize;
    let mut block = [0f32; MAX_PIXELS];
    // At 3/8, a block's coefficients by zigzag index (see `put`).
    let mut coef = [0i32; 64];
    for mcu in 0..total {
        if p.restart_interval > 0 && mcu > 0 && mcu % p.restart_interval == 0 {
            bits = bits.restarted(restarts)?;
            restarts += 1;
            pred = [0; 3];
        }
        let (mx, my) = (mcu % mcus_x, mcu / mcus_x);
        for (ci, c) in f.components.iter().enumerate() {
            let (dc, ac) = (p.dc[c.td].as_ref()?, p.ac[c.ta].as_ref()?);
            let (h, v) = if interleaved { (c.h, c.v) } else { (1, 1) };
            for by in 0..v {
                for bx in 0..h {
                    let (plane, stride) = (&mut planes[ci], strides[ci]);
                    let (pat, pred) = (&patterns[ci], &mut pred[ci]);
                    if ci == 0 {
                        decode_block::<NY>(&mut bits, dc, ac, pat, pred, &mut coef, &mut block)?;
                        store::<NY>(&block, plane, stride, mx * h + bx, my * v + by);
                    } else {
                        decode_block::<NC>(&mut bits, dc, ac, pat, pred, &mut coef, &mut block)?;
                        store::<NC>(&block, plane, stride, mx * h + bx, my * v + by);
                    }
                }
            }
        }
    }
    if bits.overran() {
        return None; // the data ended (or a marker came) before the last block
    }
    Some(Planes { planes, strides })
}

/// Writes an N×N block's pixels into its place in the plane: block column `bx`, row `by`.
#[inline(always)]
fn store<const N: usize>(
    block: &[f32; MAX_PIXELS],
    plane: &mut [u8],
    stride: usize,
    bx: usize,
    by: usize,
) {
    let (x0, y0) = (bx * N, by * N);
    // All of the block's pixels at once, then row by row into the plane. Rounded by adding
    // 1.5 × 2^23, which leaves the nearest integer (0 to 255 after the clamp) in the low byte
    // of the float's bits: `f32 as u8`, a saturating conversion, took more than twice the
    // instructions (4 % of all the decoder's at 3/8). The float rounds halves to even;
    // the 2^-10 nudge rounds them up, as libjpeg does (a flat block's value is often an exact
    // half at 1/8).
    const ROUND: f32 = 12_582_912.0;
    const HALF_UP: f32 = 1.0 / 1024.0;
    let mut px = [0u8; MAX_PIXELS];
    #[allow(
        clippy::manual_clamp,
        reason = "with clamp() LLVM moves the upper bound past the rounding as a select on \
                  the byte, 4 M more instructions"
    )]
    for (p, &val) in px.iter_mut().zip(block).take(N * N) {
        *p = ((val + (128.0 + HALF_UP)).max(0.0).min(255.0) + ROUND).to_bits() as u8;
    }
    for (y, src) in px.chunks_exact(N).take(N).enumerate() {
        plane[(y0 + y) * stride + x0..][..N].copy_from_slice(src);
    }
}

/// One 8×8 block: its DC and the kept AC coefficients summed into `out` (n×n, level shift
/// not yet added), the other coefficients skipped.
#[inline(always)]
fn decode_block<const N: usize>(
    bits: &mut Bits,
    dc: &Huffman,
    ac: &Huffman,
    pat: &Patterns,
    pred: &mut i32,
    coef: &mut [i32; 64],
    out: &mut [f32; MAX_PIXELS],
) -> Option<()> {
    bits.refill();
    let fast = dc.dc_values[bits.peek(LOOKUP_BITS) as usize];
    let diff = if fast != 0 {
        bits.consume((fast & 0xFF) as u32);
        fast >> 8
    } else {
        let size = u32::from(symbol(bits, dc)?);
        if size > 11 {
            return None;
        }
        if size == 0 {
            0
        } else {
            extend(bits.bits(size), size)
        }
    };
    // Wrapping: a broken stream must not overflow in a debug build.
    *pred = pred.wrapping_add(diff);
    // At 3/8 the coefficients are gathered and transformed at the end (see [`put`]); only
    // the corner's slots are read there, so only they need clearing.
    if N == 3 {
        coef[..16].fill(0);
        coef[0] = *pred;
    } else {
        out[..N * N].fill(*pred as f32 * pat.per_k[0][0]);
    }
    let mut k = 1usize;
    // Kept coefficients: value, dequantise, add the pattern; two at a time where their
    // codes are short. k stays below 13 + 2 × 16 here, inside `per_k`.
    while k <= pat.last {
        if bits.count < 32 {
            bits.refill();
        }
        let e = ac.pairs[bits.peek(LOOKUP_BITS) as usize];
        if e != 0 {
            bits.consume((e & Pair::BITS) as u32);
            let (at1, at2) = (
                ((e >> Pair::AT1) & 15) as usize,
                ((e >> Pair::AT2) & 31) as usize,
            );
            put::<N>(
                coef,
                out,
                pat,
                k + at1,
                i32::from((e >> Pair::V1) as u16 as i16),
            );
            put::<N>(
                coef,
                out,
                pat,
                k + at2,
                i32::from((e >> Pair::V2) as u16 as i16),
            );
            k += ((e >> Pair::ADVANCE) & 63) as usize;
            if e & Pair::EOB != 0 {
                finish::<N>(pat, coef, out);
                return Some(());
            }
            continue;
        }
        match ac_symbol(bits, ac)? {
            Ac::End => {
                finish::<N>(pat, coef, out);
                return Some(());
            }
            Ac::Zeros16 => k += 16,
            Ac::Coefficient { run, size } => {
                let value = extend(bits.bits(size), size);
                k += run;
                if k > 63 {
                    return None;
                }
                put::<N>(coef, out, pat, k, value);
                k += 1;
            }
        }
    }
    finish::<N>(pat, coef, out);
    // The rest: lengths only, several symbols at a time.
    while k < 64 {
        if bits.count < 32 {
            bits.refill();
        }
        let e = u32::from(ac.skips[bits.peek(LOOKUP_BITS) as usize]);
        let next = k + (e >> 8) as usize;
        // An entry's symbols all belong to this block only if it does not run past its end.
        if e != 0 && next <= 64 {
            bits.consume(e & 0x3F);
            if e & 0x80 != 0 {
                return Some(());
            }
            k = next;
            continue;
        }
        match ac_symbol(bits, ac)? {
            Ac::End => return Some(()),
            Ac::Zeros16 => k += 16,
            Ac::Coefficient { run, size } => {
                bits.consume(size);
                k += run + 1;
            }
        }
    }
    if k > 64 {
        return None;
    }
    Some(())
}

/// One kept coefficient (or a zero, or one past the corner, which changes nothing): below
/// 3/8 it adds its pattern to `out`; at 3/8 it is gathered by zigzag index (those past the
/// corner, k < 64, land in slots that are never read) for [`finish`], as an integer: the
/// conversion to float is done there, for the nine that count.
#[inline(always)]
fn put<const N: usize>(
    coef: &mut [i32; 64],
    out: &mut [f32; MAX_PIXELS],
    pat: &Patterns,
    k: usize,
    value: i32,
) {
    if N == 3 {
        coef[k & 63] = value;
    } else {
        add::<N>(out, &pat.per_k[k], value as f32);
    }
}

/// At 3/8: the gathered coefficients, dequantised, through the 3-point box IDCT across
/// (rows of four lanes, the fourth unused) and then down. Below 3/8, `out` is done already.
#[inline(always)]
fn finish<const N: usize>(pat: &Patterns, coef: &[i32; 64], out: &mut [f32; MAX_PIXELS]) {
    if N != 3 {
        return;
    }
    let mut rows = [[0f32; 4]; 3];
    for (v, row) in rows.iter_mut().enumerate() {
        for u in 0..3 {
            let c = coef[CORNER[v * 3 + u]] as f32 * pat.steps[v * 3 + u];
            for (r, &w) in row.iter_mut().zip(&pat.across[u]) {
                *r += c * w;
            }
        }
    }
    for (y, down) in pat.down.iter().enumerate() {
        let mut px = [0f32; 4];
        for (row, &w) in rows.iter().zip(down) {
            for (p, &r) in px.iter_mut().zip(row) {
                *p += w * r;
            }
        }
        out[y * 3..y * 3 + 3].copy_from_slice(&px[..3]);
    }
}

// ---------------------------------------------------------------------------------------
// Upsampling and colour

/// The full-resolution output: chroma upsampled with the triangle filter, then YCbCr → RGB.
fn to_rgb(f: &Frame, planes: &Planes, eighths: u32) -> Decoded {
    let out_w = scaled(f.width, eighths);
    let out_h = scaled(f.height, eighths);
    let mut rgb = vec![0u8; out_w * out_h * 3];
    let y_plane = &planes.planes[0];
    let y_stride = planes.strides[0];
    if f.components.len() == 1 {
        for (y, row) in rgb.chunks_exact_mut(out_w * 3).enumerate() {
            let src = &y_plane[y * y_stride..][..out_w];
            for (px, &l) in row.chunks_exact_mut(3).zip(src) {
                px.fill(l);
            }
        }
        return Decoded {
            width: out_w as u32,
            height: out_h as u32,
            rgb,
        };
    }
    let (sx, sy) = (f.hmax, f.vmax); // chroma is 1×1, luma hmax×vmax
    // The chroma planes' real size (not MCU padding), for edge replication.
    let (cw, ch) = chroma_size(f, eighths);
    let c_stride = planes.strides[1];
    let mut cb = vec![0u8; out_w];
    let mut cr = vec![0u8; out_w];
    let mut sum = vec![0u16; cw];
    for (y, row) in rgb.chunks_exact_mut(out_w * 3).enumerate() {
        for (dst, plane) in [(&mut cb, &planes.planes[1]), (&mut cr, &planes.planes[2])] {
            if sy == 1 {
                let src = &plane[y.min(ch - 1) * c_stride..][..cw];
                for (s, &c) in sum.iter_mut().zip(src) {
                    *s = u16::from(c) * 4;
                }
            } else {
                // Vertical triangle: 3/4 of the nearer chroma row, 1/4 of the other.
                let near = (y / 2).min(ch - 1);
                let far = if y % 2 == 0 {
                    near.saturating_sub(1)
                } else {
                    (near + 1).min(ch - 1)
                };
                let a = &plane[near * c_stride..][..cw];
                let b = &plane[far * c_stride..][..cw];
                for ((s, &a), &b) in sum.iter_mut().zip(a).zip(b) {
                    *s = u16::from(a) * 3 + u16::from(b);
                }
            }
            upsample_row(&sum, dst, sx);
        }
        ycc_row(&y_plane[y * y_stride..][..out_w], &cb, &cr, row);
    }
    Decoded {
        width: out_w as u32,
        height: out_h as u32,
        rgb,
    }
}

/// Horizontal step: `sum` holds chroma × 4 (vertically filtered); writes `dst.len()` pixels.
fn upsample_row(sum: &[u16], dst: &mut [u8], sx: usize) {
    let last = sum.len() - 1;
    if sx == 1 {
        for (d, i) in dst.iter_mut().zip(0..) {
            *d = ((sum[i.min(last)] + 2) >> 2) as u8;
        }
        return;
    }
    // Each chroma sample makes two pixels: 3/4 of it and 1/4 of its neighbour on that side.
    // u16 arithmetic (at most 4 × 1020 + 8), which SSE2 vectorises.
    let at = |i: usize| sum[i.min(last)];
    let pair =
        |l: u16, c: u16, r: u16| [((c * 3 + l + 8) >> 4) as u8, ((c * 3 + r + 7) >> 4) as u8];
    // The first sample and the ones past the end replicate the edge; the middle has both
    // neighbours (a loop the compiler vectorises).
    let first = pair(at(0), at(0), at(1));
    let middle = (dst.len() / 2).min(last).saturating_sub(1);
    for (d, &v) in dst.iter_mut().zip(&first) {
        *d = v;
    }
    if dst.len() > 2 {
        for (out, w) in dst[2..]
            .chunks_exact_mut(2)
            .zip(sum.windows(3))
            .take(middle)
        {
            let [a, b] = pair(w[0], w[1], w[2]);
            out[0] = a;
            out[1] = b;
        }
    }
    for i in (middle + 1)..dst.len().div_ceil(2) {
        let p = pair(at(i.saturating_sub(1)), at(i), at(i + 1));
        for (d, &v) in dst[2 * i..].iter_mut().zip(&p) {
            *d = v;
        }
    }
}

/// JFIF YCbCr → RGB (BT.601 full range), eight pixels at a time in 16-bit lanes (what SSE2
/// offers): each factor is split into a whole part and a fraction taken with a 16-bit
/// high multiply, so results are within one level of the exact equations.
fn ycc_row(y: &[u8], cb: &[u8], cr: &[u8], out: &mut [u8]) {
    /// `a × f / 2^16`, rounded, for a fraction `f` of 2^16.
    #[inline(always)]
    fn mulhi(a: i16, f: i16) -> i16 {
        ((i32::from(a) * i32::from(f) + 0x8000) >> 16) as i16
    }
    #[inline(always)]
    fn convert<const L: usize>(y: &[u8], cb: &[u8], cr: &[u8], out: &mut [u8]) {
        let (mut r, mut g, mut b) = ([0u8; L], [0u8; L], [0u8; L]);
        for i in 0..L {
            let yy = i16::from(y[i]);
            let cb = i16::from(cb[i]) - 128;
            let cr = i16::from(cr[i]) - 128;
            // R = Y + 1.402 Cr; G = Y − 0.344136 Cb − 0.714136 Cr; B = Y + 1.772 Cb.
            r[i] = (yy + cr + mulhi(cr, 26_345)).clamp(0, 255) as u8;
            g[i] = (yy - mulhi(cb, 22_554) - cr + mulhi(cr, 18_734)).clamp(0, 255) as u8;
            b[i] = (yy + 2 * cb - mulhi(cb, 14_942)).clamp(0, 255) as u8;
        }
        for (i, px) in out.chunks_exact_mut(3).enumerate().take(L) {
            px[0] = r[i];
            px[1] = g[i];
            px[2] = b[i];
        }
    }
    let whole = y.len() / 8 * 8;
    for (((o, y), cb), cr) in out
        .chunks_exact_mut(24)
        .zip(y.chunks_exact(8))
        .zip(cb.chunks_exact(8))
        .zip(cr.chunks_exact(8))
    {
        convert::<8>(y, cb, cr, o);
    }
    for i in whole..y.len() {
        convert::<1>(&y[i..], &cb[i..], &cr[i..], &mut out[3 * i..]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jpeg_encoder::{ColorType, Encoder, SamplingFactor};

    /// A real photograph (Debian's mate-backgrounds, installed by `tests/fixtures.sh`),
    /// cropped to an odd size so that every edge case of MCU padding shows; a synthetic
    /// picture of gradients, edges and noise when the package is missing (a failure under
    /// `CI=true`).
    fn photo() -> (u32, u32, Vec<u8>) {
        let path = "/usr/share/backgrounds/mate/nature/Garden.jpg";
        match std::fs::read(path) {
            Ok(bytes) => {
                let img = image::load_from_memory(&bytes)
                    .expect("decode the fixture")
                    .to_rgb8();
                let crop = image::imageops::crop_imm(&img, 37, 21, 1001, 667).to_image();
                (crop.width(), crop.height(), crop.into_raw())
            }
            Err(e) => {
                assert!(
                    std::env::var("CI").as_deref() != Ok("true"),
                    "{path} is missing ({e}); run tests/fixtures.sh"
                );
                let (w, h) = (1001u32, 667u32);
                let mut px = Vec::with_capacity((w * h * 3) as usize);
                let mut seed = 0x1234_5678u32;
                for y in 0..h {
                    for x in 0..w {
                        seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                        let noise = (seed >> 28) as u8;
                        let edge = if (x / 97 + y / 61) % 2 == 0 { 60 } else { 0 };
                        px.extend([
                            (x * 200 / w) as u8 + noise + edge / 2,
                            (y * 180 / h) as u8 + noise,
                            ((x + y) * 150 / (w + h)) as u8 + edge,
                        ]);
                    }
                }
                (w, h, px)
            }
        }
    }

    fn encode(
        (w, h, px): &(u32, u32, Vec<u8>),
        sampling: Option<SamplingFactor>,
        restart: u16,
    ) -> Vec<u8> {
        let mut out = Vec::new();
        let mut enc = Encoder::new(&mut out, 88);
        if let Some(s) = sampling {
            enc.set_sampling_factor(s);
        }
        enc.set_restart_interval(restart);
        let (data, color) = if sampling.is_some() {
            (px.clone(), ColorType::Rgb)
        } else {
            let gray: Vec<u8> = px
                .chunks_exact(3)
                .map(|p| {
                    ((u32::from(p[0]) * 77 + u32::from(p[1]) * 150 + u32::from(p[2]) * 29) >> 8)
                        as u8
                })
                .collect();
            (gray, ColorType::Luma)
        };
        enc.encode(&data, *w as u16, *h as u16, color)
            .expect("encode");
        out
    }

    /// libjpeg-turbo's own reduced decode at `eighths`/8, the reference.
    fn libjpeg(bytes: &[u8], eighths: u32) -> (u32, u32, Vec<u8>) {
        let mut d = mozjpeg::Decompress::new_mem(bytes).expect("libjpeg reads it");
        d.scale(eighths as u8);
        let mut started = d.rgb().expect("rgb");
        let (w, h) = (started.width() as u32, started.height() as u32);
        let px: Vec<u8> = started.read_scanlines().expect("scanlines");
        (w, h, px)
    }

    /// Peak signal-to-noise ratio in dB and the mean absolute difference.
    fn psnr(a: &[u8], b: &[u8]) -> (f64, f64) {
        assert_eq!(a.len(), b.len());
        let (mut se, mut ae) = (0f64, 0f64);
        for (&x, &y) in a.iter().zip(b) {
            let d = f64::from(x) - f64::from(y);
            se += d * d;
            ae += d.abs();
        }
        let n = a.len() as f64;
        (10.0 * (255.0 * 255.0 / (se / n).max(1e-9)).log10(), ae / n)
    }

    #[test]
    fn every_chroma_layout_and_scale_looks_like_libjpegs_reduced_decode() {
        let photo = photo();
        let layouts = [
            ("4:2:0", Some(SamplingFactor::F_2_2)),
            ("4:2:2", Some(SamplingFactor::F_2_1)),
            ("4:4:0", Some(SamplingFactor::F_1_2)),
            ("4:4:4", Some(SamplingFactor::F_1_1)),
            ("grey", None),
        ];
        for (name, sampling) in layouts {
            for restart in [0u16, 1, 7] {
                let jpeg = encode(&photo, sampling, restart);
                for eighths in [1u32, 2, 3] {
                    let ours = decode(&jpeg, eighths)
                        .unwrap_or_else(|| panic!("{name}, restart {restart}: not decoded"));
                    let (w, h, reference) = libjpeg(&jpeg, eighths);
                    assert_eq!(
                        (ours.width, ours.height),
                        (w, h),
                        "{name} at {eighths}/8: size"
                    );
                    assert_eq!(
                        (w as usize, h as usize),
                        (scaled(1001, eighths), scaled(667, eighths))
                    );
                    let (db, mean) = psnr(&ours.rgb, &reference);
                    // The two differ only in how a block's coefficients become its few
                    // pixels (see the module notes): well above visible differences.
                    assert!(
                        db > 34.0 && mean < 2.5,
                        "{name}, restart {restart}, {eighths}/8: {db:.1} dB, mean {mean:.2}"
                    );
                }
            }
        }
    }

    #[test]
    fn at_three_eighths_the_two_pass_transform_is_the_sum_of_the_patterns() {
        // Any quantiser table and coefficients: the gathered, separable transform must give
        // what adding each coefficient's pattern gives (as 1/8 and 1/4 do).
        let mut q = [0u16; 64];
        for (i, step) in q.iter_mut().enumerate() {
            *step = 1 + (i as u16 * 7) % 23;
        }
        let pat = Patterns::new(&q, 3);
        assert_eq!(pat.last, 12, "(2, 2) is zigzag index 12");
        for (i, &k) in CORNER.iter().enumerate() {
            assert_eq!(usize::from(ZIGZAG[k]), (i / 3) * 8 + i % 3, "corner {i}");
        }
        let mut seed = 99u32;
        for _ in 0..50 {
            let mut coef = [0i32; 64];
            let mut expect = [0f32; MAX_PIXELS];
            for (k, c) in coef.iter_mut().enumerate().take(13) {
                seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                *c = i32::from((seed >> 20) as u16 as i16 % 200 - 100);
                add::<3>(&mut expect, &pat.per_k[k], *c as f32);
            }
            let mut got = [0f32; MAX_PIXELS];
            finish::<3>(&pat, &coef, &mut got);
            for (g, e) in got.iter().zip(&expect) {
                assert!(
                    (g - e).abs() < 1e-2 * e.abs().max(1.0),
                    "{got:?} against {expect:?}"
                );
            }
        }
        // Each output pixel's weights average 8/3 source pixels: a flat block stays flat and
        // the three pixels of a row split the block's 8 pixels evenly.
        let w = weights(3);
        for m in 0..3 {
            assert!((w[m][0] - w[0][0]).abs() < 1e-6);
        }
        assert!(
            (w[0][1] + w[2][1]).abs() < 1e-6 && w[1][1].abs() < 1e-6,
            "odd symmetry"
        );
    }

    #[test]
    fn at_one_eighth_a_full_colour_block_is_its_exact_average() {
        // At 1/8 a block is its DC coefficient, which libjpeg rounds the same way.
        let jpeg = encode(&photo(), Some(SamplingFactor::F_1_1), 0);
        let ours = decode(&jpeg, 1).expect("decoded");
        let (_, _, reference) = libjpeg(&jpeg, 1);
        let worst = ours
            .rgb
            .iter()
            .zip(&reference)
            .map(|(&a, &b)| a.abs_diff(b))
            .max();
        assert!(worst <= Some(1), "largest difference {worst:?}");
        // And the colour conversion rounds like libjpeg's: no level lost or gained on
        // average (floored fractions made red 0.57 darker and blue 0.49 brighter).
        let (_, mean) = psnr(&ours.rgb, &reference);
        assert!(mean < 0.2, "mean difference {mean:.3}");
    }

    #[test]
    fn what_it_does_not_cover_is_left_to_libjpeg() {
        let photo = photo();
        let baseline = encode(&photo, Some(SamplingFactor::F_2_2), 0);
        assert!(decode(&baseline, 2).is_some());
        // Full size and 1/2 are libjpeg's (its SIMD IDCTs are the right tool there).
        assert!(decode(&baseline, 8).is_none());
        assert!(decode(&baseline, 4).is_none());
        // Progressive.
        let mut progressive = Vec::new();
        let mut enc = Encoder::new(&mut progressive, 80);
        enc.set_progressive(true);
        let (w, h, px) = &photo;
        enc.encode(px, *w as u16, *h as u16, ColorType::Rgb)
            .expect("encode");
        assert!(decode(&progressive, 2).is_none());
        // 4:1:1 (luma four blocks wide).
        assert!(decode(&encode(&photo, Some(SamplingFactor::F_4_1), 0), 2).is_none());
        // Adobe RGB-transform and CMYK files: an APP14 with transform 0.
        let mut adobe = baseline[..2].to_vec();
        adobe.extend([0xFF, 0xEE, 0, 14]);
        adobe.extend(b"Adobe\x00\x64\x00\x00\x00\x00\x00");
        adobe.extend(&baseline[2..]);
        assert!(decode(&adobe, 2).is_none());
        // Truncated in the middle of the scan, and not a JPEG at all.
        assert!(decode(&baseline[..baseline.len() / 2], 1).is_none());
        assert!(decode(b"\xFF\xD8\xFF", 2).is_none());
        assert!(decode(b"GIF89a", 2).is_none());
    }

    #[test]
    fn restart_markers_out_of_order_are_left_to_libjpeg() {
        let mut jpeg = encode(&photo(), Some(SamplingFactor::F_2_2), 4);
        assert!(decode(&jpeg, 2).is_some());
        // Rename the second RST marker (RST1) to RST5: libjpeg resynchronises; we refuse.
        let sos = jpeg
            .windows(2)
            .position(|w| w == [0xFF, 0xDA])
            .expect("SOS");
        let rst1 = sos
            + jpeg[sos..]
                .windows(2)
                .position(|w| w == [0xFF, 0xD1])
                .expect("RST1");
        jpeg[rst1 + 1] = 0xD5;
        assert!(decode(&jpeg, 2).is_none());
    }

    #[test]
    fn damaged_scans_never_panic() {
        let jpeg = encode(&photo(), Some(SamplingFactor::F_2_2), 3);
        let sos = jpeg
            .windows(2)
            .position(|w| w == [0xFF, 0xDA])
            .expect("SOS");
        let mut seed = 7u32;
        for _ in 0..200 {
            let mut bad = jpeg.clone();
            for _ in 0..4 {
                seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                let at = sos + 20 + (seed as usize >> 8) % (bad.len() - sos - 22);
                bad[at] = (seed >> 3) as u8;
            }
            for eighths in [1, 2, 3] {
                if let Some(d) = decode(&bad, eighths) {
                    assert_eq!(d.rgb.len(), (d.width * d.height * 3) as usize);
                }
            }
        }
    }

    #[test]
    fn multi_symbol_tables_agree_with_decoding_one_symbol_at_a_time() {
        // The code lengths of the typical luminance AC table (ITU T.81 Annex K), its first
        // 40 symbols in order and the other 122 in any order.
        let counts = [0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 0x7D];
        let mut values = vec![0x01, 0x02, 0x03, 0x00, 0x04, 0x11, 0x05, 0x12, 0x21, 0x31];
        values.extend([0x41, 0x06, 0x13, 0x51, 0x61, 0x07, 0x22, 0x71, 0x14, 0x32]);
        values.extend([0x81, 0x91, 0xA1, 0x08, 0x23, 0x42, 0xB1, 0xC1, 0x15, 0x52]);
        values.extend([0xD1, 0xF0, 0x24, 0x33, 0x62, 0x72, 0x82, 0x09, 0x0A, 0x16]);

        for r in 0u8..16 {
            for s in 1u8..=10 {
                let rs = r << 4 | s;
                if values.len() < 162 && !values.contains(&rs) {
                    values.push(rs);
                }
            }
        }
        let total: usize = counts.iter().map(|&c| usize::from(c)).sum();
        assert_eq!(values.len(), total);
        let t = Huffman::new(&counts, &values, true).expect("a valid table");
        let mut pairs_used = 0;
        for window in 0..1u32 << LOOKUP_BITS {
            // One symbol at a time, the general way.
            let mut one = Vec::new();
            let mut used = 0;
            while let Some((bits, run, size, value)) = t.coefficient_in(
                window & ((1 << (LOOKUP_BITS - used)) - 1),
                LOOKUP_BITS - used,
            ) {
                used += bits;
                one.push((bits, run, size, value));
                if size == 0 || used == LOOKUP_BITS {
                    break;
                }
            }
            let pair = t.pairs[window as usize];
            match one.first() {
                None => assert_eq!(pair, 0),
                Some(&(_, 15, 0, _)) => assert_eq!(pair, 0, "ZRL is left to the general path"),
                Some(&(bits, _, 0, _)) => assert_eq!(pair, u64::from(bits) | Pair::EOB),
                Some(&(bits, run, _, value)) => {
                    assert_eq!((pair >> Pair::AT1) & 15, u64::from(run));
                    assert_eq!((pair >> Pair::V1) as u16 as i16, value as i16);
                    let at2 = (pair >> Pair::AT2) & 31;
                    let advance = (pair >> Pair::ADVANCE) & 63;
                    let v2 = (pair >> Pair::V2) as u16 as i16;
                    let mut expect_bits = bits;
                    match one.get(1) {
                        Some(&(b2, r2, s2, value2)) if s2 > 0 => {
                            pairs_used += 1;
                            expect_bits += b2;
                            assert_eq!(at2, u64::from(run + 1 + r2));
                            assert_eq!(v2, value2 as i16);
                            assert_eq!(advance, u64::from(run + 1 + r2 + 1));
                        }
                        second => {
                            // One coefficient: the second slot writes 0 just past it.
                            assert_eq!((at2, v2), (u64::from(run + 1), 0));
                            assert_eq!(advance, u64::from(run + 1));
                            if let Some(&(b2, r2, 0, _)) = second
                                && r2 != 15
                            {
                                expect_bits += b2;
                                assert_ne!(pair & Pair::EOB, 0);
                            } else {
                                assert_eq!(pair & Pair::EOB, 0);
                            }
                        }
                    }
                    assert_eq!(pair & Pair::BITS, u64::from(expect_bits));
                }
            }
            // The skip entry: every whole symbol, its advance, and the end of block.
            let skip = u32::from(t.skips[window as usize]);
            let mut advance = 0;
            let mut bits = 0;
            let mut eob = false;
            let mut rest = window;
            let mut avail = LOOKUP_BITS;
            while let Some((b, run, size, _)) = t.coefficient_in(rest, avail) {
                bits += b;
                avail -= b;
                rest &= (1 << avail) - 1;
                if size == 0 && run != 15 {
                    eob = true;
                    break;
                }
                advance += if size == 0 { 16 } else { run + 1 };
                if avail == 0 {
                    break;
                }
            }
            assert_eq!(skip & 0x3F, bits, "window {window:011b}");
            assert_eq!(skip >> 8, advance, "window {window:011b}");
            assert_eq!(skip & 0x80 != 0, eob, "window {window:011b}");
        }
        assert!(
            pairs_used > 100,
            "two coefficients per lookup in {pairs_used} windows"
        );
    }

    #[test]
    fn dc_table_gives_the_difference_with_its_magnitude_bits() {
        // The typical luminance DC table of ITU T.81 Annex K.
        let counts = [0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0];
        let values: Vec<u8> = (0..12).collect();
        let t = Huffman::new(&counts, &values, false).expect("a valid table");
        let mut fast = 0;
        for window in 0..1u32 << LOOKUP_BITS {
            let e = t.dc_values[window as usize];
            // Nine ones (the longest length here) is no code: T.81 reserves all-ones codes.
            let Some((len, size)) = t.symbol_in(window, LOOKUP_BITS) else {
                assert_eq!((window >> (LOOKUP_BITS - 9), e), (0x1FF, 0));
                continue;
            };
            let size = u32::from(size);
            if len + size > LOOKUP_BITS {
                assert_eq!(e, 0, "window {window:011b}: too long for one lookup");
                continue;
            }
            fast += 1;
            let bits = (window >> (LOOKUP_BITS - len - size)) & ((1 << size) - 1);
            assert_eq!(e & 0xFF, (len + size) as i32);
            assert_eq!(e >> 8, extend(bits, size), "window {window:011b}");
        }
        assert!(fast > 1900, "{fast} of 2048 windows in one lookup");
        // EXTEND itself (T.81 Table F.1): size 3 covers −7..−4 and 4..7.
        assert_eq!(
            (0..8).map(|b| extend(b, 3)).collect::<Vec<_>>(),
            [-7, -6, -5, -4, 4, 5, 6, 7]
        );
        assert_eq!(extend(0, 0), 0);
    }
}
