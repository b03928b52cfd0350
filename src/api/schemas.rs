//! OpenAPI schemas of the domain's enums, written here so `domain` stays free of the HTTP
//! document's crate: each lists exactly the values the server sends; and of the text rules of
//! the request bodies (`schema_with`), each a pattern that accepts exactly what the rule in
//! `domain` accepts, so a generated request the document calls valid is one the server takes.

use utoipa::openapi::schema::{AllOfBuilder, ObjectBuilder, Schema, Type};
use utoipa::openapi::{RefOr, schema};

use crate::domain::queue::QueueStatus;
use crate::domain::reservation::ReservationStatus;

fn text_enum(values: impl IntoIterator<Item = &'static str>, description: &str) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(schema::SchemaType::Type(Type::String))
        .enum_values(Some(values))
        .description(Some(description))
        .into()
}

impl utoipa::PartialSchema for ReservationStatus {
    fn schema() -> RefOr<Schema> {
        text_enum(
            ReservationStatus::ALL.map(ReservationStatus::as_str),
            "held → paid → confirmed; a hold can also end expired or cancelled",
        )
    }
}

impl utoipa::ToSchema for ReservationStatus {}

impl utoipa::PartialSchema for QueueStatus {
    fn schema() -> RefOr<Schema> {
        text_enum(
            QueueStatus::ALL.map(QueueStatus::as_str),
            "pre_queue before the sale opens; waiting (or sold_out) in line; active when admitted; \
             expired when the slot's time ran out or the entry left; done when a payment released the slot",
        )
    }
}

impl utoipa::ToSchema for QueueStatus {}

/// Rust's `char::is_whitespace` (Unicode White_Space), what `str::trim` removes, as a regex
/// class body: the text rules below trim first, so the patterns allow it around the value.
const WHITESPACE: &str = r"\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000";
/// Rust's `char::is_control` (Unicode Cc), U+0000 included.
const CONTROL: &str = r"\x00-\x1f\x7f-\x9f";

fn text(pattern: String, description: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(schema::SchemaType::Type(Type::String))
        .pattern(Some(pattern))
        .description(Some(description))
}

/// Text that is trimmed, then must be 1 to `max` characters without control characters (a
/// title, a name): whitespace around a first and a last character that are neither.
fn trimmed_text(max: usize, description: &str) -> Schema {
    let (ws, cc) = (WHITESPACE, CONTROL);
    let inner = max.saturating_sub(2);
    text(
        format!("^[{ws}]*[^{ws}{cc}](?:[^{cc}]{{0,{inner}}}[^{ws}{cc}])?[{ws}]*$"),
        description,
    )
    .into()
}

pub fn concert_title() -> Schema {
    trimmed_text(200, "Trimmed, then 1 to 200 characters, no control characters.")
}

pub fn user_name() -> Schema {
    trimmed_text(100, "Trimmed, then 1 to 100 characters, no control characters.")
}

/// A venue's or a hall's name: as a concert's title.
pub fn place_name() -> Schema {
    trimmed_text(200, "Trimmed, then 1 to 200 characters, no control characters.")
}

/// A venue's address: trimmed, then at most 500 characters; no U+0000.
pub fn venue_address() -> Schema {
    let ws = WHITESPACE;
    text(
        format!(r"^[{ws}]*[^\x00]{{0,500}}[{ws}]*$"),
        "Trimmed, then at most 500 characters; no U+0000. Default \"\".",
    )
    .into()
}

/// A plan's row or seat label: text of 1 to 10 characters without control characters, or a
/// whole number (written as its digits).
pub fn plan_label() -> Schema {
    label_of(schema::OneOfBuilder::new())
}

/// A place's optional label: as [`plan_label`], or `null` for the default (its number).
pub fn plan_label_or_null() -> Schema {
    label_of(schema::OneOfBuilder::new().item(ObjectBuilder::new().schema_type(schema::SchemaType::Type(Type::Null))))
}

fn label_of(builder: schema::OneOfBuilder) -> Schema {
    let cc = CONTROL;
    builder
        .item(text(
            format!("^[^{cc}]{{1,10}}$"),
            "1 to 10 characters, no control characters",
        ))
        .item(
            ObjectBuilder::new()
                .schema_type(schema::SchemaType::Type(Type::Integer))
                .minimum(Some(0))
                .maximum(Some(9_999_999_999i64)),
        )
        .description(Some("Text, or a whole number"))
        .into()
}

pub fn section_name() -> Schema {
    trimmed_text(
        50,
        "Trimmed, then 1 to 50 characters, no control characters; unique within the request.",
    )
}

/// Trimmed, then at most 5,000 characters; anything but U+0000 (which PostgreSQL cannot store).
pub fn concert_description() -> Schema {
    let ws = WHITESPACE;
    text(
        format!(r"^[{ws}]*[^\x00]{{0,5000}}[{ws}]*$"),
        "Trimmed, then at most 5,000 characters; no U+0000. Default \"\".",
    )
    .into()
}

/// 8 to 128 characters, as sent (not trimmed); no U+0000.
pub fn password() -> Schema {
    text(r"^[^\x00]*$".to_owned(), "8 to 128 characters; no U+0000.")
        .min_length(Some(8))
        .max_length(Some(128))
        .into()
}

