//! A real headless Chromium (Debian's `chromium`) driven over WebDriver by its `chromedriver`,
//! started on a free port for one test and killed with it. The browser's network log (Chrome's
//! performance log) says every request a page made.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::wd::{Capabilities, WebDriverCompatibleCommand};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

use super::servers::free_port;

pub struct Browser {
    pub client: Client,
    driver: Child,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// `POST /session/{id}/se/log {"type": "performance"}`: the entries logged since the last call.
#[derive(Debug)]
struct PerformanceLog;

impl WebDriverCompatibleCommand for PerformanceLog {
    fn endpoint(&self, base_url: &url::Url, session_id: Option<&str>) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!("session/{}/se/log", session_id.unwrap_or_default()))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(json!({"type": "performance"}).to_string()))
    }
}

impl Browser {
    pub async fn start() -> Browser {
        let port = free_port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (apt-get install chromium-driver; scripts/test.sh installs it)");
        let mut caps = Capabilities::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": "/usr/bin/chromium",
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--window-size=1400,1000", "--no-first-run", "--disable-extensions",
                         "--disable-background-networking", "--disable-component-update", "--disable-sync"],
            }),
        );
        caps.insert("goog:loggingPrefs".into(), json!({"performance": "ALL"}));
        let deadline = Instant::now() + Duration::from_secs(30);
        let client = loop {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector)
                .capabilities(caps.clone())
                .connect(&format!("http://127.0.0.1:{port}"))
                .await
            {
                Ok(client) => break client,
                Err(err) if Instant::now() < deadline => {
                    let _ = err;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(err) => panic!("no WebDriver session from chromedriver: {err}"),
            }
        };
        Browser { client, driver }
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.unwrap();
    }

    pub async fn path(&self) -> String {
        self.client.current_url().await.unwrap().path().to_owned()
    }

    pub async fn url(&self) -> url::Url {
        self.client.current_url().await.unwrap()
    }

    // Read in one script each, so a live part replaced between finding an element and reading
    // it (every 2 s) is never a stale element.
    pub async fn text(&self, css: &str) -> String {
        let found = self
            .client
            .execute(
                "const e = document.querySelector(arguments[0]); return e ? e.innerText : null;",
                vec![json!(css)],
            )
            .await
            .unwrap();
        found
            .as_str()
            .unwrap_or_else(|| panic!("{css}: no such element"))
            .to_owned()
    }

    pub async fn has(&self, css: &str) -> bool {
        self.count(css).await > 0
    }

    pub async fn count(&self, css: &str) -> usize {
        let n = self
            .client
            .execute(
                "return document.querySelectorAll(arguments[0]).length;",
                vec![json!(css)],
            )
            .await
            .unwrap();
        n.as_u64().unwrap() as usize
    }

    /// Clicks a link or button and waits for the page it leads to (a new document), finding
    /// the element again if a live refresh replaced it in between.
    pub async fn click(&self, css: &str) {
        self.script("window.__imticketBefore = true; return 1;").await;
        self.click_only(css).await;
        self.until(
            &format!("the page after clicking {css}"),
            Duration::from_secs(15),
            || async {
                self.script("return window.__imticketBefore !== true && document.readyState === 'complete';")
                    .await
                    == json!(true)
            },
        )
        .await;
    }

    async fn click_only(&self, css: &str) {
        for attempt in 0.. {
            let clicked = match self.client.find(Locator::Css(css)).await {
                Ok(element) => element.click().await,
                Err(e) => Err(e),
            };
            match clicked {
                Ok(()) => return,
                Err(fantoccini::error::CmdError::Standard(e))
                    if attempt < 10 && e.error == fantoccini::error::ErrorStatus::StaleElementReference =>
                {
                    tokio::time::sleep(Duration::from_millis(50)).await
                }
                Err(e) => panic!("{css}: {e}"),
            }
        }
    }

    pub async fn fill(&self, css: &str, value: &str) {
        let field = self.client.find(Locator::Css(css)).await.unwrap();
        field.clear().await.unwrap();
        field.send_keys(value).await.unwrap();
    }

    pub async fn attribute(&self, css: &str, name: &str) -> Option<String> {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap()
            .attr(name)
            .await
            .unwrap()
    }

    pub async fn script(&self, js: &str) -> Value {
        self.client.execute(js, Vec::new()).await.unwrap()
    }

    /// Logs in on the console's log-in page; returns once the answer is shown (the page it
    /// led to, or the log-in page with its error).
    pub async fn log_in(&self, base: &str, email: &str, password: &str) {
        self.goto(&format!("{base}/console/login")).await;
        self.script("document.querySelector('#login').dataset.sent = '1'; return 1;")
            .await;
        self.fill("#email", email).await;
        self.fill("#password", password).await;
        self.click("#submit").await;
        self.until("the log-in answers", Duration::from_secs(10), || async {
            self.script("const f = document.querySelector('#login'); return !f || f.dataset.sent !== '1';")
                .await
                == serde_json::json!(true)
        })
        .await;
    }

    /// Waits (polling, up to `timeout`) until `check` holds of the page.
    pub async fn until<F, Fut>(&self, what: &str, timeout: Duration, mut check: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let deadline = Instant::now() + timeout;
        while !check().await {
            assert!(Instant::now() < deadline, "{what}: not within {timeout:?}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Every URL the browser requested since the last call (from its network log).
    pub async fn requested_urls(&self) -> Vec<String> {
        let entries = self.client.issue_cmd(PerformanceLog).await.unwrap();
        let mut urls = Vec::new();
        for entry in entries.as_array().cloned().unwrap_or_default() {
            let Some(message) = entry["message"].as_str() else {
                continue;
            };
            let Ok(message) = serde_json::from_str::<Value>(message) else {
                continue;
            };
            if message["message"]["method"] == "Network.requestWillBeSent"
                && let Some(url) = message["message"]["params"]["request"]["url"].as_str()
            {
                urls.push(url.to_owned());
            }
        }
        urls
    }

    /// A PNG of the window.
    pub async fn screenshot(&self, path: &std::path::Path) {
        let png = self.client.screenshot().await.unwrap();
        std::fs::write(path, png).unwrap();
    }
}
