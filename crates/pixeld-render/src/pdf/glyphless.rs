//! A TrueType font whose glyphs draw nothing, for the PDF's invisible text layer.
//!
//! PDF viewers want a font program behind every font they show text in, even text that is
//! never painted (rendering mode 3). This one has two empty glyphs — `.notdef` and the glyph
//! every character id maps to — half an em wide, with an 800/−200 ascent/descent so a
//! selection box spans the line box the text was laid out in. It is built here rather than
//! shipped as a file: about 500 bytes, the same for every document.

/// Units per em of the font (and of the PDF widths that go with it).
pub(crate) const UNITS_PER_EM: u16 = 1000;
/// The advance of every glyph, in font units.
pub(crate) const ADVANCE: u16 = 500;
/// Ascent above the baseline, in font units.
pub(crate) const ASCENT: i16 = 800;
/// Descent below the baseline (negative), in font units.
pub(crate) const DESCENT: i16 = -200;
/// The PostScript name of the font.
pub(crate) const NAME: &str = "GlyphLessFont";

/// The font program (an `sfnt` with `OS/2`, `cmap`, `glyf`, `head`, `hhea`, `hmtx`, `loca`,
/// `maxp`, `name` and `post`).
pub(crate) fn font() -> Vec<u8> {
    const GLYPHS: u16 = 2;
    let be16 = |v: u16| v.to_be_bytes();
    let mut tables: Vec<([u8; 4], Vec<u8>)> = Vec::new();

    // OS/2 version 4 (96 bytes): a regular weight, normal width font; embedding unrestricted.
    let mut os2 = Vec::new();
    for v in [4u16, ADVANCE, 400, 5, 0] {
        os2.extend(be16(v)); // version, xAvgCharWidth, usWeightClass, usWidthClass, fsType
    }
    os2.extend([0u8; 22]); // sub/superscript sizes and offsets, strikeout, family class
    os2.extend([0u8; 10]); // PANOSE
    os2.extend([0u8; 16]); // Unicode ranges
    os2.extend(*b"PXLD");
    os2.extend(be16(0x0040)); // fsSelection: REGULAR
    os2.extend(be16(0xFFFF)); // usFirstCharIndex (no characters mapped)
    os2.extend(be16(0));
    for v in [ASCENT, DESCENT, 0] {
        os2.extend(v.to_be_bytes()); // sTypoAscender, sTypoDescender, sTypoLineGap
    }
    os2.extend(be16(ASCENT as u16)); // usWinAscent
    os2.extend(be16((-DESCENT) as u16)); // usWinDescent
    os2.extend([0u8; 8]); // code page ranges
    for v in [0u16, 0, 0, 0x20, 1] {
        os2.extend(be16(v)); // sxHeight, sCapHeight, usDefaultChar, usBreakChar, usMaxContext
    }
    tables.push((*b"OS/2", os2));

    // cmap: one Windows Unicode BMP subtable (format 4) with only the closing segment, so no
    // character maps to a glyph: the PDF maps character ids to glyphs itself.
    let mut cmap = Vec::new();
    for v in [0u16, 1, 3, 1] {
        cmap.extend(be16(v)); // version, numTables, platform 3, encoding 1
    }
    cmap.extend(12u32.to_be_bytes()); // subtable offset
    for v in [4u16, 24, 0, 2, 2, 0, 0, 0xFFFF, 0, 0xFFFF, 1, 0] {
        // format, length, language, segCountX2, searchRange, entrySelector, rangeShift,
        // endCode, reservedPad, startCode, idDelta, idRangeOffset
        cmap.extend(be16(v));
    }
    tables.push((*b"cmap", cmap));

    // Both glyphs are empty: every `loca` offset is 0 and `glyf` holds only padding.
    tables.push((*b"glyf", vec![0; 4]));

    let mut head = Vec::new();
    head.extend(0x0001_0000u32.to_be_bytes()); // version
    head.extend(0x0001_0000u32.to_be_bytes()); // fontRevision
    head.extend(0u32.to_be_bytes()); // checksumAdjustment, filled in below
    head.extend(0x5F0F_3CF5u32.to_be_bytes()); // magic
    head.extend(be16(0b1011)); // flags: baseline at 0, lsb at 0, integer ppem
    head.extend(be16(UNITS_PER_EM));
    head.extend([0u8; 16]); // created, modified: fixed, so every document is the same
    for v in [0, DESCENT, ADVANCE as i16, ASCENT] {
        head.extend(v.to_be_bytes()); // xMin, yMin, xMax, yMax
    }
    for v in [0u16, 3, 2, 0, 0] {
        // macStyle, lowestRecPPEM, fontDirectionHint, indexToLocFormat (short), glyphDataFormat
        head.extend(be16(v));
    }
    tables.push((*b"head", head));

    let mut hhea = Vec::new();
    hhea.extend(0x0001_0000u32.to_be_bytes());
    for v in [ASCENT, DESCENT, 0] {
        hhea.extend(v.to_be_bytes()); // ascender, descender, lineGap
    }
    hhea.extend(be16(ADVANCE)); // advanceWidthMax
    for v in [0u16, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1] {
        // minLeftSideBearing, minRightSideBearing, xMaxExtent, caretSlopeRise, caretSlopeRun,
        // caretOffset, 4 × reserved, metricDataFormat, numberOfHMetrics
        hhea.extend(be16(v));
    }
    tables.push((*b"hhea", hhea));

    // One long metric (advance, lsb) shared by the second glyph, which adds only its lsb.
    let mut hmtx = Vec::new();
    for v in [ADVANCE, 0, 0] {
        hmtx.extend(be16(v));
    }
    tables.push((*b"hmtx", hmtx));

    tables.push((*b"loca", vec![0; 2 * (GLYPHS as usize + 1)]));

    let mut maxp = Vec::new();
    maxp.extend(0x0001_0000u32.to_be_bytes());
    maxp.extend(be16(GLYPHS));
    for v in [0u16, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0] {
        // maxPoints … maxComponentDepth; maxZones is 2
        maxp.extend(be16(v));
    }
    tables.push((*b"maxp", maxp));

    // name: family, subfamily, full name and PostScript name, in Windows English.
    let strings = [(1u16, NAME), (2, "Regular"), (4, NAME), (6, NAME)];
    let mut name = Vec::new();
    name.extend(be16(0));
    name.extend(be16(strings.len() as u16));
    name.extend(be16(6 + 12 * strings.len() as u16));
    let mut storage = Vec::new();
    for (id, s) in strings {
        let utf16: Vec<u8> = s.encode_utf16().flat_map(u16::to_be_bytes).collect();
        for v in [
            3u16,
            1,
            0x0409,
            id,
            utf16.len() as u16,
            storage.len() as u16,
        ] {
            name.extend(be16(v));
        }
        storage.extend(utf16);
    }
    name.extend(storage);
    tables.push((*b"name", name));

    // post version 3: no glyph names.
    let mut post = Vec::new();
    post.extend(0x0003_0000u32.to_be_bytes());
    post.extend([0u8; 28]);
    tables.push((*b"post", post));

    tables.sort_by_key(|t| t.0);
    assemble(&tables)
}

