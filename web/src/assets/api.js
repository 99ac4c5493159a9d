// The API as the pages use it: one session (tokens in localStorage, shared by the chat page
// and the dashboard of this origin), refreshed once when it is about to expire or a call says
// 401, and errors as `ApiError` carrying the problem document.

const KEY = "protostar:session";

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
    this.kind = String(problem.type || "").split("/").pop();
  }
  /** Field errors of a 400 `invalid-request`, by field. */
  fields() {
    const out = {};
    for (const f of this.problem.errors || []) out[f.field] = f.message;
    return out;
  }
}

/** Where the auth endpoints are: `/api/auth` on the public listener, `/admin/api/auth` on the admin one. */
let authBase = "/api/auth";
export function useAuthBase(base) {
  authBase = base;
}

export const session = {
  get() {
    try {
      return JSON.parse(localStorage.getItem(KEY) || "null");
    } catch {
      return null;
    }
  },
  set(pair) {
    const s = {
      accessToken: pair.accessToken,
      refreshToken: pair.refreshToken,
      role: pair.role,
      subject: pair.subject,
      exp: Date.now() + (pair.expiresIn || 600) * 1000,
    };
    localStorage.setItem(KEY, JSON.stringify(s));
    return s;
  },
  clear() {
    localStorage.removeItem(KEY);
  },
};

let refreshing = null;

/** Trades the refresh token once for all callers waiting at the same time (a reused one would revoke the family). */
export function refresh() {
  if (!refreshing) {
    refreshing = (async () => {
      const s = session.get();
      if (!s || !s.refreshToken) throw new ApiError(401, { title: "Signed out" });
      const res = await fetch(`${authBase}/refresh`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ refreshToken: s.refreshToken }),
      });
      if (!res.ok) {
        if (res.status === 401 || res.status === 400) session.clear();
        throw new ApiError(res.status, await problem(res));
      }
      return session.set(await res.json());
    })().finally(() => {
      refreshing = null;
    });
  }
  return refreshing;
}

/** A valid access token, refreshed first when it expires within 30 s; null when signed out. */
export async function token() {
  const s = session.get();
  if (!s) return null;
  if (s.exp > Date.now() + 30000) return s.accessToken;
  return (await refresh()).accessToken;
}

async function problem(res) {
  try {
    return await res.json();
  } catch {
    return { title: res.statusText, status: res.status };
  }
}

/** `api("/api/users/me")`, `api(path, {method: "PATCH", body: {...}})`. Resolves to the JSON body (null for 202/204 without one). */
export async function api(path, { method = "GET", body, auth = true, raw = false } = {}, retried = false) {
  const headers = {};
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (auth) {
    const t = await token();
    if (t) headers.Authorization = `Bearer ${t}`;
  }
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (res.status === 401 && auth && !retried && session.get()) {
    await refresh();
    return api(path, { method, body, auth, raw }, true);
  }
  if (!res.ok) throw new ApiError(res.status, await problem(res));
  if (raw) return res;
  const text = await res.text();
  return text ? JSON.parse(text) : null;
}

export async function signIn(email, password) {
  const pair = await api(`${authBase}/login`, { method: "POST", body: { email, password }, auth: false });
  return session.set(pair);
}

export async function signUp(email, password, displayName) {
  const body = { email, password };
  if (displayName) body.displayName = displayName;
  const pair = await api(`${authBase}/signup`, { method: "POST", body, auth: false });
  return session.set(pair);
}

export async function signOut() {
  const s = session.get();
  session.clear();
  if (s && s.refreshToken) {
    try {
      await fetch(`${authBase}/logout`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ refreshToken: s.refreshToken }),
      });
    } catch {
      // Signed out here either way; the refresh token expires on its own.
    }
  }
}
