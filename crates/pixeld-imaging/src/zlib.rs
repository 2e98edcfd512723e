//! A zlib stream (RFC 1950 around RFC 1951 deflate) for PNG image data, parsed for how
//! rendered images repeat themselves.
//!
//! General-purpose compressors find matches through hash chains: at every byte they walk a
//! chain of earlier positions whose next few bytes hash alike. On a rendered card most of the
//! picture repeats *geometrically*: a 135° gradient is the row above shifted by one pixel, a
//! flat area is the pixel to the left, a vertical gradient or a straight edge is the pixel above.
//! So this parser tries those distances first — the last distance used, one pixel, and the row
//! above at the same pixel and one pixel either side — and one slot of a hash table for the
//! rest (repeated glyphs, logos), keeps the longest, and skips the whole match. Every match it
//! emits is checked byte by byte, so the output is exact whatever the data; only its size
//! depends on the data looking like a picture.
//!
//! Symbols are coded in dynamic-Huffman blocks (length-limited canonical codes, as RFC 1951
//! requires), a new block every [`BLOCK_SYMBOLS`] symbols so that the codes follow the image.

/// Deflate's shortest match is 3 bytes; 4 are needed for the first-word check, and a
/// 3-byte match rarely beats three literals of pixel data.
const MIN_MATCH: usize = 4;
const MAX_MATCH: usize = 258;
/// Deflate's window: no distance may exceed it.
const WINDOW: usize = 32 * 1024;
/// 64 Ki slots: on the bench card 16 bits gave 0.6 % fewer bytes than 14 at the same speed.
const HASH_BITS: u32 = 16;
/// Symbols per block. Smaller blocks follow changes in the picture more closely but each
/// carries its code tables (~60–100 bytes). On the bench card: 2^11 symbols 88 370 bytes,
/// 2^12 88 484, 2^13 89 447, 2^14 90 286, 2^15 91 171.
const BLOCK_SYMBOLS: usize = 1 << 12;
/// A match shorter than this is only taken if the next byte does not start a longer one
/// (one step of lazy matching); longer ones are taken at once. On the bench card: 16 → 32
/// saved 0.6 % of the bytes, always looking ahead 0.7 %.
const LAZY_BELOW: usize = 32;

/// Compresses PNG image data (rows of `pitch` bytes, each a filter-type byte followed by
/// pixels of `bpp` bytes) into a zlib stream. Correct for any `data`, `pitch` and `bpp`:
/// they only steer which distances are tried first.
pub(crate) fn compress(data: &[u8], pitch: usize, bpp: usize) -> Vec<u8> {
    let mut out = Bits::with_capacity(data.len() / 16 + 64);
    // CMF: deflate with a 32 KiB window; FLG: "fastest" level, no dictionary, check bits.
    out.bytes.extend_from_slice(&[0x78, 0x01]);
    let mut block = Block::new();
    let mut finished = false;
    parse(data, 0, pitch, bpp, |i, sym| {
        match sym {
            None => block.literal(data[i]),
            Some((len, dist)) => block.copy(len, dist),
        }
        if block.syms.len() >= BLOCK_SYMBOLS {
            finished = i + sym.map_or(1, |(len, _)| len) == data.len();
            block.write(&mut out, finished);
            block.clear();
        }
    });
    if !finished {
        block.write(&mut out, true);
    }
    let mut bytes = out.finish();
    bytes.extend_from_slice(&simd_adler32::adler32(&data).to_be_bytes());
    bytes
}

