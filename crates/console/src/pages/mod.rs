//! The pages: HTML rendered here from the same reads as the JSON API,
//! every value through [`Html::text`](crate::html::Html::text). One file
//! per page; this one has the layout and the login form.

mod chart;
mod gaps;
mod logs;
mod overview;
mod trace;
mod usage;

pub use gaps::gaps;
pub use logs::logs;
pub use overview::overview;
pub use trace::trace;
pub use usage::usage;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::html::Html;
use crate::params::Params;
use crate::Shared;

/// Which page the navigation marks.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Nav {
    Overview,
    Logs,
    Gaps,
    Usage,
    None,
}

/// A whole page: the layout around `body`.
pub(crate) fn page(status: StatusCode, title: &str, nav: Nav, body: Html) -> Response {
    let mut h = Html::new();
    h.raw("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">")
        .raw("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">")
        .raw("<title>")
        .text(title)
        .raw(" · ringtrail</title>")
        .raw("<link rel=\"stylesheet\" href=\"/assets/console.css\">")
        .raw("<link rel=\"icon\" href=\"/assets/favicon.svg\" type=\"image/svg+xml\">")
        .raw("<script src=\"/assets/console.js\" defer></script></head><body>")
        .raw("<header><a class=\"brand\" href=\"/\">ringtrail</a><nav>");
    for (which, href, label) in [
        (Nav::Overview, "/", "Overview"),
        (Nav::Logs, "/logs", "Logs"),
        (Nav::Gaps, "/gaps", "Gaps"),
        (Nav::Usage, "/usage", "Usage"),
    ] {
        h.raw("<a href=\"").raw(href).raw("\"");
        if which == nav {
            h.raw(" aria-current=\"page\"");
        }
        h.raw(">").raw(label).raw("</a>");
    }
    h.raw("</nav><span class=\"right\">UTC · press <kbd>?</kbd> for keys</span></header><main>")
        .append(body)
        .raw("</main><div id=\"help\" hidden><b>Keys</b><br>")
        .raw("<kbd>/</kbd> search · <kbd>j</kbd> <kbd>k</kbd> rows · <kbd>Enter</kbd> open<br>")
        .raw("<kbd>g</kbd> <kbd>o</kbd> overview · <kbd>g</kbd> <kbd>l</kbd> logs · ")
        .raw("<kbd>g</kbd> <kbd>g</kbd> gaps · <kbd>g</kbd> <kbd>u</kbd> usage · <kbd>?</kbd> close</div>")
        .raw("</body></html>");
    html_response(status, h.finish())
}

/// An HTML answer.
pub(crate) fn html_response(status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response
}

/// An error shown as a page (its text escaped).
pub(crate) fn error_page(status: StatusCode, nav: Nav, message: &str) -> Response {
    let mut h = Html::new();
    h.raw("<div class=\"error-box\" role=\"alert\">")
        .text(message)
        .raw("</div>");
    page(status, "Error", nav, h)
}

/// A JSON error answer from the API turned into a page.
pub(crate) async fn api_error_page(response: Response, nav: Nav) -> Response {
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), 64 << 10)
        .await
        .unwrap_or_default();
    let message = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["error"].as_str().map(str::to_owned))
        .unwrap_or_else(|| status.to_string());
    error_page(status, nav, &message)
}

/// The login form (for `--token`), answering `status`.
pub(crate) fn login_page(status: StatusCode, next: &str, failed: Option<&str>) -> Response {
    let mut h = Html::new();
    h.raw("<form class=\"login\" method=\"post\" action=\"/login\"><h1>Sign in</h1>");
    if let Some(why) = failed {
        h.raw("<div class=\"error-box\" role=\"alert\">")
            .text(why)
            .raw("</div>");
    }
    h.raw("<label for=\"token\">The server's token (<code>--token</code>)</label>")
        .raw("<input id=\"token\" name=\"token\" type=\"password\" autocomplete=\"current-password\" autofocus required>")
        .raw("<input type=\"hidden\" name=\"next\" value=\"")
        .text(next)
        .raw("\"><button class=\"primary\" type=\"submit\">Sign in</button></form>");
    page(status, "Sign in", Nav::None, h)
}

/// `GET /login`.
pub async fn login_form(RawQuery(query): RawQuery) -> Response {
    let params = Params::parse(query.as_deref());
    login_page(StatusCode::OK, safe_next(params.get("next")), None)
}

/// Only a path on this server: `/…` but not `//host` or `/\host`.
fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.starts_with("/\\") => n,
        _ => "/",
    }
}

/// `POST /login` (form: `token`, `next`): sets the session cookie and
/// goes on to `next`, or shows the form again, 401.
pub async fn login(State(state): State<Shared>, body: Bytes) -> Response {
    let form = Params::parse(std::str::from_utf8(&body).ok());
    let next = safe_next(form.get("next")).to_owned();
    if !state.auth.required() {
        return redirect(&next, None);
    }
    match form.get("token") {
        Some(token) if state.auth.token_matches(token) => {
            redirect(&next, state.auth.login_cookie())
        }
        _ => login_page(
            StatusCode::UNAUTHORIZED,
            &next,
            Some("That is not the token."),
        ),
    }
}

/// `POST /logout`: clears the cookie.
pub async fn logout(State(state): State<Shared>) -> Response {
    redirect("/login", Some(state.auth.logout_cookie()))
}

fn redirect(to: &str, cookie: Option<String>) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(location) = HeaderValue::from_str(to) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    if let Some(cookie) = cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}

/// A `<time>` for Unix microseconds: UTC text; the script adds the local
/// time as its title.
pub(crate) fn time(h: &mut Html, micros: i64) {
    let text = ringtrail::time::rfc3339_micros(micros);
    h.raw("<time datetime=\"")
        .text(&text)
        .raw("\">")
        .text(&text)
        .raw("</time>");
}

/// A `<time>` for an RFC 3339 string (from a row's JSON).
pub(crate) fn time_text(h: &mut Html, text: &str) {
    h.raw("<time datetime=\"")
        .text(text)
        .raw("\">")
        .text(text)
        .raw("</time>");
}

/// The window form of a page: `since`, `until`, and `extra` inputs.
pub(crate) fn window_form(
    h: &mut Html,
    action: &'static str,
    params: &Params,
    default_since: &'static str,
) {
    h.raw("<form class=\"filters\" method=\"get\" action=\"")
        .raw(action)
        .raw("\"><label>since<input name=\"since\" placeholder=\"")
        .raw(default_since)
        .raw("\" value=\"")
        .text(params.get("since").unwrap_or(""))
        .raw("\"></label><label>until<input name=\"until\" placeholder=\"now\" value=\"")
        .text(params.get("until").unwrap_or(""))
        .raw("\"></label>");
}

/// An audit point's badge.
pub(crate) fn point_badge(h: &mut Html, point: &str) {
    h.raw("<span class=\"point point-")
        .text(point)
        .raw("\">")
        .text(point)
        .raw("</span>");
}
