//! Invoices and receipts: one per paid order, numbered per organisation without gaps, with the
//! seller's and the buyer's details, the line, tax and total; drawn as a PDF by pixeld's own
//! render engine and emailed to the buyer as a receipt. Financial records: kept 7 years.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::billing::Order;
use crate::ledger::Applied;
use crate::mail::{Attachment, Message};
use crate::page::{Page, PageRequest};
use crate::principal::Principal;
use crate::roles::Permission;
use crate::tokens::Scope;
use crate::{Error, Pixeld, Result};

/// The invoice layout: a template of pixeld's own render engine (A4 at 72 dpi).
const INVOICE_TEMPLATE: &str = include_str!("../data/invoice-v1.json");

/// Who sells, and the tax the prices include.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InvoiceSettings {
    /// The seller's name, address lines, tax id and contact, as printed.
    pub seller: Party,
    /// Printed before the number, e.g. `PXD` gives `PXD-000042`.
    pub prefix: String,
    /// Name of the tax the prices include (`VAT`, `GST`, `Sales tax`).
    pub tax_name: String,
    /// Its rate in basis points (2000 = 20 %); prices include it.
    pub tax_rate_bps: u32,
}

/// A seller or a buyer as printed on an invoice.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Party {
    /// Company or person.
    pub name: String,
    /// Address lines.
    #[serde(default)]
    pub address: Vec<String>,
    /// Country (ISO 3166-1 alpha-2).
    #[serde(default)]
    pub country: Option<String>,
    /// VAT/GST/tax number.
    #[serde(default)]
    pub tax_id: Option<String>,
    /// Where receipts go.
    #[serde(default)]
    pub email: Option<String>,
}

/// An organisation's billing details, printed on its invoices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BillingProfile {
    /// The organisation.
    pub org_id: Uuid,
    /// As printed.
    pub party: Party,
    /// Last change.
    pub updated_at: OffsetDateTime,
}

/// One invoice line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    /// What was bought.
    pub description: String,
    /// How many.
    pub quantity: i64,
    /// Line total including tax, minor units.
    pub amount_minor: i64,
}

/// An issued invoice (which is also the receipt: it is issued when the payment arrives).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invoice {
    /// UUIDv7.
    pub id: Uuid,
    /// The buying organisation.
    pub org_id: Uuid,
    /// 1, 2, 3… per organisation, without gaps.
    pub number: i64,
    /// As printed, e.g. `PXD-000001`.
    pub display_number: String,
    /// The paid order.
    pub order_id: Uuid,
    /// Lowercase ISO 4217.
    pub currency: String,
    /// Total without tax, minor units.
    pub subtotal_minor: i64,
    /// Tax, minor units.
    pub tax_minor: i64,
    /// Total paid, minor units.
    pub total_minor: i64,
    /// The tax's name.
    pub tax_name: String,
    /// Its rate in basis points.
    pub tax_rate_bps: i32,
    /// Seller as printed.
    pub seller: Party,
    /// Buyer as printed.
    pub buyer: Party,
    /// Lines.
    pub lines: Vec<Line>,
    /// Payment provider.
    pub provider: String,
    /// When issued (the payment time).
    pub issued_at: OffsetDateTime,
}

/// Splits a tax-inclusive total into (subtotal, tax), rounding the tax to the nearest minor unit.
pub fn split_tax(total: i64, rate_bps: u32) -> (i64, i64) {
    if rate_bps == 0 {
        return (total, 0);
    }
    let rate = i128::from(rate_bps);
    let t = i128::from(total);
    let subtotal = (t * 10_000 * 2 + (10_000 + rate)) / ((10_000 + rate) * 2);
    let subtotal = subtotal as i64;
    (subtotal, total - subtotal)
}