/// Compresses `data[start..end]` into raw deflate blocks, none of them final, that may copy
/// from anything in `data[..start]` within the window, and ends them on a byte boundary (with
/// an empty stored block when needed). Such spans, in order, make a whole deflate stream with
/// [`zlib_from_spans`]; a span depends only on the `WINDOW` bytes before it and on its own, so
/// it can be kept and reused wherever those bytes are the same.
pub(crate) fn compress_span(
    data: &[u8],
    start: usize,
    end: usize,
    pitch: usize,
    bpp: usize,
) -> Vec<u8> {
    if start >= end {
        return Vec::new();
    }
    let data = &data[..end];
    let mut out = Bits::with_capacity((end - start) / 16 + 64);
    let mut block = Block::new();
    parse(data, start, pitch, bpp, |i, sym| {
        match sym {
            None => block.literal(data[i]),
            Some((len, dist)) => block.copy(len, dist),
        }
        if block.syms.len() >= BLOCK_SYMBOLS {
            block.write(&mut out, false);
            block.clear();
        }
    });
    if !block.syms.is_empty() {
        block.write(&mut out, false);
    }
    out.align_with_stored_block();
    out.finish()
}

/// A zlib stream of `data` from spans of [`compress_span`] that cover it, in order: the
/// header, the spans, a final empty block and the Adler-32 of `data`.
pub(crate) fn zlib_from_spans<'a>(
    spans: impl IntoIterator<Item = &'a [u8]>,
    data: &[u8],
) -> Vec<u8> {
    let mut bytes = vec![0x78, 0x01];
    for span in spans {
        bytes.extend_from_slice(span);
    }
    // BFINAL = 1, BTYPE = 01 (fixed codes), then end-of-block, whose fixed code is 7 zero bits.
    let mut last = Bits::with_capacity(2);
    last.put(1, 1);
    last.put(1, 2);
    last.put(0, 7);
    bytes.extend_from_slice(&last.finish());
    bytes.extend_from_slice(&simd_adler32::adler32(&data).to_be_bytes());
    bytes
}

/// Parses `data[start..]` into literals and matches, greedily with one step of lazy matching,
/// and hands each to `emit` with its position: `None` for the literal `data[i]`, `Some((length,
/// distance))` for a copy. Copies may reach back before `start`, never past the end of `data`.
fn parse(
    data: &[u8],
    start: usize,
    pitch: usize,
    bpp: usize,
    mut emit: impl FnMut(usize, Option<(usize, usize)>),
) {
    let mut parser = Parser::new(data, pitch, bpp);
    parser.index(start.saturating_sub(WINDOW), start);
    // The match found at `i` by the previous step's look-ahead, if it looked.
    let mut ahead = None;
    let mut i = start;
    while i < data.len() {
        let found = ahead.take().unwrap_or_else(|| parser.longest(i));
        let take = match found {
            Some((len, _)) if len < LAZY_BELOW && i + 1 < data.len() => {
                let next = parser.longest(i + 1);
                ahead = Some(next);
                if matches!(next, Some((n, _)) if n > len) {
                    None
                } else {
                    found
                }
            }
            found => found,
        };
        emit(i, take);
        match take {
            None => i += 1,
            Some((len, dist)) => {
                parser.last = dist;
                ahead = None;
                i += len;
            }
        }
    }
}

struct Parser<'a> {
    data: &'a [u8],
    /// The fixed candidate distances: one pixel left, and the row above one pixel right, at
    /// the same pixel and one pixel left. Zero where it does not apply.
    fixed: [usize; 4],
    /// The distance of the last match: runs broken by one different byte go on at it.
    last: usize,
    /// The last position (+1) whose first four bytes hashed to each slot; 0 for none.
    head: Vec<u32>,
}

