//! The console's shared markup: the page frame with its navigation, the log-in and error
//! pages, and small pieces (ages, rates, bar charts as inline SVG, action forms).

use maud::{DOCTYPE, Markup, html};

use crate::app::console::Session;

/// The sections of the navigation: (path, label).
const NAV: &[(&str, &str)] = &[
    ("/console/streams", "Streams"),
    ("/console/dead-letters", "Dead letters"),
    ("/console/rooms", "Waiting rooms"),
    ("/console/sales", "Sales"),
    ("/console/audit", "Audit"),
    ("/console/actions", "Audit log"),
];

fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · ImTicket console" }
            link rel="stylesheet" href="/console/assets/console.css";
            script src="/console/assets/console.js" defer {}
        }
    }
}

/// A whole page: navigation (`active` is the current section's path), who is logged in, the
/// log-out button, and `body`.
pub fn page(title: &str, active: &str, session: &Session, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                header.top {
                    span.brand { "ImTicket console" }
                    nav {
                        @for (path, label) in NAV {
                            a href=(path) class=@if *path == active { "active" } { (label) }
                        }
                    }
                    span.who {
                        span #who { (session.email) } " · "
                        span.role #role { (session.role_name()) }
                        form.inline method="post" action="/console/logout" {
                            input type="hidden" name="csrf" value=(session.csrf_token);
                            button type="submit" #logout { "Log out" }
                        }
                    }
                }
                main {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

pub fn login_page(next: &str, error: Option<&str>) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head("Log in"))
            body.login {
                main {
                    h1 { "ImTicket console" }
                    @if let Some(error) = error {
                        p.error #login-error { (error) }
                    }
                    form method="post" action="/console/login" #login {
                        input type="hidden" name="next" value=(next);
                        label { "E-mail " input type="email" name="email" #email required autocomplete="username"; }
                        label { "Password " input type="password" name="password" #password required autocomplete="current-password"; }
                        button type="submit" #submit { "Log in" }
                    }
                    p.hint { "Admin accounts act (operators); viewer accounts only read." }
                }
            }
        }
    }
}

pub fn error_page(status: u16, code: &str, detail: &str) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head("Error"))
            body {
                header.top { span.brand { a href="/console/streams" { "ImTicket console" } } }
                main {
                    h1 { (status) }
                    p.error #error data-code=(code) { (detail) }
                    p { a href="/console/streams" { "Back to the console" } }
                }
            }
        }
    }
}

/// A hidden CSRF field and a button posting to `action`, or nothing for a viewer (who is shown
/// why not).
pub fn action_button(session: &Session, action: &str, label: &str, id: &str, fields: &[(&str, &str)]) -> Markup {
    html! {
        @if session.may_act() {
            form.inline method="post" action=(action) {
                input type="hidden" name="csrf" value=(session.csrf_token);
                @for (name, value) in fields {
                    input type="hidden" name=(name) value=(value);
                }
                button type="submit" id=(id) { (label) }
            }
        } @else {
            span.muted title="viewers read only" { (label) " (operators only)" }
        }
    }
}

pub fn age_ms(ms: u64) -> String {
    match ms {
        ms if ms < 1_000 => format!("{ms} ms"),
        ms if ms < 60_000 => format!("{:.1} s", ms as f64 / 1000.0),
        ms if ms < 3_600_000 => format!("{:.1} min", ms as f64 / 60_000.0),
        ms => format!("{:.1} h", ms as f64 / 3_600_000.0),
    }
}

pub fn per_s(rate: Option<f64>) -> String {
    match rate {
        None => "–".to_owned(),
        Some(r) if r >= 100.0 => format!("{r:.0}/s"),
        Some(r) => format!("{r:.1}/s"),
    }
}

/// A small bar chart of `values` (oldest first) as inline SVG: no script, no style.
pub fn bars(values: &[f64], id: &str, label: &str) -> Markup {
    let max = values.iter().copied().fold(0.0_f64, f64::max).max(1e-9);
    let (w, h) = (240.0, 40.0);
    let n = values.len().max(1) as f64;
    let bw = w / n;
    html! {
        svg.chart id=(id) width="240" height="40" viewBox="0 0 240 40" role="img" aria-label=(label)
            data-values=(values.iter().map(|v| format!("{v:.2}")).collect::<Vec<_>>().join(",")) {
            title { (label) }
            rect x="0" y="0" width="240" height="40" fill="#f4f5f7" {}
            @for (i, v) in values.iter().enumerate() {
                @let bh = (v / max * (h - 2.0)).max(if *v > 0.0 { 1.0 } else { 0.0 });
                rect x=(format!("{:.1}", i as f64 * bw)) y=(format!("{:.1}", h - bh)) width=(format!("{:.1}", (bw - 1.0).max(1.0)))
                    height=(format!("{bh:.1}")) fill="#3b6fd8" {}
            }
        }
    }
}
