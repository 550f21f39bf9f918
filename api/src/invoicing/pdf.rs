//! The printed tax invoice (Mushak-6.3) of a submitted document, as a one-or-more-page A4 PDF
//! written with `pdf-writer` in the standard Helvetica fonts.
//!
//! The standard fonts print Latin text (WinAnsi); a character outside it prints as `?`. Bangla
//! names need an embedded font, which this build does not ship yet (README, "Tax invoices").

use pdf_writer::{Content, Finish, Name, Pdf, Rect, Ref, Str};
use vextrus_domain::finance::{InvoiceEvent, InvoiceKind, SubmittedInvoice};

const PAGE_WIDTH: f32 = 595.0;
const PAGE_HEIGHT: f32 = 842.0;
const MARGIN: f32 = 40.0;
const LINE_HEIGHT: f32 = 13.0;
const REGULAR: Name<'static> = Name(b"F1");
const BOLD: Name<'static> = Name(b"F2");
/// Bangladesh time, in which the time of issue prints.
const DHAKA: chrono::FixedOffset = match chrono::FixedOffset::east_opt(6 * 3600) {
    Some(offset) => offset,
    None => panic!("UTC+6 is a valid offset"),
};

/// One line of text at a column.
struct Text {
    x: f32,
    size: f32,
    bold: bool,
    text: String,
}

/// What one printed row holds: pieces of text at their columns.
type Row = Vec<Text>;

fn cell(x: f32, text: impl Into<String>) -> Text {
    Text {
        x,
        size: 9.0,
        bold: false,
        text: text.into(),
    }
}

fn heading(x: f32, size: f32, text: impl Into<String>) -> Text {
    Text {
        x,
        size,
        bold: true,
        text: text.into(),
    }
}

/// `text` as WinAnsi bytes; what WinAnsi cannot print becomes `?`.
fn win_ansi(text: &str) -> Vec<u8> {
    text.chars()
        .map(|c| match u32::from(c) {
            code @ (0x20..=0x7E | 0xA0..=0xFF) => u8::try_from(code).unwrap_or(b'?'),
            _ => b'?',
        })
        .collect()
}

/// The rows of the tax invoice, top to bottom.
fn rows(document: &SubmittedInvoice) -> Vec<Row> {
    let title = match document.kind {
        InvoiceKind::SalesInvoice => "Tax Invoice (Mushak-6.3)",
        InvoiceKind::SalesCreditNote => "Credit Note (Mushak-6.7)",
        InvoiceKind::SalesDebitNote => "Debit Note (Mushak-6.8)",
        InvoiceKind::PurchaseBill => "Purchase Bill (as received)",
        InvoiceKind::PurchaseCreditNote => "Credit Note (as received)",
        InvoiceKind::PurchaseDebitNote => "Debit Note (as received)",
    };
    let bin = |bin: &Option<vextrus_domain::values::Bin>| {
        bin.as_ref()
            .map_or_else(|| "-".to_owned(), ToString::to_string)
    };
    let issued = document.issued_at.with_timezone(&DHAKA);
    let mut rows: Vec<Row> = vec![
        vec![heading(MARGIN, 14.0, title)],
        vec![],
        vec![cell(MARGIN, format!("Seller: {}", document.seller.name))],
        vec![cell(
            MARGIN,
            format!("Seller BIN: {}", bin(&document.seller.bin)),
        )],
        vec![cell(MARGIN, format!("Buyer: {}", document.buyer.name))],
        vec![cell(
            MARGIN,
            format!("Buyer BIN: {}", bin(&document.buyer.bin)),
        )],
    ];
    if let Some(address) = &document.buyer.address {
        rows.push(vec![cell(MARGIN, format!("Buyer address: {address}"))]);
    }
    rows.extend([
        vec![cell(MARGIN, format!("Serial number: {}", document.number))],
        vec![cell(
            MARGIN,
            format!(
                "Date of issue: {}   Time of issue: {} (Asia/Dhaka)",
                document.date,
                issued.format("%H:%M")
            ),
        )],
        vec![],
        vec![
            heading(MARGIN, 9.0, "Description"),
            heading(230.0, 9.0, "Qty"),
            heading(270.0, 9.0, "Unit price"),
            heading(335.0, 9.0, "Value excl. VAT"),
            heading(410.0, 9.0, "Rate"),
            heading(450.0, 9.0, "VAT"),
            heading(505.0, 9.0, "Value incl. VAT"),
        ],
    ]);
    for line in &document.lines {
        let description: String = line.line.description.chars().take(38).collect();
        rows.push(vec![
            cell(MARGIN, description),
            cell(230.0, line.line.quantity.to_decimal()),
            cell(270.0, line.line.unit_price.to_grouped()),
            cell(335.0, line.value.to_grouped()),
            cell(410.0, format!("{}%", line.vat_rate.to_decimal())),
            cell(450.0, line.vat.to_grouped()),
            cell(505.0, line.total.to_grouped()),
        ]);
    }
    rows.extend([
        vec![],
        vec![
            heading(MARGIN, 9.0, "Total"),
            heading(335.0, 9.0, document.value.to_grouped()),
            heading(450.0, 9.0, document.vat.to_grouped()),
            heading(505.0, 9.0, document.total.to_grouped()),
        ],
        vec![],
        vec![cell(
            MARGIN,
            format!(
                "Total value without VAT: Tk {}",
                document.value.to_grouped()
            ),
        )],
        vec![cell(
            MARGIN,
            format!("VAT: Tk {}", document.vat.to_grouped()),
        )],
        vec![cell(
            MARGIN,
            format!("Total value with VAT: Tk {}", document.total.to_grouped()),
        )],
    ]);
    if let Some(original) = &document.original_number {
        rows.push(vec![cell(MARGIN, format!("Changes: {original}"))]);
    }
    if let Some(reference) = &document.reference {
        rows.push(vec![cell(MARGIN, format!("Reference: {reference}"))]);
    }
    rows
}