/// Formats minor units in a currency, e.g. `USD 10.00`, `JPY 1000`.
pub fn money(minor: i64, currency: &str) -> String {
    let cur = currency.to_ascii_uppercase();
    // ISO 4217 currencies without minor units.
    let zero_decimal = matches!(
        cur.as_str(),
        "JPY" | "KRW" | "VND" | "CLP" | "ISK" | "UGX" | "XAF" | "XOF"
    );
    if zero_decimal {
        return format!("{cur} {minor}");
    }
    let sign = if minor < 0 { "-" } else { "" };
    let m = minor.unsigned_abs();
    format!("{sign}{cur} {}.{:02}", m / 100, m % 100)
}

fn date(t: OffsetDateTime) -> String {
    format!("{} {} {}", t.day(), t.month(), t.year())
}

fn check_text(field: &str, v: &str, max: usize) -> Result<()> {
    if v.chars().count() > max || v.chars().any(|c| c.is_control()) {
        return Err(Error::invalid(
            field,
            format!("must be one line of at most {max} characters"),
        ));
    }
    Ok(())
}

impl Party {
    /// Checks lengths and characters, and normalises the country code.
    pub fn validated(mut self) -> Result<Party> {
        self.name = self.name.trim().to_string();
        check_text("name", &self.name, 200)?;
        if self.address.len() > 6 {
            return Err(Error::invalid("address", "at most 6 lines"));
        }
        for l in &self.address {
            check_text("address", l, 200)?;
        }
        self.address.retain(|l| !l.trim().is_empty());
        if let Some(c) = &self.country {
            let c = c.trim().to_ascii_uppercase();
            if c.len() != 2 || !c.chars().all(|ch| ch.is_ascii_uppercase()) {
                return Err(Error::invalid(
                    "country",
                    "must be an ISO 3166-1 alpha-2 code like DE or IN",
                ));
            }
            self.country = Some(c);
        }
        if let Some(t) = &self.tax_id {
            check_text("tax_id", t, 64)?;
        }
        if let Some(e) = &self.email {
            if !e.contains('@') {
                return Err(Error::invalid("email", "is not an email address"));
            }
            check_text("email", e, 254)?;
        }
        Ok(self)
    }

    /// Address, country and email, one printed line each (the layout has five).
    fn lines(&self) -> Vec<String> {
        let mut lines = self.address.clone();
        if let Some(c) = &self.country {
            lines.push(c.clone());
        }
        if let Some(e) = &self.email {
            lines.push(e.clone());
        }
        lines.truncate(5);
        lines
    }
}

impl Pixeld {
    /// The organisation's billing details (empty until set).
    pub async fn billing_profile(&self, p: &Principal) -> Result<Party> {
        p.require(Scope::BillingRead, Permission::BillingRead)?;
        Ok(self
            .store
            .billing_profile(p.org_id)
            .await?
            .map(|b| b.party)
            .unwrap_or_default())
    }

    /// Sets the billing details printed on future invoices (issued ones keep what they printed).
    pub async fn set_billing_profile(&self, p: &Principal, party: Party) -> Result<Party> {
        p.require(Scope::BillingWrite, Permission::BillingManage)?;
        let party = party.validated()?;
        self.store
            .put_billing_profile(&BillingProfile {
                org_id: p.org_id,
                party: party.clone(),
                updated_at: self.now(),
            })
            .await?;
        tracing::info!(org = %p.org_id, user = %p.user.id, "billing details changed");
        Ok(party)
    }

    /// Keeps the organisation's financial records for their 7 years but anonymises them: invoices
    /// then name the buyer "Deleted account" (their country stays, as tax records need it), and
    /// no order, entry or reservation points at a member, token or provider customer any more.
    /// Called when an account is erased.
    pub async fn anonymise_financial_records(&self, org_id: Uuid) -> Result<u64> {
        let country = self
            .store
            .billing_profile(org_id)
            .await?
            .and_then(|b| b.party.country);
        let buyer = Party {
            name: "Deleted account".into(),
            country,
            ..Party::default()
        };
        let n = self
            .store
            .anonymise_financial_records(org_id, &buyer)
            .await?;
        tracing::info!(org = %org_id, rows = n, "financial records anonymised");
        Ok(n)
    }

