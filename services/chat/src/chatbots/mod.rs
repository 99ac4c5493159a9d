//! Chatbots: each protostar has one — its slug (the widget's `data-chatbot`), name, greeting,
//! the owner's instructions, the voice it answers in, the origins its widget may be embedded on,
//! its theme, and whether its owner is found by talent search.
//!
//! `GET /api/chatbots/{slug}` is its public face; `GET/PATCH /api/chatbots/mine` its owner's
//! settings (the chatbot is created on the first read). The gateway reads every chatbot's
//! widget origins from `GET /internal/chat/widget-origins` on the admin listener.

mod settings;
pub mod store;

pub use settings::{ChatbotSettings, PublicChatbot};

use crate::Chat;
use crate::account;
use axum::extract::State;
use kernel::Problem;
use kernel::http::{Json, Path};
use kernel::tokens::{Caller, Role};
use serde::Serialize;
use store::Chatbot;
use uuid::Uuid;

/// Slugs that name pages or API paths rather than a chatbot.
const RESERVED: &[&str] = &["mine", "new", "admin", "api", "widget", "dashboard"];

pub fn not_found() -> Problem {
    Problem::NotFound("There is no chatbot with this name.".into())
}

/// A chatbot by slug, for anyone.
pub async fn find(chat: &Chat, slug: &str) -> Result<Chatbot, Problem> {
    store::by_slug(chat.db.pool(), slug)
        .await?
        .ok_or_else(not_found)
}

pub async fn public(
    State(chat): State<Chat>,
    Path(slug): Path<String>,
) -> Result<Json<PublicChatbot>, Problem> {
    let bot = find(&chat, &slug).await?;
    Ok(Json(PublicChatbot::from(&bot)))
}

/// The caller's chatbot, made now if they have none: slug from their name (or a short id),
/// a greeting that says what it is for.
pub async fn mine_or_new(chat: &Chat, owner: Uuid) -> Result<Chatbot, Problem> {
    if let Some(bot) = store::by_owner(chat.db.pool(), owner).await? {
        return Ok(bot);
    }
    let display = store::display_name(chat.db.pool(), owner).await?;
    let name = display
        .clone()
        .unwrap_or_else(|| "My career chatbot".into());
    let base = settings::slug_from(&name).unwrap_or_else(|| "protostar".into());
    let short = owner.simple().to_string();
    // Names collide; a few suffixes from the owner's id make the slug unique.
    for slug in [
        base.clone(),
        format!("{base}-{}", &short[short.len() - 4..]),
        format!("{base}-{}", &short[short.len() - 8..]),
        // 32 characters; every candidate stays within the 40 a slug may have.
        format!("p-{}", &short[..30]),
    ] {
        let bot = Chatbot {
            id: Uuid::now_v7(),
            owner_id: owner,
            greeting: settings::default_greeting(&name),
            name: name.clone(),
            slug,
            persona: String::new(),
            voice: "third_person".into(),
            allowed_origins: Vec::new(),
            accent: settings::DEFAULT_ACCENT.into(),
            talent_search: false,
            created_at: chrono::Utc::now(),
            updated_at: chrono::Utc::now(),
            owner_name: display.clone(),
        };
        if store::create(chat.db.pool(), &bot).await? {
            return Ok(bot);
        }
        // Created concurrently by the same owner: that one stands.
        if let Some(bot) = store::by_owner(chat.db.pool(), owner).await? {
            return Ok(bot);
        }
    }
    Err(Problem::Conflict(
        "No free name for a chatbot was found; try again.".into(),
    ))
}

pub async fn get_mine(
    State(chat): State<Chat>,
    caller: Caller,
) -> Result<Json<ChatbotSettings>, Problem> {
    let owner = account(&caller, Role::Protostar)?;
    Ok(Json(ChatbotSettings::from(
        &mine_or_new(&chat, owner).await?,
    )))
}

pub async fn patch_mine(
    State(chat): State<Chat>,
    caller: Caller,
    Json(patch): Json<settings::Patch>,
) -> Result<Json<ChatbotSettings>, Problem> {
    let owner = account(&caller, Role::Protostar)?;
    let mut bot = mine_or_new(&chat, owner).await?;
    patch.apply(&mut bot)?;
    match store::save(chat.db.pool(), &bot).await {
        Ok(saved) => Ok(Json(ChatbotSettings::from(&saved))),
        Err(store::SaveError::SlugTaken) => Err(Problem::Conflict(format!(
            "The name `{}` is taken by another chatbot.",
            bot.slug
        ))),
        Err(store::SaveError::Db(e)) => Err(e.into()),
    }
}

#[derive(Serialize)]
pub struct WidgetOrigins {
    chatbots: Vec<ChatbotOrigins>,
}

#[derive(Serialize)]
struct ChatbotOrigins {
    slug: String,
    origins: Vec<String>,
}

/// For the gateway only (admin listener; `/internal/*` is never routed from outside).
pub async fn widget_origins(State(chat): State<Chat>) -> Result<Json<WidgetOrigins>, Problem> {
    let chatbots = store::origins(chat.db.pool())
        .await?
        .into_iter()
        .map(|(slug, origins)| ChatbotOrigins { slug, origins })
        .collect();
    Ok(Json(WidgetOrigins { chatbots }))
}