impl<'a> Parser<'a> {
    fn new(data: &'a [u8], pitch: usize, bpp: usize) -> Parser<'a> {
        let pitch_ok = |d: usize| if d > 0 && d <= WINDOW { d } else { 0 };
        Parser {
            data,
            fixed: [
                pitch_ok(bpp),
                pitch_ok(pitch.saturating_sub(bpp)),
                pitch_ok(pitch),
                pitch_ok(pitch + bpp),
            ],
            last: 0,
            head: vec![0; 1 << HASH_BITS],
        }
    }

    /// Records every position in `from..to` in the hash table, later ones last: a span
    /// parsed from `to` on then finds the repeats before it, as one parse from the start
    /// would have.
    fn index(&mut self, from: usize, to: usize) {
        let end = to.min(self.data.len().saturating_sub(3));
        for i in from..end {
            let word = u32::from_le_bytes(self.data[i..i + 4].try_into().expect("4 bytes"));
            self.head[slot(word)] = (i + 1) as u32;
        }
    }

    /// The longest match at `i` among the candidate distances, as (length, distance), if one
    /// is at least [`MIN_MATCH`] long. Records `i` in the hash table.
    fn longest(&mut self, i: usize) -> Option<(usize, usize)> {
        let data = self.data;
        let limit = MAX_MATCH.min(data.len() - i);
        if limit < MIN_MATCH {
            return None;
        }
        let word = u32::from_le_bytes(data[i..i + 4].try_into().expect("4 bytes"));
        let mut best = (0, 0);
        for dist in [
            self.last,
            self.fixed[0],
            self.fixed[1],
            self.fixed[2],
            self.fixed[3],
        ] {
            best = extend(data, i, word, limit, dist, best);
            if best.0 == limit {
                break;
            }
        }
        let slot = slot(word);
        // The hash table is read only when the picture's own distances fell short: in a
        // gradient they rarely do, and the table's cache misses are most of a lookup.
        if best.0 < limit {
            // Slots hold position + 1 of an earlier byte, so 1..=i.
            let hashed = self.head[slot] as usize;
            if hashed > 0 && hashed <= i {
                best = extend(data, i, word, limit, i + 1 - hashed, best);
            }
        }
        self.head[slot] = (i + 1) as u32;
        (best.0 >= MIN_MATCH).then_some(best)
    }
}

/// The hash-table slot of the four bytes `word`.
#[inline(always)]
fn slot(word: u32) -> usize {
    (word.wrapping_mul(0x9E37_79B1) >> (32 - HASH_BITS)) as usize
}

/// The longer of `best` and the match at distance `dist` from `i` (whose first four bytes are
/// `word`), at most `limit` long; `best` if `dist` is out of reach or no better.
#[inline(always)]
fn extend(
    data: &[u8],
    i: usize,
    word: u32,
    limit: usize,
    dist: usize,
    best: (usize, usize),
) -> (usize, usize) {
    if dist == 0 || dist > i || dist > WINDOW {
        return best;
    }
    let from = i - dist;
    // Only a match longer than the best so far matters: check the byte that would make it
    // longer before the first word. (A candidate equal to an earlier one fails here or at the
    // first word.)
    if best.0 > 0 && data[from + best.0] != data[i + best.0] {
        return best;
    }
    if u32::from_le_bytes(data[from..from + 4].try_into().expect("4 bytes")) != word {
        return best;
    }
    let len = 4 + common_prefix(&data[from + 4..], &data[i + 4..i + limit]);
    if len > best.0 { (len, dist) } else { best }
}

/// How many leading bytes of `b` equal those of `a` (`a` at least as long as `b`): 32 bytes at
/// a time (fixed-size array comparisons compile to vector compares), then eight.
fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    let mut n = 0;
    for (x, y) in a.chunks_exact(32).zip(b.chunks_exact(32)) {
        let x: &[u8; 32] = x.try_into().expect("32 bytes");
        let y: &[u8; 32] = y.try_into().expect("32 bytes");
        if x != y {
            break;
        }
        n += 32;
    }
    for (x, y) in a[n..].chunks_exact(8).zip(b[n..].chunks_exact(8)) {
        let x = u64::from_le_bytes(x.try_into().expect("8 bytes"));
        let y = u64::from_le_bytes(y.try_into().expect("8 bytes"));
        let diff = x ^ y;
        if diff != 0 {
            return n + (diff.trailing_zeros() / 8) as usize;
        }
        n += 8;
    }
    n + a[n..]
        .iter()
        .zip(&b[n..])
        .take_while(|(x, y)| x == y)
        .count()
}

