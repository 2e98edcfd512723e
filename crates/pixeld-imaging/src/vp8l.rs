//! Our own lossless WebP (VP8L) encoder, for photographs and gradient-rich graphics.
//!
//! libwebp's lossless encoder spends most of its time choosing between strategies it then
//! throws away. This one makes each choice once, from cheap estimates:
//!
//! 1. **Subtract green**, always (photographs and renders almost always gain from it).
//! 2. **Predictor** per tile: every one of the 14 modes is scored on the tile with a cost table
//!    learned from the residuals chosen so far (an adaptive estimate of their entropy).
//! 3. **Cross-colour** per tile: the least-squares fit of red on green and of blue on green and
//!    red, kept only if the cost tables say it beats the neighbouring tiles' values or none.
//! 4. **LZ77** over the residuals with a hash chain (plus the pixel to the left and the one
//!    above, the two distances with the shortest codes), lazy by one pixel.
//! 5. **Colour cache** size chosen by simulating every size in one pass.
//! 6. **Entropy codes** per region: tile histograms clustered by k-means on their coding cost,
//!    then clusters merged while a merge saves bits.
//!
//! Images with at most 256 colours are not its job: the caller keeps libwebp for them, whose
//! palette transform packs pixels into bits.
//!
//! The format is RFC 9649 ("WebP Image Format"), section 3 (lossless bitstream).

const NUM_LITERALS: usize = 256;
const NUM_LENGTH_CODES: usize = 24;
const NUM_DISTANCE_CODES: usize = 40;
const MAX_CACHE_BITS: u32 = 10;
const CODE_LENGTH_CODES: usize = 19;
const CODE_LENGTH_ORDER: [usize; CODE_LENGTH_CODES] = [
    17, 18, 0, 1, 2, 3, 4, 5, 16, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
];
/// (x, y) offsets of the 120 short distance codes, in code order (RFC 9649, 3.5.1.2).
#[rustfmt::skip]
const DISTANCE_MAP: [(i8, i8); 120] = [
    (0, 1),  (1, 0),  (1, 1),  (-1, 1), (0, 2),  (2, 0),  (1, 2),  (-1, 2),
    (2, 1),  (-2, 1), (2, 2),  (-2, 2), (0, 3),  (3, 0),  (1, 3),  (-1, 3),
    (3, 1),  (-3, 1), (2, 3),  (-2, 3), (3, 2),  (-3, 2), (0, 4),  (4, 0),
    (1, 4),  (-1, 4), (4, 1),  (-4, 1), (3, 3),  (-3, 3), (2, 4),  (-2, 4),
    (4, 2),  (-4, 2), (0, 5),  (3, 4),  (-3, 4), (4, 3),  (-4, 3), (5, 0),
    (1, 5),  (-1, 5), (5, 1),  (-5, 1), (2, 5),  (-2, 5), (5, 2),  (-5, 2),
    (4, 4),  (-4, 4), (3, 5),  (-3, 5), (5, 3),  (-5, 3), (0, 6),  (6, 0),
    (1, 6),  (-1, 6), (6, 1),  (-6, 1), (2, 6),  (-2, 6), (6, 2),  (-6, 2),
    (4, 5),  (-4, 5), (5, 4),  (-5, 4), (3, 6),  (-3, 6), (6, 3),  (-6, 3),
    (0, 7),  (7, 0),  (1, 7),  (-1, 7), (5, 5),  (-5, 5), (7, 1),  (-7, 1),
    (4, 6),  (-4, 6), (6, 4),  (-6, 4), (2, 7),  (-2, 7), (7, 2),  (-7, 2),
    (3, 7),  (-3, 7), (7, 3),  (-7, 3), (5, 6),  (-5, 6), (6, 5),  (-6, 5),
    (8, 0),  (4, 7),  (-4, 7), (7, 4),  (-7, 4), (8, 1),  (8, 2),  (6, 6),
    (-6, 6), (8, 3),  (5, 7),  (-5, 7), (7, 5),  (-7, 5), (8, 4),  (6, 7),
    (-6, 7), (7, 6),  (-7, 6), (8, 5),  (7, 7),  (-7, 7), (8, 6),  (8, 7),
];

/// Largest width or height of a WebP.
pub(crate) const MAX_SIZE: u32 = 16384;

/// Whether the picture has at most 256 colours (transparent pixels counting as one), so
/// that a palette serves it better than this encoder's transforms.
pub(crate) fn fits_palette(pixels: &[u8], channels: usize) -> bool {
    // Open addressing over 1024 slots; keys are 32-bit, so u64::MAX marks an empty slot.
    let mut slots = [u64::MAX; 1024];
    let mut count = 0;
    let mut last = u64::MAX;
    for p in pixels.chunks_exact(channels) {
        let a = if channels == 4 { p[3] } else { 255 };
        let key = if a == 0 {
            0
        } else {
            u32::from_be_bytes([a, p[0], p[1], p[2]])
        };
        if u64::from(key) == last {
            continue;
        }
        last = u64::from(key);
        let mut i = (key.wrapping_mul(0x9e37_79b1) >> 22) as usize;
        loop {
            if slots[i] == last {
                break;
            }
            if slots[i] == u64::MAX {
                count += 1;
                if count > 256 {
                    return false;
                }
                slots[i] = last;
                break;
            }
            i = (i + 1) & 1023;
        }
    }
    true
}

/// How hard to look; derived from the options' effort 0-9.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Settings {
    /// Earlier positions tried per pixel for far copies (at most 4).
    pub chain: usize,
    /// log2 of the predictor and cross-colour tile side.
    pub transform_bits: u32,
    /// log2 of the entropy-code tile side (raised for big images).
    pub histogram_bits: u32,
    /// Largest number of entropy-code groups.
    pub max_groups: usize,
    /// Cost-optimal LZ77 parses after the greedy one.
    pub passes: usize,
    /// Predictor modes are scored on every `row_step`-th row of a tile.
    pub row_step: usize,
}

impl Settings {
    /// Settings for effort 0-9 (4 is the default).
    pub(crate) fn for_effort(effort: u8) -> Settings {
        let e = usize::from(effort.min(9));
        Settings {
            chain: [0, 1, 2, 3, 4, 4, 4, 4, 4, 4][e],
            transform_bits: if e >= 6 { 3 } else { 4 },
            histogram_bits: if e >= 6 { 4 } else { 5 },
            max_groups: [8, 16, 24, 32, 48, 64, 80, 96, 128, 160][e],
            passes: [0, 0, 1, 1, 2, 2, 2, 2, 3, 3][e],
            row_step: if e >= 6 { 1 } else { 2 },
        }
    }
}

/// Encodes straight-alpha RGBA (or RGB, `channels` 3) pixels as a simple lossless WebP file
/// (RIFF `WEBP` with one `VP8L` chunk). Pixels whose alpha is 0 are stored as transparent
/// black, as libwebp does without its `exact` option. Width and height must be 1..=16384.
pub(crate) fn encode(
    pixels: &[u8],
    channels: usize,
    width: u32,
    height: u32,
    settings: Settings,
) -> Vec<u8> {
    debug_assert!((1..=16384).contains(&width) && (1..=16384).contains(&height));
    let n = width as usize * height as usize;
    debug_assert_eq!(pixels.len(), n * channels);
    let mut argb: Vec<u32> = Vec::with_capacity(n);
    let mut alpha_used = false;
    if channels == 4 {
        argb.extend(pixels.chunks_exact(4).map(|p| {
            if p[3] == 0 {
                0
            } else {
                u32::from_be_bytes([p[3], p[0], p[1], p[2]])
            }
        }));
        alpha_used = pixels.chunks_exact(4).any(|p| p[3] != 255);
    } else {
        argb.extend(
            pixels
                .chunks_exact(3)
                .map(|p| u32::from_be_bytes([255, p[0], p[1], p[2]])),
        );
    }
    let mut w = BitWriter::with_capacity(n);
    w.put(0x2f, 8);
    w.put(width - 1, 14);
    w.put(height - 1, 14);
    w.put(u32::from(alpha_used), 1);
    w.put(0, 3);
    encode_argb(&mut w, &mut argb, width as usize, height as usize, settings);
    let data = w.finish();
    let mut out = Vec::with_capacity(data.len() + 21);
    out.extend_from_slice(b"RIFF");
    let chunk_len = data.len() + data.len() % 2;
    out.extend_from_slice(&((4 + 8 + chunk_len) as u32).to_le_bytes());
    out.extend_from_slice(b"WEBPVP8L");
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out.extend_from_slice(&data);
    if data.len() % 2 == 1 {
        out.push(0);
    }
    out
}