    /// The organisation's invoices, oldest first.
    pub async fn invoices(&self, p: &Principal, page: PageRequest) -> Result<Page<Invoice>> {
        p.require(Scope::BillingRead, Permission::BillingRead)?;
        let rows = self.store.list_invoices(p.org_id, page).await?;
        Ok(page.finish(rows, |i| i.id))
    }

    /// One invoice of the organisation.
    pub async fn invoice(&self, p: &Principal, id: Uuid) -> Result<Invoice> {
        p.require(Scope::BillingRead, Permission::BillingRead)?;
        self.store
            .invoice_in_org(p.org_id, id)
            .await?
            .ok_or(Error::NotFound)
    }

    /// Issues the invoice of a paid order (once; a second call returns the first).
    pub(crate) async fn issue_invoice(&self, order: &Order) -> Result<Applied<Invoice>> {
        let s = &self.settings.invoices;
        let profile = self.store.billing_profile(order.org_id).await?;
        let mut buyer = profile.map(|b| b.party).unwrap_or_default();
        if buyer.name.is_empty() {
            buyer.name = self
                .store
                .org_by_id(order.org_id)
                .await?
                .map(|o| o.name)
                .unwrap_or_default();
        }
        let (subtotal, tax) = split_tax(order.amount_minor, s.tax_rate_bps);
        let description = if order.item_kind == "plan" {
            let name = self
                .settings
                .plans
                .iter()
                .find(|k| k.id == order.item_id)
                .map_or(order.item_id.as_str(), |k| k.name.as_str());
            format!("{name} plan, one month ({} credits)", order.credits)
        } else {
            match self.settings.packs.iter().find(|k| k.id == order.item_id) {
                Some(k) if k.name.contains(&k.credits.to_string()) => k.name.clone(),
                Some(k) => format!("{} ({} credits)", k.name, k.credits),
                None => format!("{} credits", order.credits),
            }
        };
        let inv = Invoice {
            id: Uuid::now_v7(),
            org_id: order.org_id,
            number: 0,
            display_number: String::new(),
            order_id: order.id,
            currency: order.currency.clone(),
            subtotal_minor: subtotal,
            tax_minor: tax,
            total_minor: order.amount_minor,
            tax_name: s.tax_name.clone(),
            tax_rate_bps: s.tax_rate_bps as i32,
            seller: s.seller.clone(),
            buyer,
            lines: vec![Line {
                description,
                quantity: 1,
                amount_minor: order.amount_minor,
            }],
            provider: order.provider.clone(),
            issued_at: order.paid_at.unwrap_or_else(|| self.now()),
        };
        Ok(self.store.create_invoice(&inv, &s.prefix).await?)
    }