/// Literal/length symbols (0–255 bytes, 256 end of block, 257–285 lengths) and distance
/// symbols (0–29).
const LITLEN: usize = 286;
const DIST: usize = 30;
const END: usize = 256;

/// Deflate's length codes: base length and extra bits of symbols 257–285.
const LEN_BASE: [u16; 29] = [
    3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131,
    163, 195, 227, 258,
];
const LEN_EXTRA: [u8; 29] = [
    0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0,
];
/// Deflate's distance codes: base distance and extra bits of symbols 0–29.
const DIST_BASE: [u16; 30] = [
    1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537,
    2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577,
];
const DIST_EXTRA: [u8; 30] = [
    0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13,
    13,
];

/// The length code (0–28, symbol minus 257) of each match length minus 3.
const LEN_CODE: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut code = 0;
    while code < 28 {
        let base = LEN_BASE[code] as usize - 3;
        let mut k = 0;
        while k < 1 << LEN_EXTRA[code] {
            table[base + k] = code as u8;
            k += 1;
        }
        code += 1;
    }
    // 258 has its own code (284 would cover it with 5 extra bits, but may not).
    table[255] = 28;
    table
};

/// The distance code (0–29) of a distance (1–32768): two codes per power of two from 5 on.
fn dist_code(dist: usize) -> usize {
    let x = dist - 1;
    if x < 4 {
        x
    } else {
        let log = (usize::BITS - 1 - x.leading_zeros()) as usize;
        2 * log + ((x >> (log - 1)) & 1)
    }
}

/// A match or a literal; `dist` 0 means the literal byte `len`.
#[derive(Clone, Copy)]
struct Sym {
    len: u16,
    dist: u16,
}

struct Block {
    syms: Vec<Sym>,
    litlen: [u32; LITLEN],
    dist: [u32; DIST],
}

impl Block {
    fn new() -> Block {
        Block {
            syms: Vec::with_capacity(BLOCK_SYMBOLS),
            litlen: [0; LITLEN],
            dist: [0; DIST],
        }
    }

    fn clear(&mut self) {
        self.syms.clear();
        self.litlen = [0; LITLEN];
        self.dist = [0; DIST];
    }

    fn literal(&mut self, byte: u8) {
        self.litlen[byte as usize] += 1;
        self.syms.push(Sym {
            len: u16::from(byte),
            dist: 0,
        });
    }

    fn copy(&mut self, len: usize, dist: usize) {
        self.litlen[257 + LEN_CODE[len - 3] as usize] += 1;
        self.dist[dist_code(dist)] += 1;
        self.syms.push(Sym {
            len: len as u16,
            dist: dist as u16,
        });
    }