/// Transforms, then the spatially coded image.
fn encode_argb(w: &mut BitWriter, px: &mut [u32], width: usize, height: usize, s: Settings) {
    let opaque = px.iter().all(|&p| p >> 24 == 0xff);
    let mode = analyze(px, width, opaque);
    if mode.subtract_green {
        for p in px.iter_mut() {
            let g = (*p >> 8) & 0xff;
            *p = (*p & 0xff00_ff00)
                | ((*p).wrapping_sub(g << 16) & 0x00ff_0000)
                | ((*p).wrapping_sub(g) & 0xff);
        }
        w.put(1, 1);
        w.put(2, 2);
    }
    if mode.spatial {
        let bits = s.transform_bits;
        let modes = predict(px, width, height, bits, opaque, s.row_step);
        let tw = subsample(width, bits);
        w.put(1, 1);
        w.put(0, 2);
        w.put(bits - 2, 3);
        let mode_image: Vec<u32> = modes
            .iter()
            .map(|&m| 0xff00_0000 | (u32::from(m) << 8))
            .collect();
        encode_sub_image(w, &mode_image, tw);
        if mode.subtract_green {
            let colors = cross_color(px, width, height, bits);
            w.put(1, 1);
            w.put(1, 2);
            w.put(bits - 2, 3);
            encode_sub_image(w, &colors, tw);
        }
    }
    w.put(0, 1);

    let (tokens, cache_bits) = backward_refs(px, width, s.chain, s.passes);
    encode_tokens(w, px, width, height, &tokens, cache_bits, Some(s));
}

/// Which transforms an image gets.
#[derive(Debug, Clone, Copy)]
struct Mode {
    subtract_green: bool,
    spatial: bool,
}

/// Picks the transforms from the entropy of four views of the pixels: as they are, minus
/// green, and each as the difference from the left pixel. Pixels equal to their left or top
/// neighbour are left out: LZ77 codes those whatever the transform.
#[inline(never)]
fn analyze(px: &[u32], width: usize, opaque: bool) -> Mode {
    // [view][channel][value]; views: direct, subtract green, spatial, spatial subtract green.
    let mut h = vec![[[0u32; 256]; 4]; 4];
    let sg = |p: u32| {
        let g = (p >> 8) & 0xff;
        (p & 0xff00_ff00) | (p.wrapping_sub(g << 16) & 0x00ff_0000) | (p.wrapping_sub(g) & 0xff)
    };
    let count = |v: usize, p: u32, h: &mut Vec<[[u32; 256]; 4]>| {
        for (c, hist) in h[v].iter_mut().enumerate() {
            hist[((p >> (8 * c)) & 0xff) as usize] += 1;
        }
    };
    for i in 1..px.len() {
        let p = px[i];
        if p == px[i - 1] || (i >= width && p == px[i - width]) {
            continue;
        }
        let d = sub_pixels(p, px[i - 1]);
        count(0, p, &mut h);
        count(1, sg(p), &mut h);
        count(2, d, &mut h);
        count(3, sg(d), &mut h);
    }
    let channels = if opaque { 3 } else { 4 };
    let bits: Vec<f64> = h
        .iter()
        .map(|view| view[..channels].iter().map(|c| entropy_bits(c)).sum())
        .collect();
    let best = (0..4)
        .min_by(|&a, &b| bits[a].total_cmp(&bits[b]))
        .unwrap_or(3);
    Mode {
        subtract_green: best % 2 == 1,
        spatial: best >= 2,
    }
}

fn subsample(size: usize, bits: u32) -> usize {
    (size + (1 << bits) - 1) >> bits
}

// ---------------------------------------------------------------------------------------
// Pixel arithmetic, four 8-bit channels at once.

#[inline(always)]
fn sub_pixels(a: u32, b: u32) -> u32 {
    let ag = 0x00ff_00ffu32
        .wrapping_add(a & 0xff00_ff00)
        .wrapping_sub(b & 0xff00_ff00);
    let rb = 0xff00_ff00u32
        .wrapping_add(a & 0x00ff_00ff)
        .wrapping_sub(b & 0x00ff_00ff);
    (ag & 0xff00_ff00) | (rb & 0x00ff_00ff)
}

#[inline(always)]
fn average2(a: u32, b: u32) -> u32 {
    (((a ^ b) & 0xfefe_fefe) >> 1).wrapping_add(a & b)
}

#[inline(always)]
fn channel(p: u32, shift: u32) -> i32 {
    ((p >> shift) & 0xff) as i32
}

#[inline(always)]
fn select(l: u32, t: u32, tl: u32) -> u32 {
    let mut pl = 0;
    let mut pt = 0;
    for shift in [24, 16, 8, 0] {
        let (cl, ct, ctl) = (channel(l, shift), channel(t, shift), channel(tl, shift));
        pl += (ct - ctl).abs();
        pt += (cl - ctl).abs();
    }
    if pl < pt { l } else { t }
}

#[inline(always)]
fn clamp_add_subtract_full(a: u32, b: u32, c: u32) -> u32 {
    let mut out = 0;
    for shift in [24, 16, 8, 0] {
        let v = (channel(a, shift) + channel(b, shift) - channel(c, shift)).clamp(0, 255);
        out |= (v as u32) << shift;
    }
    out
}

#[inline(always)]
fn clamp_add_subtract_half(a: u32, b: u32) -> u32 {
    let mut out = 0;
    for shift in [24, 16, 8, 0] {
        let ca = channel(a, shift);
        // C's division truncates toward zero, and the decoder does the same.
        let v = (ca + (ca - channel(b, shift)) / 2).clamp(0, 255);
        out |= (v as u32) << shift;
    }
    out
}

/// Prediction of `mode` (0-13) from the left, top, top-left and top-right pixels.
#[inline(always)]
fn predictor(mode: u8, l: u32, t: u32, tl: u32, tr: u32) -> u32 {
    match mode {
        0 => 0xff00_0000,
        1 => l,
        2 => t,
        3 => tr,
        4 => tl,
        5 => average2(average2(l, tr), t),
        6 => average2(l, tl),
        7 => average2(l, t),
        8 => average2(tl, t),
        9 => average2(t, tr),
        10 => average2(average2(l, tl), average2(t, tr)),
        11 => select(l, t, tl),
        12 => clamp_add_subtract_full(l, t, tl),
        _ => clamp_add_subtract_half(average2(l, t), tl),
    }
}

// ---------------------------------------------------------------------------------------
// Predictor transform.

/// Per-channel costs in 1/16 bits of a residual byte, learnt from the residuals chosen so far.
struct ResidualCosts {
    counts: [[u32; 256]; 4],
    table: [[u16; 256]; 4],
}

impl ResidualCosts {
    fn new() -> Self {
        let mut c = ResidualCosts {
            counts: [[0; 256]; 4],
            table: [[0; 256]; 4],
        };
        // A prior that small residuals are likelier, worth a few hundred pixels.
        for ch in 0..4 {
            for v in 0..256 {
                let d = v.min(256 - v) as u32;
                c.counts[ch][v] = 64 / (1 + d);
            }
        }
        c.refresh();
        c
    }

    #[inline(always)]
    fn add(&mut self, residual: u32, opaque: bool) {
        let [b, g, r, a] = residual.to_le_bytes();
        self.counts[0][usize::from(b)] += 1;
        self.counts[1][usize::from(g)] += 1;
        self.counts[2][usize::from(r)] += 1;
        if !opaque {
            self.counts[3][usize::from(a)] += 1;
        }
    }

    fn refresh(&mut self) {
        for ch in 0..4 {
            let total: f64 = self.counts[ch].iter().map(|&c| f64::from(c) + 0.25).sum();
            for v in 0..256 {
                let p = (f64::from(self.counts[ch][v]) + 0.25) / total;
                self.table[ch][v] =
                    ((-p.log2() * 16.0).round() as u32).min(u32::from(u16::MAX)) as u16;
            }
        }
    }

    #[inline(always)]
    fn cost(&self, r: u32, opaque: bool) -> u32 {
        let mut c = u32::from(self.table[0][(r & 0xff) as usize])
            + u32::from(self.table[1][((r >> 8) & 0xff) as usize])
            + u32::from(self.table[2][((r >> 16) & 0xff) as usize]);
        if !opaque {
            c += u32::from(self.table[3][(r >> 24) as usize]);
        }
        c
    }
}

/// Chooses a predictor per tile and replaces `px` with the residuals. Returns the modes.
#[inline(never)]
fn predict(
    px: &mut [u32],
    width: usize,
    height: usize,
    bits: u32,
    opaque: bool,
    row_step: usize,
) -> Vec<u8> {
    let tile = 1usize << bits;
    let (tw, th) = (subsample(width, bits), subsample(height, bits));
    let mut modes = vec![0u8; tw * th];
    let mut costs = ResidualCosts::new();
    // Residuals are computed from the original pixels: keep the rows a tile row needs.
    let mut out = vec![0u32; px.len()];
    for ty in 0..th {
        let y0 = ty * tile;
        let y1 = (y0 + tile).min(height);
        for tx in 0..tw {
            let x0 = tx * tile;
            let x1 = (x0 + tile).min(width);
            let mut best = (u64::MAX, 0u8);
            // Border pixels are predicted the same way whatever the mode: leave them out.
            let (ex0, ey0) = (x0.max(1), y0.max(1));
            if ex0 < x1 && ey0 < y1 {
                for mode in 0..14u8 {
                    let area = (&*px, width, ex0, x1, ey0, y1, row_step);
                    let cost = tile_cost(mode, area, &costs, opaque, best.0);
                    if cost < best.0 {
                        best = (cost, mode);
                    }
                }
            }
            let mode = best.1;
            modes[ty * tw + tx] = mode;
            for y in y0..y1 {
                let row = y * width;
                // The first row and column have their own predictions.
                let ix0 = if y == 0 { x1 } else { x0.max(1) };
                for x in x0..ix0 {
                    out[row + x] = sub_pixels(px[row + x], predict_at(px, width, x, y, mode));
                }
                if ix0 < x1 {
                    residual_row(mode, px, &mut out[row + ix0..row + x1], width, row + ix0);
                }
                for &r in &out[row + x0..row + x1] {
                    costs.add(r, opaque);
                }
            }
        }
        costs.refresh();
    }
    px.copy_from_slice(&out);
    modes
}