    /// The invoice as a PDF with selectable text, drawn by pixeld's render engine.
    pub async fn invoice_pdf(&self, inv: &Invoice) -> Result<Vec<u8>> {
        self.warm_renderer().await?;
        let template: pixeld_render::Template = serde_json::from_str(INVOICE_TEMPLATE)
            .map_err(|e| Error::Internal(format!("invoice template: {e}")))?;
        let line = inv.lines.first().cloned().unwrap_or(Line {
            description: String::new(),
            quantity: 0,
            amount_minor: 0,
        });
        let pct = f64::from(inv.tax_rate_bps) / 100.0;
        let tax_label = if inv.tax_name.is_empty() {
            "Tax".to_string()
        } else {
            format!("{} {pct}% (included)", inv.tax_name)
        };
        let mut data: BTreeMap<String, String> = [
            ("title", "Invoice / receipt".to_string()),
            ("number", inv.display_number.clone()),
            ("issued", format!("Issued {}", date(inv.issued_at))),
            ("status", "PAID".to_string()),
            ("seller_name", inv.seller.name.clone()),
            (
                "seller_tax",
                inv.seller
                    .tax_id
                    .as_ref()
                    .map(|t| format!("Tax id {t}"))
                    .unwrap_or_default(),
            ),
            ("buyer_name", inv.buyer.name.clone()),
            (
                "buyer_tax",
                inv.buyer
                    .tax_id
                    .as_ref()
                    .map(|t| format!("Tax id {t}"))
                    .unwrap_or_default(),
            ),
            ("item", line.description.clone()),
            ("quantity", line.quantity.to_string()),
            ("line_total", money(line.amount_minor, &inv.currency)),
            ("subtotal", money(inv.subtotal_minor, &inv.currency)),
            ("tax_label", tax_label),
            ("tax", money(inv.tax_minor, &inv.currency)),
            ("total", money(inv.total_minor, &inv.currency)),
            (
                "paid_note",
                format!(
                    "Paid in full on {} through {}. Order {}.",
                    date(inv.issued_at),
                    match inv.provider.as_str() {
                        "stripe" => "Stripe",
                        "razorpay" => "Razorpay",
                        other => other,
                    },
                    inv.order_id
                ),
            ),
            (
                "footer",
                format!("{} · {}", inv.seller.name, inv.display_number),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        for (side, party) in [("seller", &inv.seller), ("buyer", &inv.buyer)] {
            for (i, line) in party.lines().into_iter().enumerate() {
                data.insert(format!("{side}_l{}", i + 1), line);
            }
        }
        let renderer = self.renderer()?;
        let out = tokio::task::spawn_blocking(move || {
            renderer.render(
                &template,
                pixeld_render::Input {
                    data: &data,
                    modifications: &[],
                    images: &pixeld_render::Images::new(),
                },
                &pixeld_render::OutputOptions {
                    format: pixeld_render::Format::Pdf,
                    quality: None,
                    scale: 1.0,
                },
            )
        })
        .await
        .map_err(|e| Error::Internal(e.to_string()))?
        .map_err(|e| Error::Internal(format!("invoice PDF: {e}")))?;
        Ok(out.bytes)
    }

    /// Emails the receipt (the invoice PDF attached) to the buyer's billing email, else to
    /// the member who bought.
    pub(crate) async fn send_receipt(&self, inv: &Invoice, order: &Order) -> Result<()> {
        let to = match &inv.buyer.email {
            Some(e) => e.clone(),
            None => match order.created_by {
                Some(u) => match self.store.user_by_id(u).await? {
                    Some(u) => u.email,
                    None => return Ok(()),
                },
                None => return Ok(()),
            },
        };
        let pdf = self.invoice_pdf(inv).await?;
        self.mailer
            .send(Message {
                to,
                subject: format!("Receipt {} — {}", inv.display_number, money(inv.total_minor, &inv.currency)),
                body: format!(
                    "Thank you for your purchase.\n\n{}\nTotal paid: {}\nInvoice: {}\n\nThe invoice is attached as a PDF; it is also under Billing in your account:\n{}/v1/billing/invoices/{}/pdf\n\n{}\n",
                    inv.lines.first().map(|l| l.description.as_str()).unwrap_or_default(),
                    money(inv.total_minor, &inv.currency),
                    inv.display_number,
                    self.settings.public_url,
                    inv.id,
                    inv.seller.name,
                ),
                attachments: vec![Attachment {
                    filename: format!("{}.pdf", inv.display_number),
                    content_type: "application/pdf".into(),
                    bytes: pdf,
                }],
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tax_included_in_a_price_is_split_out_to_the_minor_unit() {
        assert_eq!(split_tax(1200, 2000), (1000, 200));
        assert_eq!(split_tax(1000, 2000), (833, 167));
        assert_eq!(split_tax(80_000, 1800), (67_797, 12_203));
        assert_eq!(split_tax(999, 0), (999, 0));
    }

    #[test]
    fn amounts_print_with_their_currency() {
        assert_eq!(money(1000, "usd"), "USD 10.00");
        assert_eq!(money(80_005, "inr"), "INR 800.05");
        assert_eq!(money(1000, "jpy"), "JPY 1000");
    }
}
