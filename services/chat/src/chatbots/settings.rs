//! A chatbot's settings as its owner sees and changes them, and its public face.

use super::RESERVED;
use super::store::Chatbot;
use chrono::{DateTime, Utc};
use kernel::{FieldError, Problem};
use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization;

pub const DEFAULT_ACCENT: &str = "#4f46e5";
const MAX_NAME: usize = 80;
const MAX_GREETING: usize = 500;
const MAX_PERSONA: usize = 2000;
const MAX_ORIGINS: usize = 20;

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Theme {
    pub accent: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Owner {
    pub display_name: String,
}

/// `GET /api/chatbots/{slug}`: what a visitor may know.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PublicChatbot {
    pub slug: String,
    pub name: String,
    pub greeting: String,
    pub theme: Theme,
    pub owner: Owner,
}

impl From<&Chatbot> for PublicChatbot {
    fn from(b: &Chatbot) -> Self {
        Self {
            slug: b.slug.clone(),
            name: b.name.clone(),
            greeting: b.greeting.clone(),
            theme: Theme {
                accent: b.accent.clone(),
            },
            owner: Owner {
                display_name: b.owner_name.clone().unwrap_or_else(|| b.name.clone()),
            },
        }
    }
}

/// `GET/PATCH /api/chatbots/mine`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChatbotSettings {
    pub slug: String,
    pub name: String,
    pub greeting: String,
    pub persona: String,
    /// `first_person` or `third_person`.
    pub voice: String,
    pub allowed_origins: Vec<String>,
    pub theme: Theme,
    pub talent_search: bool,
    /// The tag to paste into a blog page.
    pub snippet_path: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<&Chatbot> for ChatbotSettings {
    fn from(b: &Chatbot) -> Self {
        Self {
            slug: b.slug.clone(),
            name: b.name.clone(),
            greeting: b.greeting.clone(),
            persona: b.persona.clone(),
            voice: b.voice.clone(),
            allowed_origins: b.allowed_origins.clone(),
            theme: Theme {
                accent: b.accent.clone(),
            },
            talent_search: b.talent_search,
            snippet_path: "/widget.js".into(),
            created_at: b.created_at,
            updated_at: b.updated_at,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ThemePatch {
    pub accent: Option<String>,
}

/// Any subset of the settings.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Patch {
    pub slug: Option<String>,
    pub name: Option<String>,
    pub greeting: Option<String>,
    pub persona: Option<String>,
    pub voice: Option<String>,
    pub allowed_origins: Option<Vec<String>>,
    pub theme: Option<ThemePatch>,
    pub talent_search: Option<bool>,
}

/// Text as stored: NFC, trimmed, no control characters but line breaks.
fn clean(s: &str) -> String {
    s.nfc()
        .filter(|c| !c.is_control() || *c == '\n')
        .collect::<String>()
        .trim()
        .to_owned()
}

fn valid_slug(s: &str) -> bool {
    let n = s.len();
    (3..=40).contains(&n)
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
        && !RESERVED.contains(&s)
}

/// `Jane Kim` → `jane-kim`; `None` when nothing Latin is left (a Korean name), so the caller
/// picks another.
pub fn slug_from(name: &str) -> Option<String> {
    let mut out = String::new();
    for c in name.nfkd().filter(|c| c.is_ascii()) {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    // Room for the `-` and eight hex digits a taken slug gets (40 at most, see `valid_slug`).
    let out: String = out.trim_matches('-').chars().take(30).collect();
    let out = out.trim_matches('-').to_owned();
    valid_slug(&out).then_some(out)
}

pub fn default_greeting(name: &str) -> String {
    format!("Hi! Ask me anything about {name}'s career — every answer cites its source.")
}

fn valid_accent(s: &str) -> bool {
    s.len() == 7 && s.starts_with('#') && s[1..].bytes().all(|b| b.is_ascii_hexdigit())
}

impl Patch {
    /// Applies every field, or none when any is invalid (each named in `errors`).
    pub fn apply(self, bot: &mut Chatbot) -> Result<(), Problem> {
        let mut errors = Vec::new();
        let mut next = bot.clone();
        if let Some(slug) = self.slug {
            let slug = slug.trim().to_ascii_lowercase();
            if valid_slug(&slug) {
                next.slug = slug;
            } else {
                errors.push(FieldError::new(
                    "slug",
                    "3 to 40 lowercase letters, digits or hyphens, not starting or ending with a hyphen, and not a reserved word.",
                ));
            }
        }
        let mut text = |field: &str, value: Option<String>, max: usize, empty_ok: bool| {
            let v = value.as_deref().map(clean)?;
            let n = v.chars().count();
            if n > max || (!empty_ok && n == 0) {
                errors.push(FieldError::new(
                    field,
                    if empty_ok {
                        format!("At most {max} characters.")
                    } else {
                        format!("Between 1 and {max} characters.")
                    },
                ));
                None
            } else {
                Some(v)
            }
        };
        if let Some(v) = text("name", self.name, MAX_NAME, false) {
            next.name = v;
        }
        if let Some(v) = text("greeting", self.greeting, MAX_GREETING, false) {
            next.greeting = v;
        }
        if let Some(v) = text("persona", self.persona, MAX_PERSONA, true) {
            next.persona = v;
        }
        if let Some(voice) = self.voice {
            if voice == "first_person" || voice == "third_person" {
                next.voice = voice;
            } else {
                errors.push(FieldError::new(
                    "voice",
                    "`first_person` (\"I led…\") or `third_person` (\"She led…\").",
                ));
            }
        }
        if let Some(origins) = self.allowed_origins {
            if origins.len() > MAX_ORIGINS {
                errors.push(FieldError::new(
                    "allowedOrigins",
                    format!("At most {MAX_ORIGINS} origins."),
                ));
            } else {
                let mut normal = Vec::new();
                for o in &origins {
                    match kernel::domain::normalise_origin(o) {
                        Some(n) if !normal.contains(&n) => normal.push(n),
                        Some(_) => {}
                        None => errors.push(FieldError::new(
                            "allowedOrigins",
                            format!("`{o}` is not an origin like https://blog.example.com"),
                        )),
                    }
                }
                next.allowed_origins = normal;
            }
        }
        if let Some(theme) = self.theme
            && let Some(accent) = theme.accent
        {
            if valid_accent(&accent) {
                next.accent = accent.to_ascii_lowercase();
            } else {
                errors.push(FieldError::new("theme.accent", "A colour like #4f46e5."));
            }
        }
        if let Some(t) = self.talent_search {
            next.talent_search = t;
        }
        if !errors.is_empty() {
            return Err(Problem::invalid_fields(errors));
        }
        *bot = next;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_come_from_latin_names_only() {
        assert_eq!(slug_from("Emily Carter").as_deref(), Some("emily-carter"));
        assert_eq!(slug_from("  José  Núñez!! ").as_deref(), Some("jose-nunez"));
        assert_eq!(slug_from("한지우"), None);
        assert_eq!(slug_from("Mine"), None);
        assert!(!valid_slug("-abc") && !valid_slug("ab") && !valid_slug("a_b_c"));
        assert!(valid_slug("jane-kim-2"));
    }
}