    /// Writes the block with its own dynamic Huffman codes.
    fn write(&mut self, out: &mut Bits, last: bool) {
        self.litlen[END] += 1;
        let lit = Code::new(&self.litlen, 15);
        let dist = Code::new(&self.dist, 15);

        // The two code-length sequences are one sequence for the run-length coding (RFC 1951
        // 3.2.7), each trimmed of trailing zeros to its minimum count.
        let nlit = trimmed(&lit.lens, 257);
        let ndist = trimmed(&dist.lens, 1);
        let lens: Vec<u8> = lit.lens[..nlit]
            .iter()
            .chain(&dist.lens[..ndist])
            .copied()
            .collect();
        let runs = run_lengths(&lens);
        let mut freq = [0u32; 19];
        for &(sym, _) in &runs {
            freq[sym as usize] += 1;
        }
        let clen = Code::new(&freq, 7);
        const ORDER: [usize; 19] = [
            16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15,
        ];
        let nclen = ORDER
            .iter()
            .rposition(|&s| clen.lens[s] != 0)
            .map_or(4, |p| (p + 1).max(4));

        out.put(u32::from(last), 1);
        out.put(2, 2);
        out.put((nlit - 257) as u32, 5);
        out.put((ndist - 1) as u32, 5);
        out.put((nclen - 4) as u32, 4);
        for &s in &ORDER[..nclen] {
            out.put(u32::from(clen.lens[s]), 3);
        }
        for &(sym, extra) in &runs {
            clen.put(out, sym as usize);
            match sym {
                16 => out.put(u32::from(extra), 2),
                17 => out.put(u32::from(extra), 3),
                18 => out.put(u32::from(extra), 7),
                _ => {}
            }
        }

        for s in &self.syms {
            if s.dist == 0 {
                lit.put(out, s.len as usize);
            } else {
                let (len, d) = (s.len as usize, s.dist as usize);
                let lc = LEN_CODE[len - 3] as usize;
                let dc = dist_code(d);
                // Each code with its extra bits in one write (at most 15 + 5 and 15 + 13 bits).
                let (code, bits) = lit.get(257 + lc);
                out.put(
                    code | ((len - LEN_BASE[lc] as usize) as u32) << bits,
                    bits + u32::from(LEN_EXTRA[lc]),
                );
                let (code, bits) = dist.get(dc);
                out.put(
                    code | ((d - DIST_BASE[dc] as usize) as u32) << bits,
                    bits + u32::from(DIST_EXTRA[dc]),
                );
            }
        }
        lit.put(out, END);
    }
}

/// How many of `lens` to send: up to the last non-zero one, at least `min`.
fn trimmed(lens: &[u8], min: usize) -> usize {
    lens.iter()
        .rposition(|&l| l != 0)
        .map_or(min, |p| (p + 1).max(min))
}

/// Run-length codes of a code-length sequence as (symbol 0–18, extra-bits value): 16 repeats
/// the previous length 3–6 times, 17 and 18 write 3–10 and 11–138 zeros.
fn run_lengths(lens: &[u8]) -> Vec<(u8, u8)> {
    let mut runs = Vec::with_capacity(lens.len());
    let mut i = 0;
    while i < lens.len() {
        let l = lens[i];
        let run = lens[i..].iter().take_while(|&&x| x == l).count();
        if l == 0 {
            let mut left = run;
            while left >= 11 {
                let n = left.min(138);
                runs.push((18, (n - 11) as u8));
                left -= n;
            }
            if left >= 3 {
                runs.push((17, (left - 3) as u8));
                left = 0;
            }
            runs.extend(std::iter::repeat_n((0, 0), left));
        } else {
            runs.push((l, 0));
            let mut left = run - 1;
            while left >= 3 {
                let n = left.min(6);
                runs.push((16, (n - 3) as u8));
                left -= n;
            }
            runs.extend(std::iter::repeat_n((l, 0), left));
        }
        i += run;
    }
    runs
}

/// A canonical Huffman code: each symbol's length and its code, bit-reversed for deflate's
/// least-significant-bit-first packing.
struct Code {
    lens: Vec<u8>,
    codes: Vec<u16>,
}