/// The printed document of a submitted sales invoice or bill; empty for any other event.
pub fn tax_invoice(event: &InvoiceEvent) -> Vec<u8> {
    let InvoiceEvent::InvoiceSubmitted(document) = event else {
        return Vec::new();
    };
    let rows = rows(document);
    let per_page = ((PAGE_HEIGHT - 2.0 * MARGIN) / LINE_HEIGHT) as usize;
    let pages: Vec<&[Row]> = rows.chunks(per_page.max(1)).collect();

    let mut pdf = Pdf::new();
    let catalog = Ref::new(1);
    let tree = Ref::new(2);
    let regular = Ref::new(3);
    let bold = Ref::new(4);
    let first_page = 5;
    let page_ids: Vec<Ref> = (0..pages.len())
        .map(|index| Ref::new(first_page + 2 * i32::try_from(index).unwrap_or(0)))
        .collect();
    pdf.catalog(catalog).pages(tree);
    pdf.pages(tree)
        .kids(page_ids.iter().copied())
        .count(i32::try_from(pages.len()).unwrap_or(1));
    pdf.type1_font(regular)
        .base_font(Name(b"Helvetica"))
        .encoding_predefined(Name(b"WinAnsiEncoding"));
    pdf.type1_font(bold)
        .base_font(Name(b"Helvetica-Bold"))
        .encoding_predefined(Name(b"WinAnsiEncoding"));
    for (page_rows, page_id) in pages.iter().zip(&page_ids) {
        let content_id = Ref::new(page_id.get() + 1);
        let mut page = pdf.page(*page_id);
        page.media_box(Rect::new(0.0, 0.0, PAGE_WIDTH, PAGE_HEIGHT));
        page.parent(tree);
        page.contents(content_id);
        let mut resources = page.resources();
        resources.fonts().pair(REGULAR, regular).pair(BOLD, bold);
        resources.finish();
        page.finish();
        let mut content = Content::new();
        let mut y = PAGE_HEIGHT - MARGIN;
        for row in page_rows.iter() {
            for text in row {
                content.begin_text();
                content.set_font(if text.bold { BOLD } else { REGULAR }, text.size);
                content.next_line(text.x, y);
                content.show(Str(&win_ansi(&text.text)));
                content.end_text();
            }
            y -= LINE_HEIGHT;
        }
        pdf.stream(content_id, &content.finish());
    }
    pdf.finish()
}