/// Residuals of `out.len()` inner pixels (x ≥ 1, y ≥ 1) from index `start` under `mode`.
fn residual_row(mode: u8, px: &[u32], out: &mut [u32], width: usize, start: usize) {
    match mode {
        0 => residual_row_mode::<0>(px, out, width, start),
        1 => residual_row_mode::<1>(px, out, width, start),
        2 => residual_row_mode::<2>(px, out, width, start),
        3 => residual_row_mode::<3>(px, out, width, start),
        4 => residual_row_mode::<4>(px, out, width, start),
        5 => residual_row_mode::<5>(px, out, width, start),
        6 => residual_row_mode::<6>(px, out, width, start),
        7 => residual_row_mode::<7>(px, out, width, start),
        8 => residual_row_mode::<8>(px, out, width, start),
        9 => residual_row_mode::<9>(px, out, width, start),
        10 => residual_row_mode::<10>(px, out, width, start),
        11 => residual_row_mode::<11>(px, out, width, start),
        12 => residual_row_mode::<12>(px, out, width, start),
        _ => residual_row_mode::<13>(px, out, width, start),
    }
}

#[inline(always)]
fn residual_row_mode<const MODE: u8>(px: &[u32], out: &mut [u32], width: usize, start: usize) {
    let n = out.len();
    let cur = &px[start - 1..start + n];
    let up = &px[start - width - 1..=start - width + n];
    for ((o, lp), t) in out.iter_mut().zip(cur.windows(2)).zip(up.windows(3)) {
        *o = sub_pixels(lp[1], predictor(MODE, lp[0], t[1], t[0], t[2]));
    }
}

type TileArea<'a> = (&'a [u32], usize, usize, usize, usize, usize, usize);

/// Estimated cost of the residuals of the tile's inner pixels (`x0 ≥ 1`, `y0 ≥ 1`) under
/// `mode`, every `row_step`-th row; stops early once past `limit`.
fn tile_cost(mode: u8, area: TileArea, costs: &ResidualCosts, opaque: bool, limit: u64) -> u64 {
    match mode {
        0 => tile_cost_mode::<0>(area, costs, opaque, limit),
        1 => tile_cost_mode::<1>(area, costs, opaque, limit),
        2 => tile_cost_mode::<2>(area, costs, opaque, limit),
        3 => tile_cost_mode::<3>(area, costs, opaque, limit),
        4 => tile_cost_mode::<4>(area, costs, opaque, limit),
        5 => tile_cost_mode::<5>(area, costs, opaque, limit),
        6 => tile_cost_mode::<6>(area, costs, opaque, limit),
        7 => tile_cost_mode::<7>(area, costs, opaque, limit),
        8 => tile_cost_mode::<8>(area, costs, opaque, limit),
        9 => tile_cost_mode::<9>(area, costs, opaque, limit),
        10 => tile_cost_mode::<10>(area, costs, opaque, limit),
        11 => tile_cost_mode::<11>(area, costs, opaque, limit),
        12 => tile_cost_mode::<12>(area, costs, opaque, limit),
        _ => tile_cost_mode::<13>(area, costs, opaque, limit),
    }
}

#[inline(always)]
fn tile_cost_mode<const MODE: u8>(
    (px, width, x0, x1, y0, y1, row_step): TileArea,
    costs: &ResidualCosts,
    opaque: bool,
    limit: u64,
) -> u64 {
    let mut cost = 0u64;
    for y in (y0..y1).step_by(row_step) {
        let row = y * width;
        // The row from its left neighbour, and the row above from top-left to top-right (for
        // the last column, the top-right pixel is the first of the current row, which
        // follows the row above in memory).
        let cur = &px[row + x0 - 1..row + x1];
        let up = &px[row - width + x0 - 1..=row - width + x1];
        let mut c = 0u32;
        for (lp, t) in cur.windows(2).zip(up.windows(3)) {
            let pred = predictor(MODE, lp[0], t[1], t[0], t[2]);
            c += costs.cost(sub_pixels(lp[1], pred), opaque);
        }
        cost += u64::from(c);
        if cost >= limit {
            break;
        }
    }
    cost
}

/// The decoder's prediction for (x, y) under `mode`, with its rules for the first row and
/// column.
#[inline(always)]
fn predict_at(px: &[u32], width: usize, x: usize, y: usize, mode: u8) -> u32 {
    let i = y * width + x;
    if y == 0 {
        return if x == 0 { 0xff00_0000 } else { px[i - 1] };
    }
    if x == 0 {
        return px[i - width];
    }
    let l = px[i - 1];
    let t = px[i - width];
    let tl = px[i - width - 1];
    // For the last column, the top-right pixel is the first of the current row.
    let tr = px[i - width + 1];
    predictor(mode, l, t, tl, tr)
}

// ---------------------------------------------------------------------------------------
// Cross-colour transform.

#[inline(always)]
fn color_delta(t: i8, c: u32) -> u32 {
    ((i32::from(t) * i32::from(c as u8 as i8)) >> 5) as u32
}

#[inline(always)]
fn transform_color(p: u32, g2r: i8, g2b: i8, r2b: i8) -> u32 {
    let g = p >> 8;
    let r = p >> 16;
    let new_r = (r.wrapping_sub(color_delta(g2r, g))) & 0xff;
    let new_b = (p
        .wrapping_sub(color_delta(g2b, g))
        .wrapping_sub(color_delta(r2b, r)))
        & 0xff;
    (p & 0xff00_ff00) | (new_r << 16) | new_b
}

/// Chooses green-to-red, green-to-blue and red-to-blue multipliers per tile and applies
/// them to `px`. Returns the transform's sub-image.
#[inline(never)]
fn cross_color(px: &mut [u32], width: usize, height: usize, bits: u32) -> Vec<u32> {
    let tile = 1usize << bits;
    let (tw, th) = (subsample(width, bits), subsample(height, bits));
    let mut image = vec![0xff00_0000u32; tw * th];
    let mut costs = ResidualCosts::new();
    let mut tile_px: Vec<u32> = Vec::with_capacity(tile * tile);
    for ty in 0..th {
        let y0 = ty * tile;
        let y1 = (y0 + tile).min(height);
        for tx in 0..tw {
            let x0 = tx * tile;
            let x1 = (x0 + tile).min(width);
            tile_px.clear();
            for y in y0..y1 {
                tile_px.extend_from_slice(&px[y * width + x0..y * width + x1]);
            }
            // Least squares, in units of 1/32.
            let (mut gg, mut rg, mut rr, mut bg, mut br) = (0i64, 0i64, 0i64, 0i64, 0i64);
            for &p in &tile_px {
                let g = i64::from((p >> 8) as u8 as i8);
                let r = i64::from((p >> 16) as u8 as i8);
                let b = i64::from(p as u8 as i8);
                gg += g * g;
                rg += r * g;
                rr += r * r;
                bg += b * g;
                br += b * r;
            }
            let fit = |v: f64| v.round().clamp(-128.0, 127.0) as i8;
            let g2r = if gg > 0 {
                fit(32.0 * rg as f64 / gg as f64)
            } else {
                0
            };
            let det = gg as f64 * rr as f64 - (rg as f64) * (rg as f64);
            let (g2b, r2b) = if det.abs() > 1e-9 {
                let k1 = (bg as f64 * rr as f64 - br as f64 * rg as f64) / det;
                let k2 = (br as f64 * gg as f64 - bg as f64 * rg as f64) / det;
                (fit(32.0 * k1), fit(32.0 * k2))
            } else if gg > 0 {
                (fit(32.0 * bg as f64 / gg as f64), 0)
            } else {
                (0, 0)
            };
            let mut candidates = vec![(g2r, g2b, r2b), (0, 0, 0)];
            for (dx, dy) in [(1usize, 0usize), (0, 1)] {
                if tx >= dx && ty >= dy {
                    let e = image[(ty - dy) * tw + tx - dx];
                    candidates.push((e as u8 as i8, (e >> 8) as u8 as i8, (e >> 16) as u8 as i8));
                }
            }
            // Red and blue are chosen separately: red depends on g2r alone.
            let red_cost = |g2r: i8| -> u32 {
                tile_px
                    .iter()
                    .map(|&p| {
                        let r = ((p >> 16).wrapping_sub(color_delta(g2r, p >> 8))) & 0xff;
                        u32::from(costs.table[2][r as usize])
                    })
                    .sum()
            };
            let blue_cost = |g2b: i8, r2b: i8| -> u32 {
                tile_px
                    .iter()
                    .map(|&p| {
                        let b = (p
                            .wrapping_sub(color_delta(g2b, p >> 8))
                            .wrapping_sub(color_delta(r2b, p >> 16)))
                            & 0xff;
                        u32::from(costs.table[0][b as usize])
                    })
                    .sum()
            };
            let mut best_r = (u32::MAX, 0i8);
            let mut best_b = (u32::MAX, 0i8, 0i8);
            for &(cr, cg, cb) in &candidates {
                let c = red_cost(cr);
                if c < best_r.0 {
                    best_r = (c, cr);
                }
                let c = blue_cost(cg, cb);
                if c < best_b.0 {
                    best_b = (c, cg, cb);
                }
            }
            let (g2r, g2b, r2b) = (best_r.1, best_b.1, best_b.2);
            image[ty * tw + tx] = 0xff00_0000
                | (u32::from(r2b as u8) << 16)
                | (u32::from(g2b as u8) << 8)
                | u32::from(g2r as u8);
            for y in y0..y1 {
                for p in &mut px[y * width + x0..y * width + x1] {
                    *p = transform_color(*p, g2r, g2b, r2b);
                    // Only the red and blue tables are read here.
                    costs.add(*p, true);
                }
            }
        }
        costs.refresh();
    }
    image
}