impl Code {
    /// The optimal code for `freq` with no code longer than `limit` bits. Complete whenever two
    /// or more symbols occur; with fewer, the one used (if any) and the lowest other symbol
    /// get one bit each, so that decoders that insist on a complete code accept it.
    fn new(freq: &[u32], limit: u8) -> Code {
        let n = freq.len();
        let mut lens = vec![0u8; n];
        let mut used: Vec<(u32, usize)> = freq
            .iter()
            .enumerate()
            .filter(|&(_, &f)| f > 0)
            .map(|(s, &f)| (f, s))
            .collect();
        if used.len() < 2 {
            // The one symbol used (if any) and the lowest other.
            let one = used.first().map_or(0, |&(_, s)| s);
            lens[one] = 1;
            lens[usize::from(one == 0)] = 1;
        } else {
            used.sort_unstable();
            let depths = minimum_redundancy(used.iter().map(|&(f, _)| f).collect());
            // Depths fall as frequency rises; move the deepest codes up to the limit and
            // restore the Kraft sum by lengthening the shallowest codes below it.
            let mut count = vec![0u32; usize::from(limit) + 1];
            for &d in &depths {
                count[(d as usize).min(usize::from(limit))] += 1;
            }
            let limit = usize::from(limit);
            let mut kraft: u64 = (1..=limit)
                .map(|l| u64::from(count[l]) << (limit - l))
                .sum();
            while kraft > 1 << limit {
                count[limit] -= 1;
                let l = (1..limit)
                    .rev()
                    .find(|&l| count[l] != 0)
                    .expect("a shorter code to lengthen");
                count[l] -= 1;
                count[l + 1] += 2;
                kraft -= 1;
            }
            // The rarest symbols take the longest codes.
            let mut rarest = used.iter();
            for l in (1..=limit).rev() {
                for _ in 0..count[l] {
                    let &(_, s) = rarest.next().expect("as many lengths as symbols");
                    lens[s] = l as u8;
                }
            }
        }

        let mut per_len = [0u16; 16];
        for &l in &lens {
            per_len[l as usize] += 1;
        }
        per_len[0] = 0;
        let mut next = [0u16; 16];
        let mut code = 0u16;
        for l in 1..16 {
            code = (code + per_len[l - 1]) << 1;
            next[l] = code;
        }
        let codes = lens
            .iter()
            .map(|&l| {
                if l == 0 {
                    return 0;
                }
                let c = next[l as usize];
                next[l as usize] += 1;
                c.reverse_bits() >> (16 - l)
            })
            .collect();
        Code { lens, codes }
    }

    fn put(&self, out: &mut Bits, sym: usize) {
        let (code, bits) = self.get(sym);
        out.put(code, bits);
    }

    /// The code of `sym` and its length in bits.
    fn get(&self, sym: usize) -> (u32, u32) {
        (u32::from(self.codes[sym]), u32::from(self.lens[sym]))
    }
}

/// Huffman code lengths for frequencies sorted in ascending order, in the same order, by
/// Moffat and Katajainen's in-place algorithm ("In-place calculation of minimum-redundancy
/// codes", 1995). Needs at least two frequencies.
fn minimum_redundancy(mut a: Vec<u32>) -> Vec<u32> {
    let n = a.len();
    // Phase 1: build the tree; a[i] becomes the weight of internal node i, then its parent.
    a[0] += a[1];
    let (mut root, mut leaf) = (0, 2);
    for next in 1..n - 1 {
        if leaf >= n || a[root] < a[leaf] {
            a[next] = a[root];
            a[root] = next as u32;
            root += 1;
        } else {
            a[next] = a[leaf];
            leaf += 1;
        }
        if leaf >= n || (root < next && a[root] < a[leaf]) {
            a[next] += a[root];
            a[root] = next as u32;
            root += 1;
        } else {
            a[next] += a[leaf];
            leaf += 1;
        }
    }
    // Phase 2: internal node depths.
    a[n - 2] = 0;
    for next in (0..n - 2).rev() {
        a[next] = a[a[next] as usize] + 1;
    }
    // Phase 3: leaf depths, filled in from the most frequent leaf.
    let (mut avail, mut used, mut depth) = (1i64, 0i64, 0u32);
    let mut root = n as i64 - 2;
    let mut next = n as i64 - 1;
    while avail > 0 {
        while root >= 0 && a[root as usize] == depth {
            used += 1;
            root -= 1;
        }
        while avail > used {
            a[next as usize] = depth;
            next -= 1;
            avail -= 1;
        }
        avail = 2 * used;
        depth += 1;
        used = 0;
    }
    a
}

