//! What the messages say, in Korean and English. Each mail has a plain-text body (what a text
//! client or a screen reader gets) and an HTML one with the same content; anything a user wrote
//! (names, questions) is escaped before it goes into HTML.

use chrono::{DateTime, Utc};
use std::fmt::Write;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Locale {
    Ko,
    En,
}

impl Locale {
    /// `ko`, `ko-KR`, `en_US`, ... : the language part decides.
    pub fn parse(tag: &str) -> Option<Self> {
        let lang = tag
            .split(['-', '_'])
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        match lang.as_str() {
            "ko" => Some(Self::Ko),
            "en" => Some(Self::En),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ko => "ko",
            Self::En => "en",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// At most `max` characters, with an ellipsis when cut (never splits a character).
pub fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

fn page(paragraphs: &[String]) -> String {
    let mut html = String::from(
        "<!DOCTYPE html><html><body style=\"font-family:sans-serif;line-height:1.5\">",
    );
    for p in paragraphs {
        let _ = write!(html, "<p>{p}</p>");
    }
    html.push_str("</body></html>");
    html
}

fn link(url: &str) -> String {
    let u = escape(url);
    format!("<a href=\"{u}\">{u}</a>")
}

fn when(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

pub fn password_reset(locale: Locale, link_url: &str, expires_at: DateTime<Utc>) -> Rendered {
    let expires = when(expires_at);
    match locale {
        Locale::Ko => Rendered {
            subject: "[Protostar] 비밀번호 재설정".into(),
            text: format!(
                "비밀번호 재설정을 요청하셨습니다.\n\n아래 링크에서 새 비밀번호를 설정하세요 ({expires}까지 한 번만 쓸 수 있습니다):\n{link_url}\n\n요청하지 않으셨다면 이 메일을 무시하세요. 비밀번호는 바뀌지 않습니다.\n"
            ),
            html: page(&[
                "비밀번호 재설정을 요청하셨습니다.".into(),
                format!(
                    "아래 링크에서 새 비밀번호를 설정하세요 ({}까지 한 번만 쓸 수 있습니다):<br>{}",
                    escape(&expires),
                    link(link_url)
                ),
                "요청하지 않으셨다면 이 메일을 무시하세요. 비밀번호는 바뀌지 않습니다.".into(),
            ]),
        },
        Locale::En => Rendered {
            subject: "[Protostar] Reset your password".into(),
            text: format!(
                "Someone asked to reset the password of this account.\n\nSet a new password here (the link works once, until {expires}):\n{link_url}\n\nIf it was not you, ignore this mail; your password stays as it is.\n"
            ),
            html: page(&[
                "Someone asked to reset the password of this account.".into(),
                format!(
                    "Set a new password here (the link works once, until {}):<br>{}",
                    escape(&expires),
                    link(link_url)
                ),
                "If it was not you, ignore this mail; your password stays as it is.".into(),
            ]),
        },
    }
}

pub fn welcome(locale: Locale, name: &str, app_url: &str) -> Rendered {
    match locale {
        Locale::Ko => Rendered {
            subject: "[Protostar] 가입을 환영합니다".into(),
            text: format!(
                "{name}님, Protostar에 오신 것을 환영합니다.\n\n다른 사람들의 커리어 챗봇과 대화해 보세요:\n{app_url}\n"
            ),
            html: page(&[
                format!("{}님, Protostar에 오신 것을 환영합니다.", escape(name)),
                format!(
                    "다른 사람들의 커리어 챗봇과 대화해 보세요:<br>{}",
                    link(app_url)
                ),
            ]),
        },
        Locale::En => Rendered {
            subject: "[Protostar] Welcome".into(),
            text: format!(
                "Welcome to Protostar, {name}.\n\nTalk to other people's career chatbots:\n{app_url}\n"
            ),
            html: page(&[
                format!("Welcome to Protostar, {}.", escape(name)),
                format!(
                    "Talk to other people's career chatbots:<br>{}",
                    link(app_url)
                ),
            ]),
        },
    }
}

pub fn invite_redeemed(locale: Locale, name: &str, app_url: &str) -> Rendered {
    match locale {
        Locale::Ko => Rendered {
            subject: "[Protostar] 이제 프로토스타입니다".into(),
            text: format!(
                "{name}님, 초대 코드가 적용되었습니다. 이제 나만의 커리어 챗봇을 만들 수 있습니다 (다음 로그인 갱신부터):\n{app_url}\n"
            ),
            html: page(&[format!(
                "{}님, 초대 코드가 적용되었습니다. 이제 나만의 커리어 챗봇을 만들 수 있습니다 (다음 로그인 갱신부터):<br>{}",
                escape(name),
                link(app_url)
            )]),
        },
        Locale::En => Rendered {
            subject: "[Protostar] You are a protostar now".into(),
            text: format!(
                "{name}, your invite is redeemed. You can build your own career chatbot (from your next sign-in refresh on):\n{app_url}\n"
            ),
            html: page(&[format!(
                "{}, your invite is redeemed. You can build your own career chatbot (from your next sign-in refresh on):<br>{}",
                escape(name),
                link(app_url)
            )]),
        },
    }
}

/// One question a visitor asked an owner's chatbot, as the owner is told about it.
#[derive(Debug, Clone)]
pub struct QuestionView {
    pub chatbot_slug: String,
    pub question: String,
    pub asker_role: String,
    pub asked_at: DateTime<Utc>,
}

/// Questions are cut to this many characters in mail; the full text is in the app.
const QUESTION_CHARS: usize = 1000;

pub fn questions(locale: Locale, items: &[QuestionView], app_url: &str) -> Rendered {
    let (subject, intro, outro) = match (locale, items) {
        (Locale::Ko, [one]) => (
            format!("[Protostar] '{}' 챗봇에 새 질문", one.chatbot_slug),
            "챗봇에 새 질문이 들어왔습니다.".to_owned(),
            "답변과 대화 기록은 앱에서 볼 수 있습니다:",
        ),
        (Locale::Ko, many) => (
            format!("[Protostar] 챗봇 질문 {}건 모아보기", many.len()),
            format!(
                "지난 알림 이후 챗봇에 질문 {}건이 들어왔습니다.",
                many.len()
            ),
            "답변과 대화 기록은 앱에서 볼 수 있습니다:",
        ),
        (Locale::En, [one]) => (
            format!("[Protostar] A new question for '{}'", one.chatbot_slug),
            "Someone asked your chatbot a question.".to_owned(),
            "Answers and conversations are in the app:",
        ),
        (Locale::En, many) => (
            format!("[Protostar] {} questions for your chatbots", many.len()),
            format!(
                "Your chatbots were asked {} questions since the last digest.",
                many.len()
            ),
            "Answers and conversations are in the app:",
        ),
    };
    let mut text = format!("{intro}\n\n");
    let mut html_items = String::from("<ul>");
    for q in items {
        let question = truncate(&q.question, QUESTION_CHARS);
        let _ = write!(
            text,
            "- [{}] {} ({})\n  {}\n",
            q.chatbot_slug,
            when(q.asked_at),
            q.asker_role,
            question.replace('\n', "\n  ")
        );
        let _ = write!(
            html_items,
            "<li><b>{}</b> · {} · {}<br>{}</li>",
            escape(&q.chatbot_slug),
            escape(&when(q.asked_at)),
            escape(&q.asker_role),
            escape(&question).replace('\n', "<br>")
        );
    }
    html_items.push_str("</ul>");
    let _ = write!(text, "\n{outro}\n{app_url}\n");
    let html = page(&[
        escape(&intro),
        html_items,
        format!("{}<br>{}", escape(outro), link(app_url)),
    ]);
    Rendered {
        subject,
        text,
        html,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locales_parse_by_language() {
        assert_eq!(Locale::parse("ko-KR"), Some(Locale::Ko));
        assert_eq!(Locale::parse("EN_us"), Some(Locale::En));
        assert_eq!(Locale::parse("fr"), None);
        assert_eq!(Locale::parse(""), None);
    }

    #[test]
    fn user_text_is_escaped_in_html_and_kept_in_text() {
        let r = welcome(Locale::En, "<script>x</script>", "https://app.example.org");
        assert!(r.html.contains("&lt;script&gt;"));
        assert!(!r.html.contains("<script>"));
        assert!(r.text.contains("<script>x</script>"));
    }

    #[test]
    fn korean_and_english_differ_and_carry_the_link() {
        let t = Utc::now();
        let ko = password_reset(Locale::Ko, "https://a.example/reset?token=T1", t);
        let en = password_reset(Locale::En, "https://a.example/reset?token=T1", t);
        assert!(ko.subject.contains("비밀번호"));
        assert!(en.subject.contains("Reset"));
        for r in [&ko, &en] {
            assert!(r.text.contains("https://a.example/reset?token=T1"));
            assert!(r.html.contains("https://a.example/reset?token=T1"));
        }
    }

    #[test]
    fn truncation_respects_characters() {
        assert_eq!(truncate("안녕하세요", 3), "안녕…");
        assert_eq!(truncate("abc", 3), "abc");
    }

    #[test]
    fn one_question_or_a_digest() {
        let q = QuestionView {
            chatbot_slug: "jane".into(),
            question: "What did you build?".into(),
            asker_role: "guest".into(),
            asked_at: Utc::now(),
        };
        assert!(
            questions(Locale::En, std::slice::from_ref(&q), "u")
                .subject
                .contains("'jane'")
        );
        let d = questions(Locale::Ko, &[q.clone(), q], "u");
        assert!(d.subject.contains("2건"), "{}", d.subject);
    }
}