// ---------------------------------------------------------------------------------------
// LZ77.

/// A literal pixel (`len` 0) or a copy of `len` pixels from `dist` pixels back.
#[derive(Debug, Clone, Copy)]
struct Token {
    len: u32,
    /// The pixel for a literal, the distance code (1-based plane code) for a copy.
    value: u32,
}

/// Distance → plane code for the short distances, per image width.
struct PlaneCodes {
    short: Vec<u8>,
}

impl PlaneCodes {
    fn new(width: usize) -> Self {
        let max = 8 * width + 9;
        let mut short = vec![0u8; max];
        for (i, &(dx, dy)) in DISTANCE_MAP.iter().enumerate() {
            let d = (i64::from(dx) + i64::from(dy) * width as i64).max(1) as usize;
            if d < max && short[d] == 0 {
                short[d] = (i + 1) as u8;
            }
        }
        PlaneCodes { short }
    }

    fn code(&self, dist: usize) -> u32 {
        if dist < self.short.len() && self.short[dist] != 0 {
            u32::from(self.short[dist])
        } else {
            (dist + 120) as u32
        }
    }
}

const HASH_BITS: u32 = 16;
/// Candidates kept per hash bucket (the most recent positions).
const WAYS: usize = 4;
const WINDOW: usize = (1 << 20) - 120;
/// Longest copy the match table records (12 bits).
const MAX_MATCH: usize = 4095;
/// Copy lengths the optimal parse weighs one by one; longer copies are weighed at the last
/// length of each length prefix code.
const RELAX_ALL: usize = 4;

/// Hash of three pixels: far copies shorter than three pixels rarely pay for their distance.
#[inline(always)]
fn hash3(px: &[u32], i: usize) -> usize {
    let h = (px[i].wrapping_mul(0x9e37_79b1)
        ^ px[i + 1].wrapping_mul(0x85eb_ca6b).rotate_left(11)
        ^ px[i + 2].wrapping_mul(0xc2b2_ae35).rotate_left(22))
    .wrapping_mul(0x2545_f491);
    (h >> (32 - HASH_BITS)) as usize
}

#[inline(always)]
fn match_len(px: &[u32], a: usize, b: usize, max: usize) -> usize {
    let mut n = 0;
    while n < max && px[a + n] == px[b + n] {
        n += 1;
    }
    n
}

/// For each position, how many pixels from there on equal the ones `dist` before them
/// (at most [`MAX_MATCH`]).
#[inline(never)]
fn runs(px: &[u32], dist: usize) -> Vec<u16> {
    let n = px.len();
    let mut out = vec![0u16; n];
    let mut next = 0u16;
    for i in (dist..n).rev() {
        next = if px[i] == px[i - dist] {
            (next + 1).min(MAX_MATCH as u16)
        } else {
            0
        };
        out[i] = next;
    }
    out
}

/// Copies from the two distances with the shortest codes: the left pixel and the one above.
struct Neighbours {
    left: Vec<u16>,
    up: Vec<u16>,
}

impl Neighbours {
    fn new(px: &[u32], width: usize) -> Self {
        Neighbours {
            left: runs(px, 1),
            up: runs(px, width),
        }
    }
}

/// For each position, the longest copy found from further away than the neighbours:
/// `dist << 12 | len` (0 for none). Candidates are the `ways` most recent positions whose
/// next three pixels hash alike; looked up only where the neighbours give no copy of 8.
#[inline(never)]
fn match_table(px: &[u32], near: &Neighbours, ways: usize) -> Vec<u32> {
    let n = px.len();
    let mut table = vec![0u32; n];
    let ways = ways.min(WAYS);
    if ways == 0 || n < 3 {
        return table;
    }
    let mut buckets = vec![[u32::MAX; WAYS]; 1 << HASH_BITS];
    let mut last = (0usize, 0usize); // (len, dist) at the previous position
    for i in 0..n - 2 {
        let max = (n - i).min(MAX_MATCH);
        let h = hash3(px, i);
        let near_len = usize::from(near.left[i].max(near.up[i]));
        let mut best = (0usize, 0usize);
        if last.0 > 32 {
            // Inside a long copy: its tail is as good as any search.
            best = (last.0 - 1, last.1);
        } else if near_len < 8 {
            let bucket = &buckets[h];
            for &c in &bucket[..ways] {
                if c == u32::MAX {
                    break;
                }
                let c = c as usize;
                if i - c > WINDOW {
                    break;
                }
                let floor = best.0.max(near_len);
                if floor < max && px[c + floor] == px[i + floor] {
                    let len = match_len(px, c, i, max);
                    if len > floor {
                        best = (len, i - c);
                    }
                }
            }
        }
        let bucket = &mut buckets[h];
        bucket.copy_within(0..WAYS - 1, 1);
        bucket[0] = i as u32;
        if best.0 < 3 {
            best = (0, 0);
        }
        table[i] = ((best.1 as u32) << 12) | best.0 as u32;
        last = best;
    }
    table
}

/// Greedy parse with copies from the left pixel or the one above only: the starting point
/// whose statistics cost the first optimal parse (far copies, which the optimal parse may
/// still pick, would otherwise crowd out the colour cache).
#[inline(never)]
fn greedy_refs(px: &[u32], width: usize, near: &Neighbours) -> Vec<Token> {
    let planes = PlaneCodes::new(width);
    let mut tokens = Vec::with_capacity(px.len() / 2);
    let n = px.len();
    let mut i = 0;
    while i < n {
        let (l, u) = (usize::from(near.left[i]), usize::from(near.up[i]));
        let best = if l >= u { (l, 1) } else { (u, width) };
        if best.0 >= 2 {
            tokens.push(Token {
                len: best.0 as u32,
                value: planes.code(best.1),
            });
            i += best.0;
        } else {
            tokens.push(Token {
                len: 0,
                value: px[i],
            });
            i += 1;
        }
    }
    tokens
}

/// Symbol costs in bits, from a histogram of an earlier parse.
struct SymbolCosts {
    green: Vec<f32>,
    red: [f32; 256],
    blue: [f32; 256],
    alpha: [f32; 256],
    /// Per copy length 1..=MAX_MATCH (index 0 unused): prefix code and extra bits.
    length: Vec<f32>,
    /// Per distance prefix code.
    dist: [f32; NUM_DISTANCE_CODES],
}

impl SymbolCosts {
    fn new(h: &Histogram) -> Self {
        let parts = h.parts();
        let costs = |counts: &[u32]| -> Vec<f32> {
            let total: f64 = counts.iter().map(|&c| f64::from(c)).sum::<f64>() + 1.0;
            counts
                .iter()
                .map(|&c| {
                    if c > 0 {
                        (total / f64::from(c)).log2() as f32
                    } else {
                        (total.log2() + 2.0) as f32
                    }
                })
                .collect()
        };
        let green = costs(&h.counts[parts[0].clone()]);
        let arr = |v: Vec<f32>| -> [f32; 256] { std::array::from_fn(|i| v[i]) };
        let red = arr(costs(&h.counts[parts[1].clone()]));
        let blue = arr(costs(&h.counts[parts[2].clone()]));
        let alpha = arr(costs(&h.counts[parts[3].clone()]));
        let d = costs(&h.counts[parts[4].clone()]);
        let length = (0..=MAX_MATCH as u32)
            .map(|len| {
                if len == 0 {
                    return 0.0;
                }
                let (code, extra, _) = prefix_encode(len);
                green[NUM_LITERALS + code as usize] + extra as f32
            })
            .collect();
        SymbolCosts {
            green,
            red,
            blue,
            alpha,
            length,
            dist: std::array::from_fn(|i| d[i]),
        }
    }

    #[inline(always)]
    fn literal(&self, p: u32) -> f32 {
        self.green[((p >> 8) & 0xff) as usize]
            + self.red[((p >> 16) & 0xff) as usize]
            + self.blue[(p & 0xff) as usize]
            + self.alpha[(p >> 24) as usize]
    }