/// `domain::user::Email`: trimmed, at most 254 characters, one `@` with a non-empty part on
/// each side, a domain that neither starts nor ends with `.`, no whitespace or control
/// character. Two patterns, since one regex cannot bound the length of the whole while
/// describing its parts (without a look-ahead, which generators handle badly).
pub fn email() -> Schema {
    let (ws, cc) = (WHITESPACE, CONTROL);
    let part = format!("[^{ws}{cc}@]");
    let edge = format!("[^{ws}{cc}@.]");
    let shape = format!("^[{ws}]*{part}+@(?:{edge}|{edge}{part}*{edge})[{ws}]*$");
    let length = format!("^[{ws}]*[^{ws}]{{1,254}}[{ws}]*$");
    let string = || ObjectBuilder::new().schema_type(schema::SchemaType::Type(Type::String));
    AllOfBuilder::new()
        .item(string().pattern(Some(shape)))
        .item(string().pattern(Some(length)))
        .description(Some(
            "Trimmed and lower-cased; at most 254 characters, one `@` with a non-empty part on each side, \
             a domain that neither starts nor ends with `.`, no whitespace or control characters.",
        ))
        .examples([serde_json::json!("fan@example.com")])
        .into()
}

fn choice(values: &[&'static str], description: &str) -> Schema {
    ObjectBuilder::new()
        .schema_type(schema::SchemaType::Type(Type::String))
        .enum_values(Some(values.iter().copied()))
        .description(Some(description))
        .into()
}

/// `?mode=` of seat creation.
pub fn seat_creation_mode() -> Schema {
    choice(&["stream", "inline"], "default `stream`")
}

/// `?format=` of the reports.
pub fn report_format() -> Schema {
    choice(&["json", "csv"], "default `json`")
}

/// `?status=` of the seat map.
pub fn seat_status() -> Schema {
    choice(&["available", "held", "sold"], "all seats when absent")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::catalog::{ConcertTitle, Description};
    use crate::domain::user::{Email, UserName};

    fn patterns(schema: &Schema) -> Vec<regex_lite::Regex> {
        let value = serde_json::to_value(schema).unwrap();
        let mut found = Vec::new();
        let mut stack = vec![&value];
        while let Some(v) = stack.pop() {
            if let Some(p) = v.get("pattern").and_then(|p| p.as_str()) {
                found.push(regex_lite::Regex::new(p).unwrap());
            }
            if let Some(items) = v.get("allOf").and_then(|a| a.as_array()) {
                stack.extend(items);
            }
        }
        assert!(!found.is_empty());
        found
    }

    fn accepts(schema: &Schema, text: &str) -> bool {
        patterns(schema).iter().all(|p| p.is_match(text))
    }

    /// Texts near every edge of the rules: whitespace of every kind around and inside, control
    /// characters, U+0000, lengths at and past the limits, multi-byte characters.
    fn samples() -> Vec<String> {
        let mut out: Vec<String> = [
            "",
            " ",
            "a",
            " a ",
            "\ta\n",
            "a b",
            "a\u{0}b",
            "\u{0}",
            "a\u{1}",
            "a\u{7f}",
            "a\u{85}",
            "\u{85}a",
            "\u{a0}a\u{3000}",
            "a\u{2028}",
            "\u{1c}a",
            "a\u{1c}",
            "é",
            "日本",
            "a@b",
            "a@b.c",
            " A@B.C ",
            "a@.b",
            "a@b.",
            "@b",
            "a@",
            "a@@b",
            "a@b@c",
            "a b@c",
            "a@b c",
            "a\t@b",
            "a@b\u{0}",
            "fan@example.com",
            "x@y\n",
            "\u{2009}\u{a0}z\u{1680}",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        for n in [49, 50, 51, 99, 100, 101, 199, 200, 201, 253, 254, 255, 4999, 5000, 5001] {
            out.push("x".repeat(n));
            out.push(format!(" {} ", "é".repeat(n)));
            out.push(format!("{}@{}", "a".repeat(n / 2), "b".repeat(n - n / 2 - 1)));
            out.push(format!("\t{}@b.c\n", "a".repeat(n.saturating_sub(4))));
        }
        out
    }

    /// Whether the domain accepts a text.
    type Rule = fn(&str) -> bool;

    #[test]
    fn text_patterns_accept_exactly_what_the_domain_accepts() {
        let rules: [(&str, Schema, Rule); 6] = [
            ("title", concert_title(), |t| ConcertTitle::parse(t).is_ok()),
            ("description", concert_description(), |t| {
                Description::parse(t).is_ok() && !t.contains('\0')
            }),
            ("name", user_name(), |t| UserName::parse(t).is_ok()),
            ("section name", section_name(), |t| {
                let name = t.trim();
                !name.is_empty() && name.chars().count() <= 50 && !name.chars().any(char::is_control)
            }),
            ("email", email(), |t| Email::parse(t).is_ok()),
            ("place name", place_name(), |t| crate::app::venues::valid_name(t)),
        ];
        for (what, schema, rule) in rules {
            for text in samples() {
                assert_eq!(accepts(&schema, &text), rule(&text), "{what}: {text:?}");
            }
        }
    }
}