/// Writes the table directory and the tables, 4-byte aligned, with their checksums and the
/// whole-font checksum adjustment in `head`.
fn assemble(tables: &[([u8; 4], Vec<u8>)]) -> Vec<u8> {
    let n = tables.len() as u16;
    let pow2 = 1u16 << (15 - n.leading_zeros() as u16);
    let mut out = Vec::new();
    out.extend(0x0001_0000u32.to_be_bytes());
    for v in [
        n,
        pow2 * 16,
        pow2.trailing_zeros() as u16,
        n * 16 - pow2 * 16,
    ] {
        out.extend(v.to_be_bytes());
    }
    let mut offset = 12 + 16 * tables.len();
    let mut head_at = 0;
    for (tag, data) in tables {
        if tag == b"head" {
            head_at = offset;
        }
        out.extend(tag);
        out.extend(checksum(data).to_be_bytes());
        out.extend((offset as u32).to_be_bytes());
        out.extend((data.len() as u32).to_be_bytes());
        offset += data.len().next_multiple_of(4);
    }
    for (_, data) in tables {
        out.extend(data);
        out.resize(out.len().next_multiple_of(4), 0);
    }
    let adjustment = 0xB1B0_AFBAu32.wrapping_sub(checksum(&out));
    out[head_at + 8..head_at + 12].copy_from_slice(&adjustment.to_be_bytes());
    out
}

/// The sum of big-endian u32 words, the last one zero-padded.
fn checksum(data: &[u8]) -> u32 {
    data.chunks(4).fold(0u32, |sum, c| {
        let mut w = [0u8; 4];
        w[..c.len()].copy_from_slice(c);
        sum.wrapping_add(u32::from_be_bytes(w))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_font_has_a_valid_directory_and_checksums() {
        let f = font();
        assert_eq!(&f[..4], &[0, 1, 0, 0]);
        let n = u16::from_be_bytes([f[4], f[5]]) as usize;
        assert_eq!(n, 10);
        // searchRange, entrySelector, rangeShift for 10 tables.
        assert_eq!(&f[6..12], &[0, 128, 0, 3, 0, 32]);
        let mut tags = Vec::new();
        for i in 0..n {
            let r = &f[12 + 16 * i..28 + 16 * i];
            let (off, len) = (
                u32::from_be_bytes(r[8..12].try_into().unwrap()) as usize,
                u32::from_be_bytes(r[12..16].try_into().unwrap()) as usize,
            );
            assert_eq!(off % 4, 0);
            let mut data = f[off..off + len].to_vec();
            match &r[..4] {
                b"head" => {
                    data[8..12].fill(0);
                    assert_eq!(len, 54);
                }
                b"OS/2" => assert_eq!(len, 96),
                b"hhea" | b"maxp" | b"post" => {
                    assert_eq!(len, if &r[..4] == b"hhea" { 36 } else { 32 })
                }
                _ => {}
            }
            assert_eq!(
                checksum(&data).to_be_bytes(),
                r[4..8],
                "{:?}",
                std::str::from_utf8(&r[..4])
            );
            tags.push(r[..4].to_vec());
        }
        assert!(tags.windows(2).all(|w| w[0] < w[1]), "tags are sorted");
        assert_eq!(checksum(&f), 0xB1B0_AFBA, "whole-font checksum");
    }
}