/// Bits packed least-significant first, as deflate wants them.
struct Bits {
    bytes: Vec<u8>,
    acc: u64,
    n: u32,
}

impl Bits {
    fn with_capacity(n: usize) -> Bits {
        Bits {
            bytes: Vec::with_capacity(n),
            acc: 0,
            n: 0,
        }
    }

    /// Appends the low `count` (≤ 32) bits of `bits`.
    fn put(&mut self, bits: u32, count: u32) {
        self.acc |= u64::from(bits) << self.n;
        self.n += count;
        if self.n >= 32 {
            self.bytes
                .extend_from_slice(&(self.acc as u32).to_le_bytes());
            self.acc >>= 32;
            self.n -= 32;
        }
    }

    /// Ends the bits on a byte boundary: nothing when they are on one, else an empty stored
    /// block (not final), whose header is followed by padding to the boundary and its
    /// lengths (0 and its complement).
    fn align_with_stored_block(&mut self) {
        if self.n.is_multiple_of(8) {
            return;
        }
        self.put(0, 3);
        let pad = (8 - self.n % 8) % 8;
        self.put(0, pad);
        self.put(0, 16);
        self.put(0xFFFF, 16);
    }

    /// The bytes, the last one padded with zero bits.
    fn finish(mut self) -> Vec<u8> {
        let tail = self.n.div_ceil(8) as usize;
        self.bytes
            .extend_from_slice(&self.acc.to_le_bytes()[..tail]);
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    /// Decompresses with flate2 (miniz_oxide), a decoder written apart from this encoder.
    fn inflate(z: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::ZlibDecoder::new(z)
            .read_to_end(&mut out)
            .expect("a valid zlib stream with a matching Adler-32");
        out
    }

    fn round_trip(data: &[u8], pitch: usize, bpp: usize) -> usize {
        let z = compress(data, pitch, bpp);
        assert_eq!(inflate(&z), data, "pitch {pitch} bpp {bpp}");
        z.len()
    }

    #[test]
    fn length_and_distance_codes_match_rfc_1951() {
        for len in 3..=258 {
            let c = LEN_CODE[len - 3] as usize;
            assert!(len >= LEN_BASE[c] as usize, "{len}");
            assert!(len - (LEN_BASE[c] as usize) < 1 << LEN_EXTRA[c], "{len}");
        }
        assert_eq!(LEN_CODE[258 - 3], 28);
        assert_eq!(LEN_CODE[257 - 3], 27);
        for dist in 1..=WINDOW {
            let c = dist_code(dist);
            assert!(dist >= DIST_BASE[c] as usize, "{dist}");
            assert!(
                dist - (DIST_BASE[c] as usize) < 1 << DIST_EXTRA[c],
                "{dist}"
            );
        }
    }

    #[test]
    fn huffman_codes_are_complete_prefix_codes_within_the_limit() {
        // Fibonacci frequencies give the deepest unlimited tree.
        let mut fib = vec![1u32, 1];
        while fib.len() < 30 {
            let k = fib.len();
            fib.push(fib[k - 1] + fib[k - 2]);
        }
        for (freq, limit) in [
            (fib.clone(), 15u8),
            (fib[..19].to_vec(), 7),
            (vec![5, 0, 0, 9, 1, 0, 200], 15),
            (vec![0, 7, 0], 15),
            (vec![0; 30], 15),
            ((1..=286).collect(), 15),
        ] {
            let code = Code::new(&freq, limit);
            let used: Vec<usize> = (0..freq.len()).filter(|&s| code.lens[s] > 0).collect();
            assert!(used.len() >= 2);
            assert!(code.lens.iter().all(|&l| l <= limit));
            let kraft: f64 = used.iter().map(|&s| 0.5f64.powi(code.lens[s].into())).sum();
            assert_eq!(kraft, 1.0, "{freq:?}");
            for &s in &used {
                assert!(freq[s] > 0 || used.len() == 2, "{freq:?}");
            }
        }
    }

    #[test]
    fn spans_cut_anywhere_make_one_stream_that_comes_back_exactly() {
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut random = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let noise: Vec<u8> = (0..60_000).map(|_| random() as u8).collect();
        // Rows that repeat the row above shifted by a pixel, then noise, then the rows again,
        // so that spans copy from before their start, across the window and not.
        let rows: Vec<u8> = (0..60_000usize)
            .map(|i| ((i % 1201) / 3 + i / 1201) as u8)
            .collect();
        let data: Vec<u8> = rows.iter().chain(&noise).chain(&rows).copied().collect();
        for cuts in [
            vec![0, data.len()],
            vec![0, 1, 2, 3, data.len()],
            vec![0, 1201, 1201 * 16, 60_000, 60_001, 130_000, data.len()],
            vec![0, 77_777, 77_777, data.len() - 1, data.len()],
        ] {
            let spans: Vec<Vec<u8>> = cuts
                .windows(2)
                .map(|w| compress_span(&data, w[0], w[1], 1201, 3))
                .collect();
            let z = zlib_from_spans(spans.iter().map(Vec::as_slice), &data);
            assert_eq!(inflate(&z), data, "cuts {cuts:?}");
        }
        // An empty picture is a valid empty stream.
        assert!(inflate(&zlib_from_spans([], &[])).is_empty());
    }

    #[test]
    fn any_bytes_come_back_exactly() {
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut random = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let noise: Vec<u8> = (0..100_000).map(|_| random() as u8).collect();
        let runs: Vec<u8> = (0..100_000).map(|i| (i / 700) as u8).collect();
        let mixed: Vec<u8> = (0..200_000)
            .map(|i: usize| {
                if (i / 3000).is_multiple_of(2) {
                    noise[i % 100_000]
                } else {
                    (i % 7) as u8
                }
            })
            .collect();
        // Repeats further back than the window.
        let far: Vec<u8> = noise.iter().chain(&noise[..40_000]).copied().collect();
        for (data, pitch, bpp) in [
            (&[][..], 1, 1),
            (&[7][..], 1, 1),
            (&[1, 2, 3, 4, 1, 2, 3, 4, 1][..], 4, 4),
            (&noise[..], 301, 3),
            (&runs[..], 3601, 3),
            (&mixed[..], 4801, 4),
            (&far[..], 99_999, 1),
            (&runs[..], 70_000, 4),
        ] {
            round_trip(data, pitch, bpp);
        }
        // Every length and distance, over blocks, and nothing lost at each cut.
        for len in [3, 4, 5, 10, 11, 130, 257, 258, 259, 600] {
            let data: Vec<u8> = noise[..1000]
                .iter()
                .chain(&noise[..len])
                .chain(&noise[..BLOCK_SYMBOLS + 17])
                .copied()
                .collect();
            round_trip(&data, 1000, 3);
        }
    }

    #[test]
    fn a_diagonal_gradient_compresses_to_almost_nothing_and_noise_stays_its_size() {
        // Rows of a 135° gradient: each the one above shifted by one pixel.
        let (w, h, bpp) = (600, 300, 3);
        let pitch = w * bpp + 1;
        let mut data = Vec::with_capacity(pitch * h);
        for y in 0..h {
            data.push(0);
            for x in 0..w {
                let v = ((x + y) * 255 / 899) as u8;
                data.extend_from_slice(&[v, v / 2 + 20, 255 - v]);
            }
        }
        let size = round_trip(&data, pitch, bpp);
        assert!(size * 100 < data.len(), "{size} of {}", data.len());

        let mut state = 1u32;
        let noise: Vec<u8> = (0..50_000)
            .map(|_| {
                state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (state >> 24) as u8
            })
            .collect();
        let size = round_trip(&noise, 1001, 4);
        assert!(size < noise.len() + noise.len() / 50, "{size}");
    }
}
