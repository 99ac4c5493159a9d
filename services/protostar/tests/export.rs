//! `GET /api/users/me/export` through the real binary: everything the account owns, chat's part
//! included (user asks chat's `/internal/chat/export` with the caller's own token), and nothing
//! that belongs to another account.

mod common;
#[allow(dead_code)]
mod openapi_schema;

use common::{Api, create_admin, data_dir, serve_targets};
use kernel::testing::TestDb;
use serde_json::{Value, json};

const RESUME: &[u8] = b"# Ada Park\n\nAda Park built the payments ledger at Northwind in Rust, \
from 2021 to 2024. She moved its reporting warehouse from MySQL to PostgreSQL and cut the \
nightly batch from four hours to twenty minutes.\n";

const QUESTION: &str = "Where did Ada build the payments ledger?";

async fn export(api: &Api, token: &str) -> Value {
    let res = api.get("/api/users/me/export", token).await;
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("attachment")
    );
    let body: Value = res.json().await.unwrap();
    // As services/gateway/openapi.json describes it, with every field documented.
    let doc: Value = serde_json::from_str(gateway::openapi::DOCUMENT).unwrap();
    let schema = json!({"$ref": "#/components/schemas/Export"});
    if let Err(e) = openapi_schema::conforms(&doc, &schema, &body, "export") {
        panic!("{e}\n{body:#}");
    }
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_export_holds_the_accounts_chat_data_and_nobody_elses() {
    let db = TestDb::new().await;
    let data = data_dir("export");
    create_admin(&db, &data, "root@example.org");
    let server = serve_targets(&db, &data, "all", &[]);
    let api = Api::new(&server.public, &server.admin);
    api.ready().await;
    let admin = api.login("root@example.org").await;

    let ada = api.protostar(&admin, "ada@example.org", "Ada Park").await;
    let document = api.upload_ready(&ada, "resume.md", RESUME).await;
    let mine: Value = api
        .get("/api/chatbots/mine", &ada)
        .await
        .json()
        .await
        .unwrap();
    let slug = mine["slug"].as_str().unwrap().to_owned();

    let (vega, _) = api.signup("vega@example.org", "Vega Lind").await;
    let res = api
        .post(
            &format!("/api/chatbots/{slug}/ask"),
            Some(&vega),
            json!({ "question": QUESTION }),
        )
        .await;
    assert_eq!(res.status(), 200);
    let asked: Value = res.json().await.unwrap();
    let answer_id = asked["answerId"].as_str().unwrap().to_owned();
    let answer = asked["answer"].as_str().unwrap().to_owned();
    assert!(!answer.is_empty(), "{asked}");
    let res = api
        .post(
            &format!("/api/answers/{answer_id}/feedback"),
            Some(&vega),
            json!({"rating": "up", "comment": "Clear."}),
        )
        .await;
    assert_eq!(res.status(), 204);
    let correction = "At Northwind, in Rust, from 2021 to 2024.";
    let res = api
        .post(
            &format!("/api/answers/{answer_id}/correction"),
            Some(&ada),
            json!({ "answer": correction }),
        )
        .await;
    assert_eq!(res.status(), 201);
    let vega_me: Value = api.get("/api/users/me", &vega).await.json().await.unwrap();
    let vega_id = vega_me["id"].as_str().unwrap().to_owned();

    // The protostar's: the chatbot, the document's metadata, the question asked of it with its
    // answer, feedback and correction, and of the asker only their role.
    let theirs = export(&api, &ada).await;
    assert_eq!(theirs["profile"]["displayName"], "Ada Park");
    let chat = &theirs["chat"];
    assert_eq!(chat["chatbot"]["slug"], slug.as_str(), "{chat}");
    assert_eq!(chat["chatbot"]["name"], mine["name"]);
    let documents = chat["documents"].as_array().unwrap();
    assert_eq!(documents.len(), 1, "{chat}");
    assert_eq!(documents[0]["id"], document.as_str());
    assert_eq!(documents[0]["filename"], "resume.md");
    assert_eq!(documents[0]["status"], "ready");
    assert_eq!(documents[0]["sizeBytes"], RESUME.len());
    let questions = chat["questionsAskedOfMyChatbot"].as_array().unwrap();
    assert_eq!(questions.len(), 1, "{chat}");
    let q = &questions[0];
    assert_eq!(q["question"], QUESTION);
    assert_eq!(q["answer"], answer.as_str());
    assert_eq!(q["askerRole"], "stargazer");
    assert_eq!(q["feedback"]["rating"], "up");
    assert_eq!(q["correction"], correction);
    assert!(q["askedAt"].is_string());
    assert!(q.get("askerId").is_none(), "{q}");
    let corrections = chat["corrections"].as_array().unwrap();
    assert_eq!(corrections.len(), 1, "{chat}");
    assert_eq!(corrections[0]["answer"], correction);
    assert_eq!(chat["conversations"], json!([]), "Ada asked nothing");
    let text = theirs.to_string();
    assert!(!text.contains(&vega_id), "the asker's id leaked: {text}");
    assert!(
        !text.contains("vega@example.org"),
        "the asker's e-mail leaked"
    );
    assert!(!text.contains("Vega Lind"), "the asker's name leaked");

    // The stargazer's: the conversation with the answer, its citations and feedback; none of
    // the protostar's data.
    let own = export(&api, &vega).await;
    assert_eq!(own["profile"]["id"], vega_id.as_str());
    let chat = &own["chat"];
    assert_eq!(chat["chatbot"], Value::Null, "{chat}");
    assert_eq!(chat["documents"], json!([]));
    assert_eq!(chat["questionsAskedOfMyChatbot"], json!([]));
    assert_eq!(chat["corrections"], json!([]));
    let conversations = chat["conversations"].as_array().unwrap();
    assert_eq!(conversations.len(), 1, "{chat}");
    assert_eq!(conversations[0]["chatbot"]["slug"], slug.as_str());
    let turns = conversations[0]["turns"].as_array().unwrap();
    assert_eq!(turns.len(), 1);
    assert_eq!(turns[0]["question"], QUESTION);
    assert_eq!(turns[0]["answer"], answer.as_str());
    assert_eq!(turns[0]["citations"], asked["citations"]);
    assert_eq!(turns[0]["feedback"]["rating"], "up");
    assert_eq!(turns[0]["feedback"]["comment"], "Clear.");
    assert!(turns[0]["askedAt"].is_string());
    let text = own.to_string();
    assert!(
        !text.contains(correction),
        "the protostar's correction leaked"
    );
    assert!(!text.contains("ada@example.org"));
}
