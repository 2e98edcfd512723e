//! QR codes and barcodes, drawn as SVG so they stay sharp at any size (and as vectors in PDF).

use std::fmt::Write as _;

use barcoders::sym::{code128::Code128, ean13::EAN13};
use qrcode::{EcLevel, QrCode};

use crate::template::{QrLevel, Symbology};

/// The bars of a barcode: one byte per module, 1 = bar.
pub(crate) fn barcode_modules(symbology: Symbology, data: &str) -> Result<Vec<u8>, String> {
    let digits = |n: usize| {
        if data.len() == n && data.bytes().all(|b| b.is_ascii_digit()) {
            Ok(())
        } else {
            Err(format!(
                "{} takes {n} digits (the check digit is added)",
                match symbology {
                    Symbology::Ean13 => "EAN-13",
                    _ => "UPC-A",
                }
            ))
        }
    };
    match symbology {
        Symbology::Code128 => {
            if data.is_empty() || data.len() > 80 || !data.bytes().all(|b| (32..127).contains(&b)) {
                return Err("Code 128 takes 1–80 printable ASCII characters".to_owned());
            }
            // Character set B covers all printable ASCII.
            Code128::new(format!("\u{0181}{data}"))
                .map(|c| c.encode())
                .map_err(|e| format!("cannot encode as Code 128: {e}"))
        }
        Symbology::Ean13 => {
            digits(12)?;
            EAN13::new(data)
                .map(|c| c.encode())
                .map_err(|e| format!("cannot encode as EAN-13: {e}"))
        }
        Symbology::UpcA => {
            digits(11)?;
            // A UPC-A symbol is the EAN-13 symbol of the same number with a leading zero.
            EAN13::new(format!("0{data}"))
                .map(|c| c.encode())
                .map_err(|e| format!("cannot encode as UPC-A: {e}"))
        }
    }
}

/// A barcode as SVG that stretches to its box.
pub(crate) fn barcode_svg(
    symbology: Symbology,
    data: &str,
    color: &str,
    background: Option<&str>,
) -> Result<String, String> {
    let modules = barcode_modules(symbology, data)?;
    let quiet = 10;
    let n = modules.len() + 2 * quiet;
    let mut d = String::new();
    let mut i = 0;
    while i < modules.len() {
        if modules[i] == 1 {
            let start = i;
            while i < modules.len() && modules[i] == 1 {
                i += 1;
            }
            let _ = write!(d, "M{} 0h{}v1h-{}z", start + quiet, i - start, i - start);
        } else {
            i += 1;
        }
    }
    Ok(svg_doc(n, 1, &d, color, background, true))
}

/// A QR code as SVG.
pub(crate) fn qr_svg(
    data: &str,
    level: QrLevel,
    margin: u32,
    color: &str,
    background: Option<&str>,
) -> Result<String, String> {
    let level = match level {
        QrLevel::L => EcLevel::L,
        QrLevel::M => EcLevel::M,
        QrLevel::Q => EcLevel::Q,
        QrLevel::H => EcLevel::H,
    };
    let code = QrCode::with_error_correction_level(data.as_bytes(), level)
        .map_err(|e| format!("cannot encode as a QR code: {e}"))?;
    let w = code.width();
    let m = margin as usize;
    let mut d = String::new();
    for (i, c) in code.to_colors().into_iter().enumerate() {
        if c == qrcode::Color::Dark {
            let _ = write!(d, "M{} {}h1v1h-1z", i % w + m, i / w + m);
        }
    }
    Ok(svg_doc(w + 2 * m, w + 2 * m, &d, color, background, false))
}

fn svg_doc(
    w: usize,
    h: usize,
    d: &str,
    color: &str,
    background: Option<&str>,
    stretch: bool,
) -> String {
    // Bars stretch to any box; a QR code keeps its square, centred.
    let aspect = if stretch { "none" } else { "xMidYMid meet" };
    let bg = background.map_or(String::new(), |b| {
        format!(r#"<rect width="{w}" height="{h}" fill="{b}"/>"#)
    });
    format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" preserveAspectRatio="{aspect}" shape-rendering="crispEdges">{bg}<path fill="{color}" d="{d}"/></svg>"#
    )
}