    #[inline(always)]
    fn distance(&self, code: u32) -> f32 {
        let (c, extra, _) = prefix_encode(code);
        self.dist[c as usize] + extra as f32
    }
}

/// Histogram of a parse over the whole image.
#[inline(never)]
fn histogram_of(px: &[u32], tokens: &[Token], cache_bits: u32) -> Histogram {
    let mut h = Histogram::new(cache_bits);
    let mut cache = vec![0u32; 1 << cache_bits];
    let mut pos = 0;
    for t in tokens {
        record(&mut h, px, pos, t, &mut cache, cache_bits);
        pos += t.len.max(1) as usize;
    }
    h
}

/// The cheapest parse under `costs` (shortest path over positions): each position is a
/// literal or cache hit, or starts a copy of any length up to the match found there, from
/// the match table's distance, the left pixel or the one above.
#[inline(never)]
fn optimal_refs(
    px: &[u32],
    width: usize,
    near: &Neighbours,
    table: &[u32],
    costs: &SymbolCosts,
    cache_bits: u32,
) -> Vec<Token> {
    let n = px.len();
    let planes = PlaneCodes::new(width);
    let mut cost = vec![f64::INFINITY; n + 1];
    // (len, plane code) of the step that reaches each position; len 0 = literal.
    let mut step = vec![(0u16, 0u32); n + 1];
    cost[0] = 0.0;
    let mut cache = vec![0u32; 1 << cache_bits];
    let cache_cost = |idx: usize| costs.green[NUM_LITERALS + NUM_LENGTH_CODES + idx];
    let lengths: Vec<f64> = costs.length.iter().map(|&c| f64::from(c)).collect();
    let (code1, code_w) = (planes.code(1), planes.code(width));
    let (d1, dw) = (costs.distance(code1), costs.distance(code_w));
    let mut i = 0;
    while i < n {
        let p = px[i];
        let base = cost[i];
        let mut lit = costs.literal(p);
        if cache_bits > 0 {
            let idx = (cache_hash(p) >> (32 - cache_bits)) as usize;
            if cache[idx] == p {
                lit = cache_cost(idx);
            }
            cache[idx] = p;
        }
        if base + f64::from(lit) < cost[i + 1] {
            cost[i + 1] = base + f64::from(lit);
            step[i + 1] = (0, 0);
        }
        let (l, u) = (usize::from(near.left[i]), usize::from(near.up[i]));
        let (mut best_len, mut best_dist) =
            ((table[i] & 0xfff) as usize, (table[i] >> 12) as usize);
        if l.max(u) > best_len {
            (best_len, best_dist) = if l >= u { (l, 1) } else { (u, width) };
        }
        if best_len > 256 {
            // A long copy: take it whole rather than weigh every length.
            let code = planes.code(best_dist);
            let c = base + f64::from(costs.distance(code) + costs.length[best_len]);
            if c < cost[i + best_len] {
                cost[i + best_len] = c;
                step[i + best_len] = (best_len as u16, code);
            }
            if cache_bits > 0 {
                for &q in &px[i + 1..i + best_len] {
                    cache[(cache_hash(q) >> (32 - cache_bits)) as usize] = q;
                }
            }
            // Positions inside it are reached only through it.
            i += best_len;
            continue;
        }
        let mut edges = Edges {
            cost: &mut cost,
            step: &mut step,
            lengths: &lengths,
            i,
        };
        if l > 0 {
            edges.relax(base + f64::from(d1), l, code1);
        }
        if u > 0 {
            edges.relax(base + f64::from(dw), u, code_w);
        }
        if best_len >= 2 && best_dist != 1 && best_dist != width {
            let code = planes.code(best_dist);
            edges.relax(base + f64::from(costs.distance(code)), best_len, code);
        }
        i += 1;
    }
    // Walk back from the end.
    let mut tokens = Vec::new();
    let mut i = n;
    while i > 0 {
        let (len, code) = step[i];
        if len == 0 {
            tokens.push(Token {
                len: 0,
                value: px[i - 1],
            });
            i -= 1;
        } else {
            tokens.push(Token {
                len: u32::from(len),
                value: code,
            });
            i -= usize::from(len);
        }
    }
    tokens.reverse();
    tokens
}

/// The copies out of one position of the optimal parse.
struct Edges<'a> {
    cost: &'a mut [f64],
    step: &'a mut [(u16, u32)],
    lengths: &'a [f64],
    i: usize,
}

impl Edges<'_> {
    /// Offers copies of `code` from position `i`, at `from` bits plus the length's, to the
    /// positions they reach: every length up to [`RELAX_ALL`], then the longest of each
    /// length prefix code (the cheapest way to reach that far), then the whole copy.
    #[inline(always)]
    fn relax(&mut self, from: f64, len_max: usize, code: u32) {
        let i = self.i;
        let m = len_max.min(RELAX_ALL);
        let reach = &mut self.cost[i + 1..=i + m];
        let steps = &mut self.step[i + 1..=i + m];
        for (k, (c, s)) in reach.iter_mut().zip(steps.iter_mut()).enumerate() {
            let v = from + self.lengths[k + 1];
            if v < *c {
                *c = v;
                *s = ((k + 1) as u16, code);
            }
        }
        let mut len = RELAX_ALL;
        while len < len_max {
            // The last length of the next prefix code: 12, 16, 24, 32, 48, ...
            len = (len + (1 << (usize::BITS - 2 - len.leading_zeros()))).min(len_max);
            let v = from + self.lengths[len];
            if v < self.cost[i + len] {
                self.cost[i + len] = v;
                self.step[i + len] = (len as u16, code);
            }
        }
    }
}

/// LZ77 tokens and colour cache size for the main image: a greedy parse to learn symbol
/// costs, then `passes` cost-optimal parses, each costed from the one before.
fn backward_refs(px: &[u32], width: usize, chain: usize, passes: usize) -> (Vec<Token>, u32) {
    let near = Neighbours::new(px, width);
    let table = match_table(px, &near, chain);
    let mut tokens = greedy_refs(px, width, &near);
    let cache_bits = best_cache_bits(px, &tokens);
    for _ in 0..passes {
        let costs = SymbolCosts::new(&histogram_of(px, &tokens, cache_bits));
        tokens = optimal_refs(px, width, &near, &table, &costs, cache_bits);
    }
    (tokens, cache_bits)
}

// ---------------------------------------------------------------------------------------
// Colour cache.

/// Simulates every cache size over the tokens and returns the one with the fewest
/// estimated bits (0 = no cache). Whether a pixel is in the cache does not depend on the
/// parse (every pixel goes in), so each size is one pass over the pixels.
#[inline(never)]
fn best_cache_bits(px: &[u32], tokens: &[Token]) -> u32 {
    let mut literal = vec![false; px.len()];
    let mut pos = 0;
    for t in tokens {
        if t.len == 0 {
            literal[pos] = true;
        }
        pos += t.len.max(1) as usize;
    }
    let hashes: Vec<u32> = px.iter().map(|&p| cache_hash(p)).collect();
    let mut best = (f64::MAX, 0u32);
    // Caches of 2-8 entries win only on small images.
    let sizes = if px.len() > 1 << 16 { 4 } else { 1 };
    for b in std::iter::once(0).chain(sizes..=MAX_CACHE_BITS) {
        let mut green = vec![0u32; NUM_LITERALS + (1 << b)];
        let mut red = [0u32; 256];
        let mut blue = [0u32; 256];
        let mut alpha = [0u32; 256];
        let mut cache = vec![0u32; 1 << b];
        let shift = 32 - b;
        for ((&p, &h), &lit) in px.iter().zip(&hashes).zip(&literal) {
            let idx = if b == 0 { 0 } else { (h >> shift) as usize };
            if lit {
                if b > 0 && cache[idx] == p {
                    green[NUM_LITERALS + idx] += 1;
                    continue;
                }
                green[((p >> 8) & 0xff) as usize] += 1;
                red[((p >> 16) & 0xff) as usize] += 1;
                blue[(p & 0xff) as usize] += 1;
                alpha[(p >> 24) as usize] += 1;
            }
            cache[idx] = p;
        }
        let bits =
            entropy_bits(&green) + entropy_bits(&red) + entropy_bits(&blue) + entropy_bits(&alpha);
        if bits < best.0 {
            best = (bits, b);
        }
    }
    best.1
}

#[inline(always)]
fn cache_hash(argb: u32) -> u32 {
    0x1e35_a7bdu32.wrapping_mul(argb)
}

/// Shannon bits of a histogram plus a rough cost of describing its code.
fn entropy_bits(h: &[u32]) -> f64 {
    let mut total = 0u64;
    let mut sum = 0.0;
    let mut used = 0u32;
    for &c in h {
        if c > 0 {
            total += u64::from(c);
            sum += nlogn(c);
            used += 1;
        }
    }
    if used <= 1 {
        return 12.0;
    }
    nlogn_u64(total) - sum + 3.0 * f64::from(used) + 40.0
}

#[inline(always)]
fn nlogn(c: u32) -> f64 {
    let c = f64::from(c);
    c * c.log2()
}

#[inline(always)]
fn nlogn_u64(c: u64) -> f64 {
    let c = c as f64;
    if c > 0.0 { c * c.log2() } else { 0.0 }
}

