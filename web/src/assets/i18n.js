// Korean and English for the pages. The language is the visitor's choice (remembered), else
// the browser's; `t("key", arg)` returns the string, calling it when it takes arguments.

const STRINGS = {
  en: {
    signIn: "Sign in", signUp: "Sign up", signOut: "Sign out", email: "E-mail", password: "Password",
    displayName: "Display name", optional: "(optional)", haveAccount: "Already have an account?",
    newHere: "New here?", signedInAs: (n) => `Signed in as ${n}`, passwordHint: "At least 10 characters.",
    conversations: "Your conversations", newConversation: "New conversation", noConversations: "No conversations yet.",
    questions: (n) => (n === 1 ? "1 question" : `${n} questions`), chatWith: (n) => `Chat with ${n}`,
    by: (n) => `Career chatbot of ${n}`, notFound: "There is no chatbot at this address.",
    signInToKeep: "Sign in or sign up to ask more questions and to keep your conversations.",
    notYours: "This conversation is not one of yours.",
    dashboard: "Dashboard", documents: "Documents", chatbot: "Chatbot", insights: "Insights", account: "Account",
    dropHere: "Drop résumés, cover letters or career notes here, or choose files",
    dropTypes: "PDF, DOCX, Markdown, HTML or text, up to 20 MB each.", choose: "Choose files",
    title: "Title", file: "File", size: "Size", status: "Status", chunks: "Passages", updated: "Updated",
    actions: "Actions", reindex: "Re-index", delete: "Delete", noDocuments: "No documents yet.",
    confirmDelete: (n) => `Delete “${n}”? Its original, passages and vectors are removed for good.`,
    uploading: (n) => `Uploading ${n}`, uploaded: (n) => `${n} uploaded`, uploadFailed: (n, why) => `${n}: ${why}`,
    st_queued: "queued", st_extracting: "extracting", st_indexing: "indexing", st_ready: "ready", st_failed: "failed",
    settings: "Chatbot settings", slug: "Address (slug)", name: "Name", greeting: "Greeting", persona: "Persona",
    personaHint: "How the chatbot should sound and what it should stress.", voice: "Answer voice",
    firstPerson: "First person (“I built…”)", thirdPerson: "Third person (“She built…”)",
    origins: "Allowed sites (one origin per line)", originsHint: "e.g. https://blog.example.com — the widget answers only there.",
    accent: "Theme accent", talentSearch: "Let recruiters find me in talent search", save: "Save", saved: "Saved.",
    preview: "Live preview", snippet: "Embed on your blog", copy: "Copy", copied: "Copied.",
    openChatPage: "Open the chat page",
    days: "Last 30 days", totalQuestions: "Questions", unanswered: "Unanswered", feedbackUp: "Helpful",
    feedbackDown: "Not helpful", ratio: "Helpful ratio", overTime: "Questions over time", clusters: "What recruiters ask",
    noClusters: "No questions yet.", unansweredTitle: "Questions the documents could not answer",
    noUnanswered: "Every question had a supported answer.", writeAnswer: "Write the correct answer",
    correctionSaved: "Saved: it will be used as a source from now on.", feedbackTitle: "Feedback",
    noFeedback: "No feedback yet.", guest: "guests", stargazer: "recruiters", protostar: "protostars", admin: "admins",
    asked: (n, d) => `${n} · last ${d}`,
    profile: "Profile", role: "Role", export: "Export my data", exportHint: "Everything the account owns, as one file.",
    deleteAccount: "Delete my account", deleteHint: "Documents, originals, passages, conversations and feedback are deleted. This cannot be undone.",
    typeDelete: "Type DELETE to confirm", deleted: "The account is being deleted.",
    redeemTitle: "Become a protostar", redeemHint: "Have an invite code? Redeem it to upload documents and get your own chatbot.",
    code: "Invite code", redeem: "Redeem", redeemed: "Welcome, protostar! Your chatbot is ready to be filled.",
    stargazerNote: "You are signed in as a recruiter.",
    needProtostar: "This page is for protostars.",
    language: "한국어",
    admin_: "Admin", invites: "Invites", users: "Users", deadLetters: "Dead letters", health: "Health",
    count: "Count", uses: "Uses each", expiresInDays: "Expires in (days)", create: "Create", created: "Created codes (shown once):",
    createdAt: "Created", expiresAt: "Expires", usesLeft: "Uses left",
    revoke: "Revoke", revokedDone: "Revoked: the code can no longer be redeemed.",
    confirmRevoke: (d, n) => `Revoke the invite created ${d}? Its code (${n === 1 ? "1 use" : `${n} uses`} left) can no longer be redeemed; this cannot be undone.`,
    inv_active: "active", inv_revoked: "revoked", inv_expired: "expired", "inv_used-up": "used up",
    change: "Change", next: "Next page", schema: "Service", consumer: "Consumer", event: "Event", reason: "Reason",
    attempts: "Attempts", parkedAt: "Parked", retry: "Retry", retried: "Sent again.", noDeadLetters: "Nothing parked.",
    target: "Target", placement: "Where", ready: "Ready", detail: "Detail", version: "Version", rateLimits: "Rate limits",
    adminOnly: "This account is not an admin.", refresh: "Refresh", yes: "yes", no: "no",
    loading: "Loading…", error: "Something went wrong",
    talent: "Talent search", talentLabel: "Who are you looking for?", talentHint: "e.g. Rust backend engineer with payments experience",
    search: "Search", noTalent: "Nobody who opted in matches that yet.",
  },
  ko: {
    signIn: "로그인", signUp: "가입하기", signOut: "로그아웃", email: "이메일", password: "비밀번호",
    displayName: "표시 이름", optional: "(선택)", haveAccount: "이미 계정이 있나요?",
    newHere: "처음인가요?", signedInAs: (n) => `${n}(으)로 로그인됨`, passwordHint: "10자 이상.",
    conversations: "내 대화", newConversation: "새 대화", noConversations: "아직 대화가 없습니다.",
    questions: (n) => `질문 ${n}개`, chatWith: (n) => `${n}와(과) 대화하기`,
    by: (n) => `${n}의 커리어 챗봇`, notFound: "이 주소에는 챗봇이 없습니다.",
    signInToKeep: "로그인하거나 가입하면 더 질문하고 대화를 보관할 수 있습니다.",
    notYours: "내 대화가 아닙니다.",
    dashboard: "대시보드", documents: "문서", chatbot: "챗봇", insights: "인사이트", account: "계정",
    dropHere: "이력서, 자기소개서, 경력기술서를 여기에 놓거나 파일을 고르세요",
    dropTypes: "PDF, DOCX, Markdown, HTML, 텍스트 (파일당 20MB까지).", choose: "파일 고르기",
    title: "제목", file: "파일", size: "크기", status: "상태", chunks: "구절", updated: "수정",
    actions: "작업", reindex: "다시 색인", delete: "삭제", noDocuments: "아직 문서가 없습니다.",
    confirmDelete: (n) => `“${n}”을(를) 삭제할까요? 원본, 구절, 벡터가 모두 영구히 지워집니다.`,
    uploading: (n) => `${n} 올리는 중`, uploaded: (n) => `${n} 올림`, uploadFailed: (n, why) => `${n}: ${why}`,
    st_queued: "대기", st_extracting: "추출 중", st_indexing: "색인 중", st_ready: "준비됨", st_failed: "실패",
    settings: "챗봇 설정", slug: "주소 (slug)", name: "이름", greeting: "인사말", persona: "페르소나",
    personaHint: "챗봇의 말투와 강조할 점.", voice: "답변 시점",
    firstPerson: "1인칭 (“저는 …을 만들었습니다”)", thirdPerson: "3인칭 (“그는 …을 만들었습니다”)",
    origins: "허용된 사이트 (한 줄에 하나)", originsHint: "예: https://blog.example.com — 위젯은 이곳에서만 답합니다.",
    accent: "테마 색", talentSearch: "인재 검색에서 채용 담당자가 나를 찾을 수 있게 하기", save: "저장", saved: "저장했습니다.",
    preview: "실시간 미리보기", snippet: "블로그에 넣기", copy: "복사", copied: "복사했습니다.",
    openChatPage: "채팅 페이지 열기",
    days: "최근 30일", totalQuestions: "질문", unanswered: "답하지 못함", feedbackUp: "도움됨",
    feedbackDown: "도움 안 됨", ratio: "도움 비율", overTime: "기간별 질문", clusters: "채용 담당자들이 묻는 것",
    noClusters: "아직 질문이 없습니다.", unansweredTitle: "문서로 답하지 못한 질문",
    noUnanswered: "모든 질문에 근거 있는 답을 했습니다.", writeAnswer: "올바른 답 쓰기",
    correctionSaved: "저장했습니다. 이제부터 출처로 쓰입니다.", feedbackTitle: "피드백",
    noFeedback: "아직 피드백이 없습니다.", guest: "게스트", stargazer: "채용 담당자", protostar: "프로토스타", admin: "관리자",
    asked: (n, d) => `${n}번 · 최근 ${d}`,
    profile: "프로필", role: "역할", export: "내 데이터 내보내기", exportHint: "계정의 모든 데이터를 파일 하나로.",
    deleteAccount: "계정 삭제", deleteHint: "문서, 원본, 구절, 대화, 피드백이 모두 삭제됩니다. 되돌릴 수 없습니다.",
    typeDelete: "확인하려면 DELETE를 입력하세요", deleted: "계정을 삭제하는 중입니다.",
    redeemTitle: "프로토스타 되기", redeemHint: "초대 코드가 있나요? 코드를 쓰면 문서를 올리고 나만의 챗봇을 만들 수 있습니다.",
    code: "초대 코드", redeem: "사용하기", redeemed: "환영합니다! 이제 챗봇을 채울 차례입니다.",
    stargazerNote: "채용 담당자로 로그인했습니다.",
    needProtostar: "프로토스타를 위한 페이지입니다.",
    language: "English",
    admin_: "관리", invites: "초대", users: "사용자", deadLetters: "처리 실패 이벤트", health: "상태",
    count: "개수", uses: "코드당 사용 횟수", expiresInDays: "만료 (일)", create: "만들기", created: "만든 코드 (한 번만 보입니다):",
    createdAt: "만든 때", expiresAt: "만료", usesLeft: "남은 횟수",
    revoke: "취소", revokedDone: "취소했습니다. 이제 이 코드는 쓸 수 없습니다.",
    confirmRevoke: (d, n) => `${d}에 만든 초대를 취소할까요? 이 코드(남은 횟수 ${n}회)는 더 이상 쓸 수 없으며, 되돌릴 수 없습니다.`,
    inv_active: "사용 가능", inv_revoked: "취소됨", inv_expired: "만료됨", "inv_used-up": "모두 사용됨",
    change: "바꾸기", next: "다음 쪽", schema: "서비스", consumer: "소비자", event: "이벤트", reason: "이유",
    attempts: "시도", parkedAt: "보류된 때", retry: "다시 시도", retried: "다시 보냈습니다.", noDeadLetters: "보류된 이벤트가 없습니다.",
    target: "대상", placement: "위치", ready: "준비", detail: "상세", version: "버전", rateLimits: "속도 제한",
    adminOnly: "관리자 계정이 아닙니다.", refresh: "새로 고침", yes: "예", no: "아니요",
    loading: "불러오는 중…", error: "문제가 생겼습니다",
    talent: "인재 검색", talentLabel: "어떤 사람을 찾나요?", talentHint: "예: 결제 경험이 있는 Rust 백엔드 개발자",
    search: "검색", noTalent: "아직 조건에 맞는 사람이 없습니다.",
  },
};

export let lang = (() => {
  const chosen = localStorage.getItem("protostar:lang");
  if (chosen === "ko" || chosen === "en") return chosen;
  return (navigator.language || "en").toLowerCase().startsWith("ko") ? "ko" : "en";
})();
document.documentElement.lang = lang;

export function t(key, ...args) {
  const v = STRINGS[lang][key] ?? STRINGS.en[key] ?? key;
  return typeof v === "function" ? v(...args) : v;
}

/** Switches the language and reloads the page (every string is drawn once). */
export function toggleLang() {
  localStorage.setItem("protostar:lang", lang === "ko" ? "en" : "ko");
  location.reload();
}