// ---------------------------------------------------------------------------------------
// Histograms and their clustering into entropy-code groups.

#[derive(Clone)]
struct Histogram {
    /// green + length prefixes + cache, red, blue, alpha, distance; concatenated.
    counts: Vec<u32>,
    green_len: usize,
}

impl Histogram {
    fn new(cache_bits: u32) -> Self {
        let green_len =
            NUM_LITERALS + NUM_LENGTH_CODES + if cache_bits > 0 { 1 << cache_bits } else { 0 };
        Histogram {
            counts: vec![0; green_len + 3 * 256 + NUM_DISTANCE_CODES],
            green_len,
        }
    }

    fn parts(&self) -> [std::ops::Range<usize>; 5] {
        let g = self.green_len;
        [
            0..g,
            g..g + 256,
            g + 256..g + 512,
            g + 512..g + 768,
            g + 768..g + 768 + NUM_DISTANCE_CODES,
        ]
    }

    fn add(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
    }

    fn cost(&self) -> f64 {
        self.parts()
            .into_iter()
            .map(|r| entropy_bits(&self.counts[r]))
            .sum()
    }

    /// Estimated code lengths (bits per symbol) of each part, with unseen symbols costly.
    fn code_lengths(&self) -> Vec<f32> {
        let mut out = vec![0f32; self.counts.len()];
        for r in self.parts() {
            let total: u64 = self.counts[r.clone()].iter().map(|&c| u64::from(c)).sum();
            let t = total as f64 + 1.0;
            for i in r {
                let c = f64::from(self.counts[i]);
                out[i] = if c > 0.0 {
                    (t / c).log2() as f32
                } else {
                    (t.log2() + 4.0) as f32
                };
            }
        }
        out
    }
}

/// One histogram per tile of `1 << bits` pixels.
#[inline(never)]
fn tile_histograms(
    px: &[u32],
    width: usize,
    tokens: &[Token],
    cache_bits: u32,
    bits: u32,
) -> Vec<Histogram> {
    let tw = subsample(width, bits);
    let th = subsample(px.len() / width, bits);
    let mut hists = vec![Histogram::new(cache_bits); tw * th];
    let mut cache = vec![0u32; 1 << cache_bits];
    let mut pos = 0usize;
    for t in tokens {
        let (x, y) = (pos % width, pos / width);
        let h = &mut hists[(y >> bits) * tw + (x >> bits)];
        record(h, px, pos, t, &mut cache, cache_bits);
        pos += t.len.max(1) as usize;
    }
    hists
}

/// Counts the symbols of one token into `h`, updating the colour cache.
fn record(
    h: &mut Histogram,
    px: &[u32],
    pos: usize,
    t: &Token,
    cache: &mut [u32],
    cache_bits: u32,
) {
    let g = h.green_len;
    if t.len == 0 {
        let p = t.value;
        if cache_bits > 0 {
            let idx = (cache_hash(p) >> (32 - cache_bits)) as usize;
            if cache[idx] == p {
                h.counts[NUM_LITERALS + NUM_LENGTH_CODES + idx] += 1;
                return;
            }
            cache[idx] = p;
        }
        h.counts[((p >> 8) & 0xff) as usize] += 1;
        h.counts[g + ((p >> 16) & 0xff) as usize] += 1;
        h.counts[g + 256 + (p & 0xff) as usize] += 1;
        h.counts[g + 512 + (p >> 24) as usize] += 1;
    } else {
        let (lc, _, _) = prefix_encode(t.len);
        h.counts[NUM_LITERALS + lc as usize] += 1;
        let (dc, _, _) = prefix_encode(t.value);
        h.counts[g + 768 + dc as usize] += 1;
        if cache_bits > 0 {
            for &p in &px[pos..pos + t.len as usize] {
                cache[(cache_hash(p) >> (32 - cache_bits)) as usize] = p;
            }
        }
    }
}

/// Groups tiles into at most `max_groups` entropy codes. Returns each tile's group and the
/// groups' histograms.
#[inline(never)]
fn cluster(tiles: &[Histogram], max_groups: usize) -> (Vec<u32>, Vec<Histogram>) {
    let used: Vec<usize> = (0..tiles.len())
        .filter(|&i| tiles[i].counts.iter().any(|&c| c > 0))
        .collect();
    let mut assign = vec![0u32; tiles.len()];
    if used.len() <= 1 || max_groups <= 1 {
        let mut all = Histogram::new(0);
        all.counts = vec![0; tiles[0].counts.len()];
        all.green_len = tiles[0].green_len;
        for t in tiles {
            all.add(t);
        }
        return (assign, vec![all]);
    }
    // The tiles' non-zero counts: a tile of 1 << (2 * bits) pixels uses few symbols.
    let sparse: Vec<Vec<(u32, f32)>> = used
        .iter()
        .map(|&i| {
            tiles[i]
                .counts
                .iter()
                .enumerate()
                .filter(|&(_, &c)| c > 0)
                .map(|(s, &c)| (s as u32, c as f32))
                .collect()
        })
        .collect();
    // Seeds: tiles spread over the range of their bits per pixel, so that flat and busy
    // regions start in different groups.
    let mut by_cost: Vec<(f64, usize)> = used
        .iter()
        .map(|&i| {
            (
                tiles[i].cost() / f64::from(tiles[i].counts.iter().sum::<u32>().max(1)),
                i,
            )
        })
        .collect();
    by_cost.sort_by(|a, b| a.0.total_cmp(&b.0));
    let k = max_groups.min(used.len());
    let mut groups: Vec<Histogram> = (0..k)
        .map(|j| tiles[by_cost[(j * by_cost.len() + by_cost.len() / 2) / k].1].clone())
        .collect();
    // k-means on coding cost.
    for _round in 0..3 {
        let lens: Vec<Vec<f32>> = groups.iter().map(Histogram::code_lengths).collect();
        let mut next: Vec<Histogram> = groups
            .iter()
            .map(|g| {
                let mut h = g.clone();
                h.counts.iter_mut().for_each(|c| *c = 0);
                h
            })
            .collect();
        for (ui, &i) in used.iter().enumerate() {
            let mut best = (f32::MAX, 0usize);
            for (gi, l) in lens.iter().enumerate() {
                let c: f32 = sparse[ui].iter().map(|&(s, c)| c * l[s as usize]).sum();
                if c < best.0 {
                    best = (c, gi);
                }
            }
            assign[i] = best.1 as u32;
            next[best.1].add(&tiles[i]);
        }
        groups = next;
    }
    // Drop empty groups, then merge pairs while that saves bits.
    let mut alive: Vec<bool> = groups
        .iter()
        .map(|g| g.counts.iter().any(|&c| c > 0))
        .collect();
    let mut cost: Vec<f64> = groups.iter().map(Histogram::cost).collect();
    let k = groups.len();
    let merged_gain = |groups: &[Histogram], cost: &[f64], a: usize, b: usize| {
        let mut m = groups[a].clone();
        m.add(&groups[b]);
        cost[a] + cost[b] - m.cost()
    };
    let mut gain = vec![f64::MIN; k * k];
    for a in 0..k {
        for b in a + 1..k {
            if alive[a] && alive[b] {
                gain[a * k + b] = merged_gain(&groups, &cost, a, b);
            }
        }
    }
    loop {
        let mut best = (0.0f64, 0usize, 0usize);
        for a in 0..k {
            for b in a + 1..k {
                if gain[a * k + b] > best.0 {
                    best = (gain[a * k + b], a, b);
                }
            }
        }
        if best.0 <= 0.0 {
            break;
        }
        let (_, a, b) = best;
        let gb = groups[b].clone();
        groups[a].add(&gb);
        cost[a] = groups[a].cost();
        alive[b] = false;
        for g in assign.iter_mut() {
            if *g as usize == b {
                *g = a as u32;
            }
        }
        for (o, &live) in alive.iter().enumerate() {
            let (lo, hi) = (o.min(b), o.max(b));
            gain[lo * k + hi] = f64::MIN;
            if o != a && live {
                let (lo, hi) = (o.min(a), o.max(a));
                gain[lo * k + hi] = merged_gain(&groups, &cost, lo, hi);
            }
        }
    }
    // Renumber.
    let mut map = vec![u32::MAX; groups.len()];
    let mut out = Vec::new();
    for (i, g) in groups.into_iter().enumerate() {
        if alive[i] {
            map[i] = out.len() as u32;
            out.push(g);
        }
    }
    for g in &mut assign {
        *g = if map[*g as usize] == u32::MAX {
            0
        } else {
            map[*g as usize]
        };
    }
    (assign, out)
}

// ---------------------------------------------------------------------------------------
// Writing the coded image.

/// Writes an entropy-coded sub-image (transform data, histogram image): no colour cache, no
/// entropy-code groups.
fn encode_sub_image(w: &mut BitWriter, px: &[u32], width: usize) {
    let tokens = greedy_refs(px, width, &Neighbours::new(px, width));
    w.put(0, 1); // no colour cache
    let height = px.len() / width;
    encode_tokens(w, px, width, height, &tokens, 0, None);
}

/// Writes the colour cache bits, the entropy-code groups (when `settings` is given, for the
/// main image), the prefix codes and the tokens.
fn encode_tokens(
    w: &mut BitWriter,
    px: &[u32],
    width: usize,
    height: usize,
    tokens: &[Token],
    cache_bits: u32,
    settings: Option<Settings>,
) {
    let mut hist_bits = 0;
    let mut assign = vec![0u32];
    let groups;
    if let Some(s) = settings {
        if cache_bits > 0 {
            w.put(1, 1);
            w.put(cache_bits, 4);
        } else {
            w.put(0, 1);
        }
        hist_bits = s.histogram_bits;
        while subsample(width, hist_bits) * subsample(height, hist_bits) > 2600 {
            hist_bits += 1;
        }
        hist_bits = hist_bits.min(9);
        let tiles = tile_histograms(px, width, tokens, cache_bits, hist_bits);
        (assign, groups) = cluster(&tiles, s.max_groups);
        if groups.len() > 1 {
            w.put(1, 1);
            w.put(hist_bits - 2, 3);
            let image: Vec<u32> = assign.iter().map(|&g| (g << 8) | 0xff00_0000).collect();
            encode_sub_image(w, &image, subsample(width, hist_bits));
        } else {
            w.put(0, 1);
            hist_bits = 0;
            assign = vec![0];
        }
    } else {
        let mut h = Histogram::new(0);
        let mut cache = Vec::new();
        let mut pos = 0;
        for t in tokens {
            record(&mut h, px, pos, t, &mut cache, 0);
            pos += t.len.max(1) as usize;
        }
        groups = vec![h];
    }
    let codes: Vec<[HuffmanCode; 5]> = groups
        .iter()
        .map(|g| {
            let parts = g.parts();
            std::array::from_fn(|i| {
                let code = HuffmanCode::new(&g.counts[parts[i].clone()], 15);
                code.write(w);
                code
            })
        })
        .collect();
    let tw = if hist_bits > 0 {
        subsample(width, hist_bits)
    } else {
        0
    };
    let mut cache = vec![0u32; if cache_bits > 0 { 1 << cache_bits } else { 0 }];
    let mut pos = 0usize;
    for t in tokens {
        let group = if hist_bits > 0 {
            let (x, y) = (pos % width, pos / width);
            assign[(y >> hist_bits) * tw + (x >> hist_bits)] as usize
        } else {
            0
        };
        let [green, red, blue, alpha, dist] = &codes[group];
        if t.len == 0 {
            let p = t.value;
            pos += 1;
            if cache_bits > 0 {
                let idx = (cache_hash(p) >> (32 - cache_bits)) as usize;
                if cache[idx] == p {
                    green.put(w, NUM_LITERALS + NUM_LENGTH_CODES + idx);
                    continue;
                }
                cache[idx] = p;
            }
            green.put(w, ((p >> 8) & 0xff) as usize);
            red.put(w, ((p >> 16) & 0xff) as usize);
            blue.put(w, (p & 0xff) as usize);
            alpha.put(w, (p >> 24) as usize);
        } else {
            let (lc, lbits, lextra) = prefix_encode(t.len);
            green.put(w, NUM_LITERALS + lc as usize);
            w.put(lextra, lbits);
            let (dc, dbits, dextra) = prefix_encode(t.value);
            dist.put(w, dc as usize);
            w.put(dextra, dbits);
            if cache_bits > 0 {
                for &p in &px[pos..pos + t.len as usize] {
                    cache[(cache_hash(p) >> (32 - cache_bits)) as usize] = p;
                }
            }
            pos += t.len as usize;
        }
    }
}

/// A length or distance (≥ 1) as (prefix code, extra bit count, extra bits).
#[inline(always)]
fn prefix_encode(v: u32) -> (u32, u32, u32) {
    let v = v - 1;
    if v < 4 {
        return (v, 0, 0);
    }
    let high = 31 - v.leading_zeros();
    let second = (v >> (high - 1)) & 1;
    let extra = high - 1;
    (2 * high + second, extra, v & ((1 << extra) - 1))
}

// ---------------------------------------------------------------------------------------
// Prefix (Huffman) codes.

struct HuffmanCode {
    lengths: Vec<u8>,
    /// Bit-reversed codes, ready to be written LSB first.
    codes: Vec<u16>,
    /// Symbols in use (≤ 1 means every symbol costs 0 bits).
    used: usize,
}

impl HuffmanCode {
    fn new(counts: &[u32], max_len: u8) -> Self {
        let lengths = huffman_lengths(counts, max_len);
        let used = lengths.iter().filter(|&&l| l > 0).count();
        let codes = canonical_codes(&lengths);
        HuffmanCode {
            lengths,
            codes,
            used,
        }
    }

    #[inline(always)]
    fn put(&self, w: &mut BitWriter, symbol: usize) {
        if self.used > 1 {
            w.put(
                u32::from(self.codes[symbol]),
                u32::from(self.lengths[symbol]),
            );
        }
    }

    /// Writes the code's description.
    fn write(&self, w: &mut BitWriter) {
        let symbols: Vec<usize> = (0..self.lengths.len())
            .filter(|&i| self.lengths[i] > 0)
            .collect();
        if symbols.is_empty() || (symbols.len() <= 2 && symbols.iter().all(|&s| s < 256)) {
            // Simple code: one or two symbols.
            w.put(1, 1);
            let s0 = symbols.first().copied().unwrap_or(0);
            w.put((symbols.len().max(1) - 1) as u32, 1);
            if s0 < 2 {
                w.put(0, 1);
                w.put(s0 as u32, 1);
            } else {
                w.put(1, 1);
                w.put(s0 as u32, 8);
            }
            if let Some(&s1) = symbols.get(1) {
                w.put(s1 as u32, 8);
            }
            return;
        }
        w.put(0, 1);
        // Run-length tokens of the code lengths: (symbol 0-18, extra bits value).
        let mut tokens: Vec<(u8, u8)> = Vec::new();
        let lens = &self.lengths;
        let mut prev = 8u8;
        let mut i = 0;
        while i < lens.len() {
            let v = lens[i];
            let mut run = 1;
            while i + run < lens.len() && lens[i + run] == v {
                run += 1;
            }
            i += run;
            if v == 0 {
                while run >= 11 {
                    let r = run.min(138);
                    tokens.push((18, (r - 11) as u8));
                    run -= r;
                }
                if run >= 3 {
                    tokens.push((17, (run - 3) as u8));
                    run = 0;
                }
                for _ in 0..run {
                    tokens.push((0, 0));
                }
            } else {
                if v != prev {
                    tokens.push((v, 0));
                    run -= 1;
                    prev = v;
                }
                while run >= 3 {
                    let r = run.min(6);
                    tokens.push((16, (r - 3) as u8));
                    run -= r;
                }
                for _ in 0..run {
                    tokens.push((v, 0));
                }
            }
        }
        let mut counts = [0u32; CODE_LENGTH_CODES];
        for &(s, _) in &tokens {
            counts[usize::from(s)] += 1;
        }
        let cl = HuffmanCode::new(&counts, 7);
        let last = CODE_LENGTH_ORDER
            .iter()
            .rposition(|&s| cl.lengths[s] > 0)
            .unwrap_or(0);
        let num = (last + 1).max(4);
        w.put((num - 4) as u32, 4);
        for &s in &CODE_LENGTH_ORDER[..num] {
            w.put(u32::from(cl.lengths[s]), 3);
        }
        w.put(0, 1); // max_symbol = alphabet size
        for (s, extra) in tokens {
            cl.put(w, usize::from(s));
            match s {
                16 => w.put(u32::from(extra), 2),
                17 => w.put(u32::from(extra), 3),
                18 => w.put(u32::from(extra), 7),
                _ => {}
            }
        }
    }
}

/// Huffman code lengths of at most `max_len` bits; unused symbols get 0. A single used
/// symbol gets length 1.
fn huffman_lengths(counts: &[u32], max_len: u8) -> Vec<u8> {
    let mut lengths = vec![0u8; counts.len()];
    let mut leaves: Vec<(u64, usize)> = counts
        .iter()
        .enumerate()
        .filter(|&(_, &c)| c > 0)
        .map(|(s, &c)| (u64::from(c), s))
        .collect();
    match leaves.len() {
        0 => return lengths,
        1 => {
            lengths[leaves[0].1] = 1;
            return lengths;
        }
        _ => {}
    }
    let n = leaves.len();
    let mut floor = 1u64;
    loop {
        let mut sorted: Vec<(u64, usize)> =
            leaves.iter().map(|&(c, s)| (c.max(floor), s)).collect();
        sorted.sort_unstable();
        // Two-queue Huffman: leaves 0..n, internal nodes n..2n-1.
        let mut weight: Vec<u64> = sorted.iter().map(|&(c, _)| c).collect();
        weight.resize(2 * n - 1, 0);
        let mut parent = vec![0usize; 2 * n - 1];
        let (mut li, mut ii) = (0usize, n);
        for k in n..2 * n - 1 {
            let mut pick = |weight: &[u64]| {
                if li < n && (ii >= k || weight[li] <= weight[ii]) {
                    li += 1;
                    li - 1
                } else {
                    ii += 1;
                    ii - 1
                }
            };
            let a = pick(&weight);
            let b = pick(&weight);
            weight[k] = weight[a] + weight[b];
            parent[a] = k;
            parent[b] = k;
        }
        let mut depth = vec![0u8; 2 * n - 1];
        for k in (0..2 * n - 2).rev() {
            depth[k] = depth[parent[k]] + 1;
        }
        if depth[..n].iter().all(|&d| d <= max_len) {
            for (i, &(_, s)) in sorted.iter().enumerate() {
                lengths[s] = depth[i];
            }
            return lengths;
        }
        floor *= 2;
        leaves.iter_mut().for_each(|l| l.0 = l.0.max(floor));
    }
}

/// Canonical codes for `lengths`, bit-reversed for LSB-first writing.
fn canonical_codes(lengths: &[u8]) -> Vec<u16> {
    let mut bl_count = [0u16; 16];
    for &l in lengths {
        bl_count[usize::from(l)] += 1;
    }
    bl_count[0] = 0;
    let mut next = [0u16; 16];
    let mut code = 0u16;
    for bits in 1..16 {
        code = (code + bl_count[bits - 1]) << 1;
        next[bits] = code;
    }
    lengths
        .iter()
        .map(|&l| {
            if l == 0 {
                return 0;
            }
            let c = next[usize::from(l)];
            next[usize::from(l)] += 1;
            c.reverse_bits() >> (16 - l)
        })
        .collect()
}

// ---------------------------------------------------------------------------------------

struct BitWriter {
    buf: Vec<u8>,
    acc: u64,
    bits: u32,
}

impl BitWriter {
    fn with_capacity(n: usize) -> Self {
        BitWriter {
            buf: Vec::with_capacity(n),
            acc: 0,
            bits: 0,
        }
    }

    #[inline(always)]
    fn put(&mut self, value: u32, n: u32) {
        debug_assert!(n <= 32 && (n == 32 || value >> n == 0));
        self.acc |= u64::from(value) << self.bits;
        self.bits += n;
        if self.bits >= 32 {
            self.buf.extend_from_slice(&(self.acc as u32).to_le_bytes());
            self.acc >>= 32;
            self.bits -= 32;
        }
    }

    fn finish(mut self) -> Vec<u8> {
        while self.bits > 0 {
            self.buf.push(self.acc as u8);
            self.acc >>= 8;
            self.bits = self.bits.saturating_sub(8);
        }
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RGBA pixels as libwebp and image-webp decode `webp`; both must agree.
    fn decode_twice(webp: &[u8]) -> Vec<u8> {
        let img = webp::Decoder::new(webp)
            .decode()
            .expect("libwebp decodes it");
        let lib: Vec<u8> = if img.is_alpha() {
            img.to_vec()
        } else {
            img.chunks_exact(3)
                .flat_map(|p| [p[0], p[1], p[2], 255])
                .collect()
        };
        let mut d =
            image_webp::WebPDecoder::new(std::io::Cursor::new(webp)).expect("image-webp reads it");
        let mut buf = vec![0; d.output_buffer_size().expect("size")];
        d.read_image(&mut buf).expect("image-webp decodes it");
        let other = if d.has_alpha() {
            buf
        } else {
            buf.chunks_exact(3)
                .flat_map(|p| [p[0], p[1], p[2], 255])
                .collect()
        };
        assert_eq!(lib, other, "the two decoders disagree");
        lib
    }

    /// Encodes RGBA `pixels` at `effort` and checks both decoders give them back: exactly
    /// where visible, as transparent where alpha is 0.
    fn round_trip(pixels: &[u8], width: u32, height: u32, effort: u8) -> usize {
        let webp = encode(pixels, 4, width, height, Settings::for_effort(effort));
        let back = decode_twice(&webp);
        assert_eq!(back.len(), pixels.len());
        for (i, (a, b)) in pixels.chunks(4).zip(back.chunks(4)).enumerate() {
            if a[3] == 0 {
                assert_eq!(b[3], 0, "pixel {i} of {width}x{height} at effort {effort}");
            } else {
                assert_eq!(a, b, "pixel {i} of {width}x{height} at effort {effort}");
            }
        }
        webp.len()
    }

    /// A photograph-like picture: smooth gradients, noise and a few repeated patches.
    fn photo_like(width: u32, height: u32, alpha: bool) -> Vec<u8> {
        let mut seed = 0x2545_f491u32;
        let mut noise = move || {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            (seed % 7) as i32 - 3
        };
        let mut out = Vec::with_capacity((width * height * 4) as usize);
        for y in 0..height {
            for x in 0..width {
                let base = [
                    (x * 255 / width.max(1)) as i32,
                    (y * 255 / height.max(1)) as i32,
                    ((x + y) % 256) as i32,
                ];
                let pattern = (x / 8 + y / 8) % 5 == 0;
                for c in base {
                    let v = if pattern { c } else { c + noise() };
                    out.push(v.clamp(0, 255) as u8);
                }
                out.push(if !alpha {
                    255
                } else if (x + y) % 11 == 0 {
                    0
                } else {
                    (x * 7 + y) as u8 | 1
                });
            }
        }
        out
    }

    #[test]
    fn every_effort_round_trips_through_libwebp_and_image_webp() {
        let px = photo_like(173, 61, false);
        let mut sizes = Vec::new();
        for effort in 0..=9 {
            sizes.push(round_trip(&px, 173, 61, effort));
        }
        // A real compression: well under the 4 bytes per pixel of the input.
        assert!(sizes.iter().all(|&s| s < 173 * 61 * 2), "{sizes:?}");
    }

    #[test]
    fn alpha_is_kept_and_transparent_pixels_stay_transparent() {
        let px = photo_like(97, 45, true);
        for effort in [0, 4, 9] {
            round_trip(&px, 97, 45, effort);
        }
    }

    #[test]
    fn odd_and_tiny_sizes_round_trip() {
        for (w, h) in [(1, 1), (1, 37), (37, 1), (2, 2), (3, 5), (17, 33), (300, 2)] {
            let px = photo_like(w, h, true);
            round_trip(&px, w, h, 4);
        }
    }

    #[test]
    fn long_runs_and_repeats_use_copies() {
        // A flat picture wider than one copy's longest length, then stripes repeating a
        // row far back.
        let (w, h) = (5000u32, 12u32);
        let mut px = vec![0u8; (w * h * 4) as usize];
        for (i, p) in px.chunks_mut(4).enumerate() {
            let (x, y) = (i as u32 % w, i as u32 / w);
            let v = if y < 4 { 90 } else { ((x * 37) % 251) as u8 };
            p.copy_from_slice(&[v, v / 2, 255 - v, 255]);
        }
        let size = round_trip(&px, w, h, 4);
        // 60 000 pixels of which only 5 000 are unique.
        assert!(size < 12_000, "{size} bytes");
    }

    #[test]
    fn palettes_are_told_from_many_colours() {
        let few: Vec<u8> = (0..1000u32)
            .flat_map(|i| [(i % 200) as u8, 0, 0, 255])
            .collect();
        assert!(fits_palette(&few, 4));
        let many: Vec<u8> = (0..1000u32)
            .flat_map(|i| [(i % 256) as u8, (i / 256) as u8, 0])
            .collect();
        assert!(!fits_palette(&many, 3));
        // Fully transparent pixels count as one colour whatever their RGB.
        let clear: Vec<u8> = (0..1000u32)
            .flat_map(|i| [(i % 256) as u8, (i / 4) as u8, 7, 0])
            .collect();
        assert!(fits_palette(&clear, 4));
    }

    #[test]
    fn prefix_codes_round_trip_through_the_decoders_formula() {
        for v in 1..5000u32 {
            let (code, bits, extra) = prefix_encode(v);
            let decoded = if code < 4 {
                code + 1
            } else {
                let eb = (code - 2) >> 1;
                assert_eq!(eb, bits);
                ((2 + (code & 1)) << eb) + extra + 1
            };
            assert_eq!(decoded, v, "value {v}");
        }
    }

    #[test]
    fn plane_codes_map_back_to_their_distance() {
        for width in [1usize, 2, 7, 16, 1440] {
            let planes = PlaneCodes::new(width);
            for dist in 1..20 * width + 50 {
                let code = planes.code(dist);
                let back = if code > 120 {
                    code as usize - 120
                } else {
                    let (dx, dy) = DISTANCE_MAP[code as usize - 1];
                    (i64::from(dx) + i64::from(dy) * width as i64).max(1) as usize
                };
                assert_eq!(back, dist, "width {width} dist {dist}");
            }
        }
    }

    #[test]
    fn huffman_lengths_are_limited_and_complete() {
        // Fibonacci counts make the deepest unrestricted tree.
        let mut counts = vec![1u32, 1];
        while counts.len() < 40 {
            let n = counts.len();
            counts.push(counts[n - 1] + counts[n - 2]);
        }
        let lengths = huffman_lengths(&counts, 15);
        assert!(lengths.iter().all(|&l| (1..=15).contains(&l)));
        let kraft: f64 = lengths.iter().map(|&l| 0.5f64.powi(i32::from(l))).sum();
        assert!((kraft - 1.0).abs() < 1e-12, "kraft sum {kraft}");
    }
}
